#!/bin/bash
# pcienum guest: bus 0 via CF8/CFC and ECAM, BAR sizing, capabilities.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_PCIENUM"

disk=$WORK/disk.img
truncate -s 1M "$disk"
run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_PCIENUM" --testdev --mem 64M "$disk"

no_line '^FAIL'
no_line '^mismatch'
expect_line '^pcienum PASS$'
expect_line '^pci 00:00\.0 vendor=0x[0-9a-f]{4} device=0x[0-9a-f]{4} class=0x06'
expect_line '^pci 00:[0-9a-f]{2}\.[0-7] vendor=0x1af4 device=0x1042 class=0x01'
expect_line '^virtio 00:[0-9a-f]{2}\.[0-7] kind=blk$'
expect_line '^bar 00:[0-9a-f]{2}\.[0-7]/[0-5] kind=mem(32|64) addr=0x[0-9a-f]+ size=0x[0-9a-f]+'
expect_line 'id=0x11 msix_entries=[1-9]'
for t in 1 2 3 4; do
	expect_line "id=0x9 virtio_type=$t "
done
[ "$(value virtio_blk)" = 1 ] || fail "virtio_blk=$(value virtio_blk), expected 1"
expect_rc 0
echo "PASS"
