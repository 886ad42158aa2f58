/*
 * signal.c - fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL).
 *
 * Every scheduler thread runs its signal handlers on an alternate stack, so a
 * goroutine that overflows into its guard page can still be reported. The
 * handler names the goroutine whose guard page was hit (if any) and hands
 * over to the crash report (src/observe/crash.c): every other thread is
 * stopped, Go's report is written, and the process exits with status 2
 * (GOROTRACEBACK=crash: abort()). Handlers the program installed itself are
 * left alone. Also: starting the runtime's helper threads, which take no
 * signal meant for the program.
 */
#include "sched.h"
#include "upcalls.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (2 << 20) /* room to symbolize a crash with libdw */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

static void fatal_handler(int sig, siginfo_t *si, void *uc) {
    goro__g *g = goro__getg_maybe();
    uintptr_t addr = (uintptr_t)si->si_addr;
    goro__g *owner = (g && !g->is_g0 && !g->is_thread) ? goro__stack_guard_owner(g, addr) : NULL;
    goro__up_crash_report(sig, si, uc, owner);
}

void goro__signals_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fatal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO))
            sigaction(fatal_signals[i], &sa, NULL);
    }
}

/* Installed when the program starts, not when the runtime does: a fault
   before the first goro call (goro_mutex_lock(NULL) as the first line of
   main) gets the same report and exit status. */
__attribute__((constructor)) static void signals_init_early(void) { goro__signals_init(); }

bool goro__thread_start_quiet(void *(*fn)(void *), size_t stack_size) {
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &prev);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, stack_size);
    pthread_t t;
    int e = pthread_create(&t, &attr, fn, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    return e == 0;
}

void goro__signals_init_thread(goro__m *m) {
    /* The main thread (goroutine 1's M) may have one already: the
       program's, or ASan's, which is far too small to symbolize a crash.
       One at least our size is kept; a smaller one is replaced (handlers
       that ask for SA_ONSTACK run on ours then). */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_size >= ALTSTACK_SIZE)
        return;
    void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) == 0)
        m->altstack = p;
    else
        munmap(p, ALTSTACK_SIZE);
}
