/* Helpers shared by the benchmarks: clocks, a reproducible generator and the
 * fixed bench keys (so every run stamps the same marks). */
#ifndef CELMARK_BENCHUTIL_H
#define CELMARK_BENCHUTIL_H

#include "celmark/key.h"
#include "cel.h"

#include <stdint.h>

/* Monotonic wall clock and this thread's CPU time, milliseconds. */
double bench_now_ms(void);
double bench_cpu_ms(void);

/* SplitMix64: reproducible ids and positions (bench data, not key material). */
uint64_t bench_splitmix64(uint64_t *s);

/* A fixed key; n = 0 is the bench key, other n give other keys. */
int bench_key(cm_key **out, unsigned n);

/* The bench corpus: frame `index` (1..N) is BENCH_FRAME_W x BENCH_FRAME_H
 * RGB, seed index, the styles of tests/gen in turn (flat .. film). */
#define BENCH_FRAME_W 1920
#define BENCH_FRAME_H 1080
void bench_frame_params(cel_params *p, int index);

#endif
