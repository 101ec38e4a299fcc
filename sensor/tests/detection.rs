//! Detection acceptance on real captures: every tunnel capture raises a `high` alarm for its
//! domain; benign captures raise no `low` or `high` alarm; results do not depend on the number of
//! workers.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dnsentry::config::Config;
use dnsentry::detect::Severity;
use dnsentry::output::alarm::Alarm;
use dnsentry::pipeline::{replay, ReplayReport};

fn run(files: &[PathBuf], workers: usize, shards: usize) -> (Vec<Alarm>, ReplayReport) {
    let mut cfg = Config::default();
    cfg.pipeline.workers = workers;
    cfg.pipeline.shards = shards;
    // Small batches so that several epochs interleave across workers even on small captures.
    cfg.pipeline.batch_frames = 64;
    let alarms = Arc::new(Mutex::new(Vec::new()));
    let sink = alarms.clone();
    let report = replay(&cfg, files, &Default::default(), move |a| sink.lock().unwrap().push(a));
    let alarms = Arc::try_unwrap(alarms).unwrap().into_inner().unwrap();
    (alarms, report)
}

fn check_tunnel(file: &PathBuf, tool: &str, domain: &str) {
    let (alarms, report) = run(std::slice::from_ref(file), 2, 2);
    assert!(report.file_errors.is_empty(), "{file:?}: {:?}", report.file_errors);
    assert!(report.workers.dns_messages() > 100, "{file:?}: too few DNS messages");
    let high: Vec<&Alarm> = alarms
        .iter()
        .filter(|a| a.severity == Severity::High && a.domain.as_deref() == Some(domain))
        .collect();
    assert!(!high.is_empty(), "{file:?} ({tool}): no high alarm for {domain}; alarms: {alarms:#?}");
    let a = high[0];
    assert!(a.score >= 70 && a.score <= 100);
    assert!(!a.reasons.is_empty());
    assert!(!a.sample_qnames.is_empty());
    assert!(a.sample_qnames.iter().all(|q| q.ends_with(domain)));
    assert!(a.window.queries > 0);
    // No other domain in a tunnel capture deserves more than info.
    for a in &alarms {
        if a.domain.as_deref() != Some(domain) {
            assert_eq!(a.severity, Severity::Info, "{file:?}: unexpected alarm {a:#?}");
        }
    }
}

#[test]
fn shared_tunnel_captures_raise_high_alarms() {
    let Some(dir) = common::datasets() else { return };
    let rows: Vec<_> = common::manifest(&dir).into_iter().filter(|(_, tool, _)| tool != "benign").collect();
    assert!(rows.len() >= 8);
    for (file, tool, domain) in rows {
        check_tunnel(&file, &tool, &domain);
    }
}

#[test]
fn shared_tool_attribution() {
    let Some(dir) = common::datasets() else { return };
    for (file, tool, domain) in common::manifest(&dir) {
        if !matches!(tool.as_str(), "iodine" | "dns2tcp" | "dnscat2") {
            continue;
        }
        let (alarms, _) = run(std::slice::from_ref(&file), 1, 1);
        let high = alarms
            .iter()
            .find(|a| a.severity == Severity::High && a.domain.as_deref() == Some(domain.as_str()))
            .expect("high alarm");
        assert_eq!(high.tool, Some(tool.as_str()), "{file:?}");
    }
}

#[test]
fn shared_benign_captures_raise_no_alarm() {
    let Some(dir) = common::datasets() else { return };
    let files: Vec<PathBuf> =
        common::manifest(&dir).into_iter().filter(|(_, tool, _)| tool == "benign").map(|r| r.0).collect();
    assert!(!files.is_empty());
    let (alarms, report) = run(&files, 2, 2);
    assert!(report.workers.dns_messages() > 50_000);
    let bad: Vec<&Alarm> = alarms.iter().filter(|a| a.severity >= Severity::Low).collect();
    assert!(bad.is_empty(), "benign traffic alarmed: {bad:#?}");
}

#[test]
fn own_captures_meet_their_labels() {
    let pcaps = common::own_pcaps();
    if pcaps.is_empty() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "pcaps/LABELS.tsv missing");
        return;
    }
    for (file, class, tool, domain) in pcaps {
        if class == "tunnel" {
            check_tunnel(&file, &tool, &domain);
        } else {
            let (alarms, report) = run(std::slice::from_ref(&file), 2, 2);
            assert!(report.workers.dns_messages() > 100, "{file:?}");
            let bad: Vec<&Alarm> = alarms.iter().filter(|a| a.severity >= Severity::Low).collect();
            assert!(bad.is_empty(), "{file:?}: benign traffic alarmed: {bad:#?}");
        }
    }
}

fn key(a: &Alarm) -> String {
    // Everything but the order in which shards happened to emit.
    serde_json::to_string(a).unwrap()
}

#[test]
fn results_do_not_depend_on_worker_count() {
    let Some(dir) = common::datasets() else { return };
    let mut files: Vec<PathBuf> = common::manifest(&dir).into_iter().map(|r| r.0).collect();
    files.extend(common::own_pcaps().into_iter().map(|r| r.0));
    let (a1, r1) = run(&files, 1, 1);
    assert!(a1.len() >= 8, "expected alarms, got {}", a1.len());
    let mut k1: Vec<String> = a1.iter().map(key).collect();
    k1.sort();
    // Workers and shards each way: more of one than the other, both many, odd counts.
    for (workers, shards) in [(4, 4), (3, 2), (1, 4), (4, 1)] {
        let (a, r) = run(&files, workers, shards);
        let mut k: Vec<String> = a.iter().map(key).collect();
        k.sort();
        assert_eq!(k1, k, "{workers} workers, {shards} shards");
        // Counters agree, except time spent and float sums added in a different order.
        let (mut w1, mut w) = (r1.workers.clone(), r.workers.clone());
        assert!((w1.entropy.sum - w.entropy.sum).abs() < 1e-6 * w1.entropy.sum.max(1.0));
        w.entropy.sum = w1.entropy.sum;
        w1.busy_ns = 0;
        w.busy_ns = 0;
        assert_eq!(w1, w, "{workers} workers, {shards} shards");
        assert_eq!(r1.shards.records, r.shards.records);
        assert_eq!(r1.shards.tx, r.shards.tx, "{workers} workers, {shards} shards");
    }
}

#[test]
fn benign_transport_is_reported_as_info_not_hidden() {
    let benign = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps/benign.pcap");
    if !benign.is_file() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "pcaps/benign.pcap missing");
        return;
    }
    let (alarms, _) = run(&[benign], 2, 2);
    let families: std::collections::BTreeSet<&str> =
        alarms.iter().filter(|a| a.severity == Severity::Info).filter_map(|a| a.benign_family).collect();
    assert!(families.contains("antivirus"), "{families:?}");
    assert!(alarms
        .iter()
        .filter(|a| a.severity == Severity::Info)
        .all(|a| a.reasons.contains(&"benign_transport") && a.benign_family.is_some()));
}
