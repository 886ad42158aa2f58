# Thin front for the CMake build (see README.md and CMakeLists.txt).
#
#   make                 configure and build build/ (library, tests, examples)
#   make demo            ... and run ./build/demo
#   make test            ... and run the whole Criterion suite (TEST_ARGS='--filter chan/*')
#   make test-asan       the suite built with ASan+UBSan in build-asan/
#   make test-tsan       the suite built with TSan in build-tsan/
#   make test-aarch64    cross build in build-aarch64/, core self test under qemu-aarch64
#   make stress          build and run tests/stress (goro_stress) for STRESS_SECONDS (150)
#   make bench           build bench/*.c and run scripts/bench.sh (or every bench_* binary)
#   make install PREFIX=/usr/local   only the libraries, in build-install/ (Release, no -Werror)
#   make check-install  install into a scratch prefix, build an example against it with
#                       CMake (find_package) and pkg-config, shared and static, and run it
#   make clean
#
# The developer targets build with -Werror (WERROR=ON; `make WERROR=OFF` to relax);
# `make install` does not: a newer compiler's new warning must not stop a user.
#
# Every target first runs scripts/deps.sh, which installs missing Debian
# packages when run as root and otherwise prints the apt-get line to run.

JOBS       ?= 2
TEST_JOBS  ?= 2
TEST_ARGS  ?=
PREFIX     ?= /usr/local
BUILD_TYPE ?= RelWithDebInfo
CMAKE      ?= cmake
CMAKE_ARGS ?=
WERROR     ?= ON
# A command the suites run under, e.g. TEST_WRAP=scripts/just_booted.sh (CI).
TEST_WRAP  ?=

# Sanitizer runtime options (override from the environment or the command line).
# handle_segv=0: goro's own fault handler names the goroutine that overflowed
# its stack (the tests check it), as in a production build.
ASAN_OPTIONS  ?= abort_on_error=1:detect_leaks=1:allow_user_segv_handler=1:handle_segv=0
LSAN_OPTIONS  ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
TSAN_OPTIONS  ?= halt_on_error=1:second_deadlock_stack=1

HOST_ARCH := $(shell uname -m)
# TSan of gcc 12 cannot cope with high mmap entropy (vm.mmap_rnd_bits > 28 on some
# kernels): run it without ASLR when the kernel lets us (containers may not).
NO_ASLR = $(shell setarch $(HOST_ARCH) -R true >/dev/null 2>&1 && echo setarch $(HOST_ARCH) -R)

ifeq ($(filter $(HOST_ARCH),aarch64 arm64),)
AARCH64_CMAKE = -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake
AARCH64_RUN   = qemu-aarch64 -L /usr/aarch64-linux-gnu
else
AARCH64_CMAKE =
AARCH64_RUN   =
endif

# $(call configure,DIR,EXTRA-CMAKE-ARGS): configure DIR once (again when its GORO_WERROR
# differs from $(WERROR)); later builds re-glob by themselves.
configure = @{ test -f $(1)/CMakeCache.txt && grep -q '^GORO_WERROR:BOOL=$(WERROR)$$' $(1)/CMakeCache.txt; } || \
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGORO_WERROR=$(WERROR) $(CMAKE_ARGS) $(2)
# $(call build,DIR[,TARGET])
build = MAKEFLAGS= $(CMAKE) --build $(1) -j$(JOBS) $(if $(2),--target $(2))

.PHONY: all build deps deps-test demo stress test test-asan test-tsan test-aarch64 bench install check-install clean

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

build: deps
	$(call configure,build,)
	$(call build,build)

demo: build
	./build/demo

# Builds everything (examples must keep compiling), then runs the suite.
test: deps-test
	$(call configure,build,)
	$(call build,build)
	@test -x build/goro_tests || { echo "make test: build/goro_tests was not built (no tests/*.c, or criterion missing)" >&2; exit 1; }
	$(TEST_WRAP) ./build/goro_tests --jobs $(TEST_JOBS) $(TEST_ARGS)

test-asan: deps-test
	$(call configure,build-asan,-DGORO_SANITIZE=address -DGORO_BUILD_EXAMPLES=OFF)
	$(call build,build-asan,goro_tests)
	ASAN_OPTIONS=$(ASAN_OPTIONS) LSAN_OPTIONS=$(LSAN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_OPTIONS) \
		./build-asan/goro_tests --jobs $(TEST_JOBS) $(TEST_ARGS)

test-tsan: deps-test
	$(call configure,build-tsan,-DGORO_SANITIZE=thread -DGORO_BUILD_EXAMPLES=OFF)
	$(call build,build-tsan,goro_tests)
	TSAN_OPTIONS=$(TSAN_OPTIONS) $(NO_ASLR) \
		./build-tsan/goro_tests --jobs $(TEST_JOBS) $(TEST_ARGS)

test-aarch64:
	@scripts/deps.sh --aarch64
	$(call configure,build-aarch64,$(AARCH64_CMAKE) -DGORO_WITH_LIBDW=OFF -DGORO_WITH_ZLIB=OFF -DGORO_BUILD_TESTS=OFF -DGORO_BUILD_EXAMPLES=OFF)
	$(call build,build-aarch64,core_selftest)
	$(AARCH64_RUN) ./build-aarch64/core_selftest

# Bounded: the scenarios run two at a time until STRESS_SECONDS is spent.
STRESS_SECONDS ?= 150
stress: deps-test
	$(call configure,build,)
	$(call build,build,goro_stress)
	./build/goro_stress --seconds $(STRESS_SECONDS) $(STRESS_ARGS)

bench: build
	@scripts/deps.sh --bench
	$(call build,build,benches)
	@if [ -x scripts/bench.sh ]; then \
		echo "scripts/bench.sh"; scripts/bench.sh; \
	else \
		for b in build/bench_*; do [ -x "$$b" ] || continue; echo "$$b"; "$$b" || exit 1; done; \
	fi

# Its own tree, so that it neither builds the tests and examples nor inherits
# the developer build's -Werror.
install: deps
	@test -f build-install/CMakeCache.txt || $(CMAKE) -S . -B build-install -DCMAKE_BUILD_TYPE=Release \
		-DGORO_WERROR=OFF -DGORO_BUILD_TESTS=OFF -DGORO_BUILD_EXAMPLES=OFF $(CMAKE_ARGS)
	$(call build,build-install,goro_static goro_shared)
	$(CMAKE) --install build-install --prefix $(PREFIX)

check-install: deps
	scripts/check_install.sh

clean:
	rm -rf build build-asan build-tsan build-aarch64 build-install
