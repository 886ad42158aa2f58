/*
 * context.h - the saved execution context of a goroutine, per CPU.
 *
 * goro__ctx_switch(from, to) pushes the callee-saved registers and the FP
 * control words on the current stack, stores the stack pointer in *from, loads
 * to->sp and pops the same frame from there. A parked goroutine is therefore
 * fully described by one word, its saved stack pointer; the layout below is
 * what the unwinder (src/observe) reads to start a walk from a parked stack.
 *
 * x86_64 frame at sp (low to high):
 *   +0  MXCSR (4 bytes), x87 control word (2 bytes), pad (2)
 *   +8  r15   +16 r14   +24 r13   +32 r12   +40 rbx   +48 rbp
 *   +56 return address (rip)               sp after return = sp + 64
 *
 * aarch64 frame at sp (low to high, 176 bytes):
 *   +0 x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 (+72)
 *   +80 x29 (fp)  +88 x30 (lr = resume pc)
 *   +96 d8 .. d15 (+152)   +160 FPCR   +168 pad     sp after return = sp + 176
 */
#ifndef GORO_ARCH_CONTEXT_H
#define GORO_ARCH_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct goro__ctx {
    void *sp;
} goro__ctx;

/* Saves the current context into *from and resumes *to. Returns when some
   other context switches back to *from. Implemented in switch_<arch>.S. */
void goro__ctx_switch(goro__ctx *from, goro__ctx *to);

/* Prepares *ctx so that switching to it calls fn(arg) on the stack whose
   highest address is stack_hi. fn must never return. */
void goro__ctx_make(goro__ctx *ctx, void *stack_hi, void (*fn)(void *), void *arg);

/* Where a context made by goro__ctx_make first resumes (switch_<arch>.S):
   it calls fn(arg). Its address is the resume pc of a goroutine that has
   not started yet (the unwinder stops there). */
void goro__ctx_entry(void);

#if defined(__x86_64__)
#define GORO__CTX_FRAME_SIZE 64
#define GORO__CTX_OFF_PC 56
#define GORO__CTX_OFF_FP 48
#elif defined(__aarch64__)
#define GORO__CTX_FRAME_SIZE 176
#define GORO__CTX_OFF_PC 88
#define GORO__CTX_OFF_FP 80
#else
#error "goro supports x86_64 and aarch64"
#endif

/* Registers of a parked goroutine, as the unwinder needs them. */
static inline uintptr_t goro__ctx_pc(const goro__ctx *c) {
    return *(const uintptr_t *)((const char *)c->sp + GORO__CTX_OFF_PC);
}
static inline uintptr_t goro__ctx_fp(const goro__ctx *c) {
    return *(const uintptr_t *)((const char *)c->sp + GORO__CTX_OFF_FP);
}
static inline uintptr_t goro__ctx_resume_sp(const goro__ctx *c) {
    return (uintptr_t)c->sp + GORO__CTX_FRAME_SIZE;
}

#endif
