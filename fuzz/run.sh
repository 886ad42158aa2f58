#!/bin/sh
# Builds and runs the libFuzzer target for the debug server's HTTP request
# parser (src/debug/http_parse.c) for a bounded time.
#   fuzz/run.sh [seconds]        default 60
# Needs clang with libFuzzer (Debian: clang). Findings land in
# build/fuzz/artifacts/; new interesting inputs in build/fuzz/corpus/ (the
# checked-in seeds in fuzz/corpus_http/ are only read).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"
CC=${CLANG:-clang}
"$CC" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -Isrc -o "$out/fuzz_http_parse" \
    fuzz/fuzz_http_parse.c src/debug/http_parse.c
exec "$out/fuzz_http_parse" -max_total_time="$secs" -max_len=70000 \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
    -dict=fuzz/http.dict "$out/corpus" fuzz/corpus_http
