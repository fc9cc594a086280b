"""Reading meson's testlog JSON (one record per line), shared by
scripts/test-summary.py (CI's verdict) and tests/lab/kvm-env-rerun.py
(lab-kvm's environmental rerun)."""
import json


def records(path):
    """the test records of a testlog, [] when it does not exist"""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def short(name):
    """a test's name without its project and suite: "kvm_migtls" of "minivmm:kvm / kvm_migtls" """
    return (name or "").split(" / ")[-1]


def output(t):
    """what the test printed: stdout, then stderr where meson kept it apart"""
    return (t.get("stdout") or "") + (t.get("stderr") or "")
