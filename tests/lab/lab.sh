#!/bin/bash
# The nested lab's entry point.
#
#   tests/lab/lab.sh setup                 install packages (root, apt)
#   tests/lab/lab.sh build                 build/refresh L1 and guest.img
#   tests/lab/lab.sh run [opts] SCRIPT [ARGS...]
#       --results DIR   where results go (default: ./lab-results/<time>)
#       --timeout S     wall-clock limit for the whole L1 run (default 1500)
#
# "run" builds what is missing (cached), boots L1 (QEMU TCG, nested KVM,
# intel-iommu, igb SR-IOV NIC) with this
# machine's root filesystem as its userland and runs SCRIPT with bash inside
# L1. L1's console is streamed with the prefix "[L1] " and saved to
# DIR/l1-console.log. Inside L1, $LAB_RESULTS is DIR (a read-write 9p share):
# whatever the script writes there is here afterwards. Environment variables
# named LAB_* and MINIVMM_* are passed into L1. The exit status is the
# script's; 124 on timeout, 125 when L1 failed before the script ran.
# QEMU is always killed on exit, on a signal or on timeout.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
RECIPES="$SRCDIR/guest-images/lab"
# shellcheck source=guest-images/lab/common.sh
. "$RECIPES/common.sh"
export MINIVMM_LAB_CACHE=$LAB_CACHE
QEMU=${LAB_QEMU:-qemu-system-x86_64}
qpid="" tpid=""

say() { echo "lab: $*" >&2; }

# lab_check_host: exit 77 (skip) with a reason when this host cannot run L1
check_host() {
	local v
	if ! command -v "$QEMU" >/dev/null 2>&1; then
		say "SKIP: $QEMU not installed (run: sudo $RECIPES/setup-host.sh)"
		exit 77
	fi
	v=$("$QEMU" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
	if [ "${v:-0}" -lt 10 ]; then
		say "SKIP: $QEMU is version $v; the lab needs >= 10 for igb (run: sudo $RECIPES/setup-host.sh)"
		exit 77
	fi
	for t in busybox mke2fs cpio depmod modprobe iperf3 ip; do
		command -v $t >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v $t >/dev/null 2>&1 || {
			say "SKIP: $t missing (run: sudo $RECIPES/setup-host.sh)"
			exit 77
		}
	done
}

do_build() {
	"$RECIPES/build-l1.sh" >/dev/null || return 1
	"$RECIPES/build-guest.sh" >/dev/null || return 1
}

do_run() {
	local results="" timeout=1500
	while [ $# -gt 0 ]; do
		case "$1" in
		--results) results=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--) shift; break ;;
		-*) say "unknown option $1"; exit 2 ;;
		*) break ;;
		esac
	done
	[ $# -ge 1 ] || { say "usage: lab.sh run [--results DIR] [--timeout S] SCRIPT [ARGS...]"; exit 2; }
	local script
	script=$(realpath "$1") || exit 2
	shift
	[ -f "$script" ] || { say "no such script: $script"; exit 2; }
	check_host
	do_build || { say "building the lab images failed"; exit 125; }
	local l1="$MINIVMM_LAB_CACHE/l1"

	[ -n "$results" ] || results="$PWD/lab-results/$(date +%Y%m%d-%H%M%S)"
	mkdir -p "$results" || exit 2
	results=$(realpath "$results")
	case "$results" in
	/run/*|/proc/*|/sys/*|/dev/*) say "results dir cannot be under /run, /proc, /sys, /dev"; exit 2 ;;
	esac
	local meta="$results/.lab"
	# a run starts from clean results: results.txt is appended to by the script
	rm -rf "$meta" "$results/l1-console.log" "$results/results.txt"
	mkdir -p "$meta"
	cp "$HERE/l1-run.sh" "$HERE/l1-lib.sh" "$meta/"
	# the script's arguments, NUL-separated
	: > "$meta/args"
	local a
	for a in "$@"; do printf '%s\0' "$a" >> "$meta/args"; done
	echo "$script" > "$meta/script"
	{
		local v
		for v in $(compgen -e | grep -E '^(LAB|MINIVMM)_' || true); do
			printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'export LAB_SRCDIR=%q\n' "$SRCDIR"
		printf 'export LAB_HOST_RESULTS=%q\n' "$results"
	} > "$meta/env.sh"

	local console="$results/l1-console.log"
	: > "$console"
	local t0 t1 rc
	qpid="" tpid=""
	cleanup() {
		[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && sleep 1 && kill -9 "$qpid" 2>/dev/null
		[ -n "$tpid" ] && kill "$tpid" 2>/dev/null
		qpid=""; tpid=""
	}
	trap 'cleanup; exit 130' INT
	trap 'cleanup; exit 143' TERM HUP
	trap 'cleanup' EXIT

	say "L1: kernel $(cat "$l1/kver"), results in $results, timeout ${timeout}s"
	t0=$(date +%s.%N)
	timeout -k 10 "$timeout" "$QEMU" \
		-accel tcg,thread=${LAB_TCG_THREAD:-multi} -machine q35 -cpu max -smp 2 -m 2G \
		-global q35-pcihost.pci-hole64-size=0 \
		-device intel-iommu,intremap=on,caching-mode=on \
		-netdev user,id=n0 -device igb,netdev=n0,mac=52:54:00:1a:00:01 \
		-kernel "$l1/vmlinuz" -initrd "$l1/initramfs.cpio.gz" \
		-append "console=ttyS0 intel_iommu=on panic=-1 ${LAB_L1_APPEND:-quiet loglevel=3}" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$results",mount_tag=lab,security_model=none,multidevs=remap \
		-display none -monitor none -serial file:"$console" -no-reboot \
		</dev/null >"$meta/qemu.log" 2>&1 &
	qpid=$!
	( tail -n +1 -F --pid="$qpid" "$console" 2>/dev/null | sed -u 's/^/[L1] /' ) &
	tpid=$!
	wait "$qpid"
	rc=$?
	qpid=""
	t1=$(date +%s.%N)
	wait "$tpid" 2>/dev/null
	tpid=""
	if [ -s "$meta/qemu.log" ]; then
		sed 's/^/[qemu] /' "$meta/qemu.log" >&2
	fi
	local secs
	secs=$(echo "$t1 - $t0" | bc 2>/dev/null || python3 -c "print(round($t1-$t0,1))")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		say "TIMEOUT after ${timeout}s"
		return 124
	fi
	if [ -f "$meta/rc" ]; then
		rc=$(cat "$meta/rc")
		say "L1 finished in ${secs}s; script exit status $rc"
		return "$rc"
	fi
	say "L1 ended (qemu status $rc) after ${secs}s without the script's status"
	return 125
}

cmd=${1:-}
shift || true
case "$cmd" in
setup) exec "$RECIPES/setup-host.sh" "$@" ;;
build) check_host; do_build ;;
run) do_run "$@" ;;
*) sed -n '2,/^[^#]/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
