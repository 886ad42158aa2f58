/*
 * harness.h - the benchmark harness shared by bench/goro_bench_*.c.
 *
 * Header-only (every function static) because the build makes each
 * bench file its own executable. It mirrors bench/go/gobench
 * exactly, so that our lines and Go's can be compared label by label:
 *
 *   goro_bench_X [-benchtime 500ms] [-reps 3] [-n N] name... | list | all
 *
 * Every benchmark prints one line:
 *
 *   <label>/p<procs> ns_per_op=<median> ops=<n> procs=<procs> reps=<a/b/c> [key=value...]
 *
 * Calibration is testing.B's (and gobench's measure()): grow n until one run
 * takes >= -benchtime (these runs are the warm-up), then run -reps times at
 * that n and report the median ns/op.
 *
 * As in Go, where main() is a goroutine, every benchmark body runs inside a
 * goroutine ("the bench goroutine"); the process's first thread (goroutine 1)
 * only waits for it. A benchmark whose name ends in one of these suffixes
 * runs its body elsewhere, to measure what a C program pays there:
 *   _main    on the first thread itself (goroutine 1), as main() would
 *   _thread  on a thread the program made with pthread_create
 *   _gomain  inside goro_main(), called from the first thread
 * procs is goro_maxprocs(0), set by GOROMAXPROCS.
 */
#ifndef GORO_BENCH_HARNESS_H
#define GORO_BENCH_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goro.h"

#define HB_FN static __attribute__((unused))
#define HB_NOINLINE __attribute__((noinline))
#if defined(__clang__)
#define HB_NOIPA __attribute__((noinline, optnone))
#else
#define HB_NOIPA __attribute__((noipa))
#endif
/* Placed after a call, keeps it from being a tail call (so its caller's frame
   stays on the stack, as Go's //go:noinline frames do). */
#define HB_NO_TAILCALL() __asm__ volatile("" ::: "memory")

/* ------------------------------------------------------------------ flags */

static __attribute__((unused)) int64_t hb_benchtime = 500 * 1000000LL; /* ns */
static __attribute__((unused)) int hb_reps = 3;
static __attribute__((unused)) long hb_nflag = 0;
static __attribute__((unused)) volatile int64_t hb_sink;

/* Go's time.ParseDuration for the forms used here: "500ms", "1s", "1.5s",
   "100us", "100µs", "2m", "250ns"; a sequence like "1s500ms" too. */
HB_FN int64_t hb_parse_duration(const char *s) {
    double total = 0;
    const char *p = s;
    if (*p == 0)
        return -1;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p)
            return -1;
        p = end;
        double mul;
        if (strncmp(p, "ns", 2) == 0) {
            mul = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            mul = 1e3;
            p += 2;
        } else if (strncmp(p, "\xc2\xb5s", 3) == 0) {
            mul = 1e3;
            p += 3;
        } else if (strncmp(p, "ms", 2) == 0) {
            mul = 1e6;
            p += 2;
        } else if (*p == 's') {
            mul = 1e9;
            p += 1;
        } else if (*p == 'm') {
            mul = 60e9;
            p += 1;
        } else if (*p == 'h') {
            mul = 3600e9;
            p += 1;
        } else if (v == 0 && *p == 0) {
            mul = 0;
        } else
            return -1;
        total += v * mul;
    }
    return (int64_t)total;
}

/* ---------------------------------------------------------------- helpers */

HB_FN int64_t hb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

HB_FN int hb_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

HB_FN double hb_median(const double *xs, int n) {
    if (n <= 0)
        return 0;
    double *s = malloc(sizeof(double) * (size_t)n);
    memcpy(s, xs, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), hb_cmp_double);
    double m = (n % 2) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

HB_FN int hb_procs(void) { return goro_maxprocs(0); }

/* runtime.NumCPU(): CPUs in the affinity mask at start-up. */
HB_FN int hb_numcpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    return 1;
}

/* A field of /proc/self/status in bytes ("VmRSS", "VmHWM", "VmSize"). */
HB_FN int64_t hb_status_bytes(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t fl = strlen(field);
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtoll(line + fl + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}
HB_FN int64_t hb_rss(void) { return hb_status_bytes("VmRSS"); }

/* Resets VmHWM to the current RSS (Linux >= 4.0). */
HB_FN int hb_reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ------------------------------------------------------- key=value extras */

typedef struct hb_kv {
    char buf[2048];
    size_t len;
} hb_kv;

HB_FN void hb_kv_add(hb_kv *kv, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
HB_FN void hb_kv_add(hb_kv *kv, const char *key, const char *fmt, ...) {
    if (kv->len >= sizeof kv->buf - 1)
        return;
    int w = snprintf(kv->buf + kv->len, sizeof kv->buf - kv->len, " %s=", key);
    if (w < 0)
        return;
    kv->len += (size_t)w;
    if (kv->len >= sizeof kv->buf - 1) {
        kv->len = sizeof kv->buf - 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(kv->buf + kv->len, sizeof kv->buf - kv->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        kv->len += (size_t)w;
    if (kv->len >= sizeof kv->buf)
        kv->len = sizeof kv->buf - 1;
}

/* "a/b/c" with one decimal, scaled. */
HB_FN void hb_kv_add_reps(hb_kv *kv, const char *key, const double *xs, int n, double scale) {
    char tmp[1024];
    size_t l = 0;
    tmp[0] = 0;
    for (int i = 0; i < n && l < sizeof tmp - 32; i++)
        l += (size_t)snprintf(tmp + l, sizeof tmp - l, "%s%.1f", i ? "/" : "", xs[i] * scale);
    hb_kv_add(kv, key, "%s", tmp);
}

/* Prints one result line; label gets "/p<procs>" appended. */
HB_FN void hb_emit(const char *label, double ns_per_op, int64_t ops, const double *reps, int nreps,
                   const hb_kv *extra) {
    int procs = hb_procs();
    char line[4096];
    size_t l = (size_t)snprintf(line, sizeof line, "%s/p%d ns_per_op=%.1f ops=%lld procs=%d", label,
                                procs, ns_per_op, (long long)ops, procs);
    if (nreps > 0) {
        l += (size_t)snprintf(line + l, sizeof line - l, " reps=");
        for (int i = 0; i < nreps && l < sizeof line - 32; i++)
            l += (size_t)snprintf(line + l, sizeof line - l, "%s%.1f", i ? "/" : "", reps[i]);
    }
    if (extra && extra->len)
        snprintf(line + l, sizeof line - l, "%s", extra->buf);
    printf("%s\n", line);
    fflush(stdout);
}

/* ------------------------------------------------------------ calibration */

/* Runs n operations, returns elapsed ns. */
typedef int64_t (*hb_fn)(int64_t n, void *ctx);

#define HB_MAXREPS 64

/* gobench's measure(): returns the median ns/op; *n_out the calibrated n;
   all[] (room for hb_reps) the per-rep ns/op. */
HB_FN double hb_measure(hb_fn f, void *ctx, int64_t *n_out, double *all) {
    int64_t target = hb_benchtime;
    int64_t n = 1;
    for (;;) {
        int64_t d = f(n, ctx);
        if (d >= target)
            break;
        int64_t next;
        if (d <= 0)
            next = n * 100;
        else
            next = (int64_t)((double)n * (double)target / (double)d * 1.2);
        if (next > n * 100)
            next = n * 100;
        if (next <= n)
            next = n + 1;
        n = next;
    }
    for (int r = 0; r < hb_reps; r++) {
        int64_t d = f(n, ctx);
        all[r] = (double)d / (double)n;
    }
    if (n_out)
        *n_out = n;
    return hb_median(all, hb_reps);
}

HB_FN void hb_simple(const char *label, hb_fn f, void *ctx, const hb_kv *extra) {
    double all[HB_MAXREPS];
    int64_t n;
    double med = hb_measure(f, ctx, &n, all);
    hb_emit(label, med, n, all, hb_reps, extra);
}

/* ----------------------------------------------------- parked goroutines */

/* n goroutines blocked receiving on one unbuffered channel, spread over 3
   distinct stacks (parkA; parkB -> parkB2; parkC -> parkC2 -> parkC3), as in
   gobench's startParked. */
typedef struct hb_parked {
    goro_chan *ch;
    _Atomic int64_t started;
    goro_waitgroup wg;
} hb_parked;

HB_NOIPA HB_FN void parkA(void *arg) {
    hb_parked *p = arg;
    atomic_fetch_add(&p->started, 1);
    goro_chan_recv(p->ch, NULL);
    goro_waitgroup_done(&p->wg);
}

HB_NOIPA HB_FN void parkB2(hb_parked *p) {
    atomic_fetch_add(&p->started, 1);
    goro_chan_recv(p->ch, NULL);
    HB_NO_TAILCALL();
}

HB_NOIPA HB_FN void parkB(void *arg) {
    hb_parked *p = arg;
    parkB2(p);
    goro_waitgroup_done(&p->wg);
}

HB_NOIPA HB_FN void parkC3(hb_parked *p) {
    atomic_fetch_add(&p->started, 1);
    goro_chan_recv(p->ch, NULL);
    HB_NO_TAILCALL();
}

HB_NOIPA HB_FN void parkC2(hb_parked *p) {
    parkC3(p);
    HB_NO_TAILCALL();
}

HB_NOIPA HB_FN void parkC(void *arg) {
    hb_parked *p = arg;
    parkC2(p);
    goro_waitgroup_done(&p->wg);
}

HB_FN void hb_die(const char *what) {
    fprintf(stderr, "goro_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

HB_FN void hb_go(goro_fn fn, void *arg) {
    if (goro_go(fn, arg) == 0)
        hb_die("goro_go");
}

HB_FN hb_parked *hb_start_parked(long n, bool distinct) {
    hb_parked *p = calloc(1, sizeof *p);
    p->ch = goro_chan_make(0, 0);
    if (!p->ch)
        hb_die("goro_chan_make");
    goro_waitgroup_add(&p->wg, (int)n);
    for (long i = 0; i < n; i++) {
        if (!distinct) {
            hb_go(parkA, p);
            continue;
        }
        switch (i % 3) {
        case 0: hb_go(parkA, p); break;
        case 1: hb_go(parkB, p); break;
        default: hb_go(parkC, p); break;
        }
    }
    while (atomic_load(&p->started) < n)
        goro_yield();
    /* the last ones may be between the counter and the park */
    goro_sleep(GORO_MS(20));
    return p;
}

HB_FN void hb_stop_parked(hb_parked *p) {
    goro_chan_close(p->ch);
    goro_waitgroup_wait(&p->wg);
    goro_chan_release(p->ch);
    free(p);
}

/* -------------------------------------------------------------- main loop */

typedef struct hb_bench {
    const char *name;
    void (*fn)(void);
    const char *doc;
} hb_bench;

typedef struct hb_run {
    const hb_bench *benches;
    char **names;
    int nnames;
    goro_chan *done;
    int status;
} hb_run;

/* Where a benchmark's body runs, from its name's suffix (see the top). */
typedef enum hb_where { HB_IN_GOROUTINE, HB_ON_MAIN, HB_ON_THREAD, HB_VIA_GORO_MAIN } hb_where;

HB_FN bool hb_has_suffix(const char *s, const char *suffix) {
    size_t l = strlen(s), k = strlen(suffix);
    return l > k && strcmp(s + l - k, suffix) == 0;
}

HB_FN hb_where hb_where_of(const char *name) {
    if (hb_has_suffix(name, "_main"))
        return HB_ON_MAIN;
    if (hb_has_suffix(name, "_thread"))
        return HB_ON_THREAD;
    if (hb_has_suffix(name, "_gomain"))
        return HB_VIA_GORO_MAIN;
    return HB_IN_GOROUTINE;
}

/* The name the running benchmark was asked for: the bodies shared by
   several placements label their lines with it. */
static __attribute__((unused)) const char *hb_current;

/* Runs the benchmarks r->names[0..nnames) on the calling thread or goroutine. */
HB_FN void hb_run_names(hb_run *r) {
    for (int i = 0; i < r->nnames; i++) {
        bool found = false;
        for (const hb_bench *b = r->benches; b->name; b++) {
            if (strcmp(b->name, r->names[i]) == 0) {
                hb_current = b->name;
                b->fn();
                found = true;
            }
        }
        if (!found) {
            fprintf(stderr, "unknown benchmark \"%s\" (try: list)\n", r->names[i]);
            r->status = 2;
            break;
        }
    }
}

HB_FN void hb_bench_goroutine(void *arg) {
    hb_run *r = arg;
    hb_run_names(r);
    int one = 1;
    goro_chan_send(r->done, &one);
}

HB_FN void *hb_bench_thread(void *arg) {
    hb_run_names(arg);
    return NULL;
}

HB_FN int hb_bench_goro_main(void *arg) {
    hb_run_names(arg);
    return 0;
}

/* Runs one benchmark where its name says; the first thread waits. */
HB_FN void hb_run_one(hb_run *all, int i, const goro_opts *opts) {
    hb_run r = *all;
    r.names = all->names + i;
    r.nnames = 1;
    switch (hb_where_of(r.names[0])) {
    case HB_ON_MAIN: hb_run_names(&r); break;
    case HB_ON_THREAD: {
        pthread_t t;
        if ((errno = pthread_create(&t, NULL, hb_bench_thread, &r)) != 0)
            hb_die("pthread_create");
        pthread_join(t, NULL);
        break;
    }
    case HB_VIA_GORO_MAIN: goro_main(hb_bench_goro_main, &r); break;
    case HB_IN_GOROUTINE: {
        if (goro_go_opts(opts, hb_bench_goroutine, &r) == 0)
            hb_die("goro_go_opts");
        int v;
        goro_chan_recv(r.done, &v);
        break;
    }
    }
    if (r.status)
        all->status = r.status;
}

HB_FN void hb_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [-benchtime 500ms] [-reps 3] [-n N] name... | list | all\n"
            "  -benchtime d  target duration of one measured repetition\n"
            "  -reps k       measured repetitions after calibration/warm-up; median is reported\n"
            "  -n N          goroutine count for the benchmarks that take one (0 = default)\n",
            prog);
}

/* Parses flags like Go's flag package (flags first; "-x v", "-x=v", "--x"). */
HB_FN int hb_main(int argc, char **argv, const hb_bench *benches) {
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0)
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        a++;
        if (*a == '-')
            a++;
        char key[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (eq) {
            size_t kl = (size_t)(eq - a) < sizeof key - 1 ? (size_t)(eq - a) : sizeof key - 1;
            memcpy(key, a, kl);
            key[kl] = 0;
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a);
            if (strcmp(key, "h") != 0 && strcmp(key, "help") != 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "flag needs an argument: -%s\n", key);
                    hb_usage(argv[0]);
                    return 2;
                }
                val = argv[++i];
            }
        }
        if (strcmp(key, "benchtime") == 0) {
            hb_benchtime = hb_parse_duration(val);
            if (hb_benchtime < 0) {
                fprintf(stderr, "invalid value \"%s\" for flag -benchtime\n", val);
                return 2;
            }
        } else if (strcmp(key, "reps") == 0) {
            hb_reps = atoi(val);
            if (hb_reps < 1 || hb_reps > HB_MAXREPS) {
                fprintf(stderr, "-reps must be 1..%d\n", HB_MAXREPS);
                return 2;
            }
        } else if (strcmp(key, "n") == 0) {
            hb_nflag = atol(val);
        } else {
            hb_usage(argv[0]);
            return 2;
        }
    }
    if (i >= argc) {
        hb_usage(argv[0]);
        return 2;
    }
    if (strcmp(argv[i], "list") == 0) {
        for (const hb_bench *b = benches; b->name; b++)
            printf("%-26s %s\n", b->name, b->doc);
        return 0;
    }
    hb_run r = {.benches = benches, .names = argv + i, .nnames = argc - i};
    char **all = NULL;
    if (strcmp(argv[i], "all") == 0) {
        int k = 0;
        for (const hb_bench *b = benches; b->name; b++)
            k++;
        all = calloc((size_t)k + 1, sizeof *all);
        for (int j = 0; j < k; j++)
            all[j] = (char *)benches[j].name;
        r.names = all;
        r.nnames = k;
    }
    r.done = goro_chan_make(sizeof(int), 1);
    if (!r.done)
        hb_die("goro_chan_make");
    /* GORO_BENCH_STACK=bytes: stack size of the bench goroutine (0: the default) */
    goro_opts opts = {.stack_size = 0, .name = "bench"};
    const char *st = getenv("GORO_BENCH_STACK");
    if (st)
        opts.stack_size = (size_t)strtoull(st, NULL, 0);
    for (int j = 0; j < r.nnames && r.status == 0; j++)
        hb_run_one(&r, j, &opts);
    goro_chan_release(r.done);
    free(all);
    return r.status;
}

#endif /* GORO_BENCH_HARNESS_H */
