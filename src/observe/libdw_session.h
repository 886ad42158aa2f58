/*
 * libdw_session.h - the libdw session shared by symbols.c (names, lines) and unwind.c
 * (CFI). Only with GORO_HAVE_LIBDW. Every call here requires goro__dw_lock.
 */
#ifndef GORO_OBSERVE_LIBDW_SESSION_H
#define GORO_OBSERVE_LIBDW_SESSION_H

#if GORO_HAVE_LIBDW
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

/* The module containing pc, re-reading procfs self/maps (rate limited) when
   pc lies outside every known module (dlopen). NULL if none. */
__attribute__((visibility("hidden"))) Dwfl_Module *goro__dw_module(uintptr_t pc);
#endif

#endif
