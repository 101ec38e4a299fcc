//! Layer 2–4 decoding with etherparse: from a captured frame to the DNS payload and its flow.
//!
//! Everything borrows the frame; nothing is copied. Frames that do not lead to a DNS payload
//! return a [`Skip`] reason so the caller can count it.

use etherparse::{EtherType, LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::flow::{FlowKey, IpAddr16};

/// Link-layer header types (pcap `LINKTYPE_*`) replay understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Raw IPv4/IPv6 without a link header (LINKTYPE_RAW and the old DLT_RAW values).
    RawIp,
    /// Linux cooked capture v1 (`tcpdump -i any`).
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
}

impl LinkType {
    /// Maps a pcap link type number; `None` for types replay cannot decode.
    pub fn from_pcap(linktype: i32) -> Option<Self> {
        match linktype {
            1 => Some(LinkType::Ethernet),
            101 | 12 | 14 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }
}

/// Why a frame produced no DNS payload. Stable codes for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Link header or IP header shorter than announced, or otherwise malformed.
    Malformed,
    /// Neither IPv4 nor IPv6 (ARP, LLDP...).
    NonIp,
    /// An IP fragment (first or later): the transport header is not all there.
    Fragment,
    /// IP, but neither UDP nor TCP.
    NotUdpTcp,
    /// UDP/TCP on ports that are not configured as DNS ports.
    NotDnsPort,
    /// A TCP segment without payload (handshake, ACK); only its flags matter.
    NoPayload,
}

impl Skip {
    pub const ALL: [Skip; 6] =
        [Skip::Malformed, Skip::NonIp, Skip::Fragment, Skip::NotUdpTcp, Skip::NotDnsPort, Skip::NoPayload];

    pub const fn code(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::NonIp => "non_ip",
            Skip::Fragment => "ip_fragment",
            Skip::NotUdpTcp => "not_udp_tcp",
            Skip::NotDnsPort => "not_dns_port",
            Skip::NoPayload => "tcp_no_payload",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// TCP details the stream reassembly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpMeta {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A decoded DNS-port packet: the flow as seen on the wire and the transport payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub flow: FlowKey,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// `Some` for TCP, `None` for UDP.
    pub tcp: Option<TcpMeta>,
    pub payload: &'a [u8],
}

/// Set of DNS ports, looked up in O(1) without hashing.
#[derive(Clone)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl PortSet {
    pub fn new(ports: &[u16]) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        PortSet { bits }
    }

    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[port as usize / 64] & (1 << (port % 64)) != 0
    }
}

/// Slices a frame of the given link type. SLL2 is not in etherparse: its 20-byte header carries
/// the EtherType in its first two bytes.
fn slice(link: LinkType, frame: &[u8]) -> Option<SlicedPacket<'_>> {
    match link {
        LinkType::Ethernet => SlicedPacket::from_ethernet(frame).ok(),
        LinkType::RawIp => SlicedPacket::from_ip(frame).ok(),
        LinkType::LinuxSll => SlicedPacket::from_linux_sll(frame).ok(),
        LinkType::LinuxSll2 => {
            let ether_type = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            SlicedPacket::from_ether_type(EtherType(ether_type), frame.get(20..)?).ok()
        }
    }
}

/// Decodes one frame down to the payload of a UDP or TCP segment on a DNS port.
pub fn decode<'a>(link: LinkType, frame: &'a [u8], ports: &PortSet) -> Result<Packet<'a>, Skip> {
    let sliced = slice(link, frame).ok_or(Skip::Malformed)?;
    let vlan = sliced.link_exts.iter().find_map(|e| match e {
        LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
        _ => None,
    });
    let (src, dst, fragmented) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (IpAddr16::v4(h.source()), IpAddr16::v4(h.destination()), ip.is_payload_fragmented())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (IpAddr16::v6(h.source()), IpAddr16::v6(h.destination()), ip.is_payload_fragmented())
        }
        Some(NetSlice::Arp(_)) | None => return Err(Skip::NonIp),
    };
    if fragmented {
        return Err(Skip::Fragment);
    }
    let (sport, dport, proto, tcp, payload) = match &sliced.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), 17, None, u.payload()),
        Some(TransportSlice::Tcp(t)) => {
            let meta = TcpMeta { seq: t.sequence_number(), syn: t.syn(), fin: t.fin(), rst: t.rst() };
            (t.source_port(), t.destination_port(), 6, Some(meta), t.payload())
        }
        _ => return Err(Skip::NotUdpTcp),
    };
    if !ports.contains(sport) && !ports.contains(dport) {
        return Err(Skip::NotDnsPort);
    }
    let flow = FlowKey { src, dst, sport, dport, proto };
    Ok(Packet { flow, vlan, tcp, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b =
            PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(sport, dport);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn udp_dns_decoded() {
        let ports = PortSet::new(&[53]);
        let f = udp_frame(40000, 53, b"hello");
        let p = decode(LinkType::Ethernet, &f, &ports).unwrap();
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.flow.dport, 53);
        assert_eq!(p.flow.src.to_ip().to_string(), "10.0.0.1");
        assert!(p.tcp.is_none());
        assert_eq!(decode(LinkType::Ethernet, &udp_frame(1, 2, b"x"), &ports).unwrap_err(), Skip::NotDnsPort);
    }

    #[test]
    fn truncated_frames_are_malformed() {
        let ports = PortSet::new(&[53]);
        let f = udp_frame(40000, 53, b"hello world");
        for cut in 0..f.len() - 11 {
            let r = decode(LinkType::Ethernet, &f[..cut], &ports);
            assert!(r.is_err(), "cut {cut}");
        }
    }

    #[test]
    fn vlan_and_raw_ip_and_sll2() {
        let ports = PortSet::new(&[53]);
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(42).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .udp(53, 5353);
        let mut f = Vec::new();
        b.write(&mut f, b"dns").unwrap();
        let p = decode(LinkType::Ethernet, &f, &ports).unwrap();
        assert_eq!(p.vlan, Some(42));
        assert_eq!(p.payload, b"dns");

        let ip = &udp_frame(5, 53, b"raw")[14..];
        assert_eq!(decode(LinkType::RawIp, ip, &ports).unwrap().payload, b"raw");
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(ip);
        assert_eq!(decode(LinkType::LinuxSll2, &sll2, &ports).unwrap().payload, b"raw");
    }

    /// IPv4 header with `opts` option bytes (multiple of 4) and a UDP datagram to port 53.
    fn ipv4_udp(opts: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
        let ihl = 5 + opts.len() / 4;
        let total = ihl * 4 + 8 + payload.len();
        let mut v = vec![0x40 | ihl as u8, 0, (total >> 8) as u8, total as u8, 0, 1];
        v.extend(frag.to_be_bytes());
        v.extend([64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend(opts);
        v.extend(1234u16.to_be_bytes());
        v.extend(53u16.to_be_bytes());
        v.extend(((8 + payload.len()) as u16).to_be_bytes());
        v.extend([0, 0]);
        v.extend(payload);
        v
    }

    #[test]
    fn ipv4_options_and_fragments() {
        let ports = PortSet::new(&[53]);
        let f = ipv4_udp(&[1, 1, 1, 0], 0, b"opts");
        assert_eq!(decode(LinkType::RawIp, &f, &ports).unwrap().payload, b"opts");
        // More-fragments set (first fragment) and a non-first fragment.
        let first = ipv4_udp(&[], 0x2000, b"frag");
        assert_eq!(decode(LinkType::RawIp, &first, &ports).unwrap_err(), Skip::Fragment);
        let later = ipv4_udp(&[], 0x0010, b"frag");
        assert_eq!(decode(LinkType::RawIp, &later, &ports).unwrap_err(), Skip::Fragment);
    }

    #[test]
    fn ipv6_extension_headers() {
        let ports = PortSet::new(&[53]);
        let payload = b"v6ext";
        let udp_len = 8 + payload.len();
        // Hop-by-hop (8 bytes) then destination options (8 bytes), then UDP.
        let mut v = vec![0x60, 0, 0, 0];
        v.extend(((16 + udp_len) as u16).to_be_bytes());
        v.extend([0, 64]); // next header: hop-by-hop
        v.extend([0xfd; 16]);
        v.extend([0xfe; 16]);
        v.extend([60, 0, 1, 4, 0, 0, 0, 0]); // -> destination options
        v.extend([17, 0, 1, 4, 0, 0, 0, 0]); // -> UDP
        v.extend(5000u16.to_be_bytes());
        v.extend(53u16.to_be_bytes());
        v.extend((udp_len as u16).to_be_bytes());
        v.extend([0, 0]);
        v.extend(payload);
        let p = decode(LinkType::RawIp, &v, &ports).unwrap();
        assert_eq!(p.payload, payload);
        assert!(p.flow.src.v6);
    }

    #[test]
    fn two_vlan_tags() {
        let ports = PortSet::new(&[53]);
        let inner = ipv4_udp(&[], 0, b"qinq");
        let mut f = vec![2; 6];
        f.extend([1; 6]);
        f.extend([0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
        f.extend(inner);
        let p = decode(LinkType::Ethernet, &f, &ports).unwrap();
        assert_eq!(p.payload, b"qinq");
        assert_eq!(p.vlan, Some(100));
        // ARP is not IP.
        let mut arp = vec![2; 6];
        arp.extend([1; 6]);
        arp.extend([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend([0; 20]);
        assert_eq!(decode(LinkType::Ethernet, &arp, &ports).unwrap_err(), Skip::NonIp);
    }

    #[test]
    fn port_set() {
        let s = PortSet::new(&[53, 5353, 0, 65535]);
        assert!(s.contains(53) && s.contains(5353) && s.contains(0) && s.contains(65535));
        assert!(!s.contains(54));
    }
}
