#!/usr/bin/env python3
"""What a silent minivmm guest was doing, in one line, from its log.

The lab (tests/lab/l1-lib.sh, lab_guest_run) sends SIGUSR2 twice, 2 s apart,
to a minivmm whose guest's console went silent; each time minivmm logs its
vCPUs', IOAPIC's and devices' state ("minivmm: inspect: warning: vcpu {...}",
vmm/x86/inspect.c). This reads the two dumps from LOG and prints:

  vcpu0 halted IF=1 rip=0x... (same|moved) irr=[..] isr=[..] ppr=N timer=...;
  ... ttyS0 ier=.. iir=.. thr_pending=.. irq=..; blk0 inflight=N avail/used ..

and a verdict word first:
  lost-wakeup   a vCPU halted with IF set while its APIC holds a vector above
                its PPR, in both dumps: the interrupt was not delivered
  spinning      a vCPU's rip moved between the dumps: the guest runs
  halted        every vCPU halted with nothing deliverable: the guest waits
  no-dump       minivmm logged no state (it did not answer SIGUSR2)
Usage: l2-stall-state.py LOG
"""
import json
import re
import sys

PFX = "minivmm: inspect: warning: "


def dumps(path):
    """the dumps in LOG, each {"vcpus": [...], "ioapic": {...}, "devices": [...]}"""
    out, cur = [], None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.replace("\r", "").rstrip("\n")
            i = line.find(PFX)
            if i < 0:
                continue
            kind, _, body = line[i + len(PFX):].partition(" ")
            try:
                obj = json.loads(body)
            except ValueError:
                continue
            if kind == "vcpu":
                if cur is None or obj.get("id") == 0:
                    cur = {"vcpus": [], "ioapic": None, "devices": []}
                    out.append(cur)
                cur["vcpus"].append(obj)
            elif kind == "ioapic" and cur is not None:
                cur["ioapic"] = obj
            elif kind == "device" and cur is not None:
                cur["devices"].append(obj)
    return out


def deliverable(c):
    """vectors in the APIC's IRR above its PPR's class (what it would take now)"""
    lapic = c.get("lapic") or {}
    ppr = lapic.get("ppr", 0)
    return [v for v in lapic.get("irr", []) if (v >> 4) > (ppr >> 4)]


def vcpu_line(c, prev):
    regs, lapic = c.get("regs") or {}, c.get("lapic") or {}
    moved = ""
    if prev is not None:
        moved = " (moved)" if prev.get("regs", {}).get("rip") != regs.get("rip") else " (same)"
    timer = lapic.get("timer") or {}
    tsc = c.get("tsc") or {}
    t = "%s%s" % (timer.get("mode", "?"), " masked" if timer.get("masked") else "")
    if timer.get("mode") == "tsc-deadline" and isinstance(tsc, dict):
        t += " deadline=%s%s" % (tsc.get("deadline"), " passed" if tsc.get("deadline_passed") else "")
    return "vcpu%s %s IF=%d rip=%s%s irr=%s isr=%s ppr=%s timer=%s" % (
        c.get("id"), c.get("mp_state"), 1 if regs.get("if") else 0, regs.get("rip"), moved,
        lapic.get("irr"), lapic.get("isr"), lapic.get("ppr"), t)


def device_line(d):
    u = d.get("uart")
    if u:
        return "%s ier=%#x iir=%#x thr_pending=%d irq=%d tx=%d" % (
            d["id"], u["ier"], u["iir"], u["thr_pending"], u["irq_level"], u["tx_bytes"])
    v = d.get("virtio")
    if v:
        qs = " ".join("q%d:%d/%d,used %d/%d" % (q["queue"], q["last_avail_idx"], q["guest_avail_idx"],
                                                  q["used_idx"], q["guest_used_idx"])
                      for q in v.get("queues") or [])
        r = d.get("requests")
        extra = " inflight=%d" % r["inflight"] if r else ""
        return "%s status=%#x isr=%d%s %s" % (d["id"], v["status"], v["isr"], extra, qs)
    return None


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    ds = dumps(sys.argv[1])
    if not ds:
        print("no-dump: minivmm logged no state after SIGUSR2")
        return 0
    last = ds[-1]
    prev = ds[-2] if len(ds) > 1 else None
    prev_by_id = {c.get("id"): c for c in (prev or {}).get("vcpus", [])}
    moved = any(prev_by_id.get(c.get("id"), {}).get("regs", {}).get("rip") != c.get("regs", {}).get("rip")
                for c in last["vcpus"]) if prev else False
    lost = [c for c in last["vcpus"]
            if c.get("mp_state") == "halted" and (c.get("regs") or {}).get("if") and deliverable(c)]
    if prev:
        lost = [c for c in lost if deliverable(prev_by_id.get(c.get("id"), {}))]
    if lost:
        verdict = "lost-wakeup"
    elif moved:
        verdict = "spinning"
    elif all(c.get("mp_state") == "halted" for c in last["vcpus"]):
        verdict = "halted"
    else:
        verdict = "stuck"
    parts = [vcpu_line(c, prev_by_id.get(c.get("id"))) for c in last["vcpus"]]
    pins = (last.get("ioapic") or {}).get("unmasked_pins") or []
    held = ["pin%d" % p["pin"] for p in pins if p.get("remote_irr") or p.get("line_high")]
    parts.append("ioapic irr=%s held=%s" % ((last.get("ioapic") or {}).get("irr"), held or "-"))
    parts += [x for x in (device_line(d) for d in last["devices"]) if x]
    print("%s: %d dumps; %s" % (verdict, len(ds), "; ".join(parts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
