/*
 * pool.c - goro_pool: tunny's synchronous worker pool.
 *
 * A pool owns N worker goroutines ("pool worker K" in dumps), each with its
 * own goro_worker made by the user's constructor. goro_pool_process hands a
 * payload to one free worker and blocks until its result comes back.
 *
 * Semantics (tunny's, made strict where tunny is loose; see
 * github.com/Jeffail/tunny's tunny.go; each point below is goro's contract):
 *   - process* waits until some worker is free. process_timed has ONE deadline
 *     for the whole call (waiting for a worker and the job); process_ctx stops
 *     on the context (GORO_ECANCELED / GORO_ETIMEDOUT from goro_ctx_err).
 *   - A caller that gives up before a worker started its job gets its error and
 *     nothing else happens: no interrupt. A caller that gives up while the job
 *     runs calls the worker's interrupt exactly once, on its own goroutine,
 *     before returning; the job's result is then dropped, and that worker takes
 *     no new job until interrupt has returned (so an interrupt never reaches the
 *     next job).
 *   - block_until_ready runs on the worker before each job (not again after a
 *     hand-over the caller cancelled before the job began).
 *   - set_size grows (constructor called by set_size's caller) or shrinks:
 *     idle workers leave first, busy ones leave when their current job is done;
 *     a claimed job always runs and its result is delivered. terminate runs on
 *     the leaving worker; set_size returns when every leaving worker is gone.
 *   - queue_length counts callers inside process* (waiting or being served); it
 *     drops on every return path.
 *   - close: waiting callers and every later call get GORO_ECLOSED; claimed
 *     jobs finish and deliver; close returns when every terminate returned and
 *     every worker goroutine has ended (goro_count back down, see
 *     pool_internal.h). A closed pool stays valid (size and queue_length 0,
 *     second close a no-op) until goro_pool_free.
 *   - Ownership of the payload (C has no GC to settle it; docs/pools.md):
 *     a call that returns 0 gives the result to its caller and the payload
 *     is the caller's again. A call that returns any other error (but
 *     GORO_EINVAL, a NULL pool) hands the payload to the pool: the discard
 *     hook (goro_pool_set_discard) receives it exactly once, with the late
 *     result - on the caller, before the call returns, when no worker still
 *     runs the job (result NULL); or on the worker, once process() of the
 *     abandoned job returned and its interrupt is done. Every hook call has
 *     happened when goro_pool_close returns. Without a hook, a late result
 *     is dropped and the payload must stay valid until close returns.
 *   - A panic inside a job is not recovered (tunny and Go: the program dies
 *     with "panic: MSG" and the trace of the "pool worker K" goroutine, exit
 *     status 2); recover inside your own process function if you must. A job
 *     that calls goro_exit() ends its worker: its caller gets GORO_ECLOSED,
 *     terminate runs, and the pool is one worker smaller.
 *   - Workers are goroutines; callers may be goroutines or plain threads.
 *     close/set_size must not be called from inside a job of the same pool
 *     (they would wait for themselves), and a block_until_ready that never
 *     returns holds up set_size and close (as in tunny).
 *
 * Objects.
 *   pool:   p->lock (a goro__lock, never held across a park except as the
 *           lock a park releases) protects: closed, the FIFO of queued jobs,
 *           the stack of idle workers, nworkers/excess/leaving, the exited
 *           list, p->sizer, and each job's qstate/worker fields.
 *           resize_mu (a goro_mutex) serialises set_size and close.
 *   worker: heap record per worker goroutine. w->lock protects w->jstate,
 *           w->intr_done and w->intr_waiter: the life of the job it holds
 *           after the claim. w->job/w->stop are written by whoever pops w from
 *           the idle stack (under p->lock) and read by w once readied.
 *   job:    lives on the caller's stack for the duration of the call.
 *
 * Lock order: p->lock before w->lock. Nobody takes p->lock while holding a
 * worker's lock (so a worker finishing a job never touches p->lock).
 *
 * Job life, seen by the caller (qstate, under p->lock):
 *   QUEUED  in p's FIFO; no worker knows it. Giving up = unlink it.
 *   CLAIMED a worker took it (job->worker set, same critical section).
 *   CLOSED  close() took it off the queue; the call returns GORO_ECLOSED.
 * and by its worker (w->jstate, under w->lock once the job is claimed):
 *   CLAIMED   handed to an idle worker that has not started it yet; a caller
 *             giving up now sets CANCELLED and leaves (no interrupt).
 *   RUNNING   process() runs or is about to (a worker that dequeues a job
 *             itself starts it at once); a caller giving up sets ABANDONED,
 *             calls interrupt, then sets intr_done.
 *   IDLE      nothing held.
 * Invariant: the claimer copies the payload into the worker (w->payload)
 * while the job cannot go away (p->lock held, or the caller itself hands it
 * over); after that the worker touches the job only under w->lock and only
 * while w->jstate is RUNNING (to deliver the result). A caller that gives up
 * moves jstate out of RUNNING under w->lock and may then return at once, so
 * the job's stack memory is never touched after the call returned.
 *
 * Waking the caller. Two modes:
 *   park mode (process, process_timed, process_ctx with a never-done
 *     context): the caller parks with deadline. The worker finishing the job
 *     claims the caller (goro__claim) under w->lock; if it wins it stores the
 *     result, sets finished, and readies it; if the deadline won, it stores the
 *     result and sets finished, and the caller - which must take p->lock and
 *     then w->lock to give up - finds it there and returns it. The claim can
 *     only target the caller's wait for this job: the caller starts no other
 *     wait before it saw finished or set ABANDONED/CANCELLED, both of which
 *     need w->lock, which the worker holds across its claim.
 *   chan mode (process_ctx): the caller waits in goro_select on the context's
 *     done channel and a 1-slot token channel of its own. The worker holds a
 *     reference to the token channel and drops it after its try_send.
 * A caller that cannot give up (process, process_timed(GORO_FOREVER), a
 * never-done context: w->cancellable false) needs none of w->lock: nobody
 * else reads w->jstate for its job and the claim of its wait cannot fail.
 * A caller is ready()d only once parked: jobs reach workers through p->lock,
 * which the caller holds until its park released it, and an idle worker
 * handed a job directly is readied from the caller's park unlock callback.
 *
 * Batching. A worker that finds the queue empty yields (GORO__POOL_SPINS
 * times) before it goes idle: the callers it just readied run, queue their
 * next jobs, and park; the worker then runs that batch back to back. Under
 * load a job then costs one park and one ready of its caller and nothing of
 * the worker. While it yields the worker is on no list, so callers queue
 * rather than hand over.
 *
 * Workers leave (set_size/close) either because the sizer popped them from
 * the idle stack with w->stop, or by taking one unit of p->excess at a check
 * point (before block_until_ready, and under p->lock before taking a job).
 * A worker whose job called goro_exit() counts itself in `leaving` too.
 * `leaving` counts them all until the worker's exit handshake (its last action):
 * the sizer waits for leaving == 0, then for each exited record's goroutine
 * to be gone, then frees the records.
 */
#include "pool_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../observe/debug_registry.h"
#include "../util/list.h"

/* How many times a worker that finds the queue empty yields before it goes
   idle (see worker_main). */
#define GORO__POOL_SPINS 2

enum { Q_NONE, Q_QUEUED, Q_CLAIMED, Q_CLOSED };
enum { J_IDLE, J_CLAIMED, J_RUNNING, J_CANCELLED, J_ABANDONED };

typedef struct pjob pjob;
typedef struct pworker pworker;

struct pjob {
    goro__link qlink; /* in p->queue (p->lock) */
    void *payload;
    void *result;
    int outcome;           /* 0 or GORO_ECLOSED, set by the waker before ready */
    int qstate;            /* p->lock */
    pworker *worker;       /* set with qstate = CLAIMED (p->lock) */
    goro__g *g;            /* park mode: the caller */
    goro_chan *done;       /* chan mode: token channel (else NULL) */
    bool cancellable;      /* the caller may give up (deadline or context) */
    _Atomic bool finished; /* result stored by the worker (under w->lock) */
};

struct pworker {
    goro_pool *pool;
    goro_worker *wk;
    int no;     /* K of "pool worker K" */
    goro__g *g; /* the worker goroutine, set by itself at start */
    uint64_t gid;
    pworker *next_idle;   /* idle stack link (p->lock) */
    pworker *next_exited; /* exited list link (p->lock) */
    pjob *job;            /* handed over by a caller (p->lock, read after wake-up) */
    void *payload;        /* copied from the job when it is claimed: a caller that
                                   abandons a running job may return at once, so the
                                   worker never reads the job before process() */
    bool cancellable;     /* copied with the payload: false for goro_pool_process,
                                   whose caller never gives up, so w->jstate has no
                                   other reader and w->lock can be skipped */
    bool stop;            /* told to leave while idle (p->lock, read after wake-up) */
    bool in_job;          /* owned by the worker goroutine */

    goro__lock lock;
    int jstate;           /* J_*, w->lock (see the top comment) */
    bool intr_done;       /* w->lock: the abandoning caller's interrupt returned */
    goro__g *intr_waiter; /* w->lock: the worker waiting for intr_done */
};

struct goro_pool {
    goro__lock lock;
    bool closed;
    goro__list queue; /* pjob by qlink, FIFO */
    pworker *idle;
    int nworkers;       /* workers not told to leave */
    _Atomic int excess; /* leave-tokens not yet taken (written under lock) */
    int leaving;        /* told or to be told to leave, not yet exited */
    pworker *exited;
    goro__g *sizer; /* set_size/close parked until leaving == 0 */

    _Atomic int size_pub; /* nworkers, for lock-free reads */
    _Atomic bool closed_pub;
    _Atomic int64_t queued; /* callers inside process* */

    goro_mutex resize_mu;
    goro_worker *(*ctor)(void *ctx);
    void *ctor_ctx;
    void *(*fn)(void *payload, void *ctx); /* goro_pool_new_func */
    void *fn_ctx;
    void (*discard)(void *payload, void *result, void *ctx); /* goro_pool_set_discard */
    void *discard_ctx;
    int next_no;          /* resize_mu */
    unsigned long serial; /* pool number, for the debug page */
    bool debug_registered;
};

/* --------------------------------------------------------- small helpers */

void goro__pool_wait_gone(goro__g *g, uint64_t id) {
    int64_t backoff = 1000;
    for (int i = 0; !goro__pool_g_gone(g, id); i++) {
        if (i < 64) {
            goro_yield();
        } else {
            goro_sleep(backoff);
            if (backoff < GORO_MS(1))
                backoff *= 2;
        }
    }
}

static void q_push(goro_pool *p, pjob *j) {
    goro__list_push_back(&p->queue, &j->qlink);
    j->qstate = Q_QUEUED;
}

static void q_unlink(goro_pool *p, pjob *j) { goro__list_remove(&p->queue, &j->qlink); }

static pjob *q_first(goro_pool *p) { return goro__list_entry(p->queue.first, pjob, qlink); }

static void wake_g(goro__g *g) {
    if (goro__claim(g))
        goro__ready(g);
}

static void publish_size(goro_pool *p) {
    atomic_store_explicit(&p->size_pub, p->nworkers, memory_order_relaxed);
}

/* ------------------------------------------------------------ the worker */

static void job_finish(pworker *w, pjob *j, void *r, int outcome);

/* Runs one job the worker holds in state RUNNING. */
static void run_job(pworker *w, pjob *j) {
    w->in_job = true;
    void *r = w->wk->process(w->wk, w->payload);
    w->in_job = false;
    job_finish(w, j, r, 0);
}

/* Delivers r to the caller, or - if the caller abandoned the job - waits
   until its interrupt has returned. Ends with w->jstate == J_IDLE. */
static void job_finish(pworker *w, pjob *j, void *r, int outcome) {
    if (!w->cancellable) {
        /* The caller parked without deadline and waits for exactly this. */
        w->jstate = J_IDLE;
        goro__g *g = j->g;
        if (!goro__claim(g))
            goro__throw("goro_pool: a caller without deadline could not be claimed");
        j->result = r;
        j->outcome = outcome;
        atomic_store_explicit(&j->finished, true, memory_order_release);
        goro__ready(g); /* j may be gone from here on */
        return;
    }
    goro__lock_acquire(&w->lock);
    if (w->jstate == J_RUNNING) {
        w->jstate = J_IDLE;
        goro_chan *done = j->done;
        if (done) {
            j->result = r;
            j->outcome = outcome;
            atomic_store_explicit(&j->finished, true, memory_order_release);
            goro_chan_try_send(done, NULL);
            goro__lock_release(&w->lock);
            goro_chan_release(done); /* the worker's reference */
            return;
        }
        goro__g *g = j->g;
        bool claimed = goro__claim(g);
        j->result = r;
        j->outcome = outcome;
        atomic_store_explicit(&j->finished, true, memory_order_release);
        if (claimed)
            goro__ready(g); /* j may be gone from here on */
        goro__lock_release(&w->lock);
        return;
    }
    /* J_ABANDONED: the caller is calling interrupt; wait until it returned. */
    while (!w->intr_done) {
        goro__g *me = goro__getg();
        goro__g_prepare_wait(me);
        w->intr_waiter = me;
        goro__park(GORO__POOL_WAIT_CALLER, NULL, goro__lock_release_v, &w->lock,
                   GORO__POOL_NO_DEADLINE);
        goro__lock_acquire(&w->lock);
    }
    w->intr_done = false;
    w->intr_waiter = NULL;
    w->jstate = J_IDLE;
    goro__lock_release(&w->lock);
    /* The caller has returned its error and left payload and result to us. */
    goro_pool *p = w->pool;
    if (p->discard)
        p->discard(w->payload, r, p->discard_ctx);
}

/* Takes one leave-token if there is one (p->lock held). */
static bool take_excess_locked(goro_pool *p) {
    int e = atomic_load_explicit(&p->excess, memory_order_relaxed);
    if (e <= 0)
        return false;
    atomic_store_explicit(&p->excess, e - 1, memory_order_relaxed);
    return true;
}

static void worker_defer(void *arg);

static void worker_main(void *arg) {
    pworker *w = arg;
    goro_pool *p = w->pool;
    goro_worker *wk = w->wk;
    w->g = goro__getg();
    w->gid = goro_id();
    goro_defer(worker_defer, w);

    bool need_ready = true;
    int spins = 0;
    for (;;) {
        if (need_ready) {
            if (atomic_load_explicit(&p->excess, memory_order_relaxed) > 0) {
                goro__lock_acquire(&p->lock);
                bool leave = take_excess_locked(p);
                goro__lock_release(&p->lock);
                if (leave)
                    return;
            }
            if (wk->block_until_ready)
                wk->block_until_ready(wk);
        }
        need_ready = true;

        goro__lock_acquire(&p->lock);
        if (take_excess_locked(p)) {
            goro__lock_release(&p->lock);
            return;
        }
        pjob *j = q_first(p);
        if (j) {
            spins = 0;
            q_unlink(p, j);
            j->qstate = Q_CLAIMED;
            j->worker = w;
            w->job = j;
            w->payload = j->payload;
            w->cancellable = j->cancellable;
            /* No caller can know w for this job before it sees Q_CLAIMED under
               p->lock, which we hold: setting jstate here needs no w->lock. */
            w->jstate = J_RUNNING;
            goro__lock_release(&p->lock);
            run_job(w, j);
            continue;
        }

        /* Nothing queued. The callers we just readied usually sit right
           behind us on this P and are about to queue their next jobs: step
           aside once or twice before going idle, so they queue a batch we
           then run back to back (rather than parking and being handed one
           job at a time, each hand-off a park and a ready). */
        if (spins < GORO__POOL_SPINS) {
            spins++;
            goro__lock_release(&p->lock);
            goro_yield();
            need_ready = false;
            continue;
        }
        spins = 0;

        /* Idle: wait on the idle stack to be handed a job or told to stop. */
        goro__g *me = goro__getg();
        goro__g_prepare_wait(me);
        w->job = NULL;
        w->stop = false;
        w->next_idle = p->idle;
        p->idle = w;
        goro__park(GORO__POOL_WAIT_IDLE, NULL, goro__lock_release_v, &p->lock,
                   GORO__POOL_NO_DEADLINE);
        if (w->stop)
            return;
        j = w->job;
        if (!w->cancellable) {
            w->jstate = J_RUNNING;
            run_job(w, j);
            continue;
        }
        goro__lock_acquire(&w->lock);
        if (w->jstate == J_CANCELLED) {
            /* The caller gave up before we began: still ready, no new BUR. */
            w->jstate = J_IDLE;
            goro__lock_release(&w->lock);
            need_ready = false;
            continue;
        }
        w->jstate = J_RUNNING;
        goro__lock_release(&w->lock);
        run_job(w, j);
    }
}

/* Runs when the worker goroutine ends: after worker_main returned (told to
   leave), or when a job called goro_exit(). Its last action is the exit
   handshake under p->lock. */
static void worker_defer(void *arg) {
    pworker *w = arg;
    goro_pool *p = w->pool;
    if (goro__getg()->panicking)
        return; /* a panic in a job: the program is about to die (see top) */

    if (w->in_job) {
        /* goro_exit() inside process(). The worker was not told to leave:
           first count it out of the pool (size one smaller) and in as
           leaving, or let it stand for a pending leave-token of a shrink
           (already counted as leaving), so that the caller, once it has its
           GORO_ECLOSED, sees the new size; close and set_size wait for it
           like any leaving worker. Then fail the job as "worker closed". */
        goro__lock_acquire(&p->lock);
        if (!take_excess_locked(p)) {
            p->nworkers--;
            publish_size(p);
            p->leaving++;
        }
        goro__lock_release(&p->lock);
        w->in_job = false;
        job_finish(w, w->job, NULL, GORO_ECLOSED);
    }
    if (w->wk->terminate)
        w->wk->terminate(w->wk);

    goro__lock_acquire(&p->lock);
    p->leaving--;
    w->next_exited = p->exited;
    p->exited = w;
    if (p->leaving == 0 && p->sizer) {
        goro__g *s = p->sizer;
        p->sizer = NULL;
        wake_g(s);
    }
    goro__lock_release(&p->lock);
    /* Nothing of p or w is touched after this point. */
}

/* ----------------------------------------------------------- the callers */

/* Unlock callback of a caller that handed its job straight to an idle
   worker: runs once the caller is off its stack (or, on a plain thread,
   about to sleep), so the worker can never try to wake a caller that has not
   parked yet. */
static void handoff_unlock(void *arg) {
    pjob *j = arg;
    pworker *w = j->worker;
    goro__g *wg = w->g;
    goro__lock_release(&w->pool->lock);
    goro__ready(wg);
}

/* The caller stops waiting: its deadline passed, its context is done, or (chan
   mode) its token arrived. Decides the call's outcome under the locks. `why`
   is the error to report when the job did not complete. *late: the worker
   still runs the job and will pass payload and result to the discard hook. */
static int resolve(goro_pool *p, pjob *j, int why, void **result, bool *late) {
    goro__lock_acquire(&p->lock);
    switch (j->qstate) {
    case Q_QUEUED:
        q_unlink(p, j);
        goro__lock_release(&p->lock);
        return why; /* no worker claimed it: nothing to interrupt */
    case Q_CLOSED: goro__lock_release(&p->lock); return GORO_ECLOSED;
    default: break;
    }
    pworker *w = j->worker;
    if (atomic_load_explicit(&j->finished, memory_order_acquire)) {
        /* w may have left already: do not touch it. */
        goro__lock_release(&p->lock);
        *result = j->result;
        return j->outcome;
    }
    /* Not finished: w still holds this job and cannot leave while we hold
       p->lock, so its record is alive. */
    goro__lock_acquire(&w->lock);
    goro__lock_release(&p->lock);
    if (atomic_load_explicit(&j->finished, memory_order_acquire)) {
        goro__lock_release(&w->lock);
        *result = j->result;
        return j->outcome;
    }
    if (w->jstate == J_CLAIMED) {
        w->jstate = J_CANCELLED;
        goro__lock_release(&w->lock);
        return why;
    }
    /* J_RUNNING: the job had started. */
    w->jstate = J_ABANDONED;
    *late = true;
    goro__lock_release(&w->lock);
    if (w->wk->interrupt)
        w->wk->interrupt(w->wk);
    goro__lock_acquire(&w->lock);
    w->intr_done = true;
    goro__g *wg = w->intr_waiter;
    w->intr_waiter = NULL;
    if (wg)
        wake_g(wg);
    goro__lock_release(&w->lock);
    return why;
}

/* One call. deadline: absolute goro_nanotime or GORO__POOL_NO_DEADLINE.
   ctx/ctxdone: chan mode when ctxdone != NULL. */
static int pool_call(goro_pool *p, void *payload, int64_t deadline, goro_ctx *ctx,
                     goro_chan *ctxdone, void **result, bool *late) {
    pjob j;
    memset(&j, 0, sizeof j);
    j.payload = payload;
    j.qstate = Q_NONE;
    j.cancellable = deadline >= 0 || ctxdone != NULL;
    atomic_init(&j.finished, false);
    void *dummy;
    if (!result)
        result = &dummy;

    if (ctxdone) {
        j.done = goro_chan_make(0, 1);
        if (!j.done)
            return GORO_ENOMEM;
        goro_chan_retain(j.done); /* the worker's reference */
    }

    goro__g *me = goro__getg();
    goro__lock_acquire(&p->lock);
    int early = 0;
    if (p->closed)
        early = GORO_ECLOSED;
    else if (ctxdone && (early = goro_ctx_err(ctx)) != 0)
        ;
    else if (deadline >= 0 && goro__nanotime() >= deadline)
        early = GORO_ETIMEDOUT;
    if (early) {
        goro__lock_release(&p->lock);
        if (j.done) {
            goro_chan_release(j.done);
            goro_chan_release(j.done);
        }
        return early;
    }

    bool woke = false;
    pworker *w = p->idle;
    if (w) {
        p->idle = w->next_idle;
        j.qstate = Q_CLAIMED;
        j.worker = w;
        w->job = &j;
        w->payload = payload;
        w->cancellable = j.cancellable;
        w->jstate = J_CLAIMED; /* w is parked idle: nobody else reaches it */
        if (!goro__claim(w->g))
            goro__throw("goro_pool: an idle worker could not be claimed");
        if (!j.done) {
            goro__g_prepare_wait(me);
            j.g = me;
            woke = goro__park(GORO__POOL_WAIT_CALLER, NULL, handoff_unlock, &j, deadline);
        } else {
            goro__g *wg = w->g;
            goro__lock_release(&p->lock);
            goro__ready(wg);
        }
    } else {
        q_push(p, &j);
        if (!j.done) {
            goro__g_prepare_wait(me);
            j.g = me;
            woke =
                goro__park(GORO__POOL_WAIT_CALLER, NULL, goro__lock_release_v, &p->lock, deadline);
        } else {
            goro__lock_release(&p->lock);
        }
    }

    if (!j.done) {
        if (woke) {
            /* Readied by the worker (finished) or by close (outcome ECLOSED). */
            *result = j.result;
            return j.outcome;
        }
        return resolve(p, &j, GORO_ETIMEDOUT, result, late);
    }

    goro_case cases[2] = {
        {.chan = j.done, .dir = GORO_RECV, .elem = NULL},
        {.chan = ctxdone, .dir = GORO_RECV, .elem = NULL},
    };
    int idx = goro_select(cases, 2, GORO_FOREVER);
    int why = idx == 1 ? goro_ctx_err(ctx) : GORO_ECANCELED;
    if (why == 0)
        why = GORO_ECANCELED;
    int err = resolve(p, &j, why, result, late);
    bool worker_has_ref =
        atomic_load_explicit(&j.finished, memory_order_acquire) && j.qstate == Q_CLAIMED;
    goro_chan_release(j.done);
    if (!worker_has_ref)
        goro_chan_release(j.done);
    return err;
}

static int pool_enter(goro_pool *p, void *payload, int64_t deadline, goro_ctx *ctx,
                      goro_chan *ctxdone, void **result) {
    atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
    bool late = false;
    int err = pool_call(p, payload, deadline, ctx, ctxdone, result, &late);
    /* Any error hands the payload over (see the top); if no worker will,
       pass it on here, before the call returns and before queue_length
       drops (so goro_pool_free waits for this hook call too). */
    if (err && !late && p->discard)
        p->discard(payload, NULL, p->discard_ctx);
    atomic_fetch_sub_explicit(&p->queued, 1, memory_order_release);
    return err;
}

int goro_pool_process(goro_pool *p, void *payload, void **result) {
    if (!p)
        return GORO_EINVAL;
    return pool_enter(p, payload, GORO__POOL_NO_DEADLINE, NULL, NULL, result);
}

int goro_pool_process_timed(goro_pool *p, void *payload, int64_t ns, void **result) {
    if (!p)
        return GORO_EINVAL;
    int64_t deadline;
    if (ns == GORO_FOREVER)
        deadline = GORO__POOL_NO_DEADLINE;
    else if (ns <= 0)
        deadline = 0; /* already expired */
    else {
        deadline = goro_nanotime() + ns;
        if (deadline < 0)
            deadline = INT64_MAX;
    }
    return pool_enter(p, payload, deadline, NULL, NULL, result);
}

int goro_pool_process_ctx(goro_pool *p, goro_ctx *c, void *payload, void **result) {
    if (!p || !c)
        return GORO_EINVAL;
    goro_chan *done = goro_ctx_done(c);
    /* A context that is never done (Background) waits like process. */
    return pool_enter(p, payload, GORO__POOL_NO_DEADLINE, c, done, result);
}

/* -------------------------------------------------------------- resizing */

/* Spawns one worker (resize_mu held, p->lock not held). */
static bool spawn_worker(goro_pool *p) {
    goro_worker *wk = p->ctor(p->ctor_ctx);
    if (!wk || !wk->process) {
        if (wk && wk->terminate)
            wk->terminate(wk);
        return false;
    }
    pworker *w = calloc(1, sizeof *w);
    if (!w) {
        if (wk->terminate)
            wk->terminate(wk);
        return false;
    }
    w->pool = p;
    w->wk = wk;
    w->no = ++p->next_no;
    w->lock = (goro__lock)GORO__LOCK_INIT;
    w->jstate = J_IDLE;
    char name[48];
    snprintf(name, sizeof name, "pool worker %d", w->no);
    goro_opts o = {.name = name};

    goro__lock_acquire(&p->lock);
    p->nworkers++;
    publish_size(p);
    goro__lock_release(&p->lock);
    if (goro_go_opts(&o, worker_main, w) == 0) {
        goro__lock_acquire(&p->lock);
        p->nworkers--;
        publish_size(p);
        goro__lock_release(&p->lock);
        if (wk->terminate)
            wk->terminate(wk);
        free(w);
        return false;
    }
    return true;
}

/* Parks until every worker told to leave has exited, then waits for their
   goroutines to be gone and frees their records (resize_mu held). */
static void join_leavers(goro_pool *p) {
    goro__lock_acquire(&p->lock);
    while (p->leaving > 0) {
        goro__g *me = goro__getg();
        goro__g_prepare_wait(me);
        p->sizer = me;
        goro__park(GORO__POOL_WAIT_JOIN, NULL, goro__lock_release_v, &p->lock,
                   GORO__POOL_NO_DEADLINE);
        goro__lock_acquire(&p->lock);
    }
    pworker *ex = p->exited;
    p->exited = NULL;
    goro__lock_release(&p->lock);
    while (ex) {
        pworker *next = ex->next_exited;
        goro__pool_wait_gone(ex->g, ex->gid);
        free(ex);
        ex = next;
    }
}

/* Tells nworkers - n workers to leave, idle ones first (p->lock held). */
static void shrink_locked(goro_pool *p, int n) {
    int k = p->nworkers - n;
    while (k > 0 && p->idle) {
        pworker *w = p->idle;
        p->idle = w->next_idle;
        w->stop = true;
        if (!goro__claim(w->g))
            goro__throw("goro_pool: an idle worker could not be claimed");
        goro__ready(w->g);
        p->nworkers--;
        p->leaving++;
        k--;
    }
    if (k > 0) {
        p->nworkers -= k;
        p->leaving += k;
        atomic_fetch_add_explicit(&p->excess, k, memory_order_relaxed);
    }
    publish_size(p);
}

void goro_pool_set_discard(goro_pool *p, void (*discard)(void *payload, void *result, void *ctx),
                           void *ctx) {
    if (!p)
        return;
    p->discard = discard;
    p->discard_ctx = ctx;
}

void goro_pool_set_size(goro_pool *p, int n) {
    if (!p)
        return;
    if (n < 0)
        n = 0;
    goro_mutex_lock(&p->resize_mu);
    goro__lock_acquire(&p->lock);
    if (p->closed) {
        goro__lock_release(&p->lock);
        goro_mutex_unlock(&p->resize_mu);
        return;
    }
    int have = p->nworkers;
    if (n < have)
        shrink_locked(p, n);
    goro__lock_release(&p->lock);
    for (int i = have; i < n; i++)
        if (!spawn_worker(p))
            break;
    join_leavers(p);
    goro_mutex_unlock(&p->resize_mu);
}

int goro_pool_size(goro_pool *p) {
    if (!p || atomic_load_explicit(&p->closed_pub, memory_order_acquire))
        return 0;
    return atomic_load_explicit(&p->size_pub, memory_order_relaxed);
}

int64_t goro_pool_queue_length(goro_pool *p) {
    if (!p || atomic_load_explicit(&p->closed_pub, memory_order_acquire))
        return 0;
    return atomic_load_explicit(&p->queued, memory_order_acquire);
}

void goro_pool_close(goro_pool *p) {
    if (!p)
        return;
    goro_mutex_lock(&p->resize_mu);
    goro__lock_acquire(&p->lock);
    if (p->closed) {
        goro__lock_release(&p->lock);
        goro_mutex_unlock(&p->resize_mu);
        return;
    }
    p->closed = true;
    atomic_store_explicit(&p->closed_pub, true, memory_order_release);
    /* Waiting callers: GORO_ECLOSED. Claimed jobs run to the end. */
    pjob *j;
    while ((j = q_first(p)) != NULL) {
        q_unlink(p, j);
        j->qstate = Q_CLOSED;
        j->outcome = GORO_ECLOSED;
        if (j->done)
            goro_chan_try_send(j->done, NULL);
        else
            wake_g(j->g); /* a lost claim: its deadline won; it sees Q_CLOSED */
    }
    shrink_locked(p, 0);
    goro__lock_release(&p->lock);
    join_leavers(p);
    goro_mutex_unlock(&p->resize_mu);
}

/* ------------------------------------------------------------- debugging */

static void render_pool(FILE *out, void *ctx) {
    goro_pool *p = ctx;
    bool closed = atomic_load_explicit(&p->closed_pub, memory_order_acquire);
    fprintf(out, "size %d, queue length %lld%s\n", goro_pool_size(p),
            (long long)goro_pool_queue_length(p), closed ? " (closed)" : "");
}

static _Atomic unsigned long pool_serial;

/* ------------------------------------------------------ create and free */

static goro_pool *pool_alloc(void) {
    goro_pool *p = calloc(1, sizeof *p);
    if (!p) {
        *goro__errno_location() = ENOMEM;
        return NULL;
    }
    p->lock = (goro__lock)GORO__LOCK_INIT;
    p->serial = atomic_fetch_add(&pool_serial, 1) + 1;
    return p;
}

static goro_pool *pool_start(goro_pool *p, int n) {
    goro_pool_set_size(p, n);
    if (goro_pool_size(p) < n) {
        goro_pool_close(p);
        free(p);
        *goro__errno_location() = ENOMEM;
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "pool %lu", p->serial);
    p->debug_registered = goro__debug_register_section(name, render_pool, p) == 0;
    return p;
}

typedef struct func_worker {
    goro_worker base; /* first: a goro_worker * is a func_worker * */
    goro_pool *pool;
} func_worker;

static void *func_process(goro_worker *w, void *payload) {
    func_worker *f = (func_worker *)w;
    return f->pool->fn(payload, f->pool->fn_ctx);
}

static void func_terminate(goro_worker *w) { free(w); }

static goro_worker *func_ctor(void *ctx) {
    func_worker *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->base.process = func_process;
    f->base.terminate = func_terminate;
    f->pool = ctx;
    return &f->base;
}

/* Both constructors: fn is NULL for goro_pool_new; for goro_pool_new_func
   the workers are func_ctor's, whose context is the pool itself. */
static goro_pool *pool_create(int n, goro_worker *(*ctor)(void *ctx), void *ctx,
                              void *(*fn)(void *payload, void *ctx)) {
    if (n < 0 || (!ctor && !fn)) {
        *goro__errno_location() = EINVAL;
        return NULL;
    }
    goro_pool *p = pool_alloc();
    if (!p)
        return NULL;
    if (fn) {
        p->fn = fn;
        p->fn_ctx = ctx;
        p->ctor = func_ctor;
        p->ctor_ctx = p;
    } else {
        p->ctor = ctor;
        p->ctor_ctx = ctx;
    }
    return pool_start(p, n);
}

goro_pool *goro_pool_new(int n, goro_worker *(*ctor)(void *ctx), void *ctx) {
    return ctor ? pool_create(n, ctor, ctx, NULL) : pool_create(-1, NULL, NULL, NULL);
}

goro_pool *goro_pool_new_func(int n, void *(*fn)(void *payload, void *ctx), void *ctx) {
    return fn ? pool_create(n, NULL, ctx, fn) : pool_create(-1, NULL, NULL, NULL);
}

void goro_pool_free(goro_pool *p) {
    if (!p)
        return;
    goro_pool_close(p);
    if (p->debug_registered)
        goro__debug_unregister_section(render_pool, p);
    /* Callers that close turned away (or whose jobs it let finish) may still
       be on their way out of process*: their last touch of p is the
       queue_length decrement. */
    for (int i = 0; atomic_load_explicit(&p->queued, memory_order_acquire) != 0; i++) {
        if (i < 64)
            goro_yield();
        else
            goro_sleep(GORO_US(50));
    }
    free(p);
}
