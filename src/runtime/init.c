/*
 * init.c - starting the runtime on first use, and its environment knobs.
 *
 * There is no init call: every entry point calls goro__init(), which runs
 * once (pthread_once) on the first thread that uses the runtime; that thread
 * becomes goroutine 1.
 *
 * Default parallelism (GOMAXPROCS): the CPUs in the affinity mask, capped by
 * the cgroup v2 quota (cpu.max "quota period" -> ceil(quota/period)), or
 * GOROMAXPROCS when set. Read once at start.
 */
#include "sched.h"
#include "upcalls.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic bool inited;

static int cgroup_cpu_limit(void) {
    /* Our own cgroup (v2: a single "0::/path" line). */
    char path[1024] = "/sys/fs/cgroup/cpu.max";
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) == 0) {
                line[strcspn(line, "\n")] = 0;
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max",
                         strcmp(line + 3, "/") == 0 ? "" : line + 3);
            }
        }
        fclose(f);
    }
    f = fopen(path, "r");
    if (!f)
        f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f)
        return 0;
    char q[32] = {0};
    long period = 0;
    int n = fscanf(f, "%31s %ld", q, &period);
    fclose(f);
    if (n != 2 || strcmp(q, "max") == 0 || period <= 0)
        return 0;
    long quota = atol(q);
    if (quota <= 0)
        return 0;
    return (int)((quota + period - 1) / period);
}

/* The CPUs this process may run on: its affinity mask, capped by a cgroup
   CPU limit. */
static int usable_cpus(void) {
    int n = 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    int lim = cgroup_cpu_limit();
    if (lim > 0 && lim < n)
        n = lim;
    return n < 1 ? 1 : n;
}

static int default_procs(void) {
    const char *e = getenv("GOROMAXPROCS");
    if (e && *e) {
        int n = atoi(e);
        if (n > 0)
            return n > GORO__MAXPROCS ? GORO__MAXPROCS : n;
    }
    int n = goro__sched.ncpu;
    return n > GORO__MAXPROCS ? GORO__MAXPROCS : n;
}

static void read_knobs(void) {
    const char *tb = getenv("GOROTRACEBACK");
    goro__debug.traceback = 1;
    if (tb) {
        if (!strcmp(tb, "none") || !strcmp(tb, "0"))
            goro__debug.traceback = 0;
        else if (!strcmp(tb, "all") || !strcmp(tb, "2"))
            goro__debug.traceback = 2;
        else if (!strcmp(tb, "system"))
            goro__debug.traceback = 2;
        else if (!strcmp(tb, "crash"))
            goro__debug.traceback = 3;
    }
    const char *d = getenv("GORODEBUG");
    if (d && strstr(d, "migrate=1"))
        goro__debug.force_migrate = true;
    if (d && strstr(d, "starve=1"))
        goro__debug.starve = true;
    if (d && strstr(d, "lockmain=1"))
        goro__debug.lockmain = true;
    const char *st = d ? strstr(d, "schedtrace=") : NULL;
    if (st)
        goro__debug.schedtrace_ms = atoi(st + strlen("schedtrace="));
}

static void do_init(void) {
    read_knobs();
    goro__g_init_main();
    goro__sched.ncpu = usable_cpus();
    goro__sched_init(default_procs());
    goro__sched_adopt_main();
    goro__signals_init();
    goro__upcalls.observe_init();
    atomic_store_explicit(&inited, true, memory_order_release);
    goro__upcalls.leak_init();
    /* sysmon watches for goroutines that hold a processor without
       switching (sysmon.c): from the start, since goroutine 1 holds one. */
    goro__sysmon_start();
}

void goro__init(void) {
    if (GORO__LIKELY(atomic_load_explicit(&inited, memory_order_acquire)))
        return;
    pthread_once(&once, do_init);
}
