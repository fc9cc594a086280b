// SPDX-License-Identifier: MIT
#include "vmm/options.h"
#include "vmm/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	OPT_HUGEPAGES = 0x100,
	OPT_READONLY,
	OPT_NO_SECCOMP,
	OPT_SECCOMP_SELFTEST,
	OPT_TESTDEV,
	OPT_VF,
	OPT_VF_UNSAFE,
	OPT_API,
	OPT_RESTORE,
	OPT_INCOMING,
	OPT_MIG_PSK,
	OPT_MIG_X509,
	OPT_MIG_INSECURE,
	OPT_DECOMPRESS,
	OPT_KERNEL_CACHE,
};

static const struct option options_long[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'c' },
	{ "mem", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'p' },
	{ "net", required_argument, NULL, 'n' },
	{ "hugepages", no_argument, NULL, OPT_HUGEPAGES },
	{ "readonly", no_argument, NULL, OPT_READONLY },
	{ "decompress", required_argument, NULL, OPT_DECOMPRESS },
	{ "kernel-cache", required_argument, NULL, OPT_KERNEL_CACHE },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	/* hidden: the kvm suite's check that each thread kind's filter kills (docs/security.md) */
	{ "seccomp-selftest", required_argument, NULL, OPT_SECCOMP_SELFTEST },
	{ "testdev", no_argument, NULL, OPT_TESTDEV },
	{ "vf", required_argument, NULL, OPT_VF },
	{ "vf-allow-unsafe-interrupts", no_argument, NULL, OPT_VF_UNSAFE },
	{ "api", required_argument, NULL, OPT_API },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "migration-psk", required_argument, NULL, OPT_MIG_PSK },
	{ "migration-x509", required_argument, NULL, OPT_MIG_X509 },
	{ "insecure-migration", no_argument, NULL, OPT_MIG_INSECURE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

void options__usage(void *file, const char *prog)
{
	fprintf(file,
		"Usage: %s [OPTIONS] [IMAGE]\n"
		"Boot a Linux guest from a raw disk image under KVM.\n"
		"\n"
		"Without --kernel, the kernel and initrd are read from /boot in the image's\n"
		"ext2/3/4 filesystem (bare, or in an MBR or GPT partition); the image is the\n"
		"guest's root disk (virtio-blk, /dev/vda).\n"
		"\n"
		"  -k, --kernel PATH     bzImage or ELF64 kernel to boot\n"
		"  -i, --initrd PATH     initial ramdisk\n"
		"  -c, --cmdline STR     kernel command line (default \"%s\")\n"
		"  -m, --mem SIZE        guest RAM, e.g. 512M, 2G (default 512M)\n"
		"  -p, --cpus N          number of vCPUs (default 1, at most %d)\n"
		"  -n, --net OPTS        virtio-net NIC: tap=NAME[,mac=52:54:00:xx:xx:xx][,id=NAME]\n"
		"                        [,failover=on] (offer VIRTIO_NET_F_STANDBY)\n"
		"                        [,vhost=on|off] (the kernel's vhost-net moves the frames;\n"
		"                        default: on when /dev/vhost-net opens, else userspace)\n"
		"                        (the tap is created when absent); repeatable, %d at most\n"
		"      --hugepages       back guest RAM with 2 MiB hugepages\n"
		"      --readonly        attach IMAGE read-only\n"
		"      --decompress host|guest\n"
		"                        who decompresses a bzImage's kernel: minivmm (default),\n"
		"                        which boots the kernel's ELF directly and does its KASLR\n"
		"                        in the guest's place, or the guest's own decompressor\n"
		"      --kernel-cache DIR|off\n"
		"                        where minivmm keeps decompressed kernels for later boots\n"
		"                        (yours, not group/other-writable; the newest few kept);\n"
		"                        default /var/cache/minivmm/kernels as root, else\n"
		"                        $XDG_CACHE_HOME/minivmm/kernels; off: none\n"
		"      --no-seccomp      run without the per-thread system call filters (debugging)\n"
		"      --testdev         add the test device (ports 0x500-0x50b) used by test guests\n"
		"      --vf DDDD:BB:DD.F[,failover=on|MAC][,id=NAME]\n"
		"                        assign this PCI function (an SR-IOV VF bound to vfio-pci)\n"
		"                        through VFIO; repeatable, %d at most; ids vf0, vf1, ...\n"
		"                        failover=on: the primary of the --net NIC with failover=on\n"
		"                        (failover=MAC: of the one with that MAC); it is plugged\n"
		"                        only once the guest negotiated STANDBY, and gets the NIC's\n"
		"                        MAC (set through the PF)\n"
		"      --vf-allow-unsafe-interrupts\n"
		"                        assign VFs even without IOMMU interrupt remapping\n"
		"      --api PATH        control socket (mode 0600): `%s ctl PATH status|devices|\n"
		"                        pause|resume|quit|events|device-add|device-del|snapshot`\n"
		"                        drives the VM (docs/api.md)\n"
		"      --restore FILE    start from a snapshot (`ctl PATH snapshot FILE`) instead of\n"
		"                        booting: the same options as the VM it was taken from\n"
		"      --incoming tcp:HOST:PORT|unix:PATH\n"
		"                        wait for a migrating VM (`ctl SOCK migrate URI` on its\n"
		"                        host) instead of booting: the same machine options\n"
		"      --migration-psk FILE\n"
		"                        migrate over TLS 1.3 with the pre-shared key in FILE (one\n"
		"                        line IDENTITY:HEXKEY, as psktool writes it); both hosts\n"
		"      --migration-x509 DIR\n"
		"                        migrate over TLS 1.3 with X.509: DIR/ca.pem, cert.pem,\n"
		"                        key.pem (both ends present and check certificates)\n"
		"      --insecure-migration\n"
		"                        allow --incoming on a non-loopback TCP address without\n"
		"                        TLS (plain TCP: whoever reaches it can hand over a guest)\n"
		"  -v, --verbose         more log output (repeat for debug)\n"
		"  -q, --quiet           errors only\n"
		"  -h, --help            this help\n"
		"  -V, --version         print the version\n"
		"\n"
		"The console is the guest's first serial port on this terminal; Ctrl-A x quits.\n"
		"\n"
		"Host side of VF passthrough (see `%s sriov --help`):\n"
		"  %s sriov PF [--num-vfs N | --vf N --mac M --vlan V ...]  manage VFs\n"
		"  %s sriov bind|unbind VF  move a VF to or from vfio-pci\n"
		"  %s doctor [VF]           check IOMMU, interrupt remapping, groups, memlock\n",
		prog, OPTIONS_DEFAULT_CMDLINE, OPTIONS_MAX_CPUS, OPTIONS_MAX_NICS, OPTIONS_MAX_VFS, prog, prog,
		prog, prog, prog);
}

int options__parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (~0ULL >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int options_hex(const char *s, unsigned int digits, unsigned int *out)
{
	unsigned int i, v = 0;

	for (i = 0; i < digits; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (unsigned int)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int options__check_bdf(const char *s, char *err, size_t errlen)
{
	unsigned int dom, bus, dev, fn;

	if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') {
		snprintf(err, errlen,
			 "--vf '%s': expected a PCI address DDDD:BB:DD.F such as 0000:03:10.1 "
			 "(see lspci -D)", s);
		return -EINVAL;
	}
	if (options_hex(s, 4, &dom) || options_hex(s + 5, 2, &bus) || options_hex(s + 8, 2, &dev) ||
	    options_hex(s + 11, 1, &fn)) {
		snprintf(err, errlen, "--vf '%s': domain, bus and device must be hexadecimal", s);
		return -EINVAL;
	}
	if (dev > 0x1f) {
		snprintf(err, errlen, "--vf '%s': device %02x is out of range (00-1f)", s, dev);
		return -EINVAL;
	}
	if (fn > 7) {
		snprintf(err, errlen, "--vf '%s': function %x is out of range (0-7)", s, fn);
		return -EINVAL;
	}
	return 0;
}

static int options_mac(const char *s, size_t len, uint8_t mac[6])
{
	unsigned int i, v;

	if (len != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		if (options_hex(s + 3 * i, 2, &v) || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)v;
	}
	return 0;
}

int options__parse_vf(const char *spec, const char *what, struct options_vf *out, char *err,
		      size_t errlen)
{
	const char *comma = strchr(spec, ','), *opt;
	size_t blen = comma ? (size_t)(comma - spec) : strlen(spec);
	bool seen_failover = false;

	memset(out, 0, sizeof(*out));
	if (blen >= sizeof(out->bdf))
		blen = sizeof(out->bdf) - 1; /* too long: check_bdf says so */
	memcpy(out->bdf, spec, blen);
	out->bdf[blen] = '\0';
	if (options__check_bdf(out->bdf, err, errlen))
		return -EINVAL;
	for (opt = comma; opt; opt = strchr(opt + 1, ',')) {
		const char *v = opt + 1, *next = strchrnul(v, ',');
		size_t vlen = (size_t)(next - v);

		if (!strncmp(v, "id=", 3)) {
			size_t ilen = vlen - 3;

			if (out->id[0]) {
				snprintf(err, errlen, "%s '%s': id given twice", what, spec);
				return -EINVAL;
			}
			if (options__check_id(v + 3, ilen, err, errlen))
				return -EINVAL;
			memcpy(out->id, v + 3, ilen);
			out->id[ilen] = '\0';
		} else if (!strncmp(v, "failover=", 9)) {
			if (seen_failover) {
				snprintf(err, errlen, "%s '%s': failover given twice", what, spec);
				return -EINVAL;
			}
			seen_failover = true;
			if (vlen == 11 && !strncmp(v + 9, "on", 2)) {
				out->failover = true;
			} else if (vlen == 12 && !strncmp(v + 9, "off", 3)) {
				out->failover = false;
			} else if (!options_mac(v + 9, vlen - 9, out->failover_mac)) {
				out->failover = true;
				out->has_failover_mac = true;
			} else {
				snprintf(err, errlen, "%s '%s': failover=%.*s: expected on, off or the "
					 "standby NIC's MAC (52:54:00:12:34:56)", what, spec,
					 (int)(vlen - 9), v + 9);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen, "%s '%s': unknown option '%.*s' (expected failover=on|MAC "
				 "or id=NAME)", what, spec, (int)vlen, v);
			return -EINVAL;
		}
	}
	return 0;
}

int options__check_id(const char *id, size_t len, char *err, size_t errlen)
{
	size_t i;

	if (!len || len >= OPTIONS_ID_LEN) {
		snprintf(err, errlen, "id '%.*s': 1 to %d characters", (int)len, id, OPTIONS_ID_LEN - 1);
		return -EINVAL;
	}
	if (!isalpha((unsigned char)id[0])) {
		snprintf(err, errlen, "id '%.*s' must start with a letter", (int)len, id);
		return -EINVAL;
	}
	for (i = 1; i < len; i++) {
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.') {
			snprintf(err, errlen, "id '%.*s' contains '%c' (letters, digits, '-', '_', '.')",
				 (int)len, id, id[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
options_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int options__parse(int argc, char **argv, struct options *o, char *err, size_t errlen)
{
	unsigned long n;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->mem = OPTIONS_DEFAULT_MEM;
	o->cpus = 1;
	o->decompress_host = true;
	optind = 0; /* full re-initialisation (glibc), so tests can parse repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:i:c:m:p:n:vqhV", options_long, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 'm':
			if (options__parse_size(optarg, &o->mem))
				return options_err(err, errlen,
						   "--mem '%s': not a size (use e.g. 512M or 2G)", optarg);
			if (o->mem < (16ULL << 20) || o->mem > (1ULL << 40))
				return options_err(err, errlen,
						   "--mem '%s': must be between 16M and 1T", optarg);
			if (o->mem & ((1ULL << 20) - 1))
				return options_err(err, errlen,
						   "--mem '%s': must be a multiple of 1M", optarg);
			break;
		case 'p':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 || n > OPTIONS_MAX_CPUS) {
				snprintf(err, errlen, "--cpus '%s': expected a number from 1 to %d",
					 optarg, OPTIONS_MAX_CPUS);
				return -EINVAL;
			}
			o->cpus = (unsigned int)n;
			break;
		case 'n':
			if (o->nr_net == OPTIONS_MAX_NICS) {
				snprintf(err, errlen, "--net '%s': at most %d NICs", optarg,
					 OPTIONS_MAX_NICS);
				return -EINVAL;
			}
			o->net[o->nr_net++] = optarg;
			break;
		case OPT_HUGEPAGES: o->hugepages = true; break;
		case OPT_API:
			if (!*optarg)
				return options_err(err, errlen, "--api needs a socket path%s", "");
			o->api = optarg;
			break;
		case OPT_RESTORE:
			if (!*optarg)
				return options_err(err, errlen, "--restore needs a snapshot file%s", "");
			o->restore = optarg;
			break;
		case OPT_INCOMING:
			if (!*optarg)
				return options_err(err, errlen, "--incoming needs tcp:HOST:PORT or unix:PATH%s", "");
			o->incoming = optarg;
			break;
		case OPT_MIG_PSK:
			if (!*optarg)
				return options_err(err, errlen, "--migration-psk needs a key file%s", "");
			o->migration_psk = optarg;
			break;
		case OPT_MIG_X509:
			if (!*optarg)
				return options_err(err, errlen, "--migration-x509 needs a directory%s", "");
			o->migration_x509 = optarg;
			break;
		case OPT_MIG_INSECURE: o->insecure_migration = true; break;
		case OPT_READONLY: o->readonly = true; break;
		case OPT_DECOMPRESS:
			o->decompress_given = true;
			if (!strcmp(optarg, "host")) {
				o->decompress_host = true;
			} else if (!strcmp(optarg, "guest")) {
				o->decompress_host = false;
			} else {
				snprintf(err, errlen, "--decompress: 'guest' or 'host', not '%s'", optarg);
				return -EINVAL;
			}
			break;
		case OPT_KERNEL_CACHE:
			if (!*optarg)
				return options_err(err, errlen, "--kernel-cache needs a directory, or 'off'%s", "");
			o->kernel_cache = strcmp(optarg, "off") ? optarg : NULL;
			o->no_kernel_cache = !strcmp(optarg, "off");
			break;
		case OPT_NO_SECCOMP: o->no_seccomp = true; break;
		case OPT_SECCOMP_SELFTEST: o->seccomp_selftest = optarg; break;
		case OPT_TESTDEV: o->testdev = true; break;
		case OPT_VF: {
			struct options_vf *v;
			unsigned int i;

			if (o->nr_vf == OPTIONS_MAX_VFS)
				return options_err(err, errlen, "--vf '%s': at most %d VFs", optarg,
						   OPTIONS_MAX_VFS);
			v = &o->vf_spec[o->nr_vf];
			if (options__parse_vf(optarg, "--vf", v, err, errlen))
				return -EINVAL;
			for (i = 0; i < o->nr_vf; i++)
				if (!strcasecmp(o->vf[i], v->bdf))
					return options_err(err, errlen, "--vf '%s' given twice", v->bdf);
			memcpy(o->vf_bdf[o->nr_vf], v->bdf, sizeof(v->bdf));
			memcpy(o->vf_id[o->nr_vf], v->id, sizeof(v->id));
			o->vf[o->nr_vf] = o->vf_bdf[o->nr_vf];
			o->nr_vf++;
			break;
		}
		case OPT_VF_UNSAFE: o->vf_allow_unsafe_interrupts = true; break;
		case 'v': o->verbosity++; break;
		case 'q': o->verbosity = -1; break;
		case 'h': o->action = OPTIONS_HELP; return 0;
		case 'V': o->action = OPTIONS_VERSION; return 0;
		case ':':
			return options_err(err, errlen, "option '%s' needs an argument",
					   argv[optind - 1]);
		default:
			return options_err(err, errlen, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		o->image = argv[optind++];
	if (optind < argc)
		return options_err(err, errlen, "unexpected argument '%s' (one IMAGE at most)",
				   argv[optind]);
	if (!o->image && !o->kernel) {
		snprintf(err, errlen, "no IMAGE and no --kernel: nothing to boot");
		return -EINVAL;
	}
	if (o->initrd && !o->kernel)
		return options_err(err, errlen,
				   "--initrd '%s' needs --kernel (the image's own initrd is used otherwise)",
				   o->initrd);
	if (o->migration_psk && o->migration_x509)
		return options_err(err, errlen, "--migration-psk and --migration-x509: one or the "
				   "other%s", "");
	if (o->insecure_migration && (o->migration_psk || o->migration_x509))
		return options_err(err, errlen, "--insecure-migration with TLS credentials: drop "
				   "one%s", "");
	if (o->hugepages && (o->mem & ((2ULL << 20) - 1)))
		return options_err(err, errlen, "--hugepages needs --mem in multiples of 2M%s", "");
	if ((o->kernel_cache || o->no_kernel_cache) && !o->decompress_host)
		return options_err(err, errlen, "--kernel-cache needs --decompress host (the cache "
				   "holds kernels minivmm decompressed)%s", "");
	return 0;
}
