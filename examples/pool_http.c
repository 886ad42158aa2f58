/*
 * pool_http.c - tunny's README example in C: an HTTP endpoint whose CPU-heavy
 * work is funnelled through a pool of NumCPU workers.
 *
 *   ./pool_http                 serve on 127.0.0.1 (an ephemeral port), send
 *                               200 requests to itself from 16 client
 *                               goroutines, check every answer, shut down
 *                               and exit 0
 *   ./pool_http -n 1000         the same with 1000 requests
 *   ./pool_http --serve [ADDR]  serve on ADDR (default 127.0.0.1:8080) until
 *                               killed:  curl --data-binary hello ADDR/work
 *
 * Each connection is served by its own goroutine (like net/http); the
 * handler reads the request body and calls goro_pool_process, which blocks
 * until one of the NumCPU workers has done the job - so no matter how many
 * requests arrive at once, at most NumCPU of them burn CPU. With
 * POOL_TIMEOUT_MS set, the handler uses goro_pool_process_timed instead and
 * answers 408 when the pool is too busy, as in the README's ProcessTimed
 * variant.
 *
 * HTTP here is the minimum: one request per connection (Connection: close),
 * POST /work with a Content-Length body.
 */
#include <goro.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_REQUEST (1 << 20)

/* ------------------------------------------------------------- the work */

typedef struct payload {
    const char *data;
    size_t len;
} payload;

typedef struct result {
    char *data;
    size_t len;
} result;

/* "Something CPU heavy with payload": many rounds of FNV-1a over the body,
   then the body upper-cased with the digest appended. */
static void *work(void *arg, void *ctx) {
    (void)ctx;
    payload *in = arg;
    uint64_t h = 14695981039346656037ULL;
    for (int round = 0; round < 2000; round++)
        for (size_t i = 0; i < in->len; i++) {
            h ^= (unsigned char)in->data[i];
            h *= 1099511628211ULL;
        }
    result *out = malloc(sizeof *out);
    out->data = malloc(in->len + 32);
    for (size_t i = 0; i < in->len; i++)
        out->data[i] = (char)toupper((unsigned char)in->data[i]);
    out->len =
        in->len + (size_t)snprintf(out->data + in->len, 32, " %016llx\n", (unsigned long long)h);
    return out;
}

/* --------------------------------------------------------------- server */

typedef struct server {
    goro_pool *pool;
    int listener;
    int64_t timeout_ns;   /* > 0: process_timed */
    goro_waitgroup conns; /* connection goroutines still running */
    _Atomic long served;
} server;

typedef struct conn {
    server *srv;
    int fd;
} conn;

static void reply(int fd, int status, const char *reason, const char *body, size_t len) {
    char head[160];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, len);
    goro_write(fd, head, (size_t)n, GORO_SEC(5));
    if (len)
        goro_write(fd, body, len, GORO_SEC(5));
}

/* Reads one request; returns the body (in buf) or NULL after replying. */
static char *read_request(int fd, char *buf, size_t cap, size_t *body_len) {
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == cap - 1) {
            reply(fd, 431, "Request Header Fields Too Large", NULL, 0);
            return NULL;
        }
        ssize_t r = goro_read(fd, buf + have, cap - 1 - have, GORO_SEC(10));
        if (r <= 0)
            return NULL;
        have += (size_t)r;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (strncmp(buf, "POST /work ", 11) != 0) {
        const char *msg = "only POST /work is served here\n";
        reply(fd, strncmp(buf, "POST ", 5) == 0 ? 404 : 405,
              strncmp(buf, "POST ", 5) == 0 ? "Not Found" : "Method Not Allowed", msg, strlen(msg));
        return NULL;
    }
    size_t clen = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2)
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtoul(line + 15, NULL, 10);
    char *body = end + 4;
    size_t got = have - (size_t)(body - buf);
    if (clen > cap - 1 - (size_t)(body - buf)) {
        reply(fd, 413, "Payload Too Large", NULL, 0);
        return NULL;
    }
    while (got < clen) {
        ssize_t r = goro_read(fd, body + got, clen - got, GORO_SEC(10));
        if (r <= 0)
            return NULL;
        got += (size_t)r;
    }
    *body_len = clen;
    return body;
}

static void serve_conn(void *arg) {
    conn *c = arg;
    server *srv = c->srv;
    char *buf = malloc(MAX_REQUEST);
    size_t len = 0;
    char *body = buf ? read_request(c->fd, buf, MAX_REQUEST, &len) : NULL;
    if (body) {
        payload in = {body, len};
        void *out = NULL;
        /* Funnel this work into our pool. This call is synchronous and will
           block until the job is completed. */
        int err = srv->timeout_ns > 0
                      ? goro_pool_process_timed(srv->pool, &in, srv->timeout_ns, &out)
                      : goro_pool_process(srv->pool, &in, &out);
        if (err == 0) {
            result *res = out;
            reply(c->fd, 200, "OK", res->data, res->len);
            free(res->data);
            free(res);
            srv->served++;
        } else if (err == GORO_ETIMEDOUT) {
            reply(c->fd, 408, "Request Timeout", "Request timed out\n", 18);
        } else {
            reply(c->fd, 503, "Service Unavailable", "shutting down\n", 14);
        }
    }
    free(buf);
    goro_close(c->fd);
    free(c);
    goro_waitgroup_done(&srv->conns);
}

static void accept_loop(void *arg) {
    server *srv = arg;
    for (;;) {
        int fd = goro_accept(srv->listener, GORO_FOREVER);
        if (fd == -EBADF)
            break; /* the listener was closed: shut down */
        if (fd < 0) {
            fprintf(stderr, "pool_http: accept: %s\n", goro_strerror(fd));
            goro_sleep(GORO_MS(10)); /* e.g. out of descriptors: back off, as Go does */
            continue;
        }
        conn *c = malloc(sizeof *c);
        c->srv = srv;
        c->fd = fd;
        goro_waitgroup_add(&srv->conns, 1);
        goro_opts o = {.name = "http conn"};
        if (goro_go_opts(&o, serve_conn, c) == 0) {
            goro_close(fd);
            free(c);
            goro_waitgroup_done(&srv->conns);
        }
    }
    goro_waitgroup_done(&srv->conns);
}

/* --------------------------------------------------------------- client */

typedef struct client {
    const char *addr;
    int first, count;
    _Atomic int *bad;
    goro_waitgroup *wg;
} client;

static int do_request(const char *addr, const char *body, char *resp, size_t cap,
                      size_t *resp_len) {
    int fd = goro_dial_tcp(addr, GORO_SEC(5));
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(
        req, sizeof req,
        "POST /work HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
        addr, strlen(body), body);
    if (goro_write(fd, req, (size_t)n, GORO_SEC(5)) < 0) {
        goro_close(fd);
        return -1;
    }
    size_t have = 0;
    for (;;) {
        ssize_t r = goro_read(fd, resp + have, cap - 1 - have, GORO_SEC(10));
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    resp[have] = 0;
    *resp_len = have;
    goro_close(fd);
    return 0;
}

static void run_client(void *arg) {
    client *cl = arg;
    char resp[2048], body[64], want[64];
    for (int i = cl->first; i < cl->first + cl->count; i++) {
        snprintf(body, sizeof body, "hello %d", i);
        payload in = {body, strlen(body)};
        result *expect = work(&in, NULL);
        snprintf(want, sizeof want, "%.*s", (int)expect->len, expect->data);
        free(expect->data);
        free(expect);
        size_t len;
        if (do_request(cl->addr, body, resp, sizeof resp, &len) != 0 ||
            strncmp(resp, "HTTP/1.1 200 ", 13) != 0 || strstr(resp, "\r\n\r\n") == NULL ||
            strcmp(strstr(resp, "\r\n\r\n") + 4, want) != 0) {
            fprintf(stderr, "request %d: unexpected answer:\n%s\n", i, resp);
            (*cl->bad)++;
        }
    }
    goro_waitgroup_done(cl->wg);
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv) {
    const char *serve_addr = NULL;
    int requests = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0)
            serve_addr = (i + 1 < argc && argv[i + 1][0] != '-') ? argv[++i] : "127.0.0.1:8080";
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            requests = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-n REQUESTS] [--serve [ADDR]]\n", argv[0]);
            return 2;
        }
    }

    int ncpu = goro_maxprocs(0);
    server srv;
    memset(&srv, 0, sizeof srv);
    srv.pool = goro_pool_new_func(ncpu, work, NULL);
    const char *t = getenv("POOL_TIMEOUT_MS");
    srv.timeout_ns = t ? GORO_MS(atoll(t)) : 0;
    srv.listener = goro_listen_tcp(serve_addr ? serve_addr : "127.0.0.1:0", 128);
    if (!srv.pool) {
        fprintf(stderr, "pool_http: cannot start %d workers: out of memory\n", ncpu);
        return 1;
    }
    if (srv.listener < 0) {
        fprintf(stderr, "pool_http: listen: %s\n", goro_strerror(srv.listener));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(srv.listener, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    printf("pool_http: %d workers, listening on %s\n", ncpu, serve_addr ? serve_addr : addr);
    fflush(stdout);

    goro_waitgroup_add(&srv.conns, 1);
    goro_opts o = {.name = "http accept"};
    goro_go_opts(&o, accept_loop, &srv);

    if (serve_addr) {
        goro_waitgroup_wait(&srv.conns); /* until killed */
        return 0;
    }

    enum { CLIENTS = 16 };
    goro_waitgroup wg = {0};
    _Atomic int bad = 0;
    client cl[CLIENTS];
    int per = requests / CLIENTS, extra = requests % CLIENTS, first = 0;
    int64_t t0 = goro_nanotime();
    goro_waitgroup_add(&wg, CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        int count = per + (i < extra ? 1 : 0);
        cl[i] = (client){addr, first, count, &bad, &wg};
        first += count;
        goro_go(run_client, &cl[i]);
    }
    goro_waitgroup_wait(&wg);
    int64_t took = goro_nanotime() - t0;

    goro_close(srv.listener);        /* the accept loop ends */
    goro_waitgroup_wait(&srv.conns); /* and every connection */
    goro_pool_free(srv.pool);        /* every worker has exited when this returns */

    printf("pool_http: %ld of %d requests served in %.1f ms, %d bad, goro_count() %d (main only)\n",
           (long)srv.served, requests, (double)took / 1e6, (int)bad, goro_count());
    return bad == 0 && srv.served == requests ? 0 : 1;
}
