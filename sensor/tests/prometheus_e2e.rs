//! End to end with a real Prometheus (Debian package, loopback only): dnsentry replays captures
//! with its metrics endpoint on; Prometheus scrapes it with the example config and the shipped
//! alert rules. Through Prometheus's HTTP API: the catalogue's series exist with the values the
//! summary printed, every dashboard query evaluates, and the tunnel alert fires. Also: the rule unit
//! tests (`promtool test rules`) and `promtool check metrics` on a scrape.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// True if the Prometheus tools are installed; in CI they must be.
fn have_prometheus() -> bool {
    let ok = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success())
        && Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "prometheus/promtool not installed");
        eprintln!("skipping: prometheus not installed (cargo xtask setup)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child when the test ends, passed or not.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(port: u16, q: &str) -> serde_json::Value {
    let body = http_get(port, &format!("/api/v1/query?query={}", encode(q))).expect("prometheus answers");
    serde_json::from_str(&body).expect("json")
}

fn scalar(port: u16, q: &str) -> Option<f64> {
    let v = query(port, q);
    let r = v["data"]["result"].as_array()?.first()?.clone();
    r["value"][1].as_str()?.parse().ok()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn alert_rules_unit_tests_pass() {
    if !have_prometheus() {
        return;
    }
    let dir = root().join("docs/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"],
        &["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new("promtool").args(args).current_dir(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn dashboard_exprs(path: &Path) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(e)) = m.get("expr") {
                    out.push(e.replace("$__rate_interval", "5m"));
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    walk(&json, &mut out);
    out
}

#[test]
fn real_prometheus_scrapes_and_alerts() {
    if !have_prometheus() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let prom_port = free_port();

    // dnsentry: benign traffic then an iodine tunnel, endpoint kept up after the replay.
    let summary = tmp.path().join("summary.txt");
    let dnsentry = Command::new(env!("CARGO_BIN_EXE_dnsentry"))
        .args(["replay", "--workers", "2", "--metrics-linger", "120", "--metrics-listen"])
        .arg(format!("127.0.0.1:{metrics_port}"))
        .arg(root().join("pcaps/benign.pcap"))
        .arg(root().join("pcaps/iodine-null.pcap"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&summary).unwrap())
        .spawn()
        .unwrap();
    let _dnsentry = Guard(dnsentry);

    // Prometheus with the example config (target and intervals adapted) and the shipped rules.
    let example = std::fs::read_to_string(root().join("docs/prometheus/prometheus.yml")).unwrap();
    let config = example
        .replace("127.0.0.1:9853", &format!("127.0.0.1:{metrics_port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    assert!(config.contains(&metrics_port.to_string()), "example config has no 127.0.0.1:9853 target");
    std::fs::write(tmp.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(root().join("docs/prometheus/alerts.yml"), tmp.path().join("alerts.yml")).unwrap();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", tmp.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", tmp.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let _prom = Guard(prom);

    // The replay finishes in well under a second; wait for its summary.
    wait_for("the replay summary", Duration::from_secs(60), || {
        std::fs::read_to_string(&summary).is_ok_and(|s| s.contains("elapsed:"))
    });
    let text = std::fs::read_to_string(&summary).unwrap();
    let dns_messages: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("dns messages:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("summary has the DNS message count");

    // A clean exposition.
    let scrape = http_get(metrics_port, "/metrics").expect("dnsentry serves /metrics");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(http_get(metrics_port, "/healthz").as_deref(), Some("ok\n"));

    wait_for("prometheus to scrape dnsentry", Duration::from_secs(60), || {
        http_get(prom_port, "/-/ready").is_some()
            && scalar(prom_port, "sum(dnsentry_dns_messages_total)").is_some()
    });

    // The series of the catalogue, with sane values.
    assert_eq!(scalar(prom_port, "sum(dnsentry_dns_messages_total)"), Some(dns_messages));
    assert_eq!(scalar(prom_port, r#"up{job="dnsentry"}"#), Some(1.0));
    assert!(scalar(prom_port, r#"dnsentry_alarms_total{severity="high"}"#).unwrap() >= 1.0);
    assert!(scalar(prom_port, r#"dnsentry_dns_queries_total{qtype="NULL"}"#).unwrap() > 100.0);
    assert!(scalar(prom_port, r#"dnsentry_dns_responses_total{rcode="NXDOMAIN"}"#).unwrap() > 0.0);
    assert_eq!(
        scalar(prom_port, r#"dnsentry_suspect_domain_score{domain="iodine-lab.test"}"#).map(|v| v >= 70.0),
        Some(true)
    );
    assert!(scalar(prom_port, "sum(dnsentry_packets_total)").unwrap() >= dns_messages);
    for name in [
        "dnsentry_build_info",
        "dnsentry_bytes_total",
        "dnsentry_worker_busy_seconds_total",
        "dnsentry_packets_skipped_total",
        "dnsentry_dns_unanswered_queries_total",
        "dnsentry_parse_errors_total",
        "dnsentry_tcp_reassembly_drops_total",
        "dnsentry_qname_length_chars_bucket",
        "dnsentry_qname_entropy_bucket",
        "dnsentry_response_size_bytes_bucket",
        "dnsentry_alarm_score_bucket",
        "dnsentry_alarm_reasons_total",
        "dnsentry_suspect_domains",
        "dnsentry_state_entries",
        "dnsentry_state_evictions_total",
        "dnsentry_channel_drops_total",
        "dnsentry_alarm_write_errors_total",
        "dnsentry_config_reloads_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            scalar(prom_port, &format!("count({name})")).is_some_and(|n| n >= 1.0),
            "series {name} missing"
        );
    }

    // Every dashboard query evaluates without error.
    let exprs = dashboard_exprs(&root().join("docs/grafana/dnsentry.json"));
    assert!(exprs.len() >= 20);
    for e in &exprs {
        let v = query(prom_port, e);
        assert_eq!(v["status"], "success", "dashboard query failed: {e}: {v}");
    }

    // The tunnel alert fires.
    wait_for("DnsentryTunnelSuspected to fire", Duration::from_secs(60), || {
        let body = http_get(prom_port, "/api/v1/alerts").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|x| x["labels"]["alertname"] == "DnsentryTunnelSuspected" && x["state"] == "firing")
        })
    });
}
