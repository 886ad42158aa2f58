/*
 * hostport.c - "host:port" splitting and port numbers (hostport.h).
 */
#include "hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

static int fail(const char **why, const char *msg) {
    if (why)
        *why = msg;
    return EINVAL;
}

int goro__split_hostport(const char *addr, char *host, size_t hostcap, char *port, size_t portcap,
                         const char **why) {
    static const char missing_port[] = "missing port in address";
    static const char too_many_colons[] = "too many colons in address";
    if (!addr)
        return fail(why, "no address");
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return fail(why, missing_port);
    const char *h, *hend, *rest; /* host is [h, hend); rest: after the host part */
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close)
            return fail(why, "missing ']' in address");
        if (close + 1 != colon) {
            /* "[::1]" or "[::1]80": no colon right after the bracket. */
            if (close[1] == ':')
                return fail(why, too_many_colons);
            return fail(why, missing_port);
        }
        h = addr + 1;
        hend = close;
        rest = close + 1;
    } else {
        h = addr;
        hend = colon;
        if (memchr(h, ':', (size_t)(hend - h)))
            return fail(why, too_many_colons); /* an IPv6 literal needs brackets */
        rest = addr;
    }
    /* Brackets only around the host: none after the opening one, none
       after the host part. */
    if (strchr(addr[0] == '[' ? addr + 1 : addr, '['))
        return fail(why, "unexpected '[' in address");
    if (strchr(rest, ']'))
        return fail(why, "unexpected ']' in address");
    const char *p = colon + 1;
    size_t hl = (size_t)(hend - h), pl = strlen(p);
    if (pl == 0)
        return fail(why, missing_port);
    if (hl >= hostcap || pl >= portcap)
        return fail(why, "address too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

int goro__parse_port(const char *p, uint16_t *out, const char **why) {
    if (!p || !*p)
        return fail(why, "missing port in address");
    bool digits = true;
    for (const char *c = p; *c; c++)
        if (*c < '0' || *c > '9')
            digits = false;
    if (digits) {
        unsigned long v = 0;
        for (const char *c = p; *c && v <= 65535; c++)
            v = v * 10 + (unsigned long)(*c - '0');
        if (v > 65535)
            return fail(why, "invalid port");
        *out = (uint16_t)v;
        return 0;
    }
    /* A service name ("http"): /etc/services, which may be slow. */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    goro_syscall_enter();
    int rc = getaddrinfo(NULL, p, &hints, &res);
    goro_syscall_exit();
    if (rc != 0 || !res)
        return fail(why, "unknown port");
    *out = ntohs(((struct sockaddr_in *)(void *)res->ai_addr)->sin_port);
    freeaddrinfo(res);
    return 0;
}
