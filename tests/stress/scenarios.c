/*
 * scenarios.c - channel, select, sync and I/O workloads for the stress
 * program. Each mixes goroutines, goroutine 1 (the process's first thread)
 * and plain program threads that enter and leave goro calls, and forces
 * migration: goroutines yield, sleep and sit in syscall brackets (so a P is
 * retaken and more Ms than Ps run), plain threads come and go. Each checks
 * that nothing was lost or duplicated; a false deadlock report ends the
 * process (deadlock.c) and the driver sees it.
 */
#include "scenarios.h"

#include <goro.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ randomness */

static _Atomic uint64_t seed_base;
static __thread uint64_t rng_state;

static uint64_t rnd(void) {
    if (rng_state == 0)
        rng_state = atomic_fetch_add(&seed_base, 0x9e3779b97f4a7c15ull) | 1;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned pick(unsigned n) { return (unsigned)(rnd() % n); }

/* Somewhere to lose the CPU: a yield, a short sleep, a syscall bracket that
   may outlast sysmon's tick (its P is retaken, another M takes over), or
   nothing. From a plain thread the bracket is a no-op and yield is
   sched_yield. */
static void jitter(void) {
    switch (pick(16)) {
    case 0:
    case 1: goro_yield(); break;
    case 2: goro_sleep((int64_t)pick(50) * 1000); break;
    case 3: {
        goro_syscall_enter();
        struct timespec ts = {0, (long)pick(60) * 1000};
        nanosleep(&ts, NULL);
        goro_syscall_exit();
        break;
    }
    default: break;
    }
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
    if (pthread_create(t, NULL, fn, arg) != 0)
        abort();
}

/* One part of a scenario (a producer, a reader...), run by a goroutine or
   a plain thread, then counted done in wg. Lives until wg is waited. */
typedef struct role {
    void (*body)(void *arg);
    void *arg;
    goro_waitgroup *wg;
} role;

static void role_go(void *r) {
    role *x = r;
    x->body(x->arg);
    goro_waitgroup_done(x->wg);
}

static void *role_thread(void *r) {
    role_go(r);
    return NULL;
}

/* -------------------------------------------- channels: many to many */

enum {
    MPMC_GO_PRODUCERS = 3,
    MPMC_THREAD_PRODUCERS = 2,
    MPMC_GO_CONSUMERS = 2,
    MPMC_THREAD_CONSUMERS = 1
};

typedef struct mpmc {
    goro_chan *c;
    int per_producer;
    _Atomic int next_producer;
    _Atomic uint8_t *seen;
    _Atomic int dups;
    goro_waitgroup producers, consumers;
} mpmc;

static void mpmc_produce(void *arg) {
    mpmc *s = arg;
    int who = atomic_fetch_add(&s->next_producer, 1);
    for (int i = 0; i < s->per_producer; i++) {
        int id = who * s->per_producer + i;
        goro_chan_send(s->c, &id);
        if (pick(8) == 0)
            jitter();
    }
}

static void mpmc_consume(void *arg) {
    mpmc *s = arg;
    int id;
    while (goro_chan_recv(s->c, &id)) {
        if (atomic_fetch_add(&s->seen[id], 1) != 0)
            atomic_fetch_add(&s->dups, 1);
        if (pick(8) == 0)
            jitter();
    }
}

static void mpmc_closer(void *arg) {
    mpmc *s = arg;
    goro_waitgroup_wait(&s->producers);
    goro_chan_close(s->c);
}

static int chan_mpmc(uint64_t seed, const char **why) {
    (void)seed;
    static const size_t caps[] = {0, 1, 4, 64};
    mpmc s = {.c = goro_chan_make(sizeof(int), caps[pick(4)]),
              .per_producer = 500 + (int)pick(1500)};
    int nprod = MPMC_GO_PRODUCERS + MPMC_THREAD_PRODUCERS;
    int total = nprod * s.per_producer;
    s.seen = calloc((size_t)total, 1);
    goro_waitgroup_add(&s.producers, nprod);
    goro_waitgroup_add(&s.consumers, MPMC_GO_CONSUMERS + MPMC_THREAD_CONSUMERS);
    pthread_t tp[MPMC_THREAD_PRODUCERS], tc[MPMC_THREAD_CONSUMERS];
    role prod = {mpmc_produce, &s, &s.producers}, cons = {mpmc_consume, &s, &s.consumers};
    for (int i = 0; i < MPMC_THREAD_CONSUMERS; i++)
        start_thread(&tc[i], role_thread, &cons);
    for (int i = 0; i < MPMC_GO_CONSUMERS; i++)
        goro_go(role_go, &cons);
    for (int i = 0; i < MPMC_GO_PRODUCERS; i++)
        goro_go(role_go, &prod);
    for (int i = 0; i < MPMC_THREAD_PRODUCERS; i++)
        start_thread(&tp[i], role_thread, &prod);
    goro_go(mpmc_closer, &s);
    mpmc_consume(&s); /* goroutine 1 consumes too */
    goro_waitgroup_wait(&s.consumers);
    for (int i = 0; i < MPMC_THREAD_PRODUCERS; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < MPMC_THREAD_CONSUMERS; i++)
        pthread_join(tc[i], NULL);
    int lost = 0;
    for (int i = 0; i < total; i++)
        lost += s.seen[i] == 0;
    free((void *)s.seen);
    goro_chan_release(s.c);
    if (atomic_load(&s.dups))
        return *why = "an item arrived twice", 1;
    if (lost)
        return *why = "an item was lost", 1;
    return 0;
}

/* ------------------------------------------------ select: two ways in */

enum { SEL_SENDERS = 3, SEL_RECEIVERS = 3 };

typedef struct sel {
    goro_chan *a, *b;
    int per_sender;
    _Atomic int next_sender;
    _Atomic long sum, count;
    goro_waitgroup senders, receivers;
} sel;

/* Each value goes to whichever of a and b is ready first. */
static void sel_send_all(void *arg) {
    sel *s = arg;
    int who = atomic_fetch_add(&s->next_sender, 1);
    for (int i = 0; i < s->per_sender; i++) {
        long v = (long)who * s->per_sender + i + 1;
        goro_case cs[2] = {{s->a, GORO_SEND, &v, false}, {s->b, GORO_SEND, &v, false}};
        int64_t timeout = pick(4) == 0 ? 200000 : 0;
        while (goro_select(cs, 2, timeout) < 0) /* timed out: try again */
            ;
        if (pick(16) == 0)
            jitter();
    }
}

static void sel_recv_all(void *arg) {
    sel *s = arg;
    goro_chan *a = s->a, *b = s->b;
    while (a || b) {
        long va = 0, vb = 0;
        goro_case cs[2] = {{a, GORO_RECV, &va, false}, {b, GORO_RECV, &vb, false}};
        int64_t timeout = pick(4) == 0 ? 300000 : 0;
        int k = goro_select(cs, 2, timeout);
        if (k < 0)
            continue;
        if (!cs[k].ok) {
            if (k == 0)
                a = NULL;
            else
                b = NULL;
            continue;
        }
        atomic_fetch_add(&s->sum, k == 0 ? va : vb);
        atomic_fetch_add(&s->count, 1);
        if (pick(16) == 0)
            jitter();
    }
}

static int select_fan(uint64_t seed, const char **why) {
    (void)seed;
    sel s = {.a = goro_chan_make(sizeof(long), pick(3)),
             .b = goro_chan_make(sizeof(long), pick(2) * 8),
             .per_sender = 300 + (int)pick(700)};
    goro_waitgroup_add(&s.senders, SEL_SENDERS);
    goro_waitgroup_add(&s.receivers, SEL_RECEIVERS);
    pthread_t ts, tr;
    role send = {sel_send_all, &s, &s.senders}, recv = {sel_recv_all, &s, &s.receivers};
    start_thread(&tr, role_thread, &recv);
    for (int i = 0; i < SEL_RECEIVERS - 1; i++)
        goro_go(role_go, &recv);
    start_thread(&ts, role_thread, &send);
    for (int i = 0; i < SEL_SENDERS - 2; i++)
        goro_go(role_go, &send);
    sel_send_all(&s); /* goroutine 1 is the last sender */
    goro_waitgroup_done(&s.senders);
    goro_waitgroup_wait(&s.senders);
    goro_chan_close(s.a);
    goro_chan_close(s.b);
    goro_waitgroup_wait(&s.receivers);
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    long n = (long)SEL_SENDERS * s.per_sender;
    goro_chan_release(s.a);
    goro_chan_release(s.b);
    if (atomic_load(&s.count) != n || atomic_load(&s.sum) != n * (n + 1) / 2)
        return *why = "select lost or duplicated a value", 1;
    return 0;
}

/* --------------------------------- sync: mutex, cond, sem, waitgroup */

enum { SYNC_GOROUTINES = 6, SYNC_THREADS = 2 };

typedef struct syncmix {
    goro_mutex mu;
    goro_cond cv;
    goro_sem sem;
    goro_rwmutex rw;
    long counter, turns;
    int rounds;
    _Atomic int in_sem, sem_over;
    goro_waitgroup wg;
} syncmix;

static void sync_work(void *arg) {
    syncmix *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        goro_mutex_lock(&s->mu);
        s->counter++;
        if (pick(8) == 0)
            goro_cond_broadcast(&s->cv);
        goro_mutex_unlock(&s->mu);
        goro_sem_acquire(&s->sem, 1);
        if (atomic_fetch_add(&s->in_sem, 1) >= 2)
            atomic_store(&s->sem_over, 1);
        if (pick(8) == 0)
            jitter();
        atomic_fetch_sub(&s->in_sem, 1);
        goro_sem_release(&s->sem, 1);
        goro_rwmutex_rlock(&s->rw);
        (void)s->turns;
        goro_rwmutex_runlock(&s->rw);
    }
    goro_mutex_lock(&s->mu);
    s->turns++;
    goro_cond_broadcast(&s->cv);
    goro_mutex_unlock(&s->mu);
}

static int sync_mix(uint64_t seed, const char **why) {
    (void)seed;
    static syncmix s; /* zeroed objects are ready (goro_sem needs init) */
    memset(&s, 0, sizeof s);
    goro_sem_init(&s.sem, 2);
    s.rounds = 300 + (int)pick(700);
    int workers = SYNC_GOROUTINES + SYNC_THREADS;
    goro_waitgroup_add(&s.wg, workers);
    pthread_t t[SYNC_THREADS];
    role work = {sync_work, &s, &s.wg};
    for (int i = 0; i < SYNC_THREADS; i++)
        start_thread(&t[i], role_thread, &work);
    for (int i = 0; i < SYNC_GOROUTINES; i++)
        goro_go(role_go, &work);
    /* Goroutine 1 waits on the condition until every worker has finished,
       writing under the rwmutex meanwhile. */
    goro_mutex_lock(&s.mu);
    while (s.turns < workers) {
        goro_cond_wait(&s.cv, &s.mu);
        goro_mutex_unlock(&s.mu);
        goro_rwmutex_lock(&s.rw);
        goro_rwmutex_unlock(&s.rw);
        goro_mutex_lock(&s.mu);
    }
    long got = s.counter;
    goro_mutex_unlock(&s.mu);
    goro_waitgroup_wait(&s.wg);
    for (int i = 0; i < SYNC_THREADS; i++)
        pthread_join(t[i], NULL);
    if (got != (long)workers * s.rounds)
        return *why = "the mutex let an increment through twice or lost one", 1;
    if (atomic_load(&s.sem_over))
        return *why = "the semaphore let a third holder in", 1;
    return 0;
}

/* --------------------------------------- I/O: socket pairs, in order */

enum { IO_PAIRS = 4 };

typedef struct io_pair {
    int fd[2];
    int records;
    int bad;
    goro_waitgroup *wg;
} io_pair;

static void io_writer(void *arg) {
    io_pair *p = arg;
    for (int i = 0; i < p->records; i++) {
        uint32_t rec[4] = {(uint32_t)i, (uint32_t)i * 7u, (uint32_t)~i, 0x5eed};
        if (goro_write(p->fd[0], rec, sizeof rec, -1) != (ssize_t)sizeof rec)
            p->bad = 1;
        if (pick(16) == 0)
            jitter();
    }
    goro_close(p->fd[0]);
    goro_waitgroup_done(p->wg);
}

static void io_read_all(io_pair *p) {
    uint32_t rec[4];
    size_t have = 0;
    int next = 0;
    for (;;) {
        ssize_t n = goro_read(p->fd[1], (char *)rec + have, sizeof rec - have, -1);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (have < sizeof rec)
            continue;
        have = 0;
        if (rec[0] != (uint32_t)next || rec[1] != (uint32_t)next * 7u || rec[3] != 0x5eed)
            p->bad = 1;
        next++;
        if (pick(16) == 0)
            jitter();
    }
    if (next != p->records || have != 0)
        p->bad = 1;
    goro_close(p->fd[1]);
}

static void io_reader(void *arg) {
    io_pair *p = arg;
    io_read_all(p);
    goro_waitgroup_done(p->wg);
}

static void *io_thread_reader(void *arg) {
    io_pair *p = arg;
    io_read_all(p);
    goro_waitgroup_done(p->wg);
    return NULL;
}

static int io_pairs(uint64_t seed, const char **why) {
    (void)seed;
    io_pair p[IO_PAIRS];
    goro_waitgroup wg = {{0}};
    pthread_t t;
    int records = 200 + (int)pick(800);
    for (int i = 0; i < IO_PAIRS; i++) {
        p[i] = (io_pair){.records = records, .wg = &wg};
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, p[i].fd) != 0)
            return *why = "socketpair failed", 1;
    }
    goro_waitgroup_add(&wg, 2 * IO_PAIRS - 1);
    for (int i = 0; i < IO_PAIRS; i++)
        goro_go(io_writer, &p[i]);
    start_thread(&t, io_thread_reader, &p[0]); /* a plain thread reads one */
    for (int i = 1; i < IO_PAIRS - 1; i++)
        goro_go(io_reader, &p[i]);
    io_read_all(&p[IO_PAIRS - 1]); /* goroutine 1 reads another */
    goro_waitgroup_wait(&wg);
    pthread_join(t, NULL);
    for (int i = 0; i < IO_PAIRS; i++)
        if (p[i].bad)
            return *why = "a record was lost, duplicated or out of order", 1;
    return 0;
}

/* ----------------- plain threads entering and leaving goro calls */

typedef struct echo {
    goro_chan *in, *out;
} echo;

static void echo_loop(void *arg) {
    echo *e = arg;
    long v;
    while (goro_chan_recv(e->in, &v)) {
        if (pick(8) == 0)
            jitter();
        goro_chan_send(e->out, &v);
    }
    goro_chan_close(e->out);
}

static void done_one(void *arg) {
    if (pick(4) == 0)
        jitter();
    goro_waitgroup_done(arg);
}

static void timed_sender(void *arg) {
    goro_sleep((int64_t)pick(200) * 1000);
    long v = 7;
    goro_chan_send(arg, &v);
}

/* Spawn and join, a ping-pong, a timed receive: from whatever thread runs
   it. Returns false on a lost or wrong value. */
static bool hand_offs(int rounds) {
    goro_waitgroup wg = {{0}};
    for (int i = 0; i < rounds; i++) {
        int n = 1 + (int)pick(3);
        goro_waitgroup_add(&wg, n);
        for (int k = 0; k < n; k++)
            goro_go(done_one, &wg);
        goro_waitgroup_wait(&wg);
    }
    echo e = {goro_chan_make(sizeof(long), pick(2)), goro_chan_make(sizeof(long), 0)};
    goro_chan *holds[] = {e.in, e.out, NULL};
    goro_opts o = {.holds = holds};
    goro_go_opts(&o, echo_loop, &e);
    bool ok = true;
    for (long i = 0; i < rounds; i++) {
        long v = i;
        goro_chan_send(e.in, &v);
        if (!goro_chan_recv(e.out, &v) || v != i)
            ok = false;
    }
    goro_chan_close(e.in);
    long v;
    if (goro_chan_recv(e.out, &v))
        ok = false;
    goro_chan *t = goro_chan_make(sizeof(long), 0);
    goro_chan *th[] = {t, NULL};
    goro_opts to = {.holds = th};
    goro_go_opts(&to, timed_sender, t);
    bool got;
    while (goro_chan_recv_timeout(t, &v, &got, 50000) != 0)
        ;
    if (!got || v != 7)
        ok = false;
    goro_chan_release(t);
    goro_chan_release(e.in);
    goro_chan_release(e.out);
    return ok;
}

static _Atomic int handoff_bad;

static void *handoff_thread(void *arg) {
    (void)arg;
    for (int r = 0; r < 3; r++)
        if (!hand_offs(50 + (int)pick(100)))
            atomic_store(&handoff_bad, 1);
    return NULL;
}

static void handoff_go(void *arg) {
    if (!hand_offs(100))
        atomic_store(&handoff_bad, 1);
    goro_chan_send(arg, NULL);
}

static int thread_handoffs(uint64_t seed, const char **why) {
    (void)seed;
    goro_chan *done = goro_chan_make(0, 0);
    for (int r = 0; r < 4; r++) {
        pthread_t t[3];
        int nt = 1 + (int)pick(3);
        for (int i = 0; i < nt; i++)
            start_thread(&t[i], handoff_thread, NULL);
        goro_go(handoff_go, done);
        if (!hand_offs(100 + (int)pick(100)))
            atomic_store(&handoff_bad, 1);
        goro_chan_recv(done, NULL);
        for (int i = 0; i < nt; i++)
            pthread_join(t[i], NULL);
    }
    goro_chan_release(done);
    if (atomic_load(&handoff_bad))
        return *why = "a hand-off lost or changed a value", 1;
    return 0;
}

/* -------------------- plain threads only: a token around a ring */

/* Every hop wakes a plain thread and every waiter is a plain thread (no
   goroutine runs, every M idles), so each park runs the whole deadlock
   check. This is the window deadlock.c's wake bracket closes: a sender
   preempted between taking its receiver's futex word and uncounting it,
   while the receiver runs on, parks again and is the last to sleep. */
enum { RELAY_MAX_THREADS = 4 };

typedef struct relay {
    goro_chan *ring[RELAY_MAX_THREADS];
    goro_chan *done;
    int nthreads, hops;
    _Atomic int next_index, bad;
} relay;

static void *relay_thread(void *arg) {
    relay *r = arg;
    int i = atomic_fetch_add(&r->next_index, 1);
    goro_chan *in = r->ring[i], *out = r->ring[(i + 1) % r->nthreads];
    long v;
    while (goro_chan_recv(in, &v)) {
        if (v % r->nthreads != i)
            atomic_store(&r->bad, 1); /* a token skipped or repeated a hop */
        if (pick(64) == 0)
            jitter();
        if (++v == r->hops) {
            goro_chan_send(r->done, &v);
            continue;
        }
        goro_chan_send(out, &v);
    }
    return NULL;
}

static int thread_relay(uint64_t seed, const char **why) {
    (void)seed;
    relay r = {.nthreads = 2 + (int)pick(RELAY_MAX_THREADS - 1), .hops = 2000 + (int)pick(4000)};
    for (int i = 0; i < r.nthreads; i++)
        r.ring[i] = goro_chan_make(sizeof(long), 0);
    r.done = goro_chan_make(sizeof(long), 0);
    pthread_t t[RELAY_MAX_THREADS];
    for (int i = 0; i < r.nthreads; i++)
        start_thread(&t[i], relay_thread, &r);
    long v = 0;
    goro_chan_send(r.ring[0], &v);
    goro_chan_recv(r.done, &v); /* goroutine 1 parks: counted like the others */
    for (int i = 0; i < r.nthreads; i++)
        goro_chan_close(r.ring[i]);
    for (int i = 0; i < r.nthreads; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < r.nthreads; i++)
        goro_chan_release(r.ring[i]);
    goro_chan_release(r.done);
    if (v != r.hops || atomic_load(&r.bad))
        return *why = "the token was lost or duplicated", 1;
    return 0;
}

/* ------------------------------------------------------------- table */

const stress_scenario stress_scenarios[] = {
    {"chan_mpmc", chan_mpmc}, {"select_fan", select_fan},           {"sync_mix", sync_mix},
    {"io_pairs", io_pairs},   {"thread_handoffs", thread_handoffs}, {"thread_relay", thread_relay},
};
const int stress_nscenarios = sizeof stress_scenarios / sizeof stress_scenarios[0];

void stress_seed(uint64_t seed) { atomic_store(&seed_base, seed * 0x2545f4914f6cdd1dull + 1); }
