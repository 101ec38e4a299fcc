//! The detection targets (issue 6) on every labelled capture: fails if one is missed.

mod common;

use std::path::PathBuf;

#[test]
fn every_detection_target_is_met() {
    let cfg = dnsentry::config::Config::default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut labels = dnsentry::eval::read_labels(&root.join("pcaps/LABELS.tsv")).unwrap();
    labels.extend(dnsentry::eval::read_labels(&root.join("pcaps/eval/LABELS.tsv")).unwrap());
    if let Some(dir) = common::datasets() {
        labels.extend(dnsentry::eval::read_labels(&dir.join("MANIFEST.tsv")).unwrap());
    }
    let classes: std::collections::BTreeSet<&str> = labels.iter().map(|l| l.class.as_str()).collect();
    for c in ["tunnel", "slow", "beacon", "nondns", "benign"] {
        assert!(classes.contains(c), "no {c} capture labelled");
    }
    let results: Vec<_> = labels.iter().map(|l| dnsentry::eval::evaluate(&cfg, l)).collect();
    let missed = dnsentry::eval::check_targets(&results);
    assert!(missed.is_empty(), "targets missed:\n{}", missed.join("\n"));
    // The baselines are real detectors, not decoration: they catch the loud tunnels.
    let rita_hits = results
        .iter()
        .filter(|r| r.label.class == "tunnel")
        .filter(|r| {
            r.baselines.iter().any(|(n, o)| *n == "RITA" && o.as_ref().is_some_and(|o| o.severity.is_some()))
        })
        .count();
    assert!(rita_hits >= 10, "RITA baseline fired on {rita_hits} tunnels");
}
