/*
 * http_parse.h - a pure HTTP/1.x request-head parser for the debug server.
 *
 * Pure: no I/O, no allocation, no global state, no locks. Everything it
 * returns lives inside the caller's goro__http_req (an arena of copies), so
 * the input buffer may be reused as soon as goro__http_parse returns. It is
 * fuzzed with libFuzzer (fuzz/fuzz_http_parse.c).
 *
 * Grammar accepted (RFC 9112, with Go's net/http choices where they differ):
 *   *( CRLF ) request-line *( header-line ) CRLF      (bare LF accepted too)
 *   request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT
 *   method       = 1*tchar
 *   target       = origin-form ("/path?query") | absolute-form
 *                  ("http://host/path?query") | "*"
 *   header-line  = 1*tchar ":" OWS value OWS     (no obs-fold)
 * The head (leading empty lines, request line, headers, blank line) must end
 * within GORO__HTTP_MAX_HEAD bytes.
 *
 * Invariant the fuzzer checks: for a buffer whose full parse succeeds (200),
 * parsing any strict prefix of its head returns 0 (need more), never an
 * error: early rejection of partial input only fires on bytes no valid
 * continuation could accept.
 */
#ifndef GORO_DEBUG_HTTP_PARSE_H
#define GORO_DEBUG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/runtime.h"

/* request line + headers + blank line: 64 KiB, as browsers with many
   cookies send more than 8 KiB (Go's DefaultMaxHeaderBytes is 1 MiB) */
#define GORO__HTTP_MAX_HEAD 65536
#define GORO__HTTP_MAX_HEADERS 100

typedef struct goro__http_header {
    const char *name;  /* as sent (compare case-insensitively) */
    const char *value; /* leading and trailing SP/HTAB removed */
} goro__http_header;

typedef struct goro__http_req {
    /* Valid when goro__http_parse returned 200 (all NUL-terminated): */
    const char *method;     /* as sent, case-sensitive ("GET") */
    const char *target;     /* the raw request-target */
    const char *path;       /* percent-decoded path, "/..." (or "*") */
    const char *raw_query;  /* after the first '?', not decoded; "" if none */
    bool has_query;         /* a '?' was present */
    bool asterisk;          /* request-target was "*" */
    int minor;              /* HTTP/1.minor (0 or 1 and above) */
    size_t head_len;        /* bytes of the head, including the blank line */
    int64_t content_length; /* -1 if absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    int nheaders;
    goro__http_header headers[GORO__HTTP_MAX_HEADERS];
    /* Valid when it returned an error status: a short reason (static). */
    const char *error;
    /* private */
    size_t arena_used;
    char arena[4 * GORO__HTTP_MAX_HEAD + 64];
} goro__http_req;

/* Parses the request head at the start of buf[0, len).
   Returns 0 when more bytes are needed, 200 when a complete and valid head
   was parsed (req filled in), or an HTTP error status to answer with:
   400 malformed, 431 head too large or too many headers, 501 unsupported
   transfer coding, 505 HTTP major version other than 1. */
GORO__HIDDEN int goro__http_parse(goro__http_req *req, const char *buf, size_t len);

/* The first header with this name (case-insensitive), or NULL. */
GORO__HIDDEN const char *goro__http_header_get(const goro__http_req *req, const char *name);

/* Go's url.Values.Get on a raw query: pairs split on '&', pairs holding ';'
   or a bad %-escape skipped, '+' is a space, first match wins. Writes the
   decoded value to out (NUL-terminated) and returns true if found; returns
   false if absent or if out is too small (out of strlen(raw_query) + 1
   bytes is always enough). Values containing %00 are skipped. */
GORO__HIDDEN bool goro__http_query_get(const char *raw_query, const char *key, char *out,
                                       size_t outlen);

/* Go's strconv.Atoi (base 10, optional sign): 0 and *out set on success;
   EINVAL on a syntax error (*out = 0); ERANGE on overflow (*out clamped). */
GORO__HIDDEN int goro__http_atoi(const char *s, long long *out);

/* Go's net/http cleanPath: path.Clean on a rooted path, keeping a trailing
   slash. Writes to out (needs strlen(p) + 2 bytes) and returns the length,
   or (size_t)-1 if out is too small. */
GORO__HIDDEN size_t goro__http_clean_path(const char *p, char *out, size_t outlen);

/* Escapes a path as Go's url.URL.EscapedPath does (unreserved characters
   and "$&+,/:;=@" kept, everything else %XX). Needs 3 * strlen(p) + 1 bytes;
   returns the length or (size_t)-1 if out is too small. */
GORO__HIDDEN size_t goro__http_escape_path(const char *p, char *out, size_t outlen);

#endif
