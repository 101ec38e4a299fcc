#!/usr/bin/env bash
# Replay throughput against worker count: Mpps, CPU time per packet, parallel efficiency and peak
# RSS per worker count, on real benign DNS replicated in time, a one-domain random-subdomain flood
# and a million registered domains; `tcpdump -r FILE -w /dev/null` as the reading floor, measured
# in the same run. Runs unchanged on a bigger machine: the worker counts default to powers of two
# up to nproc - 1 (one core is left to the reader).
#
#   scripts/bench-scale.sh [--bin PATH] [--workers 1,2,4] [--capture FILE]... [--dir DIR]
#                          [--benign SRC...] [--reps N]
#
# --capture measures the given files instead of building the three captures. Otherwise they are
# built in --dir (default /tmp/dnsentry-bench) by scripts/bench-captures.py from --benign sources
# (default: the ggy-normal captures of ../shared/datasets) unless already there.
# `cargo xtask bench-scale` builds the release binary and calls this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../target/release/dnsentry"
dir=/tmp/dnsentry-bench
workers=""
reps=1
captures=()
benign=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --workers) workers="${2//,/ }"; shift 2 ;;
        --capture) captures+=("$2"); shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        --benign) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do benign+=("$1"); shift; done ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "bench-scale: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "bench-scale: no dnsentry binary at $bin (cargo build --release, or --bin)" >&2; exit 2; }
cores=$(nproc)
if [ -z "$workers" ]; then
    w=1
    while [ "$w" -lt "$cores" ]; do workers="$workers $w"; w=$((w * 2)); done
    [ "$cores" -gt 2 ] && workers="$workers $((cores - 1))"
fi
if [ ${#captures[@]} -eq 0 ]; then
    mkdir -p "$dir"
    if [ ! -s "$dir/benign.pcap" ] || [ ! -s "$dir/flood-one.pcap" ] || [ ! -s "$dir/flood-resolvers.pcap" ] \
        || [ ! -s "$dir/many-domains.pcap" ]; then
        if [ ${#benign[@]} -eq 0 ]; then
            for f in "$here"/../../shared/datasets/ggy-normal_*.pcap.gz; do
                [ -e "$f" ] || continue
                out="$dir/$(basename "$f" .gz)"
                [ -s "$out" ] || gzip -dc "$f" > "$out"
                benign+=("$out")
            done
        fi
        [ ${#benign[@]} -gt 0 ] || { echo "bench-scale: no benign sources (--benign FILE...)" >&2; exit 2; }
        python3 "$here/bench-captures.py" "$dir" --benign "${benign[@]}"
    fi
    captures=("$dir/benign.pcap" "$dir/flood-one.pcap" "$dir/flood-resolvers.pcap" "$dir/many-domains.pcap")
fi

echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
echo "binary:  $bin ($("$bin" --version 2>/dev/null || echo '?'))"
echo
echo "| capture | frames | workers | shards | Mpps | CPU µs/packet | efficiency | peak RSS MiB | floor (tcpdump -r) Mpps |"
echo "|---|---|---|---|---|---|---|---|---|"
for cap in "${captures[@]}"; do
    cat "$cap" > /dev/null   # page cache warm for every run alike
    floor="n/a"
    if command -v tcpdump > /dev/null; then
        s=$(date +%s.%N)
        tcpdump -r "$cap" -w /dev/null 2> /dev/null
        e=$(date +%s.%N)
        floor="-"
    fi
    base=""
    for w in $workers; do
        for _ in $(seq "$reps"); do
            log=$(mktemp)
            /usr/bin/time -f "TIME %e %U %S %M" "$bin" replay --workers "$w" "$cap" > /dev/null 2> "$log" || true
            packets=$(sed -n 's/^  packets: *\([0-9]*\).*/\1/p' "$log")
            elapsed=$(sed -n 's/^  elapsed: *\([0-9.]*\) s.*/\1/p' "$log")
            shards=$(sed -n 's/^  elapsed:.*workers, \([0-9]*\) shards.*/\1/p' "$log")
            read -r _ wall user sys rss < <(grep '^TIME' "$log")
            rm -f "$log"
            mpps=$(awk -v p="$packets" -v t="$elapsed" 'BEGIN { printf "%.2f", p / t / 1e6 }')
            cpu=$(awk -v p="$packets" -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", (u + s) / p * 1e6 }')
            [ -z "$base" ] && base=$(awk -v m="$mpps" -v w="$w" 'BEGIN { print m / w }')
            eff=$(awk -v m="$mpps" -v w="$w" -v b="$base" 'BEGIN { printf "%.0f %%", m / (w * b) * 100 }')
            if [ "$floor" = "-" ]; then
                floor=$(awk -v p="$packets" -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", p / (e - s) / 1e6 }')
            fi
            echo "| $(basename "$cap") | $packets | $w | $shards | $mpps | $cpu | $eff | $((rss / 1024)) | $floor |"
        done
    done
done
