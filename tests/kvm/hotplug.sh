#!/bin/bash
# hotplug guest: the ACPI PCI hot-plug controller's guest side. With --api the
# FADT has a GPE0 block, the DSDT the hot-plug AML, the registers read zero at
# boot, and a stray eject and 100000 random accesses of random widths change
# nothing and do not bring minivmm down; without --api none of it exists.
# (The request/eject path through the control socket is tests/kvm/unplug.sh;
# the controller's state machine alone is tests/unit/test_hotplug.c.)
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_HOTPLUG"

S=$WORK/api.sock
run_vmm 90 "$MINIVMM_BIN" --api "$S" --kernel "$TINY_HOTPLUG" --testdev --mem 32M \
	--cmdline expect=present
expect_line '^hotplug fadt gpe0=0x620 gpe0_len=4 .* dsdt_hotplug=1$'
expect_line '^hotplug boot pciu=0x0 pcid=0x0 b0ej=0x0 pcrm=0xfffffffe gpe_sts=0x0$'
expect_line '^hotplug after_stray_eject pciu=0x0 pcid=0x0 '
expect_line '^hotplug hammer accesses=100000 '
expect_line '^hotplug after_hammer pciu=0x0 pcid=0x0 b0ej=0x0 pcrm=0xfffffffe gpe_sts=0x0$'
no_line '^FAIL'
no_line '^exception'
expect_line '^hotplug: PASS$'
expect_rc 0
no_crash
# the stray eject is logged, and the hammering does not flood the log
grep -q '^minivmm: hotplug: .*ejected slots 0x00000020 without a removal request' "$OUT" ||
	fail "no log line for the stray eject"
# (LOG_RATELIMIT_INIT: 10 lines per 5 s, then one line saying how many were
# suppressed; 100000 bad accesses would be thousands of lines without it).
# The bound follows the run's length: a loaded host stretches the guest.
n=$(grep -c '^minivmm: hotplug: ' "$OUT" || true)
windows=$(awk -v e="$ELAPSED" 'BEGIN { w = int(e / 5); if (w * 5 < e) w++; print w + 1 }')
max=$((windows * 11 + 10))
[ "$n" -le "$max" ] || fail "$n hotplug log lines in $ELAPSED s (at most $max): the rate limit does not hold"
[ ! -e "$S" ] || fail "the control socket was left behind"

DSDT_LEN_API=$(value dsdt_len)
run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_HOTPLUG" --testdev --mem 32M --cmdline expect=absent
expect_line '^hotplug fadt gpe0=0x0 gpe0_len=0 .* dsdt_hotplug=0$'
expect_line '^hotplug absent pciu=0xffffffff gpe0=0xffffffff$'
no_line '^FAIL'
expect_line '^hotplug: PASS$'
expect_rc 0
no_crash
[ "$(value dsdt_len)" -lt "$DSDT_LEN_API" ] || fail "the DSDT did not grow with --api"
echo "PASS"
