/*
 * profile.c - the public ways to see goroutines: goro_stack (runtime.Stack)
 * and goro_profile_write (the goroutine profile, pprof.Lookup("goroutine")).
 * The traceback printed when the process dies is in traceback.c.
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

size_t goro_stack(char *buf, size_t len, bool all) {
    if (!buf || len == 0)
        return 0;
    goro__init();
    goro__ow w;
    goro__ow_init_bounded(&w, buf, len);
    if (all) {
        goro__snapshot *s = goro__snapshot_take(GORO__SNAP_DUMP);
        if (s) {
            goro__format_dump(&w, s, NULL, NULL);
            goro__snapshot_free(s);
        }
    } else {
        goro__g *g = goro__getg();
        goro__gsnap gs;
        memset(&gs, 0, sizeof gs);
        gs.cap.id = g->id;
        gs.cap.status = GORO__G_RUNNING;
        goro__format_header(&w, &gs.cap, 0, NULL);
        if (!goro__ow_full(&w)) {
            uintptr_t *pcs = malloc((GORO__DUMP_HEAD + GORO__DUMP_TAIL) * sizeof *pcs);
            if (pcs) {
                gs.stk.pcs = pcs;
                gs.stk.tail = pcs + GORO__DUMP_HEAD;
                goro__capture_self(g, &gs.cap, &gs.stk, GORO__DUMP_HEAD, GORO__DUMP_TAIL);
                gs.cap.status = GORO__G_RUNNING;
                gs.current = true;
                goro__format_body(&w, &gs);
                goro__gcap_clear(&gs.cap);
                free(pcs);
            }
        }
    }
    goro__ow_flush(&w);
    size_t n = w.mem_len;
    if (n < len)
        buf[n] = 0;
    return n;
}

int goro_profile_write(FILE *f, int debug) {
    if (!f)
        return GORO_EINVAL;
    goro__init();
    goro__snapshot *s = goro__snapshot_take(debug >= 2 ? GORO__SNAP_DUMP : 0);
    if (!s)
        return GORO_ENOMEM;
    goro__ow w;
    goro__ow_init_file(&w, f);
    int err = goro__profile_emit(&w, s, NULL, "goroutine", debug);
    int ferr = goro__ow_flush(&w);
    goro__snapshot_free(s);
    return err ? err : ferr;
}
