/*
 * api_calls.c - the goro calls a blocked goroutine shows as its top frame
 * (the rule is in src/observe/apiframes.c, which reads this table).
 *
 * It names functions of every floor (runtime, sync, io, pool, leak and
 * goro_main), so it sits at the top of the library; src/floors.c hands it
 * to observe at start-up.
 */
#include "api_calls.h"

/* A brace initializer in a macro: clang-format 14 would split it. */
/* clang-format off */
#define API(f, r) {#f, (void *)f, r}
/* clang-format on */

/* Also read by the gdb extension (gdb_layout.c), which follows the same
   rule: keep the {NULL} end. */
GORO__HIDDEN const goro__api_call goro__api_calls[] = {
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
