/*
 * test_chan_lock.c - the channel lock (chan_internal.h): mutual exclusion
 * when holders are preempted, and a contender that went to sleep on the
 * futex is woken by the unlock (no lost wake-up, no fixed nap).
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "goro.h"
#include "chan/chan_internal.h"
#include "goro_test.h"

/* ------------------------------------------------ a sleeper is woken */

typedef struct lk_waiter {
    goro__chan_lock *l;
    _Atomic int done;
} lk_waiter;

static void *lk_acquire_release(void *arg) {
    lk_waiter *w = arg;
    goro__chan_lock_acquire(w->l);
    goro__chan_lock_release(w->l);
    atomic_store(&w->done, 1);
    return NULL;
}

/* A plain thread that cannot get the lock counts itself a sleeper and sleeps
   (where the kernel offers membarrier); releasing the lock must wake it. */
GORO_TEST(chan_lock, sleeper_woken_by_release, .timeout = 30) {
    goro__chan_lock l = {0};
    goro__chan_lock_acquire(&l);
    lk_waiter w = {.l = &l};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, lk_acquire_release, &w), 0);
    if (goro__chan_lock_sleeps())
        cr_assert(goro_test_wait_until(atomic_load(&l.sleepers) == 1, GORO_SEC(10)),
                  "the contender never went to sleep");
    cr_assert_eq(atomic_load(&w.done), 0, "acquired a held lock");
    goro__chan_lock_release(&l);
    cr_assert(goro_test_wait_until(atomic_load(&w.done) == 1, GORO_SEC(10)),
              "the sleeping contender was not woken by the release");
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&l.state), 0);
    cr_assert_eq(atomic_load(&l.sleepers), 0);
}

/* --------------------------------- exclusion with preempted holders */

#define LK_THREADS 8
#define LK_ITERS 200000

typedef struct lk_shared {
    goro__chan_lock l;
    long counter; /* plain: protected by l (TSan checks the exclusion) */
    long in_section;
    _Atomic long violations;
} lk_shared;

static void *lk_hammer(void *arg) {
    lk_shared *s = arg;
    for (int i = 0; i < LK_ITERS; i++) {
        goro__chan_lock_acquire(&s->l);
        if (s->in_section++ != 0)
            atomic_fetch_add(&s->violations, 1);
        s->counter++;
        s->in_section--;
        goro__chan_lock_release(&s->l);
    }
    return NULL;
}

/* More threads than CPUs: the kernel preempts holders, so contenders take
   the sleeping path and are woken over and over. */
GORO_TEST(chan_lock, excludes_with_more_threads_than_cpus, .timeout = 120) {
    lk_shared s = {0};
    pthread_t t[LK_THREADS];
    for (int i = 0; i < LK_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, lk_hammer, &s), 0);
    for (int i = 0; i < LK_THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&s.violations), 0);
    cr_assert_eq(s.counter, (long)LK_THREADS * LK_ITERS);
    cr_assert_eq(atomic_load(&s.l.state), 0);
    cr_assert_eq(atomic_load(&s.l.sleepers), 0);
}

/* ------------------------------ channels: threads and goroutines mixed */

#define LK_ITEMS 20000

typedef struct lk_pipe {
    goro_chan *c;
    _Atomic long sum;
    goro_waitgroup wg;
} lk_pipe;

static void lk_produce(void *arg) {
    lk_pipe *p = arg;
    for (long i = 1; i <= LK_ITEMS; i++)
        goro_chan_send(p->c, &i);
    goro_waitgroup_done(&p->wg);
}

static void lk_consume(void *arg) {
    lk_pipe *p = arg;
    long v, sum = 0;
    for (int i = 0; i < LK_ITEMS; i++) {
        cr_assert(goro_chan_recv(p->c, &v));
        sum += v;
    }
    atomic_fetch_add(&p->sum, sum);
    goro_waitgroup_done(&p->wg);
}

static void *lk_thread_produce(void *arg) {
    lk_produce(arg);
    return NULL;
}

static void *lk_thread_consume(void *arg) {
    lk_consume(arg);
    return NULL;
}

/* Two goroutine and two thread producers against as many consumers on one
   small buffered channel, with more threads than CPUs: nothing is lost or
   duplicated while channel locks are contended and slept on. */
GORO_TEST(chan_lock, channel_mpmc_threads_oversubscribed, .timeout = 120) {
    int start = goro_count();
    lk_pipe p = {.c = goro_chan_make(sizeof(long), 4)};
    cr_assert_not_null(p.c);
    goro_waitgroup_add(&p.wg, 8);
    pthread_t t[4];
    for (int i = 0; i < 2; i++) {
        goro_go(lk_produce, &p);
        goro_go(lk_consume, &p);
        cr_assert_eq(pthread_create(&t[2 * i], NULL, lk_thread_produce, &p), 0);
        cr_assert_eq(pthread_create(&t[2 * i + 1], NULL, lk_thread_consume, &p), 0);
    }
    goro_waitgroup_wait(&p.wg);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    long n = LK_ITEMS;
    cr_assert_eq(atomic_load(&p.sum), 4 * (n * (n + 1) / 2));
    cr_assert_eq(goro_chan_len(p.c), 0);
    goro_chan_release(p.c);
    goro_test_await_count(start);
}
