/*
 * leak_internal.h - shared by the leak checks (leakcheck.c) and the
 * provable-leak analysis (leakprof.c).
 */
#ifndef GORO_LEAK_INTERNAL_H
#define GORO_LEAK_INTERNAL_H

#include "../observe/observe.h"
#include "../runtime/runtime.h"
#include "../runtime/upcalls.h"

/* Whether g is a plain thread, a scheduler's g0 or a runtime goroutine:
   never a leak candidate. The flags are read with one-byte atomic loads: a
   plain read of the three neighbouring bools may be merged by the compiler
   into a wider load that also covers waitreason, which its goroutine writes
   at any time (TSan reports that as a race). */
static inline bool goro__leak_flags_skip(goro__g *g) {
    /* Goroutine 1 on the main thread is the program's main, like a plain
       thread: never a leak. */
    return __atomic_load_n(&g->is_thread, __ATOMIC_RELAXED) ||
           __atomic_load_n(&g->main_stack, __ATOMIC_RELAXED) ||
           __atomic_load_n(&g->is_g0, __ATOMIC_RELAXED) ||
           __atomic_load_n(&g->system, __ATOMIC_RELAXED);
}

/* The same rule for a captured goroutine: a plain thread, or goroutine 1
   (the program's main, a plain thread or a goroutine on the main stack),
   is never reported. */
static inline bool goro__leak_cap_skip(const goro__gcap *cap) {
    return cap->is_thread || cap->id == 1;
}

/* The count found by the last goro_leak_profile_write (Go's Profile.Count():
   stale until the next run), for the debug server's index page. */
GORO__HIDDEN int goro__leak_last_count(void);

/* Writes one goroutine of a leak report: its name and labels, when it has
   any, as the line `# labels: {"name":"refresher"}` (the goroutine
   profile's debug=1 syntax), then its trace in the debug=2 format, which
   stays exactly Go's so that panicparse and gostackparse parse the blocks. */
GORO__HIDDEN void goro__leak_write_goroutine(goro__ow *w, const goro__gsnap *gs, int64_t now);

/* Installs the GOROLEAKCHECK=1 exit check and registers the profile
   (called once by goro__init through the hook table, which
   goro__leak_upcalls fills). */
GORO__HIDDEN void goro__leak_init(void);
GORO__HIDDEN void goro__leak_upcalls(goro__upcall_table *t);

#endif
