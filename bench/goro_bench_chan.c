/*
 * goro_bench_chan - channel, select and mutex benchmarks: the scenarios of
 * gobench (bench/go/gobench/main.go), ported line by line.
 *
 *   GOROMAXPROCS=2 taskset -c 0,1 goro_bench_chan chan_pingpong_unbuffered select2
 *
 * Go's channels carry an int; ours carry a long (8 bytes, the same size).
 * Where Go lets a helper goroutine exit on its own after the timed part, we
 * wait for it (outside the timed part) before releasing the channels, since
 * C has no GC to keep them alive.
 */
#include "harness.h"

/* ------------------------------------------------- chan_pingpong_unbuffered */

typedef struct pp {
    goro_chan *a, *b;
    goro_waitgroup wg;
} pp;

/* for v := range a { b <- v } */
static void pp_echo(void *arg) {
    pp *s = arg;
    long v;
    while (goro_chan_recv(s->a, &v))
        goro_chan_send(s->b, &v);
    goro_waitgroup_done(&s->wg);
}

static int64_t pingpong_run(int64_t n, void *ctx) {
    (void)ctx;
    pp s = {goro_chan_make(sizeof(long), 0), goro_chan_make(sizeof(long), 0), {{0}}};
    if (!s.a || !s.b)
        hb_die("goro_chan_make");
    goro_waitgroup_add(&s.wg, 1);
    hb_go(pp_echo, &s);
    int64_t t0 = hb_now();
    for (long i = 0; i < n; i++) {
        long v = i;
        goro_chan_send(s.a, &v);
        goro_chan_recv(s.b, &v);
    }
    int64_t d = hb_now() - t0;
    goro_chan_close(s.a);
    goro_waitgroup_wait(&s.wg);
    goro_chan_release(s.a);
    goro_chan_release(s.b);
    return d;
}

static void bench_pingpong(void) {
    hb_simple("chan_pingpong_unbuffered", pingpong_run, NULL, NULL);
}

/* The same body on the first thread, a pthread, or in goro_main (the name's
   suffix says which: harness.h). */
static void bench_pingpong_placed(void) { hb_simple(hb_current, pingpong_run, NULL, NULL); }

/* ------------------------------------------------- chan_buffered_throughput */

typedef struct bt {
    int np, nc;
    goro_chan *ch;
    goro_waitgroup pw, cw;
} bt;

typedef struct bt_prod {
    bt *s;
    long cnt;
} bt_prod;

static _Atomic int64_t bt_sink;

static void bt_producer(void *arg) {
    bt_prod *p = arg;
    for (long i = 0; i < p->cnt; i++)
        goro_chan_send(p->s->ch, &i);
    goro_waitgroup_done(&p->s->pw);
}

static void bt_consumer(void *arg) {
    bt *s = arg;
    long v, sum = 0;
    while (goro_chan_recv(s->ch, &v))
        sum += v;
    atomic_fetch_add(&bt_sink, sum);
    goro_waitgroup_done(&s->cw);
}

static int64_t buffered_run(int64_t n, void *ctx) {
    const int *cfg = ctx;
    bt s = {.np = cfg[0], .nc = cfg[1]};
    bt_prod prods[8];
    s.ch = goro_chan_make(sizeof(long), 128);
    if (!s.ch)
        hb_die("goro_chan_make");
    int64_t t0 = hb_now();
    long per = (long)n / s.np;
    for (int p = 0; p < s.np; p++) {
        long cnt = per;
        if (p == s.np - 1)
            cnt = (long)n - per * (s.np - 1);
        prods[p] = (bt_prod){&s, cnt};
        goro_waitgroup_add(&s.pw, 1);
        hb_go(bt_producer, &prods[p]);
    }
    goro_waitgroup_add(&s.cw, s.nc);
    for (int c = 0; c < s.nc; c++)
        hb_go(bt_consumer, &s);
    goro_waitgroup_wait(&s.pw);
    goro_chan_close(s.ch);
    goro_waitgroup_wait(&s.cw);
    int64_t d = hb_now() - t0;
    goro_chan_release(s.ch);
    return d;
}

static void bench_buffered(void) {
    static const int c11[2] = {1, 1}, c22[2] = {2, 2};
    hb_simple("chan_buffered_throughput/1p1c", buffered_run, (void *)c11, NULL);
    hb_simple("chan_buffered_throughput/2p2c", buffered_run, (void *)c22, NULL);
}

/* ---------------------------------------------------------------- select2 */

typedef struct sel_prod {
    goro_chan *ch;
    long cnt;
    goro_waitgroup *wg;
} sel_prod;

static void sel_producer(void *arg) {
    sel_prod *p = arg;
    for (long i = 0; i < p->cnt; i++)
        goro_chan_send(p->ch, &i);
    goro_waitgroup_done(p->wg);
}

static int64_t select2_run(int64_t n, void *ctx) {
    size_t cap = (size_t)(uintptr_t)ctx;
    goro_chan *a = goro_chan_make(sizeof(long), cap), *b = goro_chan_make(sizeof(long), cap);
    if (!a || !b)
        hb_die("goro_chan_make");
    goro_waitgroup wg = {0};
    long half = (long)n / 2;
    sel_prod pa = {a, half, &wg}, pb = {b, (long)n - half, &wg};
    goro_waitgroup_add(&wg, 2);
    int64_t t0 = hb_now();
    hb_go(sel_producer, &pa);
    hb_go(sel_producer, &pb);
    long s = 0, va = 0, vb = 0;
    goro_case cases[2] = {
        {.chan = a, .dir = GORO_RECV, .elem = &va},
        {.chan = b, .dir = GORO_RECV, .elem = &vb},
    };
    for (int64_t i = 0; i < n; i++) {
        switch (goro_select(cases, 2, GORO_FOREVER)) {
        case 0: s += va; break;
        case 1: s -= vb; break;
        default: fprintf(stderr, "select2: goro_select returned no case\n"); exit(1);
        }
    }
    int64_t d = hb_now() - t0;
    hb_sink += s;
    goro_waitgroup_wait(&wg);
    goro_chan_release(a);
    goro_chan_release(b);
    return d;
}

static void bench_select2(void) {
    hb_simple("select2/unbuffered", select2_run, (void *)(uintptr_t)0, NULL);
    hb_simple("select2/cap128", select2_run, (void *)(uintptr_t)128, NULL);
}

/* -------------------------------------------------------- mutex_contended */

typedef struct mx {
    goro_mutex mu;
    goro_waitgroup wg;
    long counter;
} mx;

typedef struct mx_arg {
    mx *s;
    long cnt;
} mx_arg;

static void mx_worker(void *arg) {
    mx_arg *a = arg;
    mx *s = a->s;
    for (long i = 0; i < a->cnt; i++) {
        goro_mutex_lock(&s->mu);
        s->counter++;
        goro_mutex_unlock(&s->mu);
    }
    goro_waitgroup_done(&s->wg);
}

static int64_t mutex_run(int64_t n, void *ctx) {
    (void)ctx;
    enum { G = 4 };
    mx s;
    memset(&s, 0, sizeof s);
    mx_arg args[G];
    goro_waitgroup_add(&s.wg, G);
    int64_t t0 = hb_now();
    for (int g = 0; g < G; g++) {
        long cnt = (long)n / G;
        if (g == G - 1)
            cnt = (long)n - ((long)n / G) * (G - 1);
        args[g] = (mx_arg){&s, cnt};
        hb_go(mx_worker, &args[g]);
    }
    goro_waitgroup_wait(&s.wg);
    int64_t d = hb_now() - t0;
    if (s.counter != n) {
        fprintf(stderr, "mutex counter mismatch: %ld != %lld\n", s.counter, (long long)n);
        exit(1);
    }
    return d;
}

static void bench_mutex(void) { hb_simple("mutex_contended/4g", mutex_run, NULL, NULL); }

/* ------------------------------------------------------ chan_make_release */

/* make(chan long, 16) and let it go: the cost of a channel's whole life,
   including the quarantine a released channel passes through (chan.c). */
static int64_t make_release_run(int64_t n, void *ctx) {
    (void)ctx;
    int64_t t0 = hb_now();
    for (int64_t i = 0; i < n; i++) {
        goro_chan *c = goro_chan_make(sizeof(long), 16);
        if (!c)
            hb_die("goro_chan_make");
        goro_chan_release(c);
    }
    return hb_now() - t0;
}

typedef struct mr_arg {
    int64_t n;
    goro_waitgroup *wg;
} mr_arg;

static void mr_worker(void *arg) {
    mr_arg *a = arg;
    make_release_run(a->n, NULL);
    goro_waitgroup_done(a->wg);
}

/* The same from two goroutines at once: they meet on the quarantine's lock. */
static int64_t make_release_2g_run(int64_t n, void *ctx) {
    (void)ctx;
    goro_waitgroup wg = {{0}};
    mr_arg a = {n / 2, &wg};
    goro_waitgroup_add(&wg, 2);
    int64_t t0 = hb_now();
    hb_go(mr_worker, &a);
    hb_go(mr_worker, &a);
    goro_waitgroup_wait(&wg);
    return hb_now() - t0;
}

static void bench_make_release(void) {
    hb_simple("chan_make_release/cap16", make_release_run, NULL, NULL);
    hb_simple("chan_make_release/cap16/2g", make_release_2g_run, NULL, NULL);
}

/* ------------------------------------------------------------------ main */

static const hb_bench benches[] = {
    {"chan_pingpong_unbuffered", bench_pingpong, "round trip over two unbuffered chans"},
    {"chan_pingpong_unbuffered_main", bench_pingpong_placed,
     "the same, body in main() (goroutine 1)"},
    {"chan_pingpong_unbuffered_thread", bench_pingpong_placed,
     "the same, body on a pthread_create thread"},
    {"chan_pingpong_unbuffered_gomain", bench_pingpong_placed,
     "the same, body in goro_main() from main()"},
    {"chan_buffered_throughput", bench_buffered, "cap-128 chan, 1p1c and 2p2c; ns per item"},
    {"select2", bench_select2,
     "one goroutine selecting over 2 chans fed by 2 producers; ns per select"},
    {"chan_make_release", bench_make_release,
     "goro_chan_make(8, 16) + goro_chan_release; ns per channel"},
    {"mutex_contended", bench_mutex, "goro_mutex, 4 goroutines incrementing; ns per lock/unlock"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv) { return hb_main(argc, argv, benches); }
