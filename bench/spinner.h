/*
 * spinner.h - "the longest pause a goroutine sees" while something else runs
 * (a profile dump, a leak profile). Header-only, for bench/goro_bench_*.c.
 *
 * The spinner is a goroutine that loops { t = now; gap = t - last; yield }
 * and keeps the largest gap. C cannot preempt, so it yields each iteration:
 * a gap is then any time it could not get back onto a processor, whether the
 * cause is the scheduler (a lock the dumper holds, a stop-the-world) or the OS.
 * Run it with GOROMAXPROCS >= 2 so it has a processor of its own.
 *
 * Protocol: hb_spin_start; then per measurement hb_spin_reset (waits until
 * the spinner has acknowledged, so gaps from before do not count), the work,
 * hb_spin_max_ns; finally hb_spin_stop.
 */
#ifndef GORO_BENCH_SPINNER_H
#define GORO_BENCH_SPINNER_H

#include "harness.h"

static _Atomic int hb_spin_quit;
static _Atomic int hb_spin_reset_req;
static _Atomic int64_t hb_spin_max;
static _Atomic int64_t hb_spin_iters;
static goro_waitgroup hb_spin_wg;

static void hb_spinner(void *arg)
{
    (void)arg;
    int64_t last = 0;
    while (!atomic_load_explicit(&hb_spin_quit, memory_order_relaxed)) {
        int64_t t = goro_nanotime();
        if (atomic_load_explicit(&hb_spin_reset_req, memory_order_relaxed)) {
            atomic_store(&hb_spin_max, 0);
            atomic_store(&hb_spin_reset_req, 0);
            last = 0;
        }
        if (last) {
            int64_t gap = t - last;
            if (gap > atomic_load_explicit(&hb_spin_max, memory_order_relaxed))
                atomic_store_explicit(&hb_spin_max, gap, memory_order_relaxed);
        }
        last = t;
        atomic_fetch_add_explicit(&hb_spin_iters, 1, memory_order_relaxed);
        goro_yield();
    }
    goro_waitgroup_done(&hb_spin_wg);
}

static __attribute__((unused)) void hb_spin_start(void)
{
    atomic_store(&hb_spin_quit, 0);
    atomic_store(&hb_spin_iters, 0);
    goro_waitgroup_add(&hb_spin_wg, 1);
    hb_go(hb_spinner, NULL);
    while (atomic_load(&hb_spin_iters) < 1000)
        goro_yield();
}

static __attribute__((unused)) void hb_spin_reset(void)
{
    atomic_store(&hb_spin_reset_req, 1);
    while (atomic_load(&hb_spin_reset_req))
        goro_yield();
}

static __attribute__((unused)) int64_t hb_spin_max_ns(void)
{
    return atomic_load(&hb_spin_max);
}

static __attribute__((unused)) void hb_spin_stop(void)
{
    atomic_store(&hb_spin_quit, 1);
    goro_waitgroup_wait(&hb_spin_wg);
}

/* The spinner's largest gap over `ns` of doing nothing else: the noise floor. */
static __attribute__((unused)) int64_t hb_spin_baseline(int64_t ns)
{
    hb_spin_reset();
    goro_sleep(ns);
    return hb_spin_max_ns();
}

#endif /* GORO_BENCH_SPINNER_H */
