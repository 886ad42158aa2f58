/*
 * test_goro_test.c - the test kit itself (include/goro_test.h): GORO_TEST
 * with and without Criterion options, and a leak report printed once.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goro.h"
/* Set before the include, as a user may: the kit takes it, and its other
   settings (the sanitizer macros) do not depend on it. */
#define GORO_TEST_LEAK_TIMEOUT_NS GORO_SEC(3)
#include "goro_test.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
_Static_assert(GORO_TEST_SANITIZED, "a sanitizer build with GORO_TEST_SANITIZED 0");
#else
_Static_assert(!GORO_TEST_SANITIZED, "a plain build with GORO_TEST_SANITIZED 1");
#endif
_Static_assert(GORO_TEST_TSAN + GORO_TEST_ASAN <= 1, "two sanitizers at once");

GORO_TEST(goro_test_kit, leak_timeout_set_before_the_include) {
    double secs = 0;
    const char *msg;
    cr_assert_eq(goro_test__leak_run(NULL, &secs, &msg), 0);
    cr_assert_eq(secs, 3.0);
}

/* Written as one writes Criterion's Test(suite, name): no options. */
GORO_TEST(goro_test_kit, no_options) { cr_assert_eq(goro_count() >= 0, true); }

GORO_TEST(goro_test_kit, with_options, .timeout = 10, .description = "options pass through") {
    cr_assert(true);
}

GORO_TEST_UNCHECKED(goro_test_kit, unchecked_without_options, "checks nothing") { cr_assert(true); }

static void kit_blocked(void *arg) {
    goro_chan_recv(arg, NULL);
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
}

/* The check's report goes into the assertion message and nowhere else: a
   leak is printed once (it used to go to stderr and into the message). */
GORO_TEST(goro_test_kit, leak_report_printed_once, .timeout = 20) {
    goro_chan *c = goro_chan_make(0, 0);
    goro_go_opts(&(goro_opts){.name = "kit leaker", .holds = (goro_chan *const[]){c, NULL}},
                 kit_blocked, c);
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    double secs;
    const char *msg;
    int n = goro_test__leak_run(&(goro_leak_opts){.timeout_ns = GORO_MS(20)}, &secs, &msg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long errlen = ftell(tmp);
    fclose(tmp);
    cr_assert_eq(n, 1);
    cr_assert_eq(errlen, 0, "the report also went to stderr");
    cr_assert(
        strncmp(msg,
                "found 1 unexpected goroutine:\n# labels: {\"name\":\"kit leaker\"}\ngoroutine ",
                strlen("found 1 unexpected goroutine:\n# labels: {\"name\":\"kit "
                       "leaker\"}\ngoroutine ")) == 0,
        "%s", msg);
    cr_assert(strstr(msg, "kit_blocked(") != NULL, "%s", msg);
    goro_chan_close(c);
}
