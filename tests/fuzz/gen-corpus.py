#!/usr/bin/env python3
# Writes the seed inputs of the fuzz harnesses (tests/fuzz/corpus/<name>/seed-*):
# a few valid inputs each, in the layouts the harnesses' headers describe.
# Usage: python3 tests/fuzz/gen-corpus.py [BUILD_DIR]   (default build-fuzz)
# The migration seeds come from the harness itself (its devices' own saves:
# MINIVMM_FUZZ_SEEDS), the image seeds from mke2fs (e2fsprogs).
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', 'build-fuzz')


def seed(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def desc(addr, length, flags=0, nxt=0):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def table(descs, size):
    b = b''.join(descs)
    return b + b'\0' * (16 * size - len(b))


def avail(ring, size, idx=None, flags=0, used_event=0):
    idx = len(ring) if idx is None else idx
    r = list(ring) + [0] * (size - len(ring))
    return u16(flags) + u16(idx) + b''.join(u16(x) for x in r) + u16(used_event)


# ---- virtq: flags, log2 size, bias, steps, desc table, avail, used flags, data at 0x18000
def virtq():
    data_gpa = 0x18000
    size = 16
    descs = [desc(data_gpa + 0x100, 64, F_NEXT, 1), desc(data_gpa + 0x200, 128, F_WRITE),
             desc(data_gpa, 48, F_INDIRECT), desc(data_gpa + 0x600, 0x100, F_WRITE)]
    ind = [desc(data_gpa + 0x300, 32, F_NEXT, 1), desc(data_gpa + 0x400, 32, F_NEXT | F_WRITE, 2),
           desc(data_gpa + 0x500, 16, F_WRITE)]
    data = b''.join(ind) + b'\0' * (0x100 - 48) + bytes(range(64))
    for flags, bias, name in ((0, 0, 'chains'), (1, 0xfffe, 'event-idx-wrap')):
        body = u8(flags) + u8(4) + u16(bias) + u8(8)
        body += table(descs, size) + avail([0, 2, 3], size, idx=(bias + 3) & 0xffff)
        body += u32(0) + data
        seed('virtq', name, body)
    # the largest queue, one descriptor
    body = u8(2) + u8(10) + u16(0) + u8(1) + table([desc(data_gpa, 512, F_WRITE)], 1024)
    body += avail([0], 1024) + u32(1)
    seed('virtq', 'size-1024-dirty', body)


# ---- virtio_net: features, 3 x (desc table, avail) of 16, 0x800 data bytes at 0x100000, ops
DATA = 0x100000


def virtio_net():
    q = 16
    rx = table([desc(0x200000 + 0x1000 * i, 1526, F_WRITE) for i in range(4)], q) + avail([0, 1, 2, 3], q)
    tx = table([desc(DATA, 12, F_NEXT, 1), desc(DATA + 0x40, 60)], q) + avail([0], q)
    ctrl = table([desc(DATA + 0x100, 2, F_NEXT, 1), desc(DATA + 0x110, 1, F_WRITE)], q) + avail([0], q)
    data = bytearray(0x800)
    data[0] = 1  # NEEDS_CSUM
    data[0x40:0x40 + 60] = bytes(range(60))
    data[0x100:0x102] = b'\x03\x00'  # ANNOUNCE_ACK
    frame = b'\0' * 12 + bytes(range(60))
    big = b'\0' * 12 + bytes(i & 0xff for i in range(3000))
    ops = b'\x00' + b'\x01\x00' + b'\x02' + u16(len(frame)) + frame + b'\x03' + b'\x06' + b'\x04'
    ops += b'\x02' + u16(len(big)) + big + b'\x05\x02\x00' + b'\x07' + b'\x00'
    seed('virtio_net', 'mrg-all-features', u64(0xffffffffffffffff) + rx + tx + ctrl + bytes(data) + ops)
    legacy = (1 << 32) | 1  # VERSION_1 | CSUM, no MRG_RXBUF
    frame10 = b'\0' * 12 + bytes(range(50))
    ops = b'\x00\x01\x01' + b'\x02' + u16(len(frame10)) + frame10 + b'\x03'
    seed('virtio_net', 'no-mrg', u64(legacy) + rx + tx + ctrl + bytes(data) + ops)


# ---- virtio_blk: features, desc table and avail of 16, 0x400 data bytes at 0x100000, ops
def virtio_blk():
    q = 16
    descs = [
        desc(DATA + 0x00, 16, F_NEXT, 1), desc(0x200000, 1024, F_WRITE | F_NEXT, 2), desc(DATA + 0x300, 1, F_WRITE),
        desc(DATA + 0x10, 16, F_NEXT, 4), desc(0x200000, 512, F_NEXT, 5), desc(DATA + 0x301, 1, F_WRITE),
        desc(DATA + 0x20, 16, F_NEXT, 7), desc(DATA + 0x302, 1, F_WRITE),
        desc(DATA + 0x30, 16, F_NEXT, 9), desc(0x201000, 20, F_WRITE | F_NEXT, 10), desc(DATA + 0x303, 1, F_WRITE),
    ]
    data = bytearray(0x400)
    hdrs = [(0, 7), (1, 4), (4, 0), (8, 0)]  # IN, OUT, FLUSH, GET_ID
    for i, (t, sector) in enumerate(hdrs):
        data[0x10 * i:0x10 * i + 16] = struct.pack('<IIQ', t, 0, sector)
    body = u64(0xffffffffffffffff) + table(descs, q) + avail([0, 3, 6, 8], q) + bytes(data)
    seed('virtio_blk', 'read-write-flush-id', body + b'\x00\x01\x01\x03\x00')
    # a read past the end of the 64 KiB disk
    data[0:16] = struct.pack('<IIQ', 0, 0, 127)
    body = u64(0xffffffffffffffff) + table(descs, q) + avail([0], q) + bytes(data)
    seed('virtio_blk', 'read-past-end', body + b'\x00')


# ---- pci: ops (low 3 bits kind, bits 3-4 log2 len)
def pci():
    def cfg(wr, fn, off, ln, val=0):
        return u8((0 if wr else 1) | ({1: 0, 2: 1, 4: 2}[ln] << 3)) + u8(fn) + u16(off) + u32(val)

    def bar(fn, b, off, ln, wr, val=0):
        return u8(2 | ({1: 0, 2: 1, 4: 2, 8: 3}[ln] << 3)) + u8(fn) + u8(b) + u16(off) + u8(wr) + u64(val)

    p = b''
    for b in range(3):  # size the harness device's BARs, then put them back
        p += cfg(1, 1, 0x10 + 4 * b, 4, 0xffffffff) + cfg(0, 1, 0x10 + 4 * b, 4)
    p += cfg(1, 1, 0x04, 2, 0x7) + cfg(0, 1, 0x34, 1)
    p += cfg(0, 1, 0x40, 4) + cfg(0, 1, 0x50, 4) + cfg(1, 1, 0x52, 2, 0x8000)
    p += bar(1, 1, 0x0, 4, 1, 0xfee00000) + bar(1, 1, 0x8, 4, 1, 0x41) + bar(1, 1, 0xc, 4, 1, 0)
    p += u8(5) + u8(0) + bar(1, 1, 0x800, 8, 0) + bar(1, 0, 0x10, 1, 1, 0xaa) + bar(1, 2, 0x0, 8, 0)
    p += u8(6) + u8(7) + u8(7)
    seed('pci', 'tdev-bars-msix', p)
    p = cfg(1, 2, 0x04, 2, 0x6) + bar(2, 4, 0x14, 1, 1, 0x3)  # virtio: memory on, status
    p += bar(2, 4, 0x0, 4, 1, 0) + bar(2, 4, 0x4, 4, 0) + bar(2, 4, 0x1000, 1, 0)
    p += bar(2, 4, 0x3800, 4, 1, 0xfee00000) + bar(2, 4, 0x2000, 4, 0)
    p += u8(3 | (2 << 3)) + u8(0) + u8(1) + u32(0x80000800)  # CF8: 00:01.0 reg 0
    p += u8(3 | (2 << 3)) + u8(4) + u8(0) + u32(0)           # CFC read
    p += u8(4 | (2 << 3)) + u32(0x8000) + u8(0) + u32(0)     # ECAM 00:01.0
    p += u8(4 | (2 << 3)) + u32(0x8010) + u8(1) + u32(0xffffffff)
    seed('pci', 'virtio-cf8-ecam', p)


# ---- vfio_pci: flags, config bytes, ops (low 2 bits kind, bits 2-3 log2 len)
def vfio_pci():
    def cfg(wr, off, ln, val=0):
        return u8((0 if wr else 1) | ({1: 0, 2: 1, 4: 2}[ln] << 2)) + u16(off) + u32(val)

    def bar(b, off, ln, wr, val=0):
        return u8(2 | ({1: 0, 2: 1, 4: 2, 8: 3}[ln] << 2)) + u8(b) + u16(off) + u8(wr) + u64(val)

    ops = b''
    off = 0x40
    for _ in range(6):  # walk the capability list
        ops += cfg(0, off, 4)
        off += 0x10
    ops += cfg(1, 0x10, 4, 0xffffffff) + cfg(0, 0x10, 4) + cfg(1, 0x10, 4, 0xc0000000)
    ops += cfg(1, 0x04, 2, 0x6) + cfg(1, 0x52, 2, 0x8000) + cfg(1, 0x44, 2, 0x3) + cfg(1, 0x44, 2, 0x0)
    ops += bar(3, 0x0, 4, 1, 0xfee00000) + bar(3, 0xc, 4, 1, 0) + bar(3, 0x2000, 8, 0) + bar(0, 0x10, 4, 1, 1)
    ops += cfg(1, 0x100, 4, 0xffffffff) + cfg(0, 0x140, 4) + cfg(1, 0x3c, 1, 0xff) + cfg(1, 0x78, 2, 0x8000)
    seed('vfio_pci', 'guest-config-msix', u8(0) + ops)
    seed('vfio_pci', 'plug-later', u8(8) + cfg(0, 0, 4) + u8(3) + ops)
    # the fake device's own capabilities (vfio_fake.h's fake_init), given back as input
    std = bytearray(0xc0)

    def put(buf, base, off, b):
        buf[off - base:off - base + len(b)] = b
    put(std, 0x40, 0x40, bytes([0x01, 0x50]) + u16(3))
    put(std, 0x40, 0x50, bytes([0x11, 0x70]) + u16(2) + u32(3) + u32(0x2003))
    put(std, 0x40, 0x70, bytes([0x10, 0xa0]) + u16(2) + u32(0x10008000))
    put(std, 0x40, 0xa0, bytes([0x09, 0x00, 0x08, 0x5a]))
    ext = bytearray(0x100)
    put(ext, 0x100, 0x100, u32(0x0001 | 1 << 16 | 0x140 << 20))
    put(ext, 0x100, 0x140, u32(0x0010 | 1 << 16 | 0x180 << 20))
    put(ext, 0x100, 0x180, u32(0x000e | 1 << 16))
    seed('vfio_pci', 'device-caps', u8(3) + bytes(std) + bytes(ext) + ops)
    loop = bytearray(std)
    loop[0x51 - 0x40] = 0x40  # the MSI-X capability points back at PM: a loop
    seed('vfio_pci', 'device-cap-loop', u8(1) + bytes(loop) + ops)


# ---- netlink: a receive buffer of replies
NUM_VF, VFINFO_LIST, IFNAME, VF_INFO = 21, 22, 3, 1
VF_MAC, VF_VLAN, VF_SPOOF, VF_LINK, VF_TRUST = 1, 2, 4, 5, 9


def nla(t, payload):
    ln = 4 + len(payload)
    return u16(ln) + u16(t) + payload + b'\0' * ((4 - ln % 4) % 4)


def nlmsg(t, flags, seq, pid, payload):
    return u32(16 + len(payload)) + u16(t) + u16(flags) + u32(seq) + u32(pid) + payload


def netlink():
    vfs = b''
    for i in range(2):
        info = nla(VF_MAC, u32(i) + bytes([0x52, 0x54, 0, 0, 0, i]) + b'\0' * 26)
        info += nla(VF_VLAN, u32(i) + u32(100 + i) + u32(3))
        info += nla(VF_SPOOF, u32(i) + u32(1)) + nla(VF_TRUST, u32(i) + u32(0))
        info += nla(VF_LINK, u32(i) + u32(2))
        vfs += nla(VF_INFO, info)
    ifi = u8(0) + u8(0) + u16(1) + struct.pack('<i', 3) + u32(0x1043) + u32(0)
    link = ifi + nla(IFNAME, b'enp3s0\0') + nla(NUM_VF, u32(2)) + nla(VFINFO_LIST, vfs)
    newlink = nlmsg(16, 0, 42, 1234, link)
    seed('netlink', 'newlink-2-vfs', newlink)
    req = nlmsg(19, 5, 42, 1234, b'')  # the echoed RTM_SETLINK header
    err = struct.pack('<i', -22) + req + nla(1, b'VF number out of range\0')
    seed('netlink', 'error-extack', nlmsg(2, 0x300, 42, 1234, err))
    seed('netlink', 'ack', nlmsg(2, 0x100, 42, 1234, struct.pack('<i', 0) + req))
    other = nlmsg(16, 0, 41, 1234, ifi)  # someone else's reply first, then ours
    seed('netlink', 'skip-then-newlink', nlmsg(3, 0, 42, 1234, b'') + other + newlink)


# ---- image: whole disk images
def image():
    if not shutil.which('mke2fs'):
        print('gen-corpus: no mke2fs (e2fsprogs): no image seeds', file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as t:
        root = os.path.join(t, 'root')
        os.makedirs(os.path.join(root, 'boot'))
        with open(os.path.join(root, 'boot', 'vmlinuz-6.1.0-13-amd64'), 'wb') as f:
            f.write(b'MZ kernel ' * 40)
        with open(os.path.join(root, 'boot', 'vmlinuz-6.1.0-9-amd64'), 'wb') as f:
            f.write(b'MZ older ' * 10)
        with open(os.path.join(root, 'boot', 'initrd.img-6.1.0-13-amd64'), 'wb') as f:
            f.write(b'initrd ' * 30)
        os.symlink('boot/vmlinuz-6.1.0-13-amd64', os.path.join(root, 'vmlinuz'))
        os.symlink('boot/initrd.img-6.1.0-13-amd64', os.path.join(root, 'initrd.img'))
        fs = {}
        for kind, opts in (('ext2', ['-t', 'ext2']), ('ext4', ['-t', 'ext4', '-O', '^has_journal'])):
            img = os.path.join(t, kind)
            subprocess.run(['mke2fs', '-q', '-F', '-b', '1024', '-N', '32', '-m', '0', '-d', root]
                           + opts + [img, '128' if kind == 'ext4' else '64'], check=True, env=dict(os.environ, E2FSPROGS_FAKE_TIME='1'))
            with open(img, 'rb') as f:  # mke2fs -d leaves the tail sparse: the file ends early
                fs[kind] = f.read().ljust((128 if kind == 'ext4' else 64) * 1024, b'\0')
            seed('image', kind + '-bare', fs[kind])
        part = fs['ext2']
        # MBR: an empty entry, then a Linux partition at sector 8
        mbr = bytearray(512)
        mbr[446 + 16:446 + 32] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + u32(8) + u32(len(part) // 512)
        mbr[510:512] = b'\x55\xaa'
        seed('image', 'mbr', bytes(mbr) + b'\0' * (7 * 512) + part)
        # GPT: header at LBA 1, 4 entries at LBA 2, the partition at LBA 34
        linux = bytes.fromhex('af3dc60f838472478e793d69d8477de4')
        ent = linux + bytes(range(16)) + u64(34) + u64(34 + len(part) // 512 - 1) + u64(0)
        ent += 'root'.encode('utf-16-le').ljust(72, b'\0')
        entries = (ent + b'\0' * 128 * 3)
        last = 34 + len(part) // 512 + 33
        hdr = b'EFI PART' + u32(0x10000) + u32(92) + u32(0) + u32(0) + u64(1) + u64(last)
        hdr += u64(34) + u64(last - 33) + bytes(16) + u64(2) + u32(4) + u32(128) + u32(zlib.crc32(entries))
        hdr = hdr[:16] + u32(zlib.crc32(hdr)) + hdr[20:]
        pmbr = bytearray(512)
        pmbr[446:462] = bytes([0, 0, 2, 0, 0xee, 0xff, 0xff, 0xff]) + u32(1) + u32(last)
        pmbr[510:512] = b'\x55\xaa'
        img = bytes(pmbr) + hdr.ljust(512, b'\0') + entries.ljust(32 * 512, b'\0') + part
        seed('image', 'gpt', img)


# ---- api: chunking, how the deferred request ends, the client's bytes
def api():
    lines = [b'{"id":1,"command":"echo","args":{"value":5}}',
             b'{"id":"a","command":"later"}',
             b'{"command":"status"}',
             b'{"command":"subscribe","args":{"events":["tick"]}}',
             b'{"command":"event","args":{"name":"tick"}}',
             b'{"command":"commands"}']
    seed('api', 'session', b'\x00\x00' + b'\n'.join(lines) + b'\n')
    seed('api', 'chunks-refused', b'\x03\x01' + b'\n'.join(lines) + b'\n')
    bad = [b'{"command":"echo","args":{"value":"x"}}', b'[1,2]', b'{"command":1}',
           b'{"command":"echo","bogus":true}', b'{"id":2,"command":"echo","args":[]}',
           b'{"command":"nope"}', b'{"a":1,"a":2}', b'not json', b'{"command":"later","args":{"fail":true}}',
           b'{"command":"subscribe","args":{"events":"x"}}']
    seed('api', 'errors', b'\x01\x02' + b'\n'.join(bad) + b'\npartial line')


def boot():
    # fuzz_boot.c's layout: rnd[2], flags, align, init_size, then the kernel:
    # a kernel-shaped ELF (one PT_LOAD at 16 MiB, linked at
    # 0xffffffff81000000, section headers at the end) with its KASLR
    # relocation table after it (vmm/x86/kaslr.h)
    load, vbase, text = 16 << 20, 0xffffffff81000000, 0x2000
    data, shoff, nsh = 0x1000, 0x1000 + 0x2000, 2
    eh = (b'\x7fELF' + bytes([2, 1, 1]) + bytes(9) + u16(2) + u16(62) + u32(1) + u64(load) +
          u64(64) + u64(shoff) + u32(0) + u16(64) + u16(56) + u16(1) + u16(64) + u16(nsh) + u16(0))
    ph = u32(1) + u32(5) + u64(data) + u64(vbase) + u64(load) + u64(text) + u64(0x8000) + u64(0x200000)
    img = bytearray(shoff + 64 * nsh)
    img[0:len(eh)] = eh
    img[64:64 + len(ph)] = ph
    for i in range(4):
        img[data + 0x100 + 8 * i:data + 0x104 + 8 * i] = u32(vbase + 0x40 + i)
        img[data + 0x300 + 8 * i:data + 0x308 + 8 * i] = u64(vbase + 0x80 + i)
    tab = (u32(0) + b''.join(u32(vbase + 0x300 + 8 * i) for i in range(4)) + u32(0) +
           u32(vbase + 0x200) + u32(0) + b''.join(u32(vbase + 0x100 + 8 * i) for i in range(4)))
    hdr = u64(12345) + u64(678) + u8(1) + u32(0x200000) + u32(0x40000)
    seed('boot', 'elf-kaslr', hdr + bytes(img) + tab)
    seed('boot', 'elf-kaslr-initrd', u64(7) + u64(9) + u8(3) + u32(0x200000) + u32(0x40000) + bytes(img) + tab)
    seed('boot', 'elf-nokaslr', u64(7) + u64(9) + u8(5) + u32(0x200000) + u32(0x40000) + bytes(img) + tab)
    seed('boot', 'elf-notable', hdr + bytes(img))


def migration():
    exe = os.path.join(BUILD, 'tests', 'fuzz', 'fuzz_migration')
    if not os.access(exe, os.X_OK):
        print('gen-corpus: %s not built: no migration seeds' % exe, file=sys.stderr)
        return
    d = os.path.join(CORPUS, 'migration')
    os.makedirs(d, exist_ok=True)
    subprocess.run([exe], env=dict(os.environ, MINIVMM_FUZZ_SEEDS=d), check=True)


for gen in (virtq, virtio_net, virtio_blk, pci, vfio_pci, netlink, image, api, boot, migration):
    gen()
