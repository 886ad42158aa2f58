/*
 * test_io_close_race.c - goro_close racing the calls in flight on the same
 * descriptor, on many descriptors at once, many rounds: readers and writers
 * parked with short deadlines (the deadline timer, goro_close and the poller
 * all try to wake the same waiter), and "late" callers that start their call
 * at the moment goro_close starts (a goroutine read, write or wait, and a
 * plain thread's read).
 *
 * What must hold: goro_close returns 0; a call with a short deadline returns
 * EBADF or ETIMEDOUT (a writer may also finish, if the socket took it all);
 * a call with a long deadline returns EBADF at once - never ETIMEDOUT, which
 * would mean it slept on a descriptor that had been closed under it (it got
 * in after goro_close's drain and parked in epoll or ppoll on a number that
 * close(2) then removed). Under TSan the rounds also give the detector many
 * close(2)s racing read/write/poll/epoll_ctl on the same descriptor: each of
 * those must be ordered before the close(2) (see netpoll.c, "Closing").
 *
 * Bounded: ROUNDS x PAIRS closes; no outcome depends on speed (the close
 * delays only vary where the close lands; every outcome is legal except the
 * ones above).
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "goro.h"
#include "goro_test.h"
#include "io/io_internal.h"

enum {
    ROUNDS = 24,
    PAIRS = 12,
    THREADS = 4, /* plain-thread late callers per round */
    BIG = 1 << 20, /* far more than the shrunken socket buffers take */
};

#define LONG_DEADLINE GORO_SEC(10)

typedef enum { OP_READ, OP_WRITE, OP_WAIT, OP_KINDS } op_kind;

/* One descriptor under test (b of a connected pair a-b; nobody writes to a,
   so b never becomes readable and fills up quickly when written). */
typedef struct race_fd {
    int a, b;
    int64_t close_delay_ns;
    _Atomic bool closing; /* set just before goro_close(b): the late callers go */
    _Atomic bool closed;  /* set when goro_close(b) returned */
    int close_result;
    goro_waitgroup wg;
} race_fd;

typedef struct race_call {
    race_fd *f;
    op_kind kind;
    bool late;             /* waits for f->closing, then calls with LONG_DEADLINE */
    int64_t late_delay_ns; /* ... after this much more, */
    bool watch;            /* ... or when goro_close is past its drain (race_await_reopen) */
    int64_t timeout; /* early callers: a short deadline */
    ssize_t r;
} race_call;

static char big_buf[BIG];

static const char *op_name(op_kind k) {
    return k == OP_READ ? "read" : k == OP_WRITE ? "write" : "wait_fd";
}

static ssize_t race_do(race_call *c, int64_t timeout) {
    char buf[64];
    switch (c->kind) {
    case OP_READ:
        return goro_read(c->f->b, buf, sizeof buf, timeout);
    case OP_WRITE:
        return goro_write(c->f->b, big_buf, sizeof big_buf, timeout);
    default:
        return goro_wait_fd(c->f->b, POLLIN, timeout);
    }
}

/* Spins (finer than a timer) until `ns` after t0. */
static void race_spin_until(int64_t t0, int64_t ns) {
    while (goro_nanotime() - t0 < ns)
        goro_yield();
}

static void race_await_reopen(race_fd *f, void (*yield)(void));

static void race_call_g(void *arg) {
    race_call *c = arg;
    if (c->late) {
        while (!atomic_load(&c->f->closing))
            goro_yield();
        if (c->watch)
            race_await_reopen(c->f, goro_yield);
        else
            race_spin_until(goro_nanotime(), c->late_delay_ns);
        c->r = race_do(c, LONG_DEADLINE);
    } else {
        c->r = race_do(c, c->timeout);
    }
    goro_waitgroup_done(&c->f->wg);
}

/* Late callers on plain threads that start their call at the end of
   goro_close: they meet the closer through nothing but the descriptor's
   record (goroutines also meet it in the scheduler's run queues, which
   orders much for TSan), so TSan sees an unordered use of the descriptor if
   there is one. A thread's first wait makes its eventfd: that
   happens before the round (a descriptor made during the round could take a
   closed one's number, and a late call would then be a call on that new
   descriptor). */
typedef struct race_thread {
    race_call c;
    int warm_fd;
    _Atomic bool warm;
    pthread_t th;
} race_thread;

/* White-box: starts the call right in goro_close's last step, where a
   record that reopened before close(2) let calls in. Waits (yielding) until
   goro_close has set CLOSING and drained the count, then spins hard, without
   yielding, while CLOSING stays set (a short step: epoll_ctl, close(2)), so
   the call follows its end as closely as it can; gives up spinning hard
   after a while (the closer's thread may have been preempted). Also ends
   when goro_close returned before any of this was seen. */
static void race_await_reopen(race_fd *f, void (*yield)(void)) {
    int err;
    goro__pd *pd = goro__pd_get(f->b, &err);
    cr_assert_not_null(pd);
    while (!(atomic_load(&pd->ref) & GORO__PD_CLOSING) && !atomic_load(&f->closed))
        yield();
    while (atomic_load(&pd->ref) & ~GORO__PD_CLOSING)
        yield();
    for (int spins = 0; atomic_load_explicit(&pd->ref, memory_order_relaxed) & GORO__PD_CLOSING;
         spins++) {
        if (spins > 100000)
            yield();
    }
    atomic_thread_fence(memory_order_acquire);
}

static void thread_yield(void) { sched_yield(); }

static void *race_call_thread(void *arg) {
    race_thread *t = arg;
    race_call *c = &t->c;
    char buf[1];
    goro_read(t->warm_fd, buf, 1, GORO_US(1));
    atomic_store(&t->warm, true);
    while (!atomic_load(&c->f->closing))
        sched_yield();
    race_await_reopen(c->f, thread_yield);
    c->r = race_do(c, LONG_DEADLINE);
    return NULL;
}

static void race_closer_g(void *arg) {
    race_fd *f = arg;
    race_spin_until(goro_nanotime(), f->close_delay_ns);
    atomic_store(&f->closing, true);
    f->close_result = goro_close(f->b);
    atomic_store(&f->closed, true);
    goro_waitgroup_done(&f->wg);
}

static void race_pair(race_fd *f) {
    char addr[64];
    int ln = goro_listen_tcp("127.0.0.1:0", 16);
    cr_assert_geq(ln, 0, "goro_listen_tcp: %s", goro_strerror(ln));
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(ln, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    f->a = goro_dial_tcp(addr, GORO_SEC(5));
    cr_assert_geq(f->a, 0, "dial: %s", goro_strerror(f->a));
    f->b = goro_accept(ln, GORO_SEC(5));
    cr_assert_geq(f->b, 0, "accept: %s", goro_strerror(f->b));
    cr_assert_eq(goro_close(ln), 0);
    /* Small buffers: a writer parks after a few KB. */
    int small = 4096;
    setsockopt(f->b, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(f->a, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

/* Early callers per descriptor: a reader, a writer and a waiter with short
   deadlines; late ones: the same three with a long one. */
#define CALLS (2 * OP_KINDS)

GORO_TEST(io, close_race_stress, .timeout = 120) {
    static race_fd fds[PAIRS];
    static race_call calls[PAIRS][CALLS];
    static race_thread threads[THREADS];
    int early[3] = {0}; /* EBADF, ETIMEDOUT, completed */
    int late_ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PAIRS; i++) {
            race_fd *f = &fds[i];
            *f = (race_fd){0};
            race_pair(f);
            int k = round * PAIRS + i;
            f->close_delay_ns = GORO_US((k * 37) % 400);
        }
        for (int t = 0; t < THREADS; t++) {
            race_thread *rt = &threads[t];
            int k = round * THREADS + t;
            *rt = (race_thread){.warm_fd = fds[0].a};
            rt->c = (race_call){.f = &fds[k % PAIRS], .kind = (op_kind)(k % OP_KINDS), .late = true};
            cr_assert_eq(pthread_create(&rt->th, NULL, race_call_thread, rt), 0);
        }
        for (int t = 0; t < THREADS; t++)
            cr_assert(goro_test_wait_until(atomic_load(&threads[t].warm), GORO_SEC(10)));
        for (int i = 0; i < PAIRS; i++) {
            race_fd *f = &fds[i];
            goro_waitgroup_add(&f->wg, CALLS + 1);
            for (int j = 0; j < CALLS; j++) {
                race_call *c = &calls[i][j];
                *c = (race_call){.f = f, .kind = (op_kind)(j % OP_KINDS), .late = j >= OP_KINDS};
                c->timeout = GORO_US(50 + ((round + i + j) % 8) * 50);
                c->late_delay_ns = GORO_US(((round * 13 + i * 7 + j * 29) % 6) * 20);
                c->watch = (round + i + j) % 2 == 0;
                goro_go(race_call_g, c);
            }
            goro_go(race_closer_g, f);
        }
        for (int i = 0; i < PAIRS; i++) {
            race_fd *f = &fds[i];
            goro_waitgroup_wait(&f->wg);
            cr_assert_eq(f->close_result, 0, "round %d fd %d: goro_close: %s", round, i,
                         goro_strerror(f->close_result));
            for (int j = 0; j < CALLS; j++) {
                race_call *c = &calls[i][j];
                if (c->late) {
                    cr_assert_eq(c->r, -EBADF,
                                 "round %d fd %d: a %s that started with goro_close returned "
                                 "%zd (%s), not EBADF",
                                 round, i, op_name(c->kind), c->r, goro_strerror((int)c->r));
                    late_ok++;
                    continue;
                }
                bool done = c->kind == OP_WRITE && c->r == (ssize_t)sizeof big_buf;
                cr_assert(c->r == -EBADF || c->r == -ETIMEDOUT || done,
                          "round %d fd %d: a %s with a deadline returned %zd (%s)", round, i,
                          op_name(c->kind), c->r, goro_strerror((int)c->r));
                early[c->r == -EBADF ? 0 : c->r == -ETIMEDOUT ? 1 : 2]++;
            }
        }
        for (int t = 0; t < THREADS; t++) {
            race_call *c = &threads[t].c;
            pthread_join(threads[t].th, NULL);
            cr_assert_eq(c->r, -EBADF,
                         "round %d: a plain thread's %s that started with goro_close returned "
                         "%zd (%s), not EBADF",
                         round, op_name(c->kind), c->r, goro_strerror((int)c->r));
            late_ok++;
        }
        for (int i = 0; i < PAIRS; i++)
            cr_assert_eq(goro_close(fds[i].a), 0);
    }
    cr_log_info("close race: %d closes; early calls: %d EBADF, %d ETIMEDOUT, %d completed; %d late "
                "calls EBADF",
                ROUNDS * PAIRS, early[0], early[1], early[2], late_ok);
}
