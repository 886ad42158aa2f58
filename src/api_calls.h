/*
 * api_calls.h - the table of goro calls shown as a blocked goroutine's top
 * frame (src/api_calls.c); read by observe and by the gdb extension.
 */
#ifndef GORO_API_CALLS_H
#define GORO_API_CALLS_H

#include "observe/observe.h"

extern GORO__HIDDEN const goro__api_call goro__api_calls[]; /* ends with {NULL} */

#endif
