#!/usr/bin/python3
"""l1-hang-kind.py REPORT: reads a hang report of lab.sh (l1_hang_report: QEMU
monitor output for L1) and prints one line when it shows an interrupt that
L0's emulation failed to deliver, nothing otherwise:

  lapic: CPU0 halted with interrupts enabled (RFLAGS 0x212) while its local
  APIC holds deliverable vectors 37 40 236 251 (IRR) above PPR 0x10: ...

A vCPU in HLT with IF set must wake for any vector in its IRR whose priority
class (vector >> 4) is above its PPR's class, and a later dump of the same
APIC ("### again: ..." sections, when the report has them) must still hold
it: a vector that was only passing is gone by then. When it does not, the emulated
CPU (QEMU's TCG, L0) lost the wakeup: L1's timer tick and device interrupts
on that CPU never arrive and its tasks stop. That is the lab's environment,
not minivmm (docs/lab.md, "L1 went silent with its vCPUs idle"). Exit 0.
"""
import re
import sys


def parse(text):
    """{cpu: {"hlt": bool, "rflags": int, "irr": [vectors], "isr": [...], "ppr": int}}"""
    cpus = {}
    regs = text.split("### info registers", 1)[1].split("\n### ", 1)[0] if "### info registers" in text else ""
    for m in re.finditer(r"^CPU#(\d+)\n(.*?)(?=^CPU#\d+\n|\Z)", regs, re.M | re.S):
        block = m.group(2)
        rfl = re.search(r"RFL=([0-9a-f]+)", block)
        hlt = re.search(r"HLT=(\d)", block)
        if rfl and hlt:
            cpus[int(m.group(1))] = {"rflags": int(rfl.group(1), 16), "hlt": hlt.group(1) == "1"}
    # "### cpu N" then "### info lapic" with that CPU's local APIC; the
    # "### again: " dumps of the same, later, go under "again"
    for m in re.finditer(r"^### (again: )?cpu (\d+)\n.*?^### (?:again: )?info lapic\n(.*?)(?=^### |\Z)",
                         text, re.M | re.S):
        again, n, lapic = bool(m.group(1)), int(m.group(2)), m.group(3)
        irr = re.search(r"^IRR\s+(.*)$", lapic, re.M)
        isr = re.search(r"^ISR\s+(.*)$", lapic, re.M)
        ppr = re.search(r"\bPPR (0x[0-9a-f]+)", lapic)
        if n in cpus and irr and ppr:
            vec = lambda s: [int(v) for v in s.split() if v.isdigit()]
            if again:
                cpus[n]["irr_again"] = vec(irr.group(1))
            else:
                cpus[n].update(irr=vec(irr.group(1)), isr=vec(isr.group(1)) if isr else [],
                               ppr=int(ppr.group(1), 16))
    return cpus


def lost_wakeups(cpus):
    out = []
    for n, c in sorted(cpus.items()):
        if "irr" not in c or not c["hlt"] or not c["rflags"] & 0x200:
            continue
        due = [v for v in c["irr"] if v >> 4 > c["ppr"] >> 4]
        if "irr_again" in c:
            due = [v for v in due if v in c["irr_again"]]
        if due:
            out.append("CPU%d halted with interrupts enabled (RFLAGS 0x%x) while its local APIC "
                       "holds deliverable vectors %s (IRR) above PPR 0x%x"
                       % (n, c["rflags"], " ".join(map(str, due)), c["ppr"]))
    return out


def main():
    text = open(sys.argv[1], errors="replace").read()
    found = lost_wakeups(parse(text))
    if found:
        print("lapic: " + "; ".join(found) + ": L0's emulation (QEMU TCG) lost the wakeup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
