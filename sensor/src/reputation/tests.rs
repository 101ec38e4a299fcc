use super::parse::{each_entry, Item};
use super::*;

fn spec(name: &str, category: Category, format: ListFormat) -> ListSpec {
    ListSpec {
        name: name.into(),
        path: PathBuf::from(format!("/lists/{name}")),
        category,
        format,
        column: 0,
        severity: ListSeverity::High,
    }
}

fn entries(text: &str, format: ListFormat) -> (Vec<String>, Vec<(usize, &'static str)>, usize) {
    entries_in_column(text, format, 0)
}

fn entries_in_column(
    text: &str,
    format: ListFormat,
    column: usize,
) -> (Vec<String>, Vec<(usize, &'static str)>, usize) {
    let (mut names, mut bad, mut ignored) = (Vec::new(), Vec::new(), 0);
    each_entry(text, format, column, &mut |line, item| match item {
        Item::Name(n) => names.push(n),
        Item::Exception(n) => names.push(format!("!{n}")),
        Item::Bad(r) => bad.push((line, r)),
        Item::Ignored => ignored += 1,
    });
    (names, bad, ignored)
}

fn hit(set: &Reputation, name: &str) -> Option<String> {
    set.lookup(name.as_bytes())
        .and_then(|i| set.entry(i))
        .map(|(e, l)| format!("{}:{}", l.name, String::from_utf8_lossy(e)))
}

#[test]
fn names_normalize_to_what_the_decoder_keeps() {
    assert_eq!(normalize(" Bad.Example. ").unwrap(), "bad.example");
    assert_eq!(normalize("*.bad.example").unwrap(), "bad.example");
    assert_eq!(normalize("bücher.example").unwrap(), "xn--bcher-kva.example");
    assert_eq!(normalize("xn--bcher-kva.example").unwrap(), "xn--bcher-kva.example");
    assert_eq!(normalize("_dmarc.bad.example").unwrap(), "_dmarc.bad.example");
    assert!(normalize("com").is_err(), "a whole TLD");
    assert!(normalize("10.0.0.1").is_err());
    assert!(normalize("bad..example").is_err());
    assert!(normalize("bad example").is_err());
    assert!(normalize("bad/example.com").is_err());
    assert!(normalize(&format!("{}.example", "a".repeat(64))).is_err());
    assert!(normalize("").is_err());
}

#[test]
fn domain_lists_with_comments_and_bad_lines() {
    let text = "# feed\nbad.example\n\nEvil.Example.  # trailing comment\n||ads.example^\nnot a domain\n*.wild.example\ncom\n";
    let (names, bad, _) = entries(text, ListFormat::Domains);
    assert_eq!(names, ["bad.example", "evil.example", "ads.example", "wild.example"]);
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [6, 8], "{bad:?}");
}

#[test]
fn hosts_files_skip_their_boilerplate() {
    let text = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n0.0.0.0 0.0.0.0\n\
                0.0.0.0 bad.example www.bad.example # two names\n127.0.0.1\nbad.example\n";
    let (names, bad, ignored) = entries(text, ListFormat::Hosts);
    assert_eq!(names, ["bad.example", "www.bad.example"]);
    assert_eq!(bad, [(5, "an address without a name"), (6, "expected `<address> <name>...`")]);
    assert_eq!(ignored, 5);
    assert_eq!(detect_format(text), ListFormat::Hosts);
}

#[test]
fn rpz_zones_list_their_qname_triggers() {
    let text = "$TTL 300\n$ORIGIN rpz.local.\n@ IN SOA localhost. root.localhost. (\n  1 ; serial\n  3600 600 86400 300 )\n\
                @ IN NS localhost.\n\
                bad.example CNAME .\n\
                *.bad.example CNAME .\n\
                nodata.example 60 IN CNAME *.\n\
                drop.example.rpz.local. CNAME rpz-drop.\n\
                ok.example CNAME rpz-passthru.\n\
                garden.example A 10.0.0.1\n\
                \x20 TXT \"same owner\"\n\
                32.1.0.0.10.rpz-ip CNAME .\n\
                outside.example.other. CNAME .\n\
                broken.example CNAME\n";
    let (names, bad, ignored) = entries(text, ListFormat::Rpz);
    assert_eq!(
        names,
        [
            "bad.example",
            "bad.example",
            "nodata.example",
            "drop.example",
            "!ok.example",
            "garden.example",
            "garden.example"
        ]
    );
    assert_eq!(bad, [(15, "owner name outside the zone's $ORIGIN"), (16, "CNAME without a target")]);
    assert_eq!(ignored, 3, "SOA, NS, rpz-ip");
    assert_eq!(detect_format(text), ListFormat::Rpz);
}

#[test]
fn abuse_ch_csv_finds_its_domain_column() {
    let text = "################\n# ThreatFox IOCs: domains\n# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"malware\"\n\
                \"2024-01-01 10:00:00\", \"1\", \"c2.bad.example\", \"domain\", \"win.cobalt_strike\"\n\
                \"2024-01-01 10:00:01\", \"2\", \"192.0.2.7:443\", \"ip:port\", \"win.cobalt_strike\"\n\
                \"2024-01-01 10:00:02\", \"3\", \"http://Dl.Bad.Example:8080/x.exe\", \"url\", \"elf.mirai\"\n\
                \"2024-01-01 10:00:03\", \"4\", \"not a domain!\", \"domain\", \"x.y\"\n\
                \"2024-01-01 10:00:04\"\n";
    assert_eq!(detect_format(text), ListFormat::Csv);
    let (names, bad, ignored) = entries(text, ListFormat::Csv);
    assert_eq!(names, ["c2.bad.example", "dl.bad.example"]);
    assert_eq!(ignored, 1, "the ip:port IOC");
    assert_eq!(bad, [(7, "character not allowed in a domain name"), (8, "the domain column is missing")]);
    // A header row is not an error; an explicit column wins over sniffing.
    let (names, bad, _) = entries_in_column("domain,tag\nx.example,a.b\n", ListFormat::Csv, 2);
    assert_eq!(names, ["a.b"]);
    assert!(bad.is_empty());
    // No header: the column that looks most like domains (known suffixes beat family names).
    let (names, _, _) = entries("1,win.cobalt_strike,evil.com\n2,elf.mirai,bad.net\n", ListFormat::Csv);
    assert_eq!(names, ["evil.com", "bad.net"]);
}

#[test]
fn parents_match_children_but_not_lookalikes() {
    let mut set = Reputation::default();
    let r = set
        .add(&spec("feodo", Category::C2, ListFormat::Domains), "bad.example\nxn--bcher-kva.example\n")
        .unwrap();
    assert_eq!((r.entries, r.bad_lines), (2, 0));
    set.add(&spec("phish", Category::Phishing, ListFormat::Domains), "bad.example\nlogin.evil.example\n")
        .unwrap();
    assert_eq!(hit(&set, "bad.example").as_deref(), Some("feodo:bad.example"), "first list wins");
    assert_eq!(hit(&set, "x.y.bad.example").as_deref(), Some("feodo:bad.example"));
    assert_eq!(hit(&set, "notbad.example"), None);
    assert_eq!(hit(&set, "bad.example.com"), None);
    assert_eq!(hit(&set, "example"), None);
    assert_eq!(hit(&set, "evil.example"), None, "a child does not list its parent");
    assert_eq!(hit(&set, "a.login.evil.example").as_deref(), Some("phish:login.evil.example"));
    assert_eq!(hit(&set, "www.xn--bcher-kva.example").as_deref(), Some("feodo:xn--bcher-kva.example"));
    // A worker's two-step lookup, which remembers clean anchors, agrees; clearing forgets.
    let mut clean = CleanAnchors::default();
    for name in ["x.bad.example", "notbad.example", "notbad.example", "a.login.evil.example", "evil.example"]
    {
        assert_eq!(clean.lookup(&set, name.as_bytes(), None), set.lookup(name.as_bytes()), "{name}");
    }
    // The hint is used only where it is the anchor's hash.
    let rd = b"bad.example";
    let h = crate::hash::hash_bytes(rd);
    assert!(clean.lookup(&set, b"x.bad.example", Some((rd.len(), h))).is_some());
    assert!(
        clean.lookup(&set, b"x.bad.example", Some((4, 0))).is_some(),
        "a hint of another length is ignored"
    );
    assert!(clean.slots.iter().any(|&s| s != 0));
    clean.clear();
    assert!(clean.slots.iter().all(|&s| s == 0));
    assert_eq!(set.len(), 3);
    assert_eq!(set.lists()[0].entries, 2);
    assert_eq!(set.lists()[1].entries, 1, "the duplicate counts in the first list");
    assert_eq!(Reputation::default().lookup(b"bad.example"), None);
}

#[test]
fn rpz_passthru_is_an_exception_under_a_listed_parent() {
    let mut set = Reputation::default();
    let zone = "$ORIGIN rpz.test.\nbad.example CNAME .\nok.bad.example CNAME rpz-passthru.\n";
    let r = set.add(&spec("rpz", Category::Malware, ListFormat::Rpz), zone).unwrap();
    assert_eq!((r.entries, r.exceptions), (1, 1));
    assert_eq!(hit(&set, "x.bad.example").as_deref(), Some("rpz:bad.example"));
    assert_eq!(hit(&set, "ok.bad.example"), None);
    assert_eq!(hit(&set, "www.ok.bad.example"), None);
}

#[test]
fn a_list_of_the_wrong_format_is_refused_with_its_first_bad_line() {
    let mut set = Reputation::default();
    let e = set
        .add(&spec("x", Category::Malware, ListFormat::Hosts), "# hosts?\nbad.example\nevil.example\n")
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("/lists/x") && msg.contains("line 2"), "{msg}");
    assert!(set.lists().is_empty() && set.is_empty());
    // Mostly good: the bad lines are counted and kept for the log, the list loads.
    let r = set
        .add(&spec("y", Category::Malware, ListFormat::Domains), "a.example\nb.example\nb@d.example\n")
        .unwrap();
    assert_eq!((r.entries, r.bad_lines), (2, 1));
    assert_eq!(r.first_bad, [BadLine { line: 3, reason: "character not allowed in a domain name".into() }]);
}

#[test]
fn command_line_lists() {
    let s = ListSpec::from_arg("c2:/etc/dnsentry/feodo.txt").unwrap();
    assert_eq!((s.category, s.display_name().as_str()), (Category::C2, "feodo"));
    let s = ListSpec::from_arg("/tmp/bad.csv").unwrap();
    assert_eq!((s.category, s.path.to_str()), (Category::Malware, Some("/tmp/bad.csv")));
    assert!(ListSpec::from_arg("evil:/tmp/x").unwrap_err().contains("unknown category"));
    for c in Category::ALL {
        assert_eq!(Category::from_u8(c as u8), Some(c));
        assert_eq!(Category::from_name(c.name()), Some(c));
    }
}

#[test]
fn memory_is_counted_and_shrinks() {
    let mut set = Reputation::default();
    let text: String = (0..10_000).map(|i| format!("host{i}.bad{}.example\n", i % 97)).collect();
    set.add(&spec("big", Category::Malware, ListFormat::Domains), &text).unwrap();
    let before = set.memory_bytes();
    set.shrink();
    assert!(set.memory_bytes() <= before);
    assert!(set.memory_bytes() >= set.names.len() + 10_000 * 4, "{}", set.memory_bytes());
    assert_eq!(hit(&set, "a.host9999.bad8.example").as_deref(), Some("big:host9999.bad8.example"));
    // Every entry is found (the anchor filter has no false negatives); unlisted names mostly stop
    // at the filter.
    for i in 0..10_000 {
        let name = format!("www.host{i}.bad{}.example", i % 97);
        assert_eq!(hit(&set, &name), Some(format!("big:host{i}.bad{}.example", i % 97)));
    }
    let passed = (0..10_000)
        .filter(|i| set.may_hold(crate::hash::hash_bytes(format!("clean{i}.example").as_bytes())))
        .count();
    assert!(passed < 1_000, "{passed} of 10000 clean anchors pass the filter");
}
