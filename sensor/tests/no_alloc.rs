//! The per-message hot path (decode → DNS view → features → record) does not allocate.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_udp_dns_messages_does_not_allocate() {
    let Some(dir) = common::datasets() else { return };
    let cfg = dnsentry::config::Config::default();
    let allowlist = Arc::new(dnsentry::detect::allowlist::Allowlist::new(true, &[]));
    let mut decoder = dnsentry::worker::Decoder::new(&cfg, allowlist);
    let mut frames = Vec::new();
    for f in [
        "ggy-normal_00000_20230805150331.pcap.gz",
        "korving-iodine-file_transfer-null-base32-dnsmasq-1cdbe9.pcap.gz",
        "korving-dnscat2-c2-dnsmasq-fc899f.pcap.gz",
    ] {
        dnsentry::capture::pcap::read_file(&dir.join(f), Arc::new(AtomicU64::new(0)), |fr| {
            frames.push((fr.link, fr.ts_ns, fr.data.to_vec()))
        })
        .unwrap();
    }
    let mut records = 0u64;
    COUNTING.store(true, Ordering::SeqCst);
    for (i, (link, ts, data)) in frames.iter().enumerate() {
        decoder.frame(*link, data, *ts, i as u64, &mut |r, _| records += u64::from(r.lex.qname_len > 0));
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(records > 30_000, "records {records}");
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "allocations on the hot path");
}
