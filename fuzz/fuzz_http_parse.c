/*
 * fuzz_http_parse.c - libFuzzer target for the debug server's request parser
 * (src/debug/http_parse.c). Run with fuzz/run.sh.
 *
 * Besides "no crash, no sanitizer report" it checks the parser's contract:
 *   - the result is 0, 200 or one of the error statuses, with a reason;
 *   - a 200 describes a head inside the input and inside the limit, with
 *     a path that starts with '/' (or is "*"), and strings in the arena;
 *   - prefixes agree with the whole: every strict prefix of an accepted head
 *     parses to 0 (need more), and an error on a prefix stays an error on
 *     the whole input (early rejection never refuses a valid request);
 *   - query lookup stays within its buffer; clean_path is idempotent and
 *     leaves no "//", "." or ".." segments; escape_path emits only the
 *     characters Go's EscapedPath keeps plus %XX; atoi round-trips.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>

#include "debug/http_parse.h"

static goro__http_req whole, part;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_http_parse: check failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int is_error(int rc) { return rc == 400 || rc == 431 || rc == 501 || rc == 505; }

static int in_arena(const goro__http_req *r, const char *s) {
    return s >= r->arena && s < r->arena + sizeof r->arena &&
           s + strlen(s) < r->arena + r->arena_used;
}

static void check_clean(const char *p) {
    size_t n = strlen(p);
    char *a = malloc(n + 2), *b = malloc(n + 3);
    CHECK(a && b);
    size_t an = goro__http_clean_path(p, a, n + 2);
    CHECK(an != (size_t)-1 && an == strlen(a) && an <= n + 1);
    CHECK(a[0] == '/');
    CHECK(!strstr(a, "//"));
    CHECK(!strstr(a, "/./") && !strstr(a, "/../"));
    CHECK(strcmp(a, "/.") != 0 && strcmp(a, "/..") != 0);
    if (an >= 2 && a[an - 1] == '.' && a[an - 2] == '/')
        CHECK(0);
    size_t bn = goro__http_clean_path(a, b, an + 2);
    CHECK(bn == an && strcmp(a, b) == 0);
    free(a);
    free(b);
}

static void check_escape(const char *p) {
    size_t n = strlen(p), cap = 3 * n + 1;
    char *e = malloc(cap);
    CHECK(e);
    size_t en = goro__http_escape_path(p, e, cap);
    CHECK(en != (size_t)-1 && en == strlen(e));
    for (size_t i = 0; i < en; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c == '%') {
            CHECK(i + 2 < en);
            i += 2;
            continue;
        }
        CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("-._~$&+,/:;=@", c));
    }
    /* too small a buffer is refused, never overrun */
    if (en > 0)
        CHECK(goro__http_escape_path(p, e, en) == (size_t)-1);
    free(e);
}

static void check_query(const char *q) {
    size_t cap = strlen(q) + 1;
    char *v = malloc(cap);
    CHECK(v);
    static const char *keys[] = {"debug", "seconds", "", " ", "a b", "x"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        memset(v, 'Z', cap);
        if (goro__http_query_get(q, keys[i], v, cap)) {
            CHECK(memchr(v, '\0', cap) != NULL);
            long long x;
            int e = goro__http_atoi(v, &x);
            if (e == 0) {
                char buf[32];
                snprintf(buf, sizeof buf, "%lld", x);
                long long y;
                CHECK(goro__http_atoi(buf, &y) == 0 && y == x);
            } else {
                CHECK(e == EINVAL ? x == 0 : (x == LLONG_MAX || x == LLONG_MIN));
            }
        }
        /* a 1-byte buffer only ever holds "" */
        char one = 'Z';
        if (goro__http_query_get(q, keys[i], &one, 1))
            CHECK(one == '\0');
    }
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    int rc = goro__http_parse(&whole, buf, size);
    CHECK(rc == 0 || rc == 200 || is_error(rc));
    if (is_error(rc))
        CHECK(whole.error != NULL);
    if (rc == 0)
        CHECK(size < GORO__HTTP_MAX_HEAD);

    if (rc == 200) {
        CHECK(whole.head_len > 0 && whole.head_len <= size);
        CHECK(whole.head_len <= GORO__HTTP_MAX_HEAD);
        CHECK(whole.method && whole.target && whole.path && whole.raw_query);
        CHECK(in_arena(&whole, whole.method) && in_arena(&whole, whole.target));
        CHECK(whole.method[0] != '\0');
        CHECK(whole.asterisk ? strcmp(whole.path, "*") == 0 : whole.path[0] == '/');
        CHECK(whole.nheaders >= 0 && whole.nheaders <= GORO__HTTP_MAX_HEADERS);
        for (int i = 0; i < whole.nheaders; i++) {
            CHECK(in_arena(&whole, whole.headers[i].name) &&
                  in_arena(&whole, whole.headers[i].value));
            CHECK(whole.headers[i].name[0] != '\0');
            CHECK(goro__http_header_get(&whole, whole.headers[i].name) != NULL);
        }
        /* strict prefixes need more */
        size_t ks[] = {0, 1, whole.head_len / 2, whole.head_len - 1, whole.head_len - 2};
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            if (ks[i] >= whole.head_len)
                continue;
            int prc = goro__http_parse(&part, buf, ks[i]);
            if (prc != 0) {
                fprintf(stderr, "prefix %zu of accepted head (%zu) -> %d (%s)\n", ks[i],
                        whole.head_len, prc, part.error ? part.error : "");
                abort();
            }
        }
        /* bytes after the head do not change it */
        if (size > whole.head_len) {
            CHECK(goro__http_parse(&part, buf, whole.head_len) == 200);
            CHECK(part.head_len == whole.head_len);
        }
        if (!whole.asterisk) {
            check_clean(whole.path);
            check_escape(whole.path);
        }
        check_query(whole.raw_query);
    } else if (size > 0) {
        /* an error on a prefix stays an error */
        size_t ks[] = {size / 3, size / 2, size - 1};
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
            int prc = goro__http_parse(&part, buf, ks[i]);
            if (is_error(prc) && !is_error(rc)) {
                fprintf(stderr, "prefix %zu -> %d (%s) but whole (%zu) -> %d\n", ks[i], prc,
                        part.error ? part.error : "", size, rc);
                abort();
            }
        }
    }

    /* The helpers on the raw bytes too (up to the first NUL). */
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    check_clean(s);
    check_escape(s);
    check_query(s);
    free(s);
    return 0;
}
