#!/usr/bin/env python3
"""One request on minivmm's control socket, timed (tests/lab/test-failover.sh).

    api_call.py SOCK COMMAND [ARGS_JSON] [--timeout S]

Connects first, then sends the request and waits for its reply; prints one
line, "ok sent=T ms=M" or "error sent=T ms=M: CODE: MESSAGE", where T is the
wall-clock time (seconds since the epoch) at which the request was sent and
M the milliseconds until the reply, and then the reply's JSON on a second
line. Exit 0 on success. The same line as tests/lab/qmp.py prints for QEMU,
so that both VMMs are timed from the moment they are asked, without the
client's start-up.
"""
import json
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    timeout = 60.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(args[0])
    req = {"id": 1, "command": args[1], "args": json.loads(args[2]) if len(args) == 3 else {}}
    sent = time.time()
    t0 = time.monotonic()
    s.sendall(json.dumps(req).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    ms = (time.monotonic() - t0) * 1000
    r = json.loads(buf) if buf else {"ok": False, "error": {"code": "closed", "message": "no reply"}}
    if r.get("ok"):
        print("ok sent=%.3f ms=%.0f" % (sent, ms))
    else:
        print("error sent=%.3f ms=%.0f: %s: %s" % (sent, ms, r["error"]["code"], r["error"]["message"]))
    print(json.dumps(r))
    return 0 if r.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
