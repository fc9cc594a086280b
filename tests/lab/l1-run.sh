#!/bin/bash
# Runs inside L1 (started by L1's /init, see guest-images/lab/build-l1.sh):
# sets up the environment and runs the script tests/lab/lab.sh was given.
# Not meant to be run by hand.
set -u
meta=/run/lab/.lab
. "$meta/env.sh"
export LAB_RESULTS=/run/lab
export LAB_LIB=$meta/l1-lib.sh
export TMPDIR=/tmp
ip link set lo up
# the heartbeat: L1's uptime on ttyS0 (fd 7, left open by L1's /init) every
# 30 s. The script's output goes to hvc0, so lab.sh can tell an L1 whose UART
# stopped transmitting (heartbeats end, the script goes on) from a stuck
# script (its output ends, heartbeats go on)
if [ -e /proc/self/fd/7 ]; then
	(
		while :; do
			echo "lab-l1: heartbeat uptime=$(cut -d' ' -f1 /proc/uptime)" >&7
			sleep 30
		done
	) &
	exec 7>&-
fi
# two hosts (lab.sh --hosts 2): the directory both L1s share
if [ -n "${LAB_PAIR:-}" ]; then
	mkdir -p "$LAB_PAIR"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none labpair "$LAB_PAIR" ||
		echo "lab-l1: cannot mount the labpair 9p share"
fi
# L1's text symbols, for lab.sh's report when L1 hangs (Debian's System.map
# is a stub)
# (written whole, then renamed: lab.sh waits for it)
(grep -E '^[0-9a-f]+ [tTwW] |^[0-9a-f]+ [dDbB] jiffies_64$' /proc/kallsyms > "$meta/kallsyms.tmp" 2>/dev/null &&
	mv "$meta/kallsyms.tmp" "$meta/kallsyms") &
# SysRq for lab.sh's hang report (show blocked tasks: 'w')
echo 1 > /proc/sys/kernel/sysrq
# no udev in L1: load drivers for the PCI devices present (igb, ...) and
# what the lab always uses
for a in /sys/bus/pci/devices/*/modalias; do
	modprobe -q "$(cat "$a")" 2>/dev/null
done
modprobe -a kvm_amd tun bridge vhost_net 2>/dev/null
script=$(cat "$meta/script")
args=()
while IFS= read -r -d '' a; do args+=("$a"); done < "$meta/args"
cd "$LAB_RESULTS" || exit 125
echo "lab-l1: running $script ${args[*]}"
bash "$script" "${args[@]}"
rc=$?
echo "$rc" > "$meta/rc"
sync
exit "$rc"
