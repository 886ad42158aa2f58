/*
 * test_goro_main.c - goro_main: the body runs as a goroutine (it may move
 * between threads), its result comes back on the caller, goro_exit and
 * panics in it behave as in Go's main, nesting is refused. The main()
 * cases run the trace fixture (tests/fixtures/trace_fixture.c, plain -O2),
 * a separate program whose main() calls goro_main.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "trace_run.h"

/* The OS thread, read fresh every time (pthread_self() is declared const,
   so a compiler may keep its first value across a goro call). */
static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

typedef struct churning {
    atomic_int stop;
    goro_waitgroup done;
} churning;

/* Keeps the other processor busy, so the body's wake-ups land there too. */
static void churn(void *arg) {
    churning *c = arg;
    while (!atomic_load(&c->stop))
        goro_sleep(GORO_US(50));
    goro_waitgroup_done(&c->done);
}

typedef struct migrate {
    pid_t caller;
    bool moved;
    bool ran_on_caller;
} migrate;

/* Sleeps until it has run on two different threads (bounded), then
   returns a value the caller checks. */
static int migrating_body(void *arg) {
    migrate *m = arg;
    churning c = {0};
    goro_waitgroup_add(&c.done, 1);
    goro_go(churn, &c);
    pid_t first = tid();
    m->ran_on_caller = first == m->caller;
    int64_t deadline = goro_nanotime() + GORO_SEC(30);
    while (!m->moved && goro_nanotime() < deadline) {
        goro_sleep(GORO_US(100));
        m->moved = tid() != first;
        m->ran_on_caller = m->ran_on_caller || tid() == m->caller;
    }
    atomic_store(&c.stop, 1);
    goro_waitgroup_wait(&c.done);
    return 42;
}

static void *migrate_from_thread(void *arg) {
    migrate *m = arg;
    m->caller = tid();
    return (void *)(intptr_t)goro_main(migrating_body, m);
}

/* From a plain thread: the caller sleeps on its own thread meanwhile, so
   the body never runs there, and the caller is still there afterwards. */
GORO_TEST(goro_main, result_comes_back_after_the_body_moved, .timeout = 60) {
    goro_maxprocs(2);
    migrate m = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, migrate_from_thread, &m), 0);
    void *r;
    pthread_join(t, &r);
    cr_assert_eq((intptr_t)r, 42);
    cr_assert(m.moved, "the body stayed on one thread for 30 s at 2 processors");
    cr_assert(!m.ran_on_caller, "the body ran on the calling thread");
}

/* From goroutine 1 (Criterion runs a test body on the first thread): the
   caller is a goroutine too, so only the result is promised. */
GORO_TEST(goro_main, result_comes_back_to_goroutine_1, .timeout = 60) {
    goro_maxprocs(2);
    migrate m = {.caller = -1};
    cr_assert_eq(goro_id(), 1);
    cr_assert_eq(goro_main(migrating_body, &m), 42);
    cr_assert(m.moved, "the body stayed on one thread for 30 s at 2 processors");
}

static void set_flag(void *arg) { atomic_store((atomic_int *)arg, 1); }

static atomic_int deferred;

/* goro_defer in the body runs before goro_main returns. */
static int deferring_body(void *arg) {
    goro_defer(set_flag, &deferred);
    return (int)(intptr_t)arg;
}

GORO_TEST(goro_main, body_defers_run_before_it_returns, .timeout = 30) {
    cr_assert_eq(goro_main(deferring_body, (void *)(intptr_t)-7), -7);
    cr_assert_eq(atomic_load(&deferred), 1);
}

static void *call_goro_main(void *arg) {
    atomic_store(&deferred, 0);
    int r = goro_main(deferring_body, arg);
    return (void *)(intptr_t)r;
}

/* From threads the program made, several at once. */
GORO_TEST(goro_main, works_from_pthreads, .timeout = 30) {
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, call_goro_main, (void *)(i + 10)), 0);
    for (intptr_t i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_eq((intptr_t)r, i + 10);
    }
}

static int nested_body(void *arg) { return goro_main(deferring_body, arg); }

/* A goroutine (the body included) calling goro_main panics (exit 2). */
Test(goro_main, nested_use_panics, .exit_code = 2, .timeout = 30) {
    goro_main(nested_body, NULL);
    cr_assert_fail("nested goro_main returned");
}

/* As Go's `go` of a nil func value. */
Test(goro_main, nil_fn_panics, .exit_code = 2, .timeout = 30) {
    goro_main(NULL, NULL);
    cr_assert_fail("goro_main(NULL) returned");
}

static int panicking_body(void *arg) {
    (void)arg;
    goro_panic("body gave up");
}

/* A panic in the body crashes the program, as a panic in Go's main. */
Test(goro_main, panic_in_the_body_crashes, .exit_code = 2, .timeout = 30) {
    goro_main(panicking_body, NULL);
    cr_assert_fail("goro_main returned after a panic");
}

static atomic_int after_exit;

static int exiting_body(void *arg) {
    goro_defer(set_flag, arg);
    goro_exit();
}

static void *exit_thread(void *arg) {
    goro_main(exiting_body, arg);
    atomic_store(&after_exit, 1); /* never: goro_exit ended this thread */
    return NULL;
}

/* goro_exit in the body, called from a program thread: the body's defers
   run, then goro_exit ends the calling thread too. */
GORO_TEST(goro_main, goro_exit_in_the_body_ends_the_calling_thread, .timeout = 30) {
    goro_id(); /* this thread is goroutine 1, so the other is a plain thread */
    atomic_int ran = 0;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, exit_thread, &ran), 0);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&ran), 1, "the body's defer did not run");
    cr_assert_eq(atomic_load(&after_exit), 0, "goro_main returned after goro_exit");
}

static int stuck_body(void *arg) {
    goro_chan_recv(arg, NULL); /* nobody sends: asleep for good */
    return 0;
}

/* The caller waiting in goro_main and a body blocked for good are a
   deadlock, reported as Go reports one. In a forked child: the check
   fires only when the runtime knows every thread of the process, and
   Criterion's worker has threads of its own. (TSan's background thread
   keeps the check quiet, as for every deadlock test.) */
Test(goro_main, blocked_body_is_a_deadlock, .timeout = 60) {
#if GORO_TEST_TSAN
    cr_skip("ThreadSanitizer's background thread keeps the deadlock check quiet");
#endif
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        goro_chan *never = goro_chan_make(sizeof(int), 0);
        goro_main(stuck_body, never);
        _exit(0); /* goro_main returned: wrong */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x", st);
}

/* ------------------------------------------------------------ from main() */

/* The stanza of out (a debug=2 dump) that contains what, or NULL; *len its length. */
static const char *stanza_with(const char *out, const char *what, size_t *len) {
    const char *hit = strstr(out, what);
    if (!hit)
        return NULL;
    const char *start = hit;
    while (start > out && strncmp(start, "goroutine ", 10) != 0)
        start--;
    const char *end = strstr(hit, "\n\n");
    *len = end ? (size_t)(end - start) : strlen(start);
    return start;
}

/* main() returns goro_main(body): the exit status is the body's result, and
   a dump taken while the body waits shows it as a goroutine of its own,
   with its frames, and goroutine 1 waiting in goro_main. */
GORO_TEST(goro_main, from_main_dump_shows_body_and_caller, .timeout = 60) {
    static char out[1 << 16];
    int st = trace_run((const char *[]){"goro-main", NULL}, NULL, 1, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %#x\n%s", st, out);
    size_t n1, nb;
    const char *g1 = stanza_with(out, "goroutine 1 [sync.WaitGroup.Wait]:\n", &n1);
    cr_assert(g1 != NULL, "goroutine 1 is not waiting:\n%s", out);
#if GORO_TEST_TSAN
    /* TSan holds the capture signal of a thread parked in a raw futex
       wait: a plain thread's stack is unavailable there. */
    if (!memmem(g1, n1, "stack unavailable", 17))
#endif
        /* (main's own frame is gone: `return goro_main(...)` is a tail call) */
        cr_assert(memmem(g1, n1, "\ngoro_main()\n", 13) != NULL,
                  "goroutine 1 is not waiting in goro_main:\n%s", out);
    const char *body = stanza_with(out, "main_body(", &nb);
    cr_assert(body != NULL, "no frame of the body:\n%s", out);
    cr_assert(body != g1, "the body's frames are on goroutine 1:\n%s", out);
    cr_assert(strstr(body, "[chan receive]") != NULL && strstr(body, "[chan receive]") < body + nb,
              "the body is not waiting on its channel:\n%.*s", (int)nb, body);
}

/* goro_exit in the body of main's goro_main: Go's Goexit in main. */
GORO_TEST(goro_main, from_main_goro_exit_is_main_goexit, .timeout = 60) {
    char out[1 << 12];
    int st = trace_run((const char *[]){"goro-main-goexit", NULL}, NULL, 1, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strstr(out, "late worker ran\n") != NULL, "%s", out);
    st = trace_run((const char *[]){"goro-main-goexit", NULL}, NULL, 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(
        strstr(out, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n") !=
            NULL,
        "%s", out);
}
