/*
 * test_leak.c - leak checks and the provable-leak profile.
 *
 * Suite leak: the test-time checks (goleak's verify-none, leaktest's mark +
 * check): what is reported and what never is, the retry, the filters, the
 * report format, timing, marks taken in goroutines and plain threads, ids
 * never reused, GOROLEAKCHECK=1 at exit.
 *
 * Suite leakprof: goro_leak_profile_write. Soundness first: goroutines that
 * look stuck but can still be woken (a reference kept by a global, a plain
 * thread, a running goroutine, a sleeping goroutine, a chain whose last
 * goroutine can run; timed waits; sync and I/O waits; contexts; goroutines
 * racing through their waits while the profile runs) must never be listed.
 * Then the classic leaks must be found with exact counts, and the profile is
 * timed over 100,000 goroutines.
 *
 * Cleaning up after a proven leak: a correct program cannot wake those
 * goroutines (that is what "proven" means), but a test can cheat: it keeps
 * the raw channel pointer (still valid, the leaked goroutines hold
 * references) and takes a new reference from it afterwards. That lets most
 * tests here end with no goroutine left, under the GORO_TEST leak check.
 * Goroutines blocked on a NULL channel or in an empty select can never be
 * woken at all: those tests are GORO_TEST_UNCHECKED.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "runtime/runtime.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* Keeps a blocking call out of tail position, so the function that made it
   stays on the stack (the checks' filters and reports name it). */
#define NOTAIL() __asm__ __volatile__("" ::: "memory")
#define NOINLINE __attribute__((noinline))

/* ------------------------------------------------------------- helpers */

/* Goroutines (not threads, not the runtime's own) parked with `reason`
   (-1: any wait reason). */
#define parked(reason) goro_test_count_parked((reason), false)

/* The bound of every wait here: tens of thousands of goroutines, under a
   sanitizer on a loaded machine, take a while to park or end. */
#define LEAK_WAIT_NS GORO_SEC(GORO_TEST_SANITIZED ? 60 : 20)

static void wait_parked(int reason, int n) {
    goro_test_wait_until(parked(reason) >= n, LEAK_WAIT_NS);
    cr_assert_geq(parked(reason), n, "only %d goroutines parked with reason %d, want %d",
                  parked(reason), reason, n);
}

static void wait_count(int want) {
    goro_test_wait_until(goro_count() == want, LEAK_WAIT_NS);
    cr_assert_eq(goro_count(), want, "goro_count %d, want %d", goro_count(), want);
}

/* What fn(f, debug) writes, as a malloc'ed string; *ret gets its result. */
static char *capture(int (*fn)(FILE *, int), int debug, int *ret) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    int r = fn(f, debug);
    fclose(f);
    if (ret)
        *ret = r;
    return buf;
}

static int count_str(const char *hay, const char *needle) {
    int n = 0;
    size_t l = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += l)
        n++;
    return n;
}

static int leaked(void) { return goro_leak_profile_write(NULL, 1); }

/* The soundness assertion: several runs, every format, nothing listed. */
static void assert_none_leaked(const char *what) {
    for (int i = 0; i < 5; i++)
        cr_assert_eq(leaked(), 0, "%s: reported as leaked (run %d)", what, i);
    int n;
    char *d1 = capture(goro_leak_profile_write, 1, &n);
    cr_assert_eq(n, 0, "%s", what);
    cr_assert(strncmp(d1, "goroutineleak profile: total 0\n", 31) == 0, "%s: debug=1:\n%s", what,
              d1);
    free(d1);
    char *d2 = capture(goro_leak_profile_write, 2, &n);
    cr_assert_eq(n, 0, "%s", what);
    cr_assert_null(strstr(d2, "(leaked)"), "%s: debug=2:\n%s", what, d2);
    free(d2);
}

/* goro_go_opts holding up to three channels (NULL ones skipped). */
static uint64_t go_holding(goro_fn fn, void *arg, goro_chan *h1, goro_chan *h2, goro_chan *h3) {
    goro_chan *h[4] = {NULL, NULL, NULL, NULL};
    int k = 0;
    if (h1)
        h[k++] = h1;
    if (h2)
        h[k++] = h2;
    if (h3)
        h[k++] = h3;
    goro_opts o = {.holds = h};
    uint64_t id = goro_go_opts(&o, fn, arg);
    cr_assert_neq(id, 0);
    return id;
}

/* The test's cheat (see the top comment): a new reference to a channel the
   program no longer references, so that it can wake what waits on it. */
static void cheat_close(goro_chan *raw) {
    goro_chan_retain(raw);
    goro_chan_close(raw);
    goro_chan_release(raw);
}

static void cheat_recv(goro_chan *raw, int n) {
    goro_chan_retain(raw);
    for (int i = 0; i < n; i++)
        cr_assert(goro_chan_recv(raw, NULL));
    goro_chan_release(raw);
}

static void recv_on(void *arg) {
    goro_chan_recv((goro_chan *)arg, NULL);
    NOTAIL();
}

static void *recv_on_thread(void *arg) {
    goro_chan_recv((goro_chan *)arg, NULL);
    return NULL;
}

static void send_on(void *arg) {
    int v = 1;
    goro_chan_send((goro_chan *)arg, &v);
    NOTAIL();
}

/* =====================================================================
 * suite leak: test-time checks
 * ===================================================================== */

static NOINLINE void blocked_top(void *arg) {
    goro_chan_recv((goro_chan *)arg, NULL);
    NOTAIL();
}

/* goleak's startBlockedG: a goroutine blocked until the channel is closed. */
/* A plain static: goroutine 1 (the test body) may resume on another thread
   after any goro call, so a thread-local would not be the one it wrote. */
static uint64_t last_blocked_id;
static NOINLINE goro_chan *start_blocked_g(void) {
    goro_chan *c = goro_chan_make(0, 0);
    goro_chan *held[] = {c, NULL}; /* c stays valid until it ends */
    goro_opts o = {.holds = held};
    last_blocked_id = goro_go_opts(&o, blocked_top, c);
    cr_assert_neq(last_blocked_id, 0);
    NOTAIL();
    return c;
}

static void unblock(goro_chan *c) {
    goro_chan_close(c);
    goro_chan_release(c);
}

static const goro_leak_opts quick = {.timeout_ns = GORO_MS(50)};

GORO_TEST(leak, no_leaks_by_default, .timeout = 10) {
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_leak_verify_none(NULL, stderr), 0);
    goro_leak_mark *m = goro_leak_mark_now();
    cr_assert_not_null(m);
    cr_assert_eq(goro_leak_check(m, NULL, stderr), 0);
    goro_leak_mark_free(m);
    goro_leak_mark_free(NULL);
    cr_assert_lt(goro_nanotime() - t0, GORO_MS(500), "a clean check returns at once");
}

GORO_TEST(leak, finds_blocked_goroutine, .timeout = 20) {
    goro_chan *c = start_blocked_g();
    int n;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    n = goro_leak_verify_none(&quick, f);
    fclose(f);
    cr_assert_eq(n, 1, "report:\n%s", buf);
    char want[128];
    snprintf(want, sizeof want,
             "found 1 unexpected goroutine:\ngoroutine %llu [chan receive]:\nblocked_top()\n\t",
             (unsigned long long)last_blocked_id);
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "report:\n%s", buf);
    cr_assert_not_null(strstr(buf, "\ncreated by start_blocked_g in goroutine 1\n"), "report:\n%s",
                       buf);
    cr_assert_not_null(strstr(buf, "test_leak.c:"), "file:line of each frame:\n%s", buf);
    free(buf);
    /* mark + check finds it too: it is not in an empty mark... */
    goro_leak_mark *m = goro_leak_mark_now();
    cr_assert_eq(goro_leak_check(m, &quick, NULL), 0, "...but it is in a mark taken now");
    goro_leak_mark_free(m);
    unblock(c);
    cr_assert_eq(goro_leak_verify_none(NULL, stderr), 0, "after unblock: nothing");
}

/* A named goroutine's report block is preceded by its name, in the debug=1
   label syntax; the debug=2 block itself stays Go's. */
GORO_TEST(leak, report_prints_goroutine_names, .timeout = 20) {
    goro_chan *c = goro_chan_make(0, 0);
    goro_chan *held[] = {c, NULL};
    goro_opts o = {.name = "refresher", .holds = held};
    uint64_t id = goro_go_opts(&o, blocked_top, c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(goro_leak_verify_none(&quick, f), 1);
    fclose(f);
    char want[160];
    snprintf(want, sizeof want,
             "found 1 unexpected goroutine:\n# labels: {\"name\":\"refresher\"}\ngoroutine %llu "
             "[chan receive]:\n",
             (unsigned long long)id);
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "report:\n%s", buf);
    free(buf);
    unblock(c);
}

/* goleak's TestFindRetry: unblocked by someone else 1 ms into the check. */
static void *unblock_later(void *arg) {
    usleep(1000);
    unblock(arg);
    return NULL;
}

GORO_TEST(leak, goroutine_ending_during_check_not_reported, .timeout = 20) {
    goro_chan *c = start_blocked_g();
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    pthread_t t;
    pthread_create(&t, NULL, unblock_later, c);
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_leak_verify_none(NULL, stderr), 0);
    int64_t took = goro_nanotime() - t0;
    pthread_join(t, NULL);
    cr_assert_lt(took, GORO_MS(GORO_TEST_SANITIZED ? 3000 : 500), "took %lld ns", (long long)took);
    /* The same from a goroutine that only retries from the mark. */
    goro_leak_mark *m = goro_leak_mark_now();
    c = start_blocked_g();
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    pthread_create(&t, NULL, unblock_later, c);
    cr_assert_eq(goro_leak_check(m, NULL, stderr), 0);
    pthread_join(t, NULL);
    goro_leak_mark_free(m);
}

/* ------------------------------------------- the seed: three senders */

static void query_sender(void *arg) {
    int answer = 42;
    goro_chan_send((goro_chan *)arg, &answer); /* 2 of 3 block forever */
    NOTAIL();
}

/* Returns the first of three answers and leaks the two other senders. Each
   sender holds the channel, as a Go closure would; *raw is the test's cheat. */
static NOINLINE int query_all(goro_chan **raw) {
    goro_chan *ch = goro_chan_make(sizeof(int), 0);
    goro_chan *held[] = {ch, NULL};
    goro_opts o = {.name = "query", .holds = held};
    for (int i = 0; i < 3; i++)
        cr_assert_neq(goro_go_opts(&o, query_sender, ch), 0);
    int v = 0;
    goro_chan_recv(ch, &v);
    *raw = ch;
    goro_chan_release(ch);
    NOTAIL();
    return v;
}

static void check_seed_report(const char *buf) {
    cr_assert(strncmp(buf, "found 2 unexpected goroutines:\n", 31) == 0, "report:\n%s", buf);
    cr_assert_eq(count_str(buf, " [chan send]:\nquery_sender()\n"), 2, "report:\n%s", buf);
    cr_assert_eq(count_str(buf, "\ncreated by query_all in goroutine 1\n"), 2, "report:\n%s", buf);
    cr_assert_eq(count_str(buf, "\n\n"), 1, "one blank line between the blocks:\n%s", buf);
    cr_assert_eq(count_str(buf, "\n# labels: {\"name\":\"query\"}\ngoroutine "), 2, "names:\n%s",
                 buf);
    cr_assert_eq(count_str(buf, "goroutine 1 ["), 0, "the caller is not reported:\n%s", buf);
}

GORO_TEST(leak, three_senders_two_leaks, .timeout = 30) {
    goro_leak_mark *m = goro_leak_mark_now();
    goro_chan *raw;
    cr_assert_eq(query_all(&raw), 42);
    goro_leak_opts o = {.timeout_ns = GORO_MS(300)};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int n = goro_leak_check(m, &o, f);
    fclose(f);
    cr_assert_eq(n, 2, "leaktest: %d\n%s", n, buf);
    check_seed_report(buf);
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    n = goro_leak_verify_none(&o, f);
    fclose(f);
    cr_assert_eq(n, 2, "goleak: %d\n%s", n, buf);
    check_seed_report(buf);
    free(buf);
    /* and the profile proves them leaked */
    cr_assert_eq(leaked(), 2);
    cheat_recv(raw, 2);
    goro_leak_mark_free(m);
}

/* ------------------------------------------------------ mark semantics */

GORO_TEST(leak, mark_ignores_goroutines_alive_at_mark, .timeout = 20) {
    goro_chan *old = start_blocked_g();
    goro_leak_mark *m = goro_leak_mark_now();
    cr_assert_eq(goro_leak_check(m, &quick, stderr), 0, "should ignore current");
    goro_chan *new = start_blocked_g();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(goro_leak_check(m, &quick, f), 1, "should detect new leaks");
    fclose(f);
    char want[96];
    snprintf(want, sizeof want, "found 1 unexpected goroutine:\ngoroutine %llu [",
             (unsigned long long)last_blocked_id);
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "%s", buf);
    free(buf);
    cr_assert_eq(goro_leak_verify_none(&quick, NULL), 2, "verify_none sees both");
    unblock(new);
    cr_assert_eq(goro_leak_check(m, NULL, stderr), 0);
    unblock(old);
    goro_leak_mark_free(m);
}

/* goleak's "Should not ignore false positive": ids are never reused, so a
   new goroutine is never taken for one that was in the mark. */
GORO_TEST(leak, ids_never_reused_new_goroutines_reported, .timeout = 20) {
    goro_chan *c = goro_chan_make(0, 0);
    uint64_t old_ids[5];
    for (int i = 0; i < 5; i++)
        old_ids[i] = go_holding(blocked_top, c, c, NULL, NULL);
    goro_leak_mark *m = goro_leak_mark_now();
    unblock(c);
    wait_count(1); /* the 5 are gone: their records are free for reuse */
    c = goro_chan_make(0, 0);
    for (int i = 0; i < 5; i++) {
        uint64_t id = go_holding(blocked_top, c, c, NULL, NULL);
        for (int j = 0; j < 5; j++)
            cr_assert_gt(id, old_ids[j]);
    }
    cr_assert_eq(goro_leak_check(m, &quick, NULL), 5, "each of the 5 new goroutines is flagged");
    unblock(c);
    cr_assert_eq(goro_leak_check(m, NULL, stderr), 0);
    goro_leak_mark_free(m);
}

/* leaktest's TestChangingStackTrace, and "reported once". */
static void moving(void *arg) {
    goro_chan **cs = arg;
    for (int i = 0; i < 3; i++) {
        goro_chan_recv(cs[i], NULL);
        NOTAIL();
    }
}

typedef struct {
    goro_chan **cs;
    int n;
    int64_t every;
} mover_arg;

static void *mover(void *arg) {
    mover_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        usleep((useconds_t)(a->every / 1000));
        goro_chan_send(a->cs[i], NULL);
    }
    return NULL;
}

GORO_TEST(leak, changing_stack_old_goroutine_not_reported, .timeout = 20) {
    static goro_chan *cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = goro_chan_make(0, 0);
    goro_go(moving, cs);
    goro_leak_mark *m = goro_leak_mark_now();
    mover_arg ma = {cs, 2, GORO_MS(20)};
    pthread_t t;
    pthread_create(&t, NULL, mover, &ma);
    goro_leak_opts o = {.timeout_ns = GORO_MS(100)};
    cr_assert_eq(goro_leak_check(m, &o, stderr), 0, "it was there at the mark, whatever its stack");
    pthread_join(t, NULL);
    goro_chan_send(cs[2], NULL);
    wait_count(1);
    for (int i = 0; i < 3; i++)
        goro_chan_release(cs[i]);
    goro_leak_mark_free(m);
}

GORO_TEST(leak, changing_stack_reported_once, .timeout = 20) {
    goro_leak_mark *m = goro_leak_mark_now();
    static goro_chan *cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = goro_chan_make(0, 0);
    uint64_t id = goro_go(moving, cs);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    /* It moves from cs[0] to cs[1] to cs[2] while the check retries. */
    mover_arg ma = {cs, 2, GORO_MS(30)};
    pthread_t t;
    pthread_create(&t, NULL, mover, &ma);
    goro_leak_opts o = {.timeout_ns = GORO_MS(300)};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int n = goro_leak_check(m, &o, f);
    fclose(f);
    pthread_join(t, NULL);
    cr_assert_eq(n, 1, "%s", buf);
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [chan receive]:\nmoving()\n",
             (unsigned long long)id);
    cr_assert_eq(count_str(buf, head), 1, "reported once, where it is at the end:\n%s", buf);
    cr_assert_eq(count_str(buf, "\ngoroutine "), 1, "%s", buf);
    free(buf);
    goro_chan_send(cs[2], NULL);
    wait_count(1);
    for (int i = 0; i < 3; i++)
        goro_chan_release(cs[i]);
    goro_leak_mark_free(m);
}

/* ------------------------------------------------------------- filters */

static _Atomic int inner_waits;
static NOINLINE void inner_wait(goro_chan *c) {
    atomic_fetch_add(&inner_waits, 1); /* not identical to blocked_top: no folding */
    goro_chan_recv(c, NULL);
    NOTAIL();
}

static NOINLINE void blocked_outer(void *arg) {
    inner_wait(arg);
    NOTAIL();
}

GORO_TEST(leak, ignore_top_functions, .timeout = 20) {
    goro_chan *c = start_blocked_g();
    const char *top[] = {"blocked_top", NULL};
    const char *creator[] = {"start_blocked_g", NULL};
    const char *other[] = {"nothing_like_it", "main", NULL};
    /* Filtered away on the first pass: the call returns long before its
       timeout (which is what retrying until it gives up would take). The
       first pass symbolizes, which under a sanitizer on a busy machine can
       take a while, so the margin is wide. */
    goro_leak_opts o = {.timeout_ns = GORO_SEC(10), .ignore_top_functions = top};
    int64_t t0 = goro_nanotime();
    cr_assert_eq(goro_leak_verify_none(&o, stderr), 0);
    cr_assert_lt(goro_nanotime() - t0, GORO_SEC(5), "filtered away on the first pass");
    o.timeout_ns = GORO_MS(50);
    o.ignore_top_functions = creator;
    cr_assert_eq(goro_leak_verify_none(&o, NULL), 1, "created by is not the top function");
    o.ignore_top_functions = other;
    cr_assert_eq(goro_leak_verify_none(&o, NULL), 1);
    unblock(c);

    /* Only the top function counts, not its callers. */
    c = goro_chan_make(0, 0);
    go_holding(blocked_outer, c, c, NULL, NULL);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    const char *outer[] = {"blocked_outer", NULL};
    const char *inner[] = {"inner_wait", NULL};
    o.ignore_top_functions = outer;
    cr_assert_eq(goro_leak_verify_none(&o, NULL), 1);
    o.ignore_top_functions = inner;
    cr_assert_eq(goro_leak_verify_none(&o, stderr), 0);
    unblock(c);
}

GORO_TEST(leak, ignore_created_by, .timeout = 20) {
    goro_chan *c = start_blocked_g();
    const char *creator[] = {"start_blocked_g", NULL};
    const char *top[] = {"blocked_top", NULL};
    goro_leak_opts o = {.timeout_ns = GORO_MS(50), .ignore_created_by = creator};
    cr_assert_eq(goro_leak_verify_none(&o, stderr), 0);
    goro_leak_mark *m = goro_leak_mark_now();
    goro_chan *c2 = start_blocked_g();
    cr_assert_eq(goro_leak_check(m, &o, stderr), 0, "filters apply to mark + check too");
    o.ignore_created_by = top;
    cr_assert_eq(goro_leak_verify_none(&o, NULL), 2);
    cr_assert_eq(goro_leak_check(m, &o, NULL), 1);
    /* both filters at once: either one drops it */
    o.ignore_top_functions = top;
    o.ignore_created_by = creator;
    cr_assert_eq(goro_leak_verify_none(&o, NULL), 0);
    unblock(c);
    unblock(c2);
    goro_leak_mark_free(m);
}

/* ------------------------------------------------------- report format */

GORO_TEST(leak, report_format, .timeout = 20) {
    goro_chan *c = goro_chan_make(0, 0);
    uint64_t a = goro_go(blocked_top, c);
    goro_opts named = {.name = "worker"};
    uint64_t b = goro_go_opts(&named, blocked_top, c);
    wait_parked(GORO__WAIT_CHAN_RECV, 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(goro_leak_verify_none(&quick, f), 2);
    fclose(f);
    /* The summary, then each goroutine in debug=2 format, blank-line
       separated, a named one preceded by its name as debug=1 shows labels. */
    cr_assert(strncmp(buf, "found 2 unexpected goroutines:\ngoroutine ", 41) == 0, "report:\n%s",
              buf);
    char want[256];
    uint64_t ids[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want, "goroutine %llu [chan receive]:\nblocked_top()\n\t",
                 (unsigned long long)ids[i]);
        cr_assert_eq(count_str(buf, want), 1, "report:\n%s", buf);
    }
    cr_assert_eq(count_str(buf, "\n\n# labels: {\"name\":\"worker\"}\ngoroutine "), 1,
                 "blocks are separated by one blank line, the name precedes its block:\n%s", buf);
    cr_assert_eq(count_str(buf, "created by "), 2, "%s", buf);
    cr_assert_eq(buf[len - 1], '\n');
    cr_assert_neq(buf[len - 2], '\n', "no blank line after the last block");
    /* The same text as the goroutine's own debug=2 block in a full dump. */
    char *dump = capture(goro_profile_write, 2, NULL);
    const char *blk = strstr(buf, "}\ngoroutine ");
    cr_assert_not_null(blk);
    blk += 2;
    cr_assert_not_null(strstr(dump, blk), "report block:\n%s\nnot in the dump:\n%s", blk, dump);
    free(dump);
    free(buf);
    unblock(c);
}

/* ------------------------------------------------------------- timing */

GORO_TEST(leak, clean_check_fast_with_1000_goroutines, .timeout = 60) {
    goro_chan *c = goro_chan_make(0, 0);
    for (int i = 0; i < 1000; i++)
        goro_go(blocked_top, c);
    wait_parked(GORO__WAIT_CHAN_RECV, 1000);
    int64_t best = INT64_MAX, worst = 0;
    for (int i = 0; i < 11; i++) {
        int64_t t0 = goro_nanotime();
        goro_leak_mark *m = goro_leak_mark_now();
        int n = goro_leak_check(m, NULL, stderr);
        int64_t d = goro_nanotime() - t0;
        goro_leak_mark_free(m);
        cr_assert_eq(n, 0);
        if (d < best)
            best = d;
        if (d > worst)
            worst = d;
    }
    fprintf(stderr,
            "leak-perf: mark+check, 1000 goroutines alive, nothing leaked: best %.3f ms, worst "
            "%.3f ms\n",
            best / 1e6, worst / 1e6);
    cr_assert_lt(best, GORO_MS(GORO_TEST_SANITIZED ? 50 : 5), "best %lld ns", (long long)best);
    /* The check alone against a mark taken earlier: the best of five, as
       above, since one run may lose its CPU on a loaded machine. */
    goro_leak_mark *m = goro_leak_mark_now();
    int64_t d = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = goro_nanotime();
        cr_assert_eq(goro_leak_check(m, NULL, stderr), 0);
        int64_t di = goro_nanotime() - t0;
        d = di < d ? di : d;
    }
    cr_assert_lt(d, GORO_MS(GORO_TEST_SANITIZED ? 50 : 5), "check %lld ns", (long long)d);
    goro_leak_mark_free(m);
    unblock(c);
}

GORO_TEST(leak, failing_check_returns_after_its_timeout, .timeout = 20) {
    goro_chan *c = start_blocked_g();
    goro_leak_opts o = {.timeout_ns = GORO_MS(200)};
    int64_t t0 = goro_nanotime();
    int n = goro_leak_verify_none(&o, NULL);
    int64_t d = goro_nanotime() - t0;
    cr_assert_eq(n, 1);
    cr_assert_geq(d, GORO_MS(200), "gave up early: %lld ns", (long long)d);
    cr_assert_lt(d, GORO_MS(GORO_TEST_SANITIZED ? 3000 : 1000), "gave up late: %lld ns",
                 (long long)d);
    goro_leak_mark *m = goro_leak_mark_now();
    goro_chan *c2 = start_blocked_g();
    t0 = goro_nanotime();
    n = goro_leak_check(m, &o, NULL);
    d = goro_nanotime() - t0;
    cr_assert_eq(n, 1);
    cr_assert_geq(d, GORO_MS(200));
    cr_assert_lt(d, GORO_MS(GORO_TEST_SANITIZED ? 3000 : 1000));
    goro_leak_mark_free(m);
    unblock(c);
    unblock(c2);
}

/* ------------------------------------- marks in goroutines and threads */

typedef struct {
    int from_mark, verify, after;
    goro_waitgroup wg;
} where_result;

static void check_from_goroutine(void *arg) {
    where_result *r = arg;
    goro_leak_mark *m = goro_leak_mark_now(); /* includes this goroutine */
    goro_chan *c = start_blocked_g();
    r->from_mark = goro_leak_check(m, &quick, NULL);
    r->verify = goro_leak_verify_none(&quick, NULL); /* not the caller, not goroutine 1 */
    unblock(c);
    r->after = goro_leak_check(m, NULL, stderr);
    goro_leak_mark_free(m);
    goro_waitgroup_done(&r->wg);
}

static void *check_from_thread(void *arg) {
    where_result *r = arg;
    goro_leak_mark *m = goro_leak_mark_now();
    goro_chan *c = start_blocked_g();
    r->from_mark = goro_leak_check(m, &quick, NULL);
    r->verify = goro_leak_verify_none(&quick, NULL); /* threads are never reported */
    unblock(c);
    r->after = goro_leak_check(m, NULL, stderr);
    goro_leak_mark_free(m);
    return NULL;
}

GORO_TEST(leak, marks_inside_goroutines_and_threads, .timeout = 30) {
    where_result r = {0};
    goro_waitgroup_add(&r.wg, 1);
    goro_go(check_from_goroutine, &r);
    goro_waitgroup_wait(&r.wg);
    cr_assert_eq(r.from_mark, 1);
    cr_assert_eq(r.verify, 1);
    cr_assert_eq(r.after, 0);
    wait_count(1);

    /* A plain thread, while goroutine 1 (this thread) and another plain
       thread are blocked in goro calls: no thread is ever reported. */
    goro_chan *c = goro_chan_make(0, 0);
    pthread_t blocked_thread;
    pthread_create(&blocked_thread, NULL, recv_on_thread, c);
    where_result rt = {0};
    pthread_t t;
    pthread_create(&t, NULL, check_from_thread, &rt);
    pthread_join(t, NULL);
    cr_assert_eq(rt.from_mark, 1);
    cr_assert_eq(rt.verify, 1);
    cr_assert_eq(rt.after, 0);
    goro_chan_close(c);
    pthread_join(blocked_thread, NULL);
    goro_chan_release(c);
}

GORO_TEST(leak, runtime_goroutines_never_reported, .timeout = 30) {
    int port = goro_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    cr_assert_eq(goro_leak_verify_none(&quick, stderr), 0);
    cr_assert_eq(leaked(), 0);
    goro_debug_stop();
}

/* ------------------------------------------------------ GOROLEAKCHECK=1 */

/* Runs fn in a child forked before this process uses the runtime, with
   GOROLEAKCHECK set to env (NULL: unset); returns the wait status and what
   the child wrote to stderr. */
static int run_child(void (*fn)(void), const char *env, char *out, size_t cap) {
    goro_test_skip_threaded_fork();
    goro_test_child_opts o = {.env_name = "GOROLEAKCHECK", .env_value = env, .exit_if_returns = 99};
    return goro_test_run_child_opts(&o, fn, out, cap); /* fn ends with exit() */
}

static bool print_before_exit;

static NOINLINE void leak_one_and_exit(void) {
    goro_chan *c = goro_chan_make(0, 0);
    goro_opts o = {.name = "forgotten"};
    goro_go_opts(&o, blocked_top, c);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    if (print_before_exit)
        printf("buffered output survives\n"); /* stdout is a pipe: fully buffered */
    exit(0);
}

static NOINLINE void clean_exit(void) {
    goro_chan *c = goro_chan_make(0, 0);
    goro_go(blocked_top, c);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    unblock(c);
    wait_count(1);
    exit(0);
}

GORO_TEST(leak, goroleakcheck_reports_at_exit, .timeout = 30) {
    char out[16384];
    int st = run_child(leak_one_and_exit, "1", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "status %#x, stderr:\n%s", st, out);
    cr_assert_not_null(strstr(out, " [chan receive]:\nblocked_top()\n"), "stderr:\n%s", out);
    cr_assert_eq(count_str(out, "\ngoroutine "), 1, "stderr:\n%s", out);
    cr_assert_not_null(strstr(out, "created by leak_one_and_exit in goroutine 1"), "stderr:\n%s",
                       out);
    cr_assert_null(strstr(out, "goroutine 1 ["), "the exiting thread is not listed:\n%s", out);

    st = run_child(clean_exit, "1", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr:\n%s", st, out);
    /* (sanitizers may print their own notes at exit) */
    cr_assert_null(strstr(out, "goroutine"), "nothing reported:\n%s", out);

    /* Without the variable nothing is checked. */
    st = run_child(leak_one_and_exit, NULL, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr:\n%s", st, out);
    cr_assert_null(strstr(out, "goroutine"), "%s", out);
    st = run_child(leak_one_and_exit, "0", out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x, stderr:\n%s", st, out);
}

/* Output the program buffered before exit() is not lost by the check. */
static int run_child_stdout(void (*fn)(void), char *out, size_t cap) {
    goro_test_skip_threaded_fork();
    goro_test_child_opts o = {.capture_fd = 1,
                              .stderr_to_devnull = true,
                              .env_name = "GOROLEAKCHECK",
                              .env_value = "1",
                              .exit_if_returns = 99};
    return goro_test_run_child_opts(&o, fn, out, cap);
}

GORO_TEST(leak, goroleakcheck_keeps_buffered_output, .timeout = 30) {
    char out[4096];
    print_before_exit = true;
    int st = run_child_stdout(leak_one_and_exit, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "status %#x", st);
    cr_assert_str_eq(out, "buffered output survives\n");
}

/* =====================================================================
 * suite leakprof: provably leaked goroutines
 * ===================================================================== */

/* ----------------------------------------- soundness: never reported */

static goro_chan *global_ch;

GORO_TEST(leakprof, reference_kept_by_global_never_leaked, .timeout = 30) {
    global_ch = goro_chan_make(sizeof(int), 0);
    go_holding(recv_on, global_ch, global_ch, NULL, NULL);
    go_holding(send_on, global_ch, global_ch, NULL, NULL); /* they meet; then: */
    go_holding(recv_on, global_ch, global_ch, NULL, NULL);
    wait_count(2);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    assert_none_leaked("receiver on a channel a global references");
    /* Not vacuous: drop the global's reference and it is proven leaked. */
    goro_chan *raw = global_ch;
    global_ch = NULL;
    goro_chan_release(raw);
    cr_assert_eq(leaked(), 1);
    cheat_close(raw);
}

/* A plain thread holds the only unknown reference (goro_chan_make's) and is
   itself blocked in goro_chan_recv on another channel. */
typedef struct {
    goro_chan *c, *go;
} thread_ref;

static void *thread_with_ref(void *arg) {
    thread_ref *t = arg;
    goro_chan_recv(t->go, NULL);
    int v = 7;
    goro_chan_send(t->c, &v);
    goro_chan_release(t->c);
    return NULL;
}

GORO_TEST(leakprof, reference_kept_by_plain_thread_never_leaked, .timeout = 30) {
    thread_ref t = {goro_chan_make(sizeof(int), 0), goro_chan_make(0, 0)};
    go_holding(recv_on, t.c, t.c, NULL, NULL);
    pthread_t th;
    pthread_create(&th, NULL, thread_with_ref, &t); /* t.c's reference is the thread's now */
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    assert_none_leaked("receiver whose channel a plain thread references");
    goro_chan_send(t.go, NULL);
    pthread_join(th, NULL);
    goro_chan_release(t.go);
}

/* A running goroutine (busy, yielding) holds the channel. */
typedef struct {
    goro_chan *c;
    _Atomic int go;
} runner_arg;

static void busy_holder(void *arg) {
    runner_arg *r = arg;
    while (!atomic_load(&r->go))
        goro_yield();
    int v = 1;
    goro_chan_send(r->c, &v);
}

GORO_TEST(leakprof, reference_held_by_running_goroutine_never_leaked, .timeout = 30) {
    goro_maxprocs(2);
    static runner_arg r;
    r.c = goro_chan_make(sizeof(int), 0);
    atomic_store(&r.go, 0);
    go_holding(recv_on, r.c, r.c, NULL, NULL);
    go_holding(busy_holder, &r, r.c, NULL, NULL);
    goro_chan_release(r.c); /* only the two goroutines hold it */
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    assert_none_leaked("receiver whose channel a running goroutine holds");
    atomic_store(&r.go, 1);
    wait_count(1);
}

/* A goroutine asleep (with a timeout) holds the channel: in goro_sleep, and
   in a timed receive on a channel only it holds. */
static void sleepy_holder(void *arg) {
    runner_arg *r = arg;
    while (!atomic_load(&r->go))
        goro_sleep(GORO_MS(5));
    int v = 1;
    goro_chan_send(r->c, &v);
}

typedef struct {
    goro_chan *c, *mine;
    _Atomic int go;
} timed_holder_arg;

static void timed_holder(void *arg) {
    timed_holder_arg *t = arg;
    bool ok;
    while (!atomic_load(&t->go))
        goro_chan_recv_timeout(t->mine, NULL, &ok, GORO_MS(20));
    int v = 1;
    goro_chan_send(t->c, &v);
}

/* A receiver on r->c, whose only other holder is a goroutine asleep with a
   timeout (it sends once r->go is set): the receiver can still be woken. */
static void start_receiver_and_sleepy_holder(runner_arg *r) {
    r->c = goro_chan_make(sizeof(int), 0);
    atomic_store(&r->go, 0);
    go_holding(recv_on, r->c, r->c, NULL, NULL);
    go_holding(sleepy_holder, r, r->c, NULL, NULL);
    goro_chan_release(r->c);
}

GORO_TEST(leakprof, reference_held_by_sleeping_goroutine_never_leaked, .timeout = 30) {
    static runner_arg r;
    start_receiver_and_sleepy_holder(&r);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    wait_parked(GORO__WAIT_SLEEP, 1);
    assert_none_leaked("receiver whose channel a sleeping goroutine holds");
    atomic_store(&r.go, 1);
    wait_count(1);

    static timed_holder_arg t;
    t.c = goro_chan_make(sizeof(int), 0);
    t.mine = goro_chan_make(0, 0);
    go_holding(recv_on, t.c, t.c, NULL, NULL);
    go_holding(timed_holder, &t, t.c, t.mine, NULL);
    goro_chan_release(t.c);
    goro_chan_release(t.mine);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    wait_parked(GORO__WAIT_SELECT, 1); /* a timed receive shows as select */
    assert_none_leaked("receiver whose channel a goroutine in a timed receive holds");
    atomic_store(&t.go, 1);
    wait_count(1);
}

/* A chain: link i waits on c[i], which link i and link i+1 hold; the last
   link sleeps (it can run) and holds c[n-2]. When it sends, the chain
   unwinds. Created first to last, so the analysis must peel one link per
   round to find that every one of them can be woken. */
#define CHAIN 200
typedef struct {
    goro_chan *wait_on, *wake;
    _Atomic int *go;
} link_arg;

static void chain_link(void *arg) {
    link_arg *l = arg;
    if (l->wait_on)
        goro_chan_recv(l->wait_on, NULL);
    else
        while (!atomic_load(l->go))
            goro_sleep(GORO_MS(2));
    if (l->wake)
        goro_chan_send(l->wake, NULL);
}

GORO_TEST(leakprof, chain_whose_last_goroutine_can_run_never_leaked, .timeout = 60) {
    static goro_chan *c[CHAIN];
    static link_arg links[CHAIN];
    static _Atomic int go;
    atomic_store(&go, 0);
    for (int i = 0; i < CHAIN - 1; i++)
        c[i] = goro_chan_make(0, 0);
    for (int i = 0; i < CHAIN; i++) {
        links[i].wait_on = i < CHAIN - 1 ? c[i] : NULL;
        links[i].wake = i > 0 ? c[i - 1] : NULL;
        links[i].go = &go;
        go_holding(chain_link, &links[i], links[i].wait_on, links[i].wake, NULL);
    }
    for (int i = 0; i < CHAIN - 1; i++)
        goro_chan_release(c[i]);
    wait_parked(GORO__WAIT_CHAN_RECV, CHAIN - 1);
    assert_none_leaked("a chain whose last goroutine sleeps");
    atomic_store(&go, 1);
    wait_count(1);
}

/* Timed waits are never leaked, even on channels nobody else can reach. */
static void timed_recv(void *arg) {
    bool ok;
    goro_chan_recv_timeout(arg, NULL, &ok, GORO_SEC(60));
}

static void timed_send(void *arg) {
    int v = 1;
    goro_chan_send_timeout(arg, &v, GORO_SEC(60));
}

static void timed_select(void *arg) {
    goro_chan **cs = arg;
    goro_case k[3] = {{cs[0], GORO_RECV, NULL, false},
                      {cs[1], GORO_RECV, NULL, false},
                      {NULL, GORO_RECV, NULL, false}};
    goro_select(k, 3, GORO_SEC(60));
}

static void timed_null(void *arg) {
    (void)arg;
    bool ok;
    goro_chan_recv_timeout(NULL, NULL, &ok, GORO_MS(300));
}

GORO_TEST(leakprof, timed_waits_never_leaked, .timeout = 30) {
    goro_chan *r = goro_chan_make(0, 0), *s = goro_chan_make(sizeof(int), 0);
    static goro_chan *sel[2];
    sel[0] = goro_chan_make(0, 0);
    sel[1] = goro_chan_make(0, 0);
    go_holding(timed_recv, r, r, NULL, NULL);
    go_holding(timed_send, s, s, NULL, NULL);
    go_holding(timed_select, sel, sel[0], sel[1], NULL);
    goro_go(timed_null, NULL);
    goro_chan *raw[4] = {r, s, sel[0], sel[1]};
    for (int i = 0; i < 4; i++)
        goro_chan_release(raw[i]);
    wait_parked(GORO__WAIT_SELECT, 4);
    assert_none_leaked("timed waits");
    cheat_close(r);
    cheat_recv(s, 1);
    cheat_close(sel[1]);
    wait_count(1);
}

/* Sync, sleep, I/O and context waits are never leaked. */
static goro_mutex held_mu;
static goro_rwmutex held_rw;
static goro_waitgroup held_wg;
static goro_cond held_cond;
static goro_mutex cond_mu;
static goro_sem held_sem;
static _Atomic int cond_go;
static int io_pipe[2];

static void lock_mu(void *a) {
    (void)a;
    goro_mutex_lock(&held_mu);
    goro_mutex_unlock(&held_mu);
}
static void rlock_rw(void *a) {
    (void)a;
    goro_rwmutex_rlock(&held_rw);
    goro_rwmutex_runlock(&held_rw);
}
static void wait_wg(void *a) {
    (void)a;
    goro_waitgroup_wait(&held_wg);
}
static void wait_cond(void *a) {
    (void)a;
    goro_mutex_lock(&cond_mu);
    while (!atomic_load(&cond_go))
        goro_cond_wait(&held_cond, &cond_mu);
    goro_mutex_unlock(&cond_mu);
}
static void acquire_sem(void *a) {
    (void)a;
    goro_sem_acquire(&held_sem, 1);
    goro_sem_release(&held_sem, 1);
}
static goro_waitgroup reader_wg;
static void read_pipe(void *a) {
    (void)a;
    char ch;
    goro_read(io_pipe[0], &ch, 1, GORO_FOREVER);
    goro_waitgroup_done(&reader_wg);
}
static void wait_done(void *a) {
    goro_chan_recv(goro_ctx_done(a), NULL);
    NOTAIL();
}
static void long_sleep(void *a) {
    (void)a;
    goro_sleep(GORO_MS(400));
}

GORO_TEST(leakprof, sync_sleep_io_ctx_waits_never_leaked, .timeout = 30) {
    goro_mutex_lock(&held_mu);
    goro_rwmutex_lock(&held_rw);
    goro_waitgroup_add(&held_wg, 1);
    goro_sem_init(&held_sem, 1);
    goro_sem_acquire(&held_sem, 1);
    cr_assert_eq(pipe(io_pipe), 0);
    goro_ctx *ctx = goro_ctx_with_cancel(goro_ctx_background());
    goro_go(lock_mu, NULL);
    goro_go(rlock_rw, NULL);
    goro_go(wait_wg, NULL);
    goro_go(wait_cond, NULL);
    goro_go(acquire_sem, NULL);
    goro_waitgroup_add(&reader_wg, 1);
    goro_go(read_pipe, NULL);
    goro_go(wait_done, ctx);
    goro_go(long_sleep, NULL);
    wait_parked(GORO__WAIT_MUTEX, 1);
    wait_parked(GORO__WAIT_RWMUTEX_R, 1);
    wait_parked(GORO__WAIT_WAITGROUP, 1);
    wait_parked(GORO__WAIT_COND, 1);
    wait_parked(GORO__WAIT_SEMACQUIRE, 1);
    wait_parked(GORO__WAIT_IO, 1);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    wait_parked(GORO__WAIT_SLEEP, 1);
    assert_none_leaked("sync, sleep, I/O and context waits");
    goro_mutex_unlock(&held_mu);
    goro_rwmutex_unlock(&held_rw);
    goro_waitgroup_done(&held_wg);
    goro_mutex_lock(&cond_mu);
    atomic_store(&cond_go, 1);
    goro_cond_broadcast(&held_cond);
    goro_mutex_unlock(&cond_mu);
    goro_sem_release(&held_sem, 1);
    cr_assert_eq(write(io_pipe[1], "x", 1), 1);
    goro_ctx_cancel(ctx);
    goro_waitgroup_wait(&reader_wg); /* (wait_count gives TSan no happens-before) */
    wait_count(1);
    goro_ctx_release(ctx);
    close(io_pipe[0]);
    close(io_pipe[1]);
}

/* A select is leaked only if every one of its channels is unreachable. */
static void select_on(void *arg) {
    goro_chan **cs = arg;
    goro_case k[3] = {{cs[0], GORO_RECV, NULL, false},
                      {cs[1], GORO_RECV, NULL, false},
                      {cs[2], GORO_SEND, &(int){1}, false}};
    goro_select(k, 3, GORO_FOREVER);
    NOTAIL();
}

GORO_TEST(leakprof, select_with_one_reachable_channel_never_leaked, .timeout = 30) {
    static goro_chan *cs[3];
    cs[0] = goro_chan_make(0, 0);
    cs[1] = goro_chan_make(0, 0);
    cs[2] = goro_chan_make(sizeof(int), 0);
    go_holding(select_on, cs, cs[0], cs[1], cs[2]);
    goro_chan_release(cs[0]);
    goro_chan_release(cs[2]); /* cs[1] is still ours */
    wait_parked(GORO__WAIT_SELECT, 1);
    assert_none_leaked("select with one channel still referenced");
    goro_chan *raw = cs[1];
    goro_chan_release(cs[1]);
    cr_assert_eq(leaked(), 1, "every channel abandoned now");
    cheat_close(raw);
    wait_count(1);
}

/* A cycle that someone outside can still enter is not leaked. */
#define RING 8
typedef struct {
    goro_chan *mine, *next;
} ring_arg;

/* Receives a hop count and passes it on while it is above 1. */
static void ring_member(void *arg) {
    ring_arg *r = arg;
    int hops = 0;
    goro_chan_recv(r->mine, &hops);
    if (hops > 1) {
        hops--;
        goro_chan_send(r->next, &hops);
    }
}

/* The test's cheat: enters the ring through a channel only it can reach. */
static void cheat_enter_ring(goro_chan *raw, int hops) {
    goro_chan_retain(raw);
    goro_chan_send(raw, &hops);
    goro_chan_release(raw);
}

static void make_ring(goro_chan **c, ring_arg *args, int n) {
    for (int i = 0; i < n; i++)
        c[i] = goro_chan_make(sizeof(int), 0);
    for (int i = 0; i < n; i++) {
        args[i].mine = c[i];
        args[i].next = c[(i + 1) % n];
        go_holding(ring_member, &args[i], c[i], c[(i + 1) % n], NULL);
    }
}

GORO_TEST(leakprof, cycle_with_an_outside_reference_never_leaked, .timeout = 30) {
    static goro_chan *c[RING];
    static ring_arg args[RING];
    make_ring(c, args, RING);
    for (int i = 0; i < RING; i++)
        if (i != 3)
            goro_chan_release(c[i]);
    wait_parked(GORO__WAIT_CHAN_RECV, RING);
    assert_none_leaked("a ring one of whose channels the test still references");
    goro_chan *raw = c[3];
    goro_chan_release(c[3]);
    cr_assert_eq(leaked(), RING, "without it, the whole ring");
    cheat_enter_ring(raw, RING);
    wait_count(1);
}

/* The race: goroutines that pass values back and forth over channels only
   they hold are, at every instant, at most one step away from running.
   However the profile's reads interleave with their waits and wake-ups, it
   must never list one of them. */
#define PAIRS 24
#define ROUNDS 3000
typedef struct {
    goro_chan *ab, *ba;
    goro_chan *buf; /* buffered, cap 1 */
    int rounds;
} pair_arg;

/* The pairs play at least `rounds` rounds and until the test has taken
   enough profiles (however fast or slow the build). */
static _Atomic bool racing_stop;

static void ping(void *arg) {
    pair_arg *p = arg;
    for (int i = 0;; i++) {
        if (i >= p->rounds && atomic_load(&racing_stop)) {
            int end = -1;
            goro_chan_send(p->ab, &end);
            return;
        }
        goro_chan_send(p->ab, &i);
        goro_chan_recv(p->ba, NULL);
        goro_chan_send(p->buf, &i);
        if (i % 7 == 0)
            goro_yield();
    }
}

static void pong(void *arg) {
    pair_arg *p = arg;
    int v;
    for (;;) {
        goro_case k[1] = {{p->ab, GORO_RECV, &v, false}};
        goro_select(k, 1, GORO_FOREVER);
        if (v < 0)
            return;
        goro_chan_send(p->ba, &v);
        goro_chan_recv(p->buf, &v);
    }
}

/* Hands the channel over to a new goroutine before ending: the holder set
   changes while the receiver waits. */
typedef struct {
    goro_chan *c;
    int left;
} relay_arg;

static void relay(void *arg) {
    relay_arg *r = arg;
    int v = r->left;
    goro_chan_send(r->c, &v);
    if (--r->left > 0)
        go_holding(relay, r, r->c, NULL, NULL);
}

static void relay_sink(void *arg) {
    relay_arg *r = arg;
    int v;
    do
        goro_chan_recv(r->c, &v);
    while (v > 1);
}

GORO_TEST(leakprof, goroutines_racing_through_waits_never_listed, .timeout = 120) {
    goro_maxprocs(2);
    static pair_arg pairs[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        pairs[i].ab = goro_chan_make(sizeof(int), 0);
        pairs[i].ba = goro_chan_make(sizeof(int), 0);
        pairs[i].buf = goro_chan_make(sizeof(int), 1);
        pairs[i].rounds = GORO_TEST_SANITIZED ? ROUNDS / 10 : ROUNDS;
        go_holding(ping, &pairs[i], pairs[i].ab, pairs[i].ba, pairs[i].buf);
        go_holding(pong, &pairs[i], pairs[i].ab, pairs[i].ba, pairs[i].buf);
        goro_chan_release(pairs[i].ab);
        goro_chan_release(pairs[i].ba);
        goro_chan_release(pairs[i].buf);
    }
    static relay_arg relays[4];
    for (int i = 0; i < 4; i++) {
        relays[i].c = goro_chan_make(sizeof(int), 0);
        relays[i].left = GORO_TEST_SANITIZED ? 300 : 3000;
        go_holding(relay_sink, &relays[i], relays[i].c, NULL, NULL);
        go_holding(relay, &relays[i], relays[i].c, NULL, NULL);
        goro_chan_release(relays[i].c);
    }
    int runs = 0;
    while (goro_count() > 1) {
        int n = leaked();
        if (++runs == 20)
            atomic_store(&racing_stop, true);
        if (n != 0) {
            char *d2 = capture(goro_leak_profile_write, 2, NULL);
            cr_assert_eq(n, 0, "run %d listed %d goroutines:\n%s", runs, n, d2);
        }
    }
    fprintf(stderr,
            "leak-perf: %d profile runs raced %d ping-pong pairs and 4 relays: none listed\n", runs,
            PAIRS);
    cr_assert_geq(runs, 20);
}

/* ---------------------------------------------- the classic leaks */

GORO_TEST(leakprof, three_senders_early_return, .timeout = 30) {
    goro_chan *raw;
    cr_assert_eq(query_all(&raw), 42);
    wait_count(3);
    wait_parked(GORO__WAIT_CHAN_SEND, 2);
    cr_assert_eq(leaked(), 2);
    int n;
    char *d1 = capture(goro_leak_profile_write, 1, &n);
    cr_assert_eq(n, 2);
    cr_assert(strncmp(d1, "goroutineleak profile: total 2\n2 @ 0x", 37) == 0, "debug=1:\n%s", d1);
    cr_assert_not_null(strstr(d1, "\n# labels: {\"name\":\"query\"}\n#\t0x"), "debug=1:\n%s", d1);
    cr_assert_not_null(strstr(d1, "\tquery_sender+0x"), "debug=1:\n%s", d1);
    cr_assert_eq(count_str(d1, " @ "), 1, "one group of two:\n%s", d1);
    free(d1);
    char *d2 = capture(goro_leak_profile_write, 2, &n);
    cr_assert_eq(n, 2);
    cr_assert(strncmp(d2, "goroutine 1 [running]:\n", 23) == 0, "the caller, not leaked:\n%s", d2);
    cr_assert_eq(count_str(d2, " [chan send (leaked)]:\nquery_sender()\n"), 2, "debug=2:\n%s", d2);
    cr_assert_eq(count_str(d2, "(leaked)"), 2, "debug=2:\n%s", d2);
    free(d2);
    /* debug=0 is the gzipped proto, like the goroutine profile */
    char *d0 = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&d0, &len);
    cr_assert_eq(goro_leak_profile_write(f, 0), 2);
    fclose(f);
    cr_assert_gt(len, 20);
    cr_assert_eq((unsigned char)d0[0], 0x1f);
    cr_assert_eq((unsigned char)d0[1], 0x8b);
    free(d0);
    /* The plain goroutine profile still lists them without the suffix. */
    char *g2 = capture(goro_profile_write, 2, NULL);
    cr_assert_eq(count_str(g2, " [chan send]:\nquery_sender()\n"), 2, "%s", g2);
    cr_assert_null(strstr(g2, "(leaked)"));
    free(g2);
    cheat_recv(raw, 2);
    wait_count(1);
    cr_assert_eq(leaked(), 0, "recomputed on every call");
}

GORO_TEST(leakprof, receiver_on_channel_nobody_else_holds, .timeout = 30) {
    goro_chan *c = goro_chan_make(0, 0);
    go_holding(recv_on, c, c, NULL, NULL);
    goro_chan_release(c);
    wait_parked(GORO__WAIT_CHAN_RECV, 1);
    cr_assert_eq(leaked(), 1);
    char *d2 = capture(goro_leak_profile_write, 2, NULL);
    cr_assert_not_null(strstr(d2, " [chan receive (leaked)]:\nrecv_on()\n"), "%s", d2);
    free(d2);
    /* Buffered, and a sender on a full buffer, the same. */
    goro_chan *b = goro_chan_make(sizeof(int), 1);
    int v = 1;
    goro_chan_send(b, &v);
    go_holding(send_on, b, b, NULL, NULL);
    goro_chan_release(b);
    wait_parked(GORO__WAIT_CHAN_SEND, 1);
    cr_assert_eq(leaked(), 2);
    cheat_close(c);
    cheat_recv(b, 2);
    wait_count(1);
}

GORO_TEST(leakprof, select_whose_every_channel_is_abandoned, .timeout = 30) {
    static goro_chan *cs[3];
    cs[0] = goro_chan_make(0, 0);
    cs[1] = goro_chan_make(0, 0);
    cs[2] = goro_chan_make(sizeof(int), 0);
    go_holding(select_on, cs, cs[0], cs[1], cs[2]);
    for (int i = 0; i < 3; i++)
        goro_chan_release(cs[i]);
    wait_parked(GORO__WAIT_SELECT, 1);
    cr_assert_eq(leaked(), 1);
    char *d2 = capture(goro_leak_profile_write, 2, NULL);
    cr_assert_not_null(strstr(d2, " [select (leaked)]:\nselect_on()\n"), "%s", d2);
    free(d2);
    cheat_close(cs[1]);
    wait_count(1);
}

GORO_TEST(leakprof, cycle_of_goroutines_all_leaked, .timeout = 30) {
    static goro_chan *c[RING];
    static ring_arg args[RING];
    make_ring(c, args, RING);
    for (int i = 0; i < RING; i++)
        goro_chan_release(c[i]);
    wait_parked(GORO__WAIT_CHAN_RECV, RING);
    cr_assert_eq(leaked(), RING);
    char *d2 = capture(goro_leak_profile_write, 2, NULL);
    cr_assert_eq(count_str(d2, " [chan receive (leaked)]:\nring_member()\n"), RING, "%s", d2);
    free(d2);
    /* A cycle of two waiting on each other in opposite directions. */
    goro_chan *x = goro_chan_make(0, 0), *y = goro_chan_make(0, 0);
    go_holding(send_on, x, x, y, NULL);
    go_holding(send_on, y, x, y, NULL);
    goro_chan_release(x);
    goro_chan_release(y);
    wait_parked(GORO__WAIT_CHAN_SEND, 2);
    cr_assert_eq(leaked(), RING + 2);
    cheat_enter_ring(c[0], RING);
    cheat_recv(x, 1);
    cheat_recv(y, 1);
    wait_count(1);
}

/* Goroutines blocked on what only leaked goroutines hold are leaked too,
   and in a mixed population exactly the leaked ones are counted. */
static void nil_recv(void *arg) {
    (void)arg;
    goro_chan_recv(NULL, NULL);
    NOTAIL();
}

static void nil_send(void *arg) {
    (void)arg;
    int v = 1;
    goro_chan_send(NULL, &v);
    NOTAIL();
}

static void empty_select(void *arg) {
    (void)arg;
    goro_select(NULL, 0, GORO_FOREVER);
    NOTAIL();
}

static void null_cases_select(void *arg) {
    (void)arg;
    goro_case k[2] = {{NULL, GORO_RECV, NULL, false}, {NULL, GORO_SEND, &(int){1}, false}};
    goro_select(k, 2, GORO_FOREVER);
    NOTAIL();
}

GORO_TEST_UNCHECKED(leakprof, null_channels_and_empty_select,
                    "goroutines blocked on a NULL channel or in an empty select can never be woken",
                    .timeout = 30) {
    goro_go(nil_recv, NULL);
    goro_go(nil_send, NULL);
    goro_go(empty_select, NULL);
    goro_go(null_cases_select, NULL);
    wait_parked(-1, 4);
    cr_assert_eq(leaked(), 4);
    char *d2 = capture(goro_leak_profile_write, 2, NULL);
    cr_assert_not_null(strstr(d2, " [chan receive (nil chan) (leaked)]:\nnil_recv()\n"), "%s", d2);
    cr_assert_not_null(strstr(d2, " [chan send (nil chan) (leaked)]:\nnil_send()\n"), "%s", d2);
    cr_assert_not_null(strstr(d2, " [select (no cases) (leaked)]:\nempty_select()\n"), "%s", d2);
    cr_assert_not_null(strstr(d2, " [select (leaked)]:\nnull_cases_select()\n"), "%s", d2);
    free(d2);
    /* A goroutine waiting on a channel held only by one of those is leaked
       too; one held also by a sleeping goroutine is not. */
    goro_chan *c = goro_chan_make(0, 0);
    go_holding(recv_on, c, c, NULL, NULL);
    go_holding(nil_recv, NULL, c, NULL, NULL);
    goro_chan_release(c);
    static runner_arg r;
    start_receiver_and_sleepy_holder(&r);
    wait_parked(GORO__WAIT_CHAN_RECV_NIL, 2);
    wait_parked(GORO__WAIT_CHAN_RECV, 2);
    cr_assert_eq(leaked(), 6);
    /* The main thread itself is never a candidate. */
    cr_assert_eq(goro_leak_verify_none(&quick, NULL), 8);
    atomic_store(&r.go, 1);
    wait_count(7);
    cr_assert_eq(leaked(), 6);
}

/* ------------------------------------------------------ at scale */

typedef struct {
    _Atomic int stop;
    _Atomic int64_t max_gap;
    _Atomic int64_t spins;
} spin_state;

static void spinner(void *arg) {
    spin_state *s = arg;
    int64_t last = goro_nanotime();
    while (!atomic_load(&s->stop)) {
        goro_yield();
        int64_t now = goro_nanotime();
        if (now - last > atomic_load(&s->max_gap))
            atomic_store(&s->max_gap, now - last);
        last = now;
        atomic_fetch_add(&s->spins, 1);
    }
}

typedef struct {
    int debug;
    FILE *f;
    int n;
    int64_t took;
    goro_waitgroup wg;
} prof_job;

static void profile_in_goroutine(void *arg) {
    prof_job *j = arg;
    int64_t t0 = goro_nanotime();
    j->n = goro_leak_profile_write(j->f, j->debug);
    j->took = goro_nanotime() - t0;
    goro_waitgroup_done(&j->wg);
}

static void *profile_on_thread(void *arg) {
    profile_in_goroutine(arg);
    return NULL;
}

/* Runs one profile (on a plain thread, or in a goroutine) while a goroutine
   spins; returns the time, the spinner's longest gap and the count. */
static void timed_profile(const char *what, bool in_goroutine, int debug, FILE *f, int want,
                          spin_state *s, int64_t *took_out, int64_t *gap_out) {
    /* let the spinner settle, then reset its gap */
    goro_sleep(GORO_MS(20));
    atomic_store(&s->max_gap, 0);
    int64_t spins0 = atomic_load(&s->spins);
    int n;
    int64_t took;
    prof_job j = {.debug = debug, .f = f};
    goro_waitgroup_add(&j.wg, 1);
    if (in_goroutine) {
        goro_go(profile_in_goroutine, &j);
    } else {
        /* A plain thread of the program's own. (Not this body: it is
           goroutine 1, whose P the spinner could be queued behind for the
           10-20 ms the monitor takes to move it, longer than a profile.) */
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, profile_on_thread, &j), 0);
        pthread_detach(t);
    }
    goro_waitgroup_wait(&j.wg);
    n = j.n;
    took = j.took;
    int64_t gap = atomic_load(&s->max_gap);
    cr_assert_eq(n, want, "%s", what);
    cr_assert_gt(atomic_load(&s->spins), spins0, "the spinner ran during %s", what);
    fprintf(stderr, "leak-perf: %-44s %9.2f ms, spinner's longest pause %7.3f ms\n", what,
            took / 1e6, gap / 1e6);
    *took_out = took;
    *gap_out = gap;
}

GORO_TEST(leakprof, profile_over_100000_goroutines, .timeout = 180) {
    /* Under TSan every goroutine is a fiber: at most 8128 of them. */
    const int total = GORO_TEST_TSAN ? 5000 : GORO_TEST_SANITIZED ? 10000 : 100000;
    const int nleak = 1000;
    goro_maxprocs(2);
    goro_chan *pub = goro_chan_make(0, 0); /* referenced by the test: not leaked */
    static goro_chan *mine[1000];
    for (int i = 0; i < total - nleak; i++)
        cr_assert_neq(goro_go(recv_on, pub), 0);
    for (int i = 0; i < nleak; i++) {
        mine[i] = goro_chan_make(0, 0);
        go_holding(recv_on, mine[i], mine[i], NULL, NULL);
        goro_chan_release(mine[i]);
    }
    wait_parked(GORO__WAIT_CHAN_RECV, total);
    static spin_state s;
    atomic_store(&s.stop, 0);
    goro_go(spinner, &s);
    /* Baseline: the spinner's longest pause with nothing else running (what
       the OS and the other P's idle loop cost on this machine). */
    goro_sleep(GORO_MS(20));
    atomic_store(&s.max_gap, 0);
    goro_sleep(GORO_MS(300));
    fprintf(stderr, "leak-perf: %-44s %9s    spinner's longest pause %7.3f ms\n",
            "baseline, 300 ms without a profile", "", atomic_load(&s.max_gap) / 1e6);
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_not_null(devnull);
    char what[96];
    int64_t took, gap, worst_took = 0, worst_gap = 0;
    struct {
        bool in_g;
        int debug;
        FILE *f;
    } runs[] = {{false, 1, NULL},   {false, 1, NULL},    {false, 1, devnull}, {true, 1, NULL},
                {true, 1, devnull}, {false, 0, devnull}, {false, 2, devnull}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(what, sizeof what, "%d goroutines, %s, debug=%d%s", total,
                 runs[i].in_g ? "from a goroutine" : "from a thread", runs[i].debug,
                 runs[i].f ? " to /dev/null" : ", count only");
        timed_profile(what, runs[i].in_g, runs[i].debug, runs[i].f, nleak, &s, &took, &gap);
        if (!runs[i].f && took > worst_took)
            worst_took = took;
        if (gap > worst_gap)
            worst_gap = gap;
    }
    fclose(devnull);
    /* Generous bounds: the numbers go to docs/performance.md. */
    cr_assert_lt(worst_took, GORO_SEC(GORO_TEST_SANITIZED ? 60 : 10), "analysis took %lld ns",
                 (long long)worst_took);
    cr_assert_lt(worst_gap, GORO_SEC(GORO_TEST_SANITIZED ? 30 : 2),
                 "a spinning goroutine paused %lld ns", (long long)worst_gap);
    atomic_store(&s.stop, 1);
    goro_chan_close(pub);
    goro_chan_release(pub);
    for (int i = 0; i < nleak; i++)
        cheat_close(mine[i]);
    wait_count(1);
}
