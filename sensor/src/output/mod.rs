//! Outputs: alarms (JSON lines to a file or stdout, RFC 5424 syslog), NetFlow/IPFIX export and the
//! end-of-run summary.

pub mod alarm;
pub mod netflow;
pub mod sinks;
pub mod summary;
pub mod syslog;
