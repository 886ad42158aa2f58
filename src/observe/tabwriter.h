/*
 * tabwriter.h - Go's text/tabwriter column layout (tabwriter.c).
 */
#ifndef GORO_OBSERVE_TABWRITER_H
#define GORO_OBSERVE_TABWRITER_H

#include "observe.h"

typedef struct goro__twcell {
    size_t off, len, width;
} goro__twcell;

typedef struct goro__twline {
    int first, n; /* cells[first .. first+n); the last is unterminated */
} goro__twline;

typedef struct goro__tw {
    goro__ow *w;
    char *text;
    size_t text_len, text_cap;
    goro__twcell *cells;
    size_t cells_cap;
    int ncells, cur_cells;
    goro__twline *lines;
    size_t lines_cap;
    int nlines;
    bool oom;
} goro__tw;

GORO__HIDDEN void goro__tw_init(goro__tw *t, goro__ow *w);
/* A TAB-terminated cell of the current line. */
GORO__HIDDEN void goro__tw_cell(goro__tw *t, const char *s, size_t n);
/* The last cell of the line (no TAB after it) and the newline. */
GORO__HIDDEN void goro__tw_endline(goro__tw *t, const char *s, size_t n);
/* Lays out and writes every buffered line. */
GORO__HIDDEN void goro__tw_flush(goro__tw *t);
GORO__HIDDEN void goro__tw_free(goro__tw *t);

#endif
