/*
 * debug_server.h - the debug server's test hooks (internal; see
 * debug_server.c). What other layers add to the server is registered in
 * debug_registry.h, which they include instead.
 */
#ifndef GORO_DEBUG_SERVER_H
#define GORO_DEBUG_SERVER_H

#include <stdint.h>

#include "../runtime/runtime.h"

/* Tests: the read timeout of connections accepted from now on (default
   10 s; ns <= 0 restores it). */
GORO__HIDDEN void goro__debug_set_read_timeout(int64_t ns);

#endif
