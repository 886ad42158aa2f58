/*
 * select.c - goro_select, Go's selectgo (src/runtime/select.go) on the
 * runtime's park/claim/ready protocol.
 *
 * Algorithm:
 *   poll order: the cases with a non-NULL channel in a uniformly random
 *     permutation (NULL channels are never ready, as nil channels in Go);
 *     pass 1 takes the first ready case in this order, which makes the
 *     choice uniform among the ready cases;
 *   lock order: the same cases sorted by channel address; every distinct
 *     channel is locked once, in that order, so selects (and single channel
 *     operations, which hold one lock) never deadlock with each other, and a
 *     channel may appear in several cases;
 *   pass 1 (all locks held): find a ready case and complete it;
 *   timeout 0 (Go's default): nothing ready -> unlock, -1;
 *   pass 2 (all locks still held): enqueue one waiter record per case, in
 *     lock order, chained from g->waiting, each pinning its channel; park;
 *     the park's unlock function releases every lock;
 *   pass 3 (after the wake-up, all locks again): unlink every record but the
 *     winner (g->param; none when the deadline won), drop the pins, unlock,
 *     free the channels that were released meanwhile and are now unpinned.
 *
 * Exactly one partner (or the deadline) claims the selecting goroutine; the
 * others meet stale records, fail the claim and drop them (chan.c). A select
 * that sends and receives on the same unbuffered channel never meets itself:
 * pass 1 runs before any of its records is queued, and once queued only
 * other goroutines scan them.
 *
 * A case's element is written only for the case that ran.
 */
#include "chan_internal.h"
#include "../runtime/waitprof.h"

#include <stdlib.h>
#include <string.h>

#define SEL_STACK_CASES 16

typedef struct sel_locks {
    goro_chan **chans; /* distinct channels in address order */
    size_t n;
} sel_locks;

static inline uint32_t fastrandn(uint32_t n) {
    return (uint32_t)(((uint64_t)goro__fastrand() * n) >> 32);
}

static void sel_lock(goro_chan **chans, size_t n) {
    for (size_t i = 0; i < n; i++)
        goro__chan_lock_acquire(&chans[i]->lock);
}

static void sel_unlock(goro_chan **chans, size_t n) {
    for (size_t i = n; i-- > 0;)
        goro__chan_lock_release(&chans[i]->lock);
}

/* unlock_fn of the park. Once a lock is released a partner may claim and
   ready the selecting goroutine, which then runs pass 3 and may return from
   goro_select, ending the frame that holds `a`. It cannot get past locking
   chans[0] before we release it, so release that one last and touch nothing
   afterwards. */
static void sel_unlock_v(void *arg) {
    sel_locks *a = arg;
    goro_chan **chans = a->chans;
    size_t n = a->n;
    for (size_t i = n; i-- > 1;)
        goro__chan_lock_release(&chans[i]->lock);
    goro__chan_lock_release(&chans[0]->lock);
}

/* Sorts order[0..n) by the address of cases[order[i]].chan (heap sort:
   n log n with no extra space, as Go's). */
static void sort_lockorder(const goro_case *cases, uint32_t *order, size_t n) {
#define KEY(i) ((uintptr_t)cases[order[i]].chan)
    if (n <= 8) {
        for (size_t i = 1; i < n; i++) {
            uint32_t o = order[i];
            uintptr_t k = (uintptr_t)cases[o].chan;
            size_t j = i;
            while (j > 0 && KEY(j - 1) > k) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = o;
        }
        return;
    }
    /* build a max-heap */
    for (size_t i = 0; i < n; i++) {
        uint32_t o = order[i];
        uintptr_t k = (uintptr_t)cases[o].chan;
        size_t j = i;
        while (j > 0 && KEY((j - 1) / 2) < k) {
            order[j] = order[(j - 1) / 2];
            j = (j - 1) / 2;
        }
        order[j] = o;
    }
    for (size_t i = n; i-- > 0;) {
        uint32_t o = order[i];
        uintptr_t k = (uintptr_t)cases[o].chan;
        order[i] = order[0];
        size_t j = 0;
        for (;;) {
            size_t c = 2 * j + 1;
            if (c >= i)
                break;
            if (c + 1 < i && KEY(c) < KEY(c + 1))
                c++;
            if (k < KEY(c)) {
                order[j] = order[c];
                j = c;
                continue;
            }
            break;
        }
        order[j] = o;
    }
#undef KEY
}

/* A lock-free guess whether case (c, dir) could run now (see the fast
   path in goro_select). */
static inline bool sel_looks_ready(goro_chan *c, enum goro_dir dir) {
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return true;
    if (dir == GORO_RECV)
        return atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0 ||
               __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) != NULL;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz ||
           __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) != NULL;
}

/* Runs case cs if it is ready; its channel is locked (and maybe others).
   Returns 1 when it ran (*partner: a goroutine to ready once every lock is
   released), 0 when it is not ready, -1 for a send on a closed channel. */
static int sel_try(goro_case *cs, goro__g **partner) {
    goro_chan *c = cs->chan;
    if (cs->dir == GORO_RECV) {
        goro__waiter *s = goro__waitq_dequeue(&c->sendq);
        if (s) {
            *partner = goro__chan_recv_from(c, s, cs->elem);
            cs->ok = true;
            return 1;
        }
        if (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
            goro__chan_buf_take(c, cs->elem);
            cs->ok = true;
            return 1;
        }
        if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
            if (cs->elem && c->elem_size)
                memset(cs->elem, 0, c->elem_size);
            cs->ok = false;
            return 1;
        }
        return 0;
    }
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return -1;
    goro__waiter *r = goro__waitq_dequeue(&c->recvq);
    if (r) {
        *partner = goro__chan_send_to(c, r, cs->elem);
        return 1;
    }
    if (atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz) {
        goro__chan_buf_put(c, cs->elem);
        return 1;
    }
    return 0;
}

/* A case completed with its channels unlocked: r < 0 is a send on a closed
   channel (panics, after freeing the select's heap arrays); a goroutine
   the case completed with is made runnable. */
static void sel_complete(int r, goro__g *partner, void *heap) {
    if (GORO__UNLIKELY(r < 0)) {
        free(heap);
        goro_panic("send on closed channel");
    }
    if (partner)
        goro__ready(partner);
}

int goro_select(goro_case *cases, size_t n, int64_t timeout_ns) {
    if (GORO__UNLIKELY(cases == NULL && n > 0))
        goro_panic("goro_select: cases is NULL but n is %zu", n);
    if (timeout_ns < 0 && timeout_ns != GORO_FOREVER)
        timeout_ns = 0; /* an already expired timeout */

    uint32_t order_small[2 * SEL_STACK_CASES];
    goro_chan *chans_small[SEL_STACK_CASES];
    goro__waiter recs_small[SEL_STACK_CASES];
    uint32_t *pollorder = order_small, *lockorder = order_small + SEL_STACK_CASES;
    goro_chan **chans = chans_small;
    goro__waiter *recs = recs_small;
    void *heap = NULL;
    int ret = -1;

    if (GORO__UNLIKELY(n > SEL_STACK_CASES)) {
        if (n > UINT32_MAX)
            goro_panic("goro_select: too many cases");
        size_t bytes = n * (2 * sizeof(uint32_t) + sizeof(goro_chan *) + sizeof(goro__waiter));
        heap = malloc(bytes);
        if (!heap)
            goro__fatal("goro_select: out of memory");
        recs = heap;
        chans = (goro_chan **)(recs + n);
        pollorder = (uint32_t *)(chans + n);
        lockorder = pollorder + n;
    }

    /* Poll order: inside-out Fisher-Yates over the usable cases. */
    size_t norder = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].chan == NULL)
            continue;
        if (goro__chan_is_released(cases[i].chan)) {
            free(heap);
            goro__chan_released_panic();
        }
        if (GORO__UNLIKELY(cases[i].dir != GORO_SEND && cases[i].dir != GORO_RECV)) {
            free(heap);
            goro_panic("goro_select: case %zu has an invalid direction", i);
        }
        uint32_t j = fastrandn((uint32_t)norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = (uint32_t)i;
        norder++;
    }

    if (norder == 0) {
        free(heap);
        if (timeout_ns == 0)
            return -1;
        int reason = n == 0 ? GORO__WAIT_SELECT_NO_CASES : GORO__WAIT_SELECT;
        if (timeout_ns == GORO_FOREVER)
            goro__chan_block_forever(reason);
        goro__chan_sleep(GORO__WAIT_SELECT, goro__chan_deadline(timeout_ns));
        return -1;
    }

    /* Fast path: try the first case, in poll order, that looks ready from a
       lock-free peek, under that channel's lock alone. A case completed here
       was ready when it ran, and it is the first ready one in a random
       order, so the choice stays uniform. "Nothing is ready" is never
       concluded from these peeks, only under every lock in pass 1 (two
       peeks at two moments do not make a snapshot: Go's
       TestNonblockSelectRace). */
    for (size_t k = 0; k < norder; k++) {
        uint32_t i = pollorder[k];
        goro_chan *c = cases[i].chan;
        if (!sel_looks_ready(c, cases[i].dir))
            continue;
        goro__chan_lock_acquire(&c->lock);
        goro__g *partner = NULL;
        int r = sel_try(&cases[i], &partner);
        goro__chan_lock_release(&c->lock);
        if (r == 0)
            continue;
        sel_complete(r, partner, heap);
        ret = (int)i;
        goto done;
    }

    /* Lock order: by channel address, starting from the poll order so that
       cases on one channel are permuted too. */
    for (size_t k = 0; k < norder; k++)
        lockorder[k] = pollorder[k];
    sort_lockorder(cases, lockorder, norder);
    size_t nlocks = 0;
    for (size_t k = 0; k < norder; k++) {
        goro_chan *c = cases[lockorder[k]].chan;
        if (nlocks == 0 || chans[nlocks - 1] != c)
            chans[nlocks++] = c;
    }

    sel_lock(chans, nlocks);

    /* pass 1: something ready? */
    for (size_t k = 0; k < norder; k++) {
        uint32_t i = pollorder[k];
        goro__g *partner = NULL;
        int r = sel_try(&cases[i], &partner);
        if (r == 0)
            continue;
        sel_unlock(chans, nlocks);
        sel_complete(r, partner, heap);
        ret = (int)i;
        goto done;
    }

    if (timeout_ns == 0) {
        sel_unlock(chans, nlocks);
        goto done;
    }

    /* pass 2: enqueue on every channel, in lock order. */
    goro__g *g = goro__getg();
    goro__g_prepare_wait(g);
    g->param = NULL;
    goro__waiter *first = NULL, **nextp = &first;
    for (size_t k = 0; k < norder; k++) {
        uint32_t i = lockorder[k];
        goro_case *cs = &cases[i];
        goro_chan *c = cs->chan;
        goro__waiter *w = &recs[k];
        w->g = g;
        w->c = c;
        w->elem = c->elem_size ? cs->elem : NULL;
        w->case_index = i;
        w->is_select = true;
        w->claimless = false;
        w->success = false;
        w->waitlink = NULL;
        *nextp = w;
        nextp = &w->waitlink;
        goro__waitq_enqueue(cs->dir == GORO_RECV ? &c->recvq : &c->sendq, w);
        c->npins++;
    }
    g->waiting = first;

    sel_locks ua = {chans, nlocks};
    int64_t deadline = timeout_ns == GORO_FOREVER ? -1 : goro__chan_deadline(timeout_ns);
    int64_t t0 = goro__blockprof_begin();
    bool woke = goro__park(GORO__WAIT_SELECT, NULL, sel_unlock_v, &ua, deadline);
    goro__blockprof_end(t0);

    /* pass 3: take back the records that did not win. */
    sel_lock(chans, nlocks);
    goro__waiter *win = woke ? (goro__waiter *)g->param : NULL;
    for (size_t k = 0; k < norder; k++) {
        goro__waiter *w = &recs[k];
        goro_chan *c = w->c;
        if (w != win && w->linked)
            goro__waitq_remove(cases[w->case_index].dir == GORO_RECV ? &c->recvq : &c->sendq, w);
        c->npins--;
    }
    /* Channels released while we waited on them, now free to go (the poll
       order is no longer needed: reuse it for their indices). */
    size_t nfree = 0;
    for (size_t k = 0; k < nlocks; k++)
        if (chans[k]->npins == 0 && chans[k]->dead)
            pollorder[nfree++] = (uint32_t)k;
    sel_unlock(chans, nlocks);
    for (size_t k = 0; k < nfree; k++)
        goro__chan_free(chans[pollorder[k]]);
    g->waiting = NULL;
    g->param = NULL;

    if (win) {
        uint32_t i = win->case_index;
        if (cases[i].dir == GORO_SEND) {
            if (!win->success) {
                free(heap);
                goro_panic("send on closed channel");
            }
        } else {
            cases[i].ok = win->success; /* closed: the closer zeroed elem */
        }
        ret = (int)i;
    }

done:
    free(heap);
    return ret;
}
