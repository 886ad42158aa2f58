/*
 * capture.c - the registers and stack of one goroutine record, without
 * stopping anything else.
 *
 * Three ways, by what the record is doing:
 *
 *  1. The caller itself: goro__self_regs (frameless assembly) returns its
 *     registers at the call, and the walk starts in goro__capture_self,
 *     whose frame stays live meanwhile; goro's frames are hidden later.
 *
 *  2. Parked or runnable goroutines: goro__g_scan_begin pins the record (it
 *     cannot start running while pinned), the walk starts from its saved
 *     context (context.h: callee-saved registers and the resume PC at ctx.sp)
 *     and reads its stack in place, then goro__g_scan_end. The pin lasts one
 *     walk (a few microseconds once the unwind rules are cached).
 *
 *  3. A goroutine running on another scheduler thread, or a plain thread
 *     inside the runtime (it sleeps on a futex and has no saved context):
 *     that thread is sent GORO__SIG_CAPTURE with rt_tgsigqueueinfo, carrying
 *     a token. Its handler posts the interrupted registers and waits; the
 *     observer checks that the thread was really running the wanted record
 *     on that record's stack, copies the live part of the stack into its
 *     own buffer, and releases the thread. The walk then runs on the copy.
 *
 * The capture handshake (one request at a time, cap_mu):
 *
 *     observer                              target thread (handler)
 *     state = SENT; token = T; signal   ->  token matches and CAS SENT->BUSY
 *                                           post registers, state = POSTED
 *     sees POSTED: read record, copy stack  waits while state == POSTED
 *     state = RELEASED                  ->  state = DONE, returns
 *     sees DONE: state = IDLE
 *
 * If no handler answers in time (signal blocked, thread gone) the observer
 * CASes SENT->CANCELLED, and a late handler sees a state other than SENT and
 * returns at once. While a target is paused the observer neither allocates
 * nor takes locks (the target may hold malloc's): it only reads, copies into
 * a buffer prepared beforehand (or mmap'ed) and reads procfs maps with
 * open/read.
 */
#include "observe.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "maps.h"

_Atomic int goro__observe_crashing;

#define RSET(rg, i, v) ((rg)->r[i] = (v), (rg)->valid |= (uint64_t)1 << (i))

void goro__gcap_clear(goro__gcap *cap) {
    free(cap->name);
    cap->name = NULL;
    if (cap->labels)
        goro__labels_release(cap->labels);
    cap->labels = NULL;
}

static void fill_info(goro__g *g, uint32_t status, goro__gcap *cap) {
    cap->g = g;
    cap->id = g->id;
    cap->parent_id = g->parent_id;
    cap->status = status & ~(uint32_t)GORO__G_SCAN;
    cap->reason = atomic_load_explicit(&g->waitreason, memory_order_relaxed);
    cap->is_thread = g->is_thread;
    cap->waitsince = atomic_load_explicit(&g->waitsince, memory_order_relaxed);
    cap->waitobj = g->waitobj;
    cap->gopc = g->gopc;
    cap->startpc = 0;
    cap->fn = g->is_thread ? 0 : (uintptr_t)g->fn;
    cap->parent_fn = (uintptr_t)g->parent_fn;
    cap->unavailable = false;
}

static void take_labels(goro__g *g, goro__gcap *cap) {
    goro__labels *l = __atomic_load_n(&g->labels, __ATOMIC_ACQUIRE);
    if (l)
        atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    cap->labels = l;
}

/* ------------------------------------------------------------ 1. self */

/* goro__self_regs(rg): the caller's registers as they will be when this
   call returns: PC = the return address, SP = the caller's stack pointer
   after the return, and the callee-saved registers (untouched by the call).
   It is frameless assembly on purpose: a C helper would describe its own
   frame, which is dead (and overwritten by the walk itself) by the time
   the walk reads it. The walk starts in the caller, whose frame stays live
   while it calls goro__unwind. */
void goro__self_regs(goro__regs *rg) __attribute__((visibility("hidden")));
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl goro__self_regs\n"
        ".hidden goro__self_regs\n"
        ".type goro__self_regs, @function\n"
        ".p2align 4\n"
        "goro__self_regs:\n"
        "\tendbr64\n"
        "\tmovq %rbx, 24(%rdi)\n"
        "\tmovq %rbp, 48(%rdi)\n"
        "\tleaq 8(%rsp), %rax\n"
        "\tmovq %rax, 56(%rdi)\n"
        "\tmovq %r12, 96(%rdi)\n"
        "\tmovq %r13, 104(%rdi)\n"
        "\tmovq %r14, 112(%rdi)\n"
        "\tmovq %r15, 120(%rdi)\n"
        "\tmovq (%rsp), %rax\n"
        "\tmovq %rax, 128(%rdi)\n"
        "\tmovq $0x1f0c8, 136(%rdi)\n" /* rbx rbp rsp r12-r15 rip */
        "\tret\n"
        ".size goro__self_regs, .-goro__self_regs\n");
_Static_assert(offsetof(goro__regs, valid) == 136, "goro__regs layout");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl goro__self_regs\n"
        ".hidden goro__self_regs\n"
        ".type goro__self_regs, %function\n"
        ".p2align 4\n"
        "goro__self_regs:\n"
        "\tstp x19, x20, [x0, #152]\n"
        "\tstp x21, x22, [x0, #168]\n"
        "\tstp x23, x24, [x0, #184]\n"
        "\tstp x25, x26, [x0, #200]\n"
        "\tstp x27, x28, [x0, #216]\n"
        "\tstp x29, x30, [x0, #232]\n"
        "\tmov x9, sp\n"
        "\tstr x9, [x0, #248]\n"
        "\tstr x30, [x0, #256]\n"
        "\tmov x9, #0xfff80000\n"  /* bits 19..31 */
        "\tmovk x9, #1, lsl #32\n" /* bit 32 (pc) */
        "\tstr x9, [x0, #264]\n"
        "\tret\n"
        ".size goro__self_regs, .-goro__self_regs\n");
_Static_assert(offsetof(goro__regs, valid) == 264, "goro__regs layout");
#endif

static __thread uintptr_t tstack_lo, tstack_hi;

struct named_arg {
    const char *name;
    uintptr_t lo, hi;
    bool found;
};

static int named_cb(const goro__maps_ent *e, void *arg) {
    struct named_arg *a = arg;
    if (strcmp(e->path, a->name) == 0) {
        a->lo = e->lo;
        a->hi = e->hi;
        a->found = true;
        return 1;
    }
    return 0;
}

/* The calling plain thread's stack mapping (allocation-free). */
static bool thread_stack_range(uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
    if (tstack_hi && sp >= tstack_lo && sp < tstack_hi) {
        *lo = tstack_lo;
        *hi = tstack_hi;
        return true;
    }
    if (!goro__maps_range(sp, lo, hi)) {
        struct named_arg a = {.name = "[stack]"};
        goro__maps_foreach(named_cb, &a);
        if (!a.found)
            return false;
        *lo = a.lo;
        *hi = a.hi;
    }
    tstack_lo = *lo;
    tstack_hi = *hi;
    return true;
}

static int capture_parked(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail,
                          uint32_t *seen);
static void capture_saved_ctx(goro__g *g, goro__stk *stk, int max, int ntail);
static bool regs_from_saved_ctx(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail);

void goro__capture_self(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail) {
    if (g && goro__systemstack_active(g)) {
        /* Called on the system stack on g's behalf: g's own frames start at
           the context it saved when it switched there. */
        capture_saved_ctx(g, stk, max, ntail);
        memset(cap, 0, sizeof *cap);
        fill_info(g, atomic_load_explicit(&g->status, memory_order_relaxed), cap);
        if (g->name)
            cap->name = strdup(g->name);
        take_labels(g, cap);
        goro__stk_note(stk, cap);
        stk->blocked = false; /* it is running: it called us */
        return;
    }
    goro__regs rg;
    memset(&rg, 0, sizeof rg);
    goro__self_regs(&rg);
    uintptr_t sp = rg.r[GORO__REG_SP];
    goro__mem mem = {.n = 0};
    stack_t ss;
    bool on_alt = false;
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
        mem.r[mem.n++] =
            (goro__memrange){(uintptr_t)ss.ss_sp, (uintptr_t)ss.ss_sp + ss.ss_size, NULL};
        on_alt = true;
    }
    uintptr_t lo, hi;
    if (g && !g->is_thread && !g->is_g0 && g->stack_lo) {
        mem.r[mem.n++] = (goro__memrange){(uintptr_t)g->stack_lo, (uintptr_t)g->stack_hi, NULL};
    } else if (!on_alt && thread_stack_range(sp, &lo, &hi)) {
        mem.r[mem.n++] = (goro__memrange){lo, hi, NULL};
    } else if (on_alt) {
        /* A plain thread (or a scheduler thread's g0) faulting: its stack is
           the mapping around its thread descriptor (glibc places the
           descriptor at the top of the stack mapping), or [stack]. */
        bool main_thread = getpid() == (pid_t)syscall(SYS_gettid);
        if (main_thread) {
            struct named_arg a = {.name = "[stack]"};
            goro__maps_foreach(named_cb, &a);
            if (a.found)
                mem.r[mem.n++] = (goro__memrange){a.lo, a.hi, NULL};
        } else if (goro__maps_range((uintptr_t)pthread_self(), &lo, &hi)) {
            mem.r[mem.n++] = (goro__memrange){lo, hi, NULL};
        }
    }
    goro__unwind_stk(&rg, false, &mem, stk, max, ntail);
    memset(cap, 0, sizeof *cap);
    if (g) {
        fill_info(g, atomic_load_explicit(&g->status, memory_order_relaxed), cap);
        if (g->name)
            cap->name = strdup(g->name);
        take_labels(g, cap);
    }
    goro__stk_note(stk, cap);
    stk->blocked = false;
}

/* ------------------------------------------------------------ 2. parked */

enum { CAP_DONE, CAP_RETRY, CAP_SKIP_, CAP_UNAVAIL };

static int capture_parked(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail,
                          uint32_t *seen) {
    uint32_t st;
    if (!goro__g_scan_begin(g, &st)) {
        *seen = st;
        return CAP_RETRY;
    }
    if (!goro__g_visible(g, st)) {
        goro__g_scan_end(g);
        return CAP_SKIP_;
    }
    fill_info(g, st, cap);
    take_labels(g, cap);
    cap->name = g->name ? strdup(g->name) : NULL;
    if (!regs_from_saved_ctx(g, cap, stk, max, ntail))
        stk->n_head = 0;
    goro__g_scan_end(g);
    return CAP_DONE;
}

static void capture_saved_ctx(goro__g *g, goro__stk *stk, int max, int ntail) {
    goro__gcap dummy;
    memset(&dummy, 0, sizeof dummy);
    regs_from_saved_ctx(g, &dummy, stk, max, ntail);
}

/* Unwinds g from the context saved at g->ctx.sp (g pinned or g itself). */
static bool regs_from_saved_ctx(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail) {
    uintptr_t lo = (uintptr_t)g->stack_lo, hi = (uintptr_t)g->stack_hi;
    uintptr_t sp = (uintptr_t)g->ctx.sp;
    goro__mem mem = {.n = 1, .r = {{lo, hi, NULL}}};
    goro__regs rg;
    memset(&rg, 0, sizeof rg);
    stk->n_head = stk->n_tail = 0;
    stk->gap = 0;
    stk->leaf_exact = false;
    if (sp >= lo && sp + GORO__CTX_FRAME_SIZE <= hi) {
        const uintptr_t *f = (const uintptr_t *)sp;
#if defined(__x86_64__)
        RSET(&rg, 15, f[1]);
        RSET(&rg, 14, f[2]);
        RSET(&rg, 13, f[3]);
        RSET(&rg, 12, f[4]);
        RSET(&rg, 3, f[5]);
        RSET(&rg, 6, f[6]);
        RSET(&rg, 16, f[7]);
#elif defined(__aarch64__)
        for (int i = 0; i < 10; i++)
            RSET(&rg, 19 + i, f[i]);
        RSET(&rg, 29, f[10]);
        RSET(&rg, 30, f[11]);
        RSET(&rg, GORO__REG_PC, f[11]);
#endif
        RSET(&rg, GORO__REG_SP, sp + GORO__CTX_FRAME_SIZE);
        if (rg.r[GORO__REG_PC] == (uintptr_t)goro__ctx_entry) {
            /* Never ran: show its entry function, as Go does. */
            cap->startpc = (uintptr_t)g->fn;
            if (max > 0 && g->fn) {
                stk->pcs[0] = (uintptr_t)g->fn + 1;
                stk->n_head = 1;
                stk->leaf_exact = true;
            }
        } else {
            goro__unwind_stk(&rg, false, &mem, stk, max, ntail);
        }
        return true;
    }
    return false;
}

/* ------------------------------------------------------------ 3. signal */

enum { REQ_IDLE, REQ_SENT, REQ_BUSY, REQ_POSTED, REQ_RELEASED, REQ_DONE, REQ_CANCELLED };

#define TOKEN_MAGIC 0x676f726fULL /* "goro" */
/* Request tokens never have a zero low half: that value asks for a freeze. */
#define FREEZE_TOKEN (TOKEN_MAGIC << 32)

static struct capreq {
    _Atomic uint32_t state;
    _Atomic uint64_t token;
    pid_t tid;
    goro__g *want;
    goro__regs regs;
    bool match;
} req;

static goro__lock cap_mu = GORO__LOCK_INIT;
static _Atomic uint64_t token_gen;
static struct sigaction prev_action;
static _Atomic bool handler_installed;

void goro__regs_from_ucontext(const void *ucv, goro__regs *rg) {
    const ucontext_t *uc = ucv;
    memset(rg, 0, sizeof *rg);
#if defined(__x86_64__)
    static const int map[16] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI,
                                REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};
    for (int i = 0; i < 16; i++)
        RSET(rg, i, (uintptr_t)uc->uc_mcontext.gregs[map[i]]);
    RSET(rg, 16, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    for (int i = 0; i < 31; i++)
        RSET(rg, i, (uintptr_t)uc->uc_mcontext.regs[i]);
    RSET(rg, 31, (uintptr_t)uc->uc_mcontext.sp);
    RSET(rg, 32, (uintptr_t)uc->uc_mcontext.pc);
#endif
}

static void chain(int sig, siginfo_t *si, void *uc) {
    struct sigaction *p = &prev_action;
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction)
            p->sa_sigaction(sig, si, uc);
    } else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN && p->sa_handler) {
        p->sa_handler(sig);
    }
}

static void capture_handler(int sig, siginfo_t *si, void *ucv) {
    int saved_errno = errno;
    uint64_t val = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
    bool ours = si->si_code == SI_QUEUE && si->si_pid == getpid() && (val >> 32) == TOKEN_MAGIC;
    if (!ours) {
        chain(sig, si, ucv);
        errno = saved_errno;
        return;
    }
    if (val == FREEZE_TOKEN) {
        /* A crash stops this thread for good (freeze.c). */
        goro__regs rg;
        goro__regs_from_ucontext(ucv, &rg);
        goro__freeze_self(&rg);
        errno = saved_errno;
        return;
    }
    if (atomic_load_explicit(&req.token, memory_order_acquire) != val) {
        errno = saved_errno; /* a late signal of a finished request */
        return;
    }
    uint32_t s = REQ_SENT;
    if (!atomic_compare_exchange_strong_explicit(&req.state, &s, REQ_BUSY, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        errno = saved_errno;
        return;
    }
    if ((pid_t)syscall(SYS_gettid) != req.tid) {
        atomic_store_explicit(&req.state, REQ_SENT, memory_order_release);
        errno = saved_errno;
        return;
    }
    goro__regs_from_ucontext(ucv, &req.regs);
    goro__g *g = goro__getg_maybe();
    goro__g *want = req.want;
    bool match = g == want;
    if (match && !want->is_thread) {
        uintptr_t sp = req.regs.r[GORO__REG_SP];
        match = sp >= (uintptr_t)want->stack_lo && sp < (uintptr_t)want->stack_hi;
    }
    req.match = match;
    atomic_store_explicit(&req.state, REQ_POSTED, memory_order_release);
    goro__futex_wake(&req.state, 1);
    /* Paused until the observer has copied what it needs (bounded wait). */
    int64_t deadline = goro__nanotime() + 2000 * 1000000LL;
    while (atomic_load_explicit(&req.state, memory_order_acquire) == REQ_POSTED) {
        int64_t rem = deadline - goro__nanotime();
        if (rem <= 0)
            break;
        goro__futex_wait(&req.state, REQ_POSTED, rem);
    }
    atomic_store_explicit(&req.state, REQ_DONE, memory_order_release);
    goro__futex_wake(&req.state, 1);
    errno = saved_errno;
}

bool goro__capture_send_freeze(pid_t pid, pid_t tid) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = GORO__SIG_CAPTURE;
    si.si_code = SI_QUEUE;
    si.si_pid = pid;
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)FREEZE_TOKEN;
    return syscall(SYS_rt_tgsigqueueinfo, pid, tid, GORO__SIG_CAPTURE, &si) == 0;
}

void goro__capture_init(void) {
    bool f = false;
    if (!atomic_compare_exchange_strong(&handler_installed, &f, true))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = capture_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(GORO__SIG_CAPTURE, &sa, &prev_action);
}

/* Waits while req.state == from (bounded); returns the state seen. */
static uint32_t wait_while(uint32_t from, int64_t timeout_ns) {
    int64_t deadline = goro__nanotime() + timeout_ns;
    uint32_t s;
    while ((s = atomic_load_explicit(&req.state, memory_order_acquire)) == from) {
        int64_t rem = deadline - goro__nanotime();
        if (rem <= 0)
            break;
        goro__futex_wait(&req.state, from, rem < 1000000 ? rem : 1000000);
    }
    return s;
}

NO_SANITIZE static void copy_bytes(char *dst, uintptr_t src, size_t n) {
    const volatile char *s = (const volatile char *)src;
    for (size_t i = 0; i < n; i++)
        dst[i] = s[i];
}

#define MAX_COPY ((size_t)8 << 20)
#define NAME_MAX_COPY 256

/* Stack mappings of plain threads, by tid, so that a paused thread does not
   wait for a read of procfs self/maps (long when thousands of goroutine
   stacks have guard pages). Only observers holding cap_mu touch it. */
#define TSTACKS 64
static struct {
    pid_t tid;
    uintptr_t lo, hi;
} tstacks[TSTACKS];
static unsigned tstacks_next;

static bool thread_bounds(pid_t tid, uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
    for (int i = 0; i < TSTACKS; i++)
        if (tstacks[i].tid == tid && sp >= tstacks[i].lo && sp < tstacks[i].hi) {
            *lo = tstacks[i].lo;
            *hi = tstacks[i].hi;
            return true;
        }
    if (!goro__maps_range(sp, lo, hi))
        return false;
    int slot = -1;
    for (int i = 0; i < TSTACKS && slot < 0; i++)
        if (tstacks[i].tid == tid)
            slot = i;
    if (slot < 0)
        slot = (int)(tstacks_next++ % TSTACKS);
    tstacks[slot].tid = tid;
    tstacks[slot].lo = *lo;
    tstacks[slot].hi = *hi;
    return true;
}

typedef struct scratch {
    char *buf;
    size_t cap;
} scratch;

static __thread scratch tscratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* Frees a thread's scratch when the thread ends (e.g. the debug server's). */
static void scratch_free(void *p) {
    scratch *sc = p;
    free(sc->buf);
    sc->buf = NULL;
    sc->cap = 0;
}
static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

static bool scratch_reserve(size_t n) {
    if (tscratch.cap >= n)
        return true;
    char *b = realloc(tscratch.buf, n);
    if (!b)
        return false;
    if (!tscratch.buf) {
        pthread_once(&scratch_once, scratch_key_init);
        pthread_setspecific(scratch_key, &tscratch);
    }
    tscratch.buf = b;
    tscratch.cap = n;
    return true;
}

static int capture_signal(goro__g *g, pid_t tid, goro__gcap *cap, goro__stk *stk, int max,
                          int ntail) {
    bool crashing = atomic_load_explicit(&goro__observe_crashing, memory_order_relaxed);
    if (!atomic_load(&handler_installed) || tid <= 0)
        return CAP_UNAVAIL;
    /* The copy buffer is prepared before the target is paused. */
    size_t want_copy = g->is_thread ? (size_t)256 << 10 : g->stack_size + 4096;
    if (!crashing && !scratch_reserve(want_copy))
        return CAP_UNAVAIL;
    if (crashing) {
        bool got = false;
        for (int i = 0; i < 200 && !(got = goro__lock_try(&cap_mu)); i++)
            usleep(1000);
        if (!got)
            return CAP_UNAVAIL;
    } else {
        goro__lock_acquire(&cap_mu);
    }
    /* A thread a crash froze answers no signal: its registers are in the
       frozen table, and it stays still. */
    int result = CAP_RETRY;
    goro__g *frozen_g = NULL;
    bool frozen = crashing && goro__frozen_regs(tid, &req.regs, &frozen_g);
    if (frozen) {
        req.match = frozen_g == g;
        if (req.match && !g->is_thread) {
            uintptr_t sp = req.regs.r[GORO__REG_SP];
            req.match = sp >= (uintptr_t)g->stack_lo && sp < (uintptr_t)g->stack_hi;
        }
        goto paused;
    }
    uint64_t token = (TOKEN_MAGIC << 32) | (atomic_fetch_add(&token_gen, 1) & 0xffffffffULL);
    if ((token & 0xffffffffULL) == 0)
        token = (TOKEN_MAGIC << 32) | (atomic_fetch_add(&token_gen, 1) & 0xffffffffULL);
    req.tid = tid;
    req.want = g;
    req.match = false;
    atomic_store_explicit(&req.state, REQ_SENT, memory_order_release);
    atomic_store_explicit(&req.token, token, memory_order_release);

    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = GORO__SIG_CAPTURE;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)token;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, GORO__SIG_CAPTURE, &si) != 0) {
        atomic_store(&req.token, 0);
        atomic_store(&req.state, REQ_IDLE);
        goro__lock_release(&cap_mu);
        return CAP_RETRY; /* the thread is gone: the caller re-reads the status */
    }
    uint32_t s = wait_while(REQ_SENT, 200 * 1000000LL);
    if (s == REQ_SENT) {
        uint32_t e = REQ_SENT;
        if (atomic_compare_exchange_strong(&req.state, &e, REQ_CANCELLED)) {
            atomic_store(&req.token, 0);
            atomic_store(&req.state, REQ_IDLE);
            goro__lock_release(&cap_mu);
            return CAP_UNAVAIL;
        }
        s = e;
    }
    if (s == REQ_BUSY)
        s = wait_while(REQ_BUSY, 2000 * 1000000LL);
    if (s != REQ_POSTED) {
        /* Cannot happen unless the handler stalled for seconds. */
        atomic_store(&req.token, 0);
        goro__lock_release(&cap_mu);
        return CAP_UNAVAIL;
    }

paused:
    /* ---- the target is paused: no allocation, no locks ---- */
    char namebuf[NAME_MAX_COPY];
    namebuf[0] = 0;
    char *copy = NULL;
    size_t copy_len = 0;
    bool mapped = false;
    uintptr_t copy_lo = 0;
    goro__regs rg = req.regs;
    if (req.match && (g->system || !goro__g_visible(g, atomic_load(&g->status)))) {
        result = CAP_SKIP_;
    } else if (req.match) {
        uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
        memset(cap, 0, sizeof *cap);
        fill_info(g, st, cap);
        take_labels(g, cap);
        if (g->name) {
            size_t nl = strnlen(g->name, NAME_MAX_COPY - 1);
            memcpy(namebuf, g->name, nl);
            namebuf[nl] = 0;
        }
        uintptr_t sp = rg.r[GORO__REG_SP], lo = 0, hi = 0;
        bool have = false;
        if (!g->is_thread) {
            lo = (uintptr_t)g->stack_lo;
            hi = (uintptr_t)g->stack_hi;
            have = true;
        } else {
            have = thread_bounds(tid, sp, &lo, &hi);
        }
        if (have && sp >= lo && sp < hi) {
            copy_lo = sp >= lo + 256 ? sp - 256 : lo;
            size_t n = hi - copy_lo;
            if (n > MAX_COPY)
                n = MAX_COPY;
            if (!crashing && n <= tscratch.cap) {
                copy = tscratch.buf;
            } else {
                void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m != MAP_FAILED) {
                    copy = m;
                    mapped = true;
                }
            }
            if (copy) {
                copy_bytes(copy, copy_lo, n);
                copy_len = n;
            }
        }
        result = CAP_DONE;
    }
    if (!frozen) {
        atomic_store_explicit(&req.state, REQ_RELEASED, memory_order_release);
        goro__futex_wake(&req.state, 1);
        wait_while(REQ_RELEASED, 2000 * 1000000LL);
        atomic_store(&req.token, 0);
        atomic_store(&req.state, REQ_IDLE);
    }
    goro__lock_release(&cap_mu);
    /* ---- released ---- */

    if (result != CAP_DONE)
        return result;
    if (namebuf[0])
        cap->name = strdup(namebuf);
    stk->n_head = stk->n_tail = 0;
    stk->gap = 0;
    stk->leaf_exact = true;
    if (copy) {
        goro__mem mem = {.n = 1, .r = {{copy_lo, copy_lo + copy_len, copy}}};
        goro__unwind_stk(&rg, true, &mem, stk, max, ntail);
    }
    if (mapped)
        munmap(copy, copy_len);
    return CAP_DONE;
}

/* ------------------------------------------------------------ dispatch */

int goro__capture_other(goro__g *g, goro__gcap *cap, goro__stk *stk, int max, int ntail) {
    memset(cap, 0, sizeof *cap);
    stk->nsig = 0;
    stk->truncated = false;
    stk->start_fn = 0;
    stk->blocked = false;
    stk->n_head = stk->n_tail = 0;
    stk->gap = 0;
    stk->leaf_exact = false;
    /* Before a goroutine is pinned (or paused) only its status word and the
       flags that never change for a record (is_g0, is_thread) are read: a
       record can be reused by a new goroutine at any moment, and the rest of
       it is rewritten then. Visibility is decided on what the pin saw. */
    if (g->is_g0)
        return GORO__CAP_SKIP;
    bool crashing = atomic_load_explicit(&goro__observe_crashing, memory_order_relaxed);
    int attempts = crashing ? 5 : 50;
    for (int attempt = 0; attempt < attempts; attempt++) {
        uint32_t st =
            atomic_load_explicit(&g->status, memory_order_acquire) & ~(uint32_t)GORO__G_SCAN;
        if (st == GORO__G_DEAD)
            return GORO__CAP_SKIP;
        int r;
        if (g->is_thread) {
            if (st != GORO__G_WAITING && st != GORO__G_RUNNING)
                return GORO__CAP_SKIP; /* outside the runtime, not goroutine 1 */
            r = capture_signal(g, g->tid, cap, stk, max, ntail);
            if (r == CAP_DONE && !goro__g_visible(g, cap->status)) {
                goro__gcap_clear(cap);
                return GORO__CAP_SKIP;
            }
        } else if (st == GORO__G_WAITING || st == GORO__G_RUNNABLE) {
            uint32_t seen;
            r = capture_parked(g, cap, stk, max, ntail, &seen);
        } else if (st == GORO__G_RUNNING || st == GORO__G_SYSCALL) {
            goro__m *m = atomic_load_explicit(&g->m, memory_order_acquire);
            r = m ? capture_signal(g, goro__m_tid(m), cap, stk, max, ntail) : CAP_RETRY;
            if (r == CAP_SKIP_)
                return GORO__CAP_SKIP;
        } else {
            return GORO__CAP_SKIP; /* idle */
        }
        if (r == CAP_DONE) {
            goro__stk_note(stk, cap);
            return GORO__CAP_OK;
        }
        if (r == CAP_SKIP_)
            return GORO__CAP_SKIP;
        if (r == CAP_UNAVAIL)
            break;
        if (attempt > 8)
            usleep(50);
        else
            sched_yield();
    }
    /* Running somewhere we could not ask: header only, as Go prints it. */
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
    if (!goro__g_visible(g, st))
        return GORO__CAP_SKIP;
    memset(cap, 0, sizeof *cap);
    fill_info(g, st, cap);
    cap->unavailable = true;
    stk->n_head = stk->n_tail = 0;
    return GORO__CAP_UNAVAILABLE;
}
