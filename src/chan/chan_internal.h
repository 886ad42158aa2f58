/*
 * chan_internal.h - channel internals shared by chan.c and select.c, and the
 * read-only hooks other layers (leak, observe) use to see who waits on what.
 *
 * A channel is one allocation: this header, then the ring buffer of
 * cap * elem_size bytes. Everything but `refs` is protected by `lock` (see
 * the invariants at the top of chan.c; the lock is described below).
 *
 * Waiter records (Go's sudog): a goroutine or plain thread that blocks on a
 * channel puts a goro__waiter on its own stack and links it into the
 * channel's sendq or recvq. The record points at the waiter's element buffer,
 * so a partner copies the value directly from one party's memory into the
 * other's (no intermediate copy). While it waits, g->waiting points to the
 * first record of the wait and the records are chained through `waitlink`
 * (one record for a plain send/recv, one per non-NULL case for a select).
 *
 * References and pins. `refs` (atomic, lock-free retain/release) counts the
 * references: the one of goro_chan_make, each goro_chan_retain, and each
 * hold (goro__chan_hold). `npins` (under `lock`) counts waiter records that
 * still refer to the channel: a waiter pins when it enqueues and the pin is
 * dropped, under the lock, when nobody will touch the channel on the
 * waiter's behalf again (see chan.c). When `refs` reaches zero the releaser
 * sets `dead` under the lock; whoever then finds (dead && npins == 0) under
 * the lock frees the channel after unlocking, exactly one party. So a
 * channel with waiters outlives its last reference (Go's GC keeps a channel
 * alive while a goroutine is blocked on it). No new pin can appear once
 * refs is zero: a waiter enqueues only through a reference of its own.
 * `nheld`/`holders` (under `lock`) record which goroutines hold references
 * through goro_opts.holds: refs - nheld is the number of references whose
 * holder is unknown (made or retained by plain code).
 *
 * Enumerating what a parked goroutine waits on (leak analysis, dumps):
 *   1. pin the goroutine with goro__g_scan_begin() and check that its status
 *      is GORO__G_WAITING;
 *   2. goro__g_wait_chans(g, out, max) returns the distinct channels of its
 *      current channel wait (0 when it waits on something else, on a NULL
 *      channel, or in a select whose cases are all NULL / that has no cases);
 *      they stay allocated while g stays pinned in WAITING (a select's
 *      records pin them; a partner that took a plain wait's record holds a
 *      reference of its own and cannot finish goro__ready until the scan
 *      ends). Do not use it on a RUNNABLE goroutine;
 *   3. for each channel, goro__chan_refinfo() reports its references, how
 *      many are held by goroutines, and those goroutines.
 * Whether the wait has a deadline is g->park_deadline's business (runtime);
 * the wait reason tells plain ops (chan send / chan receive) from select and
 * timed ops ("select", like Go's select with a timer case).
 */
#ifndef GORO_CHAN_INTERNAL_H
#define GORO_CHAN_INTERNAL_H

#include "../runtime/runtime.h"
#include "../runtime/upcalls.h"
#include "../util/list.h"

/* ------------------------------------------------------------ channel lock
 *
 * Each channel has its own small lock: a futex mutex whose release is a
 * plain store. A channel's critical sections are a few dozen instructions
 * that never block or park (a parked goroutine's locks are released by the
 * park's unlock function after it left its stack), so a contender spins
 * briefly on a plain load; if the holder still has it (its thread was
 * preempted by the kernel), the contender sleeps on the futex and the
 * unlocker wakes it. Nobody ever sleeps a fixed time.
 *
 * Words: `state` 0 free, 1 held (the futex word); `sleepers` counts
 * contenders between "about to sleep" and "acquired" (Drepper's third
 * state, "held, someone may sleep", kept in a word of its own so that the
 * release stays a plain store: an atomic exchange there, as Drepper's
 * mutex3 needs, costs a locked instruction on every uncontended unlock,
 * about 5 ns here, a third of a buffered send + receive).
 *
 * Invariant (no lost wake-up): a contender sleeps in futex_wait only after
 * it has counted itself in `sleepers` and then issued an expedited
 * process-wide memory barrier (membarrier), and only while state == 1. An
 * unlocker stores state = 0, then (compiler barrier only) loads `sleepers`
 * and wakes one sleeper if it is non-zero. The membarrier puts a full
 * barrier into every thread of the process, the unlocker included: either
 * its store precedes that barrier, and the contender, reading state after
 * the membarrier, sees it free and does not sleep; or its load of
 * `sleepers` follows the barrier and sees the contender counted. A woken
 * contender competes again (others may barge in); it stays counted until
 * it holds the lock, so every later unlock still wakes one. The heavy
 * barrier is paid only on the way to a futex sleep, which costs more.
 * Where membarrier is unavailable (old kernel, seccomp, qemu-user)
 * contenders never sleep: they spin and yield the CPU, and `sleepers`
 * stays 0. The acquire CAS and the release store are the happens-before
 * edges for the data the lock protects (TSan sees them as atomics).
 */
typedef struct goro__chan_lock {
    _Atomic uint32_t state;    /* 0 free, 1 held (the futex word) */
    _Atomic uint32_t sleepers; /* contenders that may sleep on state */
} goro__chan_lock;

GORO__HIDDEN void goro__chan_lock_slow(goro__chan_lock *l);
GORO__HIDDEN void goro__chan_lock_wake(goro__chan_lock *l);
/* Whether contenders sleep on the futex in this process (else they yield). */
GORO__HIDDEN bool goro__chan_lock_sleeps(void);

static inline void goro__chan_lock_acquire(goro__chan_lock *l) {
    uint32_t z = 0;
    if (GORO__LIKELY(atomic_compare_exchange_strong_explicit(&l->state, &z, 1, memory_order_acquire,
                                                             memory_order_relaxed)))
        return;
    goro__chan_lock_slow(l);
}

static inline void goro__chan_lock_release(goro__chan_lock *l) {
    atomic_store_explicit(&l->state, 0, memory_order_release);
    /* The load must not be hoisted above the store by the compiler; the
       hardware ordering comes from the contender's membarrier (above). */
    atomic_signal_fence(memory_order_seq_cst);
    if (GORO__UNLIKELY(atomic_load_explicit(&l->sleepers, memory_order_relaxed) != 0))
        goro__chan_lock_wake(l);
}

typedef struct goro__waiter goro__waiter;
struct goro__waiter {
    goro__link link;        /* in c's sendq or recvq (c->lock); after a dequeue,
                               in the waker's wake list */
    goro__g *g;             /* the waiting goroutine or thread record */
    goro_chan *c;           /* channel it waits on */
    void *elem;             /* send: the value; recv: destination (may be NULL) */
    goro__waiter *waitlink; /* next record of the same wait (g->waiting list) */
    uint32_t case_index;    /* select: index of the case in the caller's array */
    bool is_select;         /* one of several records (select): the owner removes
                               the others itself, and drops every pin itself */
    bool claimless;         /* plain wait with no deadline: nobody but one partner
                               can end it, so the partner readies it without
                               goro__claim (park accepts "readied without a claim") */
    bool linked;            /* currently in c's sendq or recvq */
    bool success;           /* set by the waker: true = value passed, false = closed */
};

/* A queue of goro__waiter (by link). Its `first` is also read without the
   lock (atomically) by the fast paths (util/list.h, "Lock-free peeks"). */
typedef goro__list goro__waitq;

struct goro_chan {
    goro__chan_lock lock;
    _Atomic uint32_t closed; /* written under lock; read lock-free by try fast paths */
    size_t elem_size;
    size_t dataqsiz;       /* capacity of the ring */
    _Atomic size_t qcount; /* elements in the ring; written under lock */
    size_t sendx;          /* next slot to send into */
    size_t recvx;          /* next slot to receive from */
    goro__waitq recvq;     /* blocked receivers */
    goro__waitq sendq;     /* blocked senders */
    _Atomic uint32_t refs; /* references (see above) */
    uint32_t npins;        /* waiter records referring to it (lock) */
    bool dead;             /* refs reached zero (lock) */
    uint32_t nheld;        /* references held through goro_opts.holds (lock) */
    uint32_t holders_cap;
    goro__g **holders; /* the holding goroutines, nheld of them (lock) */
    char *buf;         /* ring, inside the same allocation */
};

/* ------------------------------------------------ shared by chan.c/select.c */

/* Every operation starts here: a channel whose references are all released
   panics with "use of released channel" (chan.c, "Released channels"). */
GORO__HIDDEN void goro__chan_released_panic(void) __attribute__((noreturn, cold));
static inline bool goro__chan_is_released(goro_chan *c) {
    return GORO__UNLIKELY(atomic_load_explicit(&c->refs, memory_order_relaxed) == 0);
}
static inline void goro__chan_check_live(goro_chan *c) {
    if (goro__chan_is_released(c))
        goro__chan_released_panic();
}

GORO__HIDDEN void goro__chan_free(goro_chan *c);
GORO__HIDDEN void goro__waitq_enqueue(goro__waitq *q, goro__waiter *w);
GORO__HIDDEN void goro__waitq_remove(goro__waitq *q, goro__waiter *w);
/* Pops the first record whose owner it can claim; records it cannot claim
   (owner timed out or another case of its select won) are dropped. */
GORO__HIDDEN goro__waiter *goro__waitq_dequeue(goro__waitq *q);
/* Drops a waiter's pin, under c->lock. True: the channel is now unreferenced
   and unpinned, and the caller must goro__chan_free it after unlocking. */
static inline bool goro__chan_unpin_locked(goro_chan *c) { return --c->npins == 0 && c->dead; }
/* Parks forever with no way to be woken (a NULL channel, an empty select). */
GORO__HIDDEN void goro__chan_block_forever(int reason) __attribute__((noreturn));
/* Parks until the absolute deadline, with no way to be woken earlier (a timed
   operation on a NULL channel, a timed select with no usable case). */
GORO__HIDDEN void goro__chan_sleep(int reason, int64_t deadline);
/* Absolute deadline for a relative timeout > 0 (GORO_FOREVER handled by callers). */
GORO__HIDDEN int64_t goro__chan_deadline(int64_t ns);

/* Partner operations under c->lock (and the select's other locks). Each
   returns the goroutine to ready once every lock is released. */
GORO__HIDDEN goro__g *goro__chan_send_to(goro_chan *c, goro__waiter *w, const void *elem);
GORO__HIDDEN goro__g *goro__chan_recv_from(goro_chan *c, goro__waiter *w, void *elem);
GORO__HIDDEN void goro__chan_buf_put(goro_chan *c, const void *elem);
GORO__HIDDEN void goro__chan_buf_take(goro_chan *c, void *elem);

static inline void goro__elem_copy(void *dst, const void *src, size_t n) {
    switch (n) {
    case 0: return;
    case 4: __builtin_memcpy(dst, src, 4); return;
    case 8: __builtin_memcpy(dst, src, 8); return;
    case 16: __builtin_memcpy(dst, src, 16); return;
    default: __builtin_memcpy(dst, src, n); return;
    }
}

/* A send with elem == NULL sends a zero value. */
static inline void goro__elem_copy_src(void *dst, const void *src, size_t n) {
    if (GORO__LIKELY(src != NULL))
        goro__elem_copy(dst, src, n);
    else
        __builtin_memset(dst, 0, n);
}

/* ------------------------------------------------------ for leak / observe */

/* Channels allocated and not yet freed (made minus freed), for tests and
   diagnostics. */
GORO__HIDDEN int64_t goro__chan_live(void);

/* The distinct channels of g's current channel wait, at most `max` stored in
   out; returns how many there are. g must be the caller itself or pinned by
   goro__g_scan_begin while WAITING. */
GORO__HIDDEN size_t goro__g_wait_chans(goro__g *g, goro_chan **out, size_t max);

typedef struct goro__chan_info {
    uint32_t refs;    /* references (make + retains + holds) */
    uint32_t held;    /* of which held by goroutines through goro_opts.holds */
    uint32_t waiters; /* waiter records (pins) */
    bool closed;
    size_t len, cap;
} goro__chan_info;
/* A consistent snapshot (taken under the channel's lock) and up to `max`
   holding goroutines; returns the number of holders (info->held). The caller
   must keep c alive (a reference, or a pinned waiter on it). */
GORO__HIDDEN size_t goro__chan_refinfo(goro_chan *c, goro__chan_info *info, goro__g **holders,
                                       size_t max);

/* Pin / unpin for goro_opts.holds, which the runtime reaches through its
   hook table; goro__chan_upcalls fills those slots. */
GORO__HIDDEN void goro__chan_hold(goro_chan *c, goro__g *g);
GORO__HIDDEN void goro__chan_unhold(goro_chan *c, goro__g *g);
GORO__HIDDEN void goro__chan_upcalls(goro__upcall_table *t);

#endif
