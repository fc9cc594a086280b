#!/usr/bin/env python3
"""The closing line of scripts/test.sh: totals over meson's testlog.json files.

test-summary.py [--skips-fail] [--lab-kvm DIR] TESTLOG.json...
With --skips-fail (CI), a skipped test is a failure, except:
- the skips in ALLOWED_SKIPS that print the reason given there: host limits
  no test can work around, each named here;
- with --lab-kvm DIR (lab-kvm's results: the testlog-<build>-kvm.json and
  testlog-<build>-unit.json that the lab's L1 wrote), a test that skipped here
  for want of /dev/kvm and passed in L1 for the same build, lab-kvm itself
  having passed (in one of the TESTLOG files).
Exit status 1 when another skip was found.
"""
import os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesonlog import output, records, short  # noqa: E402
ALLOWED_SKIPS = {
    # kvm_pvm (this CI machine's nested KVM) emulates guest ring 0 and reports
    # an undeliverable trap as an emulation error, never as the shutdown
    "kvm_triplefault": r"this host's KVM is kvm_pvm",
}
args = sys.argv[1:]
skips_fail = False
lab_kvm = None
while args and args[0].startswith("--"):
    if args[0] == "--skips-fail":
        skips_fail = True
        args = args[1:]
    elif args[0] == "--lab-kvm" and len(args) > 1:
        lab_kvm = args[1]
        args = args[2:]
    else:
        sys.exit("test-summary.py: unknown option " + args[0])
paths = args
ok = fail = skip = 0
bad = []
in_l1 = []  # "name in build": skipped here, passed in L1
failed = []  # (name, build dir, last lines of its output)


def tail(text, n=25):
    lines = (text or "").rstrip("\n").split("\n")
    return "\n".join("    | " + l for l in lines[-n:])


# the lines that say why a test failed, wherever they are in its output: a
# lab test's FAIL lines come minutes before its end, a fuzzer's report
# before its statistics
WHY = re.compile(r"FAIL:|: FAIL|ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|libFuzzer)|"
                 r"WARNING: ThreadSanitizer|^SUMMARY:|runtime error:|Assertion|Test unit written|triple fault")


def why_lines(text, n=15):
    lines = [l for l in (text or "").split("\n") if WHY.search(l)]
    if len(lines) > n:
        lines = lines[:n] + ["... and %d more such lines" % (len(lines) - n)]
    return "\n".join("    ! " + l for l in lines)


def l1_passed():
    """{build folder name: names of the tests that passed in L1}, if lab-kvm passed"""
    if not lab_kvm or not os.path.isdir(lab_kvm):
        return {}
    if not any(short(t.get("name")) == "lab-kvm" and t.get("result") == "OK"
               for path in paths for t in records(path)):
        return {}
    passed = {}
    for f in sorted(os.listdir(lab_kvm)):
        m = re.fullmatch(r"testlog-(.+)-(kvm|unit)\.json", f)
        if m:
            for t in records(os.path.join(lab_kvm, f)):
                if t.get("result") == "OK":
                    passed.setdefault(m.group(1), set()).add(short(t.get("name")))
    return passed


passed_in_l1 = l1_passed()
for path in paths:
    build = os.path.dirname(os.path.dirname(path)) or "."
    for t in records(path):
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r == "SKIP":
            skip += 1
            name = short(t.get("name"))
            # meson keeps a test's stderr apart from its stdout when the test
            # wrote to both: Criterion says why it skipped on stderr
            out = output(t)
            why = ALLOWED_SKIPS.get(name)
            if why and re.search(why, out):
                continue
            if "/dev/kvm" in out and name in passed_in_l1.get(os.path.basename(build), ()):
                in_l1.append("%s in %s" % (name, build))
                continue
            bad.append("%s in %s" % (name, build))
            if skips_fail:
                failed.append((t.get("name") or "?", build, "SKIP (a failure under CI)", why_lines(out) + "\n" + tail(out)))
        else:
            fail += 1
            failed.append((t.get("name") or "?", build, r, why_lines(output(t)) + "\n" + tail(output(t))))
if in_l1:
    print("test.sh: skipped here for want of /dev/kvm, passed in the lab's L1 (lab-kvm): " +
          ", ".join(in_l1))
if bad and skips_fail:
    print("test.sh: CI: skipped tests are failures here: " + ", ".join(bad))
    fail += len(bad)
    skip -= len(bad)
# the failures are named again at the very end, with the end of their output,
# so that a log cut to its last lines (CI's) still says what failed and why:
# the skips CI counts as failures first, the tests that failed last (when
# lab-kvm fails, every host skip for want of /dev/kvm is such a skip)
failed.sort(key=lambda f: 0 if f[2].startswith("SKIP") else 1)
for name, where, r, out in failed:
    print(f"test.sh: {r}: {name} in {where} (whole log: {where}/meson-logs/testlog.txt); "
          "the lines that say why (!), then its last lines (|):")
    print(out.lstrip("\n"))
kvm_skips = sum(1 for f in failed if f[2].startswith("SKIP") and "/dev/kvm" in f[3])
if kvm_skips and lab_kvm and not passed_in_l1:
    print(f"test.sh: {kvm_skips} of the skips above are for want of /dev/kvm: CI accepts them only when "
          "lab-kvm passed, and it did not (or did not run)")
print(f"{ok} passed, {fail} failed, {skip} skipped")
sys.exit(1 if bad and skips_fail else 0)
