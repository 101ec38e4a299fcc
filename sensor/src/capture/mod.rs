//! Frame sources. Replay reads capture files; live capture (AF_XDP) feeds the same pipeline.
//!
//! Live capture: [`xdp`] loads and attaches the XDP program that steers DNS frames to one AF_XDP
//! socket per RX queue ([`afxdp`]); [`iface`] and [`netlink`] answer questions about interfaces.

pub mod afxdp;
pub mod cpu;
pub mod iface;
pub mod netlink;
pub mod pcap;
pub mod steer;
pub mod xdp;

use std::io;
use std::time::Duration;

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

/// What the decode stage needs to know of a frame besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    pub link: Option<LinkType>,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Position in capture order (replay: frame index; live: per queue, queue index in the top
    /// bits): ties in the shards are broken by it.
    pub seq: u64,
    /// Replay's merge unit (see `replay`): the worker combines records per (unit, domain). Live
    /// capture leaves it 0; a batch is its unit.
    pub unit: u64,
}

/// What one poll of a [`FrameSource`] delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Frames, or none within the timeout (live capture).
    Frames,
    /// One whole epoch of a replay: its records go to every shard, even when there are none, so
    /// shards can apply epochs in capture order (see `pipeline`).
    Epoch(u64),
    /// Nothing more will come: the worker ends.
    Closed,
}

/// Something that delivers frames to a worker: an AF_XDP socket, a replay reader's epochs, or a
/// test double. The pipeline never knows which.
pub trait FrameSource: Send {
    /// Waits up to `timeout` for frames and calls `f` for each.
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(FrameInfo, &[u8])) -> io::Result<Polled>;
    /// The RX queue it reads, for metrics.
    fn queue(&self) -> u32 {
        0
    }
    /// Socket counters: rx_dropped, rx_ring_full, fill_ring_empty, invalid_descs.
    fn stats(&self) -> Option<[u64; 4]> {
        None
    }
}
