/*
 * test_crash.c - a crash is a crash: a fault stops the whole program until
 * Go's report is written, then the process exits with status 2 (or aborts
 * under GOROTRACEBACK=crash). The scenarios run in the trace fixture
 * (tests/fixtures/trace_fixture.c, plain -O2), a separate program.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "goro.h"
#include "goro_test.h"
#include "trace_run.h"

/* ThreadSanitizer takes SIGSEGV for its own report (handle_segv). */
#define SKIP_UNDER_TSAN()                                                                          \
    do {                                                                                           \
        if (GORO_TEST_TSAN)                                                                        \
            cr_skip("ThreadSanitizer reports faults itself");                                      \
    } while (0)

#define NIL_PANIC                                                                                  \
    "panic: runtime error: invalid memory address or nil pointer dereference\n"                    \
    "[signal SIGSEGV: segmentation violation code="

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

static void assert_nil_report(int st, const char *out) {
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strncmp(out, NIL_PANIC, strlen(NIL_PANIC)) == 0, "%s", out);
    cr_assert(strstr(out, " addr=0x0 pc=0x") != NULL, "%s", out);
    cr_assert(strstr(out, "atexit handler ran") == NULL, "main's exit ran user work:\n%s", out);
}

/* main returns while a goroutine faults, other goroutines busy: every run
   must end with the report and status 2 (it raced to 0 before). */
GORO_TEST(crash, nil_dereference_always_exits_2, .timeout = 300) {
    SKIP_UNDER_TSAN();
    char out[1 << 15];
    int runs = GORO_TEST_SANITIZED ? 20 : 60;
    for (int i = 0; i < runs; i++) {
        int st = trace_run((const char *[]){"nil", NULL}, NULL, 2, out, sizeof out);
        assert_nil_report(st, out);
        /* Under ASan a thread the crash stopped can hold the sanitizer
           allocator's one lock (it has no per-thread arenas), and the
           report's symbolizer then waits on it: the report is cut short
           after its stall bound, still with status 2 (crash.c). */
        if (GORO_TEST_SANITIZED && strstr(out, "(crash report cut short:"))
            continue;
        cr_assert(strstr(out, "[running]:\nnil_store(...)\n\t") != NULL ||
                      strstr(out, "[running]:\ncrasher()\n\t") != NULL,
                  "run %d:\n%s", i, out);
        cr_assert_eq(count(out, "\ngoroutine "), 1, "single: only the faulting goroutine\n%s", out);
    }
}

GORO_TEST(crash, gorotraceback_none, .timeout = 60) {
    SKIP_UNDER_TSAN();
    char out[1 << 15];
    int st = trace_run((const char *[]){"nil", NULL}, "none", 2, out, sizeof out);
    assert_nil_report(st, out);
    cr_assert(strstr(out, "goroutine ") == NULL, "%s", out);
}

GORO_TEST(crash, gorotraceback_all, .timeout = 60) {
    SKIP_UNDER_TSAN();
    char out[1 << 16];
    int st = trace_run((const char *[]){"nil", NULL}, "all", 2, out, sizeof out);
    assert_nil_report(st, out);
    /* The faulting goroutine first, then main and the four spinners. */
    cr_assert(count(out, "\ngoroutine ") >= 6, "%s", out);
    cr_assert(strstr(out, "\ngoroutine 1 [") != NULL, "%s", out);
    cr_assert(strstr(out, "\nspin()\n\t") != NULL, "%s", out);
}

GORO_TEST(crash, gorotraceback_crash_aborts, .timeout = 60) {
    SKIP_UNDER_TSAN();
    char out[1 << 16];
    int st = trace_run((const char *[]){"nil", NULL}, "crash", 2, out, sizeof out);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x\n%s", st, out);
    cr_assert(strncmp(out, NIL_PANIC, strlen(NIL_PANIC)) == 0, "%s", out);
    cr_assert(count(out, "\ngoroutine ") >= 6, "%s", out);
}

GORO_TEST(crash, fault_on_a_plain_thread, .timeout = 60) {
    SKIP_UNDER_TSAN();
    char out[1 << 15];
    int st = trace_run((const char *[]){"nil-thread", NULL}, NULL, 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strncmp(out,
                      "fatal error: unexpected signal during runtime execution\n"
                      "[signal SIGSEGV: segmentation violation code=",
                      100) == 0,
              "%s", out);
}

GORO_TEST(crash, stack_overflow_report, .timeout = 60) {
    SKIP_UNDER_TSAN();
    char out[1 << 16];
    int st = trace_run((const char *[]){"overflow", NULL}, NULL, 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strstr(out, "runtime: goroutine 2 (deep) overflowed its") == out, "%s", out);
    cr_assert(strstr(out, "\nfatal error: stack overflow\n") != NULL, "%s", out);
    cr_assert(strstr(out, "\ngoroutine 2 [running]:\ndeep") != NULL, "%s", out);
}

GORO_TEST(crash, nil_mutex_before_the_runtime_started, .timeout = 60) {
    SKIP_UNDER_TSAN();
    if (GORO_TEST_SANITIZED)
        cr_skip("UBSan reports the null member access first");
    char out[1 << 15];
    int st = trace_run((const char *[]){"mutex-null", NULL}, NULL, 2, out, sizeof out);
    assert_nil_report(st, out);
    cr_assert(strstr(out, "\n\ngoroutine 1 [running]:\ngoro_mutex_lock()\n\t") != NULL, "%s", out);
    cr_assert(strstr(out, "\nmain()\n\t") != NULL, "%s", out);
}

GORO_TEST(crash, channel_released_too_often_has_a_trace, .timeout = 60) {
    SKIP_UNDER_TSAN();
    if (GORO_TEST_SANITIZED)
        cr_skip("ASan reports the use after free first");
    char out[1 << 15];
    int st = trace_run((const char *[]){"over-release", NULL}, NULL, 2, out, sizeof out);
    cr_assert((WIFEXITED(st) && WEXITSTATUS(st) == 2) ||
                  (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT),
              "status %#x\n%s", st, out);
    /* The released channel sits in quarantine, so the extra release is
       caught as a use of a released channel (chan.c), with the trace. */
    cr_assert(strstr(out, "panic: use of released channel") != NULL, "%s", out);
    cr_assert(strstr(out, "\nreleaser()\n\t") != NULL, "%s", out);
}

/* ------------------------------------------------ goro_exit in main */

/* Go: runtime.Goexit in main lets the other goroutines finish, then
   "fatal error: no goroutines (main called runtime.Goexit) - deadlock!",
   status 2. */
GORO_TEST(crash, main_goexit_runs_the_rest_then_fatal, .timeout = 60) {
    char out[1 << 12];
    int st = trace_run((const char *[]){"main-goexit", NULL}, NULL, 1, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strstr(out, "late worker ran\n") != NULL, "%s", out);
    st = trace_run((const char *[]){"main-goexit", NULL}, NULL, 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(
        strstr(out, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n") !=
            NULL,
        "%s", out);
}

GORO_TEST(crash, main_goexit_then_deadlock_reported, .timeout = 60) {
    /* TSan's own background thread is one the deadlock check does not
       know, so it never reports there (as for every deadlock test). */
    SKIP_UNDER_TSAN();
    char out[1 << 15];
    int st = trace_run((const char *[]){"main-goexit-deadlock", NULL}, NULL, 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strstr(out, "fatal error: all goroutines are asleep - deadlock!\n") != NULL, "%s",
              out);
}

/* After goro_exit in main, a signal sent to the process is not left
   pending: the first thread is still there to take SIGTERM. */
GORO_TEST(crash, main_goexit_still_takes_sigterm, .timeout = 60) {
    pid_t pid;
    int rfd = trace_spawn((const char *[]){"main-goexit-block", NULL}, NULL, 1, &pid);
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(rfd, buf + n, sizeof buf - 1 - n)) > 0) {
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "late worker ran\n"))
            break;
    }
    buf[n] = 0;
    cr_assert(strstr(buf, "late worker ran\n") != NULL, "%s", buf);
    kill(pid, SIGTERM);
    int st = 0;
    if (!goro_test_wait_until(waitpid(pid, &st, WNOHANG) == pid, GORO_SEC(10))) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("SIGTERM did not end the process in 10 s");
    }
    close(rfd);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %#x", st);
}
