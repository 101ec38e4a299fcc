//! Floods replayed through the whole pipeline (the `dnsentry` binary, 2 workers): 5 million random
//! subdomains under one domain, 1 million registered domains, 100 000 clients, 100 000 half-open
//! DNS-over-TCP flows, and a stream of IP fragments and malformed frames. For each: the peak
//! resident memory of the process (getrusage via wait4) stays under the configuration's memory
//! budget (`MemoryBudget`, docs/design.md), what overflowed is counted, and the tunnel hidden in
//! the flood is still alarmed.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use dnsentry::config::Config;
use dnsentry::state::budget::MemoryBudget;

const BIN: &str = env!("CARGO_BIN_EXE_dnsentry");
const WORKERS: usize = 2;
/// A tunnel query (hex label under this domain) every this many flood packets.
const TUNNEL_EVERY: u64 = 500;
const TUNNEL: &str = "tunnel-flood.test";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

/// A classic pcap file of Ethernet frames, one every 20 µs of capture time.
struct Pcap {
    out: BufWriter<File>,
    n: u64,
}

impl Pcap {
    fn create(path: &Path) -> Pcap {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&65_535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h).unwrap();
        Pcap { out, n: 0 }
    }

    fn frame(&mut self, f: &[u8]) {
        let us = 1_700_000_000_000_000u64 + self.n * 20;
        self.n += 1;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
        self.out.write_all(&h).unwrap();
        self.out.write_all(f).unwrap();
    }

    fn finish(mut self) {
        self.out.flush().unwrap();
    }
}

/// Ethernet + IPv4 (`frag`: flags and offset field) around an L4 payload.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34]);
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = common::ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

const RESOLVER: [u8; 4] = [10, 0, 0, 53];

fn dns_frame(client: [u8; 4], id: u16, name: &str, qtype: u16) -> Vec<u8> {
    ipv4(client, RESOLVER, 17, 0, &udp(40_000 + (id % 20_000), 53, &query(id, name, qtype)))
}

/// Writes `n` flood frames from `flood` and a hex tunnel query every [`TUNNEL_EVERY`].
fn write_flood(path: &Path, n: u64, mut flood: impl FnMut(u64, &mut Rng) -> Vec<u8>) {
    let mut p = Pcap::create(path);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut tun = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..n {
        p.frame(&flood(i, &mut rng));
        if i % TUNNEL_EVERY == TUNNEL_EVERY - 1 {
            let name = format!("{}.{TUNNEL}", tun.hex(48));
            p.frame(&dns_frame([10, 9, 9, 9], i as u16, &name, 16));
        }
    }
    p.finish();
}

struct Run {
    summary: String,
    alarms: Vec<serde_json::Value>,
    peak_rss: u64,
    budget: u64,
}

impl Run {
    /// The first number after `key` on the summary line that starts with it.
    fn num(&self, key: &str) -> u64 {
        self.after(key, "").unwrap_or_else(|| panic!("no `{key}` in\n{}", self.summary))
    }

    /// The number just before `word` on the summary line `key`.
    fn after(&self, key: &str, word: &str) -> Option<u64> {
        let line = self.summary.lines().find_map(|l| l.trim().strip_prefix(key))?;
        if word.is_empty() {
            return line.split_whitespace().next()?.trim_end_matches(',').parse().ok();
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let i = toks.iter().position(|t| t.trim_end_matches([',', ')']) == word)?;
        toks.get(i.checked_sub(1)?)?.trim_start_matches('(').parse().ok()
    }

    fn alarmed(&self, domain: &str) -> bool {
        self.alarms.iter().any(|a| {
            a["domain"].as_str() == Some(domain) && matches!(a["severity"].as_str(), Some("low" | "high"))
        })
    }
}

/// Replays `pcap` with the default config and `WORKERS` workers; peak RSS from wait4.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn replay(pcap: &Path, dir: &Path) -> Run {
    let alarms = dir.join("alarms.jsonl");
    let mut child = Command::new(BIN)
        .arg("replay")
        .arg(pcap)
        .args(["--workers", &WORKERS.to_string(), "--min-severity", "low", "--alarms"])
        .arg(&alarms)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by wait4 for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let summary = reader.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "replay failed ({status}):\n{summary}"
    );
    let alarms = std::fs::read_to_string(&alarms)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut cfg = Config::default();
    cfg.pipeline.workers = WORKERS;
    let budget = MemoryBudget::of(&cfg, cfg.workers(), cfg.shards()).total();
    Run { summary, alarms, peak_rss: ru.ru_maxrss as u64 * 1024, budget }
}

fn flood(name: &str, n: u64, gen: impl FnMut(u64, &mut Rng) -> Vec<u8>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let pcap: PathBuf = dir.path().join(format!("{name}.pcap"));
    let t0 = std::time::Instant::now();
    write_flood(&pcap, n, gen);
    let size = std::fs::metadata(&pcap).unwrap().len();
    let t1 = std::time::Instant::now();
    let run = replay(&pcap, dir.path());
    eprintln!(
        "flood {name}: {n} frames ({:.0} MB) written in {:.1} s, replayed in {:.1} s; peak RSS {:.0} MiB of a {:.0} MiB budget",
        size as f64 / 1e6,
        (t1 - t0).as_secs_f64(),
        t1.elapsed().as_secs_f64(),
        run.peak_rss as f64 / (1u64 << 20) as f64,
        run.budget as f64 / (1u64 << 20) as f64,
    );
    eprintln!("{}", run.summary);
    assert!(run.peak_rss < run.budget, "peak RSS {} over the budget {}", run.peak_rss, run.budget);
    assert!(run.alarmed(TUNNEL), "the tunnel hidden in the {name} flood was not alarmed");
    run
}

#[test]
fn flood_random_subdomains() {
    let n = 5_000_000;
    let run = flood("subdomains", n, |i, r| {
        dns_frame([10, 1, 0, 1 + (i % 4) as u8], i as u16, &format!("{}.flood-sub.test", r.hex(20)), 1)
    });
    assert_eq!(run.num("dns messages:"), n + n / TUNNEL_EVERY);
    // The flooded domain itself is an exfiltration shape: alarmed.
    assert!(run.alarmed("flood-sub.test"), "{:?}", run.alarms);
}

#[test]
fn flood_registered_domains() {
    let n = 1_000_000;
    let run = flood("domains", n, |i, r| {
        dns_frame([10, 1, 0, 1 + (i % 200) as u8], i as u16, &format!("www.d{}.com", r.hex(12)), 1)
    });
    let max = Config::default().state.max_domains as u64;
    // Far more distinct domains than the table holds: the least recently seen were evicted.
    let evicted = run.after("state:", "/").expect("domains evicted");
    assert!(evicted >= n - max, "{evicted} evicted\n{}", run.summary);
    assert!(run.num("state:") <= max);
}

#[test]
fn flood_clients() {
    let n = 300_000;
    let run = flood("clients", n, |i, r| {
        // 100 000 clients, 3 queries each, names under 1000 domains.
        let c = (i % 100_000) as u32 + 1;
        let ip = [10, 100 + (c >> 16) as u8, (c >> 8) as u8, c as u8];
        dns_frame(ip, i as u16, &format!("host{}.org{}.net", r.next() % 50, i % 1000), 1)
    });
    // Every (client, domain) pair fits under the default cap: nothing is evicted, nothing lost.
    let pairs = run.after("state:", "client-domain").expect("pairs");
    let cap = Config::default().state.max_client_domains as u64;
    assert!((100_000..=cap).contains(&pairs), "{pairs}");
    assert_eq!(run.after("state:", "/"), Some(0), "domains evicted\n{}", run.summary);
    assert_eq!(run.after("state:", "evicted"), Some(0), "pairs evicted\n{}", run.summary);
}

#[test]
fn flood_half_open_tcp() {
    let n = 100_000;
    let run = flood("tcp", n, |i, _| {
        // One segment per flow: the 2-byte length announces 300 bytes, a DNS header and the start
        // of a question follow, nothing more.
        let mut seg = Vec::new();
        let sport = 1024 + (i % 60_000) as u16;
        seg.extend_from_slice(&sport.to_be_bytes());
        seg.extend_from_slice(&53u16.to_be_bytes());
        seg.extend_from_slice(&1000u32.to_be_bytes());
        seg.extend_from_slice(&1u32.to_be_bytes());
        seg.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        seg.extend_from_slice(&300u16.to_be_bytes());
        seg.extend_from_slice(&query(i as u16, "half-open-flood.example", 1)[..30]);
        let c = i as u32;
        ipv4([10, 200 + (c >> 16) as u8, (c >> 8) as u8, c as u8], RESOLVER, 6, 0, &seg)
    });
    // The reassembly table stayed within its cap; the flows it could not hold were counted.
    assert!(run.after("tcp reassembly:", "table").unwrap_or(0) > 0, "{}", run.summary);
}

#[test]
fn flood_fragments_and_malformed() {
    let n = 500_000;
    let run = flood("garbage", n, |i, r| match i % 5 {
        // A first fragment (MF) and a later fragment of a DNS datagram.
        0 => ipv4([10, 3, 0, 1], RESOLVER, 17, 0x2000, &udp(5353, 53, &query(i as u16, "frag.example", 1))),
        1 => ipv4([10, 3, 0, 1], RESOLVER, 17, 0x0010, &[0x55; 64]),
        // A compression pointer to itself, and random bytes after a DNS header.
        2 => {
            let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
            m[0] = i as u8;
            ipv4([10, 3, 0, 2], RESOLVER, 17, 0, &udp(5353, 53, &m))
        }
        3 => {
            let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            m.extend((0..r.next() % 200).map(|_| r.next() as u8));
            ipv4([10, 3, 0, 3], RESOLVER, 17, 0, &udp(5353, 53, &m))
        }
        // A frame cut inside the IP header.
        _ => ipv4([10, 3, 0, 4], RESOLVER, 17, 0, &udp(5353, 53, &[1, 2, 3]))[..20].to_vec(),
    });
    let skipped = &run.summary;
    assert!(skipped.contains("fragment"), "{skipped}");
    assert!(run.num("parse errors:") >= n / 5, "{}", run.summary);
}
