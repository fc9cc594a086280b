// SPDX-License-Identifier: MIT
/*
 * SR-IOV host side: sysfs (PF lookup, VF count, VF listing, vfio-pci binding)
 * on a fake tree; rtnetlink messages built and parsed back byte for byte, and
 * a real RTM_GETLINK/RTM_SETLINK on loopback in a fresh network namespace;
 * the `sriov` command line and its argument errors.
 */
#include "devices/hosttool/cli.h"
#include "devices/sriov/kmod.h"
#include "devices/sriov/netlink.h"
#include "devices/sriov/sysfs.h"
#include "fake_sysfs.h"

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <limits.h>
#include <sched.h>
#include <sys/inotify.h>

static struct fake F;
static char msg[2048];

/* PF 0000:03:00.0 (igb, enp3s0) with VFs 0, 2 and 10 */
static void build_pf(void)
{
	uint8_t cfg[FK_CFG];

	fk_init(&F);
	fk_cfg_init(cfg, 4);
	fk_pci(&F, NULL, "0000:00:1c.0", cfg, sizeof(cfg));
	fk_cfg_init(cfg, 0);
	fk_pci(&F, "0000:00:1c.0", "0000:03:00.0", cfg, sizeof(cfg));
	fk_driver(&F, "0000:03:00.0", "igb");
	fk_file(&F, "7\n", "bus/pci/devices/0000:03:00.0/sriov_totalvfs");
	fk_file(&F, "3\n", "bus/pci/devices/0000:03:00.0/sriov_numvfs");
	fk_dir(&F, "bus/pci/devices/0000:03:00.0/net/enp3s0");
	fk_link(&F, "class/net/enp3s0/device", "bus/pci/devices/0000:03:00.0");
	fk_dir(&F, "class/net/lo");
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.0", cfg, sizeof(cfg));
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.4", cfg, sizeof(cfg));
	fk_pci(&F, "0000:00:1c.0", "0000:03:11.4", cfg, sizeof(cfg));
	fk_link(&F, "bus/pci/devices/0000:03:00.0/virtfn0", "bus/pci/devices/0000:03:10.0");
	fk_link(&F, "bus/pci/devices/0000:03:00.0/virtfn2", "bus/pci/devices/0000:03:10.4");
	fk_link(&F, "bus/pci/devices/0000:03:00.0/virtfn10", "bus/pci/devices/0000:03:11.4");
	for (int i = 0; i < 3; i++) {
		static const char *const vf[] = { "0000:03:10.0", "0000:03:10.4", "0000:03:11.4" };
		char rel[128];

		snprintf(rel, sizeof(rel), "bus/pci/devices/%s/physfn", vf[i]);
		fk_link(&F, rel, "bus/pci/devices/0000:03:00.0");
	}
	fk_driver(&F, "0000:03:10.0", "igbvf");
	fk_driver(&F, "0000:03:10.4", "vfio-pci");
}

static void teardown(void)
{
	fk_fini(&F);
}

TestSuite(sriov, .fini = teardown);

Test(sriov, parse_bdf)
{
	char b[PCISYS_BDF_LEN];

	cr_assert_eq(pcisys__parse_bdf("0000:03:10.1", b), 0);
	cr_assert_str_eq(b, "0000:03:10.1");
	cr_assert_eq(pcisys__parse_bdf("03:1F.7", b), 0);
	cr_assert_str_eq(b, "0000:03:1f.7");
	cr_assert_eq(pcisys__parse_bdf("0001:ab:00.0", b), 0);
	cr_assert_str_eq(b, "0001:ab:00.0");
	cr_assert_eq(pcisys__parse_bdf("03:10.8", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf("03:20.0", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf("3:10.1", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf(" 03:10.1", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf("03:10.1x", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf("enp3s0", b), -EINVAL);
	cr_assert_eq(pcisys__parse_bdf("", b), -EINVAL);
}

Test(sriov, resolve_pf_by_address_or_netdev)
{
	char b[PCISYS_BDF_LEN];

	build_pf();
	cr_assert_eq(sriov__resolve_pf(F.root, "03:00.0", b, msg, sizeof(msg)), 0);
	cr_assert_str_eq(b, "0000:03:00.0");
	cr_assert_eq(sriov__resolve_pf(F.root, "enp3s0", b, msg, sizeof(msg)), 0);
	cr_assert_str_eq(b, "0000:03:00.0");
	cr_assert_eq(sriov__resolve_pf(F.root, "lo", b, msg, sizeof(msg)), -ENODEV);
	cr_assert_str_eq(msg, "network interface lo is not a PCI device");
	cr_assert_eq(sriov__resolve_pf(F.root, "eth9", b, msg, sizeof(msg)), -ENODEV);
	cr_assert(strstr(msg, "no network interface or PCI device 'eth9'"), "%s", msg);
	cr_assert_eq(sriov__resolve_pf(F.root, "0000:09:00.0", b, msg, sizeof(msg)), -ENODEV);
	cr_assert(strstr(msg, "no PCI device 0000:09:00.0"), "%s", msg);
	cr_assert_eq(sriov__resolve_pf(F.root, "../x", b, msg, sizeof(msg)), -EINVAL);
}

Test(sriov, netdev_and_num_vfs)
{
	char name[PCISYS_NAME_LEN];
	unsigned int num, total;

	build_pf();
	cr_assert_eq(sriov__netdev(F.root, "0000:03:00.0", name, sizeof(name)), 0);
	cr_assert_str_eq(name, "enp3s0");
	cr_assert_lt(sriov__netdev(F.root, "0000:03:10.0", name, sizeof(name)), 0);
	cr_assert_eq(sriov__num_vfs(F.root, "0000:03:00.0", &num, &total), 0);
	cr_assert_eq(num, 3);
	cr_assert_eq(total, 7);
	cr_assert_eq(sriov__num_vfs(F.root, "0000:03:10.0", &num, &total), -ENOTSUP);
	cr_assert_eq(sriov__num_vfs(F.root, "0000:09:00.0", &num, &total), -ENODEV);
}

Test(sriov, set_num_vfs)
{
	build_pf();
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:03:00.0", 5, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"), "5");
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:03:00.0", 0, msg, sizeof(msg)), 0);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"), "0");
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:03:00.0", 8, msg, sizeof(msg)), -ERANGE);
	cr_assert_str_eq(msg, "0000:03:00.0 supports at most 7 VFs, 8 asked");
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:03:10.0", 1, msg, sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "0000:03:10.0 is not an SR-IOV physical function"), "%s", msg);
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:09:00.0", 1, msg, sizeof(msg)), -ENODEV);
}

/* counts the writes on the PF's sriov_numvfs while setting n (IN_OPEN events keep
 * inotify from merging consecutive IN_CLOSE_WRITEs) */
static int numvfs_writes(unsigned int n)
{
	char evbuf[4096];
	int fd, wd, count = 0;
	ssize_t len;

	fd = inotify_init1(IN_NONBLOCK);
	cr_assert_geq(fd, 0);
	wd = inotify_add_watch(fd, fk_p(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"),
			       IN_CLOSE_WRITE | IN_OPEN);
	cr_assert_geq(wd, 0);
	cr_assert_eq(sriov__set_num_vfs(F.root, "0000:03:00.0", n, msg, sizeof(msg)), 0, "%s", msg);
	while ((len = read(fd, evbuf, sizeof(evbuf))) > 0)
		for (char *p = evbuf; p < evbuf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			count += !!(ev->mask & IN_CLOSE_WRITE);
			p += sizeof(*ev) + ev->len;
		}
	close(fd);
	return count;
}

Test(sriov, set_num_vfs_goes_through_zero)
{
	build_pf();
	/* 3 -> 4: the kernel wants 0 first, so two writes */
	cr_assert_eq(numvfs_writes(4), 2);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"), "4");
	/* same count: nothing written */
	cr_assert_eq(numvfs_writes(4), 0);
	/* to 0, and from 0: one write each */
	cr_assert_eq(numvfs_writes(0), 1);
	cr_assert_eq(numvfs_writes(2), 1);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"), "2");
}

Test(sriov, list_vfs_sorted_by_index)
{
	struct sriov_vf vfs[8];
	char pf[PCISYS_BDF_LEN];
	int idx;

	build_pf();
	cr_assert_eq(sriov__list_vfs(F.root, "0000:03:00.0", vfs, 8), 3);
	cr_assert_eq(vfs[0].index, 0);
	cr_assert_str_eq(vfs[0].bdf, "0000:03:10.0");
	cr_assert_str_eq(vfs[0].driver, "igbvf");
	cr_assert_eq(vfs[1].index, 2);
	cr_assert_str_eq(vfs[1].bdf, "0000:03:10.4");
	cr_assert_str_eq(vfs[1].driver, "vfio-pci");
	cr_assert_eq(vfs[2].index, 10);
	cr_assert_str_eq(vfs[2].bdf, "0000:03:11.4");
	cr_assert_str_empty(vfs[2].driver);
	cr_assert_eq(sriov__list_vfs(F.root, "0000:03:00.0", vfs, 2), -ENOSPC);
	cr_assert_eq(sriov__list_vfs(F.root, "0000:03:10.0", vfs, 8), 0);

	cr_assert_eq(sriov__physfn(F.root, "0000:03:11.4", pf, &idx), 0);
	cr_assert_str_eq(pf, "0000:03:00.0");
	cr_assert_eq(idx, 10);
	cr_assert_eq(sriov__physfn(F.root, "0000:03:00.0", pf, &idx), -ENOENT);
	cr_assert_eq(sriov__physfn(F.root, "0000:03:12.0", pf, &idx), -ENODEV);
}

Test(sriov, bind_writes_override_unbind_and_probe)
{
	build_pf();
	fk_dir(&F, "bus/pci/drivers/vfio-pci");
	/* the fake kernel does not rebind, so the final check reports it */
	cr_assert_eq(sriov__bind_vfio(F.root, "0000:03:10.0", msg, sizeof(msg)), -EIO);
	cr_assert_str_eq(msg, "0000:03:10.0 is bound to igbvf after probing, not vfio-pci "
			 "(driver_override is set; see `dmesg`)");
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:10.0/driver_override"), "vfio-pci");
	cr_assert_str_eq(fk_read(&F, "bus/pci/drivers/igbvf/unbind"), "0000:03:10.0");
	cr_assert_str_eq(fk_read(&F, "bus/pci/drivers_probe"), "0000:03:10.0");
}

Test(sriov, bind_unbound_device_skips_unbind)
{
	build_pf();
	fk_dir(&F, "bus/pci/drivers/vfio-pci");
	cr_assert_eq(sriov__bind_vfio(F.root, "0000:03:11.4", msg, sizeof(msg)), -EIO);
	cr_assert(strstr(msg, "is bound to no driver after probing"), "%s", msg);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:11.4/driver_override"), "vfio-pci");
	cr_assert_str_eq(fk_read(&F, "bus/pci/drivers_probe"), "0000:03:11.4");
}

Test(sriov, bind_already_bound_and_errors)
{
	build_pf();
	cr_assert_eq(sriov__bind_vfio(F.root, "0000:03:10.4", msg, sizeof(msg)), 0);
	cr_assert_str_empty(fk_read(&F, "bus/pci/devices/0000:03:10.4/driver_override"));
	cr_assert_eq(sriov__bind_vfio(F.root, "0000:03:12.0", msg, sizeof(msg)), -ENODEV);
	cr_assert_str_eq(msg, "no PCI device 0000:03:12.0; is it a VF? create VFs with "
			 "`minivmm sriov PF --num-vfs N`");
	/* vfio-pci not loaded: nothing is written */
	fk_rm(fk_p(&F, "bus/pci/drivers/vfio-pci/bind"), NULL, 0, NULL);
	fk_rm(fk_p(&F, "bus/pci/drivers/vfio-pci/unbind"), NULL, 0, NULL);
	unlink(fk_p(&F, "bus/pci/devices/0000:03:10.4/driver"));
	rmdir(fk_p(&F, "bus/pci/drivers/vfio-pci"));
	cr_assert_eq(sriov__bind_vfio(F.root, "0000:03:10.0", msg, sizeof(msg)), -ENOENT);
	cr_assert_str_eq(msg, "the vfio-pci driver is not loaded: run `modprobe vfio-pci` first");
	cr_assert_str_empty(fk_read(&F, "bus/pci/devices/0000:03:10.0/driver_override"));
	cr_assert_str_empty(fk_read(&F, "bus/pci/drivers/igbvf/unbind"));
}

Test(sriov, unbind_returns_vf_to_host)
{
	build_pf();
	fk_file(&F, "vfio-pci", "bus/pci/devices/0000:03:10.4/driver_override");
	cr_assert_eq(sriov__unbind_vfio(F.root, "0000:03:10.4", msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:10.4/driver_override"), "\n");
	cr_assert_str_eq(fk_read(&F, "bus/pci/drivers/vfio-pci/unbind"), "0000:03:10.4");
	cr_assert_str_eq(fk_read(&F, "bus/pci/drivers_probe"), "0000:03:10.4");
	cr_assert_eq(sriov__unbind_vfio(F.root, "0000:03:10.0", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "0000:03:10.0 is bound to igbvf, not vfio-pci: left alone");
}

/* ---- netlink ---- */

Test(sriov, parse_mac)
{
	uint8_t m[6];

	cr_assert_eq(sriov_nl__parse_mac("52:54:00:AB:cd:0f", m), 0);
	cr_assert_eq(m[3], 0xab);
	cr_assert_eq(m[5], 0x0f);
	cr_assert_eq(sriov_nl__parse_mac("52:54:00:ab:cd", m), -EINVAL);
	cr_assert_eq(sriov_nl__parse_mac("52-54-00-ab-cd-ef", m), -EINVAL);
	cr_assert_eq(sriov_nl__parse_mac("52:54:00:ab:cd:e", m), -EINVAL);
	cr_assert_eq(sriov_nl__parse_mac("52:54:00:ab:cd:ef:", m), -EINVAL);
}

Test(sriov, setlink_bytes)
{
	struct sriov_vf_config c = { .vf = 3, .spoofchk = 0, .trust = -1 };
	uint8_t buf[256];
	/* nlmsghdr, ifinfomsg, VFINFO_LIST { VF_INFO { SPOOFCHK {vf 3, setting 0} } } */
	static const uint8_t want[] = {
		52, 0, 0, 0, RTM_SETLINK, 0, 0x05, 0x00, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0,
		AF_UNSPEC, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		20, 0, IFLA_VFINFO_LIST, 0x80,
		16, 0, IFLA_VF_INFO, 0x80,
		12, 0, IFLA_VF_SPOOFCHK, 0, 3, 0, 0, 0, 0, 0, 0, 0,
	};

	cr_assert_eq(sriov_nl__build_setlink(buf, sizeof(buf), 7, &c, 0x12345678), 52);
	cr_assert_arr_eq(buf, want, sizeof(want));
}

struct vf_attrs {
	const struct nlattr *a[IFLA_VF_MAX + 1];
};

static int collect_vf(const struct nlattr *attr, void *data)
{
	struct vf_attrs *v = data;

	if (mnl_attr_get_type(attr) <= IFLA_VF_MAX)
		v->a[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

Test(sriov, setlink_all_settings_parse_back)
{
	struct sriov_vf_config c = {
		.vf = 5, .set_mac = true, .mac = { 0x52, 0x54, 0, 1, 2, 3 },
		.set_vlan = true, .vlan = 100, .qos = 3, .spoofchk = 0, .trust = 1,
	};
	uint8_t buf[512];
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	const struct ifinfomsg *ifm;
	const struct nlattr *list = NULL, *info, *a;
	struct vf_attrs v = { 0 };
	int len, n = 0;

	len = sriov_nl__build_setlink(buf, sizeof(buf), 42, &c, 9);
	/* 16 + 16 + list 4 + info 4 + mac 40 + vlan 16 + spoofchk 12 + trust 12 */
	cr_assert_eq(len, 120);
	cr_assert_eq(nlh->nlmsg_len, 120);
	cr_assert_eq(nlh->nlmsg_type, RTM_SETLINK);
	cr_assert_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	cr_assert_eq(nlh->nlmsg_seq, 9);
	ifm = mnl_nlmsg_get_payload(nlh);
	cr_assert_eq(ifm->ifi_index, 42);
	mnl_attr_for_each(a, nlh, sizeof(*ifm)) {
		n++;
		list = a;
	}
	cr_assert_eq(n, 1);
	cr_assert_eq(mnl_attr_get_type(list), IFLA_VFINFO_LIST);
	info = mnl_attr_get_payload(list);
	cr_assert_eq(mnl_attr_get_type(info), IFLA_VF_INFO);
	cr_assert_eq(mnl_attr_parse_nested(info, collect_vf, &v), MNL_CB_OK);
	cr_assert_not_null(v.a[IFLA_VF_MAC]);
	{
		const struct ifla_vf_mac *m = mnl_attr_get_payload(v.a[IFLA_VF_MAC]);
		const struct ifla_vf_vlan *vl = mnl_attr_get_payload(v.a[IFLA_VF_VLAN]);
		const struct ifla_vf_spoofchk *s = mnl_attr_get_payload(v.a[IFLA_VF_SPOOFCHK]);
		const struct ifla_vf_trust *t = mnl_attr_get_payload(v.a[IFLA_VF_TRUST]);
		static const uint8_t mac[32] = { 0x52, 0x54, 0, 1, 2, 3 };

		cr_assert_eq(mnl_attr_get_payload_len(v.a[IFLA_VF_MAC]), sizeof(*m));
		cr_assert_eq(m->vf, 5);
		cr_assert_arr_eq(m->mac, mac, 32);
		cr_assert_eq(vl->vf, 5);
		cr_assert_eq(vl->vlan, 100);
		cr_assert_eq(vl->qos, 3);
		cr_assert_eq(s->vf, 5);
		cr_assert_eq(s->setting, 0);
		cr_assert_eq(t->vf, 5);
		cr_assert_eq(t->setting, 1);
	}
}

Test(sriov, setlink_errors)
{
	struct sriov_vf_config c = { .vf = 0, .spoofchk = -1, .trust = -1 };
	uint8_t buf[512];

	cr_assert_eq(sriov_nl__build_setlink(buf, sizeof(buf), 1, &c, 1), -EINVAL);
	c.set_vlan = true;
	c.vlan = 4096;
	cr_assert_eq(sriov_nl__build_setlink(buf, sizeof(buf), 1, &c, 1), -EINVAL);
	c.vlan = 10;
	cr_assert_eq(sriov_nl__build_setlink(buf, 40, 1, &c, 1), -ENOSPC);
	cr_assert_eq(sriov_nl__build_setlink(buf, 16, 1, &c, 1), -ENOSPC);
}

Test(sriov, getlink_bytes)
{
	uint8_t buf[128];
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	static const uint8_t want[] = {
		40, 0, 0, 0, RTM_GETLINK, 0, 0x01, 0x00, 2, 0, 0, 0, 0, 0, 0, 0,
		AF_UNSPEC, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		8, 0, IFLA_EXT_MASK, 0, RTEXT_FILTER_VF, 0, 0, 0,
	};

	cr_assert_eq(sriov_nl__build_getlink(buf, sizeof(buf), 9, 2), 40);
	cr_assert_arr_eq(buf, want, sizeof(want));
	cr_assert_eq(nlh->nlmsg_len, 40);
}

/* builds an RTM_NEWLINK as the kernel's rtnl_fill_vf() would */
static int build_newlink(uint8_t *buf, size_t len)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nlattr *list, *info;

	nlh->nlmsg_type = RTM_NEWLINK;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = 4;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "enp3s0");
	mnl_attr_put_u32(nlh, IFLA_NUM_VF, 2);
	list = mnl_attr_nest_start(nlh, IFLA_VFINFO_LIST);
	for (uint32_t vf = 0; vf < 2; vf++) {
		struct ifla_vf_mac m = { .vf = vf, .mac = { 0x52, 0x54, 0, 0, 0, (uint8_t)(0x10 + vf) } };
		struct ifla_vf_vlan v = { .vf = vf, .vlan = vf ? 200 : 0, .qos = vf };
		struct ifla_vf_spoofchk s = { .vf = vf, .setting = vf ? 0 : 1 };
		struct ifla_vf_trust t = { .vf = vf, .setting = vf ? 0xffffffffu : 1 };
		struct ifla_vf_link_state l = { .vf = vf, .link_state = IFLA_VF_LINK_STATE_ENABLE };

		info = mnl_attr_nest_start(nlh, IFLA_VF_INFO);
		mnl_attr_put(nlh, IFLA_VF_MAC, sizeof(m), &m);
		mnl_attr_put(nlh, IFLA_VF_VLAN, sizeof(v), &v);
		mnl_attr_put(nlh, IFLA_VF_SPOOFCHK, sizeof(s), &s);
		mnl_attr_put(nlh, IFLA_VF_TRUST, sizeof(t), &t);
		mnl_attr_put(nlh, IFLA_VF_LINK_STATE, sizeof(l), &l);
		mnl_attr_nest_end(nlh, info);
	}
	mnl_attr_nest_end(nlh, list);
	cr_assert_leq(nlh->nlmsg_len, len);
	return (int)nlh->nlmsg_len;
}

Test(sriov, parse_newlink_with_vfs)
{
	static uint8_t buf[4096];
	static struct sriov_link link;

	build_newlink(buf, sizeof(buf));
	cr_assert_eq(sriov_nl__parse_link((struct nlmsghdr *)buf, &link), 0);
	cr_assert_eq(link.ifindex, 4);
	cr_assert_str_eq(link.ifname, "enp3s0");
	cr_assert(link.has_num_vf);
	cr_assert_eq(link.num_vf, 2);
	cr_assert_eq(link.nr_vfs, 2);
	cr_assert_eq(link.vfs[1].vf, 1);
	cr_assert_eq(link.vfs[1].mac[5], 0x11);
	cr_assert_eq(link.vfs[1].vlan, 200);
	cr_assert_eq(link.vfs[1].qos, 1);
	cr_assert_eq(link.vfs[0].spoofchk, 1);
	cr_assert_eq(link.vfs[1].spoofchk, 0);
	cr_assert_eq(link.vfs[0].trust, 1);
	cr_assert_eq(link.vfs[1].trust, -1, "unreported trust");
	cr_assert_eq(link.vfs[1].link_state, IFLA_VF_LINK_STATE_ENABLE);
	/* a truncated VF_MAC is malformed */
	{
		struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

		nlh->nlmsg_type = RTM_DELLINK;
		cr_assert_eq(sriov_nl__parse_link(nlh, &link), -EINVAL);
	}
}

Test(sriov, parse_error_with_extack)
{
	static uint8_t buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = -EINVAL;
	e->msg.nlmsg_len = 120;          /* capped: only the header is echoed */
	e->msg.nlmsg_type = RTM_SETLINK;
	mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, "VF number out of range");
	cr_assert_eq(sriov_nl__parse_error(nlh, msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "VF number out of range");

	/* a plain ack */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = 0;
	cr_assert_eq(sriov_nl__parse_error(nlh, msg, sizeof(msg)), 0);
	cr_assert_str_empty(msg);
}

/* found by tests/fuzz/fuzz_netlink (its corpus keeps the inputs) */
Test(sriov, fuzz_reply_length_with_the_top_bit_set_ends_the_walk)
{
	/* nlmsg_len 0x89000f00: mnl_nlmsg_ok() takes it for a negative int and passes it */
	static const uint8_t reply[16] = { 0x00, 0x0f, 0x00, 0x89, 0x89, 0x89, 0x89, 0x89,
					   0x89, 0x89, 0x89, 0x89, 0x89, 0x00, 0x00, 0x00 };
	static struct sriov_link link;
	uint8_t *buf = malloc(sizeof(reply));

	memcpy(buf, reply, sizeof(reply));
	cr_assert_eq(sriov_nl__parse_reply(buf, sizeof(reply), 0x89898989, 0x89, &link, msg,
					   sizeof(msg)), 1, "no answer in this buffer");
	free(buf);
}

Test(sriov, fuzz_error_code_out_of_range_is_malformed)
{
	static uint8_t buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = 7;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = INT_MIN; /* strerror(-error) would overflow */
	cr_assert_eq(sriov_nl__parse_error(nlh, msg, sizeof(msg)), -EINVAL);
	e->error = 5;
	cr_assert_eq(sriov_nl__parse_error(nlh, msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(sriov_nl__parse_reply(buf, nlh->nlmsg_len, 7, 0, NULL, msg, sizeof(msg)),
		     -EINVAL);
	cr_assert_str_eq(msg, "Invalid argument");
}

/* found reading the code the fuzzer pointed at */
Test(sriov, extack_with_a_short_echoed_header_is_not_misread)
{
	static uint8_t buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_ACK_TLVS; /* not capped: the whole request is echoed */
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = -EPERM;
	/*
	 * an echoed request shorter than its own header: the TLVs would start
	 * 8 bytes back, inside the echoed header, whose seq and pid read as
	 * an NLMSGERR_ATTR_MSG attribute "abc"
	 */
	e->msg.nlmsg_len = 8;
	e->msg.nlmsg_seq = 0x00010008; /* nla_len 8, nla_type NLMSGERR_ATTR_MSG */
	e->msg.nlmsg_pid = 0x00636261; /* "abc" */
	cr_assert_eq(sriov_nl__parse_error(nlh, msg, sizeof(msg)), -EPERM);
	cr_assert_str_empty(msg, "the echoed header was read as TLVs: '%s'", msg);
}

Test(sriov, fuzz_extack_past_an_unaligned_length_is_not_read)
{
	/*
	 * nlmsg_len 41: the extended-ack attribute (8 bytes from offset 36)
	 * ends past the message. What follows the message in the buffer would
	 * complete it into a valid string if the walk went up to the aligned
	 * length (44), as mnl_attr_for_each() does.
	 */
	static _Alignas(4) const uint8_t reply[48] = {
		0x29, 0x00, 0x00, 0x00, 0x02, 0x00, 0x60, 0xff, 0xf6, 0x00, 0x00, 0x00,
		0x00, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00,
		0x60, 0x25, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x01, 0x00, 0x31, 'x', 'y', 0x00,
	};

	cr_assert_eq(sriov_nl__parse_reply(reply, sizeof(reply), 0xf6, 0x2500, NULL, msg,
					   sizeof(msg)), 0, "an ack");
	cr_assert_eq(sriov_nl__parse_error((const struct nlmsghdr *)reply, msg, sizeof(msg)), 0);
	cr_assert_str_empty(msg, "the text past nlmsg_len was read: '%s'", msg);
}

Test(sriov, real_rtnetlink_on_loopback)
{
	static struct sriov_link link;
	struct sriov_vf_config c = { .vf = 0, .spoofchk = 1, .trust = -1 };

	if (unshare(CLONE_NEWNET))
		cr_skip_test("unshare(CLONE_NEWNET): %s: skipped", strerror(errno));
	cr_assert_eq(sriov_nl__get_link("lo", &link, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_str_eq(link.ifname, "lo");
	cr_assert_eq(link.ifindex, 1);
	cr_assert_eq(link.nr_vfs, 0);
	cr_assert_not(link.has_num_vf, "lo has no parent device");
	/* loopback has no VFs: the kernel answers with an error, which comes back */
	cr_assert_eq(sriov_nl__set_vf("lo", &c, msg, sizeof(msg)), -EOPNOTSUPP, "%s", msg);
	cr_assert(strstr(msg, strerror(EOPNOTSUPP)), "%s", msg);
	cr_assert_eq(sriov_nl__get_link("nosuch0", &link, msg, sizeof(msg)), -ENODEV);
	cr_assert_str_eq(msg, "no network interface nosuch0");
}

/* ---- command line ---- */

static char out_buf[8192], err_buf[8192];

static int run(int argc, const char *const *argv)
{
	FILE *out = fmemopen(out_buf, sizeof(out_buf), "w");
	FILE *err = fmemopen(err_buf, sizeof(err_buf), "w");
	char *args[32];
	int ret;

	cr_assert(out && err);
	memset(out_buf, 0, sizeof(out_buf));
	memset(err_buf, 0, sizeof(err_buf));
	for (int i = 0; i < argc; i++)
		args[i] = (char *)argv[i];
	args[argc] = NULL;
	ret = sriov_cli__run(argc, args, out, err);
	fclose(out);
	fclose(err);
	return ret;
}

#define RUN(...) ({ const char *const a_[] = { __VA_ARGS__ }; run((int)ARRAY_SIZE_(a_), a_); })
#define ARRAY_SIZE_(a) (sizeof(a) / sizeof((a)[0]))

Test(sriov, cli_argument_errors)
{
	static const struct { const char *args[10]; const char *err; } cases[] = {
		{ { "sriov" }, "sriov needs a PF" },
		{ { "sriov", "enp3s0", "--num-vfs", "x" }, "--num-vfs: 'x' is not a VF count" },
		{ { "sriov", "enp3s0", "--num-vfs", "-1" }, "--num-vfs: '-1' is not a VF count" },
		{ { "sriov", "enp3s0", "--num-vfs" }, "option '--num-vfs' needs an argument" },
		{ { "sriov", "enp3s0", "--vf", "0", "--mac", "zz" }, "--mac: 'zz' is not a MAC address" },
		{ { "sriov", "enp3s0", "--vf", "0", "--mac", "01:00:5e:00:00:01" },
		  "--mac: '01:00:5e:00:00:01' is a multicast address" },
		{ { "sriov", "enp3s0", "--vf", "0", "--vlan", "5000" }, "--vlan: '5000' is not a VLAN id" },
		{ { "sriov", "enp3s0", "--vf", "0", "--spoofchk", "maybe" },
		  "--spoofchk: 'maybe' must be on or off" },
		{ { "sriov", "enp3s0", "--vf", "0", "--trust", "yes" }, "--trust: 'yes' must be on or off" },
		{ { "sriov", "enp3s0", "--vf", "x" }, "--vf: 'x' is not a VF number" },
		{ { "sriov", "enp3s0", "--mac", "52:54:00:00:00:01" }, "need --vf N" },
		{ { "sriov", "enp3s0", "--vf", "1" }, "--vf 1: nothing to set" },
		{ { "sriov", "enp3s0", "--vf", "1", "--num-vfs", "2", "--trust", "on" },
		  "--num-vfs and --vf cannot be combined" },
		{ { "sriov", "enp3s0", "--vf", "1", "--qos", "2", "--trust", "on" }, "--qos needs --vlan" },
		{ { "sriov", "enp3s0", "--bogus" }, "unknown option '--bogus'" },
		{ { "sriov", "enp3s0", "-x" }, "unknown option '-x'" },
		{ { "sriov", "enp3s0", "extra" }, "unexpected argument 'extra'" },
		{ { "sriov", "bind" }, "bind needs a VF address" },
		{ { "sriov", "unbind", "03:10" }, "'03:10' is not a PCI address" },
		{ { "sriov", "bind", "03:10.1", "more" }, "unexpected argument 'more'" },
		{ { "sriov", "bind", "03:10.1", "--vf", "1" }, "bind takes no VF options" },
		{ { "sriov", "reset" }, "reset needs a VF address" },
		{ { "sriov", "reset", "03:10.1", "--step", "flr" }, "--step: 'flr' must be function, bus or pm" },
		{ { "sriov", "bind", "03:10.1", "--step", "pm" }, "--step goes with reset" },
		{ { "sriov", "enp3s0", "--step", "pm" }, "--step goes with reset" },
		{ { "sriov", "reset", "03:10.1", "--mac", "52:54:00:00:00:01" }, "reset takes no VF options" },
		{ { "doctor", "--mem", "lots" }, "--mem: 'lots' is not a size" },
		{ { "doctor", "03:10.1", "03:10.2" }, "unexpected argument '03:10.2'" },
		{ { "frobnicate" }, "unknown subcommand 'frobnicate'" },
	};

	for (size_t i = 0; i < ARRAY_SIZE_(cases); i++) {
		int argc = 0;

		while (argc < 10 && cases[i].args[argc])
			argc++;
		cr_assert_eq(run(argc, cases[i].args), 2, "case %zu", i);
		cr_assert(strstr(err_buf, cases[i].err), "case %zu: '%s' not in '%s'", i,
			  cases[i].err, err_buf);
		cr_assert(strstr(err_buf, "Try 'minivmm sriov --help'."), "case %zu", i);
	}
}

Test(sriov, cli_help)
{
	cr_assert_eq(RUN("sriov", "--help"), 0);
	cr_assert(strstr(out_buf, "minivmm sriov PF --num-vfs N"), "%s", out_buf);
	cr_assert(strstr(out_buf, "minivmm doctor [VF]"), "%s", out_buf);
	cr_assert_eq(RUN("doctor", "-h"), 0);
	cr_assert(strstr(out_buf, "Usage:"));
}

Test(sriov, cli_show_set_bind_unbind)
{
	build_pf();
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "0000:03:00.0"), 0, "%s", err_buf);
	cr_assert(strstr(out_buf, "PF 0000:03:00.0 (enp3s0): 3 of 7 VFs"), "%s", out_buf);
	cr_assert(strstr(out_buf, "0    0000:03:10.0  igbvf"), "%s", out_buf);
	cr_assert(strstr(out_buf, "10   0000:03:11.4  -"), "%s", out_buf);
	/* enp3s0 does not exist on this host: netlink says so, the sysfs part still shows */
	cr_assert(strstr(out_buf, "(MAC/VLAN settings unavailable: no network interface enp3s0)"),
		  "%s", out_buf);

	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "enp3s0", "--num-vfs", "6"), 0, "%s",
		     err_buf);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:00.0/sriov_numvfs"), "6");
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "enp3s0", "--num-vfs", "9"), 1);
	cr_assert(strstr(err_buf, "supports at most 7 VFs, 9 asked"), "%s", err_buf);
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "enp3s0", "--vf", "6", "--trust", "on"), 1);
	cr_assert(strstr(err_buf, "--vf 6: 0000:03:00.0 has 6 VFs"), "%s", err_buf);

	fk_file(&F, "vfio-pci", "bus/pci/devices/0000:03:10.4/driver_override");
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "unbind", "03:10.4"), 0, "%s", err_buf);
	cr_assert(strstr(out_buf, "0000:03:10.4 released from vfio-pci"), "%s", out_buf);
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "bind", "03:10.0"), 1);
	cr_assert(strstr(err_buf, "bound to igbvf after probing"), "%s", err_buf);

	/* reset wants a device on vfio-pci (the ladder itself: test_vfio_reset) */
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "reset", "03:10.0"), 1);
	cr_assert(strstr(err_buf, "0000:03:10.0 is bound to igbvf: reset works on a device bound "
				  "to vfio-pci that no VM holds (`minivmm sriov bind 0000:03:10.0` first)"),
		  "%s", err_buf);
	cr_assert_eq(RUN("sriov", "--sysfs-root", F.root, "reset", "03:17.0"), 1);
	cr_assert(strstr(err_buf, "no PCI device 0000:03:17.0"), "%s", err_buf);
	cr_assert_str_eq(fk_read(&F, "bus/pci/devices/0000:03:10.0/driver_override"), "vfio-pci");
}

/*
 * libkmod is opened on first use (dlopen, devices/sriov/kmod.c): its symbols
 * resolve and a module that does not exist is reported as such (or, on a
 * host without a module index, as that), never as a missing libkmod.
 */
Test(sriov, load_module_opens_libkmod)
{
	char why[512] = "";
	int ret = sriov__load_module("minivmm-no-such-module", why, sizeof(why));

	cr_assert(ret == -ENOENT || ret == -ENOMEM, "ret %d: %s", ret, why);
	cr_assert(strstr(why, "minivmm-no-such-module"), "msg: %s", why);
	cr_assert_null(strstr(why, "libkmod.so.2"), "msg: %s", why);
	/* the second call takes the library already open */
	cr_assert_eq(sriov__load_module("minivmm-no-such-module", why, sizeof(why)), ret);
}
