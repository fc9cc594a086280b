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
#                                   hist trigger on kvm:kvm_userspace_exit)
#   lab_irq_count REGEX             sum of the /proc/interrupts rows whose
#                                   description matches REGEX (all CPUs)
#   lab_thread_cpu_ms PID [EXCL]    CPU time (ms, user+system) of PID's threads
#                                   whose name does not match REGEX EXCL
#   lab_kv LINE KEY                 the value of KEY=VALUE in LINE

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
# trigger, installed on first use); values are cumulative, take differences
lab_kvm_stats() {
	local d=/sys/kernel/debug/kvm t=/sys/kernel/tracing ev k out="" u
	[ -d "$d" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -e "$t/events" ] || mount -t tracefs tracefs "$t" 2>/dev/null
	ev=$t/events/kvm/kvm_userspace_exit
	if [ -e "$ev/trigger" ] && ! grep -q '^hist' "$ev/trigger"; then
		echo 'hist:keys=reason' > "$ev/trigger" 2>/dev/null
	fi
	for k in exits io_exits mmio_exits irq_exits irq_injections halt_exits; do
		out="$out $k=$(cat "$d/$k" 2>/dev/null || echo NA)"
	done
	u=$(sed -n 's/^ *Hits: *\([0-9]*\).*/\1/p' "$ev/hist" 2>/dev/null)
	# per KVM_EXIT_* reason: uexit_r2 (IO), uexit_r6 (MMIO), uexit_r10 (INTR), ...
	out="$out $(sed -n 's/^{ *reason: *\([0-9]*\) *} *hitcount: *\([0-9]*\).*/uexit_r\1=\2/p' "$ev/hist" 2>/dev/null | tr '\n' ' ')"
	echo "${out# } uexits=${u:-NA}"
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
