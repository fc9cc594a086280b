// SPDX-License-Identifier: MIT
/*
 * vmm/x86/inspect.c: the decoders of the local APIC and IOAPIC state (pure),
 * and x86_inspect__vm() on a real KVM VM when /dev/kvm is usable.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_skip.h"
#include "vmm/kvm.h"
#include "vmm/x86/inspect.h"

static void lapic_set(struct kvm_lapic_state *l, unsigned int off, uint32_t v)
{
	memcpy(&l->regs[off], &v, sizeof(v));
}

static void assert_ints(json_t *a, const int *want, size_t n)
{
	size_t i;

	cr_assert(json_is_array(a));
	cr_assert_eq(json_array_size(a), n, "%zu vectors, not %zu", json_array_size(a), n);
	for (i = 0; i < n; i++)
		cr_assert_eq(json_integer_value(json_array_get(a, i)), want[i]);
}

Test(inspect, lapic_vectors_and_timer_are_decoded)
{
	struct kvm_lapic_state l;
	json_t *o, *t;

	memset(&l, 0, sizeof(l));
	lapic_set(&l, 0x20, 3u << 24);             /* APIC ID 3 */
	lapic_set(&l, 0x80, 0x20);                 /* TPR */
	lapic_set(&l, 0xa0, 0x20);                 /* PPR */
	lapic_set(&l, 0xf0, 0x1ff);                /* SVR: enabled, spurious 0xff */
	lapic_set(&l, 0x200 + 1 * 0x10, 1u << 4);  /* IRR: vector 36 */
	lapic_set(&l, 0x200 + 7 * 0x10, 1u << 31); /* IRR: vector 255 */
	lapic_set(&l, 0x100 + 7 * 0x10, 1u << 28); /* ISR: vector 252 */
	lapic_set(&l, 0x320, (2u << 17) | 0xec);   /* LVT timer: TSC-deadline, vector 236 */
	lapic_set(&l, 0x380, 1000);
	lapic_set(&l, 0x390, 400);
	o = x86_inspect__lapic(&l);
	cr_assert_not_null(o);
	cr_assert_eq(json_integer_value(json_object_get(o, "id")), 3);
	cr_assert(json_is_true(json_object_get(o, "enabled")));
	cr_assert_eq(json_integer_value(json_object_get(o, "tpr")), 0x20);
	cr_assert_eq(json_integer_value(json_object_get(o, "ppr")), 0x20);
	assert_ints(json_object_get(o, "irr"), (int[]){ 36, 255 }, 2);
	assert_ints(json_object_get(o, "isr"), (int[]){ 252 }, 1);
	assert_ints(json_object_get(o, "tmr"), NULL, 0);
	t = json_object_get(o, "timer");
	cr_assert_str_eq(json_string_value(json_object_get(t, "mode")), "tsc-deadline");
	cr_assert_eq(json_integer_value(json_object_get(t, "vector")), 0xec);
	cr_assert(json_is_false(json_object_get(t, "masked")));
	cr_assert_eq(json_integer_value(json_object_get(t, "initial_count")), 1000);
	cr_assert_eq(json_integer_value(json_object_get(t, "current_count")), 400);
	json_decref(o);

	/* a software-disabled APIC with a masked one-shot timer */
	memset(&l, 0, sizeof(l));
	lapic_set(&l, 0x320, 1u << 16);
	o = x86_inspect__lapic(&l);
	cr_assert(json_is_false(json_object_get(o, "enabled")));
	t = json_object_get(o, "timer");
	cr_assert_str_eq(json_string_value(json_object_get(t, "mode")), "one-shot");
	cr_assert(json_is_true(json_object_get(t, "masked")));
	json_decref(o);
}

Test(inspect, ioapic_lists_the_unmasked_pins_only)
{
	struct kvm_ioapic_state s;
	json_t *o, *pins, *p;
	unsigned int i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		s.redirtbl[i].fields.mask = 1;
	/* COM1: IRQ 4, edge, vector 0x24, its line high */
	s.redirtbl[4].fields.mask = 0;
	s.redirtbl[4].fields.vector = 0x24;
	s.irr = 1u << 4;
	/* ACPI SCI: IRQ 9, level, remote IRR set (the guest has not sent its EOI) */
	s.redirtbl[9].fields.mask = 0;
	s.redirtbl[9].fields.vector = 0x29;
	s.redirtbl[9].fields.trig_mode = 1;
	s.redirtbl[9].fields.remote_irr = 1;
	s.redirtbl[9].fields.dest_id = 1;
	o = x86_inspect__ioapic(&s);
	cr_assert_not_null(o);
	cr_assert_str_eq(json_string_value(json_object_get(o, "irr")), "0x10");
	pins = json_object_get(o, "unmasked_pins");
	cr_assert_eq(json_array_size(pins), 2);
	p = json_array_get(pins, 0);
	cr_assert_eq(json_integer_value(json_object_get(p, "pin")), 4);
	cr_assert_eq(json_integer_value(json_object_get(p, "vector")), 0x24);
	cr_assert_str_eq(json_string_value(json_object_get(p, "trigger")), "edge");
	cr_assert(json_is_true(json_object_get(p, "line_high")));
	cr_assert(json_is_false(json_object_get(p, "remote_irr")));
	p = json_array_get(pins, 1);
	cr_assert_eq(json_integer_value(json_object_get(p, "pin")), 9);
	cr_assert_str_eq(json_string_value(json_object_get(p, "trigger")), "level");
	cr_assert(json_is_true(json_object_get(p, "remote_irr")));
	cr_assert(json_is_false(json_object_get(p, "line_high")));
	cr_assert_eq(json_integer_value(json_object_get(p, "dest")), 1);
	json_decref(o);
}

Test(inspect, mp_state_names)
{
	cr_assert_str_eq(x86_inspect__mp_state_name(KVM_MP_STATE_RUNNABLE), "runnable");
	cr_assert_str_eq(x86_inspect__mp_state_name(KVM_MP_STATE_HALTED), "halted");
	cr_assert_str_eq(x86_inspect__mp_state_name(KVM_MP_STATE_UNINITIALIZED), "uninitialized");
	cr_assert_str_eq(x86_inspect__mp_state_name(1000), "unknown");
}

/* ---- real KVM ---- */

static struct vm vm;
static bool vm_made;

static void vm_fini(void)
{
	if (vm_made)
		kvm__vm_destroy(&vm);
}

Test(inspect_kvm, a_new_vm_reads_as_reset_with_a_pending_vector, .fini = vm_fini)
{
	struct kvm_lapic_state *l;
	json_t *o, *c, *r;
	uint32_t irr;
	int fd = kvm_open_or_skip();

	close(fd);
	cr_assert_eq(kvm__vm_create(&vm, 64ull << 20, false, 2), 0);
	vm_made = true;
	cr_assert_eq(kvm__vcpus_create(&vm), 0);

	/* vector 0x41 pending in vCPU 1's IRR, as an interrupt not yet taken */
	l = calloc(1, sizeof(*l));
	cr_assert_not_null(l);
	cr_assert_eq(ioctl(vm.vcpus[1].fd, KVM_GET_LAPIC, l), 0);
	irr = 1u << (0x41 % 32);
	memcpy(&l->regs[0x200 + (0x41 / 32) * 0x10], &irr, sizeof(irr));
	cr_assert_eq(ioctl(vm.vcpus[1].fd, KVM_SET_LAPIC, l), 0);
	free(l);

	cr_assert_eq(x86_inspect__vm(&vm, &o), 0);
	cr_assert_eq(json_array_size(json_object_get(o, "vcpus")), 2);
	c = json_array_get(json_object_get(o, "vcpus"), 0);
	cr_assert_eq(json_integer_value(json_object_get(c, "id")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(c, "mp_state")), "runnable", "the BSP");
	r = json_object_get(c, "regs");
	cr_assert_str_eq(json_string_value(json_object_get(r, "rip")), "0xfff0", "the reset vector");
	cr_assert(json_is_false(json_object_get(r, "if")));
	cr_assert(json_is_object(json_object_get(c, "tsc")), "TSC and deadline read");
	c = json_array_get(json_object_get(o, "vcpus"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(c, "mp_state")), "uninitialized",
			 "an AP waits for INIT/SIPI");
	assert_ints(json_object_get(json_object_get(c, "lapic"), "irr"), (int[]){ 0x41 }, 1);
	cr_assert(json_is_array(json_object_get(json_object_get(o, "ioapic"), "unmasked_pins")));
	json_decref(o);
}
