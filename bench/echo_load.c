/*
 * echo_load - a neutral load generator for the echo benchmark: plain C,
 * one thread, epoll, no goro. Drives goro's echo server and Go's the same way.
 *
 *   echo_load LABEL ADDR CONNS SECONDS [MSGSIZE [SERVER_PID]]
 *
 * 1. reads the server's VmRSS (/proc/PID/status) before connecting;
 * 2. opens CONNS connections and makes one round trip on each, waits 300 ms,
 *    reads the server's VmRSS again: bytes per idle connection;
 * 3. runs every connection closed-loop (send MSGSIZE bytes, wait for all of
 *    them to come back, repeat) for 1 s of warm-up, then SECONDS measured;
 * 4. prints one line in gobench's format:
 *    LABEL ns_per_op=<ns per round trip, all conns> ops=<round trips> rtt_per_s=...
 *          p50_us=... p99_us=... max_us=... bytes_per_idle_conn=... ...
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    size_t sent, got;
    int64_t t_start;
    int rounds; /* round trips to do in the warm-up phase */
} conn;

static size_t msgsize = 64;
static char *msg, *rbuf;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t server_rss(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int64_t v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtoll(line + 6, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

static void die(const char *what)
{
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sends what is left of the message; false on error. */
static int pump_send(conn *c)
{
    while (c->sent < msgsize) {
        ssize_t w = send(c->fd, msg + c->sent, msgsize - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 1;
            return 0;
        }
        c->sent += (size_t)w;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: echo_load LABEL ADDR CONNS SECONDS [MSGSIZE [SERVER_PID]]\n");
        return 2;
    }
    const char *label = argv[1];
    char host[64];
    const char *colon = strrchr(argv[2], ':');
    if (!colon || (size_t)(colon - argv[2]) >= sizeof host) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    memcpy(host, argv[2], (size_t)(colon - argv[2]));
    host[colon - argv[2]] = 0;
    int port = atoi(colon + 1);
    int nconns = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (argc > 5)
        msgsize = (size_t)atol(argv[5]);
    int pid = argc > 6 ? atoi(argv[6]) : 0;
    msg = malloc(msgsize);
    rbuf = malloc(65536);
    memset(msg, 'x', msgsize);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }

    int64_t rss0 = server_rss(pid);
    conn *cs = calloc((size_t)nconns, sizeof *cs);
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            if (errno != EINTR)
                die("connect");
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }

    size_t lat_cap = 1 << 20, nlat = 0;
    uint32_t *lat = malloc(lat_cap * sizeof *lat);
    struct epoll_event evs[512];

    /* phase 0: one round trip per connection; phase 1: warm-up; phase 2: measured */
    int64_t rss1 = -1, t_measure = 0, t_end = 0, rounds = 0;
    for (int phase = 0; phase < 3; phase++) {
        int pending = 0;
        int64_t t_phase_end = 0;
        if (phase == 0) {
            pending = nconns;
        } else {
            t_phase_end = now_ns() + (int64_t)((phase == 1 ? 1.0 : seconds) * 1e9);
            if (phase == 2) {
                t_measure = now_ns();
                nlat = 0;
                rounds = 0;
            }
        }
        int64_t now = now_ns();
        for (int i = 0; i < nconns; i++) {
            conn *c = &cs[i];
            c->sent = c->got = 0;
            c->t_start = now;
            if (!pump_send(c))
                die("send");
        }
        int stopping = 0, inflight = nconns;
        while (inflight > 0) {
            int k = epoll_wait(ep, evs, 512, 100);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                die("epoll_wait");
            }
            now = now_ns();
            if (phase > 0 && !stopping && now >= t_phase_end) {
                stopping = 1;
                if (phase == 2)
                    t_end = now;
            }
            for (int e = 0; e < k; e++) {
                conn *c = evs[e].data.ptr;
                if (c->sent < msgsize && !pump_send(c))
                    die("send");
                for (;;) {
                    if (c->got >= msgsize)
                        break;
                    ssize_t r = recv(c->fd, rbuf, 65536, 0);
                    if (r < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                            break;
                        die("recv");
                    }
                    if (r == 0) {
                        fprintf(stderr, "echo_load: server closed a connection\n");
                        return 1;
                    }
                    c->got += (size_t)r;
                    if (c->got < msgsize)
                        continue;
                    /* one round trip done */
                    int64_t t = now_ns();
                    if (phase == 2 && !stopping) {
                        if (nlat == lat_cap) {
                            lat_cap *= 2;
                            lat = realloc(lat, lat_cap * sizeof *lat);
                        }
                        int64_t d = t - c->t_start;
                        lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
                        rounds++;
                    }
                    if (phase == 0) {
                        pending--;
                        inflight--;
                        break;
                    }
                    if (stopping) {
                        inflight--;
                        break;
                    }
                    c->sent = c->got = 0;
                    c->t_start = t;
                    if (!pump_send(c))
                        die("send");
                }
            }
            if (phase == 0 && pending == 0)
                break;
        }
        if (phase == 0) {
            struct timespec ts = {0, 300 * 1000000L};
            nanosleep(&ts, NULL);
            rss1 = server_rss(pid);
        }
    }
    if (t_end == 0)
        t_end = now_ns();

    qsort(lat, nlat, sizeof *lat, cmp_u32);
    double secs = (double)(t_end - t_measure) / 1e9;
    double rps = (double)rounds / secs;
    double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[nlat * 99 / 100] / 1e3 : 0;
    double mx = nlat ? lat[nlat - 1] / 1e3 : 0;
    printf("%s ns_per_op=%.1f ops=%lld rtt_per_s=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f conns=%d msg_bytes=%zu"
           " bytes_per_idle_conn=%.1f server_rss_before=%lld server_rss_idle=%lld\n",
           label, rps > 0 ? 1e9 / rps : 0, (long long)rounds, rps, p50, p99, mx, nconns, msgsize,
           (rss0 > 0 && rss1 > 0) ? (double)(rss1 - rss0) / nconns : -1.0, (long long)rss0, (long long)rss1);
    for (int i = 0; i < nconns; i++)
        close(cs[i].fd);
    return 0;
}
