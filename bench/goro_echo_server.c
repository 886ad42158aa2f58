/*
 * goro_echo_server - the goro twin of bench/go's echo_server, for the echo
 * benchmark driven by bench/echo_load: one goroutine per connection, a 4 KiB
 * buffer, read then write back what was read.
 *
 *   GOROMAXPROCS=1 taskset -c 1 goro_echo_server 127.0.0.1:0   (prints "listening ADDR")
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "goro.h"

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = goro_read(fd, buf, sizeof buf, GORO_FOREVER);
        if (n <= 0)
            break;
        if (goro_write(fd, buf, (size_t)n, GORO_FOREVER) < 0)
            break;
    }
    goro_close(fd);
}

static void acceptor(void *arg)
{
    int ln = (int)(intptr_t)arg;
    for (;;) {
        int fd = goro_accept(ln, GORO_FOREVER);
        if (fd < 0) {
            perror("goro_accept");
            continue;
        }
        if (goro_go(serve_conn, (void *)(intptr_t)fd) == 0) {
            perror("goro_go");
            goro_close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    int ln = goro_listen_tcp(addr, 4096);
    if (ln < 0) {
        perror("goro_listen_tcp");
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(ln, (struct sockaddr *)&sa, &sl);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    printf("listening %s:%d\n", ip, ntohs(sa.sin_port));
    fflush(stdout);
    /* as in Go, where main is a goroutine, the accept loop runs in one */
    goro_go(acceptor, (void *)(intptr_t)ln);
    for (;;)
        pause();
}
