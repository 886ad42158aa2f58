/*
 * test_io_close_race.c - goro_close racing the calls on the same descriptor,
 * on many descriptors at once, many rounds: readers, writers and fd waiters
 * parked with short deadlines (the deadline timer, goro_close and the poller
 * all try to wake the same waiter), and "late" callers (goroutines and plain
 * threads) that start their call while goro_close runs: some a little after
 * it starts, some right as goro_close reopens the record (race_await_reopen,
 * white-box: it watches pd->ref).
 *
 * What must hold: goro_close returns 0; a call with a short deadline returns
 * EBADF or ETIMEDOUT (a writer may also finish, if the socket took it all);
 * a late call returns EBADF at once - never ETIMEDOUT after its long
 * deadline, which would mean it got in while the descriptor was being closed
 * and parked in epoll or ppoll on a file that close(2) then removed; and a
 * record never reopens while its descriptor is still open. Under TSan the
 * rounds also give the detector many close(2)s next to reads, writes, polls
 * and epoll_ctls of the same descriptor: each must be ordered before or after
 * the close(2) (see netpoll.c, "Closing").
 *
 * Bounded: ROUNDS x PAIRS closes. No outcome depends on speed: the delays
 * only vary where the calls land (a late call that landed after goro_close
 * returned still gets EBADF: see race_holes_open).
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "io/io_internal.h"

enum {
    ROUNDS = 64,
    PAIRS = 12,
    THREADS = 4,   /* plain-thread late callers per round */
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
    bool caught;           /* watch: saw the record reopen, */
    bool open_after;       /* ... and the descriptor still open then (a bug) */
    int64_t timeout;       /* early callers: a short deadline */
    ssize_t r;
} race_call;

static char big_buf[BIG];

static const char *op_name(op_kind k) {
    return k == OP_READ ? "read" : k == OP_WRITE ? "write" : "wait_fd";
}

static ssize_t race_do(race_call *c, int64_t timeout) {
    char buf[64];
    switch (c->kind) {
    case OP_READ: return goro_read(c->f->b, buf, sizeof buf, timeout);
    case OP_WRITE: return goro_write(c->f->b, big_buf, sizeof big_buf, timeout);
    default: return goro_wait_fd(c->f->b, POLLIN, timeout);
    }
}

/* Spins (finer than a timer) until `ns` after t0. */
static void race_spin_until(int64_t t0, int64_t ns) {
    while (goro_nanotime() - t0 < ns)
        goro_yield();
}

static bool race_await_reopen(race_fd *f, void (*yield)(void), bool *open_after);

static void race_call_g(void *arg) {
    race_call *c = arg;
    if (c->late) {
        while (!atomic_load(&c->f->closing))
            goro_yield();
        if (c->watch)
            c->caught = race_await_reopen(c->f, goro_yield, &c->open_after);
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
   there is one. A thread's first wait makes its eventfd: that happens
   before the round (see race_holes_open). */
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
   when goro_close returned before any of this was seen. Returns whether it
   saw the record reopen while spinning hard; then it also looks at once
   whether the descriptor is still open (*open_after): it must not be. */
static bool race_await_reopen(race_fd *f, void (*yield)(void), bool *open_after) {
    int err;
    goro__pd *pd = goro__pd_get(f->b, &err);
    cr_assert_not_null(pd);
    while (!(atomic_load(&pd->ref) & GORO__PD_CLOSING) && !atomic_load(&f->closed))
        yield();
    while (atomic_load(&pd->ref) & ~GORO__PD_CLOSING)
        yield();
    bool saw = false, hard = true;
    for (int spins = 0; atomic_load_explicit(&pd->ref, memory_order_relaxed) & GORO__PD_CLOSING;
         spins++) {
        saw = true;
        if (spins > 100000) {
            hard = false;
            yield();
        }
    }
    atomic_thread_fence(memory_order_acquire);
    if (!saw || !hard)
        return false;
    *open_after = fcntl(f->b, F_GETFD) >= 0;
    return true;
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
    c->caught = race_await_reopen(c->f, thread_yield, &c->open_after);
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

/* A late call that starts after close(2) is a call on whatever the number
   names then: if the runtime opened something meanwhile (the deadlock
   check reads /proc/self/task) and got a closed descriptor's number, the
   call would use that. So each round first takes HOLES descriptors, lower
   than every one under test, and gives them back just before the closes:
   the kernel hands out the lowest free number, so what opens during the
   round gets one of those. */
enum { HOLES = 16 };

static void race_holes_open(int *holes) {
    for (int h = 0; h < HOLES; h++) {
        holes[h] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        cr_assert_geq(holes[h], 0);
    }
}

static void race_holes_close(const int *holes) {
    for (int h = 0; h < HOLES; h++)
        close(holes[h]);
}

typedef struct race_late_stats {
    int ebadf, caught;
} race_late_stats;

/* A late call: EBADF, and if it started as the record reopened, the
   descriptor was closed by then. */
static void race_check_late(const race_call *c, int round, const char *who, race_late_stats *st) {
    cr_assert_eq(c->r, -EBADF,
                 "round %d: a %s's %s that started with goro_close returned %zd (%s), not EBADF",
                 round, who, op_name(c->kind), c->r, goro_strerror((int)c->r));
    cr_assert(!c->open_after,
              "round %d: a %s saw the record of fd %d reopen while the descriptor was still "
              "open (goro_close let calls in before close(2))",
              round, who, c->f->b);
    st->ebadf++;
    st->caught += c->caught;
}

/* Early callers per descriptor: a reader, a writer and a waiter with short
   deadlines; late ones: the same three with a long one. */
#define CALLS (2 * OP_KINDS)

GORO_TEST(io, close_race_stress, .timeout = 120) {
    static race_fd fds[PAIRS];
    static race_call calls[PAIRS][CALLS];
    static race_thread threads[THREADS];
    int early[3] = {0}; /* EBADF, ETIMEDOUT, completed */
    race_late_stats late = {0};
    for (int round = 0; round < ROUNDS; round++) {
        int holes[HOLES];
        race_holes_open(holes);
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
            rt->c =
                (race_call){.f = &fds[k % PAIRS], .kind = (op_kind)(k % OP_KINDS), .late = true};
            cr_assert_eq(pthread_create(&rt->th, NULL, race_call_thread, rt), 0);
        }
        for (int t = 0; t < THREADS; t++)
            cr_assert(goro_test_wait_until(atomic_load(&threads[t].warm), GORO_SEC(10)));
        race_holes_close(holes);
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
                    race_check_late(c, round, "goroutine", &late);
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
            race_check_late(c, round, "plain thread", &late);
        }
        for (int i = 0; i < PAIRS; i++)
            cr_assert_eq(goro_close(fds[i].a), 0);
    }
    cr_log_info("close race: %d closes; early calls: %d EBADF, %d ETIMEDOUT, %d completed; %d late "
                "calls EBADF, %d of them started right as the record reopened",
                ROUNDS * PAIRS, early[0], early[1], early[2], late.ebadf, late.caught);
}

/* goro_close's last step, staged by hand: the count drained, CLOSING set,
   pd->lock held (close(2) runs there). The kernel may already have given the
   number to a new file - a pipe someone else made - and a call on that must
   wait the step out, not fail with EBADF. */
typedef struct tail_call {
    int fd;
    int r;
    _Atomic bool done;
} tail_call;

static void *tail_call_thread(void *arg) {
    tail_call *t = arg;
    t->r = goro_wait_fd(t->fd, POLLIN, GORO_SEC(10));
    atomic_store(&t->done, true);
    return NULL;
}

GORO_TEST(io, enter_waits_out_close_tail, .timeout = 30) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    int err;
    goro__pd *pd = goro__pd_get(p[0], &err);
    cr_assert_not_null(pd);
    goro__lock_acquire(&pd->lock);
    atomic_fetch_or(&pd->ref, GORO__PD_CLOSING);
    tail_call t = {.fd = p[0]};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, tail_call_thread, &t), 0);
    /* Give it time to get to goro__pd_enter (if it is slower, the test
       proves less but cannot fail). It cannot finish while we hold the lock. */
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    cr_assert(!atomic_load(&t.done), "the call returned %d (%s) during goro_close's last step", t.r,
              goro_strerror(t.r));
    atomic_store(&pd->ref, 0);
    goro__lock_release(&pd->lock);
    pthread_join(th, NULL);
    cr_assert_eq(t.r, POLLIN, "after goro_close's last step: %d (%s)", t.r, goro_strerror(t.r));
    close(p[0]);
    close(p[1]);
}
