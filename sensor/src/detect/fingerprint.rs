//! Cheap, precise fingerprints of known tunnel tools, matched per message in the workers.
//!
//! Each rule looks at structure the tool cannot avoid (handshake labels, framing bytes), not at
//! "looks random". One hit proves little; the scorer wants several hits on a domain.

use crate::dns::view::{TYPE_KEY, TYPE_NULL, TYPE_PRIVATE, TYPE_TXT};

/// Tools dnsentry recognises. `0` in a record means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tool {
    Iodine = 1,
    Dns2tcp = 2,
    Dnscat2 = 3,
    OzymanDns = 4,
    DnsExfiltrator = 5,
    CobaltStrike = 6,
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::Iodine,
        Tool::Dns2tcp,
        Tool::Dnscat2,
        Tool::OzymanDns,
        Tool::DnsExfiltrator,
        Tool::CobaltStrike,
    ];

    pub fn from_u8(v: u8) -> Option<Tool> {
        Tool::ALL.get((v as usize).wrapping_sub(1)).copied()
    }

    /// The name reported in the alarm's `tool` field.
    /// Fingerprints precise enough to override the benign-transport allow-list. The hex framing
    /// of dnscat2 and Cobalt Strike can occur by chance in hash-named lookups; those need
    /// session consistency and never override the allow-list.
    pub const fn is_precise(self) -> bool {
        matches!(self, Tool::Iodine | Tool::Dns2tcp | Tool::OzymanDns | Tool::DnsExfiltrator)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Tool::Iodine => "iodine",
            Tool::Dns2tcp => "dns2tcp",
            Tool::Dnscat2 => "dnscat2",
            Tool::OzymanDns => "ozymandns",
            Tool::DnsExfiltrator => "dnsexfiltrator",
            Tool::CobaltStrike => "cobaltstrike",
        }
    }
}

/// What a fingerprint sees of a message.
pub struct MessageShape<'a> {
    /// Subdomain labels, leftmost first (registered domain excluded), lowercased.
    pub sub_labels: &'a [&'a [u8]],
    pub qtype: u16,
    pub is_response: bool,
    /// RDATA of the first answer, if any.
    pub first_answer: Option<(u16, &'a [u8])>,
}

fn is_hex(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_hexdigit)
}

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// iodine: the version handshake `v` + base32 of protocol 0x00000502 (`vaaaaka…`), its answers
/// (`VACK`, `VNAK`, `VFUL`, `LNAK`, `BADIP`) and its data queries in NULL / PRIVATE records.
fn iodine(m: &MessageShape) -> bool {
    let first = m.sub_labels.first().copied().unwrap_or_default();
    if first.len() >= 10 && first.starts_with(b"vaaaaka") {
        return true;
    }
    if m.is_response {
        if let Some((rtype, rdata)) = m.first_answer {
            let text = if rtype == TYPE_TXT { rdata.get(1..).unwrap_or_default() } else { rdata };
            const ACKS: [&[u8]; 5] = [b"VACK", b"VNAK", b"VFUL", b"LNAK", b"BADIP"];
            if matches!(rtype, TYPE_NULL | TYPE_PRIVATE | TYPE_TXT)
                && ACKS.iter().any(|a| text.starts_with(a))
            {
                return true;
            }
        }
    }
    // Data and pings ride in NULL/PRIVATE records with an encoded first label.
    matches!(m.qtype, TYPE_NULL | TYPE_PRIVATE)
        && first.len() >= 8
        && !first.starts_with(b"_")
        && m.sub_labels.iter().map(|l| l.len()).sum::<usize>() >= 8
}

/// dns2tcp: its control labels `=auth`, `=connect`, `=resource` (KEY or TXT queries).
fn dns2tcp(m: &MessageShape) -> bool {
    m.sub_labels.iter().any(|l| matches!(*l, b"=auth" | b"=connect" | b"=resource"))
        || (matches!(m.qtype, TYPE_KEY | TYPE_TXT) && m.sub_labels.iter().any(|l| l.starts_with(b"=")))
}

/// dnscat2: a `dnscat.` prefix, or hex framing: packet id (2 bytes), type 0x00–0x04
/// (SYN/MSG/FIN/ENC/PING), session id; at least 9 bytes of hex across the labels.
fn dnscat2(m: &MessageShape) -> bool {
    if m.sub_labels.first().is_some_and(|l| *l == b"dnscat") {
        return true;
    }
    let total: usize = m.sub_labels.iter().map(|l| l.len()).sum();
    if total < 18 || !m.sub_labels.iter().all(|l| is_hex(l)) {
        return false;
    }
    let first = m.sub_labels[0];
    first.len() >= 6 && first[4] == b'0' && (b'0'..=b'4').contains(&first[5])
}

/// OzymanDNS / sods: `<n>-<n>.id-<n>.up|down.`
fn ozymandns(m: &MessageShape) -> bool {
    m.sub_labels.windows(3).any(|w| {
        let dash = w[0].iter().position(|&c| c == b'-');
        dash.is_some_and(|d| is_digits(&w[0][..d]) && is_digits(&w[0][d + 1..]))
            && w[1].strip_prefix(b"id-").is_some_and(is_digits)
            && matches!(w[2], b"up" | b"down")
    })
}

/// DNSExfiltrator: `init.<base32>.base64.` / `init.<base32>.base32.` then numbered chunks.
fn dnsexfiltrator(m: &MessageShape) -> bool {
    m.sub_labels.first().is_some_and(|l| *l == b"init")
        && m.sub_labels.len() >= 3
        && m.sub_labels.iter().any(|l| matches!(*l, b"base64" | b"base32"))
}

/// Cobalt Strike DNS beacons: `aaa.stage.` staging, and `api.` / `www6.` / `cdn.` / `post.`
/// followed by hex session data.
fn cobaltstrike(m: &MessageShape) -> bool {
    let l = m.sub_labels;
    if l.len() >= 2 && l[1] == b"stage" && l[0].len() == 3 {
        return true;
    }
    l.len() >= 2
        && matches!(l[0], b"api" | b"www6" | b"cdn" | b"post")
        && l[1..].iter().any(|x| x.len() >= 8 && is_hex(x))
        && l[1..].iter().all(|x| is_hex(x))
}

/// The dnscat2 session id (hex characters 6..10 of the framing), for consistency checks.
fn dnscat2_session(m: &MessageShape) -> u16 {
    let first = m.sub_labels.first().copied().unwrap_or_default();
    first
        .get(6..10)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// A fingerprint match: the tool and a detail that must stay constant across a session (the
/// dnscat2 session id; 0 for tools without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub tool: Tool,
    pub session: u16,
}

/// Matches a message, with the session detail.
pub fn match_session(m: &MessageShape) -> Option<Match> {
    let tool = match_message(m)?;
    let session = if tool == Tool::Dnscat2 { dnscat2_session(m) } else { 0 };
    Some(Match { tool, session })
}

/// The first tool whose fingerprint matches the message.
pub fn match_message(m: &MessageShape) -> Option<Tool> {
    if m.sub_labels.is_empty() {
        return None;
    }
    type Rule = (Tool, fn(&MessageShape) -> bool);
    let rules: [Rule; 6] = [
        (Tool::Iodine, iodine),
        (Tool::Dns2tcp, dns2tcp),
        (Tool::Dnscat2, dnscat2),
        (Tool::OzymanDns, ozymandns),
        (Tool::DnsExfiltrator, dnsexfiltrator),
        (Tool::CobaltStrike, cobaltstrike),
    ];
    rules.iter().find(|(_, f)| f(m)).map(|(t, _)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::view::{TYPE_A, TYPE_CNAME};

    fn q(name: &str, qtype: u16) -> Option<Tool> {
        let labels: Vec<&[u8]> = name.split('.').map(str::as_bytes).collect();
        match_message(&MessageShape { sub_labels: &labels, qtype, is_response: false, first_answer: None })
    }

    #[test]
    fn tools() {
        assert_eq!(q("vaaaakaqcuy", TYPE_CNAME), Some(Tool::Iodine));
        assert_eq!(q("0ugbs82abcdefgh", TYPE_NULL), Some(Tool::Iodine));
        assert_eq!(q("paaqjvka", TYPE_PRIVATE), Some(Tool::Iodine));
        assert_eq!(q("aaaaacqzqa.=auth", TYPE_KEY), Some(Tool::Dns2tcp));
        assert_eq!(q("a57403a70f0000000061bb24e3.29dafc1f63", TYPE_TXT), Some(Tool::Dnscat2));
        assert_eq!(q("dnscat.abc", TYPE_TXT), Some(Tool::Dnscat2));
        assert_eq!(q("12-3456.id-42.up", TYPE_A), Some(Tool::OzymanDns));
        assert_eq!(q("init.mfrggzdfmztwq2lk.base64", TYPE_A), Some(Tool::DnsExfiltrator));
        assert_eq!(q("aaa.stage", TYPE_TXT), Some(Tool::CobaltStrike));
        assert_eq!(q("api.0a1b2c3d4e", TYPE_A), Some(Tool::CobaltStrike));
    }

    #[test]
    fn benign_names_do_not_match() {
        for n in
            ["www", "mail", "cdn.static", "api.v2", "deadbeef", "_ta-4f66", "e1234.dscb", "1a2b3c4d5e6f7a8b"]
        {
            for t in [TYPE_A, TYPE_TXT] {
                assert_eq!(q(n, t), None, "{n} {t}");
            }
        }
        // NULL is iodine's type, but BIND's trust-anchor telemetry uses it too.
        assert_eq!(q("_ta-4f66", TYPE_NULL), None);
    }

    #[test]
    fn iodine_answers() {
        let labels: Vec<&[u8]> = vec![b"vaaaakaqcuy"];
        let m = MessageShape {
            sub_labels: &labels,
            qtype: TYPE_TXT,
            is_response: true,
            first_answer: Some((TYPE_NULL, b"VACK\x00\x01")),
        };
        assert_eq!(match_message(&m), Some(Tool::Iodine));
    }
}
