/* Helpers shared by the benchmarks (see benchutil.h). */
#include "benchutil.h"

#include "watermark/key_internal.h"

#include <time.h>

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double bench_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

uint64_t bench_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int bench_key(cm_key **out, unsigned n)
{
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    uint64_t s = 0xce1a4a2bbe7c4e11ULL + 0x1000193ULL * n;
    for (int i = 0; i < CM__KEY_SECRET_BYTES; i++)
        secret[i] = (uint8_t)bench_splitmix64(&s);
    for (int i = 0; i < CM__KEY_SEED_BYTES; i++)
        seed[i] = (uint8_t)bench_splitmix64(&s);
    return cm__key_from_bytes(out, secret, seed);
}

void bench_frame_params(cel_params *p, int index)
{
    cel_params_default(p);
    p->width = BENCH_FRAME_W;
    p->height = BENCH_FRAME_H;
    p->seed = (uint32_t)index;
    p->style = (cel_style)(CEL_FLAT + (index - 1) % (CEL_STYLE_COUNT - CEL_FLAT));
}
