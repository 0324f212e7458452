/*
 * Re-encoding a video through a frame hook (cm__video_transcode):
 *
 *   demux --+-- video packets --> decode --> hook on Y in place --> encode --+--> mux
 *           +-- every other stream (audio, subtitles, timecode, data) ------+
 *                                copied packet for packet
 *
 * One pass, streaming: memory is a few frames whatever the clip's length.
 * The luma plane is handed to the hook where it lies (8-12 bit planar YUV
 * or grey, video_luma.c) and its change goes back into the samples;
 * chroma and alpha planes are not touched, so they stay bit-exact until the
 * encoder. Frames keep their timestamps (variable frame rate, frame count
 * and field order survive) and key frames, and the encoder gets the
 * source's codec, profile, pixel format, colour tags, aspect ratio and, for
 * a constant frame rate, one frame as its time base (the stream's own
 * timing is then the source's). What else a copy keeps (chapters, programs,
 * timecode tracks, HDR10, FFV1 settings, MXF UMIDs) and what it announces
 * instead is video_meta.c's. Encoders run bit-exact, and so do the muxers
 * that would draw random identifiers (MXF, Matroska): the same stamp of the
 * same input gives the same bytes.
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
#include "video_internal.h"
#include "format.h"
#include "video_meta.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavutil/avstring.h>
#include <libavutil/imgutils.h>
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

/* AVIO buffer for the output file. */
#define AVIO_BUFFER_BYTES (256 * 1024)

typedef struct held {
    uint8_t *in, *out; /* rows of width * bytes, packed */
    size_t row;
    uint8_t *chroma;   /* the chroma planes the hook was lent, packed */
    size_t chroma_cap;
    int w, h, fmt, valid;
} held;

/* Bytes per row of f's chroma plane p (1 or 2) and its rows; 0 when f
 * has none (grey). */
static size_t chroma_rows(const AVFrame *f, int p, int *rows)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    *rows = 0;
    if (!d || d->nb_components < 3 || !f->data[p])
        return 0;
    int ls = av_image_get_linesize(f->format, f->width, p);
    if (ls <= 0)
        return 0;
    *rows = AV_CEIL_RSHIFT(f->height, d->log2_chroma_h);
    return (size_t)ls;
}

/* f's chroma planes packed into buf (dir 0) or compared with it (dir 1:
 * 1 when equal); buf NULL: only the bytes they take. */
static size_t held_chroma(uint8_t *buf, const AVFrame *f, int dir)
{
    size_t off = 0;
    for (int p = 1; p <= 2; p++) {
        int rows;
        size_t row = chroma_rows(f, p, &rows);
        for (int y = 0; buf && y < rows; y++) {
            const uint8_t *s = f->data[p] + (ptrdiff_t)y * f->linesize[p];
            if (!dir)
                memcpy(buf + off + row * y, s, row);
            else if (memcmp(buf + off + row * y, s, row))
                return 0;
        }
        off += row * (size_t)rows;
    }
    return dir ? 1 : off;
}

/* The hook gives the same result for the same samples: luma and the
 * chroma it was lent must both match the last frame's. */
static int held_match(const held *c, const AVFrame *f)
{
    if (!c->valid || c->w != f->width || c->h != f->height || c->fmt != f->format)
        return 0;
    for (int y = 0; y < f->height; y++)
        if (memcmp(c->in + c->row * y, f->data[0] + (ptrdiff_t)y * f->linesize[0], c->row))
            return 0;
    return 1;
}

/* rows of f's plane 0 into (dir 0) or out of (dir 1) buf */
static void held_rows(uint8_t *buf, size_t row, AVFrame *f, int dir)
{
    for (int y = 0; y < f->height; y++) {
        uint8_t *p = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        if (dir)
            memcpy(p, buf + row * y, row);
        else
            memcpy(buf + row * y, p, row);
    }
}

static void held_free(held *c)
{
    free(c->in);
    free(c->out);
    free(c->chroma);
    memset(c, 0, sizeof(*c));
}

/* ---- transcoding ------------------------------------------------------ */

typedef struct transcode_job {
    cm_ctx *ctx;
    cm__video_hook hook;
    void *opaque;
    const cm_video_stamp_params *p;
    const char *out_path;
    cm__video_input in;
    AVFormatContext *oc;
    AVCodecContext *enc;
    int *map;          /* input stream -> output stream, -1 = dropped */
    int64_t *ends;     /* input stream -> where it ends apart from its packets
                          (cm__video_stream_end), AV_NOPTS_VALUE = unknown */
    int vo;            /* output video stream */
    AVPacket *pkt, *opkt;
    AVFrame *frame;
    struct SwsContext *sws; /* decoder -> encoder layout, when they differ */
    AVFrame *conv;
    cm_plane luma, lo, hi;
    held hold;
    cm__atomic out;
    int write_errno; /* why writing the output failed (ENOSPC, EFBIG...), else 0 */
    int64_t frames, total;
    cm_video_stamp_info *info;
    /* the encoder's time base is one frame (1/fps) when every source
     * timestamp lies on that grid (H.264/H.265 write it into the stream's
     * timing); grid: the frames' times are counted from pts0 (source time
     * base) on it. Otherwise the source's time base, grid 0. */
    int grid;
    int64_t pts0;
    int gop;               /* the source's first key frame interval (packets), 0 = unknown */
    unsigned sd_announced; /* frame side data types announced as not kept */
} transcode_job;

static int out_write(void *opaque, uint8_t *buf, int size)
{
    transcode_job *j = opaque;
    errno = 0;
    if (fwrite(buf, 1, (size_t)size, j->out.fp) == (size_t)size)
        return size;
    j->write_errno = errno ? errno : EIO;
    return AVERROR(j->write_errno);
}

/* A muxer call failed: when our writes to the output failed (a full disk,
 * a file size limit), that is the cause to report, not a damaged input. */
static int mux_fail(transcode_job *j, int err, const char *what)
{
    if (j->write_errno)
        return cm__error(j->ctx, CM_E_IO, "%s: cannot write output: %s", j->out_path,
                         strerror(j->write_errno));
    return cm__video_av_fail(j->ctx, j->out_path, err, what);
}

static int64_t out_seek(void *opaque, int64_t offset, int whence)
{
    transcode_job *j = opaque;
    FILE *fp = j->out.fp;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) {
        off_t cur = ftello(fp);
        if (cur < 0 || fseeko(fp, 0, SEEK_END) != 0)
            return AVERROR(EIO);
        off_t end = ftello(fp);
        fseeko(fp, cur, SEEK_SET);
        return end;
    }
    if (fseeko(fp, (off_t)offset, whence) != 0)
        return AVERROR(errno ? errno : EIO);
    return (int64_t)ftello(fp);
}

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
static int matched_crf(transcode_job *j, AVStream *is, char *why, size_t size)
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
static int on_frame_grid(transcode_job *j, AVStream *is, const AVCodec *codec, AVRational fr)
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
static void ffv1_options(transcode_job *j, const AVCodecParameters *par, AVCodecContext *e,
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

/* Open the encoder for the video stream, from the source's parameters. */
static int open_encoder(transcode_job *j, AVStream *is, AVStream *os)
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
    /* every core, by slices where the encoder can (ProRes, DNxHD, FFV1):
     * frame threads would each hold a frame, 66 MB at 4K 4444 */
    e->thread_count = 0;
    if (codec->capabilities & AV_CODEC_CAP_SLICE_THREADS)
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
            if (av_frame_get_buffer(j->conv, 0) < 0)
                return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
        }
    }

    AVDictionary *opts = NULL;
    char why[64] = "";
    char num[32];
    cm__hdr_meta hdr;
    cm__video_hdr_meta(j->in.path, j->in.fc, j->in.vi, d, &hdr);
    if ((hdr.has_md || hdr.has_cl) && strcmp(codec->name, "libx265"))
        cm__video_not_kept(
            j->info, "HDR10 SEI in the video stream (mastering display, light level)",
            "the %s encoder in this libav cannot write it into the stream", codec->name);
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
        j->info->width = e->width;
        j->info->height = e->height;
    }
    return CM_OK;
}

static int copy_stream_info(AVStream *is, AVStream *os)
{
    int err = av_dict_copy(&os->metadata, is->metadata, 0);
    os->disposition = is->disposition;
    for (int k = 0; err >= 0 && k < is->nb_side_data; k++) {
        const AVPacketSideData *sd = &is->side_data[k];
        uint8_t *dst = av_stream_new_side_data(os, sd->type, sd->size);
        if (!dst)
            return AVERROR(ENOMEM);
        memcpy(dst, sd->data, sd->size);
    }
    return err;
}

/* Create the output's streams: copies of every stream but the video. */
static int setup_output(transcode_job *j, const char *name_for_format)
{
    AVFormatContext *ic = j->in.fc;
    const AVOutputFormat *of = av_guess_format(NULL, name_for_format, NULL);
    if (!of) /* no known extension: the input's container */
        of = av_guess_format(ic->iformat->name, NULL, NULL);
    if (!of && strstr(ic->iformat->name, "mov"))
        of = av_guess_format("mov", NULL, NULL);
    if (!of)
        return cm__error(j->ctx, CM_E_UNSUPPORTED,
                         "%s: cannot choose a container to write; name it .mp4, .mov, .mkv "
                         "or .mxf",
                         j->out_path);
    int err = avformat_alloc_output_context2(&j->oc, of, NULL, NULL);
    if (err < 0)
        return cm__video_av_fail(j->ctx, j->out_path, err, "set up the output");
    av_dict_copy(&j->oc->metadata, ic->metadata, 0);
    j->map = cm__malloc_array(ic->nb_streams ? ic->nb_streams : 1, sizeof(*j->map));
    j->ends = cm__malloc_array(ic->nb_streams ? ic->nb_streams : 1, sizeof(*j->ends));
    if (!j->map || !j->ends)
        return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
    int ntmcd = 0;
    int keep_tmcd = cm__video_timecode_tracks(ic, j->in.vi, of, &ntmcd, j->info);
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVStream *is = ic->streams[i];
        j->map[i] = -1;
        j->ends[i] = cm__video_stream_end(ic, is);
        if ((int)i == j->in.vi) {
            ; /* the video: re-encoded */
        } else if (!keep_tmcd && cm__video_is_tmcd(is)) {
            continue; /* its start is the video's "timecode" tag */
        } else if (cm__video_is_chapter_track(ic, is)) {
            continue; /* written anew from the chapters (or announced with them) */
        } else if (!cm__video_container_holds(of, is)) {
            if (j->info)
                j->info->streams_dropped++;
            cm__video_dropped(j->info, i, is, of);
            continue;
        }
        AVStream *os = avformat_new_stream(j->oc, NULL);
        if (!os)
            return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
        j->map[i] = os->index;
        if ((err = copy_stream_info(is, os)) < 0)
            return cm__video_av_fail(j->ctx, j->out_path, err, "copy stream metadata");
        if ((int)i == j->in.vi) {
            j->vo = os->index;
            if (keep_tmcd && ntmcd)
                av_dict_set(&os->metadata, "timecode", NULL, 0);
            int ret = open_encoder(j, is, os);
            if (ret)
                return ret;
            continue;
        }
        if ((err = avcodec_parameters_copy(os->codecpar, is->codecpar)) < 0)
            return cm__video_av_fail(j->ctx, j->out_path, err, "copy a stream");
        cm__video_fix_copied(of, os->codecpar);
        /* keep the tag where this container knows it for this codec (and
         * for data streams: a MOV timecode track is known by its tmcd tag) */
        uint32_t tag = is->codecpar->codec_tag;
        if (is->codecpar->codec_type != AVMEDIA_TYPE_DATA && of->codec_tag &&
            av_codec_get_id(of->codec_tag, tag) != is->codecpar->codec_id)
            os->codecpar->codec_tag = 0;
        os->time_base = is->time_base;
        os->avg_frame_rate = is->avg_frame_rate;
        os->r_frame_rate = is->r_frame_rate;
        os->sample_aspect_ratio = is->sample_aspect_ratio;
        if (j->info)
            j->info->streams_copied++;
    }
    /* MPEG-TS PIDs as the source's (elsewhere the muxer numbers tracks
     * in order, as the source's did) */
    for (unsigned i = 0; !strcmp(of->name, "mpegts") && i < ic->nb_streams; i++)
        if (j->map[i] >= 0)
            j->oc->streams[j->map[i]]->id = ic->streams[i]->id;
    if ((err = cm__video_copy_chapters(ic, j->oc, j->info)) < 0 ||
        (err = cm__video_copy_programs(ic, j->oc, j->map, j->info)) < 0)
        return cm__video_av_fail(j->ctx, j->out_path, err, "copy the chapters and programs");
    return CM_OK;
}

static int write_packets(transcode_job *j)
{
    for (;;) {
        int err = avcodec_receive_packet(j->enc, j->opkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return CM_OK;
        if (err < 0)
            return cm__video_av_fail(j->ctx, j->in.path, err, "encode a frame");
        AVStream *os = j->oc->streams[j->vo];
        if (j->grid && !j->opkt->duration)
            j->opkt->duration = 1; /* one frame */
        av_packet_rescale_ts(j->opkt, j->enc->time_base, os->time_base);
        if (j->grid) { /* counted from the source's first timestamp */
            int64_t off =
                av_rescale_q(j->pts0, j->in.fc->streams[j->in.vi]->time_base, os->time_base);
            if (j->opkt->pts != AV_NOPTS_VALUE)
                j->opkt->pts += off;
            if (j->opkt->dts != AV_NOPTS_VALUE)
                j->opkt->dts += off;
        }
        j->opkt->stream_index = j->vo;
        err = av_interleaved_write_frame(j->oc, j->opkt);
        if (err < 0)
            return mux_fail(j, err, "write the video");
    }
}

/* Hand f's luma (native layout) to the hook and write its change back;
 * remember it for held frames. */
static int run_hook(transcode_job *j, AVFrame *f, const cm__luma_fmt *lf)
{
    cm_plane *planes[] = {&j->luma, &j->lo, &j->hi};
    held *c = &j->hold;
    if (j->luma.width != f->width || j->luma.height != f->height) {
        for (int k = 0; k < 3; k++) {
            cm_plane_free(planes[k]);
            if (cm_plane_alloc(planes[k], f->width, f->height))
                return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
        }
        held_free(c);
        c->row = (size_t)f->width * lf->bytes;
        c->in = cm__malloc_array(c->row, (size_t)f->height);
        c->out = cm__malloc_array(c->row, (size_t)f->height);
        if (!c->in || !c->out)
            return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
        c->w = f->width;
        c->h = f->height;
    }
    cm__luma_map m = cm__luma_map_make(lf);
    cm__luma_read(f, lf, &m, &j->luma);
    cm__luma_headroom(&j->luma, &j->lo, &j->hi);
    cm__yuv_chroma chroma;
    cm__video_luma frame = {&j->luma, &j->lo, &j->hi, NULL};
    if (cm__luma_chroma(f, lf, &chroma))
        frame.chroma = &chroma;
    int ret = j->hook(j->opaque, &frame);
    if (ret)
        return ret;
    c->valid = 0;
    size_t cb = held_chroma(NULL, f, 0);
    if (cb > c->chroma_cap) {
        free(c->chroma);
        c->chroma_cap = 0;
        if (!(c->chroma = malloc(cb)))
            return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
        c->chroma_cap = cb;
    }
    held_chroma(c->chroma, f, 0);
    held_rows(c->in, c->row, f, 0);
    cm__luma_write(f, lf, &m, &j->luma);
    held_rows(c->out, c->row, f, 0);
    c->fmt = f->format;
    c->valid = 1;
    return CM_OK;
}

/* Run the hook on one decoded frame in place and send it to the encoder. */
static int encode_frame(transcode_job *j, AVFrame *f)
{
    if ((uint64_t)j->frames >= j->in.limits.max_frames)
        return cm__video_frames_error(&j->in, 0);
    if ((uint64_t)f->width * (uint64_t)f->height > j->in.limits.max_pixels)
        return cm__video_pixels_error(&j->in, (uint64_t)f->width, (uint64_t)f->height);
    if (j->sws) {
        int err = av_frame_make_writable(j->conv);
        if (err < 0)
            return cm__video_av_fail(j->ctx, j->in.path, err, "convert a frame");
        sws_scale(j->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                  j->conv->data, j->conv->linesize);
        av_frame_copy_props(j->conv, f);
        j->conv->color_range = f->color_range;
        f = j->conv;
    }
    cm__luma_fmt lf = cm__luma_describe(f);
    if (!lf.native)
        return cm__error(j->ctx, CM_E_UNSUPPORTED,
                         "%s: %s frames cannot be marked in place (planar YUV or grey, 8-16 "
                         "bit, is needed)",
                         j->in.path, av_get_pix_fmt_name(f->format));
    int err = av_frame_make_writable(f);
    if (err < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "copy a frame");
    if (held_match(&j->hold, f)) {
        held_rows(j->hold.out, j->hold.row, f, 1);
    } else {
        int ret = run_hook(j, f, &lf);
        if (ret)
            return ret;
    }
    f->pts = f->best_effort_timestamp;
    if (j->grid && f->pts != AV_NOPTS_VALUE)
        f->pts = av_rescale_q(f->pts - j->pts0, j->in.fc->streams[j->in.vi]->time_base,
                              j->enc->time_base);
    /* key frames where the source has them (edit points, GOP length);
     * the encoder may add more */
    f->pict_type = f->key_frame ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    if ((err = cm__video_frame_side_data(f, j->enc->codec->name, j->in.fc->streams[j->in.vi],
                                         &j->sd_announced, j->info)) < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "copy a frame's side data");
    if ((err = avcodec_send_frame(j->enc, f)) < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "encode a frame");
    j->frames++;
    if (j->p->progress)
        j->p->progress(j->p->progress_opaque, j->frames, j->total);
    return write_packets(j);
}

static int drain_decoder(transcode_job *j)
{
    for (;;) {
        if (cm__video_time_over(&j->in))
            return cm__video_time_error(&j->in);
        cm__video_decode_begin(&j->in);
        int err = avcodec_receive_frame(j->in.dec, j->frame);
        cm__video_decode_end(&j->in);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return CM_OK;
        if (err < 0)
            return cm__video_av_fail(j->ctx, j->in.path, err, "decode a frame");
        int ret = encode_frame(j, j->frame);
        av_frame_unref(j->frame);
        if (ret)
            return ret;
    }
}

static int transcode(transcode_job *j)
{
    int err, ret;
    for (;;) {
        if (cm__video_time_over(&j->in))
            return cm__video_time_error(&j->in);
        cm__video_decode_begin(&j->in);
        err = av_read_frame(j->in.fc, j->pkt);
        cm__video_decode_end(&j->in);
        if (err == AVERROR_EOF)
            break;
        if (cm__video_time_over(&j->in))
            return cm__video_time_error(&j->in);
        if (err < 0)
            return cm__video_av_fail(j->ctx, j->in.path, err, "read the video");
        int si = j->pkt->stream_index;
        if (si == j->in.vi) {
            cm__video_decode_begin(&j->in);
            err = avcodec_send_packet(j->in.dec, j->pkt);
            cm__video_decode_end(&j->in);
            av_packet_unref(j->pkt);
            if (err < 0 && err != AVERROR(EAGAIN))
                return cm__video_av_fail(j->ctx, j->in.path, err, "decode a frame");
            if ((ret = drain_decoder(j)))
                return ret;
            continue;
        }
        if (si < 0 || si >= (int)j->in.fc->nb_streams || j->map[si] < 0) {
            av_packet_unref(j->pkt);
            continue;
        }
        AVStream *is = j->in.fc->streams[si], *os = j->oc->streams[j->map[si]];
        int64_t end = j->ends[si];
        if (end != AV_NOPTS_VALUE && j->pkt->pts != AV_NOPTS_VALUE && j->pkt->pts < end &&
            j->pkt->pts + j->pkt->duration > end)
            j->pkt->duration = end - j->pkt->pts; /* the last one, as the source had it */
        av_packet_rescale_ts(j->pkt, is->time_base, os->time_base);
        j->pkt->stream_index = j->map[si];
        j->pkt->pos = -1;
        err = av_interleaved_write_frame(j->oc, j->pkt);
        if (err < 0)
            return mux_fail(j, err, "copy a packet");
    }
    avcodec_send_packet(j->in.dec, NULL);
    if ((ret = drain_decoder(j)))
        return ret;
    if ((err = avcodec_send_frame(j->enc, NULL)) < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "finish the encoding");
    if ((ret = write_packets(j)))
        return ret;
    if (!j->frames)
        return cm__error(j->ctx, CM_E_CORRUPT, "%s: no video frame could be decoded", j->in.path);
    if ((err = av_write_trailer(j->oc)) < 0)
        return mux_fail(j, err, "finish the output");
    return CM_OK;
}

int cm__video_transcode(cm_ctx *ctx, const char *in_path, const char *out_path,
                        const cm_video_stamp_params *p, int flags, cm_video_stamp_info *info,
                        cm__video_hook hook, void *opaque)
{
    if (!hook || !in_path || !out_path || !p)
        return cm__error(ctx, CM_E_INVAL, "video: missing hook, path or parameters");
    transcode_job j;
    memset(&j, 0, sizeof(j));
    j.ctx = ctx;
    j.hook = hook;
    j.opaque = opaque;
    j.p = p;
    j.out_path = out_path;
    j.info = info;
    if (info)
        memset(info, 0, sizeof(*info));
    AVIOContext *pb = NULL;
    uint8_t *iobuf = NULL;
    int ret = cm__video_input_open(ctx, in_path, &p->limits, 0, &j.in);
    if (ret)
        goto done;
    j.pkt = av_packet_alloc();
    j.opkt = av_packet_alloc();
    j.frame = av_frame_alloc();
    if (!j.pkt || !j.opkt || !j.frame) {
        ret = cm__error(ctx, CM_E_NOMEM, "out of memory");
        goto done;
    }
    AVStream *vs = j.in.fc->streams[j.in.vi];
    j.total = vs->nb_frames > 0 ? vs->nb_frames : -1;
    if ((ret = setup_output(&j, p->out_name ? p->out_name : out_path)))
        goto done;
    if ((ret = cm__atomic_open(ctx, out_path, flags & CM_WRITE_FORCE, &j.out)))
        goto done;
    iobuf = av_malloc(AVIO_BUFFER_BYTES);
    pb = iobuf ? avio_alloc_context(iobuf, AVIO_BUFFER_BYTES, 1, &j, NULL, out_write,
                                    out_seek)
               : NULL;
    if (!pb) {
        av_free(iobuf);
        ret = cm__error(ctx, CM_E_NOMEM, "out of memory");
        goto done;
    }
    j.oc->pb = pb;
    /* no run-dependent identifiers (MXF UMIDs, Matroska segment UIDs):
     * same key, id, options and input, same bytes. Only where a muxer
     * draws them: bit-exact, the MOV muxer would drop the source's
     * encoder tag */
    if (cm__video_mux_bitexact(j.oc->oformat))
        j.oc->flags |= AVFMT_FLAG_BITEXACT;
    /* audio gathered into PES packets as ffmpeg's own -muxdelay 0.7 does
     * (MPEG-TS/PS): the layout of most sources */
    j.oc->max_delay = 700000;
    AVDictionary *mopts = NULL;
    cm__video_mux_options(j.in.fc, j.oc, &mopts);
    int err = avformat_write_header(j.oc, &mopts);
    av_dict_free(&mopts);
    if (err < 0 && !j.write_errno && err != AVERROR(ENOMEM)) {
        /* the muxer refuses a stream or setting: the output container's
         * limit, not damage in the source */
        char detail[512];
        cm__av_describe_error(err, detail, sizeof(detail));
        ret = cm__error(ctx, CM_E_UNSUPPORTED, "%s: the %s muxer refuses this copy: %s", out_path,
                        j.oc->oformat->name, detail);
        goto done;
    }
    if (err < 0) {
        ret = mux_fail(&j, err, "write the output header");
        goto done;
    }
    if ((ret = transcode(&j)))
        goto done;
    avio_flush(pb);
    if (pb->error < 0) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", out_path,
                        strerror(j.write_errno ? j.write_errno : AVUNERROR(pb->error)));
        goto done;
    }
    if (cm__video_mxf_umids(j.in.fc, j.oc, j.out.tmp, j.out.fp, info) < 0) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", out_path,
                        strerror(errno ? errno : EIO));
        goto done;
    }
    if (info)
        info->frames = j.frames;
    ret = cm__atomic_commit(ctx, &j.out);
done:
    if (ret)
        cm__atomic_abort(&j.out);
    if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
    if (j.oc)
        j.oc->pb = NULL;
    avformat_free_context(j.oc);
    avcodec_free_context(&j.enc);
    cm__video_input_close(&j.in);
    av_packet_free(&j.pkt);
    av_packet_free(&j.opkt);
    av_frame_free(&j.frame);
    av_frame_free(&j.conv);
    sws_freeContext(j.sws);
    cm_plane *planes[] = {&j.luma, &j.lo, &j.hi};
    for (int k = 0; k < 3; k++)
        cm_plane_free(planes[k]);
    held_free(&j.hold);
    free(j.map);
    free(j.ends);
    return ret;
}
