#!/bin/bash
# Snapshot and restore (docs/migration.md) with the tiny counter guest, whose
# registers, RAM (pages of a 16 MiB buffer), LAPIC timer and interrupt state
# all matter to its result:
#  - `ctl snapshot FILE` while it counts (the vCPUs are paused for it and run
#    on after), then `ctl quit`;
#  - `minivmm --restore FILE` with the same options: the guest goes on from
#    the step it was saved at (never from step 1) and its final replay of
#    the whole sequence passes (counter: PASS), exit 0;
#  - a second restore of the same file does the same (the file is not used up);
#  - refused, with a message and a non-zero exit, before any guest runs:
#    another memory size, another vCPU count, another device set, a file with
#    one byte flipped (CRC), a truncated file, a file that is no stream, and
#    a missing file;
#  - a VM with a disk (virtio-blk) saves and restores it with its transport
#    state; a disk of another size is refused.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_COUNTER"

B=$MINIVMM_BIN
S=$WORK/api.sock
F=$WORK/vm.snap
# 240 steps of 50 ms: the guest must still be running when `ctl quit` comes,
# a few steps after the snapshot; in L1 under a loaded host starting ctl took
# long enough for a 60-step guest to finish first (lab-kvm, 2026-12-03)
ARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=240 ticks=5")
trap 'kill -KILL $vmm 2>/dev/null || true; cleanup_work' EXIT

# --- the snapshot -------------------------------------------------------------
set +e
"$B" -v --api "$S" "${ARGS[@]}" >"$OUT" 2>&1 </dev/null &
vmm=$!
set -e
wait_line '^testdev: counter step=8 ' 60
ctl "$S" snapshot "$F"
[ $CST = 0 ] || fail "ctl snapshot: exit $CST: $(cat "$WORK/ctl.out")"
grep -Eq "^$F: [0-9]+ bytes \(([0-9]+) bytes of RAM, [0-9]+ zero pages left out\) in [0-9]+ ms$" "$WORK/ctl.out" ||
	fail "ctl snapshot's output: $(cat "$WORK/ctl.out")"
saved=$(grep -Eo '^testdev: counter step=[0-9]+' "$OUT" | tail -n1 | sed 's/.*=//')
[ "$(stat -c %a "$F")" = 600 ] || fail "the snapshot's mode is $(stat -c %a "$F"), not 600"
size=$(stat -c %s "$F")
[ "$size" -lt $((8 << 20)) ] || fail "a 64 MiB guest with little RAM in use gave a $size-byte snapshot: zero pages are not left out"
# it runs on after the snapshot
wait_line "^testdev: counter step=$((saved + 2)) " 30
ctl "$S" quit
[ $CST = 0 ] || fail "ctl quit: exit $CST"
set +e
wait_exit $vmm
rc=$WRC
set -e
[ $rc = 0 ] || fail "minivmm exited $rc after quit"
no_crash
grep -q 'board: snapshot .*sections' "$OUT" || fail "no log line for the snapshot"

# --- restores ------------------------------------------------------------------
for n in 1 2; do
	# the same machine (--api too: its hot-plug controller is a device), another socket
	run_vmm 120 "$B" -v --api "$WORK/r.sock" --restore "$F" "${ARGS[@]}"
	first=$(grep -Eo '^testdev: counter step=[0-9]+' "$OUT" | head -n1 | sed 's/.*=//')
	[ -n "$first" ] && [ "$first" -gt 8 ] ||
		fail "restore $n: the guest started again from step ${first:-none}, not where it was saved (>= 9)"
	grep -q '^testdev: counter: [0-9]* steps' "$OUT" && fail "restore $n: the guest booted from scratch"
	expect_line '^counter: PASS steps=240 '
	no_line 'counter: FAIL'
	expect_rc 0
	no_crash
	grep -q "board: restored from $F" "$OUT" || fail "restore $n: no 'restored from' line"
done

# --- refusals: nothing runs -------------------------------------------------------
refused() { # WHAT REGEX ARGS...
	local what=$1 re=$2
	shift 2
	run_vmm 60 "$B" "$@"
	[ "$RC" != 0 ] || fail "$what: minivmm exited 0"
	grep -Eq -- "$re" "$OUT" || fail "$what: no /$re/ in: $(cat "$OUT")"
	grep -q '^testdev: counter' "$OUT" && fail "$what: the guest ran"
	no_crash
}
R=$WORK/r.sock
refused "another memory size" 'the saved VM has 64 MiB of memory, this one 32 MiB|outside this VM.s 32 MiB: the saved VM had more memory' \
	--api "$R" --restore "$F" --kernel "$TINY_COUNTER" --testdev --mem 32M --cpus 1
refused "more memory" 'the saved VM has 64 MiB of memory, this one 128 MiB' \
	--api "$R" --restore "$F" --kernel "$TINY_COUNTER" --testdev --mem 128M --cpus 1
refused "another vCPU count" "the saved VM has 1 vCPUs, this one 2|section 'cpu' instance 1 is registered but not in the stream" \
	--api "$R" --restore "$F" --kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 2
refused "another device set" 'section .*(pcihp|missing|unknown)|the saved VM.s devices are' \
	--restore "$F" "${ARGS[@]}"
cp "$F" "$WORK/flip.snap"
printf '\xff' | dd of="$WORK/flip.snap" bs=1 seek=$((size / 2)) conv=notrunc status=none
refused "a flipped byte" 'refused: .*(CRC|crc|checksum)' --api "$R" --restore "$WORK/flip.snap" "${ARGS[@]}"
head -c $((size - 100)) "$F" >"$WORK/short.snap"
refused "a truncated file" 'refused: ' --api "$R" --restore "$WORK/short.snap" "${ARGS[@]}"
head -c 4096 /dev/urandom >"$WORK/junk.snap"
refused "a file that is no stream" 'refused: ' --api "$R" --restore "$WORK/junk.snap" "${ARGS[@]}"
refused "a missing file" 'No such file' --api "$R" --restore "$WORK/none.snap" "${ARGS[@]}"

# --- a VM with a disk (virtio-blk: its transport state and queues) --------------------
truncate -s 1M "$WORK/disk.img"
DARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=90 ticks=5" --readonly)
set +e
"$B" -v --api "$S" "${DARGS[@]}" "$WORK/disk.img" >"$OUT" 2>&1 </dev/null &
vmm=$!
set -e
wait_line '^testdev: counter step=5 ' 60
ctl "$S" snapshot "$WORK/blk.snap"
[ $CST = 0 ] || fail "a VM with virtio-blk: snapshot exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" quit
set +e
wait_exit $vmm
set -e
no_crash
run_vmm 120 "$B" -v --api "$R" --restore "$WORK/blk.snap" "${DARGS[@]}" "$WORK/disk.img"
expect_line '^counter: PASS steps=90 '
expect_rc 0
no_crash
truncate -s 2M "$WORK/disk2.img"
refused "another disk size" 'the saved disk had 2048 sectors \(read-only\), this one 4096' \
	--api "$R" --restore "$WORK/blk.snap" "${DARGS[@]}" "$WORK/disk2.img"
echo PASS
