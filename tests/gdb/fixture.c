/*
 * fixture.c - the program tests/test_gdb.c runs gdb on (built twice: with
 * libgoro.a and with libgoro.so). Compiled like users compile (-O2 -g).
 *
 *   gdb_fixture [N]
 *
 * Starts one goroutine parked in each kind of wait the gdb extension must
 * name (chan send, chan receive, select, sync.Mutex.Lock, sleep, IO wait, a
 * labelled one), one that runs (spins), a plain thread blocked in a channel
 * receive, two leaked ones (on a channel only it holds, on a nil channel),
 * three whose last statement is a goro call, which -O2 compiles to a jump
 * (their frames are gone: the traces rebuild them), plus N idle ones; waits
 * until every one of them is parked,
 * writes goro's own debug=2 dump to $GORO_FIXTURE_DUMP (if set), prints
 * "ready <pid>" on stdout, raises SIGTRAP if $GORO_FIXTURE_TRAP is set (gdb
 * runs it: its commands run there) and blocks in read(0) until stdin closes.
 * Each waiter keeps a local computed at run time (not a constant) live
 * across its wait, so the test can print it from gdb: 606 * k.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "goro.h"

static volatile long seed = 606;
static goro_chan *never;      /* nothing is ever sent on it */
static goro_chan *unbuffered; /* nobody ever receives from it */
static goro_mutex mu;         /* held by main for the program's life */
static int io_pipe[2];        /* nothing is ever written */

static void chan_sender(void *arg) {
    long token = seed * 7; /* 4242 */
    goro_chan_send(unbuffered, &token);
    printf("%p %ld\n", arg, token);
}

static void chan_receiver(void *arg) {
    long wanted = seed * 11; /* 6666 */
    long got = 0;
    goro_chan_recv(never, &got);
    printf("%p %ld %ld\n", arg, wanted, got);
}

static void selecter(void *arg) {
    long choices = seed * 13; /* 7878 */
    long a = 0, b = 0;
    goro_case cases[2] = {{never, GORO_RECV, &a, false}, {NULL, GORO_RECV, &b, false}};
    int i = goro_select(cases, 2, GORO_FOREVER);
    printf("%p %ld %d\n", arg, choices, i);
}

static void mutex_waiter(void *arg) {
    long locker = seed * 17; /* 10302 */
    goro_mutex_lock(&mu);
    printf("%p %ld\n", arg, locker);
    goro_mutex_unlock(&mu);
}

static void sleeper(void *arg) {
    long naps = seed * 19; /* 11514 */
    goro_sleep(GORO_SEC(36000));
    printf("%p %ld\n", arg, naps);
}

static void io_waiter(void *arg) {
    long reads = seed * 23; /* 13938 */
    char buf[16];
    ssize_t n = goro_read(io_pipe[0], buf, sizeof buf, GORO_FOREVER);
    printf("%p %ld %zd\n", arg, reads, n);
}

static void labelled(void *arg) {
    long request = seed * 29; /* 17574 */
    goro_label_set("request", "r-17");
    long got = 0;
    goro_chan_recv(never, &got);
    printf("%p %ld %ld\n", arg, request, got);
}

/* Runs (never parks) until the program ends: shown on its thread. */
static _Atomic long spins;
static void spinner(void *arg) {
    long laps = seed * 31; /* 18786 */
    while (atomic_load_explicit(&spins, memory_order_relaxed) >= 0)
        atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
    printf("%p %ld\n", arg, laps);
}

/* A plain thread (not a goroutine) blocked in goro: listed as a goroutine
   of its own, shown on its thread. */
static void *plain_thread(void *arg) {
    long plain = seed * 37; /* 22422 */
    long got = 0;
    goro_chan_recv(never, &got);
    printf("%p %ld %ld\n", arg, plain, got);
    return NULL;
}

/* Waits on a channel only it holds (goro_opts.holds): provably leaked. */
static void leaker(void *arg) {
    long lost = seed * 41; /* 24846 */
    long got = 0;
    goro_chan_recv(arg, &got);
    printf("%ld %ld\n", lost, got);
}

/* Waits on a nil channel: leaked too. */
static void nil_waiter(void *arg) {
    long nothing = seed * 43; /* 26058 */
    long got = 0;
    goro_chan_recv(NULL, &got);
    printf("%p %ld %ld\n", arg, nothing, got);
}

/* Tail calls: a goroutine whose last statement is goro_sleep (the trace
   shows goro_sleep, from the wait reason, above tail_sleeper, at its
   entry), one ending in a receive (shown: tail_receiver at its entry) and
   one ending in goro_go (tail_receiver's "created by" names tail_spawner,
   whose goro_go call left no trace). */
static void tail_sleeper(void *arg) {
    (void)arg;
    goro_sleep(GORO_SEC(36000));
}

static void tail_receiver(void *arg) { goro_chan_recv(arg, NULL); }

static void tail_spawner(void *arg) { goro_go(tail_receiver, arg); }

static void idle_worker(void *arg) {
    long got = 0;
    goro_chan_recv(never, &got);
    printf("%p %ld\n", arg, got);
}

/* True once the dump shows every wait above (and n idle workers). */
static bool all_parked(char *buf, size_t cap, long idle) {
    size_t n = goro_stack(buf, cap, true);
    buf[n < cap ? n : cap - 1] = 0;
    long idle_recv = idle < 1000 ? idle : 0; /* more are counted by goro_count */
    const struct {
        const char *state;
        long n;
    } want[] = {{"[chan send]", 1},
                {"[select]", 1},
                {"[sync.Mutex.Lock]", 1},
                {"[sleep]", 2},
                {"[IO wait]", 1},
                {"[chan receive (nil chan)]", 1},
                {"[chan receive]", 5 + idle_recv}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        long n = 0;
        for (const char *p = buf; (p = strstr(p, want[i].state)); p++)
            n++;
        if (n < want[i].n)
            return false;
    }
    return atomic_load(&spins) > 0;
}

int main(int argc, char **argv) {
    long idle = argc > 1 ? atol(argv[1]) : 0;
    if (goro_maxprocs(0) < 3)
        goro_maxprocs(3); /* the spinner keeps one to itself */
    never = goro_chan_make(sizeof(long), 0);
    unbuffered = goro_chan_make(sizeof(long), 0);
    if (pipe(io_pipe) != 0)
        return 1;
    goro_mutex_lock(&mu);
    goro_go_opts(&(goro_opts){.name = "sender"}, chan_sender, (void *)1);
    goro_go(chan_receiver, (void *)2);
    goro_go(selecter, (void *)3);
    goro_go(mutex_waiter, (void *)4);
    goro_go(sleeper, (void *)5);
    goro_go(io_waiter, (void *)6);
    goro_go(labelled, (void *)7);
    goro_go(spinner, (void *)8);
    goro_chan *lonely = goro_chan_make(sizeof(long), 0);
    goro_chan *const holds[] = {lonely, NULL};
    goro_go_opts(&(goro_opts){.name = "leaker", .holds = holds}, leaker, lonely);
    goro_chan_release(lonely);
    goro_go(nil_waiter, (void *)10);
    goro_go(tail_sleeper, NULL);
    goro_go(tail_spawner, never);
    pthread_t th;
    pthread_create(&th, NULL, plain_thread, (void *)9);
    for (long i = 0; i < idle; i++)
        goro_go(idle_worker, (void *)(intptr_t)i);
    /* Bounded: the test fails on "ready" never coming, not on a hang. */
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    int64_t end = goro_nanotime() + GORO_SEC(60);
    while (!all_parked(buf, cap, idle) && goro_nanotime() < end)
        goro_sleep(GORO_MS(2));
    while (idle >= 1000 && goro_count() < idle + 8 && goro_nanotime() < end)
        goro_sleep(GORO_MS(2));
    free(buf);
    /* The dump goro itself writes, for the test to compare with `goro dump`. */
    const char *dump = getenv("GORO_FIXTURE_DUMP");
    FILE *f = dump ? fopen(dump, "w") : NULL;
    if (f) {
        goro_profile_write(f, 2);
        fclose(f);
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    /* Under a Yama ptrace scope of 1, let the test's gdb (not our parent)
       attach; when gdb runs us, stop here for its commands. */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    if (getenv("GORO_FIXTURE_TRAP"))
        raise(SIGTRAP);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
