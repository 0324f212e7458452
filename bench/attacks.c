/*
 * Attacks for the robustness benchmark (see attacks.h).
 *
 * Each attack maps an 8-bit RGB cm_image to a new 8-bit RGB cm_image. Codecs
 * and resampling use the real libraries, so the benchmark sees what a
 * pipeline out there would do to the frame:
 *
 *   jpegNN       libjpeg-turbo TurboJPEG 2.x, IJG quality NN, 4:2:0, accurate
 *                (islow) DCT both ways, fancy upsampling on decode
 *   h264_crfNN   RGB24 -> YUV420P (swscale, BT.601 limited range) -> libx264
 *                one-frame stream (an IDR frame), preset medium, CRF NN ->
 *                libavcodec h264 decoder -> RGB24 (swscale)
 *   scaleNN      swscale bicubic; scale50up goes down to 50% and back up
 *   crop*        copies of a sub-rectangle
 *   chain        crop 70% of the area -> scale 60% -> JPEG 60
 *   review_sheet the frame at 60% on a white page with blocky "text" and
 *                red/yellow marker strokes over it, then JPEG 75
 *   review_sheet_43  the same with the frame squeezed into a 4:3 cell (60 %
 *                of its width, 80 % of its height)
 *   aniso_*      one axis rescaled (swscale), the other kept: w075 = width
 *                x 0.75 (16:9 squeezed into 4:3), h075, w060, h133
 *   shear*       horizontal shear by +-3 and +-6 degrees about the centre
 *   persp3/6     perspective: each corner moved by 50-100 % of 3 % / 6 % of
 *                the side along each axis, random sign (a homography)
 *   screen_photo a phone photo of a monitor: perspective (corners 6 %),
 *                lens blur sigma 1.3, levels (black 16, white 235, gamma
 *                0.9), downscale to 1280x720, sensor noise sigma 3, JPEG 70
 *   screen_moire the same, the monitor's RGB stripe subpixels and black
 *                matrix sampled by the camera pixels (2x2 samples a pixel),
 *                which aliases into moire
 *
 * Rotation, blur, noise, point operations and the review sheet drawing are
 * written here (none of the libraries offers them). Rotation maps each output
 * pixel back into the source and interpolates bilinearly; source pixels
 * outside the frame count as black, so the rotated border is anti-aliased:
 *
 *      output (x, y) --R(-angle) about the centre--> source (sx, sy)
 *      value = bilinear(source, sx, sy), black outside
 *
 * Randomness comes from splitmix64 seeded with the attack's seed (layout and
 * noise only, never key material).
 */
#include "attacks.h"

#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <turbojpeg.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- tuning constants ---------------------------------------------------- */

/* 8-bit code value range. */
#define CODE_MAX 255

/* swscale flags for RGB -> RGB rescaling: bicubic (also for downscaling; the
 * bicubic filter widens with the ratio, so it does not alias), chroma kept at
 * full horizontal resolution on input and output and accurate rounding, so
 * flat colours survive the internal conversion. */
#define SWS_FLAGS_SCALE \
    (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP)
/* swscale flags for RGB24 <-> YUV420P around the H.264 codec (as specified
 * for the benchmark; the colour matrix is swscale's default, BT.601 with
 * limited range 16..235/240). */
#define SWS_FLAGS_YUV (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT)

/* H.264: encoder preset and the nominal frame rate (irrelevant for a single
 * intra frame, but the encoder needs a time base). */
#define H264_ENCODER "libx264"
#define H264_PRESET "medium"
#define H264_FPS 25

/* Down-scale factors per side. scale33 is one third (1920 -> 640). */
#define SCALE_HALF 0.5
#define SCALE_THIRD (1.0 / 3.0)
#define SCALE_QUARTER 0.25

/* Crops: fraction of the area kept (each side keeps its square root) and the
 * fixed crop512 size in pixels. */
#define CROP_AREA_HALF 0.5
#define CROP_FIXED_SIDE 512

/* Rotation angles in degrees (positive = counter-clockwise on screen). */
#define ROT_SMALL_DEG 2.0
#define ROT_LARGE_DEG 5.0

/* Gaussian blur sigma (pixels), kernel radius in sigmas, and the largest
 * radius the kernel buffer holds (px). */
#define BLUR_SIGMA 1.0
#define BLUR_RADIUS_SIGMAS 3.0
#define BLUR_MAX_RADIUS 64

/* Additive Gaussian noise, standard deviation in code values. */
#define NOISE_SIGMA 5.0

/* Point operations. */
#define GAMMA_LOW 0.7
#define GAMMA_HIGH 1.4
#define CONTRAST_GAIN 0.8 /* about mid-grey */
#define CONTRAST_MID 128  /* code value kept fixed by the contrast change */

/* BT.601 luma weights for the grey attack. */
#define LUMA_R 0.299
#define LUMA_G 0.587
#define LUMA_B 0.114

/* chain: area kept by the crop, scale per side, JPEG quality. */
#define CHAIN_CROP_AREA 0.7
#define CHAIN_SCALE 0.6
#define CHAIN_QUALITY 60

/* review_sheet: page size and colour, frame scale per side, JPEG quality. */
#define SHEET_W 1920
#define SHEET_H 1080
#define SHEET_PAPER 255
#define SHEET_FRAME_SCALE 0.6
#define SHEET_QUALITY 75
/* Annotation "text": lines of dark rectangles standing on a baseline, with
 * x-height and ascender glyph heights, gaps between glyphs and words (px). */
#define TEXT_LINES 28
#define TEXT_LINE_MIN 120
#define TEXT_LINE_MAX 640
#define TEXT_WORD_MIN 2 /* glyphs per word */
#define TEXT_WORD_MAX 8
#define TEXT_GLYPH_W_MIN 4
#define TEXT_GLYPH_W_MAX 11
#define TEXT_X_HEIGHT 9
#define TEXT_ASCENDER 13
#define TEXT_ASCENDER_PERCENT 30 /* glyphs with an ascender */
#define TEXT_GLYPH_GAP 2
#define TEXT_WORD_GAP 8
#define TEXT_INK 40 /* dark grey code value */
/* Marker strokes: cubic Bezier curves, full width in px, reach of the control
 * points from the start point as a fraction of the frame's shorter side, and
 * strokes are added until this fraction of the frame area is covered. */
#define STROKE_WIDTH 6.0
#define STROKE_REACH 0.3
#define STROKE_SEGMENTS 64
#define STROKE_COVER 0.10
#define STROKE_MAX 400 /* safety stop for tiny frames */

/* review_sheet_43: the frame's scale per axis in its 4:3 cell. */
#define SHEET43_SCALE_X 0.6
#define SHEET43_SCALE_Y 0.8

/* Anisotropic scales (one axis) and shear angles, degrees. */
#define ANISO_075 0.75
#define ANISO_060 0.60
#define ANISO_133 1.33
#define SHEAR_SMALL_DEG 3.0
#define SHEAR_LARGE_DEG 6.0

/* Perspective: largest corner displacement, fraction of the side; each
 * corner moves between half and all of it along each axis. */
#define PERSP_SMALL 0.03
#define PERSP_LARGE 0.06

/* screen_photo: corner displacement, lens blur (px of the frame), levels
 * (black and white points, gamma), camera resolution, sensor noise (code
 * values at the camera's resolution), JPEG quality; the moire variant's
 * subpixel fill (share of a pixel's height lit: the black matrix) and the
 * gain that keeps its mean brightness. */
#define PHOTO_PERSP 0.06
#define PHOTO_BLUR 1.3
#define PHOTO_BLACK 16
#define PHOTO_WHITE 235
#define PHOTO_GAMMA 0.9
#define PHOTO_W 1280
#define PHOTO_H 720
#define PHOTO_NOISE 3.0
#define PHOTO_QUALITY 70
#define MOIRE_FILL 0.8

/* Marker colours (RGB code values). */
static const uint8_t stroke_red[3] = {220, 30, 35};
static const uint8_t stroke_yellow[3] = {250, 215, 20};

/* ---- helpers ------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static void rng_init(rng *r, uint32_t seed)
{
    r->s = seed;
}

/* splitmix64 */
static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n); n >= 1. */
static int rng_int(rng *r, int n)
{
    return (int)(rng_next(r) % (uint64_t)n);
}

/* Uniform integer in [lo, hi]. */
static int rng_range(rng *r, int lo, int hi)
{
    return lo + rng_int(r, hi - lo + 1);
}

static void note(const char *what, const char *detail)
{
    fprintf(stderr, "attacks: %s: %s\n", what, detail);
}

static void note_av(const char *what, int averr)
{
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, buf, sizeof buf);
    note(what, buf);
}

static uint8_t clamp_u8(double v)
{
    if (v <= 0.0)
        return 0;
    if (v >= CODE_MAX)
        return CODE_MAX;
    return (uint8_t)(v + 0.5);
}

static int check_rgb8(const cm_image *in, cm_image **out)
{
    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (!in || !in->data || in->channels != 3 || in->has_alpha ||
        in->bit_depth != 8 || in->sample != CM_SAMPLE_U8 || in->width < 1 ||
        in->height < 1)
        return CM_E_INVAL;
    return CM_OK;
}

static int new_rgb(cm_image **out, int width, int height)
{
    return cm_image_new(out, width, height, 3, 0, 8);
}

static uint8_t *row(const cm_image *img, int y)
{
    return img->data + (ptrdiff_t)y * img->stride;
}

/* Side length after scaling by factor, at least 1 pixel. */
static int scaled_side(int side, double factor)
{
    long v = lround(side * factor);
    return v < 1 ? 1 : (int)v;
}

/* Copy the w x h rectangle at (x, y) (must lie inside in). */
static int crop_copy(const cm_image *in, int x, int y, int w, int h,
                     cm_image **out)
{
    int ret = new_rgb(out, w, h);
    if (ret)
        return ret;
    for (int j = 0; j < h; j++)
        memcpy(row(*out, j), row(in, y + j) + 3 * (size_t)x, 3 * (size_t)w);
    return CM_OK;
}

/* Rescale to w x h with swscale (SWS_FLAGS_SCALE). */
static int scale_to(const cm_image *in, int w, int h, cm_image **out)
{
    struct SwsContext *sws =
        sws_getContext(in->width, in->height, AV_PIX_FMT_RGB24, w, h,
                       AV_PIX_FMT_RGB24, SWS_FLAGS_SCALE, NULL, NULL, NULL);
    if (!sws) {
        note("sws_getContext", "cannot scale RGB24");
        return CM_E_INTERNAL;
    }
    int ret = new_rgb(out, w, h);
    if (!ret) {
        const uint8_t *src[1] = {in->data};
        const int src_stride[1] = {(int)in->stride};
        uint8_t *dst[1] = {(*out)->data};
        const int dst_stride[1] = {(int)(*out)->stride};
        sws_scale(sws, src, src_stride, 0, in->height, dst, dst_stride);
    }
    sws_freeContext(sws);
    return ret;
}

static int scale_by(const cm_image *in, double factor, cm_image **out)
{
    return scale_to(in, scaled_side(in->width, factor),
                    scaled_side(in->height, factor), out);
}

/* JPEG compress at IJG quality with 4:2:0 subsampling, then decode. */
static int jpeg_roundtrip(const cm_image *in, int quality, cm_image **out)
{
    tjhandle enc = NULL, dec = NULL;
    unsigned char *jpeg = NULL;
    unsigned long jpeg_size = 0;
    int ret = CM_E_INTERNAL;
    int w, h, subsamp, colorspace;

    *out = NULL;
    if (!(enc = tjInitCompress()) || !(dec = tjInitDecompress())) {
        note("tjInit", tjGetErrorStr2(NULL));
        goto fail;
    }
    if (tjCompress2(enc, in->data, in->width, (int)in->stride, in->height,
                    TJPF_RGB, &jpeg, &jpeg_size, TJSAMP_420, quality,
                    TJFLAG_ACCURATEDCT) != 0) {
        note("tjCompress2", tjGetErrorStr2(enc));
        goto fail;
    }
    if (tjDecompressHeader3(dec, jpeg, jpeg_size, &w, &h, &subsamp,
                            &colorspace) != 0) {
        note("tjDecompressHeader3", tjGetErrorStr2(dec));
        goto fail;
    }
    if ((ret = new_rgb(out, w, h)) != 0)
        goto fail;
    if (tjDecompress2(dec, jpeg, jpeg_size, (*out)->data, w, (int)(*out)->stride,
                      h, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0 &&
        tjGetErrorCode(dec) != TJERR_WARNING) {
        note("tjDecompress2", tjGetErrorStr2(dec));
        ret = CM_E_INTERNAL;
        goto fail;
    }
    ret = CM_OK;
fail:
    if (ret)
        cm_image_free(out);
    tjFree(jpeg);
    if (enc)
        tjDestroy(enc);
    if (dec)
        tjDestroy(dec);
    return ret;
}

/* ---- H.264 --------------------------------------------------------------- */

/* Convert the first decoded frame to RGB24 into *rgb (w x h). */
static int yuv_to_rgb(const AVFrame *f, cm_image *rgb)
{
    struct SwsContext *sws = sws_getContext(
        f->width, f->height, (enum AVPixelFormat)f->format, rgb->width,
        rgb->height, AV_PIX_FMT_RGB24, SWS_FLAGS_YUV, NULL, NULL, NULL);
    if (!sws) {
        note("sws_getContext", "cannot convert decoded frame to RGB24");
        return CM_E_INTERNAL;
    }
    uint8_t *dst[1] = {rgb->data};
    const int dst_stride[1] = {(int)rgb->stride};
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
              dst, dst_stride);
    sws_freeContext(sws);
    return CM_OK;
}

/* Take every frame the decoder has ready; convert the first into rgb. */
static int drain_decoder(AVCodecContext *dec, AVFrame *frame, cm_image *rgb,
                         int *got)
{
    for (;;) {
        int r = avcodec_receive_frame(dec, frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return CM_OK;
        if (r < 0) {
            note_av("h264 decode", r);
            return CM_E_INTERNAL;
        }
        int ret = CM_OK;
        if (!*got && frame->width == rgb->width && frame->height == rgb->height) {
            ret = yuv_to_rgb(frame, rgb);
            *got = 1;
        }
        av_frame_unref(frame);
        if (ret)
            return ret;
    }
}

/* Copy in to an even-sized image, repeating the last column / row. */
static int pad_even(const cm_image *in, int ew, int eh, cm_image **out)
{
    int ret = new_rgb(out, ew, eh);
    if (ret)
        return ret;
    for (int y = 0; y < eh; y++) {
        const uint8_t *s = row(in, y < in->height ? y : in->height - 1);
        uint8_t *d = row(*out, y);
        memcpy(d, s, 3 * (size_t)in->width);
        if (ew > in->width)
            memcpy(d + 3 * (size_t)in->width, s + 3 * (size_t)(in->width - 1), 3);
    }
    return CM_OK;
}

/*
 * Encode one frame with libx264 at the given CRF and decode it again.
 * 4:2:0 needs even dimensions: odd sizes are padded by repeating the last
 * column / row, and the decoded picture is cropped back to the input size.
 */
static int h264_roundtrip(const cm_image *in, int crf, cm_image **out)
{
    const int ew = in->width + (in->width & 1);
    const int eh = in->height + (in->height & 1);
    const AVCodec *enc_codec = avcodec_find_encoder_by_name(H264_ENCODER);
    const AVCodec *dec_codec = avcodec_find_decoder(AV_CODEC_ID_H264);
    AVCodecContext *enc = NULL, *dec = NULL;
    AVFrame *yuv = NULL, *decoded = NULL;
    AVPacket *pkt = NULL;
    struct SwsContext *sws = NULL;
    cm_image *padded = NULL, *rgb = NULL;
    const cm_image *src = in;
    int ret, r, got = 0;

    *out = NULL;
    if (!enc_codec || !dec_codec) {
        note("h264", enc_codec ? "no h264 decoder in libavcodec"
                               : "libavcodec was built without libx264");
        return CM_E_UNSUPPORTED;
    }
    if (ew != in->width || eh != in->height) {
        if ((ret = pad_even(in, ew, eh, &padded)) != 0)
            goto fail;
        src = padded;
    }
    if ((ret = new_rgb(&rgb, ew, eh)) != 0)
        goto fail;

    ret = CM_E_NOMEM;
    if (!(yuv = av_frame_alloc()) || !(decoded = av_frame_alloc()) ||
        !(pkt = av_packet_alloc()) || !(enc = avcodec_alloc_context3(enc_codec)) ||
        !(dec = avcodec_alloc_context3(dec_codec)))
        goto fail;

    /* RGB24 -> YUV420P, BT.601 limited range (swscale's default matrix). */
    ret = CM_E_INTERNAL;
    yuv->format = AV_PIX_FMT_YUV420P;
    yuv->width = ew;
    yuv->height = eh;
    yuv->color_range = AVCOL_RANGE_MPEG;
    yuv->colorspace = AVCOL_SPC_SMPTE170M;
    yuv->pts = 0;
    if ((r = av_frame_get_buffer(yuv, 0)) < 0) {
        note_av("av_frame_get_buffer", r);
        goto fail;
    }
    sws = sws_getContext(ew, eh, AV_PIX_FMT_RGB24, ew, eh, AV_PIX_FMT_YUV420P,
                         SWS_FLAGS_YUV, NULL, NULL, NULL);
    if (!sws) {
        note("sws_getContext", "cannot convert RGB24 to YUV420P");
        goto fail;
    }
    {
        const uint8_t *s[1] = {src->data};
        const int s_stride[1] = {(int)src->stride};
        sws_scale(sws, s, s_stride, 0, eh, yuv->data, yuv->linesize);
    }

    enc->width = ew;
    enc->height = eh;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = (AVRational){1, H264_FPS};
    enc->framerate = (AVRational){H264_FPS, 1};
    enc->color_range = AVCOL_RANGE_MPEG;
    enc->colorspace = AVCOL_SPC_SMPTE170M;
    enc->color_primaries = AVCOL_PRI_SMPTE170M;
    enc->color_trc = AVCOL_TRC_SMPTE170M;
    if ((r = av_opt_set(enc->priv_data, "preset", H264_PRESET, 0)) < 0 ||
        (r = av_opt_set_double(enc->priv_data, "crf", crf, 0)) < 0) {
        note_av("libx264 options", r);
        goto fail;
    }
    if ((r = avcodec_open2(enc, enc_codec, NULL)) < 0) {
        note_av("avcodec_open2 libx264", r);
        goto fail;
    }
    if ((r = avcodec_open2(dec, dec_codec, NULL)) < 0) {
        note_av("avcodec_open2 h264", r);
        goto fail;
    }

    /* One frame in, flush, pass every packet to the decoder. */
    if ((r = avcodec_send_frame(enc, yuv)) < 0 ||
        (r = avcodec_send_frame(enc, NULL)) < 0) {
        note_av("h264 encode", r);
        goto fail;
    }
    for (;;) {
        r = avcodec_receive_packet(enc, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r < 0) {
            note_av("h264 encode", r);
            goto fail;
        }
        r = avcodec_send_packet(dec, pkt);
        av_packet_unref(pkt);
        if (r < 0) {
            note_av("h264 decode", r);
            goto fail;
        }
        if ((r = drain_decoder(dec, decoded, rgb, &got)) != 0) {
            ret = r;
            goto fail;
        }
    }
    if ((r = avcodec_send_packet(dec, NULL)) < 0) {
        note_av("h264 decode flush", r);
        goto fail;
    }
    if ((r = drain_decoder(dec, decoded, rgb, &got)) != 0) {
        ret = r;
        goto fail;
    }
    if (!got) {
        note("h264", "the decoder returned no frame");
        goto fail;
    }

    if (ew != in->width || eh != in->height) {
        ret = crop_copy(rgb, 0, 0, in->width, in->height, out);
    } else {
        *out = rgb;
        rgb = NULL;
        ret = CM_OK;
    }
fail:
    sws_freeContext(sws);
    avcodec_free_context(&enc);
    avcodec_free_context(&dec);
    av_packet_free(&pkt);
    av_frame_free(&yuv);
    av_frame_free(&decoded);
    cm_image_free(&padded);
    cm_image_free(&rgb);
    return ret;
}

/* ---- geometry ------------------------------------------------------------ */

typedef enum crop_pos { CROP_TOP_LEFT, CROP_CENTRE, CROP_RANDOM } crop_pos;

/* Crop to a w x h rectangle (clamped to the image) placed at pos. */
static int crop_at(const cm_image *in, int w, int h, crop_pos pos,
                   uint32_t seed, cm_image **out)
{
    rng r;
    int x = 0, y = 0;
    if (w > in->width)
        w = in->width;
    if (h > in->height)
        h = in->height;
    switch (pos) {
    case CROP_TOP_LEFT:
        break;
    case CROP_CENTRE:
        x = (in->width - w) / 2;
        y = (in->height - h) / 2;
        break;
    case CROP_RANDOM:
        rng_init(&r, seed);
        x = rng_int(&r, in->width - w + 1);
        y = rng_int(&r, in->height - h + 1);
        break;
    }
    return crop_copy(in, x, y, w, h, out);
}

/* Crop keeping area_frac of the area (sqrt(area_frac) of each side). */
static int crop_area(const cm_image *in, double area_frac, crop_pos pos,
                     uint32_t seed, cm_image **out)
{
    double side = sqrt(area_frac);
    return crop_at(in, scaled_side(in->width, side),
                   scaled_side(in->height, side), pos, seed, out);
}

/* Rotate by deg (counter-clockwise on screen) about the centre, same size,
 * bilinear, black outside. */
static int rotate(const cm_image *in, double deg, cm_image **out)
{
    const int w = in->width, h = in->height;
    const double a = deg * M_PI / 180.0;
    const double c = cos(a), s = sin(a);
    const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
    int ret = new_rgb(out, w, h);
    if (ret)
        return ret;
    for (int y = 0; y < h; y++) {
        uint8_t *d = row(*out, y);
        const double dy = y - cy;
        for (int x = 0; x < w; x++, d += 3) {
            /* With y pointing down, content turned counter-clockwise by a
             * comes from source = R(-a) applied to the output offset. */
            const double dx = x - cx;
            const double sx = c * dx - s * dy + cx;
            const double sy = s * dx + c * dy + cy;
            const double fx0 = floor(sx), fy0 = floor(sy);
            const int x0 = (int)fx0, y0 = (int)fy0;
            const double fx = sx - fx0, fy = sy - fy0;
            const double wt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy),
                                  (1 - fx) * fy, fx * fy};
            double acc[3] = {0, 0, 0};
            if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) {
                d[0] = d[1] = d[2] = 0;
                continue;
            }
            for (int t = 0; t < 4; t++) {
                const int xi = x0 + (t & 1), yi = y0 + (t >> 1);
                if (xi < 0 || yi < 0 || xi >= w || yi >= h)
                    continue; /* black */
                const uint8_t *p = row(in, yi) + 3 * (size_t)xi;
                for (int k = 0; k < 3; k++)
                    acc[k] += wt[t] * p[k];
            }
            for (int k = 0; k < 3; k++)
                d[k] = clamp_u8(acc[k]);
        }
    }
    return CM_OK;
}

/* ---- general warps: shear, perspective, a screen photographed ---------- */

/* The homography h (h[8] = 1) that maps the 4 points src[i] to dst[i]
 * (x, y pairs): 8 equations, Gaussian elimination with partial pivoting.
 * Returns -1 when the points are degenerate. */
static int homography_4pt(const double src[8], const double dst[8], double h[9])
{
    double a[8][9];
    for (int i = 0; i < 4; i++) {
        double x = src[2 * i], y = src[2 * i + 1], u = dst[2 * i], v = dst[2 * i + 1];
        double r0[9] = {x, y, 1, 0, 0, 0, -u * x, -u * y, u};
        double r1[9] = {0, 0, 0, x, y, 1, -v * x, -v * y, v};
        memcpy(a[2 * i], r0, sizeof r0);
        memcpy(a[2 * i + 1], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int piv = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(a[r][c]) > fabs(a[piv][c]))
                piv = r;
        if (fabs(a[piv][c]) < 1e-12)
            return -1;
        if (piv != c)
            for (int k = 0; k < 9; k++) {
                double t = a[c][k];
                a[c][k] = a[piv][k];
                a[piv][k] = t;
            }
        for (int r = 0; r < 8; r++) {
            if (r == c)
                continue;
            double f = a[r][c] / a[c][c];
            for (int k = c; k < 9; k++)
                a[r][k] -= f * a[c][k];
        }
    }
    for (int i = 0; i < 8; i++)
        h[i] = a[i][8] / a[i][i];
    h[8] = 1;
    return 0;
}

/* How warp() samples the source: bilinear (black outside), or the moire
 * model: the source shown on a monitor whose pixels are three vertical
 * R, G, B stripes lit over MOIRE_FILL of the pixel's height, point-sampled
 * 2x2 times per output pixel. */
typedef enum { WARP_BILINEAR, WARP_SUBPIXELS } warp_mode;

/* Bilinear sample of channel values at source (sx, sy), black outside. */
static void sample_bilinear(const cm_image *in, double sx, double sy, double acc[3])
{
    const int w = in->width, h = in->height;
    const double fx0 = floor(sx), fy0 = floor(sy);
    const int x0 = (int)fx0, y0 = (int)fy0;
    const double fx = sx - fx0, fy = sy - fy0;
    const double wt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
    acc[0] = acc[1] = acc[2] = 0;
    if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h)
        return;
    for (int t = 0; t < 4; t++) {
        const int xi = x0 + (t & 1), yi = y0 + (t >> 1);
        if (xi < 0 || yi < 0 || xi >= w || yi >= h)
            continue;
        const uint8_t *p = row(in, yi) + 3 * (size_t)xi;
        for (int k = 0; k < 3; k++)
            acc[k] += wt[t] * p[k];
    }
}

/* Output (x, y) of a w x h image takes the source at hinv (x, y, 1). */
static int warp(const cm_image *in, const double hinv[9], int w, int h, warp_mode mode,
                cm_image **out)
{
    int ret = new_rgb(out, w, h);
    if (ret)
        return ret;
    for (int y = 0; y < h; y++) {
        uint8_t *d = row(*out, y);
        for (int x = 0; x < w; x++, d += 3) {
            double acc[3] = {0, 0, 0};
            if (mode == WARP_BILINEAR) {
                double q = hinv[6] * x + hinv[7] * y + hinv[8];
                sample_bilinear(in, (hinv[0] * x + hinv[1] * y + hinv[2]) / q,
                                (hinv[3] * x + hinv[4] * y + hinv[5]) / q, acc);
            } else {
                for (int sub = 0; sub < 4; sub++) {
                    double ox = x - 0.25 + 0.5 * (sub & 1), oy = y - 0.25 + 0.5 * (sub >> 1);
                    double q = hinv[6] * ox + hinv[7] * oy + hinv[8];
                    double sx = (hinv[0] * ox + hinv[1] * oy + hinv[2]) / q + 0.5;
                    double sy = (hinv[3] * ox + hinv[4] * oy + hinv[5]) / q + 0.5;
                    double px = floor(sx), py = floor(sy);
                    if (px < 0 || py < 0 || px >= in->width || py >= in->height)
                        continue;
                    if (sy - py >= MOIRE_FILL)
                        continue; /* black matrix between rows */
                    int k = (int)((sx - px) * 3);
                    k = k > 2 ? 2 : k;
                    const uint8_t *p = row(in, (int)py) + 3 * (size_t)px;
                    acc[k] += p[k] * 3.0 / MOIRE_FILL / 4;
                }
            }
            for (int k = 0; k < 3; k++)
                d[k] = clamp_u8(acc[k]);
        }
    }
    return CM_OK;
}

/* Horizontal shear by deg about the centre row, same size, black outside. */
static int shear(const cm_image *in, double deg, cm_image **out)
{
    double t = tan(deg * M_PI / 180.0), cy = 0.5 * (in->height - 1);
    const double hinv[9] = {1, -t, t * cy, 0, 1, 0, 0, 0, 1};
    return warp(in, hinv, in->width, in->height, WARP_BILINEAR, out);
}

/* The corners of a width x height frame (corner) and where perspective()
 * moves them (moved): by up to frac of each side (50-100 % of it along
 * each axis, random sign). */
static void perspective_corners(int width, int height, double frac, uint32_t seed,
                                double corner[8], double moved[8])
{
    const double w = width - 1, h = height - 1;
    const double c[8] = {0, 0, w, 0, w, h, 0, h};
    rng r;
    rng_init(&r, seed ^ 0x5ca1ab1eu);
    for (int i = 0; i < 8; i++) {
        double side = i % 2 ? h : w;
        double m = (0.5 + 0.5 * rng_unit(&r)) * frac * side;
        corner[i] = c[i];
        moved[i] = c[i] + (rng_int(&r, 2) ? m : -m);
    }
}

/* The frame's corners moved (perspective_corners), the rest following the
 * homography. */
static int perspective(const cm_image *in, double frac, uint32_t seed, warp_mode mode,
                       cm_image **out)
{
    double corner[8], moved[8], hinv[9];
    perspective_corners(in->width, in->height, frac, seed, corner, moved);
    if (getenv("GDBG")) { fprintf(stderr, "CORNERS"); for (int i = 0; i < 8; i++) fprintf(stderr, " %.1f", moved[i]); fprintf(stderr, "\n"); }
    if (homography_4pt(moved, corner, hinv))
        return CM_E_INTERNAL;
    return warp(in, hinv, in->width, in->height, mode, out);
}

static int gaussian_blur(const cm_image *in, double sigma, cm_image **out);
static int add_noise(const cm_image *in, double sigma, uint32_t seed, cm_image **out);
static int apply_lut(const cm_image *in, const uint8_t lut[256], cm_image **out);

/* A phone photo of the frame on a monitor (screen_photo, screen_moire). */
static int screen_photo(const cm_image *in, uint32_t seed, warp_mode mode, cm_image **out)
{
    cm_image *a = NULL, *b = NULL;
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) {
        double x = v / (double)CODE_MAX;
        lut[v] = clamp_u8(PHOTO_BLACK + (PHOTO_WHITE - PHOTO_BLACK) * pow(x, PHOTO_GAMMA));
    }
    int ret = perspective(in, PHOTO_PERSP, seed, mode, &a);
    if (!ret)
        ret = gaussian_blur(a, PHOTO_BLUR, &b);
    cm_image_free(&a);
    if (!ret)
        ret = apply_lut(b, lut, &a);
    cm_image_free(&b);
    if (!ret)
        ret = scale_to(a, PHOTO_W, PHOTO_H, &b);
    cm_image_free(&a);
    if (!ret)
        ret = add_noise(b, PHOTO_NOISE, seed, &a);
    cm_image_free(&b);
    if (!ret)
        ret = jpeg_roundtrip(a, PHOTO_QUALITY, out);
    cm_image_free(&a);
    return ret;
}

/* The screen photo brought back to the frame's size with the attack's own
 * homography undone: an oracle, the mark a perfect geometry search could
 * read after the blur, levels, downscale, noise and JPEG. */
static int screen_photo_undone(const cm_image *in, uint32_t seed, cm_image **out)
{
    cm_image *a = NULL, *b = NULL;
    double corner[8], moved[8], h[9];
    perspective_corners(in->width, in->height, PHOTO_PERSP, seed, corner, moved);
    if (homography_4pt(corner, moved, h))
        return CM_E_INTERNAL;
    int ret = screen_photo(in, seed, WARP_BILINEAR, &a);
    if (!ret)
        ret = scale_to(a, in->width, in->height, &b);
    cm_image_free(&a);
    if (!ret)
        ret = warp(b, h, in->width, in->height, WARP_BILINEAR, out);
    cm_image_free(&b);
    return ret;
}

/* ---- filters and point operations ---------------------------------------- */

/* Separable Gaussian blur, edge clamp. */
static int gaussian_blur(const cm_image *in, double sigma, cm_image **out)
{
    const int w = in->width, h = in->height;
    const int radius = (int)ceil(BLUR_RADIUS_SIGMAS * sigma);
    double kernel[2 * BLUR_MAX_RADIUS + 1];
    double sum = 0.0;
    float *tmp;
    int ret;

    if (radius > BLUR_MAX_RADIUS)
        return CM_E_INVAL;
    for (int i = -radius; i <= radius; i++) {
        kernel[i + radius] = exp(-0.5 * i * i / (sigma * sigma));
        sum += kernel[i + radius];
    }
    for (int i = 0; i <= 2 * radius; i++)
        kernel[i] /= sum;

    tmp = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
    if (!tmp)
        return CM_E_NOMEM;
    if ((ret = new_rgb(out, w, h)) != 0) {
        free(tmp);
        return ret;
    }
    /* Horizontal pass into tmp. */
    for (int y = 0; y < h; y++) {
        const uint8_t *s = row(in, y);
        float *t = tmp + 3 * (size_t)y * w;
        for (int x = 0; x < w; x++) {
            double acc[3] = {0, 0, 0};
            for (int i = -radius; i <= radius; i++) {
                int xi = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                for (int k = 0; k < 3; k++)
                    acc[k] += kernel[i + radius] * s[3 * xi + k];
            }
            for (int k = 0; k < 3; k++)
                t[3 * x + k] = (float)acc[k];
        }
    }
    /* Vertical pass into the output. */
    for (int y = 0; y < h; y++) {
        uint8_t *d = row(*out, y);
        for (int x = 0; x < 3 * w; x++) {
            double acc = 0;
            for (int i = -radius; i <= radius; i++) {
                int yi = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                acc += kernel[i + radius] * tmp[3 * (size_t)yi * w + x];
            }
            d[x] = clamp_u8(acc);
        }
    }
    free(tmp);
    return CM_OK;
}

/* Additive Gaussian noise (Box-Muller), independent per channel. */
static int add_noise(const cm_image *in, double sigma, uint32_t seed,
                     cm_image **out)
{
    rng r;
    double spare = 0.0;
    int have_spare = 0;
    int ret = new_rgb(out, in->width, in->height);
    if (ret)
        return ret;
    rng_init(&r, seed);
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = row(in, y);
        uint8_t *d = row(*out, y);
        for (int x = 0; x < 3 * in->width; x++) {
            double z;
            if (have_spare) {
                z = spare;
                have_spare = 0;
            } else {
                const double u1 = 1.0 - rng_unit(&r); /* (0, 1]: log is finite */
                const double u2 = rng_unit(&r);
                const double rad = sqrt(-2.0 * log(u1));
                z = rad * cos(2.0 * M_PI * u2);
                spare = rad * sin(2.0 * M_PI * u2);
                have_spare = 1;
            }
            d[x] = clamp_u8(s[x] + sigma * z);
        }
    }
    return CM_OK;
}

/* Apply a 256-entry lookup table to every sample. */
static int apply_lut(const cm_image *in, const uint8_t lut[256], cm_image **out)
{
    int ret = new_rgb(out, in->width, in->height);
    if (ret)
        return ret;
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = row(in, y);
        uint8_t *d = row(*out, y);
        for (int x = 0; x < 3 * in->width; x++)
            d[x] = lut[s[x]];
    }
    return CM_OK;
}

static int gamma_curve(const cm_image *in, double g, cm_image **out)
{
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = clamp_u8(CODE_MAX * pow(v / (double)CODE_MAX, g));
    return apply_lut(in, lut, out);
}

static int brightness(const cm_image *in, int delta, cm_image **out)
{
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = clamp_u8(v + delta);
    return apply_lut(in, lut, out);
}

static int contrast(const cm_image *in, double gain, cm_image **out)
{
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = clamp_u8(CONTRAST_MID + gain * (v - CONTRAST_MID));
    return apply_lut(in, lut, out);
}

/* ---- review sheet -------------------------------------------------------- */

static void fill_rect(cm_image *img, int x0, int y0, int x1, int y1, uint8_t v)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > img->width)
        x1 = img->width;
    if (y1 > img->height)
        y1 = img->height;
    for (int y = y0; y < y1; y++)
        if (x1 > x0)
            memset(row(img, y) + 3 * (size_t)x0, v, 3 * (size_t)(x1 - x0));
}

/* One line of blocky pseudo-text with its baseline at y, starting at x. */
static void draw_text_line(cm_image *page, rng *r, int x, int y, int len)
{
    const int end = x + len;
    while (x < end) {
        int glyphs = rng_range(r, TEXT_WORD_MIN, TEXT_WORD_MAX);
        for (int g = 0; g < glyphs && x < end; g++) {
            int gw = rng_range(r, TEXT_GLYPH_W_MIN, TEXT_GLYPH_W_MAX);
            int gh = rng_int(r, 100) < TEXT_ASCENDER_PERCENT ? TEXT_ASCENDER
                                                              : TEXT_X_HEIGHT;
            fill_rect(page, x, y - gh, x + gw, y, TEXT_INK);
            x += gw + TEXT_GLYPH_GAP;
        }
        x += TEXT_WORD_GAP;
    }
}

/* Distance from (px, py) to the segment (ax, ay)-(bx, by). */
static double seg_dist(double px, double py, double ax, double ay, double bx,
                       double by)
{
    const double vx = bx - ax, vy = by - ay;
    const double len2 = vx * vx + vy * vy;
    double t = len2 > 0 ? ((px - ax) * vx + (py - ay) * vy) / len2 : 0.0;
    if (t < 0)
        t = 0;
    else if (t > 1)
        t = 1;
    const double dx = px - (ax + t * vx), dy = py - (ay + t * vy);
    return sqrt(dx * dx + dy * dy);
}

/*
 * Draw one anti-aliased cubic Bezier stroke (control points inside the frame
 * rectangle fx..fx+fw, fy..fy+fh) and count newly covered frame pixels in
 * painted (fw x fh, 1 = covered at least half). cov is a page-size scratch
 * buffer of zeros and is left zeroed.
 */
static long draw_stroke(cm_image *page, float *cov, uint8_t *painted, rng *r,
                        int fx, int fy, int fw, int fh, const uint8_t col[3])
{
    const double hw = 0.5 * STROKE_WIDTH;
    const double reach = STROKE_REACH * (fw < fh ? fw : fh);
    double px[4], py[4];
    double sx = fx + hw + rng_unit(r) * (fw - 2 * hw);
    double sy = fy + hw + rng_unit(r) * (fh - 2 * hw);
    for (int i = 0; i < 4; i++) {
        double x = sx + (i ? (2 * rng_unit(r) - 1) * reach : 0);
        double y = sy + (i ? (2 * rng_unit(r) - 1) * reach : 0);
        px[i] = fmin(fmax(x, fx + hw), fx + fw - hw);
        py[i] = fmin(fmax(y, fy + hw), fy + fh - hw);
    }
    /* Bounding box of the control points (the curve stays inside their
     * convex hull), widened by the half width, clipped to the page. */
    double lox = px[0], loy = py[0], hix = px[0], hiy = py[0];
    for (int i = 1; i < 4; i++) {
        lox = fmin(lox, px[i]);
        loy = fmin(loy, py[i]);
        hix = fmax(hix, px[i]);
        hiy = fmax(hiy, py[i]);
    }
    const int bx0 = (int)fmax(0, floor(lox - hw - 1));
    const int by0 = (int)fmax(0, floor(loy - hw - 1));
    const int bx1 = (int)fmin(page->width, ceil(hix + hw + 2));
    const int by1 = (int)fmin(page->height, ceil(hiy + hw + 2));

    /* Coverage of each polyline segment, max over segments. */
    double ax = px[0], ay = py[0];
    for (int k = 1; k <= STROKE_SEGMENTS; k++) {
        const double t = (double)k / STROKE_SEGMENTS, u = 1 - t;
        const double b0 = u * u * u, b1 = 3 * u * u * t, b2 = 3 * u * t * t,
                     b3 = t * t * t;
        const double qx = b0 * px[0] + b1 * px[1] + b2 * px[2] + b3 * px[3];
        const double qy = b0 * py[0] + b1 * py[1] + b2 * py[2] + b3 * py[3];
        const int x0 = (int)fmax(bx0, floor(fmin(ax, qx) - hw - 1));
        const int x1 = (int)fmin(bx1, ceil(fmax(ax, qx) + hw + 2));
        const int y0 = (int)fmax(by0, floor(fmin(ay, qy) - hw - 1));
        const int y1 = (int)fmin(by1, ceil(fmax(ay, qy) + hw + 2));
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                /* Pixel centres at +0.5; 1 px linear ramp at the edge. */
                double d = seg_dist(x + 0.5, y + 0.5, ax, ay, qx, qy);
                float c = (float)fmin(1.0, fmax(0.0, hw + 0.5 - d));
                float *cp = cov + (size_t)y * page->width + x;
                if (c > *cp)
                    *cp = c;
            }
        ax = qx;
        ay = qy;
    }

    /* Composite, count, and clear the scratch area. */
    long added = 0;
    for (int y = by0; y < by1; y++) {
        uint8_t *d = row(page, y);
        for (int x = bx0; x < bx1; x++) {
            float *cp = cov + (size_t)y * page->width + x;
            const float c = *cp;
            if (c <= 0.0f)
                continue;
            for (int k = 0; k < 3; k++)
                d[3 * x + k] = clamp_u8(d[3 * x + k] + c * (col[k] - d[3 * x + k]));
            if (c >= 0.5f && x >= fx && x < fx + fw && y >= fy && y < fy + fh) {
                uint8_t *m = painted + (size_t)(y - fy) * fw + (x - fx);
                added += !*m;
                *m = 1;
            }
            *cp = 0.0f;
        }
    }
    return added;
}

static int review_sheet(const cm_image *in, uint32_t seed, double sx, double sy,
                        cm_image **out)
{
    cm_image *small = NULL, *page = NULL;
    float *cov = NULL;
    uint8_t *painted = NULL;
    rng r;
    int ret;

    /* sx, sy of the frame, both shrunk further if that would not fit on
     * the page. */
    double fit = fmin(1.0, fmin((double)SHEET_W / (in->width * sx),
                                (double)SHEET_H / (in->height * sy)));
    if ((ret = scale_to(in, scaled_side(in->width, sx * fit),
                        scaled_side(in->height, sy * fit), &small)) != 0)
        goto fail;
    if ((ret = new_rgb(&page, SHEET_W, SHEET_H)) != 0)
        goto fail;
    fill_rect(page, 0, 0, SHEET_W, SHEET_H, SHEET_PAPER);

    rng_init(&r, seed);
    const int fw = small->width, fh = small->height;
    const int fx = rng_int(&r, SHEET_W - fw + 1);
    const int fy = rng_int(&r, SHEET_H - fh + 1);
    for (int y = 0; y < fh; y++)
        memcpy(row(page, fy + y) + 3 * (size_t)fx, row(small, y), 3 * (size_t)fw);

    /* Annotation text anywhere on the page: some lines land on the margin,
     * some over the frame. */
    for (int i = 0; i < TEXT_LINES; i++) {
        int len = rng_range(&r, TEXT_LINE_MIN, TEXT_LINE_MAX);
        int x = rng_int(&r, SHEET_W);
        int y = rng_range(&r, TEXT_ASCENDER, SHEET_H - 1);
        draw_text_line(page, &r, x, y, len);
    }

    /* Marker strokes until STROKE_COVER of the frame area is painted. */
    ret = CM_E_NOMEM;
    cov = calloc((size_t)SHEET_W * SHEET_H, sizeof *cov);
    painted = calloc((size_t)fw * fh, 1);
    if (!cov || !painted)
        goto fail;
    const long target = lround(STROKE_COVER * fw * fh);
    long covered = 0;
    for (int i = 0; i < STROKE_MAX && covered < target; i++)
        covered += draw_stroke(page, cov, painted, &r, fx, fy, fw, fh,
                               rng_int(&r, 2) ? stroke_red : stroke_yellow);

    ret = jpeg_roundtrip(page, SHEET_QUALITY, out);
fail:
    free(cov);
    free(painted);
    cm_image_free(&small);
    cm_image_free(&page);
    return ret;
}

/* ---- the attack table ---------------------------------------------------- */

static int atk_none(const cm_image *in, cm_image **out, uint32_t seed)
{
    (void)seed;
    int ret = check_rgb8(in, out);
    return ret ? ret : crop_copy(in, 0, 0, in->width, in->height, out);
}

static int atk_flip(const cm_image *in, cm_image **out, uint32_t seed)
{
    (void)seed;
    int ret = check_rgb8(in, out);
    if (ret || (ret = new_rgb(out, in->width, in->height)) != 0)
        return ret;
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = row(in, y);
        uint8_t *d = row(*out, y);
        for (int x = 0; x < in->width; x++)
            memcpy(d + 3 * (size_t)x, s + 3 * (size_t)(in->width - 1 - x), 3);
    }
    return CM_OK;
}

static int atk_grey(const cm_image *in, cm_image **out, uint32_t seed)
{
    (void)seed;
    int ret = check_rgb8(in, out);
    if (ret || (ret = new_rgb(out, in->width, in->height)) != 0)
        return ret;
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = row(in, y);
        uint8_t *d = row(*out, y);
        for (int x = 0; x < 3 * in->width; x += 3) {
            uint8_t v = clamp_u8(LUMA_R * s[x] + LUMA_G * s[x + 1] + LUMA_B * s[x + 2]);
            d[x] = d[x + 1] = d[x + 2] = v;
        }
    }
    return CM_OK;
}

static int atk_scale50up(const cm_image *in, cm_image **out, uint32_t seed)
{
    (void)seed;
    cm_image *small = NULL;
    int ret = check_rgb8(in, out);
    if (ret || (ret = scale_by(in, SCALE_HALF, &small)) != 0)
        return ret;
    ret = scale_to(small, in->width, in->height, out);
    cm_image_free(&small);
    return ret;
}

static int atk_chain(const cm_image *in, cm_image **out, uint32_t seed)
{
    cm_image *cropped = NULL, *small = NULL;
    int ret = check_rgb8(in, out);
    if (!ret)
        ret = crop_area(in, CHAIN_CROP_AREA, CROP_RANDOM, seed, &cropped);
    if (!ret)
        ret = scale_by(cropped, CHAIN_SCALE, &small);
    if (!ret)
        ret = jpeg_roundtrip(small, CHAIN_QUALITY, out);
    cm_image_free(&cropped);
    cm_image_free(&small);
    return ret;
}

static int atk_review_sheet(const cm_image *in, cm_image **out, uint32_t seed)
{
    int ret = check_rgb8(in, out);
    return ret ? ret : review_sheet(in, seed, SHEET_FRAME_SCALE, SHEET_FRAME_SCALE, out);
}

static int atk_review_sheet_43(const cm_image *in, cm_image **out, uint32_t seed)
{
    int ret = check_rgb8(in, out);
    return ret ? ret : review_sheet(in, seed, SHEET43_SCALE_X, SHEET43_SCALE_Y, out);
}

static int atk_crop512(const cm_image *in, cm_image **out, uint32_t seed)
{
    int ret = check_rgb8(in, out);
    return ret ? ret
               : crop_at(in, CROP_FIXED_SIDE, CROP_FIXED_SIDE, CROP_RANDOM, seed, out);
}

/* One-line wrappers for the parameterised attacks. */
#define ATK_WRAP(name, call)                                                 \
    static int name(const cm_image *in, cm_image **out, uint32_t seed)       \
    {                                                                        \
        (void)seed;                                                          \
        int ret = check_rgb8(in, out);                                       \
        return ret ? ret : (call);                                           \
    }

ATK_WRAP(atk_jpeg90, jpeg_roundtrip(in, 90, out))
ATK_WRAP(atk_jpeg75, jpeg_roundtrip(in, 75, out))
ATK_WRAP(atk_jpeg50, jpeg_roundtrip(in, 50, out))
ATK_WRAP(atk_jpeg30, jpeg_roundtrip(in, 30, out))
ATK_WRAP(atk_h264_crf23, h264_roundtrip(in, 23, out))
ATK_WRAP(atk_h264_crf28, h264_roundtrip(in, 28, out))
ATK_WRAP(atk_h264_crf35, h264_roundtrip(in, 35, out))
ATK_WRAP(atk_scale50, scale_by(in, SCALE_HALF, out))
ATK_WRAP(atk_scale33, scale_by(in, SCALE_THIRD, out))
ATK_WRAP(atk_scale25, scale_by(in, SCALE_QUARTER, out))
ATK_WRAP(atk_crop50_a, crop_area(in, CROP_AREA_HALF, CROP_TOP_LEFT, seed, out))
ATK_WRAP(atk_crop50_b, crop_area(in, CROP_AREA_HALF, CROP_CENTRE, seed, out))
ATK_WRAP(atk_crop50_c, crop_area(in, CROP_AREA_HALF, CROP_RANDOM, seed, out))
ATK_WRAP(atk_rot2, rotate(in, ROT_SMALL_DEG, out))
ATK_WRAP(atk_rotm2, rotate(in, -ROT_SMALL_DEG, out))
ATK_WRAP(atk_rot5, rotate(in, ROT_LARGE_DEG, out))
ATK_WRAP(atk_rotm5, rotate(in, -ROT_LARGE_DEG, out))
ATK_WRAP(atk_blur1, gaussian_blur(in, BLUR_SIGMA, out))
ATK_WRAP(atk_noise5, add_noise(in, NOISE_SIGMA, seed, out))
ATK_WRAP(atk_gamma07, gamma_curve(in, GAMMA_LOW, out))
ATK_WRAP(atk_gamma14, gamma_curve(in, GAMMA_HIGH, out))
ATK_WRAP(atk_bright_p20, brightness(in, BRIGHT_DELTA, out))
ATK_WRAP(atk_bright_m20, brightness(in, -BRIGHT_DELTA, out))
ATK_WRAP(atk_contrast08, contrast(in, CONTRAST_GAIN, out))
ATK_WRAP(atk_aniso_w075, scale_to(in, scaled_side(in->width, ANISO_075), in->height, out))
ATK_WRAP(atk_aniso_h075, scale_to(in, in->width, scaled_side(in->height, ANISO_075), out))
ATK_WRAP(atk_aniso_w060, scale_to(in, scaled_side(in->width, ANISO_060), in->height, out))
ATK_WRAP(atk_aniso_h133, scale_to(in, in->width, scaled_side(in->height, ANISO_133), out))
ATK_WRAP(atk_shear3, shear(in, SHEAR_SMALL_DEG, out))
ATK_WRAP(atk_shearm3, shear(in, -SHEAR_SMALL_DEG, out))
ATK_WRAP(atk_shear6, shear(in, SHEAR_LARGE_DEG, out))
ATK_WRAP(atk_shearm6, shear(in, -SHEAR_LARGE_DEG, out))
ATK_WRAP(atk_persp3, perspective(in, PERSP_SMALL, seed, WARP_BILINEAR, out))
ATK_WRAP(atk_persp6, perspective(in, PERSP_LARGE, seed, WARP_BILINEAR, out))
ATK_WRAP(atk_screen_photo, screen_photo(in, seed, WARP_BILINEAR, out))
ATK_WRAP(atk_screen_moire, screen_photo(in, seed, WARP_SUBPIXELS, out))
ATK_WRAP(atk_screen_photo_undone, screen_photo_undone(in, seed, out))

const atk_def atk_list[] = {
    {"none", atk_none},
    {"jpeg90", atk_jpeg90},
    {"jpeg75", atk_jpeg75},
    {"jpeg50", atk_jpeg50},
    {"jpeg30", atk_jpeg30},
    {"h264_crf23", atk_h264_crf23},
    {"h264_crf28", atk_h264_crf28},
    {"h264_crf35", atk_h264_crf35},
    {"scale50", atk_scale50},
    {"scale33", atk_scale33},
    {"scale25", atk_scale25},
    {"scale50up", atk_scale50up},
    {"crop50_a", atk_crop50_a},
    {"crop50_b", atk_crop50_b},
    {"crop50_c", atk_crop50_c},
    {"crop512", atk_crop512},
    {"rot2", atk_rot2},
    {"rotm2", atk_rotm2},
    {"rot5", atk_rot5},
    {"rotm5", atk_rotm5},
    {"flip", atk_flip},
    {"blur1", atk_blur1},
    {"noise5", atk_noise5},
    {"gamma07", atk_gamma07},
    {"gamma14", atk_gamma14},
    {"bright_p20", atk_bright_p20},
    {"bright_m20", atk_bright_m20},
    {"contrast08", atk_contrast08},
    {"grey", atk_grey},
    {"chain", atk_chain},
    {"review_sheet", atk_review_sheet},
    {"review_sheet_43", atk_review_sheet_43},
    {"aniso_w075", atk_aniso_w075},
    {"aniso_h075", atk_aniso_h075},
    {"aniso_w060", atk_aniso_w060},
    {"aniso_h133", atk_aniso_h133},
    {"shear3", atk_shear3},
    {"shearm3", atk_shearm3},
    {"shear6", atk_shear6},
    {"shearm6", atk_shearm6},
    {"persp3", atk_persp3},
    {"persp6", atk_persp6},
    {"screen_photo", atk_screen_photo},
    {"screen_moire", atk_screen_moire},
    {"screen_photo_undone", atk_screen_photo_undone},
};

int atk_count(void)
{
    return (int)(sizeof atk_list / sizeof atk_list[0]);
}

const atk_def *atk_find(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < atk_count(); i++)
        if (strcmp(atk_list[i].name, name) == 0)
            return &atk_list[i];
    return NULL;
}
