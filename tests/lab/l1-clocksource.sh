#!/bin/bash
# Lab tool (runs inside L1 via tests/lab/lab.sh; not a test): what L1's
# clocksource costs under TCG (the hardening issue: both L1 vCPUs were once
# caught spinning in read_hpet). For each clocksource L1 offers: the cost of
# one clock_gettime() (two runs of 200,000 calls), then one minivmm guest
# boot on L1's boot clocksource, with `quiet`, and on tsc and acpi_pm:
# exec to ready, the guest's uptime at ready, its console bytes and port
# I/O exits (results.txt: l1_<cs>_ns_per_clock_gettime, b-<cs>_ready_s, ...).
#
#   MINIVMM_BIN=build/minivmm tests/lab/lab.sh run tests/lab/l1-clocksource.sh
#
# To boot L1 itself on another clocksource: LAB_L1_APPEND="quiet loglevel=3
# clocksource=acpi_pm" (lab.sh).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"
: > "$LAB_RESULTS/results.txt"
cs=/sys/devices/system/clocksource/clocksource0
boot_cs=$(cat $cs/current_clocksource)
lab_result l1_clocksource_boot "$boot_cs"
lab_result l1_clocksources "\"$(cat $cs/available_clocksource)\""
dmesg | grep -iE "clocksource|tsc|hpet" | head -30 | sed 's/^/dmesg | /'
measure() {
	python3 - <<'PY'
import time
n = 200000
t0 = time.perf_counter_ns()
for _ in range(n):
    time.clock_gettime_ns(time.CLOCK_MONOTONIC)
t1 = time.perf_counter_ns()
print("%.0f" % ((t1 - t0) / n))
PY
}
img=$(lab_guest_img /tmp/guest.img) || exit 1
boot() { # NAME EXTRA_CMDLINE
	lab_guest_run "$1" "$LAB_RESULTS/l2-$1.log" "$MINIVMM_BIN" -v --mem 512M --cpus 2 --readonly \
		-c "console=ttyS0 root=/dev/vda lab.cmd=none lab.ip= $2" "$img"
	[ -n "$LAB_GUEST_T_READY" ] && lab_result "$1_ready_s" "$(lab_elapsed "$LAB_GUEST_T0" "$LAB_GUEST_T_READY")"
	lab_result "$1_rc" "$LAB_GUEST_RC"
	lab_result "$1_uptime_at_ready" "$(tr -d '\r' < "$LAB_RESULTS/l2-$1.log" | sed -n 's/.*LAB-GUEST-READY uptime=\([0-9.]*\).*/\1/p')"
	lab_result "$1_console_bytes" "$(tr -d '\r' < "$LAB_RESULTS/l2-$1.log" | grep -v '^minivmm:' | wc -c)"
	lab_result "$1_io_exits" "$(sed -n 's/.*vcpu0 exits: io \([0-9]*\).*/\1/p' "$LAB_RESULTS/l2-$1.log")+$(sed -n 's/.*vcpu1 exits: io \([0-9]*\).*/\1/p' "$LAB_RESULTS/l2-$1.log")"
}
read -r -a avail < $cs/available_clocksource
for c in "${avail[@]}"; do
	echo "$c" > $cs/current_clocksource || continue
	sleep 1
	lab_result "l1_${c}_ns_per_clock_gettime" "$(measure)"
	lab_result "l1_${c}_ns_per_clock_gettime_2" "$(measure)"
done
echo "$boot_cs" > $cs/current_clocksource
boot "b-$boot_cs" ""
boot "b-$boot_cs-quiet" "quiet"
for c in tsc acpi_pm; do
	[ "$c" = "$boot_cs" ] && continue
	grep -qw "$c" $cs/available_clocksource || continue
	echo "$c" > $cs/current_clocksource || continue
	boot "b-$c" ""
done
echo "$boot_cs" > $cs/current_clocksource
boot "b-$boot_cs-again" ""
