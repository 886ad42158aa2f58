/*
 * leak_internal.h - shared by the leak checks (leakcheck.c) and the
 * provable-leak analysis (leakprof.c).
 */
#ifndef GORO_LEAK_INTERNAL_H
#define GORO_LEAK_INTERNAL_H

#include "../observe/observe.h"
#include "../runtime/runtime.h"

/* The count found by the last goro_leak_profile_write (Go's Profile.Count():
   stale until the next run), for the debug server's index page. */
GORO__HIDDEN int goro__leak_last_count(void);

/* Installs the GOROLEAKCHECK=1 exit check (called once by goro__init). */
GORO__HIDDEN void goro__leak_init(void);

#endif
