/*
 * proto.c - debug=0: the goroutine profile as gzipped profile.proto
 * (google/pprof proto/profile.proto), what `go tool pprof` reads.
 *
 * Same records, grouping and order as debug=1 (text.c); then, as Go's
 * profileBuilder writes them:
 *   period_type {type: "<name>", unit: "count"}, period 1, sample_type same;
 *   per group, its new Locations (each followed by its new Functions), then
 *   the Sample {value: [count], location_id: leaf first, label: {key, str}};
 *   time_nanos; one Mapping per executable segment of every loaded object
 *   (what procfs self/maps lists as r-x; build id from the object's GNU
 *   build-id note; has_functions when every location in it was
 *   symbolized); the string table, [0] = "".
 * A Location is one return PC: address = pc - 1, one Line per logical frame
 * (innermost inlined function first, the physical function last). A
 * Function is one (name, file): name = system_name, filename, start_line.
 * goro's own frames are left out of samples as they are hidden in text.
 *
 * Encoding (protobuf wire format): varint fields (tag = field << 3 | 0),
 * length-delimited fields and messages (field << 3 | 2); zero scalars are
 * omitted; repeated numbers of more than two elements are packed.
 * Compression: zlib's gzip (level 1, as Go's BestSpeed), or, without zlib,
 * a valid gzip stream of stored blocks.
 */
#include "observe.h"
#include "profiles.h"

#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if GORO_HAVE_ZLIB
#include <zlib.h>
#endif

/* ------------------------------------------------------------ protobuf */

typedef struct pb {
    uint8_t *d;
    size_t n, cap;
    bool oom;
} pb;

static void pb_reserve(pb *b, size_t k) {
    if (b->oom || b->n + k <= b->cap)
        return;
    size_t c = b->cap ? b->cap * 2 : 4096;
    while (c < b->n + k)
        c *= 2;
    uint8_t *d = realloc(b->d, c);
    if (!d) {
        b->oom = true;
        return;
    }
    b->d = d;
    b->cap = c;
}

static void pb_raw(pb *b, const void *p, size_t k) {
    pb_reserve(b, k);
    if (b->oom)
        return;
    memcpy(b->d + b->n, p, k);
    b->n += k;
}

static void pb_varint(pb *b, uint64_t v) {
    uint8_t tmp[10];
    size_t k = 0;
    while (v >= 0x80) {
        tmp[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[k++] = (uint8_t)v;
    pb_raw(b, tmp, k);
}

static void pb_u64(pb *b, int field, uint64_t v) {
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_u64opt(pb *b, int field, uint64_t v) {
    if (v)
        pb_u64(b, field, v);
}

static void pb_bytes(pb *b, int field, const void *p, size_t k) {
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, k);
    pb_raw(b, p, k);
}

static void pb_msg(pb *b, int field, pb *sub) {
    pb_bytes(b, field, sub->d, sub->n);
    b->oom |= sub->oom;
    sub->n = 0;
}

/* Repeated numbers: packed when more than two (as Go writes them). */
static void pb_u64s(pb *b, int field, const uint64_t *v, size_t k) {
    if (k > 2) {
        pb tmp = {0};
        for (size_t i = 0; i < k; i++)
            pb_varint(&tmp, v[i]);
        pb_bytes(b, field, tmp.d, tmp.n);
        b->oom |= tmp.oom;
        free(tmp.d);
        return;
    }
    for (size_t i = 0; i < k; i++)
        pb_u64(b, field, v[i]);
}

/* ------------------------------------------------------------ builder */

typedef struct strent {
    const char *s;
    int64_t idx;
} strent;

typedef struct funcent {
    const char *name, *file; /* interned pointers */
    uint64_t id;
} funcent;

typedef struct locent {
    uintptr_t pc;
    uint64_t id;
} locent;

typedef struct mapent {
    uintptr_t lo, hi;
    uint64_t offset;
    char *file;
    char *build_id;
    bool used, failed;
} mapent;

typedef struct builder {
    pb out;
    pb tmp, tmp2;
    strent *strs;
    size_t strs_cap, nstrs;
    const char **strtab;
    size_t strtab_cap;
    funcent *funcs;
    size_t funcs_cap, nfuncs;
    locent *locs;
    size_t locs_cap, nlocs;
    mapent *maps;
    size_t nmaps, maps_cap;
    uint64_t nsynth; /* stand-in locations made (loc_named) */
    bool oom;
} builder;

static size_t shash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return (size_t)h;
}

static bool strs_grow(builder *b) {
    size_t ncap = b->strs_cap ? b->strs_cap * 2 : 256;
    strent *n = calloc(ncap, sizeof *n);
    if (!n)
        return false;
    for (size_t i = 0; i < b->strs_cap; i++) {
        if (!b->strs[i].s)
            continue;
        size_t j = shash(b->strs[i].s) & (ncap - 1);
        while (n[j].s)
            j = (j + 1) & (ncap - 1);
        n[j] = b->strs[i];
    }
    free(b->strs);
    b->strs = n;
    b->strs_cap = ncap;
    return true;
}

/* Index of s in the string table (strings must outlive the builder). */
static int64_t str_index(builder *b, const char *s) {
    if (!s)
        s = "";
    if ((b->nstrs + 1) * 2 > b->strs_cap && !strs_grow(b)) {
        b->oom = true;
        return 0;
    }
    size_t j = shash(s) & (b->strs_cap - 1);
    while (b->strs[j].s) {
        if (strcmp(b->strs[j].s, s) == 0)
            return b->strs[j].idx;
        j = (j + 1) & (b->strs_cap - 1);
    }
    if (b->nstrs + 1 > b->strtab_cap) {
        size_t c = b->strtab_cap ? b->strtab_cap * 2 : 256;
        const char **t = realloc(b->strtab, c * sizeof *t);
        if (!t) {
            b->oom = true;
            return 0;
        }
        b->strtab = t;
        b->strtab_cap = c;
    }
    b->strs[j].s = s;
    b->strs[j].idx = (int64_t)b->nstrs;
    b->strtab[b->nstrs++] = s;
    return (int64_t)b->nstrs - 1;
}

static void value_type(builder *b, int field, const char *type, const char *unit) {
    pb_u64(&b->tmp, 1, (uint64_t)str_index(b, type));
    pb_u64(&b->tmp, 2, (uint64_t)str_index(b, unit));
    pb_msg(&b->out, field, &b->tmp);
}

/* ------------------------------------------------------------ mappings */

/* The executable segments of every loaded object (dl_iterate_phdr): the
   same ranges as the r-x entries of procfs self/maps (page-rounded start,
   limit and file offset), without reading that file, which is long when
   thousands of goroutine stacks each have a guard page. */

static int note_build_id(const struct dl_phdr_info *info, char *out, size_t cap) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const char *desc = name + ((nh->n_namesz + 3) & ~3u);
            const char *next = desc + ((nh->n_descsz + 3) & ~3u);
            if (next > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                nh->n_descsz * 2 < cap) {
                static const char hx[] = "0123456789abcdef";
                for (size_t k = 0; k < nh->n_descsz; k++) {
                    out[2 * k] = hx[((const unsigned char *)desc)[k] >> 4];
                    out[2 * k + 1] = hx[((const unsigned char *)desc)[k] & 15];
                }
                out[2 * nh->n_descsz] = 0;
                return 1;
            }
            p = next;
        }
    }
    return 0;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    builder *b = arg;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char build_id[80] = "";
    note_build_id(info, build_id, sizeof build_id);
    char exe[4096];
    const char *file = info->dlpi_name;
    if (!file || !*file) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        file = exe;
        static const char deleted[] = " (deleted)";
        size_t pl = strlen(exe);
        if (pl > sizeof deleted - 1 && strcmp(exe + pl - (sizeof deleted - 1), deleted) == 0)
            exe[pl - (sizeof deleted - 1)] = 0;
    } else if (strncmp(file, "linux-vdso", 10) == 0 || strncmp(file, "linux-gate", 10) == 0) {
        file = "[vdso]";
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
            continue;
        if (b->nmaps == b->maps_cap) {
            size_t c = b->maps_cap ? b->maps_cap * 2 : 32;
            mapent *n = realloc(b->maps, c * sizeof *n);
            if (!n) {
                b->oom = true;
                return 1;
            }
            b->maps = n;
            b->maps_cap = c;
        }
        mapent *m = &b->maps[b->nmaps];
        memset(m, 0, sizeof *m);
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        m->lo = lo & ~(page - 1);
        m->hi = (lo + ph->p_memsz + page - 1) & ~(page - 1);
        m->offset = ph->p_offset & ~(uint64_t)(page - 1);
        m->file = strdup(file);
        m->build_id = build_id[0] ? strdup(build_id) : NULL;
        if (!m->file) {
            b->oom = true;
            return 1;
        }
        b->nmaps++;
    }
    return 0;
}

static int cmp_map(const void *x, const void *y) {
    const mapent *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static void read_mappings(builder *b) {
    dl_iterate_phdr(phdr_cb, b);
    /* procfs order (by address): the main binary first when it is lowest. */
    qsort(b->maps, b->nmaps, sizeof *b->maps, cmp_map);
}

static uint64_t mapping_for(builder *b, uintptr_t addr, bool symbolized) {
    for (size_t i = 0; i < b->nmaps; i++)
        if (addr >= b->maps[i].lo && addr < b->maps[i].hi) {
            b->maps[i].used = true;
            if (!symbolized)
                b->maps[i].failed = true;
            return i + 1;
        }
    return 0;
}

/* ------------------------------------------------------------ locations */

static uint64_t func_id(builder *b, const goro__symline *l, bool *is_new) {
    for (size_t i = 0; i < b->nfuncs; i++) /* few functions per profile */
        if (b->funcs[i].name == l->func &&
            b->funcs[i].file == (l->decl_file ? l->decl_file : l->file))
            return b->funcs[i].id;
    if (b->nfuncs == b->funcs_cap) {
        size_t c = b->funcs_cap ? b->funcs_cap * 2 : 64;
        funcent *n = realloc(b->funcs, c * sizeof *n);
        if (!n) {
            b->oom = true;
            return 0;
        }
        b->funcs = n;
        b->funcs_cap = c;
    }
    funcent *f = &b->funcs[b->nfuncs++];
    f->name = l->func;
    f->file = l->decl_file ? l->decl_file : l->file;
    f->id = b->nfuncs;
    *is_new = true;
    return f->id;
}

static uint64_t loc_lookup(builder *b, uintptr_t pc) {
    for (size_t i = 0; i < b->nlocs; i++) /* linear: profiles hold few distinct PCs */
        if (b->locs[i].pc == pc)
            return b->locs[i].id;
    return 0;
}

static uint64_t loc_emit(builder *b, uintptr_t pc, bool exact) {
    uint64_t id = loc_lookup(b, pc);
    if (id)
        return id;
    if (b->nlocs == b->locs_cap) {
        size_t c = b->locs_cap ? b->locs_cap * 2 : 64;
        locent *n = realloc(b->locs, c * sizeof *n);
        if (!n) {
            b->oom = true;
            return 0;
        }
        b->locs = n;
        b->locs_cap = c;
    }
    id = b->nlocs + 1;
    b->locs[b->nlocs++] = (locent){pc, id};
    (void)exact;
    const goro__sym *s = goro__symbolize(pc);
    uintptr_t addr = pc - 1;
    bool symbolized = (s->flags & GORO__SYM_FOUND) && (s->flags & GORO__SYM_LINES);
    uint64_t newf[64];
    const goro__symline *newl[64];
    int nnew = 0;
    pb *t = &b->tmp;
    pb_u64opt(t, 1, id);
    pb_u64opt(t, 3, addr);
    if (s->flags & GORO__SYM_FOUND) {
        for (int i = 0; i < s->n; i++) {
            const goro__symline *l = &s->lines[i];
            if (!l->func || goro__inlined_internal(s, i))
                continue;
            bool is_new = false;
            uint64_t fid = func_id(b, l, &is_new);
            if (is_new && nnew < 64) {
                newf[nnew] = fid;
                newl[nnew++] = l;
            }
            pb_u64opt(&b->tmp2, 1, fid);
            pb_u64opt(&b->tmp2, 2, (uint64_t)(int64_t)l->line);
            pb_msg(t, 4, &b->tmp2);
        }
    }
    pb_u64opt(t, 2, mapping_for(b, addr, symbolized));
    pb_msg(&b->out, 4, t);
    for (int i = 0; i < nnew; i++) {
        const goro__symline *l = newl[i];
        pb_u64opt(t, 1, newf[i]);
        int64_t name = str_index(b, l->func);
        pb_u64opt(t, 2, (uint64_t)name);
        pb_u64opt(t, 3, (uint64_t)name);
        pb_u64opt(t, 4, (uint64_t)str_index(b, l->decl_file ? l->decl_file : l->file));
        pb_u64opt(t, 5, (uint64_t)(int64_t)l->start_line);
        pb_msg(&b->out, 5, t);
    }
    return id;
}

/* ------------------------------------------------------------ gzip */

#if !GORO_HAVE_ZLIB
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    static uint32_t table[256];
    static bool init;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
#endif

static int gzip_write(goro__ow *w, const uint8_t *d, size_t n) {
#if GORO_HAVE_ZLIB
    z_stream z;
    memset(&z, 0, sizeof z);
    /* A small window and hash (about 40 KiB of state): profiles are small,
       and zlib's defaults (256 KiB) would be fresh pages every time. */
    if (deflateInit2(&z, 1, Z_DEFLATED, 12 + 16, 6, Z_DEFAULT_STRATEGY) != Z_OK)
        return ENOMEM;
    unsigned char out[16384];
    z.next_in = (Bytef *)d;
    z.avail_in = (uInt)n;
    int r;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        r = deflate(&z, Z_FINISH);
        if (r == Z_STREAM_ERROR)
            break;
        goro__ow_write(w, (const char *)out, sizeof out - z.avail_out);
    } while (r != Z_STREAM_END);
    deflateEnd(&z);
    return r == Z_STREAM_END ? w->err : EIO;
#else
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    goro__ow_write(w, (const char *)hdr, sizeof hdr);
    size_t off = 0;
    do {
        size_t k = n - off > 65535 ? 65535 : n - off;
        uint8_t bh[5] = {(uint8_t)(off + k == n), (uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k,
                         (uint8_t)(~k >> 8)};
        goro__ow_write(w, (const char *)bh, 5);
        goro__ow_write(w, (const char *)d + off, k);
        off += k;
    } while (off < n);
    uint32_t crc = crc32_update(0, d, n);
    uint8_t tr[8] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24),
                     (uint8_t)n,   (uint8_t)(n >> 8),   (uint8_t)(n >> 16),   (uint8_t)(n >> 24)};
    goro__ow_write(w, (const char *)tr, 8);
    return w->err;
#endif
}

/* ------------------------------------------------------------ the profile */

static void builder_free(builder *b) {
    for (size_t i = 0; i < b->nmaps; i++) {
        free(b->maps[i].file);
        free(b->maps[i].build_id);
    }
    free(b->maps);
    free(b->out.d);
    free(b->tmp.d);
    free(b->tmp2.d);
    free(b->strs);
    free(b->strtab);
    free(b->funcs);
    free(b->locs);
}

/* One Sample: value, location_id, label (Go's field order). */
/* A Location with no address whose one Line is the function `name` (a
   stand-in frame for a sample without a stack). */
static uint64_t loc_named(builder *b, const char *name) {
    goro__symline l = {.func = name};
    bool is_new = false;
    uint64_t fid = func_id(b, &l, &is_new);
    uint64_t id = ((uint64_t)1 << 40) + ++b->nsynth; /* apart from PC locations */
    pb_u64opt(&b->tmp, 1, id);
    pb_u64opt(&b->tmp2, 1, fid);
    pb_msg(&b->tmp, 4, &b->tmp2);
    pb_msg(&b->out, 4, &b->tmp);
    if (is_new) {
        int64_t nm = str_index(b, name);
        pb_u64opt(&b->tmp, 1, fid);
        pb_u64opt(&b->tmp, 2, (uint64_t)nm);
        pb_u64opt(&b->tmp, 3, (uint64_t)nm);
        pb_msg(&b->out, 5, &b->tmp);
    }
    return id;
}

static void emit_sample(builder *b, const uintptr_t *pcs, int npcs, const goro__kv *kv, int nkv,
                        const int64_t *v, int nv, const char *root) {
    uint64_t locs[GORO__DUMP_HEAD];
    size_t nl = 0;
    if (npcs == 0 && root)
        locs[nl++] = loc_named(b, root);
    for (int k = 0; k < npcs && nl < GORO__DUMP_HEAD; k++) {
        uint64_t id = loc_emit(b, pcs[k], false);
        if (id)
            locs[nl++] = id;
    }
    pb sample = {0};
    uint64_t vals[4];
    for (int i = 0; i < nv && i < 4; i++)
        vals[i] = (uint64_t)v[i];
    pb_u64s(&sample, 2, vals, (size_t)nv);
    pb_u64s(&sample, 1, locs, nl);
    for (int k = 0; k < nkv; k++) {
        pb_u64opt(&b->tmp, 1, (uint64_t)str_index(b, kv[k].key));
        pb_u64opt(&b->tmp, 2, (uint64_t)str_index(b, kv[k].value));
        pb_msg(&sample, 3, &b->tmp);
    }
    pb_msg(&b->out, 2, &sample);
    b->oom |= sample.oom;
    free(sample.d);
}

/* Mappings, the string table, compression; frees b. */
static int builder_finish(builder *b, goro__ow *w, int64_t time_nanos, int64_t duration_nanos,
                          int64_t period, const char *ptype, const char *punit) {
    pb_u64opt(&b->out, 9, (uint64_t)time_nanos);
    pb_u64opt(&b->out, 10, (uint64_t)duration_nanos);
    value_type(b, 11, ptype, punit);
    pb_u64opt(&b->out, 12, (uint64_t)period);
    for (size_t i = 0; i < b->nmaps; i++) {
        mapent *m = &b->maps[i];
        pb_u64opt(&b->tmp, 1, i + 1);
        pb_u64opt(&b->tmp, 2, m->lo);
        pb_u64opt(&b->tmp, 3, m->hi);
        pb_u64opt(&b->tmp, 4, m->offset);
        pb_u64opt(&b->tmp, 5, (uint64_t)str_index(b, m->file));
        pb_u64opt(&b->tmp, 6, (uint64_t)str_index(b, m->build_id ? m->build_id : ""));
        if (m->used && !m->failed)
            pb_u64(&b->tmp, 7, 1);
        pb_msg(&b->out, 3, &b->tmp);
    }
    for (size_t i = 0; i < b->nstrs; i++)
        pb_bytes(&b->out, 6, b->strtab[i], strlen(b->strtab[i]));
    int err = 0;
    b->oom |= b->out.oom | b->tmp.oom | b->tmp2.oom;
    if (b->oom)
        err = ENOMEM;
    else
        err = gzip_write(w, b->out.d, b->out.n);
    builder_free(b);
    return err ? err : w->err;
}

static int64_t wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int goro__proto_write_samples(goro__ow *w, const goro__pmeta *m, const goro__psample *s, size_t n) {
    builder b;
    memset(&b, 0, sizeof b);
    str_index(&b, "");
    read_mappings(&b);
    for (int i = 0; i < m->nvalues; i++)
        value_type(&b, 1, m->type[i], m->unit[i]);
    for (size_t i = 0; i < n && !b.oom; i++)
        emit_sample(&b, s[i].pcs, s[i].npcs, s[i].labels, s[i].nlabels, s[i].v, m->nvalues,
                    s[i].root);
    return builder_finish(&b, w, m->time_nanos ? m->time_nanos : wall_now(), m->duration_nanos,
                          m->period, m->period_type, m->period_unit);
}

int goro__proto_write(goro__ow *w, const goro__snapshot *s, const bool *keep, const char *name) {
    builder b;
    memset(&b, 0, sizeof b);
    int64_t time_nanos = wall_now();
    str_index(&b, "");
    read_mappings(&b);

    size_t ng = 0;
    int64_t total = 0;
    goro__pgroup *gr = goro__profile_groups(s, keep, &ng, &total);
    if (!gr) {
        builder_free(&b);
        return ENOMEM;
    }
    value_type(&b, 1, name, "count");
    for (size_t i = 0; i < ng && !b.oom; i++) {
        const goro__gsnap *g = gr[i].first;
        goro__kv kv[64];
        int nkv = 0;
        if (g->cap.labels || g->cap.name)
            nkv = goro__effective_labels(&g->cap, kv, 64);
        int64_t count = gr[i].count;
        emit_sample(&b, gr[i].pcs, gr[i].npcs, kv, nkv, &count, 1, NULL);
    }
    int err = builder_finish(&b, w, time_nanos, 0, 1, name, "count");
    goro__profile_groups_free(gr, ng);
    return err;
}
