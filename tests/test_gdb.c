/*
 * test_gdb.c - the gdb extension (gdb/goro-gdb.py) on tests/gdb/fixture.c,
 * built with libgoro.a (gdb_fixture_static) and libgoro.so
 * (gdb_fixture_shared): on a live process (gdb runs it; gdb attaches to it)
 * and on a core file written by gdb's gcore.
 *
 * What is checked: `info goroutines` names every parked goroutine with Go's
 * state word and its top frame (the goro call it waits in, where traces
 * show one, then its caller); `goroutine N` makes a parked
 * goroutine's stack the selected frames, so `print`, `info locals`, `bt` and
 * `frame N` work on it; `goro dump` prints what goro_profile_write(f, 2)
 * printed inside the process, also for goroutines whose frames -O2 removed
 * (tail calls); 100,000 goroutines list within a bound; and every layout
 * name the script reads exists in the library's tables, with the values it
 * expects.
 *
 * gdb runs with -nx and loads the script from this source tree (auto-load
 * of the installed copy is off, so an older installed one cannot interfere).
 * The tests skip when gdb is missing and under the sanitizers (their fake
 * stacks move the locals gdb is asked to print).
 */
#define _GNU_SOURCE 1 /* vasprintf */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"
#include "observe/observe.h"
#include "gdb_layout.h"

static char bindir[PATH_MAX];
static char script[PATH_MAX];

static void skip_unless_gdb(void) {
    if (GORO_TEST_SANITIZED)
        cr_skip_test("gdb tests run in the plain build only");
    if (system("gdb --version >/dev/null 2>&1") != 0)
        cr_skip_test("gdb is not installed (apt-get install gdb)");
}

/* bindir: where goro_tests and the fixtures are; script: the source tree's
   gdb/goro-gdb.py (this file is tests/test_gdb.c). */
static void init_paths(void) {
    ssize_t n = readlink("/proc/self/exe", bindir, sizeof bindir - 1);
    cr_assert(n > 0);
    bindir[n] = 0;
    *strrchr(bindir, '/') = 0;
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    cr_assert(slash, "__FILE__ is not a path: %s", __FILE__);
    strcpy(slash, "/../gdb/goro-gdb.py");
    cr_assert(access(script, R_OK) == 0, "no %s", script);
}

/* A formatted, malloc'ed string. */
static __attribute__((format(printf, 1, 2))) char *str(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    cr_assert_geq(vasprintf(&out, fmt, ap), 0);
    va_end(ap);
    return out;
}

/* Everything left to read from f, NUL-terminated, malloc'ed. */
static char *read_all(FILE *f) {
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    return buf;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char *buf = read_all(f);
    fclose(f);
    return buf;
}

/* Runs `sh -c cmd`, returns what it wrote to stdout and stderr. */
static char *run(const char *cmd) {
    char *full = str("%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    cr_assert(p, "popen: %s", strerror(errno));
    char *buf = read_all(p);
    pclose(p);
    return buf;
}

/* The gdb command line every test starts with (malloc'ed). */
static char *gdb_prefix(void) {
    return str("timeout 300 gdb -batch -nx -iex 'set auto-load python-scripts off' "
               "-iex 'set pagination off' -iex 'set width 0' -ex 'source %s'",
               script);
}

/* gdb runs the fixture (kind: "static" or "shared") until it is ready, then
   runs cmds (a string of -ex options) and kills it. */
static char *gdb_run(const char *kind, const char *args, const char *env, const char *cmds) {
    char *pre = gdb_prefix();
    char *cmd = str("env GORO_FIXTURE_TRAP=1 %s %s -ex run %s -ex kill "
                    "--args %s/gdb_fixture_%s %s </dev/null",
                    env ? env : "", pre, cmds, bindir, kind, args ? args : "");
    char *out = run(cmd);
    free(cmd);
    free(pre);
    return out;
}

static void expect(const char *out, const char *what) {
    cr_assert(strstr(out, what), "expected %s in gdb's output:\n%s", what, out);
}

/* The line of `info goroutines` output that contains key. */
static const char *list_line(const char *out, const char *key) {
    const char *p = strstr(out, key);
    cr_assert(p, "no line with %s in:\n%s", key, out);
    while (p > out && p[-1] != '\n')
        p--;
    return p;
}

/* Every goroutine the fixture starts: state word, top user frame, the goro
   call shown above it in the list (or NULL), local. */
static const struct {
    const char *state, *func, *call, *local;
} waiters[] = {
    {"chan send", "chan_sender (fixture.c:", NULL, "token = 4242"},
    {"chan receive", "chan_receiver (fixture.c:", NULL, "wanted = 6666"},
    {"select", "selecter (fixture.c:", NULL, "choices = 7878"},
    {"sync.Mutex.Lock", "mutex_waiter (fixture.c:", "goro_mutex_lock (mutex.c:", "locker = 10302"},
    {"sleep", " sleeper (fixture.c:", "goro_sleep (g.c:", "naps = 11514"},
    {"IO wait", "io_waiter (fixture.c:", "goro_read (net.c:", "reads = 13938"},
    {"chan receive", "labelled (fixture.c:", NULL, "request = 17574"},
    {"running", "spinner (fixture.c:", NULL, "laps = 18786"},
    {"chan receive", "plain_thread (fixture.c:", NULL, "plain = 22422"},
    {"chan receive (leaked)", "leaker (fixture.c:", NULL, "lost = 24846"},
    {"chan receive (nil chan) (leaked)", "nil_waiter (fixture.c:", NULL, "nothing = 26058"},
    /* Tail calls removed their frames (no locals left): the list shows
       the start function at its entry, below the call from the wait reason. */
    {"sleep", " tail_sleeper (fixture.c:", "goro_sleep (g.c:", NULL},
    {"chan receive", " tail_receiver (fixture.c:", NULL, NULL},
};
#define NWAITERS (sizeof waiters / sizeof waiters[0])

/* `info goroutines`: each waiter on one line with its state and top frame
   ("goro_sleep (g.c:442) from sleeper (fixture.c:68)" where a trace shows
   the goro call); the labelled one shows its label, the named one its name. */
static void check_list(const char *out) {
    for (size_t i = 0; i < NWAITERS; i++) {
        const char *line = list_line(out, waiters[i].func);
        const char *end = strchr(line, '\n');
        const char *st = strstr(line, waiters[i].state);
        cr_assert(st && st < end, "goroutine in %s: state %s expected:\n%s", waiters[i].func,
                  waiters[i].state, out);
        const char *top = strstr(line, waiters[i].func);
        if (waiters[i].call) {
            const char *call = strstr(line, waiters[i].call);
            cr_assert(call && call < top && strstr(call, ") from ") < top,
                      "goroutine in %s: %s... from expected:\n%s", waiters[i].func, waiters[i].call,
                      out);
        } else {
            const char *from = strstr(line, " from ");
            cr_assert(!from || from > end, "%s: no goro call expected:\n%s", waiters[i].func, out);
        }
    }
    /* Only the two provably leaked goroutines are marked. */
    int leaked = 0;
    for (const char *p = out; (p = strstr(p, "(leaked)")); p++)
        leaked++;
    cr_assert_eq(leaked, 2, "(leaked) %d times in:\n%s", leaked, out);
    const char *l = list_line(out, "labelled (fixture.c:");
    cr_assert(strstr(l, "request=r-17") < strchr(l, '\n') && strstr(l, "request=r-17"));
    l = list_line(out, "chan_sender (fixture.c:");
    cr_assert(strstr(l, "name=sender") && strstr(l, "name=sender") < strchr(l, '\n'));
}

/* The id in the first column of a list line. */
static int list_id(const char *out, const char *func) {
    const char *l = list_line(out, func);
    while (*l == '*' || *l == ' ')
        l++;
    return atoi(l);
}

/* Every block of goro's own debug=2 dump, but those of running goroutines
   (their stacks moved on since), must appear in `goro dump`'s output. */
static void expect_same_dump(const char *mine, const char *gdb_out) {
    int blocks = 0;
    char *copy = strdup(mine);
    for (char *b = copy; b && *b;) {
        char *next = strstr(b, "\n\n");
        if (next) {
            next[1] = 0;
            next += 2;
        }
        if (!strstr(b, " [running]:\n")) {
            cr_expect(strstr(gdb_out, b),
                      "goro dump lacks this block of the program's own "
                      "dump:\n%s\ngdb printed:\n%s",
                      b, gdb_out);
            blocks++;
        }
        b = next;
    }
    cr_assert_geq(blocks, (int)NWAITERS - 1);
    free(copy);
}

/* The fixture's tail calls are still tail calls in goro's own dump (else
   comparing with it checks nothing about them): the start function at its
   entry (no +0x offset), below the goro call its wait implies, and a
   "created by" naming the creator whose goro_go left no frame. */
static void expect_tail_calls(const char *mine) {
    const char *fns[] = {"\ngoro_sleep()\n\t", "\ntail_sleeper()\n\t", "\ntail_receiver()\n\t"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        const char *f = strstr(mine, fns[i]);
        cr_assert(f, "no %s in the program's own dump:\n%s", fns[i] + 1, mine);
        const char *eol = strchr(f + strlen(fns[i]), '\n');
        const char *off = strstr(f + strlen(fns[i]), " +0x");
        cr_assert(eol && (!off || off > eol), "%s is not at its entry:\n%s", fns[i] + 1, mine);
    }
    expect(mine, "created by tail_spawner in goroutine ");
}

/* ------------------------------------------------------------------ tests */

Test(gdb, layout_has_every_name_the_script_reads) {
    init_paths();
    char *text = slurp(script);
    char *begin = strstr(text, "# layout-names-begin");
    char *end = strstr(text, "# layout-names-end");
    cr_assert(begin && end && begin < end, "no layout-names markers in %s", script);
    const char *v = strstr(text, "LAYOUT_VERSION = ");
    cr_assert(v, "no LAYOUT_VERSION in %s", script);
    int version = atoi(v + strlen("LAYOUT_VERSION = "));
    cr_assert_str_eq(goro__gdb_layout[0].name, "version");
    cr_assert_eq(version, (int)goro__gdb_layout[0].value,
                 "the script reads layout version %d, the library has %d", version,
                 (int)goro__gdb_layout[0].value);
    const goro__gdb_entry *tables[] = {goro__gdb_layout, goro__gdb_allgs, goro__gdb_status};
    int names = 0;
    for (char *p = begin; (p = strchr(p, '"')) && p < end;) {
        char *q = strchr(p + 1, '"');
        *q = 0;
        bool found = false;
        for (size_t t = 0; t < 3 && !found; t++)
            for (const goro__gdb_entry *e = tables[t]; e->name && !found; e++)
                found = strcmp(e->name, p + 1) == 0;
        cr_expect(found, "goro-gdb.py reads \"%s\", which no layout table has", p + 1);
        names++;
        p = q + 1;
    }
    cr_assert_gt(names, 40);
    /* The register slots the unwinder restores. */
    int regs = 0;
    for (const goro__gdb_entry *e = goro__gdb_layout; e->name; e++)
        regs += strncmp(e->name, "ctx.reg.", 8) == 0;
#if defined(__x86_64__)
    cr_assert_eq(regs, 6);
#else
    cr_assert_eq(regs, 12);
#endif
    free(text);
}

/* A value from the layout tables (the script merges them). */
static uint64_t layout_value(const char *name) {
    const goro__gdb_entry *tables[] = {goro__gdb_layout, goro__gdb_allgs, goro__gdb_status};
    for (size_t t = 0; t < 3; t++)
        for (const goro__gdb_entry *e = tables[t]; e->name; e++)
            if (strcmp(e->name, name) == 0)
                return e->value;
    cr_assert_fail("no %s in the layout tables", name);
    return 0;
}

/* n bytes at offset off of a record, as the script unpacks them
   (little-endian; "<Q" for pointers, "<i" for the call table's reason). */
static int64_t field(const void *rec, uint64_t off, size_t n) {
    uint64_t u = 0;
    memcpy(&u, (const char *)rec + off, n);
    return n == 4 ? (int64_t)(int32_t)u : (int64_t)u;
}

static void layout_child(void *out) {
    const void *g = goro__getg();
    uint64_t fns[2] = {(uint64_t)field(g, layout_value("g.fn"), 8),
                       (uint64_t)field(g, layout_value("g.parent_fn"), 8)};
    goro_chan_send(out, fns);
}

static void layout_parent(void *out) { goro_go(layout_child, out); }

/* Beyond the names: a goroutine's start function at g.fn and its creator's
   at g.parent_fn (the frames the script adds), and the table of goro calls
   a trace shows on top, read the way the script reads it, holding what
   apiframes.c decides with. */
Test(gdb, layout_values_are_what_the_script_reads, .timeout = 60) {
    goro_chan *out = goro_chan_make(2 * sizeof(uint64_t), 0);
    goro_go(layout_parent, out);
    uint64_t fns[2];
    cr_assert(goro_chan_recv(out, fns));
    goro_chan_release(out);
    cr_assert_eq(fns[0], (uint64_t)(uintptr_t)layout_child);
    cr_assert_eq(fns[1], (uint64_t)(uintptr_t)layout_parent);

    const char *base = (const char *)(uintptr_t)layout_value("apicalls");
    uint64_t size = layout_value("apicalls.size");
    cr_assert_eq(sizeof(((goro__api_call *)0)->reason), 4, "the script reads the reason as <i");
    cr_assert_eq(sizeof(((goro__api_call *)0)->fn), 8, "the script reads fn as <Q");
    int n = 0, by_reason = 0;
    for (;; n++) {
        const char *rec = base + (uint64_t)n * size;
        const char *name = (const char *)(uintptr_t)field(rec, layout_value("apicalls.name"), 8);
        if (!name)
            break;
        uintptr_t fn = (uintptr_t)field(rec, layout_value("apicalls.fn"), 8);
        int reason = (int)field(rec, layout_value("apicalls.reason"), 4);
        cr_expect(goro__api_shown(name), "%s in the table but not shown", name);
        cr_expect_neq(fn, 0, "%s: no entry", name);
        if (reason >= 0) {
            cr_expect_eq(goro__api_for_reason(reason), fn, "%s: reason %d", name, reason);
            by_reason++;
        }
        cr_assert_lt(n, 256);
    }
    cr_assert_gt(n, 10);
    cr_assert_gt(by_reason, 5);
    cr_assert_eq(goro__api_for_reason(GORO__WAIT_SLEEP), (uintptr_t)goro_sleep);
    cr_assert_eq(goro__api_for_reason(GORO__WAIT_MUTEX), (uintptr_t)goro_mutex_lock);
    cr_assert_eq(goro__api_for_reason(GORO__WAIT_CHAN_RECV), 0, "channel receives are hidden");
}

Test(gdb, both_libraries_name_the_script_for_auto_load, .timeout = 120) {
    skip_unless_gdb();
    init_paths();
    const char *objs[] = {"gdb_fixture_static", "libgoro.so"};
    for (int i = 0; i < 2; i++) {
        char *cmd = str("timeout 100 gdb -batch -nx %s/%s -ex 'info auto-load python-scripts'",
                        bindir, objs[i]);
        char *out = run(cmd);
        expect(out, "/share/goro/gdb/goro-gdb.py");
        free(out);
        free(cmd);
    }
}

/* gdb runs the program: list, every waiter's locals, bt, and goro dump
   equal to the program's own dump. */
static void live_run(const char *kind) {
    skip_unless_gdb();
    init_paths();
    char dump[128], env[160];
    snprintf(dump, sizeof dump, "/tmp/goro_gdb_dump_%s_%d", kind, (int)getpid());
    snprintf(env, sizeof env, "GORO_FIXTURE_DUMP=%s", dump);
    char *out = gdb_run(kind, NULL, env,
                        "-ex 'info goroutines' -ex 'goroutine all info locals' "
                        "-ex 'echo ==bt==\\n' -ex 'goroutine all bt' -ex 'echo ==dump==\\n' "
                        "-ex 'goro dump' -ex 'echo ==end==\\n'");
    check_list(out);
    const char *bt = strstr(out, "==bt==");
    cr_assert(bt, "%s", out);
    for (size_t i = 0; i < NWAITERS && waiters[i].local; i++) {
        const char *loc = strstr(out, waiters[i].local);
        cr_assert(loc && loc < bt, "%s not printed by goroutine all info locals:\n%s",
                  waiters[i].local, out);
    }
    /* bt of a parked goroutine: from goro's switch down to its entry. */
    expect(bt, "in switch_to (");
    expect(bt, "in goro_chan_send (");
    expect(bt, "in chan_sender (arg=0x1) at ");
    expect(bt, "in goro__ctx_entry ()");
    char *mine = slurp(dump);
    unlink(dump);
    const char *d = strstr(out, "==dump==\n");
    cr_assert(d);
    expect_tail_calls(mine);
    expect_same_dump(mine, d);
    free(mine);
    free(out);
}

Test(gdb, run_static, .timeout = 300) { live_run("static"); }
Test(gdb, run_shared, .timeout = 300) { live_run("shared"); }

/* On a core: the list, then goroutine N selects the sender so that print,
   bt, frame and info frame work on its stack. */
static void core(const char *kind) {
    skip_unless_gdb();
    init_paths();
    char *core = str("/tmp/goro_gdb_%s_%d.core", kind, (int)getpid());
    char *cmd = str("-ex 'gcore %s'", core);
    char *out = gdb_run(kind, NULL, NULL, cmd);
    cr_assert(access(core, R_OK) == 0, "gcore wrote no core:\n%s", out);
    free(out);
    free(cmd);

    char *pre = gdb_prefix();
    cmd = str("%s -ex 'info goroutines' %s/gdb_fixture_%s %s", pre, bindir, kind, core);
    char *list = run(cmd);
    free(cmd);
    check_list(list);
    int sender = list_id(list, "chan_sender (fixture.c:");
    int sleeper = list_id(list, " sleeper (fixture.c:");
    cmd = str("%s -ex 'goroutine %d' -ex 'print token' -ex 'echo ==bt==\\n' -ex bt "
              "-ex 'frame 2' -ex 'info frame' -ex 'echo ==sleeper==\\n' "
              "-ex 'goroutine %d info locals' -ex 'goroutine none' -ex 'goroutine' "
              "%s/gdb_fixture_%s %s",
              pre, sender, sleeper, bindir, kind, core);
    out = run(cmd);
    unlink(core);
    free(cmd);
    free(core);
    free(pre);
    char sw[64];
    snprintf(sw, sizeof sw, "[Switching to goroutine %d (chan send)]", sender);
    expect(out, sw);
    expect(out, "$1 = 4242");
    const char *bt = strstr(out, "==bt==");
    cr_assert(bt);
    expect(bt, "#1  0x");
    expect(bt, " in chan_sender (arg=0x1) at ");
    expect(bt, "Stack level 2, frame at ");
    expect(strstr(out, "==sleeper=="), "naps = 11514");
    expect(out, "No goroutine selected");
    /* The host thread's own frame #0 is not part of the goroutine's bt. */
    cr_assert_null(strstr(bt, "#0  "), "bt of a goroutine shows frame #0:\n%s", out);
    free(out);
    free(list);
}

Test(gdb, core_static, .timeout = 300) { core("static"); }
Test(gdb, core_shared, .timeout = 300) { core("shared"); }

/* gdb attaches to the running program (skipped where ptrace is refused). */
Test(gdb, attach_static, .timeout = 300) {
    skip_unless_gdb();
    init_paths();
    int in[2], outp[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(outp), 0);
    char exe[PATH_MAX + 32];
    snprintf(exe, sizeof exe, "%s/gdb_fixture_static", bindir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(outp[1], 1);
        close(in[1]);
        close(outp[0]);
        execl(exe, exe, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    char ready[64] = {0};
    size_t n = 0;
    struct pollfd pfd = {outp[0], POLLIN, 0};
    while (n < sizeof ready - 1 && !strchr(ready, '\n') && poll(&pfd, 1, 120000) == 1) {
        ssize_t r = read(outp[0], ready + n, sizeof ready - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    cr_assert(strncmp(ready, "ready ", 6) == 0, "fixture did not get ready: %s", ready);

    char *pre = gdb_prefix();
    char *cmd = str("%s -p %d -ex 'info goroutines' -ex 'goroutine all info locals' "
                    "-ex 'info goroutines -s select' -ex 'echo ==f==\\n' "
                    "-ex 'info goroutines -f ^mutex_'",
                    pre, (int)pid);
    char *out = run(cmd);
    free(cmd);
    free(pre);
    close(in[1]); /* the fixture returns from main */
    int st = 0;
    waitpid(pid, &st, 0);
    close(outp[0]);
    if (strstr(out, "ptrace: Operation not permitted"))
        cr_skip_test("this system refuses ptrace attach (the run and core tests cover the rest)");
    check_list(out);
    for (size_t i = 0; i < NWAITERS && waiters[i].local; i++)
        expect(out, waiters[i].local);
    const char *f = strstr(out, "==f==");
    cr_assert(f);
    /* The filters: one select goroutine before the marker, one mutex waiter after. */
    expect(f, "mutex_waiter (fixture.c:");
    expect(f, "1 goroutines shown of ");
    cr_assert_null(strstr(f, "chan_sender"));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fixture status %d after detach", st);
    free(out);
}

/* 100,000 parked goroutines: `info goroutines` lists all of them within a
   bound (measured: about 2 s of gdb's CPU time; the bound leaves room for
   a loaded machine). */
Test(gdb, list_100000_goroutines, .timeout = 600) {
    skip_unless_gdb();
    init_paths();
    char timer[128];
    snprintf(timer, sizeof timer, "/tmp/goro_gdb_time_%d.py", (int)getpid());
    FILE *f = fopen(timer, "w");
    cr_assert(f);
    fputs("import time, gdb\n"
          "t, c = time.monotonic(), time.process_time()\n"
          "out = gdb.execute('info goroutines', to_string=True)\n"
          "print('listed: %s in %.2f s (cpu %.2f s)' % (out.strip().splitlines()[-1],\n"
          "      time.monotonic() - t, time.process_time() - c))\n",
          f);
    fclose(f);
    char *cmds = str("-ex 'source %s'", timer);
    char *out = gdb_run("static", "100000", NULL, cmds);
    free(cmds);
    unlink(timer);
    const char *l = strstr(out, "listed: ");
    cr_assert(l, "%s", out);
    int count = 0;
    double secs = 0, cpu = 0;
    cr_assert_eq(sscanf(l, "listed: %d goroutines in %lf s (cpu %lf s)", &count, &secs, &cpu), 3,
                 "%s", l);
    cr_log_info("info goroutines: %d goroutines in %.2f s (gdb cpu %.2f s)", count, secs, cpu);
    cr_assert_geq(count, 100000);
    cr_assert_lt(secs, 60.0, "info goroutines took %.1f s for %d goroutines", secs, count);
    free(out);
}
