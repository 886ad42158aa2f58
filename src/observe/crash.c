/*
 * crash.c - the report of a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL),
 * as Go writes it, and how the process ends.
 *
 * A crash is a crash: the first thread that faults stops every other thread
 * (freeze.c) before it writes a word, so no goroutine, no exit() from main
 * and no atexit handler makes progress while the report is written; then
 * the process exits with status 2 (GOROTRACEBACK=crash: abort(), a core dump
 * and SIGABRT, as Go's GOTRACEBACK=crash). A second fault elsewhere waits
 * for the first report; a fault while reporting ends the process at once.
 *
 * Wording (Go's):
 *   in a goroutine's own code (goroutine 1 included)
 *     SIGSEGV/SIGBUS below 4096  panic: runtime error: invalid memory address
 *                                or nil pointer dereference
 *     SIGSEGV/SIGBUS elsewhere   unexpected fault address 0x..
 *                                fatal error: fault
 *     SIGFPE (integer)           panic: runtime error: integer divide by zero
 *     SIGFPE (other), SIGILL     fatal error: unexpected signal
 *   on a plain thread, a scheduler thread, or in goro's own code
 *                                fatal error: unexpected signal during
 *                                runtime execution
 *   a goroutine past its stack   runtime: goroutine N overflowed ...
 *                                fatal error: stack overflow
 * then `[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x..]`,
 * a blank line, and the traces GOROTRACEBACK asks for: none, single (the
 * default: the faulting goroutine), all / system (every goroutine, the
 * faulting one first), crash (as all).
 */
#include "observe.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static _Atomic pid_t crash_owner;

static const char *signame(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV: segmentation violation";
    case SIGBUS: return "SIGBUS: bus error";
    case SIGFPE: return "SIGFPE: floating-point exception";
    case SIGILL: return "SIGILL: illegal instruction";
    case SIGABRT: return "SIGABRT: abort";
    default: return "signal";
    }
}

/* GOROTRACEBACK as init.c reads it, for a crash before the runtime
   started (-1: use goro__debug.traceback). */
static int early_level = -1;

static int env_level(void) {
    const char *tb = getenv("GOROTRACEBACK");
    if (!tb)
        return 1;
    if (!strcmp(tb, "none") || !strcmp(tb, "0"))
        return 0;
    if (!strcmp(tb, "all") || !strcmp(tb, "2") || !strcmp(tb, "system"))
        return 2;
    return strcmp(tb, "crash") ? 1 : 3;
}

static int level_now(void) { return early_level >= 0 ? early_level : goro__debug.traceback; }

void goro__crash_exit(void) {
    if (level_now() >= 3) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGABRT, &sa, NULL);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGABRT);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        abort();
    }
    _exit(2);
}

/* Seconds the report may go without writing anything. The other threads
   are frozen wherever they stood, so one may hold a lock the report needs
   (malloc's, a sanitizer allocator's, libdw's): then the report cannot go
   on, and the process must still end, soon, with status 2. A long report
   (every goroutine of a big process) keeps writing, and each write moves
   the deadline (goro__crash_progress), so only a stall ends it. */
#define CRASH_STALL_SECONDS 3
#define CRASH_STR_(x) #x
#define CRASH_STR(x) CRASH_STR_(x)

static void watchdog(int sig) {
    (void)sig;
    static const char msg[] = "\n(crash report cut short: it wrote nothing for " CRASH_STR(
        CRASH_STALL_SECONDS) " s; a stopped thread may hold a "
                             "lock it needs)\n";
    goro__write_all(2, msg, sizeof msg - 1);
    goro__crash_exit();
}

void goro__crash_progress(void) {
    if (atomic_load_explicit(&crash_owner, memory_order_relaxed) == (pid_t)syscall(SYS_gettid))
        alarm(CRASH_STALL_SECONDS);
}

/* A report that hangs (a frozen thread holds a lock it needs) still ends. */
static void arm_watchdog(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog;
    sigfillset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    alarm(CRASH_STALL_SECONDS);
}

static uintptr_t fault_pc(const void *ucv) {
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

/* Claims the report for this thread; never returns to a thread that lost. */
bool goro__crash_begin(void) {
    pid_t self = (pid_t)syscall(SYS_gettid), zero = 0;
    if (!atomic_compare_exchange_strong(&crash_owner, &zero, self)) {
        if (zero == self) {
            static const char msg[] =
                "\nfatal error: unexpected signal while printing a crash report\n";
            goro__write_all(2, msg, sizeof msg - 1);
            goro__crash_exit();
        }
        for (;;)
            pause(); /* the first crash reports and ends the process */
    }
    goro__freeze_others();
    atomic_store(&goro__observe_crashing, 1);
    arm_watchdog();
    return true;
}

static bool goroutine_record(const goro__g *g) {
    return g && !g->is_g0 && !g->system && (!g->is_thread || g->id == 1);
}

/* The main thread before the runtime started is goroutine 1 to be. */
static bool main_thread_unstarted(const goro__g *g) {
    return !g && getpid() == (pid_t)syscall(SYS_gettid);
}

static uintptr_t self_pcs[GORO__DUMP_HEAD], self_tail[GORO__DUMP_TAIL];

static void print_unstarted_main(void) {
    goro__gsnap gs;
    memset(&gs, 0, sizeof gs);
    gs.stk.pcs = self_pcs;
    gs.stk.tail = self_tail;
    goro__capture_self(NULL, &gs.cap, &gs.stk, GORO__DUMP_HEAD, GORO__DUMP_TAIL);
    gs.cap.id = 1;
    gs.cap.status = GORO__G_RUNNING;
    gs.current = true;
    goro__ow w;
    goro__ow_init_fd(&w, 2);
    goro__format_goroutine(&w, &gs, 0, NULL);
    goro__ow_flush(&w);
}

/* A fault in goro's own code is the runtime's, except in the public calls
   (goro_mutex_lock(NULL) faults in goro_mutex_lock, as a nil
   *sync.Mutex faults in sync.(*Mutex).Lock: a panic). */
static bool in_runtime_code(uintptr_t pc) {
    const goro__sym *s = goro__symbolize(pc + 1);
    const goro__symline *phys = &s->lines[s->n - 1];
    return phys->internal && !goro__api_public(phys->func);
}

void goro__crash_report(int sig, const void *siginfo, const void *ucv, goro__g *overflowed) {
    const siginfo_t *si = siginfo;
    goro__crash_begin();
    goro__g *g = goro__getg_maybe();
    uintptr_t pc = fault_pc(ucv), addr = (uintptr_t)si->si_addr;
    goro__ow w;
    goro__ow_init_fd(&w, 2);
    bool unstarted = main_thread_unstarted(g);
    if (unstarted)
        early_level = env_level();
    bool in_goroutine = goroutine_record(g) || unstarted;
    if (overflowed) {
        goro__ow_printf(&w,
                        "runtime: goroutine %llu%s%s%s overflowed its %zu-byte stack "
                        "(fault at 0x%lx, %s page)\nfatal error: stack overflow\n",
                        (unsigned long long)overflowed->id, overflowed->name ? " (" : "",
                        overflowed->name ? overflowed->name : "", overflowed->name ? ")" : "",
                        overflowed->stack_size, (unsigned long)addr,
                        overflowed->guarded ? "guard" : "gap");
    } else {
        bool runtime_code = !in_goroutine || in_runtime_code(pc);
        if (runtime_code) {
            goro__ow_puts(&w, "fatal error: unexpected signal during runtime execution\n");
        } else if (sig == SIGSEGV || sig == SIGBUS) {
            if (addr < 4096) {
                goro__ow_puts(&w, "panic: runtime error: invalid memory address or nil pointer "
                                  "dereference\n");
            } else {
                goro__ow_puts(&w, "unexpected fault address ");
                goro__ow_hex(&w, addr);
                goro__ow_puts(&w, "\nfatal error: fault\n");
            }
        } else if (sig == SIGFPE && (si->si_code == FPE_INTDIV || si->si_code == FPE_INTOVF)) {
            goro__ow_puts(&w, si->si_code == FPE_INTDIV
                                  ? "panic: runtime error: integer divide by zero\n"
                                  : "panic: runtime error: integer overflow\n");
        } else {
            goro__ow_puts(&w, "fatal error: unexpected signal\n");
        }
    }
    goro__ow_printf(&w, "[signal %s code=", signame(sig));
    goro__ow_hex(&w, (uintptr_t)(unsigned)si->si_code);
    goro__ow_puts(&w, " addr=");
    goro__ow_hex(&w, addr);
    goro__ow_puts(&w, " pc=");
    goro__ow_hex(&w, pc);
    goro__ow_puts(&w, "]\n\n");
    goro__ow_flush(&w);
    int level = level_now();
    if (unstarted) {
        if (level >= 1)
            print_unstarted_main();
    } else if (level >= 2)
        goro__traceback_print(2, in_goroutine ? g : NULL, true);
    else if (level == 1 && in_goroutine)
        goro__traceback_print(2, g, false);
    goro__crash_exit();
}
