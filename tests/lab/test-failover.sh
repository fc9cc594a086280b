#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-failover): a VF
# and its virtio-net standby (net_failover) with the stock Linux guest, and
# what happens to one long TCP stream while the VF is unplugged and plugged
# back (docs/lab.md, "The failover test").
#
# L1: VF0 on vfio-pci; a bridge br0 = { the PF, tap0 } with 10.0.7.1/24 and
# the PF's MAC, so that the guest reaches L1 the same way over the VF (the
# igb's internal switch to the PF) and over virtio-net (tap0).
#
#  1. minivmm --api --net tap=tap0,mac=M,failover=on --vf VF0,failover=on:
#     minivmm sets VF0's MAC to M through the PF; the VF stays off the bus
#     until the guest's virtio_net negotiated STANDBY, then is plugged and
#     becomes net_failover's primary. One iperf3 stream from the guest to L1
#     (LAB_FO_SECS, 110 s; L1's server reports every 0.1 s) while L1 runs
#     LAB_FO_SWITCHES (3) times: `ctl device-del vf0` (the guest ejects it,
#     traffic moves to virtio-net), then `ctl device-add vf VF0,failover=on`
#     (traffic moves back). The stream must never break (iperf3 exits 0 on
#     both ends); VF0's interrupts (vfio-msix in L1) rise before each unplug
#     and after each plug, tap0's packets rise in between. During one
#     virtio-net phase, garbage and a flood of clients hit the socket and
#     `ctl status` still answers.
#     Measured per switch: unplug request to the device released (minivmm's
#     eject_ms + release_ms; QEMU's DEVICE_DELETED), plug request to the VF carrying traffic (its vfio-msix count
#     rising by LAB_FO_IRQS, 200: the stream, not the
#     driver's few set-up interrupts), and the stream's longest stall around each
#     unplug and each plug (consecutive 0.1 s server intervals with no byte).
#  2. The same guest and stream under QEMU (q35, virtio-net-pci failover=on,
#     vfio-pci failover_pair_id on a pcie-root-port, QMP device_del/device_add
#     waiting for DEVICE_DELETED): the same figures, side by side
#     (LAB_FO_VMMS="minivmm qemu"; QEMU's failures are recorded, not failed).
#  3. A guest without net_failover (the tiny virtionet guest: its driver
#     does not know STANDBY; the stock Linux virtio_net always takes it): the
#     VF is prepared but never put on the guest's bus, the NIC's STANDBY is
#     "declined" (minivmm's log says so and why the VF stays out), and the
#     guest's virtio-net ping/pong works.
#  4. A guest that ignores the eject request (the Linux guest with GPE 1
#     disabled once its primary is up): `ctl device-del vf0 --timeout 3`
#     fails after the deadline, devices still lists vf0 plugged, and the
#     guest's pings over the VF go on answering.
#
# Environment: MINIVMM_BIN (required), LAB_TINY_VIRTIONET (the tiny guest),
# LAB_FO_SECS, LAB_FO_SWITCHES, LAB_FO_VMMS, LAB_FO_IRQS.
# Results: $LAB_RESULTS/results.txt (fo_<vmm>_<k>_{unplug_ms,plug_to_traffic_ms,
# stall_del_ms,stall_add_ms} and per-VMM medians), the consoles, the iperf3
# server logs (fo-server-<vmm>.log, L1 timestamps) and fo-events.txt.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:40
S=/tmp/lab-fo.sock
QMP=/tmp/lab-fo.qmp
SECS=${LAB_FO_SECS:-110}
SWITCHES=${LAB_FO_SWITCHES:-3}
VMMS=${LAB_FO_VMMS:-minivmm qemu}
IRQS=${LAB_FO_IRQS:-200}
MEM=512
GUEST_DIR=$LAB_CACHE/guest
RES=$LAB_RESULTS/results.txt
EV=$LAB_RESULTS/fo-events.txt
: > "$RES"
: > "$EV"
OUT=/tmp/fo-test
mkdir -p "$OUT"
rc=0
fail() { echo "test-failover: FAIL: $*"; rc=1; }
pass() { echo "test-failover: ok: $*"; }
say() { echo "test-failover: $*"; }
# an event of the switching sequence, with L1's clock
mark() { echo "$(lab_now) $*" >> "$EV"; say "mark: $*"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-failover: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-failover: no /dev/kvm in L1"; exit 1; }
pf=$(lab_pf) || exit 1
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_vfs_create "$pf" 2 > /dev/null || exit 1
vf=$(lab_vf_pci "$pf" 0)
lab_vf_bind_vfio "$vf" > /dev/null || exit 1
pfmac=$(cat "/sys/class/net/$pf/address")
lab_tap_create tap0 > /dev/null || exit 1
lab_bridge_create br0 "" "$pf" tap0 > /dev/null || exit 1
ip link set br0 address "$pfmac"
ip addr add 10.0.7.1/24 dev br0
say "PF $pf ($pfmac) and tap0 in br0 10.0.7.1; VF0 $vf on vfio-pci; VMMs: $VMMS"

ctl() { "$B" ctl "$@" > "$OUT/ctl.out" 2>&1; CST=$?; sed 's/^/    | /' "$OUT/ctl.out"; }
vf_irqs() { lab_irq_count "vfio-msix.*$vf"; }
tap_pkts() { echo $(($(cat /sys/class/net/tap0/statistics/rx_packets) + $(cat /sys/class/net/tap0/statistics/tx_packets))); }
jget() { python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>/dev/null; }

# a fresh server for each run of a guest, a rerun's too: the server of a
# guest that died may still listen, or be busy with its vanished client
server_start() {
	lab_iperf3_server "$OUT/server-$1.log" || fail "[$1] L1's iperf3 server did not start"
	driven=0
}
trap 'lab_iperf3_server_stop' EXIT
# before a rerun of the guest of run LABEL (a hook is one command, no
# arguments): a fresh server, and what the failed try reported dropped, as
# lab-migrate-failover does (its run ended in an L2 triple fault)
fo_retry() {
	rc=$rc_run
	server_start "$LABEL"
}

# --- the switching sequence, shared by both VMMs -----------------------------
# unplug VMM / plug VMM: one request through a client that is connected
# before it sends (tests/lab/api_call.py for minivmm, qmp.py for QEMU: the
# client's start-up is not timed). Sets U_RC, U_SENT (L1 time the request
# left), U_MS (request to the device released: minivmm's reply, which comes
# after the eject and the release; QEMU's DEVICE_DELETED), U_EJECT
# (minivmm: request to the guest's eject); P_RC, P_SENT, P_MS (to the reply).
unplug() {
	if [ "$1" = minivmm ]; then
		python3 "$LAB_SRCDIR/tests/lab/api_call.py" "$S" device-del '{"id": "vf0"}' > "$OUT/del.out" 2>&1
	else
		python3 "$LAB_SRCDIR/tests/lab/qmp.py" "$QMP" device_del '{"id": "hostdev0"}' \
			--event DEVICE_DELETED --device hostdev0 --timeout 15 > "$OUT/del.out" 2>&1
	fi
	U_RC=$?
	cat "$OUT/del.out"
	U_SENT=$(sed -n 's/^ok sent=\([0-9.]*\) .*/\1/p' "$OUT/del.out")
	U_MS=$(sed -n 's/^ok sent=[0-9.]* ms=\([0-9]*\).*/\1/p' "$OUT/del.out")
	U_EJECT=NA
	[ "$1" = minivmm ] && U_EJECT=$(sed -n 2p "$OUT/del.out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["return"]["eject_ms"]))' 2>/dev/null)
}
plug() {
	if [ "$1" = minivmm ]; then
		python3 "$LAB_SRCDIR/tests/lab/api_call.py" "$S" device-add \
			"{\"kind\": \"vf\", \"spec\": \"$vf,failover=on,id=vf0\"}" > "$OUT/add.out" 2>&1
	else
		python3 "$LAB_SRCDIR/tests/lab/qmp.py" "$QMP" device_add \
			"{\"driver\": \"vfio-pci\", \"host\": \"$vf\", \"id\": \"hostdev0\", \"bus\": \"rp1\", \"failover_pair_id\": \"net1\"}" \
			> "$OUT/add.out" 2>&1
	fi
	P_RC=$?
	cat "$OUT/add.out"
	P_SENT=$(sed -n 's/^ok sent=\([0-9.]*\) .*/\1/p' "$OUT/add.out")
	P_MS=$(sed -n 's/^ok sent=[0-9.]* ms=\([0-9]*\).*/\1/p' "$OUT/add.out")
}

# wait_vf_traffic SINCE_IRQS T0: ms from T0 until VF0's interrupts rose by
# IRQS (the VF carries the stream), or "NA" after 30 s
wait_vf_traffic() {
	local i n
	for ((i = 0; i < 1500; i++)); do
		n=$(vf_irqs)
		if [ $((n - $1)) -ge "$IRQS" ]; then
			awk -v a="$2" -v b="$(lab_now)" 'BEGIN { printf "%.0f\n", (b - a) * 1000 }'
			return 0
		fi
		sleep 0.02
	done
	echo NA
}

hostile() {
	python3 "$LAB_SRCDIR/tests/api_hostile.py" "$S" running &&
		pass "garbage, bad requests, an over-long line and a non-reader: the VMM answers" ||
		dfail "hostile clients during the stream"
	# a flood: 40 clients at once (16 are served, the rest told busy), each
	# sending garbage as fast as it can for 2 s
	python3 - "$S" <<'PY' || dfail "the flood script failed"
import os, socket, sys, time
socks = []
for _ in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.setblocking(False)
    socks.append(s)
junk = os.urandom(65536).replace(b"\n", b" ")
end = time.monotonic() + 2
while time.monotonic() < end:
    for s in socks:
        try:
            s.send(junk)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
for s in socks:
    s.close()
PY
	ctl "$S" status
	[ $CST = 0 ] && grep -qx 'state: running' "$OUT/ctl.out" && pass "ctl status answers after the flood" ||
		dfail "ctl status after the flood (exit $CST)"
}

# The switches run inside the guest run's hook. A VMM that ends meanwhile (an
# L2 triple fault, which lab_guest_try runs again; or a failure, which its
# verdict fails) ends the switching: what the steps would find then is the
# VMM's end, not the switch's, and is not counted twice.
vmm_gone() { ! kill -0 "$VPID" 2>/dev/null; }
dfail() {
	local i
	# a VMM on its way out (its socket closed first) is given 2 s to be gone
	for ((i = 0; i < 10; i++)); do vmm_gone && break; sleep 0.2; done
	if vmm_gone; then
		say "[$LABEL] the VMM ended during the switches: '$*' not counted (the run's verdict judges it)"
	else
		fail "$*"
	fi
}
drive_cut() { vmm_gone && say "[$LABEL] the VMM ended during the switches: switching stops"; }

driven=0
drive() {
	local k before after t0 ms
	VPID=$1
	[ $driven = 0 ] && grep -q LAB-FO-STREAM-START "$LAB_GUEST_LOG" || return 0
	driven=1
	say "[$LABEL] the stream runs: $SWITCHES switches"
	if [ "$LABEL" = minivmm ]; then
		ctl --json "$S" devices
		python3 -c 'import json,sys
d = {x["id"]: x for x in json.load(open(sys.argv[1]))["return"]["devices"]}
assert d["vf0"]["failover"] == {"standby": "net0", "state": "plugged"}, d["vf0"]
assert d["net0"]["standby"]["state"] == "negotiated", d["net0"]' "$OUT/ctl.out" &&
			pass "devices: vf0 plugged as net0's primary, STANDBY negotiated" ||
			dfail "devices does not show the pair plugged and negotiated"
		ip link show "$pf" | grep -q "vf 0 .*link/ether $MAC" &&
			pass "minivmm set VF0's MAC to the standby NIC's ($MAC) through the PF" ||
			dfail "VF0's MAC is not $MAC: $(ip link show "$pf" | grep 'vf 0')"
	fi
	for ((k = 1; k <= SWITCHES; k++)); do
		before=$(vf_irqs)
		sleep 6
		drive_cut && return 0
		after=$(vf_irqs)
		lab_result "fo_${LABEL}_${k}_vf_irqs_before" $((after - before))
		[ $((after - before)) -ge "$IRQS" ] || dfail "[$LABEL] switch $k: VF0 took $((after - before)) interrupts in 6 s before the unplug: not carrying the stream"
		unplug "$LABEL"
		[ "$U_RC" = 0 ] && [ -n "$U_SENT" ] || { dfail "[$LABEL] switch $k: the unplug failed (status $U_RC)"; U_SENT=$(lab_now); }
		echo "$U_SENT $LABEL $k unplug" >> "$EV"
		mark "$LABEL $k unplugged"
		lab_result "fo_${LABEL}_${k}_unplug_ms" "${U_MS:-NA}"
		lab_result "fo_${LABEL}_${k}_eject_ms" "${U_EJECT:-NA}"
		before=$(tap_pkts)
		[ "$LABEL" = minivmm ] && [ "$k" = 2 ] && hostile
		sleep 6
		drive_cut && return 0
		after=$(tap_pkts)
		lab_result "fo_${LABEL}_${k}_tap_pkts_between" $((after - before))
		[ $((after - before)) -ge 1000 ] || dfail "[$LABEL] switch $k: tap0 passed $((after - before)) packets while the VF was out: the stream did not move to virtio-net"
		before=$(vf_irqs)
		plug "$LABEL"
		[ "$P_RC" = 0 ] && [ -n "$P_SENT" ] || { dfail "[$LABEL] switch $k: the plug failed (status $P_RC)"; P_SENT=$(lab_now); }
		echo "$P_SENT $LABEL $k plug" >> "$EV"
		lab_result "fo_${LABEL}_${k}_plug_reply_ms" "${P_MS:-NA}"
		ms=$(wait_vf_traffic "$before" "$P_SENT")
		drive_cut && return 0
		mark "$LABEL $k vf-traffic"
		lab_result "fo_${LABEL}_${k}_plug_to_traffic_ms" "$ms"
		[ "$ms" != NA ] || dfail "[$LABEL] switch $k: the VF carried no traffic within 30 s of the plug"
	done
	return 0
}

# run LABEL: one guest with the failover pair and the stream
run() {
	local log=$LAB_RESULTS/l2-fo-$1.log cmdline kind=minivmm
	LABEL=$1
	driven=0
	cmdline="console=ttyS0 root=/dev/vda lab.cmd=failover-test lab.ip=10.0.7.2/24 lab.server=10.0.7.1 lab.fo_secs=$SECS"
	# QEMU pairs by MAC as the guest sees it: the VF must have M already (minivmm sets it itself)
	ip link set "$pf" vf 0 mac "$MAC"
	if [ "$1" = qemu ]; then
		kind=qemu
		rm -f "$QMP"
		set -- qemu-system-x86_64 -enable-kvm -machine q35 -cpu host -m "${MEM}M" -smp 2 \
			-nodefaults -no-user-config -display none -no-reboot -serial stdio -monitor none \
			-qmp "unix:$QMP,server=on,wait=off" \
			-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" -append "$cmdline" \
			-drive "file=$img,format=raw,if=virtio,readonly=on" \
			-netdev tap,id=hn0,ifname=tap0,script=no,downscript=no,vhost=off \
			-device "virtio-net-pci,netdev=hn0,id=net1,mac=$MAC,failover=on" \
			-device pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=0x6 \
			-device "vfio-pci,host=$vf,id=hostdev0,bus=rp1,failover_pair_id=net1"
	else
		ip link set "$pf" vf 0 mac 52:54:00:1a:b0:00 # minivmm must set it
		set -- "$B" -v --api "$S" --mem "${MEM}M" --cpus 2 --readonly \
			--net "tap=tap0,mac=$MAC,failover=on" --vf "$vf,failover=on" -c "$cmdline" "$img"
	fi
	server_start "$LABEL"
	LAB_GUEST_HOOK=drive
	LAB_GUEST_RETRY_HOOK=fo_retry
	rc_run=$rc
	LAB_L2_TIMEOUT=$((SECS + 400)) lab_guest_try "fo_$LABEL" "$kind" "$log" "$@"
	LAB_GUEST_HOOK="" LAB_GUEST_RETRY_HOOK=""
	# the server ends with its one test; a stream that broke may leave it waiting
	lab_iperf3_server_wait 30
	cp "$OUT/server-$LABEL.log" "$LAB_RESULTS/fo-server-$LABEL.log"
	lab_result "fo_${LABEL}_verdict" "$LAB_GUEST_VERDICT"
	if [ "$LAB_GUEST_VERDICT" != ok ]; then
		[ "$kind" = qemu ] && say "QEMU's run failed: $LAB_GUEST_VERDICT (recorded, not a minivmm failure)" ||
			fail "[$LABEL] $LAB_GUEST_VERDICT"
	fi
	[ $driven = 1 ] || { [ "$kind" = qemu ] || fail "[$LABEL] the stream never started"; return; }
	local why
	why="$(tr -d '\r' < "$log" | grep -E 'LAB-FO-STREAM-END|iperf3: error' | head -n 2 | tr '\n' ' ')"
	grep -q 'LAB-FO-STREAM-END rc=0' "$log" && pass "[$LABEL] the guest's iperf3 stream never broke" ||
		{ [ "$kind" = qemu ] && say "[qemu] the stream broke: $why" || fail "[$LABEL] the guest's iperf3 stream broke: ${why:-no LAB-FO-STREAM-END}"; }
	why="$(grep -a -E 'iperf3: |error' "$LAB_RESULTS/fo-server-$LABEL.log" | tr -d '\0' | head -n 2 | tr '\n' ' ')"
	grep -aq 'receiver$' "$LAB_RESULTS/fo-server-$LABEL.log" && pass "[$LABEL] L1's iperf3 server saw the whole stream" ||
		{ [ "$kind" = qemu ] || fail "[$LABEL] L1's server has no final report${why:+: $why}"; }
	# the stalls around each switch: from the request to 15 s after it
	local k tu tp
	for ((k = 1; k <= SWITCHES; k++)); do
		tu=$(awk -v w="$LABEL $k unplug" '$0 ~ w"$" { print $1 }' "$EV" | tail -n1)
		tp=$(awk -v w="$LABEL $k plug" '$0 ~ w"$" { print $1 }' "$EV" | tail -n1)
		[ -n "$tu" ] && lab_result "fo_${LABEL}_${k}_stall_del_ms" \
			"$(lab_stall_ms "$LAB_RESULTS/fo-server-$LABEL.log" "$tu" "$(awk -v t="$tu" 'BEGIN { printf "%.3f", t + 6 }')")"
		[ -n "$tp" ] && lab_result "fo_${LABEL}_${k}_stall_add_ms" \
			"$(lab_stall_ms "$LAB_RESULTS/fo-server-$LABEL.log" "$tp" "$(awk -v t="$tp" 'BEGIN { printf "%.3f", t + 15 }')")"
	done
	if [ "$kind" = minivmm ]; then
		grep -q 'vf0: plugged: net0.s driver negotiated STANDBY' "$log" &&
			pass "minivmm plugged vf0 only once STANDBY was negotiated" || fail "no 'plugged: net0's driver negotiated STANDBY' line"
		# the order: negotiation logged before the VF's plug
		awk '/STANDBY negotiated by the guest/ && !n { n = NR } /vf0: .*assigned at/ && !p { p = NR } END { exit !(n && p && n < p) }' "$log" &&
			pass "the VF was put on the bus after the negotiation" || fail "the VF was on the bus before STANDBY was negotiated"
		crash=$(lab_crash_line "$log")
		[ -z "$crash" ] || fail "a crash or sanitizer report: $crash"
	fi
}

for v in $VMMS; do
	run "$v"
done

# medians per VMM, for the closing figures
for v in $VMMS; do
	for f in unplug_ms plug_to_traffic_ms stall_del_ms stall_add_ms; do
		vals=$(sed -n "s/^fo_${v}_[0-9]*_${f}=\([0-9.]*\)$/\1/p" "$RES" | tr '\n' ' ')
		lab_result "fo_${v}_${f}_all" "\"$vals\""
	done
done

# --- 3. a guest whose driver does not know STANDBY ------------------------------
if [ -n "${LAB_TINY_VIRTIONET:-}" ] && [ -f "$LAB_TINY_VIRTIONET" ]; then
	ip link set tap0 nomaster
	python3 "$LAB_SRCDIR/tests/kvm/net_responder.py" tap0 60 > "$OUT/responder.log" 2>&1 &
	resp=$!
	log=$LAB_RESULTS/l2-fo-tiny.log
	"$B" -v --api "$S" --kernel "$LAB_TINY_VIRTIONET" --testdev --mem 64M \
		--net "tap=tap0,mac=$MAC,failover=on" --vf "$vf,failover=on" > "$log" 2>&1 &
	vpid=$!
	wait $vpid
	vrc=$?
	kill $resp 2>/dev/null
	wait $resp 2>/dev/null
	sed 's/^/    | /' "$OUT/responder.log"
	grep -q 'virtionet PASS' "$log" && [ $vrc = 0 ] && pass "the guest works over virtio-net (ping/pong)" ||
		fail "the tiny guest over virtio-net: exit $vrc, $(grep -m1 FAIL "$log")"
	grep -q 'net0: STANDBY declined by the guest' "$log" && grep -q 'declined STANDBY (no net_failover): the VF stays out' "$log" &&
		pass "no net_failover in the guest: STANDBY declined, minivmm says the VF stays out" ||
		fail "no 'STANDBY declined' / 'the VF stays out' lines"
	grep -q 'vf0: .* not plugged yet' "$log" && ! grep -q 'vf0: .*assigned at' "$log" &&
		pass "vf0 was prepared and never put on the guest's bus" || fail "vf0 was plugged into a guest without net_failover"
	ip link set tap0 master br0
else
	fail "LAB_TINY_VIRTIONET is not set: the guest without net_failover was not run"
fi

# --- 4. a guest that never ejects ------------------------------------------------
ign_done=0
drive_ignore() {
	[ $ign_done = 0 ] && grep -q LAB-FO-PING-START "$LAB_GUEST_LOG" || return 0
	ign_done=1
	local before after
	before=$(vf_irqs)
	ctl "$S" device-del vf0 --timeout 3
	[ $CST = 1 ] && grep -q 'did not eject vf0 within 3000 ms: the device stays' "$OUT/ctl.out" &&
		pass "device-del past its deadline: refused, the device stays" || fail "device-del with a guest that ignores it (exit $CST)"
	ctl --json "$S" devices
	python3 -c 'import json,sys
d = {x["id"]: x for x in json.load(open(sys.argv[1]))["return"]["devices"]}
assert d["vf0"]["failover"]["state"] == "plugged" and d["vf0"]["address"] != "-", d["vf0"]' "$OUT/ctl.out" &&
		pass "vf0 is still plugged" || fail "vf0 is gone after a refused device-del"
	sleep 5
	after=$(vf_irqs)
	[ $((after - before)) -gt 0 ] && pass "VF0 still takes interrupts after the deadline ($((after - before)))" ||
		fail "VF0 took no interrupt after the deadline"
}
ip link set "$pf" vf 0 mac 52:54:00:1a:b0:00
LAB_GUEST_HOOK=drive_ignore
LAB_L2_TIMEOUT=400 lab_guest_try fo_ignore minivmm "$LAB_RESULTS/l2-fo-ignore.log" \
	"$B" -v --api "$S" --mem "${MEM}M" --cpus 2 --readonly \
	--net "tap=tap0,mac=$MAC,failover=on" --vf "$vf,failover=on" \
	-c "console=ttyS0 root=/dev/vda lab.cmd=failover-test lab.ip=10.0.7.2/24 lab.server=10.0.7.1 lab.fo_mode=ignore-eject lab.fo_secs=20" "$img"
LAB_GUEST_HOOK=""
[ "$LAB_GUEST_VERDICT" = ok ] || fail "[ignore] $LAB_GUEST_VERDICT"
[ $ign_done = 1 ] || fail "[ignore] the guest never started its pings"
n=$(tr -d '\r' < "$LAB_RESULTS/l2-fo-ignore.log" | sed -n 's/.*LAB-FO-PING \([0-9]*\) received via=\(.*\)/\1 \2/p')
lab_result fo_ignore_pings "\"$n\""
set -- $n
[ "${1:-0}" -ge 35 ] && [ -n "${2:-}" ] && pass "the guest's pings over the VF ($2) answered: $1 of 40" ||
	fail "the guest's pings after the deadline: '$n'"

[ $rc = 0 ] && echo "test-failover: PASS" || echo "test-failover: FAILED"
exit $rc
