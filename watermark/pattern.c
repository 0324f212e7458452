/*
 * Keyed tile layout and band-limited rendering (see pattern.h).
 *
 * Rendering is linear: tile = R(chips). R = IFFT_N( lowcut * zeropad( FFT_T(chips) ) ).
 * The detector demodulates with the exact adjoint R^T, which is the same
 * chain run backwards: FFT_N, keep the T x T block of low frequencies under
 * the same mask, IFFT_T. A cyclic shift of the tile is a phase ramp on the
 * N x N spectrum, so sub-pixel origins cost nothing extra.
 */
#include "pattern.h"

#include "fft.h"
#include "key_internal.h"
#include "prng.h"

#include <openssl/crypto.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cm__layout_new(const cm_key *key, int T, cm__layout **out)
{
    *out = NULL;
    if (T < 8 || T > 256)
        return CM_E_INVAL;
    int n = T * T;
    uint8_t sub[32];
    char label[64];
    cm__prng prng;
    memset(&prng, 0, sizeof(prng));
    uint32_t *perm = NULL;
    cm__layout *l = calloc(1, sizeof(*l));
    int ret = CM_E_NOMEM;
    if (!l)
        goto fail;
    l->T = T;
    l->nsync = n / 4;
    l->npay = n - l->nsync;
    perm = malloc(sizeof(*perm) * n);
    l->sync_idx = malloc(sizeof(*l->sync_idx) * l->nsync);
    l->sync_val = malloc((size_t)l->nsync);
    l->pay_idx = malloc(sizeof(*l->pay_idx) * l->npay);
    l->pay_bit = malloc(sizeof(*l->pay_bit) * l->npay);
    l->pay_sign = malloc((size_t)l->npay);
    if (!perm || !l->sync_idx || !l->sync_val || !l->pay_idx || !l->pay_bit || !l->pay_sign)
        goto fail;

    snprintf(label, sizeof(label), "celmark/layout/T%d", T);
    ret = cm__key_derive(key, label, sub, sizeof(sub));
    if (ret)
        goto fail;
    ret = cm__prng_init(&prng, sub, 0);
    if (ret)
        goto fail;
    cm__prng_permutation(&prng, perm, (uint32_t)n);
    for (int i = 0; i < l->nsync; i++) {
        l->sync_idx[i] = perm[i];
        l->sync_val[i] = (int8_t)cm__prng_sign(&prng);
    }
    int half = l->npay / 2;
    for (int k = 0; k < l->npay; k++) {
        int j = k < half ? k : k - half;
        l->pay_idx[k] = perm[l->nsync + k];
        l->pay_bit[k] = (uint16_t)(j % CM_PAYLOAD_CODED_BITS);
        l->pay_sign[k] = (int8_t)cm__prng_sign(&prng);
    }
    ret = prng.status;
    if (ret)
        goto fail;
    *out = l;
    l = NULL;
fail:
    cm__prng_free(&prng);
    OPENSSL_cleanse(sub, sizeof(sub));
    free(perm);
    cm__layout_free(&l);
    return ret;
}

void cm__layout_free(cm__layout **pl)
{
    if (!pl || !*pl)
        return;
    cm__layout *l = *pl;
    free(l->sync_idx);
    free(l->sync_val);
    free(l->pay_idx);
    free(l->pay_bit);
    free(l->pay_sign);
    free(l);
    *pl = NULL;
}

void cm__layout_chips(const cm__layout *l, const uint8_t *coded, float *chips)
{
    cm__layout_sync_chips(l, chips);
    for (int k = 0; k < l->npay; k++)
        chips[l->pay_idx[k]] = (float)(l->pay_sign[k] * (coded[l->pay_bit[k]] ? 1 : -1));
}

void cm__layout_sync_chips(const cm__layout *l, float *chips)
{
    memset(chips, 0, sizeof(float) * (size_t)l->T * l->T);
    for (int i = 0; i < l->nsync; i++)
        chips[l->sync_idx[i]] = (float)l->sync_val[i];
}

int cm__render_init(cm__render *r, int T, int s)
{
    memset(r, 0, sizeof(*r));
    r->T = T;
    r->s = s;
    r->N = T * s;
    r->small = calloc(1, sizeof(cm__fft2));
    r->big = calloc(1, sizeof(cm__fft2));
    r->buf_small = malloc(sizeof(AVComplexFloat) * (size_t)T * T);
    r->buf_big = malloc(sizeof(AVComplexFloat) * (size_t)r->N * r->N);
    if (!r->small || !r->big || !r->buf_small || !r->buf_big)
        goto fail;
    if (cm__fft2_init(r->small, T, T) || cm__fft2_init(r->big, r->N, r->N))
        goto fail;
    return CM_OK;
fail:
    cm__render_free(r);
    return CM_E_NOMEM;
}

void cm__render_free(cm__render *r)
{
    if (r->small)
        cm__fft2_free(r->small);
    if (r->big)
        cm__fft2_free(r->big);
    free(r->small);
    free(r->big);
    free(r->buf_small);
    free(r->buf_big);
    memset(r, 0, sizeof(*r));
}

int cm__fft_freq(int k, int n)
{
    return k < (n + 1) / 2 ? k : k - n;
}

int cm__fft_bin(int f, int m)
{
    return f >= 0 ? f : m + f;
}


/* Is the T x T spectrum bin (kx, ky) kept by the band mask? The Nyquist row
 * and column are dropped so the rendering stays real and its adjoint exact. */
int cm__render_kept(int kx, int ky, int T)
{
    int fx = cm__fft_freq(kx, T), fy = cm__fft_freq(ky, T);
    if (2 * abs(fx) == T || 2 * abs(fy) == T)
        return 0;
    double f = sqrt((double)fx * fx + (double)fy * fy) / T;
    return f >= CM__LOWCUT_CYCLES_PER_WAXEL;
}

/* Position of T-spectrum bin k inside the N-spectrum. */
static int big_bin(int k, int T, int N)
{
    return cm__fft_bin(cm__fft_freq(k, T), N);
}

void cm__render_tile(cm__render *r, const float *chips, float *tile)
{
    int T = r->T, N = r->N;
    for (int i = 0; i < T * T; i++) {
        r->buf_small[i].re = chips[i];
        r->buf_small[i].im = 0;
    }
    cm__fft2_run(r->small, r->buf_small, 0);
    memset(r->buf_big, 0, sizeof(AVComplexFloat) * (size_t)N * N);
    for (int ky = 0; ky < T; ky++)
        for (int kx = 0; kx < T; kx++)
            if (cm__render_kept(kx, ky, T))
                r->buf_big[(size_t)big_bin(ky, T, N) * N + big_bin(kx, T, N)] =
                    r->buf_small[ky * T + kx];
    cm__fft2_run(r->big, r->buf_big, 1);
    double ss = 0;
    for (size_t i = 0; i < (size_t)N * N; i++)
        ss += (double)r->buf_big[i].re * r->buf_big[i].re;
    double g = ss > 0 ? 1.0 / sqrt(ss / ((double)N * N)) : 0;
    for (size_t i = 0; i < (size_t)N * N; i++)
        tile[i] = (float)(r->buf_big[i].re * g);
}

void cm__render_spectrum(cm__render *r, const float *tile, AVComplexFloat *out)
{
    size_t n = (size_t)r->N * r->N;
    for (size_t i = 0; i < n; i++) {
        out[i].re = tile[i];
        out[i].im = 0;
    }
    cm__fft2_run(r->big, out, 0);
}

void cm__render_adjoint(cm__render *r, const AVComplexFloat *spectrum, int flip, double dx,
                        double dy, float *soft)
{
    int T = r->T, N = r->N;
    /* tile(p + d) has spectrum X(k) * exp(+2 pi i k.d / N). */
    for (int ky = 0; ky < T; ky++) {
        for (int kx = 0; kx < T; kx++) {
            AVComplexFloat v = {0, 0};
            if (cm__render_kept(kx, ky, T)) {
                /* a left-right mirror reads bin -kx */
                int bx = flip ? cm__fft_bin(-cm__fft_freq(kx, T), N) : big_bin(kx, T, N);
                AVComplexFloat x = spectrum[(size_t)big_bin(ky, T, N) * N + bx];
                double ph = 2 * M_PI * (cm__fft_freq(kx, T) * dx + cm__fft_freq(ky, T) * dy) / N;
                double c = cos(ph), s = sin(ph);
                v.re = (float)(x.re * c - x.im * s);
                v.im = (float)(x.re * s + x.im * c);
            }
            r->buf_small[ky * T + kx] = v;
        }
    }
    cm__fft2_run(r->small, r->buf_small, 1);
    for (int i = 0; i < T * T; i++)
        soft[i] = r->buf_small[i].re;
}
