//! The replay pipeline: a reader thread, N decode workers and S domain shards connected by bounded
//! crossbeam channels, the same stages live capture uses.
//!
//! Determinism: the reader cuts the capture into epochs and spreads each epoch's frames over the
//! workers by a symmetric flow hash (as a NIC's RSS would, keeping TCP halves together). Every
//! worker sends every shard one batch per epoch, possibly empty, and a shard applies an epoch only
//! when it has all N parts, in capture order. So the state a shard sees, and the alarms it raises,
//! do not depend on N. Replay never drops: a full channel makes the reader wait.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::aggregate::{Shard, ShardSink, ShardStats};
use memmap2::Mmap;

use crate::capture::pcap::{CaptureError, CaptureFile};
use crate::capture::Frame;
use crate::config::Config;
use crate::decode::LinkType;
use crate::detect::allowlist::Allowlist;
use crate::metrics::Telemetry;
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::output::netflow::record::ExportRecord;
use crate::record::{Batch, Record};
use crate::worker::{Decoder, WorkerStats};

/// Frames of one epoch for one worker: slices of the mapped capture file, or (gzip) copies.
struct FrameBatch {
    epoch: u64,
    /// The mapped file the frames are in, if it is one (an epoch never spans two files).
    map: Option<Arc<Mmap>>,
    /// Copied frames (when not mapped).
    data: Vec<u8>,
    frames: Vec<FrameMeta>,
}

impl FrameBatch {
    fn new(epoch: u64, map: Option<Arc<Mmap>>) -> Self {
        let data = if map.is_some() { Vec::new() } else { Vec::with_capacity(1 << 16) };
        FrameBatch { epoch, map, data, frames: Vec::new() }
    }

    /// Adds a frame: its place in the map when it is a slice of it, else a copy.
    fn push(&mut self, seq: u64, f: &Frame<'_>) {
        let (in_map, start) = match self.map.as_deref().and_then(|m| offset_in(m, f.data)) {
            Some(at) => (true, at),
            None => {
                self.data.extend_from_slice(f.data);
                (false, self.data.len() - f.data.len())
            }
        };
        self.frames.push(FrameMeta { seq, ts_ns: f.ts_ns, link: f.link, in_map, start, len: f.data.len() });
    }

    fn frame(&self, f: &FrameMeta) -> &[u8] {
        let bytes = match (&self.map, f.in_map) {
            (Some(m), true) => &m[..],
            _ => &self.data[..],
        };
        bytes.get(f.start..f.start + f.len).unwrap_or_default()
    }
}

/// Where `part` starts within `whole`, if it is a slice of it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    (p >= w && p + part.len() <= w + whole.len()).then(|| p - w)
}

#[derive(Clone, Copy)]
struct FrameMeta {
    seq: u64,
    ts_ns: u64,
    link: Option<LinkType>,
    /// In the batch's map (else in its copied data).
    in_map: bool,
    start: usize,
    len: usize,
}

/// Records of one epoch from one worker for one shard.
struct ShardBatch {
    epoch: u64,
    batch: Batch,
}

/// How to replay.
#[derive(Clone, Default)]
pub struct ReplayOptions {
    /// Counts compressed bytes read, for a progress bar.
    pub progress: Arc<AtomicU64>,
    /// Where workers and shards publish their counters for the metrics endpoint.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Pace the replay at this multiple of capture time (1.0 = real time); 0 = as fast as possible.
    pub speed: f64,
    /// Where shards send DNS transactions for NetFlow/IPFIX export.
    pub export: Option<ExportQueue>,
}

/// A shard's outputs: the alarm channel and, optionally, the export queue.
struct Sink<'a> {
    alarms: &'a Sender<Alarm>,
    export: Option<&'a ExportQueue>,
}

impl ShardSink for Sink<'_> {
    fn alarm(&mut self, alarm: Alarm) {
        let _ = self.alarms.send(alarm);
    }
    fn export(&mut self, record: ExportRecord) {
        if let Some(q) = self.export {
            q.send(record);
        }
    }
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub files: usize,
    pub file_errors: Vec<CaptureError>,
    pub workers: WorkerStats,
    pub shards: ShardStats,
    pub elapsed: Duration,
    pub worker_count: usize,
    pub shard_count: usize,
}

fn run_worker(
    cfg: &Config,
    allowlist: Arc<Allowlist>,
    rx: Receiver<FrameBatch>,
    shards: Vec<Sender<ShardBatch>>,
    telemetry: Option<(usize, Arc<Telemetry>)>,
) -> WorkerStats {
    let mut dec = Decoder::new(cfg, allowlist);
    let n = shards.len();
    for batch in rx {
        let started = Instant::now();
        let mut outs: Vec<Batch> =
            (0..n).map(|_| Batch::with_capacity(batch.frames.len() / n + 16)).collect();
        for f in &batch.frames {
            let data = batch.frame(f);
            dec.frame(f.link, data, f.ts_ns, f.seq, &mut |r, name| {
                outs[(r.domain_hash % n as u64) as usize].push(r, name)
            });
        }
        dec.stats.busy_ns += started.elapsed().as_nanos() as u64;
        // Published once per batch: the packet path itself touches no shared state.
        if let Some((i, t)) = &telemetry {
            t.publish_worker(*i, &dec.stats);
        }
        for (tx, out) in shards.iter().zip(outs) {
            // A closed shard only happens when it panicked; the join reports that.
            let _ = tx.send(ShardBatch { epoch: batch.epoch, batch: out });
        }
    }
    dec.stats
}

fn run_shard(
    cfg: &Config,
    shard_count: usize,
    workers: usize,
    rx: Receiver<ShardBatch>,
    alarms: Sender<Alarm>,
    export: Option<ExportQueue>,
    telemetry: Option<(usize, Arc<Telemetry>)>,
) -> ShardStats {
    let mut shard = Shard::new(cfg, shard_count);
    let mut pending: BTreeMap<u64, (usize, Vec<Batch>)> = BTreeMap::new();
    let mut next = 0u64;
    let mut sink = Sink { alarms: &alarms, export: export.as_ref() };
    let apply = |shard: &mut Shard, sink: &mut Sink, parts: Vec<Batch>| {
        merge_in_order(&parts, |r, name| shard.process(r, name, sink));
    };
    for b in rx {
        let e = pending.entry(b.epoch).or_insert_with(|| (0, Vec::new()));
        e.0 += 1;
        if !b.batch.is_empty() {
            e.1.push(b.batch);
        }
        let mut applied = false;
        while pending.get(&next).is_some_and(|(parts, _)| *parts == workers) {
            if let Some((_, recs)) = pending.remove(&next) {
                apply(&mut shard, &mut sink, recs);
                applied = true;
            }
            next += 1;
        }
        if let (true, Some((i, t))) = (applied, &telemetry) {
            t.publish_shard(*i, shard.snapshot());
        }
    }
    // Channels closed: whatever is left is complete or from a failed worker; apply in order.
    for (_, (_, recs)) in std::mem::take(&mut pending) {
        apply(&mut shard, &mut sink, recs);
    }
    shard.finish(&mut sink);
    let snap = shard.snapshot();
    if let Some((i, t)) = &telemetry {
        t.publish_shard(*i, snap.clone());
    }
    snap.stats
}

/// Calls `f` for the records of `parts` in capture order. Each part (one worker's) is in capture
/// order already, and a frame's records are all in one part: a k-way merge, no sort.
fn merge_in_order(parts: &[Batch], mut f: impl FnMut(&Record, &[u8])) {
    if let [only] = parts {
        return only.iter().for_each(|(r, name)| f(r, name));
    }
    let mut at = vec![0usize; parts.len()];
    loop {
        let mut best: Option<(usize, u64)> = None;
        for (i, p) in parts.iter().enumerate() {
            if let Some(r) = p.records.get(at[i]) {
                if best.is_none_or(|(_, seq)| r.seq < seq) {
                    best = Some((i, r.seq));
                }
            }
        }
        let Some((i, _)) = best else { return };
        let r = &parts[i].records[at[i]];
        f(r, parts[i].name(r));
        at[i] += 1;
    }
}

/// Replays capture files through the pipeline. `on_alarm` runs on a thread of its own.
pub fn replay(
    cfg: &Config,
    files: &[PathBuf],
    opts: &ReplayOptions,
    on_alarm: impl FnMut(Alarm) + Send,
) -> ReplayReport {
    let started = Instant::now();
    let workers = cfg.workers();
    let shard_count = cfg.shards();
    let allowlist = Arc::new(Allowlist::new(cfg.allowlist.builtin, &cfg.allowlist.extra));
    let cap = cfg.pipeline.channel_batches;
    let per_epoch = cfg.pipeline.batch_frames * workers;

    let (alarm_tx, alarm_rx) = bounded::<Alarm>(4096);
    let mut report =
        ReplayReport { files: files.len(), worker_count: workers, shard_count, ..Default::default() };

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
            let (tx, rx) = bounded::<ShardBatch>(cap * workers);
            shard_txs.push(tx);
            let alarm_tx = alarm_tx.clone();
            let t = opts.telemetry.clone().map(|t| (i, t));
            let export = opts.export.clone();
            shard_threads
                .push(s.spawn(move || run_shard(cfg, shard_count, workers, rx, alarm_tx, export, t)));
        }
        drop(alarm_tx);
        let mut worker_txs = Vec::new();
        let mut worker_threads = Vec::new();
        for i in 0..workers {
            let (tx, rx) = bounded::<FrameBatch>(cap);
            worker_txs.push(tx);
            let shards = shard_txs.clone();
            let allowlist = allowlist.clone();
            let t = opts.telemetry.clone().map(|t| (i, t));
            worker_threads.push(s.spawn(move || run_worker(cfg, allowlist, rx, shards, t)));
        }
        drop(shard_txs);

        // The reader: this thread.
        let new_batches = |epoch, map: &Option<Arc<Mmap>>| -> Vec<FrameBatch> {
            (0..workers).map(|_| FrameBatch::new(epoch, map.clone())).collect()
        };
        let mut epoch = 0u64;
        let mut batches = new_batches(epoch, &None);
        let mut in_epoch = 0usize;
        let mut seq = 0u64;
        let flush = |batches: Vec<FrameBatch>| {
            for (tx, b) in worker_txs.iter().zip(batches) {
                let _ = tx.send(b);
            }
        };
        for path in files {
            let file = match CaptureFile::open(path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!("{e}");
                    report.file_errors.push(e);
                    continue;
                }
            };
            // An epoch's frames come from one file, so a batch needs one map at most.
            let map = file.mapped().cloned();
            if in_epoch > 0 {
                epoch += 1;
                in_epoch = 0;
                flush(std::mem::replace(&mut batches, new_batches(epoch, &map)));
            } else {
                batches = new_batches(epoch, &map);
            }
            // Pacing: each file's first frame anchors capture time to wall time.
            let mut anchor: Option<(u64, Instant)> = None;
            let result = file.read(opts.progress.clone(), |f| {
                if opts.speed > 0.0 {
                    let (ts0, wall0) = *anchor.get_or_insert((f.ts_ns, Instant::now()));
                    let due = Duration::from_secs_f64(f.ts_ns.saturating_sub(ts0) as f64 / 1e9 / opts.speed);
                    let ahead = due.saturating_sub(wall0.elapsed());
                    if !ahead.is_zero() {
                        // Hand over what is pending so it is analysed on time, then wait. Epoch
                        // boundaries do not change results (see the module comment).
                        if in_epoch > 0 {
                            epoch += 1;
                            flush(std::mem::replace(&mut batches, new_batches(epoch, &map)));
                            in_epoch = 0;
                        }
                        thread::sleep(ahead);
                    }
                }
                let w = crate::capture::steer::worker_for(f.link, f.data, workers);
                batches[w].push(seq, &f);
                seq += 1;
                in_epoch += 1;
                if in_epoch >= per_epoch {
                    epoch += 1;
                    flush(std::mem::replace(&mut batches, new_batches(epoch, &map)));
                    in_epoch = 0;
                }
            });
            if let Err(e) = result {
                tracing::error!("{e}");
                report.file_errors.push(e);
            }
        }
        flush(batches);
        drop(worker_txs);

        for t in worker_threads {
            match t.join() {
                Ok(st) => report.workers.merge(&st),
                Err(_) => tracing::error!("a decode worker panicked"),
            }
        }
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
