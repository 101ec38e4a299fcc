//! The `/metrics` and `/healthz` HTTP endpoint (tiny_http, its own thread).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Telemetry;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {reason}")]
pub struct ServeError {
    pub addr: String,
    pub reason: String,
}

/// A running endpoint; stops when dropped.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves from a thread of its own.
    pub fn start(addr: &str, telemetry: Arc<Telemetry>) -> Result<Self, ServeError> {
        let err = |reason: String| ServeError { addr: addr.to_string(), reason };
        let server = tiny_http::Server::http(addr).map_err(|e| err(e.to_string()))?;
        let local = server.server_addr().to_ip().ok_or_else(|| err("not an IP listener".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // A slow client cannot block capture: this thread only serves metrics, and a
                    // request waits here at most this long between stop checks.
                    let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(200)) else { continue };
                    let resp = match req.url() {
                        "/metrics" => {
                            let header = tiny_http::Header::from_bytes(
                                &b"Content-Type"[..],
                                &b"text/plain; version=0.0.4; charset=utf-8"[..],
                            );
                            let mut r = tiny_http::Response::from_data(super::exporter::render(&telemetry));
                            if let Ok(h) = header {
                                r.add_header(h);
                            }
                            r
                        }
                        "/healthz" => tiny_http::Response::from_data(b"ok\n".to_vec()),
                        _ => {
                            tiny_http::Response::from_data(b"not found: try /metrics or /healthz\n".to_vec())
                                .with_status_code(404)
                        }
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(MetricsServer { addr: local, stop, thread: Some(thread) })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
