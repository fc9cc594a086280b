/* SPDX-License-Identifier: MIT */
/*
 * Per-vCPU x86 state: CPUID (KVM's supported set, filtered for our topology:
 * one package, nr_vcpus cores, one thread each, APIC id == vCPU index), the
 * architectural MSRs a firmware would leave behind, FPU defaults and the
 * local APIC LINT0/LINT1 wiring (ExtINT / NMI).
 */
#ifndef MINIVMM_VMM_X86_CPU_H
#define MINIVMM_VMM_X86_CPU_H

#include <stdint.h>
#include "vmm/util.h"

struct kvm_cpuid2;

/* APIC ids are 8 bits in the MADT and CPUID.1:EBX; 0xFF is the broadcast id */
#define X86_CPU_MAX_VCPUS 254

/*
 * x86_cpu__filter_cpuid() replaces the 0xB/0x1F topology leaves with its own
 * entries and may therefore grow c->nent by up to this many: allocate room.
 */
#define X86_CPUID_EXTRA_ENTRIES 8

/* "KVMKVMKVM\0\0\0" */
#define X86_CPUID_KVM_SIGNATURE_EBX 0x4b4d564bU
#define X86_CPUID_KVM_SIGNATURE_ECX 0x564b4d56U
#define X86_CPUID_KVM_SIGNATURE_EDX 0x0000004dU

/* CPUID, MSRs, FPU and LAPIC LVTs for vCPU `id` of `nr_vcpus` (needs the in-kernel irqchip) */
int x86_cpu__setup(int kvm_fd, int vcpu_fd, unsigned int id, unsigned int nr_vcpus) __must_check;
/*
 * The guest's physical address width: CPUID 0x80000008 EAX[7:0] as KVM
 * passes it on (KVM_GET_SUPPORTED_CPUID), 36 when the leaf is missing.
 * -errno when KVM cannot be asked.
 */
int x86_cpu__phys_bits(int kvm_fd);

/*
 * Pure: adapts KVM_GET_SUPPORTED_CPUID output in place for vCPU `id`
 * (x2APIC/APIC ids, topology leaves 4/0xB/0x1F and AMD 0x80000008/0x8000001E,
 * logical processor count, hypervisor bit, KVM signature leaf).
 */
void x86_cpu__filter_cpuid(struct kvm_cpuid2 *c, unsigned int id, unsigned int nr_vcpus);
/* sets CPUID.1:ECX.TSC_DEADLINE (for hosts with KVM_CAP_TSC_DEADLINE_TIMER) */
void x86_cpu__set_tsc_deadline(struct kvm_cpuid2 *c);

#endif
