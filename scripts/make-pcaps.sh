#!/usr/bin/env bash
# Reproducible capture generator for dnsentry: real DNS tunnel tools and a real recursive resolver,
# in private network namespaces, captured with tcpdump. Run as root:
#
#   scripts/make-pcaps.sh [OUTDIR]        (default: pcaps/ of the repo; `cargo xtask pcaps` calls it)
#   PCAPS_ONLY="iodine-null benign" scripts/make-pcaps.sh /tmp/out     (a subset, for debugging)
#   PCAPS_EVAL=1 scripts/make-pcaps.sh [OUTDIR]   the labelled evaluation set instead (default:
#                                      pcaps/eval/; scripts/make-eval-pcaps.sh is the same); PCAPS_ONLY
#                                      works there too (names as in pcaps/eval/LABELS.tsv, without .pcap)
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
EVAL=${PCAPS_EVAL:-}
if [[ -n $EVAL ]]; then out=${1:-$repo/pcaps/eval}; else out=${1:-$repo/pcaps}; fi
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
XFER_DONE=""
# check_xfer NAME: both ends of xfer.py agree (bytes and sha256 each way); record a failure if not
check_xfer() {
  local cli=$W/logs/xfer-$1-cli.log srv=$W/logs/xfer-$1-srv.log c s up down
  c=$(sed -n 's/^client: sent \([0-9]*\) (sha256 \([0-9a-f]*\)) received \([0-9]*\) (sha256 \([0-9a-f]*\))$/\1 \2 \3 \4/p' "$cli" 2>/dev/null)
  s=$(sed -n 's/^server: sent \([0-9]*\) (sha256 \([0-9a-f]*\)) received \([0-9]*\) (sha256 \([0-9a-f]*\))$/\3 \4 \1 \2/p' "$srv" 2>/dev/null)
  if [[ -n $c && $c == "$s" ]]; then
    read -r up _ down _ <<<"$c"
    log "$1: tunnel carried $up bytes up and $down bytes down, checksums match"
    XFER_DONE="$down B down / $up B up over the tunnel (checksums match)"
  else
    log "$1: FAILED: incomplete transfer through the tunnel"; sed 's/^/  /' "$cli" "$srv" >&2 || true
    XFER_DONE="transfer INCOMPLETE"
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
for a in 10 11 20 21 22 23 24 25 26 $(seq 30 46) $(seq 53 57) $(seq 60 69); do inns "$A" ip addr add 10.53.2.$a/24 dev a0; done
inns "$C" ip link set c0 up
inns "$R" ip link set r0 up
inns "$R" ip link set r1 up
inns "$A" ip link set a0 up
inns "$C" ip route add default via 10.53.1.1   # the resolver does not forward: DNS is the only way out
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing: iodine needs the TUN driver"

# --- the fake DNS hierarchy (NSD, one instance per server group) -----------------------------
# the evaluation set's tunnel zones: each tool / variant on its own registered domain, delegated to
# its own daemon address (10.53.2.60-69); tunnel interiors in 10.77.N.0/27
EVAL_TUNNELS="t.iod-null.test=10.53.2.60 t.iod-private.test=10.53.2.61 t.iod-txtraw.test=10.53.2.62
  t.iod-srv.test=10.53.2.63 t.iod-mx.test=10.53.2.64 t.iod-cname.test=10.53.2.65 t.iod-a.test=10.53.2.66
  t.iod-raw.test=10.53.2.67 t.d2t-txtc.test=10.53.2.68 t.d2t-keyc.test=10.53.2.69"
if [[ -n $EVAL ]]; then export WORLD_EXTRA_TUNNELS=$EVAL_TUNNELS; fi
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
# iodine_capture NAME QTYPE DOWNENC DOMAIN SERVER_IP TUN_NET DOWN_BYTES UP_BYTES [rawudp]
# rawudp: iodine without -r, and the resolver's namespace routes between the client and iodined for
# the duration, so iodine switches to its raw UDP mode after the handshake through the resolver.
# Sets IOD_INFO (codecs / mode that iodine reported) and XFER_INFO for the labels.
IOD_INFO="" XFER_INFO=""
iodine_capture() {
  local name=$1 qtype=$2 enc=$3 domain=$4 sip=$5 net=$6 down=$7 up=$8 mode=${9:-} d c x p
  want "$name" || return 0
  IOD_INFO="" XFER_INFO=""
  log "$name: iodine -T $qtype ${enc:+-O $enc} via $RESOLVER for $domain${mode:+ ($mode)}"
  restart_resolver "$IODINE_QMIN"
  local ropt=(-r)
  if [[ $mode == rawudp ]]; then
    ropt=()
    inns "$R" sysctl -qw net.ipv4.ip_forward=1
    inns "$A" ip route replace 10.53.1.0/24 via 10.53.2.1
  fi
  spawn d "$A" "iodined-$name" timeout 240 iodined -f -c -l "$sip" -p 53 -P "$PASS" "$net.1/27" "$domain"
  wait_log "iodined-$name" "Listening to dns" 15 "$d"
  capture_start "$name"
  local encopt=()
  [[ -n $enc ]] && encopt=(-O "$enc")
  spawn c "$C" "iodine-$name" timeout 240 iodine -f "${ropt[@]}" -P "$PASS" -T "$qtype" "${encopt[@]}" "$RESOLVER" "$domain"
  if ! wait_log "iodine-$name" "Connection setup complete" 90 "$c"; then
    log "$name: FAILED: iodine did not connect"; FAILS=$((FAILS + 1))
    stop "$c"; capture_stop "$name"; stop "$d"
    [[ $mode == rawudp ]] && { inns "$R" sysctl -qw net.ipv4.ip_forward=0; inns "$A" ip route del 10.53.1.0/24 || true; }
    sleep 1; return 0
  fi
  grep -E "Using DNS type|downstream|Setting downstream|fragment size|Switching|raw|lazy" "$W/logs/iodine-$name.log" | sed "s/^/  iodine: /" >&2 || true
  IOD_INFO=$(sed -n -e 's/.*Switching upstream to codec \([A-Za-z0-9]*\).*/upstream \1/p' \
    -e 's/.*Switching downstream to codec \([A-Za-z0-9]*\).*/downstream \1/p' \
    -e 's/.*using default (\([A-Za-z0-9]*\)).*/downstream \1/p' \
    -e 's/.*Setting downstream fragment size to max \([0-9]*\).*/fragments up to \1 B/p' \
    -e 's/.*Server switched to lazy mode.*/lazy mode/p' \
    -e 's/.*Sending raw traffic directly to \([0-9.]*\).*/raw UDP to \1/p' "$W/logs/iodine-$name.log" | paste -sd, | sed 's/,/, /g')
  local pings
  pings=$(inns "$C" timeout 20 ping -c 5 -i 0.5 -q "$net.1" | sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\2\/\1/p') || true
  log "  ping over the tunnel: ${pings:-failed} answered"
  spawn x "$A" "xfer-$name-srv" timeout 150 "$PY" "$lib/xfer.py" serve "$net.1" 8080 "$down" "$up"
  wait_log "xfer-$name-srv" "listening" 10 "$x"
  run inns "$C" timeout 150 "$PY" "$lib/xfer.py" fetch "$net.1" 8080 "$up" "$down" >"$W/logs/xfer-$name-cli.log" 2>&1 \
    || log "$name: transfer did not finish"
  sleep 1
  check_xfer "$name"
  XFER_INFO="ping ${pings:-failed} answered, $XFER_DONE"
  stop "$x" "$c"
  capture_stop "$name"
  stop "$d"
  if [[ $mode == rawudp ]]; then
    inns "$R" sysctl -qw net.ipv4.ip_forward=0
    inns "$A" ip route del 10.53.1.0/24 || true
  fi
  sleep 1   # let the tun devices go
}

# --- dns2tcp ---------------------------------------------------------------------------------
# dns2tcp_capture NAME QTYPE DOMAIN SERVER_IP BYTES_EACH_WAY RATE (bytes/s: an interactive-ish
# session; unpaced, 60 KB cross the LAN-fast namespaces in under 0.1 s)
# [compress]: dns2tcpc -c ("enable DNS compression": a flag in the session request; dns2tcp 0.5.2
# links no zlib and the payload still travels as base64 of the plain bytes), with text payload
dns2tcp_capture() {
  local name=$1 qtype=$2 domain=$3 sip=$4 bytes=$5 rate=$6 comp=${7:-} d c x
  want "$name" || return 0
  XFER_INFO=""
  local copt=() payload=random
  [[ $comp == compress ]] && { copt=(-c); payload=text; }
  log "$name: dns2tcp -T $qtype ${copt[*]} via $RESOLVER for $domain"
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
  spawn x "$A" "xfer-$name-srv" env XFER_PAYLOAD=$payload timeout 200 "$PY" "$lib/xfer.py" serve 127.0.0.1 7000 "$bytes" "$bytes" "$rate"
  wait_log "xfer-$name-srv" "listening" 10 "$x"
  spawn d "$A" "dns2tcpd-$name" timeout 240 dns2tcpd -F -d 1 -f "$W/$name-dns2tcpd.conf"
  sleep 1
  kill -0 "$d" 2>/dev/null || die "dns2tcpd did not start: $(cat "$W/logs/dns2tcpd-$name.log")"
  capture_start "$name"
  spawn c "$C" "dns2tcpc-$name" timeout 240 dns2tcpc "${copt[@]}" -z "$domain" -k dnsentrykey -r files -l 2222 -T "$qtype" "$RESOLVER"
  for _ in $(seq 100); do inns "$C" ss -Hlnt 'sport = :2222' | grep -q . && break; sleep 0.1; done
  run inns "$C" env XFER_PAYLOAD=$payload timeout 200 "$PY" "$lib/xfer.py" fetch 127.0.0.1 2222 "$bytes" "$bytes" "$rate" >"$W/logs/xfer-$name-cli.log" 2>&1 \
    || log "$name: transfer did not finish"
  sleep 1
  check_xfer "$name"
  XFER_INFO="one TCP session, $XFER_DONE at ~$((rate / 1000)) KB/s, $payload payload"
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

# --- the evaluation set (PCAPS_EVAL=1) ----------------------------------------------------------
benign_nat_capture() {
  want benign-nat-wildcard || return 0
  "$PY" "$lib/world.py" plan-nat "$W/plan-nat.tsv" >/dev/null
  log "benign-nat-wildcard: $(wc -l <"$W/plan-nat.tsv") planned queries from $(cut -f2 "$W/plan-nat.tsv" | sort -u | wc -l) clients through unbound"
  restart_resolver yes
  capture_start benign-nat-wildcard
  run inns "$C" timeout 200 "$PY" "$lib/run-plan.py" "$W/plan-nat.tsv" "$RESOLVER" >&2
  sleep 1
  capture_stop benign-nat-wildcard
}
ROWS=$W/labels.rows
: >"$ROWS"
# label FILE CLASS TOOL VARIANT DOMAIN HOW NOTES: one LABELS.tsv row; attack_start is the capture time of
# the first packet for DOMAIN (HOW=domain) or of the first non-DNS packet on port 53 (HOW=nondns)
label() {
  local file=$1 class=$2 tool=$3 variant=$4 domain=$5 how=$6 notes=$7 ts=""
  if [[ $how == nondns ]]; then
    ts=$("$PY" "$lib/first-seen.py" "$out/$file" nondns) || true
  else
    ts=$("$PY" "$lib/first-seen.py" "$out/$file" domain "$domain") || true
  fi
  ts=${ts%% *}
  if [[ -z $ts ]]; then log "$file: no attack packet found"; FAILS=$((FAILS + 1)); ts=-; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$file" "$class" "$tool" "$variant" "$domain" "$ts" "$notes" >>"$ROWS"
}
QN='both resolver links; unbound with qname-minimisation off'
# ev_iodine NAME QTYPE DOWNENC REGISTERED_DOMAIN SERVER_IP TUN_NET DOWN UP MODE VARIANT
ev_iodine() {
  want "$1" || return 0
  iodine_capture "$1" "$2" "$3" "t.$4" "$5" "$6" "$7" "$8" "$9"
  if [[ $9 == rawudp ]]; then
    label "$1.pcap" nondns iodine "${10}; ${IOD_INFO:-did not connect}" "$4" nondns \
      "tunnel zone t.$4; handshake through the resolver, then raw UDP/53 between 10.53.1.10 and iodined $5 (routed through the resolver's namespace, so each raw packet appears on both links); $XFER_INFO; $QN"
  else
    label "$1.pcap" tunnel iodine "${10}; ${IOD_INFO:-did not connect}" "$4" domain "tunnel zone t.$4; $XFER_INFO; $QN"
  fi
}
ev_dns2tcp() {  # NAME QTYPE REGISTERED_DOMAIN SERVER_IP BYTES RATE compress VARIANT
  want "$1" || return 0
  dns2tcp_capture "$1" "$2" "t.$3" "$4" "$5" "$6" "$7"
  label "$1.pcap" tunnel dns2tcp "$8" "$3" domain "tunnel zone t.$3; $XFER_INFO; $QN"
}
eval_set() {
  # iodine, each record type and each downstream encoding (forced with -O) at least once
  ev_iodine iodine-null NULL "" iod-null.test 10.53.2.60 10.77.1 40000 10000 "" "NULL (-T NULL): downstream raw binary (NULL's own; -O does not apply)"
  ev_iodine iodine-private PRIVATE "" iod-private.test 10.53.2.61 10.77.2 40000 10000 "" "PRIVATE (-T PRIVATE, type 65399): downstream raw binary like NULL"
  ev_iodine iodine-txt-raw TXT raw iod-txtraw.test 10.53.2.62 10.77.3 40000 10000 "" "TXT (-T TXT -O raw)"
  ev_iodine iodine-srv-base64 SRV base64 iod-srv.test 10.53.2.63 10.77.4 16000 6000 "" "SRV (-T SRV -O base64)"
  ev_iodine iodine-mx-base32 MX base32 iod-mx.test 10.53.2.64 10.77.5 16000 6000 "" "MX (-T MX -O base32)"
  ev_iodine iodine-cname-base128 CNAME base128 iod-cname.test 10.53.2.65 10.77.6 16000 6000 "" "CNAME (-T CNAME -O base128)"
  ev_iodine iodine-a A "" iod-a.test 10.53.2.66 10.77.7 16000 6000 "" "A (-T A, downstream encoding autodetected)"
  # iodine without -r: raw UDP mode once iodined is directly reachable
  ev_iodine iodine-rawudp NULL "" iod-raw.test 10.53.2.67 10.77.8 30000 8000 rawudp "raw UDP mode (no -r; -T NULL for the handshake)"
  # dns2tcp: without compression = the main set's captures (same tool, same options); with -c here
  if want dns2tcp-txt && [[ -s $out/../dns2tcp-txt.pcap ]]; then
    label ../dns2tcp-txt.pcap tunnel dns2tcp "TXT (-T TXT), no compression, key auth" dns2tcp-lab.test domain \
      "the main set's capture (pcaps/dns2tcp-txt.pcap), referenced, not copied; tunnel zone t.dns2tcp-lab.test; $QN"
  fi
  if want dns2tcp-key && [[ -s $out/../dns2tcp-key.pcap ]]; then
    label ../dns2tcp-key.pcap tunnel dns2tcp "KEY (-T KEY), no compression, key auth" dns2tcp-key.test domain \
      "the main set's capture (pcaps/dns2tcp-key.pcap), referenced, not copied; tunnel zone t.dns2tcp-key.test; $QN"
  fi
  ev_dns2tcp dns2tcp-txt-compress TXT d2t-txtc.test 10.53.2.68 12000 4000 compress "TXT (-T TXT -c: DNS compression flag), key auth, text payload"
  ev_dns2tcp dns2tcp-key-compress KEY d2t-keyc.test 10.53.2.69 12000 4000 compress "KEY (-T KEY -c: DNS compression flag), key auth, text payload"
  # benign
  if want benign && [[ -s $out/../benign.pcap ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' ../benign.pcap benign none "8 clients, ~1200 queries in 70 s, qname minimisation on" - - \
      "the main set's capture, referenced, not copied; AV reputation, DNSBL, DKIM/SPF/DMARC, ACME, CAA, PTR sweep, _ta- telemetry, wildcard, CDNs, busy NAT client, a forwarder as querier" >>"$ROWS"
  fi
  benign_nat_capture
  if want benign-nat-wildcard; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' benign-nat-wildcard.pcap benign none \
      "$(wc -l <"$W/plan-nat.tsv") queries in 90 s: two busy NAT gateways (10.53.1.30 ~5 q/s, 10.53.1.60 ~3 q/s), random 32-hex wildcard labels, 3 workstations; qname minimisation on" - - \
      "both resolver links; world.py plan-nat (fixed seed): distinct ordinary names, CDN chains, *.safeframe.googlesyndication.com wildcard answers, a few NXDOMAIN typos" >>"$ROWS"
  fi
  # scripted imitations (written directly, synthetic timestamps from 1781000000)
  local names=() n
  for n in dnscat2-txt-cname-mx dnscat2-prefix ozymandns dnsexfiltrator-base32 dnsexfiltrator-base64url \
           cobaltstrike-a cobaltstrike-aaaa cobaltstrike-txt slow-hex-1Bps slow-b32-1Bps slow-hex-0.25Bps beacon-60s \
           nondns-udp53-tls nondns-tcp53-ssh; do
    want "$n" && names+=("$n")
  done
  if ((${#names[@]})); then
    log "scripted imitations: ${names[*]}"
    "$PY" "$lib/imitate.py" "$out" "${names[@]}" >>"$ROWS"
  fi
}

start=$SECONDS
if [[ -n $EVAL ]]; then
  eval_set
  if [[ -z $only ]]; then
    { printf 'file\tclass\ttool\tvariant\tdomain\tattack_start\tnotes\n'; cat "$ROWS"; } >"$out/LABELS.tsv"
  else
    log "subset run: LABELS.tsv not rewritten; rows:"; cat "$ROWS" >&2
  fi
  log "done in $((SECONDS - start)) s; $(ls "$out"/*.pcap | wc -l) captures, $(du -cb "$out"/*.pcap | tail -1 | cut -f1) bytes in $out"
  ls -l "$out" >&2
  if ((FAILS)); then log "$FAILS failure(s): see above"; exit 1; fi
  exit 0
fi
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
