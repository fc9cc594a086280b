// SPDX-License-Identifier: MIT
/* The device model's list (vmm/device.h): ids, order, lookups, descriptions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/pci.h"

static int destroyed;

static void fake_describe(struct vmm_device *d, json_t *o)
{
	json_object_set_new(o, "detail", json_string("fake backing"));
}

static void fake_destroy(struct vmm_device *d)
{
	destroyed++;
}

static const struct vmm_device_ops fake_ops = {
	.describe = fake_describe,
	.destroy = fake_destroy,
};

static int count_fn(struct vmm_device *d, void *opaque)
{
	char *order = opaque;

	strcat(order, d->id);
	strcat(order, " ");
	return 0;
}

Test(device, ids_are_unique_and_the_order_is_kept)
{
	struct device_list l;
	struct vmm_device a, b, c, dup;
	char order[64] = "";

	device__list_init(&l);
	device__init(&a, "ttyS0", "serial", DEVICE_BUS_PLATFORM, &fake_ops);
	device__init(&b, "net0", "virtio-net", DEVICE_BUS_PCI, &fake_ops);
	device__init(&c, "vf0", "vfio-pci", DEVICE_BUS_PCI, &fake_ops);
	device__init(&dup, "net0", "virtio-net", DEVICE_BUS_PCI, &fake_ops);
	cr_assert_eq(device__add(&l, &a), 0);
	cr_assert_eq(device__add(&l, &b), 0);
	cr_assert_eq(device__add(&l, &c), 0);
	cr_assert_eq(device__add(&l, &dup), -EEXIST, "a second net0");
	cr_assert_eq(device__add(&l, &a), -EINVAL, "already listed");
	cr_assert_eq(l.nr, 3);
	cr_assert_eq(device__find(&l, "net0"), &b);
	cr_assert_null(device__find(&l, "net1"));
	cr_assert_eq(device__for_each(&l, count_fn, order), 0);
	cr_assert_str_eq(order, "ttyS0 net0 vf0 ");
	cr_assert_eq(device__last(&l), &c);
	/* removal from the middle, twice */
	device__remove(&l, &b);
	device__remove(&l, &b);
	cr_assert_eq(l.nr, 2);
	order[0] = 0;
	device__for_each(&l, count_fn, order);
	cr_assert_str_eq(order, "ttyS0 vf0 ");
	/* the id is free again */
	cr_assert_eq(device__add(&l, &dup), 0);
	device__list_destroy(&l);
}

Test(device, next_free_id)
{
	struct device_list l;
	struct vmm_device n0, n2;
	char id[DEVICE_ID_LEN];

	device__list_init(&l);
	device__next_id(&l, "net", id, sizeof(id));
	cr_assert_str_eq(id, "net0");
	device__init(&n0, "net0", "virtio-net", DEVICE_BUS_PCI, &fake_ops);
	device__init(&n2, "net2", "virtio-net", DEVICE_BUS_PCI, &fake_ops);
	cr_assert_eq(device__add(&l, &n0), 0);
	cr_assert_eq(device__add(&l, &n2), 0);
	device__next_id(&l, "net", id, sizeof(id));
	cr_assert_str_eq(id, "net1", "the first gap");
	device__list_destroy(&l);
}

Test(device, pci_slot_and_description)
{
	struct device_list l;
	struct pci_bus bus;
	struct pci_dev pd;
	struct vmm_device d, isa;
	json_t *o;

	memset(&bus, 0, sizeof(bus));
	pthread_mutex_init(&bus.lock, NULL);
	memset(&pd, 0, sizeof(pd));
	pd.devfn = -1;
	device__list_init(&l);
	device__init(&d, "vf0", "vfio-pci", DEVICE_BUS_PCI, &fake_ops);
	d.pci = &pd;
	d.removable = true;
	device__init(&isa, "rtc", "rtc", DEVICE_BUS_PLATFORM, NULL);
	snprintf(isa.where, sizeof(isa.where), "io 0x70");
	cr_assert_eq(device__add(&l, &d), 0);
	cr_assert_eq(device__add(&l, &isa), 0);
	cr_assert_eq(device__pci_slot(&l, "vf0"), -ENOENT, "not on the bus yet");
	cr_assert_eq(device__pci_slot(&l, "rtc"), -ENOTSUP);
	cr_assert_eq(device__pci_slot(&l, "nope"), -ENODEV);
	o = device__describe(&d);
	cr_assert_str_eq(json_string_value(json_object_get(o, "address")), "-");
	cr_assert_str_eq(json_string_value(json_object_get(o, "detail")), "fake backing");
	cr_assert(json_is_true(json_object_get(o, "removable")));
	json_decref(o);
	/* plugged in slot 3 */
	pd.bus = &bus;
	pd.devfn = 3 << 3;
	cr_assert_eq(device__pci_slot(&l, "vf0"), 3);
	o = device__describe(&d);
	cr_assert_str_eq(json_string_value(json_object_get(o, "address")), "00:03.0");
	cr_assert_str_eq(json_string_value(json_object_get(o, "bus")), "pci");
	json_decref(o);
	o = device__describe(&isa);
	cr_assert_str_eq(json_string_value(json_object_get(o, "address")), "io 0x70");
	cr_assert_str_eq(json_string_value(json_object_get(o, "bus")), "isa");
	cr_assert(json_is_false(json_object_get(o, "removable")));
	json_decref(o);
	cr_assert_eq(destroyed, 0, "the list never destroys");
	device__list_destroy(&l);
}
