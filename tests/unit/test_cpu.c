// SPDX-License-Identifier: MIT
/* CPUID filtering (pure) and x86_cpu__setup() on a real KVM vCPU when /dev/kvm is usable. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kvm_skip.h"
#include "vmm/x86/cpu.h"

#define NENT_MAX 64

struct cpuid_buf {
	struct kvm_cpuid2 c;
	struct kvm_cpuid_entry2 e[NENT_MAX];
};

static void add(struct cpuid_buf *b, uint32_t fn, uint32_t idx, bool sig_idx, uint32_t eax,
		uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	struct kvm_cpuid_entry2 *e = &b->e[b->c.nent++];

	cr_assert(b->c.nent + X86_CPUID_EXTRA_ENTRIES <= NENT_MAX);
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = sig_idx ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

/* roughly what KVM_GET_SUPPORTED_CPUID reports on an Intel host */
static void intel_host(struct cpuid_buf *b, uint32_t max_basic)
{
	memset(b, 0, sizeof(*b));
	add(b, 0, 0, false, max_basic, 0x756e6547, 0x6c65746e, 0x49656e69); /* GenuineIntel */
	add(b, 1, 0, false, 0x000906ea, 0x07100800, 0x7ffafbff, 0xbfebfbff);
	/* leaf 4: L1d, L1i, L2, L3, terminator; host says 8 cores, 16 threads share L3 */
	add(b, 4, 0, true, 0x1c004121, 0x01c0003f, 0x3f, 0);
	add(b, 4, 1, true, 0x1c004122, 0x01c0003f, 0x3f, 0);
	add(b, 4, 2, true, 0x1c004143, 0x00c0003f, 0x3ff, 0);
	add(b, 4, 3, true, 0x1c03c163, 0x03c0003f, 0x2fff, 6);
	add(b, 4, 4, true, 0, 0, 0, 0);
	add(b, 0xb, 0, true, 1, 2, 0x100, 7);
	add(b, 0xb, 1, true, 4, 16, 0x201, 7);
	add(b, 0xb, 2, true, 0, 0, 2, 7);
	if (max_basic >= 0x1f) {
		add(b, 0x1f, 0, true, 1, 2, 0x100, 7);
		add(b, 0x1f, 1, true, 4, 16, 0x201, 7);
		add(b, 0x1f, 2, true, 0, 0, 2, 7);
	}
	add(b, 0x40000000, 0, false, 0x40000001, 0, 0, 0);
	add(b, 0x40000001, 0, false, 0x01007afb, 0, 0, 0);
	add(b, 0x80000000, 0, false, 0x80000008, 0, 0, 0);
	add(b, 0x80000008, 0, false, 0x3027, 0, 0, 0);
}

static struct kvm_cpuid_entry2 *find(struct cpuid_buf *b, uint32_t fn, uint32_t idx)
{
	uint32_t i;

	for (i = 0; i < b->c.nent; i++)
		if (b->c.entries[i].function == fn && b->c.entries[i].index == idx)
			return &b->c.entries[i];
	return NULL;
}

static unsigned int count(struct cpuid_buf *b, uint32_t fn)
{
	unsigned int i, n = 0;

	for (i = 0; i < b->c.nent; i++)
		n += b->c.entries[i].function == fn;
	return n;
}

static void check_topology(struct cpuid_buf *b, uint32_t fn, unsigned int id, unsigned int nr,
			   unsigned int shift)
{
	struct kvm_cpuid_entry2 *e;

	cr_assert_eq(count(b, fn), 3, "leaf 0x%x: SMT, core, terminator", fn);
	e = find(b, fn, 0);
	cr_assert_not_null(e);
	cr_assert(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	cr_assert_eq(e->eax, 0, "no SMT bits");
	cr_assert_eq(e->ebx, 1, "one thread per core");
	cr_assert_eq(e->ecx, 0x100, "level 0, type SMT");
	cr_assert_eq(e->edx, id, "x2APIC id");
	e = find(b, fn, 1);
	cr_assert_not_null(e);
	cr_assert_eq(e->eax, shift);
	cr_assert_eq(e->ebx, nr, "logical processors in the package");
	cr_assert_eq(e->ecx, 0x201, "level 1, type core");
	cr_assert_eq(e->edx, id);
	e = find(b, fn, 2);
	cr_assert_not_null(e);
	cr_assert_eq(e->eax, 0);
	cr_assert_eq(e->ebx, 0);
	cr_assert_eq(e->ecx, 2, "invalid level ends the enumeration");
	cr_assert_eq(e->edx, id);
}

Test(cpuid, leaf1_apic_id_count_hypervisor)
{
	struct cpuid_buf b;
	struct kvm_cpuid_entry2 *e;

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 3, 6);
	e = find(&b, 1, 0);
	cr_assert_eq(e->ebx >> 24, 3, "initial APIC id");
	cr_assert_eq((e->ebx >> 16) & 0xff, 6, "logical processor count");
	cr_assert_eq(e->ebx & 0xffff, 0x0800, "CLFLUSH size and brand index kept");
	cr_assert(e->ecx & (1U << 31), "hypervisor bit");
	cr_assert_eq(e->ecx & 0x7fffffff, 0x7ffafbff, "other features untouched");
	cr_assert(e->edx & (1U << 28), "HTT with several logical processors");
	cr_assert_eq(e->eax, 0x000906ea);

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 0, 1);
	e = find(&b, 1, 0);
	cr_assert_eq(e->ebx >> 24, 0);
	cr_assert_eq((e->ebx >> 16) & 0xff, 1);
	cr_assert_eq(e->edx & (1U << 28), 0, "no HTT for one vCPU");
}

Test(cpuid, topology_leaves)
{
	struct cpuid_buf b;

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 5, 6);
	check_topology(&b, 0xb, 5, 6, 3);
	check_topology(&b, 0x1f, 5, 6, 3);

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 0, 1);
	check_topology(&b, 0xb, 0, 1, 0);

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 7, 8);
	check_topology(&b, 0xb, 7, 8, 3);
	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 200, 254);
	check_topology(&b, 0x1f, 200, 254, 8);
	cr_assert_eq(find(&b, 1, 0)->ebx >> 24, 200);
}

Test(cpuid, no_leaf_1f_below_max_basic)
{
	struct cpuid_buf b;

	intel_host(&b, 0x16);
	x86_cpu__filter_cpuid(&b.c, 1, 2);
	check_topology(&b, 0xb, 1, 2, 1);
	cr_assert_eq(count(&b, 0x1f), 0);

	intel_host(&b, 0xa);
	x86_cpu__filter_cpuid(&b.c, 1, 2);
	cr_assert_eq(count(&b, 0xb), 0, "leaf 0xB beyond the max basic leaf is dropped");
}

Test(cpuid, leaf4_cores)
{
	struct cpuid_buf b;
	unsigned int i;

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 2, 4);
	for (i = 0; i < 4; i++) {
		struct kvm_cpuid_entry2 *e = find(&b, 4, i);
		uint32_t level = (e->eax >> 5) & 7;

		cr_assert_eq(e->eax >> 26, 3, "subleaf %u: 4 cores per package", i);
		cr_assert_eq((e->eax >> 14) & 0xfff, level == 3 ? 3 : 0,
			     "subleaf %u (L%u) sharing", i, level);
		cr_assert_eq(e->eax & 0x3fff, 0x3fff & (i == 3 ? 0x1c03c163 : i == 2 ? 0x1c004143 :
						      i == 1 ? 0x1c004122 : 0x1c004121),
			     "cache type/level bits kept");
		cr_assert_eq(e->ebx, (i == 3 ? 0x03c0003fU : i == 2 ? 0x00c0003fU : 0x01c0003fU));
	}
	cr_assert_eq(find(&b, 4, 4)->eax, 0, "terminator untouched");
}

Test(cpuid, kvm_signature)
{
	struct cpuid_buf b;
	struct kvm_cpuid_entry2 *e;

	intel_host(&b, 0x1f);
	x86_cpu__filter_cpuid(&b.c, 0, 2);
	e = find(&b, 0x40000000, 0);
	cr_assert_eq(e->eax, 0x40000001);
	cr_assert(!memcmp(&e->ebx, "KVMK", 4));
	cr_assert(!memcmp(&e->ecx, "VMKV", 4));
	cr_assert(!memcmp(&e->edx, "M\0\0\0", 4));
	cr_assert_eq(find(&b, 0x40000001, 0)->eax, 0x01007afb, "KVM features as reported");
	cr_assert_eq(find(&b, 0x80000008, 0)->ecx, 0, "Intel: 0x80000008 ECX untouched");
}

Test(cpuid, amd_core_count)
{
	struct cpuid_buf b;
	struct kvm_cpuid_entry2 *e;

	intel_host(&b, 0x10);
	b.c.entries[0].ebx = 0x68747541; /* Auth */
	b.c.entries[0].edx = 0x69746e65; /* enti */
	b.c.entries[0].ecx = 0x444d4163; /* cAMD */
	add(&b, 0x8000001e, 0, false, 9, 0x100, 0x300, 0);
	x86_cpu__filter_cpuid(&b.c, 3, 5);
	e = find(&b, 0x80000008, 0);
	cr_assert_eq(e->ecx & 0xff, 4, "NC = cores - 1");
	cr_assert_eq((e->ecx >> 12) & 0xf, 3, "ApicIdSize");
	e = find(&b, 0x8000001e, 0);
	cr_assert_eq(e->eax, 3, "extended APIC id");
	cr_assert_eq(e->ebx, 3, "core id, one thread per core");
	cr_assert_eq(e->ecx, 0);
}

/* ---- real KVM ---- */

static int kvm_fd = -1, vm_fd = -1, vcpu_fd = -1;

static void kvm_open_vcpu(void)
{
	kvm_fd = kvm_open_or_skip();
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	cr_assert(vm_fd >= 0);
	cr_assert_eq(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 1);
	cr_assert(vcpu_fd >= 0);
}

static void kvm_close(void)
{
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
}

Test(cpu_kvm, setup_applies_state, .fini = kvm_close)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[3];
	} msrs;
	struct kvm_cpuid2 *c;
	struct kvm_lapic_state la;
	struct kvm_fpu fpu;
	struct kvm_xsave xs;
	uint32_t lvt0, lvt1, i, mxcsr;
	bool saw_leaf1 = false;

	kvm_open_vcpu();
	cr_assert_eq(x86_cpu__setup(kvm_fd, vcpu_fd, 2, 2), -EINVAL);
	cr_assert_eq(x86_cpu__setup(kvm_fd, vcpu_fd, 0, 0), -EINVAL);
	cr_assert_eq(x86_cpu__setup(kvm_fd, vcpu_fd, 1, 255), -EINVAL);
	cr_assert_eq(x86_cpu__setup(kvm_fd, vcpu_fd, 1, 2), 0);

	c = calloc(1, sizeof(*c) + 512 * sizeof(c->entries[0]));
	cr_assert_not_null(c);
	c->nent = 512;
	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_CPUID2, c), 0);
	for (i = 0; i < c->nent; i++) {
		if (c->entries[i].function == 1) {
			cr_assert_eq(c->entries[i].ebx >> 24, 1, "APIC id 1");
			cr_assert(c->entries[i].ecx & (1U << 31), "hypervisor bit");
			if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
				cr_assert(c->entries[i].ecx & (1U << 24),
					  "TSC-deadline timer offered when KVM emulates it");
			saw_leaf1 = true;
		}
		if (c->entries[i].function == 0xb && c->entries[i].index < 3)
			cr_assert_eq(c->entries[i].edx, 1, "x2APIC id");
	}
	cr_assert(saw_leaf1);
	free(c);

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 3;
	msrs.e[0].index = 0x1a0;
	msrs.e[1].index = 0x2ff;
	msrs.e[2].index = 0xc0000082;
	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_MSRS, &msrs), 3);
	cr_assert(msrs.e[0].data & 1, "fast strings");
	cr_assert_eq(msrs.e[1].data, 0x806, "MTRRs enabled, WB default");
	cr_assert_eq(msrs.e[2].data, 0);

	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_FPU, &fpu), 0);
	cr_assert_eq(fpu.fcw, 0x37f);
	/* some kernels leave kvm_fpu.mxcsr at 0 on GET: read it from the XSAVE image */
	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_XSAVE, &xs), 0);
	memcpy(&mxcsr, (const uint8_t *)xs.region + 24, 4);
	cr_assert_eq(mxcsr, 0x1f80);

	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_LAPIC, &la), 0);
	memcpy(&lvt0, &la.regs[0x350], 4);
	memcpy(&lvt1, &la.regs[0x360], 4);
	cr_assert_eq((lvt0 >> 8) & 7, 7, "LINT0 ExtINT");
	cr_assert_eq((lvt1 >> 8) & 7, 4, "LINT1 NMI");
}
