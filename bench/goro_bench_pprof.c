/*
 * goro_bench_pprof - the channel benchmarks (goro_bench_chan.c, included
 * as is) with a profile running the whole time, to measure what profiling
 * costs:
 *
 *   GORO_BENCH_PROFILE=cpu   goro_bench_pprof -reps 5 chan_pingpong_unbuffered
 *
 * GORO_BENCH_PROFILE: off (default) | cpu (100 Hz, to /dev/null) |
 * block=RATE (goro_set_block_profile_rate(RATE), ns) | mutex=FRACTION
 * (goro_set_mutex_profile_fraction). Several, comma-separated.
 */
#define main goro_bench_chan_main
#include "goro_bench_chan.c"
#undef main

/* The profiler's own cost (src/observe/profiles.h; internal, linked from
   the static library). */
typedef struct goro__cpuprof_cost {
    int64_t samples, lost, handler_ns, writer_ns;
} goro__cpuprof_cost;
void goro__cpuprof_stats(goro__cpuprof_cost *c);

int main(int argc, char **argv) {
    const char *mode = getenv("GORO_BENCH_PROFILE");
    FILE *out = NULL;
    if (mode && strstr(mode, "cpu")) {
        out = fopen("/dev/null", "w");
        if (!out || goro_cpu_profile_start(out) != 0)
            hb_die("goro_cpu_profile_start");
    }
    const char *b = mode ? strstr(mode, "block=") : NULL;
    if (b)
        goro_set_block_profile_rate(atoll(b + 6));
    const char *m = mode ? strstr(mode, "mutex=") : NULL;
    if (m)
        goro_set_mutex_profile_fraction(atoi(m + 6));
    int64_t t0 = hb_now();
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    int rc = goro_bench_chan_main(argc, argv);
    if (out) {
        goro_cpu_profile_stop();
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        fclose(out);
        goro__cpuprof_cost c;
        goro__cpuprof_stats(&c);
        double cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
        double wall = (double)(hb_now() - t0);
        printf("cpuprof: %.1f s wall, %.2f s CPU, %lld samples (%lld dropped); handler %.2f "
               "us/sample, "
               "writer %.3f s; profiler cost %.3f%% of the CPU used\n",
               wall / 1e9, cpu / 1e9, (long long)c.samples, (long long)c.lost,
               c.samples ? (double)c.handler_ns / 1e3 / (double)c.samples : 0.0,
               (double)c.writer_ns / 1e9, 100.0 * (double)(c.handler_ns + c.writer_ns) / cpu);
    }
    return rc;
}
