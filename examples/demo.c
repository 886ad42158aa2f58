/*
 * demo.c - the classic goroutine leak, seen and fixed with goro.
 *
 * leaky() starts three goroutines that each send their result on one
 * unbuffered channel, and returns after the first receive: the other two
 * senders block forever in `chan send`. goro shows them exactly as Go would:
 * the goroutine count, the grouped profile (debug=1) with the senders' frames
 * and file:line, and the full dump (debug=2) with `created by`. The fix gives
 * the channel room for every result, so no sender is left behind.
 *
 *   ./demo            run the story and exit
 *   ./demo --serve    keep the leak and serve /debug/pprof/ on 127.0.0.1
 *
 * Each sender holds the channel through goro_opts.holds, like a Go closure
 * that captures it: once leaky() drops its own reference, only the blocked
 * senders can reach the channel, so the leak profile can prove they are stuck.
 * The leak part runs in a child process so the fix starts from a clean slate.
 */
#include <goro.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void sender(void *arg) {
    goro_chan *results = arg;
    int answer = 42;
    goro_chan_send(results, &answer); /* blocks forever when nobody receives */
}

static void start_senders(goro_chan *results) {
    goro_chan *held[] = {results, NULL};
    goro_opts o = {.name = "sender", .holds = held};
    for (int i = 0; i < 3; i++)
        goro_go_opts(&o, sender, results);
}

/* Returns the first of three answers; leaks the two other senders. */
static int leaky(void) {
    goro_chan *results = goro_chan_make(sizeof(int), 0);
    start_senders(results);
    int first = 0;
    goro_chan_recv(results, &first);
    goro_chan_release(results);
    return first;
}

/* The fix: a buffer for every answer, so each sender can finish. */
static int fixed(void) {
    goro_chan *results = goro_chan_make(sizeof(int), 3);
    start_senders(results);
    int first = 0;
    goro_chan_recv(results, &first);
    goro_chan_release(results);
    return first;
}

static void banner(const char *s) {
    printf("\n===== %s =====\n", s);
    fflush(stdout);
}

static int leak_story(bool serve) {
    banner("the leak: leaky() starts 3 senders and returns after the first receive");
    int before = goro_count();
    int got = leaky();
    goro_sleep(GORO_MS(20)); /* let the senders settle into their wait */
    int after = goro_count();
    printf("leaky() returned %d\n", got);
    printf("goro_count() before=%d after=%d leaked=%d\n", before, after, after - before);

    banner(
        "goro_profile_write(stdout, 1): grouped, like pprof.Lookup(\"goroutine\").WriteTo(w, 1)");
    goro_profile_write(stdout, 1);
    fflush(stdout);

    banner("goro_profile_write(stdout, 2): every goroutine, like a Go panic dump");
    goro_profile_write(stdout, 2);
    fflush(stdout);

    banner("goro_leak_verify_none(): what a goleak-style test check reports");
    goro_leak_opts lo = {.timeout_ns = GORO_MS(200)};
    int leaked = goro_leak_verify_none(&lo, stdout);
    printf("goro_leak_verify_none found %d leaked goroutine(s)\n", leaked);
    fflush(stdout);

    banner("goro_leak_profile_write(stdout, 1): goroutines that can provably never run again");
    goro_leak_profile_write(stdout, 1);
    fflush(stdout);

    if (serve) {
        int port = goro_debug_serve("127.0.0.1:6060");
        if (port < 0)
            port = goro_debug_serve("127.0.0.1:0");
        if (port < 0) {
            fprintf(stderr, "goro_debug_serve: %s\n", goro_strerror(port));
            return 1;
        }
        banner("debug server");
        printf("curl http://127.0.0.1:%d/debug/pprof/\n", port);
        printf("curl 'http://127.0.0.1:%d/debug/pprof/goroutine?debug=1'\n", port);
        printf("curl 'http://127.0.0.1:%d/debug/pprof/goroutine?debug=2'\n", port);
        printf("curl 'http://127.0.0.1:%d/debug/pprof/goroutineleak?debug=1'\n", port);
        printf("go tool pprof -top http://127.0.0.1:%d/debug/pprof/goroutine\n", port);
        printf("(Ctrl-C to stop)\n");
        fflush(stdout);
        for (;;)
            goro_sleep(GORO_SEC(3600));
    }

    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--serve") == 0)
        return leak_story(true);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(leak_story(false));
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;

    banner("the fix: a channel with room for every answer (a fresh process)");
    int before = goro_count();
    int got = fixed();
    goro_sleep(GORO_MS(20));
    printf("fixed() returned %d\n", got);
    printf("goro_count() before=%d after=%d leaked=%d\n", before, goro_count(),
           goro_count() - before);
    goro_leak_opts lo = {.timeout_ns = GORO_MS(200)};
    printf("goro_leak_verify_none found %d leaked goroutine(s)\n",
           goro_leak_verify_none(&lo, stdout));
    printf("\nRun ./demo --serve to browse the leak at /debug/pprof/ on 127.0.0.1.\n");
    return 0;
}
