/*
 * symbols.c - PC -> function, file:line and inline chain, with libdw.
 *
 * One libdw session (Dwfl) for the own process, built on first use from
 * procfs self/maps and re-read (rate limited) when a PC falls outside every
 * known module, as after dlopen. libdw is not thread-safe, so every call
 * into it happens under dw_mu (goro__dw_lock), which unwind.c shares for CFI.
 *
 * Results are cached per return PC in a goro__pcmap: an entry is built once
 * under dw_mu, published, and never changes or goes away, so readers (every
 * format) look PCs up without a lock.
 *
 * Lookups use retpc - 1: the call instruction, as Go's CallersFrames does, so
 * a call that ends a function (noreturn) is attributed to its caller.
 *
 * Inlined calls (DW_TAG_inlined_subroutine) expand into several logical
 * frames, innermost first: its name (of its abstract origin) at the line of
 * the PC, then the function it was inlined into, at the inlined call's
 * DW_AT_call_file/DW_AT_call_line, and so on up to the DW_TAG_subprogram.
 *
 * goro's own frames ("internal", hidden in every trace like Go's runtime.*):
 * a function whose name starts with "goro_", or whose source file (of the
 * line or of its definition) lies under goro's src/ directory (GORO__SRC_DIR
 * when the build defines it, else derived from this file's __FILE__).
 *
 * Without GORO_HAVE_LIBDW, dladdr names exported functions and everything
 * else is unknown ("??"); file:line are unknown.
 */
#include "observe.h"

#include <errno.h>
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdw_session.h"

#if GORO_HAVE_LIBDW
#include <dwarf.h>
#endif

/* ------------------------------------------------------------ the lock */

static goro__lock dw_mu = GORO__LOCK_INIT;
static __thread bool dw_held;

bool goro__dw_lock(void) {
    if (GORO__UNLIKELY(atomic_load_explicit(&goro__observe_crashing, memory_order_relaxed))) {
        if (dw_held)
            return false;
        for (int i = 0; i < 2000; i++) {
            if (goro__lock_try(&dw_mu)) {
                dw_held = true;
                return true;
            }
            usleep(100);
        }
        return false;
    }
    goro__lock_acquire(&dw_mu);
    dw_held = true;
    return true;
}

void goro__dw_unlock(void) {
    dw_held = false;
    goro__lock_release(&dw_mu);
}

/* ------------------------------------------------------------ a big stack */

/* libdw can use far more stack than a goroutine has (64 KiB by default):
   reading an ELF file, decompressing sections, walking DIE trees. Work
   that calls into it runs directly on threads (8 MiB, or the 256 KiB signal
   stack in crash handlers) and is handed to the dw thread, which has a big
   stack, when the caller is on a goroutine stack. One request at a time:
   the caller holds dw_mu. */

static struct {
    _Atomic uint32_t seq;  /* bumped by the caller for each request */
    _Atomic uint32_t done; /* set to seq by the dw thread when finished */
    void (*fn)(void *);
    void *arg;
    _Atomic int state; /* 0 not started, 1 running, -1 failed to start */
} dwt;

static void *dw_thread(void *unused) {
    (void)unused;
    goro__helper_thread_register();
    uint32_t seen = 0;
    for (;;) {
        uint32_t s;
        while ((s = atomic_load_explicit(&dwt.seq, memory_order_acquire)) == seen)
            goro__futex_wait(&dwt.seq, seen, -1);
        seen = s;
        dwt.fn(dwt.arg);
        atomic_store_explicit(&dwt.done, s, memory_order_release);
        goro__futex_wake(&dwt.done, 1);
    }
    return NULL;
}

static bool dw_thread_start(void) {
    int st = atomic_load(&dwt.state);
    if (st != 0)
        return st > 0;
    bool ok = goro__thread_start_quiet(dw_thread, (size_t)8 << 20);
    atomic_store(&dwt.state, ok ? 1 : -1);
    return ok;
}

static bool on_goroutine_stack(void) {
    goro__g *g = goro__getg_maybe();
    if (!g || g->is_thread || g->is_g0 || !g->stack_lo)
        return false;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    return sp >= (uintptr_t)g->stack_lo && sp < (uintptr_t)g->stack_hi;
}

bool goro__dw_run(void (*fn)(void *), void *arg) {
    if (!on_goroutine_stack() || !dw_thread_start()) {
        fn(arg);
        return true;
    }
    dwt.fn = fn;
    dwt.arg = arg;
    uint32_t s = atomic_fetch_add_explicit(&dwt.seq, 1, memory_order_acq_rel) + 1;
    goro__futex_wake(&dwt.seq, 1);
    bool crashing = atomic_load_explicit(&goro__observe_crashing, memory_order_relaxed);
    int64_t deadline = goro__nanotime() + 2000 * 1000000LL;
    uint32_t d;
    while ((d = atomic_load_explicit(&dwt.done, memory_order_acquire)) != s) {
        if (crashing && goro__nanotime() > deadline)
            return false; /* the dw thread is stuck (it crashed?) */
        goro__futex_wait(&dwt.done, d, crashing ? 10 * 1000000LL : -1);
    }
    return true;
}

/* ------------------------------------------------------------ interning */

static char **itab;
static size_t icap, icount;

static size_t strhash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return (size_t)h;
}

const char *goro__intern(const char *s) {
    if (!s)
        return NULL;
    if ((icount + 1) * 2 > icap) {
        size_t ncap = icap ? icap * 2 : 1024;
        char **n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < icap; i++) {
            if (!itab[i])
                continue;
            size_t j = strhash(itab[i]) & (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = itab[i];
        }
        free(itab);
        itab = n;
        icap = ncap;
    }
    size_t j = strhash(s) & (icap - 1);
    while (itab[j]) {
        if (strcmp(itab[j], s) == 0)
            return itab[j];
        j = (j + 1) & (icap - 1);
    }
    char *c = strdup(s);
    if (!c)
        return NULL;
    itab[j] = c;
    icount++;
    return c;
}

/* ------------------------------------------------------------ classification */

static char src_dir_buf[PATH_MAX];
static size_t src_dir_len; /* 0: unknown */

static void src_dir_init(void) {
    if (src_dir_len)
        return;
#ifdef GORO__SRC_DIR
    const char *d = GORO__SRC_DIR;
    size_t n = strlen(d);
    if (n + 2 < sizeof src_dir_buf) {
        memcpy(src_dir_buf, d, n);
        if (n && d[n - 1] != '/')
            src_dir_buf[n++] = '/';
        src_dir_buf[n] = 0;
        src_dir_len = n;
    }
#else
    /* __FILE__ is ".../src/observe/symbols.c" when the build passes absolute paths. */
    const char *f = __FILE__;
    const char *tail = "observe/symbols.c";
    size_t n = strlen(f), t = strlen(tail);
    if (f[0] == '/' && n > t && strcmp(f + n - t, tail) == 0 && n - t < sizeof src_dir_buf) {
        memcpy(src_dir_buf, f, n - t);
        src_dir_buf[n - t] = 0;
        src_dir_len = n - t;
    }
#endif
}

static bool under_src(const char *path) {
    return path && src_dir_len && strncmp(path, src_dir_buf, src_dir_len) == 0;
}

static bool is_internal_name(const char *fn) { return fn && strncmp(fn, "goro_", 5) == 0; }

static bool is_outer_name(const char *fn) {
    static const char *const outer[] = {"_start",
                                        "__libc_start_main",
                                        "__libc_start_call_main",
                                        "start_thread",
                                        "clone",
                                        "clone3",
                                        "__clone",
                                        "__clone3",
                                        "__clone_internal",
                                        NULL};
    if (!fn)
        return false;
    /* Static binaries name glibc's start-up __libc_start_main_impl (an
       alias at the same address) and keep __libc_start_call_main local. */
    if (strncmp(fn, "__libc_start", 12) == 0)
        return true;
    for (int i = 0; outer[i]; i++)
        if (strcmp(fn, outer[i]) == 0)
            return true;
    return false;
}

static bool is_libc_module(const char *path) {
    if (!path)
        return false;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0 ||
           strncmp(b, "ld-linux", 8) == 0 || strncmp(b, "libpthread", 10) == 0 ||
           strncmp(b, "ld64.so", 7) == 0;
}

/* ------------------------------------------------------------ the cache */

static goro__pcmap *symcache;
static pthread_once_t symcache_once = PTHREAD_ONCE_INIT;

static void symcache_init(void) {
    symcache = goro__pcmap_new();
    src_dir_init();
}

/* The entry of every PC nothing is known about (n = 1, all NULL). */
static _Alignas(goro__sym) unsigned char unknown_storage[sizeof(goro__sym) + sizeof(goro__symline)];
#define unknown_sym (*(goro__sym *)unknown_storage)

__attribute__((constructor)) static void unknown_init(void) { unknown_sym.n = 1; }

static goro__sym *sym_alloc(int n) {
    goro__sym *s = calloc(1, sizeof(goro__sym) + (size_t)n * sizeof(goro__symline));
    if (s)
        s->n = (uint16_t)n;
    return s;
}

#if GORO_HAVE_LIBDW

static Dwfl *dwfl;
static bool dwfl_failed;
static int64_t last_report;
static char *debuginfo_path;

static const Dwfl_Callbacks dw_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static void dw_report(void) {
    if (dwfl_linux_proc_report(dwfl, getpid()) != 0) {
        /* keep what was reported */
    }
    dwfl_report_end(dwfl, NULL, NULL);
    last_report = goro__nanotime();
}

static bool dw_open(void) {
    if (dwfl)
        return true;
    if (dwfl_failed)
        return false;
    dwfl = dwfl_begin(&dw_callbacks);
    if (!dwfl) {
        dwfl_failed = true;
        return false;
    }
    dwfl_report_begin(dwfl);
    dw_report();
    return true;
}

Dwfl_Module *goro__dw_module(uintptr_t pc) {
    if (!dw_open())
        return NULL;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, (Dwarf_Addr)pc);
    if (mod)
        return mod;
    if (goro__nanotime() - last_report < 100 * 1000000LL)
        return NULL;
    dwfl_report_begin_add(dwfl);
    dw_report();
    return dwfl_addrmodule(dwfl, (Dwarf_Addr)pc);
}

static const char *die_name(Dwarf_Die *die) {
    Dwarf_Attribute a;
    const char *n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    if (!n)
        n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    return n;
}

static int die_decl_line(Dwarf_Die *die) {
    int line = 0;
    if (dwarf_decl_line(die, &line) != 0)
        return 0;
    return line;
}

static const char *die_call_file(Dwarf_Die *die) {
    Dwarf_Attribute a;
    Dwarf_Word idx;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &idx) != 0)
        return NULL;
    Dwarf_Die cu;
    if (!dwarf_diecu(die, &cu, NULL, NULL))
        return NULL;
    Dwarf_Files *files;
    size_t nf;
    if (dwarf_getsrcfiles(&cu, &files, &nf) != 0 || idx >= nf)
        return NULL;
    return dwarf_filesrc(files, idx, NULL, NULL);
}

static int die_call_line(Dwarf_Die *die) {
    Dwarf_Attribute a;
    Dwarf_Word v;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) != 0)
        return 0;
    return (int)v;
}

#define MAX_INLINE 32

/* dw_mu held. */
static goro__sym *build(uintptr_t retpc) {
    uintptr_t pc = retpc - 1;
    Dwfl_Module *mod = goro__dw_module(pc);
    if (!mod) {
        goro__sym *s = sym_alloc(1);
        if (s)
            s->pc = retpc;
        return s;
    }
    const char *modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    GElf_Off off = 0;
    GElf_Sym esym;
    const char *symname = dwfl_module_addrinfo(mod, pc, &off, &esym, NULL, NULL, NULL);

    goro__symline lines[MAX_INLINE];
    int n = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, &bias);
    const char *phys_name = NULL;
    if (cu) {
        const char *cur_file = NULL;
        int cur_line = 0;
        Dwarf_Line *ln = dwarf_getsrc_die(cu, pc - bias);
        if (ln) {
            cur_file = dwarf_linesrc(ln, NULL, NULL);
            dwarf_lineno(ln, &cur_line);
        }
        /* dwarf_getscopes stops at the innermost inlined instance (its
           outer scopes are the abstract origin's); the concrete chain of
           callers comes from dwarf_getscopes_die on that instance. */
        Dwarf_Die *scopes = NULL, *chain = NULL;
        int ns = dwarf_getscopes(cu, pc - bias, &scopes);
        int first = 0;
        while (first < ns && dwarf_tag(&scopes[first]) != DW_TAG_inlined_subroutine &&
               dwarf_tag(&scopes[first]) != DW_TAG_subprogram)
            first++;
        Dwarf_Die *sc = scopes;
        int nsc = ns;
        if (first < ns && dwarf_tag(&scopes[first]) == DW_TAG_inlined_subroutine) {
            int nc = dwarf_getscopes_die(&scopes[first], &chain);
            if (nc > 0) {
                sc = chain;
                nsc = nc;
                first = 0;
            }
        }
        for (int i = first; i < nsc && n < MAX_INLINE; i++) {
            int tag = dwarf_tag(&sc[i]);
            if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
                continue;
            goro__symline *l = &lines[n++];
            memset(l, 0, sizeof *l);
            l->func = die_name(&sc[i]);
            l->file = cur_file;
            l->line = cur_line;
            l->decl_file = dwarf_decl_file(&sc[i]);
            l->start_line = die_decl_line(&sc[i]);
            if (tag == DW_TAG_subprogram) {
                phys_name = l->func;
                break;
            }
            cur_file = die_call_file(&sc[i]);
            cur_line = die_call_line(&sc[i]);
        }
        free(chain);
        free(scopes);
        if (n == 0 && (symname || cur_file)) {
            /* Line info without a subprogram (assembly with -g). */
            memset(&lines[0], 0, sizeof lines[0]);
            lines[0].file = cur_file;
            lines[0].line = cur_line;
            n = 1;
        }
    }
    if (n == 0) {
        memset(&lines[0], 0, sizeof lines[0]);
        n = 1;
    }
    /* The physical frame: prefer the symbol when DWARF has no name. */
    if (!lines[n - 1].func)
        lines[n - 1].func = symname;
    (void)phys_name;

    goro__sym *s = sym_alloc(n);
    if (!s)
        return NULL;
    s->pc = retpc;
    s->entry = symname ? pc - (uintptr_t)off : 0;
    s->module = goro__intern(modname);
    if (symname || lines[n - 1].func)
        s->flags |= GORO__SYM_FOUND;
    if (lines[0].file)
        s->flags |= GORO__SYM_LINES;
    if (is_libc_module(modname))
        s->flags |= GORO__SYM_LIBC;
    if (is_outer_name(lines[n - 1].func) || is_outer_name(symname))
        s->flags |= GORO__SYM_OUTER;
    bool phys_internal = is_internal_name(lines[n - 1].func) || is_internal_name(symname) ||
                         under_src(lines[n - 1].file) || under_src(lines[n - 1].decl_file);
    for (int i = 0; i < n; i++) {
        goro__symline *d = &s->lines[i];
        d->func = goro__intern(lines[i].func);
        d->file = goro__intern(lines[i].file);
        d->decl_file = goro__intern(lines[i].decl_file);
        d->line = lines[i].line;
        d->start_line = lines[i].start_line;
        d->internal = phys_internal || is_internal_name(d->func) || under_src(d->file) ||
                      under_src(d->decl_file);
    }
    return s;
}

#else /* !GORO_HAVE_LIBDW */

/* Without DWARF: dladdr names exported functions (and gives the module);
   file:line stay unknown. */
static goro__sym *build(uintptr_t retpc) {
    goro__sym *s = sym_alloc(1);
    if (!s)
        return NULL;
    s->pc = retpc;
    Dl_info di;
    if (dladdr((void *)(retpc - 1), &di) && di.dli_sname && di.dli_saddr) {
        s->entry = (uintptr_t)di.dli_saddr;
        s->lines[0].func = goro__intern(di.dli_sname);
        s->flags |= GORO__SYM_FOUND;
        s->module = goro__intern(di.dli_fname);
        if (is_libc_module(di.dli_fname))
            s->flags |= GORO__SYM_LIBC;
        if (is_outer_name(di.dli_sname))
            s->flags |= GORO__SYM_OUTER;
        s->lines[0].internal = is_internal_name(di.dli_sname);
    }
    (void)under_src;
    return s;
}

#endif

struct build_req {
    uintptr_t retpc;
    goro__sym *out;
};

static void build_cb(void *arg) {
    struct build_req *r = arg;
    r->out = build(r->retpc);
}

const goro__sym *goro__symbolize(uintptr_t retpc) {
    if (retpc < 2)
        return &unknown_sym;
    pthread_once(&symcache_once, symcache_init);
    if (!symcache)
        return &unknown_sym;
    goro__sym *s = goro__pcmap_get(symcache, retpc);
    if (s)
        return s;
    if (!goro__dw_lock())
        return &unknown_sym;
    s = goro__pcmap_get(symcache, retpc);
    if (!s) {
        struct build_req r = {retpc, NULL};
        if (goro__dw_run(build_cb, &r))
            s = r.out;
        if (s)
            goro__pcmap_put(symcache, retpc, s);
    }
    goro__dw_unlock();
    return s ? s : &unknown_sym;
}
