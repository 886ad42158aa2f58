/*
 * sampleset.c - profile samples keyed by (stack, labels) with summed
 * values (profiles.h): the storage of the block, mutex and threadcreate
 * profiles, and the arithmetic of delta profiles (?seconds=N), which Go's
 * net/http/pprof computes by merging the later profile with the earlier one
 * scaled by -1.
 *
 * An open-addressing hash table of entry indexes over a growable entry
 * array; each entry owns one allocation holding its PCs and label strings.
 */
#include "profiles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct sentry {
    uintptr_t *pcs;
    int npcs;
    goro__kv *kv;
    int nkv;
    uint64_t hash;
    int64_t v[2];
    void *mem;
} sentry;

struct goro__sset {
    int nvalues;
    sentry *e;
    size_t n, cap;
    int64_t *slot; /* index + 1, 0 empty */
    size_t nslots;
};

static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 1099511628211ULL; }

static uint64_t key_hash(const uintptr_t *pcs, int npcs, const goro__kv *kv, int nkv) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < npcs; i++)
        h = mix(h, pcs[i]);
    for (int i = 0; i < nkv; i++) {
        for (const char *p = kv[i].key; *p; p++)
            h = mix(h, (unsigned char)*p);
        h = mix(h, 0x3d);
        for (const char *p = kv[i].value; *p; p++)
            h = mix(h, (unsigned char)*p);
        h = mix(h, 0x2c);
    }
    return h;
}

static bool key_eq(const sentry *e, const uintptr_t *pcs, int npcs, const goro__kv *kv, int nkv) {
    if (e->npcs != npcs || e->nkv != nkv ||
        (npcs && memcmp(e->pcs, pcs, (size_t)npcs * sizeof *pcs) != 0))
        return false;
    for (int i = 0; i < nkv; i++)
        if (strcmp(e->kv[i].key, kv[i].key) != 0 || strcmp(e->kv[i].value, kv[i].value) != 0)
            return false;
    return true;
}

goro__sset *goro__sset_new(int nvalues) {
    goro__sset *s = calloc(1, sizeof *s);
    if (s)
        s->nvalues = nvalues;
    return s;
}

void goro__sset_free(goro__sset *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].mem);
    free(s->e);
    free(s->slot);
    free(s);
}

static bool rehash(goro__sset *s) {
    size_t ns = s->nslots ? s->nslots * 2 : 64;
    int64_t *slot = calloc(ns, sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = s->e[i].hash & (ns - 1);
        while (slot[j])
            j = (j + 1) & (ns - 1);
        slot[j] = (int64_t)i + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->nslots = ns;
    return true;
}

bool goro__sset_add(goro__sset *s, const uintptr_t *pcs, int npcs, const goro__kv *kv, int nkv,
                    const int64_t *v) {
    if ((s->n + 1) * 2 > s->nslots && !rehash(s))
        return false;
    uint64_t h = key_hash(pcs, npcs, kv, nkv);
    size_t j = h & (s->nslots - 1);
    while (s->slot[j]) {
        sentry *e = &s->e[s->slot[j] - 1];
        if (e->hash == h && key_eq(e, pcs, npcs, kv, nkv)) {
            for (int i = 0; i < s->nvalues; i++)
                e->v[i] += v[i];
            return true;
        }
        j = (j + 1) & (s->nslots - 1);
    }
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 32;
        sentry *ne = realloc(s->e, c * sizeof *ne);
        if (!ne)
            return false;
        s->e = ne;
        s->cap = c;
    }
    size_t strs = 0;
    for (int i = 0; i < nkv; i++)
        strs += strlen(kv[i].key) + strlen(kv[i].value) + 2;
    size_t sz = (size_t)npcs * sizeof(uintptr_t) + (size_t)nkv * sizeof(goro__kv) + strs;
    char *mem = malloc(sz ? sz : 1);
    if (!mem)
        return false;
    sentry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->mem = mem;
    e->pcs = (uintptr_t *)mem;
    if (npcs)
        memcpy(e->pcs, pcs, (size_t)npcs * sizeof *pcs);
    e->npcs = npcs;
    e->kv = (goro__kv *)(mem + (size_t)npcs * sizeof(uintptr_t));
    e->nkv = nkv;
    char *p = (char *)(e->kv + nkv);
    for (int i = 0; i < nkv; i++) {
        size_t k = strlen(kv[i].key) + 1, vl = strlen(kv[i].value) + 1;
        memcpy(p, kv[i].key, k);
        e->kv[i].key = p;
        p += k;
        memcpy(p, kv[i].value, vl);
        e->kv[i].value = p;
        p += vl;
    }
    e->hash = h;
    for (int i = 0; i < s->nvalues; i++)
        e->v[i] = v[i];
    s->slot[j] = (int64_t)s->n + 1;
    s->n++;
    return true;
}

goro__sset *goro__sset_clone(const goro__sset *s) {
    goro__sset *c = goro__sset_new(s->nvalues);
    for (size_t i = 0; c && i < s->n; i++) {
        const sentry *e = &s->e[i];
        if (!goro__sset_add(c, e->pcs, e->npcs, e->kv, e->nkv, e->v)) {
            goro__sset_free(c);
            return NULL;
        }
    }
    return c;
}

goro__sset *goro__sset_diff(const goro__sset *cur, const goro__sset *base) {
    goro__sset *d = goro__sset_clone(cur);
    for (size_t i = 0; d && i < base->n; i++) {
        const sentry *e = &base->e[i];
        int64_t neg[2] = {-e->v[0], -e->v[1]};
        if (!goro__sset_add(d, e->pcs, e->npcs, e->kv, e->nkv, neg)) {
            goro__sset_free(d);
            return NULL;
        }
    }
    if (!d)
        return NULL;
    /* drop entries that cancelled out (as profile.Merge's compaction) */
    goro__sset *out = goro__sset_new(d->nvalues);
    for (size_t i = 0; out && i < d->n; i++) {
        const sentry *e = &d->e[i];
        bool zero = true;
        for (int k = 0; k < d->nvalues; k++)
            zero &= e->v[k] == 0;
        if (!zero && !goro__sset_add(out, e->pcs, e->npcs, e->kv, e->nkv, e->v)) {
            goro__sset_free(out);
            out = NULL;
        }
    }
    goro__sset_free(d);
    return out;
}

size_t goro__sset_len(const goro__sset *s) { return s->n; }

goro__psample goro__sset_at(const goro__sset *s, size_t i) {
    const sentry *e = &s->e[i];
    goro__psample p = {e->pcs, e->npcs, e->kv, e->nkv, {e->v[0], e->v[1]}, NULL};
    return p;
}

int goro__sset_write_proto(const goro__sset *s, const goro__pmeta *m, FILE *f) {
    goro__psample *ps = malloc((s->n ? s->n : 1) * sizeof *ps);
    if (!ps)
        return ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        ps[i] = goro__sset_at(s, i);
    goro__ow w;
    goro__ow_init_file(&w, f);
    int err = goro__proto_write_samples(&w, m, ps, s->n);
    int ferr = goro__ow_flush(&w);
    free(ps);
    return err ? err : ferr;
}

int goro__sset_delta_end(goro__sset *base, goro__sset *(*collect)(void),
                         int (*write)(const goro__sset *d, FILE *f, int64_t duration_ns), FILE *f,
                         int64_t duration_ns) {
    int err = 0;
    if (f) {
        goro__sset *cur = collect();
        goro__sset *d = cur ? goro__sset_diff(cur, base) : NULL;
        err = d ? write(d, f, duration_ns) : ENOMEM;
        goro__sset_free(d);
        goro__sset_free(cur);
    }
    goro__sset_free(base);
    return err;
}
