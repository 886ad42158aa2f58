/*
 * pprof_register.c - observe's profiles on the debug server: the goroutine
 * profile, and the Go profiles goro cannot produce (heap, allocs, trace),
 * which answer with why and what to use instead rather than a bare 404.
 * The CPU, block, mutex and threadcreate profiles register from their own
 * files (cpuprof.c, blockprof.c, threadprof.c). Called once at start-up
 * (goro__observe_init), so the endpoints exist whenever the library is
 * linked, statically or not.
 */
#include "observe.h"
#include "profiles.h"

#include "debug_registry.h"

#include <errno.h>

static long long goroutine_count(void) { return goro_count(); }

static int goroutine_write(FILE *f, int debug) { return goro_profile_write(f, debug); }

goro__sset *goro__goroutine_sset(void) {
    goro__snapshot *snap = goro__snapshot_take(0);
    if (!snap)
        return NULL;
    size_t ng = 0;
    int64_t total = 0;
    goro__pgroup *gr = goro__profile_groups(snap, NULL, &ng, &total);
    goro__sset *set = gr ? goro__sset_new(1) : NULL;
    for (size_t i = 0; set && i < ng; i++) {
        const goro__gsnap *g = gr[i].first;
        goro__kv kv[64];
        int nkv = 0;
        if (g->cap.labels || g->cap.name)
            nkv = goro__effective_labels(&g->cap, kv, 64);
        int64_t v[2] = {gr[i].count, 0};
        if (!goro__sset_add(set, gr[i].pcs, gr[i].npcs, kv, nkv, v)) {
            goro__sset_free(set);
            set = NULL;
        }
    }
    if (gr)
        goro__profile_groups_free(gr, ng);
    goro__snapshot_free(snap);
    return set;
}

static void *goroutine_delta_begin(void) { return goro__goroutine_sset(); }

static int goroutine_delta_write(const goro__sset *d, FILE *f, int64_t duration_ns) {
    goro__pmeta m = {.nvalues = 1,
                     .type = {"goroutine"},
                     .unit = {"count"},
                     .period_type = "goroutine",
                     .period_unit = "count",
                     .period = 1,
                     .duration_nanos = duration_ns};
    return goro__sset_write_proto(d, &m, f);
}

static int goroutine_delta_end(void *base, FILE *f, int64_t duration_ns) {
    return goro__sset_delta_end(base, goro__goroutine_sset, goroutine_delta_write, f, duration_ns);
}

static const goro__debug_profile goroutine_profile = {
    .delta_begin = goroutine_delta_begin,
    .delta_end = goroutine_delta_end,
    .name = "goroutine",
    .desc = "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in "
            "the same format as an unrecovered panic.",
    .count = goroutine_count,
    .write = goroutine_write,
    .listed = true,
};

static const goro__debug_profile heap_profile = {
    .name = "heap",
    .desc = "A sampling of memory allocations of live objects. You can specify the gc GET "
            "parameter to run GC before taking the heap sample.",
    .unavailable =
        "heap profile: not available in goro. goro has no garbage collector and does not "
        "see the C program's malloc calls, so it cannot sample live objects. Use a "
        "malloc profiler instead: heaptrack, valgrind --tool=massif, or jemalloc/"
        "tcmalloc heap profiling (their output opens in go tool pprof too).",
    .listed = true,
};

static const goro__debug_profile allocs_profile = {
    .name = "allocs",
    .desc = "A sampling of all past memory allocations",
    .unavailable = "allocs profile: not available in goro. goro does not see the C program's "
                   "malloc calls, so it cannot sample allocations. Use heaptrack, valgrind "
                   "--tool=massif or --tool=dhat, or jemalloc/tcmalloc allocation profiling.",
    .listed = true,
};

static const goro__debug_profile trace_profile = {
    .name = "trace",
    .desc = "A trace of execution of the current program. You can specify the duration in the "
            "seconds GET parameter. After you get the trace file, use the go tool trace command to "
            "investigate the trace.",
    .unavailable = "trace: not available in goro. go tool trace reads the Go runtime's own event "
                   "stream, which goro does not produce. Use the CPU profile "
                   "(/debug/pprof/profile?seconds=N) for where time goes, the block and mutex "
                   "profiles for waits, goroutine?debug=2 for what every goroutine is doing now, "
                   "and perf record/perf sched for a timeline of threads.",
    .listed = true,
};

void goro__pprof_register(void) {
    goro__debug_register_profile(&goroutine_profile);
    goro__debug_register_profile(&heap_profile);
    goro__debug_register_profile(&allocs_profile);
    goro__debug_register_profile(&trace_profile);
    goro__cpuprof_register();
    goro__waitprof_register();
    goro__threadprof_register();
}
