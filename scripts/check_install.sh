#!/usr/bin/env bash
# scripts/check_install.sh - install goro the way a user does and build a
# program against the installed tree only (CI runs it: `make check-install`).
#
#  1. `make install PREFIX=<scratch>` (Release, its own build tree, no -Werror);
#  2. examples/find_package with CMake: find_package(goro) + goro::goro, once
#     against the shared library and once with GORO_STATIC=ON (libgoro.a);
#  3. examples/demo.c with pkg-config, shared;
# and runs each program, checking that the shared builds really use
# libgoro.so and the static one does not.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

say() { echo "check_install: $*"; }
fail() { echo "check_install: FAIL: $*" >&2; exit 1; }

make --no-print-directory install PREFIX="$prefix" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; fail "make install"; }
for f in include/goro.h lib/libgoro.a lib/libgoro.so lib/pkgconfig/goro.pc \
	lib/cmake/goro/goroConfig.cmake lib/cmake/goro/goroConfigVersion.cmake lib/cmake/goro/goroTargets.cmake; do
	[ -e "$prefix/$f" ] || fail "not installed: $f"
done
say "installed into a scratch prefix"

# $1 = name, $2 = GORO_STATIC
cmake_app() {
	local dir=$work/app-$1
	if ! { cmake -S examples/find_package -B "$dir" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_PREFIX_PATH="$prefix" -DGORO_STATIC="$2" && cmake --build "$dir"; } >"$work/$1.log" 2>&1; then
		cat "$work/$1.log" >&2
		fail "CMake build against the install ($1)"
	fi
	echo "$dir/demo"
}

# $1 = program, $2 = shared|static
run_app() {
	local uses=no
	readelf -d "$1" | grep -q 'NEEDED.*libgoro\.so' && uses=yes
	case "$2:$uses" in
	shared:no) fail "$1 does not link libgoro.so" ;;
	static:yes) fail "$1 links libgoro.so, not libgoro.a" ;;
	esac
	"$1" >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; fail "$1 exited with $?"; }
	grep -q 'goroutine' "$work/run.log" || { cat "$work/run.log" >&2; fail "$1 printed no goroutine"; }
}

# (assignments, so that set -e stops at a failed build)
app=$(cmake_app shared OFF)
run_app "$app" shared
say "find_package(goro) + goro::goro (shared): ok"
app=$(cmake_app static ON)
run_app "$app" static
say "find_package(goro) + goro::goro (GORO_STATIC=ON): ok"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046  # pkg-config prints several flags on purpose
cc -O2 -o "$work/demo-pc" "$root/examples/demo.c" $(pkg-config --cflags --libs goro) \
	-Wl,-rpath,"$prefix/lib" || fail "pkg-config build"
run_app "$work/demo-pc" shared
say "pkg-config goro (shared): ok"
