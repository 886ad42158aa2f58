/*
 * profiles.h - between observe's pprof profiles (CPU, block, mutex,
 * threadcreate) and the generic profile.proto writer (proto.c). Internal.
 */
#ifndef GORO_OBSERVE_PROFILES_H
#define GORO_OBSERVE_PROFILES_H

#include "observe.h"

/* One sample of a generic profile. */
typedef struct goro__psample {
    const uintptr_t *pcs; /* return PCs, leaf first (an exact leaf stored + 1) */
    int npcs;
    const goro__kv *labels; /* sorted by key */
    int nlabels;
    int64_t v[2];
    /* With npcs == 0: the name of one stand-in frame (no address), for
       samples that have no stack but must show up (threadcreate). */
    const char *root;
} goro__psample;

/* What the profile's header says. */
typedef struct goro__pmeta {
    int nvalues;                   /* 1 or 2 */
    const char *type[2], *unit[2]; /* sample types */
    const char *period_type, *period_unit;
    int64_t period;
    int64_t time_nanos; /* 0: now */
    int64_t duration_nanos;
} goro__pmeta;

/* proto.c: the gzipped profile.proto of n samples (Locations, Functions
   and Mappings as for the goroutine profile). Returns 0 or an errno value. */
GORO__HIDDEN int goro__proto_write_samples(goro__ow *w, const goro__pmeta *m,
                                           const goro__psample *s, size_t n);

/* A set of samples keyed by (stack, labels), values summed: what the
   cumulative profiles (block, mutex, threadcreate) hold, and what delta
   profiles (?seconds=N) subtract. Not thread-safe; callers lock. */
typedef struct goro__sset goro__sset;
GORO__HIDDEN goro__sset *goro__sset_new(int nvalues);
GORO__HIDDEN void goro__sset_free(goro__sset *s);
/* Adds v to the entry of (pcs, labels), creating it (copies everything).
   False when memory ran out. */
GORO__HIDDEN bool goro__sset_add(goro__sset *s, const uintptr_t *pcs, int npcs, const goro__kv *kv,
                                 int nkv, const int64_t *v);
/* A copy of s; NULL when memory ran out. */
GORO__HIDDEN goro__sset *goro__sset_clone(const goro__sset *s);
/* cur minus base, entries that end at zero dropped; NULL on ENOMEM. */
GORO__HIDDEN goro__sset *goro__sset_diff(const goro__sset *cur, const goro__sset *base);
GORO__HIDDEN size_t goro__sset_len(const goro__sset *s);
/* Sample i (valid until the set changes). */
GORO__HIDDEN goro__psample goro__sset_at(const goro__sset *s, size_t i);
/* The proto of the whole set. */
GORO__HIDDEN int goro__sset_write_proto(const goro__sset *s, const goro__pmeta *m, FILE *f);

/* The end of a delta profile (?seconds=N): writes collect() minus base
   with write (when f is not NULL) and frees base. */
GORO__HIDDEN int goro__sset_delta_end(goro__sset *base, goro__sset *(*collect)(void),
                                      int (*write)(const goro__sset *d, FILE *f,
                                                   int64_t duration_ns),
                                      FILE *f, int64_t duration_ns);

/* The goroutine profile as a sample set (its delta profile). */
GORO__HIDDEN goro__sset *goro__goroutine_sset(void);

/* text.c: Go's debug=1 frame lines ("#\t0x..\tfunc+0x..\tfile:line") of
   visible PCs, laid out by tw (flushed at the end). */
struct goro__tw;
GORO__HIDDEN void goro__format_pcs_frames(goro__ow *w, struct goro__tw *tw, const uintptr_t *pcs,
                                          int npcs, bool leaf_exact);

/* What the last (or running) CPU profile cost: signals taken, samples
   dropped (no free slot), time inside the handler, and the writer thread's
   CPU time (known once stopped). For benchmarks. */
typedef struct goro__cpuprof_cost {
    int64_t samples, lost, handler_ns, writer_ns;
} goro__cpuprof_cost;
GORO__HIDDEN void goro__cpuprof_stats(goro__cpuprof_cost *c);

/* Registration with the debug server's registry, at start-up
   (pprof_register.c calls them all from goro__observe_init). */
GORO__HIDDEN void goro__pprof_register(void);
GORO__HIDDEN void goro__cpuprof_register(void);
GORO__HIDDEN void goro__waitprof_register(void);
GORO__HIDDEN void goro__threadprof_register(void);

#endif
