//! Outputs never stop the analysis: an alarm file on a full disk, a closed stdout pipe. Every lost
//! alarm is counted and logged at a bounded rate, the whole capture is still analysed, nothing
//! panics, and the exit status says alarms were lost. (A dead NetFlow collector: netflow_roundtrip;
//! a metrics client that never reads: metrics::server unit test.)

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dnsentry");

fn pcaps() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "own captures missing in {}", dir.display());
    v
}

fn replay(extra: &[&str], stdout: Stdio) -> std::process::Child {
    Command::new(BIN)
        .arg("replay")
        .args(pcaps())
        .args(extra)
        .args(["--workers", "2"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn line_value(stderr: &str, key: &str) -> Option<u64> {
    stderr.lines().find_map(|l| l.trim().strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

/// (dns messages, alarms written) of a run whose output works.
fn reference(dir: &Path) -> (u64, usize) {
    let file = dir.join("ok.jsonl");
    let out = replay(&["--alarms", file.to_str().unwrap()], Stdio::null()).wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let alarms = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(alarms >= 8, "the own captures raise alarms: {alarms}");
    (line_value(&err, "dns messages:").unwrap(), alarms)
}

/// The run went through every packet, lost `lost` alarms, said so, and did not panic.
fn assert_degraded(out: &Output, dns: u64, lost: usize) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "alarms were lost: exit status 1\n{err}");
    assert_eq!(line_value(&err, "dns messages:"), Some(dns), "the whole capture is analysed\n{err}");
    assert_eq!(line_value(&err, "alarm writes failed:"), Some(lost as u64), "{err}");
    assert!(err.contains(&format!("{lost} alarms could not be written")), "{err}");
    // Logged at a bounded rate: on the 1st, 2nd, 4th, 8th... failure.
    let logged = err.matches("cannot write alarm output").count();
    assert!(
        logged >= 1 && logged <= (lost as f64).log2() as usize + 1,
        "{logged} log lines for {lost}\n{err}"
    );
}

#[test]
fn closed_stdout_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    // `dnsentry replay ... | head -c 0`: the reader is gone before the first alarm.
    let mut child = replay(&[], Stdio::piped());
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_degraded(&out, dns, alarms);
}

#[test]
fn full_disk_dev_full() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    // /dev/full answers every write with ENOSPC.
    let out = replay(&["--alarms", "/dev/full"], Stdio::null()).wait_with_output().unwrap();
    assert_degraded(&out, dns, alarms);
}

/// A tmpfs that fills up part way: the alarms that fit are kept, the rest (and a line cut short by
/// the full disk) are counted.
#[test]
fn full_disk_tmpfs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root: this test must run");
        eprintln!("skipping: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    let mnt = dir.path().join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    let st =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=4k"]).arg("tmpfs").arg(&mnt).status().unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    // One page: room for a few alarms.
    let file = mnt.join("alarms.jsonl");
    let out = replay(&["--alarms", file.to_str().unwrap()], Stdio::null()).wait_with_output().unwrap();
    let mut written = String::new();
    std::fs::File::open(&file).unwrap().read_to_string(&mut written).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    eprintln!("tmpfs: {} of {alarms} alarms fit", lines.len());
    assert!(lines.len() < alarms, "the tmpfs filled up");
    let lost = alarms - lines.iter().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count();
    assert_degraded(&out, dns, lost);
}

// ---- syslog ------------------------------------------------------------------------------------

/// A real rsyslogd (Debian) on loopback with its own config, work directory and ports: imtcp and
/// imudp, each message written by a template as one line of tab-separated parsed fields.
struct Rsyslog {
    dir: PathBuf,
    tcp: u16,
    udp: u16,
    child: Option<std::process::Child>,
}

/// The fields rsyslog parsed from one message, in the template's order.
#[derive(Debug)]
struct Received {
    input: String,
    facility: String,
    severity: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: String,
}

fn have_rsyslog() -> bool {
    if Path::new("/usr/sbin/rsyslogd").exists() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "rsyslog is in scripts/apt-packages.txt");
    eprintln!("skipping: /usr/sbin/rsyslogd missing (cargo xtask setup installs it)");
    false
}

fn free_port() -> u16 {
    // Free for TCP and UDP at the time of asking; rsyslog binds it right after.
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Rsyslog {
    fn new(dir: &Path) -> Rsyslog {
        let port = free_port();
        let r = Rsyslog { dir: dir.into(), tcp: port, udp: port, child: None };
        std::fs::write(
            dir.join("rsyslog.conf"),
            format!(
                r#"global(workDirectory="{d}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
template(name="fields" type="list") {{
  property(name="inputname") constant(value="\t")
  property(name="syslogfacility-text") constant(value="\t")
  property(name="syslogseverity-text") constant(value="\t")
  property(name="hostname") constant(value="\t")
  property(name="app-name") constant(value="\t")
  property(name="procid") constant(value="\t")
  property(name="msgid") constant(value="\t")
  property(name="structured-data") constant(value="\t")
  property(name="msg" droplastlf="on") constant(value="\n")
}}
ruleset(name="alarms") {{
  action(type="omfile" file="{d}/received.tsv" template="fields")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="alarms")
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="alarms")
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        r
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("rsyslogd.log")).unwrap();
        let child = Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], self.tcp).into();
        let up = wait_until(20.0, || {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_ok()
        });
        assert!(up, "rsyslogd does not listen: {}", self.log());
    }

    /// SIGTERM, and wait for it to exit (its connections are closed then).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let st = c.wait().unwrap();
            assert!(st.success(), "rsyslogd exit: {st:?}\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }

    fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(self.dir.join("received.tsv")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(9, '\t').collect();
                assert_eq!(f.len(), 9, "{l}");
                Received {
                    input: f[0].into(),
                    facility: f[1].into(),
                    severity: f[2].into(),
                    hostname: f[3].into(),
                    app: f[4].into(),
                    procid: f[5].into(),
                    msgid: f[6].into(),
                    sd: f[7].into(),
                    msg: f[8].into(),
                }
            })
            .collect()
    }

    fn messages(&self, input: &str) -> Vec<String> {
        self.received().into_iter().filter(|r| r.input == input).map(|r| r.msg).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_until(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn file_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_string).collect()
}

/// `  syslog:URL: N alarms sent, M dropped, K connect/send errors` of the summary.
fn syslog_counts(stderr: &str, url: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("syslog:{url}: ")))
        .unwrap_or_else(|| panic!("no summary line for {url}:\n{stderr}"));
    let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(n.len(), 3, "{line}");
    (n[0], n[1], n[2])
}

/// Every alarm of a replay reaches a real rsyslog once over TCP and once over UDP, and rsyslog
/// parses the RFC 5424 header and structured data into the fields docs/deploy.md documents; MSG is
/// the alarm file's JSON line, byte for byte.
#[test]
fn syslog_delivers_every_alarm_once() {
    if !have_rsyslog() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rs = Rsyslog::new(dir.path());
    rs.start();
    let file = dir.path().join("alarms.jsonl");
    let (tcp, udp) = (format!("tcp://127.0.0.1:{}", rs.tcp), format!("udp://127.0.0.1:{}", rs.udp));
    let out = replay(
        &["--alarms", file.to_str().unwrap(), "--syslog", &tcp, "--syslog", &udp, "--min-severity", "info"],
        Stdio::null(),
    )
    .wait_with_output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    let lines = file_lines(&file);
    assert!(lines.len() >= 8, "{err}");
    let n = lines.len() as u64;
    assert_eq!(syslog_counts(&err, &tcp), (n, 0, 0), "{err}");
    assert_eq!(syslog_counts(&err, &udp), (n, 0, 0), "{err}");
    assert!(
        wait_until(30.0, || rs.received().len() == 2 * lines.len()),
        "rsyslog got {} of {} messages\n{}",
        rs.received().len(),
        2 * lines.len(),
        rs.log()
    );
    for input in ["imtcp", "imudp"] {
        assert_eq!(sorted(rs.messages(input)), sorted(lines.clone()), "{input}: each alarm once");
    }
    let host = dnsentry::output::syslog::hostname();
    for r in rs.received() {
        let a: serde_json::Value = serde_json::from_str(&r.msg).unwrap();
        let sev = a["severity"].as_str().unwrap();
        let expect = match sev {
            "high" => "crit",
            "low" => "warning",
            _ => "info",
        };
        assert_eq!(r.severity, expect, "{r:?}");
        assert_eq!(r.facility, "local0");
        assert_eq!((r.app.as_str(), r.hostname.as_str()), ("dnsentry", host.as_str()));
        assert!(r.procid.parse::<u32>().is_ok(), "{r:?}");
        assert_eq!(r.msgid, a["kind"].as_str().unwrap());
        assert!(r.sd.starts_with("[dnsentry@32473 severity=\""), "{r:?}");
        assert!(r.sd.contains(&format!("kind=\"{}\"", a["kind"].as_str().unwrap())), "{r:?}");
        assert!(r.sd.contains(&format!("client=\"{}\"", a["client"].as_str().unwrap())), "{r:?}");
        if let Some(d) = a["domain"].as_str() {
            assert!(r.sd.contains(&format!("domain=\"{d}\"")), "{r:?}");
        }
    }
}

/// A destination that is down never stops the analysis: every DNS message is still analysed,
/// the alarms that could not be sent are counted, and the exit status says alarms were lost.
#[test]
fn syslog_down_does_not_stop_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, alarms) = reference(dir.path());
    // A port nobody listens on: every connection is refused.
    let port = free_port();
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, "[outputs]\nsyslog_queue = 2\nsyslog_drain_secs = 1\n").unwrap();
    let url = format!("tcp://127.0.0.1:{port}");
    let out = replay(&["--config", conf.to_str().unwrap(), "--syslog", &url], Stdio::null())
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(line_value(&err, "dns messages:"), Some(dns), "{err}");
    let (sent, dropped, errors) = syslog_counts(&err, &url);
    assert_eq!((sent, dropped), (0, alarms as u64), "{err}");
    assert!(errors >= 1, "{err}");
    assert!(err.contains("syslog queue full"), "{err}");
}

fn pcap_record(out: &mut Vec<u8>, (t, data, orig): &(u64, Vec<u8>, u32)) {
    for w in [(t / 1_000_000_000) as u32, ((t % 1_000_000_000) / 1000) as u32, data.len() as u32, *orig] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(data);
}

/// rsyslog stopped mid-run, then restarted: the sensor keeps going, counts what it could not
/// send, and delivers again after the restart — over TCP every alarm exactly once (queued while
/// the receiver is down), over UDP what was lost is counted.
///
/// The capture reaches the sensor through a FIFO in three phases of real tunnel captures
/// (distinct domains), each phase written whole before the test moves on. Phases are 1000 s of
/// capture time apart and the replay is paced (`--speed 1000`): on reading the next phase's first
/// frame the reader hands everything before it to the workers, so each phase's alarms come out
/// while the test waits, whatever the machine's speed.
#[test]
fn syslog_survives_a_receiver_restart() {
    if !have_rsyslog() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let phases: [(&[&str], &[&str]); 3] = [
        (&["iodine-null.pcap"], &["iodine-lab.test"]),
        (&["dns2tcp-txt.pcap", "iodine-cname-base32.pcap"], &["dns2tcp-lab.test", "iodine-cname.test"]),
        (&["iodine-txt.pcap", "dns2tcp-key.pcap"], &["iodine-txt.test", "dns2tcp-key.test"]),
    ];
    let mut recs: Vec<Vec<(u64, Vec<u8>, u32)>> = Vec::new();
    let mut t = 1_700_000_000_000_000_000u64;
    for (files, _) in &phases {
        let mut fr: Vec<_> = files.iter().flat_map(|f| common::pcap_frames(&own.join(f))).collect();
        fr.sort_by_key(|f| f.0);
        let base = fr[0].0;
        let phase: Vec<_> = fr.into_iter().map(|(ts, d, o)| (t + (ts - base), d, o)).collect();
        t = phase.last().unwrap().0 + 1000 * 1_000_000_000;
        recs.push(phase);
    }
    let mut rs = Rsyslog::new(dir.path());
    rs.start();
    let fifo = dir.path().join("capture.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let file = dir.path().join("alarms.jsonl");
    let conf = dir.path().join("c.toml");
    // A generous drain time: the last phase's alarms wait for the restarted receiver at exit.
    std::fs::write(&conf, "[outputs]\nsyslog_drain_secs = 120\n").unwrap();
    let (tcp, udp) = (format!("tcp://127.0.0.1:{}", rs.tcp), format!("udp://127.0.0.1:{}", rs.udp));
    let sensor = Command::new(BIN)
        .arg("replay")
        .arg(&fifo)
        .args(["--config", conf.to_str().unwrap(), "--speed", "1000", "--min-severity", "info"])
        .args(["--alarms", file.to_str().unwrap(), "--syslog", &tcp, "--syslog", &udp])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::fs::File::options().write(true).open(&fifo).unwrap();
    let high = |d: &str| {
        file_lines(&file).iter().any(|l| l.contains(&format!("\"domain\":\"{d}\"")) && l.contains("\"high\""))
    };
    for (i, (_, domains)) in phases.iter().enumerate() {
        let mut bytes = Vec::new();
        if i == 0 {
            for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        for r in &recs[i][usize::from(i > 0)..] {
            pcap_record(&mut bytes, r);
        }
        // The next phase's first frame ends this one (see above).
        if let Some(next) = recs.get(i + 1) {
            pcap_record(&mut bytes, &next[0]);
        }
        std::io::Write::write_all(&mut w, &bytes).unwrap();
        if i == 2 {
            break;
        }
        assert!(wait_until(60.0, || domains.iter().all(|d| high(d))), "phase {i}: {:?}", file_lines(&file));
        match i {
            0 => {
                // Everything so far arrived (over TCP) before the receiver stops.
                let n = file_lines(&file).len();
                assert!(wait_until(30.0, || rs.messages("imtcp").len() == n), "{}", rs.log());
                rs.stop();
            }
            _ => rs.start(),
        }
    }
    drop(w);
    let out = sensor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    let lines = file_lines(&file);
    let n = lines.len() as u64;
    // TCP: the alarms of phase 1 waited in the queue; every alarm arrived exactly once.
    let (sent, dropped, errors) = syslog_counts(&err, &tcp);
    assert_eq!((sent, dropped), (n, 0), "{err}");
    assert!(errors >= 1, "the stopped receiver refused connections: {err}");
    assert!(wait_until(30.0, || rs.messages("imtcp").len() as u64 == n), "{}", rs.log());
    assert_eq!(sorted(rs.messages("imtcp")), sorted(lines.clone()));
    // UDP: no duplicates, nothing foreign; the outage's losses are counted (a stopped receiver is
    // only noticed through ICMP errors on later sends); phases 0 and 2 arrived whole.
    let (usent, udropped, uerrors) = syslog_counts(&err, &udp);
    eprintln!(
        "receiver restart: {n} alarms; tcp sent {sent}, dropped {dropped}, errors {errors}; udp sent {usent}, \
         dropped {udropped}, errors {uerrors}, received {}",
        rs.messages("imudp").len()
    );
    assert_eq!(usent + udropped, n, "{err}");
    assert!(udropped >= 1, "{err}");
    let got = sorted(rs.messages("imudp"));
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "no duplicates");
    assert!(got.iter().all(|m| lines.contains(m)));
    for (i, (_, domains)) in phases.iter().enumerate().filter(|(i, _)| *i != 1) {
        for l in lines.iter().filter(|l| domains.iter().any(|d| l.contains(&format!("\"domain\":\"{d}\"")))) {
            assert!(got.contains(l), "phase {i} alarm not received over UDP: {l}");
        }
    }
    assert_eq!(out.status.code(), Some(1), "alarms were lost over UDP: exit status 1\n{err}");
}
