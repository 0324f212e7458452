/*
 * The encoder of a transcoded video (cm__video_open_encoder): the source's
 * codec, profile, pixel format, colour tags and aspect ratio, and a quality
 * matched to the source unless the caller names one.
 *
 * Quality matched to the source (override with crf / qscale / codec):
 *
 *   H.264, H.265   the crf in the x264/x265 settings string the source
 *                  carries (SEI user data), else from its bits per pixel:
 *                  crf = 18 - 6 log2(bpp / 0.15), clamped to 12..32 (x264's
 *                  rule of thumb: +6 crf halves the bitrate; 0.15 bit per
 *                  pixel is a high-quality 1080p review encode)
 *   ProRes         prores_ks with the source's profile (proxy .. 4444 XQ)
 *   DNxHD / DNxHR  the source's profile, and its bit rate for DNxHD
 *   FFV1           lossless, same level
 *   VP9, AV1       crf as for H.264 (same scale) when not given
 *   MJPEG, MPEG-4  qscale 2 (visually lossless) when not given
 */
#include "video_transcode.h"
#include "format.h"
#include "video_meta.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/avstring.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* Matched-quality mapping, see the file comment. */
#define CRF_ANCHOR 18.0
#define BPP_ANCHOR 0.15
#define CRF_MIN 12
#define CRF_MAX 32
#define QSCALE_DEFAULT 2

/* Bytes of the first packets searched for an x264/x265 settings string. */
#define SEI_SEARCH_BYTES 4096

/* Packets of an FFV1 source read to find its key frame interval (its
 * encoder's -g; archives use 1, ffmpeg's default is 12). */
#define FFV1_GOP_SCAN 1000

/* Encoder threads where their number changes the bytes written, fixed so
 * a stamp gives the same bytes on any machine: x264 frame threads (its own
 * default on 4 cores is 6), x265 frame threads (its default on 8-15 cores),
 * slices of the MPEG-1/2/4 and MJPEG encoders (one per thread). */
#define X264_THREADS 8
#define X265_FRAME_THREADS 3
#define SLICE_THREADS 4

/* crf=N.N from an x264/x265 settings string in the stream's first bytes
 * (extradata, then the first packet), or -1. */
static double source_crf(const uint8_t *buf, size_t n)
{
    static const char *const tags[] = {"x264 - core", "x265 (build"};
    for (int t = 0; t < 2; t++) {
        size_t tl = strlen(tags[t]);
        for (size_t i = 0; i + tl < n; i++) {
            if (memcmp(buf + i, tags[t], tl))
                continue;
            /* the settings run to the end of the SEI: look for " crf=" */
            size_t end = i;
            while (end < n && buf[end] >= 0x20 && buf[end] < 0x7f)
                end++;
            for (size_t k = i; k + 5 < end; k++)
                if (!memcmp(buf + k, " crf=", 5) || !memcmp(buf + k, "/crf=", 5)) {
                    char num[16] = {0};
                    for (size_t j = 0; j < sizeof(num) - 1 && k + 5 + j < end; j++)
                        num[j] = (char)buf[k + 5 + j];
                    double v = atof(num);
                    return v > 0 && v < 52 ? v : -1;
                }
        }
    }
    return -1;
}

/* "High 4:2:2" -> "high422" for x264's profile option; NULL when x264
 * should choose (it picks from the pixel format). */
static const char *x264_profile(int profile)
{
    switch (profile) {
    case FF_PROFILE_H264_BASELINE:
    case FF_PROFILE_H264_CONSTRAINED_BASELINE:
        return "baseline";
    case FF_PROFILE_H264_MAIN:
        return "main";
    case FF_PROFILE_H264_HIGH:
        return "high";
    case FF_PROFILE_H264_HIGH_10:
        return "high10";
    case FF_PROFILE_H264_HIGH_422:
        return "high422";
    case FF_PROFILE_H264_HIGH_444_PREDICTIVE:
        return "high444";
    default:
        return NULL;
    }
}

static const char *default_encoder(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_H264:
        return "libx264";
    case AV_CODEC_ID_HEVC:
        return "libx265";
    case AV_CODEC_ID_PRORES:
        return "prores_ks";
    case AV_CODEC_ID_VP9:
        return "libvpx-vp9";
    case AV_CODEC_ID_AV1:
        return "libsvtav1";
    default:
        return NULL;
    }
}

/* The crf in the settings string of the first video packet, or -1. The
 * file is opened a second time, demuxer only, so the transcode itself
 * starts from the first packet. */
static double first_packet_crf(const cm__video_input *in)
{
    AVFormatContext *fc = NULL;
    AVPacket *pkt = av_packet_alloc();
    double crf = -1;
    size_t ulen = strlen(in->path) + 6;
    char *url = malloc(ulen);
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    if (url && pkt) {
        snprintf(url, ulen, "file:%s", in->path);
        if (avformat_open_input(&fc, url, in->fc->iformat, &opts) == 0) {
            for (int n = 0; n < 64 && av_read_frame(fc, pkt) >= 0; n++) {
                int hit = pkt->stream_index == in->vi;
                if (hit)
                    crf = source_crf(pkt->data, (size_t)pkt->size < SEI_SEARCH_BYTES
                                                    ? (size_t)pkt->size
                                                    : SEI_SEARCH_BYTES);
                av_packet_unref(pkt);
                if (hit)
                    break;
            }
            avformat_close_input(&fc);
        }
    }
    av_dict_free(&opts);
    free(url);
    av_packet_free(&pkt);
    return crf;
}

/* The matched crf: the source's own, else from its bits per pixel. */
static int matched_crf(cm__transcode_job *j, AVStream *is, char *why, size_t size)
{
    AVCodecParameters *par = is->codecpar;
    double crf = par->extradata_size > 0
                     ? source_crf(par->extradata, (size_t)par->extradata_size)
                     : -1;
    if (crf < 0 && (par->codec_id == AV_CODEC_ID_H264 || par->codec_id == AV_CODEC_ID_HEVC))
        crf = first_packet_crf(&j->in);
    if (crf > 0) {
        snprintf(why, size, "crf=%d (the source's)", (int)(crf + 0.5));
        return (int)(crf + 0.5);
    }
    AVRational fr = av_guess_frame_rate(j->in.fc, is, NULL);
    double fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 24;
    int64_t br = par->bit_rate > 0 ? par->bit_rate : j->in.fc->bit_rate;
    if (br <= 0 || par->width <= 0 || par->height <= 0) {
        snprintf(why, size, "crf=%d (source bit rate unknown)", (int)CRF_ANCHOR);
        return (int)CRF_ANCHOR;
    }
    double bpp = (double)br / ((double)par->width * par->height * fps);
    double c = CRF_ANCHOR - 6 * log2(bpp / BPP_ANCHOR);
    int ci = (int)lround(c < CRF_MIN ? CRF_MIN : (c > CRF_MAX ? CRF_MAX : c));
    snprintf(why, size, "crf=%d (source %.3f bit/pixel)", ci, bpp);
    return ci;
}

/* The source's start timecode (its video's tag, the container's, a
 * timecode track's): 1 when found. */
static int find_tc(AVFormatContext *fc, int vi, char *out, size_t size)
{
    cm__video_find_timecode(fc, vi, out, size);
    return out[0] != '\0';
}

/* Encoders that write the time base into the stream (H.264/H.265 VUI
 * timing, MPEG-4 time increments) get one frame as their time base, as the
 * source's encoder had, when every source timestamp lies on that grid
 * (a constant frame rate); the others keep the source's time base. */
static int on_frame_grid(cm__transcode_job *j, AVStream *is, const AVCodec *codec, AVRational fr)
{
    static const char *const timed[] = {"libx264", "libx265", "mpeg4", "mpeg2video"};
    int timing = 0;
    for (size_t k = 0; k < sizeof(timed) / sizeof(timed[0]); k++)
        timing |= !strcmp(codec->name, timed[k]);
    int ffv1 = !strcmp(codec->name, "ffv1");
    if (!timing && !ffv1)
        return 0;
    int64_t most = j->in.limits.max_frames < INT64_MAX / 2 ? (int64_t)j->in.limits.max_frames + 1
                                                           : INT64_MAX / 2;
    if (!timing) /* FFV1 needs its key frame interval only: no second read of a lossless file */
        most = FFV1_GOP_SCAN;
    int grid = cm__video_on_grid(j->in.path, j->in.fc, j->in.vi,
                                 av_inv_q(fr.num > 0 && fr.den > 0 ? fr : (AVRational){1, 1}), most,
                                 &j->pts0, &j->gop);
    return timing && grid && fr.num > 0 && fr.den > 0 && !av_cmp_q(is->r_frame_rate, fr) &&
           !av_cmp_q(is->avg_frame_rate, fr);
}

/* FFV1: the source's coder, slices and slice CRCs (from its configuration
 * record); what cannot be read is announced. */
static void ffv1_options(cm__transcode_job *j, const AVCodecParameters *par, AVCodecContext *e,
                         AVDictionary **opts)
{
    cm__ffv1_settings fs;
    cm__video_ffv1_settings(par, &fs);
    cm__video_ffv1_context(j->in.path, j->in.fc, j->in.vi, &fs);
    if (!fs.found) {
        if (par->codec_id == AV_CODEC_ID_FFV1 && par->level >= 2)
            cm__video_not_kept(j->info, "FFV1 coder, slices and slice CRCs",
                               "the source's configuration record cannot be read");
        return;
    }
    /* the encoder's "coder": rice 0, range_def -2, range_tab 2 */
    av_dict_set(opts, "coder", fs.coder == 0 ? "0" : (fs.coder == 1 ? "-2" : "2"), 0);
    av_dict_set(opts, "slicecrc", fs.slicecrc ? "1" : "0", 0);
    if (fs.context >= 0)
        av_dict_set(opts, "context", fs.context ? "1" : "0", 0);
    else if (fs.version >= 3)
        cm__video_not_kept(j->info, "FFV1 context model",
                           "the source's first slice header cannot be read");
    e->slices = fs.slices;
    /* FFV1 places its key frames every gop_size frames (it takes no
     * forced key frame): the source's interval */
    if (j->gop > 0)
        e->gop_size = j->gop;
    else
        e->gop_size = INT_MAX; /* one key frame */
}

int cm__video_open_encoder(cm__transcode_job *j, AVStream *is, AVStream *os)
{
    const cm_video_stamp_params *p = j->p;
    AVCodecParameters *par = is->codecpar;
    const char *name = p->codec ? p->codec : default_encoder(par->codec_id);
    const AVCodec *codec = name ? avcodec_find_encoder_by_name(name)
                                : avcodec_find_encoder(par->codec_id);
    if (!codec)
        return cm__error(j->ctx, CM_E_UNSUPPORTED,
                         "%s: no %s encoder in this build; choose one with --codec", j->in.path,
                         name ? name : avcodec_get_name(par->codec_id));
    if (!(j->enc = avcodec_alloc_context3(codec)))
        return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
    AVCodecContext *e = j->enc, *d = j->in.dec;
    e->width = d->width;
    e->height = d->height;
    e->pix_fmt = d->pix_fmt;
    /* the container's aspect (MOV pasp, Matroska display size) when the
     * bitstream has none */
    e->sample_aspect_ratio = av_guess_sample_aspect_ratio(j->in.fc, is, NULL);
    e->color_range = d->color_range;
    e->color_primaries = d->color_primaries;
    e->color_trc = d->color_trc;
    e->colorspace = d->colorspace;
    e->chroma_sample_location = d->chroma_sample_location;
    e->field_order = d->field_order;
    if (d->field_order == AV_FIELD_TT || d->field_order == AV_FIELD_TB)
        e->flags |= AV_CODEC_FLAG_INTERLACED_DCT | AV_CODEC_FLAG_INTERLACED_ME;
    else if (d->field_order == AV_FIELD_BB || d->field_order == AV_FIELD_BT)
        e->flags |= AV_CODEC_FLAG_INTERLACED_DCT | AV_CODEC_FLAG_INTERLACED_ME;
    e->framerate = av_guess_frame_rate(j->in.fc, is, NULL);
    j->grid = on_frame_grid(j, is, codec, e->framerate);
    e->time_base = j->grid ? av_inv_q(e->framerate) : is->time_base;
    /* no build or run details in the stream: same input, same bytes */
    e->flags |= AV_CODEC_FLAG_BITEXACT;
    /* every core; for big frames by slices where the encoder can (ProRes,
     * DNxHD, FFV1), since frame threads would each hold a frame, 66 MB at
     * 4K 4444. Below that libav's choice, frame threads first, as
     * ffmpeg's: slices of one 1080p ProRes frame joined before the next
     * kept 2 cores 85 % busy, a stamp 1.4x ffmpeg's time (bench/video) */
    e->thread_count = 0;
    if ((int64_t)par->width * par->height >= CM__LARGE_FRAME_PIXELS &&
        (codec->capabilities & AV_CODEC_CAP_SLICE_THREADS))
        e->thread_type = FF_THREAD_SLICE;
    /* ... but the same bytes on any machine: where the thread count shapes
     * the stream (x264's frame threads; the MPEG-1/2/4 and MJPEG encoders
     * cut one slice per thread), a fixed one. ProRes, DNxHD and FFV1 cut
     * their slices by the format, not the threads */
    if (!strcmp(codec->name, "libx264"))
        e->thread_count = X264_THREADS;
    else if ((codec->capabilities & AV_CODEC_CAP_SLICE_THREADS) &&
             strcmp(codec->name, "prores_ks") && strcmp(codec->name, "dnxhd") &&
             strcmp(codec->name, "ffv1"))
        e->thread_count = SLICE_THREADS;
    if (j->oc->oformat->flags & AVFMT_GLOBALHEADER)
        e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (codec->pix_fmts) {
        int ok = 0;
        for (const enum AVPixelFormat *f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; f++)
            ok |= *f == e->pix_fmt;
        if (!ok) {
            /* the decoder's layout is not the encoder's (ProRes decodes to
             * 12 bit, stores 10): the closest the encoder takes, converted
             * bit-exactly per frame before marking */
            const AVPixFmtDescriptor *dd = av_pix_fmt_desc_get(d->pix_fmt);
            int alpha = dd && (dd->flags & AV_PIX_FMT_FLAG_ALPHA);
            e->pix_fmt = avcodec_find_best_pix_fmt_of_list(codec->pix_fmts, d->pix_fmt, alpha,
                                                           NULL);
            if (e->pix_fmt == AV_PIX_FMT_NONE)
                return cm__error(j->ctx, CM_E_UNSUPPORTED,
                                 "%s: the %s encoder cannot write %s frames; choose another "
                                 "with --codec",
                                 j->in.path, codec->name, av_get_pix_fmt_name(d->pix_fmt));
            j->sws = sws_getContext(d->width, d->height, d->pix_fmt, d->width, d->height,
                                    e->pix_fmt, SWS_POINT | SWS_ACCURATE_RND | SWS_BITEXACT,
                                    NULL, NULL, NULL);
            j->conv = av_frame_alloc();
            if (!j->sws || !j->conv)
                return cm__error(j->ctx, CM_E_UNSUPPORTED, "%s: cannot convert %s to %s",
                                 j->in.path, av_get_pix_fmt_name(d->pix_fmt),
                                 av_get_pix_fmt_name(e->pix_fmt));
            j->conv->format = e->pix_fmt;
            j->conv->width = d->width;
            j->conv->height = d->height;
        }
    }

    AVDictionary *opts = NULL;
    char why[64] = "";
    char num[32];
    /* x265 is told the source's HDR10 SEI before its first frame; for
     * other encoders, which cannot write it, the transcode's frames say so
     * (cm__video_frame_side_data), with no second decoder opened here */
    cm__hdr_meta hdr;
    memset(&hdr, 0, sizeof(hdr));
    if (!strcmp(codec->name, "libx265"))
        cm__video_hdr_meta(j->in.path, j->in.fc, j->in.vi, d, &hdr);
    if (!strcmp(codec->name, "libx264") || !strcmp(codec->name, "libx265") ||
        !strcmp(codec->name, "libvpx-vp9") || !strcmp(codec->name, "libsvtav1") ||
        !strcmp(codec->name, "libaom-av1")) {
        int crf = p->crf >= 0 ? p->crf : matched_crf(j, is, why, sizeof(why));
        if (p->crf >= 0)
            snprintf(why, sizeof(why), "crf=%d (given)", crf);
        snprintf(num, sizeof(num), "%d", crf);
        av_dict_set(&opts, "crf", num, 0);
        if (!strcmp(codec->name, "libvpx-vp9"))
            e->bit_rate = 0; /* constant quality */
        /* the source's user data SEI (but its encoder's settings string) */
        if (!strcmp(codec->name, "libx264") || !strcmp(codec->name, "libx265"))
            av_dict_set(&opts, "udu_sei", "1", 0);
        if (!strcmp(codec->name, "libx264") && par->codec_id == AV_CODEC_ID_H264 &&
            x264_profile(par->profile))
            av_dict_set(&opts, "profile", x264_profile(par->profile), 0);
        if (!strcmp(codec->name, "libx265")) {
            char x265[320];
            /* frame threads shape x265's stream too (it picks them by
             * the number of cores): fixed */
            int n = snprintf(x265, sizeof(x265), "log-level=error:frame-threads=%d",
                             X265_FRAME_THREADS);
            if (hdr.has_md || hdr.has_cl)
                x265[n++] = ':';
            cm__video_x265_hdr(&hdr, x265 + n, sizeof(x265) - (size_t)n);
            av_dict_set(&opts, "x265-params", x265, 0);
        }
    } else if (!strcmp(codec->name, "prores_ks")) {
        if (par->codec_id == AV_CODEC_ID_PRORES && par->profile >= 0) {
            snprintf(num, sizeof(num), "%d", par->profile);
            av_dict_set(&opts, "profile", num, 0);
        }
        snprintf(why, sizeof(why), "profile %s (the source's)",
                 avcodec_profile_name(AV_CODEC_ID_PRORES, par->profile)
                     ? avcodec_profile_name(AV_CODEC_ID_PRORES, par->profile)
                     : "default");
        e->profile = par->profile;
    } else if (!strcmp(codec->name, "dnxhd")) {
        /* the encoder's "profile" option numbers its profiles as libav's
         * DNxHD/DNxHR profile ids do (dnxhd 0, dnxhr_lb 1 ... dnxhr_444 5);
         * DNxHD (not HR) is chosen by bit rate */
        int prof = par->codec_id == AV_CODEC_ID_DNXHD && par->profile > 0 ? par->profile : 0;
        snprintf(num, sizeof(num), "%d", prof);
        av_dict_set(&opts, "profile", num, 0);
        if (!prof)
            e->bit_rate = par->bit_rate > 0 ? par->bit_rate : j->in.fc->bit_rate;
        const char *pn = avcodec_profile_name(AV_CODEC_ID_DNXHD, prof);
        snprintf(why, sizeof(why), "profile %s%s (the source's)", pn ? pn : "DNxHD",
                 prof ? "" : ", its bit rate");
    } else if (!strcmp(codec->name, "mpeg2video") &&
               find_tc(j->in.fc, j->in.vi, num, sizeof(num))) {
        /* the GOP headers' timecode starts where the source's did */
        av_dict_set(&opts, "gop_timecode", num, 0);
        int q = p->qscale >= 0 ? p->qscale : QSCALE_DEFAULT;
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * q;
        snprintf(why, sizeof(why), "qscale=%d (%s)", q, p->qscale >= 0 ? "given" : "default");
    } else if (!strcmp(codec->name, "ffv1")) {
        if (par->codec_id == AV_CODEC_ID_FFV1 && par->level > 0)
            e->level = par->level;
        ffv1_options(j, par, e, &opts);
        snprintf(why, sizeof(why), "lossless");
    } else {
        int q = p->qscale >= 0 ? p->qscale : QSCALE_DEFAULT;
        e->flags |= AV_CODEC_FLAG_QSCALE;
        e->global_quality = FF_QP2LAMBDA * q;
        snprintf(why, sizeof(why), "qscale=%d (%s)", q, p->qscale >= 0 ? "given" : "default");
    }
    int err = avcodec_open2(e, codec, &opts);
    av_dict_free(&opts);
    if (err < 0) {
        char detail[512];
        cm__av_describe_error(err, detail, sizeof(detail));
        return cm__error(j->ctx, err == AVERROR(ENOMEM) ? CM_E_NOMEM : CM_E_UNSUPPORTED,
                         "%s: the %s encoder refuses this stream's settings (%s); choose "
                         "another with --codec",
                         j->in.path, codec->name, detail);
    }
    if ((err = avcodec_parameters_from_context(os->codecpar, e)) < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "set up the output stream");
    /* keep the source's tag when the container takes it (hvc1 vs hev1, apch...) */
    if (par->codec_id == e->codec_id && j->oc->oformat->codec_tag &&
        av_codec_get_id(j->oc->oformat->codec_tag, par->codec_tag) == e->codec_id)
        os->codecpar->codec_tag = par->codec_tag;
    /* into the source's own kind of container, its time base (an MP4's
     * timescale); into another, the encoder's, as the new container's
     * muxer expects (MXF and AVI take it as the frame rate) */
    os->time_base =
        strstr(j->in.fc->iformat->name, j->oc->oformat->name) ? is->time_base : e->time_base;
    os->avg_frame_rate = is->avg_frame_rate;
    os->r_frame_rate = is->r_frame_rate;
    os->sample_aspect_ratio = e->sample_aspect_ratio;
    /* reordered (B) frames need presentation times the container keeps */
    if (e->has_b_frames > 0 && !strstr(j->in.fc->iformat->name, j->oc->oformat->name) &&
        (!strcmp(j->oc->oformat->name, "avi") || !strncmp(j->oc->oformat->name, "mxf", 3)))
        cm__video_not_kept(j->info, "presentation times of reordered frames", "%s",
                           !strcmp(j->oc->oformat->name, "avi")
                               ? "the avi container stores decoding times only"
                               : "libav's MXF muxer writes no temporal offsets for them");
    if (j->info) {
        snprintf(j->info->codec, sizeof(j->info->codec), "%s", codec->name);
        snprintf(j->info->pix_fmt, sizeof(j->info->pix_fmt), "%s",
                 av_get_pix_fmt_name(e->pix_fmt) ? av_get_pix_fmt_name(e->pix_fmt) : "?");
        snprintf(j->info->quality, sizeof(j->info->quality), "%s", why);
        const char *trc = e->color_trc != AVCOL_TRC_UNSPECIFIED
                              ? av_color_transfer_name(e->color_trc)
                              : NULL;
        snprintf(j->info->transfer, sizeof(j->info->transfer), "%s", trc ? trc : "");
        j->info->width = e->width;
        j->info->height = e->height;
    }
    return CM_OK;
}
