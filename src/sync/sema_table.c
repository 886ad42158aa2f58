/*
 * sema_table.c - sleep and wake-up keyed by the address of a counter (Go's
 * runtime/sema.go, after Mullender and Cox, "Semaphores in Plan 9").
 *
 * These are not semaphores for users: they are how mutex, rwmutex and
 * waitgroup sleep on their contended path, such that every sleep is paired
 * with exactly one wake-up even when the wake-up (semrelease) comes before
 * the sleep (semacquire): the count in *addr remembers it.
 *
 * Data: a fixed table of SEMTAB_SIZE roots, chosen by hashing addr. A root
 * holds, under root->lock, a list of "heads" - one waiter per distinct
 * address with sleepers - and each head a FIFO list (`others`) of the other
 * waiters on the same address. Go keeps the heads in a treap; we
 * keep a list, which is short because the table is large (1021 roots) and
 * only addresses with sleepers are in it.
 *
 * Invariants (root->lock protects the lists and each listed record):
 *  - root->nwait >= the number of waiters queued in the root. A waiter adds
 *    itself to nwait (under the lock) before its last cansemacquire and before
 *    queueing; semrelease increments *addr first and only then reads nwait, so
 *    either the waiter sees the count or the releaser sees the waiter (the
 *    missed wake-up argument of sema.go). nwait is read without the lock.
 *  - a queued record belongs to a goroutine that called goro__g_prepare_wait
 *    and is parked (or about to park) with this root's lock as its unlock
 *    argument, so it cannot be readied before it has left its stack.
 *  - only the releaser that dequeued a record touches it after the unlock,
 *    and only until goro__ready; the waiter reads w.ticket after it resumes.
 *  - nobody else can claim a sema waiter (it has no deadline and is in no
 *    select), so goro__claim by the dequeuer always succeeds.
 *
 * *addr is only changed with atomics (CAS loops), never under the lock.
 */
#include "sync_internal.h"
#include "../util/list.h"

#define SEMTAB_SIZE 1021 /* prime: does not correlate with allocation patterns */

typedef struct semawaiter {
    goro__g *g;
    uint32_t *addr;
    goro__link alink;    /* heads only: in root->heads */
    goro__link wlink;    /* others only: in its head's `others` */
    goro__list others;   /* heads only: the other waiters on addr, FIFO */
    bool ticket;         /* set by a handoff release: the count is ours */
    int64_t acquiretime; /* mutex profile: when a mutex waiter began, else 0 */
} semawaiter;

typedef struct semroot {
    goro__lock lock;
    _Atomic uint32_t nwait; /* waiters (see invariants); read without the lock */
    goro__list heads;       /* semawaiter by alink, one per address */
} __attribute__((aligned(64))) semroot;

static semroot semtable[SEMTAB_SIZE];

static inline semroot *root_for(uint32_t *addr) {
    return &semtable[((uintptr_t)addr >> 3) % SEMTAB_SIZE];
}

static inline _Atomic uint32_t *atom(uint32_t *addr) { return (_Atomic uint32_t *)addr; }

static bool cansemacquire(uint32_t *addr) {
    uint32_t v = atomic_load_explicit(atom(addr), memory_order_relaxed);
    for (;;) {
        if (v == 0)
            return false;
        if (atomic_compare_exchange_weak_explicit(atom(addr), &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
}

/* Adds w to the waiters of addr (root->lock held). */
static void queue(semroot *root, uint32_t *addr, semawaiter *w, bool lifo) {
    w->addr = addr;
    w->others = (goro__list){0};
    GORO__LIST_FOREACH(h, &root->heads, semawaiter, alink) {
        if (h->addr != addr)
            continue;
        if (lifo) {
            /* w replaces h as the head; h becomes the first of w's list. */
            w->others = goro__list_take(&h->others);
            goro__list_push_front(&w->others, &h->wlink);
            goro__list_insert_before(&root->heads, &h->alink, &w->alink);
            goro__list_remove(&root->heads, &h->alink);
        } else {
            goro__list_push_back(&h->others, &w->wlink);
        }
        return;
    }
    goro__list_push_front(&root->heads, &w->alink);
}

/* Removes and returns the first waiter of addr, or NULL (root->lock held). */
static semawaiter *dequeue(semroot *root, uint32_t *addr) {
    GORO__LIST_FOREACH(h, &root->heads, semawaiter, alink) {
        if (h->addr != addr)
            continue;
        semawaiter *t = goro__list_entry(goro__list_pop_front(&h->others), semawaiter, wlink);
        if (t != NULL) {
            /* t becomes the head of addr's list, in h's place. */
            t->others = goro__list_take(&h->others);
            goro__list_insert_before(&root->heads, &h->alink, &t->alink);
        }
        goro__list_remove(&root->heads, &h->alink);
        return h;
    }
    return NULL;
}

static void semacquire_slow(uint32_t *addr, int reason, bool lifo);

void goro__semacquire(uint32_t *addr, int reason, bool lifo) {
    if (cansemacquire(addr))
        return;
    int64_t t0 = goro__blockprof_begin();
    semacquire_slow(addr, reason, lifo);
    goro__blockprof_end(t0);
}

static void semacquire_slow(uint32_t *addr, int reason, bool lifo) {
    goro__g *g = goro__getg();
    semroot *root = root_for(addr);
    semawaiter w;
    w.g = g;
    w.ticket = false;
    bool is_mutex = reason == GORO__WAIT_MUTEX || reason == GORO__WAIT_RWMUTEX_R ||
                    reason == GORO__WAIT_RWMUTEX_W;
    w.acquiretime = is_mutex ? goro__mutexprof_begin() : 0;
    for (;;) {
        goro__lock_acquire(&root->lock);
        /* Announce ourselves before the last check: disables semrelease's
           easy case (see invariants). */
        atomic_fetch_add_explicit(&root->nwait, 1, memory_order_seq_cst);
        if (cansemacquire(addr)) {
            atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
            goro__lock_release(&root->lock);
            return;
        }
        goro__g_prepare_wait(g);
        queue(root, addr, &w, lifo);
        goro__park(reason, addr, goro__lock_release_v, &root->lock, GORO__SYNC_NO_DEADLINE);
        g = goro__getg(); /* may have resumed on another thread */
        if (w.ticket || cansemacquire(addr))
            return;
        /* Woken without a ticket and someone else took the count first:
           queue again (with the caller's lifo flag, as Go does). */
    }
}

void goro__semrelease(uint32_t *addr, bool handoff) {
    semroot *root = root_for(addr);
    atomic_fetch_add_explicit(atom(addr), 1, memory_order_seq_cst);

    /* Easy case: nobody waits. Must come after the increment. */
    if (atomic_load_explicit(&root->nwait, memory_order_seq_cst) == 0)
        return;

    goro__lock_acquire(&root->lock);
    if (atomic_load_explicit(&root->nwait, memory_order_relaxed) == 0) {
        /* A waiter consumed the count and left. */
        goro__lock_release(&root->lock);
        return;
    }
    semawaiter *w = dequeue(root, addr);
    if (w != NULL) {
        atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
        if (!goro__claim(w->g))
            goro__throw("sync: semaphore waiter claimed twice");
    }
    goro__lock_release(&root->lock);
    if (w == NULL)
        return;

    /* w stays valid until goro__ready: its owner is parked. */
    goro__g *wg = w->g;
    int64_t acquiretime = w->acquiretime;
    bool ticket = handoff && cansemacquire(addr);
    w->ticket = ticket;
    goro__ready(wg);
    /* Charged to this (the unlocker's) stack, as Go does. */
    goro__mutexprof_end(acquiretime);
    if (ticket) {
        /* Direct handoff (starvation mode): the woken goroutine sits in our
           P's runnext; yield so it runs now and inherits our time slice. */
        goro__g *me = goro__getg_maybe();
        if (me != NULL && !me->is_thread)
            goro_yield();
    }
}
