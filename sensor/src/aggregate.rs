//! An aggregation shard: owns the state of the registered domains routed to it, scores them after
//! each update and raises alarms, at most one per (domain, severity) per suppression interval.

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::config::Config;
use crate::detect::score::{score, Verdict};
use crate::detect::Severity;
use crate::flow::IpAddr16;
use crate::output::alarm::{Alarm, WindowCounts};
use crate::record::Record;
use crate::state::domain::{ClientDomain, DomainState};

const NS: u64 = 1_000_000_000;

/// Counters of one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub records: u64,
    pub domains_evicted: u64,
    pub pairs_evicted: u64,
    pub alarms: [u64; 3],
    pub domains: u64,
    pub pairs: u64,
}

/// One shard's tables.
pub struct Shard {
    domains: LruCache<u64, DomainState>,
    pairs: LruCache<(u64, IpAddr16), ClientDomain>,
    cfg: crate::config::DetectConfig,
    short_ns: u64,
    long_ns: u64,
    sketch_k: usize,
    pub stats: ShardStats,
}

fn cap(total: usize, shards: usize) -> NonZeroUsize {
    NonZeroUsize::new((total / shards.max(1)).max(1)).unwrap_or(NonZeroUsize::MIN)
}

impl Shard {
    pub fn new(cfg: &Config, shards: usize) -> Self {
        Shard {
            domains: LruCache::new(cap(cfg.state.max_domains, shards)),
            pairs: LruCache::new(cap(cfg.state.max_client_domains, shards)),
            cfg: cfg.detect.clone(),
            short_ns: cfg.state.short_window_secs * NS,
            long_ns: cfg.state.long_window_secs * NS,
            sketch_k: cfg.state.sketch_k,
            stats: ShardStats::default(),
        }
    }

    /// Adds one record; calls `emit` for each alarm it raises.
    pub fn process(&mut self, r: &Record, emit: &mut impl FnMut(Alarm)) {
        self.stats.records += 1;
        if self.domains.get_mut(&r.domain_hash).is_none() {
            let d = DomainState::new(r.domain(), r.ts_ns, self.sketch_k);
            if let Some((k, _)) = self.domains.push(r.domain_hash, d) {
                if k != r.domain_hash {
                    self.stats.domains_evicted += 1;
                }
            }
        }
        let pair_key = (r.domain_hash, r.client);
        if self.pairs.get_mut(&pair_key).is_none() {
            if let Some((k, _)) = self.pairs.push(pair_key, ClientDomain::default()) {
                if k != pair_key {
                    self.stats.pairs_evicted += 1;
                }
            }
        }
        let cd = self.pairs.get_mut(&pair_key).map(|cd| {
            cd.update(r);
            cd.clone()
        });
        let Some(d) = self.domains.get_mut(&r.domain_hash) else { return };
        d.update(r, self.short_ns, self.long_ns);
        let verdict = score(d, cd.as_ref().filter(|_| !r.is_response()), &self.cfg);
        let Some(sev) = verdict.severity else { return };
        let slot = &mut d.last_alarm_ns[sev as usize];
        if slot.is_some_and(|t| r.ts_ns < t.saturating_add(self.cfg.suppression_secs * NS)) {
            return;
        }
        *slot = Some(r.ts_ns);
        self.stats.alarms[sev as usize] += 1;
        emit(build_alarm(d, r, &verdict, sev, self.short_ns, self.long_ns));
    }

    /// Table sizes, for the summary and metrics.
    pub fn refresh_sizes(&mut self) {
        self.stats.domains = self.domains.len() as u64;
        self.stats.pairs = self.pairs.len() as u64;
    }
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
        domain: d.name.to_string(),
        client: client.to_ip(),
        server: d.last_server.to_ip(),
        score: v.score,
        reasons: v.reasons.codes(),
        tool: d.tool.map(|t| t.name()),
        benign_family: d.benign_family().map(|f| f.name()),
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
