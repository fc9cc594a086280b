#!/usr/bin/env bash
# The two-host failover migration in the nested lab (docs/lab.md, "Two
# hosts"): tests/lab/test-migrate-hosts.sh in two L1s (lab.sh run --hosts 2),
# minivmm's move next to QEMU's. It is not a test of the meson lab suite (its
# issue keeps it out of CI while CI takes over 60 minutes); scripts/demo.sh
# and scripts/bench.sh's full run call this.
#
#   scripts/migrate-hosts.sh [--results DIR]     (default lab-results/migrate-hosts)
#
# The lab's policy for guest runs holds here too: a minivmm guest's L2
# triple fault (L0's emulation, docs/lab.md) is the one failure run again,
# once, loudly: the first try's folder is kept as DIR.try1 and the retry is
# counted in DIR/results.txt (mh_env_retries, mh_env_retry_1). Any other
# failure is the exit status. Environment: MINIVMM_BIN (default
# build/minivmm); lab.sh's LAB_* variables pass through.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
out=$PWD/lab-results/migrate-hosts
while [ $# -gt 0 ]; do
	case $1 in
	--results) out=$2; shift 2 ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "migrate-hosts.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case $out in /*) ;; *) out=$PWD/$out ;; esac
export MINIVMM_BIN=${MINIVMM_BIN:-$SRC/build/minivmm}

# env_fault DIR: the minivmm guest's environmental failure either host recorded
env_fault() {
	sed -n 's/^mh_env_fault=//p' "$1/results.txt" "$1/host-b/results.txt" 2>/dev/null | tr -d '"' | head -n1
}

run() {
	"$SRC/tests/lab/lab.sh" run --timeout 1300 --hosts 2 --results "$out" "$SRC/tests/lab/test-migrate-hosts.sh"
}

run
status=$?
why=$(env_fault "$out")
retries=0
if [ "$status" != 0 ] && [ -n "$why" ]; then
	echo "migrate-hosts.sh: WARNING: the run failed on the lab's environmental failure ($why): running the two hosts again once (the first try stays in $out.try1)" >&2
	# an earlier run's first try (a lab results folder) makes way
	[ -e "$out.try1/results.txt" ] && rm -rf "$out.try1"
	mv "$out" "$out.try1" || exit "$status"
	run
	status=$?
	retries=1
fi
if [ -d "$out" ]; then
	echo "mh_env_retries=$retries" >> "$out/results.txt"
	[ $retries = 0 ] || echo "mh_env_retry_1=\"$why\"" >> "$out/results.txt"
fi
exit "$status"
