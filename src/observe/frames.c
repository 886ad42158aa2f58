/*
 * frames.c - from return PCs to the logical frames a trace prints, and
 * which of them are hidden.
 *
 * Go hides its runtime in every trace; goro hides itself the same way
 * (api.md: a goroutine blocked in goro_chan_send called from sender shows
 * sender as its top frame). The rules, applied to the logical frames
 * (inlined calls expanded), innermost first:
 *
 *  1. Top: the longest leading run made only of goro frames and of C
 *     library / unsymbolized frames is dropped, up to its last goro frame
 *     (a thread asleep in syscall() under goro__park loses both; a busy
 *     goroutine interrupted inside memcpy keeps memcpy).
 *  2. Bottom: trailing goro frames (the entry trampoline, goroutine start),
 *     C start-up frames (_start, __libc_start_*, start_thread, clone) and
 *     frames nothing can name are dropped.
 *  3. Anywhere else, goro frames are dropped.
 *  4. If nothing is left, everything is shown (as Go does).
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

enum { K_USER, K_INTERNAL, K_LIBC, K_UNKNOWN, K_OUTER };

static int kind_of(const goro__frame *f) {
    if (f->trampoline)
        return K_INTERNAL; /* a signal trampoline is hidden like goro's frames */
    const goro__symline *l = &f->sym->lines[f->line_idx];
    if (l->internal)
        return K_INTERNAL;
    if (f->sym->flags & GORO__SYM_OUTER)
        return K_OUTER;
    if (f->sym->flags & GORO__SYM_LIBC)
        return K_LIBC;
    if (!(f->sym->flags & GORO__SYM_FOUND))
        return K_UNKNOWN;
    return K_USER;
}

static void apply_hiding(goro__frames *fr) {
    int n = fr->n;
    int *kind = malloc((size_t)(n ? n : 1) * sizeof *kind);
    for (int i = 0; i < n; i++) {
        fr->f[i].shown = true;
        if (kind)
            kind[i] = kind_of(&fr->f[i]);
    }
    if (!kind) {
        fr->nshown = n;
        return;
    }
    /* 1. top */
    int last_internal = -1;
    for (int i = 0; i < n; i++) {
        if (kind[i] == K_INTERNAL)
            last_internal = i;
        else if (kind[i] != K_LIBC && kind[i] != K_UNKNOWN)
            break;
    }
    for (int i = 0; i <= last_internal; i++)
        fr->f[i].shown = false;
    /* 2. bottom */
    for (int i = n - 1; i > last_internal; i--) {
        if (kind[i] == K_INTERNAL || kind[i] == K_OUTER || kind[i] == K_LIBC ||
            kind[i] == K_UNKNOWN)
            fr->f[i].shown = false;
        else
            break;
    }
    /* 3. anywhere */
    for (int i = 0; i < n; i++)
        if (kind[i] == K_INTERNAL)
            fr->f[i].shown = false;
    int shown = 0;
    for (int i = 0; i < n; i++)
        shown += fr->f[i].shown;
    /* 4. nothing left */
    if (shown == 0) {
        for (int i = 0; i < n; i++)
            fr->f[i].shown = true;
        shown = n;
    }
    fr->nshown = shown;
    free(kind);
}

static int expand(goro__frame *out, int at, uintptr_t pc, bool exact, bool gap_before,
                  bool trampoline) {
    const goro__sym *s = goro__symbolize(pc);
    for (int j = 0; j < s->n; j++) {
        goro__frame *f = &out[at + j];
        f->sym = s;
        f->pc = pc;
        f->line_idx = j;
        f->inlined = j < s->n - 1;
        f->exact = exact;
        f->shown = true;
        f->gap_before = gap_before && j == 0;
        f->trampoline = trampoline;
    }
    return s->n;
}

bool goro__frames_build(const goro__stk *stk, goro__frames *out) {
    memset(out, 0, sizeof *out);
    int np = stk->n_head + stk->n_tail;
    if (np == 0)
        return true;
    /* Count logical frames first (symbolizing warms the cache). */
    int total = 0;
    for (int i = 0; i < stk->n_head; i++)
        total += goro__symbolize(stk->pcs[i])->n;
    for (int i = 0; i < stk->n_tail; i++)
        total += goro__symbolize(stk->tail[i])->n;
    out->f = malloc((size_t)total * sizeof *out->f);
    if (!out->f)
        return false;
    int at = 0;
    for (int i = 0; i < stk->n_head; i++) {
        bool exact = i == 0 && stk->leaf_exact, tramp = false;
        for (int k = 0; k < stk->nsig; k++) {
            exact |= stk->sig_at[k] == i;
            tramp |= stk->sig_at[k] == i + 1;
        }
        at += expand(out->f, at, stk->pcs[i], exact, false, tramp);
    }
    for (int i = 0; i < stk->n_tail; i++)
        at += expand(out->f, at, stk->tail[i], false, i == 0 && stk->gap > 0, false);
    out->n = at;
    out->gap = stk->gap;
    apply_hiding(out);
    return true;
}

void goro__frames_free(goro__frames *fr) {
    free(fr->f);
    fr->f = NULL;
    fr->n = fr->nshown = 0;
}

/* The same rules on physical PCs (a PC counts as goro's own when the
   function it physically belongs to is), for profiles: cheap, no allocation. */
static int pc_kind(uintptr_t pc) {
    const goro__sym *s = goro__symbolize(pc);
    if (s->lines[s->n - 1].internal)
        return K_INTERNAL;
    if (s->flags & GORO__SYM_OUTER)
        return K_OUTER;
    if (s->flags & GORO__SYM_LIBC)
        return K_LIBC;
    if (!(s->flags & GORO__SYM_FOUND))
        return K_UNKNOWN;
    return K_USER;
}

int goro__visible_pcs(const goro__stk *stk, uintptr_t *out) {
    int n = stk->n_head;
    unsigned char kind[GORO__DUMP_HEAD];
    if (n > GORO__DUMP_HEAD)
        n = GORO__DUMP_HEAD;
    for (int i = 0; i < n; i++)
        kind[i] = (unsigned char)pc_kind(stk->pcs[i]);
    for (int k = 0; k < stk->nsig; k++)
        if (stk->sig_at[k] >= 1 && stk->sig_at[k] <= n)
            kind[stk->sig_at[k] - 1] = K_INTERNAL;
    int last_internal = -1;
    for (int i = 0; i < n; i++) {
        if (kind[i] == K_INTERNAL)
            last_internal = i;
        else if (kind[i] != K_LIBC && kind[i] != K_UNKNOWN)
            break;
    }
    int end = n;
    while (end - 1 > last_internal && (kind[end - 1] == K_INTERNAL || kind[end - 1] == K_OUTER ||
                                       kind[end - 1] == K_LIBC || kind[end - 1] == K_UNKNOWN))
        end--;
    int m = 0;
    for (int i = last_internal + 1; i < end; i++)
        if (kind[i] != K_INTERNAL)
            out[m++] = stk->pcs[i];
    if (m == 0) {
        for (int i = 0; i < n; i++)
            out[i] = stk->pcs[i];
        m = n;
    }
    return m;
}

const goro__symline *goro__creator_line(uintptr_t gopc, const goro__sym **sym_out) {
    if (gopc < 2)
        return NULL;
    const goro__sym *s = goro__symbolize(gopc);
    const goro__symline *l = &s->lines[0];
    if (l->internal)
        return NULL;
    *sym_out = s;
    return l;
}
