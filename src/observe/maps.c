/*
 * maps.c - reading procfs self/maps without allocating.
 *
 * Used for the stack bounds of plain threads (whose records carry none) -
 * possibly while another thread is paused in the capture signal handler, or
 * from a crash handler - so only open/read/close and stack buffers here.
 * The proto's mapping list uses the same iterator.
 */
#include "observe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "maps.h"

static uintptr_t parse_hex(const char **p) {
    uintptr_t v = 0;
    for (;;) {
        char c = **p;
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return v;
        v = v * 16 + (uintptr_t)d;
        (*p)++;
    }
}

static void skip_field(const char **p) {
    while (**p && **p != ' ')
        (*p)++;
    while (**p == ' ')
        (*p)++;
}

/* Parses one NUL-terminated line. */
static bool parse_line(const char *s, goro__maps_ent *e) {
    const char *p = s;
    e->lo = parse_hex(&p);
    if (*p++ != '-')
        return false;
    e->hi = parse_hex(&p);
    if (*p++ != ' ')
        return false;
    if (strlen(p) < 5)
        return false;
    e->r = p[0] == 'r';
    e->w = p[1] == 'w';
    e->x = p[2] == 'x';
    skip_field(&p);
    e->offset = (uint64_t)parse_hex(&p);
    while (*p == ' ')
        p++;
    skip_field(&p); /* dev */
    const char *ino = p;
    e->inode = 0;
    while (*ino >= '0' && *ino <= '9')
        e->inode = e->inode * 10 + (uint64_t)(*ino++ - '0');
    skip_field(&p); /* inode */
    e->path = p;
    return true;
}

int goro__maps_foreach(int (*cb)(const goro__maps_ent *e, void *arg), void *arg) {
    int fd;
    do
        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    char buf[4096];
    char line[4096 + 64];
    size_t ll = 0;
    bool overlong = false;
    int ret = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c != '\n') {
                if (ll < sizeof line - 1)
                    line[ll++] = c;
                else
                    overlong = true;
                continue;
            }
            line[ll] = 0;
            goro__maps_ent e;
            if (!overlong && parse_line(line, &e)) {
                ret = cb(&e, arg);
                if (ret)
                    goto done;
            }
            ll = 0;
            overlong = false;
        }
    }
done:
    close(fd);
    return ret;
}

struct range_arg {
    uintptr_t addr, lo, hi;
    bool found;
};

static int range_cb(const goro__maps_ent *e, void *arg) {
    struct range_arg *a = arg;
    if (a->addr >= e->lo && a->addr < e->hi) {
        if (e->r) {
            a->lo = e->lo;
            a->hi = e->hi;
            a->found = true;
        }
        return 1;
    }
    return 0;
}

bool goro__maps_range(uintptr_t addr, uintptr_t *lo, uintptr_t *hi) {
    struct range_arg a = {.addr = addr};
    goro__maps_foreach(range_cb, &a);
    if (!a.found)
        return false;
    *lo = a.lo;
    *hi = a.hi;
    return true;
}
