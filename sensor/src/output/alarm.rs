//! Alarms and their JSON-lines form (schema in `docs/alarms.md`).

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::detect::Severity;

/// Window counts reported with an alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowCounts {
    /// Length of the short window, seconds.
    pub seconds: u64,
    pub queries: u32,
    pub responses: u32,
    pub unique_names: u64,
    /// Distinct subdomain bytes in the short window.
    pub subdomain_bytes: u64,
    /// Distinct subdomain bytes in the long window.
    pub long_subdomain_bytes: u64,
    pub long_seconds: u64,
    pub nxdomain: u32,
    pub clients: u64,
}

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A domain's traffic scored as a tunnel or leak.
    Tunnel,
    /// A flow on a DNS port that is not DNS.
    NonDns,
    /// A lookup of a domain on a reputation list.
    Reputation,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 3] = [AlarmKind::Tunnel, AlarmKind::NonDns, AlarmKind::Reputation];

    pub const fn code(self) -> &'static str {
        match self {
            AlarmKind::Tunnel => "tunnel",
            AlarmKind::NonDns => "non_dns",
            AlarmKind::Reputation => "reputation",
        }
    }
}

/// The list entry a `reputation` alarm matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReputationMatch {
    /// The list's name.
    pub list: String,
    pub category: &'static str,
    /// The listed domain (the query name or one of its parents, or a CNAME target's).
    pub entry: String,
    /// The query name, lowercased.
    pub qname: String,
    /// True when the listed name was a CNAME target in the answer, not the query name.
    pub via_cname: bool,
}

/// One alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// Capture time of the message that raised it.
    #[serde(serialize_with = "ser_ts")]
    pub ts: u64,
    pub severity: Severity,
    pub kind: AlarmKind,
    /// The registered domain; `None` for traffic on a DNS port that is not DNS.
    pub domain: Option<String>,
    pub client: IpAddr,
    pub server: IpAddr,
    pub score: u32,
    pub reasons: Vec<&'static str>,
    pub tool: Option<&'static str>,
    pub benign_family: Option<&'static str>,
    /// Set for `kind: reputation`.
    pub reputation: Option<ReputationMatch>,
    pub sample_qnames: Vec<String>,
    pub window: WindowCounts,
    /// When this sensor first saw the domain.
    #[serde(serialize_with = "ser_ts")]
    pub first_seen: u64,
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(ts_ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let micros = t.microsecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros
    )
}

fn ser_ts<S: serde::Serializer>(ts: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

/// Writes alarm lines to a file or stdout, counting write failures instead of stopping capture.
/// A file is reopened (by path, appending, created if missing) at the first write after its
/// reopen flag is set (SIGHUP, after logrotate renamed it).
pub struct AlarmWriter {
    out: Box<dyn Write + Send>,
    path: Option<PathBuf>,
    reopen: Option<Arc<AtomicBool>>,
    pub written: u64,
    pub failed: u64,
    pub reopened: u64,
}

impl AlarmWriter {
    /// `out` should be unbuffered (a `File`, stdout): each alarm goes out as one whole line at
    /// once, so a failed write (full disk, closed pipe) never leaves half a line in a buffer to be
    /// glued to the next one.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        AlarmWriter { out, path: None, reopen: None, written: 0, failed: 0, reopened: 0 }
    }

    /// Appends to `path` (created if missing); reopens it when `reopen` is set.
    pub fn file(path: &Path, reopen: Option<Arc<AtomicBool>>) -> std::io::Result<Self> {
        let f = open_append(path)?;
        Ok(AlarmWriter { path: Some(path.into()), reopen, ..AlarmWriter::new(Box::new(f)) })
    }

    /// Writes one line (with its newline) in one write.
    pub fn write_line(&mut self, line: &[u8]) {
        if let (Some(flag), Some(path)) = (&self.reopen, &self.path) {
            if flag.swap(false, Ordering::Relaxed) {
                match open_append(path) {
                    Ok(f) => {
                        self.out = Box::new(f);
                        self.reopened += 1;
                        tracing::info!(path = %path.display(), "alarm file reopened");
                    }
                    // Kept writing to the file it has (renamed or not): nothing is lost.
                    Err(e) => tracing::error!(
                        path = %path.display(),
                        "cannot reopen the alarm file, still writing to the one open: {e}"
                    ),
                }
            }
        }
        // Flushed per alarm so `tail -f` and pipes see each one at once.
        if self.out.write_all(line).is_ok() && self.out.flush().is_ok() {
            self.written += 1;
        } else {
            self.failed += 1;
            if self.failed.is_power_of_two() {
                tracing::warn!(failed = self.failed, "cannot write alarm output");
            }
        }
    }

    /// Writes `alarm` as one JSON line.
    pub fn write(&mut self, alarm: &Alarm) {
        let mut line = Vec::with_capacity(1024);
        if serde_json::to_writer(&mut line, alarm).is_ok() {
            line.push(b'\n');
            self.write_line(&line);
        } else {
            self.failed += 1;
        }
    }
}

/// Alarms name clients and what they looked up: not for every local user (0640, as logrotate's
/// `create` in the shipped config).
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options().create(true).append(true).mode(0o640).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_691_247_811_123_456_789), "2023-08-05T15:03:31.123456Z");
    }
}
