/*
 * pprof_decode.h - a small reader of gzipped profile.proto for the tests:
 * samples (values, location ids, string labels), locations (their
 * functions, innermost first), functions (names), the string table, the
 * sample types, period and duration. Enough to check what a profile says
 * without `go tool pprof`.
 */
#ifndef GORO_TESTS_PPROF_DECODE_H
#define GORO_TESTS_PPROF_DECODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PP_MAX_LOCS 256
#define PP_MAX_LABELS 8
#define PP_MAX_LINES 8

typedef struct pp_sample {
    int64_t v[4];
    int nv;
    uint64_t loc[PP_MAX_LOCS];
    int nloc;
    int64_t lkey[PP_MAX_LABELS], lstr[PP_MAX_LABELS];
    int nlabel;
} pp_sample;

typedef struct pp_location {
    uint64_t id;
    uint64_t func[PP_MAX_LINES]; /* innermost first */
    int nfunc;
} pp_location;

typedef struct pp_function {
    uint64_t id;
    int64_t name;
} pp_function;

typedef struct pp_profile {
    pp_sample *s;
    size_t ns;
    pp_location *l;
    size_t nl;
    pp_function *f;
    size_t nf;
    char **str;
    size_t nstr;
    int64_t type[4], unit[4];
    int ntypes;
    int64_t period, duration, ptype, punit;
} pp_profile;

typedef struct pp_buf {
    const uint8_t *p, *end;
} pp_buf;

static inline bool pp_varint(pp_buf *b, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; sh < 64 && b->p < b->end; sh += 7) {
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Next field: its number, wire type, and (varint) value or (bytes) slice. */
static inline bool pp_field(pp_buf *b, int *field, int *wt, uint64_t *v, pp_buf *sub) {
    uint64_t key = 0;
    *v = 0;
    sub->p = sub->end = NULL;
    if (b->p >= b->end || !pp_varint(b, &key))
        return false;
    *field = (int)(key >> 3);
    *wt = (int)(key & 7);
    if (*wt == 0)
        return pp_varint(b, v);
    if (*wt == 2) {
        uint64_t n;
        if (!pp_varint(b, &n) || n > (uint64_t)(b->end - b->p))
            return false;
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return true;
    }
    if (*wt == 1) {
        b->p += 8;
        return b->p <= b->end;
    }
    if (*wt == 5) {
        b->p += 4;
        return b->p <= b->end;
    }
    return false;
}

/* Repeated numbers, packed or not. */
static inline void pp_nums(int wt, uint64_t v, pp_buf *sub, uint64_t *out, int *n, int max) {
    if (wt == 0) {
        if (*n < max)
            out[(*n)++] = v;
        return;
    }
    uint64_t x;
    while (sub->p < sub->end && pp_varint(sub, &x))
        if (*n < max)
            out[(*n)++] = x;
}

#define PP_PUSH(arr, n, item)                                                                      \
    do {                                                                                           \
        arr = realloc(arr, ((n) + 1) * sizeof *(arr));                                             \
        arr[(n)++] = (item);                                                                       \
    } while (0)

static inline void pp_free(pp_profile *p) {
    for (size_t i = 0; i < p->nstr; i++)
        free(p->str[i]);
    free(p->str);
    free(p->s);
    free(p->l);
    free(p->f);
    memset(p, 0, sizeof *p);
}

/* Gunzips and decodes data[0, n). */
static inline bool pp_decode(const void *data, size_t n, pp_profile *out) {
    memset(out, 0, sizeof *out);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + 15) != Z_OK)
        return false;
    size_t cap = n * 8 + 4096, len = 0;
    uint8_t *raw = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    int r;
    do {
        if (len == cap)
            raw = realloc(raw, cap *= 2);
        z.next_out = raw + len;
        z.avail_out = (uInt)(cap - len);
        r = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    } while (r == Z_OK);
    inflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(raw);
        return false;
    }
    pp_buf b = {raw, raw + len}, sub = {0, 0}, s2 = {0, 0};
    int field = 0, wt = 0, f2 = 0, wt2 = 0;
    uint64_t v = 0, v2 = 0;
    while (pp_field(&b, &field, &wt, &v, &sub)) {
        switch (field) {
        case 1: /* sample_type */
            while (pp_field(&sub, &f2, &wt2, &v2, &s2))
                if (out->ntypes < 4) {
                    if (f2 == 1)
                        out->type[out->ntypes] = (int64_t)v2;
                    if (f2 == 2)
                        out->unit[out->ntypes] = (int64_t)v2;
                }
            out->ntypes++;
            break;
        case 2: { /* sample */
            pp_sample smp;
            memset(&smp, 0, sizeof smp);
            while (pp_field(&sub, &f2, &wt2, &v2, &s2)) {
                if (f2 == 1)
                    pp_nums(wt2, v2, &s2, smp.loc, &smp.nloc, PP_MAX_LOCS);
                else if (f2 == 2) {
                    uint64_t vals[4];
                    int nv = smp.nv;
                    for (int i = 0; i < nv; i++)
                        vals[i] = (uint64_t)smp.v[i];
                    pp_nums(wt2, v2, &s2, vals, &nv, 4);
                    for (int i = 0; i < nv; i++)
                        smp.v[i] = (int64_t)vals[i];
                    smp.nv = nv;
                } else if (f2 == 3 && smp.nlabel < PP_MAX_LABELS) {
                    int f3 = 0, wt3 = 0;
                    uint64_t v3 = 0;
                    pp_buf s3 = {0, 0};
                    while (pp_field(&s2, &f3, &wt3, &v3, &s3)) {
                        if (f3 == 1)
                            smp.lkey[smp.nlabel] = (int64_t)v3;
                        if (f3 == 2)
                            smp.lstr[smp.nlabel] = (int64_t)v3;
                    }
                    smp.nlabel++;
                }
            }
            PP_PUSH(out->s, out->ns, smp);
            break;
        }
        case 4: { /* location */
            pp_location loc;
            memset(&loc, 0, sizeof loc);
            while (pp_field(&sub, &f2, &wt2, &v2, &s2)) {
                if (f2 == 1)
                    loc.id = v2;
                if (f2 == 4 && loc.nfunc < PP_MAX_LINES) {
                    int f3 = 0, wt3 = 0;
                    uint64_t v3 = 0;
                    pp_buf s3 = {0, 0};
                    while (pp_field(&s2, &f3, &wt3, &v3, &s3))
                        if (f3 == 1)
                            loc.func[loc.nfunc] = v3;
                    loc.nfunc++;
                }
            }
            PP_PUSH(out->l, out->nl, loc);
            break;
        }
        case 5: { /* function */
            pp_function fn = {0, 0};
            while (pp_field(&sub, &f2, &wt2, &v2, &s2)) {
                if (f2 == 1)
                    fn.id = v2;
                if (f2 == 2)
                    fn.name = (int64_t)v2;
            }
            PP_PUSH(out->f, out->nf, fn);
            break;
        }
        case 6: { /* string_table */
            size_t k = (size_t)(sub.end - sub.p);
            char *str = malloc(k + 1);
            memcpy(str, sub.p, k);
            str[k] = 0;
            PP_PUSH(out->str, out->nstr, str);
            break;
        }
        case 10: out->duration = (int64_t)v; break;
        case 11:
            while (pp_field(&sub, &f2, &wt2, &v2, &s2)) {
                if (f2 == 1)
                    out->ptype = (int64_t)v2;
                if (f2 == 2)
                    out->punit = (int64_t)v2;
            }
            break;
        case 12: out->period = (int64_t)v; break;
        default: break;
        }
    }
    free(raw);
    return true;
}

static inline const char *pp_str(const pp_profile *p, int64_t i) {
    return i >= 0 && (size_t)i < p->nstr ? p->str[i] : "";
}

static inline const pp_location *pp_loc(const pp_profile *p, uint64_t id) {
    for (size_t i = 0; i < p->nl; i++)
        if (p->l[i].id == id)
            return &p->l[i];
    return NULL;
}

static inline const char *pp_func_name(const pp_profile *p, uint64_t id) {
    for (size_t i = 0; i < p->nf; i++)
        if (p->f[i].id == id)
            return pp_str(p, p->f[i].name);
    return "";
}

/* The depth (0 = leaf) of the first frame of s whose function is name,
   counting inlined frames; -1 if none. */
static inline int pp_frame_depth(const pp_profile *p, const pp_sample *s, const char *name) {
    int d = 0;
    for (int i = 0; i < s->nloc; i++) {
        const pp_location *l = pp_loc(p, s->loc[i]);
        for (int k = 0; l && k < l->nfunc; k++, d++)
            if (strcmp(pp_func_name(p, l->func[k]), name) == 0)
                return d;
    }
    return -1;
}

/* The value of label key on s, or NULL. */
static inline const char *pp_label(const pp_profile *p, const pp_sample *s, const char *key) {
    for (int i = 0; i < s->nlabel; i++)
        if (strcmp(pp_str(p, s->lkey[i]), key) == 0)
            return pp_str(p, s->lstr[i]);
    return NULL;
}

#endif
