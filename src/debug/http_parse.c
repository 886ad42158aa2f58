/*
 * http_parse.c - HTTP/1.x request-head parsing for the debug server (pure).
 *
 * No I/O, no allocation, no globals: the debug server calls goro__http_parse
 * again on the whole buffer each time bytes arrive (heads are at most
 * GORO__HTTP_MAX_HEAD bytes, so re-parsing costs little and keeps the parser
 * stateless, which is what makes it easy to fuzz).
 *
 * Outcomes:
 *   0    the head is not complete yet and nothing seen so far is invalid;
 *   200  a complete, valid head (req filled in, req->head_len consumed);
 *   4xx/5xx  the status to answer with (req->error says why).
 *
 * Early rejection: an incomplete line is checked with the same character
 * rules as a complete one (check_partial_*), so garbage gets its 400 at once
 * instead of after the read timeout. Those prefix checks only reject bytes
 * that no continuation could make valid; the fuzzer checks exactly that
 * (every strict prefix of an accepted head parses to 0).
 *
 * The arena holds every string handed out; its size bound is in
 * http_parse.h (at most four copies of the request line plus one of the
 * headers), and every copy is bounds-checked anyway.
 */
#include "http_parse.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ------------------------------------------------------ character classes */

static bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
    }
}

/* Bytes allowed in a request-target: visible ASCII and obs-text, no '#'. */
static bool is_target_char(unsigned char c) { return c > 0x20 && c != 0x7f && c != '#'; }

/* Bytes allowed in a header value: HTAB, SP, VCHAR, obs-text. */
static bool is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool ieq(const char *a, size_t an, const char *b) {
    size_t bn = strlen(b);
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* ----------------------------------------------------------------- arena */

static char *arena_put(goro__http_req *r, const char *s, size_t n) {
    if (n + 1 > sizeof r->arena - r->arena_used)
        return NULL;
    char *d = r->arena + r->arena_used;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    r->arena_used += n + 1;
    return d;
}

/* Percent-decodes s[0, n) into the arena. Returns NULL on a bad escape, a
   decoded NUL, or a full arena; *bad tells the first two from the last. */
static char *arena_put_decoded(goro__http_req *r, const char *s, size_t n, bool *bad) {
    *bad = false;
    if (n + 1 > sizeof r->arena - r->arena_used)
        return NULL;
    char *d = r->arena + r->arena_used;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                *bad = true;
                return NULL;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        d[w++] = (char)c;
    }
    d[w] = '\0';
    r->arena_used += w + 1;
    return d;
}

/* ----------------------------------------------------------------- lines */

/* Finds the line starting at pos within [0, lim). On success sets *ln (the
   line length without CR LF / LF) and *next (the offset after the LF). */
static bool next_line(const char *buf, size_t pos, size_t lim, size_t *ln, size_t *next) {
    const char *nl = memchr(buf + pos, '\n', lim - pos);
    if (!nl)
        return false;
    size_t end = (size_t)(nl - buf);
    *next = end + 1;
    if (end > pos && buf[end - 1] == '\r')
        end--;
    *ln = end - pos;
    return true;
}

/* A CR anywhere but right before the LF is invalid. */
static bool has_cr(const char *s, size_t n) { return memchr(s, '\r', n) != NULL; }

static int fail(goro__http_req *r, int status, const char *why) {
    r->error = why;
    return status;
}

/* ------------------------------------------------------------ request line */

/* "HTTP/" DIGIT "." DIGIT, as Go's ParseHTTPVersion. */
static bool parse_version(const char *s, size_t n, int *major, int *minor) {
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.')
        return false;
    if (s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9')
        return false;
    *major = s[5] - '0';
    *minor = s[7] - '0';
    return true;
}

static int parse_target(goro__http_req *r, const char *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_target_char((unsigned char)t[i]))
            return fail(r, 400, "invalid URI");
    r->target = arena_put(r, t, n);
    if (!r->target)
        return fail(r, 431, "request too large");

    if (n == 1 && t[0] == '*') {
        r->asterisk = true;
        r->path = "*";
        r->raw_query = "";
        return 200;
    }
    const char *p = t;
    size_t pn = n;
    if (t[0] != '/') {
        /* absolute-form: scheme "://" authority [path-abempty] ["?" query] */
        size_t skip;
        if (n >= 7 && ieq(t, 7, "http://"))
            skip = 7;
        else if (n >= 8 && ieq(t, 8, "https://"))
            skip = 8;
        else
            return fail(r, 400, "invalid URI");
        size_t a = skip;
        while (a < n && t[a] != '/' && t[a] != '?')
            a++;
        if (a == skip)
            return fail(r, 400, "invalid URI");
        p = t + a;
        pn = n - a;
    }
    const char *q = memchr(p, '?', pn);
    size_t path_n = q ? (size_t)(q - p) : pn;
    if (q) {
        r->has_query = true;
        r->raw_query = arena_put(r, q + 1, pn - path_n - 1);
    } else {
        r->raw_query = arena_put(r, "", 0);
    }
    if (!r->raw_query)
        return fail(r, 431, "request too large");
    if (path_n == 0) {
        r->path = "/";
        return 200;
    }
    bool bad;
    r->path = arena_put_decoded(r, p, path_n, &bad);
    if (!r->path)
        return bad ? fail(r, 400, "invalid URI escape") : fail(r, 431, "request too large");
    return 200;
}

static int parse_request_line(goro__http_req *r, const char *s, size_t n) {
    if (has_cr(s, n))
        return fail(r, 400, "malformed HTTP request");
    const char *sp1 = memchr(s, ' ', n);
    if (!sp1)
        return fail(r, 400, "malformed HTTP request");
    size_t mn = (size_t)(sp1 - s);
    if (mn == 0)
        return fail(r, 400, "invalid method");
    for (size_t i = 0; i < mn; i++)
        if (!is_tchar((unsigned char)s[i]))
            return fail(r, 400, "invalid method");
    const char *t = sp1 + 1;
    size_t rest = n - mn - 1;
    const char *sp2 = memchr(t, ' ', rest);
    if (!sp2)
        return fail(r, 400, "malformed HTTP request");
    size_t tn = (size_t)(sp2 - t);
    const char *v = sp2 + 1;
    size_t vn = rest - tn - 1;
    int major, minor;
    if (!parse_version(v, vn, &major, &minor))
        return fail(r, 400, "malformed HTTP version");
    if (tn == 0)
        return fail(r, 400, "invalid URI");
    r->method = arena_put(r, s, mn);
    if (!r->method)
        return fail(r, 431, "request too large");
    int rc = parse_target(r, t, tn);
    if (rc != 200)
        return rc;
    if (major != 1)
        return fail(r, 505, "unsupported protocol version");
    r->minor = minor;
    return 200;
}

/* Is s[0, n) (no LF yet) a prefix of some valid request line? */
static bool partial_request_line_ok(const char *s, size_t n) {
    static const char ver[] = "HTTP/D.D";
    int part = 0; /* 0 method, 1 target, 2 version */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            return i == n - 1; /* only as the CR of CR LF */
        if (c == ' ') {
            if (part == 2 || i == start)
                return false;
            part++;
            start = i + 1;
            continue;
        }
        if (part == 0) {
            if (!is_tchar(c))
                return false;
        } else if (part == 1) {
            if (!is_target_char(c))
                return false;
        } else {
            size_t k = i - start;
            if (k >= 8)
                return false;
            if (ver[k] == 'D') {
                if (c < '0' || c > '9')
                    return false;
            } else if (c != (unsigned char)ver[k]) {
                return false;
            }
        }
    }
    return true;
}

/* --------------------------------------------------------------- headers */

static int parse_header(goro__http_req *r, const char *s, size_t n) {
    if (s[0] == ' ' || s[0] == '\t')
        return fail(r, 400, "obsolete line folding");
    if (has_cr(s, n))
        return fail(r, 400, "malformed MIME header line");
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return fail(r, 400, "malformed MIME header line");
    size_t kn = (size_t)(colon - s);
    for (size_t i = 0; i < kn; i++)
        if (!is_tchar((unsigned char)s[i]))
            return fail(r, 400, "invalid header name");
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    for (size_t i = 0; i < vn; i++)
        if (!is_value_char((unsigned char)v[i]))
            return fail(r, 400, "invalid header value");
    while (vn && (v[0] == ' ' || v[0] == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    if (r->nheaders >= GORO__HTTP_MAX_HEADERS)
        return fail(r, 431, "too many headers");
    goro__http_header *h = &r->headers[r->nheaders];
    h->name = arena_put(r, s, kn);
    h->value = h->name ? arena_put(r, v, vn) : NULL;
    if (!h->value)
        return fail(r, 431, "request too large");
    r->nheaders++;
    return 200;
}

/* Is s[0, n) (no LF yet) a prefix of some valid header line (or of the
   blank line that ends the head)? */
static bool partial_header_ok(const char *s, size_t n) {
    bool in_value = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            return i == n - 1;
        if (in_value) {
            if (!is_value_char(c))
                return false;
        } else if (c == ':') {
            if (i == 0)
                return false;
            in_value = true;
        } else if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

/* Host: Go's httpguts.ValidHostHeader character set. */
static bool valid_host(const char *h) {
    for (const unsigned char *p = (const unsigned char *)h; *p; p++) {
        unsigned char c = *p;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if (c >= 0x80)
            continue;
        if (!strchr("!$%&'()*+,-.:;=[]_~@", c))
            return false;
    }
    return true;
}

static bool parse_content_length(const char *s, int64_t *out) {
    if (!*s)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* Checks that need the whole head: Host, Content-Length, Transfer-Encoding. */
static int validate_head(goro__http_req *r) {
    int hosts = 0, tes = 0;
    const char *host = NULL, *te = NULL;
    for (int i = 0; i < r->nheaders; i++) {
        const goro__http_header *h = &r->headers[i];
        size_t kn = strlen(h->name);
        if (ieq(h->name, kn, "host")) {
            hosts++;
            host = h->value;
        } else if (ieq(h->name, kn, "content-length")) {
            int64_t v;
            if (!parse_content_length(h->value, &v))
                return fail(r, 400, "bad Content-Length");
            if (r->content_length >= 0 && r->content_length != v)
                return fail(r, 400, "conflicting Content-Length");
            r->content_length = v;
        } else if (ieq(h->name, kn, "transfer-encoding")) {
            tes++;
            te = h->value;
        }
    }
    if (hosts > 1)
        return fail(r, 400, "too many Host headers");
    if (hosts == 1 && !valid_host(host))
        return fail(r, 400, "malformed Host header");
    if (hosts == 0 && r->minor >= 1)
        return fail(r, 400, "missing required Host header");
    if (tes > 1)
        return fail(r, 501, "unsupported transfer encoding");
    if (tes == 1) {
        if (!ieq(te, strlen(te), "chunked"))
            return fail(r, 501, "unsupported transfer encoding");
        if (r->content_length >= 0)
            return fail(r, 400, "both Transfer-Encoding and Content-Length");
        r->chunked = true;
    }
    return 200;
}

/* ------------------------------------------------------------------ parse */

int goro__http_parse(goro__http_req *r, const char *buf, size_t len) {
    r->method = r->target = r->path = r->raw_query = NULL;
    r->has_query = r->asterisk = r->chunked = false;
    r->minor = 0;
    r->head_len = 0;
    r->content_length = -1;
    r->nheaders = 0;
    r->error = NULL;
    r->arena_used = 0;

    size_t lim = len < GORO__HTTP_MAX_HEAD ? len : GORO__HTTP_MAX_HEAD;
    size_t pos = 0, ln, next;
    bool have_request_line = false;

    for (;;) {
        if (!next_line(buf, pos, lim, &ln, &next)) {
            /* The rest is an incomplete line. */
            const char *s = buf + pos;
            size_t n = lim - pos;
            bool ok = have_request_line ? partial_header_ok(s, n) : partial_request_line_ok(s, n);
            if (!ok)
                return fail(r, 400,
                            have_request_line ? "malformed MIME header line"
                                              : "malformed HTTP request");
            if (len >= GORO__HTTP_MAX_HEAD)
                return fail(r, 431, "request header fields too large");
            return 0;
        }
        const char *s = buf + pos;
        pos = next;
        if (!have_request_line) {
            if (ln == 0)
                continue; /* RFC 9112 2.2: empty lines before the request line */
            int rc = parse_request_line(r, s, ln);
            if (rc != 200)
                return rc;
            have_request_line = true;
            continue;
        }
        if (ln == 0) {
            r->head_len = pos;
            return validate_head(r);
        }
        int rc = parse_header(r, s, ln);
        if (rc != 200)
            return rc;
    }
}

/* ------------------------------------------------------------- accessors */

const char *goro__http_header_get(const goro__http_req *r, const char *name) {
    for (int i = 0; i < r->nheaders; i++)
        if (ieq(r->headers[i].name, strlen(r->headers[i].name), name))
            return r->headers[i].value;
    return NULL;
}

/* The byte the query escape at s[*i] stands for ('+' is a space, %XX a
   hex byte, which advances *i past the two digits); -1 on a bad escape. */
static int query_byte(const char *s, size_t n, size_t *i) {
    unsigned char c = (unsigned char)s[*i];
    if (c == '+')
        return ' ';
    if (c != '%')
        return c;
    int hi = *i + 1 < n ? hexval((unsigned char)s[*i + 1]) : -1;
    int lo = *i + 2 < n ? hexval((unsigned char)s[*i + 2]) : -1;
    if (hi < 0 || lo < 0)
        return -1;
    *i += 2;
    return hi << 4 | lo;
}

/* Query-unescapes s[0, n) into out (if not NULL, room for n + 1 bytes).
   Returns the decoded length or -1 on a bad escape. */
static long query_unescape(const char *s, size_t n, char *out) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int c = query_byte(s, n, &i);
        if (c < 0)
            return -1;
        if (out)
            out[w] = (char)c;
        w++;
    }
    if (out)
        out[w] = '\0';
    return (long)w;
}

/* Does the query-unescaped s[0, n) equal key? (false on a bad escape) */
static bool query_key_eq(const char *s, size_t n, const char *key) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = query_byte(s, n, &i);
        if (c < 0 || key[k] == '\0' || (unsigned char)key[k] != c)
            return false;
        k++;
    }
    return key[k] == '\0';
}

bool goro__http_query_get(const char *q, const char *key, char *out, size_t outlen) {
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t pn = amp ? (size_t)(amp - q) : strlen(q);
        const char *pair = q;
        q = amp ? amp + 1 : q + pn;
        if (pn == 0 || memchr(pair, ';', pn))
            continue;
        const char *eq = memchr(pair, '=', pn);
        size_t kn = eq ? (size_t)(eq - pair) : pn;
        const char *v = eq ? eq + 1 : pair + pn;
        size_t vn = eq ? pn - kn - 1 : 0;
        if (query_unescape(pair, kn, NULL) < 0 || !query_key_eq(pair, kn, key))
            continue;
        long dn = query_unescape(v, vn, NULL);
        if (dn < 0)
            continue; /* Go's ParseQuery drops the whole pair */
        if ((size_t)dn + 1 > outlen)
            return false;
        query_unescape(v, vn, out);
        if (strlen(out) != (size_t)dn)
            continue; /* decoded NUL */
        return true;
    }
    return false;
}

int goro__http_atoi(const char *s, long long *out) {
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!*p) {
        *out = 0;
        return EINVAL;
    }
    unsigned long long v = 0;
    unsigned long long lim =
        neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    bool range = false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            *out = 0;
            return EINVAL;
        }
        if (!range) {
            unsigned d = (unsigned)(*p - '0');
            if (v > (lim - d) / 10)
                range = true;
            else
                v = v * 10 + d;
        }
    }
    if (range) {
        *out = neg ? LLONG_MIN : LLONG_MAX;
        return ERANGE;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* ------------------------------------------------------------- path tools */

size_t goro__http_clean_path(const char *p, char *out, size_t outlen) {
    size_t n = strlen(p);
    if (outlen < n + 2)
        return (size_t)-1;
    /* path.Clean of a rooted path, as Go's lazybuf with rooted = true:
       out[0] = '/', dotdot = 1. A leading '/' is implied when missing. */
    size_t w = 1, r = 0;
    out[0] = '/';
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > 1) {
                w--;
                while (w > 1 && out[w] != '/')
                    w--;
            }
        } else {
            if (w != 1)
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    /* Keep a trailing slash (net/http cleanPath). */
    if (n > 0 && p[n - 1] == '/' && w != 1)
        out[w++] = '/';
    out[w] = '\0';
    return w;
}

size_t goro__http_escape_path(const char *p, char *out, size_t outlen) {
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *s = (const unsigned char *)p; *s; s++) {
        unsigned char c = *s;
        bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("-._~$&+,/:;=@", c));
        if (w + (keep ? 1 : 3) + 1 > outlen)
            return (size_t)-1;
        if (keep) {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        }
    }
    if (w + 1 > outlen)
        return (size_t)-1;
    out[w] = '\0';
    return w;
}
