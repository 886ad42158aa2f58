/*
 * traceback.c - the runtime's traceback printer for panics, fatal errors
 * and fatal signals (goro__traceback_print; Go's traceback.go).
 *
 * goro__traceback_print runs when the process is about to die, possibly in
 * a signal handler on an alternate stack: it switches the observe layer to
 * crash mode (bounded waits, try-locks, no new capture if a lock is stuck),
 * streams each goroutine straight to the descriptor from static buffers,
 * and never builds a whole snapshot.
 */
#include "observe.h"

#include <string.h>
#include <unistd.h>

static goro__lock tb_mu = GORO__LOCK_INIT;
static uintptr_t tb_pcs[GORO__DUMP_HEAD], tb_tail[GORO__DUMP_TAIL];

static void tb_one(goro__ow *w, goro__g *g, goro__g *self, bool as_running, bool *first) {
    goro__gsnap gs;
    memset(&gs, 0, sizeof gs);
    gs.stk.pcs = tb_pcs;
    gs.stk.tail = tb_tail;
    if (g == self) {
        goro__capture_self(g, &gs.cap, &gs.stk, GORO__DUMP_HEAD, GORO__DUMP_TAIL);
        gs.current = true;
        if (as_running)
            gs.cap.status = GORO__G_RUNNING;
    } else if (goro__capture_other(g, &gs.cap, &gs.stk, GORO__DUMP_HEAD, GORO__DUMP_TAIL) ==
               GORO__CAP_SKIP) {
        return;
    }
    if (!*first)
        goro__ow_write(w, "\n", 1);
    *first = false;
    goro__format_goroutine(w, &gs, goro__nanotime(), NULL);
    goro__ow_flush(w);
    goro__gcap_clear(&gs.cap);
}

void goro__traceback_print(int fd, goro__g *g, bool all) {
    if (goro__debug.traceback == 0)
        return;
    atomic_store(&goro__observe_crashing, 1);
    bool locked = false;
    for (int i = 0; i < 2000 && !(locked = goro__lock_try(&tb_mu)); i++)
        usleep(1000);
    if (!locked)
        return;
    goro__ow w;
    goro__ow_init_fd(&w, fd);
    goro__g *self = goro__getg_maybe();
    bool first = true;
    if (g)
        tb_one(&w, g, self, true, &first);
    if (all) {
        size_t n = goro__allg_count();
        for (size_t i = 0; i < n; i++) {
            goro__g *x = goro__allg_at(i);
            if (!x || x == g || x->is_g0)
                continue;
            if (x == self &&
                !goro__g_visible(x, atomic_load_explicit(&x->status, memory_order_relaxed)))
                continue;
            tb_one(&w, x, self, false, &first);
        }
    }
    goro__ow_flush(&w);
    goro__lock_release(&tb_mu);
}
