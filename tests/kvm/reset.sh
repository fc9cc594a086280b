#!/bin/bash
# reset guest: i8042 reset and ACPI poweroff both stop the VMM with status 0
# (the triple fault has its own test: triplefault.sh).
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_RESET"

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_RESET" --testdev --mem 32M
expect_line '^reset: requesting i8042 reset$'
no_line 'FAIL'
grep -q '^minivmm: guest reset$' "$OUT" || fail "minivmm did not say the guest reset"
expect_rc 0

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_RESET" --testdev --mem 32M --cmdline poweroff
expect_line '^reset: requesting ACPI poweroff$'
no_line 'FAIL'
grep -q '^minivmm: guest powered off$' "$OUT" || fail "minivmm did not say the guest powered off"
expect_rc 0
echo "PASS"
