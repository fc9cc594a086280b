// SPDX-License-Identifier: MIT
#include "devices/sriov/kmod.h"

#include <errno.h>
#include <libkmod.h>
#include <string.h>
#include <sys/utsname.h>

#include "devices/pcisys.h"

int sriov__load_module(const char *name, char *msg, size_t msglen)
{
	struct kmod_list *list = NULL, *it;
	struct kmod_ctx *ctx;
	struct utsname u;
	int ret, found = 0;

	ctx = kmod_new(NULL, NULL);
	if (!ctx) {
		pcisys__msg_set(msg, msglen, "cannot load %s: libkmod cannot read the module "
			       "index of this kernel", name);
		return -ENOMEM;
	}
	ret = kmod_module_new_from_lookup(ctx, name, &list);
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
	kmod_list_foreach(it, list) {
		struct kmod_module *mod = kmod_module_get_module(it);

		found++;
		ret = kmod_module_probe_insert_module(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL,
						      NULL, NULL, NULL);
		if (ret == KMOD_PROBE_APPLY_BLACKLIST) {
			pcisys__msg_set(msg, msglen, "module %s is blacklisted (see "
				       "/etc/modprobe.d)", kmod_module_get_name(mod));
			ret = -EACCES;
		} else if (ret < 0) {
			pcisys__msg_set(msg, msglen, "loading module %s failed: %s%s",
				       kmod_module_get_name(mod), strerror(-ret),
				       ret == -EPERM ? " (run as root)" : " (see `dmesg`)");
		}
		kmod_module_unref(mod);
		if (ret)
			break;
	}
	kmod_module_unref_list(list);
err_ctx:
	kmod_unref(ctx);
	return ret;
}
