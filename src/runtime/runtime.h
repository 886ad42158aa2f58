/*
 * runtime.h - the runtime's internal interface (not installed).
 *
 * Everything above the runtime (channels, sync, contexts, observe, leak,
 * pools, I/O) blocks and wakes goroutines only through the park/ready
 * primitive declared here, in the style of Go's gopark/goready:
 *
 *   waiter (holding `lock` of some object):
 *       goro__g *g = goro__getg();
 *       goro__g_prepare_wait(g);          // new wait generation, wake word = 0
 *       enqueue g in the object's wait queue
 *       bool woke = goro__park(REASON, obj, unlock_fn, lock, deadline);
 *       // lock is NOT held here. woke == false: the deadline passed first;
 *       // take the lock again and remove g from the queue.
 *
 *   waker (holding the same lock):
 *       for each g in the queue: if (goro__claim(g)) { dequeue; hand over
 *       data (g->param etc.); goro__ready(g); break; }  else: skip it (it
 *       timed out or another case of its select won).
 *
 * Invariant: exactly one party wins the claim of one wait generation (the
 * wake word is CAS-ed from (gen<<2|0) to (gen<<2|1) by a waker or to
 * (gen<<2|2) by the deadline), and only the winner may call goro__ready.
 * The goroutine leaves its stack before unlock_fn runs and before its deadline
 * timer is armed, so no one can ready it while it is still running.
 *
 * The same calls work on a plain OS thread: goro__getg() returns a record for
 * the thread, and park blocks it on a futex.
 *
 * Naming: cross-file internal symbols are goro__*, hidden from the shared
 * library's exports (GORO__HIDDEN). Everything else is static.
 */
#ifndef GORO_RUNTIME_H
#define GORO_RUNTIME_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "goro.h"
#include "../arch/context.h"

#define GORO__HIDDEN __attribute__((visibility("hidden")))
#define GORO__LIKELY(x) __builtin_expect(!!(x), 1)
#define GORO__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GORO__NOINLINE __attribute__((noinline))
#if defined(__clang__)
#define GORO__NOIPA __attribute__((noinline, optnone))
#else
#define GORO__NOIPA __attribute__((noipa))
#endif

#if defined(__SANITIZE_ADDRESS__)
#define GORO__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO__TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define GORO__TSAN 1
#endif
#endif

typedef struct goro__p goro__p;
typedef struct goro__m goro__m;

/* ------------------------------------------------------------ basic locks */

/* A small futex mutex (Drepper's three-state lock with a short spin). Held
   only for short, non-blocking critical sections; never across a park. */
/* One pause of a spin-wait loop: tells the CPU we are spinning (x86 PAUSE,
   arm64 YIELD), which saves power and the sibling hyperthread's time. */
static inline void goro__cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

typedef struct goro__lock {
    _Atomic uint32_t state; /* 0 free, 1 locked, 2 locked with sleepers */
} goro__lock;
/* A brace initializer in a macro: clang-format 14 would split it. */
/* clang-format off */
#define GORO__LOCK_INIT {0}
/* clang-format on */
GORO__HIDDEN void goro__lock_acquire(goro__lock *l);
GORO__HIDDEN bool goro__lock_try(goro__lock *l);
GORO__HIDDEN void goro__lock_release(goro__lock *l);
/* unlock_fn adapter for goro__park */
GORO__HIDDEN void goro__lock_release_v(void *l);

GORO__HIDDEN int goro__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);
GORO__HIDDEN void goro__futex_wake(_Atomic uint32_t *addr, int n);

/* --------------------------------------------------- states, wait reasons */

enum goro__status {
    GORO__G_IDLE = 0, /* a plain thread's record while the thread is outside the runtime */
    GORO__G_RUNNABLE = 1,
    GORO__G_RUNNING = 2,
    GORO__G_SYSCALL = 3,
    GORO__G_WAITING = 4,
    GORO__G_DEAD = 6,
    GORO__G_SCAN = 0x1000, /* OR-ed on while an observer reads a parked stack */
};

/* Go's wait reason strings (runtime2.go), the subset goro produces. */
enum goro__waitreason {
    GORO__WAIT_ZERO = 0,        /* "" (header shows "waiting") */
    GORO__WAIT_IO,              /* IO wait */
    GORO__WAIT_PANICWAIT,       /* panicwait */
    GORO__WAIT_SEMACQUIRE,      /* semacquire */
    GORO__WAIT_SLEEP,           /* sleep */
    GORO__WAIT_CHAN_RECV_NIL,   /* chan receive (nil chan) */
    GORO__WAIT_CHAN_SEND_NIL,   /* chan send (nil chan) */
    GORO__WAIT_SELECT_NO_CASES, /* select (no cases) */
    GORO__WAIT_SELECT,          /* select */
    GORO__WAIT_CHAN_RECV,       /* chan receive */
    GORO__WAIT_CHAN_SEND,       /* chan send */
    GORO__WAIT_COND,            /* sync.Cond.Wait */
    GORO__WAIT_MUTEX,           /* sync.Mutex.Lock */
    GORO__WAIT_RWMUTEX_R,       /* sync.RWMutex.RLock */
    GORO__WAIT_RWMUTEX_W,       /* sync.RWMutex.Lock */
    GORO__WAIT_WAITGROUP,       /* sync.WaitGroup.Wait */
    GORO__WAIT_SYSCALL_OUT,     /* (internal) thread record outside the runtime */
    GORO__WAIT_N
};
GORO__HIDDEN const char *goro__waitreason_str(int reason);
/* "running", "runnable", "syscall", or the wait reason (or "waiting"). */
GORO__HIDDEN const char *goro__status_str(uint32_t status, int reason);

/* ------------------------------------------------------------------ timers */

typedef struct goro__timer goro__timer;
typedef void (*goro__timer_fn)(void *arg, uint64_t seq);
struct goro__timer {
    int64_t when;      /* absolute goro_nanotime() */
    goro__timer_fn fn; /* runs on a scheduler thread with the heap lock held:
                                  must not block; may call goro__ready */
    void *arg;
    uint64_t seq;
    int32_t idx;        /* position in its heap, -1 when not queued */
    goro__p *_Atomic p; /* heap it is on */
};
GORO__HIDDEN void goro__timer_start(goro__timer *t, int64_t when, goro__timer_fn fn, void *arg,
                                    uint64_t seq);
/* true if t was queued and is now removed (fn did not run and will not).
   false: fn already ran, or is running right now on another thread. */
GORO__HIDDEN bool goro__timer_stop(goro__timer *t);

/* ------------------------------------------------------------- goroutines */

typedef struct goro__defer {
    void (*fn)(void *);
    void *arg;
    struct goro__defer *next;
} goro__defer;

/* pprof labels: an immutable, refcounted, key-sorted set shared between a
   goroutine and the goroutines it starts (copy on write in goro_label_set). */
typedef struct goro__labels {
    _Atomic int32_t refs;
    int32_t n;
    struct {
        char *key, *value;
    } kv[];
} goro__labels;

typedef struct goro__g goro__g;
/* gdb/goro-gdb.py reads these records from memory through the offsets in
   src/gdb_layout.c: keep that table in step when a field it names changes. */
struct goro__g {
    goro__ctx ctx;           /* saved stack pointer while not running */
    uint64_t id;             /* never reused; 0 for the scheduler's own g0 */
    uint64_t parent_id;      /* the creator's id, 0 if none */
    _Atomic uint32_t status; /* enum goro__status (see sched.c for transitions) */
    bool is_thread;          /* record of a plain OS thread */
    bool is_g0;              /* a scheduler thread's own context */
    bool system;             /* runtime-internal: not counted, not dumped */
    bool main_stack;         /* goroutine 1 on the main thread's own stack (never freed) */
    uint8_t _pad[4];
    _Atomic int64_t waitsince; /* goro_nanotime() when it blocked, 0 if not blocked */
    /* waitreason lives in its own word, apart from the flags above: compilers
       merge reads of neighbouring bytes, and it is written while others read
       the flags of this record. */
    _Atomic uint8_t waitreason; /* enum goro__waitreason while WAITING */
    uint8_t _pad2[7];
    void *waitobj; /* what it waits on (a goro_chan, sync object), or NULL */

    goro_fn fn; /* entry function and its argument */
    void *arg;
    uintptr_t gopc;    /* return address inside the creator: the `go` statement */
    goro_fn parent_fn; /* the creator goroutine's fn ("created by" when gopc is lost) */
    char *name;        /* goro_opts.name (owned copy) or NULL */
    goro__labels *labels;
    goro__defer *defers;
    void (*on_panic)(const char *msg, void *arg);
    goro_chan **holds; /* NULL-terminated owned array, or NULL */
    int saved_errno;
    bool panicking; /* inside goro_panic, running defers */
    char *panic_msg;

    /* scheduling */
    goro__m *_Atomic m;    /* the scheduler thread running it, while running */
    _Atomic uint64_t wake; /* (generation << 2) | 0 waiting, 1 woken, 2 timed out */
    void *param;           /* handed over by a waker (channel code) */
    void *waiting;         /* waiter records of the current wait (select) */
    goro__timer timer;     /* deadline of a timed park, sleep */
    int64_t park_deadline;

    /* plain threads */
    _Atomic uint32_t futex; /* 1 while the thread sleeps in park */
    pid_t tid;              /* OS thread id (plain threads; g0 of each M) */

    /* stack: [stack_lo, stack_hi); the record lives just above stack_hi */
    void *stack_lo;
    void *stack_hi;
    size_t stack_size;    /* usable bytes */
    bool guarded;         /* a PROT_NONE page lies just below stack_lo */
    void *slot_base;      /* lowest address of its slot (guard or gap page) */
    unsigned vg_stack_id; /* valgrind stack registration */

    /* observe/leak scratch (owned by those layers) */
    uint32_t leak_mark;
    void *observe;

    /* sanitizers */
    void *asan_fake_stack;
    const void *asan_bottom;
    size_t asan_size;
    void *tsan_fiber;

    goro__g *freelink; /* free list link */
    /* Link in a goro__glist: goroutines whose wait the poller has won (the
       claim) but that are not yet runnable. Only the holder of the list
       touches it, and only until the goroutine is queued. */
    goro__g *readylink;
};

/* A FIFO of goroutines handed from the netpoller to the scheduler: each
   one's claim was won by whoever built the list, so it is still WAITING
   and nobody else will ready it (netpoll_poll in upcalls.h). */
typedef struct goro__glist {
    goro__g *head, *tail;
    int32_t n;
} goro__glist;

static inline void goro__glist_push(goro__glist *l, goro__g *g) {
    g->readylink = NULL;
    if (l->tail)
        l->tail->readylink = g;
    else
        l->head = g;
    l->tail = g;
    l->n++;
}

static inline goro__g *goro__glist_pop(goro__glist *l) {
    goro__g *g = l->head;
    if (g) {
        l->head = g->readylink;
        if (!l->head)
            l->tail = NULL;
        g->readylink = NULL;
        l->n--;
    }
    return g;
}

/* The current goroutine or plain-thread record. Never cached by the compiler
   across a switch: a goroutine may resume on another thread. Creates the
   thread's record (and starts the runtime) on first use. */
GORO__HIDDEN goro__g *goro__getg(void);
/* Like goro__getg but returns NULL on a thread with no record yet. */
GORO__HIDDEN goro__g *goro__getg_maybe(void);
/* errno of the current thread, through an accessor the compiler cannot cache. */
GORO__HIDDEN int *goro__errno_location(void);

GORO__HIDDEN void goro__g_prepare_wait(goro__g *g);
GORO__HIDDEN bool goro__park(int reason, void *waitobj, void (*unlock)(void *), void *lock,
                             int64_t deadline);
GORO__HIDDEN bool goro__claim(goro__g *g);
GORO__HIDDEN void goro__ready(goro__g *g);

/* Iterating all goroutine records (for observe and leak). Records are never
   freed, so a pointer stays valid; read its fields only after
   goro__g_scan_begin succeeds (or for the current goroutine). */
GORO__HIDDEN size_t goro__allg_count(void);
GORO__HIDDEN goro__g *goro__allg_at(size_t i);
/* Pins a non-running goroutine so it cannot start running (its saved context
   and stack stay still). Returns false if g is running, dead or idle; then
   *status_out holds what it saw. */
GORO__HIDDEN bool goro__g_scan_begin(goro__g *g, uint32_t *status_out);
GORO__HIDDEN void goro__g_scan_end(goro__g *g);
/* Whether a record should appear in dumps/profiles at all (live user
   goroutine, or a plain thread currently inside the runtime). */
GORO__HIDDEN bool goro__g_visible(goro__g *g, uint32_t status);

/* Creates a goroutine; creator_pc is the return address in the caller. */
GORO__HIDDEN uint64_t goro__newproc(const goro_opts *opts, goro_fn fn, void *arg,
                                    uintptr_t creator_pc, bool system);
/* Ends the current goroutine (after its defers ran). Never returns. */
GORO__HIDDEN void goro__goexit(void) __attribute__((noreturn));
/* Runs and pops the current goroutine's defers, LIFO. */
GORO__HIDDEN void goro__run_defers(goro__g *g);

/* ----------------------------------------------------- scheduler threads */

GORO__HIDDEN goro__m *goro__getm(void); /* NULL on a plain thread */
GORO__HIDDEN int goro__m_id(goro__m *m);
GORO__HIDDEN pthread_t goro__m_thread(goro__m *m);
GORO__HIDDEN pid_t goro__m_tid(goro__m *m);

/* Helper threads of the runtime (debug server, monitor) register so that
   deadlock detection can tell them from threads it does not know. */
GORO__HIDDEN void goro__helper_thread_register(void);
GORO__HIDDEN void goro__helper_thread_unregister(void);

/* Count of blocked waits that can end by themselves (I/O waits, syscalls):
   while non-zero, no deadlock is reported. */
GORO__HIDDEN void goro__external_waiters_add(int delta);

/* ----------------------------------------------------------------- stacks */

/* Default usable stack size of a goroutine (docs/runtime.md explains it). */
#if defined(GORO__ASAN) || defined(GORO__TSAN)
#define GORO__STACK_DEFAULT ((size_t)256 * 1024) /* sanitizers' frames are larger */
#else
#define GORO__STACK_DEFAULT ((size_t)64 * 1024)
#endif
/* A goroutine record together with its stack (see stack.c for the layout). */
GORO__HIDDEN goro__g *goro__stack_alloc(size_t stack_size, goro__p *p);
GORO__HIDDEN void goro__stack_free(goro__g *g, goro__p *p);
/* At exit: fatal "stack overflow" if an unguarded stack ran into its gap page. */
GORO__HIDDEN void goro__stack_check(goro__g *g);
/* If addr lies in the guard page or gap below some goroutine stack, that
   goroutine's record (best effort, for the fault handler); else NULL. */
GORO__HIDDEN goro__g *goro__stack_guard_owner(goro__g *cur, uintptr_t addr);
GORO__HIDDEN size_t goro__page_size(void);

/* ------------------------------------------------------------ system stack */

/* Runs fn(arg) on a large per-thread stack (Go's systemstack) when called
   from a goroutine, whose own stack may be small: symbolizing with libdw and
   formatting dumps take far more than a goroutine's default 64 KiB. fn must
   not park (no blocking goro call). On a plain thread it just calls fn. */
GORO__HIDDEN void goro__systemstack(void (*fn)(void *), void *arg);
/* While goroutine g has a goro__systemstack call running, g->ctx holds the
   registers where it switched away: unwinders start there. */
GORO__HIDDEN bool goro__systemstack_active(goro__g *g);

/* ------------------------------------------------------------------- misc */

GORO__HIDDEN void goro__init(void);         /* idempotent; called by every entry point */
GORO__HIDDEN uint32_t goro__fastrand(void); /* per-thread xorshift */
GORO__HIDDEN int64_t goro__nanotime(void);
/* Prints "fatal error: msg", all goroutines, exits 2. */
GORO__HIDDEN void goro__fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Runtime-internal invariant violation: "fatal error: msg" + all stacks, abort. */
GORO__HIDDEN void goro__throw(const char *msg) __attribute__((noreturn));
/* Writes fully to a descriptor (signal-safe). */
GORO__HIDDEN void goro__write_all(int fd, const char *s, size_t n);

/* signal.c: a detached helper thread running fn(NULL) with every signal
   blocked (signals are the program's, or the handlers' to forward). */
GORO__HIDDEN bool goro__thread_start_quiet(void *(*fn)(void *), size_t stack_size);

/* Environment knobs (read once at init). */
typedef struct goro__debug_knobs {
    bool force_migrate; /* GORODEBUG=migrate=1: every wake goes through the global queue */
    int traceback;      /* GOROTRACEBACK: 0 none, 1 single, 2 all, 3 crash */
    bool starve;        /* GORODEBUG=starve=1: report goroutines that hog a P > 10 ms */
    bool lockmain;      /* GORODEBUG=lockmain=1: goroutine 1 stays a plain thread */
    int schedtrace_ms;  /* GORODEBUG=schedtrace=N: scheduler summary every N ms */
} goro__debug_knobs;
extern GORO__HIDDEN goro__debug_knobs goro__debug;

#endif
