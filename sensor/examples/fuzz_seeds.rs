//! Writes the fuzz targets' seed corpora (used by `cargo xtask fuzz`):
//! `fuzz_seeds OUT_DIR REPO_ROOT`. Frames and their DNS payloads come from every capture in
//! `pcaps/`, `pcaps/eval/` and `../shared/datasets/`, read and decoded by dnsentry's own reader and
//! decoder; file heads (gzip ones also decompressed) seed the capture reader; the example config
//! seeds the config parser.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use dnsentry::capture::pcap::read_file;
use dnsentry::decode::{decode, PortSet};
use dnsentry::fuzzing::{decode_input, TARGETS};

/// Seeds per target, at most.
const MAX_SEEDS: usize = 3000;

fn captures(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [root.join("pcaps"), root.join("pcaps/eval"), root.join("../shared/datasets")] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        v.extend(files.into_iter().filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            [".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz"].iter().any(|e| name.ends_with(e))
        }));
    }
    v
}

fn head(path: &Path) -> Vec<Vec<u8>> {
    let Ok(raw) = std::fs::read(path) else { return Vec::new() };
    let mut heads = vec![raw[..raw.len().min(4096)].to_vec()];
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(&raw[..]).take(4096).read_to_end(&mut plain);
        heads.push(plain);
    }
    heads
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(out), Some(root)) = (args.next(), args.next()) else {
        return Err("usage: fuzz_seeds OUT_DIR REPO_ROOT".into());
    };
    let mut sets: Vec<(&str, Vec<Vec<u8>>)> = TARGETS.iter().map(|(t, _)| (*t, Vec::new())).collect();
    let set = |name: &str| TARGETS.iter().position(|(t, _)| *t == name).expect("target");
    let (dec, view, tcp, reader, config) =
        (set("decode"), set("dns_view"), set("tcp_reassembly"), set("capture_reader"), set("config"));
    let files = captures(&root);
    // Spread the seeds over the files, so every capture contributes.
    let per_file = (MAX_SEEDS / files.len().max(1)).max(20);
    let ports = PortSet::new(&[53]);
    for path in &files {
        let (mut frames, mut payloads) = (Vec::new(), Vec::new());
        let _ = read_file(path, Arc::new(AtomicU64::new(0)), |f| {
            if frames.len() < per_file {
                frames.push(decode_input(f.link, f.data));
            }
            if let (Some(link), true) = (f.link, payloads.len() < per_file) {
                if let Ok(p) = decode(link, f.data, &ports) {
                    if p.tcp.is_none() {
                        payloads.push(p.payload.to_vec());
                    }
                }
            }
        });
        sets[dec].1.extend(frames);
        sets[view].1.extend(payloads);
        sets[reader].1.extend(head(path));
    }
    sets[config].1.push(std::fs::read(root.join("dnsentry.example.toml"))?);
    sets[config].1.push(
        b"[detect]\nlow_score = 30\nhigh_score = 60\n[allowlist]\nextra = [\"example.org\"]\n".to_vec(),
    );
    sets[tcp].1.push(vec![0, 0, 0, 14, 0, 12, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let mut counts = Vec::new();
    for (t, seeds) in sets {
        let dir = out.join(t);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut seen = HashSet::new();
        for s in seeds.into_iter().filter(|s| !s.is_empty()) {
            if seen.len() < MAX_SEEDS && seen.insert(s.clone()) {
                std::fs::write(dir.join(format!("seed-{}", seen.len())), &s)?;
            }
        }
        counts.push((t, seen.len()));
    }
    eprintln!("fuzz seeds from {} captures: {counts:?}", files.len());
    Ok(())
}
