#!/usr/bin/env python3
"""A TCP proxy that cuts a minivmm migration while the device state crosses
(tests/lab/test-migrate-faults.sh).

    mig_cut_proxy.py LISTEN_PORT DEST_HOST DEST_PORT

Accepts one connection on 127.0.0.1:LISTEN_PORT and relays it to
DEST_HOST:DEST_PORT both ways. It reads the source's stream as it passes
(docs/migration.md: a 16-byte header, then records of a 16-byte header --
u32 type, u32 crc, u64 length -- and a payload). At the first section
record (type 1) after the confirm record (type 5) and after RAM (type 2 or
4), that is the devices' state sent while the guest is paused, it relays
the record's header and half its payload, then closes both connections.
Prints what it did ("cut at offset N in section record K") and exits 0 when
it cut, 1 when the stream ended without a place to cut.
"""
import socket
import struct
import sys
import threading


def relay_back(src, dst):
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            dst.sendall(d)
    except OSError:
        pass


def main():
    lport, dhost, dport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", lport))
    ls.listen(1)
    print("proxy: listening on %d" % lport, flush=True)
    c, _ = ls.accept()
    d = socket.create_connection((dhost, dport))
    threading.Thread(target=relay_back, args=(d, c), daemon=True).start()

    buf = b""
    off = 0

    def need(n):
        nonlocal buf
        while len(buf) < n:
            x = c.recv(1 << 20)
            if not x:
                raise EOFError
            buf += x

    def take(n):
        """relays the next n bytes"""
        nonlocal buf, off
        need(n)
        d.sendall(buf[:n])
        out, buf = buf[:n], buf[n:]
        off += n
        return out

    seen_confirm = seen_ram = False
    sections = 0
    try:
        take(16)  # the stream header
        while True:
            # relay payloads in pieces: a RAM record may be 64 MiB
            need(16)
            typ, _crc, ln = struct.unpack("<IIQ", buf[:16])
            if typ == 1 and seen_confirm and seen_ram:
                at = off
                take(16)
                take(ln // 2)
                print("proxy: cut at offset %d, halfway through section record %d (%d bytes)"
                      % (at, sections + 1, ln), flush=True)
                c.shutdown(socket.SHUT_RDWR)
                d.shutdown(socket.SHUT_RDWR)
                c.close()
                d.close()
                return 0
            take(16)
            left = ln
            while left:
                n = min(left, 1 << 20)
                take(n)
                left -= n
            if typ == 1:
                sections += 1
            elif typ in (2, 4):
                seen_ram = True
            elif typ == 5:
                seen_confirm = True
            elif typ == 3:
                break
    except (EOFError, OSError) as e:
        print("proxy: the stream ended at offset %d before a place to cut (%s)" % (off, e), flush=True)
        return 1
    print("proxy: the stream ended at offset %d before a place to cut" % off, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
