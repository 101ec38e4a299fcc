//! `cargo xtask fuzz [SECS]`: builds the cargo-fuzz targets of `fuzz/`, seeds their corpora from
//! the captures (`pcaps/`, `pcaps/eval/`, `../shared/datasets/`) and the example config, and runs
//! each target for SECS seconds (default 30). A crash is copied into `fuzz/regressions/<target>/`
//! (commit it: `tests/fuzz_regressions.rs` replays that directory on every test run).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

pub const TARGETS: [&str; 6] =
    ["decode", "dns_view", "tcp_reassembly", "capture_reader", "config", "reputation_list"];

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

/// Writes the seed corpora under `target/fuzz-corpus/<target>/` with the `fuzz_seeds` example,
/// which reads the captures with dnsentry's own reader and decoder.
fn seed(root: &Path) -> Result<()> {
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "--release", "--quiet", "-p", "dnsentry", "--example", "fuzz_seeds", "--"])
        .arg(root.join("target/fuzz-corpus"))
        .arg(root)
        .current_dir(root)
        .status()
        .context("cannot run the fuzz_seeds example")?;
    anyhow::ensure!(st.success(), "writing the fuzz seeds failed: {st}");
    Ok(())
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
