//! Per registered domain and per (client, domain) state.

use super::kmv::Kmv;
use super::window::Window;
use crate::detect::allowlist::Family;
use crate::detect::fingerprint::Tool;
use crate::flow::IpAddr16;
use crate::state::partial::{add_tool, Counts, PairPartial, Part, ToolCount};

/// Sample names kept per domain for alarms.
pub const SAMPLES: usize = 3;
/// Distinct clients are counted in a KMV sketch of this many entries.
pub const CLIENT_SKETCH: usize = 16;

/// Misra–Gries heavy hitters over clients: finds the busiest querier in 4 slots.
#[derive(Debug, Clone, Default)]
pub struct TopClients {
    slots: [(IpAddr16, u32); 4],
}

impl TopClients {
    pub fn add(&mut self, ip: IpAddr16) {
        self.add_n(ip, 1);
    }

    /// Adds `n` queries of `ip` at once (weighted Misra–Gries: the same as `n` single adds when
    /// `ip` holds a slot or one is free; otherwise every slot pays the smaller of `n` and the
    /// smallest count, and what is left of `n` takes a slot that reached zero).
    pub fn add_n(&mut self, ip: IpAddr16, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(s) = self.slots.iter_mut().find(|s| s.1 > 0 && s.0 == ip) {
            s.1 += n;
            return;
        }
        if let Some(s) = self.slots.iter_mut().find(|s| s.1 == 0) {
            *s = (ip, n);
            return;
        }
        let paid = self.slots.iter().map(|s| s.1).min().unwrap_or(0).min(n);
        for s in &mut self.slots {
            s.1 -= paid;
        }
        if n > paid {
            if let Some(s) = self.slots.iter_mut().find(|s| s.1 == 0) {
                *s = (ip, n - paid);
            }
        }
    }

    pub fn top(&self) -> Option<IpAddr16> {
        self.slots.iter().filter(|s| s.1 > 0).max_by_key(|s| s.1).map(|s| s.0)
    }
}

/// A tool session being confirmed: the same session detail under two different names.
#[derive(Debug, Clone, Copy)]
struct ToolSession {
    tool: Tool,
    session: u16,
    name_hash: u64,
    confirmed: bool,
}

/// A sample query name of the current short window, with its capture position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleName {
    pub seq: u64,
    pub name_hash: u64,
    pub name: Box<str>,
}

/// A sample name being chosen: (position, name hash, name, cut on the left).
type Candidate<'a> = (u64, u64, &'a [u8], bool);

/// What dnsentry knows of one registered domain.
#[derive(Debug, Clone)]
pub struct DomainState {
    pub name: Box<str>,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub short: Window,
    pub long: Window,
    /// Distinct clients (short window).
    pub clients: Kmv,
    pub top_clients: TopClients,
    pub last_server: IpAddr16,
    pub last_client: IpAddr16,
    /// Sample names of the current short window: its first distinct names.
    pub samples: Vec<SampleName>,
    /// The tool a fingerprint attributed (sticky once seen).
    pub tool: Option<Tool>,
    family: Option<Family>,
    /// The last fingerprint session seen.
    tool_session: Option<ToolSession>,
    /// In the learned baseline (`dnsentry learn`).
    pub baselined: bool,
    /// The latest verdict (exported with each transaction).
    pub last_score: u32,
    pub last_reasons: crate::detect::reason::Reasons,
    /// Capture time of the last alarm per severity (index = severity), if any.
    pub last_alarm_ns: [Option<u64>; 3],
}

impl DomainState {
    pub fn new(name: &[u8], now: u64, k: usize) -> Self {
        let mut short = Window::new(k);
        short.start_ns = now;
        let mut long = Window::new(k);
        long.start_ns = now;
        DomainState {
            name: String::from_utf8_lossy(name).into(),
            first_seen_ns: now,
            last_seen_ns: now,
            short,
            long,
            clients: Kmv::new(CLIENT_SKETCH),
            top_clients: TopClients::default(),
            last_server: IpAddr16::default(),
            last_client: IpAddr16::default(),
            samples: Vec::new(),
            tool: None,
            family: None,
            tool_session: None,
            baselined: false,
            last_score: 0,
            last_reasons: Default::default(),
            last_alarm_ns: [None; 3],
        }
    }

    /// Merges one domain's parts of one merge (every worker's part of a replay epoch, or one
    /// batch live): rolls the windows at the parts' latest time, then adds them. The result does
    /// not depend on how the messages were split into parts. `tools` is scratch space.
    pub fn merge(&mut self, parts: &[Part<'_>], tools: &mut Vec<ToolCount>, short_ns: u64, long_ns: u64) {
        let mut counts = Counts::default();
        let (mut max_ts, mut last_query, mut family) = (0u64, None, None);
        tools.clear();
        for p in parts {
            let d = p.domain;
            counts.add(&d.counts);
            max_ts = max_ts.max(d.max_ts);
            if d.last_query.is_some_and(|(s, _, _)| last_query.is_none_or(|(l, _, _)| s > l)) {
                last_query = d.last_query;
            }
            if d.family.is_some_and(|(s, _)| family.is_none_or(|(l, _)| s > l)) {
                family = d.family;
            }
            for t in p.tools {
                add_tool(tools, *t);
            }
        }
        let now = max_ts.max(self.last_seen_ns);
        self.last_seen_ns = now;
        if self.short.roll(now, short_ns) {
            self.clients.clear();
            self.samples.clear();
            self.top_clients = TopClients::default();
        }
        self.long.roll(now, long_ns);
        tools.sort_unstable_by_key(|t| t.key());
        let tool_hits = self.tool_hits(tools);
        if let Some(f) = family.and_then(|(_, f)| Family::from_u8(f)) {
            self.family = Some(f);
        }
        self.short.add_counts(&counts, tool_hits);
        self.long.add_counts(&counts, tool_hits);
        for p in parts {
            for &item in p.names {
                self.short.names.insert_item(item);
                self.long.names.insert_item(item);
            }
            for &item in p.clients {
                self.clients.insert_item(item);
            }
        }
        if let Some((_, client, server)) = last_query {
            self.last_client = client;
            self.last_server = server;
        }
        self.add_samples(parts);
    }

    /// Fingerprint hits of a merge's tool sessions (in key order). A session's messages count
    /// once its detail is confirmed by two different names (always, for tools without one):
    /// chance matches of dnscat2's hex framing in hash-named lookups do not repeat a session.
    fn tool_hits(&mut self, tools: &[ToolCount]) -> u32 {
        let mut hits = 0u32;
        for t in tools {
            let Some(tool) = Tool::from_u8(t.tool) else { continue };
            let confirmed = if t.session == 0 {
                true
            } else {
                match &mut self.tool_session {
                    Some(s) if s.tool == tool && s.session == t.session => {
                        s.confirmed |= t.names_differ || s.name_hash != t.first_name;
                        s.confirmed
                    }
                    other => {
                        *other = Some(ToolSession {
                            tool,
                            session: t.session,
                            name_hash: t.first_name,
                            confirmed: t.names_differ,
                        });
                        t.names_differ
                    }
                }
            };
            if confirmed {
                hits += t.count;
                self.tool = Some(tool);
            }
        }
        hits
    }

    /// Keeps the window's first distinct query names (by capture position) as samples.
    fn add_samples(&mut self, parts: &[Part<'_>]) {
        if self.samples.len() >= SAMPLES {
            return;
        }
        // The merge's first SAMPLES distinct names, by (position, name hash), without allocating.
        let mut best: [Option<Candidate<'_>>; SAMPLES] = [None; SAMPLES];
        for p in parts {
            for s in p.samples {
                let c = (s.seq, s.name_hash, p.sample_name(s), s.truncated);
                let key = |c: &Candidate<'_>| (c.0, c.1);
                if let Some(kept) = best.iter_mut().flatten().find(|k| k.1 == c.1) {
                    if key(&c) < key(kept) {
                        *kept = c;
                    }
                } else if let Some(slot) = best.iter_mut().find(|b| b.is_none()) {
                    *slot = Some(c);
                } else if let Some(worst) =
                    best.iter_mut().flatten().max_by_key(|k| key(k)).filter(|k| key(&c) < key(k))
                {
                    *worst = c;
                }
            }
        }
        best.sort_unstable_by_key(|b| b.map_or((u64::MAX, u64::MAX), |b| (b.0, b.1)));
        for (seq, name_hash, name, truncated) in best.into_iter().flatten() {
            if self.samples.len() >= SAMPLES {
                break;
            }
            if self.samples.iter().any(|s| s.name_hash == name_hash) {
                continue;
            }
            let name = String::from_utf8_lossy(name);
            // A name longer than the record keeps is marked as cut on the left.
            let name = if truncated { format!("…{name}").into() } else { name.into() };
            self.samples.push(SampleName { seq, name_hash, name });
        }
    }

    /// Adds one message alone (a merge of one): for tests.
    #[cfg(test)]
    pub fn update(&mut self, r: &crate::record::Record, name: &[u8], short_ns: u64, long_ns: u64) {
        let mut r = *r;
        r.name_at = 0;
        r.name_len = name.len().min(255) as u8;
        let single = crate::state::partial::Single::of(&r);
        self.merge(&[single.part(name)], &mut Vec::new(), short_ns, long_ns);
    }

    /// The domain's benign family, when most of its messages in the window belong to one.
    pub fn benign_family(&self) -> Option<Family> {
        let total = self.short.queries + self.short.responses;
        self.family.filter(|_| total > 0 && self.short.family_hits * 2 >= total)
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.name.len()
            + self.short.names.heap_bytes()
            + self.long.names.heap_bytes()
            + self.clients.heap_bytes()
            + self.samples.iter().map(|s| s.name.len() + 32).sum::<usize>()
    }
}

/// One client's queries to one domain: rate and inter-arrival regularity.
#[derive(Debug, Clone, Default)]
pub struct ClientDomain {
    pub queries: u32,
    pub last_ns: u64,
    /// Welford running mean and sum of squares of inter-arrival seconds.
    mean: f64,
    m2: f64,
    gaps: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Queries whose longest label looks machine-made (hex/base32/base36 with digits, 6+ chars).
    machine_names: u32,
}

impl ClientDomain {
    /// Adds one merge's messages of this pair; `times` are its query times, sorted (empty when
    /// the merge had more than `PAIR_TIMES` of them: a burst, whose inner gaps do not count).
    pub fn merge(&mut self, p: &PairPartial, times: &[u64]) {
        self.bytes_up += p.bytes_up;
        self.bytes_down += p.bytes_down;
        self.machine_names += p.machine_names;
        if p.queries == 0 {
            return;
        }
        if p.burst {
            self.gap_to(p.min_ts);
            self.queries += p.queries;
            self.last_ns = self.last_ns.max(p.max_ts);
            return;
        }
        for &ts in times {
            self.gap_to(ts);
            self.queries += 1;
            self.last_ns = self.last_ns.max(ts);
        }
    }

    /// Counts the interval from the last query to one at `ts`.
    fn gap_to(&mut self, ts: u64) {
        if self.queries > 0 && ts > self.last_ns {
            let gap = (ts - self.last_ns) as f64 / 1e9;
            // Retries and mirrored copies within 50 ms are not beacon intervals.
            if gap >= 0.05 {
                self.gaps += 1;
                let d = gap - self.mean;
                self.mean += d / self.gaps as f64;
                self.m2 += d * (gap - self.mean);
            }
        }
    }

    /// Share of queries with machine-made names.
    pub fn machine_names_ratio(&self) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            self.machine_names as f64 / self.queries as f64
        }
    }

    /// Regular intervals of at least a second: a periodic check-in.
    pub fn is_beacon(&self, min_queries: u32, max_cv: f64) -> bool {
        if self.gaps + 1 < min_queries || self.mean < 1.0 {
            return false;
        }
        let sd = (self.m2 / self.gaps as f64).sqrt();
        sd / self.mean <= max_cv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_clients_finds_heavy_hitter() {
        let mut t = TopClients::default();
        for i in 0..100u8 {
            t.add(IpAddr16::v4([10, 0, 0, 1]));
            t.add(IpAddr16::v4([10, 0, 1, i]));
        }
        assert_eq!(t.top(), Some(IpAddr16::v4([10, 0, 0, 1])));
    }
}
