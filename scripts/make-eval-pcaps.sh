#!/usr/bin/env bash
# The labelled evaluation captures (pcaps/eval/ and its LABELS.tsv): real iodine (every record type and
# downstream encoding, raw UDP mode), dns2tcp with compression, a second benign capture, and the
# scripted imitations (dnscat2, OzymanDNS, DNSExfiltrator, Cobalt Strike, low-and-slow, beaconing,
# non-DNS on port 53). Run as root:   scripts/make-eval-pcaps.sh [OUTDIR]   (default: pcaps/eval/)
# PCAPS_ONLY="iodine-null slow-hex-1Bps" selects captures. Same as PCAPS_EVAL=1 scripts/make-pcaps.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PCAPS_EVAL=1 exec "$here/make-pcaps.sh" "$@"
