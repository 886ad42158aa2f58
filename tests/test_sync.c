/*
 * test_sync.c - goro_mutex, rwmutex, waitgroup, once, cond and sem, in the
 * spirit of Go's src/sync/..._test.go and x/sync/semaphore's tests: stress
 * with invariants across 2 Ps, goroutines mixed with plain threads, Go's
 * fairness properties (mutex starvation mode, writers not starved, FIFO
 * semaphore, no spurious cond wake-ups) and the misuse panics.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* ================================================================= mutex */

typedef struct {
    goro_mutex mu;
    long counter; /* protected by mu, deliberately not atomic */
    _Atomic int holders;
    _Atomic int violations;
    int iters;
    goro_waitgroup wg;
} mstress;

static void mstress_body(mstress *s) {
    for (int i = 0; i < s->iters; i++) {
        goro_mutex_lock(&s->mu);
        if (atomic_fetch_add(&s->holders, 1) != 0)
            atomic_fetch_add(&s->violations, 1);
        s->counter++;
        atomic_fetch_sub(&s->holders, 1);
        goro_mutex_unlock(&s->mu);
        if (i % 256 == 0)
            goro_yield();
    }
    goro_waitgroup_done(&s->wg);
}
static void mstress_g(void *a) { mstress_body(a); }
static void *mstress_t(void *a) {
    mstress_body(a);
    return NULL;
}

GORO_TEST(sync, mutex_stress_goroutines_and_threads, .timeout = 60) {
    goro_maxprocs(2);
    int start = goro_count();
    static mstress s;
    memset(&s, 0, sizeof s);
    s.iters = 20000;
    enum { G = 6, T = 2 };
    goro_waitgroup_add(&s.wg, G + T);
    for (int i = 0; i < G; i++)
        cr_assert_neq(goro_go(mstress_g, &s), 0);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, mstress_t, &s), 0);
    goro_waitgroup_wait(&s.wg);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&s.violations), 0, "two holders at once");
    cr_assert_eq(s.counter, (long)(G + T) * s.iters, "lost increments: %ld", s.counter);
    goro_test_await_count(start);
}

GORO_TEST(sync, mutex_trylock, .timeout = 10) {
    goro_mutex m = {0};
    cr_assert(goro_mutex_trylock(&m));
    cr_assert_not(goro_mutex_trylock(&m));
    goro_mutex_unlock(&m);
    goro_mutex_lock(&m);
    cr_assert_not(goro_mutex_trylock(&m));
    goro_mutex_unlock(&m);
    cr_assert(goro_mutex_trylock(&m));
    goro_mutex_unlock(&m);
}

typedef struct {
    goro_mutex *m;
    _Atomic int state; /* 0 start, 1 trying, 2 got it */
} mtry;
static void mutex_try_holder(void *a) {
    mtry *t = a;
    atomic_store(&t->state, 1);
    goro_mutex_lock(t->m);
    atomic_store(&t->state, 2);
    goro_mutex_unlock(t->m);
}
static bool mtry_got(void *a) { return atomic_load(&((mtry *)a)->state) == 2; }

GORO_TEST(sync, mutex_blocks_then_wakes, .timeout = 10) {
    goro_maxprocs(2);
    int start = goro_count();
    goro_mutex m = {0};
    mtry t = {.m = &m};
    goro_mutex_lock(&m);
    uint64_t id = goro_go(mutex_try_holder, &t);
    goro_test_await_parked(id, GORO__WAIT_MUTEX);
    cr_assert_eq(atomic_load(&t.state), 1, "acquired a held mutex");
    char buf[1 << 16];
    goro_stack(buf, sizeof buf, true);
    cr_assert(strstr(buf, "[sync.Mutex.Lock") != NULL, "no sync.Mutex.Lock state in:\n%s", buf);
    goro_mutex_unlock(&m);
    cr_assert(goro_test_wait_until(mtry_got(&t), GORO_SEC(2)));
    goro_test_await_count(start);
}

GORO_TEST(sync, mutex_unlock_of_unlocked_panics, .timeout = 10, .exit_code = 2) {
    goro_mutex m = {0};
    goro_mutex_lock(&m);
    goro_mutex_unlock(&m);
    goro_mutex_unlock(&m);
}

static void unlock_unlocked_g(void *a) { goro_mutex_unlock(a); }

/* The last recovered panic message, so tests can check it. */
static char *_Atomic sync_last_panic_p;
static void note_panic(const char *msg, void *arg) {
    (void)arg;
    free(atomic_exchange(&sync_last_panic_p, strdup(msg)));
}
#define sync_last_panic atomic_load(&sync_last_panic_p)

GORO_TEST(sync, mutex_unlock_of_unlocked_message, .timeout = 10) {
    int start = goro_count();
    goro_mutex m = {0};
    goro_opts o = {.on_panic = note_panic};
    goro_go_opts(&o, unlock_unlocked_g, &m);
    goro_test_await_count(start);
    cr_assert_not_null(sync_last_panic);
    cr_assert_str_eq(sync_last_panic, "sync: unlock of unlocked mutex");
    /* The mutex is still usable. */
    cr_assert(goro_mutex_trylock(&m));
    goro_mutex_unlock(&m);
}

/* Go's TestMutexFairness: a goroutine that re-locks right after unlocking
   must not starve a waiter: after 1 ms the mutex goes into starvation mode
   and hands itself to the waiter. */
typedef struct {
    goro_mutex mu;
    _Atomic bool stop;
    _Atomic bool saw_starving;
    _Atomic int waiter_done;
    int64_t max_wait;
} mfair;

static void fair_hog(void *a) {
    mfair *f = a;
    while (!atomic_load(&f->stop)) {
        goro_mutex_lock(&f->mu);
        goro_sleep(GORO_US(100));
        /* White box: bit 2 of the state word is Go's mutexStarving. */
        if (atomic_load((_Atomic int32_t *)(void *)&f->mu) & 4)
            atomic_store(&f->saw_starving, true);
        goro_mutex_unlock(&f->mu);
    }
}

static void fair_waiter(void *a) {
    mfair *f = a;
    for (int i = 0; i < 10; i++) {
        goro_sleep(GORO_US(100));
        int64_t t0 = goro_nanotime();
        goro_mutex_lock(&f->mu);
        int64_t w = goro_nanotime() - t0;
        if (w > f->max_wait)
            f->max_wait = w;
        goro_mutex_unlock(&f->mu);
    }
    atomic_store(&f->waiter_done, 1);
}
static bool fair_done(void *a) { return atomic_load(&((mfair *)a)->waiter_done) == 1; }

GORO_TEST(sync, mutex_starvation_mode, .timeout = 30) {
    goro_maxprocs(2);
    int start = goro_count();
    static mfair f;
    memset(&f, 0, sizeof f);
    goro_go(fair_hog, &f);
    goro_go(fair_waiter, &f);
    bool ok = goro_test_wait_until(fair_done(&f), GORO_SEC(10));
    atomic_store(&f.stop, true);
    cr_assert(ok, "can't acquire the mutex in 10 seconds");
    cr_assert(atomic_load(&f.saw_starving), "the mutex never entered starvation mode");
    /* Starvation mode bounds the wait to ~1 ms plus the hog's 100 us holds. */
    cr_assert_lt(f.max_wait, GORO_MS(500), "waited %lld ns", (long long)f.max_wait);
    goro_test_await_count(start);
}

/* =============================================================== rwmutex */

typedef struct {
    goro_rwmutex rw;
    _Atomic int inside;
    _Atomic int all_seen;
    int n;
    goro_waitgroup wg;
} rwpar;

static void rw_parallel_reader(void *a) {
    rwpar *p = a;
    goro_rwmutex_rlock(&p->rw);
    atomic_fetch_add(&p->inside, 1);
    if (goro_test_wait_until(atomic_load(&p->inside) >= p->n, GORO_SEC(5)))
        atomic_fetch_add(&p->all_seen, 1);
    goro_rwmutex_runlock(&p->rw);
    goro_waitgroup_done(&p->wg);
}

GORO_TEST(sync, rwmutex_parallel_readers, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    rwpar p;
    memset(&p, 0, sizeof p);
    p.n = 8;
    goro_waitgroup_add(&p.wg, p.n);
    for (int i = 0; i < p.n; i++)
        goro_go(rw_parallel_reader, &p);
    goro_waitgroup_wait(&p.wg);
    cr_assert_eq(atomic_load(&p.all_seen), p.n, "readers did not hold the lock together");
    /* Now free: a writer gets it at once. */
    goro_rwmutex_lock(&p.rw);
    goro_rwmutex_unlock(&p.rw);
    goro_test_await_count(start);
}

/* Go's HammerRWMutex: activity counts readers + 10000 * writers. */
typedef struct {
    goro_rwmutex rw;
    _Atomic int activity;
    _Atomic int bad;
    int iters;
    goro_waitgroup wg;
} rwhammer;

static void hammer_reader_body(rwhammer *h) {
    for (int i = 0; i < h->iters; i++) {
        goro_rwmutex_rlock(&h->rw);
        int n = atomic_fetch_add(&h->activity, 1) + 1;
        if (n < 1 || n >= 10000)
            atomic_fetch_add(&h->bad, 1);
        for (volatile int k = 0; k < 100; k++)
            ;
        atomic_fetch_sub(&h->activity, 1);
        goro_rwmutex_runlock(&h->rw);
    }
    goro_waitgroup_done(&h->wg);
}
static void hammer_writer_body(rwhammer *h) {
    for (int i = 0; i < h->iters; i++) {
        goro_rwmutex_lock(&h->rw);
        int n = atomic_fetch_add(&h->activity, 10000) + 10000;
        if (n != 10000)
            atomic_fetch_add(&h->bad, 1);
        for (volatile int k = 0; k < 100; k++)
            ;
        atomic_fetch_sub(&h->activity, 10000);
        goro_rwmutex_unlock(&h->rw);
    }
    goro_waitgroup_done(&h->wg);
}
static void hammer_reader(void *a) { hammer_reader_body(a); }
static void hammer_writer(void *a) { hammer_writer_body(a); }
static void *hammer_reader_t(void *a) {
    hammer_reader_body(a);
    return NULL;
}
static void *hammer_writer_t(void *a) {
    hammer_writer_body(a);
    return NULL;
}

GORO_TEST(sync, rwmutex_hammer, .timeout = 60) {
    goro_maxprocs(2);
    int start = goro_count();
    static rwhammer h;
    memset(&h, 0, sizeof h);
    h.iters = 3000;
    enum { READERS = 8 };
    goro_waitgroup_add(&h.wg, 2 + READERS + 2);
    goro_go(hammer_writer, &h);
    for (int i = 0; i < READERS / 2; i++)
        goro_go(hammer_reader, &h);
    goro_go(hammer_writer, &h);
    for (int i = READERS / 2; i < READERS; i++)
        goro_go(hammer_reader, &h);
    pthread_t tr, tw;
    pthread_create(&tr, NULL, hammer_reader_t, &h);
    pthread_create(&tw, NULL, hammer_writer_t, &h);
    goro_waitgroup_wait(&h.wg);
    pthread_join(tr, NULL);
    pthread_join(tw, NULL);
    cr_assert_eq(atomic_load(&h.bad), 0, "reader/writer exclusion violated");
    cr_assert_eq(atomic_load(&h.activity), 0);
    goro_test_await_count(start);
}

/* A stream of overlapping readers must not starve a writer. */
typedef struct {
    goro_rwmutex rw;
    _Atomic bool stop;
    _Atomic int reads;
    goro_waitgroup wg;
} rwstream;

static void stream_reader(void *a) {
    rwstream *s = a;
    while (!atomic_load(&s->stop)) {
        goro_rwmutex_rlock(&s->rw);
        atomic_fetch_add(&s->reads, 1);
        goro_sleep(GORO_US(300));
        goro_rwmutex_runlock(&s->rw);
    }
    goro_waitgroup_done(&s->wg);
}

GORO_TEST(sync, rwmutex_writer_not_starved, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static rwstream s;
    memset(&s, 0, sizeof s);
    enum { R = 6 };
    goro_waitgroup_add(&s.wg, R);
    for (int i = 0; i < R; i++) {
        goro_go(stream_reader, &s);
        goro_sleep(GORO_US(50)); /* staggered: some reader always holds it */
    }
    /* The readers are streaming (on a busy machine it may take a while). */
    cr_assert(goro_test_wait_until(atomic_load(&s.reads) > 2 * R, GORO_SEC(5)));
    for (int round = 0; round < 5; round++) {
        int64_t t0 = goro_nanotime();
        goro_rwmutex_lock(&s.rw);
        int64_t waited = goro_nanotime() - t0;
        int r0 = atomic_load(&s.reads);
        goro_sleep(GORO_MS(2));
        cr_assert_eq(atomic_load(&s.reads), r0, "a reader got in while the writer held the lock");
        goro_rwmutex_unlock(&s.rw);
        /* A starved writer would wait until the readers stop, which they
           never do while it waits (the test's .timeout); a fair one waits
           for the readers inside, 300 us each. The bound is far above that
           so that a loaded 2-CPU machine under a sanitizer keeps it. */
        cr_assert_lt(waited, GORO_SEC(2), "writer waited %lld ns", (long long)waited);
        /* The readers stream again before the next round. */
        cr_assert(goro_test_wait_until(atomic_load(&s.reads) > r0 + R, GORO_SEC(5)));
    }
    atomic_store(&s.stop, true);
    goro_waitgroup_wait(&s.wg);
    goro_test_await_count(start);
}

/* A waiting writer blocks new readers; they get in after the writer. */
typedef struct {
    goro_rwmutex rw;
    _Atomic int seq;
    _Atomic int writer_at;
    _Atomic int reader_at;
    goro_waitgroup wg;
} rworder;

static void order_writer(void *a) {
    rworder *o = a;
    goro_rwmutex_lock(&o->rw);
    atomic_store(&o->writer_at, atomic_fetch_add(&o->seq, 1) + 1);
    goro_sleep(GORO_MS(5));
    goro_rwmutex_unlock(&o->rw);
    goro_waitgroup_done(&o->wg);
}
static void order_reader(void *a) {
    rworder *o = a;
    goro_rwmutex_rlock(&o->rw);
    atomic_store(&o->reader_at, atomic_fetch_add(&o->seq, 1) + 1);
    goro_rwmutex_runlock(&o->rw);
    goro_waitgroup_done(&o->wg);
}

GORO_TEST(sync, rwmutex_waiting_writer_blocks_new_readers, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static rworder o;
    memset(&o, 0, sizeof o);
    goro_waitgroup_add(&o.wg, 2);
    goro_rwmutex_rlock(&o.rw); /* the main thread is a reader */
    uint64_t writer = goro_go(order_writer, &o);
    goro_test_await_parked(writer, GORO__WAIT_RWMUTEX_W); /* announced: new readers wait now */
    uint64_t reader = goro_go(order_reader, &o);
    goro_test_await_parked(reader, GORO__WAIT_RWMUTEX_R);
    cr_assert_eq(atomic_load(&o.writer_at), 0, "writer got in while a reader held the lock");
    cr_assert_eq(atomic_load(&o.reader_at), 0, "a new reader passed a waiting writer");
    char buf[1 << 16];
    goro_stack(buf, sizeof buf, true);
    cr_assert(strstr(buf, "[sync.RWMutex.Lock") != NULL, "no sync.RWMutex.Lock in:\n%s", buf);
    cr_assert(strstr(buf, "[sync.RWMutex.RLock") != NULL, "no sync.RWMutex.RLock in:\n%s", buf);
    goro_rwmutex_runlock(&o.rw);
    goro_waitgroup_wait(&o.wg);
    cr_assert_eq(atomic_load(&o.writer_at), 1);
    cr_assert_eq(atomic_load(&o.reader_at), 2);
    goro_test_await_count(start);
}

GORO_TEST(sync, rwmutex_runlock_of_unlocked_panics, .timeout = 10, .exit_code = 2) {
    goro_rwmutex rw = {0};
    goro_rwmutex_runlock(&rw);
}

GORO_TEST(sync, rwmutex_unlock_of_unlocked_panics, .timeout = 10, .exit_code = 2) {
    goro_rwmutex rw = {0};
    goro_rwmutex_rlock(&rw);
    goro_rwmutex_runlock(&rw);
    goro_rwmutex_unlock(&rw);
}

/* ============================================================ waitgroup */

typedef struct {
    goro_waitgroup wg1, wg2;
    _Atomic int exited;
    goro_waitgroup all;
} wgtest;

static void wg_body(wgtest *t) {
    goro_waitgroup_done(&t->wg1);
    goro_waitgroup_wait(&t->wg2);
    atomic_fetch_add(&t->exited, 1);
    goro_waitgroup_done(&t->all);
}
static void wg_g(void *a) { wg_body(a); }
static void *wg_t(void *a) {
    wg_body(a);
    return NULL;
}

/* Go's TestWaitGroup, with two of the waiters plain threads. */
GORO_TEST(sync, waitgroup_basic, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    for (int round = 0; round < 3; round++) {
        static wgtest t;
        memset(&t, 0, sizeof t);
        enum { N = 16, T = 2 };
        goro_waitgroup_add(&t.wg1, N + T);
        goro_waitgroup_add(&t.wg2, N + T);
        goro_waitgroup_add(&t.all, N + T);
        for (int i = 0; i < N; i++)
            goro_go(wg_g, &t);
        pthread_t th[T];
        for (int i = 0; i < T; i++)
            pthread_create(&th[i], NULL, wg_t, &t);
        goro_waitgroup_wait(&t.wg1);
        /* Every waiter parks on wg2 (a plain thread blocked in goro has a
           goroutine record too): none may be past it. */
        cr_assert(goro_test_wait_until(goro_test_count_parked(GORO__WAIT_WAITGROUP, true) == N + T,
                                       GORO_SEC(5)),
                  "WaitGroup released too early: %d goroutines wait, exited %d",
                  goro_test_count_parked(GORO__WAIT_WAITGROUP, true), atomic_load(&t.exited));
        cr_assert_eq(atomic_load(&t.exited), 0, "WaitGroup released too early");
        for (int i = 0; i < N + T; i++)
            goro_waitgroup_done(&t.wg2);
        goro_waitgroup_wait(&t.all);
        cr_assert_eq(atomic_load(&t.exited), N + T);
        for (int i = 0; i < T; i++)
            pthread_join(th[i], NULL);
    }
    /* A zero WaitGroup does not block. */
    goro_waitgroup z = {0};
    goro_waitgroup_wait(&z);
    goro_test_await_count(start);
}

static void wg_stuck(void *a) { goro_waitgroup_wait(a); }

GORO_TEST(sync, waitgroup_wait_state, .timeout = 10) {
    int start = goro_count();
    goro_waitgroup wg = {0};
    goro_waitgroup_add(&wg, 1);
    goro_test_await_parked(goro_go(wg_stuck, &wg), GORO__WAIT_WAITGROUP);
    char buf[1 << 16];
    goro_stack(buf, sizeof buf, true);
    cr_assert(strstr(buf, "[sync.WaitGroup.Wait") != NULL, "no sync.WaitGroup.Wait in:\n%s", buf);
    goro_waitgroup_done(&wg);
    goro_test_await_count(start);
}

GORO_TEST(sync, waitgroup_negative_counter_panics, .timeout = 10, .exit_code = 2) {
    goro_waitgroup wg = {0};
    goro_waitgroup_add(&wg, 1);
    goro_waitgroup_done(&wg);
    goro_waitgroup_done(&wg);
}

static void wg_negative_g(void *a) { goro_waitgroup_add(a, -1); }

GORO_TEST(sync, waitgroup_negative_counter_message, .timeout = 10) {
    int start = goro_count();
    goro_waitgroup wg = {0};
    goro_opts o = {.on_panic = note_panic};
    goro_go_opts(&o, wg_negative_g, &wg);
    goro_test_await_count(start);
    cr_assert_not_null(sync_last_panic);
    cr_assert_str_eq(sync_last_panic, "sync: negative WaitGroup counter");
}

/* ================================================================= once */

typedef struct {
    goro_once once;
    _Atomic int calls;
    _Atomic int value;
    _Atomic int early;
    goro_waitgroup wg;
} oncetest;

static void once_fn(void *a) {
    oncetest *t = a;
    atomic_fetch_add(&t->calls, 1);
    goro_sleep(GORO_MS(10)); /* concurrent callers must wait for this */
    atomic_store(&t->value, 42);
}
static void once_body(oncetest *t) {
    goro_once_do(&t->once, once_fn, t);
    if (atomic_load(&t->value) != 42)
        atomic_fetch_add(&t->early, 1);
    goro_waitgroup_done(&t->wg);
}
static void once_g(void *a) { once_body(a); }
static void *once_t(void *a) {
    once_body(a);
    return NULL;
}

GORO_TEST(sync, once_concurrent, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static oncetest t;
    memset(&t, 0, sizeof t);
    enum { N = 16, T = 2 };
    goro_waitgroup_add(&t.wg, N + T);
    for (int i = 0; i < N; i++)
        goro_go(once_g, &t);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, once_t, &t);
    goro_waitgroup_wait(&t.wg);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&t.calls), 1);
    cr_assert_eq(atomic_load(&t.early), 0, "a caller returned before fn finished");
    goro_once_do(&t.once, once_fn, &t);
    cr_assert_eq(atomic_load(&t.calls), 1);
    goro_test_await_count(start);
}

static void once_panicking_fn(void *a) {
    (void)a;
    goro_panic("once fn failed");
}
static void once_panic_g(void *a) { goro_once_do(a, once_panicking_fn, NULL); }
static _Atomic int once_second_calls;
static void once_second_fn(void *a) {
    (void)a;
    atomic_fetch_add(&once_second_calls, 1);
}

/* Go's TestOncePanic: a panicking fn counts as done. */
GORO_TEST(sync, once_panic_counts_as_done, .timeout = 10) {
    int start = goro_count();
    goro_once o = {0};
    goro_opts opts = {.on_panic = note_panic};
    goro_go_opts(&opts, once_panic_g, &o);
    goro_test_await_count(start);
    cr_assert_str_eq(sync_last_panic, "once fn failed");
    goro_once_do(&o, once_second_fn, NULL); /* must neither hang nor call */
    cr_assert_eq(atomic_load(&once_second_calls), 0);
}

/* ================================================================= cond */

typedef struct {
    goro_mutex mu;
    goro_cond cond;
    int running; /* under mu */
    _Atomic int awake;
    int order[64]; /* under mu: wake order */
    int norder;
    bool exit; /* under mu */
    goro_waitgroup wg;
} condtest;

typedef struct {
    condtest *c;
    int id;
    _Atomic uint64_t gid; /* goro_id() of the waiter, a thread's too */
} condarg;

static void cond_waiter_body(condarg *a) {
    condtest *c = a->c;
    atomic_store(&a->gid, goro_id());
    goro_mutex_lock(&c->mu);
    c->running++;
    goro_cond_wait(&c->cond, &c->mu);
    c->order[c->norder++] = a->id;
    atomic_fetch_add(&c->awake, 1);
    goro_mutex_unlock(&c->mu);
    goro_waitgroup_done(&c->wg);
}
static void cond_waiter(void *a) { cond_waiter_body(a); }
static void *cond_waiter_t(void *a) {
    cond_waiter_body(a);
    return NULL;
}

static int cond_running(condtest *c) {
    goro_mutex_lock(&c->mu);
    int r = c->running;
    goro_mutex_unlock(&c->mu);
    return r;
}

static void cond_wait_running(condtest *c, int n) {
    cr_assert(goro_test_wait_until(cond_running(c) >= n, GORO_SEC(5)), "waiters did not start");
}

static void cond_wait_awake(condtest *c, int n) {
    cr_assert(goro_test_wait_until(atomic_load(&c->awake) >= n, GORO_SEC(5)), "signal woke nobody");
}

/* Is waiter a still parked in Cond.Wait, or has it been woken (its id in
   c->order)? One that a signal readied is neither until it has taken mu and
   noted its wake. */
static bool cond_waiting_or_awake(condtest *c, condarg *a) {
    if (goro_test_parked_as(atomic_load(&a->gid), GORO__WAIT_COND))
        return true;
    goro_mutex_lock(&c->mu);
    bool awake = false;
    for (int i = 0; i < c->norder; i++)
        awake |= c->order[i] == a->id;
    goro_mutex_unlock(&c->mu);
    return awake;
}

/* Go's TestCondSignal: each signal wakes exactly one waiter. */
GORO_TEST(sync, cond_signal_wakes_exactly_one, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static condtest c;
    memset(&c, 0, sizeof c);
    enum { N = 4 };
    static condarg args[N];
    goro_waitgroup_add(&c.wg, N);
    for (int i = 0; i < N; i++) {
        args[i] = (condarg){&c, i, 0};
        if (i == N - 1) {
            pthread_t th;
            pthread_create(&th, NULL, cond_waiter_t, &args[i]);
            pthread_detach(th);
        } else {
            goro_go(cond_waiter, &args[i]);
        }
    }
    /* running is counted under mu before Wait releases it: once all are
       counted and we hold mu, every waiter has its ticket. Each is then
       seen parked (a plain thread blocked in goro has a record too). */
    cond_wait_running(&c, N);
    for (int i = 0; i < N; i++)
        goro_test_await_parked(atomic_load(&args[i].gid), GORO__WAIT_COND);
    for (int n = 1; n <= N; n++) {
        cr_assert_eq(atomic_load(&c.awake), n - 1, "goroutine not asleep");
        goro_mutex_lock(&c.mu);
        goro_cond_signal(&c.cond);
        goro_mutex_unlock(&c.mu);
        cond_wait_awake(&c, n);
        /* The one woken has noted it; every other waiter must still be
           parked in Cond.Wait (one readied too would not be, the moment the
           signal returned). */
        for (int i = 0; i < N; i++)
            cr_assert(cond_waiting_or_awake(&c, &args[i]), "too many woke up: waiter %d", i);
        cr_assert_eq(atomic_load(&c.awake), n, "too many woke up");
    }
    goro_cond_signal(&c.cond); /* nobody left: a no-op */
    goro_waitgroup_wait(&c.wg);
    goro_test_await_count(start);
}

/* Signals wake waiters in the order they started waiting. */
GORO_TEST(sync, cond_signal_fifo, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static condtest c;
    memset(&c, 0, sizeof c);
    enum { N = 20 };
    static condarg args[N];
    goro_waitgroup_add(&c.wg, N);
    for (int i = 0; i < N; i++) {
        args[i] = (condarg){&c, i, 0};
        goro_go(cond_waiter, &args[i]);
        cond_wait_running(&c, i + 1);
    }
    for (int n = 1; n <= N; n++) {
        goro_cond_signal(&c.cond);
        cond_wait_awake(&c, n);
    }
    goro_waitgroup_wait(&c.wg);
    for (int i = 0; i < N; i++)
        cr_assert_eq(c.order[i], i, "wake %d went to waiter %d", i, c.order[i]);
    goro_test_await_count(start);
}

/* Go's TestCondBroadcast: every waiter wakes exactly once per broadcast. */
typedef struct {
    condtest *c;
    int id;
    int wakes;
} bcarg;

static void bc_body(bcarg *a) {
    condtest *c = a->c;
    goro_mutex_lock(&c->mu);
    while (!c->exit) {
        c->running++;
        goro_cond_wait(&c->cond, &c->mu);
        a->wakes++;
        atomic_fetch_add(&c->awake, 1);
    }
    goro_mutex_unlock(&c->mu);
    goro_waitgroup_done(&c->wg);
}
static void bc_g(void *a) { bc_body(a); }
static void *bc_t(void *a) {
    bc_body(a);
    return NULL;
}

GORO_TEST(sync, cond_broadcast_wakes_all, .timeout = 30) {
    goro_maxprocs(2);
    int start = goro_count();
    static condtest c;
    memset(&c, 0, sizeof c);
    enum { N = 50, T = 2, ROUNDS = 5 };
    static bcarg args[N];
    pthread_t th[T];
    goro_waitgroup_add(&c.wg, N);
    for (int i = 0; i < N; i++) {
        args[i] = (bcarg){&c, i, 0};
        if (i < T)
            pthread_create(&th[i], NULL, bc_t, &args[i]);
        else
            goro_go(bc_g, &args[i]);
    }
    for (int r = 1; r <= ROUNDS; r++) {
        cond_wait_running(&c, N * r);
        cr_assert_eq(atomic_load(&c.awake), N * (r - 1), "goroutine not asleep");
        goro_mutex_lock(&c.mu);
        if (r == ROUNDS)
            c.exit = true;
        goro_cond_broadcast(&c.cond);
        goro_mutex_unlock(&c.mu);
        cond_wait_awake(&c, N * r);
    }
    goro_waitgroup_wait(&c.wg);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        cr_assert_eq(args[i].wakes, ROUNDS, "waiter %d woke %d times", i, args[i].wakes);
    goro_cond_broadcast(&c.cond);
    goro_test_await_count(start);
}

/* No spurious wake-ups: a signal sent before a wait does not wake it. */
GORO_TEST(sync, cond_no_spurious_wakeup, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static condtest c;
    memset(&c, 0, sizeof c);
    static condarg a;
    a = (condarg){&c, 0, 0};
    goro_cond_signal(&c.cond);
    goro_cond_broadcast(&c.cond);
    goro_waitgroup_add(&c.wg, 1);
    uint64_t id = goro_go(cond_waiter, &a);
    /* A wait that a signal sent before it had woken would never park. */
    goro_test_await_parked(id, GORO__WAIT_COND);
    cr_assert_eq(atomic_load(&c.awake), 0, "woken without a signal");
    char buf[1 << 16];
    goro_stack(buf, sizeof buf, true);
    cr_assert(strstr(buf, "[sync.Cond.Wait") != NULL, "no sync.Cond.Wait in:\n%s", buf);
    goro_cond_signal(&c.cond);
    cond_wait_awake(&c, 1);
    goro_waitgroup_wait(&c.wg);
    goro_test_await_count(start);
}

/* ================================================================== sem */

GORO_TEST(sync, sem_weighted_basics, .timeout = 10) {
    goro_sem s;
    goro_sem_init(&s, 10);
    goro_sem_acquire(&s, 3);
    goro_sem_acquire(&s, 3);
    goro_sem_acquire(&s, 3);
    cr_assert_not(goro_sem_try_acquire(&s, 2));
    cr_assert(goro_sem_try_acquire(&s, 1));
    cr_assert_not(goro_sem_try_acquire(&s, 1));
    goro_sem_release(&s, 4);
    cr_assert(goro_sem_try_acquire(&s, 4));
    goro_sem_release(&s, 10);
    cr_assert(goro_sem_try_acquire(&s, 10));
    goro_sem_release(&s, 10);

    /* Capacity 0 (NewWeighted(0)): only weight 0 fits. A zeroed goro_sem,
       never initialised, panics instead (test_bad_args.c). */
    goro_sem z;
    goro_sem_init(&z, 0);
    cr_assert(goro_sem_try_acquire(&z, 0));
    cr_assert_not(goro_sem_try_acquire(&z, 1));
}

typedef struct {
    goro_sem *s;
    int64_t n;
    _Atomic int *seq;
    _Atomic int at;
    goro_waitgroup *wg;
} semwaiter_arg;

static void sem_waiter_g(void *a) {
    semwaiter_arg *w = a;
    goro_sem_acquire(w->s, w->n);
    atomic_store(&w->at, atomic_fetch_add(w->seq, 1) + 1);
    goro_waitgroup_done(w->wg);
}
static bool sem_at_set(void *a) { return atomic_load(&((semwaiter_arg *)a)->at) != 0; }

/* x/sync's FIFO rule: a big request at the head is not overtaken by small
   ones, and try_acquire fails while anyone queues. */
GORO_TEST(sync, sem_fifo_fairness, .timeout = 20) {
    goro_maxprocs(2);
    int start = goro_count();
    static goro_sem s;
    goro_sem_init(&s, 4);
    static _Atomic int seq;
    static goro_waitgroup wg;
    goro_sem_acquire(&s, 4);
    static semwaiter_arg big, small;
    big = (semwaiter_arg){&s, 4, &seq, 0, &wg};
    small = (semwaiter_arg){&s, 1, &seq, 0, &wg};
    goro_waitgroup_add(&wg, 2);
    uint64_t big_id = goro_go(sem_waiter_g, &big);
    goro_test_await_parked(big_id, GORO__WAIT_SEMACQUIRE); /* queued first */
    uint64_t small_id = goro_go(sem_waiter_g, &small);
    goro_test_await_parked(small_id, GORO__WAIT_SEMACQUIRE);
    char buf[1 << 16];
    goro_stack(buf, sizeof buf, true);
    cr_assert(strstr(buf, "[semacquire") != NULL, "no semacquire in:\n%s", buf);

    /* release grants (and readies) under its lock before it returns, so
       "still parked" right after it is a complete check, no waiting needed. */
    goro_sem_release(&s, 1); /* 1 free, but the head wants 4 */
    cr_assert(goro_test_parked_as(small_id, GORO__WAIT_SEMACQUIRE) && atomic_load(&small.at) == 0,
              "small request overtook the big one");
    cr_assert_not(goro_sem_try_acquire(&s, 1), "try_acquire succeeded while waiters queue");
    goro_sem_release(&s, 3); /* the big one fits now */
    cr_assert(goro_test_parked_as(small_id, GORO__WAIT_SEMACQUIRE) && atomic_load(&small.at) == 0,
              "small request got in beside the big one");
    cr_assert(goro_test_wait_until(sem_at_set(&big), GORO_SEC(2)));
    goro_sem_release(&s, 4); /* as the big one's owner */
    goro_waitgroup_wait(&wg);
    cr_assert_eq(atomic_load(&big.at), 1);
    cr_assert_eq(atomic_load(&small.at), 2);
    goro_sem_release(&s, 1);
    cr_assert(goro_sem_try_acquire(&s, 4));
    goro_test_await_count(start);
}

static void sem_doomed(void *a) { goro_sem_acquire(a, 100); }

/* A request above the capacity blocks forever without blocking others.
   Unchecked: the doomed goroutine can never acquire, so it is left behind on
   purpose (the process ends with the test). */
GORO_TEST_UNCHECKED(sync, sem_request_above_capacity,
                    "leaves a goroutine blocked forever in goro_sem_acquire(100) on purpose",
                    .timeout = 10) {
    int start = goro_count();
    static goro_sem s;
    goro_sem_init(&s, 4);
    goro_test_await_parked(goro_go(sem_doomed, &s), GORO__WAIT_SEMACQUIRE);
    cr_assert(goro_sem_try_acquire(&s, 4), "a doomed request blocks the others");
    goro_sem_release(&s, 4);
    cr_assert_eq(goro_count(), start + 1, "the doomed request returned");
}

typedef struct {
    goro_sem s;
    _Atomic int64_t in_use;
    _Atomic int bad;
    int64_t cap;
    int iters;
    goro_waitgroup wg;
} semstress;

static void semstress_body(semstress *st, unsigned seed) {
    for (int i = 0; i < st->iters; i++) {
        seed = seed * 1103515245u + 12345u;
        int64_t n = 1 + (int64_t)((seed >> 16) % 3);
        goro_sem_acquire(&st->s, n);
        int64_t now = atomic_fetch_add(&st->in_use, n) + n;
        if (now > st->cap)
            atomic_fetch_add(&st->bad, 1);
        if (i % 16 == 0)
            goro_yield();
        atomic_fetch_sub(&st->in_use, n);
        goro_sem_release(&st->s, n);
    }
    goro_waitgroup_done(&st->wg);
}
static void semstress_g(void *a) { semstress_body(a, (unsigned)goro_id()); }
static void *semstress_t(void *a) {
    semstress_body(a, 7u);
    return NULL;
}

GORO_TEST(sync, sem_stress_weighted, .timeout = 60) {
    goro_maxprocs(2);
    int start = goro_count();
    static semstress st;
    memset(&st, 0, sizeof st);
    st.cap = 5;
    st.iters = 5000;
    goro_sem_init(&st.s, st.cap);
    enum { G = 8, T = 2 };
    goro_waitgroup_add(&st.wg, G + T);
    for (int i = 0; i < G; i++)
        goro_go(semstress_g, &st);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, semstress_t, &st);
    goro_waitgroup_wait(&st.wg);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&st.bad), 0, "more weight held than the capacity");
    cr_assert(goro_sem_try_acquire(&st.s, st.cap), "weight leaked");
    goro_test_await_count(start);
}

GORO_TEST(sync, sem_release_more_than_held_panics, .timeout = 10, .exit_code = 2) {
    goro_sem s;
    goro_sem_init(&s, 3);
    goro_sem_acquire(&s, 1);
    goro_sem_release(&s, 2);
}
