/*
 * limiter.c - goro_limiter: bounded spawning, the channel-token pattern
 * (tokens <- struct{}{}; go func() { defer func() { <-tokens }(); f() }())
 * done right: counts, run-time tuning, waiting for completion, a close that
 * refuses blocked submitters, and panics recovered with the slot returned.
 *
 * Semantics.
 *   - go(fn, arg) waits until fewer than max tasks hold a slot, then fn runs
 *     in a goroutine named "limited goroutine"; it returns 0 once the task
 *     has its slot (it may not have started yet), or GORO_ECLOSED when the
 *     limiter is closed - also when close happens while go() is blocked.
 *     Submitters get slots in FIFO order. try_go never blocks: GORO_EAGAIN
 *     when every slot is taken (or submitters are already queued).
 *   - running() counts tasks holding a slot, waiting() submitters blocked in
 *     go(). tune(max) changes the limit (max <= 0 is ignored): raising it
 *     hands the new slots to blocked submitters at once; lowering it lets
 *     running tasks finish (no new task starts until running < max).
 *   - Panics, chosen on purpose and unlike the pool (whose callers wait for
 *     a result, as tunny's do): a limited task is fire-and-forget, nobody
 *     waits for it, so by default its panic is recovered (goro_opts.on_panic
 *     of the goroutine), as ants does: the limiter's on_panic(msg, task arg)
 *     gets the bare message ("bad 1"), or, when it is NULL, the message and
 *     the goroutine's trace (goro_stack) go to stderr. on_panic ==
 *     goro_limiter_crash_on_panic opts out: the task's goroutine has no
 *     on_panic and a panic ends the program as in plain Go (and in a pool).
 *     goro_exit() inside a task ends it too. Either way the slot is
 *     returned (the next blocked submitter gets it).
 *   - wait() returns when no task runs; close() refuses new and blocked
 *     submitters (GORO_ECLOSED) and waits for the running tasks; free()
 *     closes if needed and frees. A closed limiter stays valid: go/try_go
 *     return GORO_ECLOSED, tune does nothing, running/waiting read 0. When
 *     wait() or close() returns, no goroutine of the limiter exists any more
 *     (pool_internal.h explains how that is known), so a leak check right
 *     after passes without retrying.
 *   - A task that calls goro_limiter_go on its own full limiter waits for a
 *     slot it may itself be holding (ants #197); use try_go there.
 *
 * Goroutines are reused: a task's goroutine, when its task returns, takes
 * the task of the first blocked submitter directly (its slot passes on), so a
 * saturated limiter costs one park and one ready of the submitter per task
 * and no goroutine creation. The goroutine then yields once, so that the
 * submitter (readied onto this P) queues its next task before this one runs
 * rather than after. With nobody blocked it returns its slot and
 * waits on the idle list for GORO__LIMITER_IDLE_NS; go() hands new tasks to
 * idle goroutines before creating new ones. An idle goroutine whose time is
 * up, or that wait()/close() stop, ends. So at most max goroutines exist
 * plus those still idling out.
 *
 * Locking. l->lock (goro__lock) protects everything in the limiter: max,
 * closed, the submitter FIFO, the idle list, nlive, the dead list and the
 * wait()ers list; running/waiting/max_pub are atomics written under it and
 * read without it. A worker's fn/arg/stop are written by whoever claims it
 * off the idle list (under l->lock) and read by the worker once readied.
 *
 * Invariants (under l->lock):
 *   - running counts tasks with a slot: running in a worker, handed to a
 *     worker not yet started, or granted to a submitter that is about to hand
 *     it to a worker. A non-empty submitter FIFO means running >= max, except
 *     inside one critical section that then grants slots (grant_locked).
 *   - Submitters park without deadline and are dequeued only by the one that
 *     readies them, so their claim always succeeds. Idle workers park with a
 *     deadline: a dispatcher that loses the claim skips the worker, which
 *     unlinks itself when it gets the lock.
 *   - nlive counts worker goroutines that have not finished their exit
 *     handshake (a defer, so it also runs on goro_exit and before on_panic);
 *     their records then move to the dead list, whose entries are freed by
 *     wait()/close() or reused by go() once their goroutine is gone.
 */
#include "pool_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../observe/debug_registry.h"
#include "../util/list.h"

/* How long a goroutine with nothing to do stays for the next task. */
#define GORO__LIMITER_IDLE_NS GORO_MS(50)

enum { OUT_NONE, OUT_TAKEN, OUT_GRANTED, OUT_CLOSED };

typedef struct lsubmitter {
    goro__link link; /* in l->submitters (l->lock) */
    goro_fn fn;
    void *arg;
    goro__g *g;
    int outcome; /* set by the waker before ready */
} lsubmitter;

typedef struct lwaitnode {
    struct lwaitnode *next;
    goro__g *g;
} lwaitnode;

typedef struct lworker lworker;
struct lworker {
    goro_limiter *l;
    goro__g *g; /* set by the goroutine itself */
    uint64_t gid;
    goro_fn fn; /* current task */
    void *arg;
    void (*user_on_panic)(const char *msg, void *arg);
    goro__link ilink; /* in l->idle (l->lock) */
    goro__link dlink; /* in l->dead (l->lock) */
    bool idle;        /* on the idle list (l->lock) */
    bool stop;        /* told to end while idle */
    bool in_task;     /* owned by the goroutine */
};

struct goro_limiter {
    goro__lock lock;
    int max;
    bool closed;
    _Atomic int running;
    _Atomic int waiting;
    _Atomic int max_pub;
    goro__list submitters; /* blocked lsubmitter by link, FIFO */
    goro__list idle;       /* lworker by ilink, newest first */
    int nlive;
    goro__list dead; /* lworker by dlink, oldest first */
    lwaitnode *waiters;
    void (*on_panic)(const char *msg, void *arg);
    unsigned long serial;
    bool debug_registered;
};

/* ------------------------------------------------------------- helpers */

static void wake_g(goro__g *g) {
    if (goro__claim(g))
        goro__ready(g);
}

static void set_running(goro_limiter *l, int delta) {
    atomic_store_explicit(&l->running,
                          atomic_load_explicit(&l->running, memory_order_relaxed) + delta,
                          memory_order_release);
}

static void set_waiting(goro_limiter *l, int delta) {
    atomic_store_explicit(&l->waiting,
                          atomic_load_explicit(&l->waiting, memory_order_relaxed) + delta,
                          memory_order_release);
}

static lsubmitter *wq_pop(goro_limiter *l) {
    lsubmitter *s = goro__list_entry(goro__list_pop_front(&l->submitters), lsubmitter, link);
    if (s) {
        set_waiting(l, -1);
    }
    return s;
}

static void idle_push(goro_limiter *l, lworker *w) {
    goro__list_push_front(&l->idle, &w->ilink);
    w->idle = true;
}

static void idle_unlink(goro_limiter *l, lworker *w) {
    goro__list_remove(&l->idle, &w->ilink);
    w->idle = false;
}

static void wake_waiters_locked(goro_limiter *l) {
    lwaitnode *n = l->waiters;
    l->waiters = NULL;
    while (n) {
        lwaitnode *next = n->next; /* n lives on a stack that may go away once readied */
        wake_g(n->g);
        n = next;
    }
}

static int cur_running(goro_limiter *l) {
    return atomic_load_explicit(&l->running, memory_order_relaxed);
}

/* Hands free slots to blocked submitters, first come first served. */
static void grant_locked(goro_limiter *l) {
    while (!goro__list_empty(&l->submitters) && cur_running(l) < l->max) {
        lsubmitter *s = wq_pop(l);
        set_running(l, +1);
        s->outcome = OUT_GRANTED;
        wake_g(s->g);
    }
}

/* A task gave its slot back. */
static void release_slot_locked(goro_limiter *l) {
    set_running(l, -1);
    grant_locked(l);
    if (cur_running(l) == 0 && l->waiters)
        wake_waiters_locked(l);
}

/* A dead record whose goroutine is gone, for reuse (or NULL). */
static lworker *dead_take_gone_locked(goro_limiter *l) {
    lworker *w = goro__list_entry(l->dead.first, lworker, dlink);
    if (!w || !goro__pool_g_gone(w->g, w->gid))
        return NULL;
    goro__list_remove(&l->dead, &w->dlink);
    return w;
}

/* --------------------------------------------------------- the workers */

static void worker_defer(void *arg);
static void worker_on_panic(const char *msg, void *arg);

static void worker_main(void *arg) {
    lworker *w = arg;
    goro_limiter *l = w->l;
    w->g = goro__getg();
    w->gid = goro_id();
    goro_defer(worker_defer, w);
    for (;;) {
        w->in_task = true;
        w->fn(w->arg);
        w->in_task = false;

        goro__lock_acquire(&l->lock);
        if (!goro__list_empty(&l->submitters) && cur_running(l) <= l->max) {
            /* Keep the slot and run the first blocked submitter's task. */
            lsubmitter *s = wq_pop(l);
            w->fn = s->fn;
            w->arg = s->arg;
            s->outcome = OUT_TAKEN;
            goro__g *sg = s->g;
            bool claimed = goro__claim(sg);
            goro__lock_release(&l->lock);
            if (claimed) {
                goro__ready(sg);
                /* Let the submitter run first: it is next on this P and
                   only needs a moment to queue its next task, whereas
                   leaving it behind this task would make the whole
                   limiter wait on one goroutine's task at a time. */
                goro_yield();
            }
            continue;
        }
        release_slot_locked(l);
        if (l->closed) {
            goro__lock_release(&l->lock);
            return;
        }
        /* Idle for a while, in case more work comes. */
        goro__g *me = goro__getg();
        goro__g_prepare_wait(me);
        w->stop = false;
        idle_push(l, w);
        bool woke = goro__park(GORO__POOL_WAIT_IDLE, NULL, goro__lock_release_v, &l->lock,
                               goro__nanotime() + GORO__LIMITER_IDLE_NS);
        if (woke) {
            if (w->stop)
                return;
            continue; /* w->fn/w->arg were set by the dispatcher */
        }
        goro__lock_acquire(&l->lock);
        if (w->idle)
            idle_unlink(l, w);
        goro__lock_release(&l->lock);
        return;
    }
}

/* The exit handshake: runs when the goroutine ends for any reason (its loop
   returned, a task called goro_exit, or a task panicked - then before
   worker_on_panic). Its unlock is the last touch of l. */
static void worker_defer(void *arg) {
    lworker *w = arg;
    goro_limiter *l = w->l;
    goro__lock_acquire(&l->lock);
    if (w->in_task)
        release_slot_locked(l);
    l->nlive--;
    goro__list_push_back(&l->dead, &w->dlink);
    if (l->nlive == 0 && l->waiters)
        wake_waiters_locked(l);
    goro__lock_release(&l->lock);
}

/* Runs after worker_defer, on the panicking goroutine, which then ends. It
   reads only w (alive until its goroutine is gone), not l. */
static void worker_on_panic(const char *msg, void *arg) {
    lworker *w = arg;
    if (w->user_on_panic) {
        w->user_on_panic(msg, w->arg);
        return;
    }
    const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    size_t n = buf ? goro_stack(buf, cap, false) : 0;
    if (n > cap)
        n = cap;
    flockfile(stderr);
    fprintf(stderr, "goro_limiter: recovered panic in a limited goroutine: %s\n\n", msg);
    if (n) {
        fwrite(buf, 1, n, stderr);
        if (buf[n - 1] != '\n')
            fputc('\n', stderr);
    }
    fflush(stderr);
    funlockfile(stderr);
    free(buf);
}

/* Gives the task (fn, arg), whose slot is already counted, to an idle
   goroutine or a new one. Called with l->lock held; releases it. */
static int dispatch(goro_limiter *l, goro_fn fn, void *arg) {
    GORO__LIST_FOREACH(w, &l->idle, lworker, ilink) {
        if (!goro__claim(w->g))
            continue; /* its idle time ran out: it unlinks itself */
        idle_unlink(l, w);
        w->fn = fn;
        w->arg = arg;
        w->user_on_panic = l->on_panic;
        goro__g *wg = w->g;
        goro__lock_release(&l->lock);
        goro__ready(wg);
        return 0;
    }
    lworker *w = dead_take_gone_locked(l);
    l->nlive++;
    void (*user_on_panic)(const char *, void *) = l->on_panic;
    goro__lock_release(&l->lock);
    if (!w)
        w = malloc(sizeof *w);
    if (w) {
        memset(w, 0, sizeof *w);
        w->l = l;
        w->fn = fn;
        w->arg = arg;
        w->user_on_panic = user_on_panic;
        goro_opts o = {.name = "limited goroutine", .on_panic = worker_on_panic};
        if (user_on_panic == goro_limiter_crash_on_panic)
            o.on_panic = NULL; /* not recovered: the program ends (see top) */
        if (goro_go_opts(&o, worker_main, w) != 0)
            return 0;
        free(w);
    }
    goro__lock_acquire(&l->lock);
    l->nlive--;
    release_slot_locked(l);
    if (l->nlive == 0 && l->waiters)
        wake_waiters_locked(l);
    goro__lock_release(&l->lock);
    return GORO_ENOMEM;
}

/* ------------------------------------------------------------- the API */

static void render_limiter(FILE *out, void *ctx) {
    goro_limiter *l = ctx;
    fprintf(out, "running %d, waiting %d, max %d\n", goro_limiter_running(l),
            goro_limiter_waiting(l), atomic_load_explicit(&l->max_pub, memory_order_relaxed));
}

static _Atomic unsigned long limiter_serial;

goro_limiter *goro_limiter_new(int max, void (*on_panic)(const char *msg, void *arg)) {
    if (max <= 0) {
        *goro__errno_location() = EINVAL;
        return NULL;
    }
    goro_limiter *l = calloc(1, sizeof *l);
    if (!l) {
        *goro__errno_location() = ENOMEM;
        return NULL;
    }
    l->lock = (goro__lock)GORO__LOCK_INIT;
    l->max = max;
    atomic_store(&l->max_pub, max);
    l->on_panic = on_panic;
    l->serial = atomic_fetch_add(&limiter_serial, 1) + 1;
    char name[64];
    snprintf(name, sizeof name, "limiter %lu", l->serial);
    l->debug_registered = goro__debug_register_section(name, render_limiter, l) == 0;
    return l;
}

int goro_limiter_go(goro_limiter *l, goro_fn fn, void *arg) {
    if (!l || !fn)
        return GORO_EINVAL;
    goro__g *me = goro__getg();
    goro__lock_acquire(&l->lock);
    if (l->closed) {
        goro__lock_release(&l->lock);
        return GORO_ECLOSED;
    }
    if (goro__list_empty(&l->submitters) && cur_running(l) < l->max) {
        set_running(l, +1);
        return dispatch(l, fn, arg);
    }
    lsubmitter s = {.fn = fn, .arg = arg, .g = me, .outcome = OUT_NONE};
    goro__list_push_back(&l->submitters, &s.link);
    set_waiting(l, +1);
    goro__g_prepare_wait(me);
    goro__park(GORO__POOL_WAIT_CALLER, NULL, goro__lock_release_v, &l->lock,
               GORO__POOL_NO_DEADLINE);
    switch (s.outcome) {
    case OUT_TAKEN: return 0;
    case OUT_GRANTED: goro__lock_acquire(&l->lock); return dispatch(l, fn, arg);
    default: return GORO_ECLOSED;
    }
}

int goro_limiter_try_go(goro_limiter *l, goro_fn fn, void *arg) {
    if (!l || !fn)
        return GORO_EINVAL;
    goro__lock_acquire(&l->lock);
    if (l->closed) {
        goro__lock_release(&l->lock);
        return GORO_ECLOSED;
    }
    if (!goro__list_empty(&l->submitters) || cur_running(l) >= l->max) {
        goro__lock_release(&l->lock);
        return GORO_EAGAIN;
    }
    set_running(l, +1);
    return dispatch(l, fn, arg);
}

int goro_limiter_running(goro_limiter *l) {
    return l ? atomic_load_explicit(&l->running, memory_order_acquire) : 0;
}

int goro_limiter_waiting(goro_limiter *l) {
    return l ? atomic_load_explicit(&l->waiting, memory_order_acquire) : 0;
}

void goro_limiter_tune(goro_limiter *l, int max) {
    if (!l || max <= 0)
        return;
    goro__lock_acquire(&l->lock);
    if (l->closed) {
        goro__lock_release(&l->lock);
        return;
    }
    l->max = max;
    atomic_store_explicit(&l->max_pub, max, memory_order_relaxed);
    grant_locked(l);
    goro__lock_release(&l->lock);
}

void goro_limiter_wait(goro_limiter *l) {
    if (!l)
        return;
    goro__g *me = goro__getg();
    goro__lock_acquire(&l->lock);
    for (;;) {
        if (cur_running(l) == 0) {
            /* Nothing runs: end the idle goroutines too. */
            GORO__LIST_FOREACH_SAFE(w, &l->idle, lworker, ilink) {
                if (goro__claim(w->g)) {
                    idle_unlink(l, w);
                    w->stop = true;
                    goro__ready(w->g);
                }
            }
            if (l->nlive == 0)
                break;
        }
        lwaitnode n = {.next = l->waiters, .g = me};
        goro__g_prepare_wait(me);
        l->waiters = &n;
        goro__park(GORO__POOL_WAIT_JOIN, NULL, goro__lock_release_v, &l->lock,
                   GORO__POOL_NO_DEADLINE);
        goro__lock_acquire(&l->lock);
    }
    goro__list dead = goro__list_take(&l->dead);
    goro__lock_release(&l->lock);
    GORO__LIST_FOREACH_SAFE(w, &dead, lworker, dlink) {
        goro__pool_wait_gone(w->g, w->gid);
        free(w);
    }
}

void goro_limiter_crash_on_panic(const char *msg, void *arg) {
    /* Never called: its address only tells dispatch() not to recover. */
    (void)arg;
    goro__throw(msg);
}

void goro_limiter_close(goro_limiter *l) {
    if (!l)
        return;
    goro__lock_acquire(&l->lock);
    l->closed = true;
    lsubmitter *s;
    while ((s = wq_pop(l)) != NULL) {
        s->outcome = OUT_CLOSED;
        wake_g(s->g);
    }
    goro__lock_release(&l->lock);
    goro_limiter_wait(l);
}

void goro_limiter_free(goro_limiter *l) {
    if (!l)
        return;
    goro_limiter_close(l);
    if (l->debug_registered)
        goro__debug_unregister_section(render_limiter, l);
    free(l);
}
