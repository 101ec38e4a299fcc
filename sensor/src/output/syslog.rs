//! Alarms to syslog: RFC 5424 messages over UDP (RFC 5426, one message per datagram) or TCP (RFC
//! 6587 octet counting), one sender thread per destination behind a bounded queue.
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME dnsentry PROCID KIND [dnsentry@32473 ...] {alarm JSON}`. The
//! structured data repeats the flat fields a SIEM routes on (severity, kind, domain, client, server,
//! score, tool); MSG is the alarm's JSON line exactly as the alarm file has it, because the nested
//! parts (reasons, window counts, samples, the reputation match) have no SD-PARAM form and the JSON
//! schema (docs/alarms.md) is what every SIEM already parses. Field list: docs/deploy.md.
//!
//! Never blocks detection: [`SyslogOutput::send`] is a `try_send`; a full queue drops the alarm and
//! counts it. While a TCP destination is down, alarms wait in the queue and are sent, each once,
//! after the reconnection (backoff 100 ms doubling to 5 s). A message whose write failed is sent
//! again on the new connection: the receiver discards the cut frame of the dead one (octet counting).
//! A UDP send that fails (ICMP port unreachable from a stopped receiver) loses that alarm: counted.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::alarm::Alarm;
pub use crate::config::{Facility, Target, TargetError, Transport};
use crate::detect::Severity;
use crossbeam_channel::{Receiver, Sender};

/// The SD-ID of the structured data element. 32473 is the private enterprise number RFC 5612
/// reserves for documentation: dnsentry has no number of its own (docs/deploy.md).
pub const SD_ID: &str = "dnsentry@32473";

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// While draining at shutdown, reconnect at least this often.
const DRAIN_RETRY: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The syslog severity of an alarm: high = crit (2), low = warning (4), info = info (6).
pub const fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::High => 2,
        Severity::Low => 4,
        Severity::Info => 6,
    }
}

/// The parts of the header that do not change per message.
#[derive(Debug, Clone)]
pub struct Header {
    pub facility: Facility,
    /// RFC 5424 HOSTNAME: printable ASCII without spaces, or `-`.
    pub hostname: String,
    pub procid: u32,
}

impl Header {
    pub fn new(facility: Facility) -> Self {
        Header { facility, hostname: hostname(), procid: std::process::id() }
    }
}

/// This machine's host name as RFC 5424 allows it (`-` when unknown).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid; gethostname NUL-terminates within it when it fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let name = if rc == 0 { &buf[..end] } else { &[][..] };
    if name.is_empty() || name.len() > 255 || !name.iter().all(|b| (33..=126).contains(b)) {
        return "-".into();
    }
    String::from_utf8_lossy(name).into_owned()
}

/// Appends an SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn param(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for &b in value.as_bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Formats one RFC 5424 message: header, structured data, then `json` (the alarm's JSON, no
/// newline) as MSG. `now_ns` is the sending time (the alarm's capture time is in the JSON).
pub fn format(out: &mut Vec<u8>, h: &Header, alarm: &Alarm, json: &[u8], now_ns: u64) {
    let pri = u16::from(h.facility.code()) * 8 + u16::from(severity_code(alarm.severity));
    let _ = write!(
        out,
        "<{pri}>1 {} {} dnsentry {} {} [{SD_ID}",
        super::alarm::rfc3339(now_ns),
        h.hostname,
        h.procid,
        alarm.kind.code()
    );
    param(out, "severity", alarm.severity.code());
    param(out, "kind", alarm.kind.code());
    if let Some(d) = &alarm.domain {
        param(out, "domain", d);
    }
    param(out, "client", &alarm.client.to_string());
    param(out, "server", &alarm.server.to_string());
    param(out, "score", &alarm.score.to_string());
    if let Some(t) = alarm.tool {
        param(out, "tool", t);
    }
    out.extend_from_slice(b"] ");
    out.extend_from_slice(json);
}

/// One destination's counters (summary and `dnsentry_alarm_output_*{output}`).
#[derive(Debug, Default)]
pub struct OutputStats {
    /// `syslog:` and the URL, as configured.
    pub name: String,
    /// Alarms handed to the transport.
    pub sent: AtomicU64,
    /// Alarms lost: queue full, a failed UDP send, or still queued when the drain time ran out.
    pub dropped: AtomicU64,
    /// Failed connections and sends (each failed TCP send is retried on a new connection).
    pub errors: AtomicU64,
}

/// A snapshot of [`OutputStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputCounts {
    pub name: String,
    pub sent: u64,
    pub dropped: u64,
    pub errors: u64,
}

impl OutputStats {
    pub fn counts(&self) -> OutputCounts {
        OutputCounts {
            name: self.name.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Settings of the syslog outputs (config `[outputs]`).
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    pub facility: Facility,
    /// Alarms queued per destination before drops.
    pub queue: usize,
    /// At exit, how long to keep trying to deliver what is queued.
    pub drain: Duration,
}

/// One syslog destination: a queue and its sender thread.
pub struct SyslogOutput {
    tx: Sender<Vec<u8>>,
    pub stats: Arc<OutputStats>,
    closing: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl SyslogOutput {
    pub fn start(target: Target, s: &SyslogSettings) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(s.queue.max(1));
        let stats = Arc::new(OutputStats { name: format!("syslog:{target}"), ..Default::default() });
        let closing = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            target,
            stats: stats.clone(),
            rx,
            closing: closing.clone(),
            drain: s.drain,
            drain_until: None,
            conn: None,
            backoff: BACKOFF_MIN,
        };
        let thread =
            std::thread::Builder::new().name("dnsentry-syslog".into()).spawn(move || worker.run())?;
        Ok(SyslogOutput { tx, stats, closing, thread })
    }

    /// Queues one formatted message; a full queue drops it (counted).
    pub fn send(&self, msg: Vec<u8>) {
        if self.tx.try_send(msg).is_err() {
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(output = %self.stats.name, dropped = n, "syslog queue full: alarm dropped");
            }
        }
    }

    /// Closes the queue and waits for what is queued to be sent: at most the drain time (plus one
    /// connect or write timeout) when the destination is unreachable; what is left is dropped and
    /// counted.
    pub fn finish(self) -> OutputCounts {
        let SyslogOutput { tx, stats, closing, thread } = self;
        closing.store(true, Ordering::Relaxed);
        drop(tx);
        let _ = thread.join();
        stats.counts()
    }
}

/// The sender thread's state.
struct Worker {
    target: Target,
    stats: Arc<OutputStats>,
    rx: Receiver<Vec<u8>>,
    closing: Arc<AtomicBool>,
    drain: Duration,
    /// Set when the thread first sees the queue closing.
    drain_until: Option<Instant>,
    conn: Option<Conn>,
    backoff: Duration,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Worker {
    fn run(mut self) {
        let mut pending: Option<Vec<u8>> = None;
        let mut framed = Vec::with_capacity(4096);
        loop {
            let msg = match pending.take() {
                Some(m) => m,
                None => match self.rx.recv() {
                    Ok(m) => m,
                    // Closed and empty: everything was sent.
                    Err(_) => return,
                },
            };
            // A TCP receiver that closed (restarted, stopped) is noticed before writing to it: a
            // write to a half-closed connection succeeds and its data is lost.
            if let Some(Conn::Tcp(s)) = &self.conn {
                if peer_closed(s) {
                    self.conn = None;
                }
            }
            if self.conn.is_none() {
                if let Err(e) = self.connect() {
                    self.error("cannot connect", &e);
                    pending = Some(msg);
                    if !self.wait_backoff() {
                        self.give_up(pending.take());
                        return;
                    }
                    continue;
                }
            }
            let sent = match &mut self.conn {
                Some(Conn::Udp(s)) => s.send(&msg).map(|_| ()),
                Some(Conn::Tcp(s)) => {
                    framed.clear();
                    let _ = write!(framed, "{} ", msg.len());
                    framed.extend_from_slice(&msg);
                    s.write_all(&framed)
                }
                None => Ok(()),
            };
            match sent {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    self.backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.error("send failed", &e);
                    match self.conn.take() {
                        // The receiver is gone (ICMP port unreachable): this alarm is lost.
                        Some(Conn::Udp(_)) => {
                            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        // Sent again on the next connection.
                        _ => pending = Some(msg),
                    }
                }
            }
        }
    }

    /// Waits before the next connection attempt: the backoff, or, once the queue is closing,
    /// [`DRAIN_RETRY`]. False when the drain time is over.
    fn wait_backoff(&mut self) -> bool {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let start = Instant::now();
        loop {
            if self.closing.load(Ordering::Relaxed) {
                let until = *self.drain_until.get_or_insert_with(|| Instant::now() + self.drain);
                let now = Instant::now();
                if now >= until {
                    return false;
                }
                std::thread::sleep((until - now).min(DRAIN_RETRY));
                return true;
            }
            let gone = start.elapsed();
            if gone >= wait {
                return true;
            }
            // Short steps: an exit must not wait out a 5 s backoff.
            std::thread::sleep((wait - gone).min(Duration::from_millis(50)));
        }
    }

    fn give_up(&mut self, pending: Option<Vec<u8>>) {
        let left = u64::from(pending.is_some()) + self.rx.try_iter().count() as u64;
        if left > 0 {
            self.stats.dropped.fetch_add(left, Ordering::Relaxed);
            tracing::error!(
                output = %self.stats.name,
                alarms = left,
                "syslog destination unreachable at exit: queued alarms dropped"
            );
        }
    }

    fn connect(&mut self) -> std::io::Result<()> {
        let addrs: Vec<SocketAddr> = self.target.authority.to_socket_addrs()?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for a in addrs {
            let c = match self.target.transport {
                Transport::Udp => {
                    let bind: SocketAddr =
                        if a.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                    UdpSocket::bind(bind).and_then(|s| s.connect(a).map(|_| Conn::Udp(s)))
                }
                Transport::Tcp => TcpStream::connect_timeout(&a, CONNECT_TIMEOUT).and_then(|s| {
                    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    Ok(Conn::Tcp(s))
                }),
            };
            match c {
                Ok(c) => {
                    self.conn = Some(c);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn error(&self, what: &str, e: &std::io::Error) {
        let n = self.stats.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(output = %self.stats.name, errors = n, "syslog: {what}: {e}");
        }
    }
}

/// True when the peer of `s` closed its end (or the connection failed): a non-blocking peek reads
/// end-of-file or an error. Data the peer sent (syslog receivers send none) is left unread.
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let closed = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || s.set_nonblocking(false).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::alarm::{AlarmKind, WindowCounts};

    #[test]
    fn targets() {
        let t: Target = "tcp://siem.example:6514".parse().unwrap();
        assert_eq!((t.transport, t.authority.as_str()), (Transport::Tcp, "siem.example:6514"));
        let t: Target = "UDP://[2001:db8::1]:514/".parse().unwrap();
        assert_eq!((t.transport, t.to_string().as_str()), (Transport::Udp, "udp://[2001:db8::1]:514"));
        for bad in [
            "siem:514",
            "http://siem:514",
            "tcp://siem",
            "tcp://siem:0",
            "tcp://:514",
            "udp://2001:db8::1:514",
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    fn alarm(domain: &str) -> Alarm {
        Alarm {
            ts: 0,
            severity: Severity::High,
            kind: AlarmKind::Tunnel,
            domain: Some(domain.into()),
            client: [10, 0, 0, 1].into(),
            server: [10, 0, 0, 53].into(),
            score: 90,
            reasons: vec![],
            tool: Some("iodine"),
            benign_family: None,
            reputation: None,
            sample_qnames: vec![],
            window: WindowCounts {
                seconds: 120,
                queries: 0,
                responses: 0,
                unique_names: 0,
                subdomain_bytes: 0,
                long_subdomain_bytes: 0,
                long_seconds: 3600,
                nxdomain: 0,
                clients: 0,
            },
            first_seen: 0,
        }
    }

    #[test]
    fn rfc5424_message() {
        let h = Header { facility: Facility::Local0, hostname: "sensor1".into(), procid: 42 };
        let mut out = Vec::new();
        // A name from the wire may hold the three characters SD-PARAM values must escape.
        format(&mut out, &h, &alarm("a\"b]c\\d.example"), b"{}", 1_700_000_000_000_000_000);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "<130>1 2023-11-14T22:13:20.000000Z sensor1 dnsentry 42 tunnel [dnsentry@32473 severity=\"high\" \
             kind=\"tunnel\" domain=\"a\\\"b\\]c\\\\d.example\" client=\"10.0.0.1\" server=\"10.0.0.53\" score=\"90\" \
             tool=\"iodine\"] {}"
        );
        assert_eq!(severity_code(Severity::Low), 4);
        assert_eq!(Facility::Security.code() * 8 + severity_code(Severity::Info), 110);
    }

    /// A destination that refuses every connection: nothing is sent, every alarm is counted as
    /// dropped (queue full at once, or still queued when the drain time ran out), and `send`
    /// never waits.
    #[test]
    fn unreachable_destination_drops_and_counts() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = SyslogSettings { facility: Facility::Local0, queue: 2, drain: Duration::from_millis(300) };
        let out = SyslogOutput::start(format!("tcp://127.0.0.1:{port}").parse().unwrap(), &s).unwrap();
        let t0 = Instant::now();
        for _ in 0..50 {
            out.send(b"x".to_vec());
        }
        assert!(t0.elapsed() < Duration::from_secs(1));
        let c = out.finish();
        assert_eq!((c.sent, c.dropped), (0, 50));
        assert!(c.errors >= 1);
        assert_eq!(c.name, format!("syslog:tcp://127.0.0.1:{port}"));
    }
}
