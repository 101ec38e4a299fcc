#!/usr/bin/env bash
# Reproducible capture generator for dnsentry: real DNS tunnel tools and a real recursive resolver,
# in private network namespaces, captured with tcpdump. Run as root:
#
#   scripts/make-pcaps.sh [OUTDIR]        (default: pcaps/ of the repo; `cargo xtask pcaps` calls it)
#   PCAPS_ONLY="iodine-null benign" scripts/make-pcaps.sh /tmp/out     (a subset, for debugging)
#
# Topology (namespaces named with this shell's PID, removed on exit whatever happens):
#
#   clients (10.53.1.10-60) --c0/r0-- resolver: unbound 10.53.1.1 / 10.53.2.1 --r1/a0-- "internet"
#                                                                  NSD groups 10.53.2.10-46 (fake root,
#                                                                  TLDs, providers), iodined .53-.55,
#                                                                  dns2tcpd .56-.57
#
# The client namespace has no route beyond the resolver, so the tunnels can only work through
# DNS recursion. Every capture is taken on both resolver interfaces (r0: client side, r1:
# authoritative side) and merged into one classic pcap (Ethernet link type), like a SPAN port at
# a core switch. Nothing is ever sent outside the namespaces: the public-looking addresses in
# the fake zones are answer data only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
lib=$here/pcaps
out=${1:-$repo/pcaps}
only=${PCAPS_ONLY:-}

if [[ $(id -u) -ne 0 ]]; then
  echo "make-pcaps: must run as root (network namespaces, TUN devices, tcpdump)" >&2
  exit 1
fi
"$here/setup.sh"

# Packaged daemons must never run on the host: setup.sh blocks their start at install time; also
# keep them from starting at a future boot (only changes boot-time links, starts/stops nothing).
if command -v systemctl >/dev/null; then
  for svc in unbound nsd iodined; do
    if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
      systemctl disable --quiet "$svc" 2>/dev/null || true
    fi
  done
fi
if ss -Hlnu 'sport = :53' 2>/dev/null | grep -q .; then
  echo "make-pcaps: note: something listens on UDP port 53 on the host (not started by this script)" >&2
fi

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

mkdir -p "$out"
out=$(cd "$out" && pwd)
W=$(mktemp -d /tmp/dnsentry-pcaps.XXXXXX)
C=dnsen-cli-$$
R=dnsen-res-$$
A=dnsen-net-$$
RESOLVER=10.53.1.1
PASS=dnsentry-lab-pw
# unbound's QNAME minimisation sends an A probe for each new tunnel name first; iodined answers
# A with a CNAME that unbound then chases (NXDOMAIN): iodine cannot get through a minimising unbound.
IODINE_QMIN=${IODINE_QMIN:-no}
DNS2TCP_QMIN=${DNS2TCP_QMIN:-no}   # dns2tcpd ignores the A probes: the resolver times out
PIDS=()
NS_CREATED=()

cleanup() {
  local rc=$?
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for ns in "${NS_CREATED[@]}"; do
    # everything still running inside our own namespaces was started by this script
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if ((rc != 0)); then
    echo "make-pcaps: FAILED (rc=$rc); last log lines:" >&2
    for f in "$W"/logs/*.log; do [[ -s $f ]] && { echo "== $f" >&2; tail -n 8 "$f" >&2; }; done
  fi
  if [[ -n ${PCAPS_KEEP:-} ]]; then echo "make-pcaps: kept $W" >&2; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# start a daemon in a namespace; its PID goes to PIDS and to the named variable
spawn() {
  local __var=$1 ns=$2 logf=$W/logs/$3.log; shift 3
  ip netns exec "$ns" "$@" >"$logf" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  printf -v "$__var" '%s' "$pid"
}
stop() {
  local pid
  for pid in "$@"; do
    [[ -n $pid ]] || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
# wait until a log file contains a pattern (or the process died / timeout)
wait_log() {
  local logf=$W/logs/$1.log pat=$2 secs=$3 pid=${4:-}
  for _ in $(seq $((secs * 10))); do
    grep -q -- "$pat" "$logf" 2>/dev/null && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "no '$pat' in $1.log after ${secs}s:"; tail -n 20 "$logf" >&2 || true
  return 1
}
# run a long foreground step in the background and wait for it, so INT/TERM are handled at once
run() { "$@" & local pid=$!; PIDS+=("$pid"); wait "$pid"; }
want() { [[ -z $only ]] || [[ " $only " == *" $1 "* ]]; }
FAILS=0
# check_xfer NAME: both ends of xfer.py agree (bytes and sha256 each way); record a failure if not
check_xfer() {
  local cli=$W/logs/xfer-$1-cli.log srv=$W/logs/xfer-$1-srv.log c s up down
  c=$(sed -n 's/^client: sent \([0-9]*\) (sha256 \([0-9a-f]*\)) received \([0-9]*\) (sha256 \([0-9a-f]*\))$/\1 \2 \3 \4/p' "$cli" 2>/dev/null)
  s=$(sed -n 's/^server: sent \([0-9]*\) (sha256 \([0-9a-f]*\)) received \([0-9]*\) (sha256 \([0-9a-f]*\))$/\3 \4 \1 \2/p' "$srv" 2>/dev/null)
  if [[ -n $c && $c == "$s" ]]; then
    read -r up _ down _ <<<"$c"
    log "$1: tunnel carried $up bytes up and $down bytes down, checksums match"
  else
    log "$1: FAILED: incomplete transfer through the tunnel"; sed 's/^/  /' "$cli" "$srv" >&2 || true
    FAILS=$((FAILS + 1))
  fi
}

mkdir -p "$W/logs" "$W/cap"

# --- topology --------------------------------------------------------------------------------
log "namespaces $C $R $A"
for ns in "$C" "$R" "$A"; do
  ip netns add "$ns"
  NS_CREATED+=("$ns")
  inns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  inns "$ns" ip link set lo up
done
ip link add c0 netns "$C" type veth peer name r0 netns "$R"
ip link add r1 netns "$R" type veth peer name a0 netns "$A"
inns "$C" ip addr add 10.53.1.10/24 dev c0
for a in 11 12 20 30 40 50 60; do inns "$C" ip addr add 10.53.1.$a/24 dev c0; done
inns "$R" ip addr add 10.53.1.1/24 dev r0
inns "$R" ip addr add 10.53.2.1/24 dev r1
inns "$A" ip addr add 10.53.2.2/24 dev a0
for a in 10 11 20 21 22 23 24 25 26 $(seq 30 46) $(seq 53 57); do inns "$A" ip addr add 10.53.2.$a/24 dev a0; done
inns "$C" ip link set c0 up
inns "$R" ip link set r0 up
inns "$R" ip link set r1 up
inns "$A" ip link set a0 up
inns "$C" ip route add default via 10.53.1.1   # the resolver does not forward: DNS is the only way out
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing: iodine needs the TUN driver"

# --- the fake DNS hierarchy (NSD, one instance per server group) -----------------------------
"$PY" "$lib/world.py" zones "$W/world"
while read -r group ips; do
  spawn _pid "$A" "nsd-$group" nsd -d -c "$W/world/$group/nsd.conf"
done <"$W/world/groups.tsv"
while read -r group ips; do
  ip=${ips%% *}
  ok=0
  for _ in $(seq 50); do
    if inns "$A" dig +short +tries=1 +time=1 @"$ip" -t SOA . >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  ((ok)) || die "NSD group $group at $ip does not answer"
done <"$W/world/groups.tsv"
log "NSD: $(wc -l <"$W/world/groups.tsv") authoritative server groups up"

# --- the recursive resolver ------------------------------------------------------------------
mkdir -p "$W/unbound"
write_unbound_conf() {   # $1: qname-minimisation yes|no
cat >"$W/unbound/unbound.conf" <<EOF
server:
  username: ""
  chroot: ""
  directory: "$W/unbound"
  pidfile: "$W/unbound/unbound.pid"
  use-syslog: no
  verbosity: 1
  num-threads: 1
  interface: 10.53.1.1
  outgoing-interface: 10.53.2.1
  port: 53
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  access-control: 10.53.1.0/24 allow
  root-hints: "$W/world/root.hints"
  # no DNSSEC: the fake root is unsigned
  module-config: "iterator"
  trust-anchor-signaling: no
  qname-minimisation: $1
  do-not-query-localhost: no
  # RFC 6761 makes .test a locally served (empty) zone by default; here it is a real TLD
  local-zone: "test." nodefault
  so-reuseport: no
remote-control:
  control-enable: no
EOF
unbound-checkconf "$W/unbound/unbound.conf" >/dev/null
}
UNBOUND=""
restart_resolver() {   # $1: qname-minimisation yes|no; a fresh resolver (cold cache) for each capture
  stop "$UNBOUND"
  write_unbound_conf "$1"
  spawn UNBOUND "$R" unbound unbound -d -c "$W/unbound/unbound.conf"
  for _ in $(seq 50); do
    # "localhost" is answered by unbound itself: no upstream traffic
    if inns "$C" dig +short +tries=1 +time=1 @"$RESOLVER" localhost A 2>/dev/null | grep -q 127.0.0.1; then return 0; fi
    sleep 0.1
  done
  die "unbound did not come up"
}

# --- captures --------------------------------------------------------------------------------
CAP0="" CAP1=""
capture_start() {
  local name=$1
  rm -f "$W/cap/$name".*
  spawn CAP0 "$R" "tcpdump-$name-r0" tcpdump -i r0 -s 0 -U --immediate-mode -nn -Z root -w "$W/cap/$name.r0.pcap"
  spawn CAP1 "$R" "tcpdump-$name-r1" tcpdump -i r1 -s 0 -U --immediate-mode -nn -Z root -w "$W/cap/$name.r1.pcap"
  wait_log "tcpdump-$name-r0" "listening on" 10 "$CAP0"
  wait_log "tcpdump-$name-r1" "listening on" 10 "$CAP1"
  sleep 0.3
}
capture_stop() {
  local name=$1
  sleep 0.5
  kill -INT "$CAP0" "$CAP1" 2>/dev/null || true
  stop "$CAP0" "$CAP1"
  mergecap -F pcap -w "$out/$name.pcap" "$W/cap/$name.r0.pcap" "$W/cap/$name.r1.pcap"
  log "$name.pcap: $(tcpdump -nn -r "$out/$name.pcap" 2>/dev/null | wc -l) packets, $(stat -c %s "$out/$name.pcap") bytes"
}

# --- iodine ----------------------------------------------------------------------------------
# iodine_capture NAME QTYPE DOWNENC DOMAIN SERVER_IP TUN_NET DOWN_BYTES UP_BYTES
iodine_capture() {
  local name=$1 qtype=$2 enc=$3 domain=$4 sip=$5 net=$6 down=$7 up=$8 d c x p
  want "$name" || return 0
  log "$name: iodine -T $qtype ${enc:+-O $enc} via $RESOLVER for $domain"
  restart_resolver "$IODINE_QMIN"
  spawn d "$A" "iodined-$name" timeout 240 iodined -f -c -l "$sip" -p 53 -P "$PASS" "$net.1/27" "$domain"
  wait_log "iodined-$name" "Listening to dns" 15 "$d"
  capture_start "$name"
  local encopt=()
  [[ -n $enc ]] && encopt=(-O "$enc")
  spawn c "$C" "iodine-$name" timeout 240 iodine -f -r -P "$PASS" -T "$qtype" "${encopt[@]}" "$RESOLVER" "$domain"
  wait_log "iodine-$name" "Connection setup complete" 90 "$c"
  grep -E "Using DNS type|downstream|Setting downstream|fragment size|Switching" "$W/logs/iodine-$name.log" | sed "s/^/  iodine: /" >&2 || true
  inns "$C" timeout 20 ping -c 5 -i 0.5 -q "$net.1" | sed -n 's/^/  /;/packets/p' >&2 || log "$name: ping over the tunnel failed"
  spawn x "$A" "xfer-$name-srv" timeout 150 "$PY" "$lib/xfer.py" serve "$net.1" 8080 "$down" "$up"
  wait_log "xfer-$name-srv" "listening" 10 "$x"
  run inns "$C" timeout 150 "$PY" "$lib/xfer.py" fetch "$net.1" 8080 "$up" "$down" >"$W/logs/xfer-$name-cli.log" 2>&1 \
    || log "$name: transfer did not finish"
  sleep 1
  check_xfer "$name"
  stop "$x" "$c"
  capture_stop "$name"
  stop "$d"
  sleep 1   # let the tun devices go
}

# --- dns2tcp ---------------------------------------------------------------------------------
# dns2tcp_capture NAME QTYPE DOMAIN SERVER_IP BYTES_EACH_WAY RATE (bytes/s: an interactive-ish
# session; unpaced, 60 KB cross the LAN-fast namespaces in under 0.1 s)
dns2tcp_capture() {
  local name=$1 qtype=$2 domain=$3 sip=$4 bytes=$5 rate=$6 d c x
  want "$name" || return 0
  log "$name: dns2tcp -T $qtype via $RESOLVER for $domain"
  restart_resolver "$DNS2TCP_QMIN"
  cat >"$W/$name-dns2tcpd.conf" <<EOF
listen = $sip
port = 53
user = nobody
chroot = $W/empty
key = dnsentrykey
domain = $domain
resources = files:127.0.0.1:7000
EOF
  mkdir -p "$W/empty"
  spawn x "$A" "xfer-$name-srv" timeout 200 "$PY" "$lib/xfer.py" serve 127.0.0.1 7000 "$bytes" "$bytes" "$rate"
  wait_log "xfer-$name-srv" "listening" 10 "$x"
  spawn d "$A" "dns2tcpd-$name" timeout 240 dns2tcpd -F -d 1 -f "$W/$name-dns2tcpd.conf"
  sleep 1
  kill -0 "$d" 2>/dev/null || die "dns2tcpd did not start: $(cat "$W/logs/dns2tcpd-$name.log")"
  capture_start "$name"
  spawn c "$C" "dns2tcpc-$name" timeout 240 dns2tcpc -z "$domain" -k dnsentrykey -r files -l 2222 -T "$qtype" "$RESOLVER"
  for _ in $(seq 100); do inns "$C" ss -Hlnt 'sport = :2222' | grep -q . && break; sleep 0.1; done
  run inns "$C" timeout 200 "$PY" "$lib/xfer.py" fetch 127.0.0.1 2222 "$bytes" "$bytes" "$rate" >"$W/logs/xfer-$name-cli.log" 2>&1 \
    || log "$name: transfer did not finish"
  sleep 1
  check_xfer "$name"
  stop "$c" "$x"
  capture_stop "$name"
  stop "$d"
}

# --- benign ----------------------------------------------------------------------------------
benign_capture() {
  want benign || return 0
  "$PY" "$lib/world.py" plan "$W/plan.tsv" >/dev/null
  log "benign: $(wc -l <"$W/plan.tsv") planned queries from $(cut -f2 "$W/plan.tsv" | sort -u | wc -l) clients through unbound"
  restart_resolver yes
  capture_start benign
  run inns "$C" timeout 200 "$PY" "$lib/run-plan.py" "$W/plan.tsv" "$RESOLVER" >&2
  sleep 1
  capture_stop benign
  # the same traffic as a trunk port shows it: 802.1Q / QinQ tags added offline (no 8021q module)
  "$PY" "$lib/vlan-tag.py" "$out/benign.pcap" "$out/mixed-vlan.pcap" 400 >&2
}

start=$SECONDS
iodine_capture iodine-null NULL "" t.iodine-lab.test 10.53.2.53 10.99.1 120000 30000
iodine_capture iodine-txt TXT "" t.iodine-txt.test 10.53.2.54 10.99.2 80000 20000
iodine_capture iodine-cname-base32 CNAME base32 t.iodine-cname.test 10.53.2.55 10.99.3 40000 10000
dns2tcp_capture dns2tcp-txt TXT t.dns2tcp-lab.test 10.53.2.56 20000 5000
dns2tcp_capture dns2tcp-key KEY t.dns2tcp-key.test 10.53.2.57 20000 5000
benign_capture

if [[ -z $only ]]; then
  {
    printf 'file\tclass\ttool\tvariant\tdomain\tnotes\n'
    t='both resolver links; unbound with qname-minimisation off'
    printf 'iodine-null.pcap\ttunnel\tiodine\tNULL (-T NULL), upstream Base128, downstream raw, lazy mode\tiodine-lab.test\ttunnel zone t.iodine-lab.test; ping + 120 KB down / 30 KB up over the tun; %s\n' "$t"
    printf 'iodine-txt.pcap\ttunnel\tiodine\tTXT (-T TXT), upstream Base128, downstream Raw (autodetected)\tiodine-txt.test\ttunnel zone t.iodine-txt.test; ping + 80 KB down / 20 KB up; %s\n' "$t"
    printf 'iodine-cname-base32.pcap\ttunnel\tiodine\tCNAME (-T CNAME -O base32), upstream Base128, downstream Base32\tiodine-cname.test\ttunnel zone t.iodine-cname.test; ping + 40 KB down / 10 KB up; %s\n' "$t"
    printf 'dns2tcp-txt.pcap\ttunnel\tdns2tcp\tTXT (-T TXT), key auth\tdns2tcp-lab.test\ttunnel zone t.dns2tcp-lab.test; one TCP session, 20 KB each way at ~5 KB/s; %s\n' "$t"
    printf 'dns2tcp-key.pcap\ttunnel\tdns2tcp\tKEY (-T KEY), key auth\tdns2tcp-key.test\ttunnel zone t.dns2tcp-key.test; one TCP session, 20 KB each way at ~5 KB/s; %s\n' "$t"
    printf 'benign.pcap\tbenign\tunbound\t8 clients, ~1200 queries in 70 s, qname minimisation on\t-\tboth resolver links; false-positive traps: AV reputation (McAfee/ESET/Sophos over TCP), DNSBL, DKIM/SPF/DMARC, ACME, CAA, PTR sweep of a /24, _ta- telemetry, wildcard, CDNs, busy NAT client, random Chrome probes\n'
    printf 'mixed-vlan.pcap\tbenign\tunbound\t802.1Q VID 110 (client side) + QinQ 802.1ad 300 / 802.1Q 20 (upstream side), every 7th frame and ARP untagged\t-\tfirst 400 frames of benign.pcap with tags inserted offline by scripts/pcaps/vlan-tag.py\n'
  } >"$out/LABELS.tsv"
fi
log "done in $((SECONDS - start)) s; captures in $out"
ls -l "$out" >&2
if ((FAILS)); then
  log "$FAILS tunnel transfer(s) incomplete: see above"
  exit 1
fi
