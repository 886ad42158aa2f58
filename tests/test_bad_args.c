/*
 * test_bad_args.c - every public call with bad arguments, each in a forked
 * child: it must answer with a clear error (its documented failure value and
 * errno) or a Go-style panic that names what went wrong, never a silent
 * success, a hang or a bare SIGSEGV.
 *
 * One row per misuse. A row's function runs in a child forked before the
 * runtime starts in the test process (goro_test_run_child); for an "error"
 * row it checks the result itself and the child exits 0; for a "panic" row
 * the child must exit with status 2 and its stderr must contain `want`
 * (Go's "panic: ..." or "fatal error: ..." line). Each row is its own
 * Criterion test (a parameterized test over the row index), so a failure
 * names the call.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "goro.h"
#include "goro_test.h"

/* In a child: fail (exit 1) with a message unless cond holds. */
#define BAD_EXPECT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bad_args: expected %s (errno %d: %s)\n", #cond, errno,                \
                    strerror(errno));                                                              \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* A call that must fail with -1 (or NULL, or 0) and errno e. */
#define BAD_FAILS(call, failed, e)                                                                 \
    do {                                                                                           \
        errno = 0;                                                                                 \
        BAD_EXPECT((call)failed);                                                                  \
        BAD_EXPECT(errno == (e));                                                                  \
    } while (0)

static void noop(void *arg) { (void)arg; }
static void *pool_fn(void *payload, void *ctx) {
    (void)ctx;
    return payload;
}

/* ------------------------------------------------------------ goroutines */

static void go_null_fn(void) { BAD_FAILS(goro_go(NULL, NULL), == 0, EINVAL); }
static void go_huge_stack(void) {
    BAD_FAILS(goro_go_opts(&(goro_opts){.stack_size = SIZE_MAX}, noop, NULL), == 0, ENOMEM);
}
static void defer_null(void) { goro_defer(NULL, NULL); }

/* -------------------------------------------------------------- channels */

static void chan_make_huge_elem(void) { BAD_FAILS(goro_chan_make(SIZE_MAX, 0), == NULL, EINVAL); }
static void chan_make_huge_buffer(void) {
    BAD_FAILS(goro_chan_make(sizeof(int), SIZE_MAX), == NULL, EINVAL);
}
static void chan_close_nil(void) { goro_chan_close(NULL); }
static void chan_close_twice(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 0);
    goro_chan_close(c);
    goro_chan_close(c);
}
static void chan_send_closed(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    goro_chan_close(c);
    int v = 1;
    goro_chan_send(c, &v);
}
static void chan_send_nil(void) {
    int v = 1;
    goro_chan_send(NULL, &v); /* blocks forever, as in Go: the only goroutine */
}
static void chan_nil_len_cap(void) {
    BAD_EXPECT(goro_chan_len(NULL) == 0);
    BAD_EXPECT(goro_chan_cap(NULL) == 0);
    goro_chan_release(NULL);
}
static void select_null_cases(void) { goro_select(NULL, 5, 0); }
static void select_bad_dir(void) {
    goro_chan *c = goro_chan_make(sizeof(int), 1);
    int v;
    goro_case cs[] = {{.chan = c, .dir = (enum goro_dir)7, .elem = &v}};
    goro_select(cs, 1, 0);
}

/* ------------------------------------------------------------------ sync */

static void mutex_unlock_unlocked(void) {
    goro_mutex m = {0};
    goro_mutex_unlock(&m);
}
static void rwmutex_runlock_unlocked(void) {
    goro_rwmutex m = {0};
    goro_rwmutex_runlock(&m);
}
static void rwmutex_unlock_unlocked(void) {
    goro_rwmutex m = {0};
    goro_rwmutex_unlock(&m);
}
static void waitgroup_negative(void) {
    goro_waitgroup wg = {0};
    goro_waitgroup_add(&wg, -1);
}
static void cond_wait_unlocked(void) {
    goro_cond c = {0};
    goro_mutex m = {0};
    goro_cond_wait(&c, &m);
}
static void sem_zeroed(void) {
    goro_sem s = {0};
    goro_sem_acquire(&s, 1);
}
static void sem_negative_weight(void) {
    goro_sem s;
    goro_sem_init(&s, 4);
    goro_sem_acquire(&s, -1);
}
static void sem_release_unheld(void) {
    goro_sem s;
    goro_sem_init(&s, 4);
    goro_sem_release(&s, 1);
}
static void ctx_nil_parent(void) { goro_ctx_with_cancel(NULL); }

/* ------------------------------------------------------------------- I/O */

static void io_bad_descriptors(void) {
    char b[4];
    BAD_EXPECT(goro_read(-1, b, sizeof b, 0) == -EBADF);
    BAD_EXPECT(goro_write(-1, b, sizeof b, 0) == -EBADF);
    BAD_EXPECT(goro_accept(-1, 0) == -EBADF);
    BAD_EXPECT(goro_wait_fd(-1, POLLIN, 0) == -EBADF);
    BAD_EXPECT(goro_close(-1) == -EBADF);
}
static void io_bad_events(void) { BAD_EXPECT(goro_wait_fd(0, 0, 0) == -EINVAL); }
static void io_bad_addresses(void) {
    BAD_EXPECT(goro_listen_tcp(NULL, 1) == -EINVAL);
    BAD_EXPECT(goro_listen_tcp("no port", 1) == -EINVAL);
    BAD_EXPECT(goro_dial_tcp(NULL, 0) == -EINVAL);
    BAD_EXPECT(goro_dial_tcp("127.0.0.1:99999", 0) == -EINVAL);
}

/* ------------------------------------------------------ seeing goroutines */

static void observe_bad_args(void) {
    BAD_EXPECT(goro_stack(NULL, 0, true) == 0);
    BAD_EXPECT(goro_profile_write(NULL, 1) == EINVAL);
    BAD_EXPECT(goro_debug_serve(NULL) == -EINVAL);
    BAD_EXPECT(goro_debug_serve("no port") == -EINVAL);
    goro_label_set(NULL, "v"); /* ignored */
    BAD_EXPECT(goro_strerror(123456) != NULL);
}
static void leak_bad_args(void) {
    goro_leak_mark_free(NULL);
    BAD_EXPECT(goro_leak_check(NULL, NULL, NULL) == 0); /* no mark: nothing is new */
    BAD_EXPECT(goro_leak_profile_write(NULL, 1) == 0);
}

/* ----------------------------------------------------------------- pools */

static void pool_bad_new(void) {
    BAD_FAILS(goro_pool_new_func(-1, pool_fn, NULL), == NULL, EINVAL); /* 0 workers is valid */
    BAD_FAILS(goro_pool_new_func(1, NULL, NULL), == NULL, EINVAL);
    BAD_FAILS(goro_pool_new(-1, NULL, NULL), == NULL, EINVAL);
}
static void pool_process_null(void) {
    void *r;
    BAD_EXPECT(goro_pool_process(NULL, NULL, &r) == EINVAL);
}
static void limiter_bad_new(void) { BAD_FAILS(goro_limiter_new(0, NULL), == NULL, EINVAL); }
static void limiter_go_null(void) {
    goro_limiter *l = goro_limiter_new(1, NULL);
    BAD_EXPECT(l != NULL);
    BAD_EXPECT(goro_limiter_go(l, NULL, NULL) == EINVAL);
    BAD_EXPECT(goro_limiter_go(NULL, noop, NULL) == EINVAL);
}

/* ------------------------------------------------------------------ table */

typedef struct bad_row {
    const char *name;
    void (*fn)(void);
    const char
        *want; /* NULL: fn checks a clear error itself (exit 0); else exit 2 and this in stderr */
} bad_row;

static const bad_row rows[] = {
    {"goro_go(NULL)", go_null_fn, NULL},
    {"goro_go_opts(stack_size SIZE_MAX)", go_huge_stack, NULL},
    /* goro_exit on goroutine 1 (the process's first thread) is checked in
       test_crash.c (crash::main_goexit_*), where main really is the first
       thread of a program. */
    {"goro_defer(NULL)", defer_null, NULL}, /* ignored */
    {"goro_chan_make(SIZE_MAX, 0)", chan_make_huge_elem, NULL},
    {"goro_chan_make(4, SIZE_MAX)", chan_make_huge_buffer, NULL},
    {"goro_chan_close(NULL)", chan_close_nil, "panic: close of nil channel"},
    {"goro_chan_close twice", chan_close_twice, "panic: close of closed channel"},
    {"goro_chan_send on closed", chan_send_closed, "panic: send on closed channel"},
    {"goro_chan_send(NULL)", chan_send_nil, "fatal error: all goroutines are asleep - deadlock!"},
    {"goro_chan_len/cap/release(NULL)", chan_nil_len_cap, NULL},
    {"goro_select(NULL, 5, 0)", select_null_cases, "panic: goro_select: cases is NULL"},
    {"goro_select bad direction", select_bad_dir,
     "panic: goro_select: case 0 has an invalid direction"},
    {"goro_mutex_unlock unlocked", mutex_unlock_unlocked, "sync: unlock of unlocked mutex"},
    {"goro_rwmutex_runlock unlocked", rwmutex_runlock_unlocked,
     "sync: RUnlock of unlocked RWMutex"},
    {"goro_rwmutex_unlock unlocked", rwmutex_unlock_unlocked, "sync: Unlock of unlocked RWMutex"},
    {"goro_waitgroup_add(-1)", waitgroup_negative, "panic: sync: negative WaitGroup counter"},
    {"goro_cond_wait unlocked", cond_wait_unlocked, "sync: unlock of unlocked mutex"},
    {"goro_sem zeroed", sem_zeroed,
     "panic: sync: goro_sem_acquire: goro_sem used before goro_sem_init"},
    {"goro_sem_acquire(-1)", sem_negative_weight,
     "panic: sync: goro_sem_acquire with negative weight"},
    {"goro_sem_release unheld", sem_release_unheld, "panic: semaphore: released more than held"},
    {"goro_ctx_with_cancel(NULL)", ctx_nil_parent, "cannot create context from nil parent"},
    {"I/O on bad descriptors", io_bad_descriptors, NULL},
    {"goro_wait_fd(no events)", io_bad_events, NULL},
    {"listen/dial bad addresses", io_bad_addresses, NULL},
    {"stack/profile/debug_serve/label", observe_bad_args, NULL},
    {"leak checks", leak_bad_args, NULL},
    {"goro_pool_new bad size/fn", pool_bad_new, NULL},
    {"goro_pool_process(NULL)", pool_process_null, NULL},
    {"goro_limiter_new(0)", limiter_bad_new, NULL},
    {"goro_limiter_go NULL", limiter_go_null, NULL},
};
#define NROWS (sizeof rows / sizeof rows[0])

/* The row index only: Criterion copies parameters into the test process,
   where pointers into this binary may not be valid. */
ParameterizedTestParameters(bad_args, call) {
    static size_t idx[NROWS];
    for (size_t i = 0; i < NROWS; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, NROWS);
}

ParameterizedTest(size_t *i, bad_args, call, .timeout = 30) {
    const bad_row *r = &rows[*i];
    static char out[1 << 16];
    int st = goro_test_run_child_threaded(r->fn, out, sizeof out); /* skipped under TSan */
    cr_assert(WIFEXITED(st), "%s: killed by signal %d, not a clear error or panic:\n%s", r->name,
              WIFSIGNALED(st) ? WTERMSIG(st) : 0, out);
    if (r->want == NULL) {
        cr_assert_eq(WEXITSTATUS(st), 0, "%s:\n%s", r->name, out);
    } else {
        cr_assert_eq(WEXITSTATUS(st), 2, "%s: exit %d, want 2:\n%s", r->name, WEXITSTATUS(st), out);
        cr_assert(strstr(out, r->want) != NULL, "%s: no \"%s\" in:\n%s", r->name, r->want, out);
    }
}
