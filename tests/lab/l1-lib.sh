# Helpers for scripts that run inside the lab's L1 (source "$LAB_LIB").
# shellcheck shell=bash
# Bash. Every function prints what it creates on stdout and returns non-zero
# with a message on stderr when it fails.
#
#   lab_pf                          the igb PF's netdev name
#   lab_vfs_create PF N [MACPFX]    PF up, N VFs, MACs MACPFX:0N; prints VF PCI addrs
#   lab_vf_pci PF I                 PCI address of VF I of PF
#   lab_vf_bind_vfio PCI            bind a device to vfio-pci; prints /dev/vfio/<group>
#   lab_bridge_create BR [IP/LEN] [PORT...]
#   lab_tap_create TAP [BR]         persistent tap (for QEMU or minivmm), up
#   lab_host_create NS IP/LEN BR    a network namespace ("host") on a veth to BR
#   lab_ns NS CMD...                run CMD in namespace NS
#   lab_now                         seconds since the epoch, with ns
#   lab_wait_line FILE REGEX SECS [PID [STALL]]  wait until FILE has a line matching REGEX
#   lab_result KEY VALUE            append "KEY=VALUE" to $LAB_RESULTS/results.txt
#   lab_guest_img                   path of guest.img (a private writable copy)
#   lab_kvm_stats                   KVM's counters, summed over all VMs in L1:
#                                   "exits=N io_exits=N mmio_exits=N ... uexits=N"
#                                   (uexits: KVM_RUN returns to the VMM, from a
#                                   hist trigger on kvm:kvm_userspace_exit;
#                                   con_pio: port I/O to the guest's console
#                                   UART, COM1, from one on kvm:kvm_pio)
#   lab_irq_count REGEX             sum of the /proc/interrupts rows whose
#                                   description matches REGEX (all CPUs)
#   lab_thread_cpu_ms PID [EXCL]    CPU time (ms, user+system) of PID's threads
#                                   whose name does not match REGEX EXCL
#   lab_kv LINE KEY                 the value of KEY=VALUE in LINE
#   lab_guest_run NAME LOG CMD...   run a VMM until it exits, watching its console
#   lab_crash_line LOG              a crash, sanitizer or KVM error line of a VMM's output
#   lab_guest_verdict KIND LOG      after lab_guest_run: "ok", "env: WHY" or "fail: WHY"
#   lab_guest_try NAME KIND LOG CMD...  lab_guest_run, again only on an "env:" verdict
#   lab_vmm_hugepages PID SIZE      how guest RAM of SIZE MiB is mapped in PID (2 MiB?)
#   lab_vf_tap_net                  the stream test's and the bench's L1 network:
#                                   2 VFs of the PF, VF 0 on vfio-pci, the PF at
#                                   10.0.4.1/24, tap0 at 10.0.5.1/24 (sets
#                                   LAB_PF, LAB_VF)
#   lab_failover_net ADDR N TAP...  the failover tests' L1 network: N VFs of the
#                                   PF on vfio-pci, the taps, br0 = { PF, taps }
#                                   with the PF's MAC and ADDR (LAB_PF, LAB_VFS)
#   lab_iperf3_server LOG           iperf3 -s for one test, every 0.1 s interval
#                                   line stamped with L1's clock (pid in
#                                   LAB_SERVER_PID); an earlier one is stopped
#                                   first, and it fails unless it listens
#   lab_iperf3_server_wait SECS     up to SECS for it to end by itself, then
#                                   stop it (lab_iperf3_server_stop)
#   lab_stall_ms LOG FROM TO        the longest run of such intervals in [FROM,
#                                   TO] (L1 seconds) without a byte, in ms

: "${LAB_RESULTS:=/run/lab}"
LAB_CACHE=${MINIVMM_LAB_CACHE:-/var/cache/minivmm-lab}

lab_err() { echo "l1-lib: $*" >&2; return 1; }

lab_now() { date +%s.%N; }

# seconds between two lab_now stamps, 2 decimals
lab_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

lab_result() {
	echo "$1=$2" >> "$LAB_RESULTS/results.txt"
	echo "lab-result: $1=$2"
}

lab_pf() {
	local n drv
	for n in /sys/class/net/*; do
		[ -e "$n/device/driver" ] || continue
		drv=$(basename "$(readlink "$n/device/driver")")
		if [ "$drv" = igb ] && [ -e "$n/device/sriov_totalvfs" ]; then
			basename "$n"
			return 0
		fi
	done
	modprobe igb 2>/dev/null && udevadm settle 2>/dev/null
	for n in /sys/class/net/*; do
		[ -e "$n/device/sriov_totalvfs" ] && { basename "$n"; return 0; }
	done
	lab_err "no SR-IOV PF (igb) found"
}

lab_vf_pci() {
	basename "$(readlink "/sys/class/net/$1/device/virtfn$2")"
}

lab_vfs_create() {
	local pf=$1 n=$2 pfx=${3:-52:54:00:1a:b0} i dev=/sys/class/net/$1/device
	ip link set "$pf" up || return 1
	if [ "$(cat "$dev/sriov_numvfs")" != "$n" ]; then
		echo 0 > "$dev/sriov_numvfs"
		echo "$n" > "$dev/sriov_numvfs" || lab_err "cannot create $n VFs on $pf" || return 1
	fi
	for ((i = 0; i < n; i++)); do
		ip link set "$pf" vf "$i" mac "$(printf '%s:%02x' "$pfx" "$i")" || return 1
	done
	for ((i = 0; i < n; i++)); do
		lab_vf_pci "$pf" "$i"
	done
}

lab_vf_bind_vfio() {
	local pci=$1 d=/sys/bus/pci/devices/$1 group
	[ -d "$d" ] || lab_err "no PCI device $pci" || return 1
	modprobe vfio-pci || return 1
	if [ -e "$d/driver" ]; then
		echo "$pci" > "$d/driver/unbind" || return 1
	fi
	echo vfio-pci > "$d/driver_override"
	echo "$pci" > /sys/bus/pci/drivers_probe
	group=$(basename "$(readlink "$d/iommu_group")")
	[ -e "/dev/vfio/$group" ] || lab_err "$pci: no /dev/vfio/$group after binding" || return 1
	echo "/dev/vfio/$group"
}

lab_bridge_create() {
	local br=$1 ip=${2:-} p
	shift 2 2>/dev/null || shift $#
	modprobe bridge 2>/dev/null
	ip link show "$br" >/dev/null 2>&1 || ip link add "$br" type bridge || return 1
	ip link set "$br" type bridge stp_state 0 forward_delay 0 2>/dev/null
	for p in "$@"; do
		ip link set "$p" master "$br" && ip link set "$p" up || return 1
	done
	[ -n "$ip" ] && { ip addr add "$ip" dev "$br" || return 1; }
	ip link set "$br" up
	echo "$br"
}

lab_tap_create() {
	local tap=$1 br=${2:-}
	modprobe tun 2>/dev/null
	[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
	ip tuntap add dev "$tap" mode tap || return 1
	[ -n "$br" ] && { ip link set "$tap" master "$br" || return 1; }
	ip link set "$tap" up
	echo "$tap"
}

lab_vf_tap_net() {
	LAB_PF=$(lab_pf) || return 1
	lab_vfs_create "$LAB_PF" 2 > /dev/null || return 1
	LAB_VF=$(lab_vf_pci "$LAB_PF" 0) || return 1
	lab_vf_bind_vfio "$LAB_VF" > /dev/null || return 1
	ip addr add 10.0.4.1/24 dev "$LAB_PF" || return 1
	lab_tap_create tap0 > /dev/null || return 1
	ip addr add 10.0.5.1/24 dev tap0
}

lab_failover_net() {
	local addr=$1 n=$2 i t
	shift 2
	LAB_PF=$(lab_pf) || return 1
	lab_vfs_create "$LAB_PF" "$n" > /dev/null || return 1
	LAB_VFS=()
	for ((i = 0; i < n; i++)); do
		LAB_VFS+=("$(lab_vf_pci "$LAB_PF" "$i")")
		lab_vf_bind_vfio "${LAB_VFS[$i]}" > /dev/null || return 1
	done
	for t in "$@"; do
		lab_tap_create "$t" > /dev/null || return 1
	done
	lab_bridge_create br0 "" "$LAB_PF" "$@" > /dev/null || return 1
	ip link set br0 address "$(cat "/sys/class/net/$LAB_PF/address")"
	ip addr add "$addr" dev br0
}

lab_host_create() {
	local ns=$1 ip=$2 br=$3
	ip netns add "$ns" || return 1
	ip link add "v-$ns" type veth peer name eth0 netns "$ns" || return 1
	ip link set "v-$ns" master "$br" && ip link set "v-$ns" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ip" dev eth0
	ip -n "$ns" link set eth0 up
	echo "$ns"
}

lab_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# lab_wait_line FILE REGEX SECS [PID [STALL]]: 0 when a line matches; 1 after
# SECS, when PID (if given) has exited first, or when FILE has not grown for
# STALL seconds (if given)
lab_wait_line() {
	local f=$1 re=$2 secs=$3 pid=${4:-} stall=${5:-} end now size last_size=-1 last_t
	end=$(($(date +%s) + secs))
	last_t=$(date +%s)
	while :; do
		now=$(date +%s)
		[ "$now" -lt "$end" ] || { echo "l1-lib: no /$re/ in $f after ${secs}s" >&2; return 1; }
		grep -Eq "$re" "$f" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -Eq "$re" "$f" 2>/dev/null && return 0
			return 1
		fi
		if [ -n "$stall" ]; then
			size=$(stat -c %s "$f" 2>/dev/null || echo 0)
			if [ "$size" != "$last_size" ]; then
				last_size=$size
				last_t=$now
			elif [ $((now - last_t)) -ge "$stall" ]; then
				echo "l1-lib: $f has not grown for ${stall}s: stalled" >&2
				return 1
			fi
		fi
		sleep 0.2
	done
}

# lab_guest_img [DEST]: copy guest.img out of the (read-only) cache into a
# writable file and print its path
lab_guest_img() {
	local dest=${1:-/tmp/guest.img}
	cp --sparse=always "$LAB_CACHE/guest/guest.img" "$dest" || return 1
	echo "$dest"
}

# KVM statistics (debugfs) and a count of exits to userspace (tracefs hist
# trigger, installed on first use); values are cumulative, take differences.
# The two hists a window's figures subtract (exits to userspace, and the
# console's port I/O in them) are read first, each file once, one right
# after the other: a guest that prints while a snapshot is being taken
# (a late snapshot, a loaded host) then moves both together instead of
# landing in one count and not the other (CI, 2026-12-03: 114 console exits
# between two reads of one snapshot made lab-vf's window fail its bound)
lab_kvm_stats() {
	local d=/sys/kernel/debug/kvm t=/sys/kernel/tracing ev k out="" pio evh pioh
	[ -d "$d" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -e "$t/events" ] || mount -t tracefs tracefs "$t" 2>/dev/null
	ev=$t/events/kvm/kvm_userspace_exit
	if [ -e "$ev/trigger" ] && ! grep -q '^hist' "$ev/trigger"; then
		echo 'hist:keys=reason' > "$ev/trigger" 2>/dev/null
	fi
	# port I/O per port and direction: the guest's console (COM1,
	# 0x3f8-0x3ff) costs an exit or two per byte it prints, whatever the
	# network does (con_pio: every access KVM saw, reads and writes;
	# con_thr: of them, the writes to the transmit register 0x3f8, which a
	# VMM that coalesces them (minivmm, KVM_CAP_COALESCED_PIO) takes without
	# an exit: lab_console_exits)
	pio=$t/events/kvm/kvm_pio
	if [ -e "$pio/trigger" ] && ! grep -q '^hist' "$pio/trigger"; then
		echo 'hist:keys=port,rw' > "$pio/trigger" 2>/dev/null
	fi
	evh=$(cat "$ev/hist" 2>/dev/null)
	pioh=$(grep -q '^hist' "$pio/trigger" 2>/dev/null && cat "$pio/hist" 2>/dev/null)
	if [ -n "$pioh" ]; then
		out="$out $(echo "$pioh" | sed -n 's/^{ *port: *\([0-9]*\), *rw: *\([0-9]*\) *} *hitcount: *\([0-9]*\).*/\1 \2 \3/p' |
			awk '$1 >= 1016 && $1 <= 1023 { s += $3 } $1 == 1016 && $2 == 1 { w += $3 }
				END { printf "con_pio=%d con_thr=%d", s, w }')"
	else
		out="$out con_pio=NA con_thr=NA"
	fi
	# per KVM_EXIT_* reason: uexit_r2 (IO), uexit_r6 (MMIO), uexit_r10 (INTR), ...
	out="$out $(echo "$evh" | sed -n 's/^{ *reason: *\([0-9]*\) *} *hitcount: *\([0-9]*\).*/uexit_r\1=\2/p' | tr '\n' ' ')"
	out="$out uexits=$(echo "$evh" | sed -n 's/^ *Hits: *\([0-9]*\).*/\1/p' | grep . || echo NA)"
	for k in exits io_exits mmio_exits irq_exits irq_injections halt_exits; do
		out="$out $k=$(cat "$d/$k" 2>/dev/null || echo NA)"
	done
	echo "${out# }"
}

# lab_console_exits CON_PIO CON_THR LOG: how many of a window's console
# accesses (lab_kvm_stats' deltas) exited to the VMM: all of them, less the
# transmit writes when the VMM's log (LOG) says KVM queues them; nothing
# when a count is missing
lab_console_exits() {
	case "$1" in *[!0-9]*|"") return ;; esac
	case "$2" in *[!0-9]*|"") return ;; esac
	if grep -q 'transmit writes are coalesced' "$3" 2>/dev/null; then
		echo $(($1 - $2))
	else
		echo "$1"
	fi
}

lab_irq_count() {
	awk -v re="$1" 'NR > 1 { n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i;
		d = ""; for (j = i; j <= NF; j++) d = d " " $j; if (d ~ re) s += n }
		END { print s + 0 }' /proc/interrupts
}

lab_thread_cpu_ms() {
	local pid=$1 excl=${2:-^$} t comm ticks=0 hz
	hz=$(getconf CLK_TCK)
	for t in /proc/"$pid"/task/*; do
		comm=$(cat "$t/comm" 2>/dev/null) || continue
		[[ $comm =~ $excl ]] && continue
		# fields 14, 15 (utime, stime) after the ")" that ends comm
		ticks=$((ticks + $(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')))
	done
	echo $((ticks * 1000 / hz))
}

lab_kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }

lab_iperf3_server() {
	local i
	# a server of an earlier run (a guest that died before its stream ended
	# leaves one listening, or busy with a client that is gone) would take
	# this run's client and write to the earlier log: stop it first
	lab_iperf3_server_stop
	# $EPOCHREALTIME, not date(1): a fork per line (10 a second) falls
	# behind in a busy L1, the pipe fills and iperf3 itself stalls
	(iperf3 -s -1 -i 0.1 -f k --forceflush 2>&1 | while IFS= read -r l; do echo "$EPOCHREALTIME $l"; done) \
		> "$1" &
	LAB_SERVER_PID=$!
	for ((i = 0; i < 100; i++)); do
		lab_iperf3_listening && return 0
		kill -0 "$LAB_SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	lab_err "the iperf3 server did not start listening: $(tr -d '\0' < "$1" | tail -n 2 | tr '\n' ' ')"
}

# is something listening on iperf3's port (5201)?
lab_iperf3_listening() { [ -n "$(ss -Hltn 'sport = :5201' 2>/dev/null)" ]; }

# lab_iperf3_server_stop: stop lab_iperf3_server's server, if it still runs,
# and wait until its port is free. The iperf3 itself is signalled: TERM on
# the pipeline's subshell ($LAB_SERVER_PID) would leave it listening.
lab_iperf3_server_stop() {
	local i
	pkill -TERM -f '^iperf3 -s -1 -i 0.1 ' 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		lab_iperf3_listening || break
		sleep 0.1
	done
	lab_iperf3_listening && { pkill -KILL -f '^iperf3 -s -1 -i 0.1 ' 2>/dev/null; sleep 0.2; }
	[ -n "${LAB_SERVER_PID:-}" ] && wait "$LAB_SERVER_PID" 2>/dev/null
	LAB_SERVER_PID=""
	! lab_iperf3_listening || lab_err "port 5201 is still taken: $(ss -Hltnp 'sport = :5201' 2>/dev/null)"
}

# lab_iperf3_server_wait SECS: wait up to SECS for the server to end by
# itself (its one test over, the final report written), then stop it
lab_iperf3_server_wait() {
	local i
	for ((i = 0; i < $1 * 5; i++)); do
		[ -n "${LAB_SERVER_PID:-}" ] && kill -0 "$LAB_SERVER_PID" 2>/dev/null || break
		sleep 0.2
	done
	lab_iperf3_server_stop
}

lab_stall_ms() {
	awk -v a="$2" -v b="$3" '
		$0 ~ /Kbits\/sec/ && $0 !~ /sender|receiver/ {
			t = $1 + 0; if (t < a || t > b) next
			for (i = 1; i <= NF; i++) if ($i == "Kbits/sec") r = $(i - 1)
			for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+-[0-9.]+$/) { split($i, x, "-"); d = x[2] - x[1] }
			if (r + 0 == 0) { run += d; if (run > best) best = run } else run = 0
		}
		END { printf "%.0f\n", best * 1000 }' "$1"
}

# lab_stream_mbit FILE A B: the mean rate (Mbit/s) of an iperf3 server's
# interval lines (stamped with $EPOCHREALTIME, as lab_stall_ms reads them)
# whose stamps lie in [A, B]; "none" when no interval does. What the guest
# asked of the network while something else happened (a migration).
lab_stream_mbit() {
	awk -v a="$2" -v b="$3" '
		$0 ~ /bits\/sec/ && $0 !~ /sender|receiver/ {
			t = $1 + 0; if (t < a || t > b) next
			for (i = 2; i <= NF; i++) {
				if ($i == "Bytes") bytes += $(i - 1)
				else if ($i == "KBytes") bytes += $(i - 1) * 1024
				else if ($i == "MBytes") bytes += $(i - 1) * 1048576
				else if ($i == "GBytes") bytes += $(i - 1) * 1073741824
				if ($i ~ /^[0-9.]+-[0-9.]+$/) { split($i, x, "-"); secs += x[2] - x[1] }
			}
		}
		END { if (secs > 0) printf "%.1f\n", bytes * 8 / secs / 1e6; else print "none" }' "$1"
}

# --- running guests -----------------------------------------------------------
# lab_guest_run NAME LOG CMD...: run CMD (a VMM) with its output in LOG, shown
# on stdout prefixed "[NAME] ", until it exits. It is stopped (TERM, then
# KILL) when it runs longer than LAB_L2_TIMEOUT (300 s) or when its console
# stays silent for LAB_L2_STALL seconds (150), before or after the guest said
# LAB-GUEST-READY: a VMM that deadlocks after readiness is caught here, well
# before L1's own watchdog (LAB_L1_STALL, 300 s) would take it for a hung L1.
# If LAB_GUEST_HOOK names a function, it is called about every 0.2 s with the
# VMM's pid (marks, snapshots). Sets:
#   LAB_GUEST_RC      the exit status (timeout(1)'s: 124 at the limit, 128+N
#                     when the VMM died of signal N)
#   LAB_GUEST_STOP    why the lab stopped it: "", "timeout", "stall-before-ready",
#                     "stall-after-ready"
#   LAB_GUEST_T0, LAB_GUEST_T_READY (lab_now stamps; T_READY empty if never)
#   LAB_GUEST_PID     the VMM's pid while it runs (empty after)
#   LAB_GUEST_LOG     where the console is while it runs (L1's tmpfs; copied
#                     to LOG at the end): hooks read this one
lab_guest_run() {
	local name=$1 dest=$2 log tpid tail_pid t_end now size last_size=-1 last_t stall limit
	shift 2
	limit=${LAB_L2_TIMEOUT:-300} stall=${LAB_L2_STALL:-150}
	LAB_GUEST_STOP="" LAB_GUEST_T_READY="" LAB_GUEST_PID=""
	# the console goes to L1's own tmpfs while the guest runs, and to DEST
	# (in $LAB_RESULTS, a 9p share) after: a stalled 9p transport can then
	# block neither the VMM's console writes nor this watchdog
	mkdir -p /tmp/lab-l2
	log=/tmp/lab-l2/$(basename "$dest")
	LAB_GUEST_LOG=$log
	: > "$log"
	echo "[$name] \$ $*"
	LAB_GUEST_T0=$(lab_now)
	timeout -k 5 "$limit" "$@" > "$log" 2>&1 < /dev/null &
	tpid=$!
	( tail -n +1 -F --pid="$tpid" "$log" 2>/dev/null | sed -u "s/^/[$name] /" ) &
	tail_pid=$!
	t_end=$(($(date +%s) + limit))
	last_t=$(date +%s)
	while kill -0 "$tpid" 2>/dev/null; do
		[ -n "$LAB_GUEST_PID" ] || LAB_GUEST_PID=$(pgrep -P "$tpid" | head -n1)
		if [ -z "$LAB_GUEST_T_READY" ] && grep -q LAB-GUEST-READY "$log"; then
			LAB_GUEST_T_READY=$(lab_now)
		fi
		[ -n "${LAB_GUEST_HOOK:-}" ] && [ -n "$LAB_GUEST_PID" ] && "$LAB_GUEST_HOOK" "$LAB_GUEST_PID"
		now=$(date +%s)
		size=$(stat -c %s "$log")
		if [ "$size" != "$last_size" ]; then
			last_size=$size last_t=$now
		elif [ -z "$LAB_GUEST_STOP" ] && [ $((now - last_t)) -ge "$stall" ]; then
			LAB_GUEST_STOP=stall-before-ready
			[ -n "$LAB_GUEST_T_READY" ] && LAB_GUEST_STOP=stall-after-ready
			echo "l1-lib: [$name] console silent for ${stall}s ($LAB_GUEST_STOP): stopping the VMM"
			lab_stall_report "$name" "$LAB_GUEST_PID" "$log"
			lab_guest_stop "$tpid"
		fi
		if [ "$now" -ge "$t_end" ] && [ -z "$LAB_GUEST_STOP" ]; then
			LAB_GUEST_STOP=timeout
		fi
		sleep 0.2
	done
	wait "$tpid"
	LAB_GUEST_RC=$?
	# ready between the last poll and the exit
	[ -z "$LAB_GUEST_T_READY" ] && grep -q LAB-GUEST-READY "$log" && LAB_GUEST_T_READY=$(lab_now)
	[ "$LAB_GUEST_RC" = 124 ] && [ -z "$LAB_GUEST_STOP" ] && LAB_GUEST_STOP=timeout
	LAB_GUEST_PID=""
	wait "$tail_pid" 2>/dev/null
	cp "$log" "$dest"
	echo "[$name] exit status $LAB_GUEST_RC${LAB_GUEST_STOP:+ (stopped: $LAB_GUEST_STOP)}"
	return 0
}

# lab_stall_report NAME PID LOG: what a VMM whose guest went silent is doing,
# before the lab stops it: its threads (state, wait channel, kernel stack) and
# KVM's per-vCPU counters as L1 sees them; for a minivmm, two SIGUSR2 dumps
# 2 s apart of its vCPUs (run state, rip, APIC IRR/ISR/PPR, timer), IOAPIC
# and devices (UART registers, virtqueue indices), read into one line by
# tests/lab/l2-stall-state.py and recorded as NAME_stall_state in results.txt
# (a lost wake-up, a guest spinning, or one waiting on a device).
lab_stall_report() {
	local name=$1 pid=$2 log=$3 exits1 exits2
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	echo "l1-lib: [$name] the silent VMM ($pid, $(cat /proc/"$pid"/comm 2>/dev/null)):"
	lab_vmm_threads "l1-lib:  " "$pid" 8
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	exits1=$(cat /sys/kernel/debug/kvm/"$pid"-*/vcpu*/exits 2>/dev/null | tr '\n' ' ')
	lab_inspect_dumps "$name" "$pid" "$log" || sleep 3
	exits2=$(cat /sys/kernel/debug/kvm/"$pid"-*/vcpu*/exits 2>/dev/null | tr '\n' ' ')
	echo "l1-lib:   KVM exits per vCPU: ${exits1:-none} then, 3 s later, ${exits2:-none}"
	lab_result "${name}_stall_kvm_exits" "\"${exits1:-none} -> ${exits2:-none}\""
}

# lab_vmm_threads PREFIX PID STACK_LINES: each thread of PID with its state,
# kernel wait channel and CPU time, and the first STACK_LINES of its kernel
# stack
lab_vmm_threads() {
	local pfx=$1 pid=$2 n=$3 t
	for t in /proc/"$pid"/task/*; do
		[ -d "$t" ] || continue
		echo "$pfx thread $(basename "$t") $(cat "$t/comm" 2>/dev/null): state $(cut -d' ' -f3 "$t/stat" 2>/dev/null)" \
			"wchan $(cat "$t/wchan" 2>/dev/null) utime+stime $(cut -d' ' -f14,15 "$t/stat" 2>/dev/null)"
		[ "$n" -gt 0 ] && sed "s/^/$pfx   /" "$t/stack" 2>/dev/null | head -n "$n"
	done
	return 0
}

# lab_inspect_dumps NAME PID LOG: for a minivmm (else status 1 at once): two
# SIGUSR2 dumps 2 s apart into LOG (its output), read into one line by
# tests/lab/l2-stall-state.py, printed and recorded as NAME_stall_state
lab_inspect_dumps() {
	local name=$1 pid=$2 log=$3 st
	[ "$(cat /proc/"$pid"/comm 2>/dev/null)" = minivmm ] || return 1
	kill -USR2 "$pid" 2>/dev/null
	sleep 2
	kill -USR2 "$pid" 2>/dev/null
	sleep 1
	st=$(python3 "$LAB_SRCDIR/tests/lab/l2-stall-state.py" "$log" 2>&1 | head -c 1500)
	echo "l1-lib: [$name] the guest's state: $st"
	lab_result "${name}_stall_state" "\"$(echo "$st" | tr -d '"')\""
	return 0
}

# lab_guest_stop TPID: TERM the VMM under timeout(1) pid TPID, KILL it 5 s later
lab_guest_stop() {
	pkill -TERM -P "$1" 2>/dev/null
	sleep 5
	pkill -KILL -P "$1" 2>/dev/null
	kill -KILL "$1" 2>/dev/null
	return 0
}

# lab_crash_line LOG: the first line of LOG that shows a VMM crash, a
# sanitizer report or a KVM error (empty when there is none)
# lab_vmm_diagnose PID [SOCK [LOG NAME]]: what a VMM that does not end is
# doing, on stdout: its control socket's status (when SOCK is given), each
# thread's name, state, kernel wait channel and CPU time, KVM's per-vCPU
# exit counters from debugfs when mounted, and with LOG (the VMM's output)
# a minivmm's guest state (lab_inspect_dumps: NAME_stall_state). Then
# SIGTERM (minivmm prints its stats) and 5 s for it to go.
lab_vmm_diagnose() {
	local pid=$1 sock=${2:-} log=${3:-} name=${4:-vmm} t
	echo "lab: diagnosing VMM $pid"
	[ -n "$sock" ] && [ -n "${MINIVMM_BIN:-}" ] && timeout 5 "$MINIVMM_BIN" ctl "$sock" status 2>&1 | sed 's/^/lab:   status | /'
	lab_vmm_threads "lab:  " "$pid" 0
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	for t in /sys/kernel/debug/kvm/"$pid"-*/vcpu*; do
		[ -d "$t" ] || continue
		echo "lab:   kvm $(basename "$t"): exits $(cat "$t/exits" 2>/dev/null) halt_exits $(cat "$t/halt_exits" 2>/dev/null) irq_injections $(cat "$t/irq_injections" 2>/dev/null) nmi_injections $(cat "$t/nmi_injections" 2>/dev/null)"
	done
	[ -n "$log" ] && lab_inspect_dumps "$name" "$pid" "$log"
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 25); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}

# the tick lines of lab.cmd=tick-test in a console log
lab_ticks_of() { tr -d '\r' < "$1" | grep -E '^LAB-TICK [0-9]+ '; }

# lab_mig_destination PREFIX PID DST_LOG SRC_LOG SRC_TICK_AT_START MAX_LOST SOCK:
# the checks every migration test makes of its destination (a tick-test
# guest): it ends within 180 s (or is diagnosed and killed), goes on from the
# source's last tick (within 2: a line may be cut by the pause) without
# booting again, at least 10 ticks with at most MAX_LOST pings lost, the disk
# reading the same, its command and the VMM ending with 0, no crash. Uses the
# caller's pass and fail; records PREFIX_* results; leaves the destination's
# tick lines in LAB_MIG_TICKS.
lab_mig_destination() {
	local pfx=$1 pid=$2 dlog=$3 slog=$4 at_start=$5 max_lost=$6 sock=$7
	local drc first n lost disk bad last up_src up_dst
	for _ in $(seq 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then
		fail "the destination still runs after 180 s"
		lab_vmm_diagnose "$pid" "$sock" "$dlog" "${pfx}_destination"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid"
	drc=$?
	LAB_MIG_TICKS=$(lab_ticks_of "$dlog")
	first=$(echo "$LAB_MIG_TICKS" | head -n1 | cut -d' ' -f2)
	n=$(echo "$LAB_MIG_TICKS" | grep -c . || true)
	lost=$(echo "$LAB_MIG_TICKS" | grep -c 'ping=lost' || true)
	disk=$(lab_ticks_of "$slog" | head -n1 | sed -n 's/.* disk=\([0-9a-f]*\) .*/\1/p')
	bad=$(echo "$LAB_MIG_TICKS" | grep -vc "disk=$disk " || true)
	# pre-copy: the guest ticks on at the source while RAM crosses
	last=$(lab_ticks_of "$slog" | tail -n1 | cut -d' ' -f2)
	lab_result "${pfx}_ticks_during_precopy" "$((${last:-0} - ${at_start:-0}))"
	lab_result "${pfx}_last_tick_source" "${last:-none}"
	lab_result "${pfx}_first_tick_destination" "${first:-none}"
	lab_result "${pfx}_ticks_destination" "$n"
	lab_result "${pfx}_pings_lost_destination" "$lost"
	up_src=$(lab_ticks_of "$slog" | tail -n1 | sed -n 's/.* up=\([0-9.]*\).*/\1/p')
	up_dst=$(echo "$LAB_MIG_TICKS" | head -n1 | sed -n 's/.* up=\([0-9.]*\).*/\1/p')
	[ -n "$up_src" ] && [ -n "$up_dst" ] && lab_result "${pfx}_tick_gap_guest_s" "$(lab_elapsed "$up_src" "$up_dst")"
	[ -n "$first" ] && [ -n "$last" ] && [ "$first" -gt "$last" ] && [ "$first" -le $((last + 2)) ] &&
		pass "the guest went on at tick $first on the destination (the source's last: $last)" ||
		fail "the destination's first tick is ${first:-none}; the source's last was ${last:-none}"
	grep -q 'Linux version\|LAB-GUEST-READY' "$dlog" && fail "the destination booted the guest again"
	[ "$n" -ge 10 ] && [ "$lost" -le "$max_lost" ] && pass "$n ticks on the destination, $lost pings lost" ||
		fail "$n ticks on the destination, $lost pings lost (at most $max_lost)"
	[ -n "$disk" ] && [ "$bad" = 0 ] && pass "the disk reads the same on the destination" ||
		fail "disk checksums on the destination differ from $disk ($bad ticks)"
	grep -q 'LAB-GUEST-RC=0' "$dlog" && [ "$drc" = 0 ] &&
		pass "the guest's command ended with status 0 on the destination, which exited 0" ||
		fail "the destination: exit $drc, $(tr -d '\r' < "$dlog" | grep -m1 'LAB-GUEST-RC')"
	grep -q 'board: migration received in' "$dlog" &&
		lab_result "${pfx}_received" "\"$(grep -m1 'migration received in' "$dlog" | sed 's/.*received in //')\""
	crash=$(lab_crash_line "$dlog")
	[ -z "$crash" ] || fail "the destination: $crash"
}

lab_crash_line() {
	grep -Em1 'Sanitizer|runtime error:|KVM internal error|KVM_RUN failed entry|KVM_RUN: |Segmentation fault|core dumped|stack-buffer|heap-buffer|double free|Assertion .* failed' "$1" |
		tr -d '\r' | cut -c1-160
}

# lab_guest_verdict KIND LOG: the outcome of the lab_guest_run that wrote LOG,
# for a VMM of KIND (minivmm or qemu), on one line:
#   ok              the VMM exited 0 and the guest printed LAB-GUEST-RC=0
#   env: WHY        a documented environmental failure (docs/lab.md, "Flakiness
#                   of the nested environment"): it may be retried
#   fail: WHY       anything else: never retried
# For minivmm, the only environmental signature is an L2 triple fault (seen
# under QEMU as well, with the #PF error code 0x18 that only TCG's page
# walker produces). A minivmm that died on a signal, logged a sanitizer
# report, a crash or a KVM internal error, hung after the guest was ready,
# exited non-zero for any other reason, or whose guest command failed (an
# iperf3 second without data among others) is a product failure. QEMU is the
# baseline, not under test: any of its failures is the environment's.
lab_guest_verdict() {
	local kind=$1 log=$2 why="" grc
	grc=$(tr -d '\r' < "$log" | sed -n 's/.*LAB-GUEST-RC=\([0-9]*\).*/\1/p' | tail -n1)
	local crash
	crash=$(lab_crash_line "$log")
	if [ -n "$crash" ]; then
		why="crash or sanitizer report: $crash"
	elif [ "$LAB_GUEST_RC" -gt 128 ] && [ "$LAB_GUEST_RC" != 137 ] && [ -z "$LAB_GUEST_STOP" ]; then
		why="the VMM died on signal $((LAB_GUEST_RC - 128))"
	elif [ "$LAB_GUEST_RC" = 137 ] && [ -z "$LAB_GUEST_STOP" ]; then
		why="the VMM was killed (SIGKILL) by someone else than the lab"
	elif [ "$LAB_GUEST_STOP" = stall-after-ready ]; then
		why="the console went silent after the guest was ready (VMM hung?)"
	elif grep -q 'triple fault' "$log"; then
		echo "env: L2 triple fault ($(grep -m1 'exception injected' "$log" | tr -d '\r' | sed 's/.*: exception/exception/'))"
		return 0
	elif [ -n "$LAB_GUEST_STOP" ]; then
		why="stopped by the lab: $LAB_GUEST_STOP"
	elif [ "$LAB_GUEST_RC" != 0 ]; then
		why="exit status $LAB_GUEST_RC"
	elif [ -z "$LAB_GUEST_T_READY" ]; then
		why="the guest never printed LAB-GUEST-READY"
	elif [ "$grc" != 0 ]; then
		why="the guest's command failed (LAB-GUEST-RC=${grc:-none}): $(tr -d '\r' < "$log" | grep -E 'LAB-[A-Z0-9-]+ .*FAIL|LAB-IPERF3-STALL|FAIL |LAB-FO-NO-PRIMARY|iperf3: error' | head -n3 | tr '\n' ';' | cut -c1-300)"
	fi
	if [ -z "$why" ]; then
		echo ok
	elif [ "$kind" = qemu ]; then
		echo "env: QEMU baseline: $why"
	else
		echo "fail: $why"
	fi
}

# lab_qemu_cmd MACHINE MEM_MIB CMDLINE IMG: the QEMU command line the lab
# compares minivmm with, into the array LAB_QEMU_CMD: the lab guest's kernel
# and initrd from the cache, CMDLINE, MEM_MIB of RAM, 2 vCPUs, IMG as a
# read-only virtio-blk disk, the console on stdout; MACHINE q35 (the
# default machine's chipset) or microvm (pcie=on: the same virtio-pci
# devices as q35). Its threads are named (debug-threads: the bench tells
# vCPUs from the rest by name); the caller appends its NIC.
lab_qemu_cmd() {
	local machine=$1 mem=$2 cmdline=$3 img=$4
	local -a m disk=(-drive "file=$img,format=raw,if=virtio,readonly=on")
	case $machine in
	q35) m=(-machine q35) ;;
	microvm)
		m=(-machine microvm,pcie=on,rtc=on)
		disk=(-drive "file=$img,format=raw,if=none,id=d0,readonly=on" -device virtio-blk-pci,drive=d0) ;;
	*) echo "lab_qemu_cmd: no machine '$machine'" >&2; return 1 ;;
	esac
	LAB_QEMU_CMD=(qemu-system-x86_64 -name lab,debug-threads=on -enable-kvm "${m[@]}" -cpu host
		-m "${mem}M" -smp 2 -nodefaults -no-user-config -display none -no-reboot -serial stdio
		-monitor none -kernel "$LAB_CACHE/guest/vmlinuz" -initrd "$LAB_CACHE/guest/initrd.img"
		-append "$cmdline" "${disk[@]}")
}

# lab_guest_try NAME KIND LOG CMD...: lab_guest_run, up to LAB_L2_TRIES (3)
# times while the verdict is "env:"; each retry is loud, its console kept as
# LOG.tryN and counted (NAME_env_retries, NAME_env_retry_N=WHY in
# results.txt). Sets LAB_GUEST_VERDICT; returns 0 when it is "ok".
# LAB_GUEST_RETRY_HOOK: a command run before each retry (a test resets its
# state there). LAB_GUEST_RERUN_IF: a command that says whether a run may go
# again at all: a test whose guest has passed its point of no return (it
# migrated, it was snapshotted) sets it, and an environmental failure after
# that point ends the tries (the test then fails on its own checks).
lab_guest_try() {
	local name=$1 kind=$2 log=$3 try=1 tries=${LAB_L2_TRIES:-3} h
	shift 3
	# a hook is the name of one command: "f arg" would be looked up whole,
	# fail with "command not found" at the first retry and leave the rerun
	# with the first run's state
	for h in "${LAB_GUEST_HOOK:-}" "${LAB_GUEST_RETRY_HOOK:-}" "${LAB_GUEST_RERUN_IF:-}"; do
		[ -z "$h" ] || type -t "$h" > /dev/null || {
			LAB_GUEST_VERDICT="fail: the test's hook '$h' is not a command (a function name, without arguments)"
			echo "l1-lib: [$name] $LAB_GUEST_VERDICT"
			return 1
		}
	done
	while :; do
		lab_guest_run "$name" "$log" "$@"
		LAB_GUEST_VERDICT=$(lab_guest_verdict "$kind" "$log")
		echo "l1-lib: [$name] run $try: $LAB_GUEST_VERDICT${LAB_GUEST_RERUN_IF:+ (read for the environment's signature only: the test's own checks judge this run)}"
		case $LAB_GUEST_VERDICT in
		env:*)
			[ "$try" -lt "$tries" ] || break
			if [ -n "${LAB_GUEST_RERUN_IF:-}" ] && ! "$LAB_GUEST_RERUN_IF"; then
				echo "l1-lib: [$name] not run again: the guest had passed the point where a rerun would repeat what the test checks"
				break
			fi
			cp "$log" "$log.try$try"
			lab_result "${name}_env_retry_$try" "${LAB_GUEST_VERDICT#env: }"
			echo "l1-lib: [$name] WARNING: environmental failure, run again (console kept in $log.try$try)"
			try=$((try + 1))
			[ -n "${LAB_GUEST_RETRY_HOOK:-}" ] && "$LAB_GUEST_RETRY_HOOK"
			;;
		*) break ;;
		esac
	done
	lab_result "${name}_env_retries" $((try - 1))
	[ "$LAB_GUEST_VERDICT" = ok ]
}

# lab_vmm_hugepages PID SIZE_MIB: how the VMM's guest RAM (the anonymous
# mapping of SIZE_MIB, or the largest one of at least that size) is mapped:
# "start=ADDR start_2m_aligned=0|1 anon_huge_kb=N kvm_pages_4k=N kvm_pages_2m=N"
# (KVM's counters from debugfs, for PID's VM)
lab_vmm_hugepages() {
	local pid=$1 mib=$2 d k out=""
	set -- $(awk -v want=$((mib * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { range = $1 }
		/^Size:/ { size = $2 }
		/^AnonHugePages:/ { if (size >= want && size > best) { best = size; r = range; ah = $2 } }
		END { if (r != "") { split(r, a, "-"); print a[1], ah } }' "/proc/$pid/smaps" 2>/dev/null)
	[ $# = 2 ] && out="start=0x$1 start_2m_aligned=$(( (0x$1 % 2097152) == 0 )) anon_huge_kb=$2"
	[ -d /sys/kernel/debug/kvm ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	for d in /sys/kernel/debug/kvm/"$pid"-*; do
		[ -d "$d" ] || continue
		for k in pages_4k pages_2m; do
			out="$out kvm_$k=$(cat "$d/$k" 2>/dev/null || echo NA)"
		done
		break
	done
	echo "$out"
}
