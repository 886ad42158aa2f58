/*
 * stack.c - goroutine stacks and the records that live on top of them.
 *
 * C code cannot have its stack moved, so a goroutine gets a fixed stack,
 * reserved generously and committed lazily by the kernel (MAP_NORESERVE:
 * an idle goroutine costs the pages it touched, usually one).
 *
 * Slot layout, low to high:
 *
 *   [ guard or gap page ][ usable stack ........ ][ goro__g record ]
 *   slot_base            stack_lo                stack_hi           slot end
 *
 * The record sits at the top of its own stack so that a parked goroutine
 * touches a single page (record + its few frames).
 *
 * Guard strategy. A PROT_NONE guard page splits a mapping, and each guard
 * costs two kernel VMAs; the kernel's default vm.max_map_count (65530) would
 * cap us near 32k goroutines. So slots are carved from large chunks, and the
 * first guard_budget slots (about (max_map_count - 16384) / 2) get a real
 * guard page: an overflow faults at once and the SIGSEGV handler names the
 * goroutine. Slots past the budget keep the page as an untouched gap, which
 * keeps small overflows from reaching the neighbour's record; when such a
 * goroutine ends, mincore(2) tells whether its gap page was ever touched,
 * and if so the overflow is reported (fatal, naming the goroutine). No
 * canary is written: touching the bottom of every stack would cost each
 * goroutine a second page.
 * Records are never unmapped (allgs keeps pointers to them); dead ones are
 * cached per P and globally and reused with their stacks.
 */
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORO__HAVE_VALGRIND 1
#endif
#ifdef GORO__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

/* LeakSanitizer scans thread stacks and globals, not our mappings: a
   goroutine alive at exit would have what only its stack or record points
   to (its holds array, a buffer it was filling) reported as leaked. Every
   stack mapping is a root region of its own (never unmapped). */
static void lsan_root(void *p, size_t len) {
#ifdef GORO__ASAN
    __lsan_register_root_region(p, len);
#endif
    (void)p;
    (void)len;
}

#define CHUNK_SLOTS 64 /* == one allgs group (goro__g_register) */

static _Atomic size_t page_size;
static goro__lock chunk_lock = GORO__LOCK_INIT;
static char *chunk_next, *chunk_end; /* default-size carving, under chunk_lock */
static char *chunk_start;
static uint32_t chunk_group; /* the chunk's allgs group */
static long guard_budget = -1;
static long guards_used;

size_t goro__page_size(void) {
    size_t ps = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (!ps) {
        ps = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page_size, ps, memory_order_relaxed);
    }
    return ps;
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static size_t record_size(void) { return round_up(sizeof(goro__g), 64); }

static long read_max_map_count(void) {
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Under chunk_lock. */
static bool take_guard(void) {
    if (guard_budget < 0) {
        long m = read_max_map_count();
        guard_budget = m > 2 * 16384 ? (m - 16384) / 2 : m / 4;
        const char *e = getenv("GOROSTACKGUARDS");
        if (e)
            guard_budget = atol(e);
    }
    if (guards_used >= guard_budget)
        return false;
    guards_used++;
    return true;
}

static size_t slot_size_for(size_t stack_size) {
    size_t ps = goro__page_size();
    return ps + round_up(stack_size + record_size(), ps);
}

/* Sets up a fresh slot at base (already mapped read-write). */
static goro__g *slot_init(char *base, size_t slot_size, bool guard, uint32_t group, uint32_t slot) {
    size_t ps = goro__page_size();
    if (guard) {
        int saved_errno = errno; /* a refused guard is not goro_go's failure */
        if (mprotect(base, ps, PROT_NONE) != 0)
            guard = false;
        errno = saved_errno;
    }
    goro__g *g = (goro__g *)(base + slot_size - record_size());
    memset(g, 0, sizeof *g);
    g->slot_base = base;
    g->stack_lo = base + ps;
    g->stack_hi = (char *)g;
    g->stack_size = (size_t)((char *)g->stack_hi - (char *)g->stack_lo);
    g->guarded = guard;
    g->status = GORO__G_DEAD;
#ifdef GORO__HAVE_VALGRIND
    g->vg_stack_id = VALGRIND_STACK_REGISTER(g->stack_lo, g->stack_hi);
#endif
    goro__g_register(group, slot);
    return g;
}

static goro__g *alloc_default_slot(void) {
    size_t ss = slot_size_for(GORO__STACK_DEFAULT);
    goro__lock_acquire(&chunk_lock);
    if (chunk_next == NULL || chunk_next + ss > chunk_end) {
        size_t len = ss * CHUNK_SLOTS;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            goro__lock_release(&chunk_lock);
            return NULL;
        }
        lsan_root(m, len);
        chunk_start = chunk_next = m;
        chunk_end = (char *)m + len;
        chunk_group = goro__allg_group((goro__g *)((char *)m + ss - record_size()), ss);
    }
    char *base = chunk_next;
    chunk_next += ss;
    bool guard = take_guard();
    uint32_t group = chunk_group, slot = (uint32_t)((size_t)(base - chunk_start) / ss);
    goro__lock_release(&chunk_lock);
    return slot_init(base, ss, guard, group, slot);
}

static goro__g *alloc_custom_slot(size_t stack_size) {
    size_t ss = slot_size_for(stack_size);
    void *m =
        mmap(NULL, ss, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    lsan_root(m, ss);
    goro__lock_acquire(&chunk_lock);
    bool guard = take_guard();
    goro__lock_release(&chunk_lock);
    return slot_init(m, ss, guard, goro__allg_group((goro__g *)((char *)m + ss - record_size()), 0),
                     0);
}

/* Dead records with a non-default stack size, any size (rare). */
static goro__lock custom_lock = GORO__LOCK_INIT;
static goro__g *custom_free;

static void prepare(goro__g *g) {
    (void)g;
#ifdef GORO__ASAN
    /* Frames of the previous owner never returned: clear their redzones. */
    ASAN_UNPOISON_MEMORY_REGION(g->stack_lo, g->stack_size);
#endif
}

goro__g *goro__stack_alloc(size_t stack_size, goro__p *p) {
    goro__g *g = NULL;
    size_t ps = goro__page_size();
    if (stack_size == 0 || stack_size == GORO__STACK_DEFAULT) {
        if (p && p->gfree) {
            g = p->gfree;
            p->gfree = g->freelink;
            p->ngfree--;
        } else {
            goro__lock_acquire(&goro__sched.gfree_lock);
            /* Refill half a local cache at once to amortise the lock. */
            while (goro__sched.gfree) {
                goro__g *x = goro__sched.gfree;
                goro__sched.gfree = x->freelink;
                goro__sched.ngfree--;
                if (!g) {
                    g = x;
                } else if (p && p->ngfree < GORO__GFREE_MAX / 2) {
                    x->freelink = p->gfree;
                    p->gfree = x;
                    p->ngfree++;
                } else {
                    x->freelink = goro__sched.gfree;
                    goro__sched.gfree = x;
                    goro__sched.ngfree++;
                    break;
                }
            }
            goro__lock_release(&goro__sched.gfree_lock);
            if (!g)
                g = alloc_default_slot();
        }
    } else {
        if (stack_size > (SIZE_MAX >> 2))
            return NULL; /* would wrap below; no such mapping exists anyway */
        size_t want = round_up(stack_size, ps);
        if (want < 4 * ps)
            want = 4 * ps;
        goro__lock_acquire(&custom_lock);
        for (goro__g **pp = &custom_free; *pp; pp = &(*pp)->freelink) {
            if ((*pp)->stack_size >= want && (*pp)->stack_size < want + record_size() + ps) {
                g = *pp;
                *pp = g->freelink;
                break;
            }
        }
        goro__lock_release(&custom_lock);
        if (!g)
            g = alloc_custom_slot(want);
    }
    if (g) {
        g->freelink = NULL;
        prepare(g);
    }
    return g;
}

void goro__stack_free(goro__g *g, goro__p *p) {
    size_t def = slot_size_for(GORO__STACK_DEFAULT) - goro__page_size() - record_size();
    if (g->stack_size != def) {
        goro__lock_acquire(&custom_lock);
        g->freelink = custom_free;
        custom_free = g;
        goro__lock_release(&custom_lock);
        return;
    }
    if (p) {
        g->freelink = p->gfree;
        p->gfree = g;
        if (++p->ngfree <= GORO__GFREE_MAX)
            return;
        /* Spill half of the local cache to the global one. */
        goro__lock_acquire(&goro__sched.gfree_lock);
        while (p->ngfree > GORO__GFREE_MAX / 2) {
            goro__g *x = p->gfree;
            p->gfree = x->freelink;
            p->ngfree--;
            x->freelink = goro__sched.gfree;
            goro__sched.gfree = x;
            goro__sched.ngfree++;
        }
        goro__lock_release(&goro__sched.gfree_lock);
        return;
    }
    goro__lock_acquire(&goro__sched.gfree_lock);
    g->freelink = goro__sched.gfree;
    goro__sched.gfree = g;
    goro__sched.ngfree++;
    goro__lock_release(&goro__sched.gfree_lock);
}

void goro__stack_check(goro__g *g) {
    if (g->guarded || !g->slot_base)
        return; /* a guard page would have faulted */
    unsigned char resident = 0;
    if (mincore(g->slot_base, goro__page_size(), &resident) == 0 && (resident & 1))
        goro__fatal("stack overflow in goroutine %llu%s%s%s: it ran past the bottom of its "
                    "%zu-byte stack (use goro_opts.stack_size)",
                    (unsigned long long)g->id, g->name ? " (" : "", g->name ? g->name : "",
                    g->name ? ")" : "", g->stack_size);
}

goro__g *goro__stack_guard_owner(goro__g *cur, uintptr_t addr) {
    size_t ps = goro__page_size();
    if (cur && cur->slot_base && addr >= (uintptr_t)cur->slot_base - ps &&
        addr < (uintptr_t)cur->stack_lo + 256)
        return cur;
    return NULL;
}
