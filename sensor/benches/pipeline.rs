//! Benchmarks: per-packet decode + DNS view + features, and the whole replay pipeline.
//! Run with `cargo xtask bench`; results are tabled in docs/performance.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnsentry::config::Config;
use dnsentry::decode::LinkType;
use dnsentry::detect::allowlist::Allowlist;
use dnsentry::worker::Decoder;

/// Captures to measure on: the shared datasets when present, else the repository's own.
fn captures() -> Vec<(&'static str, PathBuf)> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    let own = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
    let pick = |shared_name: &str, own_name: &str| {
        let s = shared.join(shared_name);
        if s.is_file() {
            s
        } else {
            own.join(own_name)
        }
    };
    vec![
        ("benign", pick("ggy-normal_00000_20230805150331.pcap.gz", "benign.pcap")),
        (
            "iodine",
            pick("korving-iodine-file_transfer-null-base32-dnsmasq-1cdbe9.pcap.gz", "iodine-null.pcap"),
        ),
    ]
}

fn load(path: &std::path::Path) -> Vec<(Option<LinkType>, u64, Vec<u8>)> {
    let mut frames = Vec::new();
    dnsentry::capture::pcap::read_file(path, Arc::new(AtomicU64::new(0)), |f| {
        frames.push((f.link, f.ts_ns, f.data.to_vec()))
    })
    .expect("benchmark capture");
    frames
}

fn per_packet(c: &mut Criterion) {
    let cfg = Config::default();
    let allowlist = Arc::new(Allowlist::new(true, &[]));
    let mut group = c.benchmark_group("decode_view_features");
    for (name, path) in captures() {
        let frames = load(&path);
        group.throughput(Throughput::Elements(frames.len() as u64));
        group.bench_function(name, |b| {
            let mut dec = Decoder::new(&cfg, allowlist.clone());
            b.iter(|| {
                let mut n = 0u64;
                for (i, (link, ts, data)) in frames.iter().enumerate() {
                    dec.frame(*link, data, *ts, i as u64, &mut |r, _| n += black_box(r.name_hash) & 1);
                }
                n
            })
        });
    }
    group.finish();
}

fn whole_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay_pipeline");
    group.sample_size(10);
    for (name, path) in captures() {
        let frames = load(&path).len() as u64;
        group.throughput(Throughput::Elements(frames));
        for workers in [1usize, 2] {
            let mut cfg = Config::default();
            cfg.pipeline.workers = workers;
            group.bench_function(format!("{name}/workers={workers}"), |b| {
                b.iter(|| {
                    let report = dnsentry::pipeline::replay(
                        &cfg,
                        std::slice::from_ref(&path),
                        &Default::default(),
                        |a| {
                            black_box(a);
                        },
                    );
                    assert_eq!(report.workers.frames, frames);
                })
            });
        }
    }
    group.finish();
}

/// A list of `n` random registered domains (a third with a subdomain) under common TLDs, as
/// `scripts/bench-reputation.sh` makes: none is in the captures.
fn bad_domains(n: usize) -> String {
    let tlds = ["com", "net", "org", "info", "xyz", "top", "ru", "cn", "io", "co.uk", "online", "site"];
    let letters = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let word = |min: u64, max: u64, next: &mut dyn FnMut() -> u64| -> String {
        let len = min + next() % (max - min + 1);
        (0..len).map(|_| letters[(next() % letters.len() as u64) as usize] as char).collect()
    };
    let mut out = String::new();
    for _ in 0..n {
        if next() % 3 == 0 {
            out.push_str(&word(3, 8, &mut next));
            out.push('.');
        }
        out.push_str(&word(6, 14, &mut next));
        out.push_str("-x.");
        out.push_str(tlds[(next() % tlds.len() as u64) as usize]);
        out.push('\n');
    }
    out
}

/// The reputation lists: building a 1 M-entry set, a lookup of a clean name against it, and the
/// per-packet stage with and without it (what clean traffic pays).
fn reputation(c: &mut Criterion) {
    use dnsentry::reputation::{Category, ListFormat, ListSeverity, ListSpec, Reputation};
    let spec = ListSpec {
        name: "bench".into(),
        path: "bench.txt".into(),
        category: Category::Malware,
        format: ListFormat::Domains,
        column: 0,
        severity: ListSeverity::High,
    };
    let text = bad_domains(1_000_000);
    let mut group = c.benchmark_group("reputation");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("load_1m", |b| {
        b.iter(|| {
            let mut set = Reputation::default();
            set.add(&spec, &text).expect("list");
            set.shrink();
            set.len()
        })
    });
    let mut set = Reputation::default();
    set.add(&spec, &text).expect("list");
    set.shrink();
    eprintln!("reputation: {} entries in {:.1} MiB", set.len(), set.memory_bytes() as f64 / (1 << 20) as f64);
    let set = Arc::new(set);
    group.finish();

    // Clean names: the query names of the benign capture.
    let cfg = Config::default();
    let allowlist = Arc::new(Allowlist::new(true, &[]));
    let (_, benign) = &captures()[0];
    let frames = load(benign);
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut dec = Decoder::new(&cfg, allowlist.clone());
    for (i, (link, ts, data)) in frames.iter().enumerate() {
        dec.frame(*link, data, *ts, i as u64, &mut |_, name| names.push(name.to_vec()));
    }
    let mut group = c.benchmark_group("reputation_lookup");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("clean_names_1m_list", |b| {
        b.iter(|| names.iter().filter(|n| set.lookup(black_box(n)).is_some()).count())
    });
    group.finish();

    let mut group = c.benchmark_group("decode_view_features_reputation");
    group.throughput(Throughput::Elements(frames.len() as u64));
    for (label, list) in
        [("benign/no_list", Arc::new(Reputation::default())), ("benign/1m_list", set.clone())]
    {
        group.bench_function(label, |b| {
            let mut dec = Decoder::new(&cfg, allowlist.clone());
            dec.set_reputation(list.clone());
            b.iter(|| {
                // As the pipeline's worker does: a batch decoded, then its pending lookups finished.
                let mut hits = 0usize;
                for chunk in frames.chunks(1024) {
                    let mut batch = dnsentry::record::Batch::with_capacity(1024);
                    let mut pending = Vec::new();
                    for (i, (link, ts, data)) in chunk.iter().enumerate() {
                        dec.frame(*link, data, *ts, i as u64, &mut |r, name| {
                            if r.flags & dnsentry::record::flag::REPUTATION_PENDING != 0 {
                                pending.push(batch.len());
                            }
                            batch.push(r, name);
                        });
                    }
                    for i in pending {
                        let r = batch.records[i];
                        hits += dec.finish_lookup(&r, batch.name(&r)).is_some() as usize;
                    }
                    black_box(&batch);
                }
                hits
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_packet, whole_pipeline, reputation);
criterion_main!(benches);
