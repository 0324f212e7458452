/*
 * Stills read through libav (formats/av.c through the cm_image API).
 *
 * Every input is made here: libav's own encoders write JPEG (mjpeg,
 * yuvj420p and yuvj444p), BMP, TIFF (8 and 16 bit, grey and RGB(A)), GIF
 * (pal8) and WebP when the build has libwebp; a grey JPEG, which libav
 * cannot encode, is written by hand (one DC-only block per 8 x 8, quantiser
 * 1, two-code Huffman tables). The encoders' packets are whole files for
 * these formats (the image2 pipes read the raw bytestream). Lossless formats
 * must read back bit-identical; JPEG and WebP of a flat colour within a
 * small tolerance (which also proves the YUV range is right: a full-range
 * JPEG read as limited range is off by ~14 at 200). Bad inputs (cut,
 * random, text, huge dimensions, flipped bytes) must give a status, a
 * one-line message naming the file, no image, and never a crash.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "celmark/common.h"
#include "celmark/image.h"
#include "testutil.h"
#include "formats/format.h"

/* ---- helpers ---------------------------------------------------------- */

static path_buf tmp_path(const char *name)
{
    return test_tmp_path("av_", name);
}

/* Temporary files of cm_image_write() whose name starts with ".av_". */
static int count_av_temp_files(void)
{
    const char *dir = getenv("CELMARK_TEST_TMP");
    DIR *d = opendir(dir && *dir ? dir : "/tmp");
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, ".av_", 4) && strstr(e->d_name, ".tmp-"))
            n++;
    closedir(d);
    return n;
}

static cm_ctx *new_ctx(void)
{
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    return ctx;
}

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int near(int a, int b, int tol)
{
    return a - b <= tol && b - a <= tol;
}

/* Read path, which must succeed with the given geometry and format. */
static cm_image *must_read(const char *path, int w, int h, int channels,
                           int depth, const char *format)
{
    cm_ctx *ctx = new_ctx();
    cm_image *img = NULL;
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret != CM_OK)
        fail_msg("%s: read failed %d (%s)", path, ret, cm_ctx_last_error(ctx));
    assert_non_null(img);
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    assert_int_equal(img->channels, channels);
    assert_int_equal(img->bit_depth, depth);
    assert_int_equal(img->sample, depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.format, format);
    cm_ctx_free(&ctx);
    return img;
}

/* Read must fail with status (any of the two when status2 != 0); the message
 * names the file and is one line; no image. Returns the status. */
static int expect_fail2(const char *path, const cm_limits *lim, int status,
                        int status2, const char *needle)
{
    cm_ctx *ctx = new_ctx();
    cm_image *img = (cm_image *)(uintptr_t)1; /* must be reset to NULL */
    int ret = cm_image_read(ctx, path, lim, &img);
    if (ret != status && !(status2 && ret == status2))
        fail_msg("%s: expected %d, got %d (%s)", path, status, ret,
                 cm_ctx_last_error(ctx));
    assert_null(img);
    assert_int_equal(cm_ctx_last_status(ctx), ret);
    const char *msg = cm_ctx_last_error(ctx);
    if (!strstr(msg, path))
        fail_msg("message '%s' does not name the file", msg);
    assert_null(strchr(msg, '\n'));
    if (needle && !strstr(msg, needle))
        fail_msg("message '%s' lacks '%s'", msg, needle);
    cm_ctx_free(&ctx);
    return ret;
}

static void expect_fail(const char *path, const cm_limits *lim, int status,
                        const char *needle)
{
    (void)expect_fail2(path, lim, status, 0, needle);
}

/* ---- encoding with libav ---------------------------------------------- */

typedef void (*fill_fn)(AVFrame *f, void *arg);

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

static int encoder_takes(const AVCodec *c, enum AVPixelFormat fmt)
{
    if (!c->pix_fmts)
        return 1;
    for (const enum AVPixelFormat *p = c->pix_fmts; *p != AV_PIX_FMT_NONE; p++)
        if (*p == fmt)
            return 1;
    return 0;
}

/* Encode one w x h frame of fmt filled by fill(); the concatenated packets
 * are the file. Returns 0 and skips (with a message) when this libav has no
 * such encoder or it does not take fmt. */
static int encode(blob *out, const char *encoder, enum AVPixelFormat fmt,
                  int w, int h, enum AVColorRange range, const char *opt,
                  const char *val, fill_fn fill, void *arg)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(encoder);
    memset(out, 0, sizeof(*out));
    if (!codec || !encoder_takes(codec, fmt)) {
        print_message("[  SKIP    ] no %s encoder for %s\n", encoder,
                      av_get_pix_fmt_name(fmt));
        return 0;
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    assert_true(c && f && pkt);
    c->width = w;
    c->height = h;
    c->pix_fmt = fmt;
    c->time_base = (AVRational){1, 25};
    c->color_range = range;
    c->thread_count = 1;
    if (opt)
        assert_true(av_opt_set(c->priv_data, opt, val, 0) >= 0);
    assert_true(avcodec_open2(c, codec, NULL) >= 0);
    f->width = w;
    f->height = h;
    f->format = fmt;
    f->color_range = range;
    assert_true(av_frame_get_buffer(f, 0) >= 0);
    fill(f, arg);
    f->pts = 0;
    assert_true(avcodec_send_frame(c, f) >= 0);
    assert_true(avcodec_send_frame(c, NULL) >= 0);
    for (;;) {
        int ret = avcodec_receive_packet(c, pkt);
        if (ret == AVERROR_EOF)
            break;
        assert_true(ret >= 0);
        out->data = realloc(out->data, out->len + (size_t)pkt->size);
        assert_non_null(out->data);
        memcpy(out->data + out->len, pkt->data, (size_t)pkt->size);
        out->len += (size_t)pkt->size;
        av_packet_unref(pkt);
    }
    assert_true(out->len > 0);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&c);
    return 1;
}

/* Flat full-range BT.601 YCbCr of an RGB colour, planes subsampled or not. */
typedef struct flat_rgb {
    int r, g, b;
} flat_rgb;

static int clamp255(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5);
}

static void fill_flat_yuvj(AVFrame *f, void *arg)
{
    const flat_rgb *c = arg;
    const int yv = clamp255(0.299 * c->r + 0.587 * c->g + 0.114 * c->b);
    const int cb = clamp255(128 - 0.168736 * c->r - 0.331264 * c->g + 0.5 * c->b);
    const int cr = clamp255(128 + 0.5 * c->r - 0.418688 * c->g - 0.081312 * c->b);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    for (int p = 0; p < 3; p++) {
        int pw = p ? AV_CEIL_RSHIFT(f->width, d->log2_chroma_w) : f->width;
        int ph = p ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h) : f->height;
        for (int y = 0; y < ph; y++)
            memset(f->data[p] + (ptrdiff_t)y * f->linesize[p],
                   p == 0 ? yv : p == 1 ? cb : cr, (size_t)pw);
    }
}

/* Random bytes in every plane (sample-exact for packed RGB/grey). */
static void fill_random(AVFrame *f, void *arg)
{
    (void)arg;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    for (int p = 0; p < 4 && f->data[p]; p++) {
        if (p == 1 && (d->flags & AV_PIX_FMT_FLAG_PAL))
            break;
        int ph = (p == 1 || p == 2) ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h)
                                    : f->height;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < f->linesize[p]; x++)
                f->data[p][(ptrdiff_t)y * f->linesize[p] + x] = (uint8_t)rnd();
    }
}

/* pal8: a 4-colour palette, random indices. */
static const uint32_t gif_palette[4] = {0xff000000u, 0xffffffffu, 0xffc83c1eu,
                                        0xff2080f0u};
static void fill_pal4(AVFrame *f, void *arg)
{
    (void)arg;
    uint32_t *pal = (uint32_t *)(void *)f->data[1];
    for (int i = 0; i < 256; i++)
        pal[i] = i < 4 ? gif_palette[i] : 0xff000000u;
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            f->data[0][(ptrdiff_t)y * f->linesize[0] + x] = (uint8_t)(rnd() % 4);
}

static blob jpeg_flat(enum AVPixelFormat fmt, int w, int h, flat_rgb c)
{
    blob b;
    assert_true(encode(&b, "mjpeg", fmt, w, h, AVCOL_RANGE_JPEG, NULL, NULL,
                       fill_flat_yuvj, &c));
    return b;
}

static blob jpeg_noise(int w, int h)
{
    blob b;
    assert_true(encode(&b, "mjpeg", AV_PIX_FMT_YUVJ420P, w, h, AVCOL_RANGE_JPEG,
                       NULL, NULL, fill_random, NULL));
    return b;
}

/* ---- a grey JPEG, by hand ---------------------------------------------- */

typedef struct bitw {
    uint8_t *p;
    size_t n;
    unsigned acc;
    int bits;
} bitw;

static void put_bits(bitw *w, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        w->acc = (w->acc << 1) | ((v >> i) & 1);
        if (++w->bits == 8) {
            w->p[w->n++] = (uint8_t)w->acc;
            if (w->acc == 0xff)
                w->p[w->n++] = 0; /* byte stuffing */
            w->acc = 0;
            w->bits = 0;
        }
    }
}

static void put_bytes(bitw *w, const uint8_t *b, size_t n)
{
    memcpy(w->p + w->n, b, n);
    w->n += n;
}

/* Baseline grey JPEG of a flat value v: quantiser 1, so the DC coefficient
 * 8 (v - 128) decodes exactly. DC codes "00" (diff 0) and "01" (category
 * c), AC code "0" (end of block). */
static blob jpeg_grey(int w, int h, int v)
{
    const int dc = 8 * (v - 128);
    int cat = 0;
    for (int a = dc < 0 ? -dc : dc; a; a >>= 1)
        cat++;
    blob b;
    b.data = calloc(1, 1024 + (size_t)((w + 7) / 8) * (size_t)((h + 7) / 8));
    assert_non_null(b.data);
    bitw bw = {b.data, 0, 0, 0};

    const uint8_t soi[] = {0xff, 0xd8};
    put_bytes(&bw, soi, 2);
    uint8_t dqt[4 + 1 + 64] = {0xff, 0xdb, 0, 67, 0};
    memset(dqt + 5, 1, 64);
    put_bytes(&bw, dqt, sizeof(dqt));
    const uint8_t sof[] = {0xff, 0xc0, 0, 11, 8, (uint8_t)(h >> 8), (uint8_t)h,
                           (uint8_t)(w >> 8), (uint8_t)w, 1, 1, 0x11, 0};
    put_bytes(&bw, sof, sizeof(sof));
    uint8_t dht_dc[4 + 1 + 16 + 2] = {0xff, 0xc4, 0, 21, 0x00, 0, 2};
    dht_dc[21] = 0;
    dht_dc[22] = (uint8_t)(cat ? cat : 1);
    put_bytes(&bw, dht_dc, sizeof(dht_dc));
    uint8_t dht_ac[4 + 1 + 16 + 1] = {0xff, 0xc4, 0, 20, 0x10, 1};
    dht_ac[21] = 0x00;
    put_bytes(&bw, dht_ac, sizeof(dht_ac));
    const uint8_t sos[] = {0xff, 0xda, 0, 8, 1, 1, 0x00, 0, 63, 0};
    put_bytes(&bw, sos, sizeof(sos));

    const int blocks = ((w + 7) / 8) * ((h + 7) / 8);
    for (int i = 0; i < blocks; i++) {
        if (i == 0 && cat) {
            put_bits(&bw, 1, 2); /* "01" */
            put_bits(&bw, (unsigned)(dc > 0 ? dc : dc + (1 << cat) - 1), cat);
        } else {
            put_bits(&bw, 0, 2); /* "00": same DC as before */
        }
        put_bits(&bw, 0, 1); /* end of block */
    }
    if (bw.bits)
        put_bits(&bw, 0xff, 8 - bw.bits); /* pad with ones */
    const uint8_t eoi[] = {0xff, 0xd9};
    put_bytes(&bw, eoi, 2);
    b.len = bw.n;
    return b;
}

/* Offset of the first marker m (0xff m) after SOI, or 0. */
static size_t find_marker(const blob *b, uint8_t m)
{
    for (size_t i = 2; i + 1 < b->len; i++)
        if (b->data[i] == 0xff && b->data[i + 1] == m)
            return i;
    return 0;
}

/* ---- JPEG ------------------------------------------------------------- */

static void jpeg_flat_case(enum AVPixelFormat fmt, int w, int h)
{
    const flat_rgb c = {200, 60, 30};
    blob b = jpeg_flat(fmt, w, h, c);
    path_buf p = tmp_path("flat.jpg");
    test_save_file(p.s, b.data, b.len);
    cm_image *img = must_read(p.s, w, h, 3, 8, "jpeg");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *px = img->data + (ptrdiff_t)y * img->stride + 3 * x;
            if (!near(px[0], c.r, 2) || !near(px[1], c.g, 2) ||
                !near(px[2], c.b, 2))
                fail_msg("%s (%d,%d) = %d,%d,%d, want %d,%d,%d",
                         av_get_pix_fmt_name(fmt), x, y, px[0], px[1], px[2],
                         c.r, c.g, c.b);
        }
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.color_type, "yuv");
    assert_int_equal(info.bit_depth, 8);
    assert_int_equal(info.converted, 1);
    assert_int_equal(info.has_alpha, 0);
    int saw_codec = 0, saw_fmt = 0;
    for (int i = 0; i < info.ntags; i++) {
        if (!strcmp(info.tags[i].key, "codec"))
            saw_codec = !strcmp(info.tags[i].value, "mjpeg");
        if (!strcmp(info.tags[i].key, "pix_fmt"))
            saw_fmt = !strcmp(info.tags[i].value, av_get_pix_fmt_name(fmt));
    }
    assert_true(saw_codec);
    assert_true(saw_fmt);
    cm_image_free(&img);
    unlink(p.s);
    free(b.data);
}

static void test_jpeg_flat_420(void **s) { (void)s; jpeg_flat_case(AV_PIX_FMT_YUVJ420P, 64, 48); }
static void test_jpeg_flat_420_odd(void **s) { (void)s; jpeg_flat_case(AV_PIX_FMT_YUVJ420P, 37, 29); }
static void test_jpeg_flat_444(void **s) { (void)s; jpeg_flat_case(AV_PIX_FMT_YUVJ444P, 40, 24); }

static void test_jpeg_grey(void **s)
{
    (void)s;
    static const int values[] = {200, 17, 128, 255, 0};
    for (size_t k = 0; k < sizeof(values) / sizeof(values[0]); k++) {
        blob b = jpeg_grey(20, 12, values[k]);
        path_buf p = tmp_path("grey.jpg");
        test_save_file(p.s, b.data, b.len);
        cm_image *img = must_read(p.s, 20, 12, 1, 8, "jpeg");
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 20; x++)
                if (!near(img->data[(ptrdiff_t)y * img->stride + x], values[k], 1))
                    fail_msg("grey %d at (%d,%d): %d", values[k], x, y,
                             img->data[(ptrdiff_t)y * img->stride + x]);
        cm_image_info info;
        assert_int_equal(cm_image_get_info(img, &info), CM_OK);
        assert_string_equal(info.color_type, "gray");
        assert_int_equal(info.converted, 0);
        cm_image_free(&img);
        unlink(p.s);
        free(b.data);
    }
}

/* ---- lossless formats ------------------------------------------------- */

/* Encode random pixels of src_fmt, read back, and compare every sample with
 * the source in the output layout (channels, depth). rgb_order: 0 for the
 * source order, 1 for BGR sources (swap R and B). */
static void lossless_case(const char *encoder, enum AVPixelFormat src_fmt,
                          int channels, int depth, int bgr, const char *format,
                          const char *color_type)
{
    const int w = 33, h = 17;
    AVFrame *src = av_frame_alloc();
    assert_non_null(src);
    src->width = w;
    src->height = h;
    src->format = src_fmt;
    assert_true(av_frame_get_buffer(src, 0) >= 0);
    fill_random(src, NULL);

    /* encode a copy of the very pixels in src */
    blob b;
    AVFrame *copy = src;
    const AVCodec *codec = avcodec_find_encoder_by_name(encoder);
    if (!codec || !encoder_takes(codec, src_fmt)) {
        print_message("[  SKIP    ] no %s encoder for %s\n", encoder,
                      av_get_pix_fmt_name(src_fmt));
        av_frame_free(&src);
        return;
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    assert_true(c && pkt);
    c->width = w;
    c->height = h;
    c->pix_fmt = src_fmt;
    c->time_base = (AVRational){1, 25};
    assert_true(avcodec_open2(c, codec, NULL) >= 0);
    assert_true(avcodec_send_frame(c, copy) >= 0);
    assert_true(avcodec_send_frame(c, NULL) >= 0);
    memset(&b, 0, sizeof(b));
    while (avcodec_receive_packet(c, pkt) >= 0) {
        b.data = realloc(b.data, b.len + (size_t)pkt->size);
        assert_non_null(b.data);
        memcpy(b.data + b.len, pkt->data, (size_t)pkt->size);
        b.len += (size_t)pkt->size;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avcodec_free_context(&c);

    path_buf p = tmp_path("lossless.bin");
    test_save_file(p.s, b.data, b.len);
    cm_image *img = must_read(p.s, w, h, channels, depth, format);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.color_type, color_type);

    const int bps = depth / 8;
    for (int y = 0; y < h; y++) {
        const uint8_t *srow = src->data[0] + (ptrdiff_t)y * src->linesize[0];
        const uint8_t *drow = img->data + (ptrdiff_t)y * img->stride;
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < channels; ch++) {
                int sc = ch;
                if (bgr && ch < 3)
                    sc = 2 - ch;
                unsigned want, got;
                if (bps == 2) {
                    /* sources are little-endian *le formats */
                    const uint8_t *q = srow + 2 * (x * channels + sc);
                    want = (unsigned)q[0] | (unsigned)q[1] << 8;
                    got = ((const uint16_t *)(const void *)drow)[x * channels + ch];
                } else {
                    want = srow[x * channels + sc];
                    got = drow[x * channels + ch];
                }
                if (want != got)
                    fail_msg("%s %s (%d,%d) ch %d: %u != %u", encoder,
                             av_get_pix_fmt_name(src_fmt), x, y, ch, got, want);
            }
    }
    cm_image_free(&img);
    unlink(p.s);
    free(b.data);
    av_frame_free(&src);
}

static void test_bmp_rgb24(void **s) { (void)s; lossless_case("bmp", AV_PIX_FMT_BGR24, 3, 8, 1, "bmp", "rgb"); }
static void test_tiff_rgb24(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_RGB24, 3, 8, 0, "tiff", "rgb"); }
static void test_tiff_rgb48(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_RGB48LE, 3, 16, 0, "tiff", "rgb"); }
static void test_tiff_rgba64(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_RGBA64LE, 4, 16, 0, "tiff", "rgba"); }
static void test_tiff_gray8(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_GRAY8, 1, 8, 0, "tiff", "gray"); }
static void test_tiff_gray16(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_GRAY16LE, 1, 16, 0, "tiff", "gray"); }
static void test_tiff_ya8(void **s) { (void)s; lossless_case("tiff", AV_PIX_FMT_YA8, 2, 8, 0, "tiff", "gray+alpha"); }

static void test_gif_palette(void **s)
{
    (void)s;
    const int w = 31, h = 19;
    blob b;
    rng_state = 99;
    if (!encode(&b, "gif", AV_PIX_FMT_PAL8, w, h, AVCOL_RANGE_UNSPECIFIED, NULL,
                NULL, fill_pal4, NULL))
        return;
    assert_memory_equal(b.data, "GIF8", 4); /* a whole file */
    path_buf p = tmp_path("pal.gif");
    test_save_file(p.s, b.data, b.len);
    cm_image *img = must_read(p.s, w, h, 3, 8, "gif");
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.color_type, "palette");
    assert_int_equal(info.converted, 1);
    /* Same indices again: every pixel is its palette colour. */
    rng_state = 99;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t c = gif_palette[rnd() % 4];
            const uint8_t *px = img->data + (ptrdiff_t)y * img->stride + 3 * x;
            if (px[0] != ((c >> 16) & 0xff) || px[1] != ((c >> 8) & 0xff) ||
                px[2] != (c & 0xff))
                fail_msg("gif (%d,%d): %d,%d,%d != %06x", x, y, px[0], px[1],
                         px[2], (unsigned)(c & 0xffffff));
        }
    cm_image_free(&img);
    unlink(p.s);
    free(b.data);
}

static void test_webp(void **s)
{
    (void)s;
    const flat_rgb c = {40, 160, 220};
    blob b;
    /* lossy WebP is limited-range BT.601: exercises the other range */
    if (!encode(&b, "libwebp", AV_PIX_FMT_YUV420P, 30, 22, AVCOL_RANGE_MPEG,
                NULL, NULL, fill_flat_yuvj, (void *)&c))
        return;
    /* fill_flat_yuvj wrote full-range values; read them as limited range:
     * expected RGB is the limited-range decode of those values. */
    const double yv = clamp255(0.299 * c.r + 0.587 * c.g + 0.114 * c.b);
    const double cb = clamp255(128 - 0.168736 * c.r - 0.331264 * c.g + 0.5 * c.b);
    const double cr = clamp255(128 + 0.5 * c.r - 0.418688 * c.g - 0.081312 * c.b);
    const double yy = (yv - 16) * 255.0 / 219.0;
    const double pb = (cb - 128) * 255.0 / 224.0, pr = (cr - 128) * 255.0 / 224.0;
    const int want[3] = {clamp255(yy + 1.402 * pr),
                         clamp255(yy - 0.344136 * pb - 0.714136 * pr),
                         clamp255(yy + 1.772 * pb)};
    path_buf p = tmp_path("flat.webp");
    test_save_file(p.s, b.data, b.len);
    cm_image *img = must_read(p.s, 30, 22, 3, 8, "webp");
    for (int y = 0; y < 22; y++)
        for (int x = 0; x < 30; x++) {
            const uint8_t *px = img->data + (ptrdiff_t)y * img->stride + 3 * x;
            for (int ch = 0; ch < 3; ch++)
                if (!near(px[ch], want[ch], 3))
                    fail_msg("webp (%d,%d) ch %d: %d, want %d", x, y, ch,
                             px[ch], want[ch]);
        }
    cm_image_free(&img);
    unlink(p.s);
    free(b.data);

    /* lossless WebP: exact colours (libav decodes VP8L as ARGB) */
    if (!encode(&b, "libwebp", AV_PIX_FMT_BGRA, 17, 9, AVCOL_RANGE_UNSPECIFIED,
                "lossless", "1", fill_random, NULL))
        return;
    test_save_file(p.s, b.data, b.len);
    cm_ctx *ctx = new_ctx();
    assert_int_equal(cm_image_read(ctx, p.s, NULL, &img), CM_OK);
    assert_int_equal(img->width, 17);
    assert_int_equal(img->channels, 4);
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    unlink(p.s);
    free(b.data);
}

/* ---- bad input -------------------------------------------------------- */

static void test_truncated_jpeg(void **s)
{
    (void)s;
    rng_state = 7;
    blob b = jpeg_noise(64, 64);
    const size_t sos = find_marker(&b, 0xda);
    assert_true(sos > 20 && sos + 40 < b.len);
    path_buf p = tmp_path("cut.jpg");

    /* Cut inside the header (before the scan): must fail. libav's probe
     * scores such a file 7, under MIN_SCORE: "not a recognised image
     * format (starts like JPEG but is truncated or damaged)". */
    const size_t header_cuts[] = {1, 2, 3, 4, 11, 20, sos / 2, sos, sos + 1};
    for (size_t k = 0; k < sizeof(header_cuts) / sizeof(header_cuts[0]); k++) {
        test_save_file(p.s, b.data, header_cuts[k]);
        expect_fail2(p.s, NULL, CM_E_FORMAT, CM_E_CORRUPT, NULL);
    }
    test_save_file(p.s, b.data, sos);
    expect_fail(p.s, NULL, CM_E_FORMAT, "truncated or damaged");

    /* Cut inside the scan: libav decodes what is there (the rest of the
     * picture grey) or fails as corrupt; never a crash. Both are fine for a
     * leaked frame: a partial image still carries the mark. */
    int decoded = 0, failed = 0;
    const size_t scan_cuts[] = {sos + 20, sos + 40, (sos + b.len) / 2,
                                b.len - 10, b.len - 2, b.len - 1};
    for (size_t k = 0; k < sizeof(scan_cuts) / sizeof(scan_cuts[0]); k++) {
        test_save_file(p.s, b.data, scan_cuts[k]);
        cm_ctx *ctx = new_ctx();
        cm_image *img = NULL;
        int ret = cm_image_read(ctx, p.s, NULL, &img);
        if (ret == CM_OK) {
            assert_int_equal(img->width, 64);
            assert_int_equal(img->height, 64);
            assert_int_equal(img->channels, 3);
            decoded++;
        } else {
            assert_int_equal(ret, CM_E_CORRUPT);
            assert_null(img);
            assert_non_null(strstr(cm_ctx_last_error(ctx), p.s));
            failed++;
        }
        cm_image_free(&img);
        cm_ctx_free(&ctx);
    }
    print_message("[  INFO    ] JPEG cut in the scan: %d decoded, %d corrupt\n",
                  decoded, failed);
    unlink(p.s);
    free(b.data);
}

static void test_random_and_text(void **s)
{
    (void)s;
    path_buf p = tmp_path("junk.bin");
    uint8_t buf[4096];
    rng_state = 12345;
    for (int k = 0; k < 40; k++) {
        size_t n = 1 + rnd() % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rnd();
        test_save_file(p.s, buf, n);
        expect_fail(p.s, NULL, CM_E_FORMAT, "not a recognised image format");
    }
    static const char *const texts[] = {
        "this is a text file, not an image\n",
        "P", /* one byte */
        ("<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
         "width=\"10\" height=\"10\"></svg>\n"),
        "#define x_width 8\n#define x_height 8\nstatic char x_bits[] = {0};\n",
        "{\"schema\": \"celmark.info/1\", \"width\": 64}\n",
        "GIF is a nice format, BM too, and so is \xff\xd8 JPEG\n",
    };
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        test_save_file(p.s, texts[k], strlen(texts[k]));
        expect_fail(p.s, NULL, CM_E_FORMAT, "not a recognised image format");
    }
    unlink(p.s);
}

static void test_empty_file(void **s)
{
    (void)s;
    path_buf p = tmp_path("empty.jpg");
    test_save_file(p.s, "", 0);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "empty file");
    unlink(p.s);
}

static void put_be16(uint8_t *q, unsigned v)
{
    q[0] = (uint8_t)(v >> 8);
    q[1] = (uint8_t)v;
}

static void put_le32(uint8_t *q, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        q[i] = (uint8_t)(v >> (8 * i));
}

static void test_jpeg_huge_dimensions(void **s)
{
    (void)s;
    blob b = jpeg_flat(AV_PIX_FMT_YUVJ420P, 32, 32, (flat_rgb){1, 2, 3});
    const size_t sof = find_marker(&b, 0xc0);
    assert_true(sof > 0);
    put_be16(b.data + sof + 5, 60000); /* height */
    put_be16(b.data + sof + 7, 60000); /* width */
    path_buf p = tmp_path("huge.jpg");
    test_save_file(p.s, b.data, b.len);
    clock_t t0 = clock();
    expect_fail(p.s, NULL, CM_E_LIMIT, "60000 x 60000");
    expect_fail(p.s, NULL, CM_E_LIMIT, "above the limit of 268435456 pixels");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 2.0)
        fail_msg("refusing a 60000 x 60000 JPEG took %.2f s", secs);
    unlink(p.s);
    free(b.data);

    /* a caller's small limit refuses an ordinary JPEG */
    b = jpeg_flat(AV_PIX_FMT_YUVJ444P, 64, 48, (flat_rgb){9, 9, 9});
    test_save_file(p.s, b.data, b.len);
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_pixels = 1000;
    expect_fail(p.s, &lim, CM_E_LIMIT,
                "image is 64 x 48 (3072 pixels), above the limit of 1000 pixels");
    lim.max_pixels = 64 * 48;
    cm_ctx *ctx = new_ctx();
    cm_image *img = NULL;
    assert_int_equal(cm_image_read(ctx, p.s, &lim, &img), CM_OK);
    cm_image_free(&img);
    /* and the file size limit */
    lim.max_file_bytes = b.len - 1;
    expect_fail(p.s, &lim, CM_E_LIMIT, "bytes, above the limit");
    cm_ctx_free(&ctx);
    unlink(p.s);
    free(b.data);
}

static void fill_bmp(AVFrame *f, void *arg)
{
    (void)arg;
    fill_random(f, NULL);
}

static void test_bmp_huge_dimensions(void **s)
{
    (void)s;
    blob b;
    assert_true(encode(&b, "bmp", AV_PIX_FMT_BGR24, 16, 8,
                       AVCOL_RANGE_UNSPECIFIED, NULL, NULL, fill_bmp, NULL));
    assert_memory_equal(b.data, "BM", 2);
    path_buf p = tmp_path("huge.bmp");
    const uint32_t sizes[][2] = {{100000, 100000}, {20000, 20000}, {1u << 30, 2}};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        put_le32(b.data + 18, sizes[k][0]);
        put_le32(b.data + 22, sizes[k][1]);
        test_save_file(p.s, b.data, b.len);
        clock_t t0 = clock();
        int ret = expect_fail2(p.s, NULL, CM_E_LIMIT, CM_E_CORRUPT, NULL);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (secs > 2.0)
            fail_msg("refusing a %u x %u BMP took %.2f s", sizes[k][0],
                     sizes[k][1], secs);
        /* over the default limit of 2^28 pixels: a limit error */
        if ((uint64_t)sizes[k][0] * sizes[k][1] > (UINT64_C(1) << 28))
            assert_int_equal(ret, CM_E_LIMIT);
    }
    /* a caller's small limit */
    put_le32(b.data + 18, 16);
    put_le32(b.data + 22, 8);
    test_save_file(p.s, b.data, b.len);
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_pixels = 100;
    expect_fail(p.s, &lim, CM_E_LIMIT, "image is 16 x 8 (128 pixels)");
    unlink(p.s);
    free(b.data);
}

/* The GIF demuxer knows the size before decoding: refused from the codec
 * parameters. */
static void test_gif_huge_screen(void **s)
{
    (void)s;
    blob b;
    if (!encode(&b, "gif", AV_PIX_FMT_PAL8, 8, 8, AVCOL_RANGE_UNSPECIFIED, NULL,
                NULL, fill_pal4, NULL))
        return;
    b.data[6] = b.data[7] = b.data[8] = b.data[9] = 0xff; /* 65535 x 65535 */
    path_buf p = tmp_path("huge.gif");
    test_save_file(p.s, b.data, b.len);
    expect_fail(p.s, NULL, CM_E_LIMIT, "65535 x 65535");
    unlink(p.s);
    free(b.data);
}

/* Flipped bytes in every format: any status, never a crash or a leak. */
static void test_flipped_bytes(void **s)
{
    (void)s;
    blob files[4];
    int nfiles = 0;
    rng_state = 4242;
    files[nfiles++] = jpeg_noise(40, 24);
    if (encode(&files[nfiles], "bmp", AV_PIX_FMT_BGR24, 13, 7,
               AVCOL_RANGE_UNSPECIFIED, NULL, NULL, fill_random, NULL))
        nfiles++;
    if (encode(&files[nfiles], "tiff", AV_PIX_FMT_RGB48LE, 13, 7,
               AVCOL_RANGE_UNSPECIFIED, NULL, NULL, fill_random, NULL))
        nfiles++;
    if (encode(&files[nfiles], "gif", AV_PIX_FMT_PAL8, 13, 7,
               AVCOL_RANGE_UNSPECIFIED, NULL, NULL, fill_pal4, NULL))
        nfiles++;
    path_buf p = tmp_path("flip.bin");
    int ok = 0, bad = 0;
    for (int k = 0; k < nfiles; k++) {
        uint8_t *buf = malloc(files[k].len);
        assert_non_null(buf);
        for (int round = 0; round < 60; round++) {
            memcpy(buf, files[k].data, files[k].len);
            int flips = 1 + (int)(rnd() % 4);
            for (int i = 0; i < flips; i++)
                buf[rnd() % files[k].len] ^= (uint8_t)(1u << (rnd() % 8));
            test_save_file(p.s, buf, files[k].len);
            cm_ctx *ctx = new_ctx();
            cm_image *img = NULL;
            int ret = cm_image_read(ctx, p.s, NULL, &img);
            if (ret == CM_OK) {
                assert_non_null(img);
                cm_image_info info;
                assert_int_equal(cm_image_get_info(img, &info), CM_OK);
                ok++;
            } else {
                assert_true(ret < 0);
                assert_null(img);
                assert_non_null(strstr(cm_ctx_last_error(ctx), p.s));
                assert_null(strchr(cm_ctx_last_error(ctx), '\n'));
                bad++;
            }
            cm_image_free(&img);
            cm_ctx_free(&ctx);
        }
        free(buf);
        free(files[k].data);
    }
    print_message("[  INFO    ] flipped bytes: %d read, %d refused\n", ok, bad);
    unlink(p.s);
}

/* ---- probe ------------------------------------------------------------ */

static void test_probe(void **s)
{
    (void)s;
    static const uint8_t png_head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
                                       '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    /* PNG is formats/png.c's */
    assert_false(cm__format_av.probe(png_head, sizeof(png_head)));
    assert_false(cm__format_av.probe((const uint8_t *)"hello", 5));
    assert_false(cm__format_av.probe(NULL, 0));
    blob b = jpeg_grey(8, 8, 50);
    assert_true(cm__format_av.probe(b.data, b.len < CM__PROBE_BYTES
                                                 ? b.len : CM__PROBE_BYTES));
    free(b.data);
    assert_null(cm__format_av.write);
    assert_ptr_equal(cm__format_by_name("av"), &cm__format_av);
}

/* ---- writing ---------------------------------------------------------- */

static void test_write_as_png(void **s)
{
    (void)s;
    blob b = jpeg_flat(AV_PIX_FMT_YUVJ420P, 24, 16, (flat_rgb){10, 200, 100});
    path_buf in = tmp_path("w_in.jpg");
    test_save_file(in.s, b.data, b.len);
    cm_image *img = must_read(in.s, 24, 16, 3, 8, "jpeg");
    cm_ctx *ctx = new_ctx();

    /* JPEG out: no writer */
    static const char *const names[] = {"w_out.jpg", "w_out", "w_out.webp",
                                        "w_out.JPEG"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        path_buf out = tmp_path(names[k]);
        unlink(out.s);
        assert_int_equal(cm_image_write(ctx, img, out.s, 0), CM_E_UNSUPPORTED);
        assert_int_equal(cm_ctx_last_status(ctx), CM_E_UNSUPPORTED);
        const char *msg = cm_ctx_last_error(ctx);
        assert_non_null(strstr(msg, out.s));
        assert_non_null(strstr(msg, "cannot write jpeg files; write a .png instead"));
        assert_false(test_file_exists(out.s));
        /* also with --force over an existing file: left untouched */
        test_save_file(out.s, "keep", 4);
        assert_int_equal(cm_image_write(ctx, img, out.s, CM_WRITE_FORCE),
                         CM_E_UNSUPPORTED);
        struct stat st;
        assert_int_equal(stat(out.s, &st), 0);
        assert_int_equal(st.st_size, 4);
        unlink(out.s);
    }
    assert_int_equal(count_av_temp_files(), 0);

    /* PNG out: the decoded pixels, as PNG */
    static const char *const pngs[] = {"w_out.png", "w_out.PNG"};
    for (size_t k = 0; k < sizeof(pngs) / sizeof(pngs[0]); k++) {
        path_buf out = tmp_path(pngs[k]);
        unlink(out.s);
        if (cm_image_write(ctx, img, out.s, 0) != CM_OK)
            fail_msg("%s", cm_ctx_last_error(ctx));
        cm_image *back = must_read(out.s, 24, 16, 3, 8, "png");
        for (int y = 0; y < 16; y++)
            assert_memory_equal(back->data + (ptrdiff_t)y * back->stride,
                                img->data + (ptrdiff_t)y * img->stride, 24 * 3);
        cm_image_free(&back);
        unlink(out.s);
    }
    assert_int_equal(count_av_temp_files(), 0);

    /* a PNG source still writes PNG whatever the name, as before */
    path_buf png = tmp_path("w_src.png");
    unlink(png.s);
    assert_int_equal(cm_image_write(ctx, img, png.s, 0), CM_OK);
    cm_image *pimg = must_read(png.s, 24, 16, 3, 8, "png");
    path_buf odd = tmp_path("w_src.out");
    unlink(odd.s);
    assert_int_equal(cm_image_write(ctx, pimg, odd.s, 0), CM_OK);
    cm_image_free(&pimg);
    pimg = must_read(odd.s, 24, 16, 3, 8, "png");
    cm_image_free(&pimg);
    unlink(odd.s);
    unlink(png.s);

    cm_ctx_free(&ctx);
    cm_image_free(&img);
    unlink(in.s);
    free(b.data);
}

int main(void)
{
    av_log_set_level(AV_LOG_ERROR); /* the encoders' chatter */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_flat_420),
        cmocka_unit_test(test_jpeg_flat_420_odd),
        cmocka_unit_test(test_jpeg_flat_444),
        cmocka_unit_test(test_jpeg_grey),
        cmocka_unit_test(test_bmp_rgb24),
        cmocka_unit_test(test_tiff_rgb24),
        cmocka_unit_test(test_tiff_rgb48),
        cmocka_unit_test(test_tiff_rgba64),
        cmocka_unit_test(test_tiff_gray8),
        cmocka_unit_test(test_tiff_gray16),
        cmocka_unit_test(test_tiff_ya8),
        cmocka_unit_test(test_gif_palette),
        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_random_and_text),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_jpeg_huge_dimensions),
        cmocka_unit_test(test_bmp_huge_dimensions),
        cmocka_unit_test(test_gif_huge_screen),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_write_as_png),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
