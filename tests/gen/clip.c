/* Synthetic cel-style clips (see clip.h). */
#include "clip.h"
#include "cel.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PAN_MARGIN 64      /* extra pixels around the view for the pan */
#define AUDIO_RATE 48000

void clip_params_default(clip_params *p)
{
    memset(p, 0, sizeof(*p));
    p->width = 640;
    p->height = 360;
    p->fps_num = 24;
    p->fps_den = 1;
    p->frames = 48;
    p->shot_sec = 1.0;
    p->seed = 1;
    p->codec = "libx264";
    p->pix_fmt = "yuv420p";
}

typedef struct gen {
    AVFormatContext *oc;
    AVCodecContext *venc, *aenc;
    AVStream *vs, *as;
    AVFrame *vf, *af;
    AVPacket *pkt;
    struct SwsContext *sws;
    cm_image *shot;
    int shot_index;
    int64_t audio_samples;
} gen;

static int fail(const char *what, int err)
{
    char buf[128];
    av_strerror(err, buf, sizeof(buf));
    fprintf(stderr, "clip: %s: %s\n", what, buf);
    return 1;
}

static int drain(gen *g, AVCodecContext *enc, AVStream *st)
{
    for (;;) {
        int err = avcodec_receive_packet(enc, g->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return 0;
        if (err < 0)
            return fail("encode", err);
        av_packet_rescale_ts(g->pkt, enc->time_base, st->time_base);
        g->pkt->stream_index = st->index;
        if ((err = av_interleaved_write_frame(g->oc, g->pkt)) < 0)
            return fail("write", err);
    }
}

/* Roughly Gaussian noise of deviation sigma (8-bit code values; the sum
 * of four uniforms) added to a plane of 8-bit or 9-16-bit samples, drawn
 * from seed. */
static void add_grain(uint8_t *plane, int linesize, int w, int h, int depth, double sigma,
                      uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1;
    float scale = (float)(1 << (depth - 8)), vmax = (float)((1 << depth) - 1);
    float k = (float)(sigma * sqrt(3.0)) * scale; /* four uniforms of [-1,1]: variance 4/3 */
    for (int y = 0; y < h; y++) {
        uint8_t *row = plane + (ptrdiff_t)y * linesize;
        for (int x = 0; x < w; x++) {
            float u = 0;
            for (int n = 0; n < 4; n++) {
                s ^= s << 13, s ^= s >> 17, s ^= s << 5;
                u += (float)(s >> 8) / (float)(1 << 23) - 1.0f;
            }
            uint16_t v16;
            if (depth > 8)
                memcpy(&v16, row + 2 * x, 2);
            float v = (depth > 8 ? v16 : row[x]) + 0.5f * k * u + 0.5f;
            v = v < 0 ? 0 : (v > vmax ? vmax : v);
            if (depth > 8) {
                v16 = (uint16_t)v;
                memcpy(row + 2 * x, &v16, 2);
            } else {
                row[x] = (uint8_t)v;
            }
        }
    }
}

/* Frame i: the shot's frame, panned; drawings held for two frames (live:
 * a new one every frame, panned faster), each with its own grain. */
static int render(gen *g, const clip_params *p, int i)
{
    double fps = (double)p->fps_num / p->fps_den;
    int shot = (int)floor(i / (p->shot_sec * fps));
    if (!g->shot || shot != g->shot_index) {
        cm_image_free(&g->shot);
        cel_params cp;
        cel_params_default(&cp);
        cp.width = p->width + 2 * PAN_MARGIN;
        cp.height = p->height + 2 * PAN_MARGIN;
        cp.seed = p->seed * 1000 + (uint32_t)shot;
        cp.channels = 4; /* RGBA: alpha used when the pix_fmt has it */
        if (p->live)
            cp.style = shot % 2 ? CEL_FILM : CEL_TEXTURED;
        if (cel_generate(&g->shot, &cp))
            return 1;
        g->shot_index = shot;
    }
    int drawing = p->live ? i : i / 2, step = p->live ? 2 : 3;
    int dx = (drawing * step) % (2 * PAN_MARGIN), dy = (drawing * 1) % (2 * PAN_MARGIN);
    const uint8_t *src = g->shot->data + (ptrdiff_t)dy * g->shot->stride + dx * 4;
    const uint8_t *planes[1] = {src};
    int ls[1] = {(int)g->shot->stride};
    if (av_frame_make_writable(g->vf) < 0)
        return 1;
    sws_scale(g->sws, planes, ls, 0, p->height, g->vf->data, g->vf->linesize);
    double grain = p->grain > 0 ? p->grain : (p->live ? 4.0 : 0);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(g->vf->format);
    if (grain > 0 && d && d->comp[0].depth <= 16 && !(d->flags & AV_PIX_FMT_FLAG_RGB))
        for (int k = 0; k < 3 && g->vf->data[k]; k++) {
            int w = k ? AV_CEIL_RSHIFT(p->width, d->log2_chroma_w) : p->width;
            int h = k ? AV_CEIL_RSHIFT(p->height, d->log2_chroma_h) : p->height;
            add_grain(g->vf->data[k], g->vf->linesize[k], w, h, d->comp[0].depth,
                      k ? grain / 2 : grain,
                      p->seed * 7919u + (uint32_t)drawing * 3 + (uint32_t)k);
        }
    g->vf->pts = i;
    return 0;
}

static int add_audio(gen *g, const clip_params *p)
{
    const AVOutputFormat *of = g->oc->oformat;
    enum AVCodecID id = avformat_query_codec(of, AV_CODEC_ID_PCM_S16LE, FF_COMPLIANCE_NORMAL) == 1
                            ? AV_CODEC_ID_PCM_S16LE
                            : AV_CODEC_ID_AAC;
    const AVCodec *c = avcodec_find_encoder(id);
    if (!c || !(g->aenc = avcodec_alloc_context3(c)))
        return 1;
    g->aenc->sample_rate = AUDIO_RATE;
    g->aenc->sample_fmt = c->sample_fmts[0];
    av_channel_layout_default(&g->aenc->ch_layout, 2);
    g->aenc->time_base = (AVRational){1, AUDIO_RATE};
    g->aenc->bit_rate = 128000;
    if (of->flags & AVFMT_GLOBALHEADER)
        g->aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int err = avcodec_open2(g->aenc, c, NULL);
    if (err < 0)
        return fail("audio encoder", err);
    g->as = avformat_new_stream(g->oc, NULL);
    avcodec_parameters_from_context(g->as->codecpar, g->aenc);
    g->as->time_base = g->aenc->time_base;
    g->af = av_frame_alloc();
    g->af->format = g->aenc->sample_fmt;
    g->af->nb_samples = g->aenc->frame_size ? g->aenc->frame_size : 1024;
    av_channel_layout_copy(&g->af->ch_layout, &g->aenc->ch_layout);
    g->af->sample_rate = AUDIO_RATE;
    (void)p;
    return av_frame_get_buffer(g->af, 0) < 0;
}

/* Audio up to time t (seconds): a 440 Hz tone. */
static int audio_until(gen *g, double t)
{
    while (g->aenc && g->audio_samples < t * AUDIO_RATE) {
        if (av_frame_make_writable(g->af) < 0)
            return 1;
        int n = g->af->nb_samples;
        for (int s = 0; s < n; s++) {
            double v = 0.2 * sin(2 * M_PI * 440 * (double)(g->audio_samples + s) / AUDIO_RATE);
            for (int ch = 0; ch < 2; ch++) {
                if (g->af->format == AV_SAMPLE_FMT_S16)
                    ((int16_t *)g->af->data[0])[2 * s + ch] = (int16_t)(v * 32767);
                else /* fltp */
                    ((float *)g->af->data[ch])[s] = (float)v;
            }
        }
        g->af->pts = g->audio_samples;
        g->audio_samples += n;
        if (avcodec_send_frame(g->aenc, g->af) < 0 || drain(g, g->aenc, g->as))
            return 1;
    }
    return 0;
}

int clip_write(const char *path, const clip_params *p)
{
    gen g;
    memset(&g, 0, sizeof(g));
    g.shot_index = -1;
    int ret = 1, err;
    if ((err = avformat_alloc_output_context2(&g.oc, NULL, p->format, path)) < 0)
        return fail(path, err);
    const AVCodec *vc = avcodec_find_encoder_by_name(p->codec);
    enum AVPixelFormat pf = av_get_pix_fmt(p->pix_fmt ? p->pix_fmt : "yuv420p");
    if (!vc || pf == AV_PIX_FMT_NONE) {
        fprintf(stderr, "clip: no encoder %s or pixel format %s\n", p->codec, p->pix_fmt);
        goto done;
    }
    g.venc = avcodec_alloc_context3(vc);
    g.venc->width = p->width;
    g.venc->height = p->height;
    g.venc->pix_fmt = pf;
    g.venc->time_base = (AVRational){p->fps_den, p->fps_num};
    g.venc->framerate = (AVRational){p->fps_num, p->fps_den};
    g.venc->color_range = AVCOL_RANGE_MPEG;
    g.venc->colorspace = AVCOL_SPC_BT709;
    g.venc->color_primaries = AVCOL_PRI_BT709;
    g.venc->color_trc = AVCOL_TRC_BT709;
    if (g.oc->oformat->flags & AVFMT_GLOBALHEADER)
        g.venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    if (p->options)
        av_dict_parse_string(&opts, p->options, "=", ":", 0);
    if (!strcmp(p->codec, "libx265"))
        av_dict_set(&opts, "x265-params", "log-level=error", 0);
    err = avcodec_open2(g.venc, vc, &opts);
    av_dict_free(&opts);
    if (err < 0) {
        fail("video encoder", err);
        goto done;
    }
    g.vs = avformat_new_stream(g.oc, NULL);
    avcodec_parameters_from_context(g.vs->codecpar, g.venc);
    g.vs->time_base = g.venc->time_base;
    g.vs->avg_frame_rate = g.venc->framerate;
    if (p->timecode)
        av_dict_set(&g.vs->metadata, "timecode", p->timecode, 0);
    if (p->audio && add_audio(&g, p))
        goto done;
    if ((err = avio_open(&g.oc->pb, path, AVIO_FLAG_WRITE)) < 0) {
        fail(path, err);
        goto done;
    }
    if ((err = avformat_write_header(g.oc, NULL)) < 0) {
        fail("header", err);
        goto done;
    }
    g.vf = av_frame_alloc();
    g.pkt = av_packet_alloc();
    g.vf->format = pf;
    g.vf->width = p->width;
    g.vf->height = p->height;
    if (av_frame_get_buffer(g.vf, 0) < 0)
        goto done;
    g.sws = sws_getContext(p->width, p->height, AV_PIX_FMT_RGBA, p->width, p->height, pf,
                           SWS_BICUBIC, NULL, NULL, NULL);
    if (!g.sws)
        goto done;
    const int *coef = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(g.sws, coef, 1, coef, 0, 0, 1 << 16, 1 << 16);
    double fps = (double)p->fps_num / p->fps_den;
    for (int i = 0; i < p->frames; i++) {
        if (render(&g, p, i) || audio_until(&g, (i + 1) / fps))
            goto done;
        if (avcodec_send_frame(g.venc, g.vf) < 0 || drain(&g, g.venc, g.vs))
            goto done;
    }
    avcodec_send_frame(g.venc, NULL);
    if (drain(&g, g.venc, g.vs))
        goto done;
    if (g.aenc) {
        avcodec_send_frame(g.aenc, NULL);
        if (drain(&g, g.aenc, g.as))
            goto done;
    }
    if ((err = av_write_trailer(g.oc)) < 0) {
        fail("trailer", err);
        goto done;
    }
    ret = 0;
done:
    if (g.oc && g.oc->pb)
        avio_closep(&g.oc->pb);
    avformat_free_context(g.oc);
    avcodec_free_context(&g.venc);
    avcodec_free_context(&g.aenc);
    av_frame_free(&g.vf);
    av_frame_free(&g.af);
    av_packet_free(&g.pkt);
    sws_freeContext(g.sws);
    cm_image_free(&g.shot);
    return ret;
}
