#!/usr/bin/env bash
# shellcheck disable=SC2046,SC2086  # pinning prefixes and -n flags split on purpose
# goro vs Go, benchmark by benchmark, in one run on this machine.
#
#   scripts/bench.sh              every benchmark (~7 min on 2 cores: ~3.5 + io ~3)
#   scripts/bench.sh NAME...      a subset, e.g.  scripts/bench.sh spawn_join yield io
#   scripts/bench.sh list         the names
#
# For each benchmark it runs goro's binary and then Go's twin back to back
# with the same GOMAXPROCS/GOROMAXPROCS and CPU pinning (p1: one processor
# pinned to CPU 0; p2: two processors on CPUs 0,1), then prints a table: benchmark, metric, goro, Go,
# goro/Go, the target from the issues and whether it is met.
#
# Go's twin: bench/go/gobench (every scenario of bench/goro_bench_*.c, the
# channel-token limiter included), built offline with the local Go toolchain.
# "io" (echo and HTTP servers against Go's) is scripts/bench_io.sh; its table
# is printed as it runs and kept in $OUT/io-run*/.
#
# Env: BENCHTIME (500ms)   per measured rep, as gobench's -benchtime
#      BUILD_DIR (build)   CMake build directory
#      GOBENCH_DIR         gobench's source (default bench/go/gobench)
#      BENCH_TIMEOUT (600) seconds before one benchmark process is killed
#      RUNS (1)            repeat the whole plan; the table shows the median over runs
#      OUT                 results directory (default $BUILD_DIR/bench-results/<date>)
# Raw lines land in $OUT/goro.txt and $OUT/go.txt, the table in $OUT/table.txt.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
BUILD_DIR=${BUILD_DIR:-build}
BENCHTIME=${BENCHTIME:-500ms}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
RUNS=${RUNS:-1}
GOBENCH_DIR=${GOBENCH_DIR:-$root/bench/go/gobench}
OUT=${OUT:-$BUILD_DIR/bench-results/$(date +%Y%m%d-%H%M%S)}

# name  binary(goro)  pinning  -n  go-twin(gobench|-)
# In the order of run.sh; p1 rows first.
PLAN="
machine_pagefault        core    p2 0       gobench
spawn_join               core    p1 0       gobench
spawn_join_main          core    p1 0       -
spawn_join_thread        core    p1 0       -
spawn_join_gomain        core    p1 0       -
spawn_batch              core    p1 0       gobench
chan_pingpong_unbuffered chan    p1 0       gobench
chan_pingpong_unbuffered_main chan    p1 0       -
chan_pingpong_unbuffered_thread chan    p1 0       -
chan_pingpong_unbuffered_gomain chan    p1 0       -
chan_buffered_throughput chan    p1 0       gobench
select2                  chan    p1 0       gobench
yield                    core    p1 0       gobench
mutex_contended          chan    p1 0       gobench
spawn_join               core    p2 0       gobench
spawn_join_main          core    p2 0       -
spawn_join_thread        core    p2 0       -
spawn_join_gomain        core    p2 0       -
spawn_batch              core    p2 0       gobench
chan_pingpong_unbuffered chan    p2 0       gobench
chan_pingpong_unbuffered_main chan    p2 0       -
chan_pingpong_unbuffered_thread chan    p2 0       -
chan_pingpong_unbuffered_gomain chan    p2 0       -
chan_buffered_throughput chan    p2 0       gobench
select2                  chan    p2 0       gobench
mutex_contended          chan    p2 0       gobench
pool_process             pool    p2 0       gobench
goid                     core    p2 0       -
goid_stackparse          observe p2 0       gobench
num_goroutine            core    p2 10000   gobench
leak_check               leak    p2 1000    gobench
timers                   core    p2 100000  gobench
profile_dump             observe p2 0       gobench
leak_profile             leak    p2 100000  -
spawn_many_blocked       core    p2 100000  gobench
spawn_many_blocked       core    p2 1000000 gobench
limiter                  pool    p2 1000000 gobench
limiter_chantoken        pool    p2 1000000 -
limiter_raw              pool    p2 1000000 -
io                       net     p1 0       -
"

if [ "${1:-}" = "list" ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
	echo "usage: scripts/bench.sh [NAME...]   (no name: all)"
	echo "$PLAN" | awk 'NF { print "  " $1 }' | sort -u
	exit 0
fi
wanted=" $* "
want() { [ "$wanted" = "  " ] || case "$wanted" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

for n in "$@"; do
	echo "$PLAN" | awk -v n="$n" '$1 == n { f = 1 } END { exit !f }' || { echo "unknown benchmark: $n (scripts/bench.sh list)" >&2; exit 2; }
done

mkdir -p "$OUT"
GORO_OUT=$OUT/goro.txt
GO_OUT=$OUT/go.txt
: >"$GORO_OUT"
: >"$GO_OUT"
log() { echo "# $*" >&2; }

# ------------------------------------------------------------------ build goro
families=""
while read -r name fam _; do
	{ [ -n "$name" ] && want "$name"; } || continue
	case " $families " in *" $fam "*) ;; *) [ "$fam" != net ] && families="$families $fam" ;; esac
done <<<"$PLAN"

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
	log "configuring $BUILD_DIR"
	cmake -S . -B "$BUILD_DIR" >/dev/null || { echo "cmake configure failed" >&2; exit 1; }
fi
targets=""
for f in $families; do targets="$targets bench_goro_bench_$f"; done
declare -A built
for t in $targets; do
	if MAKEFLAGS='' cmake --build "$BUILD_DIR" -j2 --target "$t" >"$OUT/build-$t.log" 2>&1; then
		built[$t]=1
	else
		log "goro: $t did not build (see $OUT/build-$t.log); its benchmarks are skipped"
	fi
done
goro_bin() { # family -> path or empty
	local t=bench_goro_bench_$1
	[ -n "${built[$t]:-}" ] && [ -x "$BUILD_DIR/$t" ] && echo "$BUILD_DIR/$t"
}

# ------------------------------------------------------------------ build Go
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GO111MODULE=on GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
case $BUILD_DIR in /*) bd=$BUILD_DIR ;; *) bd=$root/$BUILD_DIR ;; esac
export GOCACHE=${GOCACHE:-$bd/go-cache}
GOBENCH=""
if command -v go >/dev/null 2>&1; then
	if (cd "$GOBENCH_DIR" && go build -trimpath -o "$tmp/gobench" .) 2>"$OUT/build-gobench.log"; then
		GOBENCH=$tmp/gobench
	else
		log "go: gobench did not build (see $OUT/build-gobench.log)"
	fi
	log "$(go version)"
else
	log "go not found: Go columns stay empty"
fi

pin() { # p1|p2 -> env prefix
	case $1 in
	p1) echo "env GOMAXPROCS=1 GOROMAXPROCS=1 taskset -c 0" ;;
	*) echo "env GOMAXPROCS=2 GOROMAXPROCS=2 taskset -c 0,1" ;;
	esac
}

run_to() { # file cmd...: runs with a timeout, appends result lines, echoes them
	local file=$1
	shift
	local o=$tmp/run.out
	timeout "$BENCH_TIMEOUT" "$@" >"$o" 2>"$tmp/run.err"
	local rc=$?
	cat "$o" >>"$file"
	cat "$o" >&2
	if [ $rc -ne 0 ]; then
		log "FAILED (exit $rc): $*"
		sed 's/^/#   /' "$tmp/run.err" | head -20 >&2
	fi
}

# ------------------------------------------------------------------ run
{
	echo "# machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" kernel=$(uname -r)"
	command -v go >/dev/null 2>&1 && echo "# $(go version)"
	echo "# $(${CC:-cc} --version | head -1); build: $(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$BUILD_DIR/CMakeCache.txt")"
	echo "# benchtime=$BENCHTIME loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
	log "WARNING: load average $load1: other work is running; numbers will be noisy"
fi

t_start=$(date +%s)
run=1
while [ "$run" -le "$RUNS" ]; do
	[ "$RUNS" -gt 1 ] && log "run $run/$RUNS"
	while read -r name fam p n twin; do
		[ -n "$name" ] || continue
		want "$name" || continue
		nflag=""
		[ "$n" != 0 ] && nflag="-n $n"
		log "$name ($p${nflag:+ $nflag})"
		if [ "$fam" = net ]; then
			# I/O: scripts/bench_io.sh (the I/O helper's: examples/echo and
			# examples/http_hello against bench/go/echo and bench/go/http_hello,
			# bench/io_bench.c and wrk as load, median of its own reps).
			if [ -x scripts/bench_io.sh ]; then
				BUILD_DIR=$BUILD_DIR OUT=$OUT/io-run$run scripts/bench_io.sh >"$OUT/io-run$run.log" 2>&1 ||
					log "scripts/bench_io.sh failed (see $OUT/io-run$run.log)"
				cat "$OUT/io-run$run.log" >&2
			else
				log "scripts/bench_io.sh missing: io skipped"
			fi
			continue
		fi
		bin=$(goro_bin "$fam")
		if [ -n "$bin" ]; then
			# shellcheck disable=SC2046
			run_to "$GORO_OUT" $(pin "$p") "$bin" -benchtime "$BENCHTIME" $nflag "$name"
		fi
		case $twin in
		gobench) [ -n "$GOBENCH" ] && run_to "$GO_OUT" $(pin "$p") "$GOBENCH" -benchtime "$BENCHTIME" $nflag "$name" ;;
		esac
	done <<<"$PLAN"
	run=$((run + 1))
done
log "took $(($(date +%s) - t_start)) s; loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); raw lines in $GORO_OUT and $GO_OUT"
echo "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

if [ -s "$GORO_OUT" ] || [ -s "$GO_OUT" ]; then
	python3 scripts/bench_compare.py "$GORO_OUT" "$GO_OUT" | tee "$OUT/table.txt"
	python3 scripts/bench_compare.py --md "$GORO_OUT" "$GO_OUT" >"$OUT/table.md"
fi
