#!/usr/bin/python3
"""Unit test of scripts/test-summary.py, the CI verdict on skipped tests,
on testlogs written here in meson's format:

  - without --skips-fail a skip is counted, never a failure;
  - with --skips-fail a skip fails CI (status 1, named);
  - a kvm_pvm triple-fault skip with its reason is allowed, without it not;
  - a host skip for want of /dev/kvm is allowed when lab-kvm passed and the
    same test passed in L1 for the same build folder; not when lab-kvm
    failed, not for another build folder, not when the test failed or
    skipped in L1, and not for a skip whose reason is not /dev/kvm;
  - when lab-kvm failed, the host skips it would have covered are named
    first and counted as such, the failed tests after them;
  - a failed test is named again at the end with its last lines, and with
    the lines that say why wherever they were in its output (a lab test's
    FAIL line long before its end);
  - under --skips-fail a skip that fails CI (a fuzzer's crash, which
    libFuzzer once reported with exit status 77) shows its output too.
Exit 0 on success, 1 on a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("MINIVMM_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUMMARY = os.path.join(SRC, "scripts", "test-summary.py")
fails = 0


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + detail))
    if not cond:
        fails += 1


def rec(name, result, stdout="", suite="kvm", stderr=None):
    r = {"name": "minivmm:%s / %s" % (suite, name), "result": result, "stdout": stdout}
    if stderr is not None:
        r["stderr"] = stderr
    return r


def write(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def run(*args):
    p = subprocess.run([sys.executable, SUMMARY] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout


with tempfile.TemporaryDirectory() as d:
    nokvm = "SKIP: /dev/kvm is missing\n"
    host = os.path.join(d, "build", "meson-logs", "testlog.json")
    asan = os.path.join(d, "build-asan", "meson-logs", "testlog.json")
    lab = os.path.join(d, "build", "tests", "lab", "lab-results", "kvm")

    def host_logs(lab_result="OK", api_why=nokvm):
        write(host, [rec("kvm_bootinfo", "SKIP", nokvm), rec("kvm_api", "SKIP", api_why),
                     # a Criterion test: meson keeps its stderr (the reason) apart
                     rec("boot", "SKIP", "", "unit",
                         "SKIP boot_kvm::tiny_elf_guest_runs: /dev/kvm: No such file or directory: skipped\n"),
                     rec("lab-kvm", lab_result, "", "lab"), rec("bus", "OK", "", "unit")])
        write(asan, [rec("kvm_bootinfo", "SKIP", nokvm)])

    def l1_logs(api="OK", builds=("build", "build-asan")):
        for f in os.listdir(lab) if os.path.isdir(lab) else []:
            os.unlink(os.path.join(lab, f))
        for b in builds:
            write(os.path.join(lab, "testlog-%s-kvm.json" % b),
                  [rec("kvm_bootinfo", "OK"), rec("kvm_api", api)])
            write(os.path.join(lab, "testlog-%s-unit.json" % b), [rec("boot", "OK", "", "unit")])

    host_logs()
    l1_logs()
    st, out = run(host, asan)
    check("without --skips-fail a skip is no failure", st == 0 and out.endswith("2 passed, 0 failed, 4 skipped\n"), out)
    st, out = run("--skips-fail", host, asan)
    check("--skips-fail without --lab-kvm: every skip fails", st == 1 and "4 failed, 0 skipped" in out, out)
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("skips for want of /dev/kvm, passed in L1: accepted", st == 0 and "2 passed, 0 failed, 4 skipped" in out, out)
    check("... and listed", "passed in the lab's L1 (lab-kvm): kvm_bootinfo in " in out and
          "boot in " in out, out)

    host_logs(lab_result="FAIL")
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("lab-kvm failed: the skips fail", st == 1 and "skipped tests are failures here" in out, out)
    check("... and lab-kvm is named at the end", "test.sh: FAIL: minivmm:lab / lab-kvm in " in out, out)
    check("... after the skips it made failures (a log cut to its end shows it)",
          out.rfind("SKIP (a failure under CI)") < out.find("test.sh: FAIL: minivmm:lab / lab-kvm in "), out)
    check("... which are counted as lab-kvm's",
          "test.sh: 4 of the skips above are for want of /dev/kvm: CI accepts them only when lab-kvm passed" in out, out)

    host_logs()
    l1_logs(builds=("build",))
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("a build folder L1 did not run: its skip fails", st == 1 and
          "failures here: kvm_bootinfo in " + os.path.join(d, "build-asan") in out, out)

    l1_logs(api="FAIL")
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("a test that failed in L1: its host skip fails", st == 1 and "kvm_api in " + os.path.join(d, "build") in out, out)
    l1_logs(api="SKIP")
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("a test that skipped in L1: its host skip fails", st == 1 and "kvm_api in " in out, out)

    l1_logs()
    host_logs(api_why="SKIP: openssl is not installed\n")
    st, out = run("--skips-fail", "--lab-kvm", lab, host, asan)
    check("a skip for another reason fails even when L1 ran the test", st == 1 and
          "failures here: kvm_api in " in out, out)

    write(host, [rec("kvm_triplefault", "SKIP", "SKIP: this host's KVM is kvm_pvm, which ...")])
    st, out = run("--skips-fail", host)
    check("the kvm_pvm triple-fault skip is allowed", st == 0, out)
    write(host, [rec("kvm_triplefault", "SKIP", "SKIP: something else")])
    st, out = run("--skips-fail", host)
    check("a triple-fault skip for another reason is not", st == 1, out)

    write(host, [rec("kvm_api", "FAIL", "\n".join("line %d" % i for i in range(40)))])
    st, out = run(host)
    check("a failure is named at the end with its last 25 lines", "test.sh: FAIL: minivmm:kvm / kvm_api in " in out and
          "| line 39" in out and "| line 15" in out and "| line 14" not in out, out)

    lines = ["line %d" % i for i in range(60)]
    lines[5] = "test-migrate-faults: FAIL: [cancel] the migration never reached pre-copy"
    write(host, [rec("lab-migrate-faults", "FAIL", "\n".join(lines), "lab")])
    st, out = run(host)
    check("a FAIL line far above the last 25 is shown too", "! test-migrate-faults: FAIL: [cancel]" in out and
          "| line 59" in out and "| line 5\n" not in out, out)
    write(host, [rec("migration", "SKIP", "==1== ERROR: libFuzzer: deadly signal\nSUMMARY: libFuzzer: deadly signal\nstats", "fuzz")])
    st, out = run("--skips-fail", host)
    check("a skip that fails CI shows why", st == 1 and "SKIP (a failure under CI): minivmm:fuzz / migration" in out and
          "! SUMMARY: libFuzzer: deadly signal" in out, out)

sys.exit(1 if fails else 0)
