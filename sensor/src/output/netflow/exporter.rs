//! The export thread: takes transaction records from a bounded queue, packs them and sends each
//! packet to every collector. Nothing here can block capture: producers never wait on this thread
//! in live capture (full queue = counted drop), and send errors are counted and logged at a
//! bounded rate.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::encode::Packetizer;
use super::record::ExportRecord;
use crate::config::ExportConfig;

/// Export counters, published for metrics and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub records_sent: u64,
    /// Dropped by the rate limit or a full queue.
    pub records_dropped: u64,
    /// Per collector: packets sent, send errors.
    pub collectors: Vec<(u64, u64)>,
}

/// Why export could not start.
#[derive(Debug, thiserror::Error)]
#[error("NetFlow collector `{collector}`: {reason}")]
pub struct ExportError {
    pub collector: String,
    pub reason: String,
}

/// Handle to the running exporter.
pub struct Exporter {
    tx: Option<Sender<ExportRecord>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<Mutex<ExportStats>>,
}

/// A producer's side of the queue.
#[derive(Clone)]
pub struct ExportQueue {
    tx: Sender<ExportRecord>,
    stats: Arc<Mutex<ExportStats>>,
    /// Replay waits for room; live capture drops and counts.
    lossless: bool,
}

impl ExportQueue {
    pub fn send(&self, r: ExportRecord) {
        if self.lossless {
            let _ = self.tx.send(r);
        } else if self.tx.try_send(r).is_err() {
            if let Ok(mut s) = self.stats.lock() {
                s.records_dropped += 1;
            }
        }
    }
}

fn unix_secs() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

/// Rate limit: a token bucket refilled every second of wall time.
struct Bucket {
    per_sec: u64,
    tokens: u64,
    refilled: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        if self.refilled.elapsed() >= Duration::from_secs(1) {
            self.tokens = self.per_sec;
            self.refilled = Instant::now();
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

struct Sending {
    sockets: Vec<UdpSocket>,
    names: Vec<String>,
    stats: Arc<Mutex<ExportStats>>,
    errors_logged: u64,
}

impl Sending {
    fn send(&mut self, packet: &[u8]) {
        for (i, s) in self.sockets.iter().enumerate() {
            let ok = s.send(packet).is_ok();
            if let Ok(mut st) = self.stats.lock() {
                let c = &mut st.collectors[i];
                if ok {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                    // Log the 1st, 2nd, 4th, 8th... failure: bounded, never silent.
                    let n = c.1;
                    if n.is_power_of_two() && n > self.errors_logged {
                        self.errors_logged = n;
                        tracing::warn!(collector = %self.names[i], failures = n, "cannot send NetFlow export");
                    }
                }
            }
        }
    }
}

fn run(cfg: ExportConfig, rx: Receiver<ExportRecord>, mut out: Sending) {
    let mut p = Packetizer::new(cfg.format, cfg.qname_bytes, cfg.mtu, cfg.source_id);
    let mut bucket = Bucket {
        per_sec: cfg.max_records_per_sec,
        tokens: cfg.max_records_per_sec,
        refilled: Instant::now(),
    };
    let dropped = |stats: &Arc<Mutex<ExportStats>>| stats.lock().map_or(0, |s| s.records_dropped);
    let templates_every = Duration::from_secs(cfg.template_secs);
    let mut last_templates = Instant::now();
    let mut packets_since = 0u32;
    let t = p.templates(unix_secs(), 0);
    out.send(&t);
    let mut last_flush = Instant::now();
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(200));
        let now = unix_secs();
        match msg {
            Ok(mut r) => {
                if r.ifindex == 0 {
                    r.ifindex = cfg.ifindex;
                }
                if !bucket.take() {
                    if let Ok(mut s) = out.stats.lock() {
                        s.records_dropped += 1;
                    }
                    continue;
                }
                if let Some(pkt) = p.add(&r, now) {
                    out.send(&pkt);
                    packets_since += 1;
                    last_flush = Instant::now();
                }
                if let Ok(mut s) = out.stats.lock() {
                    s.records_sent += 1;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A quiet link still gets its records within a second.
        if last_flush.elapsed() >= Duration::from_secs(1) {
            if let Some(pkt) = p.flush(now) {
                out.send(&pkt);
                packets_since += 1;
            }
            last_flush = Instant::now();
        }
        if packets_since >= cfg.template_packets || last_templates.elapsed() >= templates_every {
            if let Some(pkt) = p.flush(now) {
                out.send(&pkt);
            }
            let t = p.templates(now, dropped(&out.stats));
            out.send(&t);
            packets_since = 0;
            last_templates = Instant::now();
        }
    }
    if let Some(pkt) = p.flush(unix_secs()) {
        out.send(&pkt);
    }
    let t = p.final_templates(unix_secs(), dropped(&out.stats));
    out.send(&t);
}

impl Exporter {
    /// Resolves and connects the collectors and starts the export thread. `lossless` makes
    /// producers wait for room (replay) instead of dropping (live).
    pub fn start(cfg: &ExportConfig, lossless: bool) -> Result<(Exporter, ExportQueue), ExportError> {
        let mut sockets = Vec::new();
        for c in &cfg.collectors {
            let err = |reason: String| ExportError { collector: c.clone(), reason };
            let addr: SocketAddr = c
                .to_socket_addrs()
                .map_err(|e| err(e.to_string()))?
                .next()
                .ok_or_else(|| err("no address".into()))?;
            let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
                .parse()
                .map_err(|_| err("bind".into()))?;
            let s = UdpSocket::bind(bind).map_err(|e| err(e.to_string()))?;
            // Connected: ICMP port-unreachable from a dead collector surfaces as a counted error.
            s.connect(addr).map_err(|e| err(e.to_string()))?;
            s.set_write_timeout(Some(Duration::from_millis(100))).map_err(|e| err(e.to_string()))?;
            sockets.push(s);
        }
        let stats = Arc::new(Mutex::new(ExportStats {
            collectors: vec![(0, 0); sockets.len()],
            ..Default::default()
        }));
        let (tx, rx) = bounded(cfg.queue_records);
        let sending =
            Sending { sockets, names: cfg.collectors.clone(), stats: stats.clone(), errors_logged: 0 };
        let cfg2 = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("netflow".into())
            .spawn(move || run(cfg2, rx, sending))
            .map_err(|e| ExportError { collector: String::new(), reason: e.to_string() })?;
        let queue = ExportQueue { tx: tx.clone(), stats: stats.clone(), lossless };
        Ok((Exporter { tx: Some(tx), thread: Some(thread), stats }, queue))
    }

    /// Sends what is queued and stops. Producers' queue handles must be dropped first.
    pub fn finish(mut self) -> ExportStats {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
