/*
 * debug_server.h - hooks other layers use to add to the debug server's
 * /debug/pprof/ index page (internal; see debug_server.c).
 */
#ifndef GORO_OBSERVE_DEBUG_SERVER_H
#define GORO_OBSERVE_DEBUG_SERVER_H

#include <stdio.h>

#include "../runtime/runtime.h"

typedef void (*goro__debug_render_fn)(FILE *out, void *ctx);

/* Adds a section to the index page, shown after Go's profile list as
   "<p>\nNAME:\n<pre>\n...</pre>\n</p>\n" in registration order. render writes
   plain text (the server HTML-escapes it). It runs on the debug server's own
   thread (not a goroutine) while the server holds the sections lock, so it
   must not block on anything a goroutine may hold for long (read counters
   with atomics), and must not register/unregister sections or stop the
   server. name is copied. Returns 0 or ENOMEM/EINVAL. Any number of sections
   may be registered, whether or not the server is running. */
GORO__HIDDEN int goro__debug_register_section(const char *name, goro__debug_render_fn render, void *ctx);

/* Removes the section registered with this (render, ctx) pair (the first
   one if registered twice; nothing if none). When it returns, render is not
   running for it and will not run again, so ctx may be freed. */
GORO__HIDDEN void goro__debug_unregister_section(goro__debug_render_fn render, void *ctx);

/* Tests: the read timeout of connections accepted from now on (default
   10 s; ns <= 0 restores it). */
GORO__HIDDEN void goro__debug_set_read_timeout(int64_t ns);

#endif
