#!/usr/bin/python3
"""Unit test of tests/lab/l1-hang-kind.py (lab.sh's reading of a hung L1) on a
recorded hang report: tests/unit/data/l1-hang/lost-wakeup.txt, the monitor
dump of the L1 that went silent in lab-migrate-faults on 2026-12-02 (CPU 0
in HLT with IF=1 and vectors 37, 40, 236 and 251 pending above PPR 0x10).

  - that report is a lost wakeup, naming CPU 0 and its vectors;
  - the same report with CPU 0's IRR empty, with IF clear, with CPU 0 not
    halted, or with the vectors at or below PPR's class, is not;
  - a report without registers (monitor gone) is not.
Exit 0 on success, 1 on a failure.
"""
import importlib.util
import os
import re
import sys

SRC = os.environ.get("MINIVMM_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("hangkind", os.path.join(SRC, "tests", "lab", "l1-hang-kind.py"))
hk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hk)
report = open(os.path.join(SRC, "tests", "unit", "data", "l1-hang", "lost-wakeup.txt")).read()
fails = 0


def check(name, cond):
    global fails
    print(("ok   " if cond else "FAIL ") + name)
    if not cond:
        fails += 1


def cpu0_lapic(text, new_irr=None, new_ppr=None):
    head, rest = text.split("### cpu 0\n", 1)
    lapic, tail = rest.split("### cpu 1\n", 1)
    if new_irr is not None:
        lapic = re.sub(r"^IRR\t .*$", "IRR\t " + new_irr, lapic, count=1, flags=re.M)
    if new_ppr is not None:
        lapic = re.sub(r"PPR 0x[0-9a-f]+", "PPR " + new_ppr, lapic, count=1)
    return head + "### cpu 0\n" + lapic + "### cpu 1\n" + tail


found = hk.lost_wakeups(hk.parse(report))
check("the recorded report is a lost wakeup", len(found) == 1)
check("it names CPU 0 and its pending vectors", found and "CPU0" in found[0] and "37 40 236 251" in found[0])
check("CPU 1 (IRR empty, timer counting) is not named", not any("CPU1" in f for f in found))
check("IRR empty: none", not hk.lost_wakeups(hk.parse(cpu0_lapic(report, "(none)"))))
check("vectors at PPR's class: none",
      not hk.lost_wakeups(hk.parse(cpu0_lapic(report, "17 30", "0xf0"))))
first = report.index("RFL=00000212")
check("IF clear: none", not hk.lost_wakeups(hk.parse(report[:first] + "RFL=00000012" + report[first + 12:])))
hlt = report.index("HLT=1")
check("not halted: none", not hk.lost_wakeups(hk.parse(report[:hlt] + "HLT=0" + report[hlt + 5:])))
check("no registers: none", not hk.lost_wakeups(hk.parse("### info status\nVM status: running\n")))
# the report as lab.sh now writes it, with a second dump of the APICs
again = "\n".join("### again: " + l[4:] if l in ("### cpu 0", "### info lapic", "### cpu 1") else l
                   for l in report[report.index("### cpu 0"):report.index("### jiffies_64")].split("\n"))
check("still pending in the second dump: a lost wakeup", len(hk.lost_wakeups(hk.parse(report + "\n" + again))) == 1)
gone = re.sub(r"^IRR\t 37 40 236 251 *$", "IRR\t (none)", again, count=1, flags=re.M)
check("gone by the second dump: none", not hk.lost_wakeups(hk.parse(report + "\n" + gone)))
sys.exit(1 if fails else 0)
