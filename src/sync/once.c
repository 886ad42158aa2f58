/*
 * once.c - goro_once, Go's sync.Once.
 *
 * done is set (release) only after fn returned, so the fast path (an acquire
 * load that sees 1) also sees everything fn wrote. Concurrent first callers
 * serialise on the mutex and wait until fn has finished, in state
 * sync.Mutex.Lock, as in Go.
 *
 * If fn panics in a goroutine that recovers (goro_opts.on_panic) or calls
 * goro_exit, the goroutine's defers run: once.c registers one for the
 * duration of fn that marks the Once done and unlocks the mutex, so, as in
 * Go, the Once counts as done and later callers neither run fn nor hang.
 * On a normal return that defer is unlinked again (it is the goroutine's own
 * list, only touched by the goroutine itself). A panic on a plain thread
 * ends the process, so nothing is needed there.
 */
#include "sync_internal.h"

#include <stdlib.h>

typedef struct goro__once {
    _Atomic uint32_t done;
    goro__mutex m;
} goro__once;

_Static_assert(sizeof(goro__once) <= sizeof(goro_once), "goro_once too small");
_Static_assert(_Alignof(goro__once) <= _Alignof(goro_once), "goro_once misaligned");

static void once_finish(void *arg) {
    goro__once *o = arg;
    atomic_store_explicit(&o->done, 1, memory_order_release);
    goro__mutex_unlock(&o->m);
}

static GORO__NOINLINE void do_slow(goro__once *o, void (*fn)(void *), void *arg) {
    goro__mutex_lock(&o->m, GORO__WAIT_MUTEX);
    if (atomic_load_explicit(&o->done, memory_order_relaxed) != 0) {
        goro__mutex_unlock(&o->m);
        return;
    }
    goro__g *g = goro__getg();
    if (g->is_thread) {
        fn(arg);
        once_finish(o);
        return;
    }
    /* Guard against fn not returning (a recovered panic, goro_exit). */
    goro_defer(once_finish, o);
    goro__defer *mine = g->defers;
    fn(arg);
    g = goro__getg();
    /* fn may have left defers of its own above ours: unlink ours wherever it is. */
    for (goro__defer **pp = &g->defers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == mine) {
            *pp = mine->next;
            free(mine);
            break;
        }
    }
    once_finish(o);
}

void goro_once_do(goro_once *op, void (*fn)(void *), void *arg) {
    goro__once *o = (goro__once *)(void *)op;
    if (GORO__LIKELY(atomic_load_explicit(&o->done, memory_order_acquire) != 0))
        return;
    do_slow(o, fn, arg);
}
