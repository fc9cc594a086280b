#!/bin/bash
# VMM lifecycle: a VM with an idle second vCPU (blocked in KVM_RUN waiting for
# a SIPI) still exits at once when the guest stops; SIGTERM and SIGINT stop a
# running guest cleanly with status 143 and the stop reason.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_BOOTINFO"
require_guest "$TINY_RESET"

run_vmm 30 "$MINIVMM_BIN" --kernel "$TINY_BOOTINFO" --testdev --mem 64M --cpus 2 \
	--cmdline "mem_expect=64"
expect_line '^bootinfo PASS$'
expect_rc 0

# hugepage-backed RAM: reserve 2 MiB pages for the run, then give them back
if [ -w /proc/sys/vm/nr_hugepages ]; then
	old=$(cat /proc/sys/vm/nr_hugepages)
	echo $((old + 40)) > /proc/sys/vm/nr_hugepages
	got=$(cat /proc/sys/vm/nr_hugepages)
	if [ "$got" -ge $((old + 32)) ]; then
		run_vmm 30 "$MINIVMM_BIN" --kernel "$TINY_BOOTINFO" --testdev --mem 64M --hugepages \
			--cmdline "mem_expect=64"
		echo "$old" > /proc/sys/vm/nr_hugepages
		expect_line '^bootinfo PASS$'
		expect_rc 0
	else
		echo "$old" > /proc/sys/vm/nr_hugepages
		echo "note: the kernel gave only $((got - old)) hugepages; --hugepages not exercised"
	fi
	# without enough hugepages the VMM refuses clearly instead of crashing:
	# status 1 ("1 on errors", docs/minivmm.1), not a signal or a usage error
	run_vmm 30 "$MINIVMM_BIN" --kernel "$TINY_BOOTINFO" --testdev --mem 1T --hugepages
	expect_rc 1
	grep -q '^minivmm: cannot start the VM: ' "$OUT" ||
		fail "the refusal is not the documented start failure"
	grep -q 'hugepages' "$OUT" || fail "the hugepage failure does not say why"
fi

for sig in TERM INT; do
	set +e
	"$MINIVMM_BIN" --kernel "$TINY_RESET" --testdev --mem 32M --cpus 2 --cmdline hang \
		>"$OUT" 2>&1 </dev/null &
	pid=$!
	for _ in $(seq 100); do
		grep -q '^testdev: reset: hanging' "$OUT" && break
		sleep 0.1
	done
	grep -q '^testdev: reset: hanging' "$OUT" || { kill -9 $pid; fail "the guest never started"; }
	kill -$sig $pid
	for _ in $(seq 100); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		kill -9 $pid
		fail "minivmm still running 10 s after SIG$sig"
	fi
	wait_exit $pid
	RC=$WRC
	set -e
	echo "SIG$sig: minivmm exited with status $RC"
	expect_rc 143
	grep -q 'stopped by signal' "$OUT" || fail "no stop reason printed after SIG$sig"
done
echo "PASS"
