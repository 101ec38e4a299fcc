//! The `/metrics` and `/healthz` HTTP endpoint: std sockets, its own threads, bounded in time and
//! in connections.
//!
//! Not tiny_http: it has no socket timeouts, and one client that pipelined requests without
//! reading its answers blocked every later scrape and the shutdown. Here each connection gets a
//! thread of its own and a deadline for its request and one for its answer (each [`IO_TIMEOUT`],
//! however slowly the bytes trickle), answers one request (`Connection: close`) and ends; at most
//! [`MAX_CONNECTIONS`] are served at once, the rest are closed at accept. A stuck or slow client
//! therefore costs one slot for at most twice the timeout, never capture or other scrapes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Telemetry;

/// Connections served at the same time.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send its whole request, and to take the whole answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {reason}")]
pub struct ServeError {
    pub addr: String,
    pub reason: String,
}

/// Request outcomes, indexes of `Telemetry::metrics_requests`.
pub const SERVED: usize = 0;
pub const BUSY: usize = 1;
pub const FAILED: usize = 2;

/// A running endpoint; stops accepting when dropped (connections in flight end by their timeouts).
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections being served now.
    active: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves from threads of its own.
    pub fn start(addr: &str, telemetry: Arc<Telemetry>) -> Result<Self, ServeError> {
        let err = |reason: String| ServeError { addr: addr.to_string(), reason };
        let listener = TcpListener::bind(addr).map_err(|e| err(e.to_string()))?;
        let local = listener.local_addr().map_err(|e| err(e.to_string()))?;
        // Non-blocking accept, so the stop flag is seen within a poll interval.
        listener.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let (flag, slots) = (stop.clone(), active.clone());
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || accept_loop(listener, &flag, &slots, telemetry))
            .map_err(|e| err(e.to_string()))?;
        Ok(MetricsServer { addr: local, stop, active, thread: Some(thread) })
    }

    /// Connections being served now (each holds a slot until its thread ends).
    pub fn connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: &AtomicBool,
    active: &Arc<AtomicUsize>,
    telemetry: Arc<Telemetry>,
) {
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                // EMFILE and the like: count, back off, go on.
                telemetry.metrics_requests[FAILED].fetch_add(1, Ordering::Relaxed);
                tracing::debug!("metrics accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            telemetry.metrics_requests[BUSY].fetch_add(1, Ordering::Relaxed);
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let slot = Slot::take(active);
        let t = telemetry.clone();
        let spawned = std::thread::Builder::new().name("metrics-conn".into()).spawn(move || {
            let _slot = slot; // freed when the thread ends, even by a panic
            let outcome = serve(stream, &t);
            t.metrics_requests[if outcome.is_ok() { SERVED } else { FAILED }].fetch_add(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            telemetry.metrics_requests[FAILED].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A connection slot, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Slot {
        active.fetch_add(1, Ordering::Relaxed);
        Slot(active.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Time left until `deadline`, or a timeout error.
fn left(deadline: Instant) -> std::io::Result<Option<Duration>> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Reads one request head and writes one response.
fn serve(mut stream: TcpStream, telemetry: &Telemetry) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", b"too long\n", true)?;
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        stream.set_read_timeout(left(deadline)?)?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if method != b"GET" && method != b"HEAD" {
        respond(&mut stream, "405 Method Not Allowed", "text/plain", b"GET only\n", true)?;
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let with_body = method == b"GET";
    match path {
        b"/metrics" => {
            let body = super::exporter::render(telemetry);
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body, with_body)
        }
        b"/healthz" => respond(&mut stream, "200 OK", "text/plain", b"ok\n", with_body),
        _ => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found: try /metrics or /healthz\n",
            with_body,
        ),
    }
}

/// Writes the answer within its own deadline, in pieces so a slow reader cannot stretch it.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let body = if with_body { body } else { &[] };
    for chunk in head.as_bytes().chunks(16 * 1024).chain(body.chunks(16 * 1024)) {
        stream.set_write_timeout(left(deadline)?)?;
        stream.write_all(chunk)?;
    }
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        // A refused connection (all slots busy) reads as an empty answer.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// Waits for a condition the server reaches on its own; the bound only catches a hang.
    fn wait_for(cond: impl Fn() -> bool, what: &str) {
        let deadline = Instant::now() + 12 * IO_TIMEOUT;
        while !cond() {
            assert!(Instant::now() < deadline, "never reached: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn serves_and_survives_clients_that_never_read() {
        let t = Arc::new(Telemetry::new(1, 1, 5));
        let server = MetricsServer::start("127.0.0.1:0", t.clone()).unwrap();
        let ok = get(server.addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("dnsentry_config_reloads_total"), "{ok}");
        assert!(get(server.addr, "/nope").starts_with("HTTP/1.1 404"));
        // Clients that never send a byte take every slot (waited for by state, not by a sleep:
        // on a loaded machine the accept loop may take its time)...
        let silent: Vec<TcpStream> =
            (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
        wait_for(|| server.connections() == MAX_CONNECTIONS, "every slot taken");
        let started = Instant::now();
        // ...so the next connection is closed at accept, and counted.
        assert_eq!(get(server.addr, "/healthz"), "");
        assert!(t.metrics_requests[BUSY].load(Ordering::Relaxed) >= 1);
        // Their deadline frees the slots: a normal scrape gets through after it.
        let mut body = String::new();
        while started.elapsed() < 12 * IO_TIMEOUT {
            body = get(server.addr, "/healthz");
            if body.starts_with("HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(body.ends_with("ok\n"), "no scrape got through: {body:?}");
        assert!(started.elapsed() >= IO_TIMEOUT / 2, "{:?}", started.elapsed());
        // One freed slot lets the scrape through; every stalled one counts itself when its own
        // deadline passes, which a loaded machine may reach later.
        wait_for(
            || t.metrics_requests[FAILED].load(Ordering::Relaxed) >= MAX_CONNECTIONS as u64,
            "every stalled client counted as failed",
        );
        // A client pipelining requests without reading costs one slot, not the endpoint.
        let mut piped = TcpStream::connect(server.addr).unwrap();
        piped.set_nonblocking(true).unwrap();
        for _ in 0..2000 {
            if piped.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
                break;
            }
        }
        assert!(get(server.addr, "/metrics").starts_with("HTTP/1.1 200"));
        let stuck = (silent, piped);
        // Shutdown does not wait for the stuck clients.
        let started = Instant::now();
        drop(server);
        assert!(started.elapsed() < IO_TIMEOUT / 2, "{:?}", started.elapsed());
        drop(stuck);
    }

    #[test]
    fn a_trickling_client_is_cut_at_the_deadline() {
        let t = Arc::new(Telemetry::new(1, 1, 5));
        let server = MetricsServer::start("127.0.0.1:0", t.clone()).unwrap();
        let mut s = TcpStream::connect(server.addr).unwrap();
        let started = Instant::now();
        // One byte every 300 ms never completes a request head; each byte resets no timer.
        let mut cut = None;
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .iter()
            .cycle()
        {
            if s.write_all(&[*b]).is_err() {
                cut = Some(started.elapsed());
                break;
            }
            // A per-read timeout would never fire at this pace: any cut proves the deadline.
            if started.elapsed() > 8 * IO_TIMEOUT {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let cut = cut.expect("the server never closed a client that trickles bytes");
        assert!(cut >= IO_TIMEOUT, "{cut:?}");
        // The connection thread counts itself after closing the socket.
        wait_for(|| t.metrics_requests[FAILED].load(Ordering::Relaxed) == 1, "the cut counted as failed");
    }
}
