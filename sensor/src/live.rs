//! Live capture: one [`pipeline`] worker per AF_XDP socket (one per RX queue), the same decode
//! stage and domain shards as replay. Frames are stamped with the wall clock when polled.
//!
//! [`pipeline`]: crate::pipeline

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::capture::afxdp::XskSocket;
use crate::capture::{FrameInfo, FrameSource, Polled};
use crate::config::Config;
use crate::decode::LinkType;
use crate::metrics::Telemetry;
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::pipeline::{Mode, Report, Stages};
use crate::reload::ReloadHandle;

/// An AF_XDP socket as a frame source: Ethernet frames, the poll's wall-clock time, and sequence
/// numbers unique across queues (queue index in the top 16 bits).
pub struct XskSource {
    socket: XskSocket,
    seq: u64,
}

impl XskSource {
    /// `index`: the socket's place among the run's sources.
    pub fn new(socket: XskSocket, index: usize) -> Self {
        XskSource { socket, seq: (index as u64) << 48 }
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl FrameSource for XskSource {
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(FrameInfo, &[u8])) -> io::Result<Polled> {
        let ts_ns = now_ns();
        let seq = &mut self.seq;
        self.socket.poll(timeout, |frame| {
            f(FrameInfo { link: Some(LinkType::Ethernet), ts_ns, seq: *seq }, frame);
            *seq += 1;
        })?;
        Ok(Polled::Frames)
    }
    fn queue(&self) -> u32 {
        self.socket.queue()
    }
    fn stats(&self) -> Option<[u64; 4]> {
        let s = self.socket.stats().ok()?;
        Some([s.rx_dropped, s.rx_ring_full, s.fill_ring_empty_descs, s.rx_invalid_descs])
    }
}

/// What the live run needs besides its sources.
pub struct LiveOptions {
    pub telemetry: Arc<Telemetry>,
    pub export: Option<ExportQueue>,
    /// Set to stop capture (SIGINT/SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Core for each worker (by index), if pinning is wanted.
    pub cores: Vec<usize>,
    /// Where SIGHUP reloads are published (none: settings fixed for the run).
    pub reload: Option<Arc<ReloadHandle>>,
}

/// Runs capture until `opts.stop` is set; `on_alarm` runs on a thread of its own. `on_stop` runs
/// once the workers have stopped polling and before their sources are dropped (detach XDP there).
pub fn run(
    cfg: &Config,
    sources: Vec<Box<dyn FrameSource>>,
    opts: LiveOptions,
    on_alarm: impl FnMut(Alarm) + Send,
    on_stop: impl FnOnce(),
) -> Report {
    let stages = Stages {
        mode: Mode::Live,
        telemetry: Some(opts.telemetry),
        export: opts.export,
        stop: opts.stop,
        cores: opts.cores,
        reload: opts.reload,
        shard_channel: cfg.pipeline.channel_batches * 16,
    };
    crate::pipeline::run(cfg, sources, stages, on_alarm, || {}, on_stop)
}
