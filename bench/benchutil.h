/* Helpers shared by the benchmarks: clocks, a reproducible generator and the
 * fixed bench keys (so every run stamps the same marks). */
#ifndef CELMARK_BENCHUTIL_H
#define CELMARK_BENCHUTIL_H

#include "celmark/key.h"

#include <stdint.h>

/* Monotonic wall clock and this thread's CPU time, milliseconds. */
double bench_now_ms(void);
double bench_cpu_ms(void);

/* SplitMix64: reproducible ids and positions (bench data, not key material). */
uint64_t bench_splitmix64(uint64_t *s);

/* A fixed key; n = 0 is the bench key, other n give other keys. */
int bench_key(cm_key **out, unsigned n);

#endif
