//! Reason codes: short, stable strings in alarms (`reasons`), documented in `docs/alarms.md`.

/// Why a domain scored. The `code()` strings are an interface: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reason {
    ToolFingerprint = 0,
    SubdomainBytes,
    SlowLeak,
    ManyUniqueNames,
    EncodedLabels,
    HighEntropy,
    LongNames,
    RareQtype,
    NonAddressQtypes,
    LargeAnswers,
    NxdomainRatio,
    Beacon,
    BenignTransport,
    NonDnsTraffic,
    LearnedBaseline,
    Reputation,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::ToolFingerprint,
        Reason::SubdomainBytes,
        Reason::SlowLeak,
        Reason::ManyUniqueNames,
        Reason::EncodedLabels,
        Reason::HighEntropy,
        Reason::LongNames,
        Reason::RareQtype,
        Reason::NonAddressQtypes,
        Reason::LargeAnswers,
        Reason::NxdomainRatio,
        Reason::Beacon,
        Reason::BenignTransport,
        Reason::NonDnsTraffic,
        Reason::LearnedBaseline,
        Reason::Reputation,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            Reason::ToolFingerprint => "tool_fingerprint",
            Reason::SubdomainBytes => "subdomain_bytes",
            Reason::SlowLeak => "slow_leak",
            Reason::ManyUniqueNames => "many_unique_names",
            Reason::EncodedLabels => "encoded_labels",
            Reason::HighEntropy => "high_entropy",
            Reason::LongNames => "long_names",
            Reason::RareQtype => "rare_qtype",
            Reason::NonAddressQtypes => "non_address_qtypes",
            Reason::LargeAnswers => "large_answers",
            Reason::NxdomainRatio => "nxdomain_ratio",
            Reason::Beacon => "beacon",
            Reason::BenignTransport => "benign_transport",
            Reason::NonDnsTraffic => "non_dns_traffic",
            Reason::LearnedBaseline => "learned_baseline",
            Reason::Reputation => "reputation",
        }
    }
}

/// A set of reasons as a bitmap (also the NetFlow reasons field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Reasons(pub u32);

impl Reasons {
    pub fn insert(&mut self, r: Reason) {
        self.0 |= 1 << r as u32;
    }

    pub fn contains(self, r: Reason) -> bool {
        self.0 & (1 << r as u32) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    pub fn codes(self) -> Vec<&'static str> {
        self.iter().map(Reason::code).collect()
    }
}
