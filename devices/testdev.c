// SPDX-License-Identifier: MIT
/* Test port for tiny test guests (see testdev.h). */
#include "devices/testdev.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/section.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"

#define TESTDEV_PREFIX "testdev"

/* writes one report line without ever blocking; drops it when out_fd is not writable */
static void testdev_flush(struct testdev *t)
{
	char buf[TESTDEV_LINE_MAX + 16];
	struct pollfd pfd = { .fd = t->out_fd, .events = POLLOUT };
	size_t n, done = 0;
	ssize_t w;

	n = (size_t)snprintf(buf, sizeof(buf), "testdev: %.*s\n", (int)t->len, t->line);
	t->len = 0;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (t->out_fd < 0)
		return;
	while (done < n) {
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
			break;
		w = write(t->out_fd, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (done == n) {
		t->lines++;
		return;
	}
	t->lines_dropped++;
	log_err_rl(&t->rl, TESTDEV_PREFIX, "output not writable, report line dropped (%llu so far)",
		   (unsigned long long)t->lines_dropped);
}

static void testdev_putc(struct testdev *t, uint8_t c)
{
	t->line_from_stream = false;
	if (c == '\n') {
		testdev_flush(t);
		return;
	}
	if (c == '\r')
		return;
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		c = '?';
	t->line[t->len++] = (char)c;
	if (t->len == TESTDEV_LINE_MAX)
		testdev_flush(t);
}

static void testdev_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct testdev *t = opaque;
	uint32_t code;

	pthread_mutex_lock(&t->lock);
	if (is_write && offset == TESTDEV_PUTC_PORT - TESTDEV_BASE && len == 1) {
		testdev_putc(t, data[0]);
	} else if (is_write && offset == TESTDEV_EXIT_PORT - TESTDEV_BASE && len == 4) {
		code = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
		       (uint32_t)data[3] << 24;
		if (t->len)
			testdev_flush(t);
		log_info(TESTDEV_PREFIX, "guest exit code %d", (int)code);
		kvm__request_exit(t->vm, VM_EXIT_TEST, (int)code);
	} else if (!is_write && offset == TESTDEV_MAGIC_PORT - TESTDEV_BASE && len == 4) {
		data[0] = TESTDEV_MAGIC & 0xff;
		data[1] = (TESTDEV_MAGIC >> 8) & 0xff;
		data[2] = (TESTDEV_MAGIC >> 16) & 0xff;
		data[3] = TESTDEV_MAGIC >> 24;
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	pthread_mutex_unlock(&t->lock);
}

/*
 * --- state: migration section "testdev" (docs/migration.md) -----------------
 * The report line the guest has begun and not ended: a guest paused between
 * two of its characters finishes the line on the destination, which must
 * print it whole (kvm_migrate in the lab's L1 once lost a step's line so:
 * "counter ste" on the source, "p=28 x=..." on the destination).
 */
#define TESTDEV_STATE_VERSION 1

static int testdev_save(void *opaque, void *fdt)
{
	struct testdev *t = opaque;
	char line[TESTDEV_LINE_MAX];
	unsigned int len;
	int ret;

	pthread_mutex_lock(&t->lock);
	len = t->len;
	memcpy(line, t->line, len);
	pthread_mutex_unlock(&t->lock);
	ret = mig__put_u32(fdt, "line_len", len);
	if (!ret)
		ret = mig__put_bytes(fdt, "line", line, len);
	return ret;
}

static int testdev_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct testdev *t = opaque;
	char line[TESTDEV_LINE_MAX];
	uint32_t len;
	unsigned int i;
	int ret;

	(void)version;
	/* a full line is printed as it fills: at most one byte less is pending */
	ret = mig__get_u32_max(fdt, node, "line_len", TESTDEV_LINE_MAX - 1, &len);
	if (!ret)
		ret = mig__get_bytes(fdt, node, "line", line, len);
	if (ret)
		return ret;
	for (i = 0; i < len; i++)
		if (((uint8_t)line[i] < 0x20 && line[i] != '\t') || (uint8_t)line[i] == 0x7f)
			return -EINVAL; /* testdev_putc never stores these */
	pthread_mutex_lock(&t->lock);
	memcpy(t->line, line, len);
	t->len = len;
	t->line_from_stream = len > 0;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static const struct mig_section_ops testdev_state_ops = {
	.save = testdev_save,
	.load = testdev_load,
};

static void testdev_dev_destroy(struct vmm_device *d)
{
	testdev__destroy(container_of(d, struct testdev, dev));
}

/* the guest runs here now (after an incoming migration or a restore): the begun line is ours */
static void testdev_dev_moved(struct vmm_device *d)
{
	struct testdev *t = container_of(d, struct testdev, dev);

	pthread_mutex_lock(&t->lock);
	t->line_from_stream = false;
	pthread_mutex_unlock(&t->lock);
}

static const struct vmm_device_ops testdev_dev_ops = {
	.destroy = testdev_dev_destroy,
	.moved = testdev_dev_moved,
};

int testdev__create(struct vm *vm, int out_fd, struct testdev **out)
{
	struct testdev *t;
	int ret;

	if (!vm || !out)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->vm = vm;
	t->out_fd = out_fd;
	t->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	ret = -pthread_mutex_init(&t->lock, NULL);
	if (ret)
		goto err_free;
	ret = bus__register(&vm->pio, TESTDEV_BASE, TESTDEV_RANGE_LEN, testdev_io, t,
			    TESTDEV_PREFIX);
	if (ret) {
		log_err(TESTDEV_PREFIX, "cannot register ports: %s", strerror(-ret));
		goto err_mutex;
	}
	t->registered = true;
	device__init(&t->dev, "testdev", "testdev", DEVICE_BUS_PLATFORM, &testdev_dev_ops);
	snprintf(t->dev.where, sizeof(t->dev.where), "io %#x", TESTDEV_BASE);
	ret = device__register_state(&t->dev, &vm->mig, "testdev", 0, TESTDEV_STATE_VERSION, 1,
				     &testdev_state_ops, t);
	if (!ret)
		ret = device__add(&t->vm->devices, &t->dev);
	if (ret) {
		log_err(TESTDEV_PREFIX, "cannot add device '%s': %s", t->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		testdev__destroy(t);
		return ret;
	}
	*out = t;
	return 0;

err_mutex:
	pthread_mutex_destroy(&t->lock);
err_free:
	free(t);
	return ret;
}

void testdev__destroy(struct testdev *t)
{
	if (!t)
		return;
	device__remove(&t->vm->devices, &t->dev);
	device__unregister_state(&t->dev, &t->vm->mig);
	if (t->registered)
		bus__deregister(&t->vm->pio, TESTDEV_BASE);
	/*
	 * a begun line that moved with the guest is the destination's to
	 * print; one that came in a stream the guest never ran on here is
	 * still the source's (a migration that failed before GO)
	 */
	if (t->len && !t->line_from_stream && atomic_load(&t->vm->exit_reason) != VM_EXIT_MIGRATED)
		testdev_flush(t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
