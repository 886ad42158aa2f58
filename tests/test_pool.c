/*
 * test_pool.c - goro_pool: every test of tunny's tunny_test.go ported to our
 * stricter contract (suite pool_tunny), then what tunny does not check
 * (suite pool): barriers, shrinking and closing under load, timeouts and
 * cancellation before and after a job started (interrupt exactly once, and
 * only then), plain-thread callers, queue_length on every path, idle-first
 * shrinking, goroutine counts right after close, panics and goro_exit in jobs.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "runtime/runtime.h"
#include "goro_test.h"
#include "goro_test_internal.h"
#include "pool_test_kit.h"

static void *fn_double(void *payload, void *ctx) {
    (void)ctx;
    return I2P(P2I(payload) * 2);
}

static void *fn_foo(void *payload, void *ctx) {
    (void)payload;
    (void)ctx;
    return (void *)"foo";
}

/* ============================================================ tunny's tests */

/* TestPoolSizeAdjustment */
GORO_TEST(pool_tunny, size_adjustment, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(10, fn_foo, NULL);
    cr_assert_not_null(p);
    cr_assert_eq(goro_pool_size(p), 10);
    goro_pool_set_size(p, 10);
    cr_assert_eq(goro_pool_size(p), 10);
    goro_pool_set_size(p, 9);
    cr_assert_eq(goro_pool_size(p), 9);
    goro_pool_set_size(p, 10);
    cr_assert_eq(goro_pool_size(p), 10);
    goro_pool_set_size(p, 0);
    cr_assert_eq(goro_pool_size(p), 0);
    goro_pool_set_size(p, 10);
    cr_assert_eq(goro_pool_size(p), 10);
    void *r = NULL;
    cr_assert_eq(goro_pool_process(p, I2P(0), &r), 0);
    cr_assert_str_eq((const char *)r, "foo");
    goro_pool_close(p);
    cr_assert_eq(goro_pool_size(p), 0);
    goro_pool_free(p);
}

/* TestFuncJob */
GORO_TEST(pool_tunny, func_job, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(10, fn_double, NULL);
    for (int i = 0; i < 10; i++) {
        void *r = NULL;
        cr_assert_eq(goro_pool_process(p, I2P(10), &r), 0);
        cr_assert_eq(P2I(r), 20);
    }
    goro_pool_free(p);
}

/* TestFuncJobTimed (tunny: 1 ms; generous here, the machine may be loaded) */
GORO_TEST(pool_tunny, func_job_timed, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(10, fn_double, NULL);
    for (int i = 0; i < 10; i++) {
        void *r = NULL;
        cr_assert_eq(goro_pool_process_timed(p, I2P(10), GORO_MS(500), &r), 0);
        cr_assert_eq(P2I(r), 20);
    }
    goro_pool_free(p);
}

/* TestFuncJobCtx / "Completes when ctx not canceled" */
GORO_TEST(pool_tunny, func_job_ctx_completes, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(10, fn_double, NULL);
    goro_ctx *bg = goro_ctx_background();
    goro_ctx *c = goro_ctx_with_cancel(bg);
    for (int i = 0; i < 10; i++) {
        void *r = NULL;
        cr_assert_eq(goro_pool_process_ctx(p, bg, I2P(10), &r), 0);
        cr_assert_eq(P2I(r), 20);
        r = NULL;
        cr_assert_eq(goro_pool_process_ctx(p, c, I2P(11), &r), 0);
        cr_assert_eq(P2I(r), 22);
    }
    goro_ctx_release(c);
    goro_pool_free(p);
}

/* TestFuncJobCtx / "Returns err when ctx canceled" (DeadlineExceeded). The
   job sleeps 300 ms rather than tunny's 1 ms: a 1 ns context expires through
   a timer here, which a loaded machine may fire after a 1 ms job ended. */
static void *fn_sleep300ms_double(void *payload, void *ctx) {
    (void)ctx;
    goro_sleep(GORO_MS(300));
    return I2P(P2I(payload) * 2);
}

GORO_TEST(pool_tunny, func_job_ctx_deadline, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(1, fn_sleep300ms_double, NULL);
    goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), 1);
    void *r = NULL;
    cr_assert_eq(goro_pool_process_ctx(p, c, I2P(10), &r), GORO_ETIMEDOUT);
    goro_ctx_release(c);
    goro_pool_free(p);
}

/* TestCallbackJob: NewCallback is new_func with a trampoline. */
typedef struct callback_payload {
    int is_func;
    void (*fn)(void *);
    void *arg;
} callback_payload;

static const char callback_not_func[] = "generic worker not given a func()";

static void *fn_callback(void *payload, void *ctx) {
    (void)ctx;
    callback_payload *cp = payload;
    if (!cp || !cp->is_func)
        return (void *)callback_not_func;
    cp->fn(cp->arg);
    return NULL;
}

static void bump(void *arg) { atomic_fetch_add((_Atomic int *)arg, 1); }

GORO_TEST(pool_tunny, callback_job, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(10, fn_callback, NULL);
    _Atomic int counter = 0;
    for (int i = 0; i < 10; i++) {
        callback_payload cp = {1, bump, &counter};
        void *r = I2P(1);
        cr_assert_eq(goro_pool_process(p, &cp, &r), 0);
        cr_assert_null(r);
    }
    callback_payload notfn = {0, NULL, NULL};
    void *r = NULL;
    cr_assert_eq(goro_pool_process(p, &notfn, &r), 0);
    cr_assert_eq(r, (void *)callback_not_func);
    cr_assert_eq(atomic_load(&counter), 10);
    goro_pool_free(p);
}

/* TestTimeout (a 300 ms job for the same reason as above) */
GORO_TEST(pool_tunny, timeout, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(1, fn_sleep300ms_double, NULL);
    void *r = NULL;
    cr_assert_eq(goro_pool_process_timed(p, I2P(10), 1, &r), GORO_ETIMEDOUT);
    goro_pool_free(p);
}

/* TestTimedJobsAfterClose */
GORO_TEST(pool_tunny, timed_jobs_after_close, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(1, fn_double, NULL);
    goro_pool_close(p);
    void *r = NULL;
    cr_assert_eq(goro_pool_process_timed(p, I2P(10), GORO_MS(10), &r), GORO_ECLOSED);
    /* Deterministic even with a tiny timeout (tunny's PR #36 race). */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(goro_pool_process_timed(p, I2P(10), 1, &r), GORO_ECLOSED);
    goro_pool_free(p);
}

/* TestJobsAfterClose: tunny's Process panics; ours returns GORO_ECLOSED. */
GORO_TEST(pool_tunny, jobs_after_close, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(1, fn_double, NULL);
    goro_pool_close(p);
    void *r = NULL;
    cr_assert_eq(goro_pool_process(p, I2P(10), &r), GORO_ECLOSED);
    cr_assert_eq(goro_pool_process_ctx(p, goro_ctx_background(), I2P(10), &r), GORO_ECLOSED);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    goro_pool_free(p);
}

/* TestParallelJobs: 10 workers, each job waits at a barrier of 10. */
typedef struct barrier_ctx {
    goro_waitgroup job_group;
} barrier_ctx;

static void *fn_barrier(void *payload, void *ctx) {
    barrier_ctx *b = ctx;
    goro_waitgroup_done(&b->job_group);
    goro_waitgroup_wait(&b->job_group);
    return I2P(P2I(payload) * 2);
}

typedef struct caller_arg {
    goro_pool *p;
    goro_waitgroup *wg;
    _Atomic int *bad;
    int rounds;
} caller_arg;

static void barrier_caller(void *arg) {
    caller_arg *a = arg;
    void *r = NULL;
    if (goro_pool_process(a->p, I2P(10), &r) != 0 || P2I(r) != 20)
        atomic_fetch_add(a->bad, 1);
    goro_waitgroup_done(a->wg);
}

GORO_TEST(pool_tunny, parallel_jobs, .timeout = 10) {
    enum { N = 10 };
    barrier_ctx b;
    memset(&b, 0, sizeof b);
    goro_pool *p = goro_pool_new_func(N, fn_barrier, &b);
    _Atomic int bad = 0;
    goro_waitgroup test_group = {0};
    goro_waitgroup_add(&b.job_group, N);
    goro_waitgroup_add(&test_group, N);
    caller_arg a = {p, &test_group, &bad, 1};
    for (int i = 0; i < N; i++)
        cr_assert_neq(goro_go(barrier_caller, &a), 0);
    goro_waitgroup_wait(&test_group);
    cr_assert_eq(atomic_load(&bad), 0);
    goro_pool_free(p);
}

/* TestCustomWorker: a worker blocked in block_until_ready, then in process. */
typedef struct mock_worker {
    goro_worker base;
    goro_chan *block_proc;   /* closed: process returns */
    goro_chan *block_ready;  /* closed: block_until_ready returns */
    goro_chan *interrupt_ch; /* unbuffered: interrupt hands process a token */
    _Atomic int interrupts;
    _Atomic int terminated;
    _Atomic int readies;
    _Atomic int started;
} mock_worker;

static void *mock_process(goro_worker *w, void *in) {
    mock_worker *m = (mock_worker *)w;
    atomic_fetch_add(&m->started, 1);
    goro_case cs[2] = {{.chan = m->block_proc, .dir = GORO_RECV},
                       {.chan = m->interrupt_ch, .dir = GORO_RECV}};
    goro_select(cs, 2, GORO_FOREVER);
    return in;
}

static void mock_ready(goro_worker *w) {
    mock_worker *m = (mock_worker *)w;
    atomic_fetch_add(&m->readies, 1);
    goro_chan_recv(m->block_ready, NULL);
}

static void mock_interrupt(goro_worker *w) {
    mock_worker *m = (mock_worker *)w;
    atomic_fetch_add(&m->interrupts, 1);
    goro_chan_send(m->interrupt_ch, NULL);
}

static void mock_terminate(goro_worker *w) {
    mock_worker *m = (mock_worker *)w;
    atomic_store(&m->terminated, 1);
}

typedef struct mock_registry {
    mock_worker *made[16];
    _Atomic int n;
} mock_registry;

static goro_worker *mock_ctor(void *ctx) {
    mock_registry *reg = ctx;
    mock_worker *m = calloc(1, sizeof *m);
    m->base.process = mock_process;
    m->base.block_until_ready = mock_ready;
    m->base.interrupt = mock_interrupt;
    m->base.terminate = mock_terminate;
    m->block_proc = goro_chan_make(0, 0);
    m->block_ready = goro_chan_make(0, 0);
    m->interrupt_ch = goro_chan_make(0, 0);
    reg->made[atomic_fetch_add(&reg->n, 1)] = m;
    return &m->base;
}

static void mock_free(mock_worker *m) {
    goro_chan_release(m->block_proc);
    goro_chan_release(m->block_ready);
    goro_chan_release(m->interrupt_ch);
    free(m);
}

GORO_TEST(pool_tunny, custom_worker, .timeout = 10) {
    mock_registry reg;
    memset(&reg, 0, sizeof reg);
    goro_pool *p = goro_pool_new(1, mock_ctor, &reg);
    cr_assert_eq(atomic_load(&reg.n), 1);
    mock_worker *w = reg.made[0];
    cr_assert_eq(atomic_load(&w->terminated), 0, "worker started off terminated");

    /* Stuck in block_until_ready: no worker is claimed, so no interrupt. */
    void *r = NULL;
    cr_assert_eq(goro_pool_process_timed(p, I2P(10), GORO_MS(1), &r), GORO_ETIMEDOUT);
    cr_assert_eq(atomic_load(&w->interrupts), 0);
    cr_assert_eq(atomic_load(&w->started), 0);

    /* Ready now; the job starts and blocks in process: interrupted once. */
    goro_chan_close(w->block_ready);
    cr_assert_eq(goro_pool_process_timed(p, I2P(10), GORO_MS(300), &r), GORO_ETIMEDOUT);
    cr_assert_eq(atomic_load(&w->started), 1);
    cr_assert_eq(atomic_load(&w->interrupts), 1);

    goro_chan_close(w->block_proc);
    cr_assert_eq(goro_pool_process(p, I2P(10), &r), 0);
    cr_assert_eq(P2I(r), 10);
    cr_assert_eq(atomic_load(&w->interrupts), 1);

    goro_pool_close(p);
    cr_assert_eq(atomic_load(&w->terminated), 1, "worker was not terminated");
    goro_pool_free(p);
    mock_free(w);
}

/* ====================================================== beyond tunny's tests */

/* A job that blocks on a gate channel until it is closed (or, with an
   interrupt, until interrupted) and counts what happens. */
typedef struct gate_worker {
    goro_worker base;
    struct gate_ctx *g;
    goro_chan *intr; /* 1-slot: interrupt posts a token */
} gate_worker;

typedef struct gate_ctx {
    goro_chan *gate;    /* closed: blocked jobs return */
    goro_chan *started; /* each started job sends its payload here (buffered) */
    _Atomic int made, terminated, interrupts, processed, readies, dropped;
    pool_kit_meter meter;
} gate_ctx;

static void *gate_process(goro_worker *w, void *payload) {
    gate_worker *gw = (gate_worker *)w;
    gate_ctx *g = gw->g;
    pool_kit_meter_enter(&g->meter);
    if (g->started)
        goro_chan_send(g->started, &payload);
    intptr_t v = P2I(payload);
    if (v >= 1000) { /* a blocking job */
        goro_case cs[2] = {{.chan = g->gate, .dir = GORO_RECV},
                           {.chan = gw->intr, .dir = GORO_RECV}};
        int idx = goro_select(cs, 2, GORO_FOREVER);
        if (idx == 1)
            atomic_fetch_add(&g->dropped, 1);
    }
    pool_kit_meter_leave(&g->meter);
    atomic_fetch_add(&g->processed, 1);
    return I2P(v + 1);
}

static void gate_ready(goro_worker *w) { atomic_fetch_add(&((gate_worker *)w)->g->readies, 1); }

static void gate_interrupt(goro_worker *w) {
    gate_worker *gw = (gate_worker *)w;
    atomic_fetch_add(&gw->g->interrupts, 1);
    goro_chan_try_send(gw->intr, NULL);
}

static void gate_terminate(goro_worker *w) {
    gate_worker *gw = (gate_worker *)w;
    atomic_fetch_add(&gw->g->terminated, 1);
    goro_chan_release(gw->intr);
    free(gw);
}

static goro_worker *gate_ctor(void *ctx) {
    gate_ctx *g = ctx;
    gate_worker *gw = calloc(1, sizeof *gw);
    gw->base.process = gate_process;
    gw->base.block_until_ready = gate_ready;
    gw->base.interrupt = gate_interrupt;
    gw->base.terminate = gate_terminate;
    gw->g = g;
    gw->intr = goro_chan_make(0, 1);
    atomic_fetch_add(&g->made, 1);
    return &gw->base;
}

static void gate_init(gate_ctx *g, size_t started_cap) {
    memset(g, 0, sizeof *g);
    g->gate = goro_chan_make(0, 0);
    g->started = started_cap ? goro_chan_make(sizeof(void *), started_cap) : NULL;
}

static void gate_fini(gate_ctx *g) {
    goro_chan_release(g->gate);
    goro_chan_release(g->started);
}

/* A caller goroutine/thread doing one call of a given kind. */
typedef struct call {
    goro_pool *p;
    intptr_t payload;
    int kind; /* 0 process, 1 timed, 2 ctx */
    int64_t ns;
    goro_ctx *ctx;
    int err;
    intptr_t result;
    goro_chan *done; /* gets one token when the call returned */
} call;

static void do_call(void *arg) {
    call *c = arg;
    void *r = NULL;
    switch (c->kind) {
    case 0: c->err = goro_pool_process(c->p, I2P(c->payload), &r); break;
    case 1: c->err = goro_pool_process_timed(c->p, I2P(c->payload), c->ns, &r); break;
    default: c->err = goro_pool_process_ctx(c->p, c->ctx, I2P(c->payload), &r); break;
    }
    c->result = P2I(r);
    goro_chan_send(c->done, NULL);
}

/* 10 workers and 10 callers that must all be inside a job at once, many
   rounds; callers are goroutines in even rounds, plain threads in odd ones. */
static void *thread_call(void *arg) {
    do_call(arg);
    return NULL;
}

GORO_TEST(pool, barrier_10x10_goroutines_and_threads, .timeout = 20) {
    enum { N = 10, ROUNDS = 20 };
    barrier_ctx b;
    memset(&b, 0, sizeof b);
    goro_pool *p = goro_pool_new_func(N, fn_barrier, &b);
    goro_chan *done = goro_chan_make(0, N);
    for (int round = 0; round < ROUNDS; round++) {
        goro_waitgroup_add(&b.job_group, N);
        call calls[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            calls[i] = (call){.p = p,
                              .payload = i,
                              .kind = round % 3,
                              .ns = GORO_SEC(5),
                              .ctx = goro_ctx_background(),
                              .done = done};
            if (round % 2 == 0)
                cr_assert_neq(goro_go(do_call, &calls[i]), 0);
            else
                cr_assert_eq(pthread_create(&th[i], NULL, thread_call, &calls[i]), 0);
        }
        for (int i = 0; i < N; i++)
            goro_chan_recv(done, NULL);
        if (round % 2 == 1)
            for (int i = 0; i < N; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(calls[i].err, 0, "round %d caller %d: %s", round, i,
                         goro_strerror(calls[i].err));
            cr_assert_eq(calls[i].result, 2 * i);
        }
        cr_assert_eq(goro_pool_queue_length(p), 0);
    }
    goro_chan_release(done);
    goro_pool_free(p);
}

/* A timeout while waiting for a worker: no worker claimed, no interrupt. */
GORO_TEST(pool, timeout_before_start_no_interrupt, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 4);
    goro_pool *p = goro_pool_new(1, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 4);
    call busy = {.p = p, .payload = 1000, .kind = 0, .done = done};
    goro_go(do_call, &busy);
    void *started;
    goro_chan_recv(g.started, &started); /* the only worker is busy now */
    cr_assert_eq(goro_pool_queue_length(p), 1);

    int64_t t0 = goro_nanotime();
    void *r = NULL;
    cr_assert_eq(goro_pool_process_timed(p, I2P(5), GORO_MS(30), &r), GORO_ETIMEDOUT);
    cr_assert_geq(goro_nanotime() - t0, GORO_MS(30));
    goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(20));
    cr_assert_eq(goro_pool_process_ctx(p, c, I2P(5), &r), GORO_ETIMEDOUT);
    goro_ctx_release(c);
    c = goro_ctx_with_cancel(goro_ctx_background());
    goro_ctx_cancel(c);
    cr_assert_eq(goro_pool_process_ctx(p, c, I2P(5), &r), GORO_ECANCELED);
    goro_ctx_release(c);

    cr_assert_eq(atomic_load(&g.interrupts), 0);
    cr_assert_eq(goro_pool_queue_length(p), 1); /* only the busy caller */

    goro_chan_close(g.gate);
    goro_chan_recv(done, NULL);
    cr_assert_eq(busy.err, 0);
    cr_assert_eq(busy.result, 1001);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    cr_assert_eq(atomic_load(&g.processed), 1);
    goro_pool_free(p);
    cr_assert_eq(atomic_load(&g.terminated), 1);
    goro_chan_release(done);
    gate_fini(&g);
}

/* Timeouts and cancellation after the job started: interrupt exactly once,
   the result is dropped, and the next job is not hit by a stale interrupt.
   The deadlines are generous so that the job surely starts first even on a
   loaded machine; the context is cancelled only once the job has started. */
typedef struct cancel_when_started {
    goro_ctx *c;
    goro_chan *started;
} cancel_when_started;

static void cancel_after_start(void *arg) {
    cancel_when_started *cw = arg;
    void *st;
    goro_chan_recv(cw->started, &st);
    goro_ctx_cancel(cw->c);
}

GORO_TEST(pool, timeout_after_start_interrupts_once, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 8);
    goro_pool *p = goro_pool_new(1, gate_ctor, &g);
    void *r = I2P(-1);
    void *st;

    cr_assert_eq(goro_pool_process_timed(p, I2P(1000), GORO_MS(300), &r), GORO_ETIMEDOUT);
    cr_assert_eq(goro_chan_recv_timeout(g.started, &st, NULL, GORO_SEC(2)), 0,
                 "the job never started");
    cr_assert_eq(atomic_load(&g.interrupts), 1);

    goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(300));
    cr_assert_eq(goro_pool_process_ctx(p, c, I2P(1001), &r), GORO_ETIMEDOUT);
    goro_ctx_release(c);
    cr_assert_eq(goro_chan_recv_timeout(g.started, &st, NULL, GORO_SEC(2)), 0,
                 "the job never started");
    cr_assert_eq(atomic_load(&g.interrupts), 2);

    c = goro_ctx_with_cancel(goro_ctx_background());
    cancel_when_started cw = {c, g.started};
    goro_go(cancel_after_start, &cw);
    cr_assert_eq(goro_pool_process_ctx(p, c, I2P(1002), &r), GORO_ECANCELED);
    goro_ctx_release(c);
    cr_assert_eq(atomic_load(&g.interrupts), 3);

    /* The interrupted jobs ended through their interrupt token. */
    cr_assert(goro_test_wait_until(atomic_load(&g.dropped) == 3, GORO_SEC(5)));
    cr_assert_eq(atomic_load(&g.dropped), 3);

    /* Next jobs run normally and see no leftover interrupt. */
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(goro_pool_process(p, I2P(i), &r), 0);
        cr_assert_eq(P2I(r), i + 1);
        goro_chan_recv(g.started, &st);
    }
    cr_assert_eq(atomic_load(&g.interrupts), 3);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    /* block_until_ready ran before every job and once more (idle). */
    cr_assert(goro_test_wait_until(atomic_load(&g.readies) == atomic_load(&g.processed) + 1,
                                   GORO_SEC(5)));
    cr_assert_eq(atomic_load(&g.readies), atomic_load(&g.processed) + 1);
    goro_pool_free(p);
    gate_fini(&g);
}

/* queue_length counts callers waiting or served, on every return path. */
GORO_TEST(pool, queue_length_exact, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 16);
    goro_pool *p = goro_pool_new(2, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 16);
    call calls[8];
    for (int i = 0; i < 8; i++) {
        calls[i] = (call){.p = p,
                          .payload = 1000 + i,
                          .kind = i % 3,
                          .ns = GORO_SEC(10),
                          .ctx = goro_ctx_background(),
                          .done = done};
        goro_go(do_call, &calls[i]);
    }
    cr_assert(goro_test_wait_until(goro_pool_queue_length(p) == 8, GORO_SEC(5)));
    cr_assert_eq(goro_pool_queue_length(p), 8);
    /* Timed-out callers leave the count. */
    for (int i = 0; i < 3; i++) {
        void *r;
        cr_assert_eq(goro_pool_process_timed(p, I2P(1), GORO_MS(5), &r), GORO_ETIMEDOUT);
        cr_assert_eq(goro_pool_queue_length(p), 8);
    }
    goro_chan_close(g.gate);
    for (int i = 0; i < 8; i++)
        goro_chan_recv(done, NULL);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(calls[i].err, 0);
        cr_assert_eq(calls[i].result, 1001 + i);
    }
    goro_pool_free(p);
    goro_chan_release(done);
    gate_fini(&g);
}

/* Backlogged jobs are served in arrival order (tunny's old TestQueueing). */
typedef struct fifo_ctx {
    goro_chan *order;
    goro_chan *gate;
} fifo_ctx;

static void *fn_record(void *payload, void *ctx) {
    fifo_ctx *fc = ctx;
    if (P2I(payload) < 0)
        goro_chan_recv(fc->gate, NULL); /* hold the only worker until all are queued */
    else
        goro_chan_send(fc->order, &payload);
    return payload;
}

GORO_TEST(pool, fifo_backlog, .timeout = 20) {
    enum { N = 10 };
    fifo_ctx fc = {goro_chan_make(sizeof(void *), N), goro_chan_make(0, 0)};
    goro_pool *p = goro_pool_new_func(1, fn_record, &fc);
    goro_chan *done = goro_chan_make(0, N + 1);
    call first = {.p = p, .payload = -1, .kind = 0, .done = done};
    goro_go(do_call, &first);
    cr_assert(goro_test_wait_until(goro_pool_queue_length(p) == 1, GORO_SEC(5)));
    call calls[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (call){.p = p,
                          .payload = i,
                          .kind = i % 3,
                          .ns = GORO_SEC(10),
                          .ctx = goro_ctx_background(),
                          .done = done};
        goro_go(do_call, &calls[i]);
        cr_assert(goro_test_wait_until(goro_pool_queue_length(p) == i + 2, GORO_SEC(5)));
        cr_assert_eq(goro_pool_queue_length(p), i + 2);
        /* queue_length counts a caller from the moment it enters, before it
           joins the FIFO: wait until it is parked there (the first caller,
           the worker and callers 0..i), or the next one could overtake it. */
        cr_assert(goro_test_wait_until(goro_test_count_parked(-1, false) >= i + 3, GORO_SEC(5)),
                  "caller %d never parked", i);
    }
    goro_chan_close(fc.gate);
    for (int i = 0; i < N; i++) {
        void *v;
        goro_chan_recv(fc.order, &v);
        cr_assert_eq(P2I(v), i);
    }
    for (int i = 0; i < N + 1; i++)
        goro_chan_recv(done, NULL);
    goro_pool_free(p);
    goro_chan_release(done);
    goro_chan_release(fc.order);
    goro_chan_release(fc.gate);
}

/* Shrinking removes idle workers first: with one busy worker and three idle,
   set_size(1) returns without waiting for the busy job. */
GORO_TEST(pool, shrink_idle_first, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 4);
    goro_pool *p = goro_pool_new(4, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 4);
    call busy = {.p = p, .payload = 1000, .kind = 0, .done = done};
    goro_go(do_call, &busy);
    void *st;
    goro_chan_recv(g.started, &st);
    /* the three others are idle */
    cr_assert(goro_test_wait_until(atomic_load(&g.readies) == 4, GORO_SEC(5)));

    goro_pool_set_size(p, 1);
    cr_assert_eq(goro_pool_size(p), 1);
    cr_assert_eq(atomic_load(&g.terminated), 3);
    cr_assert_eq(atomic_load(&g.processed), 0, "the busy job must still run");

    goro_chan_close(g.gate);
    goro_chan_recv(done, NULL);
    cr_assert_eq(busy.err, 0);
    cr_assert_eq(busy.result, 1001);
    void *r;
    cr_assert_eq(goro_pool_process(p, I2P(7), &r), 0);
    cr_assert_eq(P2I(r), 8);
    goro_pool_free(p);
    cr_assert_eq(atomic_load(&g.terminated), 4);
    cr_assert_eq(atomic_load(&g.made), 4);
    goro_chan_release(done);
    gate_fini(&g);
}

/* Shrinking busy workers waits for their jobs and delivers the results. */
static void set_size_async(void *arg) {
    call *c = arg;
    goro_pool_set_size(c->p, (int)c->payload);
    goro_chan_send(c->done, NULL);
}

GORO_TEST(pool, shrink_busy_delivers, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 4);
    goro_pool *p = goro_pool_new(2, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 4);
    goro_chan *sized = goro_chan_make(0, 1);
    call c1 = {.p = p, .payload = 1000, .kind = 0, .done = done};
    call c2 = {.p = p, .payload = 1001, .kind = 1, .ns = GORO_SEC(10), .done = done};
    goro_go(do_call, &c1);
    goro_go(do_call, &c2);
    void *st;
    goro_chan_recv(g.started, &st);
    goro_chan_recv(g.started, &st);

    call sz = {.p = p, .payload = 0, .done = sized};
    goro_go(set_size_async, &sz);
    cr_assert(goro_test_wait_until(goro_pool_size(p) == 0, GORO_SEC(5)));
    cr_assert_eq(goro_pool_size(p), 0);
    cr_assert_eq(goro_chan_recv_timeout(sized, NULL, NULL, GORO_MS(30)), GORO_ETIMEDOUT,
                 "set_size returned before the busy workers left");
    cr_assert_eq(atomic_load(&g.terminated), 0);

    goro_chan_close(g.gate);
    goro_chan_recv(sized, NULL);
    cr_assert_eq(atomic_load(&g.terminated), 2);
    goro_chan_recv(done, NULL);
    goro_chan_recv(done, NULL);
    cr_assert_eq(c1.err, 0);
    cr_assert_eq(c1.result, 1001);
    cr_assert_eq(c2.err, 0);
    cr_assert_eq(c2.result, 1002);
    cr_assert_eq(atomic_load(&g.interrupts), 0);
    goro_pool_free(p);
    goro_chan_release(done);
    goro_chan_release(sized);
    gate_fini(&g);
}

/* Callers queued while the pool has no worker wait for it to grow. */
GORO_TEST(pool, zero_size_waits_for_growth, .timeout = 10) {
    goro_pool *p = goro_pool_new_func(0, fn_double, NULL);
    cr_assert_not_null(p);
    cr_assert_eq(goro_pool_size(p), 0);
    goro_chan *done = goro_chan_make(0, 4);
    call c = {.p = p, .payload = 21, .kind = 0, .done = done};
    goro_go(do_call, &c);
    cr_assert(goro_test_wait_until(goro_pool_queue_length(p) == 1, GORO_SEC(5)));
    cr_assert_eq(goro_chan_recv_timeout(done, NULL, NULL, GORO_MS(20)), GORO_ETIMEDOUT);
    goro_pool_set_size(p, 1);
    goro_chan_recv(done, NULL);
    cr_assert_eq(c.err, 0);
    cr_assert_eq(c.result, 42);
    goro_pool_free(p);
    goro_chan_release(done);
}

/* Resizing under load: no caller is lost and every result is right. */
typedef struct load_arg {
    goro_pool *p;
    int id, n;
    _Atomic int *bad;
    _Atomic int *ok;
    _Atomic int *closed;
    goro_waitgroup *wg;
} load_arg;

static void *fn_small_work(void *payload, void *ctx) {
    (void)ctx;
    volatile intptr_t x = P2I(payload);
    for (int i = 0; i < 200; i++)
        x = x + 0;
    if ((P2I(payload) & 7) == 0)
        goro_yield();
    return I2P(x * 3);
}

static void load_caller(void *arg) {
    load_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        intptr_t v = a->id * 100000 + i;
        void *r = NULL;
        int err;
        switch (i % 3) {
        case 0: err = goro_pool_process(a->p, I2P(v), &r); break;
        case 1: err = goro_pool_process_timed(a->p, I2P(v), GORO_SEC(20), &r); break;
        default: err = goro_pool_process_ctx(a->p, goro_ctx_background(), I2P(v), &r); break;
        }
        if (err == GORO_ECLOSED) {
            atomic_fetch_add(a->closed, 1);
            break;
        }
        if (err != 0 || P2I(r) != v * 3)
            atomic_fetch_add(a->bad, 1);
        else
            atomic_fetch_add(a->ok, 1);
    }
    goro_waitgroup_done(a->wg);
}

typedef struct count_ctx {
    _Atomic int made, terminated;
} count_ctx;

typedef struct count_worker {
    goro_worker base;
    count_ctx *c;
} count_worker;

static void *count_process(goro_worker *w, void *payload) {
    return fn_small_work(payload, ((count_worker *)w)->c);
}

static void count_terminate(goro_worker *w) {
    atomic_fetch_add(&((count_worker *)w)->c->terminated, 1);
    free(w);
}

static goro_worker *count_ctor(void *ctx) {
    count_worker *w = calloc(1, sizeof *w);
    w->base.process = count_process;
    w->base.terminate = count_terminate;
    w->c = ctx;
    atomic_fetch_add(&w->c->made, 1);
    return &w->base;
}

GORO_TEST(pool, resize_under_load_loses_nobody, .timeout = 30) {
    enum { CALLERS = 24, PER = 400 };
    int start = goro_count();
    count_ctx cc = {0};
    goro_pool *p = goro_pool_new(4, count_ctor, &cc);
    _Atomic int bad = 0, ok = 0, closed = 0;
    goro_waitgroup wg = {0};
    load_arg args[CALLERS];
    goro_waitgroup_add(&wg, CALLERS);
    for (int i = 0; i < CALLERS; i++) {
        args[i] = (load_arg){p, i, PER, &bad, &ok, &closed, &wg};
        goro_go(load_caller, &args[i]);
    }
    static const int sizes[] = {1, 6, 2, 8, 1, 3, 0, 5, 2, 4};
    for (int k = 0; k < 40; k++) {
        goro_pool_set_size(p, sizes[k % 10]);
        cr_assert_eq(goro_pool_size(p), sizes[k % 10]);
        goro_sleep(GORO_US(300));
    }
    goro_pool_set_size(p, 4);
    goro_waitgroup_wait(&wg);
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(atomic_load(&closed), 0);
    cr_assert_eq(atomic_load(&ok), CALLERS * PER);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    cr_assert_eq(atomic_load(&cc.made) - atomic_load(&cc.terminated), 4);
    goro_test_await_count(start + 4); /* the callers are gone, the 4 workers remain */
    goro_pool_close(p);
    cr_assert_eq(atomic_load(&cc.made), atomic_load(&cc.terminated));
    cr_assert_eq(goro_count(), start, "goroutines left after close: %d, expected %d", goro_count(),
                 start);
    goro_pool_free(p);
}

/* Closing under load: every caller returns; in-flight jobs deliver, the rest
   get GORO_ECLOSED; nothing of the pool remains right after close. */
GORO_TEST(pool, close_under_load, .timeout = 30) {
    enum { CALLERS = 32, PER = 100000 };
    int start = goro_count();
    count_ctx cc = {0};
    goro_pool *p = goro_pool_new(3, count_ctor, &cc);
    _Atomic int bad = 0, ok = 0, closed = 0;
    goro_waitgroup wg = {0};
    load_arg args[CALLERS];
    goro_waitgroup_add(&wg, CALLERS);
    for (int i = 0; i < CALLERS; i++) {
        args[i] = (load_arg){p, i, PER, &bad, &ok, &closed, &wg};
        goro_go(load_caller, &args[i]);
    }
    cr_assert(goro_test_wait_until(atomic_load(&ok) > 2000, GORO_SEC(5)));
    goro_pool_close(p);
    cr_assert_eq(atomic_load(&cc.made), 3);
    cr_assert_eq(atomic_load(&cc.terminated), 3);
    cr_assert_eq(goro_pool_size(p), 0);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    goro_waitgroup_wait(&wg);
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(atomic_load(&closed), CALLERS, "every caller must end with GORO_ECLOSED");
    /* Only the callers' goroutines were extra, and they have returned. */
    goro_test_await_count(start);
    goro_pool_free(p);
}

/* goro_count is back to its start value right after close (no retry). */
GORO_TEST(pool, no_goroutine_left_after_close, .timeout = 20) {
    int start = goro_count();
    for (int round = 0; round < 50; round++) {
        goro_pool *p = goro_pool_new_func(1 + round % 7, fn_double, NULL);
        cr_assert_gt(goro_count(), start);
        void *r;
        for (int i = 0; i < 10; i++)
            cr_assert_eq(goro_pool_process(p, I2P(i), &r), 0);
        goro_pool_close(p);
        cr_assert_eq(goro_count(), start, "round %d: %d goroutines, expected %d", round,
                     goro_count(), start);
        goro_pool_free(p);
    }
    /* The same after a shrink. */
    goro_pool *p = goro_pool_new_func(6, fn_double, NULL);
    goro_pool_set_size(p, 2);
    cr_assert_eq(goro_count(), start + 2);
    goro_pool_free(p);
    cr_assert_eq(goro_count(), start);
}

/* Close while callers wait and a job runs: the job delivers, waiters get
   GORO_ECLOSED, close returns after terminate. */
static void close_pool(void *p) { goro_pool_close(p); }

GORO_TEST(pool, close_with_waiters_and_inflight, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 4);
    goro_pool *p = goro_pool_new(1, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 8);
    goro_chan *closed = goro_chan_make(0, 1);
    call busy = {.p = p, .payload = 1000, .kind = 0, .done = done};
    goro_go(do_call, &busy);
    void *st;
    goro_chan_recv(g.started, &st);
    call waiters[3];
    for (int i = 0; i < 3; i++) {
        waiters[i] = (call){.p = p,
                            .payload = i,
                            .kind = i,
                            .ns = GORO_SEC(10),
                            .ctx = goro_ctx_background(),
                            .done = done};
        goro_go(do_call, &waiters[i]);
    }
    cr_assert(goro_test_wait_until(goro_pool_queue_length(p) == 4, GORO_SEC(5)));
    pool_kit_closer cl = {close_pool, p, closed};
    goro_go(pool_kit_close_async, &cl);
    for (int i = 0; i < 3; i++)
        goro_chan_recv(done, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(waiters[i].err, GORO_ECLOSED);
    cr_assert(pool_kit_still_silent(closed), "close returned while a job was in flight");
    goro_chan_close(g.gate);
    goro_chan_recv(closed, NULL);
    cr_assert_eq(atomic_load(&g.terminated), 1);
    goro_chan_recv(done, NULL);
    cr_assert_eq(busy.err, 0);
    cr_assert_eq(busy.result, 1001);
    /* A closed pool stays valid until free. */
    goro_pool_close(p);
    goro_pool_set_size(p, 3);
    cr_assert_eq(goro_pool_size(p), 0);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    void *r;
    cr_assert_eq(goro_pool_process(p, I2P(1), &r), GORO_ECLOSED);
    goro_pool_free(p);
    goro_chan_release(done);
    goro_chan_release(closed);
    gate_fini(&g);
}

/* Plain-thread callers of every kind, with timeouts, on a busy pool. */
typedef struct thread_load {
    goro_pool *p;
    int id;
    _Atomic int *bad;
} thread_load;

static void *thread_loader(void *arg) {
    thread_load *t = arg;
    goro_ctx *c = goro_ctx_with_cancel(goro_ctx_background());
    for (int i = 0; i < 300; i++) {
        intptr_t v = t->id * 1000 + i;
        void *r = NULL;
        int err;
        switch (i % 3) {
        case 0: err = goro_pool_process(t->p, I2P(v), &r); break;
        case 1: err = goro_pool_process_timed(t->p, I2P(v), GORO_SEC(10), &r); break;
        default: err = goro_pool_process_ctx(t->p, c, I2P(v), &r); break;
        }
        if (err || P2I(r) != v * 2)
            atomic_fetch_add(t->bad, 1);
    }
    goro_ctx_release(c);
    return NULL;
}

GORO_TEST(pool, plain_thread_callers, .timeout = 20) {
    enum { T = 6 };
    goro_pool *p = goro_pool_new_func(2, fn_double, NULL);
    _Atomic int bad = 0;
    pthread_t th[T];
    thread_load tl[T];
    for (int i = 0; i < T; i++) {
        tl[i] = (thread_load){p, i, &bad};
        cr_assert_eq(pthread_create(&th[i], NULL, thread_loader, &tl[i]), 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(goro_pool_queue_length(p), 0);
    /* A plain thread timing out on a stuck pool. */
    gate_ctx g;
    gate_init(&g, 2);
    goro_pool *q = goro_pool_new(1, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 2);
    call busy = {.p = q, .payload = 1000, .kind = 0, .done = done};
    goro_go(do_call, &busy);
    void *st;
    goro_chan_recv(g.started, &st);
    call late = {.p = q, .payload = 1, .kind = 1, .ns = GORO_MS(20), .done = done};
    pthread_t lt;
    pthread_create(&lt, NULL, thread_call, &late);
    pthread_join(lt, NULL);
    goro_chan_recv(done, NULL);
    cr_assert_eq(late.err, GORO_ETIMEDOUT);
    goro_chan_close(g.gate);
    goro_chan_recv(done, NULL);
    cr_assert_eq(busy.result, 1001);
    goro_pool_free(q);
    goro_pool_free(p);
    goro_chan_release(done);
    gate_fini(&g);
}

/* A panic inside a job is not recovered (tunny's and Go's behaviour): the
   program dies with status 2. */
static void *fn_panics(void *payload, void *ctx) {
    (void)ctx;
    if (P2I(payload) == 3)
        goro_panic("bad job %d", 3);
    return payload;
}

GORO_TEST(pool, panic_in_job_crashes, .timeout = 10, .exit_code = 2) {
    goro_pool *p = goro_pool_new_func(2, fn_panics, NULL);
    void *r;
    cr_assert_eq(goro_pool_process(p, I2P(1), &r), 0);
    goro_pool_process(p, I2P(3), &r);
    cr_assert_fail("the panic must end the program");
}

/* A job that calls goro_exit ends its worker: the caller gets
   GORO_ECLOSED, terminate runs, the pool is one smaller and still works. */
static void *fn_exits(void *payload, void *ctx) {
    (void)ctx;
    if (P2I(payload) == 13)
        goro_exit();
    return payload;
}

typedef struct exit_worker {
    goro_worker base;
    _Atomic int *terminated;
} exit_worker;

static void *exit_process(goro_worker *w, void *payload) { return fn_exits(payload, w); }

static void exit_terminate(goro_worker *w) {
    atomic_fetch_add(((exit_worker *)w)->terminated, 1);
    free(w);
}

static goro_worker *exit_ctor(void *ctx) {
    exit_worker *w = calloc(1, sizeof *w);
    w->base.process = exit_process;
    w->base.terminate = exit_terminate;
    w->terminated = ctx;
    return &w->base;
}

GORO_TEST(pool, goro_exit_in_job, .timeout = 10) {
    int start = goro_count();
    _Atomic int terminated = 0;
    goro_pool *p = goro_pool_new(3, exit_ctor, &terminated);
    void *r = I2P(1);
    cr_assert_eq(goro_pool_process(p, I2P(13), &r), GORO_ECLOSED);
    cr_assert_null(r);
    cr_assert(goro_test_wait_until(atomic_load(&terminated) == 1, GORO_SEC(5)));
    cr_assert_eq(atomic_load(&terminated), 1);
    cr_assert_eq(goro_pool_size(p), 2);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(goro_pool_process(p, I2P(i + 100), &r), 0);
        cr_assert_eq(P2I(r), i + 100);
    }
    goro_pool_set_size(p, 4);
    cr_assert_eq(goro_pool_size(p), 4);
    goro_pool_close(p);
    cr_assert_eq(atomic_load(&terminated), 5);
    cr_assert_eq(goro_count(), start);
    goro_pool_free(p);
}

/* Bad arguments. */
GORO_TEST(pool, bad_arguments, .timeout = 10) {
    cr_assert_null(goro_pool_new(-1, mock_ctor, NULL));
    cr_assert_null(goro_pool_new(1, NULL, NULL));
    cr_assert_null(goro_pool_new_func(1, NULL, NULL));
    void *r;
    cr_assert_eq(goro_pool_process(NULL, NULL, &r), GORO_EINVAL);
    cr_assert_eq(goro_pool_size(NULL), 0);
    goro_pool *p = goro_pool_new_func(1, fn_double, NULL);
    cr_assert_eq(goro_pool_process_ctx(p, NULL, I2P(1), &r), GORO_EINVAL);
    cr_assert_eq(goro_pool_process_timed(p, I2P(1), 0, &r), GORO_ETIMEDOUT);
    cr_assert_eq(goro_pool_process_timed(p, I2P(4), GORO_FOREVER, &r), 0);
    cr_assert_eq(P2I(r), 8);
    cr_assert_eq(goro_pool_process(p, I2P(4), NULL), 0); /* result may be ignored */
    goro_pool_free(p);
}

/* Workers are named in goroutine profiles (the "name" label of debug=1). */
GORO_TEST(pool, workers_named_in_profile, .timeout = 10) {
    gate_ctx g;
    gate_init(&g, 2);
    goro_pool *p = goro_pool_new(2, gate_ctor, &g);
    cr_assert(goro_test_wait_until(atomic_load(&g.readies) == 2, GORO_SEC(5)));
    char *buf = pool_kit_profile_text();
    cr_assert(strstr(buf, "pool worker 1") != NULL, "profile:\n%s", buf);
    cr_assert(strstr(buf, "pool worker 2") != NULL, "profile:\n%s", buf);
    free(buf);
    goro_pool_free(p);
    gate_fini(&g);
}

/* The debug server's index page shows each pool (size, queue length) and
   each limiter (running, waiting). */
static char *http_get(int port, const char *path) {
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd = goro_dial_tcp(addr, GORO_SEC(5));
    if (fd < 0)
        return NULL;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, addr);
    goro_write(fd, req, (size_t)n, GORO_SEC(5));
    size_t cap = 1 << 20, have = 0;
    char *buf = malloc(cap);
    for (;;) {
        ssize_t r = goro_read(fd, buf + have, cap - 1 - have, GORO_SEC(5));
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    buf[have] = 0;
    goro_close(fd);
    return buf;
}

GORO_TEST(pool, debug_index_shows_pools_and_limiters, .timeout = 20) {
    gate_ctx g;
    gate_init(&g, 4);
    goro_pool *p = goro_pool_new(2, gate_ctor, &g);
    goro_chan *done = goro_chan_make(0, 4);
    call busy = {.p = p, .payload = 1000, .kind = 0, .done = done};
    goro_go(do_call, &busy);
    void *st;
    goro_chan_recv(g.started, &st);
    goro_limiter *l = goro_limiter_new(3, NULL);

    int port = goro_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    char *page = http_get(port, "/debug/pprof/");
    cr_assert_not_null(page);
    cr_assert(strstr(page, "pool 1") != NULL, "index:\n%s", page);
    cr_assert(strstr(page, "size 2, queue length 1") != NULL, "index:\n%s", page);
    cr_assert(strstr(page, "limiter 1") != NULL, "index:\n%s", page);
    cr_assert(strstr(page, "running 0, waiting 0, max 3") != NULL, "index:\n%s", page);
    free(page);

    goro_chan_close(g.gate);
    goro_chan_recv(done, NULL);
    goro_limiter_free(l);
    goro_pool_free(p);
    page = http_get(port, "/debug/pprof/");
    cr_assert_not_null(page);
    cr_assert(strstr(page, "pool 1") == NULL, "a freed pool stays listed:\n%s", page);
    cr_assert(strstr(page, "limiter 1") == NULL, "a closed limiter stays listed:\n%s", page);
    free(page);
    goro_debug_stop();
    goro_chan_release(done);
    gate_fini(&g);
}

/* Stress: callers of every kind with short deadlines racing jobs that start,
   finish, get interrupted, while the pool is resized and finally closed.
   Checks results and bookkeeping; under `make test-tsan` it also checks that
   no worker touches a caller's job after the call returned. */
typedef struct stress_worker {
    goro_worker base;
    goro_chan *intr;
    _Atomic int *terminated;
} stress_worker;

static void *stress_process(goro_worker *w, void *payload) {
    stress_worker *sw = (stress_worker *)w;
    intptr_t v = P2I(payload);
    if (v % 5 == 0) {
        goro_case c[1] = {{.chan = sw->intr, .dir = GORO_RECV}};
        goro_select(c, 1, GORO_US(300));
    } else if (v % 3 == 0) {
        goro_yield();
    }
    return I2P(v * 2);
}

static void stress_interrupt(goro_worker *w) {
    goro_chan_try_send(((stress_worker *)w)->intr, NULL);
}

static void stress_terminate(goro_worker *w) {
    stress_worker *sw = (stress_worker *)w;
    atomic_fetch_add(sw->terminated, 1);
    goro_chan_release(sw->intr);
    free(sw);
}

typedef struct stress_ctx {
    _Atomic int made, terminated;
    _Atomic long ok, timeouts, closed, bad;
} stress_ctx;

static goro_worker *stress_ctor(void *ctx) {
    stress_ctx *sc = ctx;
    stress_worker *sw = calloc(1, sizeof *sw);
    sw->base.process = stress_process;
    sw->base.interrupt = stress_interrupt;
    sw->base.terminate = stress_terminate;
    sw->intr = goro_chan_make(0, 1);
    sw->terminated = &sc->terminated;
    atomic_fetch_add(&sc->made, 1);
    return &sw->base;
}

typedef struct stress_arg {
    goro_pool *p;
    stress_ctx *sc;
    int id;
    goro_waitgroup *wg;
} stress_arg;

static void stress_caller(void *arg) {
    stress_arg *a = arg;
    for (int i = 0; i < 1500; i++) {
        intptr_t v = a->id * 100000 + i;
        void *r = NULL;
        int e;
        if (i % 3 == 0) {
            e = goro_pool_process(a->p, I2P(v), &r);
        } else if (i % 3 == 1) {
            e = goro_pool_process_timed(a->p, I2P(v), GORO_US(100 + (i % 7) * 50), &r);
        } else {
            goro_ctx *c = goro_ctx_with_timeout(goro_ctx_background(), GORO_US(150));
            e = goro_pool_process_ctx(a->p, c, I2P(v), &r);
            goro_ctx_release(c);
        }
        if (e == 0 && P2I(r) == v * 2)
            atomic_fetch_add(&a->sc->ok, 1);
        else if (e == GORO_ETIMEDOUT || e == GORO_ECANCELED)
            atomic_fetch_add(&a->sc->timeouts, 1);
        else if (e == GORO_ECLOSED) {
            atomic_fetch_add(&a->sc->closed, 1);
            break;
        } else
            atomic_fetch_add(&a->sc->bad, 1);
    }
    goro_waitgroup_done(a->wg);
}

GORO_TEST(pool, stress_deadlines_resizes_close, .timeout = 60) {
    enum { CALLERS = 12 };
    int start = goro_count();
    stress_ctx sc;
    memset(&sc, 0, sizeof sc);
    goro_pool *p = goro_pool_new(3, stress_ctor, &sc);
    goro_waitgroup wg = {0};
    stress_arg a[CALLERS];
    goro_waitgroup_add(&wg, CALLERS);
    for (int i = 0; i < CALLERS; i++) {
        a[i] = (stress_arg){p, &sc, i, &wg};
        goro_go(stress_caller, &a[i]);
    }
    for (int k = 0; k < 20; k++) {
        goro_pool_set_size(p, 1 + k % 5);
        goro_sleep(GORO_US(500));
    }
    goro_pool_close(p);
    goro_waitgroup_wait(&wg);
    cr_assert_eq(atomic_load(&sc.bad), 0);
    cr_assert_gt(atomic_load(&sc.ok), 0);
    cr_assert_eq(atomic_load(&sc.made), atomic_load(&sc.terminated));
    cr_assert_eq(goro_pool_queue_length(p), 0);
    goro_pool_free(p);
    goro_test_await_count(start); /* the callers are on their way out */
}

/* ============================================ payload and late result owner */

/* A worker whose job waits on a gate, announces that it started, and returns
   a malloc'd result; its interrupt records that it ran. The discard hook
   frees payload and result and records what it got. Run under `make
   test-asan`, these tests show that nothing leaks and nothing is used after
   it was freed, on every way a call can give up. */
typedef struct own_ctx {
    goro_chan *gate;    /* closed: jobs finish */
    goro_chan *started; /* one token per job that began */
    _Atomic int interrupted;
    _Atomic int discarded, discarded_late, discard_before_interrupt;
    _Atomic int payloads_alive;
} own_ctx;

typedef struct own_worker {
    goro_worker base;
    own_ctx *o;
} own_worker;

static void *own_process(goro_worker *w, void *payload) {
    own_ctx *o = ((own_worker *)w)->o;
    goro_chan_send(o->started, NULL);
    goro_chan_recv(o->gate, NULL);
    int *r = malloc(sizeof *r);
    *r = *(int *)payload * 2; /* reads the payload: it must still be alive */
    return r;
}

static void own_interrupt(goro_worker *w) {
    atomic_fetch_add(&((own_worker *)w)->o->interrupted, 1);
}

static void own_terminate(goro_worker *w) { free(w); }

static goro_worker *own_ctor(void *ctx) {
    own_worker *w = calloc(1, sizeof *w);
    w->base.process = own_process;
    w->base.interrupt = own_interrupt;
    w->base.terminate = own_terminate;
    w->o = ctx;
    return &w->base;
}

static void own_discard(void *payload, void *result, void *ctx) {
    own_ctx *o = ctx;
    if (result) {
        cr_assert_eq(*(int *)result, *(int *)payload * 2);
        if (atomic_load(&o->interrupted) == 0)
            atomic_fetch_add(&o->discard_before_interrupt, 1);
        atomic_fetch_add(&o->discarded_late, 1);
    }
    free(result);
    free(payload);
    atomic_fetch_sub(&o->payloads_alive, 1);
    atomic_fetch_add(&o->discarded, 1);
}

static int *own_payload(own_ctx *o, int v) {
    int *p = malloc(sizeof *p);
    *p = v;
    atomic_fetch_add(&o->payloads_alive, 1);
    return p;
}

static goro_pool *own_pool(own_ctx *o, int n) {
    memset(o, 0, sizeof *o);
    o->gate = goro_chan_make(0, 0);
    o->started = goro_chan_make(0, 16);
    goro_pool *p = goro_pool_new(n, own_ctor, o);
    goro_pool_set_discard(p, own_discard, o);
    return p;
}

static void own_fini(own_ctx *o) {
    cr_assert_eq(atomic_load(&o->payloads_alive), 0,
                 "a payload was neither returned nor discarded");
    goro_chan_release(o->gate);
    goro_chan_release(o->started);
}

typedef struct own_call {
    goro_pool *p;
    goro_ctx *ctx; /* NULL: process_timed with ns */
    int64_t ns;
    int *payload;
    int err;
    goro_chan *done;
} own_call;

static void own_call_run(void *arg) {
    own_call *c = arg;
    void *r = NULL;
    c->err = c->ctx ? goro_pool_process_ctx(c->p, c->ctx, c->payload, &r)
                    : goro_pool_process_timed(c->p, c->payload, c->ns, &r);
    if (c->err == 0)
        free(r); /* a result is the caller's; so is the payload again */
    else
        cr_assert_null(r, "a call that gave up has no result");
    goro_chan_send(c->done, NULL);
}

/* Cancelled after the job started: the caller returns at once, the worker
   keeps the payload, and the hook gets payload and late result after the
   interrupt ran. */
GORO_TEST(pool, discard_gets_late_result_after_cancel, .timeout = 20) {
    own_ctx o;
    goro_pool *p = own_pool(&o, 1);
    goro_ctx *ctx = goro_ctx_with_cancel(goro_ctx_background());
    own_call c = {p, ctx, 0, own_payload(&o, 21), -1, goro_chan_make(0, 1)};
    goro_go(own_call_run, &c);
    goro_chan_recv(o.started, NULL);
    goro_ctx_cancel(ctx);
    goro_chan_recv(c.done, NULL);
    cr_assert_eq(c.err, GORO_ECANCELED);
    cr_assert_eq(atomic_load(&o.discarded), 0, "the worker still runs the job");
    goro_chan_close(o.gate);
    goro_pool_close(p); /* every hook call has happened when close returns */
    cr_assert_eq(atomic_load(&o.discarded), 1);
    cr_assert_eq(atomic_load(&o.discarded_late), 1);
    cr_assert_eq(atomic_load(&o.discard_before_interrupt), 0);
    cr_assert_eq(atomic_load(&o.interrupted), 1);
    goro_pool_free(p);
    goro_ctx_release(ctx);
    goro_chan_release(c.done);
    own_fini(&o);
}

/* A deadline, with the job running past it: the same, through the park. */
GORO_TEST(pool, discard_gets_late_result_after_timeout, .timeout = 20) {
    own_ctx o;
    goro_pool *p = own_pool(&o, 1);
    own_call c = {p, NULL, GORO_MS(30), own_payload(&o, 5), -1, goro_chan_make(0, 1)};
    goro_go(own_call_run, &c);
    goro_chan_recv(c.done, NULL);
    cr_assert_eq(c.err, GORO_ETIMEDOUT);
    goro_chan_close(o.gate);
    goro_pool_close(p);
    cr_assert_eq(atomic_load(&o.discarded), 1);
    goro_pool_free(p);
    goro_chan_release(c.done);
    own_fini(&o);
}

/* Given up while queued, refused by a closed pool: the hook runs on the
   caller, before the call returns, with no result. */
GORO_TEST(pool, discard_gets_payload_of_a_job_that_never_ran, .timeout = 20) {
    own_ctx o;
    goro_pool *p = own_pool(&o, 1);
    own_call busy = {p, NULL, GORO_FOREVER, own_payload(&o, 1), -1, goro_chan_make(0, 1)};
    goro_go(own_call_run, &busy);
    goro_chan_recv(o.started, NULL); /* the only worker is taken */
    void *r = NULL;
    cr_assert_eq(goro_pool_process_timed(p, own_payload(&o, 2), GORO_MS(5), &r), GORO_ETIMEDOUT);
    cr_assert_eq(atomic_load(&o.discarded), 1, "the hook ran before the call returned");
    cr_assert_eq(atomic_load(&o.discarded_late), 0);
    goro_chan_close(o.gate);
    goro_chan_recv(busy.done, NULL);
    cr_assert_eq(busy.err, 0);
    goro_pool_close(p);
    cr_assert_eq(goro_pool_process(p, own_payload(&o, 3), &r), GORO_ECLOSED);
    cr_assert_eq(atomic_load(&o.discarded), 2);
    goro_pool_free(p);
    goro_chan_release(busy.done);
    atomic_fetch_sub(&o.payloads_alive, 1); /* busy's payload came back to us */
    free(busy.payload);
    own_fini(&o);
}
