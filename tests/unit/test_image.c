/*
 * Images in memory, the luma plane, and atomic output (pixels/image.c,
 * pixels/planes.c, formats/image.c, core/fileio.c).
 *
 * Covers argument checks, luma weights, the exact no-op of an unmodified
 * plane for every layout, how a luma change lands on the colour channels
 * (scaled by 257 at 16 bit, alpha and transparent pixels untouched, rounding
 * and clamping), headroom, and the temp-file-then-link/rename protocol.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "celmark/common.h"
#include "celmark/image.h"
#include "testutil.h"
#include "internal.h"

static path_buf tmp_path(const char *name)
{
    return test_tmp_path("img_", name);
}

static uint32_t rng_state = 99;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static unsigned get(const cm_image *img, int x, int y, int c)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    if (img->bit_depth == 16)
        return ((const uint16_t *)(const void *)row)[x * img->channels + c];
    return row[x * img->channels + c];
}

static void set(cm_image *img, int x, int y, int c, unsigned v)
{
    uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    if (img->bit_depth == 16)
        ((uint16_t *)(void *)row)[x * img->channels + c] = (uint16_t)v;
    else
        row[x * img->channels + c] = (uint8_t)v;
}

static cm_image *make(int w, int h, int channels, int depth)
{
    cm_image *img = NULL;
    assert_int_equal(cm_image_new(&img, w, h, channels,
                                  channels == 2 || channels == 4, depth),
                     CM_OK);
    return img;
}

static cm_image *random_image(int w, int h, int channels, int depth)
{
    cm_image *img = make(w, h, channels, depth);
    unsigned maxv = depth == 16 ? 65535u : 255u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++) {
                unsigned v = rnd() & maxv;
                if ((x + c) % 5 == 0)
                    v = (x & 1) ? maxv : 0; /* extremes, incl. alpha 0 */
                set(img, x, y, c, v);
            }
    return img;
}

static cm_image *copy_image(const cm_image *a)
{
    cm_image *b = make(a->width, a->height, a->channels, a->bit_depth);
    memcpy(b->data, a->data, (size_t)a->stride * (size_t)a->height);
    return b;
}

static const int layouts[8][2] = {{1, 8}, {2, 8}, {3, 8}, {4, 8},
                                  {1, 16}, {2, 16}, {3, 16}, {4, 16}};

/* ---- construction ----------------------------------------------------- */

static void test_limits_default(void **s)
{
    (void)s;
    cm_limits l;
    cm_limits_default(&l);
    assert_true(l.max_pixels == (UINT64_C(1) << 28));
    assert_true(l.max_file_bytes == (UINT64_C(4) << 30));
    assert_true(l.max_meta_bytes == (UINT64_C(64) << 20));
    cm_limits_default(NULL); /* no crash */
}

static void test_new_free(void **s)
{
    (void)s;
    cm_image *img = NULL;
    assert_int_equal(cm_image_new(&img, 3, 2, 4, 1, 16), CM_OK);
    assert_int_equal(img->width, 3);
    assert_int_equal(img->height, 2);
    assert_int_equal(img->channels, 4);
    assert_int_equal(img->has_alpha, 1);
    assert_int_equal(img->bit_depth, 16);
    assert_int_equal(img->sample, CM_SAMPLE_U16);
    assert_true(img->stride >= 3 * 4 * 2);
    assert_null(img->meta);
    for (int i = 0; i < 24; i++)
        assert_int_equal(img->data[i], 0);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.color_type, "rgba");
    assert_int_equal(info.channels, 4);
    assert_int_equal(info.ntags, 0);
    cm_image_free(&img);
    assert_null(img);
    cm_image_free(&img);
    cm_image_free(NULL);

    assert_int_equal(cm_image_new(NULL, 3, 2, 3, 0, 8), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 0, 2, 3, 0, 8), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 2, -1, 3, 0, 8), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 2, 2, 5, 0, 8), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 2, 2, 3, 1, 8), CM_E_INVAL); /* alpha? */
    assert_int_equal(cm_image_new(&img, 2, 2, 4, 0, 8), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 2, 2, 3, 0, 12), CM_E_INVAL);
    assert_int_equal(cm_image_new(&img, 20000, 20000, 3, 0, 8), CM_E_LIMIT);
    assert_null(img);
    assert_int_equal(cm_image_get_info(NULL, NULL), CM_E_INVAL);
}

/* ---- planes ----------------------------------------------------------- */

static void test_plane_alloc(void **s)
{
    (void)s;
    cm_plane p;
    assert_int_equal(cm_plane_alloc(&p, 5, 3), CM_OK);
    assert_int_equal(p.width, 5);
    assert_int_equal(p.height, 3);
    assert_true(p.stride >= 5);
    for (int i = 0; i < 15; i++)
        assert_true(p.data[i] == 0.0f);
    cm_plane_free(&p);
    assert_null(p.data);
    cm_plane_free(&p);
    cm_plane_free(NULL);
    assert_int_equal(cm_plane_alloc(&p, 0, 3), CM_E_INVAL);
    assert_null(p.data);
    assert_int_equal(cm_plane_alloc(NULL, 1, 1), CM_E_INVAL);
}

static void test_to_plane_values(void **s)
{
    (void)s;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_plane p;

    cm_image *g = make(2, 1, 2, 8);
    set(g, 0, 0, 0, 77);
    set(g, 0, 0, 1, 0);
    set(g, 1, 0, 0, 255);
    assert_int_equal(cm_image_to_plane(ctx, g, &p), CM_OK);
    assert_true(p.data[0] == 77.0f);
    assert_true(p.data[1] == 255.0f);
    cm_plane_free(&p);
    cm_image_free(&g);

    cm_image *rgb = make(1, 1, 3, 8);
    set(rgb, 0, 0, 0, 100);
    set(rgb, 0, 0, 1, 150);
    set(rgb, 0, 0, 2, 200);
    assert_int_equal(cm_image_to_plane(ctx, rgb, &p), CM_OK);
    assert_float_equal(p.data[0], 0.299 * 100 + 0.587 * 150 + 0.114 * 200, 1e-3);
    cm_plane_free(&p);
    cm_image_free(&rgb);

    cm_image *g16 = make(2, 1, 1, 16);
    set(g16, 0, 0, 0, 65535);
    set(g16, 1, 0, 0, 257 * 10 + 128);
    assert_int_equal(cm_image_to_plane(ctx, g16, &p), CM_OK);
    assert_float_equal(p.data[0], 255.0, 1e-3);
    assert_float_equal(p.data[1], 10.0 + 128.0 / 257.0, 1e-4);
    cm_plane_free(&p);

    cm_image *w = make(1, 1, 4, 16);
    for (int c = 0; c < 3; c++)
        set(w, 0, 0, c, 65535);
    assert_int_equal(cm_image_to_plane(ctx, w, &p), CM_OK);
    assert_float_equal(p.data[0], 255.0, 1e-3);
    cm_plane_free(&p);
    cm_image_free(&w);

    /* argument checks */
    assert_int_equal(cm_image_to_plane(ctx, NULL, &p), CM_E_INVAL);
    assert_int_equal(cm_image_to_plane(ctx, g16, NULL), CM_E_INVAL);
    int saved = g16->channels;
    g16->channels = 7;
    assert_int_equal(cm_image_to_plane(ctx, g16, &p), CM_E_INVAL);
    assert_null(p.data);
    g16->channels = saved;
    cm_image_free(&g16);
    cm_ctx_free(&ctx);
}

/* An unmodified plane is an exact no-op, for every layout; a copy of the
 * plane (different buffer, same values) too. */
static void test_apply_identity(void **s)
{
    (void)s;
    for (int i = 0; i < 8; i++) {
        cm_image *img = random_image(29, 17, layouts[i][0], layouts[i][1]);
        cm_image *ref = copy_image(img);
        cm_plane orig, marked;
        assert_int_equal(cm_image_to_plane(NULL, img, &orig), CM_OK);
        assert_int_equal(cm_image_to_plane(NULL, img, &marked), CM_OK);
        assert_int_equal(cm_image_apply_plane(NULL, img, &orig, &marked), CM_OK);
        assert_memory_equal(img->data, ref->data,
                            (size_t)img->stride * (size_t)img->height);
        assert_int_equal(cm_image_apply_plane(NULL, img, &orig, &orig), CM_OK);
        assert_memory_equal(img->data, ref->data,
                            (size_t)img->stride * (size_t)img->height);
        cm_plane_free(&orig);
        cm_plane_free(&marked);
        cm_image_free(&ref);
        cm_image_free(&img);
    }
}

/* +3.0 in luma: +3 on every colour channel at 8 bit, +771 at 16 bit; alpha
 * untouched; fully transparent pixels untouched. */
static void test_apply_delta(void **s)
{
    (void)s;
    for (int i = 0; i < 8; i++) {
        const int ch = layouts[i][0], depth = layouts[i][1];
        const int alpha = ch == 2 || ch == 4, nc = alpha ? ch - 1 : ch;
        const unsigned step = depth == 16 ? 771u : 3u;
        const unsigned maxv = depth == 16 ? 65535u : 255u;
        cm_image *img = make(16, 4, ch, depth);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 16; x++) {
                for (int c = 0; c < nc; c++) /* room for +3 */
                    set(img, x, y, c, rnd() % (maxv - step));
                if (alpha)
                    set(img, x, y, nc, x == 3 ? 0 : (x == 5 ? maxv : rnd() % maxv + 1));
            }
        cm_image *ref = copy_image(img);
        cm_plane orig, marked;
        assert_int_equal(cm_image_to_plane(NULL, img, &orig), CM_OK);
        assert_int_equal(cm_image_to_plane(NULL, img, &marked), CM_OK);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 16; x++)
                marked.data[y * marked.stride + x] += 3.0f;
        assert_int_equal(cm_image_apply_plane(NULL, img, &orig, &marked), CM_OK);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 16; x++) {
                int transparent = alpha && get(ref, x, y, nc) == 0;
                for (int c = 0; c < nc; c++)
                    assert_int_equal(get(img, x, y, c),
                                     get(ref, x, y, c) + (transparent ? 0 : step));
                if (alpha)
                    assert_int_equal(get(img, x, y, nc), get(ref, x, y, nc));
            }
        cm_plane_free(&orig);
        cm_plane_free(&marked);
        cm_image_free(&ref);
        cm_image_free(&img);
    }
}

static void test_apply_round_clamp(void **s)
{
    (void)s;
    cm_image *img = make(6, 1, 1, 8);
    const unsigned start[6] = {10, 10, 10, 254, 1, 100};
    const float delta[6] = {0.5f, 0.4f, -0.6f, 3.0f, -3.0f, -1000.0f};
    const unsigned want[6] = {11, 10, 9, 255, 0, 0};
    for (int x = 0; x < 6; x++)
        set(img, x, 0, 0, start[x]);
    cm_plane orig, marked;
    assert_int_equal(cm_image_to_plane(NULL, img, &orig), CM_OK);
    assert_int_equal(cm_image_to_plane(NULL, img, &marked), CM_OK);
    for (int x = 0; x < 6; x++)
        marked.data[x] += delta[x];
    assert_int_equal(cm_image_apply_plane(NULL, img, &orig, &marked), CM_OK);
    for (int x = 0; x < 6; x++)
        assert_int_equal(get(img, x, 0, 0), want[x]);

    /* 16 bit: +1 code value = +257; clamped at the top */
    cm_image *h = make(2, 1, 1, 16);
    set(h, 0, 0, 0, 1000);
    set(h, 1, 0, 0, 65500);
    cm_plane o16, m16;
    assert_int_equal(cm_image_to_plane(NULL, h, &o16), CM_OK);
    assert_int_equal(cm_image_to_plane(NULL, h, &m16), CM_OK);
    m16.data[0] += 1.0f;
    m16.data[1] += 1.0f;
    assert_int_equal(cm_image_apply_plane(NULL, h, &o16, &m16), CM_OK);
    assert_int_equal(get(h, 0, 0, 0), 1257);
    assert_int_equal(get(h, 1, 0, 0), 65535);

    /* mismatched planes, bad arguments */
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    assert_int_equal(cm_image_apply_plane(ctx, img, &o16, &m16), CM_E_INVAL);
    assert_int_equal(cm_ctx_last_status(ctx), CM_E_INVAL);
    assert_int_equal(cm_image_apply_plane(ctx, img, NULL, &marked), CM_E_INVAL);
    assert_int_equal(cm_image_apply_plane(ctx, NULL, &orig, &marked), CM_E_INVAL);
    cm_ctx_free(&ctx);

    cm_plane_free(&o16);
    cm_plane_free(&m16);
    cm_image_free(&h);
    cm_plane_free(&orig);
    cm_plane_free(&marked);
    cm_image_free(&img);
}

static void test_headroom(void **s)
{
    (void)s;
    cm_plane lo, hi;

    cm_image *g = make(3, 1, 1, 8);
    set(g, 0, 0, 0, 0);
    set(g, 1, 0, 0, 255);
    set(g, 2, 0, 0, 100);
    assert_int_equal(cm_image_headroom(NULL, g, &lo, &hi), CM_OK);
    assert_true(lo.data[0] == 0.0f && hi.data[0] == 255.0f);
    assert_true(lo.data[1] == 255.0f && hi.data[1] == 0.0f);
    assert_true(lo.data[2] == 100.0f && hi.data[2] == 155.0f);
    cm_plane_free(&lo);
    cm_plane_free(&hi);
    cm_image_free(&g);

    cm_image *rgba = make(3, 1, 4, 8);
    const unsigned px[3][4] = {{10, 200, 50, 255}, {0, 255, 7, 1}, {40, 40, 40, 0}};
    for (int x = 0; x < 3; x++)
        for (int c = 0; c < 4; c++)
            set(rgba, x, 0, c, px[x][c]);
    assert_int_equal(cm_image_headroom(NULL, rgba, &lo, &hi), CM_OK);
    assert_true(lo.data[0] == 10.0f && hi.data[0] == 55.0f);
    assert_true(lo.data[1] == 0.0f && hi.data[1] == 0.0f);
    assert_true(lo.data[2] == 0.0f && hi.data[2] == 0.0f); /* alpha 0 */
    cm_plane_free(&lo);
    cm_plane_free(&hi);
    cm_image_free(&rgba);

    cm_image *g16 = make(3, 1, 2, 16);
    set(g16, 0, 0, 0, 0);
    set(g16, 0, 0, 1, 65535);
    set(g16, 1, 0, 0, 65535);
    set(g16, 1, 0, 1, 65535);
    set(g16, 2, 0, 0, 257 * 100);
    set(g16, 2, 0, 1, 0);
    assert_int_equal(cm_image_headroom(NULL, g16, &lo, &hi), CM_OK);
    assert_float_equal(lo.data[0], 0.0, 1e-4);
    assert_float_equal(hi.data[0], 255.0, 1e-3);
    assert_float_equal(lo.data[1], 255.0, 1e-3);
    assert_float_equal(hi.data[1], 0.0, 1e-4);
    assert_true(lo.data[2] == 0.0f && hi.data[2] == 0.0f);
    cm_plane_free(&lo);
    cm_plane_free(&hi);

    assert_int_equal(cm_image_headroom(NULL, NULL, &lo, &hi), CM_E_INVAL);
    assert_int_equal(cm_image_headroom(NULL, g16, &lo, NULL), CM_E_INVAL);
    assert_int_equal(cm_image_headroom(NULL, g16, &lo, &lo), CM_E_INVAL);
    cm_image_free(&g16);
}

/* ---- atomic output ---------------------------------------------------- */

static int count_temp_files(void)
{
    const char *dir = getenv("CELMARK_TEST_TMP");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c '^\\.img_.*\\.tmp-' > /dev/null",
             dir && *dir ? dir : "/tmp");
    return system(cmd) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void assert_file_text(const char *path, const char *text)
{
    char buf[256] = {0};
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

/* The fused paths give exactly what the separate calls give, every layout. */
static void test_fused_paths(void **s)
{
    (void)s;
    static const int layouts[][2] = {{1, 8}, {2, 8}, {3, 8}, {4, 8}, {1, 16}, {3, 16}, {4, 16}};
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        cm_image *img = random_image(37, 23, layouts[i][0], layouts[i][1]);
        cm_image *other = copy_image(img);
        cm_plane l1 = {0}, lo1 = {0}, hi1 = {0}, l2 = {0}, lo2 = {0}, hi2 = {0};
        assert_int_equal(cm_image_to_plane(NULL, img, &l1), CM_OK);
        assert_int_equal(cm_image_headroom(NULL, img, &lo1, &hi1), CM_OK);
        assert_int_equal(cm_image_luma_headroom(NULL, img, &l2, &lo2, &hi2), CM_OK);
        for (int y = 0; y < 23; y++) {
            assert_memory_equal(l1.data + y * l1.stride, l2.data + y * l2.stride, 37 * sizeof(float));
            assert_memory_equal(lo1.data + y * lo1.stride, lo2.data + y * lo2.stride, 37 * sizeof(float));
            assert_memory_equal(hi1.data + y * hi1.stride, hi2.data + y * hi2.stride, 37 * sizeof(float));
        }
        /* unchanged plane: no-op; changed plane: same bytes as apply_plane */
        assert_int_equal(cm_image_apply_luma(NULL, other, &l2), CM_OK);
        assert_memory_equal(other->data, img->data, (size_t)img->stride * img->height);
        for (int y = 0; y < 23; y++)
            for (int x = 0; x < 37; x++)
                l2.data[y * l2.stride + x] += (float)((x * 7 + y * 3) % 11) * 0.37f - 1.5f;
        assert_int_equal(cm_image_apply_plane(NULL, img, &l1, &l2), CM_OK);
        assert_int_equal(cm_image_apply_luma(NULL, other, &l2), CM_OK);
        assert_memory_equal(other->data, img->data, (size_t)img->stride * img->height);
        cm_plane *planes[] = {&l1, &lo1, &hi1, &l2, &lo2, &hi2};
        for (int k = 0; k < 6; k++)
            cm_plane_free(planes[k]);
        cm_image_free(&img);
        cm_image_free(&other);
    }
    cm_plane p = {0}, q = {0}, r = {0};
    assert_int_equal(cm_image_luma_headroom(NULL, NULL, &p, &q, &r), CM_E_INVAL);
    assert_null(p.data);
}

/* The blue-yellow share: B up, R and G down, luma (nearly) unchanged. */
static void test_chroma(void **s)
{
    (void)s;
    cm_image *img = make(4, 1, 3, 8);
    static const uint8_t px[4][3] = {{100, 120, 140}, {0, 0, 255}, {255, 255, 0}, {50, 50, 50}};
    for (int x = 0; x < 4; x++)
        memcpy(img->data + 3 * x, px[x], 3);
    cm_plane c = {0}, lo = {0}, hi = {0}, l = {0};
    assert_int_equal(cm_image_chroma(NULL, img, &c, &lo, &hi), CM_OK);
    assert_true(fabsf(c.data[0] - (140 - (0.299f * 100 + 0.587f * 120 + 0.114f * 140))) < 1e-3f);
    assert_true(hi.data[1] == 0.0f); /* B at 255: cannot go up */
    assert_true(lo.data[2] == 0.0f); /* B at 0: cannot go down */
    assert_true(lo.data[1] == 255.0f); /* down: B falls from 255, R and G rise from 0 */
    assert_true(hi.data[2] == 255.0f); /* up: B rises from 0, R and G fall from 255 */
    assert_true(hi.data[3] > 10 && lo.data[3] > 10);
    cm_plane c2 = {0};
    assert_int_equal(cm_image_chroma(NULL, img, &c2, NULL, NULL), CM_OK); /* chroma only */
    assert_memory_equal(c.data, c2.data, 4 * sizeof(float));
    cm_plane_free(&c2);
    assert_int_equal(cm_image_chroma(NULL, img, &c2, &lo, NULL), CM_E_INVAL);
    assert_int_equal(cm_image_to_plane(NULL, img, &l), CM_OK);
    for (int x = 0; x < 4; x++)
        c.data[x] = 8.0f; /* now a delta */
    assert_int_equal(cm_image_apply_marks(NULL, img, &l, &c), CM_OK);
    assert_int_equal(img->data[0], 100 - 1); /* -8 * 0.1287 = -1.03 */
    assert_int_equal(img->data[1], 120 - 1);
    assert_int_equal(img->data[2], 148);
    assert_int_equal(img->data[3 * 3 + 2], 58);
    /* B at 255 has no room to go up: the share is clamped away, not clipped */
    assert_int_equal(img->data[3], 0);
    assert_int_equal(img->data[4], 0);
    assert_int_equal(img->data[5], 255);
    cm_plane l2 = {0};
    assert_int_equal(cm_image_to_plane(NULL, img, &l2), CM_OK);
    assert_true(fabsf(l2.data[0] - l.data[0]) < 0.5f); /* luma kept within rounding */
    cm_plane *planes[] = {&c, &lo, &hi, &l, &l2};
    for (int k = 0; k < 5; k++)
        cm_plane_free(planes[k]);
    cm_image_free(&img);
    /* grey: no chroma, and a chroma delta is ignored */
    img = make(3, 2, 1, 8);
    memset(img->data, 77, (size_t)img->stride * 2);
    assert_int_equal(cm_image_chroma(NULL, img, &c, &lo, &hi), CM_OK);
    assert_int_equal(cm_image_to_plane(NULL, img, &l), CM_OK);
    for (int i = 0; i < 2; i++)
        for (int x = 0; x < 3; x++) {
            assert_true(c.data[i * c.stride + x] == 0.0f && hi.data[i * hi.stride + x] == 0.0f);
            c.data[i * c.stride + x] = 5.0f;
        }
    assert_int_equal(cm_image_apply_marks(NULL, img, &l, &c), CM_OK);
    for (int i = 0; i < 2; i++)
        for (int x = 0; x < 3; x++)
            assert_int_equal(img->data[i * img->stride + x], 77);
    cm_plane *planes2[] = {&c, &lo, &hi, &l};
    for (int k = 0; k < 4; k++)
        cm_plane_free(planes2[k]);
    cm_image_free(&img);
}

static void test_atomic(void **s)
{
    (void)s;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    path_buf p = tmp_path("atomic.txt");
    unlink(p.s);
    cm__atomic a;

    /* commit: file appears with the content, temp gone */
    assert_int_equal(cm__atomic_open(ctx, p.s, 0, &a), CM_OK);
    assert_non_null(a.fp);
    assert_non_null(strstr(a.tmp, "/.img_atomic.txt.tmp-"));
    assert_false(test_file_exists(p.s));
    fputs("one", a.fp);
    assert_int_equal(cm__atomic_commit(ctx, &a), CM_OK);
    assert_null(a.fp);
    assert_file_text(p.s, "one");
    assert_false(count_temp_files());

    /* abort: nothing appears */
    path_buf q = tmp_path("aborted.txt");
    unlink(q.s);
    assert_int_equal(cm__atomic_open(ctx, q.s, 0, &a), CM_OK);
    fputs("partial", a.fp);
    cm__atomic_abort(&a);
    cm__atomic_abort(&a); /* idempotent */
    assert_false(test_file_exists(q.s));
    assert_false(count_temp_files());

    /* exists up front */
    assert_int_equal(cm__atomic_open(ctx, p.s, 0, &a), CM_E_EXISTS);
    char want[600];
    snprintf(want, sizeof(want), "%s: already exists; use --force to replace it",
             p.s);
    assert_string_equal(cm_ctx_last_error(ctx), want);

    /* appears while writing: link() refuses, original kept, temp removed */
    assert_int_equal(cm__atomic_open(ctx, q.s, 0, &a), CM_OK);
    fputs("mine", a.fp);
    write_text(q.s, "theirs");
    assert_int_equal(cm__atomic_commit(ctx, &a), CM_E_EXISTS);
    assert_file_text(q.s, "theirs");
    assert_false(count_temp_files());

    /* force replaces */
    assert_int_equal(cm__atomic_open(ctx, p.s, 1, &a), CM_OK);
    fputs("two", a.fp);
    assert_int_equal(cm__atomic_commit(ctx, &a), CM_OK);
    assert_file_text(p.s, "two");
    assert_false(count_temp_files());

    /* missing folder */
    path_buf m = tmp_path("missing/dir/x.txt");
    assert_int_equal(cm__atomic_open(ctx, m.s, 0, &a), CM_E_IO);
    snprintf(want, sizeof(want),
             "%s: cannot create output: No such file or directory", m.s);
    assert_string_equal(cm_ctx_last_error(ctx), want);
    assert_null(a.fp);
    cm__atomic_abort(&a);

    /* bad arguments; commit of a closed state */
    assert_int_equal(cm__atomic_open(ctx, NULL, 0, &a), CM_E_INVAL);
    assert_int_equal(cm__atomic_open(ctx, "", 0, &a), CM_E_INVAL);
    assert_int_equal(cm__atomic_open(ctx, p.s, 0, NULL), CM_E_INVAL);
    assert_int_equal(cm__atomic_commit(ctx, &a), CM_E_INVAL);

    /* a name without a folder goes to the current directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    const char *dir = getenv("CELMARK_TEST_TMP");
    assert_int_equal(chdir(dir && *dir ? dir : "/tmp"), 0);
    unlink("img_plain.txt");
    assert_int_equal(cm__atomic_open(ctx, "img_plain.txt", 0, &a), CM_OK);
    assert_string_equal(a.dir, ".");
    assert_int_equal(strncmp(a.tmp, ".img_plain.txt.tmp-", 19), 0);
    fputs("plain", a.fp);
    assert_int_equal(cm__atomic_commit(ctx, &a), CM_OK);
    assert_file_text("img_plain.txt", "plain");
    unlink("img_plain.txt");
    assert_int_equal(chdir(cwd), 0);

    unlink(p.s);
    unlink(q.s);
    cm_ctx_free(&ctx);
}

/* cm_image_write: images made in memory are written as PNG and read back
 * unchanged; an invalid image leaves nothing behind. */
static void test_write_memory_image(void **s)
{
    (void)s;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    path_buf p = tmp_path("mem.png");
    unlink(p.s);
    cm_image *img = random_image(9, 5, 3, 8);
    assert_int_equal(cm_image_write(ctx, img, p.s, 0), CM_OK);
    cm_image *back = NULL;
    assert_int_equal(cm_image_read(ctx, p.s, NULL, &back), CM_OK);
    assert_memory_equal(back->data, img->data, (size_t)img->stride * 5);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(back, &info), CM_OK);
    assert_string_equal(info.format, "png");
    cm_image_free(&back);
    unlink(p.s);

    img->bit_depth = 12; /* invalid */
    assert_int_equal(cm_image_write(ctx, img, p.s, 0), CM_E_INVAL);
    assert_false(test_file_exists(p.s));
    assert_false(count_temp_files());
    img->bit_depth = 8;
    cm_image_free(&img);
    cm_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_plane_alloc),
        cmocka_unit_test(test_to_plane_values),
        cmocka_unit_test(test_apply_identity),
        cmocka_unit_test(test_apply_delta),
        cmocka_unit_test(test_apply_round_clamp),
        cmocka_unit_test(test_headroom),
        cmocka_unit_test(test_fused_paths),
        cmocka_unit_test(test_chroma),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_write_memory_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
