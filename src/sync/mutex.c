/*
 * mutex.c - goro_mutex, Go's sync.Mutex (two modes, normal and starvation).
 *
 * State word (atomic, the only shared field besides the sema counter):
 *   bit 0 LOCKED    the mutex is held
 *   bit 1 WOKEN     a waiter was woken (or a spinner announced itself): an
 *                   unlock must not wake another one
 *   bit 2 STARVING  starvation mode
 *   bits 3.. the number of goroutines/threads sleeping in sema
 *
 * Normal mode: sleepers queue FIFO, but a woken sleeper does not own the
 * mutex; it competes with newcomers (which are on a CPU already and usually
 * win). A sleeper that loses goes back to the *head* of the queue (lifo). A
 * sleeper that has waited more than 1 ms switches the mutex to starvation
 * mode.
 *
 * Starvation mode: unlock hands the mutex directly to the first sleeper
 * (semrelease with handoff); newcomers neither spin nor take the lock even
 * if it looks free - they queue at the tail. The sleeper that receives the
 * mutex switches back to normal mode when it is the last sleeper or when it
 * waited less than 1 ms.
 *
 * Invariants: in starvation mode LOCKED and WOKEN are clear while ownership
 * is in flight to the first sleeper, and the waiter count is > 0; only the
 * CAS that moves the state from "LOCKED clear" to "LOCKED set" (or the
 * starvation hand-over's add) acquires the mutex.
 */
#include "sync_internal.h"

#include <unistd.h>

#define MUTEX_LOCKED 1
#define MUTEX_WOKEN 2
#define MUTEX_STARVING 4
#define MUTEX_WAITER_SHIFT 3
#define STARVATION_THRESHOLD_NS 1000000LL

#define ACTIVE_SPIN 4
#define ACTIVE_SPIN_CNT 30

_Static_assert(sizeof(goro__mutex) <= sizeof(goro_mutex), "goro_mutex too small");
_Static_assert(_Alignof(goro__mutex) <= _Alignof(goro_mutex), "goro_mutex misaligned");

static inline goro__mutex *impl(goro_mutex *m) { return (goro__mutex *)(void *)m; }

static _Atomic int ncpu_cache;

static int ncpu(void) {
    int n = atomic_load_explicit(&ncpu_cache, memory_order_relaxed);
    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
        atomic_store_explicit(&ncpu_cache, n, memory_order_relaxed);
    }
    return n;
}

/* Spinning makes sense only for a few iterations, on a multicore machine,
   when another processor can be running the holder (Go also requires an
   empty local run queue; the runtime does not export it, and the spin is
   bounded at ~4 x 30 pauses anyway). */
bool goro__sync_canspin(int iter) {
    if (iter >= ACTIVE_SPIN || ncpu() <= 1)
        return false;
    return goro_maxprocs(0) > 1;
}

void goro__sync_dospin(void) {
    for (int i = 0; i < ACTIVE_SPIN_CNT; i++)
        goro__cpu_relax();
}

static GORO__NOINLINE void lock_slow(goro__mutex *m, int reason) {
    int64_t wait_start = 0;
    bool starving = false;
    bool awoke = false;
    int iter = 0;
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        /* Spin while locked in normal mode and spinning makes sense. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && goro__sync_canspin(iter)) {
            /* Tell unlock not to wake a sleeper: we are about to take it. */
            if (!awoke && (old & MUTEX_WOKEN) == 0 && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                atomic_compare_exchange_strong_explicit(&m->state, &old, old | MUTEX_WOKEN,
                                                        memory_order_relaxed, memory_order_relaxed))
                awoke = true;
            goro__sync_dospin();
            iter++;
            old = atomic_load_explicit(&m->state, memory_order_relaxed);
            continue;
        }
        int32_t new = old;
        /* Do not take a starving mutex: newcomers queue. */
        if ((old & MUTEX_STARVING) == 0)
            new |= MUTEX_LOCKED;
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
            new += 1 << MUTEX_WAITER_SHIFT;
        /* Switch to starvation mode, only if the mutex is still held
           (otherwise the unlock would find no LOCKED bit to hand over). */
        if (starving && (old & MUTEX_LOCKED) != 0)
            new |= MUTEX_STARVING;
        if (awoke) {
            if ((new &MUTEX_WOKEN) == 0)
                goro__throw("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (atomic_compare_exchange_weak_explicit(&m->state, &old, new, memory_order_acquire,
                                                  memory_order_relaxed)) {
            if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == 0)
                break; /* locked it with the CAS */
            /* Waited before: queue at the front. */
            bool lifo = wait_start != 0;
            if (wait_start == 0)
                wait_start = goro_nanotime();
            goro__semacquire(&m->sema, reason, lifo);
            starving = starving || goro_nanotime() - wait_start > STARVATION_THRESHOLD_NS;
            old = atomic_load_explicit(&m->state, memory_order_acquire);
            if ((old & MUTEX_STARVING) != 0) {
                /* Handed to us in starvation mode: the state is inconsistent
                   (LOCKED clear, we are still counted as a waiter) - fix it. */
                if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) != 0 || (old >> MUTEX_WAITER_SHIFT) == 0)
                    goro__throw("sync: inconsistent mutex state");
                int32_t delta = MUTEX_LOCKED - (1 << MUTEX_WAITER_SHIFT);
                /* Leave starvation mode when we did not starve or are the last
                   waiter (staying would make the next lock/unlock pair hand
                   over forever). */
                if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                    delta -= MUTEX_STARVING;
                atomic_fetch_add_explicit(&m->state, delta, memory_order_acquire);
                break;
            }
            awoke = true;
            iter = 0;
        }
        /* On CAS failure old holds the current state. */
    }
}

void goro__mutex_lock(goro__mutex *m, int reason) {
    int32_t z = 0;
    if (GORO__LIKELY(atomic_compare_exchange_strong_explicit(
            &m->state, &z, MUTEX_LOCKED, memory_order_acquire, memory_order_relaxed)))
        return;
    lock_slow(m, reason);
}

bool goro__mutex_trylock(goro__mutex *m) {
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
        return false;
    /* There may be a woken goroutine competing; give up rather than spin. */
    return atomic_compare_exchange_strong_explicit(&m->state, &old, old | MUTEX_LOCKED,
                                                   memory_order_acquire, memory_order_relaxed);
}

static GORO__NOINLINE void unlock_slow(goro__mutex *m, int32_t new) {
    if (((new + MUTEX_LOCKED) & MUTEX_LOCKED) == 0) {
        /* Undo our decrement so a recovered program keeps a sane state. */
        atomic_fetch_add_explicit(&m->state, MUTEX_LOCKED, memory_order_relaxed);
        goro_panic("sync: unlock of unlocked mutex");
    }
    if ((new &MUTEX_STARVING) == 0) {
        int32_t old = new;
        for (;;) {
            /* Nobody to wake, or someone is already woken/spinning, or the
               mutex was taken again (then its owner wakes at unlock), or it
               went starving (the handoff belongs to the starving path). */
            if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
                (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)) != 0)
                return;
            /* Take the right to wake someone. */
            new = (old - (1 << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
            if (atomic_compare_exchange_weak_explicit(&m->state, &old, new, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                goro__semrelease(&m->sema, false);
                return;
            }
        }
    } else {
        /* Starvation mode: hand ownership to the next waiter and yield our
           time slice so it runs at once. LOCKED stays clear; the waiter sets
           it. The STARVING bit keeps newcomers off meanwhile. */
        goro__semrelease(&m->sema, true);
    }
}

void goro__mutex_unlock(goro__mutex *m) {
    int32_t new =
        atomic_fetch_sub_explicit(&m->state, MUTEX_LOCKED, memory_order_release) - MUTEX_LOCKED;
    if (GORO__UNLIKELY(new != 0))
        unlock_slow(m, new);
}

void goro_mutex_lock(goro_mutex *m) { goro__mutex_lock(impl(m), GORO__WAIT_MUTEX); }
void goro_mutex_unlock(goro_mutex *m) { goro__mutex_unlock(impl(m)); }
bool goro_mutex_trylock(goro_mutex *m) { return goro__mutex_trylock(impl(m)); }
