/*
 * goro.h - Go's concurrency model and Go's goroutine debugging tools for C.
 *
 * Goroutines on an M:N work-stealing scheduler, channels and select, timers,
 * sync primitives and contexts, goroutine ids, states and stack dumps in Go's
 * own formats, a pprof-compatible goroutine profile, leak checks and pools.
 *
 * The runtime starts itself on first use; the thread that first uses it is
 * goroutine 1. Every blocking call works both inside a goroutine (it parks the
 * goroutine) and on a plain OS thread (it blocks the thread).
 *
 * Durations are int64_t nanoseconds; GORO_FOREVER (-1) means "no timeout".
 * Errors are return values (see "conventions" below), never errno alone; a
 * call that returns something else (an id, a count, a descriptor, a size)
 * says so at its declaration.
 */
#ifndef GORO_H
#define GORO_H

#include <errno.h>
#include <poll.h> /* POLLIN, POLLOUT for goro_wait_fd */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The declarations below are aligned by hand, as a table a reader scans;
   the rest of the tree follows .clang-format. */
/* clang-format off */

/* ------------------------------------------------------------ conventions */

#define GORO_US(x)    ((int64_t)(x) * 1000LL)
#define GORO_MS(x)    ((int64_t)(x) * 1000000LL)
#define GORO_SEC(x)   ((int64_t)(x) * 1000000000LL)
#define GORO_FOREVER  ((int64_t)-1)

/* Errors are return values: 0 or a GORO_E* code; calls that return a count or an fd: it, or -errno.
   Never read errno after a goro call in a goroutine: it may have resumed on another thread. */

#define GORO_ETIMEDOUT ETIMEDOUT
#define GORO_ECANCELED ECANCELED
#define GORO_ECLOSED   EPIPE
#define GORO_EAGAIN    EAGAIN
#define GORO_ENOMEM    ENOMEM
#define GORO_EINVAL    EINVAL

/* The name of a GORO_E* code or any errno value, of either sign ("timed out", ...). */
const char *goro_strerror(int err);

/* ------------------------------------------------------------- goroutines */

typedef struct goro_chan goro_chan;
typedef void (*goro_fn)(void *arg);

typedef struct goro_opts {
    size_t      stack_size;                    /* 0: the default (see docs/runtime.md) */
    const char *name;                          /* shown in dumps and profiles; copied */
    void      (*on_panic)(const char *msg, void *arg); /* set: recover instead of crash */
    goro_chan *const *holds;                   /* NULL-terminated: channels this goroutine holds
                                                  for its whole life (retained at spawn, released
                                                  when it ends), like a Go closure's captures */
} goro_opts;

/* goro_go and goro_go_opts return the new goroutine's id, or 0 when fn is NULL or memory ran out
   (they never park, so the errno they also set is this thread's). */
uint64_t goro_go(goro_fn fn, void *arg);
uint64_t goro_go_opts(const goro_opts *opts, goro_fn fn, void *arg);
uint64_t goro_id(void);                        /* current goroutine id; O(1), no locks */
int      goro_count(void);                     /* live goroutines, like runtime.NumGoroutine */
void     goro_yield(void);                     /* runtime.Gosched */
void     goro_sleep(int64_t ns);
int64_t  goro_nanotime(void);                  /* monotonic */
void     goro_exit(void) __attribute__((noreturn)); /* runtime.Goexit: runs defers, ends the goroutine */
int      goro_maxprocs(int n);                 /* GOMAXPROCS: sets when n > 0, returns the previous */
void     goro_defer(void (*fn)(void *), void *arg); /* runs LIFO when the goroutine ends or panics */
/* goro_defer belongs to the goroutine, not to the C function that called it.
   On goroutine 1 (main's thread) the defers run only on goro_exit() or a
   panic: returning from main() ends the process without running them, so
   release there what main owns by hand.
   On a panic the defers run first (LIFO), then on_panic(msg, arg): a defer
   must not free what on_panic's arg points to. */
void     goro_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* goro_main runs fn(arg) as a goroutine and returns its result on the calling
   thread: `int main(void) { return goro_main(body, NULL); }` makes the body
   a goroutine, as Go's main is.
   When: a main() (or a thread of your own) whose body talks to goroutines a
   lot (spawn + wait, channel round trips). Every hand-off between a plain
   thread and a goroutine is a futex sleep and a thread wake-up (a few us);
   between goroutines it is a context switch (~0.1 us): docs/runtime.md,
   "Goroutine 1, program threads and goro_main", has the numbers.
   Cost: one goroutine spawn and one wake-up of the caller at the end; the
   caller sleeps meanwhile, holding no processor.
   What changes: the body runs on scheduler threads like any goroutine, so
   pthread_self(), thread-locals and errno may change across blocking goro
   calls, and thread-directed signals go elsewhere; its goro_defer calls run
   when it returns (on goroutine 1 they would not).
   goro_exit() in fn ends the body, runs its defers, then goro_main calls
   goro_exit() on the caller: from main(), Go's Goexit in main (the other
   goroutines run on; when none is left, "no goroutines" fatal error, exit 2);
   on another plain thread, that thread ends. A panic in fn crashes the
   program like any goroutine's (exit 2). Called from inside a goroutine
   (fn included), or with fn NULL, it panics. */
int      goro_main(int (*fn)(void *arg), void *arg);

/* ------------------------------------------------------ channels and select */

/* Ownership: C has no garbage collector, so a channel is reference counted.
   Whoever may still use it must own a reference: a goroutine gets one
   through goro_opts.holds (released when it ends), plain code through
   goro_chan_retain. goro_chan_release drops one; the memory goes when the
   last is gone and no goroutine is parked on the channel (a parked waiter
   keeps it, as Go's GC would). Any operation after the last release panics
   with "use of released channel" (a recent release is always caught; with
   GORODEBUG=chanrelease=1 every one is, at the price of never reusing a
   released channel's memory). Elements are copied in and out by value;
   a send with elem == NULL sends the zero value (all bytes 0). */
goro_chan *goro_chan_make(size_t elem_size, size_t cap); /* refcount 1; NULL: elem_size * cap too big
                                                            (GORO_EINVAL) or no memory; never parks */
goro_chan *goro_chan_retain(goro_chan *c);               /* returns c */
void       goro_chan_release(goro_chan *c);              /* frees at zero references and no waiters */
void       goro_chan_send(goro_chan *c, const void *elem);    /* elem NULL: the zero value */
bool       goro_chan_recv(goro_chan *c, void *elem);     /* false: closed and drained, elem zeroed */
int        goro_chan_try_send(goro_chan *c, const void *elem);        /* 0 or GORO_EAGAIN */
int        goro_chan_try_recv(goro_chan *c, void *elem, bool *ok);    /* 0 or GORO_EAGAIN */
int        goro_chan_send_timeout(goro_chan *c, const void *elem, int64_t ns);
int        goro_chan_recv_timeout(goro_chan *c, void *elem, bool *ok, int64_t ns);
void       goro_chan_close(goro_chan *c);
size_t     goro_chan_len(goro_chan *c);
size_t     goro_chan_cap(goro_chan *c);

enum goro_dir { GORO_SEND = 1, GORO_RECV = 2 };
typedef struct goro_case {
    goro_chan    *chan;   /* NULL: never ready, as a nil channel in Go */
    enum goro_dir dir;
    void         *elem;   /* send: the value; recv: where it goes (may be NULL) */
    bool          ok;     /* recv: set false when the channel was closed */
} goro_case;
/* Index of the case that ran; -1 when timeout_ns == 0 (default) and none was
   ready, or when a positive timeout passed. */
int goro_select(goro_case *cases, size_t n, int64_t timeout_ns);

/* ------------------------------------------------------- sync and contexts */

/* Complete types so they can live on the stack or inside other structs; a
   zeroed object is ready to use, as in Go, except goro_sem, which (like
   x/sync's semaphore.NewWeighted) needs goro_sem_init for its capacity: any
   call on a goro_sem that was never initialised panics. The fields are
   private. */
typedef struct goro_mutex     { uint64_t _private[2]; } goro_mutex;
typedef struct goro_rwmutex   { uint64_t _private[6]; } goro_rwmutex;
typedef struct goro_waitgroup { uint64_t _private[2]; } goro_waitgroup;
typedef struct goro_once      { uint64_t _private[3]; } goro_once;
typedef struct goro_cond      { uint64_t _private[4]; } goro_cond;
typedef struct goro_sem       { uint64_t _private[6]; } goro_sem;

void goro_mutex_lock(goro_mutex *m);
void goro_mutex_unlock(goro_mutex *m);
bool goro_mutex_trylock(goro_mutex *m);                    /* true: acquired */

void goro_rwmutex_rlock(goro_rwmutex *m);
void goro_rwmutex_runlock(goro_rwmutex *m);
void goro_rwmutex_lock(goro_rwmutex *m);
void goro_rwmutex_unlock(goro_rwmutex *m);

void goro_waitgroup_add(goro_waitgroup *wg, int delta);
void goro_waitgroup_done(goro_waitgroup *wg);
void goro_waitgroup_wait(goro_waitgroup *wg);

void goro_once_do(goro_once *o, void (*fn)(void *), void *arg);

void goro_cond_wait(goro_cond *c, goro_mutex *m);
void goro_cond_signal(goro_cond *c);
void goro_cond_broadcast(goro_cond *c);

void goro_sem_init(goro_sem *s, int64_t n);                /* weighted, FIFO (x/sync/semaphore);
                                                              capacity n >= 0; weights are >= 0 */
void goro_sem_acquire(goro_sem *s, int64_t n);
bool goro_sem_try_acquire(goro_sem *s, int64_t n);         /* true: acquired */
void goro_sem_release(goro_sem *s, int64_t n);

typedef struct goro_ctx goro_ctx;                          /* Go's context.Context; refcounted */
goro_ctx  *goro_ctx_background(void);
goro_ctx  *goro_ctx_with_cancel(goro_ctx *parent);
goro_ctx  *goro_ctx_with_timeout(goro_ctx *parent, int64_t ns);
void       goro_ctx_cancel(goro_ctx *c);
goro_chan *goro_ctx_done(goro_ctx *c);    /* closed on cancel or deadline; use in select */
int        goro_ctx_err(goro_ctx *c);     /* 0, GORO_ECANCELED or GORO_ETIMEDOUT */
/* Go's ctx.Err().Error(): "context canceled", "context deadline exceeded", or NULL (not done). */
const char *goro_ctx_err_str(goro_ctx *c);
void       goro_ctx_release(goro_ctx *c); /* also cancels, like Go's defer cancel() */

/* --------------------------------------------------- I/O and blocking calls */

/* Each returns its result or a negative errno value: -ETIMEDOUT when timeout_ns passed, -EBADF for
   a descriptor goro_close closed (also while the call waited), -ECONNREFUSED, -EINVAL (a bad
   address string), ... errno is set as well, but only the return value is reliable in a goroutine.
   Addresses: "127.0.0.1:8080", "[::1]:0", "localhost:0", ":8080". */
int     goro_listen_tcp(const char *addr, int backlog);           /* fd or -errno */
int     goro_dial_tcp(const char *addr, int64_t timeout_ns);      /* fd or -errno */
int     goro_accept(int fd, int64_t timeout_ns);                  /* fd or -errno */
ssize_t goro_read(int fd, void *buf, size_t n, int64_t timeout_ns);  /* bytes (0: EOF) or -errno */
ssize_t goro_write(int fd, const void *buf, size_t n, int64_t timeout_ns); /* n (all of buf) or -errno */
int     goro_wait_fd(int fd, int events, int64_t timeout_ns);     /* ready poll(2) events (> 0) or -errno */
int     goro_close(int fd);                                       /* 0 or -errno; waiters get -EBADF */
/* Bracket a call that may block in the kernel or in another library (a
   blocking read, getaddrinfo, a foreign lock): in between the goroutine shows
   as "syscall" and, once the call has lasted a scheduler tick (~20 us), its
   processor is handed to other goroutines; exit takes a processor back. Read
   the call's errno before goro_syscall_exit, which may move you to another
   thread. Pair them on one goroutine and call nothing of goro's in between.
   On a plain thread they do nothing. */
void    goro_syscall_enter(void);
void    goro_syscall_exit(void);

/* ----------------------------------------------------------------- signals */

/* Go's signal.Notify: each listed signal arrives on c as its number, an int
   (c: goro_chan_make(sizeof(int), 1) or bigger; a signal that finds c full is
   dropped, as in Go). Usable in goro_select. goro_signal_notify(c, SIGTERM)
   or goro_signal_notify(c, SIGINT, SIGTERM, ...): the macro ends the list
   with 0 for goro_signal_notify_list (a 0 in the list also ends it).
   0, or GORO_EINVAL for a signal goro keeps (SIGSEGV, SIGBUS, SIGFPE,
   SIGILL, SIGURG) or that cannot be caught. See docs/observability.md. */
int  goro_signal_notify(goro_chan *c, int sig);
int  goro_signal_notify_list(goro_chan *c, int sig, ...);   /* 0-terminated */
#define goro_signal_notify(c, ...) goro_signal_notify_list((c), __VA_ARGS__, 0)
/* Go's signal.Stop: no more signals on c; a signal nobody wants any more
   gets its previous handling back. Call it before closing c. */
void goro_signal_stop(goro_chan *c);

/* -------------------------------------------------------- seeing goroutines */

size_t goro_stack(char *buf, size_t len, bool all);   /* runtime.Stack: debug=2 text */
int    goro_profile_write(FILE *f, int debug);        /* 0 gzipped pprof proto, 1 grouped, 2 every goroutine */
/* /debug/pprof/ over HTTP. addr follows goro_listen_tcp's rules, but the host must not be empty
   (-EINVAL for ":6060"): the server binds only where told, e.g. "localhost:0", "0.0.0.0:6060". */
int    goro_debug_serve(const char *addr);            /* the port, or -errno */
void   goro_debug_stop(void);
/* Sets (value != NULL) or removes (value NULL) the pprof label key of the
   calling goroutine, like Go's pprof.SetGoroutineLabels; both strings are
   copied. Goroutines it starts afterwards inherit its labels. Labels show in
   the debug=0 and debug=1 profiles (debug=2 headers stay Go's). key NULL, or
   an allocation failure, changes nothing. */
void   goro_label_set(const char *key, const char *value);

enum goro_log_level { GORO_LOG_DEBUG, GORO_LOG_INFO, GORO_LOG_WARN, GORO_LOG_ERROR };
void goro_log_write(enum goro_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* GORO_LOG(INFO, "x=%d", x): [MMDD/HHMMSS.mmm:INFO:gid-N:file.c:line] x=1 */
#define GORO_LOG(level, ...) goro_log_write(GORO_LOG_##level, __FILE__, __LINE__, __VA_ARGS__)

/* ----------------------------------------------- CPU, block and mutex profiles */

/* Go's pprof.StartCPUProfile: samples every thread's CPU time at 100 Hz
   (SIGPROF from per-thread CPU timers) with the running goroutine's labels,
   until goro_cpu_profile_stop writes the gzipped profile.proto to f. Returns
   0, GORO_EINVAL (f NULL), GORO_EAGAIN (already running: "cpu profiling
   already in use") or GORO_ENOMEM. Installs a SIGPROF handler (kept
   installed; SIGPROFs goro did not ask for go to the previous handler). */
int  goro_cpu_profile_start(FILE *f);
void goro_cpu_profile_stop(void);     /* writes the profile; no-op if not running */

/* Go's runtime.SetBlockProfileRate: on average one blocking event per rate
   nanoseconds spent blocked is recorded (events of rate ns or more always);
   1 records every event, <= 0 turns the profile off (the default). Covers
   waits on channels, select, goro_mutex, goro_rwmutex, goro_cond,
   goro_waitgroup and goro_sem. */
void goro_set_block_profile_rate(int64_t rate);
/* Go's runtime.SetMutexProfileFraction: on average 1/rate of contention
   events on goro_mutex/goro_rwmutex are recorded (0 off, the default;
   negative: no change). Returns the previous rate. */
int  goro_set_mutex_profile_fraction(int rate);
/* pprof.Lookup("block"/"mutex").WriteTo: 0 gzipped proto, >= 1 text. */
int  goro_block_profile_write(FILE *f, int debug);
int  goro_mutex_profile_write(FILE *f, int debug);

/* ------------------------------------------------------------- leak checks */

typedef struct goro_leak_opts {
    int64_t      timeout_ns;             /* how long to wait for goroutines to end; 0: 5 s */
    const char **ignore_top_functions;   /* NULL-terminated */
    const char **ignore_created_by;      /* NULL-terminated */
} goro_leak_opts;
typedef struct goro_leak_mark goro_leak_mark;
goro_leak_mark *goro_leak_mark_now(void);         /* NULL: no memory */
void            goro_leak_mark_free(goro_leak_mark *m);
/* Both return a count, not a GORO_E* code: the goroutines still alive after
   the timeout that were not alive at the mark (check) or are not the caller
   (verify_none); 0 means no leak. Each one's debug=2 trace goes to report
   (if not NULL). */
int  goro_leak_check(goro_leak_mark *m, const goro_leak_opts *o, FILE *report);
int  goro_leak_verify_none(const goro_leak_opts *o, FILE *report);
int  goro_leak_profile_write(FILE *f, int debug);   /* Go 1.26's goroutineleak profile (f may be
                                                       NULL); returns the count of provably
                                                       leaked goroutines */

/* ------------------------------------------------------------------- pools */

typedef struct goro_worker goro_worker;   /* embed in your own struct */
struct goro_worker {
    void *(*process)(goro_worker *w, void *payload);
    void  (*block_until_ready)(goro_worker *w);   /* NULL: always ready */
    void  (*interrupt)(goro_worker *w);           /* NULL: nothing to interrupt */
    void  (*terminate)(goro_worker *w);           /* NULL: nothing to release */
};
/* tunny's pool (docs/pools.md). Both objects below have one shape: close
   refuses new work (GORO_ECLOSED, also to callers already waiting) and
   waits for the work in flight; the object stays valid, every call on it
   returns GORO_ECLOSED (sizes read 0, a second close does nothing); free
   closes if needed and releases the memory, after which no call is allowed.

   Payload ownership: when process* returns 0, *result is yours and the
   payload is yours again. When it returns any other error (except
   GORO_EINVAL for a NULL pool), the payload is no longer yours: a worker
   may still be running the job (process_timed / process_ctx gave up). The
   discard hook then gets (payload, result, ctx) exactly once: on your
   goroutine before the call returns if no worker runs the job (result
   NULL), or on the worker when the abandoned job ends (its late result).
   Every hook call has happened when goro_pool_close returns. Without a hook
   a late result is dropped and the payload must stay valid until close.

   A panic in a job is not recovered: the program ends (tunny; recover in
   your own process function if you must). */
typedef struct goro_pool goro_pool;
/* NULL when n < 0 or ctor/fn is NULL, or when a worker could not be made (ctor returned NULL, no
   memory). Tell them apart by the arguments, not errno: starting and stopping workers may park. */
goro_pool *goro_pool_new(int n, goro_worker *(*ctor)(void *ctx), void *ctx);
goro_pool *goro_pool_new_func(int n, void *(*fn)(void *payload, void *ctx), void *ctx);
void    goro_pool_set_discard(goro_pool *p, void (*discard)(void *payload, void *result, void *ctx),
                              void *ctx);    /* set before the first process* call */
int     goro_pool_process(goro_pool *p, void *payload, void **result);
int     goro_pool_process_timed(goro_pool *p, void *payload, int64_t ns, void **result);
int     goro_pool_process_ctx(goro_pool *p, goro_ctx *c, void *payload, void **result);
void    goro_pool_set_size(goro_pool *p, int n);
int     goro_pool_size(goro_pool *p);
int64_t goro_pool_queue_length(goro_pool *p);
void    goro_pool_close(goro_pool *p);       /* refuses new work, waits for jobs in flight */
void    goro_pool_free(goro_pool *p);        /* closes if open, then frees; no call after it */

/* Bounded spawning (ants; the channel-token pattern done right). A task is
   fire-and-forget, so its panic is recovered: on_panic(msg, task arg) is
   called, or with on_panic NULL the message and the goroutine's trace go to
   stderr (ants' default). Pass goro_limiter_crash_on_panic instead to let a
   panic end the program, as in a pool. Either way the slot comes back. */
typedef struct goro_limiter goro_limiter;
goro_limiter *goro_limiter_new(int max, void (*on_panic)(const char *msg, void *arg)); /* NULL: max <= 0
                                                                       or no memory; never parks */
void goro_limiter_crash_on_panic(const char *msg, void *arg);    /* an on_panic value, never called */
int  goro_limiter_go(goro_limiter *l, goro_fn fn, void *arg);     /* waits for a slot; 0 or GORO_ECLOSED */
int  goro_limiter_try_go(goro_limiter *l, goro_fn fn, void *arg); /* GORO_EAGAIN when full */
int  goro_limiter_running(goro_limiter *l);
int  goro_limiter_waiting(goro_limiter *l);
void goro_limiter_tune(goro_limiter *l, int max);
void goro_limiter_wait(goro_limiter *l);                          /* until none is running */
void goro_limiter_close(goro_limiter *l);  /* refuses new work, waits for running tasks */
void goro_limiter_free(goro_limiter *l);   /* closes if open, then frees; no call after it */

/* clang-format on */

#ifdef __cplusplus
}
#endif
#endif /* GORO_H */
