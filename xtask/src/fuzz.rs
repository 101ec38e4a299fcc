//! `cargo xtask fuzz [SECS]`: builds the cargo-fuzz targets of `fuzz/`, seeds their corpora from
//! the captures (`pcaps/`, `pcaps/eval/`, `../shared/datasets/`) and the example config, and runs
//! each target for SECS seconds (default 30). A crash is copied into `fuzz/regressions/<target>/`
//! (commit it: `tests/fuzz_regressions.rs` replays that directory on every test run).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

pub const TARGETS: [&str; 5] = ["decode", "dns_view", "tcp_reassembly", "capture_reader", "config"];
/// Seeds per target, at most.
const MAX_SEEDS: usize = 3000;

/// libFuzzer instrumentation without a sanitizer (the parsers are safe Rust: the fuzzer looks for
/// panics, overflows with debug assertions on, unbounded loops and memory), nightly toolchain.
fn cargo_fuzz(root: &Path, sub: &str) -> Command {
    let mut c = Command::new("rustup");
    c.args([
        "run",
        "nightly",
        "cargo",
        "fuzz",
        sub,
        "--sanitizer",
        "none",
        "--debug-assertions",
        "--target-dir",
    ])
    .arg(root.join("target/fuzz"))
    .current_dir(root.join("fuzz"))
    // The XDP program is not needed by the parsers; skip its nested build.
    .env("AYA_BUILD_SKIP", "1");
    c
}

/// Frames (pcap link type, bytes) of a classic pcap or a pcapng file; unknown formats give none.
fn frames(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let Some(b) = read_capture(path) else { return Vec::new() };
    let mut out = Vec::new();
    let u32_at = |b: &[u8], i: usize, le: bool| -> Option<u32> {
        let s: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    };
    match b.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1])
        | Some([0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d]) => {
            let le = b[0] != 0xa1;
            let link = u32_at(&b, 20, le).unwrap_or(0);
            let mut i = 24;
            while let Some(cap) = u32_at(&b, i + 8, le) {
                let Some(data) = b.get(i + 16..i + 16 + cap as usize) else { break };
                out.push((link, data.to_vec()));
                i += 16 + cap as usize;
            }
        }
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
            let le = b.get(8..12) == Some(&[0x4d, 0x3c, 0x2b, 0x1a]);
            let (mut links, mut i) = (Vec::new(), 0);
            while let (Some(kind), Some(len)) = (u32_at(&b, i, le), u32_at(&b, i + 4, le)) {
                if len < 12 {
                    break;
                }
                match kind {
                    0x0a0d_0d0a => links.clear(),
                    1 => {
                        let lt = b.get(i + 8..i + 10).map_or(0, |x| {
                            if le {
                                u16::from_le_bytes([x[0], x[1]])
                            } else {
                                u16::from_be_bytes([x[0], x[1]])
                            }
                        });
                        links.push(u32::from(lt));
                    }
                    6 => {
                        let iface = u32_at(&b, i + 8, le).unwrap_or(0) as usize;
                        let cap = u32_at(&b, i + 20, le).unwrap_or(0) as usize;
                        if let Some(data) = b.get(i + 28..i + 28 + cap) {
                            out.push((links.get(iface).copied().unwrap_or(1), data.to_vec()));
                        }
                    }
                    _ => {}
                }
                i += len as usize;
            }
        }
        _ => {}
    }
    out
}

/// A capture's bytes, gunzipped (with the system's gzip) when the name ends in `.gz`.
fn read_capture(path: &Path) -> Option<Vec<u8>> {
    if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("gzip").arg("-dc").arg(path).output().ok()?;
        return out.status.success().then_some(out.stdout);
    }
    std::fs::read(path).ok()
}

/// The UDP payload of an Ethernet/IPv4 frame on port 53.
fn dns_payload(f: &[u8]) -> Option<&[u8]> {
    let mut l2 = 12;
    while f.get(l2..l2 + 2)? == [0x81, 0x00] {
        l2 += 4;
    }
    if f.get(l2..l2 + 2)? != [0x08, 0x00] {
        return None;
    }
    let ip = l2 + 2;
    let ihl = usize::from(f.get(ip)? & 0x0f) * 4;
    if *f.get(ip + 9)? != 17 {
        return None;
    }
    let udp = ip + ihl;
    let ports = f.get(udp..udp + 4)?;
    if ports[..2] != [0, 53] && ports[2..] != [0, 53] {
        return None;
    }
    f.get(udp + 8..)
}

fn captures(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [root.join("pcaps"), root.join("pcaps/eval"), root.join("../shared/datasets")] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            v.extend(files.into_iter().filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                [".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz"].iter().any(|e| name.ends_with(e))
            }));
        }
    }
    v
}

/// Writes the seed corpora under `target/fuzz-corpus/<target>/`; returns seeds per target.
fn seed(root: &Path) -> Result<Vec<(String, usize)>> {
    let base = root.join("target/fuzz-corpus");
    let mut sets: Vec<(&str, Vec<Vec<u8>>)> = TARGETS.iter().map(|t| (*t, Vec::new())).collect();
    let files = captures(root);
    // Spread the seeds over the files, so every capture contributes.
    let per_file = (MAX_SEEDS / files.len().max(1)).max(20);
    for path in &files {
        let (mut frames_taken, mut payloads_taken) = (0, 0);
        for (link, f) in frames(path) {
            if frames_taken >= per_file && payloads_taken >= per_file {
                break;
            }
            let sel = match link {
                1 => 0u8,
                101 | 12 | 14 => 1,
                113 => 2,
                276 => 3,
                _ => 4,
            };
            // The decode target's framing: [link selector][length: u16 BE][frame].
            let mut d = vec![sel, (f.len() >> 8) as u8, f.len() as u8];
            d.extend_from_slice(&f);
            if frames_taken < per_file {
                sets[0].1.push(d);
                frames_taken += 1;
            }
            if let Some(p) = (link == 1 && payloads_taken < per_file).then(|| dns_payload(&f)).flatten() {
                sets[1].1.push(p.to_vec());
                payloads_taken += 1;
            }
        }
        // File heads: as stored (gzip included) and decompressed.
        if let Ok(b) = std::fs::read(path) {
            sets[3].1.push(b[..b.len().min(4096)].to_vec());
        }
        if let Some(b) = read_capture(path).filter(|_| path.extension().is_some_and(|e| e == "gz")) {
            sets[3].1.push(b[..b.len().min(4096)].to_vec());
        }
    }
    sets[4].1.push(std::fs::read(root.join("dnsentry.example.toml")).context("dnsentry.example.toml")?);
    sets[4].1.push(
        b"[detect]\nlow_score = 30\nhigh_score = 60\n[allowlist]\nextra = [\"example.org\"]\n".to_vec(),
    );
    sets[2].1.push(vec![0, 0, 0, 14, 0, 12, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let mut counts = Vec::new();
    for (t, seeds) in sets {
        let dir = base.join(t);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut seen = HashSet::new();
        for s in seeds.into_iter().filter(|s| !s.is_empty()) {
            if seen.len() >= MAX_SEEDS || !seen.insert(s.clone()) {
                continue;
            }
            std::fs::write(dir.join(format!("seed-{}", seen.len())), &s)?;
        }
        counts.push((t.to_string(), seen.len()));
    }
    eprintln!("xtask fuzz: seeds from {} captures: {counts:?}", files.len());
    Ok(counts)
}

/// Builds and runs every target for `secs` seconds; returns (passed, failed) targets.
pub fn run(root: &Path, secs: u64) -> Result<(u64, u64)> {
    seed(root)?;
    let st = cargo_fuzz(root, "build")
        .status()
        .context("cannot run cargo fuzz (cargo xtask setup installs it)")?;
    anyhow::ensure!(st.success(), "building the fuzz targets failed: {st}");
    let (mut passed, mut failed) = (0, 0);
    for t in TARGETS {
        let artifacts = root.join("target/fuzz-artifacts").join(t);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)?;
        let regressions = root.join("fuzz/regressions").join(t);
        std::fs::create_dir_all(&regressions)?;
        let mut cmd = cargo_fuzz(root, "run");
        cmd.arg(t)
            .arg(root.join("target/fuzz-corpus").join(t))
            .arg(&regressions)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        let out = cmd.output().with_context(|| format!("cannot run fuzz target {t}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        let runs = err
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        let cov = err
            .lines()
            .rev()
            .find_map(|l| l.split(" cov: ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        if out.status.success() {
            println!("fuzz {t} ... ok ({runs} runs in {secs} s, coverage {cov})");
            passed += 1;
        } else {
            failed += 1;
            println!("fuzz {t} ... FAILED");
            eprintln!(
                "{}",
                err.lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            for a in std::fs::read_dir(&artifacts)?.flatten() {
                let to = regressions.join(a.file_name());
                std::fs::copy(a.path(), &to)?;
                println!(
                    "fuzz {t}: crash input saved as {} (commit it: it becomes a regression test)",
                    to.display()
                );
            }
        }
    }
    Ok((passed, failed))
}
