#!/bin/bash
# The migration channel's TLS (docs/migration.md "The channel",
# docs/security.md), with the tiny counter guest over TCP on loopback:
#  - --incoming on a non-loopback address without TLS refuses to start;
#    --insecure-migration starts (and warns); TLS options that contradict
#    each other are a usage error;
#  - a pre-shared key: a source with another key is refused during the
#    handshake ("failed while connecting", nothing of it read), and the
#    destination waits on for the right one;
#  - a stream altered in flight (tests/mig_cut_proxy.py --flip-at inverts one
#    byte of the TLS records) or cut short (--close-at) is refused by the
#    destination, which never runs the guest; the source rolls back and its
#    guest counts on;
#  - X.509 (openssl makes two authorities and their host certificates): a
#    destination whose certificate another authority signed is refused by
#    the source; with the same authority the guest moves and passes there.
. "$(dirname "$0")/lib.sh"
set -e
require_kvm
require_guest "$TINY_COUNTER"
command -v openssl >/dev/null || skip "openssl is not installed (it makes the test's X.509 certificates)"

B=$MINIVMM_BIN
S=$WORK/src.sock D=$WORK/dst.sock
SRC=$WORK/src.out DST=$WORK/dst.out
PROXY=$(dirname "$0")/../mig_cut_proxy.py
src="" dst="" proxy=""
trap 'kill -KILL $src $dst $proxy 2>/dev/null || true; cleanup_work' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
new_psk() { echo "migration:$(python3 -c 'import secrets; print(secrets.token_hex(32))')" >"$1"; }
new_psk "$WORK/psk"
new_psk "$WORK/other.psk"
LONG=(--kernel "$TINY_COUNTER" --testdev --mem 64M --cpus 1 --cmdline "steps=1000 ticks=5")


start_src() { # options
	set +e
	"$B" -v --api "$S" "$@" >"$SRC" 2>&1 </dev/null &
	src=$!
	set -e
	wait_in "$SRC" '^testdev: counter step=4 ' 60
}
start_dst() { # port, options
	local port=$1
	shift
	set +e
	"$B" -v --api "$D" --incoming "tcp:127.0.0.1:$port" "$@" >"$DST" 2>&1 </dev/null &
	dst=$!
	set -e
	wait_in "$DST" 'waiting for a migration on' 30
}
ticks_on() { # the source's guest counts on
	local at
	at=$(grep -Eo '^testdev: counter step=[0-9]+' "$SRC" | tail -n1 | sed 's/.*=//')
	wait_in "$SRC" "^testdev: counter step=$((at + 2)) " 30
}
end_dst() { # the destination exits non-zero and never ran the guest
	local drc
	wait_exit "$dst"
	drc=$WRC
	dst=""
	[ "$drc" != 0 ] || fail "$1: the destination exited 0"
	grep -q '^testdev: counter' "$DST" && fail "$1: the destination ran the guest"
	no_crash "$DST"
}

# --- the network without TLS -----------------------------------------------------------
run_vmm 30 "$B" --incoming "tcp:0.0.0.0:$(free_port)" "${LONG[@]}"
[ "$RC" != 0 ] && grep -q 'not a loopback address, and no TLS: give --migration-psk FILE or --migration-x509 DIR' "$OUT" ||
	fail "--incoming on the network without TLS: exit $RC: $(cat "$OUT")"
run_vmm 30 "$B" --incoming "tcp:127.0.0.1:1" --migration-psk "$WORK/psk" --insecure-migration "${LONG[@]}"
[ "$RC" = 2 ] && grep -q 'insecure-migration with TLS credentials' "$OUT" || fail "--insecure-migration with a key: exit $RC: $(cat "$OUT")"
run_vmm 30 "$B" --incoming "tcp:127.0.0.1:1" --migration-psk "$WORK/missing.psk" "${LONG[@]}"
[ "$RC" != 0 ] && grep -q 'missing.psk' "$OUT" || fail "a missing key file: exit $RC: $(cat "$OUT")"
echo "short:00" >"$WORK/short.psk"
run_vmm 30 "$B" --incoming "tcp:127.0.0.1:1" --migration-psk "$WORK/short.psk" "${LONG[@]}"
[ "$RC" != 0 ] && grep -q 'the key must be 16 to 64 bytes' "$OUT" || fail "a short key: exit $RC: $(cat "$OUT")"
P=$(free_port)
set +e
"$B" -v --api "$D" --incoming "tcp:0.0.0.0:$P" --insecure-migration "${LONG[@]}" >"$DST" 2>&1 </dev/null &
dst=$!
set -e
wait_in "$DST" 'waiting for a migration on' 30
grep -q 'insecure-migration): the migration channel is plain TCP' "$DST" || fail "no warning for plain TCP: $(cat "$DST")"
ctl "$D" quit
wait_exit "$dst"
dst=""

# --- a pre-shared key: the wrong one is refused at the handshake --------------------------
start_src --migration-psk "$WORK/psk" "${LONG[@]}"
P=$(free_port)
start_dst "$P" --migration-psk "$WORK/other.psk" "${LONG[@]}"
grep -q "migration channel: TLS 1.3 with the pre-shared key of identity 'migration'" "$DST" || fail "the destination does not say its channel: $(head -5 "$DST")"
ctl "$S" migrate "tcp:127.0.0.1:$P"
[ $CST = 1 ] && grep -q 'failed while connecting: .*TLS handshake failed' "$WORK/ctl.out" ||
	fail "a source with another key: exit $CST: $(cat "$WORK/ctl.out")"
echo "ok: another key: $(grep 'failed while connecting' "$WORK/ctl.out")"
wait_in "$DST" 'a connection refused before any stream: TLS handshake failed' 10
ctl "$D" status
grep -qx 'state: incoming' "$WORK/ctl.out" || fail "the destination stopped waiting after a wrong key: $(cat "$WORK/ctl.out")"
ticks_on
ctl "$D" quit
wait_exit "$dst"
dst=""

# --- altered and truncated streams: refused, the VM stays on the source -----------------------
for mode in --flip-at --close-at; do
	P=$(free_port)
	PX=$(free_port)
	start_dst "$P" --migration-psk "$WORK/psk" "${LONG[@]}"
	set +e
	python3 "$PROXY" "$mode" 150000 "$PX" 127.0.0.1 "$P" >"$WORK/proxy.out" 2>&1 &
	proxy=$!
	set -e
	wait_in "$WORK/proxy.out" '^proxy: listening' 30
	ctl "$S" migrate "tcp:127.0.0.1:$PX"
	[ $CST = 1 ] && grep -q 'the VM runs on here' "$WORK/ctl.out" ||
		fail "$mode: the migration did not fail back: exit $CST: $(cat "$WORK/ctl.out")"
	echo "ok: $mode: $(grep 'the VM runs on here' "$WORK/ctl.out")"
	wait_exit "$proxy"
	[ $WRC = 0 ] || fail "$mode: the proxy: exit $WRC: $(cat "$WORK/proxy.out")"
	proxy=""
	end_dst "$mode"
	if [ "$mode" = --flip-at ]; then
		grep -q "TLS: the peer's data did not authenticate" "$DST" || fail "the altered record was not named: $(grep -a -i 'tls\|refused' "$DST")"
	fi
	grep -q -- '--incoming: refused' "$DST" || fail "$mode: the destination did not refuse: $(tail -5 "$DST")"
	echo "ok: $mode: the destination: $(grep -- '--incoming: refused' "$DST")"
	ctl "$S" status
	grep -qx 'state: running' "$WORK/ctl.out" || fail "$mode: the source: $(cat "$WORK/ctl.out")"
	ticks_on
done
ctl "$S" quit
wait_exit "$src"
src=""
no_crash "$SRC"

# --- X.509: authorities and certificates ---------------------------------------------------
mkca() { # DIR: an authority and a certificate for 127.0.0.1 signed by it
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=minivmm test CA $(basename "$1")" -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$1/key.pem" -out "$1/req.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$1/ext"
	openssl x509 -req -in "$1/req.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
		-extfile "$1/ext" -out "$1/cert.pem" 2>/dev/null
}
mkca "$WORK/ca1"
mkca "$WORK/ca2"
# (the long guest: a refused attempt and a TLS migration can take tens of
# seconds where minivmm runs slowly, as under TSan in the lab's L1, and the
# guest must still run on the source then; kvm_migrate checks a moved
# guest's whole run, here it must go on counting on the destination)
start_src --migration-x509 "$WORK/ca1" "${LONG[@]}"
P=$(free_port)
start_dst "$P" --migration-x509 "$WORK/ca2" "${LONG[@]}"
ctl "$S" migrate "tcp:127.0.0.1:$P"
[ $CST = 1 ] && grep -q 'failed while connecting: .*TLS handshake failed' "$WORK/ctl.out" ||
	fail "a destination of another authority: exit $CST: $(cat "$WORK/ctl.out")"
echo "ok: another authority: $(grep 'failed while connecting' "$WORK/ctl.out")"
ctl "$D" quit
wait_exit "$dst"
dst=""
P=$(free_port)
start_dst "$P" --migration-x509 "$WORK/ca1" "${LONG[@]}"
ctl "$S" migrate "tcp:127.0.0.1:$P"
[ $CST = 0 ] || fail "the migration over X.509: exit $CST: $(cat "$WORK/ctl.out")"
echo "ok: X.509: $(grep '^migrated' "$WORK/ctl.out"); $(grep -a 'migration-tls: from' "$DST")"
grep -q 'migration-tls: from 127.0.0.1: (TLS1.3)' "$DST" || fail "the destination did not log its TLS session: $(grep -a tls "$DST")"
wait_exit "$src"
src_rc=$WRC
src=""
[ $src_rc = 0 ] || fail "the source exited $src_rc after the migration"
text_only "$SRC"
last=$(counter_step "$SRC" last)
wait_in "$DST" "^testdev: counter step=$((last + 2)) " 60
moved_on "$SRC" "$DST"
echo "ok: X.509: the guest counts on at the destination from step $MOVED_FIRST"
ctl "$D" quit
wait_exit "$dst"
drc=$WRC
dst=""
[ $drc = 0 ] || fail "the destination exited $drc"
no_crash "$SRC"
no_crash "$DST"
echo PASS
