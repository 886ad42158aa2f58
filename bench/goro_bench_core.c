/*
 * goro_bench_core - goroutine benchmarks: the scenarios of gobench
 * (bench/go/gobench/main.go) for spawning, yielding, timers,
 * many parked goroutines, goroutine ids and counts.
 *
 *   GOROMAXPROCS=1 taskset -c 0 goro_bench_core spawn_join yield
 *   goro_bench_core list
 *
 * Each scenario is a line-by-line port of its Go twin; where C differs (no
 * closures, no GC) the comment says what was done instead.
 */
#include "harness.h"

#include <sys/mman.h>

/* ------------------------------------------------------------ spawn_join */

static void wg_done_fn(void *arg) { goro_waitgroup_done(arg); }

/* go func() { wg.Done() }(); wg.Wait(), serially. */
static int64_t spawn_join_run(int64_t n, void *ctx) {
    (void)ctx;
    goro_waitgroup wg = {0};
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++) {
        goro_waitgroup_add(&wg, 1);
        hb_go(wg_done_fn, &wg);
        goro_waitgroup_wait(&wg);
    }
    return hb_now() - t0;
}

static void bench_spawn_join(void) { hb_simple("spawn_join", spawn_join_run, NULL, NULL); }

/* The same body on the first thread, a pthread, or in goro_main (the name's
   suffix says which: harness.h). */
static void bench_spawn_join_placed(void) { hb_simple(hb_current, spawn_join_run, NULL, NULL); }

/* ----------------------------------------------------------- spawn_batch */

/* spawn 1000 empty goroutines, then wait for all (per goroutine). */
static int64_t spawn_batch_run(int64_t n, void *ctx) {
    (void)ctx;
    const int64_t batch = 1000;
    goro_waitgroup wg = {0};
    int64_t t0 = hb_now();
    for (int64_t done = 0; done < n;) {
        int64_t k = batch;
        if (n - done < k)
            k = n - done;
        goro_waitgroup_add(&wg, (int)k);
        for (int64_t i = 0; i < k; i++)
            hb_go(wg_done_fn, &wg);
        goro_waitgroup_wait(&wg);
        done += k;
    }
    return hb_now() - t0;
}

static void bench_spawn_batch(void) { hb_simple("spawn_batch1000", spawn_batch_run, NULL, NULL); }

/* ----------------------------------------------------------------- yield */

typedef struct yield_arg {
    int64_t n;
    goro_waitgroup *wg;
} yield_arg;

static void yielder(void *arg) {
    yield_arg *a = arg;
    for (int64_t i = 0; i < a->n; i++)
        goro_yield();
    goro_waitgroup_done(a->wg);
}

static int64_t yield_run(int64_t n, void *ctx) {
    (void)ctx;
    goro_waitgroup wg = {0};
    yield_arg a = {n, &wg};
    goro_waitgroup_add(&wg, 2);
    int64_t t0 = hb_now();
    for (int g = 0; g < 2; g++)
        hb_go(yielder, &a);
    goro_waitgroup_wait(&wg);
    /* 2n yields = 2n switches */
    return (hb_now() - t0) / 2;
}

static void bench_yield(void) { hb_simple("yield", yield_run, NULL, NULL); }

/* ---------------------------------------------------------------- timers */

#define TIMER_SLEEP GORO_MS(10)
static double *timer_over;
static goro_waitgroup timer_wg;

static void timer_sleeper(void *arg) {
    long i = (long)(intptr_t)arg;
    int64_t s = goro_nanotime();
    goro_sleep(TIMER_SLEEP);
    timer_over[i] = (double)(goro_nanotime() - s - TIMER_SLEEP);
    goro_waitgroup_done(&timer_wg);
}

static int64_t timers_once(long n) {
    memset(&timer_wg, 0, sizeof timer_wg);
    goro_waitgroup_add(&timer_wg, (int)n);
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++)
        hb_go(timer_sleeper, (void *)(intptr_t)i);
    goro_waitgroup_wait(&timer_wg);
    return hb_now() - t0;
}

static void bench_timers(void) {
    long n = hb_nflag > 0 ? hb_nflag : 100000;
    timer_over = calloc((size_t)n, sizeof(double));
    timers_once(n); /* warm-up */
    double walls[HB_MAXREPS], meds[HB_MAXREPS], p99s[HB_MAXREPS], maxs[HB_MAXREPS];
    for (int r = 0; r < hb_reps; r++) {
        int64_t w = timers_once(n);
        qsort(timer_over, (size_t)n, sizeof(double), hb_cmp_double);
        walls[r] = (double)w;
        meds[r] = timer_over[n / 2];
        p99s[r] = timer_over[n * 99 / 100];
        maxs[r] = timer_over[n - 1];
    }
    double wall = hb_median(walls, hb_reps);
    hb_kv kv = {0};
    hb_kv_add(&kv, "wall_ms", "%.3f", wall / 1e6);
    hb_kv_add_reps(&kv, "wall_ms_reps", walls, hb_reps, 1e-6);
    hb_kv_add(&kv, "overshoot_median_us", "%.1f", hb_median(meds, hb_reps) / 1e3);
    hb_kv_add_reps(&kv, "overshoot_median_us_reps", meds, hb_reps, 1e-3);
    hb_kv_add(&kv, "overshoot_p99_us", "%.1f", hb_median(p99s, hb_reps) / 1e3);
    hb_kv_add_reps(&kv, "overshoot_p99_us_reps", p99s, hb_reps, 1e-3);
    hb_kv_add(&kv, "overshoot_max_us", "%.1f", hb_median(maxs, hb_reps) / 1e3);
    char label[64];
    snprintf(label, sizeof label, "timers/n%ld_sleep10ms", n);
    hb_emit(label, wall / (double)n, n, NULL, 0, &kv);
    free(timer_over);
    timer_over = NULL;
}

/* ---------------------------------------------------- spawn_many_blocked */

typedef struct round_res {
    int64_t loop, all, down;
} round_res;

typedef struct round_mem {
    int64_t rss, vm;
    int count;
} round_mem;

static round_res spawn_round(long n, round_mem *mem) {
    hb_parked p = {0};
    p.ch = goro_chan_make(0, 0);
    if (!p.ch)
        hb_die("goro_chan_make");
    goro_waitgroup_add(&p.wg, (int)n);
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++)
        hb_go(parkA, &p);
    int64_t t_loop = hb_now() - t0;
    while (atomic_load(&p.started) < n)
        goro_yield();
    int64_t t_all = hb_now() - t0;
    goro_sleep(GORO_MS(20));
    if (mem) {
        mem->rss = hb_rss();
        mem->vm = hb_status_bytes("VmSize");
        mem->count = goro_count();
    }
    int64_t t1 = hb_now();
    goro_chan_close(p.ch);
    goro_waitgroup_wait(&p.wg);
    round_res r = {t_loop, t_all, hb_now() - t1};
    goro_chan_release(p.ch);
    return r;
}

static void bench_spawn_many_blocked(void) {
    long n = hb_nflag > 0 ? hb_nflag : 100000;
    /* small warm-up of the spawn/park/exit path (Go also runs GC twice here) */
    hb_stop_parked(hb_start_parked(1000, false));
    goro_sleep(GORO_MS(50));
    int64_t rss0 = hb_rss();
    int64_t vm0 = hb_status_bytes("VmSize");

    /* round 1 ("cold"): stacks and records come from memory never touched;
       round 2 ("warm"): the same N again after teardown, reusing them. */
    round_mem m1 = {0};
    round_res cold = spawn_round(n, &m1);
    goro_sleep(GORO_MS(20));
    round_res warm = spawn_round(n, NULL);
    int64_t rss2 = hb_rss();

#define PER(d) ((double)(d) / (double)n)
#define MS(d) ((double)(d) / 1e6)
    hb_kv kv = {0};
    hb_kv_add(&kv, "cold_spawn_loop_ns_per_g", "%.1f", PER(cold.loop));
    hb_kv_add(&kv, "cold_all_parked_ms", "%.3f", MS(cold.all));
    hb_kv_add(&kv, "rss_bytes_per_g", "%.1f", PER(m1.rss - rss0));
    hb_kv_add(&kv, "rss_before", "%lld", (long long)rss0);
    hb_kv_add(&kv, "rss_parked", "%lld", (long long)m1.rss);
    hb_kv_add(&kv, "vm_bytes_per_g", "%.1f", PER(m1.vm - vm0));
    hb_kv_add(&kv, "num_goroutine", "%d", m1.count);
    hb_kv_add(&kv, "cold_teardown_ns_per_g", "%.1f", PER(cold.down));
    hb_kv_add(&kv, "cold_teardown_ms", "%.3f", MS(cold.down));
    hb_kv_add(&kv, "warm_spawn_ns_per_g", "%.1f", PER(warm.all));
    hb_kv_add(&kv, "warm_spawn_loop_ns_per_g", "%.1f", PER(warm.loop));
    hb_kv_add(&kv, "warm_teardown_ns_per_g", "%.1f", PER(warm.down));
    hb_kv_add(&kv, "rss_after_teardown", "%lld", (long long)rss2);
    char label[64];
    snprintf(label, sizeof label, "spawn_many_blocked/n%ld", n);
    hb_emit(label, PER(cold.all), n, NULL, 0, &kv);
#undef PER
#undef MS
}

/* ----------------------------------------------------- machine_pagefault */

static void bench_pagefault(void) {
    const size_t size = (size_t)256 << 20;
    double times[HB_MAXREPS];
    int nt = 0;
    for (int r = 0; r < 1 + hb_reps; r++) {
        volatile char *mem =
            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            hb_die("mmap");
        int64_t t0 = hb_now();
        for (size_t i = 0; i < size; i += 4096)
            mem[i] = 1;
        int64_t d = hb_now() - t0;
        munmap((void *)mem, size);
        if (r > 0)
            times[nt++] = (double)d / (double)(size / 4096);
    }
    hb_kv kv = {0};
    hb_kv_add(&kv, "unit", "ns_per_4KiB_page_first_touch");
    hb_emit("machine_pagefault/256MiB", hb_median(times, nt), (int64_t)(size / 4096), times, nt,
            &kv);
}

/* ------------------------------------------------------------------ goid */

static int64_t goid_run(int64_t n, void *ctx) {
    (void)ctx;
    uint64_t s = 0;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++)
        s += goro_id();
    int64_t d = hb_now() - t0;
    hb_sink += (int64_t)s;
    return d;
}

static void bench_goid(void) {
    if (goro_id() == 0) {
        fprintf(stderr, "goro_id() returned 0 in a goroutine\n");
        exit(1);
    }
    hb_kv kv = {0};
    hb_kv_add(&kv, "api", "goro_id");
    hb_simple("goid", goid_run, NULL, &kv);
}

/* --------------------------------------------------------- num_goroutine */

static int64_t count_run(int64_t n, void *ctx) {
    (void)ctx;
    int64_t s = 0;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++)
        s += goro_count();
    int64_t d = hb_now() - t0;
    hb_sink += s;
    return d;
}

static void bench_num_goroutine(void) {
    long n = hb_nflag > 0 ? hb_nflag : 10000;
    hb_parked *p = hb_start_parked(n, false);
    hb_kv kv = {0};
    hb_kv_add(&kv, "num_goroutine", "%d", goro_count());
    char label[64];
    snprintf(label, sizeof label, "num_goroutine/n%ld", n);
    hb_simple(label, count_run, NULL, &kv);
    hb_stop_parked(p);
}

/* ------------------------------------------------------------------ main */

static const hb_bench benches[] = {
    {"spawn_join", bench_spawn_join,
     "spawn empty goroutine + WaitGroup wait, serially; ns per goroutine"},
    {"spawn_join_main", bench_spawn_join_placed, "the same, body in main() (goroutine 1)"},
    {"spawn_join_thread", bench_spawn_join_placed, "the same, body on a pthread_create thread"},
    {"spawn_join_gomain", bench_spawn_join_placed, "the same, body in goro_main() from main()"},
    {"spawn_batch", bench_spawn_batch,
     "spawn 1000 empty goroutines then wait for all; ns per goroutine"},
    {"spawn_many_blocked", bench_spawn_many_blocked,
     "-n N goroutines blocked on one chan: spawn time, RSS/goroutine, teardown (cold, then warm "
     "reuse)"},
    {"machine_pagefault", bench_pagefault,
     "first-touch cost of fresh anonymous memory, ns per 4 KiB page"},
    {"yield", bench_yield,
     "goro_yield ping-pong between 2 goroutines; ns per switch (run with GOROMAXPROCS=1)"},
    {"timers", bench_timers, "-n N goroutines each goro_sleep(10ms) once; wall and overshoot"},
    {"goid", bench_goid, "goro_id()"},
    {"num_goroutine", bench_num_goroutine, "goro_count() with -n (10000) parked goroutines"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) { return hb_main(argc, argv, benches); }
