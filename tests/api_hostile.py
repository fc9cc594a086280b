#!/usr/bin/env python3
"""Hostile clients on a running minivmm's control socket (docs/api.md).

api_hostile.py SOCK STATE: garbage, a request with bad args, an unknown
command, an over-long line (answered too-long, then closed) and a subscriber
that never reads; the VMM must answer each as documented and then still
report STATE (running or paused) to a status request. Exit 0, or an
assertion error naming what was wrong. Used by tests/kvm/api.sh and
tests/lab/test-ctl.sh.
"""
import json
import socket
import sys

path, state = sys.argv[1], sys.argv[2]


def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(10)
    return s


def line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return json.loads(buf) if buf else None


s = conn()
s.sendall(b"\x00\xff garbage {{{\n")
r = line(s)
assert r["error"]["code"] == "parse-error", r
s.sendall(b'{"command": "pause", "args": 3}\n')
r = line(s)
assert r["error"]["code"] == "invalid-request", r
s.sendall(b'{"command": "device-plug"}\n')
r = line(s)
assert r["error"]["code"] == "unknown-command", r
s.sendall(b'{"command": "device-add", "args": {"kind": 7}}\n')
r = line(s)
assert r["error"]["code"] == "invalid-args", r
s.sendall(b'{"command": "device-add", "args": {"kind": "vf", "spec": "not-a-bdf,failover=on"}}\n')
r = line(s)
assert r["error"]["code"] == "invalid-args" and "PCI address" in r["error"]["message"], r
s.sendall(b'{"command": "device-del", "args": {"id": "ttyS0"}}\n')
r = line(s)
assert r["error"]["code"] == "refused" and "cannot be removed" in r["error"]["message"], r
s.sendall(b'{"command": "device-del", "args": {"id": "nosuch"}}\n')
r = line(s)
assert r["error"]["code"] == "refused" and "no device" in r["error"]["message"], r
big = conn()
# exactly the limit, no newline: the VMM reads all of it (nothing is left
# unread, so its close cannot reset the connection before the reply is read)
big.sendall(b"x" * (64 * 1024))
r = line(big)
assert r["error"]["code"] == "too-long", r
assert big.recv(10) == b"", "the over-long client was not closed"
lazy = conn()
lazy.sendall(b'{"command": "subscribe"}\n')  # never reads again
s.sendall(b'{"id": 4, "command": "status"}\n')
r = line(s)
assert r["id"] == 4 and r["return"]["state"] == state, r
