/*
 * test_first_thread.c - plain threads (goroutine 1, threads the program made)
 * as goroutines at full speed: they serve goroutines while they wait and keep
 * a lent P between goro calls (docs/runtime.md, "Plain threads"). Checks that
 * their identity never changes, that a goroutine blocking in a syscall on
 * such a thread does not hold the thread's own code hostage, that a lent P
 * is retaken when goroutines wait for it, and goro_exit on goroutine 1
 * (Go's Goexit from main: the rest runs, then a fatal error; signals still
 * arrive).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"

/* Forked children start threads; TSan cannot after a threaded fork. */
static int child(void (*fn)(void), const char *procs, char *out, size_t cap) {
    goro_test_skip_threaded_fork();
    goro_test_child_opts o = {.env_name = "GOROMAXPROCS", .env_value = procs};
    return goro_test_run_child_opts(&o, fn, out, cap);
}

/* ------------------------------------------------ identity stays put */

static __thread int tls_word;

static void add_one(void *arg) {
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static void bump_and_done(void *arg) {
    goro_waitgroup *wg = arg;
    goro_yield();
    goro_waitgroup_done(wg);
}

/* The waiting thread runs goroutines meanwhile, but its own code always
   resumes on itself: same pthread_self, same TLS, same errno value. */
static void identity_body(void) {
    pthread_t self = pthread_self();
    int *tls = &tls_word;
    _Atomic int n = 0;
    for (int round = 0; round < 200; round++) {
        goro_waitgroup wg = {0};
        goro_waitgroup_add(&wg, 4);
        for (int i = 0; i < 4; i++)
            goro_go(bump_and_done, &wg);
        goro_go(add_one, &n);
        errno = 1234;
        goro_waitgroup_wait(&wg);
        cr_assert_eq(errno, 1234);
        cr_assert(pthread_equal(self, pthread_self()));
        cr_assert_eq(tls, &tls_word);
    }
    for (int i = 0; i < 5000 && atomic_load(&n) < 200; i++)
        goro_sleep(GORO_MS(1));
    cr_assert_eq(atomic_load(&n), 200);
}

GORO_TEST(runtime, first_thread_keeps_identity, .timeout = 30) { identity_body(); }

static void *identity_thread(void *arg) {
    (void)arg;
    identity_body();
    return NULL;
}

/* Several program threads at once, each serving while it waits. */
GORO_TEST(runtime, plain_threads_keep_identity, .timeout = 60) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, identity_thread, NULL), 0);
    identity_body();
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}

/* ------------------------------------- a syscall on the first thread */

typedef struct pipe_read {
    int fd;
    goro_chan *got;
} pipe_read;

static void blocking_reader(void *arg) {
    pipe_read *r = arg;
    char c = 0;
    goro_syscall_enter();
    ssize_t n = read(r->fd, &c, 1);
    goro_syscall_exit();
    int v = n == 1 ? c : -1;
    goro_chan_send(r->got, &v);
}

/* With one P, goroutine 1 waits (a sleep), its thread runs the reader, the
   reader blocks in read(2). Goroutine 1 must still wake and write what the
   reader waits for: the reader moved to a scheduler thread. */
static void syscall_on_first_thread_child(void) {
    int fds[2];
    if (pipe(fds) != 0)
        _exit(3);
    pipe_read r = {fds[0], goro_chan_make(sizeof(int), 0)};
    goro_go(blocking_reader, &r);
    goro_sleep(GORO_MS(5));
    if (write(fds[1], "x", 1) != 1)
        _exit(4);
    int v = 0;
    goro_chan_recv(r.got, &v);
    _exit(v == 'x' ? 0 : 5);
}

GORO_TEST(runtime, syscall_on_first_thread_moves_off_it, .timeout = 30) {
    char out[8192];
    int st = child(syscall_on_first_thread_child, "1", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x:\n%s", st, out);
}

/* --------------------------------------------- a lent P is retaken */

static void set_flag(void *arg) { atomic_store((_Atomic int *)arg, 1); }

/* One P, kept by goroutine 1 between goro calls; goroutine 1 then spins in
   its own code. The goroutine it started must still run (sysmon retakes the
   lent P because work waits on it). */
static void lent_p_child(void) {
    _Atomic int flag = 0;
    goro_go(set_flag, &flag);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&flag)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            _exit(3);
    }
    _exit(0);
}

GORO_TEST(runtime, lent_p_retaken_for_waiting_goroutine, .timeout = 30) {
    char out[8192];
    int st = child(lent_p_child, "1", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x:\n%s", st, out);
}

/* ------------------------------------------ goro_exit on goroutine 1 */

static void finish_later(void *arg) {
    (void)arg;
    goro_sleep(GORO_MS(50));
    fputs("worker done\n", stderr);
}

static void main_goexit_child(void) {
    goro_go(finish_later, NULL);
    goro_exit();
}

/* Go: the other goroutines run to the end, then
   "fatal error: no goroutines (main called runtime.Goexit) - deadlock!", exit 2. */
static void check_main_goexit(const char *procs) {
    char out[8192];
    int st = child(main_goexit_child, procs, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x:\n%s", st, out);
    const char *done = strstr(out, "worker done\n");
    const char *fatal = strstr(out, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n");
    cr_assert(done && fatal && done < fatal, "output:\n%s", out);
}

GORO_TEST(runtime, main_goexit_runs_the_rest_then_fatal_p1, .timeout = 30) { check_main_goexit("1"); }
GORO_TEST(runtime, main_goexit_runs_the_rest_then_fatal_p2, .timeout = 30) { check_main_goexit("2"); }

static void blocked_forever(void *arg) { goro_chan_recv((goro_chan *)arg, NULL); }

static void main_goexit_deadlock_child(void) {
    goro_go(blocked_forever, goro_chan_make(0, 0));
    goro_exit();
}

GORO_TEST(runtime, main_goexit_then_deadlock_reported, .timeout = 30) {
    char out[8192];
    int st = child(main_goexit_deadlock_child, "2", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x:\n%s", st, out);
    cr_assert(strstr(out, "fatal error: all goroutines are asleep - deadlock!\n"), "output:\n%s", out);
}

static void tick_forever(void *arg) {
    (void)arg;
    for (;;)
        goro_sleep(GORO_MS(5));
}

/* Says "ready" once goroutine 1 is gone (2 goroutines left), then ticks. */
static void announce_main_gone(void *arg) {
    (void)arg;
    while (goro_count() != 2)
        goro_sleep(GORO_MS(1));
    fputs("ready\n", stderr);
    tick_forever(NULL);
}

static void main_goexit_sigterm_child(void) {
    goro_go(tick_forever, NULL);
    goro_go(announce_main_gone, NULL);
    goro_exit();
}

/* After goro_exit on goroutine 1 the process still dies of SIGTERM: the
   first thread lives on (serving goroutines) with the program's signal
   mask, so a signal sent to the process is taken. */
GORO_TEST(runtime, main_goexit_still_takes_sigterm, .timeout = 30) {
    goro_test_skip_threaded_fork();
    int fd;
    pid_t pid = goro_test_fork_child(&(goro_test_child_opts){.exit_if_returns = 9},
                                     main_goexit_sigterm_child, &fd);
    char buf[64] = {0};
    size_t n = 0;
    while (n < sizeof buf - 1 && !strstr(buf, "ready\n")) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    cr_assert(strstr(buf, "ready\n"), "child output: %s", buf);
    int st = 0;
    pid_t w = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000 && w == 0; i++) {
        usleep(10000);
        w = waitpid(pid, &st, WNOHANG);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("the child ignored SIGTERM for 10 s");
    }
    close(fd);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %#x", st);
}

/* ------------------------------- stress: plain threads as Ms, bounded */

typedef struct echo_pair {
    goro_chan *a, *b;
    goro_waitgroup wg;
} echo_pair;

static void echo_loop(void *arg) {
    echo_pair *s = arg;
    long v;
    while (goro_chan_recv(s->a, &v))
        goro_chan_send(s->b, &v);
    goro_waitgroup_done(&s->wg);
}

static void wg_done_fn(void *arg) { goro_waitgroup_done(arg); }

/* spawn + join, then a ping-pong, from whatever runs it. */
static void hand_offs(void *arg) {
    (void)arg;
    goro_waitgroup wg = {0};
    for (int i = 0; i < 300; i++) {
        goro_waitgroup_add(&wg, 1);
        goro_go(wg_done_fn, &wg);
        goro_waitgroup_wait(&wg);
    }
    echo_pair s = {goro_chan_make(sizeof(long), 0), goro_chan_make(sizeof(long), 0), {{0}}};
    goro_waitgroup_add(&s.wg, 1);
    goro_go(echo_loop, &s);
    for (long i = 0; i < 300; i++) {
        long v = i;
        goro_chan_send(s.a, &v);
        goro_chan_recv(s.b, &v);
        if (v != i)
            _exit(4);
    }
    goro_chan_close(s.a);
    goro_waitgroup_wait(&s.wg);
    goro_chan_release(s.a);
    goro_chan_release(s.b);
}

static void hand_offs_then_signal(void *arg) {
    hand_offs(NULL);
    goro_chan_send((goro_chan *)arg, NULL);
}

static void *plain_thread_rounds(void *arg) {
    (void)arg;
    for (int r = 0; r < 10; r++)
        hand_offs(NULL);
    return NULL;
}

/* Goroutine 1 and two program threads hand off to goroutines while a
   goroutine does the same, threads coming and going: nothing is lost and
   no false deadlock is reported. */
static void stress_child(void) {
    goro_chan *c = goro_chan_make(0, 0);
    for (int r = 0; r < 20; r++) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            if (pthread_create(&t[i], NULL, plain_thread_rounds, NULL) != 0)
                _exit(3);
        hand_offs(NULL);
        goro_go(hand_offs_then_signal, c);
        goro_chan_recv(c, NULL);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
    }
    _exit(0);
}

GORO_TEST(runtime, plain_threads_hand_off_stress, .timeout = 120) {
    static const char *const modes[] = {"2", "1", "4"};
    for (int run = 0; run < 12; run++) {
        char out[16384];
        int st = child(stress_child, modes[run % 3], out, sizeof out);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run %d (procs %s): status %#x:\n%s",
                  run, modes[run % 3], st, out);
    }
}
