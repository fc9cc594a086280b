#!/bin/bash
# The nested lab's entry point.
#
#   tests/lab/lab.sh setup                 install packages (root, apt)
#   tests/lab/lab.sh build                 build/refresh L1 and guest.img
#   tests/lab/lab.sh run [opts] SCRIPT [ARGS...]
#       --results DIR   where results go (default: ./lab-results/<time>)
#       --timeout S     wall-clock limit for the whole run (default 1500)
#       --hosts 2       two L1s ("hosts" a and b) running SCRIPT at once (below)
#
# "run" builds what is missing (cached), boots L1 (QEMU TCG, nested KVM,
# intel-iommu, igb SR-IOV NIC) with this
# machine's root filesystem as its userland and runs SCRIPT with bash inside
# L1. L1 has two consoles, both streamed with the prefix "[L1] ": the
# script's output goes to a virtio console (hvc0), saved to
# DIR/l1-console.log; the kernel prints on the serial port (ttyS0), saved to
# DIR/l1-serial.log with a heartbeat line every 30 s (not streamed). A
# serial port that stops transmitting (an emulated 16550 whose transmit
# interrupt is lost blocks every writer to its tty) then neither blocks the
# script nor hides its output, and lab.sh says when it happened: the serial
# heartbeats end while the script's output goes on. Inside L1, $LAB_RESULTS is DIR (a read-write 9p share):
# whatever the script writes there is here afterwards. Environment variables
# named LAB_* and MINIVMM_* are passed into L1. The exit status is the
# script's; 124 on timeout, 125 when L1 failed before the script ran.
# QEMU is always killed on exit, on a signal or on timeout.
#
# L1 hangs or dies now and then (TCG; seen: in CI both L1 vCPUs silent for
# 25 minutes while an L2 guest booted; here L1 reset silently, twice, while
# an L2 guest started; QEMU's -d cpu_reset log, kept as
# DIR/l1-qemu-debug.tryN.log, says whether that was a triple fault;
# LAB_QEMU_DEBUG replaces cpu_reset with other -d items, e.g. int,cpu_reset
# to log every exception of L1 and of its guests: the log stays in
# DIR/.lab/qemu-debug.log). A watchdog kills L1 when its console has been silent for
# LAB_L1_STALL seconds (300) and saves its vCPU state through QEMU's monitor
# (DIR/l1-hang.tryN.txt, RIPs named from L1's kallsyms, whether L1's
# jiffies still advance, and the blocked tasks from SysRq 9 then w: L1 runs
# with loglevel=3, which would keep SysRq w's task dump off the console).
# When L1 is alive and idle (its clock runs, every vCPU in the idle loop, no
# task blocked on 9p, no vCPU halted on an interrupt its local APIC holds
# but L0 did not deliver: tests/lab/l1-hang-kind.py), L1 is not hung: the
# script (or a VMM it runs) is stuck, and the run fails (status 1) without
# another boot. A hung L1, or one
# that ended without the script's status, is booted again, up to
# LAB_L1_TRIES boots (3) while at least LAB_L1_MIN_LEFT seconds (420) of the
# limit remain. results.txt gets lab_l1_retries=N.
#
# --hosts 2 (two-host tests, docs/lab.md "Two hosts"): L1 "a" and L1 "b" boot
# together, each with its own igb PF; the two igb ports are joined into one
# Ethernet segment (QEMU dgram netdevs on L0's loopback), and both see
# guest.img in the lab cache (the read-only hostroot share). SCRIPT runs in
# both with LAB_HOST=a or b; a's results are DIR, b's DIR/host-b, and
# DIR/pair is mounted in both at $LAB_PAIR for the two scripts to meet
# (files). The run's status is a's, or b's when a's is 0; b gets
# LAB_PAIR_GRACE seconds (120) after a ends. An L1 that hangs or ends
# without its script's status boots both again (the same tries).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
RECIPES="$SRCDIR/guest-images/lab"
# shellcheck source=guest-images/lab/common.sh
. "$RECIPES/common.sh"
export MINIVMM_LAB_CACHE=$LAB_CACHE
QEMU=${LAB_QEMU:-qemu-system-x86_64}
qpid="" tpid="" bpid=""
# the two hosts' dgram ports on L0's loopback (--hosts 2)
pair_port=$((20000 + ($$ % 20000) * 2))

say() { echo "lab: $*" >&2; }

# lab_check_host: exit 77 (skip) with a reason when this host cannot run L1
check_host() {
	local v
	if ! command -v "$QEMU" >/dev/null 2>&1; then
		say "SKIP: $QEMU not installed (run: sudo $RECIPES/setup-host.sh)"
		exit 77
	fi
	v=$("$QEMU" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
	if [ "${v:-0}" -lt 10 ]; then
		say "SKIP: $QEMU is version $v; the lab needs >= 10 for igb (run: sudo $RECIPES/setup-host.sh)"
		exit 77
	fi
	for t in busybox mke2fs cpio depmod modprobe iperf3 ip; do
		command -v $t >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v $t >/dev/null 2>&1 || {
			say "SKIP: $t missing (run: sudo $RECIPES/setup-host.sh)"
			exit 77
		}
	done
}

do_build() {
	"$RECIPES/build-l1.sh" >/dev/null || return 1
	"$RECIPES/build-guest.sh" >/dev/null || return 1
}

# prepare_meta RESULTS SCRIPT HOST ARGS...: RESULTS/.lab, what l1-run.sh reads
# (HOST: "" for a single L1, a or b for two)
prepare_meta() {
	local results=$1 script=$2 host=$3 meta="$1/.lab" a v
	shift 3
	# a run starts from clean results: results.txt is appended to by the script
	rm -rf "$meta" "$results/l1-console.log" "$results/l1-serial.log" "$results/results.txt"
	mkdir -p "$meta"
	cp "$HERE/l1-run.sh" "$HERE/l1-lib.sh" "$meta/"
	# the script's arguments, NUL-separated
	: > "$meta/args"
	for a in "$@"; do printf '%s\0' "$a" >> "$meta/args"; done
	echo "$script" > "$meta/script"
	{
		for v in $(compgen -e | grep -E '^(LAB|MINIVMM)_' || true); do
			printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'export LAB_SRCDIR=%q\n' "$SRCDIR"
		printf 'export LAB_HOST_RESULTS=%q\n' "$results"
		if [ -n "$host" ]; then
			printf 'export LAB_HOST=%s\n' "$host"
			printf 'export LAB_PAIR=/run/lab-pair\n'
		fi
	} > "$meta/env.sh"
}

do_run() {
	local results="" timeout=1500 hosts=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--results) results=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--hosts) hosts=$2; shift 2 ;;
		--) shift; break ;;
		-*) say "unknown option $1"; exit 2 ;;
		*) break ;;
		esac
	done
	[ $# -ge 1 ] || { say "usage: lab.sh run [--results DIR] [--timeout S] [--hosts 1|2] SCRIPT [ARGS...]"; exit 2; }
	case "$hosts" in 1 | 2) ;; *) say "--hosts: 1 or 2, not $hosts"; exit 2 ;; esac
	local script
	script=$(realpath "$1") || exit 2
	shift
	[ -f "$script" ] || { say "no such script: $script"; exit 2; }
	check_host
	do_build || { say "building the lab images failed"; exit 125; }
	local l1="$MINIVMM_LAB_CACHE/l1"

	[ -n "$results" ] || results="$PWD/lab-results/$(date +%Y%m%d-%H%M%S)"
	mkdir -p "$results" || exit 2
	results=$(realpath "$results")
	case "$results" in
	/run/*|/proc/*|/sys/*|/dev/*) say "results dir cannot be under /run, /proc, /sys, /dev"; exit 2 ;;
	esac
	prepare_meta "$results" "$script" "$([ "$hosts" = 2 ] && echo a)" "$@"
	if [ "$hosts" = 2 ]; then
		rm -rf "$results/pair" "$results/host-b"
		mkdir -p "$results/pair" "$results/host-b"
		prepare_meta "$results/host-b" "$script" b "$@"
	fi

	local t0 secs rc try=1 tries=${LAB_L1_TRIES:-3} left what gave_up=0
	qpid="" tpid=""
	trap 'cleanup; exit 130' INT
	trap 'cleanup; exit 143' TERM HUP
	trap 'cleanup' EXIT
	t0=$(date +%s)
	say "L1: kernel $(cat "$l1/kver"), results in $results, timeout ${timeout}s"
	while :; do
		left=$((timeout - ($(date +%s) - t0)))
		if [ "$hosts" = 2 ]; then
			run_pair "$l1" "$results" "$left" "$try"
		else
			run_l1 "$l1" "$results" "$left" "$try"
		fi
		rc=$?
		# L1 hung (126: no console output for LAB_L1_STALL seconds) or
		# died before the script finished (125: seen once, L1 reset
		# silently while an L2 guest started): another L1 boot when tries
		# and time are left, the failed one kept
		[ "$rc" = 126 ] || [ "$rc" = 125 ] || break
		what=hung
		[ "$rc" = 125 ] && what="ended without the script's status"
		left=$((timeout - ($(date +%s) - t0)))
		if [ "$try" -ge "$tries" ] || [ "$left" -lt "${LAB_L1_MIN_LEFT:-420}" ]; then
			say "L1 $what on try $try of $tries, ${left}s left: giving up"
			[ "$rc" = 126 ] && rc=124 gave_up=1
			break
		fi
		local f d
		for d in "$results" "$results/host-b"; do
			for f in l1-console.log l1-serial.log results.txt; do
				[ -f "$d/$f" ] && mv "$d/$f" "$d/$f.try$try"
			done
		done
		if [ "$hosts" = 2 ]; then
			rm -rf "$results/pair.try$try"
			mv "$results/pair" "$results/pair.try$try"
			mkdir -p "$results/pair"
		fi
		say "WARNING: L1 $what on try $try (console kept as l1-console.log.try$try): booting L1 again (${left}s left)"
		try=$((try + 1))
	done
	echo "lab_l1_retries=$((try - 1))" >> "$results/results.txt"
	secs=$(($(date +%s) - t0))
	case "$rc" in
	123) say "FAILED after ${secs}s: the script went silent for ${LAB_L1_STALL:-300}s while L1 idled (not retried: a stuck test or VMM, not the environment)"
		rc=1 ;;
	124) if [ "$gave_up" = 1 ]; then
		say "gave up after ${secs}s: L1 hung on each of its $try boots (status 124)"
	else
		say "TIMEOUT after ${secs}s (limit ${timeout}s)"
	fi ;;
	125) say "L1 ended after ${secs}s without the script's status" ;;
	*) say "L1 finished in ${secs}s; script exit status $rc" ;;
	esac
	return "$rc"
}

cleanup() {
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	bpid=""
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && sleep 1 && kill -9 "$qpid" 2>/dev/null
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null
	qpid=""; tpid=""
}

# l1_hang_report SOCK SYMS [nosysrq]: L1's vCPU and interrupt controller
# state (PIC/IOAPIC, each CPU's local APIC: a vector stuck in service blocks
# the lower ones) through QEMU's monitor (HMP), RIPs named from SYMS (L1's
# /proc/kallsyms, saved by l1-run.sh); then SysRq 9 and w unless nosysrq
l1_hang_report() {
	python3 - "$1" "$2" "${3:-}" <<'PY'
import bisect, os, re, socket, sys, time
sock, smap, mode = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sock)
def reply():
    out = b""
    end = time.time() + 10
    while time.time() < end and not out.rstrip().endswith(b"(qemu)"):
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode(errors="replace")).replace("\r", "")
    lines = text.split("\n")[1:]  # the monitor echoes the command first
    return "\n".join(l for l in lines if l.strip() != "(qemu)")
reply()
rips = []
for c in ("info status", "info cpus", "info registers -a", "info pic", "info irq",
          "cpu 0", "info lapic", "cpu 1", "info lapic"):
    s.sendall(c.encode() + b"\n")
    r = reply()
    print("### " + c + "\n" + r)
    rips += re.findall(r"^RIP=([0-9a-f]+)", r, re.M)
syms = []
jiffies = None
if os.path.exists(smap):
    for line in open(smap):
        f = line.split()
        if len(f) >= 3 and f[1] in "tTwW" and f[0] != "ffffffffffffffff":
            syms.append((int(f[0], 16), f[2] + (" " + f[3] if len(f) > 3 else "")))
        elif len(f) >= 3 and f[2] == "jiffies_64":
            jiffies = f[0]
    syms.sort()
# L1's clock: does jiffies_64 advance? (a lost timer interrupt leaves every
# vCPU halted forever: idle, yet hung)
if jiffies:
    vals = []
    for i in range(2):
        s.sendall(("x /1gx 0x%s\n" % jiffies).encode())
        m = re.search(r":\s*(0x[0-9a-f]+)", reply())
        vals.append(int(m.group(1), 16) if m else None)
        if i == 0:
            time.sleep(3)
    print("### jiffies_64 %s %s" % tuple("?" if v is None else str(v) for v in vals))
# the local APICs again, seconds after the first dump: an interrupt a halted
# vCPU never takes is still pending here, a passing one is gone
# (tests/lab/l1-hang-kind.py reads both)
for c in ("cpu 0", "info lapic", "cpu 1", "info lapic"):
    s.sendall(c.encode() + b"\n")
    r = reply()
    print("### again: " + c + "\n" + r)
# the tasks blocked in L1 (SysRq w, onto L1's serial console); SysRq 9 first:
# at L1's loglevel=3 the task dump (KERN_INFO) would not reach the console
if mode != "nosysrq":
    s.sendall(b"sendkey alt-sysrq-9\n")
    reply()
    time.sleep(0.5)
    s.sendall(b"sendkey alt-sysrq-w\n")
    reply()
    # twice, seconds apart: a task blocked on 9p in both is a 9p hang, one
    # caught in a single RPC is not (tests/lab/l1-9p-blocked.py)
    time.sleep(4)
    s.sendall(b"sendkey alt-sysrq-w\n")
    reply()
if syms:
    addrs = [a for a, _ in syms]
    print("### RIPs by symbol (%s)" % smap)
    for i, r in enumerate(rips):
        v = int(r, 16)
        k = bisect.bisect_right(addrs, v) - 1
        name = "%s+0x%x" % (syms[k][1], v - syms[k][0]) if k >= 0 else "?"
        print("CPU#%d RIP %s = %s" % (i, r, name))
PY
}

# l1_silence_kind REPORT CONSOLE: why L1 went silent, from the hang report
# and the SysRq w dump on L1's serial console:
#   clock  L1's jiffies did not advance (a lost timer: L1 hung)
#   9p     a task is blocked in the 9p client (the lab's shared file systems)
#          in both of the report's two SysRq w dumps (l1-9p-blocked.py)
#   lapic  a vCPU halted with interrupts enabled while its local APIC holds a
#          deliverable vector: L0's emulation lost the wakeup (l1-hang-kind.py),
#          so L1 hung, whatever its clock says
#   busy   a vCPU is outside L1's idle loop (a livelock such as read_hpet)
#   stuck  L1 is alive and idle, its clock runs, nothing waits on 9p: the
#          script or a VMM it runs is stuck (an L2 hang is caught in L1 by
#          lab_guest_run within LAB_L2_STALL, so this is not one)
l1_silence_kind() {
	local n idle j
	j=$(sed -n 's/^### jiffies_64 //p' "$1")
	if [ -n "$j" ] && [ "${j% *}" = "${j#* }" ]; then
		echo clock
		return
	fi
	if [ -n "$(python3 "$HERE/l1-9p-blocked.py" "$2" 2>/dev/null)" ]; then
		echo 9p
		return
	fi
	if [ -n "$(python3 "$HERE/l1-hang-kind.py" "$1" 2>/dev/null)" ]; then
		echo lapic
		return
	fi
	n=$(grep -c '^CPU#[0-9]* RIP ' "$1")
	idle=$(grep -Ec '^CPU#[0-9]* RIP [0-9a-f]+ = (native_safe_halt|default_idle|arch_cpu_idle|acpi_idle|cpu_idle|do_idle|mwait_idle|poll_idle|acpi_safe_halt|default_idle_call|cpuidle_enter|halt)' "$1")
	if [ "$n" -gt 0 ] && [ "$n" = "$idle" ]; then echo stuck; else echo busy; fi
}

# run_pair L1DIR RESULTS SECS TRY: L1 a (RESULTS) and L1 b (RESULTS/host-b)
# at once; a's status, or b's when a's is 0 (126 or 125 from either: boot both
# again). b is given LAB_PAIR_GRACE seconds (120) to end after a.
run_pair() {
	local l1=$1 results=$2 secs=$3 try=$4 rca rcb="" i grace=${LAB_PAIR_GRACE:-120}
	rm -f "$results/pair/.b-status"
	(
		qpid="" tpid="" bpid=""
		trap 'cleanup' EXIT
		trap 'cleanup; exit 143' TERM
		run_l1 "$l1" "$results/host-b" "$secs" "$try" b
		echo $? > "$results/pair/.b-status"
	) &
	bpid=$!
	run_l1 "$l1" "$results" "$secs" "$try" a
	rca=$?
	for ((i = 0; i < grace; i++)); do
		[ -f "$results/pair/.b-status" ] && break
		sleep 1
	done
	if [ ! -f "$results/pair/.b-status" ]; then
		say "L1 b still runs ${grace}s after L1 a ended (status $rca): stopping it"
		kill "$bpid" 2>/dev/null
	fi
	wait "$bpid" 2>/dev/null
	bpid=""
	rcb=$(cat "$results/pair/.b-status" 2>/dev/null || echo 1)
	say "L1 a: status $rca; L1 b: status $rcb"
	case "$rca:$rcb" in
	126:* | *:126) return 126 ;;
	125:* | *:125) return 125 ;;
	esac
	[ "$rca" != 0 ] && return "$rca"
	return "$rcb"
}

# run_l1 L1DIR RESULTS SECS TRY: one L1 boot running the script; its status,
# 124 on timeout, 125 when L1 ended without the script's status, 126 when
# L1's console was silent for LAB_L1_STALL seconds (L1 hung; killed), 123
# when it was silent that long with every vCPU idle (the script is stuck)
run_l1() {
	local l1=$1 results=$2 secs=$3 try=$4 host=${5:-} meta="$2/.lab"
	local console="$results/l1-console.log" serial="$results/l1-serial.log" stall=${LAB_L1_STALL:-300}
	local sock rc size i last_size=-1 last_t now hung=0 net pair=() tag="[L1] "
	local ssize last_ssize=-1 last_st serial_warned=0 sstall=${LAB_L1_SERIAL_STALL:-120}
	# the igb's wire: user networking alone, or for two hosts one segment
	# (each L1 sends its frames to the other's dgram port on L0's loopback)
	case "$host" in
	"") net="user,id=n0" ;;
	a) net="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$pair_port,remote.type=inet,remote.host=127.0.0.1,remote.port=$((pair_port + 1))" ;;
	b) net="dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$((pair_port + 1)),remote.type=inet,remote.host=127.0.0.1,remote.port=$pair_port" ;;
	esac
	if [ -n "$host" ]; then
		pair=(-virtfs "local,path=${results%/host-b}/pair,mount_tag=labpair,security_model=none,multidevs=remap")
		tag="[L1$host] "
	fi
	sock=$(mktemp -u /tmp/lab-monitor.XXXXXX)
	: > "$console"
	: > "$serial"
	rm -f "$meta/rc" "$meta/kallsyms" "$meta/qemu-debug.log"
	timeout -k 10 "$secs" "$QEMU" \
		-accel tcg,thread=${LAB_TCG_THREAD:-multi} -machine q35 -cpu max -smp 2 -m 2G \
		-global q35-pcihost.pci-hole64-size=0 \
		-device intel-iommu,intremap=on,caching-mode=on \
		-netdev "$net" -device igb,netdev=n0,mac=52:54:00:1a:00:0$([ "$host" = b ] && echo 2 || echo 1) \
		-kernel "$l1/vmlinuz" -initrd "$l1/initramfs.cpio.gz" \
		-append "console=ttyS0 intel_iommu=on panic=-1 nokaslr ${LAB_L1_APPEND:-quiet loglevel=3}" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$results",mount_tag=lab,security_model=none,multidevs=remap "${pair[@]}" \
		-display none -monitor unix:"$sock",server=on,wait=off \
		-d "${LAB_QEMU_DEBUG:-cpu_reset}" -D "$meta/qemu-debug.log" \
		-device virtio-serial-pci,id=l1vser -chardev file,id=l1hvc,path="$console" \
		-device virtconsole,chardev=l1hvc,bus=l1vser.0 \
		-serial file:"$serial" -no-reboot \
		</dev/null >"$meta/qemu.log" 2>&1 &
	qpid=$!
	( tail -q -n +1 -F --pid="$qpid" "$serial" "$console" 2>/dev/null |
		sed -u -e '/^lab-l1: heartbeat /d' -e "s/^/$tag/" ) &
	tpid=$!
	# the watchdog: L1 and the scripts print all along (guest consoles
	# are streamed); a console silent for $stall seconds is a hung L1
	# (until the script's console has its first line, L1's boot on the
	# serial port counts)
	last_t=$(date +%s) last_st=$last_t
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 2
		now=$(date +%s)
		size=$(stat -c %s "$console" 2>/dev/null || echo 0)
		ssize=$(stat -c %s "$serial" 2>/dev/null || echo 0)
		if [ "$ssize" != "$last_ssize" ]; then
			last_ssize=$ssize last_st=$now
		elif [ "$serial_warned" = 0 ] && [ "$size" != 0 ] && [ $((now - last_st)) -ge "$sstall" ] &&
			[ $((now - last_t)) -lt 30 ]; then
			serial_warned=1
			say "WARNING: L1's serial console has been silent for ${sstall}s (no heartbeat) while the script's console goes on: L1's UART stopped transmitting (the lab's emulation); L1's interrupt state kept in l1-serial-stall.try$try.txt"
			{
				echo "L1 serial console silent since $(date -u -d "@$last_st" +%T) UTC (${sstall}s, no heartbeat);"
				echo "the script's console (virtio, hvc0) last grew at $(date -u -d "@$last_t" +%T) UTC."
				echo "last serial lines:"
				tail -n 5 "$serial"
				l1_hang_report "$sock" "$meta/kallsyms" nosysrq 2>&1
			} > "$results/l1-serial-stall.try$try.txt"
		fi
		[ "$size" = 0 ] && size=s$ssize
		if [ "$size" != "$last_size" ]; then
			last_size=$size
			last_t=$now
		elif [ $((now - last_t)) -ge "$stall" ] && [ ! -f "$meta/rc" ]; then
			say "L1 console silent for ${stall}s: L1 hung; its state goes to l1-hang.try$try.txt"
			# L1's symbols (l1-run.sh writes them in the background: a
			# script silent from its start can beat that under TCG)
			for ((i = 0; i < 30; i++)); do
				[ -f "$meta/kallsyms" ] && break
				sleep 1
			done
			l1_hang_report "$sock" "$meta/kallsyms" > "$results/l1-hang.try$try.txt" 2>&1
			sed -n '/^### info status/,/^### info registers/p;/^### RIPs/,$p' \
				"$results/l1-hang.try$try.txt" | grep -v '^### info registers' | sed 's/^/lab: /' >&2
			hung=1
			sleep 3 # the SysRq w dump reaches the console
			case $(l1_silence_kind "$results/l1-hang.try$try.txt" "$serial") in
			stuck)
				say "L1 console silent for ${stall}s with L1 alive (idle vCPUs, its clock running) and no task blocked on 9p: the script (or a VMM it runs) is stuck"
				hung=2 ;;
			9p) say "L1 console silent for ${stall}s: L1's tasks are blocked on its 9p file system (the lab's transport, not minivmm)" ;;
			clock) say "L1 console silent for ${stall}s: L1's clock stopped (jiffies did not advance): L1 hung" ;;
			lapic) say "L1 console silent for ${stall}s: L1 hung on a lost interrupt: $(python3 "$HERE/l1-hang-kind.py" "$results/l1-hang.try$try.txt" | sed 's/^lapic: //')" ;;
			esac
			kill "$qpid" 2>/dev/null
			break
		fi
	done
	wait "$qpid"
	rc=$?
	qpid=""
	wait "$tpid" 2>/dev/null
	tpid=""
	rm -f "$sock"
	if [ -s "$meta/qemu.log" ]; then
		sed 's/^/[qemu] /' "$meta/qemu.log" >&2
	fi
	[ "$hung" = 1 ] && return 126
	[ "$hung" = 2 ] && return 123
	[ "$rc" = 124 ] || [ "$rc" = 137 ] && return 124
	[ -f "$meta/rc" ] && return "$(cat "$meta/rc")"
	say "L1 ended (qemu status $rc) without the script's status"
	# QEMU logs "Triple fault" (-d cpu_reset) when L1 itself triple-faulted:
	# a silent L1 reset has no panic message on the console
	if grep -q 'Triple fault' "$meta/qemu-debug.log" 2>/dev/null; then
		say "QEMU says: L1 triple-faulted (log kept as l1-qemu-debug.try$try.log)"
	fi
	cp "$meta/qemu-debug.log" "$results/l1-qemu-debug.try$try.log" 2>/dev/null
	return 125
}

cmd=${1:-}
shift || true
case "$cmd" in
setup) exec "$RECIPES/setup-host.sh" "$@" ;;
build) check_host; do_build ;;
run) do_run "$@" ;;
*) sed -n '2,/^[^#]/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
