//! Addresses and flow keys in a fixed, hashable, allocation-free form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address stored in 16 bytes (IPv4 in the first four) plus its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IpAddr16 {
    pub bytes: [u8; 16],
    pub v6: bool,
}

impl IpAddr16 {
    pub fn v4(a: [u8; 4]) -> Self {
        let mut bytes = [0; 16];
        bytes[..4].copy_from_slice(&a);
        IpAddr16 { bytes, v6: false }
    }

    pub fn v6(bytes: [u8; 16]) -> Self {
        IpAddr16 { bytes, v6: true }
    }

    pub fn to_ip(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]))
        }
    }
}

impl From<IpAddr> for IpAddr16 {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => IpAddr16::v4(a.octets()),
            IpAddr::V6(a) => IpAddr16::v6(a.octets()),
        }
    }
}

/// A directional 5-tuple as seen in one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr16,
    pub dst: IpAddr16,
    pub sport: u16,
    pub dport: u16,
    /// IP protocol number: 6 TCP, 17 UDP.
    pub proto: u8,
}

impl FlowKey {
    /// A hash equal for both directions of a flow, like a NIC's symmetric RSS: keeps a TCP
    /// connection's two halves on one worker.
    pub fn symmetric_hash(&self) -> u64 {
        let a = crate::hash::hash_bytes(&self.src.bytes)
            ^ (self.sport as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b = crate::hash::hash_bytes(&self.dst.bytes)
            ^ (self.dport as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        crate::hash::mix64(a.wrapping_add(b) ^ self.proto as u64)
    }
}
