//! Outputs never stop the analysis: an alarm file on a full disk, a closed stdout pipe. Every lost
//! alarm is counted and logged at a bounded rate, the whole capture is still analysed, nothing
//! panics, and the exit status says alarms were lost. (A dead NetFlow collector: netflow_roundtrip;
//! a metrics client that never reads: metrics::server unit test.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dnsentry");

fn pcaps() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "own captures missing in {}", dir.display());
    v
}

fn replay(extra: &[&str], stdout: Stdio) -> std::process::Child {
    Command::new(BIN)
        .arg("replay")
        .args(pcaps())
        .args(extra)
        .args(["--workers", "2"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn line_value(stderr: &str, key: &str) -> Option<u64> {
    stderr.lines().find_map(|l| l.trim().strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

/// (dns messages, alarms written) of a run whose output works.
fn reference(dir: &Path) -> (u64, usize) {
    let file = dir.join("ok.jsonl");
    let out = replay(&["--alarms", file.to_str().unwrap()], Stdio::null()).wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let alarms = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(alarms >= 8, "the own captures raise alarms: {alarms}");
    (line_value(&err, "dns messages:").unwrap(), alarms)
}

/// The run went through every packet, lost `lost` alarms, said so, and did not panic.
fn assert_degraded(out: &Output, dns: u64, lost: usize) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "alarms were lost: exit status 1\n{err}");
    assert_eq!(line_value(&err, "dns messages:"), Some(dns), "the whole capture is analysed\n{err}");
    assert_eq!(line_value(&err, "alarm writes failed:"), Some(lost as u64), "{err}");
    assert!(err.contains(&format!("{lost} alarms could not be written")), "{err}");
    // Logged at a bounded rate: on the 1st, 2nd, 4th, 8th... failure.
    let logged = err.matches("cannot write alarm output").count();
    assert!(
        logged >= 1 && logged <= (lost as f64).log2() as usize + 1,
        "{logged} log lines for {lost}\n{err}"
    );
}

#[test]
fn closed_stdout_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    // `dnsentry replay ... | head -c 0`: the reader is gone before the first alarm.
    let mut child = replay(&[], Stdio::piped());
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_degraded(&out, dns, alarms);
}

#[test]
fn full_disk_dev_full() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    // /dev/full answers every write with ENOSPC.
    let out = replay(&["--alarms", "/dev/full"], Stdio::null()).wait_with_output().unwrap();
    assert_degraded(&out, dns, alarms);
}

/// A tmpfs that fills up part way: the alarms that fit are kept, the rest (and a line cut short by
/// the full disk) are counted.
#[test]
fn full_disk_tmpfs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root: this test must run");
        eprintln!("skipping: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    let mnt = dir.path().join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    let st =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=4k"]).arg("tmpfs").arg(&mnt).status().unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    // One page: room for a few alarms.
    let file = mnt.join("alarms.jsonl");
    let out = replay(&["--alarms", file.to_str().unwrap()], Stdio::null()).wait_with_output().unwrap();
    let mut written = String::new();
    std::fs::File::open(&file).unwrap().read_to_string(&mut written).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    eprintln!("tmpfs: {} of {alarms} alarms fit", lines.len());
    assert!(lines.len() < alarms, "the tmpfs filled up");
    let lost = alarms - lines.iter().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count();
    assert_degraded(&out, dns, lost);
}
