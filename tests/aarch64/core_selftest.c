/*
 * core_selftest.c - the core runtime suite in plain C, for targets without
 * Criterion (aarch64 under qemu-user in CI; `make test-aarch64`).
 *
 * Only the public API of goro.h is used: goroutines (ids, count, yield,
 * sleep, exit, defer, panic recovery, maxprocs), channels and select, mutex
 * and waitgroup, and a plain pthread blocking in the runtime. It also checks
 * what the context switch must preserve per goroutine: errno and the FP
 * control word (rounding mode, FPCR on aarch64, MXCSR/x87 on x86_64).
 *
 * Tests run one after another on the main thread (goroutine 1). Checks may run
 * inside goroutines; the counters are atomic. Exit status 0 iff nothing
 * failed; the last line is "core_selftest: N passed, M failed". A watchdog
 * (SIGALRM) ends a hung run with the name of the test that hung.
 */
#define _GNU_SOURCE
#include <goro.h>

#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A call the compiler must really make, with nothing known about it. */
#if defined(__clang__)
#define NOIPA __attribute__((noinline, optnone))
#else
#define NOIPA __attribute__((noipa))
#endif

static atomic_int n_passed, n_failed;
static const char *volatile current_test = "startup";

#define CHECK(cond) check_((cond), #cond, __FILE__, __LINE__)
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!check_((cond), #cond, __FILE__, __LINE__)) {                                          \
            fprintf(stderr, "    ");                                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static bool check_(bool ok, const char *expr, const char *file, int line) {
    if (ok) {
        atomic_fetch_add(&n_passed, 1);
    } else {
        atomic_fetch_add(&n_failed, 1);
        fprintf(stderr, "FAIL %s: %s:%d: %s\n", current_test, file, line, expr);
    }
    return ok;
}

static void on_alarm(int sig) {
    (void)sig;
    const char *t = current_test;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "core_selftest: TIMEOUT in %s\n", t);
    if (n > 0 && write(2, buf, (size_t)n) < 0) { /* nothing to do */
    }
    /* The runtime prints every goroutine's trace on SIGQUIT; give it a moment. */
    kill(getpid(), SIGQUIT);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    _exit(3);
}

static int64_t ms_since(int64_t t0) { return (goro_nanotime() - t0) / GORO_MS(1); }

/* Waits (sleeping) until goro_count() == want or 3 s pass; returns the last count. */
static int wait_count(int want) {
    int64_t t0 = goro_nanotime();
    int c;
    while ((c = goro_count()) != want && goro_nanotime() - t0 < GORO_SEC(3))
        goro_sleep(GORO_MS(1));
    return c;
}

static void wg_done(void *wg) { goro_waitgroup_done(wg); }

/* ------------------------------------------------------------ ids, count */

#define NSPAWN 2000
static uint64_t spawn_ret[NSPAWN];
static uint64_t spawn_seen[NSPAWN];
static goro_waitgroup spawn_wg;

static void spawn_fn(void *arg) {
    size_t i = (size_t)(uintptr_t)arg;
    spawn_seen[i] = goro_id();
    goro_waitgroup_done(&spawn_wg);
}

static void test_spawn_join(void) {
    CHECK(goro_id() == 1); /* the first thread to use the runtime is goroutine 1 */
    goro_waitgroup_add(&spawn_wg, NSPAWN);
    bool all_spawned = true;
    for (size_t i = 0; i < NSPAWN; i++) {
        spawn_ret[i] = goro_go(spawn_fn, (void *)(uintptr_t)i);
        if (spawn_ret[i] == 0)
            all_spawned = false;
    }
    CHECK(all_spawned);
    goro_waitgroup_wait(&spawn_wg);
    bool increasing = spawn_ret[0] > 1, match = true;
    for (size_t i = 0; i < NSPAWN; i++) {
        if (i > 0 && spawn_ret[i] <= spawn_ret[i - 1])
            increasing = false;
        if (spawn_seen[i] != spawn_ret[i])
            match = false;
    }
    CHECK(increasing);
    CHECK(match); /* goro_id() inside == what goro_go returned */
    CHECKF(wait_count(1) == 1, "goro_count() = %d after join", goro_count());
}

/* Two spawners on (up to) two Ps: ids stay unique and each spawner sees its
   own ids increase. */
#define NSPAWNERS 2
#define PER_SPAWNER 500
static uint64_t par_ids[NSPAWNERS][PER_SPAWNER];
static goro_waitgroup par_wg, par_children;
static void nop_child(void *arg) {
    (void)arg;
    goro_waitgroup_done(&par_children);
}
static void spawner_fn(void *arg) {
    size_t s = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < PER_SPAWNER; i++)
        par_ids[s][i] = goro_go(nop_child, NULL);
    goro_waitgroup_done(&par_wg);
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_parallel_ids(void) {
    goro_waitgroup_add(&par_children, NSPAWNERS * PER_SPAWNER);
    goro_waitgroup_add(&par_wg, NSPAWNERS);
    for (size_t s = 0; s < NSPAWNERS; s++)
        goro_go(spawner_fn, (void *)(uintptr_t)s);
    goro_waitgroup_wait(&par_wg);
    goro_waitgroup_wait(&par_children);
    bool increasing = true;
    static uint64_t all[NSPAWNERS * PER_SPAWNER];
    for (size_t s = 0; s < NSPAWNERS; s++)
        for (size_t i = 0; i < PER_SPAWNER; i++) {
            if (i > 0 && par_ids[s][i] <= par_ids[s][i - 1])
                increasing = false;
            all[s * PER_SPAWNER + i] = par_ids[s][i];
        }
    CHECK(increasing);
    qsort(all, NSPAWNERS * PER_SPAWNER, sizeof all[0], cmp_u64);
    bool unique = all[0] != 0;
    for (size_t i = 1; i < NSPAWNERS * PER_SPAWNER; i++)
        if (all[i] == all[i - 1])
            unique = false;
    CHECK(unique);
    CHECK(wait_count(1) == 1);
}

static goro_chan *count_gate;
static goro_waitgroup count_wg;
static void count_fn(void *arg) {
    (void)arg;
    CHECK(!goro_chan_recv(count_gate, NULL)); /* woken by close */
    goro_waitgroup_done(&count_wg);
}

static void test_count(void) {
    enum { K = 500 };
    int c0 = wait_count(1);
    CHECKF(c0 == 1, "goro_count() = %d with only main alive", c0);
    count_gate = goro_chan_make(0, 0);
    CHECK(count_gate != NULL);
    goro_waitgroup_add(&count_wg, K);
    for (int i = 0; i < K; i++)
        goro_go(count_fn, NULL);
    CHECKF(goro_count() == c0 + K, "goro_count() = %d, want %d", goro_count(), c0 + K);
    goro_sleep(GORO_MS(5)); /* parked, still counted */
    CHECK(goro_count() == c0 + K);
    goro_chan_close(count_gate);
    goro_waitgroup_wait(&count_wg);
    CHECKF(wait_count(c0) == c0, "goro_count() = %d after all ended", goro_count());
    goro_chan_release(count_gate);
}

/* ------------------------------------------------------------ yield, sleep */

#define YIELD_ROUNDS 200
static char yield_log[2 * YIELD_ROUNDS + 8];
static atomic_int yield_pos, yield_arrived;
static goro_waitgroup yield_wg;
static void yield_fn(void *arg) {
    char tag = (char)(uintptr_t)arg;
    /* Start together: on one P, waiting with goro_yield lets the other arrive. */
    atomic_fetch_add(&yield_arrived, 1);
    int64_t t0 = goro_nanotime();
    while (atomic_load(&yield_arrived) < 2 && goro_nanotime() - t0 < GORO_SEC(5))
        goro_yield();
    for (int i = 0; i < YIELD_ROUNDS; i++) {
        yield_log[atomic_fetch_add(&yield_pos, 1)] = tag;
        goro_yield();
    }
    goro_waitgroup_done(&yield_wg);
}

static void test_yield(void) {
    int prev = goro_maxprocs(1);
    goro_waitgroup_add(&yield_wg, 2);
    goro_go(yield_fn, (void *)(uintptr_t)'a');
    goro_go(yield_fn, (void *)(uintptr_t)'b');
    goro_waitgroup_wait(&yield_wg);
    goro_maxprocs(prev);
    CHECK(atomic_load(&yield_arrived) == 2);
    int switches = 0;
    for (int i = 1; i < 2 * YIELD_ROUNDS; i++)
        switches += yield_log[i] != yield_log[i - 1];
    /* With one P, each goro_yield lets the other goroutine run. */
    CHECKF(switches >= YIELD_ROUNDS / 2, "only %d alternations in %d yields", switches,
           2 * YIELD_ROUNDS);
    for (int i = 0; i < 100; i++)
        goro_yield(); /* main may yield too */
    CHECK(atomic_load(&yield_pos) == 2 * YIELD_ROUNDS);
}

#define NSLEEPERS 100
static int64_t sleep_took[NSLEEPERS];
static goro_waitgroup sleep_wg;
static void sleep_fn(void *arg) {
    size_t i = (size_t)(uintptr_t)arg;
    int64_t t0 = goro_nanotime();
    goro_sleep(GORO_MS(20));
    sleep_took[i] = goro_nanotime() - t0;
    goro_waitgroup_done(&sleep_wg);
}

static void test_sleep(void) {
    int64_t a = goro_nanotime(), b = goro_nanotime();
    CHECK(a > 0 && b >= a);
    int64_t t0 = goro_nanotime();
    goro_sleep(GORO_MS(20));
    int64_t dt = goro_nanotime() - t0;
    CHECKF(dt >= GORO_MS(20) && dt < GORO_MS(520), "main slept %lld ns for 20 ms", (long long)dt);

    t0 = goro_nanotime();
    goro_sleep(0); /* returns at once */
    goro_sleep(-5);
    CHECK(goro_nanotime() - t0 < GORO_MS(200));

    t0 = goro_nanotime();
    goro_waitgroup_add(&sleep_wg, NSLEEPERS);
    for (size_t i = 0; i < NSLEEPERS; i++)
        goro_go(sleep_fn, (void *)(uintptr_t)i);
    goro_waitgroup_wait(&sleep_wg);
    dt = goro_nanotime() - t0;
    bool each = true;
    for (size_t i = 0; i < NSLEEPERS; i++)
        if (sleep_took[i] < GORO_MS(20))
            each = false;
    CHECK(each);
    /* 100 goroutines sleep concurrently, not one after another (2 s). */
    CHECKF(dt < GORO_MS(1000), "100 concurrent 20 ms sleeps took %lld ms",
           (long long)(dt / GORO_MS(1)));
}

/* ------------------------------------------------------------ channels */

#define NITEMS 2000
static goro_chan *uc;
static void producer_fn(void *arg) {
    goro_chan *c = arg;
    for (int i = 1; i <= NITEMS; i++)
        goro_chan_send(c, &i);
    goro_chan_close(c);
}

static void test_unbuffered(void) {
    uc = goro_chan_make(sizeof(int), 0);
    CHECK(uc != NULL);
    CHECK(goro_chan_cap(uc) == 0 && goro_chan_len(uc) == 0);
    int v = 0;
    bool okv;
    CHECK(goro_chan_try_recv(uc, &v, &okv) == GORO_EAGAIN);
    CHECK(goro_chan_try_send(uc, &v) == GORO_EAGAIN); /* no receiver waiting */
    goro_go(producer_fn, uc);
    long sum = 0;
    int n = 0, last = 0;
    bool in_order = true;
    while (goro_chan_recv(uc, &v)) {
        sum += v;
        n++;
        if (v != last + 1)
            in_order = false;
        last = v;
    }
    CHECK(n == NITEMS);
    CHECK(in_order);
    CHECK(sum == (long)NITEMS * (NITEMS + 1) / 2);
    v = 77;
    CHECK(!goro_chan_recv(uc, &v) && v == 0); /* closed and drained: zeroed */
    bool ok = true;
    v = 77;
    CHECK(goro_chan_try_recv(uc, &v, &ok) == 0 && !ok && v == 0);
    goro_chan_release(uc);
}

static void test_buffered(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 8);
    CHECK(c != NULL && goro_chan_cap(c) == 8);
    int sent = 0;
    for (int i = 0; i < 8; i++)
        sent += goro_chan_try_send(c, &i) == 0;
    CHECK(sent == 8);
    int x = 99;
    CHECK(goro_chan_try_send(c, &x) == GORO_EAGAIN);
    CHECK(goro_chan_len(c) == 8);
    CHECK(goro_chan_send_timeout(c, &x, GORO_MS(10)) == GORO_ETIMEDOUT);
    bool fifo = true, ok = false;
    for (int i = 0; i < 8; i++) {
        int v = -1;
        if (goro_chan_try_recv(c, &v, &ok) != 0 || !ok || v != i)
            fifo = false;
    }
    CHECK(fifo);
    CHECK(goro_chan_len(c) == 0);
    int64_t t0 = goro_nanotime();
    CHECK(goro_chan_recv_timeout(c, &x, &ok, GORO_MS(10)) == GORO_ETIMEDOUT);
    CHECK(goro_nanotime() - t0 >= GORO_MS(10));

    /* Stream through a small buffer between goroutines: FIFO, nothing lost. */
    goro_chan *s = goro_chan_make(sizeof(int), 16);
    goro_go(producer_fn, s);
    int n = 0, last = 0;
    bool order = true;
    int v;
    while (goro_chan_recv(s, &v)) {
        if (v != last + 1)
            order = false;
        last = v;
        n++;
    }
    CHECK(n == NITEMS && order);

    x = 5;
    goro_chan_send(c, &x);
    goro_chan_close(c);
    v = 0;
    CHECK(goro_chan_recv(c, &v) && v == 5); /* buffered values survive close */
    CHECK(!goro_chan_recv(c, &v) && v == 0);
    goro_chan_release(s);
    goro_chan_release(c);
}

/* A plain pthread (not a goroutine) blocks in the runtime and is woken. */
static goro_chan *to_thr, *from_thr;
static int thr_got;
static bool thr_ok;
static void *plain_thread(void *arg) {
    (void)arg;
    thr_ok = goro_chan_recv(to_thr, &thr_got); /* blocks the thread on a futex */
    int reply = thr_got + 1;
    goro_chan_send(from_thr, &reply);
    return NULL;
}
static void sender_fn(void *arg) {
    (void)arg;
    goro_sleep(GORO_MS(10));
    int v = 41;
    goro_chan_send(to_thr, &v);
}

static void test_plain_thread(void) {
    to_thr = goro_chan_make(sizeof(int), 0);
    from_thr = goro_chan_make(sizeof(int), 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, plain_thread, NULL) == 0);
    goro_go(sender_fn, NULL);
    int reply = 0;
    CHECK(goro_chan_recv(from_thr, &reply) && reply == 42);
    pthread_join(t, NULL);
    CHECK(thr_ok && thr_got == 41);
    goro_chan_release(to_thr);
    goro_chan_release(from_thr);
}

/* ------------------------------------------------------------ select */

static goro_chan *sel_late;
static void late_sender(void *arg) {
    (void)arg;
    goro_sleep(GORO_MS(10));
    int v = 7;
    goro_chan_send(sel_late, &v);
}

static void test_select(void) {
    goro_chan *c1 = goro_chan_make(sizeof(int), 1), *c2 = goro_chan_make(sizeof(int), 1);
    int r1 = 0, r2 = 0;
    goro_case cs[2] = {{c1, GORO_RECV, &r1, false}, {c2, GORO_RECV, &r2, false}};

    CHECK(goro_select(cs, 2, 0) == -1); /* default: nothing ready */
    int64_t t0 = goro_nanotime();
    CHECK(goro_select(cs, 2, GORO_MS(10)) == -1);
    CHECK(goro_nanotime() - t0 >= GORO_MS(10));

    int v = 3;
    goro_chan_send(c2, &v);
    CHECK(goro_select(cs, 2, GORO_FOREVER) == 1 && r2 == 3 && cs[1].ok);

    /* Fairness: with both ready, each wins about half the time. */
    int wins[2] = {0, 0};
    for (int i = 0; i < 400; i++) {
        goro_chan_try_send(c1, &i);
        goro_chan_try_send(c2, &i);
        int k = goro_select(cs, 2, 0);
        if (k == 0 || k == 1)
            wins[k]++;
        bool dummy;
        goro_chan_try_recv(k == 0 ? c2 : c1, NULL, &dummy);
    }
    CHECKF(wins[0] + wins[1] == 400 && wins[0] >= 100 && wins[1] >= 100, "wins %d/%d", wins[0],
           wins[1]);

    /* Send case: ready when there is room. */
    goro_case snd[2] = {{NULL, GORO_RECV, NULL, false}, {c1, GORO_SEND, &v, false}};
    v = 11;
    CHECK(goro_select(snd, 2, 0) == 1 && goro_chan_len(c1) == 1);
    CHECK(goro_select(snd, 2, 0) == -1); /* full now; a NULL channel never is ready */

    /* Blocking select woken by a goroutine. */
    sel_late = goro_chan_make(sizeof(int), 0);
    int lv = 0;
    goro_case lc[3] = {{NULL, GORO_RECV, NULL, false},
                       {sel_late, GORO_RECV, &lv, false},
                       {c2, GORO_SEND, &v, false}};
    goro_chan_try_send(c2, &v); /* c2 full: its send case is not ready */
    goro_go(late_sender, NULL);
    CHECK(goro_select(lc, 3, GORO_SEC(5)) == 1 && lv == 7 && lc[1].ok);

    /* Receive from a closed channel: ok false. */
    goro_chan_close(sel_late);
    lv = 9;
    CHECK(goro_select(lc, 2, GORO_FOREVER) == 1 && !lc[1].ok && lv == 0);

    goro_chan_release(sel_late);
    goro_chan_release(c1);
    goro_chan_release(c2);
}

/* ------------------------------------------------------------ mutex */

#define MUTEX_WORKERS 8
#define MUTEX_ITERS 5000
static goro_mutex mu; /* zero value is ready */
static long mu_counter;
static goro_waitgroup mu_wg;
static void mutex_fn(void *arg) {
    (void)arg;
    for (int i = 0; i < MUTEX_ITERS; i++) {
        goro_mutex_lock(&mu);
        long v = mu_counter;
        if (i % 64 == 0)
            goro_yield(); /* hold it across a switch */
        mu_counter = v + 1;
        goro_mutex_unlock(&mu);
    }
    goro_waitgroup_done(&mu_wg);
}

static void test_mutex(void) {
    CHECK(goro_mutex_trylock(&mu));
    CHECK(!goro_mutex_trylock(&mu));
    goro_mutex_unlock(&mu);
    goro_waitgroup_add(&mu_wg, MUTEX_WORKERS);
    for (int i = 0; i < MUTEX_WORKERS; i++)
        goro_go(mutex_fn, NULL);
    goro_waitgroup_wait(&mu_wg);
    CHECKF(mu_counter == (long)MUTEX_WORKERS * MUTEX_ITERS, "counter %ld", mu_counter);
    CHECK(goro_mutex_trylock(&mu));
    goro_mutex_unlock(&mu);
}

/* ------------------------------------------- per-goroutine errno and FP state */

#define NSTATE 16
#define STATE_ROUNDS 150
static atomic_int errno_bad, fp_bad, migrations;
static goro_waitgroup state_wg;

static long gettid_(void) { return (long)syscall(SYS_gettid); }

/* glibc declares __errno_location() const, so the compiler may compute the
   address of errno once per function and reuse it after a goroutine switch;
   after a migration that address is the old thread's errno. The runtime can
   only promise that errno *of the current thread* holds the goroutine's
   value, so read and write it through calls the compiler cannot merge. */
static NOIPA int get_errno(void) { return errno; }
static NOIPA void set_errno(int e) { errno = e; }

static void errno_fn(void *arg) {
    int mine = 1000 + (int)(uintptr_t)arg;
    long tid = gettid_();
    for (int k = 0; k < STATE_ROUNDS; k++) {
        set_errno(mine);
        goro_yield();
        if (get_errno() != mine)
            atomic_fetch_add(&errno_bad, 1);
        set_errno(mine + 1);
        goro_sleep(GORO_US(50));
        if (get_errno() != mine + 1)
            atomic_fetch_add(&errno_bad, 1);
        long t = gettid_();
        if (t != tid) {
            atomic_fetch_add(&migrations, 1);
            tid = t;
        }
    }
    goro_waitgroup_done(&state_wg);
}

static const int fp_modes[4] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};

/* noipa: GCC moves FP arithmetic across fesetround() calls even with
   -frounding-math; a real call keeps the division where it is written. */
static NOIPA double third(void) {
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static void fp_fn(void *arg) {
    int mode = fp_modes[(uintptr_t)arg % 4];
    if (fesetround(mode) != 0)
        atomic_fetch_add(&fp_bad, 1);
    double want = third();
    for (int k = 0; k < STATE_ROUNDS; k++) {
        if (k % 2)
            goro_yield();
        else
            goro_sleep(GORO_US(50));
        if (fegetround() != mode || third() != want)
            atomic_fetch_add(&fp_bad, 1);
    }
    fesetround(FE_TONEAREST);
    goro_waitgroup_done(&state_wg);
}

static void test_errno_fp(void) {
    int prev = goro_maxprocs(2);
    /* The rounding mode must really change the result, or the test proves nothing. */
    fesetround(FE_UPWARD);
    double up = third();
    fesetround(FE_DOWNWARD);
    double down = third();
    fesetround(FE_TONEAREST);
    CHECK(up != down);

    goro_waitgroup_add(&state_wg, 2 * NSTATE);
    for (int i = 0; i < NSTATE; i++) {
        goro_go(errno_fn, (void *)(uintptr_t)i);
        goro_go(fp_fn, (void *)(uintptr_t)i);
    }
    set_errno(4242);
    goro_sleep(GORO_MS(1));
    CHECK(get_errno() == 4242); /* main too */
    goro_waitgroup_wait(&state_wg);
    CHECKF(atomic_load(&errno_bad) == 0, "errno lost %d times", atomic_load(&errno_bad));
    CHECKF(atomic_load(&fp_bad) == 0, "FP rounding mode lost %d times", atomic_load(&fp_bad));
    CHECK(fegetround() == FE_TONEAREST);
    printf("    (%d thread migrations observed)\n", atomic_load(&migrations));
    goro_maxprocs(prev);
}

/* ------------------------------------------------------------ maxprocs */

static atomic_long spin_count;
static atomic_bool spin_stop;
static goro_waitgroup spin_wg;
static void spin_fn(void *arg) {
    (void)arg;
    while (!atomic_load(&spin_stop)) {
        atomic_fetch_add(&spin_count, 1);
        goro_yield();
    }
    goro_waitgroup_done(&spin_wg);
}

static bool progresses(void) {
    long c = atomic_load(&spin_count);
    goro_sleep(GORO_MS(20));
    return atomic_load(&spin_count) > c;
}

static void test_maxprocs(void) {
    int prev = goro_maxprocs(0);
    CHECK(prev >= 1);
    CHECK(goro_maxprocs(-1) == prev); /* n <= 0 only reads */
    CHECK(goro_maxprocs(0) == prev);
    goro_waitgroup_add(&spin_wg, 8);
    for (int i = 0; i < 8; i++)
        goro_go(spin_fn, NULL);
    CHECK(goro_maxprocs(4) == prev);
    CHECK(goro_maxprocs(0) == 4);
    CHECK(progresses());
    CHECK(goro_maxprocs(1) == 4);
    CHECK(progresses());
    CHECK(goro_maxprocs(3) == 1);
    CHECK(progresses());
    CHECK(goro_maxprocs(1) == 3);
    CHECK(goro_maxprocs(prev) == 1);
    CHECK(progresses());
    atomic_store(&spin_stop, true);
    goro_waitgroup_wait(&spin_wg);
    CHECK(goro_maxprocs(0) == prev);
    CHECK(wait_count(1) == 1);
}

/* ------------------------------------------------------ defer, exit, panic */

static int defer_log[8];
static atomic_int defer_n;
static volatile bool after_exit_ran;
static goro_waitgroup defer_wg;
static void record(void *arg) { defer_log[atomic_fetch_add(&defer_n, 1)] = (int)(intptr_t)arg; }

static void __attribute__((noinline)) exit_nested(int depth) {
    if (depth < 0)
        return; /* never taken; gives the compiler a path that ends */
    if (depth == 0)
        goro_exit(); /* never returns */
    else
        exit_nested(depth - 1);
    after_exit_ran = true;
}
static void defer_fn(void *arg) {
    (void)arg;
    goro_defer(wg_done, &defer_wg); /* runs last */
    goro_defer(record, (void *)1);
    goro_defer(record, (void *)2);
    goro_defer(record, (void *)3);
    exit_nested(3);
    after_exit_ran = true;
}

static char panic_msg[128];
static int panic_defers_seen;
static void on_panic(const char *msg, void *arg) {
    snprintf(panic_msg, sizeof panic_msg, "%s", msg);
    panic_defers_seen = atomic_load(&defer_n);
    goro_waitgroup_done(arg);
}
static void panic_fn(void *arg) {
    (void)arg;
    goro_defer(record, (void *)10);
    goro_panic("bad %d", 1);
}

static void test_defer_exit_panic(void) {
    goro_waitgroup_add(&defer_wg, 1);
    CHECK(goro_go(defer_fn, NULL) != 0);
    goro_waitgroup_wait(&defer_wg);
    CHECK(!after_exit_ran);
    CHECKF(
        atomic_load(&defer_n) == 3 && defer_log[0] == 3 && defer_log[1] == 2 && defer_log[2] == 1,
        "defers ran %d: %d %d %d", atomic_load(&defer_n), defer_log[0], defer_log[1], defer_log[2]);

    goro_waitgroup pwg = {0};
    goro_waitgroup_add(&pwg, 1);
    goro_opts o = {.name = "panicker", .on_panic = on_panic};
    CHECK(goro_go_opts(&o, panic_fn, &pwg) != 0);
    goro_waitgroup_wait(&pwg);
    CHECKF(strstr(panic_msg, "bad 1") != NULL, "on_panic got \"%s\"", panic_msg);
    CHECK(panic_defers_seen == 4 && defer_log[3] == 10); /* defers before on_panic */
    CHECK(wait_count(1) == 1);
}

/* ------------------------------------------------------------ main */

struct test {
    const char *name;
    void (*fn)(void);
};
static const struct test tests[] = {
    {"spawn_join", test_spawn_join},
    {"parallel_ids", test_parallel_ids},
    {"count", test_count},
    {"yield", test_yield},
    {"sleep", test_sleep},
    {"unbuffered", test_unbuffered},
    {"buffered", test_buffered},
    {"plain_thread", test_plain_thread},
    {"select", test_select},
    {"mutex", test_mutex},
    {"errno_fp", test_errno_fp},
    {"maxprocs", test_maxprocs},
    {"defer_exit_panic", test_defer_exit_panic},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(argc > 1 ? (unsigned)atoi(argv[1]) : 300);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        current_test = tests[i].name;
        int before = atomic_load(&n_failed);
        int64_t t0 = goro_nanotime();
        tests[i].fn();
        printf("%s %-18s %5lld ms\n", atomic_load(&n_failed) == before ? "ok  " : "FAIL",
               tests[i].name, (long long)ms_since(t0));
    }
    current_test = "exit";
    int p = atomic_load(&n_passed), f = atomic_load(&n_failed);
    printf("core_selftest: %d passed, %d failed\n", p, f);
    return f == 0 ? 0 : 1;
}
