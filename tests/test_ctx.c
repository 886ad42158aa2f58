/*
 * test_ctx.c - goro_ctx, in the spirit of Go's src/context/context_test.go:
 * Background, trees cancelled from the root, deadlines (GORO_ETIMEDOUT),
 * children of done parents, done channels in goro_select, release cancels,
 * goroutines and plain threads waiting together, and a churn test that
 * ASan checks for leaks and use-after-free.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "goro_test.h"

/* Is c's done channel closed (a receive completes at once with ok false)? */
static bool ctx_is_done(goro_ctx *c) {
    goro_chan *d = goro_ctx_done(c);
    if (d == NULL)
        return false;
    bool ok = true;
    return goro_chan_try_recv(d, NULL, &ok) == 0 && !ok;
}

GORO_TEST(ctx, background_never_done, .timeout = 10) {
    goro_ctx *bg = goro_ctx_background();
    cr_assert_not_null(bg);
    cr_assert_eq(goro_ctx_background(), bg, "Background is a singleton");
    cr_assert_null(goro_ctx_done(bg), "Background().Done() is a nil channel");
    cr_assert_eq(goro_ctx_err(bg), 0);
    goro_ctx_cancel(bg);
    goro_ctx_release(bg);
    cr_assert_eq(goro_ctx_err(bg), 0);
    /* The nil channel is never ready in a select. */
    goro_case cs[1] = {{.chan = goro_ctx_done(bg), .dir = GORO_RECV}};
    cr_assert_eq(goro_select(cs, 1, 0), -1);
    cr_assert_eq(goro_select(cs, 1, GORO_MS(5)), -1);
}

GORO_TEST(ctx, with_cancel_basics, .timeout = 10) {
    goro_ctx *c = goro_ctx_with_cancel(goro_ctx_background());
    cr_assert_not_null(c);
    goro_chan *d = goro_ctx_done(c);
    cr_assert_not_null(d);
    cr_assert_eq(goro_ctx_done(c), d, "done is created once");
    cr_assert_eq(goro_ctx_err(c), 0);
    cr_assert_not(ctx_is_done(c));
    goro_ctx_cancel(c);
    cr_assert_eq(goro_ctx_err(c), GORO_ECANCELED);
    cr_assert(ctx_is_done(c));
    goro_ctx_cancel(c); /* idempotent */
    cr_assert_eq(goro_ctx_err(c), GORO_ECANCELED);
    goro_ctx_release(c);
}

/* Go's TestWithCancel + a deeper tree: cancelling the root reaches every
   descendant; cancelling an inner node leaves its parent and siblings. */
GORO_TEST(ctx, tree_cancelled_from_root, .timeout = 10) {
    goro_ctx *root = goro_ctx_with_cancel(goro_ctx_background());
    enum { K = 3 };
    goro_ctx *kids[K], *grand[K][K];
    for (int i = 0; i < K; i++) {
        kids[i] = goro_ctx_with_cancel(root);
        for (int j = 0; j < K; j++)
            grand[i][j] = i == 1 ? goro_ctx_with_timeout(kids[i], GORO_SEC(60))
                                 : goro_ctx_with_cancel(kids[i]);
    }
    /* Some done channels exist before the cancel, some are asked for after. */
    goro_chan *early = goro_ctx_done(grand[2][2]);

    goro_ctx_cancel(kids[0]);
    cr_assert_eq(goro_ctx_err(kids[0]), GORO_ECANCELED);
    for (int j = 0; j < K; j++)
        cr_assert_eq(goro_ctx_err(grand[0][j]), GORO_ECANCELED);
    cr_assert_eq(goro_ctx_err(root), 0, "cancelling a child cancelled its parent");
    cr_assert_eq(goro_ctx_err(kids[1]), 0, "cancelling a child cancelled its sibling");
    cr_assert_eq(goro_ctx_err(grand[1][0]), 0);

    goro_ctx_cancel(root);
    for (int i = 0; i < K; i++) {
        cr_assert_eq(goro_ctx_err(kids[i]), GORO_ECANCELED);
        cr_assert(ctx_is_done(kids[i]));
        for (int j = 0; j < K; j++) {
            cr_assert_eq(goro_ctx_err(grand[i][j]), GORO_ECANCELED);
            cr_assert(ctx_is_done(grand[i][j]));
        }
    }
    bool ok = true;
    cr_assert_eq(goro_chan_try_recv(early, NULL, &ok), 0);
    cr_assert_not(ok);

    /* Release in an arbitrary order: parents before children. */
    goro_ctx_release(root);
    for (int i = 0; i < K; i++) {
        goro_ctx_release(kids[i]);
        for (int j = 0; j < K; j++)
            goro_ctx_release(grand[i][j]);
    }
}

GORO_TEST(ctx, child_of_done_parent_starts_done, .timeout = 10) {
    goro_ctx *p = goro_ctx_with_cancel(goro_ctx_background());
    goro_ctx_cancel(p);
    goro_ctx *c1 = goro_ctx_with_cancel(p);
    goro_ctx *c2 = goro_ctx_with_timeout(p, GORO_SEC(10));
    cr_assert_eq(goro_ctx_err(c1), GORO_ECANCELED);
    cr_assert_eq(goro_ctx_err(c2), GORO_ECANCELED);
    cr_assert(ctx_is_done(c1));
    cr_assert(ctx_is_done(c2));

    goro_ctx *t = goro_ctx_with_timeout(goro_ctx_background(), 0);
    cr_assert_eq(goro_ctx_err(t), GORO_ETIMEDOUT, "a zero timeout is already expired");
    goro_ctx *c3 = goro_ctx_with_cancel(t);
    cr_assert_eq(goro_ctx_err(c3), GORO_ETIMEDOUT, "child of an expired parent");
    cr_assert(ctx_is_done(c3));
    goro_ctx_release(c3);
    goro_ctx_release(t);
    goro_ctx_release(c1);
    goro_ctx_release(c2);
    goro_ctx_release(p);
}

GORO_TEST(ctx, deadline_expires, .timeout = 10) {
    int64_t t0 = goro_nanotime();
    goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(30));
    goro_ctx *child = goro_ctx_with_cancel(c);
    goro_ctx *later = goro_ctx_with_timeout(c, GORO_SEC(30)); /* parent's is sooner */
    cr_assert_eq(goro_ctx_err(c), 0);
    bool ok = goro_chan_recv(goro_ctx_done(child), NULL);
    int64_t el = goro_nanotime() - t0;
    cr_assert_not(ok, "done is closed, not sent on");
    cr_assert_geq(el, GORO_MS(30), "expired early: %lld ns", (long long)el);
    cr_assert_lt(el, GORO_MS(1000), "expired late: %lld ns", (long long)el);
    cr_assert_eq(goro_ctx_err(c), GORO_ETIMEDOUT);
    cr_assert_eq(goro_ctx_err(child), GORO_ETIMEDOUT);
    /* Cancellation reaches the children one after another: `later` is done
       soon after `child`, not necessarily at the same instant (as in Go). */
    cr_assert_not(goro_chan_recv(goro_ctx_done(later), NULL));
    cr_assert_eq(goro_ctx_err(later), GORO_ETIMEDOUT);
    goro_ctx_release(later);
    goro_ctx_release(child);
    goro_ctx_release(c);
}

GORO_TEST(ctx, inner_deadline_leaves_parent, .timeout = 10) {
    goro_ctx *p = goro_ctx_with_timeout(goro_ctx_background(), GORO_SEC(30));
    goro_ctx *c = goro_ctx_with_timeout(p, GORO_MS(10));
    cr_assert_not(goro_chan_recv(goro_ctx_done(c), NULL));
    cr_assert_eq(goro_ctx_err(c), GORO_ETIMEDOUT);
    cr_assert_eq(goro_ctx_err(p), 0);
    cr_assert_not(ctx_is_done(p));
    goro_ctx_release(c);
    goro_ctx_release(p);
}

GORO_TEST(ctx, cancel_before_deadline, .timeout = 10) {
    goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(20));
    goro_ctx_cancel(c);
    cr_assert_eq(goro_ctx_err(c), GORO_ECANCELED);
    goro_sleep(GORO_MS(40)); /* the stopped timer must not fire */
    cr_assert_eq(goro_ctx_err(c), GORO_ECANCELED, "the deadline overwrote the first error");
    goro_ctx_release(c);
}

/* ctx.Done() in a select together with a work channel. */
typedef struct {
    goro_ctx *ctx;
    goro_chan *work;
    _Atomic int got;
    _Atomic int result; /* 1: saw cancel */
} ctxworker;

static void ctx_worker(void *a) {
    ctxworker *w = a;
    for (;;) {
        int v = 0;
        goro_case cs[2] = {
            {.chan = goro_ctx_done(w->ctx), .dir = GORO_RECV},
            {.chan = w->work, .dir = GORO_RECV, .elem = &v},
        };
        int i = goro_select(cs, 2, GORO_FOREVER);
        if (i == 0) {
            cr_assert_not(cs[0].ok);
            atomic_store(&w->result, 1);
            return;
        }
        atomic_fetch_add(&w->got, v);
    }
}

GORO_TEST(ctx, done_in_select, .timeout = 10) {
    goro_maxprocs(2);
    int start = goro_count();
    goro_ctx *c = goro_ctx_with_cancel(goro_ctx_background());
    static ctxworker w;
    w = (ctxworker){.ctx = c, .work = goro_chan_make(sizeof(int), 0)};
    goro_go(ctx_worker, &w);
    for (int i = 1; i <= 10; i++)
        goro_chan_send(w.work, &i);
    goro_ctx_cancel(c);
    goro_test_await_count(start);
    cr_assert_eq(atomic_load(&w.got), 55);
    cr_assert_eq(atomic_load(&w.result), 1);
    goro_ctx_release(c);
    goro_chan_release(w.work);
}

/* Many goroutines and plain threads wait on one tree; the deadline of the
   root wakes all of them, each with ETIMEDOUT on its own child. */
typedef struct {
    goro_ctx *parent;
    _Atomic int timedout;
    _Atomic int wrong;
} ctxfan;

static void ctx_fan_body(ctxfan *f) {
    goro_ctx *mine = goro_ctx_with_cancel(f->parent);
    goro_case cs[1] = {{.chan = goro_ctx_done(mine), .dir = GORO_RECV}};
    if (goro_select(cs, 1, GORO_FOREVER) != 0 || cs[0].ok)
        atomic_fetch_add(&f->wrong, 1);
    if (goro_ctx_err(mine) == GORO_ETIMEDOUT)
        atomic_fetch_add(&f->timedout, 1);
    goro_ctx_release(mine);
}
static void ctx_fan_g(void *a) { ctx_fan_body(a); }
static void *ctx_fan_t(void *a) {
    ctx_fan_body(a);
    return NULL;
}

GORO_TEST(ctx, deadline_wakes_goroutines_and_threads, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static ctxfan f;
    memset(&f, 0, sizeof f);
    f.parent = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(50));
    enum { G = 20, T = 3 };
    for (int i = 0; i < G; i++)
        goro_go(ctx_fan_g, &f);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, ctx_fan_t, &f);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    goro_test_await_count(start);
    cr_assert_eq(atomic_load(&f.wrong), 0);
    cr_assert_eq(atomic_load(&f.timedout), G + T);
    cr_assert_eq(goro_ctx_err(f.parent), GORO_ETIMEDOUT);
    goro_ctx_release(f.parent);
}

/* Go's `defer cancel()`: releasing a context cancels it and its subtree. */
GORO_TEST(ctx, release_cancels, .timeout = 10) {
    goro_ctx *p = goro_ctx_with_cancel(goro_ctx_background());
    goro_ctx *c = goro_ctx_with_cancel(p);
    goro_chan *d = goro_ctx_done(c);
    goro_chan_retain(d); /* keep it past c's release, to look at it */
    goro_ctx_release(c);
    bool ok = true;
    cr_assert_eq(goro_chan_try_recv(d, NULL, &ok), 0, "release did not close done");
    cr_assert_not(ok);
    goro_chan_release(d);
    cr_assert_eq(goro_ctx_err(p), 0, "releasing a child cancelled its parent");

    goro_ctx *c2 = goro_ctx_with_timeout(p, GORO_SEC(30));
    goro_ctx_release(p); /* the child keeps p alive and is now cancelled */
    cr_assert_eq(goro_ctx_err(c2), GORO_ECANCELED);
    cr_assert(ctx_is_done(c2));
    goro_ctx_release(c2);
}

/* Churn: trees with short deadlines, cancelled and released from several
   goroutines at once while the deadlines fire (ASan/TSan find misuse). */
typedef struct {
    goro_ctx *root;
    int seed;
    goro_chan *finished;
} ctxchurn;

static void ctx_churn_g(void *a) {
    ctxchurn *ch = a;
    unsigned s = (unsigned)ch->seed;
    for (int i = 0; i < 200; i++) {
        s = s * 1103515245u + 12345u;
        goro_ctx *c = goro_ctx_with_timeout(ch->root, GORO_US(50 + (s >> 16) % 400));
        goro_ctx *gc = goro_ctx_with_cancel(c);
        if ((s >> 8) & 1)
            goro_ctx_done(gc);
        if ((s >> 9) & 1)
            goro_sleep(GORO_US((s >> 12) % 300));
        if ((s >> 10) & 1) {
            goro_ctx_release(c);
            goro_ctx_release(gc);
        } else {
            goro_ctx_release(gc);
            goro_ctx_release(c);
        }
    }
    int one = 1;
    goro_chan_send(ch->finished, &one);
}

GORO_TEST(ctx, churn, .timeout = 60) {
    goro_maxprocs(2);
    int start = goro_count();
    goro_ctx *root = goro_ctx_with_cancel(goro_ctx_background());
    enum { G = 8 };
    static ctxchurn args[G];
    goro_chan *fin = goro_chan_make(sizeof(int), G);
    for (int i = 0; i < G; i++) {
        args[i] = (ctxchurn){root, i + 1, fin};
        goro_go(ctx_churn_g, &args[i]);
    }
    for (int i = 0; i < G; i++) {
        int v;
        cr_assert(goro_chan_recv(fin, &v));
    }
    goro_ctx_release(root);
    goro_chan_release(fin);
    goro_test_await_count(start);
}

GORO_TEST(ctx, nil_parent_panics, .timeout = 10, .exit_code = 2) { goro_ctx_with_cancel(NULL); }

/* A chain far deeper than a goroutine stack could recurse over: cancelling
   the root must reach the leaf without recursion. Runs in a goroutine with
   the default (small) stack. */
typedef struct {
    int depth;
    _Atomic int ok;
    goro_chan *fin;
} ctxdeep;

static void ctx_deep_g(void *a) {
    ctxdeep *d = a;
    goro_ctx **chain = malloc(sizeof *chain * (size_t)d->depth);
    chain[0] = goro_ctx_with_cancel(goro_ctx_background());
    for (int i = 1; i < d->depth; i++)
        chain[i] = goro_ctx_with_cancel(chain[i - 1]);
    goro_chan *leaf_done = goro_ctx_done(chain[d->depth - 1]);
    goro_ctx_cancel(chain[0]);
    bool closed = !goro_chan_recv(leaf_done, NULL);
    bool all = true;
    for (int i = 0; i < d->depth; i++)
        all = all && goro_ctx_err(chain[i]) == GORO_ECANCELED;
    /* Release from the root down: each child keeps nothing alive now. */
    for (int i = 0; i < d->depth; i++)
        goro_ctx_release(chain[i]);
    free(chain);
    atomic_store(&d->ok, closed && all);
    int one = 1;
    goro_chan_send(d->fin, &one);
}

GORO_TEST(ctx, deep_chain_cancel, .timeout = 30) {
    int start = goro_count();
    static ctxdeep d;
    d = (ctxdeep){.depth = 50000, .fin = goro_chan_make(sizeof(int), 1)};
    goro_go(ctx_deep_g, &d);
    int v;
    cr_assert(goro_chan_recv(d.fin, &v));
    cr_assert(atomic_load(&d.ok), "the leaf of a deep chain was not cancelled");
    goro_chan_release(d.fin);

    /* Release leaf-first too, without cancelling first. */
    enum { DEPTH = 20000 };
    static goro_ctx *chain[DEPTH];
    chain[0] = goro_ctx_with_timeout(goro_ctx_background(), GORO_SEC(30));
    for (int i = 1; i < DEPTH; i++)
        chain[i] = goro_ctx_with_cancel(chain[i - 1]);
    for (int i = DEPTH - 1; i >= 0; i--)
        goro_ctx_release(chain[i]);
    goro_test_await_count(start);
}
