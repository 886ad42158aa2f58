/*
 * upcalls.c - the runtime's hook table into the floors above it, with the
 * defaults that apply while a slot is empty (upcalls.h says who fills it).
 */
#include "upcalls.h"

#include <signal.h>
#include <string.h>

static void no_init(void) {}

static void no_traceback(int fd, goro__g *g, bool all) {
    (void)fd;
    (void)g;
    (void)all;
}

static void plain_crash_exit(void) { _exit(2); }

/* Without a crash printer: one line, then the signal's default action. */
static void plain_crash_report(int sig, const void *siginfo, const void *uc, goro__g *overflowed) {
    (void)siginfo;
    (void)uc;
    (void)overflowed;
    static const char msg[] = "fatal error: unexpected signal\n";
    goro__write_all(2, msg, sizeof msg - 1);
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(2);
}

static bool no_crash_begin(void) { return true; }

static void no_labels_release(goro__labels *l) { (void)l; }

static int no_netpoll_waiters(void) { return 0; }

static void no_netpoll_poll(int64_t timeout_ns, goro__glist *ready) {
    (void)timeout_ns;
    (void)ready;
}

static void no_netpoll_break(void) {}

static void no_chan_hold(goro_chan *c, goro__g *g) {
    (void)c;
    (void)g;
}

goro__upcall_table goro__upcalls = {
    .observe_init = no_init,
    .traceback_print = no_traceback,
    .crash_report = plain_crash_report,
    .crash_begin = no_crash_begin,
    .crash_exit = plain_crash_exit,
    .labels_release = no_labels_release,
    .netpoll_waiters = no_netpoll_waiters,
    .netpoll_poll = no_netpoll_poll,
    .netpoll_break = no_netpoll_break,
    .chan_hold = no_chan_hold,
    .chan_unhold = no_chan_hold,
    .leak_init = no_init,
};
