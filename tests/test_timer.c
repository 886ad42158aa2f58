/*
 * test_timer.c - the per-P timer heaps (src/runtime/timer.c): timers fire
 * in deadline order, stopped timers never fire, and a burst of sleeping
 * goroutines on one processor wakes in deadline order.
 */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "runtime/runtime.h"

/* ------------------------------------------- heap order and stop */

#define TM_N 3000

typedef struct tm_rec {
    goro__timer t;
    int64_t when;
    _Atomic int fired;
} tm_rec;

static tm_rec tm_recs[TM_N];
static int64_t tm_order[TM_N]; /* deadlines in firing order */
static _Atomic int tm_next, tm_nfired;

/* Runs under the heap lock, so firings of one heap are serialized. */
static void tm_fire(void *arg, uint64_t seq) {
    (void)seq;
    tm_rec *r = arg;
    atomic_store(&r->fired, 1);
    tm_order[atomic_fetch_add(&tm_next, 1)] = r->when;
    atomic_fetch_add(&tm_nfired, 1); /* publishes the slot to the test */
}

static void tm_arm_all(void *arg) {
    _Atomic int *stopped = arg;
    int64_t base = goro_nanotime() + GORO_MS(20);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < TM_N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tm_recs[i].when = base + (int64_t)(x % (uint64_t)GORO_MS(30));
        tm_recs[i].t.idx = -1;
        goro__timer_start(&tm_recs[i].t, tm_recs[i].when, tm_fire, &tm_recs[i], 0);
    }
    /* No yield in between: every timer is on this goroutine's P. Stop every
       third one before any is due (20 ms away). */
    for (int i = 0; i < TM_N; i += 3)
        if (goro__timer_stop(&tm_recs[i].t))
            atomic_fetch_add(stopped, 1);
}

GORO_TEST(timer, heap_fires_in_deadline_order_and_stop_removes, .timeout = 60) {
    _Atomic int stopped = 0;
    goro_go(tm_arm_all, &stopped);
    int want = TM_N - (TM_N + 2) / 3;
    cr_assert(goro_test_wait_until(atomic_load(&tm_nfired) == want, GORO_SEC(30)), "fired %d of %d",
              atomic_load(&tm_nfired), want);
    cr_assert_eq(atomic_load(&stopped), (TM_N + 2) / 3, "a stop before the deadline failed");
    for (int i = 1; i < want; i++)
        cr_assert_leq(tm_order[i - 1], tm_order[i], "fired out of order at %d", i);
    for (int i = 0; i < TM_N; i += 3)
        cr_assert_eq(atomic_load(&tm_recs[i].fired), 0, "a stopped timer fired");
    goro_sleep(GORO_MS(40)); /* nothing else fires late */
    cr_assert_eq(atomic_load(&tm_nfired), want);
}

/* ------------------------------- a burst of sleepers on one processor */

#define TB_N 4000

static int64_t tb_deadline[TB_N];
static int64_t tb_armed[TB_N]; /* the deadline the sleep's timer was armed with */
static bool tb_late[TB_N];     /* started after its deadline: not a timer wake */
static int tb_woke[TB_N];      /* goroutine index, in wake order */
static _Atomic int tb_nwoke;
static goro_waitgroup tb_wg;

static void tb_sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    int64_t now = goro_nanotime();
    tb_late[i] = now >= tb_deadline[i];
    if (!tb_late[i]) {
        goro_sleep(tb_deadline[i] - now);
        /* goro_sleep adds to its own clock reading, a little later than
           ours: order by what the timer was armed with. */
        tb_armed[i] = goro__getg()->timer.when;
    }
    tb_woke[atomic_fetch_add(&tb_nwoke, 1)] = i;
    goro_waitgroup_done(&tb_wg);
}

static void tb_spawner(void *arg) {
    (void)arg;
    /* Far enough out that every sleeper has started and parked first, even
       on a loaded machine (the ones that did not are left out below). */
    int64_t base = goro_nanotime() + GORO_MS(GORO_TEST_SANITIZED ? 3000 : 1000);
    for (int i = 0; i < TB_N; i++) {
        /* Deadlines interleaved against spawn order. */
        tb_deadline[i] = base + (int64_t)((i * 7919) % TB_N) * GORO_US(5);
        goro_go(tb_sleeper, (void *)(intptr_t)i);
    }
}

/* The burst, in a child started with GOROMAXPROCS=1: with one processor
   every sleeper's timer is on the same heap, and a woken goroutine runs
   before the next due timer is released, so the wake order is the deadline
   order. Exits 0, or 1 with what went wrong on stderr. */
static void tb_child(void) {
    if (goro_maxprocs(0) != 1) {
        fprintf(stderr, "GOROMAXPROCS=1 not honoured: %d\n", goro_maxprocs(0));
        _exit(1);
    }
    goro_waitgroup_add(&tb_wg, TB_N);
    goro_go(tb_spawner, NULL);
    goro_waitgroup_wait(&tb_wg);
    int inversions = 0, late = 0;
    int64_t last = INT64_MIN;
    for (int k = 0; k < TB_N; k++) {
        int i = tb_woke[k];
        if (tb_late[i]) { /* never slept (a very slow machine) */
            late++;
            continue;
        }
        if (tb_armed[i] < last)
            inversions++;
        else
            last = tb_armed[i];
    }
    if (late >= TB_N / 2 || inversions) {
        fprintf(stderr, "%d of %d wake-ups out of deadline order, %d sleepers started late\n",
                inversions, TB_N, late);
        _exit(1);
    }
    _exit(0);
}

GORO_TEST(timer, burst_wakes_in_deadline_order_one_proc, .timeout = 60) {
    goro_test_skip_threaded_fork();
    char out[4096];
    int st = goro_test_run_child_opts(
        &(goro_test_child_opts){.env_name = "GOROMAXPROCS", .env_value = "1"}, tb_child, out,
        sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x:\n%s", st, out);
}
