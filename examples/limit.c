/*
 * limit.c - bounded spawning with panic recovery: the channel-token
 * AsyncGoForHandle pattern, ported to goro_limiter.
 *
 * The Go idiom this replaces:
 *
 *     func AsyncGoForHandle(tokens chan struct{}, handle func()) {
 *         tokens <- struct{}{}               // wait for a slot
 *         go func() {
 *             defer func() {
 *                 if err := recover(); err != nil {
 *                     log.Printf("handle panicked: %v", err)
 *                 }
 *                 <-tokens                   // give the slot back
 *             }()
 *             handle()
 *         }()
 *     }
 *
 * goro_limiter_go is that function; the recover and the token return are
 * built in (on_panic), and it adds what the channel cannot tell you: how many
 * handlers run and how many submitters wait, a limit you can change while it
 * runs, a wait for all of them, and a close that turns away blocked
 * submitters. Every tenth handler here panics ("bad 10", "bad 20", ...); the
 * program counts handled and recovered jobs, checks that the limit was never
 * exceeded and exits 0 by itself.
 *
 *   ./limit            1000 jobs through a limit of 8
 *   ./limit N LIMIT    N jobs through LIMIT
 */
#include <goro.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int handled, recovered, running, peak;

typedef struct job {
    int id;
} job;

/* The handler: a little work, and now and then a panic. */
static void handle(void *arg) {
    job *j = arg;
    int now = atomic_fetch_add(&running, 1) + 1;
    int p = atomic_load(&peak);
    while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
        ;
    goro_sleep(GORO_US(200 + (j->id % 7) * 50));
    atomic_fetch_sub(&running, 1);
    if (j->id % 10 == 0)
        goro_panic("bad %d", j->id);
    atomic_fetch_add(&handled, 1);
}

/* log.Printf("handle panicked: %v", err): runs on the panicking goroutine,
   after which its slot goes back to the limiter. */
static void on_panic(const char *msg, void *arg) {
    job *j = arg;
    int n = atomic_fetch_add(&recovered, 1) + 1;
    if (n <= 3)
        fprintf(stderr, "limit: job %d panicked: %s (recovered)\n", j->id, msg);
    else if (n == 4)
        fprintf(stderr, "limit: ... (further panics counted, not printed)\n");
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int limit = argc > 2 ? atoi(argv[2]) : 8;
    if (n <= 0 || limit <= 0) {
        fprintf(stderr, "usage: %s [JOBS [LIMIT]]\n", argv[0]);
        return 2;
    }
    job *jobs = calloc((size_t)n, sizeof *jobs);
    goro_limiter *l = goro_limiter_new(limit, on_panic);
    int start = goro_count();

    int64_t t0 = goro_nanotime();
    for (int i = 0; i < n; i++) {
        jobs[i].id = i + 1;
        /* AsyncGoForHandle(tokens, handle): waits while `limit` handlers run. */
        if (goro_limiter_go(l, handle, &jobs[i]) != 0) {
            fprintf(stderr, "limit: submit failed\n");
            return 1;
        }
        if (i == n / 2)
            printf("limit: halfway: %d running, %d waiting, peak %d\n", goro_limiter_running(l),
                   goro_limiter_waiting(l), atomic_load(&peak));
    }
    /* try_go never blocks: with every slot busy it says so at once. */
    int busy = 0;
    for (int i = 0; i < limit * 2; i++)
        if (goro_limiter_try_go(l, handle, &jobs[0]) == GORO_EAGAIN)
            busy++;
        else
            n++; /* it ran after all: count it (job 1 does not panic) */
    goro_limiter_wait(l);
    int64_t took = goro_nanotime() - t0;

    printf("limit: %d jobs, %d handled, %d recovered panics, peak concurrency %d (limit %d), "
           "try_go refused %d time(s), %.1f ms\n",
           n, atomic_load(&handled), atomic_load(&recovered), atomic_load(&peak), limit, busy,
           (double)took / 1e6);
    printf("limit: after wait: %d running, %d goroutine(s) beyond the start\n",
           goro_limiter_running(l), goro_count() - start);
    goro_limiter_free(l);
    free(jobs);

    bool ok = atomic_load(&handled) + atomic_load(&recovered) == n && atomic_load(&peak) <= limit;
    return ok ? 0 : 1;
}
