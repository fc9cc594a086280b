#!/bin/bash
# Lab self-test (runs on the host, not in L1, a few seconds): the guest-run
# policy of l1-lib.sh (lab_guest_run, lab_guest_verdict, lab_guest_try) on
# fake VMMs, small scripts that print what a VMM and its guest would and end
# the way a real one can. Only a documented environmental failure may be run
# again; a crash, a sanitizer report, a KVM internal error, a hang after
# readiness or a failed guest command fails at once.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/lab-verdict.XXXXXX)
trap 'rm -rf "$work"' EXIT
export LAB_RESULTS=$work
# shellcheck source=tests/lab/l1-lib.sh
. "$HERE/l1-lib.sh"
rc=0
fail() { echo "test-verdict: FAIL: $*"; rc=1; }
pass() { echo "test-verdict: ok: $*"; }

# fake NAME BODY: a fake VMM; it prints the guest's readiness first unless
# BODY starts with "noready"
fake() {
	local f=$work/$1
	{
		echo '#!/bin/bash'
		case $2 in noready*) ;; *) echo 'echo "LAB-GUEST-READY uptime=1.0 ip=none"' ;; esac
		echo "${2#noready}"
	} > "$f"
	chmod +x "$f"
	echo "$f"
}
# expect NAME KIND "VERDICT-REGEX" RUNS BODY: lab_guest_try on the fake
# must end with a verdict matching the regex after exactly RUNS runs
expect() {
	local name=$1 kind=$2 re=$3 runs=$4 f n
	f=$(fake "$name" "$5")
	: > "$work/results.txt"
	LAB_L2_TRIES=3 LAB_L2_STALL=${STALL:-30} LAB_L2_TIMEOUT=60 \
		lab_guest_try "$name" "$kind" "$work/$name.log" "$f" > "$work/$name.out" 2>&1
	n=$(grep -c "^l1-lib: \[$name\] run [0-9]*:" "$work/$name.out")
	if [[ $LAB_GUEST_VERDICT =~ $re ]] && [ "$n" = "$runs" ]; then
		pass "$name: '$LAB_GUEST_VERDICT' after $n run(s)"
	else
		fail "$name: '$LAB_GUEST_VERDICT' after $n run(s), expected /$re/ after $runs"
		sed 's/^/    | /' "$work/$name.out"
	fi
}

expect clean minivmm '^ok$' 1 'echo LAB-GUEST-RC=0; exit 0'
expect segfault minivmm '^fail: the VMM died on signal 11' 1 'kill -SEGV $$'
expect abort minivmm '^fail: the VMM died on signal 6' 1 'kill -ABRT $$'
expect asan minivmm '^fail: crash or sanitizer report: .*AddressSanitizer' 1 \
	'echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1"; exit 1'
expect ubsan minivmm '^fail: crash or sanitizer report: .*runtime error' 1 \
	'echo "virtio/queue.c:10:5: runtime error: load of misaligned address"; echo LAB-GUEST-RC=0; exit 0'
expect kvm-internal minivmm '^fail: crash or sanitizer report: .*KVM internal error' 1 \
	'echo "minivmm: vcpu: error: 0: KVM internal error, suberror 1"; exit 1'
expect exit-status minivmm '^fail: exit status 3' 1 'echo LAB-GUEST-RC=0; exit 3'
expect guest-cmd minivmm '^fail: the guest.s command failed \(LAB-GUEST-RC=1\).*LAB-IPERF3' 1 \
	'echo "LAB-IPERF3 if=eth0 dir=tx FAIL why=iperf3-status-1-intervals-3"; echo LAB-GUEST-RC=1; exit 0'
expect stalled-stream minivmm '^fail: the guest.s command failed \(LAB-GUEST-RC=1\).*LAB-IPERF3-STALL if=eth0 dir=tx: 9 of 10' 1 \
	'echo "LAB-IPERF3 if=eth0 dir=tx mbps=10.7 secs=10 zero_secs=9"; echo "LAB-IPERF3-STALL if=eth0 dir=tx: 9 of 10 seconds carried no data"; echo LAB-GUEST-RC=1; exit 0'
expect never-ready minivmm '^fail: the guest never printed LAB-GUEST-READY' 1 'noready echo booting; exit 0'
expect triple-fault minivmm '^env: L2 triple fault' 3 \
	'echo "minivmm: vcpu: 0: triple fault: resetting"; echo "minivmm: vcpu: error: 0: exception injected 1 nr 14 error code 0x18"; exit 0'
expect qemu-baseline qemu '^env: QEMU baseline: exit status 1' 3 'exit 1'
STALL=3 expect hang-after-ready minivmm '^fail: the console went silent after the guest was ready' 1 'sleep 60'
# the retries are counted and each failed console kept
grep -qx 'triple-fault_env_retries=2' "$work/results.txt" 2>/dev/null ||
	grep -q 'triple-fault_env_retries=2' "$work/triple-fault.out" &&
	pass "env retries counted (triple-fault_env_retries=2)" || fail "env retries not counted"
[ -f "$work/triple-fault.log.try1" ] && [ -f "$work/triple-fault.log.try2" ] &&
	pass "each retried console kept (.try1, .try2)" || fail "retried consoles not kept"
[ -z "$(pgrep -f "$work/")" ] && pass "no fake VMM left running" || fail "a fake VMM is still running"
exit $rc
