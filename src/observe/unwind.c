/*
 * unwind.c - return-PC lists from a register set, with DWARF CFI.
 *
 * User code built with the compiler's defaults has no frame pointers, so
 * the walk follows the call frame information (.eh_frame, else
 * .debug_frame) that libdw reads for us. For speed the rule libdw computes
 * for an address (CFA = reg + offset; each register undefined, same value,
 * saved at CFA + n, equal to CFA + n, or copied from another register) is
 * cached per lookup address in a goro__pcmap, so a warm walk is a hash probe
 * and a few loads per frame, with no lock. Rules that need a DWARF
 * expression (PLT stubs, stack realignment, the signal trampoline) are
 * flagged `complex` and evaluated through libdw every time, under its lock.
 *
 * Safety invariants:
 *  - every load goes through goro__mem_read, which only reads inside the
 *    ranges the caller vouched for (the goroutine's own stack, or a copy of
 *    it); a corrupt stack ends the walk, it never faults;
 *  - the stack pointer must strictly grow from frame to frame (except when
 *    stepping out of a signal frame), so every walk ends;
 *  - the walk ends at a frame whose return address is undefined (the
 *    goroutine entry trampoline marks it so, as do _start and clone).
 *
 * Lookups use pc - 1 for return addresses (the call instruction: a call
 * that ends a function belongs to that function) and the PC itself for an
 * interrupted instruction (leaf_exact, or the frame a signal interrupted).
 * Stored PCs follow Go's convention: an exact pc is stored as pc + 1, so
 * every consumer can subtract one.
 *
 * Without libdw (the cross build) the walk follows frame pointers.
 */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

#include "libdw_session.h"

#if GORO_HAVE_LIBDW
#include <dwarf.h>
#endif

NO_SANITIZE bool goro__mem_read(const goro__mem *m, uintptr_t addr, uintptr_t *out) {
    for (int i = 0; i < m->n; i++) {
        const goro__memrange *r = &m->r[i];
        if (addr >= r->lo && r->hi >= sizeof(uintptr_t) && addr <= r->hi - sizeof(uintptr_t)) {
            const char *p = r->copy ? r->copy + (addr - r->lo) : (const char *)addr;
            uintptr_t v;
            __builtin_memcpy(&v, p, sizeof v);
            *out = v;
            return true;
        }
    }
    return false;
}

#define RV(rg, i) (((rg)->valid >> (i)) & 1)
#define RSET(rg, i, v) ((rg)->r[i] = (v), (rg)->valid |= (uint64_t)1 << (i))

/* Columns the CFI describes (our PC slot is not one of them on aarch64). */
#if defined(__x86_64__)
#define NCOLS 17
#else
#define NCOLS 32
#endif

#if GORO_HAVE_LIBDW

enum { R_UNDEF, R_SAME, R_OFF, R_VALOFF, R_REG, R_EXPR };

typedef struct rrule {
    uint8_t kind;
    uint8_t reg;
    int32_t off;
} rrule;

typedef struct cfirule {
    uint8_t cfa_reg;
    int32_t cfa_off;
    int16_t ra;   /* return-address column */
    bool signal;  /* a signal frame: the caller's pc is exact */
    bool complex; /* needs libdw for every step */
    rrule r[NCOLS];
} cfirule;

static cfirule nocfi; /* sentinel: no CFI covers the address */
static goro__pcmap *rules;
static pthread_once_t rules_once = PTHREAD_ONCE_INIT;

static void rules_init(void) { rules = goro__pcmap_new(); }

/* The frame (libdw's) for pc; caller frees. dw lock held. */
static Dwarf_Frame *frame_at(uintptr_t pc, bool *have_module) {
    Dwfl_Module *mod = goro__dw_module(pc);
    *have_module = mod != NULL;
    if (!mod)
        return NULL;
    Dwarf_Addr bias = 0;
    Dwarf_Frame *fr = NULL;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(mod, &bias);
    if (cfi && dwarf_cfi_addrframe(cfi, pc - bias, &fr) == 0)
        return fr;
    cfi = dwfl_module_dwarf_cfi(mod, &bias);
    if (cfi && dwarf_cfi_addrframe(cfi, pc - bias, &fr) == 0)
        return fr;
    return NULL;
}

static bool translate(Dwarf_Frame *fr, cfirule *r) {
    memset(r, 0, sizeof *r);
    bool signal = false;
    int ra = dwarf_frame_info(fr, NULL, NULL, &signal);
    if (ra < 0 || ra >= NCOLS)
        return false;
    r->ra = (int16_t)ra;
    r->signal = signal;
    Dwarf_Op *ops;
    size_t nops;
    if (dwarf_frame_cfa(fr, &ops, &nops) != 0 || nops == 0)
        return false;
    if (nops == 1 && ops[0].atom == DW_OP_bregx && ops[0].number < NCOLS) {
        r->cfa_reg = (uint8_t)ops[0].number;
        r->cfa_off = (int32_t)(int64_t)ops[0].number2;
    } else {
        r->complex = true;
    }
    for (int i = 0; i < NCOLS; i++) {
        Dwarf_Op mem[3];
        if (dwarf_frame_register(fr, i, mem, &ops, &nops) != 0) {
            r->r[i].kind = R_UNDEF;
            continue;
        }
        if (nops == 0) {
            r->r[i].kind = ops == NULL ? R_SAME : R_UNDEF;
            continue;
        }
        if (ops == mem && ops[0].atom == DW_OP_call_frame_cfa) {
            int64_t off = 0;
            size_t k = 1;
            if (k < nops && ops[k].atom == DW_OP_plus_uconst)
                off = (int64_t)ops[k++].number;
            bool value = k < nops && ops[k].atom == DW_OP_stack_value;
            if (value)
                k++;
            if (k == nops) {
                r->r[i].kind = value ? R_VALOFF : R_OFF;
                r->r[i].off = (int32_t)off;
                continue;
            }
        }
        if (ops == mem && nops == 1 && ops[0].atom == DW_OP_regx && ops[0].number < NCOLS) {
            r->r[i].kind = R_REG;
            r->r[i].reg = (uint8_t)ops[0].number;
            continue;
        }
        r->r[i].kind = R_EXPR;
        r->complex = true;
    }
    return true;
}

struct rule_req {
    uintptr_t pc;
    cfirule *out;
};

/* dw lock held, on a big stack (goro__dw_run). */
static void rule_cb(void *arg) {
    struct rule_req *q = arg;
    bool have_module;
    cfirule *r;
    Dwarf_Frame *fr = frame_at(q->pc, &have_module);
    if (fr) {
        cfirule *n = malloc(sizeof *n);
        if (n && translate(fr, n)) {
            r = goro__pcmap_put(rules, q->pc, n);
        } else {
            free(n);
            r = goro__pcmap_put(rules, q->pc, &nocfi);
        }
        free(fr);
    } else {
        /* Cache "no CFI" only when the module is known: a module that was
           not reported yet (dlopen) may come later. */
        r = have_module ? goro__pcmap_put(rules, q->pc, &nocfi) : &nocfi;
    }
    q->out = r;
}

/* The cached rule for pc, computing it if needed; &nocfi if none. NULL if
   the libdw lock could not be taken (crash mode). */
static const cfirule *rule_for(uintptr_t pc) {
    pthread_once(&rules_once, rules_init);
    if (!rules)
        return NULL;
    cfirule *r = goro__pcmap_get(rules, pc);
    if (r)
        return r;
    if (!goro__dw_lock())
        return NULL;
    r = goro__pcmap_get(rules, pc);
    if (!r) {
        struct rule_req q = {pc, NULL};
        r = goro__dw_run(rule_cb, &q) ? q.out : NULL;
    }
    goro__dw_unlock();
    return r;
}

/* ------------------------------------------- DWARF expressions (slow path) */

#define EXPR_STACK 32

static bool eval(const Dwarf_Op *ops, size_t nops, const goro__regs *rg, uintptr_t cfa,
                 bool have_cfa, const goro__mem *mem, uintptr_t *out, bool *is_value) {
    uintptr_t st[EXPR_STACK];
    int sp = 0;
    *is_value = false;
#define PUSH(v)                                                                                    \
    do {                                                                                           \
        uintptr_t pv_ = (v);                                                                       \
        if (sp >= EXPR_STACK)                                                                      \
            return false;                                                                          \
        st[sp] = pv_;                                                                              \
        sp++;                                                                                      \
    } while (0)
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (sp < (k))                                                                              \
            return false;                                                                          \
    } while (0)
    for (size_t i = 0; i < nops; i++) {
        const Dwarf_Op *o = &ops[i];
        uint8_t a = o->atom;
        if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
            PUSH((uintptr_t)(a - DW_OP_lit0));
        } else if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
            int reg = a - DW_OP_breg0;
            if (reg >= NCOLS || !RV(rg, reg))
                return false;
            PUSH(rg->r[reg] + (uintptr_t)(int64_t)o->number);
        } else if (a >= DW_OP_reg0 && a <= DW_OP_reg31) {
            return false; /* register locations are handled as R_REG */
        } else {
            switch (a) {
            case DW_OP_bregx:
                if (o->number >= NCOLS || !RV(rg, o->number))
                    return false;
                PUSH(rg->r[o->number] + (uintptr_t)(int64_t)o->number2);
                break;
            case DW_OP_addr:
            case DW_OP_const1u:
            case DW_OP_const2u:
            case DW_OP_const4u:
            case DW_OP_const8u:
            case DW_OP_constu:
            case DW_OP_const1s:
            case DW_OP_const2s:
            case DW_OP_const4s:
            case DW_OP_const8s:
            case DW_OP_consts: PUSH((uintptr_t)o->number); break;
            case DW_OP_call_frame_cfa:
                if (!have_cfa)
                    return false;
                PUSH(cfa);
                break;
            case DW_OP_dup:
                NEED(1);
                PUSH(st[sp - 1]);
                break;
            case DW_OP_drop:
                NEED(1);
                sp--;
                break;
            case DW_OP_over:
                NEED(2);
                PUSH(st[sp - 2]);
                break;
            case DW_OP_pick:
                if ((size_t)sp <= o->number)
                    return false;
                PUSH(st[sp - 1 - (int)o->number]);
                break;
            case DW_OP_swap: {
                NEED(2);
                uintptr_t t = st[sp - 1];
                st[sp - 1] = st[sp - 2];
                st[sp - 2] = t;
                break;
            }
            case DW_OP_rot: {
                NEED(3);
                uintptr_t t = st[sp - 1];
                st[sp - 1] = st[sp - 2];
                st[sp - 2] = st[sp - 3];
                st[sp - 3] = t;
                break;
            }
            case DW_OP_deref: {
                NEED(1);
                uintptr_t v;
                if (!goro__mem_read(mem, st[sp - 1], &v))
                    return false;
                st[sp - 1] = v;
                break;
            }
            case DW_OP_deref_size: {
                NEED(1);
                uintptr_t v;
                if (o->number == 0 || o->number > sizeof v || !goro__mem_read(mem, st[sp - 1], &v))
                    return false;
                if (o->number < sizeof v)
                    v &= ((uintptr_t)1 << (8 * o->number)) - 1;
                st[sp - 1] = v;
                break;
            }
            case DW_OP_plus_uconst:
                NEED(1);
                st[sp - 1] += (uintptr_t)o->number;
                break;
            case DW_OP_neg:
                NEED(1);
                st[sp - 1] = (uintptr_t)0 - st[sp - 1];
                break;
            case DW_OP_not:
                NEED(1);
                st[sp - 1] = ~st[sp - 1];
                break;
            case DW_OP_abs:
                NEED(1);
                if ((intptr_t)st[sp - 1] < 0)
                    st[sp - 1] = (uintptr_t)0 - st[sp - 1];
                break;
            case DW_OP_plus:
            case DW_OP_minus:
            case DW_OP_mul:
            case DW_OP_and:
            case DW_OP_or:
            case DW_OP_xor:
            case DW_OP_shl:
            case DW_OP_shr:
            case DW_OP_shra:
            case DW_OP_lt:
            case DW_OP_le:
            case DW_OP_gt:
            case DW_OP_ge:
            case DW_OP_eq:
            case DW_OP_ne: {
                NEED(2);
                uintptr_t b = st[--sp], x = st[sp - 1];
                intptr_t sx = (intptr_t)x, sb = (intptr_t)b;
                uintptr_t v;
                switch (a) {
                case DW_OP_plus: v = x + b; break;
                case DW_OP_minus: v = x - b; break;
                case DW_OP_mul: v = x * b; break;
                case DW_OP_and: v = x & b; break;
                case DW_OP_or: v = x | b; break;
                case DW_OP_xor: v = x ^ b; break;
                case DW_OP_shl: v = b >= 64 ? 0 : x << b; break;
                case DW_OP_shr: v = b >= 64 ? 0 : x >> b; break;
                case DW_OP_shra: v = (uintptr_t)(b >= 64 ? (sx < 0 ? -1 : 0) : sx >> b); break;
                case DW_OP_lt: v = sx < sb; break;
                case DW_OP_le: v = sx <= sb; break;
                case DW_OP_gt: v = sx > sb; break;
                case DW_OP_ge: v = sx >= sb; break;
                case DW_OP_eq: v = sx == sb; break;
                default: v = sx != sb; break;
                }
                st[sp - 1] = v;
                break;
            }
            case DW_OP_nop: break;
            case DW_OP_stack_value:
                *is_value = true;
                if (i + 1 != nops)
                    return false;
                break;
            default: return false; /* branches, calls, TLS: not in unwind tables we meet */
            }
        }
    }
#undef PUSH
#undef NEED
    if (sp < 1)
        return false;
    *out = st[sp - 1];
    return true;
}

struct slow_req {
    uintptr_t pc;
    const goro__regs *in;
    goro__regs *out;
    const goro__mem *mem;
    int ra;
    bool signal;
    bool ok;
};

static void slow_cb(void *arg) {
    struct slow_req *q = arg;
    const goro__regs *in = q->in;
    goro__regs *out = q->out;
    const goro__mem *mem = q->mem;
    q->ok = false;
    bool have_module;
    Dwarf_Frame *fr = frame_at(q->pc, &have_module);
    if (!fr)
        return;
    int ra = dwarf_frame_info(fr, NULL, NULL, &q->signal);
    if (ra < 0 || ra >= NCOLS)
        goto done;
    q->ra = ra;
    Dwarf_Op *ops;
    size_t nops;
    uintptr_t cfa;
    bool isval;
    if (dwarf_frame_cfa(fr, &ops, &nops) != 0 || nops == 0 ||
        !eval(ops, nops, in, 0, false, mem, &cfa, &isval))
        goto done;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < NCOLS; i++) {
        Dwarf_Op opmem[3];
        if (dwarf_frame_register(fr, i, opmem, &ops, &nops) != 0)
            continue;
        if (nops == 0) {
            if (ops == NULL && RV(in, i))
                RSET(out, i, in->r[i]);
            continue;
        }
        if (nops == 1 && ops[0].atom == DW_OP_regx) {
            if (ops[0].number < NCOLS && RV(in, ops[0].number))
                RSET(out, i, in->r[ops[0].number]);
            continue;
        }
        uintptr_t v;
        if (!eval(ops, nops, in, cfa, true, mem, &v, &isval))
            continue;
        if (isval) {
            RSET(out, i, v);
        } else {
            uintptr_t x;
            if (goro__mem_read(mem, v, &x))
                RSET(out, i, x);
        }
    }
    RSET(out, GORO__REG_SP, cfa);
    q->ok = true;
done:
    free(fr);
}

/* One step through libdw (complex rules). */
static bool step_slow(uintptr_t pc, const goro__regs *in, goro__regs *out, const goro__mem *mem,
                      int *ra_out, bool *signal) {
    if (!goro__dw_lock())
        return false;
    struct slow_req q = {.pc = pc, .in = in, .out = out, .mem = mem};
    bool ran = goro__dw_run(slow_cb, &q);
    goro__dw_unlock();
    if (!ran || !q.ok)
        return false;
    *ra_out = q.ra;
    *signal = q.signal;
    return true;
}

/* One step from the frame at lookup address pc. Fills *out with the
   caller's registers (its PC in GORO__REG_PC). */
static bool step(uintptr_t pc, const goro__regs *in, goro__regs *out, const goro__mem *mem,
                 bool *signal) {
    const cfirule *r = rule_for(pc);
    if (!r || r == &nocfi)
        return false;
    int ra;
    if (r->complex) {
        if (!step_slow(pc, in, out, mem, &ra, signal))
            return false;
    } else {
        if (!RV(in, r->cfa_reg))
            return false;
        uintptr_t cfa = in->r[r->cfa_reg] + (uintptr_t)(intptr_t)r->cfa_off;
        memset(out, 0, sizeof *out);
        for (int i = 0; i < NCOLS; i++) {
            const rrule *x = &r->r[i];
            uintptr_t v;
            switch (x->kind) {
            case R_SAME:
                if (RV(in, i))
                    RSET(out, i, in->r[i]);
                break;
            case R_OFF:
                if (goro__mem_read(mem, cfa + (uintptr_t)(intptr_t)x->off, &v))
                    RSET(out, i, v);
                break;
            case R_VALOFF: RSET(out, i, cfa + (uintptr_t)(intptr_t)x->off); break;
            case R_REG:
                if (RV(in, x->reg))
                    RSET(out, i, in->r[x->reg]);
                break;
            default: break;
            }
        }
        RSET(out, GORO__REG_SP, cfa);
        ra = r->ra;
        *signal = r->signal;
    }
    if (!RV(out, ra))
        return false; /* undefined return address: the outermost frame */
#if GORO__REG_PC != 16
    RSET(out, GORO__REG_PC, out->r[ra]);
#else
    if (ra != GORO__REG_PC)
        RSET(out, GORO__REG_PC, out->r[ra]);
#endif
    return true;
}

#else /* !GORO_HAVE_LIBDW: frame pointers */

static bool step(uintptr_t pc, const goro__regs *in, goro__regs *out, const goro__mem *mem,
                 bool *signal) {
    (void)pc;
    *signal = false;
    if (!RV(in, GORO__REG_FP))
        return false;
    uintptr_t fp = in->r[GORO__REG_FP], prevfp, ra;
    if (fp < in->r[GORO__REG_SP] || !goro__mem_read(mem, fp, &prevfp) ||
        !goro__mem_read(mem, fp + sizeof(uintptr_t), &ra))
        return false;
    memset(out, 0, sizeof *out);
    RSET(out, GORO__REG_FP, prevfp);
    RSET(out, GORO__REG_SP, fp + 2 * sizeof(uintptr_t));
    RSET(out, GORO__REG_PC, ra);
    return true;
}

#endif

#define WALK_LIMIT 200000

static int unwind_impl(const goro__regs *regs, bool leaf_exact, const goro__mem *mem,
                       uintptr_t *pcs, int max, uintptr_t *tail, int ntail, int *n_tail,
                       int64_t *gap, int16_t *sig_at, int *nsig) {
    goro__regs cur = *regs, next;
    bool exact = leaf_exact;
    if (ntail > GORO__DUMP_TAIL)
        ntail = GORO__DUMP_TAIL;
    int64_t count = 0;
    if (n_tail)
        *n_tail = 0;
    if (gap)
        *gap = 0;
    if (!RV(&cur, GORO__REG_PC) || !RV(&cur, GORO__REG_SP))
        return 0;
    for (int iter = 0; iter < WALK_LIMIT; iter++) {
        uintptr_t pc = cur.r[GORO__REG_PC];
        if (pc < 2)
            break;
        uintptr_t stored = exact ? pc + 1 : pc;
        if (count < max) {
            pcs[count] = stored;
        } else if (tail && ntail > 0) {
            tail[(count - max) % ntail] = stored;
        } else {
            break;
        }
        count++;
        bool signal = false;
        if (!step(stored - 1, &cur, &next, mem, &signal))
            break;
        if (!RV(&next, GORO__REG_PC) || !RV(&next, GORO__REG_SP))
            break;
        /* The stack pointer grows frame by frame, except out of a signal
           frame (the handler may run on an alternate stack). */
        if (!signal && next.r[GORO__REG_SP] <= cur.r[GORO__REG_SP])
            break;
        cur = next;
        exact = signal;
        /* The next PC is the instruction a signal interrupted; the frame just
           stored is the signal trampoline. */
        if (signal && sig_at && *nsig < GORO__MAX_SIGFRAMES && count < max)
            sig_at[(*nsig)++] = (int16_t)count;
    }
    int nh = count < max ? (int)count : max;
    if (tail && ntail > 0 && count > max) {
        int64_t beyond = count - max;
        int nt = beyond < ntail ? (int)beyond : ntail;
        if (beyond > ntail) {
            /* Rotate the ring so the oldest entry comes first. */
            uintptr_t tmp[GORO__DUMP_TAIL];
            int start = (int)(beyond % ntail);
            for (int i = 0; i < nt; i++)
                tmp[i] = tail[(start + i) % ntail];
            memcpy(tail, tmp, (size_t)nt * sizeof *tail);
        }
        if (n_tail)
            *n_tail = nt;
        if (gap)
            *gap = beyond - nt;
    }
    return nh;
}

int goro__unwind(const goro__regs *regs, bool leaf_exact, const goro__mem *mem, uintptr_t *pcs,
                 int max, uintptr_t *tail, int ntail, int *n_tail, int64_t *gap) {
    return unwind_impl(regs, leaf_exact, mem, pcs, max, tail, ntail, n_tail, gap, NULL, NULL);
}

void goro__unwind_stk(const goro__regs *regs, bool leaf_exact, const goro__mem *mem, goro__stk *stk,
                      int max, int ntail) {
    stk->nsig = 0;
    stk->leaf_exact = leaf_exact;
    stk->n_head =
        unwind_impl(regs, leaf_exact, mem, stk->pcs, max, stk->tail, stk->tail ? ntail : 0,
                    &stk->n_tail, &stk->gap, stk->sig_at, &stk->nsig);
    stk->truncated = !stk->tail && stk->n_head >= max;
}
