/*
 * goro_test.h - make a Criterion test fail when it leaks a goroutine.
 *
 *   #include <criterion/criterion.h>
 *   #include <goro.h>
 *   #include <goro_test.h>           // installed next to goro.h
 *
 *   GORO_TEST(cache, refresh_stops) {
 *       ...                      // any Criterion test body
 *   }
 *   GORO_TEST(cache, refresh_restarts, .timeout = 10) { ... }
 *
 *   cc test_cache.c $(pkg-config --cflags --libs goro criterion)
 *
 * GORO_TEST takes the same arguments as Criterion's Test(), options
 * included or not (the GNU `, ##__VA_ARGS__` that gcc and clang accept lets
 * the list be empty). When the body returns, it runs goro_leak_verify_none
 * (goleak's VerifyNone): every goroutine still alive except the caller,
 * retried with goleak's back-off for up to GORO_TEST_LEAK_TIMEOUT_NS (2 s
 * unless defined before the include), is a leak. The test then fails with an assertion whose message is the report:
 * `found N unexpected goroutines:`, then each leaked goroutine's name (a
 * `# labels:` line) and trace (debug=2 format, with `created by`). A report
 * longer than GORO_TEST__MSG_MAX goes to stderr instead, and the assertion
 * says so: either way it is printed once.
 *
 * Why "every goroutine but the caller" is right here: Criterion runs each
 * test in a fresh worker process, so no goroutine of another test can be
 * there, and the runtime's own goroutines (debug server, monitor) and plain
 * threads are never reported. The check also does not start the runtime
 * before the body runs, so a test that forks a child before using goro (the
 * child must not inherit a running scheduler) can use GORO_TEST too.
 *
 * Variants:
 *   GORO_TEST_LEAKOPTS(suite, name, opts, ...)  the check with your own
 *       goro_leak_opts (a const goro_leak_opts * expression): a longer
 *       timeout, ignore_top_functions, ignore_created_by. A zero timeout_ns
 *       means GORO_TEST_LEAK_TIMEOUT_NS.
 *   GORO_TEST_UNCHECKED(suite, name, "why", ...)  a plain Criterion test,
 *       for a test that leaves goroutines on purpose (one that ends in a
 *       panic, exit() or a signal never reaches the check anyway). The reason
 *       is mandatory so that every unchecked test says why.
 *   goro_test_leak_verify(opts)  the check itself, to call by hand, e.g. in
 *       the middle of a test, or at the end of a Theory.
 *
 * Why not a suite-level fixture (TestSuite(s, .init = ..., .fini = ...))? It
 * was the first design and does not work with Criterion 2.4.1: a failing
 * cr_assert inside .fini only prints "Assertion Failed" and the test is
 * still reported as passed, and exit() or abort() inside .fini only prints
 * "Warning! The test `s::t` crashed during its setup or teardown." with the
 * test passed and the run's exit status 0. So the check must run inside the
 * test body itself, which is what GORO_TEST arranges: it defines the Test()
 * and makes your braces the body of a static function it calls.
 *
 * Everything here is static inline, so several test files linked into one
 * binary may each include it. Include it after <criterion/criterion.h> and
 * goro.h. The child-process helpers at the end (goro_test_run_child*) run a
 * scenario that must crash or exit in a forked child and capture its output.
 */
#ifndef GORO_TEST_H
#define GORO_TEST_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"

#ifndef GORO_TEST_LEAK_TIMEOUT_NS
#define GORO_TEST_LEAK_TIMEOUT_NS GORO_SEC(2)
#endif

/* Which sanitizer the test is built with, each 0 or 1 and defined on its own
   (gcc says __SANITIZE_*__, clang __has_feature): GORO_TEST_ASAN,
   GORO_TEST_TSAN, and GORO_TEST_SANITIZED for either, where everything runs
   several times slower and a timing bound needs a wider margin. Tests use
   these rather than their own aliases. */
#if defined(__SANITIZE_ADDRESS__)
#define GORO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_TEST_ASAN 1
#endif
#endif
#ifndef GORO_TEST_ASAN
#define GORO_TEST_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_TSAN 1
#endif
#endif
#ifndef GORO_TEST_TSAN
#define GORO_TEST_TSAN 0
#endif

#define GORO_TEST_SANITIZED (GORO_TEST_ASAN || GORO_TEST_TSAN)

/* The longest report a failed assertion carries (a longer one goes to stderr). */
#define GORO_TEST__MSG_MAX 4096

/* Runs the check; returns how many goroutines leaked and points *msg at the
   report (a static buffer), or, for a report too long for an assertion
   message, writes it to stderr and points *msg at a line saying so. */
static inline __attribute__((unused)) int goro_test__leak_run(const goro_leak_opts *opts,
                                                              double *timeout_s, const char **msg) {
    static char buf[GORO_TEST__MSG_MAX];
    goro_leak_opts o = {0};
    if (opts)
        o = *opts;
    if (o.timeout_ns <= 0)
        o.timeout_ns = GORO_TEST_LEAK_TIMEOUT_NS;
    *timeout_s = (double)o.timeout_ns / 1e9;
    char *report = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&report, &len);
    int n = goro_leak_verify_none(&o, f);
    if (f)
        fclose(f);
    buf[0] = 0;
    if (n > 0 && report) {
        /* Printed once: in the failed assertion when it fits, else on
           stderr with the assertion pointing there. */
        if (len < sizeof buf) {
            memcpy(buf, report, len + 1);
        } else {
            fputs("goro_test: goroutine leak:\n", stderr);
            fputs(report, stderr);
            fflush(stderr);
            snprintf(buf, sizeof buf, "(the %zu-byte report is on stderr, above)\n", len);
        }
    }
    free(report);
    *msg = buf;
    return n;
}

/* Fails the current test (at the caller's line) if goroutines other than
   the caller are still alive after the leak check's timeout. opts may be
   NULL. */
#define goro_test_leak_verify(opts)                                                                \
    do {                                                                                           \
        double goro_test__t;                                                                       \
        const char *goro_test__msg;                                                                \
        int goro_test__n = goro_test__leak_run((opts), &goro_test__t, &goro_test__msg);            \
        cr_assert_eq(goro_test__n, 0,                                                              \
                     "goroutine leak: %d goroutine%s still alive %.1f s after the test body "      \
                     "returned:\n%s",                                                              \
                     goro_test__n, goro_test__n == 1 ? "" : "s", goro_test__t, goro_test__msg);    \
    } while (0)

#define GORO_TEST__BODY(suite, name) test_body_##suite##_##name

#define GORO_TEST_LEAKOPTS(suite, name, opts, ...)                                                 \
    static void GORO_TEST__BODY(suite, name)(void);                                                \
    Test(suite, name, ##__VA_ARGS__) {                                                             \
        GORO_TEST__BODY(suite, name)();                                                            \
        goro_test_leak_verify(opts);                                                               \
    }                                                                                              \
    static void GORO_TEST__BODY(suite, name)(void)

#define GORO_TEST(suite, name, ...) GORO_TEST_LEAKOPTS(suite, name, NULL, ##__VA_ARGS__)

#define GORO_TEST_UNCHECKED(suite, name, why, ...)                                                 \
    static const char goro_test_unchecked_##suite##_##name[] __attribute__((unused)) = why;        \
    Test(suite, name, ##__VA_ARGS__)

/* ------------------------------------------------------ child processes */

/* Scenarios that must crash or exit run in a forked child, started before the
   runtime starts in the test process. goro_test_collect reads what the child
   wrote to fd (NUL-terminated, truncated to cap) and returns its wait status. */
static inline __attribute__((unused)) int goro_test_collect(pid_t pid, int fd, char *out,
                                                            size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fd);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* What the child does around fn (all zero: capture stderr, exit 0 if fn
   returns). */
typedef struct goro_test_child_opts {
    int capture_fd;         /* the descriptor read into out: 2 (when 0) or 1 */
    bool stderr_to_devnull; /* with capture_fd 1: drop stderr */
    const char *env_name;   /* if set: setenv(env_name, env_value), or unsetenv when NULL */
    const char *env_value;
    int exit_if_returns; /* _exit status when fn returns instead of exiting */
} goro_test_child_opts;

/* Runs fn in a forked child as o says, reads what it writes to the captured
   descriptor into out; returns its wait status. */
static inline __attribute__((unused)) int
goro_test_run_child_opts(const goro_test_child_opts *o, void (*fn)(void), char *out, size_t cap) {
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], o->capture_fd ? o->capture_fd : 2);
        if (o->stderr_to_devnull)
            dup2(open("/dev/null", O_WRONLY), 2);
        if (o->env_name && o->env_value)
            setenv(o->env_name, o->env_value, 1);
        else if (o->env_name)
            unsetenv(o->env_name);
        fn();
        _exit(o->exit_if_returns);
    }
    close(pfd[1]);
    return goro_test_collect(pid, pfd[0], out, cap);
}

/* Runs fn in a child whose stderr is captured; returns its wait status. */
static inline __attribute__((unused)) int goro_test_run_child(void (*fn)(void), char *out,
                                                              size_t cap) {
    return goro_test_run_child_opts(&(goro_test_child_opts){0}, fn, out, cap);
}

/* Skips the test under TSan: it cannot start threads in a child forked from
   a process that already runs threads (the plain and ASan suites run it). */
#define goro_test_skip_threaded_fork()                                                             \
    do {                                                                                           \
        if (GORO_TEST_TSAN)                                                                        \
            cr_skip_test("fork of a threaded process is not supported under TSan");                \
    } while (0)

/* goro_test_run_child for a test process that already runs threads. */
static inline __attribute__((unused)) int goro_test_run_child_threaded(void (*fn)(void), char *out,
                                                                       size_t cap) {
    goro_test_skip_threaded_fork();
    return goro_test_run_child(fn, out, cap);
}

/* ------------------------------------------------------------ waiting */

/* The one way a test waits for a state: evaluates cond (any expression, e.g.
   atomic_load(&x) == 2 or a call) every 200 us until it is true or timeout_ns
   passed, and yields whether it became true. Use it instead of a fixed sleep
   to order steps; bound it generously (a loaded machine, a sanitizer) and
   assert on the result. cond is evaluated once per poll, and never again
   after it was true, so it may have side effects (pin a record, count).
   Between polls it sleeps with goro_sleep: inside a goroutine the goroutine
   parks (others run on its processor); on a plain thread the thread sleeps. */
#define goro_test_wait_until(cond, timeout_ns)                                                     \
    __extension__({                                                                                \
        int64_t goro_test__end = goro_nanotime() + (timeout_ns);                                   \
        bool goro_test__ok;                                                                        \
        while (!(goro_test__ok = (cond)) && goro_nanotime() < goro_test__end)                      \
            goro_sleep(GORO_US(200));                                                              \
        goro_test__ok;                                                                             \
    })

/* Waits (up to 10 s: goroutines finishing on a loaded machine under a
   sanitizer) for goro_count() to come back to start, then asserts it. */
static inline __attribute__((unused)) void goro_test_await_count(int start) {
    goro_test_wait_until(goro_count() == start, GORO_SEC(10));
    cr_assert_eq(goro_count(), start, "goroutines left behind: %d, started with %d", goro_count(),
                 start);
}

#endif /* GORO_TEST_H */
