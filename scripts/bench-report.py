#!/usr/bin/python3
"""The bench's report (scripts/bench.sh, docs/benchmarks.md).

  bench-report.py collect --lab DIR [--lab-status N] [--migration DIR |
                  --migration-na WHY] --out FILE.json
      reads what tests/lab/bench-lab.sh recorded (DIR/bench/...) and a
      lab-migrate-hosts results folder (DIR/results.txt, keys
      mh_{minivmm,qemu}_{paused,total,stall}_ms) into one JSON file
  bench-report.py render FILE.json --out DIR
      writes DIR/bench.md (the tables) and DIR/*.png (the plots)
  bench-report.py check DIR
      DIR has bench.json, bench.md and the plots it names; every table cell
      holds a figure or an n/a whose reason is given; exit 1 otherwise

Every figure in the JSON is a "metric": {"value": x} or {"median", "min",
"max", "n", "values"} (with "unit"), or {"na": "why it was not measured"}.
collect never leaves one out: what the lab did not record becomes an n/a
saying so. Runs with python3 and python3-matplotlib (Debian).
"""
import argparse
import json
import math
import os
import re
import statistics
import sys

SCHEMA = "minivmm-bench/1"
VMMS = ["minivmm", "qemu"]
VMM_NAMES = {"minivmm": "minivmm", "qemu": "QEMU q35", "microvm": "QEMU microvm"}
PATHS = ["vf", "vhost", "user"]
PATH_NAMES = {"vf": "VF (VFIO)", "vhost": "virtio-net + vhost-net", "user": "virtio-net, userspace backend"}
BOOT_VMMS = ["minivmm", "qemu", "microvm"]

# (key, label, unit, digits)
NET_ROWS = [
    ("tcp_tx_mbps", "TCP guest to L1", "Mbit/s", 0),
    ("tcp_rx_mbps", "TCP L1 to guest", "Mbit/s", 0),
    ("udp_tx_kpps", "UDP 64 B guest to L1, received", "kpps", 1),
    ("udp_rx_kpps", "UDP 64 B L1 to guest, received", "kpps", 1),
    ("lat_p50_us", "request/response round trip p50", "µs", 0),
    ("lat_p99_us", "request/response round trip p99", "µs", 0),
    ("vmm_us_per_pkt_tcp", "VMM CPU per packet, TCP (threads other than vCPUs)", "µs", 2),
    ("vmm_us_per_pkt_udp", "VMM CPU per packet, UDP 64 B (threads other than vCPUs)", "µs", 2),
    ("vhost_us_per_pkt_tcp", "vhost kernel thread CPU per packet, TCP", "µs", 2),
    ("vhost_us_per_pkt_udp", "vhost kernel thread CPU per packet, UDP 64 B", "µs", 2),
    ("exits_per_kpkt_tcp", "exits to the VMM per 1000 packets, TCP", "", 2),
    ("exits_per_kpkt_udp", "exits to the VMM per 1000 packets, UDP 64 B", "", 2),
    ("kvm_exits_per_kpkt_tcp", "all KVM exits in L1 per 1000 packets, TCP", "", 0),
    ("kvm_exits_per_kpkt_udp", "all KVM exits in L1 per 1000 packets, UDP 64 B", "", 0),
    ("boot_ready_s", "exec to guest ready (this boot)", "s", 1),
]
BOOT_ROWS = [
    ("to_init_s", "exec to the guest's init", "s", 1),
    ("to_ready_s", "exec to guest ready (LAB-GUEST-READY)", "s", 1),
    ("guest_up_ready_s", "guest uptime at ready (its own clock)", "s", 1),
    ("rss_mib", "VMM RSS apart from guest RAM, at ready", "MiB", 1),
    ("pss_mib", "VMM PSS apart from guest RAM, at ready", "MiB", 1),
    ("startup_cpu_ms", "VMM CPU exec to ready (threads other than vCPUs)", "ms", 0),
    ("startup_cpu_total_ms", "CPU exec to ready, all threads (vCPUs included)", "ms", 0),
    ("quiet_to_init_s", "exec to the guest's init, guest booted with `quiet`", "s", 1),
    ("quiet_to_ready_s", "exec to guest ready, guest booted with `quiet`", "s", 1),
]
# (the quiet_* rows come from the quiet boots, VMM-user-quiet[-boot-N]; the
# others from the boots with the guest's full console, VMM-user[-boot-N])
MIG_ROWS = [
    ("downtime_ms", "downtime (paused)", "ms", 0, "paused_ms"),
    ("total_ms", "total migration time", "ms", 0, "total_ms"),
    ("stall_ms", "guest's TCP stream: longest stall", "ms", 0, "stall_ms"),
]


def na(why):
    return {"na": why}


def is_na(m):
    return not isinstance(m, dict) or "na" in m


def stats(values, unit):
    v = [float(x) for x in values]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v),
            "values": v, "unit": unit}


def single(x, unit):
    return {"value": float(x), "unit": unit}


def central(m):
    """the figure a ratio or a plot uses: the median or the value"""
    if is_na(m):
        return None
    return m["median"] if "median" in m else m["value"]


def read_kv(path):
    """key=value lines (the first '=' splits); {} when the file is missing"""
    kv = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k.strip()] = v.strip().strip('"')
    except OSError:
        pass
    return kv


def parse_fields(line):
    out = {}
    for w in line.split()[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = v
    return out


def read_windows(path):
    """windows.txt: 'NAME-begin k=v ...' / 'NAME-end k=v ...' -> {NAME: (begin, end)}"""
    snaps = {}
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    snaps[line.split()[0]] = parse_fields(line)
    except OSError:
        return {}
    out = {}
    for k in snaps:
        if k.endswith("-begin") and k[:-6] + "-end" in snaps:
            out[k[:-6]] = (snaps[k], snaps[k[:-6] + "-end"])
    return out


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError, TypeError):
        return None


def thread_ticks(snap):
    """threads=TID:v|o:TICKS,... -> {tid: (kind, ticks)}, None without it"""
    if "threads" not in snap:
        return None
    out = {}
    for item in snap["threads"].split(","):
        f = item.split(":")
        if len(f) == 3 and f[2].isdigit():
            out[f[0]] = (f[1], int(f[2]))
    return out


def window_figures(win, path):
    """per-window figures: packets, VMM/vhost/vCPU CPU ms, exits to the VMM"""
    b, e = win
    out = {}
    hz = num(e, "hz") or 100.0
    d = {}
    for k in ("t", "cpu_total", "cpu_vcpu", "cpu_other", "cpu_vhost", "vhost_threads", "uexits", "exits",
              "rx_packets", "tx_packets"):
        x, y = num(b, k), num(e, k)
        d[k] = None if x is None or y is None else y - x
    out["secs"] = d["t"]
    out["packets"] = None if d["rx_packets"] is None or d["tx_packets"] is None else d["rx_packets"] + d["tx_packets"]
    tb, te = thread_ticks(b), thread_ticks(e)
    if tb is not None and te is not None:
        # per thread: what each thread alive at the end used since the
        # beginning (a thread that exited in the window is not counted)
        dv = do = 0
        for tid, (kind, ticks) in te.items():
            x = ticks - tb.get(tid, (kind, 0))[1]
            if kind == "v":
                dv += x
            else:
                do += x
        out["vmm_cpu_ms"] = do * 1000 / hz
        out["vcpu_cpu_ms"] = dv * 1000 / hz
    elif d["cpu_other"] is not None and d["cpu_other"] >= 0:
        # the live threads other than vCPUs, summed in one snapshot
        out["vmm_cpu_ms"] = d["cpu_other"] * 1000 / hz
    elif d["cpu_total"] is not None and d["cpu_vcpu"] is not None:
        out["vmm_cpu_ms"] = max(0.0, d["cpu_total"] - d["cpu_vcpu"]) * 1000 / hz
    else:
        out["vmm_cpu_ms"] = None
    if "vcpu_cpu_ms" not in out:
        out["vcpu_cpu_ms"] = None if d["cpu_vcpu"] is None else d["cpu_vcpu"] * 1000 / hz
    threads = num(e, "vhost_threads")
    out["vhost_threads"] = threads
    out["vhost_cpu_ms"] = None if d["cpu_vhost"] is None else d["cpu_vhost"] * 1000 / hz
    out["vmm_exits"] = d["uexits"]
    out["kvm_exits"] = d["exits"]
    return out


def iperf_value(path, kind):
    """(value, None) or (None, why) from one iperf3 -J output"""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        err = ""
        try:
            err = open(os.path.splitext(path)[0] + ".err").read().strip()[:120]
        except OSError:
            pass
        return None, "no iperf3 result (%s)" % (err or type(e).__name__)
    if d.get("error"):
        return None, "iperf3: %s" % d["error"][:120]
    end = d.get("end", {})
    if kind == "tcp":
        bps = end.get("sum_received", {}).get("bits_per_second")
        if bps is None:
            return None, "iperf3 gave no receiver figure"
        return bps / 1e6, None
    s = end.get("sum", {})
    if s.get("packets") is None or not s.get("seconds"):
        return None, "iperf3 gave no UDP packet counts"
    return (s["packets"] - s.get("lost_packets", 0)) / s["seconds"] / 1000.0, None


def percentile(sorted_v, p):
    k = max(0, min(len(sorted_v) - 1, int(math.ceil(p / 100.0 * len(sorted_v))) - 1))
    return sorted_v[k]


def latency(path):
    """{'p50': us, 'p99': us, 'tool': ...} or {'na': why}"""
    try:
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(path, errors="replace").read())
    except OSError:
        return {"na": "not measured (no latency output)"}
    tool = "sockperf" if text.startswith("tool=sockperf") else "ping"
    if tool == "sockperf":
        p = dict(re.findall(r"percentile (50\.000|99\.000) =\s*([0-9.]+)", text))
        if "50.000" in p and "99.000" in p:
            n = re.search(r"Total (\d+) observations", text)
            return {"p50": float(p["50.000"]), "p99": float(p["99.000"]),
                    "samples": int(n.group(1)) if n else None,
                    "tool": "sockperf ping-pong, UDP 64 B, full round trip"}
        last = [l for l in text.splitlines() if l.strip()][-1:] or ["no output"]
        return {"na": "sockperf gave no percentiles (%s)" % last[0][:100]}
    rtts = sorted(float(x) * 1000 for x in re.findall(r"time=([0-9.]+) ?ms", text))
    if len(rtts) < 10:
        return {"na": "ping fallback: %d answers" % len(rtts)}
    return {"p50": percentile(rtts, 50), "p99": percentile(rtts, 99), "samples": len(rtts),
            "tool": "ping -i 0.01 from L1 (fallback: no sockperf)"}


def mem_figures(path):
    """the 'ready' line of mem.txt"""
    try:
        for line in open(path):
            if line.startswith("ready "):
                return parse_fields(line)
    except OSError:
        pass
    return None


def collect_net(run, vmm, path, meta, mode):
    rows = {}
    st = run.get("status")
    if st != "ok":
        why = run.get("reason") or (
            "not run (%s)" % st if st else
            "the lab run recorded no outcome for this boot (it ended while the boot ran)")
        if st == "failed":
            why = "boot failed: %s%s" % (why.rstrip(": "), (" (the console's last line: %s)" % run["last_line"])
                                         if run.get("last_line") else "")
        for k, *_ in NET_ROWS:
            rows[k] = na(why)
        return rows
    d = run["dir"]

    def many(kind, w, runs, unit):
        vals, whys = [], []
        for r in range(1, runs + 1):
            v, why = iperf_value(os.path.join(d, "%s-%s-%d.json" % (kind, w, r)), kind)
            if v is None:
                whys.append(why)
            else:
                vals.append(v)
        if not vals:
            return na(whys[0] if whys else "no runs")
        m = stats(vals, unit)
        if whys:
            m["failed_runs"] = whys
        return m

    runs = int(meta.get("runs", 1))
    uruns = int(meta.get("udp_runs", 1))
    rows["tcp_tx_mbps"] = many("tcp", "tx", runs, "Mbit/s")
    rows["tcp_rx_mbps"] = many("tcp", "rx", runs, "Mbit/s")
    rows["udp_tx_kpps"] = many("udp", "tx", uruns, "kpps")
    rows["udp_rx_kpps"] = many("udp", "rx", uruns, "kpps")
    lat = latency(os.path.join(d, "latency.txt"))
    if "na" in lat:
        rows["lat_p50_us"] = rows["lat_p99_us"] = na(lat["na"])
    else:
        rows["lat_p50_us"] = dict(single(lat["p50"], "µs"), tool=lat["tool"], samples=lat["samples"])
        rows["lat_p99_us"] = dict(single(lat["p99"], "µs"), tool=lat["tool"], samples=lat["samples"])
    wins = read_windows(os.path.join(d, "windows.txt"))
    windows = {w: window_figures(wins[w], path) for w in wins}
    for w in ("tcp", "udp"):
        f = windows.get(w)
        if not f or not f.get("packets"):
            why = "no counters for the %s window" % w if not f else "no packets counted in the %s window" % w
            for k in ("vmm_us_per_pkt_", "vhost_us_per_pkt_", "exits_per_kpkt_", "kvm_exits_per_kpkt_"):
                rows[k + w] = na(why)
            continue
        pk = f["packets"]
        rows["vmm_us_per_pkt_" + w] = (dict(single(f["vmm_cpu_ms"] * 1000 / pk, "µs"), packets=pk)
                                       if f["vmm_cpu_ms"] is not None else na("no CPU counters"))
        if path != "vhost":
            rows["vhost_us_per_pkt_" + w] = na("no vhost-net on this path")
        elif not f.get("vhost_threads"):
            rows["vhost_us_per_pkt_" + w] = na("no vhost thread of the VMM found in L1")
        else:
            rows["vhost_us_per_pkt_" + w] = dict(single(f["vhost_cpu_ms"] * 1000 / pk, "µs"), packets=pk)
        if f["vmm_exits"] is None:
            rows["exits_per_kpkt_" + w] = na("no exit counter (kvm:kvm_userspace_exit hist trigger) in L1")
        else:
            m = dict(single(f["vmm_exits"] * 1000 / pk, ""), packets=pk, exits=f["vmm_exits"])
            idle = windows.get("idle")
            if idle and idle.get("vmm_exits") is not None and idle.get("secs") and f.get("secs"):
                extra = f["vmm_exits"] - idle["vmm_exits"] * f["secs"] / idle["secs"]
                m["over_idle_rate"] = max(0.0, extra) * 1000 / pk
            rows["exits_per_kpkt_" + w] = m
        rows["kvm_exits_per_kpkt_" + w] = (dict(single(f["kvm_exits"] * 1000 / pk, ""), packets=pk)
                                           if f["kvm_exits"] is not None else na("no KVM exit counter in L1's debugfs"))
    rows["boot_ready_s"] = boot_secs(run, "t_ready")
    return rows, windows


def boot_secs(run, key):
    try:
        return single(float(run[key]) - float(run["t0"]), "s")
    except (KeyError, ValueError):
        return na("the guest never got there (%s)" % (run.get("reason") or "see its console"))


def collect(args):
    bdir = os.path.join(args.lab, "bench")
    meta = read_kv(os.path.join(bdir, "meta.txt"))
    lab_failed = None
    if not meta:
        lab_failed = "the lab run recorded nothing (lab.sh status %s; see %s/l1-console.log)" % (
            args.lab_status, args.lab)
    mode = meta.get("mode", args.mode or "unknown")
    runs = {}
    if os.path.isdir(bdir):
        for name in sorted(os.listdir(bdir)):
            p = os.path.join(bdir, name)
            if os.path.isdir(p):
                r = read_kv(os.path.join(p, "meta.txt"))
                r["dir"] = p
                runs[name] = r
    out = {"schema": SCHEMA, "mode": mode, "lab": {k: meta[k] for k in meta},
           "lab_status": args.lab_status, "vmm_names": VMM_NAMES, "path_names": PATH_NAMES,
           "net": {}, "windows": {}, "boot": {}, "migration": {}}
    for vmm in VMMS:
        out["net"][vmm] = {}
        for path in PATHS:
            run = runs.get("%s-%s" % (vmm, path))
            if lab_failed:
                run = {"status": "na", "reason": lab_failed}
            elif run is None:
                run = {"status": "na", "reason": "not run by the lab (%s)" % (
                    "the lab run ended early, status %s" % args.lab_status if not meta.get("finished")
                    else "not in LAB_BENCH_VMMS/PATHS")}
            res = collect_net(run, vmm, path, meta, mode)
            if isinstance(res, tuple):
                out["net"][vmm][path], out["windows"]["%s-%s" % (vmm, path)] = res
            else:
                out["net"][vmm][path] = res
            out["net"][vmm][path]["_status"] = run.get("status", "na")
    for vmm in BOOT_VMMS:
        samples = [r for n, r in runs.items()
                   if re.fullmatch(r"%s-user(-boot-\d+)?" % vmm, n) and r.get("status") == "ok"]
        tried = [r for n, r in runs.items() if re.fullmatch(r"%s-user(-boot-\d+)?" % vmm, n)]
        b = {}
        if lab_failed or not tried:
            why = lab_failed or ("not run by the lab (the lab run ended early, status %s)" % args.lab_status
                                 if not meta.get("finished") else "not run by the lab")
            if vmm == "microvm" and not lab_failed and meta.get("finished"):
                why = "not run (LAB_BENCH_MICROVM=0)"
            for k, *_ in BOOT_ROWS:
                b[k] = na(why)
            out["boot"][vmm] = b
            continue
        if not samples:
            r = tried[0]
            why = r.get("reason") or ("the lab run recorded no outcome for this boot (it ended while the boot ran)" if not r.get("status") else r["status"])
            if vmm == "microvm":
                why = "QEMU microvm: cannot boot this guest: %s%s" % (
                    why, (" (last console line: %s)" % r["last_line"]) if r.get("last_line") else "")
            else:
                why = "boot failed: %s" % why
            for k, *_ in BOOT_ROWS:
                b[k] = na(why)
            out["boot"][vmm] = b
            continue

        def series(f, unit, why, rs=samples):
            v = [x for x in (f(r) for r in rs) if x is not None]
            return stats(v, unit) if v else na(why)

        def dt(key):
            def f(r):
                try:
                    return float(r[key]) - float(r["t0"])
                except (KeyError, ValueError):
                    return None
            return f

        def fl(key):
            def f(r):
                try:
                    return float(r[key])
                except (KeyError, ValueError):
                    return None
            return f

        def memf(what):
            def f(r):
                m = mem_figures(os.path.join(r["dir"], "mem.txt"))
                if not m:
                    return None
                try:
                    hz = float(m.get("hz", 100))
                    if what == "rss":
                        return (float(m["rss_kb"]) - float(m["ram_rss_kb"])) / 1024
                    if what == "pss":
                        return (float(m["pss_kb"]) - float(m["ram_pss_kb"])) / 1024
                    if what == "cpu":
                        return (float(m["cpu_total"]) - float(m["cpu_vcpu"])) * 1000 / hz
                    return float(m["cpu_total"]) * 1000 / hz
                except (KeyError, ValueError):
                    return None
            return f

        b["to_init_s"] = series(dt("t_init"), "s", "no init line seen")
        b["to_ready_s"] = series(dt("t_ready"), "s", "never ready")
        b["guest_up_ready_s"] = series(fl("guest_up_ready"), "s", "no uptime on the ready line")
        b["rss_mib"] = series(memf("rss"), "MiB", "no memory snapshot at ready")
        b["pss_mib"] = series(memf("pss"), "MiB", "no memory snapshot at ready")
        b["startup_cpu_ms"] = series(memf("cpu"), "ms", "no CPU snapshot at ready")
        b["startup_cpu_total_ms"] = series(memf("total"), "ms", "no CPU snapshot at ready")
        b["_samples"] = len(samples)
        b["_failed_boots"] = len(tried) - len(samples)
        # the quiet boots: the same figures with `quiet` on the guest's line
        qtried = [r for n, r in runs.items() if re.fullmatch(r"%s-user-quiet(-boot-\d+)?" % vmm, n)]
        qok = [r for r in qtried if r.get("status") == "ok"]
        if not qtried:
            why = "not run by the lab (%s)" % ("a bench from before the quiet boots" if meta.get("finished")
                                               else "the lab run ended early, status %s" % args.lab_status)
            b["quiet_to_init_s"] = b["quiet_to_ready_s"] = na(why)
        elif not qok:
            r = qtried[0]
            why = "boot failed: %s" % (r.get("reason") or r.get("status") or "no outcome recorded")
            b["quiet_to_init_s"] = b["quiet_to_ready_s"] = na(why)
        else:
            b["quiet_to_init_s"] = series(dt("t_init"), "s", "no init line seen", qok)
            b["quiet_to_ready_s"] = series(dt("t_ready"), "s", "never ready", qok)
            b["_quiet_samples"] = len(qok)
            b["_quiet_failed_boots"] = len(qtried) - len(qok)
        out["boot"][vmm] = b
    # migration
    mig = {}
    if args.migration:
        kv = read_kv(os.path.join(args.migration, "results.txt"))
        mig["_source"] = os.path.abspath(args.migration)
        try:
            mig["_source"] = open(os.path.join(args.migration, "source")).read().strip() or mig["_source"]
        except OSError:
            pass
        for vmm in VMMS:
            if kv.get("mh_%s_problem" % vmm):
                mig["_%s_problem" % vmm] = kv["mh_%s_problem" % vmm]
        for vmm in VMMS:
            mig[vmm] = {}
            for key, _, unit, _, rk in MIG_ROWS:
                k = "mh_%s_%s" % (vmm, rk)
                try:
                    mig[vmm][key] = single(float(kv[k]), unit)
                except (KeyError, ValueError):
                    why = "not in %s/results.txt (%s)" % (args.migration, k)
                    if not kv:
                        why = "no results.txt in %s" % args.migration
                    elif kv.get("mh_%s_problem" % vmm):
                        why = "%s's migration failed: %s" % (VMM_NAMES[vmm], kv["mh_%s_problem" % vmm][:100])
                    mig[vmm][key] = na(why)
    else:
        why = args.migration_na or ("not run in --quick" if mode == "quick" else "not run")
        for vmm in VMMS:
            mig[vmm] = {key: na(why) for key, *_ in MIG_ROWS}
    out["migration"] = mig
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")
    return 0


# ---- render ------------------------------------------------------------------

class Notes:
    """n/a reasons as lettered notes under the tables"""

    def __init__(self):
        self.by_text = {}
        self.order = []

    def ref(self, why):
        if why not in self.by_text:
            n = len(self.order)
            tag = ""
            while True:
                tag = chr(ord("a") + n % 26) + tag
                n = n // 26 - 1
                if n < 0:
                    break
            self.by_text[why] = tag
            self.order.append(why)
        return "n/a (%s)" % self.by_text[why]

    def lines(self):
        return ["(%s) %s" % (self.by_text[w], w) for w in self.order]


def fmt(x, digits):
    if x is None:
        return "?"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{d}f}".format(x, d=digits)


def cell(m, digits, notes):
    if m is None:
        return notes.ref("missing from the JSON (a bug in the bench)")
    if is_na(m):
        return notes.ref(m["na"] if isinstance(m, dict) else "not measured")
    if "median" in m:
        if m["n"] == 1:
            return fmt(m["median"], digits)
        return "%s (%s-%s, n=%d)" % (fmt(m["median"], digits), fmt(m["min"], digits),
                                      fmt(m["max"], digits), m["n"])
    return fmt(m["value"], digits)


def ratio(a, b, notes):
    x, y = central(a), central(b)
    if x is None or y is None:
        return notes.ref("no ratio: a side was not measured")
    if y == 0:
        return notes.ref("no ratio: QEMU's figure is 0")
    return "%.2f" % (x / y)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return out


def label(text, unit):
    return "%s (%s)" % (text, unit) if unit else text


def render_md(j, plots):
    notes = Notes()
    L = []
    lab = j.get("lab", {})
    L.append("# minivmm benchmark: %s run" % j.get("mode", "?"))
    L.append("")
    L.append("Started %s, finished %s; %s (source %s); %s; L1 kernel %s; iperf3 %s." % (
        lab.get("started", "?"), lab.get("finished", "? (the lab run did not finish)"),
        lab.get("minivmm_version", "minivmm"), lab.get("source", "not recorded"),
        lab.get("qemu_version", "QEMU ?"), lab.get("l1_kernel", "?"), lab.get("iperf3_version", "?")))
    L.append("TCP: %s run(s) of %s s each way; UDP 64 B: %s run(s) of %s s each way; latency: %s s; "
             "guest: 512 MiB, 2 vCPUs, the same guest.img for every VMM." % (
                 lab.get("runs", "?"), lab.get("secs", "?"), lab.get("udp_runs", "?"),
                 lab.get("udp_secs", "?"), lab.get("lat_secs", "?")))
    L.append("These figures come from the nested lab (docs/lab.md): L1 runs under QEMU's TCG "
             "emulator, so absolute numbers are not a real host's; compare minivmm with QEMU "
             "within this run (the ratio columns). Cells are median (min-max, n=runs) where "
             "there were several runs.")
    L.append("")
    L.append("## Network")
    L.append("")
    hdr = [""]
    for p in PATHS:
        hdr += ["%s: minivmm" % PATH_NAMES[p], "%s: QEMU" % PATH_NAMES[p], "minivmm / QEMU"]
    rows = []
    tools = set()
    for key, text, unit, digits in NET_ROWS:
        r = [label(text, unit)]
        for p in PATHS:
            a = j["net"].get("minivmm", {}).get(p, {}).get(key)
            b = j["net"].get("qemu", {}).get(p, {}).get(key)
            for m in (a, b):
                if isinstance(m, dict) and m.get("tool"):
                    tools.add(m["tool"])
            r += [cell(a, digits, notes), cell(b, digits, notes), ratio(a, b, notes)]
        rows.append(r)
    L += table(hdr, rows)
    L.append("")
    if tools:
        L.append("Latency tool: %s." % "; ".join(sorted(tools)))
        L.append("")
    L.append("## Boot, memory and start-up")
    L.append("")
    hdr = [""] + [VMM_NAMES[v] for v in BOOT_VMMS] + ["minivmm / QEMU q35"]
    rows = []
    for key, text, unit, digits in BOOT_ROWS:
        ms = [j["boot"].get(v, {}).get(key) for v in BOOT_VMMS]
        rows.append([label(text, unit)] + [cell(m, digits, notes) for m in ms] + [ratio(ms[0], ms[1], notes)])
    L += table(hdr, rows)
    L.append("")
    L.append("Boot figures are from guests with virtio-blk and virtio-net (userspace backend) on "
             "each machine; exec to ready is L1's clock from the VMM's exec to the guest's "
             "LAB-GUEST-READY line (polled every 0.2 s). The `quiet` rows boot the same guest "
             "with `quiet` on its command line: in this lab every byte of the guest's console "
             "is an exit to the VMM through L1's emulated CPU (about 10 s of a boot, in every "
             "VMM), so those rows show the VMMs' own boot paths (set-up, firmware, kernel load).")
    L.append("")
    L.append("## Live migration (the failover dance between two hosts)")
    L.append("")
    mig = j.get("migration", {})
    hdr = ["", "minivmm", "QEMU", "minivmm / QEMU"]
    rows = []
    for key, text, unit, digits, _ in MIG_ROWS:
        a, b = mig.get("minivmm", {}).get(key), mig.get("qemu", {}).get(key)
        rows.append([label(text, unit), cell(a, digits, notes), cell(b, digits, notes), ratio(a, b, notes)])
    L += table(hdr, rows)
    L.append("")
    if mig.get("_source"):
        L.append("From tests/lab/test-migrate-hosts.sh's results.txt in %s (mh_*_paused_ms, "
                 "mh_*_total_ms, mh_*_stall_ms): a separate lab run (two L1s), not this one." % mig["_source"])
        for vmm in VMMS:
            if mig.get("_%s_problem" % vmm):
                L.append("That run recorded a problem with %s: %s." % (VMM_NAMES[vmm], mig["_%s_problem" % vmm]))
        L.append("")
    if notes.order:
        L.append("Not measured:")
        L.append("")
        for n in notes.lines():
            L.append("- " + n)
        L.append("")
    if plots:
        L.append("## Plots")
        L.append("")
        for p in plots:
            L.append("![%s](%s)" % (os.path.splitext(p)[0], p))
            L.append("")
    return "\n".join(L)


def bars(ax, groups, series, title, ylabel, log=False):
    """grouped bars: groups = labels, series = [(name, [metric...])]; n/a
    bars are written as 'n/a' on the axis"""
    import numpy as np
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(groups))
    top = 0
    for i, (name, ms) in enumerate(series):
        vals, lo, hi = [], [], []
        for m in ms:
            c = central(m)
            vals.append(c if c is not None else 0)
            if c is not None and "median" in m:
                lo.append(c - m["min"])
                hi.append(m["max"] - c)
            else:
                lo.append(0)
                hi.append(0)
            if c is not None:
                top = max(top, m.get("max", c))
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, vals, width, yerr=[lo, hi], capsize=3, label=name)
        for p, m in zip(pos, ms):
            if central(m) is None:
                ax.text(p, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("symlog", linthresh=0.01)
    ax.legend(fontsize=8)


def render_plots(j, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    net = j["net"]
    short = {"vf": "VF", "vhost": "vhost-net", "user": "virtio user"}

    def ser(key):
        return [(VMM_NAMES[v], [net.get(v, {}).get(p, {}).get(key) for p in PATHS]) for v in VMMS]

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=90)
        plt.close(fig)
        made.append(name)

    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    bars(axs[0], [short[p] for p in PATHS], ser("tcp_tx_mbps"), "TCP guest to L1", "Mbit/s")
    bars(axs[1], [short[p] for p in PATHS], ser("tcp_rx_mbps"), "TCP L1 to guest", "Mbit/s")
    save(fig, "bench-tcp.png")
    fig, axs = plt.subplots(1, 3, figsize=(12, 4))
    bars(axs[0], [short[p] for p in PATHS], ser("udp_tx_kpps"), "UDP 64 B guest to L1", "kpps received")
    bars(axs[1], [short[p] for p in PATHS], ser("udp_rx_kpps"), "UDP 64 B L1 to guest", "kpps received")
    groups, s = [], {v: [] for v in VMMS}
    for p in PATHS:
        for k, t in (("lat_p50_us", "p50"), ("lat_p99_us", "p99")):
            groups.append("%s\n%s" % (short[p].replace("virtio ", ""), t))
            for v in VMMS:
                s[v].append(net.get(v, {}).get(p, {}).get(k))
    bars(axs[2], groups, [(VMM_NAMES[v], s[v]) for v in VMMS], "round trip latency", "µs")
    save(fig, "bench-packets.png")
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    groups, sc, se = [], {v: [] for v in VMMS}, {v: [] for v in VMMS}
    for p in PATHS:
        for w in ("tcp", "udp"):
            groups.append("%s\n%s" % (short[p], w.upper()))
            for v in VMMS:
                sc[v].append(net.get(v, {}).get(p, {}).get("vmm_us_per_pkt_" + w))
                se[v].append(net.get(v, {}).get(p, {}).get("exits_per_kpkt_" + w))
    bars(axs[0], groups, [(VMM_NAMES[v], sc[v]) for v in VMMS],
         "VMM CPU per packet (not vCPU threads)", "µs (symlog)", log=True)
    bars(axs[1], groups, [(VMM_NAMES[v], se[v]) for v in VMMS],
         "exits to the VMM per 1000 packets", "exits (symlog)", log=True)
    save(fig, "bench-cost.png")
    fig, axs = plt.subplots(1, 3, figsize=(12, 4))
    bt = j["boot"]
    bars(axs[0], ["exec to init", "exec to ready", "init, quiet", "ready, quiet"],
         [(VMM_NAMES[v], [bt.get(v, {}).get(k) for k in ("to_init_s", "to_ready_s", "quiet_to_init_s",
                                                          "quiet_to_ready_s")]) for v in BOOT_VMMS],
         "boot (quiet: the guest booted with `quiet`)", "s")
    bars(axs[1], ["RSS", "PSS"],
         [(VMM_NAMES[v], [bt.get(v, {}).get("rss_mib"), bt.get(v, {}).get("pss_mib")]) for v in BOOT_VMMS],
         "VMM memory apart from guest RAM", "MiB")
    bars(axs[2], ["VMM threads", "all threads"],
         [(VMM_NAMES[v], [bt.get(v, {}).get("startup_cpu_ms"), bt.get(v, {}).get("startup_cpu_total_ms")])
          for v in BOOT_VMMS], "CPU from exec to ready", "ms")
    save(fig, "bench-boot.png")
    return made


def render(args):
    with open(args.json) as f:
        j = json.load(f)
    if j.get("schema") != SCHEMA:
        print("bench-report: %s is not a %s file" % (args.json, SCHEMA), file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    dest = os.path.join(args.out, "bench.json")
    if not os.path.exists(dest) or not os.path.samefile(args.json, dest):
        with open(dest, "w") as f:  # the folder holds its JSON too
            json.dump(j, f, indent=1, ensure_ascii=False)
            f.write("\n")
    plots = render_plots(j, args.out)
    md = render_md(j, plots)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(md + "\n")
    print("bench-report: %s/bench.md, %s" % (args.out, ", ".join(plots)))
    return 0


# ---- check -------------------------------------------------------------------

def check_dir(d):
    """problems with a results folder: [] when all is well"""
    bad = []
    for f in ("bench.json", "bench.md"):
        if not os.path.isfile(os.path.join(d, f)):
            bad.append("no %s" % f)
    if bad:
        return bad
    try:
        j = json.load(open(os.path.join(d, "bench.json")))
        if j.get("schema") != SCHEMA:
            bad.append("bench.json: schema %r" % j.get("schema"))
    except ValueError as e:
        return ["bench.json: %s" % e]

    def walk(x, where):
        if isinstance(x, dict):
            if "na" in x and not str(x["na"]).strip():
                bad.append("bench.json: empty n/a reason at %s" % where)
            for k, v in x.items():
                walk(v, where + "." + k)
        elif x is None and not where.endswith((".lab_status", ".samples", ".vhost_threads")):
            if ".windows." not in where:
                bad.append("bench.json: null at %s" % where)
    for part in ("net", "boot", "migration"):
        walk(j.get(part), part)
    # every cell of the tables present
    for v in VMMS:
        for p in PATHS:
            for k, *_ in NET_ROWS:
                if not isinstance(j.get("net", {}).get(v, {}).get(p, {}).get(k), dict):
                    bad.append("bench.json: no net.%s.%s.%s" % (v, p, k))
        for k, *_ in MIG_ROWS:
            if not isinstance(j.get("migration", {}).get(v, {}).get(k), dict):
                bad.append("bench.json: no migration.%s.%s" % (v, k))
    for v in BOOT_VMMS:
        for k, *_ in BOOT_ROWS:
            if not isinstance(j.get("boot", {}).get(v, {}).get(k), dict):
                bad.append("bench.json: no boot.%s.%s" % (v, k))
    md = open(os.path.join(d, "bench.md")).read()
    notes = set(re.findall(r"^- \(([a-z]+)\) \S", md, re.M))
    rows = 0
    lines = md.splitlines()
    for n, line in enumerate(lines):
        if not line.startswith("|") or line.startswith("|---"):
            continue
        if n + 1 < len(lines) and lines[n + 1].startswith("|---"):
            continue  # a header
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows += 1
        for i, c in enumerate(cells[1:], 1):
            if not c or c in ("None", "?", "nan") or "?" in c:
                bad.append("bench.md: empty or unknown cell %d in: %s" % (i, line[:80]))
            for tag in re.findall(r"n/a \(([a-z]+)\)", c):
                if tag not in notes:
                    bad.append("bench.md: n/a (%s) has no reason below the tables" % tag)
            if "n/a" not in c and not re.match(r"^[0-9][0-9,.]*( \([0-9,.]+-[0-9,.]+, n=\d+\))?$", c):
                bad.append("bench.md: cell %d is neither a figure nor an explained n/a: %r" % (i, c))
    if rows < 3 * 4:
        bad.append("bench.md: only %d table rows" % rows)
    pngs = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", md)
    if not pngs:
        bad.append("bench.md names no plots")
    for p in pngs:
        f = os.path.join(d, p)
        try:
            with open(f, "rb") as fh:
                if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                    bad.append("%s is not a PNG" % p)
        except OSError:
            bad.append("no plot %s" % p)
    return bad


def check(args):
    bad = check_dir(args.dir)
    for b in bad:
        print("bench-report: check: %s" % b)
    if not bad:
        print("bench-report: check: %s: JSON, table and plots present; every cell filled or explained" % args.dir)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--lab", required=True)
    c.add_argument("--lab-status", default=None)
    c.add_argument("--mode", default=None)
    c.add_argument("--migration", default=None)
    c.add_argument("--migration-na", default=None)
    c.add_argument("--out", required=True)
    r = sub.add_parser("render")
    r.add_argument("json")
    r.add_argument("--out", required=True)
    k = sub.add_parser("check")
    k.add_argument("dir")
    args = ap.parse_args()
    return {"collect": collect, "render": render, "check": check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
