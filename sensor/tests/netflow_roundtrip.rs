//! NetFlow v9 / IPFIX packets from the exporter, parsed back with the `netflow_parser` crate.

use dnsentry::config::ExportFormat;
use dnsentry::flow::IpAddr16;
use dnsentry::output::netflow::encode::Packetizer;
use dnsentry::output::netflow::record::{flag, ExportRecord};
use netflow_parser::{NetflowPacket, NetflowParser};

fn rec(i: u64, name: &str, v6: bool) -> ExportRecord {
    let mut qname = [0u8; 256];
    qname[..name.len()].copy_from_slice(name.as_bytes());
    let (client, server) = if v6 {
        (
            IpAddr16::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            IpAddr16::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53]),
        )
    } else {
        (IpAddr16::v4([10, 0, 0, 1]), IpAddr16::v4([10, 0, 0, 53]))
    };
    ExportRecord {
        client,
        server,
        client_port: 40000 + i as u16,
        server_port: 53,
        proto: 17,
        bytes: 120,
        packets: 2,
        start_ms: 1_700_000_000_000 + i,
        end_ms: 1_700_000_000_005 + i,
        vlan: 7,
        ifindex: 0,
        qname,
        qname_len: name.len() as u8,
        dns_id: i as u16,
        qtype: 16,
        rcode: 3,
        answers: 0,
        ttl: 0,
        score: 42,
        reasons: 0b101,
        labels: 3,
        longest_label: 10,
        entropy_milli: 3210,
        domain_len: 11,
        flags: flag::NXDOMAIN,
        reputation: 2,
    }
}

fn packets(format: ExportFormat, qname_bytes: usize, recs: &[ExportRecord]) -> Vec<Vec<u8>> {
    let mut p = Packetizer::new(format, qname_bytes, 1400, 7);
    let mut out = vec![p.templates(1_700_000_000, 0)];
    for (i, r) in recs.iter().enumerate() {
        if let Some(pkt) = p.add(r, 1_700_000_000) {
            out.push(pkt);
        }
        // Templates again in the middle, as the periodic refresh does.
        if i == recs.len() / 2 {
            if let Some(pkt) = p.flush(1_700_000_000) {
                out.push(pkt);
            }
            out.push(p.templates(1_700_000_000, 3));
        }
    }
    out.extend(p.flush(1_700_000_000));
    out
}

/// Every byte-string field value in a parsed packet (unknown and enterprise fields come back as
/// raw bytes), as text without the NUL padding.
fn byte_fields(json: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(bytes)) = m.get("Vec") {
                    let b: Vec<u8> = bytes.iter().filter_map(|x| x.as_u64().map(|n| n as u8)).collect();
                    out.push(String::from_utf8_lossy(&b).trim_end_matches('\0').to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    walk(&v, &mut out);
    out
}

/// Parses every packet; returns the JSON of each and the number of data records.
fn parse_all(pkts: &[Vec<u8>]) -> (Vec<String>, usize) {
    let mut parser = NetflowParser::default();
    let mut json = Vec::new();
    let mut records = 0;
    for (i, p) in pkts.iter().enumerate() {
        assert!(p.len() <= 1400, "packet {i} is {} bytes", p.len());
        let r = parser.parse_bytes(p);
        assert!(r.error.is_none(), "packet {i}: {:?}", r.error);
        assert_eq!(r.packets.len(), 1);
        let pkt = &r.packets[0];
        let j = serde_json::to_string(pkt).unwrap();
        assert!(!j.contains("NoTemplate"), "packet {i} has data without a template: {j}");
        match pkt {
            NetflowPacket::V9(v9) => {
                assert_eq!(v9.header.sequence_number, i as u32, "v9 sequence +1 per packet");
                let mut n = 0usize;
                for fs in &v9.flowsets {
                    match &fs.body {
                        netflow_parser::variable_versions::v9::FlowSetBody::Data(d) => {
                            records += d.fields.len();
                            n += d.fields.len();
                        }
                        netflow_parser::variable_versions::v9::FlowSetBody::Template(t) => {
                            n += t.templates.len()
                        }
                        netflow_parser::variable_versions::v9::FlowSetBody::OptionsTemplate(t) => {
                            n += t.templates.len()
                        }
                        netflow_parser::variable_versions::v9::FlowSetBody::OptionsData(d) => {
                            n += d.fields.len()
                        }
                        _ => {}
                    }
                }
                assert_eq!(v9.header.count as usize, n, "v9 header count = records in packet {i}");
            }
            NetflowPacket::IPFix(ipfix) => {
                assert_eq!(ipfix.header.length as usize, p.len());
                for fs in &ipfix.flowsets {
                    if let netflow_parser::variable_versions::ipfix::FlowSetBody::Data(d) = &fs.body {
                        records += d.fields.len();
                    }
                }
            }
            other => panic!("unexpected packet {other:?}"),
        }
        json.push(j);
    }
    (json, records)
}

#[test]
fn v9_round_trip_with_template_refresh_ipv6_and_long_names() {
    let long = format!("{}.example.com", "a".repeat(200));
    let mut recs: Vec<ExportRecord> =
        (0..40).map(|i| rec(i, &format!("host{i}.example.com"), i % 3 == 0)).collect();
    recs.push(rec(99, &long, false));
    let pkts = packets(ExportFormat::V9, 128, &recs);
    let (json, records) = parse_all(&pkts);
    assert_eq!(records, recs.len());
    let all = json.join("\n");
    let names: Vec<String> = json.iter().flat_map(|j| byte_fields(j)).collect();
    assert!(names.iter().any(|n| n == "host5.example.com"), "qname missing from parsed v9");
    assert!(all.contains("2001:db8::53"), "IPv6 server address missing");
    // The long name is cut on the left to 128 bytes, keeping the registered domain.
    let tail = &long[long.len() - 128..];
    assert!(names.iter().any(|n| n == tail), "truncated name keeps its rightmost 128 bytes");
}

#[test]
fn ipfix_round_trip_with_variable_length_names() {
    let long = format!("{}.{}.example.com", "b".repeat(63), "c".repeat(63));
    let mut recs: Vec<ExportRecord> =
        (0..30).map(|i| rec(i, &format!("h{i}.example.com"), i % 4 == 0)).collect();
    recs.push(rec(77, &long, true));
    let pkts = packets(ExportFormat::Ipfix, 128, &recs);
    let (json, records) = parse_all(&pkts);
    assert_eq!(records, recs.len());
    let names: Vec<String> = json.iter().flat_map(|j| byte_fields(j)).collect();
    assert!(names.iter().any(|n| n == &long), "IPFIX sends the whole name");
    assert!(names.iter().any(|n| n == "h7.example.com"));
}

#[test]
fn records_are_never_split_and_packets_respect_the_mtu() {
    for fmt in [ExportFormat::V9, ExportFormat::Ipfix] {
        let recs: Vec<ExportRecord> =
            (0..500).map(|i| rec(i, &format!("{i}.x.example.com"), i % 2 == 0)).collect();
        let pkts = packets(fmt, 200, &recs);
        let (_, records) = parse_all(&pkts);
        assert_eq!(records, 500);
    }
}

fn export_cfg(collectors: Vec<String>) -> dnsentry::config::ExportConfig {
    dnsentry::config::ExportConfig { collectors, template_packets: 3, ..Default::default() }
}

#[test]
fn exporter_sends_to_a_live_collector_with_periodic_templates() {
    use dnsentry::output::netflow::exporter::Exporter;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let (exporter, queue) = Exporter::start(&export_cfg(vec![addr]), true).unwrap();
    for i in 0..100 {
        queue.send(rec(i, &format!("n{i}.example.com"), i % 5 == 0));
    }
    drop(queue);
    let stats = exporter.finish();
    assert_eq!(stats.records_sent, 100);
    assert_eq!(stats.collectors[0].1, 0, "no send errors");
    let mut pkts = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        pkts.push(buf[..n].to_vec());
        if pkts.len() as u64 == stats.collectors[0].0 {
            break;
        }
    }
    let (json, records) = parse_all(&pkts);
    assert_eq!(records, 100);
    assert!(json[0].contains("\"Template\""), "templates come first");
    let template_packets = json.iter().filter(|j| j.contains("\"Template\"")).count();
    assert!(template_packets >= 3, "templates refreshed every 3 packets: {template_packets}");
}

#[test]
fn a_dead_collector_never_blocks_and_failures_are_counted() {
    use dnsentry::output::netflow::exporter::Exporter;
    // A port nobody listens on: the kernel answers port-unreachable, sends then fail.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = export_cfg(vec![format!("127.0.0.1:{port}")]);
    cfg.queue_records = 16;
    let (exporter, queue) = Exporter::start(&cfg, false).unwrap();
    let started = std::time::Instant::now();
    for i in 0..20_000 {
        queue.send(rec(i, "x.example.com", false));
    }
    let elapsed = started.elapsed();
    drop(queue);
    let stats = exporter.finish();
    assert!(elapsed < std::time::Duration::from_secs(5), "producers were blocked for {elapsed:?}");
    assert_eq!(stats.records_sent + stats.records_dropped, 20_000, "every record is sent or counted");
    assert!(stats.records_dropped > 0, "a full queue drops and counts");
    assert!(stats.collectors[0].1 > 0, "send errors to a dead collector are counted");
}
