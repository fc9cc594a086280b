// SPDX-License-Identifier: MIT
/*
 * x86 vCPU and VM state as migration sections (vmm/x86/state.h).
 *
 * Save reads KVM's state with the vCPUs outside KVM_RUN. Load reads every
 * field of the section into local copies, checks them, and only then issues
 * the KVM_SET_* calls, in the order KVM needs them: special registers (the
 * APIC base and EFER) before the general ones, the XSAVE area and XCRs,
 * then the MSRs, the local APIC, events, MP state and debug registers.
 */
#include "vmm/x86/state.h"
#include "migration/section.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_LOG "state"
#define STATE_XSAVE_MIN 4096 /* struct kvm_xsave; larger with KVM_CAP_XSAVE2 */
#define STATE_MAX_XCRS 16    /* KVM_MAX_XCRS */

/* the MSRs that carry guest state KVM keeps (those KVM reports are saved) */
const uint32_t x86_state__msrs[] = {
	0x00000010, /* IA32_TSC: first, so that the others see the guest's time */
	0x0000003b, /* IA32_TSC_ADJUST */
	0x00000174, /* IA32_SYSENTER_CS */
	0x00000175, /* IA32_SYSENTER_ESP */
	0x00000176, /* IA32_SYSENTER_EIP */
	0x000001a0, /* IA32_MISC_ENABLE */
	0x00000277, /* IA32_PAT */
	0x000002ff, /* IA32_MTRR_DEF_TYPE */
	0x000006e0, /* IA32_TSC_DEADLINE */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SYSCALL_MASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
	0x4b564d00, /* kvmclock: WALL_CLOCK_NEW */
	0x4b564d01, /* kvmclock: SYSTEM_TIME_NEW */
	0x4b564d02, /* KVM ASYNC_PF_EN */
	0x4b564d03, /* KVM STEAL_TIME */
	0x4b564d04, /* KVM PV_EOI_EN */
	0x4b564d06, /* KVM ASYNC_PF_INT */
};
const size_t x86_state__nr_msrs = ARRAY_SIZE(x86_state__msrs);
#define STATE_NR_MSRS ARRAY_SIZE(x86_state__msrs)

/* --- field helpers: a failure stops at the first error ------------------- */

#define PUT64(f, n, v)                                   \
	do {                                             \
		if (!ret)                                \
			ret = mig__put_u64(f, n, (uint64_t)(v)); \
	} while (0)
#define PUT32(f, n, v)                                   \
	do {                                             \
		if (!ret)                                \
			ret = mig__put_u32(f, n, (uint32_t)(v)); \
	} while (0)
#define GET64(f, node, n, dst)                              \
	do {                                                \
		uint64_t v_;                                \
		if (!ret) {                                 \
			ret = mig__get_u64(f, node, n, &v_); \
			if (!ret)                           \
				(dst) = v_;                  \
		}                                           \
	} while (0)
/* a u32 field that must fit dst's type (u8 fields: at most 255) */
#define GET32(f, node, n, dst, max)                                                   \
	do {                                                                          \
		uint32_t v_;                                                          \
		if (!ret) {                                                           \
			ret = mig__get_u32_max(f, node, n, (uint32_t)(max), &v_);      \
			if (!ret)                                                     \
				(dst) = v_;                                            \
		}                                                                     \
	} while (0)

static char state_err[160];

static void state_bad(const char *field, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void state_bad(const char *field, const char *fmt, ...)
{
	char msg[120];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(state_err, sizeof(state_err), "%s: %s", field, msg);
}

/* big-endian arrays (the device-tree convention) */
static int state_put_u64s(void *fdt, const char *name, const uint64_t *v, size_t n)
{
	uint64_t be[64];
	size_t i;

	if (n > ARRAY_SIZE(be))
		return -EINVAL;
	for (i = 0; i < n; i++)
		be[i] = htobe64(v[i]);
	return mig__put_bytes(fdt, name, be, n * 8);
}

static int state_get_u64s(const void *fdt, int node, const char *name, uint64_t *v, size_t n)
{
	uint64_t be[64];
	size_t i;
	int ret;

	if (n > ARRAY_SIZE(be))
		return -EINVAL;
	ret = mig__get_bytes(fdt, node, name, be, n * 8);
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		v[i] = be64toh(be[i]);
	return 0;
}

/* --- "cpu": one vCPU ---------------------------------------------------------- */

struct state_cpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave;  /* xsave_size bytes */
	struct kvm_xcrs xcrs;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[STATE_NR_MSRS];
	} msrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
};

static size_t state_xsave_size(struct vm *vm)
{
	int n = sys__ioctl_raw(vm->vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_XSAVE2);

	return n > STATE_XSAVE_MIN ? (size_t)n : STATE_XSAVE_MIN;
}

static const char *const state_seg_names[] = { "cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt" };

static struct kvm_segment *state_seg(struct kvm_sregs *s, unsigned int i)
{
	struct kvm_segment *segs[] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt };

	return segs[i];
}

/*
 * One field of a KVM state struct, saved under its name: a u32 in the
 * stream (loaded only up to max) for fields of 1 to 4 bytes, a u64 for
 * 8-byte ones. A table of them saves and loads a struct both ways.
 */
struct state_field {
	const char *name;
	size_t off;
	uint8_t size;
	uint32_t max;
};
#define STATE_FIELD(type, f, m) { #f, offsetof(type, f), sizeof(((type *)0)->f), m }

static int state_put_fields(void *fdt, const char *name, const void *s,
			    const struct state_field *f, size_t n)
{
	int ret = mig__begin_node(fdt, name);
	size_t i;

	for (i = 0; i < n && !ret; i++) {
		const uint8_t *p = (const uint8_t *)s + f[i].off;
		uint64_t v64 = 0;
		uint32_t v32 = 0;
		uint16_t v16;

		switch (f[i].size) {
		case 8:
			memcpy(&v64, p, 8);
			ret = mig__put_u64(fdt, f[i].name, v64);
			continue;
		case 4:
			memcpy(&v32, p, 4);
			break;
		case 2:
			memcpy(&v16, p, 2);
			v32 = v16;
			break;
		default:
			v32 = *p;
		}
		ret = mig__put_u32(fdt, f[i].name, v32);
	}
	if (!ret)
		ret = mig__end_node(fdt);
	return ret;
}

static int state_get_fields(const void *fdt, int parent, const char *name, void *s,
			    const struct state_field *f, size_t n)
{
	int node = mig__get_node(fdt, parent, name), ret = 0;
	size_t i;

	if (node < 0) {
		state_bad(name, "missing");
		return node;
	}
	for (i = 0; i < n && !ret; i++) {
		uint8_t *p = (uint8_t *)s + f[i].off;
		uint64_t v64;
		uint32_t v32;
		uint16_t v16;

		if (f[i].size == 8) {
			ret = mig__get_u64(fdt, node, f[i].name, &v64);
			if (!ret)
				memcpy(p, &v64, 8);
			continue;
		}
		ret = mig__get_u32_max(fdt, node, f[i].name, f[i].max, &v32);
		if (ret)
			break;
		if (f[i].size == 4) {
			memcpy(p, &v32, 4);
		} else if (f[i].size == 2) {
			v16 = (uint16_t)v32;
			memcpy(p, &v16, 2);
		} else {
			*p = (uint8_t)v32;
		}
	}
	return ret;
}

/* a segment register (sregs: cs, ds, ..., tr, ldt) */
static const struct state_field state_seg_fields[] = {
	STATE_FIELD(struct kvm_segment, base, 0), STATE_FIELD(struct kvm_segment, limit, UINT32_MAX),
	STATE_FIELD(struct kvm_segment, selector, 0xffff), STATE_FIELD(struct kvm_segment, type, 15),
	STATE_FIELD(struct kvm_segment, present, 1), STATE_FIELD(struct kvm_segment, dpl, 3),
	STATE_FIELD(struct kvm_segment, db, 1), STATE_FIELD(struct kvm_segment, s, 1),
	STATE_FIELD(struct kvm_segment, l, 1), STATE_FIELD(struct kvm_segment, g, 1),
	STATE_FIELD(struct kvm_segment, avl, 1), STATE_FIELD(struct kvm_segment, unusable, 1),
};

static int state_put_seg(void *fdt, const char *name, const struct kvm_segment *g)
{
	return state_put_fields(fdt, name, g, state_seg_fields, ARRAY_SIZE(state_seg_fields));
}

static int state_get_seg(const void *fdt, int parent, const char *name, struct kvm_segment *g)
{
	return state_get_fields(fdt, parent, name, g, state_seg_fields, ARRAY_SIZE(state_seg_fields));
}

static int state_cpu_save(void *opaque, void *fdt)
{
	struct vcpu *v = opaque;
	struct state_cpu *c;
	size_t xs = state_xsave_size(v->vm), i, n = 0;
	uint64_t idx[STATE_NR_MSRS], val[STATE_NR_MSRS], xcr_idx[STATE_MAX_XCRS], xcr_val[STATE_MAX_XCRS];
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->xsave = calloc(1, xs);
	if (!c->xsave) {
		free(c);
		return -ENOMEM;
	}
	ret = sys__ioctl(v->fd, KVM_GET_REGS, &c->regs);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_SREGS, &c->sregs);
	if (!ret)
		ret = xs > STATE_XSAVE_MIN ? sys__ioctl(v->fd, KVM_GET_XSAVE2, c->xsave)
					   : sys__ioctl(v->fd, KVM_GET_XSAVE, c->xsave);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_XCRS, &c->xcrs);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_LAPIC, &c->lapic);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_VCPU_EVENTS, &c->events);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_MP_STATE, &c->mp);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_GET_DEBUGREGS, &c->dbg);
	if (ret)
		goto out;
	/* the MSRs one at a time: KVM_GET_MSRS stops at the first it lacks */
	for (i = 0; i < STATE_NR_MSRS; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} one = { .hdr.nmsrs = 1, .e.index = x86_state__msrs[i] };

		if (sys__ioctl_raw(v->fd, KVM_GET_MSRS, &one) == 1) {
			idx[n] = one.e.index;
			val[n] = one.e.data;
			n++;
		}
	}

	/* general registers */
	PUT64(fdt, "rax", c->regs.rax);
	PUT64(fdt, "rbx", c->regs.rbx);
	PUT64(fdt, "rcx", c->regs.rcx);
	PUT64(fdt, "rdx", c->regs.rdx);
	PUT64(fdt, "rsi", c->regs.rsi);
	PUT64(fdt, "rdi", c->regs.rdi);
	PUT64(fdt, "rsp", c->regs.rsp);
	PUT64(fdt, "rbp", c->regs.rbp);
	PUT64(fdt, "r8", c->regs.r8);
	PUT64(fdt, "r9", c->regs.r9);
	PUT64(fdt, "r10", c->regs.r10);
	PUT64(fdt, "r11", c->regs.r11);
	PUT64(fdt, "r12", c->regs.r12);
	PUT64(fdt, "r13", c->regs.r13);
	PUT64(fdt, "r14", c->regs.r14);
	PUT64(fdt, "r15", c->regs.r15);
	PUT64(fdt, "rip", c->regs.rip);
	PUT64(fdt, "rflags", c->regs.rflags);
	/* descriptor tables, control registers (the segments: subnodes, last) */
	PUT64(fdt, "gdt_base", c->sregs.gdt.base);
	PUT32(fdt, "gdt_limit", c->sregs.gdt.limit);
	PUT64(fdt, "idt_base", c->sregs.idt.base);
	PUT32(fdt, "idt_limit", c->sregs.idt.limit);
	PUT64(fdt, "cr0", c->sregs.cr0);
	PUT64(fdt, "cr2", c->sregs.cr2);
	PUT64(fdt, "cr3", c->sregs.cr3);
	PUT64(fdt, "cr4", c->sregs.cr4);
	PUT64(fdt, "cr8", c->sregs.cr8);
	PUT64(fdt, "efer", c->sregs.efer);
	PUT64(fdt, "apic_base", c->sregs.apic_base);
	if (!ret)
		ret = state_put_u64s(fdt, "interrupt_bitmap", (const uint64_t *)c->sregs.interrupt_bitmap,
				     ARRAY_SIZE(c->sregs.interrupt_bitmap));
	/* FPU/SSE/AVX...: the XSAVE area, in the layout the CPU defines */
	if (!ret)
		ret = mig__put_bytes(fdt, "xsave", c->xsave, xs);
	for (i = 0; i < c->xcrs.nr_xcrs && i < STATE_MAX_XCRS; i++) {
		xcr_idx[i] = c->xcrs.xcrs[i].xcr;
		xcr_val[i] = c->xcrs.xcrs[i].value;
	}
	if (!ret)
		ret = state_put_u64s(fdt, "xcr_index", xcr_idx, i);
	if (!ret)
		ret = state_put_u64s(fdt, "xcr_value", xcr_val, i);
	if (!ret)
		ret = state_put_u64s(fdt, "msr_index", idx, n);
	if (!ret)
		ret = state_put_u64s(fdt, "msr_value", val, n);
	/* the local APIC's register page, as the architecture lays it out */
	if (!ret)
		ret = mig__put_bytes(fdt, "lapic", c->lapic.regs, sizeof(c->lapic.regs));
	/* pending events */
	PUT32(fdt, "exc_injected", c->events.exception.injected);
	PUT32(fdt, "exc_nr", c->events.exception.nr);
	PUT32(fdt, "exc_has_error_code", c->events.exception.has_error_code);
	PUT32(fdt, "exc_pending", c->events.exception.pending);
	PUT32(fdt, "exc_error_code", c->events.exception.error_code);
	PUT32(fdt, "exc_has_payload", c->events.exception_has_payload);
	PUT64(fdt, "exc_payload", c->events.exception_payload);
	PUT32(fdt, "int_injected", c->events.interrupt.injected);
	PUT32(fdt, "int_nr", c->events.interrupt.nr);
	PUT32(fdt, "int_soft", c->events.interrupt.soft);
	PUT32(fdt, "int_shadow", c->events.interrupt.shadow);
	PUT32(fdt, "nmi_injected", c->events.nmi.injected);
	PUT32(fdt, "nmi_pending", c->events.nmi.pending);
	PUT32(fdt, "nmi_masked", c->events.nmi.masked);
	PUT32(fdt, "sipi_vector", c->events.sipi_vector);
	PUT32(fdt, "smi_smm", c->events.smi.smm);
	PUT32(fdt, "smi_pending", c->events.smi.pending);
	PUT32(fdt, "smi_inside_nmi", c->events.smi.smm_inside_nmi);
	PUT32(fdt, "smi_latched_init", c->events.smi.latched_init);
	PUT32(fdt, "mp_state", c->mp.mp_state);
	if (!ret)
		ret = state_put_u64s(fdt, "db", (const uint64_t *)c->dbg.db, 4);
	PUT64(fdt, "dr6", c->dbg.dr6);
	PUT64(fdt, "dr7", c->dbg.dr7);
	/* subnodes after every property: the device-tree format's order */
	for (i = 0; i < ARRAY_SIZE(state_seg_names) && !ret; i++)
		ret = state_put_seg(fdt, state_seg_names[i], state_seg(&c->sregs, (unsigned int)i));
out:
	free(c->xsave);
	free(c);
	return ret;
}

static bool state_msr_known(uint64_t index)
{
	size_t i;

	for (i = 0; i < STATE_NR_MSRS; i++)
		if (x86_state__msrs[i] == index)
			return true;
	return false;
}

static int state_cpu_read(struct vcpu *v, const void *fdt, int node, struct state_cpu *c,
			  size_t xs)
{
	uint64_t idx[STATE_NR_MSRS], val[STATE_NR_MSRS], xi[STATE_MAX_XCRS], xv[STATE_MAX_XCRS];
	const void *blob;
	size_t len, n, i;
	int ret = 0;

	GET64(fdt, node, "rax", c->regs.rax);
	GET64(fdt, node, "rbx", c->regs.rbx);
	GET64(fdt, node, "rcx", c->regs.rcx);
	GET64(fdt, node, "rdx", c->regs.rdx);
	GET64(fdt, node, "rsi", c->regs.rsi);
	GET64(fdt, node, "rdi", c->regs.rdi);
	GET64(fdt, node, "rsp", c->regs.rsp);
	GET64(fdt, node, "rbp", c->regs.rbp);
	GET64(fdt, node, "r8", c->regs.r8);
	GET64(fdt, node, "r9", c->regs.r9);
	GET64(fdt, node, "r10", c->regs.r10);
	GET64(fdt, node, "r11", c->regs.r11);
	GET64(fdt, node, "r12", c->regs.r12);
	GET64(fdt, node, "r13", c->regs.r13);
	GET64(fdt, node, "r14", c->regs.r14);
	GET64(fdt, node, "r15", c->regs.r15);
	GET64(fdt, node, "rip", c->regs.rip);
	GET64(fdt, node, "rflags", c->regs.rflags);
	for (i = 0; i < ARRAY_SIZE(state_seg_names) && !ret; i++)
		ret = state_get_seg(fdt, node, state_seg_names[i], state_seg(&c->sregs, (unsigned int)i));
	GET64(fdt, node, "gdt_base", c->sregs.gdt.base);
	GET32(fdt, node, "gdt_limit", c->sregs.gdt.limit, 0xffff);
	GET64(fdt, node, "idt_base", c->sregs.idt.base);
	GET32(fdt, node, "idt_limit", c->sregs.idt.limit, 0xffff);
	GET64(fdt, node, "cr0", c->sregs.cr0);
	GET64(fdt, node, "cr2", c->sregs.cr2);
	GET64(fdt, node, "cr3", c->sregs.cr3);
	GET64(fdt, node, "cr4", c->sregs.cr4);
	GET64(fdt, node, "cr8", c->sregs.cr8);
	GET64(fdt, node, "efer", c->sregs.efer);
	GET64(fdt, node, "apic_base", c->sregs.apic_base);
	if (!ret)
		ret = state_get_u64s(fdt, node, "interrupt_bitmap", (uint64_t *)c->sregs.interrupt_bitmap,
				     ARRAY_SIZE(c->sregs.interrupt_bitmap));
	if (ret)
		return ret;
	/* the XSAVE area must be this host's size: a larger one holds state we cannot load */
	ret = mig__get_blob(fdt, node, "xsave", &blob, &len);
	if (ret)
		return ret;
	if (len != xs) {
		state_bad("xsave", "%zu bytes, this host's KVM takes %zu", len, xs);
		return -EINVAL;
	}
	memcpy(c->xsave, blob, xs);
	ret = mig__get_blob(fdt, node, "xcr_index", &blob, &len);
	if (ret)
		return ret;
	n = len / 8;
	if (len % 8 || n > STATE_MAX_XCRS) {
		state_bad("xcr_index", "%zu bytes: not 0 to %d u64 values", len, STATE_MAX_XCRS);
		return -EINVAL;
	}
	ret = state_get_u64s(fdt, node, "xcr_index", xi, n);
	if (!ret)
		ret = state_get_u64s(fdt, node, "xcr_value", xv, n);
	if (ret)
		return ret;
	c->xcrs.nr_xcrs = (uint32_t)n;
	for (i = 0; i < n; i++) {
		if (xi[i] != 0) {
			state_bad("xcr_index", "XCR%llu is not XCR0", (unsigned long long)xi[i]);
			return -EINVAL;
		}
		c->xcrs.xcrs[i].xcr = (uint32_t)xi[i];
		c->xcrs.xcrs[i].value = xv[i];
	}
	ret = mig__get_blob(fdt, node, "msr_index", &blob, &len);
	if (ret)
		return ret;
	n = len / 8;
	if (len % 8 || n > STATE_NR_MSRS) {
		state_bad("msr_index", "%zu bytes: not 0 to %zu u64 values", len, STATE_NR_MSRS);
		return -EINVAL;
	}
	ret = state_get_u64s(fdt, node, "msr_index", idx, n);
	if (!ret)
		ret = state_get_u64s(fdt, node, "msr_value", val, n);
	if (ret)
		return ret;
	c->msrs.hdr.nmsrs = (uint32_t)n;
	for (i = 0; i < n; i++) {
		if (!state_msr_known(idx[i])) {
			state_bad("msr_index", "MSR %#llx is not one a cpu section carries",
				  (unsigned long long)idx[i]);
			return -EINVAL;
		}
		c->msrs.e[i].index = (uint32_t)idx[i];
		c->msrs.e[i].data = val[i];
	}
	ret = mig__get_bytes(fdt, node, "lapic", c->lapic.regs, sizeof(c->lapic.regs));
	GET32(fdt, node, "exc_injected", c->events.exception.injected, 1);
	GET32(fdt, node, "exc_nr", c->events.exception.nr, 31);
	GET32(fdt, node, "exc_has_error_code", c->events.exception.has_error_code, 1);
	GET32(fdt, node, "exc_pending", c->events.exception.pending, 1);
	GET32(fdt, node, "exc_error_code", c->events.exception.error_code, UINT32_MAX);
	GET32(fdt, node, "exc_has_payload", c->events.exception_has_payload, 1);
	GET64(fdt, node, "exc_payload", c->events.exception_payload);
	GET32(fdt, node, "int_injected", c->events.interrupt.injected, 1);
	GET32(fdt, node, "int_nr", c->events.interrupt.nr, 255);
	GET32(fdt, node, "int_soft", c->events.interrupt.soft, 1);
	GET32(fdt, node, "int_shadow", c->events.interrupt.shadow, 3);
	GET32(fdt, node, "nmi_injected", c->events.nmi.injected, 1);
	GET32(fdt, node, "nmi_pending", c->events.nmi.pending, 255);
	GET32(fdt, node, "nmi_masked", c->events.nmi.masked, 1);
	GET32(fdt, node, "sipi_vector", c->events.sipi_vector, 255);
	GET32(fdt, node, "smi_smm", c->events.smi.smm, 1);
	GET32(fdt, node, "smi_pending", c->events.smi.pending, 1);
	GET32(fdt, node, "smi_inside_nmi", c->events.smi.smm_inside_nmi, 1);
	GET32(fdt, node, "smi_latched_init", c->events.smi.latched_init, 1);
	GET32(fdt, node, "mp_state", c->mp.mp_state, KVM_MP_STATE_AP_RESET_HOLD);
	if (!ret)
		ret = state_get_u64s(fdt, node, "db", (uint64_t *)c->dbg.db, 4);
	GET64(fdt, node, "dr6", c->dbg.dr6);
	GET64(fdt, node, "dr7", c->dbg.dr7);
	if (ret)
		return ret;
	if (c->sregs.apic_base & 0xfffULL & ~0xd00ULL) {
		state_bad("apic_base", "%#llx has reserved bits set", (unsigned long long)c->sregs.apic_base);
		return -EINVAL;
	}
	c->events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			  KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	if (c->events.exception_has_payload)
		c->events.flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
	(void)v;
	return 0;
}

#define STATE_MSR_TSC_DEADLINE 0x6e0

static int state_set_msrs(struct vcpu *v, const struct kvm_msr_entry *e, uint32_t n)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[STATE_NR_MSRS];
	} buf;
	int ret;

	if (!n)
		return 0;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = n;
	memcpy(buf.e, e, n * sizeof(*e));
	ret = sys__ioctl(v->fd, KVM_SET_MSRS, &buf);
	if (ret >= 0 && (uint32_t)ret != n) {
		state_bad("msr_index", "KVM refused MSR %#x", buf.e[ret].index);
		return -EINVAL;
	}
	return ret < 0 ? ret : 0;
}

static int state_cpu_apply(struct vcpu *v, struct state_cpu *c, size_t xs)
{
	int ret;

	ret = sys__ioctl(v->fd, KVM_SET_SREGS, &c->sregs);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_SET_REGS, &c->regs);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_SET_XSAVE, c->xsave);
	if (!ret && c->xcrs.nr_xcrs)
		ret = sys__ioctl(v->fd, KVM_SET_XCRS, &c->xcrs);
	/*
	 * The TSC deadline goes after the LAPIC: KVM drops a deadline written
	 * while the LAPIC timer is not in TSC-deadline mode (QEMU orders it so
	 * too), and a lost deadline is a guest without timer interrupts.
	 */
	if (!ret && c->msrs.hdr.nmsrs) {
		uint32_t i, n = 0;
		struct kvm_msr_entry deadline = { .index = 0 };

		for (i = 0; i < c->msrs.hdr.nmsrs; i++) {
			if (c->msrs.e[i].index == STATE_MSR_TSC_DEADLINE)
				deadline = c->msrs.e[i];
			else
				c->msrs.e[n++] = c->msrs.e[i];
		}
		c->msrs.hdr.nmsrs = n;
		ret = state_set_msrs(v, c->msrs.e, n);
		if (!ret)
			ret = sys__ioctl(v->fd, KVM_SET_LAPIC, &c->lapic);
		if (!ret && deadline.index)
			ret = state_set_msrs(v, &deadline, 1);
	} else if (!ret) {
		ret = sys__ioctl(v->fd, KVM_SET_LAPIC, &c->lapic);
	}
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_SET_VCPU_EVENTS, &c->events);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_SET_MP_STATE, &c->mp);
	if (!ret)
		ret = sys__ioctl(v->fd, KVM_SET_DEBUGREGS, &c->dbg);
	(void)xs;
	return ret;
}

static int state_cpu_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct vcpu *v = opaque;
	size_t xs = state_xsave_size(v->vm);
	struct state_cpu *c;
	int ret;

	(void)version;
	state_err[0] = 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->xsave = calloc(1, xs);
	if (!c->xsave) {
		free(c);
		return -ENOMEM;
	}
	ret = state_cpu_read(v, fdt, node, c, xs);
	if (!ret)
		ret = state_cpu_apply(v, c, xs);
	if (ret)
		log_err(STATE_LOG, "vCPU %u: %s", v->id,
			state_err[0] ? state_err : mig__field_error()[0] ? mig__field_error() : strerror(-ret));
	free(c->xsave);
	free(c);
	return ret;
}

static const struct mig_section_ops state_cpu_ops = {
	.save = state_cpu_save,
	.load = state_cpu_load,
};

/* --- "kvm-vm": the in-kernel PICs, IOAPIC, PIT and the kvmclock ---------------- */

/* the PIC's state: every field a byte */
static const struct state_field state_pic_fields[] = {
#define PIC_FIELD(f, m) STATE_FIELD(struct kvm_pic_state, f, m)
	PIC_FIELD(last_irr, 255), PIC_FIELD(irr, 255), PIC_FIELD(imr, 255), PIC_FIELD(isr, 255),
	PIC_FIELD(priority_add, 7), PIC_FIELD(irq_base, 255), PIC_FIELD(read_reg_select, 1),
	PIC_FIELD(poll, 1), PIC_FIELD(special_mask, 1), PIC_FIELD(init_state, 3),
	PIC_FIELD(auto_eoi, 1), PIC_FIELD(rotate_on_auto_eoi, 1),
	PIC_FIELD(special_fully_nested_mode, 1), PIC_FIELD(init4, 1), PIC_FIELD(elcr, 255),
	PIC_FIELD(elcr_mask, 255),
#undef PIC_FIELD
};

static int state_put_pic(void *fdt, const char *name, const struct kvm_pic_state *p)
{
	return state_put_fields(fdt, name, p, state_pic_fields, ARRAY_SIZE(state_pic_fields));
}

static int state_get_pic(const void *fdt, int parent, const char *name, struct kvm_pic_state *p)
{
	return state_get_fields(fdt, parent, name, p, state_pic_fields, ARRAY_SIZE(state_pic_fields));
}

/* a PIT channel, in KVM's own encodings (a channel never programmed says mode 255) */
static const struct state_field state_pit_fields[] = {
#define PIT_FIELD(f, m) STATE_FIELD(struct kvm_pit_channel_state, f, m)
	PIT_FIELD(count, 0x10000), PIT_FIELD(latched_count, 0xffff), PIT_FIELD(count_latched, 255),
	PIT_FIELD(status_latched, 255), PIT_FIELD(status, 255), PIT_FIELD(read_state, 255),
	PIT_FIELD(write_state, 255), PIT_FIELD(write_latch, 255), PIT_FIELD(rw_mode, 255),
	PIT_FIELD(mode, 255), PIT_FIELD(bcd, 255), PIT_FIELD(gate, 255),
	PIT_FIELD(count_load_time, 0),
#undef PIT_FIELD
};

static int state_put_pit(void *fdt, const char *name, const struct kvm_pit_channel_state *ch)
{
	return state_put_fields(fdt, name, ch, state_pit_fields, ARRAY_SIZE(state_pit_fields));
}

static int state_get_pit(const void *fdt, int parent, const char *name, struct kvm_pit_channel_state *ch)
{
	return state_get_fields(fdt, parent, name, ch, state_pit_fields, ARRAY_SIZE(state_pit_fields));
}

struct state_vm {
	struct kvm_irqchip pic[2], ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

static void state_vm_init(struct state_vm *s)
{
	memset(s, 0, sizeof(*s));
	s->pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
}

static int state_vm_save(void *opaque, void *fdt)
{
	struct vm *vm = opaque;
	struct state_vm s;
	uint64_t redir[KVM_IOAPIC_NUM_PINS];
	unsigned int i;
	int ret;

	state_vm_init(&s);
	ret = sys__ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic[0]);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic[1]);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.ioapic);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_GET_PIT2, &s.pit);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_GET_CLOCK, &s.clock);
	if (ret)
		return ret;
	PUT64(fdt, "ioapic_base", s.ioapic.chip.ioapic.base_address);
	PUT32(fdt, "ioapic_ioregsel", s.ioapic.chip.ioapic.ioregsel);
	PUT32(fdt, "ioapic_id", s.ioapic.chip.ioapic.id);
	PUT32(fdt, "ioapic_irr", s.ioapic.chip.ioapic.irr);
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		redir[i] = s.ioapic.chip.ioapic.redirtbl[i].bits;
	if (!ret)
		ret = state_put_u64s(fdt, "ioapic_redirtbl", redir, KVM_IOAPIC_NUM_PINS);
	PUT32(fdt, "pit_flags", s.pit.flags);
	PUT64(fdt, "kvmclock", s.clock.clock);
	/* subnodes after every property: the device-tree format's order */
	if (!ret)
		ret = state_put_pic(fdt, "pic-master", &s.pic[0].chip.pic);
	if (!ret)
		ret = state_put_pic(fdt, "pic-slave", &s.pic[1].chip.pic);
	for (i = 0; i < 3 && !ret; i++) {
		char n[8];

		snprintf(n, sizeof(n), "pit%u", i);
		ret = state_put_pit(fdt, n, &s.pit.channels[i]);
	}
	return ret;
}

static int state_vm_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct vm *vm = opaque;
	struct state_vm s;
	uint64_t redir[KVM_IOAPIC_NUM_PINS];
	unsigned int i;
	int ret;

	(void)version;
	state_err[0] = 0;
	state_vm_init(&s);
	ret = state_get_pic(fdt, node, "pic-master", &s.pic[0].chip.pic);
	if (!ret)
		ret = state_get_pic(fdt, node, "pic-slave", &s.pic[1].chip.pic);
	GET64(fdt, node, "ioapic_base", s.ioapic.chip.ioapic.base_address);
	GET32(fdt, node, "ioapic_ioregsel", s.ioapic.chip.ioapic.ioregsel, UINT32_MAX);
	GET32(fdt, node, "ioapic_id", s.ioapic.chip.ioapic.id, UINT32_MAX);
	GET32(fdt, node, "ioapic_irr", s.ioapic.chip.ioapic.irr, UINT32_MAX);
	if (!ret)
		ret = state_get_u64s(fdt, node, "ioapic_redirtbl", redir, KVM_IOAPIC_NUM_PINS);
	for (i = 0; i < 3 && !ret; i++) {
		char n[8];

		snprintf(n, sizeof(n), "pit%u", i);
		ret = state_get_pit(fdt, node, n, &s.pit.channels[i]);
	}
	GET32(fdt, node, "pit_flags", s.pit.flags, KVM_PIT_FLAGS_HPET_LEGACY);
	GET64(fdt, node, "kvmclock", s.clock.clock);
	if (!ret && s.ioapic.chip.ioapic.base_address != 0xfec00000ULL) {
		state_bad("ioapic_base", "%#llx: the IOAPIC lives at 0xfec00000",
			  (unsigned long long)s.ioapic.chip.ioapic.base_address);
		ret = -EINVAL;
	}
	if (ret) {
		log_err(STATE_LOG, "kvm-vm: %s",
			state_err[0] ? state_err : mig__field_error()[0] ? mig__field_error() : strerror(-ret));
		return ret;
	}
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		s.ioapic.chip.ioapic.redirtbl[i].bits = redir[i];
	ret = sys__ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.pic[0]);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.pic[1]);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s.ioapic);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_SET_PIT2, &s.pit);
	if (!ret)
		ret = sys__ioctl(vm->vm_fd, KVM_SET_CLOCK, &s.clock);
	return ret;
}

static const struct mig_section_ops state_vm_ops = {
	.save = state_vm_save,
	.load = state_vm_load,
};

int x86_state__register(struct vm *vm)
{
	unsigned int i;
	int ret;

	ret = mig__section_register(&vm->mig, "kvm-vm", 0, X86_STATE_VM_VERSION, 1, &state_vm_ops, vm);
	for (i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = mig__section_register(&vm->mig, "cpu", i, X86_STATE_CPU_VERSION, 1, &state_cpu_ops,
					    &vm->vcpus[i]);
	if (ret)
		x86_state__unregister(vm);
	return ret;
}

void x86_state__unregister(struct vm *vm)
{
	unsigned int i;

	(void)mig__section_unregister(&vm->mig, "kvm-vm", 0);
	for (i = 0; i < vm->nr_vcpus; i++)
		(void)mig__section_unregister(&vm->mig, "cpu", i);
}
