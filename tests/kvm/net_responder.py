#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Answers the virtionet tiny guest: waits for the tap interface to appear in
this network namespace, brings it up, and answers every ethertype 0x88b5
frame whose payload starts with b"minivmm-ping-" with a 0x88b5 frame carrying
b"minivmm-pong" to the sender's MAC. Logs what it saw to stdout.

usage: net_responder.py IFNAME TIMEOUT_SECONDS
"""
import select
import socket
import subprocess
import sys
import time

ETH_P_LOCAL = 0x88B5
PACKET_OUTGOING = 4
OUR_MAC = bytes.fromhex("020000c0ffee")


def log(msg):
    print("responder: " + msg, flush=True)


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def main():
    ifname, timeout = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.if_nametoindex(ifname)
            break
        except OSError:
            if time.monotonic() > deadline:
                log("interface %s never appeared" % ifname)
                return 2
            time.sleep(0.05)
    subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=False)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_LOCAL))
    s.bind((ifname, ETH_P_LOCAL))
    log("listening on %s" % ifname)
    pings = 0
    while time.monotonic() < deadline:
        try:
            r, _, _ = select.select([s], [], [], 0.2)
            if not r:
                continue
            data, addr = s.recvfrom(2048)
        except OSError as e:
            # the tap goes away (ENETDOWN, ENXIO) when minivmm exits
            log("interface gone: %s" % e)
            break
        if addr[2] == PACKET_OUTGOING or len(data) < 14:
            continue
        payload = data[14:]
        if not payload.startswith(b"minivmm-ping-"):
            log("ignored frame from %s len=%d" % (mac_str(data[6:12]), len(data)))
            continue
        pings += 1
        src = data[6:12]
        text = payload.split(b"\0", 1)[0].decode("ascii", "replace")
        log("ping from %s dst=%s payload=%s" % (mac_str(src), mac_str(data[0:6]), text))
        frame = src + OUR_MAC + ETH_P_LOCAL.to_bytes(2, "big") + b"minivmm-pong"
        frame += bytes(max(0, 60 - len(frame)))
        try:
            s.send(frame)
            log("pong sent to %s" % mac_str(src))
        except OSError as e:
            log("send failed: %s" % e)
    log("done pings=%d" % pings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
