/*
 * netpoll.c - the network poller: one epoll set, descriptor records, waiting
 * and waking, goro_close's hand-shake. Go's netpoll.go + netpoll_epoll.go.
 *
 * Epoll. One instance, created on first need (EPOLL_CLOEXEC), plus an eventfd
 * (level-triggered, tagged BREAK_TAG) that goro__netpoll_break writes to make
 * a blocked goro__netpoll_poll return. Each descriptor is registered once,
 * edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI; the event's data
 * is (fdseq << 32 | fd). fdseq changes whenever the record is reset or the
 * descriptor re-registered, so an event that was already in flight for an
 * earlier file with the same number is recognised and dropped.
 *
 * Records (io_internal.h). A table of chunks of 1024 records, indexed by the
 * descriptor number; chunks are installed once by CAS and never freed, so a
 * record pointer is valid forever and lookups take no lock.
 *
 * Lost wake-ups. The poller, under pd->lock, bumps rseq/wseq for every event
 * and then wakes the waiters of that side. A caller snapshots rseq/wseq
 * BEFORE its attempt (read, write, accept, poll) and, after EAGAIN, takes
 * pd->lock and parks only if the counter it needs still equals its snapshot.
 * An edge that arrives after the attempt therefore either bumps the counter
 * before the check (the caller retries) or finds the caller on the list (the
 * poller wakes it). Counters are never "consumed", so several waiters on one
 * descriptor each see every event (Go's pdReady/pdWait, for many waiters).
 * A wake-up is a hint, never a promise: an event may be stale (the data it
 * announced already read), so callers always retry the system call; the
 * poller also hands the waiter the event's bits (w->revents) and records a
 * hang-up or error in the sticky GORO__PD_HUP flag (net.c's "known empty").
 *
 * Waiting and the claim. A goroutine waiter links a goro__pd_waiter that
 * lives on its own stack into pd->waiters (under pd->lock), calls
 * goro__g_prepare_wait and parks with pd->lock as the unlock argument and
 * its deadline, if any. Exactly one of {the poller (ready), goro_close
 * (EBADF), the deadline timer (ETIMEDOUT)} wins goro__claim; a waker unlinks
 * the record only after winning, sets w->result and readies the goroutine,
 * all under pd->lock - except the poller, which only collects the goroutines
 * it won into a list and leaves readying them to the scheduler (sched.c,
 * netpoll_inject), after pd->lock: a polling thread with no P can then take
 * one and run them itself instead of queueing them globally and waking
 * another thread (Go's netpoll returning a gList to findrunnable). Nothing
 * else can touch such a goroutine or its record meanwhile: the claim is won,
 * the record unlinked. A waiter that lost to its deadline unlinks itself. So
 * a readiness event that races a timeout is never lost: the counter was
 * bumped (the next call's attempt sees the data in the socket) and the
 * timed-out call reports ETIMEDOUT exactly once.
 *
 * Plain threads (goro__getg()->is_thread) do not park through epoll: nothing
 * guarantees that a scheduler thread is polling. A waiting thread links a
 * record with its own eventfd (one per thread, made on first need) and
 * blocks in ppoll(2) on {fd, its eventfd} with the remaining time; ppoll is
 * level-triggered, so the race above does not arise. goro_close writes to
 * the eventfd of every thread waiter. (If the thread cannot get an eventfd -
 * EMFILE - it polls in 10 ms slices and checks the closing flag.) While it
 * waits the thread's record shows "IO wait", as a goroutine's would.
 *
 * Closing (goro__pd_close). pd->ref counts calls in flight (goro__pd_enter /
 * goro__pd_exit) plus the GORO__PD_CLOSING bit. Every use of the descriptor
 * by a call - read/write/accept/connect, poll, fcntl, epoll_ctl ADD/MOD in
 * pd_check_locked, a thread's ppoll - happens inside its enter/exit bracket.
 * The record moves through three states:
 *
 *   open      CLOSING clear. enter: CAS count -> count+1, no lock (acquire);
 *             exit: count-1 (release). fdseq, reg, waiters, closer: only
 *             under pd->lock. rseq/wseq/flags(HUP): the poller, under pd->lock.
 *   draining  goro_close set CLOSING (under pd->lock). enter now fails with
 *             EBADF, and no waiter links itself any more: goro__pd_wait and
 *             thread_wait look at CLOSING under pd->lock before they link.
 *             goro_close, still under the lock, claims and readies (EBADF)
 *             every goroutine waiter, or skips one whose deadline timer won
 *             the claim (that waiter unlinks itself under pd->lock, so its
 *             stack record stays valid while the list is walked); it kicks
 *             the eventfd of every thread waiter. Then, while the count is
 *             not 0, it parks as pd->closer (set under the lock, which the
 *             park releases); the exit that drops the count to 0 takes
 *             pd->lock, claims pd->closer and clears it. The poller may still
 *             deliver events meanwhile: they only bump counters and wake
 *             waiters that are left, under pd->lock, and never touch the
 *             descriptor itself; a deadline timer only claims and readies.
 *   closed    count 0, CLOSING still set. goro_close holds pd->lock without
 *             a break from the last count check to the end: EPOLL_CTL_DEL,
 *             record reset (fdseq++, so stale events are dropped; reg, flags,
 *             "known empty"), close(2), and only then ref = 0 (release).
 *
 * So every use of the descriptor by a call is ordered before its close(2)
 * (its exit's release, read by goro_close's acquire of the count) or after
 * it (ref = 0 is stored after close(2) returned). If ref were cleared before
 * close(2), a call starting at that moment would get in and use a descriptor
 * that close(2) is taking away: a read racing close(2) (TSan's "data race in
 * close_fd"), or, on EAGAIN, an EPOLL_CTL_ADD and a park on a file that is
 * then closed under it - no event ever comes, and the call sleeps until its
 * deadline (a thread's ppoll likewise: close(2) does not wake it).
 *
 * The kernel may give the number to a new file as soon as close(2) has
 * released it, before ref is cleared. goro__pd_open (goro's own sockets)
 * takes pd->lock and so waits for the clear. A call on a descriptor someone
 * else created with that number (a pipe) would see CLOSING; so goro__pd_enter,
 * on seeing CLOSING, takes pd->lock once to wait out goro_close's last step
 * and fails only if CLOSING is still set then (goro_close is draining: the
 * old file is still open and being closed). The price: close(2) runs under
 * pd->lock, which only calls entering this number and the poller handing
 * out an event for it (already fetched before the EPOLL_CTL_DEL) wait for.
 *
 * Errors: waiters and calls that start while goro_close drains get EBADF
 * (Go: "use of closed network connection"); a call that starts after the
 * close(2) gets whatever the number now is (EBADF from the kernel if
 * nothing reused it); a second goro_close of the same descriptor during the
 * first gets EBADF too.
 *
 * Descriptors goro did not create (goro_wait_fd on a pipe, a library's
 * socket) are registered on the first goroutine wait; because their owner may
 * close(2) them behind our back and the number be reused, every goroutine
 * wait on them re-issues EPOLL_CTL_ADD (EEXIST: still ours; success: a new
 * file, new fdseq): one system call per park, not per I/O call. Descriptors
 * goro created (GORO__PD_OWNED: listen/dial/accept) are trusted, as Go trusts
 * its net.Conn: they must be closed with goro_close (a close(2) behind goro's
 * back followed by reuse of the number outside goro is not detected).
 *
 * goro__netpoll_waiters counts goroutine records on the lists; it is bumped
 * when one is linked and dropped by whoever unlinks it. When it drops to zero
 * while some thread is blocked in epoll_wait, that thread is woken so it can
 * go back to the scheduler (and the deadlock check can see it idle).
 *
 * Lock order: pd->lock -> timer heap lock (goro__park arms the deadline
 * before it releases pd->lock) -> sched.lock (goro__ready). No pd->lock is
 * ever taken while another one is held.
 */
#include "io/io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { PD_R = 1, PD_W = 2 };

struct goro__pd_waiter {
    goro__link link; /* in pd->waiters, under pd->lock */
    goro__g *g;      /* the parked goroutine, or NULL for a plain thread */
    int efd;         /* plain thread: its eventfd (or -1) */
    uint8_t mode;    /* PD_R | PD_W */
    int result;      /* set by the waker that won the claim: 0 or EBADF */
    int revents;     /* readiness woken by: the epoll event as poll(2) bits */
};

#define CHUNK_SHIFT 10
#define CHUNK_SIZE (1u << CHUNK_SHIFT)
#define NCHUNKS (GORO__PD_MAX_FD >> CHUNK_SHIFT)
#define BREAK_TAG UINT64_MAX
#define EV_MASK (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET)

static goro__pd *_Atomic chunks[NCHUNKS];

static goro__lock init_lock = GORO__LOCK_INIT;
static _Atomic int epfd = -1;
static int breakfd = -1;
static _Atomic uint32_t break_pending;
static _Atomic int32_t nwaiters;        /* goroutine waiter records linked */
static _Atomic int32_t blocked_pollers; /* threads in epoll_wait with a timeout != 0 */
static _Atomic int have_pwait2 = 1;

/* ------------------------------------------------------------- the table */

static goro__pd *pd_lookup(int fd) {
    if (fd < 0 || fd >= GORO__PD_MAX_FD)
        return NULL;
    goro__pd *c = atomic_load_explicit(&chunks[fd >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[fd & (CHUNK_SIZE - 1)] : NULL;
}

goro__pd *goro__pd_get(int fd, int *err) {
    if (fd < 0) {
        *err = EBADF;
        return NULL;
    }
    if (fd >= GORO__PD_MAX_FD) {
        *err = EMFILE;
        return NULL;
    }
    goro__pd *_Atomic *slot = &chunks[fd >> CHUNK_SHIFT];
    goro__pd *c = atomic_load_explicit(slot, memory_order_acquire);
    if (GORO__UNLIKELY(!c)) {
        size_t bytes = CHUNK_SIZE * sizeof(goro__pd);
        goro__pd *n = aligned_alloc(64, bytes);
        if (!n) {
            *err = ENOMEM;
            return NULL;
        }
        memset(n, 0, bytes);
        int base = fd & ~(int)(CHUNK_SIZE - 1);
        for (unsigned i = 0; i < CHUNK_SIZE; i++)
            n[i].fd = base + (int)i;
        goro__pd *expect = NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &expect, n, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            c = n;
        } else {
            free(n);
            c = expect;
        }
    }
    return &c[fd & (CHUNK_SIZE - 1)];
}

/* ------------------------------------------------------------------ epoll */

static int netpoll_init(void) {
    if (GORO__LIKELY(atomic_load_explicit(&epfd, memory_order_acquire) >= 0))
        return 0;
    goro__lock_acquire(&init_lock);
    int err = 0;
    if (atomic_load_explicit(&epfd, memory_order_relaxed) < 0) {
        int e = epoll_create1(EPOLL_CLOEXEC);
        if (e < 0) {
            err = GORO__ERRNO;
        } else {
            int b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_TAG};
            if (b < 0 || epoll_ctl(e, EPOLL_CTL_ADD, b, &ev) < 0) {
                err = GORO__ERRNO;
                if (b >= 0)
                    close(b);
                close(e);
            } else {
                breakfd = b;
                atomic_store_explicit(&epfd, e, memory_order_release);
            }
        }
    }
    goro__lock_release(&init_lock);
    return err;
}

static inline uint64_t ev_data(goro__pd *pd, uint32_t seq) {
    return (uint64_t)seq << 32 | (uint32_t)pd->fd;
}

/* pd->lock held. Registers pd->fd (ADD), or confirms that the registration
   still stands (EEXIST). 0 or an errno value. */
static int pd_register_locked(goro__pd *pd) {
    int ep = atomic_load_explicit(&epfd, memory_order_acquire);
    uint32_t seq = pd->fdseq + 1;
    struct epoll_event ev = {.events = EV_MASK, .data.u64 = ev_data(pd, seq)};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, pd->fd, &ev) == 0) {
        pd->fdseq = seq;
        pd->reg = GORO__PD_REG_OK;
        return 0;
    }
    int e = GORO__ERRNO;
    if (e == EEXIST) {
        if (pd->reg == GORO__PD_REG_OK)
            return 0;
        /* Registered under data we no longer trust: retag it. */
        if (epoll_ctl(ep, EPOLL_CTL_MOD, pd->fd, &ev) < 0)
            return GORO__ERRNO;
        pd->fdseq = seq;
        pd->reg = GORO__PD_REG_OK;
        return 0;
    }
    if (e == EPERM) {
        /* No poll support (regular file, directory): always ready, as poll(2) says. */
        pd->reg = GORO__PD_REG_NOTPOLL;
        return 0;
    }
    return e;
}

/* pd->lock held, before a goroutine parks: makes sure the descriptor now
   behind pd->fd is the one registered (see "Descriptors goro did not
   create" above). */
static int pd_check_locked(goro__pd *pd) {
    if (pd->reg == GORO__PD_REG_OK && goro__pd_owned(pd))
        return 0;
    return pd_register_locked(pd);
}

int goro__pd_open(int fd) {
    int err;
    goro__pd *pd = goro__pd_get(fd, &err);
    if (!pd)
        return err;
    if ((err = netpoll_init()) != 0)
        return err;
    goro__lock_acquire(&pd->lock);
    /* A brand-new file: whatever was registered under this number before
       belonged to another one. */
    pd->fdseq++;
    pd->reg = GORO__PD_REG_NONE;
    goro__pd_forget_empty(pd);
    atomic_store_explicit(&pd->flags, GORO__PD_OWNED, memory_order_relaxed);
    err = pd_register_locked(pd);
    goro__lock_release(&pd->lock);
    return err;
}

/* ------------------------------------------------------- waiter records */

static void waiter_gone(void) {
    if (atomic_fetch_sub_explicit(&nwaiters, 1, memory_order_acq_rel) == 1 &&
        atomic_load_explicit(&blocked_pollers, memory_order_acquire) > 0)
        goro__netpoll_break();
}

static int events_mode(int events) {
    int mode = 0;
    if (events & (POLLIN | POLLPRI | POLLRDHUP | POLLRDNORM | POLLRDBAND))
        mode |= PD_R;
    if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
        mode |= PD_W;
    return mode;
}

/* ------------------------------------------------------- enter and exit */

int goro__pd_enter(goro__pd *pd) {
    uint32_t v = atomic_load_explicit(&pd->ref, memory_order_relaxed);
    bool waited = false;
    for (;;) {
        if (v & GORO__PD_CLOSING) {
            /* goro_close may be in its last step, where the number may
               already name a new file (see "Closing"): wait that step out
               once. Still closing after it: goro_close is draining. */
            if (waited)
                return EBADF;
            waited = true;
            goro__lock_acquire(&pd->lock);
            v = atomic_load_explicit(&pd->ref, memory_order_relaxed);
            goro__lock_release(&pd->lock);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&pd->ref, &v, v + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
}

void goro__pd_exit(goro__pd *pd) {
    uint32_t v = atomic_fetch_sub_explicit(&pd->ref, 1, memory_order_acq_rel) - 1;
    if (GORO__LIKELY(v != GORO__PD_CLOSING))
        return;
    /* The last call out of a closing descriptor: let goro_close go on. */
    goro__lock_acquire(&pd->lock);
    goro__g *c = pd->closer;
    if (c && goro__claim(c)) {
        pd->closer = NULL;
        goro__ready(c);
    }
    goro__lock_release(&pd->lock);
}

/* ------------------------------------------------------------ plain threads */

static pthread_key_t efd_key;
static pthread_once_t efd_once = PTHREAD_ONCE_INIT;
static __thread int tls_efd = -1;

static void efd_destroy(void *v) { close((int)(intptr_t)v - 1); }
static void efd_key_init(void) { pthread_key_create(&efd_key, efd_destroy); }

static int thread_efd(void) {
    if (tls_efd >= 0)
        return tls_efd;
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e < 0)
        return -1;
    pthread_once(&efd_once, efd_key_init);
    pthread_setspecific(efd_key, (void *)(intptr_t)(e + 1));
    tls_efd = e;
    return e;
}

static int thread_wait(goro__pd *pd, int events, int64_t deadline, int *revents) {
    int efd = thread_efd();
    goro__pd_waiter w = {.g = NULL, .efd = efd, .mode = (uint8_t)events_mode(events)};
    goro__lock_acquire(&pd->lock);
    if (atomic_load_explicit(&pd->ref, memory_order_relaxed) & GORO__PD_CLOSING) {
        goro__lock_release(&pd->lock);
        return EBADF;
    }
    goro__list_push_front(&pd->waiters, &w.link);
    goro__lock_release(&pd->lock);

    /* Show as "IO wait" (the runtime does the same in its futex park). */
    goro__g *g = goro__getg();
    bool show = g->is_thread;
    uint32_t old_status = atomic_load_explicit(&g->status, memory_order_relaxed);
    if (show) {
        atomic_store_explicit(&g->waitreason, (uint8_t)GORO__WAIT_IO, memory_order_relaxed);
        g->waitobj = pd;
        atomic_store_explicit(&g->waitsince, goro__nanotime(), memory_order_relaxed);
        atomic_store_explicit(&g->status, GORO__G_WAITING, memory_order_release);
    }
    goro__external_waiters_add(1);

    struct pollfd p[2] = {{.fd = pd->fd, .events = (short)events}, {.fd = efd, .events = POLLIN}};
    nfds_t np = efd >= 0 ? 2 : 1;
    int err = 0;
    for (;;) {
        struct timespec ts, *tsp = NULL;
        int64_t rem = -1;
        if (deadline >= 0) {
            rem = deadline - goro__nanotime();
            if (rem <= 0) {
                err = ETIMEDOUT;
                break;
            }
        }
        if (efd < 0 && (rem < 0 || rem > 10000000))
            rem = 10000000; /* no eventfd: look at the closing flag every 10 ms */
        if (rem >= 0) {
            ts.tv_sec = rem / 1000000000;
            ts.tv_nsec = rem % 1000000000;
            tsp = &ts;
        }
        int r = ppoll(p, np, tsp, NULL);
        if (r > 0)
            break;
        if (r < 0 && GORO__ERRNO != EINTR) {
            err = GORO__ERRNO;
            break;
        }
        if (efd < 0 && (atomic_load(&pd->ref) & GORO__PD_CLOSING))
            break;
    }

    goro__external_waiters_add(-1);
    if (show) {
        atomic_store_explicit(&g->status, old_status, memory_order_release);
        atomic_store_explicit(&g->waitsince, 0, memory_order_relaxed);
        g->waitobj = NULL;
    }

    goro__lock_acquire(&pd->lock);
    goro__list_remove(&pd->waiters, &w.link);
    bool closing = atomic_load_explicit(&pd->ref, memory_order_relaxed) & GORO__PD_CLOSING;
    goro__lock_release(&pd->lock);
    if (efd >= 0 && p[1].revents) {
        uint64_t v;
        ssize_t rr = read(efd, &v, sizeof v);
        (void)rr;
    }
    if (closing)
        return EBADF;
    if (!err && revents)
        *revents = p[0].revents;
    return err;
}

/* --------------------------------------------------------------- waiting */

int goro__pd_wait(goro__pd *pd, int events, goro__pd_snap snap, int64_t deadline, int *revents) {
    goro__g *g = goro__getg();
    if (revents)
        *revents = 0;
    if (g->is_thread || g->is_g0)
        return thread_wait(pd, events, deadline, revents);
    int mode = events_mode(events);
    if (deadline >= 0 && goro__nanotime() >= deadline)
        return ETIMEDOUT;
    int err = netpoll_init();
    if (err)
        return err;
    goro__lock_acquire(&pd->lock);
    if (atomic_load_explicit(&pd->ref, memory_order_relaxed) & GORO__PD_CLOSING) {
        goro__lock_release(&pd->lock);
        return EBADF;
    }
    if ((err = pd_check_locked(pd)) != 0) {
        goro__lock_release(&pd->lock);
        return err;
    }
    if (pd->reg == GORO__PD_REG_NOTPOLL) {
        /* Not pollable means always ready; an attempt that still said
           EAGAIN is retried after letting others run. */
        goro__lock_release(&pd->lock);
        goro_yield();
        return 0;
    }
    if (((mode & PD_R) && atomic_load_explicit(&pd->rseq, memory_order_relaxed) != snap.r) ||
        ((mode & PD_W) && atomic_load_explicit(&pd->wseq, memory_order_relaxed) != snap.w)) {
        goro__lock_release(&pd->lock);
        return 0; /* an event came after the snapshot: try again */
    }
    goro__pd_waiter w = {.g = g, .efd = -1, .mode = (uint8_t)mode, .result = 0, .revents = 0};
    goro__g_prepare_wait(g);
    goro__list_push_front(&pd->waiters, &w.link);
    atomic_fetch_add_explicit(&nwaiters, 1, memory_order_acq_rel);
    goro__external_waiters_add(1);
    bool woke = goro__park(GORO__WAIT_IO, pd, goro__lock_release_v, &pd->lock, deadline);
    goro__external_waiters_add(-1);
    if (woke) {
        if (revents && w.result == 0)
            *revents = w.revents;
        return w.result;
    }
    /* The deadline won the claim: nobody else unlinks us. */
    goro__lock_acquire(&pd->lock);
    goro__list_remove(&pd->waiters, &w.link);
    goro__lock_release(&pd->lock);
    waiter_gone();
    return ETIMEDOUT;
}

/* ---------------------------------------------------------------- closing */

static int close_fd(int fd) {
    if (close(fd) < 0 && GORO__ERRNO != EINTR) /* Linux: the fd is gone even on EINTR */
        return GORO__ERRNO;
    return 0;
}

int goro__pd_close(int fd) {
    if (fd < 0)
        return EBADF;
    goro__pd *pd = pd_lookup(fd);
    if (!pd)
        return close_fd(fd); /* never used by goro's I/O calls */
    goro__lock_acquire(&pd->lock);
    uint32_t v = atomic_fetch_or_explicit(&pd->ref, GORO__PD_CLOSING, memory_order_acq_rel);
    if (v & GORO__PD_CLOSING) {
        goro__lock_release(&pd->lock);
        return EBADF; /* another goro_close is in progress */
    }
    GORO__LIST_FOREACH_SAFE(w, &pd->waiters, goro__pd_waiter, link) {
        if (w->g) {
            goro__g *g = w->g;
            if (!goro__claim(g))
                continue; /* timed out at this moment: it unlinks itself */
            goro__list_remove(&pd->waiters, &w->link);
            w->result = EBADF;
            goro__ready(g);
            waiter_gone();
        } else if (w->efd >= 0) {
            uint64_t one = 1;
            ssize_t r = write(w->efd, &one, sizeof one);
            (void)r;
        }
    }
    /* Wait for every call in flight to leave (they are all awake now). */
    while ((atomic_load_explicit(&pd->ref, memory_order_acquire) & ~GORO__PD_CLOSING) != 0) {
        goro__g *g = goro__getg();
        goro__g_prepare_wait(g);
        pd->closer = g;
        goro__external_waiters_add(1);
        goro__park(GORO__WAIT_IO, pd, goro__lock_release_v, &pd->lock, -1);
        goro__external_waiters_add(-1);
        goro__lock_acquire(&pd->lock);
    }
    int ep = atomic_load_explicit(&epfd, memory_order_acquire);
    if (pd->reg == GORO__PD_REG_OK && ep >= 0) {
        struct epoll_event ev = {0};
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, &ev); /* ENOENT: it was close(2)d behind our back */
    }
    pd->reg = GORO__PD_REG_NONE;
    pd->fdseq++;
    goro__pd_forget_empty(pd);
    atomic_store_explicit(&pd->flags, 0, memory_order_relaxed);
    /* close(2) before the record looks open again, and without letting go of
       pd->lock in between (see "Closing"). */
    int err = close_fd(fd);
    atomic_store_explicit(&pd->ref, 0, memory_order_release);
    goro__lock_release(&pd->lock);
    return err;
}

/* ------------------------------------------------------- the poller itself */

/* Marks an event on pd and wakes the waiters of that side: each goroutine
   whose claim it wins goes on *ready, still WAITING; the scheduler makes it
   runnable after pd->lock is released (netpoll_poll in upcalls.h). Its
   waiter record w stays valid until then: the goroutine cannot run, and
   nobody else can unlink w or ready it (the claim is ours). Returns how
   many goroutines it added. */
static int pd_ready(goro__pd *pd, uint32_t seq, uint32_t ev, goro__glist *ready) {
    int mode = 0;
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        mode |= PD_R;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        mode |= PD_W;
    int n = 0;
    goro__lock_acquire(&pd->lock);
    if (pd->fdseq != seq || pd->reg != GORO__PD_REG_OK) {
        goro__lock_release(&pd->lock);
        return 0; /* stale: an earlier file with this number */
    }
    if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        atomic_fetch_or_explicit(&pd->flags, (uint8_t)GORO__PD_HUP, memory_order_release);
    if (mode & PD_R)
        atomic_fetch_add_explicit(&pd->rseq, 1, memory_order_release);
    if (mode & PD_W)
        atomic_fetch_add_explicit(&pd->wseq, 1, memory_order_release);
    GORO__LIST_FOREACH_SAFE(w, &pd->waiters, goro__pd_waiter, link) {
        if (!w->g || !(w->mode & mode))
            continue;
        goro__g *g = w->g;
        if (!goro__claim(g))
            continue;
        goro__list_remove(&pd->waiters, &w->link);
        w->result = 0;
        /* epoll's bits are poll(2)'s on Linux (EPOLLIN == POLLIN, ...). */
        w->revents = (int)(ev & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP));
        goro__glist_push(ready, g); /* w is dead once g runs */
        waiter_gone();
        n++;
    }
    goro__lock_release(&pd->lock);
    return n;
}

static int epoll_wait_ns(int ep, struct epoll_event *evs, int max, int64_t timeout_ns) {
#ifdef SYS_epoll_pwait2
    if (timeout_ns > 0 && atomic_load_explicit(&have_pwait2, memory_order_relaxed)) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        long r = syscall(SYS_epoll_pwait2, ep, evs, max, &ts, NULL, (size_t)0);
        if (r >= 0 || GORO__ERRNO != ENOSYS)
            return (int)r;
        atomic_store_explicit(&have_pwait2, 0, memory_order_relaxed);
    }
#endif
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns == 0)
        ms = 0;
    else if (timeout_ns >= (int64_t)INT_MAX * 1000000)
        ms = INT_MAX;
    else
        ms = (int)((timeout_ns + 999999) / 1000000); /* round up: never wake early */
    return epoll_wait(ep, evs, max, ms);
}

void goro__netpoll_poll(int64_t timeout_ns, goro__glist *ready) {
    int ep = atomic_load_explicit(&epfd, memory_order_acquire);
    if (ep < 0)
        return;
    int64_t deadline = timeout_ns > 0 ? goro__nanotime() + timeout_ns : timeout_ns;
    struct epoll_event evs[128];
    for (;;) {
        int64_t t = timeout_ns;
        if (timeout_ns > 0) {
            t = deadline - goro__nanotime();
            if (t < 0)
                t = 0;
        }
        if (t != 0)
            atomic_fetch_add_explicit(&blocked_pollers, 1, memory_order_acq_rel);
        /* Re-check after announcing ourselves: a waiter that left meanwhile
           saw blocked_pollers > 0 and broke us, or we see it gone here. */
        if (t != 0 && atomic_load_explicit(&nwaiters, memory_order_acquire) == 0) {
            atomic_fetch_sub_explicit(&blocked_pollers, 1, memory_order_acq_rel);
            return;
        }
        int n = epoll_wait_ns(ep, evs, (int)(sizeof evs / sizeof evs[0]), t);
        int e = n < 0 ? GORO__ERRNO : 0;
        if (t != 0)
            atomic_fetch_sub_explicit(&blocked_pollers, 1, memory_order_acq_rel);
        if (n < 0) {
            if (e != EINTR || timeout_ns == 0)
                return;
            continue;
        }
        int readied = 0;
        bool broke = false;
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            if (d == BREAK_TAG) {
                uint64_t v;
                ssize_t r = read(breakfd, &v, sizeof v);
                (void)r;
                atomic_store_explicit(&break_pending, 0, memory_order_release);
                broke = true;
                continue;
            }
            goro__pd *pd = pd_lookup((int)(uint32_t)d);
            if (pd)
                readied += pd_ready(pd, (uint32_t)(d >> 32), evs[i].events, ready);
        }
        if (timeout_ns == 0 || readied > 0 || broke)
            return;
        if (timeout_ns > 0 && goro__nanotime() >= deadline)
            return;
        if (atomic_load_explicit(&nwaiters, memory_order_acquire) == 0)
            return;
    }
}

void goro__netpoll_break(void) {
    if (atomic_load_explicit(&epfd, memory_order_acquire) < 0)
        return;
    uint32_t z = 0;
    if (!atomic_compare_exchange_strong_explicit(&break_pending, &z, 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;
    uint64_t one = 1;
    ssize_t r = write(breakfd, &one, sizeof one);
    (void)r;
}

int goro__netpoll_waiters(void) { return atomic_load_explicit(&nwaiters, memory_order_relaxed); }

void goro__netpoll_upcalls(goro__upcall_table *t) {
    t->netpoll_waiters = goro__netpoll_waiters;
    t->netpoll_poll = goro__netpoll_poll;
    t->netpoll_break = goro__netpoll_break;
}
