/*
 * test_hostport.c - the one "host:port" parser (src/io/hostport.h), shared
 * by goro_listen_tcp/goro_dial_tcp and goro_debug_serve: a table of Go's
 * net.SplitHostPort cases, then port numbers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "goro.h"
#include "io/hostport.h"

typedef struct split_case {
    const char *addr;
    const char *host; /* NULL: an error is expected, with message `why` */
    const char *port;
    const char *why;
} split_case;

static const split_case split_cases[] = {
    /* accepted (Go's SplitHostPort) */
    {"127.0.0.1:8080", "127.0.0.1", "8080", NULL},
    {"localhost:0", "localhost", "0", NULL},
    {"[::1]:0", "::1", "0", NULL},
    {":8080", "", "8080", NULL},
    {"[fe80::1%eth0]:80", "fe80::1%eth0", "80", NULL},
    {"[localhost]:http", "localhost", "http", NULL},
    {"example.com:https", "example.com", "https", NULL},
    {"[]:1", "", "1", NULL},
    /* refused */
    {"", NULL, NULL, "missing port in address"},
    {"nohost", NULL, NULL, "missing port in address"},
    {"127.0.0.1:", NULL, NULL, "missing port in address"},
    {":", NULL, NULL, "missing port in address"},
    {"[::1]", NULL, NULL, "missing port in address"},
    {"[::1]80", NULL, NULL, "missing port in address"},
    {"[::1]:", NULL, NULL, "missing port in address"},
    {"::1:80", NULL, NULL, "too many colons in address"},
    {"127.0.0.1:80:90", NULL, NULL, "too many colons in address"},
    {"[::1]::80", NULL, NULL, "too many colons in address"},
    {"[::1:80", NULL, NULL, "missing ']' in address"},
    {"[a[b]:80", NULL, NULL, "unexpected '[' in address"},
    {"a[b:80", NULL, NULL, "unexpected '[' in address"},
    {"[ab]:8]0", NULL, NULL, "unexpected ']' in address"},
    {"a]b:80", NULL, NULL, "unexpected ']' in address"},
};

Test(hostport, split_table) {
    for (size_t i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        const split_case *c = &split_cases[i];
        char host[64], port[16];
        const char *why = NULL;
        int r = goro__split_hostport(c->addr, host, sizeof host, port, sizeof port, &why);
        if (c->host) {
            cr_expect_eq(r, 0, "\"%s\": %s", c->addr, why ? why : "?");
            if (r == 0) {
                cr_expect_str_eq(host, c->host, "\"%s\": host", c->addr);
                cr_expect_str_eq(port, c->port, "\"%s\": port", c->addr);
            }
        } else {
            cr_expect_eq(r, EINVAL, "\"%s\" was accepted", c->addr);
            cr_expect(why && strcmp(why, c->why) == 0, "\"%s\": \"%s\", want \"%s\"", c->addr,
                      why ? why : "(none)", c->why);
        }
    }
}

Test(hostport, split_limits) {
    char host[4], port[4];
    const char *why = NULL;
    cr_expect_eq(goro__split_hostport(NULL, host, sizeof host, port, sizeof port, &why), EINVAL);
    cr_expect_eq(goro__split_hostport("abc:123", host, sizeof host, port, sizeof port, NULL), 0);
    cr_expect_eq(goro__split_hostport("abcd:1", host, sizeof host, port, sizeof port, &why),
                 EINVAL);
    cr_expect_str_eq(why, "address too long");
    cr_expect_eq(goro__split_hostport("a:1234", host, sizeof host, port, sizeof port, &why),
                 EINVAL);
}

Test(hostport, port_numbers) {
    static const struct {
        const char *port;
        int err;
        uint16_t want;
    } cases[] = {
        {"0", 0, 0},
        {"80", 0, 80},
        {"65535", 0, 65535},
        {"00080", 0, 80},
        {"65536", EINVAL, 0},
        {"99999", EINVAL, 0},
        {"123456789012345678901234567890", EINVAL, 0},
        {"-1", EINVAL, 0},
        {"", EINVAL, 0},
        {"nosuchservice", EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = 12345;
        const char *why = NULL;
        int r = goro__parse_port(cases[i].port, &got, &why);
        cr_expect_eq(r, cases[i].err, "\"%s\": %d", cases[i].port, r);
        if (r == 0)
            cr_expect_eq(got, cases[i].want, "\"%s\": %u", cases[i].port, got);
        else
            cr_expect(why != NULL, "\"%s\": no message", cases[i].port);
    }
}

/* A service name, when the services database knows it (netbase). */
Test(hostport, port_service_name) {
    uint16_t got = 0;
    if (goro__parse_port("http", &got, NULL) != 0)
        cr_skip_test("no \"http\" in the services database");
    cr_expect_eq(got, 80);
}

/* Both users follow the same rules: the address forms the header promises. */
Test(hostport, users_agree, .timeout = 20) {
    static const char *good[] = {"127.0.0.1:0", "localhost:0", ":0", NULL};
    for (int i = 0; good[i]; i++) {
        int fd = goro_listen_tcp(good[i], 4);
        cr_expect_geq(fd, 0, "listen \"%s\": %s", good[i], goro_strerror(fd));
        if (fd >= 0)
            goro_close(fd);
    }
    int port = goro_debug_serve("localhost:0");
    cr_expect_gt(port, 0, "debug_serve \"localhost:0\": %s", goro_strerror(port));
    goro_debug_stop();
    static const char *bad[] = {"nohost",     "::1:80",          "[::1]80",
                                "127.0.0.1:", "127.0.0.1:65536", NULL};
    for (int i = 0; bad[i]; i++) {
        cr_expect_eq(goro_listen_tcp(bad[i], 4), -EINVAL, "listen \"%s\"", bad[i]);
        cr_expect_eq(goro_debug_serve(bad[i]), -EINVAL, "debug_serve \"%s\"", bad[i]);
    }
}
