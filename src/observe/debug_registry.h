/*
 * debug_registry.h - what the debug server serves besides its own pages:
 * index-page sections and /debug/pprof/NAME profiles, registered by the
 * layers that own them (pools and limiters add sections; the goroutine,
 * goroutineleak, CPU, block, mutex and threadcreate profiles add
 * themselves). Internal.
 *
 * Layering (arch -> runtime -> chan/sync/io/observe -> leak/pool -> debug):
 * the registry lives here in observe, below everything that registers
 * (observe's own profiles, leak, pool) and below the server in src/debug,
 * which reads it and never names a pool, a leak check or a profile. So
 * every include points down: nothing below src/debug includes the server's
 * own headers. It needs nothing but the runtime header.
 *
 * Registration normally happens from a constructor of the registering file
 * (profiles) or when the object is created (pools, limiters).
 */
#ifndef GORO_OBSERVE_DEBUG_REGISTRY_H
#define GORO_OBSERVE_DEBUG_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/runtime.h"

/* ------------------------------------------------------ index sections */

typedef void (*goro__debug_render_fn)(FILE *out, void *ctx);

/* Adds a section to the index page, shown after Go's profile list as
   "<p>\nNAME:\n<pre>\n...</pre>\n</p>\n" in registration order. render writes
   plain text (the server HTML-escapes it). It runs on the debug server's own
   thread (not a goroutine) while the registry lock is held, so it must not
   block on anything a goroutine may hold for long (read counters with
   atomics), and must not register/unregister or stop the server. name is
   copied. Returns 0 or ENOMEM/EINVAL. */
GORO__HIDDEN int goro__debug_register_section(const char *name, goro__debug_render_fn render,
                                              void *ctx);

/* Removes the section registered with this (render, ctx) pair (the first
   one if registered twice; nothing if none). When it returns, render is not
   running for it and will not run again, so ctx may be freed. */
GORO__HIDDEN void goro__debug_unregister_section(goro__debug_render_fn render, void *ctx);

/* Runs fn(name, text, len, arg) for each section's current text, in
   registration order, under the registry lock (the index page). */
GORO__HIDDEN void goro__debug_sections_render(void (*fn)(const char *name, const char *text,
                                                         size_t len, void *arg),
                                              void *arg);

/* ------------------------------------------------------------- profiles */

/* A profile served at /debug/pprof/NAME (Go's handler(name) or one of
   net/http/pprof's own handlers). Exactly one of write, write_timed or
   unavailable is set. The struct must outlive the program (static). */
typedef struct goro__debug_profile {
    const char *name;
    const char *desc;         /* Go's description (the index page) */
    long long (*count)(void); /* the index page's Count; NULL: 0 */
    /* A pprof.Lookup profile: writes it to f at a debug level (0 gzipped
       proto, 1 text, 2 the goroutine dump where that exists). Returns 0 or
       an errno value. */
    int (*write)(FILE *f, int debug);
    /* seconds=N on a write profile (Go 1.19's delta profiles): begin takes
       the base state, end writes the proto of what changed since and frees
       it. NULL: "seconds" is refused as Go refuses it for such profiles. */
    void *(*delta_begin)(void);
    int (*delta_end)(void *base, FILE *f, int64_t duration_ns);
    /* A duration profile (/debug/pprof/profile): starts collecting into f,
       returns 0 or an errno value; stop ends it (the proto is in f then). */
    int (*timed_start)(FILE *f);
    void (*timed_stop)(void);
    int64_t default_seconds; /* when seconds= is absent or invalid */
    const char *attachment;  /* Content-Disposition filename; NULL: name */
    /* A profile goro cannot produce: answered with this text (status 501,
       Go's serveError headers) instead of a bare 404. */
    const char *unavailable;
    /* Listed on the index page as Go lists it (every Go profile is, even
       the unavailable ones, so that the page names them all). */
    bool listed;
} goro__debug_profile;

/* Registers p (kept by pointer). A second profile with the same name
   replaces the first. Returns 0 or EINVAL. */
GORO__HIDDEN int goro__debug_register_profile(const goro__debug_profile *p);

/* The profile registered under name, or NULL. */
GORO__HIDDEN const goro__debug_profile *goro__debug_profile_find(const char *name);

/* The registered profiles (at most max), sorted by name. Returns the count. */
GORO__HIDDEN int goro__debug_profiles(const goro__debug_profile **out, int max);

/* The registry's lock, for the server's fork handlers. */
GORO__HIDDEN void goro__debug_registry_lock(void);
GORO__HIDDEN void goro__debug_registry_unlock(void);

#endif
