#!/bin/bash
# Migration between two minivmm processes on this host (docs/migration.md),
# with the tiny counter guest (its registers, RAM, timer and interrupts must
# survive the move):
#  - a destination started with --incoming unix:PATH and the same machine
#    options; `ctl SRC migrate unix:PATH`: ctl exits 0 with the figures, the
#    source exits 0 ("migrated"), and the guest goes on counting on the
#    destination from where it was (never from step 1) to its PASS;
#  - a destination with another memory size refuses the VM: ctl exits 1 with
#    the destination's reason, and the guest keeps running on the source
#    (it counts on and passes there);
#  - migrate --plan (a dry run) first, each time: not feasible (the refusing
#    destination's reason) or feasible; the destination waits on after it;
#  - migrate-cancel during pre-copy (status answers meanwhile): ctl migrate
#    exits 1 "rolled back while pre-copy: cancelled", the guest counts on at
#    the source, the destination never runs it;
#  - migrate-cancel while connecting (a destination that accepts and never
#    answers): the wait for its word ends at once, nothing changed;
#  - migrate-cancel while the source awaits the destination's verdict
#    (tests/mig_cut_proxy.py --hold-verdict keeps it back): the same
#    rollback, and the destination, closed before the GO, never runs it;
#  - the waiting destination's control socket answers status ("incoming");
#  - nobody listening: ctl exits 1 (failed while connecting), the guest runs on;
#  - a bad address: ctl exits 1 (invalid-args);
#  - the move is pre-copy: ctl shows the rounds and a converged summary;
#  - a guest that dirties 1 MiB every 20 ms, moved at 200 Mbit/s with a 50 ms
#    target: pre-copy does not converge, stops iterating, the rest crosses
#    paused, and every page arrives (the guest checks them all).
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_COUNTER"

B=$MINIVMM_BIN
S=$WORK/src.sock
M=$WORK/mig.sock
ARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=60 ticks=5")
SRC=$WORK/src.out DST=$WORK/dst.out
trap 'kill -KILL $src $dst 2>/dev/null || true; cleanup_work' EXIT
start_src() {
	set +e
	"$B" -v --api "$S" "${ARGS[@]}" >"$SRC" 2>&1 </dev/null &
	src=$!
	set -e
	wait_in "$SRC" '^testdev: counter step=4 ' 60
}
start_dst() { # extra options
	set +e
	"$B" -v --api "$WORK/dst.sock" --incoming "unix:$M" "$@" >"$DST" 2>&1 </dev/null &
	dst=$!
	set -e
	wait_in "$DST" 'waiting for a migration on' 30
}

# --- a refusal: the guest stays on the source ------------------------------------
# (a guest that counts long enough for the refusals, plans and cancel below: 4000
# steps of 50 ms, 200 s; 1000 ran out in L1 on a loaded host; quit after)
ARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=4000 ticks=5")
start_src
start_dst --kernel "$TINY_COUNTER" --testdev --mem 32M --cpus 1
# the dry run first: each device's move, the destination's refusal; it waits on
ctl "$S" migrate "unix:$M" --plan
[ $CST = 1 ] && grep -q '^migration plan to unix:.*: NOT feasible$' "$WORK/ctl.out" &&
	grep -Eq '^  destination: refuses: .*64 MiB of memory, this one 32 MiB' "$WORK/ctl.out" &&
	grep -Eq '^  ttyS0 +serial +state +state in the stream \(section serial 0\)$' "$WORK/ctl.out" ||
	fail "migrate --plan to a smaller destination: exit $CST: $(cat "$WORK/ctl.out")"
grep -q 'a migration plan refused: ' "$DST" || fail "the destination does not log the plan's refusal"
kill -0 $dst 2>/dev/null || fail "the destination stopped after a plan"
# the destination's control socket answers status while it waits
ctl --json "$WORK/dst.sock" status
[ $CST = 0 ] && python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["return"]
assert r["state"] == "incoming", r
assert r["incoming"] == {"state": "waiting", "bytes": r["incoming"]["bytes"], "plans": 1}, r' "$WORK/ctl.out" ||
	fail "the waiting destination's status: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" migrate "unix:$M"
[ $CST = 1 ] && grep -Eq 'failed while connecting: the destination refused the VM: .*32 MiB.*the VM runs on here' "$WORK/ctl.out" ||
	fail "a refused migration: exit $CST: $(cat "$WORK/ctl.out")"
set +e
wait_exit $dst
drc=$WRC
set -e
[ $drc != 0 ] || fail "the refusing destination exited 0"
grep -q '^testdev: counter' "$DST" && fail "the refusing destination ran the guest"
no_crash "$DST"
ctl "$S" status
grep -qx 'state: running' "$WORK/ctl.out" || fail "the source is not running after the refusal: $(cat "$WORK/ctl.out")"
at=$(grep -Eo '^testdev: counter step=[0-9]+' "$SRC" | tail -n1 | sed 's/.*=//')
wait_in "$SRC" "^testdev: counter step=$((at + 2)) " 30

# --- migrate-cancel during pre-copy: the same rollback ---------------------------------
ctl "$S" migrate-cancel
[ $CST = 1 ] && grep -q 'no migration in progress' "$WORK/ctl.out" || fail "migrate-cancel with none: exit $CST: $(cat "$WORK/ctl.out")"
start_dst --kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1
set +e
"$B" ctl "$S" migrate "unix:$M" --bandwidth 1 >"$WORK/mig.out" 2>&1 &
migctl=$!
set -e
wait_in "$WORK/mig.out" '^migrate: pre-copy$' 30
# answered while the migration runs (it serves the loop between records)
ctl "$S" status
grep -q '^migration: {"state": *"pre-copy"' "$WORK/ctl.out" || fail "status during pre-copy: $(cat "$WORK/ctl.out"); ctl migrate: $(cat "$WORK/mig.out"); the source: $(grep -a migration "$SRC")"
# SIGUSR2 during pre-copy: no vCPU read while the migration pauses and resumes
# them (the control socket's cpu-state waits for the migration's end instead)
kill -USR2 "$src"
wait_in "$SRC" 'inspect: warning: vcpus: busy: a migration is in progress \(outgoing\)' 30
ctl "$S" migrate-cancel
[ $CST = 0 ] && grep -qx 'cancelling' "$WORK/ctl.out" || fail "migrate-cancel: exit $CST: $(cat "$WORK/ctl.out")"
set +e
wait_exit $migctl
mrc=$WRC
wait_exit $dst
drc=$WRC
set -e
[ $mrc = 1 ] && grep -q 'rolled back while pre-copy: cancelled (migrate-cancel); the VM runs on here' "$WORK/mig.out" ||
	fail "the cancelled migration: exit $mrc: $(cat "$WORK/mig.out")"
[ $drc != 0 ] || fail "the destination of a cancelled migration exited 0"
grep -q '^testdev: counter' "$DST" && fail "the destination of a cancelled migration ran the guest"
ctl "$S" status
grep -qx 'state: running' "$WORK/ctl.out" && ! grep -q '^migration:' "$WORK/ctl.out" ||
	fail "the source after the cancel: $(cat "$WORK/ctl.out")"
at=$(grep -Eo '^testdev: counter step=[0-9]+' "$SRC" | tail -n1 | sed 's/.*=//')
wait_in "$SRC" "^testdev: counter step=$((at + 2)) " 30

# --- migrate-cancel while the source awaits the destination's verdict ------------------
# The proxy relays the whole stream and the destination's first word, but
# keeps its verdict back: the source waits with the guest paused, answers
# status, and takes the cancel at once. The destination, closed before the
# GO, must not run the guest.
start_dst --kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1
P=$WORK/proxy.sock
set +e
python3 "$(dirname "$0")/../mig_cut_proxy.py" --hold-verdict "unix:$P" "unix:$M" >"$WORK/proxy.out" 2>&1 &
proxy=$!
set -e
wait_in "$WORK/proxy.out" '^proxy: listening' 30
set +e
"$B" ctl "$S" migrate "unix:$P" >"$WORK/mig.out" 2>&1 &
migctl=$!
set -e
for _ in $(seq 300); do
	ctl "$S" status
	grep -q '^migration: {"state": *"awaiting the destination"' "$WORK/ctl.out" && break
	kill -0 $migctl 2>/dev/null || break
	sleep 0.1
done
grep -q '^migration: {"state": *"awaiting the destination"' "$WORK/ctl.out" ||
	fail "the source never awaited the held verdict: $(cat "$WORK/ctl.out"); ctl migrate: $(cat "$WORK/mig.out"); proxy: $(cat "$WORK/proxy.out")"
# the destination loads the stream meanwhile; its verdict comes and is kept back
wait_in "$WORK/proxy.out" "held back the destination's verdict" 60
ctl "$S" migrate-cancel
[ $CST = 0 ] && grep -qx 'cancelling' "$WORK/ctl.out" || fail "migrate-cancel while awaiting: exit $CST: $(cat "$WORK/ctl.out")"
set +e
wait_exit $migctl
mrc=$WRC
wait_exit $proxy
prc=$WRC
wait_exit $dst
drc=$WRC
set -e
[ $mrc = 1 ] && grep -q 'rolled back while awaiting the destination: cancelled (migrate-cancel); the VM runs on here' "$WORK/mig.out" ||
	fail "the migration cancelled while awaiting the verdict: exit $mrc: $(cat "$WORK/mig.out")"
[ $prc = 0 ] || fail "the proxy: exit $prc: $(cat "$WORK/proxy.out")"
[ $drc != 0 ] || fail "the destination closed before the GO exited 0"
grep -q '^testdev: counter' "$DST" && fail "the destination closed before the GO ran the guest: $(grep -a 'counter' "$DST" | head -3)"
ctl "$S" status
grep -qx 'state: running' "$WORK/ctl.out" && ! grep -q '^migration:' "$WORK/ctl.out" ||
	fail "the source after the cancel while awaiting: $(cat "$WORK/ctl.out")"
at=$(grep -Eo '^testdev: counter step=[0-9]+' "$SRC" | tail -n1 | sed 's/.*=//')
wait_in "$SRC" "^testdev: counter step=$((at + 2)) " 30
ctl "$S" migrate-cancel
[ $CST = 1 ] && grep -q 'no migration in progress' "$WORK/ctl.out" || fail "migrate-cancel after the rollback: exit $CST: $(cat "$WORK/ctl.out")"

# --- migrate-cancel while connecting: a destination that accepts and never answers -------
# The source waits (up to 10 s) for the destination's word with the loop
# running; the cancel ends the wait (had it not, the failure would be the
# destination's silence, "no answer from the destination"), nothing changed.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
while c.recv(65536):
    pass
time.sleep(5)
' "$WORK/mute.sock" >"$WORK/mute.out" 2>&1 &
mute=$!
wait_in "$WORK/mute.out" '^listening' 30
set +e
"$B" ctl "$S" migrate "unix:$WORK/mute.sock" >"$WORK/mig.out" 2>&1 &
migctl=$!
set -e
wait_in "$WORK/mig.out" '^migrate: connecting$' 30
sleep 0.5
ctl "$S" status
grep -q '^migration: {"state": *"connecting"' "$WORK/ctl.out" || fail "status while connecting: $(cat "$WORK/ctl.out")"
ctl "$S" migrate-cancel
[ $CST = 0 ] && grep -qx 'cancelling' "$WORK/ctl.out" || fail "migrate-cancel while connecting: exit $CST: $(cat "$WORK/ctl.out")"
set +e
wait_exit $migctl
mrc=$WRC
set -e
[ $mrc = 1 ] && grep -q 'failed while connecting: cancelled (migrate-cancel); the VM runs on here' "$WORK/mig.out" ||
	fail "the migration cancelled while connecting: exit $mrc: $(cat "$WORK/mig.out")"
kill $mute 2>/dev/null || true
wait $mute 2>/dev/null || true
ticks_on() {
	local at
	at=$(grep -Eo '^testdev: counter step=[0-9]+' "$SRC" | tail -n1 | sed 's/.*=//')
	wait_in "$SRC" "^testdev: counter step=$((at + 2)) " 30
}
ticks_on

# --- nobody listening, a bad address ---------------------------------------------------
ctl "$S" migrate "unix:$WORK/nobody.sock"
[ $CST = 1 ] && grep -q 'failed while connecting: cannot connect' "$WORK/ctl.out" ||
	fail "migrate to nobody: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" migrate "udp:1.2.3.4:5"
[ $CST = 1 ] && grep -q 'invalid-args' "$WORK/ctl.out" || fail "a bad address: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" quit
set +e
wait_exit $src
set -e
no_crash "$SRC"

# --- the move ---------------------------------------------------------------------------
# (400 steps, 20 s: the guest must still run on the destination when its
# status is asked after the move, also where minivmm runs slowly, as under
# ASan and TSan in the lab's L1, where 60 steps ended during pre-copy)
ARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=400 ticks=5")
start_src
start_dst "${ARGS[@]}"
# the dry run: feasible, the guest runs on, the destination waits on for the real one
ctl "$S" migrate "unix:$M" --plan
[ $CST = 0 ] && grep -q '^migration plan to unix:.*: feasible$' "$WORK/ctl.out" &&
	grep -q '^  destination: accepts: memory, vCPUs and devices match$' "$WORK/ctl.out" ||
	fail "migrate --plan: exit $CST: $(cat "$WORK/ctl.out")"
grep -q 'a migration plan would be accepted; waiting on' "$DST" || fail "the destination does not log the plan"
ctl "$S" status
grep -qx 'state: running' "$WORK/ctl.out" || fail "the source is not running after a plan: $(cat "$WORK/ctl.out")"
ctl "$S" migrate "unix:$M" --plan --bogus
[ $CST = 2 ] || fail "migrate with a bad flag: exit $CST"
ctl "$S" migrate "unix:$M" --plan --unplug-timeout 0
[ $CST = 2 ] && grep -q -- '--unplug-timeout MS (1..600000)' "$WORK/ctl.out" ||
	fail "migrate --unplug-timeout 0: exit $CST: $(cat "$WORK/ctl.out")"
# (the destination's second plan: its status counts 2 below)
ctl "$S" migrate "unix:$M" --plan --unplug-timeout 60000
[ $CST = 0 ] || fail "migrate --plan --unplug-timeout 60000: exit $CST: $(cat "$WORK/ctl.out")"
ctl "$S" migrate "unix:$M"
[ $CST = 0 ] && grep -Eq '^migrated to unix:.*: [0-9]+ bytes \([0-9]+ bytes of RAM\) in [0-9]+ ms, the guest paused for [0-9]+ ms$' "$WORK/ctl.out" ||
	fail "ctl migrate: exit $CST: $(cat "$WORK/ctl.out")"
set +e
wait_exit $src
src_rc=$WRC
set -e
[ $src_rc = 0 ] || fail "the source exited $src_rc after the migration"
grep -q 'migrated (the guest runs on the destination)' "$SRC" || fail "the source does not say it migrated"
# the destination's status, once the guest runs there: the incoming migration's figures
"$B" ctl --json "$WORK/dst.sock" status > "$WORK/dst-status.json" 2>&1 &&
	python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["return"]
assert r["state"] in ("running", "paused"), r
i = r["incoming"]
assert i["state"] == "done" and i["received_ms"] > 0 and i["bytes"] > 0 and i["plans"] == 2, i' "$WORK/dst-status.json" ||
	fail "the destination's status after the migration: $(cat "$WORK/dst-status.json")"
wait_in "$DST" '^testdev: counter: (PASS|FAIL)' 120
set +e
wait_exit $dst
dst_rc=$WRC
set -e
moved_on "$SRC" "$DST"
grep -q '^testdev: counter: PASS steps=400 ' "$DST" || fail "the destination's guest did not pass: $(grep 'counter:' "$DST")"
[ $dst_rc = 0 ] || fail "the destination exited $dst_rc"
grep -q 'board: migration received in' "$DST" || fail "the destination does not say it received the VM"
grep -Eq '^  pre-copy: [0-9]+ rounds in [0-9]+ ms, converged \(target 300 ms' "$WORK/ctl.out" ||
	fail "ctl's summary lacks a converged pre-copy: $(cat "$WORK/ctl.out")"
grep -q '^migrate: pre-copy: RAM 100%' "$WORK/ctl.out" || fail "ctl showed no progress: $(cat "$WORK/ctl.out")"
no_crash "$SRC"
no_crash "$DST"

# --- a guest that dirties faster than the link: pre-copy gives up, the rest crosses paused --
# 256 pages (1 MiB) every 20 ms against 50 Mbit/s: a round of the 16 MiB
# buffer takes about 2.7 s, in which the guest rewrites all of it many times
# over, even on a loaded host where it runs several times slower (at 200
# Mbit/s it once fell behind its own buffer and converged); after 4 rounds
# that do not shrink, the guest stops for the rest. Every page must still
# arrive (the guest checks them all). The guest must outlive the pre-copy:
# 3000 steps, 60 s at full speed. (It had 1500: in the lab's L1 under TSan
# the link ran at 8-15 Mbit/s, five rounds took longer than the guest's
# 1500 steps, and it powered off mid-copy, which rolls the migration back.)
ARGS=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=3000 ticks=2 burst=256")
start_src
start_dst "${ARGS[@]}"
ctl "$S" migrate "unix:$M" --bandwidth 50 --downtime 50
# what the guest did in each round: its step lines between the source's
# "after pre-copy round N" lines (one process, one file: in time order). A
# round in which it took no step dirtied nothing, and the copy converges:
# the check below then did not get the guest it needs, and says so.
progress=$(awk '/testdev: counter step=/ { n++ }
	/migration: pre-copy round 0:/ { n = 0 }
	/migration: after pre-copy round [0-9]+:/ { r = $0; sub(/.*pre-copy round /, "", r); sub(/:.*/, "", r)
		printf "round %s: %d steps; ", r, n; n = 0 }' "$SRC")
[ $CST = 0 ] && grep -Eq '^  pre-copy: [0-9]+ rounds in [0-9]+ ms, did not converge \(target 50 ms' "$WORK/ctl.out" ||
	fail "a migration of a fast-dirtying guest: exit $CST; the guest's steps per pre-copy round: ${progress:-none}$(echo "$progress" | grep -Eq ': 0 steps' && echo ' (a round without a step: the guest stalled)'): $(cat "$WORK/ctl.out")"
grep -Eq '^migrate: pre-copy round [0-9]+: .* 4[0-9]{3} pages dirtied' "$WORK/ctl.out" ||
	fail "no round saw the buffer dirty again: $(cat "$WORK/ctl.out")"
grep -Eq 'faster than [0-9]+ Mbit/s carries them within 50 ms' "$SRC" || fail "the source does not say why it stopped iterating: $(grep -a 'migration' "$SRC")"
set +e
wait_exit $src
src_rc=$WRC
set -e
[ $src_rc = 0 ] || fail "the source exited $src_rc after the migration"
wait_in "$DST" '^testdev: counter: (PASS|FAIL)' 180
grep -q '^testdev: counter: PASS steps=3000 ' "$DST" || fail "the fast-dirtying guest did not pass on the destination: $(grep 'counter:' "$DST")"
set +e
wait_exit $dst
dst_rc=$WRC
set -e
[ $dst_rc = 0 ] || fail "the destination exited $dst_rc"
no_crash "$SRC"
no_crash "$DST"
echo PASS
