/*
 * main_entry.c - goro_main: a program's body run as a goroutine, its result
 * handed back to the thread that called it (docs/runtime.md, "Goroutine 1,
 * program threads and goro_main").
 *
 * It sits on the library's top floor (beside floors.c), not in src/runtime:
 * it waits with a goro_waitgroup, which lives a floor above the runtime.
 *
 * Built on the public API plus three runtime facts: whether the caller is a
 * plain thread (is_thread), whether a defer runs because of a panic
 * (panicking), and goro__newproc's creator pc, so that the body's trace says
 * "created by" the function that called goro_main rather than goro_main.
 */
#include "runtime/runtime.h"

/* Lives on the caller's stack: the caller cannot return before `done`. */
typedef struct main_body {
    int (*fn)(void *arg);
    void *arg;
    int result;
    /* Written by the body before done (the waitgroup orders it for the
       caller): false when fn did not return, that is it called goro_exit. */
    bool returned;
    goro_waitgroup done;
} main_body;

/* The body's first defer, so its last: runs after every defer fn made,
   whether fn returned or called goro_exit. On a panic the process is
   about to crash with the panic's report; the caller must not run on
   meanwhile, so it is left waiting. */
static void main_body_ended(void *arg) {
    main_body *b = arg;
    if (goro__getg()->panicking)
        return;
    goro_waitgroup_done(&b->done);
}

static void main_body_run(void *arg) {
    main_body *b = arg;
    goro_defer(main_body_ended, b);
    b->result = b->fn(b->arg);
    b->returned = true;
}

GORO__NOINLINE int goro_main(int (*fn)(void *arg), void *arg) {
    goro__g *self = goro__getg();
    if (fn == NULL)
        goro_panic("goro_main of nil func value");
    /* Goroutine 1 on the main thread is a goroutine, but it is where a
       program's body starts: goro_main works there as on a plain thread. */
    if (!self->is_thread && !self->main_stack)
        goro_panic("goro_main called from goroutine %llu: it runs a program's body from main() "
                   "or a plain thread, not from inside a goroutine (call fn directly)",
                   (unsigned long long)self->id);
    main_body b = {.fn = fn, .arg = arg};
    goro_waitgroup_add(&b.done, 1);
    uint64_t id =
        goro__newproc(NULL, main_body_run, &b, (uintptr_t)__builtin_return_address(0), false);
    if (id == 0) /* out of memory: the body runs here, as without goro_main */
        return fn(arg);
    goro_waitgroup_wait(&b.done);
    if (!b.returned)
        goro_exit(); /* the body called goro_exit: so does its caller (Go's Goexit in main) */
    return b.result;
}
