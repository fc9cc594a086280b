#!/bin/bash
# Build the lab's L2 guest disk image, guest.img (raw, one ext4 file system,
# no partition table), from Debian packages only.
#
#   guest-images/lab/build-guest.sh     (prints the image path)
#
# Output: ($MINIVMM_LAB_CACHE or /var/cache/minivmm-lab)/guest/guest.img
#
# Layout of the root file system:
#   /boot/vmlinuz       Debian's generic kernel (the same one as L1)
#   /boot/initrd.img    small busybox initramfs: loads virtio_pci, virtio_blk
#                       and ext4, mounts root= (default /dev/vda, read-only
#                       unless "rw" is given) and switch_roots to /sbin/init
#   /sbin/init          busybox sh script: mounts proc/sys/dev and tmpfs on
#                       /tmp /run, loads virtio_net and the VF driver for any
#                       VF present (igbvf, ixgbevf, iavf, mlx5_core), sets up
#                       eth0, prints "LAB-GUEST-READY", runs the lab command,
#                       prints "LAB-GUEST-RC=<status>" and powers off
#   /lib/modules/<ver>  those modules + depmod output
#   /bin/busybox, /usr/bin/iperf3 (+ its shared libraries), and
#   /usr/bin/sockperf when the host has it (Debian's sockperf; the bench's
#   latency figures, scripts/bench.sh)
#   /etc/lab/defaults   defaults for the kernel parameters below
#
# Kernel parameters read by /sbin/init (all optional):
#   lab.ip=10.0.3.2/24   eth0's address (none: eth0 is left down)
#   lab.gw=ADDR          default route
#   lab.server=10.0.3.1  peer for ping and iperf3
#   lab.cmd=net-test     what to run: net-test (ping + iperf3 both ways
#                        against lab.server), nic-test (several NICs picked
#                        by MAC, see lab.nic), failover-test (a
#                        net_failover pair under one long stream, see the
#                        script), reload-test (nic-test, then the virtio_net
#                        driver unloaded and loaded again, then nic-test
#                        again), boot-trace (the init's steps as LAB-STEP
#                        lines, then the kernel's log: tests/lab/boot-phases.sh),
#                        shell (a shell on the console), none, or a script
#                        /etc/lab/cmd/<name>
#   lab.iperf_time=5     iperf3 seconds per direction
#   lab.nic=MAC,IP/LEN,PEER[,SECS]  (nic-test; repeatable) the NIC with MAC
#                        gets IP, must reach PEER; SECS > 0: iperf3 both
#                        ways over it with interrupt/packet counts around it
#   lab.idle=SECS        (nic-test) a framed window without traffic first
# Works with just "console=ttyS0 root=/dev/vda" (the defaults apply).
# Rebuilt only when an input changes.
set -euo pipefail
export LAB_LOG_PREFIX=build-guest
. "$(dirname "$0")/common.sh"

KVER=$(lab_kernel_version)
KDIR=$(lab_kernel_fetch "$KVER")
OUT="$LAB_CACHE/guest"
mkdir -p "$OUT"
BUSYBOX=/bin/busybox
IPERF3=$(command -v iperf3) || lab_die "install iperf3 (guest-images/lab/setup-host.sh)"
# optional: the bench's latency tool (without it the bench falls back to ping)
SOCKPERF=$(command -v sockperf || true)
ldd "$BUSYBOX" >/dev/null 2>&1 && lab_die "$BUSYBOX is not static: install busybox-static"
MKE2FS=$(PATH=$PATH:/sbin:/usr/sbin command -v mke2fs) || lab_die "install e2fsprogs"

stamp=$(lab_stamp_hash "$0" "$LAB_RECIPES/common.sh" "$KVER" "$BUSYBOX" "$IPERF3" "${SOCKPERF:-no-sockperf}")
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] && [ -f "$OUT/guest.img" ]; then
	lab_log "up to date ($KVER)"
	echo "$OUT/guest.img"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MODSRC="$KDIR/lib/modules/$KVER"

# --- modules ---------------------------------------------------------------
# copy_mods ROOT NAME MOD...: copy MODs and their dependencies into ROOT and
# write ROOT/etc/lab/mods/NAME: the files to insmod, in order
copy_mods() {
	local root=$1 name=$2 f
	shift 2
	mkdir -p "$root/etc/lab/mods"
	: > "$root/etc/lab/mods/$name"
	for f in $(lab_mod_order "$KDIR" "$KVER" "$@"); do
		mkdir -p "$root/lib/modules/$KVER/$(dirname "$f")"
		cp "$MODSRC/$f" "$root/lib/modules/$KVER/$f"
		echo "/lib/modules/$KVER/$f" >> "$root/etc/lab/mods/$name"
	done
}

# --- the initrd ------------------------------------------------------------
ird="$work/initrd"
mkdir -p "$ird"/{bin,dev,proc,sys,newroot}
cp "$BUSYBOX" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
copy_mods "$ird" boot virtio_pci virtio_blk ext4
cat > "$ird/init" <<'INIT'
#!/bin/sh
# lab guest initrd (guest-images/lab/build-guest.sh)
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "$m" 2>/dev/null; done < /etc/lab/mods/boot
root=/dev/vda
mode=ro
fstype=ext4
for w in $(cat /proc/cmdline); do
	case "$w" in
	root=*) root=${w#root=} ;;
	rootfstype=*) fstype=${w#rootfstype=} ;;
	rw) mode=rw ;;
	esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t "$fstype" -o "$mode" "$root" /newroot; then
	echo "LAB-GUEST-FAIL: cannot mount $root"
	ls /sys/block
	poweroff -f
fi
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /sbin/init
INIT
chmod 755 "$ird/init"

# --- the root file system ----------------------------------------------------
rfs="$work/root"
mkdir -p "$rfs"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,mnt,boot,etc/lab/cmd,lib64}
cp "$BUSYBOX" "$rfs/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
	[ -e "$rfs/$a" ] || ln -s /bin/busybox "$rfs/$a"
done
ln -sf /bin/busybox "$rfs/sbin/init.busybox"
rm -f "$rfs/sbin/init"
# iperf3 (and sockperf when the host has it) with their shared libraries
for bin in "$IPERF3" $SOCKPERF; do
	cp "$bin" "$rfs/usr/bin/$(basename "$bin")"
	ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
		mkdir -p "$rfs$(dirname "$lib")"
		cp -L "$lib" "$rfs$lib"
	done
done
[ -e /lib64/ld-linux-x86-64.so.2 ] && cp -L /lib64/ld-linux-x86-64.so.2 "$rfs/lib64/"

copy_mods "$rfs" boot virtio_pci virtio_blk ext4
copy_mods "$rfs" net virtio_net net_failover failover
vfmods=""
for m in igbvf ixgbevf iavf mlx5_core; do
	if lab_mod_exists "$KDIR" "$KVER" "$m"; then
		copy_mods "$rfs" "$m" "$m"
		vfmods="$vfmods $m"
	fi
done
# PCI id patterns (modalias globs) -> module, for the VF drivers
: > "$rfs/etc/lab/pci-drivers"
for m in $vfmods; do
	modinfo -b "$KDIR" -k "$KVER" -F alias "$m" | grep '^pci:' | sed "s/\$/ $m/" >> "$rfs/etc/lab/pci-drivers"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$MODSRC/$f" ] && cp "$MODSRC/$f" "$rfs/lib/modules/$KVER/"
done
depmod -b "$rfs" "$KVER"
lab_log "modules: boot, net,$vfmods"

cat > "$rfs/etc/lab/defaults" <<'DEF'
LAB_IP=10.0.3.2/24
LAB_GW=
LAB_SERVER=10.0.3.1
LAB_CMD=net-test
LAB_IPERF_TIME=5
DEF
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rfs/etc/passwd"
printf 'root:x:0:\n' > "$rfs/etc/group"
printf '127.0.0.1 localhost\n' > "$rfs/etc/hosts"
echo labguest > "$rfs/etc/hostname"

cat > "$rfs/etc/lab/iperf3-lib" <<'LIB'
# sourced by the lab commands: iperf3 runs whose every second is checked
# iperf3_run OUT PEER SECS [-R]: iperf3 to PEER for SECS with 1 s intervals
# (Kbit/s), output in OUT; returns iperf3's status
iperf3_run() {
	out=$1 peer=$2 secs=$3
	shift 3
	iperf3 -c "$peer" -t "$secs" -i 1 -f k "$@" > "$out" 2>&1
}
# iperf3_summary OUT STATUS LABEL: one line for the host to parse,
#   LAB-IPERF3 LABEL mbps=X secs=N zero_secs=Z min_mbps=M per_sec=a,b,...
# (per_sec in Mbit/s; a "zero second" is an interval that carried no byte:
# a stalled stream) or "LAB-IPERF3 LABEL FAIL why=..."; returns 1 on a
# failure or any zero second. No retry: a stall is what this is for.
iperf3_summary() {
	out=$1 st=$2 label=$3
	set -- $(awk '
		/sender$|receiver$/ { if ($NF == "receiver") for (i = 2; i <= NF; i++) if ($i == "Kbits/sec") total = $(i-1); next }
		{ iv = ""; r = ""
		  for (i = 1; i <= NF; i++) { if ($i ~ /^[0-9.]+-[0-9.]+$/) iv = $i; if ($i == "Kbits/sec") r = $(i-1) }
		  if (iv == "" || r == "") next
		  split(iv, t, "-"); if (t[2] - t[1] < 0.5) next
		  n++; if (r + 0 == 0) z++; m = r / 1000
		  if (n == 1 || m < min) min = m
		  ps = ps (n > 1 ? "," : "") sprintf("%.1f", m) }
		END { printf "%s %d %d %.2f %s\n", (total == "" ? "-" : sprintf("%.1f", total / 1000)), n, z, min, (ps == "" ? "-" : ps) }' "$out")
	if [ "$st" != 0 ] || [ "$1" = - ] || [ "$2" = 0 ]; then
		echo "LAB-IPERF3 $label FAIL why=iperf3-status-$st-intervals-$2"
		return 1
	fi
	echo "LAB-IPERF3 $label mbps=$1 secs=$2 zero_secs=$3 min_mbps=$4 per_sec=$5"
	if [ "$3" != 0 ]; then
		echo "LAB-IPERF3-STALL $label: $3 of $2 seconds carried no data"
		return 1
	fi
	return 0
}
LIB

cat > "$rfs/etc/lab/cmd/net-test" <<'CMD'
#!/bin/sh
# ping and iperf3 (guest->server, then server->guest) against $LAB_SERVER
[ -n "$LAB_SERVER" ] || { echo "net-test: no lab.server"; exit 2; }
rc=0
# the link may take a moment: wait up to 30 s for a first answer
i=0
until ping -c 1 -W 1 "$LAB_SERVER" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 30 ] || { echo "LAB-PING FAIL"; exit 1; }
done
ping -c 3 -W 2 "$LAB_SERVER" || { echo "LAB-PING FAIL"; exit 1; }
echo "LAB-PING OK"
. /etc/lab/iperf3-lib
for dir in tx rx; do
	flag=""
	[ $dir = rx ] && flag=-R
	iperf3_run /tmp/iperf-$dir "$LAB_SERVER" "$LAB_IPERF_TIME" $flag
	s=$?
	cat /tmp/iperf-$dir
	iperf3_summary /tmp/iperf-$dir $s "dir=$dir" || rc=1
done
exit $rc
CMD
chmod 755 "$rfs/etc/lab/cmd/net-test"

cat > "$rfs/etc/lab/fo-lib" <<'LIB'
# net_failover helpers for the guest commands (failover-test, tick-test).
# fo_load_vf_drivers: every VF driver the image has, loaded now: a VF the
# VMM hot-plugs later has no udev to load its driver.
fo_load_vf_drivers() {
	for m in $(cut -d' ' -f2 /etc/lab/pci-drivers | sort -u); do
		[ -d "/sys/module/$m" ] || { while read -r f; do insmod "$f" 2>/dev/null; done < "/etc/lab/mods/$m"; }
	done
}
# fo_primary MASTER: the primary (VF) under net_failover's MASTER, if any;
# the standby is the virtio NIC (driver virtio_net), the primary any other
fo_primary() {
	for l in /sys/class/net/$1/lower_*; do
		[ -e "$l" ] || continue
		d=${l##*/lower_}
		case "$(basename "$(readlink "/sys/class/net/$d/device/driver" 2>/dev/null)")" in
		virtio_net | "") ;;
		*) echo "$d"; return 0 ;;
		esac
	done
	return 1
}
LIB

cat > "$rfs/etc/lab/cmd/failover-test" <<'CMD'
#!/bin/sh
# lab-failover's guest side (tests/lab/test-failover.sh). eth0 is
# net_failover's master over the virtio-net NIC (STANDBY); a VF with the same
# MAC that the VMM plugs (ACPI hot-plug) becomes its primary. The VF drivers
# are loaded first: a hot-plugged VF has no udev to load its driver.
#   lab.fo_secs=SECS   the stream's length (default 90)
#   lab.fo_mode=stream one iperf3 stream to lab.server for SECS, its
#                      intervals printed as they come (the default)
#   lab.fo_mode=ignore-eject   GPE 1 is disabled once the primary is up: the
#                      guest never sees an eject request (a guest whose ACPI
#                      does not handle it); then pings lab.server over the
#                      VF for SECS and reports how many answers came back
# Prints "LAB-FO-PRIMARY if=IF" when the VF is enslaved (or
# "LAB-FO-NO-PRIMARY" after 120 s) and "LAB-FO-STREAM-START" just before the
# stream; lines "LAB-FO-SLAVES ..." every 5 s name the lower devices.
secs=90 mode=stream
for w in $(cat /proc/cmdline); do
	case "$w" in
	lab.fo_secs=*) secs=${w#lab.fo_secs=} ;;
	lab.fo_mode=*) mode=${w#lab.fo_mode=} ;;
	esac
done
. /etc/lab/fo-lib
fo_load_vf_drivers
master=eth0
primary() { fo_primary "$master"; }
# LAB-FO-SLAVES t=UPTIME IF:OPERSTATE:tx=N:primary|standby ...
slaves() { p=$(primary); echo "LAB-FO-SLAVES t=$(cut -d' ' -f1 /proc/uptime) $(for l in /sys/class/net/$master/lower_*; do [ -e "$l" ] && d=${l##*/lower_} && echo "$d:$(cat /sys/class/net/$d/operstate):tx=$(cat /sys/class/net/$d/statistics/tx_packets):$([ "$d" = "$p" ] && echo primary || echo standby)"; done | tr '\n' ' ')"; }
i=0
until p=$(primary); do
	i=$((i + 1))
	[ $i -le 1200 ] || { echo "LAB-FO-NO-PRIMARY"; slaves; exit 1; }
	sleep 0.1
done
echo "LAB-FO-PRIMARY if=$p uptime=$(cut -d' ' -f1 /proc/uptime)"
(while :; do slaves; sleep 5; done) &
sp=$!
i=0
until ping -c 1 -W 1 "$LAB_SERVER" > /dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 30 ] || { echo "LAB-FO FAIL no answer from $LAB_SERVER"; kill $sp; exit 1; }
done
rc=0
case "$mode" in
stream)
	echo "LAB-FO-STREAM-START secs=$secs"
	iperf3 -c "$LAB_SERVER" -t "$secs" -i 1 -f k --forceflush
	rc=$?
	echo "LAB-FO-STREAM-END rc=$rc"
	;;
ignore-eject)
	echo disable > /sys/firmware/acpi/interrupts/gpe01 && echo "LAB-FO-GPE1 disabled"
	echo "LAB-FO-PING-START secs=$secs"
	ping -i 0.5 -w "$secs" "$LAB_SERVER" > /tmp/ping.out 2>&1
	cat /tmp/ping.out | tail -n 3
	# busybox: "40 packets transmitted, 40 packets received, 0% packet loss"
	echo "LAB-FO-PING $(sed -n 's/.* \([0-9][0-9]*\) packets received.*/\1/p' /tmp/ping.out) received via=$(primary)"
	;;
*) echo "LAB-FO FAIL unknown lab.fo_mode=$mode"; rc=2 ;;
esac
slaves
kill $sp
exit $rc
CMD
chmod 755 "$rfs/etc/lab/cmd/failover-test"

cat > "$rfs/etc/lab/cmd/tick-test" <<'CMD'
#!/bin/sh
# lab-snapshot's guest side (tests/lab/test-snapshot.sh): lab.ticks=N (30)
# one-second ticks, each reading a file from the disk with the page cache
# dropped first (virtio-blk I/O) and pinging lab.server once (virtio-net):
#   LAB-TICK i ping=ok|lost disk=<md5 of /bin/busybox, 12 digits> up=<uptime>
# A snapshot taken between two ticks and restored must go on counting.
# lab.fo=1 (lab-migrate-failover): eth0 is net_failover's master; the VF
# drivers are loaded first and each tick ends with via=IF (the primary VF
# under eth0) or via=standby (virtio-net alone).
. /etc/lab/fo-lib
n=30 fo=0
for w in $(cat /proc/cmdline); do
	case "$w" in
	lab.ticks=*) n=${w#lab.ticks=} ;;
	lab.fo=1) fo=1 ;;
	esac
done
[ $fo = 1 ] && fo_load_vf_drivers
i=0
while [ $i -lt "$n" ]; do
	i=$((i + 1))
	echo 3 > /proc/sys/vm/drop_caches
	sum=$(md5sum /bin/busybox | cut -c1-12)
	if ping -c 1 -W 2 "$LAB_SERVER" > /dev/null 2>&1; then p=ok; else p=lost; fi
	via=""
	[ $fo = 1 ] && via=" via=$(fo_primary eth0 || echo standby)"
	echo "LAB-TICK $i ping=$p disk=$sum up=$(cut -d' ' -f1 /proc/uptime)$via"
	sleep 1
done
exit 0
CMD
chmod 755 "$rfs/etc/lab/cmd/tick-test"

cat > "$rfs/etc/lab/cmd/nic-test" <<'CMD'
#!/bin/sh
# Several NICs (VFs and virtio-net), each picked by MAC from kernel parameters
#   lab.nic=MAC,IP/LEN,PEER[,SECS]     (repeatable; lab.ip= should be empty)
# Each NIC is configured and must get carrier and answer ping from PEER (out of
# that interface). Then, for each NIC with SECS > 0, one measurement window:
#   LAB-MARK begin if=IF        (then 3 s of silence: the host snapshots)
#   iperf3 to PEER for SECS, then from PEER (-R), output kept off the console
#   LAB-MARK end if=IF          (then 3 s of silence)
#   LAB-COUNT if=IF phase=before|after irqs=N rx_packets=N tx_packets=N
#   LAB-IRQS if=IF phase=...    the /proc/interrupts rows of IF's vectors
#   LAB-IPERF3 if=IF dir=tx|rx mbps=X secs=N zero_secs=Z min_mbps=M per_sec=...
#   (see /etc/lab/iperf3-lib: a stream with a second without data fails)
# lab.idle=SECS first adds a window "if=idle" of SECS without traffic.
# irqs is the sum over the interrupt vectors (MSI/MSI-X) of IF's PCI function.
. /etc/lab/iperf3-lib
echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce
specs=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.nic=//p')
[ -n "$specs" ] || { echo "nic-test: no lab.nic= parameter"; exit 2; }
rc=0
find_if() {
	for n in /sys/class/net/*; do
		[ "$(cat "$n/address")" = "$1" ] && { basename "$n"; return 0; }
	done
	return 1
}
# the PCI function behind IF (virtio-net's netdev sits on a virtio device)
pci_of() {
	d=$(readlink -f "/sys/class/net/$1/device")
	[ -d "$d/msi_irqs" ] || d=$(dirname "$d")
	echo "$d"
}
irq_rows() {
	for i in $(ls "$(pci_of "$1")/msi_irqs" 2>/dev/null); do
		grep -E "^ *$i:" /proc/interrupts
	done
}
counts() {
	irqs=$(irq_rows "$1" | awk '{ for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }')
	echo "irqs=$irqs rx_packets=$(cat "/sys/class/net/$1/statistics/rx_packets") tx_packets=$(cat "/sys/class/net/$1/statistics/tx_packets")"
}
field() { echo "$1" | cut -d, -f"$2"; }

ifs=""
for s in $specs; do
	mac=$(field "$s" 1) ip=$(field "$s" 2)
	i=0
	until ifn=$(find_if "$mac"); do
		i=$((i + 1))
		[ $i -lt 300 ] || break
		sleep 0.2
	done
	if [ -z "$ifn" ]; then
		echo "LAB-NIC FAIL mac=$mac: no interface"
		ls -l /sys/class/net/
		rc=1
		continue
	fi
	drv=$(basename "$(readlink "/sys/class/net/$ifn/device/driver")")
	echo "LAB-NIC if=$ifn mac=$mac driver=$drv pci=$(basename "$(pci_of "$ifn")") ip=$ip"
	ip addr add "$ip" dev "$ifn"
	ip link set "$ifn" up
	ifs="$ifs $ifn=$s"
done
for e in $ifs; do
	ifn=${e%%=*} s=${e#*=}
	peer=$(field "$s" 3)
	i=0
	while [ "$(cat "/sys/class/net/$ifn/carrier" 2>/dev/null)" != 1 ] && [ $i -lt 150 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	c=$(cat "/sys/class/net/$ifn/carrier" 2>/dev/null)
	echo "LAB-LINK if=$ifn carrier=${c:-0} operstate=$(cat "/sys/class/net/$ifn/operstate")"
	[ "$c" = 1 ] || rc=1
	i=0
	until ping -I "$ifn" -c 1 -W 1 "$peer" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 30 ] || break
	done
	if ping -I "$ifn" -c 3 -W 2 "$peer"; then
		echo "LAB-PING OK if=$ifn peer=$peer"
	else
		echo "LAB-PING FAIL if=$ifn peer=$peer"
		rc=1
	fi
done
# load iperf3 and its libraries now, not inside a window
iperf3 --version > /dev/null 2>&1
# a window without traffic, framed like the others: what the framing costs
idle=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.idle=//p' | head -n1)
if [ -n "$idle" ] && [ "$idle" -gt 0 ] 2>/dev/null; then
	echo "LAB-MARK begin if=idle"
	sleep 3
	sleep "$idle"
	echo "LAB-MARK end if=idle"
	sleep 3
fi
for e in $ifs; do
	ifn=${e%%=*} s=${e#*=}
	peer=$(field "$s" 3) secs=$(field "$s" 4)
	[ -n "$secs" ] && [ "$secs" -gt 0 ] 2>/dev/null || continue
	echo "LAB-MARK begin if=$ifn"
	sleep 3
	before=$(counts "$ifn")
	rows_before=$(irq_rows "$ifn")
	# no retry: a failed or stalled stream is the failure this looks for
	iperf3_run /tmp/iperf-tx "$peer" "$secs"
	st_tx=$?
	iperf3_run /tmp/iperf-rx "$peer" "$secs" -R
	st_rx=$?
	after=$(counts "$ifn")
	rows_after=$(irq_rows "$ifn")
	echo "LAB-MARK end if=$ifn"
	sleep 3
	echo "LAB-COUNT if=$ifn phase=before $before"
	echo "LAB-COUNT if=$ifn phase=after $after"
	echo "$rows_before" | sed "s/^/LAB-IRQS if=$ifn phase=before /"
	echo "$rows_after" | sed "s/^/LAB-IRQS if=$ifn phase=after /"
	for dir in tx rx; do
		cat "/tmp/iperf-$dir"
		st=$st_tx
		[ $dir = rx ] && st=$st_rx
		iperf3_summary "/tmp/iperf-$dir" "$st" "if=$ifn dir=$dir" || rc=1
	done
done
exit $rc
CMD
chmod 755 "$rfs/etc/lab/cmd/nic-test"

cat > "$rfs/etc/lab/cmd/reload-test" <<'CMD'
#!/bin/sh
# nic-test (lab.nic=...), then the guest's virtio_net driver is unloaded
# (the device is reset) and loaded again (a new DRIVER_OK), then nic-test
# again over the new interface:
#   LAB-RELOAD begin
#   LAB-RELOAD rmmod=STATUS insmod=STATUS
#   LAB-RELOAD end
# (both nic-test runs print their own LAB-* lines, the second after
# "LAB-RELOAD end")
rc=0
/etc/lab/cmd/nic-test || rc=1
echo "LAB-RELOAD begin"
rmmod virtio_net
rm_st=$?
i=0
while ls /sys/bus/virtio/drivers/virtio_net/virtio* > /dev/null 2>&1 && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
ins_st=0
while read -r m; do
	case "$m" in
	*/virtio_net.ko*) insmod "$m" || ins_st=$? ;;
	*) [ -d "/sys/module/$(basename "${m%%.ko*}")" ] || insmod "$m" ;;
	esac
done < /etc/lab/mods/net
echo "LAB-RELOAD rmmod=$rm_st insmod=$ins_st"
[ "$rm_st" = 0 ] && [ "$ins_st" = 0 ] || rc=1
echo "LAB-RELOAD end"
/etc/lab/cmd/nic-test || rc=1
exit $rc
CMD
chmod 755 "$rfs/etc/lab/cmd/reload-test"

cat > "$rfs/etc/lab/cmd/bench-serve" <<'CMD'
#!/bin/sh
# The bench's guest side (scripts/bench.sh, tests/lab/bench-lab.sh): L1 is
# the client of every measurement, the guest only serves.
#   lab.nic=MAC,IP/LEN,PEER   the NIC (picked by MAC) gets IP and must reach
#                             PEER (L1) before serving
# Starts iperf3 -s and, when the image has it, sockperf's UDP server on
# IP:11111, prints
#   LAB-BENCH-SERVING if=IF driver=DRV ip=ADDR sockperf=yes|no uptime=S
# and then prints nothing (a console line is a VM exit: it would count in
# the figures) until a TCP connection to port 5999 (L1: echo stop >
# /dev/tcp/ADDR/5999) tells it to stop; exits 0.
spec=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.nic=//p' | head -n1)
[ -n "$spec" ] || { echo "LAB-BENCH FAIL no lab.nic= parameter"; exit 2; }
mac=$(echo "$spec" | cut -d, -f1) ip=$(echo "$spec" | cut -d, -f2) peer=$(echo "$spec" | cut -d, -f3)
i=0
ifn=""
while [ -z "$ifn" ] && [ $i -lt 300 ]; do
	for n in /sys/class/net/*; do
		[ "$(cat "$n/address")" = "$mac" ] && ifn=$(basename "$n")
	done
	[ -n "$ifn" ] || { sleep 0.2; i=$((i + 1)); }
done
[ -n "$ifn" ] || { echo "LAB-BENCH FAIL mac=$mac: no interface"; ls /sys/class/net; exit 1; }
ip addr add "$ip" dev "$ifn"
ip link set "$ifn" up
i=0
until ping -I "$ifn" -c 1 -W 1 "$peer" > /dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "LAB-BENCH FAIL if=$ifn: no answer from $peer"; exit 1; }
done
addr=${ip%/*}
iperf3 -s -B "$addr" -D
sp=no
if command -v sockperf > /dev/null 2>&1; then
	sockperf server -i "$addr" -p 11111 > /dev/null 2>&1 &
	sp=yes
fi
sleep 1
echo "LAB-BENCH-SERVING if=$ifn driver=$(basename "$(readlink "/sys/class/net/$ifn/device/driver")") ip=$addr sockperf=$sp uptime=$(cut -d' ' -f1 /proc/uptime)"
nc -l -p 5999 > /dev/null
echo "LAB-BENCH-STOP uptime=$(cut -d' ' -f1 /proc/uptime)"
exit 0
CMD
chmod 755 "$rfs/etc/lab/cmd/bench-serve"

cat > "$rfs/etc/lab/cmd/boot-trace" <<'CMD'
#!/bin/sh
# The guest side of tests/lab/boot-phases.sh: the kernel's log of this boot
# (booted with initcall_debug: each module init's duration), then exit 0.
echo "LAB-BOOT-TRACE begin"
dmesg
echo "LAB-BOOT-TRACE end"
exit 0
CMD
chmod 755 "$rfs/etc/lab/cmd/boot-trace"

cat > "$rfs/sbin/init" <<'INIT'
#!/bin/sh
# lab guest init (guest-images/lab/build-guest.sh)
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
# (this busybox has no mountpoint applet)
[ -e /proc/self ] || mount -t proc proc /proc
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
echo "lab-guest: init at uptime $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"
. /etc/lab/defaults
for w in $(cat /proc/cmdline); do
	case "$w" in
	lab.ip=*) LAB_IP=${w#lab.ip=} ;;
	lab.gw=*) LAB_GW=${w#lab.gw=} ;;
	lab.server=*) LAB_SERVER=${w#lab.server=} ;;
	lab.cmd=*) LAB_CMD=${w#lab.cmd=} ;;
	lab.iperf_time=*) LAB_IPERF_TIME=${w#lab.iperf_time=} ;;
	esac
done
export LAB_IP LAB_GW LAB_SERVER LAB_CMD LAB_IPERF_TIME
# lab.cmd=boot-trace: the init's steps with the guest's uptime (tests/lab/boot-phases.sh)
step() { [ "$LAB_CMD" = boot-trace ] && echo "LAB-STEP $1 uptime=$(cut -d' ' -f1 /proc/uptime)"; }
step mounted
insmods() { while read -r m; do insmod "$m" 2>/dev/null; done < "/etc/lab/mods/$1"; }
insmods boot
step mods-boot
insmods net
step mods-net
# VF drivers for the PCI devices present
for a in /sys/bus/pci/devices/*/modalias; do
	[ -f "$a" ] || continue
	ma=$(cat "$a")
	while read -r pat mod; do
		case "$ma" in
		$pat) [ -d "/sys/module/$mod" ] || { echo "lab-guest: loading $mod for $ma"; insmods "$mod"; }; break ;;
		esac
	done < /etc/lab/pci-drivers
done
step pci-drivers
hostname "$(cat /etc/hostname)"
ip link set lo up
if [ -n "$LAB_IP" ]; then
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if [ -e /sys/class/net/eth0 ]; then
		ip addr add "$LAB_IP" dev eth0
		ip link set eth0 up
		[ -n "$LAB_GW" ] && ip route add default via "$LAB_GW"
	else
		echo "lab-guest: no eth0"
	fi
fi
echo "LAB-GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime) ip=${LAB_IP:-none} mac=$(cat /sys/class/net/eth0/address 2>/dev/null)"
# where the kernel runs (KASLR): _text's virtual address, the physical start of its code
echo "LAB-KASLR text=$(awk '$3 == "_text" { print $1; exit }' /proc/kallsyms) code=$(awk '/Kernel code/ { sub(/^ */, ""); sub(/-.*/, ""); print; exit }' /proc/iomem)"
case "$LAB_CMD" in
none) rc=0 ;;
shell) setsid cttyhack sh; rc=$? ;;
*)
	if [ -x "/etc/lab/cmd/$LAB_CMD" ]; then
		"/etc/lab/cmd/$LAB_CMD"
		rc=$?
	else
		echo "lab-guest: unknown lab.cmd=$LAB_CMD"
		rc=127
	fi
	;;
esac
echo "LAB-GUEST-RC=$rc"
sync
poweroff -f
INIT
chmod 755 "$rfs/sbin/init"

cp "$KDIR/boot/vmlinuz-$KVER" "$rfs/boot/vmlinuz"
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$rfs/boot/initrd.img"
cp "$rfs/boot/initrd.img" "$OUT/initrd.img.tmp"
cp "$rfs/boot/vmlinuz" "$OUT/vmlinuz.tmp"
echo "$KVER" > "$rfs/boot/kver"

kib=$(du -sk "$rfs" | cut -f1)
size=$(( (kib * 13 / 10 + 16384) / 1024 ))
rm -f "$work/guest.img"
truncate -s "${size}M" "$work/guest.img"
"$MKE2FS" -q -F -t ext4 -b 4096 -L labroot -E root_owner=0:0 -d "$rfs" "$work/guest.img" "${size}M" >&2
mv "$work/guest.img" "$OUT/guest.img"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
echo "$stamp" > "$OUT/stamp"
lab_log "built $OUT/guest.img (${size} MiB, kernel $KVER); kernel and initrd also in $OUT"
echo "$OUT/guest.img"
