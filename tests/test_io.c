/*
 * test_io.c - the netpoller and the I/O calls, all on 127.0.0.1 (and ::1
 * when the machine has it): echo at 10,000 concurrent connections, read and
 * write deadlines, goro_close waking waiters, timeout/readiness races, plain
 * threads, goro_wait_fd on pipes and eventfds, errors (refused, bad address
 * strings, EMFILE), and the "IO wait" state. Errors are checked in the
 * returned values (-errno); test_io_errors.c checks them in goroutines that
 * migrate between threads.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goro.h"
#include "runtime/runtime.h"
#include "goro_test.h"
#include "goro_test_internal.h"

/* ---------------------------------------------------------------- helpers */

static int io_port_of(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A listener on 127.0.0.1 with an ephemeral port; its dial address in addr. */
static int io_listen(char *addr, size_t len, int backlog) {
    int ln = goro_listen_tcp("127.0.0.1:0", backlog);
    cr_assert_geq(ln, 0, "goro_listen_tcp: %s", goro_strerror(ln));
    snprintf(addr, len, "127.0.0.1:%d", io_port_of(ln));
    return ln;
}

/* A connected pair of goro TCP sockets: *a dialled, *b accepted. */
static void io_pair(int *a, int *b) {
    char addr[64];
    int ln = io_listen(addr, sizeof addr, 16);
    *a = goro_dial_tcp(addr, GORO_SEC(5));
    cr_assert_geq(*a, 0, "dial: %s", goro_strerror(*a));
    *b = goro_accept(ln, GORO_SEC(5));
    cr_assert_geq(*b, 0, "accept: %s", goro_strerror(*b));
    cr_assert_eq(goro_close(ln), 0);
}

static int io_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void io_raise_nofile(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* ------------------------------------------------------------- echo server */

typedef struct {
    int ln;
    _Atomic int active, peak, served;
    goro_waitgroup wg; /* acceptor + connections */
} io_server;

typedef struct {
    io_server *s;
    int fd;
} io_conn;

static void io_echo_conn(void *arg) {
    io_conn *c = arg;
    io_server *s = c->s;
    int fd = c->fd;
    free(c);
    int now = atomic_fetch_add(&s->active, 1) + 1;
    int p = atomic_load(&s->peak);
    while (now > p && !atomic_compare_exchange_weak(&s->peak, &p, now))
        ;
    char buf[4096];
    for (;;) {
        ssize_t n = goro_read(fd, buf, sizeof buf, GORO_SEC(60));
        if (n <= 0)
            break;
        if (goro_write(fd, buf, (size_t)n, GORO_SEC(60)) != n)
            break;
    }
    atomic_fetch_sub(&s->active, 1);
    atomic_fetch_add(&s->served, 1);
    goro_close(fd);
    goro_waitgroup_done(&s->wg);
}

static void io_acceptor(void *arg) {
    io_server *s = arg;
    for (;;) {
        int fd = goro_accept(s->ln, GORO_FOREVER);
        if (fd < 0) {
            if (fd == -EBADF)
                break; /* listener closed: we are done */
            continue;
        }
        io_conn *c = malloc(sizeof *c);
        c->s = s;
        c->fd = fd;
        goro_waitgroup_add(&s->wg, 1);
        if (goro_go(io_echo_conn, c) == 0) {
            free(c);
            goro_close(fd);
            goro_waitgroup_done(&s->wg);
        }
    }
    goro_waitgroup_done(&s->wg);
}

static void io_server_start(io_server *s, char *addr, size_t len, int backlog) {
    memset(s, 0, sizeof *s);
    s->ln = io_listen(addr, len, backlog);
    goro_waitgroup_add(&s->wg, 1);
    cr_assert_neq(goro_go(io_acceptor, s), 0);
}

static void io_server_stop(io_server *s) {
    cr_assert_eq(goro_close(s->ln), 0);
    goro_waitgroup_wait(&s->wg);
}

/* ----------------------------------------------------------------- basics */

typedef struct {
    const char *addr;
    int rounds;
    _Atomic int ok;
    goro_waitgroup wg;
} io_client;

static void io_client_run(io_client *c) {
    int fd = goro_dial_tcp(c->addr, GORO_SEC(5));
    if (fd < 0)
        return;
    bool good = true;
    for (int i = 0; i < c->rounds && good; i++) {
        char msg[64], back[64];
        int n = snprintf(msg, sizeof msg, "message %d from %llu", i, (unsigned long long)goro_id());
        good = goro_write(fd, msg, (size_t)n, GORO_SEC(5)) == n;
        int got = 0;
        while (good && got < n) {
            ssize_t r = goro_read(fd, back + got, (size_t)(n - got), GORO_SEC(5));
            good = r > 0;
            if (good)
                got += (int)r;
        }
        good = good && memcmp(msg, back, (size_t)n) == 0;
    }
    if (good)
        atomic_fetch_add(&c->ok, 1);
    goro_close(fd);
}

static void io_client_goroutine(void *arg) {
    io_client *c = arg;
    io_client_run(c);
    goro_waitgroup_done(&c->wg);
}

static void *io_client_thread(void *arg) {
    io_client_run(arg);
    return NULL;
}

GORO_TEST(io, echo_goroutines_and_threads, .timeout = 30) {
    io_server s;
    char addr[64];
    io_server_start(&s, addr, sizeof addr, 128);
    io_client c = {.addr = addr, .rounds = 50};
    for (int i = 0; i < 20; i++) {
        goro_waitgroup_add(&c.wg, 1);
        cr_assert_neq(goro_go(io_client_goroutine, &c), 0);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, io_client_thread, &c);
    io_client_run(&c); /* goroutine 1, a plain thread */
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    goro_waitgroup_wait(&c.wg);
    cr_assert_eq(atomic_load(&c.ok), 25, "clients that echoed correctly: %d of 25",
                 atomic_load(&c.ok));
    io_server_stop(&s);
    cr_assert_eq(atomic_load(&s.served), 25);
}

GORO_TEST(io, eof_and_partial_reads, .timeout = 10) {
    int a, b;
    io_pair(&a, &b);
    cr_assert_eq(goro_write(a, "abcdef", 6, GORO_SEC(1)), 6);
    char buf[16];
    cr_assert_eq(goro_read(b, buf, 2, GORO_SEC(1)), 2);
    cr_assert_eq(memcmp(buf, "ab", 2), 0);
    cr_assert_eq(goro_read(b, buf, sizeof buf, GORO_SEC(1)), 4);
    cr_assert_eq(goro_close(a), 0);
    cr_assert_eq(goro_read(b, buf, sizeof buf, GORO_SEC(1)), 0, "EOF reads 0");
    cr_assert_eq(goro_read(b, buf, sizeof buf, 0), 0, "EOF stays 0");
    /* Writing to a peer that is gone: EPIPE or ECONNRESET, never SIGPIPE. */
    char big[65536] = {0};
    ssize_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++)
        w = goro_write(b, big, sizeof big, GORO_SEC(1));
    cr_assert(w == -EPIPE || w == -ECONNRESET, "write returned %zd (%s)", w, goro_strerror((int)w));
    cr_assert_eq(goro_close(b), 0);
}

/* -------------------------------------------------- 10,000 connections */

typedef struct {
    const char *addr;
    int n;
    _Atomic int connected, ok, failed;
    goro_waitgroup all_connected, done;
} io_many;

static void io_many_client(void *arg) {
    io_many *m = arg;
    int fd = -1;
    bool good = false;
    for (int attempt = 0; attempt < 3 && fd < 0; attempt++)
        fd = goro_dial_tcp(m->addr, GORO_SEC(20));
    if (fd >= 0) {
        char msg[32], back[32];
        int n = snprintf(msg, sizeof msg, "hello %llu", (unsigned long long)goro_id());
        good = goro_write(fd, msg, (size_t)n, GORO_SEC(20)) == n;
        int got = 0;
        while (good && got < n) {
            ssize_t r = goro_read(fd, back + got, (size_t)(n - got), GORO_SEC(20));
            good = r > 0;
            got += good ? (int)r : 0;
        }
        good = good && memcmp(msg, back, (size_t)n) == 0;
    }
    atomic_fetch_add(&m->connected, 1);
    goro_waitgroup_done(&m->all_connected);
    /* Hold the connection until every client is connected: all of them are
       open at the same time. Then one more round trip and close. */
    goro_waitgroup_wait(&m->all_connected);
    if (good) {
        good = goro_write(fd, "bye", 3, GORO_SEC(20)) == 3;
        char back[3];
        int got = 0;
        while (good && got < 3) {
            ssize_t r = goro_read(fd, back + got, (size_t)(3 - got), GORO_SEC(20));
            good = r > 0;
            got += good ? (int)r : 0;
        }
    }
    if (fd >= 0)
        goro_close(fd);
    atomic_fetch_add(good ? &m->ok : &m->failed, 1);
    goro_waitgroup_done(&m->done);
}

/* The client side runs in a child process, so that each side stays within
   its own RLIMIT_NOFILE (one process holding both ends would need 20,000
   descriptors). The child is forked before this process starts goro. */
static int io_many_child(const char *addr, int n) {
    io_raise_nofile();
    io_many m = {.addr = addr, .n = n};
    goro_waitgroup_add(&m.all_connected, n);
    goro_waitgroup_add(&m.done, n);
    for (int i = 0; i < n; i++)
        if (goro_go(io_many_client, &m) == 0)
            return 3;
    /* Poll rather than goro_waitgroup_wait: a plain thread readied from a
       futex park is briefly still counted as blocked by the deadlock check
       (reported to the runtime's owner). */
    if (!goro_test_wait_until(atomic_load(&m.ok) + atomic_load(&m.failed) == n, GORO_SEC(150)))
        return 5;
    goro_waitgroup_wait(&m.done);
    fprintf(stderr, "io_many child: %d ok, %d failed of %d\n", atomic_load(&m.ok),
            atomic_load(&m.failed), n);
    return atomic_load(&m.ok) == n ? 0 : 1;
}

GORO_TEST(io, echo_10000_connections, .timeout = 180) {
    /* The client side is a forked child, and TSan cannot start threads in a
       child of a multi-threaded process; the plain and ASan suites run it. */
    goro_test_skip_threaded_fork();
    io_raise_nofile();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int n = 10000;
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur - 64 < n) {
        n = (int)rl.rlim_cur - 64;
        fprintf(stderr, "io: RLIMIT_NOFILE hard limit %lu: %d connections instead of 10,000\n",
                (unsigned long)rl.rlim_cur, n);
    }
    /* Pick the port before goro starts (the child must fork first). */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(probe, (struct sockaddr *)&sa, sizeof sa), 0);
    int port = io_port_of(probe);
    close(probe);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    /* The server listens first; the child starts dialling after a byte on a pipe. */
    int go_pipe[2];
    cr_assert_eq(pipe(go_pipe), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(go_pipe[1]);
        char c;
        if (read(go_pipe[0], &c, 1) != 1)
            _exit(4);
        _exit(io_many_child(addr, n));
    }
    close(go_pipe[0]);
    io_server s;
    memset(&s, 0, sizeof s);
    s.ln = goro_listen_tcp(addr, 65535);
    cr_assert_geq(s.ln, 0, "listen %s: %s", addr, goro_strerror(s.ln));
    goro_waitgroup_add(&s.wg, 1);
    cr_assert_neq(goro_go(io_acceptor, &s), 0);
    cr_assert_eq(write(go_pipe[1], "g", 1), 1);
    close(go_pipe[1]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client process status %#x", status);
    /* Every client was connected at once (they wait for each other). */
    cr_assert_eq(atomic_load(&s.peak), n, "peak concurrent connections %d, want %d",
                 atomic_load(&s.peak), n);
    goro_test_wait_until(atomic_load(&s.served) >= n, GORO_SEC(20));
    cr_assert_eq(atomic_load(&s.served), n);
    io_server_stop(&s);
}

/* ------------------------------------------------------------- deadlines */

typedef struct {
    int fd;
    int64_t timeout;
    ssize_t r; /* the result or -errno */
    int64_t took;
    size_t len;
    goro_waitgroup wg;
} io_op;

static void io_op_read(io_op *o) {
    char buf[64];
    int64_t t0 = goro_nanotime();
    o->r = goro_read(o->fd, buf, sizeof buf, o->timeout);
    o->took = goro_nanotime() - t0;
}

static void io_op_write(io_op *o) {
    char *big = calloc(1, o->len);
    int64_t t0 = goro_nanotime();
    o->r = goro_write(o->fd, big, o->len, o->timeout);
    o->took = goro_nanotime() - t0;
    free(big);
}

static void io_read_g(void *arg) {
    io_op_read(arg);
    goro_waitgroup_done(&((io_op *)arg)->wg);
}
static void io_write_g(void *arg) {
    io_op_write(arg);
    goro_waitgroup_done(&((io_op *)arg)->wg);
}

GORO_TEST(io, read_deadline, .timeout = 20) {
    int a, b;
    io_pair(&a, &b);
    /* In a goroutine. */
    io_op o = {.fd = b, .timeout = GORO_MS(80)};
    goro_waitgroup_add(&o.wg, 1);
    goro_go(io_read_g, &o);
    goro_waitgroup_wait(&o.wg);
    cr_assert_eq(o.r, -ETIMEDOUT, "returned %zd (%s)", o.r, goro_strerror((int)o.r));
    cr_assert_geq(o.took, GORO_MS(80));
    cr_assert_lt(o.took, GORO_SEC(2));
    /* On a plain thread (goroutine 1). */
    io_op t = {.fd = b, .timeout = GORO_MS(50)};
    io_op_read(&t);
    cr_assert_eq(t.r, -ETIMEDOUT);
    cr_assert_geq(t.took, GORO_MS(50));
    /* Timeout 0 is one attempt. Nothing is ever written to b, so a read that
       waited would wait forever (Criterion's .timeout fails it): returning
       ETIMEDOUT at all is the proof, with no bound on how fast. */
    t.timeout = 0;
    io_op_read(&t);
    cr_assert_eq(t.r, -ETIMEDOUT);
    /* The descriptor still works after timeouts. */
    cr_assert_eq(goro_write(a, "x", 1, GORO_SEC(1)), 1);
    io_op o2 = {.fd = b, .timeout = GORO_SEC(5)};
    goro_waitgroup_add(&o2.wg, 1);
    goro_go(io_read_g, &o2);
    goro_waitgroup_wait(&o2.wg);
    cr_assert_eq(o2.r, 1);
    goro_close(a);
    goro_close(b);
}

GORO_TEST(io, write_deadline, .timeout = 20) {
    int a, b;
    io_pair(&a, &b);
    /* Nobody reads b: a 64 MiB write cannot finish. */
    io_op o = {.fd = a, .timeout = GORO_MS(100), .len = 64 << 20};
    goro_waitgroup_add(&o.wg, 1);
    goro_go(io_write_g, &o);
    goro_waitgroup_wait(&o.wg);
    cr_assert_eq(o.r, -ETIMEDOUT, "returned %zd (%s)", o.r, goro_strerror((int)o.r));
    cr_assert_geq(o.took, GORO_MS(100));
    cr_assert_lt(o.took, GORO_SEC(3));
    io_op t = {.fd = a, .timeout = GORO_MS(60), .len = 1 << 20};
    io_op_write(&t); /* plain thread; the buffers are full already */
    cr_assert_eq(t.r, -ETIMEDOUT);
    cr_assert_geq(t.took, GORO_MS(60));
    goro_close(a);
    goro_close(b);
}

/* ---------------------------------------------------------------- closing */

typedef struct {
    int fd;
    int kind;  /* 0 read, 1 accept, 2 wait_fd POLLIN, 3 write (big) */
    ssize_t r; /* the result or -errno */
    _Atomic uint64_t gid;
    goro_waitgroup wg;
} io_blocked;

static void io_blocked_run(io_blocked *b) {
    atomic_store(&b->gid, goro_id());
    char buf[16];
    char *big = NULL;
    switch (b->kind) {
    case 0: b->r = goro_read(b->fd, buf, sizeof buf, GORO_FOREVER); break;
    case 1: b->r = goro_accept(b->fd, GORO_FOREVER); break;
    case 2: b->r = goro_wait_fd(b->fd, POLLIN, GORO_FOREVER); break;
    case 3:
        big = calloc(1, 64 << 20);
        b->r = goro_write(b->fd, big, 64 << 20, GORO_FOREVER);
        break;
    }
    free(big);
}

static void io_blocked_g(void *arg) {
    io_blocked_run(arg);
    goro_waitgroup_done(&((io_blocked *)arg)->wg);
}

static void *io_blocked_t(void *arg) {
    io_blocked_run(arg);
    return NULL;
}

GORO_TEST(io, close_wakes_waiters, .timeout = 20) {
    int a, b;
    io_pair(&a, &b);
    char addr[64];
    int ln = io_listen(addr, sizeof addr, 16);
    int c, d, e, f;
    io_pair(&c, &d);
    io_pair(&e, &f);
    /* Goroutines blocked in read, accept, wait_fd and write (nobody reads d);
       a thread blocked in read. */
    io_blocked g[4] = {
        {.fd = b, .kind = 0}, {.fd = ln, .kind = 1}, {.fd = b, .kind = 2}, {.fd = c, .kind = 3}};
    for (int i = 0; i < 4; i++) {
        goro_waitgroup_add(&g[i].wg, 1);
        goro_go(io_blocked_g, &g[i]);
    }
    io_blocked t = {.fd = f, .kind = 0};
    pthread_t th;
    pthread_create(&th, NULL, io_blocked_t, &t);
    for (int i = 0; i < 4; i++) {
        cr_assert(goro_test_wait_until(atomic_load(&g[i].gid) != 0, GORO_SEC(5)));
        goro_test_await_parked(atomic_load(&g[i].gid), GORO__WAIT_IO);
    }
    cr_assert(goro_test_wait_until(atomic_load(&t.gid) != 0, GORO_SEC(5)));
    goro_test_await_parked(atomic_load(&t.gid), GORO__WAIT_IO); /* the thread */
    cr_assert_eq(goro_close(b), 0);
    cr_assert_eq(goro_close(ln), 0);
    cr_assert_eq(goro_close(c), 0);
    cr_assert_eq(goro_close(f), 0);
    for (int i = 0; i < 4; i++) {
        goro_waitgroup_wait(&g[i].wg);
        cr_assert_eq(g[i].r, -EBADF, "kind %d returned %zd (%s)", g[i].kind, g[i].r,
                     goro_strerror((int)g[i].r));
    }
    pthread_join(th, NULL);
    cr_assert_eq(t.r, -EBADF);
    /* Closed for real: the numbers are free again; a second close says EBADF. */
    cr_assert_eq(fcntl(b, F_GETFD), -1);
    cr_assert_eq(goro_close(b), -EBADF);
    char buf[4];
    cr_assert_eq(goro_read(b, buf, 4, 0), -EBADF);
    goro_close(a);
    goro_close(d);
    goro_close(e);
}

/* Close racing a reader with a deadline: the reader always returns (EBADF or
   ETIMEDOUT), nothing hangs, nothing leaks. */
typedef struct {
    int fd;
    int64_t delay_ns;
    goro_waitgroup wg;
} io_closer;

static void io_closer_g(void *arg) {
    io_closer *c = arg;
    if (c->delay_ns)
        goro_sleep(c->delay_ns);
    goro_close(c->fd);
    goro_waitgroup_done(&c->wg);
}

GORO_TEST(io, close_races_deadline, .timeout = 60) {
    int stats[3] = {0};
    for (int i = 0; i < 300; i++) {
        int a, b;
        io_pair(&a, &b);
        io_op o = {.fd = b, .timeout = GORO_US(100 + (i % 7) * 50)};
        io_closer c = {.fd = b, .delay_ns = GORO_US((i % 11) * 40)};
        goro_waitgroup_add(&o.wg, 1);
        goro_waitgroup_add(&c.wg, 1);
        goro_go(io_read_g, &o);
        goro_go(io_closer_g, &c);
        goro_waitgroup_wait(&o.wg);
        goro_waitgroup_wait(&c.wg);
        cr_assert(o.r == -EBADF || o.r == -ETIMEDOUT, "iteration %d: %zd (%s)", i, o.r,
                  goro_strerror((int)o.r));
        stats[o.r == -EBADF ? 0 : 1]++;
        goro_close(a);
    }
    cr_log_info("close race: %d EBADF, %d ETIMEDOUT", stats[0], stats[1]);
}

/* ------------------------------------------------------- timeout vs data */

typedef struct {
    int fd;
    int64_t delay_ns;
    goro_waitgroup wg;
} io_sender;

static void io_sender_g(void *arg) {
    io_sender *s = arg;
    int64_t end = goro_nanotime() + s->delay_ns;
    while (goro_nanotime() < end)
        goro_yield(); /* spin: finer than a timer */
    goro_write(s->fd, "!", 1, GORO_SEC(5));
    goro_waitgroup_done(&s->wg);
}

typedef struct {
    int fd;
    int64_t timeout;
    int first;  /* 1 data, 0 timeout */
    int second; /* after a timeout: 1 data arrived, 0 lost */
    int extra;  /* bytes beyond the one sent (duplication) */
    goro_waitgroup wg;
} io_racer;

static void io_racer_g(void *arg) {
    io_racer *r = arg;
    char buf[8];
    ssize_t n = goro_read(r->fd, buf, sizeof buf, r->timeout);
    if (n == 1) {
        r->first = 1;
    } else {
        r->first = n == -ETIMEDOUT ? 0 : -1;
        n = goro_read(r->fd, buf, sizeof buf, GORO_SEC(5));
        r->second = n == 1;
    }
    /* Nothing more may come. */
    r->extra = (int)goro_read(r->fd, buf, sizeof buf, 0);
    goro_waitgroup_done(&r->wg);
}

GORO_TEST(io, timeout_readiness_race, .timeout = 90) {
    int a, b;
    io_pair(&a, &b);
    int data_first = 0, timed_out = 0;
    for (int i = 0; i < 3000; i++) {
        io_racer r = {.fd = b, .timeout = GORO_US(20 + (i * 37) % 200)};
        io_sender s = {.fd = a, .delay_ns = GORO_US((i * 53) % 220)};
        goro_waitgroup_add(&r.wg, 1);
        goro_waitgroup_add(&s.wg, 1);
        goro_go(io_racer_g, &r);
        goro_go(io_sender_g, &s);
        goro_waitgroup_wait(&s.wg);
        goro_waitgroup_wait(&r.wg);
        cr_assert_neq(r.first, -1, "iteration %d: read failed with something but a timeout", i);
        if (r.first == 1) {
            data_first++;
        } else {
            timed_out++;
            cr_assert_eq(r.second, 1, "iteration %d: timed out AND the byte was lost", i);
        }
        cr_assert_eq(r.extra, -ETIMEDOUT, "iteration %d: data arrived twice", i);
    }
    cr_log_info("race: %d data first, %d timeout then data", data_first, timed_out);
    cr_assert_gt(data_first + timed_out, 0);
    goro_close(a);
    goro_close(b);
}

/* Same race through a plain thread's ppoll path. */
static void *io_racer_t(void *arg) {
    io_racer *r = arg;
    char buf[8];
    ssize_t n = goro_read(r->fd, buf, sizeof buf, r->timeout);
    if (n == 1) {
        r->first = 1;
    } else {
        r->first = n == -ETIMEDOUT ? 0 : -1;
        r->second = goro_read(r->fd, buf, sizeof buf, GORO_SEC(5)) == 1;
    }
    r->extra = (int)goro_read(r->fd, buf, sizeof buf, 0);
    return NULL;
}

GORO_TEST(io, timeout_readiness_race_thread, .timeout = 60) {
    int a, b;
    io_pair(&a, &b);
    for (int i = 0; i < 500; i++) {
        io_racer r = {.fd = b, .timeout = GORO_US(20 + (i * 37) % 200)};
        io_sender s = {.fd = a, .delay_ns = GORO_US((i * 53) % 220)};
        pthread_t th;
        pthread_create(&th, NULL, io_racer_t, &r);
        goro_waitgroup_add(&s.wg, 1);
        goro_go(io_sender_g, &s);
        goro_waitgroup_wait(&s.wg);
        pthread_join(th, NULL);
        cr_assert_neq(r.first, -1, "iteration %d", i);
        if (r.first == 0)
            cr_assert_eq(r.second, 1, "iteration %d: timed out AND the byte was lost", i);
        cr_assert_eq(r.extra, -ETIMEDOUT, "iteration %d: data arrived twice", i);
    }
    goro_close(a);
    goro_close(b);
}

/* A read that comes back short lets the next read park without a system
   call ("known empty"): EOF, a reset or more data after it must never be
   missed. */
typedef struct {
    int fd;
    int64_t timeout;
    int outcome;     /* bytes read in total, or -errno */
    _Atomic int got; /* bytes read so far */
    bool eof;
    bool wait_first; /* goro_wait_fd(POLLIN) before each read, as examples/echo.c */
    goro_waitgroup wg;
} io_drain;

static void io_drain_g(void *arg) {
    io_drain *d = arg;
    char buf[64];
    int total = 0;
    for (;;) {
        int ready = d->wait_first ? goro_wait_fd(d->fd, POLLIN, d->timeout) : POLLIN;
        if (ready < 0) {
            d->outcome = ready;
            break;
        }
        ssize_t n = goro_read(d->fd, buf, sizeof buf, d->timeout);
        if (n > 0) {
            total += (int)n;
            atomic_store(&d->got, total);
            continue;
        }
        if (n == 0)
            d->eof = true;
        d->outcome = n == 0 ? total : (int)n;
        break;
    }
    goro_waitgroup_done(&d->wg);
}

GORO_TEST(io, short_reads_then_eof_reset_or_more, .timeout = 60) {
    for (int i = 0; i < 300; i++) {
        int a, b;
        io_pair(&a, &b);
        io_drain d = {.fd = b, .timeout = GORO_SEC(10), .wait_first = (i / 3) % 2};
        goro_waitgroup_add(&d.wg, 1);
        uint64_t reader = goro_go(io_drain_g, &d);
        if (i % 4 != 3) /* the reader is parked first, or (every fourth time) maybe not */
            goro_test_await_parked(reader, GORO__WAIT_IO);
        int kind = i % 3;
        int sent = 0;
        for (int k = 0; k <= i % 4; k++) {
            /* bursts shorter than the reader's buffer: every read is short */
            cr_assert_eq(goro_write(a, "0123456789", 10, GORO_SEC(1)), 10);
            sent += 10;
            if (k % 2)
                goro_sleep(GORO_US(50));
        }
        if (kind == 1) {
            struct linger lg = {1, 0}; /* close with a reset */
            setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        if (kind == 2) /* the data is read before the FIN comes */
            cr_assert(goro_test_wait_until(atomic_load(&d.got) == sent, GORO_SEC(5)));
        cr_assert_eq(goro_close(a), 0);
        goro_waitgroup_wait(&d.wg);
        if (kind == 1) {
            cr_assert(d.outcome == -ECONNRESET || (d.eof && d.outcome <= sent),
                      "iteration %d: outcome %d", i, d.outcome);
        } else {
            cr_assert(d.eof, "iteration %d: no EOF (outcome %d)", i, d.outcome);
            cr_assert_eq(d.outcome, sent, "iteration %d", i);
        }
        goro_close(b);
    }
}

/* --------------------------------------------------------- plain threads */

typedef struct {
    int ln;
    _Atomic int ok;
} io_tserver;

static void *io_thread_server(void *arg) {
    io_tserver *s = arg;
    int fd = goro_accept(s->ln, GORO_SEC(5));
    if (fd < 0)
        return NULL;
    char buf[128];
    ssize_t n = goro_read(fd, buf, sizeof buf, GORO_SEC(5));
    if (n > 0 && goro_write(fd, buf, (size_t)n, GORO_SEC(5)) == n)
        atomic_store(&s->ok, 1);
    goro_close(fd);
    return NULL;
}

GORO_TEST(io, plain_thread_io, .timeout = 20) {
    /* A plain thread serves, goroutines dial. */
    char addr[64];
    io_tserver ts = {.ln = io_listen(addr, sizeof addr, 16)};
    pthread_t th;
    pthread_create(&th, NULL, io_thread_server, &ts);
    io_client c = {.addr = addr, .rounds = 1};
    goro_waitgroup_add(&c.wg, 1);
    goro_go(io_client_goroutine, &c);
    goro_waitgroup_wait(&c.wg);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&ts.ok), 1);
    cr_assert_eq(atomic_load(&c.ok), 1);
    goro_close(ts.ln);
    /* Plain threads on both sides, no goroutine involved. */
    ts.ln = io_listen(addr, sizeof addr, 16);
    atomic_store(&ts.ok, 0);
    pthread_create(&th, NULL, io_thread_server, &ts);
    io_client c2 = {.addr = addr, .rounds = 1};
    pthread_t cth;
    pthread_create(&cth, NULL, io_client_thread, &c2);
    pthread_join(cth, NULL);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&ts.ok), 1);
    cr_assert_eq(atomic_load(&c2.ok), 1);
    goro_close(ts.ln);
}

/* --------------------------------------------------------------- wait_fd */

typedef struct {
    int fd, events;
    int64_t timeout;
    int r; /* ready events or -errno */
    goro_waitgroup wg;
} io_waiter;

static void io_waiter_g(void *arg) {
    io_waiter *w = arg;
    w->r = goro_wait_fd(w->fd, w->events, w->timeout);
    goro_waitgroup_done(&w->wg);
}

static void *io_waiter_t(void *arg) {
    io_waiter *w = arg;
    w->r = goro_wait_fd(w->fd, w->events, w->timeout);
    return NULL;
}

/* The thread that finds ready goroutines in the poller takes a P and runs
   them itself (sched.c, netpoll_inject). While other Ps are idle it first
   gets another thread onto the poller: a goroutine it runs that never parks
   (nothing preempts a goroutine) must not leave every descriptor unwatched
   while two processors have nothing to do. */
typedef struct {
    int fd;
    _Atomic int state; /* 1: running without parking, 2: done */
    _Atomic int stop;
} io_hog;

static void io_hog_g(void *arg) {
    io_hog *h = arg;
    goro_wait_fd(h->fd, POLLIN, GORO_SEC(10));
    atomic_store(&h->state, 1);
    int64_t end = goro_nanotime() + GORO_SEC(5);
    while (!atomic_load(&h->stop) && goro_nanotime() < end)
        ; /* never parks, never yields */
    atomic_store(&h->state, 2);
}

GORO_TEST(io, poller_watched_while_its_thread_runs_a_hog, .timeout = 30) {
    int old = goro_maxprocs(3);
    int p1[2], p2[2];
    cr_assert_eq(pipe2(p1, O_CLOEXEC | O_NONBLOCK), 0);
    cr_assert_eq(pipe2(p2, O_CLOEXEC | O_NONBLOCK), 0);
    io_hog h = {.fd = p1[0]};
    goro_go(io_hog_g, &h);
    io_waiter w = {.fd = p2[0], .events = POLLIN, .timeout = GORO_SEC(10)};
    goro_waitgroup_add(&w.wg, 1);
    goro_go(io_waiter_g, &w);
    cr_assert(goro_test_wait_until(goro_test_count_parked(GORO__WAIT_IO, false) == 2, GORO_SEC(5)));
    cr_assert_eq(write(p1[1], "x", 1), 1);
    cr_assert(goro_test_wait_until(atomic_load(&h.state) == 1, GORO_SEC(5)));
    int64_t t0 = goro_nanotime();
    cr_assert_eq(write(p2[1], "y", 1), 1);
    goro_waitgroup_wait(&w.wg);
    int64_t waited = goro_nanotime() - t0;
    atomic_store(&h.stop, 1);
    cr_assert(goro_test_wait_until(atomic_load(&h.state) == 2, GORO_SEC(10)));
    cr_assert(w.r > 0 && (w.r & POLLIN), "r=%d", w.r);
    /* Without a poller it would wait for the hog (5 s). */
    cr_assert_lt(waited, GORO_SEC(2), "the ready waiter waited %lld ms",
                 (long long)(waited / 1000000));
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
    goro_maxprocs(old);
}

GORO_TEST(io, wait_fd_pipe_and_eventfd, .timeout = 20) {
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0); /* blocking pipe: left as it is */
    /* Two goroutines and a thread wait on the same pipe. */
    io_waiter w1 = {.fd = p[0], .events = POLLIN, .timeout = GORO_SEC(5)};
    io_waiter w2 = w1, w3 = w1;
    goro_waitgroup_add(&w1.wg, 1);
    goro_waitgroup_add(&w2.wg, 1);
    goro_go(io_waiter_g, &w1);
    goro_go(io_waiter_g, &w2);
    pthread_t th;
    pthread_create(&th, NULL, io_waiter_t, &w3);
    /* All three wait before the byte comes (a plain thread in goro has a
       goroutine record too). */
    cr_assert(goro_test_wait_until(goro_test_count_parked(GORO__WAIT_IO, true) == 3, GORO_SEC(5)),
              "%d of 3 waiters in IO wait", goro_test_count_parked(GORO__WAIT_IO, true));
    cr_assert_eq(write(p[1], "z", 1), 1);
    goro_waitgroup_wait(&w1.wg);
    goro_waitgroup_wait(&w2.wg);
    pthread_join(th, NULL);
    cr_assert(w1.r > 0 && (w1.r & POLLIN), "r=%d %s", w1.r, goro_strerror(w1.r));
    cr_assert(w2.r > 0 && (w2.r & POLLIN));
    cr_assert(w3.r > 0 && (w3.r & POLLIN));
    /* goro_read on the blocking pipe works and does not change its mode. */
    char ch;
    cr_assert_eq(goro_read(p[0], &ch, 1, GORO_SEC(1)), 1);
    cr_assert_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    /* Readiness for writing is immediate; a timeout is ETIMEDOUT. */
    cr_assert(goro_wait_fd(p[1], POLLOUT, 0) & POLLOUT);
    io_waiter wt = {.fd = p[0], .events = POLLIN, .timeout = GORO_MS(30)};
    goro_waitgroup_add(&wt.wg, 1);
    goro_go(io_waiter_g, &wt);
    goro_waitgroup_wait(&wt.wg);
    cr_assert_eq(wt.r, -ETIMEDOUT);
    /* A pipe read by a goroutine that waits for the writer. */
    io_op rd = {.fd = p[0], .timeout = GORO_SEC(5)};
    goro_waitgroup_add(&rd.wg, 1);
    goro_test_await_parked(goro_go(io_read_g, &rd), GORO__WAIT_IO);
    cr_assert_eq(write(p[1], "hello", 5), 5);
    goro_waitgroup_wait(&rd.wg);
    cr_assert_eq(rd.r, 5);
    /* The writer goes away: POLLHUP. */
    close(p[1]);
    cr_assert(goro_wait_fd(p[0], POLLIN, GORO_SEC(1)) & POLLHUP);
    close(p[0]);

    /* eventfd */
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cr_assert_geq(efd, 0);
    io_waiter we = {.fd = efd, .events = POLLIN, .timeout = GORO_SEC(5)};
    goro_waitgroup_add(&we.wg, 1);
    goro_test_await_parked(goro_go(io_waiter_g, &we), GORO__WAIT_IO);
    uint64_t one = 1;
    cr_assert_eq(write(efd, &one, 8), 8);
    goro_waitgroup_wait(&we.wg);
    cr_assert(we.r & POLLIN);
    uint64_t v = 0;
    cr_assert_eq(goro_read(efd, &v, 8, GORO_SEC(1)), 8);
    cr_assert_eq(v, 1);
    close(efd); /* closed behind goro's back ... */
    /* ... and the number reused by another eventfd: waits still work. */
    int efd2 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    io_waiter we2 = {.fd = efd2, .events = POLLIN, .timeout = GORO_SEC(5)};
    goro_waitgroup_add(&we2.wg, 1);
    goro_test_await_parked(goro_go(io_waiter_g, &we2), GORO__WAIT_IO);
    cr_assert_eq(write(efd2, &one, 8), 8);
    goro_waitgroup_wait(&we2.wg);
    cr_assert(we2.r > 0 && (we2.r & POLLIN), "r=%d %s", we2.r, goro_strerror(we2.r));
    cr_assert_eq(goro_wait_fd(efd2, 0, 0), -EINVAL);
    goro_close(efd2);
}

/* ------------------------------------------------------------------ errors */

GORO_TEST(io, errors_refused_and_bad_addresses, .timeout = 20) {
    char addr[64];
    int ln = io_listen(addr, sizeof addr, 16);
    goro_close(ln);
    int r = goro_dial_tcp(addr, GORO_SEC(2));
    cr_assert_eq(r, -ECONNREFUSED, "dial a closed port: %d (%s)", r, goro_strerror(r));

    const char *bad[] = {
        "",       "nohost",           "1.2.3.4:99999",     "[::1",       "127.0.0.1:",
        "::1:80", "[::1]80",          "127.0.0.1:80:90",   "1.2.3.4:-1", "[::1]:",
        ":",      "127.0.0.1:123456", "[::1%nosuchif]:80", NULL};
    for (int i = 0; bad[i]; i++) {
        r = goro_dial_tcp(bad[i], GORO_SEC(1));
        cr_assert_eq(r, -EINVAL, "dial \"%s\": %d (%s)", bad[i], r, goro_strerror(r));
        r = goro_listen_tcp(bad[i], 0);
        cr_assert_eq(r, -EINVAL, "listen \"%s\": %d (%s)", bad[i], r, goro_strerror(r));
    }
    cr_assert_eq(goro_dial_tcp(NULL, 0), -EINVAL);
    /* Not a descriptor. */
    char buf[4];
    cr_assert_eq(goro_read(-1, buf, 4, 0), -EBADF);
    cr_assert_eq(goro_write(1000000, buf, 4, 0), -EBADF);
    cr_assert_eq(goro_accept(999999, 0), -EBADF);
    cr_assert_eq(goro_close(-5), -EBADF);
    /* Listening twice on one port. */
    ln = io_listen(addr, sizeof addr, 16);
    cr_assert_eq(goro_listen_tcp(addr, 16), -EADDRINUSE);
    goro_close(ln);
}

GORO_TEST(io, addresses_ipv6_and_localhost, .timeout = 20) {
    int ln = goro_listen_tcp("localhost:0", 0);
    cr_assert_geq(ln, 0, "localhost: %s", goro_strerror(ln));
    char addr[64];
    snprintf(addr, sizeof addr, "localhost:%d", io_port_of(ln));
    int c = goro_dial_tcp(addr, GORO_SEC(2));
    cr_assert_geq(c, 0, "dial %s: %s", addr, goro_strerror(c));
    int s = goro_accept(ln, GORO_SEC(2));
    cr_assert_geq(s, 0);
    goro_close(c);
    goro_close(s);
    goro_close(ln);

    ln = goro_listen_tcp("[::1]:0", 16);
    if (ln < 0) {
        cr_log_warn("no IPv6 loopback here (%s): skipping the [::1] part", goro_strerror(ln));
        return;
    }
    snprintf(addr, sizeof addr, "[::1]:%d", io_port_of(ln));
    c = goro_dial_tcp(addr, GORO_SEC(2));
    cr_assert_geq(c, 0, "dial %s: %s", addr, goro_strerror(c));
    s = goro_accept(ln, GORO_SEC(2));
    cr_assert_geq(s, 0);
    cr_assert_eq(goro_write(c, "v6", 2, GORO_SEC(1)), 2);
    char buf[4];
    cr_assert_eq(goro_read(s, buf, sizeof buf, GORO_SEC(1)), 2);
    goro_close(c);
    goro_close(s);
    goro_close(ln);
}

GORO_TEST(io, emfile_is_reported, .timeout = 20) {
    char addr[64];
    int ln = io_listen(addr, sizeof addr, 64);
    int pre = goro_dial_tcp(addr, GORO_SEC(2)); /* waits in the accept queue */
    cr_assert_geq(pre, 0);
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    /* Exhaust the table: fill every free number below a low limit. */
    low = old;
    low.rlim_cur = 64;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int filler[64], nf = 0;
    for (;;) {
        int f = dup(0);
        if (f < 0)
            break;
        filler[nf++] = f;
        cr_assert_lt(nf, 64);
    }
    int r = goro_accept(ln, GORO_SEC(1));
    cr_assert_eq(r, -EMFILE, "accept: %d (%s)", r, goro_strerror(r));
    r = goro_dial_tcp(addr, GORO_SEC(1));
    cr_assert_eq(r, -EMFILE, "dial: %d (%s)", r, goro_strerror(r));
    r = goro_listen_tcp("127.0.0.1:0", 1);
    cr_assert_eq(r, -EMFILE, "listen: %d (%s)", r, goro_strerror(r));
    /* Plain-thread waits need no descriptor of their own to time out. */
    char b;
    cr_assert_eq(goro_read(pre, &b, 1, GORO_MS(20)), -ETIMEDOUT);
    /* A new thread cannot get its wake-up eventfd now: it waits in slices,
       and goro_close still wakes it. */
    io_blocked t = {.fd = pre, .kind = 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, io_blocked_t, &t), 0);
    cr_assert(goro_test_wait_until(atomic_load(&t.gid) != 0, GORO_SEC(5)));
    goro_test_await_parked(atomic_load(&t.gid), GORO__WAIT_IO);
    cr_assert_eq(goro_close(pre), 0);
    /* It waits forever, so returning at all is the proof that close woke
       it (a miss hangs until the test's .timeout); no bound on how fast. */
    pthread_join(th, NULL);
    cr_assert_eq(t.r, -EBADF);
    for (int i = 0; i < nf; i++)
        close(filler[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    /* Back to normal: the waiting connection is accepted now. */
    int s = goro_accept(ln, GORO_SEC(2));
    cr_assert_geq(s, 0, "accept after EMFILE: %s", goro_strerror(s));
    goro_close(s);
    goro_close(ln);
}

GORO_TEST(io, dial_timeout, .timeout = 20) {
    /* A listener that never accepts, with a tiny backlog: once its queue is
       full the kernel drops further SYNs and a dial can only time out. */
    int ln = goro_listen_tcp("127.0.0.1:0", 1);
    cr_assert_geq(ln, 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", io_port_of(ln));
    int fds[16], n = 0;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; i++) {
        int64_t t0 = goro_nanotime();
        int fd = goro_dial_tcp(addr, GORO_MS(100));
        if (fd >= 0) {
            fds[n++] = fd;
            continue;
        }
        cr_assert_eq(fd, -ETIMEDOUT, "dial: %s", goro_strerror(fd));
        cr_assert_geq(goro_nanotime() - t0, GORO_MS(100));
        timed_out = true;
    }
    cr_assert(timed_out, "the accept queue never filled");
    for (int i = 0; i < n; i++)
        goro_close(fds[i]);
    goro_close(ln);
}

/* ------------------------------------------------- state and no threads */

typedef struct {
    int fd;
    goro_waitgroup wg;
} io_idle;

static void io_idle_g(void *arg) {
    io_idle *w = arg;
    char buf[4];
    goro_read(w->fd, buf, sizeof buf, GORO_FOREVER);
    goro_waitgroup_done(&w->wg);
}

GORO_TEST(io, io_wait_state_and_no_threads, .timeout = 30) {
    int a, b;
    io_pair(&a, &b);
    io_idle w = {.fd = b};
    goro_waitgroup_add(&w.wg, 1);
    uint64_t id = goro_go_opts(&(goro_opts){.name = "io-waiter"}, io_idle_g, &w);
    goro_test_await_parked(id, GORO__WAIT_IO);
    static char text[1 << 20];
    goro_stack(text, sizeof text, true);
    char want[64];
    snprintf(want, sizeof want, "goroutine %llu [IO wait", (unsigned long long)id);
    cr_assert(strstr(text, want), "no \"%s\" in goro_stack:\n%s", want, text);
    cr_assert(strstr(text, "io_idle_g"), "the waiter's frame is missing:\n%s", text);
    /* 1,000 more goroutines waiting on sockets cost no thread. */
    int threads_before = io_threads();
    enum { N = 1000 };
    static int pa[N], pb[N];
    static io_idle ws[N];
    for (int i = 0; i < N; i++) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        pa[i] = sv[0];
        pb[i] = sv[1];
        ws[i].fd = pb[i];
        goro_waitgroup_add(&ws[i].wg, 1);
        goro_go(io_idle_g, &ws[i]);
    }
    /* Every waiter parked: a thread per wait would have started by now. */
    cr_assert(
        goro_test_wait_until(goro_test_count_parked(GORO__WAIT_IO, false) == N + 1, GORO_SEC(10)),
        "%d of %d waiters in IO wait", goro_test_count_parked(GORO__WAIT_IO, false), N + 1);
    int threads_during = io_threads();
    cr_assert_leq(threads_during, threads_before + 4, "threads %d -> %d with %d I/O waiters",
                  threads_before, threads_during, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(goro_write(pa[i], "w", 1, GORO_SEC(1)), 1);
    }
    for (int i = 0; i < N; i++) {
        goro_waitgroup_wait(&ws[i].wg);
        goro_close(pa[i]);
        goro_close(pb[i]);
    }
    goro_close(a);
    goro_waitgroup_wait(&w.wg); /* EOF */
    goro_close(b);
}
