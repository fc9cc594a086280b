// SPDX-License-Identifier: MIT
/*
 * libkmod is opened at the first module load (dlopen), not linked: it pulls
 * in libcrypto, 1.4 MiB of resident memory in every VMM process, while only
 * the host side of SR-IOV (binding a VF to vfio-pci) ever loads a module.
 * The build still checks libkmod's headers through pkg-config.
 */
#include "devices/sriov/kmod.h"

#include <errno.h>
#include <libkmod.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "devices/pcisys.h"
#include "vmm/dynlib.h"

#define KMOD_SONAME "libkmod.so.2"

static struct {
	struct kmod_ctx *(*new_ctx)(const char *, const char *const *);
	struct kmod_ctx *(*unref)(struct kmod_ctx *);
	int (*new_from_lookup)(struct kmod_ctx *, const char *, struct kmod_list **);
	struct kmod_list *(*list_next)(const struct kmod_list *, const struct kmod_list *);
	struct kmod_module *(*get_module)(const struct kmod_list *);
	int (*probe_insert)(struct kmod_module *, unsigned int, const char *,
			    int (*)(struct kmod_module *, void *), const void *,
			    void (*)(struct kmod_module *, bool, const char *));
	const char *(*get_name)(const struct kmod_module *);
	struct kmod_module *(*module_unref)(struct kmod_module *);
	int (*unref_list)(struct kmod_list *);
	char why[256];
	bool ok;
} kmod;

static pthread_once_t kmod_once = PTHREAD_ONCE_INIT;

static void kmod_open(void)
{
	static const struct dynlib_sym syms[] = {
		{ "kmod_new", (void **)&kmod.new_ctx },
		{ "kmod_unref", (void **)&kmod.unref },
		{ "kmod_module_new_from_lookup", (void **)&kmod.new_from_lookup },
		{ "kmod_list_next", (void **)&kmod.list_next },
		{ "kmod_module_get_module", (void **)&kmod.get_module },
		{ "kmod_module_probe_insert_module", (void **)&kmod.probe_insert },
		{ "kmod_module_get_name", (void **)&kmod.get_name },
		{ "kmod_module_unref", (void **)&kmod.module_unref },
		{ "kmod_module_unref_list", (void **)&kmod.unref_list },
	};
	void *h;

	/* h stays open for the life of the process */
	kmod.ok = !dynlib__open(KMOD_SONAME, "libkmod2", syms, ARRAY_SIZE(syms), &h, kmod.why,
				sizeof(kmod.why));
}

int sriov__load_module(const char *name, char *msg, size_t msglen)
{
	struct kmod_list *list = NULL, *it;
	struct kmod_ctx *ctx;
	struct utsname u;
	int ret;

	pthread_once(&kmod_once, kmod_open);
	if (!kmod.ok) {
		pcisys__msg_set(msg, msglen, "cannot load %s: %s", name, kmod.why);
		return -ENOSYS;
	}
	ctx = kmod.new_ctx(NULL, NULL);
	if (!ctx) {
		pcisys__msg_set(msg, msglen, "cannot load %s: libkmod cannot read the module "
			       "index of this kernel", name);
		return -ENOMEM;
	}
	ret = kmod.new_from_lookup(ctx, name, &list);
	if (ret < 0) {
		pcisys__msg_set(msg, msglen, "cannot look up module %s: %s", name, strerror(-ret));
		goto err_ctx;
	}
	if (!list) {
		uname(&u);
		pcisys__msg_set(msg, msglen, "no module %s for kernel %s (is the kernel's "
			       "modules package installed?)", name, u.release);
		ret = -ENOENT;
		goto err_ctx;
	}
	for (it = list; it; it = kmod.list_next(list, it)) {
		struct kmod_module *mod = kmod.get_module(it);

		ret = kmod.probe_insert(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
		if (ret == KMOD_PROBE_APPLY_BLACKLIST) {
			pcisys__msg_set(msg, msglen, "module %s is blacklisted (see "
				       "/etc/modprobe.d)", kmod.get_name(mod));
			ret = -EACCES;
		} else if (ret < 0) {
			pcisys__msg_set(msg, msglen, "loading module %s failed: %s%s",
				       kmod.get_name(mod), strerror(-ret),
				       ret == -EPERM ? " (run as root)" : " (see `dmesg`)");
		}
		kmod.module_unref(mod);
		if (ret)
			break;
	}
	kmod.unref_list(list);
err_ctx:
	kmod.unref(ctx);
	return ret;
}
