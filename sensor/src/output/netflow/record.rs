//! The exported form of one DNS transaction.

use crate::flow::IpAddr16;
use crate::record::{flag as rflag, Record};
use crate::state::transactions::Transaction;

/// Bits of [`ExportRecord::flags`] (field DNSENTRY_FLAGS).
pub mod flag {
    pub const QNAME_TRUNCATED: u16 = 1;
    pub const TCP: u16 = 1 << 1;
    pub const NXDOMAIN: u16 = 1 << 2;
    pub const ALARMED: u16 = 1 << 3;
    pub const NO_RESPONSE: u16 = 1 << 4;
    pub const NO_QUERY: u16 = 1 << 5;
}

/// DNS_RET_CODE value for a query that got no response.
pub const RCODE_NO_RESPONSE: u16 = u16::MAX;

/// One transaction, ready to encode. Fixed size, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportRecord {
    pub client: IpAddr16,
    pub server: IpAddr16,
    pub client_port: u16,
    pub server_port: u16,
    pub proto: u8,
    pub bytes: u64,
    pub packets: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub vlan: u16,
    pub ifindex: u32,
    pub qname: [u8; 256],
    pub qname_len: u8,
    pub dns_id: u16,
    pub qtype: u16,
    pub rcode: u16,
    pub answers: u16,
    pub ttl: u32,
    pub score: u8,
    pub reasons: u32,
    pub labels: u8,
    pub longest_label: u8,
    pub entropy_milli: u16,
    pub domain_len: u8,
    pub flags: u16,
    /// Category code of the listed domain the query or its answer named (`reputation::Category`),
    /// 0 for none.
    pub reputation: u8,
}

impl ExportRecord {
    /// Builds the record of a transaction with its query name; its domain's verdict is set with
    /// [`ExportRecord::set_verdict`].
    pub fn new(tx: &Transaction, name: &[u8]) -> Option<Self> {
        let main: &Record = tx.query.as_ref().or(tx.response.as_ref())?;
        let mut flags = 0;
        if main.flags & rflag::TCP != 0 {
            flags |= flag::TCP;
        }
        if tx.query.is_none() {
            flags |= flag::NO_QUERY;
        }
        let (rcode, answers, ttl) = match &tx.response {
            Some(r) => {
                if r.rcode == crate::dns::view::RCODE_NXDOMAIN {
                    flags |= flag::NXDOMAIN;
                }
                (r.rcode, r.answers, r.ttl)
            }
            None => {
                flags |= flag::NO_RESPONSE;
                (RCODE_NO_RESPONSE, 0, 0)
            }
        };
        let start = tx.query.map_or(main.ts_ns, |q| q.ts_ns);
        let end = tx.response.map_or(start, |r| r.ts_ns.max(start));
        let bytes = tx.query.map_or(0, |q| q.msg_len as u64) + tx.response.map_or(0, |r| r.msg_len as u64);
        let packets = tx.query.is_some() as u64 + tx.response.is_some() as u64;
        let mut qname = [0u8; 256];
        // At most 255 bytes, from the right, as records keep names.
        let name = &name[name.len().saturating_sub(u8::MAX as usize)..];
        qname[..name.len()].copy_from_slice(name);
        Some(ExportRecord {
            client: main.client,
            server: main.server,
            client_port: main.client_port,
            server_port: main.server_port,
            proto: if main.flags & rflag::TCP != 0 { 6 } else { 17 },
            bytes,
            packets,
            start_ms: start / 1_000_000,
            end_ms: end / 1_000_000,
            vlan: main.vlan,
            ifindex: 0,
            qname,
            qname_len: name.len() as u8,
            dns_id: main.dns_id,
            qtype: main.qtype,
            rcode,
            answers,
            ttl,
            score: 0,
            reasons: 0,
            labels: main.lex.labels,
            longest_label: main.lex.longest_label,
            entropy_milli: (main.lex.entropy * 1000.0).round().clamp(0.0, 65535.0) as u16,
            domain_len: main.domain_len,
            flags,
            // A CNAME to a listed domain shows in the response only.
            reputation: tx.response.map_or(0, |r| r.reputation).max(main.reputation),
        })
    }

    /// The verdict of the transaction's domain: score, reason bits, and whether it alarmed.
    pub fn set_verdict(&mut self, score: u32, reasons: u32, alarmed: bool) {
        self.score = score.min(100) as u8;
        self.reasons = reasons;
        if alarmed {
            self.flags |= flag::ALARMED;
        }
    }

    pub fn qname(&self) -> &[u8] {
        &self.qname[..self.qname_len as usize]
    }
}
