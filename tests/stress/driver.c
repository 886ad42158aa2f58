/*
 * driver.c - `make stress`: runs the scenarios (scenarios.c) over and over in
 * child processes, at 2 and 4 processors, with and without
 * GORODEBUG=migrate=1 (mode 1) or lockmain=1 (mode 2), two children at a time, until a time budget is spent.
 * Each child has its own bound; a child that fails, reports a deadlock, dies
 * of a signal or hangs fails the run, with its output and the command line
 * that replays it. Exit status 0 only if every child passed.
 *
 *   goro_stress [--seconds N] [--jobs J] [--only NAME] [--procs P] [--seed S]
 *   goro_stress --child NAME PROCS SEED MIGRATE   (one run, in this process)
 */
#define _GNU_SOURCE
#include "scenarios.h"

#include <goro.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_BOUND_NS (30 * 1000000000LL) /* a hang, not a slow machine */
#define MAX_JOBS 8

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int run_child(const char *name, int procs, uint64_t seed, int migrate) {
    /* 1: every wake-up through the global queue; 2: goroutine 1 stays a
       plain thread (the scenarios run their bodies on it). */
    if (migrate == 1)
        setenv("GORODEBUG", "migrate=1", 1);
    else if (migrate == 2)
        setenv("GORODEBUG", "lockmain=1", 1);
    goro_maxprocs(procs);
    stress_seed(seed);
    for (int i = 0; i < stress_nscenarios; i++) {
        if (strcmp(stress_scenarios[i].name, name) != 0)
            continue;
        const char *why = "?";
        if (stress_scenarios[i].run(seed, &why) != 0) {
            fprintf(stderr, "stress %s: %s\n", name, why);
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "no scenario %s\n", name);
    return 2;
}

typedef struct job {
    pid_t pid;
    int out; /* memfd holding the child's stdout and stderr */
    int64_t started;
    bool quit_sent;
    int scenario, procs, migrate;
    uint64_t seed;
} job;

static const char *self_path;
static int failures, runs, deadlocks;

static void report(job *j, int status) {
    runs++;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char buf[16384];
    ssize_t n = pread(j->out, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    close(j->out);
    if (ok)
        return;
    failures++;
    if (strstr(buf, "deadlock!"))
        deadlocks++;
    fprintf(stderr,
            "FAIL %s procs=%d migrate=%d seed=%llu (%s %d%s): replay with\n"
            "  %s --child %s %d %llu %d\n%s\n",
            stress_scenarios[j->scenario].name, j->procs, j->migrate, (unsigned long long)j->seed,
            WIFEXITED(status) ? "exit" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
            j->quit_sent ? ", hung" : "", self_path, stress_scenarios[j->scenario].name, j->procs,
            (unsigned long long)j->seed, j->migrate, buf);
}

static void start(job *j) {
    j->out = memfd_create("stress-out", 0);
    if (j->out < 0) {
        perror("memfd_create");
        exit(3);
    }
    j->started = now_ns();
    j->quit_sent = false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(3);
    }
    if (pid == 0) {
        dup2(j->out, 1);
        dup2(j->out, 2);
        _exit(run_child(stress_scenarios[j->scenario].name, j->procs, j->seed, j->migrate));
    }
    j->pid = pid;
}

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc == 6 && strcmp(argv[1], "--child") == 0)
        return run_child(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), atoi(argv[5]));
    double seconds = 150;
    int jobs = 2, only = -1, only_procs = 0;
    uint64_t seed = (uint64_t)time(NULL);
    const char *env = getenv("STRESS_SECONDS");
    if (env)
        seconds = atof(env);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs"))
            jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--procs"))
            only_procs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--only")) {
            for (int k = 0; k < stress_nscenarios; k++)
                if (!strcmp(stress_scenarios[k].name, argv[i + 1]))
                    only = k;
            if (only < 0) {
                fprintf(stderr, "no scenario %s\n", argv[i + 1]);
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: %s [--seconds N] [--jobs J] [--only NAME] [--procs P] [--seed S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (jobs < 1 || jobs > MAX_JOBS)
        jobs = 2;
    printf("goro_stress: %.0f s, %d at a time, first seed %llu\n", seconds, jobs,
           (unsigned long long)seed);
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    job running[MAX_JOBS];
    int nrunning = 0;
    uint64_t k = 0;
    for (;;) {
        while (nrunning < jobs && now_ns() < end) {
            job *j = &running[nrunning++];
            /* Round robin over scenario x procs x migrate, a new seed each. */
            j->scenario = only >= 0 ? only : (int)(k % (uint64_t)stress_nscenarios);
            j->procs = only_procs ? only_procs : (k / (uint64_t)stress_nscenarios) % 2 ? 4 : 2;
            uint64_t round = (k / (2 * (uint64_t)stress_nscenarios)) % 4;
            j->migrate = round == 3 ? 1 : round == 1 ? 2 : 0;
            j->seed = seed + k;
            k++;
            start(j);
        }
        if (nrunning == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < nrunning; i++)
                if (running[i].pid == pid) {
                    report(&running[i], status);
                    running[i] = running[--nrunning];
                    break;
                }
            continue;
        }
        int64_t t = now_ns();
        for (int i = 0; i < nrunning; i++) {
            job *j = &running[i];
            if (!j->quit_sent && t - j->started > CHILD_BOUND_NS) {
                kill(j->pid, SIGQUIT); /* goro dumps every goroutine, then dies */
                j->quit_sent = true;
                j->started = t - CHILD_BOUND_NS + 3000000000LL;
            } else if (j->quit_sent && t - j->started > CHILD_BOUND_NS) {
                kill(j->pid, SIGKILL);
            }
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    printf("goro_stress: %d runs in %.1f s, %d failed (%d false deadlock reports)\n", runs,
           (double)(now_ns() - t0) / 1e9, failures, deadlocks);
    return failures ? 1 : 0;
}
