#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-stream): TCP
# streams that must not stall, over the VF and over virtio-net, in several
# fresh guest boots (docs/lab.md, "The stream test").
#
# A guest with only a VF (--mem 512M, stock igbvf) is booted
# LAB_STREAM_BOOTS times (4); each boot runs iperf3 from the guest to L1
# (over the PF, through the igb's switch) and back, LAB_STREAM_SECS (10) s
# each way, and every one-second interval must carry data: a stall (guest RAM
# mapped with 4 KiB pages makes the lab's emulated IOMMU/igb lose a transmit
# segment for good, docs/lab.md) is a failure, not a retry. The guest to L1
# stream must also reach a quarter of the L1 to guest one. Then
# LAB_STREAM_VIRTIO_BOOTS (1) boots with only virtio-net (tap) get the same
# check. While each guest runs, the test reads how its RAM is mapped
# (/proc/PID/smaps, KVM's pages_2m in debugfs): guest RAM must be 2 MiB
# aligned and backed by huge pages.
# On a failure the run's capture on the PF (tcpdump, headers) and the L1 and
# guest counters are kept in $LAB_RESULTS/fail-*.
#
# LAB_STREAM_VMMS: the VMMs to boot, in order (default "minivmm", meaning
# $MINIVMM_BIN); an entry LABEL=PATH is another minivmm binary, "qemu" is
# QEMU (-machine q35 -cpu host, -device vfio-pci): for side-by-side figures
# (docs/lab.md). Only minivmm failures fail the test; QEMU's are recorded.
# Results: $LAB_RESULTS/results.txt (per boot: LABEL_PATH_N_{tx,rx}_mbps,
# ..._zero_secs, ..._ram; per VMM and path: median, min and max).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

BOOTS=${LAB_STREAM_BOOTS:-4}
VBOOTS=${LAB_STREAM_VIRTIO_BOOTS:-1}
SECS=${LAB_STREAM_SECS:-10}
MEM=512
VMMS=${LAB_STREAM_VMMS:-minivmm}
GUEST_DIR=$LAB_CACHE/guest
MACVF=52:54:00:1a:b0:00
MACV=52:54:00:1a:00:20
RES=$LAB_RESULTS/results.txt
: > "$RES"
OUT=/tmp/stream-test
mkdir -p "$OUT"
rc=0
fail() { echo "test-stream: FAIL: $*"; rc=1; }
pass() { echo "test-stream: ok: $*"; }
say() { echo "test-stream: $*"; }

[ -c /dev/kvm ] || { echo "test-stream: no /dev/kvm in L1"; exit 1; }
case " $VMMS " in
*" minivmm "*) [ -n "${MINIVMM_BIN:-}" ] && [ -x "$MINIVMM_BIN" ] ||
	{ echo "test-stream: MINIVMM_BIN not set or not executable"; exit 1; } ;;
esac
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_vf_tap_net || exit 1
pf=$LAB_PF vf=$LAB_VF
iperf_pid="" cap_pid=""
iperf3_restart() {
	[ -n "$iperf_pid" ] && { kill "$iperf_pid" 2>/dev/null; wait "$iperf_pid" 2>/dev/null; }
	iperf3 -s >> "$LAB_RESULTS/iperf3-server.log" 2>&1 &
	iperf_pid=$!
}
trap '[ -n "$iperf_pid" ] && kill $iperf_pid 2>/dev/null; [ -n "$cap_pid" ] && kill $cap_pid 2>/dev/null' EXIT
say "PF $pf, VF $vf (vfio-pci), VMMs: $VMMS; $BOOTS VF boots and $VBOOTS virtio-net boots each, ${SECS}s per direction"

# counters IF: an interface's counters in L1, on one line
counters() {
	echo "$1: $(ip -s -s link show "$1" 2>/dev/null | tr -s ' \n' ' ')"
	ethtool -S "$1" 2>/dev/null | grep -Ev ': 0$' | tr -s ' \n' ' '
	echo
}
# a hook of lab_guest_run: guest RAM's mapping, once, after the guest is ready
ram=""
ram_hook() {
	[ -z "$ram" ] && [ -n "$LAB_GUEST_T_READY" ] && ram=$(lab_vmm_hugepages "$1" "$MEM")
	return 0
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -g | sed -n '1p;$p' | tr '\n' ' '; }

# boot LABEL KIND BIN PATH N: one guest with only the VF (PATH vf) or only
# virtio-net (PATH virtio); records and checks its streams
boot() {
	local label=$1 kind=$2 bin=$3 path=$4 n=$5 name log mac ip peer cmdline d v verdict tx rx z
	name=${label}_${path}_$n
	log=$LAB_RESULTS/l2-$name.log
	mac=$MACVF ip=10.0.4.2/24 peer=10.0.4.1
	[ "$path" = virtio ] && mac=$MACV ip=10.0.5.2/24 peer=10.0.5.1
	cmdline="console=ttyS0 root=/dev/vda lab.cmd=nic-test lab.ip= lab.nic=$mac,$ip,$peer,$SECS"
	local -a dev
	if [ "$kind" = qemu ]; then
		dev=(-device "vfio-pci,host=$vf")
		[ "$path" = virtio ] && dev=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off
			-device "virtio-net-pci,netdev=n0,mac=$mac")
		set -- qemu-system-x86_64 -enable-kvm -machine q35 -cpu host -m "${MEM}M" -smp 2 \
			-nodefaults -no-user-config -display none -no-reboot -serial stdio -monitor none \
			-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" -append "$cmdline" \
			-drive "file=$img,format=raw,if=virtio,readonly=on" "${dev[@]}"
	else
		dev=(--vf "$vf")
		[ "$path" = virtio ] && dev=(--net "tap=tap0,mac=$mac")
		set -- "$bin" -v --mem "${MEM}M" --cpus 2 --readonly "${dev[@]}" -c "$cmdline" "$img"
	fi
	iperf3_restart
	counters "$pf" > "$OUT/counters-before"
	# the stream's headers on the PF (or tap), kept when the run fails
	d=$pf
	[ "$path" = virtio ] && d=tap0
	tcpdump -i "$d" -s 96 -w "$OUT/capture.pcap" -U tcp port 5201 > /dev/null 2>&1 &
	cap_pid=$!
	ram=""
	LAB_GUEST_HOOK=ram_hook
	# shellcheck disable=SC2034 # read by lab_guest_try
	LAB_GUEST_RETRY_HOOK=iperf3_restart
	lab_guest_try "$name" "$kind" "$log" "$@"
	LAB_GUEST_HOOK=""
	kill "$cap_pid" 2>/dev/null
	wait "$cap_pid" 2>/dev/null
	cap_pid=""
	verdict=$LAB_GUEST_VERDICT
	lab_result "${name}_verdict" "$verdict"
	[ -n "$LAB_GUEST_T_READY" ] && lab_result "${name}_boot_s" "$(lab_elapsed "$LAB_GUEST_T0" "$LAB_GUEST_T_READY")"
	lab_result "${name}_ram" "${ram:-NA}"
	tx="" rx=""
	for d in tx rx; do
		v=$(tr -d '\r' < "$log" | grep -m1 "LAB-IPERF3 if=[a-z0-9]* dir=$d ")
		lab_result "${name}_${d}_mbps" "$(lab_kv "$v" mbps)"
		lab_result "${name}_${d}_zero_secs" "$(lab_kv "$v" zero_secs)"
		lab_result "${name}_${d}_per_sec" "$(lab_kv "$v" per_sec)"
		[ "$d" = tx ] && tx=$(lab_kv "$v" mbps) || rx=$(lab_kv "$v" mbps)
	done
	local bad=""
	[ "$verdict" = ok ] || bad="$verdict"
	z=$(sed -n "s/^${name}_tx_zero_secs=//p;s/^${name}_rx_zero_secs=//p" "$RES" | tr '\n' ' ')
	case " $z " in *" 0 0 "*) ;; *) bad="${bad:+$bad; }seconds without data (tx rx): $z" ;; esac
	if [ -n "$tx" ] && [ -n "$rx" ] && awk -v t="$tx" -v r="$rx" 'BEGIN { exit !(t < r / 4) }'; then
		bad="${bad:+$bad; }guest to L1 $tx Mbit/s is below a quarter of L1 to guest ($rx Mbit/s)"
	fi
	# guest RAM on huge pages (minivmm; QEMU's is recorded only)
	if [ "$kind" = minivmm ]; then
		case "$ram" in
		*start_2m_aligned=1*) ;;
		*) bad="${bad:+$bad; }guest RAM not 2 MiB-aligned (${ram:-no 512 MiB mapping found})" ;;
		esac
		case "$ram" in
		*kvm_pages_2m=0*|*kvm_pages_2m=NA*|"") bad="${bad:+$bad; }KVM maps no guest RAM with 2 MiB pages ($ram)" ;;
		esac
	fi
	if [ -z "$bad" ]; then
		pass "$name: tx $tx Mbit/s, rx $rx Mbit/s, every second carried data; RAM: $ram"
		rm -f "$OUT/capture.pcap"
		return 0
	fi
	# keep what explains it
	mkdir -p "$LAB_RESULTS/fail-$name"
	mv "$OUT/capture.pcap" "$LAB_RESULTS/fail-$name/" 2>/dev/null
	{ cat "$OUT/counters-before"; counters "$pf"; counters tap0; } > "$LAB_RESULTS/fail-$name/l1-counters.txt"
	tr -d '\r' < "$log" | grep -E 'LAB-|iperf|sec ' > "$LAB_RESULTS/fail-$name/guest-streams.txt"
	dmesg | tail -n 50 > "$LAB_RESULTS/fail-$name/l1-dmesg-tail.txt"
	if [ "$kind" = qemu ]; then
		say "QEMU baseline $name did not pass (recorded, not a failure of the test): $bad"
		return 0
	fi
	fail "$name: $bad (kept in fail-$name/)"
}

for entry in $VMMS; do
	label=${entry%%=*} bin=${entry#*=} kind=minivmm
	[ "$entry" = minivmm ] && bin=$MINIVMM_BIN
	[ "$entry" = qemu ] && kind=qemu bin=qemu-system-x86_64
	say "=== $label ($bin)"
	for ((i = 1; i <= BOOTS; i++)); do boot "$label" "$kind" "$bin" vf "$i"; done
	for ((i = 1; i <= VBOOTS; i++)); do boot "$label" "$kind" "$bin" virtio "$i"; done
	for p in vf virtio; do
		for d in tx rx; do
			vals=$(sed -n "s/^${label}_${p}_[0-9]*_${d}_mbps=\([0-9.]*\)$/\1/p" "$RES" | tr '\n' ' ')
			[ -n "${vals// /}" ] || continue
			mm=$(echo "$vals" | minmax)
			lab_result "${label}_${p}_${d}_mbps_median_min_max" "$(echo "$vals" | median) ${mm% }"
			lab_result "${label}_${p}_${d}_mbps_all" "${vals% }"
		done
	done
done

say "results:"
sed 's/^/  /' "$RES"
[ $rc = 0 ] && say "PASS" || say "FAILED"
exit $rc
