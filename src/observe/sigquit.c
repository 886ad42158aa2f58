/*
 * sigquit.c - SIGQUIT prints every goroutine to stderr, and the program
 * goes on (GOROTRACEBACK=crash: exits 2 after the dump). Also the observe
 * layer's start-up (goro__observe_init).
 *
 * GOROTRACEBACK=crash stops every other thread first (as a crash does)
 * and exits with status 2 after the dump.
 *
 * The handler only records where the signal landed and posts a semaphore
 * (async-signal-safe); a dedicated thread, started at init with every
 * signal blocked, does the dump in normal context. Dumping inside the
 * handler would deadlock whenever the interrupted thread held a lock the
 * dump needs (malloc's, libdw's). The dumper is a registered runtime helper
 * thread, so deadlock detection knows it, and it has no goroutine record,
 * so it does not appear in its own dump.
 *
 * Output (Go's SIGQUIT header, then goroutines as in debug=2):
 *   SIGQUIT: quit
 *   PC=0x<pc> m=<M id, or nil on a plain thread> sigcode=<si_code>
 *   <blank line>
 *   goroutine 1 [...]: ...
 * A handler the program installed itself for SIGQUIT is left alone. An
 * ignored SIGQUIT (SIG_IGN, which a shell hands to every background job) is
 * taken over, as Go does: Go respects an inherited SIG_IGN only for SIGHUP
 * and SIGINT.
 */
#include "observe.h"
#include "profiles.h"

#include <semaphore.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static sem_t quit_sem;
static volatile sig_atomic_t quit_m;
static volatile uintptr_t quit_pc;
static volatile int quit_code;
static volatile sig_atomic_t quit_has_m;

static void quit_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    int saved = errno;
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    quit_pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    quit_pc = (uintptr_t)uc->uc_mcontext.pc;
#endif
    goro__m *m = goro__getm();
    quit_has_m = m != NULL;
    quit_m = m ? goro__m_id(m) : 0;
    quit_code = si->si_code;
    sem_post(&quit_sem);
    errno = saved;
}

static void dump_all(void) {
    goro__ow w;
    goro__ow_init_fd(&w, 2);
    goro__ow_puts(&w, "SIGQUIT: quit\nPC=");
    goro__ow_hex(&w, quit_pc);
    goro__ow_puts(&w, " m=");
    if (quit_has_m)
        goro__ow_dec(&w, quit_m);
    else
        goro__ow_puts(&w, "nil");
    goro__ow_puts(&w, " sigcode=");
    goro__ow_dec(&w, quit_code);
    goro__ow_puts(&w, "\n\n");
    goro__snapshot *s = goro__snapshot_take(GORO__SNAP_DUMP | GORO__SNAP_NO_SELF);
    if (s) {
        goro__format_dump(&w, s, NULL, NULL);
        goro__snapshot_free(s);
    } else {
        goro__ow_puts(&w, "(out of memory taking the goroutine dump)\n");
    }
    goro__ow_flush(&w);
}

static void *dumper(void *arg) {
    (void)arg;
    goro__helper_thread_register();
    for (;;) {
        while (sem_wait(&quit_sem) != 0) {
        }
        if (goro__debug.traceback >= 3) {
            /* The dump of a program that ends: nothing runs on meanwhile. */
            goro__crash_begin();
            dump_all();
            _exit(2);
        }
        dump_all();
    }
    return NULL;
}

static void sigquit_init(void) {
    struct sigaction old;
    if (sigaction(SIGQUIT, NULL, &old) != 0)
        return;
    if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
        return; /* the program handles SIGQUIT itself */
    if (sem_init(&quit_sem, 0, 0) != 0)
        return;
    if (!goro__thread_start_quiet(dumper, 1 << 20))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = quit_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
}

/* exit() while a crash is being reported (main returning as a goroutine
   faults) must not end the process with status 0 or run more user work:
   the thread waits for the report, which ends the process. */
static void exit_guard(void) {
    if (goro__freeze_active())
        for (;;)
            pause();
}

void goro__observe_init(void) {
    atexit(exit_guard);
    goro__capture_init();
    sigquit_init();
    goro__pprof_register();
}

void goro__observe_upcalls(goro__upcall_table *t) {
    t->observe_init = goro__observe_init;
    t->traceback_print = goro__traceback_print;
    t->crash_report = goro__crash_report;
    t->crash_begin = goro__crash_begin;
    t->crash_exit = goro__crash_exit;
    t->labels_release = goro__labels_release;
}
