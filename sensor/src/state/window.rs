//! Tumbling-window counters of one registered domain.

use super::kmv::Kmv;
use crate::dns::view::{RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, TYPE_KEY, TYPE_NULL, TYPE_PRIVATE};
use crate::record::Record;

/// Query names at least this long count as long names.
pub const LONG_NAME: u8 = 52;
/// Subdomain labels at least this long in an encoding charset count as encoded.
pub const ENCODED_LABEL: u8 = 16;

/// What one domain did during one window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub start_ns: u64,
    pub queries: u32,
    pub responses: u32,
    pub nxdomain: u32,
    /// Queries of types other than A/AAAA.
    pub non_address: u32,
    /// Queries of NULL, PRIVATE or KEY: almost only tunnels use them.
    pub rare_qtype: u32,
    pub long_names: u32,
    pub encoded: u32,
    /// Queries whose subdomain entropy is high for its length.
    pub high_entropy: u32,
    pub tool_hits: u32,
    /// Messages in a benign-transport family.
    pub family_hits: u32,
    /// RDATA bytes of payload-carrying answers.
    pub answer_payload: u64,
    /// Distinct query names, weighted by subdomain length.
    pub names: Kmv,
}

/// Entropy close to the maximum a string of this length can have over a 36-symbol alphabet.
pub fn is_high_entropy(entropy: f32, sub_len: u8) -> bool {
    if sub_len < 16 {
        return false;
    }
    let max = (sub_len.min(36) as f32).log2();
    entropy / max >= 0.82
}

impl Window {
    pub fn new(k: usize) -> Self {
        Window { names: Kmv::new(k), ..Default::default() }
    }

    /// Starts a new window at `now`.
    pub fn reset(&mut self, now: u64) {
        let mut names = std::mem::take(&mut self.names);
        names.clear();
        *self = Window { start_ns: now, names, ..Default::default() };
    }

    /// Rolls the window if `now` is past its end. Returns true if it rolled.
    pub fn roll(&mut self, now: u64, len_ns: u64) -> bool {
        if now >= self.start_ns.saturating_add(len_ns) {
            self.reset(now);
            true
        } else {
            false
        }
    }

    /// Adds a record; `tool_hit` says whether it counts as a fingerprint hit. Returns true if its
    /// name was new in this window.
    pub fn add(&mut self, r: &Record, tool_hit: bool) -> bool {
        self.tool_hits += u32::from(tool_hit);
        if r.family != 0 {
            self.family_hits += 1;
        }
        if r.is_response() {
            self.responses += 1;
            if r.rcode == RCODE_NXDOMAIN {
                self.nxdomain += 1;
            }
            self.answer_payload += r.answer_payload as u64;
            return false;
        }
        self.queries += 1;
        if !matches!(r.qtype, TYPE_A | TYPE_AAAA) {
            self.non_address += 1;
        }
        if matches!(r.qtype, TYPE_NULL | TYPE_PRIVATE | TYPE_KEY) {
            self.rare_qtype += 1;
        }
        if r.lex.qname_len >= LONG_NAME {
            self.long_names += 1;
        }
        if r.lex.charset.is_encoding() && r.lex.longest_label >= ENCODED_LABEL {
            self.encoded += 1;
        }
        if is_high_entropy(r.lex.entropy, r.lex.sub_len) {
            self.high_entropy += 1;
        }
        self.names.insert(r.name_hash, r.lex.sub_len)
    }

    pub fn unique_names(&self) -> f64 {
        self.names.count()
    }

    /// Distinct subdomain bytes (estimated above the sketch size).
    pub fn subdomain_bytes(&self) -> f64 {
        self.names.weight_sum()
    }
}
