/*
 * DPX reading and writing (formats/dpx.c through the cm_image API).
 *
 * Test files are written byte by byte by tests/gen/fmtgen.c (independently
 * of the reader): 8/10/12/16 bit, both byte orders, packing methods A and B,
 * luma/RGB/RGBA, with timecode, film and TV header fields, user data between
 * header and image, end-of-line padding and a second image element. FFmpeg's
 * decoder (through formats/av.c) reads the same files as a cross-check of
 * the bit layout. An unchanged round trip must give the very same file; a
 * stamped one the same header, user data, padding and size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cel.h"
#include "celmark/celmark.h"
#include "fmtgen.h"
#include "formats/format.h"
#include "testmedia.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID 0x0dd5ca1ab1e5eed5ULL

/* ---- helpers ---------------------------------------------------------- */

static path_buf tmp_path(const char *name)
{
    return test_tmp_path("dpx_", name);
}

static unsigned px(const cm_image *img, int x, int y, int c)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    size_t i = (size_t)x * (size_t)img->channels + (size_t)c;
    return img->bit_depth == 16 ? ((const uint16_t *)(const void *)row)[i] : row[i];
}

static void assert_same_pixels(const cm_image *a, const cm_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->bit_depth, b->bit_depth);
    size_t row = (size_t)a->width * (size_t)a->channels * (size_t)(a->bit_depth / 8);
    for (int y = 0; y < a->height; y++)
        if (memcmp(a->data + (ptrdiff_t)y * a->stride, b->data + (ptrdiff_t)y * b->stride, row))
            fail_msg("row %d differs", y);
}

static unsigned expand(unsigned v, int depth)
{
    return depth == 10 ? (v << 6) | (v >> 4) : depth == 12 ? (v << 4) | (v >> 8) : v;
}

static void assert_files_equal(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *x = test_load_file(a, &na), *y = test_load_file(b, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        if (x[i] != y[i])
            fail_msg("%s and %s differ at byte %zu", a, b, i);
    free(x);
    free(y);
}

static const char *info_tag(const cm_image_info *info, const char *key)
{
    for (int i = 0; i < info->ntags; i++)
        if (!strcmp(info->tags[i].key, key))
            return info->tags[i].value;
    return NULL;
}

/* The pixels read from a DPX made of src must be the expansion of the
 * codes the generator stored. */
static void assert_decoded(const cm_image *src, const cm_image *img, int depth)
{
    assert_int_equal(img->width, src->width);
    assert_int_equal(img->height, src->height);
    assert_int_equal(img->channels, src->channels);
    assert_int_equal(img->has_alpha, src->channels == 4);
    assert_int_equal(img->bit_depth, depth == 8 ? 8 : 16);
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < src->width; x++)
            for (int c = 0; c < src->channels; c++) {
                unsigned code = gen_dpx_code(px(src, x, y, c), src->bit_depth, depth);
                if (px(img, x, y, c) != expand(code, depth))
                    fail_msg("(%d,%d) ch %d: %u, want %u", x, y, c, px(img, x, y, c),
                             expand(code, depth));
            }
}

/* FFmpeg's decoder on the same file: the same codes (its 16-bit expansion
 * may differ, so compare the top bits). */
static void cross_check_av(const char *path, const cm_image *src, int depth)
{
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    cm_limits lim;
    cm_limits_default(&lim);
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    int ret = cm__format_av.read(ctx, path, fp, &lim, &img);
    fclose(fp);
    if (ret != CM_OK)
        fail_msg("libav cannot read %s: %s", path, cm_ctx_last_error(ctx));
    assert_int_equal(img->channels, src->channels);
    const int shift = img->bit_depth == 16 ? 16 - depth : 0;
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < src->width; x++)
            for (int c = 0; c < src->channels; c++) {
                unsigned code = gen_dpx_code(px(src, x, y, c), src->bit_depth, depth);
                if (px(img, x, y, c) >> shift != code)
                    fail_msg("libav (%d,%d) ch %d: %u, want code %u", x, y, c,
                             px(img, x, y, c), code);
            }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
}

/* ---- unchanged round trips -------------------------------------------- */

typedef struct dpx_case {
    const char *name;
    int channels, depth, packing, big_endian;
    uint32_t user_bytes, eol_padding, align;
    int fill_header, second_element;
    int av; /* cross-check with FFmpeg (it ignores end-of-line padding) */
} dpx_case;

static const dpx_case cases[] = {
    {"10-bit RGB BE, user data, 8 KiB offset", 3, 10, 1, 1, 300, 0, 8192, 1, 0, 1},
    {"10-bit RGB LE", 3, 10, 1, 0, 0, 0, 0, 0, 0, 1},
    {"10-bit RGBA BE, end-of-line padding", 4, 10, 1, 1, 64, 8, 0, 1, 0, 0},
    {"10-bit RGBA LE", 4, 10, 1, 0, 0, 0, 0, 0, 0, 1},
    {"10-bit RGB method B", 3, 10, 2, 1, 0, 0, 0, 0, 0, 1},
    {"10-bit luma LE", 1, 10, 1, 0, 0, 0, 0, 1, 0, 1},
    {"10-bit luma BE method B", 1, 10, 2, 1, 0, 0, 0, 0, 0, 1},
    {"12-bit RGB BE", 3, 12, 1, 1, 100, 0, 0, 1, 0, 1},
    {"12-bit RGB LE method B", 3, 12, 2, 0, 0, 0, 0, 0, 0, 1},
    {"16-bit RGB BE, second element", 3, 16, 1, 1, 0, 0, 0, 1, 1, 1},
    {"16-bit RGBA LE", 4, 16, 0, 0, 0, 0, 0, 0, 0, 1},
    {"16-bit luma BE", 1, 16, 1, 1, 0, 4, 0, 0, 0, 0},
    {"8-bit RGB BE (odd width: row padding)", 3, 8, 1, 1, 0, 0, 0, 1, 0, 1},
    {"8-bit RGBA LE", 4, 8, 0, 0, 32, 0, 0, 0, 1, 1},
    {"8-bit luma BE", 1, 8, 1, 1, 0, 0, 0, 0, 0, 1},
};

static void gen_for(const dpx_case *c, gen_dpx *g)
{
    gen_dpx_default(g);
    g->depth = c->depth;
    g->packing = c->packing;
    g->big_endian = c->big_endian;
    g->user_bytes = c->user_bytes;
    g->eol_padding = c->eol_padding;
    g->align = c->align;
    g->fill_header = c->fill_header;
    g->second_element = c->second_element;
}

static void test_unchanged_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const dpx_case *c = &cases[i];
        print_message("[ CASE     ] %s\n", c->name);
        gen_dpx g;
        gen_for(c, &g);
        cm_image *src = test_frame(101, 37, 7 + (uint32_t)i, c->channels, c->depth == 8 ? 8 : 16,
                              CEL_TEXTURED);
        path_buf in = tmp_path("in.dpx"), out = tmp_path("out.dpx");
        assert_int_equal(gen_write_dpx(in.s, src, &g), 0);
        cm_image *img = test_must_read(NULL, in.s);
        assert_decoded(src, img, c->depth);
        if (c->av)
            cross_check_av(in.s, src, c->depth);
        test_must_write(NULL, img, out.s);
        assert_files_equal(in.s, out.s);
        cm_image_free(&src);
        cm_image_free(&img);
        unlink(in.s);
        unlink(out.s);
    }
}

/* Every 10- and 12-bit code survives 16-bit expansion and rounding back. */
static void test_every_code(void **state)
{
    (void)state;
    static const int depths[] = {10, 12};
    for (size_t d = 0; d < 2; d++) {
        const int depth = depths[d], n = 1 << depth;
        for (int ch = 1; ch <= 4; ch += 2) { /* luma and RGB */
            cm_image *src = NULL;
            assert_int_equal(cm_image_new(&src, n, 1, ch, 0, 16), CM_OK);
            uint16_t *row = (uint16_t *)(void *)src->data;
            for (int x = 0; x < n; x++)
                for (int c = 0; c < ch; c++)
                    row[x * ch + c] = (uint16_t)(((x + c * 101) % n) << (16 - depth));
            gen_dpx g;
            gen_dpx_default(&g);
            g.depth = depth;
            path_buf in = tmp_path("codes.dpx"), out = tmp_path("codes-out.dpx");
            assert_int_equal(gen_write_dpx(in.s, src, &g), 0);
            cm_image *img = test_must_read(NULL, in.s);
            assert_decoded(src, img, depth);
            test_must_write(NULL, img, out.s);
            assert_files_equal(in.s, out.s);
            cm_image_free(&src);
            cm_image_free(&img);
            unlink(in.s);
            unlink(out.s);
        }
    }
}

/* ---- stamping --------------------------------------------------------- */

static void stamp_case(int channels, int depth, int big_endian, uint32_t eol)
{
    cm_key *k = test_key(31);
    cm_image *src = test_frame(768, 512, 31, channels, depth == 8 ? 8 : 16, CEL_GRADIENT);
    if (channels == 4) { /* mostly opaque, varied, one transparent corner */
        uint16_t *a = (uint16_t *)(void *)src->data;
        for (int y = 0; y < src->height; y++)
            for (int x = 0; x < src->width; x++)
                a[(size_t)y * (size_t)src->stride / 2 + (size_t)x * 4 + 3] =
                    x < 40 && y < 40 ? 0 : (uint16_t)(65535 - ((x * 7 + y * 13) % 50) * 512);
    }
    gen_dpx g;
    gen_dpx_default(&g);
    g.depth = depth;
    g.big_endian = big_endian;
    g.user_bytes = 500;
    g.eol_padding = eol;
    g.align = 4096;
    g.fill_header = 1;
    g.second_element = 1;
    path_buf in = tmp_path("stamp-in.dpx"), out = tmp_path("stamp-out.dpx");
    assert_int_equal(gen_write_dpx(in.s, src, &g), 0);

    cm_image *img = test_must_read(NULL, in.s);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(NULL, k, ID, NULL, &st), CM_OK);
    assert_int_equal(cm_stamper_image(st, img), CM_OK);
    cm_stamper_free(&st);
    test_must_write(NULL, img, out.s);

    size_t na, nb;
    uint8_t *a = test_load_file(in.s, &na), *b = test_load_file(out.s, &nb);
    assert_int_equal(na, nb);
    /* header, user data, gap: every byte before the image */
    assert_memory_equal(a, b, 4096);
    /* the second element after the first, untouched */
    const size_t n = (size_t)src->width * (size_t)channels;
    const size_t row = ((depth == 10 ? (n + 2) / 3 * 4 : depth == 8 ? n : n * 2) + 3) & ~(size_t)3;
    const size_t end = 4096 + (row + eol) * (size_t)src->height;
    assert_memory_equal(a + end, b + end, na - end);
    /* end-of-line padding untouched */
    for (int y = 0; y < src->height; y++)
        assert_memory_equal(a + 4096 + (row + eol) * (size_t)y + row,
                            b + 4096 + (row + eol) * (size_t)y + row, eol);
    assert_memory_not_equal(a + 4096, b + 4096, end - 4096);
    free(a);
    free(b);

    /* the stamped 16-bit values, at the file's depth */
    cm_image *back = test_must_read(NULL, out.s);
    const unsigned maxv = (1u << depth) - 1;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < channels; c++) {
                unsigned v = px(img, x, y, c);
                unsigned want = depth == 16 ? v : expand((v * maxv + 32767) / 65535, depth);
                if (px(back, x, y, c) != want)
                    fail_msg("(%d,%d) ch %d: %u, want %u", x, y, c, px(back, x, y, c), want);
            }
    cm_image *orig = test_must_read(NULL, in.s);
    long changed = 0;
    for (int y = 0; y < orig->height; y++)
        for (int x = 0; x < orig->width; x++) {
            changed += px(orig, x, y, 0) != px(back, x, y, 0);
            if (channels == 4)
                assert_int_equal(px(orig, x, y, 3), px(back, x, y, 3));
        }
    assert_true(changed > (long)orig->width * orig->height / 10);

    cm_verifier *v = NULL;
    cm_verify_result r;
    assert_int_equal(cm_verifier_new(NULL, k, NULL, &v), CM_OK);
    assert_int_equal(cm_verifier_image(v, back, &r), CM_OK);
    cm_verifier_free(&v);
    if (!r.marked || r.issue_id != ID)
        fail_msg("mark not found (marked %d, score %.1f)", r.marked, r.score);

    cm_image_free(&src);
    cm_image_free(&img);
    cm_image_free(&back);
    cm_image_free(&orig);
    cm_key_free(&k);
    unlink(in.s);
    unlink(out.s);
}

static void test_stamp_10bit_rgb_be(void **state)
{
    (void)state;
    stamp_case(3, 10, 1, 0);
}

static void test_stamp_10bit_rgba_le_padded(void **state)
{
    (void)state;
    stamp_case(4, 10, 0, 12);
}

static void test_stamp_16bit_rgb_le(void **state)
{
    (void)state;
    stamp_case(3, 16, 0, 0);
}

/* ---- info and plain output -------------------------------------------- */

static void test_info(void **state)
{
    (void)state;
    gen_dpx g;
    gen_dpx_default(&g);
    g.user_bytes = 300;
    g.fill_header = 1;
    g.second_element = 1;
    cm_image *src = test_frame(64, 32, 3, 3, 16, CEL_FLAT);
    path_buf p = tmp_path("info.dpx");
    assert_int_equal(gen_write_dpx(p.s, src, &g), 0);
    cm_image *img = test_must_read(NULL, p.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.format, "dpx");
    assert_string_equal(info.color_type, "rgb");
    assert_int_equal(info.bit_depth, 10);
    assert_int_equal(info.converted, 0);
    assert_string_equal(info_tag(&info, "byte_order"), "big-endian");
    assert_string_equal(info_tag(&info, "version"), "V2.0");
    assert_non_null(strstr(info_tag(&info, "packing"), "method A"));
    assert_string_equal(info_tag(&info, "transfer"), "linear");
    assert_string_equal(info_tag(&info, "creator"), "Lasergrain Scanner 2.1");
    assert_string_equal(info_tag(&info, "project"), "Episode 7");
    assert_string_equal(info_tag(&info, "timecode"), "01:02:03:04");
    assert_string_equal(info_tag(&info, "frame_rate"), "24");
    assert_string_equal(info_tag(&info, "user_data"), "300 bytes");
    assert_string_equal(info_tag(&info, "data_offset"), "2348");
    assert_non_null(strstr(info_tag(&info, "elements"), "2 (only the first is marked"));
    cm_image_free(&src);
    cm_image_free(&img);
    unlink(p.s);
}

static void test_plain_write(void **state)
{
    (void)state;
    static const int layouts[][2] = {{1, 8}, {3, 8}, {4, 8}, {1, 16}, {3, 16}, {4, 16}};
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        cm_image *img = test_frame(45, 23, 5, layouts[i][0], layouts[i][1], CEL_TEXTURED);
        path_buf p = tmp_path("plain.DPX"), png = tmp_path("plain.png");
        test_must_write(NULL, img, p.s);
        cm_image *back = test_must_read(NULL, p.s);
        assert_same_pixels(img, back);
        cm_image_info info;
        assert_int_equal(cm_image_get_info(back, &info), CM_OK);
        assert_string_equal(info.format, "dpx");
        assert_null(info_tag(&info, "creator")); /* no tool stamp */
        /* via PNG and back */
        test_must_write(NULL, back, png.s);
        cm_image *from_png = test_must_read(NULL, png.s);
        test_must_write(NULL, from_png, p.s);
        cm_image *again = test_must_read(NULL, p.s);
        assert_same_pixels(img, again);
        cm_image_free(&img);
        cm_image_free(&back);
        cm_image_free(&from_png);
        cm_image_free(&again);
        unlink(p.s);
        unlink(png.s);
    }
    /* grey+alpha has no DPX descriptor */
    cm_image *ga = test_frame(8, 8, 1, 2, 8, CEL_FLAT);
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    path_buf p = tmp_path("ga.dpx");
    unlink(p.s);
    assert_int_equal(cm_image_write(ctx, ga, p.s, 0), CM_E_UNSUPPORTED);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "grey+alpha"));
    assert_false(test_file_exists(p.s));
    cm_ctx_free(&ctx);
    cm_image_free(&ga);
}

/* ---- unsupported and bad input ---------------------------------------- */

static void expect_fail(const char *path, const cm_limits *limits, int status, const char *what)
{
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    int ret = cm_image_read(ctx, path, limits, &img);
    if (ret != status)
        fail_msg("%s: status %d, want %d (%s)", path, ret, status, cm_ctx_last_error(ctx));
    assert_null(img);
    const char *msg = cm_ctx_last_error(ctx);
    assert_non_null(strstr(msg, path));
    assert_null(strchr(msg, '\n'));
    if (what && !strstr(msg, what))
        fail_msg("message '%s' lacks '%s'", msg, what);
    cm_ctx_free(&ctx);
}

static void put32(uint8_t *p, int be, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[be ? i : 3 - i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put16(uint8_t *p, int be, unsigned v)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}

static uint8_t *good_file(size_t *len, int big_endian)
{
    gen_dpx g;
    gen_dpx_default(&g);
    g.big_endian = big_endian;
    g.fill_header = 1;
    g.user_bytes = 64;
    cm_image *src = test_frame(40, 24, 2, 3, 16, CEL_FLAT);
    path_buf p = tmp_path("good.dpx");
    assert_int_equal(gen_write_dpx(p.s, src, &g), 0);
    uint8_t *buf = test_load_file(p.s, len);
    cm_image_free(&src);
    unlink(p.s);
    return buf;
}

static void test_unsupported(void **state)
{
    (void)state;
    size_t len;
    uint8_t *good = good_file(&len, 1);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    path_buf p = tmp_path("unsup.dpx");
    const size_t e = 780;
    struct {
        size_t at;
        int width; /* 1: u8, 2: u16, 4: u32 */
        uint32_t value;
        const char *what;
    } edits[] = {
        {e + 20, 1, 52, "descriptor 52"},
        {e + 20, 1, 100, "descriptor 100"},
        {e + 23, 1, 32, "32-bit"},
        {e + 23, 1, 1, "1-bit"},
        {e + 24, 2, 0, "packing 0"},
        {e + 26, 2, 1, "run-length"},
        {e + 0, 4, 1, "signed"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        memcpy(buf, good, len);
        if (edits[i].width == 1)
            buf[edits[i].at] = (uint8_t)edits[i].value;
        else if (edits[i].width == 2)
            put16(buf + edits[i].at, 1, edits[i].value);
        else
            put32(buf + edits[i].at, 1, edits[i].value);
        test_save_file(p.s, buf, len);
        expect_fail(p.s, NULL, CM_E_UNSUPPORTED, edits[i].what);
    }
    free(buf);
    free(good);
    unlink(p.s);
}

static void bad_header_cases(int be)
{
    size_t len;
    uint8_t *good = good_file(&len, be);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    path_buf p = tmp_path("bad.dpx");
    const size_t e = 780;

    test_save_file(p.s, good, 0);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "empty");
    test_save_file(p.s, be ? "SDPX" : "XPDS", 4);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "truncated");
    /* truncated inside the header, at the image, inside the pixels */
    static const size_t cuts[] = {100, 1000, 1663, 2048, 2200};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        test_save_file(p.s, good, cuts[i]);
        expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);
    }
    test_save_file(p.s, good, len - 1);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "truncated");

    /* offsets: past the end, inside the header, undefined */
    struct {
        size_t at;
        uint32_t value;
        int status;
        const char *what;
    } edits[] = {
        {e + 28, (uint32_t)len + 10, CM_E_CORRUPT, "past the end"},
        {e + 28, 0xfffffff0u, CM_E_CORRUPT, "past the end"},
        {e + 28, 100, CM_E_CORRUPT, "inside the header"},
        {e + 28, (uint32_t)len - 8, CM_E_CORRUPT, "truncated"},
        {772, 0, CM_E_CORRUPT, "image size"},
        {776, 0xffffffffu, CM_E_CORRUPT, "image size"},
        {772, 2000000000u, CM_E_LIMIT, "above the limit"},
        {776, 0x7fffffffu, CM_E_LIMIT, "above the limit"},
        {772, 100000u, CM_E_LIMIT, "100000 x 24"},
        {776, 30, CM_E_CORRUPT, "truncated"},
        {e + 32, 0x10000000u, CM_E_CORRUPT, "truncated"},
        {e + 32, 0xfffffff0u, CM_E_CORRUPT, "truncated"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        memcpy(buf, good, len);
        put32(buf + edits[i].at, be, edits[i].value);
        if (edits[i].at == 772 && edits[i].value == 100000u) {
            cm_limits lim;
            cm_limits_default(&lim);
            lim.max_pixels = 100000u * 24u - 1;
            test_save_file(p.s, buf, len);
            expect_fail(p.s, &lim, edits[i].status, edits[i].what);
            continue;
        }
        test_save_file(p.s, buf, len);
        expect_fail(p.s, NULL, edits[i].status, edits[i].what);
    }
    /* no offset at all */
    memcpy(buf, good, len);
    put32(buf + e + 28, be, 0xffffffffu);
    put32(buf + 4, be, 0);
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "offset");
    /* element count */
    memcpy(buf, good, len);
    put16(buf + 770, be, 0);
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "elements");
    put16(buf + 770, be, 9);
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "elements");

    /* limits */
    cm_limits lim;
    cm_limits_default(&lim);
    test_save_file(p.s, good, len);
    lim.max_meta_bytes = 1000;
    expect_fail(p.s, &lim, CM_E_LIMIT, "header");

    /* flipped header bytes: any status, never a crash or a leak */
    uint32_t rng = 7;
    int ok = 0, bad = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(buf, good, len);
        for (int i = 0; i < 1 + round % 3; i++) {
            rng = rng * 1664525u + 1013904223u;
            /* the fields that matter: magic .. element 0 */
            size_t at = (rng >> 8) % (round % 2 ? 852 : 2048);
            buf[at] ^= (uint8_t)(1u << ((rng >> 4) % 8));
        }
        test_save_file(p.s, buf, len);
        cm_ctx *ctx = NULL;
        cm_image *img = NULL;
        assert_int_equal(cm_ctx_new(&ctx), CM_OK);
        int ret = cm_image_read(ctx, p.s, NULL, &img);
        if (ret == CM_OK) {
            ok++;
            path_buf o = tmp_path("flip-out.dpx");
            unlink(o.s);
            assert_int_equal(cm_image_write(ctx, img, o.s, 0), CM_OK);
            assert_files_equal(p.s, o.s); /* unchanged: the same file */
            unlink(o.s);
        } else {
            bad++;
            assert_null(img);
            assert_non_null(strstr(cm_ctx_last_error(ctx), p.s));
        }
        cm_image_free(&img);
        cm_ctx_free(&ctx);
    }
    print_message("[  INFO    ] flipped header bytes (%s): %d read, %d refused\n",
                  be ? "BE" : "LE", ok, bad);
    free(buf);
    free(good);
    unlink(p.s);
}

static void test_bad_input_be(void **state)
{
    (void)state;
    bad_header_cases(1);
}

static void test_bad_input_le(void **state)
{
    (void)state;
    bad_header_cases(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_round_trips),
        cmocka_unit_test(test_every_code),
        cmocka_unit_test(test_stamp_10bit_rgb_be),
        cmocka_unit_test(test_stamp_10bit_rgba_le_padded),
        cmocka_unit_test(test_stamp_16bit_rgb_le),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_plain_write),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_bad_input_be),
        cmocka_unit_test(test_bad_input_le),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
