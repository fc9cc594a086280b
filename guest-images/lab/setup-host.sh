#!/bin/bash
# Install what the nested lab needs on a Debian 12 (bookworm) host.
# Idempotent: a second run changes nothing and says so.
#
#   guest-images/lab/setup-host.sh [--check]
#
# --check only reports what is missing (exit 1 if anything is).
set -euo pipefail

BACKPORTS_LIST=/etc/apt/sources.list.d/minivmm-lab-backports.list
BACKPORTS_LINE="deb http://deb.debian.org/debian bookworm-backports main"
# qemu-system-x86 must come from bookworm-backports (>= 10: igb with SR-IOV).
QEMU_MIN_MAJOR=10
# sockperf: the bench's latency figures (scripts/bench.sh; copied into guest.img)
PKGS=(busybox-static e2fsprogs cpio kmod iperf3 tcpdump iproute2 python3 procps
      coreutils util-linux pciutils ethtool sockperf)

log() { echo "setup-host: $*"; }

qemu_major() {
	local v
	v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
	echo "${v:-0}"
}

missing_pkgs() {
	local p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
	done
}

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

missing=$(missing_pkgs | tr '\n' ' ')
qmaj=$(qemu_major)
if [ "$check_only" = 1 ]; then
	rc=0
	[ -n "${missing// /}" ] && { log "missing packages: $missing"; rc=1; }
	[ "$qmaj" -lt "$QEMU_MIN_MAJOR" ] && { log "qemu-system-x86_64 major $qmaj < $QEMU_MIN_MAJOR"; rc=1; }
	[ "$rc" = 0 ] && log "all present (qemu $qmaj)"
	exit $rc
fi

[ "$(id -u)" = 0 ] || { log "must run as root (apt-get)"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
added=0

if [ -f "$BACKPORTS_LIST" ] || grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	log "bookworm-backports source already configured"
else
	echo "$BACKPORTS_LINE" > "$BACKPORTS_LIST"
	added=1
	log "added $BACKPORTS_LIST: $BACKPORTS_LINE"
fi

need_update=0
[ -n "${missing// /}" ] && need_update=1
[ "$qmaj" -lt "$QEMU_MIN_MAJOR" ] && need_update=1
# a newly added source, or no package index yet (build-l1.sh resolves
# linux-image-amd64 through apt-cache)
[ "$added" = 1 ] && need_update=1
apt-cache show linux-image-amd64 >/dev/null 2>&1 || need_update=1

if [ "$need_update" = 1 ]; then
	log "apt-get update"
	apt-get update -q >/dev/null
fi

if [ -n "${missing// /}" ]; then
	log "installing: $missing"
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null
else
	log "packages already installed: ${PKGS[*]}"
fi

if [ "$qmaj" -lt "$QEMU_MIN_MAJOR" ]; then
	log "installing qemu-system-x86 from bookworm-backports"
	apt-get install -y -q --no-install-recommends -t bookworm-backports \
		qemu-system-x86 >/dev/null
	qmaj=$(qemu_major)
	[ "$qmaj" -ge "$QEMU_MIN_MAJOR" ] || { log "qemu still at major $qmaj"; exit 1; }
	log "installed $(qemu-system-x86_64 --version | head -n1)"
else
	log "qemu already present: $(qemu-system-x86_64 --version | head -n1)"
fi
devs=$(qemu-system-x86_64 -device help 2>/dev/null)
case "$devs" in *'"igb"'*) ;; *) log "this qemu has no igb device"; exit 1 ;; esac
log "done"
