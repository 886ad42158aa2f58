/*
 * cond.c - goro_cond, Go's sync.Cond over a ticket-based notify list (Go's
 * runtime notifyList).
 *
 * A waiter takes a ticket (wait++) while it still holds the user's mutex,
 * then unlocks the mutex and sleeps until its ticket is notified. notify is
 * the next ticket to be notified: Signal advances it by one and wakes the
 * holder of that ticket; Broadcast sets it to wait and wakes everyone listed.
 *
 * Invariants (lock protects waiters and notify's writes):
 *  - tickets t with less(t, notify) have been notified; a waiter that finds
 *    its ticket already notified when it takes the lock does not sleep.
 *  - a listed waiter has prepared its wait and parks with `lock` as the unlock
 *    argument; only the notifier that unlinks it claims and readies it.
 * So there are no spurious wake-ups: Signal wakes exactly the one waiter that
 * has the oldest unnotified ticket (or none if there is none), and a waiter
 * that took its ticket after a Signal/Broadcast is never woken by it.
 * wait and notify are 32-bit counters that may wrap; their difference is
 * bounded by the number of waiters.
 */
#include "sync_internal.h"
#include "../util/list.h"

typedef struct condwaiter {
    goro__g *g;
    uint32_t ticket;
    goro__link link; /* in waiters (lock) */
} condwaiter;

typedef struct goro__cond {
    _Atomic uint32_t wait;   /* next ticket to hand out; incremented without the lock */
    _Atomic uint32_t notify; /* next ticket to notify; written under lock */
    goro__lock lock;
    goro__list waiters; /* condwaiter by link, in ticket order (almost) */
} goro__cond;

_Static_assert(sizeof(goro__cond) <= sizeof(goro_cond), "goro_cond too small");
_Static_assert(_Alignof(goro__cond) <= _Alignof(goro_cond), "goro_cond misaligned");

static inline goro__cond *impl(goro_cond *c) { return (goro__cond *)(void *)c; }

static inline bool ticket_less(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

void goro_cond_wait(goro_cond *cp, goro_mutex *m) {
    goro__cond *c = impl(cp);
    uint32_t t = atomic_fetch_add_explicit(&c->wait, 1, memory_order_acq_rel);
    goro_mutex_unlock(m);

    goro__lock_acquire(&c->lock);
    if (ticket_less(t, atomic_load_explicit(&c->notify, memory_order_relaxed))) {
        /* Notified between our unlock and here. */
        goro__lock_release(&c->lock);
    } else {
        goro__g *g = goro__getg();
        condwaiter w = {.g = g, .ticket = t};
        goro__g_prepare_wait(g);
        goro__list_push_back(&c->waiters, &w.link);
        int64_t t0 = goro__blockprof_begin();
        goro__park(GORO__WAIT_COND, c, goro__lock_release_v, &c->lock, GORO__SYNC_NO_DEADLINE);
        goro__blockprof_end(t0);
    }
    goro_mutex_lock(m);
}

void goro_cond_signal(goro_cond *cp) {
    goro__cond *c = impl(cp);
    /* Fast path: no waiter took a ticket since the last notification. */
    if (atomic_load_explicit(&c->wait, memory_order_acquire) ==
        atomic_load_explicit(&c->notify, memory_order_acquire))
        return;

    goro__lock_acquire(&c->lock);
    uint32_t t = atomic_load_explicit(&c->notify, memory_order_relaxed);
    if (t == atomic_load_explicit(&c->wait, memory_order_acquire)) {
        goro__lock_release(&c->lock);
        return;
    }
    atomic_store_explicit(&c->notify, t + 1, memory_order_release);
    /* Find the holder of ticket t. If it has not queued yet it will see the
       new notify value and not sleep. The scan stops early in practice:
       tickets are queued almost in order. */
    GORO__LIST_FOREACH(w, &c->waiters, condwaiter, link) {
        if (w->ticket != t)
            continue;
        goro__list_remove(&c->waiters, &w->link);
        goro__g *g = w->g;
        if (!goro__claim(g))
            goro__throw("sync: cond waiter claimed twice");
        goro__lock_release(&c->lock);
        goro__ready(g);
        return;
    }
    goro__lock_release(&c->lock);
}

void goro_cond_broadcast(goro_cond *cp) {
    goro__cond *c = impl(cp);
    if (atomic_load_explicit(&c->wait, memory_order_acquire) ==
        atomic_load_explicit(&c->notify, memory_order_acquire))
        return;

    goro__lock_acquire(&c->lock);
    goro__list list = goro__list_take(&c->waiters);
    /* Every ticket handed out so far is notified: those not listed yet will
       see it and not sleep. */
    atomic_store_explicit(&c->notify, atomic_load_explicit(&c->wait, memory_order_acquire),
                          memory_order_release);
    GORO__LIST_FOREACH(w, &list, condwaiter, link)
    if (!goro__claim(w->g))
        goro__throw("sync: cond waiter claimed twice");
    goro__lock_release(&c->lock);

    /* Ready outside the lock; _SAFE reads the next link first: the record
       lives on the waiter's stack and is gone once it runs. */
    GORO__LIST_FOREACH_SAFE(w, &list, condwaiter, link)
    goro__ready(w->g);
}
