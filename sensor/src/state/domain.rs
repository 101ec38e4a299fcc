//! Per registered domain and per (client, domain) state.

use super::kmv::Kmv;
use super::window::Window;
use crate::detect::allowlist::Family;
use crate::detect::fingerprint::Tool;
use crate::flow::IpAddr16;
use crate::record::Record;

/// Sample names kept per domain for alarms.
pub const SAMPLES: usize = 3;

/// Misra–Gries heavy hitters over clients: finds the busiest querier in 4 slots.
#[derive(Debug, Clone, Default)]
pub struct TopClients {
    slots: [(IpAddr16, u32); 4],
}

impl TopClients {
    pub fn add(&mut self, ip: IpAddr16) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.1 > 0 && s.0 == ip) {
            s.1 += 1;
        } else if let Some(s) = self.slots.iter_mut().find(|s| s.1 == 0) {
            *s = (ip, 1);
        } else {
            for s in &mut self.slots {
                s.1 -= 1;
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
    /// Sample names of the current short window.
    pub samples: Vec<Box<str>>,
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
            clients: Kmv::new(16),
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

    /// Rolls the windows and adds a record with its query name.
    pub fn update(&mut self, r: &Record, name: &[u8], short_ns: u64, long_ns: u64) {
        let now = r.ts_ns.max(self.last_seen_ns);
        self.last_seen_ns = now;
        if self.short.roll(now, short_ns) {
            self.clients.clear();
            self.samples.clear();
            self.top_clients = TopClients::default();
        }
        self.long.roll(now, long_ns);
        // A hit counts when the tool's session detail is confirmed by two different names (always,
        // for tools without one): chance matches of dnscat2's hex framing in hash-named lookups
        // do not repeat a session.
        let mut tool_hit = false;
        if let Some(t) = Tool::from_u8(r.tool) {
            tool_hit = r.tool_session == 0;
            match &mut self.tool_session {
                Some(s) if s.tool == t && s.session == r.tool_session => {
                    s.confirmed |= s.name_hash != r.name_hash;
                    tool_hit |= s.confirmed;
                }
                other => {
                    *other = Some(ToolSession {
                        tool: t,
                        session: r.tool_session,
                        name_hash: r.name_hash,
                        confirmed: false,
                    })
                }
            }
            if tool_hit {
                self.tool = Some(t);
            }
        }
        if let Some(f) = Family::from_u8(r.family) {
            self.family = Some(f);
        }
        let new_name = self.short.add(r, tool_hit);
        self.long.add(r, tool_hit);
        if !r.is_response() {
            self.clients.insert(crate::hash::hash_bytes(&r.client.bytes), 0);
            self.top_clients.add(r.client);
            self.last_client = r.client;
            self.last_server = r.server;
            if new_name && self.samples.len() < SAMPLES {
                let name = String::from_utf8_lossy(name);
                // A name longer than the record keeps is marked as cut on the left.
                let sample = if r.flags & crate::record::flag::NAME_TRUNCATED != 0 {
                    format!("…{name}")
                } else {
                    name.into()
                };
                self.samples.push(sample.into());
            }
        }
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
            + self.samples.iter().map(|s| s.len() + 16).sum::<usize>()
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
    pub fn update(&mut self, r: &Record) {
        if r.is_response() {
            self.bytes_down += r.msg_len as u64;
            return;
        }
        self.bytes_up += r.msg_len as u64;
        let machine = matches!(
            r.lex.charset,
            crate::record::Charset::Hex | crate::record::Charset::Base32 | crate::record::Charset::Base36
        ) && r.lex.longest_label >= 6;
        self.machine_names += u32::from(machine);
        if self.queries > 0 && r.ts_ns > self.last_ns {
            let gap = (r.ts_ns - self.last_ns) as f64 / 1e9;
            // Retries and mirrored copies within 50 ms are not beacon intervals.
            if gap >= 0.05 {
                self.gaps += 1;
                let d = gap - self.mean;
                self.mean += d / self.gaps as f64;
                self.m2 += d * (gap - self.mean);
            }
        }
        self.queries += 1;
        self.last_ns = self.last_ns.max(r.ts_ns);
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
