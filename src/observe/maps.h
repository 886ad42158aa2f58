/*
 * maps.h - procfs self/maps iteration (maps.c), allocation-free.
 */
#ifndef GORO_OBSERVE_MAPS_H
#define GORO_OBSERVE_MAPS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct goro__maps_ent {
    uintptr_t lo, hi;
    uint64_t offset;
    uint64_t inode;
    bool r, w, x;
    const char *path; /* valid during the callback only; "" if anonymous */
} goro__maps_ent;

/* Calls cb for every entry until it returns non-zero (returned). -1 if the
   file cannot be opened. */
int goro__maps_foreach(int (*cb)(const goro__maps_ent *e, void *arg), void *arg)
    __attribute__((visibility("hidden")));

#endif
