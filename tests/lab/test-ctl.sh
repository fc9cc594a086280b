#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-ctl): the control
# socket with the stock Linux guest. minivmm boots guest.img with --api and a
# virtio-net NIC with failover=on; once the guest is ready (its init waits
# in a shell, doing nothing), L1 drives it with `minivmm ctl`:
#  - status says running, devices lists net0 with STANDBY negotiated (the
#    guest's virtio_net took VIRTIO_NET_F_STANDBY, so net_failover made a
#    failover master: the guest's console says so);
#  - pause parks the guest (status paused, the vCPU threads use no CPU for
#    2 s), resume lets it run;
#  - garbage, an over-long line and a client that never reads leave the VMM
#    answering;
#  - quit stops the guest and minivmm exits 0.
# Environment: MINIVMM_BIN (required), LAB_L2_TIMEOUT (300), LAB_L2_STALL (150).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:30
S=/tmp/lab-ctl.sock
RES=$LAB_RESULTS/results.txt
: > "$RES"
rc=0
fail() { echo "test-ctl: FAIL: $*"; rc=1; }
pass() { echo "test-ctl: ok: $*"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-ctl: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-ctl: no /dev/kvm in L1"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_tap_create tap0 > /dev/null || exit 1

# ctl ARGS...: `minivmm ctl`, output in $CTL_OUT, status in $CST
CTL_OUT=/tmp/lab-ctl.out
ctl() { "$B" ctl "$@" > "$CTL_OUT" 2>&1; CST=$?; sed 's/^/    | /' "$CTL_OUT"; }
vcpu_ms() { local all other; all=$(lab_thread_cpu_ms "$1"); other=$(lab_thread_cpu_ms "$1" '^vcpu'); echo $((all - other)); }

done_steps=0
# runs once, from lab_guest_run's loop, when the guest is ready
drive() {
	local vmm=$1 a b
	[ $done_steps = 0 ] && [ -n "$LAB_GUEST_T_READY" ] || return 0
	done_steps=1
	echo "test-ctl: the guest is ready: driving it through $S"
	ctl "$S" status
	[ $CST = 0 ] && grep -qx 'state: running' "$CTL_OUT" && pass "ctl status: running" ||
		fail "ctl status (exit $CST)"
	# the driver took STANDBY when it started the device
	ctl --json "$S" devices
	if python3 -c 'import json,sys
d = {x["id"]: x for x in json.load(open(sys.argv[1]))["return"]["devices"]}
sb = d["net0"]["standby"]
assert sb["state"] == "negotiated" and sb["negotiations"] == 1, sb' "$CTL_OUT"; then
		pass "ctl devices: net0 STANDBY negotiated by the guest's virtio_net"
	else
		fail "ctl devices: net0's STANDBY is not negotiated"
	fi
	lab_result ctl_net0_standby "$(python3 -c 'import json,sys; print(json.dumps({x["id"]: x.get("standby") for x in json.load(open(sys.argv[1]))["return"]["devices"]}["net0"]))' "$CTL_OUT" 2>/dev/null)"
	ctl "$S" pause
	[ $CST = 0 ] && pass "ctl pause" || fail "ctl pause (exit $CST)"
	a=$(vcpu_ms "$vmm")
	sleep 2
	b=$(vcpu_ms "$vmm")
	lab_result ctl_paused_vcpu_ms_in_2s $((b - a))
	[ $((b - a)) -le 20 ] && pass "paused: the vCPU threads used $((b - a)) ms in 2 s" ||
		fail "paused, yet the vCPU threads used $((b - a)) ms in 2 s"
	ctl "$S" status
	grep -qx 'state: paused' "$CTL_OUT" && pass "ctl status: paused" || fail "ctl status while paused"
	# hostile clients while paused
	python3 "$LAB_SRCDIR/tests/api_hostile.py" "$S" paused &&
		pass "garbage, a bad request, an unknown command, an over-long line and a non-reader: the VMM answers" ||
		fail "hostile clients"
	ctl "$S" resume
	[ $CST = 0 ] && grep -qx running "$CTL_OUT" && pass "ctl resume" || fail "ctl resume (exit $CST)"
	ctl "$S" status
	grep -qx 'state: running' "$CTL_OUT" && pass "ctl status: running again" || fail "ctl status after resume"
	ctl "$S" quit
	[ $CST = 0 ] && pass "ctl quit" || fail "ctl quit (exit $CST)"
}

LOG=$LAB_RESULTS/l2-ctl-console.log
# a run that died before the steps began with the documented environmental
# signature (an L2 triple fault; docs/lab.md, "Guest runs") runs again,
# loudly and counted (ctl_env_retries), at most twice (3 runs in all);
# nothing else does.
# The guest waits in a shell (no LAB-GUEST-RC): the verdict is only read
# for that signature
no_steps() { [ $done_steps = 0 ]; }
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK=drive LAB_GUEST_RERUN_IF=no_steps
lab_guest_try ctl minivmm "$LOG" "$B" -v --mem 384M --cpus 2 --readonly --api "$S" \
	--net "tap=tap0,mac=$MAC,failover=on" -c "console=ttyS0 root=/dev/vda lab.cmd=shell lab.ip=" "$img"
# shellcheck disable=SC2034 # read by lab_guest_try (l1-lib.sh)
LAB_GUEST_HOOK="" LAB_GUEST_RERUN_IF=""
lab_result ctl_exit "$LAB_GUEST_RC"
[ $done_steps = 1 ] || fail "the guest never got ready (no LAB-GUEST-READY)"
[ "$LAB_GUEST_RC" = 0 ] && [ -z "$LAB_GUEST_STOP" ] && pass "minivmm exited 0 after quit" ||
	fail "minivmm exit status $LAB_GUEST_RC${LAB_GUEST_STOP:+ (stopped by the lab: $LAB_GUEST_STOP)}"
grep -q '^minivmm: quit (control socket)' "$LOG" && pass "minivmm says why it stopped" ||
	fail "no 'quit (control socket)' line"
grep -Eq 'failover master:[a-z0-9]+ registered' "$LOG" && pass "the guest's net_failover made a failover master" ||
	fail "no net_failover master in the guest's console"
grep -Eq 'STANDBY negotiated by the guest' "$LOG" && pass "minivmm logged the negotiation" ||
	fail "minivmm did not log the STANDBY negotiation"
crash=$(lab_crash_line "$LOG")
[ -z "$crash" ] || fail "a crash or sanitizer report in minivmm's output: $crash"
[ ! -e "$S" ] && pass "the socket is removed" || fail "the socket $S is left behind"
[ $rc = 0 ] && echo "test-ctl: PASS" || echo "test-ctl: FAILED"
exit $rc
