/*
 * goro_bench_leak - leak checks: gobench's leak_check scenario (a goleak-style
 * capture and parse with -n goroutines alive) and the provable-leak profile
 * over many goroutines.
 *
 *   GOROMAXPROCS=2 taskset -c 0,1 goro_bench_leak -n 1000 leak_check
 *   GOROMAXPROCS=2 taskset -c 0,1 goro_bench_leak leak_profile
 *
 * leak_check: Go's number is one goleak pass: runtime.Stack(all) into a
 * buffer doubled from 64 KiB until it fits, parsed into records. Ours is one
 * goro_leak_verify_none pass that finds nothing, i.e. the same capture, parse
 * and filter (goleak.VerifyNone with IgnoreTopFunction for the parked
 * goroutines' top functions and for the main thread waiting on the bench).
 * Also reported: the raw capture costs, and leaktest's mark + check.
 */
#include "dump.h"

static const char *ignore_top[] = {"parkA", "parkB2", "parkC3", "hb_main", "main", NULL};

static int64_t verify_run(int64_t n, void *ctx) {
    const goro_leak_opts *o = ctx;
    int64_t bad = 0;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++)
        bad += goro_leak_verify_none(o, NULL);
    int64_t d = hb_now() - t0;
    hb_sink += bad;
    return d;
}

static int64_t mark_check_run(int64_t n, void *ctx) {
    const goro_leak_opts *o = ctx;
    int64_t bad = 0;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++) {
        goro_leak_mark *m = goro_leak_mark_now();
        bad += goro_leak_check(m, o, NULL);
        goro_leak_mark_free(m);
    }
    int64_t d = hb_now() - t0;
    hb_sink += bad;
    return d;
}

/* goleak's capture: start at 64 KiB and double until the dump fits. */
static size_t capture_all(char **out) {
    for (size_t i = 64 * 1024;; i *= 2) {
        char *buf = malloc(i);
        size_t n = goro_stack(buf, i, true);
        if (n < i) {
            *out = buf;
            return n;
        }
        free(buf);
    }
}

static int64_t capture_run(int64_t n, void *ctx) {
    (void)ctx;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++) {
        char *b;
        hb_sink += (int64_t)capture_all(&b);
        free(b);
    }
    return hb_now() - t0;
}

typedef struct presized {
    char *buf;
    size_t len;
} presized;

static int64_t presized_run(int64_t n, void *ctx) {
    presized *p = ctx;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++)
        hb_sink += (int64_t)goro_stack(p->buf, p->len, true);
    return hb_now() - t0;
}

static void bench_leak_check(void) {
    long n = hb_nflag > 0 ? hb_nflag : 1000;
    hb_parked *p = hb_start_parked(n, true);

    char *dump;
    size_t dump_bytes = capture_all(&dump);
    int records = 0, chan_recv = 0;
    for (char *line = dump; line && line < dump + dump_bytes;) {
        char *nl = memchr(line, '\n', (size_t)(dump + dump_bytes - line));
        if (strncmp(line, "goroutine ", 10) == 0) {
            records++;
            char *br = memchr(line, '[', nl ? (size_t)(nl - line) : strlen(line));
            if (br && strncmp(br, "[chan receive", 13) == 0)
                chan_recv++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(dump);

    goro_leak_opts o = {.timeout_ns = GORO_MS(1), .ignore_top_functions = ignore_top};
    /* sanity: the check must pass, or the timing would include its retries */
    char *rep = NULL;
    size_t replen = 0;
    FILE *rf = open_memstream(&rep, &replen);
    int found = goro_leak_verify_none(&o, rf);
    fclose(rf);
    if (found != 0)
        fprintf(stderr,
                "leak_check: goro_leak_verify_none found %d with the parked goroutines "
                "ignored:\n%.4000s\n",
                found, rep);
    free(rep);

    double all[HB_MAXREPS];
    double cap_med = hb_measure(capture_run, NULL, NULL, all);
    presized ps = {malloc(2 * dump_bytes + 64 * 1024), 2 * dump_bytes + 64 * 1024};
    double pre_med = hb_measure(presized_run, &ps, NULL, all);
    free(ps.buf);
    goro_leak_opts o_mark = {.timeout_ns = GORO_MS(1)};
    double mark_med = hb_measure(mark_check_run, &o_mark, NULL, all);

    hb_kv kv = {0};
    hb_kv_add(&kv, "records", "%d", records);
    hb_kv_add(&kv, "chan_receive_records", "%d", chan_recv);
    hb_kv_add(&kv, "dump_bytes", "%zu", dump_bytes);
    hb_kv_add(&kv, "capture_only_ns", "%.1f", cap_med);
    hb_kv_add(&kv, "capture_presized_buf_ns", "%.1f", pre_med);
    hb_kv_add(&kv, "leaktest_mark_check_ns", "%.1f", mark_med);
    hb_kv_add(&kv, "verify_found", "%d", found);
    char label[64];
    snprintf(label, sizeof label, "leak_check/n%ld", n);
    hb_simple(label, verify_run, &o, &kv);
    hb_stop_parked(p);
}

/* ------------------------------------------------------------ leak_profile */

/* A goroutine that waits on a channel only it holds: provably leaked. */
HB_NOIPA static void leaked_receiver(void *arg) {
    goro_chan *c = arg;
    goro_chan_recv(c, NULL);
    HB_NO_TAILCALL();
}

static void bench_leak_profile(void) {
    long n = hb_nflag > 0 ? hb_nflag : 100000;
    const long nleak = 1000;
    /* n goroutines that can still be woken (the bench holds their channel,
       an unknown holder) and nleak that cannot. The leaked ones stay. */
    hb_parked *p = hb_start_parked(n, true);
    for (long i = 0; i < nleak; i++) {
        goro_chan *c = goro_chan_make(0, 0);
        if (!c)
            hb_die("goro_chan_make");
        goro_chan *holds[2] = {c, NULL};
        goro_opts opts = {.holds = holds};
        if (goro_go_opts(&opts, leaked_receiver, c) == 0)
            hb_die("goro_go_opts");
        goro_chan_release(c);
    }
    goro_sleep(GORO_MS(20));
    char what[64];
    snprintf(what, sizeof what, "leak_profile/leaked%ld", nleak);
    dump_levels(what, goro_leak_profile_write, n + nleak,
                distinct_records(goro_leak_profile_write));
    hb_stop_parked(p);
}

/* ------------------------------------------------------------------ main */

static const hb_bench benches[] = {
    {"leak_check", bench_leak_check,
     "goro_leak_verify_none (goleak-like) with -n (1000) goroutines alive"},
    {"leak_profile", bench_leak_profile,
     "goro_leak_profile_write debug 0/1/2 over -n (100000) goroutines + 1000 leaked; time and "
     "longest pause"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) { return hb_main(argc, argv, benches); }
