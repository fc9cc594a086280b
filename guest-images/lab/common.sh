# Shared by the lab recipes (sourced, not run). Bash.
# shellcheck shell=bash disable=SC2034
#
# Cache layout ($LAB_CACHE, default /var/cache/minivmm-lab):
#   debs/linux-image-<kver>_*.deb      the downloaded kernel package
#   kernel/<kver>/                     dpkg-deb -x of it, depmod'ed
#   kernel/current                     the version the last build used
#   l1/vmlinuz, l1/initramfs.cpio.gz   L1 kernel and initramfs
#   guest/guest.img                    the L2 disk image
# (not root and /var/cache not writable: ~/.cache/minivmm-lab)
if [ -n "${MINIVMM_LAB_CACHE:-}" ]; then
	LAB_CACHE=$MINIVMM_LAB_CACHE
elif mkdir -p /var/cache/minivmm-lab 2>/dev/null && [ -w /var/cache/minivmm-lab ]; then
	LAB_CACHE=/var/cache/minivmm-lab
else
	LAB_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/minivmm-lab
fi
LAB_RECIPES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

lab_log() { echo "${LAB_LOG_PREFIX:-lab}: $*" >&2; }
lab_die() { lab_log "error: $*"; exit 1; }

# lab_kernel_version: print the kernel version (e.g. 6.1.0-37-amd64) the lab
# uses. $LAB_KVER overrides; otherwise apt resolves the metapackage
# linux-image-amd64 (security updates move it); offline, the cached one.
lab_kernel_version() {
	local v
	if [ -n "${LAB_KVER:-}" ]; then
		echo "$LAB_KVER"
		return
	fi
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1)
	if [ -z "$v" ] && [ -f "$LAB_CACHE/kernel/current" ]; then
		v=$(cat "$LAB_CACHE/kernel/current")
	fi
	[ -n "$v" ] || lab_die "cannot resolve the kernel version (apt-cache depends linux-image-amd64)"
	echo "$v"
}

# lab_kernel_fetch KVER: download, extract and depmod the kernel package into
# $LAB_CACHE/kernel/KVER once. Prints the directory.
lab_kernel_fetch() {
	local kver=$1 kdir="$LAB_CACHE/kernel/$1" deb tmp
	if [ -f "$kdir/.done" ]; then
		echo "$kdir"
		return
	fi
	mkdir -p "$LAB_CACHE/debs" "$LAB_CACHE/kernel"
	deb=$(ls "$LAB_CACHE"/debs/linux-image-"$kver"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		lab_log "downloading linux-image-$kver"
		(cd "$LAB_CACHE/debs" && apt-get download -q "linux-image-$kver" >&2) ||
			lab_die "apt-get download linux-image-$kver failed"
		deb=$(ls "$LAB_CACHE"/debs/linux-image-"$kver"_*.deb | head -n1)
	fi
	tmp="$kdir.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	lab_log "extracting $(basename "$deb")"
	dpkg-deb -x "$deb" "$tmp"
	[ -f "$tmp/boot/vmlinuz-$kver" ] || lab_die "$deb has no boot/vmlinuz-$kver"
	depmod -b "$tmp" "$kver"
	rm -rf "$kdir"
	mv "$tmp" "$kdir"
	touch "$kdir/.done"
	echo "$kver" > "$LAB_CACHE/kernel/current"
	echo "$kdir"
}

# lab_mod_order KDIR KVER MOD...: print, in load order, the module files
# (relative to KDIR/lib/modules/KVER) needed for MODs; built-in ones are
# skipped, unknown ones are an error.
lab_mod_order() {
	local kdir=$1 kver=$2 m line seen=" "
	shift 2
	for m in "$@"; do
		modprobe -d "$kdir" -S "$kver" --show-depends "$m" >/dev/null 2>&1 ||
			lab_die "module $m not in kernel $kver"
		while read -r line; do
			case "$line" in
			insmod\ *)
				line=${line#insmod }
				line=${line%% *}
				line=${line#"$kdir/lib/modules/$kver/"}
				case "$seen" in *" $line "*) continue ;; esac
				seen="$seen$line "
				echo "$line"
				;;
			esac
		done < <(modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null)
	done
}

# lab_mod_exists KDIR KVER MOD: true if the kernel has MOD as a module
lab_mod_exists() {
	modprobe -d "$1" -S "$2" --show-depends "$3" 2>/dev/null | grep -q '^insmod '
}

# lab_stamp FILE INPUT...: true if FILE exists and its recorded stamp matches
# the hash of the INPUT strings/files; used to skip rebuilds.
lab_stamp_hash() {
	local x
	for x in "$@"; do
		if [ -f "$x" ]; then sha256sum "$x"; else echo "$x"; fi
	done | sha256sum | cut -d' ' -f1
}
