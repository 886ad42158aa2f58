/*
 * gdb_layout.c - the layout table of the gdb extension, and the
 * .debug_gdb_scripts entry that makes gdb load that extension.
 *
 * It lives at the top of the library, beside floors.c (which names it so a
 * static link keeps it), because it describes records of several floors:
 * the runtime's goroutines and threads, chan's channels, observe's table of
 * goro calls. The runtime itself never names a floor above it.
 *
 * gdb/goro-gdb.py never calls into the inferior (a core file cannot run
 * code, a hung process must not be disturbed): it reads goroutine records
 * from memory. Everything it needs to know about them is a named number in
 * goro__gdb_layout (here), goro__gdb_allgs (g.c) and goro__gdb_status
 * (status.c), written with offsetof so a change to a record updates the
 * table by itself. What the names mean:
 *
 *   g.*       offsets in goro__g (runtime.h); g.ctx_sp: the saved stack
 *             pointer of a goroutine that is not running
 *   labels.*  goro__labels: n pairs of {key, value} char pointers at kv
 *   m.*       goro__m (sched.h): the OS thread id of a scheduler thread
 *   waiter.*, chan.*, wait.*   what the leak analysis reads (leakprof.c):
 *             a waiting goroutine's channels (g.waiting list), their
 *             references and holders, and the channel wait reasons
 *   status.*  enum goro__status values; status.scan is OR-ed on while an
 *             observer pins the record
 *   ctx.*     the frame goro__ctx_switch leaves at g.ctx_sp (context.h):
 *             ctx.frame_size bytes; the resume pc at ctx.pc; ctx.reg.<r>:
 *             where callee-saved register <r> (gdb's name) is kept
 *   entry     goro__ctx_entry: the resume pc of a goroutine not started yet
 *   apicalls.*  the goro calls a blocked goroutine shows as its top frame
 *             (goro__api_calls, apiframes.c): an array of apicalls.size
 *             records, ended by a NULL name; a record's name (char *), fn
 *             (its entry) and reason (int: the wait reason that implies the
 *             call when the compiler removed its frame, or -1)
 *   srcfile   the path of src/runtime/g.c (goro__gdb_allgs): goro's frames
 *             are those under its src/
 *
 * Visibility and state words follow goro__g_visible and goro__status_str;
 * the frames shown follow src/observe/frames.c (g.fn: the start function,
 * always the bottom frame; g.parent_fn: "created by" when g.gopc is goro's).
 */
#include "runtime/sched.h"

#include "chan/chan_internal.h"
#include "observe/observe.h"
#include "api_calls.h"
#include "gdb_layout.h"

/* Brace initializers in macros: clang-format 14 would split them. */
/* clang-format off */
#define G(field) {"g." #field, offsetof(goro__g, field)}
#define CTXREG(name, off) {"ctx.reg." name, off}
/* clang-format on */

GORO__GDB_KEEP GORO__HIDDEN const goro__gdb_entry goro__gdb_layout[] = {
    {"version", 1},
    {"ptr_size", sizeof(void *)},
    {"g.size", sizeof(goro__g)},
    {"g.ctx_sp", offsetof(goro__g, ctx) + offsetof(goro__ctx, sp)},
    G(id),
    G(parent_id),
    G(status),
    G(is_thread),
    G(is_g0),
    G(system),
    G(waitsince),
    G(waitreason),
    G(waitobj),
    G(fn),
    G(gopc),
    G(parent_fn),
    G(name),
    G(labels),
    G(m),
    G(tid),
    G(stack_lo),
    G(stack_hi),
    G(wake),
    G(park_deadline),
    G(waiting),
    {"labels.n", offsetof(goro__labels, n)},
    {"labels.kv", offsetof(goro__labels, kv)},
    {"labels.kv_size", sizeof(((goro__labels *)0)->kv[0])},
    {"m.tid", offsetof(goro__m, tid)},
    /* the leak analysis (src/leak/leakprof.c) */
    {"waiter.c", offsetof(goro__waiter, c)},
    {"waiter.waitlink", offsetof(goro__waiter, waitlink)},
    {"chan.closed", offsetof(goro_chan, closed)},
    {"chan.refs", offsetof(goro_chan, refs)},
    {"chan.nheld", offsetof(goro_chan, nheld)},
    {"chan.holders", offsetof(goro_chan, holders)},
    {"wait.chan_send", GORO__WAIT_CHAN_SEND},
    {"wait.chan_recv", GORO__WAIT_CHAN_RECV},
    {"wait.select", GORO__WAIT_SELECT},
    {"wait.chan_send_nil", GORO__WAIT_CHAN_SEND_NIL},
    {"wait.chan_recv_nil", GORO__WAIT_CHAN_RECV_NIL},
    {"wait.select_no_cases", GORO__WAIT_SELECT_NO_CASES},
    {"status.idle", GORO__G_IDLE},
    {"status.runnable", GORO__G_RUNNABLE},
    {"status.running", GORO__G_RUNNING},
    {"status.syscall", GORO__G_SYSCALL},
    {"status.waiting", GORO__G_WAITING},
    {"status.dead", GORO__G_DEAD},
    {"status.scan", GORO__G_SCAN},
    {"ctx.frame_size", GORO__CTX_FRAME_SIZE},
    {"ctx.pc", GORO__CTX_OFF_PC},
#if defined(__x86_64__)
    CTXREG("r15", 8),
    CTXREG("r14", 16),
    CTXREG("r13", 24),
    CTXREG("r12", 32),
    CTXREG("rbx", 40),
    CTXREG("rbp", GORO__CTX_OFF_FP),
#elif defined(__aarch64__)
    CTXREG("x19", 0),
    CTXREG("x20", 8),
    CTXREG("x21", 16),
    CTXREG("x22", 24),
    CTXREG("x23", 32),
    CTXREG("x24", 40),
    CTXREG("x25", 48),
    CTXREG("x26", 56),
    CTXREG("x27", 64),
    CTXREG("x28", 72),
    CTXREG("x29", GORO__CTX_OFF_FP),
    CTXREG("x30", GORO__CTX_OFF_PC),
#endif
    {"entry", (uintptr_t)goro__ctx_entry},
    {"apicalls", (uintptr_t)goro__api_calls},
    {"apicalls.size", sizeof(goro__api_call)},
    {"apicalls.name", offsetof(goro__api_call, name)},
    {"apicalls.fn", offsetof(goro__api_call, fn)},
    {"apicalls.reason", offsetof(goro__api_call, reason)},
    {NULL, 0},
};

/* gdb loads the extension named here when it loads libgoro (or a program
   linked with libgoro.a), under its auto-load safe-path rules; see
   docs/observability.md. The build sets the installed path. */
#ifndef GORO_GDB_SCRIPT
#define GORO_GDB_SCRIPT "/usr/local/share/goro/gdb/goro-gdb.py"
#endif
__asm__(".pushsection \".debug_gdb_scripts\", \"MS\", %progbits, 1\n"
        ".byte 1\n" /* a Python file name follows */
        ".asciz \"" GORO_GDB_SCRIPT "\"\n"
        ".popsection\n");
