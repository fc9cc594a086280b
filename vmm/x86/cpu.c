// SPDX-License-Identifier: MIT
/*
 * Per-vCPU x86 setup: CPUID, MSRs, FPU and LAPIC.
 *
 * Topology presented to the guest: one package, nr_vcpus cores, one thread
 * per core, initial APIC id == x2APIC id == vCPU index. CPUID leaves 1, 4,
 * 0xB and 0x1F (and 0x80000008/0x8000001E on AMD) are rewritten to say so;
 * everything else is what KVM_GET_SUPPORTED_CPUID reports.
 */
#include "vmm/x86/cpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "vmm/log.h"
#include "vmm/sys.h"

#define CPU_PREFIX "cpu"

#define CPUID_1_ECX_HYPERVISOR (1U << 31)
#define CPUID_1_EDX_HTT (1U << 28)
#define CPUID_KVM_SIGNATURE_LEAF 0x40000000U
#define CPUID_KVM_FEATURES_LEAF 0x40000001U
#define CPUID_TOPO_SMT 1
#define CPUID_TOPO_CORE 2

#define MSR_IA32_TSC 0x00000010
#define MSR_IA32_SYSENTER_CS 0x00000174
#define MSR_IA32_SYSENTER_ESP 0x00000175
#define MSR_IA32_SYSENTER_EIP 0x00000176
#define MSR_IA32_MISC_ENABLE 0x000001a0
#define MSR_MTRR_DEF_TYPE 0x000002ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING (1ULL << 0)
#define MTRR_DEF_TYPE_E (1ULL << 11)
#define MTRR_TYPE_WB 6ULL

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_DM_MASK 0x700U
#define APIC_DM_NMI 0x400U
#define APIC_DM_EXTINT 0x700U

#define CPUID_MAX_NENT 4096

static unsigned int cpu_order(unsigned int n)
{
	unsigned int s = 0;

	while ((1U << s) < n)
		s++;
	return s;
}

static struct kvm_cpuid_entry2 *cpu_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != fn)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != idx)
			continue;
		return e;
	}
	return NULL;
}

static void cpu_remove_leaf(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t i, j = 0;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

/* extended topology leaf (0xB or 0x1F): SMT level, core level, terminator */
static void cpu_add_topology(struct kvm_cpuid2 *c, uint32_t fn, unsigned int id,
			     unsigned int nr_vcpus)
{
	const struct {
		uint32_t eax, ebx, type;
	} lvl[3] = {
		{ 0, 1, CPUID_TOPO_SMT },
		{ cpu_order(nr_vcpus), nr_vcpus, CPUID_TOPO_CORE },
		{ 0, 0, 0 },
	};
	uint32_t i;

	cpu_remove_leaf(c, fn);
	for (i = 0; i < ARRAY_SIZE(lvl); i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

		memset(e, 0, sizeof(*e));
		e->function = fn;
		e->index = i;
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->eax = lvl[i].eax;
		e->ebx = lvl[i].ebx;
		e->ecx = i | lvl[i].type << 8;
		e->edx = id;
	}
}

static bool cpu_is_amd(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpu_find(c, 0, 0);

	/* "AuthenticAMD" / "HygonGenuine": EBX "Auth" / "Hygo" */
	return e && (e->ebx == 0x68747541U || e->ebx == 0x6f677948U);
}

void x86_cpu__filter_cpuid(struct kvm_cpuid2 *c, unsigned int id, unsigned int nr_vcpus)
{
	unsigned int shift = cpu_order(nr_vcpus);
	uint32_t max_basic = 0, i;
	struct kvm_cpuid_entry2 *e;

	if (!nr_vcpus)
		nr_vcpus = 1;
	e = cpu_find(c, 0, 0);
	if (e)
		max_basic = e->eax;

	e = cpu_find(c, 1, 0);
	if (e) {
		e->ebx = (e->ebx & 0x0000ffffU) | (MIN(nr_vcpus, 255U) << 16) | ((id & 0xffU) << 24);
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (nr_vcpus > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
	}

	/* deterministic cache parameters: L1/L2 per core, L3 per package */
	for (i = 0; i < c->nent; i++) {
		uint32_t level, sharing, cores;

		e = &c->entries[i];
		if (e->function != 4 || !(e->eax & 0x1f))
			continue;
		level = (e->eax >> 5) & 0x7;
		cores = MIN((1U << shift) - 1, 63U);
		sharing = level >= 3 ? (1U << shift) - 1 : 0;
		e->eax &= ~(0xfc000000U | 0x03ffc000U);
		e->eax |= cores << 26 | (sharing & 0xfff) << 14;
	}

	if (max_basic >= 0xb)
		cpu_add_topology(c, 0xb, id, nr_vcpus);
	else
		cpu_remove_leaf(c, 0xb);
	if (max_basic >= 0x1f)
		cpu_add_topology(c, 0x1f, id, nr_vcpus);
	else
		cpu_remove_leaf(c, 0x1f);

	e = cpu_find(c, CPUID_KVM_SIGNATURE_LEAF, 0);
	if (e) {
		e->ebx = X86_CPUID_KVM_SIGNATURE_EBX;
		e->ecx = X86_CPUID_KVM_SIGNATURE_ECX;
		e->edx = X86_CPUID_KVM_SIGNATURE_EDX;
		if (e->eax < CPUID_KVM_FEATURES_LEAF && cpu_find(c, CPUID_KVM_FEATURES_LEAF, 0))
			e->eax = CPUID_KVM_FEATURES_LEAF;
	}

	if (cpu_is_amd(c)) {
		e = cpu_find(c, 0x80000008U, 0);
		if (e)
			e->ecx = (e->ecx & ~0xf0ffU) | (shift & 0xf) << 12 | ((nr_vcpus - 1) & 0xff);
		e = cpu_find(c, 0x8000001eU, 0);
		if (e) {
			e->eax = id;            /* extended APIC id */
			e->ebx = id & 0xff;     /* core id, one thread per core */
			e->ecx = 0;             /* node 0, one node */
			e->edx = 0;
		}
	}
}

static struct kvm_cpuid2 *cpu_alloc_cpuid(uint32_t nent)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) + (nent + X86_CPUID_EXTRA_ENTRIES) * sizeof(c->entries[0]));
	if (c)
		c->nent = nent;
	return c;
}

void x86_cpu__set_tsc_deadline(struct kvm_cpuid2 *c)
{
	uint32_t i;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 24; /* CPUID.1:ECX.TSC_DEADLINE */
}

static int cpu_setup_cpuid(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr_vcpus)
{
	struct kvm_cpuid2 *c;
	uint32_t nent = 128;
	int ret;

	for (;;) {
		c = cpu_alloc_cpuid(nent);
		if (!c)
			return -ENOMEM;
		ret = sys__ioctl_raw(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (ret != -E2BIG || nent >= CPUID_MAX_NENT)
			break;
		free(c);
		nent *= 2;
	}
	if (ret < 0) {
		log_err(CPU_PREFIX, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
		goto err_free;
	}
	x86_cpu__filter_cpuid(c, id, nr_vcpus);
	/*
	 * The in-kernel LAPIC emulates the TSC-deadline timer, but KVM leaves
	 * the CPUID bit to userspace: offer it when KVM says it can (Linux then
	 * programs one MSR per timer event instead of TMICT/TDCR).
	 */
	if (sys__ioctl_raw(kvm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		x86_cpu__set_tsc_deadline(c);
	ret = sys__ioctl(vcpu_fd, KVM_SET_CPUID2, c);
	if (ret > 0)
		ret = 0;
err_free:
	free(c);
	return ret;
}

static int cpu_setup_msrs(int vcpu_fd)
{
	static const struct {
		uint32_t index;
		uint64_t data;
		const char *name;
	} msrs[] = {
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING, "IA32_MISC_ENABLE" },
		{ MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_E | MTRR_TYPE_WB, "IA32_MTRR_DEF_TYPE" },
		{ MSR_IA32_SYSENTER_CS, 0, "IA32_SYSENTER_CS" },
		{ MSR_IA32_SYSENTER_ESP, 0, "IA32_SYSENTER_ESP" },
		{ MSR_IA32_SYSENTER_EIP, 0, "IA32_SYSENTER_EIP" },
		{ MSR_STAR, 0, "STAR" },
		{ MSR_LSTAR, 0, "LSTAR" },
		{ MSR_CSTAR, 0, "CSTAR" },
		{ MSR_SYSCALL_MASK, 0, "SYSCALL_MASK" },
		{ MSR_KERNEL_GS_BASE, 0, "KERNEL_GS_BASE" },
		{ MSR_IA32_TSC, 0, "IA32_TSC" },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(msrs)];
	} buf;
	unsigned int i;
	int ret;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = ARRAY_SIZE(msrs);
	for (i = 0; i < ARRAY_SIZE(msrs); i++) {
		buf.e[i].index = msrs[i].index;
		buf.e[i].data = msrs[i].data;
	}
	ret = sys__ioctl(vcpu_fd, KVM_SET_MSRS, &buf);
	if (ret < 0)
		return ret;
	if ((unsigned int)ret != ARRAY_SIZE(msrs)) {
		log_err(CPU_PREFIX, "KVM refused MSR %s (0x%x)", msrs[ret].name, msrs[ret].index);
		return -EINVAL;
	}
	return 0;
}

static int cpu_setup_fpu(int vcpu_fd)
{
	struct kvm_fpu fpu;
	int ret;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	ret = sys__ioctl(vcpu_fd, KVM_SET_FPU, &fpu);
	return ret < 0 ? ret : 0;
}

static uint32_t cpu_lapic_rd(const struct kvm_lapic_state *la, unsigned int off)
{
	uint32_t v;

	memcpy(&v, &la->regs[off], sizeof(v));
	return v;
}

static void cpu_lapic_wr(struct kvm_lapic_state *la, unsigned int off, uint32_t v)
{
	memcpy(&la->regs[off], &v, sizeof(v));
}

static int cpu_setup_lapic(int vcpu_fd)
{
	struct kvm_lapic_state la;
	int ret;

	ret = sys__ioctl(vcpu_fd, KVM_GET_LAPIC, &la);
	if (ret < 0)
		return ret;
	cpu_lapic_wr(&la, APIC_LVT0, (cpu_lapic_rd(&la, APIC_LVT0) & ~APIC_DM_MASK) | APIC_DM_EXTINT);
	cpu_lapic_wr(&la, APIC_LVT1, (cpu_lapic_rd(&la, APIC_LVT1) & ~APIC_DM_MASK) | APIC_DM_NMI);
	ret = sys__ioctl(vcpu_fd, KVM_SET_LAPIC, &la);
	return ret < 0 ? ret : 0;
}

int x86_cpu__setup(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr_vcpus)
{
	int ret;

	if (!nr_vcpus || id >= nr_vcpus || nr_vcpus > X86_CPU_MAX_VCPUS) {
		log_err(CPU_PREFIX, "vCPU %u of %u: unsupported (at most %u vCPUs)", id, nr_vcpus,
			X86_CPU_MAX_VCPUS);
		return -EINVAL;
	}
	ret = cpu_setup_cpuid(kvm_fd, vcpu_fd, id, nr_vcpus);
	if (ret)
		return ret;
	ret = cpu_setup_msrs(vcpu_fd);
	if (ret)
		return ret;
	ret = cpu_setup_fpu(vcpu_fd);
	if (ret)
		return ret;
	return cpu_setup_lapic(vcpu_fd);
}

int x86_cpu__phys_bits(int kvm_fd)
{
	struct kvm_cpuid2 *c = NULL;
	struct kvm_cpuid_entry2 *e;
	uint32_t nent = 64;
	int ret;

	for (;;) {
		free(c);
		c = cpu_alloc_cpuid(nent);
		if (!c)
			return -ENOMEM;
		ret = sys__ioctl_raw(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (ret != -E2BIG || nent >= 4096)
			break;
		nent *= 2;
	}
	if (ret < 0) {
		free(c);
		return ret;
	}
	e = cpu_find(c, 0x80000008U, 0);
	ret = e && (e->eax & 0xff) >= 32 ? (int)(e->eax & 0xff) : 36;
	free(c);
	return ret;
}
