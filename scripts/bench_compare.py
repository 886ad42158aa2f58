#!/usr/bin/env python3
"""Compare goro benchmark lines with Go's, label by label.

    scripts/bench_compare.py [--md] GORO_FILE GO_FILE

Both files hold lines in gobench's format
    <label> ns_per_op=<x> ops=<n> procs=<p> [reps=a/b/c] [key=value...]
(other lines are ignored). Prints one row per (benchmark, metric): the goro
value, Go's, the ratio goro/go, the target from the issues and whether it is
met. A label that appears more than once (several runs) uses the median.
"""
import re
import statistics
import sys

# (label regex, metric, kind, value, go twin label template or None)
#   kind: "le"  ratio goro/go <= value      (times, bytes)
#         "ge"  ratio goro/go >= value      (throughput)
#         "abs" goro value <= value         (absolute bound; Go shown for context)
#         None  reported, no target
# The go twin template may use \1.. groups of the regex; None means "same label".
RULES = [
    (r"machine_pagefault/.*", "ns_per_op", None, None, None),
    (r"spawn_join/p\d+", "ns_per_op", "le", 0.5, None),
    # the same bodies in main(), on a pthread, in goro_main, against Go's
    # main goroutine (issue 12's bound, main <= 1.2x goro's goroutine row, is
    # read off docs/performance.md's table)
    (r"spawn_join_(main|thread|gomain)/(p\d+)", "ns_per_op", None, None, r"spawn_join/\2"),
    (r"spawn_batch1000/p\d+", "ns_per_op", None, None, None),
    (r"yield/p1", "ns_per_op", "le", 0.25, None),
    (r"yield/p\d+", "ns_per_op", None, None, None),
    (r"chan_pingpong_unbuffered/p\d+", "ns_per_op", "le", 0.5, None),
    (r"chan_pingpong_unbuffered_(main|thread|gomain)/(p\d+)", "ns_per_op", None, None,
     r"chan_pingpong_unbuffered/\2"),
    (r"chan_buffered_throughput/.*", "ns_per_op", "le", 0.7, None),
    (r"select2/.*", "ns_per_op", "le", 0.7, None),
    (r"mutex_contended/.*", "ns_per_op", "le", 1.0, None),
    (r"pool_process/.*", "ns_per_op", "le", 0.5, None),
    (r"goid/(p\d+)", "ns_per_op", "abs", 2.0, r"goid_stackparse/\1"),
    (r"goid_stackparse/p\d+", "ns_per_op", None, None, None),
    (r"goid_stackparse/p\d+", "shallow_goroutine_ns", None, None, None),
    (r"num_goroutine/.*", "ns_per_op", "abs", 5.0, None),
    (r"leak_check/.*", "ns_per_op", "le", 0.2, None),
    (r"leak_check/.*", "capture_only_ns", None, None, None),
    (r"leak_check/.*", "capture_presized_buf_ns", None, None, None),
    (r"leak_check/.*", "leaktest_mark_check_ns", None, None, None),
    (r"timers/n100000_sleep10ms/p\d+", "wall_ms", "le", 1.0, None),
    (r"timers/n100000_sleep10ms/p\d+", "overshoot_p99_us", "le", 1.0, None),
    (r"timers/.*", "wall_ms", None, None, None),
    (r"timers/.*", "overshoot_median_us", None, None, None),
    (r"timers/.*", "overshoot_p99_us", None, None, None),
    (r"profile_dump/.*", "ns_per_op", "le", 0.5, None),
    (r"profile_dump/.*", "bytes", None, None, None),
    (r"profile_dump/.*", "max_pause_not_preempted_us", "abs", 1000.0, None),
    (r"profile_dump/.*", "max_pause_us", None, None, None),
    (r"profile_dump/.*", "spin_baseline_us", None, None, None),
    (r"leak_profile/.*", "ns_per_op", None, None, None),
    (r"leak_profile/.*", "max_pause_not_preempted_us", None, None, None),
    (r"leak_profile/.*", "max_pause_us", None, None, None),
    (r"spawn_many_blocked/n1000000/p\d+", "rss_bytes_per_g", "le", 1.5, None),
    (r"spawn_many_blocked/n1000000/p\d+", "warm_spawn_ns_per_g", "le", 1.0, None),
    (r"spawn_many_blocked/.*", "ns_per_op", None, None, None),
    (r"spawn_many_blocked/.*", "rss_bytes_per_g", None, None, None),
    (r"spawn_many_blocked/.*", "warm_spawn_ns_per_g", None, None, None),
    (r"spawn_many_blocked/.*", "cold_teardown_ns_per_g", None, None, None),
    (r"spawn_many_blocked/.*", "warm_teardown_ns_per_g", None, None, None),
    (r"limiter/n\d+/limit\d+/p\d+", "ns_per_op", "le", 0.5, None),
    (r"limiter/n\d+/limit\d+/p\d+", "peak_rss_bytes", "le", 1.0, None),
    (r"limiter_chantoken/(n\d+/limit\d+/p\d+)", "ns_per_op", None, None, r"limiter/\1"),
    (r"limiter_chantoken/(n\d+/limit\d+/p\d+)", "peak_rss_bytes", None, None, r"limiter/\1"),
    (r"limiter_raw/(n\d+)/nolimit/(p\d+)", "ns_per_op", None, None, r"limiter/\1/limit1000/\2"),
    (r"limiter_raw/(n\d+)/nolimit/(p\d+)", "peak_rss_bytes", None, None, r"limiter/\1/limit1000/\2"),
]


def parse(path):
    """label -> {metric: [values...]}, in first-seen order."""
    out = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        fs = line.split()
        if len(fs) < 2 or not fs[1].startswith("ns_per_op="):
            continue
        d = out.setdefault(fs[0], {})
        for kv in fs[1:]:
            k, _, v = kv.partition("=")
            try:
                d.setdefault(k, []).append(float(v))
            except ValueError:
                pass
    return out


def val(d, label, metric):
    xs = d.get(label, {}).get(metric)
    return statistics.median(xs) if xs else None


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return "%.0f" % x
    return "%.1f" % x


def rows(goro, go):
    """Rows for every goro label, then for Go labels goro has no line for."""
    seen = set()
    out = []
    twins_used = set()
    labels = list(goro) + [l for l in go if l not in goro]
    for label in labels:
        matched = False
        for rx, metric, kind, value, twin in RULES:
            m = re.fullmatch(rx, label)
            if not m:
                continue
            matched = True
            if (label, metric) in seen:
                continue
            golabel = m.expand(twin) if twin else label
            if label not in goro and (twin or (label, metric) in twins_used):
                continue  # a Go line shown next to another goro label already
            g = val(goro, label, metric)
            o = val(go, golabel, metric)
            if g is None and o is None:
                continue
            seen.add((label, metric))
            twins_used.add((golabel, metric))
            ratio = g / o if (g is not None and o) else None
            if kind == "le":
                target = "<= %gx" % value
                met = None if ratio is None else ratio <= value
            elif kind == "ge":
                target = ">= %gx" % value
                met = None if ratio is None else ratio >= value
            elif kind == "abs":
                target = "<= %g" % value
                met = None if g is None else g <= value
            else:
                target, met = "-", None
            name = label if golabel == label else "%s (vs %s)" % (label, golabel)
            out.append((name, metric, g, o, ratio, target, met))
        if not matched:
            g = val(goro, label, "ns_per_op")
            o = val(go, label, "ns_per_op")
            ratio = g / o if (g is not None and o) else None
            out.append((label, "ns_per_op", g, o, ratio, "-", None))
    return out


def main():
    args = sys.argv[1:]
    md = False
    if args and args[0] == "--md":
        md = True
        args = args[1:]
    if len(args) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    goro, go = parse(args[0]), parse(args[1])
    rs = rows(goro, go)
    met_s = {True: "yes", False: "NO", None: "-"}
    if md:
        print("| benchmark | metric | goro | Go | goro/Go | target | met |")
        print("|---|---|---:|---:|---:|---|---|")
        for name, metric, g, o, ratio, target, met in rs:
            r = "-" if ratio is None else "%.2f" % ratio
            print("| %s | %s | %s | %s | %s | %s | %s |" % (name, metric, fmt(g), fmt(o), r, target, met_s[met]))
    else:
        w = max([len(r[0]) for r in rs] + [9])
        print("%-*s %-24s %12s %12s %8s %9s %4s" % (w, "benchmark", "metric", "goro", "go", "goro/go", "target", "met?"))
        for name, metric, g, o, ratio, target, met in rs:
            r = "-" if ratio is None else "%.2f" % ratio
            print("%-*s %-24s %12s %12s %8s %9s %4s" % (w, name, metric, fmt(g), fmt(o), r, target, met_s[met]))
    n_met = sum(1 for r in rs if r[6] is True)
    n_miss = sum(1 for r in rs if r[6] is False)
    print("\n%d targets met, %d missed, %d rows without a target or a Go number" % (n_met, n_miss, len(rs) - n_met - n_miss))


if __name__ == "__main__":
    main()
