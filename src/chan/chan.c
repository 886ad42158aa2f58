/*
 * chan.c - channels: send, receive, close, reference counting.
 *
 * The behaviour is Go's (src/runtime/chan.go); the blocking goes through the
 * runtime's park/claim/ready protocol (runtime.h) instead of Go's gopark.
 *
 * Invariants (all under c->lock, counting only records whose owner can still
 * be claimed; stale records, see Claiming, may linger until someone meets
 * them):
 *   At least one of c->sendq and c->recvq is empty, except for an unbuffered
 *   channel with a single goroutine blocked on it for both sending and
 *   receiving using a select, in which case the length of c->sendq and
 *   c->recvq is limited only by the size of the select statement.
 *   For buffered channels, also:
 *     c->qcount > 0 implies that c->recvq is empty.
 *     c->qcount < c->dataqsiz implies that c->sendq is empty.
 *
 * Waiter records (goro__waiter, Go's sudog) live on the waiting goroutine's
 * stack. A record is linked into exactly one queue of exactly one channel
 * and is read or written by others only under that channel's lock, while
 * linked, or by the party that dequeued it between a successful claim and
 * its goro__ready. The waiter owns the record again once it runs.
 *
 * Claiming: a partner (sender, receiver, closer) that dequeues a record must
 * win goro__claim(w->g) before touching the waiter's memory. Exactly one
 * party wins a wait generation: one partner, or the deadline. A select puts
 * one record per case on several queues; the first partner to claim wins and
 * the remaining records become stale: any partner that meets one fails the
 * claim, unlinks it and moves on, and the owner unlinks whatever is left
 * when it runs again (under the channel locks). A goroutine never dequeues
 * its own record: it scans queues only while it has none linked (the select
 * enqueues only after its poll found nothing ready, holding every lock).
 * Exception: a plain send/receive without a deadline (w->claimless) has no
 * other possible claimant, so the partner that dequeues it skips the CAS and
 * readies it directly (park treats that as "readied without a claim"); this
 * saves an atomic on the hottest blocking path.
 *
 * Hand-off: the partner copies the value straight between the two parties'
 * element buffers (unbuffered channel, or buffered with a waiting receiver,
 * which implies an empty buffer) or through the ring slot at recvx (full
 * buffer with a waiting sender: the receiver takes the head, the sender's
 * value goes to the tail, the same slot). It sets w->success (false: the
 * channel was closed) and g->param = w, unlocks, and only then readies g.
 *
 * Pins (c->npins, chan_internal.h) keep a channel allocated while a waiter
 * may still touch it. A waiter pins when it enqueues. Who drops the pin:
 *   - a plain (one-record) wait claimed by a partner: the partner, under the
 *     lock (the waiter never touches the channel again; the partner holds a
 *     reference of its own, so this never frees);
 *   - a plain wait whose deadline won: the waiter, after removing its record;
 *   - every record of a select: the selecting goroutine itself, after its
 *     final pass over all its channels.
 *
 * Locks: c->lock (a goro__chan_lock, chan_internal.h) protects every field
 * but refs; it is held only for a few dozen instructions and never across a
 * park (the park's unlock function releases it once the waiter is off its
 * stack). A select holds several, always in address order.
 *
 * Use after release: every operation first checks refs != 0 and panics
 * with "use of released channel" otherwise; freed channels pass through a
 * bounded quarantine so that the check reads a channel, not reused memory
 * (GORODEBUG=chanrelease=1: unbounded). The choice against a generation
 * check and the measured cost are under "Released channels" below.
 *
 * Fast paths: try_send/try_recv decide "would block" without the lock from
 * single-word atomic reads in Go's order (send_would_block,
 * recv_would_block). Nothing here allocates after goro_chan_make (records
 * live on the stack).
 */
#include "chan_internal.h"
#include "../runtime/waitprof.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------ channel lock */

/* The lock's protocol and invariant are in chan_internal.h. */

/* Whether contenders may sleep: MEMBARRIER_CMD_PRIVATE_EXPEDITED works in
   this process. Decided before main (registration is a syscall that may
   wait for an RCU grace period), read by contenders only. */
static _Atomic bool chan_lock_can_sleep;

static long membarrier_cmd(int cmd) {
    int saved_errno = errno;
    long r = syscall(SYS_membarrier, cmd, 0, 0);
    errno = saved_errno;
    return r;
}

__attribute__((constructor)) static void chan_lock_init(void) {
    long cmds = membarrier_cmd(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier_cmd(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        atomic_store_explicit(&chan_lock_can_sleep, true, memory_order_relaxed);
}

/* The heavy half of the asymmetric barrier. False if it cannot be issued
   (a forked child whose registration did not carry over and cannot be
   renewed): the caller must not sleep. */
static bool chan_lock_barrier(void) {
    if (membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
        return true;
    return membarrier_cmd(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
           membarrier_cmd(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
}

static inline bool chan_lock_try(goro__chan_lock *l) {
    uint32_t z = 0;
    return atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_weak_explicit(&l->state, &z, 1, memory_order_acquire,
                                                 memory_order_relaxed);
}

/* Spins on a plain load (no cache-line ping-pong) for about as long as a
   few critical sections take. */
#define CHAN_LOCK_SPINS 128
static bool chan_lock_spin(goro__chan_lock *l) {
    for (int i = 0; i < CHAN_LOCK_SPINS; i++) {
        if (chan_lock_try(l))
            return true;
        goro__cpu_relax();
    }
    return false;
}

void goro__chan_lock_slow(goro__chan_lock *l) {
    if (chan_lock_spin(l))
        return;
    /* The holder is not running (preempted by the kernel): sleep until its
       unlock, following the invariant in chan_internal.h. */
    if (atomic_load_explicit(&chan_lock_can_sleep, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
        if (chan_lock_barrier()) {
            while (!chan_lock_try(l))
                goro__futex_wait(&l->state, 1, -1);
            atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
            return;
        }
        atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
    }
    /* No safe way to sleep: give the CPU away between spins (never a fixed
       nap), so a preempted holder gets to run. */
    while (!chan_lock_spin(l))
        sched_yield();
}

void goro__chan_lock_wake(goro__chan_lock *l) { goro__futex_wake(&l->state, 1); }

bool goro__chan_lock_sleeps(void) {
    return atomic_load_explicit(&chan_lock_can_sleep, memory_order_relaxed);
}

static void chan_unlock_v(void *l) { goro__chan_lock_release(l); }

/* ------------------------------------------------------------ wait queues */

/* q->first and c->qcount are written under the lock with release stores and
   read lock-free with acquire loads by the try fast paths, which need their
   two observations (readiness, then closed) to stay in program order. The
   list publishes `first` that way (util/list.h). */
static inline bool q_empty_unlocked(goro__waitq *q) { return goro__list_peek_empty(q); }

void goro__waitq_enqueue(goro__waitq *q, goro__waiter *w) {
    w->linked = true;
    goro__list_push_back(q, &w->link);
}

void goro__waitq_remove(goro__waitq *q, goro__waiter *w) {
    if (!w->linked)
        return;
    goro__list_remove(q, &w->link);
    w->linked = false;
}

goro__waiter *goro__waitq_dequeue(goro__waitq *q) {
    for (;;) {
        goro__waiter *w = goro__list_entry(goro__list_pop_front(q), goro__waiter, link);
        if (w == NULL)
            return NULL;
        w->linked = false;
        if (GORO__LIKELY(w->claimless || goro__claim(w->g)))
            return w;
        /* Stale: its deadline passed or another case of its select won.
           The owner finds it unlinked and leaves it alone. */
    }
}

/* ------------------------------------------------------------- references */

static _Atomic int64_t chan_live;

int64_t goro__chan_live(void) { return atomic_load_explicit(&chan_live, memory_order_relaxed); }

/* ------------------------------------------------------ released channels
 *
 * A channel whose last reference is gone has refs == 0 for good: nobody may
 * operate on it any more, and every operation's first step is one relaxed
 * load of refs (goro__chan_is_released) that panics with "use of released
 * channel" when it reads 0. For that load to read the channel and not
 * memory malloc gave to someone else, the freed channel goes to a
 * quarantine before free(): the last QUARANTINE_MAX released channels (of
 * at most QUARANTINE_CHAN_MAX bytes each) keep their memory, refs still 0.
 * With GORODEBUG=chanrelease=1 nothing is ever returned to malloc, so every
 * use after release is caught, however late, whatever the channel's size
 * (for tests and debugging: memory grows with every channel made).
 *
 * Why this and not the alternatives:
 *   - parked waiters keeping the channel alive: already the rule (pins, see
 *     chan_internal.h), but it cannot help a goroutine that reaches the
 *     channel only after the release, which is the common mistake (main
 *     releases its reference at the end while goroutines it started
 *     without goro_opts.holds have yet to send);
 *   - a generation check: needs a handle (index + generation) instead of a
 *     pointer in every goro_chan *, an API and ABI change, and one more
 *     indirection on every operation;
 *   - quarantine: one load of a word on a cache line the operation touches
 *     anyway, and a lock-free swap into a ring per channel freed. A use
 *     after the channel left the quarantine (or of a channel too big for
 *     it) is undefined as before (ASan and valgrind report it); a check
 *     racing with the last release is best effort.
 * Measured, before -> after. Instructions (callgrind, one goroutine, 100k
 * iterations of make + release + a buffered send and receive): the check
 * adds 3 instructions to an operation; a channel's make + release costs
 * about 120 more (1,126 -> 1,244 per iteration), two thirds of it in
 * malloc, which now reuses a chunk freed 256 channels ago instead of the
 * one just freed. Time (bench_goro_bench_chan, 2-core VM, GOROMAXPROCS=1):
 * chan_buffered_throughput/1p1c 13.9 -> 14.6 ns per item, chan_make_release
 * 67 -> 60..75 ns per channel, both within the run-to-run noise.
 */
#define QUARANTINE_MAX 256
#define QUARANTINE_CHAN_MAX ((size_t)32 << 10) /* bigger channels are freed at once */

/* The ring: slot next % QUARANTINE_MAX takes the newest channel and gives
   back the one it held, which is freed (lock-free: one fetch_add and one
   exchange per channel freed). At most QUARANTINE_MAX * QUARANTINE_CHAN_MAX
   (8 MiB) is kept, typically a few dozen KiB. */
static struct {
    _Atomic int mode; /* 0 unread, 1 ring, 2 keep all (chanrelease=1) */
    _Atomic size_t next;
    goro_chan *_Atomic ring[QUARANTINE_MAX];
    goro__chan_lock keep_lock; /* mode 2: */
    goro_chan **kept;          /* every released channel, kept reachable */
    size_t nkept, capkept;
} quarantine;

void goro__chan_released_panic(void) { goro_panic("use of released channel"); }

static size_t chan_alloc_size(goro_chan *c) {
    return (size_t)(c->buf - (char *)c) + c->elem_size * c->dataqsiz;
}

static int quarantine_mode(void) {
    int m = atomic_load_explicit(&quarantine.mode, memory_order_relaxed);
    if (GORO__UNLIKELY(m == 0)) {
        /* Racing first readers compute the same answer. */
        const char *d = getenv("GORODEBUG");
        m = d && strstr(d, "chanrelease=1") ? 2 : 1;
        atomic_store_explicit(&quarantine.mode, m, memory_order_relaxed);
    }
    return m;
}

/* Mode 2: remembers c. False when out of memory: then c is freed for real,
   as without the debug mode. */
static bool quarantine_keep(goro_chan *c) {
    bool ok = true;
    goro__chan_lock_acquire(&quarantine.keep_lock);
    if (quarantine.nkept == quarantine.capkept) {
        size_t ncap = quarantine.capkept ? quarantine.capkept * 2 : 256;
        goro_chan **nk = realloc(quarantine.kept, ncap * sizeof *nk);
        if (nk) {
            quarantine.kept = nk;
            quarantine.capkept = ncap;
        } else {
            ok = false;
        }
    }
    if (ok)
        quarantine.kept[quarantine.nkept++] = c;
    goro__chan_lock_release(&quarantine.keep_lock);
    return ok;
}

void goro__chan_free(goro_chan *c) {
    free(c->holders);
    c->holders = NULL;
    atomic_fetch_sub_explicit(&chan_live, 1, memory_order_relaxed);
    int mode = quarantine_mode();
    if (mode == 2 && quarantine_keep(c))
        return;
    if (mode == 2 || chan_alloc_size(c) > QUARANTINE_CHAN_MAX) {
        free(c);
        return;
    }
    size_t slot =
        atomic_fetch_add_explicit(&quarantine.next, 1, memory_order_relaxed) % QUARANTINE_MAX;
    /* acq_rel: whoever frees c later sees everything written to it here. */
    free(atomic_exchange_explicit(&quarantine.ring[slot], c, memory_order_acq_rel));
}

goro_chan *goro_chan_make(size_t elem_size, size_t cap) {
    size_t bufsz, total;
    size_t hdr = (sizeof(struct goro_chan) + 63) & ~(size_t)63;
    if (elem_size >= ((size_t)1 << 16)) {
        /* Go: "makechan: invalid channel element type" (elements are copied
           on every send; send a pointer to anything bigger). */
        *goro__errno_location() = GORO_EINVAL;
        return NULL;
    }
    if (elem_size == 0 || cap == 0)
        bufsz = 0;
    else if (__builtin_mul_overflow(elem_size, cap, &bufsz) || bufsz > (SIZE_MAX >> 2)) {
        *goro__errno_location() = GORO_EINVAL; /* Go: "makechan: size out of range" */
        return NULL;
    }
    total = hdr + bufsz;
    void *mem = NULL;
    if (posix_memalign(&mem, 64, total) != 0) {
        *goro__errno_location() = GORO_ENOMEM;
        return NULL;
    }
    goro_chan *c = mem;
    memset(c, 0, sizeof *c);
    c->elem_size = elem_size;
    c->dataqsiz = cap;
    c->buf = (char *)mem + hdr;
    atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&chan_live, 1, memory_order_relaxed);
    return c;
}

goro_chan *goro_chan_retain(goro_chan *c) {
    if (c) {
        goro__chan_check_live(c);
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    }
    return c;
}

void goro_chan_release(goro_chan *c) {
    if (!c)
        return;
    goro__chan_check_live(c);
    uint32_t old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    if (GORO__LIKELY(old > 1))
        return;
    if (GORO__UNLIKELY(old == 0))
        goro__throw("goro_chan_release: channel released more times than it was referenced");
    /* From here on refs stays 0: every later operation panics (see above). */
    /* Last reference: free now, or let the last waiter to leave do it. */
    goro__chan_lock_acquire(&c->lock);
    c->dead = true;
    bool free_it = c->npins == 0;
    goro__chan_lock_release(&c->lock);
    if (free_it)
        goro__chan_free(c);
}

/* goro_opts.holds: a reference recorded as held by goroutine g. */
void goro__chan_hold(goro_chan *c, goro__g *g) {
    if (!c)
        return;
    goro_chan_retain(c);
    goro__chan_lock_acquire(&c->lock);
    if (c->nheld == c->holders_cap) {
        uint32_t ncap = c->holders_cap ? c->holders_cap * 2 : 4;
        goro__g **nh = realloc(c->holders, ncap * sizeof *nh);
        if (!nh) {
            /* Keep the reference but leave its holder unknown: the leak
               analysis then treats it as reachable, the safe direction. */
            goro__chan_lock_release(&c->lock);
            return;
        }
        c->holders = nh;
        c->holders_cap = ncap;
    }
    c->holders[c->nheld++] = g;
    goro__chan_lock_release(&c->lock);
}

void goro__chan_unhold(goro_chan *c, goro__g *g) {
    if (!c)
        return;
    goro__chan_lock_acquire(&c->lock);
    for (uint32_t i = c->nheld; i-- > 0;) {
        if (c->holders[i] == g) {
            c->holders[i] = c->holders[--c->nheld];
            break;
        }
    }
    goro__chan_lock_release(&c->lock);
    goro_chan_release(c);
}

void goro__chan_upcalls(goro__upcall_table *t) {
    t->chan_hold = goro__chan_hold;
    t->chan_unhold = goro__chan_unhold;
}

size_t goro__chan_refinfo(goro_chan *c, goro__chan_info *info, goro__g **holders, size_t max) {
    goro__chan_lock_acquire(&c->lock);
    info->refs = atomic_load_explicit(&c->refs, memory_order_relaxed);
    info->waiters = c->npins;
    info->held = c->nheld;
    info->closed = atomic_load_explicit(&c->closed, memory_order_relaxed) != 0;
    info->len = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    info->cap = c->dataqsiz;
    size_t n = c->nheld;
    for (size_t i = 0; i < n && i < max; i++)
        holders[i] = c->holders[i];
    goro__chan_lock_release(&c->lock);
    return n;
}

size_t goro__g_wait_chans(goro__g *g, goro_chan **out, size_t max) {
    int r = atomic_load_explicit(&g->waitreason, memory_order_relaxed);
    if (r != GORO__WAIT_CHAN_SEND && r != GORO__WAIT_CHAN_RECV && r != GORO__WAIT_SELECT)
        return 0;
    size_t n = 0;
    goro_chan *prev = NULL;
    /* A select's records are in lock order (sorted by address), so repeats
       of one channel are adjacent. */
    for (goro__waiter *w = g->waiting; w; w = w->waitlink) {
        if (w->c == prev)
            continue;
        prev = w->c;
        if (n < max)
            out[n] = w->c;
        n++;
    }
    return n;
}

/* ---------------------------------------------------------- hand-off parts */

/* The partner's part of waking a claimed, dequeued record. */
static inline goro__g *wake_record(goro_chan *c, goro__waiter *w, bool success) {
    goro__g *g = w->g;
    w->success = success;
    g->param = w;
    if (!w->is_select)
        c->npins--; /* never the last thing keeping c: the partner has a reference */
    return g;
}

/* Go's send(): c has a claimed receiver w (so its buffer is empty). */
goro__g *goro__chan_send_to(goro_chan *c, goro__waiter *w, const void *elem) {
    if (w->elem)
        goro__elem_copy_src(w->elem, elem, c->elem_size);
    return wake_record(c, w, true);
}

/* Go's recv(): c has a claimed sender w (so its buffer, if any, is full). */
goro__g *goro__chan_recv_from(goro_chan *c, goro__waiter *w, void *elem) {
    size_t sz = c->elem_size;
    if (c->dataqsiz == 0) {
        if (elem)
            goro__elem_copy_src(elem, w->elem, sz);
    } else {
        char *qp = c->buf + c->recvx * sz;
        if (elem)
            goro__elem_copy(elem, qp, sz);
        goro__elem_copy_src(qp, w->elem, sz);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    return wake_record(c, w, true);
}

void goro__chan_buf_put(goro_chan *c, const void *elem) {
    goro__elem_copy_src(c->buf + c->sendx * c->elem_size, elem, c->elem_size);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    atomic_store_explicit(&c->qcount, atomic_load_explicit(&c->qcount, memory_order_relaxed) + 1,
                          memory_order_release);
}

void goro__chan_buf_take(goro_chan *c, void *elem) {
    if (elem)
        goro__elem_copy(elem, c->buf + c->recvx * c->elem_size, c->elem_size);
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    atomic_store_explicit(&c->qcount, atomic_load_explicit(&c->qcount, memory_order_relaxed) - 1,
                          memory_order_release);
}

/* ----------------------------------------------------------- blocking help */

static void unlock_nothing(void *unused) { (void)unused; }

void goro__chan_block_forever(int reason) {
    goro__g *g = goro__getg();
    for (;;) {
        /* Nobody can claim this wait: it never ends (the runtime reports a
           deadlock if everything else blocks too). */
        goro__g_prepare_wait(g);
        g->waiting = NULL;
        goro__park(reason, NULL, unlock_nothing, NULL, -1);
    }
}

void goro__chan_sleep(int reason, int64_t deadline) {
    goro__g *g = goro__getg();
    goro__g_prepare_wait(g);
    g->waiting = NULL;
    goro__park(reason, NULL, unlock_nothing, NULL, deadline);
}

int64_t goro__chan_deadline(int64_t ns) {
    int64_t d;
    if (__builtin_add_overflow(goro_nanotime(), ns, &d))
        return INT64_MAX;
    return d;
}

/* Blocks the caller on c (locked) with record w filled in; c->lock is
   released. Returns false when the deadline won (the record is gone and the
   pin dropped). */
static bool chan_wait(goro_chan *c, goro__waitq *q, goro__waiter *w, int reason, int64_t deadline) {
    goro__g *g = w->g;
    goro__g_prepare_wait(g);
    w->waitlink = NULL;
    w->is_select = false;
    w->claimless = deadline < 0;
    w->success = false;
    g->waiting = w;
    goro__waitq_enqueue(q, w);
    c->npins++;
    int64_t t0 = goro__blockprof_begin();
    bool woke = goro__park(reason, c, chan_unlock_v, &c->lock, deadline);
    goro__blockprof_end(t0);
    if (GORO__UNLIKELY(!woke) && deadline >= 0) {
        /* The deadline won the claim: no partner touched w's memory. A
           partner may already have unlinked the stale record. (A claimless
           wait is readied without a claim, which a plain thread's park
           reports as false: only a deadline means "timed out".) */
        goro__chan_lock_acquire(&c->lock);
        goro__waitq_remove(q, w);
        bool free_it = goro__chan_unpin_locked(c);
        goro__chan_lock_release(&c->lock);
        g->waiting = NULL;
        if (free_it)
            goro__chan_free(c);
        return false;
    }
    g->waiting = NULL;
    return true;
}

/* ------------------------------------------------------------------- send */

/* Would a non-blocking send fail? One word per observation, Go's order:
   not closed, then not ready (a closed channel never becomes unready). */
static inline bool send_would_block(goro_chan *c) {
    if (c->dataqsiz == 0)
        return q_empty_unlocked(&c->recvq);
    return atomic_load_explicit(&c->qcount, memory_order_acquire) == c->dataqsiz;
}

/* block: false = try; deadline -1 = forever. Returns 0, GORO_EAGAIN (try
   would block) or GORO_ETIMEDOUT. */
static int chan_send(goro_chan *c, const void *elem, bool block, int64_t deadline, int reason) {
    if (!block && atomic_load_explicit(&c->closed, memory_order_relaxed) == 0 &&
        send_would_block(c))
        return GORO_EAGAIN;

    goro__chan_lock_acquire(&c->lock);
    if (GORO__UNLIKELY(atomic_load_explicit(&c->closed, memory_order_relaxed))) {
        goro__chan_lock_release(&c->lock);
        goro_panic("send on closed channel");
    }
    goro__waiter *r = goro__waitq_dequeue(&c->recvq);
    if (r) {
        goro__g *g = goro__chan_send_to(c, r, elem);
        goro__chan_lock_release(&c->lock);
        goro__ready(g);
        return 0;
    }
    if (atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz) {
        goro__chan_buf_put(c, elem);
        goro__chan_lock_release(&c->lock);
        return 0;
    }
    if (!block) {
        goro__chan_lock_release(&c->lock);
        return GORO_EAGAIN;
    }

    goro__waiter me;
    me.g = goro__getg();
    me.c = c;
    me.elem = (void *)elem;
    me.case_index = 0;
    if (!chan_wait(c, &c->sendq, &me, reason, deadline))
        return GORO_ETIMEDOUT;
    if (GORO__UNLIKELY(!me.success))
        goro_panic("send on closed channel");
    return 0;
}

void goro_chan_send(goro_chan *c, const void *elem) {
    if (GORO__UNLIKELY(!c))
        goro__chan_block_forever(GORO__WAIT_CHAN_SEND_NIL);
    goro__chan_check_live(c);
    chan_send(c, elem, true, -1, GORO__WAIT_CHAN_SEND);
}

int goro_chan_try_send(goro_chan *c, const void *elem) {
    if (!c)
        return GORO_EAGAIN;
    goro__chan_check_live(c);
    return chan_send(c, elem, false, -1, 0);
}

int goro_chan_send_timeout(goro_chan *c, const void *elem, int64_t ns) {
    if (ns == GORO_FOREVER) {
        goro_chan_send(c, elem);
        return 0;
    }
    if (c)
        goro__chan_check_live(c);
    if (ns <= 0) /* an expired timer: default-like, but reported as a timeout */
        return (c && chan_send(c, elem, false, -1, 0) == 0) ? 0 : GORO_ETIMEDOUT;
    int64_t deadline = goro__chan_deadline(ns);
    if (!c) {
        goro__chan_sleep(GORO__WAIT_SELECT, deadline);
        return GORO_ETIMEDOUT;
    }
    return chan_send(c, elem, true, deadline, GORO__WAIT_SELECT);
}

/* ---------------------------------------------------------------- receive */

static inline bool recv_would_block(goro_chan *c) {
    if (c->dataqsiz == 0)
        return q_empty_unlocked(&c->sendq);
    return atomic_load_explicit(&c->qcount, memory_order_acquire) == 0;
}

static inline void elem_zero(goro_chan *c, void *elem) {
    if (elem && c->elem_size)
        memset(elem, 0, c->elem_size);
}

static int chan_recv(goro_chan *c, void *elem, bool *okp, bool block, int64_t deadline,
                     int reason) {
    bool ok = false;
    if (!block && recv_would_block(c)) {
        /* Not ready, then not closed: both held at the first observation
           (a channel never reopens). */
        if (atomic_load_explicit(&c->closed, memory_order_acquire) == 0) {
            if (okp)
                *okp = false;
            return GORO_EAGAIN;
        }
        /* Closed for good; if it is still empty it stays empty. */
        if (recv_would_block(c)) {
            elem_zero(c, elem);
            if (okp)
                *okp = false;
            return 0;
        }
    }

    goro__chan_lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) &&
        atomic_load_explicit(&c->qcount, memory_order_relaxed) == 0) {
        goro__chan_lock_release(&c->lock);
        elem_zero(c, elem);
        goto out;
    }
    goro__waiter *s = goro__waitq_dequeue(&c->sendq);
    if (s) {
        goro__g *g = goro__chan_recv_from(c, s, elem);
        goro__chan_lock_release(&c->lock);
        goro__ready(g);
        ok = true;
        goto out;
    }
    if (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
        goro__chan_buf_take(c, elem);
        goro__chan_lock_release(&c->lock);
        ok = true;
        goto out;
    }
    if (!block) {
        goro__chan_lock_release(&c->lock);
        if (okp)
            *okp = false;
        return GORO_EAGAIN;
    }

    goro__waiter me;
    me.g = goro__getg();
    me.c = c;
    me.elem = c->elem_size ? elem : NULL;
    me.case_index = 0;
    if (!chan_wait(c, &c->recvq, &me, reason, deadline)) {
        if (okp)
            *okp = false;
        return GORO_ETIMEDOUT;
    }
    ok = me.success; /* on close the closer zeroed elem */
out:
    if (okp)
        *okp = ok;
    return 0;
}

bool goro_chan_recv(goro_chan *c, void *elem) {
    if (GORO__UNLIKELY(!c))
        goro__chan_block_forever(GORO__WAIT_CHAN_RECV_NIL);
    goro__chan_check_live(c);
    bool ok;
    chan_recv(c, elem, &ok, true, -1, GORO__WAIT_CHAN_RECV);
    return ok;
}

int goro_chan_try_recv(goro_chan *c, void *elem, bool *ok) {
    if (!c) {
        if (ok)
            *ok = false;
        return GORO_EAGAIN;
    }
    goro__chan_check_live(c);
    return chan_recv(c, elem, ok, false, -1, 0);
}

int goro_chan_recv_timeout(goro_chan *c, void *elem, bool *ok, int64_t ns) {
    if (ns == GORO_FOREVER) {
        bool r = goro_chan_recv(c, elem);
        if (ok)
            *ok = r;
        return 0;
    }
    if (c)
        goro__chan_check_live(c);
    if (ns <= 0) {
        if (c && chan_recv(c, elem, ok, false, -1, 0) == 0)
            return 0;
        if (ok)
            *ok = false;
        return GORO_ETIMEDOUT;
    }
    int64_t deadline = goro__chan_deadline(ns);
    if (!c) {
        goro__chan_sleep(GORO__WAIT_SELECT, deadline);
        if (ok)
            *ok = false;
        return GORO_ETIMEDOUT;
    }
    return chan_recv(c, elem, ok, true, deadline, GORO__WAIT_SELECT);
}

/* ------------------------------------------------------------------ close */

void goro_chan_close(goro_chan *c) {
    if (!c)
        goro_panic("close of nil channel");
    goro__chan_check_live(c);
    goro__chan_lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        goro__chan_lock_release(&c->lock);
        goro_panic("close of closed channel");
    }
    atomic_store_explicit(&c->closed, 1, memory_order_release);

    /* Claim every waiter, then ready them after unlocking: receivers get a
       zero value and ok == false, senders wake to panic. The wake list is
       chained through the dequeued records' links (each record belongs to
       a different goroutine: a select is claimed at most once). */
    goro__list wake = {0};
    goro__waiter *w;
    while ((w = goro__waitq_dequeue(&c->recvq)) != NULL) {
        elem_zero(c, w->elem);
        wake_record(c, w, false);
        goro__list_push_back(&wake, &w->link);
    }
    while ((w = goro__waitq_dequeue(&c->sendq)) != NULL) {
        wake_record(c, w, false);
        goro__list_push_back(&wake, &w->link);
    }
    goro__chan_lock_release(&c->lock);

    /* _SAFE: the next link is read before readying the owner (the record
       lives on that stack). */
    GORO__LIST_FOREACH_SAFE(r, &wake, goro__waiter, link)
    goro__ready(r->g);
}

/* ------------------------------------------------------------ len and cap */

size_t goro_chan_len(goro_chan *c) {
    if (!c)
        return 0;
    goro__chan_check_live(c);
    if (c->dataqsiz == 0)
        return 0;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed);
}

size_t goro_chan_cap(goro_chan *c) {
    if (!c)
        return 0;
    goro__chan_check_live(c);
    return c->dataqsiz;
}
