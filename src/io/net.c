/*
 * net.c - the public I/O calls: TCP listen/dial/accept, read, write,
 * goro_wait_fd and goro_close, on top of the netpoller (netpoll.c).
 *
 * Every call returns its result or a negative errno value, as libuv does:
 * never -1 with errno alone. A call that parks may resume on another thread,
 * and the caller's compiler may have kept the address of the first thread's
 * errno (glibc declares __errno_location const), so errno read by the
 * caller after the call is not reliable inside a goroutine. errno is still
 * set (io_return), as a courtesy to plain threads. Inside this file
 * GORO__ERRNO reads the errno of the thread running now, right after the
 * system call that set it, never across a park.
 *
 * On a timeout the result is -ETIMEDOUT (exactly once per call: the
 * deadline is fixed when the call starts and covers all its retries). A
 * call on a descriptor that goro_close is closing, or closed while the call
 * waited, fails with -EBADF.
 *
 * Pattern of each call (io_internal.h): snapshot the readiness counters,
 * attempt the non-blocking system call, and on EAGAIN wait through
 * goro__pd_wait (a goroutine parks in "IO wait", a plain thread blocks in
 * ppoll) and try again.
 *
 * Known empty. A read of a TCP socket that returns less than it asked for
 * has drained it. Its readiness snapshot was taken before it, so until the
 * poller counts a new read-side event (rseq moves on) a new attempt would
 * only say EAGAIN: goro_read and goro_wait_fd(POLLIN) then park at once and
 * skip that system call (Go makes it). Data that arrives after the short
 * read produces an edge that either moves rseq before the park (the park is
 * refused and the call reads) or finds the caller on the wait list (the
 * poller wakes it), so nothing is missed. Only for sockets goro made (TCP
 * streams: a datagram's short read says nothing of the next one), never
 * once the poller saw a hang-up or error (EOF and errors are readable
 * without a new event), not for a timeout of 0 (one real attempt), and
 * forgotten after every wait that did not end with an event (plain
 * threads).
 *
 * Descriptors. Sockets made by goro_listen_tcp/goro_dial_tcp/goro_accept are
 * non-blocking, close-on-exec, registered with epoll at once, and (accepted
 * or dialled) have TCP_NODELAY; close them with goro_close. goro_read,
 * goro_write and goro_wait_fd also take any other descriptor (a pipe, an
 * eventfd, a library's socket). Such a descriptor's O_NONBLOCK flag is left
 * as it is: if it is in blocking mode, the call first waits for readiness
 * (costing no thread) and then does the system call inside
 * goro_syscall_enter/exit, so that even a read that blocks after all (another
 * reader took the data) only blocks its own thread.
 *
 * goro_wait_fd returns the ready events as poll(2) reports them (> 0; POLLHUP
 * and POLLERR may come with or instead of what was asked for). As with
 * poll(2), readiness is a hint: another reader of the same descriptor may
 * consume the data before the caller reads, so read non-blockingly or with
 * goro_read. It lets a server wait on an idle connection holding no buffer
 * at all (examples/echo.c).
 *
 * goro_write writes all of buf: it retries partial writes and waits on EAGAIN.
 * It returns n, or -errno if an error or the deadline comes first (then
 * some prefix of buf may have been written, as with Go's Write, which
 * returns n < len(b) with the error). Writes to sockets use MSG_NOSIGNAL: a
 * peer that went away gives -EPIPE, never SIGPIPE.
 *
 * Addresses are "host:port" (Go's net.SplitHostPort, hostport.h): "127.0.0.1:8080",
 * "[::1]:0", "localhost:0", ":8080" (listen: every interface; dial: the local
 * host). The port is a number 0..65535 or a service name. Bad strings fail
 * with -EINVAL ("", "nohost", "1.2.3.4:99999", "[::1", "127.0.0.1:"). A host
 * name is looked up with getaddrinfo inside goro_syscall_enter/exit; one that
 * does not resolve fails with -EHOSTUNREACH. listen tries the IPv4 addresses
 * of a name first (as Go does) and returns the first error; dial tries every
 * address in turn within one deadline and returns the last error.
 */
#include "io/io_internal.h"
#include "io/hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static int64_t deadline_of(int64_t timeout_ns) {
    if (timeout_ns < 0)
        return -1;
    int64_t now = goro__nanotime();
    if (timeout_ns > INT64_MAX - now)
        return -1; /* so far away that it is forever */
    return now + timeout_ns;
}

/* Whether a descriptor goro did not create is in blocking mode. 0 or an
   errno value. */
static int fd_blocking(goro__pd *pd, int fd, bool *blocking) {
    if (goro__pd_owned(pd)) {
        *blocking = false;
        return 0;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return GORO__ERRNO;
    *blocking = !(fl & O_NONBLOCK);
    return 0;
}

typedef ssize_t (*attempt_fn)(int fd, void *arg);

/*
 * Runs fn(fd, arg) until it returns >= 0 (returned), fails with anything but
 * EAGAIN/EINTR, or waiting for `events` fails (then -errno).
 */
static ssize_t io_loop(goro__pd *pd, int fd, int events, bool blocking, int64_t deadline,
                       attempt_fn fn, void *arg) {
    for (;;) {
        goro__pd_snap s = goro__pd_snapshot(pd);
        ssize_t r;
        int e;
        if (blocking) {
            /* Wait until poll(2) says ready, then call into the kernel. */
            struct pollfd p = {.fd = fd, .events = (short)events};
            int pr = poll(&p, 1, 0);
            if (pr < 0) {
                e = GORO__ERRNO;
                if (e == EINTR)
                    continue;
                return -e;
            }
            if (pr > 0 && (p.revents & POLLNVAL))
                return -EBADF;
            if (pr == 0) {
                int err = goro__pd_wait(pd, events, s, deadline, NULL);
                if (err)
                    return -err;
                continue;
            }
            /* errno is read inside the bracket: goro_syscall_exit may move
               this goroutine to another thread. */
            goro_syscall_enter();
            r = fn(fd, arg);
            e = GORO__ERRNO;
            goro_syscall_exit();
        } else {
            r = fn(fd, arg);
            e = r < 0 ? GORO__ERRNO : 0;
        }
        if (r >= 0)
            return r;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        if (blocking)
            continue; /* someone else made it non-blocking meanwhile */
        int err = goro__pd_wait(pd, events, s, deadline, NULL);
        if (err)
            return -err;
    }
}

/* Waits until poll(2) reports one of `events` (or an error condition) on fd.
   Returns the revents (> 0) or -errno. may_skip: a wait for reading only,
   with a timeout other than 0, may use "known empty". */
static int wait_ready(goro__pd *pd, int fd, int events, int64_t deadline, bool may_skip) {
    for (;;) {
        goro__pd_snap s = goro__pd_snapshot(pd);
        if (may_skip && goro__pd_known_empty(pd, s)) {
            int rev = 0;
            int err = goro__pd_wait(pd, events, s, deadline, &rev);
            if (err)
                return -err;
            rev &= events | POLLERR | POLLHUP;
            if (rev)
                return rev;
            goro__pd_forget_empty(pd);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = (short)events};
        int pr = poll(&p, 1, 0);
        if (pr > 0)
            return (p.revents & POLLNVAL) ? -EBADF : p.revents;
        if (pr < 0) {
            int e = GORO__ERRNO;
            if (e == EINTR)
                continue;
            return -e;
        }
        int rev = 0;
        int err = goro__pd_wait(pd, events, s, deadline, &rev);
        if (err)
            return -err;
        /* Woken by a readiness event for what we wait for: report it
           without asking poll(2) again. */
        rev &= events | POLLERR | POLLHUP;
        if (rev)
            return rev;
    }
}

/* Every public call returns through here: r is its result, or -errno. The
   return value is the truth; errno is also set, as a courtesy to plain
   threads, on the thread the call ends on (a goroutine's caller may still
   read another thread's errno: see goro.h). */
static ssize_t io_return(ssize_t r) {
    if (r < 0)
        GORO__ERRNO = (int)-r;
    return r;
}

/* Looks up fd's record and counts the call in: 0 and *pdp, or an errno
   value. */
static int enter(int fd, goro__pd **pdp) {
    int err;
    goro__pd *pd = goro__pd_get(fd, &err);
    if (!pd)
        return err;
    if ((err = goro__pd_enter(pd)) != 0)
        return err;
    *pdp = pd;
    return 0;
}

/* ------------------------------------------------------- read and write */

typedef struct {
    void *buf;
    size_t n;
} read_arg;

static ssize_t do_read(int fd, void *arg) {
    read_arg *a = arg;
    return read(fd, a->buf, a->n);
}

/* The non-blocking read loop, with "known empty". Bytes read or -errno. */
static ssize_t read_loop(goro__pd *pd, int fd, void *buf, size_t n, int64_t timeout_ns,
                         int64_t deadline) {
    for (;;) {
        goro__pd_snap s = goro__pd_snapshot(pd);
        if (timeout_ns != 0 && goro__pd_known_empty(pd, s)) {
            int err = goro__pd_wait(pd, POLLIN, s, deadline, NULL);
            if (err)
                return -err;
            goro__pd_forget_empty(pd); /* now really try (a thread's wait moves no rseq) */
            continue;
        }
        ssize_t r = read(fd, buf, n);
        if (r >= 0) {
            if (r > 0 && (size_t)r < n && goro__pd_owned(pd))
                goro__pd_mark_empty(pd, s);
            return r;
        }
        int e = GORO__ERRNO;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int err = goro__pd_wait(pd, POLLIN, s, deadline, NULL);
        if (err)
            return -err;
    }
}

ssize_t goro_read(int fd, void *buf, size_t n, int64_t timeout_ns) {
    goro__init();
    int64_t deadline = deadline_of(timeout_ns);
    goro__pd *pd = NULL;
    int err = enter(fd, &pd);
    if (err)
        return io_return(-err);
    bool blocking = false;
    err = fd_blocking(pd, fd, &blocking);
    ssize_t r = -err;
    if (!err) {
        if (blocking) {
            read_arg a = {buf, n};
            r = io_loop(pd, fd, POLLIN, true, deadline, do_read, &a);
        } else {
            r = read_loop(pd, fd, buf, n, timeout_ns, deadline);
        }
    }
    goro__pd_exit(pd);
    return io_return(r);
}

typedef struct {
    goro__pd *pd;
    const char *p;
    size_t n;
} write_arg;

static ssize_t do_write(int fd, void *arg) {
    write_arg *a = arg;
    if (!(atomic_load_explicit(&a->pd->flags, memory_order_relaxed) & GORO__PD_NOTSOCK)) {
        ssize_t r = send(fd, a->p, a->n, MSG_NOSIGNAL);
        if (r >= 0 || GORO__ERRNO != ENOTSOCK)
            return r;
        atomic_fetch_or_explicit(&a->pd->flags, (uint8_t)GORO__PD_NOTSOCK, memory_order_relaxed);
    }
    return write(fd, a->p, a->n);
}

ssize_t goro_write(int fd, const void *buf, size_t n, int64_t timeout_ns) {
    goro__init();
    int64_t deadline = deadline_of(timeout_ns);
    goro__pd *pd = NULL;
    int err = enter(fd, &pd);
    if (err)
        return io_return(-err);
    bool blocking = false;
    err = fd_blocking(pd, fd, &blocking);
    ssize_t r = -err;
    size_t done = 0;
    if (!err) {
        write_arg a = {pd, buf, n};
        do {
            a.p = (const char *)buf + done;
            a.n = n - done;
            r = io_loop(pd, fd, POLLOUT, blocking, deadline, do_write, &a);
            if (r < 0)
                break;
            done += (size_t)r;
        } while (done < n);
    }
    goro__pd_exit(pd);
    return io_return(r < 0 ? r : (ssize_t)done);
}

/* ------------------------------------------------------------ wait, close */

int goro_wait_fd(int fd, int events, int64_t timeout_ns) {
    goro__init();
    if (!(events & (POLLIN | POLLPRI | POLLOUT | POLLRDHUP | POLLRDNORM | POLLRDBAND | POLLWRNORM |
                    POLLWRBAND)))
        return (int)io_return(-EINVAL);
    int64_t deadline = deadline_of(timeout_ns);
    goro__pd *pd = NULL;
    int err = enter(fd, &pd);
    if (err)
        return (int)io_return(-err);
    bool read_only = !(events & ~(POLLIN | POLLRDNORM));
    int r = wait_ready(pd, fd, events, deadline, read_only && timeout_ns != 0);
    goro__pd_exit(pd);
    return (int)io_return(r);
}

int goro_close(int fd) {
    goro__init();
    return (int)io_return(-goro__pd_close(fd));
}

/* ------------------------------------------------------------- addresses */

#define MAX_ADDRS 16

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

typedef struct {
    addr_t a[MAX_ADDRS];
    int n;
} addr_list;

static void add_v4(addr_list *l, struct in_addr ip, uint16_t port) {
    if (l->n >= MAX_ADDRS)
        return;
    struct sockaddr_in *s = (struct sockaddr_in *)&l->a[l->n].ss;
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    s->sin_addr = ip;
    l->a[l->n++].len = sizeof *s;
}

static void add_v6(addr_list *l, struct in6_addr ip, uint32_t scope, uint16_t port) {
    if (l->n >= MAX_ADDRS)
        return;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&l->a[l->n].ss;
    memset(s, 0, sizeof *s);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    s->sin6_addr = ip;
    s->sin6_scope_id = scope;
    l->a[l->n++].len = sizeof *s;
}

static int gai_errno(int rc, int sys_errno) {
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
    case EAI_FAIL: return EHOSTUNREACH;
    case EAI_AGAIN: return EAGAIN;
    case EAI_MEMORY: return ENOMEM;
    case EAI_FAMILY: return EAFNOSUPPORT;
    case EAI_SYSTEM: return sys_errno ? sys_errno : EIO;
    default: return EINVAL;
    }
}

/* Resolves addr into l, IPv4 addresses first. 0 or an errno value. */
static int resolve(const char *addr, bool listening, addr_list *l) {
    char host[256], port[64];
    l->n = 0;
    int err = goro__split_hostport(addr, host, sizeof host, port, sizeof port, NULL);
    if (err)
        return err;
    uint16_t pnum;
    if ((err = goro__parse_port(port, &pnum, NULL)) != 0)
        return err;
    struct in_addr v4;
    struct in6_addr v6;
    if (host[0] == 0) {
        if (listening) {
            add_v6(l, in6addr_any, 0, pnum); /* dual stack, V6ONLY off */
            v4.s_addr = htonl(INADDR_ANY);
            add_v4(l, v4, pnum);
        } else {
            v4.s_addr = htonl(INADDR_LOOPBACK);
            add_v4(l, v4, pnum);
            add_v6(l, in6addr_loopback, 0, pnum);
        }
        return 0;
    }
    if (inet_pton(AF_INET, host, &v4) == 1) {
        add_v4(l, v4, pnum);
        return 0;
    }
    char *zone = strchr(host, '%');
    if (zone)
        *zone++ = 0;
    if (inet_pton(AF_INET6, host, &v6) == 1) {
        uint32_t scope = 0;
        if (zone) {
            scope = if_nametoindex(zone);
            if (scope == 0) {
                char *end;
                unsigned long z = strtoul(zone, &end, 10);
                if (*zone == 0 || *end)
                    return EINVAL;
                scope = (uint32_t)z;
            }
        }
        add_v6(l, v6, scope, pnum);
        return 0;
    }
    if (zone)
        return EINVAL;
    if (strcasecmp(host, "localhost") == 0) {
        v4.s_addr = htonl(INADDR_LOOPBACK);
        add_v4(l, v4, pnum);
        add_v6(l, in6addr_loopback, 0, pnum);
        return 0;
    }
    /* A name: getaddrinfo may block on the network, so hand the P over. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    goro_syscall_enter();
    int rc = getaddrinfo(host, NULL, &hints, &res);
    int sys_errno = GORO__ERRNO;
    goro_syscall_exit();
    if (rc != 0)
        return gai_errno(rc, sys_errno);
    for (int pass = 0; pass < 2; pass++) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if (pass == 0 && ai->ai_family == AF_INET)
                add_v4(l, ((struct sockaddr_in *)ai->ai_addr)->sin_addr, pnum);
            else if (pass == 1 && ai->ai_family == AF_INET6)
                add_v6(l, ((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
                       ((struct sockaddr_in6 *)ai->ai_addr)->sin6_scope_id, pnum);
        }
    }
    freeaddrinfo(res);
    return l->n ? 0 : EHOSTUNREACH;
}

/* ----------------------------------------------------------------- sockets */

static int somaxconn(void) {
    static _Atomic int cached;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v > 0)
        return v;
    v = SOMAXCONN;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
    if (f) {
        int x;
        if (fscanf(f, "%d", &x) == 1 && x > 0)
            v = x > 65535 ? 65535 : x;
        fclose(f);
    }
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* not TCP: harmless */
}

/* Closes a socket goro made during a failed call (the call reports its own
   error, not this one's). */
static void discard(int fd) { (void)goro__pd_close(fd); }

int goro_listen_tcp(const char *addr, int backlog) {
    goro__init();
    addr_list l;
    int err = resolve(addr, true, &l);
    if (err)
        return (int)io_return(-err);
    if (backlog <= 0)
        backlog = somaxconn();
    int first_err = 0;
    for (int i = 0; i < l.n; i++) {
        struct sockaddr *sa = (struct sockaddr *)&l.a[i].ss;
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = GORO__ERRNO;
        } else {
            int one = 1, zero = 0;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (sa->sa_family == AF_INET6 &&
                IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)sa)->sin6_addr))
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            if (bind(fd, sa, l.a[i].len) < 0 || listen(fd, backlog) < 0) {
                err = GORO__ERRNO;
                close(fd);
            } else if ((err = goro__pd_open(fd)) != 0) {
                discard(fd);
            } else {
                return fd;
            }
        }
        if (!first_err)
            first_err = err;
        /* Only a missing address family moves on to the next address. */
        if (err != EAFNOSUPPORT && err != EADDRNOTAVAIL && err != EPROTONOSUPPORT)
            break;
    }
    return (int)io_return(-(first_err ? first_err : EADDRNOTAVAIL));
}

/* One connect attempt: the connected fd, or -errno. */
static int dial_one(const addr_t *a, int64_t deadline) {
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -GORO__ERRNO;
    set_nodelay(fd);
    /* EINTR: the connection goes on asynchronously, as with EINPROGRESS. */
    int r = connect(fd, sa, a->len);
    int err = r == 0 ? 0 : GORO__ERRNO;
    if (err != 0 && err != EINPROGRESS && err != EINTR && err != EALREADY) {
        close(fd); /* never registered */
        return -err;
    }
    /* Registered only now: a socket that is not connecting yet polls as
       hung up, which would be a false event. */
    if ((err = goro__pd_open(fd)) != 0) {
        discard(fd);
        return -err;
    }
    if (r == 0)
        return fd;
    goro__pd *pd = NULL;
    if ((err = enter(fd, &pd)) != 0) {
        discard(fd);
        return -err;
    }
    for (;;) {
        int rev = wait_ready(pd, fd, POLLOUT, deadline, false);
        if (rev < 0) {
            err = -rev;
            break;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            err = GORO__ERRNO;
            break;
        }
        if (soerr == 0 || soerr == EISCONN) {
            /* A wake-up is a hint (Go issues 14548, 19289): connected for
               real only if there is a peer. */
            struct sockaddr_storage peer;
            socklen_t pl = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
                err = 0;
                break;
            }
            if ((err = GORO__ERRNO) != ENOTCONN)
                break;
            err = 0;
            continue;
        }
        if (soerr != EINPROGRESS && soerr != EALREADY && soerr != EINTR) {
            err = soerr;
            break;
        }
    }
    goro__pd_exit(pd);
    if (err) {
        discard(fd);
        return -err;
    }
    return fd;
}

int goro_dial_tcp(const char *addr, int64_t timeout_ns) {
    goro__init();
    int64_t deadline = deadline_of(timeout_ns);
    addr_list l;
    int err = resolve(addr, false, &l);
    if (err)
        return (int)io_return(-err);
    int fd = -EHOSTUNREACH;
    for (int i = 0; i < l.n; i++) {
        fd = dial_one(&l.a[i], deadline);
        if (fd >= 0)
            return fd;
        if (fd == -ETIMEDOUT || fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM)
            break;
    }
    return (int)io_return(fd);
}

static ssize_t do_accept(int fd, void *arg) {
    (void)arg;
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int goro_accept(int fd, int64_t timeout_ns) {
    goro__init();
    int64_t deadline = deadline_of(timeout_ns);
    goro__pd *pd = NULL;
    int err = enter(fd, &pd);
    if (err)
        return (int)io_return(-err);
    bool blocking = false;
    err = fd_blocking(pd, fd, &blocking);
    ssize_t nfd = -err;
    if (!err) {
        /* ECONNABORTED: the client gave up before we got to it; take the next one. */
        do
            nfd = io_loop(pd, fd, POLLIN, blocking, deadline, do_accept, NULL);
        while (nfd == -ECONNABORTED);
    }
    goro__pd_exit(pd);
    if (nfd < 0)
        return (int)io_return(nfd);
    int c = (int)nfd;
    set_nodelay(c);
    if ((err = goro__pd_open(c)) != 0) {
        discard(c);
        return (int)io_return(-err);
    }
    return c;
}
