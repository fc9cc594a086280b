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
# keeps one iperf3 stream to L1 a's server for LAB_MH_SECS (160) seconds
# (long enough for a move over TLS on a slow, loaded lab: one took 103 s).
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
# Then the same guest, stream and move under QEMU (the baseline, LAB_MH_VMMS
# "minivmm qemu"): q35, virtio-net-pci failover=on and vfio-pci
# failover_pair_id on a pcie-root-port, QMP migrate over the same TLS with the
# same key (tls-creds-psk; QEMU asks the guest to
# eject the VF and waits for it; the destination plugs its own VF after
# the load). QEMU leaves the guest's MAC on a's VF0: the test, as an
# orchestrator must, takes it off once the migration completed. QEMU's
# failures are recorded, not failed (docs/lab.md).
# The two scripts meet through files in $LAB_PAIR, per VMM: b-ready.V,
# b-done.V; and a-done (each waits a bounded time, then fails).
# Measured, per VMM V (results.txt of each host): a: mh_V_total_ms,
# _paused_ms (downtime), _unplug_ms (migrate to the VF out of the guest),
# _bytes, and the stream's longest stall from the migration's start to 60 s
# after (_stall_ms, L1 a's server, 0.1 s intervals); b: from the guest
# resumed to b's VF carrying the stream (_resume_to_traffic_ms; minivmm
# also _plug_to_traffic_ms from its plug).
# A minivmm guest's L2 triple fault (the lab's one documented environmental
# failure) fails the run and is recorded (mh_env_fault); run it through
# scripts/migrate-hosts.sh, which runs it again once when that happened.
# Environment: MINIVMM_BIN (required), LAB_HOST (a or b, from lab.sh),
# LAB_PAIR, LAB_MH_SECS, LAB_MH_IRQS, LAB_MH_VMMS.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:90
HOST=${LAB_HOST:-}
PORT=4446
SECS=${LAB_MH_SECS:-160}
IRQS=${LAB_MH_IRQS:-200}
MEM=384
VMMS=${LAB_MH_VMMS:-minivmm qemu}
SOCK=/tmp/lab-mh.sock
QMP=/tmp/lab-mh.qmp
GUEST_DIR=$LAB_CACHE/guest
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
# the channel between the hosts, for both VMMs: TLS 1.3 with a pre-shared
# key (minivmm refuses an --incoming on the network without TLS; QEMU gets
# the same key through tls-creds-psk, so that both pay for the cipher and
# the figures compare like with like); the same test key on both hosts
PSK=$OUT/migration.psk
echo "minivmm-lab:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" >"$PSK"
mkdir -p "$OUT/qemu-psk"
cp "$PSK" "$OUT/qemu-psk/keys.psk"
# vmm_cmd V [--incoming PORT]: the VMM's command line in VMM_CMD
vmm_cmd() {
	if [ "$1" = qemu ]; then
		rm -f "$QMP"
		VMM_CMD=(qemu-system-x86_64 -enable-kvm -machine q35 -cpu host -m "${MEM}M" -smp 2
			-nodefaults -no-user-config -display none -no-reboot -serial stdio -monitor none
			-qmp "unix:$QMP,server=on,wait=off"
			-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" -append "$CMDLINE"
			-drive "file=$img,format=raw,if=virtio,readonly=on"
			-netdev tap,id=hn0,ifname=tap0,script=no,downscript=no,vhost=off
			-device "virtio-net-pci,netdev=hn0,id=net1,mac=$MAC,failover=on"
			-device pcie-root-port,id=rp1,chassis=1,bus=pcie.0,addr=0x6
			-device "vfio-pci,host=$vf,id=hostdev0,bus=rp1,failover_pair_id=net1")
		if [ "${2:-}" = --incoming ]; then
			VMM_CMD+=(-incoming "tcp:0.0.0.0:$3"
				-object "tls-creds-psk,id=mtls,endpoint=server,dir=$OUT/qemu-psk")
		else
			VMM_CMD+=(-object "tls-creds-psk,id=mtls,endpoint=client,dir=$OUT/qemu-psk,username=minivmm-lab")
		fi
		VMM_CMD+=(-global migration.tls-creds=mtls)
		# QEMU pairs by MAC as the guest sees it: the VF must have it already
		ip link set "$pf" vf 0 mac "$MAC"
	else
		VMM_CMD=("$B" -v --api "$SOCK" --mem "${MEM}M" --cpus 2 --readonly
			--migration-psk "$PSK" --net "tap=tap0,mac=$MAC,failover=on" --vf "$vf,failover=on"
			-c "$CMDLINE" "$img")
		[ "${2:-}" = --incoming ] && VMM_CMD+=(--incoming "tcp:0.0.0.0:$3")
		# minivmm must set it itself
		ip link set "$pf" vf 0 mac "52:54:00:1a:$([ "$HOST" = a ] && echo a0 || echo b0):00"
	fi
}
# env_fault WHERE LOG: a minivmm guest that died of the lab's documented
# environmental failure (an L2 triple fault: docs/lab.md, "Guest runs")
# fails this run like any other failure, and is recorded as mh_env_fault so
# that scripts/migrate-hosts.sh runs the two hosts again once, loudly
env_fault() {
	local v
	v=$(lab_guest_verdict minivmm "$2")
	case $v in
	env:*)
		say "WARNING: [minivmm] $1: ${v#env: } (the lab's environmental failure)"
		lab_result mh_env_fault "\"$1: ${v#env: }\"" ;;
	esac
}
port_of() { [ "$1" = qemu ] && echo $((PORT + 1)) || echo "$PORT"; }
# a QEMU failure is the baseline's, recorded; minivmm's fail the test
vfail() { if [ "$V" = qemu ]; then say "[qemu] (baseline, recorded) $*"; lab_result "mh_qemu_problem" "\"$*\""; else fail "$*"; fi; }

# --- host b: the destinations -----------------------------------------------------
b_run() {
	local log=$LAB_RESULTS/l2-mh-$V-destination.log brc=0 rc0=$rc wpid="" t_res=""
	phase=0 t_plug="" irq0="" waited=0 t_resume=""
	drive_b() {
		case $phase in
		0)
			if [ "$V" = qemu ]; then
				[ -S "$QMP" ] || return 0
				python3 "$LAB_SRCDIR/tests/lab/qmp_migrate.py" "$QMP" wait-resume --timeout 1500 > "$OUT/resume-$V" 2>&1 &
				wpid=$!
			else
				grep -q 'waiting for a migration' "$LAB_GUEST_LOG" || return 0
			fi
			pair_say "b-ready.$V"
			say "[$V] the destination waits on port $(port_of "$V")"
			phase=1
			;;
		1)
			if [ "$V" = qemu ]; then
				grep -q '^resumed=[0-9]' "$OUT/resume-$V" 2>/dev/null && phase=2
			else
				grep -q 'migration received in' "$LAB_GUEST_LOG" && phase=2
			fi
			if [ $phase = 2 ]; then
				t_resume=$(lab_now) irq0=$(vf_irqs)
				[ "$V" = qemu ] && t_resume=$(sed -n 's/^resumed=//p' "$OUT/resume-$V")
				return 0
			fi
			waited=$((waited + 1))
			[ $((waited % 100)) = 0 ] && say "[$V] the destination waits ($((waited / 5)) s)"
			if [ -e "$LAB_PAIR/a-done" ] || [ -e "$LAB_PAIR/a-gave-up.$V" ]; then
				vfail "host a gave up on $V's migration; stopping the destination"
				kill "$1" 2>/dev/null
			fi
			;;
		2)
			if [ "$V" = minivmm ] && [ -z "$t_plug" ] && grep -q "plugged: net0's driver negotiated STANDBY" "$LAB_GUEST_LOG"; then
				t_plug=$(lab_now)
			fi
			[ $(($(vf_irqs) - irq0)) -ge "$IRQS" ] || return 0
			lab_result "mh_${V}_resume_to_traffic_ms" "$(awk -v a="$t_resume" -v b="$(lab_now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
			[ -n "$t_plug" ] && lab_result "mh_${V}_plug_to_traffic_ms" "$(awk -v a="$t_plug" -v b="$(lab_now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
			phase=3
			;;
		esac
		return 0
	}
	vmm_cmd "$V" --incoming "$(port_of "$V")"
	LAB_GUEST_HOOK=drive_b
	# it waits silently for the source's boot: the stall limit covers that
	LAB_L2_STALL=600 LAB_L2_TIMEOUT=1500 lab_guest_run "$V-destination" "$log" "${VMM_CMD[@]}"
	LAB_GUEST_HOOK=""
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null
	[ $phase -ge 2 ] && pass "[$V] the destination received the guest and resumed it" ||
		vfail "[$V] the destination never received the guest (phase $phase)"
	[ "$LAB_GUEST_RC" = 0 ] && pass "[$V] the destination exited 0" || vfail "[$V] the destination: exit $LAB_GUEST_RC ${LAB_GUEST_STOP:+(stopped: $LAB_GUEST_STOP)}"
	[ $phase -ge 3 ] && pass "[$V] b's VF0 carried the stream: its interrupts rose by $IRQS after the guest resumed" ||
		vfail "[$V] b's VF0 never carried the stream (interrupts since the resume: $([ -n "$irq0" ] && echo $(($(vf_irqs) - irq0)) || echo none))"
	if [ "$V" = minivmm ]; then
		[ -n "$t_plug" ] && pass "[$V] b plugged its own VF0 ($vf): STANDBY was negotiated on a" || fail "[$V] b never plugged its VF"
		# minivmm's own figure: plug to the guest's driver enabling the VF's MSI-X
		lab_result mh_minivmm_driver_ms "$(tr -d '\r' < "$log" | sed -n 's/.*MSI-X on \([0-9]*\) ms after the plug.*/\1/p' | head -n1)"
		# and to the VF carrying traffic (its host interrupts, counted by minivmm itself)
		traffic=$(tr -d '\r' < "$log" | sed -n 's/.*carries traffic: [0-9]* interrupts, \([0-9]*\) ms after the plug.*/\1/p' | head -n1)
		lab_result mh_minivmm_traffic_ms "${traffic:-none}"
		if [ $phase -ge 3 ]; then
			[ -n "$traffic" ] && pass "[$V] minivmm saw its VF carry traffic ${traffic} ms after the plug" ||
				fail "[$V] minivmm never reported its VF carrying traffic, though the lab saw it"
		fi
		grep -q 'the guest announced itself (GUEST_ANNOUNCE acknowledged)' "$log" &&
			pass "[$V] the guest announced itself from b (GUEST_ANNOUNCE)" || fail "[$V] no GUEST_ANNOUNCE acknowledgement on b"
		crash=$(lab_crash_line "$log")
		[ -z "$crash" ] || fail "[$V] the destination: $crash"
		env_fault "b's destination" "$log"
	fi
	# the guest's own counters of its primary, every 5 s: the VF's tx must rise on b
	tx=$(tr -d '\r' < "$log" | grep '^LAB-FO-SLAVES ' | tr ' ' '\n' | sed -n 's/^[a-z0-9]*:up:tx=\([0-9]*\):primary$/\1/p')
	first=$(echo "$tx" | grep . | head -n1) last=$(echo "$tx" | grep . | tail -n1)
	lab_result "mh_${V}_guest_vf_tx" "\"${first:-none} ${last:-none}\""
	[ -n "$first" ] && [ "$last" -gt "$first" ] && pass "[$V] the guest's VF on b: tx packets $first -> $last" ||
		vfail "[$V] the guest's VF counters on b do not rise: '$tx'"
	grep -q 'LAB-FO-STREAM-END rc=0' "$log" && pass "[$V] the guest's iperf3 stream never broke (it ended with 0 on b)" ||
		vfail "[$V] the guest's stream broke: $(tr -d '\r' < "$log" | grep -m1 'LAB-FO-STREAM-END\|iperf3: error')"
	grep -q 'LAB-GUEST-RC=0' "$log" && pass "[$V] the guest's command ended with 0" || vfail "[$V] the guest's command failed"
	[ $rc = "$rc0" ] && brc=0 || brc=1
	pair_say "b-done.$V" "$brc"
}

if [ "$HOST" = b ]; then
	# the peer must answer first: a's stream goes to it
	for _ in $(seq 150); do busybox ping -c1 -W1 10.0.9.1 > /dev/null 2>&1 && break; sleep 1; done
	busybox ping -c1 -W1 10.0.9.1 > /dev/null 2>&1 && pass "host a (10.0.9.1) answers across the segment" ||
		fail "host a does not answer across the segment"
	for V in $VMMS; do
		b_run
	done
	pair_say b-finished "$rc"
	[ $rc = 0 ] && echo "test-migrate-hosts[b]: PASS" || echo "test-migrate-hosts[b]: FAILED"
	exit $rc
fi

# --- host a: the sources ----------------------------------------------------------
trap 'lab_iperf3_server_stop; pair_say a-done' EXIT
a_run() {
	local log=$LAB_RESULTS/l2-mh-$V-source.log line
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
			if ! pair_wait "b-ready.$V" 300; then
				vfail "[$V] b's destination never got ready"
				pair_say "a-gave-up.$V"
				phase=9
				return 0
			fi
			[ "$V" = qemu ] && { a_migrate_qemu; return 0; }
			ctl "$SOCK" migrate "tcp:10.0.9.3:$PORT" --plan
			[ $CST = 0 ] && grep -q '^  destination: accepts' "$OUT/ctl.out" &&
				pass "[$V] migrate --plan: b's destination accepts" || fail "[$V] migrate --plan (exit $CST)"
			t_mig=$(lab_now)
			ctl "$SOCK" migrate "tcp:10.0.9.3:$PORT"
			t_mig_end=$(lab_now)
			cp "$OUT/ctl.out" "$LAB_RESULTS/ctl-migrate.out"
			line=$(grep -m1 '^migrated to' "$OUT/ctl.out")
			[ $CST = 0 ] && pass "[$V] ctl migrate: $line" || fail "[$V] ctl migrate: exit $CST"
			grep -q "vf0 (VF $vf) left the guest first (ejected" "$OUT/ctl.out" &&
				pass "[$V] ctl says vf0 left the guest first" || fail "[$V] ctl does not say that vf0 left the guest"
			lab_result mh_minivmm_ctl "\"$line\""
			lab_result mh_minivmm_eject_ms "$(sed -n 's/.*(ejected after \([0-9]*\) ms).*/\1/p' "$OUT/ctl.out")"
			lab_result mh_minivmm_bytes "$(echo "$line" | sed -n 's/.*: \([0-9]*\) bytes (.*/\1/p')"
			lab_result mh_minivmm_total_ms "$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms, .*/\1/p')"
			lab_result mh_minivmm_paused_ms "$(echo "$line" | sed -n 's/.*paused for \([0-9]*\) ms$/\1/p')"
			lab_result mh_minivmm_precopy "\"$(grep -m1 '^  pre-copy: ' "$OUT/ctl.out" | sed 's/^  //')\""
			ip link show "$pf" | grep "vf 0 " | grep -qi "$MAC" &&
				fail "[$V] a's VF0 keeps the guest's MAC: $(ip link show "$pf" | grep 'vf 0 ')" ||
				pass "[$V] a took the guest's MAC off its VF0"
			phase=2
			;;
		esac
		return 0
	}
	a_migrate_qemu() {
		local out=$OUT/qmp-migrate.out
		t_mig=$(lab_now)
		python3 "$LAB_SRCDIR/tests/lab/qmp_migrate.py" "$QMP" migrate "tcp:10.0.9.3:$((PORT + 1))" --timeout 300 > "$out" 2>&1
		local st=$?
		t_mig_end=$(lab_now)
		# the orchestrator's part: QEMU leaves the guest's MAC on the VF it gave up
		ip link set "$pf" vf 0 mac 52:54:00:1a:a0:00
		cat "$out"
		line=$(tail -n1 "$out")
		[ $st = 0 ] && pass "[qemu] QMP migrate: $line" || vfail "[qemu] QMP migrate: $line"
		lab_result mh_qemu_qmp "\"$line\""
		lab_result mh_qemu_unplug_ms "$(lab_kv "$line" unplug_ms)"
		lab_result mh_qemu_total_ms "$(lab_kv "$line" total_ms)"
		lab_result mh_qemu_paused_ms "$(lab_kv "$line" downtime_ms)"
		lab_result mh_qemu_bytes "$(lab_kv "$line" bytes)"
		# QEMU's source stays, paused, after a completed migration
		[ $st = 0 ] && python3 "$LAB_SRCDIR/tests/lab/qmp.py" "$QMP" quit > /dev/null 2>&1
		phase=2
	}
	lab_iperf3_server "$OUT/server-$V.log" || vfail "[$V] a's iperf3 server did not start"
	vmm_cmd "$V"
	LAB_GUEST_HOOK=drive_a
	LAB_L2_TIMEOUT=$((SECS + 500)) lab_guest_run "$V-source" "$log" "${VMM_CMD[@]}"
	LAB_GUEST_HOOK=""
	if [ $phase != 2 ]; then
		vfail "[$V] the migration never ran (phase $phase): $(lab_guest_verdict "$V" "$log")"
		# b's destination waits for a guest that will not come
		[ -e "$LAB_PAIR/a-gave-up.$V" ] || pair_say "a-gave-up.$V"
	fi
	if [ "$V" = minivmm ]; then
		[ "$LAB_GUEST_RC" = 0 ] && grep -q 'migrated (the guest runs on the destination)' "$log" &&
			pass "[$V] the source exited 0: migrated, its VF released" || fail "[$V] the source: exit $LAB_GUEST_RC, $(tail -n2 "$log" | tr -d '\r')"
		crash=$(lab_crash_line "$log")
		[ -z "$crash" ] || fail "[$V] the source: $crash"
		env_fault "a's source" "$log"
	fi
	if pair_wait "b-done.$V" $((SECS + 300)); then
		[ "$(cut -d' ' -f2 "$LAB_PAIR/b-done.$V")" = 0 ] && pass "[$V] host b's checks passed" ||
			vfail "[$V] host b's checks failed (see host-b/results.txt)"
	else
		vfail "[$V] host b never finished"
	fi
	# the stream: over on the server's side too, and its longest stall around the move
	lab_iperf3_server_wait 60
	cp "$OUT/server-$V.log" "$LAB_RESULTS/mh-server-$V.log"
	grep -q 'receiver$' "$OUT/server-$V.log" && pass "[$V] a's iperf3 server saw the whole stream" || vfail "[$V] a's server has no final report"
	if [ -n "$t_mig" ]; then
		lab_result "mh_${V}_stall_ms" "$(lab_stall_ms "$OUT/server-$V.log" "$t_mig" "$(awk -v t="$t_mig_end" 'BEGIN { printf "%.3f", t + 60 }')")"
		lab_result "mh_${V}_stall_before_ms" "$(lab_stall_ms "$OUT/server-$V.log" "$t_stream" "$t_mig")"
		# what the guest sent meanwhile: a guest whose stream stops dirties less, and its VMM sends fewer bytes
		lab_result "mh_${V}_stream_mbit_before" "$(lab_stream_mbit "$OUT/server-$V.log" "$t_stream" "$t_mig")"
		lab_result "mh_${V}_stream_mbit_during" "$(lab_stream_mbit "$OUT/server-$V.log" "$t_mig" "$t_mig_end")"
	fi
}

for V in $VMMS; do
	a_run
done
[ $rc = 0 ] && echo "test-migrate-hosts[a]: PASS" || echo "test-migrate-hosts[a]: FAILED"
exit $rc
