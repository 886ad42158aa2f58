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
 * Fallible calls return 0 or a positive errno-valued code (GORO_E*).
 */
#ifndef GORO_H
#define GORO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ conventions */

#define GORO_US(x)    ((int64_t)(x) * 1000LL)
#define GORO_MS(x)    ((int64_t)(x) * 1000000LL)
#define GORO_SEC(x)   ((int64_t)(x) * 1000000000LL)
#define GORO_FOREVER  ((int64_t)-1)

#define GORO_ETIMEDOUT ETIMEDOUT
#define GORO_ECANCELED ECANCELED
#define GORO_ECLOSED   EPIPE
#define GORO_EAGAIN    EAGAIN
#define GORO_ENOMEM    ENOMEM
#define GORO_EINVAL    EINVAL

/* The name of a GORO_E* code ("timed out", "canceled", "closed", ...). */
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

uint64_t goro_go(goro_fn fn, void *arg);       /* the new goroutine's id; 0 and errno on failure */
uint64_t goro_go_opts(const goro_opts *opts, goro_fn fn, void *arg);
uint64_t goro_id(void);                        /* current goroutine id; O(1), no locks */
int      goro_count(void);                     /* live goroutines, like runtime.NumGoroutine */
void     goro_yield(void);                     /* runtime.Gosched */
void     goro_sleep(int64_t ns);
int64_t  goro_nanotime(void);                  /* monotonic */
void     goro_exit(void) __attribute__((noreturn)); /* runtime.Goexit: runs defers, ends the goroutine */
int      goro_maxprocs(int n);                 /* GOMAXPROCS: sets when n > 0, returns the previous */
void     goro_defer(void (*fn)(void *), void *arg); /* runs LIFO when the goroutine ends or panics */
void     goro_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ------------------------------------------------------ channels and select */

goro_chan *goro_chan_make(size_t elem_size, size_t cap); /* refcount 1; NULL and errno on failure */
goro_chan *goro_chan_retain(goro_chan *c);               /* returns c */
void       goro_chan_release(goro_chan *c);              /* frees at zero references and no waiters */
void       goro_chan_send(goro_chan *c, const void *elem);
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
   zeroed object is ready to use, as in Go. The fields are private. */
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

void goro_sem_init(goro_sem *s, int64_t n);                /* weighted, FIFO (x/sync/semaphore) */
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

int     goro_listen_tcp(const char *addr, int backlog);           /* "127.0.0.1:8080" or "[::1]:0"; fd or -1 */
int     goro_dial_tcp(const char *addr, int64_t timeout_ns);      /* fd or -1 */
int     goro_accept(int fd, int64_t timeout_ns);                  /* fd or -1 */
ssize_t goro_read(int fd, void *buf, size_t n, int64_t timeout_ns);
ssize_t goro_write(int fd, const void *buf, size_t n, int64_t timeout_ns);
int     goro_wait_fd(int fd, int events, int64_t timeout_ns);     /* POLLIN/POLLOUT readiness */
int     goro_close(int fd);                                       /* wakes its waiters with an error */
void    goro_syscall_enter(void);
void    goro_syscall_exit(void);

/* ----------------------------------------------------------------- signals */

/* Go's signal.Notify: each listed signal (a 0-terminated list) arrives on c
   as its number, an int (c: goro_chan_make(sizeof(int), 1) or bigger; a
   signal that finds c full is dropped, as in Go). Usable in goro_select.
   0, or GORO_EINVAL for a signal goro keeps (SIGSEGV, SIGBUS, SIGFPE,
   SIGILL, SIGURG) or that cannot be caught. See docs/observability.md. */
int  goro_signal_notify(goro_chan *c, int sig, ...);
/* Go's signal.Stop: no more signals on c; a signal nobody wants any more
   gets its previous handling back. Call it before closing c. */
void goro_signal_stop(goro_chan *c);

/* -------------------------------------------------------- seeing goroutines */

size_t goro_stack(char *buf, size_t len, bool all);   /* runtime.Stack: debug=2 text */
int    goro_profile_write(FILE *f, int debug);        /* 0 gzipped pprof proto, 1 grouped, 2 every goroutine */
int    goro_debug_serve(const char *addr);            /* the port, or -1 and errno */
void   goro_debug_stop(void);
void   goro_label_set(const char *key, const char *value);

enum goro_log_level { GORO_LOG_DEBUG, GORO_LOG_INFO, GORO_LOG_WARN, GORO_LOG_ERROR };
void goro_log_write(enum goro_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* GORO_LOG(INFO, "x=%d", x): [MMDD/HHMMSS.mmm:INFO:gid-N:file.c:line] x=1 */
#define GORO_LOG(level, ...) goro_log_write(GORO_LOG_##level, __FILE__, __LINE__, __VA_ARGS__)

/* ------------------------------------------------------------- leak checks */

typedef struct goro_leak_opts {
    int64_t      timeout_ns;             /* how long to wait for goroutines to end; 0: 5 s */
    const char **ignore_top_functions;   /* NULL-terminated */
    const char **ignore_created_by;      /* NULL-terminated */
} goro_leak_opts;
typedef struct goro_leak_mark goro_leak_mark;
goro_leak_mark *goro_leak_mark_now(void);
void            goro_leak_mark_free(goro_leak_mark *m);
int  goro_leak_check(goro_leak_mark *m, const goro_leak_opts *o, FILE *report);
int  goro_leak_verify_none(const goro_leak_opts *o, FILE *report);
int  goro_leak_profile_write(FILE *f, int debug);

/* ------------------------------------------------------------------- pools */

typedef struct goro_worker goro_worker;   /* embed in your own struct */
struct goro_worker {
    void *(*process)(goro_worker *w, void *payload);
    void  (*block_until_ready)(goro_worker *w);   /* NULL: always ready */
    void  (*interrupt)(goro_worker *w);           /* NULL: nothing to interrupt */
    void  (*terminate)(goro_worker *w);           /* NULL: nothing to release */
};
typedef struct goro_pool goro_pool;
goro_pool *goro_pool_new(int n, goro_worker *(*ctor)(void *ctx), void *ctx);
goro_pool *goro_pool_new_func(int n, void *(*fn)(void *payload, void *ctx), void *ctx);
int     goro_pool_process(goro_pool *p, void *payload, void **result);
int     goro_pool_process_timed(goro_pool *p, void *payload, int64_t ns, void **result);
int     goro_pool_process_ctx(goro_pool *p, goro_ctx *c, void *payload, void **result);
void    goro_pool_set_size(goro_pool *p, int n);
int     goro_pool_size(goro_pool *p);
int64_t goro_pool_queue_length(goro_pool *p);
void    goro_pool_close(goro_pool *p);
void    goro_pool_free(goro_pool *p);

typedef struct goro_limiter goro_limiter;
goro_limiter *goro_limiter_new(int max, void (*on_panic)(const char *msg, void *arg));
int  goro_limiter_go(goro_limiter *l, goro_fn fn, void *arg);     /* waits for a slot; 0 or GORO_ECLOSED */
int  goro_limiter_try_go(goro_limiter *l, goro_fn fn, void *arg); /* GORO_EAGAIN when full */
int  goro_limiter_running(goro_limiter *l);
int  goro_limiter_waiting(goro_limiter *l);
void goro_limiter_tune(goro_limiter *l, int max);
void goro_limiter_wait(goro_limiter *l);
void goro_limiter_close(goro_limiter *l);

#ifdef __cplusplus
}
#endif
#endif /* GORO_H */
