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
    }
    // Name shape: over the short window when it has enough queries, else over the long one (a slow
    // leak sends a query a minute, never enough for the short window).
    let shape = if w.queries >= cfg.min_queries {
        Some(w)
    } else {
        Some(&d.long).filter(|l| l.queries >= cfg.min_queries)
    };
    let encoded = shape.is_some_and(|s| ratio(s.encoded, s.queries) >= cfg.encoded_ratio);
    if let Some(s) = shape {
        if encoded {
            add(Reason::EncodedLabels, cfg.encoded_weight);
        }
        if ratio(s.high_entropy, s.queries) >= cfg.high_entropy_ratio {
            add(Reason::HighEntropy, cfg.high_entropy_weight);
        }
        if ratio(s.long_names, s.queries) >= cfg.long_names_ratio {
            add(Reason::LongNames, cfg.long_names_weight);
        }
        if ratio(s.non_address, s.queries) >= cfg.non_address_ratio {
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
    // Low and slow: the long window holds what the short one forgets; only encoded names count,
    // so a busy domain with many ordinary host names is not a leak.
    let short_bytes_hit =
        w.queries >= cfg.min_queries && w.subdomain_bytes() >= cfg.subdomain_bytes_low as f64;
    if !short_bytes_hit && encoded && d.long.subdomain_bytes() >= cfg.slow_leak_bytes as f64 {
        add(Reason::SlowLeak, cfg.slow_leak_weight);
    }
    if let Some(cd) = cd {
        if cd.is_beacon(cfg.beacon_queries, cfg.beacon_cv) {
            // Machine-made names (hex, base32...) checking in on a clock: C2, not NTP.
            let w =
                if cd.machine_names_ratio() >= 0.8 { cfg.beacon_machine_weight } else { cfg.beacon_weight };
            add(Reason::Beacon, w);
        }
    }
    let score = score.min(100);
    // The shape of names (encodings, entropy, length, types) says "could be a tunnel"; only
    // evidence that information moves, or a fingerprint, makes it an alarm.
    const EVIDENCE: [Reason; 7] = [
        Reason::ToolFingerprint,
        Reason::SubdomainBytes,
        Reason::SlowLeak,
        Reason::ManyUniqueNames,
        Reason::LargeAnswers,
        Reason::RareQtype,
        Reason::Beacon,
    ];
    let evidence = EVIDENCE.iter().any(|r| reasons.contains(*r));
    let mut severity = if !evidence {
        None
    } else if score >= cfg.high_score {
        Some(Severity::High)
    } else if score >= cfg.low_score {
        Some(Severity::Low)
    } else {
        None
    };
    // Benign transport is reported, not hidden: demoted to info unless a tool fingerprint proves
    // a tunnel.
    let precise = fingerprinted && d.tool.is_some_and(|t| t.is_precise());
    if severity.is_some() && d.baselined && !precise {
        reasons.insert(Reason::LearnedBaseline);
        severity = Some(Severity::Info);
    }
    if severity.is_some() && d.benign_family().is_some() && !precise {
        reasons.insert(Reason::BenignTransport);
        severity = Some(Severity::Info);
    }
    Verdict { score, reasons, severity }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::IpAddr16;
    use crate::record::{Charset, Lexical, Record};
    use crate::state::domain::DomainState;

    fn query(name: &str, ts: u64, qtype: u16, charset: Charset, tool: u8, session: u16) -> Record {
        let sub_len = name.len() - "example.com".len() - 1;
        Record {
            seq: 0,
            ts_ns: ts,
            client: IpAddr16::v4([10, 0, 0, 1]),
            server: IpAddr16::v4([10, 0, 0, 53]),
            client_port: 5000,
            server_port: 53,
            vlan: 0,
            dns_id: 1,
            qtype,
            rcode: 0,
            flags: 0,
            msg_len: 80,
            answers: 0,
            answer_payload: 0,
            edns_size: 0,
            ttl: 0,
            domain_hash: 1,
            name_hash: crate::hash::hash_bytes(name.as_bytes()),
            lex: Lexical {
                qname_len: name.len() as u8,
                labels: 3,
                longest_label: sub_len as u8,
                sub_len: sub_len as u8,
                charset,
                entropy: 3.9,
                digits: 10,
                uppers: 0,
            },
            tool,
            tool_session: session,
            family: 0,
            domain_len: 11,
            name_len: name.len() as u8,
            name_at: 0,
            hit: 0,
            reputation: 0,
            unit: 0,
        }
    }

    fn feed(recs: &[Record]) -> Verdict {
        let cfg = DetectConfig::default();
        let mut d = DomainState::new(b"example.com", 0, 64);
        let mut v = None;
        for r in recs {
            d.update(r, b"sample.example.com", 120_000_000_000, 3_600_000_000_000);
            v = Some(score(&d, None, &cfg));
        }
        v.unwrap()
    }

    #[test]
    fn shape_without_evidence_never_alarms() {
        // Ten long hex names (telemetry-like GUIDs): encoded, long, high entropy, but no volume.
        let recs: Vec<Record> = (0..10)
            .map(|i| {
                query(&format!("{i:032x}.{i:016x}.example.com"), i * 1_000_000_000, 1, Charset::Hex, 0, 0)
            })
            .collect();
        let v = feed(&recs);
        assert!(v.reasons.contains(Reason::EncodedLabels) && v.reasons.contains(Reason::LongNames));
        assert!(v.score >= 30, "{v:?}");
        assert_eq!(v.severity, None);
    }

    #[test]
    fn volume_with_shape_alarms_high() {
        let recs: Vec<Record> = (0..200)
            .map(|i| {
                query(
                    &format!("{:040x}.{i:016x}.example.com", i * 7919),
                    i * 100_000_000,
                    16,
                    Charset::Hex,
                    0,
                    0,
                )
            })
            .collect();
        let v = feed(&recs);
        assert!(v.reasons.contains(Reason::SubdomainBytes), "{v:?}");
        assert_eq!(v.severity, Some(Severity::High), "{v:?}");
    }

    #[test]
    fn fingerprint_sessions_must_repeat_across_names() {
        // Chance dnscat2-like framing with a different session each time: no fingerprint reason.
        let random: Vec<Record> = (0..20)
            .map(|i| query(&format!("{i:040x}.example.com"), i, 16, Charset::Hex, 3, 1000 + i as u16))
            .collect();
        assert!(!feed(&random).reasons.contains(Reason::ToolFingerprint));
        // One session across different names: a fingerprint.
        let session: Vec<Record> =
            (0..20).map(|i| query(&format!("{i:040x}.example.com"), i, 16, Charset::Hex, 3, 42)).collect();
        assert!(feed(&session).reasons.contains(Reason::ToolFingerprint));
        // The same name over and over (query, response, upstream copy) confirms nothing.
        let same: Vec<Record> =
            (0..20).map(|i| query(&format!("{:040x}.example.com", 5), i, 16, Charset::Hex, 3, 42)).collect();
        assert!(!feed(&same).reasons.contains(Reason::ToolFingerprint));
    }
}
