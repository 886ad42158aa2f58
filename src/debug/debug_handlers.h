/*
 * debug_handlers.h - between the debug server's connection loop
 * (debug_server.c) and its request handlers (debug_handlers.c). Private to
 * those two files.
 */
#ifndef GORO_DEBUG_HANDLERS_H
#define GORO_DEBUG_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "../runtime/runtime.h"
#include "http_parse.h"

typedef struct goro__debug_mem {
    char *buf;
    size_t len;
} goro__debug_mem;

/* One response, before it is serialized. Strings are static except
   location and body, which the response owns (malloc'd). */
typedef struct goro__debug_resp {
    int status;
    int minor;              /* HTTP/1.minor of the status line */
    bool head_only;         /* HEAD: the headers GET would get, no body */
    bool nosniff;           /* X-Content-Type-Options: nosniff */
    bool go_pprof;          /* X-Go-Pprof: 1 (serveError) */
    const char *ctype;      /* Content-Type, or NULL */
    const char *attachment; /* Content-Disposition filename, or NULL */
    const char *allow;      /* Allow, or NULL */
    char *location;         /* Location (malloc'd), or NULL */
    char *body;             /* malloc'd, or NULL */
    size_t body_len;
    /* A response that takes a while (a CPU profile, a delta profile): the
       server finishes it on a thread of its own with
       goro__debug_finish_slow, so other clients are served meanwhile. */
    const struct goro__debug_profile *slow;
    int64_t slow_ns;                   /* how long it collects */
    void *base;                        /* a delta profile's base (delta_begin) */
    FILE *timed_out;                   /* a timed profile's output, being collected */
    struct goro__debug_mem *timed_mem; /* ... its memory (open_memstream's, malloc'd:
                                          the response is copied to a worker) */
    char attach_buf[80];               /* attachment storage when it is not static */
} goro__debug_resp;

/* Fills r (zeroed by the caller, status 200) with the answer to q (whose
   body, for a POST, is body[0, body_len)), as Go's ServeMux with the
   net/http/pprof handlers would give it. */
GORO__HIDDEN void goro__debug_route(goro__debug_resp *r, const goro__http_req *q, const char *body,
                                    size_t body_len);

GORO__HIDDEN void goro__debug_mem_free(goro__debug_mem *m);

/* Completes a response with r->slow set: collects for r->slow_ns, pausing
   with sleep (which returns false when the server is stopping; a CPU
   profile is then cut short, a delta profile answers an error). */
GORO__HIDDEN void goro__debug_finish_slow(goro__debug_resp *r, bool (*sleep)(int64_t ns));

/* "OK", "Not Found", ... */
GORO__HIDDEN const char *goro__debug_status_text(int code);

#endif
