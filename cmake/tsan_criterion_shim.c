/*
 * tsan_criterion_shim.c - linked into goro_tests only in the TSan build
 * (GORO_SANITIZE=thread); not part of the library.
 *
 * Criterion (through BoxFort, linked into libcriterion.so) maps its
 * inheritable arena with MAP_FIXED at 0x200000000000 + (rand_r() & 0x3fffff)
 * * 16 MiB, after checking with mincore() that the pages are free, and gives
 * up after 10 tries: "criterion: Could not initialize inheritable arena:
 * Resource temporarily unavailable" (Criterion issue #274). Under
 * ThreadSanitizer nearly all of that range is TSan shadow or a protected gap;
 * the only application range inside it is 0x550000000000-0x568000000000
 * (where PIE executables go).
 *
 * The executable's rand_r takes precedence over libc's for calls from
 * libcriterion.so, so this one steers those calls to bases in
 * [0x560000000000, 0x568000000000); BoxFort still checks that each candidate is
 * free. Every other caller gets the real rand_r, unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

int rand_r(unsigned int *seed);

int rand_r(unsigned int *seed) {
    static int (*real)(unsigned int *);
    if (real == NULL)
        real = (int (*)(unsigned int *))dlsym(RTLD_NEXT, "rand_r");
    int r = real(seed);
    Dl_info info;
    if (dladdr(__builtin_return_address(0), &info) && info.dli_fname != NULL &&
        strstr(info.dli_fname, "libcriterion") != NULL)
        return 0x360000 | (r & 0x7fff); /* 0x200000000000 + that * 16 MiB */
    return r;
}
