/*
 * sync_internal.h - internals shared by the files of src/sync.
 *
 * Layering (Go's own): sema_table.c is a sleep/wake-up primitive keyed by the
 * address of a uint32_t counter (Go's runtime/sema.go); mutex.c, rwmutex.c,
 * waitgroup.c and once.c keep their state in atomic words inside the user's
 * zeroed object and call sema_table.c only on the contended path. cond.c has
 * its own ticket list (Go's notifyList), weighted_sem.c (the public goro_sem)
 * its own FIFO of weighted waiters (golang.org/x/sync/semaphore). Every
 * waiter record lives on the waiting
 * goroutine's (or thread's) stack, so no object ever allocates.
 *
 * All of them block and wake only through goro__g_prepare_wait / goro__park /
 * goro__claim / goro__ready (runtime.h), so they work the same from goroutines
 * and from plain threads.
 */
#ifndef GORO_SYNC_INTERNAL_H
#define GORO_SYNC_INTERNAL_H

#include "../runtime/runtime.h"
#include "../runtime/waitprof.h"

/* The deadline argument of goro__park meaning "no deadline". */
#define GORO__SYNC_NO_DEADLINE ((int64_t)-1)

/* ------------------------------------------------------------- semaphores */

/* Blocks until *addr > 0, then decrements it (Go's semacquire1). `reason` is
   the goroutine's wait reason while parked. lifo: queue at the head of the
   waiters of addr (a mutex waiter that was woken and lost the race). */
GORO__HIDDEN void goro__semacquire(uint32_t *addr, int reason, bool lifo);
/* Increments *addr and wakes one waiter of addr if there is one (Go's
   semrelease1). handoff: pass the count directly to the woken waiter and
   yield to it (mutex starvation mode). */
GORO__HIDDEN void goro__semrelease(uint32_t *addr, bool handoff);

/* -------------------------------------------------------------- the mutex */

/* Layout of goro_mutex (Go's sync.Mutex). */
typedef struct goro__mutex {
    _Atomic int32_t state; /* locked | woken | starving | waiters << 3 */
    uint32_t sema;         /* goro__semacquire/semrelease counter */
} goro__mutex;

/* Lock with a given wait reason (rwmutex's writer lock uses its own). */
GORO__HIDDEN void goro__mutex_lock(goro__mutex *m, int reason);
GORO__HIDDEN void goro__mutex_unlock(goro__mutex *m);
GORO__HIDDEN bool goro__mutex_trylock(goro__mutex *m);

/* Active spinning for the mutex, as Go's sync_runtime_canSpin/doSpin. */
GORO__HIDDEN bool goro__sync_canspin(int iter);
GORO__HIDDEN void goro__sync_dospin(void);

/* ------------------------------------------------------------- contexts */

/* An extra reference to a context, for layers that keep one beyond their
   caller's call (e.g. in a goroutine they start); dropped with
   goro__ctx_unref, which does not cancel. Background is not counted. */
GORO__HIDDEN goro_ctx *goro__ctx_retain(goro_ctx *c);
GORO__HIDDEN void goro__ctx_unref(goro_ctx *c);

#endif
