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

criterion_group!(benches, per_packet, whole_pipeline);
criterion_main!(benches);
