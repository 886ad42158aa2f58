/*
 * sched.c - the M:N scheduler: Ps, Ms, run queues, stealing, park and ready.
 *
 * Go's model (proc.go). A goroutine (G) runs on an OS thread (M) that holds a
 * processor (P); there are gomaxprocs Ps. Each P has a local run queue and a
 * runnext slot; a global queue (under sched.lock) takes overflow and work
 * readied by plain threads, and is checked every 61 scheduler ticks so it
 * cannot starve. An M that finds no local work steals half of another P's
 * queue. At most a few Ms "spin" looking for work; the rest sleep on a futex.
 *
 * Switching. A goroutine that parks, yields or exits picks the next goroutine
 * from its own P and switches to it directly; only when the P has nothing
 * does it switch to the M's g0 (the thread's native stack), which runs the
 * full search and idles. Whatever must happen after the old goroutine is off
 * its stack (unlock the object it waits on, requeue it, free it) is recorded
 * in m->after and done by the context that resumes next (after_switch).
 *
 * G status transitions (status word, CAS unless noted):
 *   DEAD     -> RUNNABLE  newproc (store; no one else can see a dead record run)
 *   RUNNABLE -> RUNNING   execute; spins while an observer holds SCAN
 *   RUNNING  -> WAITING   after_switch(PARK), store-release, before unlock
 *   RUNNING  -> RUNNABLE  after_switch(YIELD), store
 *   RUNNING  -> DEAD      after_switch(EXIT), store
 *   WAITING  -> RUNNABLE  goro__ready; spins while SCAN
 *   WAITING|RUNNABLE -> +SCAN -> back   observers (goro__g_scan_begin/end)
 * The only way to go from WAITING to RUNNING is through a winner of the wake
 * claim (runtime.h), so a goroutine is never on two run queues.
 *
 * Spinning/parking protocol (no lost wake-ups). Whoever makes work available
 * (runqput, global put, new timer) then calls wakep(): if some P is idle and
 * no M is spinning, it claims nmspinning 0->1 and hands an idle P to an idle
 * (or new) M. A spinning M that finds work decrements nmspinning and, if it
 * was the last spinner, calls wakep() itself. A spinning M that finds nothing
 * releases its P, decrements nmspinning and only then re-checks every run
 * queue once more; together with the seq_cst counter updates this guarantees
 * that either the submitter sees nmspinning == 0 and wakes someone, or the
 * spinner sees the work.
 *
 * Lock order: sched.lock -> (nothing). A timer heap lock may be held while
 * taking sched.lock (callbacks ready goroutines), never the other way round.
 */
#include "sched.h"
#include "upcalls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef GORO__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef GORO__TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORO__HAVE_VALGRIND 1
#endif

struct goro__sched goro__sched = {.lock = GORO__LOCK_INIT, .gfree_lock = GORO__LOCK_INIT};
goro__debug_knobs goro__debug;

static __thread goro__g *tls_g __attribute__((tls_model("initial-exec")));
static __thread goro__m *tls_m __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------ TLS accessors */

/* These never inline and are opaque to interprocedural analysis, so every
   call re-reads the thread pointer: a goroutine that parked on one thread
   may resume on another. */
GORO__NOIPA goro__g *goro__getg_maybe(void) { return tls_g; }
GORO__NOIPA goro__m *goro__getm(void) { return tls_m; }
GORO__NOIPA int *goro__errno_location(void) { return &errno; }
GORO__NOIPA static void set_tls_g(goro__g *g) { tls_g = g; }

goro__g *goro__getg(void) {
    goro__g *g = goro__getg_maybe();
    if (GORO__LIKELY(g != NULL))
        return g;
    return goro__thread_record();
}

/* Fast path for goro_id: one TLS load; the function itself never switches. */
uint64_t goro__current_id_fast(void) {
    goro__g *g = tls_g;
    return g ? g->id : 0;
}

void goro__set_thread_g(goro__g *g) { set_tls_g(g); }

goro__p *goro__getp(void) {
    goro__m *m = goro__getm();
    return m ? m->p : NULL;
}

int goro__m_id(goro__m *m) { return m->id; }
pthread_t goro__m_thread(goro__m *m) { return m->thread; }
pid_t goro__m_tid(goro__m *m) { return m->tid; }

uint32_t goro__fastrand(void) {
    static __thread uint32_t thread_state;
    goro__m *m = goro__getm();
    /* Per-M state lives in the record the M owns; plain threads use TLS. */
    uint32_t *s = m ? (uint32_t *)&m->g0.leak_mark : &thread_state;
    uint32_t x = *s;
    if (x == 0)
        x = (uint32_t)(uintptr_t)s ^ 0x9e3779b9u ^ (uint32_t)goro__nanotime();
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

int64_t goro__nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Coarse clock for wait timestamps: dumps print whole minutes. */
static int64_t coarse_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* -------------------------------------------------- sanitizer fibers */

static inline void fiber_start(goro__g *from, goro__g *to, bool from_dies) {
#ifdef GORO__ASAN
    __sanitizer_start_switch_fiber(from_dies ? NULL : &from->asan_fake_stack, to->asan_bottom,
                                   to->asan_size);
#endif
#ifdef GORO__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
    (void)from_dies;
}

static inline void fiber_finish(goro__g *self) {
#ifdef GORO__ASAN
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, NULL, NULL);
#endif
    (void)self;
}

static void fiber_init_g(goro__g *g) {
#ifdef GORO__ASAN
    g->asan_bottom = g->stack_lo;
    g->asan_size = g->stack_size;
#endif
#ifdef GORO__TSAN
    if (!g->tsan_fiber)
        g->tsan_fiber = __tsan_create_fiber(0);
#endif
    (void)g;
}

/* --------------------------------------------------------- run queues */

/* Makes room for n more entries in the global ring (sched.lock held). It
   grows by doubling and never shrinks: its peak is 8 bytes per goroutine
   that was ever queued globally at once. */
static void globrunq_reserve_locked(uint32_t n) {
    uint32_t size = (uint32_t)atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed);
    if (size + n <= goro__sched.runq_cap)
        return;
    uint32_t cap = goro__sched.runq_cap ? goro__sched.runq_cap : 1024;
    while (cap < size + n)
        cap *= 2;
    goro__g **q = malloc((size_t)cap * sizeof *q);
    if (!q)
        goro__throw("out of memory growing the global run queue");
    for (uint32_t i = 0; i < size; i++)
        q[i] = goro__sched.runq[(goro__sched.runq_first + i) % goro__sched.runq_cap];
    free(goro__sched.runq);
    goro__sched.runq = q;
    goro__sched.runq_cap = cap;
    goro__sched.runq_first = 0;
}

static void globrunq_put_locked(goro__g *g) {
    globrunq_reserve_locked(1);
    uint32_t size = (uint32_t)atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed);
    goro__sched.runq[(goro__sched.runq_first + size) % goro__sched.runq_cap] = g;
    atomic_fetch_add(&goro__sched.runq_size, 1);
}

void goro__runq_put_global(goro__g *g) {
    goro__lock_acquire(&goro__sched.lock);
    globrunq_put_locked(g);
    goro__lock_release(&goro__sched.lock);
}

/* Puts batch[0..n) on the global queue, in order. */
static void globrunq_put_batch(goro__g *const *batch, uint32_t n) {
    goro__lock_acquire(&goro__sched.lock);
    globrunq_reserve_locked(n);
    uint32_t size = (uint32_t)atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        goro__sched.runq[(goro__sched.runq_first + size + i) % goro__sched.runq_cap] = batch[i];
    atomic_fetch_add(&goro__sched.runq_size, (int32_t)n);
    goro__lock_release(&goro__sched.lock);
}

static void runqput(goro__p *p, goro__g *g, bool next);

static goro__g *globrunq_pop_locked(void) {
    goro__g *g = goro__sched.runq[goro__sched.runq_first];
    goro__sched.runq_first = (goro__sched.runq_first + 1) % goro__sched.runq_cap;
    return g;
}

/* Takes a batch from the global queue (sched.lock held): returns one, puts
   the rest on p's local queue. Callers ask for more than one only when p's
   queue is empty, so those puts never spill back here (which would take
   sched.lock again). */
static goro__g *globrunq_get_locked(goro__p *p, int32_t max) {
    int32_t sz = atomic_load(&goro__sched.runq_size);
    if (sz == 0)
        return NULL;
    int32_t procs = atomic_load(&goro__sched.gomaxprocs);
    int32_t n = sz / procs + 1;
    if (n > sz)
        n = sz;
    if (max > 0 && n > max)
        n = max;
    if (n > GORO__RUNQ_SIZE / 2)
        n = GORO__RUNQ_SIZE / 2;
    atomic_fetch_sub(&goro__sched.runq_size, n);
    goro__g *g = globrunq_pop_locked();
    for (int32_t i = 1; i < n; i++)
        runqput(p, globrunq_pop_locked(), false);
    return g;
}

static goro__g *globrunq_get(goro__p *p, int32_t max) {
    if (atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed) == 0)
        return NULL;
    goro__lock_acquire(&goro__sched.lock);
    goro__g *g = globrunq_get_locked(p, max);
    goro__lock_release(&goro__sched.lock);
    return g;
}

/* Slow path of runqput: the local ring is full; move half of it plus g to
   the global queue. Returns false if the ring changed under us (retry). */
static bool runqput_slow(goro__p *p, goro__g *g, uint32_t h, uint32_t t) {
    goro__g *batch[GORO__RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&p->runq[(h + i) % GORO__RUNQ_SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&p->runq_head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = g;
    globrunq_put_batch(batch, n + 1);
    return true;
}

/* Owner only. next: put g in runnext (it runs next), kicking the old one. */
static void runqput(goro__p *p, goro__g *g, bool next) {
    if (next) {
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        if (!g)
            return;
    }
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (t - h < GORO__RUNQ_SIZE) {
            atomic_store_explicit(&p->runq[t % GORO__RUNQ_SIZE], g, memory_order_relaxed);
            atomic_store_explicit(&p->runq_tail, t + 1, memory_order_release);
            return;
        }
        if (runqput_slow(p, g, h, t))
            return;
    }
}

/* Owner only. */
static goro__g *runqget(goro__p *p) {
    goro__g *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong_explicit(&p->runnext, &next, NULL,
                                                        memory_order_acquire, memory_order_relaxed))
        return next;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        goro__g *g = atomic_load_explicit(&p->runq[h % GORO__RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->runq_head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return g;
    }
}

bool goro__runq_nearly_full(void) {
    goro__m *m = goro__getm();
    goro__p *p = m ? m->p : NULL;
    if (!p)
        return false;
    uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
    return t - h >= GORO__RUNQ_SIZE - 1;
}

static bool runq_empty(goro__p *p) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_acquire);
        goro__g *next = atomic_load_explicit(&p->runnext, memory_order_acquire);
        if (t == atomic_load_explicit(&p->runq_tail, memory_order_acquire))
            return h == t && next == NULL;
    }
}

/* Grabs half of victim's queue into p's ring starting at slot `at`. */
static uint32_t runqgrab(goro__p *victim, goro__p *p, uint32_t at, bool steal_next) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&victim->runq_tail, memory_order_acquire);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (steal_next) {
                goro__g *next = atomic_load_explicit(&victim->runnext, memory_order_acquire);
                if (next && atomic_compare_exchange_strong_explicit(&victim->runnext, &next, NULL,
                                                                    memory_order_acq_rel,
                                                                    memory_order_relaxed)) {
                    atomic_store_explicit(&p->runq[at % GORO__RUNQ_SIZE], next,
                                          memory_order_relaxed);
                    return 1;
                }
            }
            return 0;
        }
        if (n > GORO__RUNQ_SIZE / 2)
            continue; /* read an inconsistent h/t pair */
        for (uint32_t i = 0; i < n; i++) {
            goro__g *g = atomic_load_explicit(&victim->runq[(h + i) % GORO__RUNQ_SIZE],
                                              memory_order_relaxed);
            atomic_store_explicit(&p->runq[(at + i) % GORO__RUNQ_SIZE], g, memory_order_relaxed);
        }
        if (atomic_compare_exchange_strong_explicit(&victim->runq_head, &h, h + n,
                                                    memory_order_acq_rel, memory_order_relaxed))
            return n;
    }
}

static goro__g *runqsteal(goro__p *p, goro__p *victim, bool steal_next) {
    uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_relaxed);
    uint32_t n = runqgrab(victim, p, t, steal_next);
    if (n == 0)
        return NULL;
    n--;
    goro__g *g = atomic_load_explicit(&p->runq[(t + n) % GORO__RUNQ_SIZE], memory_order_relaxed);
    if (n > 0)
        atomic_store_explicit(&p->runq_tail, t + n, memory_order_release);
    return g;
}

/* ------------------------------------------------------ Ps and Ms */

static void pidleput_locked(goro__p *p) {
    p->status = GORO__P_IDLE;
    __atomic_store_n(&p->m, NULL, __ATOMIC_RELAXED); /* sysmon reads it (watch_hogs) */
    p->link = goro__sched.pidle;
    goro__sched.pidle = p;
    atomic_fetch_add(&goro__sched.npidle, 1);
}

static goro__p *pidleget_locked(void) {
    goro__p *p = goro__sched.pidle;
    if (p) {
        goro__sched.pidle = p->link;
        atomic_fetch_sub(&goro__sched.npidle, 1);
        p->status = GORO__P_RUNNING;
        /* A P goes to work: sysmon watches for hogs again if it slept with
           every P idle (sysmon.c; the npidle decrement above and sysmon's
           store of 0 before it re-reads npidle are both seq_cst). */
        if (atomic_load(&goro__sched.sysmon_wake) == 0 &&
            atomic_load_explicit(&goro__sched.sysmon_started, memory_order_relaxed)) {
            atomic_store(&goro__sched.sysmon_wake, 1);
            goro__futex_wake(&goro__sched.sysmon_wake, 1);
        }
    }
    return p;
}

static void acquirep(goro__m *m, goro__p *p) {
    m->p = p;
    __atomic_store_n(&p->m, m, __ATOMIC_RELEASE); /* m->tid before it, for sysmon */
    p->status = GORO__P_RUNNING;
}

static goro__p *newp(int id) {
    goro__p *p = aligned_alloc(64, sizeof(goro__p));
    if (!p)
        goro__throw("out of memory allocating a P");
    memset(p, 0, sizeof *p);
    p->id = id;
    goro__timers_init(&p->timers);
    p->timers.lock = (goro__lock)GORO__LOCK_INIT;
    return p;
}

/* Sets the number of Ps (sched.lock not held). Returns the previous value. */
static int32_t procresize(int32_t n) {
    goro__lock_acquire(&goro__sched.lock);
    int32_t old = atomic_load(&goro__sched.gomaxprocs);
    for (int32_t i = goro__sched.nps; i < n; i++) {
        goro__sched.allp[i] = newp(i);
        goro__sched.allp[i]->status = GORO__P_DEAD;
        __atomic_store_n(&goro__sched.nps, i + 1, __ATOMIC_RELEASE);
    }
    atomic_store(&goro__sched.gomaxprocs, n);
    /* Revive Ps below n that were retired; drop idle ones at or above n. */
    for (int32_t i = 0; i < n; i++)
        if (goro__sched.allp[i]->status == GORO__P_DEAD)
            pidleput_locked(goro__sched.allp[i]);
    goro__p **pp = &goro__sched.pidle;
    goro__p *dropped = NULL;
    while (*pp) {
        goro__p *p = *pp;
        if (p->id >= n) {
            *pp = p->link;
            atomic_fetch_sub(&goro__sched.npidle, 1);
            p->status = GORO__P_DEAD;
            p->link = dropped;
            dropped = p;
        } else {
            pp = &p->link;
        }
    }
    goro__lock_release(&goro__sched.lock);
    /* Idle Ps have empty run queues but may hold timers and free records. */
    for (goro__p *p = dropped; p; p = p->link)
        goro__timers_move(&p->timers, &goro__sched.allp[0]->timers);
    if (n > old)
        goro__wakep();
    return old;
}

static void *mstart(void *arg);

static goro__m *newm(goro__p *p, bool spinning) {
    goro__m *m = calloc(1, sizeof *m);
    if (!m)
        goro__throw("out of memory allocating an M");
    m->nextp = p;
    m->spinning = spinning;
    m->g0.is_g0 = true;
    m->g0.status = GORO__G_RUNNING;
    goro__lock_acquire(&goro__sched.lock);
    m->id = goro__sched.mcount++;
    m->alllink = goro__sched.allm;
    goro__sched.allm = m;
    goro__lock_release(&goro__sched.lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1 << 20); /* virtual; pages are committed on use */
    /* Scheduler threads must not take signals meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGQUIT);
    /* Raised by the code running here (goroutine 1 included) at itself:
       a debugger's trap, abort(3), a seccomp trap. */
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGSYS);
    sigdelset(&all, SIGURG);
    sigdelset(&all, SIGPROF);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&m->thread, &attr, mstart, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0)
        goro__throw("cannot create a scheduler thread (pthread_create failed)");
    return m;
}

/* sched.lock held. */
static goro__m *mget_locked(void) {
    goro__m *m = goro__sched.midle;
    if (m) {
        goro__sched.midle = m->link;
        goro__sched.nmidle--;
    }
    return m;
}

static void notewakeup(goro__m *m) {
    atomic_store(&m->park, 1);
    goro__futex_wake(&m->park, 1);
}

void goro__wakep(void) {
    if (atomic_load_explicit(&goro__sched.npidle, memory_order_seq_cst) == 0)
        return;
    int32_t z = 0;
    if (atomic_load(&goro__sched.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&goro__sched.nmspinning, &z, 1))
        return;
    goro__lock_acquire(&goro__sched.lock);
    goro__p *p = pidleget_locked();
    if (!p) {
        goro__lock_release(&goro__sched.lock);
        atomic_fetch_sub(&goro__sched.nmspinning, 1);
        return;
    }
    goro__m *m = mget_locked();
    if (m) {
        /* Hand over and wake under the lock: a wake-up that arrived after the
           M had already woken by itself (timeout) and gone back to sleep
           would find it on the idle list again without taking it off. */
        m->nextp = p;
        m->spinning = true;
        notewakeup(m);
    }
    goro__lock_release(&goro__sched.lock);
    if (!m) {
        int saved_errno = errno; /* thread creation is no business of the caller's errno */
        newm(p, true);
        errno = saved_errno;
    }
}

/* A new earliest timer: wake idle Ms that sleep past it (they re-check). */
void goro__timer_after_add(int64_t when) {
    (void)when;
    goro__lock_acquire(&goro__sched.lock);
    goro__m *m = mget_locked();
    bool any = m != NULL;
    if (any)
        notewakeup(m);
    goro__lock_release(&goro__sched.lock);
    if (atomic_load(&goro__sched.polling))
        goro__upcalls.netpoll_break();
    if (!any)
        goro__wakep();
}

static void reset_spinning(goro__m *m) {
    m->spinning = false;
    if (atomic_fetch_sub(&goro__sched.nmspinning, 1) == 1)
        goro__wakep();
}

/* ------------------------------------------------------- switching */

static void after_switch(goro__m *m);
static void park_timeout(void *arg, uint64_t seq);

/* Switches from the running context `from` to `to` on this M. Returns when
   something switches back to `from` (possibly on another M). */
static void switch_to(goro__m *m, goro__g *from, goro__g *to, bool from_dies) {
    m->curg = to;
    goro__p *p = m->p;
    if (p) {
        atomic_store_explicit(&p->curg, to, memory_order_relaxed);
        atomic_store_explicit(&p->switchtick,
                              atomic_load_explicit(&p->switchtick, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    if (!to->is_g0)
        atomic_store_explicit(&to->m, m, memory_order_relaxed);
    set_tls_g(to);
    fiber_start(from, to, from_dies);
    goro__ctx_switch(&from->ctx, &to->ctx);
    fiber_finish(from);
    after_switch(goro__getm());
}

/* from -> to, waiting while an observer holds the SCAN bit; any other
   status is a runtime bug (`what` names it). */
static void cas_status(goro__g *g, uint32_t from, uint32_t to, const char *what) {
    for (;;) {
        uint32_t s = from;
        if (atomic_compare_exchange_weak_explicit(&g->status, &s, to, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return;
        if (s != from && s != (from | GORO__G_SCAN))
            goro__throw(what);
        goro__cpu_relax();
    }
}

static void cas_to_running(goro__g *g) {
    cas_status(g, GORO__G_RUNNABLE, GORO__G_RUNNING, "execute: goroutine not runnable");
}

static void execute(goro__m *m, goro__g *from, goro__g *g, bool from_dies) {
    cas_to_running(g);
    switch_to(m, from, g, from_dies);
}

static goro__g *findrunnable(goro__m *m);

/* Next goroutine from this M's own P, without blocking; NULL if none. */
static goro__g *next_local(goro__m *m) {
    goro__p *p = m->p;
    if (!p || p->id >= atomic_load_explicit(&goro__sched.gomaxprocs, memory_order_relaxed))
        return NULL;
    p->schedtick++;
    if (atomic_load_explicit(&p->timers.next, memory_order_relaxed) != INT64_MAX)
        goro__timers_run(&p->timers, goro__nanotime());
    if (p->schedtick % 61 == 0) {
        goro__g *g = globrunq_get(p, 1);
        if (g)
            return g;
    }
    return runqget(p);
}

/* The current goroutine gives up its M (m->after says why). */
static void schedule_away(goro__m *m, goro__g *self, bool dies) {
    goro__g *next = next_local(m);
    if (next)
        execute(m, self, next, dies);
    else
        switch_to(m, self, &m->g0, dies);
}

/* Goroutine 1 called goro_exit and the last other goroutine has just
   ended: Go's verdict on a Goexit in main (g.c has the plain-thread twin). */
static void main_goexit_last(void) {
    static const char msg[] =
        "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n";
    goro__write_all(2, msg, sizeof msg - 1);
    _exit(2);
}

static void after_switch(goro__m *m) {
    int a = m->after;
    if (a == GORO__AFTER_NONE)
        return;
    m->after = GORO__AFTER_NONE;
    goro__g *prev = m->after_g;
    switch (a) {
    case GORO__AFTER_PARK: {
        void (*unlock)(void *) = m->after_unlock;
        void *lock = m->after_lock;
        int64_t deadline = prev->park_deadline;
        uint64_t gen = atomic_load_explicit(&prev->wake, memory_order_relaxed) >> 2;
        atomic_store_explicit(&prev->status, GORO__G_WAITING, memory_order_release);
        if (deadline >= 0) {
            goro__timer_start(&prev->timer, deadline, park_timeout, prev, gen);
        }
        if (unlock)
            unlock(lock);
        break;
    }
    case GORO__AFTER_YIELD:
        atomic_store_explicit(&prev->status, GORO__G_RUNNABLE, memory_order_release);
        if (m->p && !goro__debug.force_migrate)
            runqput(m->p, prev, false);
        else {
            goro__runq_put_global(prev);
            goro__wakep();
        }
        break;
    case GORO__AFTER_EXIT: {
        /* The goroutine leaves goro_count() only now, off its stack and
           DEAD, so a count that reads n means a dump taken after it lists
           no goroutine that is still on its way out. */
        bool counted = !prev->system;
        atomic_store_explicit(&prev->status, GORO__G_DEAD, memory_order_release);
        if (counted)
            goro__live_add(-1);
        if (!prev->main_stack)
            goro__stack_free(prev, m->p);
        if (counted && atomic_load_explicit(&goro__main_goexited, memory_order_relaxed) &&
            goro__live_count() <= 0 && goro__main_goroutine()->main_stack)
            main_goexit_last();
        break;
    }
    }
}

/* --------------------------------------------------- park and ready */

void goro__g_prepare_wait(goro__g *g) {
    uint64_t gen = (atomic_load_explicit(&g->wake, memory_order_relaxed) >> 2) + 1;
    atomic_store_explicit(&g->wake, gen << 2, memory_order_release);
}

bool goro__claim(goro__g *g) {
    uint64_t v = atomic_load_explicit(&g->wake, memory_order_acquire);
    if (v & 3)
        return false;
    return atomic_compare_exchange_strong_explicit(&g->wake, &v, v | 1, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

static void park_timeout(void *arg, uint64_t seq) {
    goro__g *g = arg;
    uint64_t v = seq << 2;
    if (atomic_compare_exchange_strong_explicit(&g->wake, &v, v | 2, memory_order_acq_rel,
                                                memory_order_relaxed))
        goro__ready(g);
}

static bool thread_park(goro__g *g, int reason, void *waitobj, void (*unlock)(void *), void *lock,
                        int64_t deadline);
enum { THREAD_BLOCKED = 1, THREAD_TIMED = 2 };

bool goro__park(int reason, void *waitobj, void (*unlock)(void *), void *lock, int64_t deadline) {
    goro__g *g = goro__getg();
    if (g->is_thread)
        return thread_park(g, reason, waitobj, unlock, lock, deadline);
    int saved_errno = *goro__errno_location();
    atomic_store_explicit(&g->waitreason, (uint8_t)reason, memory_order_relaxed);
    g->waitobj = waitobj;
    atomic_store_explicit(&g->waitsince, coarse_now(), memory_order_relaxed);
    g->park_deadline = deadline;
    goro__m *m = goro__getm();
    m->after = GORO__AFTER_PARK;
    m->after_g = g;
    m->after_unlock = unlock;
    m->after_lock = lock;
    schedule_away(m, g, false);
    /* Resumed, maybe on another thread. */
    /* 1: a waker claimed us; 2: the deadline did (its timer already ran);
       0: readied without a claim. Unless the timer fired, it must leave the
       heap before this record can arm it again. */
    uint64_t how = atomic_load_explicit(&g->wake, memory_order_acquire) & 3;
    bool woke = how != 2;
    if (deadline >= 0 && woke)
        goro__timer_stop(&g->timer);
    atomic_store_explicit(&g->waitsince, 0, memory_order_relaxed);
    g->waitobj = NULL;
    *goro__errno_location() = saved_errno;
    return woke;
}

void goro__ready(goro__g *g) {
    if (g->is_thread) {
        /* Whoever takes the futex word from non-zero to 0 also takes the
           thread off the blocked counts, so the deadlock check never counts
           a thread that is already awake. */
        goro__thread_wake_begin();
        uint32_t was = atomic_exchange_explicit(&g->futex, 0, memory_order_acq_rel);
        if (was == THREAD_BLOCKED)
            atomic_fetch_sub(&goro__sched.nthreads_blocked, 1);
        else if (was == THREAD_TIMED)
            atomic_fetch_sub(&goro__sched.nthreads_timed, 1);
        goro__thread_wake_end();
        goro__futex_wake(&g->futex, 1);
        return;
    }
    cas_status(g, GORO__G_WAITING, GORO__G_RUNNABLE, "goro__ready: goroutine is not waiting");
    goro__m *m = goro__getm();
    if (m && m->p && !goro__debug.force_migrate)
        runqput(m->p, g, true);
    else
        goro__runq_put_global(g);
    goro__wakep();
}

/* Plain threads block on a futex in their own record. g->futex is
   THREAD_BLOCKED or THREAD_TIMED while the thread sleeps (and is counted in
   nthreads_blocked or nthreads_timed), 0 once someone woke it. */
static bool thread_park(goro__g *g, int reason, void *waitobj, void (*unlock)(void *), void *lock,
                        int64_t deadline) {
    int saved_errno = *goro__errno_location();
    uint32_t old_status = atomic_load(&g->status);
    bool timed = deadline >= 0;
    uint32_t mode = timed ? THREAD_TIMED : THREAD_BLOCKED;
    atomic_store_explicit(&g->waitreason, (uint8_t)reason, memory_order_relaxed);
    g->waitobj = waitobj;
    atomic_store_explicit(&g->waitsince, coarse_now(), memory_order_relaxed);
    if (g->id != 1)
        atomic_fetch_add(&goro__sched.nthreads_shown, 1);
    /* Counted before the word is published: a waker may decrement at once. */
    atomic_fetch_add(timed ? &goro__sched.nthreads_timed : &goro__sched.nthreads_blocked, 1);
    atomic_store_explicit(&g->futex, mode, memory_order_release);
    atomic_store_explicit(&g->status, GORO__G_WAITING, memory_order_release);
    if (unlock)
        unlock(lock);
    if (!timed) {
        goro__lock_acquire(&goro__sched.lock);
        goro__checkdead();
        goro__lock_release(&goro__sched.lock);
    }
    for (;;) {
        uint32_t f = atomic_load_explicit(&g->futex, memory_order_acquire);
        if (f == 0)
            break;
        if (f == THREAD_TIMED) {
            int64_t rem = deadline - goro__nanotime();
            if (rem <= 0) {
                uint64_t v = atomic_load(&g->wake);
                if ((v & 3) == 0 && atomic_compare_exchange_strong(&g->wake, &v, v | 2)) {
                    /* The deadline won the claim; nobody will ready us. */
                    if (atomic_exchange(&g->futex, 0) == THREAD_TIMED)
                        atomic_fetch_sub(&goro__sched.nthreads_timed, 1);
                    break;
                }
                if ((atomic_load(&g->wake) & 3) != 1) {
                    /* Not a claimed wait (no prepare_wait): just time out. */
                    if (atomic_exchange(&g->futex, 0) == THREAD_TIMED)
                        atomic_fetch_sub(&goro__sched.nthreads_timed, 1);
                    break;
                }
                rem = -1; /* a waker won: its ready is on the way */
            }
            goro__futex_wait(&g->futex, f, rem);
        } else {
            goro__futex_wait(&g->futex, f, -1);
        }
    }
    atomic_store_explicit(&g->status, old_status, memory_order_release);
    if (g->id != 1)
        atomic_fetch_sub(&goro__sched.nthreads_shown, 1);
    atomic_store_explicit(&g->waitsince, 0, memory_order_relaxed);
    g->waitobj = NULL;
    *goro__errno_location() = saved_errno;
    return (atomic_load_explicit(&g->wake, memory_order_acquire) & 3) == 1;
}

/* ------------------------------------------------ yield, exit */

void goro__yield(void) {
    goro__g *g = goro__getg();
    if (g->is_thread) {
        sched_yield();
        return;
    }
    goro__m *m = goro__getm();
    goro__p *p = m->p;
    int saved_errno = *goro__errno_location();
    /* Nothing else to run here: stay. Every 61st time go round anyway, so an
       idle P never leaves the other Ps' queues and the global queue waiting. */
    if (p && (++p->schedtick % 61) != 0 && runq_empty(p) &&
        atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed) == 0 &&
        !goro__debug.force_migrate &&
        atomic_load_explicit(&p->timers.next, memory_order_relaxed) == INT64_MAX)
        return;
    m->after = GORO__AFTER_YIELD;
    m->after_g = g;
    schedule_away(m, g, false);
    *goro__errno_location() = saved_errno;
}

void goro__finish_exit(goro__g *g) {
    goro__stack_check(g);
    goro__m *m = goro__getm();
    m->after = GORO__AFTER_EXIT;
    m->after_g = g;
    schedule_away(m, g, true);
    goro__throw("a dead goroutine was resumed");
}

/* First code of every goroutine, on its own stack. */
static void g_entry(void *arg) {
    goro__g *g = arg;
#ifdef GORO__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    after_switch(goro__getm());
    goro__g_run(g);
}

/* The scheduler's half of goroutine creation (goro__newproc in g.c fills
   the record): the sanitizers' fiber, the first frame (g_entry on the
   goroutine's own stack), then runnable on the current P (runnext), or
   globally. */
void goro__g_start(goro__g *g) {
    fiber_init_g(g);
    goro__ctx_make(&g->ctx, g->stack_hi, g_entry, g);
    atomic_store_explicit(&g->status, GORO__G_RUNNABLE, memory_order_release);
    goro__m *m = goro__getm();
    if (m && m->p && !goro__debug.force_migrate)
        runqput(m->p, g, true);
    else
        goro__runq_put_global(g);
    goro__wakep();
}

/* ------------------------------------------------------ the M loop */

static void retire_p(goro__m *m) {
    goro__p *p = m->p;
    goro__g *g;
    while ((g = runqget(p)) != NULL)
        goro__runq_put_global(g);
    goro__timers_move(&p->timers, &goro__sched.allp[0]->timers);
    while (p->gfree) {
        goro__g *x = p->gfree;
        p->gfree = x->freelink;
        p->ngfree--;
        goro__stack_free(x, NULL);
    }
    goro__lock_acquire(&goro__sched.lock);
    /* procresize may have grown back past this P meanwhile. */
    if (p->id < atomic_load(&goro__sched.gomaxprocs))
        pidleput_locked(p);
    else
        p->status = GORO__P_DEAD;
    goro__lock_release(&goro__sched.lock);
    m->p = NULL;
    /* An M without a P is not spinning; drop the count first, or wakep would
       count on us to find the work we just moved. */
    if (m->spinning) {
        m->spinning = false;
        atomic_fetch_sub(&goro__sched.nmspinning, 1);
    }
    /* The goroutines it had now wait on the global queue: get someone on them. */
    goro__wakep();
}

static goro__g *steal_work(goro__m *m) {
    int32_t n = atomic_load(&goro__sched.gomaxprocs);
    int64_t now = goro__nanotime();
    for (int tries = 0; tries < 4; tries++) {
        uint32_t start = goro__fastrand() % (uint32_t)n;
        for (int32_t i = 0; i < n; i++) {
            goro__p *v = goro__sched.allp[(start + (uint32_t)i) % (uint32_t)n];
            if (v == m->p)
                continue;
            if (atomic_load_explicit(&v->timers.next, memory_order_relaxed) <= now) {
                goro__timers_run(&v->timers, now);
                goro__g *g = runqget(m->p);
                if (g)
                    return g;
            }
            /* A running P is about to run its runnext goroutine itself
               (a partner it just readied): leave it alone here; only an idle
               P's runnext is fair game. spin_for_work takes it later if it
               is still waiting by then (Go waits ~3us for the same reason). */
            goro__g *g = runqsteal(m->p, v, tries == 3 && v->status != GORO__P_RUNNING);
            if (g)
                return g;
        }
    }
    return NULL;
}

/*
 * The poller's goroutines (Go's findrunnable + injectglist). netpoll_poll
 * hands back the goroutines whose waits it won (goro__glist: claimed, still
 * WAITING, on no queue); the M that polled runs them itself:
 *
 *   m holds a P: the first is returned, to run now; the rest go on the tail
 *     of p's local queue, in order (runqput spills half to the global queue
 *     if it fills), and if any were queued, one wakep(): an idle P's
 *     spinning M steals what this one will not run soon, and the spinning
 *     protocol cascades from there (goro__ready per goroutine would put
 *     each in runnext, reversing their order, with one wakep() each).
 *   m holds no P (the idle loop's blocking poll): it takes an idle P and
 *     goes on as above; if other Ps are still idle it also wakes one idle
 *     M (or starts one), without a P, to take over the poller. If no P is
 *     idle, all go on the global queue in the same sched.lock section that
 *     found none, then wakep(): every P is owned, and an M gives its P back
 *     only after looking at the global queue under that lock (findrunnable),
 *     or calls wakep() after listing it (retire_p, goro__retake,
 *     procresize), so they are not stranded.
 *
 * Each goroutine goes WAITING -> RUNNABLE before it is queued, outside
 * sched.lock (cas_status waits out an observer's SCAN bit). Until then it
 * is on no queue and nobody else may ready it (its claim is won), but the
 * M holding the list is awake and not on the idle list, and the goroutine
 * is still counted in nexternal (its I/O wait), so the deadlock check
 * (deadlock.c) cannot pass meanwhile.
 *
 * Returns the goroutine for m to run (m->p is then set), or NULL: the list
 * was empty, or they were queued globally (m still has no P), or
 * goro__debug.force_migrate sent them all through goro__ready.
 */
static goro__g *netpoll_inject(goro__m *m, goro__glist *l) {
    if (l->n == 0)
        return NULL;
    goro__g *g;
    if (goro__debug.force_migrate) {
        while ((g = goro__glist_pop(l)) != NULL)
            goro__ready(g);
        return NULL;
    }
    for (g = l->head; g; g = g->readylink)
        cas_status(g, GORO__G_WAITING, GORO__G_RUNNABLE, "netpoll: goroutine is not waiting");
    if (!m->p) {
        goro__lock_acquire(&goro__sched.lock);
        goro__p *np = pidleget_locked();
        if (!np) {
            globrunq_reserve_locked((uint32_t)l->n);
            while ((g = goro__glist_pop(l)) != NULL)
                globrunq_put_locked(g);
            goro__lock_release(&goro__sched.lock);
            goro__wakep();
            return NULL;
        }
        /* Ps are still idle: wake an idle M, without a P, to poll in our
           place (it finds the poller free and blocks in it). Otherwise, while
           we run what we found, nobody would watch the descriptors, and an
           event could wait for a P that is idle (Go's sysmon polls every
           10 ms for this; goro's does not). Never with one P. */
        bool need_poller = false;
        if (atomic_load(&goro__sched.npidle) > 0 && goro__upcalls.netpoll_waiters() > 0) {
            goro__m *pm = mget_locked();
            if (pm)
                notewakeup(pm);
            else
                need_poller = true;
        }
        goro__lock_release(&goro__sched.lock);
        acquirep(m, np);
        if (need_poller) {
            int saved_errno = errno;
            newm(NULL, false); /* starts in findrunnable with no P: polls */
            errno = saved_errno;
        }
    }
    goro__g *first = goro__glist_pop(l);
    if (l->n > 0) {
        while ((g = goro__glist_pop(l)) != NULL)
            runqput(m->p, g, false);
        goro__wakep();
    }
    return first;
}

/* Polls without blocking (if anything waits on a descriptor) and returns a
   goroutine to run on m's P, the others it found queued (netpoll_inject). */
static goro__g *netpoll_nonblock(goro__m *m) {
    if (goro__upcalls.netpoll_waiters() == 0)
        return NULL;
    goro__glist ready = {NULL, NULL, 0};
    goro__upcalls.netpoll_poll(0, &ready);
    return netpoll_inject(m, &ready);
}

/* A spinning M that found nothing waits a little before giving up its P:
   work readied moments later (a plain thread spawning in a loop, a partner
   about to send) is then picked up without a futex sleep and wake-up, which
   cost several microseconds each. */
#define SPIN_NS 20000
static goro__g *spin_for_work(goro__m *m) {
    int64_t until = goro__nanotime() + SPIN_NS;
    int32_t n = atomic_load(&goro__sched.gomaxprocs);
    uint32_t ticks[GORO__MAXPROCS];
    for (int32_t i = 0; i < n; i++)
        ticks[i] = atomic_load_explicit(&goro__sched.allp[i]->switchtick, memory_order_relaxed);
    do {
        for (int i = 0; i < 64; i++) {
            goro__cpu_relax();
        }
        if (atomic_load_explicit(&goro__sched.runq_size, memory_order_relaxed) > 0) {
            goro__g *g = globrunq_get(m->p, 0);
            if (g)
                return g;
        }
        goro__g *g = netpoll_nonblock(m);
        if (g)
            return g;
        for (int32_t i = 0; i < n; i++) {
            goro__p *v = goro__sched.allp[i];
            if (v != m->p && !runq_empty(v)) {
                goro__g *g = runqsteal(m->p, v, false);
                if (g)
                    return g;
            }
        }
    } while (goro__nanotime() < until);
    /* Still nothing. A runnext goroutine is stuck only if its P has run
       one goroutine all this time (no switch since we started spinning):
       take it then. A P that keeps switching will run it itself in a
       moment, on the CPU whose cache holds what the pair shares (a
       producer and a consumer taking turns on one buffered channel run
       3-4x faster together than split across CPUs). */
    for (int32_t i = 0; i < n; i++) {
        goro__p *v = goro__sched.allp[i];
        if (v != m->p && atomic_load_explicit(&v->switchtick, memory_order_relaxed) == ticks[i]) {
            goro__g *g = runqsteal(m->p, v, true);
            if (g)
                return g;
        }
    }
    return NULL;
}

static goro__g *findrunnable(goro__m *m) {
top:
    if (m->p && m->p->id >= atomic_load(&goro__sched.gomaxprocs))
        retire_p(m);
    if (m->p) {
        goro__p *p = m->p;
        if (atomic_load_explicit(&p->timers.next, memory_order_relaxed) != INT64_MAX)
            goro__timers_run(&p->timers, goro__nanotime());
        goro__g *g = runqget(p);
        if (!g)
            g = globrunq_get(p, 0);
        if (!g)
            g = netpoll_nonblock(m);
        if (!g) {
            int32_t procs = atomic_load(&goro__sched.gomaxprocs);
            if (!m->spinning && 2 * atomic_load(&goro__sched.nmspinning) <
                                    procs - atomic_load(&goro__sched.npidle)) {
                m->spinning = true;
                atomic_fetch_add(&goro__sched.nmspinning, 1);
            }
            if (m->spinning)
                g = steal_work(m);
            /* Busy-waiting for work only pays when another CPU can produce
               it: on one CPU it takes the CPU from the thread that would
               (a plain thread pinned beside us, as under taskset -c 0). */
            if (!g && m->spinning && goro__sched.ncpu > 1)
                g = spin_for_work(m);
        }
        if (g) {
            if (m->spinning)
                reset_spinning(m);
            return g;
        }
        /* Nothing: give the P back. */
        goro__lock_acquire(&goro__sched.lock);
        g = globrunq_get_locked(p, 0);
        if (g) {
            goro__lock_release(&goro__sched.lock);
            if (m->spinning)
                reset_spinning(m);
            return g;
        }
        pidleput_locked(p);
        m->p = NULL;
        goro__lock_release(&goro__sched.lock);
        if (m->spinning) {
            m->spinning = false;
            atomic_fetch_sub(&goro__sched.nmspinning, 1);
            /* Re-check after dropping the spinning count (see the protocol). */
            int32_t procs = atomic_load(&goro__sched.gomaxprocs);
            for (int32_t i = 0; i < procs; i++) {
                if (!runq_empty(goro__sched.allp[i]) || atomic_load(&goro__sched.runq_size) > 0) {
                    goro__lock_acquire(&goro__sched.lock);
                    goro__p *np = pidleget_locked();
                    goro__lock_release(&goro__sched.lock);
                    if (np) {
                        acquirep(m, np);
                        m->spinning = true;
                        atomic_fetch_add(&goro__sched.nmspinning, 1);
                        goto top;
                    }
                    break;
                }
            }
        }
    }
    /* Sleep until woken with a P, or until the earliest timer. */
    for (;;) {
        goro__lock_acquire(&goro__sched.lock);
        int64_t next = goro__timers_earliest();
        atomic_store(&m->park, 0);
        m->link = goro__sched.midle;
        goro__sched.midle = m;
        goro__sched.nmidle++;
        if (next == INT64_MAX)
            goro__checkdead();
        goro__lock_release(&goro__sched.lock);
        int64_t timeout = -1;
        if (next != INT64_MAX) {
            timeout = next - goro__nanotime();
            if (timeout < 0)
                timeout = 0;
        }
        int32_t zero = 0;
        if (goro__upcalls.netpoll_waiters() > 0 &&
            atomic_compare_exchange_strong(&goro__sched.polling, &zero, 1)) {
            /* This M waits for I/O and timers instead of its futex. Take it
               off the idle list first so nobody hands it a P meanwhile. */
            goro__lock_acquire(&goro__sched.lock);
            bool listed = false;
            for (goro__m **pp = &goro__sched.midle; *pp; pp = &(*pp)->link)
                if (*pp == m) {
                    *pp = m->link;
                    goro__sched.nmidle--;
                    listed = true;
                    break;
                }
            goro__lock_release(&goro__sched.lock);
            if (listed) {
                goro__glist ready = {NULL, NULL, 0};
                goro__upcalls.netpoll_poll(timeout, &ready);
                atomic_store(&goro__sched.polling, 0);
                /* Found some: take a P and run them here (netpoll_inject),
                   rather than queue them and wake another M for them. */
                goro__g *g = netpoll_inject(m, &ready);
                if (g)
                    return g;
                goro__lock_acquire(&goro__sched.lock);
                goro__p *np = pidleget_locked();
                if (np && atomic_load(&goro__sched.runq_size) == 0 &&
                    goro__timers_earliest() > goro__nanotime()) {
                    pidleput_locked(np);
                    np = NULL;
                }
                goro__lock_release(&goro__sched.lock);
                if (np) {
                    acquirep(m, np);
                    goto top;
                }
                continue;
            }
            atomic_store(&goro__sched.polling, 0);
        }
        while (atomic_load(&m->park) == 0) {
            if (goro__futex_wait(&m->park, 0, timeout) == ETIMEDOUT)
                break;
        }
        goro__lock_acquire(&goro__sched.lock);
        /* Whoever woke us took us off the idle list (under this lock); after a
           timeout we are still on it. Invariant: an M is on the list at most
           once, exactly while it sleeps in this loop. */
        for (goro__m **pp = &goro__sched.midle; *pp; pp = &(*pp)->link)
            if (*pp == m) {
                *pp = m->link;
                goro__sched.nmidle--;
                break;
            }
        goro__p *np = m->nextp;
        m->nextp = NULL;
        if (!np && next != INT64_MAX && goro__timers_earliest() <= goro__nanotime()) {
            np = pidleget_locked();
            if (np) {
                m->spinning = true;
                atomic_fetch_add(&goro__sched.nmspinning, 1);
            }
        }
        goro__lock_release(&goro__sched.lock);
        if (np) {
            acquirep(m, np);
            goto top;
        }
    }
}

/* An M's life once it has its first context: find work, run it; the
   goroutines switch among themselves and come back here only when their P
   has nothing local. */
static void schedule_loop(goro__m *m) __attribute__((noreturn));
static void schedule_loop(goro__m *m) {
    for (;;) {
        goro__g *g = findrunnable(m);
        execute(m, &m->g0, g, false);
    }
}

static void *mstart(void *arg) {
    goro__m *m = arg;
    tls_m = m;
    m->tid = (pid_t)syscall(SYS_gettid);
    m->g0.tid = m->tid;
    m->curg = &m->g0;
    set_tls_g(&m->g0);
#ifdef GORO__ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *addr;
        size_t size;
        pthread_attr_getstack(&a, &addr, &size);
        m->g0.asan_bottom = addr;
        m->g0.asan_size = size;
        pthread_attr_destroy(&a);
    }
#endif
#ifdef GORO__TSAN
    m->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
    goro__signals_init_thread(m);
    goro__p *p = m->nextp;
    m->nextp = NULL;
    if (p)
        acquirep(m, p);
    schedule_loop(m);
    return NULL;
}

/* ------------------------------------------------- goroutine 1's thread */

/*
 * Goroutine 1 (docs/runtime.md, "Goroutine 1"). When the runtime starts on
 * the process's main thread, the code running there becomes goroutine 1, an
 * ordinary goroutine whose stack is the thread's own, and the thread becomes
 * M0, an ordinary M holding a P. Its scheduler context (g0) gets a stack of
 * its own, since goroutine 1 keeps the native one. From then on goroutine 1
 * parks, yields and is readied like any goroutine, and may resume on any M
 * (so its hand-offs cost a user-space switch, not a futex sleep and wake of
 * the first thread), and M0 runs whatever goroutine comes next while
 * goroutine 1 waits.
 *
 * Sanitizers: goroutine 1 keeps the thread's original TSan fiber and ASan
 * stack bounds (the main stack); M0's g0 gets a new fiber and its own bounds.
 */
#define G0_STACK_SIZE ((size_t)1 << 20)

static void m0_entry(void *arg) {
    goro__m *m = arg;
#ifdef GORO__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    after_switch(m);
    schedule_loop(m);
}

void goro__sched_adopt_main(void) {
    goro__g *g1 = goro__main_goroutine();
    if (!g1->main_stack)
        return;
    goro__m *m = calloc(1, sizeof *m);
    size_t ps = goro__page_size();
    char *stk = mmap(NULL, G0_STACK_SIZE + ps, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (!m || stk == MAP_FAILED)
        goro__throw("out of memory making the first thread an M");
    mprotect(stk, ps, PROT_NONE);
    m->g0.is_g0 = true;
    m->g0.status = GORO__G_RUNNING;
    m->g0.stack_lo = stk + ps;
    m->g0.stack_hi = stk + ps + G0_STACK_SIZE;
    m->g0.stack_size = G0_STACK_SIZE;
    m->g0.asan_bottom = m->g0.stack_lo;
    m->g0.asan_size = G0_STACK_SIZE;
#ifdef GORO__HAVE_VALGRIND
    m->g0.vg_stack_id = VALGRIND_STACK_REGISTER(m->g0.stack_lo, m->g0.stack_hi);
#endif
#ifdef GORO__TSAN
    g1->tsan_fiber = __tsan_get_current_fiber();
    m->g0.tsan_fiber = __tsan_create_fiber(0);
#endif
    goro__ctx_make(&m->g0.ctx, m->g0.stack_hi, m0_entry, m);
    m->thread = pthread_self();
    m->tid = g1->tid;
    m->g0.tid = m->tid;
    goro__lock_acquire(&goro__sched.lock);
    m->id = goro__sched.mcount++;
    m->alllink = goro__sched.allm;
    goro__sched.allm = m;
    goro__p *p = pidleget_locked();
    goro__lock_release(&goro__sched.lock);
    if (!p)
        goro__throw("no P for goroutine 1");
    tls_m = m;
    acquirep(m, p);
    m->curg = g1;
    atomic_store_explicit(&p->curg, g1, memory_order_relaxed);
    atomic_store_explicit(&g1->m, m, memory_order_relaxed);
    /* The fault handler's signal stack (signal.c keeps one big enough). */
    goro__signals_init_thread(m);
}

/* ------------------------------------------------------ system stack */

#define SYSSTACK_SIZE ((size_t)2 << 20)

typedef struct syscall_frame {
    void (*fn)(void *);
    void *arg;
    goro__g *g;
} sys_frame;

static void sys_entry(void *p) {
    sys_frame *f = p;
#ifdef GORO__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    f->fn(f->arg);
    goro__m *m = goro__getm();
    fiber_start(&m->g0, f->g, true);
    goro__ctx_switch(&m->sys_ctx, &f->g->ctx);
}

void goro__systemstack(void (*fn)(void *), void *arg) {
    goro__g *g = goro__getg_maybe();
    goro__m *m = goro__getm();
#ifdef GORO__TSAN
    /* TSan keeps one shadow call stack per fiber and the entry frame here
       never returns; TSan builds use larger goroutine stacks instead. */
    m = NULL;
#endif
    if (!g || !m || g->is_thread || g->is_g0 || m->sys_g) {
        fn(arg);
        return;
    }
    if (!m->sysstack_hi) {
        size_t ps = goro__page_size();
        char *p = mmap(NULL, SYSSTACK_SIZE + ps, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            fn(arg);
            return;
        }
        mprotect(p, ps, PROT_NONE);
        m->sysstack_hi = p + ps + SYSSTACK_SIZE;
    }
    sys_frame f = {fn, arg, g};
    goro__g tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.asan_bottom = m->sysstack_hi - SYSSTACK_SIZE;
    tmp.asan_size = SYSSTACK_SIZE;
    tmp.tsan_fiber = g->tsan_fiber; /* same logical thread of execution */
    goro__ctx_make(&m->sys_ctx, m->sysstack_hi, sys_entry, &f);
    m->sys_g = g;
    fiber_start(g, &tmp, false);
    goro__ctx_switch(&g->ctx, &m->sys_ctx);
    fiber_finish(g);
    m->sys_g = NULL;
}

bool goro__systemstack_active(goro__g *g) {
    goro__m *m = goro__getm();
    return m && g && m->sys_g == g;
}

/* ---------------------------------------------------- blocking calls */

/*
 * goro_syscall_enter/exit bracket a call that may block in the kernel. The
 * goroutine keeps its P but marks it P_SYSCALL; if the call lasts longer than
 * a sysmon tick (~20us), sysmon CASes the P to IDLE and hands it to another
 * M, so other goroutines keep running. On exit the goroutine takes its P back
 * if it is still P_SYSCALL, else any idle P, else it queues itself globally
 * and its M goes idle.
 */

void goro_syscall_enter(void) {
    goro__init();
    goro__g *g = goro__getg();
    goro__m *m = goro__getm();
    if (g->is_thread || !m || !m->p)
        return;
    goro__p *p = m->p;
    atomic_store_explicit(&g->waitsince, coarse_now(), memory_order_relaxed);
    atomic_store_explicit(&g->status, GORO__G_SYSCALL, memory_order_release);
    atomic_fetch_add(&goro__sched.nexternal, 1);
    m->oldp = p;
    m->p = NULL;
    atomic_fetch_add_explicit(&p->syscalltick, 1, memory_order_relaxed);
    atomic_store_explicit(&p->status, GORO__P_SYSCALL, memory_order_release);
    if (atomic_fetch_add(&goro__sched.nsyscall, 1) == 0) {
        goro__sysmon_start();
        atomic_store(&goro__sched.sysmon_wake, 1);
        goro__futex_wake(&goro__sched.sysmon_wake, 1);
    }
}

void goro_syscall_exit(void) {
    goro__g *g = goro__getg();
    goro__m *m = goro__getm();
    if (g->is_thread || !m || !m->oldp || atomic_load(&g->status) != GORO__G_SYSCALL)
        return;
    int saved_errno = *goro__errno_location();
    goro__p *p = m->oldp;
    m->oldp = NULL;
    atomic_fetch_sub(&goro__sched.nsyscall, 1);
    atomic_fetch_sub(&goro__sched.nexternal, 1);
    atomic_store_explicit(&g->waitsince, 0, memory_order_relaxed);
    int st = GORO__P_SYSCALL;
    if (atomic_compare_exchange_strong(&p->status, &st, GORO__P_RUNNING)) {
        acquirep(m, p);
        atomic_store_explicit(&g->status, GORO__G_RUNNING, memory_order_release);
        return;
    }
    /* Retaken: any idle P? */
    goro__lock_acquire(&goro__sched.lock);
    goro__p *np = pidleget_locked();
    goro__lock_release(&goro__sched.lock);
    atomic_store_explicit(&g->status, GORO__G_RUNNING, memory_order_release);
    if (np) {
        acquirep(m, np);
        return;
    }
    /* None: queue ourselves globally and let this M go idle. */
    m->after = GORO__AFTER_YIELD;
    m->after_g = g;
    switch_to(m, g, &m->g0, false);
    *goro__errno_location() = saved_errno;
}

/* sysmon: retake a P that has sat in a syscall since the last look. Returns
   true if it handed one off. */
bool goro__retake(uint32_t *seen_ticks) {
    bool any = false;
    int32_t n = atomic_load(&goro__sched.gomaxprocs);
    for (int32_t i = 0; i < n && i < GORO__MAXPROCS; i++) {
        goro__p *p = goro__sched.allp[i];
        if (atomic_load_explicit(&p->status, memory_order_acquire) != GORO__P_SYSCALL) {
            seen_ticks[i] = 0;
            continue;
        }
        uint32_t t = atomic_load_explicit(&p->syscalltick, memory_order_relaxed) | 1u << 31;
        if (seen_ticks[i] != t) {
            seen_ticks[i] = t; /* first sighting of this syscall: give it a tick */
            continue;
        }
        int st = GORO__P_SYSCALL;
        if (!atomic_compare_exchange_strong(&p->status, &st, GORO__P_IDLE))
            continue;
        goro__lock_acquire(&goro__sched.lock);
        p->status = GORO__P_RUNNING; /* pidleput sets IDLE and links it */
        pidleput_locked(p);
        goro__lock_release(&goro__sched.lock);
        goro__wakep();
        any = true;
    }
    return any;
}

/* ----------------------------------------------------- maxprocs, init */

/* Serializes changes of the P count: the program's goro_maxprocs and
   sysmon's lent Ps (goro__procs_lend). */
static goro__lock procs_lock = GORO__LOCK_INIT;

int goro__procresize(int32_t n) {
    if (n > GORO__MAXPROCS)
        n = GORO__MAXPROCS;
    goro__lock_acquire(&procs_lock);
    int32_t lent = atomic_load(&goro__sched.nlent);
    atomic_store(&goro__sched.nlent, 0); /* the program's setting replaces lent Ps */
    int32_t old = procresize(n) - lent;
    goro__lock_release(&procs_lock);
    return old;
}

int goro__maxprocs_setting(void) {
    return atomic_load(&goro__sched.gomaxprocs) - atomic_load(&goro__sched.nlent);
}

/*
 * Lent Ps (sysmon.c, "Hogs"). goro cannot preempt C code, so a goroutine
 * that runs for a long time without a goro call (a computation, a plain
 * blocking system call, goroutine 1 in pause()) keeps its P. When every P
 * is held that way and work waits, sysmon lends one more P (gomaxprocs + 1,
 * counted in nlent, which goro_maxprocs(0) leaves out), and takes lent Ps
 * back one at a time once fewer Ps are held than are lent. A P above the
 * count retires at its M's next switch, as after goro_maxprocs(n - 1).
 */
bool goro__procs_lend(int delta) {
    goro__lock_acquire(&procs_lock);
    int32_t n = atomic_load(&goro__sched.gomaxprocs);
    int32_t lent = atomic_load(&goro__sched.nlent);
    bool ok = delta > 0 ? n < GORO__MAXPROCS : lent > 0;
    if (ok) {
        atomic_store(&goro__sched.nlent, lent + delta);
        procresize(n + delta);
    }
    goro__lock_release(&procs_lock);
    return ok;
}

/* sysmon: p's goroutine has run a whole tick without switching. Moves the
   goroutines waiting in p's local queue (runnext too) to the global queue,
   where the Ps that do switch find them, and runs p's due timers (their
   goroutines go global as well: sysmon has no P). Safe from any thread:
   it takes from the queue as a thief does. True if it moved anything. */
bool goro__unhog(goro__p *p, int64_t now) {
    bool moved = false;
    goro__g *batch[GORO__RUNQ_SIZE];
    for (;;) {
        uint32_t n = 0;
        uint32_t h = atomic_load_explicit(&p->runq_head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runq_tail, memory_order_acquire);
        if (t - h > GORO__RUNQ_SIZE)
            continue; /* read an inconsistent pair */
        for (uint32_t i = h; i != t; i++)
            batch[n++] = atomic_load_explicit(&p->runq[i % GORO__RUNQ_SIZE], memory_order_relaxed);
        if (n == 0)
            break;
        if (atomic_compare_exchange_strong_explicit(&p->runq_head, &h, t, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            globrunq_put_batch(batch, n);
            moved = true;
        }
    }
    goro__g *next = atomic_load_explicit(&p->runnext, memory_order_acquire);
    if (next && atomic_compare_exchange_strong_explicit(
                    &p->runnext, &next, NULL, memory_order_acq_rel, memory_order_relaxed)) {
        goro__runq_put_global(next);
        moved = true;
    }
    if (atomic_load_explicit(&p->timers.next, memory_order_relaxed) <= now) {
        goro__timers_run(&p->timers, now);
        moved = true;
    }
    if (moved)
        goro__wakep();
    return moved;
}

/* The Ps, idle; no M starts yet (goroutine 1's thread takes a P first,
   goro__sched_adopt_main, and the first goroutine made wakes an M). */
void goro__sched_init(int32_t procs) {
    goro__lock_acquire(&goro__sched.lock);
    /* Highest first: pidleput pushes, so P 0 (goroutine 1's) ends on top. */
    for (int32_t i = procs - 1; i >= 0; i--) {
        goro__sched.allp[i] = newp(i);
        pidleput_locked(goro__sched.allp[i]);
    }
    __atomic_store_n(&goro__sched.nps, procs, __ATOMIC_RELEASE);
    atomic_store(&goro__sched.gomaxprocs, procs);
    goro__lock_release(&goro__sched.lock);
}

/* A helper thread (sysmon, the symbolizer, the debug server, the SIGQUIT
   dumper) has just counted itself. If the last M went to sleep while that
   thread existed but was not yet counted, its deadlock check saw an unknown
   thread and gave up, and nothing would ever check again: wake one idle M,
   whose idle loop runs the check once more on its way back to sleep. */
void goro__deadlock_recheck(void) {
    goro__lock_acquire(&goro__sched.lock);
    goro__m *m = goro__sched.midle;
    if (m)
        notewakeup(m);
    goro__lock_release(&goro__sched.lock);
}

/* sched.lock held: the scheduler's half of the deadlock check (every P
   idle with nothing queued, every M idle, no timer, no outstanding wait). */
static bool sched_all_asleep(void) {
    if (atomic_load(&goro__sched.npidle) != atomic_load(&goro__sched.gomaxprocs))
        return false;
    if (goro__sched.nmidle != goro__sched.mcount || atomic_load(&goro__sched.nmspinning) != 0)
        return false;
    if (atomic_load(&goro__sched.runq_size) != 0 || atomic_load(&goro__sched.nthreads_timed) != 0 ||
        atomic_load(&goro__sched.nexternal) != 0)
        return false;
    if (goro__timers_earliest() != INT64_MAX)
        return false;
    /* sysmon's retake lists a P with its queue and wakes an M for it only
       after the lock (deadlock.c, the protocol). */
    for (int32_t i = 0; i < atomic_load(&goro__sched.gomaxprocs); i++)
        if (!runq_empty(goro__sched.allp[i]))
            return false;
    return true;
}

/* Everything that moves when a goroutine or a plain thread makes progress:
   goroutine switches on every P, plain-thread wake-ups begun, threads
   parked. Compared before and after the confirmation wait. */
typedef struct progress {
    uint64_t switches, wakes;
    int32_t parked;
} progress;

static progress progress_now(void) {
    progress now = {0, goro__deadlock_wakes_begun(), atomic_load(&goro__sched.nthreads_blocked)};
    for (int32_t i = 0; i < goro__sched.nps; i++)
        now.switches +=
            atomic_load_explicit(&goro__sched.allp[i]->switchtick, memory_order_relaxed);
    return now;
}

/* How long a suspected deadlock must hold, with no progress at all, before
   it is reported. */
#define DEADLOCK_CONFIRM_NS (10 * 1000000L)

/* sched.lock held. Called by whatever goes to sleep last. A deadlock is
   reported only if it is seen twice, DEADLOCK_CONFIRM_NS apart, with
   nothing moved in between (progress_now). The counts are exact when the
   protocol in deadlock.c holds; the second look is defence in depth, so a
   window nobody has found yet cannot kill a healthy program: a program
   that is really stuck stays stuck for 10 ms, one that merely looked stuck
   for an instant does not. The lock is released during the wait (this
   thread is asleep then, and counted so); on return it is held again. */
void goro__checkdead(void) {
    if (!sched_all_asleep() || !goro__checkdead_impl(false))
        return;
    progress before = progress_now();
    goro__lock_release(&goro__sched.lock);
    struct timespec ts = {0, DEADLOCK_CONFIRM_NS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    goro__lock_acquire(&goro__sched.lock);
    progress after = progress_now();
    if (after.switches != before.switches || after.wakes != before.wakes ||
        after.parked != before.parked || !sched_all_asleep())
        return;
    /* Two Ms that went idle together may both have confirmed: one reports,
       the other goes back to sleep (the report ends the process). */
    static _Atomic int reporting;
    if (!goro__checkdead_impl(false) || atomic_exchange(&reporting, 1))
        return;
    goro__checkdead_impl(true);
}
