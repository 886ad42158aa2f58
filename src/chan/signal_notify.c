/*
 * signal_notify.c - Go's signal.Notify for C: signals arrive as values (the
 * signal number, an int) on channels, so a goroutine can wait for SIGTERM in
 * a goro_select next to its other work (the graceful-shutdown pattern).
 *
 *   goro_chan *sigs = goro_chan_make(sizeof(int), 1);
 *   goro_signal_notify(sigs, SIGINT, SIGTERM);
 *   ... goro_select({sigs, GORO_RECV, &sig}, {work, ...}) ...
 *   goro_signal_stop(sigs);
 *
 * The signal handler itself only counts the signal and posts a semaphore
 * (async-signal-safe, a few words of whatever stack it lands on); a runtime
 * helper thread, started on first use with every signal blocked, does the
 * channel sends. Sends never block: a signal that finds a channel full is
 * dropped for that channel, as in Go (use a buffered channel). While any
 * channel is registered the deadlock check stays quiet: a signal may still
 * come and wake a goroutine.
 *
 * Signals goro keeps for itself (EINVAL): SIGSEGV, SIGBUS, SIGFPE, SIGILL
 * (crash reports), SIGURG (stack capture and the crash stop); SIGKILL and
 * SIGSTOP cannot be caught. SIGQUIT may be asked for: the channel gets it
 * instead of the goroutine dump, until goro_signal_stop.
 *
 * Invariants: `regs` and the per-signal `wanted` counts change only under
 * mu; a signal's handler is installed while wanted[sig] > 0 and the
 * previous action is restored when it drops to 0. A registered channel is
 * retained; goro_signal_stop drops it from `regs` under mu (so the helper,
 * which sends under mu, never sends to it again) before releasing it.
 */
#include "../runtime/runtime.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIG 65

typedef struct reg {
    goro_chan *c;
    uint64_t mask[2]; /* bit s: signal s */
} reg;

static goro__lock mu = GORO__LOCK_INIT;
static reg *regs;
static size_t nregs, capregs;
static int wanted[MAX_SIG];
static struct sigaction saved[MAX_SIG];
static _Atomic uint32_t pending[MAX_SIG];
static sem_t wake;
static bool started;

static bool has(const reg *r, int s) { return (r->mask[s / 64] >> (s % 64)) & 1; }

static void handler(int sig) {
    int saved_errno = errno;
    if (sig > 0 && sig < MAX_SIG)
        atomic_fetch_add_explicit(&pending[sig], 1, memory_order_relaxed);
    sem_post(&wake);
    errno = saved_errno;
}

static void *dispatcher(void *arg) {
    (void)arg;
    goro__helper_thread_register();
    for (;;) {
        while (sem_wait(&wake) != 0) {
        }
        for (int s = 1; s < MAX_SIG; s++) {
            if (atomic_exchange_explicit(&pending[s], 0, memory_order_relaxed) == 0)
                continue;
            goro__lock_acquire(&mu);
            for (size_t i = 0; i < nregs; i++)
                if (has(&regs[i], s))
                    goro_chan_try_send(regs[i].c, &s);
            goro__lock_release(&mu);
        }
    }
    return NULL;
}

/* mu held. */
static bool start_dispatcher(void) {
    if (started)
        return true;
    if (sem_init(&wake, 0, 0) != 0)
        return false;
    started = goro__thread_start_quiet(dispatcher, 256 << 10);
    return started;
}

static bool notifiable(int s) {
    return s > 0 && s < MAX_SIG && s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS &&
           s != SIGFPE && s != SIGILL && s != SIGURG;
}

/* mu held. */
static void want(int s) {
    if (wanted[s]++ > 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(s, &sa, &saved[s]);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, s);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

/* mu held. */
static void unwant(int s) {
    if (--wanted[s] == 0)
        sigaction(s, &saved[s], NULL);
}

/* The contract's one-signal form; the goro_signal_notify macro of goro.h
   passes any number of signals to goro_signal_notify_list instead. */
int(goro_signal_notify)(goro_chan *c, int sig) { return goro_signal_notify_list(c, sig, 0); }

int goro_signal_notify_list(goro_chan *c, int sig, ...) {
    if (!c)
        return GORO_EINVAL;
    int sigs[MAX_SIG], n = 0;
    va_list ap;
    va_start(ap, sig);
    for (int s = sig; s != 0 && n < MAX_SIG; s = va_arg(ap, int))
        sigs[n++] = s;
    va_end(ap);
    if (n == 0)
        return GORO_EINVAL;
    for (int i = 0; i < n; i++)
        if (!notifiable(sigs[i]))
            return GORO_EINVAL;
    goro__init();
    goro__lock_acquire(&mu);
    if (!start_dispatcher()) {
        goro__lock_release(&mu);
        return GORO_ENOMEM;
    }
    reg *r = NULL;
    for (size_t i = 0; i < nregs && !r; i++)
        if (regs[i].c == c)
            r = &regs[i];
    if (!r) {
        if (nregs == capregs) {
            size_t nc = capregs ? 2 * capregs : 4;
            reg *nr = realloc(regs, nc * sizeof *nr);
            if (!nr) {
                goro__lock_release(&mu);
                return GORO_ENOMEM;
            }
            regs = nr;
            capregs = nc;
        }
        if (nregs == 0)
            goro__external_waiters_add(1);
        r = &regs[nregs++];
        r->c = goro_chan_retain(c);
        r->mask[0] = r->mask[1] = 0;
    }
    for (int i = 0; i < n; i++) {
        int s = sigs[i];
        if (!has(r, s)) {
            r->mask[s / 64] |= (uint64_t)1 << (s % 64);
            want(s);
        }
    }
    goro__lock_release(&mu);
    return 0;
}

void goro_signal_stop(goro_chan *c) {
    if (!c)
        return;
    goro__lock_acquire(&mu);
    goro_chan *drop = NULL;
    for (size_t i = 0; i < nregs; i++) {
        if (regs[i].c != c)
            continue;
        for (int s = 1; s < MAX_SIG; s++)
            if (has(&regs[i], s))
                unwant(s);
        drop = regs[i].c;
        regs[i] = regs[--nregs];
        if (nregs == 0)
            goro__external_waiters_add(-1);
        break;
    }
    goro__lock_release(&mu);
    if (drop)
        goro_chan_release(drop);
}
