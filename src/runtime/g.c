/*
 * g.c - goroutine records: creation, ids, the registry of all records,
 * counts, defers, exit, and the records of plain threads.
 *
 * Ids come from one global counter: unique, increasing in global creation
 * order, never reused (a reused record gets a new id). Goroutine 1 is the
 * first thread that used the runtime.
 *
 * allgs: every record ever created (goroutine records live on top of their
 * stacks and are never unmapped; thread records are never freed), in a
 * chunked array that only grows, so readers index it without a lock:
 * goro__allg_count() is published with release after the slot is written.
 *
 * goro_count(): `live` counts goroutines from newproc (before goro_go returns)
 * until their exit, plus goroutine 1 while its thread lives.
 */
#include "sched.h"
#include "upcalls.h"
#include "gdb_tables.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

/* allgs: every record ever made, for observers (dumps, leak checks, counts).
 * Records are never freed, so an index stays valid forever. To keep the
 * registry at 4 bytes per record (parked goroutines are otherwise one page
 * each), an entry is a code: group << 6 | slot, where a group is a run of at
 * most 64 records at a fixed stride (a chunk of default stack slots) or a
 * single record (a custom-size stack, a plain thread's record).
 * Invariant: a code is published (allg_len, release) only after its group's
 * entry is written; both arrays grow in chunks that never move. */
#define ALLG_CHUNK 65536
#define ALLG_CHUNKS 4096
#define GROUP_SLOTS 64
#define GROUP_CHUNK 16384
#define GROUP_CHUNKS 4096

typedef struct allg_group {
    char *first;   /* the first record */
    size_t stride; /* bytes from one record to the next */
} allg_group;

static goro__lock allg_lock = GORO__LOCK_INIT;
static void *allg_chunks[ALLG_CHUNKS]; /* uint32_t[ALLG_CHUNK] each */
static _Atomic size_t allg_len;
static void *group_chunks[GROUP_CHUNKS]; /* allg_group[GROUP_CHUNK] each */
static uint32_t ngroups;
static _Atomic uint64_t goidgen;
static _Atomic int32_t live;

/* The chunk that holds entry i of a chunked array (allg_lock held),
   allocated on first use; chunks never move or go away. */
static void *chunk_for(size_t i, void **chunks, size_t nchunks, size_t per_chunk, size_t elem) {
    size_t c = i / per_chunk;
    if (c >= nchunks)
        goro__throw("too many goroutine records");
    if (!chunks[c]) {
        chunks[c] = calloc(per_chunk, elem);
        if (!chunks[c])
            goro__throw("out of memory growing allgs");
    }
    return chunks[c];
}

uint32_t goro__allg_group(goro__g *first, size_t stride) {
    goro__lock_acquire(&allg_lock);
    uint32_t id = ngroups;
    allg_group *chunk = chunk_for(id, group_chunks, GROUP_CHUNKS, GROUP_CHUNK, sizeof(allg_group));
    chunk[id % GROUP_CHUNK] = (allg_group){(char *)first, stride};
    ngroups = id + 1;
    goro__lock_release(&allg_lock);
    return id;
}

void goro__g_register(uint32_t group, uint32_t slot) {
    if (slot >= GROUP_SLOTS)
        goro__throw("goro__g_register: slot out of range");
    goro__lock_acquire(&allg_lock);
    size_t n = atomic_load_explicit(&allg_len, memory_order_relaxed);
    uint32_t *chunk = chunk_for(n, allg_chunks, ALLG_CHUNKS, ALLG_CHUNK, sizeof(uint32_t));
    chunk[n % ALLG_CHUNK] = group * GROUP_SLOTS + slot;
    atomic_store_explicit(&allg_len, n + 1, memory_order_release);
    goro__lock_release(&allg_lock);
}

size_t goro__allg_count(void) { return atomic_load_explicit(&allg_len, memory_order_acquire); }

goro__g *goro__allg_at(size_t i) {
    if (i >= goro__allg_count())
        return NULL;
    uint32_t code = ((const uint32_t *)allg_chunks[i / ALLG_CHUNK])[i % ALLG_CHUNK];
    uint32_t group = code / GROUP_SLOTS;
    const allg_group *gr =
        &((const allg_group *)group_chunks[group / GROUP_CHUNK])[group % GROUP_CHUNK];
    return (goro__g *)(gr->first + (size_t)(code % GROUP_SLOTS) * gr->stride);
}

/* allgs for the gdb extension (gdb_tables.h): it reads the arrays above. */
GORO__GDB_KEEP const goro__gdb_entry goro__gdb_allgs[] = {
    {"allgs.codes", (uintptr_t)allg_chunks},
    {"allgs.groups", (uintptr_t)group_chunks},
    {"allgs.len", (uintptr_t)&allg_len},
    {"allgs.codes_per_chunk", ALLG_CHUNK},
    {"allgs.group_slots", GROUP_SLOTS},
    {"allgs.groups_per_chunk", GROUP_CHUNK},
    {"allgs.group_size", sizeof(allg_group)},
    {"allgs.group_first", offsetof(allg_group, first)},
    {"allgs.group_stride", offsetof(allg_group, stride)},
    /* this file's path: the gdb extension takes goro's frames to be those
       under the directory above (src/) */
    {"srcfile", (uintptr_t)__FILE__},
    {NULL, 0},
};

void goro__live_add(int delta) { atomic_fetch_add_explicit(&live, delta, memory_order_relaxed); }

bool goro__g_scan_begin(goro__g *g, uint32_t *status_out) {
    for (;;) {
        uint32_t s = atomic_load_explicit(&g->status, memory_order_acquire);
        if (status_out)
            *status_out = s & ~(uint32_t)GORO__G_SCAN;
        if (s & GORO__G_SCAN) {
            goro__cpu_relax();
            continue; /* another observer */
        }
        if (s != GORO__G_WAITING && s != GORO__G_RUNNABLE)
            return false;
        if (g->is_thread)
            return false; /* threads sleep on a futex: no saved context */
        if (atomic_compare_exchange_weak_explicit(&g->status, &s, s | GORO__G_SCAN,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return true;
    }
}

void goro__g_scan_end(goro__g *g) {
    atomic_fetch_and_explicit(&g->status, ~(uint32_t)GORO__G_SCAN, memory_order_release);
}

bool goro__g_visible(goro__g *g, uint32_t status) {
    status &= ~(uint32_t)GORO__G_SCAN;
    if (g->is_g0 || __atomic_load_n(&g->system, __ATOMIC_RELAXED) || status == GORO__G_DEAD)
        return false;
    if (g->is_thread)
        return g->id == 1 ? true : status == GORO__G_WAITING;
    return status != GORO__G_IDLE;
}

/* ----------------------------------------------------------- threads */

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static goro__lock thread_free_lock = GORO__LOCK_INIT;
static goro__g *thread_free;

static void thread_exit(void *arg) {
    goro__g *g = arg;
    if (g->id == 1)
        goro__live_add(-1);
    atomic_store(&g->status, GORO__G_DEAD);
    goro__set_thread_g(NULL);
    goro__lock_acquire(&thread_free_lock);
    g->freelink = thread_free;
    thread_free = g;
    goro__lock_release(&thread_free_lock);
}

static void thread_key_init(void) { pthread_key_create(&thread_key, thread_exit); }

/* The record of the calling plain thread, created on first use. */
static goro__g *make_thread_record(uint64_t id) {
    pthread_once(&thread_key_once, thread_key_init);
    goro__lock_acquire(&thread_free_lock);
    goro__g *g = thread_free;
    if (g)
        thread_free = g->freelink;
    goro__lock_release(&thread_free_lock);
    bool fresh = g == NULL;
    if (fresh) {
        g = aligned_alloc(64, (sizeof(goro__g) + 63) & ~(size_t)63);
        if (!g)
            goro__throw("out of memory allocating a thread record");
    }
    memset(g, 0, sizeof *g);
    g->is_thread = true;
    g->id = id ? id : atomic_fetch_add(&goidgen, 1) + 1;
    g->tid = (pid_t)syscall(SYS_gettid);
    /* Goroutine 1 shows as running while its thread is outside the runtime;
       other threads appear only while they wait inside it. */
    atomic_store(&g->status, g->id == 1 ? GORO__G_RUNNING : GORO__G_IDLE);
#ifdef __SANITIZE_THREAD__
    g->tsan_fiber = NULL;
#endif
    goro__set_thread_g(g);
    pthread_setspecific(thread_key, g);
    if (fresh)
        goro__g_register(goro__allg_group(g, 0), 0);
    return g;
}

static goro__g *main_g;

/* Goroutine 1 as a goroutine (docs/runtime.md, "Goroutine 1"): the record
   of the code running on the process's main thread, whose stack is that
   thread's own [stack] mapping. goro__sched_adopt_main then makes the
   thread an M running it. Its record is not on its stack (the stack is not
   ours to carve), and it is never freed. */
static goro__g *make_main_goroutine(void) {
    goro__g *g = aligned_alloc(64, (sizeof(goro__g) + 63) & ~(size_t)63);
    if (!g)
        goro__throw("out of memory allocating goroutine 1");
    memset(g, 0, sizeof *g);
    g->id = atomic_fetch_add(&goidgen, 1) + 1;
    g->main_stack = true;
    g->tid = (pid_t)syscall(SYS_gettid);
    /* The whole mapping the stack may grow into: [top - limit, top). */
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *addr;
        size_t size;
        pthread_attr_getstack(&a, &addr, &size);
        g->stack_lo = addr;
        g->stack_hi = (char *)addr + size;
        g->stack_size = size;
        pthread_attr_destroy(&a);
    }
    g->asan_bottom = g->stack_lo;
    g->asan_size = g->stack_size;
    atomic_store(&g->status, GORO__G_RUNNING);
    goro__set_thread_g(g);
    goro__g_register(goro__allg_group(g, 0), 0);
    return g;
}

/* Whether goroutine 1 can be a goroutine: only on the process's main
   thread, whose stack outlives every other (returning from main ends the
   process on whichever thread it happens; a pthread's start routine
   returning on another thread would not). GORODEBUG=lockmain=1 keeps it a
   plain thread. */
static bool main_can_migrate(void) {
    return !goro__debug.lockmain && (pid_t)syscall(SYS_gettid) == getpid();
}

/* Called from goro__init on the first thread that uses the runtime. */
void goro__g_init_main(void) {
    if (main_can_migrate())
        main_g = make_main_goroutine();
    else
        main_g = make_thread_record(atomic_fetch_add(&goidgen, 1) + 1);
    goro__live_add(1);
}

goro__g *goro__main_goroutine(void) { return main_g; }

goro__g *goro__thread_record(void) {
    goro__init();
    goro__g *g = goro__getg_maybe();
    if (g)
        return g;
    return make_thread_record(0);
}

/* -------------------------------------------------------- goroutines */

static goro_chan **copy_holds(goro_chan *const *holds, goro__g *g) {
    size_t n = 0;
    while (holds[n])
        n++;
    if (n == 0)
        return NULL;
    goro_chan **h = malloc((n + 1) * sizeof *h);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[i] = holds[i];
        goro__upcalls.chan_hold(holds[i], g);
    }
    h[n] = NULL;
    return h;
}

uint64_t goro__newproc(const goro_opts *opts, goro_fn fn, void *arg, uintptr_t creator_pc,
                       bool system) {
    goro__init();
    if (!fn) {
        errno = EINVAL;
        return 0;
    }
    goro__g *parent = goro__getg();
    goro__g *g = goro__stack_alloc(opts ? opts->stack_size : 0, goro__getp());
    if (!g) {
        errno = ENOMEM;
        return 0;
    }
    g->fn = fn;
    g->arg = arg;
    g->gopc = creator_pc;
    g->parent_fn = parent->is_thread || parent->is_g0 ? NULL : parent->fn;
    g->parent_id = parent->is_g0 ? 0 : parent->id;
    /* Atomic: observers read it on records they have not pinned
       (goro__g_visible), which a reuse rewrites. */
    __atomic_store_n(&g->system, system, __ATOMIC_RELAXED);
    g->name = NULL;
    g->on_panic = NULL;
    g->holds = NULL;
    g->defers = NULL;
    g->panicking = false;
    g->panic_msg = NULL;
    g->waitobj = NULL;
    g->waiting = NULL;
    g->param = NULL;
    g->observe = NULL;
    atomic_store_explicit(&g->waitsince, 0, memory_order_relaxed);
    atomic_store_explicit(&g->waitreason, 0, memory_order_relaxed);
    g->timer.idx = -1;
    atomic_store_explicit(&g->timer.p, NULL, memory_order_relaxed);
    g->labels = parent->labels;
    if (g->labels)
        atomic_fetch_add(&g->labels->refs, 1);
    if (opts) {
        if (opts->name && !(g->name = strdup(opts->name))) {
            goro__stack_free(g, goro__getp());
            errno = ENOMEM;
            return 0;
        }
        g->on_panic = opts->on_panic;
        if (opts->holds)
            g->holds = copy_holds(opts->holds, g);
    }
    /* Observers (leak checks) read ids of records that may be reused under
       them; they re-check the status, but the word itself must be atomic. */
    uint64_t id = atomic_fetch_add_explicit(&goidgen, 1, memory_order_relaxed) + 1;
    __atomic_store_n(&g->id, id, __ATOMIC_RELAXED);
    if (!system)
        goro__live_add(1);
    goro__g_start(g);
    return id;
}

/* Releases what a dying goroutine owns (defers already ran). */
static void g_release(goro__g *g) {
    if (g->holds) {
        for (goro_chan **h = g->holds; *h; h++)
            goro__upcalls.chan_unhold(*h, g);
        free(g->holds);
        g->holds = NULL;
    }
    free(g->name);
    g->name = NULL;
    if (g->labels) {
        goro__upcalls.labels_release(g->labels);
        g->labels = NULL;
    }
    free(g->panic_msg);
    g->panic_msg = NULL;
    /* It leaves goro_count() once off its stack (sched.c, AFTER_EXIT). */
}

/* goro_exit on goroutine 1 (Go's runtime.Goexit in main): goroutine 1 ends
   but the program goes on until the other goroutines end; then it dies as
   Go's does. The first thread stays alive and keeps its signal mask, so a
   signal sent to the process (SIGTERM, SIGINT) still finds a thread that
   takes it: with pthread_exit the first thread became a zombie, and every
   scheduler thread blocks those signals, so the process ignored SIGTERM.
   The thread only polls the goroutine count (1 ms naps): it holds no P. */
static void main_goexit(goro__g *g) __attribute__((noreturn));
_Atomic int goro__main_goexited;

static void main_goexit(goro__g *g) {
    atomic_store(&goro__main_goexited, 1);
    goro__live_add(-1);
    atomic_store(&g->status, GORO__G_DEAD); /* dumps no longer list it */
    /* Known to the deadlock check as asleep, like a helper thread: if the
       goroutines left block for good, that is Go's "all goroutines are
       asleep - deadlock!". */
    goro__helper_thread_register();
    for (;;) {
        if (atomic_load_explicit(&live, memory_order_relaxed) <= 0) {
            static const char msg[] =
                "fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n";
            goro__write_all(2, msg, sizeof msg - 1);
            _exit(2);
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void goro__goexit(void) {
    goro__g *g = goro__getg();
    goro__run_defers(g);
    if (g->main_stack)
        atomic_store(&goro__main_goexited, 1); /* sched.c reports when the last one ends */
    if (g->is_thread) {
        if (g->id == 1)
            main_goexit(g);
        /* Another plain thread has no goroutine to end: end the thread. */
        pthread_exit(NULL);
    }
    g_release(g);
    goro__finish_exit(g);
}

void goro__g_run(goro__g *g) {
    *goro__errno_location() = 0;
    g->fn(g->arg);
    goro__goexit();
}

/* ------------------------------------------------------------ defers */

void goro__run_defers(goro__g *g) {
    goro__defer *d;
    while ((d = g->defers) != NULL) {
        g->defers = d->next;
        d->fn(d->arg);
        free(d);
    }
}

/* ------------------------------------------------------------ panics */

static void print_panic_value(int fd, const char *msg) {
    /* Go prints a string panic with every newline followed by a TAB. */
    const char *s = msg;
    for (;;) {
        const char *nl = strchr(s, '\n');
        if (!nl) {
            goro__write_all(fd, s, strlen(s));
            break;
        }
        goro__write_all(fd, s, (size_t)(nl - s) + 1);
        goro__write_all(fd, "\t", 1);
        s = nl + 1;
    }
}

static void print_trace_on_sysstack(void *arg) {
    goro__g *g = arg;
    goro__upcalls.traceback_print(2, g, goro__debug.traceback >= 2);
}

/* Symbolizing needs more stack than a goroutine has: use the system stack. */
static void print_trace(goro__g *g) { goro__systemstack(print_trace_on_sysstack, g); }

/* Ends the process after the panic line(s): a blank line, the goroutine's
   trace, exit status 2 as Go's; GOROTRACEBACK=crash aborts for a core. */
__attribute__((noreturn)) static void die_with_trace(goro__g *g) {
    goro__upcalls.crash_begin(); /* stops every other thread: nothing runs on meanwhile */
    goro__write_all(2, "\n\n", 2);
    print_trace(g);
    goro__up_crash_exit();
}

void goro__panic_msg(char *msg) {
    goro__g *g = goro__getg();
    if (g->panicking) {
        /* A panic while running the defers of a panic: Go prints the chain. */
        goro__write_all(2, "panic: ", 7);
        print_panic_value(2, g->panic_msg ? g->panic_msg : "");
        goro__write_all(2, " [recovered]\n\tpanic: ", 21);
        print_panic_value(2, msg);
        die_with_trace(g);
    }
    g->panicking = true;
    g->panic_msg = msg;
    goro__run_defers(g);
    if (g->on_panic && !g->is_thread) {
        g->on_panic(msg, g->arg);
        g->panicking = false;
        g_release(g);
        goro__finish_exit(g);
    }
    goro__write_all(2, "panic: ", 7);
    print_panic_value(2, msg);
    die_with_trace(g);
}

/* ------------------------------------------------------------ public */

GORO__NOINLINE uint64_t goro_go(goro_fn fn, void *arg) {
    return goro__newproc(NULL, fn, arg, (uintptr_t)__builtin_return_address(0), false);
}

GORO__NOINLINE uint64_t goro_go_opts(const goro_opts *opts, goro_fn fn, void *arg) {
    return goro__newproc(opts, fn, arg, (uintptr_t)__builtin_return_address(0), false);
}

uint64_t goro_id(void) {
    uint64_t id = goro__current_id_fast();
    if (GORO__LIKELY(id != 0))
        return id;
    goro__g *g = goro__getg();
    if (g->is_g0)
        return 0;
    return g->id;
}

int goro__live_count(void) {
    return atomic_load_explicit(&live, memory_order_relaxed) +
           atomic_load_explicit(&goro__sched.nthreads_shown, memory_order_relaxed);
}

int goro_count(void) {
    goro__init();
    /* Plain threads waiting inside the runtime appear in dumps as
       goroutines, so they count here too (profile total == goro_count). */
    int n = atomic_load_explicit(&live, memory_order_relaxed) +
            atomic_load_explicit(&goro__sched.nthreads_shown, memory_order_relaxed);
    return n < 1 ? 1 : n;
}

void goro_yield(void) {
    goro__init();
    goro__yield();
}

int64_t goro_nanotime(void) { return goro__nanotime(); }

void goro_sleep(int64_t ns) {
    goro__g *g = goro__getg();
    if (ns <= 0) {
        goro_yield();
        return;
    }
    goro__g_prepare_wait(g);
    goro__park(GORO__WAIT_SLEEP, NULL, NULL, NULL, goro__nanotime() + ns);
}

void goro_exit(void) {
    goro__getg();
    goro__goexit();
}

int goro_maxprocs(int n) {
    goro__init();
    if (n <= 0)
        return goro__maxprocs_setting();
    return goro__procresize(n);
}

void goro_defer(void (*fn)(void *), void *arg) {
    goro__g *g = goro__getg();
    goro__defer *d = malloc(sizeof *d);
    if (!d)
        goro__throw("out of memory in goro_defer");
    d->fn = fn;
    d->arg = arg;
    d->next = g->defers;
    g->defers = d;
}

void goro_panic(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = strdup("(panic message lost: out of memory)");
    va_end(ap);
    goro__panic_msg(msg);
}

const char *goro_strerror(int err) {
    if (err < 0 && err > -4096)
        err = -err; /* the I/O calls' -errno */
    switch (err) {
    case 0: return "ok";
    case GORO_ETIMEDOUT: return "timed out";
    case GORO_ECANCELED: return "context canceled";
    case GORO_ECLOSED: return "closed";
    case GORO_EAGAIN: return "would block";
    case GORO_ENOMEM: return "out of memory";
    case GORO_EINVAL: return "invalid argument";
    default: return strerror(err);
    }
}
