//! Capture files of every supported kind, and damaged ones, through the reader, the pipeline and
//! the command line.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use dnsentry::capture::pcap::{read_file, CaptureError};
use etherparse::PacketBuilder;

/// A DNS query for `name` (A) as bytes.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

fn ip_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64).udp(40000, 53).write(&mut v, payload).unwrap();
    v
}

fn eth_udp(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
        .udp(40000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Frames of the given link type carrying `n` queries.
fn frames(linktype: u32, n: u16) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let dns = dns_query(i, &format!("host{i}.example.com"));
            match linktype {
                1 => eth_udp(&dns),
                101 => ip_udp(&dns),
                113 => {
                    let mut f = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
                    f.extend(ip_udp(&dns));
                    f
                }
                276 => {
                    let mut f = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
                    f.extend(ip_udp(&dns));
                    f
                }
                _ => unreachable!(),
            }
        })
        .collect()
}

fn pcap(linktype: u32, nanos: bool, frames: &[Vec<u8>]) -> Vec<u8> {
    let magic: u32 = if nanos { 0xa1b23c4d } else { 0xa1b2c3d4 };
    let mut v = Vec::new();
    v.extend(magic.to_le_bytes());
    v.extend(2u16.to_le_bytes());
    v.extend(4u16.to_le_bytes());
    v.extend([0; 8]);
    v.extend(65535u32.to_le_bytes());
    v.extend(linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend((1_700_000_000u32 + i as u32).to_le_bytes());
        v.extend(if nanos { 123_456_789u32 } else { 123_456u32 }.to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend((f.len() as u32).to_le_bytes());
        v.extend(f);
    }
    v
}

fn pcapng(linktype: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    fn block(v: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        v.extend(kind.to_le_bytes());
        v.extend((len as u32).to_le_bytes());
        v.extend(body);
        v.extend(std::iter::repeat_n(0u8, len - 12 - body.len()));
        v.extend((len as u32).to_le_bytes());
    }
    let mut v = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1A2B3C4Du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut v, 0x0A0D0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend(linktype.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(0u32.to_le_bytes());
    // if_tsresol = 9 (nanoseconds), then end of options.
    idb.extend([9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    block(&mut v, 1, &idb);
    for (i, f) in frames.iter().enumerate() {
        let ts: u64 = (1_700_000_000 + i as u64) * 1_000_000_000 + 5;
        let mut epb = Vec::new();
        epb.extend(0u32.to_le_bytes());
        epb.extend(((ts >> 32) as u32).to_le_bytes());
        epb.extend((ts as u32).to_le_bytes());
        epb.extend((f.len() as u32).to_le_bytes());
        epb.extend((f.len() as u32).to_le_bytes());
        epb.extend(f);
        epb.extend(std::iter::repeat_n(0u8, (4 - f.len() % 4) % 4));
        block(&mut v, 6, &epb);
    }
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn queries_in(path: &Path) -> (u64, Vec<u64>) {
    let mut ts = Vec::new();
    let mut n = 0;
    let ports = dnsentry::decode::PortSet::new(&[53]);
    read_file(path, Arc::new(AtomicU64::new(0)), |f| {
        let p = dnsentry::decode::decode(f.link.unwrap(), f.data, &ports).unwrap();
        dnsentry::dns::Message::parse(p.payload).unwrap();
        n += 1;
        ts.push(f.ts_ns);
    })
    .unwrap();
    (n, ts)
}

#[test]
fn every_link_type_and_format() {
    let dir = tempfile::tempdir().unwrap();
    for lt in [1u32, 101, 113, 276] {
        let fr = frames(lt, 5);
        let (n, ts) = queries_in(&write(dir.path(), "a.pcap", &pcap(lt, false, &fr)));
        assert_eq!(n, 5, "pcap linktype {lt}");
        assert_eq!(ts[1], 1_700_000_001_123_456_000);
        let (n, ts) = queries_in(&write(dir.path(), "b.pcap", &pcap(lt, true, &fr)));
        assert_eq!(n, 5);
        assert_eq!(ts[0], 1_700_000_000_123_456_789);
        let (n, ts) = queries_in(&write(dir.path(), "c.pcapng", &pcapng(lt as u16, &fr)));
        assert_eq!(n, 5, "pcapng linktype {lt}");
        assert_eq!(ts[2], 1_700_000_002_000_000_005);
        let (n, _) = queries_in(&write(dir.path(), "d.pcapng.gz", &gzip(&pcapng(lt as u16, &fr))));
        assert_eq!(n, 5);
        let (n, _) = queries_in(&write(dir.path(), "e.pcap.gz", &gzip(&pcap(lt, false, &fr))));
        assert_eq!(n, 5);
    }
}

#[test]
fn damaged_files_name_the_offset_and_keep_earlier_packets() {
    let dir = tempfile::tempdir().unwrap();
    let good = pcap(1, false, &frames(1, 10));
    // Cut in the middle of the 8th record.
    let cut = good.len() - good.len() / 5;
    let p = write(dir.path(), "cut.pcap", &good[..cut]);
    let mut seen = 0;
    let err = read_file(&p, Arc::new(AtomicU64::new(0)), |_| seen += 1).unwrap_err();
    assert!((7..10).contains(&seen), "seen {seen}");
    let msg = err.to_string();
    assert!(msg.contains("cut.pcap") && msg.contains("offset"), "{msg}");
    assert!(matches!(err, CaptureError::Corrupt { frames, .. } if frames == seen));

    let p = write(dir.path(), "cut.pcap.gz", &gzip(&good)[..200]);
    let err = read_file(&p, Arc::new(AtomicU64::new(0)), |_| {}).unwrap_err();
    assert!(err.to_string().contains("cut.pcap.gz"), "{err}");

    let p = write(dir.path(), "junk.pcap", b"this is not a capture file at all, just text");
    assert!(matches!(
        read_file(&p, Arc::new(AtomicU64::new(0)), |_| {}),
        Err(CaptureError::NotCapture { .. })
    ));
    let p = write(dir.path(), "empty.pcap", b"");
    assert!(read_file(&p, Arc::new(AtomicU64::new(0)), |_| {}).is_err());
    let missing = dir.path().join("missing.pcap");
    assert!(matches!(
        read_file(&missing, Arc::new(AtomicU64::new(0)), |_| {}),
        Err(CaptureError::Open { .. })
    ));
}

fn dnsentry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnsentry"))
}

#[test]
fn cli_reports_damage_and_still_processes_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = pcap(1, false, &frames(1, 10));
    let a = write(dir.path(), "good.pcap", &good);
    let b = write(dir.path(), "bad.pcap", &good[..good.len() - 30]);
    let out = dnsentry().args(["replay", "--workers", "2"]).arg(&b).arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.pcap") && err.contains("offset"), "{err}");
    // 9 frames of the damaged file and 10 of the good one.
    assert!(err.contains("packets:          19"), "{err}");
    assert!(err.contains("dns messages:     19"), "{err}");
}

#[test]
fn cli_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", b"[detect]\nhigh_score = 5\n");
    let out = dnsentry().arg("check-config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("detect.high_score"));
    let cfg = write(dir.path(), "d.toml", b"[detect]\nhigh_scor = 80\n");
    let out = dnsentry().arg("check-config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("high_scor"));
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dnsentry.example.toml");
    let out = dnsentry().arg("check-config").arg(&example).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dnsentry().args(["replay", "/nonexistent.pcap"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_writes_alarm_file_with_the_documented_schema() {
    let Some(dir) = common::datasets() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let alarms = tmp.path().join("alarms.jsonl");
    let file = dir.join("korving-iodine-file_transfer-null-base32-dnsmasq-1cdbe9.pcap.gz");
    let out = dnsentry().arg("replay").arg(&file).arg("--alarms").arg(&alarms).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&alarms).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    for a in &lines {
        for key in [
            "ts",
            "severity",
            "domain",
            "client",
            "server",
            "score",
            "reasons",
            "tool",
            "sample_qnames",
            "window",
        ] {
            assert!(a.get(key).is_some(), "missing {key} in {a}");
        }
        let ts = a["ts"].as_str().unwrap();
        assert!(ts.starts_with("2022-03-31T") && ts.ends_with('Z') && ts.contains('.'), "{ts}");
        assert!(["info", "low", "high"].contains(&a["severity"].as_str().unwrap()));
        assert!(a["client"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
        for k in ["queries", "unique_names", "subdomain_bytes"] {
            assert!(a["window"][k].is_u64(), "window.{k}");
        }
    }
    assert!(lines
        .iter()
        .any(|a| a["severity"] == "high" && a["tool"] == "iodine" && a["domain"] == "example.attack"));
}
