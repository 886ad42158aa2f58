/*
 * text.c - the two text formats of Go's goroutine profile.
 *
 * debug=2 (runtime.Stack, panics, crashes, SIGQUIT), per goroutine:
 *
 *   goroutine <id> [<state>[<suffix>][, <N> minutes]]:
 *   <func>()                              physical frame
 *   \t<file>:<line> +0x<retpc - entry>
 *   <func>(...)                           inlined frame: no offset
 *   \t<file>:<line>
 *   ...<K> frames elided...               more than 50 + 50 frames shown
 *   created by <func> in goroutine <parent>
 *   \t<file>:<line> +0x<gopc - entry>
 *
 * N minutes: floor((now - waitsince) / 60 s), printed when >= 1 for waiting
 * and syscall states (Go's rule; waitsince is when the goroutine blocked).
 * "created by" is left out for goroutine 1 and when the creator is goro's
 * own code, as Go leaves out runtime creators. What debug info cannot name
 * prints as "??" (addr2line's word, and what panicparse accepts).
 *
 * debug=1, grouped (pprof.go printCountProfile):
 *
 *   <name> profile: total <N>
 *   <count> @ 0x<retpc> 0x<retpc> ...     the visible PCs (goro's own left out)
 *   # labels: {"k":"v", ...}              only when the goroutine has labels
 *   #\t0x<pc-1>\t<func>+0x<pc-1-entry>\t<file>:<line>    (tabwriter layout)
 *   <blank line>
 *
 * Groups: identical return-PC list and labels; sorted by count (descending)
 * then by the key text "@ 0x.. 0x..[\n# labels: ...]" (ascending, bytewise).
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

#include "profiles.h"
#include "tabwriter.h"

/* ------------------------------------------------------------ debug=2 */

/* The C library's own sources (its .S syscall stubs, paths relative to
   its build tree, when its debug info is installed) print as "??:0", as
   without debug info: tools that read Go traces (panicparse) take only
   absolute .c/.s/.go paths. So do paths that climb out of a build tree
   ("../../src/libsanitizer/...", a sanitizer runtime's interceptors): no
   reader can open them, and panicparse rejects them. */
static bool libc_source_hidden(const goro__frame *f, const char *file) {
    if (!file)
        return false;
    if (strncmp(file, "../", 3) == 0)
        return true;
    if (!(f->sym->flags & GORO__SYM_LIBC))
        return false;
    size_t n = strlen(file);
    return file[0] != '/' || n < 2 || strcmp(file + n - 2, ".c") != 0;
}

static void put_frame(goro__ow *w, const goro__frame *f) {
    const goro__symline *l = &f->sym->lines[f->line_idx];
    goro__ow_puts(w, l->func ? l->func : "??");
    goro__ow_puts(w, f->inlined ? "(...)\n\t" : "()\n\t");
    bool hide = libc_source_hidden(f, l->file);
    goro__ow_puts(w, l->file && !hide ? l->file : "??");
    goro__ow_write(w, ":", 1);
    goro__ow_dec(w, hide ? 0 : l->line);
    if (!f->inlined && f->sym->entry) {
        uintptr_t pc = f->exact ? f->pc - 1 : f->pc;
        if (pc > f->sym->entry) {
            goro__ow_write(w, " +", 2);
            goro__ow_hex(w, pc - f->sym->entry);
        }
    }
    goro__ow_write(w, "\n", 1);
}

static void put_header(goro__ow *w, const goro__gcap *cap, int64_t now, const char *suffix) {
    goro__ow_puts(w, "goroutine ");
    goro__ow_dec(w, (int64_t)cap->id);
    goro__ow_puts(w, " [");
    goro__ow_puts(w, goro__status_str(cap->status, cap->reason));
    if (suffix)
        goro__ow_puts(w, suffix);
    if ((cap->status == GORO__G_WAITING || cap->status == GORO__G_SYSCALL) && cap->waitsince > 0 &&
        now > cap->waitsince) {
        int64_t minutes = (now - cap->waitsince) / (60LL * 1000000000LL);
        if (minutes >= 1) {
            goro__ow_puts(w, ", ");
            goro__ow_dec(w, minutes);
            goro__ow_puts(w, " minutes");
        }
    }
    goro__ow_puts(w, "]:\n");
}

static void put_created_by(goro__ow *w, const goro__gcap *cap) {
    if (cap->id == 1 || cap->gopc < 2)
        return;
    const goro__sym *s = NULL;
    uintptr_t pc;
    const goro__symline *l = goro__creator(cap, &s, &pc);
    if (!l)
        return;
    goro__ow_puts(w, "created by ");
    goro__ow_puts(w, l->func ? l->func : "??");
    if (cap->parent_id) {
        goro__ow_puts(w, " in goroutine ");
        goro__ow_dec(w, (int64_t)cap->parent_id);
    }
    goro__ow_puts(w, "\n\t");
    goro__ow_puts(w, l->file ? l->file : "??");
    goro__ow_write(w, ":", 1);
    goro__ow_dec(w, l->line);
    if (s->entry && pc > s->entry + 1) {
        goro__ow_write(w, " +", 2);
        goro__ow_hex(w, pc - s->entry);
    }
    goro__ow_write(w, "\n", 1);
}

#define INNER_FRAMES 50
#define OUTER_FRAMES 50

void goro__format_header(goro__ow *w, const goro__gcap *cap, int64_t now, const char *suffix) {
    put_header(w, cap, now, suffix);
}

void goro__format_goroutine(goro__ow *w, const goro__gsnap *gs, int64_t now,
                            const char *state_suffix) {
    put_header(w, &gs->cap, now, state_suffix);
    goro__format_body(w, gs);
}

void goro__format_body(goro__ow *w, const goro__gsnap *gs) {
    if (gs->cap.unavailable) {
        goro__ow_puts(w, "\tgoroutine running on other thread; stack unavailable\n");
        put_created_by(w, &gs->cap);
        return;
    }
    goro__frames fr;
    if (!goro__frames_build(&gs->stk, &fr)) {
        w->err = w->err ? w->err : ENOMEM;
        return;
    }
    /* Go prints the innermost 50 and the outermost 50 frames. Frames the
       capture dropped between its head and tail (fr.gap) count as elided. */
    int64_t total = fr.nshown + fr.gap;
    bool elide = total > INNER_FRAMES + OUTER_FRAMES;
    int shown = 0;
    for (int i = 0; i < fr.n; i++) {
        if (!fr.f[i].shown)
            continue;
        if (elide && fr.nshown > INNER_FRAMES + OUTER_FRAMES) {
            if (shown >= INNER_FRAMES && shown < fr.nshown - OUTER_FRAMES) {
                if (shown == INNER_FRAMES) {
                    goro__ow_puts(w, "...");
                    goro__ow_dec(w, total - INNER_FRAMES - OUTER_FRAMES);
                    goro__ow_puts(w, " frames elided...\n");
                }
                shown++;
                continue;
            }
        } else if (elide && fr.f[i].gap_before) {
            goro__ow_puts(w, "...");
            goro__ow_dec(w, fr.gap);
            goro__ow_puts(w, " frames elided...\n");
        }
        shown++;
        put_frame(w, &fr.f[i]);
    }
    goro__frames_free(&fr);
    put_created_by(w, &gs->cap);
}

void goro__format_dump(goro__ow *w, const goro__snapshot *s,
                       const char *(*suffix)(const goro__gsnap *, void *), void *arg) {
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            goro__ow_write(w, "\n", 1);
        goro__format_goroutine(w, &s->gs[i], s->now, suffix ? suffix(&s->gs[i], arg) : NULL);
    }
}

/* ------------------------------------------------------------ grouping */

#define MAX_LABELS 64

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t str_hash(uint64_t h, const char *s) {
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return mix(h, 0xff);
}

static uint64_t rec_hash(const uintptr_t *pcs, int npcs, const goro__kv *kv, int nkv,
                         bool has_labels) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < npcs; i++)
        h = mix(h, pcs[i]);
    h = mix(h, (uint64_t)npcs);
    h = mix(h, has_labels);
    for (int i = 0; i < nkv; i++) {
        h = str_hash(h, kv[i].key);
        h = str_hash(h, kv[i].value);
    }
    return h;
}

typedef struct grec {
    const goro__gsnap *g;
    uintptr_t *pcs; /* into the visible-PC buffer */
    int npcs;
    uint64_t hash;
    int64_t count;
} grec;

static bool same_labels(const goro__gsnap *a, const goro__gsnap *b) {
    if (a->cap.labels == b->cap.labels &&
        (a->cap.name == b->cap.name ||
         (a->cap.name && b->cap.name && strcmp(a->cap.name, b->cap.name) == 0)))
        return true;
    goro__kv ka[MAX_LABELS], kb[MAX_LABELS];
    int na = goro__effective_labels(&a->cap, ka, MAX_LABELS);
    int nb = goro__effective_labels(&b->cap, kb, MAX_LABELS);
    bool la = a->cap.labels || a->cap.name, lb = b->cap.labels || b->cap.name;
    if (na != nb || la != lb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(ka[i].key, kb[i].key) || strcmp(ka[i].value, kb[i].value))
            return false;
    return true;
}

static bool same_record(const grec *a, const goro__gsnap *b, const uintptr_t *pcs, int npcs) {
    if (a->npcs != npcs)
        return false;
    if (memcmp(a->pcs, pcs, (size_t)npcs * sizeof(uintptr_t)) != 0)
        return false;
    return same_labels(a->g, b);
}

static char *make_key(const goro__gsnap *g, const uintptr_t *pcs, int npcs, size_t *labels_at) {
    goro__ow w;
    goro__ow_init_mem(&w);
    goro__ow_write(&w, "@", 1);
    for (int i = 0; i < npcs; i++) {
        goro__ow_write(&w, " ", 1);
        goro__ow_hex(&w, pcs[i]);
    }
    goro__ow_flush(&w);
    *labels_at = w.mem_len;
    if (g->cap.labels || g->cap.name) {
        goro__kv kv[MAX_LABELS];
        int n = goro__effective_labels(&g->cap, kv, MAX_LABELS);
        char *ls = goro__labels_string(kv, n);
        if (!ls) {
            free(w.mem);
            return NULL;
        }
        goro__ow_puts(&w, "\n# labels: ");
        goro__ow_puts(&w, ls);
        free(ls);
    }
    if (goro__ow_flush(&w)) {
        free(w.mem);
        return NULL;
    }
    if (!w.mem)
        return strdup("@");
    return w.mem;
}

static int cmp_groups(const void *x, const void *y) {
    const goro__pgroup *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->key, b->key);
}

goro__pgroup *goro__profile_groups(const goro__snapshot *s, const bool *keep, size_t *ngroups,
                                   int64_t *total) {
    size_t cap = 16;
    while (cap < s->n * 2)
        cap *= 2;
    size_t npc = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!keep || keep[i])
            npc += (size_t)s->gs[i].stk.n_head + 2; /* + synthesized frames */
    int32_t *tab = malloc(cap * sizeof *tab);
    grec *recs = malloc((s->n ? s->n : 1) * sizeof *recs);
    uintptr_t *vbuf = malloc((npc ? npc : 1) * sizeof *vbuf);
    if (!tab || !recs || !vbuf) {
        free(tab);
        free(recs);
        free(vbuf);
        return NULL;
    }
    memset(tab, 0xff, cap * sizeof *tab);
    size_t nrec = 0, used = 0;
    int64_t tot = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (keep && !keep[i])
            continue;
        const goro__gsnap *g = &s->gs[i];
        tot++;
        uintptr_t *pcs = vbuf + used;
        int npcs = goro__visible_pcs(&g->stk, pcs);
        goro__kv kv[MAX_LABELS];
        int nkv = 0;
        bool has = g->cap.labels || g->cap.name;
        if (has)
            nkv = goro__effective_labels(&g->cap, kv, MAX_LABELS);
        uint64_t h = rec_hash(pcs, npcs, kv, nkv, has);
        size_t j = h & (cap - 1);
        for (;;) {
            int32_t r = tab[j];
            if (r < 0) {
                tab[j] = (int32_t)nrec;
                recs[nrec++] = (grec){g, pcs, npcs, h, 1};
                used += (size_t)npcs; /* keep this record's PCs */
                break;
            }
            if (recs[r].hash == h && same_record(&recs[r], g, pcs, npcs)) {
                recs[r].count++;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
    }
    free(tab);
    goro__pgroup *out = calloc(nrec ? nrec : 1, sizeof *out);
    if (!out) {
        free(recs);
        free(vbuf);
        return NULL;
    }
    for (size_t i = 0; i < nrec; i++) {
        out[i].first = recs[i].g;
        out[i].count = recs[i].count;
        out[i].npcs = recs[i].npcs;
        out[i].pcs = malloc((size_t)(recs[i].npcs ? recs[i].npcs : 1) * sizeof(uintptr_t));
        if (out[i].pcs)
            memcpy(out[i].pcs, recs[i].pcs, (size_t)recs[i].npcs * sizeof(uintptr_t));
        out[i].key =
            out[i].pcs ? make_key(recs[i].g, recs[i].pcs, recs[i].npcs, &out[i].labels_at) : NULL;
        if (!out[i].key) {
            free(recs);
            free(vbuf);
            goro__profile_groups_free(out, nrec);
            return NULL;
        }
    }
    free(recs);
    free(vbuf);
    qsort(out, nrec, sizeof *out, cmp_groups);
    *ngroups = nrec;
    *total = tot;
    return out;
}

void goro__profile_groups_free(goro__pgroup *g, size_t n) {
    if (!g)
        return;
    for (size_t i = 0; i < n; i++) {
        free(g[i].key);
        free(g[i].pcs);
    }
    free(g);
}

/* ------------------------------------------------------------ debug=1 */

static void put_record_frames(goro__ow *w, goro__tw *tw, const goro__pgroup *gr) {
    /* The leaf keeps its exact-PC flag only if it is still the leaf. */
    bool leaf_exact = gr->first->stk.leaf_exact && gr->npcs > 0 && gr->first->stk.n_head > 0 &&
                      gr->pcs[0] == gr->first->stk.pcs[0];
    goro__format_pcs_frames(w, tw, gr->pcs, gr->npcs, leaf_exact);
}

void goro__format_pcs_frames(goro__ow *w, goro__tw *tw, const uintptr_t *pcs, int npcs,
                             bool leaf_exact) {
    goro__stk head;
    memset(&head, 0, sizeof head);
    head.pcs = (uintptr_t *)pcs;
    head.n_head = npcs;
    head.leaf_exact = leaf_exact; /* trampolines are gone from the visible list */
    goro__frames fr;
    if (!goro__frames_build(&head, &fr)) {
        w->err = w->err ? w->err : ENOMEM;
        return;
    }
    /* Already filtered by goro__visible_pcs; only goro's code inlined into
       a shown goro call (its entry, synthesized) stays hidden. */
    for (int i = 0; i < fr.n; i++)
        fr.f[i].shown = !goro__inlined_internal(fr.f[i].sym, fr.f[i].line_idx);
    char buf[40];
    for (int i = 0; i < fr.n; i++) {
        const goro__frame *f = &fr.f[i];
        if (!f->shown)
            continue;
        const goro__symline *l = &f->sym->lines[f->line_idx];
        uintptr_t pc = f->pc - 1;
        goro__tw_cell(tw, "#", 1);
        if (!l->func) {
            goro__tw_endline(tw, buf, goro__fmt_hex(buf, pc));
            continue;
        }
        goro__tw_cell(tw, buf, goro__fmt_hex(buf, pc));
        goro__ow fn;
        goro__ow_init_mem(&fn);
        goro__ow_puts(&fn, l->func);
        goro__ow_write(&fn, "+", 1);
        goro__ow_hex(&fn, f->sym->entry && pc >= f->sym->entry ? pc - f->sym->entry : 0);
        goro__ow_flush(&fn);
        goro__tw_cell(tw, fn.mem ? fn.mem : "", fn.mem_len);
        free(fn.mem);
        goro__ow_init_mem(&fn);
        goro__ow_puts(&fn, l->file ? l->file : "??");
        goro__ow_write(&fn, ":", 1);
        goro__ow_dec(&fn, l->line);
        goro__ow_flush(&fn);
        goro__tw_endline(tw, fn.mem ? fn.mem : "", fn.mem_len);
        free(fn.mem);
    }
    goro__frames_free(&fr);
    goro__tw_flush(tw);
}

static int text_grouped(goro__ow *w, const goro__snapshot *s, const bool *keep, const char *name) {
    size_t ng = 0;
    int64_t total = 0;
    goro__pgroup *gr = goro__profile_groups(s, keep, &ng, &total);
    if (!gr)
        return ENOMEM;
    goro__ow_puts(w, name);
    goro__ow_puts(w, " profile: total ");
    goro__ow_dec(w, total);
    goro__ow_write(w, "\n", 1);
    goro__tw tw;
    goro__tw_init(&tw, w);
    for (size_t i = 0; i < ng; i++) {
        goro__ow_dec(w, gr[i].count);
        goro__ow_write(w, " ", 1);
        goro__ow_puts(w, gr[i].key);
        goro__ow_write(w, "\n", 1);
        put_record_frames(w, &tw, &gr[i]);
        goro__ow_write(w, "\n", 1);
    }
    goro__tw_free(&tw);
    goro__profile_groups_free(gr, ng);
    return w->err;
}

int goro__profile_emit(goro__ow *w, const goro__snapshot *s, const bool *keep, const char *name,
                       int debug) {
    if (debug <= 0)
        return goro__proto_write(w, s, keep, name);
    if (debug == 1)
        return text_grouped(w, s, keep, name);
    goro__format_dump(w, s, NULL, NULL);
    return w->err;
}
