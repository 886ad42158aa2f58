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
 *  4. A blocked goroutine shows the goro call it is blocked in on top
 *     (a goroutine that faulted inside a goro call shows that call)
 *     (apiframes.c says which calls): the outermost public goro_* frame of
 *     the run dropped by rule 1 if it is one that shows, else, when the
 *     compiler turned the user's call into a jump and no public frame is
 *     left, the call its wait reason implies, at its entry.
 *  5. The goroutine's start function (goro_go's fn) is the bottom frame;
 *     when the compiler removed its frame (a tail call), it is added at its
 *     entry.
 *  6. If nothing is left, the frames that are not goro's are shown (a thread
 *     stopped in a C library call the walk could not get out of).
 * goro's internal frames are never shown, whatever the walk found: a stack
 * made only of them prints no frames.
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

enum { K_USER, K_INTERNAL, K_LIBC, K_UNKNOWN, K_OUTER };

static int kind_of(const goro__frame *f) {
    if (f->synthetic)
        return K_USER;
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

static const char *func_of(const goro__frame *f) { return f->sym->lines[f->line_idx].func; }

/* Rules 1-3. Returns the index of the last frame rule 1 dropped (-1). */
static int apply_hiding(goro__frames *fr) {
    int n = fr->n;
    int last_internal = -1;
    for (int i = 0; i < n; i++) {
        int k = kind_of(&fr->f[i]);
        if (k == K_INTERNAL)
            last_internal = i;
        else if (k != K_LIBC && k != K_UNKNOWN)
            break;
    }
    for (int i = 0; i < n; i++) {
        int k = kind_of(&fr->f[i]);
        fr->f[i].shown = i > last_internal && k != K_INTERNAL;
    }
    for (int i = n - 1; i > last_internal; i--) {
        int k = kind_of(&fr->f[i]);
        if (k == K_USER)
            break;
        fr->f[i].shown = false;
    }
    return last_internal;
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
        f->synthetic = false;
    }
    return s->n;
}

/* One frame for a function that is not on the stack, at its entry. */
static goro__frame synth(uintptr_t fn) {
    const goro__sym *s = goro__symbolize(fn + 1);
    goro__frame f = {.sym = s,
                     .pc = fn + 1,
                     .line_idx = s->n - 1,
                     .exact = true,
                     .shown = true,
                     .synthetic = true};
    return f;
}

/* Rule 4: the frame to put on top (*add), or an existing frame to show. */
static void top_call(goro__frames *fr, int dropped_to, const goro__stk *stk, uintptr_t *add) {
    *add = 0;
    /* A fault inside a goro call (goro_mutex_lock(NULL)) shows the call, as
       Go shows sync.(*Mutex).Lock above a nil dereference. */
    bool faulted = stk->nsig > 0;
    for (int i = dropped_to; i >= 0; i--) {
        const char *fn = func_of(&fr->f[i]);
        if (!goro__api_public(fn))
            continue;
        if ((goro__api_shown(fn) && stk->blocked) || faulted)
            fr->f[i].shown = true;
        return;
    }
    if (stk->blocked)
        *add = goro__api_for_reason(stk->reason);
}

bool goro__frames_build(const goro__stk *stk, goro__frames *out) {
    memset(out, 0, sizeof *out);
    int np = stk->n_head + stk->n_tail;
    /* Count logical frames first (symbolizing warms the cache). */
    int total = 0;
    for (int i = 0; i < stk->n_head; i++)
        total += goro__symbolize(stk->pcs[i])->n;
    for (int i = 0; i < stk->n_tail; i++)
        total += goro__symbolize(stk->tail[i])->n;
    if (np == 0 && !stk->start_fn)
        return true;
    /* Room for the synthesized top and bottom frames. */
    out->f = malloc((size_t)(total + 2) * sizeof *out->f);
    if (!out->f)
        return false;
    int at = 1; /* f[0] is kept for a synthesized top frame */
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
    goro__frames view = {.f = out->f + 1, .n = at - 1};
    int dropped_to = apply_hiding(&view);
    uintptr_t top = 0;
    top_call(&view, dropped_to, stk, &top);
    int first = 1;
    if (top) {
        out->f[0] = synth(top);
        first = 0;
    }
    /* Rule 5. */
    int last = -1;
    for (int i = at - 1; i >= first; i--)
        if (out->f[i].shown && !out->f[i].synthetic) {
            last = i;
            break;
        }
    if (stk->start_fn && !stk->truncated &&
        (last < 0 || out->f[last].sym->entry != stk->start_fn)) {
        goro__frame f = synth(stk->start_fn);
        bool internal = f.sym->lines[f.line_idx].internal;
        if (!internal || (last < 0 && !top))
            out->f[at++] = f;
    }
    /* Rule 6: nothing left (a thread stopped in a C library call whose
       caller the walk could not reach): its frames that are not goro's. */
    bool any = false;
    for (int i = first; i < at && !any; i++)
        any = out->f[i].shown;
    for (int i = 1; i < at && !any; i++)
        out->f[i].shown = kind_of(&out->f[i]) != K_INTERNAL;
    if (first)
        memmove(out->f, out->f + 1, (size_t)(at - 1) * sizeof *out->f);
    out->n = at - first;
    out->gap = stk->gap;
    for (int i = 0; i < out->n; i++)
        out->nshown += out->f[i].shown;
    return true;
}

void goro__frames_free(goro__frames *fr) {
    free(fr->f);
    fr->f = NULL;
    fr->n = fr->nshown = 0;
}

int goro__visible_pcs(const goro__stk *stk, uintptr_t *out) {
    goro__stk head = *stk;
    head.n_tail = 0;
    head.gap = 0;
    goro__frames fr;
    if (!goro__frames_build(&head, &fr))
        return 0;
    /* A physical PC is kept when any of its logical frames is shown; its
       frames are consecutive, the first with line_idx 0. */
    int m = 0;
    for (int i = 0; i < fr.n; i++) {
        bool shown = fr.f[i].shown;
        while (i + 1 < fr.n && fr.f[i + 1].line_idx > 0 && !fr.f[i + 1].synthetic &&
               fr.f[i + 1].sym == fr.f[i].sym)
            shown |= fr.f[++i].shown;
        if (shown)
            out[m++] = fr.f[i].pc;
    }
    goro__frames_free(&fr);
    return m;
}

const goro__symline *goro__creator_line(uintptr_t gopc, const goro__sym **sym_out) {
    if (gopc < 2)
        return NULL;
    const goro__sym *s = goro__symbolize(gopc);
    const goro__symline *l = &s->lines[0];
    /* goro's code, or start-up code (a thread function or main whose last
       statement was goro_go, a tail call): not the creator. */
    if (l->internal || (s->flags & GORO__SYM_OUTER))
        return NULL;
    *sym_out = s;
    return l;
}

const goro__symline *goro__creator(const goro__gcap *cap, const goro__sym **sym_out,
                                   uintptr_t *pc_out) {
    *pc_out = cap->gopc;
    const goro__symline *l = goro__creator_line(cap->gopc, sym_out);
    if (l || !cap->parent_fn)
        return l;
    *pc_out = cap->parent_fn + 1;
    return goro__creator_line(cap->parent_fn + 1, sym_out);
}

void goro__stk_note(goro__stk *stk, const goro__gcap *cap) {
    stk->start_fn = cap->is_thread ? 0 : cap->fn;
    stk->blocked = cap->status == GORO__G_WAITING;
    stk->reason = cap->reason;
}

bool goro__inlined_internal(const goro__sym *s, int i) {
    return i < s->n - 1 && s->lines[i].internal;
}
