#!/usr/bin/env python3
"""QEMU's side of the lab's migration baselines (tests/lab/test-migrate-hosts.sh).

    qmp_migrate.py SOCK migrate URI [--timeout S]
        Migrates the QEMU behind SOCK to URI and waits until the migration
        ends. With a failover pair (virtio-net failover=on, vfio-pci
        failover_pair_id), QEMU asks the guest to eject the VF first and
        waits for it (UNPLUG_PRIMARY). Prints one line of key=value:
        status, unplug_ms (migrate to UNPLUG_PRIMARY; NA without one),
        total_ms, downtime_ms, setup_ms, bytes (QEMU's query-migrate),
        wall_ms (migrate to the end, here). Exit 0 when it completed.
    qmp_migrate.py SOCK wait-resume [--timeout S]
        On a destination (-incoming): waits for the RESUME event and
        prints "resumed=T" (T: seconds since the epoch). Exit 0 then.
"""
import json
import socket
import sys
import time


def connect(path, timeout):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    end = time.monotonic() + timeout
    while True:
        try:
            s.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
    f = s.makefile("rwb")
    f.readline()  # greeting
    f.write(b'{"execute": "qmp_capabilities"}\n')
    f.flush()
    while "return" not in json.loads(f.readline() or b"{}"):
        pass
    return f


def send(f, cmd, args=None):
    m = {"execute": cmd}
    if args is not None:
        m["arguments"] = args
    f.write(json.dumps(m).encode() + b"\n")
    f.flush()


def read(f):
    line = f.readline()
    if not line:
        raise EOFError("QEMU closed the QMP socket")
    return json.loads(line)


def reply(f, events):
    """the next command reply; events that come first go to events"""
    while True:
        m = read(f)
        if "event" in m:
            events.append((time.time(), m))
            continue
        return m


def migrate(f, uri, timeout):
    events = []
    t0 = time.time()
    send(f, "migrate", {"uri": uri})
    r = reply(f, events)
    if "error" in r:
        print("status=error why=%s" % json.dumps(r["error"].get("desc", "")))
        return 1
    unplug = None
    status = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for t, e in events:
            if e["event"] == "UNPLUG_PRIMARY" and unplug is None:
                unplug = t
        events.clear()
        send(f, "query-migrate")
        r = reply(f, events)
        status = r.get("return", {}).get("status")
        if status in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    wall = time.time() - t0
    for t, e in events:
        if e["event"] == "UNPLUG_PRIMARY" and unplug is None:
            unplug = t
    q = r.get("return", {})
    out = {
        "status": status or "timeout",
        "unplug_ms": "%.0f" % ((unplug - t0) * 1000) if unplug else "NA",
        "total_ms": q.get("total-time", "NA"),
        "downtime_ms": q.get("downtime", "NA"),
        "setup_ms": q.get("setup-time", "NA"),
        "bytes": q.get("ram", {}).get("transferred", "NA"),
        "wall_ms": "%.0f" % (wall * 1000),
    }
    if status == "failed":
        out["why"] = json.dumps(q.get("error-desc", ""))
    print(" ".join("%s=%s" % kv for kv in out.items()))
    return 0 if status == "completed" else 1


def wait_resume(f, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = read(f)
        if m.get("event") == "RESUME":
            print("resumed=%.6f" % time.time())
            return 0
    print("resumed=NA")
    return 1


def main():
    args = sys.argv[1:]
    timeout = 300.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2 or args[1] not in ("migrate", "wait-resume") or (args[1] == "migrate") != (len(args) == 3):
        print(__doc__, file=sys.stderr)
        return 2
    f = connect(args[0], timeout)
    if args[1] == "migrate":
        return migrate(f, args[2], timeout)
    return wait_resume(f, timeout)


if __name__ == "__main__":
    sys.exit(main())
