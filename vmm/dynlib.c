// SPDX-License-Identifier: MIT
/* Libraries opened when first needed: see dynlib.h. */
#include "vmm/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

int dynlib__open(const char *soname, const char *package, const struct dynlib_sym *syms,
		 size_t n, void **handle, char *why, size_t whylen)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	size_t i;

	*handle = NULL;
	if (!h) {
		snprintf(why, whylen, "cannot open %s (install %s): %s", soname, package, dlerror());
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		*syms[i].fn = dlsym(h, syms[i].name);
		if (!*syms[i].fn) {
			snprintf(why, whylen, "%s has no %s (another version than %s's?)", soname,
				 syms[i].name, package);
			while (i--)
				*syms[i].fn = NULL;
			dlclose(h);
			return -ENOENT;
		}
	}
	*handle = h;
	return 0;
}

void dynlib__close(void *handle)
{
	if (handle)
		dlclose(handle);
}
