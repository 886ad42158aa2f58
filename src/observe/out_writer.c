/*
 * out_writer.c - the buffered output writer every format writes through.
 *
 * Four sinks: a descriptor (crash and signal paths: only write(2), so it can
 * be used from a signal handler as long as the formatting does not allocate),
 * a FILE, a growable malloc'ed buffer, and a caller's fixed buffer that
 * silently drops what does not fit (goro_stack, like runtime.Stack).
 * The first error sticks in w->err; later writes are dropped.
 */
#include "observe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ow_init(goro__ow *w, int kind) {
    w->kind = kind;
    w->fd = -1;
    w->f = NULL;
    w->mem = NULL;
    w->mem_len = w->mem_cap = 0;
    w->err = 0;
    w->len = 0;
}

void goro__ow_init_fd(goro__ow *w, int fd) {
    ow_init(w, GORO__OW_FD);
    w->fd = fd;
}

void goro__ow_init_file(goro__ow *w, FILE *f) {
    ow_init(w, GORO__OW_FILE);
    w->f = f;
}

void goro__ow_init_mem(goro__ow *w) { ow_init(w, GORO__OW_MEM); }

void goro__ow_init_bounded(goro__ow *w, char *buf, size_t cap) {
    ow_init(w, GORO__OW_BOUNDED);
    w->mem = buf;
    w->mem_cap = cap;
}

static void sink(goro__ow *w, const char *s, size_t n) {
    if (w->err || n == 0)
        return;
    switch (w->kind) {
    case GORO__OW_FD:
        while (n > 0) {
            ssize_t r = write(w->fd, s, n);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                w->err = errno ? errno : EIO;
                return;
            }
            s += r;
            n -= (size_t)r;
        }
        if (atomic_load_explicit(&goro__observe_crashing, memory_order_relaxed))
            goro__crash_progress(); /* a crash report that writes is not stuck */
        return;
    case GORO__OW_FILE:
        if (fwrite(s, 1, n, w->f) != n)
            w->err = errno ? errno : EIO;
        return;
    case GORO__OW_MEM:
        if (w->mem_len + n + 1 > w->mem_cap) {
            size_t cap = w->mem_cap ? w->mem_cap : 8192;
            while (cap < w->mem_len + n + 1)
                cap *= 2;
            char *m = realloc(w->mem, cap);
            if (!m) {
                w->err = ENOMEM;
                return;
            }
            w->mem = m;
            w->mem_cap = cap;
        }
        memcpy(w->mem + w->mem_len, s, n);
        w->mem_len += n;
        w->mem[w->mem_len] = 0;
        return;
    case GORO__OW_BOUNDED: {
        size_t room = w->mem_cap - w->mem_len;
        if (n > room)
            n = room;
        memcpy(w->mem + w->mem_len, s, n);
        w->mem_len += n;
        return;
    }
    }
}

static void ow_drain(goro__ow *w) {
    sink(w, w->buf, w->len);
    w->len = 0;
}

bool goro__ow_full(const goro__ow *w) {
    return w->kind == GORO__OW_BOUNDED && w->mem_len + w->len >= w->mem_cap;
}

void goro__ow_write(goro__ow *w, const char *s, size_t n) {
    if (w->err)
        return;
    if (n > sizeof w->buf - w->len) {
        ow_drain(w);
        if (n >= sizeof w->buf) {
            sink(w, s, n);
            return;
        }
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

void goro__ow_puts(goro__ow *w, const char *s) { goro__ow_write(w, s, strlen(s)); }

void goro__ow_printf(goro__ow *w, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        goro__ow_write(w, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        w->err = ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    goro__ow_write(w, big, (size_t)n);
    free(big);
}

size_t goro__fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t goro__fmt_hex(char *buf, uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    buf[0] = '0';
    buf[1] = 'x';
    for (size_t i = 0; i < n; i++)
        buf[2 + i] = tmp[n - 1 - i];
    return n + 2;
}

void goro__ow_hex(goro__ow *w, uintptr_t v) {
    char b[24];
    goro__ow_write(w, b, goro__fmt_hex(b, v));
}

void goro__ow_dec(goro__ow *w, int64_t v) {
    char b[24];
    size_t n = 0;
    if (v < 0) {
        b[n++] = '-';
        n += goro__fmt_u64(b + n, (uint64_t)0 - (uint64_t)v);
    } else {
        n = goro__fmt_u64(b, (uint64_t)v);
    }
    goro__ow_write(w, b, n);
}

int goro__ow_flush(goro__ow *w) {
    ow_drain(w);
    if (w->kind == GORO__OW_FILE && !w->err && fflush(w->f) != 0)
        w->err = errno ? errno : EIO;
    return w->err;
}
