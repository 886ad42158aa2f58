#!/usr/bin/env bash
# shellcheck disable=SC2046,SC2086  # pinning prefixes and -n flags split on purpose
# goro vs Go, benchmark by benchmark, in one run on this machine.
#
#   scripts/bench.sh              every benchmark (~5-8 min on 2 cores)
#   scripts/bench.sh NAME...      a subset, e.g.  scripts/bench.sh spawn_join yield echo
#   scripts/bench.sh list         the names
#
# For each benchmark it runs goro's binary and then Go's twin back to back
# with the same GOMAXPROCS/GOROMAXPROCS and CPU pinning as
# ../shared/anchors/go/run.sh (p1: one processor pinned to CPU 0; p2: two
# processors on CPUs 0,1), then prints a table: benchmark, metric, goro, Go,
# goro/Go, the target from the issues and whether it is met.
#
# Go's twins: shared/anchors/go/gobench (the anchors) and bench/go (limiter,
# echo and net/http servers), built offline with the local Go toolchain.
# Network benchmarks: the server (goro's or Go's) gets CPU 1 with one
# processor, the load generator (bench/echo_load.c, or wrk) CPU 0.
#
# Env: BENCHTIME (500ms)   per measured rep, as gobench's -benchtime
#      BUILD_DIR (build)   CMake build directory
#      GOBENCH_DIR         the anchors' gobench source (default ../shared/anchors/go/gobench)
#      NET_SECONDS (3)     measured seconds per echo / http run
#      BENCH_TIMEOUT (600) seconds before one benchmark process is killed
#      RUNS (1)            repeat the whole plan; the table shows the median over runs
#      OUT                 results directory (default $BUILD_DIR/bench-results/<date>)
# Raw lines land in $OUT/goro.txt and $OUT/go.txt, the table in $OUT/table.txt.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
BUILD_DIR=${BUILD_DIR:-build}
BENCHTIME=${BENCHTIME:-500ms}
NET_SECONDS=${NET_SECONDS:-3}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
RUNS=${RUNS:-1}
GOBENCH_DIR=${GOBENCH_DIR:-$root/../shared/anchors/go/gobench}
OUT=${OUT:-$BUILD_DIR/bench-results/$(date +%Y%m%d-%H%M%S)}

# name  binary(goro)  pinning  -n  go-twin(gobench|gobenchx|-)
# In the order of run.sh; p1 rows first.
PLAN="
machine_pagefault        core    p2 0       gobench
spawn_join               core    p1 0       gobench
spawn_batch              core    p1 0       gobench
chan_pingpong_unbuffered chan    p1 0       gobench
chan_buffered_throughput chan    p1 0       gobench
select2                  chan    p1 0       gobench
yield                    core    p1 0       gobench
mutex_contended          chan    p1 0       gobench
spawn_join               core    p2 0       gobench
spawn_batch              core    p2 0       gobench
chan_pingpong_unbuffered chan    p2 0       gobench
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
limiter                  pool    p2 1000000 gobenchx
limiter_chantoken        pool    p2 1000000 -
limiter_raw              pool    p2 1000000 -
echo                     net     p1 0       gobenchx
http                     net     p1 0       gobenchx
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
need_net=no
{ want echo || want http; } && need_net=yes

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
	log "configuring $BUILD_DIR"
	cmake -S . -B "$BUILD_DIR" >/dev/null || { echo "cmake configure failed" >&2; exit 1; }
fi
targets=""
for f in $families; do targets="$targets bench_goro_bench_$f"; done
[ $need_net = yes ] && targets="$targets bench_goro_echo_server bench_goro_http_hello bench_echo_load"
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
trap 'rm -rf "$tmp"; [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null' EXIT
export GO111MODULE=on GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
GOBENCH=""
GOBENCHX=""
if command -v go >/dev/null 2>&1; then
	if (cd "$GOBENCH_DIR" && go build -trimpath -o "$tmp/gobench" .) 2>"$OUT/build-gobench.log"; then
		GOBENCH=$tmp/gobench
	else
		log "go: gobench did not build (see $OUT/build-gobench.log)"
	fi
	if (cd bench/go && go build -trimpath -o "$tmp/gobenchx" .) 2>"$OUT/build-gobenchx.log"; then
		GOBENCHX=$tmp/gobenchx
	else
		log "go: bench/go did not build (see $OUT/build-gobenchx.log)"
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

# ------------------------------------------------------------------ network
srv_pid=""
start_server() { # cmd... ; sets srv_pid, srv_addr
	local o=$tmp/srv.out
	: >"$o"
	"$@" >"$o" 2>"$tmp/srv.err" &
	srv_pid=$!
	local i=0
	while [ $i -lt 50 ] && ! grep -q '^listening ' "$o"; do sleep 0.1; i=$((i + 1)); done
	srv_addr=$(awk '/^listening /{print $2; exit}' "$o")
	[ -n "$srv_addr" ] || { log "server did not start: $*"; sed 's/^/#   /' "$tmp/srv.err" >&2; stop_server; return 1; }
}
stop_server() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	srv_pid=""
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null # 10,000 connections per side
SRV_PIN=(env GOMAXPROCS=1 GOROMAXPROCS=1 taskset -c 1)
CLI_PIN=(taskset -c 0)

echo_bench() { # file server-cmd...
	local file=$1
	shift
	local c
	for c in 1 100 10000; do
		start_server "${SRV_PIN[@]}" "$@" || return
		run_to "$file" "${CLI_PIN[@]}" "$BUILD_DIR/bench_echo_load" "echo/c$c/p1" "$srv_addr" "$c" "$NET_SECONDS" 64 "$srv_pid"
		stop_server
	done
}

# wrk's "Requests/sec" and "Latency Distribution" -> one gobench-style line.
wrk_line() { # label < wrk output
	awk -v label="$1" '
	function us(s) {
		if (s ~ /us$/) return substr(s, 1, length(s) - 2) + 0
		if (s ~ /ms$/) return (substr(s, 1, length(s) - 2) + 0) * 1000
		if (s ~ /s$/) return (substr(s, 1, length(s) - 1) + 0) * 1e6
		return s + 0
	}
	/^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) }
	/requests in/ { reqs = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors/ { errs = $0; gsub(/[ ,]+/, "_", errs) }
	END {
		if (rps == 0) exit 1
		printf "%s ns_per_op=%.1f ops=%d req_per_s=%.0f p50_us=%.1f p99_us=%.1f conns=100%s\n", label, 1e9 / rps, reqs, rps, p50, p99, errs == "" ? "" : " errors=" errs
	}'
}

http_bench() { # file server-cmd...
	local file=$1
	shift
	command -v wrk >/dev/null 2>&1 || { log "wrk not installed (apt-get install wrk): http skipped"; return; }
	start_server "${SRV_PIN[@]}" "$@" || return
	"${CLI_PIN[@]}" wrk -t1 -c100 -d1s "http://$srv_addr/" >/dev/null 2>&1 # warm-up
	if "${CLI_PIN[@]}" wrk -t1 -c100 -d"${NET_SECONDS}s" --latency "http://$srv_addr/" >"$tmp/wrk.out" 2>&1 &&
		wrk_line "http/c100/p1" <"$tmp/wrk.out" >"$tmp/wrk.line"; then
		cat "$tmp/wrk.line" >>"$file"
		cat "$tmp/wrk.line" >&2
	else
		log "wrk failed against $*"
		sed 's/^/#   /' "$tmp/wrk.out" >&2
	fi
	stop_server
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
			if [ -n "${built[bench_echo_load]:-}" ]; then
				case $name in
				echo) [ -n "${built[bench_goro_echo_server]:-}" ] && echo_bench "$GORO_OUT" "$BUILD_DIR/bench_goro_echo_server" 127.0.0.1:0 ;;
				http) [ -n "${built[bench_goro_http_hello]:-}" ] && http_bench "$GORO_OUT" "$BUILD_DIR/bench_goro_http_hello" 127.0.0.1:0 ;;
				esac
				if [ -n "$GOBENCHX" ]; then
					case $name in
					echo) echo_bench "$GO_OUT" "$GOBENCHX" echo_server 127.0.0.1:0 ;;
					http) http_bench "$GO_OUT" "$GOBENCHX" http_server 127.0.0.1:0 ;;
					esac
				fi
			else
				log "bench_echo_load not built: $name skipped"
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
		gobenchx) [ -n "$GOBENCHX" ] && run_to "$GO_OUT" $(pin "$p") "$GOBENCHX" -benchtime "$BENCHTIME" $nflag "$name" ;;
		esac
	done <<<"$PLAN"
	run=$((run + 1))
done
log "took $(($(date +%s) - t_start)) s; loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); raw lines in $GORO_OUT and $GO_OUT"
echo "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

python3 scripts/bench_compare.py "$GORO_OUT" "$GO_OUT" | tee "$OUT/table.txt"
python3 scripts/bench_compare.py --md "$GORO_OUT" "$GO_OUT" >"$OUT/table.md"
