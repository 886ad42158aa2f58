/*
 * leakcheck.c - test-time leak checks: leaktest's mark/check and goleak's
 * verify-none, for C tests.
 *
 * Identity is the goroutine id (never reused), so a goroutine that existed at
 * the mark is never reported however its stack changes, and a new goroutine
 * is never mistaken for an old one. A check retries with goleak's back-off
 * (1us doubling to a 100ms cap) until timeout_ns has passed; a goroutine that
 * ends meanwhile is not reported.
 *
 * Cost: each round is one pass over the goroutine records reading ids and
 * states (no stack capture, no symbols) unless filters are set; stacks are
 * captured only for the final report. A clean check with 1,000 goroutines
 * alive is one such pass.
 *
 * Never reported: the caller, runtime-internal goroutines, and plain-thread
 * records (goroutine 1 is the program's main thread, like Go's test runner,
 * and other threads are not goroutines). Goroutines that are dead by the
 * time the report is written are left out of it.
 */
#include "leak_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct goro_leak_mark {
    uint64_t *ids; /* sorted */
    size_t n;
};

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool mark_has(const goro_leak_mark *m, uint64_t id) {
    if (!m)
        return false;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->ids[mid] == id)
            return true;
        if (m->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* A live goroutine that leak checks may report (not yet filtered). */
static bool candidate(goro__g *g, uint64_t *id_out) {
    /* The status first: a record is reused by writing its fields and then
       storing RUNNABLE with release, so the flags read after it are that
       goroutine's. */
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire) & ~(uint32_t)GORO__G_SCAN;
    if (st == GORO__G_DEAD || st == GORO__G_IDLE)
        return false;
    if (goro__leak_flags_skip(g))
        return false;
    uint64_t id = __atomic_load_n(&g->id, __ATOMIC_RELAXED);
    /* Re-check: a record reused between the two reads changes its id. */
    uint32_t st2 = atomic_load_explicit(&g->status, memory_order_acquire) & ~(uint32_t)GORO__G_SCAN;
    if (st2 == GORO__G_DEAD)
        return false;
    *id_out = id;
    return true;
}

goro_leak_mark *goro_leak_mark_now(void) {
    goro__init();
    goro_leak_mark *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t n = goro__allg_count();
    m->ids = malloc((n + 1) * sizeof *m->ids);
    if (!m->ids) {
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        goro__g *g = goro__allg_at(i);
        uint64_t id;
        if (g && candidate(g, &id))
            m->ids[m->n++] = id;
    }
    qsort(m->ids, m->n, sizeof *m->ids, cmp_u64);
    return m;
}

void goro_leak_mark_free(goro_leak_mark *m) {
    if (!m)
        return;
    free(m->ids);
    free(m);
}

static bool name_in(const char *name, const char **list) {
    if (!name || !list)
        return false;
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* Whether the filters of o drop this captured goroutine. */
static bool filtered(const goro__gsnap *gs, const goro_leak_opts *o) {
    if (!o || (!o->ignore_top_functions && !o->ignore_created_by))
        return false;
    if (o->ignore_created_by) {
        const goro__sym *sym;
        uintptr_t pc;
        const goro__symline *cl = goro__creator(&gs->cap, &sym, &pc);
        if (cl && name_in(cl->func, o->ignore_created_by))
            return true;
    }
    if (o->ignore_top_functions) {
        goro__frames fr;
        if (goro__frames_build(&gs->stk, &fr)) {
            bool hit = false;
            for (int i = 0; i < fr.n; i++) {
                if (!fr.f[i].shown)
                    continue;
                hit = name_in(fr.f[i].sym->lines[fr.f[i].line_idx].func, o->ignore_top_functions);
                break;
            }
            goro__frames_free(&fr);
            if (hit)
                return true;
        }
    }
    return false;
}

static bool has_filters(const goro_leak_opts *o) {
    return o && (o->ignore_top_functions || o->ignore_created_by);
}

void goro__leak_write_goroutine(goro__ow *w, const goro__gsnap *gs, int64_t now) {
    goro__kv kv[16];
    int n = goro__effective_labels(&gs->cap, kv, 16);
    char *labels = n > 0 ? goro__labels_string(kv, n) : NULL;
    if (labels)
        goro__ow_printf(w, "# labels: %s\n", labels);
    free(labels);
    goro__format_goroutine(w, gs, now, NULL);
}

/* Counts goroutines that are not in the mark (or, without a mark, all), not
   the caller. With filters, captures the candidates to apply them. When
   report is set, writes the summary and every trace. */
static int scan(const goro_leak_mark *m, const goro_leak_opts *o, uint64_t self, FILE *report) {
    if (!report && !has_filters(o)) {
        int n = 0;
        size_t all = goro__allg_count();
        for (size_t i = 0; i < all; i++) {
            goro__g *g = goro__allg_at(i);
            uint64_t id;
            if (g && candidate(g, &id) && id != self && !mark_has(m, id))
                n++;
        }
        if (n == 0 || !has_filters(o))
            return n;
    }
    goro__snapshot *s =
        goro__snapshot_take(report ? GORO__SNAP_DUMP | GORO__SNAP_NO_SELF : GORO__SNAP_NO_SELF);
    if (!s)
        return -1;
    bool *keep = calloc(s->n + 1, sizeof *keep);
    int n = 0;
    for (size_t i = 0; keep && i < s->n; i++) {
        goro__gsnap *gs = &s->gs[i];
        if (goro__leak_cap_skip(&gs->cap) || gs->cap.id == self || mark_has(m, gs->cap.id) ||
            gs->cap.status == GORO__G_DEAD || filtered(gs, o))
            continue;
        keep[i] = true;
        n++;
    }
    if (report && n > 0) {
        goro__ow w;
        goro__ow_init_file(&w, report);
        goro__ow_printf(&w, "found %d unexpected goroutine%s:\n", n, n == 1 ? "" : "s");
        bool first = true;
        for (size_t i = 0; i < s->n; i++) {
            if (!keep[i])
                continue;
            if (!first)
                goro__ow_puts(&w, "\n");
            first = false;
            goro__leak_write_goroutine(&w, &s->gs[i], s->now);
        }
        goro__ow_flush(&w);
    }
    free(keep);
    goro__snapshot_free(s);
    return n;
}

static void sleep_ns(int64_t ns) {
    if (goro__getg_maybe() && !goro__getg_maybe()->is_thread) {
        goro_sleep(ns);
        return;
    }
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

static int check(const goro_leak_mark *m, const goro_leak_opts *o, FILE *report) {
    goro__init();
    int64_t timeout = o && o->timeout_ns > 0 ? o->timeout_ns : GORO_SEC(5);
    int64_t deadline = goro_nanotime() + timeout;
    uint64_t self = goro_id();
    int64_t backoff = 1000; /* goleak: 1us doubling to 100ms */
    for (;;) {
        int n = scan(m, o, self, NULL);
        if (n == 0)
            return 0;
        int64_t now = goro_nanotime();
        if (now >= deadline)
            break;
        int64_t d = backoff;
        if (d > deadline - now)
            d = deadline - now;
        sleep_ns(d);
        if (backoff < GORO_MS(100))
            backoff = backoff * 2 > GORO_MS(100) ? GORO_MS(100) : backoff * 2;
    }
    int n = scan(m, o, self, report);
    return n < 0 ? 0 : n;
}

int goro_leak_check(goro_leak_mark *m, const goro_leak_opts *o, FILE *report) {
    return check(m, o, report);
}

int goro_leak_verify_none(const goro_leak_opts *o, FILE *report) { return check(NULL, o, report); }
