//! Builds the metric families of docs/metrics.md from the published snapshots.

use std::sync::atomic::Ordering;

use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Encoder;

use super::hist::{Hist, ENTROPY_BOUNDS, QNAME_LEN_BOUNDS, RESPONSE_SIZE_BOUNDS, SCORE_BOUNDS};
use super::labels::{qtype_label, rcode_label, QTYPE_SLOTS, RCODE_SLOTS};
use super::{DropStage, ReloadOutcome, Telemetry};
use crate::aggregate::{ShardStats, Suspect};
use crate::decode::Skip;
use crate::detect::reason::Reason;
use crate::dns::DnsError;
use crate::worker::WorkerStats;

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metric: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.metric = metric;
    f
}

fn counter(pairs: &[(&str, &str)], v: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v as f64);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn histogram<const N: usize>(h: &Hist<N>, bounds: &[f64; N]) -> Metric {
    let mut out = Histogram::default();
    let mut cumulative = 0;
    for (count, bound) in h.counts.iter().zip(bounds) {
        cumulative += count;
        let mut b = Bucket::default();
        b.set_cumulative_count(cumulative);
        b.set_upper_bound(*bound);
        out.bucket.push(b);
    }
    out.set_sample_count(h.count());
    out.set_sample_sum(h.sum);
    let mut m = Metric::default();
    m.set_histogram(out);
    m
}

fn counters(name: &str, help: &str, rows: Vec<(Vec<(&str, &str)>, u64)>) -> MetricFamily {
    family(name, help, MetricType::COUNTER, rows.iter().map(|(l, v)| counter(l, *v)).collect())
}

/// Collects every family: dnsentry's own and the process collector's.
pub fn gather(t: &Telemetry) -> Vec<MetricFamily> {
    let workers: Vec<WorkerStats> =
        t.workers.iter().map(|w| w.lock().map(|s| s.clone()).unwrap_or_default()).collect();
    let mut total = WorkerStats::default();
    for w in &workers {
        total.merge(w);
    }
    let mut shards = ShardStats::default();
    let mut suspects: Vec<Suspect> = Vec::new();
    for s in &t.shards {
        if let Ok(snap) = s.lock() {
            shards.merge(&snap.stats);
            suspects.extend(snap.suspects.iter().cloned());
        }
    }
    let ids: Vec<String> = (0..workers.len()).map(|i| i.to_string()).collect();
    let mut out = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    out.push(family(
        "dnsentry_build_info",
        "Build information; always 1.",
        MetricType::GAUGE,
        vec![gauge(&[("version", version)], 1.0)],
    ));
    let per_worker = |f: &dyn Fn(&WorkerStats) -> u64| -> Vec<(Vec<(&str, &str)>, u64)> {
        workers.iter().zip(&ids).map(|(w, id)| (vec![("worker", id.as_str())], f(w))).collect()
    };
    out.push(counters(
        "dnsentry_packets_total",
        "Frames handed to a decode worker.",
        per_worker(&|w| w.frames),
    ));
    out.push(counters(
        "dnsentry_bytes_total",
        "Bytes of the frames handed to a decode worker.",
        per_worker(&|w| w.bytes),
    ));
    out.push(family(
        "dnsentry_worker_busy_seconds_total",
        "Time a worker spent decoding.",
        MetricType::COUNTER,
        workers
            .iter()
            .zip(&ids)
            .map(|(w, id)| {
                let mut m = counter(&[("worker", id)], 0);
                let mut c = Counter::default();
                c.set_value(w.busy_ns as f64 / 1e9);
                m.set_counter(c);
                m
            })
            .collect(),
    ));
    let mut skipped: Vec<(Vec<(&str, &str)>, u64)> =
        Skip::ALL.iter().map(|k| (vec![("reason", k.code())], total.skipped[k.index()])).collect();
    skipped.push((vec![("reason", "unsupported_link")], total.unsupported_link));
    out.push(counters(
        "dnsentry_packets_skipped_total",
        "Frames that carried no DNS message, by reason.",
        skipped,
    ));
    let mut msgs = Vec::new();
    for (ri, dir) in ["query", "response"].iter().enumerate() {
        for (ti, tr) in ["udp", "tcp"].iter().enumerate() {
            for (fi, fam) in ["ipv4", "ipv6"].iter().enumerate() {
                msgs.push((
                    vec![("direction", *dir), ("transport", *tr), ("family", *fam)],
                    total.messages[ri][ti][fi],
                ));
            }
        }
    }
    out.push(counters("dnsentry_dns_messages_total", "DNS messages decoded.", msgs));
    out.push(counters(
        "dnsentry_dns_queries_total",
        "DNS queries by type.",
        (0..QTYPE_SLOTS).map(|i| (vec![("qtype", qtype_label(i))], total.qtypes[i])).collect(),
    ));
    out.push(counters(
        "dnsentry_dns_responses_total",
        "DNS responses by response code.",
        (0..RCODE_SLOTS).map(|i| (vec![("rcode", rcode_label(i))], total.rcodes[i])).collect(),
    ));
    out.push(counters(
        "dnsentry_dns_unanswered_queries_total",
        "Queries with no response within the transaction timeout.",
        vec![(vec![], shards.tx.unanswered)],
    ));
    let mut errors: Vec<(Vec<(&str, &str)>, u64)> =
        DnsError::ALL.iter().map(|k| (vec![("kind", k.code())], total.dns_errors[k.index()])).collect();
    errors.push((vec![("kind", "dns_no_question")], total.no_question));
    out.push(counters("dnsentry_parse_errors_total", "Messages on DNS ports that did not parse.", errors));
    let tcp = &total.tcp;
    out.push(counters(
        "dnsentry_tcp_reassembly_drops_total",
        "Partial DNS-over-TCP messages lost.",
        vec![
            (vec![("reason", "gap")], tcp.gaps),
            (vec![("reason", "overflow")], tcp.buffer_overflows),
            (vec![("reason", "table_full")], tcp.table_full),
            (vec![("reason", "idle")], tcp.idle_evictions),
        ],
    ));
    let hist = |name: &str, help: &str, m: Metric| family(name, help, MetricType::HISTOGRAM, vec![m]);
    out.push(hist(
        "dnsentry_qname_length_chars",
        "Length of query names.",
        histogram(&total.qname_len, &QNAME_LEN_BOUNDS),
    ));
    out.push(hist(
        "dnsentry_qname_entropy",
        "Shannon entropy per character of query subdomains.",
        histogram(&total.entropy, &ENTROPY_BOUNDS),
    ));
    out.push(hist(
        "dnsentry_response_size_bytes",
        "Size of DNS responses.",
        histogram(&total.response_size, &RESPONSE_SIZE_BOUNDS),
    ));
    out.push(hist(
        "dnsentry_alarm_score",
        "Score of raised alarms.",
        histogram(&shards.alarm_scores, &SCORE_BOUNDS),
    ));
    out.push(counters(
        "dnsentry_alarms_total",
        "Alarms raised, by severity.",
        crate::detect::Severity::ALL
            .iter()
            .map(|s| (vec![("severity", s.code())], shards.alarms[*s as usize]))
            .collect(),
    ));
    out.push(counters(
        "dnsentry_alarm_reasons_total",
        "Reasons of raised alarms.",
        Reason::ALL.iter().map(|r| (vec![("reason", r.code())], shards.alarm_reasons[*r as usize])).collect(),
    ));
    let lists = t.reputation_lists();
    out.push(family(
        "dnsentry_reputation_entries",
        "Domains each reputation list contributed (a name in several lists counts in the first).",
        MetricType::GAUGE,
        lists.iter().map(|(l, _, n)| gauge(&[("list", l)], *n as f64)).collect(),
    ));
    // Every loaded list has a series from the start (so rate() works), and a list a reload
    // removed keeps the hits it had.
    let mut hits = shards.reputation_hits.clone();
    for (l, c, _) in &lists {
        hits.entry((l.clone(), c)).or_default();
    }
    out.push(counters(
        "dnsentry_reputation_hits_total",
        "DNS messages (queries and responses) naming a domain on a reputation list.",
        hits.iter().map(|((l, c), n)| (vec![("list", l.as_str()), ("category", *c)], *n)).collect(),
    ));
    let active = |sev: crate::detect::Severity| suspects.iter().filter(|s| s.severity == sev).count() as f64;
    out.push(family(
        "dnsentry_suspect_domains",
        "Domains whose last alarm of that severity is within the suppression interval.",
        MetricType::GAUGE,
        vec![
            gauge(&[("severity", "low")], active(crate::detect::Severity::Low)),
            gauge(&[("severity", "high")], active(crate::detect::Severity::High)),
        ],
    ));
    suspects.sort_by(|a, b| b.score.cmp(&a.score).then(a.domain.cmp(&b.domain)));
    suspects.truncate(t.top_suspects);
    out.push(family(
        "dnsentry_suspect_domain_score",
        "Score of the top-K suspect domains (bounded label set).",
        MetricType::GAUGE,
        suspects
            .iter()
            .map(|s| gauge(&[("domain", &s.domain), ("severity", s.severity.code())], s.score as f64))
            .collect(),
    ));
    let tcp_flows = total.tcp_flows;
    out.push(family(
        "dnsentry_state_entries",
        "Entries in the state tables.",
        MetricType::GAUGE,
        vec![
            gauge(&[("table", "domains")], shards.domains as f64),
            gauge(&[("table", "client_domains")], shards.pairs as f64),
            gauge(&[("table", "pending_queries")], shards.pending_queries as f64),
            gauge(&[("table", "tcp_flows")], tcp_flows as f64),
        ],
    ));
    out.push(counters(
        "dnsentry_state_evictions_total",
        "State-table entries evicted because a table was full.",
        vec![
            (vec![("table", "domains")], shards.domains_evicted),
            (vec![("table", "client_domains")], shards.pairs_evicted),
            (vec![("table", "pending_queries")], shards.tx.evicted),
        ],
    ));
    out.push(counters(
        "dnsentry_channel_drops_total",
        "Records or frames dropped because a bounded channel was full.",
        DropStage::ALL.iter().map(|&s| (vec![("stage", s.label())], t.drops(s))).collect(),
    ));
    out.push(counters(
        "dnsentry_alarm_write_errors_total",
        "Alarms that could not be written.",
        vec![(vec![], t.alarm_write_errors.load(Ordering::Relaxed))],
    ));
    let outputs = t.alarm_outputs();
    for (name, help, get) in [
        (
            "dnsentry_alarm_output_sent_total",
            "Alarms sent to a syslog destination.",
            (|c: &crate::output::syslog::OutputCounts| c.sent)
                as fn(&crate::output::syslog::OutputCounts) -> u64,
        ),
        (
            "dnsentry_alarm_output_dropped_total",
            "Alarms a syslog destination lost: queue full, failed UDP send, undelivered at exit.",
            |c| c.dropped,
        ),
        (
            "dnsentry_alarm_output_errors_total",
            "Failed connections and sends to a syslog destination (TCP sends are retried).",
            |c| c.errors,
        ),
    ] {
        out.push(counters(
            name,
            help,
            outputs.iter().map(|c| (vec![("output", c.name.as_str())], get(c))).collect(),
        ));
    }
    out.push(counters(
        "dnsentry_config_reloads_total",
        "Configuration reloads.",
        vec![
            (vec![("result", ReloadOutcome::Success.label())], t.reloads(ReloadOutcome::Success)),
            (vec![("result", ReloadOutcome::Failure.label())], t.reloads(ReloadOutcome::Failure)),
        ],
    ));
    out.push(counters(
        "dnsentry_metrics_requests_total",
        "Connections to this endpoint: served, refused because all slots were busy, failed (timeout, bad request).",
        ["served", "busy", "failed"]
            .iter()
            .zip(&t.metrics_requests)
            .map(|(r, c)| (vec![("result", *r)], c.load(Ordering::Relaxed)))
            .collect(),
    ));
    if let Ok(Some(live)) = t.live.lock().as_deref() {
        out.push(counters(
            "dnsentry_xdp_packets_total",
            "XDP program counters.",
            live.xdp.iter().map(|(a, v)| (vec![("action", *a)], *v)).collect(),
        ));
        let names = [
            ("dnsentry_afxdp_rx_dropped_total", "Frames the kernel dropped for an AF_XDP socket."),
            ("dnsentry_afxdp_rx_ring_full_total", "Frames dropped because the RX ring was full."),
            ("dnsentry_afxdp_fill_ring_empty_total", "Times the fill ring was empty."),
            ("dnsentry_afxdp_invalid_descs_total", "Invalid RX descriptors."),
        ];
        let qids: Vec<String> = live.queues.iter().map(|(q, _)| q.to_string()).collect();
        for (i, (name, help)) in names.iter().enumerate() {
            out.push(counters(
                name,
                help,
                live.queues
                    .iter()
                    .zip(&qids)
                    .map(|((_, v), q)| (vec![("queue", q.as_str())], v[i]))
                    .collect(),
            ));
        }
    }
    let netflow =
        t.netflow.lock().ok().and_then(|n| n.as_ref().and_then(|s| s.lock().ok().map(|s| s.clone())));
    if let Some(nf) = netflow {
        out.push(counters(
            "dnsentry_netflow_records_total",
            "NetFlow/IPFIX records exported or dropped.",
            vec![
                (vec![("result", "sent")], nf.records_sent),
                (vec![("result", "dropped")], nf.records_dropped),
            ],
        ));
        let ids: Vec<String> = (0..nf.collectors.len()).map(|i| i.to_string()).collect();
        out.push(counters(
            "dnsentry_netflow_packets_total",
            "Export packets sent, per collector (index in the configured list).",
            nf.collectors.iter().zip(&ids).map(|(c, i)| (vec![("collector", i.as_str())], c.0)).collect(),
        ));
        out.push(counters(
            "dnsentry_netflow_send_errors_total",
            "Export packets that failed to send, per collector.",
            nf.collectors.iter().zip(&ids).map(|(c, i)| (vec![("collector", i.as_str())], c.1)).collect(),
        ));
    }
    out.extend(process_families());
    // An empty family (no suspect domain yet) makes the text encoder fail, which would cut the
    // exposition short: leave such families out.
    out.retain(|f| !f.metric.is_empty());
    out
}

#[cfg(target_os = "linux")]
fn process_families() -> Vec<MetricFamily> {
    use prometheus::core::Collector;
    prometheus::process_collector::ProcessCollector::for_self().collect()
}

#[cfg(not(target_os = "linux"))]
fn process_families() -> Vec<MetricFamily> {
    Vec::new()
}

/// The text exposition of every family.
pub fn render(t: &Telemetry) -> Vec<u8> {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = prometheus::TextEncoder::new().encode(&gather(t), &mut buf);
    buf
}

/// DNS messages, alarms (low + high) and channel drops so far, for the live status line.
pub fn totals(t: &Telemetry) -> (u64, u64, u64) {
    let mut dns = 0;
    for w in &t.workers {
        if let Ok(w) = w.lock() {
            dns += w.dns_messages();
        }
    }
    let mut alarms = 0;
    for s in &t.shards {
        if let Ok(s) = s.lock() {
            alarms += s.stats.alarms[1] + s.stats.alarms[2];
        }
    }
    let drops = DropStage::ALL.iter().map(|&s| t.drops(s)).sum();
    (dns, alarms, drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_families_do_not_cut_the_exposition() {
        let t = Telemetry::new(1, 1, 20);
        // No suspect, no live section: the text must still run to the end of the catalogue.
        let text = String::from_utf8(render(&t)).unwrap();
        assert!(text.contains("dnsentry_config_reloads_total{result=\"failure\"} 0"), "{text}");
        assert!(!text.contains("dnsentry_suspect_domain_score"));
        *t.live.lock().unwrap() =
            Some(crate::metrics::LiveStats { xdp: vec![("seen", 5)], queues: vec![(0, [1, 2, 3, 4])] });
        let text = String::from_utf8(render(&t)).unwrap();
        assert!(text.contains("dnsentry_xdp_packets_total{action=\"seen\"} 5"));
        assert!(text.contains("dnsentry_afxdp_invalid_descs_total{queue=\"0\"} 4"));
    }

    /// Every family the exporter emits (with every optional section filled) is in docs/metrics.md,
    /// and every family documented there is emitted.
    #[test]
    fn the_catalogue_matches_what_is_emitted() {
        let t = Telemetry::new(1, 1, 20);
        *t.live.lock().unwrap() =
            Some(crate::metrics::LiveStats { xdp: vec![("seen", 5)], queues: vec![(0, [1, 2, 3, 4])] });
        let stats = crate::output::netflow::exporter::ExportStats {
            records_sent: 1,
            records_dropped: 0,
            collectors: vec![(1, 0)],
        };
        *t.netflow.lock().unwrap() = Some(std::sync::Arc::new(std::sync::Mutex::new(stats)));
        let mut lists = crate::reputation::Reputation::default();
        let spec = crate::reputation::ListSpec::from_arg("c2:/lists/feodo.txt").unwrap();
        lists.add(&spec, "bad.example\n").unwrap();
        t.set_reputation(&lists);
        let syslog = crate::output::syslog::OutputStats {
            name: "syslog:tcp://[::1]:514".into(),
            ..Default::default()
        };
        syslog.sent.store(3, Ordering::Relaxed);
        t.set_alarm_outputs(vec![std::sync::Arc::new(syslog)]);
        t.publish_shard(
            0,
            crate::aggregate::ShardSnapshot {
                suspects: vec![crate::aggregate::Suspect {
                    domain: "tunnel.example".into(),
                    severity: crate::detect::Severity::High,
                    score: 90,
                    ts_ns: 1,
                }],
                ..Default::default()
            },
        );
        let text = String::from_utf8(render(&t)).unwrap();
        let emitted: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with("dnsentry_"))
            .collect();
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| n.starts_with("dnsentry_"))
            .collect();
        assert_eq!(emitted, documented, "docs/metrics.md and the exporter disagree");
        // A loaded list has its series before its first hit.
        assert!(text.contains("dnsentry_reputation_entries{list=\"feodo\"} 1"), "{text}");
        assert!(text.contains("dnsentry_reputation_hits_total{list=\"feodo\",category=\"c2\"} 0"), "{text}");
    }
}
