/*
 * http_hello - a minimal HTTP/1.1 server on goroutines: one goroutine per
 * connection, keep-alive and pipelining, "Hello, World!" for every request.
 *
 *   http_hello                 serve on 127.0.0.1 (an ephemeral port), check a
 *                              few requests with a built-in client (keep-alive,
 *                              pipelining, HTTP/1.0, a body, a malformed
 *                              request) and exit 0 if all answers are right
 *   http_hello --serve PORT    keep serving on 127.0.0.1:PORT until killed
 *                              (try: curl -v http://127.0.0.1:PORT/ or wrk;
 *                              PORT 0 picks one)
 *   --idle-timeout SECONDS     drop connections idle this long (default 60;
 *                              0: never, as net/http without IdleTimeout)
 *
 * The server speaks just enough HTTP/1.1 for clients and load generators:
 * request line and headers up to 8 KiB, Content-Length bodies (read and
 * ignored), "Connection: close" and HTTP/1.0 keep-alive rules, 400 for
 * malformed requests, 501 for chunked request bodies, and it drops a
 * connection that stays idle for a minute.
 */
#define _GNU_SOURCE 1 /* memmem, strcasestr */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "goro.h"

/* A connection idle this long is dropped (--idle-timeout; 0: never). */
static int64_t IDLE_TIMEOUT = GORO_SEC(60);
#define MAX_HEADER 8192
static const char BODY[] = "Hello, World!";

/* ------------------------------------------------------------- server */

typedef struct {
    int fd;
    char in[MAX_HEADER];
    size_t inlen;
    char out[16384];
    size_t outlen;
    time_t date_sec;
    char date[64];
} conn;

static bool flush_out(conn *c) {
    if (c->outlen == 0)
        return true;
    ssize_t w = goro_write(c->fd, c->out, c->outlen, IDLE_TIMEOUT);
    c->outlen = 0;
    return w >= 0;
}

static const char *http_date(conn *c) {
    time_t now = time(NULL);
    if (now != c->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(c->date, sizeof c->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        c->date_sec = now;
    }
    return c->date;
}

static bool respond(conn *c, int status, const char *reason, const char *body, bool head,
                    bool keep_alive) {
    if (sizeof c->out - c->outlen < 512 && !flush_out(c))
        return false;
    size_t blen = strlen(body);
    int n = snprintf(c->out + c->outlen, sizeof c->out - c->outlen,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n%s\r\n%s",
                     status, reason, http_date(c), blen, keep_alive ? "" : "Connection: close\r\n",
                     head ? "" : body);
    c->outlen += (size_t)n;
    return true;
}

/* Case-insensitive: does the comma-separated header value contain token? */
static bool has_token(const char *v, size_t n, const char *token) {
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= n; i++) {
        if (strncasecmp(v + i, token, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' '))
            return true;
    }
    return false;
}

typedef struct {
    bool head, keep_alive, chunked, bad;
    long long content_length;
} request;

/* Parses the head in c->in[0..end) (end: just past the blank line). */
static request parse_head(const char *p, size_t end) {
    request r = {.content_length = 0};
    const char *line_end = memchr(p, '\n', end);
    size_t ll = (size_t)(line_end - p);
    if (ll && p[ll - 1] == '\r')
        ll--;
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(p, ' ', ll);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p)) : NULL;
    if (!sp1 || sp1 == p || !sp2 || sp2 == sp1 + 1 || (size_t)(p + ll - (sp2 + 1)) != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1')) {
        r.bad = true;
        return r;
    }
    for (const char *m = p; m < sp1; m++)
        if (!isupper((unsigned char)*m)) {
            r.bad = true;
            return r;
        }
    bool http11 = sp2[8] == '1';
    r.head = (size_t)(sp1 - p) == 4 && memcmp(p, "HEAD", 4) == 0;
    r.keep_alive = http11;
    /* Headers. */
    const char *q = line_end + 1;
    while (q < p + end) {
        const char *e = memchr(q, '\n', (size_t)(p + end - q));
        size_t n = (size_t)(e - q);
        if (n && q[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the blank line */
        const char *colon = memchr(q, ':', n);
        if (!colon || colon == q) {
            r.bad = true;
            return r;
        }
        size_t name_len = (size_t)(colon - q);
        const char *v = colon + 1;
        while (v < q + n && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(q + n - v);
        if (name_len == 10 && strncasecmp(q, "connection", 10) == 0) {
            if (has_token(v, vl, "close"))
                r.keep_alive = false;
            else if (has_token(v, vl, "keep-alive"))
                r.keep_alive = true;
        } else if (name_len == 14 && strncasecmp(q, "content-length", 14) == 0) {
            char *endp;
            char tmp[24];
            if (vl == 0 || vl >= sizeof tmp) {
                r.bad = true;
                return r;
            }
            memcpy(tmp, v, vl);
            tmp[vl] = 0;
            r.content_length = strtoll(tmp, &endp, 10);
            if (*endp || r.content_length < 0 || !isdigit((unsigned char)tmp[0])) {
                r.bad = true;
                return r;
            }
        } else if (name_len == 17 && strncasecmp(q, "transfer-encoding", 17) == 0) {
            r.chunked = true;
        }
        q = e + 1;
    }
    return r;
}

static void serve_conn(void *arg) {
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        goro_close((int)(intptr_t)arg);
        return;
    }
    c->fd = (int)(intptr_t)arg;
    long long skip = 0; /* body bytes still to discard */
    for (;;) {
        /* Answer every complete request in the buffer, then flush once. */
        bool close_after = false;
        for (;;) {
            if (skip > 0) {
                size_t d = c->inlen < (size_t)skip ? c->inlen : (size_t)skip;
                memmove(c->in, c->in + d, c->inlen - d);
                c->inlen -= d;
                skip -= (long long)d;
                if (skip > 0)
                    break;
            }
            char *hdr_end = NULL;
            for (size_t i = 0; i + 1 < c->inlen; i++) {
                if (c->in[i] == '\n' &&
                    (c->in[i + 1] == '\n' ||
                     (c->in[i + 1] == '\r' && i + 2 < c->inlen && c->in[i + 2] == '\n'))) {
                    hdr_end = c->in + i + (c->in[i + 1] == '\n' ? 2 : 3);
                    break;
                }
            }
            if (!hdr_end) {
                if (c->inlen == sizeof c->in) {
                    respond(c, 431, "Request Header Fields Too Large", "request header too large\n",
                            false, false);
                    close_after = true;
                }
                break;
            }
            size_t end = (size_t)(hdr_end - c->in);
            request r = parse_head(c->in, end);
            memmove(c->in, c->in + end, c->inlen - end);
            c->inlen -= end;
            if (r.bad) {
                respond(c, 400, "Bad Request", "malformed request\n", false, false);
                close_after = true;
                break;
            }
            if (r.chunked) {
                respond(c, 501, "Not Implemented", "chunked request bodies are not supported\n",
                        false, false);
                close_after = true;
                break;
            }
            if (!respond(c, 200, "OK", BODY, r.head, r.keep_alive)) {
                close_after = true;
                break;
            }
            skip = r.content_length;
            if (!r.keep_alive) {
                close_after = true;
                break;
            }
        }
        if (!flush_out(c) || close_after)
            break;
        ssize_t n = goro_read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, IDLE_TIMEOUT);
        if (n <= 0) {
            if (n < 0 && n != -ETIMEDOUT && n != -ECONNRESET)
                fprintf(stderr, "http_hello: read: %s\n", goro_strerror((int)n));
            break;
        }
        c->inlen += (size_t)n;
    }
    goro_close(c->fd);
    free(c);
}

static void accept_loop(void *arg) {
    int ln = (int)(intptr_t)arg;
    for (;;) {
        int fd = goro_accept(ln, GORO_FOREVER);
        if (fd < 0) {
            if (fd == -EBADF)
                return; /* the listener was closed */
            fprintf(stderr, "http_hello: accept: %s\n", goro_strerror(fd));
            if (fd == -EMFILE || fd == -ENFILE)
                goro_sleep(GORO_MS(10));
            continue;
        }
        if (goro_go(serve_conn, (void *)(intptr_t)fd) == 0) {
            fprintf(stderr, "http_hello: cannot start a goroutine: out of memory\n");
            goro_close(fd);
        }
    }
}

/* --------------------------------------------------------- self-test */

typedef struct {
    int status;
    bool closes; /* "Connection: close" in the response */
    char body[64];
} response;

/* Reads one response from fd (buffer carried across calls). */
static bool read_response(int fd, char *buf, size_t *len, size_t cap, response *out) {
    for (;;) {
        char *e = *len >= 4 ? memmem(buf, *len, "\r\n\r\n", 4) : NULL;
        if (e) {
            size_t hl = (size_t)(e + 4 - buf);
            buf[hl - 1] = 0;
            if (sscanf(buf, "HTTP/1.1 %d", &out->status) != 1)
                return false;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t blen = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
            out->closes = strcasestr(buf, "\r\nConnection: close") != NULL;
            while (*len < hl + blen) {
                ssize_t n = goro_read(fd, buf + *len, cap - *len, GORO_SEC(5));
                if (n <= 0)
                    return false;
                *len += (size_t)n;
            }
            size_t copy = blen < sizeof out->body - 1 ? blen : sizeof out->body - 1;
            memcpy(out->body, buf + hl, copy);
            out->body[copy] = 0;
            memmove(buf, buf + hl + blen, *len - hl - blen);
            *len -= hl + blen;
            return true;
        }
        if (*len == cap)
            return false;
        ssize_t n = goro_read(fd, buf + *len, cap - *len, GORO_SEC(5));
        if (n <= 0)
            return false;
        *len += (size_t)n;
    }
}

static int failures;

static void check(bool ok, const char *what) {
    printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        failures++;
}

static int dial(const char *addr) {
    int fd = goro_dial_tcp(addr, GORO_SEC(5));
    if (fd < 0)
        fprintf(stderr, "http_hello: dial %s: %s\n", addr, goro_strerror(fd));
    return fd;
}

static bool send_all(int fd, const char *s) {
    return goro_write(fd, s, strlen(s), GORO_SEC(5)) >= 0; /* all of s, or an error */
}

static bool closed_by_server(int fd) {
    char b;
    return goro_read(fd, &b, 1, GORO_SEC(5)) == 0;
}

static void self_test(const char *addr) {
    char buf[8192];
    size_t len = 0;
    response r;

    int fd = dial(addr);
    if (fd < 0) {
        failures++;
        return;
    }
    bool ok = true;
    for (int i = 0; i < 3 && ok; i++)
        ok = send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") &&
             read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 &&
             strcmp(r.body, BODY) == 0 && !r.closes;
    check(ok, "3 requests on one keep-alive connection");
    ok = send_all(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 &&
         strcmp(r.body, BODY) == 0;
    /* HEAD: headers only (Content-Length announces the GET body). */
    char *e = NULL;
    while (ok && !(e = memmem(buf, len, "\r\n\r\n", 4))) {
        ssize_t n = goro_read(fd, buf + len, sizeof buf - len, GORO_SEC(5));
        ok = n > 0;
        len += ok ? (size_t)n : 0;
    }
    ok = ok && strncmp(buf, "HTTP/1.1 200", 12) == 0;
    if (ok) {
        size_t hl = (size_t)(e + 4 - buf);
        memmove(buf, buf + hl, len - hl);
        len -= hl;
    }
    check(ok, "2 pipelined requests (GET, HEAD)");
    ok = send_all(fd, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 &&
         send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 && r.closes &&
         closed_by_server(fd);
    check(ok, "a body, then Connection: close");
    goro_close(fd);

    fd = dial(addr);
    len = 0;
    ok = fd >= 0 && send_all(fd, "GET / HTTP/1.0\r\n\r\n") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 && r.closes &&
         closed_by_server(fd);
    check(ok, "HTTP/1.0 without keep-alive closes");
    goro_close(fd);

    fd = dial(addr);
    len = 0;
    ok = fd >= 0 && send_all(fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200 && !r.closes &&
         send_all(fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") &&
         read_response(fd, buf, &len, sizeof buf, &r) && r.status == 200;
    check(ok, "HTTP/1.0 with Connection: keep-alive stays open");
    goro_close(fd);

    fd = dial(addr);
    len = 0;
    ok = fd >= 0 && send_all(fd, "BLAH\r\n\r\n") && read_response(fd, buf, &len, sizeof buf, &r) &&
         r.status == 400 && closed_by_server(fd);
    check(ok, "a malformed request gets 400 and the connection closes");
    goro_close(fd);
}

static void usage(void) {
    fprintf(stderr, "usage: http_hello                (self-test)\n"
                    "       http_hello --serve PORT   (serve on 127.0.0.1:PORT)\n"
                    "       options: --idle-timeout SECONDS (default 60, 0: never)\n");
    exit(2);
}

int main(int argc, char **argv) {
    int serve_port = -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--serve")) {
            serve_port = atoi(argv[++i]);
            if (serve_port < 0 || serve_port > 65535)
                usage();
        } else if (!strcmp(argv[i], "--idle-timeout")) {
            int sec = atoi(argv[++i]);
            IDLE_TIMEOUT = sec > 0 ? GORO_SEC(sec) : GORO_FOREVER;
        } else {
            usage();
        }
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", serve_port < 0 ? 0 : serve_port);
    int ln = goro_listen_tcp(addr, 0);
    if (ln < 0) {
        fprintf(stderr, "http_hello: listen on %s: %s\n", addr, goro_strerror(ln));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(ln, (struct sockaddr *)&sa, &sl);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    printf("http_hello: listening on http://%s/\n", addr);
    fflush(stdout);
    if (serve_port >= 0) {
        accept_loop((void *)(intptr_t)ln);
        return 0;
    }
    if (goro_go(accept_loop, (void *)(intptr_t)ln) == 0) {
        fprintf(stderr, "http_hello: cannot start the acceptor: out of memory\n");
        return 1;
    }
    self_test(addr);
    goro_close(ln);
    printf("http_hello: %s\n", failures ? "self-test FAILED" : "self-test passed");
    return failures ? 1 : 0;
}
