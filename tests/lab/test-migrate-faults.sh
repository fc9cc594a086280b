#!/bin/bash
# Lab test (runs inside L1 via tests/lab/lab.sh, test lab-migrate-faults):
# the failover dance's failures. Each must end with the VM running on the
# source, its VF back in the guest and carrying traffic, and no second copy
# of the guest running anywhere (docs/migration.md, "Failures").
#
# br0 = { the PF, tap0, tap1 } with 10.0.8.1/24, as in lab-migrate-failover;
# the source has VF0, destinations get VF1.
# Guest 1 (tick-test lab.fo=1: a disk read, a ping of L1 and via=IF|standby
# every second):
#  1. no free VF on the destination: a destination given VF0 (the source's)
#     cannot take it and does not start; `ctl migrate` fails while
#     connecting; VF0 never left the guest.
#  2. a destination that never answers (it accepts and says nothing): the
#     migration fails while connecting, after the source's 10 s; nothing
#     changed.
#  3. migrate-cancel during pre-copy (--bandwidth 40 keeps it there):
#     `ctl migrate` exits 1 "rolled back while pre-copy: cancelled", VF0 is
#     plugged back; the destination discards what it got.
#  4. the destination killed (SIGKILL) during pre-copy: exit 1, rolled back
#     while pre-copy, VF0 plugged back.
#  5. the connection cut while the device state crosses (the guest paused;
#     tests/mig_cut_proxy.py cuts halfway through the first device
#     section): exit 1, rolled back while transferring, the guest resumes
#     and VF0 is plugged back; the destination refuses the truncated stream
#     and never runs the guest.
# After each, the guest's ticks must go on at the source, via VF0 again
# (its vfio-msix interrupts rising too).
# Guest 2 (failover-test lab.fo_mode=ignore-eject: GPE 1 disabled, it never
# sees the eject request; pings L1 over the VF):
#  6. migrate-cancel while the source waits for the eject (--unplug-timeout
#     120000): exit 1, "rolled back while unplugging: cancelled"; the VF
#     stays.
#  7. a guest that never ejects: `ctl migrate` fails after the unplug
#     deadline (10 s); the VF stays and its pings go on answering.
# Results: faults_<n>_* in results.txt (ctl's message, ticks until the VF
# carried one again). A guest that triple-faults is run again, at most
# twice in the test (lab_guest_try's 3 tries), as the lab's policy says
# (loud, counted: faults_env_retries).
# Environment: MINIVMM_BIN (required).
set -u
# shellcheck source=tests/lab/l1-lib.sh
. "$LAB_LIB"

B=${MINIVMM_BIN:-}
MAC=52:54:00:1a:00:71
S=/tmp/lab-mf-src.sock
SD=/tmp/lab-mf-dst.sock
PORT=4450
URI=tcp:127.0.0.1:$PORT
MEM=384
OUT=/tmp/lab-mf
mkdir -p "$OUT" /tmp/lab-l2
: > "$LAB_RESULTS/results.txt"
rc=0
fail() { echo "test-migrate-faults: FAIL: $*"; rc=1; }
pass() { echo "test-migrate-faults: ok: $*"; }
say() { echo "test-migrate-faults: $*"; }

[ -n "$B" ] && [ -x "$B" ] || { echo "test-migrate-faults: MINIVMM_BIN not set or not executable"; exit 1; }
[ -c /dev/kvm ] || { echo "test-migrate-faults: no /dev/kvm in L1"; exit 1; }
img=$(lab_guest_img /tmp/guest.img) || exit 1
lab_failover_net 10.0.8.1/24 2 tap0 tap1 || exit 1
pf=$LAB_PF vf0=${LAB_VFS[0]} vf1=${LAB_VFS[1]}
say "PF $pf and tap0, tap1 in br0 10.0.8.1; VF0 $vf0 (source), VF1 $vf1 (destinations)"

CTL_OUT=$OUT/ctl.out
ctl() { "$B" ctl "$@" > "$CTL_OUT" 2>&1; CST=$?; sed 's/^/    | /' "$CTL_OUT"; }
vf_irqs() { lab_irq_count "vfio-msix.*$vf0"; }
last_tick() { lab_ticks_of "$LAB_GUEST_LOG" | tail -n1 | cut -d' ' -f2; }
ejects() { grep -c 'migration: asked the guest to eject' "$LAB_GUEST_LOG"; }

# a destination in the background (pid in dst_pid; log in dst_log): NAME [--vf SPEC]
start_dst() {
	dst_log=/tmp/lab-l2/mf-dst-$1.log
	shift
	"$B" -v --api "$SD" --incoming "$URI" --mem "${MEM}M" --cpus 2 --readonly \
		--net "tap=tap1,mac=$MAC,failover=on" "$@" -c "$CMDLINE" "$img" > "$dst_log" 2>&1 < /dev/null &
	dst_pid=$!
	for _ in $(seq 100); do
		grep -q 'waiting for a migration' "$dst_log" && return 0
		kill -0 "$dst_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# the destination ended (or is killed after 30 s): its status in dst_rc; it must not have run the guest
end_dst() {
	for _ in $(seq 150); do kill -0 "$dst_pid" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$dst_pid" 2>/dev/null
	wait "$dst_pid"
	dst_rc=$?
	cp "$dst_log" "$LAB_RESULTS/"
	grep -q '^LAB-TICK\|migration received in' "$dst_log" && fail "[$1] the destination ran the guest"
}
# migrate in the background (pid in mig_pid, output in $OUT/mig.out): ARGS...
mig_bg() {
	"$B" ctl "$S" migrate "$URI" "$@" > "$OUT/mig.out" 2>&1 &
	mig_pid=$!
}
mig_wait() {
	wait "$mig_pid"
	CST=$?
	sed 's/^/    | /' "$OUT/mig.out"
	cp "$OUT/mig.out" "$CTL_OUT"
}
# mig_state_is STATE [MIN_BYTES]: the source's status says a migration in STATE
mig_state_is() {
	"$B" ctl --json "$S" status > "$OUT/st.json" 2>/dev/null || return 1
	python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))["return"].get("migration") or {}
sys.exit(0 if m.get("state") == sys.argv[2] and m.get("bytes", 0) >= int(sys.argv[3]) else 1)' \
		"$OUT/st.json" "$1" "${2:-0}"
}
wait_state() {
	local i
	for ((i = 0; i < 300; i++)); do
		mig_state_is "$@" && return 0
		kill -0 "$mig_pid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# --- guest 1 ------------------------------------------------------------------
CMDLINE="console=ttyS0 root=/dev/vda lab.cmd=tick-test lab.fo=1 lab.ip=10.0.8.2/24 lab.server=10.0.8.1 lab.ticks=400"
# the fault runs once the last one's VF carries ticks again; NAME of the fault
# waiting for that (empty: none), the tick it ended after
fault=0 wait_name="" ended_at="" ej0=0 irq0=0
vf_back() {
	local t
	t=$(last_tick)
	if lab_ticks_of "$LAB_GUEST_LOG" | awk -v a="$ended_at" '$2 > a' | grep -q ' via=[^s]'; then
		back=$(lab_ticks_of "$LAB_GUEST_LOG" | awk -v a="$ended_at" '$2 > a' | grep -m1 ' via=[^s]' | cut -d' ' -f2)
		sleep 3
		if [ $(($(vf_irqs) - irq0)) -gt 0 ]; then
			pass "[$wait_name] the guest ticks on at the source, via VF0 again from tick $back (it ended after tick $ended_at; VF0's interrupts rise)"
		else
			fail "[$wait_name] VF0 enslaved again but it took no interrupt"
		fi
		lab_result "faults_${wait_name}_ticks_until_vf" "$((back - ended_at))"
		wait_name=""
		return 0
	fi
	[ "$t" -lt $((ended_at + 40)) ] && return 1
	fail "[$wait_name] 40 ticks after it the VF carries no tick: $(lab_ticks_of "$LAB_GUEST_LOG" | tail -n1)"
	wait_name=""
	return 0
}
# after a fault: NAME; the VF must be back
ended() {
	wait_name=$1 ended_at=$(last_tick) irq0=$(vf_irqs)
	lab_result "faults_${1}_ctl" "\"$(grep -m1 '^minivmm ctl: ' "$CTL_OUT" | tr -d '"' | cut -c1-300)\""
}
drive1() {
	if [ -n "$wait_name" ]; then
		vf_back || return 0
	fi
	[ "$fault" = 0 ] && { lab_ticks_of "$LAB_GUEST_LOG" | grep -q ' via=[^s]' || return 0; }
	fault=$((fault + 1))
	ej0=$(ejects)
	case $fault in
	1)
		# the source's own VF: the destination cannot have it
		if start_dst novf --vf "$vf0,failover=on"; then
			fail "[novf] a destination started with the source's VF0"
		else
			pass "[novf] a destination given VF0 (held by the source) does not start: $(grep -m1 'error: ' "$dst_log" | tr -d '\r' | cut -c1-200)"
		fi
		end_dst novf
		[ "$dst_rc" != 0 ] && grep -q 'cannot open /dev/vfio/.*busy' "$dst_log" ||
			fail "[novf] the destination: exit $dst_rc, no 'busy' group error"
		ctl "$S" migrate "$URI"
		[ $CST = 1 ] && grep -q 'failed while connecting' "$CTL_OUT" && [ "$(ejects)" = "$ej0" ] &&
			pass "[novf] ctl migrate exits 1, failed while connecting; VF0 never left the guest" ||
			fail "[novf] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
		ended novf
		;;
	2)
		# accepts, says nothing
		python3 -c 'import socket,sys,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); c, _ = s.accept(); time.sleep(30)' "$PORT" &
		local mute=$!
		for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$PORT " && break; sleep 0.1; done
		ctl "$S" migrate "$URI"
		kill "$mute" 2>/dev/null
		wait "$mute" 2>/dev/null
		[ $CST = 1 ] && grep -q 'failed while connecting: no answer from the destination' "$CTL_OUT" && [ "$(ejects)" = "$ej0" ] &&
			pass "[mute] a destination that never answers: failed while connecting; VF0 never left the guest" ||
			fail "[mute] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
		ended mute
		;;
	3)
		start_dst cancel --vf "$vf1,failover=on" || fail "[cancel] the destination did not start"
		mig_bg --bandwidth 40
		if wait_state pre-copy 4000000; then
			ctl "$S" migrate-cancel
			[ $CST = 0 ] || fail "[cancel] migrate-cancel: exit $CST"
		else
			fail "[cancel] the migration never reached pre-copy"
		fi
		mig_wait
		[ $CST = 1 ] && grep -q 'rolled back while pre-copy: cancelled (migrate-cancel); vf0 plugged back; the VM runs on here' "$CTL_OUT" &&
			pass "[cancel] migrate-cancel during pre-copy: rolled back, vf0 plugged back" ||
			fail "[cancel] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
		end_dst cancel
		[ "$dst_rc" != 0 ] && pass "[cancel] the destination gave up (exit $dst_rc) without running the guest" ||
			fail "[cancel] the destination exited 0"
		ended cancel
		;;
	4)
		start_dst killed --vf "$vf1,failover=on" || fail "[killed] the destination did not start"
		mig_bg --bandwidth 40
		if wait_state pre-copy 4000000; then
			kill -KILL "$dst_pid"
			say "[killed] the destination killed during pre-copy"
		else
			fail "[killed] the migration never reached pre-copy"
		fi
		mig_wait
		[ $CST = 1 ] && grep -q 'rolled back while pre-copy: .*vf0 plugged back; the VM runs on here' "$CTL_OUT" &&
			pass "[killed] destination killed during pre-copy: rolled back, vf0 plugged back" ||
			fail "[killed] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
		end_dst killed
		ended killed
		;;
	5)
		start_dst cut --vf "$vf1,failover=on" || fail "[cut] the destination did not start"
		python3 "$LAB_SRCDIR/tests/mig_cut_proxy.py" $((PORT + 1)) 127.0.0.1 "$PORT" > "$OUT/proxy.out" 2>&1 &
		local proxy=$!
		for _ in $(seq 100); do grep -q 'listening' "$OUT/proxy.out" && break; sleep 0.1; done
		ctl "$S" migrate "tcp:127.0.0.1:$((PORT + 1))"
		wait "$proxy"
		local prc=$?
		cat "$OUT/proxy.out"
		[ $prc = 0 ] && pass "[cut] $(grep 'cut at' "$OUT/proxy.out")" || fail "[cut] the proxy found no device state to cut"
		[ $CST = 1 ] && grep -Eq 'rolled back while (transferring|awaiting the destination): .*vf0 plugged back; the VM runs on here' "$CTL_OUT" &&
			pass "[cut] the connection cut in the device state: rolled back, the guest resumed, vf0 plugged back" ||
			fail "[cut] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
		end_dst cut
		[ "$dst_rc" != 0 ] && grep -q 'refused' "$dst_log" &&
			pass "[cut] the destination refused the truncated stream: $(grep -m1 'refused' "$dst_log" | tr -d '\r' | cut -c1-200)" ||
			fail "[cut] the destination: exit $dst_rc, $(tail -n2 "$dst_log" | tr '\n' ' ')"
		ended cut
		;;
	*)
		# all done: stop the guest
		"$B" ctl "$S" quit > /dev/null 2>&1
		fault=99
		;;
	esac
	return 0
}
# env_retry NAME LOG RC0: the lab's policy (docs/lab.md, "Guest runs"): an
# L2 triple fault is the environment's, and the guest's run goes again, at
# most twice in the test, loudly (its log kept, counted); what the failed
# try reported is dropped. (Once was not enough on 2026-12-03: guest 1
# triple-faulted in two boots in a row, 2.1 and 7.8 s into its kernel.)
# True when it should run again.
env_tries=0
env_retry() {
	grep -q 'triple fault' "$2" || return 1
	[ "$env_tries" -lt 2 ] || return 1
	env_tries=$((env_tries + 1))
	cp "$2" "$2.try$env_tries"
	lab_result "faults_env_retry_$env_tries" "\"$1: L2 triple fault ($(grep -m1 'exception injected' "$2" | tr -d '\r' | sed 's/.*: exception/exception/'))\""
	say "WARNING: [$1] the guest triple-faulted (environmental, docs/lab.md): its run goes again (log kept as $2.try$env_tries)"
	kill "${dst_pid:-}" 2>/dev/null
	rc=$3
	return 0
}
rc0=$rc
while :; do
	fault=0 wait_name=""
	LAB_GUEST_HOOK=drive1
	LAB_L2_TIMEOUT=700 lab_guest_run faults "$LAB_RESULTS/l2-mf-source.log" "$B" -v --api "$S" --mem "${MEM}M" --cpus 2 --readonly \
		--net "tap=tap0,mac=$MAC,failover=on" --vf "$vf0,failover=on" -c "$CMDLINE" "$img"
	LAB_GUEST_HOOK=""
	[ "$fault" != 99 ] && env_retry guest1 "$LAB_RESULTS/l2-mf-source.log" "$rc0" || break
done
[ "$fault" = 99 ] || fail "guest 1: the faults stopped at $fault (wait_name=$wait_name)"
[ "$LAB_GUEST_RC" = 0 ] && pass "guest 1's VMM exited 0 (ctl quit)" || fail "guest 1's VMM: exit $LAB_GUEST_RC ${LAB_GUEST_STOP:+(stopped: $LAB_GUEST_STOP)}"
crash=$(lab_crash_line "$LAB_RESULTS/l2-mf-source.log")
[ -z "$crash" ] || fail "guest 1: $crash"
lost=$(lab_ticks_of "$LAB_RESULTS/l2-mf-source.log" | grep -c 'ping=lost')
lab_result faults_guest1_pings_lost "$lost"
lab_result faults_guest1_ticks "$(lab_ticks_of "$LAB_RESULTS/l2-mf-source.log" | wc -l)"

# --- guest 2: it never ejects -------------------------------------------------------
CMDLINE="console=ttyS0 root=/dev/vda lab.cmd=failover-test lab.ip=10.0.8.2/24 lab.server=10.0.8.1 lab.fo_mode=ignore-eject lab.fo_secs=60"
step=0
drive2() {
	local before
	[ $step = 0 ] && grep -q LAB-FO-PING-START "$LAB_GUEST_LOG" || return 0
	step=1
	start_dst unplug-cancel --vf "$vf1,failover=on" || fail "[unplug-cancel] the destination did not start"
	# 6. cancel while the source waits for the eject (a deadline far beyond
	# the test's reading of the state: the cancel must not race it)
	mig_bg --unplug-timeout 120000
	if wait_state unplugging; then
		sleep 1
		ctl "$S" migrate-cancel
	else
		fail "[unplug-cancel] the migration never reached unplugging"
	fi
	mig_wait
	[ $CST = 1 ] && grep -Eq '(failed|rolled back) while unplugging: cancelled \(migrate-cancel\) before the guest ejected vf0' "$CTL_OUT" &&
		pass "[unplug-cancel] migrate-cancel while waiting for the eject: rolled back" ||
		fail "[unplug-cancel] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
	lab_result faults_unplug_cancel_ctl "\"$(grep -m1 '^minivmm ctl: ' "$CTL_OUT" | tr -d '"' | cut -c1-300)\""
	# the source's cancel closed the connection: that destination gives up
	# without running the guest. It is waited for, not raced: "still
	# alive, so reuse it" lost to its exit in CI (2026-12-03, the next
	# migrate's connection refused)
	end_dst unplug-cancel
	[ "$dst_rc" != 0 ] && pass "[unplug-cancel] the destination gave up (exit $dst_rc) without running the guest" ||
		fail "[unplug-cancel] the destination exited 0"
	# 7. the deadline, to a fresh destination
	start_dst noeject --vf "$vf1,failover=on" || fail "[noeject] the destination did not start"
	before=$(vf_irqs)
	ctl "$S" migrate "$URI"
	[ $CST = 1 ] && grep -Eq '(failed|rolled back) while unplugging: .*eject' "$CTL_OUT" &&
		pass "[noeject] a guest that never ejects: ctl migrate fails at the unplug deadline" ||
		fail "[noeject] ctl migrate: exit $CST, $(tr '\n' ' ' < "$CTL_OUT")"
	lab_result faults_noeject_ctl "\"$(grep -m1 '^minivmm ctl: ' "$CTL_OUT" | tr -d '"' | cut -c1-300)\""
	"$B" ctl --json "$S" devices > "$OUT/dev.json"
	python3 -c 'import json,sys
d = {x["id"]: x for x in json.load(open(sys.argv[1]))["return"]["devices"]}
assert d["vf0"]["failover"]["state"] == "plugged" and d["vf0"]["address"] != "-", d["vf0"]' "$OUT/dev.json" &&
		pass "[noeject] vf0 is still plugged" || fail "[noeject] vf0 is gone: $(cat "$OUT/dev.json")"
	sleep 3
	[ $(($(vf_irqs) - before)) -gt 0 ] && pass "[noeject] VF0 still takes interrupts" || fail "[noeject] VF0 took no interrupt"
	kill "$dst_pid" 2>/dev/null
	end_dst noeject
	step=2
}
rc0=$rc
while :; do
	step=0
	LAB_GUEST_HOOK=drive2
	LAB_L2_TIMEOUT=500 lab_guest_run noeject "$LAB_RESULTS/l2-mf-noeject.log" "$B" -v --api "$S" --mem "${MEM}M" --cpus 2 --readonly \
		--net "tap=tap0,mac=$MAC,failover=on" --vf "$vf0,failover=on" -c "$CMDLINE" "$img"
	LAB_GUEST_HOOK=""
	[ "$step" != 2 ] && env_retry guest2 "$LAB_RESULTS/l2-mf-noeject.log" "$rc0" || break
done
lab_result faults_env_retries "$env_tries"
[ $step = 2 ] || fail "guest 2: stopped at step $step"
verdict=$(lab_guest_verdict minivmm "$LAB_RESULTS/l2-mf-noeject.log")
[ "$verdict" = ok ] || fail "guest 2: $verdict"
n=$(tr -d '\r' < "$LAB_RESULTS/l2-mf-noeject.log" | sed -n 's/.*LAB-FO-PING \([0-9]*\) received via=\(.*\)/\1 \2/p')
lab_result faults_noeject_pings "\"$n\""
set -- $n
[ "${1:-0}" -ge 100 ] && [ -n "${2:-}" ] && pass "[noeject] the guest's pings over the VF ($2) answered: $1 of 120" ||
	fail "[noeject] the guest's pings: '$n'"

[ $rc = 0 ] && echo "test-migrate-faults: PASS" || echo "test-migrate-faults: FAILED"
exit $rc
