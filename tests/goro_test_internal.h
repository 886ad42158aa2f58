/*
 * goro_test_internal.h - test helpers that read the runtime's own records
 * (white-box tests: a goroutine's state and wait reason without a dump).
 * Include after goro_test.h.
 */
#ifndef GORO_TEST_INTERNAL_H
#define GORO_TEST_INTERNAL_H

#include "goro_test.h"
#include "runtime/runtime.h"

/* The record of goroutine id, or NULL. Records are never freed, so the
   pointer stays valid; its contents belong to whoever has that id now. */
static inline __attribute__((unused)) goro__g *goro_test_find_g(uint64_t id) {
    size_t n = goro__allg_count();
    for (size_t i = 0; i < n; i++) {
        goro__g *g = goro__allg_at(i);
        if (g && g->id == id)
            return g;
    }
    return NULL;
}

/* Is goroutine id parked with `reason` right now? */
static inline __attribute__((unused)) bool goro_test_parked_as(uint64_t id, int reason) {
    goro__g *g = goro_test_find_g(id);
    if (!g)
        return false;
    uint32_t st = atomic_load(&g->status) & ~(uint32_t)GORO__G_SCAN;
    return st == GORO__G_WAITING && atomic_load(&g->waitreason) == reason;
}

/* How many goroutines are parked with `reason` (-1: any wait reason) right
   now, not counting the runtime's own; with_threads: plain threads blocked
   in a goro call (they have a record too) count as well. */
static inline __attribute__((unused)) int goro_test_count_parked(int reason, bool with_threads) {
    int n = 0;
    size_t all = goro__allg_count();
    for (size_t i = 0; i < all; i++) {
        goro__g *g = goro__allg_at(i);
        if (!g)
            continue;
        uint32_t st = atomic_load(&g->status) & ~(uint32_t)GORO__G_SCAN;
        if (st != GORO__G_WAITING)
            continue;
        if ((!with_threads && __atomic_load_n(&g->is_thread, __ATOMIC_RELAXED)) ||
            __atomic_load_n(&g->is_g0, __ATOMIC_RELAXED) ||
            __atomic_load_n(&g->system, __ATOMIC_RELAXED))
            continue;
        n += reason < 0 || atomic_load(&g->waitreason) == reason;
    }
    return n;
}

/* Waits (up to 5 s, with goro_test_wait_until) until goroutine id is
   parked with `reason`, and fails the test if it never is: "the waiter is
   parked" as a state, instead of a sleep that hopes so. */
#define goro_test_await_parked(id, reason)                                                         \
    do {                                                                                           \
        uint64_t goro_test__id = (id);                                                             \
        bool goro_test__ok =                                                                       \
            goro_test_wait_until(goro_test_parked_as(goro_test__id, (reason)), GORO_SEC(5));       \
        cr_assert(goro_test__ok, "goroutine %llu never parked as %s",                              \
                  (unsigned long long)goro_test__id, goro__waitreason_str(reason));                \
    } while (0)

/* If g is parked with `reason`, pins it with goro__g_scan_begin and returns
   true; otherwise leaves it alone. */
static inline __attribute__((unused)) bool goro_test__pin_parked(goro__g *g, int reason) {
    uint32_t st;
    if (!goro__g_scan_begin(g, &st))
        return false;
    if (st == GORO__G_WAITING && atomic_load(&g->waitreason) == reason)
        return true;
    goro__g_scan_end(g);
    return false;
}

/* goro_test_await_parked that also returns the record pinned with
   goro__g_scan_begin, so that the caller can read what it waits on (the
   caller calls goro__g_scan_end). */
static inline __attribute__((unused)) goro__g *goro_test_await_parked_pinned(uint64_t id,
                                                                             int reason) {
    goro__g *g = goro_test_find_g(id);
    cr_assert_not_null(g, "no goroutine %llu", (unsigned long long)id);
    cr_assert(goro_test_wait_until(goro_test__pin_parked(g, reason), GORO_SEC(5)),
              "goroutine %llu never parked as %s", (unsigned long long)id,
              goro__waitreason_str(reason));
    return g;
}

#endif /* GORO_TEST_INTERNAL_H */
