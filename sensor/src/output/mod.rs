//! Outputs: alarms (JSON lines) and the end-of-run summary.

pub mod alarm;
pub mod netflow;
pub mod summary;
