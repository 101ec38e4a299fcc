//! Replays every saved fuzz input (`fuzz/regressions/<target>/`) and a set of hand-made hostile
//! inputs through the fuzz targets' code (`dnsentry::fuzzing`), on stable Rust, in every test run.

use std::path::PathBuf;

use dnsentry::fuzzing::{self, TARGETS};

#[test]
fn saved_inputs_still_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut n = 0;
    for (name, target) in TARGETS {
        let sub = dir.join(name);
        assert!(sub.is_dir(), "{} missing", sub.display());
        for e in std::fs::read_dir(&sub).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let data = std::fs::read(e.path()).unwrap();
            target(&data);
            n += 1;
        }
    }
    eprintln!("{n} saved fuzz inputs replayed");
}

/// A DNS header asking one question, then `rest`.
fn msg(rest: &[u8]) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(rest);
    m
}

#[test]
fn hostile_dns_messages() {
    let cases: Vec<Vec<u8>> = vec![
        msg(&[0xc0, 12, 0, 1, 0, 1]),          // pointer to itself
        msg(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]), // loop through a label
        msg(&[0xc0, 200, 0, 1, 0, 1]),         // pointer past the end
        msg(&[0x40, 1, 0, 0, 1, 0, 1]),        // reserved label type
        msg(&[63]),                            // label cut short
        msg(&[1, b'a', 0, 0, 1, 0, 1, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 1, 0xff, 0xff]), // RDLENGTH past the end
        [msg(&[]), vec![0; 300]].concat(),     // zero-length labels
        vec![],
        vec![0; 11],
    ];
    for c in &cases {
        for cut in 0..=c.len() {
            fuzzing::dns_view(&c[..cut]);
        }
    }
    // A name of 127 one-byte labels: longer than 255 bytes once decoded.
    let mut long = Vec::new();
    for _ in 0..127 {
        long.extend_from_slice(&[1, b'x']);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    fuzzing::dns_view(&msg(&long));
}

#[test]
fn hostile_frames_captures_and_configs() {
    // Every link type on truncated and random frames.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..200 {
        for sel in 0..5u8 {
            let mut f = vec![sel];
            f.extend((0..len).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            fuzzing::decode(&f);
            fuzzing::tcp_reassembly(&f);
            fuzzing::capture_reader(&f);
            fuzzing::config(&f);
        }
    }
    // A pcap header announcing a 4 GB record; a gzip header with garbage after it.
    let mut pcap =
        vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    pcap.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    fuzzing::capture_reader(&pcap);
    fuzzing::capture_reader(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5]);
    for cfg in
        ["[state]\nmax_domains = -1\n", "[[detect]]\n", "pipeline = 3\n", "[detect]\nlow_score = 1e400\n"]
    {
        fuzzing::config(cfg.as_bytes());
    }
}
