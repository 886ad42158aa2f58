/*
 * echo - a TCP echo server on goroutines: one goroutine per connection, each
 * reading and writing back what it read; an idle connection costs a parked
 * goroutine ("IO wait"), not a thread.
 *
 *   echo                      serve on 127.0.0.1 (an ephemeral port) and run a
 *                             built-in client: --conns M connections, each
 *                             sending --msgs N messages and checking the echo;
 *                             exits 0 when every byte came back
 *   echo --serve PORT         keep serving on 127.0.0.1:PORT until killed
 *                             (try: nc 127.0.0.1 PORT; PORT 0 picks one)
 *   --idle-timeout SECONDS    drop connections silent this long (default
 *                             300; 0: never, as Go's net.Conn without a
 *                             deadline)
 *
 * Every failure is reported with the call that failed and why. The I/O
 * calls return the error (-ETIMEDOUT, -ECONNRESET, ...): errno is not
 * reliable after a call that may have moved the goroutine to another thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "goro.h"

#define BUF_SIZE 4096

/* A connection silent this long is dropped (--idle-timeout; 0: never). */
static int64_t IDLE_TIMEOUT = GORO_SEC(300);

/* One connection. While it is idle the goroutine waits for readability
   holding no buffer (goro_wait_fd), so an idle connection costs only its
   parked goroutine: the page of stack it touched. The buffer is taken from
   malloc for each burst of data and given back before the next wait. */
static void serve_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (;;) {
        int ready = goro_wait_fd(fd, POLLIN, IDLE_TIMEOUT);
        if (ready < 0) {
            if (ready != -ETIMEDOUT)
                fprintf(stderr, "echo: wait on connection %d: %s\n", fd, goro_strerror(ready));
            break;
        }
        char *buf = malloc(BUF_SIZE);
        if (!buf) {
            fprintf(stderr, "echo: out of memory\n");
            break;
        }
        ssize_t n = goro_read(fd, buf, BUF_SIZE, IDLE_TIMEOUT);
        bool done = n <= 0;
        if (n < 0 && n != -ETIMEDOUT && n != -ECONNRESET)
            fprintf(stderr, "echo: read from connection %d: %s\n", fd, goro_strerror((int)n));
        ssize_t w = n > 0 ? goro_write(fd, buf, (size_t)n, IDLE_TIMEOUT) : 0;
        if (w < 0) {
            if (w != -EPIPE && w != -ECONNRESET)
                fprintf(stderr, "echo: write to connection %d: %s\n", fd, goro_strerror((int)w));
            done = true;
        }
        free(buf);
        if (done)
            break; /* n == 0: the client closed its side */
    }
    goro_close(fd);
}

static void accept_loop(void *arg) {
    int ln = (int)(intptr_t)arg;
    for (;;) {
        int fd = goro_accept(ln, GORO_FOREVER);
        if (fd < 0) {
            if (fd == -EBADF)
                return; /* the listener was closed: shut down */
            fprintf(stderr, "echo: accept: %s\n", goro_strerror(fd));
            if (fd == -EMFILE || fd == -ENFILE)
                goro_sleep(GORO_MS(10)); /* out of descriptors: back off, as Go does */
            continue;
        }
        if (goro_go(serve_conn, (void *)(intptr_t)fd) == 0) {
            fprintf(stderr, "echo: cannot start a goroutine: out of memory\n");
            goro_close(fd);
        }
    }
}

static int local_port(int fd) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

/* ------------------------------------------------------ built-in client */

typedef struct {
    char addr[64];
    int msgs;
    _Atomic int ok, failed;
    goro_waitgroup wg;
} client_state;

static bool read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = goro_read(fd, buf + got, n - got, GORO_SEC(10));
        if (r <= 0) {
            fprintf(stderr, "echo client: read: %s\n",
                    r == 0 ? "connection closed early" : goro_strerror((int)r));
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static void client(void *arg) {
    client_state *c = arg;
    bool good = false;
    int fd = goro_dial_tcp(c->addr, GORO_SEC(10));
    if (fd < 0) {
        fprintf(stderr, "echo client: dial %s: %s\n", c->addr, goro_strerror(fd));
    } else {
        good = true;
        for (int i = 0; i < c->msgs && good; i++) {
            char msg[96], back[96];
            int n = snprintf(msg, sizeof msg, "goroutine %llu, message %d\n",
                             (unsigned long long)goro_id(), i);
            ssize_t w = goro_write(fd, msg, (size_t)n, GORO_SEC(10));
            if (w < 0) {
                fprintf(stderr, "echo client: write: %s\n", goro_strerror((int)w));
                good = false;
            } else if (!read_full(fd, back, (size_t)n)) {
                good = false;
            } else if (memcmp(msg, back, (size_t)n) != 0) {
                fprintf(stderr, "echo client: the echo differs from what was sent\n");
                good = false;
            }
        }
        goro_close(fd);
    }
    atomic_fetch_add(good ? &c->ok : &c->failed, 1);
    goro_waitgroup_done(&c->wg);
}

static void usage(void) {
    fprintf(stderr, "usage: echo [--conns M] [--msgs N]   (self-test)\n"
                    "       echo --serve PORT             (serve on 127.0.0.1:PORT)\n"
                    "       options: --idle-timeout SECONDS (default 300, 0: never)\n");
    exit(2);
}

int main(int argc, char **argv) {
    int serve_port = -1, conns = 100, msgs = 100;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--serve"))
            serve_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--conns"))
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--msgs"))
            msgs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--idle-timeout"))
            IDLE_TIMEOUT = atoi(argv[++i]) > 0 ? GORO_SEC(atoi(argv[i])) : GORO_FOREVER;
        else
            usage();
    }
    if (conns <= 0 || msgs <= 0 || (serve_port != -1 && (serve_port < 0 || serve_port > 65535)))
        usage();

    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", serve_port < 0 ? 0 : serve_port);
    int ln = goro_listen_tcp(addr, 0);
    if (ln < 0) {
        fprintf(stderr, "echo: listen on %s: %s\n", addr, goro_strerror(ln));
        return 1;
    }
    int port = local_port(ln);
    printf("echo: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    if (serve_port >= 0) {
        accept_loop((void *)(intptr_t)ln); /* goroutine 1 accepts, forever */
        return 0;
    }
    if (goro_go(accept_loop, (void *)(intptr_t)ln) == 0) {
        fprintf(stderr, "echo: cannot start the acceptor: out of memory\n");
        return 1;
    }
    client_state c = {.msgs = msgs};
    snprintf(c.addr, sizeof c.addr, "127.0.0.1:%d", port);
    int64_t t0 = goro_nanotime();
    goro_waitgroup_add(&c.wg, conns);
    for (int i = 0; i < conns; i++) {
        if (goro_go(client, &c) == 0) {
            fprintf(stderr, "echo: cannot start client %d: out of memory\n", i);
            atomic_fetch_add(&c.failed, 1);
            goro_waitgroup_done(&c.wg);
        }
    }
    goro_waitgroup_wait(&c.wg);
    double secs = (double)(goro_nanotime() - t0) / 1e9;
    goro_close(ln);
    int ok = atomic_load(&c.ok);
    printf("echo: %d of %d connections echoed %d messages each correctly (%.0f round trips/s)\n",
           ok, conns, msgs, (double)ok * msgs / secs);
    return ok == conns ? 0 : 1;
}
