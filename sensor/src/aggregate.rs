//! An aggregation shard: owns the state of the registered domains routed to it, scores them after
//! each update and raises alarms, at most one per (domain, severity) per suppression interval.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;

use crate::config::Config;
use crate::detect::reason::{Reason, Reasons};
use crate::detect::score::{score, Verdict};
use crate::detect::Severity;
use crate::flow::IpAddr16;
use crate::metrics::hist::{Hist, SCORE_BOUNDS};
use crate::output::alarm::{Alarm, AlarmKind, ReputationMatch, WindowCounts};
use crate::output::netflow::record::ExportRecord;
use crate::record::{domain_of, Record};
use crate::reputation::{Hit, ListSeverity};
use crate::state::domain::{ClientDomain, DomainState};
use crate::state::lru::Lru;
use crate::state::transactions::{Transactions, TxStats};

const NS: u64 = 1_000_000_000;

/// Counters of one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub records: u64,
    pub domains_evicted: u64,
    pub pairs_evicted: u64,
    pub alarms: [u64; 3],
    /// Raised alarms per reason (index = `Reason as usize`).
    pub alarm_reasons: [u64; Reason::ALL.len()],
    pub alarm_scores: Hist<10>,
    pub tx: TxStats,
    /// Table sizes at the last refresh.
    pub domains: u64,
    pub pairs: u64,
    pub pending_queries: u64,
    /// Messages naming a listed domain, by (list, category).
    pub reputation_hits: BTreeMap<(String, &'static str), u64>,
}

impl ShardStats {
    fn count_hit(&mut self, hit: &Hit) {
        let category = hit.list.category.name();
        match self.reputation_hits.iter_mut().find(|((l, c), _)| *l == hit.list.name && *c == category) {
            Some((_, n)) => *n += 1,
            None => {
                self.reputation_hits.insert((hit.list.name.clone(), category), 1);
            }
        }
    }

    pub fn merge(&mut self, o: &ShardStats) {
        self.records += o.records;
        self.domains_evicted += o.domains_evicted;
        self.pairs_evicted += o.pairs_evicted;
        for (a, b) in self.alarms.iter_mut().zip(o.alarms) {
            *a += b;
        }
        for (a, b) in self.alarm_reasons.iter_mut().zip(o.alarm_reasons) {
            *a += b;
        }
        self.alarm_scores.merge(&o.alarm_scores);
        self.tx.answered += o.tx.answered;
        self.tx.unanswered += o.tx.unanswered;
        self.tx.evicted += o.tx.evicted;
        self.tx.unmatched_responses += o.tx.unmatched_responses;
        self.domains += o.domains;
        self.pairs += o.pairs;
        self.pending_queries += o.pending_queries;
        for (k, n) in &o.reputation_hits {
            *self.reputation_hits.entry(k.clone()).or_default() += n;
        }
    }
}

/// A domain that alarmed recently, for the suspect gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub domain: String,
    pub severity: Severity,
    pub score: u32,
    pub ts_ns: u64,
}

/// What a shard publishes for metrics: its counters and its current suspects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub stats: ShardStats,
    /// Domains whose last low/high alarm is within the suppression interval, highest score first.
    pub suspects: Vec<Suspect>,
}

/// Most suspects remembered per shard (the exported top-K is at most 50).
const SUSPECTS_CAP: usize = 256;

/// A client–server pair exchanging payloads on a DNS port that are not DNS.
#[derive(Debug, Clone, Default)]
struct NonDnsFlow {
    packets: u64,
    bytes: u64,
    first_ns: u64,
    iodine: bool,
    last_alarm_ns: Option<u64>,
}

/// Where a shard's results go.
pub trait ShardSink {
    fn alarm(&mut self, alarm: Alarm);
    /// A transaction (sent only when the config names collectors).
    fn export(&mut self, record: ExportRecord);
}

/// One shard's tables.
pub struct Shard {
    domains: Lru<u64, DomainState>,
    pairs: Lru<(u64, IpAddr16), ClientDomain>,
    cfg: crate::config::DetectConfig,
    short_ns: u64,
    long_ns: u64,
    sketch_k: usize,
    tx: Transactions,
    /// Reused buffer of the transactions one record completes, by domain, as export records
    /// whose verdict is filled in after scoring.
    tx_buf: Vec<(u64, ExportRecord)>,
    /// Transactions of domains scoring below this are not exported.
    export_min_score: u32,
    /// Pairs sending non-DNS payloads on DNS ports.
    non_dns: Lru<u64, NonDnsFlow>,
    non_dns_min_packets: u64,
    /// Recent low/high alarms by domain hash.
    suspects: HashMap<u64, Suspect>,
    /// Last reputation alarm by (client, listed entry).
    reputation_alarms: Lru<u64, u64>,
    /// Capture time of the latest record.
    now_ns: u64,
    pub stats: ShardStats,
}

fn cap(total: usize, shards: usize) -> NonZeroUsize {
    NonZeroUsize::new((total / shards.max(1)).max(1)).unwrap_or(NonZeroUsize::MIN)
}

impl Shard {
    pub fn new(cfg: &Config, shards: usize) -> Self {
        Shard {
            domains: Lru::new(cap(cfg.state.max_domains, shards)),
            pairs: Lru::new(cap(cfg.state.max_client_domains, shards)),
            cfg: cfg.detect.clone(),
            short_ns: cfg.state.short_window_secs * NS,
            long_ns: cfg.state.long_window_secs * NS,
            sketch_k: cfg.state.sketch_k,
            tx: Transactions::new(
                cfg.state.max_pending_queries / shards.max(1),
                cfg.state.transaction_timeout_secs,
                // Transactions are exported (and need their names) when collectors are set.
                !cfg.export.collectors.is_empty(),
            ),
            tx_buf: Vec::new(),
            export_min_score: cfg.export.min_score,
            non_dns: Lru::new(cap(16_384, shards)),
            non_dns_min_packets: cfg.detect.non_dns_packets.max(1) as u64,
            suspects: HashMap::new(),
            reputation_alarms: Lru::new(cap(65_536, shards)),
            now_ns: 0,
            stats: ShardStats::default(),
        }
    }

    /// Replaces the detection settings (SIGHUP reload). Tables, windows and pending alarms are kept;
    /// the baseline flag of every tracked domain is re-evaluated against the new baseline.
    pub fn set_detect(&mut self, detect: &crate::config::DetectConfig) {
        self.cfg = detect.clone();
        self.non_dns_min_packets = detect.non_dns_packets.max(1) as u64;
        let learned = &self.cfg.learned;
        for (_, d) in self.domains.iter_mut() {
            d.baselined = !learned.is_empty() && learned.contains(&*d.name);
        }
    }

    /// Collects the transactions the table hands out, as export records, when exporting.
    fn collect_into(
        exporting: bool,
        done: &mut Vec<(u64, ExportRecord)>,
    ) -> impl FnMut(crate::state::transactions::Transaction, &[u8]) + '_ {
        move |t, name| {
            if !exporting {
                return;
            }
            let key = t.query.as_ref().or(t.response.as_ref()).map(|r| r.domain_hash);
            if let (Some(key), Some(rec)) = (key, ExportRecord::new(&t, name)) {
                done.push((key, rec));
            }
        }
    }

    /// Adds one record with its lowercased query name and its reputation hit; `out` receives the
    /// alarms it raises and, when exporting, the transactions it completes.
    pub fn process(&mut self, r: &Record, name: &[u8], hit: Option<&Hit>, out: &mut impl ShardSink) {
        self.stats.records += 1;
        self.now_ns = self.now_ns.max(r.ts_ns);
        if r.is_non_dns() {
            return self.non_dns(r, out);
        }
        let mut done = std::mem::take(&mut self.tx_buf);
        let exporting = self.tx.keeps_names();
        self.tx.observe(r, name, &mut Self::collect_into(exporting, &mut done));
        let (cfg, sketch_k) = (&self.cfg, self.sketch_k);
        let (d, evicted) = self.domains.get_or_insert_with(r.domain_hash, || {
            let mut d = DomainState::new(domain_of(r, name), r.ts_ns, sketch_k);
            d.baselined = !cfg.learned.is_empty() && cfg.learned.contains(&*d.name);
            d
        });
        self.stats.domains_evicted += u64::from(evicted);
        let (cd, evicted) = self.pairs.get_or_insert_with((r.domain_hash, r.client), ClientDomain::default);
        self.stats.pairs_evicted += u64::from(evicted);
        cd.update(r);
        d.update(r, name, self.short_ns, self.long_ns);
        let verdict = score(d, Some(&*cd).filter(|_| !r.is_response()), cfg);
        d.last_score = verdict.score;
        d.last_reasons = verdict.reasons;
        let reputation_alarm = hit.and_then(|hit| {
            self.stats.count_hit(hit);
            let client = crate::hash::hash_bytes(&r.client.bytes) ^ u64::from(r.client.v6);
            let key = crate::hash::mix64(client ^ crate::hash::hash_bytes(hit.entry.as_bytes()));
            let (last, _) = self.reputation_alarms.get_or_insert_with(key, || u64::MAX);
            let due = *last == u64::MAX || r.ts_ns >= last.saturating_add(cfg.suppression_secs * NS);
            due.then(|| {
                *last = r.ts_ns;
                reputation_alarm(d, r, name, hit, cfg, self.short_ns, self.long_ns)
            })
        });
        let due = due_alarm(d, r, &verdict, cfg.suppression_secs, self.short_ns, self.long_ns);
        if let Some(alarm) = reputation_alarm {
            self.count_alarm(alarm.severity, Reasons(1 << Reason::Reputation as u32), alarm.score);
            out.alarm(alarm);
        }
        if let Some(alarm) = due {
            self.raise(r.domain_hash, &verdict, alarm, out);
        }
        // Export after scoring, so a transaction carries its domain's latest verdict.
        self.export_all(&mut done, out);
        self.tx_buf = done;
    }

    /// Exports the collected transactions with their domains' verdicts; empties `done`.
    fn export_all(&self, done: &mut Vec<(u64, ExportRecord)>, out: &mut impl ShardSink) {
        for (key, rec) in done.drain(..) {
            self.export(key, rec, out);
        }
    }

    /// A payload on a DNS port that is not DNS: alarm once a flow pair has sent enough of them.
    fn non_dns(&mut self, r: &Record, out: &mut impl ShardSink) {
        let (f, _) = self
            .non_dns
            .get_or_insert_with(r.domain_hash, || NonDnsFlow { first_ns: r.ts_ns, ..Default::default() });
        f.packets += 1;
        f.bytes += r.msg_len as u64;
        f.iodine |= r.tool != 0;
        if f.packets < self.non_dns_min_packets {
            return;
        }
        if f.last_alarm_ns.is_some_and(|t| r.ts_ns < t.saturating_add(self.cfg.suppression_secs * NS)) {
            return;
        }
        f.last_alarm_ns = Some(r.ts_ns);
        let score = if f.iodine { 100 } else { 80 };
        let mut reasons = crate::detect::reason::Reasons::default();
        reasons.insert(Reason::NonDnsTraffic);
        if f.iodine {
            reasons.insert(Reason::ToolFingerprint);
        }
        let (packets, first) = (f.packets, f.first_ns);
        self.stats.alarms[Severity::High as usize] += 1;
        for reason in reasons.iter() {
            self.stats.alarm_reasons[reason as usize] += 1;
        }
        self.stats.alarm_scores.observe(&SCORE_BOUNDS, score as f64);
        out.alarm(Alarm {
            ts: r.ts_ns,
            severity: Severity::High,
            kind: AlarmKind::NonDns,
            domain: None,
            client: r.client.to_ip(),
            server: r.server.to_ip(),
            score,
            reasons: reasons.codes(),
            tool: f.iodine.then_some("iodine"),
            benign_family: None,
            reputation: None,
            sample_qnames: Vec::new(),
            window: WindowCounts {
                seconds: self.short_ns / NS,
                queries: packets.min(u32::MAX as u64) as u32,
                responses: 0,
                unique_names: 0,
                subdomain_bytes: 0,
                long_subdomain_bytes: 0,
                long_seconds: self.long_ns / NS,
                nxdomain: 0,
                clients: 1,
            },
            first_seen: first,
        });
    }

    fn count_alarm(&mut self, sev: Severity, reasons: Reasons, score: u32) {
        self.stats.alarms[sev as usize] += 1;
        for reason in reasons.iter() {
            self.stats.alarm_reasons[reason as usize] += 1;
        }
        self.stats.alarm_scores.observe(&SCORE_BOUNDS, score as f64);
    }

    /// Counts and sends an alarm [`due_alarm`] built.
    fn raise(&mut self, key: u64, verdict: &Verdict, alarm: Alarm, out: &mut impl ShardSink) {
        let sev = alarm.severity;
        self.count_alarm(sev, verdict.reasons, verdict.score);
        if sev >= Severity::Low {
            let name = alarm.domain.clone().unwrap_or_default();
            self.remember_suspect(key, &name, sev, verdict.score, alarm.ts);
        }
        out.alarm(alarm);
    }

    fn export(&self, key: u64, mut rec: ExportRecord, out: &mut impl ShardSink) {
        let window = self.cfg.suppression_secs * NS;
        let (score, reasons, alarmed) = self.domains.peek(&key).map_or((0, 0, false), |d| {
            let alarmed = d.last_alarm_ns[Severity::Low as usize..]
                .iter()
                .flatten()
                .any(|&ts| ts.saturating_add(window) > self.now_ns);
            (d.last_score, d.last_reasons.0, alarmed)
        });
        if score < self.export_min_score {
            return;
        }
        rec.set_verdict(score, reasons, alarmed);
        out.export(rec);
    }

    /// No record for a while (live capture): let time pass so unanswered queries expire.
    pub fn idle(&mut self, now_ns: u64, out: &mut impl ShardSink) {
        self.now_ns = self.now_ns.max(now_ns);
        let mut done = std::mem::take(&mut self.tx_buf);
        let exporting = self.tx.keeps_names();
        self.tx.sweep(self.now_ns, &mut Self::collect_into(exporting, &mut done));
        self.export_all(&mut done, out);
        self.tx_buf = done;
    }

    /// End of input: every pending query becomes an unanswered transaction.
    pub fn finish(&mut self, out: &mut impl ShardSink) {
        let mut done = Vec::new();
        let exporting = self.tx.keeps_names();
        self.tx.flush(&mut Self::collect_into(exporting, &mut done));
        self.export_all(&mut done, out);
    }

    fn suspect_active(&self, s: &Suspect) -> bool {
        s.ts_ns.saturating_add(self.cfg.suppression_secs * NS) > self.now_ns
    }

    fn remember_suspect(&mut self, key: u64, domain: &str, severity: Severity, score: u32, ts_ns: u64) {
        let entry = self.suspects.entry(key).or_insert_with(|| Suspect {
            domain: domain.to_string(),
            severity,
            score,
            ts_ns,
        });
        // Keep the most severe recent verdict.
        if severity >= entry.severity || ts_ns >= entry.ts_ns.saturating_add(self.cfg.suppression_secs * NS) {
            entry.severity = severity;
            entry.score = score;
        }
        entry.ts_ns = ts_ns;
        if self.suspects.len() > SUSPECTS_CAP {
            let now = self.now_ns;
            let window = self.cfg.suppression_secs * NS;
            self.suspects.retain(|_, s| s.ts_ns.saturating_add(window) > now);
            while self.suspects.len() > SUSPECTS_CAP {
                let lowest = self.suspects.iter().min_by_key(|(_, s)| (s.score, s.ts_ns)).map(|(k, _)| *k);
                match lowest {
                    Some(k) => self.suspects.remove(&k),
                    None => break,
                };
            }
        }
    }

    /// Table sizes, for the summary and metrics.
    pub fn refresh_sizes(&mut self) {
        self.stats.domains = self.domains.len() as u64;
        self.stats.pairs = self.pairs.len() as u64;
        self.stats.pending_queries = self.tx.len() as u64;
        self.stats.tx = self.tx.stats.clone();
    }

    /// Counters and current suspects, for the metrics endpoint.
    pub fn snapshot(&mut self) -> ShardSnapshot {
        self.refresh_sizes();
        let mut suspects: Vec<Suspect> =
            self.suspects.values().filter(|s| self.suspect_active(s)).cloned().collect();
        suspects.sort_by(|a, b| b.score.cmp(&a.score).then(a.domain.cmp(&b.domain)));
        ShardSnapshot { stats: self.stats.clone(), suspects }
    }
}

/// The alarm a verdict raises for `d`, unless its severity is below alarm level or one was raised
/// within the suppression interval (then none; the slot is taken when one is due).
fn due_alarm(
    d: &mut DomainState,
    r: &Record,
    v: &Verdict,
    suppression_secs: u64,
    short_ns: u64,
    long_ns: u64,
) -> Option<Alarm> {
    let sev = v.severity?;
    let slot = &mut d.last_alarm_ns[sev as usize];
    if slot.is_some_and(|t| r.ts_ns < t.saturating_add(suppression_secs * NS)) {
        return None;
    }
    *slot = Some(r.ts_ns);
    Some(build_alarm(d, r, v, sev, short_ns, long_ns))
}

fn build_alarm(
    d: &DomainState,
    r: &Record,
    v: &Verdict,
    sev: Severity,
    short_ns: u64,
    long_ns: u64,
) -> Alarm {
    let client = d.top_clients.top().unwrap_or(d.last_client);
    Alarm {
        ts: r.ts_ns,
        severity: sev,
        kind: AlarmKind::Tunnel,
        domain: Some(d.name.to_string()),
        client: client.to_ip(),
        server: d.last_server.to_ip(),
        score: v.score,
        reasons: v.reasons.codes(),
        tool: d.tool.map(|t| t.name()),
        benign_family: d.benign_family().map(|f| f.name()),
        reputation: None,
        sample_qnames: d.samples.iter().map(|s| s.to_string()).collect(),
        window: WindowCounts {
            seconds: short_ns / NS,
            queries: d.short.queries,
            responses: d.short.responses,
            unique_names: d.short.unique_names().round() as u64,
            subdomain_bytes: d.short.subdomain_bytes().round() as u64,
            long_subdomain_bytes: d.long.subdomain_bytes().round() as u64,
            long_seconds: long_ns / NS,
            nxdomain: d.short.nxdomain,
            clients: d.clients.count().round() as u64,
        },
        first_seen: d.first_seen_ns,
    }
}

/// The alarm of a lookup of a listed domain: the list's severity, the client that asked, and the
/// domain's window counts.
fn reputation_alarm(
    d: &DomainState,
    r: &Record,
    name: &[u8],
    hit: &Hit,
    cfg: &crate::config::DetectConfig,
    short_ns: u64,
    long_ns: u64,
) -> Alarm {
    let (severity, score) = match hit.list.severity {
        ListSeverity::High => (Severity::High, 100),
        ListSeverity::Low => (Severity::Low, cfg.low_score),
    };
    let mut reasons = Reasons::default();
    reasons.insert(Reason::Reputation);
    let v = Verdict { score, severity: Some(severity), reasons };
    let qname = String::from_utf8_lossy(name).into_owned();
    Alarm {
        kind: AlarmKind::Reputation,
        client: r.client.to_ip(),
        server: r.server.to_ip(),
        tool: None,
        reputation: Some(ReputationMatch {
            list: hit.list.name.clone(),
            category: hit.list.category.name(),
            entry: hit.entry.to_string(),
            qname: qname.clone(),
            via_cname: hit.via_cname,
        }),
        sample_qnames: vec![qname],
        ..build_alarm(d, r, &v, severity, short_ns, long_ns)
    }
}
