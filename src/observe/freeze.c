/*
 * freeze.c - a crash stops every other thread before it reports.
 *
 * Go stops the world when a goroutine faults: no other goroutine, no exit
 * from main, no deferred call runs while the report is written. goro gets
 * there with the capture signal (GORO__SIG_CAPTURE): the crashing thread
 * sends every other thread of the process a "freeze" request; each one,
 * inside the signal handler, records where it was interrupted (its
 * registers and its goroutine) in the frozen table and then blocks for
 * good. The crash report reads a frozen thread's registers from the table
 * instead of signalling it again (the signal is masked inside its own
 * handler), so running goroutines keep their stacks in the report.
 *
 * Invariants:
 *  - freeze_owner is set once (0 -> the crasher's tid) and never cleared:
 *    the process dies after the report;
 *  - a table slot is claimed by an atomic increment of nfrozen_claim and
 *    published with `ready` (release); readers load `ready` (acquire)
 *    before reading the slot;
 *  - a thread with the capture signal blocked cannot be frozen; the
 *    crasher waits for the acknowledgements only for a bounded time.
 */
#include "observe.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_FROZEN 1024

typedef struct frozen {
    _Atomic bool ready;
    pid_t tid;
    goro__g *g;
    goro__regs regs;
} frozen;

static frozen table[MAX_FROZEN];
static _Atomic int nclaim;
static _Atomic pid_t freeze_owner;
static _Atomic int nacked;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

bool goro__freeze_active(void) { return atomic_load(&freeze_owner) != 0; }

void goro__freeze_self(const goro__regs *rg) {
    pid_t self = gettid_();
    pid_t owner = atomic_load(&freeze_owner);
    if (owner == 0 || owner == self)
        return;
    int i = atomic_fetch_add(&nclaim, 1);
    if (i < MAX_FROZEN) {
        frozen *f = &table[i];
        f->tid = self;
        f->g = goro__getg_maybe();
        f->regs = *rg;
        atomic_store_explicit(&f->ready, true, memory_order_release);
    }
    atomic_fetch_add(&nacked, 1);
    /* Blocked for good: only the crasher's exit ends this thread. */
    for (;;)
        pause();
}

bool goro__frozen_regs(pid_t tid, goro__regs *rg, goro__g **g) {
    int n = atomic_load(&nclaim);
    if (n > MAX_FROZEN)
        n = MAX_FROZEN;
    for (int i = 0; i < n; i++) {
        frozen *f = &table[i];
        if (atomic_load_explicit(&f->ready, memory_order_acquire) && f->tid == tid) {
            *rg = f->regs;
            *g = f->g;
            return true;
        }
    }
    return false;
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Async-signal-safe: open/getdents64/close and the signal itself. */
bool goro__freeze_others(void) {
    pid_t self = gettid_(), zero = 0;
    if (!atomic_compare_exchange_strong(&freeze_owner, &zero, self))
        return false;
    goro__capture_init();
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return true;
    pid_t pid = getpid();
    int sent = 0;
    char buf[1024]; /* small: a panicking goroutine calls this on its own stack */
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->d_reclen;
            pid_t tid = 0;
            for (const char *p = d->d_name; *p >= '0' && *p <= '9'; p++)
                tid = tid * 10 + (*p - '0');
            if (tid <= 0 || tid == self)
                continue;
            if (goro__capture_send_freeze(pid, tid))
                sent++;
        }
    }
    close(fd);
    /* Wait (bounded) until they stopped: a thread that blocks the signal or
       is stuck in the kernel never answers. */
    int64_t deadline = goro__nanotime() + 200 * 1000000LL;
    while (atomic_load(&nacked) < sent && goro__nanotime() < deadline) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return true;
}
