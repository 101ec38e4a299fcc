//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The third-party captures beside the repository (`../shared/datasets`), or `DNSENTRY_DATASETS`.
/// Missing datasets skip a test locally but fail it in CI (`CI=true`).
pub fn datasets() -> Option<PathBuf> {
    let dir = std::env::var_os("DNSENTRY_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "datasets not found at {}", dir.display());
    eprintln!("skipping: datasets not found at {}", dir.display());
    None
}

/// (file, tool, tunnel domain) rows of the manifest.
pub fn manifest(dir: &std::path::Path) -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| (dir.join(f[0]), f[1].to_string(), f[4].to_string()))
        })
        .collect()
}

/// The repository's own captures and their labels (`pcaps/LABELS.tsv`): (file, class, tool, domain).
pub fn own_pcaps() -> Vec<(PathBuf, String, String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let Ok(text) = std::fs::read_to_string(dir.join("LABELS.tsv")) else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| (dir.join(f[0]), f[1].to_string(), f[2].to_string(), f[4].to_string()))
        })
        .collect()
}

/// Every DNS payload of a capture (UDP payloads and reassembled TCP messages) with its transport.
pub fn dns_payloads(path: &std::path::Path) -> Vec<Vec<u8>> {
    use dnsentry::decode::{decode, PortSet};
    use dnsentry::tcp::Reassembler;
    let ports = PortSet::new(&[53]);
    let mut tcp = Reassembler::new(1024, 1 << 24, 30);
    let mut out = Vec::new();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    dnsentry::capture::pcap::read_file(path, progress, |f| {
        let Some(link) = f.link else { return };
        let Ok(p) = decode(link, f.data, &ports) else { return };
        match p.tcp {
            None => out.push(p.payload.to_vec()),
            Some(meta) => tcp.segment(f.ts_ns, &p.flow, meta, p.payload, &mut |m| out.push(m.to_vec())),
        }
    })
    .expect("readable capture");
    out
}

/// The Internet checksum (RFC 1071) of an IPv4 header, for the frames tests build.
pub fn ipv4_checksum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The frames of a classic pcap (µs or ns), as (ns, bytes, original length).
pub fn pcap_frames(p: &std::path::Path) -> Vec<(u64, Vec<u8>, u32)> {
    let b = std::fs::read(p).unwrap();
    let word = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let ns = match word(0) {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        m => panic!("{}: not a little-endian classic pcap ({m:#x})", p.display()),
    };
    let mut v = Vec::new();
    let mut o = 24;
    while o + 16 <= b.len() {
        let (s, f, len, orig) = (word(o) as u64, word(o + 4) as u64, word(o + 8) as usize, word(o + 12));
        v.push((s * 1_000_000_000 + if ns { f } else { f * 1000 }, b[o + 16..o + 16 + len].to_vec(), orig));
        o += 16 + len;
    }
    v
}
