/*
 * debug_handlers.c - what the debug server answers: Go's net/http/pprof
 * handlers and ServeMux rules, and the index-page sections other layers
 * register (debug_server.h). Connections, sockets and the server thread are
 * in debug_server.c; this file turns one parsed request into one response
 * (goro__debug_route) and does no I/O on sockets.
 *
 * What it serves (Go's net/http/pprof, go-formats.md section 8):
 *   /debug/pprof/                 the index page, byte for byte Go's template,
 *                                 listing cmdline, goroutine, goroutineleak
 *                                 (plus sections other layers register, after
 *                                 Go's list: debug_server.h)
 *   /debug/pprof/goroutine        ?debug=0|1|2 (goro_profile_write)
 *   /debug/pprof/goroutineleak    ?debug=0|1|2 (goro_leak_profile_write)
 *   /debug/pprof/cmdline          argv joined with NUL bytes
 *   /debug/pprof/<other>          404 "Unknown profile" (serveError headers)
 *   /debug/pprof                  301 to /debug/pprof/ (ServeMux subtree rule)
 *   anything else                 404 "404 page not found"
 * Paths that are not clean ("//", ".", "..") get ServeMux's 301 to the cleaned
 * path. On a served path, methods other than GET and HEAD get 405 with
 * "Allow: GET, HEAD" (Go 1.22 "GET /..." patterns); on other paths 404, as Go.
 * "seconds=" (delta profiles) is refused with 400: Go's messages for a bad
 * value and for "seconds" with debug != 0, otherwise "delta profiles ... not
 * supported". debug is parsed as Go's strconv.Atoi (junk = 0); any non-zero
 * value gives text/plain, 0 gives the gzipped proto as an attachment; levels
 * >= 2 are passed as 2 and negative ones as 0, which is what Go's WriteTo
 * does with them.
 *
 * Locks: sections_mu guards the section list; held while the index page
 * renders the sections and by register/unregister (and across fork, see
 * debug_server.c). Everything else here runs on the
 * server thread only and keeps no state between requests.
 */
#define _GNU_SOURCE
#include "debug_handlers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../leak/leak_internal.h" /* goro__leak_last_count */
#include "debug_server.h"

typedef goro__debug_resp resp;

typedef struct section {
    char *name;
    goro__debug_render_fn render;
    void *ctx;
    struct section *next;
} section;
static pthread_mutex_t sections_mu = PTHREAD_MUTEX_INITIALIZER;
static section *sections;


void goro__debug_sections_lock(void)
{
    pthread_mutex_lock(&sections_mu);
}

void goro__debug_sections_unlock(void)
{
    pthread_mutex_unlock(&sections_mu);
}

/* -------------------------------------------------------- section hooks */

int goro__debug_register_section(const char *name, goro__debug_render_fn render, void *ctx)
{
    if (!name || !render)
        return EINVAL;
    section *s = calloc(1, sizeof *s);
    char *n = strdup(name);
    if (!s || !n) {
        free(s);
        free(n);
        return ENOMEM;
    }
    s->name = n;
    s->render = render;
    s->ctx = ctx;
    pthread_mutex_lock(&sections_mu);
    section **pp = &sections;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    pthread_mutex_unlock(&sections_mu);
    return 0;
}

void goro__debug_unregister_section(goro__debug_render_fn render, void *ctx)
{
    section *dead = NULL;
    pthread_mutex_lock(&sections_mu);
    for (section **pp = &sections; *pp; pp = &(*pp)->next) {
        if ((*pp)->render == render && (*pp)->ctx == ctx) {
            dead = *pp;
            *pp = dead->next;
            break;
        }
    }
    pthread_mutex_unlock(&sections_mu);
    if (dead) {
        free(dead->name);
        free(dead);
    }
}


/* -------------------------------------------------------------- responses */

const char *goro__debug_status_text(int code)
{
    switch (code) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Sets the body to a copy of s[0, n). */
static void set_body(resp *r, const char *s, size_t n)
{
    free(r->body);
    r->body = malloc(n ? n : 1);
    r->body_len = r->body ? n : 0;
    if (r->body && n)
        memcpy(r->body, s, n);
}

/* Go's serveError: text/plain, X-Go-Pprof: 1, no Content-Disposition,
   the message and a newline. */
static void serve_error(resp *r, int status, const char *msg)
{
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    r->go_pprof = true;
    r->attachment = NULL;
    size_t n = strlen(msg);
    set_body(r, msg, n + 1);
    if (r->body)
        r->body[n] = '\n';
}

/* http.Error: text/plain, nosniff, the message and a newline. */
static void http_error(resp *r, int status, const char *msg)
{
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    r->nosniff = true;
    size_t n = strlen(msg);
    set_body(r, msg, n + 1);
    if (r->body)
        r->body[n] = '\n';
}

static void html_escape(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&#34;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(s[i], f); break;
        }
    }
}

/* ------------------------------------------------------------- endpoints */

static const char desc_goroutine[] =
    "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in the "
    "same format as an unrecovered panic.";
static const char desc_goroutineleak[] =
    "Stack traces of all leaked goroutines. Use debug=2 as a query parameter to export in the "
    "same format as an unrecovered panic.";
static const char desc_cmdline[] = "The command line invocation of the current program";

static void serve_index(resp *r)
{
    struct {
        const char *name;
        long long count;
        const char *desc;
    } ent[] = {
        /* sorted by name, as Go sorts its entries */
        {"cmdline", 0, desc_cmdline},
        {"goroutine", goro_count(), desc_goroutine},
        /* Go's Profile.Count(): the last detection's result, stale
           until the next run (0 before the first) */
        {"goroutineleak", goro__leak_last_count(), desc_goroutineleak},
    };
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f) {
        http_error(r, 500, "out of memory");
        return;
    }
    fputs("<html>\n"
          "<head>\n"
          "<title>/debug/pprof/</title>\n"
          "<style>\n"
          ".profile-name{\n"
          "\tdisplay:inline-block;\n"
          "\twidth:6rem;\n"
          "}\n"
          "</style>\n"
          "</head>\n"
          "<body>\n"
          "/debug/pprof/\n"
          "<br>\n"
          "<p>Set debug=1 as a query parameter to export in legacy text format</p>\n"
          "<br>\n"
          "Types of profiles available:\n"
          "<table>\n"
          "<thead><td>Count</td><td>Profile</td></thead>\n",
          f);
    for (size_t i = 0; i < sizeof ent / sizeof ent[0]; i++) {
        fprintf(f, "<tr><td>%lld</td><td><a href='%s?debug=1'>", ent[i].count, ent[i].name);
        html_escape(f, ent[i].name, strlen(ent[i].name));
        fputs("</a></td></tr>\n", f);
    }
    fputs("</table>\n"
          "<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n"
          "<br>\n"
          "<p>\n"
          "Profile Descriptions:\n"
          "<ul>\n",
          f);
    for (size_t i = 0; i < sizeof ent / sizeof ent[0]; i++) {
        fputs("<li><div class=profile-name>", f);
        html_escape(f, ent[i].name, strlen(ent[i].name));
        fputs(": </div> ", f);
        html_escape(f, ent[i].desc, strlen(ent[i].desc));
        fputs("</li>\n", f);
    }
    fputs("</ul>\n"
          "</p>\n",
          f);

    /* goro's additions (pools, limiters): after Go's part, so the page is
       Go's byte for byte when nothing is registered. */
    pthread_mutex_lock(&sections_mu);
    for (section *s = sections; s; s = s->next) {
        char *text = NULL;
        size_t tlen = 0;
        FILE *t = open_memstream(&text, &tlen);
        if (!t)
            continue;
        s->render(t, s->ctx);
        if (fclose(t) != 0) {
            free(text);
            continue;
        }
        fputs("<p>\n", f);
        html_escape(f, s->name, strlen(s->name));
        fputs(":\n<pre>\n", f);
        html_escape(f, text, tlen);
        if (tlen && text[tlen - 1] != '\n')
            fputc('\n', f);
        fputs("</pre>\n</p>\n", f);
        free(text);
    }
    pthread_mutex_unlock(&sections_mu);

    fputs("</body>\n"
          "</html>",
          f);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        free(page);
        http_error(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->nosniff = true;
    r->ctype = "text/html; charset=utf-8";
    free(r->body);
    r->body = page;
    r->body_len = len;
}

static void serve_cmdline(resp *r)
{
    r->nosniff = true;
    r->ctype = "text/plain; charset=utf-8";
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    FILE *in = fopen("/proc/self/cmdline", "re");
    if (!out || !in) {
        if (out)
            fclose(out);
        free(buf);
        if (in)
            fclose(in);
        http_error(r, 500, "cannot read /proc/self/cmdline");
        return;
    }
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, in)) > 0)
        fwrite(tmp, 1, k, out);
    fclose(in);
    bool ok = !ferror(out);
    ok &= fclose(out) == 0;
    if (!ok) {
        free(buf);
        http_error(r, 500, "out of memory");
        return;
    }
    /* Each argument ends with a NUL there; os.Args joined with NUL has no
       trailing one. */
    if (len && buf[len - 1] == '\0')
        len--;
    r->status = 200;
    free(r->body);
    r->body = buf;
    r->body_len = len;
}

/* Go's handler(name).ServeHTTP for the profiles goro has. */
static void serve_profile(resp *r, const goro__http_req *q, const char *name)
{
    r->nosniff = true;
    bool leak;
    if (strcmp(name, "goroutine") == 0) {
        leak = false;
    } else if (strcmp(name, "goroutineleak") == 0) {
        leak = true;
    } else {
        serve_error(r, 404, "Unknown profile");
        return;
    }

    size_t vcap = strlen(q->raw_query) + 1;
    char *v = malloc(vcap);
    if (!v) {
        serve_error(r, 500, "out of memory");
        return;
    }
    long long debug = 0;
    if (goro__http_query_get(q->raw_query, "debug", v, vcap))
        (void)goro__http_atoi(v, &debug); /* Go: debug, _ := strconv.Atoi(...) */
    if (goro__http_query_get(q->raw_query, "seconds", v, vcap) && v[0] != '\0') {
        long long sec;
        int e = goro__http_atoi(v, &sec); /* Go: strconv.ParseInt(sec, 10, 64) */
        free(v);
        if (e != 0 || sec <= 0)
            serve_error(r, 400, "invalid value for \"seconds\" - must be a positive integer");
        else if (debug != 0)
            serve_error(r, 400, "seconds and debug params are incompatible");
        else
            serve_error(r, 400, "\"seconds\" parameter (delta profiles) is not supported by goro");
        return;
    }
    free(v);

    if (debug != 0) {
        r->ctype = "text/plain; charset=utf-8";
    } else {
        r->ctype = "application/octet-stream";
        r->attachment = leak ? "goroutineleak" : "goroutine";
    }
    /* What Go's WriteTo does with the value: >= 2 the full dump, 1 text,
       anything else the proto (even when negative, under a text/plain
       header, exactly as Go). */
    int level = debug >= 2 ? 2 : debug == 1 ? 1 : 0;

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        serve_error(r, 500, "out of memory");
        return;
    }
    int rc;
    bool failed;
    if (leak) {
        rc = goro_leak_profile_write(f, level); /* the count found */
        failed = rc < 0;
    } else {
        rc = goro_profile_write(f, level);
        failed = rc != 0;
    }
    failed |= ferror(f) != 0;
    failed |= fclose(f) != 0;
    if (failed) {
        free(buf);
        char msg[128];
        snprintf(msg, sizeof msg, "Could not write profile: %s",
                 strerror(rc > 0 ? rc : rc < 0 ? -rc : EIO));
        serve_error(r, 500, msg);
        return;
    }
    r->status = 200;
    free(r->body);
    r->body = buf;
    r->body_len = len;
}

/* http.Redirect with 301: Location is the escaped path plus the raw query;
   GET and HEAD get Go's little HTML body. */
static void serve_redirect(resp *r, const goro__http_req *q, const char *path, bool get_or_head)
{
    size_t cap = 3 * strlen(path) + 1;
    char *esc = malloc(cap);
    if (!esc || goro__http_escape_path(path, esc, cap) == (size_t)-1) {
        free(esc);
        http_error(r, 500, "out of memory");
        return;
    }
    char *loc = NULL;
    size_t loc_len = 0;
    FILE *f = open_memstream(&loc, &loc_len);
    if (!f) {
        free(esc);
        http_error(r, 500, "out of memory");
        return;
    }
    fputs(esc, f);
    if (q->raw_query[0])
        fprintf(f, "?%s", q->raw_query);
    free(esc);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        free(loc);
        http_error(r, 500, "out of memory");
        return;
    }
    r->status = 301;
    r->location = loc;
    if (!get_or_head)
        return;
    r->ctype = "text/html; charset=utf-8";
    char *body = NULL;
    size_t body_len = 0;
    f = open_memstream(&body, &body_len);
    if (!f)
        return;
    fputs("<a href=\"", f);
    html_escape(f, loc, loc_len);
    fputs("\">Moved Permanently</a>.\n\n", f);
    ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        free(body);
        return;
    }
    free(r->body);
    r->body = body;
    r->body_len = body_len;
}

#define PPROF_PREFIX "/debug/pprof/"

/* Go's ServeMux plus the net/http/pprof handlers. */
void goro__debug_route(resp *r, const goro__http_req *q)
{
    bool is_get = strcmp(q->method, "GET") == 0;
    bool is_head = strcmp(q->method, "HEAD") == 0;
    r->minor = q->minor ? 1 : 0;
    r->head_only = is_head;

    if (q->asterisk) {
        /* "OPTIONS *" is answered by the server itself; any other "*" is
           refused by ServeMux. */
        r->status = strcmp(q->method, "OPTIONS") == 0 ? 200 : 400;
        return;
    }

    size_t cap = strlen(q->path) + 2;
    char *clean = malloc(cap);
    if (!clean) {
        http_error(r, 500, "out of memory");
        return;
    }
    goro__http_clean_path(q->path, clean, cap);
    if (strcmp(clean, q->path) != 0) {
        serve_redirect(r, q, clean, is_get || is_head);
        free(clean);
        return;
    }
    free(clean);

    const char *path = q->path;
    enum { R_SLASH, R_CMDLINE, R_PPROF, R_NONE } which;
    if (strcmp(path, "/debug/pprof") == 0)
        which = R_SLASH;
    else if (strcmp(path, PPROF_PREFIX "cmdline") == 0)
        which = R_CMDLINE;
    else if (strncmp(path, PPROF_PREFIX, strlen(PPROF_PREFIX)) == 0)
        which = R_PPROF;
    else
        which = R_NONE;

    if (which == R_NONE) {
        http_error(r, 404, "404 page not found");
        return;
    }
    if (!is_get && !is_head) {
        http_error(r, 405, "Method Not Allowed");
        r->allow = "GET, HEAD";
        return;
    }
    switch (which) {
    case R_SLASH:
        serve_redirect(r, q, PPROF_PREFIX, true);
        break;
    case R_CMDLINE:
        serve_cmdline(r);
        break;
    case R_PPROF: {
        const char *name = path + strlen(PPROF_PREFIX);
        if (name[0])
            serve_profile(r, q, name);
        else
            serve_index(r);
        break;
    }
    case R_NONE:
        break;
    }
}

