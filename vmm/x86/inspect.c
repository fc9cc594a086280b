// SPDX-License-Identifier: MIT
/* A guest's vCPUs and interrupt controllers, read for diagnosis (vmm/x86/inspect.h). */
#include "vmm/x86/inspect.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>

#include "vmm/kvm.h"
#include "vmm/sys.h"

/* local APIC register offsets (Intel SDM vol. 3, table 11-1) */
#define APIC_ID 0x20
#define APIC_TPR 0x80
#define APIC_PPR 0xa0
#define APIC_SVR 0xf0
#define APIC_ISR 0x100
#define APIC_TMR 0x180
#define APIC_IRR 0x200
#define APIC_ICR_LOW 0x300
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_TMICT 0x380
#define APIC_TMCCT 0x390
#define APIC_TDCR 0x3e0
#define APIC_SVR_ENABLE (1u << 8)
#define APIC_LVT_MASKED (1u << 16)

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

static uint32_t inspect_reg(const struct kvm_lapic_state *l, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &l->regs[off], sizeof(v));
	return v;
}

static json_t *inspect_hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%#llx", (unsigned long long)v);
	return json_string(buf);
}

/* the vectors set in a 256-bit APIC register (8 words 16 bytes apart), lowest first */
static json_t *inspect_vectors(const struct kvm_lapic_state *l, unsigned int base)
{
	json_t *a = json_array();
	unsigned int w, b;

	for (w = 0; a && w < 8; w++) {
		uint32_t bits = inspect_reg(l, base + w * 0x10);

		for (b = 0; b < 32; b++)
			if (bits & (1u << b))
				json_array_append_new(a, json_integer(w * 32 + b));
	}
	return a;
}

const char *x86_inspect__mp_state_name(uint32_t mp_state)
{
	static const char *const names[] = {
		[KVM_MP_STATE_RUNNABLE] = "runnable",
		[KVM_MP_STATE_UNINITIALIZED] = "uninitialized",
		[KVM_MP_STATE_INIT_RECEIVED] = "init-received",
		[KVM_MP_STATE_HALTED] = "halted",
		[KVM_MP_STATE_SIPI_RECEIVED] = "sipi-received",
		[KVM_MP_STATE_STOPPED] = "stopped",
		[KVM_MP_STATE_CHECK_STOP] = "check-stop",
		[KVM_MP_STATE_OPERATING] = "operating",
		[KVM_MP_STATE_LOAD] = "load",
	};

	if (mp_state < sizeof(names) / sizeof(names[0]) && names[mp_state])
		return names[mp_state];
	return "unknown";
}

json_t *x86_inspect__lapic(const struct kvm_lapic_state *l)
{
	static const char *const timer_modes[] = { "one-shot", "periodic", "tsc-deadline", "reserved" };
	uint32_t svr = inspect_reg(l, APIC_SVR), lvtt = inspect_reg(l, APIC_LVT_TIMER);

	return json_pack("{s:i,s:b,s:i,s:i,s:o,s:o,s:o,s:{s:i,s:s,s:b,s:I,s:I,s:i},s:o,s:o,s:o}",
			 "id", (int)(inspect_reg(l, APIC_ID) >> 24),
			 "enabled", (svr & APIC_SVR_ENABLE) != 0,
			 "tpr", (int)(inspect_reg(l, APIC_TPR) & 0xff),
			 "ppr", (int)(inspect_reg(l, APIC_PPR) & 0xff),
			 "irr", inspect_vectors(l, APIC_IRR),
			 "isr", inspect_vectors(l, APIC_ISR),
			 "tmr", inspect_vectors(l, APIC_TMR),
			 "timer",
			 "vector", (int)(lvtt & 0xff),
			 "mode", timer_modes[(lvtt >> 17) & 3],
			 "masked", (lvtt & APIC_LVT_MASKED) != 0,
			 "initial_count", (json_int_t)inspect_reg(l, APIC_TMICT),
			 "current_count", (json_int_t)inspect_reg(l, APIC_TMCCT),
			 "divide", (int)(inspect_reg(l, APIC_TDCR) & 0xf),
			 "lint0", inspect_hex(inspect_reg(l, APIC_LVT_LINT0)),
			 "lint1", inspect_hex(inspect_reg(l, APIC_LVT_LINT1)),
			 "icr_low", inspect_hex(inspect_reg(l, APIC_ICR_LOW)));
}

json_t *x86_inspect__ioapic(const struct kvm_ioapic_state *s)
{
	json_t *pins = json_array();
	unsigned int i;

	for (i = 0; pins && i < KVM_IOAPIC_NUM_PINS; i++) {
		const __typeof__(s->redirtbl[0].fields) *f = &s->redirtbl[i].fields;

		/* a masked pin delivers nothing: only the ones a guest uses are listed */
		if (f->mask)
			continue;
		json_array_append_new(pins, json_pack("{s:i,s:i,s:s,s:b,s:b,s:i,s:b}",
						      "pin", (int)i, "vector", (int)f->vector,
						      "trigger", f->trig_mode ? "level" : "edge",
						      "remote_irr", (int)f->remote_irr != 0,
						      "delivery_pending", (int)f->delivery_status != 0,
						      "dest", (int)f->dest_id,
						      "line_high", (s->irr >> i) & 1));
	}
	return json_pack("{s:o,s:o}", "irr", inspect_hex(s->irr), "unmasked_pins", pins);
}

static json_t *inspect_regs(const struct kvm_regs *r, const struct kvm_sregs *sr)
{
	return json_pack("{s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:i,s:i}",
			 "rip", inspect_hex(r->rip), "rsp", inspect_hex(r->rsp),
			 "rflags", inspect_hex(r->rflags), "if", (r->rflags & 0x200) != 0,
			 "rax", inspect_hex(r->rax), "rbx", inspect_hex(r->rbx),
			 "rcx", inspect_hex(r->rcx), "rdx", inspect_hex(r->rdx),
			 "rsi", inspect_hex(r->rsi), "rdi", inspect_hex(r->rdi),
			 "rbp", inspect_hex(r->rbp),
			 "cr0", inspect_hex(sr->cr0), "cr2", inspect_hex(sr->cr2),
			 "cr3", inspect_hex(sr->cr3), "cr4", inspect_hex(sr->cr4),
			 "cr8", inspect_hex(sr->cr8), "efer", inspect_hex(sr->efer),
			 "cs", (int)sr->cs.selector, "cpl", (int)sr->ss.dpl);
}

static json_t *inspect_events(const struct kvm_vcpu_events *e)
{
	return json_pack("{s:{s:b,s:i,s:b},s:{s:b,s:b,s:b},s:{s:b,s:i,s:o},s:i}",
			 "interrupt", "injected", e->interrupt.injected != 0,
			 "nr", (int)e->interrupt.nr, "shadow", e->interrupt.shadow != 0,
			 "nmi", "injected", e->nmi.injected != 0, "pending", e->nmi.pending != 0,
			 "masked", e->nmi.masked != 0,
			 "exception", "injected", e->exception.injected != 0,
			 "nr", (int)e->exception.nr, "error_code", inspect_hex(e->exception.error_code),
			 "sipi_vector", (int)e->sipi_vector);
}

/* the TSC and the TSC-deadline timer: Linux guests on KVM arm their timer there, not in TMICT */
static json_t *inspect_tsc(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} m = { .hdr.nmsrs = 2, .e = { { .index = MSR_IA32_TSC }, { .index = MSR_IA32_TSC_DEADLINE } } };
	int n = ioctl(v->fd, KVM_GET_MSRS, &m);

	if (n != 2)
		return json_null();
	return json_pack("{s:o,s:o,s:b}", "tsc", inspect_hex(m.e[0].data), "deadline",
			 inspect_hex(m.e[1].data), "deadline_passed",
			 m.e[1].data && m.e[1].data <= m.e[0].data);
}

static int inspect_vcpu(struct vcpu *v, json_t **out)
{
	struct kvm_vcpu_events ev;
	struct kvm_lapic_state *lapic;
	struct kvm_mp_state mp;
	struct kvm_sregs sr;
	struct kvm_regs r;
	int ret;

	lapic = calloc(1, sizeof(*lapic));
	if (!lapic)
		return -ENOMEM;
	ret = sys__ioctl(v->fd, KVM_GET_REGS, &r);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_SREGS, &sr);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_MP_STATE, &mp);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_LAPIC, lapic);
	if (ret)
		goto out;
	*out = json_pack("{s:i,s:s,s:o,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I}}",
			 "id", (int)v->id, "mp_state", x86_inspect__mp_state_name(mp.mp_state),
			 "regs", inspect_regs(&r, &sr), "events", inspect_events(&ev),
			 "lapic", x86_inspect__lapic(lapic), "tsc", inspect_tsc(v),
			 "exits",
			 "io", (json_int_t)atomic_load(&v->stats.exits_io),
			 "mmio", (json_int_t)atomic_load(&v->stats.exits_mmio),
			 "unhandled", (json_int_t)atomic_load(&v->stats.exits_unhandled),
			 "other", (json_int_t)atomic_load(&v->stats.exits_other));
	ret = *out ? 0 : -ENOMEM;
out:
	free(lapic);
	return ret;
}

int x86_inspect__vm(struct vm *vm, json_t **out)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	json_t *o, *vcpus, *c;
	unsigned int i;
	int ret;

	o = json_object();
	vcpus = json_array();
	if (!o || !vcpus) {
		ret = -ENOMEM;
		goto err;
	}
	for (i = 0; i < vm->nr_vcpus; i++) {
		ret = inspect_vcpu(&vm->vcpus[i], &c);
		if (ret)
			goto err;
		json_array_append_new(vcpus, c);
	}
	json_object_set_new(o, "vcpus", vcpus);
	vcpus = NULL;
	ret = sys__ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip);
	if (ret)
		goto err;
	json_object_set_new(o, "ioapic", x86_inspect__ioapic(&chip.chip.ioapic));
	*out = o;
	return 0;
err:
	json_decref(vcpus);
	json_decref(o);
	return ret;
}
