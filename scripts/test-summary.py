#!/usr/bin/env python3
"""The closing line of scripts/test.sh: totals over meson's testlog.json files.

test-summary.py [--skips-fail] TESTLOG.json...
With --skips-fail (CI), a skipped test is a failure, except the skips in
ALLOWED_SKIPS that print the reason given there: host limits no test can
work around, each named here. Exit status 1 when such a skip was found.
"""
import json, os, re, sys
ALLOWED_SKIPS = {
    # kvm_pvm (this CI machine's nested KVM) emulates guest ring 0 and reports
    # an undeliverable trap as an emulation error, never as the shutdown
    "kvm_triplefault": r"this host's KVM is kvm_pvm",
}
skips_fail = len(sys.argv) > 1 and sys.argv[1] == "--skips-fail"
paths = sys.argv[2:] if skips_fail else sys.argv[1:]
ok = fail = skip = 0
bad = []
failed = []  # (name, build dir, last lines of its output)


def tail(text, n=25):
    lines = (text or "").rstrip("\n").split("\n")
    return "\n".join("    | " + l for l in lines[-n:])


for path in paths:
    try:
        for line in open(path):
            t = json.loads(line)
            r = t.get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                ok += 1
            elif r == "SKIP":
                skip += 1
                name = (t.get("name") or "").split(" / ")[-1]
                why = ALLOWED_SKIPS.get(name)
                if not (why and re.search(why, t.get("stdout") or "")):
                    bad.append("%s in %s" % (name, os.path.dirname(os.path.dirname(path))))
            else:
                fail += 1
                failed.append((t.get("name") or "?", os.path.dirname(os.path.dirname(path)) or ".",
                               r, tail(t.get("stdout"))))
    except FileNotFoundError:
        pass
if bad and skips_fail:
    print("test.sh: CI: skipped tests are failures here: " + ", ".join(bad))
    fail += len(bad)
    skip -= len(bad)
# the failures are named again at the very end, with the end of their output,
# so that a log cut to its last lines (CI's) still says what failed and why
for name, where, r, out in failed:
    print(f"test.sh: {r}: {name} in {where} (whole log: {where}/meson-logs/testlog.txt); its last lines:")
    print(out)
print(f"{ok} passed, {fail} failed, {skip} skipped")
sys.exit(1 if bad and skips_fail else 0)
