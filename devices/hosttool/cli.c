// SPDX-License-Identifier: MIT
/*
 * Subcommands for the host side of VF passthrough. A host tool: it composes
 * devices/sriov (the PF side: sysfs, rtnetlink, kmod) and devices/vfio
 * (isolation checks, the reset ladder on a VF no VM holds), which know
 * nothing of each other.
 *   minivmm sriov PF                       show the VFs of PF (BDF, driver, MAC, VLAN...)
 *   minivmm sriov PF --num-vfs N           create (or remove, N = 0) VFs
 *   minivmm sriov PF --vf N [--mac M] [--vlan V [--qos Q]] [--spoofchk on|off]
 *                           [--trust on|off]
 *   minivmm sriov bind VF | unbind VF      to and from vfio-pci
 *   minivmm doctor [VF] [--mem SIZE]       host checklist
 * PF is a PCI address or a netdev name. --sysfs-root/--dev-root/--proc-root
 * (undocumented) point the commands at a fake tree for tests.
 */
#include "devices/hosttool/cli.h"
#include "devices/hosttool/doctor.h"
#include "devices/pcisys.h"
#include "devices/sriov/kmod.h"
#include "devices/sriov/netlink.h"
#include "devices/sriov/sysfs.h"
#include "devices/vfio/backend.h"
#include "devices/vfio/check.h"
#include "devices/vfio/standalone.h"
#include "vmm/options.h"

#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_SYSFS_ROOT = 0x100,
	OPT_DEV_ROOT,
	OPT_PROC_ROOT,
	OPT_NUM_VFS,
	OPT_VF,
	OPT_MAC,
	OPT_VLAN,
	OPT_QOS,
	OPT_SPOOFCHK,
	OPT_TRUST,
	OPT_MEM,
	OPT_STEP,
};

struct cli {
	FILE *out, *err;
	const char *sysfs_root, *dev_root, *proc_root;
};

static void cli_usage(FILE *f)
{
	fprintf(f,
		"Usage: minivmm sriov PF                 show the VFs of PF\n"
		"       minivmm sriov PF --num-vfs N     set the number of VFs (0 removes them)\n"
		"       minivmm sriov PF --vf N [--mac MAC] [--vlan ID [--qos P]]\n"
		"                        [--spoofchk on|off] [--trust on|off]\n"
		"                                        configure VF N through the PF\n"
		"       minivmm sriov bind VF            bind VF to vfio-pci (driver_override)\n"
		"       minivmm sriov unbind VF          give VF back to its host driver\n"
		"       minivmm sriov reset VF [--step function|bus|pm]\n"
		"                                        reset a VF bound to vfio-pci that no VM\n"
		"                                        holds: the reset ladder, or one step\n"
		"       minivmm doctor [VF] [--mem SIZE] check the host (and VF) for passthrough\n"
		"\n"
		"PF is a PCI address (0000:03:00.0) or a network interface name; VF is a PCI\n"
		"address. --mem is the guest RAM to pin (default 512M) for the memlock check.\n"
		"Doctor exits 0 when no line says FAIL.\n");
}

static int cli_usage_err(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int cli_usage_err(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fputs("minivmm: ", c->err);
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputs("\nTry 'minivmm sriov --help'.\n", c->err);
	return 2;
}

static int cli_fail(struct cli *c, const char *msg, int ret)
{
	fprintf(c->err, "minivmm: %s\n", msg[0] ? msg : strerror(-ret));
	return 1;
}

static int cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	return *out > max ? -ERANGE : 0;
}

static int cli_parse_onoff(const char *s)
{
	if (!strcmp(s, "on"))
		return 1;
	if (!strcmp(s, "off"))
		return 0;
	return -EINVAL;
}

/* reports a getopt error; returns 2 */
static int cli_getopt_err(struct cli *c, int opt, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (opt == ':')
		return cli_usage_err(c, "option '%s' needs an argument", arg);
	if (optopt)
		return cli_usage_err(c, "unknown option '-%c'", optopt);
	return cli_usage_err(c, "unknown option '%s'", arg);
}

static const char *cli_onoff(int v)
{
	return v < 0 ? "-" : v ? "on" : "off";
}

static const char *cli_link_state(int v)
{
	switch (v) {
	case IFLA_VF_LINK_STATE_AUTO:
		return "auto";
	case IFLA_VF_LINK_STATE_ENABLE:
		return "enable";
	case IFLA_VF_LINK_STATE_DISABLE:
		return "disable";
	default:
		return "-";
	}
}

static int cli_show(struct cli *c, const char *pf)
{
	struct sriov_vf *vfs;
	struct sriov_link *link;
	char ifname[PCISYS_NAME_LEN] = "", msg[512] = "";
	unsigned int num, total;
	int n, ret, nlret = -ENOENT;

	ret = sriov__num_vfs(c->sysfs_root, pf, &num, &total);
	if (ret == -ENOTSUP) {
		fprintf(c->err, "minivmm: %s is not an SR-IOV physical function\n", pf);
		return 1;
	}
	if (ret) {
		fprintf(c->err, "minivmm: cannot read the VFs of %s: %s\n", pf, strerror(-ret));
		return 1;
	}
	vfs = calloc(SRIOV_MAX_VFS, sizeof(*vfs));
	link = calloc(1, sizeof(*link));
	if (!vfs || !link) {
		ret = 1;
		fprintf(c->err, "minivmm: out of memory\n");
		goto out;
	}
	n = sriov__list_vfs(c->sysfs_root, pf, vfs, SRIOV_MAX_VFS);
	if (n < 0) {
		fprintf(c->err, "minivmm: cannot list the VFs of %s: %s\n", pf, strerror(-n));
		ret = 1;
		goto out;
	}
	if (!sriov__netdev(c->sysfs_root, pf, ifname, sizeof(ifname)) && n > 0)
		nlret = sriov_nl__get_link(ifname, link, msg, sizeof(msg));
	fprintf(c->out, "PF %s%s%s%s: %u of %u VFs\n", pf, ifname[0] ? " (" : "", ifname,
		ifname[0] ? ")" : "", num, total);
	if (n > 0)
		fprintf(c->out, "%-4s %-13s %-10s %-17s %-5s %-3s %-8s %-5s %s\n", "VF", "BDF",
			"DRIVER", "MAC", "VLAN", "QOS", "SPOOFCHK", "TRUST", "LINK");
	for (int i = 0; i < n; i++) {
		const struct sriov_vf_state *s = NULL;
		char mac[18] = "-", vlan[8] = "-", qos[4] = "-";

		for (unsigned int j = 0; !nlret && j < link->nr_vfs; j++)
			if (link->vfs[j].vf == vfs[i].index)
				s = &link->vfs[j];
		if (s) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", s->mac[0],
				 s->mac[1], s->mac[2], s->mac[3], s->mac[4], s->mac[5]);
			snprintf(vlan, sizeof(vlan), "%u", s->vlan);
			snprintf(qos, sizeof(qos), "%u", s->qos);
		}
		fprintf(c->out, "%-4u %-13s %-10s %-17s %-5s %-3s %-8s %-5s %s\n", vfs[i].index,
			vfs[i].bdf, vfs[i].driver[0] ? vfs[i].driver : "-", mac, vlan, qos,
			cli_onoff(s ? s->spoofchk : -1), cli_onoff(s ? s->trust : -1),
			cli_link_state(s ? s->link_state : -1));
	}
	if (n > 0 && nlret)
		fprintf(c->out, "(MAC/VLAN settings unavailable: %s)\n",
			!ifname[0] ? "the PF has no network interface" :
			msg[0] ? msg : strerror(-nlret));
	ret = 0;
out:
	free(vfs);
	free(link);
	return ret;
}

/*
 * the VF address after a verb (bind, unbind, reset) into bdf: 0, or the
 * usage error's exit status
 */
static int cli_vf_arg(struct cli *c, int argc, char **argv, char bdf[PCISYS_BDF_LEN])
{
	if (optind + 1 >= argc)
		return cli_usage_err(c, "%s needs a VF address (e.g. 0000:03:10.1)", argv[optind]);
	if (optind + 2 < argc)
		return cli_usage_err(c, "unexpected argument '%s'", argv[optind + 2]);
	if (pcisys__parse_bdf(argv[optind + 1], bdf))
		return cli_usage_err(c, "'%s' is not a PCI address (expected 0000:03:10.1)",
				     argv[optind + 1]);
	return 0;
}

static int cli_bind(struct cli *c, bool bind, int argc, char **argv)
{
	char bdf[PCISYS_BDF_LEN], msg[1024] = "";
	int ret, group;

	ret = cli_vf_arg(c, argc, argv, bdf);
	if (ret)
		return ret;
	if (bind) {
		/* on the real sysfs, load vfio-pci (and its IOMMU backend) as modprobe would */
		char drv[PCISYS_NAME_LEN];

		if (!strcmp(c->sysfs_root, "/sys") &&
		    !pcisys__pci_driver(c->sysfs_root, bdf, drv, sizeof(drv)) &&
		    !pcisys__driver_loaded(c->sysfs_root, "vfio-pci")) {
			ret = sriov__load_module("vfio-pci", msg, sizeof(msg));
			if (!ret && access("/sys/module/vfio_iommu_type1", F_OK))
				ret = sriov__load_module("vfio_iommu_type1", msg, sizeof(msg));
			if (ret)
				return cli_fail(c, msg, ret);
			fprintf(c->out, "loaded the vfio-pci driver\n");
		}
		ret = sriov__bind_vfio(c->sysfs_root, bdf, msg, sizeof(msg));
		if (ret)
			return cli_fail(c, msg, ret);
		group = vfio_check__group(c->sysfs_root, bdf);
		if (group >= 0)
			fprintf(c->out, "%s bound to vfio-pci (IOMMU group %d)\n", bdf, group);
		else
			fprintf(c->out, "%s bound to vfio-pci (no IOMMU group: see `minivmm doctor "
				"%s`)\n", bdf, bdf);
		return 0;
	}
	ret = sriov__unbind_vfio(c->sysfs_root, bdf, msg, sizeof(msg));
	if (ret)
		return cli_fail(c, msg, ret);
	fprintf(c->out, "%s released from vfio-pci\n", bdf);
	return 0;
}

static int cli_reset(struct cli *c, enum vfio_reset_step only, int argc, char **argv)
{
	struct vfio_reset_report rep;
	char bdf[PCISYS_BDF_LEN], drv[PCISYS_NAME_LEN], msg[1024] = "";
	enum vfio_reset_step s;
	int ret;

	ret = cli_vf_arg(c, argc, argv, bdf);
	if (ret)
		return ret;
	ret = pcisys__pci_driver(c->sysfs_root, bdf, drv, sizeof(drv));
	if (ret == -ENODEV) {
		pcisys__msg_set(msg, sizeof(msg), "no PCI device %s", bdf);
		return cli_fail(c, msg, ret);
	}
	if (!ret && strcmp(drv, "vfio-pci")) {
		pcisys__msg_set(msg, sizeof(msg), "%s is %s%s: reset works on a device bound to "
			       "vfio-pci that no VM holds (`minivmm sriov bind %s` first)", bdf,
			       drv[0] ? "bound to " : "not bound to any driver", drv, bdf);
		return cli_fail(c, msg, -EBUSY);
	}
	ret = vfio_standalone__reset(vfio_backend__real(), bdf, only, &rep, msg, sizeof(msg));
	for (s = VFIO_RESET_FUNCTION; s < VFIO_RESET_NR_STEPS; s++) {
		if (!rep.tried[s])
			continue;
		fprintf(c->out, "%s: %s: %s\n", bdf, vfio_reset__step_name(s),
			!rep.result[s] ? "ok" :
			rep.result[s] == -ENOTSUP ? "not available" :
			rep.result[s] == -EIO ? "failed, the device does not answer" :
			strerror(-rep.result[s]));
	}
	if (ret)
		return cli_fail(c, msg, ret);
	if (rep.step == VFIO_RESET_NONE)
		fprintf(c->out, "%s: not reset (no reset method available); it answers\n", bdf);
	else
		fprintf(c->out, "%s: answers after: %s\n", bdf, vfio_reset__step_name(rep.step));
	return 0;
}

static int cli_sriov(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "num-vfs", required_argument, NULL, OPT_NUM_VFS },
		{ "vf", required_argument, NULL, OPT_VF },
		{ "mac", required_argument, NULL, OPT_MAC },
		{ "vlan", required_argument, NULL, OPT_VLAN },
		{ "qos", required_argument, NULL, OPT_QOS },
		{ "spoofchk", required_argument, NULL, OPT_SPOOFCHK },
		{ "trust", required_argument, NULL, OPT_TRUST },
		{ "step", required_argument, NULL, OPT_STEP },
		{ "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sriov_vf_config vc = { .spoofchk = -1, .trust = -1 };
	enum vfio_reset_step step = VFIO_RESET_NONE;
	bool have_num = false, have_vf = false, have_qos = false;
	char pf[PCISYS_BDF_LEN], ifname[PCISYS_NAME_LEN], msg[1024] = "";
	unsigned long num = 0, v;
	int opt, ret;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_NUM_VFS:
			if (cli_parse_uint(optarg, SRIOV_MAX_VFS, &num))
				return cli_usage_err(c, "--num-vfs: '%s' is not a VF count (0-%d)",
						     optarg, SRIOV_MAX_VFS);
			have_num = true;
			break;
		case OPT_VF:
			if (cli_parse_uint(optarg, SRIOV_MAX_VFS - 1, &v))
				return cli_usage_err(c, "--vf: '%s' is not a VF number", optarg);
			vc.vf = (unsigned int)v;
			have_vf = true;
			break;
		case OPT_MAC:
			if (sriov_nl__parse_mac(optarg, vc.mac))
				return cli_usage_err(c, "--mac: '%s' is not a MAC address "
						     "(expected 52:54:00:12:34:56)", optarg);
			if (vc.mac[0] & 1)
				return cli_usage_err(c, "--mac: '%s' is a multicast address",
						     optarg);
			vc.set_mac = true;
			break;
		case OPT_VLAN:
			if (cli_parse_uint(optarg, 4095, &v))
				return cli_usage_err(c, "--vlan: '%s' is not a VLAN id (0-4095, 0 "
						     "removes the VLAN)", optarg);
			vc.vlan = (uint16_t)v;
			vc.set_vlan = true;
			break;
		case OPT_QOS:
			if (cli_parse_uint(optarg, 7, &v))
				return cli_usage_err(c, "--qos: '%s' is not a priority (0-7)", optarg);
			vc.qos = (uint8_t)v;
			have_qos = true;
			break;
		case OPT_SPOOFCHK:
			vc.spoofchk = cli_parse_onoff(optarg);
			if (vc.spoofchk < 0)
				return cli_usage_err(c, "--spoofchk: '%s' must be on or off", optarg);
			break;
		case OPT_TRUST:
			vc.trust = cli_parse_onoff(optarg);
			if (vc.trust < 0)
				return cli_usage_err(c, "--trust: '%s' must be on or off", optarg);
			break;
		case OPT_STEP:
			if (!strcmp(optarg, "function"))
				step = VFIO_RESET_FUNCTION;
			else if (!strcmp(optarg, "bus"))
				step = VFIO_RESET_HOT;
			else if (!strcmp(optarg, "pm"))
				step = VFIO_RESET_PM;
			else
				return cli_usage_err(c, "--step: '%s' must be function, bus or pm",
						     optarg);
			break;
		case OPT_SYSFS_ROOT:
			c->sysfs_root = optarg;
			break;
		case 'h':
			cli_usage(c->out);
			return 0;
		default:
			return cli_getopt_err(c, opt, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_err(c, "sriov needs a PF (PCI address or interface name), "
				     "or bind/unbind VF");
	if (!strcmp(argv[optind], "bind") || !strcmp(argv[optind], "unbind") ||
	    !strcmp(argv[optind], "reset")) {
		if (have_num || have_vf || vc.set_mac || vc.set_vlan || have_qos ||
		    vc.spoofchk >= 0 || vc.trust >= 0)
			return cli_usage_err(c, "%s takes no VF options", argv[optind]);
		if (!strcmp(argv[optind], "reset"))
			return cli_reset(c, step, argc, argv);
		if (step != VFIO_RESET_NONE)
			return cli_usage_err(c, "--step goes with reset");
		return cli_bind(c, !strcmp(argv[optind], "bind"), argc, argv);
	}
	if (step != VFIO_RESET_NONE)
		return cli_usage_err(c, "--step goes with reset");
	if (optind + 1 < argc)
		return cli_usage_err(c, "unexpected argument '%s'", argv[optind + 1]);
	if (have_qos && !vc.set_vlan)
		return cli_usage_err(c, "--qos needs --vlan");
	if (!have_vf && (vc.set_mac || vc.set_vlan || vc.spoofchk >= 0 || vc.trust >= 0))
		return cli_usage_err(c, "--mac, --vlan, --spoofchk and --trust need --vf N");
	if (have_vf && have_num)
		return cli_usage_err(c, "--num-vfs and --vf cannot be combined");
	if (have_vf && !vc.set_mac && !vc.set_vlan && vc.spoofchk < 0 && vc.trust < 0)
		return cli_usage_err(c, "--vf %u: nothing to set (give --mac, --vlan, --spoofchk "
				     "or --trust)", vc.vf);

	ret = sriov__resolve_pf(c->sysfs_root, argv[optind], pf, msg, sizeof(msg));
	if (ret)
		return cli_fail(c, msg, ret);
	if (have_num) {
		ret = sriov__set_num_vfs(c->sysfs_root, pf, (unsigned int)num, msg, sizeof(msg));
		if (ret)
			return cli_fail(c, msg, ret);
		return cli_show(c, pf);
	}
	if (have_vf) {
		unsigned int cur, total;

		ret = sriov__num_vfs(c->sysfs_root, pf, &cur, &total);
		if (ret == -ENOTSUP) {
			fprintf(c->err, "minivmm: %s is not an SR-IOV physical function\n", pf);
			return 1;
		}
		if (!ret && vc.vf >= cur) {
			fprintf(c->err, "minivmm: --vf %u: %s has %u VF%s%s\n", vc.vf, pf, cur,
				cur == 1 ? "" : "s", cur ? "" : " (create them with --num-vfs N)");
			return 1;
		}
		if (sriov__netdev(c->sysfs_root, pf, ifname, sizeof(ifname))) {
			fprintf(c->err, "minivmm: PF %s has no network interface (is its driver "
				"loaded?)\n", pf);
			return 1;
		}
		ret = sriov_nl__set_vf(ifname, &vc, msg, sizeof(msg));
		if (ret) {
			fprintf(c->err, "minivmm: setting VF %u of %s failed: %s\n", vc.vf, ifname,
				msg[0] ? msg : strerror(-ret));
			return 1;
		}
		fprintf(c->out, "VF %u of %s (%s) updated\n", vc.vf, ifname, pf);
		return 0;
	}
	return cli_show(c, pf);
}

static int cli_doctor(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT },
		{ "dev-root", required_argument, NULL, OPT_DEV_ROOT },
		{ "proc-root", required_argument, NULL, OPT_PROC_ROOT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor_opts o = { .pin_bytes = OPTIONS_DEFAULT_MEM };
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_MEM:
			if (options__parse_size(optarg, &o.pin_bytes) || !o.pin_bytes)
				return cli_usage_err(c, "--mem: '%s' is not a size (e.g. 512M, 2G)",
						     optarg);
			break;
		case OPT_SYSFS_ROOT:
			c->sysfs_root = optarg;
			break;
		case OPT_DEV_ROOT:
			c->dev_root = optarg;
			break;
		case OPT_PROC_ROOT:
			c->proc_root = optarg;
			break;
		case 'h':
			cli_usage(c->out);
			return 0;
		default:
			return cli_getopt_err(c, opt, argv);
		}
	}
	if (optind + 1 < argc)
		return cli_usage_err(c, "unexpected argument '%s'", argv[optind + 1]);
	o.vf = optind < argc ? argv[optind] : NULL;
	o.sysfs_root = c->sysfs_root;
	o.dev_root = c->dev_root;
	o.proc_root = c->proc_root;
	return doctor__run(&o, c->out) ? 1 : 0;
}

int sriov_cli__run(int argc, char **argv, FILE *out, FILE *err)
{
	struct cli c = {
		.out = out, .err = err,
		.sysfs_root = "/sys", .dev_root = "/dev", .proc_root = "/proc",
	};

	if (argc < 1)
		return cli_usage_err(&c, "missing subcommand");
	if (!strcmp(argv[0], "doctor"))
		return cli_doctor(&c, argc, argv);
	if (!strcmp(argv[0], "sriov"))
		return cli_sriov(&c, argc, argv);
	return cli_usage_err(&c, "unknown subcommand '%s'", argv[0]);
}

int sriov_cli__main(int argc, char **argv)
{
	return sriov_cli__run(argc, argv, stdout, stderr);
}
