#!/usr/bin/env python3
"""A minimal QMP client for the lab's QEMU baselines (tests/lab/test-failover.sh).

    qmp.py SOCK COMMAND [ARGS_JSON] [--event NAME --device ID] [--timeout S]

Runs one QMP command and prints one line, "ok sent=T ms=M" or "error
sent=T ms=M: WHY", where T is the wall-clock time (seconds since the epoch)
at which the command was sent and M the time from then to its reply or,
with --event, to the event NAME whose data.device is ID (QEMU's device_del
returns at once; the guest's eject ends with DEVICE_DELETED). Exit 0 on
success. tests/lab/api_call.py prints the same for minivmm.
"""
import json
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    timeout, event, device = 30.0, None, None
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--timeout":
            timeout = float(args[i + 1])
            i += 2
        elif args[i] == "--event":
            event = args[i + 1]
            i += 2
        elif args[i] == "--device":
            device = args[i + 1]
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if len(pos) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(pos[0])
    f = s.makefile("rwb")

    def read():
        line = f.readline()
        if not line:
            raise EOFError("QEMU closed the QMP socket")
        return json.loads(line)

    read()  # greeting
    f.write(b'{"execute": "qmp_capabilities"}\n')
    f.flush()
    while "return" not in read():
        pass
    cmd = {"execute": pos[1]}
    if len(pos) == 3:
        cmd["arguments"] = json.loads(pos[2])
    sent = time.time()
    t0 = time.monotonic()
    deadline = t0 + timeout
    f.write(json.dumps(cmd).encode() + b"\n")
    f.flush()
    replied = False
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            m = read()
        except (socket.timeout, TimeoutError):
            print("error sent=%.3f ms=%.0f: timed out" % (sent, (time.monotonic() - t0) * 1000))
            return 1
        if "error" in m:
            print("error sent=%.3f ms=%.0f: %s" % (sent, (time.monotonic() - t0) * 1000,
                                                  m["error"].get("desc")))
            return 1
        if "return" in m:
            replied = True
            if not event:
                break
        if event and m.get("event") == event and \
                (device is None or m.get("data", {}).get("device") == device):
            if replied:
                break
            # the event can come before the reply: wait for the reply too
            event = None
    print("ok sent=%.3f ms=%.0f" % (sent, (time.monotonic() - t0) * 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
