//! Queries waiting for their response: matches each response to its query (client, server,
//! client port, DNS id, name) and counts queries left unanswered after a timeout, in a bounded
//! table. A high unanswered ratio means the SPAN sees only one direction, or loses frames. Each
//! completed, expired or unmatched exchange is handed out as a [`Transaction`] (NetFlow export).

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::flow::IpAddr16;
use crate::record::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TxKey {
    client: IpAddr16,
    server: IpAddr16,
    client_port: u16,
    id: u16,
    name_hash: u64,
}

impl TxKey {
    fn of(r: &Record) -> Self {
        TxKey {
            client: r.client,
            server: r.server,
            client_port: r.client_port,
            id: r.dns_id,
            name_hash: r.name_hash,
        }
    }
}

/// Counters of the matcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxStats {
    pub answered: u64,
    /// Queries whose response did not come within the timeout.
    pub unanswered: u64,
    /// Pending queries pushed out by a full table (also counted as unanswered).
    pub evicted: u64,
    /// Responses with no pending query (their query was before the capture, lost, or evicted).
    pub unmatched_responses: u64,
}

/// A query and its response; either may be missing (timeout, or the query was not seen).
#[derive(Debug, Clone, Copy)]
pub struct Transaction {
    pub query: Option<Record>,
    pub response: Option<Record>,
}

/// The pending-query table.
pub struct Transactions {
    pending: LruCache<TxKey, Record>,
    timeout_ns: u64,
    last_sweep_ns: u64,
    pub stats: TxStats,
}

impl Transactions {
    pub fn new(capacity: usize, timeout_secs: u64) -> Self {
        Transactions {
            pending: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
            timeout_ns: timeout_secs * 1_000_000_000,
            last_sweep_ns: 0,
            stats: TxStats::default(),
        }
    }

    /// Adds a message; `out` receives every transaction it completes or expires.
    pub fn observe(&mut self, r: &Record, out: &mut impl FnMut(Transaction)) {
        if r.ts_ns >= self.last_sweep_ns.saturating_add(self.timeout_ns / 4) {
            self.sweep(r.ts_ns, out);
        }
        let key = TxKey::of(r);
        if r.is_response() {
            let query = self.pending.pop(&key);
            match query {
                Some(_) => self.stats.answered += 1,
                None => self.stats.unmatched_responses += 1,
            }
            out(Transaction { query, response: Some(*r) });
        } else if let Some((old_key, old)) = self.pending.push(key, *r) {
            if old_key == key {
                // A retransmission with the same id: the first one has no response of its own.
                self.stats.unanswered += 1;
            } else {
                self.stats.evicted += 1;
                self.stats.unanswered += 1;
            }
            out(Transaction { query: Some(old), response: None });
        }
    }

    /// Expires the queries older than the timeout.
    pub fn sweep(&mut self, now_ns: u64, out: &mut impl FnMut(Transaction)) {
        self.last_sweep_ns = now_ns;
        while let Some((_, q)) = self.pending.peek_lru() {
            if q.ts_ns.saturating_add(self.timeout_ns) > now_ns {
                break;
            }
            if let Some((_, q)) = self.pending.pop_lru() {
                self.stats.unanswered += 1;
                out(Transaction { query: Some(q), response: None });
            }
        }
    }

    /// Hands out every pending query as unanswered (end of a replay).
    pub fn flush(&mut self, out: &mut impl FnMut(Transaction)) {
        while let Some((_, q)) = self.pending.pop_lru() {
            self.stats.unanswered += 1;
            out(Transaction { query: Some(q), response: None });
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
