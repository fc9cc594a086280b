// SPDX-License-Identifier: MIT
/*
 * The composition root: the only place (with main.c) that knows the concrete
 * devices. The table below is the machine; its order is the creation order
 * (and the reverse is the destruction order).
 */
#include "vmm/board.h"
#include "vmm/api.h"
#include "config.h"
#include "vmm/image.h"
#include "vmm/log.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/platform.h"

#include "devices/hotplug.h"
#include "devices/i8042.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/testdev.h"
#include "devices/vfio/iommu.h"
#include "devices/vfio/pci.h"
#include "virtio/blk.h"
#include "virtio/net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOARD_LOG "board"

static int board_add_serial(struct board *b)
{
	return serial__create(&b->vm, "ttyS0", X86_COM1_BASE, X86_COM1_IRQ, b->console_in,
			      b->console_out, &b->serial);
}

static void board_del_serial(struct board *b)
{
	if (b->serial)
		serial__destroy(b->serial);
	b->serial = NULL;
}

static int board_add_i8042(struct board *b) { return i8042__create(&b->vm, &b->i8042); }
static void board_del_i8042(struct board *b)
{
	if (b->i8042)
		i8042__destroy(b->i8042);
	b->i8042 = NULL;
}

static int board_add_rtc(struct board *b) { return rtc__create(&b->vm, b->opts->mem, &b->rtc); }
static void board_del_rtc(struct board *b)
{
	if (b->rtc)
		rtc__destroy(b->rtc);
	b->rtc = NULL;
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

	return pm__create(&b->vm, &cfg, &b->pm);
}

static void board_del_pm(struct board *b)
{
	if (b->pm)
		pm__destroy(b->pm);
	b->pm = NULL;
}

/* --- ACPI PCI hot-plug controller (devices/hotplug.h) ------------------- */
/*
 * Driven from the control socket, so only made with --api: without it the
 * DSDT and FADT stay exactly as they were. Not wired to device removal yet.
 */

_Static_assert(HOTPLUG_REG_LEN == X86_ACPI_HOTPLUG_LEN, "DSDT PCST region == hotplug block");
_Static_assert(HOTPLUG_GPE0_LEN == X86_ACPI_GPE0_LEN, "FADT GPE0_BLK_LEN == hotplug GPE0");

static int board_add_hotplug(struct board *b)
{
	static const struct hotplug_config cfg = {
		.port = X86_HOTPLUG_PORT,
		.gpe0_port = X86_GPE0_PORT,
		.sci_irq = X86_SCI_IRQ,
	};

	if (!b->opts->api)
		return 0;
	return hotplug__create(&b->vm, &cfg, &b->hotplug);
}

static void board_del_hotplug(struct board *b)
{
	hotplug__destroy(b->hotplug);
	b->hotplug = NULL;
}
/* --- end of the hot-plug controller --------------------------------------- */

static int board_add_testdev(struct board *b)
{
	if (!b->opts->testdev)
		return 0;
	return testdev__create(&b->vm, STDOUT_FILENO, &b->testdev);
}

static void board_del_testdev(struct board *b)
{
	if (b->testdev)
		testdev__destroy(b->testdev);
	b->testdev = NULL;
}

static int board_add_blk(struct board *b)
{
	if (!b->opts->image)
		return 0;
	return virtio_blk__create(&b->vm, b->opts->image, b->opts->readonly, "virtio-blk0", &b->blk);
}

static void board_del_blk(struct board *b)
{
	if (b->blk)
		virtio_blk__destroy(b->blk);
	b->blk = NULL;
}

/*
 * The devices' ids (the control socket's names for them): net0, net1, ...
 * and vf0, vf1, ... in command-line order, or the id=NAME given; each used
 * once, and none of the fixed devices' names.
 */
static int board_assign_ids(struct board *b)
{
	static const char *const fixed[] = { "ttyS0", "i8042", "rtc", "acpi-pm", "pcihp", "blk0" };
	const char *seen[ARRAY_SIZE(fixed) + OPTIONS_MAX_NICS + OPTIONS_MAX_VFS];
	const struct options *o = b->opts;
	unsigned int nr = 0, i, j;
	char err[256];

	for (i = 0; i < ARRAY_SIZE(fixed); i++)
		seen[nr++] = fixed[i];
	for (i = 0; i < o->nr_net + o->nr_vf; i++) {
		char *id = i < o->nr_net ? b->net_id[i] : b->vf_id[i - o->nr_net];

		if (i < o->nr_net) {
			struct virtio_net_config cfg;

			if (virtio_net__parse_opts(o->net[i], &cfg, err, sizeof(err))) {
				log_err(BOARD_LOG, "--net '%s': %s", o->net[i], err);
				return -EINVAL;
			}
			if (cfg.id[0])
				snprintf(id, OPTIONS_ID_LEN, "%s", cfg.id);
			else
				snprintf(id, OPTIONS_ID_LEN, "net%u", i);
		} else if (o->vf_id[i - o->nr_net][0]) {
			snprintf(id, OPTIONS_ID_LEN, "%s", o->vf_id[i - o->nr_net]);
		} else {
			snprintf(id, OPTIONS_ID_LEN, "vf%u", i - o->nr_net);
		}
		for (j = 0; j < nr; j++) {
			if (!strcmp(seen[j], id)) {
				log_err(BOARD_LOG, "device id '%s' is used twice%s", id,
					j < ARRAY_SIZE(fixed) ? " (a fixed device has it)" : "");
				return -EINVAL;
			}
		}
		seen[nr++] = id;
	}
	return 0;
}

static int board_add_nets(struct board *b)
{
	char err[256], name[32];
	unsigned int i;
	int ret;

	for (i = 0; i < b->opts->nr_net; i++) {
		struct virtio_net_config cfg;

		ret = virtio_net__parse_opts(b->opts->net[i], &cfg, err, sizeof(err));
		if (ret) {
			log_err(BOARD_LOG, "--net '%s': %s", b->opts->net[i], err);
			return ret;
		}
		if (!cfg.has_mac) {
			/* locally administered, stable per NIC index */
			static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

			memcpy(cfg.mac, base, 6);
			cfg.mac[5] = (uint8_t)(base[5] + i);
			cfg.has_mac = true;
		}
		snprintf(name, sizeof(name), "virtio-net%u", i);
		cfg.name = name;
		ret = virtio_net__create(&b->vm, &cfg, &b->net[i]);
		if (ret)
			return ret;
		b->nr_net++;
	}
	return 0;
}

static void board_del_nets(struct board *b)
{
	while (b->nr_net)
		virtio_net__destroy(b->net[--b->nr_net]);
}

static int board_add_vfs(struct board *b)
{
	char name[32];
	unsigned int i;
	int ret;

	for (i = 0; i < b->opts->nr_vf; i++) {
		struct vfio_pci_opts o = {
			.name = name,
			.allow_unsafe_interrupts = b->opts->vf_allow_unsafe_interrupts,
			.iommu = &b->vfio_iommu, /* created by the first VF */
		};

		snprintf(name, sizeof(name), "vfio%u", i);
		ret = vfio_pci__create(&b->vm, b->opts->vf[i], &o, &b->vf[i]);
		if (ret) {
			return ret; /* board__build undoes the VFs made so far */
		}
		b->nr_vf++;
	}
	return 0;
}

static void board_del_vfs(struct board *b)
{
	while (b->nr_vf)
		vfio_pci__destroy(b->vf[--b->nr_vf]);
	vfio_iommu__destroy(b->vfio_iommu);
	b->vfio_iommu = NULL;
}

/* --- the control socket's commands (docs/api.md) ------------------------- */

#define BOARD_PAUSE_TIMEOUT_MS 5000

static int board_cmd_status(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	*ret = json_pack("{s:s,s:i,s:s,s:i,s:I,s:I,s:b,s:f}",
			 "state", kvm__vcpus_paused(&b->vm) ? "paused" : "running",
			 "protocol", API_PROTOCOL_VERSION, "version", MINIVMM_VERSION,
			 "vcpus", (int)b->vm.nr_vcpus, "memory_bytes", (json_int_t)b->opts->mem,
			 "pid", (json_int_t)getpid(), "hugepages", b->opts->hugepages,
			 "uptime_s", (double)(now.tv_sec - b->started.tv_sec) +
				     (double)(now.tv_nsec - b->started.tv_nsec) / 1e9);
	return *ret ? 0 : -ENOMEM;
}

static json_t *board_pci_entry(struct board *b, const char *id, const char *kind,
			       const char *pci_name, const char *detail)
{
	const char *addr = "-";
	char buf[16];
	unsigned int i;

	pthread_mutex_lock(&b->vm.pci.lock);
	for (i = 0; i < PCI_MAX_DEVICES; i++) {
		const struct pci_dev *d = b->vm.pci.devs[i];

		if (d && d->devfn >= 0 && !strcmp(d->name, pci_name)) {
			snprintf(buf, sizeof(buf), "00:%02x.%x", (unsigned int)d->devfn >> 3,
				 (unsigned int)d->devfn & 7);
			addr = buf;
			break;
		}
	}
	pthread_mutex_unlock(&b->vm.pci.lock);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "kind", kind, "bus", "pci", "address",
			 addr, "detail", detail ? detail : "");
}

static int board_cmd_devices(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	struct board *b = opaque;
	const struct options *o = b->opts;
	json_t *list = json_array();
	char name[32], where[32];
	unsigned int i;

	snprintf(where, sizeof(where), "io %#x irq %d", X86_COM1_BASE, X86_COM1_IRQ);
	json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "ttyS0", "kind",
					      "serial", "bus", "isa", "address", where, "detail",
					      "the console"));
	json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "i8042", "kind",
					      "i8042", "bus", "isa", "address", "io 0x60", "detail",
					      "keyboard controller (reset line)"));
	json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "rtc", "kind", "rtc",
					      "bus", "isa", "address", "io 0x70", "detail", ""));
	json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "acpi-pm", "kind",
					      "acpi-pm", "bus", "isa", "address", "io 0x600",
					      "detail", "power button, S5, SCI"));
	if (b->hotplug) {
		snprintf(where, sizeof(where), "io %#x", X86_HOTPLUG_PORT);
		json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "pcihp",
						      "kind", "acpi-pci-hotplug", "bus", "isa",
						      "address", where, "detail",
						      "PCI slots 1-31 of bus 0, GPE 1"));
	}
	if (b->blk)
		json_array_append_new(list, board_pci_entry(b, "blk0", "virtio-blk", "virtio-blk0",
							    o->image));
	for (i = 0; i < b->nr_net; i++) {
		enum virtio_net_standby sb;
		unsigned int nego;
		json_t *e;

		snprintf(name, sizeof(name), "virtio-net%u", i);
		e = board_pci_entry(b, b->net_id[i], "virtio-net", name, o->net[i]);
		sb = virtio_net__standby(b->net[i], &nego);
		if (e && sb != VIRTIO_NET_STANDBY_OFF)
			json_object_set_new(e, "standby", json_pack("{s:s,s:i}", "state",
								    virtio_net__standby_name(sb),
								    "negotiations", (int)nego));
		json_array_append_new(list, e);
	}
	for (i = 0; i < b->nr_vf; i++) {
		snprintf(name, sizeof(name), "vfio%u", i);
		json_array_append_new(list, board_pci_entry(b, b->vf_id[i], "vfio-pci", name, o->vf[i]));
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

static const struct {
	const char *name, *help;
	api_cmd_fn fn;
} board_commands[] = {
	{ "status", "the VM's state (running or paused), vCPUs, memory, protocol version",
	  board_cmd_status },
	{ "devices", "the devices: id, kind, bus address, what backs them", board_cmd_devices },
	{ "pause", "park every vCPU outside KVM_RUN", board_cmd_pause },
	{ "resume", "let the vCPUs run again", board_cmd_resume },
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
			return ret; /* board_del_api undoes it */
	}
	return 0;
}

static void board_del_api(struct board *b)
{
	api__destroy(b->api);
	b->api = NULL;
}

/*
 * The machine, in creation order. add() may fail half-way (one NIC of
 * three): del() then undoes whatever its add() made, so every del() copes
 * with partial state.
 */
static const struct board_device {
	const char *name;
	int (*add)(struct board *b);
	void (*del)(struct board *b);
} board_devices[] = {
	{ "serial", board_add_serial, board_del_serial },
	{ "i8042", board_add_i8042, board_del_i8042 },
	{ "rtc", board_add_rtc, board_del_rtc },
	{ "acpi-pm", board_add_pm, board_del_pm },
	{ "acpi-hotplug", board_add_hotplug, board_del_hotplug },
	{ "testdev", board_add_testdev, board_del_testdev },
	{ "virtio-blk", board_add_blk, board_del_blk },
	{ "virtio-net", board_add_nets, board_del_nets },
	{ "vfio", board_add_vfs, board_del_vfs },
	{ "control socket", board_add_api, board_del_api },
};

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
		.mmio64_base = PCI_MMIO64_BASE,
		.mmio64_size = PCI_MMIO64_SIZE,
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
	struct x86_boot_info bi;
	uint64_t rsdp;
	unsigned int i;
	int ret;

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
	ret = x86_boot__load(&b->vm.mem, files.kernel, files.kernel_len, files.initrd,
			     files.initrd_len, o->cmdline ? o->cmdline : OPTIONS_DEFAULT_CMDLINE,
			     rsdp, &bi);
	if (ret) {
		log_err(BOARD_LOG, "cannot load kernel %s: %s",
			o->kernel ? o->kernel : files.kernel_path, strerror(-ret));
		goto out;
	}
	ret = kvm__vcpus_create(&b->vm);
	if (ret)
		goto out;
	for (i = 0; i < b->vm.nr_vcpus; i++) {
		ret = x86_cpu__setup(b->vm.kvm_fd, b->vm.vcpus[i].fd, i, b->vm.nr_vcpus);
		if (ret)
			goto out;
	}
	ret = x86_boot__setup_vcpu(b->vm.vcpus[0].fd, &b->vm.mem, &bi);
out:
	image__boot_files_free(&files);
	return ret;
}

int board__build(struct board *b, const struct options *o)
{
	unsigned int i;
	int ret;

	memset(b, 0, sizeof(*b));
	b->opts = o;
	b->console_in = STDIN_FILENO;
	b->console_out = STDOUT_FILENO;
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	ret = board_assign_ids(b);
	if (ret)
		return ret;
	ret = kvm__vm_create(&b->vm, o->mem, o->hugepages, o->cpus);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(board_devices); i++) {
		ret = board_devices[i].add(b);
		if (ret) {
			log_err(BOARD_LOG, "cannot create %s: %s", board_devices[i].name,
				strerror(-ret));
			/* an entry may have built part of its devices (several NICs, VFs) */
			i++;
			goto err_devices;
		}
	}
	ret = board_load(b);
	if (ret)
		goto err_devices;
	return 0;

err_devices:
	while (i--)
		board_devices[i].del(b);
	kvm__vm_destroy(&b->vm);
	return ret;
}

void board__destroy(struct board *b)
{
	unsigned int i = ARRAY_SIZE(board_devices);

	kvm__vcpus_stop(&b->vm);
	while (i--)
		board_devices[i].del(b);
	kvm__vm_destroy(&b->vm);
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
	for (i = 0; i < b->nr_net; i++)
		virtio_net__log_stats(b->net[i]);
	for (i = 0; i < b->nr_vf; i++)
		vfio_pci__log_stats(b->vf[i]);
}
