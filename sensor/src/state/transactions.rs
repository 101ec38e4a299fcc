//! Queries waiting for their response: matches each response to its query (client, server,
//! client port, DNS id, name) and counts queries left unanswered after a timeout, in a bounded
//! table. A high unanswered ratio means the SPAN sees only one direction, or loses frames. Each
//! completed, expired or unmatched exchange is handed out as a [`Transaction`] with its query name
//! (NetFlow export). A pending query keeps its name only when names are wanted (export on): with
//! export off, the table allocates nothing per query.

use std::collections::{HashMap, VecDeque};

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

/// A query waiting for its response.
struct Pending {
    query: Record,
    /// Its name, when names are kept.
    name: Option<Box<[u8]>>,
}

impl Pending {
    fn name(&self) -> &[u8] {
        self.name.as_deref().unwrap_or_default()
    }
}

/// The pending-query table: a hash map (no allocation per entry once grown) plus the queries in
/// arrival order for expiry and eviction. Order entries of answered queries go stale and are
/// skipped; the queue is compacted when it outgrows the table.
pub struct Transactions {
    pending: HashMap<TxKey, Pending, crate::hash::FastState>,
    keep_names: bool,
    order: VecDeque<(u64, TxKey)>,
    capacity: usize,
    timeout_ns: u64,
    last_sweep_ns: u64,
    pub stats: TxStats,
}

impl Transactions {
    /// `keep_names`: whether pending queries keep their names (for export).
    pub fn new(capacity: usize, timeout_secs: u64, keep_names: bool) -> Self {
        Transactions {
            pending: HashMap::default(),
            keep_names,
            order: VecDeque::new(),
            capacity: capacity.max(1),
            timeout_ns: timeout_secs * 1_000_000_000,
            last_sweep_ns: 0,
            stats: TxStats::default(),
        }
    }

    /// Removes and returns the pending query an order entry stands for, if it is still live.
    fn take_live(&mut self, ts: u64, key: &TxKey) -> Option<Pending> {
        match self.pending.get(key) {
            Some(q) if q.query.ts_ns == ts => self.pending.remove(key),
            _ => None,
        }
    }

    /// Hands out a query that got no response.
    fn unanswered(q: Pending, out: &mut impl FnMut(Transaction, &[u8])) {
        out(Transaction { query: Some(q.query), response: None }, q.name());
    }

    /// Adds a message with its query name; `out` receives every transaction it completes or
    /// expires, with the transaction's query name (empty when names are not kept).
    pub fn observe(&mut self, r: &Record, name: &[u8], out: &mut impl FnMut(Transaction, &[u8])) {
        if r.ts_ns >= self.last_sweep_ns.saturating_add(self.timeout_ns / 4) {
            self.sweep(r.ts_ns, out);
        }
        let key = TxKey::of(r);
        if r.is_response() {
            let mut query = self.pending.remove(&key);
            // A query past its timeout is unanswered whether or not a sweep came by yet: sweeps
            // run on each shard's own schedule, and results must not depend on the shard count.
            if let Some(q) = query.take_if(|q| r.ts_ns >= q.query.ts_ns.saturating_add(self.timeout_ns)) {
                self.stats.unanswered += 1;
                Self::unanswered(q, out);
            }
            match query {
                Some(_) => self.stats.answered += 1,
                None => self.stats.unmatched_responses += 1,
            }
            // The response repeats the question (the key includes its hash): its name serves.
            out(Transaction { query: query.map(|q| q.query), response: Some(*r) }, name);
            return;
        }
        let entry = Pending { query: *r, name: self.keep_names.then(|| name.into()) };
        if let Some(old) = self.pending.insert(key, entry) {
            // A retransmission with the same id: the first one has no response of its own.
            self.stats.unanswered += 1;
            Self::unanswered(old, out);
        }
        self.order.push_back((r.ts_ns, key));
        while self.pending.len() > self.capacity {
            let Some((ts, k)) = self.order.pop_front() else { break };
            if let Some(q) = self.take_live(ts, &k) {
                self.stats.evicted += 1;
                self.stats.unanswered += 1;
                Self::unanswered(q, out);
            }
        }
        if self.order.len() > 4 * self.capacity {
            let pending = &self.pending;
            self.order.retain(|(ts, k)| pending.get(k).is_some_and(|q| q.query.ts_ns == *ts));
        }
    }

    /// Expires the queries older than the timeout.
    pub fn sweep(&mut self, now_ns: u64, out: &mut impl FnMut(Transaction, &[u8])) {
        self.last_sweep_ns = now_ns;
        while let Some(&(ts, k)) = self.order.front() {
            if ts.saturating_add(self.timeout_ns) > now_ns {
                break;
            }
            self.order.pop_front();
            if let Some(q) = self.take_live(ts, &k) {
                self.stats.unanswered += 1;
                Self::unanswered(q, out);
            }
        }
    }

    /// Hands out every pending query as unanswered (end of a replay), oldest first.
    pub fn flush(&mut self, out: &mut impl FnMut(Transaction, &[u8])) {
        while let Some((ts, k)) = self.order.pop_front() {
            if let Some(q) = self.take_live(ts, &k) {
                self.stats.unanswered += 1;
                Self::unanswered(q, out);
            }
        }
        self.pending.clear();
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether pending queries keep their names (export is on).
    pub fn keeps_names(&self) -> bool {
        self.keep_names
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::flag;

    fn rec(id: u16, ts_s: u64, response: bool) -> Record {
        let mut r = Record::non_dns(
            IpAddr16::v4([10, 0, 0, 1]),
            IpAddr16::v4([10, 0, 0, 53]),
            (4000, 53),
            b"",
            false,
            ts_s * 1_000_000_000,
            0,
        );
        r.flags = if response { flag::RESPONSE } else { 0 };
        r.dns_id = id;
        r.name_hash = 7;
        r
    }

    #[test]
    fn match_timeout_eviction_and_flush() {
        let mut t = Transactions::new(2, 5, true);
        let mut out = Vec::new();
        let push = |t: &mut Transactions, r: Record, out: &mut Vec<Transaction>| {
            t.observe(&r, b"q.example.com", &mut |x, name| {
                assert_eq!(name, b"q.example.com", "every transaction carries its name");
                out.push(x)
            })
        };
        push(&mut t, rec(1, 0, false), &mut out);
        push(&mut t, rec(1, 1, true), &mut out);
        assert_eq!(t.stats.answered, 1);
        assert!(out[0].query.is_some() && out[0].response.is_some());
        // Capacity 2: a third pending query evicts the oldest.
        push(&mut t, rec(2, 2, false), &mut out);
        push(&mut t, rec(3, 2, false), &mut out);
        push(&mut t, rec(4, 2, false), &mut out);
        assert_eq!(t.stats.evicted, 1);
        assert_eq!(t.len(), 2);
        // A response nobody asked for.
        push(&mut t, rec(9, 3, true), &mut out);
        assert_eq!(t.stats.unmatched_responses, 1);
        // A response after the timeout answers nothing, swept or not.
        let mut late = Transactions::new(4, 5, false);
        late.observe(&rec(7, 10, false), b"", &mut |_, _| {});
        late.last_sweep_ns = 15_000_000_000; // no sweep between query and response
        late.observe(&rec(7, 15, true), b"", &mut |_, _| {});
        assert_eq!((late.stats.answered, late.stats.unanswered, late.stats.unmatched_responses), (0, 1, 1));
        // Time passes: both pending queries expire.
        push(&mut t, rec(5, 20, false), &mut out);
        assert_eq!(t.stats.unanswered, 3);
        let mut rest = Vec::new();
        t.flush(&mut |x, _| rest.push(x));
        assert_eq!(rest.len(), 1);
        assert!(t.is_empty());
        assert_eq!(t.stats.unanswered, 4);
    }

    #[test]
    fn order_queue_stays_bounded() {
        let mut t = Transactions::new(8, 5, false);
        for i in 0..10_000u64 {
            t.observe(&rec(i as u16, i / 100, false), b"x", &mut |_, _| {});
            t.observe(&rec(i as u16, i / 100, true), b"x", &mut |_, name| assert_eq!(name, b"x"));
        }
        assert!(t.order.len() <= 4 * 8 + 1, "{}", t.order.len());
        assert_eq!(t.stats.answered, 10_000);
    }
}
