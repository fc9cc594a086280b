#!/usr/bin/env bash
# Configures and builds minivmm into build/ (warnings are errors) and, with
# --asan, a sanitizer build into build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."

setup() {
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

setup build -Dwerror=true
if [ "${1:-}" = "--asan" ]; then
	setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi
