#!/usr/bin/python3
"""stamp.py CMD [ARG...]: run CMD with its stdout and stderr merged, and print
each of its lines prefixed with the seconds since CMD's exec (monotonic
clock, two decimals); exits with CMD's status. A lab tool (boot-phases.sh)."""
import os
import subprocess
import sys
import time

if len(sys.argv) < 2:
    sys.exit("usage: stamp.py CMD [ARG...]")
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
out = sys.stdout.buffer
for line in p.stdout:
    out.write(b"%.2f " % (time.monotonic() - t0) + line)
    out.flush()
sys.exit(p.wait())
