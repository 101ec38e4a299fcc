//! Replay: a reader on the calling thread feeding capture files to the [`pipeline`]'s workers.
//!
//! The reader cuts the capture into merge units of `batch_frames` × [`UNIT_BATCHES`] frames, or
//! less where [`UNIT_SPAN_NS`] of capture time ends first, whatever the number of workers: a unit
//! is what the shards merge and score at once (workers combine each unit's records per domain),
//! so results do not depend on the worker count. Epochs group whole units, at least
//! `batch_frames × workers` frames. The reader spreads each epoch's frames over the workers by a
//! symmetric flow hash (`capture::steer`, as a NIC's RSS would: both halves of a TCP connection
//! reach one worker). Each worker's source delivers one epoch per poll, so shards apply epochs
//! whole and in capture order (see `pipeline`). Frames of a plain file are slices of the mapped
//! file, never copied; gzip input is copied per batch.
//!
//! [`pipeline`]: crate::pipeline
//! [`UNIT_BATCHES`]: crate::config::UNIT_BATCHES

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use memmap2::Mmap;

use crate::capture::pcap::CaptureFile;
use crate::capture::{Frame, FrameInfo, FrameSource, Polled};
use crate::config::{Config, UNIT_SPAN_NS};
use crate::decode::LinkType;
use crate::metrics::Telemetry;
use crate::output::alarm::Alarm;
use crate::output::netflow::exporter::ExportQueue;
use crate::pipeline::{Mode, Report, Stages};

/// How to replay.
#[derive(Clone, Default)]
pub struct ReplayOptions {
    /// Counts bytes read (compressed, for gzip), for a progress bar.
    pub progress: Arc<AtomicU64>,
    /// Where workers and shards publish their counters for the metrics endpoint.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Pace the replay at this multiple of capture time (1.0 = real time); 0 = as fast as possible.
    pub speed: f64,
    /// Where shards send DNS transactions for NetFlow/IPFIX export.
    pub export: Option<ExportQueue>,
}

#[derive(Clone, Copy)]
struct FrameMeta {
    seq: u64,
    unit: u64,
    ts_ns: u64,
    link: Option<LinkType>,
    /// In the batch's map (else in its copied data).
    in_map: bool,
    start: usize,
    len: usize,
}

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
    fn push(&mut self, seq: u64, unit: u64, f: &Frame<'_>) {
        let (in_map, start) = match self.map.as_deref().and_then(|m| offset_in(m, f.data)) {
            Some(at) => (true, at),
            None => {
                self.data.extend_from_slice(f.data);
                (false, self.data.len() - f.data.len())
            }
        };
        self.frames.push(FrameMeta {
            seq,
            unit,
            ts_ns: f.ts_ns,
            link: f.link,
            in_map,
            start,
            len: f.data.len(),
        });
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

/// One worker's share of the replay: an epoch per poll, until the reader is done.
struct EpochSource {
    rx: Receiver<FrameBatch>,
    /// Epochs before this one are decoded (their frames are no longer read).
    done: Arc<AtomicU64>,
}

impl FrameSource for EpochSource {
    fn poll(&mut self, _timeout: Duration, f: &mut dyn FnMut(FrameInfo, &[u8])) -> io::Result<Polled> {
        let Ok(batch) = self.rx.recv() else { return Ok(Polled::Closed) };
        for m in &batch.frames {
            f(FrameInfo { link: m.link, ts_ns: m.ts_ns, seq: m.seq, unit: m.unit }, batch.frame(m));
        }
        self.done.store(batch.epoch + 1, Ordering::Release);
        Ok(Polled::Epoch(batch.epoch))
    }
}

/// Gives back the pages of a mapped file that every worker is done with: the reader keeps where
/// each epoch starts in the file, and the workers say which epochs they decoded. Resident memory
/// then follows the frames in flight, not the file's size.
struct Release {
    map: Arc<Mmap>,
    /// (epoch, offset of its first frame in the file), oldest first.
    starts: VecDeque<(u64, usize)>,
    released: usize,
}

impl Release {
    fn frame(&mut self, epoch: u64, offset: usize) {
        if self.starts.back().is_none_or(|&(e, _)| e != epoch) {
            self.starts.push_back((epoch, offset));
        }
    }

    fn collect(&mut self, done: &[Arc<AtomicU64>]) {
        let done = done.iter().map(|d| d.load(Ordering::Acquire)).min().unwrap_or(0);
        while self.starts.front().is_some_and(|&(e, _)| e < done) {
            self.starts.pop_front();
        }
        if let Some(&(_, upto)) = self.starts.front() {
            crate::capture::pcap::release(&self.map, &mut self.released, upto);
        }
    }
}

/// Replays capture files through the pipeline. `on_alarm` runs on a thread of its own.
pub fn replay(
    cfg: &Config,
    files: &[PathBuf],
    opts: &ReplayOptions,
    on_alarm: impl FnMut(Alarm) + Send,
) -> Report {
    let workers = cfg.workers().max(1);
    let cap = cfg.pipeline.channel_epochs(workers);
    let per_epoch = cfg.pipeline.epoch_frames(workers);
    let per_unit = cfg.pipeline.unit_frames();
    let mut worker_txs = Vec::new();
    let mut sources: Vec<Box<dyn FrameSource>> = Vec::new();
    let done: Vec<Arc<AtomicU64>> = (0..workers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    for d in &done {
        let (tx, rx) = bounded::<FrameBatch>(cap);
        worker_txs.push(tx);
        sources.push(Box::new(EpochSource { rx, done: d.clone() }));
    }
    let stages = Stages {
        mode: Mode::Replay,
        telemetry: opts.telemetry.clone(),
        export: opts.export.clone(),
        stop: Default::default(),
        cores: Vec::new(),
        shard_cores: Vec::new(),
        reload: None,
        // Every epoch reaches every shard: room for a batch from each worker.
        shard_channel: cap * workers,
    };
    let mut file_errors = Vec::new();
    let errors = &mut file_errors;
    let read = move || {
        let new_batches = |epoch, map: &Option<Arc<Mmap>>| -> Vec<FrameBatch> {
            (0..workers).map(|_| FrameBatch::new(epoch, map.clone())).collect()
        };
        let mut epoch = 0u64;
        let mut batches = new_batches(epoch, &None);
        let mut in_epoch = 0usize;
        // The merge unit: its number, frames so far, and the capture clock where it started.
        let (mut unit, mut in_unit, mut unit_start) = (0u64, 0usize, 0u64);
        // The capture clock: the latest frame time so far.
        let mut clock = 0u64;
        let mut seq = 0u64;
        let flush = |batches: Vec<FrameBatch>| {
            for (tx, b) in worker_txs.iter().zip(batches) {
                // A closed channel only happens when the worker panicked; the join reports that.
                let _ = tx.send(b);
            }
        };
        for path in files {
            let file = match CaptureFile::open(path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!("{e}");
                    errors.push(e);
                    continue;
                }
            };
            // An epoch's frames come from one file, so a batch needs one map at most.
            let map = file.mapped().cloned();
            let mut release = map.clone().map(|map| Release { map, starts: VecDeque::new(), released: 0 });
            if in_unit > 0 {
                unit += 1;
                in_unit = 0;
            }
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
                        // Hand over what is pending so it is analysed on time, then wait. Units
                        // then end on the wall clock too: a paced replay merges (and so scores)
                        // at points that may differ from run to run, like live capture.
                        if in_epoch > 0 {
                            epoch += 1;
                            flush(std::mem::replace(&mut batches, new_batches(epoch, &map)));
                            in_epoch = 0;
                            unit += 1;
                            in_unit = 0;
                        }
                        thread::sleep(ahead);
                    }
                }
                clock = clock.max(f.ts_ns);
                // Units and epochs end only between frames the reader alone orders, so they are
                // the same for any number of workers; an epoch holds whole units.
                if in_unit > 0 && (in_unit >= per_unit || clock >= unit_start.saturating_add(UNIT_SPAN_NS)) {
                    unit += 1;
                    in_unit = 0;
                    if in_epoch >= per_epoch {
                        epoch += 1;
                        flush(std::mem::replace(&mut batches, new_batches(epoch, &map)));
                        in_epoch = 0;
                        if let Some(r) = &mut release {
                            r.collect(&done);
                        }
                    }
                }
                if in_unit == 0 {
                    unit_start = clock;
                }
                let w = crate::capture::steer::worker_for(f.link, f.data, workers);
                batches[w].push(seq, unit, &f);
                if let (Some(r), Some(at)) = (&mut release, map.as_deref().and_then(|m| offset_in(m, f.data)))
                {
                    r.frame(epoch, at);
                }
                seq += 1;
                in_unit += 1;
                in_epoch += 1;
            });
            if let Err(e) = result {
                tracing::error!("{e}");
                errors.push(e);
            }
        }
        flush(batches);
        // Dropping the senders closes the workers' sources.
        drop(worker_txs);
    };
    let mut report = crate::pipeline::run(cfg, sources, stages, on_alarm, read, || {});
    report.files = files.len();
    report.file_errors = file_errors;
    report
}
