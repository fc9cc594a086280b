#!/bin/bash
# Lab self-test (runs on the host, not in L1): lab.sh's L1 watchdog.
# 1. A script that goes silent inside L1 while L1 keeps its vCPUs busy in the
#    kernel (two dd readers of /dev/zero, 16 MiB per read:
#    nearly all their time is in the kernel) is taken for a hung L1: its vCPU state
#    is saved with the RIPs named, L1 is booted again (LAB_L1_TRIES=2), and
#    the run gives up with 124 once the tries are spent, keeping each try's
#    console.
# 2. A script that goes silent while L1 idles (sleep) is a stuck test, not a
#    hung L1 (its jiffies advance, no task waits on 9p): the run fails with
#    status 1 at once, without another L1 boot.
# 3. L1's serial port stops transmitting (the script suspends ttyS0's output,
#    TCOOFF, as a lost transmit interrupt would): the script, whose output
#    goes to the virtio console, is not blocked and ends with status 0, and
#    lab.sh warns that the serial heartbeats ended, with L1's interrupt state.
#
#   tests/lab/test-watchdog.sh RESULTS_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
res=${1:?usage: test-watchdog.sh RESULTS_DIR}
rc=0
fail() { echo "test-watchdog: FAIL: $*"; rc=1; }
pass() { echo "test-watchdog: ok: $*"; }

script=$(mktemp /tmp/lab-silent.XXXXXX)
trap 'rm -f "$script"' EXIT
printf 'echo "lab-watchdog: silent from now on"\ndd if=/dev/zero of=/dev/null bs=16M 2>/dev/null &\ndd if=/dev/zero of=/dev/null bs=16M 2>/dev/null\n' > "$script"
rm -rf "$res"
LAB_L1_STALL=20 LAB_L1_TRIES=2 LAB_L1_MIN_LEFT=30 \
	"$HERE/lab.sh" run --timeout 300 --results "$res" "$script"
st=$?
[ "$st" = 77 ] && exit 77
[ "$st" = 124 ] && pass "lab.sh gave up with 124 after the tries" || fail "lab.sh exit status $st, expected 124"
for t in 1 2; do
	f=$res/l1-hang.try$t.txt
	if [ -f "$f" ] && grep -q '^### info registers' "$f" && grep -q '^RIP=' "$f"; then
		pass "try $t: L1's vCPU registers saved"
	else
		fail "try $t: no register dump in $f"
	fi
	if grep -Eq '^CPU#0 RIP [0-9a-f]+ = [A-Za-z_][A-Za-z0-9_.]*\+0x' "$f" 2>/dev/null; then
		pass "try $t: RIPs named ($(grep -m1 '^CPU#0 RIP' "$f"))"
	else
		fail "try $t: RIPs not named from L1's kallsyms"
	fi
done
grep -q 'lab-watchdog: silent' "$res/l1-console.log.try1" 2>/dev/null &&
	pass "the first try's console is kept" || fail "no l1-console.log.try1 with the script's output"
grep -q 'lab-watchdog: silent' "$res/l1-console.log" 2>/dev/null &&
	pass "L1 was booted again and ran the script" || fail "the second L1 did not run the script"
grep -qx 'lab_l1_retries=1' "$res/results.txt" 2>/dev/null &&
	pass "results.txt: lab_l1_retries=1" || fail "results.txt lacks lab_l1_retries=1"
# 2. silent while L1 idles: no retry
printf 'echo "lab-watchdog: idle and silent from now on"\nsleep 900\n' > "$script"
rm -rf "$res.idle"
LAB_L1_STALL=20 LAB_L1_TRIES=2 LAB_L1_MIN_LEFT=30 \
	"$HERE/lab.sh" run --timeout 300 --results "$res.idle" "$script" > "$res.idle.log" 2>&1
st=$?
cat "$res.idle.log"
[ "$st" = 1 ] && pass "idle L1, silent script: status 1" || fail "idle L1, silent script: status $st, expected 1"
grep -q 'with L1 alive (idle vCPUs, its clock running) and no task blocked on 9p' "$res.idle.log" &&
	pass "idle L1: said so" || fail "idle L1: no message saying L1 is alive and idle"
j=$(sed -n 's/^### jiffies_64 //p' "$res.idle/l1-hang.try1.txt" 2>/dev/null)
[ -n "$j" ] && [ "${j% *}" != "${j#* }" ] && pass "idle L1: its jiffies advanced ($j)" ||
	fail "idle L1: no advancing jiffies_64 in the report (${j:-none})"
grep -q 'sysrq: Show Blocked State' "$res.idle/l1-serial.log" 2>/dev/null &&
	pass "idle L1: the blocked tasks were dumped (SysRq w)" || fail "idle L1: no SysRq w dump on the console"
grep -qx 'lab_l1_retries=0' "$res.idle/results.txt" 2>/dev/null &&
	pass "idle L1: not booted again (lab_l1_retries=0)" || fail "idle L1: results.txt lacks lab_l1_retries=0"
# 3. the serial port stops transmitting
cat > "$script" <<'EOF2'
python3 -c 'import os, termios
fd = os.open("/dev/ttyS0", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
termios.tcflow(fd, termios.TCOOFF)'
echo "lab-watchdog: ttyS0's output suspended ($?)"
for i in $(seq 45); do echo "lab-watchdog: still printing $i"; sleep 2; done
echo "lab-watchdog: done"
EOF2
rm -rf "$res.serial"
LAB_L1_STALL=60 LAB_L1_SERIAL_STALL=40 LAB_L1_TRIES=1 \
	"$HERE/lab.sh" run --timeout 400 --results "$res.serial" "$script" > "$res.serial.log" 2>&1
st=$?
cat "$res.serial.log"
[ "$st" = 0 ] && pass "stalled serial port: the script ran to its end (status 0)" ||
	fail "stalled serial port: status $st, expected 0"
grep -q "lab-watchdog: ttyS0's output suspended (0)" "$res.serial/l1-console.log" 2>/dev/null &&
	grep -q 'lab-watchdog: done' "$res.serial/l1-console.log" &&
	pass "stalled serial port: the script's whole output is on the virtio console" ||
	fail "stalled serial port: the script's output is incomplete in l1-console.log"
grep -q "WARNING: L1's serial console has been silent for 40s" "$res.serial.log" &&
	pass "stalled serial port: lab.sh said so" || fail "stalled serial port: no warning from lab.sh"
grep -q '^### info lapic' "$res.serial/l1-serial-stall.try1.txt" 2>/dev/null &&
	pass "stalled serial port: L1's interrupt state kept" || fail "stalled serial port: no l1-serial-stall.try1.txt with the local APICs"
if pgrep -f "results $res" >/dev/null 2>&1 || pgrep -f "path=$res,mount_tag=lab" >/dev/null 2>&1; then
	fail "a QEMU of this run is still running"
else
	pass "no QEMU left running"
fi
exit $rc
