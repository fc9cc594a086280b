#!/bin/bash
# Lab tool (runs inside L1 via tests/lab/lab.sh; not a test): boots the lab
# guest N times and counts how the boots end, to measure the nested
# environment's flakiness under a given configuration.
#
#   tests/lab/lab.sh run tests/lab/stress-boot.sh
#
# Environment: LAB_STRESS_N (boots, 10), LAB_STRESS_VMM (minivmm or qemu),
# LAB_STRESS_THP (L1's transparent_hugepage/enabled for the run: always,
# madvise or never; default: left as is), LAB_STRESS_HUGEPAGES=1 (minivmm
# --hugepages, L1 reserves the pages), LAB_STRESS_CPUS (2), LAB_STRESS_NET=1
# (virtio-net on a tap bridged to the PF, and the guest runs the lab's
# net-test: ping and iperf3 both ways, as in test-boot-net.sh), LAB_STRESS_VF=1
# (instead: a VF of the lab's igb through VFIO, the guest's nic-test runs ping
# and iperf3 both ways over it for LAB_STRESS_VF_SECS (10) each way: the path
# of every L2 triple fault seen in the failover, migration and stream tests),
# LAB_STRESS_PRESSURE=1 (memory pressure inside L1 during the boots: KSM
# merging, compaction every 2 s and THP defragmentation, the conditions the
# hardening issue names),
# LAB_STRESS_KVMTRACE=1 (L1's KVM traces every exit of the guest, its NPT
# faults and injected exceptions into ftrace's ring; tracing stops at a
# shutdown exit, SVM exit code 0x7f, which is how an L2 triple fault reaches
# L1, and the ring's last lines are kept as stress-N.kvmtrace: the guest RIP
# of the fault and what came before it), MINIVMM_BIN.
# Results: stress_ok, stress_triple_fault, stress_stall, stress_other in
# $LAB_RESULTS/results.txt; each failed boot's console is kept.
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

N=${LAB_STRESS_N:-10}
VMM=${LAB_STRESS_VMM:-minivmm}
CPUS=${LAB_STRESS_CPUS:-2}
GUEST_DIR=$LAB_CACHE/guest
thp=/sys/kernel/mm/transparent_hugepage
: > "$LAB_RESULTS/results.txt"

[ -c /dev/kvm ] || { echo "stress-boot: no /dev/kvm in L1"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
[ -n "${LAB_STRESS_THP:-}" ] && echo "$LAB_STRESS_THP" > "$thp/enabled"
lab_result stress_thp "$(sed 's/.*\[\(.*\)\].*/\1/' "$thp/enabled")"
lab_result stress_vmm "$VMM"
lab_result stress_cpus "$CPUS"

extra=()
if [ "${LAB_STRESS_HUGEPAGES:-0}" = 1 ]; then
	echo 200 > /proc/sys/vm/nr_hugepages
	extra+=(--hugepages)
fi
lab_result stress_hugepages "${LAB_STRESS_HUGEPAGES:-0}"

cmdline="console=ttyS0 root=/dev/vda lab.cmd=none lab.ip="
MAC=52:54:00:1a:00:10
BR_IP=10.0.3.1
qnet=() mnet=()
if [ "${LAB_STRESS_NET:-0}" = 1 ]; then
	pf=$(lab_pf) || exit 1
	lab_bridge_create br0 "$BR_IP/24" "$pf" >/dev/null || exit 1
	lab_tap_create tap0 br0 >/dev/null || exit 1
	iperf3 -s -B "$BR_IP" > /dev/null 2>&1 &
	iperf_pid=$!
	trap 'kill $iperf_pid 2>/dev/null' EXIT
	cmdline="console=ttyS0 root=/dev/vda"
	qnet=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off
		-device virtio-net-pci,netdev=n0,mac=$MAC)
	mnet=(--net "tap=tap0,mac=$MAC")
fi
if [ "${LAB_STRESS_VF:-0}" = 1 ]; then
	pf=$(lab_pf) || exit 1
	lab_vfs_create "$pf" 2 > /dev/null || exit 1
	vf=$(lab_vf_pci "$pf" 0)
	lab_vf_bind_vfio "$vf" > /dev/null || exit 1
	vmac=52:54:00:1a:b0:00 # lab_vfs_create's MAC for VF 0
	ip addr add 10.0.4.1/24 dev "$pf" 2>/dev/null
	iperf3 -s -B 10.0.4.1 > /dev/null 2>&1 &
	iperf_pid=$!
	trap 'kill $iperf_pid 2>/dev/null' EXIT
	cmdline="console=ttyS0 root=/dev/vda lab.cmd=nic-test lab.ip="
	cmdline="$cmdline lab.nic=$vmac,10.0.4.2/24,10.0.4.1,${LAB_STRESS_VF_SECS:-10}"
	qnet=(-device "vfio-pci,host=$vf")
	mnet=(--vf "$vf")
	lab_result stress_vf "$vf"
fi
lab_result stress_net "${LAB_STRESS_NET:-0}"
presser=""
if [ "${LAB_STRESS_PRESSURE:-0}" = 1 ]; then
	echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null || echo "stress-boot: no KSM in L1"
	echo 1000 > /sys/kernel/mm/ksm/pages_to_scan 2>/dev/null
	echo always > $thp/defrag 2>/dev/null
	echo 1 > $thp/khugepaged/defrag 2>/dev/null
	echo 100 > $thp/khugepaged/scan_sleep_millisecs 2>/dev/null
	( while :; do echo 1 > /proc/sys/vm/compact_memory; sleep 2; done ) &
	presser=$!
	lab_result stress_pressure "ksm+compaction+thp-defrag"
fi
T=/sys/kernel/tracing
trace_on() {
	[ "${LAB_STRESS_KVMTRACE:-0}" = 1 ] || return 0
	echo 0 > $T/tracing_on
	echo > $T/trace
	echo 1 > $T/tracing_on
}
if [ "${LAB_STRESS_KVMTRACE:-0}" = 1 ]; then
	[ -d $T/events ] || mount -t tracefs nodev $T || { echo "stress-boot: no tracefs in L1"; exit 1; }
	echo 16384 > $T/buffer_size_kb
	for e in kvm_exit kvm_page_fault kvm_inj_exception kvm_inj_virq kvm_pio kvm_mmio; do
		echo 1 > "$T/events/kvm/$e/enable" || echo "stress-boot: no kvm:$e event"
	done
	# stop the ring at the shutdown exit (an L2 triple fault under SVM)
	echo 'traceoff if exit_reason == 127' > $T/events/kvm/kvm_exit/trigger ||
		echo "stress-boot: the traceoff trigger was refused"
	lab_result stress_kvmtrace 1
fi
[ -n "$presser" ] && trap 'kill $presser ${iperf_pid:-} 2>/dev/null' EXIT
ok=0 triple=0 stall=0 other=0
for i in $(seq 1 "$N"); do
	log=$LAB_RESULTS/stress-$i.log
	trace_on
	if [ "$VMM" = qemu ]; then
		timeout -k 5 240 qemu-system-x86_64 -enable-kvm -cpu host -m 384M -smp "$CPUS" \
			-nodefaults -no-user-config -display none -no-reboot \
			-serial stdio -monitor none \
			-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
			-append "$cmdline" \
			-drive file="$img",format=raw,if=virtio,readonly=on "${qnet[@]}" \
			> "$log" 2>&1 < /dev/null
	else
		timeout -k 5 240 "$MINIVMM_BIN" --mem 384M --cpus "$CPUS" --readonly \
			"${extra[@]}" "${mnet[@]}" --cmdline "$cmdline" "$img" > "$log" 2>&1 < /dev/null
	fi
	st=$?
	ip neigh flush dev br0 2>/dev/null
	[ -n "${pf:-}" ] && ip neigh flush dev "$pf" 2>/dev/null
	if [ "${LAB_STRESS_PRESSURE:-0}" = 1 ]; then
		echo "stress-boot: boot $i: ksm pages_sharing=$(cat /sys/kernel/mm/ksm/pages_sharing 2>/dev/null) thp_collapse_alloc=$(awk '/^thp_collapse_alloc /{print $2}' /proc/vmstat) compact_success=$(awk '/^compact_success /{print $2}' /proc/vmstat)"
	fi
	if [ "$st" = 0 ] && grep -q 'LAB-GUEST-RC=0' "$log"; then
		what=ok; ok=$((ok + 1)); rm -f "$log"
	elif grep -q 'triple fault\|guest reset' "$log" || { [ "$VMM" = qemu ] && [ "$st" = 0 ]; }; then
		what=triple-fault; triple=$((triple + 1))
		if [ "${LAB_STRESS_KVMTRACE:-0}" = 1 ]; then
			echo 0 > $T/tracing_on
			tail -n 4000 $T/trace > "$LAB_RESULTS/stress-$i.kvmtrace"
			echo "stress-boot: boot $i: the shutdown exit in L1's KVM trace:"
			grep -m3 'reason EXIT_SHUTDOWN\|exit_reason.*0x7f\|SHUTDOWN' "$LAB_RESULTS/stress-$i.kvmtrace" | sed 's/^/    /'
		fi
	elif [ "$st" = 124 ] || [ "$st" = 137 ]; then
		what=stall; stall=$((stall + 1))
	else
		what="other (exit $st)"; other=$((other + 1))
	fi
	echo "stress-boot: boot $i/$N: $what (last line: $(tail -n1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-80))"
done
lab_result stress_ok "$ok"
lab_result stress_triple_fault "$triple"
lab_result stress_stall "$stall"
lab_result stress_other "$other"
exit 0
