/*
 * test_formats.c - Go's goroutine-profile formats, byte for byte: debug=2
 * blocks (frames, inlined frames, elision, created by, wait minutes),
 * debug=1 groups (counts, order, labels, tabwriter columns), debug=0 read
 * by `go tool pprof`, and debug=2 read by panicparse.
 *
 * Expected texts are literal; PCs and offsets are masked (every 0x... becomes
 * 0x?) and this file's directory is cut from paths. Line numbers are exact:
 * each one is taken from an enum placed right above the line it names.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goro.h"
#include "observe/observe.h"
#include "observe/tabwriter.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* ------------------------------------------------------------ helpers */

/* Masks PCs and offsets (0x... -> 0x?) and this file's directory. */
static char *fmt_mask(const char *s) {
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    size_t dirlen = slash ? (size_t)(slash - file) + 1 : 0;
    char *out = malloc(strlen(s) + 1);
    cr_assert(out);
    size_t o = 0;
    for (const char *p = s; *p;) {
        if (dirlen && strncmp(p, file, dirlen) == 0) {
            p += dirlen;
            continue;
        }
        if (p[0] == '0' && p[1] == 'x' && strchr("0123456789abcdef", p[2]) && p[2]) {
            out[o++] = '0';
            out[o++] = 'x';
            out[o++] = '?';
            p += 2;
            while (*p && strchr("0123456789abcdef", *p))
                p++;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    return out;
}

/* The whole profile of one debug level, as a malloc'ed string. */
static char *fmt_profile(int debug, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_assert(f);
    cr_assert_eq(goro_profile_write(f, debug), 0);
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

/* The debug=2 block of goroutine id (without the separating blank line). */
static char *fmt_block(const char *dump, uint64_t id) {
    char head[64];
    snprintf(head, sizeof head, "goroutine %llu [", (unsigned long long)id);
    const char *p = dump;
    while ((p = strstr(p, head)) != NULL) {
        if (p == dump || p[-1] == '\n')
            break;
        p++;
    }
    if (!p)
        return NULL;
    const char *end = strstr(p, "\n\n");
    size_t n = end ? (size_t)(end - p) + 1 : strlen(p);
    char *b = malloc(n + 1);
    memcpy(b, p, n);
    b[n] = 0;
    return b;
}

/* Takes a fresh debug=2 dump, keeps goroutine id's block of it in *b
   (freeing the last one): does the block start with want? */
static bool fmt_block_starts(char **b, uint64_t id, const char *want) {
    free(*b);
    char *d = fmt_profile(2, NULL);
    *b = fmt_block(d, id);
    free(d);
    return *b && strncmp(*b, want, strlen(want)) == 0;
}

/* Does a fresh debug=1 profile hold needle? */
static bool fmt_profile_has(const char *needle) {
    char *p = fmt_profile(1, NULL);
    bool has = strstr(p, needle) != NULL;
    free(p);
    return has;
}

/* Waits until goroutine id shows `state` in a debug=2 dump. */
static char *fmt_wait_state(uint64_t id, const char *state) {
    char want[96];
    snprintf(want, sizeof want, "goroutine %llu [%s", (unsigned long long)id, state);
    char *b = NULL;
    if (goro_test_wait_until(fmt_block_starts(&b, id, want), GORO_SEC(5)))
        return b;
    free(b);
    cr_assert_fail("goroutine %llu never reached [%s", (unsigned long long)id, state);
    return NULL;
}

static const char *fmt_base(void) {
    const char *s = strrchr(__FILE__, '/');
    return s ? s + 1 : __FILE__;
}

/* ------------------------------------------------------------ debug=2 */

enum { L_FMT_SEND = __LINE__ + 3 };
static GORO__NOINLINE void fmt_sender(void *arg) {
    int v = 1;
    goro_chan_send(arg, &v);
}

enum { L_FMT_SPAWN = __LINE__ + 2 };
static GORO__NOINLINE uint64_t fmt_spawn(goro_chan *c) {
    uint64_t id = goro_go(fmt_sender, c);
    __asm__ volatile("" ::: "memory"); /* no tail call: goro_go's return address stays here */
    return id;
}

GORO_TEST(formats, debug2_block_of_a_parked_sender, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = fmt_spawn(c);
    char *b = fmt_wait_state(id, "chan send]");
    char *m = fmt_mask(b);
    char want[512];
    snprintf(want, sizeof want,
             "goroutine %llu [chan send]:\n"
             "fmt_sender()\n"
             "\t%s:%d +0x?\n"
             "created by fmt_spawn in goroutine 1\n"
             "\t%s:%d +0x?\n",
             (unsigned long long)id, fmt_base(), L_FMT_SEND, fmt_base(), L_FMT_SPAWN);
    cr_assert_str_eq(m, want);
    free(m);
    free(b);
    /* The caller comes first, [running], with no "created by" (goroutine 1). */
    char *d = fmt_profile(2, NULL);
    cr_assert(strncmp(d, "goroutine 1 [running]:\n", 23) == 0, "%s", d);
    cr_assert(strstr(d, "\n\ngoroutine ") != NULL);
    cr_assert(d[strlen(d) - 1] == '\n' && d[strlen(d) - 2] != '\n', "no blank line at the end");
    free(d);
    int v;
    goro_chan_recv(c, &v);
    goro_chan_release(c);
}

enum { L_FMT_INL = __LINE__ + 3 };
static inline __attribute__((always_inline)) void fmt_inl_recv(goro_chan *c) {
    int v;
    goro_chan_recv(c, &v);
}

enum { L_FMT_OUTER = __LINE__ + 2 };
static GORO__NOINLINE void fmt_outer(void *arg) {
    fmt_inl_recv(arg);
    __asm__ volatile("" ::: "memory"); /* keep the call from being a tail call */
}

GORO_TEST(formats, debug2_inlined_frame, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(fmt_outer, c);
    char *b = fmt_wait_state(id, "chan receive]");
    char *m = fmt_mask(b);
    char want[512];
    snprintf(want, sizeof want,
             "goroutine %llu [chan receive]:\n"
             "fmt_inl_recv(...)\n"
             "\t%s:%d\n"
             "fmt_outer()\n"
             "\t%s:%d +0x?\n",
             (unsigned long long)id, fmt_base(), L_FMT_INL, fmt_base(), L_FMT_OUTER);
    cr_assert(strncmp(m, want, strlen(want)) == 0, "got:\n%s\nwant:\n%s", m, want);
    free(m);
    free(b);
    int v = 0;
    goro_chan_send(c, &v);
    goro_chan_release(c);
}

/* Not a tail call, not foldable into a loop: every level keeps a frame. */
static GORO__NOINLINE int fmt_deep(int n, goro_chan *c) {
    volatile int here = n;
    if (n == 0) {
        int v = 0;
        goro_chan_send(c, &v);
        return here;
    }
    int r = fmt_deep(n - 1, c);
    return r + here;
}

static GORO__NOINLINE void fmt_deep_entry(void *arg) {
    fmt_deep(120, arg);
    __asm__ volatile("" ::: "memory");
}

static int fmt_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

GORO_TEST(formats, debug2_elides_all_but_50_and_50, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(fmt_deep_entry, c);
    char *b = fmt_wait_state(id, "chan send]");
    /* 121 fmt_deep frames + the entry = 122: 50 shown, 22 elided, 50 shown. */
    cr_assert_eq(fmt_count(b, "\nfmt_deep()\n"), 99, "%s", b);
    cr_assert_eq(fmt_count(b, "\nfmt_deep_entry()\n"), 1);
    cr_assert_eq(fmt_count(b, "\n...22 frames elided...\n"), 1, "%s", b);
    /* The marker sits after exactly 50 frames (100 lines after the header). */
    const char *p = strchr(b, '\n') + 1;
    for (int i = 0; i < 100; i++)
        p = strchr(p, '\n') + 1;
    cr_assert(strncmp(p, "...22 frames elided...\n", 23) == 0, "%s", p);
    free(b);
    int v;
    goro_chan_recv(c, &v);
    goro_chan_release(c);
}

static _Atomic uint64_t fmt_inner_id;
static goro_chan *fmt_nested_send;

enum { L_FMT_NESTED_GO = __LINE__ + 2 };
static GORO__NOINLINE void fmt_nested_a(void *arg) {
    uint64_t id = goro_go(fmt_sender, fmt_nested_send);
    atomic_store(&fmt_inner_id, id);
    int v;
    goro_chan_recv(arg, &v); /* parks until the test sends */
}

GORO_TEST(formats, created_by_across_nested_spawns, .timeout = 30) {
    fmt_nested_send = goro_chan_make(sizeof(int), 0);
    goro_chan *park = goro_chan_make(sizeof(int), 0);
    uint64_t a = goro_go(fmt_nested_a, park);
    cr_assert(goro_test_wait_until(atomic_load(&fmt_inner_id) != 0, GORO_SEC(5)));
    uint64_t b_id = atomic_load(&fmt_inner_id);
    char *blk = fmt_wait_state(b_id, "chan send]");
    char want[256];
    snprintf(want, sizeof want, "created by fmt_nested_a in goroutine %llu\n\t%s:%d +0x?\n",
             (unsigned long long)a, fmt_base(), L_FMT_NESTED_GO);
    char *m = fmt_mask(blk);
    cr_assert(strstr(m, want) != NULL, "got:\n%s\nwant:\n%s", m, want);
    free(m);
    free(blk);
    /* and the creator itself was created by this test, in goroutine 1 */
    char *ablk = fmt_wait_state(a, "chan receive]");
    cr_assert(strstr(ablk, "\ncreated by ") != NULL && strstr(ablk, " in goroutine 1\n") != NULL,
              "%s", ablk);
    free(ablk);
    int v = 0;
    goro_chan_recv(fmt_nested_send, &v); /* the inner sender */
    goro_chan_send(park, &v);
    goro_chan_release(park);
    goro_chan_release(fmt_nested_send);
}

static void fmt_recv_forever(void *arg) {
    int v;
    goro_chan_recv(arg, &v);
}

/* The debug=2 dump of snapshot s as if it were taken at `now`, as a string. */
static char *fmt_dump_at(goro__snapshot *s, int64_t now) {
    s->now = now;
    goro__ow w;
    goro__ow_init_mem(&w);
    goro__format_dump(&w, s, NULL, NULL);
    cr_assert_eq(goro__ow_flush(&w), 0);
    char *out = malloc(w.mem_len + 1);
    cr_assert(out);
    memcpy(out, w.mem, w.mem_len);
    out[w.mem_len] = 0;
    free(w.mem);
    return out;
}

GORO_TEST(formats, wait_minutes_in_header, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t id = goro_go(fmt_recv_forever, c);
    free(fmt_wait_state(id, "chan receive]"));
    /* The wait began when the runtime says it did; the dump is formatted as
       if taken later. Only "now" moves forward, so the test does not depend
       on how long ago the machine booted (the monotonic clock may read a few
       seconds on a fresh machine, so "now - 3.5 minutes" could be negative). */
    goro__snapshot *s = goro__snapshot_take(0);
    cr_assert(s);
    int64_t since = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->gs[i].cap.id == id)
            since = s->gs[i].cap.waitsince;
    cr_assert_gt(since, 0, "a blocked goroutine records when it blocked");
    static const struct {
        int64_t waited_s;
        const char *state;
    } cases[] = {
        {210, "chan receive, 3 minutes"},
        {61, "chan receive, 1 minutes"},
        {59, "chan receive"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *d = fmt_dump_at(s, since + GORO_SEC(cases[k].waited_s));
        char *b = fmt_block(d, id);
        char want[64];
        snprintf(want, sizeof want, "goroutine %llu [%s]:\n", (unsigned long long)id,
                 cases[k].state);
        cr_assert(b && strncmp(b, want, strlen(want)) == 0, "%s", b ? b : d);
        free(b);
        free(d);
    }
    goro__snapshot_free(s);
    int v = 0;
    goro_chan_send(c, &v);
    goro_chan_release(c);
}

/* ------------------------------------------------------------ debug=1 */

GORO_TEST(formats, tabwriter_matches_go, .timeout = 10) {
    /* The 6-frame group of a real Go 1.19.8 capture: main.main writing
       pprof.Lookup("goroutine") at debug=1 (profile of a program leaking senders). */
    static const char *cells[6][3] = {
        {"0x45c9e4", "runtime/pprof.runtime_goroutineProfileWithLabels+0x24",
         "runtime/mprof.go:846"},
        {"0x4aec34", "runtime/pprof.writeRuntimeProfile+0xb4", "runtime/pprof/pprof.go:723"},
        {"0x4aea4c", "runtime/pprof.writeGoroutine+0x4c", "runtime/pprof/pprof.go:683"},
        {"0x4ab9aa", "runtime/pprof.(*Profile).WriteTo+0x14a", "runtime/pprof/pprof.go:330"},
        {"0x4b8970", "main.main+0x270", "leakdemo/main.go:42"},
        {"0x4373d1", "runtime.main+0x211", "runtime/proc.go:250"},
    };
    static const char want[] =
        "#\t0x45c9e4\truntime/pprof.runtime_goroutineProfileWithLabels+0x24\truntime/mprof.go:846\n"
        "#\t0x4aec34\truntime/pprof.writeRuntimeProfile+0xb4\t\t\truntime/pprof/pprof.go:723\n"
        "#\t0x4aea4c\truntime/pprof.writeGoroutine+0x4c\t\t\truntime/pprof/pprof.go:683\n"
        "#\t0x4ab9aa\truntime/pprof.(*Profile).WriteTo+0x14a\t\t\truntime/pprof/pprof.go:330\n"
        "#\t0x4b8970\tmain.main+0x270\t\t\t\t\t\tleakdemo/main.go:42\n"
        "#\t0x4373d1\truntime.main+0x211\t\t\t\t\truntime/proc.go:250\n";
    goro__ow w;
    goro__ow_init_mem(&w);
    goro__tw tw;
    goro__tw_init(&tw, &w);
    for (int i = 0; i < 6; i++) {
        goro__tw_cell(&tw, "#", 1);
        goro__tw_cell(&tw, cells[i][0], strlen(cells[i][0]));
        goro__tw_cell(&tw, cells[i][1], strlen(cells[i][1]));
        goro__tw_endline(&tw, cells[i][2], strlen(cells[i][2]));
    }
    goro__tw_flush(&tw);
    /* A line with fewer cells splits the column blocks after it, as in Go. */
    goro__tw_cell(&tw, "#", 1);
    goro__tw_cell(&tw, "0x1", 3);
    goro__tw_cell(&tw, "f+0x1", 5);
    goro__tw_endline(&tw, "a.c:1", 5);
    goro__tw_cell(&tw, "#", 1);
    goro__tw_endline(&tw, "0x123456", 8);
    goro__tw_cell(&tw, "#", 1);
    goro__tw_cell(&tw, "0x2", 3);
    goro__tw_cell(&tw, "a_much_longer_function+0x2", 26);
    goro__tw_endline(&tw, "b.c:2", 5);
    goro__tw_flush(&tw);
    goro__tw_free(&tw);
    cr_assert_eq(goro__ow_flush(&w), 0);
    static const char want2[] = "#\t0x1\tf+0x1\ta.c:1\n"
                                "#\t0x123456\n"
                                "#\t0x2\ta_much_longer_function+0x2\tb.c:2\n";
    size_t n1 = strlen(want);
    cr_assert_eq(w.mem_len, n1 + strlen(want2), "%s", w.mem);
    cr_assert(memcmp(w.mem, want, n1) == 0, "got:\n%s", w.mem);
    cr_assert(memcmp(w.mem + n1, want2, strlen(want2)) == 0, "got:\n%s", w.mem + n1);
    free(w.mem);
}

enum { L_FMT_GROUP = __LINE__ + 3 };
static GORO__NOINLINE void fmt_group_member(void *arg) {
    int v;
    goro_chan_recv(arg, &v);
    __asm__ volatile("" ::: "memory");
}

/* The debug=1 group whose frame lines mention `func`, or NULL. */
static char *fmt_group_with(const char *prof, const char *func) {
    const char *p = strstr(prof, func);
    if (!p)
        return NULL;
    /* The group starts at the last "<count> @ " line before p. */
    const char *start = NULL;
    for (const char *l = prof; l && l < p; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *q = l;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > l && strncmp(q, " @ ", 3) == 0)
            start = l;
    }
    if (!start)
        return NULL;
    const char *end = strstr(p, "\n\n");
    size_t n = end ? (size_t)(end - start) + 2 : strlen(start);
    char *g = malloc(n + 1);
    memcpy(g, start, n);
    g[n] = 0;
    return g;
}

GORO_TEST(formats, debug1_groups_and_counts, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = goro_go(fmt_group_member, c);
    for (int i = 0; i < 5; i++)
        free(fmt_wait_state(ids[i], "chan receive]"));
    char *p = fmt_profile(1, NULL);
    char head[64];
    snprintf(head, sizeof head, "goroutine profile: total %d\n", goro_count());
    cr_assert(strncmp(p, head, strlen(head)) == 0, "%s", p);
    char *g = fmt_group_with(p, "fmt_group_member+");
    cr_assert(g, "%s", p);
    char *m = fmt_mask(g);
    /* One frame line: exactly one TAB after each column. */
    char want_tail[128];
    snprintf(want_tail, sizeof want_tail, "\n#\t0x?\tfmt_group_member+0x?\t%s:%d\n\n", fmt_base(),
             L_FMT_GROUP);
    cr_assert(strncmp(m, "5 @ 0x?", 7) == 0, "%s", m);
    cr_assert(strstr(m, want_tail) != NULL, "got:\n%s\nwant tail:\n%s", m, want_tail);
    /* The "@" line: one space before every PC, lower-case hex, no trailing space. */
    const char *nl = strchr(g, '\n');
    cr_assert(nl[-1] != ' ');
    for (const char *q = strchr(g, '@') + 1; q < nl; q++)
        cr_assert(*q == ' ' || *q == 'x' || (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'));
    /* The biggest group comes first. */
    const char *first = strchr(p, '\n') + 1;
    cr_assert(strncmp(first, "5 @ ", 4) == 0, "%s", p);
    /* The output ends with the blank line of the last group. */
    size_t len = strlen(p);
    cr_assert(len > 2 && p[len - 1] == '\n' && p[len - 2] == '\n');
    free(m);
    free(g);
    free(p);
    for (int i = 0; i < 5; i++) {
        int v = 0;
        goro_chan_send(c, &v);
    }
    goro_chan_release(c);
}

static goro_chan *fmt_label_child_chan;

static GORO__NOINLINE void fmt_labelled_child(void *arg) {
    (void)arg;
    int v;
    goro_chan_recv(fmt_label_child_chan, &v);
}

static GORO__NOINLINE void fmt_labelled(void *arg) {
    goro_label_set("worker", "db");
    goro_label_set("quote", "a\"b\n\x01");
    goro_label_set("gone", "x");
    goro_label_set("gone", NULL);
    goro_go(fmt_labelled_child, NULL); /* inherits the labels */
    goro_label_set("worker", "parent-only");
    int v;
    goro_chan_recv(arg, &v);
}

GORO_TEST(formats, labels_and_names_in_debug1, .timeout = 30) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    fmt_label_child_chan = goro_chan_make(sizeof(int), 0);
    goro_opts o = {.name = "labeller"};
    uint64_t id = goro_go_opts(&o, fmt_labelled, c);
    free(fmt_wait_state(id, "chan receive]"));
    goro_test_wait_until(fmt_profile_has("fmt_labelled_child+"), GORO_SEC(5));
    char *p = fmt_profile(1, NULL);
    char *g = fmt_group_with(p, "fmt_labelled+");
    cr_assert(g, "%s", p);
    /* Go's labelMap.String: %q:%q pairs, sorted, ", "-joined; name as a label. */
    cr_assert(strstr(g, "\n# labels: {\"name\":\"labeller\", \"quote\":\"a\\\"b\\n\\x01\", "
                        "\"worker\":\"parent-only\"}\n#\t") != NULL,
              "%s", g);
    char *gc = fmt_group_with(p, "fmt_labelled_child+");
    cr_assert(gc, "%s", p);
    cr_assert(strstr(gc, "\n# labels: {\"quote\":\"a\\\"b\\n\\x01\", \"worker\":\"db\"}\n") != NULL,
              "%s", gc);
    free(g);
    free(gc);
    free(p);
    int v = 0;
    goro_chan_send(c, &v);
    goro_chan_send(fmt_label_child_chan, &v);
    goro_chan_release(c);
}

/* ------------------------------------------------------------ tools */

static bool fmt_have(const char *path) { return access(path, X_OK) == 0; }

static char *fmt_run(const char *cmd) {
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    char tmp[4096];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + n, tmp, r);
        n += r;
    }
    pclose(p);
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[n] = 0;
    return buf;
}

GORO_TEST(formats, debug0_read_by_go_tool_pprof, .timeout = 120) {
    if (!fmt_have("/usr/bin/go"))
        cr_skip("go is not installed (apt-get install golang-go)");
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_opts o = {.name = "pprof-sender"};
    uint64_t id = goro_go_opts(&o, fmt_sender, c);
    free(fmt_wait_state(id, "chan send]"));
    char path[] = "/tmp/goro_fmt_pprof_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_eq(goro_profile_write(f, 0), 0);
    fclose(f);
    /* gzip magic */
    f = fopen(path, "rb");
    unsigned char magic[2] = {0};
    cr_assert_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    cr_assert(magic[0] == 0x1f && magic[1] == 0x8b);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "HOME=/tmp GOFLAGS= /usr/bin/go tool pprof -raw %s 2>&1", path);
    char *raw = fmt_run(cmd);
    cr_assert(strstr(raw, "PeriodType: goroutine count") != NULL, "%s", raw);
    cr_assert(strstr(raw, "goroutine/count") != NULL, "%s", raw);
    cr_assert(strstr(raw, " fmt_sender ") != NULL, "%s", raw);
    cr_assert(strstr(raw, "name:[pprof-sender]") != NULL, "%s", raw);
    cr_assert(strstr(raw, "[FN]") != NULL, "%s", raw);
    char line[64];
    snprintf(line, sizeof line, "%s:%d s=", fmt_base(), L_FMT_SEND);
    cr_assert(strstr(raw, line) != NULL, "want %s in\n%s", line, raw);
    free(raw);
    snprintf(cmd, sizeof cmd, "HOME=/tmp GOFLAGS= /usr/bin/go tool pprof -top %s 2>&1", path);
    char *top = fmt_run(cmd);
    cr_assert(strstr(top, "Type: goroutine") != NULL, "%s", top);
    cr_assert(strstr(top, "fmt_sender") != NULL, "%s", top);
    snprintf(line, sizeof line, "of %d total", goro_count());
    cr_assert(strstr(top, line) != NULL, "want '%s' in\n%s", line, top);
    free(top);
    unlink(path);
    int v;
    goro_chan_recv(c, &v);
    goro_chan_release(c);
}

GORO_TEST(formats, debug2_read_by_panicparse, .timeout = 60) {
    const char *pp = fmt_have("/usr/bin/panicparse") ? "/usr/bin/panicparse"
                     : fmt_have("/usr/bin/pp")       ? "/usr/bin/pp"
                                                     : NULL;
    if (!pp)
        cr_skip("panicparse is not installed (apt-get install panicparse)");
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    uint64_t a = fmt_spawn(c), b = fmt_spawn(c);
    free(fmt_wait_state(a, "chan send]"));
    free(fmt_wait_state(b, "chan send]"));
    char path[] = "/tmp/goro_fmt_pp_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cr_assert_eq(goro_profile_write(f, 2), 0);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -parse=false -no-color < %s 2>&1; echo \"rc=$?\"", pp, path);
    char *out = fmt_run(cmd);
    /* Both senders (same stack, same creator) form one bucket of 2. */
    cr_assert(strstr(out, "2: chan send [Created by .fmt_spawn in goroutine 1") != NULL, "%s", out);
    cr_assert(strstr(out, "fmt_sender()") != NULL, "%s", out);
    cr_assert(strstr(out, "1: running") != NULL, "%s", out);
    cr_assert(strstr(out, "rc=0") != NULL, "%s", out);
    cr_assert(strstr(out, "Failed") == NULL, "%s", out);
    free(out);
    unlink(path);
    int v;
    goro_chan_recv(c, &v);
    goro_chan_recv(c, &v);
    goro_chan_release(c);
}
