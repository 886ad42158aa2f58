# Cross toolchain for aarch64 Linux with Debian's gcc-aarch64-linux-gnu.
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# Binaries run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), so ctest and
# `make test-aarch64` work on an x86_64 host. libdw and zlib for arm64 are not
# installed by the cross packages, so the aarch64 build turns them off.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GORO_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER   ${GORO_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${GORO_CROSS_TRIPLE}-gcc)
set(CMAKE_AR           ${GORO_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB       ${GORO_CROSS_TRIPLE}-ranlib CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${GORO_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Never let pkg-config hand host (x86_64) libraries to the cross build.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${GORO_CROSS_TRIPLE}/pkgconfig:/usr/${GORO_CROSS_TRIPLE}/lib/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/${GORO_CROSS_TRIPLE})

set(GORO_WITH_LIBDW OFF CACHE BOOL "libdw is not available for the cross build")
set(GORO_WITH_ZLIB  OFF CACHE BOOL "zlib is not available for the cross build")
