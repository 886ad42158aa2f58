/*
 * hostport.c - Go's net.SplitHostPort (see hostport.h).
 */
#include "io/hostport.h"

#include <errno.h>
#include <string.h>

int goro__split_hostport(const char *addr, char *host, size_t hostlen, char *port,
                         size_t portlen) {
    if (!addr || !*addr)
        return EINVAL;
    const char *h, *hend, *p;
    if (addr[0] == '[') {
        h = addr + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':')
            return EINVAL;
        p = hend + 2;
    } else {
        const char *c = strrchr(addr, ':');
        if (!c)
            return EINVAL; /* missing port */
        h = addr;
        hend = c;
        p = c + 1;
        if (memchr(h, ':', (size_t)(hend - h)))
            return EINVAL; /* too many colons: IPv6 needs brackets */
    }
    size_t hl = (size_t)(hend - h), pl = strlen(p);
    if (memchr(h, '[', hl) || memchr(h, ']', hl))
        return EINVAL; /* Go: "unexpected '[' in address" */
    if (hl >= hostlen || pl == 0 || pl >= portlen)
        return EINVAL;
    if (strpbrk(p, ":[]"))
        return EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, p, pl + 1);
    return 0;
}

bool goro__port_decimal(const char *p, uint16_t *out) {
    size_t n = strlen(p);
    if (n == 0 || n > 5)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}
