/*
 * upcalls.h - the one way the runtime calls the floors above it.
 *
 * The runtime never names a function of a higher floor (docs/runtime.md,
 * "Layers"). Where it must reach up (print a traceback, report a crash,
 * poll descriptors, pin a channel, start the layers above), it calls through
 * goro__upcalls, a table of function pointers. Every slot starts as a safe
 * default in upcalls.c (no netpoll, no traceback, a plain exit), so the
 * runtime works with only itself linked.
 *
 * The table is filled once, by a constructor at the top of the library
 * (src/floors.c) that asks each floor to fill its own slots. It runs at
 * constructor priority 101, before the runtime's own start-up (the
 * fatal-signal handlers, installed at program start) and before any
 * constructor of the program, so every reader runs after it and the plain
 * (non-atomic) slots are never read while written. The runtime names
 * nothing above it, not even the filler: the static library is one
 * relocatable object, so that constructor is linked whenever any of the
 * runtime is.
 */
#ifndef GORO_UPCALLS_H
#define GORO_UPCALLS_H

#include "runtime.h"

#include <unistd.h>

typedef struct goro__upcall_table {
    /* src/observe: start-up (SIGQUIT dumps, stack capture, the pprof
       endpoints), while the runtime is not yet public. */
    void (*observe_init)(void);
    /* Prints goroutine g's stack (all: every goroutine) in Go's format. */
    void (*traceback_print)(int fd, goro__g *g, bool all);
    /* The report of fatal signal sig (overflowed: the goroutine whose stack
       guard was hit, or NULL); does not return. */
    void (*crash_report)(int sig, const void *siginfo, const void *uc, goro__g *overflowed);
    /* Makes this thread the one that reports a crash, after stopping every
       other thread; a thread that comes second waits for good. */
    bool (*crash_begin)(void);
    /* Exit status 2, or abort() under GOROTRACEBACK=crash; does not return. */
    void (*crash_exit)(void);
    /* Drops one reference to a goroutine's pprof label set. */
    void (*labels_release)(goro__labels *l);

    /* src/io/netpoll.c (see there).
       netpoll_waiters(): goroutines currently parked on a descriptor (cheap,
       lock-free read); while it is non-zero an idle scheduler thread blocks
       in netpoll_poll instead of its futex.
       netpoll_poll(timeout_ns, ready): epoll_wait for at most timeout_ns
       (-1: no limit, 0: just look) and append to *ready every goroutine
       whose wait completed (after winning its claim; still WAITING). The
       caller must make each one runnable (sched.c, netpoll_inject): the
       scheduler, not the poller, decides on which queue they go, so that a
       polling M can take a P and run them itself. May run on several
       threads, each with its own list.
       netpoll_break(): makes a blocked netpoll_poll return soon; safe from
       any thread. */
    int (*netpoll_waiters)(void);
    void (*netpoll_poll)(int64_t timeout_ns, goro__glist *ready);
    void (*netpoll_break)(void);

    /* src/chan: pin / unpin a channel for goro_opts.holds. */
    void (*chan_hold)(goro_chan *c, goro__g *g);
    void (*chan_unhold)(goro_chan *c, goro__g *g);

    /* src/leak: start-up once the runtime is public (GOROLEAKCHECK, the
       goroutineleak profile). */
    void (*leak_init)(void);
} goro__upcall_table;

extern GORO__HIDDEN goro__upcall_table goro__upcalls;

/* The no-return slots, for callers that are noreturn themselves. */
__attribute__((noreturn)) static inline void goro__up_crash_exit(void) {
    goro__upcalls.crash_exit();
    _exit(2);
}
__attribute__((noreturn)) static inline void
goro__up_crash_report(int sig, const void *siginfo, const void *uc, goro__g *overflowed) {
    goro__upcalls.crash_report(sig, siginfo, uc, overflowed);
    _exit(2);
}

#endif
