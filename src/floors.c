/*
 * floors.c - the top of the library: connects the floors above the runtime
 * to it, once, before anything else runs.
 *
 * The runtime never names a function above it (docs/runtime.md, "Layers").
 * It calls up through its hook table (src/runtime/upcalls.h), whose slots
 * start as safe defaults; a constructor here asks each floor to fill its own
 * slots, and hands observe the table of goro calls shown in traces
 * (src/api_calls.c). Priority 101 runs it before every constructor of
 * default priority: the runtime's own (which installs the fatal-signal
 * handlers, so a fault before the first goro call is reported in full) and
 * any of the program's that already calls goro. In a shared libgoro it runs
 * when the library is loaded, before the program's constructors.
 *
 * Static links keep this file although nothing names it: libgoro.a holds
 * the whole library as one relocatable object (CMakeLists.txt, "one object
 * for static links"), so a program that links any goro call links this
 * constructor, every floor it fills from, and gdb_layout.c's table.
 */
#include "api_calls.h"
#include "chan/chan_internal.h"
#include "io/io_internal.h"
#include "leak/leak_internal.h"
#include "observe/observe.h"
#include "runtime/upcalls.h"

__attribute__((constructor(101))) static void floors_connect(void) {
    goro__upcall_table *t = &goro__upcalls;
    goro__observe_upcalls(t);
    goro__netpoll_upcalls(t);
    goro__chan_upcalls(t);
    goro__leak_upcalls(t);
    goro__api_calls_use(goro__api_calls);
}
