#!/bin/bash
# The control socket (--api) and `minivmm ctl` on a running tiny guest: status,
# devices, cpu-state and SIGUSR2 (the vCPUs' and devices' state, the guest
# running on), pause (every vCPU parked: a spinning vCPU stops using CPU, and an
# AP still waiting for its SIPI inside KVM_RUN is kicked out too), resume
# (it spins again), the events a subscriber sees, refusals and exit statuses,
# hostile clients (garbage, an over-long line, one that never reads) that
# leave the VMM answering, and quit (minivmm exits 0, the socket is removed).
# Device ids: net0/net1 by default, id=NAME when given (two virtio-net NICs on
# taps in a network namespace), and a duplicate id refused at start.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_RESET"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
[ -c /dev/net/tun ] || skip "/dev/net/tun is missing"
[ "$(id -u)" -eq 0 ] || skip "needs root for the network namespace and taps of its two NICs"

S=$WORK/api.sock
B=$MINIVMM_BIN
NS=minivmm-api-$$
set +e
# an id used twice is refused before anything is created
"$B" --api "$S" --kernel "$TINY_RESET" --testdev --mem 64M --net tap=t0,id=dup --net tap=t1,id=dup \
	>"$WORK/dup.out" 2>&1 </dev/null
st=$?
[ $st = 1 ] && grep -q "device id 'dup' is used twice" "$WORK/dup.out" && [ ! -e "$S" ] ||
	fail "a duplicate id: exit $st, expected 1 with the reason: $(cat "$WORK/dup.out")"
"$B" --kernel "$TINY_RESET" --testdev --mem 64M --net tap=t0,id=ttyS0 >"$WORK/dup.out" 2>&1 </dev/null
st=$?
[ $st = 1 ] && grep -q "device id 'ttyS0' is used twice (a fixed device has it)" "$WORK/dup.out" ||
	fail "an id of a fixed device: exit $st: $(cat "$WORK/dup.out")"

ip netns add "$NS" || skip "cannot create a network namespace"
ip netns exec "$NS" "$B" --api "$S" --kernel "$TINY_RESET" --testdev --mem 64M --cpus 2 --cmdline spin \
	--net tap=mvapi0 --net tap=mvapi1,id=uplink,failover=on >"$OUT" 2>&1 </dev/null &
vmm_ns=$!
trap 'kill -KILL $vmm_ns 2>/dev/null; pkill -KILL -f "tap=mvapi1,id=uplink" 2>/dev/null; ip netns del "$NS" 2>/dev/null; cleanup_work' EXIT
for _ in $(seq 100); do
	vmm=$(pgrep -f -n "tap=mvapi1,id=uplink")
	[ -n "$vmm" ] && [ "$vmm" != "$vmm_ns" ] && break
	vmm=$vmm_ns
	sleep 0.05
done
for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
[ -S "$S" ] || fail "no control socket at $S"
[ "$(stat -c %a "$S")" = 600 ] || fail "the socket's mode is $(stat -c %a "$S"), not 600"
for _ in $(seq 100); do grep -q 'reset: spinning' "$OUT" && break; sleep 0.05; done

# ctl CMD...: runs minivmm ctl, output in $WORK/ctl.out, status in $CST
ctl() { "$B" ctl "$@" >"$WORK/ctl.out" 2>&1; CST=$?; }
# vCPU threads' CPU time in clock ticks
vcpu_ticks() {
	local t s=0
	for t in /proc/$vmm/task/*; do
		case $(cat "$t/comm") in vcpu*) s=$((s + $(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }'))) ;; esac
	done
	echo $s
}

ctl "$S" status
[ $CST = 0 ] || fail "ctl status: exit $CST: $(cat "$WORK/ctl.out")"
grep -qx 'state: running' "$WORK/ctl.out" || fail "status does not say running: $(cat "$WORK/ctl.out")"
grep -qx 'vcpus: 2' "$WORK/ctl.out" || fail "status: no 'vcpus: 2'"
grep -qx 'protocol: 1' "$WORK/ctl.out" || fail "status: no protocol version"
ctl --json "$S" status
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r["ok"] and r["return"]["state"] == "running" and r["return"]["memory_bytes"] == 64 << 20, r' \
	"$WORK/ctl.out" || fail "ctl --json status: $(cat "$WORK/ctl.out")"
ctl "$S" devices
[ $CST = 0 ] && grep -Eq '^ttyS0 +serial +io 0x3f8 irq 4' "$WORK/ctl.out" && grep -q '^acpi-pm ' "$WORK/ctl.out" &&
	grep -Eq '^pcihp +acpi-pci-hotplug +io 0xcc4' "$WORK/ctl.out" &&
	grep -Eq "^net0 +virtio-net +00:[0-9a-f]{2}\\.0 +tap=mvapi0,mac=52:54:00:12:34:56$VHOST_SFX\$" "$WORK/ctl.out" &&
	grep -Eq "^uplink +virtio-net +00:[0-9a-f]{2}\\.0 +tap=mvapi1,mac=52:54:00:12:34:57,failover=on$VHOST_SFX \\(standby waiting\\)\$" "$WORK/ctl.out" ||
	fail "ctl devices: $(cat "$WORK/ctl.out")"
# failover=on offers STANDBY; no driver has taken it yet (the tiny guest drives no NIC)
ctl --json "$S" devices
python3 -c 'import json,sys
d = {x["id"]: x for x in json.load(open(sys.argv[1]))["return"]["devices"]}
assert d["uplink"]["standby"] == {"state": "waiting", "negotiations": 0}, d["uplink"]
assert "standby" not in d["net0"], d["net0"]' "$WORK/ctl.out" || fail "ctl --json devices (standby): $(cat "$WORK/ctl.out")"

# a subscriber, for the events of what follows
"$B" ctl --json "$S" events 2 >"$WORK/events.out" 2>&1 &
evpid=$!
sleep 0.3

t0=$(vcpu_ticks)
sleep 1
t1=$(vcpu_ticks)
[ $((t1 - t0)) -ge 10 ] || fail "the spinning vCPU used only $((t1 - t0)) ticks in 1 s before the pause"
ctl "$S" pause
[ $CST = 0 ] && grep -qx paused "$WORK/ctl.out" || fail "ctl pause: exit $CST: $(cat "$WORK/ctl.out")"
p0=$(vcpu_ticks)
sleep 1.5
p1=$(vcpu_ticks)
[ $((p1 - p0)) -le 2 ] || fail "paused, yet the vCPUs used $((p1 - p0)) ticks in 1.5 s"
ctl "$S" status
grep -qx 'state: paused' "$WORK/ctl.out" || fail "status while paused: $(cat "$WORK/ctl.out")"
ctl "$S" pause
[ $CST = 1 ] && grep -q 'already paused' "$WORK/ctl.out" || fail "a second pause: exit $CST (expected 1, 'already paused')"

# hostile clients while paused and after: the VMM keeps answering
python3 "$(dirname "$0")/../api_hostile.py" "$S" paused ||
	fail "hostile clients: the VMM did not answer as documented"

ctl "$S" resume
[ $CST = 0 ] && grep -qx running "$WORK/ctl.out" || fail "ctl resume: exit $CST: $(cat "$WORK/ctl.out")"
r0=$(vcpu_ticks)
sleep 1
r1=$(vcpu_ticks)
[ $((r1 - r0)) -ge 10 ] || fail "resumed, yet the vCPU used only $((r1 - r0)) ticks in 1 s"
ctl "$S" resume
[ $CST = 1 ] && grep -q 'not paused' "$WORK/ctl.out" || fail "resume when running: exit $CST (expected 1, 'not paused')"

# cpu-state: the vCPUs parked for the read and running after it; what they hold
ctl "$S" cpu-state
[ $CST = 0 ] && grep -Eq '^vcpu0: runnable rip 0x[0-9a-f]+ ' "$WORK/ctl.out" && grep -q '^vcpu1: ' "$WORK/ctl.out" &&
	grep -q '^  lapic: ' "$WORK/ctl.out" && grep -q '^ioapic: irr ' "$WORK/ctl.out" ||
	fail "ctl cpu-state: exit $CST: $(cat "$WORK/ctl.out")"
ctl --json "$S" cpu-state
python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["return"]
assert [c["id"] for c in r["vcpus"]] == [0, 1], r
c = r["vcpus"][0]
assert c["mp_state"] == "runnable" and c["regs"]["rip"].startswith("0x") and c["regs"]["cpl"] == 0, c
assert isinstance(c["lapic"]["irr"], list) and c["lapic"]["timer"]["mode"], c
assert isinstance(r["ioapic"]["unmasked_pins"], list), r' "$WORK/ctl.out" || fail "ctl --json cpu-state: $(cat "$WORK/ctl.out")"
c0=$(vcpu_ticks)
sleep 1
c1=$(vcpu_ticks)
[ $((c1 - c0)) -ge 10 ] || fail "after cpu-state the vCPU used only $((c1 - c0)) ticks in 1 s: left paused?"
# SIGUSR2: the same, and each device's state, in the log; the guest runs on
kill -USR2 "$vmm"
inspected() {
	grep -Eq 'inspect: warning: vcpu \{"id":0,"mp_state":"runnable"' "$OUT" && grep -q 'inspect: warning: ioapic {' "$OUT" &&
		grep -q 'inspect: warning: device {"id":"ttyS0".*"uart":{' "$OUT" &&
		grep -Eq 'inspect: warning: device \{"id":"net0".*"virtio":\{' "$OUT"
}
for _ in $(seq 100); do inspected && break; sleep 0.05; done
inspected ||
	fail "SIGUSR2: no vCPU, IOAPIC and device state in the log: $(grep 'inspect:' "$OUT" | head -5)"
c0=$(vcpu_ticks)
sleep 1
c1=$(vcpu_ticks)
[ $((c1 - c0)) -ge 10 ] || fail "after SIGUSR2 the vCPU used only $((c1 - c0)) ticks in 1 s"

wait_exit $evpid
python3 - "$WORK/events.out" <<'PY' || fail "events: $(cat "$WORK/events.out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [e["event"] for e in ev] == ["paused", "resumed"], ev
assert all("seconds" in e["timestamp"] for e in ev), ev
PY

# usage errors: 2; no VMM there: 1
ctl "$S" no-such-command
[ $CST = 2 ] || fail "ctl with an unknown command: exit $CST, expected 2"
ctl "$S"
[ $CST = 2 ] || fail "ctl without a command: exit $CST, expected 2"
ctl "$WORK/nobody.sock" status
[ $CST = 1 ] || fail "ctl on a socket nobody listens on: exit $CST, expected 1"

ctl "$S" quit
[ $CST = 0 ] || fail "ctl quit: exit $CST"
wait_exit $vmm_ns
RC=$WRC
[ $RC = 0 ] || fail "minivmm exit status $RC after quit, expected 0"
grep -q '^minivmm: quit (control socket)$' "$OUT" || fail "minivmm did not say why it stopped"
[ ! -e "$S" ] || fail "the socket file is left behind"
echo "PASS"
