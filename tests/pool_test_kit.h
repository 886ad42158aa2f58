/*
 * pool_test_kit.h - what the pool and limiter tests (test_pool.c,
 * test_limiter.c) share: payload casts, a concurrency meter, the goroutine
 * profile as text, and closing in the background (waiting for a state is
 * goro_test_wait_until).
 * Include after goro_test.h.
 */
#ifndef GORO_POOL_TEST_KIT_H
#define GORO_POOL_TEST_KIT_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "goro.h"
#include "goro_test.h"

#define P2I(p) ((intptr_t)(p))
#define I2P(i) ((void *)(intptr_t)(i))

/* How many jobs or tasks run at once, and the most seen. */
typedef struct pool_kit_meter {
    _Atomic int running, max_running;
} pool_kit_meter;

static inline __attribute__((unused)) void pool_kit_meter_enter(pool_kit_meter *m) {
    int now = atomic_fetch_add(&m->running, 1) + 1;
    int seen = atomic_load(&m->max_running);
    while (now > seen && !atomic_compare_exchange_weak(&m->max_running, &seen, now))
        ;
}

static inline __attribute__((unused)) void pool_kit_meter_leave(pool_kit_meter *m) {
    atomic_fetch_sub(&m->running, 1);
}

/* The goroutine profile, debug=1 (grouped text with labels), as a string
   to free. */
static inline __attribute__((unused)) char *pool_kit_profile_text(void) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(goro_profile_write(f, 1), 0);
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    buf[fread(buf, 1, (size_t)n, f)] = 0;
    fclose(f);
    return buf;
}

/* Runs close(obj) in a goroutine, then sends on done: lets a test check that
   a close waits (done stays silent) and then returns. */
typedef struct pool_kit_closer {
    void (*close)(void *obj);
    void *obj;
    goro_chan *done; /* element size 0, capacity >= 1 */
} pool_kit_closer;

static inline __attribute__((unused)) void pool_kit_close_async(void *arg) {
    pool_kit_closer *c = arg;
    c->close(c->obj);
    goro_chan_send(c->done, NULL);
}

/* Nothing arrives on ch for a while (20 ms): what it signals has not
   happened yet. */
static inline __attribute__((unused)) bool pool_kit_still_silent(goro_chan *ch) {
    return goro_chan_recv_timeout(ch, NULL, NULL, GORO_MS(20)) == GORO_ETIMEDOUT;
}

#endif
