/* SPDX-License-Identifier: MIT */
/*
 * What a guest's vCPUs and interrupt controllers are doing right now, for a
 * person or a lab script looking at a guest that went silent: each vCPU's
 * run state, registers, pending events and local APIC (the vectors it holds
 * in IRR and ISR, its TPR/PPR and timer), and the in-kernel IOAPIC's unmasked
 * pins. `ctl SOCK cpu-state` and SIGUSR2 (vmm/main.c) read it; QEMU's
 * `info registers` and `info lapic` are the model.
 */
#ifndef MINIVMM_VMM_X86_INSPECT_H
#define MINIVMM_VMM_X86_INSPECT_H

#include <jansson.h>
#include <stdint.h>

#include "vmm/util.h"

struct vm;
struct kvm_lapic_state;
struct kvm_ioapic_state;

/*
 * The state of every vCPU and of the IOAPIC in *out ({"vcpus": [...],
 * "ioapic": {...}}). The vCPUs must be parked (kvm__vcpus_pause) or not
 * started: a vCPU inside KVM_RUN holds its fd's mutex. 0 or -errno.
 */
int x86_inspect__vm(struct vm *vm, json_t **out) __must_check;

/* pure decoders, unit-tested */
json_t *x86_inspect__lapic(const struct kvm_lapic_state *l);
json_t *x86_inspect__ioapic(const struct kvm_ioapic_state *s);
const char *x86_inspect__mp_state_name(uint32_t mp_state);

#endif
