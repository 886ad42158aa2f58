/*
 * rwmutex.c - goro_rwmutex, Go's sync.RWMutex.
 *
 * Fields (all in the user's zeroed object):
 *   w            a goro__mutex held by the writer (and by writers queued
 *                behind it): writers exclude each other there first.
 *   reader_count readers holding or waiting; a writer subtracts MAX_READERS
 *                so the count goes negative: "a writer is pending". New
 *                readers that see a negative count sleep on reader_sem.
 *   reader_wait  readers the pending writer still waits for (those that held
 *                the lock when it announced itself). The last of them wakes
 *                the writer through writer_sem.
 *
 * So a waiting writer blocks new readers (writers are not starved), and at
 * the writer's unlock every reader that queued meanwhile is released at once
 * (they went first, so readers are not starved either).
 *
 * Invariants: reader_count >= -MAX_READERS; reader_count < 0 exactly while a
 * writer holds w and has announced itself; reader_wait is only non-zero while
 * that writer waits for departing readers.
 */
#include "sync_internal.h"

#define RWMUTEX_MAX_READERS (1 << 30)

typedef struct goro__rwmutex {
    goro__mutex w;
    uint32_t writer_sem;
    uint32_t reader_sem;
    _Atomic int32_t reader_count;
    _Atomic int32_t reader_wait;
} goro__rwmutex;

_Static_assert(sizeof(goro__rwmutex) <= sizeof(goro_rwmutex), "goro_rwmutex too small");
_Static_assert(_Alignof(goro__rwmutex) <= _Alignof(goro_rwmutex), "goro_rwmutex misaligned");

static inline goro__rwmutex *impl(goro_rwmutex *m) { return (goro__rwmutex *)(void *)m; }

void goro_rwmutex_rlock(goro_rwmutex *m) {
    goro__rwmutex *rw = impl(m);
    if (atomic_fetch_add_explicit(&rw->reader_count, 1, memory_order_acquire) + 1 < 0)
        /* A writer is pending: wait for its unlock. */
        goro__semacquire(&rw->reader_sem, GORO__WAIT_RWMUTEX_R, false);
}

void goro_rwmutex_runlock(goro_rwmutex *m) {
    goro__rwmutex *rw = impl(m);
    int32_t r = atomic_fetch_sub_explicit(&rw->reader_count, 1, memory_order_release) - 1;
    if (GORO__LIKELY(r >= 0))
        return;
    if (r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS) {
        atomic_fetch_add_explicit(&rw->reader_count, 1, memory_order_relaxed);
        goro_panic("sync: RUnlock of unlocked RWMutex");
    }
    /* A writer is pending; the last departing reader wakes it. */
    if (atomic_fetch_sub_explicit(&rw->reader_wait, 1, memory_order_acq_rel) - 1 == 0)
        goro__semrelease(&rw->writer_sem, false);
}

void goro_rwmutex_lock(goro_rwmutex *m) {
    goro__rwmutex *rw = impl(m);
    /* First resolve competition with other writers. (Go shows a writer queued
       here as sync.Mutex.Lock; we show what the caller called.) */
    goro__mutex_lock(&rw->w, GORO__WAIT_RWMUTEX_W);
    /* Announce the pending writer to readers. */
    int32_t r =
        atomic_fetch_sub_explicit(&rw->reader_count, RWMUTEX_MAX_READERS, memory_order_acq_rel);
    /* Wait for the readers that hold the lock. */
    if (r != 0 && atomic_fetch_add_explicit(&rw->reader_wait, r, memory_order_acq_rel) + r != 0)
        goro__semacquire(&rw->writer_sem, GORO__WAIT_RWMUTEX_W, false);
}

void goro_rwmutex_unlock(goro_rwmutex *m) {
    goro__rwmutex *rw = impl(m);
    /* Announce to readers there is no active writer. */
    int32_t r =
        atomic_fetch_add_explicit(&rw->reader_count, RWMUTEX_MAX_READERS, memory_order_acq_rel) +
        RWMUTEX_MAX_READERS;
    if (r >= RWMUTEX_MAX_READERS) {
        atomic_fetch_sub_explicit(&rw->reader_count, RWMUTEX_MAX_READERS, memory_order_relaxed);
        goro_panic("sync: Unlock of unlocked RWMutex");
    }
    /* Unblock the readers that queued behind us. */
    for (int32_t i = 0; i < r; i++)
        goro__semrelease(&rw->reader_sem, false);
    /* Allow other writers to proceed. */
    goro__mutex_unlock(&rw->w);
}
