//! Domain reputation end to end: lists in every format (written here, never downloaded), a capture
//! made here where clients resolve listed names directly, under a listed parent, through a CNAME
//! chain and in mixed case, replayed by the `dnsentry` binary. Every hit alarms once per (client,
//! listed domain) per suppression interval; look-alike names do not.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dnsentry");
const A: [u8; 4] = [10, 1, 0, 1];
const B: [u8; 4] = [10, 1, 0, 2];
const RESOLVER: [u8; 4] = [10, 1, 0, 53];

fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A DNS message: one question, and answers as (owner, type, rdata).
fn message(id: u16, response: bool, qname: &str, answers: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(if response { 0x8180u16 } else { 0x0100 }).to_be_bytes());
    for n in [1u16, answers.len() as u16, 0, 0] {
        m.extend_from_slice(&n.to_be_bytes());
    }
    m.extend_from_slice(&wire_name(qname));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for (owner, rtype, rdata) in answers {
        m.extend_from_slice(&wire_name(owner));
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    m
}

/// Ethernet + IPv4 + UDP around `payload`.
fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = common::ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

struct Capture {
    bytes: Vec<u8>,
    id: u16,
}

impl Capture {
    fn new() -> Capture {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 4, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65_535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Capture { bytes, id: 0 }
    }

    fn push(&mut self, secs: u32, f: &[u8]) {
        for v in [1_700_000_000 + secs, 0, f.len() as u32, f.len() as u32] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(f);
    }

    /// A query from `client` and its answer (A 192.0.2.1 unless `answers` says otherwise).
    fn lookup(&mut self, secs: u32, client: [u8; 4], qname: &str, answers: &[(&str, u16, Vec<u8>)]) {
        self.id += 1;
        let port = 30_000 + self.id;
        self.push(secs, &frame(client, RESOLVER, port, 53, &message(self.id, false, qname, &[])));
        let a = [(qname, 1u16, vec![192, 0, 2, 1])];
        let answers = if answers.is_empty() { &a[..] } else { answers };
        self.push(secs, &frame(RESOLVER, client, 53, port, &message(self.id, true, qname, answers)));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn alarms(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("alarm line {l}: {e}")))
        .collect()
}

#[test]
fn listed_lookups_alarm_once_per_client_and_domain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let domains = write(d, "feodo.txt", "# C2 domains\nBad.Example.\n*.evil.example\nthis is not a domain\n");
    let hosts = write(d, "hosts", "127.0.0.1 localhost\n0.0.0.0 phish.example www.phish.example\n");
    let rpz = write(
        d,
        "policy.rpz",
        "$TTL 60\n$ORIGIN rpz.test.\n@ SOA ns.rpz.test. admin.rpz.test. ( 1 60 60 60 60 )\n@ NS ns.rpz.test.\n\
         cnamed.example CNAME .\nallowed.cnamed.example CNAME rpz-passthru.\n",
    );
    let csv = write(
        d,
        "urlhaus.csv",
        "# id,dateadded,url,url_status\n\"1\",\"2024-01-01\",\"http://dl.malware.example/x.exe\",\"online\"\n\
         \"2\",\"2024-01-01\",\"http://192.0.2.9/y\",\"online\"\n",
    );
    let config = write(
        d,
        "dnsentry.toml",
        &format!(
            "[detect]\nsuppression_secs = 60\n\n\
             [[reputation.lists]]\npath = \"{hosts}\"\ncategory = \"phishing\"\n\n\
             [[reputation.lists]]\nname = \"rpz\"\npath = \"{rpz}\"\ncategory = \"malware\"\nseverity = \"low\"\n\n\
             [[reputation.lists]]\npath = \"{csv}\"\nformat = \"csv\"\ncategory = \"malware\"\n"
        ),
    );

    let mut c = Capture::new();
    c.lookup(0, A, "WWW.Bad.Example", &[]); // mixed case, under a listed name: alarm
    c.lookup(10, A, "x.bad.example", &[]); // same client and entry within 60 s: suppressed
    c.lookup(11, B, "bad.example", &[]); // another client: alarm
    c.lookup(12, A, "notbad.example", &[]); // shares a suffix string only
    c.lookup(13, A, "bad.example.com", &[]); // the listed name as a subdomain elsewhere
    let chain = [
        ("cdn.benign.example", 5u16, wire_name("edge.cnamed.example")),
        ("edge.cnamed.example", 5, wire_name("x.host.example")),
        ("x.host.example", 1, vec![192, 0, 2, 7]),
    ];
    c.lookup(14, A, "cdn.benign.example", &chain); // through a CNAME chain: alarm, via_cname
    c.lookup(15, B, "login.phish.example", &[]); // hosts list
    c.lookup(16, B, "dl.malware.example", &[]); // CSV list (a URL's host)
    c.lookup(17, B, "a.b.evil.example", &[]); // `*.evil.example`
    c.lookup(18, B, "allowed.cnamed.example", &[]); // rpz-passthru: an exception under a listed parent
    c.lookup(100, A, "bad.example", &[]); // the interval has passed: alarm again
    let pcap = d.join("lookups.pcap");
    std::fs::write(&pcap, &c.bytes).unwrap();

    let out = d.join("alarms.jsonl");
    let o = Command::new(BIN)
        .args(["replay", "--config", &config, "--reputation", &format!("c2:{domains}"), "--alarms"])
        .arg(&out)
        .arg(&pcap)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("line 4: expected one domain per line"), "the bad line is reported: {stderr}");

    let all = alarms(&out);
    assert!(all.iter().all(|a| a["kind"] == "reputation"), "only reputation alarms: {all:#?}");
    let mut got: BTreeMap<(String, String, String, String, bool), u32> = BTreeMap::new();
    for a in &all {
        let r = &a["reputation"];
        assert!(a["reasons"].as_array().unwrap().iter().any(|x| x == "reputation"), "{a}");
        assert_eq!(a["sample_qnames"][0], r["qname"], "{a}");
        let key = (
            a["client"].as_str().unwrap().to_string(),
            r["entry"].as_str().unwrap().to_string(),
            format!("{}/{}", r["list"].as_str().unwrap(), r["category"].as_str().unwrap()),
            a["severity"].as_str().unwrap().to_string(),
            r["via_cname"].as_bool().unwrap(),
        );
        *got.entry(key).or_default() += 1;
    }
    let k = |client: &str, entry: &str, list: &str, sev: &str, cname: bool| {
        (client.to_string(), entry.to_string(), list.to_string(), sev.to_string(), cname)
    };
    let want = BTreeMap::from([
        (k("10.1.0.1", "bad.example", "feodo/c2", "high", false), 2),
        (k("10.1.0.2", "bad.example", "feodo/c2", "high", false), 1),
        (k("10.1.0.1", "cnamed.example", "rpz/malware", "low", true), 1),
        (k("10.1.0.2", "phish.example", "hosts/phishing", "high", false), 1),
        (k("10.1.0.2", "dl.malware.example", "urlhaus/malware", "high", false), 1),
        (k("10.1.0.2", "evil.example", "feodo/c2", "high", false), 1),
    ]);
    assert_eq!(got, want, "{all:#?}");
    assert!(!all.iter().any(|a| a["domain"] == "notbad.example" || a["domain"] == "example.com"));
    // Hits count messages (queries and responses): both messages of each lookup of a listed name
    // (4 of bad.example, 1 of evil.example), and the chain's response only.
    assert!(stderr.contains("feodo (c2) 10"), "{stderr}");
    assert!(stderr.contains("rpz (malware) 1,"), "{stderr}");
}

#[test]
fn broken_lists_are_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(dir.path(), "notalist.txt", "this is\nnot a list\nat all\n");
    let pcap = dir.path().join("empty.pcap");
    std::fs::write(&pcap, Capture::new().bytes).unwrap();
    let o = Command::new(BIN).args(["replay", "--reputation", &list]).arg(&pcap).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("notalist.txt") && stderr.contains("line 1"), "{stderr}");
    let o =
        Command::new(BIN).args(["replay", "--reputation", "bogus:/nonexistent"]).arg(&pcap).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown category `bogus`"));

    // check-config loads the lists and says what they hold.
    let good = write(dir.path(), "good.txt", "a.example\nb.example\n");
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!("[[reputation.lists]]\npath = \"{good}\"\ncategory = \"spam\"\n"),
    );
    let o = Command::new(BIN).args(["check-config", &cfg]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(
        stdout.contains("reputation list good") && stdout.contains("2 domains, category spam"),
        "{stdout}"
    );
}
