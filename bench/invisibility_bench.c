/*
 * bench/invisibility: how far each stamped pixel's colour is from the
 * original's, as the eye judges it (CIEDE2000, sRGB -> CIELAB D65), per
 * frame and per profile, on the robustness corpus (frame i: seed i, the
 * styles of tests/gen in turn, the dark, neutral, inked and grainy kinds
 * included).
 *
 *   still  the RGB frame stamped with cm_stamper_image (luma and the
 *          blue-yellow share)
 *   v420   the frame as a video frame (BT.709, limited range, as swscale
 *   v422   makes it for an encoder): 4:2:0 8-bit (H.264, HEVC), 4:2:2
 *   v444   10-bit (ProRes 422 HQ), 4:4:4 10-bit (ProRes 4444); its luma
 *          stamped the way a video stamp does (read and written back by
 *          the transcoder's functions, headroom limited by the colour
 *          budget of each pixel's colour), then both it and the unmarked
 *          frame back to RGB: the difference is the mark's alone, not the
 *          chroma subsampling's
 *
 * Per row: ΔE00 mean, p99, p99.9, max, the share of pixels over 1.0 and
 * over 2.3, the largest |luma change| among pixels under luma 32, PSNR-Y
 * and SSIM-Y (stills), and PASS/MISS against the targets of the colour
 * budget issue:
 *   default                     p99.9 <= 2.0, max <= 3.0, share > 2.3 <= 0.01 %
 *   subtle                      max <= 2.0
 *   robust                      max <= 5.0
 *   video frames                "the same limits as default" (the issue),
 *                               robust's own where it allows more
 * Under the default profile a budget line comes first: every colour of a
 * grid moved by a video frame's share of its luma room, as shown (the
 * room is all such a frame's pixels get: none is checked after rounding).
 * --full-chroma shows the video frames with chroma interpolated both ways
 * (players that interpolate) instead of ffmpeg's default RGB output.
 * --crop PATH writes, for the new frame kinds (painted .. film) under the
 * default profile, the worst pixel's neighbourhood at 2x: original |
 * stamped | difference x16 around grey.
 */
#include "benchutil.h"
#include "celmark/celmark.h"
#include "invisibility.h"
#include "cel.h"

#include "formats/video.h"
#include "formats/video_internal.h"
#include "pixels/colour.h"
#include "watermark/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libswscale/swscale.h>

#define FRAME_W BENCH_FRAME_W /* corpus frame size, pixels (benchutil.h) */
#define FRAME_H BENCH_FRAME_H

typedef struct target {
    double p999, max, over23; /* < 0: none */
} target;

static const struct {
    const char *name;
    cm_profile profile;
    target t;
} profiles[] = {
    {"subtle", CM_PROFILE_SUBTLE, {-1, 2.0, -1}},
    {"default", CM_PROFILE_DEFAULT, {2.0, 3.0, 0.0001}},
    {"robust", CM_PROFILE_ROBUST, {-1, 5.0, -1}},
};
#define NPROF (int)(sizeof(profiles) / sizeof(profiles[0]))

static int pass(const target *t, const cm_de_stats *s)
{
    return (t->p999 < 0 || s->p999 <= t->p999) && (t->max < 0 || s->max <= t->max) &&
           (t->over23 < 0 || s->over_2_3 <= t->over23);
}

/* ---- the video path -------------------------------------------------- */

/* The video frame kinds a row is made for: each a layout stamps are
 * delivered in, BT.709 limited range as swscale makes it for an encoder. */
static const struct {
    const char *kind;
    enum AVPixelFormat fmt;
} video_kinds[] = {
    {"v420", AV_PIX_FMT_YUV420P},     /* H.264 / HEVC deliveries */
    {"v422", AV_PIX_FMT_YUV422P10LE}, /* ProRes 422 HQ, DNxHR HQX */
    {"v444", AV_PIX_FMT_YUV444P10LE}, /* ProRes 4444 */
};
#define NVIDEO (int)(sizeof(video_kinds) / sizeof(video_kinds[0]))

/* Back to RGB, the chroma upsampled as ffmpeg's command line does by
 * default (0: across, each pixel pair shows its sample; down, bicubic) or
 * bicubic both ways, as players that interpolate show it (--full-chroma). */
static int full_chroma;

/* RGB24 <-> f (its format), BT.709 limited range, swscale's bicubic chroma */
static int convert(const cm_image *rgb, AVFrame *f, int to_yuv)
{
    const int flags = SWS_BICUBIC | SWS_ACCURATE_RND;
    struct SwsContext *s =
        to_yuv ? sws_getContext(rgb->width, rgb->height, AV_PIX_FMT_RGB24, f->width, f->height,
                                f->format, flags, NULL, NULL, NULL)
               : sws_getContext(f->width, f->height, f->format, rgb->width, rgb->height,
                                AV_PIX_FMT_RGB24, flags | (full_chroma ? SWS_FULL_CHR_H_INT : 0),
                                NULL, NULL, NULL);
    if (!s)
        return CM_E_INTERNAL;
    const int *coef = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(s, coef, to_yuv ? 1 : 0, coef, to_yuv ? 0 : 1, 0, 1 << 16, 1 << 16);
    uint8_t *rs[1] = {rgb->data};
    int rls[1] = {(int)rgb->stride};
    if (to_yuv)
        sws_scale(s, (const uint8_t *const *)rs, rls, 0, rgb->height, f->data, f->linesize);
    else
        sws_scale(s, (const uint8_t *const *)f->data, f->linesize, 0, f->height, rs, rls);
    sws_freeContext(s);
    return CM_OK;
}

/* Mark f's luma as the video stamp does (formats/video_write.c's
 * mark_frame, pipeline/stamp_video.c's hook): its luma read where it lies,
 * headroom to the nominal range, the colour budget of each pixel's colour
 * with its own chroma, cm_stamper_plane, the change written back into the
 * samples. Whole budget planes rather than rows: the same values
 * (tests/unit/test_mark.c). */
static int mark_frame(cm_stamper *st, AVFrame *f)
{
    cm__luma_fmt lf = cm__luma_describe(f);
    cm__yuv_chroma c;
    if (!lf.native || !cm__luma_chroma(f, &lf, &c))
        return CM_E_UNSUPPORTED;
    cm__luma_map m = cm__luma_map_make(&lf);
    cm_plane l, lo, hi;
    int ret = cm_plane_alloc(&l, f->width, f->height);
    if (!ret && (ret = cm_plane_alloc(&lo, f->width, f->height)) == 0 &&
        (ret = cm_plane_alloc(&hi, f->width, f->height)) != 0)
        cm_plane_free(&lo);
    if (ret) {
        cm_plane_free(&l);
        return ret;
    }
    cm__luma_read(f, &lf, &m, &l);
    for (int y = 0; y < f->height; y++)
        cm__luma_headroom_row(l.data + y * l.stride, lo.data + y * lo.stride,
                              hi.data + y * hi.stride, f->width);
    cm__yuv_luma_room(cm__stamper_room(st), &l, &c, &lo, &hi);
    if (!(ret = cm_stamper_plane(st, &l, &lo, &hi)))
        cm__luma_write(f, &lf, &m, &l);
    cm_plane_free(&l);
    cm_plane_free(&lo);
    cm_plane_free(&hi);
    return ret;
}

/* img's round trip through a video frame of kind k, unmarked (ref) and
 * marked (out). */
static int video_frames(cm_stamper *st, const cm_image *img, int k, cm_image **ref,
                        cm_image **out)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return CM_E_NOMEM;
    f->format = video_kinds[k].fmt;
    f->width = img->width;
    f->height = img->height;
    f->color_range = AVCOL_RANGE_MPEG;
    f->colorspace = AVCOL_SPC_BT709;
    int ret = av_frame_get_buffer(f, 0) < 0 ? CM_E_NOMEM : CM_OK;
    if (!ret && !(ret = convert(img, f, 1)) && !(ret = cm_image_copy_pixels(img, ref)) &&
        !(ret = convert(*ref, f, 0)) && !(ret = mark_frame(st, f)) &&
        !(ret = cm_image_copy_pixels(img, out)))
        ret = convert(*out, f, 0);
    av_frame_free(&f);
    return ret;
}

/* ---- the budget table alone ------------------------------------------ */

/* Every colour of a grid (every 3rd value a channel), its luma moved down
 * and up as far as a video frame's share of its cell's room lets it, as a
 * display shows the result (clipped to 0..255): the worst ΔE00 and how
 * many moves pass de and 3.0. The room is all a video frame's pixels get:
 * no pixel of it is checked after rounding. */
static void budget_grid(float de)
{
    const cm__room *t = cm__room_get(de);
    if (!t)
        return;
    double worst[2] = {0, 0};
    long over_de[2] = {0, 0}, over3[2] = {0, 0}, n = 0;
    int at[2][3] = {{0}};
    for (int r = 0; r < 256; r += 3)
        for (int g = 0; g < 256; g += 3)
            for (int b = 0; b < 256; b += 3, n++) {
                const float rgb[3] = {(float)r, (float)g, (float)b};
                const cm__room_cell *c = cm__room_at(t, rgb);
                const float room[2] = {c->luma_down, c->luma_up};
                for (int k = 0; k < 2; k++) {
                    float d = room[k] * CM__YUV_ROOM_SHARE - CM__YUV_ROUND_MARGIN, m[3];
                    d = d > 0 ? d : 0;
                    cm__colour_move(rgb, k ? d : -d, 0, m);
                    for (int i = 0; i < 3; i++)
                        m[i] = m[i] < 0 ? 0 : (m[i] > 255 ? 255 : m[i]);
                    double e = cm__de00_rgb(rgb, m);
                    over_de[k] += e > de;
                    over3[k] += e > 3.0;
                    if (e > worst[k]) {
                        worst[k] = e;
                        at[k][0] = r, at[k][1] = g, at[k][2] = b;
                    }
                }
            }
    printf("budget table (ΔE00 %.1f), a video frame's luma room on every colour of a grid "
           "(%ld colours, every 3rd value), as shown:\n",
           de, n);
    for (int k = 0; k < 2; k++)
        printf("  luma %-4s max %.2f at (%d,%d,%d); moves over %.1f: %ld, over 3.0: %ld\n",
               k ? "up" : "down", worst[k], at[k][0], at[k][1], at[k][2], de, over_de[k],
               over3[k]);
}

/* ---- the worst pixel ------------------------------------------------- */

typedef struct worst {
    double de;
    int frame, x, y;
    cm_image *orig, *marked; /* copies of the frame holding it */
} worst;

/* Frame `frame` holds a new worst pixel, of ΔE00 de (the frame's maximum,
 * cm_image_delta_e): find where it is and keep copies of both frames. */
static void keep_worst(const cm_image *a, const cm_image *b, int frame, double de, worst *w)
{
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width; x++) {
            const uint8_t *p = px(a, x, y), *q = px(b, x, y);
            if (p[0] == q[0] && p[1] == q[1] && p[2] == q[2])
                continue;
            float ca[3] = {p[0], p[1], p[2]}, cb[3] = {q[0], q[1], q[2]};
            if (cm__de00_rgb(ca, cb) < de)
                continue;
            w->de = de;
            w->frame = frame;
            w->x = x;
            w->y = y;
            cm_image_free(&w->orig);
            cm_image_free(&w->marked);
            cm_image_copy_pixels(a, &w->orig);
            cm_image_copy_pixels(b, &w->marked);
            return;
        }
}

/* ---- main ------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: invisibility [--frames N] [--profiles subtle,default,robust] "
                    "[--no-video] [--full-chroma] [--crop PATH]\n");
}

static void print_row(const char *kind, int frame, const char *style, const cm_de_stats *s,
                      double psnr_db, double ssim_y, const target *t)
{
    char q[32] = "     -       -";
    if (psnr_db >= 0)
        snprintf(q, sizeof(q), "%6.2f  %6.4f", psnr_db, ssim_y);
    printf("%-5s %3d %-9s %5.3f %5.2f %5.2f %5.2f %7.3f%% %8.4f%% %5.1f %s  %s\n", kind, frame,
           style, s->mean, s->p99, s->p999, s->max, 100 * s->over_1, 100 * s->over_2_3,
           s->dark_dy_max, q, pass(t, s) ? "PASS" : "MISS");
}

int main(int argc, char **argv)
{
    int frames = 20, video = 1;
    const char *plist = "subtle,default,robust", *crop = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profiles") && i + 1 < argc)
            plist = argv[++i];
        else if (!strcmp(argv[i], "--crop") && i + 1 < argc)
            crop = argv[++i];
        else if (!strcmp(argv[i], "--no-video"))
            video = 0;
        else if (!strcmp(argv[i], "--full-chroma"))
            full_chroma = 1;
        else {
            usage();
            return 2;
        }
    }
    if (frames < 1) {
        usage();
        return 2;
    }
    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    if (cm_ctx_new(&ctx) || bench_key(&key, 0)) {
        fprintf(stderr, "invisibility: cannot set up\n");
        return 4;
    }
    worst w = {0};
    int misses = 0, rows = 0;
    printf("invisibility: celmark %s, %d frames %dx%d (styles of tests/gen in turn), "
           "CIEDE2000 per pixel (sRGB, D65)\n",
           cm_version(), frames, FRAME_W, FRAME_H);
    for (int pi = 0; pi < NPROF; pi++) {
        if (!strstr(plist, profiles[pi].name))
            continue;
        const target *t = &profiles[pi].t;
        /* video frames: the default's limits, or robust's own */
        const target *tv = profiles[pi].profile == CM_PROFILE_ROBUST ? t : &profiles[1].t;
        printf("\n== profile %s: target", profiles[pi].name);
        if (t->p999 >= 0)
            printf(" p99.9 <= %.1f,", t->p999);
        printf(" max <= %.1f", t->max);
        if (t->over23 >= 0)
            printf(", share > 2.3 <= %.2f %%", 100 * t->over23);
        printf(" (every still; video frames: %s)\n",
               tv == t ? "the same" : "the default profile's limits");
        if (video && profiles[pi].profile == CM_PROFILE_DEFAULT)
            budget_grid(2.0f);
        printf(
            "kind  frm style      mean   p99 p99.9   max    >1.0     >2.3 dY<32 psnr_y  ssim_y\n");
        cm_de_stats worst_s[1 + NVIDEO] = {{0}};
        for (int fi = 1; fi <= frames; fi++) {
            cel_params p;
            bench_frame_params(&p, fi);
            cm_image *img = NULL, *marked = NULL, *ref = NULL, *vmarked = NULL;
            cm_stamper *st = NULL;
            cm_stamp_params sp;
            cm_stamp_params_default(&sp);
            sp.profile = profiles[pi].profile;
            uint64_t seed = (uint64_t)fi;
            int ret = cel_generate(&img, &p);
            if (!ret)
                ret = cm_stamper_new(ctx, key, bench_splitmix64(&seed), &sp, &st);
            if (!ret)
                ret = cm_image_copy_pixels(img, &marked);
            if (!ret)
                ret = cm_stamper_image(st, marked);
            cm_de_stats s;
            if (!ret)
                ret = cm_image_delta_e(ctx, img, marked, &s);
            if (ret) {
                fprintf(stderr, "invisibility: frame %d: %s\n", fi, cm_ctx_last_error(ctx));
                return 4;
            }
            cm_plane ya, yb;
            double q_psnr = -1, q_ssim = -1;
            if (!cm_image_to_plane(ctx, img, &ya) && !cm_image_to_plane(ctx, marked, &yb)) {
                q_psnr = psnr(&ya, &yb);
                q_ssim = ssim(&ya, &yb);
                cm_plane_free(&yb);
            }
            cm_plane_free(&ya);
            print_row("still", fi, cel_style_name(p.style), &s, q_psnr, q_ssim, t);
            misses += !pass(t, &s);
            rows++;
            worst_s[0].max = fmax(worst_s[0].max, s.max);
            worst_s[0].p999 = fmax(worst_s[0].p999, s.p999);
            if (crop && profiles[pi].profile == CM_PROFILE_DEFAULT && p.style >= CEL_PAINTED &&
                s.max > w.de)
                keep_worst(img, marked, fi, s.max, &w);
            for (int k = 0; video && k < NVIDEO; k++) {
                if ((ret = video_frames(st, img, k, &ref, &vmarked)) ||
                    (ret = cm_image_delta_e(ctx, ref, vmarked, &s))) {
                    fprintf(stderr, "invisibility: frame %d (%s): %s\n", fi, video_kinds[k].kind,
                            cm_ctx_last_error(ctx));
                    return 4;
                }
                print_row(video_kinds[k].kind, fi, cel_style_name(p.style), &s, -1, -1, tv);
                misses += !pass(tv, &s);
                rows++;
                worst_s[1 + k].max = fmax(worst_s[1 + k].max, s.max);
                worst_s[1 + k].p999 = fmax(worst_s[1 + k].p999, s.p999);
                cm_image_free(&ref);
                cm_image_free(&vmarked);
            }
            fflush(stdout);
            cm_stamper_free(&st);
            cm_image_free(&img);
            cm_image_free(&marked);
            cm_image_free(&ref);
            cm_image_free(&vmarked);
        }
        printf("worst over frames: still p99.9 %.2f max %.2f", worst_s[0].p999, worst_s[0].max);
        for (int k = 0; video && k < NVIDEO; k++)
            printf("; %s p99.9 %.2f max %.2f", video_kinds[k].kind, worst_s[1 + k].p999,
                   worst_s[1 + k].max);
        printf("\n");
    }
    printf("\nrows_meeting_target: %d of %d\n", rows - misses, rows);
    if (crop && w.orig) {
        crop_box box = {w.x - CROP_SIDE / 2, w.y - CROP_SIDE / 2};
        box.x = box.x < 0 ? 0 : (box.x > FRAME_W - CROP_SIDE ? FRAME_W - CROP_SIDE : box.x);
        box.y = box.y < 0 ? 0 : (box.y > FRAME_H - CROP_SIDE ? FRAME_H - CROP_SIDE : box.y);
        const uint8_t *a = px(w.orig, w.x, w.y), *b = px(w.marked, w.x, w.y);
        printf("worst_pixel: frame %d (%s) at %d,%d: (%d,%d,%d) -> (%d,%d,%d), ΔE00 %.2f; "
               "crop %s (%dx%d at %d,%d, 2x: original | stamped | diff x16)\n",
               w.frame,
               cel_style_name((cel_style)(CEL_FLAT + (w.frame - 1) % (CEL_STYLE_COUNT - CEL_FLAT))),
               w.x, w.y, a[0], a[1], a[2], b[0], b[1], b[2], w.de, crop, CROP_SIDE, CROP_SIDE,
               box.x, box.y);
        if (write_crop(ctx, w.orig, w.marked, box, crop))
            fprintf(stderr, "invisibility: %s: %s\n", crop, cm_ctx_last_error(ctx));
    }
    cm_image_free(&w.orig);
    cm_image_free(&w.marked);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return misses ? 1 : 0;
}
