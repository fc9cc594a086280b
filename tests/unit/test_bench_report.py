#!/usr/bin/python3
"""Unit test of scripts/bench-report.py (the bench's report, docs/benchmarks.md)
on recorded inputs: tests/unit/data/bench/bench.json (a bench.json of a
--quick lab run) and tests/unit/data/bench/lab/ (that run's lab records,
iperf3 outputs trimmed of their intervals, consoles left out; its
minivmm-user-quiet folder is minivmm-user's record with the times changed, not
a recording).

  - render: bench.md has the three tables with every cell a figure or an
    n/a whose reason is listed, the expected reasons (minivmm's missing
    vhost-net backend, migration not run in --quick), and PNG plots;
  - check: it finds a cell that is neither (a metric removed from the JSON)
    and a missing plot;
  - collect: the recorded lab folder gives a JSON that renders and checks
    clean, the quiet boots' rows come from their own folders, and an empty lab folder (a lab run that recorded nothing) gives
    n/a cells that say so, never blanks.
Exit 0 on success, 1 on a failure, 77 (skip) without python3-matplotlib.
"""
import copy
import importlib.util
import json
import os
import shutil
import sys
import tempfile

SRC = os.environ.get("MINIVMM_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(SRC, "tests", "unit", "data", "bench")

try:
    import matplotlib  # noqa: F401
except ImportError:
    print("SKIP: python3-matplotlib is not installed for %s (bash scripts/deps.sh)" % sys.executable)
    sys.exit(77)

spec = importlib.util.spec_from_file_location("bench_report", os.path.join(SRC, "scripts", "bench-report.py"))
br = importlib.util.module_from_spec(spec)
spec.loader.exec_module(br)

failures = []


def expect(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def render(j, out):
    p = os.path.join(out, "bench.json")
    with open(p, "w") as f:
        json.dump(j, f)
    rc = br.render(Args(json=p, out=out))
    expect(rc == 0, "render exits 0 (%s)" % out)
    return open(os.path.join(out, "bench.md")).read()


def table_rows(md):
    lines = md.splitlines()
    rows = []
    for n, line in enumerate(lines):
        if line.startswith("|") and not line.startswith("|---") and not (
                n + 1 < len(lines) and lines[n + 1].startswith("|---")):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


tmp = tempfile.mkdtemp(prefix="bench-report-test.")
try:
    fixture = json.load(open(os.path.join(DATA, "bench.json")))

    # --- render the recorded JSON -------------------------------------------
    out = os.path.join(tmp, "render")
    os.makedirs(out)
    md = render(fixture, out)
    problems = br.check_dir(out)
    expect(problems == [], "check: every cell filled or explained (%s)" % "; ".join(problems))
    rows = table_rows(md)
    expect(len(rows) == len(br.NET_ROWS) + len(br.BOOT_ROWS) + len(br.MIG_ROWS),
           "%d table rows (network %d, boot %d, migration %d)" % (
               len(rows), len(br.NET_ROWS), len(br.BOOT_ROWS), len(br.MIG_ROWS)))
    net = rows[:len(br.NET_ROWS)]
    expect(all(len(r) == 1 + 3 * len(br.PATHS) for r in net), "network rows: a label and 9 cells each")
    expect(all(c for r in rows for c in r), "no empty cell")
    # the columns: VF minivmm, VF QEMU, ratio, vhost minivmm, vhost QEMU, ...
    notes = dict((t, w) for t, w in __import__("re").findall(r"^- \(([a-z]+)\) (.*)$", md, __import__("re").M))
    vhost_mini = [r[4] for r in net]
    tags = set(__import__("re").findall(r"n/a \(([a-z]+)\)", " ".join(vhost_mini)))
    expect(len(tags) == 1 and notes.get(tags.pop(), "") ==
           "not measured: minivmm has no vhost-net backend in this build",
           "minivmm's vhost-net column: 'not measured: minivmm has no vhost-net backend in this build'")
    tcp = net[0]
    expect(tcp[1][0].isdigit() and tcp[2][0].isdigit(), "TCP guest to L1 over the VF: figures for both VMMs (%s, %s)" % (tcp[1], tcp[2]))
    expect(tcp[7][0].isdigit() and tcp[8][0].isdigit(), "TCP over userspace virtio-net: figures for both (%s, %s)" % (tcp[7], tcp[8]))
    mig = rows[-len(br.MIG_ROWS):]
    expect(all("n/a" in c for r in mig for c in r[1:3]) and "not run in --quick" in notes.values(),
           "migration cells: 'not run in --quick'")
    pngs = [f for f in os.listdir(out) if f.endswith(".png")]
    expect(len(pngs) >= 4, "plots produced: %s" % ", ".join(sorted(pngs)))
    for p in pngs:
        with open(os.path.join(out, p), "rb") as f:
            head = f.read(8)
        expect(head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(os.path.join(out, p)) > 5000, "%s is a PNG" % p)

    # --- check catches gaps ------------------------------------------------
    broken = copy.deepcopy(fixture)
    del broken["net"]["minivmm"]["vf"]["tcp_tx_mbps"]
    out2 = os.path.join(tmp, "broken")
    os.makedirs(out2)
    md2 = render(broken, out2)
    expect("missing from the JSON" in md2, "a metric missing from the JSON shows as a gap in the table")
    expect(any("no net.minivmm.vf.tcp_tx_mbps" in p for p in br.check_dir(out2)),
           "check: a metric missing from the JSON is refused")
    broken["boot"]["minivmm"]["to_ready_s"] = {"na": ""}
    with open(os.path.join(out2, "bench.json"), "w") as f:
        json.dump(broken, f)
    os.unlink(os.path.join(out2, pngs[0]))
    p2 = br.check_dir(out2)
    expect(any("empty n/a reason" in p for p in p2), "check: an n/a without a reason is refused")
    expect(any("no plot" in p for p in p2), "check: a missing plot is refused")
    with open(os.path.join(out2, "bench.md"), "a") as f:
        f.write("\n| x | 12 | |\n|---|---|---|\n| y | 1 | |\n")
    expect(any("empty or unknown cell" in p for p in br.check_dir(out2)), "check: a blank cell is refused")

    # --- collect from recorded lab records ---------------------------------
    lab = os.path.join(DATA, "lab")
    out3 = os.path.join(tmp, "collect")
    os.makedirs(out3)
    rc = br.collect(Args(lab=lab, lab_status="0", mode=None, migration=None, migration_na=None,
                         out=os.path.join(out3, "bench.json")))
    expect(rc == 0, "collect exits 0")
    j3 = json.load(open(os.path.join(out3, "bench.json")))
    for k in ("tcp_tx_mbps", "tcp_rx_mbps", "udp_tx_kpps", "exits_per_kpkt_tcp", "vmm_us_per_pkt_tcp"):
        a, b = j3["net"]["minivmm"]["vf"][k], fixture["net"]["minivmm"]["vf"][k]
        expect(br.central(a) is not None and abs(br.central(a) - br.central(b)) < 1e-6,
               "collect: minivmm VF %s %s as recorded" % (k, br.central(a)))
    br.render(Args(json=os.path.join(out3, "bench.json"), out=out3))
    p3 = br.check_dir(out3)
    expect(p3 == [], "collect + render of the lab records checks clean (%s)" % "; ".join(p3))
    # the quiet boots: minivmm's recorded one (minivmm-user-quiet) gives its
    # figures, apart from the full-console boot's; QEMU's, not recorded, an n/a
    bq = j3["boot"]
    expect(abs(br.central(bq["minivmm"]["quiet_to_ready_s"]) - 14.0) < 1e-6 and
           abs(br.central(bq["minivmm"]["quiet_to_init_s"]) - 12.5) < 1e-6,
           "quiet boot: exec to init 12.5 s and to ready 14.0 s, from minivmm-user-quiet (%s)" % bq["minivmm"].get("quiet_to_ready_s"))
    expect(abs(br.central(bq["minivmm"]["to_ready_s"]) - br.central(fixture["boot"]["minivmm"]["to_ready_s"])) < 1e-6,
           "quiet boot: the full-console boot's figure is unchanged by it")
    expect("not run by the lab" in bq["qemu"]["quiet_to_ready_s"].get("na", ""),
           "quiet boot: QEMU's, not recorded, is an n/a saying so (%s)" % bq["qemu"]["quiet_to_ready_s"])
    md3 = open(os.path.join(out3, "bench.md")).read()
    expect(any(r[0].startswith("exec to guest ready, guest booted with `quiet`") and r[1].startswith("14.0")
               for r in table_rows(md3)), "quiet boot: its row in bench.md")
    # with a migration results folder
    migd = os.path.join(tmp, "mig")
    os.makedirs(migd)
    with open(os.path.join(migd, "results.txt"), "w") as f:
        f.write("mh_minivmm_paused_ms=338\nmh_minivmm_total_ms=39908\nmh_minivmm_stall_ms=1400\n"
                "mh_qemu_paused_ms=363\nmh_qemu_total_ms=24494\n")
    rc = br.collect(Args(lab=lab, lab_status="0", mode=None, migration=migd, migration_na=None,
                         out=os.path.join(out3, "bench-mig.json")))
    j4 = json.load(open(os.path.join(out3, "bench-mig.json")))
    expect(br.central(j4["migration"]["minivmm"]["downtime_ms"]) == 338, "migration: downtime from mh_minivmm_paused_ms")
    expect("mh_qemu_stall_ms" in j4["migration"]["qemu"]["stall_ms"].get("na", ""),
           "migration: a key missing from results.txt is named in its n/a")

    # --- a window's CPU per thread: a thread that exits does not take time back
    b = br.parse_fields("tcp-begin t=10 hz=100 cpu_total=300 cpu_vcpu=200 cpu_other=100 "
                        "threads=1:o:40,2:v:100,3:v:100,4:o:60 uexits=5 exits=50 rx_packets=0 tx_packets=0")
    e = br.parse_fields("tcp-end t=20 hz=100 cpu_total=420 cpu_vcpu=300 cpu_other=45 "
                        "threads=1:o:45,2:v:150,3:v:150 uexits=5 exits=150 rx_packets=600 tx_packets=400")
    w = br.window_figures((b, e), "user")
    expect(w["vmm_cpu_ms"] == 50 and w["vcpu_cpu_ms"] == 1000 and w["packets"] == 1000,
           "per-thread window: VMM 50 ms, vCPUs 1000 ms though thread 4 exited (%s)" % w)
    del b["threads"], e["threads"]
    w = br.window_figures((b, e), "user")
    expect(w["vmm_cpu_ms"] == 200, "without the thread list: the total minus the vCPUs, never negative (%s)" % w)

    # --- a lab run that recorded nothing -------------------------------------
    empty = os.path.join(tmp, "empty-lab")
    os.makedirs(empty)
    out5 = os.path.join(tmp, "empty")
    os.makedirs(out5)
    br.collect(Args(lab=empty, lab_status="125", mode="quick", migration=None, migration_na=None,
                    out=os.path.join(out5, "bench.json")))
    j5 = json.load(open(os.path.join(out5, "bench.json")))
    cells = [m for v in j5["net"].values() for p in v.values() for k, m in p.items() if not k.startswith("_")]
    expect(cells and all("recorded nothing" in m.get("na", "") for m in cells),
           "an empty lab run: every network cell says the lab recorded nothing")
    br.render(Args(json=os.path.join(out5, "bench.json"), out=out5))
    p5 = br.check_dir(out5)
    expect(p5 == [], "an empty lab run still gives a complete, explained report (%s)" % "; ".join(p5))
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
