/*
 * PNG reading and writing (formats/png_*.c through the cm_image API).
 *
 * Every test image is made here: simple layouts with cm_image_new(), and
 * layouts or chunks celmark's writer never produces (palette, 1/2/4-bit
 * grey, interlacing, colour chunks, text, eXIf, unknown chunks) directly
 * with libpng. Outputs are checked with cm_image_read() for the pixels and
 * with plain libpng reads for the chunks; a small chunk walker checks which
 * chunks come before and after the image data. Bad inputs must give the
 * right status, a message naming the file, and no image.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <png.h>

#include "celmark/common.h"
#include "celmark/image.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------- */

static path_buf tmp_path(const char *name)
{
    return test_tmp_path("png_", name);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

/* Walk the chunk list of a PNG file (test-only; the library uses libpng). */
typedef struct chunk_pos {
    char name[5];
    size_t offset; /* of the length field */
    uint32_t len;
} chunk_pos;

static int list_chunks(const uint8_t *buf, size_t n, chunk_pos *out, int max)
{
    size_t off = 8;
    int k = 0;
    while (off + 12 <= n && k < max) {
        uint32_t len = be32(buf + off);
        memcpy(out[k].name, buf + off + 4, 4);
        out[k].name[4] = '\0';
        out[k].offset = off;
        out[k].len = len;
        k++;
        off += 12 + (size_t)len;
    }
    return k;
}

static int chunk_index(const chunk_pos *c, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].name, name))
            return i;
    return -1;
}

/* ---- writing test files with libpng ----------------------------------- */

typedef void (*setup_fn)(png_structp png, png_infop info, void *arg);

typedef struct rawpng {
    int w, h, depth, ct, interlace;
    const uint8_t *data; /* packed rows as stored in PNG (16 bit big-endian) */
    size_t rowbytes;
    setup_fn pre;  /* before png_write_info */
    setup_fn post; /* after the image, before png_write_end */
    void *arg;
} rawpng;

static void test_png_error(png_structp png, png_const_charp msg)
{
    fprintf(stderr, "libpng (test writer): %s\n", msg);
    png_longjmp(png, 1);
}

static void test_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    fprintf(stderr, "libpng warning (test): %s\n", msg);
}

static void write_raw(const char *path, const rawpng *r)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                              test_png_error, test_png_warning);
    assert_non_null(png);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    png_bytep *rows = malloc((size_t)r->h * sizeof(*rows));
    assert_non_null(rows);
    for (int y = 0; y < r->h; y++)
        rows[y] = (png_bytep)(r->data + (size_t)y * r->rowbytes);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed writing %s", path);
    png_init_io(png, fp);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, NULL, 0);
    png_set_IHDR(png, info, (png_uint_32)r->w, (png_uint_32)r->h, r->depth,
                 r->ct, r->interlace, PNG_COMPRESSION_TYPE_BASE,
                 PNG_FILTER_TYPE_BASE);
    if (r->pre)
        r->pre(png, info, r->arg);
    png_write_info(png, info);
    /* libpng 1.6.39 would write eXIf a second time in png_write_end */
    if (png_get_valid(png, info, PNG_INFO_eXIf))
        png_free_data(png, info, PNG_FREE_EXIF, 0);
    if (r->interlace)
        (void)png_set_interlace_handling(png);
    png_write_image(png, rows);
    if (r->post)
        r->post(png, info, r->arg);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    assert_int_equal(fclose(fp), 0);
}

/* A libpng read of a whole file (chunks before and after IDAT end up in
 * one info), unknown chunks kept. iCCP is read as a raw chunk: Debian's
 * libpng 1.6.39-2+deb12u6 rejects every iCCP chunk ("too short"). */
typedef struct loaded {
    png_structp png;
    png_infop info;
} loaded;

static void load_png(const char *path, loaded *l)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    l->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, test_png_error,
                                    test_png_warning);
    assert_non_null(l->png);
    l->info = png_create_info_struct(l->png);
    assert_non_null(l->info);
    if (setjmp(png_jmpbuf(l->png)))
        fail_msg("libpng failed reading %s", path);
    png_init_io(l->png, fp);
    png_set_keep_unknown_chunks(l->png, PNG_HANDLE_CHUNK_ALWAYS, NULL, 0);
    png_set_keep_unknown_chunks(l->png, PNG_HANDLE_CHUNK_ALWAYS,
                                (png_const_bytep) "iCCP", 1);
    png_read_png(l->png, l->info, PNG_TRANSFORM_IDENTITY, NULL);
    fclose(fp);
}

static void unload_png(loaded *l)
{
    png_destroy_read_struct(&l->png, &l->info, NULL);
}

/* Read path with celmark; must succeed. */
static cm_image *must_read(cm_ctx *ctx, const char *path)
{
    cm_image *img = NULL;
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret != CM_OK)
        fail_msg("cm_image_read(%s) = %d: %s", path, ret, cm_ctx_last_error(ctx));
    assert_non_null(img);
    return img;
}

static void must_write(cm_ctx *ctx, const cm_image *img, const char *path)
{
    unlink(path);
    int ret = cm_image_write(ctx, img, path, 0);
    if (ret != CM_OK)
        fail_msg("cm_image_write(%s) = %d: %s", path, ret, cm_ctx_last_error(ctx));
}

static void assert_same_pixels(const cm_image *a, const cm_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->has_alpha, b->has_alpha);
    assert_int_equal(a->bit_depth, b->bit_depth);
    assert_int_equal(a->sample, b->sample);
    size_t row = (size_t)a->width * (size_t)a->channels * (size_t)(a->bit_depth / 8);
    for (int y = 0; y < a->height; y++)
        assert_memory_equal(a->data + (ptrdiff_t)y * a->stride,
                            b->data + (ptrdiff_t)y * b->stride, row);
}

static unsigned px(const cm_image *img, int x, int y, int c)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    if (img->bit_depth == 16)
        return ((const uint16_t *)(const void *)row)[x * img->channels + c];
    return row[x * img->channels + c];
}

static cm_image *random_image(int w, int h, int channels, int depth)
{
    cm_image *img = NULL;
    int alpha = channels == 2 || channels == 4;
    assert_int_equal(cm_image_new(&img, w, h, channels, alpha, depth), CM_OK);
    for (int y = 0; y < h; y++) {
        uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
        for (int i = 0; i < w * channels; i++) {
            uint32_t v = rnd();
            /* include the extremes */
            if (i % 7 == 0)
                v = (v & 1) ? 0xffffffffu : 0;
            if (depth == 16)
                ((uint16_t *)(void *)row)[i] = (uint16_t)v;
            else
                row[i] = (uint8_t)v;
        }
    }
    return img;
}

static cm_ctx *new_ctx(void)
{
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    return ctx;
}

/* ---- round trips ------------------------------------------------------ */

static void round_trip_layout(int channels, int depth)
{
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY,
                                       PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    cm_ctx *ctx = new_ctx();
    char name[64];
    snprintf(name, sizeof(name), "rt_%d_%d.png", channels, depth);
    path_buf p = tmp_path(name);

    cm_image *img = random_image(37, 23, channels, depth);
    must_write(ctx, img, p.s);
    cm_image *back = must_read(ctx, p.s);
    assert_same_pixels(img, back);

    cm_image_info info;
    assert_int_equal(cm_image_get_info(back, &info), CM_OK);
    assert_string_equal(info.format, "png");
    assert_int_equal(info.converted, 0);
    assert_int_equal(info.interlaced, 0);
    assert_int_equal(info.bit_depth, depth);

    /* The file really is that layout, and 16-bit samples are big-endian in
     * the file whatever the host. */
    loaded l;
    load_png(p.s, &l);
    assert_int_equal(png_get_color_type(l.png, l.info), color_types[channels]);
    assert_int_equal(png_get_bit_depth(l.png, l.info), depth);
    png_bytepp rows = png_get_rows(l.png, l.info);
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < channels; c++) {
                const uint8_t *r = rows[y];
                unsigned file_v = depth == 16
                    ? (unsigned)r[2 * (x * channels + c)] << 8 |
                          r[2 * (x * channels + c) + 1]
                    : r[x * channels + c];
                assert_int_equal(file_v, px(img, x, y, c));
            }
    unload_png(&l);

    /* A second generation is identical too (meta carried, nothing added). */
    path_buf p2 = tmp_path("rt_second.png");
    must_write(ctx, back, p2.s);
    cm_image *back2 = must_read(ctx, p2.s);
    assert_same_pixels(img, back2);

    cm_image_free(&back2);
    cm_image_free(&back);
    cm_image_free(&img);
    assert_null(img);
    unlink(p.s);
    unlink(p2.s);
    cm_ctx_free(&ctx);
}

static void test_round_trip_gray8(void **s) { (void)s; round_trip_layout(1, 8); }
static void test_round_trip_gray16(void **s) { (void)s; round_trip_layout(1, 16); }
static void test_round_trip_ga8(void **s) { (void)s; round_trip_layout(2, 8); }
static void test_round_trip_ga16(void **s) { (void)s; round_trip_layout(2, 16); }
static void test_round_trip_rgb8(void **s) { (void)s; round_trip_layout(3, 8); }
static void test_round_trip_rgb16(void **s) { (void)s; round_trip_layout(3, 16); }
static void test_round_trip_rgba8(void **s) { (void)s; round_trip_layout(4, 8); }
static void test_round_trip_rgba16(void **s) { (void)s; round_trip_layout(4, 16); }

/* ---- palette ---------------------------------------------------------- */

#define PAL_W 13
#define PAL_H 7
#define PAL_N 6

static const png_color pal_colours[PAL_N] = {
    {0, 0, 0}, {255, 255, 255}, {200, 30, 40}, {12, 180, 90}, {7, 8, 250}, {128, 127, 126}};
static const png_byte pal_alpha[4] = {0, 128, 255, 17}; /* entries 4, 5: opaque */

typedef struct pal_arg {
    int trns;
} pal_arg;

static void pal_pre(png_structp png, png_infop info, void *arg)
{
    const pal_arg *a = arg;
    png_set_PLTE(png, info, pal_colours, PAL_N);
    if (a->trns)
        png_set_tRNS(png, info, pal_alpha, 4, NULL);
    png_color_16 bg = {0};
    bg.index = 2;
    png_set_bKGD(png, info, &bg);
    png_color_8 sb = {0};
    sb.red = 5;
    sb.green = 6;
    sb.blue = 5;
    png_set_sBIT(png, info, &sb);
}

static void palette_case(int trns, int depth)
{
    cm_ctx *ctx = new_ctx();
    uint8_t idx[PAL_H][PAL_W];
    uint8_t packed[PAL_H][PAL_W];
    memset(packed, 0, sizeof(packed));
    int per_byte = 8 / depth;
    for (int y = 0; y < PAL_H; y++)
        for (int x = 0; x < PAL_W; x++) {
            idx[y][x] = (uint8_t)((x * 3 + y * 5) % PAL_N);
            int shift = 8 - depth * (x % per_byte + 1);
            packed[y][x / per_byte] |= (uint8_t)(idx[y][x] << shift);
        }
    pal_arg a = {trns};
    rawpng r = {PAL_W, PAL_H, depth, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                &packed[0][0], PAL_W, pal_pre, NULL, &a};
    path_buf in = tmp_path("pal_in.png"), out = tmp_path("pal_out.png");
    write_raw(in.s, &r);

    cm_image *img = must_read(ctx, in.s);
    int ch = trns ? 4 : 3;
    assert_int_equal(img->channels, ch);
    assert_int_equal(img->has_alpha, trns);
    assert_int_equal(img->bit_depth, 8);
    for (int y = 0; y < PAL_H; y++)
        for (int x = 0; x < PAL_W; x++) {
            const png_color *c = &pal_colours[idx[y][x]];
            assert_int_equal(px(img, x, y, 0), c->red);
            assert_int_equal(px(img, x, y, 1), c->green);
            assert_int_equal(px(img, x, y, 2), c->blue);
            if (trns)
                assert_int_equal(px(img, x, y, 3),
                                 idx[y][x] < 4 ? pal_alpha[idx[y][x]] : 255);
        }
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.color_type, "palette");
    assert_int_equal(info.bit_depth, depth);
    assert_int_equal(info.channels, ch);
    assert_int_equal(info.converted, 1);

    must_write(ctx, img, out.s);
    loaded l;
    load_png(out.s, &l);
    assert_int_equal(png_get_color_type(l.png, l.info),
                     trns ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB);
    assert_int_equal(png_get_bit_depth(l.png, l.info), 8);
    assert_false(png_get_valid(l.png, l.info, PNG_INFO_tRNS));
    png_bytepp rows = png_get_rows(l.png, l.info);
    for (int y = 0; y < PAL_H; y++)
        for (int x = 0; x < PAL_W; x++)
            for (int c = 0; c < ch; c++)
                assert_int_equal(rows[y][x * ch + c], px(img, x, y, c));
    /* bKGD index translated to the palette colour, sBIT kept */
    png_color_16p bg;
    assert_true(png_get_bKGD(l.png, l.info, &bg));
    assert_int_equal(bg->red, 200);
    assert_int_equal(bg->green, 30);
    assert_int_equal(bg->blue, 40);
    png_color_8p sb;
    assert_true(png_get_sBIT(l.png, l.info, &sb));
    assert_int_equal(sb->red, 5);
    assert_int_equal(sb->green, 6);
    assert_int_equal(sb->blue, 5);
    if (trns)
        assert_int_equal(sb->alpha, 8);
    unload_png(&l);

    cm_image *back = must_read(ctx, out.s);
    assert_same_pixels(img, back);
    cm_image_free(&back);
    cm_image_free(&img);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

static void test_palette(void **s) { (void)s; palette_case(0, 8); }
static void test_palette_trns(void **s) { (void)s; palette_case(1, 8); }
static void test_palette_4bit(void **s) { (void)s; palette_case(0, 4); }
static void test_palette_4bit_trns(void **s) { (void)s; palette_case(1, 4); }

/* ---- low bit depth grey, grey + tRNS ---------------------------------- */

typedef struct trns_arg {
    int set;
    png_uint_16 grey;
} trns_arg;

static void trns_pre(png_structp png, png_infop info, void *arg)
{
    const trns_arg *a = arg;
    if (a->set) {
        png_color_16 tc = {0};
        tc.gray = a->grey;
        png_set_tRNS(png, info, NULL, 0, &tc);
        png_color_16 bg = {0};
        bg.gray = a->grey;
        png_set_bKGD(png, info, &bg);
    }
}

static void rgb_key_pre(png_structp png, png_infop info, void *arg)
{
    png_set_tRNS(png, info, NULL, 0, (png_color_16p)arg);
}

static void low_grey_case(int depth, int with_trns)
{
    cm_ctx *ctx = new_ctx();
    enum { W = 19, H = 5 };
    uint8_t packed[H][W];
    uint8_t val[H][W];
    int per_byte = 8 / depth, maxv = (1 << depth) - 1;
    memset(packed, 0, sizeof(packed));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            val[y][x] = (uint8_t)((x + 2 * y) % (maxv + 1));
            int shift = 8 - depth * (x % per_byte + 1);
            packed[y][x / per_byte] |= (uint8_t)(val[y][x] << shift);
        }
    trns_arg a = {with_trns, (png_uint_16)(maxv > 1 ? 1 : 0)};
    rawpng r = {W, H, depth, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                &packed[0][0], W, trns_pre, NULL, &a};
    path_buf in = tmp_path("lowgrey_in.png"), out = tmp_path("lowgrey_out.png");
    write_raw(in.s, &r);

    cm_image *img = must_read(ctx, in.s);
    assert_int_equal(img->channels, 1);
    assert_int_equal(img->bit_depth, 8);
    assert_int_equal(img->has_alpha, 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            assert_int_equal(px(img, x, y, 0), val[y][x] * (255 / maxv));
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_int_equal(info.converted, 1);
    assert_int_equal(info.bit_depth, depth);
    assert_string_equal(info.color_type, "gray");

    must_write(ctx, img, out.s);
    loaded l;
    load_png(out.s, &l);
    assert_int_equal(png_get_color_type(l.png, l.info), PNG_COLOR_TYPE_GRAY);
    assert_int_equal(png_get_bit_depth(l.png, l.info), 8);
    png_bytep ta;
    int nt;
    png_color_16p tc;
    if (with_trns) {
        assert_true(png_get_tRNS(l.png, l.info, &ta, &nt, &tc));
        assert_int_equal(tc->gray, a.grey * (255 / maxv));
        png_color_16p bg;
        assert_true(png_get_bKGD(l.png, l.info, &bg));
        assert_int_equal(bg->gray, a.grey * (255 / maxv));
    } else {
        assert_false(png_get_valid(l.png, l.info, PNG_INFO_tRNS));
    }
    unload_png(&l);
    cm_image_free(&img);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

static void test_grey_1bit(void **s) { (void)s; low_grey_case(1, 0); }
static void test_grey_2bit(void **s) { (void)s; low_grey_case(2, 0); }
static void test_grey_4bit(void **s) { (void)s; low_grey_case(4, 0); }
static void test_grey_2bit_trns(void **s) { (void)s; low_grey_case(2, 1); }

static void grey_trns_case(int depth)
{
    cm_ctx *ctx = new_ctx();
    enum { W = 8, H = 4 };
    uint8_t data[H][W * 2];
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W * 2; i++)
            data[y][i] = (uint8_t)rnd();
    trns_arg a = {1, depth == 16 ? 0x1234 : 0x56};
    rawpng r = {W, H, depth, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                &data[0][0], W * 2, trns_pre, NULL, &a};
    path_buf in = tmp_path("greytrns_in.png"), out = tmp_path("greytrns_out.png");
    write_raw(in.s, &r);
    cm_image *img = must_read(ctx, in.s);
    assert_int_equal(img->channels, 1); /* kept as grey, tRNS carried */
    assert_int_equal(img->has_alpha, 0);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_int_equal(info.converted, 0);
    must_write(ctx, img, out.s);
    loaded l;
    load_png(out.s, &l);
    png_bytep ta;
    int nt;
    png_color_16p tc;
    assert_true(png_get_tRNS(l.png, l.info, &ta, &nt, &tc));
    assert_int_equal(tc->gray, a.grey);
    assert_int_equal(png_get_bit_depth(l.png, l.info), depth);
    unload_png(&l);
    cm_image *back = must_read(ctx, out.s);
    assert_same_pixels(img, back);
    cm_image_free(&back);
    cm_image_free(&img);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

/* Marks never change which pixels a tRNS colour key hides: keyed pixels
 * keep their samples, and a pixel the mark moves onto the key is nudged
 * off it (pixels/planes.c cm_image_apply_marks). */
static void trns_marks_case(int channels)
{
    cm_ctx *ctx = new_ctx();
    enum { W = 32, H = 8 };
    const unsigned key[3] = {0x56, 0x80, 0x40};
    uint8_t data[H * W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++) {
                /* every 4th pixel keyed, the others one code value off it */
                int off = x % 4 == 0 ? 0 : (x % 4 == 1 ? 1 : -1);
                data[(y * W + x) * channels + c] =
                    (uint8_t)(key[c] + (c == channels - 1 ? off : 0));
            }
    trns_arg a = {1, (png_uint_16)key[0]};
    rawpng r = {W, H, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, data, (size_t)W * (size_t)channels,
                channels == 1 ? trns_pre : NULL, NULL, &a};
    if (channels == 3) {
        r.pre = NULL;
        r.post = NULL;
    }
    path_buf in = tmp_path("trnsmark_in.png");
    if (channels == 3) {
        /* RGB key: set through a small pre hook of its own */
        static png_color_16 rgbkey;
        rgbkey.red = (png_uint_16)key[0];
        rgbkey.green = (png_uint_16)key[1];
        rgbkey.blue = (png_uint_16)key[2];
        r.pre = rgb_key_pre;
        r.arg = &rgbkey;
    }
    write_raw(in.s, &r);
    cm_image *img = must_read(ctx, in.s);
    assert_int_equal(img->has_alpha, 0);
    cm_plane luma;
    assert_int_equal(cm_image_to_plane(ctx, img, &luma), CM_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) /* push every pixel toward the key, or through it */
            luma.data[y * luma.stride + x] += x % 4 == 1 ? -1.0f : (x % 4 == 2 ? 1.0f : 0.6f);
    assert_int_equal(cm_image_apply_marks(ctx, img, &luma, NULL), CM_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int on_key = 1;
            for (int c = 0; c < channels; c++)
                on_key &= px(img, x, y, c) == key[c];
            assert_int_equal(on_key, x % 4 == 0);
        }
    cm_plane_free(&luma);
    cm_image_free(&img);
    unlink(in.s);
    cm_ctx_free(&ctx);
}

static void test_trns_marks_grey(void **s) { (void)s; trns_marks_case(1); }
static void test_trns_marks_rgb(void **s) { (void)s; trns_marks_case(3); }

static void test_grey_trns8(void **s) { (void)s; grey_trns_case(8); }
static void test_grey_trns16(void **s) { (void)s; grey_trns_case(16); }

/* ---- interlaced ------------------------------------------------------- */

static void interlaced_case(int ct, int depth, int channels)
{
    cm_ctx *ctx = new_ctx();
    enum { W = 13, H = 11 };
    int bps = depth / 8;
    size_t rowbytes = (size_t)W * channels * bps;
    uint8_t *data = malloc(rowbytes * H);
    assert_non_null(data);
    for (size_t i = 0; i < rowbytes * H; i++)
        data[i] = (uint8_t)rnd();
    rawpng r = {W, H, depth, ct, PNG_INTERLACE_ADAM7, data, rowbytes, NULL, NULL, NULL};
    path_buf in = tmp_path("adam7_in.png"), out = tmp_path("adam7_out.png");
    write_raw(in.s, &r);

    cm_image *img = must_read(ctx, in.s);
    assert_int_equal(img->channels, channels);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++) {
                const uint8_t *p = data + (size_t)y * rowbytes + (size_t)(x * channels + c) * bps;
                unsigned v = bps == 2 ? (unsigned)p[0] << 8 | p[1] : p[0];
                assert_int_equal(px(img, x, y, c), v);
            }
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_int_equal(info.interlaced, 1);

    must_write(ctx, img, out.s);
    loaded l;
    load_png(out.s, &l);
    assert_int_equal(png_get_interlace_type(l.png, l.info), PNG_INTERLACE_ADAM7);
    unload_png(&l);
    cm_image *back = must_read(ctx, out.s);
    assert_same_pixels(img, back);
    cm_image_free(&back);
    cm_image_free(&img);
    free(data);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

static void test_interlaced_rgb8(void **s) { (void)s; interlaced_case(PNG_COLOR_TYPE_RGB, 8, 3); }
static void test_interlaced_grey16(void **s) { (void)s; interlaced_case(PNG_COLOR_TYPE_GRAY, 16, 1); }
static void test_interlaced_rgba16(void **s) { (void)s; interlaced_case(PNG_COLOR_TYPE_RGB_ALPHA, 16, 4); }

/* ---- ancillary chunks ------------------------------------------------- */

/* A minimal but valid ICC header (132 bytes, no tags) that libpng accepts
 * for an RGB image. */
static void make_icc(uint8_t icc[132])
{
    static const uint8_t d50[12] = {0x00, 0x00, 0xf6, 0xd6, 0x00, 0x01,
                                    0x00, 0x00, 0x00, 0x00, 0xd3, 0x2d};
    memset(icc, 0, 132);
    put_be32(icc + 0, 132);
    memcpy(icc + 4, "cmrk", 4);        /* CMM */
    put_be32(icc + 8, 0x02100000);     /* version 2.1 */
    memcpy(icc + 12, "mntr", 4);       /* display class */
    memcpy(icc + 16, "RGB ", 4);       /* colour space */
    memcpy(icc + 20, "XYZ ", 4);       /* PCS */
    memcpy(icc + 36, "acsp", 4);       /* magic */
    put_be32(icc + 64, 0);             /* perceptual */
    memcpy(icc + 68, d50, 12);         /* PCS illuminant */
    memcpy(icc + 80, "celm", 4);       /* creator */
    for (int i = 84; i < 100; i++)     /* profile id: arbitrary bytes */
        icc[i] = (uint8_t)(i * 7);
    put_be32(icc + 128, 0);            /* tag count */
}

static uint8_t test_icc[132];
static const uint8_t test_exif[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 0, 1, 2, 3, 4};
static const uint8_t unk_before[] = "cel-layer: ink/paint 3";
static const uint8_t unk_after[] = {0, 1, 2, 3, 254, 255};

static png_text pre_texts[4];
static png_text post_texts[1];

static void init_texts(void)
{
    memset(pre_texts, 0, sizeof(pre_texts));
    memset(post_texts, 0, sizeof(post_texts));
    pre_texts[0].compression = PNG_TEXT_COMPRESSION_NONE;
    pre_texts[0].key = "Title";
    pre_texts[0].text = "Cel 42, take 3";
    pre_texts[1].compression = PNG_TEXT_COMPRESSION_zTXt;
    pre_texts[1].key = "Comment";
    pre_texts[1].text = "a longer comment, compressed with zlib in a zTXt chunk "
                        "a longer comment, compressed with zlib in a zTXt chunk";
    pre_texts[2].compression = PNG_ITXT_COMPRESSION_NONE;
    pre_texts[2].key = "Author";
    pre_texts[2].lang = "ja";
    pre_texts[2].lang_key = "\xe4\xbd\x9c\xe8\x80\x85"; /* 作者 */
    pre_texts[2].text = "\xe5\xb1\xb1\xe7\x94\xb0";     /* 山田 */
    pre_texts[3].compression = PNG_ITXT_COMPRESSION_zTXt;
    pre_texts[3].key = "Description";
    pre_texts[3].lang = "en";
    pre_texts[3].lang_key = "Description";
    pre_texts[3].text = "compressed international text, compressed international text";
    post_texts[0].compression = PNG_TEXT_COMPRESSION_NONE;
    post_texts[0].key = "Source";
    post_texts[0].text = "after the image data";
}

static void chunks_pre(png_structp png, png_infop info, void *arg)
{
    (void)arg;
    png_set_iCCP(png, info, "Studio RGB", PNG_COMPRESSION_TYPE_BASE, test_icc,
                 sizeof(test_icc));
    png_set_gAMA_fixed(png, info, 45000);
    png_set_cHRM_fixed(png, info, 31270, 32900, 64000, 33000, 30000, 60000,
                       15000, 6000);
    png_set_pHYs(png, info, 3780, 3780, PNG_RESOLUTION_METER);
    png_set_text(png, info, pre_texts, 4);
    png_set_eXIf_1(png, info, sizeof(test_exif), (png_bytep)test_exif);
    png_color_8 sb = {0};
    sb.red = 7;
    sb.green = 8;
    sb.blue = 6;
    png_set_sBIT(png, info, &sb);
    png_color_16 bg = {0};
    bg.red = 10;
    bg.green = 20;
    bg.blue = 30;
    png_set_bKGD(png, info, &bg);
    png_time t = {2024, 3, 15, 12, 34, 56};
    png_set_tIME(png, info, &t);
    png_unknown_chunk u[3];
    memset(u, 0, sizeof(u));
    memcpy(u[0].name, "quIk", 5);
    u[0].data = (png_bytep)unk_before;
    u[0].size = sizeof(unk_before);
    u[0].location = PNG_HAVE_IHDR;
    memcpy(u[1].name, "afTr", 5);
    u[1].data = (png_bytep)unk_after;
    u[1].size = sizeof(unk_after);
    u[1].location = PNG_AFTER_IDAT;
    memcpy(u[2].name, "iDOT", 5); /* unsafe to copy: must be dropped */
    u[2].data = (png_bytep)unk_after;
    u[2].size = sizeof(unk_after);
    u[2].location = PNG_HAVE_IHDR;
    png_set_unknown_chunks(png, info, u, 3);
}

static void chunks_post(png_structp png, png_infop info, void *arg)
{
    (void)arg;
    png_set_text(png, info, post_texts, 1);
}

static const char *find_tag(const cm_image_info *info, const char *key)
{
    for (int i = 0; i < info->ntags; i++)
        if (!strcmp(info->tags[i].key, key))
            return info->tags[i].value;
    return NULL;
}

static const png_unknown_chunk *find_unknown(const loaded *l, const char *name)
{
    png_unknown_chunkp u;
    int n = png_get_unknown_chunks(l->png, l->info, &u);
    for (int i = 0; i < n; i++)
        if (!strcmp((const char *)u[i].name, name))
            return &u[i];
    return NULL;
}

static void check_text(const png_text *got, const png_text *want)
{
    assert_int_equal(got->compression, want->compression);
    assert_string_equal(got->key, want->key);
    assert_string_equal(got->text, want->text);
    if (want->compression > 0) {
        assert_string_equal(got->lang, want->lang);
        assert_string_equal(got->lang_key, want->lang_key);
    }
}

static void test_ancillary_chunks(void **s)
{
    (void)s;
    cm_ctx *ctx = new_ctx();
    enum { W = 16, H = 9 };
    uint8_t data[H][W * 3];
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W * 3; i++)
            data[y][i] = (uint8_t)rnd();
    make_icc(test_icc);
    init_texts();
    rawpng r = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, &data[0][0],
                W * 3, chunks_pre, chunks_post, NULL};
    path_buf in = tmp_path("chunks_in.png"), out = tmp_path("chunks_out.png");
    write_raw(in.s, &r);

    cm_image *img = must_read(ctx, in.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_non_null(find_tag(&info, "gamma"));
    assert_string_equal(find_tag(&info, "gamma"), "0.45000");
    assert_non_null(find_tag(&info, "chromaticities"));
    assert_non_null(strstr(find_tag(&info, "icc_profile"), "Studio RGB"));
    assert_non_null(strstr(find_tag(&info, "icc_profile"), "bytes"));
    assert_string_equal(find_tag(&info, "pixels_per_unit"), "3780 x 3780 per metre");
    assert_string_equal(find_tag(&info, "resolution"), "96.0 x 96.0 dpi");
    assert_string_equal(find_tag(&info, "text"),
                        "Title,Comment,Author,Description,Source");
    assert_string_equal(find_tag(&info, "exif"), "14 bytes");
    assert_string_equal(find_tag(&info, "sbit"), "7,8,6");
    assert_string_equal(find_tag(&info, "background"), "rgb 10,20,30");
    assert_string_equal(find_tag(&info, "time"), "2024-03-15 12:34:56");
    assert_string_equal(find_tag(&info, "chunks"), "quIk,afTr");
    assert_string_equal(find_tag(&info, "dropped_chunks"), "iDOT");
    assert_null(find_tag(&info, "srgb_intent"));

    must_write(ctx, img, out.s);
    cm_image *back = must_read(ctx, out.s);
    assert_same_pixels(img, back);
    cm_image_free(&back);

    /* content, through libpng */
    loaded l;
    load_png(out.s, &l);
    /* iCCP: the same chunk data (keyword, method, compressed profile) */
    loaded src;
    load_png(in.s, &src);
    const png_unknown_chunk *icc_in = find_unknown(&src, "iCCP");
    const png_unknown_chunk *icc_out = find_unknown(&l, "iCCP");
    assert_non_null(icc_in);
    assert_non_null(icc_out);
    assert_int_equal(icc_out->size, icc_in->size);
    assert_memory_equal(icc_out->data, icc_in->data, icc_in->size);
    assert_memory_equal(icc_out->data, "Studio RGB\0\0", 12);
    unload_png(&src);
    png_fixed_point g;
    assert_true(png_get_gAMA_fixed(l.png, l.info, &g));
    assert_int_equal(g, 45000);
    png_fixed_point c[8];
    assert_true(png_get_cHRM_fixed(l.png, l.info, &c[0], &c[1], &c[2], &c[3],
                                   &c[4], &c[5], &c[6], &c[7]));
    const png_fixed_point want_c[8] = {31270, 32900, 64000, 33000,
                                       30000, 60000, 15000, 6000};
    for (int i = 0; i < 8; i++)
        assert_int_equal(c[i], want_c[i]);
    png_uint_32 rx, ry;
    int unit;
    assert_true(png_get_pHYs(l.png, l.info, &rx, &ry, &unit));
    assert_int_equal(rx, 3780);
    assert_int_equal(ry, 3780);
    assert_int_equal(unit, PNG_RESOLUTION_METER);
    png_textp t;
    int nt = 0;
    png_get_text(l.png, l.info, &t, &nt);
    assert_int_equal(nt, 5);
    for (int i = 0; i < 4; i++)
        check_text(&t[i], &pre_texts[i]);
    check_text(&t[4], &post_texts[0]);
    png_bytep ex;
    png_uint_32 nex;
    assert_true(png_get_eXIf_1(l.png, l.info, &nex, &ex));
    assert_int_equal(nex, sizeof(test_exif));
    assert_memory_equal(ex, test_exif, sizeof(test_exif));
    png_color_8p sb;
    assert_true(png_get_sBIT(l.png, l.info, &sb));
    assert_int_equal(sb->red, 7);
    assert_int_equal(sb->green, 8);
    assert_int_equal(sb->blue, 6);
    png_color_16p bg;
    assert_true(png_get_bKGD(l.png, l.info, &bg));
    assert_int_equal(bg->red, 10);
    assert_int_equal(bg->green, 20);
    assert_int_equal(bg->blue, 30);
    png_timep tm;
    assert_true(png_get_tIME(l.png, l.info, &tm));
    assert_int_equal(tm->year, 2024);
    assert_int_equal(tm->month, 3);
    assert_int_equal(tm->day, 15);
    assert_int_equal(tm->hour, 12);
    assert_int_equal(tm->minute, 34);
    assert_int_equal(tm->second, 56);
    png_unknown_chunkp u;
    assert_int_equal(png_get_unknown_chunks(l.png, l.info, &u), 3);
    const png_unknown_chunk *q = find_unknown(&l, "quIk");
    assert_non_null(q);
    assert_int_equal(q->size, sizeof(unk_before));
    assert_memory_equal(q->data, unk_before, sizeof(unk_before));
    q = find_unknown(&l, "afTr");
    assert_non_null(q);
    assert_int_equal(q->size, sizeof(unk_after));
    assert_memory_equal(q->data, unk_after, sizeof(unk_after));
    assert_null(find_unknown(&l, "iDOT"));
    unload_png(&l);

    /* locations: before / after the image data as in the source, no sRGB
     * added, unsafe iDOT gone */
    size_t n;
    uint8_t *buf = test_load_file(out.s, &n);
    chunk_pos cp[64];
    int nc = list_chunks(buf, n, cp, 64);
    int idat = chunk_index(cp, nc, "IDAT");
    assert_true(idat > 0);
    assert_true(chunk_index(cp, nc, "quIk") < idat);
    assert_true(chunk_index(cp, nc, "iCCP") < idat);
    assert_true(chunk_index(cp, nc, "eXIf") < idat);
    assert_true(chunk_index(cp, nc, "tIME") < idat);
    assert_true(chunk_index(cp, nc, "afTr") > idat);
    assert_int_equal(chunk_index(cp, nc, "iDOT"), -1);
    assert_int_equal(chunk_index(cp, nc, "sRGB"), -1);
    int nexif = 0;
    for (int i = 0; i < nc; i++)
        nexif += !strcmp(cp[i].name, "eXIf");
    assert_int_equal(nexif, 1);
    int last_text = -1;
    for (int i = 0; i < nc; i++)
        if (!strcmp(cp[i].name, "tEXt"))
            last_text = i;
    assert_true(last_text > idat); /* "Source" stays after IDAT */
    assert_string_equal(cp[nc - 1].name, "IEND");
    free(buf);

    cm_image_free(&img);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

static void srgb_pre(png_structp png, png_infop info, void *arg)
{
    (void)arg;
    png_set_sRGB(png, info, PNG_sRGB_INTENT_RELATIVE);
}

/* sRGB alone stays alone (libpng would report gAMA/cHRM as valid). */
static void test_srgb_only(void **s)
{
    (void)s;
    cm_ctx *ctx = new_ctx();
    uint8_t data[4 * 4 * 3];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)rnd();
    rawpng r = {4, 4, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, data, 12,
                srgb_pre, NULL, NULL};
    path_buf in = tmp_path("srgb_in.png"), out = tmp_path("srgb_out.png");
    write_raw(in.s, &r);
    cm_image *img = must_read(ctx, in.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(find_tag(&info, "srgb_intent"), "relative colorimetric");
    assert_null(find_tag(&info, "gamma"));
    assert_null(find_tag(&info, "chromaticities"));
    must_write(ctx, img, out.s);

    size_t n;
    uint8_t *buf = test_load_file(out.s, &n);
    chunk_pos cp[32];
    int nc = list_chunks(buf, n, cp, 32);
    int i = chunk_index(cp, nc, "sRGB");
    assert_true(i > 0);
    assert_int_equal(buf[cp[i].offset + 8], PNG_sRGB_INTENT_RELATIVE);
    assert_int_equal(chunk_index(cp, nc, "gAMA"), -1);
    assert_int_equal(chunk_index(cp, nc, "cHRM"), -1);
    free(buf);
    cm_image_free(&img);
    unlink(in.s);
    unlink(out.s);
    cm_ctx_free(&ctx);
}

/* ---- determinism ------------------------------------------------------ */

static void test_deterministic_write(void **s)
{
    (void)s;
    cm_ctx *ctx = new_ctx();
    cm_image *img = random_image(64, 48, 4, 16);
    path_buf a = tmp_path("det_a.png"), b = tmp_path("det_b.png");
    must_write(ctx, img, a.s);
    must_write(ctx, img, b.s);
    size_t na, nb;
    uint8_t *ba = test_load_file(a.s, &na), *bb = test_load_file(b.s, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    /* no time stamp or tool text added */
    chunk_pos cp[32];
    int nc = list_chunks(ba, na, cp, 32);
    assert_int_equal(chunk_index(cp, nc, "tIME"), -1);
    assert_int_equal(chunk_index(cp, nc, "tEXt"), -1);
    assert_int_equal(chunk_index(cp, nc, "iTXt"), -1);
    free(ba);
    free(bb);

    /* and with metadata carried: read back, write twice */
    cm_image *back = must_read(ctx, a.s);
    must_write(ctx, back, b.s);
    ba = test_load_file(a.s, &na);
    bb = test_load_file(b.s, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);
    cm_image_free(&back);
    cm_image_free(&img);
    unlink(a.s);
    unlink(b.s);
    cm_ctx_free(&ctx);
}

/* ---- bad input -------------------------------------------------------- */

/* Read must fail with status; the message names the file; no image. */
static void expect_read_fail(const char *path, int status, const char *needle)
{
    cm_ctx *ctx = new_ctx();
    cm_image *img = (cm_image *)(uintptr_t)1; /* must be reset to NULL */
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret != status)
        fail_msg("%s: expected %d, got %d (%s)", path, status, ret,
                 cm_ctx_last_error(ctx));
    assert_null(img);
    assert_int_equal(cm_ctx_last_status(ctx), status);
    const char *msg = cm_ctx_last_error(ctx);
    assert_non_null(strstr(msg, path));
    assert_null(strchr(msg, '\n'));
    if (needle && !strstr(msg, needle))
        fail_msg("message '%s' lacks '%s'", msg, needle);
    cm_ctx_free(&ctx);
}

/* A valid 40 x 30 RGB PNG with noisy pixels (so IDAT is large). */
static uint8_t *valid_png_bytes(size_t *n)
{
    cm_ctx *ctx = new_ctx();
    cm_image *img = random_image(40, 30, 3, 8);
    path_buf p = tmp_path("valid.png");
    must_write(ctx, img, p.s);
    uint8_t *buf = test_load_file(p.s, n);
    unlink(p.s);
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    return buf;
}

static void test_not_png(void **s)
{
    (void)s;
    path_buf p = tmp_path("not.png");
    const char text[] = "this is a text file pretending to be a PNG image\n";
    test_save_file(p.s, text, sizeof(text) - 1);
    expect_read_fail(p.s, CM_E_FORMAT, "not a recognised image format");
    /* A JPEG-like header too */
    const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};
    test_save_file(p.s, jpg, sizeof(jpg));
    expect_read_fail(p.s, CM_E_FORMAT, NULL);
    unlink(p.s);
}

static void test_empty_file(void **s)
{
    (void)s;
    path_buf p = tmp_path("empty.png");
    test_save_file(p.s, "", 0);
    expect_read_fail(p.s, CM_E_CORRUPT, "empty file");
    unlink(p.s);
}

static void test_truncated(void **s)
{
    (void)s;
    size_t n;
    uint8_t *buf = valid_png_bytes(&n);
    chunk_pos cp[16];
    int nc = list_chunks(buf, n, cp, 16);
    int idat = chunk_index(cp, nc, "IDAT");
    assert_true(idat >= 0);
    assert_true(cp[idat].len > 100);
    size_t cuts[] = {
        4, 7, 8, 12, 20, 33,                          /* signature, IHDR */
        cp[idat].offset + 4,                          /* in IDAT's header */
        cp[idat].offset + 8 + 10,                     /* start of IDAT data */
        cp[idat].offset + 8 + cp[idat].len / 2,       /* mid-IDAT */
        cp[idat].offset + 8 + cp[idat].len + 2,       /* in IDAT's CRC */
        n - 12,                                       /* IEND missing */
        n - 1,                                        /* IEND's CRC cut */
    };
    path_buf p = tmp_path("trunc.png");
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        test_save_file(p.s, buf, cuts[i]);
        expect_read_fail(p.s, CM_E_CORRUPT, "truncated");
    }
    test_save_file(p.s, buf, cp[idat].offset + 8 + cp[idat].len / 2);
    expect_read_fail(p.s, CM_E_CORRUPT, "IDAT");
    unlink(p.s);
    free(buf);
}

static void test_corrupt_crc(void **s)
{
    (void)s;
    size_t n;
    uint8_t *buf = valid_png_bytes(&n);
    chunk_pos cp[16];
    int nc = list_chunks(buf, n, cp, 16);
    int idat = chunk_index(cp, nc, "IDAT");
    size_t flip = cp[idat].offset + 8 + cp[idat].len / 2;
    buf[flip] ^= 0x40;
    path_buf p = tmp_path("crc.png");
    test_save_file(p.s, buf, n);
    /* zlib's own check (or a bad code) usually trips before the CRC */
    expect_read_fail(p.s, CM_E_CORRUPT, "corrupt PNG: IDAT");
    buf[flip] ^= 0x40;
    /* the CRC field itself */
    size_t crc_at = cp[idat].offset + 8 + cp[idat].len;
    buf[crc_at + 1] ^= 0x01;
    test_save_file(p.s, buf, n);
    expect_read_fail(p.s, CM_E_CORRUPT, "IDAT: CRC error");
    buf[crc_at + 1] ^= 0x01;

    /* Bad zlib data with a correct CRC: still corrupt. */
    uint8_t *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, buf, n);
    size_t data = cp[idat].offset + 8;
    memset(bad + data + 2, 0xff, 40); /* garbage after the zlib header */
    put_be32(bad + data + cp[idat].len, crc32_png(bad + cp[idat].offset + 4, cp[idat].len + 4));
    test_save_file(p.s, bad, n);
    expect_read_fail(p.s, CM_E_CORRUPT, "corrupt PNG");
    unlink(p.s);
    free(bad);
    free(buf);
}

/* A tiny PNG whose IHDR claims w x h (CRC fixed up). */
static void write_claiming(const char *path, uint32_t w, uint32_t h)
{
    size_t n;
    uint8_t *buf = valid_png_bytes(&n);
    /* IHDR data at 16..28, CRC at 29..32 */
    put_be32(buf + 16, w);
    put_be32(buf + 20, h);
    put_be32(buf + 29, crc32_png(buf + 12, 17));
    test_save_file(path, buf, n);
    free(buf);
}

static void test_pixel_limit(void **s)
{
    (void)s;
    path_buf p = tmp_path("huge.png");
    /* 4e8 pixels > 2^28: refused right after the header, before any pixel
     * allocation or decoding (a decode would report missing image data). */
    write_claiming(p.s, 20000, 20000);
    expect_read_fail(p.s, CM_E_LIMIT,
                     "image is 20000 x 20000 (400000000 pixels), above the limit "
                     "of 268435456 pixels");
    /* a caller's lower limit */
    cm_ctx *ctx = new_ctx();
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_pixels = 1000;
    cm_image *img = NULL;
    write_claiming(p.s, 40, 30);
    assert_int_equal(cm_image_read(ctx, p.s, &lim, &img), CM_E_LIMIT);
    assert_null(img);
    assert_non_null(strstr(cm_ctx_last_error(ctx), p.s));
    /* width above libpng's per-dimension limit (2^24) */
    write_claiming(p.s, 20000000, 1);
    expect_read_fail(p.s, CM_E_LIMIT, NULL);
    cm_ctx_free(&ctx);
    unlink(p.s);
}

static void big_text_pre(png_structp png, png_infop info, void *arg)
{
    (void)arg;
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    png_text t = {0};
    t.compression = PNG_TEXT_COMPRESSION_NONE;
    t.key = "Comment";
    t.text = big;
    png_set_text(png, info, &t, 1);
}

static void test_meta_limit(void **s)
{
    (void)s;
    uint8_t data[4 * 3] = {0};
    rawpng r = {2, 2, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, data, 6,
                big_text_pre, NULL, NULL};
    path_buf p = tmp_path("bigtext.png");
    write_raw(p.s, &r);
    cm_ctx *ctx = new_ctx();
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_meta_bytes = 1000;
    cm_image *img = NULL;
    assert_int_equal(cm_image_read(ctx, p.s, &lim, &img), CM_E_LIMIT);
    assert_null(img);
    assert_non_null(strstr(cm_ctx_last_error(ctx), p.s));
    /* and within the default limit it reads */
    assert_int_equal(cm_image_read(ctx, p.s, NULL, &img), CM_OK);
    cm_image_free(&img);
    /* file size limit */
    lim.max_meta_bytes = 1 << 20;
    lim.max_file_bytes = 100;
    assert_int_equal(cm_image_read(ctx, p.s, &lim, &img), CM_E_LIMIT);
    assert_null(img);
    cm_ctx_free(&ctx);
    unlink(p.s);
}

static void test_unreadable_path(void **s)
{
    (void)s;
    path_buf p = tmp_path("does/not/exist.png");
    expect_read_fail(p.s, CM_E_IO, "No such file or directory");
    const char *dir = getenv("CELMARK_TEST_TMP");
    expect_read_fail(dir && *dir ? dir : "/tmp", CM_E_IO, NULL); /* a folder */
}

static void critical_pre(png_structp png, png_infop info, void *arg)
{
    (void)arg;
    png_unknown_chunk u;
    memset(&u, 0, sizeof(u));
    memcpy(u.name, "CRIT", 5);
    u.data = (png_bytep)unk_after;
    u.size = sizeof(unk_after);
    u.location = PNG_HAVE_IHDR;
    png_set_unknown_chunks(png, info, &u, 1);
}

static void test_unknown_critical(void **s)
{
    (void)s;
    uint8_t data[4 * 3] = {0};
    rawpng r = {2, 2, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, data, 6,
                critical_pre, NULL, NULL};
    path_buf p = tmp_path("critical.png");
    write_raw(p.s, &r);
    expect_read_fail(p.s, CM_E_UNSUPPORTED, "CRIT");
    unlink(p.s);
}

static void test_write_errors(void **s)
{
    (void)s;
    cm_ctx *ctx = new_ctx();
    cm_image *img = random_image(8, 8, 3, 8);

    /* missing folder */
    path_buf p = tmp_path("no_such_folder/out.png");
    assert_int_equal(cm_image_write(ctx, img, p.s, 0), CM_E_IO);
    assert_int_equal(cm_ctx_last_status(ctx), CM_E_IO);
    char want[600];
    snprintf(want, sizeof(want),
             "%s: cannot create output: No such file or directory", p.s);
    assert_string_equal(cm_ctx_last_error(ctx), want);
    assert_false(test_file_exists(p.s));

    /* exists, no force: refused, file untouched */
    path_buf e = tmp_path("exists.png");
    const char old[] = "previous content";
    test_save_file(e.s, old, sizeof(old));
    assert_int_equal(cm_image_write(ctx, img, e.s, 0), CM_E_EXISTS);
    snprintf(want, sizeof(want), "%s: already exists; use --force to replace it",
             e.s);
    assert_string_equal(cm_ctx_last_error(ctx), want);
    size_t n;
    uint8_t *buf = test_load_file(e.s, &n);
    assert_int_equal(n, sizeof(old));
    assert_memory_equal(buf, old, n);
    free(buf);

    /* with force: replaced */
    assert_int_equal(cm_image_write(ctx, img, e.s, CM_WRITE_FORCE), CM_OK);
    cm_image *back = must_read(ctx, e.s);
    assert_same_pixels(img, back);
    cm_image_free(&back);

    /* bad arguments */
    assert_int_equal(cm_image_write(ctx, NULL, e.s, CM_WRITE_FORCE), CM_E_INVAL);
    assert_int_equal(cm_image_write(ctx, img, NULL, 0), CM_E_INVAL);
    assert_int_equal(cm_image_write(ctx, img, e.s, 0x100), CM_E_INVAL);
    assert_int_equal(cm_image_read(ctx, NULL, NULL, &back), CM_E_INVAL);
    assert_int_equal(cm_image_read(ctx, e.s, NULL, NULL), CM_E_INVAL);

    unlink(e.s);
    cm_image_free(&img);
    cm_ctx_free(&ctx);
}

/* No test may leave temporary files behind. Runs last. */
/* No temporary file of this test's outputs (all named png_*) is left. The
 * folder is shared with tests running in parallel (ctest -j), whose own
 * temporaries may exist at this moment, so only ours are looked at. */
static void test_no_temp_files_left(void **s)
{
    (void)s;
    const char *dir = getenv("CELMARK_TEST_TMP");
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' 2>/dev/null | grep -q '^\\.png_.*\\.tmp-'",
             dir && *dir ? dir : "/tmp");
    assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_gray8),
        cmocka_unit_test(test_round_trip_gray16),
        cmocka_unit_test(test_round_trip_ga8),
        cmocka_unit_test(test_round_trip_ga16),
        cmocka_unit_test(test_round_trip_rgb8),
        cmocka_unit_test(test_round_trip_rgb16),
        cmocka_unit_test(test_round_trip_rgba8),
        cmocka_unit_test(test_round_trip_rgba16),
        cmocka_unit_test(test_palette),
        cmocka_unit_test(test_palette_trns),
        cmocka_unit_test(test_palette_4bit),
        cmocka_unit_test(test_palette_4bit_trns),
        cmocka_unit_test(test_grey_1bit),
        cmocka_unit_test(test_grey_2bit),
        cmocka_unit_test(test_grey_4bit),
        cmocka_unit_test(test_grey_2bit_trns),
        cmocka_unit_test(test_grey_trns8),
        cmocka_unit_test(test_grey_trns16),
        cmocka_unit_test(test_interlaced_rgb8),
        cmocka_unit_test(test_interlaced_grey16),
        cmocka_unit_test(test_interlaced_rgba16),
        cmocka_unit_test(test_ancillary_chunks),
        cmocka_unit_test(test_srgb_only),
        cmocka_unit_test(test_deterministic_write),
        cmocka_unit_test(test_not_png),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_crc),
        cmocka_unit_test(test_pixel_limit),
        cmocka_unit_test(test_meta_limit),
        cmocka_unit_test(test_unreadable_path),
        cmocka_unit_test(test_unknown_critical),
        cmocka_unit_test(test_trns_marks_grey),
        cmocka_unit_test(test_trns_marks_rgb),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_no_temp_files_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
