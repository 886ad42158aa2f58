/*
 * list.h - the one intrusive doubly linked list of the library (the idea of
 * libuv's queue.h, written for goro).
 *
 * A record that can be queued embeds a goro__link; a queue is a goro__list
 * {first, last}. Unlike libuv's circular queue with a sentinel, the list is
 * NULL-terminated at both ends, for two reasons:
 *   - a zeroed goro__list is an empty list, so a list can live inside a
 *     user's zeroed object (goro_sem, goro_cond) with no init call;
 *   - a goro__list holds no pointer to itself, so it can be copied or moved
 *     (goro__list_take), e.g. handed from one record to another (sema_table.c).
 *
 * The header depends on nothing but <stddef.h>/<stdbool.h>: it is the lowest
 * layer, included by runtime, chan, sync, io and pool alike.
 *
 * Invariants (every call made under the owner's lock):
 *   - first == NULL iff last == NULL iff the list is empty;
 *   - first->prev == NULL, last->next == NULL;
 *   - a linked link is in exactly one list; an unlinked one has next == prev
 *     == NULL (remove and pop reset them). A lone element also has both NULL,
 *     so "is it linked" is the owner's to track (e.g. goro__waiter.linked).
 *
 * Lock-free peeks: `first` is always written with a release store, so a
 * reader without the lock may load it atomically (goro__list_peek_empty, or
 * __atomic_load_n(&l->first, ...) with its own order) to see whether the list
 * looks empty. Only `first` is published that way; everything else is read
 * and written under the lock. On x86-64 a release store is a plain store.
 */
#ifndef GORO_UTIL_LIST_H
#define GORO_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct goro__link {
    struct goro__link *next;
    struct goro__link *prev;
} goro__link;

typedef struct goro__list {
    goro__link *first; /* also peeked without the lock (see above) */
    goro__link *last;
} goro__list;

/* The record that embeds `link` as its `member`, or NULL for a NULL link. */
#define goro__list_entry(link, type, member)                                                       \
    __extension__({                                                                                \
        goro__link *goro__le_ = (link);                                                            \
        goro__le_ ? (type *)(void *)((char *)goro__le_ - offsetof(type, member)) : (type *)NULL;   \
    })

/* for (it = first record; it; it = next record). Not safe against removing
   `it` inside the body: use GORO__LIST_FOREACH_SAFE for that. */
#define GORO__LIST_FOREACH(it, list, type, member)                                                 \
    for (type *it = goro__list_entry((list)->first, type, member); it != NULL;                     \
         it = goro__list_entry(it->member.next, type, member))

/* As GORO__LIST_FOREACH, but reads the next link before the body runs, so the
   body may unlink `it` or end its life (ready its owner, free it). */
#define GORO__LIST_FOREACH_SAFE(it, list, type, member)                                            \
    for (goro__link *goro__ln_ = (list)->first,                                                    \
                    *goro__lnext_ = goro__ln_ ? goro__ln_->next : NULL;                            \
         goro__ln_ != NULL;                                                                        \
         goro__ln_ = goro__lnext_, goro__lnext_ = goro__ln_ ? goro__ln_->next : NULL)              \
        for (type *it = goro__list_entry(goro__ln_, type, member); it != NULL; it = NULL)

static inline void goro__list_set_first_(goro__list *l, goro__link *n) {
    __atomic_store_n(&l->first, n, __ATOMIC_RELEASE);
}

static inline bool goro__list_empty(const goro__list *l) { return l->first == NULL; }

/* Lock-free: does the list look empty? (acquire: later loads stay after it) */
static inline bool goro__list_peek_empty(goro__list *l) {
    return __atomic_load_n(&l->first, __ATOMIC_ACQUIRE) == NULL;
}

static inline void goro__list_push_back(goro__list *l, goro__link *n) {
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        goro__list_set_first_(l, n);
    l->last = n;
}

static inline void goro__list_push_front(goro__list *l, goro__link *n) {
    n->prev = NULL;
    n->next = l->first;
    if (l->first)
        l->first->prev = n;
    else
        l->last = n;
    goro__list_set_first_(l, n);
}

/* Links n just before pos (which is in l). */
static inline void goro__list_insert_before(goro__list *l, goro__link *pos, goro__link *n) {
    n->next = pos;
    n->prev = pos->prev;
    if (pos->prev)
        pos->prev->next = n;
    else
        goro__list_set_first_(l, n);
    pos->prev = n;
}

/* Unlinks n, which must be in l. */
static inline void goro__list_remove(goro__list *l, goro__link *n) {
    if (n->prev)
        n->prev->next = n->next;
    else
        goro__list_set_first_(l, n->next);
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->next = n->prev = NULL;
}

/* Unlinks and returns the first link, or NULL if l is empty. */
static inline goro__link *goro__list_pop_front(goro__list *l) {
    goro__link *n = l->first;
    if (n)
        goro__list_remove(l, n);
    return n;
}

/* Returns l's whole contents as a list of its own and leaves l empty. */
static inline goro__list goro__list_take(goro__list *l) {
    goro__list all = {l->first, l->last};
    goro__list_set_first_(l, NULL);
    l->last = NULL;
    return all;
}

#endif
