#!/bin/bash
# The bench's lab side (runs inside L1 via tests/lab/lab.sh; scripts/bench.sh
# runs it and turns what it records into bench.json, bench.md and plots with
# scripts/bench-report.py; docs/benchmarks.md). Figures, not pass/fail.
#
#   bench-lab.sh [--quick]
#
# The same guest (guest.img, 512 MiB, 2 vCPUs, lab.cmd=bench-serve: iperf3
# and sockperf servers on one NIC) is booted once per VMM and network path:
#   vf     a VF of the lab's igb through VFIO (minivmm --vf, QEMU vfio-pci);
#          L1's end is the PF (10.0.4.1, guest 10.0.4.2)
#   vhost  virtio-net on tap0 with vhost-net (minivmm --net tap=..,vhost=on
#          when its --help offers vhost=, QEMU -netdev tap,vhost=on)
#   user   virtio-net on tap0, the VMM's own userspace backend (minivmm
#          --net tap=.. (,vhost=off when it has vhost), QEMU vhost=off);
#          L1's end is tap0 (10.0.5.1, guest 10.0.5.2)
# for minivmm and QEMU (-enable-kvm -machine q35 -cpu host), and once more
# under QEMU's microvm machine (pcie=on: the same virtio-pci devices) on the
# user path for the boot and memory figures only.
# L1 is the client of every measurement, in windows framed by snapshots of
# L1's counters (the VMM's threads' CPU time from /proc, vCPU threads apart;
# vhost threads; exits to userspace from a hist trigger on
# kvm:kvm_userspace_exit; all KVM exits; packets on L1's end, the PF or
# tap0), one VM at a time:
#   idle   nothing (the idle rate of exits)
#   tcp    iperf3 TCP, RUNS runs of SECS each way (-R: guest to L1)
#   udp    iperf3 -u -l 64 -b 0 (64-byte payloads, as fast as iperf3 goes),
#          UDP_RUNS runs of UDP_SECS each way
#   lat    sockperf ping-pong (UDP, 64 bytes, full round trip) for LAT_SECS,
#          or without sockperf in the guest ping -i 0.01 from L1
# Boot: exec to the guest's init line and to LAB-GUEST-READY (L1's clock,
# polled every 0.2 s) and the guest's own uptime at both; memory: the VMM's
# RSS and PSS at readiness with guest RAM (the mappings of at least the
# guest's RAM size) apart, and its CPU time by then, vCPU threads apart.
# Every machine also boots QUIET_BOOTS times (3, the full run 4) with
# `quiet` on the guest's command line (NAME VMM-user-quiet[-boot-N]): in
# this lab each byte of the guest's console is an exit to the VMM through
# L1's emulated CPU, about 10 s of a 25 s boot in every VMM, which buries
# the VMMs' own boot paths (set-up, firmware, kernel load); the quiet boots
# measure those with the same guest, devices and kernel.
# --quick: fewer and shorter runs (a few minutes in all); each machine boots
# BOOTS more times for the boot figures (2, the full run 3): one boot's
# figure moves by seconds here (CI of 706389c: minivmm's userspace-path boot
# 20.6 s, its vhost-path boot 14.9 s, in one run).
# Everything lands in $LAB_RESULTS/bench/: meta.txt (the run), and per boot
# a folder VMM-PATH[-boot-N] with meta.txt, the iperf3 JSON outputs, the
# latency tool's output, windows.txt (the snapshots), mem.txt and the
# console. A cell that cannot be measured gets its reason in meta.txt
# (status=na reason=...). Exit status 1 only when a minivmm boot failed
# (a crash, a hang: lab_guest_verdict's "fail:"); QEMU's failures are
# recorded.
# Environment: MINIVMM_BIN (required); LAB_BENCH_VMMS (default "minivmm
# qemu"), LAB_BENCH_PATHS ("vf vhost user"), LAB_BENCH_MICROVM (1),
# LAB_BENCH_RUNS, _SECS, _UDP_RUNS, _UDP_SECS, _LAT_SECS, _IDLE_SECS,
# _BOOTS, _QUIET_BOOTS override the mode's values.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

MODE=full
[ "${1:-}" = --quick ] && MODE=quick
if [ $MODE = quick ]; then
	RUNS=2 SECS=3 UDP_RUNS=1 UDP_SECS=2 LAT_SECS=2 IDLE_SECS=2 BOOTS=2 QUIET_BOOTS=3
else
	RUNS=5 SECS=10 UDP_RUNS=3 UDP_SECS=5 LAT_SECS=10 IDLE_SECS=5 BOOTS=3 QUIET_BOOTS=4
fi
RUNS=${LAB_BENCH_RUNS:-$RUNS} SECS=${LAB_BENCH_SECS:-$SECS}
UDP_RUNS=${LAB_BENCH_UDP_RUNS:-$UDP_RUNS} UDP_SECS=${LAB_BENCH_UDP_SECS:-$UDP_SECS}
LAT_SECS=${LAB_BENCH_LAT_SECS:-$LAT_SECS} IDLE_SECS=${LAB_BENCH_IDLE_SECS:-$IDLE_SECS}
BOOTS=${LAB_BENCH_BOOTS:-$BOOTS} QUIET_BOOTS=${LAB_BENCH_QUIET_BOOTS:-$QUIET_BOOTS}
VMMS=${LAB_BENCH_VMMS:-minivmm qemu}
PATHS=${LAB_BENCH_PATHS:-vf vhost user}
MEM=512
B=${MINIVMM_BIN:-}
MACVF=52:54:00:1a:b0:00
MACV=52:54:00:1a:00:20
D=$LAB_RESULTS/bench
rm -rf "$D"
mkdir -p "$D"
: > "$LAB_RESULTS/results.txt"
OUT=/tmp/bench
mkdir -p "$OUT"
# the guest's console may be long silent while L1 measures (the guest prints
# nothing on purpose); L1's own console is kept busy by this script
export LAB_L2_STALL=${LAB_L2_STALL:-1200}
export LAB_L2_TIMEOUT=${LAB_L2_TIMEOUT:-1500}
[ $MODE = quick ] && export LAB_L2_TRIES=${LAB_L2_TRIES:-2}
rc=0
say() { echo "bench: $*"; }
meta() { echo "$1=$2" >> "$D/meta.txt"; }
HZ=$(getconf CLK_TCK)

[ -n "$B" ] && [ -x "$B" ] || { say "MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { say "no /dev/kvm in L1"; exit 1; }
meta mode "$MODE"
meta runs "$RUNS"
meta secs "$SECS"
meta udp_runs "$UDP_RUNS"
meta udp_secs "$UDP_SECS"
meta lat_secs "$LAT_SECS"
meta idle_secs "$IDLE_SECS"
meta boots "$BOOTS"
meta mem_mib "$MEM"
meta l1_kernel "$(uname -r)"
meta qemu_version "$(qemu-system-x86_64 --version | head -n1)"
meta minivmm_version "$("$B" --version 2>&1 | head -n1)"
meta source "$(git -C "$LAB_SRCDIR" describe --always --dirty 2>/dev/null || echo unknown)"
meta iperf3_version "$(iperf3 --version 2>&1 | head -n1)"
meta started "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
MINIVMM_VHOST=0
"$B" --help 2>&1 | grep -q 'vhost=' && MINIVMM_VHOST=1
meta minivmm_vhost "$MINIVMM_VHOST"
meta minivmm_help_net "$("$B" --help 2>&1 | grep -m1 -- '--net' | tr -s ' ')"
# sockperf: L1's client (this machine's userland) and the guest's server (in
# guest.img when the host had it at build time: the guest says sockperf=yes)
SOCKPERF_L1=0
command -v sockperf > /dev/null && SOCKPERF_L1=1
meta sockperf_l1 "$SOCKPERF_L1"
[ -c /dev/vhost-net ] || modprobe vhost_net 2>/dev/null
VHOST_DEV=0
[ -c /dev/vhost-net ] && VHOST_DEV=1
meta vhost_net_dev "$VHOST_DEV"

img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_vf_tap_net || exit 1
pf=$LAB_PF vf=$LAB_VF
lab_kvm_stats > /dev/null # installs the exit counter
meta pf "$pf"
meta vf "$vf"
say "mode $MODE: PF $pf, VF $vf; VMMs $VMMS; paths $PATHS; TCP ${RUNS}x${SECS}s, UDP ${UDP_RUNS}x${UDP_SECS}s, latency ${LAT_SECS}s (sockperf in L1: $SOCKPERF_L1), minivmm vhost=$MINIVMM_VHOST"

# cpu_ticks STATFILE: utime + stime of a /proc stat file
cpu_ticks() { sed 's/.*) //' "$1" 2>/dev/null | awk '{ print $12 + $13 }'; }
# vhost_find PID: the vhost worker threads of VMM PID, as /proc paths in
# VHOST_TASKS: kernel threads "vhost-PID" (Linux < 6.4) or threads of PID
# itself named vhost-* (later kernels). Looked up once per boot, when the
# guest serves (its driver has started the device by then): a walk of
# /proc per snapshot costs seconds in L1.
VHOST_TASKS=()
vhost_find() {
	local pid=$1 p c
	VHOST_TASKS=()
	for p in /proc/[0-9]* /proc/"$pid"/task/*; do
		c=""
		read -r c < "$p/comm" 2>/dev/null
		case $c in "vhost-$pid") VHOST_TASKS+=("$p") ;; vhost-*) [[ $p == /proc/$pid/task/* ]] && VHOST_TASKS+=("$p") ;; esac
	done
}
vhost_stats() {
	local p n=0 t=0
	for p in "${VHOST_TASKS[@]}"; do
		n=$((n + 1)) t=$((t + $(cpu_ticks "$p/stat")))
	done
	echo "vhost_threads=$n cpu_vhost=$t"
}
# snap LABEL PID DEV: one line of counters (CPU in clock ticks of HZ):
# cpu_total is the process's (exited threads included), cpu_vcpu and
# cpu_other sum its live vCPU and other threads, and threads= lists each
# live thread as TID:v|o:TICKS. A window's CPU is taken per thread from
# that list (bench-report.py): neither the total minus the vCPU threads
# (read a moment apart) nor a sum over live threads (a thread that exits
# takes its time with it) can be trusted not to go backwards.
snap() {
	local pid=$2 dev=$3 vc=0 other=0 t c n k list=""
	for t in /proc/"$pid"/task/*; do
		c=""
		read -r c < "$t/comm" 2>/dev/null
		n=$(cpu_ticks "$t/stat")
		[ -n "$n" ] || continue
		if [[ $c =~ ^(vcpu[0-9]+|CPU\ [0-9]+/KVM)$ ]]; then vc=$((vc + n)) k=v; else other=$((other + n)) k=o; fi
		list="$list${list:+,}${t##*/}:$k:$n"
	done
	echo "$1 t=$(lab_now) hz=$HZ cpu_total=$(cpu_ticks "/proc/$pid/stat") cpu_vcpu=$vc cpu_other=$other threads=$list $(vhost_stats) $(lab_kvm_stats) rx_packets=$(cat "/sys/class/net/$dev/statistics/rx_packets") tx_packets=$(cat "/sys/class/net/$dev/statistics/tx_packets")"
}
# mem PID: RSS and PSS (kB) of the whole VMM and of its guest RAM mappings
# (those of at least MEM MiB), its CPU time at this moment
mem() {
	local pid=$1 vc=0 t c
	for t in /proc/"$pid"/task/*; do
		c=$(cat "$t/comm" 2>/dev/null)
		[[ $c =~ ^(vcpu[0-9]+|CPU\ [0-9]+/KVM)$ ]] && vc=$((vc + $(cpu_ticks "$t/stat")))
	done
	awk -v want=$((MEM * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { big = 0 }
		/^Size:/ { big = ($2 >= want) ; if (big) maps++ }
		/^Rss:/ { rss += $2; if (big) rrss += $2 }
		/^Pss:/ { pss += $2; if (big) rpss += $2 }
		END { printf "rss_kb=%d pss_kb=%d ram_rss_kb=%d ram_pss_kb=%d ram_maps=%d", rss, pss, rrss, rpss, maps }' "/proc/$pid/smaps"
	echo " hz=$HZ cpu_total=$(cpu_ticks "/proc/$pid/stat") cpu_vcpu=$vc threads=$(ls /proc/"$pid"/task | wc -l)"
}

# measure DIR PID DEV GIP: the windows and their clients, against the guest
# at GIP (L1's end is DEV)
measure() {
	local dir=$1 pid=$2 dev=$3 gip=$4 r w
	local W=$dir/windows.txt
	vhost_find "$pid"
	say "$(basename "$dir"): measuring (idle ${IDLE_SECS}s, TCP, UDP 64 B, latency); vhost threads: ${#VHOST_TASKS[@]}"
	snap idle-begin "$pid" "$dev" >> "$W"
	sleep "$IDLE_SECS"
	snap idle-end "$pid" "$dev" >> "$W"
	snap tcp-begin "$pid" "$dev" >> "$W"
	for ((r = 1; r <= RUNS; r++)); do
		for w in tx rx; do
			# tx: guest to L1 (the guest's iperf3 server sends: -R)
			timeout $((SECS + 30)) iperf3 -c "$gip" -t "$SECS" -J $([ $w = tx ] && echo -R) \
				> "$dir/tcp-$w-$r.json" 2> "$dir/tcp-$w-$r.err"
			say "$(basename "$dir"): TCP $w run $r: $(sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$dir/tcp-$w-$r.json" | tail -n1 | awk '{ printf "%.0f", $1 / 1e6 }') Mbit/s"
		done
	done
	snap tcp-end "$pid" "$dev" >> "$W"
	snap udp-begin "$pid" "$dev" >> "$W"
	for ((r = 1; r <= UDP_RUNS; r++)); do
		for w in tx rx; do
			timeout $((UDP_SECS + 30)) iperf3 -c "$gip" -u -l 64 -b 0 -t "$UDP_SECS" -J $([ $w = tx ] && echo -R) \
				> "$dir/udp-$w-$r.json" 2> "$dir/udp-$w-$r.err"
			say "$(basename "$dir"): UDP 64 B $w run $r done (status $?)"
		done
	done
	snap udp-end "$pid" "$dev" >> "$W"
	snap lat-begin "$pid" "$dev" >> "$W"
	if [ $SOCKPERF_L1 = 1 ] && grep -q 'LAB-BENCH-SERVING .*sockperf=yes' "$LAB_GUEST_LOG"; then
		echo "tool=sockperf" > "$dir/latency.txt"
		timeout $((LAT_SECS + 30)) sockperf ping-pong -i "$gip" -p 11111 -t "$LAT_SECS" -m 64 --full-rtt \
			>> "$dir/latency.txt" 2>&1
	else
		echo "tool=ping" > "$dir/latency.txt"
		timeout $((LAT_SECS + 30)) ping -i 0.01 -c $((LAT_SECS * 100)) -W 1 "$gip" >> "$dir/latency.txt" 2>&1 ||
			timeout $((LAT_SECS + 30)) busybox ping -c $((LAT_SECS * 20)) "$gip" >> "$dir/latency.txt" 2>&1
	fi
	snap lat-end "$pid" "$dev" >> "$W"
	say "$(basename "$dir"): latency: $(grep -E 'percentile 50.000|percentile 99.000|rtt|round-trip' "$dir/latency.txt" | tr -s ' ' | tr '\n' ';')"
}

# the hook of lab_guest_run (every 0.2 s while the VMM runs)
B_DIR="" B_DEV="" B_GIP="" B_MEASURE=0 t_init="" mem_done="" served="" t_stop=""
bench_hook() {
	local pid=$1 now
	if [ -z "$t_init" ] && grep -q 'lab-guest: init at' "$LAB_GUEST_LOG"; then
		t_init=$(lab_now)
	fi
	if [ -z "$mem_done" ] && [ -n "$LAB_GUEST_T_READY" ]; then
		mem_done=1
		echo "ready $(mem "$pid")" > "$B_DIR/mem.txt"
	fi
	if [ -z "$served" ] && grep -q 'LAB-BENCH-SERVING' "$LAB_GUEST_LOG"; then
		served=1
		echo "serving $(mem "$pid")" >> "$B_DIR/mem.txt"
		[ "$B_MEASURE" = 1 ] && measure "$B_DIR" "$pid" "$B_DEV" "$B_GIP"
		# the guest ends on a connection to its port 5999
		timeout 10 bash -c "echo stop > /dev/tcp/$B_GIP/5999" 2>/dev/null ||
			say "$(basename "$B_DIR"): could not reach the guest's stop port"
		t_stop=$(date +%s)
	fi
	if [ -n "$t_stop" ]; then
		now=$(date +%s)
		if [ $((now - t_stop)) -ge 60 ]; then
			say "$(basename "$B_DIR"): the VMM still runs 60 s after the guest was told to stop: stopping it"
			echo "poweroff=no" >> "$B_DIR/meta.txt"
			kill -TERM "$pid" 2>/dev/null
			t_stop=$((now + 100000))
		fi
	fi
	return 0
}
bench_retry_hook() {
	t_init="" mem_done="" served="" t_stop=""
	rm -f "$B_DIR"/*.json "$B_DIR"/*.err "$B_DIR/windows.txt" "$B_DIR/mem.txt" "$B_DIR/latency.txt"
}

# boot VMM PATH NAME MEASURE [APPEND]: one guest run; VMM minivmm, qemu or
# microvm; APPEND goes on the guest's command line (the quiet boots' `quiet`)
boot() {
	local vmm=$1 path=$2 name=$3 measure=$4 append=${5:-} dir mac ip peer dev cmdline log kind=qemu
	dir=$D/$name
	mkdir -p "$dir"
	local M=$dir/meta.txt
	: > "$M"
	echo "vmm=$vmm" >> "$M"
	echo "path=$path" >> "$M"
	mac=$MACVF ip=10.0.4.2 peer=10.0.4.1 dev=$pf
	if [ "$path" != vf ]; then mac=$MACV ip=10.0.5.2 peer=10.0.5.1 dev=tap0; fi
	# cells that cannot be measured, and why
	local na=""
	if [ "$path" = vhost ] && [ "$VHOST_DEV" = 0 ]; then
		na="vhost-net: not available in L1 (no /dev/vhost-net)"
	elif [ "$vmm" = minivmm ] && [ "$path" = vhost ] && [ "$MINIVMM_VHOST" = 0 ]; then
		na="not measured: minivmm has no vhost-net backend in this build"
	fi
	if [ -n "$na" ]; then
		echo "status=na" >> "$M"
		echo "reason=$na" >> "$M"
		say "$name: $na"
		return 0
	fi
	cmdline="console=ttyS0 root=/dev/vda ${append:+$append }lab.cmd=bench-serve lab.ip= lab.nic=$mac,$ip/24,$peer"
	echo "append=$append" >> "$M"
	local -a dv
	case "$vmm:$path" in
	minivmm:vf) dv=(--vf "$vf") ;;
	minivmm:vhost) dv=(--net "tap=tap0,mac=$mac,vhost=on") ;;
	minivmm:user)
		dv=(--net "tap=tap0,mac=$mac")
		[ "$MINIVMM_VHOST" = 1 ] && dv=(--net "tap=tap0,mac=$mac,vhost=off") ;;
	*:vf) dv=(-device "vfio-pci,host=$vf") ;;
	*:vhost) dv=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=on -device "virtio-net-pci,netdev=n0,mac=$mac") ;;
	*:user) dv=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off -device "virtio-net-pci,netdev=n0,mac=$mac") ;;
	esac
	case "$vmm" in
	minivmm)
		kind=minivmm
		# -v, as the other lab tests run it: minivmm logs a triple fault
		# ("triple fault: resetting") at info level, and lab_guest_verdict
		# needs that line to take it for the lab's documented environmental
		# failure (run again) rather than minivmm's
		set -- "$B" -v --mem "${MEM}M" --cpus 2 --readonly "${dv[@]}" -c "$cmdline" "$img" ;;
	qemu | microvm)
		# microvm with PCIe (GPEX): the same virtio-pci disk and NIC as q35
		lab_qemu_cmd "$([ "$vmm" = qemu ] && echo q35 || echo microvm)" "$MEM" "$cmdline" "$img" || return 1
		set -- "${LAB_QEMU_CMD[@]}" "${dv[@]}" ;;
	esac
	echo "cmd=$*" >> "$M"
	B_DIR=$dir B_DEV=$dev B_GIP=$ip B_MEASURE=$measure
	t_init="" mem_done="" served="" t_stop=""
	log=$dir/console.log
	LAB_GUEST_HOOK=bench_hook
	# shellcheck disable=SC2034 # read by lab_guest_try
	LAB_GUEST_RETRY_HOOK=bench_retry_hook
	if [ "$vmm" = microvm ]; then
		# not retried: whether microvm boots this guest at all is the question
		lab_guest_run "$name" "$log" "$@"
		LAB_GUEST_VERDICT=$(lab_guest_verdict qemu "$log")
	else
		lab_guest_try "$name" "$kind" "$log" "$@"
		echo "env_retries=$(sed -n "s/^${name}_env_retries=//p" "$LAB_RESULTS/results.txt" | tail -n1)" >> "$M"
	fi
	LAB_GUEST_HOOK=""
	{
		echo "verdict=$LAB_GUEST_VERDICT"
		echo "exit=$LAB_GUEST_RC"
		echo "t0=$LAB_GUEST_T0"
		echo "t_init=$t_init"
		echo "t_ready=$LAB_GUEST_T_READY"
		echo "guest_up_init=$(tr -d '\r' < "$log" | sed -n 's/.*lab-guest: init at uptime \([0-9.]*\)s.*/\1/p' | head -n1)"
		echo "guest_up_ready=$(tr -d '\r' < "$log" | sed -n 's/.*LAB-GUEST-READY uptime=\([0-9.]*\).*/\1/p' | head -n1)"
		echo "serving=$(tr -d '\r' < "$log" | grep -m1 'LAB-BENCH-SERVING' | sed 's/.*LAB-BENCH-SERVING //')"
		echo "guest_fail=$(tr -d '\r' < "$log" | grep -m1 'LAB-BENCH FAIL' | cut -c1-200)"
		echo "last_line=$(tr -d '\r' < "$log" | grep -v '^\s*$' | tail -n1 | cut -c1-200)"
	} >> "$M"
	case $LAB_GUEST_VERDICT in
	ok) echo "status=ok" >> "$M" ;;
	*)
		echo "status=failed" >> "$M"
		echo "reason=$LAB_GUEST_VERDICT" >> "$M"
		if [ "$kind" = minivmm ] && [ "${LAB_GUEST_VERDICT%%:*}" = fail ]; then
			say "FAIL: $name: $LAB_GUEST_VERDICT"
			rc=1
		fi ;;
	esac
	lab_result "bench_${name//-/_}_verdict" "\"$LAB_GUEST_VERDICT\""
	say "$name: $LAB_GUEST_VERDICT; exec to ready $( [ -n "$LAB_GUEST_T_READY" ] && lab_elapsed "$LAB_GUEST_T0" "$LAB_GUEST_T_READY" || echo never) s"
}

for p in $PATHS; do
	for v in $VMMS; do
		boot "$v" "$p" "$v-$p" 1
	done
done
[ "${LAB_BENCH_MICROVM:-1}" = 1 ] && boot microvm user microvm-user 0
for ((i = 1; i <= BOOTS; i++)); do
	for v in $VMMS $([ "${LAB_BENCH_MICROVM:-1}" = 1 ] && echo microvm); do
		boot "$v" user "$v-user-boot-$i" 0
	done
done
# the quiet boots (see the top): QUIET_BOOTS each (the quick run too: one
# boot's figure moves by seconds in this lab, 2026-12-03's boot-phases.sh
# saw 7.6-8.9 s for minivmm and 14.1-19.9 s for QEMU q35 in one run)
for ((i = 0; i < QUIET_BOOTS; i++)); do
	for v in $VMMS $([ "${LAB_BENCH_MICROVM:-1}" = 1 ] && echo microvm); do
		boot "$v" user "$v-user-quiet$([ $i -gt 0 ] && echo "-boot-$i")" 0 quiet
	done
done
meta finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "done: $D"
exit $rc
