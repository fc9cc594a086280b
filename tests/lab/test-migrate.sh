#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-migrate): the stock
# Linux guest moves between two minivmm processes in L1 (a source and a
# destination started with --incoming; docs/migration.md, docs/lab.md "The
# migration test"). Pre-copy: RAM crosses while the guest runs (its disk
# reads and received packets land in pages minivmm must send again), then
# the guest pauses for what is left and the devices' state.
#
# br0 (10.0.5.1) bridges tap0 (the source's NIC) and tap1 (the
# destination's: host resources may differ). The guest (lab.cmd=tick-test)
# ticks once a second, reading its disk and pinging L1.
#  1. A destination with --mem 256M refuses the 384 MiB guest: `ctl migrate`
#     exits 1 with the destination's reason, and the guest ticks on at the
#     source (rolled back).
#  2. A destination with the same options: `ctl migrate tcp:127.0.0.1:4444`
#     exits 0; the source exits 0 ("migrated"); the guest goes on ticking on
#     the destination from the next tick, pings answered (at most one lost
#     while br0 learns the new port), the disk read with the same checksum,
#     and its command ends with status 0; its virtio-net driver acknowledges
#     GUEST_ANNOUNCE (it announced itself from the destination).
# Measured: the stream's size, the total time and the time the guest was
# paused (ctl's figures), the ticks' gap in guest uptime across the move.
# Environment: MINIVMM_BIN (required).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:60
S=/tmp/lab-mig-src.sock
SD=/tmp/lab-mig-dst.sock
URI=tcp:127.0.0.1:4444
MEM=384
RES=$LAB_RESULTS/results.txt
: > "$RES"
rc=0
fail() { echo "test-migrate: FAIL: $*"; rc=1; }
pass() { echo "test-migrate: ok: $*"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-migrate: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-migrate: no /dev/kvm in L1"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_bridge_create br0 10.0.5.1/24 > /dev/null || exit 1
lab_tap_create tap0 br0 > /dev/null || exit 1
lab_tap_create tap1 br0 > /dev/null || exit 1
ip link set lo up

CMDLINE="console=ttyS0 root=/dev/vda lab.cmd=tick-test lab.ip=10.0.5.2/24 lab.server=10.0.5.1 lab.ticks=40"
CTL_OUT=/tmp/lab-mig-ctl.out
ctl() { "$B" ctl "$@" > "$CTL_OUT" 2>&1; CST=$?; sed 's/^/    | /' "$CTL_OUT"; }
# the destinations' consoles on L1's tmpfs while they run (as lab_guest_run
# does), copied to the results at the end
mkdir -p /tmp/lab-l2
DST_LOG=/tmp/lab-l2/mig-destination.log
REF_LOG=/tmp/lab-l2/mig-refusing.log
ticks_of() { lab_ticks_of "$@"; }

# a destination, in the background; its pid in dst_pid
start_dst() { # LOG TAP MEM_MIB
	"$B" -v --api "$SD" --incoming "$URI" --mem "${3}M" --cpus 2 --readonly \
		--net "tap=$2,mac=$MAC" -c "$CMDLINE" "$img" > "$1" 2>&1 < /dev/null &
	dst_pid=$!
	for _ in $(seq 100); do grep -q 'waiting for a migration' "$1" && return 0; sleep 0.1; done
	fail "the destination is not waiting: $(tail -n3 "$1")"
}

phase=0 last_src=""
drive() {
	local at
	[ $phase = 0 ] && grep -q '^LAB-TICK 5 ' "$LAB_GUEST_LOG" || return 0
	phase=1
	# 1. a destination that cannot take it
	start_dst "$REF_LOG" tap1 256
	ctl "$S" migrate "$URI"
	[ $CST = 1 ] && grep -q 'the destination refused the VM: .*256 MiB.*the VM runs on here' "$CTL_OUT" &&
		pass "a destination with --mem 256M refused the VM; ctl says so and exits 1" ||
		fail "a migration to a smaller destination: exit $CST"
	wait "$dst_pid"
	lab_result mig_refusing_destination_exit $?
	grep -q '^LAB-TICK' "$REF_LOG" && fail "the refusing destination ran the guest"
	at=$(ticks_of "$LAB_GUEST_LOG" | tail -n1 | cut -d' ' -f2)
	sleep 3
	[ "$(ticks_of "$LAB_GUEST_LOG" | tail -n1 | cut -d' ' -f2)" -gt "$at" ] &&
		pass "the guest ticks on at the source (rolled back)" || fail "the guest stopped at the source after the refusal"
	# 2. the move
	start_dst "$DST_LOG" tap1 "$MEM"
	last_src=$(ticks_of "$LAB_GUEST_LOG" | tail -n1 | cut -d' ' -f2)
	ctl "$S" migrate "$URI"
	line=$(grep -m1 '^migrated to' "$CTL_OUT")
	[ $CST = 0 ] && pass "ctl migrate: $line" || fail "ctl migrate (exit $CST)"
	lab_result mig_ctl "\"$line\""
	lab_result mig_bytes "$(echo "$line" | sed -n 's/.*: \([0-9]*\) bytes (.*/\1/p')"
	lab_result mig_total_ms "$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms, .*/\1/p')"
	lab_result mig_paused_ms "$(echo "$line" | sed -n 's/.*paused for \([0-9]*\) ms$/\1/p')"
	lab_result mig_precopy "\"$(grep -m1 '^  pre-copy: ' "$CTL_OUT" | sed 's/^  //')\""
	grep -Eq '^  pre-copy: [0-9]+ rounds in' "$CTL_OUT" && pass "pre-copy ran: $(grep -m1 '^  pre-copy: ' "$CTL_OUT")" ||
		fail "ctl's summary has no pre-copy line"
}

SRC_LOG=$LAB_RESULTS/l2-mig-source.log
# an environmental failure (docs/lab.md, "Guest runs") before the migration
# started runs the source again (mig_env_retries); after it, never
not_started() { [ $phase = 0 ]; }
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK=drive LAB_GUEST_RERUN_IF=not_started
lab_guest_try mig minivmm "$SRC_LOG" "$B" -v --api "$S" --mem "${MEM}M" --cpus 2 --readonly \
	--net "tap=tap0,mac=$MAC" -c "$CMDLINE" "$img"
verdict=$LAB_GUEST_VERDICT
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK="" LAB_GUEST_RERUN_IF=""
[ $phase = 1 ] || fail "the guest never reached tick 5: $verdict"
[ "$LAB_GUEST_RC" = 0 ] && grep -q 'migrated (the guest runs on the destination)' "$SRC_LOG" &&
	pass "the source exited 0: migrated" || fail "the source: exit $LAB_GUEST_RC, $(tail -n2 "$SRC_LOG")"
crash=$(lab_crash_line "$SRC_LOG")
[ -z "$crash" ] || fail "the source: $crash"

[ $phase = 1 ] && [ -n "${dst_pid:-}" ] &&
	lab_mig_destination mig "$dst_pid" "$DST_LOG" "$SRC_LOG" "$last_src" 1 "$SD"
[ $phase = 1 ] && { grep -q 'the guest announced itself (GUEST_ANNOUNCE acknowledged)' "$DST_LOG" &&
	pass "the guest announced itself from the destination (GUEST_ANNOUNCE acknowledged)" ||
	fail "the guest never acknowledged GUEST_ANNOUNCE on the destination"; }

cp "$DST_LOG" "$LAB_RESULTS/l2-mig-destination.log" 2>/dev/null
cp "$REF_LOG" "$LAB_RESULTS/l2-mig-refusing.log" 2>/dev/null
[ $rc = 0 ] && echo "test-migrate: PASS" || echo "test-migrate: FAILED"
exit $rc
