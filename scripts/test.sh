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
echo "=== unit and kvm suites under ASan+UBSan (build-asan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --suite unit --suite kvm --print-errorlogs || status=1
echo "=== kvm suite under ThreadSanitizer (build-tsan)"
# gcc 12's TSan cannot start with more than 28 bits of mmap randomisation
# ("unexpected memory mapping"); without ASLR it always can
noaslr=()
if ! build-tsan/minivmm --version >/dev/null 2>&1; then
	echo "TSan does not start with this kernel's ASLR (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null)): running it with setarch -R"
	noaslr=(setarch "$(uname -m)" -R)
fi
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	"${noaslr[@]}" meson test -C build-tsan --suite kvm --print-errorlogs || status=1
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
