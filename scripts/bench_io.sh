#!/usr/bin/env bash
# bench_io.sh - goro's I/O against Go's, back to back on 127.0.0.1.
#
#   scripts/bench_io.sh            everything (~2 min)
#
# Servers: goro's examples/echo and examples/http_hello (--serve), and Go's
# bench/go/echo (a plain net.Listener echo server) and bench/go/http_hello
# (net/http), each with ONE processor (GOROMAXPROCS=1 / GOMAXPROCS=1) pinned
# to CPU 1; the load (bench/io_bench.c, a plain epoll client, and wrk) runs
# on CPU 0. Neither side uses I/O deadlines (goro's servers get
# --idle-timeout 0, as Go's set none). Measured:
#   - echo round trips per second with 1, 100 and 10,000 connections (64-byte
#     messages, closed loop), with p50/p99 latency;
#   - HTTP "Hello, World!" requests per second and p99 latency, wrk -t1 -c100;
#   - server memory per idle connection (VmRSS growth over 10,000 connections
#     that each made one round trip, divided by 10,000).
#   - the server's CPU time per echo round trip (all threads, user+system,
#     from /proc/PID/stat): on 2 cores the one-thread load generator often
#     saturates before the server does (server CPU busy < ~95%), and then
#     this, not round trips per second, tells the servers apart.
# Then prints a table with the ratios goro/Go (for latency, memory and CPU,
# lower is better: the ratio shown is Go/goro so that > 1 always means goro
# wins).
#
# Env: BUILD_DIR (build)  IO_SECONDS (5)  OUT (default $BUILD_DIR/bench-results/io-<date>)
#      REPS (3): runs of each measurement (goro and Go alternate); medians reported.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
BUILD_DIR=${BUILD_DIR:-build}
IO_SECONDS=${IO_SECONDS:-5}
REPS=${REPS:-3}
OUT=${OUT:-$BUILD_DIR/bench-results/io-$(date +%Y%m%d-%H%M%S)}
case $OUT in /*) ;; *) OUT=$root/$OUT ;; esac
mkdir -p "$OUT"

die() { echo "bench_io: $*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v go >/dev/null || die "go is not installed (apt-get install golang-go)"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"

# ------------------------------------------------------------------ build
test -f "$BUILD_DIR/CMakeCache.txt" || cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
    die "cmake configure failed"
cmake --build "$BUILD_DIR" --target echo http_hello bench_io_bench -j2 >"$OUT/build.log" 2>&1 ||
    die "build failed (see $OUT/build.log)"
export GOCACHE=${GOCACHE:-$root/$BUILD_DIR/go-cache} GOFLAGS=-mod=mod GOTOOLCHAIN=local
(cd bench/go && go build -o "$OUT/go_echo" ./echo && go build -o "$OUT/go_http_hello" ./http_hello) \
    >>"$OUT/build.log" 2>&1 || die "go build failed (see $OUT/build.log)"

ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
BIG=10000
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((BIG + 100)) ]; then
    BIG=$((nofile - 100))
    echo "bench_io: RLIMIT_NOFILE is $nofile: the big runs use $BIG connections" >&2
fi

# ---------------------------------------------------------------- servers
SERVER_PID=
SERVER_ADDR=

# start_server NAME CMD...: runs CMD pinned to CPU 1, waits for its address.
start_server() {
    local name=$1 log="$OUT/server-$1.log"
    shift
    : >"$log" # truncate now, not in the child: never read the previous run's address
    taskset -c 1 "$@" >>"$log" 2>&1 &
    SERVER_PID=$!
    SERVER_ADDR=
    for _ in $(seq 1 100); do
        SERVER_ADDR=$(grep -so '127\.0\.0\.1:[0-9]*' "$log" | head -1)
        [ -n "$SERVER_ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    die "$name did not start (see $log)"
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    SERVER_PID=
}
trap stop_server EXIT

# Go's reference servers set no deadlines, so goro's run without an idle timeout too.
goro_echo() { start_server goro-echo env GOROMAXPROCS=1 "$BUILD_DIR/echo" --serve 0 --idle-timeout 0; }
go_echo() { start_server go-echo env GOMAXPROCS=1 "$OUT/go_echo" -addr 127.0.0.1:0; }
goro_http() { start_server goro-http env GOROMAXPROCS=1 "$BUILD_DIR/http_hello" --serve 0 --idle-timeout 0; }
go_http() { start_server go-http env GOMAXPROCS=1 "$OUT/go_http_hello" -addr 127.0.0.1:0; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# One echo measurement of IMPL with CONNS connections, appended to its file.
echo_once() {
    local impl=$1 conns=$2
    "${impl}_echo"
    taskset -c 0 "$BUILD_DIR/bench_io_bench" echo "$SERVER_ADDR" "$conns" "$IO_SECONDS" 64 \
        "$SERVER_PID" >>"$OUT/echo-$impl-$conns.txt" 2>>"$OUT/load.log" ||
        echo "bench_io: $impl echo $conns failed" >&2
    stop_server
}

# One wrk run against IMPL; req/s and p99 (us) appended to its files.
http_once() {
    local impl=$1 i=$2
    "${impl}_http"
    taskset -c 0 wrk -t1 -c100 -d1s "http://$SERVER_ADDR/" >/dev/null 2>&1 # warm-up
    taskset -c 0 wrk -t1 -c100 -d"${IO_SECONDS}s" --latency "http://$SERVER_ADDR/" \
        >"$OUT/wrk-$impl-$i.txt" 2>&1
    stop_server
    awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$impl-$i.txt" >>"$OUT/http-$impl-rps.txt"
    # "99%   1.23ms" -> microseconds
    awk '$1 == "99%" { v=$2; u=v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
         if (u == "us") print v; else if (u == "ms") print v*1000; else if (u == "s") print v*1000000 }' \
        "$OUT/wrk-$impl-$i.txt" >>"$OUT/http-$impl-p99.txt"
}

# goro and Go alternate, REPS times each, so that a change in the machine's
# load hits both alike; the medians are compared.
echo_metric() { field "$3" <"$OUT/echo-$1-$2.txt" | median; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "?"; else if (r + 0 >= t) print "met"; else print "NOT met" }'; }

table="$OUT/table.txt"
printf '%-34s %14s %14s %9s  %s\n' benchmark goro Go ratio "target" | tee "$table"
row() { # name goro go ratio target-ratio
    printf '%-34s %14s %14s %9s  >= %s %s\n' "$1" "$2" "$3" "$4" "$5" "$(verdict "$4" "$5")" | tee -a "$table"
}

for conns in 1 100 "$BIG"; do
    for _ in $(seq 1 "$REPS"); do
        echo_once goro "$conns"
        echo_once go "$conns"
    done
    g=$(echo_metric goro "$conns" rtt_per_s) o=$(echo_metric go "$conns" rtt_per_s)
    row "echo rtt/s, $conns conns" "$g" "$o" "$(ratio "$g" "$o")" 1.2
    g=$(echo_metric goro "$conns" p99_us) o=$(echo_metric go "$conns" p99_us)
    row "echo p99 us, $conns conns (Go/goro)" "$g" "$o" "$(ratio "$o" "$g")" 1.0
    g=$(echo_metric goro "$conns" server_cpu_ns_per_rtt) o=$(echo_metric go "$conns" server_cpu_ns_per_rtt)
    row "server CPU ns/rtt, $conns (Go/goro)" "$g" "$o" "$(ratio "$o" "$g")" 1.2
    g=$(echo_metric goro "$conns" server_busy_pct) o=$(echo_metric go "$conns" server_busy_pct)
    printf '%-34s %14s %14s\n' "  server CPU busy %" "$g" "$o" | tee -a "$table"
    if [ "$conns" = "$BIG" ]; then
        g=$(echo_metric goro "$conns" idle_bytes_per_conn) o=$(echo_metric go "$conns" idle_bytes_per_conn)
        row "idle bytes/conn, $conns (Go/goro)" "$g" "$o" "$(ratio "$o" "$g")" 1.0
    fi
done

for i in $(seq 1 "$REPS"); do
    http_once goro "$i"
    http_once go "$i"
done
g=$(median <"$OUT/http-goro-rps.txt") o=$(median <"$OUT/http-go-rps.txt")
row "http hello req/s, wrk -c100" "$g" "$o" "$(ratio "$g" "$o")" 1.2
g=$(median <"$OUT/http-goro-p99.txt") o=$(median <"$OUT/http-go-p99.txt")
row "http hello p99 us (Go/goro)" "$g" "$o" "$(ratio "$o" "$g")" 1.0

echo "raw results: $OUT"
