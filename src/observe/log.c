/*
 * log.c - GORO_LOG: one line on stderr with the goroutine id,
 *   [MMDD/HHMMSS.mmm:LEVEL:gid-N:file.c:line] message
 * (local time, the source file's base name), written with a single
 * write(2) so that lines from concurrent goroutines never interleave.
 */
#include "observe.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(enum goro_log_level l) {
    switch (l) {
    case GORO_LOG_DEBUG: return "DEBUG";
    case GORO_LOG_INFO: return "INFO";
    case GORO_LOG_WARN: return "WARN";
    case GORO_LOG_ERROR: return "ERROR";
    default: return "INFO";
    }
}

void goro_log_write(enum goro_log_level level, const char *file, int line, const char *fmt, ...) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    unsigned long long gid = (unsigned long long)goro_id();
    char stackbuf[1024];
    char *buf = stackbuf;
    size_t cap = sizeof stackbuf;
    int h = snprintf(buf, cap, "[%02d%02d/%02d%02d%02d.%03ld:%s:gid-%llu:%s:%d] ", tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     level_name(level), gid, base, line);
    if (h < 0)
        return;
    if ((size_t)h >= cap)
        h = (int)cap - 1;
    va_list ap;
    int m = 0;
    if (fmt) {
        va_start(ap, fmt);
        m = vsnprintf(buf + h, cap - (size_t)h, fmt, ap);
        va_end(ap);
    }
    if (m < 0)
        m = 0;
    if ((size_t)h + (size_t)m + 2 > cap) {
        size_t need = (size_t)h + (size_t)m + 2;
        char *big = malloc(need);
        if (big) {
            memcpy(big, buf, (size_t)h);
            va_start(ap, fmt);
            vsnprintf(big + h, need - (size_t)h, fmt, ap);
            va_end(ap);
            buf = big;
            cap = need;
        } else {
            m = (int)(cap - (size_t)h - 2);
        }
    }
    size_t n = (size_t)h + (size_t)m;
    if (n == 0 || buf[n - 1] != '\n')
        buf[n++] = '\n';
    goro__write_all(2, buf, n);
    if (buf != stackbuf)
        free(buf);
}
