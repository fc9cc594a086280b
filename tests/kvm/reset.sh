#!/bin/bash
# reset guest: i8042 reset and ACPI poweroff both stop the VMM with status 0.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_RESET"

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_RESET" --testdev --mem 32M
expect_line '^reset: requesting i8042 reset$'
no_line 'FAIL'
grep -qi 'reset' <(grep -v '^testdev: ' "$OUT") || fail "minivmm did not say the guest reset"
expect_rc 0

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_RESET" --testdev --mem 32M --cmdline poweroff
expect_line '^reset: requesting ACPI poweroff$'
no_line 'FAIL'
expect_rc 0
# a triple fault is a reset too, and minivmm says where the guest died
run_vmm 60 "$MINIVMM_BIN" -v --kernel "$TINY_RESET" --testdev --mem 32M --cmdline triplefault
expect_line '^reset: triple fault$'
no_line 'FAIL'
grep -Eq 'vcpu: (error: )?0: rip 0x[0-9a-f]+ ' "$OUT" || fail "no register dump after the guest died"
grep -Eq 'vcpu: (error: )?0: cr0 0x[0-9a-f]+ .* idt 0/0$' "$OUT" || fail "the dump does not show the empty IDT"
# real KVM reports the shutdown (a reset, status 0); this machine's nested KVM
# emulates guest ring 0 and gives up with an emulation error instead (status 1)
if grep -q 'triple fault: resetting' "$OUT"; then
	expect_rc 0
elif grep -q 'KVM internal error' "$OUT"; then
	echo "note: this host's KVM reported an internal error instead of the shutdown"
	expect_rc 1
else
	fail "minivmm reported neither the triple fault nor a KVM error"
fi
echo "PASS"
