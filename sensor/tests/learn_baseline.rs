//! `dnsentry learn` writes the domains that alarm on (supposedly) attack-free traffic;
//! `--baseline` then reports them as info, never hiding them.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn learned_domains_are_demoted_to_info_not_hidden() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // Pretend a slow hex-encoded telemetry feed is this network's normal traffic.
    let capture = root.join("pcaps/eval/slow-hex-1Bps.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let baseline = tmp.path().join("baseline.txt");
    let bin = env!("CARGO_BIN_EXE_dnsentry");
    let out = Command::new(bin).arg("learn").arg(&capture).arg("-o").arg(&baseline).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(text.lines().any(|l| l.starts_with("slow-hex.test")), "{text}");

    let alarms = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out = Command::new(bin).arg("replay").arg(&capture).args(extra).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let before = alarms(&[]);
    assert!(before.iter().any(|a| a["severity"] == "high" && a["domain"] == "slow-hex.test"));
    let after = alarms(&["--baseline", baseline.to_str().unwrap()]);
    let mine: Vec<_> = after.iter().filter(|a| a["domain"] == "slow-hex.test").collect();
    assert!(!mine.is_empty(), "baselined domain hidden");
    for a in mine {
        assert_eq!(a["severity"], "info");
        assert!(a["reasons"].as_array().unwrap().iter().any(|r| r == "learned_baseline"));
    }
}
