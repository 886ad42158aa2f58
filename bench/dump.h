/*
 * dump.h - timing a profile writer (goro_profile_write, goro_leak_profile_write)
 * at debug 0/1/2 the way gobench's profile_dump does, plus the longest pause a
 * yielding goroutine sees meanwhile (spinner.h). Header-only, for bench/goro_bench_*.c.
 */
#ifndef GORO_BENCH_DUMP_H
#define GORO_BENCH_DUMP_H

#include "harness.h"
#include "spinner.h"

HB_FN ssize_t count_write(void *cookie, const char *buf, size_t size) {
    (void)buf;
    *(int64_t *)cookie += (int64_t)size;
    return (ssize_t)size;
}

HB_FN FILE *count_open(int64_t *counter) {
    cookie_io_functions_t io = {.read = NULL, .write = count_write, .seek = NULL, .close = NULL};
    *counter = 0;
    FILE *f = fopencookie(counter, "w", io);
    if (!f)
        hb_die("fopencookie");
    return f;
}

typedef int (*profile_writer)(FILE *f, int debug);

/* Stack records ("N @ 0x...") in a debug=1 profile. */
HB_FN int distinct_records(profile_writer w) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        hb_die("open_memstream");
    w(f, 1);
    fclose(f);
    int distinct = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        char *at = strstr(line, " @ 0x");
        if (at && (!nl || at < nl) && at > line) {
            bool digits = true;
            for (char *p = line; p < at; p++)
                digits = digits && *p >= '0' && *p <= '9';
            distinct += digits;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return distinct;
}

/* Times one writer at one debug level the way gobench does (a warm-up, then
   at least 3 and until -benchtime or 50), then 3 more dumps with the spinner
   running to find the longest pause. */
HB_FN void dump_levels(const char *what, profile_writer w, long n, int distinct) {
    for (int debug = 0; debug <= 2; debug++) {
        int64_t bytes;
        FILE *f = count_open(&bytes);
        w(f, debug); /* warm-up */
        fclose(f);
        double times[50];
        int nt = 0;
        int64_t total = 0;
        int ret = 0;
        while (nt < 3 || (total < hb_benchtime && nt < 50)) {
            f = count_open(&bytes);
            int64_t t0 = hb_now();
            ret = w(f, debug);
            fflush(f);
            int64_t d = hb_now() - t0;
            fclose(f);
            total += d;
            times[nt++] = (double)d;
        }
        double med = hb_median(times, nt);

        hb_spin_start();
        int64_t baseline = hb_spin_baseline(GORO_MS(100));
        int64_t maxpause = 0, maxunexpl = 0;
        const char *cause = "-";
        for (int k = 0; k < 3; k++) {
            hb_spin_reset();
            f = count_open(&bytes);
            w(f, debug);
            fclose(f);
            int64_t p = hb_spin_max_ns();
            if (p > maxpause) {
                maxpause = p;
                cause = hb_spin_max_cause_str();
            }
            int64_t u = hb_spin_max_unexplained_ns();
            if (u > maxunexpl)
                maxunexpl = u;
        }
        hb_spin_stop();

        hb_kv kv = {0};
        hb_kv_add(&kv, "ms_per_dump", "%.3f", med / 1e6);
        hb_kv_add(&kv, "bytes", "%lld", (long long)bytes);
        hb_kv_add(&kv, "ns_per_goroutine", "%.1f", med / (double)n);
        hb_kv_add(&kv, "num_goroutine", "%d", goro_count());
        if (debug == 1)
            hb_kv_add(&kv, "distinct_stack_records", "%d", distinct);
        hb_kv_add(&kv, "returned", "%d", ret);
        hb_kv_add(&kv, "max_pause_us", "%.1f", (double)maxpause / 1e3);
        hb_kv_add(&kv, "max_pause_cause", "%s", cause);
        hb_kv_add(&kv, "max_pause_not_preempted_us", "%.1f", (double)maxunexpl / 1e3);
        hb_kv_add(&kv, "spin_baseline_us", "%.1f", (double)baseline / 1e3);
        char label[96];
        snprintf(label, sizeof label, "%s/n%ld/debug%d", what, n, debug);
        hb_emit(label, med, nt, NULL, 0, &kv);
    }
}

#endif /* GORO_BENCH_DUMP_H */
