//! The end-of-run summary printed on stderr.

use std::fmt::Write;

use crate::decode::Skip;
use crate::detect::Severity;
use crate::dns::DnsError;
use crate::pipeline::ReplayReport;

/// Renders the summary as aligned `key: value` lines.
pub fn render(r: &ReplayReport, alarm_write_failures: u64) -> String {
    let w = &r.workers;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let mut s = String::new();
    let _ = writeln!(s, "dnsentry replay summary");
    let _ = writeln!(s, "  files:            {} ({} unreadable)", r.files, r.file_errors.len());
    let _ = writeln!(s, "  packets:          {} ({} bytes)", w.frames, w.bytes);
    let _ = writeln!(
        s,
        "  dns messages:     {} (udp {} queries / {} responses, tcp {} queries / {} responses)",
        w.dns_messages(),
        w.messages_of(false, false),
        w.messages_of(true, false),
        w.messages_of(false, true),
        w.messages_of(true, true)
    );
    let mut skipped: Vec<String> = Skip::ALL
        .iter()
        .filter(|k| w.skipped[k.index()] > 0)
        .map(|k| format!("{} {}", k.code(), w.skipped[k.index()]))
        .collect();
    if w.unsupported_link > 0 {
        skipped.push(format!("unsupported_link {}", w.unsupported_link));
    }
    let _ = writeln!(
        s,
        "  skipped packets:  {}",
        if skipped.is_empty() { "none".into() } else { skipped.join(", ") }
    );
    let mut errors: Vec<String> = DnsError::ALL
        .iter()
        .filter(|k| w.dns_errors[k.index()] > 0)
        .map(|k| format!("{} {}", k.code(), w.dns_errors[k.index()]))
        .collect();
    if w.no_question > 0 {
        errors.push(format!("dns_no_question {}", w.no_question));
    }
    let _ = writeln!(
        s,
        "  parse errors:     {} ({})",
        w.parse_errors(),
        if errors.is_empty() { "none".into() } else { errors.join(", ") }
    );
    let t = &w.tcp;
    let _ = writeln!(
        s,
        "  tcp reassembly:   {} messages, {} gaps, {} duplicates, {} overflows, {} table full, {} idle evictions",
        t.messages, t.gaps, t.duplicate_segments, t.buffer_overflows, t.table_full, t.idle_evictions
    );
    let sh = &r.shards;
    let _ = writeln!(
        s,
        "  state:            {} domains, {} client-domain pairs ({} / {} evicted)",
        sh.domains, sh.pairs, sh.domains_evicted, sh.pairs_evicted
    );
    if sh.merges > 0 {
        // Combining before the shard: how many messages one merge folded, on average.
        let _ = writeln!(
            s,
            "  shard merges:     {} domain merges, {:.1} messages each",
            sh.merges,
            sh.merged as f64 / sh.merges as f64
        );
    }
    let alarms: Vec<String> =
        Severity::ALL.iter().rev().map(|v| format!("{} {}", v.code(), sh.alarms[*v as usize])).collect();
    let _ = writeln!(s, "  alarms:           {}", alarms.join(", "));
    if !sh.reputation_hits.is_empty() {
        let hits: Vec<String> = sh
            .reputation_hits
            .iter()
            .map(|((list, category), n)| format!("{list} ({category}) {n}"))
            .collect();
        let _ = writeln!(s, "  reputation hits:  {}", hits.join(", "));
    }
    if alarm_write_failures > 0 {
        let _ = writeln!(s, "  alarm writes failed: {alarm_write_failures}");
    }
    let _ = writeln!(
        s,
        "  elapsed:          {:.3} s, {:.0} packets/s ({} workers, {} shards)",
        secs,
        w.frames as f64 / secs,
        r.worker_count,
        r.shard_count
    );
    s
}
