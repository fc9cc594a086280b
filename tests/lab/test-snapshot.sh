#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-snapshot): a
# snapshot of the stock Linux guest with virtio-blk and virtio-net, and its
# restore (docs/migration.md, docs/lab.md "The snapshot test").
#
# The guest (lab.cmd=tick-test) ticks once a second; each tick reads
# /bin/busybox from the disk with the page cache dropped (virtio-blk) and
# pings L1 over virtio-net (tap0, 10.0.5.2 <-> 10.0.5.1). After tick 6, L1
# runs `ctl snapshot FILE` (the guest goes on ticking), then `ctl quit`.
# `minivmm --restore FILE` with the same options must then:
#  - go on from the tick after the last one before the snapshot's (never
#    boot again: no kernel messages, no LAB-GUEST-READY),
#  - answer every tick's ping and read the disk with the same checksum,
#  - end with the guest's command status 0 (LAB-GUEST-RC=0) and exit 0.
# A restore with another memory size is refused before any guest runs.
# Measured: the snapshot's size, the time ctl snapshot took, the restore's
# time to the first tick.
# Environment: MINIVMM_BIN (required). Results: results.txt, the consoles.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:50
S=/tmp/lab-snap.sock
F=/tmp/lab-l2.snap
MEM=384
TICKS=30
RES=$LAB_RESULTS/results.txt
: > "$RES"
rc=0
fail() { echo "test-snapshot: FAIL: $*"; rc=1; }
pass() { echo "test-snapshot: ok: $*"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-snapshot: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-snapshot: no /dev/kvm in L1"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_tap_create tap0 > /dev/null || exit 1
ip addr add 10.0.5.1/24 dev tap0

ARGS=(--mem "${MEM}M" --cpus 2 --readonly --net "tap=tap0,mac=$MAC"
	-c "console=ttyS0 root=/dev/vda lab.cmd=tick-test lab.ip=10.0.5.2/24 lab.server=10.0.5.1 lab.ticks=$TICKS" "$img")
CTL_OUT=/tmp/lab-snap-ctl.out
ctl() { "$B" ctl "$@" > "$CTL_OUT" 2>&1; CST=$?; sed 's/^/    | /' "$CTL_OUT"; }

snapped=0 last_before=""
drive() {
	[ $snapped = 0 ] && grep -q '^LAB-TICK 6 ' "$LAB_GUEST_LOG" || return 0
	snapped=1
	local t0 t1
	# the last tick the guest printed before it was paused for the snapshot
	last_before=$(grep -Eo '^LAB-TICK [0-9]+' "$LAB_GUEST_LOG" | tail -n1 | cut -d' ' -f2)
	t0=$(lab_now)
	ctl "$S" snapshot "$F"
	t1=$(lab_now)
	[ $CST = 0 ] && pass "ctl snapshot" || fail "ctl snapshot (exit $CST)"
	lab_result snap_bytes "$(stat -c %s "$F" 2>/dev/null)"
	lab_result snap_ctl_s "$(lab_elapsed "$t0" "$t1")"
	lab_result snap_line "\"$(head -n1 "$CTL_OUT")\""
	sleep 3 # it runs on
	ctl "$S" quit
	[ $CST = 0 ] || fail "ctl quit (exit $CST)"
}

LOG1=$LAB_RESULTS/l2-snap-before.log
# an environmental failure (docs/lab.md, "Guest runs") before the snapshot
# runs the guest again (snap_env_retries); after it, never
not_snapped() { [ $snapped = 0 ]; }
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK=drive LAB_GUEST_RERUN_IF=not_snapped
lab_guest_try snap minivmm "$LOG1" "$B" -v --api "$S" "${ARGS[@]}"
verdict=$LAB_GUEST_VERDICT
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK="" LAB_GUEST_RERUN_IF=""
[ $snapped = 1 ] || fail "the guest never reached tick 6: $verdict"
[ "$LAB_GUEST_RC" = 0 ] && [ -z "$LAB_GUEST_STOP" ] && pass "minivmm exited 0 after quit" ||
	fail "minivmm exit status $LAB_GUEST_RC${LAB_GUEST_STOP:+ ($LAB_GUEST_STOP)}"
crash=$(lab_crash_line "$LOG1")
[ -z "$crash" ] || fail "a crash or sanitizer report: $crash"
disk_before=$(tr -d '\r' < "$LOG1" | sed -n 's/^LAB-TICK [0-9]* ping=[a-z]* disk=\([0-9a-f]\{12\}\) .*/\1/p' | head -n1)
lab_result snap_last_tick_before "${last_before:-none}"

# --- the restore ------------------------------------------------------------------
if [ $snapped = 1 ] && [ -s "$F" ]; then
	LOG2=$LAB_RESULTS/l2-snap-restored.log
	t0=$(lab_now)
	t_first=""
	first_tick() { [ -z "$t_first" ] && grep -q '^LAB-TICK' "$LAB_GUEST_LOG" && t_first=$(lab_now); return 0; }
	LAB_GUEST_HOOK=first_tick
	LAB_L2_TIMEOUT=200 lab_guest_run restored "$LOG2" "$B" -v --api "$S" --restore "$F" "${ARGS[@]}"
	LAB_GUEST_HOOK=""
	[ -n "$t_first" ] && lab_result snap_restore_to_first_tick_s "$(lab_elapsed "$t0" "$t_first")"
	ticks=$(tr -d '\r' < "$LOG2" | grep -E '^LAB-TICK [0-9]+ ')
	first=$(echo "$ticks" | head -n1 | cut -d' ' -f2)
	n=$(echo "$ticks" | grep -c . || true)
	lab_result snap_first_tick_after "${first:-none}"
	lab_result snap_ticks_after "$n"
	[ -n "$first" ] && [ -n "$last_before" ] && [ "$first" -gt "$last_before" ] && [ "$first" -le $((last_before + 2)) ] &&
		pass "the restored guest went on at tick $first (the snapshot was taken after tick $last_before)" ||
		fail "the restored guest's first tick is ${first:-none}, the snapshot came after tick ${last_before:-none}"
	grep -q 'LAB-GUEST-READY\|Linux version' "$LOG2" && fail "the restored guest booted again"
	lost=$(echo "$ticks" | grep -c 'ping=lost' || true)
	badsum=$(echo "$ticks" | grep -vc "disk=$disk_before " || true)
	lab_result snap_pings_lost_after "$lost"
	[ "$n" -ge 5 ] && [ "$lost" = 0 ] && pass "every one of $n ticks after the restore got its ping answered (virtio-net)" ||
		fail "$n ticks after the restore, $lost pings lost"
	[ -n "$disk_before" ] && [ "$badsum" = 0 ] && pass "every tick read the disk with the same checksum (virtio-blk)" ||
		fail "disk checksums after the restore differ from $disk_before ($badsum ticks)"
	grep -q 'LAB-GUEST-RC=0' "$LOG2" && [ "$LAB_GUEST_RC" = 0 ] && pass "the restored guest finished its command (rc 0) and minivmm exited 0" ||
		fail "the restored run: exit $LAB_GUEST_RC, $(grep -m1 'LAB-GUEST-RC' "$LOG2")"
	crash=$(lab_crash_line "$LOG2")
	[ -z "$crash" ] || fail "a crash or sanitizer report after the restore: $crash"

	# another memory size: refused, nothing runs
	LOG3=$LAB_RESULTS/l2-snap-refused.log
	"$B" --api "$S" --restore "$F" --mem 256M --cpus 2 --readonly --net "tap=tap0,mac=$MAC" "$img" > "$LOG3" 2>&1
	st=$?
	[ $st != 0 ] && grep -q 'the saved VM had more memory\|the saved VM has 384 MiB of memory' "$LOG3" &&
		pass "a restore with --mem 256M is refused ($(grep -m1 'refused' "$LOG3" | cut -c1-120))" ||
		fail "a restore with --mem 256M: exit $st: $(tail -n2 "$LOG3")"
fi

[ $rc = 0 ] && echo "test-snapshot: PASS" || echo "test-snapshot: FAILED"
exit $rc
