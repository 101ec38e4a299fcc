//! Detection: fingerprints, the benign-transport allow-list, reasons and scoring.

pub mod allowlist;
pub mod fingerprint;
pub mod reason;
pub mod score;

/// Alarm severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Benign-transport family that would otherwise have alarmed.
    Info = 0,
    Low = 1,
    High = 2,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Low, Severity::High];

    pub const fn code(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::High => "high",
        }
    }
}
