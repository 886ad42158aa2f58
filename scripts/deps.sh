#!/bin/sh
# scripts/deps.sh - make sure the Debian packages goro needs are installed.
#
#   scripts/deps.sh              build deps (what `make` and `make demo` need)
#   scripts/deps.sh --test       + what `make test` needs (optional: golang-go, panicparse)
#   scripts/deps.sh --aarch64    + the cross compiler and qemu-user (`make test-aarch64`)
#   scripts/deps.sh --bench      + golang-go and wrk (`make bench` compares with Go)
#   scripts/deps.sh --all        all of the above, every package required (CI)
#
# Silent when everything is present. When something is missing: as root it runs
# `apt-get update && apt-get install -y ...`; otherwise it prints the one
# `sudo apt-get install -y ...` line to run and exits 1. Optional packages that
# are missing never fail a non-root run; they only produce a note.
# On a system without dpkg it does nothing (install the equivalents yourself).
set -eu

test_mode=0 aarch64_mode=0 bench_mode=0 all_mode=0
for arg in "$@"; do
	case "$arg" in
	--test) test_mode=1 ;;
	--aarch64) aarch64_mode=1 ;;
	--bench) bench_mode=1 ;;
	--all) all_mode=1 test_mode=1 aarch64_mode=1 bench_mode=1 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "deps.sh: unknown argument: $arg" >&2; exit 2 ;;
	esac
done

command -v dpkg-query >/dev/null 2>&1 || exit 0

# Required: the library, its tests and the headers it uses (valgrind.h).
required="pkg-config libdw-dev zlib1g-dev valgrind libcriterion-dev"
optional=""
for tool in gcc:gcc make:make cmake:cmake; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || required="$required ${tool#*:}"
done
if [ "$test_mode" = 1 ]; then
	# Format tests compare with Go's own output (go, panicparse); skipped without them.
	if [ "$all_mode" = 1 ]; then required="$required golang-go panicparse"
	else optional="$optional golang-go panicparse"; fi
	# The gdb extension's tests (tests/test_gdb.c) run gdb; skipped without it.
	if [ "$all_mode" = 1 ]; then required="$required gdb"
	else optional="$optional gdb"; fi
fi
if [ "$aarch64_mode" = 1 ]; then
	case "$(uname -m)" in
	aarch64 | arm64) ;; # native: nothing to cross to
	*) required="$required gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
	esac
fi
if [ "$bench_mode" = 1 ]; then
	if [ "$all_mode" = 1 ]; then required="$required golang-go wrk"
	else optional="$optional golang-go wrk"; fi
fi

# Prints the packages of "$@" that are not installed (deduplicated).
missing_of() {
	seen=" " out=""
	for p in "$@"; do
		case "$seen" in *" $p "*) continue ;; esac
		seen="$seen$p "
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$status" in *" installed") ;; *) out="$out $p" ;; esac
	done
	echo "${out# }"
}

# shellcheck disable=SC2086
miss_req=$(missing_of $required)
# shellcheck disable=SC2086
miss_opt=$(missing_of $optional)
[ -z "$miss_req" ] && [ -z "$miss_opt" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	pkgs=$(echo "$miss_req $miss_opt" | sed 's/^ *//; s/ *$//')
	echo "deps.sh: installing missing Debian packages: $pkgs" >&2
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if apt-get update -q && apt-get install -y -q --no-install-recommends $pkgs; then
		exit 0
	fi
	if [ -n "$miss_opt" ] && [ -n "$miss_req" ]; then
		# Perhaps only an optional one is unavailable: retry with the required ones.
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $miss_req && exit 0
	elif [ -z "$miss_req" ]; then
		echo "deps.sh: optional packages could not be installed: $miss_opt (continuing)" >&2
		exit 0
	fi
	echo "deps.sh: apt-get install failed" >&2
	exit 1
fi

if [ -n "$miss_req" ]; then
	all=$(echo "$miss_req $miss_opt" | sed 's/^ *//; s/ *$//')
	echo "goro: missing Debian packages: $miss_req${miss_opt:+ (optional: $miss_opt)}" >&2
	echo "goro: install them with this command, then run make again:" >&2
	echo "sudo apt-get install -y $all"
	exit 1
fi
echo "goro: optional packages not installed (tests or benchmarks that need them are skipped): sudo apt-get install -y $miss_opt" >&2
exit 0
