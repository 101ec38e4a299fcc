#!/usr/bin/env bash
# Installs, checks, removes and purges the Debian package in a throwaway root, then runs lintian.
#
#   scripts/test-package.sh target/debian/dnsentry_VERSION_amd64.deb
#
# The throwaway root is an overlay of this machine's own root (so dpkg sees the installed packages
# the .deb depends on) whose writable layer is a tmpfs, mounted in a private mount namespace:
# everything dpkg and the maintainer scripts write (the user in /etc/passwd, /var/log/dnsentry,
# dpkg's database) lands in that tmpfs and disappears with the namespace, even when a check fails.
# Needs root (CI runs as root). Prints "package: ok" or the failed check, exit status 1.
set -euo pipefail

deb=$(realpath "$1")
[[ -f $deb ]] || { echo "package: no such file $deb" >&2; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  if [[ ${CI:-} == true ]]; then echo "package: needs root (CI runs as root)" >&2; exit 1; fi
  echo "package: skipped (needs root for the throwaway root)" >&2
  exit 0
fi

if [[ ${1:-} != --inside && -z ${DNSENTRY_PKG_NS:-} ]]; then
  # Re-run in a private mount namespace: every mount below vanishes with it.
  exec env DNSENTRY_PKG_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

work=$(mktemp -d /tmp/dnsentry-pkg.XXXXXX)
trap 'umount -R "$work/root" 2>/dev/null || true; umount "$work/rw" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/rw" "$work/root"
mount -t tmpfs -o size=1g tmpfs "$work/rw"
mkdir -p "$work/rw/upper" "$work/rw/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/rw/upper,workdir=$work/rw/work" "$work/root"
mount -t proc proc "$work/root/proc"
mount --rbind /dev "$work/root/dev"
mount -t tmpfs tmpfs "$work/root/run"
mount -t tmpfs tmpfs "$work/root/tmp"
cp "$deb" "$work/root/tmp/dnsentry.deb"

fail() { echo "package: FAILED: $*" >&2; exit 1; }
in_root() { chroot "$work/root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
check() { local what=$1; shift; "$@" >/dev/null 2>&1 || fail "$what"; echo "  ok: $what"; }

# The machine must not already have what the package makes (the test would prove nothing).
in_root getent passwd dnsentry >/dev/null && fail "a dnsentry user already exists on this machine"
in_root dpkg -s dnsentry >/dev/null 2>&1 && fail "dnsentry is already installed on this machine"

echo "package: installing $(basename "$deb") in a throwaway root"
in_root dpkg -i /tmp/dnsentry.deb || fail "dpkg -i"
check "the dnsentry system user and group exist" in_root getent passwd dnsentry
check "the user has no login shell" bash -c "in_root() { chroot '$work/root' \"\$@\"; }; in_root getent passwd dnsentry | grep -q ':/usr/sbin/nologin$'"
check "the dnsentry group exists" in_root getent group dnsentry
for f in /usr/bin/dnsentry /etc/dnsentry/dnsentry.toml /etc/default/dnsentry /etc/logrotate.d/dnsentry \
  /lib/systemd/system/dnsentry.service /usr/share/doc/dnsentry/deploy.md /usr/share/doc/dnsentry/copyright \
  /usr/share/dnsentry/prometheus/alerts.yml /usr/share/dnsentry/grafana/dnsentry.json \
  /usr/share/man/man1/dnsentry.1.gz /usr/share/man/man1/dnsentry-live.1.gz; do
  check "$f installed" test -e "$work/root$f"
done
owner=$(in_root stat -c '%U:%G %a' /var/log/dnsentry)
[[ $owner == "dnsentry:adm 2750" ]] || fail "/var/log/dnsentry is $owner, not dnsentry:adm 2750"
echo "  ok: /var/log/dnsentry is $owner"
check "the binary is stripped" bash -c "! file -L '$work/root/usr/bin/dnsentry' | grep -q 'not stripped'"
check "dnsentry check-config /etc/dnsentry/dnsentry.toml" in_root dnsentry check-config /etc/dnsentry/dnsentry.toml
out=$(in_root systemd-analyze verify /lib/systemd/system/dnsentry.service 2>&1) || fail "systemd-analyze verify: $out"
if grep -q dnsentry <<<"$out"; then fail "systemd-analyze verify warns: $out"; fi
echo "  ok: systemd-analyze verify dnsentry.service"
check "the service is not enabled by the install (IFACE is not set yet)" \
  test ! -e "$work/root/etc/systemd/system/multi-user.target.wants/dnsentry.service"
check "logrotate accepts the shipped config" in_root logrotate -d -s /tmp/logrotate.state /etc/logrotate.d/dnsentry
# The alarm directory can be written by the user the sensor drops to.
check "the dnsentry user can write /var/log/dnsentry" in_root setpriv --reuid dnsentry --regid dnsentry --clear-groups \
  sh -c 'echo {} > /var/log/dnsentry/alarms.jsonl'

echo "package: dpkg -r keeps the configuration"
in_root dpkg -r dnsentry >/dev/null || fail "dpkg -r"
check "the binary is removed" test ! -e "$work/root/usr/bin/dnsentry"
check "the unit is removed" test ! -e "$work/root/lib/systemd/system/dnsentry.service"
for f in /etc/dnsentry/dnsentry.toml /etc/default/dnsentry /etc/logrotate.d/dnsentry; do
  check "$f kept" test -e "$work/root$f"
done
check "the logs are kept" test -e "$work/root/var/log/dnsentry/alarms.jsonl"

echo "package: dpkg --purge removes everything the package made"
in_root dpkg --purge dnsentry >/dev/null || fail "dpkg --purge"
check "no dnsentry user" bash -c "! chroot '$work/root' getent passwd dnsentry"
check "no dnsentry group" bash -c "! chroot '$work/root' getent group dnsentry"
# Whatever is left in the writable layer is dpkg's own bookkeeping, nothing of the package.
left=$(cd "$work/rw/upper" && find . -path ./var/lib/dpkg -prune -o -path ./var/log -prune -o \
  -path ./var/cache -prune -o -name '*dnsentry*' -print)
left+=$(cd "$work/rw/upper" && find ./var/log -name '*dnsentry*' 2>/dev/null || true)
[[ -z $left ]] || fail "left after purge: $left"
echo "  ok: nothing of the package is left"
status=$(in_root dpkg-query -W -f='${db:Status-Abbrev}' dnsentry 2>/dev/null || true)
[[ -z ${status// /} || $status == "un "* || $status == "pn "* ]] || fail "dpkg still knows dnsentry: '$status'"
echo "  ok: dpkg lists no dnsentry"

echo "package: lintian"
# A warning is kept only when packaging/README.md explains it (its table of kept warnings: lines
# "| `tag` | why |"); an error fails the test.
readme="$(dirname "$0")/../packaging/README.md"
mapfile -t kept < <(sed -n 's/^| `\([a-z0-9-]*\)` |.*/\1/p' "$readme")
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -E '^[EWIPXO]:' || true)
echo "$lint" | sed 's/^/  /'
if grep -q '^E:' <<<"$lint"; then fail "lintian errors"; fi
while read -r level _pkg tag _rest; do
  [[ $level == W: ]] || continue
  printf '%s\n' "${kept[@]}" | grep -qx "$tag" || fail "lintian warning $tag is not explained in packaging/README.md"
done <<<"$lint"
echo "  ok: no lintian error; warnings kept: ${kept[*]:-none}"
echo "package: ok"
