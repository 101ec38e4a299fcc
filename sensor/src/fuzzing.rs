//! The bodies of the fuzz targets (`fuzz/`), here so that the libFuzzer targets and the regression
//! test (`tests/fuzz_regressions.rs`, which replays every saved input on stable Rust) run the same
//! code and the same checks. Each function takes arbitrary bytes and panics only on a bug.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::decode::{LinkType, TcpMeta};
use crate::detect::allowlist::Allowlist;
use crate::dns::name::NameBuf;
use crate::dns::view::{Message, Section};
use crate::flow::{FlowKey, IpAddr16};
use crate::state::budget::MemoryBudget;
use crate::tcp::Reassembler;
use crate::worker::Decoder;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the regression runner.
pub const TARGETS: [(&str, Target); 6] = [
    ("decode", decode),
    ("dns_view", dns_view),
    ("tcp_reassembly", tcp_reassembly),
    ("capture_reader", capture_reader),
    ("config", config),
    ("reputation_list", reputation_list),
];

const LINKS: [Option<LinkType>; 5] = [
    Some(LinkType::Ethernet),
    Some(LinkType::RawIp),
    Some(LinkType::LinuxSll),
    Some(LinkType::LinuxSll2),
    None,
];

fn allowlist() -> Arc<Allowlist> {
    static A: OnceLock<Arc<Allowlist>> = OnceLock::new();
    A.get_or_init(|| Arc::new(Allowlist::new(true, &["example.org".to_string()]))).clone()
}

/// One frame in the [`decode`] target's input format (seeds are built with it).
pub fn decode_input(link: Option<LinkType>, frame: &[u8]) -> Vec<u8> {
    let sel = LINKS.iter().position(|l| *l == link).unwrap_or(LINKS.len() - 1) as u8;
    let len = frame.len().min(u16::MAX as usize);
    let mut d = vec![sel, (len >> 8) as u8, len as u8];
    d.extend_from_slice(&frame[..len]);
    d
}

/// Frames through the whole per-packet path: link layer, IP, UDP/TCP reassembly, the DNS view and
/// the features. The input is a sequence of `[link selector][length: u16 BE][frame]` (the last
/// frame takes what is left), so TCP state builds up across the frames of one input while each
/// input starts from a fresh decoder (a crash reproduces from its file alone).
pub fn decode(data: &[u8]) {
    let mut cfg = Config::default();
    // Small caps so table-full and overflow paths are reached quickly.
    cfg.tcp.max_flows = 8;
    cfg.tcp.max_buffered_bytes = 4096;
    let mut dec = Decoder::new(&cfg, allowlist());
    let mut rest = data;
    let mut ts = 1_700_000_000_000_000_000u64;
    while rest.len() >= 3 {
        let link = LINKS[rest[0] as usize % LINKS.len()];
        let len = (u16::from_be_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        ts += u64::from(data.len() as u32 & 0xff) * 10_000_000;
        // The reader's steering reads the same headers without decoding them.
        assert!(crate::capture::steer::worker_for(link, frame, 3) < 3);
        dec.frame(link, frame, ts, 0, &mut |r, name| {
            assert!(r.domain_len as usize <= name.len() && name.len() <= 256);
        });
    }
}

/// The DNS message view: parse, walk every question and record, decode every name (RDATA names
/// too). Nothing may panic or loop; decoded names are bounded.
pub fn dns_view(data: &[u8]) {
    let Ok(m) = Message::parse(data) else { return };
    let mut name = NameBuf::default();
    for q in m.questions() {
        if m.name(q.name_at, &mut name).is_ok() {
            assert!(name.as_bytes().len() <= 255);
        }
    }
    for s in [Section::Answer, Section::Authority, Section::Additional] {
        for r in m.records(s) {
            let _ = m.name(r.name_at, &mut name);
            assert!(r.rdata_at + r.rdata.len() <= data.len());
            if matches!(r.rtype, 2 | 5 | 12) {
                let _ = m.name(r.rdata_at, &mut name);
            }
        }
    }
    let _ = (m.rcode(), m.first_question(), m.trailing_len());
}

/// DNS-over-TCP reassembly on arbitrary segment sequences: 4-byte headers (sequence offset, flags
/// and flow, length) then the payload. Flows and buffered bytes never exceed the caps.
pub fn tcp_reassembly(data: &[u8]) {
    const MAX_FLOWS: usize = 4;
    const MAX_BUFFERED: usize = 2048;
    let mut r = Reassembler::new(MAX_FLOWS, MAX_BUFFERED, 1);
    let mut seqs = [1000u32; 8];
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 4 {
        let (head, tail) = rest.split_at(4);
        let len = (head[3] as usize).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let f = (head[2] & 7) as usize;
        let flow = FlowKey {
            src: IpAddr16::v4([10, 0, 0, f as u8]),
            dst: IpAddr16::v4([10, 0, 0, 53]),
            sport: 1000 + f as u16,
            dport: 53,
            proto: 6,
        };
        // Mostly in order; the offset makes gaps, overlaps and retransmissions.
        let off = i16::from_be_bytes([head[0], head[1]]) as i32;
        let seq = if off.unsigned_abs() < 64 { seqs[f].wrapping_add(off as u32) } else { seqs[f] };
        let meta = TcpMeta { seq, syn: false, fin: head[2] & 0x40 != 0, rst: head[2] & 0x80 != 0 };
        now += u64::from(head[2] & 0x30) * 100_000_000;
        r.segment(now, &flow, meta, payload, &mut |m| assert!(m.len() <= data.len()));
        seqs[f] = seq.wrapping_add(payload.len() as u32);
        assert!(r.flows() <= MAX_FLOWS, "{} flows", r.flows());
        assert!(r.buffered() <= MAX_BUFFERED, "{} bytes buffered", r.buffered());
    }
}

/// The capture reader (pcap/pcapng, plain or gzip, streamed; and plain in memory, as mapped
/// files are read): frames or an error; frames never hold more bytes than the input.
pub fn capture_reader(data: &[u8]) {
    let mut in_memory = 0usize;
    let _ =
        crate::capture::pcap::read_bytes(Path::new("fuzz.pcap"), data, Arc::new(AtomicU64::new(0)), |f| {
            in_memory += f.data.len();
            assert!(in_memory <= data.len());
        });
    let input = std::io::Cursor::new(data.to_vec());
    let mut bytes = 0usize;
    let _ =
        crate::capture::pcap::read_from(Path::new("fuzz.pcap"), input, Arc::new(AtomicU64::new(0)), |f| {
            bytes += f.data.len();
        });
    if !data.starts_with(&[0x1f, 0x8b]) {
        assert!(bytes <= data.len());
    }
}

/// The TOML config parser and validator: a config or an error naming the problem.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text) {
        Ok(cfg) => {
            assert!(cfg.validate().is_ok(), "a parsed config validates again");
            let _ = MemoryBudget::of(&cfg, 2, 2).total();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A reputation list, read in every format (the first byte picks a CSV column): parsing never
/// panics, a refused list says why, and in a loaded set every listed name is found by a lookup of
/// itself, with the worker's remembering lookup agreeing with the plain one on every line.
pub fn reputation_list(data: &[u8]) {
    use crate::reputation::{CleanAnchors, ListFormat, ListSpec, Reputation};
    let text = String::from_utf8_lossy(data);
    let formats =
        [ListFormat::Auto, ListFormat::Domains, ListFormat::Hosts, ListFormat::Rpz, ListFormat::Csv];
    for format in formats {
        let mut spec = ListSpec::from_arg("c2:/fuzz/list").unwrap_or_else(|e| panic!("{e}"));
        spec.format = format;
        if format == ListFormat::Csv {
            spec.column = data.first().map_or(0, |b| (*b % 4) as usize);
        }
        let mut set = Reputation::default();
        match set.add(&spec, &text) {
            Err(e) => assert!(e.to_string().contains("/fuzz/list"), "{e}"),
            Ok(report) => {
                assert!(report.first_bad.len() as u64 <= report.bad_lines);
                assert!(set.len() as u64 >= report.entries);
                let mut clean = CleanAnchors::default();
                for i in 0..set.len() as u32 * 2 {
                    let Some((name, _)) = set.entry(i) else { continue };
                    let name = name.to_vec();
                    assert_eq!(set.lookup(&name), Some(i), "{:?}", String::from_utf8_lossy(&name));
                }
                for line in text.lines() {
                    let name = line.trim().trim_end_matches('.').to_ascii_lowercase();
                    let want = set.lookup(name.as_bytes());
                    // Twice: the second may answer from the worker's memory of clean anchors.
                    for _ in 0..2 {
                        assert_eq!(clean.lookup(&set, name.as_bytes(), None), want, "{name:?}");
                    }
                }
            }
        }
    }
}
