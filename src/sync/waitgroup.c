/*
 * waitgroup.c - goro_waitgroup, Go's sync.WaitGroup.
 *
 * One atomic 64-bit state word: the counter in the high 32 bits, the number
 * of waiters in the low 32 bits; and a sema counter the waiters sleep on.
 *
 * Invariants: waiters > 0 only while counter > 0 (Wait returns at once when
 * the counter is 0). When an Add brings the counter to 0 with waiters, that
 * Add owns the word: it resets the whole state to 0 and releases the sema
 * exactly `waiters` times; nobody may Add or Wait concurrently with that
 * (Go's "misuse" panics detect it).
 */
#include "sync_internal.h"

typedef struct goro__waitgroup {
    _Atomic uint64_t state; /* counter << 32 | waiters */
    uint32_t sema;
} goro__waitgroup;

_Static_assert(sizeof(goro__waitgroup) <= sizeof(goro_waitgroup), "goro_waitgroup too small");
_Static_assert(_Alignof(goro__waitgroup) <= _Alignof(goro_waitgroup), "goro_waitgroup misaligned");

static inline goro__waitgroup *impl(goro_waitgroup *wg) { return (goro__waitgroup *)(void *)wg; }

void goro_waitgroup_add(goro_waitgroup *wgp, int delta) {
    goro__waitgroup *wg = impl(wgp);
    uint64_t state = atomic_fetch_add_explicit(&wg->state, (uint64_t)(int64_t)delta << 32,
                                               memory_order_acq_rel) +
                     ((uint64_t)(int64_t)delta << 32);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0) {
        /* Undo, so a recovered program keeps a consistent counter. */
        atomic_fetch_sub_explicit(&wg->state, (uint64_t)(int64_t)delta << 32, memory_order_relaxed);
        goro_panic("sync: negative WaitGroup counter");
    }
    if (w != 0 && delta > 0 && v == delta)
        goro_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return;
    /* Counter is 0 and there are waiters: nobody can change the state now
       but us (a concurrent Add or Wait would be misuse). */
    if (atomic_load_explicit(&wg->state, memory_order_relaxed) != state)
        goro_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    atomic_store_explicit(&wg->state, 0, memory_order_relaxed);
    for (; w != 0; w--)
        goro__semrelease(&wg->sema, false);
}

void goro_waitgroup_done(goro_waitgroup *wg) { goro_waitgroup_add(wg, -1); }

void goro_waitgroup_wait(goro_waitgroup *wgp) {
    goro__waitgroup *wg = impl(wgp);
    uint64_t state = atomic_load_explicit(&wg->state, memory_order_acquire);
    for (;;) {
        if ((int32_t)(state >> 32) == 0)
            return;
        /* Count ourselves as a waiter. */
        if (atomic_compare_exchange_weak_explicit(&wg->state, &state, state + 1,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            goro__semacquire(&wg->sema, GORO__WAIT_WAITGROUP, false);
            if (atomic_load_explicit(&wg->state, memory_order_acquire) != 0)
                goro_panic("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}
