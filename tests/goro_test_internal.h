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

/* Waits (up to 5 s) until goroutine id is parked with `reason`; returns its
   record pinned with goro__g_scan_begin (the caller calls goro__g_scan_end). */
static inline __attribute__((unused)) goro__g *goro_test_await_parked(uint64_t id, int reason) {
    goro__g *g = goro_test_find_g(id);
    cr_assert_not_null(g, "no goroutine %llu", (unsigned long long)id);
    if (!goro_test_wait_until(goro_test__pin_parked(g, reason), GORO_SEC(5)))
        cr_assert_fail("goroutine %llu never parked as %s", (unsigned long long)id,
                       goro__waitreason_str(reason));
    return g;
}

#endif /* GORO_TEST_INTERNAL_H */
