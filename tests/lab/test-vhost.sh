#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-vhost): virtio-net
# on the kernel's vhost-net (--net tap=...,vhost=on), in one L1 boot
# (docs/lab.md, "The vhost-net test"). L1 loads vhost_net (l1-run.sh).
#
#  1. minivmm says it uses the vhost-net backend, and that vhost-net moves
#     the frames once the guest's driver is up;
#  2. the guest (lab.cmd=reload-test) pings L1 over tap0 and runs iperf3
#     both ways; around the iperf3 window L1 snapshots minivmm's CPU time
#     outside its vCPU threads, the vhost worker's, KVM's exits to minivmm
#     (lab_kvm_stats uexits) and the guest's packet counts: minivmm must be
#     out of the data path (its own threads near idle, exits to it per packet
#     near zero) while the vhost worker carries the load;
#  3. the guest unloads virtio_net (the device is reset: minivmm takes the
#     rings back from vhost) and loads it again (DRIVER_OK: vhost gets them
#     again), then pings and runs iperf3 again over the new interface;
#  4. with LAB_VHOST_COMPARE=1 (the default), the same guest with vhost=off
#     (nic-test only) for the userspace figures next to vhost's.
#
# Environment: MINIVMM_BIN (required), LAB_VHOST_IPERF_TIME (iperf3 seconds
# per direction, 8), LAB_VHOST_COMPARE (1), LAB_L2_TIMEOUT (400),
# LAB_L2_STALL (150).
# Results: $LAB_RESULTS/results.txt, vhost-marks-*.txt (L1 snapshots),
# l2-vhost-*.log (the guests' consoles and minivmm's output).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

SECS=${LAB_VHOST_IPERF_TIME:-8}
COMPARE=${LAB_VHOST_COMPARE:-1}
MACV=52:54:00:1a:00:30
B=${MINIVMM_BIN:-}
rc=0
RES=$LAB_RESULTS/results.txt
: > "$RES"
OUT=/tmp/vhost-test
mkdir -p "$OUT"

fail() { echo "test-vhost: FAIL: $*"; rc=1; }
pass() { echo "test-vhost: ok: $*"; }
say() { echo "test-vhost: $*"; }
calc() { awk "BEGIN { $1 }"; }

[ -c /dev/kvm ] || { echo "test-vhost: no /dev/kvm in L1"; exit 1; }
[ -n "$B" ] && [ -x "$B" ] || { echo "test-vhost: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/vhost-net ] || modprobe vhost_net 2>/dev/null
[ -c /dev/vhost-net ] || { echo "test-vhost: no /dev/vhost-net in L1 (vhost_net not loaded)"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_tap_create tap0 > /dev/null || exit 1
ip addr add 10.0.5.1/24 dev tap0
iperf3 -s > "$LAB_RESULTS/iperf3-server.log" 2>&1 &
iperf_pid=$!
trap 'kill $iperf_pid 2>/dev/null; [ -n "${LAB_GUEST_PID:-}" ] && kill -KILL $LAB_GUEST_PID 2>/dev/null' EXIT
lab_kvm_stats > /dev/null # installs the exit counter early

# CPU ms of the vhost worker of VMM PID (a kernel thread "vhost-PID" on
# kernels before 6.4, a thread of the VMM's own after: both looked up)
vhost_ms() {
	local pid=$1 t ticks=0 hz
	hz=$(getconf CLK_TCK)
	for t in $(pgrep -x "vhost-$pid") $(grep -lx "vhost-$pid" /proc/"$pid"/task/*/comm 2>/dev/null | sed 's|/comm$||;s|.*/||'); do
		[ -r "/proc/$t/stat" ] || continue
		ticks=$((ticks + $(sed 's/.*) //' "/proc/$t/stat" | awk '{ print $12 + $13 }')))
	done
	echo $((ticks * 1000 / hz))
}
vmm=""
snapshot() { # LABEL: one line of L1 counters
	local vcpu_ms=NA other_ms=NA vh=NA t ks
	# the exit counters first, while the guest is quiet after its mark
	t=$(lab_now) ks=$(lab_kvm_stats)
	if [ -n "$vmm" ] && [ -d "/proc/$vmm" ]; then
		other_ms=$(lab_thread_cpu_ms "$vmm" '^(vcpu|vhost)')
		vcpu_ms=$(( $(lab_thread_cpu_ms "$vmm" '^vhost') - other_ms ))
		vh=$(vhost_ms "$vmm")
	fi
	echo "$1 t=$t $ks tap_rx=$(cat /sys/class/net/tap0/statistics/rx_packets) tap_tx=$(cat /sys/class/net/tap0/statistics/tx_packets) vmm_ms=$other_ms vcpu_ms=$vcpu_ms vhost_ms=$vh"
}
seen=0 nmark=0 nidle=0 MARKS=""
mark_hook() {
	local n m w
	vmm=$1
	n=$(grep -c 'LAB-MARK ' "$LAB_GUEST_LOG")
	while [ "$n" -gt "$seen" ]; do
		seen=$((seen + 1))
		m=$(grep 'LAB-MARK ' "$LAB_GUEST_LOG" | sed -n "${seen}p" | tr -d '\r' | sed 's/.*LAB-MARK //')
		# the k-th traffic window: begin1 end1 begin2 ...; the k-th idle
		# window (lab.idle, the same framing without traffic): begin_idle1 ...
		w=${m#* if=}
		m=${m%% *}
		if [ "$w" = idle ]; then
			[ "$m" = begin ] && nidle=$((nidle + 1))
			snapshot "${m}_idle$nidle" >> "$MARKS"
		else
			[ "$m" = begin ] && nmark=$((nmark + 1))
			snapshot "$m$nmark" >> "$MARKS"
		fi
	done
}
retry_hook() {
	kill "$iperf_pid" 2>/dev/null
	wait "$iperf_pid" 2>/dev/null
	iperf3 -s >> "$LAB_RESULTS/iperf3-server.log" 2>&1 &
	iperf_pid=$!
	cp "$MARKS" "$MARKS.env-retry"; : > "$MARKS"
	seen=0 nmark=0 nidle=0
}
snap() { grep "^$1 " "$MARKS" | head -n1; }
# delta KEY N: end minus begin of KEY in window N
delta() {
	local a b
	a=$(lab_kv "$(snap "begin$2")" "$1") b=$(lab_kv "$(snap "end$2")" "$1")
	case $1 in uexit_r*) [ -n "$b" ] && a=${a:-0} ;; esac
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" != NA ] && [ "$b" != NA ] && echo $((b - a))
}
wlen_ms() { calc "printf \"%d\", ($(lab_kv "$(snap "end$1")" t) - $(lab_kv "$(snap "begin$1")" t)) * 1000"; }

# boot MODE CMD: one guest with --net ...,vhost=MODE running lab.cmd=CMD
boot() {
	local mode=$1 cmd=$2 name log
	name=vhost-$mode
	log=$LAB_RESULTS/l2-$name.log
	MARKS=$LAB_RESULTS/vhost-marks-$mode.txt
	: > "$MARKS"
	seen=0 nmark=0 nidle=0 vmm=""
	set -- "$B" -v --mem 384M --readonly --net "tap=tap0,mac=$MACV,vhost=$mode" \
		-c "console=ttyS0 root=/dev/vda lab.cmd=$cmd lab.ip= lab.nic=$MACV,10.0.5.2/24,10.0.5.1,$SECS lab.idle=$((2 * SECS))" "$img"
	LAB_GUEST_HOOK=mark_hook LAB_GUEST_RETRY_HOOK=retry_hook
	LAB_L2_TIMEOUT=${LAB_L2_TIMEOUT:-400} LAB_L2_STALL=${LAB_L2_STALL:-150}
	lab_guest_try "$name" minivmm "$log" "$@"
	LAB_GUEST_HOOK=""
	vmm=""
	lab_result "${name}_verdict" "$LAB_GUEST_VERDICT"
	[ -n "$LAB_GUEST_T_READY" ] && lab_result "${name}_boot_s" "$(lab_elapsed "$LAB_GUEST_T0" "$LAB_GUEST_T_READY")"
	say "L1 snapshots ($name):"
	sed 's/^/    | /' "$MARKS"
	tr -d '\r' < "$log" > "$OUT/console-$mode"
	C=$OUT/console-$mode
	[ "$LAB_GUEST_VERDICT" = ok ] && pass "$name: guest run ok" || fail "$name: guest run: $LAB_GUEST_VERDICT"
	# the guest's console went through KVM's coalesced transmit register:
	# its whole output (LAB-GUEST-RC above is its last line) and no exit per THR write
	local cw
	cw=$(sed -n 's/.*port writes coalesced (no exit): \([0-9]*\).*/\1/p' "$C" | tail -n1)
	lab_result "${name}_coalesced_writes" "${cw:-NA}"
	if grep -q 'transmit writes are coalesced' "$C"; then
		[ "${cw:-0}" -gt 1000 ] && pass "$name: ${cw} console bytes sent without an exit each (coalesced)" ||
			fail "$name: the console's transmit writes were to be coalesced, minivmm counted ${cw:-none}"
	else
		say "$name: this L1's KVM does not coalesce port writes (no KVM_CAP_COALESCED_PIO): every console byte exits"
	fi
}

# window MODE N: the figures of window N of the boot with vhost=MODE
window() {
	local mode=$1 n=$2 p=vhost_${1}_w$2 line d v z pk u ms vh wl
	for d in tx rx; do
		line=$(grep "LAB-IPERF3 if=[a-z0-9]* dir=$d " "$C" | sed -n "${n}p")
		v=$(lab_kv "$line" mbps) z=$(lab_kv "$line" zero_secs)
		lab_result "${p}_${d}_mbps" "${v:-NA}"
		if [ -n "$v" ] && [ "$z" = 0 ]; then
			pass "vhost=$mode window $n: iperf3 $d $v Mbit/s, every second carried data"
		else
			fail "vhost=$mode window $n: iperf3 $d: ${line:-no result}"
		fi
	done
	gc() { lab_kv "$(grep "LAB-COUNT if=[a-z0-9]* phase=$1 " "$C" | sed -n "${n}p")" "$2"; }
	pk=$(( $(gc after rx_packets) + $(gc after tx_packets) - $(gc before rx_packets) - $(gc before tx_packets) ))
	u=$(delta uexits "$n") ms=$(delta vmm_ms "$n") vh=$(delta vhost_ms "$n") wl=$(wlen_ms "$n")
	# the idle window before it: what the framing itself costs (console lines)
	iu=$(delta uexits "_idle$n") ims=$(delta vmm_ms "_idle$n") il=$(wlen_ms "_idle$n")
	lab_result "${p}_idle_vmm_exits" "${iu:-NA}"
	lab_result "${p}_idle_vmm_thread_ms" "${ims:-NA}"
	lab_result "${p}_idle_window_ms" "${il:-NA}"
	lab_result "${p}_packets" "$pk"
	lab_result "${p}_window_ms" "${wl:-NA}"
	lab_result "${p}_vmm_exits" "${u:-NA}"
	lab_result "${p}_vmm_thread_ms" "${ms:-NA}"
	lab_result "${p}_vcpu_thread_ms" "$(delta vcpu_ms "$n" || echo NA)"
	lab_result "${p}_vhost_worker_ms" "${vh:-NA}"
	lab_result "${p}_kvm_exits" "$(delta exits "$n" || echo NA)"
	if [ "$pk" -gt 0 ]; then
		[ -n "$u" ] && lab_result "${p}_vmm_exits_per_1000_packets" "$(calc "printf \"%.3f\", $u * 1000 / $pk")"
		[ -n "$ms" ] && lab_result "${p}_vmm_thread_us_per_packet" "$(calc "printf \"%.2f\", $ms * 1000 / $pk")"
	fi
	# the guest's console (COM1) in each window: a kernel message printed
	# during the traffic (say the clocksource watchdog's five lines) costs an
	# exit or two per byte, and is no packet's: left out of the comparison
	cu=$(lab_console_exits "$(delta con_pio "$n")" "$(delta con_thr "$n")" "$C")
	icu=$(lab_console_exits "$(delta con_pio "_idle$n")" "$(delta con_thr "_idle$n")" "$C")
	lab_result "${p}_console_exits" "${cu:-NA}"
	lab_result "${p}_idle_console_exits" "${icu:-NA}"
	if [ -n "$u" ] && [ -n "$cu" ]; then u=$((u - cu)); fi
	if [ -n "$iu" ] && [ -n "$icu" ]; then iu=$((iu - icu)); fi
	W_PK=$pk W_U=${u:-} W_CU=${cu:-?} W_MS=${ms:-} W_VH=${vh:-} W_LEN=${wl:-} W_EXTRA=""
	if [ -n "$u" ] && [ -n "$iu" ] && [ -n "$il" ] && [ "$il" -gt 0 ] && [ "$pk" -gt 0 ]; then
		W_EXTRA=$(calc "x = $u - $iu * $wl / $il; printf \"%.3f\", (x < 0 ? 0 : x) * 1000 / $pk")
		lab_result "${p}_vmm_exits_per_1000_packets_over_idle_rate" "$W_EXTRA"
	fi
}

# --- 1-3: vhost=on, with a driver reload -------------------------------------
boot on reload-test
grep -q 'net0: vhost-net backend' "$C" && pass "(1) minivmm: net0: vhost-net backend" ||
	fail "(1) no 'net0: vhost-net backend' in minivmm's log"
moves=$(grep -c 'net0: the vhost-net backend moves the frames' "$C")
lab_result vhost_on_handovers "$moves"
[ "$moves" -ge 2 ] && pass "(1, 3) vhost-net took the rings $moves times (boot, and after the reload)" ||
	fail "(1, 3) vhost-net took the rings $moves times, not 2 (boot, reload)"
grep -E 'net0: .*(does not take the rings|walks its rings itself|needs reset|does not give)' "$C" | sed 's/^/    | /'
grep -qE 'net0: .*(does not take the rings|needs reset|does not give)' "$C" &&
	fail "(1) minivmm reports a vhost-net failure (above)"
pings=$(grep -c 'LAB-PING OK' "$C")
[ "$pings" -ge 2 ] && pass "(2, 3) the guest pings L1 before and after the reload" ||
	fail "(2, 3) $pings pings answered, not 2 (before and after the reload)"
grep -q 'LAB-RELOAD rmmod=0 insmod=0' "$C" && pass "(3) the guest unloaded and loaded virtio_net" ||
	fail "(3) the driver reload: $(grep 'LAB-RELOAD rmmod' "$C" || echo 'no LAB-RELOAD line')"
for n in 1 2; do
	window on "$n"
	# out of the data path: minivmm's own threads near idle during the
	# window (at most 100 ms, or 5% of it), exits to minivmm below 1 per
	# 1000 packets (per-packet involvement would be 1000 or more)
	lim=$(calc "x = ${W_LEN:-0} * 0.05; printf \"%d\", (x < 100 ? 100 : x)")
	if [ -n "$W_MS" ] && [ "$W_MS" -le "$lim" ]; then
		pass "(2) window $n: minivmm's own threads used $W_MS ms CPU in ${W_LEN} ms ($W_PK packets; vhost worker ${W_VH:-?} ms)"
	else
		fail "(2) window $n: minivmm's own threads used ${W_MS:-?} ms CPU in ${W_LEN:-?} ms (limit $lim; $W_PK packets)"
	fi
	# exits to minivmm above the idle window's rate: at most 1 per 1000
	# packets (per-packet involvement would be 1000 or more); the console
	# UART's exits are counted apart (window above)
	if [ -n "$W_EXTRA" ] && calc "exit !($W_EXTRA <= 1)"; then
		pass "(2) window $n: $W_U exits to minivmm for $W_PK packets (and $W_CU to the console UART), $W_EXTRA per 1000 above the idle window's rate"
	else
		fail "(2) window $n: ${W_U:-?} exits to minivmm for $W_PK packets (and $W_CU to the console UART), ${W_EXTRA:-?} per 1000 above the idle window's rate"
	fi
	[ -n "$W_VH" ] && [ "$W_VH" -gt 0 ] && pass "(2) window $n: the vhost worker ran $W_VH ms" ||
		fail "(2) window $n: no CPU time of a vhost-$( [ -n "$vmm" ] && echo "$vmm" || echo PID) worker (${W_VH:-none})"
done
grep -E 'net0: (tx|rx) ' "$C" | sed 's/^/    | /' # the userspace path's counters (-v)

# --- 4: vhost=off next to it --------------------------------------------------
if [ "$COMPARE" = 1 ]; then
	boot off nic-test
	grep -q 'net0: userspace backend (vhost=off)' "$C" && pass "(4) vhost=off: net0: userspace backend (vhost=off)" ||
		fail "(4) no 'net0: userspace backend (vhost=off)' in minivmm's log"
	window off 1
	for d in tx rx; do
		a=$(sed -n "s/^vhost_on_w1_${d}_mbps=//p" "$RES") b=$(sed -n "s/^vhost_off_w1_${d}_mbps=//p" "$RES")
		[ -n "$a" ] && [ -n "$b" ] && [ "$a" != NA ] && [ "$b" != NA ] &&
			lab_result "ratio_vhost_over_userspace_${d}" "$(calc "if ($b > 0) printf \"%.2f\", $a / $b; else print \"nan\"")"
	done
fi

say "results:"
sed 's/^/  /' "$RES"
[ $rc = 0 ] && say "PASS" || say "FAILED"
exit $rc
