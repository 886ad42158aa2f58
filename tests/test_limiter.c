/*
 * test_limiter.c - goro_limiter: the ants tests that apply (suite
 * pool_limiter_ants) and the rest of the contract (suite pool_limiter):
 * every count, tune both ways, try_go when full, close refusing blocked
 * submitters, panics recovered with and without on_panic and the slot always
 * returned, goro_exit in a task, plain-thread submitters, and no goroutine
 * of the limiter left right after wait and close.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "pool_test_kit.h"

/* Shared task state: counts, the highest concurrency seen, and a gate that
   blocking tasks wait on until it is closed. */
typedef struct tstate {
    _Atomic int started, finished;
    pool_kit_meter meter;
    goro_chan *gate;
} tstate;

static void ts_init(tstate *t) {
    memset(t, 0, sizeof *t);
    t->gate = goro_chan_make(0, 0);
}

static void ts_fini(tstate *t) { goro_chan_release(t->gate); }

static void enter(tstate *t) {
    atomic_fetch_add(&t->started, 1);
    pool_kit_meter_enter(&t->meter);
}

static void leave(tstate *t) {
    pool_kit_meter_leave(&t->meter);
    atomic_fetch_add(&t->finished, 1);
}

static void task_block(void *arg) {
    tstate *t = arg;
    enter(t);
    goro_chan_recv(t->gate, NULL);
    leave(t);
}

static void task_sleep100us(void *arg) {
    tstate *t = arg;
    enter(t);
    goro_sleep(GORO_US(100));
    leave(t);
}

static void task_quick(void *arg) {
    tstate *t = arg;
    enter(t);
    leave(t);
}

/* ===================================================== ants' tests, ported */

/* TestAntsPoolWaitToGetWorker: many tasks through a small limit. */
GORO_TEST(pool_limiter_ants, wait_to_get_worker, .timeout = 20) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(100, NULL);
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(goro_limiter_go(l, task_sleep100us, &t), 0);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 5000);
    cr_assert_leq(atomic_load(&t.meter.max_running), 100);
    cr_assert_eq(goro_limiter_running(l), 0);
    cr_assert_eq(goro_limiter_waiting(l), 0);
    goro_limiter_free(l);
    ts_fini(&t);
}

/* TestPanicHandler: the handler runs once with the bare message, and the
   slot comes back. */
typedef struct panic_log {
    _Atomic int calls;
    char msg[64];
    void *arg;
    goro_chan *seen;
} panic_log;

static panic_log plog;

static void on_panic_record(const char *msg, void *arg) {
    if (atomic_fetch_add(&plog.calls, 1) == 0) {
        snprintf(plog.msg, sizeof plog.msg, "%s", msg);
        plog.arg = arg;
    }
    if (plog.seen)
        goro_chan_send(plog.seen, NULL);
}

static void task_panic(void *arg) {
    intptr_t n = P2I(arg);
    goro_panic("bad %d", (int)n);
}

GORO_TEST(pool_limiter_ants, panic_handler, .timeout = 10) {
    memset(&plog, 0, sizeof plog);
    plog.seen = goro_chan_make(0, 4);
    goro_limiter *l = goro_limiter_new(10, on_panic_record);
    cr_assert_eq(goro_limiter_go(l, task_panic, I2P(1)), 0);
    goro_chan_recv(plog.seen, NULL);
    cr_assert_eq(atomic_load(&plog.calls), 1);
    cr_assert_str_eq(plog.msg, "bad 1");
    cr_assert_eq(plog.arg, I2P(1));
    cr_assert(goro_test_wait_until(goro_limiter_running(l) == 0, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_running(l), 0, "the limiter should be empty after a panic");
    goro_limiter_wait(l);
    goro_limiter_free(l);
    goro_chan_release(plog.seen);
}

/* TestPoolPanicWithoutHandler: nothing crashes; the message and the
   goroutine's trace go to stderr. */
static void capture_stderr_begin(int *saved, FILE **tmp) {
    fflush(stderr);
    *tmp = tmpfile();
    *saved = dup(2);
    dup2(fileno(*tmp), 2);
}

static char *capture_stderr_end(int saved, FILE *tmp) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long n = ftell(tmp);
    if (n < 0)
        n = 0;
    rewind(tmp);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, tmp);
    buf[got] = 0;
    fclose(tmp);
    return buf;
}

GORO_TEST(pool_limiter_ants, panic_without_handler, .timeout = 10) {
    int saved;
    FILE *tmp;
    capture_stderr_begin(&saved, &tmp);
    goro_limiter *l = goro_limiter_new(10, NULL);
    cr_assert_eq(goro_limiter_go(l, task_panic, I2P(1)), 0);
    goro_limiter_wait(l);
    cr_assert_eq(goro_limiter_running(l), 0);
    tstate t;
    ts_init(&t);
    cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
    goro_limiter_free(l);
    char *out = capture_stderr_end(saved, tmp);
    cr_assert_eq(atomic_load(&t.finished), 1, "the limiter must keep working after a panic");
    cr_assert(strstr(out, "bad 1") != NULL, "stderr: %s", out);
    cr_assert(strstr(out, "goroutine ") != NULL, "no trace on stderr: %s", out);
    cr_assert(strstr(out, "[running]") != NULL, "no trace on stderr: %s", out);
    free(out);
    ts_fini(&t);
}

/* TestNonblockingSubmit: try_go fails when full and succeeds once a slot
   frees. */
GORO_TEST(pool_limiter_ants, nonblocking_submit, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(10, NULL);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(goro_limiter_try_go(l, task_block, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.started) == 10, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_running(l), 10);
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_EAGAIN);
    cr_assert_eq(goro_limiter_running(l), 10);
    goro_chan_send(t.gate, NULL); /* one blocked task ends */
    cr_assert(goro_test_wait_until(goro_limiter_running(l) == 9, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), 0);
    goro_chan_close(t.gate);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 11);
    goro_limiter_free(l);
    ts_fini(&t);
}

/* TestMaxBlockingSubmit (our limiter has no blocking cap): blocked submitters
   are counted in waiting() and all get through once slots free. */
typedef struct submitter {
    goro_limiter *l;
    tstate *t;
    goro_fn fn;
    int n;
    int err;
    goro_chan *done;
} submitter;

static void submit_loop(void *arg) {
    submitter *s = arg;
    s->err = 0;
    for (int i = 0; i < s->n; i++) {
        int e = goro_limiter_go(s->l, s->fn, s->t);
        if (e) {
            s->err = e;
            break;
        }
    }
    goro_chan_send(s->done, NULL);
}

GORO_TEST(pool_limiter_ants, blocking_submit_counts, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(10, NULL);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    goro_chan *done = goro_chan_make(0, 8);
    submitter s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (submitter){l, &t, task_quick, 1, -1, done};
        goro_go(submit_loop, &s[i]);
    }
    cr_assert(goro_test_wait_until(goro_limiter_waiting(l) == 3, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_waiting(l), 3);
    cr_assert_eq(goro_limiter_running(l), 10);
    goro_chan_close(t.gate);
    for (int i = 0; i < 3; i++)
        goro_chan_recv(done, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(s[i].err, 0);
    cr_assert_eq(goro_limiter_waiting(l), 0);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 13);
    goro_limiter_free(l);
    goro_chan_release(done);
    ts_fini(&t);
}

/* TestReleaseWhenRunningPool (ants #202): closing while producers are
   blocked in go() returns them all with GORO_ECLOSED. */
static void task_sleep2ms(void *arg) {
    tstate *t = arg;
    enter(t);
    goro_sleep(GORO_MS(2));
    leave(t);
}

GORO_TEST(pool_limiter_ants, close_when_running, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(1, NULL);
    goro_chan *done = goro_chan_make(0, 2);
    submitter s[2] = {{l, &t, task_sleep2ms, 30, -1, done}, {l, &t, task_sleep2ms, 30, -1, done}};
    goro_go(submit_loop, &s[0]);
    goro_go(submit_loop, &s[1]);
    cr_assert(goro_test_wait_until(atomic_load(&t.finished) >= 3, GORO_SEC(5)));
    cr_assert(goro_test_wait_until(goro_limiter_waiting(l) >= 1, GORO_SEC(5)));
    goro_limiter_free(l); /* returns once the running task ended */
    cr_assert_eq(atomic_load(&t.meter.running), 0);
    goro_chan_recv(done, NULL);
    goro_chan_recv(done, NULL);
    cr_assert_eq(s[0].err, GORO_ECLOSED);
    cr_assert_eq(s[1].err, GORO_ECLOSED);
    cr_assert_eq(atomic_load(&t.started), atomic_load(&t.finished));
    cr_assert_lt(atomic_load(&t.finished), 60);
    goro_chan_release(done);
    ts_fini(&t);
}

/* TestPoolTuneScaleUp: raising the limit starts blocked submitters. */
GORO_TEST(pool_limiter_ants, tune_scale_up, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(2, NULL);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert_eq(goro_limiter_try_go(l, task_block, &t), GORO_EAGAIN);
    goro_limiter_tune(l, 3);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.started) == 3, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_running(l), 3);

    goro_chan *done = goro_chan_make(0, 8);
    submitter s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = (submitter){l, &t, task_block, 1, -1, done};
        goro_go(submit_loop, &s[i]);
    }
    cr_assert(goro_test_wait_until(goro_limiter_waiting(l) == 5, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_waiting(l), 5);
    goro_limiter_tune(l, 8);
    for (int i = 0; i < 5; i++)
        goro_chan_recv(done, NULL);
    cr_assert(goro_test_wait_until(atomic_load(&t.started) == 8, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_running(l), 8);
    cr_assert_eq(goro_limiter_waiting(l), 0);
    cr_assert_eq(atomic_load(&t.meter.running), 8);
    goro_chan_close(t.gate);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 8);
    goro_limiter_free(l);
    goro_chan_release(done);
    ts_fini(&t);
}

/* ============================================================ our contract */

/* Lowering the limit lets running tasks finish; new ones start only below it. */
GORO_TEST(pool_limiter, tune_down, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(4, NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.started) == 4, GORO_SEC(5)));
    goro_limiter_tune(l, 2);
    cr_assert_eq(goro_limiter_running(l), 4, "running tasks are not stopped");
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_EAGAIN);
    goro_chan_send(t.gate, NULL);
    goro_chan_send(t.gate, NULL);
    cr_assert(goro_test_wait_until(goro_limiter_running(l) == 2, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_EAGAIN, "still at the new limit");
    goro_chan_send(t.gate, NULL);
    cr_assert(goro_test_wait_until(goro_limiter_running(l) == 1, GORO_SEC(5)));
    cr_assert_eq(goro_limiter_try_go(l, task_block, &t), 0);
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_EAGAIN);
    goro_limiter_tune(l, 0); /* ignored */
    goro_limiter_tune(l, -5);
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_EAGAIN);
    goro_chan_close(t.gate);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 5);
    goro_limiter_free(l);
    ts_fini(&t);
}

/* The limit holds under churn, goroutines are reused, every task runs. */
static _Atomic long sum;

static void task_add(void *arg) {
    tstate *t = (tstate *)((intptr_t *)arg)[0];
    enter(t);
    atomic_fetch_add(&sum, 1);
    if ((atomic_load(&t->started) & 15) == 0)
        goro_yield();
    leave(t);
}

GORO_TEST(pool_limiter, limit_holds_under_churn, .timeout = 20) {
    tstate t;
    ts_init(&t);
    atomic_store(&sum, 0);
    intptr_t box[1] = {(intptr_t)&t};
    int start = goro_count();
    goro_limiter *l = goro_limiter_new(50, NULL);
    for (int i = 0; i < 50000; i++) {
        cr_assert_eq(goro_limiter_go(l, task_add, box), 0);
        cr_assert_leq(goro_limiter_running(l), 50);
        if ((i & 1023) == 0)
            cr_assert_leq(goro_count(), start + 50, "at most max goroutines");
    }
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&sum), 50000);
    cr_assert_leq(atomic_load(&t.meter.max_running), 50);
    cr_assert_eq(goro_count(), start, "after wait: %d goroutines, expected %d", goro_count(),
                 start);
    goro_limiter_free(l);
    cr_assert_eq(goro_count(), start);
    ts_fini(&t);
}

/* running() and waiting() are exact at each step. */
GORO_TEST(pool_limiter, counts_exact, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(3, NULL);
    cr_assert_eq(goro_limiter_running(l), 0);
    cr_assert_eq(goro_limiter_waiting(l), 0);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
        cr_assert_eq(goro_limiter_running(l), i);
    }
    goro_chan *done = goro_chan_make(0, 8);
    submitter s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (submitter){l, &t, task_block, 1, -1, done};
        goro_go(submit_loop, &s[i]);
        cr_assert(goro_test_wait_until(goro_limiter_waiting(l) == i + 1, GORO_SEC(5)));
        cr_assert_eq(goro_limiter_waiting(l), i + 1);
        cr_assert_eq(goro_limiter_running(l), 3);
    }
    for (int i = 3; i >= 0; i--) {
        goro_chan_send(t.gate, NULL); /* one task ends: one submitter gets in */
        goro_chan_recv(done, NULL);
        cr_assert_eq(goro_limiter_waiting(l), i);
        cr_assert_eq(goro_limiter_running(l), 3);
    }
    for (int i = 2; i >= 0; i--) {
        goro_chan_send(t.gate, NULL);
        cr_assert(goro_test_wait_until(goro_limiter_running(l) == i, GORO_SEC(5)));
        cr_assert_eq(goro_limiter_running(l), i);
    }
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 7);
    goro_limiter_free(l);
    goro_chan_release(done);
    ts_fini(&t);
}

/* Submitters are served first come, first served. */
typedef struct ordered {
    int id;
    goro_chan *order;
} ordered;

static void task_record(void *arg) {
    ordered *o = arg;
    goro_chan_send(o->order, &o->id);
}

typedef struct osub {
    goro_limiter *l;
    ordered *o;
    goro_chan *done;
} osub;

static void osub_fn(void *arg) {
    osub *s = arg;
    goro_limiter_go(s->l, task_record, s->o);
    goro_chan_send(s->done, NULL);
}

GORO_TEST(pool_limiter, fifo_submitters, .timeout = 10) {
    enum { N = 8 };
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(1, NULL);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    goro_chan *order = goro_chan_make(sizeof(int), N);
    goro_chan *done = goro_chan_make(0, N);
    ordered os[N];
    osub subs[N];
    for (int i = 0; i < N; i++) {
        os[i] = (ordered){i, order};
        subs[i] = (osub){l, &os[i], done};
        goro_go(osub_fn, &subs[i]);
        cr_assert(goro_test_wait_until(goro_limiter_waiting(l) == i + 1, GORO_SEC(5)));
    }
    goro_chan_close(t.gate);
    for (int i = 0; i < N; i++) {
        int v;
        goro_chan_recv(order, &v);
        cr_assert_eq(v, i);
    }
    for (int i = 0; i < N; i++)
        goro_chan_recv(done, NULL);
    goro_limiter_free(l);
    goro_chan_release(order);
    goro_chan_release(done);
    ts_fini(&t);
}

/* The slot comes back after a panic: with a limit of 1, the next task runs;
   many panics do not leak slots. */
GORO_TEST(pool_limiter, slot_returned_after_panic, .timeout = 10) {
    memset(&plog, 0, sizeof plog);
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(1, on_panic_record);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(goro_limiter_go(l, task_panic, I2P(i)), 0);
        cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
    }
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&plog.calls), 200);
    cr_assert_eq(atomic_load(&t.finished), 200);
    cr_assert_eq(goro_limiter_running(l), 0);
    int start = goro_count();
    goro_limiter_free(l);
    cr_assert_eq(goro_count(), start);
    ts_fini(&t);
}

/* goro_exit inside a task ends that goroutine; the slot still comes back. */
static void task_exit(void *arg) {
    tstate *t = arg;
    enter(t);
    leave(t);
    goro_exit();
}

GORO_TEST(pool_limiter, slot_returned_after_goro_exit, .timeout = 10) {
    tstate t;
    ts_init(&t);
    int start = goro_count();
    goro_limiter *l = goro_limiter_new(2, NULL);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(goro_limiter_go(l, task_exit, &t), 0);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&t.finished), 100);
    cr_assert_eq(goro_limiter_running(l), 0);
    cr_assert_eq(goro_count(), start);
    goro_limiter_free(l);
    ts_fini(&t);
}

/* No goroutine of the limiter is left right after wait and after close. */
GORO_TEST(pool_limiter, no_goroutine_left, .timeout = 10) {
    int start = goro_count();
    for (int round = 0; round < 30; round++) {
        tstate t;
        ts_init(&t);
        goro_limiter *l = goro_limiter_new(1 + round % 9, NULL);
        for (int i = 0; i < 40; i++)
            cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
        if (round % 2 == 0) {
            goro_limiter_wait(l);
            cr_assert_eq(goro_count(), start, "round %d after wait: %d, expected %d", round,
                         goro_count(), start);
        }
        goro_limiter_free(l);
        cr_assert_eq(goro_count(), start, "round %d after close: %d, expected %d", round,
                     goro_count(), start);
        cr_assert_eq(atomic_load(&t.finished), 40);
        ts_fini(&t);
    }
}

/* Idle goroutines end by themselves after a while. */
GORO_TEST(pool_limiter, idle_goroutines_time_out, .timeout = 10) {
    tstate t;
    ts_init(&t);
    int start = goro_count();
    goro_limiter *l = goro_limiter_new(8, NULL);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.finished) == 8, GORO_SEC(5)));
    goro_test_await_count(start);
    cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
    goro_limiter_free(l);
    cr_assert_eq(atomic_load(&t.finished), 9);
    ts_fini(&t);
}

/* Plain threads submit too, blocking and not. */
typedef struct tsub {
    goro_limiter *l;
    tstate *t;
    _Atomic int *bad;
} tsub;

static void *thread_submit(void *arg) {
    tsub *s = arg;
    for (int i = 0; i < 500; i++) {
        int e = (i % 5 == 0) ? goro_limiter_try_go(s->l, task_quick, s->t)
                             : goro_limiter_go(s->l, task_quick, s->t);
        if (e != 0 && e != GORO_EAGAIN)
            atomic_fetch_add(s->bad, 1);
        if (e == GORO_EAGAIN)
            goro_limiter_go(s->l, task_quick, s->t);
    }
    return NULL;
}

GORO_TEST(pool_limiter, plain_thread_submitters, .timeout = 20) {
    enum { T = 4 };
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(3, NULL);
    _Atomic int bad = 0;
    pthread_t th[T];
    tsub s[T];
    for (int i = 0; i < T; i++) {
        s[i] = (tsub){l, &t, &bad};
        cr_assert_eq(pthread_create(&th[i], NULL, thread_submit, &s[i]), 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(atomic_load(&t.finished), T * 500);
    cr_assert_leq(atomic_load(&t.meter.max_running), 3);
    goro_limiter_free(l);
    ts_fini(&t);
}

/* A closed limiter refuses; blocked submitters of every kind come back. */
static void close_limiter(void *l) { goro_limiter_close(l); }

GORO_TEST(pool_limiter, close_refuses_blocked_and_waits, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(2, NULL);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    goro_chan *done = goro_chan_make(0, 8);
    submitter s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (submitter){l, &t, task_quick, 1, -1, done};
        goro_go(submit_loop, &s[i]);
    }
    cr_assert(goro_test_wait_until(goro_limiter_waiting(l) == 4, GORO_SEC(5)));
    goro_chan *closed = goro_chan_make(0, 1);
    pool_kit_closer c = {close_limiter, l, closed};
    goro_go(pool_kit_close_async, &c);
    for (int i = 0; i < 4; i++)
        goro_chan_recv(done, NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s[i].err, GORO_ECLOSED);
    cr_assert(pool_kit_still_silent(closed), "close must wait for the running tasks");
    goro_chan_close(t.gate);
    goro_chan_recv(closed, NULL);
    cr_assert_eq(atomic_load(&t.finished), 2);
    cr_assert_eq(atomic_load(&t.started), 2);
    goro_limiter_free(l);
    goro_chan_release(done);
    goro_chan_release(closed);
    ts_fini(&t);
}

/* The pool's shape: a closed limiter stays valid until free; every call on
   it says GORO_ECLOSED or does nothing. (It used to be freed by close, and
   a later try_go was a use after free.) */
GORO_TEST(pool_limiter, closed_limiter_stays_valid_until_free, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(2, NULL);
    cr_assert_eq(goro_limiter_go(l, task_quick, &t), 0);
    goro_limiter_close(l);
    cr_assert_eq(atomic_load(&t.finished), 1, "close waits for the running task");
    cr_assert_eq(goro_limiter_go(l, task_quick, &t), GORO_ECLOSED);
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_ECLOSED);
    goro_limiter_tune(l, 5);
    cr_assert_eq(goro_limiter_try_go(l, task_quick, &t), GORO_ECLOSED);
    cr_assert_eq(goro_limiter_running(l), 0);
    cr_assert_eq(goro_limiter_waiting(l), 0);
    goro_limiter_wait(l);
    goro_limiter_close(l); /* a second close does nothing */
    goro_limiter_free(l);
    cr_assert_eq(atomic_load(&t.started), 1);
    ts_fini(&t);
}

/* goro_limiter_crash_on_panic: the task's panic is not recovered and ends
   the program like a panic anywhere else (and like a pool worker's). */
static void lim_scn_crash_on_panic(void) {
    goro_limiter *l = goro_limiter_new(1, goro_limiter_crash_on_panic);
    goro_limiter_go(l, task_panic, I2P(7));
    goro_limiter_wait(l);
    _exit(0); /* not reached */
}

GORO_TEST(pool_limiter, crash_on_panic_ends_the_program, .timeout = 20) {
    static char out[1 << 16];
    int st = goro_test_run_child_threaded(lim_scn_crash_on_panic, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x; stderr:\n%s", st, out);
    cr_assert(strstr(out, "panic: bad 7\n\ngoroutine ") != NULL, "stderr:\n%s", out);
    cr_assert(strstr(out, "task_panic(") != NULL, "stderr:\n%s", out);
    cr_assert(strstr(out, "recovered panic") == NULL, "stderr:\n%s", out);
}

/* Tasks may submit to their own limiter with try_go; go from a task to a
   full limiter would wait for itself (ants #197). */
typedef struct nest {
    goro_limiter *l;
    tstate *t;
    _Atomic int eagain;
} nest;

static void task_nested(void *arg) {
    nest *n = arg;
    enter(n->t);
    if (goro_limiter_try_go(n->l, task_quick, n->t) == GORO_EAGAIN)
        atomic_fetch_add(&n->eagain, 1);
    leave(n->t);
}

GORO_TEST(pool_limiter, nested_try_go, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(1, NULL);
    nest n = {l, &t, 0};
    cr_assert_eq(goro_limiter_go(l, task_nested, &n), 0);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&n.eagain), 1);
    goro_limiter_tune(l, 2);
    cr_assert_eq(goro_limiter_go(l, task_nested, &n), 0);
    goro_limiter_wait(l);
    cr_assert_eq(atomic_load(&n.eagain), 1);
    cr_assert_eq(atomic_load(&t.finished), 3);
    goro_limiter_free(l);
    ts_fini(&t);
}

GORO_TEST(pool_limiter, bad_arguments, .timeout = 10) {
    cr_assert_null(goro_limiter_new(0, NULL));
    cr_assert_null(goro_limiter_new(-3, NULL));
    cr_assert_eq(goro_limiter_go(NULL, task_quick, NULL), GORO_EINVAL);
    goro_limiter *l = goro_limiter_new(1, NULL);
    cr_assert_eq(goro_limiter_go(l, NULL, NULL), GORO_EINVAL);
    cr_assert_eq(goro_limiter_try_go(l, NULL, NULL), GORO_EINVAL);
    cr_assert_eq(goro_limiter_running(NULL), 0);
    cr_assert_eq(goro_limiter_waiting(NULL), 0);
    goro_limiter_free(l);
    goro_limiter_free(NULL);
}

/* Limited goroutines carry their name in profiles. */
GORO_TEST(pool_limiter, named_in_profile, .timeout = 10) {
    tstate t;
    ts_init(&t);
    goro_limiter *l = goro_limiter_new(2, NULL);
    cr_assert_eq(goro_limiter_go(l, task_block, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.started) == 1, GORO_SEC(5)));
    char *buf = pool_kit_profile_text();
    cr_assert(strstr(buf, "limited goroutine") != NULL, "profile:\n%s", buf);
    free(buf);
    goro_chan_close(t.gate);
    goro_limiter_free(l);
    ts_fini(&t);
}
