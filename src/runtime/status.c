/*
 * status.c - Go's words for goroutine states and wait reasons
 * (runtime2.go gStatusStrings and waitReasonStrings).
 */
#include "runtime.h"
#include "gdb_tables.h"

static const char *const reasons[GORO__WAIT_N] = {
    [GORO__WAIT_ZERO] = "",
    [GORO__WAIT_IO] = "IO wait",
    [GORO__WAIT_PANICWAIT] = "panicwait",
    [GORO__WAIT_SEMACQUIRE] = "semacquire",
    [GORO__WAIT_SLEEP] = "sleep",
    [GORO__WAIT_CHAN_RECV_NIL] = "chan receive (nil chan)",
    [GORO__WAIT_CHAN_SEND_NIL] = "chan send (nil chan)",
    [GORO__WAIT_SELECT_NO_CASES] = "select (no cases)",
    [GORO__WAIT_SELECT] = "select",
    [GORO__WAIT_CHAN_RECV] = "chan receive",
    [GORO__WAIT_CHAN_SEND] = "chan send",
    [GORO__WAIT_COND] = "sync.Cond.Wait",
    [GORO__WAIT_MUTEX] = "sync.Mutex.Lock",
    [GORO__WAIT_RWMUTEX_R] = "sync.RWMutex.RLock",
    [GORO__WAIT_RWMUTEX_W] = "sync.RWMutex.Lock",
    [GORO__WAIT_WAITGROUP] = "sync.WaitGroup.Wait",
    [GORO__WAIT_SYSCALL_OUT] = "",
};

/* For the gdb extension (gdb_tables.h). */
GORO__GDB_KEEP const goro__gdb_entry goro__gdb_status[] = {
    {"waitreasons", (uintptr_t)reasons}, {"waitreasons.n", GORO__WAIT_N}, {NULL, 0}};

const char *goro__waitreason_str(int reason) {
    if (reason < 0 || reason >= GORO__WAIT_N || !reasons[reason])
        return "";
    return reasons[reason];
}

const char *goro__status_str(uint32_t status, int reason) {
    switch (status & ~(uint32_t)GORO__G_SCAN) {
    case GORO__G_IDLE: return "idle";
    case GORO__G_RUNNABLE: return "runnable";
    case GORO__G_RUNNING: return "running";
    case GORO__G_SYSCALL: return "syscall";
    case GORO__G_WAITING: {
        const char *r = goro__waitreason_str(reason);
        return *r ? r : "waiting";
    }
    case GORO__G_DEAD: return "dead";
    default: return "???";
    }
}
