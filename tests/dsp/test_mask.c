/* DSP: the flat-fill map and the box filter against brute-force definitions,
 * the optimised kernels against the reference ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "watermark/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Pixel (x, y) is flat iff some 8x8 window containing it holds one value. */
static int flat_brute(const cm_plane *p, int x, int y)
{
    for (int y0 = y - 7; y0 <= y; y0++)
        for (int x0 = x - 7; x0 <= x; x0++) {
            if (x0 < 0 || y0 < 0 || x0 + 8 > p->width || y0 + 8 > p->height)
                continue;
            float v = p->data[y0 * p->stride + x0];
            int same = 1;
            for (int j = 0; j < 8 && same; j++)
                for (int i = 0; i < 8; i++)
                    if (p->data[(y0 + j) * p->stride + x0 + i] != v) {
                        same = 0;
                        break;
                    }
            if (same)
                return 1;
        }
    return 0;
}

static void test_flat_map_matches_definition(void **state)
{
    (void)state;
    static const int sizes[][2] = {{8, 8}, {7, 30}, {37, 23}, {64, 48}, {101, 67}};
    uint32_t seed = 99;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s][0], h = sizes[s][1];
        cm_plane p = {0};
        assert_int_equal(cm_plane_alloc(&p, w + 5, h), 0); /* padded stride */
        p.width = w;
        for (int trial = 0; trial < 4; trial++) {
            /* random rectangles of a few colours over noise: fills, edges, gaps */
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    p.data[y * p.stride + x] = (float)(lcg(&seed) % (trial + 2));
            for (int r = 0; r < 6; r++) {
                int x0 = (int)(lcg(&seed) % (unsigned)w), y0 = (int)(lcg(&seed) % (unsigned)h);
                int rw = 1 + (int)(lcg(&seed) % 20), rh = 1 + (int)(lcg(&seed) % 20);
                float v = (float)(lcg(&seed) % 3);
                for (int y = y0; y < y0 + rh && y < h; y++)
                    for (int x = x0; x < x0 + rw && x < w; x++)
                        p.data[y * p.stride + x] = v;
            }
            uint8_t *flat = malloc((size_t)w * h);
            assert_int_equal(cm__flat_fill_map(&p, flat), 0);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    assert_int_equal(flat[(size_t)y * w + x], flat_brute(&p, x, y));
            free(flat);
        }
        p.width = w + 5;
        cm_plane_free(&p);
    }
}

static void test_box_filter_matches_definition(void **state)
{
    (void)state;
    uint32_t seed = 5;
    int w = 53, h = 31;
    float *src = malloc(sizeof(float) * w * h), *dst = malloc(sizeof(float) * w * h);
    float *tmp = malloc(sizeof(float) * w * h);
    for (int i = 0; i < w * h; i++)
        src[i] = (float)(lcg(&seed) % 256);
    for (int r = 0; r <= 7; r += 3) {
        cm__box_filter_c(src, w, dst, w, w, h, r, tmp);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = 0;
                for (int j = -r; j <= r; j++)
                    for (int i = -r; i <= r; i++) {
                        int xx = x + i < 0 ? 0 : (x + i >= w ? w - 1 : x + i);
                        int yy = y + j < 0 ? 0 : (y + j >= h ? h - 1 : y + j);
                        s += src[yy * w + xx];
                    }
                s /= (2 * r + 1) * (2 * r + 1);
                assert_true(fabs(dst[y * w + x] - s) < 1e-3);
            }
    }
    free(src);
    free(dst);
    free(tmp);
}

/* The optimised box filter against the reference: sizes around 2r + 1,
 * every radius the kernels use and past the direct-sum limit, a padded
 * source stride, and in place (the mask filters its activity in place). */
static void test_box_filter_matches_reference(void **state)
{
    (void)state;
    static const int sizes[][2] = {{1, 1}, {3, 2}, {5, 5}, {13, 7}, {16, 40}, {97, 61}};
    uint32_t seed = 17;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int w = sizes[k][0], h = sizes[k][1], sw = w + 3;
        size_t n = (size_t)sw * h;
        float *src = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
        float *fast = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++)
            src[i] = (float)(lcg(&seed) % 65536) / 256.0f;
        for (int r = 0; r <= 9; r++) {
            cm__box_filter_c(src, sw, ref, w, w, h, r, tmp);
            cm__box_filter(src, sw, fast, w, w, h, r, tmp);
            for (int i = 0; i < w * h; i++)
                assert_true(fabsf(ref[i] - fast[i]) <= 1e-4f * (1.0f + fabsf(ref[i])));
            /* in place, unpadded */
            for (int y = 0; y < h; y++)
                memcpy(fast + (size_t)y * w, src + (size_t)y * sw, sizeof(float) * w);
            cm__box_filter(fast, w, fast, w, w, h, r, tmp);
            for (int i = 0; i < w * h; i++)
                assert_true(fabsf(ref[i] - fast[i]) <= 1e-4f * (1.0f + fabsf(ref[i])));
        }
        free(src);
        free(ref);
        free(fast);
        free(tmp);
    }
}

static void test_hp_energy_matches_reference(void **state)
{
    (void)state;
    static const int sizes[][2] = {{1, 1}, {2, 3}, {17, 9}, {64, 33}, {301, 203}};
    uint32_t seed = 11;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int w = sizes[k][0], h = sizes[k][1], wd = (w + 1) / 2, hd = (h + 1) / 2;
        cm_plane p = {0};
        assert_int_equal(cm_plane_alloc(&p, w + 3, h), 0); /* padded stride */
        p.width = w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w + 3; x++) /* sentinels in the padding */
                p.data[y * p.stride + x] = x < w ? (float)(lcg(&seed) % 256) : 1e30f;
        float *ref = malloc(sizeof(float) * (size_t)(wd * hd + 1));
        float *fast = malloc(sizeof(float) * (size_t)(wd * hd + 1));
        float *tmp = malloc(sizeof(float) * 2 * (size_t)w * h + 16);
        ref[wd * hd] = fast[wd * hd] = 12345.0f; /* guard past the end */
        cm__hp_energy_c(&p, ref, tmp);
        cm__hp_energy(&p, fast, tmp);
        for (int i = 0; i < wd * hd; i++)
            assert_true(fabsf(ref[i] - fast[i]) <= 1e-3f * (1.0f + fabsf(ref[i])));
        assert_true(ref[wd * hd] == 12345.0f && fast[wd * hd] == 12345.0f);
        free(ref);
        free(fast);
        free(tmp);
        p.width = w + 3;
        cm_plane_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_map_matches_definition),
        cmocka_unit_test(test_box_filter_matches_definition),
        cmocka_unit_test(test_box_filter_matches_reference),
        cmocka_unit_test(test_hp_energy_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
