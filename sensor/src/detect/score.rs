//! Scoring: the weighted sum of the reasons that hold for a domain's windows, capped at 100.

use super::reason::{Reason, Reasons};
use super::Severity;
use crate::config::DetectConfig;
use crate::state::domain::{ClientDomain, DomainState};

/// The outcome of scoring one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub score: u32,
    pub reasons: Reasons,
    /// `None` below `low_score`.
    pub severity: Option<Severity>,
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Scores a domain after an update. `cd` is the (client, domain) pair of the latest query.
pub fn score(d: &DomainState, cd: Option<&ClientDomain>, cfg: &DetectConfig) -> Verdict {
    let mut reasons = Reasons::default();
    let mut score = 0u32;
    let mut add = |r: Reason, w: u32| {
        reasons.insert(r);
        score += w;
    };
    let w = &d.short;
    let fingerprinted = d.tool.is_some() && w.tool_hits.max(d.long.tool_hits) >= cfg.fingerprint_hits;
    if fingerprinted {
        add(Reason::ToolFingerprint, cfg.fingerprint_weight);
    }
    if w.queries >= cfg.min_queries {
        let bytes = w.subdomain_bytes();
        if bytes >= cfg.subdomain_bytes_high as f64 {
            add(Reason::SubdomainBytes, cfg.subdomain_bytes_high_weight);
        } else if bytes >= cfg.subdomain_bytes_low as f64 {
            add(Reason::SubdomainBytes, cfg.subdomain_bytes_low_weight);
        }
        if w.unique_names() >= cfg.unique_names as f64 {
            add(Reason::ManyUniqueNames, cfg.unique_names_weight);
        }
        if ratio(w.encoded, w.queries) >= cfg.encoded_ratio {
            add(Reason::EncodedLabels, cfg.encoded_weight);
        }
        if ratio(w.high_entropy, w.queries) >= cfg.high_entropy_ratio {
            add(Reason::HighEntropy, cfg.high_entropy_weight);
        }
        if ratio(w.long_names, w.queries) >= cfg.long_names_ratio {
            add(Reason::LongNames, cfg.long_names_weight);
        }
        if ratio(w.non_address, w.queries) >= cfg.non_address_ratio {
            add(Reason::NonAddressQtypes, cfg.non_address_weight);
        }
    }
    if w.rare_qtype >= cfg.rare_qtype_queries {
        add(Reason::RareQtype, cfg.rare_qtype_weight);
    }
    if w.answer_payload >= cfg.answer_bytes as u64 {
        add(Reason::LargeAnswers, cfg.answer_bytes_weight);
    }
    if w.responses >= cfg.nxdomain_min && ratio(w.nxdomain, w.responses) >= cfg.nxdomain_ratio {
        add(Reason::NxdomainRatio, cfg.nxdomain_weight);
    }
    // Low and slow: the long window holds what the short one forgets.
    let short_bytes_hit =
        w.queries >= cfg.min_queries && w.subdomain_bytes() >= cfg.subdomain_bytes_low as f64;
    if !short_bytes_hit && d.long.subdomain_bytes() >= cfg.slow_leak_bytes as f64 {
        add(Reason::SlowLeak, cfg.slow_leak_weight);
    }
    if let Some(cd) = cd {
        if cd.is_beacon(cfg.beacon_queries, cfg.beacon_cv) {
            add(Reason::Beacon, cfg.beacon_weight);
        }
    }
    let score = score.min(100);
    let mut severity = if score >= cfg.high_score {
        Some(Severity::High)
    } else if score >= cfg.low_score {
        Some(Severity::Low)
    } else {
        None
    };
    // Benign transport is reported, not hidden: demoted to info unless a tool fingerprint proves
    // a tunnel.
    if severity.is_some() && d.benign_family().is_some() && !fingerprinted {
        reasons.insert(Reason::BenignTransport);
        severity = Some(Severity::Info);
    }
    Verdict { score, reasons, severity }
}
