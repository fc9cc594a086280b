/* SPDX-License-Identifier: MIT */
/* Command line parsing into a machine description; pure, unit-tested. */
#ifndef MINIVMM_VMM_OPTIONS_H
#define MINIVMM_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPTIONS_MAX_NICS 4
#define OPTIONS_DEFAULT_MEM (512ULL << 20)
#define OPTIONS_DEFAULT_CMDLINE "console=ttyS0 root=/dev/vda"
#define OPTIONS_MAX_CPUS 64
#define OPTIONS_MAX_VFS 8
#define OPTIONS_ID_LEN 16 /* a device id (net0, vf0, uplink) with its NUL */

enum options_action { OPTIONS_RUN, OPTIONS_HELP, OPTIONS_VERSION };

/* one --vf (or the control socket's device-add vf): BDF[,failover=on|MAC][,id=NAME] */
struct options_vf {
	char bdf[16];
	char id[OPTIONS_ID_LEN];   /* "" when not given */
	bool failover;             /* failover=on or failover=MAC: pair with a STANDBY NIC */
	bool has_failover_mac;     /* failover=MAC: the NIC with this MAC */
	uint8_t failover_mac[6];
};

struct options {
	enum options_action action;
	const char *image;      /* raw disk image: root disk, and kernel source without --kernel */
	const char *kernel;
	const char *initrd;
	const char *cmdline;    /* NULL: the default */
	uint64_t mem;
	unsigned int cpus;
	bool hugepages;
	bool readonly;
	bool decompress_host;     /* --decompress host (default): minivmm unpacks a bzImage's kernel */
	const char *kernel_cache; /* --kernel-cache DIR, or NULL: the default one (x86_unpack__default_cache) */
	bool no_kernel_cache;     /* --kernel-cache off */
	bool decompress_given;    /* --decompress was on the command line (not the default) */
	bool no_seccomp;          /* --no-seccomp: no system call filters */
	const char *seccomp_selftest; /* hidden --seccomp-selftest=KIND, or NULL */
	bool testdev;
	int verbosity;          /* 0 normal, <0 quiet, >0 verbose */
	const char *net[OPTIONS_MAX_NICS];
	unsigned int nr_net;
	const char *vf[OPTIONS_MAX_VFS];   /* PCI functions to assign through VFIO (DDDD:BB:DD.F) */
	char vf_id[OPTIONS_MAX_VFS][OPTIONS_ID_LEN]; /* id=NAME of each --vf, "" when not given */
	char vf_bdf[OPTIONS_MAX_VFS][16];  /* storage vf[] points into */
	struct options_vf vf_spec[OPTIONS_MAX_VFS]; /* each --vf in full */
	unsigned int nr_vf;
	bool vf_allow_unsafe_interrupts;   /* assign even without interrupt remapping */
	const char *api;                   /* the control socket's path (--api), or NULL */
	const char *restore;               /* --restore FILE: a snapshot to start from, or NULL */
	const char *incoming;              /* --incoming URI: a migration to receive, or NULL */
	const char *migration_psk;         /* --migration-psk FILE: TLS with a pre-shared key */
	const char *migration_x509;        /* --migration-x509 DIR: TLS with certificates */
	bool insecure_migration;           /* --incoming on the network without TLS, knowingly */
};

/* parses a size like 512M, 2G, 65536K, 1048576 (bytes); 0 or -EINVAL */
int options__parse_size(const char *s, uint64_t *out);
/*
 * Checks a PCI address in the full DDDD:BB:DD.F form (hex domain, bus and
 * device 00-1f, function 0-7). 0, or -EINVAL with the reason in err.
 */
int options__check_bdf(const char *s, char *err, size_t errlen);
/*
 * Parses a VF spec BDF[,failover=on|MAC][,id=NAME] (what names it in
 * messages, e.g. "--vf"). 0, or -EINVAL with the reason in err.
 */
int options__parse_vf(const char *spec, const char *what, struct options_vf *out, char *err,
		      size_t errlen);
/*
 * Checks a device id given with id=NAME (--net, --vf): 1 to 15 characters,
 * a letter first, then letters, digits, '-', '_' or '.'. 0, or -EINVAL with
 * the reason in err.
 */
int options__check_id(const char *id, size_t len, char *err, size_t errlen);
/*
 * Fills o from argv. Returns 0, or -EINVAL with a message naming the bad
 * argument in err. Uses getopt_long (resets optind itself).
 */
int options__parse(int argc, char **argv, struct options *o, char *err, size_t errlen);
void options__usage(void *file /* FILE * */, const char *prog);

#endif
