/*
 * leakprof.c - provably leaked goroutines (Go 1.26's goroutineleak profile,
 * translated from GC reachability to channel references).
 *
 * A goroutine is provably leaked when it waits, with no deadline, on
 * channels that no one who can still run can ever reach. What we know about
 * references: those held through goro_opts.holds name their holder; all
 * others (goro_chan_make, goro_chan_retain) have an unknown holder, which
 * must be assumed able to run.
 *
 * Analysis (greatest fixed point):
 *   1. Candidates: goroutines WAITING with a channel reason (chan send,
 *      chan receive, select) and no deadline, plus the always-leaked NULL
 *      channel waits and empty selects. Everything else (running, runnable,
 *      sleeping, timed waits, I/O, sync waits, plain threads) may run.
 *      For each candidate, while it is pinned (goro__g_scan_begin), record
 *      its wait generation, its channels and each channel's references and
 *      holders.
 *   2. Start with every candidate in the set; repeatedly drop a candidate
 *      that waits on a channel with a reference of unknown holder, or held
 *      by a goroutine outside the set. What remains is the largest set of
 *      goroutines blocked on channels whose every reference is held inside
 *      the set: none of them can ever be woken.
 *   3. Confirm: pin each member again; if it is no longer in the same wait
 *      (generation changed) or a channel's references changed, it is treated
 *      as able to run and step 2 is redone. So the profile never lists a
 *      goroutine that was seen moving.
 * No world stop: each goroutine is pinned only while its own wait is read.
 * Memory: arrays sized once per run; nothing per goroutine on any hot path.
 */
#include "leak_internal.h"

#include <stdlib.h>
#include <string.h>

#include "../chan/chan_internal.h"
#include "../observe/debug_registry.h"

#define MAXCH 64   /* channels recorded per wait; more: treated as reachable */
#define MAXHOLD 64 /* holders recorded per channel; more: treated as reachable */

typedef struct chref {
    goro_chan *c;
    uint32_t refs, held;
    uint32_t nholders;
    goro__g *holders[MAXHOLD];
} chref;

typedef struct cand {
    goro__g *g;
    uint64_t id;
    uint64_t gen;
    bool always; /* NULL channel / no usable case: nothing can wake it */
    bool in;     /* in the leaked set */
    uint32_t nch;
    chref *ch; /* nch entries */
} cand;

static _Atomic int last_count;

int goro__leak_last_count(void) { return atomic_load(&last_count); }

static bool chan_reason(int r) {
    return r == GORO__WAIT_CHAN_SEND || r == GORO__WAIT_CHAN_RECV || r == GORO__WAIT_SELECT;
}
static bool nil_reason(int r) {
    return r == GORO__WAIT_CHAN_SEND_NIL || r == GORO__WAIT_CHAN_RECV_NIL ||
           r == GORO__WAIT_SELECT_NO_CASES;
}

/* Reads g's wait while pinned. Returns false if g is not a candidate. */
static bool read_wait(goro__g *g, cand *c, chref *buf) {
    /* Pin first (an acquire on the status a reused record is published
       with), then read the flags: they are this goroutine's. */
    uint32_t st;
    if (!goro__g_scan_begin(g, &st))
        return false;
    if (goro__leak_flags_skip(g)) {
        goro__g_scan_end(g);
        return false;
    }
    bool ok = false;
    int r = atomic_load_explicit(&g->waitreason, memory_order_relaxed);
    uint64_t wake = atomic_load_explicit(&g->wake, memory_order_acquire);
    /* (wake & 3) != 0: a waker (or the deadline) already won this wait and
       is about to ready it; it still shows WAITING until goro__ready. */
    if (st == GORO__G_WAITING && (wake & 3) == 0 && g->park_deadline < 0 &&
        (chan_reason(r) || nil_reason(r))) {
        c->g = g;
        c->id = g->id;
        c->gen = wake >> 2;
        c->always = nil_reason(r);
        c->nch = 0;
        c->ch = buf;
        ok = true;
        if (!c->always) {
            goro_chan *chans[MAXCH];
            size_t n = goro__g_wait_chans(g, chans, MAXCH);
            if (n > MAXCH) {
                ok = false; /* too many to follow: assume it can run */
            } else if (n == 0) {
                c->always = true; /* a select whose cases are all NULL */
            } else {
                for (size_t i = 0; i < n; i++) {
                    goro__chan_info info;
                    chref *cr = &buf[i];
                    cr->c = chans[i];
                    size_t h = goro__chan_refinfo(chans[i], &info, cr->holders, MAXHOLD);
                    cr->refs = info.refs;
                    cr->held = info.held;
                    cr->nholders = (uint32_t)(h > MAXHOLD ? MAXHOLD : h);
                    if (h > MAXHOLD || info.closed)
                        ok = false;
                }
                c->nch = (uint32_t)n;
            }
        }
    }
    goro__g_scan_end(g);
    return ok;
}

/* Whether g is a member (by record and id). */
static bool member(cand *cs, size_t n, goro__g *g) {
    /* leak_mark holds index+1 of the candidate for this run. */
    uint32_t k = g->leak_mark;
    return k > 0 && k <= n && cs[k - 1].g == g && cs[k - 1].in;
}

static void fixed_point(cand *cs, size_t n) {
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            cand *c = &cs[i];
            if (!c->in || c->always)
                continue;
            for (uint32_t j = 0; j < c->nch && c->in; j++) {
                chref *cr = &c->ch[j];
                if (cr->refs > cr->held) {
                    c->in = false; /* someone unknown holds it */
                    break;
                }
                for (uint32_t h = 0; h < cr->nholders; h++)
                    if (!member(cs, n, cr->holders[h])) {
                        c->in = false;
                        break;
                    }
            }
            if (!c->in)
                changed = true;
        }
    }
}

static bool same_chref(const chref *a, const chref *b) {
    if (a->c != b->c || a->refs != b->refs || a->held != b->held || a->nholders != b->nholders)
        return false;
    for (uint32_t h = 0; h < a->nholders; h++)
        if (a->holders[h] != b->holders[h])
            return false;
    return true;
}

/* Runs the analysis. Returns the candidates array (members have in=true)
   and its size; the caller frees both arrays. */
static cand *analyze(size_t *n_out, chref **pool_out) {
    size_t all = goro__allg_count();
    cand *cs = calloc(all + 1, sizeof *cs);
    /* One chref slab for every candidate's channels, grown as needed. */
    size_t pool_cap = 1024, pool_used = 0;
    chref *pool = malloc(pool_cap * sizeof *pool);
    chref *tmp = malloc(MAXCH * sizeof *tmp);
    size_t n = 0;
    if (!cs || !pool || !tmp) {
        free(cs);
        free(pool);
        free(tmp);
        *n_out = 0;
        *pool_out = NULL;
        return NULL;
    }
    for (size_t i = 0; i < all; i++) {
        goro__g *g = goro__allg_at(i);
        if (!g)
            continue;
        g->leak_mark = 0;
        cand c;
        if (!read_wait(g, &c, tmp))
            continue;
        if (pool_used + c.nch > pool_cap) {
            while (pool_used + c.nch > pool_cap)
                pool_cap *= 2;
            chref *np = realloc(pool, pool_cap * sizeof *pool);
            if (!np)
                continue;
            pool = np;
        }
        memcpy(&pool[pool_used], tmp, c.nch * sizeof *tmp);
        c.ch = (chref *)(uintptr_t)pool_used; /* an offset until the pool stops moving */
        pool_used += c.nch;
        c.in = true;
        cs[n] = c;
        n++;
        g->leak_mark = (uint32_t)n;
    }
    for (size_t i = 0; i < n; i++)
        cs[i].ch = pool + (uintptr_t)cs[i].ch;
    fixed_point(cs, n);
    /* Confirm every member is still in the very same wait. */
    for (int round = 0; round < 4; round++) {
        bool moved = false;
        for (size_t i = 0; i < n; i++) {
            cand *c = &cs[i];
            if (!c->in)
                continue;
            cand again;
            bool still = read_wait(c->g, &again, tmp) && again.id == c->id && again.gen == c->gen &&
                         again.nch == c->nch;
            for (uint32_t j = 0; still && j < c->nch; j++)
                still = same_chref(&c->ch[j], &tmp[j]);
            if (!still) {
                c->in = false;
                moved = true;
            }
        }
        if (!moved)
            break;
        fixed_point(cs, n);
    }
    free(tmp);
    *n_out = n;
    *pool_out = pool;
    return cs;
}

typedef struct leakset {
    cand *cs;
    size_t n;
} leakset;

static bool is_leaked(const leakset *ls, const goro__gcap *cap) {
    goro__g *g = cap->g;
    if (!g)
        return false;
    uint32_t k = g->leak_mark;
    return k > 0 && k <= ls->n && ls->cs[k - 1].g == g && ls->cs[k - 1].id == cap->id &&
           ls->cs[k - 1].in;
}

static const char *leak_suffix(const goro__gsnap *gs, void *arg) {
    return is_leaked(arg, &gs->cap) ? " (leaked)" : NULL;
}

static goro__lock prof_lock = GORO__LOCK_INIT; /* one analysis at a time (leak_mark) */

int goro_leak_profile_write(FILE *f, int debug) {
    goro__init();
    goro__lock_acquire(&prof_lock);
    size_t n;
    chref *pool;
    cand *cs = analyze(&n, &pool);
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += cs[i].in;
    atomic_store(&last_count, count);
    leakset ls = {cs, n};
    if (f) {
        goro__snapshot *s = goro__snapshot_take(debug >= 2 ? GORO__SNAP_DUMP : GORO__SNAP_NO_SELF);
        if (s) {
            goro__ow w;
            goro__ow_init_file(&w, f);
            if (debug >= 2) {
                goro__format_dump(&w, s, leak_suffix, &ls);
            } else {
                bool *keep = calloc(s->n + 1, sizeof *keep);
                if (keep) {
                    for (size_t i = 0; i < s->n; i++)
                        keep[i] = is_leaked(&ls, &s->gs[i].cap);
                    goro__profile_emit(&w, s, keep, "goroutineleak", debug);
                    free(keep);
                }
            }
            goro__ow_flush(&w);
            goro__snapshot_free(s);
        }
    }
    free(cs);
    free(pool);
    goro__lock_release(&prof_lock);
    return count;
}

/* --------------------------------------------------- GOROLEAKCHECK=1 */

static void exit_check(void) {
    goro__snapshot *s = goro__snapshot_take(GORO__SNAP_DUMP | GORO__SNAP_NO_SELF);
    if (!s)
        return;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!goro__leak_cap_skip(&s->gs[i].cap) && s->gs[i].cap.status == GORO__G_WAITING)
            n++;
    if (n > 0) {
        goro__ow w;
        goro__ow_init_fd(&w, 2);
        goro__ow_printf(&w, "goro: GOROLEAKCHECK: %zu goroutine%s still blocked at exit:\n", n,
                        n == 1 ? "" : "s");
        for (size_t i = 0; i < s->n; i++) {
            if (goro__leak_cap_skip(&s->gs[i].cap) || s->gs[i].cap.status != GORO__G_WAITING)
                continue;
            goro__ow_puts(&w, "\n");
            goro__leak_write_goroutine(&w, &s->gs[i], s->now);
        }
        goro__ow_flush(&w);
        goro__snapshot_free(s);
        /* _exit skips the rest of exit(): flush the program's own buffered
           output first, or a leak would also lose what it printed. */
        fflush(NULL);
        _exit(1);
    }
    goro__snapshot_free(s);
}

static long long leak_count(void) {
    /* Go's Profile.Count(): the last detection's result, stale until the
       next run (0 before the first) */
    return goro__leak_last_count();
}

static int leak_write(FILE *f, int debug) {
    int rc = goro_leak_profile_write(f, debug); /* the count found, or -errno */
    return rc < 0 ? -rc : 0;
}

static const goro__debug_profile leak_profile = {
    .name = "goroutineleak",
    .desc = "Stack traces of all leaked goroutines. Use debug=2 as a query parameter to export in "
            "the same format as an unrecovered panic.",
    .count = leak_count,
    .write = leak_write,
    .listed = true,
};

void goro__leak_init(void) {
    goro__debug_register_profile(&leak_profile);
    const char *e = getenv("GOROLEAKCHECK");
    if (e && strcmp(e, "1") == 0)
        atexit(exit_check);
}

void goro__leak_upcalls(goro__upcall_table *t) { t->leak_init = goro__leak_init; }
