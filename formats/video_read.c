/*
 * Reading a video for the verifier (cm__video_*): frames of the first video
 * stream as luma planes in 8-bit code values with their times. Native
 * layouts are read where they lie (video_luma.c); any other pixel format
 * goes through libswscale to grey float.
 */
#include "video_internal.h"

#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>
#include <libavutil/timecode.h>
#include <libswscale/swscale.h>

struct cm__video_reader {
    cm__video_input in;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    cm_plane luma;
    float *conv; /* swscale output for non-native formats */
    int conv_w, conv_h;
    int eof_sent;
    int64_t first_pts;
    int64_t nframes; /* frames returned so far */
    char tc[AV_TIMECODE_STR_SIZE];
};

void cm__video_close(cm__video_reader **pr)
{
    if (!pr || !*pr)
        return;
    cm__video_reader *r = *pr;
    av_packet_free(&r->pkt);
    av_frame_free(&r->frame);
    sws_freeContext(r->sws);
    cm_plane_free(&r->luma);
    av_free(r->conv);
    cm__video_input_close(&r->in);
    free(r);
    *pr = NULL;
}

int cm__video_open(cm_ctx *ctx, const char *path, const cm_limits *limits, int threads,
                   int flags, cm__video_reader **out)
{
    *out = NULL;
    cm__video_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    int ret = cm__video_input_open(ctx, path, limits, threads, flags, &r->in);
    if (ret)
        goto fail;
    r->pkt = av_packet_alloc();
    r->frame = av_frame_alloc();
    if (!r->pkt || !r->frame) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    r->first_pts = AV_NOPTS_VALUE;
    cm__video_find_timecode(r->in.fc, r->in.vi, r->tc, sizeof(r->tc));
    *out = r;
    return CM_OK;
fail:
    cm__video_close(&r);
    return ret;
}

double cm__video_fps(const cm__video_reader *r)
{
    AVRational q = av_guess_frame_rate(r->in.fc, r->in.fc->streams[r->in.vi], NULL);
    return q.num > 0 && q.den > 0 ? av_q2d(q) : 25.0;
}

int64_t cm__video_frames_hint(const cm__video_reader *r)
{
    AVStream *s = r->in.fc->streams[r->in.vi];
    if (s->nb_frames > 0)
        return s->nb_frames;
    if (r->in.fc->duration > 0)
        return (int64_t)(r->in.fc->duration / (double)AV_TIME_BASE * cm__video_fps(r) + 0.5);
    return -1;
}

const char *cm__video_timecode(const cm__video_reader *r)
{
    return r->tc;
}

/* Luma of r->frame into r->luma (allocated at the frame's size). */
static int frame_luma(cm__video_reader *r)
{
    AVFrame *f = r->frame;
    if (f->width <= 0 || f->height <= 0)
        return cm__error(r->in.ctx, CM_E_CORRUPT, "%s: a frame without size", r->in.path);
    if ((uint64_t)f->width * (uint64_t)f->height > r->in.limits.max_pixels)
        return cm__video_pixels_error(&r->in, (uint64_t)f->width, (uint64_t)f->height);
    if (r->luma.width != f->width || r->luma.height != f->height) {
        cm_plane_free(&r->luma);
        if (cm_plane_alloc(&r->luma, f->width, f->height))
            return cm__error(r->in.ctx, CM_E_NOMEM, "%s: out of memory", r->in.path);
    }
    cm__luma_fmt lf = cm__luma_describe(f);
    if (lf.native) {
        cm__luma_map m = cm__luma_map_make(&lf);
        cm__luma_read(f, &lf, &m, &r->luma);
        return CM_OK;
    }
    /* any other layout: libswscale to grey float (full range) */
    r->sws = sws_getCachedContext(r->sws, f->width, f->height, f->format, f->width, f->height,
                                  AV_PIX_FMT_GRAYF32, SWS_BILINEAR, NULL, NULL, NULL);
    if (!r->sws)
        return cm__error(r->in.ctx, CM_E_UNSUPPORTED, "%s: cannot convert %s frames",
                         r->in.path, av_get_pix_fmt_name(f->format));
    if (r->conv_w != f->width || r->conv_h != f->height) {
        av_freep(&r->conv);
        size_t n;
        if (cm__mul_size((size_t)f->width, (size_t)f->height, &n) ||
            !(r->conv = av_malloc(n * sizeof(float) + 64)))
            return cm__error(r->in.ctx, CM_E_NOMEM, "%s: out of memory", r->in.path);
        r->conv_w = f->width;
        r->conv_h = f->height;
    }
    uint8_t *dst[4] = {(uint8_t *)r->conv};
    int dst_ls[4] = {f->width * (int)sizeof(float)};
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_ls);
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            r->luma.data[y * r->luma.stride + x] = 255.0f * r->conv[(size_t)y * f->width + x];
    return CM_OK;
}

int cm__video_next(cm__video_reader *r, cm_plane **luma, double *t)
{
    for (;;) {
        if (cm__video_time_over(&r->in))
            return cm__video_time_error(&r->in);
        cm__video_decode_begin(&r->in);
        int err = avcodec_receive_frame(r->in.dec, r->frame);
        cm__video_decode_end(&r->in);
        if (err == 0) {
            if ((uint64_t)r->nframes >= r->in.limits.max_frames) {
                av_frame_unref(r->frame);
                return cm__video_frames_error(&r->in, 0);
            }
            r->nframes++;
            int64_t pts = r->frame->best_effort_timestamp;
            AVRational tb = r->in.fc->streams[r->in.vi]->time_base;
            if (pts != AV_NOPTS_VALUE && r->first_pts == AV_NOPTS_VALUE)
                r->first_pts = pts;
            *t = pts != AV_NOPTS_VALUE ? (pts - r->first_pts) * av_q2d(tb) : -1;
            int ret = frame_luma(r);
            av_frame_unref(r->frame);
            if (ret)
                return ret;
            *luma = &r->luma;
            return 1;
        }
        if (err == AVERROR_EOF)
            return 0;
        if (err != AVERROR(EAGAIN))
            return cm__video_av_fail(r->in.ctx, r->in.path, err, "decode a frame");
        if (r->eof_sent)
            return 0;
        /* feed the decoder */
        for (;;) {
            if (cm__video_time_over(&r->in))
                return cm__video_time_error(&r->in);
            cm__video_decode_begin(&r->in);
            err = av_read_frame(r->in.fc, r->pkt);
            cm__video_decode_end(&r->in);
            if (err == AVERROR_EOF) {
                r->eof_sent = 1;
                avcodec_send_packet(r->in.dec, NULL);
                break;
            }
            if (cm__video_time_over(&r->in))
                return cm__video_time_error(&r->in);
            if (err < 0)
                return cm__video_av_fail(r->in.ctx, r->in.path, err, "read the video");
            if (r->pkt->stream_index != r->in.vi) {
                av_packet_unref(r->pkt);
                continue;
            }
            cm__video_decode_begin(&r->in);
            err = avcodec_send_packet(r->in.dec, r->pkt);
            cm__video_decode_end(&r->in);
            av_packet_unref(r->pkt);
            if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_INVALIDDATA)
                return cm__video_av_fail(r->in.ctx, r->in.path, err, "decode a frame");
            break;
        }
    }
}

void cm__timecode_add(const char *tc0, int64_t frames, double fps, char *out, size_t size)
{
    int rate = (int)(fps + 0.5);
    if (rate < 1)
        rate = 1;
    AVTimecode tc;
    AVRational q = av_d2q(fps, 100000);
    int ok = tc0 && *tc0 && av_timecode_init_from_string(&tc, q, tc0, NULL) == 0;
    if (!ok && av_timecode_init(&tc, q, 0, 0, NULL) != 0) {
        snprintf(out, size, "%lld", (long long)frames);
        return;
    }
    char buf[AV_TIMECODE_STR_SIZE];
    av_timecode_make_string(&tc, buf, (int)(frames > INT32_MAX ? INT32_MAX : frames));
    snprintf(out, size, "%s", buf);
}
