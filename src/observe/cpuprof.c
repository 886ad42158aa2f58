/*
 * cpuprof.c - the CPU profile: goro_cpu_profile_start/stop (Go's
 * pprof.StartCPUProfile/StopCPUProfile) and /debug/pprof/profile?seconds=N.
 *
 * Sampling (as Go on Linux since 1.18, runtime/os_linux.go): one POSIX
 * timer per thread on that thread's own CPU clock (timer_create on the
 * thread CPU clock of its tid, SIGEV_THREAD_ID), so SIGPROF lands on the
 * thread that spent the time, 100 times per CPU second, and an idle thread
 * costs nothing. The process-wide setitimer(ITIMER_PROF) Go used before
 * sends the signal to whichever thread the kernel picks, which biases the
 * profile. Every thread of the process is covered, goro's schedulers and
 * plain threads alike: the profile writer thread lists procfs self/task
 * every 10 ms (a few microseconds for tens of threads) and gives each new
 * thread a timer, so a thread's first 10 ms or less may go unsampled.
 *
 * The signal handler (async-signal-safe: no allocation, no lock, nothing a
 * goroutine may hold) takes the interrupted registers from the ucontext,
 * copies up to CPU_WINDOW bytes of the stack above the stack pointer with
 * process_vm_readv (a read that stops at the first unmapped page instead of
 * faulting), copies the running goroutine's pprof labels (and its name, as
 * the goroutine profile shows it), and publishes all of it in a free slot of
 * a preallocated slot array. The writer thread drains the slots every 10 ms
 * and unwinds each copy with the same CFI unwinder as every other goro
 * stack (unwind.c), reading only inside the copy. It is the stack copy, not
 * a frame-pointer walk in the handler, because user code built with the
 * compiler's defaults (-O2) has no frame pointers: a frame-pointer walk
 * would lose the callers of exactly the functions that burn CPU. Frames
 * more than CPU_WINDOW bytes above the interrupted one are cut.
 *
 * What a sample shows: every frame, goro's own included. Time the
 * scheduler spends (switching, stealing, parking) is real CPU and appears as
 * goro__* frames, as Go's profiles show runtime.*; a goroutine's frames are
 * its own stack, so goro frames never stand in for them.
 *
 * Slot protocol (the lock-free part): state FREE -> FILLING by a handler's
 * CAS (one handler owns the slot), FILLING -> READY by that handler with a
 * release store after the data is written; the writer thread alone moves
 * READY -> FREE after an acquire load and reading the data. A handler that
 * finds no free slot drops the sample and counts it (cp.lost).
 *
 * Stopping: cp.on is cleared (handlers return at once), the timers are
 * deleted, the writer waits until no handler is inside (cp.inflight), drains
 * the last slots, and the proto is written. The SIGPROF handler stays
 * installed (a signal already queued must not kill the process); while
 * profiling is off it passes foreign SIGPROFs to the handler installed
 * before goro's.
 *
 * Locks: api_mu serializes start/stop. The writer's timer table and sample
 * set belong to the writer thread until it is joined.
 */
#include "profiles.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "debug_registry.h"

#define CPU_HZ 100
#define CPU_PERIOD_NS (1000000000LL / CPU_HZ)
#define CPU_NSLOTS 64
#define CPU_WINDOW (32 * 1024)
#define CPU_LABEL_BYTES 512
#define CPU_MAX_LABELS 16
#define CPU_TAG 0x676f726f /* sigev_value of our timers: "goro" */
#define CPU_PAGE 4096

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct cpu_slot {
    _Atomic uint32_t state;
    uint32_t nstack;
    uint32_t nlabels;
    uint32_t ticks; /* 1 + the timer's overruns: periods this sample stands for */
    goro__regs regs;
    uintptr_t sp;
    char labels[CPU_LABEL_BYTES]; /* "key\0value\0" pairs */
    char stack[CPU_WINDOW];
} cpu_slot;

typedef struct cpu_timer {
    pid_t tid;
    timer_t timer;
    bool seen;
} cpu_timer;

static struct {
    _Atomic int on;
    _Atomic int inflight;
    _Atomic uint64_t lost;
    _Atomic uint32_t hint;
    _Atomic int64_t handler_ns; /* time spent in the handler (its own cost) */
    _Atomic int64_t samples;
    int64_t writer_ns; /* the writer thread's CPU time, at its end */
    cpu_slot *slots;
    struct sigaction prev;
    bool installed;
    /* the writer */
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    cpu_timer *timers;
    size_t ntimers, timers_cap;
    goro__sset *set;
    FILE *out;
    int64_t start_ns;
} cp = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER;

/* --------------------------------------------------------- the handler */

/* Copies [sp, sp + CPU_WINDOW) into dst as far as it is mapped, one page
   per iovec so that a partial read ends exactly at the first hole. */
static uint32_t copy_stack(uintptr_t sp, size_t len, char *dst) {
    struct iovec local = {dst, len};
    struct iovec remote[CPU_WINDOW / CPU_PAGE + 1];
    int n = 0;
    uintptr_t p = sp, end = sp + len;
    while (p < end) {
        uintptr_t next = (p & ~(uintptr_t)(CPU_PAGE - 1)) + CPU_PAGE;
        if (next > end)
            next = end;
        remote[n].iov_base = (void *)p;
        remote[n++].iov_len = next - p;
        p = next;
    }
    long k = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, remote, (long)n, 0L);
    return k > 0 ? (uint32_t)k : 0;
}

static size_t put_str(char *buf, size_t at, const char *s) {
    size_t k = 0;
    while (s[k])
        k++;
    if (at + k + 1 > CPU_LABEL_BYTES)
        return (size_t)-1;
    memcpy(buf + at, s, k + 1);
    return at + k + 1;
}

/* The labels a profile shows for g (its pprof labels, then its name as the
   label "name" unless it has one), copied into the slot. */
static void copy_labels(cpu_slot *s, goro__g *g) {
    s->nlabels = 0;
    if (!g || g->is_g0)
        return;
    goro__labels *l = g->labels;
    size_t at = 0;
    bool has_name = false;
    for (int i = 0; l && i < l->n && s->nlabels < CPU_MAX_LABELS; i++) {
        size_t a = put_str(s->labels, at, l->kv[i].key);
        size_t b = a == (size_t)-1 ? a : put_str(s->labels, a, l->kv[i].value);
        if (b == (size_t)-1)
            break;
        has_name |= strcmp(l->kv[i].key, "name") == 0;
        at = b;
        s->nlabels++;
    }
    if (g->name && !has_name && s->nlabels < CPU_MAX_LABELS) {
        size_t a = put_str(s->labels, at, "name");
        size_t b = a == (size_t)-1 ? a : put_str(s->labels, a, g->name);
        if (b != (size_t)-1)
            s->nlabels++;
    }
}

static void record(void *ucv, int overrun) {
    uint32_t start = atomic_fetch_add_explicit(&cp.hint, 1, memory_order_relaxed);
    cpu_slot *s = NULL;
    for (uint32_t i = 0; i < CPU_NSLOTS && !s; i++) {
        cpu_slot *c = &cp.slots[(start + i) % CPU_NSLOTS];
        uint32_t want = SLOT_FREE;
        if (atomic_compare_exchange_strong_explicit(&c->state, &want, SLOT_FILLING,
                                                    memory_order_acquire, memory_order_relaxed))
            s = c;
    }
    if (!s) {
        atomic_fetch_add_explicit(&cp.lost, 1, memory_order_relaxed);
        return;
    }
    s->ticks = 1 + (uint32_t)(overrun > 0 ? overrun : 0);
    goro__regs_from_ucontext(ucv, &s->regs);
    s->sp = s->regs.r[GORO__REG_SP];
    /* On a goroutine's own stack, only up to its top (usually a few
       hundred bytes, not the whole window). */
    goro__g *g = goro__getg_maybe();
    size_t len = CPU_WINDOW;
    if (g && !g->is_g0 && !g->is_thread && s->sp >= (uintptr_t)g->stack_lo &&
        s->sp < (uintptr_t)g->stack_hi && (uintptr_t)g->stack_hi - s->sp < len)
        len = (uintptr_t)g->stack_hi - s->sp;
    s->nstack = copy_stack(s->sp, len, s->stack);
    copy_labels(s, g);
    atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
}

static void prof_handler(int sig, siginfo_t *si, void *ucv) {
    int saved = errno;
    atomic_fetch_add_explicit(&cp.inflight, 1, memory_order_acq_rel);
    bool ours = si && si->si_code == SI_TIMER && si->si_value.sival_int == CPU_TAG;
    if (ours && atomic_load_explicit(&cp.on, memory_order_acquire)) {
        int64_t t0 = goro__nanotime();
        record(ucv, si->si_overrun);
        atomic_fetch_add_explicit(&cp.handler_ns, goro__nanotime() - t0, memory_order_relaxed);
        atomic_fetch_add_explicit(&cp.samples, 1, memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&cp.inflight, 1, memory_order_acq_rel);
    errno = saved;
    if (!ours) {
        /* someone else's SIGPROF (their own setitimer): theirs to handle */
        if (cp.prev.sa_flags & SA_SIGINFO) {
            if (cp.prev.sa_sigaction)
                cp.prev.sa_sigaction(sig, si, ucv);
        } else if (cp.prev.sa_handler != SIG_DFL && cp.prev.sa_handler != SIG_IGN) {
            cp.prev.sa_handler(sig);
        }
    }
}

/* ---------------------------------------------------------- the writer */

/* The CPU clock of thread tid (what pthread_getcpuclockid gives for a
   pthread): per-thread, scheduler time. */
static clockid_t thread_clock(pid_t tid) { return (clockid_t)((~(unsigned)tid) << 3) | 6; }

static void timer_add(pid_t tid) {
    if (cp.ntimers == cp.timers_cap) {
        size_t c = cp.timers_cap ? cp.timers_cap * 2 : 64;
        cpu_timer *n = realloc(cp.timers, c * sizeof *n);
        if (!n)
            return;
        cp.timers = n;
        cp.timers_cap = c;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_value.sival_int = CPU_TAG;
    sev._sigev_un._tid = tid;
    timer_t t;
    if (timer_create(thread_clock(tid), &sev, &t) != 0)
        return; /* the thread is gone already */
    /* The first tick at a random point of the period, so that threads
       started together do not tick together (as Go spreads them). */
    long first = 1 + (long)(goro__fastrand() % (uint32_t)CPU_PERIOD_NS);
    struct itimerspec its = {.it_interval = {0, CPU_PERIOD_NS}, .it_value = {0, first}};
    if (timer_settime(t, 0, &its, NULL) != 0) {
        timer_delete(t);
        return;
    }
    cp.timers[cp.ntimers++] = (cpu_timer){tid, t, true};
}

/* Gives every thread of the process a timer; drops those of threads gone. */
static void scan_threads(void) {
    for (size_t i = 0; i < cp.ntimers; i++)
        cp.timers[i].seen = false;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        pid_t tid = (pid_t)atoi(e->d_name);
        bool known = false;
        for (size_t i = 0; i < cp.ntimers && !known; i++)
            if (cp.timers[i].tid == tid)
                known = cp.timers[i].seen = true;
        if (!known)
            timer_add(tid);
    }
    closedir(d);
    size_t k = 0;
    for (size_t i = 0; i < cp.ntimers; i++) {
        if (cp.timers[i].seen)
            cp.timers[k++] = cp.timers[i];
        else
            timer_delete(cp.timers[i].timer);
    }
    cp.ntimers = k;
}

/* Unwinds and counts every READY slot. */
static void drain(void) {
    uintptr_t pcs[GORO__PROF_DEPTH];
    for (int i = 0; i < CPU_NSLOTS; i++) {
        cpu_slot *s = &cp.slots[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_READY)
            continue;
        goro__mem mem = {.n = 1};
        mem.r[0] = (goro__memrange){s->sp, s->sp + s->nstack, s->stack};
        int nt = 0;
        int64_t gap = 0;
        int n = goro__unwind(&s->regs, true, &mem, pcs, GORO__PROF_DEPTH, NULL, 0, &nt, &gap);
        if (n == 0) {
            pcs[0] = s->regs.r[GORO__REG_PC] + 1;
            n = 1;
        }
        goro__kv kv[CPU_MAX_LABELS];
        int nkv = 0;
        const char *p = s->labels;
        for (uint32_t k = 0; k < s->nlabels; k++) {
            kv[nkv].key = p;
            p += strlen(p) + 1;
            kv[nkv++].value = p;
            p += strlen(p) + 1;
        }
        /* sorted by key, as label sets are (the name may be out of place) */
        for (int a = 1; a < nkv; a++)
            for (int b = a; b > 0 && strcmp(kv[b - 1].key, kv[b].key) > 0; b--) {
                goro__kv t = kv[b];
                kv[b] = kv[b - 1];
                kv[b - 1] = t;
            }
        int64_t v[2] = {s->ticks, (int64_t)s->ticks * CPU_PERIOD_NS};
        if (cp.set)
            (void)goro__sset_add(cp.set, pcs, n, kv, nkv, v);
        atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
    }
}

static void *writer_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "goro-cpuprof");
    pthread_mutex_lock(&cp.mu);
    while (!cp.stop) {
        pthread_mutex_unlock(&cp.mu);
        scan_threads();
        drain();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&cp.mu);
        if (!cp.stop)
            pthread_cond_timedwait(&cp.cv, &cp.mu, &ts);
    }
    pthread_mutex_unlock(&cp.mu);
    atomic_store_explicit(&cp.on, 0, memory_order_release);
    for (size_t i = 0; i < cp.ntimers; i++)
        timer_delete(cp.timers[i].timer);
    cp.ntimers = 0;
    /* a handler that saw cp.on set may still be filling a slot */
    while (atomic_load_explicit(&cp.inflight, memory_order_acquire) != 0)
        sched_yield();
    drain();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    cp.writer_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return NULL;
}

/* ------------------------------------------------------------- the API */

/* fork: the child has neither the writer thread nor the timers (POSIX
   timers are not inherited); it starts with no profile running. */
static void atfork_child(void) {
    atomic_store(&cp.on, 0);
    atomic_store(&cp.inflight, 0);
    cp.out = NULL;
    cp.set = NULL; /* the parent's, not ours to free */
    cp.timers = NULL;
    cp.ntimers = cp.timers_cap = 0;
    pthread_mutex_init(&api_mu, NULL);
    pthread_mutex_init(&cp.mu, NULL);
    pthread_cond_init(&cp.cv, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_install(void) { pthread_atfork(NULL, NULL, atfork_child); }

int goro_cpu_profile_start(FILE *f) {
    if (!f)
        return GORO_EINVAL;
    goro__init();
    pthread_once(&atfork_once, atfork_install);
    pthread_mutex_lock(&api_mu);
    if (cp.out) {
        pthread_mutex_unlock(&api_mu);
        return GORO_EAGAIN;
    }
    int err = ENOMEM;
    if (!cp.slots)
        cp.slots = calloc(CPU_NSLOTS, sizeof *cp.slots); /* kept: handlers may still look */
    cp.set = goro__sset_new(2);
    if (!cp.slots || !cp.set)
        goto fail;
    if (!cp.installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = prof_handler;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGPROF, &sa, &cp.prev) != 0) {
            err = errno;
            goto fail;
        }
        cp.installed = true;
    }
    atomic_store(&cp.lost, 0);
    atomic_store(&cp.handler_ns, 0);
    atomic_store(&cp.samples, 0);
    cp.writer_ns = 0;
    cp.stop = false;
    cp.out = f;
    cp.start_ns = goro__nanotime();
    atomic_store_explicit(&cp.on, 1, memory_order_release);
    scan_threads(); /* the threads running now are sampled from here on */
    /* the writer must not take signals meant for the application */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGPROF);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&cp.writer, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        atomic_store(&cp.on, 0);
        cp.out = NULL;
        goto fail;
    }
    pthread_mutex_unlock(&api_mu);
    return 0;
fail:
    goro__sset_free(cp.set);
    cp.set = NULL;
    pthread_mutex_unlock(&api_mu);
    return err;
}

void goro_cpu_profile_stop(void) {
    pthread_mutex_lock(&api_mu);
    if (!cp.out) {
        pthread_mutex_unlock(&api_mu);
        return;
    }
    pthread_mutex_lock(&cp.mu);
    cp.stop = true;
    pthread_cond_signal(&cp.cv);
    pthread_mutex_unlock(&cp.mu);
    bool on_goroutine = goro__getm() != NULL;
    if (on_goroutine)
        goro_syscall_enter(); /* a short wait; do not hold a processor */
    pthread_join(cp.writer, NULL);
    if (on_goroutine)
        goro_syscall_exit();
    goro__pmeta m = {.nvalues = 2,
                     .type = {"samples", "cpu"},
                     .unit = {"count", "nanoseconds"},
                     .period_type = "cpu",
                     .period_unit = "nanoseconds",
                     .period = CPU_PERIOD_NS,
                     .duration_nanos = goro__nanotime() - cp.start_ns};
    (void)goro__sset_write_proto(cp.set, &m, cp.out);
    fflush(cp.out);
    goro__sset_free(cp.set);
    free(cp.timers);
    cp.timers = NULL;
    cp.timers_cap = 0;
    cp.set = NULL;
    cp.out = NULL;
    pthread_mutex_unlock(&api_mu);
}

void goro__cpuprof_stats(goro__cpuprof_cost *c) {
    c->samples = atomic_load(&cp.samples);
    c->lost = (int64_t)atomic_load(&cp.lost);
    c->handler_ns = atomic_load(&cp.handler_ns);
    c->writer_ns = cp.writer_ns;
}

/* ------------------------------------------------- the debug endpoint */

static int profile_start(FILE *f) { return goro_cpu_profile_start(f); }

static const goro__debug_profile cpu_profile = {
    .name = "profile",
    .desc = "CPU profile. You can specify the duration in the seconds GET parameter. After you get "
            "the profile file, use the go tool pprof command to investigate the profile.",
    .timed_start = profile_start,
    .timed_stop = goro_cpu_profile_stop,
    .default_seconds = 30,
    .listed = true,
};

void goro__cpuprof_register(void) { goro__debug_register_profile(&cpu_profile); }
