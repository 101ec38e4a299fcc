//! Detection evaluation on labelled captures (`dnsentry eval`, `cargo xtask eval`): dnsentry next
//! to simple re-implementations of deployed rules, on the same records, as a Markdown report.
//!
//! Baselines, as published (design notes §2): Elastic (≥ 25 long queries and ≥ 15 distinct names
//! from one client to one registered domain in 5 min; "long" = a subdomain of 30+ characters),
//! RITA (≥ 100 unique subdomains per domain), Zeek anomalous-dns (> 8 unique names per
//! registered domain per hour), FlowPro (any TXT query; ≥ 100 NXDOMAIN in 5 min).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::detect::allowlist::Allowlist;
use crate::detect::Severity;
use crate::dns::view::{RCODE_NXDOMAIN, TYPE_TXT};
use crate::output::alarm::Alarm;
use crate::worker::Decoder;

const NS: u64 = 1_000_000_000;

/// One row of a LABELS.tsv.
#[derive(Debug, Clone)]
pub struct Label {
    pub file: PathBuf,
    /// tunnel, slow, beacon, nondns or benign.
    pub class: String,
    pub tool: String,
    pub variant: String,
    pub domain: String,
    /// Capture time of the attack's first packet, ns.
    pub attack_start: Option<u64>,
}

/// Reads a LABELS.tsv (header `file class tool variant domain [attack_start] ...`); paths are
/// relative to the file's directory.
pub fn read_labels(path: &Path) -> std::io::Result<Vec<Label>> {
    let text = std::fs::read_to_string(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let start_col = col("attack_start");
    // The shared datasets' MANIFEST.tsv: `tool` is `benign` or a tunnel tool, `tunnel_domain`.
    let manifest = col("tunnel_domain").is_some();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: Option<usize>| i.and_then(|i| f.get(i)).map(|s| s.to_string()).unwrap_or_default();
            let start = get(start_col).parse::<f64>().ok().map(|s| (s * 1e9) as u64);
            let tool = get(col("tool"));
            let (class, domain) = if manifest {
                (if tool == "benign" { "benign".into() } else { "tunnel".into() }, get(col("tunnel_domain")))
            } else {
                (get(col("class")), get(col("domain")))
            };
            Some(Label {
                file: dir.join(f.first()?),
                class,
                tool,
                variant: get(col("variant")),
                domain,
                attack_start: start,
            })
        })
        .collect())
}

/// What one detector said about one capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Highest severity raised for the labelled domain (baselines: `Some(High)` when they fire).
    pub severity: Option<Severity>,
    /// Capture time of the first low/high alarm for the labelled domain.
    pub first_ns: Option<u64>,
    pub queries_to_first: Option<u64>,
    pub tool: Option<String>,
    /// Benign captures: domains alarmed at low/high (dnsentry: alarms; baselines: domains fired).
    pub false_alarms: u64,
    pub info_alarms: u64,
}

/// A capture's results.
#[derive(Debug, Clone)]
pub struct CaptureResult {
    pub label: Label,
    pub duration_s: f64,
    pub queries: u64,
    /// Queries per second to the labelled domain while it was active.
    pub domain_qps: f64,
    pub dnsentry: Outcome,
    /// (baseline name, outcome); `None` outcome = the rule cannot see this class (non-DNS).
    pub baselines: Vec<(&'static str, Option<Outcome>)>,
}

pub const BASELINES: [&str; 5] = ["Elastic", "RITA", "Zeek", "FlowPro TXT", "FlowPro NX"];

/// The fields of a query or response the baselines need.
struct Msg {
    ts: u64,
    client: [u8; 17],
    domain: String,
    name_hash: u64,
    sub_len: u8,
    qtype: u16,
    response: bool,
    rcode: u16,
}

fn records(path: &Path, cfg: &Config) -> Vec<Msg> {
    let allowlist = Arc::new(Allowlist::new(cfg.allowlist.builtin, &cfg.allowlist.extra));
    let mut dec = Decoder::new(cfg, allowlist);
    let mut out = Vec::new();
    let mut seq = 0;
    let _ = crate::capture::pcap::read_file(path, Arc::new(AtomicU64::new(0)), |f| {
        dec.frame(f.link, f.data, f.ts_ns, seq, &mut |r, name| {
            if r.is_non_dns() {
                return;
            }
            let mut client = [0u8; 17];
            client[..16].copy_from_slice(&r.client.bytes);
            client[16] = r.client.v6 as u8;
            out.push(Msg {
                ts: r.ts_ns,
                client,
                domain: String::from_utf8_lossy(crate::record::domain_of(&r, name)).into_owned(),
                name_hash: r.name_hash,
                sub_len: r.lex.sub_len,
                qtype: r.qtype,
                response: r.is_response(),
                rcode: r.rcode,
            })
        });
        seq += 1;
    });
    out
}

/// First time each domain fires, per baseline.
fn baselines(msgs: &[Msg]) -> Vec<HashMap<String, u64>> {
    let mut fired: Vec<HashMap<String, u64>> = vec![HashMap::new(); BASELINES.len()];
    let five = 300 * NS;
    // Elastic: per (client, domain), sliding 5 minutes.
    // (time, long query, name hash) of one client's queries to one domain.
    type Recent = VecDeque<(u64, bool, u64)>;
    let mut elastic: HashMap<([u8; 17], &str), Recent> = HashMap::new();
    // RITA: unique subdomains per domain.
    let mut rita: HashMap<&str, HashSet<u64>> = HashMap::new();
    // Zeek: unique names per domain, first-seen times within an hour.
    let mut zeek: HashMap<&str, (HashMap<u64, u64>, VecDeque<u64>)> = HashMap::new();
    let mut nx: HashMap<&str, VecDeque<u64>> = HashMap::new();
    for m in msgs {
        let d = m.domain.as_str();
        if m.response {
            if m.rcode == RCODE_NXDOMAIN {
                let q = nx.entry(d).or_default();
                q.push_back(m.ts);
                while q.front().is_some_and(|&t| t + five < m.ts) {
                    q.pop_front();
                }
                if q.len() >= 100 {
                    fired[4].entry(d.to_string()).or_insert(m.ts);
                }
            }
            continue;
        }
        let q = elastic.entry((m.client, d)).or_default();
        q.push_back((m.ts, m.sub_len >= 30, m.name_hash));
        while q.front().is_some_and(|&(t, _, _)| t + five < m.ts) {
            q.pop_front();
        }
        let long = q.iter().filter(|x| x.1).count();
        if long >= 25 && q.iter().map(|x| x.2).collect::<HashSet<_>>().len() >= 15 {
            fired[0].entry(d.to_string()).or_insert(m.ts);
        }
        let r = rita.entry(d).or_default();
        if m.sub_len > 0 {
            r.insert(m.name_hash);
        }
        if r.len() >= 100 {
            fired[1].entry(d.to_string()).or_insert(m.ts);
        }
        let (seen, order) = zeek.entry(d).or_default();
        if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(m.name_hash) {
            e.insert(m.ts);
            order.push_back(m.ts);
        }
        while order.front().is_some_and(|&t| t + 3600 * NS < m.ts) {
            order.pop_front();
        }
        if order.len() > 8 {
            fired[2].entry(d.to_string()).or_insert(m.ts);
        }
        if m.qtype == TYPE_TXT {
            fired[3].entry(d.to_string()).or_insert(m.ts);
        }
    }
    fired
}

fn queries_until(msgs: &[Msg], domain: &str, until: u64) -> u64 {
    msgs.iter().filter(|m| !m.response && m.domain == domain && m.ts <= until).count() as u64
}

/// Replays one labelled capture through dnsentry and the baselines.
pub fn evaluate(cfg: &Config, label: &Label) -> CaptureResult {
    let alarms = Arc::new(Mutex::new(Vec::<Alarm>::new()));
    let sink = alarms.clone();
    let mut one = cfg.clone();
    one.pipeline.workers = 1;
    one.pipeline.shards = 1;
    crate::pipeline::replay(&one, std::slice::from_ref(&label.file), &Default::default(), move |a| {
        if let Ok(mut v) = sink.lock() {
            v.push(a)
        }
    });
    let alarms = alarms.lock().map(|v| v.clone()).unwrap_or_default();
    let msgs = records(&label.file, cfg);
    let first = msgs.iter().map(|m| m.ts).min().unwrap_or(0);
    let last = msgs.iter().map(|m| m.ts).max().unwrap_or(0);
    let duration_s = (last.saturating_sub(first)) as f64 / 1e9;
    let queries = msgs.iter().filter(|m| !m.response).count() as u64;
    let nondns = label.class == "nondns";
    let benign = label.class == "benign";
    // Without a labelled start, the attack starts with the first query to its domain.
    let mut label = label.clone();
    if label.attack_start.is_none() && !benign {
        label.attack_start = msgs.iter().find(|m| m.domain == label.domain).map(|m| m.ts);
    }
    let label = &label;

    let mine = |a: &&Alarm| {
        if nondns {
            a.domain.is_none()
        } else {
            a.domain.as_deref() == Some(label.domain.as_str())
        }
    };
    let mut dnsentry = Outcome::default();
    if benign {
        dnsentry.false_alarms = alarms.iter().filter(|a| a.severity >= Severity::Low).count() as u64;
        dnsentry.info_alarms = alarms.iter().filter(|a| a.severity == Severity::Info).count() as u64;
    } else {
        let relevant: Vec<&Alarm> = alarms.iter().filter(mine).collect();
        dnsentry.severity = relevant.iter().map(|a| a.severity).max();
        let first_alarm = relevant.iter().filter(|a| a.severity >= Severity::Low).map(|a| a.ts).min();
        dnsentry.first_ns = first_alarm;
        dnsentry.queries_to_first = first_alarm.map(|t| queries_until(&msgs, &label.domain, t));
        dnsentry.tool = relevant.iter().find_map(|a| a.tool.map(str::to_string));
    }

    let fired = baselines(&msgs);
    let baselines = BASELINES
        .iter()
        .zip(fired)
        .map(|(name, f)| {
            if nondns {
                return (*name, None);
            }
            let mut o = Outcome::default();
            if benign {
                o.false_alarms = f.len() as u64;
            } else if let Some(&t) = f.get(&label.domain) {
                o.severity = Some(Severity::High);
                o.first_ns = Some(t);
                o.queries_to_first = Some(queries_until(&msgs, &label.domain, t));
            }
            (*name, Some(o))
        })
        .collect();
    let times: Vec<u64> =
        msgs.iter().filter(|m| !m.response && m.domain == label.domain).map(|m| m.ts).collect();
    let domain_qps = match (times.first(), times.last()) {
        (Some(a), Some(b)) if b > a => times.len() as f64 / ((b - a) as f64 / 1e9),
        _ => 0.0,
    };
    CaptureResult { label: label.clone(), duration_s, queries, domain_qps, dnsentry, baselines }
}

fn delay(label: &Label, o: &Outcome) -> Option<f64> {
    Some(o.first_ns?.saturating_sub(label.attack_start?) as f64 / 1e9)
}

fn fmt_delay(label: &Label, o: &Outcome) -> String {
    match (delay(label, o), o.queries_to_first) {
        (Some(d), Some(q)) => format!("{d:.0} s / {q} q"),
        _ => "—".into(),
    }
}

/// The targets of the evaluation; returns what was missed.
pub fn check_targets(results: &[CaptureResult]) -> Vec<String> {
    let mut missed = Vec::new();
    let high_rate = ["iodine", "dns2tcp", "dnscat2", "ozymandns", "dnsexfiltrator"];
    for r in results {
        let l = &r.label;
        let name = l.file.file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned());
        let o = &r.dnsentry;
        // A tool talking straight to its server with no domain has nothing to group under.
        if l.domain == "dnscat" {
            continue;
        }
        match l.class.as_str() {
            "tunnel" => {
                if o.severity != Some(Severity::High) {
                    missed.push(format!("{name}: no high alarm for {}", l.domain));
                } else if high_rate.contains(&l.tool.as_str())
                    && r.domain_qps >= 1.0
                    && delay(l, o).is_some_and(|d| d > 30.0)
                    // A C2 session idle between commands is not high-rate yet: a few queries in
                    // is as early as any detector can be.
                    && o.queries_to_first.is_some_and(|q| q > 10)
                {
                    missed.push(format!(
                        "{name}: high-rate tunnel alarmed after {:.0} s",
                        delay(l, o).unwrap_or(0.0)
                    ));
                }
                if l.tool != "none" && !l.tool.is_empty() && o.tool.as_deref() != Some(l.tool.as_str()) {
                    missed.push(format!("{name}: tool {:?}, expected {}", o.tool, l.tool));
                }
            }
            "slow" => {
                let limit = if l.variant.contains("0.25") { 3600.0 } else { 600.0 };
                if o.severity != Some(Severity::High) || delay(l, o).is_none_or(|d| d > limit) {
                    missed
                        .push(format!("{name}: slow leak not high within {limit:.0} s ({:?})", delay(l, o)));
                }
            }
            "beacon" => {
                if o.severity.is_none_or(|s| s < Severity::Low) {
                    missed.push(format!("{name}: beacon not flagged"));
                }
            }
            "nondns" => {
                if o.severity.is_none() {
                    missed.push(format!("{name}: non-DNS traffic on port 53 not alarmed"));
                }
            }
            "benign" => {
                if o.false_alarms > 0 {
                    missed.push(format!("{name}: {} low/high alarms on benign traffic", o.false_alarms));
                }
            }
            other => missed.push(format!("{name}: unknown class {other}")),
        }
    }
    missed
}

/// The results as Markdown tables.
pub fn render(results: &[CaptureResult]) -> String {
    let mut s = String::new();
    let name = |r: &CaptureResult| {
        r.label.file.file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned())
    };
    let _ =
        writeln!(s, "### Attacks: time and queries to the first alarm (from the attack's first packet)\n");
    let _ = write!(s, "| capture | class | tool | dnsentry | tool named |");
    for b in BASELINES {
        let _ = write!(s, " {b} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---|---|---|---|{}", "---|".repeat(BASELINES.len()));
    for r in results.iter().filter(|r| r.label.class != "benign") {
        let o = &r.dnsentry;
        let sev = o.severity.map_or("**missed**".to_string(), |v| v.code().to_string());
        let _ = write!(
            s,
            "| {} | {} | {} | {} {} | {} |",
            name(r),
            r.label.class,
            r.label.tool,
            sev,
            fmt_delay(&r.label, o),
            o.tool.clone().unwrap_or_else(|| "—".into())
        );
        for (_, b) in &r.baselines {
            let cell = match b {
                None => "blind".to_string(),
                Some(b) if b.severity.is_some() => fmt_delay(&r.label, b),
                Some(_) => "missed".to_string(),
            };
            let _ = write!(s, " {cell} |");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\n### Benign traffic: false alarms per hour (low + high; dnsentry's info alarms apart)\n"
    );
    let _ = write!(s, "| capture | duration | queries | dnsentry low/high | dnsentry info |");
    for b in BASELINES {
        let _ = write!(s, " {b} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---|---|---|---|{}", "---|".repeat(BASELINES.len()));
    for r in results.iter().filter(|r| r.label.class == "benign") {
        let hours = (r.duration_s / 3600.0).max(1.0 / 3600.0);
        let per_h =
            |n: u64| if n == 0 { "0".to_string() } else { format!("{n} ({:.1}/h)", n as f64 / hours) };
        let _ = write!(
            s,
            "| {} | {:.0} s | {} | {} | {} |",
            name(r),
            r.duration_s,
            r.queries,
            per_h(r.dnsentry.false_alarms),
            r.dnsentry.info_alarms
        );
        for (_, b) in &r.baselines {
            let _ = write!(s, " {} |", b.as_ref().map_or("blind".into(), |b| per_h(b.false_alarms)));
        }
        let _ = writeln!(s);
    }
    let missed = check_targets(results);
    let _ = writeln!(s, "\n### Targets\n");
    if missed.is_empty() {
        let _ = writeln!(s, "Every target of the evaluation is met.");
    } else {
        for m in missed {
            let _ = writeln!(s, "- missed: {m}");
        }
    }
    s
}
