//! `dnsentry live` end to end, deployed as users deploy it (root only; CI runs as root).
//!
//! Every test builds its own network namespaces (`de2e-PID-TAG-ROLE`), veth pairs (named with the
//! PID) and daemons, and removes them in Drop guards even when an assertion fails (the logs are
//! then kept and their tails printed). Traffic only goes to 10.66.x.y addresses inside those
//! namespaces. Tests run one at a time (two cores; exact counts).
//!
//! - `mirror_deployment_{drv,skb}`: client / resolver / sensor namespaces. The resolver namespace
//!   runs a real unbound over a small NSD hierarchy (tests/live/world.py) and a real iodined; the
//!   client runs `dig` and a real `iodine -r` tunnel through unbound (ping + 40 KB over the tun).
//!   A SPAN is emulated with tc (clsact, `u32 match u32 0 0`, `mirred egress mirror`, ingress and
//!   egress of the client-resolver link) onto a 2-queue veth whose far end, in the sensor
//!   namespace, is where `dnsentry live --default-action drop` listens.
//! - `live_and_replay_agree`: the same run with tcpdump recording the mirror; `dnsentry replay` of
//!   that pcap gives the same DNS counts and the same (domain, severity, tool) alarms.
//! - `host_traffic_{drv,skb}`: ping, HTTP and the host's own DNS (unbound on the sensor's address)
//!   work in `pass` mode and stop in `drop` mode; DNS to the host's own address is not redirected.
//! - `vlan_{drv,skb}`: 802.1Q and QinQ tagged DNS frames injected raw over AF_PACKET are seen.
//! - `sighup_reload`: SIGHUP re-reads the config and lists on the running sensor.
//! - `log_rotation`: logrotate with the shipped config rotates the alarm file of a running,
//!   unprivileged sensor twice; every alarm is in exactly one file.
//!
//! Skips when not root; fails instead when `CI=true`. Notes: docs/live-e2e.md.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dnsentry");
const PY: &str = "/usr/bin/python3";
const PREFIX: &str = "de2e-";
const TUNNEL_DOMAIN: &str = "tunnel-e2e.test";
const TUNNEL_ZONE: &str = "t.tunnel-e2e.test";
const BENIGN_DOMAINS: [&str; 2] = ["example-shop.test", "example-news.test"];
const RESOLVER: &str = "10.66.1.1";
const CLIENT: &str = "10.66.1.10";
/// A benign name of the lab on the test's reputation list.
const LISTED: &str = "www.example-news.test";
const TUN_SERVER: &str = "10.66.99.1";
const METRICS: &str = "127.0.0.1:9853";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn may_run() -> bool {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "live_e2e needs root (CI runs as root)");
    eprintln!("skipping live_e2e: needs root (network namespaces, XDP, AF_XDP, tc)");
    false
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn script(rel: &str) -> String {
    repo().join(rel).to_string_lossy().into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `args` in namespace `ns`, killed after `secs`.
fn nsrun(ns: &str, secs: u32, args: &[&str]) -> Output {
    let t = secs.to_string();
    let mut v = vec!["ip", "netns", "exec", ns, "timeout", "-s", "KILL", &t];
    v.extend_from_slice(args);
    run(&v)
}

fn nsok(ns: &str, args: &[&str]) {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    ok(&v);
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs `f` on a new thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).expect("open netns");
        // SAFETY: a valid namespace fd; only this thread moves.
        let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread panicked")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' && it.peek() == Some(&'[') {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn wait_until(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- processes ---------------------------------------------------------------------------------

/// A process started in a namespace, output in the lab's directory; killed on drop.
struct Proc {
    name: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        if self.status.is_none() {
            // SAFETY: our own child (ip netns exec execs the command: same pid).
            unsafe { libc::kill(self.pid(), sig) };
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    fn wait_exit(&mut self, secs: f64) -> Option<ExitStatus> {
        wait_until(secs, || self.exited().is_some());
        self.status
    }

    /// SIGTERM (or `sig`), then SIGKILL after `secs`.
    fn stop_with(&mut self, sig: i32, secs: f64) -> Option<ExitStatus> {
        self.signal(sig);
        if self.wait_exit(secs).is_none() {
            self.signal(libc::SIGKILL);
            self.status = self.child.wait().ok();
        }
        self.status
    }

    fn stop(&mut self) -> Option<ExitStatus> {
        self.stop_with(libc::SIGTERM, 5.0)
    }

    fn stdout(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.out).unwrap_or_default())
    }

    fn stderr(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.err).unwrap_or_default())
    }

    /// Waits until stdout or stderr contains `pat`; panics (with the output) on exit or timeout.
    fn wait_log(&mut self, pat: &str, secs: f64) {
        let found = wait_until(secs, || {
            self.stdout().contains(pat) || self.stderr().contains(pat) || self.exited().is_some()
        });
        let hit = self.stdout().contains(pat) || self.stderr().contains(pat);
        assert!(
            found && hit,
            "{}: no {pat:?} after {secs} s (exit {:?}); stderr:\n{}\nstdout:\n{}",
            self.name,
            self.status,
            tail(&self.stderr(), 30),
            tail(&self.stdout(), 10)
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---- the lab: namespaces and a work directory --------------------------------------------------

struct Lab {
    pid: u32,
    tag: String,
    namespaces: Vec<String>,
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        remove_stale();
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("dnsentry-e2e-{pid}-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Lab { pid, tag: tag.into(), namespaces: Vec::new(), dir }
    }

    /// A new namespace (IPv6 off: no router solicitations or MLD on the links) with `lo` up.
    fn netns(&mut self, role: &str) -> String {
        let name = format!("{PREFIX}{}-{}-{role}", self.pid, self.tag);
        // Registered before it exists: whatever happens next, Drop deletes it.
        self.namespaces.push(name.clone());
        ok(&["ip", "netns", "add", &name]);
        nsok(
            &name,
            &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
        );
        ok(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// An interface name unique to this process (at most 15 characters).
    fn ifname(&self, role: &str) -> String {
        let n = format!("{role}{}", self.pid);
        assert!(n.len() <= 15);
        n
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn spawn(&self, ns: &str, name: &str, args: &[&str]) -> Proc {
        let out = self.path(&format!("{name}.out"));
        let err = self.path(&format!("{name}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name: name.into(), child, out, err, status: None }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Everything still running in our own namespaces was started by this test.
            let pids = run(&["ip", "netns", "pids", ns]);
            for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    // SAFETY: a process of a namespace this test created.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            let _ = run(&["ip", "netns", "del", ns]);
        }
        if std::thread::panicking() {
            eprintln!("live_e2e: test failed; logs kept in {}", self.dir.display());
            if let Ok(rd) = fs::read_dir(&self.dir) {
                let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
                files.sort();
                for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "err" || e == "out")) {
                    let t = strip_ansi(&fs::read_to_string(f).unwrap_or_default());
                    if !t.trim().is_empty() {
                        eprintln!("== {}\n{}", f.display(), tail(&t, 15));
                    }
                }
            }
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Namespaces left by an earlier run of this test whose process is gone (e.g. killed).
fn remove_stale() {
    let Ok(rd) = fs::read_dir("/run/netns") else { return };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let pids = run(&["ip", "netns", "pids", &name]);
            for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    // SAFETY: a leftover process inside a namespace of a dead run of this test.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            let _ = run(&["ip", "netns", "del", &name]);
            // The work directory of that run (`de2e-PID-TAG-ROLE` -> `dnsentry-e2e-PID-TAG`).
            if let Some((run_tag, _role)) = name[PREFIX.len()..].rsplit_once('-') {
                let _ = fs::remove_dir_all(std::env::temp_dir().join(format!("dnsentry-e2e-{run_tag}")));
            }
        }
    }
}

fn mac_of(ns: &str, dev: &str) -> String {
    let out = run(&["ip", "-n", ns, "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
    v[0]["address"].as_str().expect("mac").to_string()
}

/// Two queues on both ends of a veth pair, `a` in `ns_a`, `b` in `ns_b`.
fn veth2q(ns_a: &str, a: &str, ns_b: &str, b: &str) {
    ok(&[
        "ip",
        "-n",
        ns_a,
        "link",
        "add",
        a,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        ns_b,
        "numrxqueues",
        "2",
        "numtxqueues",
        "2",
    ]);
}

// ---- dnsentry output ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Summary {
    packets: u64,
    dns: u64,
    /// The parenthesised split: "udp Q queries / R responses, tcp Q queries / R responses".
    dns_split: String,
    high: u64,
    low: u64,
    info: u64,
    xdp: BTreeMap<String, u64>,
    shard_drops: u64,
}

fn first_num(s: &str) -> u64 {
    s.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("no number in {s:?}"))
}

/// "name N, name N" -> map.
fn pairs(s: &str) -> BTreeMap<String, u64> {
    s.split(',')
        .filter_map(|p| {
            let mut w = p.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

fn parse_summary(stderr: &str) -> Summary {
    let mut s = Summary::default();
    let mut found = false;
    for line in stderr.lines() {
        let Some((k, v)) = line.trim().split_once(':') else { continue };
        let v = v.trim();
        match k {
            "packets" => {
                s.packets = first_num(v);
                found = true;
            }
            "dns messages" => {
                s.dns = first_num(v);
                s.dns_split = v.split_once('(').map(|(_, r)| r.trim_end_matches(')').to_string()).unwrap();
            }
            "alarms" => {
                let a = pairs(v);
                (s.high, s.low, s.info) = (a["high"], a["low"], a["info"]);
            }
            "xdp" => s.xdp = pairs(v),
            "shard drops" => s.shard_drops = first_num(v),
            _ => {}
        }
    }
    assert!(found, "no summary in:\n{stderr}");
    s
}

/// (domain, severity, tool) of each alarm line, and the lines themselves.
fn read_alarms(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad alarm line {l:?}: {e}")))
        .collect()
}

fn alarm_key(a: &serde_json::Value) -> (String, String, String) {
    let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
    (s("domain"), s("severity"), s("tool"))
}

fn alarm_set(alarms: &[serde_json::Value]) -> BTreeSet<(String, String, String)> {
    alarms.iter().map(alarm_key).collect()
}

/// GET /metrics from `addr` inside namespace `ns`.
fn scrape(ns: &str, addr: &str) -> String {
    let addr: SocketAddr = addr.parse().unwrap();
    in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("metrics connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    })
}

/// The value of the sample whose name and labels are exactly `series` (e.g. `x{worker="0"}`).
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Starts `dnsentry live` in `ns` on `iface` and waits until the XDP program is attached; returns
/// the process and the attach mode obtained.
fn start_sensor(
    lab: &Lab,
    ns: &str,
    name: &str,
    iface: &str,
    attach: &str,
    action: &str,
    duration: u32,
) -> (Proc, String) {
    start_sensor_with(lab, ns, name, iface, attach, action, duration, &[])
}

/// [`start_sensor`] with extra arguments.
#[allow(clippy::too_many_arguments)]
fn start_sensor_with(
    lab: &Lab,
    ns: &str,
    name: &str,
    iface: &str,
    attach: &str,
    action: &str,
    duration: u32,
    extra: &[&str],
) -> (Proc, String) {
    let alarms = lab.path(&format!("{name}.alarms.jsonl"));
    let d = duration.to_string();
    // `extra` may name its own alarm file.
    let default_alarms = ["--alarms", alarms.to_str().unwrap()];
    let default_alarms = if extra.contains(&"--alarms") { &default_alarms[..0] } else { &default_alarms[..] };
    let mut p = lab.spawn(
        ns,
        name,
        &[
            BIN,
            "live",
            "--iface",
            iface,
            "--attach",
            attach,
            "--bind",
            "auto",
            "--default-action",
            action,
            "--duration",
            &d,
            "--metrics-listen",
            METRICS,
            "--log",
            "warn",
            // Explicit, so the uid checked below does not depend on a `dnsentry` user existing.
            "--user",
            "nobody",
        ]
        .into_iter()
        .chain(default_alarms.iter().copied())
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    );
    p.wait_log("XDP program attached", 20.0);
    let err = p.stderr();
    let line = err.lines().find(|l| l.contains("XDP program attached")).unwrap();
    let mode =
        line.split("mode=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?").to_string();
    // The metrics server starts right after the attach.
    let addr: SocketAddr = METRICS.parse().unwrap();
    let up = in_netns(ns, move || {
        wait_until(5.0, || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
    });
    assert!(up, "metrics endpoint of {name} not reachable");
    (p, mode)
}

/// Every thread of `pid` runs as `nobody` (`--user nobody`) with no capability left.
fn assert_unprivileged(pid: i32) {
    let tasks: Vec<_> = fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten().collect();
    assert!(tasks.len() > 3, "expected the capture, shard and metrics threads: {}", tasks.len());
    let mut checked = 0;
    for t in tasks {
        // A metrics connection thread may end between the listing and the read.
        let Ok(st) = fs::read_to_string(t.path().join("status")) else { continue };
        checked += 1;
        let field = |k: &str| st.lines().find_map(|l| l.strip_prefix(k)).unwrap_or("?").trim().to_string();
        let uids: Vec<String> = field("Uid:").split_whitespace().map(str::to_string).collect();
        assert_eq!(uids, ["65534"; 4], "thread {:?}: Uid {uids:?}", t.path());
        for cap in ["CapEff:", "CapPrm:"] {
            assert_eq!(field(cap), "0000000000000000", "thread {:?} {cap}", t.path());
        }
    }
    assert!(checked > 3, "{checked} threads checked");
}

/// SIGTERM (unless it already stopped), then the summary.
fn stop_sensor(p: &mut Proc) -> Summary {
    let st = p.stop_with(libc::SIGTERM, 20.0);
    assert!(st.is_some_and(|s| s.success()), "{} exited with {st:?}:\n{}", p.name, p.stderr());
    parse_summary(&p.stderr())
}

// ---- 1 + 4: the mirror deployment --------------------------------------------------------------

/// Benign lookups made by the client through the resolver (20 over UDP, one more over TCP).
fn benign_queries() -> Vec<(String, &'static str)> {
    let mut v = Vec::new();
    for d in BENIGN_DOMAINS {
        for (host, t) in [
            ("", "A"),
            ("www.", "A"),
            ("www.", "AAAA"),
            ("mail.", "A"),
            ("", "MX"),
            ("", "TXT"),
            ("_dmarc.", "TXT"),
            ("api.", "A"),
            ("static.", "A"),
            ("nothere.", "A"),
        ] {
            v.push((format!("{host}{d}"), t));
        }
    }
    v
}

#[derive(Debug)]
struct MirrorRun {
    requested: String,
    obtained: String,
    benign_sent: usize,
    benign_answered: usize,
    tcp_answered: bool,
    /// Seconds from the start of the tunnel client to the first high alarm for its domain.
    alarm_after: f64,
    /// The tunnel still works after the alarm.
    ping_after_alarm: String,
    ping_ok: bool,
    xfer: (String, String),
    xfer_ok: bool,
    workers: [f64; 2],
    /// `dnsentry_reputation_hits_total` of the list while the sensor ran.
    reputation_hits: f64,
    live: Summary,
    live_alarms: Vec<serde_json::Value>,
    replay: Summary,
    replay_alarms: Vec<serde_json::Value>,
    pcap_frames: u64,
    secs: f64,
}

fn mirror_run(attach: &str, tag: &str) -> MirrorRun {
    let t0 = Instant::now();
    let mut lab = Lab::new(tag);
    let c = lab.netns("cli");
    let r = lab.netns("res");
    let s = lab.netns("sen");
    let (cl, rs) = (lab.ifname("cl"), lab.ifname("rs"));
    let (mt, mr) = (lab.ifname("mt"), lab.ifname("mr"));
    let (tun_c, tun_s) = (lab.ifname("ioc"), lab.ifname("ios"));

    // client -- resolver link, and the mirror veth (two queues) into the sensor namespace.
    ok(&["ip", "-n", &r, "link", "add", &rs, "type", "veth", "peer", "name", &cl, "netns", &c]);
    veth2q(&r, &mt, &s, &mr);
    ok(&["ip", "-n", &r, "addr", "add", &format!("{RESOLVER}/24"), "dev", &rs]);
    ok(&["ip", "-n", &c, "addr", "add", &format!("{CLIENT}/24"), "dev", &cl]);
    // The "internet" (root, TLD, hosting NSDs and iodined) lives on the resolver's loopback: only
    // client <-> resolver traffic crosses the mirrored link, as with a SPAN of the access port.
    for a in ["10.66.2.10", "10.66.2.20", "10.66.2.30", "10.66.2.53"] {
        ok(&["ip", "-n", &r, "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    for (ns, dev) in [(&r, &rs), (&c, &cl), (&r, &mt), (&s, &mr)] {
        ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    ok(&["ip", "-n", &s, "link", "set", &mr, "promisc", "on"]);
    ok(&["ip", "-n", &c, "route", "add", "default", "via", RESOLVER]);
    // The SPAN: every frame in and out of the resolver's client-side port, copied onto `mt`.
    nsok(&r, &["tc", "qdisc", "add", "dev", &rs, "clsact"]);
    for dir in ["ingress", "egress"] {
        nsok(
            &r,
            &[
                "tc", "filter", "add", "dev", &rs, dir, "protocol", "all", "u32", "match", "u32", "0", "0",
                "action", "mirred", "egress", "mirror", "dev", &mt,
            ],
        );
    }

    // The DNS hierarchy, the resolver and the tunnel server.
    let world = lab.path("world");
    ok(&[PY, &script("tests/live/world.py"), world.to_str().unwrap()]);
    let mut daemons = Vec::new();
    for (g, ip, zone) in [
        ("root", "10.66.2.10", "."),
        ("tld", "10.66.2.20", "test"),
        ("hosting", "10.66.2.30", "example-shop.test"),
    ] {
        let conf = world.join(g).join("nsd.conf");
        daemons.push(lab.spawn(&r, &format!("nsd-{g}"), &["nsd", "-d", "-c", conf.to_str().unwrap()]));
        let up = wait_until(10.0, || {
            let o =
                nsrun(&r, 3, &["dig", "+short", "+tries=1", "+time=1", &format!("@{ip}"), "-t", "SOA", zone]);
            o.status.success() && !o.stdout.is_empty()
        });
        assert!(up, "NSD {g} at {ip} does not answer");
    }
    let unbound_conf = lab.path("unbound.conf");
    fs::write(
        &unbound_conf,
        format!(
            "server:\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n  \
             use-syslog: no\n  verbosity: 1\n  num-threads: 1\n  interface: {RESOLVER}\n  port: 53\n  do-ip4: yes\n  \
             do-ip6: no\n  do-udp: yes\n  do-tcp: yes\n  access-control: 10.66.1.0/24 allow\n  root-hints: \
             \"{world}/root.hints\"\n  module-config: \"iterator\"\n  trust-anchor-signaling: no\n  \
             # iodine cannot get through a QNAME-minimising unbound (A probes chased as CNAMEs)\n  \
             qname-minimisation: no\n  do-not-query-localhost: no\n  local-zone: \"test.\" nodefault\n  \
             so-reuseport: no\nremote-control:\n  control-enable: no\n",
            dir = lab.dir.display(),
            world = world.display()
        ),
    )
    .unwrap();
    ok(&["unbound-checkconf", unbound_conf.to_str().unwrap()]);
    let mut unbound = lab.spawn(&r, "unbound", &["unbound", "-d", "-c", unbound_conf.to_str().unwrap()]);
    // Checked from the resolver's own namespace: nothing crosses the mirrored link yet.
    let up = wait_until(10.0, || {
        let o = nsrun(
            &r,
            3,
            &["dig", "+short", "+tries=1", "+time=1", &format!("@{RESOLVER}"), "www.example-shop.test"],
        );
        String::from_utf8_lossy(&o.stdout).contains("192.0.2.11")
    });
    assert!(up, "unbound does not resolve through the NSD hierarchy: {}", unbound.stderr());
    let mut iodined = lab.spawn(
        &r,
        "iodined",
        &[
            "iodined",
            "-f",
            "-c",
            "-l",
            "10.66.2.53",
            "-p",
            "53",
            "-P",
            "dnsentry-e2e",
            "-d",
            &tun_s,
            &format!("{TUN_SERVER}/27"),
            TUNNEL_ZONE,
        ],
    );
    iodined.wait_log("Listening to dns", 10.0);

    // tcpdump records exactly what the mirror carries. It runs on the transmitting end: on the
    // sensor's end the XDP program takes the frames before any AF_PACKET tap sees them.
    let pcap = lab.path("mirror.pcap");
    let mut tcpdump = lab.spawn(
        &r,
        "tcpdump",
        &[
            "tcpdump",
            "-i",
            &mt,
            "-s",
            "0",
            "-U",
            "--immediate-mode",
            "-nn",
            "-Z",
            "root",
            "-w",
            pcap.to_str().unwrap(),
        ],
    );
    tcpdump.wait_log("listening on", 10.0);

    // A benign name on a reputation list: looked up directly (A, AAAA, TCP) and reached through
    // `api.example-news.test`'s CNAME.
    let rep_list = lab.path("phish.txt");
    fs::write(&rep_list, format!("# made by the test\n{LISTED}\n")).unwrap();
    let rep_arg = format!("phishing:{}", rep_list.display());
    let (mut sensor, obtained) =
        start_sensor_with(&lab, &s, "dnsentry", &mr, attach, "drop", 180, &["--reputation", &rep_arg]);

    // Benign lookups: one dig process, one query (and source port) each.
    let queries = benign_queries();
    let mut args = vec!["dig".to_string(), "+tries=1".into(), "+time=2".into(), format!("@{RESOLVER}")];
    for (n, t) in &queries {
        args.push(n.clone());
        args.push(t.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dig = nsrun(&c, 60, &args);
    let dig_out = text(&dig);
    let benign_answered = dig_out.matches("->>HEADER<<-").count();
    let tcp = nsrun(
        &c,
        10,
        &[
            "dig",
            "+tcp",
            "+short",
            "+tries=1",
            "+time=2",
            &format!("@{RESOLVER}"),
            "www.example-news.test",
            "A",
        ],
    );
    let tcp_answered = String::from_utf8_lossy(&tcp.stdout).contains("192.0.2.11");

    // The tunnel: iodine through the resolver (-r: no raw mode), NULL records.
    let tunnel_start = Instant::now();
    let mut iodine = lab.spawn(
        &c,
        "iodine",
        &["iodine", "-f", "-r", "-P", "dnsentry-e2e", "-T", "NULL", "-d", &tun_c, RESOLVER, TUNNEL_ZONE],
    );
    iodine.wait_log("Connection setup complete", 60.0);
    let alarms_path = lab.path("dnsentry.alarms.jsonl");
    let alarmed = wait_until(30.0, || {
        read_alarms(&alarms_path)
            .iter()
            .any(|a| alarm_key(a) == (TUNNEL_DOMAIN.into(), "high".into(), "iodine".into()))
    });
    let alarm_after = tunnel_start.elapsed().as_secs_f64();
    assert!(
        alarmed,
        "no high alarm for {TUNNEL_DOMAIN} within 30 s of the tunnel: {:?}",
        read_alarms(&alarms_path)
    );

    // After the alarm: ping and 40 KB through the tunnel.
    let ping = nsrun(&c, 20, &["ping", "-c", "5", "-i", "0.2", "-W", "2", TUN_SERVER]);
    let ping_out = String::from_utf8_lossy(&ping.stdout).into_owned();
    let ping_after_alarm =
        ping_out.lines().find(|l| l.contains("packets transmitted")).unwrap_or("").to_string();
    let xfer_py = script("scripts/pcaps/xfer.py");
    let mut xsrv =
        lab.spawn(&r, "xfer-server", &[PY, &xfer_py, "serve", TUN_SERVER, "8080", "30000", "10000"]);
    xsrv.wait_log("listening", 10.0);
    let xcli = nsrun(&c, 60, &[PY, &xfer_py, "fetch", TUN_SERVER, "8080", "10000", "30000"]);
    xsrv.wait_exit(10.0);
    let cli_line = text(&xcli).lines().find(|l| l.starts_with("client: sent")).unwrap_or("").to_string();
    let srv_line = xsrv
        .stdout()
        .lines()
        .chain(xsrv.stderr().lines())
        .find(|l| l.starts_with("server: sent"))
        .unwrap_or("")
        .to_string();
    // "client: sent A (sha256 X) received B (sha256 Y)" must mirror "server: sent B (Y) received A (X)".
    let nums = |l: &str| -> Vec<String> {
        l.split([' ', '(', ')']).filter(|w| !w.is_empty()).map(String::from).collect()
    };
    let (cn, sn) = (nums(&cli_line), nums(&srv_line));
    let xfer_ok = cn.len() == 9
        && sn.len() == 9
        && cn[2] == sn[6]
        && cn[4] == sn[8]
        && cn[6] == sn[2]
        && cn[8] == sn[4]
        && cn[2] == "10000"
        && cn[6] == "30000";

    // Both workers (queues) while the sensor runs.
    let body = scrape(&s, METRICS);
    let workers =
        [0, 1].map(|w| metric(&body, &format!("dnsentry_packets_total{{worker=\"{w}\"}}")).unwrap_or(-1.0));
    let reputation_hits =
        metric(&body, "dnsentry_reputation_hits_total{list=\"phish\",category=\"phishing\"}").unwrap_or(-1.0);

    // Quiesce the mirrored link before stopping the sensor and tcpdump: client first, then the
    // resolver (nothing late can cross the link afterwards), then the tunnel server.
    iodine.stop();
    unbound.stop();
    iodined.stop();
    std::thread::sleep(Duration::from_millis(500));
    let live = stop_sensor(&mut sensor);
    let live_alarms = read_alarms(&alarms_path);
    tcpdump.stop_with(libc::SIGINT, 5.0);
    drop(daemons);

    let pcap_frames = {
        let o = run(&["tcpdump", "-nn", "-r", pcap.to_str().unwrap()]);
        String::from_utf8_lossy(&o.stdout).lines().count() as u64
    };
    let replay_alarms_path = lab.path("replay.alarms.jsonl");
    let rp = run(&[
        BIN,
        "replay",
        "--reputation",
        &rep_arg,
        "--alarms",
        replay_alarms_path.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert!(rp.status.success(), "replay failed: {}", text(&rp));
    let replay = parse_summary(&String::from_utf8_lossy(&rp.stderr));
    let replay_alarms = read_alarms(&replay_alarms_path);

    let run = MirrorRun {
        requested: attach.into(),
        obtained,
        benign_sent: queries.len(),
        benign_answered,
        tcp_answered,
        alarm_after,
        ping_after_alarm,
        ping_ok: ping.status.success(),
        xfer: (cli_line, srv_line),
        xfer_ok,
        workers,
        reputation_hits,
        live,
        live_alarms,
        replay,
        replay_alarms,
        pcap_frames,
        secs: t0.elapsed().as_secs_f64(),
    };
    eprintln!(
        "mirror {attach}: {:.1} s; obtained {}; benign {}/{} answered (+tcp {}); high alarm {:.2} s after the tunnel \
         started; ping after alarm: {}; xfer ok {}; workers {:?}; live: packets {}, dns {} ({}), alarms h{} l{} i{}, \
         xdp {:?}; pcap {} frames, replay dns {} ({}), alarms h{} l{} i{}",
        run.secs,
        run.obtained,
        run.benign_answered,
        run.benign_sent,
        run.tcp_answered,
        run.alarm_after,
        run.ping_after_alarm,
        run.xfer_ok,
        run.workers,
        run.live.packets,
        run.live.dns,
        run.live.dns_split,
        run.live.high,
        run.live.low,
        run.live.info,
        run.live.xdp,
        run.pcap_frames,
        run.replay.dns,
        run.replay.dns_split,
        run.replay.high,
        run.replay.low,
        run.replay.info
    );
    // Asserted while the lab (and so its logs, kept on failure) still exists.
    assert_mirror(&run);
    run
}

/// Test 1's assertions (run inside `mirror_run`, while the lab and its logs still exist).
fn assert_mirror(m: &MirrorRun) {
    assert_eq!(m.obtained, m.requested, "attach mode obtained");
    assert_eq!(m.benign_answered, m.benign_sent, "every benign UDP query got a response");
    assert!(m.tcp_answered, "the benign TCP query got a response");
    // The mirrored DNS frames are all seen: at least the benign queries and responses plus the
    // tunnel, and exactly what tcpdump recorded on the mirror.
    let min = 2 * (m.benign_sent as u64 + 1) + 20;
    assert!(m.live.dns >= min, "live saw {} DNS messages, fewer than the {min} sent", m.live.dns);
    assert_eq!(m.live.dns, m.replay.dns, "live and the tcpdump of the mirror count the same DNS messages");
    assert_eq!(m.live.dns_split, m.replay.dns_split);
    assert!(m.live.dns_split.contains("tcp 1 queries / 1 responses"), "{}", m.live.dns_split);
    assert_eq!(m.live.xdp["seen"], m.pcap_frames, "every frame on the mirror reached the XDP program");
    assert_eq!(m.live.xdp["redirected"], m.live.packets, "every redirected frame reached a worker");
    assert_eq!(m.live.xdp["no_socket"], 0);
    assert_eq!(m.live.xdp["passed"], 0, "drop mode passes nothing");
    assert!(m.live.xdp["dropped"] > 0, "non-DNS frames (ICMP, ARP, TCP over the tunnel...) are dropped");
    assert_eq!(m.live.shard_drops, 0);
    if m.requested == "drv" {
        assert!(m.workers[0] > 0.0 && m.workers[1] > 0.0, "drv: both queues carry frames: {:?}", m.workers);
    } else {
        assert!(m.workers[0] + m.workers[1] > 0.0, "{:?}", m.workers);
    }
    // The listed name raised one reputation alarm for the client (one per suppression interval),
    // and every message naming it counted: A and AAAA over UDP and the TCP query (a query and a
    // response each), and the response that CNAMEs api.example-news.test to it.
    let (reputation, others): (Vec<_>, Vec<_>) =
        m.live_alarms.iter().cloned().partition(|a| a["kind"] == "reputation");
    assert_eq!(reputation.len(), 1, "{reputation:#?}");
    let r = &reputation[0];
    assert_eq!((r["client"].as_str(), r["severity"].as_str()), (Some(CLIENT), Some("high")), "{r}");
    assert_eq!(r["reputation"]["entry"], LISTED, "{r}");
    assert_eq!(r["reputation"]["category"], "phishing", "{r}");
    assert!(m.reputation_hits >= 7.0, "reputation hits counted: {}", m.reputation_hits);
    // The tunnel alarms, keeps working, and the benign names raise nothing else.
    let set = alarm_set(&others);
    assert!(set.contains(&(TUNNEL_DOMAIN.into(), "high".into(), "iodine".into())), "{set:?}");
    for (domain, severity, _) in &set {
        if severity == "low" || severity == "high" {
            assert_eq!(domain, TUNNEL_DOMAIN, "low/high alarm for a benign domain: {set:?}");
        }
    }
    assert!(m.ping_ok, "ping through the tunnel after the alarm: {}", m.ping_after_alarm);
    assert!(m.xfer_ok, "40 KB through the tunnel after the alarm: {:?}", m.xfer);
    assert_eq!(
        (m.live.high, m.live.low, m.live.info),
        (
            m.live_alarms.iter().filter(|a| a["severity"] == "high").count() as u64,
            m.live_alarms.iter().filter(|a| a["severity"] == "low").count() as u64,
            m.live_alarms.iter().filter(|a| a["severity"] == "info").count() as u64
        ),
        "summary alarm counts match the alarm file"
    );
}

#[test]
fn mirror_deployment_drv() {
    if !may_run() {
        return;
    }
    let _g = serial();
    mirror_run("drv", "mdrv");
}

#[test]
fn mirror_deployment_skb() {
    if !may_run() {
        return;
    }
    let _g = serial();
    mirror_run("skb", "mskb");
}

#[test]
fn live_and_replay_agree() {
    if !may_run() {
        return;
    }
    let _g = serial();
    let m = mirror_run("drv", "rply");
    assert_eq!(m.live.dns, m.replay.dns);
    assert_eq!(m.live.dns_split, m.replay.dns_split);
    // Live capture merges (and scores) per batch as frames arrive, replay per merge unit of the
    // capture (docs/design.md): a domain that passes low and high within one replay unit raises
    // only the high there. What must agree is each domain's most severe alarm, its tool, and who
    // it names.
    let (live, replay) = (worst_alarms(&m.live_alarms), worst_alarms(&m.replay_alarms));
    assert!(!live.is_empty());
    assert_eq!(live, replay, "live and replay of the same mirrored traffic raise the same alarms");
    assert_eq!(m.live.high, m.replay.high);
    assert_eq!(m.live.info, m.replay.info);
}

/// Each domain's most severe alarm: (domain, severity, tool, client, server).
fn worst_alarms(alarms: &[serde_json::Value]) -> BTreeSet<(String, String, String, String, String)> {
    let rank = |s: &str| ["info", "low", "high"].iter().position(|x| *x == s);
    let mut worst: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for a in alarms {
        let (domain, sev) = (a["domain"].as_str().unwrap_or("-"), a["severity"].as_str().unwrap_or("-"));
        let e = worst.entry(domain.to_string()).or_insert(a);
        if rank(sev) > rank(e["severity"].as_str().unwrap_or("-")) {
            *e = a;
        }
    }
    worst
        .into_iter()
        .map(|(domain, a)| {
            let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
            (domain, s("severity"), s("tool"), s("client"), s("server"))
        })
        .collect()
}

// ---- 2 + 3: a sensor host with its own traffic -------------------------------------------------

struct HostLab {
    lab: Lab,
    host: String,
    peer: String,
    host_if: String,
    peer_if: String,
    host_mac: String,
}

/// Namespaces `hst` (the sensor host, 10.66.N.1) and `peer` (10.66.N.2) joined by a 2-queue veth;
/// the peer sends 10.66.N.77 (owned by nobody) to the host's MAC, as a SPAN would.
fn host_lab(tag: &str, net: u8) -> HostLab {
    let mut lab = Lab::new(tag);
    let host = lab.netns("hst");
    let peer = lab.netns("peer");
    let (host_if, peer_if) = (lab.ifname("hs"), lab.ifname("hp"));
    veth2q(&host, &host_if, &peer, &peer_if);
    ok(&["ip", "-n", &host, "addr", "add", &format!("10.66.{net}.1/24"), "dev", &host_if]);
    ok(&["ip", "-n", &peer, "addr", "add", &format!("10.66.{net}.2/24"), "dev", &peer_if]);
    ok(&["ip", "-n", &host, "link", "set", &host_if, "up"]);
    ok(&["ip", "-n", &peer, "link", "set", &peer_if, "up"]);
    let host_mac = mac_of(&host, &host_if);
    ok(&[
        "ip",
        "-n",
        &peer,
        "neigh",
        "replace",
        &format!("10.66.{net}.77"),
        "lladdr",
        &host_mac,
        "dev",
        &peer_if,
        "nud",
        "permanent",
    ]);
    HostLab { lab, host, peer, host_if, peer_if, host_mac }
}

/// DNS queries from the peer to `dst` (one socket each), without waiting for answers.
fn send_queries(ns: &str, dst: &str, n: u16) {
    let dst: SocketAddr = dst.parse().unwrap();
    in_netns(ns, move || {
        for id in 0..n {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for l in [format!("m{id}"), "mirror-e2e".into(), "test".into()] {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            s.send_to(&m, dst).unwrap();
        }
    });
}

struct HostChecks {
    ping: bool,
    http: bool,
    dns: bool,
}

fn host_checks(h: &HostLab) -> HostChecks {
    let ping = nsrun(&h.peer, 10, &["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.66.3.1"]).status.success();
    let http = nsrun(&h.peer, 10, &["curl", "-s", "--max-time", "2", "http://10.66.3.1:8080/hello.txt"]);
    let http = String::from_utf8_lossy(&http.stdout).contains("hello from the sensor host");
    let dns = nsrun(
        &h.peer,
        10,
        &["dig", "+short", "+tries=1", "+time=1", "@10.66.3.1", "host.sensor-e2e.test", "A"],
    );
    let dns = String::from_utf8_lossy(&dns.stdout).lines().any(|l| l.trim() == "10.66.3.1");
    HostChecks { ping, http, dns }
}

fn host_traffic(attach: &str) {
    let t0 = Instant::now();
    let h = host_lab(&format!("h{attach}"), 3);
    // The host's own services: a web server and its own DNS (unbound, local data).
    let www = h.lab.path("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("hello.txt"), "hello from the sensor host\n").unwrap();
    let mut http = h.lab.spawn(
        &h.host,
        "http",
        &[PY, "-m", "http.server", "--bind", "10.66.3.1", "--directory", www.to_str().unwrap(), "8080"],
    );
    let conf = h.lab.path("unbound.conf");
    fs::write(
        &conf,
        format!(
            "server:\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  \
             use-syslog: no\n  num-threads: 1\n  interface: 10.66.3.1\n  do-ip6: no\n  access-control: 10.66.3.0/24 \
             allow\n  module-config: \"iterator\"\n  so-reuseport: no\n  local-zone: \"sensor-e2e.test.\" static\n  \
             local-data: \"host.sensor-e2e.test. A 10.66.3.1\"\nremote-control:\n  control-enable: no\n",
            d = h.lab.dir.display()
        ),
    )
    .unwrap();
    let _unbound = h.lab.spawn(&h.host, "unbound", &["unbound", "-d", "-c", conf.to_str().unwrap()]);
    let ready = wait_until(10.0, || {
        let c = host_checks(&h);
        c.ping && c.http && c.dns
    });
    assert!(ready, "the host's services do not answer before the sensor starts: {}", http.stderr());

    for action in ["pass", "drop"] {
        let (mut sensor, obtained) =
            start_sensor(&h.lab, &h.host, &format!("dnsentry-{action}"), &h.host_if, attach, action, 120);
        assert_eq!(obtained, attach);
        // Root was dropped after attach: capture, counters, own-address refresh and detach below
        // all run without privileges.
        assert!(wait_until(5.0, || sensor.stderr().contains("dropped privileges")), "{}", sensor.stderr());
        assert_unprivileged(sensor.pid());
        let c = host_checks(&h);
        // Mirrored DNS (to an address the host does not own) is still redirected in both modes.
        send_queries(&h.peer, "10.66.3.77:53", 3);
        std::thread::sleep(Duration::from_millis(300));
        let sum = stop_sensor(&mut sensor);
        eprintln!(
            "host traffic {attach}/{action}: ping {} http {} own dns {}; dns {}, xdp {:?}",
            c.ping, c.http, c.dns, sum.dns, sum.xdp
        );
        if action == "pass" {
            assert!(
                c.ping && c.http && c.dns,
                "pass mode: ping {} http {} own DNS {}",
                c.ping,
                c.http,
                c.dns
            );
            assert!(sum.xdp["passed"] > 0);
        } else {
            assert!(
                !c.ping && !c.http && !c.dns,
                "drop mode: ping {} http {} own DNS {}",
                c.ping,
                c.http,
                c.dns
            );
            assert_eq!(sum.xdp["passed"], 0);
            assert!(sum.xdp["dropped"] > 0);
        }
        // Only the 3 mirrored queries reach the sensor: the host's own DNS is never redirected.
        assert_eq!(sum.xdp["redirected"], 3, "{action}: {:?}", sum.xdp);
        assert_eq!(sum.dns, 3, "{action}: own DNS must not be seen: {}", sum.dns_split);
    }
    // Detached on exit: the host's traffic flows again.
    let c = host_checks(&h);
    assert!(
        c.ping && c.http && c.dns,
        "after the sensor exits: ping {} http {} dns {}",
        c.ping,
        c.http,
        c.dns
    );
    http.stop();
    eprintln!("host traffic {attach}: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn host_traffic_drv() {
    if !may_run() {
        return;
    }
    let _g = serial();
    host_traffic("drv");
}

#[test]
fn host_traffic_skb() {
    if !may_run() {
        return;
    }
    let _g = serial();
    host_traffic("skb");
}

fn vlan(attach: &str) {
    let t0 = Instant::now();
    let h = host_lab(&format!("v{attach}"), 4);
    // --duration: the sensor stops by itself.
    let (mut sensor, obtained) = start_sensor(&h.lab, &h.host, "dnsentry", &h.host_if, attach, "drop", 3);
    assert_eq!(obtained, attach);
    let inj = nsrun(
        &h.peer,
        10,
        &[PY, &script("tests/live/inject-vlan.py"), &h.peer_if, &h.host_mac, "10.66.4.2", "10.66.4.77"],
    );
    assert!(inj.status.success(), "inject: {}", text(&inj));
    let st = sensor.wait_exit(15.0);
    assert!(st.is_some_and(|s| s.success()), "dnsentry did not stop after --duration: {st:?}");
    let sum = parse_summary(&sensor.stderr());
    eprintln!(
        "vlan {attach}: {:.1} s; dns {} ({}), xdp {:?}",
        t0.elapsed().as_secs_f64(),
        sum.dns,
        sum.dns_split,
        sum.xdp
    );
    assert_eq!(sum.xdp["redirected"], 3, "{:?}", sum.xdp);
    assert_eq!(sum.dns, 3, "802.1Q and QinQ DNS frames decoded: {}", sum.dns_split);
    assert!(sum.dns_split.starts_with("udp 2 queries / 1 responses"), "{}", sum.dns_split);
}

#[test]
fn vlan_drv() {
    if !may_run() {
        return;
    }
    let _g = serial();
    vlan("drv");
}

#[test]
fn vlan_skb() {
    if !may_run() {
        return;
    }
    let _g = serial();
    vlan("skb");
}

// ---- SIGHUP reload ------------------------------------------------------------------------------

/// `n` TXT queries from the peer to `dst`, each with a fresh 40-hex-digit label under `domain`
/// (the shape of a hex exfiltration).
fn hex_queries(ns: &str, dst: &str, domain: &'static str, n: u16) {
    let dst: SocketAddr = dst.parse().unwrap();
    in_netns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for id in 0..n {
            let mut x = (u64::from(id) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ domain.len() as u64;
            let mut label = String::new();
            while label.len() < 40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                label.push_str(&format!("{x:016x}"));
            }
            label.truncate(40);
            let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for l in std::iter::once(label.as_str()).chain(domain.split('.')) {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 16, 0, 1]);
            s.send_to(&m, dst).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// The highest severity alarmed per domain.
fn worst_by_domain(alarms: &[serde_json::Value]) -> BTreeMap<String, String> {
    let rank = |s: &str| ["info", "low", "high"].iter().position(|x| *x == s).unwrap_or(0);
    let mut m = BTreeMap::<String, String>::new();
    for a in alarms {
        let (Some(d), Some(sev)) = (a["domain"].as_str(), a["severity"].as_str()) else { continue };
        let e = m.entry(d.to_string()).or_insert_with(|| sev.to_string());
        if rank(sev) > rank(e) {
            *e = sev.to_string();
        }
    }
    m
}

/// SIGHUP re-reads the config: a new allow-list entry and a new reputation list take effect on the
/// running sensor without losing the state built before it; a bad file (the config, or a list) is
/// refused, counted and the running config kept.
#[test]
fn sighup_reload() {
    if !may_run() {
        return;
    }
    let _g = serial();
    let t0 = Instant::now();
    let h = host_lab("reload", 5);
    let conf = h.lab.path("dnsentry.toml");
    let list = h.lab.path("intel.txt");
    fs::write(&list, "nothing-here.test\n").unwrap();
    let lists = format!("[[reputation.lists]]\npath = \"{}\"\ncategory = \"c2\"\n", list.display());
    fs::write(&conf, format!("[allowlist]\nextra = []\n{lists}")).unwrap();
    let (mut sensor, _) = start_sensor_with(
        &h.lab,
        &h.host,
        "dnsentry",
        &h.host_if,
        "skb",
        "drop",
        120,
        &["--config", conf.to_str().unwrap(), "--min-severity", "info"],
    );
    let reloads = |result: &str| {
        metric(&scrape(&h.host, METRICS), &format!("dnsentry_config_reloads_total{{result=\"{result}\"}}"))
    };
    let dst = "10.66.5.77:53";
    hex_queries(&h.peer, dst, "leak1-e2e.test", 40);

    // A good reload: leak2-e2e.test becomes a local allow-list entry, and the list now holds
    // leak3-e2e.test.
    fs::write(&list, "# updated feed\nleak3-e2e.test\n").unwrap();
    fs::write(&conf, format!("[allowlist]\nextra = [\"leak2-e2e.test\"]\n{lists}")).unwrap();
    sensor.signal(libc::SIGHUP);
    assert!(wait_until(5.0, || reloads("success") == Some(1.0)), "{}", sensor.stderr());
    // A bad one: refused, counted, the key named, the running config (with leak2) kept.
    fs::write(&conf, "[allowlist]\nextr = [\"leak3-e2e.test\"]\n").unwrap();
    sensor.signal(libc::SIGHUP);
    assert!(wait_until(5.0, || reloads("failure") == Some(1.0)), "{}", sensor.stderr());
    assert!(sensor.stderr().contains("unknown field `extr`"), "{}", sensor.stderr());
    // A broken list: refused naming the file and line; the running lists kept.
    fs::write(&conf, format!("[allowlist]\nextra = [\"leak2-e2e.test\"]\n{lists}")).unwrap();
    fs::write(&list, "<html>\n<body>not found</body>\n").unwrap();
    sensor.signal(libc::SIGHUP);
    assert!(wait_until(5.0, || reloads("failure") == Some(2.0)), "{}", sensor.stderr());
    let err = sensor.stderr();
    assert!(err.contains(&format!("reputation list {}: line 1", list.display())), "{err}");
    assert_eq!(reloads("success"), Some(1.0));
    let entries = metric(&scrape(&h.host, METRICS), "dnsentry_reputation_entries{list=\"intel\"}");
    assert_eq!(entries, Some(1.0), "the reloaded list, kept through the failures");

    hex_queries(&h.peer, dst, "leak2-e2e.test", 40);
    hex_queries(&h.peer, dst, "leak3-e2e.test", 40);
    std::thread::sleep(Duration::from_millis(500));
    let sum = stop_sensor(&mut sensor);
    let worst = worst_by_domain(&read_alarms(&h.lab.path("dnsentry.alarms.jsonl")));
    eprintln!(
        "sighup reload: {:.1} s; dns {}, alarms by domain {worst:?}",
        t0.elapsed().as_secs_f64(),
        sum.dns
    );
    assert_eq!(sum.dns, 120, "{}", sum.dns_split);
    // Before the reload and after it, an unlisted leak alarms; the reloaded entry demotes leak2.
    for d in ["leak1-e2e.test", "leak3-e2e.test"] {
        assert!(worst.get(d).is_some_and(|s| s != "info"), "{d}: {worst:?}");
    }
    assert_eq!(worst.get("leak2-e2e.test").map(String::as_str), Some("info"), "{worst:?}");
    // The list reloaded before the failures raised its alarm on leak3 (once: one client).
    let alarms = read_alarms(&h.lab.path("dnsentry.alarms.jsonl"));
    let listed: Vec<_> = alarms.iter().filter(|a| a["kind"] == "reputation").collect();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["reputation"]["entry"], "leak3-e2e.test");
    assert_eq!(listed[0]["reputation"]["list"], "intel");
    // The state built before the reloads survived them: every domain is still tracked.
    assert!(sensor.stderr().contains("state:            3 domains"), "{}", sensor.stderr());
}

// ---- log rotation -------------------------------------------------------------------------------

/// Sends `frames` raw (AF_PACKET) out of `iface` in namespace `ns`, a few at a time.
fn inject(ns: &str, iface: &str, frames: Vec<Vec<u8>>) {
    let name = std::ffi::CString::new(iface).unwrap();
    in_netns(ns, move || {
        // SAFETY: plain syscalls on a socket this closure owns; `sll` outlives every sendto.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            sll.sll_halen = 6;
            for (i, f) in frames.iter().enumerate() {
                let n = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(n, f.len() as isize, "sendto: {}", std::io::Error::last_os_error());
                // Paced so the socket's rings never overflow (this test counts alarms, not drops).
                if i % 32 == 31 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            libc::close(fd);
        }
    });
}

/// The JSON lines of an alarm file, gzip-compressed or not (missing: none).
fn alarm_lines(p: &Path) -> Vec<String> {
    let Ok(raw) = fs::read(p) else { return Vec::new() };
    let text = if p.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).unwrap();
        s
    } else {
        String::from_utf8(raw).unwrap()
    };
    text.lines().map(str::to_string).collect()
}

/// Whether `sig` is pending for the process (not yet delivered to a thread's handler).
fn signal_pending(pid: i32, sig: i32) -> bool {
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = st.lines().find_map(|l| l.strip_prefix("ShdPnd:")).map(str::trim).unwrap_or("0");
    u64::from_str_radix(mask, 16).unwrap_or(0) & (1 << (sig - 1)) != 0
}

/// logrotate, with the config the package ships, rotates the alarm file of a running sensor that
/// dropped to an unprivileged user, twice: the sensor reopens the file (SIGUSR1, sent by the
/// config's postrotate) in a directory owned by that user, and every alarm of the run is in
/// exactly one of the files. The alarms come from captures of real tunnels (iodine, dns2tcp; made
/// by scripts/make-pcaps.sh) sent raw onto the sensor's link in three phases, one per file.
#[test]
fn log_rotation() {
    if !may_run() {
        return;
    }
    let _g = serial();
    let t0 = Instant::now();
    let h = host_lab("rotate", 6);
    ok(&["ip", "-n", &h.host, "link", "set", &h.host_if, "promisc", "on"]);
    // As the package makes /var/log/dnsentry: owned by the user the sensor drops to (nobody here).
    let logs = h.lab.path("log");
    fs::create_dir(&logs).unwrap();
    let c = std::ffi::CString::new(logs.to_str().unwrap()).unwrap();
    // SAFETY: a valid path; 65534 is nobody/nogroup on Debian.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    assert_eq!(unsafe { libc::chmod(c.as_ptr(), 0o750) }, 0);
    let alarms = logs.join("alarms.jsonl");
    let (mut sensor, _) = start_sensor_with(
        &h.lab,
        &h.host,
        "dnsentry",
        &h.host_if,
        "skb",
        "drop",
        120,
        &["--alarms", alarms.to_str().unwrap(), "--min-severity", "info"],
    );
    assert_unprivileged(sensor.pid());

    // The shipped config, pointed at this test's directory, user and sensor process.
    let shipped = fs::read_to_string(repo().join("packaging/dnsentry.logrotate")).unwrap();
    let signal = "systemctl kill --kill-whom=main --signal=USR1 dnsentry.service";
    assert!(
        shipped.contains(signal)
            && shipped.contains("/var/log/dnsentry/")
            && shipped.contains("create 0640 dnsentry adm")
    );
    let conf = h.lab.path("logrotate.conf");
    fs::write(
        &conf,
        shipped
            .replace("/var/log/dnsentry/", &format!("{}/", logs.display()))
            .replace("create 0640 dnsentry adm", "create 0640 nobody nogroup")
            .replace(signal, &format!("kill -USR1 {}", sensor.pid())),
    )
    .unwrap();
    let state = h.lab.path("logrotate.state");
    let own = repo().join("pcaps");
    let phases: [(&str, &str); 3] = [
        ("iodine-null.pcap", "iodine-lab.test"),
        ("dns2tcp-txt.pcap", "dns2tcp-lab.test"),
        ("iodine-txt.pcap", "iodine-txt.test"),
    ];
    // Newest first: where each phase's alarms end up after the two rotations.
    let files = [logs.join("alarms.jsonl.2.gz"), logs.join("alarms.jsonl.1"), alarms.clone()];
    let all = || files.iter().flat_map(|f| alarm_lines(f)).collect::<Vec<_>>();
    for (i, (pcap, domain)) in phases.iter().enumerate() {
        let frames: Vec<Vec<u8>> = common::pcap_frames(&own.join(pcap)).into_iter().map(|f| f.1).collect();
        inject(&h.peer, &h.peer_if, frames);
        let high = format!("\"domain\":\"{domain}\"");
        let seen = wait_until(30.0, || all().iter().any(|l| l.contains(&high) && l.contains("\"high\"")));
        assert!(seen, "phase {i}: no high alarm for {domain}: {:?}\n{}", all(), sensor.stderr());
        if i < 2 {
            let out = run(&["logrotate", "-f", "-s", state.to_str().unwrap(), conf.to_str().unwrap()]);
            assert!(out.status.success(), "logrotate: {}", text(&out));
            // The sensor's handler has run (the signal is no longer pending): its next alarm goes
            // to the new file.
            assert!(wait_until(5.0, || !signal_pending(sensor.pid(), libc::SIGUSR1)));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let sum_err = {
        let st = sensor.stop_with(libc::SIGTERM, 20.0);
        assert!(st.is_some_and(|s| s.success()), "{}", sensor.stderr());
        sensor.stderr()
    };
    let per_file: Vec<Vec<String>> = files.iter().map(|f| alarm_lines(f)).collect();
    eprintln!(
        "log rotation: {:.1} s; alarms per file (oldest first) {:?}",
        t0.elapsed().as_secs_f64(),
        per_file.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // Each phase's alarms are in its own file: the sensor reopened the file after each rotation.
    for (i, (lines, (_, domain))) in per_file.iter().zip(&phases).enumerate() {
        assert!(!lines.is_empty(), "file {i} is empty: {per_file:?}");
        for l in lines {
            assert!(
                l.contains(&format!("\"domain\":\"{domain}\"")),
                "file {i} holds another phase's alarm: {l}"
            );
        }
    }
    // Every alarm exactly once across the files, each a whole JSON line.
    let mut every: Vec<String> = per_file.concat();
    for l in &every {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let n = every.len();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), n, "an alarm was written twice");
    assert!(sum_err.contains("alarm file:       reopened 2 times"), "{sum_err}");
    // No other file appeared (nothing written elsewhere), and the new files are the user's.
    let mut names: Vec<String> =
        fs::read_dir(&logs).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    names.sort();
    assert_eq!(names, ["alarms.jsonl", "alarms.jsonl.1", "alarms.jsonl.2.gz"]);
    let meta = fs::metadata(&alarms).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (65534, 0o640));
}
