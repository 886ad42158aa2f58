/*
 * test_pprof.c - the CPU, block and mutex profiles: what they attribute and
 * how accurately (goro_cpu_profile_start/stop, goro_set_block_profile_rate,
 * goro_set_mutex_profile_fraction), read back with pprof_decode.h.
 *
 * The workloads are defined by CPU time, not wall time (each burner spins
 * until its own thread CPU clock has advanced by its share), so the
 * expected ratios hold on a loaded machine.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "goro_test_internal.h"
#include "pprof_decode.h"

/* ------------------------------------------------------------- fixtures */

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins until cpu_ns of this thread's CPU time went by, measured in 1 ms
   steps. It never yields: a goroutine that stays on its thread is charged
   exactly by that thread's CPU timer (one that hops between threads would
   be sampled just as fairly on average, but with more variance). */
void pprof_fixture_spin(int64_t cpu_ns) {
    volatile uint64_t sink = 1;
    int64_t done = 0;
    while (done < cpu_ns) {
        int64_t t0 = thread_cpu_ns();
        int64_t t1 = t0;
        while (t1 - t0 < 1000000) {
            for (int i = 0; i < 1000; i++)
                sink = sink * 6364136223846793005ULL + 1442695040888963407ULL;
            t1 = thread_cpu_ns();
        }
        done += t1 - t0;
    }
}

typedef struct burn {
    int64_t cpu_ns;
    goro_waitgroup *wg;
} burn;

void pprof_fixture_heavy(void *arg) {
    burn *b = arg;
    goro_label_set("worker", "heavy");
    pprof_fixture_spin(b->cpu_ns);
    goro_waitgroup_done(b->wg);
}

void pprof_fixture_light(void *arg) {
    burn *b = arg;
    goro_label_set("worker", "light");
    pprof_fixture_spin(b->cpu_ns);
    goro_waitgroup_done(b->wg);
}

void *pprof_fixture_thread(void *arg) {
    pprof_fixture_spin(*(int64_t *)arg);
    return NULL;
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *buf = NULL;
    size_t cap = 0, len = 0, k;
    char tmp[65536];
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (len + k > cap)
            buf = realloc(buf, cap = (len + k) * 2);
        memcpy(buf + len, tmp, k);
        len += k;
    }
    fclose(f);
    *n = len;
    return buf;
}

/* Runs fn while collecting a CPU profile; decodes it into p. */
static void cpu_profile_of(void (*fn)(void *), void *arg, pp_profile *p) {
    char path[] = "/tmp/goro_cpuprof_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w+b");
    cr_assert_eq(goro_cpu_profile_start(f), 0);
    fn(arg);
    goro_cpu_profile_stop();
    fclose(f);
    size_t n;
    char *data = read_file(path, &n);
    unlink(path);
    cr_assert(pp_decode(data, n, p), "not a gzipped profile.proto (%zu bytes)", n);
    free(data);
}

/* ------------------------------------------------------------ CPU profile */

#define CPU_UNIT_NS (GORO_TEST_SANITIZED ? 250000000LL : 500000000LL)

static void burn_three_to_one(void *arg) {
    (void)arg;
    goro_waitgroup wg = {0};
    burn heavy = {3 * CPU_UNIT_NS, &wg}, light = {CPU_UNIT_NS, &wg};
    goro_waitgroup_add(&wg, 2);
    goro_go(pprof_fixture_heavy, &heavy);
    goro_go(pprof_fixture_light, &light);
    int64_t thread_ns = CPU_UNIT_NS;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pprof_fixture_thread, &thread_ns), 0);
    goro_waitgroup_wait(&wg);
    pthread_join(t, NULL);
}

GORO_TEST(pprof, cpu_profile_splits_by_function_and_label, .timeout = 120) {
    pp_profile p;
    cpu_profile_of(burn_three_to_one, NULL, &p);

    cr_assert_eq(p.ntypes, 2);
    cr_assert_str_eq(pp_str(&p, p.type[0]), "samples");
    cr_assert_str_eq(pp_str(&p, p.unit[0]), "count");
    cr_assert_str_eq(pp_str(&p, p.type[1]), "cpu");
    cr_assert_str_eq(pp_str(&p, p.unit[1]), "nanoseconds");
    cr_assert_str_eq(pp_str(&p, p.ptype), "cpu");
    cr_assert_eq(p.period, 10000000);
    cr_assert_gt(p.duration, 0);

    int64_t by_func[3] = {0}, by_label[2] = {0}, spin = 0, spin_orphans = 0, total = 0;
    for (size_t i = 0; i < p.ns; i++) {
        const pp_sample *s = &p.s[i];
        cr_assert_eq(s->nv, 2);
        cr_assert_eq(s->v[1], s->v[0] * 10000000);
        total += s->v[0];
        bool heavy = pp_frame_depth(&p, s, "pprof_fixture_heavy") >= 0;
        bool light = pp_frame_depth(&p, s, "pprof_fixture_light") >= 0;
        bool thread = pp_frame_depth(&p, s, "pprof_fixture_thread") >= 0;
        by_func[0] += heavy ? s->v[0] : 0;
        by_func[1] += light ? s->v[0] : 0;
        by_func[2] += thread ? s->v[0] : 0;
        const char *w = pp_label(&p, s, "worker");
        if (w && strcmp(w, "heavy") == 0)
            by_label[0] += s->v[0];
        if (w && strcmp(w, "light") == 0)
            by_label[1] += s->v[0];
        if (pp_frame_depth(&p, s, "pprof_fixture_spin") == 0) {
            /* the burning function keeps its callers below it */
            spin += s->v[0];
            if (!heavy && !light && !thread)
                spin_orphans += s->v[0];
        }
    }
    /* 100 Hz of 3 + 1 units of goroutines: 200 (150 + 50) samples, 100 when sanitized */
    int64_t want_light = CPU_UNIT_NS / 10000000;
    cr_log_info(
        "samples: total %lld heavy %lld light %lld thread %lld; labels %lld/%lld; spin %lld "
        "(%lld without callers)",
        (long long)total, (long long)by_func[0], (long long)by_func[1], (long long)by_func[2],
        (long long)by_label[0], (long long)by_label[1], (long long)spin, (long long)spin_orphans);
    cr_assert_gt(by_func[1], want_light / 2, "light: %lld samples", (long long)by_func[1]);
    double fr = (double)by_func[0] / (double)by_func[1];
    double lr = (double)by_label[0] / (double)by_label[1];
    cr_assert(fr > 2.7 && fr < 3.3, "by function %lld:%lld = %.2f, want 3 +- 10%%",
              (long long)by_func[0], (long long)by_func[1], fr);
    cr_assert(lr > 2.7 && lr < 3.3, "by label %lld:%lld = %.2f, want 3 +- 10%%",
              (long long)by_label[0], (long long)by_label[1], lr);
    /* the plain thread's unit shows too */
    cr_assert_gt(by_func[2], want_light / 2, "plain thread: %lld samples", (long long)by_func[2]);
    cr_assert_gt(spin, 0);
    cr_assert_eq(spin_orphans, 0, "%lld samples of pprof_fixture_spin lost their callers",
                 (long long)spin_orphans);
    pp_free(&p);
}

GORO_TEST(pprof, cpu_profile_start_errors, .timeout = 30) {
    cr_assert_eq(goro_cpu_profile_start(NULL), GORO_EINVAL);
    FILE *f = tmpfile();
    cr_assert_eq(goro_cpu_profile_start(f), 0);
    FILE *g = tmpfile();
    cr_assert_eq(goro_cpu_profile_start(g), GORO_EAGAIN);
    goro_cpu_profile_stop();
    goro_cpu_profile_stop(); /* not running: nothing */
    cr_assert_gt(ftell(f), 0, "the profile was written");
    /* and again */
    rewind(g);
    cr_assert_eq(goro_cpu_profile_start(g), 0);
    goro_cpu_profile_stop();
    fclose(f);
    fclose(g);
}

/* -------------------------------------------------- block and mutex profiles */

static void write_profile(int (*w)(FILE *, int), pp_profile *p) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert_eq(w(f, 0), 0);
    fclose(f);
    cr_assert(pp_decode(buf, n, p));
    free(buf);
}

/* The sample with the largest delay whose stack holds fn (-1 if none). */
static ssize_t biggest_with(const pp_profile *p, const char *fn) {
    ssize_t best = -1;
    for (size_t i = 0; i < p->ns; i++)
        if (pp_frame_depth(p, &p->s[i], fn) >= 0 && (best < 0 || p->s[i].v[1] > p->s[best].v[1]))
            best = (ssize_t)i;
    return best;
}

typedef struct recv_arg {
    goro_chan *c;
    goro_waitgroup *wg;
} recv_arg;

void pprof_fixture_receiver(void *arg) {
    recv_arg *a = arg;
    int v;
    goro_chan_recv(a->c, &v);
    goro_waitgroup_done(a->wg);
}

static void within(int64_t got, int64_t want, double tol, const char *what) {
    double r = (double)got / (double)want;
    cr_assert(r > 1 - tol && r < 1 + tol, "%s: %lld ns recorded, %lld ns measured", what,
              (long long)got, (long long)want);
}

GORO_TEST(pprof, block_profile_channel_receive, .timeout = 60) {
    goro_set_block_profile_rate(1);
    goro_waitgroup wg = {0};
    recv_arg a = {goro_chan_make(sizeof(int), 0), &wg};
    goro_waitgroup_add(&wg, 1);
    uint64_t id = goro_go(pprof_fixture_receiver, &a);
    goro_test_await_parked(id, GORO__WAIT_CHAN_RECV);
    int64_t t0 = goro_nanotime();
    goro_sleep(GORO_MS(50)); /* the wait being measured */
    int64_t held = goro_nanotime() - t0;
    int v = 1;
    goro_chan_send(a.c, &v);
    goro_waitgroup_wait(&wg);
    goro_set_block_profile_rate(0);

    pp_profile p;
    write_profile(goro_block_profile_write, &p);
    cr_assert_str_eq(pp_str(&p, p.type[0]), "contentions");
    cr_assert_str_eq(pp_str(&p, p.type[1]), "delay");
    cr_assert_str_eq(pp_str(&p, p.unit[1]), "nanoseconds");
    ssize_t i = biggest_with(&p, "pprof_fixture_receiver");
    cr_assert_geq(i, 0, "no block sample with pprof_fixture_receiver");
    /* the receiver's frame is the top one shown (goro's own frames hidden) */
    cr_assert_eq(pp_frame_depth(&p, &p.s[i], "pprof_fixture_receiver"), 0);
    cr_assert_geq(p.s[i].v[0], 1);
    within(p.s[i].v[1], held, 0.2, "channel receive");
    pp_free(&p);

    /* debug=1: Go's text */
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert_eq(goro_block_profile_write(f, 1), 0);
    fclose(f);
    cr_assert(strncmp(buf, "--- contention:\ncycles/second=1000000000\n", 41) == 0, "%s", buf);
    cr_assert_not_null(strstr(buf, "pprof_fixture_receiver+0x"), "%s", buf);
    free(buf);
    goro_chan_release(a.c);
}

typedef struct mutex_arg {
    goro_mutex mu;
    _Atomic int stage;
    _Atomic uint64_t waiter;
    _Atomic int64_t held; /* from the waiter's park to the unlock */
    goro_waitgroup wg;
} mutex_arg;

void pprof_fixture_holder(void *arg) {
    mutex_arg *a = arg;
    goro_mutex_lock(&a->mu);
    atomic_store(&a->stage, 1);
    while (atomic_load(&a->waiter) == 0)
        goro_yield();
    goro_test_await_parked(atomic_load(&a->waiter), GORO__WAIT_MUTEX);
    int64_t t0 = goro_nanotime();
    goro_sleep(GORO_MS(50)); /* the waiter waits meanwhile */
    atomic_store(&a->held, goro_nanotime() - t0);
    goro_mutex_unlock(&a->mu);
    goro_waitgroup_done(&a->wg);
}

void pprof_fixture_waiter(void *arg) {
    mutex_arg *a = arg;
    while (atomic_load(&a->stage) < 1)
        goro_yield();
    atomic_store(&a->waiter, goro_id());
    goro_mutex_lock(&a->mu);
    goro_mutex_unlock(&a->mu);
    goro_waitgroup_done(&a->wg);
}

GORO_TEST(pprof, mutex_profile_charges_the_unlocker, .timeout = 60) {
    cr_assert_eq(goro_set_mutex_profile_fraction(1), 0);
    cr_assert_eq(goro_set_mutex_profile_fraction(-1), 1);
    goro_set_block_profile_rate(1);
    mutex_arg *a = calloc(1, sizeof *a);
    goro_waitgroup_add(&a->wg, 2);
    goro_go(pprof_fixture_holder, a);
    goro_go(pprof_fixture_waiter, a);
    goro_waitgroup_wait(&a->wg);
    goro_set_mutex_profile_fraction(0);
    goro_set_block_profile_rate(0);
    int64_t waited = atomic_load(&a->held);

    pp_profile p;
    write_profile(goro_mutex_profile_write, &p);
    cr_assert_str_eq(pp_str(&p, p.ptype), "contentions");
    ssize_t i = biggest_with(&p, "pprof_fixture_holder");
    cr_assert_geq(i, 0, "no mutex sample charged to the holder");
    cr_assert_eq(pp_frame_depth(&p, &p.s[i], "pprof_fixture_holder"), 0);
    cr_assert_lt(biggest_with(&p, "pprof_fixture_waiter"), 0, "the waiter is never charged");
    within(p.s[i].v[1], waited, 0.2, "mutex contention");
    pp_free(&p);

    /* the block profile has the waiter's side */
    write_profile(goro_block_profile_write, &p);
    i = biggest_with(&p, "pprof_fixture_waiter");
    cr_assert_geq(i, 0, "no block sample for the waiter");
    within(p.s[i].v[1], waited, 0.2, "mutex wait (block profile)");
    pp_free(&p);
    free(a);
}

/* ---------------------------------------- profiling on under sanitizers */

typedef struct churn {
    goro_chan *ping, *pong;
    goro_mutex mu;
    goro_rwmutex rw;
    goro_cond cond;
    goro_sem sem;
    int counter;
    goro_waitgroup wg;
} churn;

static void churn_ponger(void *arg) {
    churn *c = arg;
    int v;
    while (goro_chan_recv(c->ping, &v))
        goro_chan_send(c->pong, &v);
    goro_waitgroup_done(&c->wg);
}

static void churn_locker(void *arg) {
    churn *c = arg;
    for (int i = 0; i < 2000; i++) {
        goro_mutex_lock(&c->mu);
        c->counter++;
        if (i % 100 == 0)
            goro_cond_broadcast(&c->cond);
        goro_mutex_unlock(&c->mu);
        goro_rwmutex_rlock(&c->rw);
        goro_rwmutex_runlock(&c->rw);
        goro_sem_acquire(&c->sem, 1);
        goro_sem_release(&c->sem, 1);
    }
    goro_waitgroup_done(&c->wg);
}

/* Channels, select and every sync primitive while all three profiles
   record (run in the ASan and TSan suites too). */
GORO_TEST(pprof, profiling_on_under_chan_and_sync_load, .timeout = 120) {
    FILE *f = tmpfile();
    cr_assert_eq(goro_cpu_profile_start(f), 0);
    goro_set_block_profile_rate(1);
    goro_set_mutex_profile_fraction(1);
    churn *c = calloc(1, sizeof *c);
    c->ping = goro_chan_make(sizeof(int), 0);
    c->pong = goro_chan_make(sizeof(int), 0);
    goro_sem_init(&c->sem, 1);
    goro_waitgroup_add(&c->wg, 4);
    goro_go(churn_ponger, c);
    for (int i = 0; i < 3; i++)
        goro_go(churn_locker, c);
    goro_chan *never = goro_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3000; i++) {
        int v = i, w;
        goro_case cs[2] = {{c->ping, GORO_SEND, &v, false}, {never, GORO_RECV, &w, false}};
        cr_assert_eq(goro_select(cs, 2, GORO_FOREVER), 0);
        goro_chan_recv(c->pong, &w);
        cr_assert_eq(w, i);
    }
    goro_chan_close(c->ping);
    goro_waitgroup_wait(&c->wg);
    goro_mutex_lock(&c->mu);
    cr_assert_eq(c->counter, 6000);
    goro_mutex_unlock(&c->mu);
    goro_set_block_profile_rate(0);
    goro_set_mutex_profile_fraction(0);
    goro_cpu_profile_stop();
    cr_assert_gt(ftell(f), 0);
    fclose(f);

    pp_profile p;
    write_profile(goro_block_profile_write, &p);
    cr_assert_gt(p.ns, 0, "waits were recorded");
    pp_free(&p);
    goro_chan_release(never);
    goro_chan_release(c->ping);
    goro_chan_release(c->pong);
    free(c);
}

/* A child forked while a profile runs has none running (no writer thread,
   no timers) and can start its own. */
GORO_TEST(pprof, cpu_profile_across_fork, .timeout = 60) {
    goro_test_skip_threaded_fork();
    if (GORO_TEST_SANITIZED)
        cr_skip("a child forked from threads may inherit the sanitizer allocator's lock held");
    FILE *f = tmpfile();
    cr_assert_eq(goro_cpu_profile_start(f), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        goro_cpu_profile_stop(); /* nothing running here: returns at once */
        FILE *g = tmpfile();
        int rc = goro_cpu_profile_start(g);
        goro_cpu_profile_stop();
        _exit(rc == 0 && ftell(g) > 0 ? 0 : 1);
    }
    int st = 0;
    if (!goro_test_wait_until(waitpid(pid, &st, WNOHANG) == pid, GORO_SEC(30))) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("the forked child hung");
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    goro_cpu_profile_stop();
    cr_assert_gt(ftell(f), 0);
    fclose(f);
}
