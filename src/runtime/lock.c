/*
 * lock.c - the runtime's own futex mutex and futex helpers.
 *
 * goro__lock is Drepper's three-state mutex ("Futexes Are Tricky", mutex3):
 *   0 unlocked, 1 locked with no sleeper, 2 locked and someone may sleep.
 * Invariant: a thread only sleeps in futex_wait after it has set the state to
 * 2, so an unlock that sees 2 must wake one sleeper; an unlock that sees 1
 * knows nobody sleeps. The acquire CAS/exchange and the release exchange are
 * the happens-before edges (TSan sees them as atomics).
 *
 * These locks are held only for short critical sections that never park a
 * goroutine, so blocking the OS thread on the rare contended path is fine.
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int goro__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    /* Relative timeout on FUTEX_WAIT; private: the words never cross processes.
       errno is left as it was: these run inside goro calls that succeed
       (a contended lock, a sleeping thread), and the caller's errno must
       survive them (EAGAIN from a changed futex word would leak out). */
    int saved = errno;
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    int err = r == 0 ? 0 : errno;
    errno = saved;
    return err;
}

void goro__futex_wake(_Atomic uint32_t *addr, int n) {
    int saved = errno;
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = saved;
}

bool goro__lock_try(goro__lock *l) {
    uint32_t z = 0;
    return atomic_compare_exchange_strong_explicit(&l->state, &z, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

void goro__lock_acquire(goro__lock *l) {
    uint32_t c = 0;
    if (GORO__LIKELY(atomic_compare_exchange_strong_explicit(&l->state, &c, 1, memory_order_acquire,
                                                             memory_order_relaxed)))
        return;
    /* Spin briefly: critical sections are a few dozen instructions. */
    for (int i = 0; i < 100; i++) {
        goro__cpu_relax();
        c = atomic_load_explicit(&l->state, memory_order_relaxed);
        if (c == 0) {
            if (atomic_compare_exchange_weak_explicit(&l->state, &c, 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return;
        }
    }
    if (c != 2)
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    while (c != 0) {
        goro__futex_wait(&l->state, 2, -1);
        c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
    }
}

void goro__lock_release(goro__lock *l) {
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        goro__futex_wake(&l->state, 1);
}

void goro__lock_release_v(void *l) { goro__lock_release((goro__lock *)l); }
