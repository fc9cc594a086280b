// SPDX-License-Identifier: MIT
/*
 * libkmod is opened at the first module load (dlopen), not linked: it pulls
 * in libcrypto, 1.4 MiB of resident memory in every VMM process, while only
 * the host side of SR-IOV (binding a VF to vfio-pci) ever loads a module.
 * The build still checks libkmod's headers through pkg-config.
 */
#include "devices/sriov/kmod.h"

#include <dlfcn.h>
#include <errno.h>
#include <libkmod.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "devices/pcisys.h"

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
	void *h = dlopen(KMOD_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *miss = NULL;

	if (!h) {
		snprintf(kmod.why, sizeof(kmod.why), "cannot open %s (install libkmod2): %s",
			 KMOD_SONAME, dlerror());
		return;
	}
#define KMOD_SYM(field, sym)                                  \
	do {                                                  \
		*(void **)&kmod.field = dlsym(h, #sym);        \
		if (!kmod.field && !miss)                     \
			miss = #sym;                          \
	} while (0)
	KMOD_SYM(new_ctx, kmod_new);
	KMOD_SYM(unref, kmod_unref);
	KMOD_SYM(new_from_lookup, kmod_module_new_from_lookup);
	KMOD_SYM(list_next, kmod_list_next);
	KMOD_SYM(get_module, kmod_module_get_module);
	KMOD_SYM(probe_insert, kmod_module_probe_insert_module);
	KMOD_SYM(get_name, kmod_module_get_name);
	KMOD_SYM(module_unref, kmod_module_unref);
	KMOD_SYM(unref_list, kmod_module_unref_list);
#undef KMOD_SYM
	if (miss) {
		snprintf(kmod.why, sizeof(kmod.why), "%s has no %s", KMOD_SONAME, miss);
		dlclose(h);
		return;
	}
	kmod.ok = true; /* h stays open for the life of the process */
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
