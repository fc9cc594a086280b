#!/usr/bin/env bash
# Configures and builds minivmm into build/ (warnings are errors); with
# --asan, an ASan+UBSan build into build-asan/; with --tsan, a
# ThreadSanitizer build into build-tsan/ (both may be given; -Wno-tsan: the
# virtqueue fences order guest-shared memory, which TSan does not model).
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
for opt in "$@"; do
	case "$opt" in
	--asan) setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug ;;
	--tsan) setup build-tsan -Dwerror=true -Dc_args=-Wno-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized ;;
	*) echo "build.sh: unknown option $opt (--asan, --tsan)" >&2; exit 2 ;;
	esac
done
