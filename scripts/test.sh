#!/usr/bin/env bash
# The test command: installs what is needed, builds (normal, ASan+UBSan and
# ThreadSanitizer), and runs the three suites: unit (Criterion), kvm (tiny
# guests on /dev/kvm) and lab (Linux guests in the nested lab). The unit and
# kvm suites also run under ASan+UBSan, the kvm suite under ThreadSanitizer
# (vCPU threads, event loop, devices; Criterion's own process arena cannot
# start under TSan, so the unit suite does not run there). Tests that cannot run here exit 77 and say why;
# meson prints them as SKIP.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --lab
bash scripts/build.sh --asan --tsan

status=0
# gcc 12's sanitizers cannot start with more than 28 bits of mmap
# randomisation (vm.mmap_rnd_bits: TSan says "unexpected memory mapping", ASan
# loops on DEADLYSIGNAL); without ASLR they always can. sanitizer_prefix DIR
# prints nothing, or "setarch <arch> -R" when DIR's minivmm does not start.
sanitizer_prefix() {
	if ! timeout 20 "$1/minivmm" --version >/dev/null 2>&1; then
		echo "$1: the sanitizer does not start with this kernel's ASLR (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null)): running it with setarch -R" >&2
		echo "setarch $(uname -m) -R"
	fi
}
echo "=== unit and kvm suites under ASan+UBSan (build-asan)"
# shellcheck disable=SC2046
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(sanitizer_prefix build-asan) meson test -C build-asan --suite unit --suite kvm --print-errorlogs || status=1
echo "=== kvm suite under ThreadSanitizer (build-tsan)"
# shellcheck disable=SC2046
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	$(sanitizer_prefix build-tsan) meson test -C build-tsan --suite kvm --print-errorlogs || status=1
echo "=== unit, kvm and lab suites (build)"
meson test -C build --suite unit --suite kvm --suite lab --print-errorlogs || status=1
# one closing line with the totals of both runs
python3 - build-asan/meson-logs/testlog.json build-tsan/meson-logs/testlog.json \
	build/meson-logs/testlog.json <<'PY' || true
import json, sys
ok = fail = skip = 0
for path in sys.argv[1:]:
    try:
        for line in open(path):
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"): ok += 1
            elif r == "SKIP": skip += 1
            else: fail += 1
    except FileNotFoundError:
        pass
print(f"{ok} passed, {fail} failed, {skip} skipped")
PY
exit $status
