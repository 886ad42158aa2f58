/*
 * blockprof.c - the block and mutex profiles (Go's runtime.SetBlockProfileRate
 * and runtime.SetMutexProfileFraction, /debug/pprof/block and /mutex).
 *
 * Events come from the hooks where goroutines park (runtime/waitprof.h):
 * channel send/receive and select (src/chan), goro_mutex, goro_rwmutex,
 * goro_waitgroup (through sema.c), goro_cond and goro_sem (src/sync).
 *
 * Block profile: every wait reports its duration; as Go's blocksampled, a
 * wait of `rate` ns or more is always recorded and a shorter one with
 * probability duration/rate. The stack is the waiting goroutine's, from its
 * caller of the goro primitive (goro's own frames hidden as in the
 * goroutine profile). Values: contentions/count, delay/nanoseconds.
 *
 * Mutex profile: which stack gets the contention? As Go (runtime/sema.go's
 * semrelease1, since Go 1.8): the *unlocker's*. When goro_mutex_unlock (or
 * goro_rwmutex_unlock/runlock) wakes a goroutine that waited, the event is
 * the time that goroutine has waited so far, charged to the stack of the
 * goroutine that held the lock and is now releasing it. The waiter's stack
 * would only say "somebody waited here" (the block profile says that); the
 * holder's stack names the critical section that made them wait, which is
 * what a mutex profile is for. 1/rate of the events are kept (fastrand %
 * rate == 0) and the written values are scaled by rate, so they estimate the
 * totals, as Go's pprof does; the proto's period is the rate.
 *
 * Locks: prof_mu (a goro__lock, never held across a park) guards both sample
 * sets; the stack is captured before taking it.
 */
#include "profiles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug_registry.h"
#include "../runtime/waitprof.h"
#include "tabwriter.h"

static goro__lock prof_mu = GORO__LOCK_INIT;
static goro__sset *sets[2]; /* GORO__PROF_BLOCK, GORO__PROF_MUTEX */

static uint64_t rand64(void) { return (uint64_t)goro__fastrand() << 32 | goro__fastrand(); }

static bool sampled(int which, int64_t delay) {
    if (which == GORO__PROF_BLOCK) {
        int64_t rate = atomic_load_explicit(&goro__block_rate, memory_order_relaxed);
        if (rate <= 0)
            return false;
        /* Go's blocksampled */
        return delay >= rate || (int64_t)(rand64() % (uint64_t)rate) <= delay;
    }
    int64_t rate = atomic_load_explicit(&goro__mutex_rate, memory_order_relaxed);
    return rate > 0 && rand64() % (uint64_t)rate == 0;
}

static void on_event(int which, int64_t delay) {
    if (!sampled(which, delay))
        return;
    uintptr_t pcs[GORO__PROF_DEPTH], vis[GORO__PROF_DEPTH];
    goro__gcap cap;
    goro__stk stk;
    memset(&cap, 0, sizeof cap);
    memset(&stk, 0, sizeof stk);
    stk.pcs = pcs;
    goro__capture_self(goro__getg_maybe(), &cap, &stk, GORO__PROF_DEPTH, 0);
    int n = goro__visible_pcs(&stk, vis);
    goro__gcap_clear(&cap);
    int64_t v[2] = {1, delay};
    goro__lock_acquire(&prof_mu);
    if (!sets[which])
        sets[which] = goro__sset_new(2);
    if (sets[which])
        (void)goro__sset_add(sets[which], vis, n, NULL, 0, v);
    goro__lock_release(&prof_mu);
}

/* ---------------------------------------------------------------- rates */

void goro_set_block_profile_rate(int64_t rate) {
    goro__init();
    atomic_store(&goro__block_rate, rate > 0 ? rate : 0);
}

int goro_set_mutex_profile_fraction(int rate) {
    goro__init();
    if (rate < 0)
        return (int)atomic_load(&goro__mutex_rate);
    return (int)atomic_exchange(&goro__mutex_rate, (int64_t)rate);
}

/* ------------------------------------------------------------- writing */

/* A copy of the set, taken under the lock (empty if none yet). */
static goro__sset *snapshot(int which) {
    goro__lock_acquire(&prof_mu);
    goro__sset *c = sets[which] ? goro__sset_clone(sets[which]) : goro__sset_new(2);
    goro__lock_release(&prof_mu);
    return c;
}

static int64_t scale_of(int which) {
    if (which == GORO__PROF_BLOCK)
        return 1;
    int64_t r = atomic_load(&goro__mutex_rate);
    return r > 0 ? r : 1;
}

static int write_proto(int which, const goro__sset *s, FILE *f, int64_t duration_ns) {
    int64_t scale = scale_of(which);
    goro__sset *scaled = goro__sset_new(2);
    for (size_t i = 0; scaled && i < goro__sset_len(s); i++) {
        goro__psample p = goro__sset_at(s, i);
        int64_t v[2] = {p.v[0] * scale, p.v[1] * scale};
        if (!goro__sset_add(scaled, p.pcs, p.npcs, NULL, 0, v)) {
            goro__sset_free(scaled);
            scaled = NULL;
        }
    }
    if (!scaled)
        return ENOMEM;
    goro__pmeta m = {.nvalues = 2,
                     .type = {"contentions", "delay"},
                     .unit = {"count", "nanoseconds"},
                     .period_type = "contentions",
                     .period_unit = "count",
                     .period = scale,
                     .duration_nanos = duration_ns};
    int err = goro__sset_write_proto(scaled, &m, f);
    goro__sset_free(scaled);
    return err;
}

static int cmp_delay(const void *a, const void *b) {
    int64_t x = ((const goro__psample *)a)->v[1], y = ((const goro__psample *)b)->v[1];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Go's debug=1 text: "--- contention:", the cycle rate (ns here), the
   sampling period (mutex), then "<delay> <count> @ pcs" and the frames,
   largest delay first. */
static int write_text(int which, const goro__sset *s, FILE *f) {
    size_t n = goro__sset_len(s);
    goro__psample *ps = malloc((n ? n : 1) * sizeof *ps);
    if (!ps)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        ps[i] = goro__sset_at(s, i);
    qsort(ps, n, sizeof *ps, cmp_delay);
    goro__ow w;
    goro__ow_init_file(&w, f);
    goro__ow_puts(&w, "--- contention:\ncycles/second=1000000000\n");
    if (which == GORO__PROF_MUTEX) {
        goro__ow_puts(&w, "sampling period=");
        goro__ow_dec(&w, atomic_load(&goro__mutex_rate));
        goro__ow_write(&w, "\n", 1);
    }
    int64_t scale = scale_of(which);
    goro__tw tw;
    goro__tw_init(&tw, &w);
    for (size_t i = 0; i < n; i++) {
        goro__ow_dec(&w, ps[i].v[1] * scale);
        goro__ow_write(&w, " ", 1);
        goro__ow_dec(&w, ps[i].v[0] * scale);
        goro__ow_puts(&w, " @");
        for (int k = 0; k < ps[i].npcs; k++) {
            goro__ow_write(&w, " ", 1);
            goro__ow_hex(&w, ps[i].pcs[k]);
        }
        goro__ow_write(&w, "\n", 1);
        goro__format_pcs_frames(&w, &tw, ps[i].pcs, ps[i].npcs, false);
        goro__ow_write(&w, "\n", 1);
    }
    goro__tw_free(&tw);
    free(ps);
    return goro__ow_flush(&w);
}

static int profile_write(int which, FILE *f, int debug) {
    if (!f)
        return GORO_EINVAL;
    goro__init();
    goro__sset *s = snapshot(which);
    if (!s)
        return GORO_ENOMEM;
    int err = debug <= 0 ? write_proto(which, s, f, 0) : write_text(which, s, f);
    goro__sset_free(s);
    return err;
}

int goro_block_profile_write(FILE *f, int debug) {
    return profile_write(GORO__PROF_BLOCK, f, debug);
}

int goro_mutex_profile_write(FILE *f, int debug) {
    return profile_write(GORO__PROF_MUTEX, f, debug);
}

/* ------------------------------------------------- the debug endpoints */

static goro__sset *block_snapshot(void) { return snapshot(GORO__PROF_BLOCK); }

static goro__sset *mutex_snapshot(void) { return snapshot(GORO__PROF_MUTEX); }

static void *block_delta_begin(void) { return block_snapshot(); }

static void *mutex_delta_begin(void) { return mutex_snapshot(); }

static int block_delta_write(const goro__sset *d, FILE *f, int64_t duration_ns) {
    return write_proto(GORO__PROF_BLOCK, d, f, duration_ns);
}

static int mutex_delta_write(const goro__sset *d, FILE *f, int64_t duration_ns) {
    return write_proto(GORO__PROF_MUTEX, d, f, duration_ns);
}

static int block_delta_end(void *base, FILE *f, int64_t duration_ns) {
    return goro__sset_delta_end(base, block_snapshot, block_delta_write, f, duration_ns);
}

static int mutex_delta_end(void *base, FILE *f, int64_t duration_ns) {
    return goro__sset_delta_end(base, mutex_snapshot, mutex_delta_write, f, duration_ns);
}

static long long count_of(int which) {
    goro__lock_acquire(&prof_mu);
    long long n = sets[which] ? (long long)goro__sset_len(sets[which]) : 0;
    goro__lock_release(&prof_mu);
    return n;
}

static long long block_count(void) { return count_of(GORO__PROF_BLOCK); }

static long long mutex_count(void) { return count_of(GORO__PROF_MUTEX); }

static const goro__debug_profile block_profile = {
    .name = "block",
    .desc = "Stack traces that led to blocking on synchronization primitives",
    .count = block_count,
    .write = goro_block_profile_write,
    .delta_begin = block_delta_begin,
    .delta_end = block_delta_end,
    .listed = true,
};

static const goro__debug_profile mutex_profile = {
    .name = "mutex",
    .desc = "Stack traces of holders of contended mutexes",
    .count = mutex_count,
    .write = goro_mutex_profile_write,
    .delta_begin = mutex_delta_begin,
    .delta_end = mutex_delta_end,
    .listed = true,
};

void goro__waitprof_register(void) {
    atomic_store_explicit(&goro__waitprof_hook, on_event, memory_order_release);
    goro__debug_register_profile(&block_profile);
    goro__debug_register_profile(&mutex_profile);
}
