/*
 * pool_internal.h - what pool.c and limiter.c share.
 *
 * Both build on the runtime's park/ready protocol (runtime.h) rather than on
 * channels, so that one hand-off costs one park and one ready, and both are
 * bound by the same promise at close: when goro_pool_close / goro_limiter_close
 * (and goro_limiter_wait) return, none of their goroutines exists any more -
 * not "about to exit" but gone, with goro_count() already back down, so that
 * a leak check right after passes without retrying.
 *
 * How that is known: a worker goroutine records its own record and id
 * (goro__getg(), goro_id()) when it starts. Its very last action under the
 * owner's lock is to say it has finished; after that it only returns into the
 * runtime, which runs its defers, drops the live count (goro_count) and only
 * then marks the record DEAD (g.c: g_release before finish_exit). So the
 * closer, once told, waits until the record is DEAD or has been reused for a
 * newer goroutine (a different id): at that point the count has dropped.
 */
#ifndef GORO_POOL_INTERNAL_H
#define GORO_POOL_INTERNAL_H

#include "../runtime/runtime.h"

/* The deadline argument of goro__park meaning "no deadline". */
#define GORO__POOL_NO_DEADLINE ((int64_t)-1)

/* Wait reasons the pools park with. They are sync-style reasons (a pool is a
   synchronisation object, not a channel): a leak analysis must not read a
   channel out of these waits, and dumps still say what the goroutine does
   (its top frames are goro_pool_process, the worker loop, ...). */
#define GORO__POOL_WAIT_CALLER GORO__WAIT_SEMACQUIRE /* a caller waiting for a worker / result */
#define GORO__POOL_WAIT_IDLE GORO__WAIT_COND         /* an idle worker waiting for work */
#define GORO__POOL_WAIT_JOIN GORO__WAIT_WAITGROUP    /* set_size/close/wait joining workers */

/* True when the goroutine that ran with record g and id `id` has ended:
   goro_count no longer counts it. */
static inline bool goro__pool_g_gone(goro__g *g, uint64_t id) {
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire) & ~(uint32_t)GORO__G_SCAN;
    if (st == GORO__G_DEAD)
        return true;
    /* A reused record gets its new id before it leaves DEAD. */
    return __atomic_load_n(&g->id, __ATOMIC_RELAXED) != id;
}

/* Blocks (yielding, then sleeping with a growing back-off) until
   goro__pool_g_gone(g, id). Only called after the goroutine said it is
   finishing, so the wait is a few microseconds at most. */
GORO__HIDDEN void goro__pool_wait_gone(goro__g *g, uint64_t id);

#endif
