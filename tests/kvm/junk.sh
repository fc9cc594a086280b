#!/bin/bash
# junk guest: hostile MMIO, config space and virtio rings; the VMM must survive.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_JUNK"

disk=$WORK/disk.img
python3 -c "import sys; open(sys.argv[1],'wb').write(bytes(i * 7 & 0xff for i in range(1 << 20)))" "$disk"

run_vmm 90 "$MINIVMM_BIN" --kernel "$TINY_JUNK" --testdev --mem 64M "$disk"

expect_line '^alive$'
no_line '^FAIL'
no_line '^exception'
for a in desc_loop desc_outside_ram chain_longer_than_queue next_out_of_range head_out_of_range \
	avail_idx_jump huge_len header_only bad_notify rings_outside_ram msix_bad_addr; do
	expect_line "^junk attack=$a recovered=1"
done
expect_line '^junk: failures=0 '
# DEVICE_NEEDS_RESET must come with a configuration-change interrupt
if tdev | grep -E '^junk attack=.* outcome=needs_reset ' | grep -q ' cfg_irqs=0$'; then
	fail "DEVICE_NEEDS_RESET was set without a config interrupt"
fi
tdev | grep -q 'outcome=needs_reset' || fail "no attack made the device raise DEVICE_NEEDS_RESET"
expect_line '^junk attack=msix_bad_addr recovered=1 irqs_delta=[1-9]'
expect_rc 0
# the host side must not have crashed on the way (sanitizer reports, aborts)
if grep -Eq 'AddressSanitizer|runtime error:|Aborted|Segmentation' "$OUT"; then
	fail "minivmm reported a crash or sanitizer error"
fi
echo "PASS"
