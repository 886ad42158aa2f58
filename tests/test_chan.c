/*
 * test_chan.c - channels: Go's src/runtime/chan_test.go in spirit.
 *
 * Every test records goro_count() at its start and checks that it comes back
 * (no goroutine left behind). Scenarios that must panic or block forever run
 * in a forked child so their exit status and stderr can be checked.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "chan/chan_internal.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* ------------------------------------------------------------- helpers */

/* Runs fn in a child that must die of the panic msg; returns its stderr. */
static const char *tc_expect_panic(void (*fn)(void), const char *msg) {
    static char out[1 << 16];
    int st = goro_test_run_child_threaded(fn, out, sizeof out);
    cr_assert(WIFEXITED(st), "child did not exit normally (status %#x); stderr:\n%s", st, out);
    cr_assert_eq(WEXITSTATUS(st), 2, "exit status %d; stderr:\n%s", WEXITSTATUS(st), out);
    char want[256];
    snprintf(want, sizeof want, "panic: %s", msg);
    cr_assert(strstr(out, want) != NULL, "stderr does not contain \"%s\":\n%s", want, out);
    return out;
}

/* Collects one int64 per goroutine that finished. */
typedef struct tc_job {
    goro_chan *c;
    goro_chan *done;
    int64_t from, count;
    int64_t sum;
    int64_t n;
    _Atomic int *seen; /* optional: per-value delivery counts */
    int bad;           /* a closed receive did not zero the element */
} tc_job;

static void tc_producer(void *arg) {
    tc_job *j = arg;
    for (int64_t v = j->from; v < j->from + j->count; v++)
        goro_chan_send(j->c, &v);
    int64_t one = 1;
    goro_chan_send(j->done, &one);
}

static void tc_consumer(void *arg) {
    tc_job *j = arg;
    int64_t v;
    while (goro_chan_recv(j->c, &v)) {
        j->sum += v;
        j->n++;
        if (j->seen)
            atomic_fetch_add(&j->seen[v], 1);
    }
    if (v != 0)
        j->bad = 1; /* a closed receive must zero the element */
    int64_t one = 1;
    goro_chan_send(j->done, &one);
}

static void *tc_thread_producer(void *arg) {
    tc_producer(arg);
    return NULL;
}

static void *tc_thread_consumer(void *arg) {
    tc_consumer(arg);
    return NULL;
}

/* Many producers, many consumers; every value delivered exactly once.
   threads: how many of each side are plain pthreads instead of goroutines. */
static void tc_mpmc(size_t cap, int np, int nc, int64_t per, int pthreads_each) {
    int start = goro_count();
    int old = goro_maxprocs(2);
    goro_chan *c = goro_chan_make(sizeof(int64_t), cap);
    goro_chan *done = goro_chan_make(sizeof(int64_t), (size_t)(np + nc));
    cr_assert_not_null(c);
    int64_t total = per * np;
    _Atomic int *seen = calloc((size_t)total, sizeof *seen);
    tc_job *pj = calloc((size_t)np, sizeof *pj), *cj = calloc((size_t)nc, sizeof *cj);
    pthread_t *th = calloc((size_t)(np + nc), sizeof *th);
    int nth = 0;
    for (int i = 0; i < nc; i++) {
        cj[i] = (tc_job){.c = c, .done = done, .seen = seen};
        if (i < pthreads_each)
            cr_assert_eq(pthread_create(&th[nth++], NULL, tc_thread_consumer, &cj[i]), 0);
        else
            cr_assert_neq(goro_go(tc_consumer, &cj[i]), 0);
    }
    for (int i = 0; i < np; i++) {
        pj[i] = (tc_job){.c = c, .done = done, .from = i * per, .count = per};
        if (i < pthreads_each)
            cr_assert_eq(pthread_create(&th[nth++], NULL, tc_thread_producer, &pj[i]), 0);
        else
            cr_assert_neq(goro_go(tc_producer, &pj[i]), 0);
    }
    int64_t x;
    for (int i = 0; i < np; i++)
        cr_assert(goro_chan_recv(done, &x));
    goro_chan_close(c);
    for (int i = 0; i < nc; i++)
        cr_assert(goro_chan_recv(done, &x));
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    int64_t sum = 0, n = 0;
    for (int i = 0; i < nc; i++) {
        sum += cj[i].sum;
        n += cj[i].n;
        cr_assert_eq(cj[i].bad, 0, "a closed receive did not zero the element");
    }
    cr_assert_eq(n, total, "received %lld values, sent %lld", (long long)n, (long long)total);
    cr_assert_eq(sum, total * (total - 1) / 2);
    for (int64_t v = 0; v < total; v++)
        cr_assert_eq(atomic_load(&seen[v]), 1, "value %lld delivered %d times", (long long)v,
                     atomic_load(&seen[v]));
    goro_chan_release(c);
    goro_chan_release(done);
    free(seen);
    free(pj);
    free(cj);
    free(th);
    goro_maxprocs(old);
    goro_test_await_count(start);
}

/* --------------------------------------------------------- basic behaviour */

static void tc_sender_seq(void *arg) {
    goro_chan *c = arg;
    for (int64_t i = 0; i < 100; i++)
        goro_chan_send(c, &i);
    goro_chan_close(c);
}

GORO_TEST(chan, unbuffered_and_buffered_fifo, .timeout = 20) {
    int start = goro_count();
    size_t caps[] = {0, 1, 2, 5, 10, 100};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        goro_chan *c = goro_chan_make(sizeof(int64_t), caps[k]);
        cr_assert_eq(goro_chan_cap(c), caps[k]);
        goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_sender_seq, c);
        int64_t v, want = 0;
        while (goro_chan_recv(c, &v)) {
            cr_assert_eq(v, want, "cap %zu: got %lld want %lld", caps[k], (long long)v,
                         (long long)want);
            want++;
        }
        cr_assert_eq(want, 100);
        goro_chan_release(c);
    }
    goro_test_await_count(start);
}

static void tc_recv_flag(void *arg) {
    void **a = arg;
    goro_chan *c = a[0];
    _Atomic int *flag = a[1];
    int64_t v;
    goro_chan_recv(c, &v);
    atomic_store(flag, 1);
}

static void tc_send_flag(void *arg) {
    void **a = arg;
    goro_chan *c = a[0];
    _Atomic int *flag = a[1];
    int64_t v = 7;
    goro_chan_send(c, &v);
    atomic_store(flag, 1);
}

/* Go's TestChan: blocking and non-blocking behaviour for several capacities. */
GORO_TEST(chan, go_testchan, .timeout = 30) {
    int start = goro_count();
    goro_maxprocs(2);
    for (size_t cap = 0; cap < 20; cap += (cap < 3 ? 1 : 8)) {
        /* A receive from an empty channel blocks. */
        goro_chan *c = goro_chan_make(sizeof(int64_t), cap);
        _Atomic int flag = 0;
        void *a[2] = {c, &flag};
        /* A receive that did not block would never park. */
        goro_test_await_parked(goro_go(tc_recv_flag, a), GORO__WAIT_CHAN_RECV);
        cr_assert_eq(atomic_load(&flag), 0, "cap %zu: receive from empty chan did not block", cap);
        int64_t v = 0;
        goro_chan_send(c, &v);
        cr_assert(goro_test_wait_until(atomic_load(&flag), GORO_SEC(5)));

        /* A non-blocking receive does not block. */
        bool ok = true;
        cr_assert_eq(goro_chan_try_recv(c, &v, &ok), GORO_EAGAIN);
        cr_assert_not(ok);

        /* A send to a full channel blocks. */
        for (size_t i = 0; i < cap; i++) {
            int64_t x = (int64_t)i;
            goro_chan_send(c, &x);
        }
        cr_assert_eq(goro_chan_len(c), cap);
        atomic_store(&flag, 0);
        goro_test_await_parked(goro_go(tc_send_flag, a), GORO__WAIT_CHAN_SEND);
        cr_assert_eq(atomic_load(&flag), 0, "cap %zu: send to full chan did not block", cap);
        cr_assert(goro_chan_recv(c, &v));
        cr_assert_eq(v, cap ? 0 : 7);
        cr_assert(goro_test_wait_until(atomic_load(&flag), GORO_SEC(5)));

        /* A non-blocking send does not block. */
        cr_assert_eq(goro_chan_try_send(c, &v), GORO_EAGAIN);

        /* Close with pending data: the data first, then zero values. */
        goro_chan_close(c);
        for (size_t i = 0; i < cap; i++) {
            int64_t x = -1;
            cr_assert(goro_chan_recv(c, &x));
            cr_assert_eq(x, i + 1 < cap ? (int64_t)i + 1 : 7);
        }
        for (int i = 0; i < 3; i++) {
            v = 123;
            cr_assert_not(goro_chan_recv(c, &v));
            cr_assert_eq(v, 0);
            v = 123;
            ok = true;
            cr_assert_eq(goro_chan_try_recv(c, &v, &ok), 0);
            cr_assert_not(ok);
            cr_assert_eq(v, 0);
            v = 123;
            ok = true;
            cr_assert_eq(goro_chan_recv_timeout(c, &v, &ok, GORO_SEC(10)), 0);
            cr_assert_not(ok);
            cr_assert_eq(v, 0);
        }
        cr_assert_eq(goro_chan_len(c), 0);
        cr_assert_eq(goro_chan_cap(c), cap);
        goro_chan_release(c);
    }
    goro_test_await_count(start);
}

GORO_TEST(chan, len_cap_and_try, .timeout = 10) {
    goro_chan *c = goro_chan_make(sizeof(int), 3);
    cr_assert_eq(goro_chan_len(c), 0);
    cr_assert_eq(goro_chan_cap(c), 3);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(goro_chan_try_send(c, &i), 0);
        cr_assert_eq(goro_chan_len(c), (size_t)i);
    }
    int x = 9;
    cr_assert_eq(goro_chan_try_send(c, &x), GORO_EAGAIN);
    for (int i = 1; i <= 3; i++) {
        bool ok = false;
        cr_assert_eq(goro_chan_try_recv(c, &x, &ok), 0);
        cr_assert(ok);
        cr_assert_eq(x, i);
    }
    cr_assert_eq(goro_chan_try_recv(c, &x, NULL), GORO_EAGAIN);
    /* try on an unbuffered channel with nobody waiting */
    goro_chan *u = goro_chan_make(sizeof(int), 0);
    cr_assert_eq(goro_chan_try_send(u, &x), GORO_EAGAIN);
    cr_assert_eq(goro_chan_try_recv(u, &x, NULL), GORO_EAGAIN);
    cr_assert_eq(goro_chan_len(u), 0);
    cr_assert_eq(goro_chan_cap(u), 0);
    goro_chan_release(u);
    goro_chan_release(c);
}

static void tc_try_partner(void *arg) {
    goro_chan *c = arg;
    int v = 0;
    goro_chan_recv(c, &v); /* wait for the first value */
    v = 42;
    goro_chan_send(c, &v); /* then hand one back */
}

GORO_TEST(chan, try_with_waiting_partner, .timeout = 10) {
    int start = goro_count();
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_try_partner, c);
    int v = 1;
    /* try_send succeeds once the partner is parked in recv */
    cr_assert(goro_test_wait_until(goro_chan_try_send(c, &v) != GORO_EAGAIN, GORO_SEC(5)));
    bool ok = false;
    cr_assert(goro_test_wait_until(goro_chan_try_recv(c, &v, &ok) != GORO_EAGAIN, GORO_SEC(5)));
    cr_assert(ok);
    cr_assert_eq(v, 42);
    goro_chan_release(c);
    goro_test_await_count(start);
}

/* ------------------------------------------------------------------ close */

typedef struct tc_closer_arg {
    goro_chan *c, *done;
} tc_closer_arg;

static void tc_recv_closed(void *arg) {
    tc_closer_arg *a = arg;
    int64_t v = 0x5555;
    bool ok = goro_chan_recv(a->c, &v);
    int64_t r = (!ok && v == 0) ? 1 : 0;
    goro_chan_send(a->done, &r);
}

GORO_TEST(chan, close_wakes_all_receivers, .timeout = 10) {
    int start = goro_count();
    goro_maxprocs(2);
    for (size_t cap = 0; cap <= 4; cap += 4) {
        goro_chan *c = goro_chan_make(sizeof(int64_t), cap);
        goro_chan *done = goro_chan_make(sizeof(int64_t), 0);
        tc_closer_arg a = {c, done};
        const int N = 50;
        for (int i = 0; i < N; i++)
            goro_go(tc_recv_closed, &a);
        goro__chan_info info;
        goro_test_wait_until((goro__chan_refinfo(c, &info, NULL, 0), info.waiters == (uint32_t)N),
                             GORO_SEC(5));
        cr_assert_eq(info.waiters, (uint32_t)N, "only %u receivers blocked", info.waiters);
        goro_chan_close(c);
        for (int i = 0; i < N; i++) {
            int64_t r = 0;
            goro_chan_recv(done, &r);
            cr_assert_eq(r, 1, "a receiver woken by close got ok or a non-zero value");
        }
        goro_chan_release(c);
        goro_chan_release(done);
    }
    goro_test_await_count(start);
}

GORO_TEST(chan, close_drains_buffer_first, .timeout = 10) {
    goro_chan *c = goro_chan_make(sizeof(int), 4);
    for (int i = 1; i <= 3; i++)
        goro_chan_send(c, &i);
    goro_chan_close(c);
    cr_assert_eq(goro_chan_len(c), 3);
    for (int i = 1; i <= 3; i++) {
        int v = 0;
        cr_assert(goro_chan_recv(c, &v));
        cr_assert_eq(v, i);
    }
    int v = 77;
    cr_assert_not(goro_chan_recv(c, &v));
    cr_assert_eq(v, 0);
    cr_assert_not(goro_chan_recv(c, NULL)); /* elem may be NULL */
    goro_chan_release(c);
}

static void tc_scn_send_on_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    goro_chan_close(c);
    int v = 1;
    goro_chan_send(c, &v);
}

static void tc_scn_try_send_on_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    goro_chan_close(c);
    int v = 1;
    goro_chan_try_send(c, &v); /* Go: select { case c <- v: default: } panics too */
}

static void tc_blocked_sender(void *arg) {
    int v = 1;
    goro_chan_send(arg, &v);
}

static void tc_scn_blocked_sender_on_close(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_test_await_parked(goro_go(tc_blocked_sender, c), GORO__WAIT_CHAN_SEND);
    goro_chan_close(c); /* the blocked sender wakes and panics */
    goro_sleep(GORO_SEC(5));
    _exit(0);
}

static void tc_scn_close_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_chan_close(c);
    goro_chan_close(c);
}

static void tc_scn_close_nil(void) { goro_chan_close(NULL); }

GORO_TEST(chan, send_on_closed_panics, .timeout = 20) {
    tc_expect_panic(tc_scn_send_on_closed, "send on closed channel");
    tc_expect_panic(tc_scn_try_send_on_closed, "send on closed channel");
    tc_expect_panic(tc_scn_blocked_sender_on_close, "send on closed channel");
}

GORO_TEST(chan, close_of_closed_and_nil_panic, .timeout = 20) {
    tc_expect_panic(tc_scn_close_closed, "close of closed channel");
    tc_expect_panic(tc_scn_close_nil, "close of nil channel");
}

/* The plain Criterion form of the same panics: exit status 2. */
GORO_TEST(chan, send_on_closed_exit_code, .exit_code = 2, .timeout = 10) {
    tc_scn_send_on_closed();
}

GORO_TEST(chan, close_of_nil_exit_code, .exit_code = 2, .timeout = 10) { tc_scn_close_nil(); }

/* A goroutine that recovers (on_panic) from a send on a closed channel. */
static _Atomic int tc_recovered;
static void tc_on_panic(const char *msg, void *arg) {
    (void)arg;
    if (strcmp(msg, "send on closed channel") == 0)
        atomic_store(&tc_recovered, 1);
}

GORO_TEST(chan, blocked_sender_recovers_with_on_panic, .timeout = 10) {
    int start = goro_count();
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_go_opts(&(goro_opts){.on_panic = tc_on_panic, .holds = (goro_chan *const[]){c, NULL}},
                 tc_blocked_sender, c);
    goro__chan_info info;
    cr_assert(goro_test_wait_until((goro__chan_refinfo(c, &info, NULL, 0), info.waiters != 0),
                                   GORO_SEC(5)));
    goro_chan_close(c);
    goro_test_await_count(start);
    cr_assert_eq(atomic_load(&tc_recovered), 1);
    goro__chan_refinfo(c, &info, NULL, 0);
    cr_assert_eq(info.refs, 1);
    cr_assert_eq(info.held, 0);
    cr_assert_eq(info.waiters, 0);
    goro_chan_release(c);
}

/* ------------------------------------------------------------- nil channel */

GORO_TEST(chan, nil_channel_try_and_timeout, .timeout = 10) {
    int v = 5;
    bool ok = true;
    cr_assert_eq(goro_chan_len(NULL), 0);
    cr_assert_eq(goro_chan_cap(NULL), 0);
    cr_assert_eq(goro_chan_try_send(NULL, &v), GORO_EAGAIN);
    cr_assert_eq(goro_chan_try_recv(NULL, &v, &ok), GORO_EAGAIN);
    cr_assert_not(ok);
    cr_assert_eq(v, 5);
    cr_assert_eq(goro_chan_send_timeout(NULL, &v, 0), GORO_ETIMEDOUT);
    cr_assert_eq(goro_chan_recv_timeout(NULL, &v, &ok, 0), GORO_ETIMEDOUT);
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_chan_send_timeout(NULL, &v, GORO_MS(30)), GORO_ETIMEDOUT);
    int64_t t1 = goro_nanotime();
    cr_assert_eq(goro_chan_recv_timeout(NULL, &v, &ok, GORO_MS(30)), GORO_ETIMEDOUT);
    int64_t t2 = goro_nanotime();
    cr_assert_geq(t1 - t0, GORO_MS(30));
    cr_assert_geq(t2 - t1, GORO_MS(30));
    cr_assert_lt(t1 - t0, GORO_MS(500));
    cr_assert_lt(t2 - t1, GORO_MS(500));
    cr_assert_eq(v, 5);
    goro_chan_retain(NULL);
    goro_chan_release(NULL);
}

static void tc_nil_recv(void *arg) {
    (void)arg;
    goro_chan_recv(NULL, NULL);
    abort(); /* never */
}

static void tc_nil_send(void *arg) {
    (void)arg;
    int v = 1;
    goro_chan_send(NULL, &v);
    abort();
}

/* Finds the record of goroutine `id` (internal: allg). */
static void tc_scn_nil_blocks(void) {
    uint64_t r = goro_go(tc_nil_recv, NULL);
    uint64_t s = goro_go(tc_nil_send, NULL);
    goro__g *g = goro_test_await_parked_pinned(r, GORO__WAIT_CHAN_RECV_NIL);
    goro_chan *out[4];
    if (goro__g_wait_chans(g, out, 4) != 0)
        _exit(3);
    goro__g_scan_end(g);
    goro_test_await_parked(s, GORO__WAIT_CHAN_SEND_NIL);
    goro_sleep(GORO_MS(20));
    fprintf(stderr, "still blocked\n");
    _exit(0);
}

GORO_TEST(chan, nil_channel_blocks_forever, .timeout = 20) {
    static char out[4096];
    int st = goro_test_run_child_threaded(tc_scn_nil_blocks, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
    cr_assert(strstr(out, "still blocked") != NULL, "%s", out);
}

/* ------------------------------------------------------------- timeouts */

GORO_TEST(chan, timeouts_on_time, .timeout = 10) {
    goro_chan *u = goro_chan_make(sizeof(int), 0);
    goro_chan *f = goro_chan_make(sizeof(int), 1);
    int v = 1;
    goro_chan_send(f, &v);
    int64_t durs[] = {GORO_MS(1), GORO_MS(20), GORO_MS(50)};
    for (size_t i = 0; i < 3; i++) {
        int64_t t0 = goro_nanotime();
        cr_assert_eq(goro_chan_recv_timeout(u, &v, NULL, durs[i]), GORO_ETIMEDOUT);
        int64_t t1 = goro_nanotime();
        cr_assert_eq(goro_chan_send_timeout(u, &v, durs[i]), GORO_ETIMEDOUT);
        int64_t t2 = goro_nanotime();
        cr_assert_eq(goro_chan_send_timeout(f, &v, durs[i]), GORO_ETIMEDOUT);
        int64_t t3 = goro_nanotime();
        cr_assert_geq(t1 - t0, durs[i], "returned early");
        cr_assert_geq(t2 - t1, durs[i]);
        cr_assert_geq(t3 - t2, durs[i]);
        cr_assert_lt(t1 - t0, durs[i] + GORO_MS(300), "late: %lld ns", (long long)(t1 - t0));
        cr_assert_lt(t2 - t1, durs[i] + GORO_MS(300));
        cr_assert_lt(t3 - t2, durs[i] + GORO_MS(300));
    }
    /* zero timeouts act at once */
    cr_assert_eq(goro_chan_send_timeout(u, &v, 0), GORO_ETIMEDOUT);
    cr_assert_eq(goro_chan_recv_timeout(u, &v, NULL, 0), GORO_ETIMEDOUT);
    bool ok = false;
    cr_assert_eq(goro_chan_recv_timeout(f, &v, &ok, 0), 0);
    cr_assert(ok);
    cr_assert_eq(goro_chan_send_timeout(f, &v, 0), 0);
    /* no waiter record is left behind by a timeout */
    goro__chan_info info;
    goro__chan_refinfo(u, &info, NULL, 0);
    cr_assert_eq(info.waiters, 0);
    cr_assert_null(u->recvq.first);
    cr_assert_null(u->sendq.first);
    goro_chan_release(u);
    goro_chan_release(f);
}

typedef struct tc_race {
    goro_chan *c, *done;
    int64_t n;
    int64_t sent_sum, sent_n;
} tc_race;

static void tc_timed_sender(void *arg) {
    tc_race *r = arg;
    for (int64_t i = 1; i <= r->n; i++) {
        int64_t to = (int64_t)(goro__fastrand() % 40000);
        if (goro_chan_send_timeout(r->c, &i, to) == 0) {
            r->sent_sum += i;
            r->sent_n++;
        }
    }
    int64_t end = -1;
    goro_chan_send(r->c, &end);
}

static void *tc_timed_sender_thread(void *arg) {
    tc_timed_sender(arg);
    return NULL;
}

static void tc_timeout_race(size_t cap, bool sender_thread) {
    int start = goro_count();
    goro_maxprocs(2);
    tc_race r = {.c = goro_chan_make(sizeof(int64_t), cap), .n = 20000};
    pthread_t th;
    if (sender_thread)
        pthread_create(&th, NULL, tc_timed_sender_thread, &r);
    else
        goro_go(tc_timed_sender, &r);
    int64_t got_sum = 0, got_n = 0, timeouts = 0;
    for (;;) {
        int64_t v = 0;
        bool ok = false;
        int64_t to = (int64_t)(goro__fastrand() % 40000);
        int e = goro_chan_recv_timeout(r.c, &v, &ok, to);
        if (e == GORO_ETIMEDOUT) {
            timeouts++;
            continue;
        }
        cr_assert_eq(e, 0);
        cr_assert(ok);
        if (v == -1)
            break;
        got_sum += v;
        got_n++;
    }
    if (sender_thread)
        pthread_join(th, NULL);
    goro_test_await_count(start);
    cr_assert_eq(got_n, r.sent_n, "received %lld, senders saw %lld delivered", (long long)got_n,
                 (long long)r.sent_n);
    cr_assert_eq(got_sum, r.sent_sum);
    cr_assert_gt(got_n, 0);
    goro_chan_release(r.c);
}

GORO_TEST(chan, timeouts_lose_no_value, .timeout = 60) {
    tc_timeout_race(0, false);
    tc_timeout_race(1, false);
    tc_timeout_race(0, true);
}

/* ---------------------------------------------------------- Go's races */

typedef struct tc_nbr {
    goro_chan *c, *done;
    _Atomic int *fails;
} tc_nbr;

static void tc_nonblock_recv(void *arg) {
    tc_nbr *a = arg;
    goro_chan *c = a->c;
    bool ok;
    if (goro_chan_try_recv(c, NULL, &ok) == GORO_EAGAIN)
        atomic_fetch_add(a->fails, 1);
    int64_t one = 1;
    goro_chan_send(a->done, &one);
}

/* Go's TestNonblockRecvRace: a receive from a channel that is ready (a value
   or closed) must never report "would block". */
GORO_TEST(chan, nonblock_recv_race, .timeout = 60) {
    int start = goro_count();
    goro_maxprocs(2);
    _Atomic int fails = 0;
    goro_chan *done = goro_chan_make(sizeof(int64_t), 64);
    for (int i = 0; i < 10000; i++) {
        goro_chan *c = goro_chan_make(sizeof(int), 1);
        int one = 1;
        goro_chan_send(c, &one);
        tc_nbr *a = malloc(sizeof *a);
        *a = (tc_nbr){c, done, &fails};
        goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_nonblock_recv, a);
        goro_chan_close(c);
        goro_chan_recv(c, NULL);
        goro_chan_release(c);
        int64_t x;
        goro_chan_recv(done, &x);
        free(a);
    }
    cr_assert_eq(atomic_load(&fails), 0,
                 "%d non-blocking receives said the ready channel was not ready",
                 atomic_load(&fails));
    goro_chan_release(done);
    goro_test_await_count(start);
}

/* Go's TestNonblockSelectRace-like check for try_send: a channel with room
   must accept. */
GORO_TEST(chan, try_send_with_room_never_fails, .timeout = 30) {
    goro_maxprocs(2);
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    for (int i = 0; i < 100000; i++) {
        cr_assert_eq(goro_chan_try_send(c, &i), 0);
        int v;
        cr_assert_eq(goro_chan_try_recv(c, &v, NULL), 0);
        cr_assert_eq(v, i);
    }
    goro_chan_release(c);
}

/* ---------------------------------------------------------------- stress */

GORO_TEST(chan, mpmc_buffered_2p, .timeout = 60) { tc_mpmc(16, 6, 6, 20000, 0); }
GORO_TEST(chan, mpmc_unbuffered_2p, .timeout = 60) { tc_mpmc(0, 6, 6, 10000, 0); }
GORO_TEST(chan, mpmc_threads_and_goroutines, .timeout = 60) {
    tc_mpmc(0, 4, 4, 5000, 2);
    tc_mpmc(8, 4, 4, 5000, 2);
}
GORO_TEST(chan, mpmc_cap1, .timeout = 60) { tc_mpmc(1, 3, 3, 20000, 1); }

/* ------------------------------------------------------------- elem_size 0 */

static void tc_zero_sender(void *arg) {
    goro_chan *c = arg;
    for (int i = 0; i < 1000; i++)
        goro_chan_send(c, NULL);
    goro_chan_close(c);
}

GORO_TEST(chan, elem_size_zero, .timeout = 10) {
    int start = goro_count();
    for (size_t cap = 0; cap <= 8; cap += 8) {
        goro_chan *c = goro_chan_make(0, cap);
        cr_assert_not_null(c);
        goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_zero_sender, c);
        unsigned char guard[16];
        memset(guard, 0xAB, sizeof guard);
        int n = 0;
        while (goro_chan_recv(c, guard))
            n++;
        cr_assert_eq(n, 1000);
        for (size_t i = 0; i < sizeof guard; i++)
            cr_assert_eq(guard[i], 0xAB, "elem_size 0 channel wrote to elem");
        goro_chan_release(c);
    }
    /* buffered struct{}: len counts */
    goro_chan *c = goro_chan_make(0, 3);
    unsigned char g2 = 0xCD;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(goro_chan_try_send(c, &g2), 0);
    cr_assert_eq(goro_chan_try_send(c, NULL), GORO_EAGAIN);
    cr_assert_eq(goro_chan_len(c), 3);
    bool ok = false;
    cr_assert_eq(goro_chan_try_recv(c, &g2, &ok), 0);
    cr_assert(ok);
    cr_assert_eq(g2, 0xCD);
    goro_chan_close(c);
    cr_assert(goro_chan_recv(c, &g2));
    cr_assert(goro_chan_recv(c, &g2));
    cr_assert_not(goro_chan_recv(c, &g2));
    cr_assert_eq(g2, 0xCD);
    goro_chan_release(c);
    goro_test_await_count(start);
}

/* Big elements go through memcpy; check they arrive intact. */
typedef struct tc_big {
    int64_t seq;
    char pad[200];
    int64_t check;
} tc_big;

static void tc_big_sender(void *arg) {
    goro_chan *c = arg;
    for (int64_t i = 0; i < 2000; i++) {
        tc_big b;
        b.seq = i;
        memset(b.pad, (int)(i & 0x7f), sizeof b.pad);
        b.check = i * 31;
        goro_chan_send(c, &b);
    }
    goro_chan_close(c);
}

GORO_TEST(chan, large_elements, .timeout = 20) {
    int start = goro_count();
    goro_maxprocs(2);
    for (size_t cap = 0; cap <= 3; cap += 3) {
        goro_chan *c = goro_chan_make(sizeof(tc_big), cap);
        goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_big_sender, c);
        tc_big b;
        int64_t want = 0;
        while (goro_chan_recv(c, &b)) {
            cr_assert_eq(b.seq, want);
            cr_assert_eq(b.check, want * 31);
            cr_assert_eq(b.pad[0], (char)(want & 0x7f));
            cr_assert_eq(b.pad[199], (char)(want & 0x7f));
            want++;
        }
        cr_assert_eq(want, 2000);
        goro_chan_release(c);
    }
    goro_test_await_count(start);
}

/* ---------------------------------------------------------- reference counts */

static void tc_hold_waiter(void *arg) {
    goro_chan *c = arg;
    int v;
    goro_chan_recv(c, &v);
}

GORO_TEST(chan, refcount_holds_and_waiters, .timeout = 10) {
    int start = goro_count();
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro__chan_info info;
    goro__g *holders[4];
    goro__chan_refinfo(c, &info, holders, 4);
    cr_assert_eq(info.refs, 1);
    cr_assert_eq(info.held, 0);
    cr_assert_eq(goro_chan_retain(c), c);
    goro__chan_refinfo(c, &info, holders, 4);
    cr_assert_eq(info.refs, 2);
    goro_chan_release(c);

    uint64_t id =
        goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, tc_hold_waiter, c);
    size_t nh = goro__chan_refinfo(c, &info, holders, 4);
    cr_assert_eq(info.refs, 2);
    cr_assert_eq(info.held, 1);
    cr_assert_eq(nh, 1);
    cr_assert_eq(holders[0]->id, id);

    /* parked in recv: its record pins the channel and names it */
    goro__g *g = goro_test_await_parked_pinned(id, GORO__WAIT_CHAN_RECV);
    goro_chan *wc[4];
    cr_assert_eq(goro__g_wait_chans(g, wc, 4), 1);
    cr_assert_eq(wc[0], c);
    cr_assert_eq(g->waitobj, c);
    goro__g_scan_end(g);
    goro__chan_refinfo(c, &info, holders, 4);
    cr_assert_eq(info.waiters, 1);

    int v = 3;
    goro_chan_send(c, &v);
    goro_test_await_count(start);
    goro__chan_refinfo(c, &info, holders, 4);
    cr_assert_eq(info.refs, 1);
    cr_assert_eq(info.held, 0);
    cr_assert_eq(info.waiters, 0);
    int64_t live0 = goro__chan_live();
    goro_chan_release(c); /* freed here */
    cr_assert_eq(goro__chan_live(), live0 - 1);
}

static _Atomic int tc_timed_waiter_result;
static void tc_timed_waiter(void *arg) {
    goro_chan *c = arg;
    int v;
    /* the channel's last reference is released while we wait */
    atomic_store(&tc_timed_waiter_result, goro_chan_recv_timeout(c, &v, NULL, GORO_MS(50)));
}

GORO_TEST(chan, waiter_keeps_released_channel_alive, .timeout = 10) {
    int start = goro_count();
    int64_t live0 = goro__chan_live();
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(tc_timed_waiter, c);
    goro_test_await_parked(id, GORO__WAIT_SELECT); /* a timed op shows as select */
    goro_chan_release(c); /* refs 0, one pin: not freed until the waiter leaves */
    cr_assert_eq(goro__chan_live(), live0 + 1);
    goro_test_await_count(start);
    cr_assert_eq(goro__chan_live(), live0);
    cr_assert_eq(atomic_load(&tc_timed_waiter_result), GORO_ETIMEDOUT);
}

/* -------------------------------------------------------- plain threads */

static void *tc_thread_pingpong(void *arg) {
    goro_chan **cc = arg;
    int64_t v;
    while (goro_chan_recv(cc[0], &v)) {
        v++;
        goro_chan_send(cc[1], &v);
    }
    return NULL;
}

static void tc_go_pingpong(void *arg) { tc_thread_pingpong(arg); }

GORO_TEST(chan, pingpong_threads_and_goroutines, .timeout = 30) {
    int start = goro_count();
    goro_maxprocs(2);
    for (int mode = 0; mode < 2; mode++) {
        goro_chan *cc[2] = {goro_chan_make(sizeof(int64_t), 0), goro_chan_make(sizeof(int64_t), 0)};
        pthread_t th;
        if (mode == 0)
            pthread_create(&th, NULL, tc_thread_pingpong, cc); /* main thread <-> plain thread */
        else
            goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){cc[0], cc[1], NULL}},
                         tc_go_pingpong, cc); /* main thread <-> goroutine */
        int64_t v = 0;
        for (int i = 0; i < 20000; i++) {
            goro_chan_send(cc[0], &v);
            cr_assert(goro_chan_recv(cc[1], &v));
        }
        cr_assert_eq(v, 20000);
        goro_chan_close(cc[0]);
        if (mode == 0)
            pthread_join(th, NULL);
        goro_test_await_count(start);
        goro_chan_release(cc[0]);
        goro_chan_release(cc[1]);
    }
}

/* ----------------------------------------------------- released channels */

/* Each scenario releases the only reference, then uses the channel once. */
static goro_chan *tc_released(size_t elem_size, size_t cap) {
    goro_chan *c = goro_chan_make(elem_size, cap);
    goro_chan_release(c);
    return c;
}
static void tc_scn_rel_send(void) {
    int v = 1;
    goro_chan_send(tc_released(sizeof v, 0), &v);
}
static void tc_scn_rel_recv(void) { goro_chan_recv(tc_released(sizeof(int), 1), NULL); }
static void tc_scn_rel_try_send(void) { goro_chan_try_send(tc_released(sizeof(int), 1), NULL); }
static void tc_scn_rel_try_recv(void) {
    goro_chan_try_recv(tc_released(sizeof(int), 1), NULL, NULL);
}
static void tc_scn_rel_send_timeout(void) {
    goro_chan_send_timeout(tc_released(0, 0), NULL, GORO_MS(5));
}
static void tc_scn_rel_recv_timeout(void) {
    goro_chan_recv_timeout(tc_released(0, 0), NULL, NULL, GORO_MS(5));
}
static void tc_scn_rel_close(void) { goro_chan_close(tc_released(0, 0)); }
static void tc_scn_rel_len(void) { goro_chan_len(tc_released(sizeof(int), 4)); }
static void tc_scn_rel_cap(void) { goro_chan_cap(tc_released(sizeof(int), 4)); }
static void tc_scn_rel_retain(void) { goro_chan_retain(tc_released(0, 0)); }
static void tc_scn_rel_release(void) { goro_chan_release(tc_released(0, 0)); }
static void tc_scn_rel_select(void) {
    goro_case cs[] = {{.chan = tc_released(0, 0), .dir = GORO_RECV}};
    goro_select(cs, 1, 0);
}
static void tc_scn_rel_holds(void) {
    goro_chan *c = tc_released(0, 0);
    goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c, NULL}}, (goro_fn)goro_yield, NULL);
}

GORO_TEST(chan, every_operation_on_a_released_channel_panics, .timeout = 60) {
    static void (*const scn[])(void) = {
        tc_scn_rel_send,         tc_scn_rel_recv,         tc_scn_rel_try_send, tc_scn_rel_try_recv,
        tc_scn_rel_send_timeout, tc_scn_rel_recv_timeout, tc_scn_rel_close,    tc_scn_rel_len,
        tc_scn_rel_cap,          tc_scn_rel_retain,       tc_scn_rel_release,  tc_scn_rel_select,
        tc_scn_rel_holds,
    };
    for (size_t i = 0; i < sizeof scn / sizeof scn[0]; i++)
        tc_expect_panic(scn[i], "use of released channel");
}

/* The classic mistake: goroutines started without .holds, the only
   reference released while they are still on their way to the channel.
   They arrive 20 ms, 1 s and 2 s later: the first one's panic ends the
   process (two panics at the same instant on two threads would interleave
   their output). */
typedef struct tc_late {
    goro_chan *c;
    int64_t delay;
} tc_late;
static void tc_late_sender(void *arg) {
    tc_late *l = arg;
    goro_sleep(l->delay);
    int v = 1;
    goro_chan_send(l->c, &v);
}
static void tc_scn_late_senders(void) {
    static tc_late late[3];
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3; i++) {
        late[i] = (tc_late){c, i == 0 ? GORO_MS(20) : GORO_SEC(i)};
        goro_go(tc_late_sender, &late[i]);
    }
    goro_chan_release(c);
    goro_sleep(GORO_SEC(5));
    _exit(0);
}

GORO_TEST(chan, late_sender_on_released_channel_panics_with_its_trace, .timeout = 30) {
    const char *out = tc_expect_panic(tc_scn_late_senders, "use of released channel\n\ngoroutine ");
    cr_assert(strstr(out, "tc_late_sender(") != NULL, "no sender frame:\n%s", out);
    cr_assert(strstr(out, "created by tc_scn_late_senders") != NULL, "%s", out);
}

/* Senders that parked before the last release keep the channel allocated
   (their records pin it): they are in `chan send`, not running, and the
   leak profile counts them, since nobody holds a reference any more. */
static void tc_parked_sender(void *arg) {
    int v = 1;
    goro_chan_send(arg, &v);
}

GORO_TEST_UNCHECKED(chan, parked_senders_on_released_channel_are_leaked,
                    "its senders stay blocked forever on purpose", .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = goro_go(tc_parked_sender, c);
    for (int i = 0; i < 3; i++)
        goro_test_await_parked(ids[i], GORO__WAIT_CHAN_SEND);
    goro_chan_release(c);

    static char buf[1 << 16];
    size_t n = goro_stack(buf, sizeof buf - 1, true);
    buf[n < sizeof buf ? n : sizeof buf - 1] = 0;
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "goroutine %llu [chan send]:", (unsigned long long)ids[i]);
        cr_assert(strstr(buf, want) != NULL, "no \"%s\" in:\n%s", want, buf);
    }
    char *prof = NULL;
    size_t plen = 0;
    FILE *f = open_memstream(&prof, &plen);
    cr_assert_eq(goro_leak_profile_write(f, 1), 3);
    fclose(f);
    cr_assert(strstr(prof, "goroutineleak profile: total 3\n") != NULL, "%s", prof);
    free(prof);
}

/* GORODEBUG=chanrelease=1: no released channel's memory is ever reused, so
   a use long after the release (hundreds of channels later, past the
   default quarantine) is still caught. */
static void tc_scn_late_use_debug_mode(void) {
    goro_chan *c = tc_released(sizeof(int), 0);
    for (int i = 0; i < 1000; i++)
        goro_chan_release(goro_chan_make(sizeof(int), 8));
    goro_chan_close(c);
}

GORO_TEST(chan, chanrelease_mode_catches_a_late_use, .timeout = 30) {
    goro_test_skip_threaded_fork();
    static char out[1 << 16];
    goro_test_child_opts o = {.env_name = "GORODEBUG", .env_value = "chanrelease=1"};
    int st = goro_test_run_child_opts(&o, tc_scn_late_use_debug_mode, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x; stderr:\n%s", st, out);
    cr_assert(strstr(out, "panic: use of released channel") != NULL, "%s", out);
}

/* A send with elem == NULL sends the zero value (documented in goro.h). */
GORO_TEST(chan, send_null_sends_the_zero_value, .timeout = 10) {
    goro_chan *c = goro_chan_make(sizeof(int64_t), 2);
    int64_t v = 7;
    goro_chan_send(c, NULL);
    goro_case cs[] = {{.chan = c, .dir = GORO_SEND, .elem = NULL}};
    cr_assert_eq(goro_select(cs, 1, 0), 0);
    cr_assert(goro_chan_recv(c, &v));
    cr_assert_eq(v, 0);
    v = 7;
    cr_assert(goro_chan_recv(c, &v));
    cr_assert_eq(v, 0);
    goro_chan_release(c);
}
