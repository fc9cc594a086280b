#!/bin/bash
# Lab test (runs in two L1s at once: tests/lab/lab.sh run --hosts 2, test
# lab-migrate-hosts): the failover dance between two hosts. L1 a and L1 b
# each have their own igb PF; the two igb ports are one Ethernet segment
# (lab.sh joins them), and both see guest.img in the lab cache (read-only
# storage both hosts share).
#
# On each host: br0 = { the PF, tap0 } with the PF's MAC; a: 10.0.9.1,
# b: 10.0.9.3. The guest (10.0.9.2, lab.cmd=failover-test) has a virtio-net
# standby on tap0 and the host's VF0 as its primary (net_failover), and
# keeps one iperf3 stream to L1 a's server for LAB_MH_SECS (100) seconds.
#  a: boots the guest on its VF0; once the stream has run 10 s over the VF
#     and b's destination waits, `ctl migrate tcp:10.0.9.3:4446`. Required:
#     exit 0, the source exits 0 ("migrated") and takes the guest's MAC off
#     its VF0 (or a's NIC would keep the guest's frames from the wire).
#  b: minivmm --incoming tcp:0.0.0.0:4446 with b's own VF0 (failover=on);
#     required: it receives the guest, plugs its VF0 (STANDBY was
#     negotiated on a), the VF carries the stream (its vfio-msix
#     interrupts rise by LAB_MH_IRQS, 200, and the guest's counters of the
#     VF rise), the stream never breaks (iperf3 ends with 0 on both ends),
#     and the guest's command ends with 0.
# The two scripts meet through files in $LAB_PAIR: b-ready, a-migrated,
# b-done, a-done (each waits a bounded time, then fails).
# Measured (results.txt of each host): a: the migration's total, paused,
# unplug and pre-copy figures and bytes, and the stream's longest stall
# from the migration's start to 60 s after (L1 a's server, 0.1 s
# intervals); b: plug to the VF carrying the stream.
# Environment: MINIVMM_BIN (required), LAB_HOST (a or b, from lab.sh),
# LAB_PAIR, LAB_MH_SECS, LAB_MH_IRQS.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:90
HOST=${LAB_HOST:-}
PORT=4446
SECS=${LAB_MH_SECS:-100}
IRQS=${LAB_MH_IRQS:-200}
MEM=384
SOCK=/tmp/lab-mh.sock
OUT=/tmp/lab-mh
mkdir -p "$OUT"
: > "$LAB_RESULTS/results.txt"
rc=0
fail() { echo "test-migrate-hosts[$HOST]: FAIL: $*"; rc=1; }
pass() { echo "test-migrate-hosts[$HOST]: ok: $*"; }
say() { echo "test-migrate-hosts[$HOST]: $*"; }
ctl() { "$B" ctl "$@" > "$OUT/ctl.out" 2>&1; CST=$?; sed 's/^/    | /' "$OUT/ctl.out"; }
# pair_wait NAME SECS: 0 when $LAB_PAIR/NAME exists, 1 after SECS (a line
# every 20 s: L1's watchdog takes a silent console for a hang)
pair_wait() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		[ -e "$LAB_PAIR/$1" ] && return 0
		[ $((i % 100)) = 99 ] && say "waiting for the other host ($1), $((i / 5 + 1)) s"
		sleep 0.2
	done
	return 1
}
pair_say() { echo "$(lab_now) ${2:-}" > "$LAB_PAIR/$1.tmp" && mv "$LAB_PAIR/$1.tmp" "$LAB_PAIR/$1"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-migrate-hosts: MINIVMM_BIN not set or not executable"; exit 1; }
case "$HOST" in a | b) ;; *) echo "test-migrate-hosts: LAB_HOST is '$HOST': run with lab.sh run --hosts 2"; exit 1 ;; esac
[ -d "${LAB_PAIR:-/nonexistent}" ] || { echo "test-migrate-hosts: no shared directory LAB_PAIR"; exit 1; }
[ -c /dev/kvm ] || { echo "test-migrate-hosts: no /dev/kvm in L1"; exit 1; }
img=$LAB_CACHE/guest/guest.img
[ -f "$img" ] || { echo "test-migrate-hosts: no $img on the shared storage"; exit 1; }
pf=$(lab_pf) || exit 1
# VF MACs differ between the hosts: one segment
lab_vfs_create "$pf" 1 "52:54:00:1a:$([ "$HOST" = a ] && echo a0 || echo b0)" > /dev/null || exit 1
vf=$(lab_vf_pci "$pf" 0)
lab_vf_bind_vfio "$vf" > /dev/null || exit 1
pfmac=$(cat "/sys/class/net/$pf/address")
lab_tap_create tap0 > /dev/null || exit 1
lab_bridge_create br0 "" "$pf" tap0 > /dev/null || exit 1
ip link set br0 address "$pfmac"
myip=10.0.9.1
[ "$HOST" = b ] && myip=10.0.9.3
ip addr add "$myip/24" dev br0
say "PF $pf ($pfmac) and tap0 in br0 $myip; VF0 $vf; guest.img from the shared cache"
vf_irqs() { lab_irq_count "vfio-msix.*$vf"; }

CMDLINE="console=ttyS0 root=/dev/vda lab.cmd=failover-test lab.ip=10.0.9.2/24 lab.server=10.0.9.1 lab.fo_secs=$SECS"
VMM=(-v --api "$SOCK" --mem "${MEM}M" --cpus 2 --readonly --net "tap=tap0,mac=$MAC,failover=on" --vf "$vf,failover=on" -c "$CMDLINE" "$img")

# --- host b: the destination ------------------------------------------------------
if [ "$HOST" = b ]; then
	# the peer must answer before the destination waits: a's stream goes to it
	for _ in $(seq 150); do busybox ping -c1 -W1 10.0.9.1 > /dev/null 2>&1 && break; sleep 1; done
	busybox ping -c1 -W1 10.0.9.1 > /dev/null 2>&1 && pass "host a (10.0.9.1) answers across the segment" ||
		fail "host a does not answer across the segment"
	phase=0 t_plug="" irq0="" waited=0
	drive_b() {
		case $phase in
		0)
			grep -q 'waiting for a migration' "$LAB_GUEST_LOG" || return 0
			pair_say b-ready
			say "the destination waits on port $PORT"
			phase=1
			;;
		1)
			if grep -q 'migration received in' "$LAB_GUEST_LOG"; then
				phase=2
				return 0
			fi
			waited=$((waited + 1))
			[ $((waited % 100)) = 0 ] && say "the destination waits ($((waited / 5)) s)"
			if [ -e "$LAB_PAIR/a-done" ]; then
				fail "host a finished and no migration came"
				kill "$1" 2>/dev/null
			fi
			;;
		2)
			grep -q "plugged: net0's driver negotiated STANDBY" "$LAB_GUEST_LOG" || return 0
			t_plug=$(lab_now) irq0=$(vf_irqs)
			phase=3
			;;
		3)
			[ $(($(vf_irqs) - irq0)) -ge "$IRQS" ] || return 0
			lab_result mh_plug_to_traffic_ms "$(awk -v a="$t_plug" -v b="$(lab_now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
			phase=4
			;;
		esac
		return 0
	}
	LAB_GUEST_HOOK=drive_b
	# it waits silently for the source's boot: the stall limit covers that
	LAB_L2_STALL=600 LAB_L2_TIMEOUT=1500 lab_guest_run destination "$LAB_RESULTS/l2-mh-destination.log" \
		"$B" --incoming "tcp:0.0.0.0:$PORT" "${VMM[@]}"
	LAB_GUEST_HOOK=""
	log=$LAB_RESULTS/l2-mh-destination.log
	[ $phase -ge 2 ] && pass "the destination received the guest: $(grep -m1 'migration received in' "$log" | sed 's/.*received in //' | tr -d '\r')" ||
		fail "the destination never received the guest (phase $phase)"
	[ "$LAB_GUEST_RC" = 0 ] && pass "the destination exited 0" || fail "the destination: exit $LAB_GUEST_RC ${LAB_GUEST_STOP:+(stopped: $LAB_GUEST_STOP)}"
	[ $phase -ge 3 ] && pass "b plugged its own VF0 ($vf): STANDBY was negotiated on a" || fail "b never plugged its VF"
	[ $phase -ge 4 ] && pass "b's VF0 carried the stream: its interrupts rose by $IRQS after the plug" ||
		fail "b's VF0 never carried the stream (interrupts since the plug: $([ -n "$irq0" ] && echo $(($(vf_irqs) - irq0)) || echo none))"
	# the guest's own counters of its primary, every 5 s: the VF's tx must rise on b
	tx=$(tr -d '\r' < "$log" | grep '^LAB-FO-SLAVES ' | tr ' ' '\n' | sed -n 's/^[a-z0-9]*:up:tx=\([0-9]*\):primary$/\1/p')
	first=$(echo "$tx" | grep . | head -n1) last=$(echo "$tx" | grep . | tail -n1)
	lab_result mh_guest_vf_tx "\"${first:-none} ${last:-none}\""
	[ -n "$first" ] && [ "$last" -gt "$first" ] && pass "the guest's VF on b: tx packets $first -> $last" ||
		fail "the guest's VF counters on b do not rise: '$tx'"
	grep -q 'LAB-FO-STREAM-END rc=0' "$log" && pass "the guest's iperf3 stream never broke (it ended with 0 on b)" ||
		fail "the guest's stream broke: $(tr -d '\r' < "$log" | grep -m1 'LAB-FO-STREAM-END\|iperf3: error')"
	grep -q 'LAB-GUEST-RC=0' "$log" && pass "the guest's command ended with 0" || fail "the guest's command failed"
	grep -q 'the guest announced itself (GUEST_ANNOUNCE acknowledged)' "$log" &&
		pass "the guest announced itself from b (GUEST_ANNOUNCE)" || fail "no GUEST_ANNOUNCE acknowledgement on b"
	crash=$(lab_crash_line "$log")
	[ -z "$crash" ] || fail "the destination: $crash"
	lab_result mh_b_verdict "$rc"
	pair_say b-done "$rc"
	[ $rc = 0 ] && echo "test-migrate-hosts[b]: PASS" || echo "test-migrate-hosts[b]: FAILED"
	exit $rc
fi

# --- host a: the source -----------------------------------------------------------
lab_iperf3_server "$OUT/server.log"
server_pid=$LAB_SERVER_PID
trap 'kill $server_pid 2>/dev/null; pkill -f "iperf3 -s -1" 2>/dev/null; pair_say a-done' EXIT
phase=0 t_stream="" t_mig="" t_mig_end=""
drive_a() {
	case $phase in
	0)
		grep -q LAB-FO-STREAM-START "$LAB_GUEST_LOG" || return 0
		t_stream=$(lab_now)
		phase=1
		;;
	1)
		# 10 s of the stream over the VF, and the destination waiting
		[ "$(awk -v a="$t_stream" -v b="$(lab_now)" 'BEGIN { print (b - a >= 10) }')" = 1 ] || return 0
		pair_wait b-ready 300 || { fail "b's destination never got ready"; phase=9; return 0; }
		ctl "$SOCK" migrate "tcp:10.0.9.3:$PORT" --plan
		[ $CST = 0 ] && grep -q '^  destination: accepts' "$OUT/ctl.out" &&
			pass "migrate --plan: b's destination accepts" || fail "migrate --plan (exit $CST)"
		t_mig=$(lab_now)
		ctl "$SOCK" migrate "tcp:10.0.9.3:$PORT"
		t_mig_end=$(lab_now)
		cp "$OUT/ctl.out" "$LAB_RESULTS/ctl-migrate.out"
		pair_say a-migrated "$CST"
		line=$(grep -m1 '^migrated to' "$OUT/ctl.out")
		[ $CST = 0 ] && pass "ctl migrate: $line" || fail "ctl migrate: exit $CST"
		grep -q "vf0 (VF $vf) left the guest first (ejected" "$OUT/ctl.out" &&
			pass "ctl says vf0 left the guest first" || fail "ctl does not say that vf0 left the guest"
		lab_result mh_ctl "\"$line\""
		lab_result mh_eject_ms "$(sed -n 's/.*(ejected after \([0-9]*\) ms).*/\1/p' "$OUT/ctl.out")"
		lab_result mh_bytes "$(echo "$line" | sed -n 's/.*: \([0-9]*\) bytes (.*/\1/p')"
		lab_result mh_total_ms "$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms, .*/\1/p')"
		lab_result mh_paused_ms "$(echo "$line" | sed -n 's/.*paused for \([0-9]*\) ms$/\1/p')"
		lab_result mh_precopy "\"$(grep -m1 '^  pre-copy: ' "$OUT/ctl.out" | sed 's/^  //')\""
		ip link show "$pf" | grep "vf 0 " | grep -qi "$MAC" &&
			fail "a's VF0 keeps the guest's MAC: $(ip link show "$pf" | grep 'vf 0 ')" ||
			pass "a took the guest's MAC off its VF0"
		phase=2
		;;
	esac
	return 0
}
LAB_GUEST_HOOK=drive_a
LAB_L2_TIMEOUT=$((SECS + 500)) lab_guest_run source "$LAB_RESULTS/l2-mh-source.log" "$B" "${VMM[@]}"
LAB_GUEST_HOOK=""
log=$LAB_RESULTS/l2-mh-source.log
[ $phase = 2 ] || fail "the migration never ran (phase $phase): $(lab_guest_verdict minivmm "$log")"
[ "$LAB_GUEST_RC" = 0 ] && grep -q 'migrated (the guest runs on the destination)' "$log" &&
	pass "the source exited 0: migrated, its VF released" || fail "the source: exit $LAB_GUEST_RC, $(tail -n2 "$log" | tr -d '\r')"
crash=$(lab_crash_line "$log")
[ -z "$crash" ] || fail "the source: $crash"
pair_wait b-done $((SECS + 300)) || fail "host b never finished"
b_rc=$(cut -d' ' -f2 "$LAB_PAIR/b-done" 2>/dev/null)
[ "$b_rc" = 0 ] && pass "host b's checks passed" || fail "host b's checks failed (see host-b/results.txt)"
# the stream: over on the server's side too, and its longest stall around the move
for _ in $(seq 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 1; done
cp "$OUT/server.log" "$LAB_RESULTS/mh-server.log"
grep -q 'receiver$' "$OUT/server.log" && pass "a's iperf3 server saw the whole stream" || fail "a's server has no final report"
if [ -n "$t_mig" ]; then
	lab_result mh_stall_ms "$(lab_stall_ms "$OUT/server.log" "$t_mig" "$(awk -v t="$t_mig_end" 'BEGIN { printf "%.3f", t + 60 }')")"
	lab_result mh_stall_before_ms "$(lab_stall_ms "$OUT/server.log" "$t_stream" "$t_mig")"
fi
[ $rc = 0 ] && echo "test-migrate-hosts[a]: PASS" || echo "test-migrate-hosts[a]: FAILED"
exit $rc
