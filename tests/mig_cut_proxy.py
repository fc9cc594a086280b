#!/usr/bin/env python3
"""A proxy between a migrating minivmm and its destination that breaks the
migration at a chosen point (tests/lab/test-migrate-faults.sh,
tests/kvm/migrate.sh).

    mig_cut_proxy.py [--hold-verdict | --flip-at N | --close-at N] LISTEN DEST

LISTEN is a TCP port on 127.0.0.1 or unix:PATH; DEST is HOST PORT or
unix:PATH. It accepts one connection and relays it to DEST both ways,
reading the source's stream as it passes (docs/migration.md: a 16-byte
header, then records of a 16-byte header -- u32 type, u32 crc, u64 length --
and a payload).

- default (cut): at the first section record (type 1) after the confirm
  record (type 5) and after RAM (type 2 or 4), that is the devices' state
  sent while the guest is paused, it relays the record's header and half its
  payload, then closes both connections. Exits 0 when it cut, 1 when the
  stream ended without a place to cut.
- --hold-verdict: relays the whole stream, and the destination's first
  answer line (its word after the confirm record), but keeps its second
  one (the verdict on the loaded stream) back: the source waits for it
  until it gives up or is cancelled. When the source closes, the proxy
  closes the destination's side (which has not had the GO). Exits 0 when
  it held a verdict back, 1 otherwise.
- --flip-at N: relays both ways without reading the stream (it may be TLS),
  but inverts the byte at offset N of what the source sends; then goes on
  relaying until either side closes. Exits 0 when it flipped a byte, 1 when
  the source sent fewer than N+1 bytes.
- --close-at N: the same raw relay, but both connections are closed once N
  bytes of the source's have been relayed (a truncated stream).

Prints what it did on stdout.
"""
import socket
import struct
import sys
import threading


def parse_addr(words):
    """(family, address, words used)"""
    if words[0].startswith("unix:"):
        return socket.AF_UNIX, words[0][5:], 1
    if len(words) >= 2 and not words[0].isdigit():
        return socket.AF_INET, (words[0], int(words[1])), 2
    return socket.AF_INET, ("127.0.0.1", int(words[0])), 1


def close_all(*socks, keep_open=False):
    """shuts both directions of each socket down (the peers see the end), and closes it"""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if not keep_open:
            s.close()


def flip_relay(c, d, at, close=False):
    """raw relay both ways; the byte at offset `at` from the source inverted,
    or (close) both sides closed after `at` bytes"""
    flipped = []

    def back():
        try:
            while True:
                x = d.recv(65536)
                if not x:
                    break
                c.sendall(x)
        except OSError:
            pass
        close_all(c, d, keep_open=True)

    threading.Thread(target=back, daemon=True).start()
    off = 0
    try:
        while True:
            x = c.recv(65536)
            if not x:
                break
            if close and off + len(x) >= at:
                d.sendall(x[:at - off])
                off = at
                flipped.append(at)
                print("proxy: closing both sides at offset %d" % at, flush=True)
                break
            if not close and off <= at < off + len(x):
                b = bytearray(x)
                b[at - off] ^= 0xFF
                x = bytes(b)
                flipped.append(at)
                print("proxy: inverted the byte at offset %d" % at, flush=True)
            off += len(x)
            d.sendall(x)
    except OSError as e:
        print("proxy: relay ended at offset %d (%s)" % (off, e), flush=True)
    print("proxy: the source's side ended at offset %d" % off, flush=True)
    close_all(c, d)
    return 0 if flipped else 1


def main(argv):
    hold = False
    flip_at = None
    close_at = False
    if argv and argv[0] == "--hold-verdict":
        hold = True
        argv = argv[1:]
    elif len(argv) > 1 and argv[0] in ("--flip-at", "--close-at"):
        flip_at = int(argv[1])
        close_at = argv[0] == "--close-at"
        argv = argv[2:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    lfam, laddr, used = parse_addr(argv)
    dfam, daddr, _ = parse_addr(argv[used:])
    ls = socket.socket(lfam)
    if lfam == socket.AF_INET:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(laddr)
    ls.listen(1)
    print("proxy: listening on %s" % (laddr,), flush=True)
    c, _ = ls.accept()
    d = socket.socket(dfam)
    d.connect(daddr)
    if flip_at is not None:
        return flip_relay(c, d, flip_at, close_at)
    held = []

    def relay_back():
        lines = 0
        try:
            while True:
                x = d.recv(65536)
                if not x:
                    break
                if hold and lines >= 1:
                    held.append(x)
                    print("proxy: held back the destination's verdict: %r" % x, flush=True)
                    continue
                if hold:
                    nl = x.find(b"\n")
                    if nl >= 0:
                        lines += 1
                        c.sendall(x[:nl + 1])
                        if x[nl + 1:]:
                            held.append(x[nl + 1:])
                            print("proxy: held back the destination's verdict: %r" % x[nl + 1:],
                                  flush=True)
                        continue
                c.sendall(x)
        except OSError:
            pass

    threading.Thread(target=relay_back, daemon=True).start()

    buf = b""
    off = 0

    def need(n):
        nonlocal buf
        while len(buf) < n:
            x = c.recv(1 << 20)
            if not x:
                raise EOFError("the source closed")
            buf += x

    def take(n):
        """relays the next n bytes"""
        nonlocal buf, off
        need(n)
        d.sendall(buf[:n])
        out, buf = buf[:n], buf[n:]
        off += n
        return out

    def close_both():
        close_all(c, d)

    seen_confirm = seen_ram = False
    sections = 0
    try:
        take(16)  # the stream header
        while True:
            # relay payloads in pieces: a RAM record may be 64 MiB
            need(16)
            typ, _crc, ln = struct.unpack("<IIQ", buf[:16])
            if not hold and typ == 1 and seen_confirm and seen_ram:
                at = off
                take(16)
                take(ln // 2)
                print("proxy: cut at offset %d, halfway through section record %d (%d bytes)"
                      % (at, sections + 1, ln), flush=True)
                close_both()
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
        print("proxy: the stream ended at offset %d" % off, flush=True)
        if hold:
            # whatever the source still says (a GO) goes through, until it closes
            while True:
                x = c.recv(65536)
                if not x:
                    break
                d.sendall(x)
    except (EOFError, OSError) as e:
        print("proxy: the source's side ended at offset %d (%s)" % (off, e), flush=True)
    if hold:
        print("proxy: the source closed; closing the destination's side (%s)"
              % ("a verdict was held back" if held else "no verdict came"), flush=True)
        close_both()
        return 0 if held else 1
    print("proxy: the stream ended at offset %d before a place to cut" % off, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
