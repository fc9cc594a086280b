#!/usr/bin/python3
"""Unit test of tests/lab/kvm-env-rerun.py, lab-kvm's choice of the kvm tests
it runs again once, on L1's shutdown exits recorded in CI of e27ea2b
(tests/unit/data/kvm-shutdown-exits-e27ea2b.txt: three kvm_triplefault
breakpoints, one #PF delivery at 381.1 s, kvm_migtls's counter guest) and
testlogs written here in meson's format:

  - a failed test whose output has minivmm's triple-fault line, with the #PF
    shutdown inside its run, is picked, with that trace line as evidence;
  - not when the shutdown in its run is kvm_triplefault's breakpoint, nor
    when the #PF shutdown fell outside its run, nor without the triple-fault
    line, nor for a timeout or a test that passed;
  - merge puts the rerun's record in the failed one's place and keeps the
    failed one in the evidence file.
Exit 0 on success, 1 on a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("MINIVMM_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(SRC, "tests", "lab", "kvm-env-rerun.py")
TRACE = os.path.join(SRC, "tests", "unit", "data", "kvm-shutdown-exits-e27ea2b.txt")
# wall-clock = trace time + OFFSET: the #PF shutdown at 381.108979 is at T0 + 1000.5
T0 = 1796000000.0
OFFSET = T0 + 1000.5 - 381.108979
fails = 0

TF_OUT = ("FAIL: --flip-at: the migration did not fail back: exit 1: minivmm ctl: cannot connect to src.sock\n"
          "----- src.out, its last 60 lines -----\n"
          "minivmm: vcpu: 0: triple fault: resetting\nminivmm: guest reset by a triple fault\n")


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
    if not cond:
        fails += 1


def rec(name, result, start, dur, stdout=""):
    return {"name": "minivmm:kvm / " + name, "result": result, "starttime": T0 + start,
            "duration": dur, "stdout": stdout}


def write(path, recs):
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def run(*args):
    p = subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout


with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, "kvm-lab.json")
    write(log, [
        rec("kvm_migtls", "FAIL", 900, 200, TF_OUT),                    # the #PF at 1000.5: picked
        rec("kvm_migrate", "FAIL", 990, 20, "FAIL: x\n"),               # same window, no triple fault
        rec("kvm_snapshot", "TIMEOUT", 950, 100, TF_OUT),               # a timeout
        rec("kvm_reset", "OK", 995, 10, TF_OUT),                        # passed
        rec("kvm_hotplug", "FAIL", 1200, 30, TF_OUT),                   # its window holds no #PF
        # the breakpoint of kvm_triplefault at 260.419261 lies in this window
        rec("kvm_unplug", "FAIL", 260.4 + OFFSET - T0 - 1, 3, TF_OUT),
    ])
    st, out = run("pick", log, TRACE, "%.6f" % OFFSET)
    lines = out.splitlines()
    check("pick exits 0", st == 0, str(st))
    check("only kvm_migtls is picked", [l.split("\t")[0] for l in lines] == ["kvm_migtls"], out)
    check("its evidence is the #PF shutdown", lines and "rip 0x1007ec" in lines[0] and "0x80000b0e" in lines[0], out)

    st, out = run("pick", log, os.path.join(d, "no-trace.txt"), "%.6f" % OFFSET)
    check("no trace, nothing picked", st == 0 and out == "", out)
    st, out = run("pick", log, TRACE, "%.6f" % (OFFSET + 300))
    check("the #PF outside the test's run: nothing picked", st == 0 and out == "", out)

    rerun = os.path.join(d, "kvm-lab-rerun.json")
    write(rerun, [rec("kvm_migtls", "OK", 1300, 150, "PASS\n")])
    ev = os.path.join(d, "env.json")
    st, out = run("merge", log, rerun, ev)
    merged = [json.loads(l) for l in open(log)]
    check("merge reports one replaced", st == 0 and out.strip() == "1", out)
    check("merge keeps the order and the others",
          [r["name"].split(" / ")[1] for r in merged] ==
          ["kvm_migtls", "kvm_migrate", "kvm_snapshot", "kvm_reset", "kvm_hotplug", "kvm_unplug"], str(merged))
    check("the rerun's record replaces the failed one", merged[0]["result"] == "OK" and merged[0]["stdout"] == "PASS\n")
    kept = [json.loads(l) for l in open(ev)]
    check("the failed record is kept as evidence", len(kept) == 1 and kept[0]["result"] == "FAIL" and
          "triple fault" in kept[0]["stdout"], str(kept))
    st, _ = run("bogus")
    check("usage: exit 2", st == 2)

sys.exit(1 if fails else 0)
