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
use crate::record::{domain_of, flag, Batch, Record};
use crate::reputation::{Hit, ListSeverity};
use crate::state::domain::{ClientDomain, DomainState};
use crate::state::lru::Lru;
use crate::state::partial::{PairPartial, Part, Single, Span, ToolCount, PAIR_TIMES};
use crate::state::transactions::{Transactions, TxStats};

const NS: u64 = 1_000_000_000;

/// Counters of one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub records: u64,
    /// Domain merges: one per domain per batch (live) or per merge unit (replay), however many
    /// messages it combined.
    pub merges: u64,
    /// DNS messages those merges combined.
    pub merged: u64,
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
        self.merges += o.merges;
        self.merged += o.merged;
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
    /// Scratch space of a merge, kept between merges: tool sessions, pairs with their part,
    /// merged pairs, query times.
    tools: Vec<ToolCount>,
    pair_scratch: Vec<(PairPartial, u32)>,
    merged_scratch: Vec<PairPartial>,
    times_scratch: Vec<u64>,
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
            tools: Vec::new(),
            pair_scratch: Vec::new(),
            merged_scratch: Vec::new(),
            times_scratch: Vec::new(),
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

    /// Applies every worker's batch of one replay epoch, or one batch (live), merge unit by
    /// merge unit: first each (unit, domain)'s parts, merged and scored once, in the order of
    /// their first messages; then the unit's messages in capture order, for transactions,
    /// reputation hits and non-DNS payloads. So what a message sees does not depend on how many
    /// units an epoch holds (that depends on the worker count). `out` receives the alarms raised
    /// and, when exporting, the transactions completed.
    pub fn apply(&mut self, parts: &[Batch], out: &mut impl ShardSink) {
        // Messages alone with their domain: their one-message partials, built here.
        let singles: Vec<Vec<Single>> = parts.iter().map(|b| alone(b).map(Single::of).collect()).collect();
        let mut all: Vec<Part<'_>> = Vec::new();
        // (first message, domain, range in `all`): the merges, in order.
        let mut groups: Vec<(u64, u64, usize, usize)> = Vec::new();
        let order = |p: &Part<'_>| (p.domain.first_seq, p.domain.domain_hash);
        if let ([only], [singles]) = (parts, &singles[..]) {
            // One part: each domain is whole already. Partials and singles are each in order;
            // interleave them.
            let text = only.name_buffer();
            all.extend(only.partials.domains.iter().map(|d| Part::of(&only.partials, text, d)));
            let np = all.len();
            all.extend(singles.iter().map(|s| s.part(text)));
            if !all[np..].is_sorted_by_key(order) {
                all[np..].sort_unstable_by_key(order);
            }
            let (mut i, mut j) = (0, np);
            while i < np || j < all.len() {
                let take_i = j >= all.len() || (i < np && order(&all[i]) < order(&all[j]));
                let k = if take_i { i } else { j };
                groups.push((all[k].domain.first_seq, all[k].domain.domain_hash, k, k + 1));
                if take_i {
                    i += 1;
                } else {
                    j += 1;
                }
            }
        } else {
            for (b, singles) in parts.iter().zip(&singles) {
                let text = b.name_buffer();
                all.extend(b.partials.domains.iter().map(|d| Part::of(&b.partials, text, d)));
                all.extend(singles.iter().map(|s| s.part(text)));
            }
            // One (unit, domain)'s parts side by side; then the groups in the order of their
            // first messages (ties: same frame, by domain).
            let key = |p: &Part<'_>| (p.domain.unit, p.domain.domain_hash);
            all.sort_unstable_by_key(|p| (key(p), p.domain.first_seq));
            for (i, p) in all.iter().enumerate() {
                match groups.last_mut() {
                    Some(g) if key(&all[g.2]) == key(p) => g.3 = i + 1,
                    _ => groups.push((p.domain.first_seq, p.domain.domain_hash, i, i + 1)),
                }
            }
            groups.sort_unstable_by_key(|g| (g.0, g.1));
        }
        // A unit's merges come before its first message: units are consecutive ranges of
        // positions, and their (wrapping) numbers grow with them.
        let at_or_before = |unit: u64, r: &Record| (r.unit.wrapping_sub(unit as u32) as i32) >= 0;
        let mut next = 0;
        merge_in_order(parts, |r, name, hit| {
            while let Some(&(_, _, from, to)) =
                groups.get(next).filter(|g| at_or_before(all[g.2].domain.unit, r))
            {
                self.merge_domain(&all[from..to], out);
                next += 1;
            }
            self.message(r, name, hit, out);
        });
        for &(_, _, from, to) in groups.get(next..).unwrap_or_default() {
            self.merge_domain(&all[from..to], out);
        }
    }

    /// Merges one domain's parts, scores it once and raises the alarm that is due.
    fn merge_domain(&mut self, parts: &[Part<'_>], out: &mut impl ShardSink) {
        let Some(first) = parts.first() else { return };
        let key = first.domain.domain_hash;
        let min_ts = parts.iter().map(|p| p.domain.min_ts).min().unwrap_or(0);
        let max_ts = parts.iter().map(|p| p.domain.max_ts).max().unwrap_or(0);
        self.now_ns = self.now_ns.max(max_ts);
        self.stats.merges += 1;
        self.stats.merged +=
            parts.iter().map(|p| u64::from(p.domain.counts.queries + p.domain.counts.responses)).sum::<u64>();
        let (cfg, sketch_k) = (&self.cfg, self.sketch_k);
        let (d, evicted) = self.domains.get_or_insert_with(key, || {
            let mut d = DomainState::new(first.domain_name(), min_ts, sketch_k);
            d.baselined = !cfg.learned.is_empty() && cfg.learned.contains(&*d.name);
            d
        });
        self.stats.domains_evicted += u64::from(evicted);
        d.merge(parts, &mut self.tools, self.short_ns, self.long_ns);
        // The pairs, merged across parts, fed to the pair table and the domain's top clients in
        // the order of their first messages (one part has each client once, in that order).
        let mut latest: Option<(u64, IpAddr16)> = None;
        let mut feed = |merged: &PairPartial,
                        times: &[u64],
                        pairs: &mut Lru<_, ClientDomain>,
                        stats: &mut ShardStats| {
            let (cd, evicted) = pairs.get_or_insert_with((key, merged.client), ClientDomain::default);
            stats.pairs_evicted += u64::from(evicted);
            cd.merge(merged, times);
            d.top_clients.add_n(merged.client, merged.queries);
            if merged.queries > 0 && latest.is_none_or(|(seq, _)| merged.last_query_seq > seq) {
                latest = Some((merged.last_query_seq, merged.client));
            }
        };
        // Pairs in the order of their first messages; one frame's messages share a position,
        // and ties go by client, in every path.
        let in_order = |p: &Part<'_>| p.pairs().map(|pp| (pp.first_seq, pp.client)).is_sorted();
        let direct = match parts {
            [only] => in_order(only),
            _ => false,
        };
        if direct {
            let only = &parts[0];
            for pp in only.pairs() {
                feed(pp, pp.times.get(only.times), &mut self.pairs, &mut self.stats);
            }
        } else {
            let pairs = &mut self.pair_scratch;
            pairs.clear();
            for (pi, p) in parts.iter().enumerate() {
                pairs.extend(p.pairs().map(|pp| (*pp, pi as u32)));
            }
            pairs.sort_unstable_by_key(|(pp, _)| pp.client);
            // Merge each client's parts in place, then restore first-message order.
            let merged = &mut self.merged_scratch;
            merged.clear();
            let times = &mut self.times_scratch;
            times.clear();
            let mut i = 0;
            while i < pairs.len() {
                let (mut m, from) = pairs[i];
                let at = times.len();
                times.extend_from_slice(m.times.get(parts[from as usize].times));
                let mut j = i + 1;
                while j < pairs.len() && pairs[j].0.client == m.client {
                    let (pp, from) = &pairs[j];
                    m.absorb(pp);
                    times.extend_from_slice(pp.times.get(parts[*from as usize].times));
                    j += 1;
                }
                i = j;
                m.burst |= m.queries as usize > PAIR_TIMES;
                if m.burst {
                    times.truncate(at);
                }
                times[at..].sort_unstable();
                m.times = Span { at: at as u32, len: (times.len() - at) as u32 };
                merged.push(m);
            }
            merged.sort_unstable_by_key(|m| (m.first_seq, m.client));
            for m in merged.iter() {
                feed(m, m.times.get(times), &mut self.pairs, &mut self.stats);
            }
        }
        // Beacon regularity is judged on the pair of the latest query, as after each query.
        let cd = latest.and_then(|(_, client)| self.pairs.peek(&(key, client)));
        let verdict = score(d, cd, cfg);
        d.last_score = verdict.score;
        d.last_reasons = verdict.reasons;
        if let Some(alarm) = due_alarm(d, max_ts, &verdict, cfg.suppression_secs, self.short_ns, self.long_ns)
        {
            self.raise(key, &verdict, alarm, out);
        }
    }

    /// One message: its transaction, its reputation hit, or (not DNS) its flow.
    fn message(&mut self, r: &Record, name: &[u8], hit: Option<&Hit>, out: &mut impl ShardSink) {
        self.stats.records += 1;
        self.now_ns = self.now_ns.max(r.ts_ns);
        if r.is_non_dns() {
            return self.non_dns(r, out);
        }
        let mut done = std::mem::take(&mut self.tx_buf);
        let exporting = self.tx.keeps_names();
        self.tx.observe(r, name, &mut Self::collect_into(exporting, &mut done));
        if let Some(hit) = hit {
            self.stats.count_hit(hit);
            let cfg = &self.cfg;
            let client = crate::hash::hash_bytes(&r.client.bytes) ^ u64::from(r.client.v6);
            let key = crate::hash::mix64(client ^ crate::hash::hash_bytes(hit.entry.as_bytes()));
            let (last, _) = self.reputation_alarms.get_or_insert_with(key, || u64::MAX);
            let due = *last == u64::MAX || r.ts_ns >= last.saturating_add(cfg.suppression_secs * NS);
            if due {
                *last = r.ts_ns;
                let sketch_k = self.sketch_k;
                let (d, evicted) = self.domains.get_or_insert_with(r.domain_hash, || {
                    let mut d = DomainState::new(domain_of(r, name), r.ts_ns, sketch_k);
                    d.baselined = !cfg.learned.is_empty() && cfg.learned.contains(&*d.name);
                    d
                });
                self.stats.domains_evicted += u64::from(evicted);
                let alarm = reputation_alarm(d, r, name, hit, cfg, self.short_ns, self.long_ns);
                self.count_alarm(alarm.severity, Reasons(1 << Reason::Reputation as u32), alarm.score);
                out.alarm(alarm);
            }
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

/// The messages of a batch alone with their domain (no partial: merged from the record).
fn alone(b: &Batch) -> impl Iterator<Item = &Record> {
    b.records.iter().filter(|r| r.flags & flag::ALONE != 0)
}

/// Calls `f` for the records of `parts` in capture order. Each part (one worker's) is in capture
/// order already, and a frame's records are all in one part: a k-way merge, no sort.
pub fn merge_in_order(parts: &[Batch], mut f: impl FnMut(&Record, &[u8], Option<&Hit>)) {
    if let [only] = parts {
        return only.records.iter().for_each(|r| f(r, only.name(r), only.hit(r)));
    }
    let mut at = vec![0usize; parts.len()];
    loop {
        let mut best: Option<(usize, u64)> = None;
        for (i, p) in parts.iter().enumerate() {
            if let Some(r) = p.records.get(at[i]) {
                if best.is_none_or(|(_, seq)| r.seq < seq) {
                    best = Some((i, r.seq));
                }
            }
        }
        let Some((i, _)) = best else { return };
        let r = &parts[i].records[at[i]];
        f(r, parts[i].name(r), parts[i].hit(r));
        at[i] += 1;
    }
}

/// The alarm a verdict raises for `d`, unless its severity is below alarm level or one was raised
/// within the suppression interval (then none; the slot is taken when one is due).
fn due_alarm(
    d: &mut DomainState,
    ts: u64,
    v: &Verdict,
    suppression_secs: u64,
    short_ns: u64,
    long_ns: u64,
) -> Option<Alarm> {
    let sev = v.severity?;
    let slot = &mut d.last_alarm_ns[sev as usize];
    if slot.is_some_and(|t| ts < t.saturating_add(suppression_secs * NS)) {
        return None;
    }
    *slot = Some(ts);
    Some(build_alarm(d, ts, v, sev, short_ns, long_ns))
}

fn build_alarm(d: &DomainState, ts: u64, v: &Verdict, sev: Severity, short_ns: u64, long_ns: u64) -> Alarm {
    let client = d.top_clients.top().unwrap_or(d.last_client);
    Alarm {
        ts,
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
        sample_qnames: d.samples.iter().map(|s| s.name.to_string()).collect(),
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
        ..build_alarm(d, r.ts_ns, &v, severity, short_ns, long_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Charset, Lexical};
    use crate::state::partial::Combiner;

    #[derive(Default)]
    struct Collect {
        alarms: Vec<Alarm>,
    }

    impl ShardSink for Collect {
        fn alarm(&mut self, alarm: Alarm) {
            self.alarms.push(alarm);
        }
        fn export(&mut self, _: ExportRecord) {}
    }

    /// A message of `domain` with subdomain `label`, from `client`.
    fn message(
        seq: u64,
        ts_ns: u64,
        label: &str,
        domain: &str,
        client: u8,
        response: bool,
    ) -> (Record, String) {
        let name = format!("{label}.{domain}");
        let mut r = Record::non_dns(
            IpAddr16::v4([10, 0, 0, client]),
            IpAddr16::v4([10, 0, 0, 53]),
            (40_000 + seq as u16 % 7, 53),
            b"",
            false,
            ts_ns,
            seq,
        );
        r.flags = if response { crate::record::flag::RESPONSE } else { 0 };
        r.domain_hash = crate::hash::hash_bytes(domain.as_bytes());
        r.name_hash = crate::hash::hash_bytes(name.as_bytes());
        r.domain_len = domain.len() as u8;
        r.qtype = if seq.is_multiple_of(5) { 16 } else { 1 };
        r.rcode = if response && seq.is_multiple_of(3) { 3 } else { 0 };
        r.msg_len = 60 + label.len() as u16;
        r.lex = Lexical {
            qname_len: name.len() as u8,
            labels: 3,
            longest_label: label.len() as u8,
            sub_len: label.len() as u8,
            charset: if label.len() > 20 { Charset::Hex } else { Charset::Alpha },
            entropy: 3.9,
            digits: 4,
            uppers: 0,
        };
        // A dnscat2-like session on one domain, a benign family on another.
        if domain == "tunnel.example" && seq.is_multiple_of(4) {
            r.tool = 3;
            r.tool_session = 7 + seq.is_multiple_of(8) as u16;
        }
        if domain == "av.example" {
            r.family = 1;
        }
        (r, name)
    }

    /// Messages over three domains, eight clients and two merge units.
    fn traffic() -> Vec<(Record, String, u64)> {
        let mut out = Vec::new();
        for seq in 0..600u64 {
            let ts = 1_000_000_000_000 + seq * 37_000_000;
            let mut domain = ["tunnel.example", "av.example", "www.example"][(seq % 3) as usize];
            // Rare domains: mostly alone in their part, sometimes not.
            if seq % 29 == 0 {
                domain = ["rare0.example", "rare1.example"][(seq % 2) as usize];
            }
            let label = if domain == "tunnel.example" {
                format!("{:032x}", crate::hash::mix64(seq))
            } else {
                format!("h{}", seq % 11)
            };
            let client = 1 + (crate::hash::mix64(seq / 2) % 8) as u8;
            let (r, name) = message(seq, ts, &label, domain, client, seq % 2 == 1);
            out.push((r, name, seq / 300));
        }
        out
    }

    fn batch(msgs: &[&(Record, String, u64)]) -> Batch {
        let mut b = Batch::default();
        let mut c = Combiner::new(64);
        for (r, name, unit) in msgs {
            let mut r = *r;
            r.unit = *unit as u32;
            b.push(r, name.as_bytes());
            c.add(&b.records, b.len() - 1);
        }
        c.finish_into(&mut b.partials, &mut b.records);
        b
    }

    /// What a shard holds, as text: domains and pairs, by key.
    fn state(s: &Shard) -> String {
        let mut domains: Vec<String> = s.domains.iter().map(|(k, d)| format!("{k} {d:?}")).collect();
        domains.sort();
        let mut pairs: Vec<String> = s.pairs.iter().map(|(k, p)| format!("{k:?} {p:?}")).collect();
        pairs.sort();
        format!("{domains:?}\n{pairs:?}")
    }

    #[test]
    fn parts_merge_as_the_whole() {
        let msgs = traffic();
        let cfg = Config::default();
        let mut whole = Shard::new(&cfg, 1);
        let mut out_whole = Collect::default();
        for unit in 0..2 {
            let part: Vec<_> = msgs.iter().filter(|m| m.2 == unit).collect();
            whole.apply(&[batch(&part)], &mut out_whole);
        }
        // The same units, each split over three workers by a hash of the client's port.
        let mut split = Shard::new(&cfg, 1);
        let mut out_split = Collect::default();
        for unit in 0..2 {
            let parts: Vec<Batch> = (0..3)
                .map(|w| {
                    let mine: Vec<_> =
                        msgs.iter().filter(|m| m.2 == unit && m.0.client_port % 3 == w).collect();
                    batch(&mine)
                })
                .collect();
            split.apply(&parts, &mut out_split);
        }
        // Both units in one epoch of three parts: merged unit by unit all the same.
        let mut epoch = Shard::new(&cfg, 1);
        let mut out_epoch = Collect::default();
        let parts: Vec<Batch> = (0..3)
            .map(|w| batch(&msgs.iter().filter(|m| m.0.client_port % 3 == w).collect::<Vec<_>>()))
            .collect();
        epoch.apply(&parts, &mut out_epoch);
        assert_eq!(format!("{:?}", out_whole.alarms), format!("{:?}", out_epoch.alarms));
        assert_eq!(state(&whole), state(&epoch));
        assert_eq!(whole.stats, epoch.stats);
        assert!(!out_whole.alarms.is_empty(), "the tunnel domain alarms");
        assert_eq!(format!("{:?}", out_whole.alarms), format!("{:?}", out_split.alarms));
        assert_eq!(state(&whole), state(&split));
        assert_eq!(whole.stats, split.stats);
        assert_eq!(whole.stats.merges, 10, "one merge per domain per unit");
        assert_eq!(whole.stats.records, 600);
    }

    #[test]
    fn a_hot_domain_costs_one_merge_per_batch() {
        let msgs: Vec<_> = (0..5_000u64)
            .map(|seq| {
                let label = format!("{:016x}", crate::hash::mix64(seq));
                let (r, name) = message(seq, 1_000_000_000 + seq * 1_000, &label, "flood.example", 1, false);
                (r, name, 0)
            })
            .collect();
        let refs: Vec<_> = msgs.iter().collect();
        let b = batch(&refs);
        assert_eq!(b.partials.domains.len(), 1);
        assert_eq!(b.partials.pairs.len(), 1);
        assert!(b.partials.pairs[0].burst);
        assert_eq!(b.partials.names.len(), 64, "the sketch's k items, not one per name");
        let mut s = Shard::new(&Config::default(), 1);
        s.apply(&[b], &mut Collect::default());
        assert_eq!((s.stats.merges, s.stats.records), (1, 5_000));
        let d = s.domains.peek(&msgs[0].0.domain_hash).expect("tracked");
        assert_eq!(d.short.queries, 5_000);
        assert!((d.short.unique_names() - 5_000.0).abs() < 2_000.0, "{}", d.short.unique_names());
        assert_eq!(d.samples.len(), 3);
    }
}
