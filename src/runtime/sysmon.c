/*
 * sysmon.c - the monitor thread (Go's sysmon).
 *
 * Started with the runtime. It watches three things:
 *
 * - Syscalls. While some goroutine is inside a syscall bracket it wakes
 *   every 20us (backing off to 10ms when nothing happens) and retakes Ps that
 *   sat in a syscall for a whole tick (goro__retake in sched.c).
 *
 * - Hogs. C cannot preempt a goroutine safely, so a goroutine that runs for
 *   long without a goro call (a computation, a plain blocking system call,
 *   goroutine 1 blocked in read(2) or pause(2)) keeps its P, and whatever
 *   waits behind it on that P would wait as long. A P whose switch count
 *   has not moved for a whole tick (HOG_TICK_NS) is a hog: its local queue,
 *   runnext and due timers are moved to the global queue (goro__unhog),
 *   where the Ps that do switch find them; a hog blocked in the kernel
 *   gets a P lent in its place (goro__procs_lend, one per tick, up to
 *   MAX_LENT beyond the program's setting), as a goroutine in a system
 *   call has its P handed on, and when every P has computed without a
 *   switch for ALL_HOGS_NS one more is lent (watch_hogs has the rule). This
 *   is what Go's preemption buys a Go program at a coarser grain: a
 *   goroutine that never yields delays what waits behind it by about a
 *   tick, everything by about a second at most, never for good
 *   (docs/runtime.md).
 *
 * - With GORODEBUG=starve=1 it reports (once per episode) a goroutine that
 *   has held its P for more than 10ms without switching; schedtrace=N
 *   prints Go-style "SCHED" lines every N ms.
 *
 * With no syscall pending and every P idle it sleeps on a futex that
 * goro_syscall_enter and pidleget_locked (a P going to work) poke.
 */
#include "sched.h"
#include "upcalls.h"

#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STARVE_NS (10 * 1000000LL)
#define HOG_TICK_NS (10 * 1000000LL)
#define MAX_LENT 64
/* Every P computing without a switch for this long: lend one more. Long,
   because computing goroutines lose throughput to one more thread on the
   CPUs (4 goroutines taking turns on a mutex at one processor, each for its
   whole share of ~100 ms: 13 -> 20 ns per lock with a P lent at 10 ms), and
   short enough that a goroutine that never yields delays the rest by about
   a second, never for good. */
#define ALL_HOGS_NS (1000 * 1000000LL)

/* Per-P memory of the hog watch (sysmon's own). */
typedef struct hog_watch {
    uint32_t tick;  /* switchtick at the last look */
    int64_t since;  /* when it last changed (or the P was not running) */
    goro__m *m;     /* the P's owner at the last look */
    int64_t cpu;    /* that M's thread CPU time then (ns), -1 unknown */
    int64_t cpu_at; /* and when it was read */
    bool reported;  /* GORODEBUG=starve=1 reported this episode */
} hog_watch;

/* CPU time thread tid has used (ns), or -1: its CPU clock, as
   pthread_getcpuclockid would name it (CPUCLOCK_SCHED of a thread), from
   the tid the M wrote itself before it took a P (m->thread is written by
   pthread_create in the creating thread, with no order to sysmon). */
static int64_t thread_cpu(pid_t tid) {
    clockid_t cid = (clockid_t)((~(unsigned)tid) << 3) | 6;
    struct timespec ts;
    if (tid <= 0 || clock_gettime(cid, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether thread tid sleeps in the kernel now ('S' or 'D' in
   /proc/self/task/TID/stat), as opposed to running or waiting for a CPU. */
static bool thread_sleeps(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parens */
    return paren && paren[1] == ' ' && (paren[2] == 'S' || paren[2] == 'D');
}

/* Whether the hog on a P is blocked in the kernel: a plain blocking call
   such as read(2), pthread_join or sleep(3). Its thread used less than half
   the time since the last look on a CPU, and sleeps now: both, because a
   thread that computes while it shares its CPU with another also gets only
   part of it, but is never asleep. */
static bool hog_blocked(hog_watch *w, goro__m *m, int64_t now) {
    int64_t cpu = m ? thread_cpu(goro__m_tid(m)) : -1;
    bool blocked = false;
    if (m == w->m && cpu >= 0 && w->cpu >= 0 && now > w->cpu_at)
        blocked = (cpu - w->cpu) * 2 < now - w->cpu_at && thread_sleeps(goro__m_tid(m));
    w->m = m;
    w->cpu = cpu;
    w->cpu_at = now;
    return blocked;
}

/*
 * One look at every P (see "Hogs" above). Lending, Go's syscall rule in
 * spirit: a hog blocked in the kernel does not use its CPU, so a P is lent
 * in its place (as many lent as blocked hogs). A hog that computes does use
 * it, and lending for it would only put one more thread on the CPUs (a
 * timer burst measured 2-4x later wake-ups with it), so it gets none, with
 * one exception: when every P has been a hog for ALL_HOGS_NS, nothing else
 * could run all that time, and one more P is lent (again after each further
 * ALL_HOGS_NS) until that is no longer so. Lent Ps are taken back one per
 * tick once there are more of them than hogs.
 */
static void watch_hogs(hog_watch *w, int64_t now) {
    int32_t n = atomic_load(&goro__sched.gomaxprocs);
    int32_t hogs = 0, blocked = 0;
    for (int32_t i = 0; i < n; i++) {
        goro__p *p = goro__sched.allp[i];
        uint32_t t = atomic_load_explicit(&p->switchtick, memory_order_relaxed);
        goro__g *g = atomic_load_explicit(&p->curg, memory_order_relaxed);
        if (t != w[i].tick || atomic_load(&p->status) != GORO__P_RUNNING || !g || g->is_g0) {
            w[i].tick = t;
            w[i].since = now;
            w[i].m = NULL;
            w[i].reported = false;
            continue;
        }
        goro__m *m = __atomic_load_n(&p->m, __ATOMIC_ACQUIRE);
        bool stalled = hog_blocked(&w[i], m, now);
        if (now - w[i].since < HOG_TICK_NS)
            continue;
        hogs++;
        blocked += stalled;
        goro__unhog(p, now);
    }
    /* How long every P has been a hog (0: not all are). */
    static int64_t all_since;
    if (hogs < n)
        all_since = 0;
    else if (all_since == 0)
        all_since = now;
    bool starving = all_since != 0 && now - all_since >= ALL_HOGS_NS;
    int32_t lent = atomic_load(&goro__sched.nlent);
    if ((starving || blocked > lent) && lent < MAX_LENT) {
        all_since = 0; /* the next one only after another full wait */
        if (goro__procs_lend(1)) {
            w[n].tick = 0;
            w[n].since = now;
            w[n].m = NULL;
        }
    } else if (lent > hogs) {
        goro__procs_lend(-1);
    }
}

/* Signals: sysmon takes locks (sched.lock, timer heaps, malloc's) while it
   moves work and lends Ps. A crash freezes every other thread with the
   capture signal (SIGURG, observe/freeze.c) wherever it stands, and a
   frozen lock holder would stall the report. So sysmon blocks every signal
   while it works and lets only SIGURG in while it sleeps, holding nothing:
   a freeze or a stack capture then finds it asleep. */
static sigset_t sysmon_working, sysmon_sleeping;

static void sysmon_sleep_begin(void) { pthread_sigmask(SIG_SETMASK, &sysmon_sleeping, NULL); }
static void sysmon_sleep_end(void) { pthread_sigmask(SIG_SETMASK, &sysmon_working, NULL); }

static void *sysmon(void *arg) {
    (void)arg;
    sigfillset(&sysmon_working);
    sigfillset(&sysmon_sleeping);
    sigdelset(&sysmon_sleeping, SIGURG);
    sysmon_sleep_end();
    goro__helper_thread_register();
    static uint32_t seen[GORO__MAXPROCS];
    int64_t delay_us = 20;
    int idle = 0;
    int64_t start = goro__nanotime(), last_trace = start;
    bool always = goro__debug.starve || goro__debug.schedtrace_ms > 0;
    static hog_watch hogw[GORO__MAXPROCS + 1];
    int64_t last_hog_look = start;
    for (;;) {
        bool syscalls = atomic_load(&goro__sched.nsyscall) != 0;
        if (!always && !syscalls) {
            /* Nothing runs: sleep until a P goes to work or a syscall
               starts. The store of 0 comes before the re-reads, and the
               pokers change their count before they read the word. */
            atomic_store(&goro__sched.sysmon_wake, 0);
            if (atomic_load(&goro__sched.nsyscall) == 0 &&
                atomic_load(&goro__sched.npidle) == atomic_load(&goro__sched.gomaxprocs)) {
                sysmon_sleep_begin();
                goro__futex_wait(&goro__sched.sysmon_wake, 0, -1);
                sysmon_sleep_end();
                delay_us = 20;
                idle = 0;
                continue;
            }
            delay_us = HOG_TICK_NS / 1000;
        }
        struct timespec ts = {0, delay_us * 1000};
        sysmon_sleep_begin();
        nanosleep(&ts, NULL);
        sysmon_sleep_end();
        if (syscalls) {
            if (goro__retake(seen)) {
                delay_us = 20;
                idle = 0;
            } else if (++idle > 50 && delay_us < 10000) {
                delay_us *= 2;
            }
        }
        if (always && delay_us > 1000)
            delay_us = 1000;
        int64_t now = goro__nanotime();
        if (now - last_hog_look >= HOG_TICK_NS / 2) {
            last_hog_look = now;
            watch_hogs(hogw, now);
        }
        int32_t n = atomic_load(&goro__sched.gomaxprocs);
        if (goro__debug.starve) {
            /* From the hog watch's memory: since when each P has not
               switched (watch_hogs keeps it; a switch after its last look
               shows as a tick that moved). */
            for (int32_t i = 0; i < n; i++) {
                goro__p *p = goro__sched.allp[i];
                hog_watch *w = &hogw[i];
                if (w->reported || w->since == 0 ||
                    atomic_load_explicit(&p->switchtick, memory_order_relaxed) != w->tick ||
                    atomic_load(&p->status) != GORO__P_RUNNING)
                    continue;
                goro__g *g = atomic_load_explicit(&p->curg, memory_order_relaxed);
                if (g && !g->is_g0 && now - w->since > STARVE_NS) {
                    w->reported = true;
                    char buf[256];
                    int len = snprintf(buf, sizeof buf,
                                       "goro: goroutine %llu%s%s%s has run for %lld ms without "
                                       "yielding (C cannot preempt it: call goro_yield in long "
                                       "loops)\n",
                                       (unsigned long long)g->id, g->name ? " (" : "",
                                       g->name ? g->name : "", g->name ? ")" : "",
                                       (long long)((now - w->since) / 1000000));
                    goro__write_all(2, buf, (size_t)len);
                    goro__upcalls.traceback_print(2, g, false);
                }
            }
        }
        if (goro__debug.schedtrace_ms > 0 &&
            now - last_trace >= (int64_t)goro__debug.schedtrace_ms * 1000000) {
            last_trace = now;
            char buf[2048];
            int len =
                snprintf(buf, sizeof buf,
                         "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d "
                         "spinningthreads=%d needspinning=0 idlethreads=%d runqueue=%d [",
                         (long long)((now - start) / 1000000), n, atomic_load(&goro__sched.npidle),
                         goro__sched.mcount, atomic_load(&goro__sched.nmspinning),
                         goro__sched.nmidle, atomic_load(&goro__sched.runq_size));
            for (int32_t i = 0; i < n && len < (int)sizeof buf - 16; i++) {
                goro__p *p = goro__sched.allp[i];
                uint32_t h = atomic_load(&p->runq_head), t = atomic_load(&p->runq_tail);
                len += snprintf(buf + len, sizeof buf - (size_t)len, i ? " %u" : "%u", t - h);
            }
            len += snprintf(buf + len, sizeof buf - (size_t)len, "]\n");
            goro__write_all(2, buf, (size_t)len);
        }
    }
    return NULL;
}

void goro__sysmon_start(void) {
    int32_t z = 0;
    if (!atomic_compare_exchange_strong(&goro__sched.sysmon_started, &z, 1))
        return;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* Symbolizing a stack for the starvation report needs room (libdw). */
    pthread_attr_setstacksize(&a, 8 << 20);
    if (pthread_create(&t, &a, sysmon, NULL) != 0)
        atomic_store(&goro__sched.sysmon_started, 0);
    pthread_attr_destroy(&a);
}
