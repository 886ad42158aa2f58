/*
 * test_main_goroutine.c - goroutine 1 is a goroutine (docs/runtime.md,
 * "Goroutine 1"): Criterion runs each test body on the first thread of the
 * test's process, the main thread, so these bodies are goroutine 1 exactly
 * as a program's main() is.
 *
 * - while goroutine 1 waits, its thread runs other goroutines (one
 *   processor: the goroutine it readies runs on the same thread);
 * - a hand-off with goroutine 1 is a goroutine switch: at one processor a
 *   ping-pong of 20,000 round trips never leaves the thread;
 * - it comes back when every P is held by a goroutine that never yields,
 *   and goroutines still run while it blocks in a plain C call (the
 *   monitor's hog rule lends a P; goro_maxprocs(0) keeps the setting);
 * - GORODEBUG=lockmain=1 keeps it a plain thread that never moves.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"

/* The OS thread, read fresh every time. */
static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

typedef struct seen {
    pid_t tid;
    goro_waitgroup wg;
} seen;

static void note_thread(void *arg) {
    seen *s = arg;
    s->tid = tid();
    goro_waitgroup_done(&s->wg);
}

GORO_TEST(main_goroutine, is_goroutine_1_and_its_thread_serves_while_it_waits, .timeout = 30) {
    goro_maxprocs(1);
    cr_assert_eq(goro_id(), 1);
    cr_assert_eq(tid(), getpid(), "Criterion ran the body off the main thread");
    pid_t me = tid();
    seen s = {0};
    goro_waitgroup_add(&s.wg, 1);
    cr_assert_neq(goro_go(note_thread, &s), 0);
    goro_waitgroup_wait(&s.wg);
    /* One P, held by goroutine 1 until it parked: the goroutine it made ran
       next on the same thread, no other thread was woken for it. */
    cr_assert_eq(s.tid, me, "the goroutine ran on thread %d, goroutine 1 was on %d", s.tid, me);
}

typedef struct pingpong {
    goro_chan *ping, *pong;
    atomic_int other_threads;
} pingpong;

static void ponger(void *arg) {
    pingpong *pp = arg;
    pid_t first = tid();
    int v;
    while (goro_chan_recv(pp->ping, &v) && v >= 0) {
        if (tid() != first)
            atomic_fetch_add(&pp->other_threads, 1);
        goro_chan_send(pp->pong, &v);
    }
}

GORO_TEST(main_goroutine, pingpong_at_one_processor_stays_on_one_thread, .timeout = 30) {
    goro_maxprocs(1);
    pingpong pp = {goro_chan_make(sizeof(int), 0), goro_chan_make(sizeof(int), 0), 0};
    goro_chan *const holds[] = {pp.ping, pp.pong, NULL};
    cr_assert_neq(goro_go_opts(&(goro_opts){.holds = holds}, ponger, &pp), 0);
    pid_t first = tid();
    int moved = 0;
    for (int i = 0; i < 20000; i++) {
        int v;
        goro_chan_send(pp.ping, &i);
        cr_assert(goro_chan_recv(pp.pong, &v));
        cr_assert_eq(v, i);
        moved += tid() != first;
    }
    int stop = -1;
    goro_chan_send(pp.ping, &stop);
    cr_assert_eq(moved, 0, "goroutine 1 changed threads %d times at one processor", moved);
    cr_assert_eq(atomic_load(&pp.other_threads), 0);
    goro_chan_release(pp.ping);
    goro_chan_release(pp.pong);
}

static atomic_int spin_stop, spinning;

/* Holds its P without a single goro call until told to stop. */
static void spinner(void *arg) {
    (void)arg;
    atomic_fetch_add(&spinning, 1);
    while (!atomic_load(&spin_stop))
        __asm__ __volatile__("" ::: "memory");
    atomic_fetch_sub(&spinning, 1);
}

GORO_TEST(main_goroutine, comes_back_while_every_p_spins, .timeout = 60) {
    goro_maxprocs(2);
    for (int i = 0; i < 2; i++)
        cr_assert_neq(goro_go(spinner, NULL), 0);
    cr_assert(goro_test_wait_until(atomic_load(&spinning) == 2, GORO_SEC(10)));
    /* Both Ps spin; goroutine 1 must still get one back after each sleep:
       the monitor lends a P once every P has computed for a second without
       a switch (sysmon.c, ALL_HOGS_NS), and keeps it lent while they do. */
    for (int i = 0; i < 20; i++) {
        int64_t t0 = goro_nanotime();
        goro_sleep(GORO_MS(1));
        cr_assert_lt(goro_nanotime() - t0, GORO_SEC(5), "goroutine 1 waited %lld ms for a P",
                     (long long)((goro_nanotime() - t0) / 1000000));
    }
    cr_assert_eq(goro_maxprocs(0), 2, "lent Ps show in goro_maxprocs(0)");
    atomic_store(&spin_stop, 1);
    cr_assert(goro_test_wait_until(atomic_load(&spinning) == 0, GORO_SEC(10)));
}

typedef struct counter {
    goro_chan *c;
    atomic_int done;
} counter;

static void producer(void *arg) {
    counter *k = arg;
    for (int i = 0; i < 1000; i++)
        goro_chan_send(k->c, &i);
    goro_chan_close(k->c);
}

static void consumer(void *arg) {
    counter *k = arg;
    int v, n = 0;
    while (goro_chan_recv(k->c, &v))
        n++;
    atomic_store(&k->done, n);
}

/* Goroutine 1 blocked in a plain C call holds its P; the goroutines it
   started must not wait for it (one processor: nothing else could run
   them without the monitor lending a P). */
GORO_TEST(main_goroutine, goroutines_run_while_it_blocks_outside_goro, .timeout = 60) {
    goro_maxprocs(1);
    counter k = {goro_chan_make(sizeof(int), 0), 0};
    goro_chan *const holds[] = {k.c, NULL};
    cr_assert_neq(goro_go_opts(&(goro_opts){.holds = holds}, producer, &k), 0);
    cr_assert_neq(goro_go_opts(&(goro_opts){.holds = holds}, consumer, &k), 0);
    /* A plain sleep, not goro_sleep: the P stays with goroutine 1, whose
       thread sleeps in the kernel, so the monitor lends a P within a tick
       or two (well under the 1 s after which it lends one for computing
       hogs too: this bound tells the two rules apart). */
    for (int i = 0; i < 80 && atomic_load(&k.done) == 0; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&k.done), 1000, "the goroutines did not run while main slept");
    goro_chan_release(k.c);
}

/* The old rule on request: goroutine 1 stays on the main thread. */
Test(main_goroutine, lockmain_keeps_it_on_the_main_thread, .timeout = 60) {
    setenv("GORODEBUG", "lockmain=1", 1);
    goro_maxprocs(2);
    pid_t me = tid();
    pingpong pp = {goro_chan_make(sizeof(int), 0), goro_chan_make(sizeof(int), 0), 0};
    goro_chan *const holds[] = {pp.ping, pp.pong, NULL};
    cr_assert_neq(goro_go_opts(&(goro_opts){.holds = holds}, ponger, &pp), 0);
    for (int i = 0; i < 2000; i++) {
        int v;
        goro_chan_send(pp.ping, &i);
        cr_assert(goro_chan_recv(pp.pong, &v));
        cr_assert_eq(tid(), me);
    }
    int stop = -1;
    goro_chan_send(pp.ping, &stop);
    goro_chan_release(pp.ping);
    goro_chan_release(pp.pong);
}
