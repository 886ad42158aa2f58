/*
 * floors.c - the top of the library: links the floors above the runtime to
 * it. goro__init calls goro__upcalls_fill once, first thing; each floor
 * fills its own slots of the runtime's hook table (src/runtime/upcalls.h).
 * Naming those fill functions here, in code that always runs, is what keeps
 * them (and what they name) in a static link.
 */
#include "chan/chan_internal.h"
#include "io/io_internal.h"
#include "leak/leak_internal.h"
#include "observe/observe.h"

void goro__upcalls_fill(goro__upcall_table *t) {
    goro__observe_upcalls(t);
    goro__netpoll_upcalls(t);
    goro__chan_upcalls(t);
    goro__leak_upcalls(t);
}
