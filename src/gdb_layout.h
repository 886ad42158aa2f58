/*
 * gdb_layout.h - the record-layout table of the gdb extension
 * (src/gdb_layout.c; the format is in src/runtime/gdb_tables.h).
 */
#ifndef GORO_GDB_LAYOUT_H
#define GORO_GDB_LAYOUT_H

#include "runtime/gdb_tables.h"

extern GORO__HIDDEN const goro__gdb_entry goro__gdb_layout[];

#endif
