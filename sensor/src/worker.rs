//! The per-core decode stage: frame → L2–L4 → DNS view → features → records. Shared by replay
//! and live capture; it never knows where a frame came from.

use std::sync::Arc;

use crate::config::Config;
use crate::decode::{decode, LinkType, PortSet, Skip};
use crate::detect::allowlist::Allowlist;
use crate::dns::{DnsError, Message};
use crate::features::{extract, Context, Scratch};
use crate::metrics::hist::{Hist, ENTROPY_BOUNDS, QNAME_LEN_BOUNDS, RESPONSE_SIZE_BOUNDS};
use crate::metrics::labels::{qtype_index, rcode_index, QTYPE_SLOTS, RCODE_SLOTS};
use crate::record::Record;
use crate::reputation::Reputation;
use crate::tcp::{Reassembler, TcpStats};

/// Counters of one worker. Plain integers: a worker owns them; they are summed at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub frames: u64,
    pub bytes: u64,
    /// Frames of a link type dnsentry cannot decode.
    pub unsupported_link: u64,
    pub skipped: [u64; Skip::ALL.len()],
    pub dns_errors: [u64; DnsError::ALL.len()],
    /// Valid messages without a question.
    pub no_question: u64,
    /// DNS messages by [response][tcp][ipv6].
    pub messages: [[[u64; 2]; 2]; 2],
    /// Queries by type (see `metrics::labels`).
    pub qtypes: [u64; QTYPE_SLOTS],
    /// Responses by response code.
    pub rcodes: [u64; RCODE_SLOTS],
    pub qname_len: Hist<8>,
    pub entropy: Hist<9>,
    pub response_size: Hist<9>,
    /// Nanoseconds spent decoding (measured per batch by the caller).
    pub busy_ns: u64,
    pub tcp: TcpStats,
    /// TCP flows holding a partial message now (a gauge).
    pub tcp_flows: u64,
}

impl WorkerStats {
    pub fn dns_messages(&self) -> u64 {
        self.messages.iter().flatten().flatten().sum()
    }

    /// Messages of one direction and transport, both families.
    pub fn messages_of(&self, response: bool, tcp: bool) -> u64 {
        self.messages[response as usize][tcp as usize].iter().sum()
    }

    /// Counts one decoded message.
    fn count(&mut self, r: &Record, tcp: bool) {
        let response = r.is_response();
        self.messages[response as usize][tcp as usize][r.client.v6 as usize] += 1;
        if response {
            self.rcodes[rcode_index(r.rcode)] += 1;
            self.response_size.observe(&RESPONSE_SIZE_BOUNDS, r.msg_len as f64);
        } else {
            self.qtypes[qtype_index(r.qtype)] += 1;
            self.qname_len.observe(&QNAME_LEN_BOUNDS, r.lex.qname_len as f64);
            if r.lex.sub_len > 0 {
                self.entropy.observe(&ENTROPY_BOUNDS, r.lex.entropy as f64);
            }
        }
    }

    pub fn parse_errors(&self) -> u64 {
        self.dns_errors.iter().sum::<u64>() + self.no_question
    }

    pub fn merge(&mut self, o: &WorkerStats) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.unsupported_link += o.unsupported_link;
        for (a, b) in self.skipped.iter_mut().zip(o.skipped) {
            *a += b;
        }
        for (a, b) in self.dns_errors.iter_mut().zip(o.dns_errors) {
            *a += b;
        }
        self.no_question += o.no_question;
        for (a, b) in self.messages.iter_mut().flatten().flatten().zip(o.messages.iter().flatten().flatten())
        {
            *a += b;
        }
        for (a, b) in self.qtypes.iter_mut().zip(o.qtypes) {
            *a += b;
        }
        for (a, b) in self.rcodes.iter_mut().zip(o.rcodes) {
            *a += b;
        }
        self.qname_len.merge(&o.qname_len);
        self.entropy.merge(&o.entropy);
        self.response_size.merge(&o.response_size);
        self.busy_ns += o.busy_ns;
        self.tcp_flows += o.tcp_flows;
        let (t, u) = (&mut self.tcp, &o.tcp);
        t.messages += u.messages;
        t.duplicate_segments += u.duplicate_segments;
        t.gaps += u.gaps;
        t.buffer_overflows += u.buffer_overflows;
        t.table_full += u.table_full;
        t.idle_evictions += u.idle_evictions;
        t.closed += u.closed;
    }
}

/// One worker's decoder state.
pub struct Decoder {
    ports: PortSet,
    tcp: Reassembler,
    allowlist: Arc<Allowlist>,
    reputation: Arc<Reputation>,
    scratch: Scratch,
    pub stats: WorkerStats,
}

impl Decoder {
    pub fn new(cfg: &Config, allowlist: Arc<Allowlist>) -> Self {
        crate::features::warm_up();
        Decoder {
            ports: PortSet::new(&cfg.capture.dns_ports),
            tcp: Reassembler::new(cfg.tcp.max_flows, cfg.tcp.max_buffered_bytes, cfg.tcp.idle_timeout_secs),
            allowlist,
            reputation: Arc::default(),
            scratch: Scratch::default(),
            stats: WorkerStats::default(),
        }
    }

    /// Replaces the allow-list (SIGHUP reload); TCP reassembly state is kept.
    pub fn set_allowlist(&mut self, allowlist: Arc<Allowlist>) {
        self.allowlist = allowlist;
    }

    /// Replaces the reputation lists (start, SIGHUP reload).
    pub fn set_reputation(&mut self, reputation: Arc<Reputation>) {
        self.reputation = reputation;
        self.scratch.clean.clear();
    }

    /// The CNAME target's hit a record from this decoder names (its `hit`), as its shard
    /// reports it.
    pub fn hit(&self, r: &Record) -> Option<crate::reputation::Hit> {
        self.reputation.hit(r.hit, r.flags & crate::record::flag::REPUTATION_VIA_CNAME != 0)
    }

    /// Finishes the reputation lookup of a record's query name (flag `REPUTATION_PENDING`), once
    /// the batch it belongs to is decoded: the hit, if the name is listed.
    pub fn finish_lookup(&mut self, r: &Record, name: &[u8]) -> Option<crate::reputation::Hit> {
        let domain = (r.domain_len as usize, r.domain_hash);
        let entry = self.scratch.clean.finish(&self.reputation, name, Some(domain))?;
        self.reputation.hit(entry + 1, false)
    }

    /// Decodes one frame; `out` receives a record and its lowercased query name per DNS message
    /// found (an empty name for a payload that is not DNS).
    pub fn frame(
        &mut self,
        link: Option<LinkType>,
        data: &[u8],
        ts_ns: u64,
        seq: u64,
        out: &mut impl FnMut(Record, &[u8]),
    ) {
        self.stats.frames += 1;
        self.stats.bytes += data.len() as u64;
        let Some(link) = link else {
            self.stats.unsupported_link += 1;
            return;
        };
        let pkt = match decode(link, data, &self.ports) {
            Ok(p) => p,
            Err(skip) => {
                self.stats.skipped[skip.index()] += 1;
                return;
            }
        };
        let vlan = pkt.vlan.unwrap_or(0);
        let ctx = Context { allowlist: &self.allowlist, reputation: &self.reputation };
        let stats = &mut self.stats;
        let scratch = &mut self.scratch;
        let flow = pkt.flow;
        let dns_port_is_dst = self.ports.contains(flow.dport);
        let mut message = |bytes: &[u8], tcp: bool| match Message::parse(bytes) {
            Err(e) => {
                stats.dns_errors[e.index()] += 1;
                // Counted as a parse error, and still reported: the flow may be a tunnel in
                // another protocol hiding on a DNS port.
                let (client, server, ports) = if dns_port_is_dst {
                    (flow.src, flow.dst, (flow.sport, flow.dport))
                } else {
                    (flow.dst, flow.src, (flow.dport, flow.sport))
                };
                out(Record::non_dns(client, server, ports, bytes, tcp, ts_ns, seq), &[]);
            }
            Ok(msg) => match extract(&msg, &pkt.flow, tcp, vlan, ts_ns, seq, &ctx, scratch) {
                Err(_) => stats.no_question += 1,
                Ok((rec, len)) => {
                    stats.count(&rec, tcp);
                    out(rec, &scratch.lower[..len]);
                }
            },
        };
        match pkt.tcp {
            None => message(pkt.payload, false),
            Some(meta) => {
                if pkt.payload.is_empty() && !(meta.fin || meta.rst) {
                    stats.skipped[Skip::NoPayload.index()] += 1;
                    return;
                }
                if !self.tcp.has_pending(&pkt.flow) && !crate::tcp::plausible_message_start(pkt.payload) {
                    // Not DNS framing: report the flow instead of buffering a bogus message.
                    message(pkt.payload, true);
                    return;
                }
                self.tcp.segment(ts_ns, &pkt.flow, meta, pkt.payload, &mut |m| message(m, true));
                stats.tcp = self.tcp.stats.clone();
                stats.tcp_flows = self.tcp.flows() as u64;
            }
        }
    }
}
