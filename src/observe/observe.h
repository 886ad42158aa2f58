/*
 * observe.h - the internal interface of src/observe: stack capture,
 * symbolization, snapshots of all goroutines and Go's three goroutine-profile
 * formats. Used by the rest of src/observe, by the debug server and by the
 * leak layer (src/leak). Not installed.
 *
 * Pipeline:
 *
 *   capture.c   registers of one goroutine record: itself (here), a parked or
 *               runnable goroutine (pinned with goro__g_scan_begin, saved
 *               context), a running goroutine or a plain thread inside the
 *               runtime (asked with a signal, GORO__SIG_CAPTURE)
 *   unwind.c    return-PC list from a register set, with DWARF CFI (libdw),
 *               every memory read checked against the known stack ranges
 *   symbols.c   PC -> function, file:line, inline chain (libdw), cached per PC
 *   snapshot.c  every visible goroutine: ids, state, name, labels, PCs
 *   frames.c    PCs -> logical frames, with goro's own frames hidden
 *   text.c      debug=1 (grouped, Go's tabwriter layout) and debug=2
 *   proto.c     debug=0 (gzipped profile.proto)
 *
 * Nothing here stops the world: each goroutine is pinned (or paused in the
 * capture signal handler) only while its own registers and stack are read.
 */
#ifndef GORO_OBSERVE_H
#define GORO_OBSERVE_H

/* For code that reads other stacks and registers on purpose (unwinding a
   parked goroutine, a signal handler's capture): the sanitizers must not
   instrument those reads. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#endif
#endif
#ifndef NO_SANITIZE
#define NO_SANITIZE
#endif

#include "../runtime/runtime.h" /* first: it defines _GNU_SOURCE */
#include "../runtime/upcalls.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The signal used to ask another thread for its registers (as Go uses SIGURG
   for preemption). Signals of this number that goro did not send are passed
   on to the handler that was installed before goro's. */
#define GORO__SIG_CAPTURE SIGURG

/* Depth caps, in physical frames (return PCs). Profiles keep the innermost
   GORO__PROF_DEPTH (Go's default profstackdepth) and drop the rest silently;
   dumps keep the innermost GORO__DUMP_HEAD and the outermost GORO__DUMP_TAIL
   and count what lies between (debug=2 elides all but 50 + 50 anyway). */
#define GORO__PROF_DEPTH 128
#define GORO__DUMP_HEAD 1024
#define GORO__DUMP_TAIL 64

/* ------------------------------------------------------------- registers */

#if defined(__x86_64__)
/* DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, 16 = return address (rip). */
#define GORO__NREGS 17
#define GORO__REG_SP 7
#define GORO__REG_FP 6
#define GORO__REG_PC 16
#elif defined(__aarch64__)
/* DWARF numbering: x0..x30, 31 = sp, 32 = pc (ours; DWARF has no pc column). */
#define GORO__NREGS 33
#define GORO__REG_SP 31
#define GORO__REG_FP 29
#define GORO__REG_PC 32
#endif

typedef struct goro__regs {
    uintptr_t r[GORO__NREGS];
    uint64_t valid; /* bit i: r[i] is known */
} goro__regs;

/* Memory an unwinder may read: up to 3 ranges [lo, hi); `copy` non-NULL
   means the bytes of [lo, hi) live at copy (a snapshot taken while the
   owner was paused), else they are read in place. */
typedef struct goro__memrange {
    uintptr_t lo, hi;
    const char *copy;
} goro__memrange;
typedef struct goro__mem {
    goro__memrange r[3];
    int n;
} goro__mem;
GORO__HIDDEN bool goro__mem_read(const goro__mem *m, uintptr_t addr, uintptr_t *out);

/* A captured stack: return PCs, leaf first. pcs[0] is a return PC too,
   unless leaf_exact: then pcs[0] is the interrupted instruction + 1 (Go's
   convention, so that "pc - 1" is always inside the right function). */
#define GORO__MAX_SIGFRAMES 4
typedef struct goro__stk {
    uintptr_t *pcs; /* head: the innermost n_head PCs */
    int n_head;
    uintptr_t *tail; /* outermost n_tail PCs (dumps only), in order */
    int n_tail;
    int64_t gap; /* PCs walked but dropped between head and tail */
    bool leaf_exact;
    /* Head indexes of frames a signal interrupted (exact PCs, stored + 1);
       the frame before each is the signal trampoline (hidden). */
    int16_t sig_at[GORO__MAX_SIGFRAMES];
    int nsig;
    /* What the formats add to the walk (frames.c): the goroutine's start
       function at the bottom when the compiler removed its frame, and the
       goro call it is blocked in at the top (from the wait reason). */
    uintptr_t start_fn; /* goro_go's fn; 0: a thread or unknown */
    bool truncated;     /* the walk stopped at max with no tail kept */
    bool blocked;       /* parked (waiting) when captured */
    uint8_t reason;     /* its wait reason then */
} goro__stk;

/* unwind.c: walks from `regs` (pcs[0] = the register PC). leaf_exact: the
   PC is an interrupted instruction (not a return address). Stores up to
   `max` PCs in pcs; with tail != NULL keeps walking and stores the last
   `ntail` in tail (a ring, returned in order). Returns the number stored in
   pcs; *n_tail, *gap as in goro__stk. Never faults: every read goes through
   goro__mem_read. */
GORO__HIDDEN int goro__unwind(const goro__regs *regs, bool leaf_exact, const goro__mem *mem,
                              uintptr_t *pcs, int max, uintptr_t *tail, int ntail, int *n_tail,
                              int64_t *gap);

/* The same, filling stk (head, tail, gap, leaf_exact, signal frames). */
GORO__HIDDEN void goro__unwind_stk(const goro__regs *regs, bool leaf_exact, const goro__mem *mem,
                                   goro__stk *stk, int max, int ntail);

/* ------------------------------------------------------------- capturing */

/* What one capture saw, read while the goroutine was pinned or paused. */
typedef struct goro__gcap {
    goro__g *g;
    uint64_t id, parent_id;
    uint32_t status; /* without GORO__G_SCAN */
    uint8_t reason;
    bool is_thread;
    bool unavailable; /* running elsewhere and could not be asked */
    int64_t waitsince;
    void *waitobj;
    uintptr_t gopc;
    uintptr_t startpc;    /* g->fn when the goroutine has not run yet */
    uintptr_t fn;         /* g->fn: its start function (0 for threads) */
    uintptr_t parent_fn;  /* the creator goroutine's start function, or 0 */
    char *name;           /* malloc'ed copy or NULL */
    goro__labels *labels; /* retained (goro__labels_release) or NULL */
} goro__gcap;

enum goro__cap_result { GORO__CAP_OK, GORO__CAP_SKIP, GORO__CAP_UNAVAILABLE };

/* capture.c. Captures g (any record but the caller's own) into *cap and
   *stk (pcs/tail buffers supplied by the caller, sizes max/ntail).
   GORO__CAP_SKIP: g is not visible (dead, idle, g0, system). */
GORO__HIDDEN int goro__capture_other(goro__g *g, goro__gcap *cap, goro__stk *stk, int max,
                                     int ntail);
/* Captures the caller (the walk starts in goro__capture_self itself; goro's
   frames are hidden by the formats). g may be NULL (a thread with no
   record). */
GORO__HIDDEN void goro__capture_self(goro__g *g, goro__gcap *cap, goro__stk *stk, int max,
                                     int ntail);
GORO__HIDDEN void goro__gcap_clear(goro__gcap *cap);
/* The registers a signal handler's ucontext_t holds (async-signal-safe). */
GORO__HIDDEN void goro__regs_from_ucontext(const void *uc, goro__regs *rg);
/* Sends tid the freeze request (freeze.c); false if it could not. */
GORO__HIDDEN bool goro__capture_send_freeze(pid_t pid, pid_t tid);
/* freeze.c: inside the capture handler, stops this thread for good when
   a crash asked for it (returns otherwise). */
GORO__HIDDEN void goro__freeze_self(const goro__regs *rg);
/* The registers (and goroutine) of a frozen thread. */
GORO__HIDDEN bool goro__frozen_regs(pid_t tid, goro__regs *rg, goro__g **g);
/* Installs the capture signal handler (idempotent). */
GORO__HIDDEN void goro__capture_init(void);
/* Crash mode: observers use bounded waits and try-locks only. */
extern GORO__HIDDEN _Atomic int goro__observe_crashing;
/* crash.c: the crash report wrote something; moves its stall deadline. */
GORO__HIDDEN void goro__crash_progress(void);

/* The runtime reaches these through its hook table (upcalls.h says what
   each does); goro__observe_upcalls (sigquit.c) fills its slots. */
GORO__HIDDEN void goro__observe_upcalls(goro__upcall_table *t);
GORO__HIDDEN void goro__observe_init(void);
GORO__HIDDEN void goro__traceback_print(int fd, goro__g *g, bool all);
GORO__HIDDEN void goro__crash_report(int sig, const void *siginfo, const void *uc,
                                     goro__g *overflowed) __attribute__((noreturn));
GORO__HIDDEN bool goro__crash_begin(void);
GORO__HIDDEN void goro__crash_exit(void) __attribute__((noreturn));
GORO__HIDDEN void goro__labels_release(goro__labels *l);
/* freeze.c: stops every other thread (once; false if a freeze was already
   under way). */
GORO__HIDDEN bool goro__freeze_others(void);
GORO__HIDDEN bool goro__freeze_active(void);

/* maps.c: the readable mapping of procfs self/maps that contains addr
   (async-signal-safe: open/read/close, no allocation). */
GORO__HIDDEN bool goro__maps_range(uintptr_t addr, uintptr_t *lo, uintptr_t *hi);

/* ----------------------------------------------------------- symbolizing */

/* One logical frame at a PC (inlined calls expand to several). */
typedef struct goro__symline {
    const char *func;      /* NULL: unknown */
    const char *file;      /* NULL: unknown */
    const char *decl_file; /* file of the function's definition, or NULL */
    int line;
    int start_line; /* line of the function's definition, 0 unknown */
    bool internal;  /* goro's own code */
} goro__symline;

enum {
    GORO__SYM_FOUND = 1, /* a symbol (function name) was found */
    GORO__SYM_LINES = 2, /* and file:line from DWARF */
    GORO__SYM_LIBC = 4,  /* in the C library or the dynamic loader */
    GORO__SYM_OUTER = 8, /* thread/program start boilerplate (_start, clone, ...) */
};

/* Everything known about one return PC. Immutable once published. */
typedef struct goro__sym {
    uintptr_t pc;       /* the key: a return PC (lookups use pc - 1) */
    uintptr_t entry;    /* entry of the physical function, 0 unknown */
    const char *module; /* path of the module, or NULL */
    uint8_t flags;
    uint16_t n; /* logical frames, innermost first; n >= 1 */
    goro__symline lines[];
} goro__sym;

/* symbols.c. Never NULL. Thread-safe; cached per PC (lock-free reads). */
GORO__HIDDEN const goro__sym *goro__symbolize(uintptr_t retpc);
/* The DWARF CFI engine shares the symbolizer's libdw session and lock. */
/* Returns false (lock not taken) only in crash mode, when the lock cannot be
   had quickly or this thread already holds it (a fault inside libdw). */
GORO__HIDDEN bool goro__dw_lock(void);
GORO__HIDDEN void goro__dw_unlock(void);
/* Runs fn(arg) (which calls into libdw; dw lock held) on a stack big enough
   for libdw: directly on threads, on the dw thread when the caller runs on
   a goroutine stack. False only if a crash-mode wait gave up. */
GORO__HIDDEN bool goro__dw_run(void (*fn)(void *), void *arg);
/* Interned, never freed (for the caches). Under goro__dw_lock. */
GORO__HIDDEN const char *goro__intern(const char *s);

/* A small lock-free-read PC -> pointer map (insert-only). */
typedef struct goro__pcmap goro__pcmap;
GORO__HIDDEN goro__pcmap *goro__pcmap_new(void);
GORO__HIDDEN void *goro__pcmap_get(goro__pcmap *m, uintptr_t key);
/* Inserts unless present; returns the value now stored for key. */
GORO__HIDDEN void *goro__pcmap_put(goro__pcmap *m, uintptr_t key, void *val);

/* ------------------------------------------------------------- snapshots */

typedef struct goro__gsnap {
    goro__gcap cap;
    goro__stk stk;
    bool current; /* the goroutine that took the snapshot */
} goro__gsnap;

typedef struct goro__snapshot {
    goro__gsnap *gs;
    size_t n;
    int64_t now; /* goro_nanotime() when it was taken */
    char *arena; /* PCs of every entry (one allocation) */
} goro__snapshot;

enum {
    GORO__SNAP_DUMP = 1,          /* deep stacks (head + tail) instead of 128 PCs */
    GORO__SNAP_NO_SELF = 2,       /* leave out the calling goroutine */
    GORO__SNAP_SELF_IN_ORDER = 4, /* the caller in allg order with its recorded state
                                     (fatal errors), not first as "running" */
};
/* snapshot.c. The caller's goroutine first (state "running") when it is a
   goroutine or goroutine 1, then every other visible goroutine in allg
   order. NULL on allocation failure. */
GORO__HIDDEN goro__snapshot *goro__snapshot_take(unsigned flags);
GORO__HIDDEN void goro__snapshot_free(goro__snapshot *s);

/* ---------------------------------------------------------------- frames */

/* A goroutine's stack as printed: logical frames, outermost last. */
typedef struct goro__frame {
    const goro__sym *sym; /* the physical PC's entry */
    uintptr_t pc;         /* return PC (or interrupted pc + 1) */
    int line_idx;         /* index in sym->lines */
    bool inlined;         /* not the physical frame (line_idx < sym->n - 1) */
    bool exact;           /* pc - 1 is the interrupted instruction itself */
    bool shown;           /* survives the hiding rules */
    bool gap_before;      /* frames were dropped just before this one */
    bool trampoline;      /* the signal trampoline (always hidden) */
    bool synthetic;       /* not on the stack: the start function or the
                               blocking goro call, at its entry (pc = entry + 1) */
} goro__frame;

typedef struct goro__frames {
    goro__frame *f;
    int n;
    int nshown;
    int64_t gap; /* physical frames dropped (deep stacks) */
} goro__frames;

/* frames.c. Expands and classifies; returns false on allocation failure. */
GORO__HIDDEN bool goro__frames_build(const goro__stk *stk, goro__frames *out);
GORO__HIDDEN void goro__frames_free(goro__frames *fr);
/* The PCs of stk->pcs (head) that profiles show: the physical PCs of the
   shown frames, synthesized ones included. out has room for
   stk->n_head + 2; returns the count. */
GORO__HIDDEN int goro__visible_pcs(const goro__stk *stk, uintptr_t *out);
/* The creator frame of a goroutine ("created by"): NULL if hidden/unknown. */
GORO__HIDDEN const goro__symline *goro__creator_line(uintptr_t gopc, const goro__sym **sym_out);
/* The same for a capture: when the creator's own frame is gone (its call
   to goro_go was a tail call, so gopc lies in goro's code), the creating
   goroutine's start function. *pc_out: the PC to print (gopc, or the
   function's entry + 1). */
GORO__HIDDEN const goro__symline *goro__creator(const goro__gcap *cap, const goro__sym **sym_out,
                                                uintptr_t *pc_out);
/* Whether logical frame i of s is goro's code inlined into another
   function (hidden even where the PC is shown). */
GORO__HIDDEN bool goro__inlined_internal(const goro__sym *s, int i);
/* Records in stk what frames.c adds to the walk (start function, wait). */
GORO__HIDDEN void goro__stk_note(goro__stk *stk, const goro__gcap *cap);

/* apiframes.c: the goro calls a blocked goroutine shows as its top frame. */
typedef struct goro__api_call {
    const char *name;
    void *fn;
    int reason; /* the wait reason that implies this call, or -1 */
} goro__api_call;
/* Makes calls (ending with {NULL}; src/api_calls.c) the table used below. */
GORO__HIDDEN void goro__api_calls_use(const goro__api_call *calls);
GORO__HIDDEN bool goro__api_public(const char *name); /* goro_x, not goro__x */
GORO__HIDDEN bool goro__api_shown(const char *name);
GORO__HIDDEN uintptr_t goro__api_for_reason(int reason); /* entry, or 0 */

/* ---------------------------------------------------------------- output */

/* A buffered writer to a descriptor, a FILE, a growable memory buffer or a
   bounded memory buffer (goro_stack). err is the first errno-style error. */
typedef struct goro__ow {
    int kind; /* GORO__OW_* */
    int fd;
    FILE *f;
    char *mem; /* GORO__OW_MEM: malloc'ed; GORO__OW_BOUNDED: the caller's */
    size_t mem_len, mem_cap;
    int err;
    size_t len;
    char buf[4096];
} goro__ow;
enum { GORO__OW_FD, GORO__OW_FILE, GORO__OW_MEM, GORO__OW_BOUNDED };

GORO__HIDDEN void goro__ow_init_fd(goro__ow *w, int fd);
GORO__HIDDEN void goro__ow_init_file(goro__ow *w, FILE *f);
GORO__HIDDEN void goro__ow_init_mem(goro__ow *w);
GORO__HIDDEN void goro__ow_init_bounded(goro__ow *w, char *buf, size_t cap);
GORO__HIDDEN void goro__ow_write(goro__ow *w, const char *s, size_t n);
GORO__HIDDEN void goro__ow_puts(goro__ow *w, const char *s);
GORO__HIDDEN void goro__ow_printf(goro__ow *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
GORO__HIDDEN void goro__ow_hex(goro__ow *w, uintptr_t v); /* "0x1f" */
GORO__HIDDEN void goro__ow_dec(goro__ow *w, int64_t v);
/* Flushes; returns w->err. For MEM, the bytes are in w->mem[0..mem_len). */
GORO__HIDDEN int goro__ow_flush(goro__ow *w);
/* True once a bounded writer is full (the rest would be dropped). */
GORO__HIDDEN bool goro__ow_full(const goro__ow *w);

/* ------------------------------------------------------------------ text */

/* text.c. One goroutine's debug=2 block: header (with state_suffix such as
   " (leaked)" right after the state), frames, "created by". No blank line
   before or after. */
GORO__HIDDEN void goro__format_goroutine(goro__ow *w, const goro__gsnap *gs, int64_t now,
                                         const char *state_suffix);
/* The same in two parts: the header line, then frames and "created by". */
GORO__HIDDEN void goro__format_header(goro__ow *w, const goro__gcap *cap, int64_t now,
                                      const char *suffix);
GORO__HIDDEN void goro__format_body(goro__ow *w, const goro__gsnap *gs);
/* debug=2 for a snapshot: blocks separated by one blank line. suffix(gs)
   may return a state suffix per goroutine (NULL: none). */
GORO__HIDDEN void goro__format_dump(goro__ow *w, const goro__snapshot *s,
                                    const char *(*suffix)(const goro__gsnap *, void *), void *arg);

/* Writes a count profile of the snapshot entries with keep[i] (NULL: all)
   in Go's format: debug=0 gzipped proto, 1 grouped text, >=2 the dump.
   name is "goroutine" or "goroutineleak". Returns 0 or an errno value. */
GORO__HIDDEN int goro__profile_emit(goro__ow *w, const goro__snapshot *s, const bool *keep,
                                    const char *name, int debug);

/* Grouping for debug=0/1 (text.c): groups sorted as Go sorts them. The key
   is the list of visible PCs (goro's own frames left out, unlike Go, whose
   gopark path is always the same: goro's park path varies with what the
   scheduler does next, and would split groups users see as identical). */
typedef struct goro__pgroup {
    const goro__gsnap *first; /* frames are printed from the first record */
    uintptr_t *pcs;           /* its visible return PCs (goro__visible_pcs) */
    int npcs;
    int64_t count;
    char *key;        /* "@ 0x.. 0x..[\n# labels: {...}]" */
    size_t labels_at; /* offset of "\n# labels" in key, or strlen(key) */
} goro__pgroup;
GORO__HIDDEN goro__pgroup *goro__profile_groups(const goro__snapshot *s, const bool *keep,
                                                size_t *ngroups, int64_t *total);
GORO__HIDDEN void goro__profile_groups_free(goro__pgroup *g, size_t n);

/* The labels a profile shows for a goroutine: its pprof labels plus
   "name" = goro_opts.name (unless a label "name" exists). Sorted by key.
   Returns the number of pairs (<= max). */
typedef struct goro__kv {
    const char *key, *value;
} goro__kv;
GORO__HIDDEN int goro__effective_labels(const goro__gcap *cap, goro__kv *out, int max);
/* `{"k":"v", ...}` exactly as Go's labelMap.String(): malloc'ed. */
GORO__HIDDEN char *goro__labels_string(const goro__kv *kv, int n);

/* proto.c: debug=0. */
GORO__HIDDEN int goro__proto_write(goro__ow *w, const goro__snapshot *s, const bool *keep,
                                   const char *name);

/* ----------------------------------------------------------------- misc */

/* Seconds-resolution helpers shared by text.c and log.c. */
GORO__HIDDEN size_t goro__fmt_u64(char *buf, uint64_t v); /* decimal, no NUL */
GORO__HIDDEN size_t goro__fmt_hex(char *buf, uint64_t v); /* "0x..", no NUL */

#endif
