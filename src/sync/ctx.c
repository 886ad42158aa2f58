/*
 * ctx.c - goro_ctx, Go's context.Context: Background, WithCancel,
 * WithTimeout, with cancellation propagating down the tree.
 *
 * Objects. Background is a static singleton, never done: goro_ctx_done
 * returns NULL (a nil channel, as Background().Done() is nil in Go), it is
 * never anyone's linked parent, and retain/release/cancel do nothing to it.
 * Every other context is heap-allocated and reference counted:
 *   - the caller of with_cancel/with_timeout owns one reference;
 *   - a child holds one reference on its parent from creation until the
 *     child is cancelled (the canceller drops it, see below);
 *   - an armed deadline timer holds one reference.
 * goro_ctx_release cancels (Go's `defer cancel()`) and drops the caller's
 * reference. A context is freed when the count reaches zero, which can only
 * happen after it was cancelled.
 *
 * Locks. c->mu protects: c->done's creation and closing, c->children and the
 * link fields (linked, sib) of every child in it, c->parent
 * and c->timer_armed. c->err is written once, under c->mu, and read with an
 * atomic load anywhere. At most one context's mu is held at a time (a
 * channel's lock may be taken inside it, to close done).
 *
 * Cancellation (Go's cancelCtx.cancel), without recursion so that a deep
 * chain of contexts cannot overflow a goroutine stack. cancel_node(c, err)
 * sets c->err if it was 0 - exactly one caller wins - and then, still under
 * c->mu: detaches c->parent (the winner now owns c's reference on it),
 * closes c->done, stops c's timer, and moves every child from c->children to
 * the winner's work list, taking a temporary reference on each. The winner
 * then cancels the work list the same way (their children join the list),
 * dropping each child's reference on its parent when it set that child's
 * error, and the temporary reference when done with it. So the thread that
 * set a context's err owns the context's reference on its parent:
 *   - when a parent's canceller set the child's err, it drops the reference
 *     right after;
 *   - when the child's own canceller won (ctx_cancel), it takes the parent's
 *     mu, unlinks the child if it is still linked, and then drops it. The
 *     reference keeps the parent alive until then.
 * A child that is linked while its parent's mu is held is alive: its owner
 * cannot free it before unlinking it under that mu (release cancels first,
 * and the winning canceller unlinks before dropping anything). That is what
 * makes the temporary references safe to take.
 *
 * Deadlines. A timer callback runs on a scheduler thread with the timer heap
 * lock held and must not block, so it must not take c->mu (whose holders may
 * call goro__timer_stop, which takes the heap lock) nor close a channel.
 * Instead it pushes the context on a lock-free stack and wakes one runtime-
 * internal goroutine, the expiry worker (started on the first with_timeout),
 * which cancels each expired context with GORO_ETIMEDOUT and drops the
 * timer's reference. The worker's sleep is published from the park's unlock
 * callback (after it left its stack), so the callback can wake it without a
 * lock: push-then-take-sleeper against publish-sleeper-then-check-stack, both
 * sequentially consistent, so one of the two always sees the other.
 * goro__timer_stop returning false means the callback ran or is running on
 * another thread right now: either way it pushes (or pushed) the context on
 * the worker's stack, and the worker owns the timer's reference.
 */
#include "sync_internal.h"
#include "../util/list.h"

#include <stdlib.h>
#include <string.h>

struct goro_ctx {
    _Atomic int32_t refs;
    _Atomic int err; /* 0, GORO_ECANCELED or GORO_ETIMEDOUT; set once under mu */
    goro__lock mu;
    bool background;
    bool timer_armed;        /* under mu: the timer is queued or firing and owns a ref */
    bool linked;             /* under parent->mu: in parent->children */
    goro_chan *_Atomic done; /* created lazily under mu; closed by the first cancel */
    goro_ctx *parent;        /* referenced until cancelled; under mu, detached by the canceller */
    goro__link sib;          /* in parent->children; under parent->mu */
    goro__list children;     /* goro_ctx by sib; under mu */
    int64_t deadline;        /* absolute goro_nanotime(); INT64_MAX: none. Immutable */
    goro__timer timer;
    goro_ctx *expired_next; /* expiry stack link (written by the timer callback) */
    goro_ctx *work_next;    /* link in a canceller's work list (that canceller's) */
};

static goro_ctx background_ctx = {.refs = 1, .background = true, .deadline = INT64_MAX};

/* ------------------------------------------------------ the closed channel */

/* One channel, closed, shared by every context whose done is first asked for
   after it was cancelled (Go's closedchan). Never freed. */
static goro_chan *_Atomic closedchan;

static goro_chan *closed_chan(void) {
    goro_chan *c = atomic_load_explicit(&closedchan, memory_order_acquire);
    if (c != NULL)
        return c;
    goro_chan *n = goro_chan_make(0, 0);
    if (n == NULL)
        goro__fatal("context: out of memory");
    goro_chan_close(n);
    if (atomic_compare_exchange_strong_explicit(&closedchan, &c, n, memory_order_acq_rel,
                                                memory_order_acquire))
        return n;
    goro_chan_release(n);
    return c;
}

/* ------------------------------------------------------------ references */

static void ctx_free(goro_ctx *c) {
    goro_chan *d = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (d != NULL && d != atomic_load_explicit(&closedchan, memory_order_relaxed))
        goro_chan_release(d);
    free(c);
}

static inline void ctx_ref(goro_ctx *c) {
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void ctx_unref(goro_ctx *c) {
    int32_t r = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    if (r == 1)
        ctx_free(c);
    else if (GORO__UNLIKELY(r <= 0))
        goro__throw("context: reference count underflow");
}

/* Drops a reference that is known not to be the last one (the caller holds
   another), so it may be done with c->mu held. */
static inline void ctx_unref_nonlast(goro_ctx *c) {
    if (GORO__UNLIKELY(atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) <= 1))
        goro__throw("context: dropped the last reference while in use");
}

/* ---------------------------------------------------------- cancellation */

/* p->mu held, c->linked: unlinks c from p->children. */
static void unlink_child(goro_ctx *p, goro_ctx *c) {
    goro__list_remove(&p->children, &c->sib);
    c->linked = false;
}

/* Sets c's error (if nobody did) and detaches its children onto *work, each
   with a temporary reference. True if this call set the error; then
   *parent_out receives c's parent (or NULL), whose reference this call now
   owns. The caller keeps c alive during the call. */
static bool cancel_node(goro_ctx *c, int err, goro_ctx **parent_out, goro_ctx **work) {
    goro__lock_acquire(&c->mu);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
        goro__lock_release(&c->mu);
        return false;
    }
    atomic_store_explicit(&c->err, err, memory_order_release);
    *parent_out = c->parent;
    c->parent = NULL;

    goro_chan *d = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (d != NULL)
        goro_chan_close(d);
    else
        atomic_store_explicit(&c->done, closed_chan(), memory_order_release);

    /* Linked children are alive (see the top comment). */
    goro__link *l;
    while ((l = goro__list_pop_front(&c->children)) != NULL) {
        goro_ctx *ch = goro__list_entry(l, goro_ctx, sib);
        ch->linked = false;
        ctx_ref(ch);
        ch->work_next = *work;
        *work = ch;
    }

    if (c->timer_armed) {
        c->timer_armed = false;
        /* The callback takes no lock, so stopping under c->mu is safe. */
        if (goro__timer_stop(&c->timer))
            ctx_unref_nonlast(c); /* it will never run: drop its reference */
        /* else: fired; the expiry worker owns the reference. */
    }
    goro__lock_release(&c->mu);
    return true;
}

/* Go's cancel(removeFromParent = true, err): cancels c and every descendant
   before returning. The caller keeps c alive. */
static void ctx_cancel(goro_ctx *c, int err) {
    goro_ctx *work = NULL, *p;
    if (!cancel_node(c, err, &p, &work))
        return;
    if (p != NULL) {
        goro__lock_acquire(&p->mu);
        if (c->linked)
            unlink_child(p, c);
        goro__lock_release(&p->mu);
        ctx_unref(p);
    }
    while (work != NULL) {
        goro_ctx *ch = work;
        work = ch->work_next;
        ch->work_next = NULL;
        goro_ctx *chp;
        if (cancel_node(ch, err, &chp, &work) && chp != NULL)
            ctx_unref(chp); /* ch's reference on its parent (already unlinked) */
        ctx_unref(ch);      /* the temporary one */
    }
}

/* ------------------------------------------------------- expiry worker */

static goro_ctx *_Atomic expired_head;  /* Treiber stack: pushed by callbacks, taken whole */
static goro__g *_Atomic worker_sleeper; /* the worker while it sleeps (or is about to) */
static _Atomic int worker_state;        /* 0 none, 1 starting, 2 started */

static void wake_worker(void) {
    goro__g *g = atomic_exchange_explicit(&worker_sleeper, NULL, memory_order_seq_cst);
    if (g != NULL && goro__claim(g))
        goro__ready(g);
}

/* Timer callback: no locks, no blocking. */
static void ctx_timer_fired(void *arg, uint64_t seq) {
    (void)seq;
    goro_ctx *c = arg;
    goro_ctx *head = atomic_load_explicit(&expired_head, memory_order_relaxed);
    do {
        c->expired_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&expired_head, &head, c, memory_order_seq_cst,
                                                    memory_order_relaxed));
    wake_worker();
}

/* Park's unlock callback: runs after the worker left its stack. */
static void worker_publish_sleep(void *arg) {
    atomic_store_explicit(&worker_sleeper, (goro__g *)arg, memory_order_seq_cst);
    if (atomic_load_explicit(&expired_head, memory_order_seq_cst) != NULL)
        wake_worker();
}

static void expiry_worker(void *arg) {
    (void)arg;
    for (;;) {
        goro_ctx *list = atomic_exchange_explicit(&expired_head, NULL, memory_order_acquire);
        if (list == NULL) {
            goro__g *g = goro__getg();
            goro__g_prepare_wait(g);
            goro__park(GORO__WAIT_ZERO, NULL, worker_publish_sleep, g, GORO__SYNC_NO_DEADLINE);
            continue;
        }
        /* Oldest first. */
        goro_ctx *rev = NULL;
        while (list != NULL) {
            goro_ctx *next = list->expired_next;
            list->expired_next = rev;
            rev = list;
            list = next;
        }
        while (rev != NULL) {
            goro_ctx *next = rev->expired_next;
            ctx_cancel(rev, GORO_ETIMEDOUT);
            ctx_unref(rev); /* the timer's reference */
            rev = next;
        }
    }
}

static void ensure_worker(void) {
    if (GORO__LIKELY(atomic_load_explicit(&worker_state, memory_order_acquire) == 2))
        return;
    int expect = 0;
    if (atomic_compare_exchange_strong_explicit(&worker_state, &expect, 1, memory_order_acq_rel,
                                                memory_order_acquire)) {
        goro_opts o;
        memset(&o, 0, sizeof o);
        /* No name: the record outlives every scan LeakSanitizer makes. */
        if (goro__newproc(&o, expiry_worker, NULL, (uintptr_t)__builtin_return_address(0), true) ==
            0)
            goro__fatal("context: cannot start the deadline goroutine");
        atomic_store_explicit(&worker_state, 2, memory_order_release);
        return;
    }
    /* Someone else is starting it; the timers we arm meanwhile only push to
       the stack, which the worker drains when it starts. */
}

/* ------------------------------------------------------------- creation */

static goro_ctx *ctx_new(goro_ctx *parent) {
    if (parent == NULL)
        goro_panic("cannot create context from nil parent");
    goro__getg(); /* start the runtime */
    goro_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        goro__fatal("context: out of memory");
    atomic_init(&c->refs, 1);
    c->deadline = parent->deadline;
    c->timer.idx = -1;
    return c;
}

/* Go's propagateCancel: link c under parent, or start it done. */
static void propagate(goro_ctx *parent, goro_ctx *c) {
    if (parent->background)
        return; /* never cancelled */
    int perr = atomic_load_explicit(&parent->err, memory_order_acquire);
    if (perr == 0) {
        goro__lock_acquire(&parent->mu);
        perr = atomic_load_explicit(&parent->err, memory_order_relaxed);
        if (perr == 0) {
            ctx_ref(parent);
            c->parent = parent;
            c->linked = true;
            goro__list_push_front(&parent->children, &c->sib);
        }
        goro__lock_release(&parent->mu);
    }
    if (perr != 0)
        /* Child of a done parent: starts done with the parent's error. */
        atomic_store_explicit(&c->err, perr, memory_order_release);
}

goro_ctx *goro_ctx_background(void) { return &background_ctx; }

goro_ctx *goro_ctx_with_cancel(goro_ctx *parent) {
    goro_ctx *c = ctx_new(parent);
    propagate(parent, c);
    return c;
}

/* A negative timeout other than GORO_FOREVER, or 0, is already expired;
   GORO_FOREVER is no deadline (with_cancel). */
goro_ctx *goro_ctx_with_timeout(goro_ctx *parent, int64_t ns) {
    if (ns == GORO_FOREVER)
        return goro_ctx_with_cancel(parent);
    if (parent == NULL)
        goro_panic("cannot create context from nil parent");
    int64_t now = goro_nanotime();
    int64_t d = ns > 0 && ns > INT64_MAX - 1 - now ? INT64_MAX - 1 : now + ns;
    /* The parent's deadline is sooner: it alone will expire us. */
    if (parent->deadline <= d)
        return goro_ctx_with_cancel(parent);

    goro_ctx *c = ctx_new(parent);
    c->deadline = d;
    propagate(parent, c);
    if (ns <= 0) {
        ctx_cancel(c, GORO_ETIMEDOUT); /* deadline already passed */
        return c;
    }
    ensure_worker();
    goro__lock_acquire(&c->mu);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) == 0) {
        ctx_ref(c); /* the timer's */
        c->timer_armed = true;
        goro__timer_start(&c->timer, d, ctx_timer_fired, c, 0);
    }
    goro__lock_release(&c->mu);
    return c;
}

/* -------------------------------------------------------------- queries */

void goro_ctx_cancel(goro_ctx *c) {
    if (c == NULL || c->background)
        return;
    ctx_cancel(c, GORO_ECANCELED);
}

goro_chan *goro_ctx_done(goro_ctx *c) {
    if (c == NULL || c->background)
        return NULL;
    goro_chan *d = atomic_load_explicit(&c->done, memory_order_acquire);
    if (d != NULL)
        return d;
    goro__lock_acquire(&c->mu);
    d = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (d == NULL) {
        if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
            d = closed_chan();
        } else {
            d = goro_chan_make(0, 0);
            if (d == NULL)
                goro__fatal("context: out of memory");
        }
        atomic_store_explicit(&c->done, d, memory_order_release);
    }
    goro__lock_release(&c->mu);
    return d;
}

int goro_ctx_err(goro_ctx *c) {
    if (c == NULL || c->background)
        return 0;
    return atomic_load_explicit(&c->err, memory_order_acquire);
}

/* Go's texts for ctx.Err(): context.Canceled and context.DeadlineExceeded. */
const char *goro_ctx_err_str(goro_ctx *c) {
    switch (goro_ctx_err(c)) {
    case GORO_ECANCELED: return "context canceled";
    case GORO_ETIMEDOUT: return "context deadline exceeded";
    default: return NULL;
    }
}

void goro_ctx_release(goro_ctx *c) {
    if (c == NULL || c->background)
        return;
    ctx_cancel(c, GORO_ECANCELED);
    ctx_unref(c);
}

goro_ctx *goro__ctx_retain(goro_ctx *c) {
    if (c != NULL && !c->background)
        ctx_ref(c);
    return c;
}

void goro__ctx_unref(goro_ctx *c) {
    if (c != NULL && !c->background)
        ctx_unref(c);
}
