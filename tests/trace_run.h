/*
 * trace_run.h - runs the trace fixture (tests/fixtures/trace_fixture.c,
 * built as goro_trace_fixture) as a separate program, the way a user runs
 * theirs, and collects one of its outputs. Static: included by the tests
 * that use it (test_traces.c, test_crash.c).
 */
#ifndef GORO_TRACE_RUN_H
#define GORO_TRACE_RUN_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GORO_TRACE_FIXTURE
#error "GORO_TRACE_FIXTURE (the fixture's path) comes from CMakeLists.txt"
#endif

/* Starts the fixture with args (NULL-terminated, after argv[0]), with
   GOROTRACEBACK=tb (NULL: unset) and no core dumps; what it writes to fd
   (1 or 2) comes out of the returned descriptor, the other descriptor goes
   to /dev/null. *pid: the child. */
static inline __attribute__((unused)) int trace_spawn(const char *const *args, const char *tb,
                                                      int fd, pid_t *pid_out) {
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(pfd[0]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, fd == 1 ? 2 : 1);
        dup2(pfd[1], fd);
        if (tb)
            setenv("GOROTRACEBACK", tb, 1);
        else
            unsetenv("GOROTRACEBACK");
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        const char *argv[16] = {GORO_TRACE_FIXTURE};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(GORO_TRACE_FIXTURE, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    *pid_out = pid;
    return pfd[0];
}

/* Runs the fixture as trace_spawn starts it; its output on fd goes to out
   (NUL-terminated, *len bytes). Returns the wait status. */
static inline __attribute__((unused)) int trace_run_n(const char *const *args, const char *tb,
                                                      int fd, char *out, size_t cap, size_t *len) {
    pid_t pid;
    int rfd = trace_spawn(args, tb, fd, &pid);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(rfd, out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    /* Drain the rest so the child never blocks on a full pipe. */
    char sink[4096];
    while (read(rfd, sink, sizeof sink) > 0) {
    }
    close(rfd);
    int st = 0;
    waitpid(pid, &st, 0);
    if (len)
        *len = n;
    return st;
}

static inline __attribute__((unused)) int trace_run(const char *const *args, const char *tb, int fd,
                                                    char *out, size_t cap) {
    return trace_run_n(args, tb, fd, out, cap, NULL);
}

#endif
