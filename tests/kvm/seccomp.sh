#!/bin/bash
# seccomp (docs/security.md): each kind of thread runs under its own
# allow-list once set up. The hidden --seccomp-selftest=KIND makes a thread
# of that kind call execve (on no list) right after it loaded its filter:
#  - vmm (the main thread: event loop and control socket), vcpu, and worker
#    (started by `ctl device-add vf`): minivmm dies of SIGSYS (exit 159)
#    after one line naming the thread kind and the call;
#  - with --no-seccomp the same self-test is not stopped (the guest runs to
#    its end) and minivmm says seccomp is off;
#  - -v says seccomp is on, with the number of filters; an unknown kind is a
#    usage error.
# The rest of the kvm suite runs with seccomp on (the default): every path it
# takes (boot, virtio, hot-plug, snapshot, migration) stays within the lists.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_BOOTINFO"
require_guest "$TINY_COUNTER"

SIGSYS_RC=$((128 + 31))

# expect_killed KIND: the reporter's line for KIND, the process killed by SIGSYS
expect_killed() {
	grep -Eq "^minivmm: seccomp: thread $1 made a forbidden system call execve \(nr 59\)" "$OUT" ||
		fail "no seccomp line naming thread $1 and execve"
	[ "$RC" -eq $SIGSYS_RC ] || fail "thread $1: exit status $RC, expected $SIGSYS_RC (SIGSYS)"
	! grep -q "self-test: thread $1: execve was not stopped" "$OUT" || fail "execve ran in thread $1"
}

# --- on by default, and logged ------------------------------------------------
run_vmm 60 "$MINIVMM_BIN" -v --kernel "$TINY_BOOTINFO" --testdev --mem 64M
expect_line '^bootinfo PASS$'
expect_rc 0
no_crash
grep -Eq '^minivmm: seccomp: on: 3 filters \(vmm [0-9]+ calls, vcpu [0-9]+, worker [0-9]+\)$' "$OUT" ||
	fail "no log line saying seccomp is on"

# --- vmm and vcpu threads -------------------------------------------------------
for kind in vmm vcpu; do
	run_vmm 60 "$MINIVMM_BIN" --seccomp-selftest=$kind --kernel "$TINY_BOOTINFO" --testdev --mem 64M
	expect_killed $kind
	no_line '^bootinfo PASS$'
done

# --- a worker thread: device-add vf starts one, before any check of the VF ------
S=$WORK/api.sock
trap 'kill -KILL $vmm 2>/dev/null || true; cleanup_work' EXIT
set +e
"$MINIVMM_BIN" --seccomp-selftest=worker --api "$S" --kernel "$TINY_COUNTER" --testdev --mem 64M \
	--cmdline "steps=100000 ticks=5" >"$OUT" 2>&1 </dev/null &
vmm=$!
set -e
wait_line '^testdev: counter step=2 ' 60
ctl "$S" device-add vf 0000:00:1f.7
[ $CST != 0 ] || fail "device-add vf answered: $(cat "$WORK/ctl.out")"
set +e
timeout 30 tail --pid=$vmm -f /dev/null
wait_exit $vmm
RC=$WRC
set -e
expect_killed worker

# --- --no-seccomp: the same self-test is not stopped ----------------------------
run_vmm 60 "$MINIVMM_BIN" --no-seccomp --seccomp-selftest=vcpu --kernel "$TINY_BOOTINFO" --testdev \
	--mem 64M
expect_line '^bootinfo PASS$'
expect_rc 0
no_crash
grep -q '^minivmm: seccomp: warning: off (--no-seccomp)' "$OUT" || fail "no log line saying seccomp is off"
grep -q 'self-test: thread vcpu: execve was not stopped' "$OUT" || fail "the self-test did not run"

# --- usage ----------------------------------------------------------------------
run_vmm 10 "$MINIVMM_BIN" --seccomp-selftest=nosuch --kernel "$TINY_BOOTINFO" --testdev
expect_rc 2
grep -q "seccomp-selftest 'nosuch'" "$OUT" || fail "no message for an unknown kind"
echo "PASS"
