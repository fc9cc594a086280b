#!/bin/bash
# device-del and device-add through ACPI hot-plug with a tiny guest that
# serves the controller by polling (guest-images/tiny/hotplug.c, serve=):
#  - serve=eject: `ctl device-del net0` returns only after the guest's eject
#    (the guest sees the request, ejects, and then finds the slot empty);
#    net0 is gone from `devices`; `ctl device-add net tap=...` plugs a new
#    NIC that the guest sees arrive (PCIU) with virtio-net's IDs, and a second
#    device-del removes it too; events device-unplug-requested,
#    device-removed and device-added reach a subscriber;
#  - serve=ignore: `ctl device-del net0 --timeout 1` fails after the deadline
#    (exit 1, the reason printed), the guest sees the request withdrawn with
#    the device still answering, `devices` still lists net0, and a device
#    operation is refused while another one is pending;
#  - both: minivmm keeps running, `ctl quit` ends it with status 0.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_HOTPLUG"
[ "$(id -u)" = 0 ] || skip "needs root (network namespace and taps)"

B=$MINIVMM_BIN
S=$WORK/api.sock
NS=minivmm-unplug-$$
ip netns add "$NS" || skip "cannot create a network namespace"
trap 'kill -KILL $vmm 2>/dev/null || true; ip netns del "$NS" 2>/dev/null || true; cleanup_work' EXIT

start() {
	rm -f "$S"
	set +e
	ip netns exec "$NS" "$B" -v --api "$S" --kernel "$TINY_HOTPLUG" --testdev --mem 32M \
		--cmdline "expect=present serve=$1" --net tap=mvhp0 >"$OUT" 2>&1 </dev/null &
	vmm=$!
	set -e
	wait_line "^testdev: hotplug serving eject=" 60
}
stop() {
	ctl "$S" quit
	[ $CST = 0 ] || fail "ctl quit: exit $CST: $(cat "$WORK/ctl.out")"
	set +e
	wait_exit $vmm
	RC=$WRC
	set -e
	[ $RC = 0 ] || fail "minivmm exited $RC after quit: $(tail -5 "$OUT")"
	no_crash
}

# --- a guest that ejects ------------------------------------------------------
start eject
"$B" ctl --json "$S" events >"$WORK/events.out" 2>&1 &
ev=$!
sleep 0.5
ctl "$S" device-del net0
[ $CST = 0 ] && grep -Eq '^net0 removed \(the guest ejected it after [0-9]+ ms; released in [0-9]+ ms\)$' "$WORK/ctl.out" ||
	fail "ctl device-del net0: exit $CST: $(cat "$WORK/ctl.out")"
grep -Eq '^testdev: hotplug eject-request slot=1 id=0x10411af4$' "$OUT" || fail "the guest saw no eject request for slot 1"
wait_line '^testdev: hotplug gone slot=1 id=0xffffffff$' 10
ctl "$S" devices
grep -q '^net0 ' "$WORK/ctl.out" && fail "net0 is still listed after its removal"
ctl "$S" device-add net tap=mvhp1,mac=52:54:00:aa:bb:01
[ $CST = 0 ] && grep -Eq '^net0 plugged at 00:01\.0$' "$WORK/ctl.out" ||
	fail "ctl device-add net: exit $CST: $(cat "$WORK/ctl.out")"
wait_line '^testdev: hotplug inserted slot=1 id=0x10411af4$' 10
ctl "$S" devices
grep -Eq "^net0 +virtio-net +00:01\\.0 +tap=mvhp1,mac=52:54:00:aa:bb:01$VHOST_SFX\$" "$WORK/ctl.out" ||
	fail "devices after device-add: $(cat "$WORK/ctl.out")"
ctl "$S" device-add net tap=mvhp2,id=net0
[ $CST = 1 ] && grep -q "device id 'net0' is taken" "$WORK/ctl.out" ||
	fail "a second net0 was not refused: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" device-add net tap=mvhp2,id=extra
[ $CST = 0 ] && grep -Eq '^extra plugged at 00:02\.0$' "$WORK/ctl.out" || fail "device-add extra: $(cat "$WORK/ctl.out")"
wait_line '^testdev: hotplug inserted slot=2 id=0x10411af4$' 10
ctl "$S" device-del extra
[ $CST = 0 ] || fail "ctl device-del extra: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" device-del net0
[ $CST = 0 ] || fail "ctl device-del net0 (the hot-plugged one): exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" device-del ttyS0
[ $CST = 1 ] && grep -q 'cannot be removed' "$WORK/ctl.out" || fail "device-del ttyS0 was not refused: $(cat "$WORK/ctl.out")"
ctl "$S" device-del
[ $CST = 2 ] || fail "device-del without an id: exit $CST, not 2"
stop
kill $ev 2>/dev/null || true
wait $ev 2>/dev/null || true
for e in device-unplug-requested device-removed device-added; do
	grep -q "\"event\":\"$e\"" "$WORK/events.out" || fail "no $e event: $(cat "$WORK/events.out")"
done
grep -q 'net0: device-del: asked the guest to eject slot 1' "$OUT" || fail "no log line for the request"

# --- a guest that never ejects: the deadline ------------------------------------
start ignore
# a 5 s deadline: the device-add below must come while the device-del is
# pending, and in L1 on a loaded host starting ctl has taken longer than 1 s
(rc=0; "$B" ctl "$S" device-del net0 --timeout 5 >"$WORK/ctl.out" 2>&1 || rc=$?; echo $rc >"$WORK/ctl.rc") &
bg=$!
sleep 0.3
# one operation at a time
ctl2() { CST2=0; "$B" ctl "$@" >"$WORK/ctl2.out" 2>&1 || CST2=$?; }
ctl2 "$S" device-add net tap=mvhp3
[ $CST2 = 1 ] && grep -q 'busy: device-del of net0 is in progress' "$WORK/ctl2.out" ||
	fail "a device-add during a pending device-del: exit $CST2: $(cat "$WORK/ctl2.out")"
wait_exit $bg
CST=$(cat "$WORK/ctl.rc")
[ "$CST" = 1 ] && grep -q 'the guest did not eject net0 within 5000 ms: the device stays' "$WORK/ctl.out" ||
	fail "device-del past its deadline: exit $CST: $(cat "$WORK/ctl.out")"
wait_line '^testdev: hotplug request-withdrawn slot=1 id=0x10411af4$' 10
ctl "$S" devices
grep -Eq '^net0 +virtio-net +00:01\.0 ' "$WORK/ctl.out" || fail "net0 is gone after a timed-out device-del"
ctl "$S" status
grep -qx 'state: running' "$WORK/ctl.out" || fail "status after the deadline: $(cat "$WORK/ctl.out")"
stop
echo PASS
