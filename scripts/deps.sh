#!/usr/bin/env bash
# Installs the Debian 12 packages minivmm needs to build and test (idempotent).
# Usage: bash scripts/deps.sh [--lab]   (--lab also sets up the nested lab's QEMU 10)
set -euo pipefail

pkgs=(
	# build
	gcc meson ninja-build pkg-config linux-libc-dev
	liburing-dev libfdt-dev libext2fs-dev libmnl-dev libkmod-dev libjansson-dev libgnutls28-dev
	libseccomp-dev zlib1g-dev liblzma-dev libzstd-dev nettle-dev
	# tests
	libcriterion-dev acpica-tools e2fsprogs fdisk iproute2 python3 util-linux
	# the kvm tests' report of a VMM that stopped answering (its threads' backtraces; pgrep)
	gdb procps
	# the bench's report plots (scripts/bench-report.py)
	python3-matplotlib
	# the libFuzzer harnesses (tests/fuzz, scripts/fuzz.sh): clang and its libFuzzer/ASan runtimes
	clang libclang-rt-14-dev
)

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: run as root (apt-get install)" >&2
	exit 1
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "deps.sh: build and test packages present"
fi

if [ "${1:-}" = "--lab" ] && [ -x guest-images/lab/setup-host.sh ]; then
	bash guest-images/lab/setup-host.sh
fi
