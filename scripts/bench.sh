#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): minivmm next to QEMU on the same guest,
# over each network path (a VF through VFIO, virtio-net with vhost-net,
# virtio-net with the VMM's userspace backend), in the nested lab.
#
#   scripts/bench.sh [--quick] [--out DIR] [--migration-results DIR] [--timeout S]
#
#   --quick                 fewer, shorter runs (a few minutes); migration
#                           cells say "not run in --quick" unless
#                           --migration-results is given
#   --out DIR               the results folder (default lab-results/bench-<time>)
#   --migration-results DIR a tests/lab/test-migrate-hosts.sh results folder
#                           (its results.txt) for the migration figures; the
#                           full run without it runs lab-migrate-hosts itself
#   --timeout S             the limit of the bench's lab run (default 1500
#                           quick, 3000 full)
#
# Results, all in DIR: bench.json (every figure, or why it is missing),
# bench.md (the tables), bench-*.png (the plots), lab/ (the lab run: raw
# iperf3/sockperf outputs, counters, consoles) and, when run here,
# migrate-hosts/. Environment: MINIVMM_BIN (default build/minivmm); the
# LAB_* variables of tests/lab/bench-lab.sh and lab.sh pass through.
# Exit status: the lab run's (0 when it completed), or 1 when the report
# could not be made; the report is written in any case.
# Needs the lab (guest-images/lab/setup-host.sh), sockperf (optional: ping is
# the fallback) and python3-matplotlib (scripts/deps.sh). Runs one lab run
# at a time; do not run two benches (or a bench and the lab suite) at once.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

quick=0 out="" mig="" timeout=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1; shift ;;
	--out) out=$2; shift 2 ;;
	--migration-results) mig=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] || out=$PWD/lab-results/bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out" || exit 2
out=$(realpath "$out")
[ -n "$timeout" ] || timeout=$([ $quick = 1 ] && echo 1500 || echo 3000)
export MINIVMM_BIN=${MINIVMM_BIN:-$SRC/build/minivmm}
[ -x "$MINIVMM_BIN" ] || { echo "bench.sh: no minivmm at $MINIVMM_BIN (bash scripts/build.sh, or set MINIVMM_BIN)" >&2; exit 2; }
if [ -n "$mig" ] && [ ! -f "$mig/results.txt" ]; then
	echo "bench.sh: --migration-results $mig: no results.txt there" >&2
	exit 2
fi
say() { echo "bench.sh: $*"; }
t0=$(date +%s)

mode=full
[ $quick = 1 ] && mode=quick
say "$mode run, results in $out, minivmm $MINIVMM_BIN"
args=()
[ $quick = 1 ] && args=(--quick)
"$SRC/tests/lab/lab.sh" run --timeout "$timeout" --results "$out/lab" "$SRC/tests/lab/bench-lab.sh" "${args[@]}"
lab_rc=$?
say "the bench's lab run ended with status $lab_rc after $(( $(date +%s) - t0 )) s"

migargs=()
if [ -n "$mig" ]; then
	# a copy in the results folder: the figures stay with the report
	mkdir -p "$out/migrate-hosts"
	[ "$(realpath "$mig")" = "$out/migrate-hosts" ] || cp "$mig/results.txt" "$out/migrate-hosts/results.txt"
	echo "$(realpath "$mig")" > "$out/migrate-hosts/source"
	migargs=(--migration "$out/migrate-hosts")
elif [ $quick = 1 ]; then
	migargs=(--migration-na "not run in --quick")
else
	say "running lab-migrate-hosts for the migration figures (two L1s)"
	bash "$SRC/scripts/migrate-hosts.sh" --results "$out/migrate-hosts"
	mrc=$?
	if [ -f "$out/migrate-hosts/results.txt" ] && grep -q '^mh_' "$out/migrate-hosts/results.txt"; then
		migargs=(--migration "$out/migrate-hosts")
	else
		migargs=(--migration-na "lab-migrate-hosts ended with status $mrc and recorded no figures (see $out/migrate-hosts)")
	fi
fi

"$PY" "$SRC/scripts/bench-report.py" collect --lab "$out/lab" --lab-status "$lab_rc" --mode "$mode" \
	"${migargs[@]}" --out "$out/bench.json" || { say "collect failed"; exit 1; }
"$PY" "$SRC/scripts/bench-report.py" render "$out/bench.json" --out "$out" || { say "render failed"; exit 1; }
"$PY" "$SRC/scripts/bench-report.py" check "$out" || say "WARNING: the report has gaps (above)"
say "done in $(( $(date +%s) - t0 )) s: $out/bench.md, $out/bench.json, $out/bench-*.png"
exit "$lab_rc"
