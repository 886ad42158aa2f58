/*
 * apiframes.c - which goro call a blocked goroutine shows as its top frame.
 *
 * Go shows the library call a goroutine is blocked in (time.Sleep,
 * sync.(*Mutex).Lock, net.(*conn).Read, ...) above the user's frame, but
 * never the runtime functions behind the language's own operations
 * (runtime.chanrecv1, runtime.selectgo, runtime.gopark). goro's rule, the
 * same split (docs/observability.md):
 *
 *   shown   the calls that are library functions in Go: goro_sleep, the
 *           sync calls (mutex, rwmutex, waitgroup, cond, once, sem), the
 *           I/O calls (read, write, accept, dial, wait_fd), the pool and
 *           limiter calls, the leak checks, and goro_main (its caller waits
 *           in it for the body);
 *   hidden  the calls that are language operations or runtime.* in Go:
 *           channel send/receive/close (also the timed and try forms),
 *           select, yield, exit, panic, and everything else.
 *
 * The frame comes from the stack when the call's own frame is there (its
 * real line); when the compiler turned the calls into jumps (a goroutine
 * ending in `goro_sleep(...)` compiles to `jmp goro_sleep`, which may jump
 * on to the runtime) it is synthesized from the wait reason at the
 * function's entry.
 */
#include "observe.h"

#include <string.h>

/* The table of calls, goro__api_calls, names functions of every floor, so it
   lives at the top of the library (src/api_calls.c), which hands it over at
   start-up (goro__api_calls_use); until then no call is shown. */
static const goro__api_call no_calls[] = {{NULL, NULL, -1}};
static const goro__api_call *api_calls = no_calls;

void goro__api_calls_use(const goro__api_call *calls) { api_calls = calls; }

bool goro__api_public(const char *name) {
    return name && strncmp(name, "goro_", 5) == 0 && name[5] != '_' && name[5] != 0;
}

bool goro__api_shown(const char *name) {
    if (!goro__api_public(name))
        return false;
    for (const goro__api_call *c = api_calls; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return true;
    return false;
}

uintptr_t goro__api_for_reason(int reason) {
    for (const goro__api_call *c = api_calls; c->name; c++)
        if (c->reason == reason)
            return (uintptr_t)c->fn;
    return 0;
}
