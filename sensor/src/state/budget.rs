//! The memory a configuration may use at most: every table that grows with traffic is capped, so
//! its worst case is its cap times its worst entry. `dnsentry check-config` prints it, the flood
//! tests hold peak resident memory under it, and `docs/design.md` explains each line.

use std::mem::size_of;

use crate::config::Config;
use crate::record::Record;
use crate::state::domain::{ClientDomain, DomainState};

/// Longest presentation name kept (bytes).
const NAME: usize = 254;
/// Hash-table slot and LRU links around each entry (key hash, two pointers, control bytes).
const TABLE_OVERHEAD: usize = 48;
/// Heap bookkeeping of one allocation (glibc chunk header plus rounding).
const ALLOC: usize = 16;
/// Frame bytes assumed per captured frame in replay batches (a standard Ethernet frame; a capture
/// of jumbo frames needs proportionally more).
const FRAME: usize = 1518;
/// Client sketch of a domain: a KMV of 16 entries.
const CLIENT_SKETCH: usize = 16;
/// Sample names kept per domain.
const SAMPLES: usize = 3;
/// Pairs that sent non-DNS payloads on DNS ports, per shard.
pub const NON_DNS_FLOWS: usize = 16_384;
/// Binary, the compiled Public Suffix List, thread stacks in use, allocator arenas.
const FIXED: u64 = 64 << 20;

/// Worst-case bytes per table for one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    pub domains: u64,
    pub pairs: u64,
    pub pending: u64,
    pub non_dns: u64,
    pub tcp: u64,
    pub channels: u64,
    pub fixed: u64,
}

impl MemoryBudget {
    /// Worst-case bytes of one tracked domain with sketch size `k`.
    pub fn domain_entry(k: usize) -> usize {
        size_of::<DomainState>()
            + TABLE_OVERHEAD
            + (NAME + ALLOC)
            + 2 * (8 * k + ALLOC)
            + (8 * CLIENT_SKETCH + ALLOC)
            + SAMPLES * (size_of::<Box<str>>() + NAME + ALLOC)
    }

    pub fn pair_entry() -> usize {
        size_of::<ClientDomain>() + size_of::<(u64, [u8; 16])>() + TABLE_OVERHEAD
    }

    /// A pending query: the whole record, its key twice (table and arrival queue), and its name
    /// (kept only when exporting; counted always).
    pub fn pending_entry() -> usize {
        size_of::<Record>() + 2 * 64 + TABLE_OVERHEAD + (NAME + ALLOC)
    }

    /// The partial aggregates of a message that is alone with its domain and its pair in a batch:
    /// a domain and a pair partial, a name and a client sketch item, a sample, a query time.
    pub fn partial_entry() -> usize {
        use crate::state::partial::{DomainPartial, PairPartial, Sample};
        size_of::<DomainPartial>() + size_of::<PairPartial>() + 2 * 8 + size_of::<Sample>() + 8
    }

    /// What a worker's combiner keeps per domain of a batch: its index entries, the domain's
    /// sketches (`k` and 16 items), samples, tool sessions and a pair's query times.
    pub fn combiner_entry(k: usize) -> usize {
        use crate::state::partial::{Sample, ToolCount, PAIR_TIMES, TOOL_SESSIONS};
        2 * TABLE_OVERHEAD
            + 8 * (k + CLIENT_SKETCH)
            + 2 * ALLOC
            + SAMPLES * size_of::<Sample>()
            + (TOOL_SESSIONS + 1) * size_of::<ToolCount>()
            + 8 * PAIR_TIMES
            + 96
    }

    /// For `cfg` run with `workers` capture workers and `shards` shards. Computed in u128 and
    /// saturated, so absurd caps give `u64::MAX`, not a wrapped number.
    pub fn of(cfg: &Config, workers: usize, shards: usize) -> Self {
        let w = |v: usize| v as u128;
        let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        let (workers, shards) = (w(workers.max(1)), w(shards.max(1)));
        let (s, t, p) = (&cfg.state, &cfg.tcp, &cfg.pipeline);
        let tcp_flow = w(64 + TABLE_OVERHEAD);
        // Replay: per worker channel `channel_epochs` epochs, shared by the workers; per shard
        // channel as many epochs of records (live holds less: `channel_batches` batches of one
        // ring poll).
        let (epochs, epoch) =
            (w(p.channel_epochs(workers as usize)), w(p.epoch_frames_max(workers as usize)));
        let frames = epochs * epoch * w(FRAME + 64);
        // A record, at worst a whole name, and at worst a domain and a pair of its own in the
        // batch's partial aggregates.
        // One more epoch per shard: the emptied batches kept for reuse, a spare per (worker,
        // shard), keep their memory.
        let records = shards * (epochs + 1) * epoch * w(size_of::<Record>() + NAME + Self::partial_entry());
        // Each worker's combiner per shard keeps the tables of the largest batch it folded: at
        // worst a domain of its own per record, with both sketches full.
        let combiners = shards * epoch * w(Self::combiner_entry(s.sketch_k));
        MemoryBudget {
            domains: sat(w(s.max_domains) * w(Self::domain_entry(s.sketch_k))),
            pairs: sat(w(s.max_client_domains) * w(Self::pair_entry())),
            pending: sat(w(s.max_pending_queries) * w(Self::pending_entry())),
            non_dns: sat(shards * w(NON_DNS_FLOWS * (64 + TABLE_OVERHEAD))),
            tcp: sat(workers * (w(t.max_buffered_bytes) + w(t.max_flows) * tcp_flow)),
            // Plus the pages of a mapped replay file behind the frames in flight, given back in
            // steps (up to two steps resident).
            channels: sat(frames + records + combiners + w(2 * crate::capture::pcap::RELEASE_STEP)),
            fixed: FIXED,
        }
    }

    pub fn total(&self) -> u64 {
        [self.domains, self.pairs, self.pending, self.non_dns, self.tcp, self.channels, self.fixed]
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// One line per table, for `check-config`.
    pub fn render(&self) -> String {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        format!(
            "memory budget (worst case): {:.0} MiB = domains {:.0} + client-domain pairs {:.0} + pending \
             queries {:.0} + non-DNS flows {:.0} + TCP reassembly {:.0} + pipeline channels {:.0} + fixed {:.0}",
            mib(self.total()),
            mib(self.domains),
            mib(self.pairs),
            mib(self.pending),
            mib(self.non_dns),
            mib(self.tcp),
            mib(self.channels),
            mib(self.fixed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_each_cap() {
        let cfg = Config::default();
        let base = MemoryBudget::of(&cfg, 2, 2);
        let mut more = cfg.clone();
        more.state.max_domains *= 2;
        more.state.max_client_domains *= 2;
        more.tcp.max_buffered_bytes *= 2;
        let b = MemoryBudget::of(&more, 2, 2);
        assert_eq!(b.domains, 2 * base.domains);
        assert_eq!(b.pairs, 2 * base.pairs);
        assert!(b.tcp > base.tcp);
        assert!(MemoryBudget::of(&cfg, 4, 2).total() > base.total());
        // A domain at k = 64 costs under 3 KiB even in the worst case (docs/design.md).
        let d = MemoryBudget::domain_entry(64);
        eprintln!(
            "entries: domain {d} B, pair {} B, pending {} B",
            MemoryBudget::pair_entry(),
            MemoryBudget::pending_entry()
        );
        assert!((2048..3072).contains(&d), "{d}");
        assert!(base.render().contains("memory budget"));
        // Absurd caps saturate instead of wrapping.
        let mut huge = cfg.clone();
        huge.state.max_domains = usize::MAX;
        assert_eq!(MemoryBudget::of(&huge, 2, 2).total(), u64::MAX);
    }
}
