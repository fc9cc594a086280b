#!/bin/bash
# virtioblk guest: reads sectors 0 and 1, writes sector 2, GET_ID.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_VIRTIOBLK"

disk=$WORK/disk.img
python3 - "$disk" <<'PY'
import sys
img = bytearray(1024 * 1024)
img[0:512] = (b"minivmm-sector-0" + bytes(range(256)) * 2)[:512]
img[512:1024] = (b"MINIVMM-SECTOR-1" + bytes(255 - (i & 0xff) for i in range(496)))[:512]
img[1024:1536] = b"\xee" * 512
open(sys.argv[1], "wb").write(img)
PY
crc() { python3 -c "import sys,zlib; d=open(sys.argv[1],'rb').read(); o=int(sys.argv[2])*512; print('0x%08x' % zlib.crc32(d[o:o+512]))" "$disk" "$1"; }
head16() { python3 -c "import sys; d=open(sys.argv[1],'rb').read(); o=int(sys.argv[2])*512; print(d[o:o+16].hex())" "$disk" "$1"; }
want0=$(crc 0) want1=$(crc 1) head0=$(head16 0) head1=$(head16 1)

run_vmm 60 "$MINIVMM_BIN" --kernel "$TINY_VIRTIOBLK" --testdev --mem 64M "$disk"

no_line '^FAIL'
expect_line '^virtioblk PASS$'
[ "$(value sector0_head)" = "$head0" ] || fail "sector0_head=$(value sector0_head), want $head0"
[ "$(value sector1_head)" = "$head1" ] || fail "sector1_head=$(value sector1_head), want $head1"
[ "$(value sector0_crc32)" = "$want0" ] || fail "sector0_crc32=$(value sector0_crc32), want $want0"
[ "$(value sector1_crc32)" = "$want1" ] || fail "sector1_crc32=$(value sector1_crc32), want $want1"
expect_line '^sector2_readback=ok'
expect_line '^pci 01.0 bar4 moved 0x[0-9a-f]+ -> 0x[0-9a-f]+$'
expect_line '^blk_id='
expect_line '^blk: read past end sector=2048 status=1$'
expect_line '^blk: found .* capacity=2048 '
expect_rc 0
# the write must have reached the image file
python3 - "$disk" <<'PY' || fail "sector 2 of the image does not hold what the guest wrote"
import sys
line = b"minivmm tiny guest wrote sector 2\n"
want = (line * 16)[:512]
d = open(sys.argv[1], "rb").read()
sys.exit(0 if d[1024:1536] == want else 1)
PY
echo "PASS"
