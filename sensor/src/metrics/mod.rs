//! Telemetry for Prometheus: workers and shards publish snapshots of their own counters (once per
//! batch, never per packet); the exporter turns the latest snapshots into metric families at
//! scrape time.

pub mod exporter;
pub mod hist;
pub mod labels;
pub mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::aggregate::ShardSnapshot;
use crate::worker::WorkerStats;

/// Where a bounded channel dropped what it could not take (`dnsentry_channel_drops_total{stage}`).
/// Frames are not here: under load the RX rings drop them (the AF_XDP counters), and export
/// queue drops are `dnsentry_netflow_records_total{result="dropped"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropStage {
    /// Records a worker could not hand to its shard (only when stopping: under load workers wait).
    Shards,
    /// Alarms the writer thread could not take (live).
    Alarms,
}

impl DropStage {
    pub const ALL: [DropStage; 2] = [DropStage::Shards, DropStage::Alarms];

    pub const fn label(self) -> &'static str {
        match self {
            DropStage::Shards => "shards",
            DropStage::Alarms => "alarms",
        }
    }
}

/// The outcome of a SIGHUP reload (`dnsentry_config_reloads_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    Success,
    Failure,
}

impl ReloadOutcome {
    pub const ALL: [ReloadOutcome; 2] = [ReloadOutcome::Success, ReloadOutcome::Failure];

    pub const fn label(self) -> &'static str {
        match self {
            ReloadOutcome::Success => "success",
            ReloadOutcome::Failure => "failure",
        }
    }
}

/// Live-capture counters published by the capture layer (absent in replay).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// XDP program counters, summed over CPUs, in `dnsentry_common::XdpCounter` order.
    pub xdp: Vec<(&'static str, u64)>,
    /// Per queue: (queue id, rx_dropped, rx_ring_full, fill_ring_empty, invalid_descs).
    pub queues: Vec<(u32, [u64; 4])>,
}

/// Everything the exporter reads.
pub struct Telemetry {
    pub workers: Vec<Mutex<WorkerStats>>,
    pub shards: Vec<Mutex<ShardSnapshot>>,
    pub alarm_write_errors: AtomicU64,
    /// By [`DropStage`].
    channel_drops: [AtomicU64; DropStage::ALL.len()],
    /// By [`ReloadOutcome`].
    config_reloads: [AtomicU64; ReloadOutcome::ALL.len()],
    /// Metrics endpoint connections: [served, refused busy, failed] (`server::SERVED` ...).
    pub metrics_requests: [AtomicU64; 3],
    pub live: Mutex<Option<LiveStats>>,
    /// The NetFlow exporter's counters, when exporting.
    pub netflow: Mutex<Option<std::sync::Arc<Mutex<crate::output::netflow::exporter::ExportStats>>>>,
    /// Suspect domains exported by name.
    pub top_suspects: usize,
    /// The reputation lists in force: (name, category, entries).
    reputation_lists: Mutex<Vec<(String, &'static str, u64)>>,
    /// The syslog destinations' counters.
    alarm_outputs: Mutex<Vec<std::sync::Arc<crate::output::syslog::OutputStats>>>,
}

impl Telemetry {
    pub fn new(workers: usize, shards: usize, top_suspects: usize) -> Self {
        Telemetry {
            workers: (0..workers).map(|_| Mutex::new(WorkerStats::default())).collect(),
            shards: (0..shards).map(|_| Mutex::new(ShardSnapshot::default())).collect(),
            alarm_write_errors: AtomicU64::new(0),
            channel_drops: Default::default(),
            config_reloads: Default::default(),
            metrics_requests: Default::default(),
            live: Mutex::new(None),
            netflow: Mutex::new(None),
            top_suspects,
            reputation_lists: Mutex::new(Vec::new()),
            alarm_outputs: Mutex::new(Vec::new()),
        }
    }

    /// Publishes the alarm outputs' counters (syslog destinations).
    pub fn set_alarm_outputs(&self, outputs: Vec<std::sync::Arc<crate::output::syslog::OutputStats>>) {
        if let Ok(mut o) = self.alarm_outputs.lock() {
            *o = outputs;
        }
    }

    /// The alarm outputs' counters now.
    pub fn alarm_outputs(&self) -> Vec<crate::output::syslog::OutputCounts> {
        self.alarm_outputs.lock().map(|o| o.iter().map(|s| s.counts()).collect()).unwrap_or_default()
    }

    /// Publishes the reputation lists in force (at start and after each reload).
    pub fn set_reputation(&self, set: &crate::reputation::Reputation) {
        let lists = set.lists().iter().map(|l| (l.name.clone(), l.category.name(), l.entries)).collect();
        if let Ok(mut r) = self.reputation_lists.lock() {
            *r = lists;
        }
    }

    /// The reputation lists in force: (name, category, entries).
    pub fn reputation_lists(&self) -> Vec<(String, &'static str, u64)> {
        self.reputation_lists.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Publishes a worker's counters.
    pub fn publish_worker(&self, i: usize, stats: &WorkerStats) {
        if let Some(slot) = self.workers.get(i) {
            if let Ok(mut s) = slot.lock() {
                s.clone_from(stats);
            }
        }
    }

    /// Publishes a shard's snapshot.
    pub fn publish_shard(&self, i: usize, snap: ShardSnapshot) {
        if let Some(slot) = self.shards.get(i) {
            if let Ok(mut s) = slot.lock() {
                *s = snap;
            }
        }
    }

    /// Counts `n` dropped at `stage`; returns the stage's total so far.
    pub fn count_drop(&self, stage: DropStage, n: u64) -> u64 {
        self.channel_drops[stage as usize].fetch_add(n, Ordering::Relaxed) + n
    }

    pub fn drops(&self, stage: DropStage) -> u64 {
        self.channel_drops[stage as usize].load(Ordering::Relaxed)
    }

    pub fn count_reload(&self, outcome: ReloadOutcome) {
        self.config_reloads[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reloads(&self, outcome: ReloadOutcome) -> u64 {
        self.config_reloads[outcome as usize].load(Ordering::Relaxed)
    }
}
