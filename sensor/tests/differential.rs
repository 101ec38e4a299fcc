//! The DNS view against hickory-proto (the reference) on every DNS message of the real captures
//! and on generated and mutated messages.

mod common;

use std::str::FromStr;

use dnsentry::dns::{Message, NameBuf, Section};
use hickory_proto::op::{Message as HMessage, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME, MX, NULL, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;

fn labels_of(msg: &Message, at: usize) -> Vec<Vec<u8>> {
    let mut b = NameBuf::new();
    msg.name(at, &mut b).expect("name decodes");
    b.labels().map(|l| l.to_vec()).collect()
}

fn hlabels(n: &Name) -> Vec<Vec<u8>> {
    n.iter().map(|l| l.to_vec()).collect()
}

/// Asserts our view says what hickory says about `bytes`. Returns false if hickory rejects it.
fn agree(bytes: &[u8]) -> bool {
    let Ok(h) = HMessage::from_vec(bytes) else { return false };
    let m =
        Message::parse(bytes).unwrap_or_else(|e| panic!("hickory accepts, we reject ({e}): {bytes:02x?}"));
    assert_eq!(m.header.id, h.metadata.id);
    assert_eq!(m.header.is_response(), h.metadata.message_type == MessageType::Response);
    assert_eq!(m.header.opcode(), u8::from(h.metadata.op_code));
    assert_eq!(m.rcode(), u16::from(h.metadata.response_code));
    assert_eq!(m.header.truncated(), h.metadata.truncation);
    let qs: Vec<_> = m.questions().collect();
    assert_eq!(qs.len(), h.queries.len());
    for (q, hq) in qs.iter().zip(&h.queries) {
        assert_eq!(labels_of(&m, q.name_at), hlabels(&hq.name));
        assert_eq!(q.qtype, u16::from(hq.query_type()));
        assert_eq!(q.qclass, u16::from(hq.query_class()));
    }
    for (section, hrecs) in [(Section::Answer, &h.answers), (Section::Authority, &h.authorities)] {
        let ours: Vec<_> = m.records(section).collect();
        assert_eq!(ours.len(), hrecs.len(), "{section:?} count");
        for (r, hr) in ours.iter().zip(hrecs.iter()) {
            assert_eq!(labels_of(&m, r.name_at), hlabels(&hr.name));
            assert_eq!(r.rtype, u16::from(hr.record_type()));
            assert_eq!(r.ttl, hr.ttl);
        }
    }
    // hickory lifts OPT out of the additional section.
    let ours_add = m.records(Section::Additional).filter(|r| r.rtype != 41).count();
    assert_eq!(ours_add, h.additionals.len(), "additional count");
    assert_eq!(m.edns.is_some(), h.edns.is_some());
    if let (Some(e), Some(he)) = (m.edns, &h.edns) {
        assert_eq!(e.udp_size, he.max_payload().max(512));
        assert_eq!(e.version, he.version());
    }
    true
}

#[test]
fn every_message_of_the_real_captures() {
    let Some(dir) = common::datasets() else { return };
    let mut total = 0;
    let mut hickory_rejects = 0;
    for (file, _, _) in common::manifest(&dir) {
        for p in common::dns_payloads(&file) {
            total += 1;
            if !agree(&p) {
                hickory_rejects += 1;
                // Whatever hickory rejects, we must not panic on it either.
                let _ = Message::parse(&p);
            }
        }
    }
    for (file, ..) in common::own_pcaps() {
        for p in common::dns_payloads(&file) {
            total += 1;
            if !agree(&p) {
                hickory_rejects += 1;
            }
        }
    }
    eprintln!("{total} messages compared, {hickory_rejects} rejected by hickory");
    assert!(total > 100_000, "expected the datasets' messages, got {total}");
    assert!(hickory_rejects * 1000 < total, "hickory rejected {hickory_rejects} of {total}");
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]{1,20}", 1..5).prop_map(|l| format!("{}.example.com.", l.join(".")))
}

fn build(id: u16, qname: &str, qtype: RecordType, answers: &[(String, u8)], response: bool) -> Vec<u8> {
    let mut m =
        HMessage::new(id, if response { MessageType::Response } else { MessageType::Query }, OpCode::Query);
    let name = Name::from_str(qname).unwrap();
    m.add_query(Query::query(name.clone(), qtype));
    for (i, (other, kind)) in answers.iter().enumerate() {
        let owner = if i % 2 == 0 { name.clone() } else { Name::from_str(other).unwrap() };
        let target = Name::from_str(other).unwrap();
        let rdata = match kind % 5 {
            0 => RData::A(A::new(10, 0, 0, i as u8)),
            1 => RData::CNAME(CNAME(target)),
            2 => RData::MX(MX::new(10, target)),
            3 => RData::TXT(TXT::new(vec![format!("v=spf1 include:{other}")])),
            _ => RData::NULL(NULL::with(other.as_bytes().to_vec())),
        };
        let rec = Record::from_rdata(owner, 300 + i as u32, rdata);
        if i % 3 == 2 {
            m.add_authority(rec);
        } else {
            m.add_answer(rec);
        }
    }
    m.to_vec().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_messages_agree(
        id in any::<u16>(),
        qname in name_strategy(),
        qtype in prop::sample::select(vec![RecordType::A, RecordType::AAAA, RecordType::TXT, RecordType::NULL, RecordType::MX, RecordType::CNAME, RecordType::SRV, RecordType::Unknown(65399)]),
        answers in prop::collection::vec((name_strategy(), any::<u8>()), 0..6),
        response in any::<bool>(),
    ) {
        let bytes = build(id, &qname, qtype, &answers, response);
        prop_assert!(agree(&bytes), "hickory rejected its own message");
    }

    #[test]
    fn truncated_and_mutated_messages_never_panic_and_agree_when_both_accept(
        qname in name_strategy(),
        answers in prop::collection::vec((name_strategy(), any::<u8>()), 1..5),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let bytes = build(7, &qname, RecordType::TXT, &answers, true);
        for cut in 0..bytes.len() {
            let _ = Message::parse(&bytes[..cut]);
        }
        let mut m = bytes.clone();
        for (i, v) in &flips {
            let at = i.index(m.len());
            m[at] = *v;
        }
        if let (Ok(h), Ok(ours)) = (HMessage::from_vec(&m), Message::parse(&m)) {
            prop_assert_eq!(ours.header.id, h.metadata.id);
            prop_assert_eq!(ours.questions().count(), h.queries.len());
        }
    }
}
