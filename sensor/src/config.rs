//! Configuration: TOML with serde, unknown keys rejected, every value validated with an error that
//! names the key. Every option is documented in `docs/config.md` and `dnsentry.example.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub pipeline: PipelineConfig,
    pub tcp: TcpConfig,
    pub state: StateConfig,
    pub detect: DetectConfig,
    pub allowlist: AllowlistConfig,
    pub metrics: MetricsConfig,
    pub export: ExportConfig,
    pub live: LiveConfig,
    pub reputation: ReputationConfig,
    pub outputs: OutputsConfig,
}

/// Known-bad domain lists (docs/detection.md, "Domain reputation"); also `--reputation FILE`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationConfig {
    /// The lists, in order: a name in several lists is reported with the first.
    pub lists: Vec<crate::reputation::ListSpec>,
    /// The lists, loaded by [`Config::load_reputation`].
    #[serde(skip)]
    pub loaded: LoadedReputation,
}

/// Loaded lists, shared; equal when they hold the same lists with the same counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedReputation(pub std::sync::Arc<crate::reputation::Reputation>);

/// Live capture (`dnsentry live`); every key also has a command-line flag.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// XDP attach mode: "drv" (native), "skb" (generic) or "auto" (drv, then skb).
    pub attach: String,
    /// AF_XDP bind mode: "zero-copy", "copy" or "auto" (zero-copy, then copy).
    pub bind: String,
    /// What happens to frames that are not DNS: "pass" (inline host) or "drop" (mirror port).
    pub default_action: String,
    /// RX queues to capture (0 = all of the interface's).
    pub queues: u32,
    /// Cores to pin the capture workers to, one per queue in order (empty = no pinning).
    pub cores: Vec<usize>,
    /// Cores to pin the aggregation shards to, one per shard in order (empty = no pinning).
    pub shard_cores: Vec<usize>,
    /// UMEM frames per socket.
    pub frame_count: u32,
    /// Bytes per UMEM frame (2048 or 4096).
    pub frame_size: u32,
    /// Entries of the RX and fill rings (power of two).
    pub ring_size: u32,
    /// User to switch to once the program is attached and the sockets bound ("" = `dnsentry` if
    /// that user exists, else `nobody`; "root" = keep root and every capability).
    pub user: String,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            attach: "auto".into(),
            bind: "auto".into(),
            default_action: "pass".into(),
            queues: 0,
            cores: Vec::new(),
            shard_cores: Vec::new(),
            frame_count: 4096,
            frame_size: 4096,
            ring_size: 2048,
            user: String::new(),
        }
    }
}

/// Export wire format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// NetFlow v9 (RFC 3954).
    #[default]
    V9,
    /// IPFIX (RFC 7011).
    Ipfix,
}

/// A syslog destination's URL could not be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("syslog destination `{url}`: {reason} (expected udp://HOST:PORT or tcp://HOST:PORT)")]
pub struct TargetError {
    pub url: String,
    pub reason: &'static str,
}

/// The transport of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A parsed `udp://HOST:PORT` or `tcp://HOST:PORT` (host names are resolved at each connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub transport: Transport,
    /// `HOST:PORT` as given (IPv6 literals in brackets).
    pub authority: String,
}

impl std::str::FromStr for Target {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Self, TargetError> {
        let err = |reason| TargetError { url: url.into(), reason };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| err("no scheme"))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            _ => return Err(err("unknown scheme")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| err("no port"))?;
        let port: u16 = port.parse().map_err(|_| err("bad port"))?;
        if port == 0 {
            return Err(err("bad port"));
        }
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if bare.is_empty() || bare.contains(['/', ' ', '@']) || (bare.contains(':') && bare == host) {
            return Err(err("bad host"));
        }
        Ok(Target { transport, authority: rest.into() })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(f, "{scheme}://{}", self.authority)
    }
}

/// Syslog facility of the messages (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    User,
    Daemon,
    Auth,
    Authpriv,
    Security,
    #[default]
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub const fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            // "security/authorization messages" (log audit, 13 in RFC 5424's table).
            Facility::Security => 13,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// Alarm outputs besides the alarm file (docs/deploy.md, "Alarms to syslog").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    /// Syslog destinations, `udp://HOST:PORT` or `tcp://HOST:PORT` (RFC 5424; octet counting on
    /// TCP). Also `--syslog URL`.
    pub syslog: Vec<String>,
    /// Facility of the syslog messages.
    pub syslog_facility: Facility,
    /// Alarms queued per syslog destination while it is slow or down; past that they are dropped
    /// and counted.
    pub syslog_queue: usize,
    /// At exit, how long to keep trying to deliver queued alarms to a destination that is down.
    pub syslog_drain_secs: u64,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        OutputsConfig {
            syslog: Vec::new(),
            syslog_facility: Facility::Local0,
            syslog_queue: 10_000,
            syslog_drain_secs: 5,
        }
    }
}

/// NetFlow v9 / IPFIX export of DNS transactions (docs/netflow.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Collectors as HOST:PORT (UDP). Empty: no export.
    pub collectors: Vec<String>,
    pub format: ExportFormat,
    /// Source id (v9) / observation domain id (IPFIX).
    pub source_id: u32,
    /// Size of the fixed DNS_QUERY field in v9 (IPFIX sends names whole).
    pub qname_bytes: usize,
    /// Largest UDP payload of an export packet.
    pub mtu: usize,
    /// Resend templates after this many export packets...
    pub template_packets: u32,
    /// ...or this many seconds, whichever comes first.
    pub template_secs: u64,
    /// Export only transactions whose domain scores at least this (0 = all).
    pub min_score: u32,
    /// Most records per second (0 = unlimited); the rest are dropped and counted.
    pub max_records_per_sec: u64,
    /// Records queued for the exporter; when full, records are dropped and counted (live).
    pub queue_records: usize,
    /// INPUT_SNMP of every record: the capture interface's ifindex (set by `live`; 0 in replay).
    #[serde(skip)]
    pub ifindex: u32,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            collectors: Vec::new(),
            format: ExportFormat::V9,
            source_id: 0,
            qname_bytes: 128,
            mtu: 1400,
            template_packets: 20,
            template_secs: 1800,
            min_score: 0,
            max_records_per_sec: 0,
            queue_records: 16_384,
            ifindex: 0,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of `/metrics` and `/healthz` (live capture; replay serves only with
    /// `--metrics-listen`).
    pub listen: String,
    /// Suspect domains exported by name in `dnsentry_suspect_domain_score` (at most 50).
    pub top_suspects: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: "127.0.0.1:9853".into(), top_suspects: 20 }
    }
}

/// Which packets are DNS.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// UDP/TCP ports treated as DNS (source or destination).
    pub dns_ports: Vec<u16>,
}

/// Threads and channels.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Decode workers; 0 means one per core.
    pub workers: usize,
    /// Aggregation shards; 0 means one per worker.
    pub shards: usize,
    /// Batches in flight per channel.
    pub channel_batches: usize,
    /// Frames per batch handed to a worker.
    pub batch_frames: usize,
}

/// DNS-over-TCP reassembly.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// Most TCP flows tracked per worker.
    pub max_flows: usize,
    /// Most bytes buffered for partial messages, per worker.
    pub max_buffered_bytes: usize,
    /// A flow idle this long is forgotten.
    pub idle_timeout_secs: u64,
}

/// Windowed state tables.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Most registered domains tracked (all shards together); least recently seen evicted first.
    pub max_domains: usize,
    /// Most (client, domain) pairs tracked (all shards together).
    pub max_client_domains: usize,
    /// Short window, seconds (the ibHH window).
    pub short_window_secs: u64,
    /// Long window for low-and-slow leaks, seconds.
    pub long_window_secs: u64,
    /// Size of the distinct-name sketches (k of the KMV sketch): 8*k bytes each.
    pub sketch_k: usize,
    /// Queries waiting for their response (all shards together).
    pub max_pending_queries: usize,
    /// A query without a response after this many seconds counts as unanswered.
    pub transaction_timeout_secs: u64,
}

/// Scoring thresholds and weights. A domain's score is the sum of the weights of the reasons that
/// hold, capped at 100.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Score at or above which an alarm is `low`.
    pub low_score: u32,
    /// Score at or above which an alarm is `high`.
    pub high_score: u32,
    /// Queries in the short window before statistical reasons are considered.
    pub min_queries: u32,
    /// At most one alarm per (domain, severity) per this many seconds of capture time.
    pub suppression_secs: u64,
    /// Messages matching a tool fingerprint needed for `tool_fingerprint`.
    pub fingerprint_hits: u32,
    pub fingerprint_weight: u32,
    /// Distinct subdomain bytes in the short window for `subdomain_bytes` (low / high weight).
    pub subdomain_bytes_low: u32,
    pub subdomain_bytes_high: u32,
    pub subdomain_bytes_low_weight: u32,
    pub subdomain_bytes_high_weight: u32,
    /// Distinct subdomain bytes in the long window for `slow_leak`.
    pub slow_leak_bytes: u32,
    pub slow_leak_weight: u32,
    /// Unique names in the short window for `many_unique_names`.
    pub unique_names: u32,
    pub unique_names_weight: u32,
    /// Share of queries with an encoded longest label for `encoded_labels`.
    pub encoded_ratio: f64,
    pub encoded_weight: u32,
    /// Share of queries with high-entropy subdomains for `high_entropy`.
    pub high_entropy_ratio: f64,
    pub high_entropy_weight: u32,
    /// Share of queries with names of 52+ characters for `long_names`.
    pub long_names_ratio: f64,
    pub long_names_weight: u32,
    /// NULL/PRIVATE/KEY queries for `rare_qtype`.
    pub rare_qtype_queries: u32,
    pub rare_qtype_weight: u32,
    /// Share of non-A/AAAA queries for `non_address_qtypes`.
    pub non_address_ratio: f64,
    pub non_address_weight: u32,
    /// Answer payload bytes (TXT, NULL, CNAME... RDATA) in the short window for `large_answers`.
    pub answer_bytes: u32,
    pub answer_bytes_weight: u32,
    /// NXDOMAIN share of responses (with at least `nxdomain_min` responses) for `nxdomain_ratio`.
    pub nxdomain_ratio: f64,
    pub nxdomain_min: u32,
    pub nxdomain_weight: u32,
    /// Queries from one client to one domain, and the coefficient of variation of their
    /// inter-arrival times below which they count as a `beacon`.
    pub beacon_queries: u32,
    pub beacon_cv: f64,
    pub beacon_weight: u32,
    /// Weight of `beacon` when the names are machine-made (hex, base32, base36 labels).
    pub beacon_machine_weight: u32,
    /// Non-DNS payloads from one client–server pair on a DNS port before a `non_dns_traffic`
    /// alarm (high).
    pub non_dns_packets: u32,
    /// Learned baseline (`dnsentry learn`): a file of registered domains that naturally carry
    /// high information; their alarms are demoted to `info` (reason `learned_baseline`). Empty:
    /// none. Also `--baseline FILE`.
    pub baseline: String,
    /// The baseline's domains, loaded from `baseline`.
    #[serde(skip)]
    pub learned: std::sync::Arc<std::collections::BTreeSet<String>>,
}

/// The benign-transport allow-list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AllowlistConfig {
    /// Use the shipped list of benign-transport families.
    pub builtin: bool,
    /// Extra suffixes (family `local`): alarms on them are reported as `info`.
    pub extra: Vec<String>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig { dns_ports: vec![dnsentry_common::DNS_PORT] }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { workers: 0, shards: 0, channel_batches: 16, batch_frames: 1024 }
    }
}

/// A replay merge unit holds at most this many batches' worth of frames (see `replay`).
pub const UNIT_BATCHES: usize = 16;
/// A replay merge unit ends where the capture clock (the latest frame time so far) passes its
/// first frame's by this much: a replay alarm comes at most this late in capture time.
pub const UNIT_SPAN_NS: u64 = 1_000_000;

impl PipelineConfig {
    /// Frames of a replay merge unit, at most.
    pub fn unit_frames(&self) -> usize {
        self.batch_frames * UNIT_BATCHES
    }

    /// Frames after which a replay epoch ends at the next unit boundary.
    pub fn epoch_frames(&self, workers: usize) -> usize {
        self.batch_frames * workers.max(1)
    }

    /// Frames of a replay epoch, at most: whole units, so up to a unit past `epoch_frames`.
    pub fn epoch_frames_max(&self, workers: usize) -> usize {
        self.epoch_frames(workers) + self.unit_frames()
    }

    /// Replay epochs in flight per worker channel: about `channel_batches` batches' worth of
    /// frames per worker, and at least two.
    pub fn channel_epochs(&self, workers: usize) -> usize {
        let workers = workers.max(1);
        (self.channel_batches * workers).div_ceil(workers.max(UNIT_BATCHES)).max(2)
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig { max_flows: 16_384, max_buffered_bytes: 16 << 20, idle_timeout_secs: 30 }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_domains: 200_000,
            max_client_domains: 500_000,
            short_window_secs: 120,
            long_window_secs: 3600,
            sketch_k: 64,
            max_pending_queries: 100_000,
            transaction_timeout_secs: 5,
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            low_score: 40,
            high_score: 70,
            min_queries: 5,
            suppression_secs: 300,
            fingerprint_hits: 3,
            fingerprint_weight: 60,
            subdomain_bytes_low: 1_000,
            subdomain_bytes_high: 4_000,
            subdomain_bytes_low_weight: 25,
            subdomain_bytes_high_weight: 45,
            slow_leak_bytes: 800,
            slow_leak_weight: 50,
            unique_names: 200,
            unique_names_weight: 15,
            encoded_ratio: 0.5,
            encoded_weight: 20,
            high_entropy_ratio: 0.5,
            high_entropy_weight: 10,
            long_names_ratio: 0.5,
            long_names_weight: 10,
            rare_qtype_queries: 3,
            rare_qtype_weight: 25,
            non_address_ratio: 0.8,
            non_address_weight: 5,
            answer_bytes: 8_192,
            answer_bytes_weight: 20,
            nxdomain_ratio: 0.5,
            nxdomain_min: 20,
            nxdomain_weight: 10,
            beacon_queries: 10,
            beacon_cv: 0.15,
            beacon_weight: 25,
            beacon_machine_weight: 40,
            non_dns_packets: 10,
            baseline: String::new(),
            learned: Default::default(),
        }
    }
}

impl Default for AllowlistConfig {
    fn default() -> Self {
        AllowlistConfig { builtin: true, extra: Vec::new() }
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

impl Config {
    /// Loads the learned baseline named by `detect.baseline`, if any: one registered domain per
    /// line, `#` comments.
    pub fn load_baseline(&mut self) -> Result<(), ConfigError> {
        if self.detect.baseline.is_empty() {
            return Ok(());
        }
        let path = PathBuf::from(&self.detect.baseline);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let set = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|l| !l.is_empty())
            .collect();
        self.detect.learned = std::sync::Arc::new(set);
        Ok(())
    }

    /// Loads the reputation lists (`reputation.lists`), replacing any loaded before. Malformed
    /// lines are skipped and logged with their numbers; a list that cannot be read, or that is
    /// mostly malformed, is an error naming the file and its first bad line.
    pub fn load_reputation(&mut self) -> Result<(), crate::reputation::ReputationError> {
        let started = std::time::Instant::now();
        let (mut set, reports) = crate::reputation::Reputation::load(&self.reputation.lists)?;
        set.shrink();
        for (spec, r) in self.reputation.lists.iter().zip(&reports) {
            tracing::info!(
                list = spec.display_name(),
                path = %spec.path.display(),
                format = ?r.format,
                entries = r.entries,
                duplicates = r.duplicates,
                ignored = r.ignored,
                malformed = r.bad_lines,
                "reputation list loaded"
            );
            for b in &r.first_bad {
                tracing::warn!(
                    "reputation list {}: line {}: {}; skipped",
                    spec.path.display(),
                    b.line,
                    b.reason
                );
            }
            if r.bad_lines > r.first_bad.len() as u64 {
                tracing::warn!(
                    "reputation list {}: {} more malformed lines skipped",
                    spec.path.display(),
                    r.bad_lines - r.first_bad.len() as u64
                );
            }
        }
        if !set.is_empty() {
            tracing::info!(
                entries = set.len(),
                memory_mib = format!("{:.1}", set.memory_bytes() as f64 / (1 << 20) as f64),
                secs = format!("{:.2}", started.elapsed().as_secs_f64()),
                "reputation lists ready"
            );
        }
        self.reputation.loaded = LoadedReputation(std::sync::Arc::new(set));
        Ok(())
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_owned(), message },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: PathBuf::from("<text>"), message: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks value ranges and relations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.capture.dns_ports.is_empty() {
            return Err(invalid("capture.dns_ports", "needs at least one port"));
        }
        let p = &self.pipeline;
        if p.workers > 1024 {
            return Err(invalid("pipeline.workers", "at most 1024"));
        }
        if p.shards > 1024 {
            return Err(invalid("pipeline.shards", "at most 1024"));
        }
        if !(1..=4096).contains(&p.channel_batches) {
            return Err(invalid("pipeline.channel_batches", "must be 1..=4096"));
        }
        if !(1..=65_536).contains(&p.batch_frames) {
            return Err(invalid("pipeline.batch_frames", "must be 1..=65536"));
        }
        if self.tcp.max_flows == 0 {
            return Err(invalid("tcp.max_flows", "must be at least 1"));
        }
        if self.tcp.max_buffered_bytes < 65_537 {
            return Err(invalid("tcp.max_buffered_bytes", "must hold one largest message (65537 bytes)"));
        }
        if self.tcp.idle_timeout_secs == 0 {
            return Err(invalid("tcp.idle_timeout_secs", "must be at least 1"));
        }
        let s = &self.state;
        if s.max_domains < 16 {
            return Err(invalid("state.max_domains", "must be at least 16"));
        }
        if s.max_client_domains < 16 {
            return Err(invalid("state.max_client_domains", "must be at least 16"));
        }
        if s.short_window_secs == 0 {
            return Err(invalid("state.short_window_secs", "must be at least 1"));
        }
        if s.long_window_secs < s.short_window_secs {
            return Err(invalid("state.long_window_secs", "must be at least state.short_window_secs"));
        }
        if !(8..=4096).contains(&s.sketch_k) {
            return Err(invalid("state.sketch_k", "must be 8..=4096"));
        }
        if s.max_pending_queries < 16 {
            return Err(invalid("state.max_pending_queries", "must be at least 16"));
        }
        if s.transaction_timeout_secs == 0 {
            return Err(invalid("state.transaction_timeout_secs", "must be at least 1"));
        }
        if self.metrics.top_suspects > 50 {
            return Err(invalid("metrics.top_suspects", "at most 50 (it is a label set)"));
        }
        if self.metrics.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("metrics.listen", format!("`{}` is not an ADDR:PORT", self.metrics.listen)));
        }
        let l = &self.live;
        if !["drv", "skb", "auto"].contains(&l.attach.as_str()) {
            return Err(invalid("live.attach", format!("`{}`: expected drv, skb or auto", l.attach)));
        }
        if !["zero-copy", "copy", "auto"].contains(&l.bind.as_str()) {
            return Err(invalid("live.bind", format!("`{}`: expected zero-copy, copy or auto", l.bind)));
        }
        if !["pass", "drop"].contains(&l.default_action.as_str()) {
            return Err(invalid(
                "live.default_action",
                format!("`{}`: expected pass or drop", l.default_action),
            ));
        }
        if !matches!(l.frame_size, 2048 | 4096) {
            return Err(invalid("live.frame_size", "must be 2048 or 4096"));
        }
        if !l.ring_size.is_power_of_two() || l.ring_size < 64 {
            return Err(invalid("live.ring_size", "must be a power of two, at least 64"));
        }
        if l.frame_count < 2 * l.ring_size {
            return Err(invalid("live.frame_count", "must cover the fill and RX rings (2 x ring_size)"));
        }
        let o = &self.outputs;
        for u in &o.syslog {
            if let Err(e) = u.parse::<Target>() {
                return Err(invalid("outputs.syslog", e.to_string()));
            }
        }
        if !(1..=1_000_000).contains(&o.syslog_queue) {
            return Err(invalid("outputs.syslog_queue", "must be 1..=1000000"));
        }
        if o.syslog_drain_secs > 3600 {
            return Err(invalid("outputs.syslog_drain_secs", "at most 3600"));
        }
        let e = &self.export;
        for (i, c) in e.collectors.iter().enumerate() {
            if std::net::ToSocketAddrs::to_socket_addrs(c.as_str()).is_err() {
                return Err(invalid("export.collectors", format!("entry {i} `{c}` is not a HOST:PORT")));
            }
        }
        if !(8..=255).contains(&e.qname_bytes) {
            return Err(invalid("export.qname_bytes", "must be 8..=255"));
        }
        if !(576..=9000).contains(&e.mtu) {
            return Err(invalid("export.mtu", "must be 576..=9000"));
        }
        if e.template_packets == 0 || e.template_secs == 0 {
            return Err(invalid("export.template_packets", "template refresh counts must be at least 1"));
        }
        if e.min_score > 100 {
            return Err(invalid("export.min_score", "must be 0..=100"));
        }
        if e.queue_records < 16 {
            return Err(invalid("export.queue_records", "must be at least 16"));
        }
        let d = &self.detect;
        if !(1..=100).contains(&d.low_score) {
            return Err(invalid("detect.low_score", "must be 1..=100"));
        }
        if d.high_score < d.low_score || d.high_score > 100 {
            return Err(invalid("detect.high_score", "must be between detect.low_score and 100"));
        }
        for (key, v) in [
            ("detect.encoded_ratio", d.encoded_ratio),
            ("detect.high_entropy_ratio", d.high_entropy_ratio),
            ("detect.long_names_ratio", d.long_names_ratio),
            ("detect.non_address_ratio", d.non_address_ratio),
            ("detect.nxdomain_ratio", d.nxdomain_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(key, "must be between 0 and 1"));
            }
        }
        if d.beacon_cv <= 0.0 {
            return Err(invalid("detect.beacon_cv", "must be positive"));
        }
        if d.subdomain_bytes_high < d.subdomain_bytes_low {
            return Err(invalid(
                "detect.subdomain_bytes_high",
                "must be at least detect.subdomain_bytes_low",
            ));
        }
        for (i, l) in self.reputation.lists.iter().enumerate() {
            if l.path.as_os_str().is_empty() {
                return Err(invalid("reputation.lists", format!("entry {i} has no path")));
            }
            if l.column > 0 && l.format != crate::reputation::ListFormat::Csv {
                return Err(invalid(
                    "reputation.lists",
                    format!("entry {i}: `column` is for format = \"csv\""),
                ));
            }
        }
        let mut names: Vec<String> = self.reputation.lists.iter().map(|l| l.display_name()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid("reputation.lists", format!("two lists are named `{}`: set `name`", w[0])));
        }
        for (i, s) in self.allowlist.extra.iter().enumerate() {
            if s.trim().trim_end_matches('.').is_empty() || s.contains(char::is_whitespace) {
                return Err(invalid("allowlist.extra", format!("entry {i} `{s}` is not a domain suffix")));
            }
        }
        Ok(())
    }

    /// Workers to run, resolving 0 to the number of cores.
    pub fn workers(&self) -> usize {
        match self.pipeline.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Shards to run, resolving 0 to the number of workers.
    pub fn shards(&self) -> usize {
        match self.pipeline.shards {
            0 => self.workers(),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_default() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn example_file_parses_and_equals_defaults() {
        let text = include_str!("../../dnsentry.example.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[detect]\nbogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::parse("[state]\nmax_domains = 3\n").unwrap_err().to_string();
        assert!(e.contains("state.max_domains"), "{e}");
        let e = Config::parse("[detect]\nhigh_score = 10\n").unwrap_err().to_string();
        assert!(e.contains("detect.high_score"), "{e}");
        let e = Config::parse("[detect]\nlow_score = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("low_score"), "{e}");
        let e = Config::parse("[capture]\ndns_ports = [70000]\n").unwrap_err().to_string();
        assert!(e.contains("dns_ports"), "{e}");
        assert!(Config::parse("not toml [").is_err());
        let e = Config::parse("[outputs]\nsyslog = [\"siem:514\"]\n").unwrap_err().to_string();
        assert!(e.contains("outputs.syslog") && e.contains("siem:514") && e.contains("tcp://"), "{e}");
        let e = Config::parse("[outputs]\nsyslog_facility = \"local9\"\n").unwrap_err().to_string();
        assert!(e.contains("local9"), "{e}");
        let e = Config::parse("[outputs]\nsyslog_queue = 0\n").unwrap_err().to_string();
        assert!(e.contains("outputs.syslog_queue"), "{e}");
    }
}
