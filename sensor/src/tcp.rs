//! DNS over TCP (RFC 7766): the 2-byte length framing, several messages per segment and messages
//! split across segments, with bounded per-flow reassembly.
//!
//! Only flows with a partial message pending hold a buffer. A flow is forgotten on FIN/RST, when
//! idle, or when the table or the byte budget is full; every such loss is counted.

use std::collections::HashMap;

use crate::decode::TcpMeta;
use crate::flow::FlowKey;

/// Reassembly counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Complete messages delivered.
    pub messages: u64,
    /// Segments older than what was already delivered (retransmissions).
    pub duplicate_segments: u64,
    /// Segments after a gap: the pending partial message was dropped.
    pub gaps: u64,
    /// Partial messages dropped because the byte budget was exhausted.
    pub buffer_overflows: u64,
    /// Flows dropped because the flow table was full.
    pub table_full: u64,
    /// Flows forgotten after the idle timeout with a partial message pending.
    pub idle_evictions: u64,
    /// Flows closed by FIN or RST.
    pub closed: u64,
}

struct Stream {
    /// Sequence number of the next byte expected.
    next_seq: u32,
    /// Bytes of a message not yet complete (starting at its length prefix).
    pending: Vec<u8>,
    last_ns: u64,
}

/// Per-worker reassembly state.
pub struct Reassembler {
    flows: HashMap<FlowKey, Stream>,
    buffered: usize,
    max_flows: usize,
    max_buffered: usize,
    idle_ns: u64,
    last_sweep_ns: u64,
    pub stats: TcpStats,
}

/// Whether a segment that should start a DNS-over-TCP message plausibly does: a length of at
/// least a header, then a header with sane section counts. SSH, TLS or HTTP on port 53 fail this
/// at once instead of waiting for a bogus multi-kilobyte "message".
pub fn plausible_message_start(data: &[u8]) -> bool {
    if data.len() < 14 {
        return true; // too little to judge: let reassembly decide
    }
    let len = u16::from_be_bytes([data[0], data[1]]) as usize;
    let c = |i: usize| u16::from_be_bytes([data[2 + i], data[3 + i]]);
    len >= 12 && c(4) <= 16 && c(6) <= 1024 && c(8) <= 1024 && c(10) <= 1024
}

/// Emits every complete length-prefixed message at the start of `data`; returns the bytes used.
fn drain(data: &[u8], emit: &mut impl FnMut(&[u8])) -> (usize, u64) {
    let mut pos = 0;
    let mut n = 0;
    while data.len() - pos >= 2 {
        let len = u16::from_be_bytes([data[pos], data[pos + 1]]) as usize;
        if data.len() - pos - 2 < len {
            break;
        }
        if len > 0 {
            emit(&data[pos + 2..pos + 2 + len]);
            n += 1;
        }
        pos += 2 + len;
    }
    (pos, n)
}

impl Reassembler {
    pub fn new(max_flows: usize, max_buffered: usize, idle_secs: u64) -> Self {
        Reassembler {
            flows: HashMap::new(),
            buffered: 0,
            max_flows,
            max_buffered,
            idle_ns: idle_secs * 1_000_000_000,
            last_sweep_ns: 0,
            stats: TcpStats::default(),
        }
    }

    /// True if `flow` holds a partial message (its next segment continues it).
    pub fn has_pending(&self, flow: &FlowKey) -> bool {
        self.flows.contains_key(flow)
    }

    /// Flows currently holding a partial message.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Feeds one segment; `emit` receives each complete DNS message.
    pub fn segment(
        &mut self,
        now_ns: u64,
        flow: &FlowKey,
        tcp: TcpMeta,
        payload: &[u8],
        emit: &mut impl FnMut(&[u8]),
    ) {
        if now_ns >= self.last_sweep_ns.saturating_add(1_000_000_000) {
            self.expire(now_ns);
        }
        let closing = tcp.fin || tcp.rst;
        let mut data = payload;
        if let Some(s) = self.flows.get_mut(flow) {
            let offset = tcp.seq.wrapping_sub(s.next_seq) as i32;
            if offset < 0 {
                // Retransmission: skip what was already consumed.
                let old = offset.unsigned_abs() as usize;
                if old >= data.len() {
                    if !data.is_empty() {
                        self.stats.duplicate_segments += 1;
                    }
                    if closing {
                        self.remove(flow);
                    }
                    return;
                }
                data = &data[old..];
            } else if offset > 0 {
                // Lost bytes: the partial message cannot be completed.
                self.stats.gaps += 1;
                self.remove(flow);
                return self.segment_without_state(now_ns, flow, tcp, payload, emit);
            }
            let Some(s) = self.flows.get_mut(flow) else { return };
            s.last_ns = now_ns;
            s.next_seq = tcp.seq.wrapping_add(payload.len() as u32);
            // The pending message's declared length bounds what must be held.
            let want = if s.pending.len() >= 2 {
                2 + u16::from_be_bytes([s.pending[0], s.pending[1]]) as usize
            } else {
                2
            };
            let take = want.saturating_sub(s.pending.len()).min(data.len());
            if self.buffered + take > self.max_buffered {
                self.stats.buffer_overflows += 1;
                self.remove(flow);
                return;
            }
            s.pending.extend_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if s.pending.len() == 2 && !data.is_empty() {
                // The length prefix just completed: take the body.
                let body = u16::from_be_bytes([s.pending[0], s.pending[1]]) as usize;
                let more = body.min(data.len());
                if self.buffered + more > self.max_buffered {
                    self.stats.buffer_overflows += 1;
                    self.remove(flow);
                    return;
                }
                s.pending.extend_from_slice(&data[..more]);
                self.buffered += more;
                data = &data[more..];
            }
            let (used, n) = drain(&s.pending, emit);
            self.stats.messages += n;
            if used == s.pending.len() && used > 0 {
                self.buffered -= s.pending.len();
                self.flows.remove(flow);
                // The rest of the segment starts at a message boundary.
                let next = tcp.seq.wrapping_add((payload.len() - data.len()) as u32);
                let meta = TcpMeta { seq: next, ..tcp };
                return self.segment_without_state(now_ns, flow, meta, data, emit);
            }
            if closing {
                self.remove(flow);
            }
            return;
        }
        self.segment_without_state(now_ns, flow, tcp, payload, emit);
    }

    /// A segment assumed to start at a message boundary: complete messages are parsed in place,
    /// and only a trailing partial message is copied.
    fn segment_without_state(
        &mut self,
        now_ns: u64,
        flow: &FlowKey,
        tcp: TcpMeta,
        data: &[u8],
        emit: &mut impl FnMut(&[u8]),
    ) {
        let (used, n) = drain(data, emit);
        self.stats.messages += n;
        let rest = &data[used..];
        if tcp.fin || tcp.rst {
            self.stats.closed += 1;
            return;
        }
        if rest.is_empty() {
            return;
        }
        if self.flows.len() >= self.max_flows {
            self.expire(now_ns);
            if self.flows.len() >= self.max_flows {
                self.stats.table_full += 1;
                return;
            }
        }
        if self.buffered + rest.len() > self.max_buffered {
            self.stats.buffer_overflows += 1;
            return;
        }
        self.buffered += rest.len();
        let stream = Stream {
            next_seq: tcp.seq.wrapping_add(data.len() as u32),
            pending: rest.to_vec(),
            last_ns: now_ns,
        };
        self.flows.insert(*flow, stream);
    }

    fn remove(&mut self, flow: &FlowKey) {
        if let Some(s) = self.flows.remove(flow) {
            self.buffered -= s.pending.len();
            self.stats.closed += 1;
        }
    }

    /// Forgets flows idle for longer than the timeout.
    pub fn expire(&mut self, now_ns: u64) {
        self.last_sweep_ns = now_ns;
        let idle = self.idle_ns;
        let before = self.flows.len();
        let mut freed = 0;
        self.flows.retain(|_, s| {
            let keep = now_ns.saturating_sub(s.last_ns) < idle;
            if !keep {
                freed += s.pending.len();
            }
            keep
        });
        self.buffered -= freed;
        self.stats.idle_evictions += (before - self.flows.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::IpAddr16;

    fn flow() -> FlowKey {
        FlowKey {
            src: IpAddr16::v4([1, 1, 1, 1]),
            dst: IpAddr16::v4([2, 2, 2, 2]),
            sport: 5000,
            dport: 53,
            proto: 6,
        }
    }

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    fn meta(seq: u32) -> TcpMeta {
        TcpMeta { seq, syn: false, fin: false, rst: false }
    }

    fn run(r: &mut Reassembler, segs: &[(u32, &[u8])]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (seq, s) in segs {
            r.segment(0, &flow(), meta(*seq), s, &mut |m| out.push(m.to_vec()));
        }
        out
    }

    #[test]
    fn plausibility_of_a_message_start() {
        let dns = framed(&[b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01rest"]);
        assert!(plausible_message_start(&dns));
        assert!(!plausible_message_start(b"SSH-2.0-OpenSSH_9.2p1 Debian"));
        assert!(!plausible_message_start(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh"));
        assert!(!plausible_message_start(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }

    #[test]
    fn several_messages_in_one_segment() {
        let mut r = Reassembler::new(10, 1 << 20, 30);
        let data = framed(&[b"first", b"second", b"third"]);
        assert_eq!(
            run(&mut r, &[(100, &data)]),
            vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
        assert_eq!(r.flows(), 0);
    }

    #[test]
    fn split_at_every_offset() {
        let data = framed(&[b"hello world", b"again"]);
        for cut in 1..data.len() {
            for cut2 in cut..data.len() {
                let mut r = Reassembler::new(10, 1 << 20, 30);
                let out = run(
                    &mut r,
                    &[(0, &data[..cut]), (cut as u32, &data[cut..cut2]), (cut2 as u32, &data[cut2..])],
                );
                assert_eq!(out, vec![b"hello world".to_vec(), b"again".to_vec()], "cuts {cut} {cut2}");
                assert_eq!(r.flows(), 0);
                assert_eq!(r.buffered(), 0);
            }
        }
    }

    #[test]
    fn retransmission_and_gap() {
        let data = framed(&[b"abcdefgh"]);
        let mut r = Reassembler::new(10, 1 << 20, 30);
        let out = run(&mut r, &[(0, &data[..4]), (0, &data[..4]), (4, &data[4..])]);
        assert_eq!(out, vec![b"abcdefgh".to_vec()]);
        let mut r = Reassembler::new(10, 1 << 20, 30);
        let out = run(&mut r, &[(0, &data[..4]), (7, &data[7..])]);
        assert!(out.is_empty());
        assert_eq!(r.stats.gaps, 1);
    }

    #[test]
    fn budget_and_table_caps_count_drops() {
        let big = vec![0u8; 1000];
        let data = framed(&[&big]);
        let mut r = Reassembler::new(1, 100, 30);
        run(&mut r, &[(0, &data[..500])]);
        assert_eq!(r.stats.buffer_overflows, 1);
        let mut r = Reassembler::new(1, 1 << 20, 30);
        let f2 = FlowKey { sport: 6000, ..flow() };
        r.segment(0, &flow(), meta(0), &data[..10], &mut |_| {});
        r.segment(0, &f2, meta(0), &data[..10], &mut |_| {});
        assert_eq!(r.stats.table_full, 1);
        // Idle expiry frees the slot.
        r.segment(31_000_000_000, &f2, meta(0), &data[..10], &mut |_| {});
        assert_eq!(r.stats.idle_evictions, 1);
        assert_eq!(r.flows(), 1);
    }
}
