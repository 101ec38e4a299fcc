//! Per-message features: from a parsed DNS message to a compact [`Record`].

use crate::detect::allowlist::Allowlist;
use crate::detect::fingerprint::{self, MessageShape};
use crate::dns::view::{TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_OPT};
use crate::dns::{Message, NameBuf, Section};
use crate::domain::registered_domain_len;
use crate::flow::FlowKey;
use crate::hash::hash_bytes;
use crate::record::{flag, Charset, Lexical, Record, NAME_TAIL};
use crate::reputation::{CleanAnchors, Reputation};

/// Why a valid message produced no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRecord {
    /// No question section (rare: some NOTIFY/UPDATE forms).
    NoQuestion,
}

/// True for a UUID in its canonical 8-4-4-4-12 form.
fn is_uuid(label: &[u8]) -> bool {
    label.len() == 36
        && label.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Classifies the characters of one label.
pub fn charset(label: &[u8]) -> Charset {
    if label.is_empty() {
        return Charset::None;
    }
    if is_uuid(label) {
        return Charset::Uuid;
    }
    let (mut digits, mut lower, mut upper, mut b64punct, mut other, mut high) = (0, 0, 0, 0, 0, 0);
    let mut non_hex_letter = false;
    let mut non_b32_digit = false;
    for &c in label {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                non_b32_digit |= !(b'2'..=b'7').contains(&c);
            }
            b'a'..=b'z' => {
                lower += 1;
                non_hex_letter |= c > b'f';
            }
            b'A'..=b'Z' => {
                upper += 1;
                non_hex_letter |= c > b'F';
            }
            b'+' | b'/' | b'=' | b'_' => b64punct += 1,
            b'-' => {}
            0x80..=0xFF | 0..=0x1F | 0x7F => high += 1,
            _ => other += 1,
        }
    }
    let letters = lower + upper;
    if high > 0 {
        Charset::Binary
    } else if other > 0 {
        Charset::Other
    } else if b64punct > 0 || (lower > 0 && upper > 0 && digits > 0) {
        Charset::Base64
    } else if digits == 0 {
        Charset::Alpha
    } else if !non_hex_letter && letters > 0 {
        Charset::Hex
    } else if !non_b32_digit && letters > 0 {
        Charset::Base32
    } else {
        Charset::Base36
    }
}

/// Shannon entropy in bits per character, ASCII case folded, dots excluded.
pub fn entropy(s: &[u8]) -> f32 {
    entropy_and_digits(s).0
}

/// `-p * log2(p)` for `p = c / n`, indexed `[n * 256 + c]` for `1 <= c <= n <= 255`: computed
/// once with the very expression [`entropy`] used to evaluate per character, so results are the
/// same to the bit, without a `log2` per distinct character of every name.
static ENTROPY_TERMS: std::sync::LazyLock<Box<[f32]>> = std::sync::LazyLock::new(|| {
    let mut t = vec![0f32; 256 * 256];
    for n in 1..256usize {
        for c in 1..=n {
            t[n * 256 + c] = entropy_term(c as u16, n as f32);
        }
    }
    t.into_boxed_slice()
});

/// Builds the tables the extractor uses, so the first message does not pay (or allocate) for it.
pub fn warm_up() {
    std::sync::LazyLock::force(&ENTROPY_TERMS);
}

fn entropy_term(c: u16, n: f32) -> f32 {
    let p = c as f32 / n;
    -p * p.log2()
}

/// [`entropy`] and the number of ASCII digits, in one pass.
fn entropy_and_digits(s: &[u8]) -> (f32, u32) {
    let mut counts = [0u16; 256];
    let mut n = 0u32;
    // Only the span of byte values present is summed (in byte order, so the result is the same as
    // over all 256): names use a few dozen values.
    let (mut lo, mut hi) = (u8::MAX, 0u8);
    for &c in s {
        if c != b'.' {
            let c = c.to_ascii_lowercase();
            counts[c as usize] += 1;
            n += 1;
            lo = lo.min(c);
            hi = hi.max(c);
        }
    }
    if n == 0 {
        return (0.0, 0);
    }
    let digits = counts[b'0' as usize..=b'9' as usize].iter().map(|&c| c as u32).sum();
    let present = counts[lo as usize..=hi as usize].iter().filter(|&&c| c > 0);
    let entropy = if n < 256 {
        let row = &ENTROPY_TERMS[n as usize * 256..(n as usize + 1) * 256];
        present.map(|&c| row[c as usize]).sum()
    } else {
        present.map(|&c| entropy_term(c, n as f32)).sum()
    };
    (entropy, digits)
}

/// Lexical features of a lowercased name whose registered domain is the last `domain_len` bytes.
pub fn lexical(name: &NameBuf, lower: &[u8], domain_len: usize) -> Lexical {
    let sub_len = lower.len().saturating_sub(domain_len + 1);
    let sub = &lower[..sub_len];
    let longest = sub.split(|&c| c == b'.').max_by_key(|l| l.len()).unwrap_or_default();
    // Case matters for the class (base64 uses it): classify the original bytes of that label.
    let orig = name.as_bytes();
    let off = longest.as_ptr() as usize - lower.as_ptr() as usize;
    let longest_orig = orig.get(off..off + longest.len()).unwrap_or(longest);
    let (entropy, digits) = entropy_and_digits(sub);
    Lexical {
        qname_len: lower.len().min(255) as u8,
        labels: name.label_count() as u8,
        longest_label: longest.len() as u8,
        sub_len: sub_len.min(255) as u8,
        charset: charset(longest_orig),
        entropy,
        digits: digits.min(255) as u8,
        uppers: orig[..sub_len.min(orig.len())].iter().filter(|c| c.is_ascii_uppercase()).count() as u8,
    }
}

/// Everything the extractor needs besides the message.
pub struct Context<'a> {
    pub allowlist: &'a Allowlist,
    pub reputation: &'a Reputation,
}

/// Buffers the extractor fills for each message, kept by the worker so they are not cleared for
/// every message (a name buffer is ~400 bytes).
pub struct Scratch {
    name: NameBuf,
    /// The lowercased query name of the last message (its length is returned by [`extract`]).
    pub lower: [u8; NAME_TAIL],
    /// A CNAME target being looked up in the reputation lists.
    target: NameBuf,
    target_lower: [u8; NAME_TAIL],
    /// Anchors the reputation filter turned down (clear it when the lists change).
    pub clean: CleanAnchors,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            name: NameBuf::new(),
            lower: [0; NAME_TAIL],
            target: NameBuf::new(),
            target_lower: [0; NAME_TAIL],
            clean: CleanAnchors::default(),
        }
    }
}

/// Lowercases `src` into `dst` (cut to its size); returns the lowercased part.
fn lowercase_into<'a>(dst: &'a mut [u8; NAME_TAIL], src: &[u8]) -> &'a [u8] {
    let src = &src[..src.len().min(NAME_TAIL)];
    let dst = &mut dst[..src.len()];
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_ascii_lowercase();
    }
    dst
}

/// CNAME targets of one answer looked up in the reputation lists, at most (a longer chain is rare
/// and its first targets are where a lure leads).
const CNAME_TARGETS: usize = 8;

/// The listed entry a CNAME target of the answer names (`cnames`: where the targets start in the
/// message). The query name's lookup is only started here and finished by the worker once its
/// batch is decoded ([`CleanAnchors`]); CNAMEs are rare enough to be looked up at once.
fn cname_hit(
    msg: &Message,
    cnames: &[usize],
    rep: &Reputation,
    clean: &mut CleanAnchors,
    target: &mut NameBuf,
    target_lower: &mut [u8; NAME_TAIL],
) -> Option<u32> {
    if rep.is_empty() {
        return None;
    }
    cnames.iter().find_map(|&at| {
        msg.name(at, target).ok()?;
        clean.lookup(rep, lowercase_into(target_lower, target.as_bytes()), None)
    })
}

/// Calls `f` with the labels of the dotted `sub` (none when empty), at most `N` of them.
fn with_labels<const N: usize, T>(sub: &[u8], f: impl FnOnce(&[&[u8]]) -> T) -> T {
    let mut labels: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    if !sub.is_empty() {
        for l in sub.split(|&c| c == b'.') {
            if n < N {
                labels[n] = l;
                n += 1;
            }
        }
    }
    f(&labels[..n])
}

/// Builds the record of one message. `flow` is the packet's flow; the client is its source for
/// a query and its destination for a response. Also returns the length of the lowercased query
/// name left in `scratch.lower` (the caller puts it in the record's batch).
#[allow(clippy::too_many_arguments)]
pub fn extract(
    msg: &Message,
    flow: &FlowKey,
    tcp: bool,
    vlan: u16,
    ts_ns: u64,
    seq: u64,
    ctx: &Context,
    scratch: &mut Scratch,
) -> Result<(Record, usize), NoRecord> {
    let q = msg.first_question().ok_or(NoRecord::NoQuestion)?;
    let Scratch { name, lower: lower_buf, target, target_lower, clean } = scratch;
    // parse() validated structure but not pointer chains; a bad chain is no question at all.
    msg.name(q.name_at, name).map_err(|_| NoRecord::NoQuestion)?;
    let name: &NameBuf = name;
    let lower: &[u8] = lowercase_into(lower_buf, name.as_bytes());
    let domain_len = registered_domain_len(lower);
    let domain_hash = hash_bytes(&lower[lower.len() - domain_len..]);
    // Started now and finished by the worker after the batch: the filter line is on its way.
    let reputation_pending = clean.start(ctx.reputation, lower, Some((domain_len, domain_hash)));

    let response = msg.header.is_response();
    let (client, server, client_port, server_port) = if response {
        (flow.dst, flow.src, flow.dport, flow.sport)
    } else {
        (flow.src, flow.dst, flow.sport, flow.dport)
    };

    // Answers: payload-carrying RDATA and the first answer for fingerprints.
    let mut answer_payload = 0usize;
    let mut first_answer = None;
    let mut ttl = 0;
    let (mut cnames, mut n_cnames) = ([0usize; CNAME_TARGETS], 0);
    for rr in msg.records(Section::Answer) {
        if first_answer.is_none() {
            first_answer = Some((rr.rtype, rr.rdata));
            ttl = rr.ttl;
        }
        if rr.rtype == TYPE_CNAME && n_cnames < CNAME_TARGETS {
            cnames[n_cnames] = rr.rdata_at;
            n_cnames += 1;
        }
        if !matches!(rr.rtype, TYPE_A | TYPE_AAAA | TYPE_OPT) {
            answer_payload += rr.rdata.len();
        }
    }

    // Subdomain labels for fingerprints, without allocating: most names have a few, so a short
    // array is filled unless there are more.
    let sub_len = lower.len().saturating_sub(domain_len + 1);
    let sub = &lower[..sub_len];
    let match_labels = |labels: &[&[u8]]| {
        fingerprint::match_session(&MessageShape {
            sub_labels: labels,
            qtype: q.qtype,
            is_response: response,
            first_answer,
        })
    };
    let fp = if sub.iter().filter(|&&c| c == b'.').count() < 8 {
        with_labels::<8, _>(sub, match_labels)
    } else {
        with_labels::<128, _>(sub, match_labels)
    };
    let first_label = lower.split(|&c| c == b'.').next().unwrap_or_default();
    let family = ctx.allowlist.classify(lower, first_label, q.qtype).map_or(0, |f| f as u8);

    let mut flags = 0;
    if response {
        flags |= flag::RESPONSE;
    }
    if tcp {
        flags |= flag::TCP;
    }
    if msg.header.truncated() {
        flags |= flag::TC;
    }
    if msg.edns.is_some() {
        flags |= flag::EDNS;
    }
    // name_len is a u8: a (non-legal) 256-byte name loses its first byte.
    if lower.len() > u8::MAX as usize {
        flags |= flag::NAME_TRUNCATED;
    }
    let keep = lower.len().min(u8::MAX as usize);
    if reputation_pending {
        flags |= flag::REPUTATION_PENDING;
    }
    let hit = cname_hit(msg, &cnames[..n_cnames], ctx.reputation, clean, target, target_lower);
    if hit.is_some() {
        flags |= flag::REPUTATION_VIA_CNAME;
    }

    let rec = Record {
        seq,
        ts_ns,
        client,
        server,
        client_port,
        server_port,
        vlan,
        dns_id: msg.header.id,
        qtype: q.qtype,
        rcode: msg.rcode(),
        flags,
        msg_len: msg.bytes().len().min(u16::MAX as usize) as u16,
        answers: msg.header.ancount,
        answer_payload: answer_payload.min(u16::MAX as usize) as u16,
        edns_size: msg.edns.map_or(0, |e| e.udp_size),
        ttl,
        domain_hash,
        name_hash: hash_bytes(lower),
        lex: lexical(name, lower, domain_len),
        tool: fp.map_or(0, |m| m.tool as u8),
        tool_session: fp.map_or(0, |m| m.session),
        family,
        domain_len: domain_len.min(keep) as u8,
        name_len: keep as u8,
        name_at: 0,
        hit: hit.map_or(0, |i| i + 1),
        reputation: hit.and_then(|i| ctx.reputation.entry(i)).map_or(0, |(_, list)| list.category as u8),
        unit: 0,
    };
    Ok((rec, lower.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(charset(b"mail"), Charset::Alpha);
        assert_eq!(charset(b"deadbeef01"), Charset::Hex);
        assert_eq!(charset(b"lad1wzccfqrddkiilhs10eo4u2trju2a"), Charset::Base36);
        assert_eq!(charset(b"mfrggzdfmztwq2lk"), Charset::Base32);
        assert_eq!(charset(b"AbOUAAC8dAFpCMUFBVjg0UUEwSUhCQTE"), Charset::Base64);
        assert_eq!(charset(b"AAAAACQZQA"), Charset::Alpha);
        assert_eq!(charset(b"x\xC3\xA9y"), Charset::Binary);
        assert_eq!(charset(b"a*b"), Charset::Other);
        assert_eq!(charset(b""), Charset::None);
        assert_eq!(charset(b"7baf912f-217a-4c92-32e7-35743f6e4685"), Charset::Uuid);
        assert!(!Charset::Uuid.is_encoding());
    }

    #[test]
    fn entropy_table_matches_the_formula_to_the_bit() {
        let direct = |s: &[u8]| {
            let mut counts = [0u16; 256];
            s.iter().filter(|&&c| c != b'.').for_each(|&c| counts[c.to_ascii_lowercase() as usize] += 1);
            let n = counts.iter().map(|&c| c as u32).sum::<u32>() as f32;
            counts.iter().filter(|&&c| c > 0).map(|&c| entropy_term(c, n)).sum::<f32>()
        };
        let names: [&[u8]; 5] = [
            b"a",
            b"mfrggzdfmztwq2lk.x9",
            b"0123456789abcdef0123",
            &[b'z'; 200],
            b"AbOUAAC8dAFpCMUFBVjg0U.UEwSUhCQTE",
        ];
        for name in names {
            assert_eq!(
                entropy(name).to_bits(),
                direct(name).to_bits(),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(entropy_and_digits(b"a1b22.c333").1, 6);
    }

    #[test]
    fn entropy_values() {
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abab") - 1.0).abs() < 1e-6);
        assert!((entropy(b"AbAB") - 1.0).abs() < 1e-6);
        assert!((entropy(b"abcd.efgh") - 3.0).abs() < 1e-6);
        assert_eq!(entropy(b""), 0.0);
    }
}
