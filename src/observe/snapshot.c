/*
 * snapshot.c - every visible goroutine, one at a time.
 *
 * Go >= 1.19 takes its goroutine profile with an O(1) stop-the-world; goro
 * takes none: it walks allgs (an append-only registry, readable without a
 * lock) up to the count it saw at the start, and captures each record on
 * its own (capture.c pins or pauses only that goroutine, for one walk).
 * Goroutines created after the start are not included (as in Go); one that
 * ends meanwhile is skipped; a record reused by a new goroutine is read
 * once, after it is pinned, so no goroutine can be listed twice.
 *
 * The caller comes first, as "running" (runtime.Stack's order), when it is a
 * goroutine or goroutine 1; a plain thread that is not inside the runtime
 * (the debug server, the SIGQUIT dumper) is not a goroutine and is left out.
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    uintptr_t data[];
} chunk;

static uintptr_t *arena_alloc(goro__snapshot *s, size_t n) {
    chunk *c = (chunk *)s->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        chunk *nc = malloc(sizeof(chunk) + cap * sizeof(uintptr_t));
        if (!nc)
            return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        s->arena = (char *)nc;
        c = nc;
    }
    uintptr_t *p = c->data + c->used;
    c->used += n;
    return p;
}

/* Moves the captured PCs from the scratch buffers into the arena. */
static bool keep_stack(goro__snapshot *s, goro__gsnap *gs, const uintptr_t *head,
                       const uintptr_t *tail) {
    int n = gs->stk.n_head + gs->stk.n_tail;
    uintptr_t *p = n ? arena_alloc(s, (size_t)n) : NULL;
    if (n && !p)
        return false;
    if (gs->stk.n_head)
        memcpy(p, head, (size_t)gs->stk.n_head * sizeof *p);
    if (gs->stk.n_tail)
        memcpy(p + gs->stk.n_head, tail, (size_t)gs->stk.n_tail * sizeof *p);
    gs->stk.pcs = p;
    gs->stk.tail = p ? p + gs->stk.n_head : NULL;
    return true;
}

/* Records and parked stacks are cold: each goroutine touches its own pages.
   Prefetching a few records ahead (and the top of the next stack) overlaps
   those misses. Reading ctx.sp of a record that is not pinned is a race,
   harmless for a prefetch hint (a prefetch never faults). */
#define PF_RECORDS 4
#define PF_STACK_LINES 8

static inline void prefetch_record(goro__g *g) {
    if (!g)
        return;
    for (size_t off = 0; off < sizeof(goro__g); off += 64)
        __builtin_prefetch((const char *)g + off);
}

static inline void prefetch_stack(goro__g *g) {
#if !defined(GORO__TSAN)
    if (!g)
        return;
    const char *sp = __atomic_load_n((char *const *)&g->ctx.sp, __ATOMIC_RELAXED);
    if (sp < (const char *)g->stack_lo || sp >= (const char *)g->stack_hi)
        return;
    for (int i = 0; i < PF_STACK_LINES; i++)
        __builtin_prefetch(sp + 64 * i);
#else
    (void)g;
#endif
}

static bool self_listed(goro__g *self) {
    return self && !self->is_g0 && !self->system && (!self->is_thread || self->id == 1);
}

goro__snapshot *goro__snapshot_take(unsigned flags) {
    bool dump = flags & GORO__SNAP_DUMP;
    int max = dump ? GORO__DUMP_HEAD : GORO__PROF_DEPTH;
    int ntail = dump ? GORO__DUMP_TAIL : 0;
    goro__snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->now = goro__nanotime();
    size_t nall = goro__allg_count();
    s->gs = calloc(nall + 1, sizeof *s->gs);
    uintptr_t *head = malloc((size_t)max * sizeof *head);
    uintptr_t *tail = ntail ? malloc((size_t)ntail * sizeof *tail) : NULL;
    if (!s->gs || !head || (ntail && !tail))
        goto fail;

    goro__g *self = goro__getg_maybe();
    bool in_order = flags & GORO__SNAP_SELF_IN_ORDER;
    if (!(flags & GORO__SNAP_NO_SELF) && !in_order && self_listed(self)) {
        goro__gsnap *gs = &s->gs[s->n];
        gs->stk.pcs = head;
        gs->stk.tail = tail;
        goro__capture_self(self, &gs->cap, &gs->stk, max, ntail);
        gs->cap.status = GORO__G_RUNNING;
        gs->current = true;
        if (!keep_stack(s, gs, head, tail)) {
            goro__gcap_clear(&gs->cap);
            goto fail;
        }
        s->n++;
    }
    for (size_t i = 0; i < PF_RECORDS && i < nall; i++)
        prefetch_record(goro__allg_at(i));
    for (size_t i = 0; i < nall; i++) {
        goro__g *g = goro__allg_at(i);
        if (i + PF_RECORDS < nall)
            prefetch_record(goro__allg_at(i + PF_RECORDS));
        if (i + 1 < nall)
            prefetch_stack(goro__allg_at(i + 1));
        if (!g)
            continue;
        goro__gsnap *gs = &s->gs[s->n];
        gs->stk.pcs = head;
        gs->stk.tail = tail;
        if (g == self) {
            if (!in_order || (flags & GORO__SNAP_NO_SELF))
                continue;
            uint32_t st = atomic_load_explicit(&g->status, memory_order_relaxed);
            if (!goro__g_visible(g, st))
                continue;
            goro__capture_self(self, &gs->cap, &gs->stk, max, ntail);
            gs->current = true;
        } else {
            int r = goro__capture_other(g, &gs->cap, &gs->stk, max, ntail);
            if (r == GORO__CAP_SKIP)
                continue;
        }
        if (!keep_stack(s, gs, head, tail)) {
            goro__gcap_clear(&gs->cap);
            goto fail;
        }
        s->n++;
    }
    free(head);
    free(tail);
    return s;
fail:
    free(head);
    free(tail);
    goro__snapshot_free(s);
    return NULL;
}

void goro__snapshot_free(goro__snapshot *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        goro__gcap_clear(&s->gs[i].cap);
    free(s->gs);
    chunk *c = (chunk *)s->arena;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(s);
}
