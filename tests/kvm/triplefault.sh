#!/bin/bash
# reset guest with "triplefault": an empty IDT and a trap. KVM reports the
# shutdown (KVM_EXIT_SHUTDOWN); minivmm must end the VM as a crashed guest
# (status 3, "guest reset by a triple fault": an orchestrator tells it from a
# poweroff or a reboot the guest asked for, status 0) and say where it died. A KVM internal error is a
# different outcome and fails the test, except on a host whose KVM cannot
# show the shutdown at all (kvm_pvm emulates guest ring 0 and answers the
# undeliverable trap with an emulation error): there the test is skipped.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_RESET"

run_vmm 60 "$MINIVMM_BIN" -v --kernel "$TINY_RESET" --testdev --mem 32M --cmdline triplefault
expect_line '^reset: triple fault$'
no_line 'FAIL'
if grep -q '^minivmm: vcpu: 0: triple fault: resetting$' "$OUT"; then
	expect_rc 3
	grep -q '^minivmm: guest reset by a triple fault$' "$OUT" || fail "the triple fault did not end the VM as a crash"
	if grep -q 'KVM internal error' "$OUT"; then
		fail "a KVM internal error besides the triple fault"
	fi
	grep -Eq 'vcpu: (error: )?0: rip 0x[0-9a-f]+ ' "$OUT" ||
		fail "no register dump after the guest died"
	# on AMD, KVM resets the vCPU before it reports the shutdown: minivmm
	# must say the dump is the reset state, not pretend it is the fault's
	if grep -Eq 'vcpu: (error: )?0: rip 0xfff0 ' "$OUT"; then
		grep -Eq 'vcpu: (error: )?0: these are the reset state.s registers: this KVM \(AMD SVM\)' "$OUT" ||
			fail "the dump is the reset state, and minivmm did not say so"
		grep -q AuthenticAMD /proc/cpuinfo || fail "a reset-state dump on a CPU that is not AMD"
	else
		grep -Eq 'vcpu: (error: )?0: cr0 0x[0-9a-f]+ .* idt 0/0$' "$OUT" ||
			fail "the dump does not show the empty IDT"
	fi
elif [ -d /sys/module/kvm_pvm ] &&
	grep -q '^minivmm: vcpu: error: 0: KVM internal error, suberror 1$' "$OUT"; then
	grep -E 'vcpu: (error: )?0: (KVM|rip|cr0)' "$OUT" | sed 's/^/  /'
	skip "this host's KVM is kvm_pvm, which reports the guest's undeliverable trap as an" \
		"emulation error (KVM internal error, suberror 1) instead of a shutdown: the triple" \
		"fault cannot be observed here"
else
	fail "expected the triple fault ('triple fault: resetting', status 3); minivmm exited with" \
		"status $RC without it"
fi
echo "PASS"
