//! Spreading replayed frames over workers as a NIC's symmetric RSS would: a hash of the
//! addresses and ports read straight from the headers, equal for both directions, so a TCP
//! connection's two halves and an exchange's query and response meet in one worker.
//!
//! It reads a handful of header fields at fixed offsets instead of decoding the frame (the reader
//! runs it on every frame, and one reader feeds every worker). A frame it cannot read goes to
//! worker 0; the workers' own decoder judges and counts it. IP fragments hash by addresses only,
//! so every piece of a datagram lands on the same worker.

use crate::decode::LinkType;
use crate::hash::{hash_bytes, mix64};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The worker (of `workers`) a frame goes to.
pub fn worker_for(link: Option<LinkType>, frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    link.and_then(|l| flow_hash(l, frame)).map_or(0, |h| (h % workers as u64) as usize)
}

/// Symmetric hash of (addresses, protocol, ports), or `None` if the headers are not readable.
pub fn flow_hash(link: LinkType, frame: &[u8]) -> Option<u64> {
    let (ethertype, at) = match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut ethertype = be16(frame, at)?;
            // Up to two VLAN tags (802.1Q, 802.1ad, and the old QinQ type).
            for _ in 0..2 {
                if matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
                    at += 4;
                    ethertype = be16(frame, at)?;
                }
            }
            (ethertype, at + 2)
        }
        LinkType::LinuxSll => (be16(frame, 14)?, 16),
        LinkType::LinuxSll2 => (be16(frame, 0)?, 20),
        LinkType::RawIp => match frame.first()? >> 4 {
            4 => (0x0800, 0),
            6 => (0x86dd, 0),
            _ => return None,
        },
    };
    let ip = frame.get(at..)?;
    let (src, dst, proto, ports) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = be16(ip, 6)?;
            let fragment = frag & 0x3fff != 0; // more fragments, or an offset
            let proto = *ip.get(9)?;
            (ip.get(12..16)?, ip.get(16..20)?, proto, if fragment { None } else { ip.get(ihl..ihl + 4) })
        }
        0x86dd => {
            let proto = *ip.get(6)?;
            // Extension headers are not walked: such packets hash by addresses alone.
            (ip.get(8..24)?, ip.get(24..40)?, proto, ip.get(40..44))
        }
        _ => return None,
    };
    let ports = ports.filter(|_| matches!(proto, 6 | 17));
    let (sport, dport) = ports.map_or((0, 0), |p| (be16(p, 0).unwrap_or(0), be16(p, 2).unwrap_or(0)));
    let a = hash_bytes(src) ^ u64::from(sport).wrapping_mul(K);
    let b = hash_bytes(dst) ^ u64::from(dport).wrapping_mul(K);
    Some(mix64(a.wrapping_add(b) ^ u64::from(proto)))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + UDP with the given addresses and ports, optionally VLAN-tagged.
    fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn both_directions_meet_and_flows_spread() {
        let q = frame([10, 0, 0, 1], [10, 0, 0, 53], 40000, 53, false);
        let r = frame([10, 0, 0, 53], [10, 0, 0, 1], 53, 40000, false);
        assert_eq!(flow_hash(LinkType::Ethernet, &q), flow_hash(LinkType::Ethernet, &r));
        let tagged = frame([10, 0, 0, 53], [10, 0, 0, 1], 53, 40000, true);
        assert_eq!(flow_hash(LinkType::Ethernet, &tagged), flow_hash(LinkType::Ethernet, &q));
        // Other source ports of one client spread over workers.
        let used: std::collections::HashSet<usize> = (0..64u16)
            .map(|p| {
                worker_for(
                    Some(LinkType::Ethernet),
                    &frame([10, 0, 0, 1], [10, 0, 0, 53], 40000 + p, 53, false),
                    4,
                )
            })
            .collect();
        assert_eq!(used.len(), 4);
        // Unreadable frames go to worker 0, never panic.
        for n in 0..q.len() {
            let w = worker_for(Some(LinkType::Ethernet), &q[..n], 4);
            assert!(w < 4);
        }
        assert_eq!(worker_for(None, &q, 4), 0);
    }

    #[test]
    fn fragments_hash_by_addresses() {
        let mut first = frame([10, 0, 0, 1], [10, 0, 0, 53], 40000, 53, false);
        first[20] = 0x20; // more fragments
        let mut later = frame([10, 0, 0, 1], [10, 0, 0, 53], 1234, 5678, false);
        later[20] = 0x00;
        later[21] = 0x10; // offset, no ports in this piece
        assert_eq!(flow_hash(LinkType::Ethernet, &first), flow_hash(LinkType::Ethernet, &later));
    }
}
