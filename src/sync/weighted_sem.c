/*
 * weighted_sem.c - goro_sem, a weighted semaphore with FIFO fairness, like
 * golang.org/x/sync/semaphore.Weighted.
 *
 * size is the capacity, set by goro_sem_init (x/sync's NewWeighted); cur is
 * the weight held. Unlike the other sync objects a zeroed goro_sem is not
 * ready to use: it has no capacity yet, and waiting on it would block
 * forever, so every call on a goro_sem that goro_sem_init never saw panics
 * ("sync: goro_sem used before goro_sem_init"). A negative weight panics too.
 *
 * Invariants (lock protects cur, the queue and the waiter records in it):
 *  - 0 <= cur <= size.
 *  - FIFO: a request is granted immediately only when it fits and nobody
 *    queues; release grants queued requests strictly in order and stops at
 *    the first that does not fit (a big request is never starved by a stream
 *    of small ones). try_acquire therefore fails while anyone queues.
 *  - a queued waiter has prepared its wait and parks with `lock` as the
 *    unlock argument; the releaser that grants it adds its weight to cur,
 *    unlinks, claims and readies it, all under the lock.
 *  - a request larger than size never queues (it could never be granted and
 *    would block everyone behind it): it blocks forever, as x/sync's Acquire
 *    does with a context that is never done.
 */
#include "sync_internal.h"
#include "../util/list.h"

#include <string.h>

typedef struct semwaiter {
    goro__g *g;
    int64_t n;
    goro__link link; /* in the queue (lock) */
} semwaiter;

typedef struct goro__sem {
    int64_t size;
    int64_t cur;
    goro__lock lock;
    uint32_t magic;   /* SEM_MAGIC once goro_sem_init ran; 0 in a zeroed goro_sem */
    goro__list queue; /* semwaiter by link, FIFO */
} goro__sem;

#define SEM_MAGIC 0x73656d31u /* "sem1" */

_Static_assert(sizeof(goro__sem) <= sizeof(goro_sem), "goro_sem too small");
_Static_assert(_Alignof(goro__sem) <= _Alignof(goro_sem), "goro_sem misaligned");

static inline goro__sem *impl(goro_sem *s) { return (goro__sem *)(void *)s; }

static void noop_unlock(void *arg) { (void)arg; }

void goro_sem_init(goro_sem *sp, int64_t n) {
    if (sp == NULL)
        goro_panic("sync: goro_sem_init of a NULL goro_sem");
    goro__sem *s = impl(sp);
    if (n < 0)
        goro_panic("sync: goro_sem_init with negative capacity %lld", (long long)n);
    memset(s, 0, sizeof *s);
    s->size = n;
    s->magic = SEM_MAGIC;
}

/* The misuse checks of every call: Go-style panics naming the call. */
static goro__sem *checked(goro_sem *sp, int64_t n, const char *call) {
    if (sp == NULL)
        goro_panic("sync: %s of a NULL goro_sem", call);
    goro__sem *s = impl(sp);
    if (s->magic != SEM_MAGIC)
        goro_panic("sync: %s: goro_sem used before goro_sem_init", call);
    if (n < 0)
        goro_panic("sync: %s with negative weight %lld", call, (long long)n);
    return s;
}

/* Grants queued requests in order while they fit (lock held). */
static void notify_waiters(goro__sem *s) {
    semwaiter *w;
    while ((w = goro__list_entry(s->queue.first, semwaiter, link)) != NULL) {
        if (s->size - s->cur < w->n)
            break; /* not enough for the first: everyone behind it waits too */
        s->cur += w->n;
        goro__list_remove(&s->queue, &w->link);
        goro__g *g = w->g;
        if (!goro__claim(g))
            goro__throw("semaphore: waiter claimed twice");
        goro__ready(g); /* w is gone from here on */
    }
}

void goro_sem_acquire(goro_sem *sp, int64_t n) {
    goro__sem *s = checked(sp, n, "goro_sem_acquire");
    goro__lock_acquire(&s->lock);
    if (s->size - s->cur >= n && goro__list_empty(&s->queue)) {
        s->cur += n;
        goro__lock_release(&s->lock);
        return;
    }
    goro__g *g = goro__getg();
    if (n > s->size) {
        /* Doomed: do not make later requests wait behind it. */
        goro__lock_release(&s->lock);
        for (;;) {
            goro__g_prepare_wait(g);
            goro__park(GORO__WAIT_SEMACQUIRE, s, noop_unlock, NULL, GORO__SYNC_NO_DEADLINE);
            g = goro__getg();
        }
    }
    semwaiter w = {.g = g, .n = n};
    goro__g_prepare_wait(g);
    goro__list_push_back(&s->queue, &w.link);
    /* Granted (cur already includes n) when this returns. */
    int64_t t0 = goro__blockprof_begin();
    goro__park(GORO__WAIT_SEMACQUIRE, s, goro__lock_release_v, &s->lock, GORO__SYNC_NO_DEADLINE);
    goro__blockprof_end(t0);
}

bool goro_sem_try_acquire(goro_sem *sp, int64_t n) {
    goro__sem *s = checked(sp, n, "goro_sem_try_acquire");
    goro__lock_acquire(&s->lock);
    bool ok = s->size - s->cur >= n && goro__list_empty(&s->queue);
    if (ok)
        s->cur += n;
    goro__lock_release(&s->lock);
    return ok;
}

void goro_sem_release(goro_sem *sp, int64_t n) {
    goro__sem *s = checked(sp, n, "goro_sem_release");
    goro__lock_acquire(&s->lock);
    if (s->cur - n < 0) {
        goro__lock_release(&s->lock);
        goro_panic("semaphore: released more than held");
    }
    s->cur -= n;
    notify_waiters(s);
    goro__lock_release(&s->lock);
}
