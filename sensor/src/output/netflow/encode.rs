//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) packets: headers, templates, data records.
//!
//! The packetizer fills one packet at a time up to the MTU, never splitting a record; a packet may
//! hold several data flowsets (IPv4 and IPv6 records). Templates and the exporter-statistics
//! options record travel in packets of their own.

use super::record::{flag, ExportRecord};
use crate::config::ExportFormat;

pub const TEMPLATE_V4: u16 = 256;
pub const TEMPLATE_V6: u16 = 257;
pub const TEMPLATE_STATS: u16 = 258;

/// ntop's enterprise number and id base for the nProbe DNS fields in IPFIX.
const NTOP_PEN: u32 = 35632;
const NTOP_BASE: u16 = 57472;
/// IANA's documentation enterprise number (RFC 5612), for dnsentry's own fields in IPFIX.
const DNSENTRY_PEN: u32 = 32473;

/// A field: v9 type number, length, and who owns it (for IPFIX enterprise numbers).
#[derive(Clone, Copy)]
struct Field {
    v9: u16,
    len: u16,
    owner: Owner,
}

#[derive(Clone, Copy, PartialEq)]
enum Owner {
    Iana,
    Ntop,
    Dnsentry,
}

const fn iana(v9: u16, len: u16) -> Field {
    Field { v9, len, owner: Owner::Iana }
}
const fn ntop(v9: u16, len: u16) -> Field {
    Field { v9, len, owner: Owner::Ntop }
}
const fn own(v9: u16, len: u16) -> Field {
    Field { v9, len, owner: Owner::Dnsentry }
}

/// Length marker of the variable-length query name (replaced by the configured size in v9).
const QNAME: u16 = 0xFFFF;

fn fields(v6: bool) -> [Field; 24] {
    let a = if v6 { 16 } else { 4 };
    [
        iana(if v6 { 27 } else { 8 }, a),
        iana(if v6 { 28 } else { 12 }, a),
        iana(7, 2),
        iana(11, 2),
        iana(4, 1),
        iana(1, 8),
        iana(2, 8),
        iana(152, 8),
        iana(153, 8),
        iana(58, 2),
        iana(10, 4),
        ntop(57677, QNAME),
        ntop(57678, 2),
        ntop(57679, 2),
        ntop(57680, 2),
        ntop(57681, 2),
        ntop(57824, 4),
        own(48000, 1),
        own(48001, 4),
        own(48002, 1),
        own(48003, 1),
        own(48004, 1),
        own(48005, 2),
        own(48006, 1),
    ]
}

/// The flags field is written separately (it depends on truncation).
const FLAGS_FIELD: Field = own(48007, 2);
/// The reputation category code closes the record (added after the flags: collectors configured
/// for the earlier fields keep reading them).
const REPUTATION_FIELD: Field = own(48008, 1);

const STATS_SCOPE: Field = iana(149, 4);
const STATS_FIELDS: [Field; 3] = [iana(42, 8), iana(41, 8), own(48010, 8)];

/// Exporter counters carried in the options record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExporterTotals {
    pub records: u64,
    pub packets: u64,
    pub dropped: u64,
}

/// Builds export packets.
pub struct Packetizer {
    format: ExportFormat,
    qname_bytes: usize,
    mtu: usize,
    source_id: u32,
    started: std::time::Instant,
    /// v9: packets sent so far. IPFIX: data records sent so far.
    sequence: u32,
    buf: Vec<u8>,
    /// Records (v9 header count) in the packet being built.
    count: u16,
    /// Data records in the packet being built (IPFIX sequence).
    data_records: u32,
    /// Template id and start offset of the open data set.
    open: Option<(u16, usize)>,
    pub totals: ExporterTotals,
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

impl Packetizer {
    pub fn new(format: ExportFormat, qname_bytes: usize, mtu: usize, source_id: u32) -> Self {
        Packetizer {
            format,
            qname_bytes: qname_bytes.clamp(8, 255),
            mtu,
            source_id,
            started: std::time::Instant::now(),
            sequence: 0,
            buf: Vec::with_capacity(mtu),
            count: 0,
            data_records: 0,
            open: None,
            totals: ExporterTotals::default(),
        }
    }

    fn header_len(&self) -> usize {
        match self.format {
            ExportFormat::V9 => 20,
            ExportFormat::Ipfix => 16,
        }
    }

    fn begin(&mut self) {
        self.buf.clear();
        self.buf.resize(self.header_len(), 0);
        self.count = 0;
        self.data_records = 0;
        self.open = None;
    }

    /// Writes the header and returns the finished packet.
    fn finish(&mut self, export_secs: u32) -> Vec<u8> {
        self.close_set();
        let len = self.buf.len();
        let mut h = Vec::with_capacity(self.header_len());
        match self.format {
            ExportFormat::V9 => {
                put16(&mut h, 9);
                put16(&mut h, self.count);
                put32(&mut h, self.started.elapsed().as_millis() as u32);
                put32(&mut h, export_secs);
                put32(&mut h, self.sequence);
                put32(&mut h, self.source_id);
                self.sequence = self.sequence.wrapping_add(1);
            }
            ExportFormat::Ipfix => {
                put16(&mut h, 10);
                put16(&mut h, len as u16);
                put32(&mut h, export_secs);
                put32(&mut h, self.sequence);
                put32(&mut h, self.source_id);
                self.sequence = self.sequence.wrapping_add(self.data_records);
            }
        }
        self.buf[..h.len()].copy_from_slice(&h);
        self.totals.packets += 1;
        let out = self.buf.clone();
        self.begin();
        out
    }

    /// Pads and closes the open set, writing its length.
    fn close_set(&mut self) {
        if let Some((_, start)) = self.open.take() {
            while !(self.buf.len() - start).is_multiple_of(4) {
                self.buf.push(0);
            }
            let len = (self.buf.len() - start) as u16;
            self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    fn open_set(&mut self, id: u16) {
        if self.open.map(|(t, _)| t) == Some(id) {
            return;
        }
        self.close_set();
        let start = self.buf.len();
        put16(&mut self.buf, id);
        put16(&mut self.buf, 0);
        self.open = Some((id, start));
    }

    fn put_field_spec(&mut self, f: Field) {
        match self.format {
            ExportFormat::V9 => {
                put16(&mut self.buf, f.v9);
                put16(&mut self.buf, if f.len == QNAME { self.qname_bytes as u16 } else { f.len });
            }
            ExportFormat::Ipfix => {
                let (id, pen) = match f.owner {
                    Owner::Iana => (f.v9, None),
                    Owner::Ntop => (f.v9 - NTOP_BASE, Some(NTOP_PEN)),
                    // IPFIX element ids have 15 bits: our v9 types 48000.. travel as 15232.. (v9 − 32768).
                    Owner::Dnsentry => (f.v9 - 0x8000, Some(DNSENTRY_PEN)),
                };
                let id = if pen.is_some() { id | 0x8000 } else { id };
                put16(&mut self.buf, id);
                put16(&mut self.buf, f.len);
                if let Some(p) = pen {
                    put32(&mut self.buf, p);
                }
            }
        }
    }

    /// A packet with the three templates, then (in the same packet) the options data record.
    ///
    /// IPFIX carries the statistics record only in [`Packetizer::final_templates`]: RFC 7011 counts
    /// options data records in the sequence number but nfdump 1.7 does not, so a periodic record
    /// would make one of them report sequence errors; at shutdown no message follows it.
    pub fn templates(&mut self, export_secs: u32, dropped: u64) -> Vec<u8> {
        let stats = self.format == ExportFormat::V9;
        self.templates_with(export_secs, dropped, stats)
    }

    /// The last packet of an export: templates and the statistics record, whatever the format.
    pub fn final_templates(&mut self, export_secs: u32, dropped: u64) -> Vec<u8> {
        self.templates_with(export_secs, dropped, true)
    }

    fn templates_with(&mut self, export_secs: u32, dropped: u64, with_stats: bool) -> Vec<u8> {
        self.begin();
        let (tset, oset) = match self.format {
            ExportFormat::V9 => (0, 1),
            ExportFormat::Ipfix => (2, 3),
        };
        self.open_set(tset);
        for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
            let fs = fields(v6);
            put16(&mut self.buf, id);
            put16(&mut self.buf, fs.len() as u16 + 2);
            for f in fs {
                self.put_field_spec(f);
            }
            self.put_field_spec(FLAGS_FIELD);
            self.put_field_spec(REPUTATION_FIELD);
            self.count += 1;
        }
        self.close_set();
        self.open_set(oset);
        put16(&mut self.buf, TEMPLATE_STATS);
        match self.format {
            ExportFormat::V9 => {
                // Scope: System (1), 4 bytes; lengths in bytes of the specs.
                put16(&mut self.buf, 4);
                put16(&mut self.buf, (STATS_FIELDS.len() * 4) as u16);
                put16(&mut self.buf, 1);
                put16(&mut self.buf, 4);
                for f in STATS_FIELDS {
                    self.put_field_spec(f);
                }
            }
            ExportFormat::Ipfix => {
                put16(&mut self.buf, 1 + STATS_FIELDS.len() as u16);
                put16(&mut self.buf, 1);
                self.put_field_spec(STATS_SCOPE);
                for f in STATS_FIELDS {
                    self.put_field_spec(f);
                }
            }
        }
        self.count += 1;
        self.close_set();
        if !with_stats {
            return self.finish(export_secs);
        }
        self.open_set(TEMPLATE_STATS);
        put32(&mut self.buf, self.source_id);
        put64(&mut self.buf, self.totals.records);
        put64(&mut self.buf, self.totals.packets + 1);
        put64(&mut self.buf, dropped);
        self.count += 1;
        // The options record is a data record too: the IPFIX sequence counts it.
        self.data_records += 1;
        self.finish(export_secs)
    }

    /// Bytes `r` takes in a data set.
    fn record_len(&self, r: &ExportRecord) -> usize {
        let addr = if r.client.v6 { 32 } else { 8 };
        let name = match self.format {
            ExportFormat::V9 => self.qname_bytes,
            ExportFormat::Ipfix => {
                let n = r.qname_len as usize;
                n + if n < 255 { 1 } else { 3 }
            }
        };
        addr + 2
            + 2
            + 1
            + 8
            + 8
            + 8
            + 8
            + 2
            + 4
            + name
            + 2
            + 2
            + 2
            + 2
            + 4
            + 1
            + 4
            + 1
            + 1
            + 1
            + 2
            + 1
            + 2
            + 1
    }

    /// Adds a record; returns the previous packet if the record did not fit in it.
    pub fn add(&mut self, r: &ExportRecord, export_secs: u32) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            self.begin();
        }
        let template = if r.client.v6 { TEMPLATE_V6 } else { TEMPLATE_V4 };
        // Room for the record, a new set header and the worst-case padding.
        let set_cost = if self.open.map(|(t, _)| t) == Some(template) { 0 } else { 4 };
        let mut done = None;
        if self.count > 0 && self.buf.len() + set_cost + self.record_len(r) + 3 > self.mtu {
            done = Some(self.finish(export_secs));
        }
        self.open_set(template);
        self.put_record(r);
        self.count += 1;
        self.data_records += 1;
        self.totals.records += 1;
        done
    }

    fn put_record(&mut self, r: &ExportRecord) {
        let b = &mut self.buf;
        let alen = if r.client.v6 { 16 } else { 4 };
        b.extend_from_slice(&r.client.bytes[..alen]);
        b.extend_from_slice(&r.server.bytes[..alen]);
        put16(b, r.client_port);
        put16(b, r.server_port);
        b.push(r.proto);
        put64(b, r.bytes);
        put64(b, r.packets);
        put64(b, r.start_ms);
        put64(b, r.end_ms);
        put16(b, r.vlan);
        put32(b, r.ifindex);
        let name = r.qname();
        let mut flags = r.flags;
        match self.format {
            ExportFormat::V9 => {
                // Fixed size, NUL-padded; a longer name keeps its rightmost bytes (the domain).
                let keep = name.len().min(self.qname_bytes);
                if keep < name.len() {
                    flags |= flag::QNAME_TRUNCATED;
                }
                b.extend_from_slice(&name[name.len() - keep..]);
                b.extend(std::iter::repeat_n(0u8, self.qname_bytes - keep));
            }
            ExportFormat::Ipfix => {
                if name.len() < 255 {
                    b.push(name.len() as u8);
                } else {
                    b.push(255);
                    put16(b, name.len() as u16);
                }
                b.extend_from_slice(name);
            }
        }
        put16(b, r.dns_id);
        put16(b, r.qtype);
        put16(b, r.rcode);
        put16(b, r.answers);
        put32(b, r.ttl);
        b.push(r.score);
        put32(b, r.reasons);
        b.push(r.qname_len);
        b.push(r.labels);
        b.push(r.longest_label);
        put16(b, r.entropy_milli);
        b.push(r.domain_len);
        put16(b, flags);
        b.push(r.reputation);
    }

    /// Finishes the packet being built, if it holds any record.
    pub fn flush(&mut self, export_secs: u32) -> Option<Vec<u8>> {
        (self.count > 0).then(|| self.finish(export_secs))
    }
}
