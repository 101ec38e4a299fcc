//! The `dnsentry` command line: thin glue over the library.

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
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
    /// Validate a configuration file and report every problem with its key.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// Capture files, processed in the order given.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Configuration file (TOML; see dnsentry.example.toml). Defaults apply without one.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Write alarms to FILE (appended) instead of stdout.
    #[arg(long, value_name = "FILE")]
    alarms: Option<PathBuf>,
    /// Only output alarms of at least this severity.
    #[arg(long, value_enum, default_value_t = MinSeverity::Info)]
    min_severity: MinSeverity,
    /// Decode workers (default: config pipeline.workers, 0 = one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Aggregation shards (default: config pipeline.shards, 0 = one per worker).
    #[arg(long)]
    shards: Option<usize>,
    /// Do not print the summary on stderr.
    #[arg(long)]
    no_summary: bool,
    /// Serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9853) while replaying.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Keep serving metrics this many seconds after the replay ends, so a scraper reads the
    /// final values.
    #[arg(long, value_name = "SECS", default_value_t = 0, requires = "metrics_listen")]
    metrics_linger: u64,
    /// Export DNS transactions to a NetFlow v9 / IPFIX collector at HOST:PORT (UDP); repeat for
    /// several collectors. Adds to the config's export.collectors.
    #[arg(long, value_name = "HOST:PORT")]
    netflow: Vec<String>,
    /// Export format (default: the config's export.format, v9).
    #[arg(long, value_enum)]
    export_format: Option<ExportFormatArg>,
    /// Pace the replay at this multiple of capture time (1 = real time, 10 = ten times faster);
    /// 0 replays as fast as possible. Results are the same at any speed.
    #[arg(long, value_name = "FACTOR", default_value_t = 0.0)]
    speed: f64,
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
    let mut cfg = load_config(args.config.as_ref())?;
    if let Some(w) = args.workers {
        cfg.pipeline.workers = w;
    }
    if let Some(s) = args.shards {
        cfg.pipeline.shards = s;
    }
    cfg.export.collectors.extend(args.netflow.iter().cloned());
    match args.export_format {
        Some(ExportFormatArg::V9) => cfg.export.format = ExportFormat::V9,
        Some(ExportFormatArg::Ipfix) => cfg.export.format = ExportFormat::Ipfix,
        None => {}
    }
    cfg.validate()?;
    for f in &args.files {
        anyhow::ensure!(f.is_file(), "{}: no such capture file", f.display());
    }
    let out: Box<dyn std::io::Write + Send> = match &args.alarms {
        Some(p) => Box::new(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let min = match args.min_severity {
        MinSeverity::Info => Severity::Info,
        MinSeverity::Low => Severity::Low,
        MinSeverity::High => Severity::High,
    };

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
    let mut writer = AlarmWriter::new(out);
    let failures = telemetry.clone();
    let report = dnsentry::pipeline::replay(&cfg, &args.files, &opts, |a| {
        if a.severity >= min {
            writer.write(&a);
            failures.alarm_write_errors.store(writer.failed, Ordering::Relaxed);
        }
    });
    done.store(true, Ordering::Relaxed);
    if let Some(t) = bar_thread {
        let _ = t.join();
    }
    drop(opts);
    let export_stats = exporter.map(Exporter::finish);
    if !args.no_summary {
        let failed = telemetry.alarm_write_errors.load(Ordering::Relaxed);
        eprint!("{}", dnsentry::output::summary::render(&report, failed));
        if let Some(s) = &export_stats {
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
    }
    if server.is_some() && args.metrics_linger > 0 {
        tracing::info!("replay done; serving metrics for {} more seconds", args.metrics_linger);
        std::thread::sleep(Duration::from_secs(args.metrics_linger));
    }
    drop(server);
    Ok(if report.file_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.command {
        Command::Replay(args) => replay(args),
        Command::CheckConfig { file } => Config::load(&file)
            .map(|_| {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dnsentry: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
