/*
 * goro_bench_pool - pools and bounded spawning.
 *
 *   GOROMAXPROCS=2 taskset -c 0,1 goro_bench_pool pool_process limiter
 *
 * pool_process: gobench's tunny-style pool scenario (pool of NumCPU workers,
 * 64 caller goroutines; trivial work, then ~1 us of work calibrated by time
 * with the same xorshift loop), on goro_pool_new_func.
 *
 * limiter: 1,000,000 tasks of ~1 us through a limit of 1,000, submitted from
 * one goroutine; time per task and peak RSS. Go's twin is the channel-token
 * pattern in bench/go/gobench/limiter.go (a buffered channel of 1,000
 * tokens, one goroutine per task, AsyncGoForHandle-style). Three goro
 * variants:
 *   limiter            goro_limiter_go + goro_limiter_wait
 *   limiter_chantoken  the Go code ported: goro_chan tokens + goro_go + waitgroup
 *   limiter_raw        no limit at all: goro_go per task + waitgroup
 * Peak RSS is VmHWM after resetting it (clear_refs) before each rep; the first
 * rep runs in a process that has not run tasks yet (peak_rss_first_bytes).
 */
#include "harness.h"

/* ------------------------------------------------------------------- work */

HB_NOIPA static int spin(long k) {
    uint64_t x = 88172645463325252ULL;
    for (long i = 0; i < k; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return (int)(x & 1);
}

/* The spin() iteration count that takes ~1 us, and the measured ns of one call. */
static long spin_for_1us(double *work_ns) {
    const long probe = 1 << 22;
    spin(probe);
    int64_t best = INT64_MAX;
    for (int r = 0; r < 5; r++) {
        int64_t t0 = hb_now();
        spin(probe);
        int64_t d = hb_now() - t0;
        if (d < best)
            best = d;
    }
    long k = (long)((double)probe * 1000 / (double)best);
    const long calls = 100000;
    int64_t t0 = hb_now();
    long s = 0;
    for (long i = 0; i < calls; i++)
        s += spin(k);
    hb_sink += s;
    *work_ns = (double)(hb_now() - t0) / (double)calls;
    return k;
}

static long spin_k;
static double spin_ns;

static void ensure_spin(void) {
    if (spin_k == 0)
        spin_k = spin_for_1us(&spin_ns);
}

/* ----------------------------------------------------------- pool_process */

static void *fn_trivial(void *payload, void *ctx) {
    (void)ctx;
    return (void *)((intptr_t)payload + 1);
}

static void *fn_work(void *payload, void *ctx) {
    (void)ctx;
    return (void *)((intptr_t)payload + spin(spin_k));
}

typedef struct pool_caller {
    goro_pool *p;
    long cnt;
    goro_waitgroup *wg;
} pool_caller;

static _Atomic int64_t pool_sink;

static void pool_caller_fn(void *arg) {
    pool_caller *c = arg;
    intptr_t s = 0;
    for (long i = 0; i < c->cnt; i++) {
        void *res;
        int err = goro_pool_process(c->p, (void *)(intptr_t)i, &res);
        if (err) {
            fprintf(stderr, "goro_pool_process: %s\n", goro_strerror(err));
            exit(1);
        }
        s += (intptr_t)res;
    }
    atomic_fetch_add(&pool_sink, (int64_t)s);
    goro_waitgroup_done(c->wg);
}

static int64_t pool_run(int64_t n, void *ctx) {
    void *(*fn)(void *, void *) = (void *(*)(void *, void *))ctx;
    enum { CALLERS = 64 };
    goro_pool *p = goro_pool_new_func(hb_numcpu(), fn, NULL);
    if (!p)
        hb_die("goro_pool_new_func");
    goro_waitgroup wg = {0};
    pool_caller callers[CALLERS];
    goro_waitgroup_add(&wg, CALLERS);
    int64_t t0 = hb_now();
    for (int c = 0; c < CALLERS; c++) {
        long cnt = (long)n / CALLERS;
        if (c == CALLERS - 1)
            cnt = (long)n - ((long)n / CALLERS) * (CALLERS - 1);
        callers[c] = (pool_caller){p, cnt, &wg};
        hb_go(pool_caller_fn, &callers[c]);
    }
    goro_waitgroup_wait(&wg);
    int64_t d = hb_now() - t0;
    goro_pool_free(p);
    return d;
}

static void bench_pool(void) {
    hb_kv kv = {0};
    hb_kv_add(&kv, "pool_size", "%d", hb_numcpu());
    hb_kv_add(&kv, "callers", "64");
    hb_simple("pool_process/trivial", pool_run, (void *)fn_trivial, &kv);
    ensure_spin();
    hb_kv_add(&kv, "spin_iters", "%ld", spin_k);
    hb_kv_add(&kv, "work_ns_measured", "%.1f", spin_ns);
    hb_simple("pool_process/work1us", pool_run, (void *)fn_work, &kv);
}

/* ---------------------------------------------------------------- limiter */

enum { LIMIT = 1000 };

static goro_waitgroup lim_wg;
static goro_chan *lim_tokens;

static void task_limiter(void *arg) {
    (void)arg;
    hb_sink += spin(spin_k);
}

/* tokens <- struct{}{}; go func() { defer func() { <-tokens }(); handle() }() */
static void task_chantoken(void *arg) {
    (void)arg;
    hb_sink += spin(spin_k);
    goro_chan_recv(lim_tokens, NULL);
    goro_waitgroup_done(&lim_wg);
}

static void task_raw(void *arg) {
    (void)arg;
    hb_sink += spin(spin_k);
    goro_waitgroup_done(&lim_wg);
}

static int64_t run_limiter(long n) {
    goro_limiter *l = goro_limiter_new(LIMIT, NULL);
    if (!l)
        hb_die("goro_limiter_new");
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++) {
        int err = goro_limiter_go(l, task_limiter, NULL);
        if (err) {
            fprintf(stderr, "goro_limiter_go: %s\n", goro_strerror(err));
            exit(1);
        }
    }
    goro_limiter_wait(l);
    int64_t d = hb_now() - t0;
    goro_limiter_free(l);
    return d;
}

static int64_t run_chantoken(long n) {
    lim_tokens = goro_chan_make(0, LIMIT);
    if (!lim_tokens)
        hb_die("goro_chan_make");
    memset(&lim_wg, 0, sizeof lim_wg);
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++) {
        goro_chan_send(lim_tokens, NULL);
        goro_waitgroup_add(&lim_wg, 1);
        hb_go(task_chantoken, NULL);
    }
    goro_waitgroup_wait(&lim_wg);
    int64_t d = hb_now() - t0;
    goro_chan_release(lim_tokens);
    return d;
}

static int64_t run_raw(long n) {
    memset(&lim_wg, 0, sizeof lim_wg);
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++) {
        goro_waitgroup_add(&lim_wg, 1);
        hb_go(task_raw, NULL);
    }
    goro_waitgroup_wait(&lim_wg);
    return hb_now() - t0;
}

static void limiter_variant(const char *name, int64_t (*run)(long n), bool limited) {
    long n = hb_nflag > 0 ? hb_nflag : 1000000;
    ensure_spin();
    double ns[HB_MAXREPS] = {0}, peak[HB_MAXREPS] = {0};
    int64_t rss_before = hb_rss();
    bool reset_ok = true;
    for (int r = 0; r < hb_reps; r++) {
        reset_ok = reset_ok && hb_reset_peak_rss() == 0;
        int64_t d = run(n);
        ns[r] = (double)d / (double)n;
        peak[r] = (double)hb_status_bytes("VmHWM");
    }
    double maxpeak = 0;
    for (int r = 0; r < hb_reps; r++)
        if (peak[r] > maxpeak)
            maxpeak = peak[r];
    double med = hb_median(ns, hb_reps);
    hb_kv kv = {0};
    hb_kv_add(&kv, "wall_ms", "%.3f", med * (double)n / 1e6);
    hb_kv_add(&kv, "peak_rss_bytes", "%.0f", maxpeak);
    hb_kv_add(&kv, "peak_rss_first_bytes", "%.0f", peak[0]);
    hb_kv_add(&kv, "rss_before", "%lld", (long long)rss_before);
    hb_kv_add(&kv, "rss_after", "%lld", (long long)hb_rss());
    hb_kv_add(&kv, "peak_reset", "%s", reset_ok ? "clear_refs" : "none");
    hb_kv_add(&kv, "spin_iters", "%ld", spin_k);
    hb_kv_add(&kv, "work_ns_measured", "%.1f", spin_ns);
    char label[96];
    if (limited)
        snprintf(label, sizeof label, "%s/n%ld/limit%d", name, n, LIMIT);
    else
        snprintf(label, sizeof label, "%s/n%ld/nolimit", name, n);
    hb_emit(label, med, n, ns, hb_reps, &kv);
}

static void bench_limiter(void) { limiter_variant("limiter", run_limiter, true); }

static void bench_limiter_chantoken(void) {
    limiter_variant("limiter_chantoken", run_chantoken, true);
}

static void bench_limiter_raw(void) { limiter_variant("limiter_raw", run_raw, false); }

/* ------------------------------------------------------------------ main */

static const hb_bench benches[] = {
    {"pool_process", bench_pool, "goro_pool (size NumCPU), 64 callers; trivial and ~1us work"},
    {"limiter", bench_limiter,
     "-n (1000000) tasks of ~1us through goro_limiter of 1000; time, peak RSS"},
    {"limiter_chantoken", bench_limiter_chantoken,
     "the same through a goro_chan of 1000 tokens + goro_go"},
    {"limiter_raw", bench_limiter_raw, "the same with no limit: goro_go per task"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) { return hb_main(argc, argv, benches); }
