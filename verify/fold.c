/*
 * Fold: sum the whole frame into one tile. Each residual pixel p maps to tile
 * coordinates (u, v) = g(p) (mod N) (detect.h: a similarity, an affine map or
 * a homography); its residual is added to the nearest tile pixel and
 * counted. Cropping costs nothing but SNR: every tile repeat that is present
 * adds to the same sum.
 */
#include "detect.h"

#include <math.h>
#include <string.h>

cm__geom cm__geom_similar(double N, double period, double theta)
{
    double k = N / period, c = cos(theta) * k, s = sin(theta) * k;
    cm__geom g = {{c, s, 0, -s, c, 0, 0, 0}, 0};
    return g;
}

cm__geom cm__geom_affine(double N, const double b1[2], const double b2[2])
{
    double det = b1[0] * b2[1] - b2[0] * b1[1];
    cm__geom g = {{N * b2[1] / det, -N * b2[0] / det, 0, -N * b1[1] / det, N * b1[0] / det, 0,
                   0, 0},
                  0};
    return g;
}

void cm__geom_basis(const cm__geom *g, double N, double x, double y, double b1[2], double b2[2])
{
    const double *h = g->h;
    double w = h[6] * x + h[7] * y + 1;
    double u = (h[0] * x + h[1] * y + h[2]) / w, v = (h[3] * x + h[4] * y + h[5]) / w;
    double j00 = (h[0] - u * h[6]) / w, j01 = (h[1] - u * h[7]) / w;
    double j10 = (h[3] - v * h[6]) / w, j11 = (h[4] - v * h[7]) / w;
    double det = j00 * j11 - j01 * j10;
    /* B = N J^-1: its columns are the frame steps of one tile along u, v */
    b1[0] = N * j11 / det;
    b1[1] = -N * j10 / det;
    b2[0] = -N * j01 / det;
    b2[1] = N * j00 / det;
}

double cm__geom_period(const cm__geom *g, double N, double x, double y)
{
    double b1[2], b2[2];
    cm__geom_basis(g, N, x, y, b1, b2);
    return sqrt(fabs(b1[0] * b2[1] - b2[0] * b1[1]));
}

int cm__geom_projective(const cm__geom *g)
{
    return g->h[6] != 0 || g->h[7] != 0;
}

void cm__fold_c(const float *r, int w, int h, const cm__geom *g, int N, float *sum,
                float *count)
{
    memset(sum, 0, sizeof(float) * (size_t)N * N);
    memset(count, 0, sizeof(float) * (size_t)N * N);
    cm__fold_rect(r, w, 0, 0, w, h, g, N, sum, count);
}

/* A homography: one division per pixel, in double (a 2k frame's tile
 * coordinates need far more than float's 24 bits of their fraction). */
static void fold_projective(const float *r, int stride, int x0, int y0, int w, int h,
                            const cm__geom *g, int N, float *sum, float *count)
{
    const double *m = g->h;
    for (int y = y0; y < y0 + h; y++) {
        const float *row = r + (size_t)y * stride;
        for (int x = x0; x < x0 + w; x++) {
            double q = m[6] * x + m[7] * y + 1;
            double u = (m[0] * x + m[1] * y + m[2]) / q, v = (m[3] * x + m[4] * y + m[5]) / q;
            u -= N * floor(u / N);
            v -= N * floor(v / N);
            int iu = (int)(u + 0.5), iv = (int)(v + 0.5);
            if (iu >= N)
                iu -= N;
            if (iv >= N)
                iv -= N;
            size_t idx = (size_t)iv * N + iu;
            sum[idx] += row[x];
            count[idx] += 1;
        }
    }
}

void cm__fold_rect(const float *r, int stride, int x0, int y0, int w, int h,
                   const cm__geom *g, int N, float *sum, float *count)
{
    if (cm__geom_projective(g)) {
        fold_projective(r, stride, x0, y0, w, h, g, N, sum, count);
        return;
    }
    const double *m = g->h;
    /* fixed point: 16 fractional bits keep rounding error far below a pixel */
    const double FP = 65536.0;
    int64_t modn = (int64_t)N << 16;
    int64_t du = (int64_t)llround(m[0] * FP), dv = (int64_t)llround(m[3] * FP);
    for (int y = y0; y < y0 + h; y++) {
        double u0 = y * m[1] + x0 * m[0] + m[2], v0 = y * m[4] + x0 * m[3] + m[5];
        int64_t u = (int64_t)llround(u0 * FP), v = (int64_t)llround(v0 * FP);
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
