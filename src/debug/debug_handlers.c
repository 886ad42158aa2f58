/*
 * debug_handlers.c - what the debug server answers: Go's net/http/pprof
 * handlers and ServeMux rules. Connections, sockets and threads are in
 * debug_server.c; this file turns one parsed request into one response
 * (goro__debug_route) and does no I/O on sockets. The profiles themselves
 * and the index-page sections come from the registry (debug_registry.h):
 * this file names none of them.
 *
 * What it serves (Go's net/http/pprof, go-formats.md section 8):
 *   /debug/pprof/                 the index page, byte for byte Go's template,
 *                                 listing cmdline and every registered
 *                                 profile, sorted by name (then the sections
 *                                 other layers register, after Go's list)
 *   /debug/pprof/NAME             a registered profile: ?debug=0|1|2, and
 *                                 ?seconds=N as Go 1.19+ (a delta profile
 *                                 for those that have one; the collection
 *                                 time of a timed one such as "profile",
 *                                 default 30 s); unavailable ones answer 501
 *                                 with their reason (serveError headers)
 *   /debug/pprof/cmdline          argv joined with NUL bytes
 *   /debug/pprof/symbol           Go's Symbol: "num_symbols: 1", then
 *                                 "0x<pc> <function>" per address of the
 *                                 query (GET) or the body (POST), '+'-separated
 *   /debug/pprof/<other>          404 "Unknown profile" (serveError headers)
 *   /debug/pprof                  301 to /debug/pprof/ (ServeMux subtree rule)
 *   anything else                 404 "404 page not found"
 * Paths that are not clean ("//", ".", "..") get ServeMux's 301 to the cleaned
 * path. On a served path, methods other than GET and HEAD (and POST for
 * symbol) get 405 with "Allow"; on other paths 404, as Go.
 * debug is parsed as Go's strconv.Atoi (junk = 0); any non-zero value gives
 * text/plain, 0 gives the gzipped proto as an attachment; levels >= 2 are
 * passed as 2 and negative ones as 0, which is what Go's WriteTo does.
 *
 * Threads: goro__debug_route runs on the server thread; a response that
 * collects for a while (r->slow) is finished by goro__debug_finish_slow on
 * a thread of its own. Nothing here keeps state between requests.
 */
#define _GNU_SOURCE
#include "debug_handlers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../observe/debug_registry.h"
#include "../observe/observe.h" /* goro__symbolize (symbol) */

typedef goro__debug_resp resp;

/* -------------------------------------------------------------- responses */

const char *goro__debug_status_text(int code) {
    switch (code) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* Sets the body to a copy of s[0, n). */
static void set_body(resp *r, const char *s, size_t n) {
    free(r->body);
    r->body = malloc(n ? n : 1);
    r->body_len = r->body ? n : 0;
    if (r->body && n)
        memcpy(r->body, s, n);
}

/* Go's serveError: text/plain, X-Go-Pprof: 1, no Content-Disposition,
   the message and a newline. */
static void serve_error(resp *r, int status, const char *msg) {
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
static void http_error(resp *r, int status, const char *msg) {
    r->status = status;
    r->ctype = "text/plain; charset=utf-8";
    r->nosniff = true;
    size_t n = strlen(msg);
    set_body(r, msg, n + 1);
    if (r->body)
        r->body[n] = '\n';
}

static void html_escape(FILE *f, const char *s, size_t n) {
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

static const char desc_cmdline[] = "The command line invocation of the current program";

typedef struct index_entry {
    const char *name;
    long long count;
    const char *desc;
} index_entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const index_entry *)a)->name, ((const index_entry *)b)->name);
}

static void section_html(const char *name, const char *text, size_t tlen, void *arg) {
    FILE *f = arg;
    fputs("<p>\n", f);
    html_escape(f, name, strlen(name));
    fputs(":\n<pre>\n", f);
    html_escape(f, text, tlen);
    if (tlen && text[tlen - 1] != '\n')
        fputc('\n', f);
    fputs("</pre>\n</p>\n", f);
}

#define MAX_LISTED 40

static void serve_index(resp *r) {
    /* Go's list: the registered profiles plus cmdline, sorted by name. */
    const goro__debug_profile *reg[MAX_LISTED];
    int nreg = goro__debug_profiles(reg, MAX_LISTED - 1);
    index_entry ent[MAX_LISTED];
    size_t nent = 0;
    ent[nent++] = (index_entry){"cmdline", 0, desc_cmdline};
    for (int i = 0; i < nreg; i++)
        if (reg[i]->listed)
            ent[nent++] = (index_entry){reg[i]->name, reg[i]->count ? reg[i]->count() : 0,
                                        reg[i]->desc ? reg[i]->desc : ""};
    qsort(ent, nent, sizeof ent[0], cmp_entry);
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
    for (size_t i = 0; i < nent; i++) {
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
    for (size_t i = 0; i < nent; i++) {
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
    goro__debug_sections_render(section_html, f);

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

static void serve_cmdline(resp *r) {
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

/* Writes a profile into r's body through fn(f, arg). */
static void body_from(resp *r, int (*fn)(FILE *f, void *arg), void *arg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        serve_error(r, 500, "out of memory");
        return;
    }
    int rc = fn(f, arg);
    bool failed = rc != 0;
    failed |= ferror(f) != 0;
    failed |= fclose(f) != 0;
    if (failed) {
        free(buf);
        char msg[128];
        snprintf(msg, sizeof msg, "Could not write profile: %s", strerror(rc > 0 ? rc : EIO));
        serve_error(r, 500, msg);
        return;
    }
    r->status = 200;
    free(r->body);
    r->body = buf;
    r->body_len = len;
}

typedef struct write_arg {
    const goro__debug_profile *p;
    int level;
} write_arg;

static int write_level(FILE *f, void *arg) {
    write_arg *a = arg;
    return a->p->write(f, a->level);
}

/* The query value of key as Go's r.FormValue (empty if absent), malloc'd;
   NULL only when memory ran out. */
static char *form_value(const goro__http_req *q, const char *key) {
    size_t vcap = strlen(q->raw_query) + 1;
    char *v = malloc(vcap);
    if (v && !goro__http_query_get(q->raw_query, key, v, vcap))
        v[0] = '\0';
    return v;
}

void goro__debug_mem_free(goro__debug_mem *m) {
    if (m)
        free(m->buf);
    free(m);
}

/* Go's words when StartCPUProfile fails (nothing was written yet). */
static void timed_start_failed(resp *r, int rc) {
    char msg[160];
    snprintf(msg, sizeof msg, "Could not enable CPU profiling: %s",
             rc == GORO_EAGAIN ? "cpu profiling already in use" : strerror(rc));
    r->attachment = NULL;
    serve_error(r, 500, msg);
}

/* Go's handler(name).ServeHTTP, and its Profile handler for timed ones. */
static void serve_profile(resp *r, const goro__http_req *q, const char *name) {
    r->nosniff = true;
    const goro__debug_profile *p = goro__debug_profile_find(name);
    if (!p) {
        serve_error(r, 404, "Unknown profile");
        return;
    }
    if (p->unavailable) {
        serve_error(r, 501, p->unavailable);
        return;
    }
    char *dv = form_value(q, "debug");
    char *sv = form_value(q, "seconds");
    if (!dv || !sv) {
        free(dv);
        free(sv);
        serve_error(r, 500, "out of memory");
        return;
    }
    long long debug = 0, sec = 0;
    (void)goro__http_atoi(dv, &debug); /* Go: debug, _ := strconv.Atoi(...) */
    bool has_sec = sv[0] != '\0';
    int sec_err = has_sec ? goro__http_atoi(sv, &sec) : EINVAL;
    free(dv);
    free(sv);

    if (p->timed_start) {
        /* Go's Profile: a bad or missing value is the default duration. */
        if (sec_err != 0 || sec <= 0)
            sec = p->default_seconds > 0 ? p->default_seconds : 30;
        /* Started here, on the server thread, so that requests are served
           in order: a second one while this one runs is refused at once. */
        r->timed_mem = calloc(1, sizeof *r->timed_mem);
        r->timed_out = r->timed_mem ? open_memstream(&r->timed_mem->buf, &r->timed_mem->len) : NULL;
        int rc = r->timed_out ? p->timed_start(r->timed_out) : ENOMEM;
        if (rc != 0) {
            if (r->timed_out)
                fclose(r->timed_out);
            goro__debug_mem_free(r->timed_mem);
            r->timed_out = NULL;
            r->timed_mem = NULL;
            timed_start_failed(r, rc);
            return;
        }
        r->ctype = "application/octet-stream";
        r->attachment = p->attachment ? p->attachment : p->name;
        r->slow = p;
        r->slow_ns = (int64_t)sec * 1000000000LL;
        return;
    }
    if (has_sec) {
        if (sec_err != 0 || sec <= 0)
            serve_error(r, 400, "invalid value for \"seconds\" - must be a positive integer");
        else if (!p->delta_begin)
            serve_error(r, 400, "\"seconds\" parameter is not supported for this profile type");
        else if (debug != 0)
            serve_error(r, 400, "seconds and debug params are incompatible");
        else {
            r->base = p->delta_begin();
            if (!r->base) {
                serve_error(r, 500, "failed to collect profile");
                return;
            }
            r->ctype = "application/octet-stream";
            r->slow = p;
            r->slow_ns = (int64_t)sec * 1000000000LL;
        }
        return;
    }

    if (debug != 0) {
        r->ctype = "text/plain; charset=utf-8";
    } else {
        r->ctype = "application/octet-stream";
        r->attachment = p->attachment ? p->attachment : p->name;
    }
    /* What Go's WriteTo does with the value: >= 2 the full dump, 1 text,
       anything else the proto (even when negative, under a text/plain
       header, exactly as Go). */
    write_arg a = {p, debug >= 2 ? 2 : debug == 1 ? 1 : 0};
    body_from(r, write_level, &a);
}

typedef struct slow_arg {
    resp *r;
    bool (*sleep)(int64_t ns);
    int64_t start;
} slow_arg;

static int write_delta(FILE *f, void *arg) {
    slow_arg *a = arg;
    void *base = a->r->base;
    a->r->base = NULL;
    return a->r->slow->delta_end(base, f, goro__nanotime() - a->start);
}

void goro__debug_finish_slow(resp *r, bool (*sleep)(int64_t ns)) {
    const goro__debug_profile *p = r->slow;
    slow_arg a = {r, sleep, goro__nanotime()};
    if (p->timed_start) {
        /* started by serve_profile; a stopping server cuts it short */
        sleep(r->slow_ns);
        p->timed_stop();
        bool ok = fclose(r->timed_out) == 0;
        r->timed_out = NULL;
        goro__debug_mem *m = r->timed_mem;
        r->timed_mem = NULL;
        if (!ok) {
            goro__debug_mem_free(m);
            serve_error(r, 500, "out of memory");
            return;
        }
        r->status = 200;
        free(r->body);
        r->body = m->buf;
        r->body_len = m->len;
        free(m);
        return;
    }
    if (!sleep(r->slow_ns)) {
        p->delta_end(r->base, NULL, 0); /* frees the base */
        r->base = NULL;
        serve_error(r, 500, "context canceled");
        return;
    }
    snprintf(r->attach_buf, sizeof r->attach_buf, "%s-delta", p->name);
    r->attachment = r->attach_buf;
    body_from(r, write_delta, &a);
}

/* http.Redirect with 301: Location is the escaped path plus the raw query;
   GET and HEAD get Go's little HTML body. */
static void serve_redirect(resp *r, const goro__http_req *q, const char *path, bool get_or_head) {
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

/* Go's Symbol: the function of each address; pprof only cares whether
   num_symbols is 0. */
static void serve_symbol(resp *r, const goro__http_req *q, bool post, const char *body,
                         size_t body_len) {
    r->nosniff = true;
    r->ctype = "text/plain; charset=utf-8";
    const char *in = post ? body : q->raw_query;
    size_t n = post ? body_len : strlen(q->raw_query);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) {
        http_error(r, 500, "out of memory");
        return;
    }
    fputs("num_symbols: 1\n", f);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && in[j] != '+')
            j++;
        char word[32];
        size_t wl = j - i < sizeof word - 1 ? j - i : 0;
        memcpy(word, in + i, wl);
        word[wl] = '\0';
        /* Go: strconv.ParseUint(word, 0, 64); junk is 0 and skipped */
        char *end = NULL;
        errno = 0;
        unsigned long long pc =
            wl && word[0] != '-' && word[0] != '+' ? strtoull(word, &end, 0) : 0;
        if (!end || *end || errno)
            pc = 0;
        if (pc != 0 && pc < UINTPTR_MAX) {
            const goro__sym *sym = goro__symbolize((uintptr_t)pc + 1); /* looks up pc itself */
            if ((sym->flags & GORO__SYM_FOUND) && sym->n > 0 && sym->lines[0].func)
                fprintf(f, "%#llx %s\n", pc, sym->lines[0].func);
        }
        i = j + 1;
    }
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        free(out);
        http_error(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    free(r->body);
    r->body = out;
    r->body_len = len;
}

#define PPROF_PREFIX "/debug/pprof/"

/* Go's ServeMux plus the net/http/pprof handlers. */
void goro__debug_route(resp *r, const goro__http_req *q, const char *body, size_t body_len) {
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
    enum { R_SLASH, R_CMDLINE, R_SYMBOL, R_PPROF, R_NONE } which;
    if (strcmp(path, "/debug/pprof") == 0)
        which = R_SLASH;
    else if (strcmp(path, PPROF_PREFIX "cmdline") == 0)
        which = R_CMDLINE;
    else if (strcmp(path, PPROF_PREFIX "symbol") == 0)
        which = R_SYMBOL;
    else if (strncmp(path, PPROF_PREFIX, strlen(PPROF_PREFIX)) == 0)
        which = R_PPROF;
    else
        which = R_NONE;

    if (which == R_NONE) {
        http_error(r, 404, "404 page not found");
        return;
    }
    bool is_post = strcmp(q->method, "POST") == 0;
    if (!is_get && !is_head && !(which == R_SYMBOL && is_post)) {
        http_error(r, 405, "Method Not Allowed");
        r->allow = which == R_SYMBOL ? "GET, HEAD, POST" : "GET, HEAD";
        return;
    }
    switch (which) {
    case R_SLASH: serve_redirect(r, q, PPROF_PREFIX, true); break;
    case R_CMDLINE: serve_cmdline(r); break;
    case R_SYMBOL: serve_symbol(r, q, is_post, body, body_len); break;
    case R_PPROF: {
        const char *name = path + strlen(PPROF_PREFIX);
        if (name[0])
            serve_profile(r, q, name);
        else
            serve_index(r);
        break;
    }
    case R_NONE: break;
    }
}
