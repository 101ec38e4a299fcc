//! The NetFlow v9 / IPFIX export against real collectors (Debian packages, loopback only): pmacct's
//! `nfacctd` with the `aggregate_primitives` files of `tests/netflow/` and JSON output, `nfcapd` +
//! `nfdump`, and tshark's cflow dissector on a capture of the export. dnsentry replays the
//! repository's captures; what each collector decodes is compared with the transactions tshark
//! decodes from the same capture. Skipped when a tool is missing, except in CI (`CI=true`), where
//! they must be installed (`cargo xtask setup`). Collector set-up: docs/netflow.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fs::File;
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// v9 DNS_QUERY size the tests configure (`export.qname_bytes`, also `len` in primitives-v9.lst).
const QNAME_BYTES: usize = 128;
/// pmacct prints fixed-length string primitives in JSON through a 64-byte buffer (63 characters);
/// variable-length ones (IPFIX) whole.
const PMACCT_JSON_STR: usize = 63;
const RCODE_NO_RESPONSE: u16 = 65535;
const FLAG_TRUNCATED: u64 = 1;
const FLAG_TCP: u64 = 1 << 1;
const FLAG_NXDOMAIN: u64 = 1 << 2;
const FLAG_ALARMED: u64 = 1 << 3;
const FLAG_NO_RESPONSE: u64 = 1 << 4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool's path: on PATH, or in the sbin directories (nfacctd and nfcapd live in /usr/sbin, which
/// is not on an ordinary user's PATH).
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True if all the tools are installed; in CI they must be.
fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| tool(t).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing:?} not installed (cargo xtask setup)");
    eprintln!("skipping: {missing:?} not installed (cargo xtask setup)");
    false
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

mod sys {
    //! The two libc calls the tests need (no libc crate among the dev-dependencies).
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    }
    pub const SIGKILL: i32 = 9;
    pub const SIGTERM: i32 = 15;
    pub const SOL_SOCKET: i32 = 1;
    pub const SO_RCVBUF: i32 = 8;
}

/// A collector process in a process group of its own (nfacctd forks its plugins), killed with the
/// whole group when the test ends, passed or not.
struct Daemon {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr in `log`, and waits until the log contains `ready`.
    fn start(name: &'static str, cmd: &mut Command, log: PathBuf, ready: &str) -> Daemon {
        let f = File::create(&log).unwrap();
        cmd.process_group(0).stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let mut d = Daemon { child, name, log };
        wait_for(&format!("{name} to start"), Duration::from_secs(10), || {
            if let Ok(Some(s)) = d.child.try_wait() {
                panic!("{name} exited ({s}):\n{}", d.log_text());
            }
            d.log_text().contains(ready)
        });
        d
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) with a process group we created; no memory is involved.
        unsafe {
            sys::kill(-(self.child.id() as i32), sig);
        }
    }

    /// SIGTERM, then waits for the exit (nfcapd writes and closes its file on SIGTERM).
    fn terminate(&mut self) {
        self.signal_group(sys::SIGTERM);
        let name = self.name;
        wait_for(&format!("{name} to exit"), Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_group(sys::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// One DNS transaction as tshark sees it in a capture, or as a collector decoded it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Txn {
    client: String,
    server: String,
    client_port: u16,
    server_port: u16,
    proto: u8,
    id: u16,
    qname: String,
    qtype: u16,
    rcode: u16,
    packets: u64,
    bytes: u64,
}

/// A transaction with its times (ms since the epoch), for the collectors that keep them.
#[derive(Debug, Clone)]
struct Timed {
    txn: Txn,
    start_ms: u64,
    end_ms: u64,
}

fn epoch_ms(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let ms: String = frac.chars().chain("000".chars()).take(3).collect();
    secs.parse::<u64>().unwrap() * 1000 + ms.parse::<u64>().unwrap()
}

/// The transactions of a capture, from tshark's decode: each query matched to its response by
/// (client, server, client port, DNS id, name), as docs/netflow.md defines a transaction. Messages
/// tshark reassembles from IP fragments are left out: dnsentry skips fragments (docs/detection.md).
fn tshark_transactions(pcap: &Path) -> Vec<Timed> {
    const FIELDS: [&str; 15] = [
        "frame.time_epoch",
        "ip.src",
        "ip.dst",
        "ip.proto",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
        "tcp.srcport",
        "tcp.dstport",
        "dns.length",
        "dns.id",
        "dns.qry.name",
        "dns.qry.type",
        "dns.flags.rcode",
        "dns.flags.response",
    ];
    let mut cmd = Command::new(tool("tshark").unwrap());
    cmd.arg("-r").arg(pcap).args([
        "-Y",
        "dns && !icmp && !ip.fragments && !ipv6.fragments",
        "-T",
        "fields",
        "-E",
        "separator=/t",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "tshark -r {}", pcap.display());
    let mut txns: Vec<Timed> = Vec::new();
    let mut pending: BTreeMap<(String, String, u16, u16, String), usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 15, "tshark line: {line}");
        assert!(!f[10].contains(','), "several DNS messages in one frame: {line}");
        let t = epoch_ms(f[0]);
        let proto: u8 = f[3].parse().unwrap();
        let (sport, dport, len): (u16, u16, u64) = match proto {
            17 => (f[4].parse().unwrap(), f[5].parse().unwrap(), f[6].parse::<u64>().unwrap() - 8),
            _ => (f[7].parse().unwrap(), f[8].parse().unwrap(), f[9].parse().unwrap()),
        };
        let id = u16::from_str_radix(f[10].trim_start_matches("0x"), 16).unwrap();
        let qname = if f[11] == "<Root>" { String::new() } else { f[11].to_ascii_lowercase() };
        let qtype: u16 = f[12].parse().unwrap();
        if f[14] == "0" || f[14] == "False" {
            pending.insert((f[1].into(), f[2].into(), sport, id, qname.clone()), txns.len());
            txns.push(Timed {
                txn: Txn {
                    client: f[1].into(),
                    server: f[2].into(),
                    client_port: sport,
                    server_port: dport,
                    proto,
                    id,
                    qname,
                    qtype,
                    rcode: RCODE_NO_RESPONSE,
                    packets: 1,
                    bytes: len,
                },
                start_ms: t,
                end_ms: t,
            });
        } else {
            let rcode: u16 = f[13].parse().unwrap();
            match pending.remove(&(f[2].into(), f[1].into(), dport, id, qname.clone())) {
                Some(i) => {
                    let q = &mut txns[i];
                    q.txn.rcode = rcode;
                    q.txn.packets = 2;
                    q.txn.bytes += len;
                    q.end_ms = t;
                }
                None => txns.push(Timed {
                    txn: Txn {
                        client: f[2].into(),
                        server: f[1].into(),
                        client_port: dport,
                        server_port: sport,
                        proto,
                        id,
                        qname,
                        qtype,
                        rcode,
                        packets: 1,
                        bytes: len,
                    },
                    start_ms: t,
                    end_ms: t,
                }),
            }
        }
    }
    assert!(!txns.is_empty(), "no DNS in {}", pcap.display());
    txns
}

/// benign.pcap's transactions, decoded once for all tests.
fn benign() -> &'static [Timed] {
    static T: OnceLock<Vec<Timed>> = OnceLock::new();
    T.get_or_init(|| tshark_transactions(&root().join("pcaps/benign.pcap")))
}

/// The name as it travels in v9: the rightmost `QNAME_BYTES` bytes.
fn v9_name(q: &str) -> String {
    let b = q.as_bytes();
    String::from_utf8_lossy(&b[b.len().saturating_sub(QNAME_BYTES)..]).into_owned()
}

fn txns_with_names(want: &[Timed], name: impl Fn(&str) -> String) -> Vec<Txn> {
    want.iter().map(|t| Txn { qname: name(&t.txn.qname), ..t.txn.clone() }).collect()
}

/// Asserts two multisets are equal, showing the first differences.
fn assert_same<T: Ord + Clone + Debug>(what: &str, got: &[T], want: &[T]) {
    let count = |v: &[T]| {
        let mut m: BTreeMap<T, i64> = BTreeMap::new();
        for x in v {
            *m.entry(x.clone()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    let diff = |a: &BTreeMap<T, i64>, b: &BTreeMap<T, i64>| -> Vec<T> {
        a.iter()
            .filter(|(k, n)| b.get(*k).copied().unwrap_or(0) < **n)
            .map(|(k, _)| k.clone())
            .take(5)
            .collect()
    };
    let (missing, extra) = (diff(&w, &g), diff(&g, &w));
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} expected, {} decoded\nexpected but not decoded (first 5): {missing:#?}\n\
         decoded but not expected (first 5): {extra:#?}",
        want.len(),
        got.len()
    );
}

struct Replayed {
    stderr: String,
    sent: u64,
}

/// The number nearest before `word` on the summary line ("3208 records sent, 0 dropped").
fn number_before(line: &str, word: &str) -> Option<u64> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let i = toks.iter().position(|t| t.trim_matches(|c: char| !c.is_alphanumeric()) == word)?;
    toks[..i].iter().rev().find_map(|t| t.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
}

/// Replays captures from pcaps/ to collectors on loopback; returns the summary once dnsentry has
/// exited (a replay flushes pending queries and sends everything before exiting).
fn replay(dir: &Path, files: &[&str], collectors: &[u16], format: &str) -> Replayed {
    replay_with(dir, files, collectors, format, &[])
}

/// [`replay`] with more command-line arguments.
fn replay_with(dir: &Path, files: &[&str], collectors: &[u16], format: &str, extra: &[&str]) -> Replayed {
    let config = dir.join("dnsentry.toml");
    std::fs::write(&config, format!("[export]\nqname_bytes = {QNAME_BYTES}\nmin_score = 0\n")).unwrap();
    let err_path = dir.join("replay.stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsentry"));
    cmd.arg("replay");
    for f in files {
        cmd.arg(root().join("pcaps").join(f));
    }
    for p in collectors {
        cmd.arg("--netflow").arg(format!("127.0.0.1:{p}"));
    }
    cmd.args(["--export-format", format, "--config"]).arg(&config).args(extra);
    cmd.stdin(Stdio::null())
        .stdout(File::create(dir.join("replay.stdout")).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("replay of {files:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "replay {files:?}: {status}\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("netflow:"))
        .unwrap_or_else(|| panic!("no `netflow:` line in the summary:\n{stderr}"));
    let sent = number_before(line, "sent").unwrap_or_else(|| panic!("records sent in `{line}`"));
    let dropped = number_before(line, "dropped").unwrap_or_else(|| panic!("records dropped in `{line}`"));
    assert_eq!(dropped, 0, "a replay drops nothing: {line}");
    Replayed { stderr, sent }
}

// ---------------------------------------------------------------------------------------------
// pmacct nfacctd

struct Nfacctd {
    daemon: Daemon,
    port: u16,
    json: PathBuf,
}

/// nfacctd with tests/netflow/nfacctd.conf and the primitives file of the format.
fn nfacctd(dir: &Path, format: &str) -> Nfacctd {
    let port = free_udp_port();
    let json = dir.join(format!("nfacctd-{port}.json"));
    let template = std::fs::read_to_string(root().join("tests/netflow/nfacctd.conf")).unwrap();
    let primitives = root().join(format!("tests/netflow/primitives-{format}.lst"));
    let conf = template
        .replace("@PORT@", &port.to_string())
        .replace("@PRIMITIVES@", primitives.to_str().unwrap())
        .replace("@OUT@", json.to_str().unwrap());
    let conf_path = dir.join(format!("nfacctd-{port}.conf"));
    std::fs::write(&conf_path, conf).unwrap();
    let mut cmd = Command::new(tool("nfacctd").unwrap());
    cmd.arg("-f").arg(&conf_path);
    let log = dir.join(format!("nfacctd-{port}.log"));
    // The core listens before its print plugin is up, and drops what arrives until then: wait for
    // the plugin's start-up line.
    let daemon = Daemon::start("nfacctd", &mut cmd, log, "JSON: setting object handlers");
    std::thread::sleep(Duration::from_millis(300));
    Nfacctd { daemon, port, json }
}

impl Nfacctd {
    /// The JSON records written so far, once `expected` are there (or 20 s have passed) and one
    /// more purge interval went by without new ones.
    fn records(&self, expected: usize) -> Vec<Value> {
        let read = || -> Vec<Value> {
            let text = std::fs::read_to_string(&self.json).unwrap_or_default();
            // Whole lines only: a purge may be writing the last one.
            text.split_inclusive('\n')
                .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("nfacctd JSON `{l}`: {e}")))
                .collect()
        };
        let start = Instant::now();
        let mut last = usize::MAX;
        loop {
            let n = read().len();
            if n >= expected && n == last {
                return read();
            }
            if start.elapsed() > Duration::from_secs(20) {
                eprintln!("nfacctd wrote {n} of {expected} records; its log:\n{}", self.daemon.log_text());
                return read();
            }
            last = n;
            std::thread::sleep(Duration::from_millis(1500));
        }
    }
}

fn js(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => panic!("no `{k}` in {v}"),
        other => other.to_string(),
    }
}

fn ju(v: &Value, k: &str) -> u64 {
    js(v, k).parse().unwrap_or_else(|_| panic!("`{k}` is not a number in {v}"))
}

/// A `semantics=hex` primitive (the reasons and flags bitmaps), printed without `0x`.
fn jx(v: &Value, k: &str) -> u64 {
    let s = js(v, k);
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("`{k}` is not hex in {v}"))
}

/// (client, client port, DNS id) of the responses in `pcap` with a CNAME target ending in `suffix`.
fn cname_responses(pcap: &Path, suffix: &str) -> BTreeSet<(String, u16, u16)> {
    let out = Command::new(tool("tshark").unwrap())
        .arg("-r")
        .arg(pcap)
        .args(["-Y", "dns.flags.response == 1 && dns.cname", "-T", "fields", "-E", "separator=/t"])
        .args(["-e", "ip.dst", "-e", "udp.dstport", "-e", "tcp.dstport", "-e", "dns.id", "-e", "dns.cname"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let port = if f[1].is_empty() { f[2] } else { f[1] };
            let id = u16::from_str_radix(f[3].trim_start_matches("0x"), 16).ok()?;
            let port: u16 = port.parse().ok()?;
            f[4].split(',')
                .any(|c| c.to_ascii_lowercase().ends_with(suffix))
                .then(|| (f[0].to_string(), port, id))
        })
        .collect()
}

fn pmacct_txn(v: &Value) -> Txn {
    Txn {
        client: js(v, "ip_src"),
        server: js(v, "ip_dst"),
        client_port: ju(v, "port_src") as u16,
        server_port: ju(v, "port_dst") as u16,
        proto: ju(v, "ip_proto") as u8,
        id: ju(v, "dns_query_id") as u16,
        qname: js(v, "dns_query"),
        qtype: ju(v, "dns_query_type") as u16,
        rcode: ju(v, "dns_ret_code") as u16,
        packets: ju(v, "packets"),
        bytes: ju(v, "bytes"),
    }
}

#[test]
fn nfacctd_v9_json_matches_tshark() {
    if !have(&["nfacctd", "tshark"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = benign();
    let c = nfacctd(dir.path(), "v9");
    let r = replay(dir.path(), &["benign.pcap"], &[c.port], "v9");
    assert_eq!(r.sent, want.len() as u64, "records sent vs transactions in the capture\n{}", r.stderr);
    let got = c.records(want.len());
    let decoded: Vec<Txn> = got.iter().map(pmacct_txn).collect();
    let expected = txns_with_names(want, |q| v9_name(q).chars().take(PMACCT_JSON_STR).collect());
    assert_same("nfacctd v9 records", &decoded, &expected);

    // dnsentry's own fields, as nfacctd decoded them, agree with the standard ones.
    let full_len: BTreeMap<(String, u16, u16), usize> = want
        .iter()
        .map(|t| ((t.txn.client.clone(), t.txn.client_port, t.txn.id), t.txn.qname.len()))
        .collect();
    let mut truncated = 0;
    for v in &got {
        let t = pmacct_txn(v);
        let flags = jx(v, "dnsentry_flags");
        let len = full_len[&(t.client.clone(), t.client_port, t.id)];
        assert_eq!(ju(v, "dnsentry_qname_len") as usize, len, "QNAME_LEN of {v}");
        assert_eq!(flags & FLAG_TRUNCATED != 0, len > QNAME_BYTES, "qname_truncated flag of {v}");
        assert_eq!(flags & FLAG_TCP != 0, t.proto == 6, "tcp flag of {v}");
        assert_eq!(flags & FLAG_NXDOMAIN != 0, t.rcode == 3, "nxdomain flag of {v}");
        assert_eq!(flags & FLAG_NO_RESPONSE != 0, t.rcode == RCODE_NO_RESPONSE, "no_response flag of {v}");
        assert!(ju(v, "dnsentry_score") <= 100, "score of {v}");
        truncated += (len > QNAME_BYTES) as usize;
    }
    assert!(truncated > 0, "benign.pcap has names longer than {QNAME_BYTES} bytes");
}

#[test]
fn nfacctd_ipfix_json_has_whole_names() {
    if !have(&["nfacctd", "tshark"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = benign();
    let c = nfacctd(dir.path(), "ipfix");
    // Two domains of the capture on a c2 (code 2) reputation list: a name under one, or a response
    // that CNAMEs to one, carries the category.
    let list = dir.path().join("c2.txt");
    std::fs::write(&list, "github.com\ncloudfront.net\n").unwrap();
    let arg = format!("c2:{}", list.display());
    let r = replay_with(dir.path(), &["benign.pcap"], &[c.port], "ipfix", &["--reputation", &arg]);
    assert_eq!(r.sent, want.len() as u64, "records sent vs transactions in the capture\n{}", r.stderr);
    let got = c.records(want.len());
    let decoded: Vec<Txn> = got.iter().map(pmacct_txn).collect();
    assert_same("nfacctd IPFIX records", &decoded, &txns_with_names(want, str::to_string));
    let via_cname = cname_responses(&root().join("pcaps/benign.pcap"), ".cloudfront.net");
    assert!(via_cname.len() > 10, "benign.pcap has CNAMEs into cloudfront.net");
    let listed =
        |q: &str| ["github.com", "cloudfront.net"].iter().any(|d| q == *d || q.ends_with(&format!(".{d}")));
    let (mut direct, mut cnamed) = (0, 0);
    for v in &got {
        assert_eq!(ju(v, "dnsentry_qname_len") as usize, js(v, "dns_query").len(), "QNAME_LEN of {v}");
        assert_eq!(jx(v, "dnsentry_flags") & FLAG_TRUNCATED, 0, "IPFIX never truncates: {v}");
        let t = pmacct_txn(v);
        let by_cname = via_cname.contains(&(t.client.clone(), t.client_port, t.id));
        let want = if listed(&t.qname) || by_cname { 2 } else { 0 };
        assert_eq!(ju(v, "dnsentry_reputation"), want, "reputation category of {v}");
        direct += listed(&t.qname) as usize;
        cnamed += (by_cname && !listed(&t.qname)) as usize;
    }
    assert!(direct > 20 && cnamed > 10, "{direct} listed names, {cnamed} through a CNAME");
}

#[test]
fn nfacctd_v9_tunnel_is_scored() {
    if !have(&["nfacctd", "tshark"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = tshark_transactions(&root().join("pcaps/iodine-null.pcap"));
    let c = nfacctd(dir.path(), "v9");
    let r = replay(dir.path(), &["iodine-null.pcap"], &[c.port], "v9");
    assert_eq!(r.sent, want.len() as u64, "records sent vs transactions in the capture\n{}", r.stderr);
    let got = c.records(want.len());
    let packets: u64 = got.iter().map(|v| ju(v, "packets")).sum();
    assert_eq!(packets, want.iter().map(|t| t.txn.packets).sum::<u64>(), "DNS messages in the records");
    // iodine's NULL queries: long names (kept rightmost, flagged), high score, alarmed, reasons set.
    let null: Vec<&Value> = got.iter().filter(|v| ju(v, "dns_query_type") == 10).collect();
    assert!(null.len() > 100, "{} NULL records", null.len());
    for v in &null {
        let len = ju(v, "dnsentry_qname_len") as usize;
        assert_eq!(jx(v, "dnsentry_flags") & FLAG_TRUNCATED != 0, len > QNAME_BYTES, "{v}");
    }
    let high: Vec<&&Value> = null.iter().filter(|v| ju(v, "dnsentry_score") >= 70).collect();
    assert!(high.len() * 2 > null.len(), "{} of {} NULL records score 70+", high.len(), null.len());
    assert!(high.iter().all(|v| jx(v, "dnsentry_reasons") != 0), "a high score has reasons");
    assert!(high.iter().any(|v| jx(v, "dnsentry_flags") & FLAG_ALARMED != 0), "alarmed flag set");
}

// ---------------------------------------------------------------------------------------------
// nfcapd + nfdump

struct Nfcapd {
    daemon: Daemon,
    port: u16,
    dir: PathBuf,
}

fn nfcapd(dir: &Path) -> Nfcapd {
    let port = free_udp_port();
    let flows = dir.join(format!("nfcapd-{port}"));
    std::fs::create_dir_all(&flows).unwrap();
    let mut cmd = Command::new(tool("nfcapd").unwrap());
    cmd.args(["-b", "127.0.0.1", "-p", &port.to_string(), "-t", "60", "-B", "4194304", "-w"]).arg(&flows);
    let daemon = Daemon::start("nfcapd", &mut cmd, dir.join(format!("nfcapd-{port}.log")), "Startup");
    Nfcapd { daemon, port, dir: flows }
}

/// "2026-11-27 01:27:12.513" (UTC) in ms since the epoch.
fn utc_ms(s: &str) -> u64 {
    let (date, time) = s.trim().split_once(' ').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    // days from civil (Howard Hinnant)
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    let t: Vec<&str> = time.split(':').collect();
    let secs = t[0].parse::<i64>().unwrap() * 3600 + t[1].parse::<i64>().unwrap() * 60;
    (days * 86_400_000 + secs * 1000) as u64 + epoch_ms(t[2])
}

impl Nfcapd {
    /// Stops nfcapd (it closes its file) and returns (nfdump -I text, flows as nfdump prints them).
    fn finish(&mut self) -> (String, Vec<Timed>) {
        std::thread::sleep(Duration::from_millis(1500));
        self.daemon.terminate();
        let log = self.daemon.log_text();
        assert!(log.contains("Sequence Errors: 0"), "nfcapd:\n{log}");
        let nfdump = tool("nfdump").unwrap();
        let info = Command::new(&nfdump).arg("-R").arg(&self.dir).arg("-I").output().unwrap();
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        let out = Command::new(&nfdump)
            .env("TZ", "UTC")
            .arg("-R")
            .arg(&self.dir)
            .args(["-q", "-N", "-o", "fmt:%ts|%te|%sa|%da|%sp|%dp|%pr|%pkt|%byt"])
            .output()
            .unwrap();
        assert!(out.status.success(), "nfdump: {}", String::from_utf8_lossy(&out.stderr));
        let flows = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains('|'))
            .map(|l| {
                let f: Vec<&str> = l.split('|').map(str::trim).collect();
                let proto = match f[6] {
                    "UDP" => 17,
                    "TCP" => 6,
                    p => p.parse().unwrap(),
                };
                Timed {
                    txn: Txn {
                        client: f[2].into(),
                        server: f[3].into(),
                        client_port: f[4].parse().unwrap(),
                        server_port: f[5].parse().unwrap(),
                        proto,
                        id: 0,
                        qname: String::new(),
                        qtype: 0,
                        rcode: 0,
                        packets: f[7].parse().unwrap(),
                        bytes: f[8].parse().unwrap(),
                    },
                    start_ms: utc_ms(f[0]),
                    end_ms: utc_ms(f[1]),
                }
            })
            .collect();
        (info, flows)
    }
}

/// The fields nfdump keeps: addresses, ports, protocol, packets, bytes, start and end times.
fn nfdump_view(t: &Timed) -> (String, String, u16, u16, u8, u64, u64, u64, u64) {
    let x = &t.txn;
    (
        x.client.clone(),
        x.server.clone(),
        x.client_port,
        x.server_port,
        x.proto,
        x.packets,
        x.bytes,
        t.start_ms,
        t.end_ms,
    )
}

/// A counter of `nfdump -I`, summed over the files it describes (nfcapd may have rotated one).
fn info_value(info: &str, key: &str) -> u64 {
    let values: Vec<u64> = info.lines().filter_map(|l| l.strip_prefix(key)?.trim().parse().ok()).collect();
    assert!(!values.is_empty(), "no `{key}` in nfdump -I:\n{info}");
    values.iter().sum()
}

fn nfdump_check(format: &str) {
    if !have(&["nfcapd", "nfdump", "tshark"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = benign();
    let mut c = nfcapd(dir.path());
    let r = replay(dir.path(), &["benign.pcap"], &[c.port], format);
    assert_eq!(r.sent, want.len() as u64, "records sent vs transactions in the capture\n{}", r.stderr);
    let (info, flows) = c.finish();
    assert_eq!(info_value(&info, "Sequence failures:"), 0, "{info}");
    assert_eq!(info_value(&info, "Flows:"), want.len() as u64, "{info}");
    assert_eq!(info_value(&info, "Packets:"), want.iter().map(|t| t.txn.packets).sum::<u64>(), "{info}");
    assert_eq!(info_value(&info, "Bytes:"), want.iter().map(|t| t.txn.bytes).sum::<u64>(), "{info}");
    let got: Vec<_> = flows.iter().map(nfdump_view).collect();
    let expected: Vec<_> = want.iter().map(nfdump_view).collect();
    assert_same(&format!("nfdump {format} flows"), &got, &expected);
}

#[test]
fn nfdump_v9_sequence_counts_and_fields() {
    nfdump_check("v9");
}

#[test]
fn nfdump_ipfix_sequence_counts_and_fields() {
    nfdump_check("ipfix");
}

// ---------------------------------------------------------------------------------------------
// tshark on a capture of the export

/// A UDP collector that only records datagrams (with a 4 MB socket buffer: a replay exports in
/// bursts), to be written as a pcap for tshark. Capturing on loopback would need privileges.
struct Sink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(SystemTime, u16, Vec<u8>)>>,
}

fn sink() -> Sink {
    use std::os::fd::AsRawFd;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: i32 = 4 << 20;
    // SAFETY: setsockopt(2) on our socket with a pointer to a live i32 and its size.
    unsafe {
        sys::setsockopt(
            sock.as_raw_fd(),
            sys::SOL_SOCKET,
            sys::SO_RCVBUF,
            (&size as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        );
    }
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => got.push((SystemTime::now(), from.port(), buf[..n].to_vec())),
                Err(_) if flag.load(Ordering::Relaxed) => return got,
                Err(_) => {}
            }
        }
    });
    Sink { port, stop, thread }
}

impl Sink {
    fn finish(self) -> Vec<(SystemTime, u16, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Writes datagrams as a pcap of raw IPv4 packets (link type 101) from 127.0.0.1:sport to :port.
fn write_pcap(path: &Path, port: u16, dgrams: &[(SystemTime, u16, Vec<u8>)]) {
    let mut out = Vec::new();
    for v in [
        0xa1b2c3d4u32.to_le_bytes(),
        [2, 0, 4, 0],
        [0; 4],
        [0; 4],
        65535u32.to_le_bytes(),
        101u32.to_le_bytes(),
    ] {
        out.extend_from_slice(&v);
    }
    for (t, sport, payload) in dgrams {
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        let total = 28 + payload.len();
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        let mut sum = ip.chunks(2).map(|c| (u32::from(c[0]) << 8) | u32::from(c[1])).sum::<u32>();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let sum = !(sum as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ip.extend_from_slice(&sport.to_be_bytes());
        ip.extend_from_slice(&port.to_be_bytes());
        ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(payload);
        out.extend_from_slice(&(d.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&d.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&ip);
    }
    std::fs::write(path, out).unwrap();
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// What one export packet holds, from the `cflow` layer of `tshark -T json`.
#[derive(Default)]
struct Decoded<'a> {
    sequence: u64,
    count: Option<u64>,
    set_ids: Vec<String>,
    template_ids: Vec<String>,
    /// Records of the DNS templates.
    flows: Vec<&'a serde_json::Map<String, Value>>,
    /// Records of the statistics options template.
    options: u64,
}

fn decoded_packet(cflow: &Value) -> Decoded<'_> {
    let num = |k: &str| cflow[k].as_str().map(|s| s.parse::<u64>().unwrap());
    let mut d =
        Decoded { sequence: num("cflow.sequence").unwrap(), count: num("cflow.count"), ..Default::default() };
    for (key, set) in cflow.as_object().unwrap() {
        if !(key.starts_with("FlowSet ") || key.starts_with("Set ")) {
            continue;
        }
        d.set_ids.push(set["cflow.flowset_id"].as_str().unwrap().to_string());
        for (k, v) in set.as_object().unwrap() {
            if k.starts_with("Template (") || k.starts_with("Options Template (") {
                d.template_ids.push(v["cflow.template_id"].as_str().unwrap().to_string());
            } else if k.starts_with("Flow ") {
                match v.get("cflow.srcaddr").or(v.get("cflow.srcaddrv6")) {
                    Some(_) => d.flows.push(v.as_object().unwrap()),
                    None => d.options += 1,
                }
            }
        }
    }
    d
}

fn tshark_export_check(format: &str) {
    if !have(&["tshark"]) {
        return;
    }
    let v9 = format == "v9";
    let dir = tempfile::tempdir().unwrap();
    let want = benign();
    let s = sink();
    let port = s.port;
    let r = replay(dir.path(), &["benign.pcap"], &[port], format);
    let dgrams = s.finish();
    assert_eq!(r.sent, want.len() as u64, "records sent vs transactions in the capture\n{}", r.stderr);

    // Wire checks tshark does not make: MTU, header, set lengths and padding.
    for (_, _, d) in &dgrams {
        assert!(d.len() <= 1400, "export packet of {} bytes (mtu 1400)", d.len());
        assert_eq!(be16(d, 0), if v9 { 9 } else { 10 }, "version");
        let header = if v9 { 20 } else { 16 };
        if !v9 {
            assert_eq!(be16(d, 2) as usize, d.len(), "IPFIX message length");
        }
        let mut at = header;
        while at < d.len() {
            let len = be16(d, at + 2) as usize;
            assert!(
                len >= 4 && at + len <= d.len(),
                "set at {at}: length {len} in a {}-byte packet",
                d.len()
            );
            assert!(!v9 || len.is_multiple_of(4), "v9 flowset of {len} bytes is not padded to 4");
            at += len;
        }
    }

    let pcap = dir.path().join("export.pcap");
    write_pcap(&pcap, port, &dgrams);
    let tshark = tool("tshark").unwrap();
    let decode = format!("udp.port=={port},cflow");
    let verbose = Command::new(&tshark).arg("-r").arg(&pcap).args(["-d", &decode, "-V"]).output().unwrap();
    assert!(verbose.status.success());
    let text = String::from_utf8_lossy(&verbose.stdout);
    for bad in ["no template found", "Malformed", "Expert Info (Error", "Expert Info (Warning"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(bad)).collect();
        assert!(
            lines.is_empty(),
            "tshark -V: {} lines with `{bad}`, first: {:#?}",
            lines.len(),
            &lines[..lines.len().min(5)]
        );
    }

    let out =
        Command::new(&tshark).arg("-r").arg(&pcap).args(["-d", &decode, "-T", "json"]).output().unwrap();
    assert!(out.status.success());
    let frames: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(frames.len(), dgrams.len(), "every export packet was captured");
    let packets: Vec<Decoded> =
        frames.iter().map(|f| decoded_packet(&f["_source"]["layers"]["cflow"])).collect();

    // Templates first: 256, 257 and the options template 258, then (v9) its statistics record.
    // IPFIX carries the statistics record only in the last packet (see encode.rs: nfdump 1.7 does
    // not count options data records in the sequence, RFC 7011 does).
    assert_eq!(packets[0].template_ids, ["256", "257", "258"], "templates of the first packet");
    let sets: &[&str] = if v9 { &["0", "1", "258"] } else { &["2", "3"] };
    assert_eq!(packets[0].set_ids, sets, "sets of the first packet");
    if !v9 {
        let last = packets.last().expect("packets");
        assert_eq!(last.set_ids, ["2", "3", "258"], "the last IPFIX packet carries the statistics");
    }

    let mut decoded = Vec::new();
    let mut expect_seq: Option<u64> = None;
    for (i, p) in packets.iter().enumerate() {
        if let Some(e) = expect_seq {
            assert_eq!(p.sequence, e, "sequence number of export packet {}", i + 1);
        }
        let data = p.flows.len() as u64 + p.options;
        if v9 {
            let count = p.count.expect("v9 header count");
            assert_eq!(
                count,
                p.template_ids.len() as u64 + data,
                "v9 header count of export packet {}",
                i + 1
            );
            expect_seq = Some((p.sequence + 1) & 0xffff_ffff);
        } else {
            // RFC 7011: the number of data records (options data included) sent before.
            expect_seq = Some((p.sequence + data) & 0xffff_ffff);
        }
        for f in &p.flows {
            let get = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_else(|| panic!("no {k} in {f:?}"));
            let num = |k: &str| get(k).parse::<u64>().unwrap();
            decoded.push(Txn {
                client: get("cflow.srcaddr").into(),
                server: get("cflow.dstaddr").into(),
                client_port: num("cflow.srcport") as u16,
                server_port: num("cflow.dstport") as u16,
                proto: num("cflow.protocol") as u8,
                packets: num("cflow.packets"),
                bytes: num("cflow.octets"),
                // tshark leaves out an empty name (the root).
                qname: f.get("cflow.pie.ntop.dns_query").and_then(Value::as_str).unwrap_or("").into(),
                id: num("cflow.pie.ntop.dns_query_id") as u16,
                qtype: num("cflow.pie.ntop.dns_query_type") as u16,
                rcode: num("cflow.pie.ntop.dns_ret_code") as u16,
            });
        }
    }
    let expected = if v9 { txns_with_names(want, v9_name) } else { txns_with_names(want, str::to_string) };
    assert_same(&format!("tshark {format} records"), &decoded, &expected);
}

#[test]
fn tshark_decodes_v9_export() {
    tshark_export_check("v9");
}

#[test]
fn tshark_decodes_ipfix_export() {
    tshark_export_check("ipfix");
}

// ---------------------------------------------------------------------------------------------

#[test]
fn two_collectors_both_get_everything() {
    if !have(&["nfacctd", "nfcapd", "nfdump", "tshark"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = benign();
    let a = nfacctd(dir.path(), "v9");
    let mut b = nfcapd(dir.path());
    let r = replay(dir.path(), &["benign.pcap"], &[a.port, b.port], "v9");
    assert_eq!(r.sent, want.len() as u64, "records sent (per collector)\n{}", r.stderr);
    let got = a.records(want.len());
    let decoded: Vec<Txn> = got.iter().map(pmacct_txn).collect();
    let expected = txns_with_names(want, |q| v9_name(q).chars().take(PMACCT_JSON_STR).collect());
    assert_same("nfacctd records (collector A)", &decoded, &expected);
    let (info, flows) = b.finish();
    assert_eq!(info_value(&info, "Sequence failures:"), 0, "{info}");
    let got: Vec<_> = flows.iter().map(nfdump_view).collect();
    assert_same("nfdump flows (collector B)", &got, &want.iter().map(nfdump_view).collect::<Vec<_>>());
}
