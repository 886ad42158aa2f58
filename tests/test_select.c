/*
 * test_select.c - goro_select: Go's select tests (src/runtime/chan_test.go,
 * test/chan/select*.go) in spirit.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
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

/* ------------------------------------------------------------ fairness */

GORO_TEST(select, fairness_two_ready_cases, .timeout = 30) {
    goro_chan *a = goro_chan_make(sizeof(int), 1), *b = goro_chan_make(sizeof(int), 1);
    int one = 1, two = 2;
    goro_chan_send(a, &one);
    goro_chan_send(b, &two);
    const int trials = 100000;
    int cnt[2] = {0, 0};
    for (int i = 0; i < trials; i++) {
        int va = 0, vb = 0;
        goro_case cs[2] = {{a, GORO_RECV, &va, false}, {b, GORO_RECV, &vb, false}};
        int k = goro_select(cs, 2, GORO_FOREVER);
        cr_assert(k == 0 || k == 1);
        cr_assert(cs[k].ok);
        cnt[k]++;
        if (k == 0) {
            cr_assert_eq(va, 1);
            goro_chan_send(a, &one);
        } else {
            cr_assert_eq(vb, 2);
            goro_chan_send(b, &two);
        }
    }
    double r = (double)cnt[0] / trials;
    cr_assert(fabs(r - 0.5) <= 0.05, "case 0 chosen %d times, case 1 %d times", cnt[0], cnt[1]);
    /* Go's confidence bound at six nines: 4.891676 / (2 * sqrt(trials)) */
    cr_assert(fabs(r - 0.5) <= 4.891676 / (2 * sqrt((double)trials)), "unfair: %f", r);
    goro_chan_release(a);
    goro_chan_release(b);
}

GORO_TEST(select, fairness_mixed_send_recv_and_nil, .timeout = 30) {
    /* one ready receive, one ready send, one NULL case, one never-ready case */
    goro_chan *a = goro_chan_make(sizeof(int), 1), *b = goro_chan_make(sizeof(int), 1);
    goro_chan *never = goro_chan_make(sizeof(int), 0);
    int x = 5;
    goro_chan_send(a, &x);
    const int trials = 60000;
    int cnt[4] = {0};
    for (int i = 0; i < trials; i++) {
        int v = 0, s = 9, w = 0;
        goro_case cs[4] = {{a, GORO_RECV, &v, false},
                           {NULL, GORO_RECV, &w, false},
                           {b, GORO_SEND, &s, false},
                           {never, GORO_RECV, &w, false}};
        int k = goro_select(cs, 4, 0);
        cr_assert(k == 0 || k == 2, "chose case %d", k);
        cnt[k]++;
        if (k == 0)
            goro_chan_send(a, &x);
        else {
            cr_assert_eq(goro_chan_try_recv(b, &v, NULL), 0);
            cr_assert_eq(v, 9);
        }
    }
    double r = (double)cnt[0] / trials;
    cr_assert(fabs(r - 0.5) <= 0.05, "%d vs %d", cnt[0], cnt[2]);
    goro_chan_release(a);
    goro_chan_release(b);
    goro_chan_release(never);
}

/* Go's TestPseudoRandomSend */
typedef struct ts_prs {
    goro_chan *c, *done;
    int *l;
    int n;
} ts_prs;

static void ts_prs_reader(void *arg) {
    ts_prs *p = arg;
    for (int i = 0; i < p->n; i++) {
        goro_yield();
        goro_chan_recv(p->c, &p->l[i]);
    }
    goro_chan_send(p->done, NULL);
}

GORO_TEST(select, pseudo_random_send, .timeout = 20) {
    int start = goro_count();
    const int n = 100;
    for (size_t cap = 0; cap <= (size_t)n; cap += (size_t)n) {
        int l[100];
        ts_prs p = {goro_chan_make(sizeof(int), cap), goro_chan_make(0, 0), l, n};
        goro_go(ts_prs_reader, &p);
        for (int i = 0; i < n; i++) {
            int one = 1, zero = 0;
            goro_case cs[2] = {{p.c, GORO_SEND, &one, false}, {p.c, GORO_SEND, &zero, false}};
            cr_assert_geq(goro_select(cs, 2, GORO_FOREVER), 0);
        }
        goro_chan_recv(p.done, NULL);
        int n0 = 0, n1 = 0;
        for (int i = 0; i < n; i++) {
            n0 += (l[i] + 1) % 2;
            n1 += l[i];
        }
        cr_assert(n0 > n / 10 && n1 > n / 10,
                  "want pseudorandom, got %d zeros and %d ones (cap %zu)", n0, n1, cap);
        goro_chan_release(p.c);
        goro_chan_release(p.done);
    }
    goro_test_await_count(start);
}

/* ------------------------------------------------- duplicates, self-select */

typedef struct ts_dup {
    goro_chan *c, *d, *e;
} ts_dup;

static void ts_dup_a(void *arg) {
    ts_dup *t = arg;
    int v;
    goro_case cs[3] = {
        {t->c, GORO_RECV, &v, false}, {t->c, GORO_RECV, &v, false}, {t->d, GORO_RECV, &v, false}};
    goro_select(cs, 3, GORO_FOREVER);
    int nine = 9;
    goro_chan_send(t->e, &nine);
}

static void ts_dup_b(void *arg) {
    ts_dup *t = arg;
    int v;
    goro_chan_recv(t->c, &v);
}

/* Go's TestSelectDuplicateChannel: a goroutine queued on the same channel
   twice leaves the queue intact when another case wins. */
GORO_TEST(select, duplicate_channel, .timeout = 10) {
    int start = goro_count();
    ts_dup t = {goro_chan_make(sizeof(int), 0), goro_chan_make(sizeof(int), 0),
                goro_chan_make(sizeof(int), 0)};
    uint64_t a = goro_go(ts_dup_a, &t);
    goro__g *g =
        goro_test_await_parked_pinned(a, GORO__WAIT_SELECT); /* A is queued first on c, twice */
    goro_chan *wc[4];
    cr_assert_eq(goro__g_wait_chans(g, wc, 4), 2, "c (twice) and d: two distinct channels");
    cr_assert((wc[0] == t.c && wc[1] == t.d) || (wc[0] == t.d && wc[1] == t.c));
    cr_assert_null(g->waitobj);
    goro__g_scan_end(g);
    uint64_t b = goro_go(ts_dup_b, &t);
    goro_test_await_parked(b, GORO__WAIT_CHAN_RECV);
    int seven = 7, v = 0;
    goro_chan_send(t.d, &seven); /* wakes A, which dequeues itself from c */
    goro_chan_recv(t.e, &v);
    cr_assert_eq(v, 9);
    int eight = 8;
    goro_chan_send(t.c, &eight); /* must wake B, not a stale record of A */
    goro_test_await_count(start);
    goro__chan_info info;
    goro__chan_refinfo(t.c, &info, NULL, 0);
    cr_assert_eq(info.waiters, 0);
    cr_assert_null(t.c->recvq.first);
    goro_chan_release(t.c);
    goro_chan_release(t.d);
    goro_chan_release(t.e);
}

GORO_TEST(select, same_channel_send_and_recv_buffered, .timeout = 10) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    int s = 4, r = 0;
    goro_case cs[2] = {{c, GORO_SEND, &s, false}, {c, GORO_RECV, &r, false}};
    cr_assert_eq(goro_select(cs, 2, GORO_FOREVER), 0); /* empty: only the send can run */
    cr_assert_eq(goro_select(cs, 2, GORO_FOREVER), 1); /* full: only the receive */
    cr_assert_eq(r, 4);
    cr_assert(cs[1].ok);
    goro_chan_release(c);
}

typedef struct ts_self {
    goro_chan *c, *done;
    int p;
    size_t cap;
    _Atomic int *self_recv;
} ts_self;

static void ts_self_worker(void *arg) {
    ts_self *t = arg;
    for (int i = 0; i < 1000; i++) {
        int s = t->p, v = -1;
        goro_case cs[2];
        if (t->p == 0 || i % 2 == 0) {
            cs[0] = (goro_case){t->c, GORO_SEND, &s, false};
            cs[1] = (goro_case){t->c, GORO_RECV, &v, false};
        } else {
            cs[0] = (goro_case){t->c, GORO_RECV, &v, false};
            cs[1] = (goro_case){t->c, GORO_SEND, &s, false};
        }
        int k = goro_select(cs, 2, GORO_FOREVER);
        if (cs[k].dir == GORO_RECV && t->cap == 0 && v == t->p) {
            atomic_fetch_add(t->self_recv, 1);
            break;
        }
    }
    goro_chan_send(t->done, NULL);
}

/* Go's TestSelfSelect: send and receive on one channel in one select never
   deadlocks and (unbuffered) never meets itself. */
GORO_TEST(select, self_select, .timeout = 30) {
    int start = goro_count();
    goro_maxprocs(2);
    _Atomic int self_recv = 0;
    for (size_t cap = 0; cap <= 10; cap += 10) {
        goro_chan *c = goro_chan_make(sizeof(int), cap), *done = goro_chan_make(0, 2);
        ts_self t[2];
        for (int p = 0; p < 2; p++) {
            t[p] = (ts_self){c, done, p, cap, &self_recv};
            goro_go(ts_self_worker, &t[p]);
        }
        goro_chan_recv(done, NULL);
        goro_chan_recv(done, NULL);
        goro_chan_release(c);
        goro_chan_release(done);
    }
    cr_assert_eq(atomic_load(&self_recv), 0, "a select received its own send");
    /* alone, it can only time out */
    goro_chan *u = goro_chan_make(sizeof(int), 0);
    int s = 1, r = 0;
    goro_case cs[2] = {{u, GORO_SEND, &s, false}, {u, GORO_RECV, &r, false}};
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_select(cs, 2, GORO_MS(20)), -1);
    cr_assert_geq(goro_nanotime() - t0, GORO_MS(20));
    cr_assert_eq(r, 0);
    cr_assert_null(u->sendq.first);
    cr_assert_null(u->recvq.first);
    goro_chan_release(u);
    goro_test_await_count(start);
}

/* --------------------------------------------------- default and timeouts */

GORO_TEST(select, default_and_empty, .timeout = 10) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    int v = 0;
    goro_case cs[1] = {{c, GORO_RECV, &v, true}};
    cr_assert_eq(goro_select(cs, 1, 0), -1);
    cr_assert(cs[0].ok, "ok of a case that did not run is untouched");
    int x = 3;
    goro_chan_send(c, &x);
    cr_assert_eq(goro_select(cs, 1, 0), 0);
    cr_assert_eq(v, 3);
    cr_assert(cs[0].ok);
    /* no cases */
    cr_assert_eq(goro_select(NULL, 0, 0), -1);
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_select(NULL, 0, GORO_MS(20)), -1);
    cr_assert_geq(goro_nanotime() - t0, GORO_MS(20));
    /* only NULL channels */
    goro_case nc[2] = {{NULL, GORO_RECV, &v, false}, {NULL, GORO_SEND, &x, false}};
    cr_assert_eq(goro_select(nc, 2, 0), -1);
    t0 = goro_nanotime();
    cr_assert_eq(goro_select(nc, 2, GORO_MS(20)), -1);
    cr_assert_geq(goro_nanotime() - t0, GORO_MS(20));
    goro_chan_release(c);
}

GORO_TEST(select, timeout_on_time, .timeout = 10) {
    goro_chan *a = goro_chan_make(sizeof(int), 0), *b = goro_chan_make(sizeof(int), 1);
    int x = 1, v;
    goro_chan_send(b, &x); /* b full: a send on it blocks */
    int64_t durs[] = {GORO_US(100), GORO_MS(10), GORO_MS(50)};
    for (int i = 0; i < 3; i++) {
        goro_case cs[3] = {
            {a, GORO_RECV, &v, false}, {b, GORO_SEND, &x, false}, {a, GORO_SEND, &x, false}};
        int64_t t0 = goro_nanotime();
        cr_assert_eq(goro_select(cs, 3, durs[i]), -1);
        int64_t el = goro_nanotime() - t0;
        cr_assert_geq(el, durs[i], "returned early");
        cr_assert_lt(el, durs[i] + GORO_MS(300), "late: %lld ns", (long long)el);
    }
    goro__chan_info info;
    goro__chan_refinfo(a, &info, NULL, 0);
    cr_assert_eq(info.waiters, 0);
    cr_assert_null(a->recvq.first);
    cr_assert_null(a->sendq.first);
    cr_assert_null(b->sendq.first);
    cr_assert_eq(goro_chan_len(b), 1);
    goro_chan_release(a);
    goro_chan_release(b);
}

typedef struct ts_race {
    goro_chan *a, *b;
    int64_t n, sent_sum, sent_n;
} ts_race;

static void ts_race_sender(void *arg) {
    ts_race *r = arg;
    for (int64_t i = 1; i <= r->n; i++) {
        goro_case cs[2] = {{r->a, GORO_SEND, &i, false}, {r->b, GORO_SEND, &i, false}};
        if (goro_select(cs, 2, (int64_t)(goro__fastrand() % 30000)) >= 0) {
            r->sent_sum += i;
            r->sent_n++;
        }
    }
    int64_t end = -1;
    goro_chan_send(r->a, &end);
}

static void *ts_race_sender_thread(void *arg) {
    ts_race_sender(arg);
    return NULL;
}

/* A select that times out never loses a value that arrived at the same
   moment: what senders saw delivered is exactly what was received. */
static void ts_timeout_race(size_t cap, bool thread) {
    int start = goro_count();
    goro_maxprocs(2);
    ts_race r = {goro_chan_make(sizeof(int64_t), cap), goro_chan_make(sizeof(int64_t), cap), 20000,
                 0, 0};
    pthread_t th;
    if (thread)
        pthread_create(&th, NULL, ts_race_sender_thread, &r);
    else
        goro_go(ts_race_sender, &r);
    int64_t got_sum = 0, got_n = 0;
    for (;;) {
        int64_t va = 0, vb = 0;
        goro_case cs[2] = {{r.a, GORO_RECV, &va, false}, {r.b, GORO_RECV, &vb, false}};
        int k = goro_select(cs, 2, (int64_t)(goro__fastrand() % 30000));
        if (k < 0)
            continue;
        int64_t v = k == 0 ? va : vb;
        cr_assert(cs[k].ok);
        if (v == -1)
            break;
        got_sum += v;
        got_n++;
    }
    if (thread)
        pthread_join(th, NULL);
    /* a value sent on b right before the end marker may still be buffered */
    int64_t v;
    while (goro_chan_try_recv(r.b, &v, NULL) == 0) {
        got_sum += v;
        got_n++;
    }
    goro_test_await_count(start);
    cr_assert_eq(got_n, r.sent_n, "received %lld, senders saw %lld delivered", (long long)got_n,
                 (long long)r.sent_n);
    cr_assert_eq(got_sum, r.sent_sum);
    goro_chan_release(r.a);
    goro_chan_release(r.b);
}

GORO_TEST(select, timeouts_lose_no_value, .timeout = 60) {
    ts_timeout_race(0, false);
    ts_timeout_race(0, true);
}

/* ------------------------------------------------------------------ close */

typedef struct ts_closewait {
    goro_chan *c, *other, *done;
} ts_closewait;

static void ts_select_recv_closed(void *arg) {
    ts_closewait *t = arg;
    int64_t v = 0x777, w = 0x777;
    goro_case cs[2] = {{t->other, GORO_RECV, &w, true}, {t->c, GORO_RECV, &v, true}};
    int k = goro_select(cs, 2, GORO_FOREVER);
    int64_t res = (k == 1 && !cs[1].ok && v == 0 && w == 0x777 && cs[0].ok) ? 1 : 0;
    goro_chan_send(t->done, &res);
}

GORO_TEST(select, close_wakes_blocked_selects, .timeout = 10) {
    int start = goro_count();
    goro_maxprocs(2);
    ts_closewait t = {goro_chan_make(sizeof(int64_t), 0), goro_chan_make(sizeof(int64_t), 0),
                      goro_chan_make(sizeof(int64_t), 0)};
    const int N = 20;
    for (int i = 0; i < N; i++)
        goro_go(ts_select_recv_closed, &t);
    goro__chan_info info;
    goro_test_wait_until((goro__chan_refinfo(t.c, &info, NULL, 0), info.waiters == (uint32_t)N),
                         GORO_SEC(5));
    cr_assert_eq(info.waiters, (uint32_t)N);
    goro_chan_close(t.c);
    for (int i = 0; i < N; i++) {
        int64_t r = 0;
        goro_chan_recv(t.done, &r);
        cr_assert_eq(r, 1, "select woken by close: wrong case, ok or element");
    }
    /* a closed channel is always ready in a select */
    int64_t v = 5;
    goro_case cs[1] = {{t.c, GORO_RECV, &v, true}};
    cr_assert_eq(goro_select(cs, 1, 0), 0);
    cr_assert_not(cs[0].ok);
    cr_assert_eq(v, 0);
    goro_test_await_count(start);
    goro__chan_refinfo(t.other, &info, NULL, 0);
    cr_assert_eq(info.waiters, 0);
    goro_chan_release(t.c);
    goro_chan_release(t.other);
    goro_chan_release(t.done);
}

static void ts_scn_select_send_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 5);
    goro_chan_close(c);
    int v = 1;
    goro_case cs[1] = {{c, GORO_SEND, &v, false}};
    goro_select(cs, 1, 0);
}

static void ts_blocked_select_sender(void *arg) {
    int v = 1, w;
    goro_chan *never = goro_chan_make(sizeof(int), 0);
    goro_case cs[2] = {{arg, GORO_SEND, &v, false}, {never, GORO_RECV, &w, false}};
    goro_select(cs, 2, GORO_FOREVER);
}

static void ts_scn_blocked_select_send_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_test_await_parked(goro_go(ts_blocked_select_sender, c), GORO__WAIT_SELECT);
    goro_chan_close(c);
    goro_sleep(GORO_SEC(5));
    _exit(0);
}

GORO_TEST(select, send_on_closed_panics, .timeout = 20) {
    static char out[1 << 16];
    void (*scn[2])(void) = {ts_scn_select_send_closed, ts_scn_blocked_select_send_closed};
    for (int i = 0; i < 2; i++) {
        int st = goro_test_run_child_threaded(scn[i], out, sizeof out);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "scenario %d: status %#x\n%s", i, st, out);
        cr_assert(strstr(out, "panic: send on closed channel") != NULL, "scenario %d:\n%s", i, out);
    }
}

GORO_TEST(select, send_on_closed_exit_code, .exit_code = 2, .timeout = 10) {
    ts_scn_select_send_closed();
}

static void ts_empty_forever(void *arg) {
    (void)arg;
    goro_select(NULL, 0, GORO_FOREVER);
    abort();
}

static void ts_nil_forever(void *arg) {
    (void)arg;
    int v;
    goro_case cs[1] = {{NULL, GORO_RECV, &v, false}};
    goro_select(cs, 1, GORO_FOREVER);
    abort();
}

static void ts_scn_forever(void) {
    uint64_t a = goro_go(ts_empty_forever, NULL);
    uint64_t b = goro_go(ts_nil_forever, NULL);
    goro__g *g = goro_test_await_parked_pinned(a, GORO__WAIT_SELECT_NO_CASES);
    goro_chan *wc[2];
    if (goro__g_wait_chans(g, wc, 2) != 0)
        _exit(3);
    goro__g_scan_end(g);
    g = goro_test_await_parked_pinned(b, GORO__WAIT_SELECT);
    if (goro__g_wait_chans(g, wc, 2) != 0)
        _exit(4);
    goro__g_scan_end(g);
    goro_sleep(GORO_MS(20));
    fprintf(stderr, "still blocked\n");
    _exit(0);
}

GORO_TEST(select, empty_select_blocks_forever, .timeout = 20) {
    static char out[4096];
    int st = goro_test_run_child_threaded(ts_scn_forever, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
    cr_assert(strstr(out, "still blocked") != NULL, "%s", out);
}

/* ------------------------------------------------------------- stress */

/* Go's TestSelectStress: 4 channels, senders and receivers that select over
   all four (each case disabled, as a nil channel, once its quota is done). */
typedef struct ts_stress {
    goro_chan *c[4];
    goro_chan *done;
    int64_t n;
    _Atomic int64_t recv_sum, recv_n;
} ts_stress;

static void ts_stress_sender(void *arg) {
    ts_stress *t = arg;
    int64_t left[4] = {t->n, t->n, t->n, t->n};
    int64_t vals[4];
    for (int64_t i = 0; i < 4 * t->n; i++) {
        goro_case cs[4];
        for (int k = 0; k < 4; k++) {
            vals[k] = k + 1;
            cs[k] = (goro_case){left[k] ? t->c[k] : NULL, GORO_SEND, &vals[k], false};
        }
        int k = goro_select(cs, 4, GORO_FOREVER);
        left[k]--;
    }
    goro_chan_send(t->done, NULL);
}

static void ts_stress_receiver(void *arg) {
    ts_stress *t = arg;
    int64_t left[4] = {t->n, t->n, t->n, t->n};
    int64_t sum = 0;
    for (int64_t i = 0; i < 4 * t->n; i++) {
        int64_t v[4] = {0};
        goro_case cs[4];
        for (int k = 0; k < 4; k++)
            cs[k] = (goro_case){left[k] ? t->c[k] : NULL, GORO_RECV, &v[k], false};
        int k = goro_select(cs, 4, GORO_FOREVER);
        left[k]--;
        sum += v[k];
        if (v[k] != k + 1)
            sum += 1000000; /* wrong channel's value */
    }
    atomic_fetch_add(&t->recv_sum, sum);
    atomic_fetch_add(&t->recv_n, 4 * t->n);
    goro_chan_send(t->done, NULL);
}

static void *ts_stress_receiver_thread(void *arg) {
    ts_stress_receiver(arg);
    return NULL;
}

GORO_TEST(select, stress_2p, .timeout = 60) {
    int start = goro_count();
    goro_maxprocs(2);
    size_t caps[] = {0, 10};
    for (int ci = 0; ci < 2; ci++) {
        ts_stress t = {.n = 5000};
        for (int k = 0; k < 4; k++)
            t.c[k] = goro_chan_make(sizeof(int64_t), caps[ci]);
        t.done = goro_chan_make(0, 8);
        /* 2 senders, 2 receivers (one a plain thread) */
        pthread_t th;
        goro_go(ts_stress_sender, &t);
        goro_go(ts_stress_sender, &t);
        goro_go(ts_stress_receiver, &t);
        pthread_create(&th, NULL, ts_stress_receiver_thread, &t);
        for (int i = 0; i < 4; i++)
            goro_chan_recv(t.done, NULL);
        pthread_join(th, NULL);
        cr_assert_eq(atomic_load(&t.recv_n), 2 * 4 * t.n);
        cr_assert_eq(atomic_load(&t.recv_sum), 2 * t.n * (1 + 2 + 3 + 4));
        for (int k = 0; k < 4; k++)
            goro_chan_release(t.c[k]);
        goro_chan_release(t.done);
    }
    goro_test_await_count(start);
}

/* More cases than fit on the stack, many repeated channels. */
typedef struct ts_many {
    goro_chan **cs;
    int n;
} ts_many;

static void ts_many_sender(void *arg) {
    ts_many *m = arg;
    for (int i = 0; i < m->n; i++) {
        int v = i;
        goro_chan_send(m->cs[(i * 7) % m->n], &v);
    }
}

GORO_TEST(select, many_cases, .timeout = 20) {
    int start = goro_count();
    enum { N = 40, NCASES = 100 };
    goro_chan *chans[N];
    for (int i = 0; i < N; i++)
        chans[i] = goro_chan_make(sizeof(int), i % 2);
    ts_many m = {chans, N};
    goro_go(ts_many_sender, &m);
    int seen[N] = {0};
    for (int r = 0; r < N; r++) {
        int vals[NCASES];
        goro_case cs[NCASES];
        for (int i = 0; i < NCASES; i++)
            cs[i] = (goro_case){i % 11 == 5 ? NULL : chans[i % N], GORO_RECV, &vals[i], false};
        int k = goro_select(cs, NCASES, GORO_SEC(5));
        cr_assert_geq(k, 0);
        cr_assert(cs[k].ok);
        cr_assert_eq(cs[k].chan, chans[(vals[k] * 7) % N]);
        seen[vals[k]]++;
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1);
    for (int i = 0; i < N; i++) {
        cr_assert_null(chans[i]->recvq.first);
        goro_chan_release(chans[i]);
    }
    goro_test_await_count(start);
}

/* Select from a plain thread while goroutines feed it, and vice versa. */
static void *ts_thread_selector(void *arg) {
    goro_chan **c = arg;
    int64_t sum = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t a = 0, b = 0;
        goro_case cs[2] = {{c[0], GORO_RECV, &a, false}, {c[1], GORO_RECV, &b, false}};
        int k = goro_select(cs, 2, GORO_FOREVER);
        sum += k == 0 ? a : b;
    }
    goro_chan_send(c[2], &sum);
    return NULL;
}

static void ts_feeder(void *arg) {
    goro_chan *c = arg;
    for (int64_t i = 1; i <= 10000; i++)
        goro_chan_send(c, &i);
}

GORO_TEST(select, plain_thread_selects, .timeout = 30) {
    int start = goro_count();
    goro_maxprocs(2);
    goro_chan *c[3] = {goro_chan_make(sizeof(int64_t), 0), goro_chan_make(sizeof(int64_t), 4),
                       goro_chan_make(sizeof(int64_t), 1)};
    pthread_t th;
    pthread_create(&th, NULL, ts_thread_selector, c);
    goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c[0], NULL}}, ts_feeder, c[0]);
    goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c[1], NULL}}, ts_feeder, c[1]);
    int64_t sum = 0;
    goro_chan_recv(c[2], &sum);
    pthread_join(th, NULL);
    cr_assert_eq(sum, 2 * (10000LL * 10001 / 2));
    for (int i = 0; i < 3; i++)
        goro_chan_release(c[i]);
    goro_test_await_count(start);
}

/* Unbuffered select ping-pong between two goroutines over two channels. */
static void ts_echo(void *arg) {
    goro_chan **c = arg;
    int64_t v;
    for (;;) {
        goro_case cs[2] = {{c[0], GORO_RECV, &v, false}, {c[2], GORO_RECV, NULL, false}};
        int k = goro_select(cs, 2, GORO_FOREVER);
        if (k == 1)
            return;
        v = -v;
        goro_case out[1] = {{c[1], GORO_SEND, &v, false}};
        goro_select(out, 1, GORO_FOREVER);
    }
}

GORO_TEST(select, unbuffered_select_pingpong, .timeout = 20) {
    int start = goro_count();
    goro_maxprocs(2);
    goro_chan *c[3] = {goro_chan_make(sizeof(int64_t), 0), goro_chan_make(sizeof(int64_t), 0),
                       goro_chan_make(0, 0)};
    /* it holds the channels: its last touches happen before they are freed */
    goro_go_opts(&(goro_opts){.holds = (goro_chan *const[]){c[0], c[1], c[2], NULL}}, ts_echo, c);
    for (int64_t i = 1; i <= 20000; i++) {
        goro_case cs[1] = {{c[0], GORO_SEND, &i, false}};
        cr_assert_eq(goro_select(cs, 1, GORO_FOREVER), 0);
        int64_t r = 0;
        goro_case rc[1] = {{c[1], GORO_RECV, &r, false}};
        cr_assert_eq(goro_select(rc, 1, GORO_FOREVER), 0);
        cr_assert_eq(r, -i);
    }
    goro_chan_close(c[2]);
    goro_test_await_count(start);
    for (int i = 0; i < 3; i++)
        goro_chan_release(c[i]);
}

/* Channels released while a select waits on them stay alive until the
   select leaves them, then are freed (ASan checks both halves). */
static _Atomic int ts_released_result = -2;
static void ts_select_on_released(void *arg) {
    goro_chan **c = arg;
    int v = 0;
    goro_case cs[3] = {
        {c[0], GORO_RECV, &v, false}, {c[1], GORO_SEND, &v, false}, {c[0], GORO_RECV, &v, false}};
    atomic_store(&ts_released_result, goro_select(cs, 3, GORO_MS(50)));
}

GORO_TEST(select, waiter_keeps_released_channels_alive, .timeout = 10) {
    int start = goro_count();
    int64_t live0 = goro__chan_live();
    goro_chan *c[2] = {goro_chan_make(sizeof(int), 0), goro_chan_make(sizeof(int), 0)};
    cr_assert_eq(goro__chan_live(), live0 + 2);
    uint64_t id = goro_go(ts_select_on_released, c);
    goro__g *g = goro_test_await_parked_pinned(id, GORO__WAIT_SELECT);
    goro_chan *wc[4];
    cr_assert_eq(goro__g_wait_chans(g, wc, 4), 2);
    goro__g_scan_end(g);
    goro__chan_info info;
    goro__chan_refinfo(c[0], &info, NULL, 0);
    cr_assert_eq(info.waiters, 2);
    cr_assert_eq(info.refs, 1);
    goro_chan_release(c[0]); /* refs 0, pinned: freed by the select's last pass */
    goro_chan_release(c[1]);
    cr_assert_eq(goro__chan_live(), live0 + 2, "freed while a select still waits on it");
    goro_test_await_count(start);
    cr_assert_eq(atomic_load(&ts_released_result), -1);
    cr_assert_eq(goro__chan_live(), live0, "not freed after the select left");
}
