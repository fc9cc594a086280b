#!/usr/bin/python3
"""Unit test of tests/lab/l1-9p-blocked.py, lab.sh's reading of L1's blocked
tasks when L1 went silent, on the console of CI's lab-watchdog run of
c6dbd3b (tests/unit/data/l1-hang/9p-transient-cut.txt: one SysRq w dump,
the heartbeat's `cut` in p9_client_clunk as it exited) and variants:

  - that one dump alone is no 9p hang (a second dump is needed);
  - the same dump twice, the same pid blocked in 9p in both: a 9p hang;
  - a second dump without it, or with another pid in 9p: no 9p hang;
  - a task blocked elsewhere (not in 9p) in both: no 9p hang.
Exit 0 on success, 1 on a failure.
"""
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("MINIVMM_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(SRC, "tests", "lab", "l1-9p-blocked.py")
REC = open(os.path.join(SRC, "tests", "unit", "data", "l1-hang", "9p-transient-cut.txt")).read()
EMPTY = "[   38.100000] sysrq: Show Blocked State\nlab-l1: heartbeat uptime=40.00\n"
fails = 0


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
    if not cond:
        fails += 1


def run(text):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run([sys.executable, TOOL, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return p.returncode, p.stdout


st, out = run(REC)
check("the recorded single dump: no 9p hang", st == 0 and out == "", out)
st, out = run(REC + REC)
check("the same task in 9p in two dumps: a 9p hang", st == 0 and "cut (pid 183)" in out, out)
st, out = run(REC + EMPTY)
check("gone by the second dump: no 9p hang", st == 0 and out == "", out)
st, out = run(REC + REC.replace("pid:183", "pid:184"))
check("another pid in the second dump: no 9p hang", st == 0 and out == "", out)
st, out = run((REC + REC).replace("p9_client", "pipe_read").replace("v9fs_", "vfs_"))
check("blocked elsewhere in both: no 9p hang", st == 0 and out == "", out)
st, out = run("")
check("no dump at all: nothing", st == 0 and out == "", out)
sys.exit(1 if fails else 0)
