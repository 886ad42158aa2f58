/*
 * floors.c - the top of the library: links the floors above the runtime to
 * it. goro__init calls goro__upcalls_fill once, first thing; each floor
 * fills its own slots of the runtime's hook table (src/runtime/upcalls.h).
 * Naming those fill functions here, in code that always runs, is what keeps
 * them (and what they name) in a static link; likewise the gdb extension's
 * layout table (gdb_layout.c), which nothing calls.
 */
#include "chan/chan_internal.h"
#include "io/io_internal.h"
#include "leak/leak_internal.h"
#include "observe/observe.h"
#include "runtime/gdb_layout.h"

/* A reference from code that is always linked pulls gdb_layout.o (and its
   .debug_gdb_scripts entry) out of libgoro.a. */
GORO__GDB_KEEP static const void *const keep_gdb_layout = goro__gdb_layout;

void goro__upcalls_fill(goro__upcall_table *t) {
    goro__observe_upcalls(t);
    goro__netpoll_upcalls(t);
    goro__chan_upcalls(t);
    goro__leak_upcalls(t);
}
