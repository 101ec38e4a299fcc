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
use crate::capture::pcap::{read_file, CaptureError};
use crate::config::Config;
use crate::decode::LinkType;
use crate::detect::allowlist::Allowlist;
use crate::metrics::Telemetry;
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::output::netflow::record::ExportRecord;
use crate::record::Record;
use crate::worker::{Decoder, WorkerStats};

/// Frames of one epoch for one worker, copied out of the file buffer.
struct FrameBatch {
    epoch: u64,
    data: Vec<u8>,
    frames: Vec<FrameMeta>,
}

#[derive(Clone, Copy)]
struct FrameMeta {
    seq: u64,
    ts_ns: u64,
    link: Option<LinkType>,
    start: usize,
    len: usize,
}

/// Records of one epoch from one worker for one shard.
struct ShardBatch {
    epoch: u64,
    records: Vec<Record>,
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
    fn exporting(&self) -> bool {
        self.export.is_some()
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
        let mut outs: Vec<Vec<Record>> = (0..n).map(|_| Vec::new()).collect();
        for f in &batch.frames {
            let data = &batch.data[f.start..f.start + f.len];
            dec.frame(f.link, data, f.ts_ns, f.seq, &mut |r| {
                outs[(r.domain_hash % n as u64) as usize].push(r)
            });
        }
        dec.stats.busy_ns += started.elapsed().as_nanos() as u64;
        // Published once per batch: the packet path itself touches no shared state.
        if let Some((i, t)) = &telemetry {
            t.publish_worker(*i, &dec.stats);
        }
        for (tx, records) in shards.iter().zip(outs) {
            // A closed shard only happens when it panicked; the join reports that.
            let _ = tx.send(ShardBatch { epoch: batch.epoch, records });
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
    let mut pending: BTreeMap<u64, (usize, Vec<Record>)> = BTreeMap::new();
    let mut next = 0u64;
    let mut sink = Sink { alarms: &alarms, export: export.as_ref() };
    let apply = |shard: &mut Shard, sink: &mut Sink, mut recs: Vec<Record>| {
        recs.sort_unstable_by_key(|r| r.seq);
        for r in &recs {
            shard.process(r, sink);
        }
    };
    for b in rx {
        let e = pending.entry(b.epoch).or_insert_with(|| (0, Vec::new()));
        e.0 += 1;
        e.1.extend(b.records);
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

/// Light flow hash for spreading frames over workers (symmetric, like RSS).
fn worker_for(link: Option<LinkType>, data: &[u8], workers: usize, ports: &crate::decode::PortSet) -> usize {
    if workers == 1 {
        return 0;
    }
    match link.and_then(|l| crate::decode::decode(l, data, ports).ok()) {
        Some(p) => (p.flow.symmetric_hash() % workers as u64) as usize,
        None => 0,
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
    let all_ports = crate::decode::PortSet::new(&(0..=u16::MAX).collect::<Vec<_>>());

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
        let new_batches = |epoch| -> Vec<FrameBatch> {
            (0..workers)
                .map(|_| FrameBatch { epoch, data: Vec::with_capacity(1 << 16), frames: Vec::new() })
                .collect()
        };
        let mut epoch = 0u64;
        let mut batches = new_batches(epoch);
        let mut in_epoch = 0usize;
        let mut seq = 0u64;
        let flush = |batches: Vec<FrameBatch>| {
            for (tx, b) in worker_txs.iter().zip(batches) {
                let _ = tx.send(b);
            }
        };
        for path in files {
            // Pacing: each file's first frame anchors capture time to wall time.
            let mut anchor: Option<(u64, Instant)> = None;
            let result = read_file(path, opts.progress.clone(), |f| {
                if opts.speed > 0.0 {
                    let (ts0, wall0) = *anchor.get_or_insert((f.ts_ns, Instant::now()));
                    let due = Duration::from_secs_f64(f.ts_ns.saturating_sub(ts0) as f64 / 1e9 / opts.speed);
                    let ahead = due.saturating_sub(wall0.elapsed());
                    if !ahead.is_zero() {
                        // Hand over what is pending so it is analysed on time, then wait. Epoch
                        // boundaries do not change results (see the module comment).
                        if in_epoch > 0 {
                            epoch += 1;
                            flush(std::mem::replace(&mut batches, new_batches(epoch)));
                            in_epoch = 0;
                        }
                        thread::sleep(ahead);
                    }
                }
                let w = worker_for(f.link, f.data, workers, &all_ports);
                let b = &mut batches[w];
                b.frames.push(FrameMeta {
                    seq,
                    ts_ns: f.ts_ns,
                    link: f.link,
                    start: b.data.len(),
                    len: f.data.len(),
                });
                b.data.extend_from_slice(f.data);
                seq += 1;
                in_epoch += 1;
                if in_epoch >= per_epoch {
                    epoch += 1;
                    flush(std::mem::replace(&mut batches, new_batches(epoch)));
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
