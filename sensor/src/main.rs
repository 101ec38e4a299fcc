//! The `dnsentry` command line: thin glue over the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use dnsentry::config::{Config, ExportFormat};
use dnsentry::detect::Severity;
use dnsentry::metrics::server::MetricsServer;
use dnsentry::metrics::Telemetry;
use dnsentry::output::alarm::AlarmWriter;
use dnsentry::output::netflow::exporter::Exporter;
use dnsentry::output::sinks::AlarmSinks;
use dnsentry::pipeline::ReplayOptions;

/// dnsentry watches DNS on a mirror (SPAN/TAP) port and raises alarms on DNS tunneling and
/// exfiltration: iodine, dns2tcp, dnscat2, C2 over TXT, slow hex/base32 leaks.
///
/// Alarms are JSON lines (schema: docs/alarms.md); the run summary goes to stderr.
#[derive(Parser, Debug)]
#[command(name = "dnsentry", version, about, long_about)]
struct Cli {
    /// Log level filter (error, warn, info, debug, trace) or a tracing filter directive.
    #[arg(long, global = true, default_value = "warn", env = "DNSENTRY_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay pcap/pcapng captures (plain or .gz) through the detection pipeline, using capture
    /// timestamps as the clock. Link types: Ethernet, Linux SLL/SLL2 (tcpdump -i any), raw IP.
    ///
    /// Exit status: 0 when all files were read, 1 when a file was unreadable or corrupt (frames
    /// before the damage are still processed), 2 on a usage or configuration error.
    Replay(ReplayArgs),
    /// Capture live from a network interface (a SPAN/TAP mirror port) with XDP and AF_XDP
    /// sockets, one per RX queue, and run the same detection as replay. Needs root (or CAP_BPF,
    /// CAP_NET_ADMIN, CAP_NET_RAW, CAP_PERFMON). Stops on SIGINT/SIGTERM: the XDP program is
    /// detached, pending alarms flushed and the summary printed. SIGHUP re-reads the config and
    /// lists (state kept) and reopens the alarm file; SIGUSR1 only reopens the alarm file (what
    /// logrotate sends). Metrics are always served (metrics.listen, default 127.0.0.1:9853).
    Live(LiveArgs),
    /// Evaluate detection on labelled captures (LABELS.tsv or a datasets MANIFEST.tsv): dnsentry
    /// and re-implementations of deployed rules (Elastic, RITA, Zeek, FlowPro) on the same
    /// records, as Markdown. Exit status 1 when a detection target is missed.
    Eval {
        /// Label files; capture paths in them are relative to each file.
        #[arg(long = "labels", required = true)]
        labels: Vec<PathBuf>,
        /// Configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Write the report into FILE between `<!-- eval:begin -->` and `<!-- eval:end -->`
        /// (the rest of the file is kept); default stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Learn a baseline from attack-free captures: the registered domains that naturally carry high
    /// information (they would alarm). Pass the file to `--baseline` (or `detect.baseline`) to
    /// report them as `info` instead of alarming; nothing is hidden.
    Learn {
        /// Attack-free captures.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The baseline file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Configuration file.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and report every problem with its key.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Write the manual page (roff) of dnsentry and each subcommand into DIR (the Debian package
    /// ships them).
    #[command(hide = true)]
    Manpages {
        /// Output directory.
        dir: PathBuf,
    },
}

/// Options replay and live share: configuration, alarm output, baseline, export.
#[derive(clap::Args, Debug, Clone)]
struct CommonArgs {
    /// Configuration file (TOML; see dnsentry.example.toml). Defaults apply without one.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Write alarms to FILE (appended) instead of stdout. `live` reopens it on SIGHUP (after
    /// logrotate renamed it).
    #[arg(long, value_name = "FILE")]
    alarms: Option<PathBuf>,
    /// Also send alarms to syslog at udp://HOST:PORT or tcp://HOST:PORT (RFC 5424, the alarm JSON
    /// as MSG; octet counting on TCP). Repeat for several; adds to the config's outputs.syslog.
    /// With a syslog destination and no --alarms, nothing is written to stdout.
    #[arg(long, value_name = "URL")]
    syslog: Vec<String>,
    /// Only output alarms of at least this severity.
    #[arg(long, value_enum, default_value_t = MinSeverity::Info)]
    min_severity: MinSeverity,
    /// Do not print the summary on stderr.
    #[arg(long)]
    no_summary: bool,
    /// Learned baseline file (`dnsentry learn`): its domains alarm as info only.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Export DNS transactions to a NetFlow v9 / IPFIX collector at HOST:PORT (UDP); repeat for
    /// several collectors. Adds to the config's export.collectors.
    #[arg(long, value_name = "HOST:PORT")]
    netflow: Vec<String>,
    /// Export format (default: the config's export.format, v9).
    #[arg(long, value_enum)]
    export_format: Option<ExportFormatArg>,
    /// A list of known-bad domains, `[CATEGORY:]FILE`: one domain per line, a hosts file, an RPZ
    /// zone or abuse.ch-style CSV (told apart by their first lines). A lookup of a listed domain,
    /// or of a name under it, or an answer that CNAMEs to one, raises a `reputation` alarm.
    /// CATEGORY: malware (default), c2, phishing, spam, scam, cryptomining, adware, tracking or
    /// other. Repeat for several lists; adds to the config's [[reputation.lists]].
    #[arg(long, value_name = "[CATEGORY:]FILE", value_parser = dnsentry::reputation::ListSpec::from_arg)]
    reputation: Vec<dnsentry::reputation::ListSpec>,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// Capture files, processed in the order given.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Decode workers (default: config pipeline.workers, 0 = one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Aggregation shards (default: config pipeline.shards, 0 = one per worker).
    #[arg(long)]
    shards: Option<usize>,
    /// Serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9853) while replaying.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Keep serving metrics this many seconds after the replay ends, so a scraper reads the
    /// final values.
    #[arg(long, value_name = "SECS", default_value_t = 0, requires = "metrics_listen")]
    metrics_linger: u64,
    /// Pace the replay at this multiple of capture time (1 = real time, 10 = ten times faster);
    /// 0 replays as fast as possible. Results are the same at any speed.
    #[arg(long, value_name = "FACTOR", default_value_t = 0.0)]
    speed: f64,
}

#[derive(clap::Args, Debug, Clone)]
struct LiveArgs {
    /// The interface to capture on (the mirror port).
    #[arg(long, short)]
    iface: String,
    #[command(flatten)]
    common: CommonArgs,
    /// XDP attach mode: drv (native), skb (generic) or auto (drv, then skb) [config: live.attach].
    #[arg(long, value_parser = ["drv", "skb", "auto"])]
    attach: Option<String>,
    /// AF_XDP bind mode: zero-copy, copy or auto (zero-copy, then copy) [config: live.bind].
    #[arg(long, value_parser = ["zero-copy", "copy", "auto"])]
    bind: Option<String>,
    /// Frames that are not DNS: pass (inline host) or drop (dedicated mirror port)
    /// [config: live.default_action].
    #[arg(long, value_parser = ["pass", "drop"])]
    default_action: Option<String>,
    /// RX queues to capture (default: all of the interface's) [config: live.queues].
    #[arg(long)]
    queues: Option<u32>,
    /// Cores to pin capture workers to, comma-separated, one per queue [config: live.cores].
    #[arg(long, value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    /// Cores to pin aggregation shards to, comma-separated, one per shard; keep them apart from
    /// the capture workers' cores so a busy shard never takes a ring's core [config:
    /// live.shard_cores].
    #[arg(long, value_delimiter = ',')]
    shard_cores: Option<Vec<usize>>,
    /// Aggregation shards (default: config pipeline.shards, 0 = one per queue).
    #[arg(long)]
    shards: Option<usize>,
    /// Serve metrics on ADDR:PORT instead of the config's metrics.listen.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Stop after this many seconds (0: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    duration: u64,
    /// Run as this user once the program is attached, the sockets bound and the outputs open;
    /// every capability is cleared. Default: `dnsentry` if that user exists, else `nobody`;
    /// `root` keeps root [config: live.user].
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExportFormatArg {
    V9,
    Ipfix,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum MinSeverity {
    Info,
    Low,
    High,
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let mut cfg = load_config(args.common.config.as_ref())?;
    if let Some(w) = args.workers {
        cfg.pipeline.workers = w;
    }
    if let Some(s) = args.shards {
        cfg.pipeline.shards = s;
    }
    args.common.apply(&mut cfg);
    cfg.validate()?;
    cfg.load_baseline()?;
    cfg.load_reputation()?;
    for f in &args.files {
        // Regular files are mapped; pipes (`/dev/stdin`, `<(gzip -dc f.gz)`) are streamed.
        anyhow::ensure!(f.exists() && !f.is_dir(), "{}: no such capture file", f.display());
    }
    let mut sinks = args.common.sinks(&cfg, None)?;
    tracing::info!(
        "{}",
        dnsentry::state::budget::MemoryBudget::of(&cfg, cfg.workers(), cfg.shards()).render()
    );

    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let bar_thread = std::io::stderr().is_terminal().then(|| {
        let total: u64 = args.files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            while !done.load(Ordering::Relaxed) {
                bar.set_position(progress.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        })
    });

    anyhow::ensure!(args.speed >= 0.0 && args.speed.is_finite(), "--speed must be a non-negative number");
    let telemetry = Arc::new(Telemetry::new(cfg.workers(), cfg.shards(), cfg.metrics.top_suspects));
    telemetry.set_reputation(&cfg.reputation.loaded.0);
    telemetry.set_alarm_outputs(sinks.syslog_stats());
    let server = match &args.metrics_listen {
        Some(addr) => {
            let s = MetricsServer::start(addr, telemetry.clone())?;
            tracing::info!("serving metrics on http://{}/metrics", s.addr);
            Some(s)
        }
        None => None,
    };
    let exporter = match cfg.export.collectors.is_empty() {
        true => None,
        // Replay is not capture: it waits for the exporter rather than dropping records.
        false => Some(Exporter::start(&cfg.export, true)?),
    };
    if let Some((e, _)) = &exporter {
        if let Ok(mut n) = telemetry.netflow.lock() {
            *n = Some(e.stats.clone());
        }
    }
    let (exporter, export_queue) = match exporter {
        Some((e, q)) => (Some(e), Some(q)),
        None => (None, None),
    };
    let opts = ReplayOptions {
        progress,
        telemetry: server.as_ref().map(|_| telemetry.clone()),
        speed: args.speed,
        export: export_queue,
    };
    let failures = telemetry.clone();
    let report = dnsentry::pipeline::replay(&cfg, &args.files, &opts, |a| {
        sinks.emit(&a);
        failures.alarm_write_errors.store(sinks.file_failed(), Ordering::Relaxed);
    });
    let sink_report = sinks.finish();
    done.store(true, Ordering::Relaxed);
    if let Some(t) = bar_thread {
        let _ = t.join();
    }
    drop(opts);
    let export_stats = exporter.map(Exporter::finish);
    if !args.common.no_summary {
        eprint!("{}", dnsentry::output::summary::render(&report, sink_report.file_failed));
        if let Some(s) = &export_stats {
            print_export_summary(s);
        }
    }
    let lost = print_sink_summary(&sink_report, !args.common.no_summary);
    if server.is_some() && args.metrics_linger > 0 {
        tracing::info!("replay done; serving metrics for {} more seconds", args.metrics_linger);
        std::thread::sleep(Duration::from_secs(args.metrics_linger));
    }
    drop(server);
    if lost > 0 {
        eprintln!("dnsentry: {lost} alarms could not be written or sent (see the summary); exit status 1");
    }
    Ok(if report.file_errors.is_empty() && lost == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn min_severity(m: MinSeverity) -> Severity {
    match m {
        MinSeverity::Info => Severity::Info,
        MinSeverity::Low => Severity::Low,
        MinSeverity::High => Severity::High,
    }
}

impl CommonArgs {
    /// Applies the command-line overrides shared by replay and live to the config.
    fn apply(&self, cfg: &mut Config) {
        cfg.export.collectors.extend(self.netflow.iter().cloned());
        match self.export_format {
            Some(ExportFormatArg::V9) => cfg.export.format = ExportFormat::V9,
            Some(ExportFormatArg::Ipfix) => cfg.export.format = ExportFormat::Ipfix,
            None => {}
        }
        if let Some(b) = &self.baseline {
            cfg.detect.baseline = b.display().to_string();
        }
        cfg.reputation.lists.extend(self.reputation.iter().cloned());
        cfg.outputs.syslog.extend(self.syslog.iter().cloned());
    }

    /// The alarm outputs: the file (reopened when `reopen` is set) or stdout, and the syslog
    /// destinations. stdout only when nothing else is configured.
    fn sinks(&self, cfg: &Config, reopen: Option<Arc<AtomicBool>>) -> Result<AlarmSinks> {
        use dnsentry::output::syslog::{Header, SyslogOutput, SyslogSettings, Target};
        let file = match &self.alarms {
            Some(p) => {
                Some(AlarmWriter::file(p, reopen).with_context(|| format!("cannot open {}", p.display()))?)
            }
            None if cfg.outputs.syslog.is_empty() => Some(AlarmWriter::new(Box::new(std::io::stdout()))),
            None => None,
        };
        let o = &cfg.outputs;
        let settings = SyslogSettings {
            facility: o.syslog_facility,
            queue: o.syslog_queue,
            drain: Duration::from_secs(o.syslog_drain_secs),
        };
        let mut syslog = Vec::new();
        for url in &o.syslog {
            let target: Target = url.parse()?;
            syslog.push(SyslogOutput::start(target, &settings).context("cannot start the syslog output")?);
        }
        Ok(AlarmSinks::new(min_severity(self.min_severity), file, syslog, Header::new(o.syslog_facility)))
    }
}

/// The summary lines of the alarm outputs; returns the alarms lost (file failures and syslog
/// drops).
fn print_sink_summary(r: &dnsentry::output::sinks::SinkReport, print: bool) -> u64 {
    if print {
        if r.file_reopened > 0 {
            eprintln!("  alarm file:       reopened {} times (SIGHUP)", r.file_reopened);
        }
        for s in &r.syslog {
            eprintln!(
                "  {}: {} alarms sent, {} dropped, {} connect/send errors",
                s.name, s.sent, s.dropped, s.errors
            );
        }
    }
    r.file_failed + r.syslog.iter().map(|s| s.dropped).sum::<u64>()
}

fn print_export_summary(s: &dnsentry::output::netflow::exporter::ExportStats) {
    let packets: Vec<String> = s.collectors.iter().map(|c| c.0.to_string()).collect();
    let errors: u64 = s.collectors.iter().map(|c| c.1).sum();
    eprintln!(
        "  netflow:          {} records sent, {} dropped, packets per collector [{}], {} send errors",
        s.records_sent,
        s.records_dropped,
        packets.join(", "),
        errors
    );
}

/// The live configuration: the file (if any), then the command-line overrides, validated and
/// with its baseline loaded. Used at start and again for each SIGHUP reload.
fn live_config(args: &LiveArgs) -> Result<Config> {
    let mut cfg = load_config(args.common.config.as_ref())?;
    let l = &mut cfg.live;
    if let Some(v) = &args.attach {
        l.attach = v.clone();
    }
    if let Some(v) = &args.bind {
        l.bind = v.clone();
    }
    if let Some(v) = &args.default_action {
        l.default_action = v.clone();
    }
    if let Some(q) = args.queues {
        l.queues = q;
    }
    if let Some(c) = &args.cores {
        l.cores = c.clone();
    }
    if let Some(c) = &args.shard_cores {
        l.shard_cores = c.clone();
    }
    if let Some(s) = args.shards {
        cfg.pipeline.shards = s;
    }
    if let Some(m) = &args.metrics_listen {
        cfg.metrics.listen = m.clone();
    }
    if let Some(u) = &args.user {
        cfg.live.user = u.clone();
    }
    args.common.apply(&mut cfg);
    cfg.validate()?;
    cfg.load_baseline()?;
    cfg.load_reputation()?;
    Ok(cfg)
}

/// SIGHUP: re-reads the config (and baseline) and publishes its detection settings and allow-lists
/// to the running workers and shards; their state is kept. A bad file keeps the running settings.
fn reload_config(
    args: &LiveArgs,
    running: &Config,
    handle: &dnsentry::reload::ReloadHandle,
    telemetry: &Telemetry,
) {
    match live_config(args) {
        Ok(mut new) => {
            // Values the running sensor derived at start, not read from the file.
            new.export.ifindex = running.export.ifindex;
            if new.pipeline.shards == 0 {
                new.pipeline.shards = running.pipeline.shards;
            }
            let restart = dnsentry::reload::needs_restart(running, &new);
            if !restart.is_empty() {
                tracing::warn!(
                    sections = ?restart,
                    "reload: these sections changed but take effect only on restart; running values kept"
                );
            }
            handle.publish(&new);
            telemetry.count_reload(dnsentry::metrics::ReloadOutcome::Success);
            telemetry.set_reputation(&new.reputation.loaded.0);
            tracing::warn!(
                generation = handle.generation(),
                baseline_domains = new.detect.learned.len(),
                allowlist_extra = new.allowlist.extra.len(),
                reputation_lists = new.reputation.lists.len(),
                reputation_entries = new.reputation.loaded.0.len(),
                "configuration reloaded: detection settings, allow-lists, baseline and reputation lists"
            );
        }
        Err(e) => {
            telemetry.count_reload(dnsentry::metrics::ReloadOutcome::Failure);
            tracing::error!("configuration reload failed, the running configuration is kept: {e:#}");
        }
    }
}

fn live(args: LiveArgs) -> Result<ExitCode> {
    use dnsentry::capture::FrameSource;
    use dnsentry::live::{LiveOptions, XskSource};

    let mut cfg = live_config(&args)?;
    // Resolved before anything is attached, so a wrong name fails at once.
    let account = dnsentry::privilege::resolve(&cfg.live.user)?;
    // Signals first: a stop or a reload during set-up must not kill the process mid-attach
    // (SIGHUP's default action would, and systemd would not restart it).
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    // Registered before the reload flag: once a reload is logged, the alarm file's next write
    // reopens it.
    let reopen = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reopen.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone())?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    let l = cfg.live.clone();
    let dnsentry::live::Capture { prog, sockets, .. } = dnsentry::live::Capture::open(&args.iface, &cfg)?;
    if cfg.pipeline.shards == 0 {
        cfg.pipeline.shards = sockets.len().max(1);
    }

    let telemetry = Arc::new(Telemetry::new(sockets.len(), cfg.shards(), cfg.metrics.top_suspects));
    telemetry.set_reputation(&cfg.reputation.loaded.0);
    let server = MetricsServer::start(&cfg.metrics.listen, telemetry.clone())?;
    tracing::warn!("serving metrics on http://{}/metrics", server.addr);
    cfg.export.ifindex = prog.ifindex();
    let (exporter, export_queue) = match cfg.export.collectors.is_empty() {
        true => (None, None),
        false => {
            let (e, q) = Exporter::start(&cfg.export, false)?;
            if let Ok(mut n) = telemetry.netflow.lock() {
                *n = Some(e.stats.clone());
            }
            (Some(e), Some(q))
        }
    };

    // Opened before the privilege drop (the file may be root's); reopened after it, on SIGHUP, as
    // the unprivileged user: its directory must be that user's (docs/deploy.md).
    let mut sinks = args.common.sinks(&cfg, Some(reopen))?;
    telemetry.set_alarm_outputs(sinks.syslog_stats());

    // Everything privileged is done: the program is attached, the sockets are bound, the metrics
    // listener and the alarm file are open. The rest runs without root or capabilities.
    dnsentry::privilege::drop_after_setup(account.as_ref())?;

    let reload = dnsentry::reload::ReloadHandle::new(&cfg);
    let prog = Arc::new(std::sync::Mutex::new(prog));

    let monitor = {
        let (reload, running, args, t) = (reload.clone(), cfg.clone(), args.clone(), telemetry.clone());
        let duration = (args.duration > 0).then(|| Duration::from_secs(args.duration));
        dnsentry::live::spawn_monitor(
            prog.clone(),
            telemetry.clone(),
            stop.clone(),
            hup,
            duration,
            move || reload_config(&args, &running, &reload, &t),
        )?
    };

    let failures = telemetry.clone();
    let sources: Vec<Box<dyn FrameSource>> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, s)| Box::new(XskSource::new(s, i)) as Box<dyn FrameSource>)
        .collect();
    let opts = LiveOptions {
        telemetry: telemetry.clone(),
        export: export_queue,
        stop: stop.clone(),
        cores: l.cores.clone(),
        shard_cores: l.shard_cores.clone(),
        reload: Some(reload),
    };
    let detach = prog.clone();
    let report = dnsentry::live::run(
        &cfg,
        sources,
        opts,
        |a| {
            sinks.emit(&a);
            failures.alarm_write_errors.store(sinks.file_failed(), Ordering::Relaxed);
        },
        move || {
            if let Ok(mut p) = detach.lock() {
                p.detach();
            }
        },
    );
    let _ = monitor.join();
    let export_stats = exporter.map(Exporter::finish);
    let sink_report = sinks.finish();
    if !args.common.no_summary {
        eprint!(
            "{}",
            dnsentry::output::summary::render(&report, sink_report.file_failed)
                .replace("replay summary", "live summary")
        );
        if let Ok(p) = prog.lock() {
            if let Ok(c) = p.counters() {
                let names = dnsentry::capture::xdp::counter_names();
                let parts: Vec<String> = names.iter().zip(c).map(|(n, v)| format!("{n} {v}")).collect();
                eprintln!("  xdp:              {}", parts.join(", "));
            }
        }
        eprintln!("  shard drops:      {}", report.shard_drops);
        if let Some(s) = &export_stats {
            print_export_summary(s);
        }
    }
    print_sink_summary(&sink_report, !args.common.no_summary);
    drop(server);
    Ok(ExitCode::SUCCESS)
}

fn learn(files: &[PathBuf], output: &PathBuf, config: Option<&PathBuf>) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let found = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    let report = dnsentry::pipeline::replay(&cfg, files, &Default::default(), |a| {
        if let (Some(d), true) = (&a.domain, a.severity >= Severity::Low) {
            if let Ok(mut f) = found.lock() {
                let e = f.entry(d.clone()).or_insert(0);
                *e = (*e).max(a.score);
            }
        }
    });
    for e in &report.file_errors {
        eprintln!("dnsentry: {e}");
    }
    let found = found.into_inner().unwrap_or_default();
    let mut text = String::from(
        "# dnsentry learned baseline: registered domains that alarmed on attack-free traffic.\n\
         # Their alarms are reported as info (reason learned_baseline). Review before use.\n",
    );
    for (d, score) in &found {
        text.push_str(&format!("{d}  # max score {score}\n"));
    }
    std::fs::write(output, text).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("dnsentry learn: {} domains written to {}", found.len(), output.display());
    Ok(if report.file_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn eval(label_files: &[PathBuf], config: Option<&PathBuf>, out: Option<&PathBuf>) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let mut results = Vec::new();
    for lf in label_files {
        let labels =
            dnsentry::eval::read_labels(lf).with_context(|| format!("cannot read {}", lf.display()))?;
        for l in labels {
            anyhow::ensure!(l.file.is_file(), "{}: capture {} not found", lf.display(), l.file.display());
            eprintln!("eval: {}", l.file.display());
            results.push(dnsentry::eval::evaluate(&cfg, &l));
        }
    }
    let report = dnsentry::eval::render(&results);
    match out {
        None => print!("{report}"),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (begin, end) = ("<!-- eval:begin -->", "<!-- eval:end -->");
            let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
                anyhow::bail!("{} has no {begin} ... {end} block", path.display());
            };
            let new = format!("{}{begin}\n{report}{}", &text[..a], &text[b..]);
            std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let missed = dnsentry::eval::check_targets(&results);
    for m in &missed {
        eprintln!("eval: target missed: {m}");
    }
    Ok(if missed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `dnsentry.1` and `dnsentry-SUBCOMMAND.1` for every visible subcommand.
fn manpages(dir: &std::path::Path) -> Result<ExitCode> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command();
    let write = |name: &str, c: clap::Command| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(c).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dnsentry-{}", sub.get_name());
        // A process that exits right after: leaking the few names is fine.
        let static_name: &'static str = name.clone().leak();
        write(&name, sub.clone().name(static_name))?;
    }
    write("dnsentry", cmd)?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.command {
        Command::Replay(args) => replay(args),
        Command::Live(args) => live(args),
        Command::Eval { labels, config, out } => eval(&labels, config.as_ref(), out.as_ref()),
        Command::Learn { files, output, config } => learn(&files, &output, config.as_ref()),
        Command::CheckConfig { file } => check_config(&file),
        Command::Manpages { dir } => manpages(&dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dnsentry: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `check-config`: the file parses and validates, and its lists and baseline load.
fn check_config(file: &std::path::Path) -> Result<ExitCode> {
    let mut cfg = Config::load(file)?;
    cfg.load_baseline()?;
    cfg.load_reputation()?;
    println!("{}: ok", file.display());
    let b = dnsentry::state::budget::MemoryBudget::of(&cfg, cfg.workers(), cfg.shards());
    println!("{} ({} workers, {} shards)", b.render(), cfg.workers(), cfg.shards());
    let rep = &cfg.reputation.loaded.0;
    for l in rep.lists() {
        println!(
            "reputation list {} ({}): {} domains, category {}",
            l.name,
            l.path.display(),
            l.entries,
            l.category.name()
        );
    }
    if !rep.is_empty() {
        println!(
            "reputation: {} domains in {:.1} MiB",
            rep.len(),
            rep.memory_bytes() as f64 / (1 << 20) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
