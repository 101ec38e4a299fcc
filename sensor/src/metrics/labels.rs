//! Bounded label values for query types and response codes.

use crate::dns::view::*;

/// Query types with their own label; everything else is `other`.
pub const QTYPES: [(u16, &str); 14] = [
    (TYPE_A, "A"),
    (TYPE_AAAA, "AAAA"),
    (TYPE_CNAME, "CNAME"),
    (TYPE_MX, "MX"),
    (TYPE_NS, "NS"),
    (TYPE_PTR, "PTR"),
    (TYPE_SOA, "SOA"),
    (TYPE_SRV, "SRV"),
    (TYPE_TXT, "TXT"),
    (TYPE_NULL, "NULL"),
    (TYPE_KEY, "KEY"),
    (TYPE_HTTPS, "HTTPS"),
    (TYPE_ANY, "ANY"),
    (TYPE_PRIVATE, "PRIVATE"),
];
/// Index of `other` in per-qtype arrays.
pub const QTYPE_OTHER: usize = QTYPES.len();
pub const QTYPE_SLOTS: usize = QTYPES.len() + 1;

pub fn qtype_index(t: u16) -> usize {
    QTYPES.iter().position(|(v, _)| *v == t).unwrap_or(QTYPE_OTHER)
}

pub fn qtype_label(i: usize) -> &'static str {
    QTYPES.get(i).map_or("other", |(_, n)| n)
}

/// Response codes with their own label (index = code); everything else is `other`.
pub const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
pub const RCODE_SLOTS: usize = RCODES.len() + 1;

pub fn rcode_index(rc: u16) -> usize {
    (rc as usize).min(RCODES.len())
}

pub fn rcode_label(i: usize) -> &'static str {
    RCODES.get(i).copied().unwrap_or("other")
}
