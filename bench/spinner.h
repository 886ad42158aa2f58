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
 * Each gap is classified from the spinner thread's context-switch counters
 * (getrusage(RUSAGE_THREAD)) and tid, read before the yield and after it:
 * "os_preempted" (the kernel took the CPU away involuntarily: another process,
 * or more runnable threads than CPUs), "thread_blocked" (the thread slept in
 * the kernel: e.g. its M parked on a futex), "migrated" (the goroutine came
 * back on another thread) or "runtime" (the thread never left the CPU: it was
 * running runtime code or other goroutines the whole time).
 * hb_spin_max_unexplained_ns is the largest gap that was not an involuntary
 * preemption: the pause the runtime can be blamed for.
 *
 * Protocol: hb_spin_start; then per measurement hb_spin_reset (waits until
 * the spinner has acknowledged, so gaps from before do not count), the work,
 * hb_spin_max_ns; finally hb_spin_stop.
 */
#ifndef GORO_BENCH_SPINNER_H
#define GORO_BENCH_SPINNER_H

#include "harness.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int hb_spin_quit;
static _Atomic int hb_spin_reset_req;
static _Atomic int64_t hb_spin_max;
static _Atomic int64_t hb_spin_iters;
static goro_waitgroup hb_spin_wg;

/* Why the spinner's thread was off the goroutine for a gap: from the thread's
   context-switch counters (getrusage RUSAGE_THREAD) and its tid around the gap. */
enum { HB_GAP_RUNTIME = 0, HB_GAP_PREEMPTED = 1, HB_GAP_BLOCKED = 2, HB_GAP_MIGRATED = 3 };
static const char *const hb_gap_names[] = {"runtime", "os_preempted", "thread_blocked", "migrated"};
static _Atomic int64_t hb_spin_max_unexplained; /* largest gap not explained by OS preemption */
static _Atomic int hb_spin_max_cause;

static void hb_spinner(void *arg) {
    (void)arg;
    int64_t last = 0;
    long last_iv = 0, last_v = 0;
    pid_t last_tid = 0;
    while (!atomic_load_explicit(&hb_spin_quit, memory_order_relaxed)) {
        int64_t t = goro_nanotime();
        struct rusage ru;
        getrusage(RUSAGE_THREAD, &ru);
        pid_t tid = (pid_t)syscall(SYS_gettid);
        if (atomic_load_explicit(&hb_spin_reset_req, memory_order_relaxed)) {
            atomic_store(&hb_spin_max, 0);
            atomic_store(&hb_spin_max_unexplained, 0);
            atomic_store(&hb_spin_max_cause, HB_GAP_RUNTIME);
            atomic_store(&hb_spin_reset_req, 0);
            last = 0;
        }
        if (last) {
            int64_t gap = t - last;
            int cause = HB_GAP_RUNTIME;
            if (tid != last_tid)
                cause = HB_GAP_MIGRATED;
            else if (ru.ru_nivcsw != last_iv)
                cause = HB_GAP_PREEMPTED;
            else if (ru.ru_nvcsw != last_v)
                cause = HB_GAP_BLOCKED;
            if (gap > atomic_load_explicit(&hb_spin_max, memory_order_relaxed)) {
                atomic_store_explicit(&hb_spin_max, gap, memory_order_relaxed);
                atomic_store_explicit(&hb_spin_max_cause, cause, memory_order_relaxed);
            }
            if (cause != HB_GAP_PREEMPTED &&
                gap > atomic_load_explicit(&hb_spin_max_unexplained, memory_order_relaxed))
                atomic_store_explicit(&hb_spin_max_unexplained, gap, memory_order_relaxed);
        }
        /* the counters after the yield are compared with those after the next
           one's return: take them here, then yield */
        last = t;
        atomic_fetch_add_explicit(&hb_spin_iters, 1, memory_order_relaxed);
        getrusage(RUSAGE_THREAD, &ru);
        last_iv = ru.ru_nivcsw;
        last_v = ru.ru_nvcsw;
        last_tid = tid;
        goro_yield();
    }
    goro_waitgroup_done(&hb_spin_wg);
}

static __attribute__((unused)) void hb_spin_start(void) {
    atomic_store(&hb_spin_quit, 0);
    atomic_store(&hb_spin_iters, 0);
    goro_waitgroup_add(&hb_spin_wg, 1);
    hb_go(hb_spinner, NULL);
    while (atomic_load(&hb_spin_iters) < 1000)
        goro_yield();
}

static __attribute__((unused)) void hb_spin_reset(void) {
    atomic_store(&hb_spin_reset_req, 1);
    while (atomic_load(&hb_spin_reset_req))
        goro_yield();
}

static __attribute__((unused)) int64_t hb_spin_max_ns(void) { return atomic_load(&hb_spin_max); }

/* The largest gap that was not an involuntary preemption of the spinner's
   thread by the kernel, and the cause of the largest gap overall. */
static __attribute__((unused)) int64_t hb_spin_max_unexplained_ns(void) {
    return atomic_load(&hb_spin_max_unexplained);
}
static __attribute__((unused)) const char *hb_spin_max_cause_str(void) {
    return hb_gap_names[atomic_load(&hb_spin_max_cause) & 3];
}

static __attribute__((unused)) void hb_spin_stop(void) {
    atomic_store(&hb_spin_quit, 1);
    goro_waitgroup_wait(&hb_spin_wg);
}

/* The spinner's largest gap over `ns` of doing nothing else: the noise floor. */
static __attribute__((unused)) int64_t hb_spin_baseline(int64_t ns) {
    hb_spin_reset();
    goro_sleep(ns);
    return hb_spin_max_ns();
}

#endif /* GORO_BENCH_SPINNER_H */
