/*
 * waitprof.h - the hooks of the block and mutex profiles (Go's blockevent
 * and mutexevent) where goroutines park: channels, select, the sync
 * primitives. Internal.
 *
 * The profiles themselves live in src/observe/blockprof.c (they need stack
 * capture); this runtime-level header only holds the rates and the one
 * hook pointer observe fills at start-up, so src/chan and src/sync call
 * downward, never sideways into observe.
 *
 * Cost when off (the default): one relaxed load and a predictable branch
 * per wait (goro__blockprof_begin) and per contended unlock.
 */
#ifndef GORO_RUNTIME_WAITPROF_H
#define GORO_RUNTIME_WAITPROF_H

#include "runtime.h"

enum { GORO__PROF_BLOCK, GORO__PROF_MUTEX };

/* Block profile rate in ns (<= 0 off); mutex profile fraction (0 off). */
extern GORO__HIDDEN _Atomic int64_t goro__block_rate;
extern GORO__HIDDEN _Atomic int64_t goro__mutex_rate;

/* Set by the observe layer: records one event of `which` that lasted
   delay_ns, with the calling goroutine's stack; does its own sampling. */
typedef void (*goro__waitprof_fn)(int which, int64_t delay_ns);
extern GORO__HIDDEN _Atomic(goro__waitprof_fn) goro__waitprof_hook;

/* The slow half of the hooks below. */
GORO__HIDDEN void goro__waitprof_event(int which, int64_t t0);

/* Before a wait: 0 when the block profile is off, else the time now. */
static inline int64_t goro__blockprof_begin(void) {
    if (GORO__LIKELY(atomic_load_explicit(&goro__block_rate, memory_order_relaxed) <= 0))
        return 0;
    return goro__nanotime();
}

/* After the wait that goro__blockprof_begin returned t0 for. */
static inline void goro__blockprof_end(int64_t t0) {
    if (GORO__UNLIKELY(t0 != 0))
        goro__waitprof_event(GORO__PROF_BLOCK, t0);
}

/* A contended mutex wait starts: 0 when the mutex profile is off. */
static inline int64_t goro__mutexprof_begin(void) {
    if (GORO__LIKELY(atomic_load_explicit(&goro__mutex_rate, memory_order_relaxed) <= 0))
        return 0;
    return goro__nanotime();
}

/* The unlocker woke a waiter that began waiting at t0 (Go charges the
   contention to the unlocker's stack: see blockprof.c). */
static inline void goro__mutexprof_end(int64_t t0) {
    if (GORO__UNLIKELY(t0 != 0))
        goro__waitprof_event(GORO__PROF_MUTEX, t0);
}

#endif
