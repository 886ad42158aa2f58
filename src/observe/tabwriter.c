/*
 * tabwriter.c - the column layout of Go's text/tabwriter, as the debug=1
 * profile uses it: NewWriter(w, minwidth 1, tabwidth 8, padding 1, '\t', 0).
 *
 * Text is a sequence of lines, each a list of cells terminated by TAB plus
 * a last, unterminated cell (the text before the newline). A column block is
 * a run of consecutive lines that all have a terminated cell in that column;
 * its width is the widest cell (in runes) plus the padding, at least
 * minwidth. Padding with TABs rounds the column up to a multiple of the tab
 * width and writes ceil((width - cell)/8) TABs. Blocks nest: columns to the
 * right are laid out within each block of the column to their left (the
 * recursion in format below follows text/tabwriter's Writer.format).
 *
 * The caller flushes where Go's writer flushes by itself: at a line without
 * any TAB (the "N @ 0x..." and "# labels:" lines, the blank line).
 */
#include "observe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tabwriter.h"

#define MINWIDTH 1
#define TABWIDTH 8
#define PADDING 1

static size_t runes(const char *s, size_t n) {
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            r++;
    return r;
}

void goro__tw_init(goro__tw *t, goro__ow *w) {
    memset(t, 0, sizeof *t);
    t->w = w;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n)
        return false;
    *p = n;
    *cap = c;
    return true;
}

static void add_cell(goro__tw *t, const char *s, size_t n, bool terminated) {
    if (t->oom)
        return;
    if (!grow((void **)&t->text, &t->text_cap, t->text_len + n, 1) ||
        !grow((void **)&t->cells, &t->cells_cap, t->ncells + 1, sizeof *t->cells)) {
        t->oom = true;
        return;
    }
    memcpy(t->text + t->text_len, s, n);
    goro__twcell *c = &t->cells[t->ncells++];
    c->off = t->text_len;
    c->len = n;
    c->width = runes(s, n);
    (void)terminated;
    t->text_len += n;
    t->cur_cells++;
}

void goro__tw_cell(goro__tw *t, const char *s, size_t n) { add_cell(t, s, n, true); }

void goro__tw_endline(goro__tw *t, const char *s, size_t n) {
    add_cell(t, s, n, false);
    if (t->oom)
        return;
    if (!grow((void **)&t->lines, &t->lines_cap, t->nlines + 1, sizeof *t->lines)) {
        t->oom = true;
        return;
    }
    goro__twline *l = &t->lines[t->nlines++];
    l->first = t->ncells - t->cur_cells;
    l->n = t->cur_cells;
    t->cur_cells = 0;
}

static void pad(goro__tw *t, size_t textw, size_t cellw) {
    static const char tabs[] = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";
    cellw = (cellw + TABWIDTH - 1) / TABWIDTH * TABWIDTH;
    size_t n = (cellw - textw + TABWIDTH - 1) / TABWIDTH;
    while (n > 0) {
        size_t k = n < sizeof tabs - 1 ? n : sizeof tabs - 1;
        goro__ow_write(t->w, tabs, k);
        n -= k;
    }
}

static void write_lines(goro__tw *t, size_t *widths, int nwidths, int line0, int line1) {
    for (int i = line0; i < line1; i++) {
        goro__twline *l = &t->lines[i];
        for (int j = 0; j < l->n; j++) {
            goro__twcell *c = &t->cells[l->first + j];
            if (c->len)
                goro__ow_write(t->w, t->text + c->off, c->len);
            if (j < nwidths)
                pad(t, c->width, widths[j]);
        }
        goro__ow_write(t->w, "\n", 1);
    }
}

static void format(goro__tw *t, size_t *widths, int nwidths, int line0, int line1) {
    int column = nwidths;
    for (int this = line0; this < line1; this ++) {
        if (column >= t->lines[this].n - 1)
            continue;
        write_lines(t, widths, nwidths, line0, this);
        line0 = this;
        size_t width = MINWIDTH;
        for (; this < line1; this ++) {
            goro__twline *l = &t->lines[this];
            if (column >= l->n - 1)
                break;
            size_t w = t->cells[l->first + column].width + PADDING;
            if (w > width)
                width = w;
        }
        widths[nwidths] = width;
        format(t, widths, nwidths + 1, line0, this);
        line0 = this;
    }
    write_lines(t, widths, nwidths, line0, line1);
}

void goro__tw_flush(goro__tw *t) {
    if (t->oom) {
        t->w->err = t->w->err ? t->w->err : ENOMEM;
    } else if (t->nlines) {
        int maxcells = 0;
        for (int i = 0; i < t->nlines; i++)
            if (t->lines[i].n > maxcells)
                maxcells = t->lines[i].n;
        size_t *widths = malloc((size_t)(maxcells + 1) * sizeof *widths);
        if (!widths)
            t->w->err = t->w->err ? t->w->err : ENOMEM;
        else
            format(t, widths, 0, 0, t->nlines);
        free(widths);
    }
    t->nlines = 0;
    t->ncells = 0;
    t->text_len = 0;
    t->cur_cells = 0;
    t->oom = false;
}

void goro__tw_free(goro__tw *t) {
    free(t->text);
    free(t->cells);
    free(t->lines);
    memset(t, 0, sizeof *t);
}
