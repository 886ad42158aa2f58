/*
 * goro_http_hello - the goro twin of bench/go's net/http hello server, for
 * the HTTP benchmark driven by wrk: one goroutine per connection, HTTP/1.1
 * keep-alive, pipelined requests answered in order, and the same response
 * bytes Go's net/http sends for w.Write([]byte("Hello, World!\n")):
 *
 *   HTTP/1.1 200 OK
 *   Date: <RFC 1123 GMT>
 *   Content-Length: 14
 *   Content-Type: text/plain; charset=utf-8
 *
 * Requests are taken as header blocks ending in CRLFCRLF (no bodies: wrk
 * sends GETs). "Connection: close" closes after the response.
 *
 *   GOROMAXPROCS=1 taskset -c 1 goro_http_hello 127.0.0.1:0   (prints "listening ADDR")
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"

#define BODY "Hello, World!\n"

static size_t format_response(char *out, size_t cap)
{
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(out, cap,
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Length: %zu\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\n" BODY,
                     date, sizeof(BODY) - 1);
    return n > 0 ? (size_t)n : 0;
}

static void serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char in[8192], out[8192];
    size_t have = 0;
    bool close_after = false;
    while (!close_after) {
        ssize_t r = goro_read(fd, in + have, sizeof in - have, GORO_FOREVER);
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t used = 0, olen = 0;
        for (;;) {
            char *end = memmem(in + used, have - used, "\r\n\r\n", 4);
            if (!end)
                break;
            size_t reqlen = (size_t)(end + 4 - (in + used));
            /* Connection: close (case-insensitive header name) */
            for (char *p = in + used; p < end; p++) {
                if ((*p == '\n') && strncasecmp(p + 1, "connection: close", 17) == 0)
                    close_after = true;
            }
            if (olen + 256 > sizeof out) {
                if (goro_write(fd, out, olen, GORO_FOREVER) < 0)
                    goto done;
                olen = 0;
            }
            olen += format_response(out + olen, sizeof out - olen);
            used += reqlen;
            if (close_after)
                break;
        }
        if (olen && goro_write(fd, out, olen, GORO_FOREVER) < 0)
            break;
        memmove(in, in + used, have - used);
        have -= used;
        if (have == sizeof in) /* a header block larger than the buffer */
            break;
    }
done:
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
    goro_go(acceptor, (void *)(intptr_t)ln);
    for (;;)
        pause();
}
