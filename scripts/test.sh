#!/usr/bin/env bash
# The test command: installs what is needed, builds (normal, ASan+UBSan and
# ThreadSanitizer), and runs the three suites: unit (Criterion), kvm (tiny
# guests on /dev/kvm) and lab (Linux guests in the nested lab), then the
# fuzz suite (libFuzzer harnesses, clang build in build-fuzz). The unit and
# kvm suites also run under ASan+UBSan, the kvm suite under ThreadSanitizer
# (vCPU threads, event loop, devices; Criterion's own process arena cannot
# start under TSan, so the unit suite does not run there). Tests that cannot run here exit 77 and say why;
# meson prints them as SKIP.
set -euo pipefail
cd "$(dirname "$0")/.."

# Under CI the lab's and minivmm's environment knobs are dropped: none may
# weaken a test there (fewer boots, another binary, shorter streams)
if [ "${CI:-}" = true ]; then
	for v in $(compgen -e | grep -E '^(LAB|MINIVMM)_' || true); do
		echo "test.sh: CI: ignoring $v=${!v}" >&2
		unset "$v"
	done
fi

bash scripts/deps.sh --lab
bash scripts/build.sh --asan --tsan

status=0
# A host without a usable /dev/kvm (some CI machines are guests whose kernel
# does not bind KVM) skips the kvm suite and the unit tests that need KVM
# here; the lab's L1 has KVM (nested SVM), and its test lab-kvm runs them
# there, for the sanitizer builds too. Under CI such a skip is accepted only
# for a test that passed in L1 (scripts/test-summary.py --lab-kvm).
if ! { [ -c /dev/kvm ] && python3 -c 'import fcntl, os, sys; fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC); sys.exit(0 if fcntl.ioctl(fd, 0xAE00) == 12 else 1)' 2>/dev/null; }; then
	echo "test.sh: this host has no usable /dev/kvm ($( [ -e /dev/kvm ] && echo 'it does not answer' || echo 'missing')): the kvm suite runs in the lab's L1 (lab-kvm) for build, build-asan and build-tsan" >&2
	export LAB_KVM_BUILDS="$PWD/build $PWD/build-asan $PWD/build-tsan"
fi
# 2 MiB huge pages for the unit test of hugetlbfs-backed guest RAM
# (test_mem_hugetlb, which needs 16 free): reserved here, as root
free_huge=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free_huge:-0}" -lt 16 ]; then
	sysctl -q vm.nr_hugepages=$(( $(cat /proc/sys/vm/nr_hugepages) + 16 - ${free_huge:-0} )) ||
		echo "test.sh: could not reserve 2 MiB huge pages: test_mem_hugetlb will skip" >&2
fi
# gcc 12's sanitizers cannot always start with more than 28 bits of mmap
# randomisation (vm.mmap_rnd_bits=32: TSan says "unexpected memory mapping"
# every time; ASan loops on DEADLYSIGNAL in about 1 start of 10, measured
# 2026-12-03, so a trial start cannot tell); without ASLR they always can,
# and ASLR is no part of what the sanitizer runs test. sanitizer_prefix DIR
# prints "setarch <arch> -R", and says so when this kernel's randomisation
# is above 28 bits.
sanitizer_prefix() {
	local bits
	bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
	[ "$bits" -le 28 ] ||
		echo "$1: vm.mmap_rnd_bits=$bits: the sanitizer runs without ASLR (setarch -R)" >&2
	echo "setarch $(uname -m) -R"
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
# the libFuzzer harnesses (tests/fuzz), about 20 s each over their corpus,
# in a clang build of their own: a crash, leak or sanitizer report fails
echo "=== fuzz suite (build-fuzz, clang + libFuzzer + ASan/UBSan)"
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=enabled -Dtests=disabled || status=1
fi
if [ -f build-fuzz/build.ninja ]; then
	# without ASLR, always: clang 14's ASan shadow collides with the kernel's
	# randomised mappings under vm.mmap_rnd_bits=32 (about 3 harness starts
	# in 10 segfaulted before main on such a host, measured 2026-12-03), and
	# where a harness's code lands is no part of what it tests
	setarch "$(uname -m)" -R meson test -C build-fuzz --suite fuzz --print-errorlogs || status=1
else
	echo "test.sh: build-fuzz could not be set up with clang" >&2
	status=1
fi
# one closing line with the totals of the four runs. Under CI a skipped
# test is a failure (a host that lost /dev/kvm must not pass by skipping the
# kvm suites), except the skips listed in ALLOWED_SKIPS with the reason they
# must print: host limits that no test can work around, named here.
skips_flag=""
[ "${CI:-}" = true ] && skips_flag=--skips-fail
python3 scripts/test-summary.py $skips_flag --lab-kvm build/tests/lab/lab-results/kvm \
	build-asan/meson-logs/testlog.json \
	build-tsan/meson-logs/testlog.json build/meson-logs/testlog.json \
	build-fuzz/meson-logs/testlog.json || status=1
exit $status
