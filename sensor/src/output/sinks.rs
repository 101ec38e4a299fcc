//! Where alarms go: the alarm file (or stdout) and the syslog destinations. Each alarm is
//! serialized once; the file gets the JSON line, each syslog destination an RFC 5424 message with
//! the same JSON as its MSG. Nothing here blocks on the network: syslog sending runs on its own
//! threads behind bounded queues.

use std::sync::Arc;

use super::alarm::{Alarm, AlarmWriter};
use super::syslog::{Header, OutputCounts, OutputStats, SyslogOutput};
use crate::detect::Severity;

/// The alarm outputs of a run.
pub struct AlarmSinks {
    min: Severity,
    file: Option<AlarmWriter>,
    syslog: Vec<SyslogOutput>,
    header: Header,
    json: Vec<u8>,
}

/// What the outputs did, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Alarm lines that could not be written to the file or stdout.
    pub file_failed: u64,
    /// Times the alarm file was reopened (SIGHUP).
    pub file_reopened: u64,
    pub syslog: Vec<OutputCounts>,
}

impl AlarmSinks {
    /// Alarms below `min` go nowhere. `file`: the alarm file or stdout, if any.
    pub fn new(min: Severity, file: Option<AlarmWriter>, syslog: Vec<SyslogOutput>, header: Header) -> Self {
        AlarmSinks { min, file, syslog, header, json: Vec::with_capacity(2048) }
    }

    pub fn emit(&mut self, a: &Alarm) {
        if a.severity < self.min {
            return;
        }
        self.json.clear();
        if serde_json::to_writer(&mut self.json, a).is_err() {
            if let Some(f) = &mut self.file {
                f.failed += 1;
            }
            return;
        }
        if !self.syslog.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            for s in &self.syslog {
                let mut msg = Vec::with_capacity(self.json.len() + 256);
                super::syslog::format(&mut msg, &self.header, a, &self.json, now);
                s.send(msg);
            }
        }
        if let Some(f) = &mut self.file {
            self.json.push(b'\n');
            f.write_line(&self.json);
        }
    }

    /// Alarm lines the file or stdout refused so far.
    pub fn file_failed(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.failed)
    }

    /// The syslog destinations' live counters (for the metrics endpoint).
    pub fn syslog_stats(&self) -> Vec<Arc<OutputStats>> {
        self.syslog.iter().map(|s| s.stats.clone()).collect()
    }

    /// Waits for the syslog queues to drain (bounded by their drain time) and reports.
    pub fn finish(self) -> SinkReport {
        SinkReport {
            file_failed: self.file_failed(),
            file_reopened: self.file.as_ref().map_or(0, |f| f.reopened),
            syslog: self.syslog.into_iter().map(SyslogOutput::finish).collect(),
        }
    }
}
