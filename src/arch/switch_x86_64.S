/*
 * switch_x86_64.S - goroutine context switch for the System V x86_64 ABI.
 *
 * Saves exactly what the ABI says a callee must preserve: rbx, rbp, r12-r15,
 * the stack pointer, and the control bits of MXCSR and the x87 control word.
 * Everything else is caller-saved, so the C caller has already spilled it.
 * Layout of the saved frame: see context.h.
 */
#if defined(__x86_64__)
	.text

/* void goro__ctx_switch(goro__ctx *from, goro__ctx *to) */
	.globl	goro__ctx_switch
	.hidden	goro__ctx_switch
	.type	goro__ctx_switch, @function
	.p2align 4
goro__ctx_switch:
	.cfi_startproc
	endbr64
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	goro__ctx_switch, .-goro__ctx_switch

/* First code a new goroutine runs: r12 = arg, r13 = fn (set by goro__ctx_make).
   The return address is marked undefined so every unwinder stops here. */
	.globl	goro__ctx_entry
	.hidden	goro__ctx_entry
	.type	goro__ctx_entry, @function
	.p2align 4
goro__ctx_entry:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	goro__ctx_entry, .-goro__ctx_entry
#endif
	.section .note.GNU-stack,"",@progbits
