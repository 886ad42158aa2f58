/*
 * pcmap.c - an insert-only map from PC to pointer with lock-free reads, for
 * the per-PC caches (symbols, unwind rules).
 *
 * Invariants:
 *  - a slot's value is written before its key is published (release), and a
 *    reader that sees the key (acquire) sees the value; keys never change
 *    once set and entries are never removed, so a reader needs no lock;
 *  - writers hold m->lock; growing copies every entry into a table twice as
 *    big and publishes it (release). Old tables are never freed (a reader may
 *    still be probing one), which costs at most as much as the live table.
 *  - key 0 means empty (PC 0 is never looked up).
 */
#include "observe.h"

#include <stdlib.h>

typedef struct pcslot {
    _Atomic uintptr_t key;
    void *_Atomic val;
} pcslot;

typedef struct pctab {
    size_t mask;
    size_t count;
    pcslot slot[];
} pctab;

struct goro__pcmap {
    pctab *_Atomic tab;
    goro__lock lock;
};

static inline size_t pchash(uintptr_t k) {
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static pctab *tab_new(size_t cap) {
    pctab *t = calloc(1, sizeof(pctab) + cap * sizeof(pcslot));
    if (t)
        t->mask = cap - 1;
    return t;
}

goro__pcmap *goro__pcmap_new(void) {
    goro__pcmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pctab *t = tab_new(1024);
    if (!t) {
        free(m);
        return NULL;
    }
    atomic_store_explicit(&m->tab, t, memory_order_release);
    return m;
}

void *goro__pcmap_get(goro__pcmap *m, uintptr_t key) {
    pctab *t = atomic_load_explicit(&m->tab, memory_order_acquire);
    for (size_t i = pchash(key) & t->mask;; i = (i + 1) & t->mask) {
        uintptr_t k = atomic_load_explicit(&t->slot[i].key, memory_order_acquire);
        if (k == key)
            return atomic_load_explicit(&t->slot[i].val, memory_order_relaxed);
        if (k == 0)
            return NULL;
    }
}

static void tab_insert(pctab *t, uintptr_t key, void *val) {
    for (size_t i = pchash(key) & t->mask;; i = (i + 1) & t->mask) {
        if (atomic_load_explicit(&t->slot[i].key, memory_order_relaxed) == 0) {
            atomic_store_explicit(&t->slot[i].val, val, memory_order_relaxed);
            atomic_store_explicit(&t->slot[i].key, key, memory_order_release);
            t->count++;
            return;
        }
    }
}

void *goro__pcmap_put(goro__pcmap *m, uintptr_t key, void *val) {
    goro__lock_acquire(&m->lock);
    void *old = goro__pcmap_get(m, key);
    if (old) {
        goro__lock_release(&m->lock);
        return old;
    }
    pctab *t = atomic_load_explicit(&m->tab, memory_order_relaxed);
    if ((t->count + 1) * 2 > t->mask + 1) {
        pctab *n = tab_new((t->mask + 1) * 2);
        if (!n) {
            goro__lock_release(&m->lock);
            return val; /* not cached; the caller still uses its value */
        }
        for (size_t i = 0; i <= t->mask; i++) {
            uintptr_t k = atomic_load_explicit(&t->slot[i].key, memory_order_relaxed);
            if (k)
                tab_insert(n, k, atomic_load_explicit(&t->slot[i].val, memory_order_relaxed));
        }
        atomic_store_explicit(&m->tab, n, memory_order_release);
        t = n;
    }
    tab_insert(t, key, val);
    goro__lock_release(&m->lock);
    return val;
}
