// SPDX-License-Identifier: MIT
#include "vmm/bus.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler_fn fn;
	void *opaque;
	const char *owner;
	unsigned int refs; /* running handlers; guarded by bus->wait_lock */
};

int bus__init(struct bus *b, const char *name)
{
	int ret;

	memset(b, 0, sizeof(*b));
	b->name = name;
	ret = -pthread_rwlock_init(&b->lock, NULL);
	if (ret)
		return ret;
	ret = -pthread_mutex_init(&b->wait_lock, NULL);
	if (ret)
		goto err_rwlock;
	ret = -pthread_cond_init(&b->wait_cond, NULL);
	if (ret)
		goto err_mutex;
	return 0;

err_mutex:
	pthread_mutex_destroy(&b->wait_lock);
err_rwlock:
	pthread_rwlock_destroy(&b->lock);
	return ret;
}

void bus__destroy(struct bus *b)
{
	unsigned int i;

	for (i = 0; i < b->nr; i++)
		free(b->ranges[i]);
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
	pthread_cond_destroy(&b->wait_cond);
	pthread_mutex_destroy(&b->wait_lock);
	pthread_rwlock_destroy(&b->lock);
}

/* index of the first range whose base is > addr */
static unsigned int bus_upper_bound(const struct bus *b, uint64_t addr)
{
	unsigned int lo = 0, hi = b->nr;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (b->ranges[mid]->base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
	unsigned int i = bus_upper_bound(b, addr);
	struct bus_range *r;
	uint64_t end;

	if (!i)
		return NULL;
	r = b->ranges[i - 1];
	if (add_overflows(addr, len, &end))
		return NULL;
	if (addr >= r->base && end <= r->base + r->len)
		return r;
	return NULL;
}

int bus__register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn, void *opaque,
		  const char *owner)
{
	struct bus_range *r;
	uint64_t end;
	unsigned int i;
	int ret = 0;

	if (!len || !fn || add_overflows(base, len, &end))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct bus_range){ .base = base, .len = len, .fn = fn, .opaque = opaque,
				 .owner = owner ? owner : "?" };

	pthread_rwlock_wrlock(&b->lock);
	i = bus_upper_bound(b, base);
	if ((i > 0 && ranges_overlap(b->ranges[i - 1]->base, b->ranges[i - 1]->len, base, len)) ||
	    (i < b->nr && ranges_overlap(b->ranges[i]->base, b->ranges[i]->len, base, len))) {
		const struct bus_range *o = (i > 0 && ranges_overlap(b->ranges[i - 1]->base,
								     b->ranges[i - 1]->len, base, len))
						    ? b->ranges[i - 1] : b->ranges[i];

		log_debug(b->name, "%s: [%#llx, +%#llx) overlaps %s at [%#llx, +%#llx)", r->owner,
			  (unsigned long long)base, (unsigned long long)len, o->owner,
			  (unsigned long long)o->base, (unsigned long long)o->len);
		ret = -EEXIST;
		goto out;
	}
	if (b->nr == b->cap) {
		unsigned int ncap = b->cap ? b->cap * 2 : 16;
		struct bus_range **n = realloc(b->ranges, ncap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		b->ranges = n;
		b->cap = ncap;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nr - i) * sizeof(*b->ranges));
	b->ranges[i] = r;
	b->nr++;
	r = NULL;
out:
	pthread_rwlock_unlock(&b->lock);
	free(r);
	return ret;
}

int bus__deregister(struct bus *b, uint64_t base)
{
	struct bus_range *r = NULL;
	unsigned int i;

	pthread_rwlock_wrlock(&b->lock);
	i = bus_upper_bound(b, base);
	if (i > 0 && b->ranges[i - 1]->base == base) {
		r = b->ranges[i - 1];
		memmove(&b->ranges[i - 1], &b->ranges[i], (b->nr - i) * sizeof(*b->ranges));
		b->nr--;
	}
	pthread_rwlock_unlock(&b->lock);
	if (!r)
		return -ENOENT;

	/*
	 * The range is unreachable now, but a vCPU may still be inside its
	 * handler: wait for it, so the caller can free the handler's data.
	 */
	pthread_mutex_lock(&b->wait_lock);
	while (r->refs)
		pthread_cond_wait(&b->wait_cond, &b->wait_lock);
	pthread_mutex_unlock(&b->wait_lock);
	free(r);
	return 0;
}

int bus__dispatch(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_range *r;

	if (!is_write)
		memset(data, 0xff, len);
	pthread_rwlock_rdlock(&b->lock);
	r = bus_find(b, addr, len);
	if (r) {
		pthread_mutex_lock(&b->wait_lock);
		r->refs++;
		pthread_mutex_unlock(&b->wait_lock);
	}
	pthread_rwlock_unlock(&b->lock);
	if (!r)
		return -ENOENT;

	r->fn(r->opaque, addr - r->base, data, len, is_write);

	pthread_mutex_lock(&b->wait_lock);
	if (--r->refs == 0)
		pthread_cond_broadcast(&b->wait_cond);
	pthread_mutex_unlock(&b->wait_lock);
	return 0;
}

unsigned int bus__count(struct bus *b)
{
	unsigned int n;

	pthread_rwlock_rdlock(&b->lock);
	n = b->nr;
	pthread_rwlock_unlock(&b->lock);
	return n;
}
