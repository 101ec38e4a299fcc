#!/usr/bin/env bash
# Live capture receive rate on a veth pair: dnsentry (XDP + AF_XDP, drv and skb attach) against an
# AF_PACKET baseline (tcpdump), with the same generator load.
#
#   sudo scripts/bench-live.sh [--queues N] [--gen-cpus M]
#
# Default (one queue, one generator core): the single-queue comparison described below.
# --queues N --gen-cpus M (for a bigger machine): the sensor end of the veth gets N RX queues and
# dnsentry one worker per queue; trafgen sends from M cores (1..M) with random source ports (so the
# veth spreads flows over the queues in drv mode) and a random 12-byte first label under one
# registered domain (the hot-domain case: every record goes to one shard). Workers are pinned to
# cores M+1..M+N and shards to the N cores after those (wrapping around nproc); tcpdump stays a
# single-queue AF_PACKET comparison.
#
# A generator namespace runs trafgen (netsniff-ng, pinned to core 1) sending one 102-byte DNS query
# frame (A? www.bench-dnsentry-measurement.example.com, UDP 10.88.0.2:40000 -> 10.88.0.77:53, valid
# IPv4/UDP checksums) as fast as it can, addressed to the sensor end's MAC, over a single-queue veth
# pair into a sensor namespace. Each capturer runs pinned to core 0 while the generator sends for
# DURATION seconds; modes run one after the other, REPS times.
#
# Environment: DURATION (s, default 10), REPS (default 2), DNSENTRY (binary, default
# target/release/dnsentry), OUT (directory for logs, default a new /tmp/bench-live.XXXXXX),
# METRICS_PORT (default 19853). Needs root, trafgen, tcpdump, taskset (scripts/setup.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
DURATION=${DURATION:-10}
REPS=${REPS:-2}
DNSENTRY=${DNSENTRY:-$repo/target/release/dnsentry}
METRICS_PORT=${METRICS_PORT:-19853}
QUEUES=1
GEN_CPUS=1
while (($#)); do
  case $1 in
    --queues) QUEUES=$2; shift 2 ;;
    --gen-cpus) GEN_CPUS=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-live: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$(mktemp -d /tmp/bench-live.XXXXXX)}
GEN=dnsbench-gen-$$
SEN=dnsbench-sen-$$
GEN_IF=vg   # generator end
SEN_IF=vs   # sensor end (captured)
GEN_CPU=1
CAP_CPU=0
GEN_LAST=$((GEN_CPU + GEN_CPUS - 1))
# Capture (worker) and shard cores: core 0 for the single-queue default, else after the generator.
cores_from() { # first count: comma list of cores, wrapping around nproc
  local i out=""
  for ((i = 0; i < $2; i++)); do out+="${out:+,}$((($1 + i) % $(nproc)))"; done
  echo "$out"
}
if ((QUEUES == 1 && GEN_CPUS == 1)); then
  CAP_CORES=$CAP_CPU
  SHARD_CORES=$CAP_CPU
else
  CAP_CORES=$(cores_from $((GEN_LAST + 1)) "$QUEUES")
  SHARD_CORES=$(cores_from $((GEN_LAST + 1 + QUEUES)) "$QUEUES")
fi

die() { echo "bench-live: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (sudo $0)"
[[ -x $DNSENTRY ]] || die "$DNSENTRY missing: build it first (cargo build --release)"
for t in trafgen tcpdump taskset ip; do command -v "$t" >/dev/null || die "$t missing: run scripts/setup.sh"; done
(($(nproc) >= 2)) || die "needs 2 cores (generator on core $GEN_CPU, capture on core $CAP_CPU)"
mkdir -p "$OUT"

cap_pid=""  # the running capturer, if any
cleanup() {
  if [[ -n $cap_pid ]]; then
    kill -INT "$cap_pid" 2>/dev/null || true
    wait "$cap_pid" 2>/dev/null || true
  fi
  ip netns del "$GEN" 2>/dev/null || true
  ip netns del "$SEN" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces and one single-queue veth pair (one RX queue: one AF_XDP socket, one capture core).
ip netns add "$GEN"
ip netns add "$SEN"
ip -n "$GEN" link set lo up
ip -n "$SEN" link set lo up
ip link add "$SEN_IF" numrxqueues "$QUEUES" numtxqueues "$QUEUES" netns "$SEN" type veth \
  peer name "$GEN_IF" numrxqueues 1 numtxqueues "$GEN_CPUS" netns "$GEN"
ip -n "$SEN" addr add 10.88.0.1/24 dev "$SEN_IF"
ip -n "$GEN" addr add 10.88.0.2/24 dev "$GEN_IF"
ip -n "$SEN" link set "$SEN_IF" up
ip -n "$GEN" link set "$GEN_IF" up
sen_mac=$(ip -n "$SEN" -br link show "$SEN_IF" | awk '{print $3}')
gen_mac=$(ip -n "$GEN" -br link show "$GEN_IF" | awk '{print $3}')

# trafgen packet: with --cpus 2, fork 0 has no packet and idles; fork 1 (CPU 1) sends. (trafgen pins
# fork i to CPU i itself, so taskset alone cannot move a single fork off CPU 0.)
cfg=$OUT/dns-query.trafgen
if ((QUEUES == 1 && GEN_CPUS == 1)); then
  cat >"$cfg" <<EOF
cpu($GEN_CPU): {
  eth(da=$sen_mac, sa=$gen_mac, type=0x0800),
  ipv4(saddr=10.88.0.2, daddr=10.88.0.77, ttl=64),
  udp(sp=40000, dp=53),
  c16(0x1234), c16(0x0100), c16(1), c16(0), c16(0), c16(0),
  3, "www", 26, "bench-dnsentry-measurement", 7, "example", 3, "com", 0, c16(1), c16(1)
}
EOF
else
  # Random source port and query id (flows spread over the RX queues) and a random 12-byte label
  # under one registered domain: a water-torture flood, 111-byte frames.
  cat >"$cfg" <<EOF
cpu($GEN_CPU-$GEN_LAST): {
  eth(da=$sen_mac, sa=$gen_mac, type=0x0800),
  ipv4(saddr=10.88.0.2, daddr=10.88.0.77, ttl=64),
  udp(sp=drnd(), dp=53),
  drnd(2), c16(0x0100), c16(1), c16(0), c16(0), c16(0),
  12, drnd(12), 26, "bench-dnsentry-measurement", 7, "example", 3, "com", 0, c16(1), c16(1)
}
EOF
fi

link_stat() { # ns if field: rx_packets tx_packets rx_dropped tx_dropped
  ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

scrape() { # metrics text from the sensor namespace
  ip netns exec "$SEN" timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$METRICS_PORT &&
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 && cat <&3" 2>/dev/null || true
}
metrics_up() { scrape | grep -q '^dnsentry_build_info'; }
metric_sum() { # file name: sum of every series of the metric, n/a when the scrape lacks it
  awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%d", s; else printf "n/a" }' "$1"
}

cpu_ticks() { # pid: user + system clock ticks of the process (all threads)
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# Generator: sends for DURATION s while the capturer cap_pid runs; leaves sent packets, the wall
# time and the capturer's CPU use (% of one core) in gen_* variables.
generate() {
  local log=$1 tx0 tx1 txd0 txd1 t0 t1 c0 c1
  tx0=$(link_stat "$GEN" "$GEN_IF" tx_packets)
  txd0=$(link_stat "$GEN" "$GEN_IF" tx_dropped)
  c0=$(cpu_ticks "$cap_pid")
  t0=$(date +%s.%N)
  ip netns exec "$GEN" taskset -c "$GEN_CPU-$GEN_LAST" timeout -s INT "$DURATION" \
    trafgen --dev "$GEN_IF" --conf "$cfg" --cpus $((GEN_LAST + 1)) >"$log" 2>&1 || true
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$cap_pid")
  tx1=$(link_stat "$GEN" "$GEN_IF" tx_packets)
  txd1=$(link_stat "$GEN" "$GEN_IF" tx_dropped)
  gen_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  gen_sent=$((tx1 - tx0))
  gen_txdrop=$((txd1 - txd0))
  gen_capcpu=$(awk -v a="$c0" -v b="$c1" -v s="$gen_secs" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / s }')
  gen_trafgen=$(grep -ao '[0-9]* packets outgoing' "$log" | awk '{ print $1 }')
}

wait_for() { # seconds command...: poll until the command succeeds
  local n=$(($1 * 10)); shift
  while ((n-- > 0)); do "$@" && return 0; sleep 0.1; done
  return 1
}

results=$OUT/results.tsv
printf 'rep\tmode\tsecs\tsent\tsent_pps\ttx_dropped\treceived\tprocessed\tprocessed_pps\tdrops\tdetail\n' >"$results"

pps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

run_dnsentry() { # rep attach
  local rep=$1 attach=$2 tag=$OUT/rep$1-$2 pid
  local rx0 rx1
  rx0=$(link_stat "$SEN" "$SEN_IF" rx_packets)
  local cpus=$CAP_CORES
  [[ $SHARD_CORES == "$CAP_CORES" ]] || cpus+=",$SHARD_CORES"
  ip netns exec "$SEN" taskset -c "$cpus" "$DNSENTRY" live --iface "$SEN_IF" \
    --attach "$attach" --default-action drop --cores "$CAP_CORES" --shard-cores "$SHARD_CORES" \
    --shards "$QUEUES" --duration 0 --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --alarms "$tag.alarms" >"$tag.stdout" 2>"$tag.stderr" &
  pid=$!
  cap_pid=$pid
  wait_for 20 metrics_up ||
    { cat "$tag.stderr" >&2; die "dnsentry ($attach) did not start"; }
  sleep 1
  generate "$tag.trafgen"
  sleep 1.5 # drain, and let the monitor (1 s tick) publish the final XDP counters
  scrape >"$tag.metrics"
  kill -INT "$pid"
  wait "$pid" || die "dnsentry ($attach) failed: $(tail -5 "$tag.stderr")"
  cap_pid=""
  rx1=$(link_stat "$SEN" "$SEN_IF" rx_packets)
  local packets dns seen redirected ringfull rxdrop fillempty invalid xdpline sharddrops
  packets=$(awk '/^ *packets:/ { print $2 }' "$tag.stderr")
  dns=$(awk '/^ *dns messages:/ { print $3 }' "$tag.stderr")
  xdpline=$(sed -n 's/^ *xdp: *//p' "$tag.stderr")
  sharddrops=$(awk '/^ *shard drops:/ { print $3 }' "$tag.stderr")
  seen=$(sed -n 's/.*\bseen \([0-9]*\).*/\1/p' <<<"$xdpline")
  redirected=$(sed -n 's/.*\bredirected \([0-9]*\).*/\1/p' <<<"$xdpline")
  ringfull=$(metric_sum "$tag.metrics" dnsentry_afxdp_rx_ring_full_total)
  rxdrop=$(metric_sum "$tag.metrics" dnsentry_afxdp_rx_dropped_total)
  fillempty=$(metric_sum "$tag.metrics" dnsentry_afxdp_fill_ring_empty_total)
  invalid=$(metric_sum "$tag.metrics" dnsentry_afxdp_invalid_descs_total)
  # Frames redirected to the AF_XDP socket that no worker got: dropped by the kernel in copy mode
  # (RX ring full / no fill descriptor); the metrics endpoint says which when it exports them.
  local lost=$((redirected - packets))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "dnsentry-$attach" "$gen_secs" "$gen_sent" \
    "$(pps "$gen_sent" "$gen_secs")" "$gen_txdrop" "$redirected" "$packets" "$(pps "$packets" "$gen_secs")" "$lost" \
    "cpu=$gen_capcpu dns=$dns shard_drops=$sharddrops veth_rx=$((rx1 - rx0)) afxdp_rx_ring_full=$ringfull afxdp_rx_dropped=$rxdrop fill_ring_empty=$fillempty invalid_descs=$invalid trafgen=$gen_trafgen | $xdpline" \
    >>"$results"
}

run_tcpdump() { # rep
  local rep=$1 tag=$OUT/rep$1-afpacket pid
  local rx0 rx1
  rx0=$(link_stat "$SEN" "$SEN_IF" rx_packets)
  ip netns exec "$SEN" taskset -c "$CAP_CPU" tcpdump -i "$SEN_IF" -n -w /dev/null -B 65536 \
    2>"$tag.stderr" &
  pid=$!
  cap_pid=$pid
  wait_for 20 grep -q 'listening on' "$tag.stderr" || { cat "$tag.stderr" >&2; die "tcpdump did not start"; }
  sleep 1
  generate "$tag.trafgen"
  sleep 1.5
  kill -INT "$pid"
  wait "$pid" || true
  cap_pid=""
  rx1=$(link_stat "$SEN" "$SEN_IF" rx_packets)
  local captured byfilter dropped
  captured=$(awk '/packets captured/ { print $1 }' "$tag.stderr")
  byfilter=$(awk '/received by filter/ { print $1 }' "$tag.stderr")
  dropped=$(awk '/dropped by kernel/ { print $1 }' "$tag.stderr")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "af_packet-tcpdump" "$gen_secs" "$gen_sent" \
    "$(pps "$gen_sent" "$gen_secs")" "$gen_txdrop" "$byfilter" "$captured" "$(pps "$captured" "$gen_secs")" \
    "$dropped" "cpu=$gen_capcpu veth_rx=$((rx1 - rx0)) trafgen=$gen_trafgen" >>"$results"
}

echo "bench-live: $REPS x (drv, skb, af_packet), $DURATION s each; logs in $OUT" >&2
for ((rep = 1; rep <= REPS; rep++)); do
  run_dnsentry "$rep" drv
  run_dnsentry "$rep" skb
  run_tcpdump "$rep"
done

# Report: one row per run, processed rate and ratio to the same repetition's AF_PACKET rate.
echo
echo "machine: $(nproc) cores, $(uname -r), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
if ((QUEUES == 1 && GEN_CPUS == 1)); then
  echo "generator: trafgen on core $GEN_CPU, capture on core $CAP_CPU, $DURATION s per run, 102-byte DNS query frames"
else
  echo "generator: trafgen on cores $GEN_CPU-$GEN_LAST, $QUEUES queues: workers on cores $CAP_CORES, shards on $SHARD_CORES; $DURATION s per run, 111-byte queries, random ports and first label, one domain"
fi
echo
echo "| rep | mode | sent pps | received | processed pps | drops | ratio to AF_PACKET |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' 'NR > 1 { row[NR] = $0; rep[NR] = $1; mode[NR] = $2; pps[NR] = $9; if ($2 ~ /af_packet/) base[$1] = $9 }
  END { for (i = 2; i <= NR; i++) { split(row[i], f, "\t");
          ratio = (base[f[1]] > 0) ? f[9] / base[f[1]] : 0
          printf "| %s | %s | %d | %d | %d | %d | %.2f |\n", f[1], f[2], f[5], f[7], f[9], f[10], ratio } }' "$results"
echo
echo "received: dnsentry = XDP redirected to AF_XDP, tcpdump = received by filter"
echo "processed: dnsentry = summary packets:, tcpdump = packets captured (rates over the generator's time)"
echo "drops: dnsentry = redirected - processed (AF_XDP copy-mode drops), tcpdump = dropped by kernel"
echo "details:"
awk -F'\t' 'NR > 1 { printf "  rep %s %s: %s\n", $1, $2, $11 }' "$results"
