#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz (docs/security.md).
# Usage: bash scripts/fuzz.sh [--secs N] [--runs N] [--merge] [HARNESS...]
#   --secs N   run each harness N seconds (default 20)
#   --runs N   stop a harness after N executions (whichever comes first)
#   --merge    afterwards, minimize what the runs found into the repository's
#              corpus (tests/fuzz/corpus/<name>, libFuzzer -merge=1; seed-* and
#              crash-* files stay; at most FUZZ_CORPUS_MAX_KB, default 768, each)
# Without HARNESS, all of them, one after the other (one process each: the
# machine's other work keeps its cores). Sets up build-fuzz with clang when
# it is missing. New inputs go to build-fuzz/tests/fuzz/corpus/<name>;
# crashes to build-fuzz/tests/fuzz/artifacts/. Prints per harness:
# executions, execs/s, coverage (libFuzzer's cov: and ft:) and crashes; exits
# non-zero when one crashed, leaked or hit a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=20
runs=0
merge=false
harnesses=()
while [ $# -gt 0 ]; do
	case "$1" in
	--secs) secs=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--merge) merge=true; shift ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
	*) harnesses+=("$1"); shift ;;
	esac
done

if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=enabled -Dtests=disabled >/dev/null
fi
# FUZZ_NO_BUILD=1: run the binaries as they are (a long run while the code changes)
[ "${FUZZ_NO_BUILD:-}" = 1 ] || ninja -C build-fuzz >/dev/null
if [ ${#harnesses[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		h=${f#tests/fuzz/fuzz_}
		harnesses+=("${h%.c}")
	done
fi

out=build-fuzz/tests/fuzz
logs=$out/logs
mkdir -p "$logs" "$out/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
printf '%-12s %12s %9s %7s %7s %8s %s\n' harness executions exec/s cov ft crashes log
for h in "${harnesses[@]}"; do
	exe=$out/fuzz_$h
	if [ ! -x "$exe" ]; then
		echo "fuzz.sh: no harness $h ($exe)" >&2
		status=1
		continue
	fi
	mkdir -p "$out/corpus/$h" "tests/fuzz/corpus/$h"
	extra=()
	[ "$runs" -gt 0 ] && extra+=(-runs="$runs")
	if [ -f "tests/fuzz/$h.options" ]; then
		read -r -a opts < "tests/fuzz/$h.options"
		extra+=("${opts[@]}")
	fi
	[ -f "tests/fuzz/$h.dict" ] && extra+=(-dict="tests/fuzz/$h.dict")
	log=$logs/$h.log
	rc=0
	# without ASLR: see scripts/test.sh (clang 14's ASan under vm.mmap_rnd_bits=32)
	setarch "$(uname -m)" -R "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$h-" "${extra[@]}" \
		"$out/corpus/$h" "tests/fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
	execs=$(awk -F: '/^stat::number_of_executed_units/ { gsub(/ /, "", $NF); print $NF }' "$log")
	rate=$(awk -F: '/^stat::average_exec_per_sec/ { gsub(/ /, "", $NF); print $NF }' "$log")
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	crashes=0
	if [ "$rc" -ne 0 ]; then
		crashes=1
		status=1
	fi
	printf '%-12s %12s %9s %7s %7s %8s %s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"${ft:-?}" "$crashes" "$log"
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -5 | sed 's/^/    /'
	fi
	if $merge && [ "$rc" -eq 0 ]; then
		tmp=$(mktemp -d)
		setarch "$(uname -m)" -R "$exe" -merge=1 -timeout=10 -rss_limit_mb=2048 "${extra[@]}" "$tmp" \
			"tests/fuzz/corpus/$h" "$out/corpus/$h" >"$logs/$h.merge.log" 2>&1 || status=1
		# the reproducers of fixed crashes stay, whatever the merge thinks of them
		find "tests/fuzz/corpus/$h" -type f ! -name 'crash-*' ! -name 'seed-*' -delete
		cp -n "$tmp"/* "tests/fuzz/corpus/$h/" 2>/dev/null || true
		rm -rf "$tmp"
		# the merge names inputs by their SHA-1: drop the copies of seeds and reproducers
		for f in "tests/fuzz/corpus/$h"/seed-* "tests/fuzz/corpus/$h"/crash-*; do
			[ -f "$f" ] && rm -f "tests/fuzz/corpus/$h/$(sha1sum "$f" | cut -d' ' -f1)"
		done
		# keep the repository small: the largest merged inputs go first past
		# FUZZ_CORPUS_MAX_KB (default 768) per harness
		max=$(( ${FUZZ_CORPUS_MAX_KB:-768} * 1024 ))
		while [ "$(du -sb "tests/fuzz/corpus/$h" | cut -f1)" -gt "$max" ]; do
			big=$(find "tests/fuzz/corpus/$h" -type f ! -name 'crash-*' ! -name 'seed-*' \
				-printf '%s %p\n' | sort -rn | awk 'NR == 1 { sub(/^[0-9]+ /, ""); print }')
			[ -n "$big" ] || break
			rm -f "$big"
		done
		echo "    merged: $(find "tests/fuzz/corpus/$h" -type f | wc -l) inputs in tests/fuzz/corpus/$h"
	fi
done
exit $status
