/*
 * io_bench - the load side of goro's I/O benchmark (scripts/bench_io.sh runs
 * it against goro's examples/echo and Go's bench/go/echo, back to back).
 *
 * It is deliberately NOT a goro program: one thread, epoll, level-triggered,
 * so that both servers face exactly the same client.
 *
 *   io_bench echo ADDR CONNS SECONDS [MSGSIZE [SERVER_PID]]
 *
 *  1. reads the server's VmRSS (/proc/PID/status) before connecting;
 *  2. opens CONNS connections (one at a time, so the accept queue never
 *     overflows) and makes one round trip on each; after 500 ms of quiet it
 *     reads VmRSS again: (after - before) / CONNS is the memory one idle
 *     connection costs the server (its goroutine, buffers, records);
 *  3. runs every connection closed-loop - send MSGSIZE bytes (default 64),
 *     wait until all of them came back, send again - for 1 s of warm-up and
 *     then SECONDS measured;
 *  4. prints one line:
 *     echo conns=N rtt_per_s=R p50_us=A p99_us=B max_us=C idle_bytes_per_conn=M
 *          conn_rtts_min=X conn_rtts_max=Y
 *          server_cpu_ns_per_rtt=C server_busy_pct=B
 *     (idle_bytes_per_conn is -1 without SERVER_PID; X and Y are the round
 *     trips of the least and the most served connection: fairness; C is the
 *     server's CPU time (all threads, user + system) per round trip and B
 *     how busy its CPU was: below ~95% the client, not the server, was the
 *     bottleneck and C is the fairer comparison).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    size_t got;     /* bytes of the current echo received */
    int64_t t_sent; /* when the current message went out */
    uint64_t rtts;  /* round trips in the measured window */
} lconn;

static size_t msgsize = 64;
static char *msg, *rbuf;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "io_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long vmrss_bytes(int pid) {
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* CPU time (user + system, all threads) the server has used, in ns; -1 if unknown. */
static int64_t server_cpu_ns(int pid) {
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * (1000000000LL / sysconf(_SC_CLK_TCK));
}

static struct sockaddr_storage target;
static socklen_t target_len;

static void resolve(const char *addr) {
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "io_bench: bad address %s\n", addr);
        exit(2);
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(h, colon + 1, &hints, &res);
    if (rc) {
        fprintf(stderr, "io_bench: %s: %s\n", addr, gai_strerror(rc));
        exit(2);
    }
    memcpy(&target, res->ai_addr, res->ai_addrlen);
    target_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* Connects n sockets one after the other with blocking connects (so the
   server's accept queue never overflows), then makes them non-blocking. */
static void connect_all(lconn *c, int n) {
    for (int i = 0; i < n; i++) {
        int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&target, target_len) < 0)
            die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c[i].fd = fd;
    }
    for (int i = 0; i < n; i++)
        fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
}

static void send_msg(lconn *c) {
    c->got = 0;
    c->t_sent = now_ns();
    ssize_t w = send(c->fd, msg, msgsize, MSG_NOSIGNAL);
    if (w != (ssize_t)msgsize) {
        /* 64 bytes into an empty loopback socket never come back short. */
        errno = w < 0 ? errno : EAGAIN;
        die("send");
    }
}

/* One round trip on every connection, in order (the idle-memory step). */
static void one_round(lconn *c, int n, int ep) {
    for (int i = 0; i < n; i++)
        send_msg(&c[i]);
    int left = n;
    struct epoll_event evs[256];
    while (left > 0) {
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k <= 0)
            die("epoll_wait (no echo within 10 s)");
        for (int j = 0; j < k; j++) {
            lconn *x = evs[j].data.ptr;
            ssize_t r = recv(x->fd, rbuf, msgsize, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("recv");
            }
            x->got += (size_t)r;
            if (x->got == msgsize)
                left--;
        }
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[1], "echo") != 0) {
        fprintf(stderr, "usage: io_bench echo ADDR CONNS SECONDS [MSGSIZE [SERVER_PID]]\n");
        return 2;
    }
    resolve(argv[2]);
    int n = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (argc > 5)
        msgsize = (size_t)atol(argv[5]);
    int pid = argc > 6 ? atoi(argv[6]) : 0;
    if (n <= 0 || seconds <= 0 || msgsize == 0) {
        fprintf(stderr, "io_bench: CONNS, SECONDS and MSGSIZE must be positive\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    msg = malloc(msgsize);
    rbuf = malloc(msgsize);
    lconn *c = calloc((size_t)n, sizeof *c);
    if (!msg || !rbuf || !c)
        die("malloc");
    memset(msg, 'x', msgsize);

    long rss0 = vmrss_bytes(pid);
    connect_all(c, n);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev) < 0)
            die("epoll_ctl");
    }
    one_round(c, n, ep);
    struct timespec quiet = {0, 500 * 1000000};
    nanosleep(&quiet, NULL);
    long rss1 = vmrss_bytes(pid);
    long per_conn = rss0 >= 0 && rss1 >= 0 ? (rss1 - rss0) / n : -1;

    /* Closed loop: warm-up, then the measured window. */
    size_t cap = 1 << 20, nlat = 0;
    uint32_t *lat = malloc(cap * sizeof *lat);
    int64_t t0 = now_ns(), warm_end = t0 + 1000000000LL, end = warm_end + (int64_t)(seconds * 1e9),
            meas_start = 0;
    uint64_t rtts = 0;
    bool measuring = false;
    int64_t cpu0 = -1;
    for (int i = 0; i < n; i++)
        send_msg(&c[i]);
    struct epoll_event evs[256];
    for (;;) {
        int64_t t = now_ns();
        if (!measuring && t >= warm_end) {
            measuring = true;
            meas_start = t;
            cpu0 = server_cpu_ns(pid);
        }
        if (t >= end)
            break;
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int j = 0; j < k; j++) {
            lconn *x = evs[j].data.ptr;
            ssize_t r = recv(x->fd, rbuf, msgsize - x->got, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("recv");
            }
            x->got += (size_t)r;
            if (x->got < msgsize)
                continue;
            int64_t done = now_ns();
            if (measuring) {
                rtts++;
                x->rtts++;
                if (nlat == cap) {
                    cap *= 2;
                    lat = realloc(lat, cap * sizeof *lat);
                    if (!lat)
                        die("realloc");
                }
                int64_t us = (done - x->t_sent) / 1000;
                lat[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
            }
            send_msg(x);
        }
    }
    int64_t cpu1 = server_cpu_ns(pid);
    double secs = (double)(now_ns() - meas_start) / 1e9;
    /* The server's CPU per round trip, and how busy it was: a server below
       100% was waiting for the load, so compare cpu_ns_per_rtt then. */
    double cpu_per_rtt = cpu0 >= 0 && cpu1 >= 0 && rtts ? (double)(cpu1 - cpu0) / (double)rtts : -1;
    double busy = cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / (secs * 1e9) * 100 : -1;
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    uint32_t p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0,
             mx = nlat ? lat[nlat - 1] : 0;
    /* Fairness: round trips of the least and the most served connection. */
    uint64_t cmin = UINT64_MAX, cmax = 0;
    for (int i = 0; i < n; i++) {
        cmin = c[i].rtts < cmin ? c[i].rtts : cmin;
        cmax = c[i].rtts > cmax ? c[i].rtts : cmax;
    }
    printf(
        "echo conns=%d rtt_per_s=%.0f p50_us=%u p99_us=%u max_us=%u idle_bytes_per_conn=%ld "
        "conn_rtts_min=%llu conn_rtts_max=%llu server_cpu_ns_per_rtt=%.0f server_busy_pct=%.0f\n",
        n, (double)rtts / secs, p50, p99, mx, per_conn, (unsigned long long)cmin,
        (unsigned long long)cmax, cpu_per_rtt, busy);
    for (int i = 0; i < n; i++)
        close(c[i].fd);
    return 0;
}
