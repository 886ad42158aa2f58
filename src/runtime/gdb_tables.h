/*
 * gdb_tables.h - named numbers the gdb extension (gdb/goro-gdb.py) reads
 * from a process or a core file instead of calling into it.
 *
 * A table is an array of {name, value} pairs ended by {NULL, 0}; each value
 * is an offset, a size, a constant or an address. The extension finds the
 * tables by their symbol names (goro__gdb_layout, goro__gdb_allgs,
 * goro__gdb_status), merges them and refuses to run when a name it needs is
 * missing, so a layout change breaks tests/test_gdb.c (which checks every
 * name the script asks for), never the script silently.
 */
#ifndef GORO_GDB_TABLES_H
#define GORO_GDB_TABLES_H

#include <stdint.h>

#include "runtime.h"

/* Tables are kept even by a link with --gc-sections: nothing refers to them. */
#if defined(__has_attribute)
#if __has_attribute(retain)
#define GORO__GDB_KEEP __attribute__((used, retain))
#endif
#endif
#ifndef GORO__GDB_KEEP
#define GORO__GDB_KEEP __attribute__((used))
#endif

typedef struct goro__gdb_entry {
    const char *name;
    uint64_t value;
} goro__gdb_entry;

/* The third table, goro__gdb_layout (record layouts, states, the saved
   context), is defined in src/gdb_layout.c, above every floor whose records
   it describes; nothing refers to it but gdb. */
/* g.c: where allgs lives, and the source dir (srcfile). */
extern GORO__HIDDEN const goro__gdb_entry goro__gdb_allgs[];
/* status.c: Go's wait reason strings. */
extern GORO__HIDDEN const goro__gdb_entry goro__gdb_status[];

#endif
