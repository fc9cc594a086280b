#!/bin/bash
# A lab tool, not a test (runs inside L1 via tests/lab/lab.sh run): where a
# quiet boot's time goes, minivmm against QEMU q35, the same guest as the
# bench's quiet boots (512 MiB, 2 vCPUs, virtio-blk read-only, virtio-net on
# tap0 with each VMM's userspace backend, `quiet`), N boots each, alternating.
#
#   MINIVMM_BIN=... tests/lab/lab.sh run --results DIR tests/lab/boot-phases.sh
#
# Every line the VMM prints (the guest's console and minivmm's -v log) is
# stamped by L1 with the seconds since the VMM's exec (tests/lab/stamp.py),
# so the log lines between the guest's init line and LAB-GUEST-READY show
# which device work falls there. The guest runs lab.cmd=boot-trace: after
# LAB-GUEST-READY it prints the kernel's log (booted with initcall_debug
# printk.time=1: each module's init and its duration, the guest's clock) and
# the init script's own steps (LAB-STEP lines, guest uptime), then powers
# off. Results: results.txt (bp_<vmm>_<n>_init, _ready, guest uptimes),
# DIR/<vmm>-<n>.log (the stamped console).
# Environment: MINIVMM_BIN (required), LAB_BP_BOOTS (default 3),
# LAB_BP_APPEND (more guest command line).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
N=${LAB_BP_BOOTS:-3}
MEM=512
MAC=52:54:00:1a:00:20
[ -n "$B" ] && [ -x "$B" ] || { echo "boot-phases: MINIVMM_BIN not set or not executable"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_tap_create tap0 > /dev/null || exit 1
ip addr add 10.0.5.1/24 dev tap0
: > "$LAB_RESULTS/results.txt"
CMDLINE="console=ttyS0 root=/dev/vda quiet initcall_debug printk.time=1 log_buf_len=1M lab.cmd=boot-trace ${LAB_BP_APPEND:-}"
say() { echo "boot-phases: $*"; }

# one boot: VMM N; the stamped console in $LAB_RESULTS/VMM-N.log
one() {
	local vmm=$1 n=$2 log=$LAB_RESULTS/$1-$2.log
	local -a cmd
	case $vmm in
	minivmm) cmd=("$B" -v --mem "${MEM}M" --cpus 2 --readonly --net "tap=tap0,mac=$MAC,vhost=off" -c "$CMDLINE" "$img") ;;
	qemu)
		lab_qemu_cmd q35 "$MEM" "$CMDLINE" "$img" || exit 1
		cmd=("${LAB_QEMU_CMD[@]}" -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off
			-device "virtio-net-pci,netdev=n0,mac=$MAC") ;;
	esac
	timeout 300 python3 "$LAB_SRCDIR/tests/lab/stamp.py" "${cmd[@]}" < /dev/null > "$log" 2>&1
	local t_init t_ready u_init u_ready
	t_init=$(grep -m1 'lab-guest: init at uptime' "$log" | cut -d' ' -f1)
	t_ready=$(grep -m1 'LAB-GUEST-READY' "$log" | cut -d' ' -f1)
	u_init=$(sed -n 's/.*lab-guest: init at uptime \([0-9.]*\)s.*/\1/p' "$log" | head -n1)
	u_ready=$(sed -n 's/.*LAB-GUEST-READY uptime=\([0-9.]*\).*/\1/p' "$log" | head -n1)
	lab_result "bp_${vmm}_${n}_init" "${t_init:-none}"
	lab_result "bp_${vmm}_${n}_ready" "${t_ready:-none}"
	lab_result "bp_${vmm}_${n}_guest_init" "${u_init:-none}"
	lab_result "bp_${vmm}_${n}_guest_ready" "${u_ready:-none}"
	say "$vmm $n: exec to init ${t_init:-never} s, to ready ${t_ready:-never} s (guest uptime ${u_init:-?} -> ${u_ready:-?})"
	# the init script's steps: L1's stamp and the guest's uptime
	say "$vmm $n: steps: $(tr -d '\r' < "$log" | sed -n 's/^\([0-9.]*\) LAB-STEP \([^ ]*\) uptime=\([0-9.]*\).*/\2 \1|\3/p' | paste -sd' ')"
}

# a first minivmm boot fills its kernel cache, as on any host; not counted
timeout 300 "$B" --mem "${MEM}M" --cpus 1 --readonly -c "console=ttyS0 root=/dev/vda quiet lab.cmd=none" "$img" \
	< /dev/null > "$LAB_RESULTS/warm-up.log" 2>&1
for ((i = 1; i <= N; i++)); do
	one minivmm "$i"
	one qemu "$i"
done
# the slowest module inits and steps of each VMM's boots, guest clock
for v in minivmm qemu; do
	say "$v: module inits over 20 ms (guest clock, usecs), all boots:"
	cat "$LAB_RESULTS/$v"-*.log | tr -d '\r' | sed -En 's/.*initcall ([^ ]*)( \[[^]]*\])? returned [-0-9]* after ([0-9]*) usecs.*/\3 \1/p' |
		awk '$1 > 20000' | sort -k2 | awk '{ s[$2] = s[$2] " " $1 } END { for (k in s) print "  " k ":" s[k] }'
done
exit 0
