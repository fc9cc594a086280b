#!/bin/bash
# A lab tool, not a test (runs inside L1 via tests/lab/lab.sh run): what the
# guest exits to L1's KVM for while it boots, minivmm against QEMU q35, the
# bench's guest (512 MiB, 2 vCPUs, virtio-blk read-only, virtio-net on tap0
# with each VMM's userspace backend), booted to LAB-GUEST-READY once per VMM
# and console mode (`quiet` and the full console).
#
#   MINIVMM_BIN=... tests/lab/lab.sh run --results DIR tests/lab/boot-exits.sh
#
# L1's tracefs counts, per boot (one VMM at a time, so the counts are that
# VMM's): KVM exits by exit code (kvm_exit), port I/O by port, MMIO by guest
# physical page, MSR accesses by MSR, and returns to the VMM (KVM_RUN
# returning, kvm_userspace_exit) by reason. Results: DIR/<vmm>-<mode>.hist
# (the histograms), results.txt (be_<vmm>_<mode>_exits, _userspace, _ready).
# Environment: MINIVMM_BIN (required), LAB_BE_APPEND (more guest command line).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MEM=512
MAC=52:54:00:1a:00:21
T=/sys/kernel/tracing
say() { echo "boot-exits: $*"; }
[ -n "$B" ] && [ -x "$B" ] || { say "MINIVMM_BIN not set or not executable"; exit 1; }
[ -d "$T/events" ] || mount -t tracefs nodev "$T" 2> /dev/null
[ -e "$T/events/kvm/kvm_exit/trigger" ] || { say "no kvm_exit trace event in L1 (tracefs: $T)"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_tap_create tap0 > /dev/null || exit 1
ip addr add 10.0.5.1/24 dev tap0
: > "$LAB_RESULTS/results.txt"

# event:trigger pairs, each a histogram
HISTS=(
	"kvm_exit:hist:keys=exit_reason.hex:sort=hitcount.descending:size=256"
	"kvm_pio:hist:keys=port.hex,rw:sort=hitcount.descending:size=256"
	"kvm_mmio:hist:keys=gpa.hex:sort=hitcount.descending:size=1024"
	"kvm_msr:hist:keys=ecx.hex,write:sort=hitcount.descending:size=256"
	"kvm_userspace_exit:hist:keys=reason:sort=hitcount.descending:size=128"
)
hist_on() {
	local h ev
	for h in "${HISTS[@]}"; do
		ev=${h%%:*}
		echo "${h#*:}" > "$T/events/kvm/$ev/trigger" || say "cannot set $h"
	done
}
# hist_off FILE: append every histogram to FILE, then remove the triggers
hist_off() {
	local h ev
	for h in "${HISTS[@]}"; do
		ev=${h%%:*}
		{ echo "=== $ev: ${h#*:}"; awk '/^{/ && n++ < 60 || /Hits:|Entries:|Dropped:/' "$T/events/kvm/$ev/hist"; } >> "$1"
		echo "!${h#*:}" > "$T/events/kvm/$ev/trigger"
	done
}

one() {
	local vmm=$1 mode=$2 log=$LAB_RESULTS/$1-$2.log hist=$LAB_RESULTS/$1-$2.hist
	local append="console=ttyS0 root=/dev/vda lab.cmd=none ${LAB_BE_APPEND:-}"
	[ "$mode" = quiet ] && append="$append quiet"
	local -a cmd
	case $vmm in
	minivmm) cmd=("$B" --mem "${MEM}M" --cpus 2 --readonly --net "tap=tap0,mac=$MAC,vhost=off" -c "$append" "$img") ;;
	qemu)
		lab_qemu_cmd q35 "$MEM" "$append" "$img" || exit 1
		cmd=("${LAB_QEMU_CMD[@]}" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off
			-device "virtio-net-pci,netdev=n0,mac=$MAC") ;;
	esac
	: > "$hist"
	hist_on
	python3 "$LAB_SRCDIR/tests/lab/stamp.py" "${cmd[@]}" < /dev/null > "$log" 2>&1 &
	local pid=$! waited=0
	while ! grep -q LAB-GUEST-READY "$log" && kill -0 "$pid" 2> /dev/null && [ $waited -lt 600 ]; do
		sleep 0.5
		waited=$((waited + 1))
	done
	hist_off "$hist"
	kill "$pid" 2> /dev/null
	pkill -f "tap=tap0,mac=$MAC" 2> /dev/null
	pkill -f "ifname=tap0" 2> /dev/null
	wait "$pid" 2> /dev/null
	local ready exits ue
	ready=$(grep -m1 'LAB-GUEST-READY' "$log" | cut -d' ' -f1)
	exits=$(awk '/^=== kvm_exit: hist:keys=exit_reason/ { on = 1; next } /^===/ { on = 0 } on && /Hits:/ { print $2 }' "$hist")
	ue=$(awk '/^=== kvm_userspace_exit/ { on = 1; next } /^===/ { on = 0 } on && /Hits:/ { print $2 }' "$hist")
	lab_result "be_${vmm}_${mode}_ready" "${ready:-none}"
	lab_result "be_${vmm}_${mode}_exits" "${exits:-none}"
	lab_result "be_${vmm}_${mode}_userspace" "${ue:-none}"
	say "$vmm $mode: ready at ${ready:-never} s; KVM exits ${exits:-?}, returns to the VMM ${ue:-?}"
	sleep 1
}

# a first minivmm boot fills its kernel cache, as on any host; not counted
timeout 300 "$B" --mem "${MEM}M" --cpus 1 --readonly -c "console=ttyS0 root=/dev/vda quiet lab.cmd=none" "$img" \
	< /dev/null > "$LAB_RESULTS/warm-up.log" 2>&1
for mode in quiet full; do
	one minivmm "$mode"
	one qemu "$mode"
done
for f in "$LAB_RESULTS"/*.hist; do
	say "== $(basename "$f")"
	awk '/^===/ { print; n = 0; next } /^{/ && n < 12 { print; n++ } /Hits:|Entries:/ { print }' "$f"
done
exit 0
