#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-kvm): the kvm
# suite and the unit tests that need /dev/kvm, run on L1's KVM (nested SVM
# under L0's TCG). It is how those tests run on a host without /dev/kvm of
# its own (some CI machines are themselves guests whose kernel does not bind
# KVM): scripts/test.sh accepts the host's "/dev/kvm is missing" skips only
# when this test passed. On a host with /dev/kvm it is a second CPU vendor's
# KVM (L1 is AMD, with nested paging emulated by TCG) for the same tests.
#
# L1's root is this machine's, under a tmpfs overlay, so the build folders
# are where they are here, and writable (the logs stay in L1). For each
# build folder given in LAB_KVM_BUILDS (default: the build of MINIVMM_BIN),
# it runs `meson test --no-rebuild --suite kvm` and the unit tests named in
# LAB_KVM_UNIT (default: the Criterion tests that skip without /dev/kvm),
# then copies their testlogs to $LAB_RESULTS/testlog-<build>-kvm.json and
# testlog-<build>-unit.json (what scripts/test-summary.py --lab-kvm reads).
# A test that skips here fails this test: L1 has /dev/kvm. A test whose tiny
# guest met the lab's L2 triple fault (a shutdown in the delivery of a #PF,
# traced by L1's KVM during the test: docs/lab.md "The L2 triple faults") is
# run once more, loudly, and counted (kvm_env_reruns); kvm-env-rerun.py
# decides, and no other failure is run again.
# Environment: MINIVMM_BIN (required), LAB_KVM_BUILDS, LAB_KVM_UNIT,
# LAB_KVM_TIMEOUT_MULT (the meson timeout multiplier, 6: L1 runs minivmm
# under TCG).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
RES=$LAB_RESULTS/results.txt
: > "$RES"
rm -f "$LAB_RESULTS"/testlog-*.json
rc=0
fail() { echo "test-kvm: FAIL: $*"; rc=1; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-kvm: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-kvm: no /dev/kvm in L1"; exit 1; }
command -v meson >/dev/null || { echo "test-kvm: meson is not installed"; exit 1; }
builds=${LAB_KVM_BUILDS:-$(dirname "$B")}
units=${LAB_KVM_UNIT:-virtio_pci boot cpu inspect coalesced vcpu_pause}
mult=${LAB_KVM_TIMEOUT_MULT:-6}
echo "test-kvm: L1 CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) vCPUs, kernel $(uname -r)"

# sanitizer builds: the same rule as scripts/test.sh (always setarch -R: a
# trial start cannot tell whether gcc's ASan starts under this kernel's mmap
# randomisation); other builds: setarch -R only when their minivmm does not
# start
prefix_for() {
	case $(basename "$1") in
	*asan* | *tsan*) echo "setarch $(uname -m) -R" ;;
	*) timeout 60 "$1/minivmm" --version >/dev/null 2>&1 || echo "setarch $(uname -m) -R" ;;
	esac
}

# a heartbeat while meson runs (it prints a test's line only when the test
# ends): which kvm scripts run and for how long, so that a long test is not
# taken for a silent, stuck L1 by lab.sh's watchdog (LAB_L1_STALL), and a
# stuck one is named; the tests bound their own waits (tests/kvm/lib.sh:
# ctl, wait_in, wait_exit report the processes' threads and fail) and meson
# its timeouts
heartbeat() {
	local t0 now
	t0=$(date +%s)
	while sleep "${LAB_KVM_HEARTBEAT:-60}"; do
		now=$(date +%s)
		echo "test-kvm: $((now - t0)) s: running: $(pgrep -af 'tests/kvm/[a-z]+\.sh' | sed -E 's#.*tests/kvm/([a-z]+)\.sh.*#\1#' | sort | paste -sd' ' | sed 's/^$/-/')"
	done
}
heartbeat &
hb=$!
trap 'kill $hb 2>/dev/null' EXIT

# L1's KVM traces every shutdown exit of the tiny guests (a triple fault:
# SVM exit 127, VMX exit reason 2), with the guest's RIP and the exit's
# info as L0's emulation left them in the VMCB: minivmm cannot see where a
# guest died on AMD (KVM resets the vCPU before it reports the shutdown),
# the trace can. kvm_triplefault's deliberate ones are there too; any other
# is evidence for docs/lab.md "The L2 triple faults". The filter keeps the
# cost to the shutdowns alone.
T=/sys/kernel/tracing
trace_shutdowns=0
if { [ -d $T/events ] || mount -t tracefs nodev $T 2>/dev/null; } && [ -d $T/events/kvm/kvm_exit ]; then
	echo 0 > $T/tracing_on
	echo > $T/trace
	# CLOCK_MONOTONIC stamps, placed in meson's wall-clock test times by
	# kvm-env-rerun.py (the rerun below)
	echo mono > $T/trace_clock 2>/dev/null || true
	if echo '(isa == 2 && exit_reason == 127) || (isa == 1 && exit_reason == 2)' > $T/events/kvm/kvm_exit/filter &&
		echo 1 > $T/events/kvm/kvm_exit/enable && echo 1 > $T/tracing_on; then
		trace_shutdowns=1
	fi
fi
[ $trace_shutdowns = 1 ] || echo "test-kvm: no KVM trace of shutdown exits in L1 (tracefs or kvm:kvm_exit missing)"
[ $trace_shutdowns = 0 ] || grep -q '\[mono\]' $T/trace_clock || {
	echo "test-kvm: L1's trace clock is not CLOCK_MONOTONIC ($(cat $T/trace_clock)): no environmental rerun"
	trace_shutdowns=2
}
mono_offset=$(python3 -c 'import time; print("%.6f" % (time.time() - time.monotonic()))')
RERUN=$(dirname "$0")/kvm-env-rerun.py
env_reruns=0

# The lab's one environmental failure of a tiny guest, rerun once: a kvm
# test that failed because its guest triple-faulted while L1's KVM traced,
# during that test, a shutdown in the delivery of a page fault (docs/lab.md
# "The L2 triple faults": L0's TCG raises a #PF no page table gave, as
# kvm_migtls's counter guest in CI of e27ea2b, on the instruction after its
# port write). kvm-env-rerun.py says which; the rerun's record replaces the
# failed one in the testlog, which is kept in testlog-<build>-kvm-env.json.
# Anything else that failed stays failed. env_rerun BUILD_DIR NAME
env_rerun() {
	local bd=$1 name=$2 picked names=() n ev
	[ $trace_shutdowns = 1 ] || return 1
	grep -v '^#' $T/trace > "$LAB_RESULTS/kvm-trace-now.txt"
	picked=$(python3 "$RERUN" pick "$bd/meson-logs/kvm-lab.json" "$LAB_RESULTS/kvm-trace-now.txt" "$mono_offset")
	rm -f "$LAB_RESULTS/kvm-trace-now.txt"
	[ -n "$picked" ] || return 1
	while IFS=$'\t' read -r n ev; do
		echo "test-kvm: ENVIRONMENTAL RERUN: $name: $n: its guest triple-faulted while L1's KVM traced a shutdown delivering a #PF (docs/lab.md \"The L2 triple faults\"): $ev"
		names+=("$n")
	done <<< "$picked"
	env_reruns=$((env_reruns + ${#names[@]}))
	lab_result "kvm_${name//-/_}_env_reruns" "$(IFS=,; echo "${names[*]}")"
	rm -f "$bd/meson-logs/kvm-lab-rerun.json"
	# shellcheck disable=SC2086
	env "${env_opts[@]}" $pfx meson test -C "$bd" --no-rebuild --timeout-multiplier "$mult" \
		--print-errorlogs --logbase kvm-lab-rerun "${names[@]}" < /dev/null | cat
	python3 "$RERUN" merge "$bd/meson-logs/kvm-lab.json" "$bd/meson-logs/kvm-lab-rerun.json" \
		"$LAB_RESULTS/testlog-$name-kvm-env.json" > /dev/null || return 1
	# the suite passes now only if every record of it did
	python3 - "$bd/meson-logs/kvm-lab.json" <<'PY'
import json, sys
bad = [t["name"] for t in map(json.loads, filter(str.strip, open(sys.argv[1]))) if t.get("result") not in ("OK", "SKIP")]
print("test-kvm: after the rerun, failed: " + (", ".join(bad) or "none"))
sys.exit(1 if bad else 0)
PY
}

for bd in $builds; do
	name=$(basename "$bd")
	[ -f "$bd/build.ninja" ] || { fail "$bd is not a meson build folder"; continue; }
	env_opts=()
	case $name in
	*asan*) env_opts=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1) ;;
	*tsan*) env_opts=(TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1) ;;
	esac
	pfx=$(prefix_for "$bd")
	# the unit tests only where the build has them, and not under TSan:
	# Criterion's process arena cannot start there (scripts/test.sh runs no
	# unit suite in build-tsan, so none of its tests skipped on the host)
	unit_args=()
	case $name in *tsan*) units_here="" ;; *) units_here=$units ;; esac
	for u in $units_here; do
		meson test -C "$bd" --no-rebuild --list 2>/dev/null | grep -Eq "(^| )$u\$" && unit_args+=("$u")
	done
	rm -f "$bd/meson-logs/kvm-lab.json" "$bd/meson-logs/unit-lab.json"
	t0=$(lab_now)
	echo "test-kvm: === $name: kvm suite${unit_args:+ and ${unit_args[*]}}"
	# shellcheck disable=SC2086
	env "${env_opts[@]}" $pfx meson test -C "$bd" --no-rebuild --suite kvm \
		--timeout-multiplier "$mult" --print-errorlogs --logbase kvm-lab < /dev/null | cat
	st=${PIPESTATUS[0]}
	if [ "$st" -ne 0 ] && env_rerun "$bd" "$name"; then
		st=0
	fi
	if [ ${#unit_args[@]} -gt 0 ]; then
		# shellcheck disable=SC2086
		env "${env_opts[@]}" $pfx meson test -C "$bd" --no-rebuild "${unit_args[@]}" \
			--timeout-multiplier "$mult" --print-errorlogs --logbase unit-lab < /dev/null | cat
		[ "${PIPESTATUS[0]}" -eq 0 ] || st=1
	fi
	secs=$(lab_elapsed "$t0" "$(lab_now)")
	cp "$bd/meson-logs/kvm-lab.json" "$LAB_RESULTS/testlog-$name-kvm.json" 2>/dev/null
	cp "$bd/meson-logs/unit-lab.json" "$LAB_RESULTS/testlog-$name-unit.json" 2>/dev/null
	# every test must have run: a skip in L1, which has /dev/kvm, is a failure
	counts=$(python3 - "$LAB_RESULTS/testlog-$name-kvm.json" "$LAB_RESULTS/testlog-$name-unit.json" <<'PY'
import json, sys
n = {"OK": 0, "SKIP": 0, "other": 0}
skipped = []
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r == "OK":
            n["OK"] += 1
        elif r == "SKIP":
            n["SKIP"] += 1
            skipped.append(t.get("name", "?"))
        else:
            n["other"] += 1
print(n["OK"], n["SKIP"], n["other"], ",".join(skipped) or "-")
PY
)
	read -r ok skip other skipped <<< "$counts"
	echo "test-kvm: $name: $ok passed, $skip skipped ($skipped), $other failed, in $secs s"
	lab_result "kvm_${name//-/_}_passed" "$ok"
	lab_result "kvm_${name//-/_}_skipped" "$skip"
	lab_result "kvm_${name//-/_}_failed" "$other"
	lab_result "kvm_${name//-/_}_seconds" "$secs"
	[ "$st" -eq 0 ] || fail "$name: meson test failed"
	[ "${skip:-1}" -eq 0 ] || fail "$name: $skipped skipped in L1, which has /dev/kvm"
	[ "${ok:-0}" -gt 0 ] || fail "$name: no test ran"
done
lab_result kvm_builds "$(for bd in $builds; do basename "$bd"; done | paste -sd,)"
lab_result kvm_env_reruns "$env_reruns"
if [ $trace_shutdowns -ge 1 ]; then
	echo 0 > $T/tracing_on
	grep -v '^#' $T/trace > "$LAB_RESULTS/kvm-shutdown-exits.txt"
	echo 0 > $T/events/kvm/kvm_exit/enable
	echo 0 > $T/events/kvm/kvm_exit/filter
	n=$(grep -c . "$LAB_RESULTS/kvm-shutdown-exits.txt")
	lab_result kvm_shutdown_exits "$n"
	echo "test-kvm: $n shutdown exits in L1's KVM trace (kvm_triplefault makes some on purpose; kvm-shutdown-exits.txt):"
	head -n 20 "$LAB_RESULTS/kvm-shutdown-exits.txt" | sed 's/^/    /'
fi
[ $rc -eq 0 ] && echo "test-kvm: PASS"
exit $rc
