//! Live capture: one [`pipeline`] worker per AF_XDP socket (one per RX queue), the same decode
//! stage and domain shards as replay. Frames are stamped with the wall clock when polled.
//!
//! [`pipeline`]: crate::pipeline

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnsentry_common::DefaultAction;

use crate::capture::afxdp::{BindMode, XskConfig, XskError, XskSocket};
use crate::capture::xdp::{AttachMode, AttachedMode, XdpConfig, XdpError, XdpProgram};
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

impl FrameSource for XskSource {
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(FrameInfo, &[u8])) -> io::Result<Polled> {
        let ts_ns = crate::pipeline::now_ns();
        let seq = &mut self.seq;
        self.socket.poll(timeout, |frame| {
            f(FrameInfo { link: Some(LinkType::Ethernet), ts_ns, seq: *seq, unit: 0 }, frame);
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
    /// Core for each shard (by index), if pinning is wanted.
    pub shard_cores: Vec<usize>,
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
        shard_cores: opts.shard_cores,
        reload: opts.reload,
        shard_channel: cfg.pipeline.channel_batches * 16,
    };
    crate::pipeline::run(cfg, sources, stages, on_alarm, || {}, on_stop)
}

/// Why live capture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Xdp(#[from] XdpError),
    #[error(transparent)]
    Socket(#[from] XskError),
}

/// The XDP program and one AF_XDP socket per captured RX queue of an interface.
pub struct Capture {
    pub prog: XdpProgram,
    pub sockets: Vec<XskSocket>,
    /// The attach mode obtained.
    pub mode: AttachedMode,
}

impl Capture {
    /// Loads and configures the program, opens the sockets (fill rings filled before bind), puts
    /// them in the XSK map, and only then attaches: no frame is redirected to a missing socket.
    pub fn open(iface: &str, cfg: &Config) -> Result<Self, SetupError> {
        let l = &cfg.live;
        let default_action =
            if l.default_action == "drop" { DefaultAction::Drop } else { DefaultAction::Pass };
        let attach: AttachMode = l.attach.parse().map_err(SetupError::Setting)?;
        let bind: BindMode = l.bind.parse().map_err(SetupError::Setting)?;
        let xdp_cfg =
            XdpConfig { default_action, dns_ports: cfg.capture.dns_ports.clone(), own_addresses: None };
        let mut prog = XdpProgram::load(iface, &xdp_cfg)?;
        let xsk_cfg = XskConfig {
            frame_count: l.frame_count,
            frame_size: l.frame_size,
            fill_size: l.ring_size,
            rx_size: l.ring_size,
            bind,
            ..XskConfig::default()
        };
        let sockets = XskSocket::open_all(iface, (l.queues > 0).then_some(l.queues), &xsk_cfg)?;
        for s in &sockets {
            prog.register_socket(s.queue(), s.fd())?;
            tracing::warn!(iface, queue = s.queue(), mode = %s.mode(), "AF_XDP socket bound");
        }
        let mode = prog.attach(attach)?;
        if let Some(id) = prog.replaced_stale() {
            tracing::warn!(iface, id, "replaced a stale XDP program left by an earlier run");
        }
        tracing::warn!(iface, mode = %mode, queues = sockets.len(), "XDP program attached");
        Ok(Capture { prog, sockets, mode })
    }
}

/// The live run's housekeeping thread, every 250 ms until `stop`: SIGHUP reloads (`reload` runs
/// when `hup` was raised), and every second the XDP counters for metrics and the status line (on
/// a terminal), every 10 s the host's own addresses in the program's map; it sets `stop` once
/// `duration` (if any) has passed.
pub fn spawn_monitor(
    prog: Arc<Mutex<XdpProgram>>,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    duration: Option<Duration>,
    mut reload: impl FnMut() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let names = crate::capture::xdp::counter_names();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    std::thread::Builder::new().name("monitor".into()).spawn(move || {
        let started = Instant::now();
        let mut tick = 0u64;
        let mut last_seen = 0u64;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            tick += 1;
            if hup.swap(false, Ordering::Relaxed) {
                reload();
            }
            if !tick.is_multiple_of(4) {
                continue;
            }
            let Ok(mut p) = prog.lock() else { break };
            if let Ok(c) = p.counters() {
                if let Ok(mut live) = telemetry.live.lock() {
                    live.get_or_insert_with(Default::default).xdp = names.iter().copied().zip(c).collect();
                }
                if tty {
                    let w = crate::metrics::exporter::totals(&telemetry);
                    eprint!(
                        "\r{:>10} frames seen ({:>8}/s) {:>10} redirected {:>10} dns {:>6} alarms, {} drops   ",
                        c[0],
                        c[0] - last_seen,
                        c[1],
                        w.0,
                        w.1,
                        w.2
                    );
                    last_seen = c[0];
                }
            }
            if tick.is_multiple_of(40) {
                if let Err(e) = p.refresh_own_addresses() {
                    tracing::warn!("cannot refresh the host's addresses: {e}");
                }
            }
            drop(p);
            if duration.is_some_and(|d| started.elapsed() >= d) {
                stop.store(true, Ordering::Relaxed);
            }
        }
        if tty {
            eprintln!();
        }
    })
}
