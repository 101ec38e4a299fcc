//! Frame sources. Replay reads capture files; live capture (AF_XDP) feeds the same pipeline.
//!
//! Live capture: [`xdp`] loads and attaches the XDP program that steers DNS frames to one AF_XDP
//! socket per RX queue ([`afxdp`]); [`iface`] and [`netlink`] answer questions about interfaces.

pub mod afxdp;
pub mod iface;
pub mod netlink;
pub mod pcap;
pub mod steer;
pub mod xdp;

use crate::decode::LinkType;

/// One captured frame, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// `None` when the link type is one dnsentry cannot decode (see `linktype`).
    pub link: Option<LinkType>,
    /// The raw pcap link type number.
    pub linktype: i32,
    pub data: &'a [u8],
}
