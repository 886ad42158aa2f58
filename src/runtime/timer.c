/*
 * timer.c - per-P timer heaps.
 *
 * Each P owns a 4-ary min-heap of timers ordered by `when`, under its own
 * lock. Timers are run by whichever scheduler thread looks at that P (its
 * owner on every trip through the scheduler, an idle thread when it wakes at
 * the earliest deadline, a spinning thread while it steals).
 *
 * Invariants (under ts->lock):
 *   - t->idx >= 0 exactly when t is in ts->heap, and then t->p is that P;
 *   - a timer that fires leaves the heap (idx -1, p NULL) before its fn is
 *     called with the values it was armed with; the runner never touches it
 *     again, because fn may wake the owner, which may re-arm the same timer
 *     on another P at once. goro__timer_stop therefore returns false both
 *     when fn ran and while it is still running; fn must tolerate running
 *     after a stop (the park timeout does: its claim CAS names the wait
 *     generation it was armed for).
 *   - heap[i].when == heap[i].t->when (a slot's copy, so sifting never
 *     reads timer records);
 *   - ts->next mirrors heap[0].when (INT64_MAX when empty) so the scheduler
 *     can test for due timers with one load and no lock.
 * A callback runs with the heap lock held: it must not block and must not
 * take a lock that is held elsewhere while calling goro__timer_stop.
 *
 * Why 4-ary: every slot a sift moves writes its timer's idx, and timer
 * records live in goroutine records one page apart, so each move is a cache
 * and TLB miss. Four children per node halve the depth (8 levels instead of
 * 17 at 100,000 timers), hence the misses, and the four children share one
 * cache line of slots.
 *
 * Release order (goro__timers_run): due timers are released earliest first,
 * and a trip through the scheduler releases timers only until one of them
 * has put a goroutine in the caller's runnext slot. That goroutine runs
 * next, so woken goroutines run in deadline order and ahead of whatever
 * waits in the local queue (goroutines not started yet, say, whose clocks
 * have not started either), instead of being queued behind them or behind
 * one another; the remaining due timers keep their order in the heap until
 * the next trip, or until an idle thread takes them.
 */
#include "sched.h"

#include <stdlib.h>

void goro__timers_init(goro__timers *ts) {
    ts->heap = NULL;
    ts->len = ts->cap = 0;
    ts->released = NULL;
    atomic_store(&ts->next, INT64_MAX);
}

static void heap_set(goro__timers *ts, int32_t i, goro__timer_slot slot) {
    ts->heap[i] = slot;
    slot.t->idx = i;
}

#define HEAP_ARITY 4

static void sift_up(goro__timers *ts, int32_t i) {
    goro__timer_slot s = ts->heap[i];
    while (i > 0) {
        int32_t parent = (i - 1) / HEAP_ARITY;
        if (ts->heap[parent].when <= s.when)
            break;
        heap_set(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_set(ts, i, s);
}

static void sift_down(goro__timers *ts, int32_t i) {
    goro__timer_slot s = ts->heap[i];
    for (;;) {
        int32_t first = HEAP_ARITY * i + 1;
        if (first >= ts->len)
            break;
        int32_t end = first + HEAP_ARITY < ts->len ? first + HEAP_ARITY : ts->len;
        int32_t c = first;
        for (int32_t k = first + 1; k < end; k++)
            if (ts->heap[k].when < ts->heap[c].when)
                c = k;
        if (ts->heap[c].when >= s.when)
            break;
        heap_set(ts, i, ts->heap[c]);
        i = c;
    }
    heap_set(ts, i, s);
}

static void update_next(goro__timers *ts) {
    atomic_store_explicit(&ts->next, ts->len ? ts->heap[0].when : INT64_MAX, memory_order_release);
}

static void heap_remove(goro__timers *ts, goro__timer *t) {
    int32_t i = t->idx;
    int32_t last = --ts->len;
    if (i != last) {
        heap_set(ts, i, ts->heap[last]);
        sift_down(ts, i);
        if (ts->heap[i].t == ts->heap[last].t) /* did not move down: maybe up */
            sift_up(ts, i);
    }
    t->idx = -1;
    update_next(ts);
}

static void heap_add(goro__timers *ts, goro__timer *t) {
    if (ts->len == ts->cap) {
        int32_t nc = ts->cap ? ts->cap * 2 : 64;
        goro__timer_slot *nh = realloc(ts->heap, (size_t)nc * sizeof *nh);
        if (!nh)
            goro__throw("out of memory growing a timer heap");
        ts->heap = nh;
        ts->cap = nc;
    }
    int32_t i = ts->len++;
    heap_set(ts, i, (goro__timer_slot){t->when, t});
    sift_up(ts, i);
    update_next(ts);
}

void goro__timer_start(goro__timer *t, int64_t when, goro__timer_fn fn, void *arg, uint64_t seq) {
    goro__p *p = goro__getp();
    if (!p)
        p = goro__sched.allp[goro__fastrand() % (uint32_t)atomic_load(&goro__sched.gomaxprocs)];
    t->when = when;
    t->fn = fn;
    t->arg = arg;
    t->seq = seq;
    goro__lock_acquire(&p->timers.lock);
    atomic_store_explicit(&t->p, p, memory_order_relaxed);
    heap_add(&p->timers, t);
    bool first = p->timers.heap[0].t == t;
    goro__lock_release(&p->timers.lock);
    if (first)
        goro__timer_after_add(when);
}

bool goro__timer_stop(goro__timer *t) {
    for (;;) {
        goro__p *p = atomic_load_explicit(&t->p, memory_order_acquire);
        if (!p)
            return false;
        goro__lock_acquire(&p->timers.lock);
        if (atomic_load_explicit(&t->p, memory_order_relaxed) != p) {
            goro__lock_release(&p->timers.lock);
            continue; /* moved by P retirement, or just finished firing */
        }
        bool removed = false;
        if (t->idx >= 0) {
            heap_remove(&p->timers, t);
            removed = true;
        }
        atomic_store_explicit(&t->p, NULL, memory_order_relaxed);
        goro__lock_release(&p->timers.lock);
        return removed;
    }
}

int64_t goro__timers_run(goro__timers *ts, int64_t now) {
    if (atomic_load_explicit(&ts->next, memory_order_acquire) > now)
        return atomic_load_explicit(&ts->next, memory_order_relaxed);
    goro__p *mine = goro__getp();
    /* A goroutine released earlier still waits in our runnext (a trip took a
       goroutine from the global queue first): release nothing this trip, or
       the next one would take runnext from it and run first. */
    if (mine && mine->timers.released &&
        atomic_load_explicit(&mine->runnext, memory_order_relaxed) == mine->timers.released)
        return atomic_load_explicit(&ts->next, memory_order_relaxed);
    goro__lock_acquire(&ts->lock);
    /* Earliest first, until a released goroutine sits in our runnext (see
       "Release order" above). A burst never spills to the global queue's
       tail either: past a nearly full local queue the rest stay in the heap
       with their order. */
    while (ts->len && ts->heap[0].when <= now && !goro__runq_nearly_full()) {
        goro__timer *t = ts->heap[0].t;
        goro__timer_fn fn = t->fn;
        void *arg = t->arg;
        uint64_t seq = t->seq;
        heap_remove(ts, t);
        /* From here t belongs to its owner again: fn may make the owner run
           (goro__ready) and re-arm t on another P before fn even returns. */
        atomic_store_explicit(&t->p, NULL, memory_order_release);
        fn(arg, seq);
        goro__g *runnext = mine ? atomic_load_explicit(&mine->runnext, memory_order_relaxed) : NULL;
        if (runnext) {
            mine->timers.released = runnext;
            break;
        }
    }
    int64_t next = ts->len ? ts->heap[0].when : INT64_MAX;
    goro__lock_release(&ts->lock);
    return next;
}

void goro__timers_move(goro__timers *from, goro__timers *to) {
    /* Lock order between two heaps: lower address first. */
    goro__timers *a = from < to ? from : to, *b = from < to ? to : from;
    goro__lock_acquire(&a->lock);
    goro__lock_acquire(&b->lock);
    goro__p *top = (goro__p *)((char *)to - offsetof(goro__p, timers));
    while (from->len) {
        goro__timer *t = from->heap[from->len - 1].t;
        heap_remove(from, t);
        atomic_store_explicit(&t->p, top, memory_order_relaxed);
        heap_add(to, t);
    }
    goro__lock_release(&b->lock);
    goro__lock_release(&a->lock);
}

int64_t goro__timers_earliest(void) {
    int64_t m = INT64_MAX;
    int n = __atomic_load_n(&goro__sched.nps, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        int64_t w = atomic_load_explicit(&goro__sched.allp[i]->timers.next, memory_order_acquire);
        if (w < m)
            m = w;
    }
    return m;
}

int32_t goro__timers_pending(void) {
    int32_t total = 0;
    int n = __atomic_load_n(&goro__sched.nps, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        goro__timers *ts = &goro__sched.allp[i]->timers;
        goro__lock_acquire(&ts->lock);
        total += ts->len;
        goro__lock_release(&ts->lock);
    }
    return total;
}
