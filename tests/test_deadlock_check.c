/*
 * test_deadlock_check.c - the deadlock check's rule for a plain thread's
 * wake-up in flight (src/runtime/deadlock.c, the protocol).
 *
 * A waker takes a plain thread's futex word to 0 and only then uncounts it;
 * in between the woken thread runs while still counted asleep. These tests
 * hold that state open on purpose: a helper thread brackets a wake-up
 * (goro__thread_wake_begin/end) and, for its duration, counts itself in
 * nthreads_blocked, standing for the woken thread that runs on while
 * counted. Every task of the process then looks asleep to the check, and
 * only the bracket tells it otherwise. tests/stress thread_relay hits the
 * same window without help (before the fix: ~1 false report in 300 runs).
 *
 * Each scenario runs in a forked child (the runtime starts there, no other
 * thread exists), so the counts are exactly the child's.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "goro_test_internal.h"
#include "runtime/sched.h"

typedef struct in_flight {
    goro_chan *to_main;
    bool then_block;        /* after the wake-up: block for good instead of sending */
    _Atomic bool bracketed; /* the wake-up has begun */
} in_flight;

/* Polls with plain usleep: a goro_sleep would count this thread as a timed
   waiter, and the check stays quiet while there is one. */
static bool poll_until(_Atomic bool *flag, bool (*cond)(void)) {
    for (int i = 0; i < 50000; i++) { /* 10 s */
        if (flag ? atomic_load(flag) : cond())
            return true;
        usleep(200);
    }
    return false;
}

static bool main_parked(void) { return goro_test_parked_as(1, GORO__WAIT_CHAN_RECV); }

static void *wake_in_flight(void *arg) {
    in_flight *w = arg;
    goro__thread_wake_begin();
    atomic_fetch_add(&goro__sched.nthreads_blocked, 1);
    atomic_store(&w->bracketed, true);
    /* Goroutine 1 parks on its receive and runs the check meanwhile. */
    if (!poll_until(NULL, main_parked))
        _exit(4);
    usleep(100000); /* its check follows its park at once; let it run */
    atomic_fetch_sub(&goro__sched.nthreads_blocked, 1);
    goro__thread_wake_end();
    if (w->then_block) {
        goro_chan *never = goro_chan_make(sizeof(int), 0);
        goro_chan_recv(never, NULL); /* now everything sleeps: a true report */
    }
    int v = 42;
    goro_chan_send(w->to_main, &v);
    return NULL;
}

static in_flight scenario;

/* Goroutine 1 of the child: starts `helper`, waits until it has set up its
   state, then receives the helper's 42 and exits 0 (3 on a wrong value). */
static void receive_from(void *(*helper)(void *)) {
    scenario.to_main = goro_chan_make(sizeof(int), 0);
    pthread_t t;
    pthread_create(&t, NULL, helper, &scenario);
    if (!poll_until(&scenario.bracketed, NULL))
        _exit(4);
    int v = 0;
    goro_chan_recv(scenario.to_main, &v);
    pthread_join(t, NULL);
    _exit(v == 42 ? 0 : 3);
}

static void wake_then_send_child(void) { receive_from(wake_in_flight); }

static void wake_then_block_child(void) {
    scenario.then_block = true;
    wake_then_send_child();
}

GORO_TEST(deadlock_check, no_report_while_a_wake_is_in_flight, .timeout = 30) {
    char out[16384];
    int st = goro_test_run_child_threaded(wake_then_send_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, output:\n%s", st, out);
    cr_assert(strstr(out, "deadlock!") == NULL, "false report:\n%s", out);
}

GORO_TEST(deadlock_check, reported_once_the_wake_has_ended, .timeout = 30) {
    char out[16384];
    int st = goro_test_run_child_threaded(wake_then_block_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit 2, got %#x:\n%s", st, out);
    cr_assert(strncmp(out, "fatal error: all goroutines are asleep - deadlock!\n\n", 51) == 0,
              "output:\n%s", out);
}

/* The confirmation (goro__checkdead): a state that looks dead for an
   instant is not reported. A helper thread counts itself asleep while it
   runs (standing for any window where the counts are briefly wrong), so
   goroutine 1's check, when it parks, finds every task asleep; 1 ms later,
   well inside the 10 ms confirmation wait, the helper uncounts itself and
   sends. Without the second look the first one reports. */
static void *looks_dead_for_a_moment(void *arg) {
    in_flight *w = arg;
    atomic_fetch_add(&goro__sched.nthreads_blocked, 1);
    atomic_store(&w->bracketed, true);
    if (!poll_until(NULL, main_parked))
        _exit(4);
    usleep(1000);
    atomic_fetch_sub(&goro__sched.nthreads_blocked, 1);
    int v = 42;
    goro_chan_send(w->to_main, &v);
    return NULL;
}

static void looks_dead_child(void) { receive_from(looks_dead_for_a_moment); }

GORO_TEST(deadlock_check, no_report_when_it_moves_within_the_confirmation, .timeout = 30) {
    char out[16384];
    for (int round = 0; round < 5; round++) {
        int st = goro_test_run_child_threaded(looks_dead_child, out, sizeof out);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: status %#x, output:\n%s", round,
                  st, out);
        cr_assert(strstr(out, "deadlock!") == NULL, "round %d: false report:\n%s", round, out);
    }
}
