#!/bin/bash
# Lab self-test (runs on the host, not in L1, a few seconds): the guest-run
# policy of l1-lib.sh (lab_guest_run, lab_guest_verdict, lab_guest_try) on
# fake VMMs, small scripts that print what a VMM and its guest would and end
# the way a real one can. Only a documented environmental failure may be run
# again; a crash, a sanitizer report, a KVM internal error, a hang after
# readiness or a failed guest command fails at once. Then the iperf3 server
# the failover tests restart for a rerun (lab_iperf3_server).
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
# a hook with its arguments in the name is refused before the guest runs
LAB_GUEST_RETRY_HOOK="echo reset" expect hook-with-args minivmm "^fail: the test's hook 'echo reset' is not a command" 0 \
	'echo LAB-GUEST-RC=0; exit 0'
# the retries are counted and each failed console kept
grep -qx 'triple-fault_env_retries=2' "$work/results.txt" 2>/dev/null ||
	grep -q 'triple-fault_env_retries=2' "$work/triple-fault.out" &&
	pass "env retries counted (triple-fault_env_retries=2)" || fail "env retries not counted"
[ -f "$work/triple-fault.log.try1" ] && [ -f "$work/triple-fault.log.try2" ] &&
	pass "each retried console kept (.try1, .try2)" || fail "retried consoles not kept"
[ -z "$(pgrep -f "$work/")" ] && pass "no fake VMM left running" || fail "a fake VMM is still running"

# A rerun's iperf3 server (lab_iperf3_server): the server of a guest that
# died before its stream ended may still listen, or be busy with a client
# that is gone; the rerun's server must replace it, not fail to bind while
# the old one takes (or refuses) the rerun's client and writes to the old log.
servers() { pgrep -fc '^iperf3 -s -1 -i 0.1 ' || true; }
if ! command -v iperf3 > /dev/null || ! command -v ss > /dev/null; then
	fail "iperf3 and ss are needed for the server checks (scripts/deps.sh --lab installs them)"
elif lab_iperf3_listening; then
	fail "something else listens on port 5201 here: $(ss -Hltnp 'sport = :5201')"
else
	lab_iperf3_server "$work/srv1.log" && lab_iperf3_listening &&
		pass "lab_iperf3_server listens" || fail "the first server does not listen: $(cat "$work/srv1.log")"
	# a client that connects, sends its cookie and goes silent, as a guest
	# that died (no FIN, no RST): the server stays busy with it
	python3 -c 'import socket, time
s = socket.create_connection(("127.0.0.1", 5201))
s.sendall(b"x" * 37)
time.sleep(60)' &
	silent=$!
	sleep 1
	lab_iperf3_server "$work/srv2.log" && [ "$(servers)" = 1 ] &&
		pass "a second server replaced the busy one (one server left)" ||
		fail "the second server: $(servers) servers, log: $(tr -d '\0' < "$work/srv2.log")"
	grep -q 'in use' "$work/srv2.log" && fail "the second server found its port in use: $(cat "$work/srv2.log")"
	timeout 30 iperf3 -c 127.0.0.1 -t 1 > "$work/client.log" 2>&1 &&
		pass "a client's test runs against the second server" ||
		fail "a client's test against the second server: $(tail -n 2 "$work/client.log")"
	lab_iperf3_server_wait 10
	grep -q 'receiver$' "$work/srv2.log" && ! grep -q 'receiver$' "$work/srv1.log" &&
		pass "the test's report is in the second server's log, not the first's" ||
		fail "the report went to the wrong log"
	! lab_iperf3_listening && [ "$(servers)" = 0 ] &&
		pass "lab_iperf3_server_wait: the server ended, the port is free" || fail "a server still runs after lab_iperf3_server_wait"
	kill "$silent" 2>/dev/null
	wait "$silent" 2>/dev/null
fi
exit $rc
