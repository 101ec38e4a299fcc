//! The live pipeline: one worker per capture queue feeding the same decode stage and domain
//! shards as replay. A shard that falls behind holds back the workers that feed it, so their RX
//! rings fill and the kernel drops (and counts) frames there: under overload frames are lost at
//! the earliest point, before any work was spent on them, never as parsed records. Only at
//! shutdown is a batch a shard can no longer take dropped (and counted).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::aggregate::{Shard, ShardSink, ShardStats};
use crate::config::Config;
use crate::decode::LinkType;
use crate::metrics::Telemetry;
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::output::netflow::record::ExportRecord;
use crate::record::Batch;
use crate::reload::{Follower, ReloadHandle};
use crate::worker::{Decoder, WorkerStats};

/// Something that delivers Ethernet frames: an AF_XDP socket, or a test double.
pub trait FrameSource: Send {
    /// Waits up to `timeout` for frames and calls `f` for each; returns how many.
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(&[u8])) -> io::Result<usize>;
    /// The RX queue it reads, for metrics.
    fn queue(&self) -> u32 {
        0
    }
    /// Socket counters: rx_dropped, rx_ring_full, fill_ring_empty, invalid_descs.
    fn stats(&self) -> Option<[u64; 4]> {
        None
    }
}

impl FrameSource for crate::capture::afxdp::XskSocket {
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        crate::capture::afxdp::XskSocket::poll(self, timeout, |frame| f(frame))
    }
    fn queue(&self) -> u32 {
        crate::capture::afxdp::XskSocket::queue(self)
    }
    fn stats(&self) -> Option<[u64; 4]> {
        let s = crate::capture::afxdp::XskSocket::stats(self).ok()?;
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

/// What a live run did.
#[derive(Debug, Default)]
pub struct LiveReport {
    pub workers: WorkerStats,
    pub shards: ShardStats,
    pub elapsed: Duration,
    pub worker_count: usize,
    pub shard_count: usize,
    /// Records a shard could no longer take at shutdown (under load the rings drop instead).
    pub shard_drops: u64,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Pins the calling thread to one core (best effort: logged when refused).
fn pin(core: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(core, "cannot pin worker to core: {}", io::Error::last_os_error());
        }
    }
}

struct Sink<'a> {
    alarms: &'a Sender<Alarm>,
    export: Option<&'a ExportQueue>,
    telemetry: &'a Telemetry,
}

impl ShardSink for Sink<'_> {
    fn alarm(&mut self, alarm: Alarm) {
        if self.alarms.try_send(alarm).is_err() {
            self.telemetry.count_drop(2, 1);
        }
    }
    fn export(&mut self, record: ExportRecord) {
        if let Some(q) = self.export {
            q.send(record);
        }
    }
}

const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// How long a worker waits on a full shard before looking at the stop flag again.
const SEND_WAIT: Duration = Duration::from_millis(50);

/// Publishes a socket's counters in the live section of the telemetry.
fn publish_queue(telemetry: &Telemetry, index: usize, source: &dyn FrameSource) {
    let Some(stats) = source.stats() else { return };
    if let Ok(mut live) = telemetry.live.lock() {
        let live = live.get_or_insert_with(Default::default);
        if live.queues.len() <= index {
            live.queues.resize(index + 1, (0, [0; 4]));
        }
        live.queues[index] = (source.queue(), stats);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_worker(
    index: usize,
    cfg: &Config,
    mut reload: Follower,
    mut source: Box<dyn FrameSource>,
    shards: Vec<Sender<Batch>>,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
    core: Option<usize>,
) -> (WorkerStats, u64, Box<dyn FrameSource>) {
    if let Some(c) = core {
        pin(c);
    }
    let mut dec = Decoder::new(cfg, reload.current().allowlist.clone());
    let n = shards.len();
    let mut outs: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    let mut seq = (index as u64) << 48;
    let mut drops = 0u64;
    let mut published = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(r) = reload.poll() {
            dec.set_allowlist(r.allowlist.clone());
        }
        let ts = now_ns();
        let started = Instant::now();
        let got = source.poll(Duration::from_millis(100), &mut |frame| {
            dec.frame(Some(LinkType::Ethernet), frame, ts, seq, &mut |r, name| {
                outs[(r.domain_hash % n as u64) as usize].push(r, name)
            });
            seq += 1;
        });
        match got {
            Ok(0) => {}
            Ok(_) => dec.stats.busy_ns += started.elapsed().as_nanos() as u64,
            Err(e) => {
                tracing::error!(worker = index, "capture error: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
        for (tx, recs) in shards.iter().zip(outs.iter_mut()) {
            if recs.is_empty() {
                continue;
            }
            let mut batch = std::mem::replace(recs, Batch::with_capacity(64));
            loop {
                match tx.send_timeout(batch, SEND_WAIT) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(b)) if !stop.load(Ordering::Relaxed) => batch = b,
                    Err(SendTimeoutError::Timeout(b)) | Err(SendTimeoutError::Disconnected(b)) => {
                        drops += b.len() as u64;
                        telemetry.count_drop(1, b.len() as u64);
                        break;
                    }
                }
            }
        }
        if published.elapsed() >= PUBLISH_EVERY {
            telemetry.publish_worker(index, &dec.stats);
            publish_queue(&telemetry, index, source.as_ref());
            published = Instant::now();
        }
    }
    telemetry.publish_worker(index, &dec.stats);
    publish_queue(&telemetry, index, source.as_ref());
    (dec.stats, drops, source)
}

#[allow(clippy::too_many_arguments)]
fn run_shard(
    index: usize,
    cfg: &Config,
    shard_count: usize,
    rx: Receiver<Batch>,
    alarms: Sender<Alarm>,
    export: Option<ExportQueue>,
    telemetry: Arc<Telemetry>,
    mut reload: Follower,
) -> ShardStats {
    let mut shard = Shard::new(cfg, shard_count);
    shard.set_detect(&reload.current().detect);
    let mut sink = Sink { alarms: &alarms, export: export.as_ref(), telemetry: &telemetry };
    let mut published = Instant::now();
    loop {
        if let Some(r) = reload.poll() {
            shard.set_detect(&r.detect);
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => {
                for (r, name) in batch.iter() {
                    shard.process(r, name, &mut sink);
                }
            }
            Err(RecvTimeoutError::Timeout) => shard.idle(now_ns(), &mut sink),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if published.elapsed() >= PUBLISH_EVERY {
            telemetry.publish_shard(index, shard.snapshot());
            published = Instant::now();
        }
    }
    shard.finish(&mut sink);
    let snap = shard.snapshot();
    telemetry.publish_shard(index, snap.clone());
    snap.stats
}

/// Runs capture until `opts.stop` is set; `on_alarm` runs on a thread of its own. `on_stop` runs
/// once the workers have stopped polling and before their sources are dropped (detach XDP there).
pub fn run(
    cfg: &Config,
    sources: Vec<Box<dyn FrameSource>>,
    opts: LiveOptions,
    on_alarm: impl FnMut(Alarm) + Send,
    on_stop: impl FnOnce(),
) -> LiveReport {
    let started = Instant::now();
    let workers = sources.len();
    let shard_count = cfg.shards().max(1);
    let reload = opts.reload.clone().unwrap_or_else(|| ReloadHandle::new(cfg));
    let cap = cfg.pipeline.channel_batches * 16;
    let (alarm_tx, alarm_rx) = bounded::<Alarm>(4096);
    let mut report = LiveReport { worker_count: workers, shard_count, ..Default::default() };
    thread::scope(|s| {
        let mut on_alarm = on_alarm;
        let alarm_thread = s.spawn(move || {
            for a in alarm_rx {
                on_alarm(a);
            }
        });
        let mut shard_txs = Vec::new();
        let mut shard_threads = Vec::new();
        for i in 0..shard_count {
            let (tx, rx) = bounded::<Batch>(cap);
            shard_txs.push(tx);
            let (alarm_tx, export, t) = (alarm_tx.clone(), opts.export.clone(), opts.telemetry.clone());
            let f = reload.follower();
            shard_threads.push(s.spawn(move || run_shard(i, cfg, shard_count, rx, alarm_tx, export, t, f)));
        }
        drop(alarm_tx);
        // Workers hand back their sources so the caller can detach XDP before the sockets close.
        let mut worker_threads = Vec::new();
        for (i, source) in sources.into_iter().enumerate() {
            let shards = shard_txs.clone();
            let (f, t, stop) = (reload.follower(), opts.telemetry.clone(), opts.stop.clone());
            let core = opts.cores.get(i).copied();
            worker_threads.push(s.spawn(move || run_worker(i, cfg, f, source, shards, t, stop, core)));
        }
        drop(shard_txs);
        let mut stopped_sources = Vec::new();
        for t in worker_threads {
            match t.join() {
                Ok((st, drops, source)) => {
                    report.workers.merge(&st);
                    report.shard_drops += drops;
                    stopped_sources.push(source);
                }
                Err(_) => tracing::error!("a capture worker panicked"),
            }
        }
        // Detach first, then close the sockets.
        on_stop();
        drop(stopped_sources);
        for t in shard_threads {
            match t.join() {
                Ok(st) => report.shards.merge(&st),
                Err(_) => tracing::error!("an aggregation shard panicked"),
            }
        }
        let _ = alarm_thread.join();
    });
    report.elapsed = started.elapsed();
    report
}
