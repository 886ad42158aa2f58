/*
 * debug_server.c - goro_debug_serve: Go's net/http/pprof on its own thread.
 *
 * The endpoints, and the ServeMux rules around them, are in
 * debug_handlers.c; this file owns the sockets, the thread and the
 * connection state machine.
 *
 * Binding: only the address given. "host:port" or "[v6]:port", parsed with
 * the TCP calls' rules (io/hostport.h, Go's SplitHostPort); the host is
 * resolved with getaddrinfo (no AI_PASSIVE), the first IPv4 result is
 * preferred (as Go's Listen), IPv6 sockets are IPV6_V6ONLY. One policy on
 * top: an empty host (":6060", which Go binds on every interface) is refused
 * with EINVAL, so the server never binds anywhere it was not told to (say
 * "0.0.0.0:6060" to mean it). The port is a number or a service name (0
 * picks a free one; the bound port is returned).
 * One server at a time: a second goro_debug_serve while one runs fails with
 * EBUSY; goro_debug_stop then goro_debug_serve again is fine.
 *
 * Threading: the server runs on its own plain pthread (not a goroutine),
 * registered with goro__helper_thread_register, so it answers while every
 * goroutine spins or is blocked: nothing it does waits for the scheduler.
 * While it runs it also counts as an outstanding external wait, so, as in Go
 * (whose HTTP server sits in netpoll), a deadlocked program is not killed by
 * the deadlock check but stays up to be inspected.
 * One poll() loop serves at most DS_MAX_CONNS connections at a time over
 * non-blocking sockets. When all slots are taken and another client is
 * waiting, the connection that has been reading its head the longest is
 * dropped for it (so idle or trickling clients cannot lock others out);
 * slots busy writing are never taken. Each connection:
 *   READ   head bytes; 10 s from accept (then 408 if it sent something,
 *          else a silent close, as Go on EOF); a head must end within 64 KiB
 *          (else 431); malformed heads get 400 at once (http_parse.c); a
 *          body (symbol's POST) of up to 64 KiB is read whole (else 413).
 *   SLOW   a response that collects for a while (a CPU profile, a delta
 *          profile) is handed with its socket to a detached worker thread,
 *          which sleeps, writes it with blocking sends bounded by socket
 *          timeouts, and closes; goro_debug_stop wakes and waits for them.
 *   WRITE  the whole response (head + body, two iovecs); the 10 s deadline
 *          moves on every write that makes progress.
 *   DRAIN  after shutdown(SHUT_WR), read and drop what the client still sends
 *          (a body we ignore) for up to 1 s / 64 KiB, so that closing never
 *          turns into an RST that destroys the response in flight.
 * One request per connection; every response carries "Connection: close".
 * Responses are produced synchronously on the server thread (a profile of
 * many goroutines delays other clients by that long, never the goroutines).
 *
 * Locks:
 *   srv.mu       (pthread mutex) serializes goro_debug_serve/goro_debug_stop
 *                and guards srv's fields. Never taken by the server thread.
 *   registry_mu  (debug_registry.c) guards the sections and profiles; held
 *                by the server thread while it renders the index page and
 *                by register/unregister.
 *   slow_mu      counts the workers finishing slow responses (below) and
 *                wakes them when the server stops.
 *   Order: srv.mu before registry_mu (only the fork handlers take both).
 *   The connection table, the request scratch and everything in the
 *   poll loop belong to the server thread alone (the fork child handler
 *   touches them when that thread no longer exists).
 *   read_timeout_ns is atomic (a test hook).
 */
#define _GNU_SOURCE
#include "debug_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "debug_handlers.h"
#include "../observe/debug_registry.h"
#include "http_parse.h"
#include "../io/hostport.h"

#define DS_MAX_CONNS 16
#define DS_BACKLOG 64
#define DS_NS 1000000000LL
#define DS_READ_TIMEOUT_NS (10 * DS_NS)
#define DS_WRITE_TIMEOUT_NS (10 * DS_NS)
#define DS_DRAIN_NS (1 * DS_NS)
#define DS_DRAIN_MAX (64 * 1024)
#define DS_MAX_BODY (64 * 1024) /* a POST body we read (symbol lookups) */
#define DS_IN_MAX (GORO__HTTP_MAX_HEAD + DS_MAX_BODY)

/* ------------------------------------------------------------------ state */

enum conn_state { C_FREE = 0, C_READ, C_WRITE, C_DRAIN };

typedef struct conn {
    int fd;
    enum conn_state state;
    int64_t deadline;
    size_t in_len;
    char *head, *body; /* response, malloc'd */
    size_t head_len, body_len;
    size_t off; /* bytes of head + body sent */
    size_t drained;
    char *in; /* malloc'd, in_cap bytes, grown up to DS_IN_MAX */
    size_t in_cap;
} conn;

static struct {
    pthread_mutex_t mu;
    bool running;
    pthread_t thread;
    int listen_fd;
    int wake_fd;
    int port;
    /* Slow responses (CPU and delta profiles) each run on a detached
       worker thread; stop waits for them. Guarded by slow_mu. */
    pthread_mutex_t slow_mu;
    pthread_cond_t slow_cv;
    int slow_running;
    bool stopping;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER,
         .listen_fd = -1,
         .wake_fd = -1,
         .slow_mu = PTHREAD_MUTEX_INITIALIZER,
         .slow_cv = PTHREAD_COND_INITIALIZER};

/* Server thread only. */
static conn conns[DS_MAX_CONNS];
static goro__http_req req_scratch;

static _Atomic int64_t read_timeout_ns = DS_READ_TIMEOUT_NS;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * DS_NS + ts.tv_nsec;
}

void goro__debug_set_read_timeout(int64_t ns) {
    atomic_store_explicit(&read_timeout_ns, ns > 0 ? ns : DS_READ_TIMEOUT_NS, memory_order_relaxed);
}

/* -------------------------------------------------------------- responses */

typedef goro__debug_resp resp;

static void http_date(char *out, size_t n) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Turns r into the bytes of c's response (c->head, c->body). Takes r's
   allocations. Returns false if memory ran out. */
static bool conn_set_response(conn *c, resp *r) {
    char *head = NULL;
    size_t head_len = 0;
    FILE *f = open_memstream(&head, &head_len);
    if (!f) {
        free(r->body);
        free(r->location);
        return false;
    }
    char date[64];
    http_date(date, sizeof date);
    fprintf(f, "HTTP/1.%d %d %s\r\n", r->minor ? 1 : 0, r->status,
            goro__debug_status_text(r->status));
    if (r->allow)
        fprintf(f, "Allow: %s\r\n", r->allow);
    if (r->attachment)
        fprintf(f, "Content-Disposition: attachment; filename=\"%s\"\r\n", r->attachment);
    if (r->ctype)
        fprintf(f, "Content-Type: %s\r\n", r->ctype);
    if (r->location)
        fprintf(f, "Location: %s\r\n", r->location);
    if (r->nosniff)
        fputs("X-Content-Type-Options: nosniff\r\n", f);
    if (r->go_pprof)
        fputs("X-Go-Pprof: 1\r\n", f);
    fprintf(f, "Date: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", date, r->body_len);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    free(r->location);
    r->location = NULL;
    if (!ok) {
        free(head);
        free(r->body);
        return false;
    }
    c->head = head;
    c->head_len = head_len;
    if (r->head_only) {
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
    }
    c->body = r->body;
    c->body_len = r->body_len;
    c->off = 0;
    return true;
}

/* The answer to a head the parser refused (or a read timeout), as Go's
   server writes it: "HTTP/1.1 400 Bad Request: reason". */
static bool conn_set_raw_error(conn *c, int status, const char *why) {
    char msg[256];
    if (status == 431 || status == 408 || !why)
        snprintf(msg, sizeof msg, "%d %s", status, goro__debug_status_text(status));
    else
        snprintf(msg, sizeof msg, "%d %s: %s", status, goro__debug_status_text(status), why);
    char *head = NULL;
    size_t head_len = 0;
    FILE *f = open_memstream(&head, &head_len);
    if (!f)
        return false;
    fprintf(f,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
            status, goro__debug_status_text(status), strlen(msg), msg);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        free(head);
        return false;
    }
    c->head = head;
    c->head_len = head_len;
    c->body = NULL;
    c->body_len = 0;
    c->off = 0;
    return true;
}
/* ------------------------------------------------------------ connections */

static void conn_close(conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->head);
    free(c->body);
    free(c->in);
    c->in = NULL;
    c->in_cap = 0;
    c->head = c->body = NULL;
    c->head_len = c->body_len = c->off = c->in_len = c->drained = 0;
    c->fd = -1;
    c->state = C_FREE;
}

static void conn_start_drain(conn *c, int64_t now) {
    free(c->head);
    free(c->body);
    c->head = c->body = NULL;
    shutdown(c->fd, SHUT_WR);
    c->state = C_DRAIN;
    c->drained = 0;
    c->deadline = now + DS_DRAIN_NS;
}

/* Sends what the socket takes now. */
static void conn_write(conn *c, int64_t now) {
    size_t total = c->head_len + c->body_len;
    while (c->off < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->off < c->head_len) {
            iov[n].iov_base = c->head + c->off;
            iov[n++].iov_len = c->head_len - c->off;
            if (c->body_len) {
                iov[n].iov_base = c->body;
                iov[n++].iov_len = c->body_len;
            }
        } else {
            iov[n].iov_base = c->body + (c->off - c->head_len);
            iov[n++].iov_len = total - c->off;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_close(c);
            return;
        }
        c->off += (size_t)k;
        c->deadline = now + DS_WRITE_TIMEOUT_NS;
    }
    conn_start_drain(c, now);
}

static void conn_respond_raw(conn *c, int status, const char *why, int64_t now) {
    if (!conn_set_raw_error(c, status, why)) {
        conn_close(c);
        return;
    }
    c->state = C_WRITE;
    c->deadline = now + DS_WRITE_TIMEOUT_NS;
    conn_write(c, now);
}

static void slow_start(conn *c, resp *r);

/* Grows c->in so that it can take more bytes. False when at DS_IN_MAX. */
static bool conn_in_grow(conn *c) {
    if (c->in_len < c->in_cap)
        return true;
    if (c->in_cap >= DS_IN_MAX)
        return false;
    size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
    if (cap > DS_IN_MAX)
        cap = DS_IN_MAX;
    char *n = realloc(c->in, cap);
    if (!n)
        return false;
    c->in = n;
    c->in_cap = cap;
    return true;
}

static void conn_read(conn *c, int64_t now) {
    for (;;) {
        if (!conn_in_grow(c)) {
            conn_respond_raw(c, 431, NULL, now);
            return;
        }
        ssize_t k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (k == 0) {
            /* EOF before a complete head: Go closes without a word. */
            conn_close(c);
            return;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(c);
            return;
        }
        c->in_len += (size_t)k;
        goro__http_req *q = &req_scratch;
        int st = goro__http_parse(q, c->in, c->in_len);
        if (st == 0)
            continue; /* the head is not complete (a head too long is 431) */
        if (st != 200) {
            conn_respond_raw(c, st, q->error, now);
            return;
        }
        /* A body (symbol's POST): read it whole first, up to DS_MAX_BODY. */
        size_t body_len = 0;
        if (q->content_length > 0) {
            if (q->content_length > DS_MAX_BODY) {
                conn_respond_raw(c, 413, NULL, now);
                return;
            }
            body_len = (size_t)q->content_length;
            if (c->in_len < q->head_len + body_len)
                continue;
        }
        resp r = {.status = 200};
        goro__debug_route(&r, q, c->in + q->head_len, body_len);
        if (r.slow) {
            slow_start(c, &r);
            return;
        }
        now = now_ns(); /* a profile may have taken a while */
        if (!conn_set_response(c, &r)) {
            conn_close(c);
            return;
        }
        c->state = C_WRITE;
        c->deadline = now + DS_WRITE_TIMEOUT_NS;
        conn_write(c, now);
        return;
    }
}

/* ---------------------------------------------------- slow responses */

typedef struct slow_job {
    int fd;
    resp r;
} slow_job;

/* The worker's pause: false as soon as the server stops. */
static bool slow_sleep(int64_t ns) {
    struct timespec ts; /* slow_cv waits on CLOCK_REALTIME (static initializer) */
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t until = (int64_t)ts.tv_sec * DS_NS + ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(until / DS_NS);
    ts.tv_nsec = (long)(until % DS_NS);
    pthread_mutex_lock(&srv.slow_mu);
    while (!srv.stopping && pthread_cond_timedwait(&srv.slow_cv, &srv.slow_mu, &ts) != ETIMEDOUT)
        ;
    bool ok = !srv.stopping;
    pthread_mutex_unlock(&srv.slow_mu);
    return ok;
}

/* Writes everything, blocking, until done or DS_WRITE_TIMEOUT_NS passes
   without progress (SO_SNDTIMEO). */
static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static void *slow_main(void *arg) {
    slow_job *j = arg;
    goro__helper_thread_register();
    goro__debug_finish_slow(&j->r, slow_sleep);
    conn c = {.fd = -1};
    if (conn_set_response(&c, &j->r)) {
        int flags = 0;
        (void)flags;
        struct timeval tv = {.tv_sec = DS_WRITE_TIMEOUT_NS / DS_NS};
        (void)setsockopt(j->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        tv.tv_sec = DS_DRAIN_NS / DS_NS;
        (void)setsockopt(j->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        send_all(j->fd, c.head, c.head_len);
        send_all(j->fd, c.body, c.body_len);
        shutdown(j->fd, SHUT_WR);
        char scratch[4096];
        size_t drained = 0;
        ssize_t k;
        while (drained < DS_DRAIN_MAX && (k = recv(j->fd, scratch, sizeof scratch, 0)) > 0)
            drained += (size_t)k;
        free(c.head);
        free(c.body);
    }
    close(j->fd);
    free(j);
    goro__helper_thread_unregister();
    pthread_mutex_lock(&srv.slow_mu);
    srv.slow_running--;
    pthread_cond_broadcast(&srv.slow_cv);
    pthread_mutex_unlock(&srv.slow_mu);
    return NULL;
}

/* Hands c's socket and the unfinished response r to a worker thread, so
   that a 30-second CPU profile does not hold up other clients. */
static void slow_start(conn *c, resp *r) {
    slow_job *j = malloc(sizeof *j);
    int e = ENOMEM;
    if (j) {
        j->fd = c->fd;
        j->r = *r;
        /* blocking I/O from here on, bounded by socket timeouts */
        (void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
        pthread_mutex_lock(&srv.slow_mu);
        srv.slow_running++;
        pthread_mutex_unlock(&srv.slow_mu);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        e = pthread_create(&t, &attr, slow_main, j);
        pthread_attr_destroy(&attr);
        if (e == 0) {
            pthread_setname_np(t, "goro-debug-prof");
            c->fd = -1; /* the worker owns it */
            conn_close(c);
            return;
        }
        pthread_mutex_lock(&srv.slow_mu);
        srv.slow_running--;
        pthread_mutex_unlock(&srv.slow_mu);
        free(j);
    }
    /* No thread: answer at once with Go's words for a failed start. */
    if (r->slow && r->slow->delta_end && r->base)
        r->slow->delta_end(r->base, NULL, 0);
    if (r->slow && r->slow->timed_stop && r->timed_out) {
        r->slow->timed_stop();
        fclose(r->timed_out);
        goro__debug_mem_free(r->timed_mem);
    }
    free(r->body);
    conn_respond_raw(c, 500, strerror(e), now_ns());
}

static void conn_drain(conn *c) {
    char scratch[4096];
    for (;;) {
        ssize_t k = recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            conn_close(c);
            return;
        }
        c->drained += (size_t)k;
        if (c->drained > DS_DRAIN_MAX) {
            conn_close(c);
            return;
        }
    }
}

static void conn_timeout(conn *c, int64_t now) {
    if (c->state == C_READ && c->in_len > 0) {
        conn_respond_raw(c, 408, NULL, now);
        /* Do not wait long for a client that stopped talking. */
        if (c->state == C_WRITE || c->state == C_DRAIN)
            c->deadline = now + DS_DRAIN_NS;
        return;
    }
    conn_close(c);
}

/* ------------------------------------------------------------ the thread */

static int free_slot(void) {
    for (int i = 0; i < DS_MAX_CONNS; i++)
        if (conns[i].state == C_FREE)
            return i;
    return -1;
}

/* The connection reading its head for the longest time (earliest read
   deadline; all got the same timeout, give or take a change by the test
   hook), or -1 if none is reading. */
static int evictable(void) {
    int best = -1;
    for (int i = 0; i < DS_MAX_CONNS; i++)
        if (conns[i].state == C_READ && (best < 0 || conns[i].deadline < conns[best].deadline))
            best = i;
    return best;
}

static void *server_main(void *arg) {
    (void)arg;
    goro__helper_thread_register();
    /* Like Go's HTTP server waiting in netpoll, a running debug server keeps
       the deadlock check quiet: a stuck program stays up to be inspected. */
    goro__external_waiters_add(1);
    const int lfd = srv.listen_fd, wfd = srv.wake_fd; /* fixed until we are joined */
    for (int i = 0; i < DS_MAX_CONNS; i++) {
        conns[i].fd = -1;
        conns[i].state = C_FREE;
    }
    int64_t accept_pause_until = 0;
    struct pollfd pfd[2 + DS_MAX_CONNS];
    int who[2 + DS_MAX_CONNS];

    for (;;) {
        int64_t now = now_ns();
        int n = 0, nconn = 0, listen_idx = -1;
        int64_t next = INT64_MAX;
        pfd[n] = (struct pollfd){.fd = wfd, .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < DS_MAX_CONNS; i++) {
            conn *c = &conns[i];
            if (c->state == C_FREE)
                continue;
            nconn++;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = c->state == C_WRITE ? POLLOUT : POLLIN};
            who[n++] = i;
            if (c->deadline < next)
                next = c->deadline;
        }
        if (nconn < DS_MAX_CONNS || evictable() >= 0) {
            if (now >= accept_pause_until) {
                listen_idx = n;
                pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
                who[n++] = -1;
            } else if (accept_pause_until < next) {
                next = accept_pause_until;
            }
        }
        int timeout = -1;
        if (next != INT64_MAX)
            timeout = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
        int rc = poll(pfd, (nfds_t)n, timeout);
        if (rc < 0) {
            if (errno != EINTR)
                usleep(10000); /* ENOMEM: try again shortly */
            continue;
        }
        if (pfd[0].revents)
            break; /* goro_debug_stop */
        now = now_ns();
        for (int k = 1; k < n; k++) {
            if (!pfd[k].revents || who[k] < 0)
                continue;
            conn *c = &conns[who[k]];
            switch (c->state) {
            case C_READ: conn_read(c, now); break;
            case C_WRITE: conn_write(c, now); break;
            case C_DRAIN: conn_drain(c); break;
            case C_FREE: break;
            }
        }
        /* Deadlines. A long profile may have kept this thread busy past
           someone's deadline while their bytes were already waiting: try
           the socket once more before giving up on them. */
        now = now_ns();
        for (int i = 0; i < DS_MAX_CONNS; i++) {
            conn *c = &conns[i];
            if (c->state == C_FREE || now < c->deadline)
                continue;
            if (c->state == C_READ)
                conn_read(c, now);
            else if (c->state == C_WRITE)
                conn_write(c, now);
            if (c->state != C_FREE && now >= c->deadline)
                conn_timeout(c, now);
        }
        if (listen_idx >= 0 && pfd[listen_idx].revents) {
            int64_t rto = atomic_load_explicit(&read_timeout_ns, memory_order_relaxed);
            for (int tries = 0; tries < DS_MAX_CONNS; tries++) {
                int i = free_slot();
                if (i < 0 && (i = evictable()) < 0)
                    break;
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        accept_pause_until = now + DS_NS / 10;
                    else if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                        continue;
                    break;
                }
                if (conns[i].state != C_FREE)
                    conn_close(&conns[i]); /* evicted: the oldest one still reading */
                conns[i].fd = fd;
                conns[i].state = C_READ;
                conns[i].in_len = 0;
                conns[i].deadline = now + rto;
            }
        }
    }
    for (int i = 0; i < DS_MAX_CONNS; i++)
        if (conns[i].state != C_FREE)
            conn_close(&conns[i]);
    goro__external_waiters_add(-1);
    goro__helper_thread_unregister();
    return NULL;
}

/* -------------------------------------------------------- serve and stop */

static int try_listen(const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, DS_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Binds the first address host resolves to that can be bound, IPv4 ones
   first (as Go's Listen does with a host name). */
static int listen_on(const char *host, const char *port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV; /* no AI_PASSIVE: host is never empty */
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        if (g == EAI_SYSTEM)
            ; /* errno set */
        else if (g == EAI_MEMORY)
            errno = ENOMEM;
        else if (g == EAI_AGAIN)
            errno = EAGAIN;
        else
            errno = EADDRNOTAVAIL;
        return -1;
    }
    int fd = -1, err = EADDRNOTAVAIL;
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != (pass == 0))
                continue;
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            fd = try_listen(ai);
            if (fd < 0)
                err = errno;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = err;
    return fd;
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

/* fork: the child has no server thread. Forget the server there (closing
   its sockets) so that goro_debug_stop does not join a thread that does not
   exist and goro_debug_serve can start a new one. */
static void atfork_prepare(void) {
    pthread_mutex_lock(&srv.mu);
    goro__debug_registry_lock();
}

static void atfork_parent(void) {
    goro__debug_registry_unlock();
    pthread_mutex_unlock(&srv.mu);
}

static void atfork_child(void) {
    /* No worker threads in the child; their sockets stay the parent's. */
    pthread_mutex_init(&srv.slow_mu, NULL);
    pthread_cond_init(&srv.slow_cv, NULL);
    srv.slow_running = 0;
    if (srv.running) {
        for (int i = 0; i < DS_MAX_CONNS; i++)
            if (conns[i].state != C_FREE)
                conn_close(&conns[i]);
        close(srv.listen_fd);
        close(srv.wake_fd);
        srv.listen_fd = srv.wake_fd = -1;
        srv.running = false;
    }
    goro__debug_registry_unlock();
    pthread_mutex_unlock(&srv.mu);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_install(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

static int debug_serve(const char *addr) {
    /* The TCP calls' address rules (io/hostport.h), plus the binding policy
       above: no empty host. The port goes to getaddrinfo as a number. */
    char host[256], port[64];
    uint16_t pnum;
    if (goro__split_hostport(addr, host, sizeof host, port, sizeof port, NULL) != 0 ||
        host[0] == '\0' || goro__parse_port(port, &pnum, NULL) != 0) {
        errno = EINVAL;
        return -1;
    }
    snprintf(port, sizeof port, "%u", (unsigned)pnum);
    goro__init();
    pthread_once(&atfork_once, atfork_install);

    pthread_mutex_lock(&srv.mu);
    if (srv.running) {
        pthread_mutex_unlock(&srv.mu);
        errno = EBUSY;
        return -1;
    }
    int lfd = listen_on(host, port);
    int bport = lfd >= 0 ? bound_port(lfd) : -1;
    int wfd = bport >= 0 ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
    if (wfd < 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        pthread_mutex_unlock(&srv.mu);
        errno = e;
        return -1;
    }
    srv.listen_fd = lfd;
    srv.wake_fd = wfd;

    /* Process-directed signals an application expects on its own threads
       (job control, termination, SIGPIPE, SIGCHLD, timers) stay off this
       thread; synchronous ones and the signals the runtime aims at threads
       are left alone. */
    sigset_t set, old;
    sigemptyset(&set);
    static const int blocked[] = {SIGINT,  SIGTERM,  SIGHUP,  SIGPIPE, SIGCHLD,
                                  SIGALRM, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU};
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
        sigaddset(&set, blocked[i]);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int e = pthread_create(&srv.thread, NULL, server_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        close(lfd);
        close(wfd);
        srv.listen_fd = srv.wake_fd = -1;
        pthread_mutex_unlock(&srv.mu);
        errno = e;
        return -1;
    }
    pthread_setname_np(srv.thread, "goro-debug");
    srv.running = true;
    srv.port = bport;
    pthread_mutex_unlock(&srv.mu);
    return bport;
}

/* The port or -errno (goro.h's convention). debug_serve sets errno and never
   parks, so the errno read here is this thread's. */
int goro_debug_serve(const char *addr) {
    int port = debug_serve(addr);
    return port >= 0 ? port : errno > 0 ? -errno : -EIO;
}

void goro_debug_stop(void) {
    pthread_mutex_lock(&srv.mu);
    if (!srv.running || pthread_equal(pthread_self(), srv.thread)) {
        pthread_mutex_unlock(&srv.mu);
        return;
    }
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(srv.wake_fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    /* The server may be inside a profile that needs every scheduler thread
       to make progress: do not hold this one's processor while waiting. */
    goro_syscall_enter();
    pthread_join(srv.thread, NULL);
    /* Workers finishing slow responses: cut their collection short. */
    pthread_mutex_lock(&srv.slow_mu);
    srv.stopping = true;
    pthread_cond_broadcast(&srv.slow_cv);
    while (srv.slow_running > 0)
        pthread_cond_wait(&srv.slow_cv, &srv.slow_mu);
    srv.stopping = false;
    pthread_mutex_unlock(&srv.slow_mu);
    goro_syscall_exit();
    close(srv.listen_fd);
    close(srv.wake_fd);
    srv.listen_fd = srv.wake_fd = -1;
    srv.running = false;
    srv.port = 0;
    pthread_mutex_unlock(&srv.mu);
}
