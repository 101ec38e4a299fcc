//! Combining before the shard: a worker folds the records of one batch per registered domain and
//! per (client, domain) pair into compact partial aggregates ([`Partials`]); the shard merges them
//! into its windows and scores once per merge, so a hot domain costs its shard one merge per batch
//! instead of one update per message.
//!
//! Every part of a partial merges *exactly*, whatever way the records were split over workers:
//! counters add, the name and client sketches keep the `k` smallest hashes (the union's are among
//! the parts'), the samples are the first three distinct names by capture position, the last
//! query and the family are those of the highest position, a pair's query times are kept sorted
//! (up to [`PAIR_TIMES`], beyond which the pair's batch counts as one burst) and tool sessions are
//! the [`TOOL_SESSIONS`] smallest keys. So replay, which merges every worker's part of an epoch
//! before applying it, gives the same state for any number of workers and shards.

use std::collections::HashMap;

use super::kmv::Kmv;
use crate::flow::IpAddr16;
use crate::hash::FastState;
use crate::record::{flag, Charset, Record};
use crate::state::window::{is_high_entropy, ENCODED_LABEL, LONG_NAME};

/// Query times a pair keeps per batch; more make the batch one burst (its inner gaps are not
/// beacon intervals: a check-in does not come 16 times within one batch).
pub const PAIR_TIMES: usize = 16;
/// Tool sessions a partial keeps (the smallest keys): sessions are few per domain; chance matches
/// of a fingerprint beyond these are forgotten.
pub const TOOL_SESSIONS: usize = 4;
/// Sample names a partial keeps (the window keeps as many).
pub const SAMPLES: usize = crate::state::domain::SAMPLES;

/// A range into one of the flat vectors of [`Partials`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub at: u32,
    pub len: u32,
}

impl Span {
    fn of<T>(v: &[T], from: usize) -> Span {
        Span { at: from as u32, len: (v.len() - from) as u32 }
    }

    pub fn get<'a, T>(&self, v: &'a [T]) -> &'a [T] {
        let at = self.at as usize;
        v.get(at..at + self.len as usize).unwrap_or_default()
    }
}

/// Counters of one domain's messages that simply add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub queries: u32,
    pub responses: u32,
    pub nxdomain: u32,
    pub non_address: u32,
    pub rare_qtype: u32,
    pub long_names: u32,
    pub encoded: u32,
    pub high_entropy: u32,
    pub family_hits: u32,
    pub answer_payload: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.queries += o.queries;
        self.responses += o.responses;
        self.nxdomain += o.nxdomain;
        self.non_address += o.non_address;
        self.rare_qtype += o.rare_qtype;
        self.long_names += o.long_names;
        self.encoded += o.encoded;
        self.high_entropy += o.high_entropy;
        self.family_hits += o.family_hits;
        self.answer_payload += o.answer_payload;
    }

    /// Counts one message, as the window does.
    fn count(&mut self, r: &Record) {
        use crate::dns::view::{RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, TYPE_KEY, TYPE_NULL, TYPE_PRIVATE};
        self.family_hits += u32::from(r.family != 0);
        if r.is_response() {
            self.responses += 1;
            self.nxdomain += u32::from(r.rcode == RCODE_NXDOMAIN);
            self.answer_payload += r.answer_payload as u64;
            return;
        }
        self.queries += 1;
        self.non_address += u32::from(!matches!(r.qtype, TYPE_A | TYPE_AAAA));
        self.rare_qtype += u32::from(matches!(r.qtype, TYPE_NULL | TYPE_PRIVATE | TYPE_KEY));
        self.long_names += u32::from(r.lex.qname_len >= LONG_NAME);
        self.encoded += u32::from(r.lex.charset.is_encoding() && r.lex.longest_label >= ENCODED_LABEL);
        self.high_entropy += u32::from(is_high_entropy(r.lex.entropy, r.lex.sub_len));
    }
}

/// Messages of one tool session (fingerprint and session detail) in a partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolCount {
    pub tool: u8,
    pub session: u16,
    pub count: u32,
    /// Capture position and name hash of the session's first message.
    pub first_seq: u64,
    pub first_name: u64,
    /// Seen under two different names (the session is confirmed).
    pub names_differ: bool,
}

impl ToolCount {
    pub fn key(&self) -> (u8, u16) {
        (self.tool, self.session)
    }

    /// Adds `o` (same key).
    pub fn absorb(&mut self, o: &ToolCount) {
        self.count += o.count;
        self.names_differ |= o.names_differ || o.first_name != self.first_name;
        if (o.first_seq, o.first_name) < (self.first_seq, self.first_name) {
            self.first_seq = o.first_seq;
            self.first_name = o.first_name;
        }
    }
}

/// A sample query name: its first capture position in the batch and where its bytes are in the
/// batch's name buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub seq: u64,
    pub name_hash: u64,
    pub name_at: u32,
    pub name_len: u8,
    /// The name was longer than the record keeps (cut on the left).
    pub truncated: bool,
}

/// One registered domain's messages in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainPartial {
    /// The merge unit (`Record::unit`): a shard merges one unit's parts of a domain at once.
    pub unit: u64,
    pub domain_hash: u64,
    /// Capture positions of the first and last message.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Earliest and latest capture time.
    pub min_ts: u64,
    pub max_ts: u64,
    pub counts: Counts,
    /// The last query (highest position): its position, client and server.
    pub last_query: Option<(u64, IpAddr16, IpAddr16)>,
    /// The benign family of the last message that had one, with its position.
    pub family: Option<(u64, u8)>,
    /// The registered domain's name in the batch's name buffer.
    pub name_at: u32,
    pub name_len: u8,
    /// Kept name-sketch items (hash with the subdomain length in its low byte), ascending.
    pub names: Span,
    /// Kept client-sketch items, ascending.
    pub clients: Span,
    pub samples: Span,
    pub tools: Span,
    /// The domain's first pair in [`Partials::pairs`]; the rest follow through
    /// [`PairPartial::next`], in the order of their first messages.
    pub first_pair: u32,
}

/// One client's messages to one domain in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairPartial {
    pub client: IpAddr16,
    /// Capture position of the pair's first message: pairs are applied in this order.
    pub first_seq: u64,
    pub queries: u32,
    pub machine_names: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Position of the pair's last query (0: none).
    pub last_query_seq: u64,
    pub min_ts: u64,
    pub max_ts: u64,
    /// The query times, sorted, unless more than [`PAIR_TIMES`] came (`burst`).
    pub times: Span,
    pub burst: bool,
    /// The next pair of the same domain ([`NO_PAIR`]: none).
    pub next: u32,
}

/// The end of a domain's list of pairs.
pub const NO_PAIR: u32 = u32::MAX;

impl PairPartial {
    fn new(client: IpAddr16, first_seq: u64) -> Self {
        PairPartial {
            client,
            first_seq,
            queries: 0,
            machine_names: 0,
            bytes_up: 0,
            bytes_down: 0,
            last_query_seq: 0,
            min_ts: u64::MAX,
            max_ts: 0,
            times: Span::default(),
            burst: false,
            next: NO_PAIR,
        }
    }

    /// Adds the counters of `o` (same client); times are merged by the caller.
    pub fn absorb(&mut self, o: &PairPartial) {
        self.first_seq = self.first_seq.min(o.first_seq);
        self.queries += o.queries;
        self.machine_names += o.machine_names;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.last_query_seq = self.last_query_seq.max(o.last_query_seq);
        self.min_ts = self.min_ts.min(o.min_ts);
        self.max_ts = self.max_ts.max(o.max_ts);
        self.burst |= o.burst;
    }
}

/// Whether a query's longest label looks machine-made (hex/base32/base36 with 6+ characters).
pub fn is_machine_name(r: &Record) -> bool {
    matches!(r.lex.charset, Charset::Hex | Charset::Base32 | Charset::Base36) && r.lex.longest_label >= 6
}

/// A batch's partial aggregates, in flat vectors (a handful of allocations per batch, none per
/// message). Domains are in the order of their first message.
#[derive(Debug, Clone, Default)]
pub struct Partials {
    pub domains: Vec<DomainPartial>,
    pub names: Vec<u64>,
    pub clients: Vec<u64>,
    pub samples: Vec<Sample>,
    pub tools: Vec<ToolCount>,
    pub pairs: Vec<PairPartial>,
    pub times: Vec<u64>,
}

impl Partials {
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Empties every vector, keeping its memory.
    pub fn clear(&mut self) {
        self.domains.clear();
        self.names.clear();
        self.clients.clear();
        self.samples.clear();
        self.tools.clear();
        self.pairs.clear();
        self.times.clear();
    }

    /// Bytes held, for the memory budget's accounting of what is in flight.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.domains.capacity() * size_of::<DomainPartial>()
            + (self.names.capacity() + self.clients.capacity() + self.times.capacity()) * 8
            + self.samples.capacity() * size_of::<Sample>()
            + self.tools.capacity() * size_of::<ToolCount>()
            + self.pairs.capacity() * size_of::<PairPartial>()
    }
}

/// What one message contributes: the pieces both the combiner and [`Single`] build from it.
impl DomainPartial {
    /// A partial started by `r`, whose name is at `name_at` in its batch's name buffer.
    fn start(r: &Record, unit: u64, name_at: u32) -> DomainPartial {
        DomainPartial {
            unit,
            domain_hash: r.domain_hash,
            first_seq: r.seq,
            last_seq: r.seq,
            min_ts: r.ts_ns,
            max_ts: r.ts_ns,
            counts: Counts::default(),
            last_query: None,
            family: None,
            name_at: name_at + u32::from(r.name_len.saturating_sub(r.domain_len)),
            name_len: r.domain_len.min(r.name_len),
            names: Span::default(),
            clients: Span::default(),
            samples: Span::default(),
            tools: Span::default(),
            first_pair: NO_PAIR,
        }
    }

    /// Adds `r`'s counters, times, family and last query.
    fn fold(&mut self, r: &Record) {
        self.first_seq = self.first_seq.min(r.seq);
        self.last_seq = self.last_seq.max(r.seq);
        self.min_ts = self.min_ts.min(r.ts_ns);
        self.max_ts = self.max_ts.max(r.ts_ns);
        self.counts.count(r);
        if r.family != 0 && self.family.is_none_or(|(s, _)| r.seq >= s) {
            self.family = Some((r.seq, r.family));
        }
        if !r.is_response() && self.last_query.is_none_or(|(s, _, _)| r.seq >= s) {
            self.last_query = Some((r.seq, r.client, r.server));
        }
    }
}

impl ToolCount {
    /// The tool session `r` belongs to, if a fingerprint matched it.
    fn of(r: &Record) -> Option<ToolCount> {
        (r.tool != 0).then_some(ToolCount {
            tool: r.tool,
            session: r.tool_session,
            count: 1,
            first_seq: r.seq,
            first_name: r.name_hash,
            names_differ: false,
        })
    }
}

impl Sample {
    /// `r`'s name as a sample (queries only).
    fn of(r: &Record, name_at: u32) -> Option<Sample> {
        (!r.is_response()).then_some(Sample {
            seq: r.seq,
            name_hash: r.name_hash,
            name_at,
            name_len: r.name_len,
            truncated: r.flags & flag::NAME_TRUNCATED != 0,
        })
    }
}

impl PairPartial {
    /// Adds `r`; returns its time when it is a query (for the pair's query times).
    fn fold(&mut self, r: &Record) -> Option<u64> {
        if r.is_response() {
            self.bytes_down += r.msg_len as u64;
            return None;
        }
        self.bytes_up += r.msg_len as u64;
        self.machine_names += u32::from(is_machine_name(r));
        self.last_query_seq = self.last_query_seq.max(r.seq);
        self.min_ts = self.min_ts.min(r.ts_ns);
        self.max_ts = self.max_ts.max(r.ts_ns);
        self.queries += 1;
        Some(r.ts_ns)
    }
}

/// `r`'s items of the name and client sketches (queries only).
fn sketch_items(r: &Record) -> Option<(u64, u64)> {
    (!r.is_response()).then(|| {
        (Kmv::item(r.name_hash, r.lex.sub_len), Kmv::item(crate::hash::hash_bytes(&r.client.bytes), 0))
    })
}

/// One domain's part of one merge, as slices: from a batch's [`Partials`] or from a [`Single`].
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub domain: &'a DomainPartial,
    /// The domain's sketch items.
    pub names: &'a [u64],
    pub clients: &'a [u64],
    pub samples: &'a [Sample],
    pub tools: &'a [ToolCount],
    /// The pairs the domain's list runs through, and the times their spans point into.
    pub pairs: &'a [PairPartial],
    pub times: &'a [u64],
    /// The batch's name buffer (the domain's name and the samples are in it).
    pub text: &'a [u8],
}

impl<'a> Part<'a> {
    /// Domain `d` of a batch's partials.
    pub fn of(partials: &'a Partials, text: &'a [u8], d: &'a DomainPartial) -> Self {
        Part {
            domain: d,
            names: d.names.get(&partials.names),
            clients: d.clients.get(&partials.clients),
            samples: d.samples.get(&partials.samples),
            tools: d.tools.get(&partials.tools),
            pairs: &partials.pairs,
            times: &partials.times,
            text,
        }
    }

    /// The registered domain's name.
    pub fn domain_name(&self) -> &'a [u8] {
        let at = self.domain.name_at as usize;
        self.text.get(at..at + self.domain.name_len as usize).unwrap_or_default()
    }

    /// The domain's pairs, in the order of their first messages.
    pub fn pairs(&self) -> impl Iterator<Item = &'a PairPartial> + 'a {
        let (pairs, mut next) = (self.pairs, self.domain.first_pair);
        std::iter::from_fn(move || {
            let p = pairs.get(next as usize)?;
            next = p.next;
            Some(p)
        })
    }

    /// A sample's name.
    pub fn sample_name(&self, s: &Sample) -> &'a [u8] {
        let at = s.name_at as usize;
        self.text.get(at..at + s.name_len as usize).unwrap_or_default()
    }
}

/// The partial of one message alone with its domain in its batch, built on the stack: a message
/// marked [`flag::ALONE`] travels as its record only, and the shard makes this of it.
#[derive(Debug, Clone, Copy)]
pub struct Single {
    domain: DomainPartial,
    items: Option<(u64, u64)>,
    sample: Option<Sample>,
    tool: Option<ToolCount>,
    pair: PairPartial,
    time: Option<u64>,
}

impl Single {
    pub fn of(r: &Record) -> Single {
        let mut domain = DomainPartial::start(r, u64::from(r.unit), r.name_at);
        domain.fold(r);
        domain.first_pair = 0;
        let mut pair = PairPartial::new(r.client, r.seq);
        let time = pair.fold(r);
        pair.times = Span { at: 0, len: u32::from(time.is_some()) };
        Single {
            domain,
            items: sketch_items(r),
            sample: Sample::of(r, r.name_at),
            tool: ToolCount::of(r),
            pair,
            time,
        }
    }

    pub fn part<'a>(&'a self, text: &'a [u8]) -> Part<'a> {
        Part {
            domain: &self.domain,
            names: self.items.as_ref().map(|(n, _)| std::slice::from_ref(n)).unwrap_or_default(),
            clients: self.items.as_ref().map(|(_, c)| std::slice::from_ref(c)).unwrap_or_default(),
            samples: self.sample.as_slice(),
            tools: self.tool.as_slice(),
            pairs: std::slice::from_ref(&self.pair),
            times: self.time.as_slice(),
            text,
        }
    }
}

/// What a domain being combined keeps besides its [`DomainPartial`].
#[derive(Debug, Clone, Default)]
struct Side {
    /// The domain's last pair (the list is appended to).
    last_pair: u32,
    names: Kmv,
    clients: Kmv,
    samples: Vec<Sample>,
    tools: Vec<ToolCount>,
}

/// An index entry whose value has this bit is a message alone with its domain so far (the rest
/// of the value is its index in the batch); otherwise the value is the domain's partial.
const ALONE: u32 = 1 << 31;

/// The worker side: folds a batch's records into [`Partials`], built in place (handing them out
/// swaps vectors, it does not copy). A message alone with its domain (and unit) in the batch
/// gets no partial: it is marked [`flag::ALONE`] and the shard merges it from its record. Its
/// tables keep their memory from batch to batch.
pub struct Combiner {
    k: usize,
    /// (unit, domain) → index in `out.domains`, or a record alone so far (`ALONE`).
    index: HashMap<(u64, u64), u32, FastState>,
    /// (domain index, client) → index in `out.pairs`.
    pair_index: HashMap<(u32, IpAddr16), u32, FastState>,
    out: Partials,
    /// By domain index.
    sides: Vec<Side>,
    /// Query times by pair index (the first `queries` of each are set).
    times: Vec<[u64; PAIR_TIMES]>,
    /// The last message's (unit, domain) and its partial: floods repeat one domain.
    last: Option<((u64, u64), usize)>,
}

impl Combiner {
    /// `k`: the name sketch size of the shards' windows.
    pub fn new(k: usize) -> Self {
        Combiner {
            k,
            index: HashMap::default(),
            pair_index: HashMap::default(),
            out: Partials::default(),
            sides: Vec::new(),
            times: Vec::new(),
            last: None,
        }
    }

    /// Adds the DNS message `records[i]` (its `name_at` set by its batch, its merge `unit` by
    /// the worker).
    pub fn add(&mut self, records: &[Record], i: usize) {
        let Some(r) = records.get(i) else { return };
        let key = (u64::from(r.unit), r.domain_hash);
        let d = match self.last.filter(|(k, _)| *k == key) {
            Some((_, d)) => d,
            None => match self.index.get(&key).copied() {
                None => {
                    self.index.insert(key, ALONE | i as u32);
                    return;
                }
                Some(v) if v & ALONE != 0 => {
                    // A second message: the first one's partial starts now.
                    let first = (v & !ALONE) as usize;
                    let d = self.start(key, &records[first]);
                    self.fold(d, &records[first]);
                    d
                }
                Some(d) => d as usize,
            },
        };
        self.last = Some((key, d));
        self.fold(d, r);
    }

    /// Starts the partial of `key` with `r` (not folded yet); returns its index.
    fn start(&mut self, key: (u64, u64), r: &Record) -> usize {
        let i = self.out.domains.len();
        self.out.domains.push(DomainPartial::start(r, key.0, r.name_at));
        if self.sides.len() <= i {
            self.sides.push(Side::default());
        }
        let side = &mut self.sides[i];
        if side.names.k() != self.k {
            side.names = Kmv::new(self.k);
            side.clients = Kmv::new(crate::state::domain::CLIENT_SKETCH);
        }
        side.names.clear();
        side.clients.clear();
        side.samples.clear();
        side.tools.clear();
        side.last_pair = NO_PAIR;
        self.index.insert(key, i as u32);
        i
    }

    /// Adds `r` to partial `d` and to its pair.
    fn fold(&mut self, d: usize, r: &Record) {
        self.out.domains[d].fold(r);
        let side = &mut self.sides[d];
        if let Some(t) = ToolCount::of(r) {
            add_tool(&mut side.tools, t);
        }
        if let Some((name, client)) = sketch_items(r) {
            side.names.insert_item(name);
            side.clients.insert_item(client);
        }
        if let Some(s) = Sample::of(r, r.name_at) {
            add_sample(&mut side.samples, s);
        }
        let key = (d as u32, r.client);
        let i = match self.pair_index.get(&key) {
            Some(&i) => i as usize,
            None => {
                let i = self.out.pairs.len();
                self.out.pairs.push(PairPartial::new(r.client, r.seq));
                if self.times.len() <= i {
                    self.times.push([0; PAIR_TIMES]);
                }
                self.pair_index.insert(key, i as u32);
                // Appended to its domain's list: pairs stay in the order of their first message.
                match side.last_pair {
                    NO_PAIR => self.out.domains[d].first_pair = i as u32,
                    last => self.out.pairs[last as usize].next = i as u32,
                }
                side.last_pair = i as u32;
                i
            }
        };
        let p = &mut self.out.pairs[i];
        let n = p.queries as usize;
        if p.fold(r).is_some() {
            match self.times[i].get_mut(n) {
                Some(t) => *t = r.ts_ns,
                None => p.burst = true,
            }
        }
    }

    /// Hands out what was combined since the last call into `out` (whose memory the combiner
    /// keeps for next time), marks the messages left alone in `records`, and starts over.
    pub fn finish_into(&mut self, out: &mut Partials, records: &mut [Record]) {
        out.clear();
        std::mem::swap(&mut self.out, out);
        for (p, side) in out.domains.iter_mut().zip(&self.sides) {
            let from = out.names.len();
            out.names.extend_from_slice(side.names.items());
            p.names = Span::of(&out.names, from);
            let from = out.clients.len();
            out.clients.extend_from_slice(side.clients.items());
            p.clients = Span::of(&out.clients, from);
            let from = out.samples.len();
            out.samples.extend_from_slice(&side.samples);
            p.samples = Span::of(&out.samples, from);
            let from = out.tools.len();
            out.tools.extend_from_slice(&side.tools);
            p.tools = Span::of(&out.tools, from);
        }
        // Partials start at a domain's second message: order them by their first.
        out.domains.sort_unstable_by_key(|d| (d.first_seq, d.domain_hash));
        for (pp, times) in out.pairs.iter_mut().zip(&self.times) {
            if !pp.burst && pp.queries > 0 {
                let at = out.times.len();
                out.times.extend_from_slice(&times[..pp.queries as usize]);
                out.times[at..].sort_unstable();
                pp.times = Span::of(&out.times, at);
            }
        }
        for &v in self.index.values() {
            if v & ALONE != 0 {
                if let Some(r) = records.get_mut((v & !ALONE) as usize) {
                    r.flags |= flag::ALONE;
                }
            }
        }
        self.last = None;
        self.index.clear();
        self.pair_index.clear();
    }
}

/// Adds a tool session's count to a partial's list, keeping the [`TOOL_SESSIONS`] smallest keys.
pub fn add_tool(tools: &mut Vec<ToolCount>, t: ToolCount) {
    if let Some(s) = tools.iter_mut().find(|s| s.key() == t.key()) {
        return s.absorb(&t);
    }
    tools.push(t);
    if tools.len() > TOOL_SESSIONS {
        tools.sort_unstable_by_key(|s| s.key());
        tools.truncate(TOOL_SESSIONS);
    }
}

/// Keeps a partial's first [`SAMPLES`] distinct names by (capture position, name hash): the
/// smallest keys of the union of two parts are among each part's smallest.
fn add_sample(samples: &mut Vec<Sample>, s: Sample) {
    let key = |s: &Sample| (s.seq, s.name_hash);
    if let Some(kept) = samples.iter_mut().find(|k| k.name_hash == s.name_hash) {
        if key(&s) < key(kept) {
            *kept = s;
        }
        return;
    }
    if samples.len() < SAMPLES {
        return samples.push(s);
    }
    if let Some(last) = samples.iter_mut().max_by_key(|k| key(k)).filter(|k| key(&s) < key(k)) {
        *last = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::mix64;
    use crate::state::domain::TopClients;

    #[test]
    fn sketches_of_parts_merge_into_the_sketch_of_the_whole() {
        let mut whole = Kmv::new(64);
        let mut parts = [Kmv::new(64), Kmv::new(64), Kmv::new(64)];
        for i in 0..5_000u64 {
            let (h, w) = (mix64(i % 3_000), (i % 200) as u8);
            whole.insert(h, w);
            parts[(mix64(i) % 3) as usize].insert(h, w);
        }
        let mut merged = Kmv::new(64);
        for p in &parts {
            for &item in p.items() {
                merged.insert_item(item);
            }
        }
        assert_eq!(merged.items(), whole.items());
        assert_eq!(merged.weight_sum(), whole.weight_sum());
    }

    #[test]
    fn weighted_top_clients_match_single_adds_while_slots_last() {
        let ip = |i: u8| IpAddr16::v4([10, 0, 0, i]);
        let (mut one, mut many) = (TopClients::default(), TopClients::default());
        for (i, n) in [(1u8, 5u32), (2, 3), (1, 2), (3, 1), (4, 9), (2, 1)] {
            many.add_n(ip(i), n);
            (0..n).for_each(|_| one.add(ip(i)));
        }
        assert_eq!(many.top(), one.top());
        assert_eq!(many.top(), Some(ip(4)));
        // A heavy newcomer still takes a slot once the others are paid down.
        many.add_n(ip(5), 100);
        assert_eq!(many.top(), Some(ip(5)));
    }

    #[test]
    fn samples_and_tools_keep_the_smallest_keys_whatever_the_order() {
        let sample =
            |seq: u64, hash: u64| Sample { seq, name_hash: hash, name_at: 0, name_len: 0, truncated: false };
        let input = [sample(9, 1), sample(3, 2), sample(7, 3), sample(3, 2), sample(1, 4), sample(8, 1)];
        let mut forward = Vec::new();
        input.iter().for_each(|s| add_sample(&mut forward, *s));
        let mut backward = Vec::new();
        input.iter().rev().for_each(|s| add_sample(&mut backward, *s));
        forward.sort_by_key(|s| s.seq);
        backward.sort_by_key(|s| s.seq);
        assert_eq!(forward, backward);
        assert_eq!(forward.iter().map(|s| s.name_hash).collect::<Vec<_>>(), [4, 2, 3]);
        let tool = |session: u16, first_name: u64| ToolCount {
            tool: 3,
            session,
            count: 1,
            first_seq: first_name,
            first_name,
            names_differ: false,
        };
        let mut tools = Vec::new();
        for t in [tool(9, 1), tool(2, 1), tool(5, 1), tool(2, 8), tool(1, 1), tool(7, 1), tool(3, 1)] {
            add_tool(&mut tools, t);
        }
        tools.sort_by_key(|t| t.key());
        assert_eq!(tools.iter().map(|t| t.session).collect::<Vec<_>>(), [1, 2, 3, 5]);
        assert!(tools[1].names_differ && tools[1].count == 2, "session 2 seen under two names");
    }
}
