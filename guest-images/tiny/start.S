/* SPDX-License-Identifier: MIT */
/*
 * Entry of the tiny guests. The VMM enters here in 64-bit mode with the first
 * 4 GiB identity mapped, interrupts off, RSI = &boot_params and no stack.
 * We set a stack, load our own GDT (so IDT gates can name selector 0x10 no
 * matter what the VMM's GDT holds), zero .bss, call main(boot_params) and
 * hand its return value to the test device's exit port.
 */
	.section .text.start, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	lea	stack_top(%rip), %rsp
	mov	%rsi, %r12

	lgdt	gdt_desc(%rip)
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	lea	1f(%rip), %rax
	pushq	$0x10
	push	%rax
	lretq
1:
	/* zero .bss (it holds the stack, which is empty right now) */
	lea	__bss_start(%rip), %rdi
	lea	__bss_end(%rip), %rcx
	sub	%rdi, %rcx
	shr	$3, %rcx
	xor	%eax, %eax
	rep stosq
	lea	stack_top(%rip), %rsp

	mov	%r12, %rdi
	mov	%r12, boot_params(%rip)
	call	main
	mov	%eax, %edi
	call	guest_exit
2:	cli
	hlt
	jmp	2b

	.section .data
	.balign 16
gdt:
	.quad	0
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: data */
gdt_end:
	.balign 8
	.word	0
	.word	0
	.word	0
gdt_desc:
	.word	gdt_end - gdt - 1
	.quad	gdt

	.section .bss
	.balign 4096
stack:
	.skip	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
