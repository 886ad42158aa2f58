/*
 * switch_aarch64.S - goroutine context switch for AAPCS64.
 *
 * Saves exactly the callee-saved state: x19-x28, fp (x29), lr (x30), the low
 * halves d8-d15 of v8-v15, the stack pointer, and FPCR. Layout: context.h.
 */
#if defined(__aarch64__)
	.text

/* void goro__ctx_switch(goro__ctx *from, goro__ctx *to) */
	.globl	goro__ctx_switch
	.hidden	goro__ctx_switch
	.type	goro__ctx_switch, %function
	.p2align 4
goro__ctx_switch:
	.cfi_startproc
	hint	#34			/* bti c */
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.cfi_endproc
	.size	goro__ctx_switch, .-goro__ctx_switch

/* First code a new goroutine runs: x19 = fn, x20 = arg (set by goro__ctx_make). */
	.globl	goro__ctx_entry
	.hidden	goro__ctx_entry
	.type	goro__ctx_entry, %function
	.p2align 4
goro__ctx_entry:
	.cfi_startproc
	.cfi_undefined x30
	hint	#34
	mov	x29, #0
	mov	x0, x20
	blr	x19
	brk	#1
	.cfi_endproc
	.size	goro__ctx_entry, .-goro__ctx_entry
#endif
	.section .note.GNU-stack,"",%progbits
