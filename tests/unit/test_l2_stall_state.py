#!/usr/bin/env python3
"""tests/lab/l2-stall-state.py on logs in minivmm's SIGUSR2 format
(vmm/x86/inspect.c, board_inspect_fn; tests/kvm/api.sh checks that format on
a real guest): the verdict words and the one-line summary."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "lab", "l2-stall-state.py")
fails = 0


def check(what, cond, out):
    global fails
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else ": " + out))
    if not cond:
        fails += 1


def vcpu(i, mp, rip, irr=(), ppr=0, if_=True):
    return {"id": i, "mp_state": mp,
            "regs": {"rip": rip, "if": if_, "cpl": 0},
            "events": {}, "lapic": {"irr": list(irr), "isr": [], "ppr": ppr, "tpr": 0,
                                     "timer": {"mode": "tsc-deadline", "masked": False, "vector": 236}},
            "tsc": {"tsc": "0x100", "deadline": "0x80", "deadline_passed": True}}


def dump(vcpus):
    pfx = "minivmm: inspect: warning: "
    lines = [pfx + "vcpu " + json.dumps(v, separators=(",", ":")) for v in vcpus]
    lines.append(pfx + "ioapic " + json.dumps({"irr": "0x10", "unmasked_pins": [
        {"pin": 4, "vector": 36, "trigger": "edge", "remote_irr": False, "line_high": True}]}))
    lines.append(pfx + 'device {"id":"ttyS0","kind":"serial","uart":{"ier":15,"iir":194,"lsr":96,'
                 '"mcr":11,"thr_pending":true,"irq_level":true,"rx_fifo":0,"tx_bytes":9000,'
                 '"tx_dropped":0,"rx_bytes":0,"rx_dropped":0}}')
    lines.append(pfx + 'device {"id":"blk0","kind":"virtio-blk","requests":{"inflight":1},'
                 '"virtio":{"status":15,"active":true,"broken":false,"isr":0,"queues":[{"queue":0,'
                 '"size":256,"last_avail_idx":7,"used_idx":6,"guest_avail_idx":7,"guest_used_idx":6,'
                 '"msix_vector":1}]}}')
    return "\n".join(lines) + "\n"


def run(text):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write("[   12.0] some console line\r\n" + text)
        path = f.name
    try:
        p = subprocess.run([sys.executable, TOOL, path], capture_output=True, text=True)
        return p.returncode, p.stdout
    finally:
        os.unlink(path)


st, out = run(dump([vcpu(0, "halted", "0xffffffff81a0", irr=[36], ppr=0), vcpu(1, "halted", "0xffffffff81a0")]) +
              dump([vcpu(0, "halted", "0xffffffff81a0", irr=[36], ppr=0), vcpu(1, "halted", "0xffffffff81a0")]))
check("halted with IF and a vector above PPR in both dumps: lost-wakeup", st == 0 and out.startswith("lost-wakeup: 2 dumps;"), out)
check("... names the vector, the rip unchanged, the UART and the disk's queue",
      "vcpu0 halted IF=1 rip=0xffffffff81a0 (same) irr=[36]" in out and "ttyS0 ier=0xf iir=0xc2 thr_pending=1 irq=1" in out
      and "blk0 status=0xf isr=0 inflight=1 q0:7/7,used 6/6" in out and "held=['pin4']" in out, out)

st, out = run(dump([vcpu(0, "halted", "0x1", irr=[36], ppr=0x20)]) + dump([vcpu(0, "halted", "0x1", irr=[36], ppr=0x20)]))
check("a vector below PPR's class is not deliverable: halted", out.startswith("halted:"), out)

st, out = run(dump([vcpu(0, "halted", "0x1", irr=[36], if_=False)]) + dump([vcpu(0, "halted", "0x1", irr=[36], if_=False)]))
check("interrupts off: not a lost wake-up", out.startswith("halted:"), out)

st, out = run(dump([vcpu(0, "runnable", "0x1000")]) + dump([vcpu(0, "runnable", "0x2000")]))
check("rip moved: spinning", out.startswith("spinning:") and "rip=0x2000 (moved)" in out, out)

st, out = run(dump([vcpu(0, "halted", "0x1", irr=[36])]) + dump([vcpu(0, "halted", "0x1", irr=[])]))
check("a vector seen once only (taken between the dumps): not lost", out.startswith("halted:"), out)

st, out = run("nothing from minivmm\n")
check("no dump: said so", st == 0 and out.startswith("no-dump:"), out)

sys.exit(1 if fails else 0)
