/*
 * Fold: sum the whole frame into one tile. Each frame pixel p maps to tile
 * coordinates (u, v) = N/P * R(-t) p  (mod N); its residual is added to the
 * nearest tile pixel and counted. Cropping costs nothing but SNR: every tile
 * repeat that is present adds to the same sum.
 */
#include "detect.h"

#include <math.h>
#include <string.h>

void cm__fold_c(const float *r, int w, int h, const cm__geom *g, int N, float *sum,
                float *count)
{
    memset(sum, 0, sizeof(float) * (size_t)N * N);
    memset(count, 0, sizeof(float) * (size_t)N * N);
    cm__fold_rect(r, w, 0, 0, w, h, g, N, sum, count);
}

void cm__fold_rect(const float *r, int stride, int x0, int y0, int w, int h,
                   const cm__geom *g, int N, float *sum, float *count)
{
    double k = N / g->period;
    double c = cos(g->theta) * k, s = sin(g->theta) * k;
    /* fixed point: 16 fractional bits keep rounding error far below a pixel */
    const double FP = 65536.0;
    int64_t modn = (int64_t)N << 16;
    for (int y = y0; y < y0 + h; y++) {
        double u0 = y * s + x0 * c, v0 = y * c - x0 * s;
        int64_t u = (int64_t)llround(u0 * FP), v = (int64_t)llround(v0 * FP);
        int64_t du = (int64_t)llround(c * FP), dv = (int64_t)llround(-s * FP);
        const float *row = r + (size_t)y * stride + x0;
        u %= modn;
        if (u < 0)
            u += modn;
        v %= modn;
        if (v < 0)
            v += modn;
        for (int x = 0; x < w; x++) {
            int iu = (int)((u + 32768) >> 16), iv = (int)((v + 32768) >> 16);
            if (iu >= N)
                iu -= N;
            if (iv >= N)
                iv -= N;
            size_t idx = (size_t)iv * N + iu;
            sum[idx] += row[x];
            count[idx] += 1;
            u += du;
            if (u >= modn)
                u -= modn;
            else if (u < 0)
                u += modn;
            v += dv;
            if (v >= modn)
                v -= modn;
            else if (v < 0)
                v += modn;
        }
    }
}
