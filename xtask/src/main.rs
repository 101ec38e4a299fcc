//! Build, set-up and test orchestration: `cargo xtask <command>`.
//!
//! Every command that needs tools first runs the idempotent set-up (Debian packages from
//! `scripts/apt-packages.txt`, rustup components, the eBPF toolchain from `scripts/setup-ebpf.sh`),
//! so the README's two commands work on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod fuzz;

const HELP: &str = "\
cargo xtask <command>

  demo     set up, build, and replay the bundled captures (pcaps/): alarms on stdout, summary on stderr
  test     set up, then the whole suite: fmt --check, clippy -D warnings, unit + integration tests
  setup    install what is missing (Debian packages, rustup components, bpf-linker); idempotent
  pcaps    regenerate pcaps/ with the real tools (iodine, dns2tcp, unbound, nsd) in network namespaces (root)
  bench    run the criterion benchmarks (numbers for docs/performance.md)
  bench-scale [--workers 1,2,4,...] [--capture FILE]... [--reps N]
           build the release binary, then replay throughput per worker count on real benign DNS
           replicated to 3 M packets, a 1 M random-subdomain one-domain flood and 1 M registered
           domains, with `tcpdump -r` as the floor (scripts/bench-scale.sh; reads nproc)
  fuzz [SECS]
           build the cargo-fuzz targets (fuzz/) and run each for SECS seconds (default 30); crashes
           are saved under fuzz/regressions/ and replayed by the test suite
  deb      build target/debian/dnsentry_VERSION_amd64.deb (cargo-deb; packaging/README.md)
  eval     replay every labelled capture (pcaps/, pcaps/eval/, ../shared/datasets/) through dnsentry
           and the deployed-rule baselines; writes the results into docs/detection.md
";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn setup() -> Result<()> {
    // Debian packages (scripts/setup.sh), then the eBPF toolchain live capture builds with: the
    // nightly's rust-src and bpf-linker (scripts/setup-ebpf.sh runs setup.sh first).
    run(Command::new("bash").arg(root().join("scripts/setup-ebpf.sh")))?;
    // cargo-fuzz (pinned) for the fuzz targets; it drives the nightly that setup-ebpf.sh installed.
    let have_fuzz = Command::new("cargo-fuzz").arg("--version").output();
    if !have_fuzz.is_ok_and(|o| o.status.success()) {
        run(cargo().args(["install", "cargo-fuzz", "--version", "0.13.2", "--locked"]))?;
    }
    // cargo-deb (pinned) builds the Debian package (`cargo xtask deb`).
    let have_deb = Command::new("cargo-deb").arg("--version").output();
    if !have_deb.is_ok_and(|o| o.status.success()) {
        run(cargo().args(["install", "cargo-deb", "--version", "3.8.0", "--locked"]))?;
    }
    // rustfmt and clippy come with the default rustup profile, but not with every install.
    let have = Command::new("rustup").args(["component", "list", "--installed"]).output();
    if let Ok(out) = have {
        let list = String::from_utf8_lossy(&out.stdout);
        for c in ["rustfmt", "clippy"] {
            if !list.lines().any(|l| l.starts_with(c)) {
                run(Command::new("rustup").args(["component", "add", c]))?;
            }
        }
    }
    Ok(())
}

fn demo() -> Result<()> {
    setup()?;
    run(cargo().args(["build", "--release", "--package", "dnsentry"]))?;
    let pcaps = root().join("pcaps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&pcaps)
        .with_context(|| format!("cannot list {}", pcaps.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng" || x == "gz"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no captures in {}", pcaps.display());
    }
    eprintln!(
        "xtask: replaying {} bundled captures; alarms follow (JSON lines), then the summary",
        files.len()
    );
    run(Command::new(root().join("target/release/dnsentry")).arg("replay").args(&files))
}

/// Runs `cargo test`, echoing its output, and returns the (passed, failed) totals of all its
/// test binaries.
fn cargo_test(args: &[&str]) -> Result<(u64, u64, bool)> {
    use std::io::{BufRead, BufReader};
    let mut cmd = cargo();
    cmd.arg("test").args(args).current_dir(root()).stdout(std::process::Stdio::piped());
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd.spawn().context("cannot run cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    let out = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        // "test result: ok. 12 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    match (n.parse::<u64>(), what) {
                        (Ok(n), "passed") => passed += n,
                        (Ok(n), "failed") => failed += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let ok = child.wait()?.success();
    Ok((passed, failed, ok))
}

fn test() -> Result<()> {
    setup()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--release", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let (mut passed, mut failed, ok) = cargo_test(&["--release", "--workspace", "--no-fail-fast"])?;
    // Each fuzz target for a bounded time (DNSENTRY_FUZZ_SECS, default 30); each counts as a test.
    let secs = std::env::var("DNSENTRY_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    if secs > 0 {
        let (p, f) = fuzz::run(&root(), secs)?;
        passed += p;
        failed += f;
    }
    // The Debian package: installed, checked, removed and purged in a throwaway root, and lintian.
    let package =
        deb().and_then(|p| run(Command::new("bash").arg(root().join("scripts/test-package.sh")).arg(p)));
    match package {
        Ok(()) => passed += 1,
        Err(e) => {
            eprintln!("xtask: package test failed: {e:#}");
            failed += 1;
        }
    }
    // One closing line for the whole suite, whatever order the test binaries ran in.
    println!("total: {passed} passed, {failed} failed");
    if !ok || failed > 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// Builds the release binary, its manual pages, then the Debian package (stripped); returns the
/// package's path.
fn deb() -> Result<PathBuf> {
    setup()?;
    run(cargo().args(["build", "--release", "--package", "dnsentry"]))?;
    let man = root().join("target/man");
    let _ = std::fs::remove_dir_all(&man);
    run(Command::new(root().join("target/release/dnsentry")).arg("manpages").arg(&man))?;
    for e in std::fs::read_dir(&man)? {
        run(Command::new("gzip").args(["-9", "-n", "-f"]).arg(e?.path()))?;
    }
    let out = cargo()
        .args(["deb", "--package", "dnsentry", "--no-build", "--strip"])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo deb")?;
    if !out.status.success() {
        bail!("cargo deb failed: {}", out.status);
    }
    let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    anyhow::ensure!(path.ends_with(".deb"), "cargo deb printed no package path");
    Ok(PathBuf::from(path))
}

fn pcaps() -> Result<()> {
    run(Command::new("bash").arg(root().join("scripts/make-pcaps.sh")).arg(root().join("pcaps")))?;
    run(Command::new("bash").arg(root().join("scripts/make-eval-pcaps.sh")).arg(root().join("pcaps/eval")))
}

fn eval() -> Result<()> {
    let r = root();
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "-p", "dnsentry", "--", "eval", "--out"])
        .arg(r.join("docs/detection.md"))
        .arg("--labels")
        .arg(r.join("pcaps/LABELS.tsv"))
        .arg("--labels")
        .arg(r.join("pcaps/eval/LABELS.tsv"));
    let shared = r.join("../shared/datasets/MANIFEST.tsv");
    if shared.is_file() {
        cmd.arg("--labels").arg(shared);
    }
    run(&mut cmd)
}

fn bench() -> Result<()> {
    run(cargo().args(["bench", "--package", "dnsentry", "--bench", "pipeline"]))
}

fn bench_scale() -> Result<()> {
    run(cargo().args(["build", "--release", "--package", "dnsentry"]))?;
    run(Command::new("bash").arg(root().join("scripts/bench-scale.sh")).args(std::env::args().skip(2)))
}

fn main() -> Result<()> {
    let cmd = std::env::args().nth(1).unwrap_or_default();
    match cmd.as_str() {
        "demo" => demo(),
        "test" => test(),
        "setup" => setup(),
        "pcaps" => pcaps(),
        "bench" => bench(),
        "bench-scale" => bench_scale(),
        "eval" => eval(),
        "deb" => deb().map(|p| println!("{}", p.display())),
        "fuzz" => {
            setup()?;
            let secs =
                std::env::args().nth(2).map(|s| s.parse()).transpose().context("SECS must be a number")?;
            let (p, f) = fuzz::run(&root(), secs.unwrap_or(30))?;
            println!("fuzz: {p} passed, {f} failed");
            if f > 0 {
                bail!("{f} fuzz targets found crashes");
            }
            Ok(())
        }
        "" | "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}
