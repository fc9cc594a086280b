#!/bin/bash
# bootinfo guest: boot_params e820 map and command line as the VMM filled them.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_BOOTINFO"

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_BOOTINFO" --testdev --mem 64M --cpus 1 \
	--cmdline "mem_expect=64 hello=world"

expect_line '^bootinfo PASS$'
no_line '^FAIL'
expect_line '^cmdline=mem_expect=64 hello=world$'
expect_line '^hello=world$'
expect_line '^mem_check=ok expected_mib=64$'
expect_line '^e820 0 addr=0x0 size=0x[0-9a-f]+ type=1$'
n=$(value e820_count)
[ -n "$n" ] && [ "$n" -ge 2 ] || fail "e820_count=$n"
[ "$(tdev | grep -cE '^e820 [0-9]+ addr=')" -eq "$n" ] || fail "e820 lines do not match e820_count=$n"
kib=$(value ram_total_kib)
[ "$kib" -le 65536 ] && [ "$kib" -ge 64512 ] || fail "ram_total_kib=$kib for --mem 64M"
expect_rc 0
echo "PASS"
