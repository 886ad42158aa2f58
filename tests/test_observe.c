/*
 * test_observe.c - how goroutine stacks are captured and seen: counts that
 * agree, dumps under heavy churn, running goroutines on other threads,
 * plain threads inside the runtime, goroutines that never ran, depth caps,
 * corrupt stacks, goro_stack's buffer rules, crash tracebacks, SIGQUIT (in
 * a child process) and GORO_LOG lines.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "observe/observe.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* ------------------------------------------------------------ helpers */

static char *obs_profile(int debug) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert(f);
    cr_assert_eq(goro_profile_write(f, debug), 0);
    fclose(f);
    return buf;
}

static long obs_total(const char *prof) {
    const char *p = strstr(prof, "profile: total ");
    cr_assert(p, "%s", prof);
    return strtol(p + 15, NULL, 10);
}

static bool obs_has_block(const char *dump, uint64_t id, const char *state, const char *func) {
    char head[96];
    snprintf(head, sizeof head, "goroutine %llu [%s", (unsigned long long)id, state);
    const char *p = strstr(dump, head);
    if (!p || (p != dump && p[-1] != '\n'))
        return false;
    const char *end = strstr(p, "\n\n");
    const char *f = strstr(p, func);
    return f && (!end || f < end);
}

/* Takes a fresh profile into *d (freeing the last one): a condition for
   goro_test_wait_until that leaves the profile it looked at behind. */
static const char *obs_reprofile(char **d, int debug) {
    free(*d);
    *d = obs_profile(debug);
    return *d;
}

static char *obs_wait_block(uint64_t id, const char *state, const char *func) {
    char *d = NULL;
    if (goro_test_wait_until(obs_has_block(obs_reprofile(&d, 2), id, state, func), GORO_SEC(5)))
        return d;
    cr_assert_fail("goroutine %llu never showed [%s with %s:\n%s", (unsigned long long)id, state,
                   func, d);
    return NULL;
}

static void obs_wait_count(int want) {
    if (!goro_test_wait_until(goro_count() == want, GORO_SEC(5))) {
        char *d = obs_profile(2);
        cr_assert_fail("goro_count() = %d, want %d:\n%s", goro_count(), want, d);
    }
}

/* Runs fn in a forked child (call before the runtime starts in this process);
   returns its wait status and what it wrote to stderr. */
static int obs_child(void (*fn)(void), char *out, size_t cap) {
    return goro_test_run_child(fn, out, cap);
}

static void obs_block_forever(void *arg) {
    int v;
    goro_chan_recv(arg, &v);
}

/* ------------------------------------------------------------ counts */

GORO_TEST(observe, profile_total_equals_goro_count, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    for (int i = 0; i < 50; i++)
        goro_go(obs_block_forever, c);
    obs_wait_count(51);
    for (int debug = 1; debug <= 2; debug++) {
        char *p = obs_profile(debug);
        if (debug == 1) {
            cr_assert_eq(obs_total(p), goro_count(), "%s", p);
        } else {
            int blocks = 0;
            for (const char *q = p; (q = strstr(q, "goroutine ")) != NULL; q++)
                if (q == p || q[-1] == '\n')
                    blocks++;
            cr_assert_eq(blocks, goro_count());
        }
        free(p);
    }
    goro_chan_close(c);
    obs_wait_count(1);
    char *p = obs_profile(1);
    cr_assert_eq(obs_total(p), 1, "%s", p);
    free(p);
    goro_chan_release(c);
}

GORO_TEST(observe, ten_thousand_parked_goroutines, .timeout = 60) {
    /* (TSan counts goroutines as threads and stops at 8128.) */
    const int n = GORO_TEST_TSAN ? 2000 : 10000;
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    for (int i = 0; i < n; i++)
        cr_assert_neq(goro_go(obs_block_forever, c), 0);
    obs_wait_count(n + 1);
    char want[32];
    snprintf(want, sizeof want, "\n%d @ 0x", n);
    /* Counted from goro_go's return, parked a little later: wait until every
       one of them sits in the channel receive before timing a profile. */
    char *q = NULL;
    goro_test_wait_until(strstr(obs_reprofile(&q, 1), want) != NULL, GORO_SEC(5));
    free(q);
    int64_t t0 = goro_nanotime();
    char *p = obs_profile(1);
    int64_t dt = goro_nanotime() - t0;
    cr_assert_eq(obs_total(p), n + 1);
    cr_assert(strstr(p, want) != NULL, "%.400s", p);
    cr_log_info("debug=1 with %d goroutines: %.1f ms", n + 1, dt / 1e6);
    free(p);
    goro_chan_close(c);
    obs_wait_count(1);
    goro_chan_release(c);
}

/* ------------------------------------------------------------ churn */

static _Atomic bool obs_churn_stop;

static void obs_short_lived(void *arg) {
    (void)arg;
    goro_yield();
}

static void obs_spawner(void *arg) {
    (void)arg;
    while (!atomic_load(&obs_churn_stop)) {
        for (int i = 0; i < 64; i++)
            goro_go(obs_short_lived, NULL);
        goro_yield();
    }
}

static int obs_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

GORO_TEST(observe, dump_during_churn_lists_no_id_twice, .timeout = 60) {
    goro_maxprocs(2);
    goro_go(obs_spawner, NULL);
    goro_go(obs_spawner, NULL);
    /* At least 2 s of churn and at least 4 dumps: under TSan on a loaded
       machine one dump pair can take most of a second. */
    int64_t t0 = goro_nanotime();
    int dumps = 0;
    static uint64_t ids[1 << 16];
    while (goro_nanotime() - t0 < GORO_SEC(2) ||
           (dumps < 4 && goro_nanotime() - t0 < GORO_SEC(40))) {
        char *d = obs_profile(2);
        size_t n = 0;
        for (const char *q = d; (q = strstr(q, "goroutine ")) != NULL; q++) {
            if (q != d && q[-1] != '\n')
                continue;
            cr_assert(n < sizeof ids / sizeof ids[0]);
            ids[n++] = strtoull(q + 10, NULL, 10);
        }
        qsort(ids, n, sizeof ids[0], obs_cmp_u64);
        for (size_t i = 1; i < n; i++)
            cr_assert_neq(ids[i], ids[i - 1], "goroutine %llu listed twice",
                          (unsigned long long)ids[i]);
        free(d);
        char *p = obs_profile(1);
        free(p);
        dumps++;
    }
    atomic_store(&obs_churn_stop, true);
    cr_assert_gt(dumps, 3);
    obs_wait_count(1);
}

/* ------------------------------------------------------------ running elsewhere */

static _Atomic bool obs_spin_stop;
static _Atomic bool obs_spinning;

static GORO__NOINLINE void obs_busy_loop(void *arg) {
    (void)arg;
    atomic_store(&obs_spinning, true);
    while (!atomic_load_explicit(&obs_spin_stop, memory_order_relaxed))
        __asm__ volatile("" ::: "memory");
}

GORO_TEST(observe, running_goroutine_on_another_thread, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan delays asynchronous signals until a busy loop calls into it");
    goro_maxprocs(2);
    uint64_t id = goro_go(obs_busy_loop, NULL);
    cr_assert(goro_test_wait_until(atomic_load(&obs_spinning), GORO_SEC(5)));
    char *d = obs_wait_block(id, "running]", "\nobs_busy_loop()\n");
    cr_assert(strstr(d, "stack unavailable") == NULL, "%s", d);
    free(d);
    /* The same from the profile: the busy goroutine's leaf is its loop. */
    char *p = obs_profile(1);
    cr_assert(strstr(p, "\tobs_busy_loop+0x") != NULL, "%s", p);
    free(p);
    atomic_store(&obs_spin_stop, true);
    obs_wait_count(1);
}

static goro_chan *obs_thread_chan;

static GORO__NOINLINE void *obs_plain_thread(void *arg) {
    (void)arg;
    int v;
    goro_chan_recv(obs_thread_chan, &v);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

GORO_TEST(observe, plain_thread_waiting_in_the_runtime, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan holds signals to a thread blocked in a raw futex call");
    obs_thread_chan = goro_chan_make(sizeof(int), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, obs_plain_thread, NULL), 0);
    char *d = NULL;
    cr_assert(goro_test_wait_until(
                  strstr(obs_reprofile(&d, 2), "[chan receive]:\nobs_plain_thread()\n") != NULL,
                  GORO_SEC(5)),
              "the plain thread never showed up:\n%s", d);
    /* No C start-up frames under it, and no goro frames above it. */
    const char *b = strstr(d, "[chan receive]:\nobs_plain_thread()\n");
    const char *end = strstr(b, "\n\n");
    cr_assert(!strstr(b, "start_thread") || (end && strstr(b, "start_thread") > end), "%s", d);
    cr_assert(!strstr(b, "goro_chan_recv") || (end && strstr(b, "goro_chan_recv") > end), "%s", d);
    free(d);
    int v = 0;
    goro_chan_send(obs_thread_chan, &v);
    pthread_join(t, NULL);
    goro_chan_release(obs_thread_chan);
}

static void obs_never_ran(void *arg) { (void)arg; }

static _Atomic uint64_t obs_child_id;
static char *obs_parent_dump;

static void obs_spawn_and_dump(void *arg) {
    /* One P: the child cannot run before this goroutine blocks. */
    atomic_store(&obs_child_id, goro_go(obs_never_ran, NULL));
    obs_parent_dump = obs_profile(2);
    int v = 1;
    goro_chan_send(arg, &v);
}

GORO_TEST(observe, runnable_goroutine_that_never_ran, .timeout = 30) {
    goro_maxprocs(1);
    goro_chan *done = goro_chan_make(sizeof(int), 0);
    goro_go(obs_spawn_and_dump, done);
    int v;
    goro_chan_recv(done, &v);
    goro_chan_release(done);
    cr_assert(obs_parent_dump);
    uint64_t id = atomic_load(&obs_child_id);
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [runnable]:\nobs_never_ran()\n\t",
             (unsigned long long)id);
    cr_assert(strstr(obs_parent_dump, head) != NULL, "%s", obs_parent_dump);
    cr_assert(strstr(obs_parent_dump, "\ncreated by obs_spawn_and_dump in goroutine ") != NULL,
              "%s", obs_parent_dump);
    free(obs_parent_dump);
}

/* ------------------------------------------------------------ depth, safety */

static GORO__NOINLINE int obs_recurse(int n, goro_chan *c) {
    volatile int keep = n;
    if (n == 0) {
        int v;
        goro_chan_recv(c, &v);
        return keep;
    }
    int r = obs_recurse(n - 1, c);
    return r + keep;
}

static void obs_recurse_entry(void *arg) {
    obs_recurse(300, arg);
    __asm__ volatile("" ::: "memory");
}

GORO_TEST(observe, profile_stacks_are_capped_at_128, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(obs_recurse_entry, c);
    free(obs_wait_block(id, "chan receive]", "obs_recurse()"));
    char *p = obs_profile(1);
    const char *g = strstr(p, "\n#\t");
    cr_assert(g);
    /* Find the group holding obs_recurse and count its PCs. */
    const char *f = strstr(p, "obs_recurse+0x");
    cr_assert(f, "%s", p);
    const char *line = f;
    while (line > p && !(line[-1] == '\n' && line[0] >= '0' && line[0] <= '9'))
        line--;
    const char *nl = strchr(line, '\n');
    int pcs = 0;
    for (const char *q = line; q < nl; q++)
        if (q[0] == ' ' && q[1] == '0' && q[2] == 'x')
            pcs++;
    /* 128 captured, minus goro's own frames at the top. */
    cr_assert(pcs <= GORO__PROF_DEPTH && pcs > GORO__PROF_DEPTH - 16, "%d PCs: %.300s", pcs, line);
    cr_assert(strstr(p, "obs_recurse_entry+") == NULL, "the outermost frames are cut");
    free(p);
    /* debug=2 keeps the outermost frames of deep stacks too. */
    char *d = obs_profile(2);
    cr_assert(strstr(d, "\nobs_recurse_entry()\n") != NULL, "%s", d);
    cr_assert(strstr(d, " frames elided...\n") != NULL);
    free(d);
    int v = 0;
    goro_chan_send(c, &v);
    goro_chan_release(c);
}

GORO_TEST(observe, unwinding_garbage_never_faults, .timeout = 30) {
    /* A fake stack full of pseudo-random words, and registers pointing at
       real code: the walk must end inside the buffer's bounds, quietly. */
    static uintptr_t fake[4096];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    extern int main(int, char **);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof fake / sizeof fake[0]; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* Mix in plausible code and stack addresses. */
            fake[i] = (i % 3 == 0)   ? (uintptr_t)main + (x & 0xff)
                      : (i % 3 == 1) ? (uintptr_t)&fake[x % 4096]
                                     : (uintptr_t)x;
        }
        goro__regs rg;
        memset(&rg, 0, sizeof rg);
        for (int r = 0; r < GORO__NREGS; r++) {
            rg.r[r] = fake[(x >> r) % 4096];
            rg.valid |= (uint64_t)1 << r;
        }
        rg.r[GORO__REG_SP] = (uintptr_t)&fake[round % 64];
        rg.r[GORO__REG_PC] = (uintptr_t)main + (x & 0x3f);
        goro__mem mem = {.n = 1, .r = {{(uintptr_t)fake, (uintptr_t)(fake + 4096), NULL}}};
        uintptr_t pcs[256];
        int n = goro__unwind(&rg, round & 1, &mem, pcs, 256, NULL, 0, NULL, NULL);
        cr_assert(n >= 1 && n <= 256);
        /* And with no readable memory at all: exactly the first PC. */
        goro__mem none = {.n = 0};
        n = goro__unwind(&rg, true, &none, pcs, 256, NULL, 0, NULL, NULL);
        cr_assert(n >= 1 && n <= 2, "%d", n);
    }
}

/* ------------------------------------------------------------ goro_stack */

GORO_TEST(observe, goro_stack_buffer_rules, .timeout = 10) {
    char big[8192];
    size_t n = goro_stack(big, sizeof big, false);
    cr_assert_gt(n, 0);
    cr_assert_lt(n, sizeof big);
    cr_assert_eq(big[n], 0);
    cr_assert(strncmp(big, "goroutine 1 [running]:\n", 23) == 0, "%s", big);
    /* Only the calling goroutine, and its frames (this test's function). */
    cr_assert(strstr(big, "\n\ngoroutine") == NULL);
    cr_assert(strstr(big, "goro_stack_buffer_rules") != NULL, "%s", big);
    /* Truncated like runtime.Stack: exactly len bytes, no terminator. */
    char small[17];
    memset(small, 'X', sizeof small);
    n = goro_stack(small, 16, false);
    cr_assert_eq(n, 16);
    cr_assert(memcmp(small, "goroutine 1 [run", 16) == 0);
    cr_assert_eq(small[16], 'X');
    cr_assert_eq(goro_stack(NULL, 10, true), 0);
    cr_assert_eq(goro_stack(small, 0, true), 0);
    /* From a goroutine: its own id. */
}

static char obs_gstack[4096];
static GORO__NOINLINE void obs_stack_in_goroutine(void *arg) {
    goro_stack(obs_gstack, sizeof obs_gstack, false);
    int v = 1;
    goro_chan_send(arg, &v); /* not a tail call, and publishes obs_gstack */
}

GORO_TEST(observe, goro_stack_in_a_goroutine, .timeout = 10) {
    goro_chan *done = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(obs_stack_in_goroutine, done);
    int v;
    goro_chan_recv(done, &v);
    goro_chan_release(done);
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [running]:\nobs_stack_in_goroutine()\n",
             (unsigned long long)id);
    cr_assert(strncmp(obs_gstack, head, strlen(head)) == 0, "%s", obs_gstack);
    cr_assert(strstr(obs_gstack, "\ncreated by ") != NULL, "%s", obs_gstack);
}

GORO_TEST(observe, traceback_print_for_crashes, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(obs_block_forever, c);
    free(obs_wait_block(id, "chan receive]", "obs_block_forever()"));
    char path[] = "/tmp/goro_obs_tb_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    goro__traceback_print(fd, goro__getg(), true);
    lseek(fd, 0, SEEK_SET);
    char out[16384];
    ssize_t n = read(fd, out, sizeof out - 1);
    cr_assert_gt(n, 0);
    out[n] = 0;
    close(fd);
    unlink(path);
    cr_assert(strncmp(out, "goroutine 1 [running]:\n", 23) == 0, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "\n\ngoroutine %llu [chan receive]:\nobs_block_forever()\n",
             (unsigned long long)id);
    cr_assert(strstr(out, want) != NULL, "%s", out);
    goro_chan_close(c); /* let the blocked goroutine end */
    goro_chan_release(c);
}

/* ------------------------------------------------------------ fatal signals */

static GORO__NOINLINE void obs_crasher(int *volatile *pp) {
    **pp = 42;
    __asm__ volatile("" ::: "memory");
}

static GORO__NOINLINE void obs_crash_goroutine(void *arg) {
    (void)arg;
    /* An unmapped address that is not NULL: UBSan's null check would report
     * (and abort on) a store through NULL before it faults; address 16 faults
     * with SIGSEGV in every build, so goro's fault handler prints its report. */
    int *volatile p = (int *)(uintptr_t)16;
    obs_crasher(&p);
    __asm__ volatile("" ::: "memory");
}

static void obs_segv_child(void) {
    goro_go(obs_crash_goroutine, NULL);
    goro_sleep(GORO_SEC(5));
}

GORO_TEST(observe, fault_in_a_goroutine_unwinds_through_the_signal, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan cannot start threads after a multi-threaded fork");
    char out[65536];
    int st = obs_child(obs_segv_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x:\n%s", st, out);
    /* The faulting function on top: no handler frames, no trampoline. */
    cr_assert(strstr(out, " [running]:\nobs_crasher()\n\t") != NULL, "%s", out);
    cr_assert(strstr(out, "\nobs_crash_goroutine()\n\t") != NULL, "%s", out);
    cr_assert(strstr(out, "?"
                          "?()") == NULL,
              "%s", out);
}

/* ------------------------------------------------------------ SIGQUIT */

static GORO__NOINLINE void obs_quit_parked(void *arg) {
    int v;
    goro_chan_recv(arg, &v);
    __asm__ volatile("" ::: "memory");
}

/* The dump goes to a file standing in for stderr, so that the program can
   wait (bounded) until it is complete before it shows it is still alive: a
   fixed sleep is too short on a loaded machine. */
static void obs_quit_start(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(obs_quit_parked, c);
    if (!goro_test_wait_until(goro_test_parked_as(id, GORO__WAIT_CHAN_RECV), GORO_SEC(5)))
        _exit(4);
}

/* Reads what file holds so far into buf (cap bytes, NUL-terminated): is it
   the whole dump (obs_quit_parked's trace in it, ending with a newline)? */
static bool obs_quit_dump_complete(int file, char *buf, size_t cap, ssize_t *n) {
    *n = pread(file, buf, cap - 1, 0);
    buf[*n > 0 ? *n : 0] = 0;
    return *n > 0 && strstr(buf, "obs_quit_parked") && buf[*n - 1] == '\n';
}

static void obs_sigquit_child(void) {
    obs_quit_start();
    char path[] = "/tmp/goro_obs_quit_XXXXXX";
    int file = mkstemp(path);
    int err = dup(2);
    if (file < 0 || err < 0)
        _exit(3);
    unlink(path);
    dup2(file, 2);
    raise(SIGQUIT);
    char buf[65536];
    ssize_t n = 0;
    goro_test_wait_until(obs_quit_dump_complete(file, buf, sizeof buf, &n), GORO_SEC(10));
    dup2(err, 2);
    if (n > 0 && write(2, buf, (size_t)n) < 0)
        _exit(3);
    static const char alive[] = "still alive\n";
    if (write(2, alive, sizeof alive - 1) < 0)
        _exit(3);
}

GORO_TEST(observe, sigquit_dumps_and_goes_on, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan cannot start threads after a multi-threaded fork");
    char out[65536];
    int st = obs_child(obs_sigquit_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d:\n%s", st, out);
    cr_assert(strncmp(out, "SIGQUIT: quit\nPC=0x", 19) == 0, "%s", out);
    cr_assert(strstr(out, " sigcode=") != NULL, "%s", out);
    cr_assert(strstr(out, "\n\ngoroutine 1 [") != NULL, "%s", out);
    cr_assert(strstr(out, "[chan receive]:\nobs_quit_parked()\n") != NULL, "%s", out);
    cr_assert(strstr(out, "still alive\n") != NULL, "%s", out);
    cr_assert(strstr(out, "still alive\n") > strstr(out, "obs_quit_parked"), "%s", out);
}

/* A shell starts background jobs with SIGQUIT ignored; Go dumps anyway (it
   respects an inherited SIG_IGN only for SIGHUP and SIGINT), and so do we. */
static void obs_sigquit_ignored_child(void) {
    signal(SIGQUIT, SIG_IGN); /* before the runtime starts */
    obs_sigquit_child();
}

GORO_TEST(observe, sigquit_dumps_when_inherited_ignored, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan cannot start threads after a multi-threaded fork");
    char out[65536];
    int st = obs_child(obs_sigquit_ignored_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d:\n%s", st, out);
    cr_assert(strncmp(out, "SIGQUIT: quit\nPC=0x", 19) == 0, "%s", out);
    cr_assert(strstr(out, "[chan receive]:\nobs_quit_parked()\n") != NULL, "%s", out);
    cr_assert(strstr(out, "still alive\n") != NULL, "%s", out);
}

static void obs_sigquit_crash_child(void) {
    setenv("GOROTRACEBACK", "crash", 1);
    obs_quit_start();
    raise(SIGQUIT);
    goro_sleep(GORO_SEC(20)); /* the dump ends the process */
    static const char alive[] = "still alive\n";
    if (write(2, alive, sizeof alive - 1) < 0)
        _exit(3);
}

GORO_TEST(observe, sigquit_with_gorotraceback_crash_exits_2, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan cannot start threads after a multi-threaded fork");
    char out[65536];
    int st = obs_child(obs_sigquit_crash_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d:\n%s", st, out);
    cr_assert(strncmp(out, "SIGQUIT: quit\n", 14) == 0, "%s", out);
    cr_assert(strstr(out, "obs_quit_parked()") != NULL, "%s", out);
    cr_assert(strstr(out, "still alive") == NULL, "%s", out);
}

/* ------------------------------------------------------------ GORO_LOG */

static void obs_log_lines(void) {
    GORO_LOG(INFO, "x=%d", 42);
    GORO_LOG(ERROR, "already ends with a newline\n");
}

static void obs_log_in_goroutine(void *arg) {
    (void)arg;
    for (int i = 0; i < 200; i++)
        GORO_LOG(WARN, "goroutine line %d %s", i, "abcdefghijklmnopqrstuvwxyz0123456789");
}

static void obs_log_child(void) {
    obs_log_lines();
    for (int i = 0; i < 4; i++)
        goro_go(obs_log_in_goroutine, NULL);
    goro_test_wait_until(goro_count() <= 1, GORO_SEC(2));
}

GORO_TEST(observe, goro_log_lines, .timeout = 30) {
    if (GORO_TEST_TSAN)
        cr_skip("TSan cannot start threads after a multi-threaded fork");
    char out[1 << 18];
    int st = obs_child(obs_log_child, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", out);
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^\\[[0-9]{4}/[0-9]{6}\\.[0-9]{3}:(DEBUG|INFO|WARN|ERROR):gid-[0-9]+:"
                         "test_observe\\.c:[0-9]+\\] .*$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    int lines = 0, ours = 0;
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cr_assert_eq(regexec(&re, l, 0, NULL, 0), 0, "bad line: %s", l);
        lines++;
        if (strstr(l, ":WARN:gid-") && strstr(l, "] goroutine line "))
            ours++;
    }
    regfree(&re);
    cr_assert_eq(lines, 2 + 800);
    cr_assert_eq(ours, 800);
    cr_assert(strstr(out, ":INFO:gid-1:test_observe.c:") != NULL);
}
