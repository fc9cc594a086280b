#!/usr/bin/python3
"""l1-9p-blocked.py CONSOLE: reads L1's serial console, where lab.sh's hang
report has L1 dump its blocked tasks twice, seconds apart (SysRq w), and
prints one line for each task that is blocked in the 9p client (the lab's
shared file systems: p9_client_*, v9fs_*) in both of the last two dumps,
nothing otherwise. Exit 0.

One dump cannot tell: a process that exits while the heartbeat's `cut`
clunks its directory on 9p is blocked in the 9p client for the moment of
one RPC (CI of c6dbd3b, lab-watchdog: L1 idle with a silent script, the
dump met the heartbeat's `cut` in p9_client_clunk, and lab.sh took it for a
9p hang and booted L1 again). A hang on 9p holds its task in both.
"""
import re
import sys

HEADER = "sysrq: Show Blocked State"
TASK = re.compile(r"\]\s+task:(\S+)\s+state:(\S+).*?\bpid:(\d+)")
NINEP = re.compile(r"p9_client_|v9fs_")


def dumps(text):
    """[{pid: (name, blocked in 9p)}] per SysRq w dump, in console order"""
    out = []
    cur = None
    task = None
    for line in text.splitlines():
        if HEADER in line:
            cur = {}
            out.append(cur)
            task = None
            continue
        if cur is None:
            continue
        m = TASK.search(line)
        if m:
            task = m.group(3)
            cur[task] = (m.group(1), False)
        elif task and NINEP.search(line):
            cur[task] = (cur[task][0], True)
    return out


def main(argv):
    try:
        text = open(argv[1], errors="replace").read()
    except (IndexError, OSError):
        sys.stderr.write(__doc__)
        return 2
    d = dumps(text)
    if len(d) < 2:
        return 0
    a, b = d[-2], d[-1]
    for pid in sorted(set(a) & set(b), key=int):
        if a[pid][1] and b[pid][1]:
            print("9p: %s (pid %s) is blocked in the 9p client in both dumps" % (b[pid][0], pid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
