//! Why a DNS message was rejected. Each kind is a stable, bounded counter label.

/// A structural error in a DNS message. `Copy` and allocation-free: counted per kind on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DnsError {
    #[error("message shorter than the 12-byte header")]
    ShortHeader,
    #[error("name runs past the end of the message")]
    NameTruncated,
    #[error("compression pointer does not point backwards")]
    BadPointer,
    #[error("too many compression pointer hops")]
    PointerHops,
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("reserved label type")]
    BadLabelType,
    #[error("record or question runs past the end of the message")]
    RecordTruncated,
    #[error("more than one OPT record")]
    DuplicateOpt,
}

impl DnsError {
    /// All kinds, for pre-registering counters.
    pub const ALL: [DnsError; 8] = [
        DnsError::ShortHeader,
        DnsError::NameTruncated,
        DnsError::BadPointer,
        DnsError::PointerHops,
        DnsError::NameTooLong,
        DnsError::BadLabelType,
        DnsError::RecordTruncated,
        DnsError::DuplicateOpt,
    ];

    /// Stable snake_case code used in counters and the summary.
    pub const fn code(self) -> &'static str {
        match self {
            DnsError::ShortHeader => "dns_short_header",
            DnsError::NameTruncated => "dns_name_truncated",
            DnsError::BadPointer => "dns_bad_pointer",
            DnsError::PointerHops => "dns_pointer_hops",
            DnsError::NameTooLong => "dns_name_too_long",
            DnsError::BadLabelType => "dns_bad_label_type",
            DnsError::RecordTruncated => "dns_record_truncated",
            DnsError::DuplicateOpt => "dns_duplicate_opt",
        }
    }

    /// Dense index for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}
