#!/bin/bash
# Lab test lab-bench (host side): scripts/bench.sh --quick in the nested lab,
# then its results folder is checked: bench.json, bench.md and the PNG plots
# exist, and every table cell holds a figure or an n/a whose reason is
# given (scripts/bench-report.py check). Figures are not judged: they are
# the bench's, not a pass mark (docs/benchmarks.md). Fails when the bench's
# lab run failed (a minivmm boot that crashed or hung fails it; QEMU's
# failures are recorded as n/a cells).
#   test-bench.sh RESULTS_DIR
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: test-bench.sh RESULTS_DIR}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
rm -rf "$out"
"$SRC/scripts/bench.sh" --quick --out "$out" --timeout "${LAB_BENCH_TIMEOUT:-1500}"
rc=$?
# lab.sh's skip (no QEMU >= 10 or lab tools on this host)
[ "$rc" = 77 ] && exit 77
if "$PY" "$SRC/scripts/bench-report.py" check "$out"; then
	echo "test-bench: ok: $out: JSON, table and plots; every cell filled or explained"
else
	echo "test-bench: FAIL: the report in $out has gaps (above)"
	rc=1
fi
[ -f "$out/bench.md" ] && sed 's/^/test-bench: | /' "$out/bench.md"
exit "$rc"
