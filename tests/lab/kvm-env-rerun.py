#!/usr/bin/python3
"""kvm-env-rerun.py: lab-kvm's one environmental rerun (tests/lab/test-kvm.sh).

  kvm-env-rerun.py pick TESTLOG TRACE OFFSET
      prints, one per line, "NAME<TAB>evidence" for each kvm test that failed
      in TESTLOG (meson's testlog JSON of one build's kvm suite in L1) because
      its tiny guest met the lab's L2 triple fault, and nothing else. TRACE
      holds L1's KVM shutdown exits (ftrace kvm:kvm_exit lines, trace_clock
      mono); OFFSET is the wall-clock time minus CLOCK_MONOTONIC in L1, to
      place a trace line in a test's run (meson's starttime, duration).
  kvm-env-rerun.py merge TESTLOG RERUNLOG FAILEDLOG
      replaces TESTLOG's records of the tests RERUNLOG ran by RERUNLOG's,
      and appends the replaced (failed) ones to FAILEDLOG, the evidence.

A failure is environmental here only when all of these hold:
  - the test failed (meson result FAIL or ERROR; a timeout is not this);
  - its output has minivmm's line for a triple fault ("triple fault:
    resetting" or "guest reset by a triple fault");
  - L1's KVM traced, while the test ran, a shutdown exit while delivering a
    page fault (intr_info 0x80000b0e: valid, exception, error code, vector
    14). That is the signature docs/lab.md "The L2 triple faults" shows to
    be L0's TCG (a #PF that no page table gave: on the instruction after an
    exit, on a page the vCPU had just run from). kvm_triplefault's own
    (vector 3, intr_info 0x80000403) never qualifies, nor any other vector.
The rerun is once per test: test-kvm.sh runs a test again only if it is
picked from the first run's log.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from mesonlog import output, records, short  # noqa: E402

TF_LINE = re.compile(r"triple fault: resetting|guest reset by a triple fault")
# ftrace: "  vcpu0-5055  [000] .....   381.108979: kvm_exit: vcpu 0 reason shutdown rip 0x1007ec ..."
TRACE = re.compile(r"^\s*(\S+)\s+\[\d+\]\s+\S+\s+([0-9]+\.[0-9]+): kvm_exit: vcpu (\d+) reason shutdown "
                   r"rip (0x[0-9a-f]+).*? intr_info (0x[0-9a-f]+)(?: error_code (0x[0-9a-f]+))?")
PF_DELIVERY = 0x80000B0E
SLACK = 2.0  # seconds either side of a test's run: meson's times are taken around the process


def pf_shutdowns(trace_path, offset):
    """[(wall-clock time, the trace line)] of the shutdowns while delivering a #PF"""
    out = []
    try:
        lines = open(trace_path, errors="replace").read().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        m = TRACE.match(line)
        if m and int(m.group(5), 16) == PF_DELIVERY:
            out.append((float(m.group(2)) + offset, line.strip()))
    return out


def pick(testlog, trace_path, offset):
    exits = pf_shutdowns(trace_path, offset)
    picked = []
    for t in records(testlog):
        if t.get("result") not in ("FAIL", "ERROR"):
            continue
        if not TF_LINE.search(output(t)):
            continue
        start = t.get("starttime")
        dur = t.get("duration")
        if start is None or dur is None:
            continue
        inside = [line for when, line in exits if start - SLACK <= when <= start + dur + SLACK]
        if inside:
            picked.append((short(t.get("name")), inside[0]))
    return picked


def merge(testlog, rerunlog, failedlog):
    again = {short(t.get("name")): t for t in records(rerunlog)}
    kept, replaced = [], []
    for t in records(testlog):
        n = short(t.get("name"))
        if n in again:
            replaced.append(t)
            kept.append(again.pop(n))
        else:
            kept.append(t)
    with open(testlog, "w") as f:
        for t in kept:
            f.write(json.dumps(t) + "\n")
    with open(failedlog, "a") as f:
        for t in replaced:
            f.write(json.dumps(t) + "\n")
    return len(replaced)


def main(argv):
    if len(argv) == 5 and argv[1] == "pick":
        for name, evidence in pick(argv[2], argv[3], float(argv[4])):
            print("%s\t%s" % (name, evidence))
        return 0
    if len(argv) == 5 and argv[1] == "merge":
        print(merge(argv[2], argv[3], argv[4]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
