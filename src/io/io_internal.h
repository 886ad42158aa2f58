/*
 * io_internal.h - the netpoller's descriptor records, shared by netpoll.c
 * (epoll, waiting, waking, closing) and net.c (the public I/O calls).
 *
 * Every descriptor number that goro's I/O calls touch has one record
 * (goro__pd, Go's pollDesc) in a table indexed by the number. Records are
 * never freed or moved, so a pointer to one stays valid for the life of the
 * process; a record is reset when goro creates a descriptor with that number
 * and when goro_close closes it.
 *
 * An I/O call looks like this (see net.c):
 *
 *   pd = goro__pd_get(fd); goro__pd_enter(pd)      // EBADF while closing
 *   for (;;) {
 *       s = goro__pd_snap(pd);                     // readiness counters
 *       n = read(fd, ...);                         // the non-blocking attempt
 *       if (n >= 0 || errno != EAGAIN) break;      // (errno read at once: no park since)
 *       err = goro__pd_wait(pd, POLLIN, s, deadline);   // 0: try again
 *       if (err) break;                            // ETIMEDOUT, EBADF, ...
 *   }
 *   goro__pd_exit(pd)
 *   return n >= 0 ? n : -err                       // the public calls: result or -errno
 *
 * The functions here return 0 or a (positive) errno value; net.c turns
 * them into the public calls' negative ones.
 *
 * The snapshot is taken BEFORE the attempt, and goro__pd_wait parks only if
 * no readiness event arrived since the snapshot (checked under the record's
 * lock, where the poller also counts events and looks for waiters), so an
 * edge that arrives between the EAGAIN and the park is never lost.
 */
#ifndef GORO_IO_INTERNAL_H
#define GORO_IO_INTERNAL_H

#include "runtime/runtime.h"
#include "runtime/upcalls.h"
#include "util/list.h"

#include <poll.h>
#include <sys/types.h>

/* Highest descriptor number the table covers (exclusive). */
#define GORO__PD_MAX_FD (1 << 24)

typedef struct goro__pd_waiter goro__pd_waiter;

typedef struct goro__pd {
    goro__lock lock;
    int32_t fd;              /* constant: the table index */
    uint32_t fdseq;          /* lock: bumped at every reset and (re)registration;
                                      tags epoll events so stale ones are dropped */
    _Atomic uint32_t rseq;   /* read-side readiness events seen (bumped under lock) */
    _Atomic uint32_t wseq;   /* write-side readiness events seen (bumped under lock) */
    _Atomic uint32_t rempty; /* (rseq << 1 | 1) when a read came back short: the socket
                                      was empty after it (see "known empty" in net.c) */
    _Atomic uint32_t ref;    /* calls in flight | GORO__PD_CLOSING */
    _Atomic uint8_t flags;   /* GORO__PD_OWNED, GORO__PD_NOTSOCK (racy hints) */
    uint8_t reg;             /* lock: enum goro__pd_reg */
    goro__list waiters;      /* lock: goroutines and threads waiting (goro__pd_waiter) */
    goro__g *closer;         /* lock: goro_close waiting for ref to drain */
} goro__pd;

#define GORO__PD_CLOSING 0x80000000u

enum {
    GORO__PD_OWNED = 1,   /* created by goro (listen/dial/accept): a non-blocking TCP socket */
    GORO__PD_NOTSOCK = 2, /* send(2) said ENOTSOCK: use write(2) */
    GORO__PD_HUP = 4,     /* the poller saw EPOLLRDHUP, EPOLLHUP or EPOLLERR (sticky) */
};

enum goro__pd_reg {
    GORO__PD_REG_NONE = 0,    /* not in the epoll set (as far as we know) */
    GORO__PD_REG_OK = 1,      /* registered with data (fdseq << 32 | fd) */
    GORO__PD_REG_NOTPOLL = 2, /* epoll refused it (regular file...): always ready */
};

/* The record of fd, creating its table chunk if needed. NULL and *err set
   (EBADF for a negative fd, EMFILE past GORO__PD_MAX_FD, ENOMEM). */
GORO__HIDDEN goro__pd *goro__pd_get(int fd, int *err);

/* A descriptor goro just created (a non-blocking socket): resets the record
   and registers it with epoll. 0 or an errno value. */
GORO__HIDDEN int goro__pd_open(int fd);

/* Counts a call in flight; EBADF (and no count) while goro_close drains the
   calls in flight. Waits (for pd->lock) while goro_close close(2)s, so a
   call that gets in comes after the close(2) (netpoll.c, "Closing"). */
GORO__HIDDEN int goro__pd_enter(goro__pd *pd);
GORO__HIDDEN void goro__pd_exit(goro__pd *pd);

/* Readiness counters, to be taken before the attempt that may say EAGAIN. */
typedef struct goro__pd_snap {
    uint32_t r, w;
} goro__pd_snap;
static inline goro__pd_snap goro__pd_snapshot(goro__pd *pd) {
    goro__pd_snap s = {atomic_load_explicit(&pd->rseq, memory_order_acquire),
                       atomic_load_explicit(&pd->wseq, memory_order_acquire)};
    return s;
}

/* "Known empty" (net.c): a read of a TCP socket goro made that came back
   short, with `snap` taken before it, drained the socket. Until rseq moves
   on, a new read would only say EAGAIN, so the caller may park at once.
   Not for other descriptors (a datagram socket's short read says nothing
   about the next datagram), and never once the peer hung up or the socket
   has an error (then reading says 0 or the error, with no new event). */
static inline void goro__pd_mark_empty(goro__pd *pd, goro__pd_snap snap) {
    atomic_store_explicit(&pd->rempty, snap.r << 1 | 1, memory_order_relaxed);
}
static inline bool goro__pd_known_empty(goro__pd *pd, goro__pd_snap snap) {
    return atomic_load_explicit(&pd->rempty, memory_order_relaxed) == (snap.r << 1 | 1) &&
           (atomic_load_explicit(&pd->flags, memory_order_acquire) &
            (GORO__PD_OWNED | GORO__PD_HUP)) == GORO__PD_OWNED;
}
static inline void goro__pd_forget_empty(goro__pd *pd) {
    atomic_store_explicit(&pd->rempty, 0, memory_order_relaxed);
}

/* Waits until fd may be ready for `events` (POLLIN/POLLPRI/POLLRDHUP: read
   side, POLLOUT: write side) since the snapshot, the deadline (absolute
   goro_nanotime, < 0: none) passes, or goro_close. Returns 0 (try again),
   ETIMEDOUT, EBADF (closed) or another errno value. A goroutine parks in
   "IO wait"; a plain thread blocks in ppoll(2). On 0, *revents (if not
   NULL) holds the readiness that ended the wait as poll(2) bits (from the
   epoll event, or ppoll's), or 0 if the wait ended without one (an event
   that came before the park: try again). */
GORO__HIDDEN int goro__pd_wait(goro__pd *pd, int events, goro__pd_snap snap, int64_t deadline,
                               int *revents);

/* goro_close: wakes every waiter with EBADF, waits for the calls in flight
   to leave, unregisters and closes; the record reopens only after close(2)
   returned. 0 or an errno value. */
GORO__HIDDEN int goro__pd_close(int fd);

static inline bool goro__pd_owned(goro__pd *pd) {
    return atomic_load_explicit(&pd->flags, memory_order_relaxed) & GORO__PD_OWNED;
}

/* The scheduler's side of the netpoller, which it reaches through its hook
   table (upcalls.h says what each does); goro__netpoll_upcalls fills them. */
GORO__HIDDEN void goro__netpoll_upcalls(goro__upcall_table *t);
GORO__HIDDEN int goro__netpoll_waiters(void);
GORO__HIDDEN void goro__netpoll_poll(int64_t timeout_ns, goro__glist *ready);
GORO__HIDDEN void goro__netpoll_break(void);

/* errno of whatever thread runs the goroutine now (never cached across a park). */
#define GORO__ERRNO (*goro__errno_location())

#endif
