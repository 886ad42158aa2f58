/*
 * threadprof.c - the threadcreate profile (/debug/pprof/threadcreate).
 *
 * Go records the stack that created each OS thread. goro does not see the
 * creation of threads the C program makes itself (pthread_create is not
 * wrapped), so it reports every live thread of the process as procfs
 * self/task lists it, one sample each with an empty stack and the label
 * "thread" = the thread's name (comm: "goro-m3", "goro-debug", or the
 * program's own names), so `go tool pprof -tags` shows what the threads are;
 * in the proto the stack is one stand-in frame "thread <name>" (pprof drops
 * samples without a location), so -top lists the threads by name.
 * The index page's count is the number of threads, as Go's.
 */
#include "profiles.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug_registry.h"

static goro__sset *threads_sset(void) {
    goro__sset *s = goro__sset_new(1);
    DIR *d = opendir("/proc/self/task");
    if (!d || !s) {
        if (d)
            closedir(d);
        return s;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], name[64] = "?";
        snprintf(path, sizeof path, "/proc/self/task/%.20s/comm", e->d_name);
        FILE *f = fopen(path, "re");
        if (f) {
            if (fgets(name, sizeof name, f))
                name[strcspn(name, "\n")] = '\0';
            fclose(f);
        }
        goro__kv kv = {"thread", name};
        int64_t v[2] = {1, 0};
        if (!goro__sset_add(s, NULL, 0, &kv, 1, v))
            break;
    }
    closedir(d);
    return s;
}

static long long thread_count(void) {
    long long n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] >= '0' && e->d_name[0] <= '9';
    closedir(d);
    return n;
}

/* The proto, each thread shown as a stand-in frame "thread <name>" (pprof
   drops samples without a location). */
static int threads_proto(const goro__sset *s, const goro__pmeta *m, FILE *f) {
    size_t n = goro__sset_len(s);
    goro__psample *ps = calloc(n ? n : 1, sizeof *ps);
    char(*names)[80] = calloc(n ? n : 1, sizeof *names);
    int err = ENOMEM;
    if (ps && names) {
        for (size_t i = 0; i < n; i++) {
            ps[i] = goro__sset_at(s, i);
            snprintf(names[i], sizeof names[i], "thread %s",
                     ps[i].nlabels ? ps[i].labels[0].value : "?");
            ps[i].root = names[i];
        }
        goro__ow w;
        goro__ow_init_file(&w, f);
        err = goro__proto_write_samples(&w, m, ps, n);
        int ferr = goro__ow_flush(&w);
        err = err ? err : ferr;
    }
    free(ps);
    free(names);
    return err;
}

static const goro__pmeta thread_meta = {.nvalues = 1,
                                        .type = {"threadcreate"},
                                        .unit = {"count"},
                                        .period_type = "threadcreate",
                                        .period_unit = "count",
                                        .period = 1};

static int threads_write(FILE *f, int debug) {
    goro__sset *s = threads_sset();
    if (!s)
        return ENOMEM;
    int err = 0;
    if (debug <= 0) {
        err = threads_proto(s, &thread_meta, f);
    } else {
        /* Go's count-profile text: "<name> profile: total N", then
           "<count> @" and the labels of each record */
        long long total = 0;
        for (size_t i = 0; i < goro__sset_len(s); i++)
            total += goro__sset_at(s, i).v[0];
        fprintf(f, "threadcreate profile: total %lld\n", total);
        for (size_t i = 0; i < goro__sset_len(s); i++) {
            goro__psample p = goro__sset_at(s, i);
            fprintf(f, "%lld @\n# labels: {\"%s\":\"%s\"}\n\n", (long long)p.v[0], p.labels[0].key,
                    p.labels[0].value);
        }
        err = ferror(f) ? EIO : 0;
    }
    goro__sset_free(s);
    return err;
}

static void *threads_delta_begin(void) { return threads_sset(); }

static int threads_delta_write(const goro__sset *d, FILE *f, int64_t duration_ns) {
    goro__pmeta m = thread_meta;
    m.duration_nanos = duration_ns;
    return threads_proto(d, &m, f);
}

static int threads_delta_end(void *base, FILE *f, int64_t duration_ns) {
    return goro__sset_delta_end(base, threads_sset, threads_delta_write, f, duration_ns);
}

static const goro__debug_profile threadcreate_profile = {
    .name = "threadcreate",
    .desc = "Number of OS threads",
    .count = thread_count,
    .write = threads_write,
    .delta_begin = threads_delta_begin,
    .delta_end = threads_delta_end,
    .listed = true,
};

void goro__threadprof_register(void) { goro__debug_register_profile(&threadcreate_profile); }
