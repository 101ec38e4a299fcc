//! Tumbling-window counters of one registered domain.

use super::kmv::Kmv;
use super::partial::Counts;

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

    /// Adds a merge's counters and fingerprint hits (its names go into [`Window::names`]).
    pub fn add_counts(&mut self, c: &Counts, tool_hits: u32) {
        self.tool_hits += tool_hits;
        self.family_hits += c.family_hits;
        self.responses += c.responses;
        self.nxdomain += c.nxdomain;
        self.answer_payload += c.answer_payload;
        self.queries += c.queries;
        self.non_address += c.non_address;
        self.rare_qtype += c.rare_qtype;
        self.long_names += c.long_names;
        self.encoded += c.encoded;
        self.high_entropy += c.high_entropy;
    }

    pub fn unique_names(&self) -> f64 {
        self.names.count()
    }

    /// Distinct subdomain bytes (estimated above the sketch size).
    pub fn subdomain_bytes(&self) -> f64 {
        self.names.weight_sum()
    }
}
