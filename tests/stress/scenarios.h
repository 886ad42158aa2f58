/*
 * scenarios.h - the stress program's scenarios (scenarios.c) and what the
 * driver (driver.c) needs to run one in a child process.
 *
 * A scenario runs in a fresh process with `procs` processors and a seed that
 * picks its sizes, buffer capacities and where it yields, sleeps or brackets
 * a syscall. It returns 0 when every item it sent arrived exactly once (or
 * every count adds up), else a short reason in *why. A false deadlock report
 * kills the child with "fatal error: all goroutines are asleep - deadlock!"
 * and exit status 2, which the driver reports as such.
 */
#ifndef GORO_STRESS_SCENARIOS_H
#define GORO_STRESS_SCENARIOS_H

#include <stdint.h>

typedef struct stress_scenario {
    const char *name;
    int (*run)(uint64_t seed, const char **why);
} stress_scenario;

extern const stress_scenario stress_scenarios[];
extern const int stress_nscenarios;

/* Seeds the per-thread generators that pick sizes and jitter (child only). */
void stress_seed(uint64_t seed);

#endif
