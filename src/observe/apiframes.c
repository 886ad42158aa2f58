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

#define API(f, r) {#f, (void *)f, r}

/* Also read by the gdb extension (gdb_layout.c), which follows the same
   rule: keep the {NULL} end. */
const goro__api_call goro__api_calls[] = {
    API(goro_sleep, GORO__WAIT_SLEEP),
    API(goro_mutex_lock, GORO__WAIT_MUTEX),
    API(goro_rwmutex_rlock, GORO__WAIT_RWMUTEX_R),
    API(goro_rwmutex_lock, GORO__WAIT_RWMUTEX_W),
    API(goro_waitgroup_wait, GORO__WAIT_WAITGROUP),
    API(goro_cond_wait, GORO__WAIT_COND),
    API(goro_sem_acquire, GORO__WAIT_SEMACQUIRE),
    API(goro_once_do, -1),
    API(goro_read, -1),
    API(goro_write, -1),
    API(goro_accept, -1),
    API(goro_dial_tcp, -1),
    API(goro_wait_fd, -1),
    API(goro_pool_process, -1),
    API(goro_pool_process_timed, -1),
    API(goro_pool_process_ctx, -1),
    API(goro_limiter_go, -1),
    API(goro_limiter_wait, -1),
    API(goro_leak_check, -1),
    API(goro_leak_verify_none, -1),
    API(goro_main, -1), /* the caller waiting for its body */
    {NULL, NULL, -1},
};

bool goro__api_public(const char *name) {
    return name && strncmp(name, "goro_", 5) == 0 && name[5] != '_' && name[5] != 0;
}

bool goro__api_shown(const char *name) {
    if (!goro__api_public(name))
        return false;
    for (const goro__api_call *c = goro__api_calls; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return true;
    return false;
}

uintptr_t goro__api_for_reason(int reason) {
    for (const goro__api_call *c = goro__api_calls; c->name; c++)
        if (c->reason == reason)
            return (uintptr_t)c->fn;
    return 0;
}
