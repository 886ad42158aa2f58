/*
 * context.c - building the first saved frame of a new goroutine.
 *
 * A new context looks exactly like one that goro__ctx_switch saved, so the
 * first switch to it "returns" into goro__ctx_entry with fn and arg in
 * callee-saved registers and the default FP control words loaded.
 */
#include "context.h"

#include <string.h>

void goro__ctx_make(goro__ctx *ctx, void *stack_hi, void (*fn)(void *), void *arg) {
    uintptr_t top = (uintptr_t)stack_hi & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* After `ret` pops the entry address, rsp = top - 16 must be 16-aligned so
       the `call` in goro__ctx_entry leaves fn's frame ABI-aligned. */
    uintptr_t *f = (uintptr_t *)(top - 16 - GORO__CTX_FRAME_SIZE);
    memset(f, 0, GORO__CTX_FRAME_SIZE);
    uint32_t mxcsr = 0x1f80; /* default: all exceptions masked, round-nearest */
    uint16_t fpcw = 0x037f;  /* default x87 control word */
    memcpy((char *)f + 0, &mxcsr, 4);
    memcpy((char *)f + 4, &fpcw, 2);
    f[4] = (uintptr_t)arg;             /* r12 */
    f[3] = (uintptr_t)fn;              /* r13 */
    f[7] = (uintptr_t)goro__ctx_entry; /* return address */
    ctx->sp = f;
#elif defined(__aarch64__)
    uintptr_t *f = (uintptr_t *)(top - GORO__CTX_FRAME_SIZE);
    memset(f, 0, GORO__CTX_FRAME_SIZE);
    f[0] = (uintptr_t)fn;               /* x19 */
    f[1] = (uintptr_t)arg;              /* x20 */
    f[11] = (uintptr_t)goro__ctx_entry; /* x30 */
    ctx->sp = f;
#endif
}
