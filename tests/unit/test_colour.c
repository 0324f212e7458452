/* Unit tests: CIEDE2000, sRGB -> CIELAB, the colour budget and the
 * per-image comparison (pixels/colour.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "celmark/celmark.h"
#include "pixels/colour.h"

/* Sharma, Wu and Dalal (2005), Table 1: the 34 published pairs
 * (L1 a1 b1, L2 a2 b2, ΔE00), chosen to straddle every branch of the
 * formula (hue wrap-around, the mean hue, the blue-region rotation). */
static const double sharma[34][7] = {
    {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
    {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
    {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
    {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
    {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
    {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
    {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
    {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
    {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
    {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
    {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
    {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
    {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
    {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
    {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
    {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
    {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
    {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
    {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
    {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
    {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
    {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
    {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
    {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
};

static void test_sharma_pairs(void **state)
{
    (void)state;
    for (int i = 0; i < 34; i++) {
        const double *p = sharma[i];
        double d1 = cm__ciede2000(p, p + 3), d2 = cm__ciede2000(p + 3, p);
        if (fabs(d1 - p[6]) > 1e-4 || fabs(d2 - p[6]) > 1e-4)
            fail_msg("pair %d: %.6f / %.6f, expected %.4f", i + 1, d1, d2, p[6]);
    }
    double same[3] = {42, -3, 7};
    assert_true(cm__ciede2000(same, same) == 0.0);
}

/* sRGB -> CIELAB at known points (D65; values from the sRGB and CIELAB
 * definitions). */
static void test_srgb_to_lab(void **state)
{
    (void)state;
    static const struct {
        float rgb[3];
        double lab[3];
    } known[] = {
        {{255, 255, 255}, {100.0, 0.0, 0.0}},         {{0, 0, 0}, {0.0, 0.0, 0.0}},
        {{255, 0, 0}, {53.2408, 80.0925, 67.2032}},   {{0, 255, 0}, {87.7347, -86.1827, 83.1793}},
        {{0, 0, 255}, {32.2970, 79.1875, -107.8602}}, {{128, 128, 128}, {53.5850, 0.0, 0.0}},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        double lab[3];
        cm__srgb_to_lab(known[i].rgb, lab);
        for (int k = 0; k < 3; k++)
            if (fabs(lab[k] - known[i].lab[k]) > 0.01)
                fail_msg("rgb %g %g %g: lab[%d] %.4f, expected %.4f", known[i].rgb[0],
                         known[i].rgb[1], known[i].rgb[2], k, lab[k], known[i].lab[k]);
    }
}

/* ΔE00 of rgb moved by its cell's room in direction k (luma down, up,
 * blue down, up), times share less margin (none below 0), as a display
 * shows the moved colour: clipped to 0..255. */
static double room_de(const cm__room *t, const float rgb[3], int k, float share, float margin)
{
    const cm__room_cell *c = cm__room_at(t, rgb);
    const float room[4] = {c->luma_down, c->luma_up, c->blue_down, c->blue_up};
    const float sign[4] = {-1, 1, -1, 1};
    float r = room[k] * share - margin, moved[3];
    r = r > 0 ? sign[k] * r : 0;
    cm__colour_move(rgb, k < 2 ? r : 0, k < 2 ? 0 : r, moved);
    for (int i = 0; i < 3; i++)
        moved[i] = moved[i] < 0 ? 0 : (moved[i] > 255 ? 255 : moved[i]);
    return cm__de00_rgb(rgb, moved);
}

/* The room table: moving a colour by its cell's room stays within the
 * budget as a display shows it, up to what varies inside one cell (within
 * 5 % on these 2,000 colours; not everywhere: (102, 90, 81) moved up blue
 * reaches 7 %, a direction only stills take, and a still's pixels are
 * checked after rounding), and a dark neutral has less room for blue than
 * for luma. */
static void test_room(void **state)
{
    (void)state;
    const float de = 2.0f;
    const cm__room *t = cm__room_get(de);
    assert_non_null(t);
    assert_ptr_equal(t, cm__room_get(de)); /* built once */
    srand(7);
    for (int n = 0; n < 2000; n++) {
        float rgb[3] = {(float)(rand() % 256), (float)(rand() % 256), (float)(rand() % 256)};
        for (int k = 0; k < 4; k++) {
            double e = room_de(t, rgb, k, 1, 0);
            if (e > de * 1.05)
                fail_msg("rgb %g %g %g, direction %d: its room gives %.3f > %.2f", rgb[0], rgb[1],
                         rgb[2], k, e, (double)de);
        }
    }
    /* dark ink of no blue (a ProRes frame's): moved down, blue cannot follow
     * below black (the table once took it there: room 10, ΔE00 3.2 shown) */
    const float ink[3] = {8, 11, 0};
    assert_true(room_de(t, ink, 0, 1, 0) <= de * 1.05);
    float dark[3] = {20, 20, 20};
    const cm__room_cell *c = cm__room_at(t, dark);
    assert_true(c->blue_up < c->luma_up);
    assert_true(c->luma_up > 2 && c->luma_up < 20);
}

/* Every colour of a grid (every 5th value a channel, black and white
 * included), its luma moved as far as a video frame's share of the room
 * lets it, as a display shows it: within the default profile's limit for
 * video frames (ΔE00 3.0) everywhere, and over its budget (2.0) almost
 * nowhere. Before moves were clipped as a display clips them, colours by
 * black or white went to 5.4 (0, 9, 0 down) and 5.2 (255, 246, 255 up). */
static void test_room_video_grid(void **state)
{
    (void)state;
    const float de = 2.0f;
    const cm__room *t = cm__room_get(de);
    assert_non_null(t);
    long colours = 0, over = 0;
    for (int r = 0; r <= 255; r += 5)
        for (int g = 0; g <= 255; g += 5)
            for (int b = 0; b <= 255; b += 5) {
                const float rgb[3] = {(float)r, (float)g, (float)b};
                for (int k = 0; k < 2; k++) {
                    double e = room_de(t, rgb, k, CM__YUV_ROOM_SHARE, CM__YUV_ROUND_MARGIN);
                    if (e > 3.0)
                        fail_msg("rgb %d %d %d, luma %s: ΔE00 %.3f shown > 3.0", r, g, b,
                                 k ? "up" : "down", e);
                    over += e > de;
                }
                colours++;
            }
    assert_true(over * 10000 <= colours * 2); /* <= 0.01 % of moves */
}

/* The process keeps a handful of budgets; past that a table of one's own is
 * made (and every kept one stays where it was). */
static void test_room_cache(void **state)
{
    (void)state;
    const cm__room *first = cm__room_get(3.25f);
    assert_non_null(first);
    int kept = 0;
    for (int k = 0; k < 40; k++)
        kept += cm__room_get(5.0f + 0.5f * (float)k) != NULL;
    assert_true(kept >= 8 && kept < 40);
    assert_ptr_equal(cm__room_get(3.25f), first);
    assert_null(cm__room_get(99.0f));
    cm__room *own = cm__room_new(99.0f);
    assert_non_null(own);
    assert_true(own->de == 99.0f);
    cm__room_free(&own);
    assert_null(own);
    assert_null(cm__room_new(0.0f));
}

/* A random colour image with a large random mark applied within a budget:
 * every pixel within it exactly (after rounding), and cm_image_delta_e
 * reports the same. */
static void test_apply_within_budget(void **state)
{
    (void)state;
    for (int depth = 8; depth <= 16; depth += 8) {
        cm_image img = {0};
        img.width = 97;
        img.height = 61;
        img.channels = 3;
        img.bit_depth = depth;
        img.sample = depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8;
        img.stride = (ptrdiff_t)img.width * 3 * (depth / 8);
        img.data = malloc((size_t)img.stride * img.height);
        assert_non_null(img.data);
        srand(11);
        for (int i = 0; i < img.width * img.height * 3; i++) {
            unsigned v = (unsigned)(rand() % 256);
            if (i % 7 == 0)
                v = (unsigned)(rand() % 24); /* plenty of dark pixels */
            if (depth == 16)
                ((uint16_t *)(void *)img.data)[i] = (uint16_t)(v * 257 + rand() % 257);
            else
                img.data[i] = (uint8_t)v;
        }
        cm_image copy = img;
        copy.data = malloc((size_t)img.stride * img.height);
        assert_non_null(copy.data);
        memcpy(copy.data, img.data, (size_t)img.stride * img.height);

        cm_plane luma, lo, hi, chroma;
        const cm__room *room = cm__room_get(2.0f);
        assert_int_equal(cm__image_luma_room(NULL, &copy, room, &luma, &lo, &hi), CM_OK);
        assert_int_equal(cm_plane_alloc(&chroma, img.width, img.height), CM_OK);
        for (int i = 0; i < img.width * img.height; i++) {
            luma.data[i] += (float)(rand() % 41 - 20);
            chroma.data[i] = (float)(rand() % 41 - 20);
        }
        assert_int_equal(cm__image_apply_marks_within(NULL, &copy, &luma, &chroma, room), CM_OK);
        cm_de_stats st;
        assert_int_equal(cm_image_delta_e(NULL, &img, &copy, &st), CM_OK);
        assert_true(st.pixels == (uint64_t)img.width * img.height);
        if (st.max > 2.0)
            fail_msg("depth %d: max ΔE00 %.4f over the budget 2.0", depth, st.max);
        assert_true(st.mean > 0.3); /* the mark was applied, not dropped */
        assert_true(st.p99 <= st.max && st.p999 <= st.max && st.p99 <= st.p999);

        /* without the budget the same mark goes far past it */
        memcpy(copy.data, img.data, (size_t)img.stride * img.height);
        assert_int_equal(cm_image_apply_marks(NULL, &copy, &luma, &chroma), CM_OK);
        assert_int_equal(cm_image_delta_e(NULL, &img, &copy, &st), CM_OK);
        assert_true(st.max > 5.0);
        assert_true(st.over_2_3 > 0.05);
        cm_plane *planes[] = {&luma, &lo, &hi, &chroma};
        for (int k = 0; k < 4; k++)
            cm_plane_free(planes[k]);
        free(copy.data);
        free(img.data);
    }
}

/* A pixel's room takes the chroma samples a decoder blends into its colour
 * and no others: in 4:4:4 its own alone, in 4:2:2 its own and the next
 * across, never the row below's. Every other sample is made anew in each
 * trial (a row of 6 pixels, 3 rows), the pixel's room stays what it was;
 * the reference and the row passes alike. */
static void test_yuv_room_blended_only(void **state)
{
    (void)state;
    const cm__room *room = cm__room_get(2.0f);
    assert_non_null(room);
    enum { W = 6, H = 3, PX = 2, PY = 1 };
    srand(5);
    for (int sx = 0; sx <= 1; sx++) { /* 4:4:4, then 4:2:2 */
        const int cw = W >> sx;
        uint8_t cb[W * H], cr[W * H];
        float base[2][2] = {{0}};
        for (int t = 0; t < 60; t++) {
            for (int i = 0; i < W * H; i++) {
                cb[i] = (uint8_t)(16 + rand() % 225);
                cr[i] = (uint8_t)(16 + rand() % 225);
            }
            /* the samples the pixel blends: fixed */
            for (int k = 0; k <= sx; k++) {
                cb[PY * cw + (PX >> sx) + k] = (uint8_t)(100 + 20 * k);
                cr[PY * cw + (PX >> sx) + k] = (uint8_t)(150 - 10 * k);
            }
            cm__yuv_chroma c = {cb, cr, cw, 1, 8, sx, 0, 1, 0.2126f, 0.0722f};
            for (int way = 0; way < 2; way++) { /* the reference, the row passes */
                cm_plane l = {0}, lo = {0}, hi = {0};
                assert_int_equal(cm_plane_alloc(&l, W, H), 0);
                assert_int_equal(cm_plane_alloc(&lo, W, H), 0);
                assert_int_equal(cm_plane_alloc(&hi, W, H), 0);
                for (int i = 0; i < W * H; i++) {
                    l.data[i] = 90.0f;
                    lo.data[i] = hi.data[i] = 64.0f;
                }
                if (way)
                    cm__yuv_luma_room(room, &l, &c, &lo, &hi);
                else
                    cm__yuv_luma_room_c(room, &l, &c, &lo, &hi);
                float got[2] = {lo.data[PY * lo.stride + PX], hi.data[PY * hi.stride + PX]};
                if (t == 0)
                    memcpy(base[way], got, sizeof(got));
                else if (got[0] != base[way][0] || got[1] != base[way][1])
                    fail_msg("4:%s, trial %d, %s: room %g %g, was %g %g", sx ? "2:2" : "4:4", t,
                             way ? "rows" : "reference", (double)got[0], (double)got[1],
                             (double)base[way][0], (double)base[way][1]);
                cm_plane_free(&l);
                cm_plane_free(&lo);
                cm_plane_free(&hi);
            }
        }
    }
}

/* The optimised Y'CbCr budget is the reference's, bit for bit: 8- and
 * 10-bit samples, 4:2:0, 4:2:2 and 4:4:4, limited and full range, odd
 * sizes (the last chroma column and row have no neighbour), random chroma
 * and flat fills (runs whose neighbours' passes are skipped), 10-bit
 * samples a damaged stream puts past 1023 (beyond the per-value tables),
 * 16-bit samples (no tables), and grey (neutral chroma, every integer luma
 * from -2 to 257: each axis's every value, and both clamps). */
static void test_yuv_room_matches_reference(void **state)
{
    (void)state;
    const cm__room *room = cm__room_get(2.0f);
    assert_non_null(room);
    static const struct {
        /* flat 2: samples past their bits; 3: neutral chroma, integer luma */
        int w, h, bytes, bits, sx, sy, limited, flat;
    } cases[] = {
        {37, 23, 1, 8, 1, 1, 1, 0},  {64, 48, 1, 8, 1, 1, 0, 0},   {33, 17, 2, 10, 1, 0, 1, 0},
        {31, 9, 2, 10, 0, 0, 0, 0},  {1, 1, 1, 8, 1, 1, 1, 0},     {2, 3, 2, 12, 1, 1, 1, 0},
        {203, 31, 1, 8, 1, 1, 1, 1}, {150, 12, 2, 10, 1, 0, 0, 1}, {97, 8, 1, 8, 0, 0, 1, 1},
        {41, 13, 2, 10, 1, 1, 1, 2}, {29, 11, 2, 16, 1, 1, 0, 0},  {260, 2, 1, 8, 1, 1, 1, 3},
    };
    srand(11);
    for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]); n++) {
        int w = cases[n].w, h = cases[n].h, sx = cases[n].sx, sy = cases[n].sy;
        int cw = (w + (1 << sx) - 1) >> sx, chh = (h + (1 << sy) - 1) >> sy;
        size_t stride = (size_t)cw * cases[n].bytes + 3; /* padded rows */
        uint8_t *cb = malloc(stride * chh), *cr = malloc(stride * chh);
        assert_non_null(cb);
        assert_non_null(cr);
        for (size_t i = 0; i < stride * chh; i++) {
            cb[i] = (uint8_t)rand();
            cr[i] = (uint8_t)rand();
        }
        if (cases[n].flat == 1) { /* fills in runs (blue's edges not red's), a few pixels off */
            static const uint8_t fill[3] = {40, 128, 200};
            for (int y = 0; y < chh; y++)
                for (size_t i = 0; i < stride; i++) {
                    if (rand() % 29 == 0)
                        continue;
                    cb[y * stride + i] = fill[(i / 45 + (size_t)y / 4) % 3];
                    cr[y * stride + i] = fill[(i / 31 + (size_t)y / 3) % 3];
                }
        }
        if (cases[n].flat == 3) {
            memset(cb, 128, stride * chh);
            memset(cr, 128, stride * chh);
        }
        if (cases[n].bytes == 2 && cases[n].flat != 2) /* the samples within their bits */
            for (size_t i = 1; i < stride * chh; i += 2) {
                cb[i] &= (uint8_t)((1 << (cases[n].bits - 8)) - 1);
                cr[i] &= (uint8_t)((1 << (cases[n].bits - 8)) - 1);
            }
        cm__yuv_chroma c = {cb, cr, (ptrdiff_t)stride, cases[n].bytes, cases[n].bits,
                            sx, sy, cases[n].limited,  0.2126f,        0.0722f};
        cm_plane l = {0}, lo[2] = {{0}}, hi[2] = {{0}};
        assert_int_equal(cm_plane_alloc(&l, w, h), 0);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(cm_plane_alloc(&lo[k], w, h), 0);
            assert_int_equal(cm_plane_alloc(&hi[k], w, h), 0);
        }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v =
                    cases[n].flat == 3 ? (float)(x - 2) : (float)(rand() % 2600) / 10.0f - 2.0f;
                l.data[y * l.stride + x] = v;
                for (int k = 0; k < 2; k++) {
                    lo[k].data[y * lo[k].stride + x] = v > 0 ? v : 0;
                    hi[k].data[y * hi[k].stride + x] = v < 255 ? 255 - v : 0;
                }
            }
        cm__yuv_luma_room_c(room, &l, &c, &lo[0], &hi[0]);
        cm__yuv_luma_room(room, &l, &c, &lo[1], &hi[1]);
        for (int y = 0; y < h; y++) {
            assert_memory_equal(lo[0].data + y * lo[0].stride, lo[1].data + y * lo[1].stride,
                                (size_t)w * sizeof(float));
            assert_memory_equal(hi[0].data + y * hi[0].stride, hi[1].data + y * hi[1].stride,
                                (size_t)w * sizeof(float));
        }
        /* and it limits: some pixel's room is below its headroom */
        int limited = 0;
        for (int y = 0; y < h && !limited; y++)
            for (int x = 0; x < w; x++) {
                float v = l.data[y * l.stride + x];
                if (hi[1].data[y * hi[1].stride + x] < (v < 255 ? 255 - v : 0))
                    limited = 1;
            }
        assert_true(limited);
        cm_plane_free(&l);
        for (int k = 0; k < 2; k++) {
            cm_plane_free(&lo[k]);
            cm_plane_free(&hi[k]);
        }
        free(cb);
        free(cr);
    }
}

static void test_delta_e_stats(void **state)
{
    (void)state;
    uint8_t pa[4 * 2 * 3], pb[4 * 2 * 3];
    memset(pa, 100, sizeof(pa));
    memcpy(pb, pa, sizeof(pb));
    pb[0] = 110; /* one of 8 pixels changed */
    cm_image a = {4, 2, 3, 0, CM_SAMPLE_U8, 8, pa, 12, NULL};
    cm_image b = a;
    b.data = pb;
    cm_de_stats st;
    assert_int_equal(cm_image_delta_e(NULL, &a, &b, &st), CM_OK);
    float c0[3] = {100, 100, 100}, c1[3] = {110, 100, 100};
    double e = cm__de00_rgb(c0, c1);
    assert_true(fabs(st.max - e) < 1e-9);
    assert_true(fabs(st.mean - e / 8) < 1e-9);
    assert_true(fabs(st.over_1 - 1.0 / 8) < 1e-12);
    assert_true(fabs(st.p999 - e) < 1e-9); /* the top 0.1 % is that pixel */
    assert_true(st.p99 <= e);
    assert_true(st.dark_dy_max == 0); /* no dark pixels */
    /* mismatched images */
    b.width = 3;
    assert_int_equal(cm_image_delta_e(NULL, &a, &b, &st), CM_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sharma_pairs),
        cmocka_unit_test(test_srgb_to_lab),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_room_video_grid),
        cmocka_unit_test(test_room_cache),
        cmocka_unit_test(test_apply_within_budget),
        cmocka_unit_test(test_delta_e_stats),
        cmocka_unit_test(test_yuv_room_matches_reference),
        cmocka_unit_test(test_yuv_room_blended_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
