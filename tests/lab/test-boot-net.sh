#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh): boot guest.img under QEMU
# (the baseline) and under minivmm, each with virtio-blk root and virtio-net
# on a tap bridged to the igb PF; the guest pings L1 and runs iperf3 both
# ways against a server in L1, then powers off. Records boot time (exec to
# LAB-GUEST-READY) and throughput in $LAB_RESULTS/results.txt. minivmm boots
# twice: by default (the kernel's ELF unpacked by minivmm, from its kernel
# cache, booted directly with minivmm's KASLR, checked in the guest), and with
# --decompress guest (the guest's own decompressor), the same checks.
#
# Each iperf3 second must carry data, and minivmm's throughput must reach a
# quarter of QEMU's in each direction (one 5 s sample per VMM: docs/lab.md says
# why the floor is not tighter).
#
# Environment: MINIVMM_BIN (the minivmm binary, required), LAB_MINIVMM_ARGS
# (extra minivmm arguments), LAB_L2_TIMEOUT (per guest, 300 s), LAB_L2_STALL
# (a guest whose console is silent this long, before or after readiness, is
# stopped, 150 s). Also checks that VFs can be created and bound to vfio-pci
# (the l1-lib.sh helpers).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

GUEST_DIR=$LAB_CACHE/guest
MAC=52:54:00:1a:00:10
BR_IP=10.0.3.1
rc=0
: > "$LAB_RESULTS/results.txt"

fail() { echo "test-boot-net: FAIL: $*"; rc=1; }

[ -c /dev/kvm ] || { echo "test-boot-net: no /dev/kvm in L1"; exit 1; }
[ -n "${MINIVMM_BIN:-}" ] && [ -x "$MINIVMM_BIN" ] ||
	{ echo "test-boot-net: MINIVMM_BIN (${MINIVMM_BIN:-unset}) is not an executable"; exit 1; }
pf=$(lab_pf) || exit 1
lab_bridge_create br0 "$BR_IP/24" "$pf" >/dev/null || exit 1
img=$(lab_guest_img /tmp/guest.img) || exit 1
# iperf3_restart: a fresh iperf3 server for each guest run: a guest that
# died mid-test leaves the old one "busy running a test"
iperf_pid=""
iperf3_restart() {
	if [ -n "$iperf_pid" ]; then
		kill "$iperf_pid" 2>/dev/null
		wait "$iperf_pid" 2>/dev/null
	fi
	iperf3 -s -B "$BR_IP" >>"$LAB_RESULTS/iperf3-server.log" 2>&1 &
	iperf_pid=$!
}
: > "$LAB_RESULTS/iperf3-server.log"
iperf3_restart
trap 'kill $iperf_pid 2>/dev/null' EXIT
echo "test-boot-net: PF $pf on br0 ($BR_IP/24), guest image $img"

# run_guest NAME KIND LOG CMD...: the guest run (lab_guest_try: retried only
# on a documented environmental failure, loudly and counted), then its
# checks; records NAME_* results; returns 0 when the run and the checks pass
run_guest() {
	local name=$1 kind=$2 log=$3 line d v z bad=0
	shift 3
	iperf3_restart
	LAB_GUEST_RETRY_HOOK=iperf3_restart
	lab_guest_try "$name" "$kind" "$log" "$@"
	lab_result "${name}_exit" "$LAB_GUEST_RC"
	lab_result "${name}_verdict" "$LAB_GUEST_VERDICT"
	lab_result "${name}_total_s" "$(lab_elapsed "$LAB_GUEST_T0" "$(lab_now)")"
	if [ -n "$LAB_GUEST_T_READY" ]; then
		lab_result "${name}_boot_s" "$(lab_elapsed "$LAB_GUEST_T0" "$LAB_GUEST_T_READY")"
		line=$(grep -m1 'LAB-GUEST-READY' "$log")
		lab_result "${name}_guest_uptime_at_ready_s" "$(echo "$line" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')"
	fi
	for d in tx rx; do
		v=$(tr -d '\r' < "$log" | grep -m1 "LAB-IPERF3 dir=$d ")
		z=$(lab_kv "$v" zero_secs)
		lab_result "${name}_iperf3_${d}_mbps" "$(lab_kv "$v" mbps)"
		lab_result "${name}_iperf3_${d}_zero_secs" "${z:-NA}"
		lab_result "${name}_iperf3_${d}_per_sec" "$(lab_kv "$v" per_sec)"
		[ "$z" = 0 ] || { echo "test-boot-net: [$name] iperf3 $d: ${z:-no} seconds without data: ${v:-no result}"; bad=1; }
	done
	[ "$LAB_GUEST_VERDICT" = ok ] || { echo "test-boot-net: [$name] $LAB_GUEST_VERDICT"; bad=1; }
	grep -q 'smp: Brought up 1 node, 2 CPUs' "$log" ||
		{ echo "test-boot-net: [$name] the guest did not bring up its 2 vCPUs"; bad=1; }
	grep -q 'LAB-PING OK' "$log" || { echo "test-boot-net: [$name] ping failed"; bad=1; }
	return $bad
}

# --- QEMU baseline -----------------------------------------------------------
lab_tap_create tap0 br0 >/dev/null || exit 1
run_guest qemu qemu "$LAB_RESULTS/l2-qemu-console.log" \
	qemu-system-x86_64 -enable-kvm -cpu host -m 384M -smp 2 \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial stdio -monitor none \
	-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
	-append "console=ttyS0 root=/dev/vda" \
	-drive file="$img",format=raw,if=virtio,readonly=on \
	-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off \
	-device virtio-net-pci,netdev=n0,mac=$MAC \
	|| fail "QEMU baseline"
ip link del tap0
ip neigh flush dev br0

# --- minivmm -----------------------------------------------------------------
# By default minivmm decompresses the bzImage on the host, keeps the ELF in
# its default kernel cache and boots it, doing the KASLR the guest's
# decompressor would have done. A first start fills the cache (stopped once
# minivmm says it kept the kernel: the time it took to decompress is
# recorded); the measured boot reads the cache, as every later boot on a host
# does. The guest prints where its kernel runs (LAB-KASLR): it must be where
# minivmm moved it (-vv: the offsets are a debug line).
ip neigh flush dev br0
"$MINIVMM_BIN" -v --mem 384M --readonly \
	-c "console=ttyS0 root=/dev/vda lab.cmd=none" "$img" > /tmp/kcache-prime.log 2>&1 < /dev/null &
prime=$!
lab_wait_line /tmp/kcache-prime.log 'kept in --kernel-cache|read from --kernel-cache|error' 120 "$prime"
kill -KILL "$prime" 2>/dev/null
wait "$prime" 2>/dev/null
line=$(grep -m1 'kept in --kernel-cache' /tmp/kcache-prime.log)
[ -n "$line" ] || fail "minivmm: the kernel was not kept in the default --kernel-cache: $(grep -m3 'kernel-cache\|error' /tmp/kcache-prime.log | tr '\n' ' ')"
lab_result minivmm_host_decompress_ms "$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p')"
lab_tap_create tap1 br0 >/dev/null || exit 1
# shellcheck disable=SC2086
if run_guest minivmm minivmm "$LAB_RESULTS/l2-minivmm-console.log" \
	"$MINIVMM_BIN" -vv --mem 384M --cpus 2 --readonly --net "tap=tap1,mac=$MAC" \
	${LAB_MINIVMM_ARGS:-} "$img"; then
	log=$LAB_RESULTS/l2-minivmm-console.log
	line=$(grep -m1 'read from --kernel-cache' "$log")
	[ -n "$line" ] || fail "minivmm: no log line saying the kernel came from the default cache"
	lab_result minivmm_cache_read_ms "$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms.*/\1/p')"
	lab_result minivmm_status ok
	# KASLR: the guest's _text and kernel code where minivmm's offsets put them
	# (the kernel is linked at 0xffffffff81000000, physical 16 MiB)
	line=$(grep -m1 'ELF kernel: entry' "$log")
	phys=$(echo "$line" | sed -n 's/.*physical +0x\([0-9a-f]*\).*/\1/p')
	virt=$(echo "$line" | sed -n 's/.*virtual +0x\([0-9a-f]*\).*/\1/p')
	k=$(tr -d '\r' < "$log" | grep -m1 '^LAB-KASLR')
	text=$(lab_kv "$k" text) code=$(lab_kv "$k" code)
	lab_result minivmm_kaslr_phys_offset "0x${phys:-none}"
	lab_result minivmm_kaslr_virt_offset "0x${virt:-none}"
	lab_result minivmm_guest_text "${text:-none}"
	lab_result minivmm_guest_kernel_code "${code:-none}"
	grep -q 'KASLR: moved by minivmm' "$log" || fail "minivmm: the kernel was not moved (KASLR): $(grep -m1 'ELF kernel' "$log")"
	if [ -z "$phys" ] || [ -z "$virt" ] || [ -z "$text" ] || [ -z "$code" ]; then
		fail "minivmm KASLR: offsets (${line:-no debug line}) or the guest's addresses (${k:-no LAB-KASLR line}) missing"
	elif [ "$text" != "$(printf '%016x' $((0xffffffff81000000 + 0x$virt)))" ]; then
		fail "minivmm KASLR: the guest's _text is $text, minivmm moved it by 0x$virt"
	elif [ "$((16#$code))" != "$((0x1000000 + 0x$phys))" ]; then
		fail "minivmm KASLR: the guest's kernel code starts at $code, minivmm put it at +0x$phys"
	else
		echo "test-boot-net: [minivmm] KASLR by minivmm: _text $text, code at 0x$code (offsets +0x$virt, +0x$phys)"
	fi
else
	lab_result minivmm_status failed
	fail "minivmm"
fi
ip link del tap1

# --- minivmm, the guest's own decompressor (--decompress guest) --------------
ip neigh flush dev br0
lab_tap_create tap2 br0 >/dev/null || exit 1
# shellcheck disable=SC2086
if run_guest minivmm_guestdec minivmm "$LAB_RESULTS/l2-minivmm-guestdec-console.log" \
	"$MINIVMM_BIN" -v --mem 384M --cpus 2 --readonly --net "tap=tap2,mac=$MAC" \
	--decompress guest ${LAB_MINIVMM_ARGS:-} "$img"; then
	k=$(tr -d '\r' < "$LAB_RESULTS/l2-minivmm-guestdec-console.log" | grep -m1 '^LAB-KASLR')
	lab_result minivmm_guestdec_guest_text "$(lab_kv "$k" text)"
	lab_result minivmm_guestdec_status ok
else
	lab_result minivmm_guestdec_status failed
	fail "minivmm --decompress guest"
fi
ip link del tap2

# --- SR-IOV: VFs on the PF, one bound to vfio-pci ---------------------------
if vfs=$(lab_vfs_create "$pf" 2) && [ "$(echo "$vfs" | wc -l)" = 2 ]; then
	vf0=$(echo "$vfs" | head -n1)
	lab_result vf_pci "$(echo $vfs)"
	if grp=$(lab_vf_bind_vfio "$vf0"); then
		lab_result vf0_vfio "$grp"
	else
		fail "binding VF $vf0 to vfio-pci"
	fi
else
	fail "creating 2 VFs on $pf"
fi

echo "test-boot-net: results:"
sed 's/^/  /' "$LAB_RESULTS/results.txt"
for k in boot_s iperf3_tx_mbps iperf3_rx_mbps; do
	q=$(sed -n "s/^qemu_$k=//p" "$LAB_RESULTS/results.txt" | tail -n1)
	m=$(sed -n "s/^minivmm_$k=//p" "$LAB_RESULTS/results.txt" | tail -n1)
	[ -n "$q" ] && [ -n "$m" ] && lab_result "ratio_minivmm_over_qemu_$k" \
		"$(awk -v a="$m" -v b="$q" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "nan" }')"
done
m=$(sed -n "s/^minivmm_boot_s=//p" "$LAB_RESULTS/results.txt" | tail -n1)
d=$(sed -n "s/^minivmm_guestdec_boot_s=//p" "$LAB_RESULTS/results.txt" | tail -n1)
[ -n "$m" ] && [ -n "$d" ] && lab_result ratio_decompress_host_over_guest_boot_s \
	"$(awk -v a="$m" -v b="$d" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "nan" }')"
# minivmm's virtio-net must not be far below QEMU's in the same L1: at least a
# quarter, per direction (a QEMU baseline that failed gives no comparison, said
# so). One 5 s sample of the same VMM spreads over 4x between runs in the lab
# (QEMU tx 81-354 Mbit/s), so half fails healthy builds; a broken path (the VF
# stall moved 1-10 Mbit/s) is far below a quarter and every second must carry
# data besides.
for d in tx rx; do
	q=$(sed -n "s/^qemu_iperf3_${d}_mbps=//p" "$LAB_RESULTS/results.txt" | tail -n1)
	m=$(sed -n "s/^minivmm_iperf3_${d}_mbps=//p" "$LAB_RESULTS/results.txt" | tail -n1)
	if [ -z "$q" ]; then
		echo "test-boot-net: no QEMU figure for $d: minivmm's $d throughput (${m:-none}) not compared"
	elif [ -z "$m" ] || awk -v a="$m" -v b="$q" 'BEGIN { exit !(a < b / 4) }'; then
		fail "minivmm virtio-net $d ${m:-none} Mbit/s is below a quarter of QEMU's $q Mbit/s"
	else
		echo "test-boot-net: ok: minivmm virtio-net $d $m Mbit/s, QEMU $q Mbit/s"
	fi
done
exit $rc
