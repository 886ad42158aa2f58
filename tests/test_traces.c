/*
 * test_traces.c - traces of a program built as users build it: the fixture
 * (tests/fixtures/trace_fixture.c, plain -O2) runs goroutines that end in
 * tail calls, and its debug=2, debug=1, debug=0 and SIGQUIT output must show
 * the goro call each is blocked in on top, the goroutine's own function
 * below it, `created by` with the creator, and none of goro's internals.
 * Also: labels removed again, ctx error texts.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "goro.h"
#include "goro_test.h"
#include "trace_run.h"

/* Nothing of goro's inside may show, in any format. */
static const char *const internals[] = {"switch_to", "goro__park", "goro__g_run", "goro__ctx_entry",
                                        ".S:",       "goro__",     NULL};

static void assert_no_internals(const char *out) {
    for (int i = 0; internals[i]; i++)
        cr_assert(strstr(out, internals[i]) == NULL, "'%s' in:\n%s", internals[i], out);
}

/* The blocks of debug=2 the fixture's scenario must produce. */
static void assert_scenario_dump(const char *out) {
    assert_no_internals(out);
    cr_assert(strstr(out, "[sleep]:\ngoro_sleep()\n\t/") != NULL, "%s", out);
    cr_assert(strstr(out, "\nsleeper()\n\t/") != NULL, "%s", out);
    cr_assert(strstr(out, "[sync.Mutex.Lock]:\ngoro_mutex_lock()\n\t/") != NULL, "%s", out);
    cr_assert(strstr(out, "\nlocker()\n\t/") != NULL, "%s", out);
    cr_assert(strstr(out, "[sync.WaitGroup.Wait]:\ngoro_waitgroup_wait()\n\t/") != NULL, "%s", out);
    cr_assert(strstr(out, "\nwaiter()\n\t/") != NULL, "%s", out);
    /* A channel receive is a language operation: no goro frame on top. */
    cr_assert(strstr(out, "[chan receive]:\nreceiver()\n\t/") != NULL, "%s", out);
    /* spawner's last goro_go was a tail call: its goroutine still names it. */
    int spawned = 0;
    for (const char *p = out; (p = strstr(p, "created by spawner in goroutine ")); p++)
        spawned++;
    cr_assert_eq(spawned, 4, "%s", out);
    /* Every function line is followed by a file line Go tools can read. */
    for (const char *p = strstr(out, "()\n"); p; p = strstr(p + 1, "()\n"))
        cr_assert(p[3] == '\t' && (p[4] == '/' || p[4] == '?'), "%.80s", p);
}

GORO_TEST(traces, tail_calls_debug2, .timeout = 60) {
    char out[1 << 16];
    int st = trace_run((const char *[]){"dump", "2", NULL}, NULL, 1, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x\n%s", st, out);
    assert_scenario_dump(out);
}

GORO_TEST(traces, tail_calls_debug1, .timeout = 60) {
    char out[1 << 16];
    int st = trace_run((const char *[]){"dump", "1", NULL}, NULL, 1, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x\n%s", st, out);
    assert_no_internals(out);
    cr_assert(strstr(out, "goroutine profile: total 6\n") != NULL, "%s", out);
    /* The two sleepers group together: goro_sleep on top, sleeper below
       (at +0x0, their entries, when the frames were tail calls). */
    cr_assert(strstr(out, "\n2 @ 0x") != NULL, "%s", out);
    cr_assert(strstr(out, "\tgoro_sleep+0x") != NULL, "%s", out);
    cr_assert(strstr(out, "\tsleeper+0x") != NULL, "%s", out);
    cr_assert(strstr(out, "\tgoro_mutex_lock+0x") != NULL, "%s", out);
    cr_assert(strstr(out, "\tlocker+0x") != NULL, "%s", out);
    cr_assert(strstr(out, "\treceiver+") != NULL, "%s", out);
}

/* The string table of the gzipped profile: every function and file name. */
static size_t gunzip(const char *in, size_t n, char *out, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int r = inflate(&z, Z_FINISH);
    cr_assert_eq(r, Z_STREAM_END, "inflate: %d", r);
    size_t len = z.total_out;
    inflateEnd(&z);
    return len;
}

static bool has(const char *buf, size_t n, const char *s) { return memmem(buf, n, s, strlen(s)); }

GORO_TEST(traces, tail_calls_debug0, .timeout = 60) {
    static char out[1 << 18], raw[1 << 20];
    size_t n = 0;
    int st = trace_run_n((const char *[]){"dump", "0", NULL}, NULL, 1, out, sizeof out, &n);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    size_t m = gunzip(out, n, raw, sizeof raw);
    for (int i = 0; internals[i]; i++)
        cr_assert(!has(raw, m, internals[i]), "'%s' in the profile", internals[i]);
    const char *want[] = {"goro_sleep",          "sleeper", "goro_mutex_lock", "locker",
                          "goro_waitgroup_wait", "waiter",  "receiver",        NULL};
    for (int i = 0; want[i]; i++)
        cr_assert(has(raw, m, want[i]), "'%s' missing from the profile", want[i]);
}

GORO_TEST(traces, tail_calls_sigquit, .timeout = 60) {
    char out[1 << 16];
    int st = trace_run((const char *[]){"sigquit", NULL}, "crash", 2, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x\n%s", st, out);
    cr_assert(strncmp(out, "SIGQUIT: quit\n", 14) == 0, "%s", out);
    assert_scenario_dump(out);
}

/* ------------------------------------------------------------ labels */

static goro_chan *lab_gate;

static void lab_parked(void *arg) {
    if (arg) {
        goro_label_set("phase", "start");
        goro_label_set("phase", NULL);
    }
    goro_chan_recv(lab_gate, NULL);
}

/* Takes a fresh debug=1 profile into *p (freeing the last one): does it
   hold needle? */
static bool traces_profile_has(char **p, const char *needle) {
    free(*p);
    size_t n = 0;
    FILE *f = open_memstream(p, &n);
    goro_profile_write(f, 1);
    fclose(f);
    return strstr(*p, needle) != NULL;
}

GORO_TEST(traces, removing_the_last_label_leaves_none, .timeout = 30) {
    lab_gate = goro_chan_make(0, 0);
    /* Each holds the gate: woken by the close, they may still be inside
       their receive when this body releases it. */
    goro_chan *const holds[] = {lab_gate, NULL};
    goro_go_opts(&(goro_opts){.holds = holds}, lab_parked, NULL);
    goro_go_opts(&(goro_opts){.holds = holds}, lab_parked, "relabel");
    char *p = NULL;
    goro_test_wait_until(traces_profile_has(&p, "\n2 @ "), GORO_SEC(5));
    cr_assert(strstr(p, "# labels: {}") == NULL, "%s", p);
    cr_assert(strstr(p, "\n2 @ ") != NULL, "the two goroutines group together:\n%s", p);
    free(p);
    goro_chan_close(lab_gate);
    goro_chan_release(lab_gate);
}

/* ------------------------------------------------------------ contexts */

GORO_TEST(traces, ctx_error_texts_are_gos, .timeout = 30) {
    goro_ctx *t = goro_ctx_with_timeout(goro_ctx_background(), GORO_MS(1));
    bool ok;
    goro_chan_recv_timeout(goro_ctx_done(t), NULL, &ok, GORO_SEC(10));
    cr_assert_eq(goro_ctx_err(t), GORO_ETIMEDOUT);
    cr_assert_str_eq(goro_ctx_err_str(t), "context deadline exceeded");
    goro_ctx *c = goro_ctx_with_cancel(goro_ctx_background());
    cr_assert_null(goro_ctx_err_str(c));
    goro_ctx_cancel(c);
    cr_assert_str_eq(goro_ctx_err_str(c), "context canceled");
    goro_ctx_release(c);
    goro_ctx_release(t);
}

/* ------------------------------------------------------------ signals */

GORO_TEST(traces, signal_notify_delivers_on_a_channel, .timeout = 60) {
    char out[4096];
    int st = trace_run((const char *[]){"notify", NULL}, NULL, 1, out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "case 1 signal %d\ncase 1 signal %d\n", SIGUSR1, SIGUSR1);
    cr_assert_str_eq(out, want);
    /* After goro_signal_stop, SIGUSR1 kills as before. */
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1, "status %#x\n%s", st, out);
}

GORO_TEST(traces, waiting_for_a_signal_is_not_a_deadlock, .timeout = 60) {
    /* TSan runs a handler only at an intercepted call; a thread parked in
       a raw futex wait never gets there. */
    if (GORO_TEST_TSAN)
        cr_skip("ThreadSanitizer holds a signal from another process until an intercepted call");
    char out[4096];
    int st = trace_run((const char *[]){"notify-wait", NULL}, NULL, 1, out, sizeof out);
    char want[32];
    snprintf(want, sizeof want, "got %d\n", SIGTERM);
    cr_assert_str_eq(out, want);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

GORO_TEST(traces, signal_notify_refuses_goros_own_signals, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    cr_assert_eq(goro_signal_notify(c, SIGURG), GORO_EINVAL);
    cr_assert_eq(goro_signal_notify(c, SIGKILL), GORO_EINVAL);
    cr_assert_eq(goro_signal_notify(c, 0), GORO_EINVAL);
    cr_assert_eq((goro_signal_notify)(c, SIGKILL), GORO_EINVAL); /* the one-signal function */
    goro_signal_stop(c); /* never registered: nothing to do */
    goro_chan_release(c);
}

/* ------------------------------------------------- Go's tools read them all */

/* Writes n bytes to a new temporary file; returns its path (static). */
static const char *to_temp(const char *data, size_t n) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/goro_traces_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Runs cmd through the shell; its output plus "rc=N" in out. */
static void shell(const char *cmd, char *out, size_t cap) {
    char full[1024];
    snprintf(full, sizeof full, "%s 2>&1; echo \"rc=$?\"", cmd);
    FILE *p = popen(full, "r");
    cr_assert(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    pclose(p);
}

static void panicparse_accepts(const char *text) {
    const char *path = to_temp(text, strlen(text));
    char cmd[256], out[1 << 15];
    snprintf(cmd, sizeof cmd, "/usr/bin/panicparse -parse=false -no-color < %s", path);
    shell(cmd, out, sizeof out);
    unlink(path);
    cr_assert(strstr(out, "rc=0") != NULL && strstr(out, "Failed") == NULL, "%s\n--- input:\n%s",
              out, text);
}

GORO_TEST(traces, panicparse_reads_dumps_sigquit_and_crashes, .timeout = 120) {
    if (access("/usr/bin/panicparse", X_OK) != 0)
        cr_skip("panicparse is not installed (apt-get install panicparse; CI has it)");
    static char out[1 << 16];
    trace_run((const char *[]){"dump", "2", NULL}, NULL, 1, out, sizeof out);
    panicparse_accepts(out);
    trace_run((const char *[]){"sigquit", NULL}, "crash", 2, out, sizeof out);
    panicparse_accepts(out);
    trace_run((const char *[]){"nil", NULL}, "all", 2, out, sizeof out);
    panicparse_accepts(out);
    trace_run((const char *[]){"mutex-null", NULL}, NULL, 2, out, sizeof out);
    panicparse_accepts(out);
}

GORO_TEST(traces, go_tool_pprof_reads_the_profile, .timeout = 180) {
    if (access("/usr/bin/go", X_OK) != 0)
        cr_skip("go is not installed (apt-get install golang-go; CI has it)");
    static char out[1 << 18], raw[1 << 16];
    size_t n = 0;
    int st = trace_run_n((const char *[]){"dump", "0", NULL}, NULL, 1, out, sizeof out, &n);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const char *path = to_temp(out, n);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "HOME=/tmp GOFLAGS= /usr/bin/go tool pprof -raw %s", path);
    shell(cmd, raw, sizeof raw);
    unlink(path);
    cr_assert(strstr(raw, "rc=0") != NULL, "%s", raw);
    cr_assert(strstr(raw, " goro_sleep ") != NULL && strstr(raw, " sleeper ") != NULL, "%s", raw);
    cr_assert(strstr(raw, " locker ") != NULL && strstr(raw, " receiver ") != NULL, "%s", raw);
    cr_assert(strstr(raw, "goro__") == NULL && strstr(raw, "switch_to") == NULL, "%s", raw);
}
