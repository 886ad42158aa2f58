/*
 * signal.c - fatal signals inside goroutines.
 *
 * Every scheduler thread runs its signal handlers on an alternate stack, so a
 * goroutine that overflows into its guard page can still be reported. The
 * handler names the goroutine, prints every goroutine's trace (Go's crash
 * output), then restores the default action and returns: the faulting
 * instruction runs again and the process dies with the original signal.
 * Handlers the program installed itself are left alone.
 */
#include "sched.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (2 << 20) /* room to symbolize a crash with libdw */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

static const char *signame(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV: segmentation violation";
    case SIGBUS: return "SIGBUS: bus error";
    case SIGFPE: return "SIGFPE: floating-point exception";
    case SIGILL: return "SIGILL: illegal instruction";
    default: return "signal";
    }
}

static _Atomic int crashing;

static void fatal_handler(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    (void)uc;
    if (atomic_fetch_add(&crashing, 1) != 0) {
        /* Another thread is already printing: let it finish, then die. */
        sleep(5);
        signal(sig, SIG_DFL);
        return;
    }
    goro__g *g = goro__getg_maybe();
    char buf[512];
    uintptr_t addr = (uintptr_t)si->si_addr;
    goro__g *owner = (g && !g->is_g0 && !g->is_thread) ? goro__stack_guard_owner(g, addr) : NULL;
    int n;
    if (owner) {
        n = snprintf(buf, sizeof buf,
                     "runtime: goroutine %llu%s%s%s overflowed its %zu-byte stack "
                     "(fault at 0x%lx, %s page)\nfatal error: stack overflow\n\n",
                     (unsigned long long)owner->id, owner->name ? " (" : "",
                     owner->name ? owner->name : "", owner->name ? ")" : "", owner->stack_size,
                     (unsigned long)addr, owner->guarded ? "guard" : "gap");
    } else {
        uintptr_t pc = 0;
#if defined(__x86_64__)
        pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
        pc = (uintptr_t)uc->uc_mcontext.pc;
#endif
        n = snprintf(buf, sizeof buf, "[signal %s code=0x%x addr=0x%lx pc=0x%lx]\n\n", signame(sig),
                     si->si_code, (unsigned long)addr, (unsigned long)pc);
    }
    goro__write_all(2, buf, (size_t)n);
    if (g && !g->is_g0) {
        goro__traceback_print(2, g, true);
    } else {
        goro__write_all(2, "(fault on a scheduler thread outside any goroutine)\n", 52);
        goro__traceback_print(2, NULL, true);
    }
    signal(sig, SIG_DFL);
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

void goro__signals_init_thread(goro__m *m) {
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
