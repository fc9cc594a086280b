// SPDX-License-Identifier: MIT
/*
 * The composition root: the only place (with main.c) that knows the concrete
 * devices. The table below is the machine at boot; its order is the creation
 * order. Every device, built at boot or added at run time, is then in the
 * VM's one device list (vmm/device.h), which the board destroys in reverse.
 *
 * Run-time device changes (the control socket's device-add and device-del)
 * run on the VMM thread; what may block for long (assigning a VF: checks,
 * DMA mapping, reset; releasing one: the reset ladder) runs on a worker
 * thread, which hands its result back with evloop__call. One such operation
 * runs at a time.
 *
 * Failover pairs: a VF given failover=on (--vf or device-add) is built but
 * kept off the guest's PCI bus until the guest's virtio-net driver on its
 * standby NIC negotiated VIRTIO_NET_F_STANDBY (the NIC's standby_changed
 * hook, queued to the loop); then it is plugged through ACPI hot-plug, so
 * that Linux's net_failover finds its standby first and enslaves the VF as
 * primary. Before that, the VF gets the NIC's MAC through its PF.
 */
#include "vmm/board.h"
#include "vmm/api.h"
#include "config.h"
#include "vmm/image.h"
#include "vmm/log.h"
#include "vmm/migrate.h"
#include "vmm/migtls.h"
#include "vmm/sandbox.h"
#include "vmm/snapshot.h"
#include "vmm/sys.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/unpack.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/platform.h"
#include "vmm/x86/state.h"
#include "vmm/x86/inspect.h"
#include "migration/precopy.h"

#include "devices/hotplug.h"
#include "devices/i8042.h"
#include "devices/pcisys.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/sriov/netlink.h"
#include "devices/sriov/sysfs.h"
#include "devices/testdev.h"
#include "devices/vfio/iommu.h"
#include "devices/vfio/pci.h"
#include "virtio/blk.h"
#include "virtio/net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BOARD_LOG "board"

/* --- platform devices ------------------------------------------------------ */

static int board_add_serial(struct board *b)
{
	struct serial *s;

	return serial__create(&b->vm, "ttyS0", X86_COM1_BASE, X86_COM1_IRQ, b->console_in,
			      b->console_out, &s);
}

static int board_add_i8042(struct board *b)
{
	struct i8042 *k;

	return i8042__create(&b->vm, &k);
}

static int board_add_rtc(struct board *b)
{
	struct rtc *r;

	return rtc__create(&b->vm, b->opts->mem, &r);
}

static int board_add_pm(struct board *b)
{
	/* the FADT and the DSDT's \_S5_ describe the same (board_load) */
	static const struct pm_config cfg = {
		.evt_port = X86_PM1A_EVT_PORT,
		.cnt_port = X86_PM1A_CNT_PORT,
		.sci_irq = X86_SCI_IRQ,
		.slp_typ_s5 = X86_SLP_TYP_S5,
	};
	struct pm *pm;

	return pm__create(&b->vm, &cfg, &pm);
}

/* --- ACPI PCI hot-plug controller (devices/hotplug.h) ------------------- */

_Static_assert(HOTPLUG_REG_LEN == X86_ACPI_HOTPLUG_LEN, "DSDT PCST region == hotplug block");
_Static_assert(HOTPLUG_GPE0_LEN == X86_ACPI_GPE0_LEN, "FADT GPE0_BLK_LEN == hotplug GPE0");

static bool board_wants_hotplug(const struct options *o)
{
	unsigned int i;

	if (o->api)
		return true;
	for (i = 0; i < o->nr_vf; i++)
		if (o->vf_spec[i].failover)
			return true;
	return false;
}

/*
 * Driven from the control socket and by failover pairs, so only made with
 * --api or a failover VF: without them the DSDT and FADT stay as they were.
 */
static int board_add_hotplug(struct board *b)
{
	static const struct hotplug_config cfg = {
		.port = X86_HOTPLUG_PORT,
		.gpe0_port = X86_GPE0_PORT,
		.sci_irq = X86_SCI_IRQ,
	};

	if (!board_wants_hotplug(b->opts))
		return 0;
	return hotplug__create(&b->vm, &cfg, &b->hotplug);
}

static int board_add_testdev(struct board *b)
{
	struct testdev *t;

	if (!b->opts->testdev)
		return 0;
	return testdev__create(&b->vm, STDOUT_FILENO, &t);
}

static int board_add_blk(struct board *b)
{
	struct virtio_blk *blk;

	if (!b->opts->image)
		return 0;
	return virtio_blk__create(&b->vm, b->opts->image, b->opts->readonly, "blk0", &blk);
}

/* --- virtio-net ---------------------------------------------------------------- */

static void board_standby_changed(void *opaque);

/* opts as --net takes them; id: "" for the next free netN. 0 or -errno, reason in err */
static int board_make_net(struct board *b, const char *opts, const char *default_id,
			  struct virtio_net **out, char *err, size_t errlen)
{
	static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct virtio_net_config cfg;
	char id[DEVICE_ID_LEN];
	int ret;

	ret = virtio_net__parse_opts(opts, &cfg, err, errlen);
	if (ret)
		return ret;
	if (cfg.id[0])
		snprintf(id, sizeof(id), "%s", cfg.id);
	else if (default_id)
		snprintf(id, sizeof(id), "%s", default_id);
	else
		device__next_id(&b->vm.devices, "net", id, sizeof(id));
	if (device__find(&b->vm.devices, id)) {
		snprintf(err, errlen, "device id '%s' is taken", id);
		return -EEXIST;
	}
	if (!cfg.has_mac) {
		/* locally administered, stable per NIC in creation order */
		memcpy(cfg.mac, base, 6);
		cfg.mac[5] = (uint8_t)(base[5] + b->nr_nets_made);
		cfg.has_mac = true;
	}
	cfg.name = id;
	cfg.standby_changed = board_standby_changed;
	cfg.standby_opaque = b;
	ret = virtio_net__create(&b->vm, &cfg, out);
	if (ret) {
		snprintf(err, errlen, "cannot create %s on tap %s: %s (minivmm's log says more)", id,
			 cfg.tap_buf, strerror(-ret));
		return ret;
	}
	b->nr_nets_made++;
	return 0;
}

static int board_add_nets(struct board *b)
{
	struct virtio_net *n;
	char err[256], id[16];
	unsigned int i;
	int ret;

	for (i = 0; i < b->opts->nr_net; i++) {
		snprintf(id, sizeof(id), "net%u", i);
		ret = board_make_net(b, b->opts->net[i], id, &n, err, sizeof(err));
		if (ret) {
			log_err(BOARD_LOG, "--net '%s': %s", b->opts->net[i], err);
			return ret;
		}
	}
	return 0;
}

/* --- VFs and failover pairs ------------------------------------------------------- */

struct board_find_net {
	const struct options_vf *spec;
	struct virtio_net *found;
	unsigned int nr;        /* failover=on NICs that match */
};

static int board_find_net_fn(struct vmm_device *d, void *opaque)
{
	struct board_find_net *f = opaque;
	struct virtio_net *n = virtio_net__from_device(d);
	uint8_t mac[6];

	if (!n || virtio_net__standby(n, NULL) == VIRTIO_NET_STANDBY_OFF)
		return 0;
	virtio_net__get_mac(n, mac);
	if (f->spec->has_failover_mac && memcmp(mac, f->spec->failover_mac, 6))
		return 0;
	f->found = n;
	f->nr++;
	return 0;
}

/* the standby NIC a failover VF pairs with: the one failover=on NIC, or the one with its MAC */
static int board_failover_pair(struct board *b, const struct options_vf *spec,
			       struct virtio_net **out, char *err, size_t errlen)
{
	struct board_find_net f = { .spec = spec };
	const uint8_t *m = spec->failover_mac;

	if (device__for_each(&b->vm.devices, board_find_net_fn, &f))
		return -EIO;
	if (f.nr == 1) {
		*out = f.found;
		return 0;
	}
	if (spec->has_failover_mac && !f.nr)
		snprintf(err, errlen, "%s: no virtio-net NIC with failover=on has MAC "
			 "%02x:%02x:%02x:%02x:%02x:%02x", spec->bdf, m[0], m[1], m[2], m[3], m[4], m[5]);
	else if (!f.nr)
		snprintf(err, errlen, "%s: failover needs a virtio-net NIC with failover=on (its standby)",
			 spec->bdf);
	else
		snprintf(err, errlen, "%s: %u NICs have failover=on: say which with failover=MAC",
			 spec->bdf, f.nr);
	return -EINVAL;
}

static struct board_failover *board_fo_find(struct board *b, const char *vf_id)
{
	unsigned int i;

	for (i = 0; i < BOARD_MAX_FAILOVER; i++)
		if (b->fo[i].used && !strcmp(b->fo[i].vf_id, vf_id))
			return &b->fo[i];
	return NULL;
}

static struct board_failover *board_fo_add(struct board *b, const char *vf_id, const char *net_id)
{
	unsigned int i;

	for (i = 0; i < BOARD_MAX_FAILOVER; i++) {
		if (!b->fo[i].used) {
			memset(&b->fo[i], 0, sizeof(b->fo[i]));
			b->fo[i].used = true;
			snprintf(b->fo[i].vf_id, sizeof(b->fo[i].vf_id), "%s", vf_id);
			snprintf(b->fo[i].net_id, sizeof(b->fo[i].net_id), "%s", net_id);
			return &b->fo[i];
		}
	}
	return NULL;
}

/* the network interface of the PF of VF bdf, and the VF's index there; 0 or -errno (err says) */
static int board_vf_pf(const char *bdf, char *ifname, size_t ifnamelen, int *idx, char *err,
		       size_t errlen)
{
	char pf[PCISYS_BDF_LEN];
	int ret;

	ret = sriov__physfn("/sys", bdf, pf, idx);
	if (ret) {
		snprintf(err, errlen, "%s is %s: cannot set its MAC through a PF", bdf,
			 ret == -ENOENT ? "not an SR-IOV VF" : "not present");
		return ret;
	}
	ret = sriov__netdev("/sys", pf, ifname, ifnamelen);
	if (ret)
		snprintf(err, errlen, "%s: its PF %s has no network interface: cannot set the VF's MAC",
			 bdf, pf);
	return ret;
}

/*
 * Gives the VF bdf the standby NIC's MAC through its PF (rtnetlink), unless
 * it has it already: net_failover pairs the two by MAC. 0, or -errno with
 * the reason in err. May block (netlink): worker thread or boot.
 */
static int board_vf_mac_sync(const char *id, const char *bdf, const uint8_t mac[6], char *err,
			     size_t errlen)
{
	struct sriov_vf_config c = { .set_mac = true, .spoofchk = -1, .trust = -1 };
	char ifname[64], msg[256] = "";
	struct sriov_link *link;
	unsigned int i;
	int idx, ret;

	ret = board_vf_pf(bdf, ifname, sizeof(ifname), &idx, err, errlen);
	if (ret)
		return ret;
	link = calloc(1, sizeof(*link));
	if (!link)
		return -ENOMEM;
	ret = sriov_nl__get_link(ifname, link, msg, sizeof(msg));
	if (!ret) {
		for (i = 0; i < link->nr_vfs; i++) {
			if (link->vfs[i].vf == (unsigned int)idx && !memcmp(link->vfs[i].mac, mac, 6)) {
				log_info(id, "%s (VF %d of %s) has the standby NIC's MAC already", bdf,
					 idx, ifname);
				free(link);
				return 0;
			}
		}
	}
	free(link);
	c.vf = (unsigned int)idx;
	memcpy(c.mac, mac, 6);
	ret = sriov_nl__set_vf(ifname, &c, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "cannot set the MAC of %s (VF %d of %s) to the standby NIC's: %s%s%s",
			 bdf, idx, ifname, strerror(-ret), msg[0] ? ": " : "", msg);
		return ret;
	}
	log_info(id, "%s (VF %d of %s): MAC set to %02x:%02x:%02x:%02x:%02x:%02x, the standby NIC's",
		 bdf, idx, ifname, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return 0;
}

/*
 * A failover VF this VMM gave up for good (its guest now runs on another
 * host) still has the guest's MAC, and this host's NIC would go on
 * delivering the guest's frames to it instead of to the wire: its
 * administratively set MAC is cleared (00:00:00:00:00:00; a random locally
 * administered MAC where the PF refuses that). Logs what it did; may block
 * (netlink).
 */
static void board_vf_mac_clear(const char *id, const char *bdf, const char *why)
{
	struct sriov_vf_config c = { .set_mac = true, .spoofchk = -1, .trust = -1 };
	char ifname[64], msg[256] = "", err[256];
	int idx, ret;

	if (board_vf_pf(bdf, ifname, sizeof(ifname), &idx, err, sizeof(err))) {
		log_warn(id, "%s", err);
		return;
	}
	c.vf = (unsigned int)idx;
	ret = sriov_nl__set_vf(ifname, &c, msg, sizeof(msg));
	if (ret) {
		/* 02:xx: locally administered, unicast */
		c.mac[0] = 0x02;
		if (getrandom(&c.mac[1], 5, 0) != 5)
			memset(&c.mac[1], 0x5a, 5);
		ret = sriov_nl__set_vf(ifname, &c, msg, sizeof(msg));
	}
	if (ret)
		log_warn(id, "%s (VF %d of %s) keeps the guest's MAC: cannot change it: %s%s%s", bdf,
			 idx, ifname, strerror(-ret), msg[0] ? ": " : "", msg);
	else
		log_info(id, "%s (VF %d of %s): the guest's MAC taken off it (now "
			 "%02x:%02x:%02x:%02x:%02x:%02x): %s", bdf, idx, ifname, c.mac[0], c.mac[1],
			 c.mac[2], c.mac[3], c.mac[4], c.mac[5], why);
}

/* builds a VF (not plugged when plug_later); may block: worker thread or boot */
static int board_make_vf(struct board *b, const char *bdf, const char *id, bool plug_later,
			 struct vfio_pci **out)
{
	struct vfio_pci_opts o = {
		.name = id,
		.allow_unsafe_interrupts = b->opts->vf_allow_unsafe_interrupts,
		.iommu = &b->vfio_iommu, /* created by the first VF */
		.plug_later = plug_later,
	};

	return vfio_pci__create(&b->vm, bdf, &o, out);
}

static int board_add_vfs(struct board *b)
{
	const struct options *o = b->opts;
	struct virtio_net *pair;
	struct vfio_pci *vf;
	char err[512], id[DEVICE_ID_LEN];
	uint8_t mac[6];
	unsigned int i;
	int ret;

	for (i = 0; i < o->nr_vf; i++) {
		const struct options_vf *spec = &o->vf_spec[i];

		if (spec->id[0])
			snprintf(id, sizeof(id), "%s", spec->id);
		else
			snprintf(id, sizeof(id), "vf%u", i);
		if (spec->failover) {
			ret = board_failover_pair(b, spec, &pair, err, sizeof(err));
			if (ret) {
				log_err(BOARD_LOG, "--vf %s,failover: %s", spec->bdf, err);
				return ret;
			}
		}
		/* the VF first: only once it is ours may its MAC change */
		ret = board_make_vf(b, spec->bdf, id, spec->failover, &vf);
		if (ret)
			return ret; /* board__build destroys the devices made so far */
		if (spec->failover) {
			struct board_failover *fo;

			virtio_net__get_mac(pair, mac);
			ret = board_vf_mac_sync(id, spec->bdf, mac, err, sizeof(err));
			if (ret) {
				log_err(BOARD_LOG, "--vf %s,failover: %s", spec->bdf, err);
				return ret;
			}
			/*
			 * A migration's destination: the MAC could be set (the VF is
			 * reserved), but it goes on only right before the plug, once
			 * the guest runs here. Until then this host's NIC must hand
			 * the guest's frames to the PF, whose bridge takes them to
			 * the standby: a VF that has the MAC and no driver yet would
			 * swallow them.
			 */
			if (o->incoming)
				board_vf_mac_clear(id, spec->bdf, "until the guest runs here and it "
						   "is plugged (the MAC could be set)");
			fo = board_fo_add(b, id, virtio_net__device(pair)->id);
			if (!fo)
				return -ENOSPC;
			snprintf(fo->bdf, sizeof(fo->bdf), "%s", spec->bdf);
			fo->mac_at_plug = o->incoming != NULL;
			log_info(id, "%s waits off the bus until %s's driver negotiates STANDBY",
				 spec->bdf, fo->net_id);
		}
	}
	return 0;
}

static int board_add_api(struct board *b);
static void board_del_api(struct board *b);

/*
 * The machine at boot, in creation order. Each entry adds its devices to the
 * VM's device list; on a failure board__build destroys what the list holds.
 */
static const struct board_device {
	const char *name;
	int (*add)(struct board *b);
} board_devices[] = {
	{ "serial", board_add_serial },
	{ "i8042", board_add_i8042 },
	{ "rtc", board_add_rtc },
	{ "acpi-pm", board_add_pm },
	{ "acpi-hotplug", board_add_hotplug },
	{ "testdev", board_add_testdev },
	{ "virtio-blk", board_add_blk },
	{ "virtio-net", board_add_nets },
	{ "vfio", board_add_vfs },
	{ "control socket", board_add_api },
};

/* --- failover: plugging a waiting VF once STANDBY is negotiated ----------------- */

static void board_event_device(struct board *b, const char *event, const char *id, json_t *extra)
{
	json_t *data = json_pack("{s:s}", "id", id);

	if (data && extra)
		json_object_update(data, extra);
	json_decref(extra);
	if (b->api)
		api__event(b->api, event, data);
	else
		json_decref(data);
}

/* announces a device now on the bus to the guest (ACPI hot-plug); 0 or -errno */
/* --- plug to traffic: the VFs' host interrupt counts, polled while one waits ---- */

#define BOARD_TRAFFIC_TICK_MS 100
#define BOARD_TRAFFIC_IRQS 200           /* the interrupts that make "carrying traffic" */
#define BOARD_TRAFFIC_TIMEOUT_MS 60000

static int board_traffic_fn(struct vmm_device *d, void *opaque)
{
	struct vfio_pci *vf = vfio_pci__from_device(d);

	if (vf && vfio_pci__traffic_poll(vf, BOARD_TRAFFIC_IRQS, BOARD_TRAFFIC_TIMEOUT_MS))
		*(bool *)opaque = true;
	return 0;
}

static void board_traffic_set(struct board *b, bool on)
{
	struct itimerspec its = { 0 };

	if (on) {
		its.it_value.tv_nsec = BOARD_TRAFFIC_TICK_MS * 1000000L;
		its.it_interval.tv_nsec = BOARD_TRAFFIC_TICK_MS * 1000000L;
	}
	if (b->traffic_tfd >= 0 && !timerfd_settime(b->traffic_tfd, 0, &its, NULL))
		b->traffic_watching = on;
}

static void board_traffic_tick(void *opaque, int res)
{
	struct board *b = opaque;
	bool waiting = false;
	uint64_t n;

	(void)res;
	if (read(b->traffic_tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	if (device__for_each(&b->vm.devices, board_traffic_fn, &waiting) || !waiting)
		board_traffic_set(b, false);
}

/* after a VF's plug: watch for its traffic (the figure is a VF's traffic_ms in `devices`) */
static void board_traffic_watch(struct board *b)
{
	if (b->traffic_tfd < 0) {
		int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

		if (fd < 0)
			return;
		if (evloop__add_fd(&b->vm.loop, &b->traffic_watch, fd, POLLIN, board_traffic_tick, b)) {
			close(fd);
			return;
		}
		b->traffic_tfd = fd;
	}
	if (!b->traffic_watching)
		board_traffic_set(b, true);
}

static void board_traffic_end(struct board *b)
{
	if (b->traffic_tfd < 0)
		return;
	evloop__del_fd(&b->vm.loop, &b->traffic_watch);
	close(b->traffic_tfd);
	b->traffic_tfd = -1;
	b->traffic_watching = false;
}

static int board_announce(struct board *b, struct vmm_device *d, char *err, size_t errlen)
{
	int slot = device__pci_slot(&b->vm.devices, d->id), ret;

	if (slot < 0) {
		snprintf(err, errlen, "%s is not on the PCI bus", d->id);
		return slot;
	}
	ret = hotplug__notify_plug(b->hotplug, (unsigned int)slot);
	if (ret)
		snprintf(err, errlen, "cannot announce %s in slot %d: %s", d->id, slot,
			 ret == -EBUSY ? "a removal of that slot is pending" : strerror(-ret));
	else if (vfio_pci__from_device(d))
		board_traffic_watch(b);
	return ret;
}

static void board_failover_plug(struct board *b, struct board_failover *fo)
{
	struct vmm_device *d = device__find(&b->vm.devices, fo->vf_id);
	struct vfio_pci *vf = vfio_pci__from_device(d);
	char err[256];
	int ret;

	if (!vf)
		return;
	if (fo->mac_at_plug) {
		struct virtio_net *n = virtio_net__from_device(device__find(&b->vm.devices, fo->net_id));
		uint8_t mac[6];

		/* netlink on the loop thread: one request, before the guest can probe the VF */
		if (!n) {
			log_err(fo->vf_id, "its standby %s is gone; it stays out", fo->net_id);
			return;
		}
		virtio_net__get_mac(n, mac);
		ret = board_vf_mac_sync(fo->vf_id, fo->bdf, mac, err, sizeof(err));
		if (ret) {
			log_err(fo->vf_id, "STANDBY negotiated on %s, but %s; it stays out", fo->net_id,
				err);
			return;
		}
		fo->mac_at_plug = false;
	}
	ret = vfio_pci__plug(vf);
	if (!ret)
		ret = board_announce(b, d, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "cannot put it on the PCI bus: %s", strerror(-ret));
	if (ret) {
		log_err(fo->vf_id, "STANDBY negotiated on %s, but %s; it stays out", fo->net_id, err);
		return;
	}
	fo->plugged = true;
	log_info(fo->vf_id, "plugged: %s's driver negotiated STANDBY", fo->net_id);
	board_event_device(b, "device-added", fo->vf_id,
			   json_pack("{s:s,s:s}", "reason", "standby negotiated", "standby", fo->net_id));
}

static void board_standby_events(struct board *b, struct virtio_net *n)
{
	const char *id = virtio_net__device(n)->id;
	unsigned int nego, i, free_i = BOARD_MAX_STANDBY_SEEN;
	enum virtio_net_standby st = virtio_net__standby(n, &nego);

	for (i = 0; i < BOARD_MAX_STANDBY_SEEN; i++) {
		if (!b->sb_seen[i].id[0]) {
			if (free_i == BOARD_MAX_STANDBY_SEEN)
				free_i = i;
			continue;
		}
		if (!strcmp(b->sb_seen[i].id, id))
			break;
	}
	if (i == BOARD_MAX_STANDBY_SEEN) {
		if (free_i == BOARD_MAX_STANDBY_SEEN)
			return;
		i = free_i;
		snprintf(b->sb_seen[i].id, sizeof(b->sb_seen[i].id), "%s", id);
		b->sb_seen[i].state = VIRTIO_NET_STANDBY_WAITING;
	}
	if (b->sb_seen[i].state == (int)st && b->sb_seen[i].negotiations == nego)
		return;
	b->sb_seen[i].state = (int)st;
	b->sb_seen[i].negotiations = nego;
	board_event_device(b, "guest-driver", id,
			   json_pack("{s:s,s:i}", "standby", virtio_net__standby_name(st),
				     "negotiations", (int)nego));
}

static int board_standby_fn(struct vmm_device *d, void *opaque)
{
	struct virtio_net **list = opaque;
	struct virtio_net *n = virtio_net__from_device(d);
	unsigned int i;

	if (!n || virtio_net__standby(n, NULL) == VIRTIO_NET_STANDBY_OFF)
		return 0;
	for (i = 0; i < BOARD_MAX_STANDBY_SEEN; i++) {
		if (!list[i]) {
			list[i] = n;
			break;
		}
	}
	return 0;
}

/* the loop thread: what the STANDBY states mean for the waiting VFs */
static void board_failover_sync(struct board *b)
{
	struct virtio_net *nets[BOARD_MAX_STANDBY_SEEN] = { 0 };
	unsigned int i;

	if (device__for_each(&b->vm.devices, board_standby_fn, nets))
		return;
	for (i = 0; i < BOARD_MAX_STANDBY_SEEN && nets[i]; i++)
		board_standby_events(b, nets[i]);
	for (i = 0; i < BOARD_MAX_FAILOVER; i++) {
		struct board_failover *fo = &b->fo[i];
		struct virtio_net *n;
		enum virtio_net_standby st;

		if (!fo->used || fo->plugged)
			continue;
		n = virtio_net__from_device(device__find(&b->vm.devices, fo->net_id));
		if (!n)
			continue; /* its standby NIC is gone: it waits for none */
		st = virtio_net__standby(n, NULL);
		if (st == VIRTIO_NET_STANDBY_NEGOTIATED) {
			board_failover_plug(b, fo);
		} else if (st == VIRTIO_NET_STANDBY_DECLINED && !fo->declined_said) {
			fo->declined_said = true;
			log_warn(fo->vf_id, "the guest's driver on %s declined STANDBY (no net_failover): "
				 "the VF stays out, the guest uses %s", fo->net_id, fo->net_id);
		}
	}
}

static void board_standby_call(void *opaque)
{
	struct board *b = opaque;

	atomic_store(&b->standby_queued, false);
	/*
	 * A migration's destination: the loaded NIC says STANDBY, but the
	 * guest does not run here before the source's GO (the loop runs while
	 * the stream arrives): its VFs go in then (board_incoming), not before,
	 * or this host's NIC would take the guest's MAC from the standby
	 * while the guest still runs on the source, or never comes.
	 */
	if (b->incoming)
		return;
	board_failover_sync(b);
}

/* a vCPU thread, the NIC's transport lock held: only queue */
static void board_standby_changed(void *opaque)
{
	struct board *b = opaque;

	if (!atomic_exchange(&b->standby_queued, true))
		evloop__call(&b->vm.loop, &b->standby_call, board_standby_call, b);
}

/* --- run-time device operations (device-add, device-del) ------------------------- */

enum board_op_kind { BOARD_OP_ADD_VF, BOARD_OP_DEL };

struct board_op {
	struct board *b;
	enum board_op_kind kind;
	struct api_pending *reply;
	char id[DEVICE_ID_LEN];
	/* add vf */
	struct options_vf spec;
	char pair_id[DEVICE_ID_LEN];   /* failover: the standby NIC */
	uint8_t pair_mac[6];
	struct vfio_pci *vf;
	/* del */
	struct vmm_device *dev;        /* out of the list, being destroyed */
	int slot;
	unsigned int timeout_ms;
	double eject_ms;               /* request to the guest's _EJ0 */
	/* the worker */
	bool thread_started;
	pthread_t thread;
	int rc;
	char err[512];
	struct timespec t0, t_ejected;
	struct evloop_call done_call;
};

/* the refusal while another device operation runs */
static void board_busy(struct board *b, char *err, size_t errlen)
{
	snprintf(err, errlen, "busy: %s of %s is in progress",
		 b->op->kind == BOARD_OP_DEL ? "device-del" : "device-add", b->op->id);
}

static void board_op_end(struct board *b, struct board_op *op)
{
	if (op->thread_started)
		pthread_join(op->thread, NULL);
	b->op = NULL;
	free(op);
}

/* -- device-add vf: the worker builds the VF, the loop pairs and plugs it -- */

static void board_add_vf_done(void *opaque)
{
	struct board_op *op = opaque;
	struct board *b = op->b;
	struct vmm_device *d;
	struct board_failover *fo = NULL;
	const char *state = "plugged";
	char err[256];
	int ret = op->rc;
	json_t *ret_v;

	if (ret) {
		if (op->vf) { /* made, then its MAC could not be set */
			device__remove(&b->vm.devices, vfio_pci__device(op->vf));
			vfio_pci__destroy(op->vf);
			op->vf = NULL;
		}
		api__complete(op->reply, ret, NULL, op->err);
		board_op_end(b, op);
		return;
	}
	d = vfio_pci__device(op->vf);
	if (op->spec.failover) {
		fo = board_fo_add(b, op->id, op->pair_id);
		if (!fo) {
			ret = -ENOSPC;
			snprintf(err, sizeof(err), "too many failover pairs (%d)", BOARD_MAX_FAILOVER);
			goto err_vf;
		}
		board_failover_sync(b); /* plugs it now if STANDBY is negotiated */
		state = fo->plugged ? "plugged" : "waiting-standby";
		if (!fo->plugged)
			log_info(op->id, "%s waits off the bus until %s's driver negotiates STANDBY",
				 op->spec.bdf, op->pair_id);
	} else {
		ret = vfio_pci__plug(op->vf);
		if (ret) {
			snprintf(err, sizeof(err), "cannot put %s on the PCI bus: %s", op->spec.bdf,
				 ret == -ENOSPC ? "no free slot" : strerror(-ret));
			goto err_vf;
		}
		ret = board_announce(b, d, err, sizeof(err));
		if (ret)
			goto err_vf;
		board_event_device(b, "device-added", op->id, json_pack("{s:s}", "reason", "device-add"));
	}
	ret_v = device__describe(d);
	if (ret_v) {
		json_object_set_new(ret_v, "state", json_string(state));
		if (fo)
			json_object_set_new(ret_v, "failover",
					    json_pack("{s:s,s:s}", "standby", fo->net_id, "state", state));
		json_object_set_new(ret_v, "add_ms", json_real(ms_since(&op->t0)));
	}
	api__complete(op->reply, 0, ret_v, NULL);
	board_op_end(b, op);
	return;

err_vf:
	if (fo)
		memset(fo, 0, sizeof(*fo));
	/* never announced: the guest cannot have it; the release may block, but rarely runs */
	device__remove(&b->vm.devices, d);
	vfio_pci__destroy(op->vf);
	api__complete(op->reply, ret, NULL, err);
	board_op_end(b, op);
}

/* a worker's first step; on failure (logged) the VMM thread's filter it inherited still holds */
static void board_worker_confine(void)
{
	if (sandbox__enter(SANDBOX_WORKER))
		log_warn(BOARD_LOG, "worker: under the VMM thread's seccomp filter only");
}

static void *board_add_vf_worker(void *opaque)
{
	struct board_op *op = opaque;

	board_worker_confine();
	/*
	 * The VF first: only once it is ours (its group opened) may its MAC
	 * change; a VF another VM holds keeps its MAC.
	 */
	op->rc = board_make_vf(op->b, op->spec.bdf, op->id, true, &op->vf);
	if (op->rc)
		snprintf(op->err, sizeof(op->err), "cannot assign %s: %s (minivmm's log says why)",
			 op->spec.bdf, strerror(-op->rc));
	else if (op->spec.failover)
		op->rc = board_vf_mac_sync(op->id, op->spec.bdf, op->pair_mac, op->err, sizeof(op->err));
	evloop__call(&op->b->vm.loop, &op->done_call, board_add_vf_done, op);
	return NULL;
}

struct board_find_bdf {
	const char *bdf;
	const char *id;
};

static int board_find_bdf_fn(struct vmm_device *d, void *opaque)
{
	struct board_find_bdf *f = opaque;
	struct vfio_pci *vf = vfio_pci__from_device(d);

	if (vf && !strcasecmp(vfio_pci__bdf(vf), f->bdf)) {
		f->id = d->id;
		return 1;
	}
	return 0;
}

static int board_start_worker(struct board_op *op, void *(*fn)(void *), char *err, size_t errlen)
{
	int ret = -pthread_create(&op->thread, NULL, fn, op);

	if (ret) {
		snprintf(err, errlen, "cannot start a worker thread: %s", strerror(-ret));
		return ret;
	}
	op->thread_started = true;
	return 0;
}

static int board_device_add_vf(struct board *b, const char *spec_s, json_t **ret, char *err,
			       size_t errlen)
{
	struct board_find_bdf f = { 0 };
	struct virtio_net *pair = NULL;
	struct board_op *op;
	int rc;

	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->b = b;
	op->kind = BOARD_OP_ADD_VF;
	clock_gettime(CLOCK_MONOTONIC, &op->t0);
	rc = options__parse_vf(spec_s, "device-add vf", &op->spec, err, errlen);
	if (rc)
		goto err_free;
	if (op->spec.id[0])
		snprintf(op->id, sizeof(op->id), "%s", op->spec.id);
	else
		device__next_id(&b->vm.devices, "vf", op->id, sizeof(op->id));
	if (device__find(&b->vm.devices, op->id)) {
		snprintf(err, errlen, "device id '%s' is taken", op->id);
		rc = -EEXIST;
		goto err_free;
	}
	f.bdf = op->spec.bdf;
	if (device__for_each(&b->vm.devices, board_find_bdf_fn, &f)) {
		snprintf(err, errlen, "%s is assigned already (%s)", op->spec.bdf, f.id);
		rc = -EBUSY;
		goto err_free;
	}
	if (op->spec.failover) {
		rc = board_failover_pair(b, &op->spec, &pair, err, errlen);
		if (rc)
			goto err_free;
		snprintf(op->pair_id, sizeof(op->pair_id), "%s", virtio_net__device(pair)->id);
		virtio_net__get_mac(pair, op->pair_mac);
	}
	op->reply = api__defer(b->api);
	if (!op->reply) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = board_start_worker(op, board_add_vf_worker, err, errlen);
	if (rc)
		goto err_free; /* the api drops the unused handle */
	b->op = op;
	log_info(op->id, "device-add %s", spec_s);
	return API_DEFERRED;

err_free:
	free(op);
	return rc;
}

static int board_device_add_net(struct board *b, const char *spec, json_t **ret, char *err,
				size_t errlen)
{
	struct virtio_net *n;
	struct vmm_device *d;
	int rc;

	rc = board_make_net(b, spec, NULL, &n, err, errlen);
	if (rc)
		return rc == -EEXIST ? -EINVAL : rc;
	d = virtio_net__device(n);
	rc = board_announce(b, d, err, errlen);
	if (rc) {
		virtio_net__destroy(n);
		return rc;
	}
	log_info(d->id, "device-add net %s", spec);
	board_event_device(b, "device-added", d->id, json_pack("{s:s}", "reason", "device-add"));
	board_failover_sync(b); /* a failover VF may wait for this NIC */
	*ret = device__describe(d);
	if (*ret)
		json_object_set_new(*ret, "state", json_string("plugged"));
	return 0;
}

static int board_cmd_device_add(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	const char *kind = NULL, *spec = NULL;

	if (json_unpack(args, "{s:s,s:s}", "kind", &kind, "spec", &spec)) {
		snprintf(err, errlen, "args: {\"kind\": \"vf\" or \"net\", \"spec\": STRING}");
		return -EINVAL;
	}
	if (!b->hotplug) {
		snprintf(err, errlen, "no hot-plug controller");
		return -ENOTSUP;
	}
	if (b->op) {
		board_busy(b, err, errlen);
		return -EBUSY;
	}
	if (!strcmp(kind, "vf"))
		return board_device_add_vf(b, spec, ret, err, errlen);
	if (!strcmp(kind, "net"))
		return board_device_add_net(b, spec, ret, err, errlen);
	snprintf(err, errlen, "kind \"%.32s\": expected \"vf\" or \"net\"", kind);
	return -EINVAL;
}

/* -- device-del: request, the guest's eject, release (maybe on a worker) -- */

static void board_del_done(void *opaque)
{
	struct board_op *op = opaque;
	struct board *b = op->b;
	struct board_failover *fo = board_fo_find(b, op->id);
	double release_ms = ms_since(&op->t_ejected);
	json_t *ret_v;

	if (op->slot > 0 && hotplug__slot_removed(b->hotplug, (unsigned int)op->slot))
		log_warn(op->id, "slot %d was not waiting for its removal", op->slot);
	if (fo)
		memset(fo, 0, sizeof(*fo)); /* the pair ends with its VF */
	log_info(op->id, "removed (guest ejected it after %.0f ms; released in %.0f ms)",
		 op->eject_ms, release_ms);
	board_event_device(b, "device-removed", op->id,
			   json_pack("{s:f,s:f}", "eject_ms", op->eject_ms, "release_ms", release_ms));
	ret_v = json_pack("{s:s,s:s,s:f,s:f}", "id", op->id, "state", "removed", "eject_ms",
			  op->eject_ms, "release_ms", release_ms);
	api__complete(op->reply, 0, ret_v, NULL);
	board_op_end(b, op);
}

static void *board_del_worker(void *opaque)
{
	struct board_op *op = opaque;

	board_worker_confine();
	op->dev->ops->destroy(op->dev);
	evloop__call(&op->b->vm.loop, &op->done_call, board_del_done, op);
	return NULL;
}

/* takes the device out of the list and destroys it, on a worker when that may block */
static void board_del_release(struct board *b, struct board_op *op)
{
	char err[256];

	clock_gettime(CLOCK_MONOTONIC, &op->t_ejected);
	op->dev = device__find(&b->vm.devices, op->id);
	if (!op->dev) {
		board_del_done(op);
		return;
	}
	device__remove(&b->vm.devices, op->dev);
	if (op->dev->slow_destroy && !board_start_worker(op, board_del_worker, err, sizeof(err)))
		return;
	op->dev->ops->destroy(op->dev);
	board_del_done(op);
}

static void board_unplug_done(void *opaque, unsigned int slot, int result)
{
	struct board_op *op = opaque;
	struct board *b = op->b;
	char err[256];

	op->eject_ms = ms_since(&op->t0);
	if (result == -ETIMEDOUT) {
		log_warn(op->id, "the guest did not eject it within %u ms: it stays and keeps working",
			 op->timeout_ms);
		board_event_device(b, "device-unplug-timeout", op->id,
				   json_pack("{s:i}", "timeout_ms", (int)op->timeout_ms));
		snprintf(err, sizeof(err), "the guest did not eject %s within %u ms: the device stays "
			 "in the guest and keeps working", op->id, op->timeout_ms);
		api__complete(op->reply, -ETIMEDOUT, NULL, err);
		board_op_end(b, op);
		return;
	}
	log_info(op->id, "the guest ejected slot %u after %.0f ms", slot, op->eject_ms);
	board_del_release(b, op);
}

static int board_cmd_device_del(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	struct board_failover *fo;
	struct vmm_device *d;
	struct board_op *op;
	const char *id = NULL;
	json_int_t timeout_ms = BOARD_UNPLUG_TIMEOUT_MS;
	int rc;

	if (json_unpack(args, "{s:s,s?I}", "id", &id, "timeout_ms", &timeout_ms) || timeout_ms < 1 ||
	    timeout_ms > 600000) {
		snprintf(err, errlen, "args: {\"id\": ID, \"timeout_ms\": 1..600000 (default %d)}",
			 BOARD_UNPLUG_TIMEOUT_MS);
		return -EINVAL;
	}
	if (b->op) {
		board_busy(b, err, errlen);
		return -EBUSY;
	}
	d = device__find(&b->vm.devices, id);
	if (!d) {
		snprintf(err, errlen, "no device '%.32s' (\"devices\" lists them)", id);
		return -ENODEV;
	}
	if (!d->removable || !b->hotplug) {
		snprintf(err, errlen, "%s (%s) cannot be removed while the guest runs", d->id, d->kind);
		return -EPERM;
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->b = b;
	op->kind = BOARD_OP_DEL;
	op->timeout_ms = (unsigned int)timeout_ms;
	snprintf(op->id, sizeof(op->id), "%s", d->id);
	clock_gettime(CLOCK_MONOTONIC, &op->t0);
	fo = board_fo_find(b, d->id);
	op->reply = api__defer(b->api);
	if (!op->reply) {
		free(op);
		return -ENOMEM;
	}
	b->op = op;
	if (fo && !fo->plugged) {
		/* a failover VF still waiting: the guest never saw it */
		log_info(op->id, "device-del: never plugged, released at once");
		board_del_release(b, op);
		return API_DEFERRED;
	}
	op->slot = device__pci_slot(&b->vm.devices, d->id);
	rc = op->slot < 0 ? op->slot :
	     hotplug__request_unplug(b->hotplug, (unsigned int)op->slot, op->timeout_ms,
				     board_unplug_done, op);
	if (rc) {
		snprintf(err, errlen, "cannot ask the guest to eject %s: %s", d->id,
			 rc == -EBUSY ? "a request for its slot is pending" : strerror(-rc));
		b->op = NULL;
		free(op); /* the api drops the unused handle */
		return rc == -EINVAL ? -EIO : rc;
	}
	log_info(op->id, "device-del: asked the guest to eject slot %d (deadline %u ms)", op->slot,
		 op->timeout_ms);
	board_event_device(b, "device-unplug-requested", op->id,
			   json_pack("{s:i}", "timeout_ms", (int)op->timeout_ms));
	return API_DEFERRED;
}

/* at exit: an operation in flight ends with an error reply */
static void board_op_abort(struct board *b)
{
	struct board_op *op = b->op;

	if (!op)
		return;
	if (op->thread_started) {
		pthread_join(op->thread, NULL);
		op->thread_started = false;
		/* its done call is queued: run it while everything still exists */
		evloop__run_once(&b->vm.loop, false);
		if (b->op != op)
			return;
	}
	api__complete(op->reply, -ESHUTDOWN, NULL, "the VM stopped first");
	if (op->kind == BOARD_OP_DEL && op->dev && !op->dev->listed)
		op->dev->ops->destroy(op->dev); /* taken out of the list, not yet released */
	b->op = NULL;
	free(op);
}

/* --- the control socket's commands (docs/api.md) ------------------------- */

#define BOARD_PAUSE_TIMEOUT_MS 5000

static json_t *board_mig_status(const struct board_migration *m);

static json_t *board_incoming_status(const struct board_incoming *in);

static int board_cmd_status(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	*ret = json_pack("{s:s,s:i,s:s,s:i,s:I,s:I,s:b,s:f,s:i}",
			 "state", kvm__vcpus_paused(&b->vm) ? "paused" : "running",
			 "protocol", API_PROTOCOL_VERSION, "version", MINIVMM_VERSION,
			 "vcpus", (int)b->vm.nr_vcpus, "memory_bytes", (json_int_t)b->opts->mem,
			 "pid", (json_int_t)getpid(), "hugepages", b->opts->hugepages,
			 "uptime_s", (double)(now.tv_sec - b->started.tv_sec) +
				     (double)(now.tv_nsec - b->started.tv_nsec) / 1e9,
			 "devices", (int)b->vm.devices.nr);
	if (*ret && b->mig)
		json_object_set_new(*ret, "migration", board_mig_status(b->mig));
	if (*ret && b->incoming) {
		json_object_set_new(*ret, "state", json_string("incoming"));
		json_object_set_new(*ret, "incoming", board_incoming_status(b->incoming));
	} else if (*ret && b->incoming_done) {
		json_object_set(*ret, "incoming", b->incoming_done);
	}
	if (*ret && b->op)
		json_object_set_new(*ret, "operation",
				    json_pack("{s:s,s:s}", "command",
					      b->op->kind == BOARD_OP_DEL ? "device-del" : "device-add",
					      "id", b->op->id));
	return *ret ? 0 : -ENOMEM;
}

static int board_describe_fn(struct vmm_device *d, void *opaque)
{
	json_t *o = device__describe(d);

	if (!o)
		return -ENOMEM;
	json_array_append_new(opaque, o);
	return 0;
}

static int board_cmd_devices(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	json_t *list = json_array(), *d;
	size_t i;

	if (!list)
		return -ENOMEM;
	if (device__for_each(&b->vm.devices, board_describe_fn, list)) {
		json_decref(list);
		return -ENOMEM;
	}
	/* what only the board knows: the failover pairs */
	json_array_foreach(list, i, d) {
		struct board_failover *fo = board_fo_find(b, json_string_value(json_object_get(d, "id")));

		if (fo)
			json_object_set_new(d, "failover",
					    json_pack("{s:s,s:s}", "standby", fo->net_id, "state",
						      fo->plugged ? "plugged" : "waiting-standby"));
	}
	*ret = json_pack("{s:o}", "devices", list);
	return *ret ? 0 : -ENOMEM;
}

static int board_cmd_pause(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	int rc = kvm__vcpus_pause(&b->vm, BOARD_PAUSE_TIMEOUT_MS);

	if (rc == -EALREADY) {
		snprintf(err, errlen, "already paused");
		return rc;
	}
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "the vCPUs did not stop within %d ms: still running",
			 BOARD_PAUSE_TIMEOUT_MS);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "the VM is stopping");
		return rc;
	}
	log_info(BOARD_LOG, "paused (control socket)");
	api__event(b->api, "paused", NULL);
	*ret = json_pack("{s:s}", "state", "paused");
	return 0;
}

/*
 * the vCPUs' and the IOAPIC's state (vmm/x86/inspect.h): the vCPUs are parked
 * for the read and run on after it, unless they were paused already
 */
static int board_inspect(struct board *b, json_t **out, char *err, size_t errlen)
{
	bool was_paused;
	int rc = 0;

	/*
	 * a migration pauses and resumes the vCPUs itself while it turns this
	 * loop between records: SIGUSR2's dump, served then (the control
	 * socket's cpu-state waits for the migration's end), must not pause
	 * them under it (its own pause would fail) nor read them
	 */
	if (b->mig || b->incoming) {
		snprintf(err, errlen, "busy: a migration is in progress (%s): ask when it ends",
			 b->mig ? "outgoing" : "incoming");
		return -EBUSY;
	}
	was_paused = kvm__vcpus_paused(&b->vm);
	if (!was_paused)
		rc = kvm__vcpus_pause(&b->vm, BOARD_PAUSE_TIMEOUT_MS);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "a vCPU did not leave KVM_RUN within %d ms: its state cannot be read",
			 BOARD_PAUSE_TIMEOUT_MS);
		return rc;
	}
	if (rc == -EALREADY) {
		snprintf(err, errlen, "the vCPUs are being paused by another operation: ask again");
		return -EBUSY;
	}
	if (rc) {
		snprintf(err, errlen, "the VM is stopping");
		return rc;
	}
	rc = x86_inspect__vm(&b->vm, out);
	if (!was_paused)
		kvm__vcpus_resume(&b->vm);
	if (rc)
		snprintf(err, errlen, "cannot read the vCPUs' state: %s", strerror(-rc));
	return rc;
}

static int board_cmd_cpu_state(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	return board_inspect(opaque, ret, err, errlen);
}

static int board_inspect_device_fn(struct vmm_device *d, void *opaque)
{
	json_t *o = device__describe(d);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

	(void)opaque;
	if (line)
		log_warn("inspect", "device %s", line);
	free(line);
	json_decref(o);
	return 0;
}

/* SIGUSR2 (board__request_inspect): the vCPUs' state and every device's, one log line each */
static void board_inspect_fn(void *opaque, int res)
{
	struct board *b = opaque;
	char err[160];
	json_t *o = NULL, *v;
	char *line;
	size_t i;

	(void)res;
	sys__eventfd_drain(b->inspect_efd);
	if (board_inspect(b, &o, err, sizeof(err))) {
		log_warn("inspect", "vcpus: %s", err);
	} else {
		json_array_foreach(json_object_get(o, "vcpus"), i, v) {
			line = json_dumps(v, JSON_COMPACT);
			if (line)
				log_warn("inspect", "vcpu %s", line);
			free(line);
		}
		line = json_dumps(json_object_get(o, "ioapic"), JSON_COMPACT);
		if (line)
			log_warn("inspect", "ioapic %s", line);
		free(line);
		json_decref(o);
	}
	if (device__for_each(&b->vm.devices, board_inspect_device_fn, NULL))
		log_warn("inspect", "cannot list the devices");
}

static int board_inspect_setup(struct board *b)
{
	int ret;

	b->inspect_efd = sys__eventfd(0);
	if (b->inspect_efd < 0)
		return b->inspect_efd;
	ret = evloop__add_fd(&b->vm.loop, &b->inspect_watch, b->inspect_efd, POLLIN,
			     board_inspect_fn, b);
	if (ret) {
		close(b->inspect_efd);
		b->inspect_efd = -1;
	}
	return ret;
}

static void board_inspect_end(struct board *b)
{
	if (b->inspect_efd < 0)
		return;
	evloop__del_fd(&b->vm.loop, &b->inspect_watch);
	close(b->inspect_efd);
	b->inspect_efd = -1;
}

void board__request_inspect(struct board *b)
{
	if (b->inspect_efd >= 0)
		sys__eventfd_signal(b->inspect_efd);
}

static int board_cmd_resume(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;

	if (!kvm__vcpus_paused(&b->vm)) {
		snprintf(err, errlen, "not paused");
		return -EALREADY;
	}
	kvm__vcpus_resume(&b->vm);
	log_info(BOARD_LOG, "resumed (control socket)");
	api__event(b->api, "resumed", NULL);
	*ret = json_pack("{s:s}", "state", "running");
	return 0;
}

static int board_cmd_quit(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;

	api__event(b->api, "quit", NULL);
	kvm__request_exit(&b->vm, VM_EXIT_QUIT, 0);
	*ret = json_pack("{s:s}", "state", "quitting");
	return 0;
}

/* --- the machine's configuration as a section, checked on restore --------------- */

#define BOARD_MACHINE_VERSION 1

struct board_devlist {
	struct board *b;
	char *buf;
};

static int board_devlist_fn(struct vmm_device *d, void *opaque)
{
	struct board_devlist *l = opaque;
	struct board_failover *fo = board_fo_find(l->b, d->id);
	size_t len = strlen(l->buf);

	/* a failover VF is this host's resource: it never travels (the dance) */
	if (fo)
		return 0;
	snprintf(l->buf + len, 1024 - len, "%s%s:%s", len ? "," : "", d->id, d->kind);
	return 0;
}

/*
 * "id:kind,..." of every device, in list order, failover VFs left out: the
 * source unplugs its own before saving, the destination plugs its own.
 */
static void board_devlist(struct board *b, char buf[1024])
{
	struct board_devlist l = { b, buf };

	buf[0] = 0;
	if (device__for_each(&b->vm.devices, board_devlist_fn, &l))
		buf[0] = 0;
}

static int board_machine_save(void *opaque, void *fdt)
{
	struct board *b = opaque;
	char devs[1024];
	int ret;

	board_devlist(b, devs);
	ret = mig__put_u64(fdt, "memory_bytes", b->opts->mem);
	if (!ret)
		ret = mig__put_u32(fdt, "vcpus", b->vm.nr_vcpus);
	if (!ret)
		ret = mig__put_str(fdt, "devices", devs);
	return ret;
}

/* the stream's VM and this one must be the same machine; host resources may differ */
static int board_machine_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct board *b = opaque;
	char devs[1024], theirs[1024];
	uint64_t mem;
	uint32_t vcpus;
	int ret;

	(void)version;
	ret = mig__get_u64(fdt, node, "memory_bytes", &mem);
	if (!ret)
		ret = mig__get_u32(fdt, node, "vcpus", &vcpus);
	if (!ret)
		ret = mig__get_str(fdt, node, "devices", theirs, sizeof(theirs));
	if (ret)
		return ret;
	board_devlist(b, devs);
	if (mem != b->opts->mem) {
		mig__set_error(&b->vm.mig, "the saved VM has %llu MiB of memory, this one %llu MiB (--mem)",
			       (unsigned long long)(mem >> 20), (unsigned long long)(b->opts->mem >> 20));
		return -EINVAL;
	}
	if (vcpus != b->vm.nr_vcpus) {
		mig__set_error(&b->vm.mig, "the saved VM has %u vCPUs, this one %u (--cpus)", vcpus,
			       b->vm.nr_vcpus);
		return -EINVAL;
	}
	if (strcmp(devs, theirs)) {
		mig__set_error(&b->vm.mig, "the saved VM's devices are %s; this one's are %s", theirs,
			       devs);
		return -EINVAL;
	}
	return 0;
}

static const struct mig_section_ops board_machine_ops = {
	.save = board_machine_save,
	.load = board_machine_load,
	.check = board_machine_load, /* it only compares: at once, before the RAM */
};

/* --- migration, the source side (migration/live.h has the transaction) ---------- */

#define BOARD_MIGRATE_CONNECT_MS 10000
#define BOARD_MIGRATE_ACK_MS 120000

/* a failover VF the migration takes out of the guest, and may have to bring back */
struct board_mig_vf {
	char id[DEVICE_ID_LEN];
	char net_id[DEVICE_ID_LEN];
	char bdf[PCISYS_BDF_LEN];
	bool was_plugged;          /* the guest had it (not waiting for STANDBY) */
	bool removed;              /* out of the VM: replug brings it back */
	double eject_ms;
};

struct board_migration {
	struct board *b;
	struct mig_uri uri;
	int fd;
	bool paused_here;
	unsigned int unplug_timeout_ms;
	struct board_mig_vf vfs[BOARD_MAX_FAILOVER];
	unsigned int nr_vfs;
	json_t *plan;              /* --plan's reply being built */
	bool cancel;               /* migrate-cancel asked: honoured at the next record or step */
	char cancel_why[96];
	enum mig_live_state state; /* for status */
	/* pre-copy */
	struct mig_writer w;
	bool writer_on;
	struct snapshot_live live;
	bool live_on;
	unsigned int downtime_ms;  /* the target for what is left when the guest stops */
	uint64_t bandwidth_bps;    /* bytes per second, 0: as fast as the link goes */
	unsigned int rounds;
	bool converged;
	const char *precopy_end; /* how pre-copy ended: mig__precopy_verdict_name() */
	uint64_t last_pages, final_pages;
	double bw_bps, expected_ms, precopy_ms;
	struct timespec t_pace, t_event;
	uint64_t pace_bytes;
	struct snapshot_stats st;
	struct timespec t0, t_unplugged, t_paused, t_sent;
};

/*
 * Work that may block (a VF's release or creation) on its own thread while
 * the loop goes on serving the guest; board_bg_wait returns when it ended.
 */
struct board_bg {
	struct board *b;
	void (*fn)(struct board_bg *bg);
	atomic_bool done;
	pthread_t thread;
	struct evloop_call call;
	/* the work's arguments and result */
	struct vmm_device *dev;
	const char *bdf, *id;
	struct vfio_pci *vf;
	int rc;
};

static void board_bg_woken(void *opaque)
{
	(void)opaque; /* only wakes the loop: board_bg_wait checks done */
}

static void *board_bg_thread(void *opaque)
{
	struct board_bg *bg = opaque;

	board_worker_confine();
	bg->fn(bg);
	atomic_store(&bg->done, true);
	evloop__call(&bg->b->vm.loop, &bg->call, board_bg_woken, bg);
	return NULL;
}

/* runs bg->fn on a thread (inline when none starts) and serves the loop until it ends */
static void board_bg_run(struct board_bg *bg)
{
	atomic_store(&bg->done, false);
	if (pthread_create(&bg->thread, NULL, board_bg_thread, bg)) {
		bg->fn(bg);
		return;
	}
	while (!atomic_load(&bg->done))
		if (evloop__run_once(&bg->b->vm.loop, true) < 0)
			break;
	pthread_join(bg->thread, NULL);
	evloop__run_once(&bg->b->vm.loop, false); /* its wake-up call */
}

static void board_bg_destroy(struct board_bg *bg)
{
	bg->dev->ops->destroy(bg->dev);
}

static void board_bg_make_vf(struct board_bg *bg)
{
	bg->rc = board_make_vf(bg->b, bg->bdf, bg->id, true, &bg->vf);
}

struct board_mig_eject {
	bool done;
	int result;
};

static void board_mig_ejected(void *opaque, unsigned int slot, int result)
{
	struct board_mig_eject *e = opaque;

	(void)slot;
	e->result = result;
	e->done = true;
}

/* takes one failover VF out of the guest (its eject first when the guest has it) */
static int board_mig_unplug_vf(struct board_migration *m, struct board_mig_vf *v, char *err,
			       size_t errlen)
{
	struct board *b = m->b;
	struct vmm_device *d = device__find(&b->vm.devices, v->id);
	struct board_bg bg = { .b = b, .fn = board_bg_destroy };
	struct board_mig_eject e = { 0 };
	struct board_failover *fo;
	struct timespec t0;
	int slot = -1, rc;

	if (!d) {
		snprintf(err, errlen, "%s is gone", v->id);
		return -ENODEV;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (v->was_plugged) {
		slot = device__pci_slot(&b->vm.devices, v->id);
		rc = slot < 0 ? slot :
		     hotplug__request_unplug(b->hotplug, (unsigned int)slot, m->unplug_timeout_ms,
					     board_mig_ejected, &e);
		if (rc) {
			snprintf(err, errlen, "cannot ask the guest to eject %s: %s", v->id,
				 rc == -EBUSY ? "a request for its slot is pending" : strerror(-rc));
			return rc;
		}
		log_info(v->id, "migration: asked the guest to eject slot %d (its traffic moves to %s)",
			 slot, v->net_id);
		board_event_device(b, "device-unplug-requested", v->id,
				   json_pack("{s:i,s:s}", "timeout_ms", (int)m->unplug_timeout_ms,
					     "reason", "migration"));
		while (!e.done) {
			/* migrate-cancel: the request is withdrawn unless the guest ejected already */
			if (m->cancel && !hotplug__withdraw_unplug(b->hotplug, (unsigned int)slot)) {
				snprintf(err, errlen, "cancelled (migrate-cancel) before the guest ejected %s: "
					 "it stays in the guest", v->id);
				return -ECANCELED;
			}
			if (evloop__run_once(&b->vm.loop, true) < 0)
				break;
		}
		if (!e.done || e.result) {
			rc = e.done ? e.result : -EIO;
			snprintf(err, errlen, "the guest did not eject %s within %u ms: it stays in the "
				 "guest", v->id, m->unplug_timeout_ms);
			board_event_device(b, "device-unplug-timeout", v->id,
					   json_pack("{s:i}", "timeout_ms", (int)m->unplug_timeout_ms));
			return rc == -ETIMEDOUT ? rc : -EIO;
		}
	}
	v->eject_ms = ms_since(&t0);
	fo = board_fo_find(b, v->id);
	if (fo)
		memset(fo, 0, sizeof(*fo)); /* the pair ends with its VF */
	device__remove(&b->vm.devices, d);
	bg.dev = d;
	board_bg_run(&bg);
	if (slot > 0 && hotplug__slot_removed(b->hotplug, (unsigned int)slot))
		log_warn(v->id, "slot %d was not waiting for its removal", slot);
	v->removed = true;
	log_info(v->id, "migration: %s out of the VM (%s after %.0f ms)", v->bdf,
		 v->was_plugged ? "the guest ejected it" : "it was waiting for STANDBY", v->eject_ms);
	board_event_device(b, "device-removed", v->id,
			   json_pack("{s:f,s:s}", "eject_ms", v->eject_ms, "reason", "migration"));
	return 0;
}

/* brings the VFs the migration took out back, each as it was (plugged when STANDBY is negotiated) */
static void board_mig_replug(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	struct board *b = m->b;
	size_t len = strlen(err);
	unsigned int i;

	for (i = 0; i < m->nr_vfs; i++) {
		struct board_mig_vf *v = &m->vfs[i];
		struct board_bg bg = { .b = b, .fn = board_bg_make_vf, .bdf = v->bdf, .id = v->id };
		struct board_failover *fo;

		if (!v->removed)
			continue;
		board_bg_run(&bg);
		fo = bg.rc ? NULL : board_fo_add(b, v->id, v->net_id);
		if (!fo) {
			log_err(v->id, "migration rolled back, but %s cannot come back: %s; the guest "
				"goes on with %s alone", v->bdf, bg.rc ? strerror(-bg.rc) : "no room",
				v->net_id);
			if (!bg.rc) {
				device__remove(&b->vm.devices, vfio_pci__device(bg.vf));
				vfio_pci__destroy(bg.vf);
			}
			snprintf(err + len, errlen - len, "; %s (%s) could not be plugged back", v->id,
				 v->bdf);
			len = strlen(err);
			continue;
		}
		v->removed = false;
		/* its MAC is checked again right before the plug: the guest pairs by MAC */
		snprintf(fo->bdf, sizeof(fo->bdf), "%s", v->bdf);
		fo->mac_at_plug = true;
		board_failover_sync(b); /* plugs it when the guest's driver has STANDBY */
		log_info(v->id, "migration rolled back: %s %s", v->bdf,
			 fo->plugged ? "plugged back" : "back, waiting for STANDBY");
		snprintf(err + len, errlen - len, "; %s %s", v->id,
			 fo->plugged ? "plugged back" : "back (waiting for STANDBY)");
		len = strlen(err);
	}
}

static int board_mig_unplug(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	unsigned int i;
	int rc;

	for (i = 0; i < m->nr_vfs; i++) {
		rc = board_mig_unplug_vf(m, &m->vfs[i], err, errlen);
		if (rc) {
			board_mig_replug(m, err, errlen); /* the ones taken out so far */
			return rc;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &m->t_unplugged);
	return 0;
}

/* migrate's check, before anything changes: which VFs leave, and none that cannot */
struct board_mig_plan {
	struct board_migration *m;
	char *err;
	size_t errlen;
};

static int board_mig_plan_fn(struct vmm_device *d, void *opaque)
{
	struct board_mig_plan *p = opaque;
	struct board_migration *m = p->m;
	struct vfio_pci *vf = vfio_pci__from_device(d);
	struct board_failover *fo;
	struct board_mig_vf *v;

	if (!vf)
		return 0;
	fo = board_fo_find(m->b, d->id);
	if (!fo) {
		snprintf(p->err, p->errlen, "%s (VF %s) cannot move: a VF's state stays in its "
			 "hardware; pair it with a virtio-net standby (--vf BDF,failover=on) so that it "
			 "is unplugged here and the destination plugs its own", d->id, vfio_pci__bdf(vf));
		return -EPERM;
	}
	if (fo->plugged && !m->b->hotplug) {
		snprintf(p->err, p->errlen, "%s cannot be unplugged: no hot-plug controller", d->id);
		return -EPERM;
	}
	v = &m->vfs[m->nr_vfs++];
	snprintf(v->id, sizeof(v->id), "%s", d->id);
	snprintf(v->net_id, sizeof(v->net_id), "%s", fo->net_id);
	snprintf(v->bdf, sizeof(v->bdf), "%s", vfio_pci__bdf(vf));
	v->was_plugged = fo->plugged;
	return 0;
}

static bool board_mig_leaves(struct vmm_device *d, void *opaque)
{
	struct board_migration *m = opaque;
	unsigned int i;

	for (i = 0; i < m->nr_vfs; i++)
		if (!strcmp(m->vfs[i].id, d->id))
			return true;
	return false;
}

static int board_cmd_snapshot(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	struct board_migration m = { .b = b, .fd = -1, .unplug_timeout_ms = BOARD_UNPLUG_TIMEOUT_MS };
	struct board_mig_plan p = { &m, err, errlen };
	struct snapshot_stats st;
	struct timespec t0;
	const char *file = NULL;
	bool paused_here = false;
	char back[256] = "";
	int fd, rc;

	if (json_unpack(args, "{s:s}", "file", &file) || !file[0]) {
		snprintf(err, errlen, "args: {\"file\": PATH}");
		return -EINVAL;
	}
	if (b->op) {
		board_busy(b, err, errlen);
		return -EBUSY;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a failover VF leaves the guest for the save and comes back after it */
	rc = device__for_each(&b->vm.devices, board_mig_plan_fn, &p);
	if (rc)
		return rc < 0 ? rc : -EIO;
	if (m.nr_vfs) {
		rc = board_mig_unplug(&m, err, errlen);
		if (rc)
			return rc;
	}
	if (!kvm__vcpus_paused(&b->vm)) {
		rc = kvm__vcpus_pause(&b->vm, BOARD_PAUSE_TIMEOUT_MS);
		if (rc) {
			snprintf(err, errlen, "cannot pause the vCPUs: %s", strerror(-rc));
			goto out;
		}
		paused_here = true;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(-rc));
		goto out;
	}
	rc = snapshot__save(&b->vm, fd, &st, err, errlen);
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", file, strerror(-rc));
		unlink(file); /* never leave half a snapshot behind */
		goto out;
	}
	log_info(BOARD_LOG, "snapshot %s: %llu bytes (%u sections, %llu MiB of RAM, %llu zero pages "
		 "left out)", file, (unsigned long long)st.bytes, st.sections,
		 (unsigned long long)(st.ram_bytes >> 20), (unsigned long long)st.zero_pages);
	*ret = json_pack("{s:s,s:I,s:i,s:I,s:I,s:f}", "file", file, "bytes", (json_int_t)st.bytes,
			 "sections", (int)st.sections, "ram_bytes", (json_int_t)st.ram_bytes,
			 "zero_pages", (json_int_t)st.zero_pages, "ms", ms_since(&t0));
	api__event(b->api, "snapshot", json_pack("{s:s,s:I}", "file", file, "bytes",
						 (json_int_t)st.bytes));
out:
	if (paused_here)
		kvm__vcpus_resume(&b->vm);
	if (m.nr_vfs) {
		if (rc) {
			size_t len = strlen(err);

			board_mig_replug(&m, err + len, errlen - len);
		} else {
			board_mig_replug(&m, back, sizeof(back));
			if (*ret)
				json_object_set_new(*ret, "failover_vfs", json_string(back[0] ? back + 2 : ""));
		}
	}
	return rc == -ENOTSUP ? -EPERM : rc;
}

static void board_mig_disconnect(void *opaque);

/* an evloop watch that only says it fired */
static void board_flag(void *opaque, int res)
{
	(void)res;
	*(bool *)opaque = true;
}

/*
 * The migration socket is full: serve the guest (and migrate-cancel) in the
 * event loop until it takes more. The socket is polled beside the loop's
 * own descriptor (a watch on a writable socket would fire on every ACK).
 * -ECANCELED on a cancel or when the VM stops.
 */
/* a connected migration socket, wrapped in TLS when this VMM has credentials */
static int board_mig_secure(struct board *b, int fd, bool server, const struct mig_uri *u,
			    char *err, size_t errlen)
{
	if (!b->tls || fd < 0)
		return fd;
	return migtls__wrap(b->tls, fd, server, server || u->unix_socket ? NULL : u->host,
			    BOARD_MIGRATE_CONNECT_MS, err, errlen);
}

/* err gets the TLS relay's reason, when it is what ended the connection fd */
static void board_mig_tls_why(int fd, char *err, size_t errlen)
{
	char why[320];
	size_t n = strlen(err);

	if (fd < 0 || migtls__error(fd, why, sizeof(why)) || n + 1 >= errlen)
		return;
	snprintf(err + n, errlen - n, n ? " (%s)" : "%s", why);
}

static int board_mig_wait(struct board_migration *m, int fd, short events, int timeout_ms)
{
	struct evloop *l = &m->b->vm.loop;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = events },
				       { .fd = evloop__pollfd(l), .events = POLLIN } };
		double left = timeout_ms < 0 ? 100 : timeout_ms - ms_since(&t0);

		if (m->cancel || kvm__exiting(&m->b->vm)) {
			snprintf(m->cancel_why, sizeof(m->cancel_why), "%s",
				 m->cancel ? "cancelled (migrate-cancel)" :
				 "the VM is stopping (the guest powered off, or minivmm was told to quit)");
			return -ECANCELED;
		}
		if (left <= 0)
			return -ETIMEDOUT;
		/* a bounded wait: an exit request does not always wake the loop */
		if (poll(p, 2, (int)MIN(left, 100.0) + 1) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents)
			evloop__run_once(l, false);
		if (p[0].revents)
			return 0;
	}
}

static int board_mig_writable(void *opaque, int fd)
{
	return board_mig_wait(opaque, fd, POLLOUT, -1);
}

/*
 * The destination's answer (its word after the confirm record, its verdict
 * after the stream): the loop runs meanwhile, so that the guest's devices
 * (still running while connecting) and the control socket (status,
 * migrate-cancel) are served however long the destination takes.
 */
static int board_mig_readable(void *opaque, int fd, int timeout_ms)
{
	return board_mig_wait(opaque, fd, POLLIN, timeout_ms);
}

static int board_mig_read_ack(struct board_migration *m, int timeout_ms, char *ack, size_t len)
{
	return migrate__read_ack_wait(m->fd, timeout_ms, ack, len, board_mig_readable, m);
}

/* the destination stopped reading: it may have said why before it did */
static void board_mig_refusal(struct board_migration *m, int rc, char *err, size_t errlen)
{
	char ack[MIG_ACK_MAX];

	if ((rc == -EPIPE || rc == -ECONNRESET || rc == -EREMOTEIO) &&
	    !migrate__read_ack(m->fd, 2000, ack, sizeof(ack)) &&
	    !strncmp(ack, MIG_ACK_REFUSED, strlen(MIG_ACK_REFUSED)))
		snprintf(err, errlen, "the destination refused the VM: %s",
			 ack + strlen(MIG_ACK_REFUSED) + (ack[strlen(MIG_ACK_REFUSED)] == ' '));
	else if (rc == -EREMOTEIO)
		snprintf(err, errlen, "the destination closed the connection or answered out of turn");
	board_mig_tls_why(m->fd, err, errlen);
}

static int board_mig_connect(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	char ack[MIG_ACK_MAX];
	int rc;

	m->fd = migrate__connect(&m->uri, BOARD_MIGRATE_CONNECT_MS, err, errlen);
	m->fd = board_mig_secure(m->b, m->fd, false, &m->uri, err, errlen);
	if (m->fd < 0)
		return m->fd;
	mig__writer_init_fd(&m->w, m->fd);
	/*
	 * A socket that cannot take more (a slow or busy link) must not stall
	 * the guest's devices: the writer waits in the event loop instead.
	 */
	if (fcntl(m->fd, F_SETFL, fcntl(m->fd, F_GETFL) | O_NONBLOCK) == 0) {
		m->w.wait = board_mig_writable;
		m->w.wait_opaque = m;
	}
	m->writer_on = true;
	/*
	 * The header and the machine's configuration, then the destination's
	 * word: it takes this VM and holds its own VFs, or it refuses. Only
	 * then does anything change here (the unplug, pre-copy).
	 */
	m->live_on = true; /* live_end undoes whatever begin did */
	rc = snapshot__live_begin(&m->live, &m->b->vm, &m->w, err, errlen);
	if (rc) {
		board_mig_refusal(m, rc, err, errlen);
		goto err_disconnect;
	}
	rc = board_mig_read_ack(m, BOARD_MIGRATE_CONNECT_MS, ack, sizeof(ack));
	if (rc == -ECANCELED) {
		snprintf(err, errlen, "%s", m->cancel_why);
		goto err_disconnect;
	}
	if (rc) {
		snprintf(err, errlen, "no answer from the destination: %s",
			 rc == -ECONNRESET ? "it closed the connection" : strerror(-rc));
		goto err_disconnect;
	}
	if (!strncmp(ack, MIG_ACK_REFUSED, strlen(MIG_ACK_REFUSED))) {
		snprintf(err, errlen, "the destination refused the VM: %s",
			 ack + strlen(MIG_ACK_REFUSED) + (ack[strlen(MIG_ACK_REFUSED)] == ' '));
		rc = -EPERM;
		goto err_disconnect;
	}
	if (strcmp(ack, MIG_ACK_READY)) {
		snprintf(err, errlen, "the destination answered '%.80s', not %s (an older minivmm?)",
			 ack, MIG_ACK_READY);
		rc = -EPROTO;
		goto err_disconnect;
	}
	log_info(BOARD_LOG, "migration: the destination takes the VM (%s)", MIG_ACK_READY);
	return 0;

err_disconnect:
	board_mig_tls_why(m->fd, err, errlen);
	/* a failed connect leaves nothing open (migration/live.h): the destination sees it close */
	board_mig_disconnect(m);
	return rc;
}

#define BOARD_DOWNTIME_MS 300           /* as QEMU's default */
#define BOARD_PROGRESS_MS 500

static void board_mig_event(struct board_migration *m, bool round_end)
{
	double bw = m->bw_bps;
	json_t *e;

	/* round 0 under way: its rate so far */
	if (!m->rounds && !round_end && ms_since(&m->t_pace) > 0)
		bw = (double)(m->w.written - m->pace_bytes) / (ms_since(&m->t_pace) / 1e3);
	e = json_pack("{s:s,s:i,s:I,s:I,s:f,s:f}", "state", "pre-copy", "round", (int)m->rounds,
		      "bytes", (json_int_t)m->w.written, "dirty_pages", (json_int_t)m->last_pages,
		      "mbps", bw * 8 / 1e6, "expected_downtime_ms", m->expected_ms);

	/* round 0 (all of RAM): how far, by the pages scanned */
	if (e && !m->rounds)
		json_object_set_new(e, "ram_percent",
				    json_real(round_end || !m->b->vm.mem.ram_size ? 100.0 :
					      MIN(99.0, 100.0 * (double)m->live.scanned /
							    (double)(m->b->vm.mem.ram_size >> 12))));
	if (e && round_end)
		json_object_set_new(e, "round_done", json_true());
	api__event(m->b->api, "migration", e);
	clock_gettime(CLOCK_MONOTONIC, &m->t_event);
}

/* after each record of pre-copy: serve the guest's devices, keep to the bandwidth, report */
static int board_mig_pace(void *opaque, uint64_t written)
{
	struct board_migration *m = opaque;
	struct evloop *l = &m->b->vm.loop;

	struct pollfd pfd = { .fd = m->fd, .events = POLLIN };

	/* the destination never speaks before the end, unless it refuses: stop at once */
	if (poll(&pfd, 1, 0) > 0)
		return -EREMOTEIO;
	evloop__run_once(l, false);
	while (m->bandwidth_bps) {
		double el = ms_since(&m->t_pace) / 1e3, ahead;

		ahead = (double)(written - m->pace_bytes) / (double)m->bandwidth_bps - el;
		if (ahead <= 0)
			break;
		usleep((useconds_t)(MIN(ahead, 0.005) * 1e6));
		evloop__run_once(l, false);
	}
	if (!m->rounds && ms_since(&m->t_event) >= BOARD_PROGRESS_MS)
		board_mig_event(m, false); /* round 0's progress; later rounds report as they end */
	if (m->cancel)
		snprintf(m->cancel_why, sizeof(m->cancel_why), "cancelled (migrate-cancel)");
	else if (kvm__exiting(&m->b->vm))
		snprintf(m->cancel_why, sizeof(m->cancel_why),
			 "the VM is stopping (the guest powered off, or minivmm was told to quit)");
	return kvm__exiting(&m->b->vm) || m->cancel ? -ECANCELED : 0;
}

/*
 * Pre-copy: all of RAM while the guest runs, then rounds of what it
 * dirtied meanwhile, until one round's pages would cross within the
 * downtime target at the measured bandwidth. A guest that dirties faster
 * than the link never gets there: once the backlog stops reaching new lows,
 * or after MIG_PRECOPY_MAX_ROUNDS rounds (migration/precopy.h), the copy
 * stops iterating and the rest crosses with the guest paused (converged:
 * false, the expected downtime said in the reply). docs/migration.md.
 */
static int board_mig_precopy(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	struct snapshot_pacer pacer = { .fn = board_mig_pace, .opaque = m };
	struct mig_precopy policy;
	enum mig_precopy_verdict verdict;
	struct timespec t0, tr;
	uint64_t pages, before;
	int rc;

	mig__precopy_init(&policy, m->downtime_ms);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	m->t_pace = t0;
	m->t_event = t0;
	m->pace_bytes = m->w.written;
	/* the stream began in board_mig_connect; the VFs are out: log from here */
	rc = snapshot__live_log_start(&m->live, err, errlen);
	for (m->rounds = 0; !rc; m->rounds++) {
		clock_gettime(CLOCK_MONOTONIC, &tr);
		before = m->w.written;
		rc = snapshot__live_round(&m->live, m->rounds == 0, &pacer, &pages, err, errlen);
		if (rc)
			break;
		{
			double secs = ms_since(&tr) / 1e3;
			uint64_t sent = m->w.written - before;

			/* a round too small to time keeps the last estimate */
			if (sent >= (1u << 20) && secs > 0)
				m->bw_bps = (double)sent / secs;
			else if (!m->bw_bps && secs > 0)
				m->bw_bps = (double)MAX(sent, 1u) / secs;
		}
		if (!m->rounds)
			log_info(BOARD_LOG, "migration: pre-copy round 0: %llu MiB of RAM in %.0f ms "
				 "(%.0f Mbit/s)", (unsigned long long)((m->w.written - before) >> 20),
				 ms_since(&tr), m->bw_bps * 8 / 1e6);
		/*
		 * What the pause would have to send now (the pages dirtied since
		 * they were sent, taken from the logs): the decision uses the
		 * real backlog, not the last round's size.
		 */
		rc = snapshot__live_pending(&m->live, &pages, err, errlen);
		if (rc)
			break;
		verdict = mig__precopy_judge(&policy, pages, m->bw_bps);
		m->last_pages = pages;
		m->expected_ms = policy.expected_ms;
		board_mig_event(m, true);
		log_info(BOARD_LOG, "migration: after pre-copy round %u: %llu pages dirty, %.0f Mbit/s, "
			 "%.0f ms expected downtime", m->rounds, (unsigned long long)pages,
			 m->bw_bps * 8 / 1e6, m->expected_ms);
		if (verdict == MIG_PRECOPY_AGAIN)
			continue;
		m->precopy_end = mig__precopy_verdict_name(verdict);
		m->converged = verdict == MIG_PRECOPY_CONVERGED;
		if (!m->converged)
			log_warn(BOARD_LOG, "migration: the guest dirties about %llu pages a round, "
				 "faster than %.0f Mbit/s carries them within %u ms (%s: %u rounds, "
				 "the lowest backlog %llu pages, %u rounds ago): the rest crosses with "
				 "the guest paused (about %.0f ms)",
				 (unsigned long long)pages, m->bw_bps * 8 / 1e6, m->downtime_ms,
				 m->precopy_end, policy.rounds, (unsigned long long)policy.best_pages,
				 policy.since_best, m->expected_ms);
		m->rounds++;
		break;
	}
	m->precopy_ms = ms_since(&t0);
	if (rc == -ECANCELED && m->cancel_why[0])
		snprintf(err, errlen, "%s", m->cancel_why);
	else if (rc)
		board_mig_refusal(m, rc, err, errlen);
	return rc;
}

static int board_mig_pause(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &m->t_paused);
	if (kvm__vcpus_paused(&m->b->vm))
		return 0;
	rc = kvm__vcpus_pause(&m->b->vm, BOARD_PAUSE_TIMEOUT_MS);
	if (rc)
		snprintf(err, errlen, "the vCPUs did not stop: %s", strerror(-rc));
	else
		m->paused_here = true;
	return rc;
}

/*
 * after each record of the paused transfer: serve the control socket (a
 * migrate-cancel, status) and stop at once on a cancel or a refusal. The
 * devices are paused: the loop has nothing of theirs to run.
 */
static int board_mig_pace_paused(void *opaque, uint64_t written)
{
	struct board_migration *m = opaque;
	struct pollfd pfd = { .fd = m->fd, .events = POLLIN };

	(void)written;
	if (poll(&pfd, 1, 0) > 0)
		return -EREMOTEIO;
	evloop__run_once(&m->b->vm.loop, false);
	if (m->cancel)
		snprintf(m->cancel_why, sizeof(m->cancel_why), "cancelled (migrate-cancel)");
	return m->cancel ? -ECANCELED : 0;
}

static int board_mig_transfer(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	struct snapshot_pacer pacer = { .fn = board_mig_pace_paused, .opaque = m };
	int rc = snapshot__live_finish(&m->live, &pacer, &m->final_pages, err, errlen);

	m->st = m->live.st;
	clock_gettime(CLOCK_MONOTONIC, &m->t_sent);
	if (rc == -ECANCELED && m->cancel_why[0])
		snprintf(err, errlen, "%s", m->cancel_why);
	else if (rc)
		board_mig_refusal(m, rc, err, errlen);
	return rc;
}

static int board_mig_await(void *opaque, char *ack, size_t acklen, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	int rc;

	/*
	 * The guest is paused and the destination loads: a cancel is still
	 * honoured (the destination runs nothing before the GO), and status
	 * answers meanwhile.
	 */
	rc = board_mig_read_ack(m, BOARD_MIGRATE_ACK_MS, ack, acklen);
	if (rc == -ECANCELED)
		snprintf(err, errlen, "%s", m->cancel_why);
	else if (rc)
		snprintf(err, errlen, "no answer from the destination: %s",
			 rc == -ECONNRESET ? "it closed the connection" : strerror(-rc));
	if (rc)
		board_mig_tls_why(m->fd, err, errlen);
	return rc;
}

static int board_mig_commit(void *opaque, char *err, size_t errlen)
{
	struct board_migration *m = opaque;
	int rc = migrate__write_ack(m->fd, MIG_ACK_GO);

	if (rc)
		snprintf(err, errlen, "cannot tell the destination to start: %s", strerror(-rc));
	return rc;
}

static void board_mig_resume(void *opaque)
{
	struct board_migration *m = opaque;

	/* the devices first: a kick they took while paused is served before the guest goes on */
	snapshot__live_resume_devices(&m->live);
	if (m->paused_here)
		kvm__vcpus_resume(&m->b->vm);
	m->paused_here = false;
}

static void board_mig_finish(void *opaque)
{
	struct board_migration *m = opaque;

	kvm__request_exit(&m->b->vm, VM_EXIT_MIGRATED, 0);
}

static void board_mig_disconnect(void *opaque)
{
	struct board_migration *m = opaque;

	if (m->live_on)
		snapshot__live_end(&m->live);
	m->live_on = false;
	if (m->writer_on)
		mig__writer_release(&m->w);
	m->writer_on = false;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* status's view of a migration in progress */
static json_t *board_mig_status(const struct board_migration *m)
{
	return json_pack("{s:s,s:i,s:I,s:b}", "state", mig__live_state_name(m->state), "round",
			 (int)m->rounds, "bytes", (json_int_t)(m->writer_on ? m->w.written : 0),
			 "cancelling", m->cancel);
}

static bool board_mig_cancel(void *opaque)
{
	return ((struct board_migration *)opaque)->cancel;
}

static void board_mig_progress(void *opaque, enum mig_live_state s)
{
	struct board_migration *m = opaque;

	m->state = s;
	log_info(BOARD_LOG, "migration to %s: %s", m->uri.unix_socket ? m->uri.path : m->uri.host,
		 mig__live_state_name(s));
	api__event(m->b->api, "migration", json_pack("{s:s}", "state", mig__live_state_name(s)));
}

static const struct mig_live_ops board_mig_ops = {
	.connect = board_mig_connect,
	.unplug = board_mig_unplug,
	.replug = board_mig_replug,
	.precopy = board_mig_precopy,
	.pause = board_mig_pause,
	.transfer = board_mig_transfer,
	.await_ack = board_mig_await,
	.commit = board_mig_commit,
	.resume = board_mig_resume,
	.finish = board_mig_finish,
	.disconnect = board_mig_disconnect,
	.cancel = board_mig_cancel,
	.progress = board_mig_progress,
};

static double board_ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* --plan: how each device would move; nothing changes */
static int board_plan_fn(struct vmm_device *d, void *opaque)
{
	struct board_migration *m = opaque;
	struct board *b = m->b;
	json_t *list = json_object_get(m->plan, "devices"), *o;
	struct vfio_pci *vf = vfio_pci__from_device(d);
	struct board_failover *fo = board_fo_find(b, d->id);
	char how[320];
	const char *verb;

	if (vf && fo) {
		verb = "unplug";
		snprintf(how, sizeof(how), "failover VF %s: %s here (its traffic moves to %s), the "
			 "destination plugs its own VF paired with %s", vfio_pci__bdf(vf),
			 fo->plugged ? "the guest ejects it" : "released (not plugged yet)", fo->net_id,
			 fo->net_id);
	} else if (vf) {
		verb = "refused";
		snprintf(how, sizeof(how), "VF %s has no virtio-net standby: its state stays in the "
			 "hardware (pair it: --vf BDF,failover=on)", vfio_pci__bdf(vf));
	} else if (d->state_section) {
		verb = "state";
		snprintf(how, sizeof(how), "state in the stream (section %s %u)", d->state_section,
			 d->state_instance);
	} else if (d->stateless) {
		verb = "rebuilt";
		snprintf(how, sizeof(how), "no state: the destination's own");
	} else {
		verb = "refused";
		snprintf(how, sizeof(how), "cannot save its state");
	}
	if (!strcmp(verb, "refused"))
		json_object_set_new(m->plan, "feasible", json_false());
	o = json_pack("{s:s,s:s,s:s,s:s}", "id", d->id, "kind", d->kind, "move", verb, "how", how);
	return o ? json_array_append_new(list, o) : -ENOMEM;
}

static int board_migrate_plan(struct board_migration *m, const char *uri, json_t **ret)
{
	struct board *b = m->b;
	char err[512], ack[MIG_ACK_MAX];
	json_t *dst;
	int fd, rc;

	m->plan = json_pack("{s:s,s:b,s:[],s:{s:i,s:s}}", "uri", uri, "feasible", 1, "devices",
			    "vcpus", "count", (int)b->vm.nr_vcpus, "how",
			    "state in the stream (sections cpu, kvm-vm)");
	if (!m->plan)
		return -ENOMEM;
	rc = device__for_each(&b->vm.devices, board_plan_fn, m);
	if (rc) {
		json_decref(m->plan);
		return rc < 0 ? rc : -EIO;
	}
	/* the destination checks this VM's configuration, and waits on */
	fd = migrate__connect(&m->uri, BOARD_MIGRATE_CONNECT_MS, err, sizeof(err));
	fd = board_mig_secure(b, fd, false, &m->uri, err, sizeof(err));
	if (fd >= 0) {
		rc = snapshot__save_plan(&b->vm, fd, err, sizeof(err));
		if (!rc) {
			rc = migrate__read_ack(fd, BOARD_MIGRATE_CONNECT_MS, ack, sizeof(ack));
			if (rc)
				snprintf(err, sizeof(err), "no answer: %s", strerror(-rc));
		}
		if (rc)
			board_mig_tls_why(fd, err, sizeof(err));
		close(fd);
	} else {
		rc = fd;
	}
	if (rc) {
		dst = json_pack("{s:b,s:s}", "accepts", 0, "reason", err);
	} else if (!strcmp(ack, MIG_ACK_PLAN_OK)) {
		dst = json_pack("{s:b,s:s}", "accepts", 1, "reason",
				"memory, vCPUs and devices match");
	} else {
		const char *why = ack;

		if (!strncmp(ack, MIG_ACK_REFUSED, strlen(MIG_ACK_REFUSED)))
			why = ack + strlen(MIG_ACK_REFUSED) + (ack[strlen(MIG_ACK_REFUSED)] == ' ');
		dst = json_pack("{s:b,s:s}", "accepts", 0, "reason", why);
	}
	if (!json_is_true(json_object_get(dst, "accepts")))
		json_object_set_new(m->plan, "feasible", json_false());
	json_object_set_new(m->plan, "destination", dst);
	log_info(BOARD_LOG, "migration plan for %s: %s", uri,
		 json_is_true(json_object_get(m->plan, "feasible")) ? "feasible" : "not feasible");
	*ret = m->plan;
	return 0;
}

static int board_cmd_migrate(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	struct board_migration m = { .b = b, .fd = -1, .unplug_timeout_ms = BOARD_UNPLUG_TIMEOUT_MS };
	struct mig_live_result res;
	const char *uri = NULL;
	struct timespec end;
	int rc;

	json_int_t unplug_ms = BOARD_UNPLUG_TIMEOUT_MS, downtime_ms = BOARD_DOWNTIME_MS, mbit = 0;
	int plan = 0;

	if (json_unpack(args, "{s:s,s?I,s?b,s?I,s?I}", "uri", &uri, "unplug_timeout_ms", &unplug_ms,
			"plan", &plan, "downtime_ms", &downtime_ms, "bandwidth_mbit", &mbit) ||
	    unplug_ms < 1 || unplug_ms > 600000 || downtime_ms < 1 || downtime_ms > 600000 ||
	    mbit < 0 || mbit > 1000000) {
		snprintf(err, errlen, "args: {\"uri\": \"tcp:HOST:PORT\" or \"unix:PATH\", "
			 "\"unplug_timeout_ms\": 1..600000 (default %d), \"plan\": BOOL, "
			 "\"downtime_ms\": 1..600000 (default %d), \"bandwidth_mbit\": 0..1000000 "
			 "(0: no limit)}", BOARD_UNPLUG_TIMEOUT_MS, BOARD_DOWNTIME_MS);
		return -EINVAL;
	}
	m.downtime_ms = (unsigned int)downtime_ms;
	m.bandwidth_bps = (uint64_t)mbit * 1000000 / 8;
	m.unplug_timeout_ms = (unsigned int)unplug_ms;
	rc = mig__parse_uri(uri, &m.uri, err, errlen);
	if (rc)
		return -EINVAL;
	if (plan)
		return board_migrate_plan(&m, uri, ret);
	if (b->op) {
		board_busy(b, err, errlen);
		return -EBUSY;
	}
	/* a device that cannot be carried: refused before anything happens */
	{
		struct board_mig_plan p = { &m, err, errlen };

		rc = device__for_each(&b->vm.devices, board_mig_plan_fn, &p);
		if (rc)
			return rc < 0 ? rc : -EIO;
	}
	rc = snapshot__check(&b->vm, board_mig_leaves, &m, err, errlen);
	if (rc)
		return -EPERM;
	clock_gettime(CLOCK_MONOTONIC, &m.t0);
	b->mig = &m;
	rc = mig__live_run(&board_mig_ops, &m, &res);
	b->mig = NULL;
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (rc) {
		snprintf(err, errlen, "%s while %s: %s; the VM runs on here",
			 res.state == MIG_LIVE_ROLLED_BACK ? "rolled back" : "failed",
			 mig__live_state_name(res.failed), res.reason);
		log_err(BOARD_LOG, "migration to %s: %s", uri, err);
		return rc == -EINVAL ? -EIO : rc;
	}
	/* the source's VFs are released; none may keep the guest's MAC on this host */
	for (unsigned int i = 0; i < m.nr_vfs; i++)
		board_vf_mac_clear(m.vfs[i].id, m.vfs[i].bdf,
				   "the guest runs on the destination");
	log_info(BOARD_LOG, "migrated to %s: %llu bytes (%llu MiB of RAM) in %.0f ms, %.0f ms paused; "
		 "pre-copy %u rounds, %s, %llu pages left for the pause", uri,
		 (unsigned long long)m.st.bytes, (unsigned long long)(m.st.ram_bytes >> 20),
		 board_ms_between(&m.t0, &end), board_ms_between(&m.t_paused, &end), m.rounds,
		 m.converged ? "converged" : "did not converge", (unsigned long long)m.final_pages);
	*ret = json_pack("{s:s,s:s,s:I,s:I,s:f,s:f}", "state", "completed", "uri", uri, "bytes",
			 (json_int_t)m.st.bytes, "ram_bytes", (json_int_t)m.st.ram_bytes, "total_ms",
			 board_ms_between(&m.t0, &end), "downtime_ms",
			 board_ms_between(&m.t_paused, &end));
	if (*ret)
		json_object_set_new(*ret, "precopy",
				    json_pack("{s:i,s:b,s:s,s:f,s:I,s:I,s:f,s:f,s:i}", "rounds",
					      (int)m.rounds, "converged", m.converged, "end",
					      m.precopy_end ? m.precopy_end : "none", "ms",
					      m.precopy_ms, "last_round_pages",
					      (json_int_t)m.last_pages, "final_pages",
					      (json_int_t)m.final_pages, "mbps", m.bw_bps * 8 / 1e6,
					      "expected_downtime_ms", m.expected_ms,
					      "downtime_target_ms", (int)m.downtime_ms));
	if (*ret && m.nr_vfs) {
		json_t *vfs = json_array();
		unsigned int i;

		for (i = 0; vfs && i < m.nr_vfs; i++)
			json_array_append_new(vfs, json_pack("{s:s,s:s,s:s,s:b,s:f}", "id", m.vfs[i].id,
							     "bdf", m.vfs[i].bdf, "standby",
							     m.vfs[i].net_id, "was_plugged",
							     m.vfs[i].was_plugged, "eject_ms",
							     m.vfs[i].eject_ms));
		json_object_set_new(*ret, "unplugged", vfs ? vfs : json_null());
		json_object_set_new(*ret, "unplug_ms", json_real(board_ms_between(&m.t0, &m.t_unplugged)));
	}
	return *ret ? 0 : -ENOMEM;
}

static int board_cmd_migrate_cancel(void *opaque, json_t *args, json_t **ret, char *err,
				    size_t errlen)
{
	struct board *b = opaque;

	if (!b->mig) {
		snprintf(err, errlen, "no migration in progress");
		return -EALREADY;
	}
	if (b->mig->state == MIG_LIVE_COMMITTING || b->mig->state == MIG_LIVE_COMPLETED) {
		snprintf(err, errlen, "too late to cancel: the destination was told to run the guest");
		return -EALREADY;
	}
	b->mig->cancel = true;
	log_info(BOARD_LOG, "migration: cancel asked (control socket) while %s",
		 mig__live_state_name(b->mig->state));
	*ret = json_pack("{s:s,s:s}", "state", "cancelling", "phase",
			 mig__live_state_name(b->mig->state));
	return *ret ? 0 : -ENOMEM;
}

static const struct {
	const char *name, *help;
	api_cmd_fn fn;
} board_commands[] = {
	{ "status", "the VM's state (running or paused), vCPUs, memory, protocol version",
	  board_cmd_status },
	{ "devices", "the devices: id, kind, bus address, what backs them", board_cmd_devices },
	{ "pause", "park every vCPU outside KVM_RUN", board_cmd_pause },
	{ "resume", "let the vCPUs run again", board_cmd_resume },
	{ "cpu-state", "each vCPU's registers, pending events and local APIC, and the IOAPIC's "
	  "unmasked pins (the vCPUs are parked for the read)", board_cmd_cpu_state },
	{ "device-add", "hot-plug a device: args {kind: vf|net, spec: as --vf or --net}",
	  board_cmd_device_add },
	{ "device-del", "ask the guest to eject a device, then release it: args {id, timeout_ms}",
	  board_cmd_device_del },
	{ "snapshot", "save the VM (its state and RAM) to a file: args {file}; --restore starts it",
	  board_cmd_snapshot },
	{ "migrate", "move the VM to a minivmm started with --incoming: args {uri, downtime_ms, "
	  "bandwidth_mbit, unplug_timeout_ms, plan}", board_cmd_migrate },
	{ "migrate-cancel", "stop the migration in progress: the VM runs on here, its VFs back",
	  board_cmd_migrate_cancel },
	{ "quit", "stop the guest; minivmm exits with status 0", board_cmd_quit },
};

static int board_add_api(struct board *b)
{
	unsigned int i;
	int ret;

	if (!b->opts->api)
		return 0;
	ret = api__create(&b->vm.loop, b->opts->api, &b->api);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(board_commands); i++) {
		ret = api__register(b->api, board_commands[i].name, board_commands[i].help,
				    board_commands[i].fn, b);
		if (ret)
			return ret; /* board__build undoes it */
	}
	/* answered while a migration runs (it serves the loop between records) */
	/*
	 * quit as well: during a migration the source then rolls back ("the VM
	 * is stopping") and exits; a waiting destination stops waiting
	 */
	ret = api__set_nested(b->api, "quit");
	if (!ret)
		ret = api__set_nested(b->api, "migrate-cancel");
	if (!ret)
		ret = api__set_nested(b->api, "status");
	return ret;
}

static void board_del_api(struct board *b)
{
	api__destroy(b->api);
	b->api = NULL;
}

/*
 * What KASLR needs of a bzImage (x86_unpack__kaslr_fields) and two random
 * numbers for its slots. *have says whether the kernel can move at all.
 */
static int board_kaslr_params(const uint8_t *k, size_t len, struct x86_boot_kaslr *ka, bool *have)
{
	*have = false;
	memset(ka, 0, sizeof(*ka));
	if (!x86_unpack__kaslr_fields(k, len, ka)) {
		log_info(BOARD_LOG, "--decompress host: the kernel is not relocatable (no relocatable_kernel, or a boot protocol before 2.10): it runs where it was linked, without KASLR");
		return 0;
	}
	if (getrandom(ka->rnd, sizeof(ka->rnd), 0) != (ssize_t)sizeof(ka->rnd)) {
		log_err(BOARD_LOG, "--decompress host: no random numbers for KASLR (getrandom failed)");
		return -EIO;
	}
	*have = true;
	return 0;
}

/*
 * --decompress host: replaces a bzImage in files with the kernel's ELF from
 * its payload (vmm/x86/unpack.h); an ELF kernel is left as it is. The guest
 * then boots without its decompressor; *kaslr gets what minivmm needs to do
 * the decompressor's KASLR in its place (vmm/x86/kaslr.h), *have_kaslr says
 * whether it applies (a relocatable bzImage).
 */
static int board_unpack_kernel(struct image_boot_files *files, const struct options *o,
			       struct x86_boot_kaslr *kaslr, bool *have_kaslr)
{
	const char *fmt, *cache = o->kernel_cache;
	char defcache[4096];
	struct timespec t0, t1;
	bool hit = false;
	void *elf;
	size_t len;
	int ret;

	*have_kaslr = false;
	if (files->kernel_len >= 4 && !memcmp(files->kernel, "\177ELF", 4)) {
		log_info(BOARD_LOG, "--decompress host: the kernel is an ELF file already (booted where it was linked: no KASLR)");
		return 0;
	}
	ret = board_kaslr_params(files->kernel, files->kernel_len, kaslr, have_kaslr);
	if (ret)
		return ret;
	/* the default cache is a convenience: when it cannot be used, the boot goes on without */
	if (!cache && !o->no_kernel_cache) {
		ret = x86_unpack__default_cache(defcache, sizeof(defcache));
		if (ret)
			log_warn(BOARD_LOG, "--decompress host: no default --kernel-cache (%s): decompressing without one",
				 strerror(-ret));
		else
			cache = defcache;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (cache) {
		ret = x86_unpack__cached(files->kernel, files->kernel_len, cache, &elf, &len, &fmt,
					 &hit);
		if ((ret == -EPERM || ret == -ENOTDIR) && cache == defcache) {
			log_warn(BOARD_LOG, "--decompress host: the default --kernel-cache %s is unusable: decompressing without it",
				 cache);
			cache = NULL;
		}
	}
	if (!cache)
		ret = x86_unpack__bzimage(files->kernel, files->kernel_len, &elf, &len, &fmt);
	if (ret)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (hit)
		log_info(BOARD_LOG, "--decompress host: the bzImage's kernel read from --kernel-cache %s: %zu KiB in %lld ms; the guest boots its ELF directly",
			 cache, len / 1024,
			 (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	else
		log_info(BOARD_LOG, "--decompress host: the bzImage's %s payload decompressed on the host: %zu KiB to %zu KiB in %lld ms%s; the guest boots its ELF directly",
			 fmt, files->kernel_len / 1024, len / 1024,
			 (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000),
			 cache ? ", kept in --kernel-cache" : "");
	free(files->kernel); /* read from the image: malloc'd */
	files->kernel = elf;
	files->kernel_len = len;
	files->kernel_mapped = hit; /* x86_unpack__cached maps a cache hit */
	return 0;
}

static int board_read_file(const char *path, void **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long sz;
	int ret = 0;

	if (!f) {
		ret = -errno;
		log_err(BOARD_LOG, "cannot open %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		ret = -EIO;
		goto out;
	}
	if (sz == 0 || sz > (long)(1L << 30)) {
		log_err(BOARD_LOG, "%s: %s", path, sz ? "larger than 1 GiB" : "empty file");
		ret = -EINVAL;
		goto out;
	}
	*buf = malloc((size_t)sz);
	if (!*buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (fread(*buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(*buf);
		*buf = NULL;
		ret = -EIO;
		log_err(BOARD_LOG, "%s: short read", path);
		goto out;
	}
	*len = (size_t)sz;
out:
	fclose(f);
	return ret;
}

/* the vCPUs with their CPUID, MSRs, FPU and LAPIC set up, and their state sections */
static int board_make_vcpus(struct board *b)
{
	unsigned int i;
	int ret;

	ret = kvm__vcpus_create(&b->vm);
	if (ret)
		return ret;
	for (i = 0; i < b->vm.nr_vcpus; i++) {
		ret = x86_cpu__setup(b->vm.kvm_fd, b->vm.vcpus[i].fd, i, b->vm.nr_vcpus);
		if (ret)
			return ret;
	}
	ret = x86_state__register(&b->vm);
	if (ret)
		log_err(BOARD_LOG, "cannot register the vCPUs' state: %s", strerror(-ret));
	return ret;
}

/* where an ELF kernel's load went, for the boot-phase line ("" for a bzImage) */
static const char *board_load_split(const struct x86_boot_info *bi, char *buf, size_t len)
{
	if (!bi->elf)
		return "";
	snprintf(buf, len, " (the kernel's segments copied in %.0f, KASLR's relocations %.0f)",
		 bi->copy_ms, bi->reloc_ms);
	return buf;
}

/* ACPI tables, kernel, initrd and command line into guest memory; vCPU state */
static int board_load(struct board *b)
{
	const struct options *o = b->opts;
	struct image_boot_files files;
	struct x86_acpi_config acpi = {
		.nr_vcpus = o->cpus,
		.ecam_base = PCI_ECAM_BASE,
		.ecam_size = PCI_ECAM_SIZE,
		.mmio32_base = PCI_MMIO32_BASE,
		.mmio32_size = PCI_MMIO32_SIZE,
		/* as board_place_mmio64 placed it (none: size 0) */
		.mmio64_base = b->vm.pci.no_mmio64 ? 0 : b->vm.pci.mmio64.base,
		.mmio64_size = b->vm.pci.no_mmio64 ? 0 : b->vm.pci.mmio64.end - b->vm.pci.mmio64.base,
		.io_base = PCI_IOPORT_BASE,
		.io_size = PCI_IOPORT_SIZE,
		.pm1a_evt_port = X86_PM1A_EVT_PORT,
		.pm1a_cnt_port = X86_PM1A_CNT_PORT,
		.reset_port = PM_RESET_PORT,
		.reset_value = PM_RESET_VALUE,
		.sci_irq = X86_SCI_IRQ,
		.com1 = true,
		.kbd = true, /* devices/i8042: keyboard port only */
		.hotplug_port = b->hotplug ? X86_HOTPLUG_PORT : 0,
		.gpe0_port = b->hotplug ? X86_GPE0_PORT : 0,
	};
	struct x86_boot_kaslr kaslr;
	struct x86_boot_info bi;
	bool have_kaslr = false;
	struct timespec t0, t_load;
	double files_ms = 0, unpack_ms = 0, load_ms;
	char split[96];
	uint64_t rsdp;
	int ret;

	/* the boot's phases in minivmm, logged at the end (docs/benchmarks.md) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&files, 0, sizeof(files));
	ret = x86_acpi__build(&b->vm.mem, &acpi, &rsdp);
	if (ret) {
		log_err(BOARD_LOG, "cannot build ACPI tables: %s", strerror(-ret));
		return ret;
	}
	if (o->kernel) {
		ret = board_read_file(o->kernel, &files.kernel, &files.kernel_len);
		if (!ret && o->initrd)
			ret = board_read_file(o->initrd, &files.initrd, &files.initrd_len);
	} else {
		ret = image__load_boot_files(o->image, &files);
		if (!ret)
			log_info(BOARD_LOG, "booting %s%s%s from %s (%s)", files.kernel_path,
				 files.initrd ? " with " : "", files.initrd ? files.initrd_path : "",
				 o->image, files.fs_desc);
	}
	if (ret)
		goto out;
	files_ms = ms_since(&t0);
	if (o->decompress_host) {
		ret = board_unpack_kernel(&files, o, &kaslr, &have_kaslr);
		/* by default, a kernel minivmm cannot unpack boots as it is: its
		 * own decompressor runs in the guest; asked for, it is an error */
		if (ret && ret != -ENOMEM && !o->decompress_given) {
			log_warn(BOARD_LOG, "the kernel's bzImage could not be decompressed on the host (%s): the guest's decompressor runs instead (--decompress guest)",
				 strerror(-ret));
			have_kaslr = false;
			ret = 0;
		}
		if (ret)
			goto out;
	}
	unpack_ms = ms_since(&t0) - files_ms;
	clock_gettime(CLOCK_MONOTONIC, &t_load);
	ret = x86_boot__load(&b->vm.mem, files.kernel, files.kernel_len, files.initrd,
			     files.initrd_len, o->cmdline ? o->cmdline : OPTIONS_DEFAULT_CMDLINE,
			     rsdp, have_kaslr ? &kaslr : NULL, &bi);
	if (ret) {
		log_err(BOARD_LOG, "cannot load kernel %s: %s",
			o->kernel ? o->kernel : files.kernel_path, strerror(-ret));
		goto out;
	}
	load_ms = ms_since(&t_load);
	clock_gettime(CLOCK_MONOTONIC, &t_load);
	ret = board_make_vcpus(b);
	if (ret)
		goto out;
	ret = x86_boot__setup_vcpu(b->vm.vcpus[0].fd, &b->vm.mem, &bi);
	if (!ret)
		log_info(BOARD_LOG, "boot phases: kernel and initrd read in %.0f ms, unpacked in %.0f ms, loaded in %.0f ms%s, vCPUs made in %.0f ms",
			 files_ms, unpack_ms, load_ms, board_load_split(&bi, split, sizeof(split)),
			 ms_since(&t_load));
out:
	image__boot_files_free(&files);
	return ret;
}

static int board_announce_fn(struct vmm_device *d, void *opaque)
{
	struct virtio_net *n = virtio_net__from_device(d);

	(void)opaque;
	if (n && virtio_net__announce(n))
		log_info(d->id, "the guest's driver did not take GUEST_ANNOUNCE: it does not "
			 "announce itself after the move");
	return 0;
}

static int board_moved_fn(struct vmm_device *d, void *opaque)
{
	(void)opaque;
	if (d->ops && d->ops->moved)
		d->ops->moved(d);
	return 0;
}

/* the loop thread, the guest running here after a restore: each device raises again what may be lost */
static void board_moved_call(void *opaque)
{
	struct board *b = opaque;

	if (device__for_each(&b->vm.devices, board_moved_fn, NULL))
		log_warn(BOARD_LOG, "cannot list the devices after the restore");
}

/* the loop thread, the guest running on this host after a migration */
static void board_announce_call(void *opaque)
{
	struct board *b = opaque;

	board_moved_call(b);
	if (device__for_each(&b->vm.devices, board_announce_fn, NULL))
		log_warn(BOARD_LOG, "cannot list the NICs to announce");
}

/*
 * --incoming URI: the vCPUs, then the VM from the migration's stream; the
 * source gets one line back: loaded, or refused with the reason (it then
 * resumes the guest itself). The VMM thread runs the event loop while it
 * waits for the source and between the stream's records, so that the
 * control socket answers status (and only the nested commands: the others
 * wait for the guest to run; api__hold). One listening socket takes every
 * connection: plans (migrate --plan) are answered and it waits on.
 */
#define BOARD_INCOMING_WAIT_S 3600
#define BOARD_INCOMING_GO_MS 30000
#define BOARD_INCOMING_DRAIN_MS 30000

struct board_incoming {
	struct board *b;
	const char *state;   /* "waiting", "receiving" */
	uint64_t bytes;      /* of the stream being received */
	unsigned int plans;  /* answered so far */
	bool ready, timed_out;
	struct evloop_watch lwatch, twatch;
};

static void board_incoming_idle(void *opaque, uint64_t consumed)
{
	struct board_incoming *in = opaque;

	in->bytes = consumed;
	evloop__run_once(&in->b->vm.loop, false);
}

static json_t *board_incoming_status(const struct board_incoming *in)
{
	return json_pack("{s:s,s:I,s:i}", "state", in->state, "bytes", (json_int_t)in->bytes,
			 "plans", (int)in->plans);
}

/* accepts connections on lfd until one brings a VM (not a plan); its fd, or -errno */
static int board_incoming_receive(struct board *b, struct board_incoming *in, int lfd,
				  const struct mig_uri *u, char *err, size_t errlen)
{
	char ack[MIG_ACK_MAX];
	int fd, ret;

	for (;;) {
		bool plan = false;

		in->state = "waiting";
		while (!in->ready && !in->timed_out && !kvm__exiting(&b->vm))
			if (evloop__run_once(&b->vm.loop, true) < 0)
				break;
		if (kvm__exiting(&b->vm)) {
			snprintf(err, errlen, "told to quit (ctl quit) while waiting for a migration");
			return -ECANCELED;
		}
		if (!in->ready) {
			snprintf(err, errlen, "no source connected within %d s", BOARD_INCOMING_WAIT_S);
			return -ETIMEDOUT;
		}
		in->ready = false;
		fd = migrate__accept_one(lfd, u, err, errlen);
		if (fd == -EAGAIN || fd == -ECONNABORTED)
			continue;
		fd = board_mig_secure(b, fd, true, u, err, errlen);
		if (fd < 0)
			return fd;
		in->state = "receiving";
		in->bytes = 0;
		ret = snapshot__load_or_plan(&b->vm, fd, &plan, board_incoming_idle, in, err, errlen);
		if (!ret && kvm__exiting(&b->vm)) {
			snprintf(err, errlen, "told to quit (ctl quit) while receiving the migration");
			ret = -ECANCELED;
		}
		if (ret && b->tls && !migtls__authenticated(fd)) {
			/*
			 * Not a source that holds the key or a certificate: nothing
			 * of it was read, and the wait goes on for the real one.
			 */
			err[0] = 0;
			board_mig_tls_why(fd, err, errlen);
			log_warn(BOARD_LOG, "--incoming: a connection refused before any stream: %s; "
				 "waiting on", err);
			close(fd);
			continue;
		}
		if (ret)
			board_mig_tls_why(fd, err, errlen);
		if (!plan) {
			if (!ret)
				return fd;
			/*
			 * Refused: the source may still be sending: take (and drop)
			 * the rest, so that closing does not reset the connection
			 * before it reads why.
			 */
			log_err(BOARD_LOG, "--incoming: refused: %s", err);
			snprintf(ack, sizeof(ack), "%s %.400s", MIG_ACK_REFUSED, err);
			if (!migrate__write_ack(fd, ack))
				migrate__drain(fd, BOARD_INCOMING_DRAIN_MS);
			close(fd);
			err[0] = 0; /* said */
			return ret;
		}
		/* a source's dry run: answered, and this VMM waits on for the real one */
		in->plans++;
		if (ret)
			snprintf(ack, sizeof(ack), "%s %.400s", MIG_ACK_REFUSED, err);
		else
			snprintf(ack, sizeof(ack), "%s", MIG_ACK_PLAN_OK);
		log_info(BOARD_LOG, "--incoming: a migration plan %s%s; waiting on", ret ? "refused: " :
			 "would be accepted", ret ? err : "");
		if (!migrate__write_ack(fd, ack) && ret)
			migrate__drain(fd, BOARD_INCOMING_DRAIN_MS);
		close(fd);
	}
}

static int board_incoming(struct board *b)
{
	struct board_incoming in = { .b = b };
	struct itimerspec its = { .it_value.tv_sec = BOARD_INCOMING_WAIT_S };
	char err[512], ack[MIG_ACK_MAX];
	struct mig_uri u;
	struct timespec t0;
	int lfd, tfd, fd, ret;

	ret = mig__parse_uri(b->opts->incoming, &u, err, sizeof(err));
	if (ret) {
		log_err(BOARD_LOG, "--incoming %s", err);
		return ret;
	}
	ret = board_make_vcpus(b);
	if (ret)
		return ret;
	if (!b->tls && !migrate__is_local(&u))
		log_warn(BOARD_LOG, "--incoming %s (--insecure-migration): the migration channel is "
			 "plain TCP, neither authenticated nor encrypted: whoever reaches it can hand "
			 "this VMM a guest", b->opts->incoming);
	lfd = migrate__listen(&u, err, sizeof(err));
	if (lfd < 0) {
		log_err(BOARD_LOG, "--incoming %s: %s", b->opts->incoming, err);
		return lfd;
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0) {
		ret = -errno;
		goto err_listen;
	}
	if (timerfd_settime(tfd, 0, &its, NULL)) {
		ret = -errno;
		goto err_timer;
	}
	ret = evloop__add_fd(&b->vm.loop, &in.lwatch, lfd, POLLIN, board_flag, &in.ready);
	if (ret)
		goto err_timer;
	ret = evloop__add_fd(&b->vm.loop, &in.twatch, tfd, POLLIN, board_flag,
			     &in.timed_out);
	if (ret)
		goto err_lwatch;
	b->incoming = &in;
	api__hold(b->api, true);
	log_info(BOARD_LOG, "waiting for a migration on %s%s", b->opts->incoming,
		 b->api ? " (the control socket answers status meanwhile)" : "");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = board_incoming_receive(b, &in, lfd, &u, err, sizeof(err));
	evloop__del_fd(&b->vm.loop, &in.twatch);
	evloop__del_fd(&b->vm.loop, &in.lwatch);
	close(tfd);
	migrate__unlisten(lfd, &u);
	if (fd < 0) {
		if (err[0])
			log_err(BOARD_LOG, "--incoming %s: %s", b->opts->incoming, err);
		ret = fd;
		goto out;
	}
	snprintf(ack, sizeof(ack), "%s", MIG_ACK_LOADED);
	ret = migrate__write_ack(fd, ack);
	if (ret) {
		/* the source cannot know: it resumes the guest itself; this copy must not run */
		log_err(BOARD_LOG, "--incoming: the source went away before the answer: not starting");
		ret = -ECONNRESET;
	}
	if (!ret) {
		/* start only on the source's word: never a second running copy */
		ret = migrate__read_ack(fd, BOARD_INCOMING_GO_MS, ack, sizeof(ack));
		if (!ret && strcmp(ack, MIG_ACK_GO))
			ret = -EPROTO;
		if (ret)
			log_err(BOARD_LOG, "--incoming: the source did not confirm (%s): not starting; "
				"the VM runs on the source", ret == -EPROTO ? "unexpected answer" :
				strerror(-ret));
	}
	close(fd);
	if (!ret) {
		log_info(BOARD_LOG, "migration received in %.0f ms", ms_since(&t0));
		/* for status: the VFs' plug and driver figures are in devices (driver_ms) */
		b->incoming_done = json_pack("{s:s,s:f,s:I,s:i}", "state", "done", "received_ms",
					     ms_since(&t0), "bytes", (json_int_t)in.bytes,
					     "plans", (int)in.plans);
		/* the guest negotiated STANDBY at the source: this host's failover VFs go in */
		board_standby_changed(b);
		/* and its NICs tell the network where it is now, once it runs */
		evloop__call(&b->vm.loop, &b->announce_call, board_announce_call, b);
	}
out:
	b->incoming = NULL;
	api__hold(b->api, false);
	return ret;

err_lwatch:
	evloop__del_fd(&b->vm.loop, &in.lwatch);
err_timer:
	close(tfd);
err_listen:
	migrate__unlisten(lfd, &u);
	log_err(BOARD_LOG, "--incoming %s: %s", b->opts->incoming, strerror(-ret));
	return ret;
}

/* --restore FILE: the vCPUs, then the whole VM from the stream, instead of a boot */
static int board_restore(struct board *b)
{
	struct timespec t0;
	char err[512];
	int fd, ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = board_make_vcpus(b);
	if (ret)
		return ret;
	fd = open(b->opts->restore, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err(BOARD_LOG, "--restore %s: %s", b->opts->restore, strerror(-ret));
		return ret;
	}
	ret = snapshot__load(&b->vm, fd, err, sizeof(err));
	close(fd);
	if (ret) {
		log_err(BOARD_LOG, "--restore %s: refused: %s", b->opts->restore, err);
		return ret;
	}
	log_info(BOARD_LOG, "restored from %s in %.0f ms", b->opts->restore, ms_since(&t0));
	board_standby_changed(b); /* this host's failover VFs, when the saved guest had STANDBY */
	/* once it runs, the queue interrupts the saved guest may have missed */
	evloop__call(&b->vm.loop, &b->announce_call, board_moved_call, b);
	return 0;
}

/* every device, last made first */
static void board_destroy_devices(struct board *b)
{
	struct vmm_device *d;

	while ((d = device__last(&b->vm.devices))) {
		device__remove(&b->vm.devices, d);
		d->ops->destroy(d);
	}
	b->hotplug = NULL; /* it was one of them */
	vfio_iommu__destroy(b->vfio_iommu);
	b->vfio_iommu = NULL;
}

/*
 * The 64-bit PCI window within the guest's physical address width: a BAR
 * placed above 2^phys_bits would be an address the guest cannot reach.
 */
static int board_place_mmio64(struct board *b)
{
	uint64_t ram_end = 0, base, size;
	unsigned int i;
	int bits, ret;

	for (i = 0; i < b->vm.mem.nr_regions; i++) {
		const struct mem_region *r = &b->vm.mem.regions[i];

		if (r->gpa + r->size > ram_end)
			ram_end = r->gpa + r->size;
	}
	bits = x86_cpu__phys_bits(b->vm.kvm_fd);
	if (bits < 0) {
		log_err(BOARD_LOG, "cannot read the guest's physical address width: %s", strerror(-bits));
		return bits;
	}
	ret = pci__mmio64_place(ram_end, (unsigned int)bits, &base, &size);
	if (ret == -ENOSPC) {
		log_warn(BOARD_LOG, "%d-bit guest physical addresses leave no room above RAM for a "
			 "64-bit PCI window: large BARs must fit below 4 GiB", bits);
		base = size = 0;
	} else if (ret) {
		log_err(BOARD_LOG, "%d-bit guest physical addresses: %s", bits, strerror(-ret));
		return ret;
	}
	if (base != PCI_MMIO64_BASE || size != PCI_MMIO64_SIZE)
		log_info(BOARD_LOG, "%d-bit guest physical addresses: 64-bit PCI window %#llx-%#llx", bits,
			 (unsigned long long)base, (unsigned long long)(base + size));
	return pci__bus_set_mmio64(&b->vm.pci, base, size);
}

/*
 * The ids the command line gives (net0, net1, ... and vf0, vf1, ... in its
 * order, or id=NAME): each used once, and none a fixed device's. Checked
 * before anything is created.
 */
static int board_check_ids(const struct options *o)
{
	static const char *const fixed[] = { "ttyS0", "i8042", "rtc", "acpi-pm", "pcihp", "blk0",
					     "testdev" };
	char ids[OPTIONS_MAX_NICS + OPTIONS_MAX_VFS][DEVICE_ID_LEN], err[256];
	unsigned int nr = 0, i, j;

	for (i = 0; i < o->nr_net + o->nr_vf; i++) {
		char *id = ids[nr];

		if (i < o->nr_net) {
			struct virtio_net_config cfg;

			if (virtio_net__parse_opts(o->net[i], &cfg, err, sizeof(err))) {
				log_err(BOARD_LOG, "--net '%s': %s", o->net[i], err);
				return -EINVAL;
			}
			if (cfg.id[0])
				snprintf(id, DEVICE_ID_LEN, "%s", cfg.id);
			else
				snprintf(id, DEVICE_ID_LEN, "net%u", i);
		} else if (o->vf_spec[i - o->nr_net].id[0]) {
			snprintf(id, DEVICE_ID_LEN, "%s", o->vf_spec[i - o->nr_net].id);
		} else {
			snprintf(id, DEVICE_ID_LEN, "vf%u", i - o->nr_net);
		}
		for (j = 0; j < ARRAY_SIZE(fixed); j++) {
			if (!strcmp(fixed[j], id)) {
				log_err(BOARD_LOG, "device id '%s' is used twice (a fixed device has it)", id);
				return -EINVAL;
			}
		}
		for (j = 0; j < nr; j++) {
			if (!strcmp(ids[j], id)) {
				log_err(BOARD_LOG, "device id '%s' is used twice", id);
				return -EINVAL;
			}
		}
		nr++;
	}
	return 0;
}

/*
 * The migration channel's credentials (--migration-psk, --migration-x509),
 * and the rule that a destination listening on the network has them: an
 * --incoming address that is not loopback (or a unix socket) without TLS is
 * refused unless --insecure-migration says so.
 */
static int board_tls_setup(struct board *b, const struct options *o)
{
	char err[512];
	int ret;

	if (o->migration_psk || o->migration_x509) {
		ret = migtls__creds_load(&b->tls, o->migration_psk, o->migration_x509, err,
					 sizeof(err));
		if (ret) {
			log_err(BOARD_LOG, "%s", err);
			return ret;
		}
		log_info(BOARD_LOG, "migration channel: %s", migtls__creds_describe(b->tls));
	}
	if (o->incoming && !b->tls && !o->insecure_migration) {
		struct mig_uri u;

		if (!mig__parse_uri(o->incoming, &u, err, sizeof(err)) && !migrate__is_local(&u)) {
			log_err(BOARD_LOG, "--incoming %s: not a loopback address, and no TLS: give "
				"--migration-psk FILE or --migration-x509 DIR (on both hosts), or "
				"--insecure-migration to accept a plain TCP migration from whoever "
				"reaches this address", o->incoming);
			return -EPERM;
		}
	}
	return 0;
}

int board__build(struct board *b, const struct options *o)
{
	unsigned int i;
	int ret;

	memset(b, 0, sizeof(*b));
	b->opts = o;
	b->traffic_tfd = -1;
	b->inspect_efd = -1;
	b->console_in = STDIN_FILENO;
	b->console_out = STDOUT_FILENO;
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	ret = board_check_ids(o);
	if (ret)
		return ret;
	ret = board_tls_setup(b, o);
	if (ret)
		goto err_tls;
	ret = kvm__vm_create(&b->vm, o->mem, o->hugepages, o->cpus);
	if (ret)
		goto err_tls;
	ret = board_place_mmio64(b);
	if (!ret) {
		ret = mig__section_register(&b->vm.mig, "machine", 0, BOARD_MACHINE_VERSION, 1,
					    &board_machine_ops, b);
		if (ret)
			log_err(BOARD_LOG, "cannot register the machine section: %s", strerror(-ret));
	}
	if (ret)
		goto err_vm;
	for (i = 0; i < ARRAY_SIZE(board_devices); i++) {
		ret = board_devices[i].add(b);
		if (ret) {
			log_err(BOARD_LOG, "cannot create %s: %s", board_devices[i].name,
				strerror(-ret));
			goto err_devices;
		}
	}
	ret = board_inspect_setup(b);
	if (ret)
		goto err_devices;
	ret = o->incoming ? board_incoming(b) : o->restore ? board_restore(b) : board_load(b);
	if (ret)
		goto err_inspect;
	return 0;

err_inspect:
	board_inspect_end(b);
err_devices:
	board_traffic_end(b);
	board_del_api(b);
	board_destroy_devices(b);
err_vm:
	kvm__vm_destroy(&b->vm);
err_tls:
	migtls__creds_free(b->tls);
	b->tls = NULL;
	return ret;
}

void board__destroy(struct board *b)
{
	json_decref(b->incoming_done);
	b->incoming_done = NULL;
	kvm__vcpus_stop(&b->vm);
	board_op_abort(b);
	board_traffic_end(b);
	board_inspect_end(b);
	board_del_api(b);
	board_destroy_devices(b);
	kvm__vm_destroy(&b->vm);
	migtls__creds_free(b->tls);
	b->tls = NULL;
}

static int board_stats_fn(struct vmm_device *d, void *opaque)
{
	if (d->ops->log_stats)
		d->ops->log_stats(d);
	return 0;
}

void board__print_stats(struct board *b)
{
	unsigned int i;

	for (i = 0; b->vm.vcpus && i < b->vm.nr_vcpus; i++) {
		struct vcpu_stats *s = &b->vm.vcpus[i].stats;

		log_info("stats", "vcpu%u exits: io %lu, mmio %lu, unhandled %lu, other %lu", i,
			 atomic_load(&s->exits_io), atomic_load(&s->exits_mmio),
			 atomic_load(&s->exits_unhandled), atomic_load(&s->exits_other));
	}
	if (b->vm.nr_czones || atomic_load(&b->vm.coalesced_writes))
		log_info("stats", "port writes coalesced (no exit): %lu%s", atomic_load(&b->vm.coalesced_writes),
			 atomic_load(&b->vm.coalesced_bad) ? " (malformed entries skipped)" : "");
	if (device__for_each(&b->vm.devices, board_stats_fn, NULL))
		log_warn("stats", "cannot list the devices");
}
