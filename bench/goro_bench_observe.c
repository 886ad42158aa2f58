/*
 * goro_bench_observe - seeing goroutines: the goroutine profile with many
 * parked goroutines, and the goroutine id the way Go users get it (format
 * the current goroutine's stack and parse the number). Scenarios of gobench
 * (bench/go/gobench/main.go) ported line by line.
 *
 *   GOROMAXPROCS=2 taskset -c 0,1 goro_bench_observe profile_dump goid_stackparse
 *
 * profile_dump adds what Go's does not measure: max_pause_us, the longest
 * time a goroutine that keeps yielding on the other processor could not run
 * while dumps were being written (see spinner.h), next to spin_baseline_us,
 * the same spinner's longest gap with no dump running.
 */
#include "harness.h"
#include "dump.h"

/* ---------------------------------------------------------- goid_stackparse */

/* The widely copied hack: the id from the header "goroutine N [...". */
HB_NOIPA static uint64_t get_gid(void) {
    char b[64];
    size_t n = goro_stack(b, sizeof b, false);
    if (n > sizeof b)
        n = sizeof b;
    const char *pre = "goroutine ";
    size_t pl = strlen(pre);
    if (n < pl || memcmp(b, pre, pl) != 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = pl; i < n && b[i] != ' '; i++) {
        if (b[i] < '0' || b[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(b[i] - '0');
    }
    return v;
}

static int64_t goid_parse_run(int64_t n, void *ctx) {
    (void)ctx;
    uint64_t s = 0;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++)
        s += get_gid();
    int64_t d = hb_now() - t0;
    hb_sink += (int64_t)s;
    return d;
}

/* Frames in the current goroutine's trace, as goro_stack prints it. */
HB_NOIPA static int count_frames(void) {
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    size_t n = goro_stack(buf, cap, false);
    if (n >= cap)
        n = cap - 1;
    buf[n] = 0;
    int frames = 0;
    for (char *p = buf; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (*p == '\t')
            frames++;
    }
    free(buf);
    return frames;
}

typedef struct shallow {
    double ns;
    goro_chan *done;
} shallow;

static void shallow_goroutine(void *arg) {
    shallow *s = arg;
    double all[HB_MAXREPS];
    s->ns = hb_measure(goid_parse_run, NULL, NULL, all);
    goro_chan_send(s->done, NULL);
}

static void bench_goid_stackparse(void) {
    uint64_t got = get_gid(), want = goro_id();
    if (got == 0 || got != want) {
        fprintf(stderr, "goid_stackparse: parsed %llu, goro_id() is %llu\n",
                (unsigned long long)got, (unsigned long long)want);
        exit(1);
    }
    /* a fresh goroutine whose stack is get_gid <- loop <- hb_measure <- entry */
    shallow sh = {0, goro_chan_make(0, 0)};
    hb_go(shallow_goroutine, &sh);
    goro_chan_recv(sh.done, NULL);
    goro_chan_release(sh.done);
    /* count_frames here sees [count_frames, bench_goid_stackparse, ...];
       get_gid in the measured loop sits under [get_gid, goid_parse_run,
       hb_measure, hb_simple] instead of count_frames. */
    int depth = count_frames() - 1 + 4;
    hb_kv kv = {0};
    hb_kv_add(&kv, "caller_depth", "%d", depth);
    hb_kv_add(&kv, "shallow_goroutine_ns", "%.1f", sh.ns);
    hb_kv_add(&kv, "note", "goro_id_is_the_api");
    hb_simple("goid_stackparse", goid_parse_run, NULL, &kv);
}

/* ------------------------------------------------------------ profile_dump */

static void bench_profile_dump(void) {
    long ns[2] = {10000, 100000};
    int nn = 2;
    if (hb_nflag > 0) {
        ns[0] = hb_nflag;
        nn = 1;
    }
    for (int i = 0; i < nn; i++) {
        hb_parked *p = hb_start_parked(ns[i], true);
        dump_levels("profile_dump", goro_profile_write, ns[i],
                    distinct_records(goro_profile_write));
        hb_stop_parked(p);
    }
}

/* ------------------------------------------------------------------ main */

static const hb_bench benches[] = {
    {"goid_stackparse", bench_goid_stackparse,
     "goroutine id by parsing goro_stack (what Go users do)"},
    {"profile_dump", bench_profile_dump,
     "goro_profile_write debug 0/1/2, n=10000,100000 over 3 stacks; time and longest pause"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) { return hb_main(argc, argv, benches); }
