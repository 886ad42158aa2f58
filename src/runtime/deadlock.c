/*
 * deadlock.c - "all goroutines are asleep", and the runtime's fatal paths.
 *
 * Go reports a deadlock when no M is running and nothing can make progress.
 * In C other threads the runtime does not know may still act (and wake a
 * goroutine through a channel), so the rule here is stricter and never fires
 * falsely: it is checked (under sched.lock) by whatever goes to sleep last,
 * and reports only when
 *   - every P is idle, no M spins, every M sleeps, both run queues are empty;
 *   - no timer is pending, no plain thread waits with a deadline, no I/O or
 *     syscall wait is outstanding;
 *   - every thread of the process (/proc/self/task) is one the runtime knows
 *     to be asleep: an idle M, a plain thread blocked in the runtime, or a
 *     registered helper thread (debug server, monitor).
 *
 * Protocol: what makes each count true when it is read under sched.lock.
 *   - an M is on sched.midle (nmidle) only while it is in findrunnable's
 *     idle loop; whoever hands it a P takes it off under the lock, and an M
 *     that waits in the poller takes itself off first. nmidle == mcount:
 *     no M runs, spins or polls;
 *   - a P is on sched.pidle only with an empty local queue (findrunnable
 *     gives its P back after finding the queue empty, and only the owner
 *     puts to it; retire_p moves the queue to the global one first), or
 *     with a wakep() after the put: sysmon's goro__retake lists a P taken
 *     from a syscall with its queue as it was and wakes an M only after
 *     releasing the lock. sysmon is a helper, counted asleep, so the check
 *     looks at every P's queue itself (goro__checkdead);
 *   - a plain thread (goroutine 1 included) is counted in nthreads_blocked
 *     or nthreads_timed from just before it publishes its futex word, under
 *     the lock of what it waits on (no waker can see it yet), until the
 *     exchange that takes the word back to 0;
 *   - a woken plain thread is awake but still counted from its waker's
 *     exchange to the waker's decrement. If the waker is a plain thread
 *     preempted in between, the woken thread can run, park again (counted
 *     twice) and be the last to sleep: the counts then add up to every
 *     task of the process while the waker runs. So the waker brackets the
 *     exchange and decrement (goro__thread_wake_begin/end: wakes_begun,
 *     wakes_done), and the check reports only if the wakes_begun it reads
 *     last equals the wakes_done it read first: no wake-up was in flight
 *     at any moment while it read the counts. The waker needs no recheck:
 *     it is awake and not counted, and whatever goes to sleep after it
 *     checks again;
 *   - nexternal counts goroutines in I/O waits and syscall brackets: any
 *     of them may wake something.
 *
 * Invariant, as one line: the check fires only if, over the whole time it
 * reads the counts under sched.lock, every thread of the process is
 * provably asleep and nothing that could wake one (a runnable goroutine on
 * any queue, a timer, I/O, a syscall, a wake-up in flight) exists.
 *
 * Confirmation (goro__checkdead in sched.c): the check must pass twice,
 * 10 ms apart, with no goroutine switch on any P, no plain-thread wake-up
 * begun and no change in the parked threads in between. `make stress`
 * still produced, about once in 7,000-8,000 runs (chan_mpmc, 2 and 4 processors), a
 * report with goroutines runnable moments later, after the wake-in-flight
 * window above was closed; that window is not yet found. A real deadlock
 * does not move, so it is reported 10 ms later than it would be; a
 * program that only looked stuck for an instant is not killed.
 */
#include "sched.h"
#include "upcalls.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void goro__write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* No goro__init here: helper threads are started during init itself, and
   counting one must not wait for init to finish. */
void goro__helper_thread_register(void) {
    atomic_fetch_add(&goro__sched.nhelpers, 1);
    goro__deadlock_recheck();
}

void goro__helper_thread_unregister(void) { atomic_fetch_sub(&goro__sched.nhelpers, 1); }

void goro__external_waiters_add(int delta) { atomic_fetch_add(&goro__sched.nexternal, delta); }

/* Wake-ups of counted plain threads begun and ended (see the protocol). */
static _Atomic uint64_t wakes_begun, wakes_done;

void goro__thread_wake_begin(void) { atomic_fetch_add(&wakes_begun, 1); }
void goro__thread_wake_end(void) { atomic_fetch_add(&wakes_done, 1); }

uint64_t goro__deadlock_wakes_begun(void) { return atomic_load(&wakes_begun); }

bool goro__checkdead_impl(bool report) {
    uint64_t done = atomic_load(&wakes_done);
    int known = goro__sched.mcount + atomic_load(&goro__sched.nthreads_blocked) +
                atomic_load(&goro__sched.nhelpers);
    int tasks = count_tasks();
    if (tasks < 0 || tasks != known)
        return false;
    if (atomic_load(&wakes_begun) != done)
        return false; /* a woken thread may still be counted */
    /* goroutine 1 counts in goro_count() until it calls goro_exit. As a
       plain thread (GORODEBUG=lockmain=1, or a runtime started off the main
       thread) it runs outside the runtime without being counted asleep, so
       it alone is not a deadlock; as a goroutine it needs a P to run, and
       with every P idle it is parked like any other. */
    bool main_gone = atomic_load(&goro__main_goexited);
    int n = main_gone ? goro__live_count() : goro_count();
    int floor = !main_gone && goro__main_goroutine()->is_thread ? 1 : 0;
    if (atomic_load(&goro__sched.nthreads_blocked) == 0 && n <= floor) {
        /* Nothing is blocked: e.g. every goroutine ended and no thread waits
           (after goro_exit in main, g.c or sched.c reports "no goroutines"). */
        return false;
    }
    if (!report)
        return true;
    goro__lock_release(&goro__sched.lock);
    goro__fatal("all goroutines are asleep - deadlock!");
}

static void print_all(void *arg) {
    (void)arg;
    goro__upcalls.traceback_print(2, NULL, true);
}

void goro__fatal(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    goro__write_all(2, "fatal error: ", 13);
    goro__write_all(2, buf, (size_t)n);
    goro__write_all(2, "\n\n", 2);
    goro__systemstack(print_all, NULL);
    if (goro__debug.traceback >= 3)
        abort();
    _exit(2);
}

void goro__throw(const char *msg) {
    goro__write_all(2, "fatal error: ", 13);
    goro__write_all(2, msg, strlen(msg));
    goro__write_all(2, "\n\n", 2);
    goro__systemstack(print_all, NULL);
    abort();
}
