/* SPDX-License-Identifier: MIT */
/*
 * The x86 vCPU and VM state KVM holds, as migration sections
 * (migration/section.h, docs/migration.md):
 *
 *  - "cpu", instance N (one per vCPU), version 1: general registers,
 *    segment and control registers, the XSAVE area (FPU, SSE, AVX, ...),
 *    XCRs, the MSRs of x86_state__msrs (TSC and kvmclock among them), the
 *    local APIC's register page, pending events (exception, interrupt, NMI,
 *    SIPI, SMI), the MP state and the debug registers;
 *  - "kvm-vm", instance 0, version 1: the in-kernel PICs and IOAPIC, the
 *    PIT and the kvmclock.
 *
 * Every field is written by name; the two register pages whose layout the
 * hardware defines (the XSAVE area, the APIC page) go as byte fields of
 * their architectural size. A loader reads and checks every field before it
 * sets anything, and names the field it refuses. Save and load run with the
 * vCPUs out of KVM_RUN (paused, or not started yet).
 */
#ifndef MINIVMM_VMM_X86_STATE_H
#define MINIVMM_VMM_X86_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/util.h"

struct vm;

#define X86_STATE_CPU_VERSION 1
#define X86_STATE_VM_VERSION 1

/* registers the vCPUs' and the VM's sections in vm->mig (after kvm__vcpus_create) */
int x86_state__register(struct vm *vm) __must_check;
void x86_state__unregister(struct vm *vm);

/* the MSRs a "cpu" section carries (those KVM has are saved), for tests and docs */
extern const uint32_t x86_state__msrs[];
extern const size_t x86_state__nr_msrs;

#endif
