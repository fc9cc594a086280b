#!/bin/bash
# Runs bench/dirtylog.c (minivmm-bench-dirtylog) inside L1, on the lab's
# kernel (nested KVM): tests/lab/lab.sh run tests/lab/bench-dirtylog.sh.
# Environment: LAB_DIRTYLOG_BIN (the benchmark binary, required).
set -u
. "$LAB_LIB"
b=${LAB_DIRTYLOG_BIN:-}
[ -x "$b" ] || { echo "bench-dirtylog: LAB_DIRTYLOG_BIN not set or not executable"; exit 1; }
echo "bench-dirtylog: L1 kernel $(uname -r)"
for mib in 32 256; do
	"$b" --mib "$mib" --secs 5 | tee -a "$LAB_RESULTS/dirtylog.txt"
done
exit 0
