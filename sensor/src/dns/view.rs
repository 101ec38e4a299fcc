//! A zero-copy view of a DNS message over the packet bytes (RFC 1035 §4.1, EDNS0 RFC 6891).
//!
//! `Message::parse` walks every section once to validate the structure and remember where each
//! section starts; nothing is copied or allocated. Names are decoded on demand with
//! [`super::read_name`] into a caller's stack buffer.

use super::name::{read_name, skip_name, NameBuf};
use super::DnsError;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_NULL: u16 = 10;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_KEY: u16 = 25;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_HTTPS: u16 = 65;
pub const TYPE_ANY: u16 = 255;
/// iodine's private-use type.
pub const TYPE_PRIVATE: u16 = 65399;

pub const RCODE_NXDOMAIN: u16 = 3;

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    /// True for a response (QR bit set).
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// The 4-bit header RCODE (see [`Message::rcode`] for the EDNS-extended one).
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }
}

/// The EDNS0 OPT pseudo-record, if present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    pub options_len: u16,
}

/// One question: the name stays in the message, decode it with [`Message::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub name_at: usize,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record, borrowing its RDATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub name_at: usize,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata_at: usize,
    pub rdata: &'a [u8],
}

/// The three record sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// A validated DNS message borrowing the packet bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    pub header: Header,
    answers_at: usize,
    authority_at: usize,
    additional_at: usize,
    end: usize,
    pub edns: Option<Edns>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a question at `at`; returns it and the offset after it.
fn question_at(buf: &[u8], at: usize) -> Result<(Question, usize), DnsError> {
    let after_name = skip_name(buf, at)?;
    let qtype = u16_at(buf, after_name).ok_or(DnsError::RecordTruncated)?;
    let qclass = u16_at(buf, after_name + 2).ok_or(DnsError::RecordTruncated)?;
    Ok((Question { name_at: at, qtype, qclass }, after_name + 4))
}

/// Reads a resource record at `at`; returns it and the offset after it.
fn record_at(buf: &[u8], at: usize) -> Result<(Record<'_>, usize), DnsError> {
    let p = skip_name(buf, at)?;
    let rtype = u16_at(buf, p).ok_or(DnsError::RecordTruncated)?;
    let class = u16_at(buf, p + 2).ok_or(DnsError::RecordTruncated)?;
    let ttl = u32_at(buf, p + 4).ok_or(DnsError::RecordTruncated)?;
    let rdlen = u16_at(buf, p + 8).ok_or(DnsError::RecordTruncated)? as usize;
    let rdata_at = p + 10;
    let rdata = buf.get(rdata_at..rdata_at + rdlen).ok_or(DnsError::RecordTruncated)?;
    Ok((Record { name_at: at, rtype, class, ttl, rdata_at, rdata }, rdata_at + rdlen))
}

impl<'a> Message<'a> {
    /// Validates `buf` as one DNS message. Bytes after the last record are ignored (as resolvers
    /// do); see [`Message::trailing_len`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, DnsError> {
        if buf.len() < 12 {
            return Err(DnsError::ShortHeader);
        }
        let h = |i| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let header =
            Header { id: h(0), flags: h(2), qdcount: h(4), ancount: h(6), nscount: h(8), arcount: h(10) };
        let mut pos = 12;
        for _ in 0..header.qdcount {
            pos = question_at(buf, pos)?.1;
        }
        let answers_at = pos;
        for _ in 0..header.ancount {
            pos = record_at(buf, pos)?.1;
        }
        let authority_at = pos;
        for _ in 0..header.nscount {
            pos = record_at(buf, pos)?.1;
        }
        let additional_at = pos;
        let mut edns = None;
        for _ in 0..header.arcount {
            let (rr, next) = record_at(buf, pos)?;
            if rr.rtype == TYPE_OPT {
                if edns.is_some() {
                    return Err(DnsError::DuplicateOpt);
                }
                edns = Some(Edns {
                    udp_size: rr.class,
                    ext_rcode: (rr.ttl >> 24) as u8,
                    version: (rr.ttl >> 16) as u8,
                    dnssec_ok: rr.ttl & 0x8000 != 0,
                    options_len: rr.rdata.len() as u16,
                });
            }
            pos = next;
        }
        Ok(Message { buf, header, answers_at, authority_at, additional_at, end: pos, edns })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Length of the message as its records describe it.
    pub fn len(&self) -> usize {
        self.end
    }

    /// Always false: a valid message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes after the last record.
    pub fn trailing_len(&self) -> usize {
        self.buf.len() - self.end
    }

    /// The RCODE extended with EDNS's upper 8 bits (12 bits in all).
    pub fn rcode(&self) -> u16 {
        let ext = self.edns.map_or(0, |e| e.ext_rcode as u16);
        (ext << 4) | self.header.rcode() as u16
    }

    /// The questions, in order.
    pub fn questions(&self) -> impl Iterator<Item = Question> + 'a {
        let buf = self.buf;
        let mut pos = 12;
        (0..self.header.qdcount).map_while(move |_| {
            // Validated by parse(): cannot fail.
            let (q, next) = question_at(buf, pos).ok()?;
            pos = next;
            Some(q)
        })
    }

    /// The first question, if any (almost every real message has exactly one).
    pub fn first_question(&self) -> Option<Question> {
        self.questions().next()
    }

    /// The records of one section, in order.
    pub fn records(&self, section: Section) -> impl Iterator<Item = Record<'a>> + 'a {
        let (start, count) = match section {
            Section::Answer => (self.answers_at, self.header.ancount),
            Section::Authority => (self.authority_at, self.header.nscount),
            Section::Additional => (self.additional_at, self.header.arcount),
        };
        let buf = self.buf;
        let mut pos = start;
        (0..count).map_while(move |_| {
            let (rr, next) = record_at(buf, pos).ok()?;
            pos = next;
            Some(rr)
        })
    }

    /// Decodes the name at `at` (a `name_at` of a question or record, or a name inside RDATA).
    pub fn name(&self, at: usize, out: &mut NameBuf) -> Result<usize, DnsError> {
        read_name(self.buf, at, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.example.com` TXT with an OPT record, and its response with one TXT answer.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(b"\x01a\x07example\x03com\x00\x00\x10\x00\x01");
        m.extend_from_slice(b"\xC0\x0C\x00\x10\x00\x01\x00\x00\x00\x3C\x00\x04\x03abc");
        m.extend_from_slice(b"\x00\x00\x29\x04\xD0\x01\x00\x80\x00\x00\x00");
        m
    }

    #[test]
    fn parses_sections_and_edns() {
        let m = response();
        let msg = Message::parse(&m).unwrap();
        assert!(msg.header.is_response());
        assert_eq!(msg.header.id, 0x1234);
        assert_eq!(msg.header.rcode(), 3);
        let q = msg.first_question().unwrap();
        assert_eq!(q.qtype, TYPE_TXT);
        let mut name = NameBuf::new();
        msg.name(q.name_at, &mut name).unwrap();
        assert_eq!(name.as_bytes(), b"a.example.com");
        let answers: Vec<_> = msg.records(Section::Answer).collect();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].rdata, b"\x03abc");
        assert_eq!(answers[0].ttl, 60);
        msg.name(answers[0].name_at, &mut name).unwrap();
        assert_eq!(name.as_bytes(), b"a.example.com");
        let edns = msg.edns.unwrap();
        assert_eq!(edns.udp_size, 1232);
        assert_eq!(edns.ext_rcode, 1);
        assert!(edns.dnssec_ok);
        assert_eq!(msg.rcode(), (1 << 4) | 3);
        assert_eq!(msg.len(), m.len());
        assert_eq!(msg.trailing_len(), 0);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let m = response();
        for cut in 0..m.len() {
            assert!(Message::parse(&m[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn duplicate_opt_rejected() {
        let mut m = response();
        m[11] = 2;
        m.extend_from_slice(b"\x00\x00\x29\x04\xD0\x00\x00\x00\x00\x00\x00");
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::DuplicateOpt);
    }

    #[test]
    fn counts_larger_than_content_rejected() {
        let mut m = response();
        m[7] = 9; // ancount 9
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::NameTruncated);
    }
}
