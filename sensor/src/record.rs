//! The compact per-message record workers hand to the aggregation shards.
//!
//! A record never holds the frame, nor the name: numbers and hashes (128 bytes), and the offset of
//! its lowercased query name in the [`Batch`] it travels in. A batch keeps its names back to back
//! in one buffer, so a channel carries a record plus the name's own length (tens of bytes, not a
//! 256-byte slot) per DNS message, with no allocation per message once the buffers have grown.

use crate::flow::IpAddr16;

/// Longest (lowercased, dotted) query name kept: room for the longest legal name (253
/// characters), so names from valid messages are never cut.
pub const NAME_TAIL: usize = 256;

/// Bits of [`Record::flags`].
pub mod flag {
    /// The message is a response (QR=1).
    pub const RESPONSE: u16 = 1;
    /// Carried over TCP.
    pub const TCP: u16 = 1 << 1;
    /// The query name was longer than the kept tail.
    pub const NAME_TRUNCATED: u16 = 1 << 2;
    /// TC bit set (truncated response).
    pub const TC: u16 = 1 << 3;
    /// The message has an EDNS0 OPT record.
    pub const EDNS: u16 = 1 << 4;
    /// Not DNS at all: a payload on a DNS port that does not parse (the record carries the flow).
    pub const NON_DNS: u16 = 1 << 5;
    /// The reputation hit is a CNAME target in the answer, not the query name.
    pub const REPUTATION_VIA_CNAME: u16 = 1 << 6;
    /// The query name still has to be looked up in the reputation lists (by the worker, once its
    /// batch is decoded: `reputation::CleanAnchors`).
    pub const REPUTATION_PENDING: u16 = 1 << 7;
    /// The message is alone with its domain in its batch's merge unit: it has no partial
    /// aggregate, the shard merges it from the record (`state::partial::Single`).
    pub const ALONE: u16 = 1 << 8;
}

/// Character class of the longest subdomain label: the encodings tunnels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Charset {
    /// No subdomain.
    #[default]
    None = 0,
    /// Letters only (words), possibly with `-`.
    Alpha,
    /// Hex digits with at least one digit and one letter.
    Hex,
    /// RFC 4648 base32 alphabet with digits 2–7 present.
    Base32,
    /// Lowercase letters and digits (base36 and ordinary host names with numbers).
    Base36,
    /// Mixed case letters with digits, or `+`/`/`/`=`/`_`: base64 / base64url.
    Base64,
    /// Bytes outside printable ASCII: raw or base128 (iodine).
    Binary,
    /// Anything else (punctuation mixes).
    Other,
    /// A UUID (8-4-4-4-12 hex digits): generated, but an identifier, not a payload encoding.
    Uuid,
}

impl Charset {
    pub const fn code(self) -> &'static str {
        match self {
            Charset::None => "none",
            Charset::Alpha => "alpha",
            Charset::Hex => "hex",
            Charset::Base32 => "base32",
            Charset::Base36 => "base36",
            Charset::Base64 => "base64",
            Charset::Binary => "binary",
            Charset::Other => "other",
            Charset::Uuid => "uuid",
        }
    }

    /// Classes data encoders produce (as opposed to words).
    pub fn is_encoding(self) -> bool {
        matches!(self, Charset::Hex | Charset::Base32 | Charset::Base64 | Charset::Binary)
    }
}

/// Lexical features of the query name.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lexical {
    /// Length of the dotted name.
    pub qname_len: u8,
    pub labels: u8,
    /// Longest label of the subdomain part.
    pub longest_label: u8,
    /// Length of the subdomain part (name minus registered domain and its dot).
    pub sub_len: u8,
    pub charset: Charset,
    /// Shannon entropy (bits per character) of the subdomain characters, case folded, dots excluded.
    pub entropy: f32,
    pub digits: u8,
    pub uppers: u8,
}

/// What the worker knows about one DNS message.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Position in capture order (frame index); equal records sort by it for determinism.
    pub seq: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The querier (source of a query, destination of a response).
    pub client: IpAddr16,
    pub server: IpAddr16,
    pub client_port: u16,
    pub server_port: u16,
    pub vlan: u16,
    pub dns_id: u16,
    pub qtype: u16,
    /// 12-bit RCODE (EDNS-extended); meaningful for responses.
    pub rcode: u16,
    pub flags: u16,
    pub msg_len: u16,
    pub answers: u16,
    /// Sum of RDATA bytes of payload-carrying answers (TXT, NULL, PRIVATE, CNAME, MX, SRV, KEY...).
    pub answer_payload: u16,
    pub edns_size: u16,
    /// TTL of the first answer (0 if none).
    pub ttl: u32,
    /// Hash of the lowercased registered domain: the shard and table key.
    pub domain_hash: u64,
    /// Hash of the lowercased full query name.
    pub name_hash: u64,
    pub lex: Lexical,
    /// Tool fingerprint matched by this message (see `detect::fingerprint::Tool`), 0 for none.
    pub tool: u8,
    /// Session detail of the fingerprint (dnscat2 session id), 0 if none.
    pub tool_session: u16,
    /// Benign-transport family the name belongs to (see `detect::allowlist::Family`), 0 for none.
    pub family: u8,
    /// Length of the registered domain at the end of the name.
    pub domain_len: u8,
    /// Length of the lowercased query name (its rightmost [`NAME_TAIL`] bytes).
    pub name_len: u8,
    /// Where the name starts in its batch's name buffer (set by [`Batch::push`]).
    pub name_at: u32,
    /// Reputation hit, 0 for none: from the decoder, the listed entry's index + 1 in the worker's
    /// lists; in a batch, the hit's index + 1 there (set by [`Batch::push_hit`]).
    pub hit: u32,
    /// Category code of the listed domain the message names (`reputation::Category`), 0 for none.
    pub reputation: u8,
    /// Replay's merge unit (`capture::FrameInfo::unit`, its low 32 bits: units in flight at once
    /// are few and consecutive); 0 live.
    pub unit: u32,
}

// What crosses a channel per message: keep it at two cache lines (docs/design.md).
const _: () = assert!(std::mem::size_of::<Record>() <= 128);

impl Record {
    /// A record for a payload on a DNS port that is not DNS. `server` is the DNS-port side; the
    /// pair of addresses is the shard key, so one flow's packets meet in one shard.
    pub fn non_dns(
        client: IpAddr16,
        server: IpAddr16,
        ports: (u16, u16),
        payload: &[u8],
        tcp: bool,
        ts_ns: u64,
        seq: u64,
    ) -> Record {
        let mut key = [0u8; 34];
        key[..16].copy_from_slice(&client.bytes);
        key[16..32].copy_from_slice(&server.bytes);
        key[32] = client.v6 as u8;
        key[33] = tcp as u8;
        // iodine's raw UDP mode (used when the server is directly reachable) starts with this magic.
        let iodine_raw = payload.starts_with(&[0x10, 0xd1, 0x9e]);
        Record {
            seq,
            ts_ns,
            client,
            server,
            client_port: ports.0,
            server_port: ports.1,
            vlan: 0,
            dns_id: 0,
            qtype: 0,
            rcode: 0,
            flags: flag::NON_DNS | if tcp { flag::TCP } else { 0 },
            msg_len: payload.len().min(u16::MAX as usize) as u16,
            answers: 0,
            answer_payload: 0,
            edns_size: 0,
            ttl: 0,
            domain_hash: crate::hash::hash_bytes(&key),
            name_hash: 0,
            lex: Lexical::default(),
            tool: if iodine_raw { crate::detect::fingerprint::Tool::Iodine as u8 } else { 0 },
            tool_session: 0,
            family: 0,
            domain_len: 0,
            name_len: 0,
            name_at: 0,
            hit: 0,
            reputation: 0,
            unit: 0,
        }
    }

    pub fn is_non_dns(&self) -> bool {
        self.flags & flag::NON_DNS != 0
    }

    pub fn is_response(&self) -> bool {
        self.flags & flag::RESPONSE != 0
    }
}

/// The registered domain at the end of a record's name.
pub fn domain_of<'a>(r: &Record, name: &'a [u8]) -> &'a [u8] {
    &name[name.len().saturating_sub(r.domain_len as usize)..]
}

/// Records and the names they point to: what a worker hands a shard, with the reputation hits of
/// the few records that have one.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub records: Vec<Record>,
    names: Vec<u8>,
    hits: Vec<crate::reputation::Hit>,
    /// The records' partial aggregates per domain (see `state::partial`); their names point into
    /// this batch's name buffer.
    pub partials: crate::state::partial::Partials,
}

impl Batch {
    pub fn with_capacity(records: usize) -> Self {
        Batch {
            records: Vec::with_capacity(records),
            names: Vec::with_capacity(records * 32),
            hits: Vec::new(),
            partials: Default::default(),
        }
    }

    /// Adds a record with its name and its reputation hit; returns the record as stored.
    pub fn push_hit(&mut self, mut r: Record, name: &[u8], hit: crate::reputation::Hit) -> &Record {
        self.hits.push(hit);
        r.hit = self.hits.len() as u32;
        self.push_record(r, name)
    }

    /// Sets the reputation hit of the record at `index` (replacing a CNAME target's: the query
    /// name's own hit is the one reported).
    pub fn set_hit(&mut self, index: usize, hit: crate::reputation::Hit) {
        let Some(r) = self.records.get_mut(index) else { return };
        r.reputation = hit.list.category as u8;
        r.flags &= !flag::REPUTATION_VIA_CNAME;
        if hit.via_cname {
            r.flags |= flag::REPUTATION_VIA_CNAME;
        }
        match (r.hit as usize).checked_sub(1).and_then(|i| self.hits.get_mut(i)) {
            Some(old) => *old = hit,
            None => {
                self.hits.push(hit);
                r.hit = self.hits.len() as u32;
            }
        }
    }

    /// The reputation hit of a record of this batch.
    pub fn hit(&self, r: &Record) -> Option<&crate::reputation::Hit> {
        self.hits.get((r.hit as usize).checked_sub(1)?)
    }

    /// Adds a record with its name (at most 255 bytes are kept, from the right; a legal name has
    /// at most 253) and no reputation hit; returns the record as stored (with `name_at` set).
    pub fn push(&mut self, mut r: Record, name: &[u8]) -> &Record {
        r.hit = 0;
        self.push_record(r, name)
    }

    fn push_record(&mut self, mut r: Record, name: &[u8]) -> &Record {
        let name = &name[name.len().saturating_sub(u8::MAX as usize)..];
        r.name_at = self.names.len() as u32;
        r.name_len = name.len() as u8;
        self.names.extend_from_slice(name);
        self.records.push(r);
        &self.records[self.records.len() - 1]
    }

    /// Empties the batch, keeping its memory (batches go back to the workers for reuse).
    pub fn clear(&mut self) {
        self.records.clear();
        self.names.clear();
        self.hits.clear();
        self.partials.clear();
    }

    /// The name buffer the records' and partials' names point into.
    pub fn name_buffer(&self) -> &[u8] {
        &self.names
    }

    /// The name of a record of this batch (empty for a record of another batch).
    pub fn name(&self, r: &Record) -> &[u8] {
        let at = r.name_at as usize;
        self.names.get(at..at + r.name_len as usize).unwrap_or_default()
    }

    /// Records with their names, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&Record, &[u8])> {
        self.records.iter().map(|r| (r, self.name(r)))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.partials.is_empty()
    }

    /// Bytes of names held.
    pub fn name_bytes(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_names_with_their_records() {
        let mut b = Batch::default();
        let r = Record::non_dns(IpAddr16::default(), IpAddr16::default(), (1, 53), b"", false, 0, 0);
        let long = vec![b'a'; 300];
        b.push(r, b"x.example.com");
        b.push(r, b"");
        b.push(r, &long);
        let names: Vec<&[u8]> = b.iter().map(|(_, n)| n).collect();
        assert_eq!(names[0], b"x.example.com");
        assert_eq!(names[1], b"");
        assert_eq!(names[2].len(), 255, "cut to what name_len can say");
        assert_eq!(b.name_bytes(), 13 + 255);
        let mut r2 = r;
        r2.name_at = 10_000;
        r2.name_len = 5;
        assert_eq!(b.name(&r2), b"", "a foreign record gets no name");
    }
}
