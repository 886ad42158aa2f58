/*
 * sched.h - scheduler data shared by the runtime's own files (sched.c, g.c,
 * stack.c, timer.c, deadlock.c). Not visible to the layers above.
 *
 * G: a goroutine (goro__g, runtime.h). M: an OS thread that runs goroutines.
 * P: a processor, the right to run goroutines; an M needs a P to run one.
 * There are exactly gomaxprocs Ps in use; each has a bounded local run queue
 * plus a runnext slot, a timer heap and caches of free goroutine records.
 */
#ifndef GORO_SCHED_H
#define GORO_SCHED_H

#include "runtime.h"

#define GORO__RUNQ_SIZE 256
#define GORO__MAXPROCS 256
#define GORO__GFREE_MAX 64

/* A heap slot keeps its timer's deadline beside the pointer, so sifting
   compares without touching timer records (which live in goroutine
   records, one page apart: a cache and TLB miss each). */
typedef struct goro__timer_slot {
    int64_t when;
    goro__timer *t;
} goro__timer_slot;

typedef struct goro__timers {
    goro__lock lock;
    goro__timer_slot *heap; /* binary min-heap on when */
    int32_t len, cap;
    _Atomic int64_t next; /* heap[0].when, or INT64_MAX when empty */
    goro__g *released;    /* last goroutine a timer put in this P's runnext
                                  (owner only; timer.c, "Release order") */
} goro__timers;

enum goro__pstatus { GORO__P_IDLE, GORO__P_RUNNING, GORO__P_SYSCALL, GORO__P_DEAD };

struct goro__p {
    int id;
    _Atomic int status;           /* enum goro__pstatus; RUNNING<->SYSCALL<->IDLE by CAS
                                       (owner enters/leaves a syscall, sysmon retakes) */
    _Atomic uint32_t syscalltick; /* bumped at every syscall enter (sysmon's "seen twice") */
    goro__g *_Atomic curg;        /* goroutine on it, for the starvation report */
    _Atomic uint32_t switchtick;  /* bumped at every switch on this P (sysmon reads it) */
    goro__p *link;                /* idle list */
    goro__m *m;                   /* owner while RUNNING */
    uint32_t schedtick;

    /* Local run queue: a single-producer (the owner), multi-consumer ring.
       Invariant: tail - head <= GORO__RUNQ_SIZE; only the owner writes tail
       and the slots in [tail, head + SIZE); anyone may CAS head forward. */
    _Atomic uint32_t runq_head;
    _Atomic uint32_t runq_tail;
    goro__g *_Atomic runq[GORO__RUNQ_SIZE];
    goro__g *_Atomic runnext; /* readied by the running G: runs next, inherits the time slice */

    goro__timers timers;

    /* Dead goroutine records of the default stack size, owner-only. */
    goro__g *gfree;
    int32_t ngfree;
} __attribute__((aligned(64)));

/* What the next context must finish for the one that switched away (Go runs
   these on g0 via mcall; we run them on whatever context resumes next). */
enum goro__after {
    GORO__AFTER_NONE,
    GORO__AFTER_PARK,  /* prev: mark WAITING, arm its deadline, call unlock(lock) */
    GORO__AFTER_YIELD, /* prev: put back on a run queue */
    GORO__AFTER_EXIT,  /* prev: dead, return its record and stack */
};

struct goro__m {
    goro__g g0; /* this thread's scheduler context (native stack) */
    int id;
    goro__p *p;     /* attached P, or NULL */
    goro__p *nextp; /* P handed over by wakep */
    goro__p *oldp;  /* P held when entering a syscall */
    goro__g *curg;  /* goroutine running on this M (or &g0) */
    pthread_t thread;
    pid_t tid;
    bool spinning;         /* looking for work; counted in sched.nmspinning */
    _Atomic uint32_t park; /* futex: 0 asleep/to sleep, 1 woken */
    goro__m *link;         /* idle list */
    goro__m *alllink;

    int after; /* enum goro__after */
    goro__g *after_g;
    void (*after_unlock)(void *);
    void *after_lock;

    void *altstack;    /* signal stack for the fault handler */
    char *sysstack_hi; /* goro__systemstack's stack (lazily mapped) */
    goro__g *sys_g;    /* goroutine whose call runs there now, or NULL */
    goro__ctx sys_ctx;
};

struct goro__sched {
    goro__lock lock; /* protects: idle lists, global runq, mcount, ps */
    goro__p *pidle;
    _Atomic int32_t npidle;
    goro__m *midle;
    int32_t nmidle;
    int32_t mcount;
    goro__m *allm;
    _Atomic int32_t nmspinning;

    /* Global run queue: a growable ring of pointers (runq_size entries
       from runq_first), so moving a batch reads and writes only this array,
       never the cold goroutine records it names. Under lock; runq_size is
       also read without it as a hint. */
    goro__g **runq;
    uint32_t runq_cap, runq_first;
    _Atomic int32_t runq_size;

    _Atomic int32_t gomaxprocs;
    int32_t ncpu; /* CPUs the process may use (set once at init) */
    int32_t nps;  /* Ps ever created (ids 0..nps-1) */
    goro__p *allp[GORO__MAXPROCS];

    /* Dead records with stacks, shared between Ps. */
    goro__lock gfree_lock;
    goro__g *gfree;
    int32_t ngfree;

    /* deadlock detection */
    _Atomic int32_t nthreads_blocked; /* plain threads parked without deadline */
    _Atomic int32_t nthreads_timed;   /* plain threads parked with a deadline */
    _Atomic int32_t nthreads_shown;   /* plain threads other than goroutine 1 parked in the
                                           runtime: dumps list them, so goro_count counts them */
    _Atomic int32_t nhelpers;         /* runtime helper threads */
    _Atomic int32_t nexternal;        /* I/O and syscall waits */
    _Atomic int32_t polling;          /* an idle M is blocked in netpoll */
    _Atomic int32_t nsyscall;         /* goroutines between syscall_enter and exit */
    _Atomic uint32_t sysmon_wake;     /* futex: sysmon sleeps while nothing to watch */
    _Atomic int32_t nlent;            /* Ps sysmon lent beyond the program's setting */
    _Atomic int32_t sysmon_started;
};
extern GORO__HIDDEN struct goro__sched goro__sched;

GORO__HIDDEN goro__p *goro__getp(void);
GORO__HIDDEN void goro__runq_put_global(goro__g *g);
GORO__HIDDEN void goro__wakep(void);
/* True when the calling thread's P has (almost) no room left in its local
   run queue, so readying more goroutines would spill to the global queue. */
GORO__HIDDEN bool goro__runq_nearly_full(void);
GORO__HIDDEN void goro__timers_init(goro__timers *ts);
/* Runs due timers of ts; returns the next deadline (INT64_MAX if none).
   Stops early, leaving due timers in the heap (and returning a deadline
   <= now), once the calling thread's local run queue is nearly full. */
GORO__HIDDEN int64_t goro__timers_run(goro__timers *ts, int64_t now);
/* Moves every timer of `from` onto `to` (P retirement). */
GORO__HIDDEN void goro__timers_move(goro__timers *from, goro__timers *to);
GORO__HIDDEN int64_t goro__timers_earliest(void);
GORO__HIDDEN int32_t goro__timers_pending(void);
/* Called with sched.lock held by the last thing going to sleep. */
GORO__HIDDEN void goro__checkdead(void);
/* deadlock.c: a waker brackets waking a counted plain thread (see there). */
GORO__HIDDEN void goro__thread_wake_begin(void);
GORO__HIDDEN void goro__thread_wake_end(void);
/* allgs registration: a group of up to 64 records `stride` bytes apart
   starting at `first` (stride 0: a lone record), then each record by its
   group and its index in it. */
GORO__HIDDEN uint32_t goro__allg_group(goro__g *first, size_t stride);
GORO__HIDDEN void goro__g_register(uint32_t group, uint32_t slot);
GORO__HIDDEN void goro__signals_init_thread(goro__m *m);
GORO__HIDDEN void goro__live_add(int delta);
/* g.c: goroutine 1 called goro_exit (main's thread only naps from then on). */
extern GORO__HIDDEN _Atomic int goro__main_goexited;
/* g.c: goro_count() without its floor of 1 (goroutine 1 may be gone). */
GORO__HIDDEN int goro__live_count(void);
/* signal.c: installs the process-wide handlers (once, at init). */
GORO__HIDDEN void goro__signals_init(void);
/* sysmon.c: starts the monitor thread (idempotent). */
GORO__HIDDEN void goro__sysmon_start(void);
/* sched.c, for sysmon: hands Ps stuck in a syscall for a whole tick to
   other Ms; seen_ticks is sysmon's per-P memory. True if it retook one. */
GORO__HIDDEN bool goro__retake(uint32_t *seen_ticks);
/* sched.c: the scheduler's half of creating a goroutine (goro__newproc in
   g.c fills the record): its sanitizer fiber and first frame, then
   runnable on this P (runnext) or globally. */
GORO__HIDDEN void goro__g_start(goro__g *g);

/* Between the scheduler (sched.c), the goroutine records (g.c), start-up
   (init.c), the deadlock check (deadlock.c) and timers (timer.c). */
/* sched.c: the id of this thread's current record, 0 if it has none (one
   TLS load, no init: goro_id's fast path). */
GORO__HIDDEN uint64_t goro__current_id_fast(void);
/* sched.c: makes g this thread's record (NULL: none). */
GORO__HIDDEN void goro__set_thread_g(goro__g *g);
/* g.c: this thread's record, made on first use (a plain thread's). */
GORO__HIDDEN goro__g *goro__thread_record(void);
/* g.c: goroutine 1's record, for the first thread (once, from goro__init). */
GORO__HIDDEN void goro__g_init_main(void);
/* g.c: goroutine 1's record (after goro__g_init_main). */
GORO__HIDDEN goro__g *goro__main_goroutine(void);
/* sched.c: if goroutine 1 is a goroutine (g->main_stack), makes the
   calling (main) thread an M with a P running it (once, from goro__init,
   after goro__sched_init). */
GORO__HIDDEN void goro__sched_adopt_main(void);
/* g.c: runs g's function, then its exit (the body of every goroutine). */
GORO__HIDDEN void goro__g_run(goro__g *g);
/* g.c: panics with msg (heap-allocated, owned by the panic from here). */
GORO__HIDDEN void goro__panic_msg(char *msg) __attribute__((noreturn));
/* sched.c: the dead goroutine g leaves its stack for good. */
GORO__HIDDEN void goro__finish_exit(goro__g *g) __attribute__((noreturn));
/* sched.c: goro_yield's body (the runtime is started). */
GORO__HIDDEN void goro__yield(void);
/* sched.c: goro_maxprocs(n > 0)'s body; the previous setting. */
GORO__HIDDEN int goro__procresize(int32_t n);
/* sched.c: goro_maxprocs(0): the program's setting (lent Ps left out). */
GORO__HIDDEN int goro__maxprocs_setting(void);
/* sched.c, for sysmon: lends one more P (delta 1) or takes one back (-1).
   False if it could not (at the limit; none lent). */
GORO__HIDDEN bool goro__procs_lend(int delta);
/* sched.c, for sysmon: moves the queue and due timers of a P whose
   goroutine does not switch where others find them. */
GORO__HIDDEN bool goro__unhog(goro__p *p, int64_t now);
/* sched.c: the Ps and the first M, with `procs` processors (from goro__init). */
GORO__HIDDEN void goro__sched_init(int32_t procs);
/* sched.c, for timer.c: a timer was added at `when`; wakes a sleeping M
   if it sleeps past it. */
GORO__HIDDEN void goro__timer_after_add(int64_t when);
/* sched.c, for deadlock.c: runs the deadlock check again (a helper thread
   came or went). */
GORO__HIDDEN void goro__deadlock_recheck(void);
/* deadlock.c: the part of goro__checkdead that looks beyond the scheduler's
   counters (threads, helpers), with sched.lock held. True if every thread
   is accounted asleep; with report, a deadlock is then reported (does not
   return). */
GORO__HIDDEN bool goro__checkdead_impl(bool report);
/* deadlock.c: plain-thread wake-ups begun so far (the protocol there). */
GORO__HIDDEN uint64_t goro__deadlock_wakes_begun(void);

#endif
