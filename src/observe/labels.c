/*
 * labels.c - pprof labels of goroutines (goro_label_set) and how profiles
 * show them.
 *
 * A label set (goro__labels, runtime.h) is immutable and refcounted, sorted
 * by key, and shared: the runtime gives a new goroutine its creator's set
 * with one more reference. goro_label_set therefore copies on write: it
 * builds a new set for the current goroutine and drops its reference to the
 * old one. Only the goroutine itself replaces g->labels (an atomic pointer
 * store); observers read it only while the goroutine is pinned or paused,
 * and take a reference before they let it go, so a set is never freed while
 * someone reads it.
 *
 * Names: goro_opts.name is shown by profiles as the label "name" (unless the
 * goroutine has its own label "name"), so that debug=0 and debug=1 group
 * and tag goroutines by name. debug=2 headers stay exactly Go's.
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

void goro__labels_release(goro__labels *l) {
    if (!l)
        return;
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
        free(l);
}

/* One allocation: header, kv array, then the strings. */
static goro__labels *labels_build(const goro__kv *kv, int n) {
    size_t strs = 0;
    for (int i = 0; i < n; i++)
        strs += strlen(kv[i].key) + strlen(kv[i].value) + 2;
    size_t head = sizeof(goro__labels) + (size_t)n * sizeof(((goro__labels *)0)->kv[0]);
    goro__labels *l = malloc(head + strs);
    if (!l)
        return NULL;
    atomic_init(&l->refs, 1);
    l->n = n;
    char *p = (char *)l + head;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(kv[i].key) + 1, v = strlen(kv[i].value) + 1;
        memcpy(p, kv[i].key, k);
        l->kv[i].key = p;
        p += k;
        memcpy(p, kv[i].value, v);
        l->kv[i].value = p;
        p += v;
    }
    return l;
}

void goro_label_set(const char *key, const char *value) {
    if (!key)
        return;
    goro__g *g = goro__getg();
    goro__labels *old = g->labels;
    int n = old ? old->n : 0;
    goro__kv *kv = malloc((size_t)(n + 1) * sizeof *kv);
    if (!kv)
        return;
    int m = 0;
    bool placed = false;
    for (int i = 0; i < n; i++) {
        int c = strcmp(old->kv[i].key, key);
        if (c == 0) {
            if (value)
                kv[m++] = (goro__kv){key, value};
            placed = true;
            continue;
        }
        if (c > 0 && !placed) {
            if (value)
                kv[m++] = (goro__kv){key, value};
            placed = true;
        }
        kv[m++] = (goro__kv){old->kv[i].key, old->kv[i].value};
    }
    if (!placed && value)
        kv[m++] = (goro__kv){key, value};
    /* Removing the last label leaves no set at all (not an empty one), so
       the goroutine prints no "# labels: {}" and groups with unlabeled
       twins again. */
    goro__labels *nl = m ? labels_build(kv, m) : NULL;
    free(kv);
    if (m && !nl)
        return;
    __atomic_store_n(&g->labels, nl, __ATOMIC_RELEASE);
    goro__labels_release(old);
}

int goro__effective_labels(const goro__gcap *cap, goro__kv *out, int max) {
    int n = 0;
    const goro__labels *l = cap->labels;
    bool has_name = false;
    if (l)
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->kv[i].key, "name") == 0)
                has_name = true;
    bool add_name = cap->name && !has_name;
    bool name_done = !add_name;
    if (l) {
        for (int i = 0; i < l->n && n < max; i++) {
            if (!name_done && strcmp(l->kv[i].key, "name") > 0) {
                out[n++] = (goro__kv){"name", cap->name};
                name_done = true;
                if (n >= max)
                    break;
            }
            out[n++] = (goro__kv){l->kv[i].key, l->kv[i].value};
        }
    }
    if (!name_done && n < max)
        out[n++] = (goro__kv){"name", cap->name};
    return n;
}

/* Appends s quoted as Go's strconv.Quote does. */
static size_t quote(char *dst, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    dst[n++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"':
                dst[n++] = '\\';
                dst[n++] = '"';
                break;
            case '\\':
                dst[n++] = '\\';
                dst[n++] = '\\';
                break;
            case '\a':
                dst[n++] = '\\';
                dst[n++] = 'a';
                break;
            case '\b':
                dst[n++] = '\\';
                dst[n++] = 'b';
                break;
            case '\f':
                dst[n++] = '\\';
                dst[n++] = 'f';
                break;
            case '\n':
                dst[n++] = '\\';
                dst[n++] = 'n';
                break;
            case '\r':
                dst[n++] = '\\';
                dst[n++] = 'r';
                break;
            case '\t':
                dst[n++] = '\\';
                dst[n++] = 't';
                break;
            case '\v':
                dst[n++] = '\\';
                dst[n++] = 'v';
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    dst[n++] = '\\';
                    dst[n++] = 'x';
                    dst[n++] = hex[c >> 4];
                    dst[n++] = hex[c & 15];
                } else {
                    dst[n++] = (char)c;
                }
            }
            p++;
            continue;
        }
        /* Multi-byte: keep a valid sequence (printable beyond C1 controls),
           escape invalid bytes as \x.. like Go. */
        int len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        bool ok = len > 0;
        for (int i = 1; ok && i < len; i++)
            ok = (p[i] & 0xc0) == 0x80;
        uint32_t r = 0;
        if (ok) {
            r = c & (0x7f >> len);
            for (int i = 1; i < len; i++)
                r = (r << 6) | (p[i] & 0x3f);
            if ((len == 3 && r < 0x800) || (len == 4 && (r < 0x10000 || r > 0x10ffff)) ||
                (r >= 0xd800 && r <= 0xdfff))
                ok = false;
        }
        if (!ok) {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 15];
            p++;
            continue;
        }
        if (r < 0xa0) { /* C1 controls */
            n += (size_t)sprintf(dst + n, "\\u%04x", (unsigned)r);
        } else {
            memcpy(dst + n, p, (size_t)len);
            n += (size_t)len;
        }
        p += len;
    }
    dst[n++] = '"';
    return n;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *goro__labels_string(const goro__kv *kv, int n) {
    char **items = malloc((size_t)(n ? n : 1) * sizeof *items);
    if (!items)
        return NULL;
    size_t total = 3;
    int made = 0;
    for (int i = 0; i < n; i++) {
        size_t sz = 4 * (strlen(kv[i].key) + strlen(kv[i].value)) + 8;
        char *s = malloc(sz);
        if (!s)
            goto fail;
        size_t k = quote(s, kv[i].key);
        s[k++] = ':';
        k += quote(s + k, kv[i].value);
        s[k] = 0;
        items[made++] = s;
        total += k + 2;
    }
    qsort(items, (size_t)made, sizeof *items, cmp_str);
    char *out = malloc(total);
    if (!out)
        goto fail;
    size_t o = 0;
    out[o++] = '{';
    for (int i = 0; i < made; i++) {
        if (i) {
            out[o++] = ',';
            out[o++] = ' ';
        }
        size_t l = strlen(items[i]);
        memcpy(out + o, items[i], l);
        o += l;
        free(items[i]);
    }
    out[o++] = '}';
    out[o] = 0;
    free(items);
    return out;
fail:
    for (int i = 0; i < made; i++)
        free(items[i]);
    free(items);
    return NULL;
}
