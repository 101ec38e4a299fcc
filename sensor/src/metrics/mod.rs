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

/// Channel stages whose drops are counted (`dnsentry_channel_drops_total{stage}`).
pub const DROP_STAGES: [&str; 4] = ["workers", "shards", "alarms", "export"];

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
    pub channel_drops: [AtomicU64; DROP_STAGES.len()],
    /// SIGHUP reloads: [success, failure].
    pub config_reloads: [AtomicU64; 2],
    /// Metrics endpoint connections: [served, refused busy, failed] (`server::SERVED` ...).
    pub metrics_requests: [AtomicU64; 3],
    pub live: Mutex<Option<LiveStats>>,
    /// The NetFlow exporter's counters, when exporting.
    pub netflow: Mutex<Option<std::sync::Arc<Mutex<crate::output::netflow::exporter::ExportStats>>>>,
    /// Suspect domains exported by name.
    pub top_suspects: usize,
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
        }
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

    pub fn count_drop(&self, stage: usize, n: u64) {
        if let Some(c) = self.channel_drops.get(stage) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}
