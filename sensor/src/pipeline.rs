//! The pipeline both commands run: N decode workers, one per frame source, and S domain shards,
//! connected by bounded crossbeam channels, plus the alarm writer thread. `replay` (capture files)
//! and `live` (AF_XDP sockets) only bring their sources; the stages are built here, once.
//!
//! Workers decode each frame into a record and its name ([`Batch`]), routed to a shard by the hash
//! of the registered domain, so one domain's state lives in one shard. Two ways to hand over:
//!
//! - **Epochs (replay).** A source that delivers [`Polled::Epoch`] gets its records sent to every
//!   shard, even an empty batch, and a shard applies an epoch only once all N parts are in, merged
//!   in capture order. The state a shard sees, and the alarms it raises, do not depend on N or S.
//!   Nothing is dropped: a full channel makes the sender wait, and the reader behind it.
//! - **Arrival (live).** Batches are applied as they come; a worker that finds its shard's channel
//!   full waits for it, so the ring it reads fills and the kernel drops frames there, counted,
//!   before any work was spent on them. Shards let time pass on the wall clock when idle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use crate::aggregate::{Shard, ShardSink, ShardStats};
use crate::capture::pcap::CaptureError;
use crate::capture::{FrameSource, Polled};
use crate::config::Config;
use crate::metrics::{DropStage, Telemetry};
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::output::netflow::record::ExportRecord;
use crate::record::{flag, Batch};
use crate::reload::{Follower, ReloadHandle};
use crate::state::partial::Combiner;
use crate::worker::{Decoder, WorkerStats};

pub use crate::replay::{replay, ReplayOptions};

/// How the stages behave where replay and live capture differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Capture files: capture time is the clock, nothing is dropped, alarms wait for the writer.
    Replay,
    /// A capture interface: shards sweep on the wall clock when idle, an alarm the writer cannot
    /// take at once is dropped and counted.
    Live,
}

/// What the stages need besides the configuration and the sources.
pub struct Stages {
    pub mode: Mode,
    /// Where workers and shards publish their counters for the metrics endpoint.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Where shards send DNS transactions for NetFlow/IPFIX export.
    pub export: Option<ExportQueue>,
    /// Set to stop the workers (live: SIGINT/SIGTERM); sources that close end them too.
    pub stop: Arc<AtomicBool>,
    /// Core for each worker (by index), if pinning is wanted.
    pub cores: Vec<usize>,
    /// Core for each shard (by index), if pinning is wanted.
    pub shard_cores: Vec<usize>,
    /// Where SIGHUP reloads are published (none: settings fixed for the run).
    pub reload: Option<Arc<ReloadHandle>>,
    /// Capacity of each shard's channel, in batches.
    pub shard_channel: usize,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub file_errors: Vec<CaptureError>,
    pub workers: WorkerStats,
    pub shards: ShardStats,
    pub elapsed: Duration,
    pub worker_count: usize,
    pub shard_count: usize,
    /// Records a shard could no longer take when the workers stopped (live).
    pub shard_drops: u64,
}

/// The name replay callers know the report by.
pub type ReplayReport = Report;

/// Records of one worker for one shard; `epoch` for replay's ordered hand-over.
struct ShardMsg {
    epoch: Option<u64>,
    batch: Batch,
}

const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// How long a worker waits on a full shard before looking at the stop flag again.
const SEND_WAIT: Duration = Duration::from_millis(50);
/// How long a live source waits for frames per poll.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// The wall clock, nanoseconds since the Unix epoch (live capture's time).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A shard's outputs.
struct Sink<'a> {
    mode: Mode,
    alarms: &'a Sender<Alarm>,
    export: Option<&'a ExportQueue>,
    telemetry: Option<&'a Telemetry>,
}

impl ShardSink for Sink<'_> {
    fn alarm(&mut self, alarm: Alarm) {
        match self.mode {
            // A closed channel means the writer thread is gone; the join reports that.
            Mode::Replay => {
                let _ = self.alarms.send(alarm);
            }
            Mode::Live => {
                if self.alarms.try_send(alarm).is_err() {
                    let lost = self.telemetry.map_or(0, |t| t.count_drop(DropStage::Alarms, 1));
                    // An alarm lost is an error; logged on the 1st, 2nd, 4th, 8th... loss.
                    if lost.is_power_of_two() {
                        tracing::error!(
                            lost,
                            "alarm dropped: the alarm writer cannot keep up (slow disk or pipe?)"
                        );
                    }
                }
            }
        }
    }
    fn export(&mut self, record: ExportRecord) {
        if let Some(q) = self.export {
            q.send(record);
        }
    }
}

/// Publishes a source's socket counters in the live section of the telemetry.
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

/// Hands a batch to a shard, waiting while it is full; gives up (returning the records lost) only
/// once `stop` is set or the shard is gone.
fn hand_over(tx: &Sender<ShardMsg>, mut msg: ShardMsg, stop: &AtomicBool) -> u64 {
    loop {
        match tx.send_timeout(msg, SEND_WAIT) {
            Ok(()) => return 0,
            Err(SendTimeoutError::Timeout(m)) if !stop.load(Ordering::Relaxed) => msg = m,
            Err(SendTimeoutError::Timeout(m)) | Err(SendTimeoutError::Disconnected(m)) => {
                return m.batch.len() as u64
            }
        }
    }
}

/// Emptied batches on their way back from the shards to the workers: a batch's buffers (a few MiB
/// for a replay epoch) are reused instead of allocated, faulted in and unmapped per batch.
#[derive(Clone)]
struct Pool {
    give: Sender<Batch>,
    take: Receiver<Batch>,
}

impl Pool {
    fn new(cap: usize) -> Self {
        let (give, take) = bounded(cap.max(1));
        Pool { give, take }
    }

    fn take(&self) -> Batch {
        self.take.try_recv().unwrap_or_default()
    }

    /// Returns batches once applied (dropped when the pool is full).
    fn give(&self, batches: impl IntoIterator<Item = Batch>) {
        for mut b in batches {
            b.clear();
            if self.give.try_send(b).is_err() {
                break;
            }
        }
    }
}

struct Worker<'a> {
    index: usize,
    pool: Pool,
    cfg: &'a Config,
    reload: Follower,
    source: Box<dyn FrameSource + 'a>,
    shards: Vec<Sender<ShardMsg>>,
    telemetry: Option<Arc<Telemetry>>,
    stop: Arc<AtomicBool>,
    core: Option<usize>,
}

/// Decodes what the source delivers until it closes or `stop` is set. Returns its counters, the
/// records it could not hand over, and the source (so the caller decides when it is closed).
fn run_worker(w: Worker<'_>) -> (WorkerStats, u64, Box<dyn FrameSource + '_>) {
    let Worker { index, pool, cfg, mut reload, mut source, shards, telemetry, stop, core } = w;
    if let Some(c) = core {
        crate::capture::cpu::pin(c);
    }
    let mut dec = Decoder::new(cfg, reload.current().allowlist.clone());
    dec.set_reputation(reload.current().reputation.clone());
    let n = shards.len();
    let mut outs: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    // Each shard's records, folded per domain and pair as they are batched.
    let mut combiners: Vec<Combiner> = (0..n).map(|_| Combiner::new(cfg.state.sketch_k)).collect();
    let mut drops = 0u64;
    let mut published = Instant::now();
    // (shard, index in its batch) of the records whose reputation lookup is pending.
    let mut pending: Vec<(usize, usize)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(r) = reload.poll() {
            dec.set_allowlist(r.allowlist.clone());
            dec.set_reputation(r.reputation.clone());
        }
        let started = Instant::now();
        let mut frames = 0usize;
        let polled = source.poll(POLL_WAIT, &mut |info, frame| {
            frames += 1;
            let mut cname_hits = Vec::new();
            let unit = info.unit;
            dec.frame(info.link, frame, info.ts_ns, info.seq, &mut |r, name| {
                let s = (r.domain_hash % n as u64) as usize;
                if r.hit != 0 {
                    // Rare: its hit is built once the frame is decoded (the decoder is busy).
                    return cname_hits.push((r, name.to_vec()));
                }
                if r.flags & flag::REPUTATION_PENDING != 0 {
                    pending.push((s, outs[s].len()));
                }
                let mut r = r;
                r.unit = info.unit as u32;
                outs[s].push(r, name);
                if !r.is_non_dns() {
                    combiners[s].add(&outs[s].records, outs[s].len() - 1);
                }
            });
            for (r, name) in cname_hits {
                let s = (r.domain_hash % n as u64) as usize;
                if r.flags & flag::REPUTATION_PENDING != 0 {
                    pending.push((s, outs[s].len()));
                }
                let mut r = r;
                r.unit = unit as u32;
                match dec.hit(&r) {
                    Some(hit) => outs[s].push_hit(r, &name, hit),
                    None => outs[s].push(r, &name),
                };
                if !r.is_non_dns() {
                    combiners[s].add(&outs[s].records, outs[s].len() - 1);
                }
            }
        });
        // The query names' reputation lookups: their filter lines were fetched while decoding.
        for (s, i) in pending.drain(..) {
            let batch = &outs[s];
            let Some(r) = batch.records.get(i) else { continue };
            if let Some(hit) = dec.finish_lookup(r, batch.name(r)) {
                outs[s].set_hit(i, hit);
            }
        }
        if frames > 0 {
            dec.stats.busy_ns += started.elapsed().as_nanos() as u64;
        }
        let (epoch, closed) = match polled {
            Ok(Polled::Frames) => (None, false),
            Ok(Polled::Epoch(e)) => (Some(e), false),
            Ok(Polled::Closed) => (None, true),
            Err(e) => {
                tracing::error!(worker = index, "capture error: {e}");
                thread::sleep(POLL_WAIT);
                (None, false)
            }
        };
        for ((tx, out), combiner) in shards.iter().zip(outs.iter_mut()).zip(combiners.iter_mut()) {
            combiner.finish_into(&mut out.partials, &mut out.records);
            // An epoch goes to every shard, empty or not; otherwise only what there is.
            if out.is_empty() && epoch.is_none() {
                continue;
            }
            let batch = std::mem::replace(out, pool.take());
            let lost = hand_over(tx, ShardMsg { epoch, batch }, &stop);
            if lost > 0 {
                drops += lost;
                if let Some(t) = &telemetry {
                    t.count_drop(DropStage::Shards, lost);
                }
            }
        }
        if let Some(t) = &telemetry {
            if published.elapsed() >= PUBLISH_EVERY {
                t.publish_worker(index, &dec.stats);
                publish_queue(t, index, source.as_ref());
                published = Instant::now();
            }
        }
        if closed {
            break;
        }
    }
    if let Some(t) = &telemetry {
        t.publish_worker(index, &dec.stats);
        publish_queue(t, index, source.as_ref());
    }
    (dec.stats, drops, source)
}

struct ShardThread<'a> {
    index: usize,
    pool: Pool,
    cfg: &'a Config,
    shard_count: usize,
    workers: usize,
    mode: Mode,
    rx: Receiver<ShardMsg>,
    alarms: Sender<Alarm>,
    export: Option<ExportQueue>,
    telemetry: Option<Arc<Telemetry>>,
    reload: Follower,
    core: Option<usize>,
}

fn run_shard(s: ShardThread<'_>) -> ShardStats {
    let ShardThread {
        index,
        pool,
        cfg,
        shard_count,
        workers,
        mode,
        rx,
        alarms,
        export,
        telemetry,
        mut reload,
        core,
    } = s;
    if let Some(c) = core {
        crate::capture::cpu::pin(c);
    }
    let mut shard = Shard::new(cfg, shard_count);
    shard.set_detect(&reload.current().detect);
    let mut sink = Sink { mode, alarms: &alarms, export: export.as_ref(), telemetry: telemetry.as_deref() };
    // Replay: epochs waiting for their other parts, and the next one to apply.
    let mut pending: BTreeMap<u64, (usize, Vec<Batch>)> = BTreeMap::new();
    let mut next = 0u64;
    let mut published = Instant::now();
    loop {
        if let Some(r) = reload.poll() {
            shard.set_detect(&r.detect);
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ShardMsg { epoch: None, batch }) => {
                shard.apply(std::slice::from_ref(&batch), &mut sink);
                pool.give([batch]);
            }
            Ok(ShardMsg { epoch: Some(epoch), batch }) => {
                let e = pending.entry(epoch).or_insert_with(|| (0, Vec::new()));
                e.0 += 1;
                if !batch.is_empty() {
                    e.1.push(batch);
                }
                while pending.get(&next).is_some_and(|(parts, _)| *parts == workers) {
                    if let Some((_, parts)) = pending.remove(&next) {
                        shard.apply(&parts, &mut sink);
                        pool.give(parts);
                    }
                    next += 1;
                }
            }
            // Live: no record for a while; let time pass so unanswered queries expire.
            Err(RecvTimeoutError::Timeout) if mode == Mode::Live => shard.idle(now_ns(), &mut sink),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(t) = &telemetry {
            if published.elapsed() >= PUBLISH_EVERY {
                t.publish_shard(index, shard.snapshot());
                published = Instant::now();
            }
        }
    }
    // Channels closed: what is left is complete or from a failed worker; apply in order.
    for (_, (_, parts)) in std::mem::take(&mut pending) {
        shard.apply(&parts, &mut sink);
    }
    shard.finish(&mut sink);
    let snap = shard.snapshot();
    if let Some(t) = &telemetry {
        t.publish_shard(index, snap.clone());
    }
    snap.stats
}

/// Runs the stages over `sources`: `on_alarm` runs on a thread of its own; `drive` runs on the
/// calling thread once every stage is up (replay reads its files there; live has nothing to do);
/// `on_stop` runs once the workers have stopped and before their sources are dropped (live
/// detaches XDP there, before the sockets close).
pub fn run<'a>(
    cfg: &'a Config,
    sources: Vec<Box<dyn FrameSource + 'a>>,
    stages: Stages,
    on_alarm: impl FnMut(Alarm) + Send,
    drive: impl FnOnce(),
    on_stop: impl FnOnce(),
) -> Report {
    let started = Instant::now();
    let workers = sources.len();
    let shard_count = cfg.shards().max(1);
    let reload = stages.reload.clone().unwrap_or_else(|| ReloadHandle::new(cfg));
    let (alarm_tx, alarm_rx) = bounded::<Alarm>(4096);
    // A spare batch per (worker, shard): a worker fills one per shard while the shards apply
    // theirs (the memory budget counts them).
    let pool = Pool::new(workers * shard_count);
    let mut report = Report { worker_count: workers, shard_count, ..Default::default() };
    thread::scope(|s| {
        let mut on_alarm = on_alarm;
        let alarm_thread = s.spawn(move || {
            for a in alarm_rx {
                on_alarm(a);
            }
        });
        let mut shard_txs = Vec::new();
        let mut shard_threads = Vec::new();
        for index in 0..shard_count {
            let (tx, rx) = bounded::<ShardMsg>(stages.shard_channel.max(1));
            shard_txs.push(tx);
            let t = ShardThread {
                index,
                pool: pool.clone(),
                cfg,
                shard_count,
                workers,
                mode: stages.mode,
                rx,
                alarms: alarm_tx.clone(),
                export: stages.export.clone(),
                telemetry: stages.telemetry.clone(),
                reload: reload.follower(),
                core: stages.shard_cores.get(index).copied(),
            };
            shard_threads.push(s.spawn(move || run_shard(t)));
        }
        drop(alarm_tx);
        let mut worker_threads = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            let w = Worker {
                index,
                pool: pool.clone(),
                cfg,
                reload: reload.follower(),
                source,
                shards: shard_txs.clone(),
                telemetry: stages.telemetry.clone(),
                stop: stages.stop.clone(),
                core: stages.cores.get(index).copied(),
            };
            worker_threads.push(s.spawn(move || run_worker(w)));
        }
        drop(shard_txs);
        drive();
        // Workers hand back their sources so the caller can detach XDP before sockets close.
        let mut stopped_sources = Vec::new();
        for t in worker_threads {
            match t.join() {
                Ok((st, drops, source)) => {
                    report.workers.merge(&st);
                    report.shard_drops += drops;
                    stopped_sources.push(source);
                }
                Err(_) => tracing::error!("a decode worker panicked"),
            }
        }
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
