/* DSP: the real 2-D transform against the complex one, and the band-limited
 * complex ones against the full, on random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "watermark/fft.h"

#include <libavutil/mem.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void check_size(int w, int h)
{
    uint32_t seed = (uint32_t)(w * 7919 + h);
    size_t n = (size_t)w * h;
    int hw = w / 2 + 1;
    float *real = av_malloc(sizeof(float) * n), *back = av_malloc(sizeof(float) * n);
    AVComplexFloat *full = av_malloc(sizeof(AVComplexFloat) * n);
    AVComplexFloat *half = av_malloc(sizeof(AVComplexFloat) * (size_t)hw * h);
    assert_non_null(real);
    assert_non_null(back);
    assert_non_null(full);
    assert_non_null(half);
    for (size_t i = 0; i < n; i++) {
        real[i] = (float)(lcg(&seed) % 2000) / 1000.0f - 1.0f;
        full[i].re = real[i];
        full[i].im = 0;
    }
    cm__fft2 c;
    cm__rfft2 r;
    assert_int_equal(cm__fft2_init(&c, w, h), 0);
    assert_int_equal(cm__rfft2_init(&r, w, h), 0);
    cm__fft2_run(&c, full, 0);
    cm__rfft2_forward(&r, real, half);
    /* float rounding grows with the largest coefficient: compare relative
     * to it (FFmpeg's float_near_abs_eps style, eps = 1e-5) */
    double maxerr = 0, scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, hypot(full[i].re, full[i].im));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < hw; x++) {
            AVComplexFloat a = full[(size_t)y * w + x], b = half[(size_t)y * hw + x];
            double e = fmax(fabs(a.re - b.re), fabs(a.im - b.im)) / scale;
            if (e > maxerr)
                maxerr = e;
        }
    assert_true(maxerr < 1e-5);
    /* inverse: real(IFFT) / n must give the input back */
    cm__rfft2_inverse(&r, half, back);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(back[i] / (double)n - real[i]) < 1e-4);
    cm__fft2_free(&c);
    cm__rfft2_free(&r);
    av_free(real);
    av_free(back);
    av_free(full);
    av_free(half);
}

static void test_rfft_matches_complex(void **state)
{
    (void)state;
    check_size(16, 8);
    check_size(96, 60);
    check_size(384, 384);
    check_size(1280, 960);
    check_size(1024, 768);
    check_size(960, 640);
    check_size(768, 480);
}

/* The pruned transforms against the full ones, bit for bit: real's rows
 * from `rows` on are zero, and only rows < top or >= h - bottom are kept. */
static void check_rows(int w, int h, int rows, int top, int bottom)
{
    uint32_t seed = (uint32_t)(w * 31 + h * 7 + rows);
    size_t n = (size_t)w * h, ns = (size_t)(w / 2 + 1) * h;
    float *real = av_calloc(n, sizeof(float));
    float *a = av_malloc(sizeof(float) * n), *b = av_malloc(sizeof(float) * n);
    AVComplexFloat *sa = av_malloc(sizeof(AVComplexFloat) * ns);
    AVComplexFloat *sb = av_malloc(sizeof(AVComplexFloat) * ns);
    assert_non_null(real);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(sa);
    assert_non_null(sb);
    for (size_t i = 0; i < (size_t)w * rows; i++)
        real[i] = (float)(lcg(&seed) % 2000) / 1000.0f - 1.0f;
    memset(sb, 0x5a, sizeof(AVComplexFloat) * ns); /* every value must be written */
    cm__rfft2 r;
    assert_int_equal(cm__rfft2_init(&r, w, h), 0);
    cm__rfft2_forward(&r, real, sa);
    cm__rfft2_forward_rows(&r, real, rows, sb);
    assert_memory_equal(sa, sb, sizeof(AVComplexFloat) * ns);
    cm__rfft2_inverse(&r, sa, a);
    cm__rfft2_inverse_rows(&r, sb, b, top, bottom);
    for (int y = 0; y < h; y++)
        if (y < top || y >= h - bottom)
            assert_memory_equal(a + (size_t)y * w, b + (size_t)y * w, sizeof(float) * w);
    cm__rfft2_free(&r);
    av_free(real);
    av_free(a);
    av_free(b);
    av_free(sa);
    av_free(sb);
}

static void test_rfft_rows_match_full(void **state)
{
    (void)state;
    check_rows(16, 8, 8, 8, 0);   /* nothing pruned */
    check_rows(96, 60, 37, 21, 5); /* odd counts: a pair half wanted */
    check_rows(96, 61, 40, 30, 12);
    check_rows(1280, 768, 540, 238, 12); /* the whole 1080p frame's lag map */
    check_rows(960, 640, 405, 226, 12);
}

/* cm__fft2_forward_band's columns |kx| <= band and cm__fft2_inverse_band
 * (on data zero outside |ky| <= band) against cm__fft2_run, bit for bit. */
static void check_band(int w, int h, int band)
{
    uint32_t seed = (uint32_t)(w * 31 + h * 7 + band);
    size_t n = (size_t)w * h;
    AVComplexFloat *a = av_malloc(sizeof(AVComplexFloat) * n);
    AVComplexFloat *b = av_malloc(sizeof(AVComplexFloat) * n);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        a[i].re = (float)(lcg(&seed) % 2000) / 1000.0f - 1.0f;
        a[i].im = 0;
    }
    memcpy(b, a, sizeof(AVComplexFloat) * n);
    cm__fft2 c;
    assert_int_equal(cm__fft2_init(&c, w, h), 0);
    cm__fft2_run(&c, a, 0);
    cm__fft2_forward_band(&c, b, band);
    int checked = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x <= band || x >= w - band) {
                assert_memory_equal(&a[(size_t)y * w + x], &b[(size_t)y * w + x],
                                    sizeof(AVComplexFloat));
                checked++;
            }
    assert_int_equal(checked, (2 * band + 1 < w ? 2 * band + 1 : w) * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            AVComplexFloat *p = &a[(size_t)y * w + x];
            if (y > band && y < h - band)
                p->re = p->im = 0;
        }
    memcpy(b, a, sizeof(AVComplexFloat) * n);
    cm__fft2_run(&c, a, 1);
    cm__fft2_inverse_band(&c, b, band);
    assert_memory_equal(a, b, sizeof(AVComplexFloat) * n);
    cm__fft2_free(&c);
    av_free(a);
    av_free(b);
}

static void test_band_matches_full(void **state)
{
    (void)state;
    check_band(384, 384, 16); /* the fold's tile and its band */
    check_band(192, 192, 16); /* the correlation surface */
    check_band(48, 48, 16);
    check_band(40, 24, 30); /* a band wider than the array: all of it */
}

static void test_good_size(void **state)
{
    (void)state;
    assert_int_equal(cm__fft_good_size(1), 1);
    assert_int_equal(cm__fft_good_size(270), 320);
    assert_int_equal(cm__fft_good_size(1080), 1280);
    assert_int_equal(cm__fft_good_size(1366), 1536);
    assert_int_equal(cm__fft_good_size(960), 960);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfft_matches_complex),
        cmocka_unit_test(test_rfft_rows_match_full),
        cmocka_unit_test(test_band_matches_full),
        cmocka_unit_test(test_good_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
