#!/bin/bash
# virtionet guest: ping/pong through a tap in a private network namespace,
# answered by net_responder.py over an AF_PACKET socket; the pong must arrive
# with an MSI-X interrupt.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_VIRTIONET"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
[ -c /dev/net/tun ] || skip "/dev/net/tun is missing"
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces and taps"

NS=minivmm-kvm-$$-$RANDOM
TAP=mvtap0
MAC=52:54:00:12:34:56
RESP_PID=
cleanup() {
	if [ -n "$RESP_PID" ]; then
		kill "$RESP_PID" 2>/dev/null || true
		wait "$RESP_PID" 2>/dev/null || true
	fi
	ip netns del "$NS" 2>/dev/null || true
	cleanup_work
}
trap cleanup EXIT
ip netns add "$NS" || skip "cannot create a network namespace"
ip netns exec "$NS" ip link set dev lo up
# no IPv6 chatter (router solicitations, DAD) on the tap
ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true

RLOG=$WORK/responder.log
ip netns exec "$NS" python3 "$(dirname "$0")/net_responder.py" "$TAP" 70 >"$RLOG" 2>&1 &
RESP_PID=$!

run_vmm 75 ip netns exec "$NS" "$MINIVMM_BIN" -v --kernel "$TINY_VIRTIONET" --testdev --mem 64M \
	--net "tap=$TAP,mac=$MAC"
kill "$RESP_PID" 2>/dev/null || true
wait "$RESP_PID" 2>/dev/null || true
RESP_PID=
sed 's/^/  /' "$RLOG"

grep -q "^responder: ping from $MAC dst=ff:ff:ff:ff:ff:ff payload=minivmm-ping-" "$RLOG" ||
	fail "the responder saw no ping from $MAC"
grep -q "^responder: pong sent to $MAC" "$RLOG" || fail "the responder could not send the pong"
no_line '^FAIL'
expect_line "^net: features=0x[0-9a-f]+ mac=$MAC "
expect_line '^net: rx pong len=[0-9]+ from=02:00:00:c0:ff:ee$'
expect_line '^tx_ok=1$'
expect_line '^rx_pong=1$'
expect_line '^msix_rx_irqs=[1-9][0-9]*$'
expect_line '^virtionet PASS$'
expect_rc 0

# the backend and why: this host's kernel may lack /dev/vhost-net
if [ -c /dev/vhost-net ]; then
	grep -q 'net0: vhost-net backend' "$OUT" || fail "no 'net0: vhost-net backend' in the log"
else
	grep -q 'net0: userspace backend (/dev/vhost-net: ' "$OUT" ||
		fail "no 'net0: userspace backend (/dev/vhost-net: ...)' in the log"
	# vhost=on without /dev/vhost-net: a clear start-up error, no guest run
	run_vmm 20 ip netns exec "$NS" "$MINIVMM_BIN" --kernel "$TINY_VIRTIONET" --testdev --mem 64M \
		--net "tap=$TAP,mac=$MAC,vhost=on"
	[ "$RC" -ne 0 ] || fail "vhost=on without /dev/vhost-net started"
	grep -q 'net0: error: vhost=on, but /dev/vhost-net: ' "$OUT" ||
		fail "vhost=on without /dev/vhost-net: no clear error: $(head -c 600 "$OUT")"
	no_line 'virtionet PASS'
fi
echo "PASS"
