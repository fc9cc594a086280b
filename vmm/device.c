// SPDX-License-Identifier: MIT
#include "vmm/device.h"
#include "vmm/pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void device__init(struct vmm_device *d, const char *id, const char *kind, enum device_bus bus,
		  const struct vmm_device_ops *ops)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id ? id : "");
	d->kind = kind;
	d->bus = bus;
	d->ops = ops;
}

void device__list_init(struct device_list *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
}

void device__list_destroy(struct device_list *l)
{
	pthread_mutex_destroy(&l->lock);
}

static struct vmm_device *device_find_locked(struct device_list *l, const char *id)
{
	struct vmm_device *d;

	for (d = l->first; d; d = d->next)
		if (!strcmp(d->id, id))
			return d;
	return NULL;
}

struct vmm_device *device__find(struct device_list *l, const char *id)
{
	struct vmm_device *d;

	pthread_mutex_lock(&l->lock);
	d = device_find_locked(l, id);
	pthread_mutex_unlock(&l->lock);
	return d;
}

struct vmm_device *device__last(struct device_list *l)
{
	struct vmm_device *d;

	pthread_mutex_lock(&l->lock);
	d = l->last;
	pthread_mutex_unlock(&l->lock);
	return d;
}

int device__for_each(struct device_list *l, int (*fn)(struct vmm_device *d, void *opaque),
		     void *opaque)
{
	struct vmm_device *d;
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	for (d = l->first; d && !ret; d = d->next)
		ret = fn(d, opaque);
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int device__add(struct device_list *l, struct vmm_device *d)
{
	if (!d->id[0] || d->listed)
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	if (device_find_locked(l, d->id)) {
		pthread_mutex_unlock(&l->lock);
		return -EEXIST;
	}
	d->prev = l->last;
	d->next = NULL;
	if (l->last)
		l->last->next = d;
	else
		l->first = d;
	l->last = d;
	l->nr++;
	d->listed = true;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void device__remove(struct device_list *l, struct vmm_device *d)
{
	pthread_mutex_lock(&l->lock);
	if (!d->listed) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	if (d->prev)
		d->prev->next = d->next;
	else
		l->first = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		l->last = d->prev;
	d->prev = d->next = NULL;
	d->listed = false;
	l->nr--;
	pthread_mutex_unlock(&l->lock);
}

/* the device's devfn under the bus lock (a worker thread may be unplugging it), or -1 */
static int device_devfn(const struct vmm_device *d)
{
	struct pci_bus *pb;
	int devfn;

	if (!d->pci)
		return -1;
	pb = d->pci->bus;
	if (!pb)
		return -1; /* never registered */
	pthread_mutex_lock(&pb->lock);
	devfn = d->pci->devfn;
	pthread_mutex_unlock(&pb->lock);
	return devfn;
}

int device__pci_slot(struct device_list *l, const char *id)
{
	struct vmm_device *d = device__find(l, id);
	int devfn;

	if (!d)
		return -ENODEV;
	if (d->bus != DEVICE_BUS_PCI)
		return -ENOTSUP;
	devfn = device_devfn(d);
	return devfn < 0 ? -ENOENT : devfn >> 3;
}

json_t *device__describe(struct vmm_device *d)
{
	char addr[32];
	json_t *o;
	int devfn;

	if (d->bus == DEVICE_BUS_PCI) {
		devfn = device_devfn(d);
		if (devfn >= 0)
			snprintf(addr, sizeof(addr), "00:%02x.%x", (unsigned int)devfn >> 3,
				 (unsigned int)devfn & 7);
		else
			snprintf(addr, sizeof(addr), "-");
	} else {
		snprintf(addr, sizeof(addr), "%s", d->where);
	}
	o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "id", d->id, "kind", d->kind, "bus",
		      d->bus == DEVICE_BUS_PCI ? "pci" : "isa", "address", addr, "removable",
		      d->removable, "detail", "");
	if (o && d->ops && d->ops->describe)
		d->ops->describe(d, o);
	return o;
}

void device__next_id(struct device_list *l, const char *prefix, char *buf, size_t len)
{
	unsigned int n;

	for (n = 0;; n++) {
		snprintf(buf, len, "%s%u", prefix, n);
		if (!device__find(l, buf))
			return;
	}
}

int device__register_state(struct vmm_device *d, struct mig_registry *r, const char *name,
			   uint32_t instance, uint32_t version, uint32_t min_version,
			   const struct mig_section_ops *ops, void *opaque)
{
	int ret;

	/* several devices of one kind (two UARTs): the next free instance, in creation order */
	do {
		ret = mig__section_register(r, name, instance, version, min_version, ops, opaque);
	} while (ret == -EEXIST && ++instance < DEVICE_MAX_INSTANCES);
	if (ret)
		return ret == -EEXIST ? -ENOSPC : ret;
	d->state_section = name;
	d->state_instance = instance;
	return 0;
}

void device__unregister_state(struct vmm_device *d, struct mig_registry *r)
{
	if (!d->state_section)
		return;
	(void)mig__section_unregister(r, d->state_section, d->state_instance);
	d->state_section = NULL;
}
