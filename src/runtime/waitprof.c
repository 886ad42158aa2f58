/*
 * waitprof.c - the rates and the hook of the block and mutex profiles
 * (waitprof.h). The observe layer installs the hook; the rates are set by
 * goro_set_block_profile_rate / goro_set_mutex_profile_fraction.
 */
#include "waitprof.h"

_Atomic int64_t goro__block_rate;
_Atomic int64_t goro__mutex_rate;
_Atomic(goro__waitprof_fn) goro__waitprof_hook;

void goro__waitprof_event(int which, int64_t t0) {
    int64_t delay = goro__nanotime() - t0;
    goro__waitprof_fn fn = atomic_load_explicit(&goro__waitprof_hook, memory_order_acquire);
    if (fn)
        fn(which, delay > 0 ? delay : 0);
}
