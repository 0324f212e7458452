/*
 * Video through libavformat / libavcodec: stamping a clip frame by frame in
 * its own pixel format, and decoding clips for the verifier.
 *
 * Stamping (cm_video_stamp):
 *
 *   demux --+-- video packets --> decode --> mark Y in place --> encode --+--> mux
 *           +-- every other stream (audio, subtitles, timecode, data) ----+
 *                                copied packet for packet
 *
 * One pass, streaming: memory is a few frames whatever the clip's length.
 * The luma plane is marked where it lies (8-12 bit planar YUV or grey):
 * samples are read as 8-bit code values of the nominal range (limited range
 * 16..235 scaled to 0..255, so "paper white" is white to the mask), the
 * mark is added by the stamper and the change goes back into the samples;
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
 *
 * Decoding for the verifier (cm__video_*): the same luma extraction, any
 * other pixel format through libswscale to grey float.
 *
 * Input safety: the path goes to libav as "file:PATH" with only the file
 * protocol whitelisted (no "concat:", no network, no nested opens), the
 * demuxer must be one of VIDEO_DEMUXERS, the decoder refuses pictures over
 * the pixel limit before allocating them, and the file size is checked first.
 * cm_limits bounds the rest (see input_open):
 *
 *   max_pixels          the size the container declares is checked before
 *                       any frame is decoded (stream probing included: the
 *                       probing decoders get max_pixels too), and every
 *                       decoder refuses a larger picture before allocating
 *   max_frames          a declared frame count over it is refused at open;
 *                       decoding stops with CM_E_LIMIT at frame max + 1
 *   max_decode_seconds  time inside libav's demuxer and decoder calls is
 *                       added up; the demuxer's reads are interrupted
 *                       (AVIOInterruptCB) and the next decode call refused
 *                       once it is spent
 */
#include "video.h"
#include "format.h"
#include "video_meta.h"

#include "colour.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/timecode.h>
#include <libswscale/swscale.h>

/* Demuxers a video may come through: the containers studios and review
 * tools write, and raw elementary streams. Anything else is not a video
 * here (image demuxers are formats/av.c's). */
#define VIDEO_DEMUXERS                                                                   \
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mxf,avi,mpegts,mpeg,h264,hevc,m4v,ivf,flv,nut," \
    "yuv4mpegpipe,asf,dv,gxf,obu"

/* Head bytes probed to tell a video from anything else (MP4's ftyp and
 * moov, Matroska's EBML header and MXF's partition pack all show within
 * the first few KiB). */
#define PROBE_BYTES 4096
#define PROBE_MIN_SCORE 25 /* AVPROBE_SCORE_MAX / 4: extension-free evidence */

/* Matched-quality mapping, see the file comment. */
#define CRF_ANCHOR 18.0
#define BPP_ANCHOR 0.15
#define CRF_MIN 12
#define CRF_MAX 32
#define QSCALE_DEFAULT 2

/* Bytes of the first packets searched for an x264/x265 settings string. */
#define SEI_SEARCH_BYTES 4096

/* Frames from this size (half of UHD) are decoded by slices, not frames,
 * to bound memory (see input_open). */
#define LARGE_FRAME_PIXELS (3840 * 2160 / 2)

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

void cm_video_stamp_params_default(cm_video_stamp_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->crf = -1;
    p->qscale = -1;
    cm_limits_default(&p->limits);
}

/* ---- opening ---------------------------------------------------------- */

typedef struct input {
    cm_ctx *ctx;
    const char *path;
    AVFormatContext *fc;
    AVCodecContext *dec;
    int vi; /* video stream index */
    cm_limits limits;
    double spent;   /* seconds spent in libav's demuxer and decoder so far */
    double started; /* clock at the start of the current call, 0 outside */
} input;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Bracket every demuxer/decoder call: the time between counts against
 * max_decode_seconds. */
static void decode_begin(input *in)
{
    in->started = now_seconds();
}

static void decode_end(input *in)
{
    if (in->started > 0)
        in->spent += now_seconds() - in->started;
    in->started = 0;
}

static int decode_time_over(const input *in)
{
    double t = in->spent + (in->started > 0 ? now_seconds() - in->started : 0);
    return in->limits.max_decode_seconds > 0 && t > in->limits.max_decode_seconds;
}

/* libav's interrupt callback: nonzero stops a blocking demuxer read. */
static int interrupt_cb(void *opaque)
{
    return decode_time_over(opaque);
}

static int time_error(input *in)
{
    return cm__error(in->ctx, CM_E_LIMIT,
                     "%s: decoding took more than %g s, the limit of decoding time per file",
                     in->path, in->limits.max_decode_seconds);
}

/* declared: the count the container claims, or 0 when decoding went past
 * the limit. */
static int frames_error(input *in, int64_t declared)
{
    if (declared > 0)
        return cm__error(in->ctx, CM_E_LIMIT,
                         "%s: declares %lld frames, above the limit of %llu frames", in->path,
                         (long long)declared, (unsigned long long)in->limits.max_frames);
    return cm__error(in->ctx, CM_E_LIMIT, "%s: more than %llu frames, the limit per file",
                     in->path, (unsigned long long)in->limits.max_frames);
}

static int pixels_error(input *in, uint64_t w, uint64_t h)
{
    return cm__error(in->ctx, CM_E_LIMIT,
                     "%s: frames of %llu x %llu, above the limit of %llu pixels", in->path,
                     (unsigned long long)w, (unsigned long long)h,
                     (unsigned long long)in->limits.max_pixels);
}

/* Refuse a stream whose declared frame size is over max_pixels. */
static int check_declared_size(input *in, const AVStream *s)
{
    uint64_t w = (uint64_t)(s->codecpar->width > 0 ? s->codecpar->width : 0);
    uint64_t h = (uint64_t)(s->codecpar->height > 0 ? s->codecpar->height : 0);
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && w * h > in->limits.max_pixels)
        return pixels_error(in, w, h);
    return CM_OK;
}

static int av_fail(cm_ctx *ctx, const char *path, int err, const char *what)
{
    char detail[512];
    if (err == AVERROR(ENOMEM))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory %s", path, what);
    cm__av_describe_error(err, detail, sizeof(detail));
    int st = (err == AVERROR_DECODER_NOT_FOUND || err == AVERROR_ENCODER_NOT_FOUND ||
              err == AVERROR_PATCHWELCOME || err == AVERROR(ENOSYS))
                 ? CM_E_UNSUPPORTED
                 : CM_E_CORRUPT;
    return cm__error(ctx, st, "%s: cannot %s: %s", path, what, detail);
}

static void input_close(input *in)
{
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fc);
}

/* Open path's first (best) video stream and its decoder. */
static int input_open(cm_ctx *ctx, const char *path, const cm_limits *limits, int threads,
                      input *in)
{
    memset(in, 0, sizeof(*in));
    in->ctx = ctx;
    in->path = path;
    in->vi = -1;
    cm_limits def;
    if (!limits) {
        cm_limits_default(&def);
        limits = &def;
    }
    in->limits = *limits;
    struct stat st;
    if (stat(path, &st) != 0)
        return cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cm__error(ctx, CM_E_IO, "%s: not a regular file", path);
    if ((uint64_t)st.st_size > limits->max_file_bytes)
        return cm__error(ctx, CM_E_LIMIT, "%s: %lld bytes, above the limit of %llu", path,
                         (long long)st.st_size, (unsigned long long)limits->max_file_bytes);
    cm__av_log_reset();
    size_t ulen = strlen(path) + 6;
    char *url = malloc(ulen);
    if (!url)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    snprintf(url, ulen, "file:%s", path);
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "format_whitelist", VIDEO_DEMUXERS, 0);
    char mp[32];
    snprintf(mp, sizeof(mp), "%llu", (unsigned long long)limits->max_pixels);
    if (!(in->fc = avformat_alloc_context())) {
        av_dict_free(&opts);
        free(url);
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    }
    in->fc->interrupt_callback.callback = interrupt_cb;
    in->fc->interrupt_callback.opaque = in;
    decode_begin(in);
    int err = avformat_open_input(&in->fc, url, NULL, &opts);
    decode_end(in);
    av_dict_free(&opts);
    free(url);
    unsigned rw, rh;
    if (err < 0) {
        if (decode_time_over(in))
            return time_error(in);
        /* a header claiming a size libav itself refuses (over 2^28
         * pixels): a limit, not damage */
        if (cm__av_refused_size(&rw, &rh))
            return pixels_error(in, rw, rh);
        if (err == AVERROR_INVALIDDATA) {
            char detail[512];
            cm__av_describe_error(err, detail, sizeof(detail));
            return cm__error(ctx, CM_E_FORMAT, "%s: not a readable video: %s", path, detail);
        }
        return av_fail(ctx, path, err, "open the video");
    }
    /* Sizes the header declares, before find_stream_info decodes frames
     * to probe (a Y4M or Matroska header can claim any size). */
    for (unsigned i = 0; i < in->fc->nb_streams; i++) {
        int ret = check_declared_size(in, in->fc->streams[i]);
        if (ret)
            return ret;
    }
    /* the probing decoders refuse oversized pictures too */
    AVDictionary **sopts = NULL;
    if (in->fc->nb_streams) {
        if (!(sopts = calloc(in->fc->nb_streams, sizeof(*sopts))))
            return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        for (unsigned i = 0; i < in->fc->nb_streams; i++)
            av_dict_set(&sopts[i], "max_pixels", mp, 0);
    }
    decode_begin(in);
    err = avformat_find_stream_info(in->fc, sopts);
    decode_end(in);
    for (unsigned i = 0; sopts && i < in->fc->nb_streams; i++)
        av_dict_free(&sopts[i]);
    free(sopts);
    if (decode_time_over(in))
        return time_error(in);
    if (err < 0 && cm__av_refused_size(&rw, &rh))
        return pixels_error(in, rw, rh);
    if (err < 0)
        return av_fail(ctx, path, err, "read the stream information");
    const AVCodec *codec = NULL;
    in->vi = av_find_best_stream(in->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (in->vi == AVERROR_STREAM_NOT_FOUND)
        return cm__error(ctx, CM_E_FORMAT, "%s: no video stream", path);
    if (in->vi < 0 || !codec) {
        AVStream *s0 = in->vi >= 0 ? in->fc->streams[in->vi] : NULL;
        return cm__error(ctx, CM_E_UNSUPPORTED, "%s: cannot decode its video (%s) in this build",
                         path, s0 ? avcodec_get_name(s0->codecpar->codec_id) : "unknown codec");
    }
    AVStream *vs = in->fc->streams[in->vi];
    uint64_t w = (uint64_t)(vs->codecpar->width > 0 ? vs->codecpar->width : 0);
    uint64_t h = (uint64_t)(vs->codecpar->height > 0 ? vs->codecpar->height : 0);
    if (w * h > limits->max_pixels)
        return pixels_error(in, w, h);
    if (vs->nb_frames > 0 && (uint64_t)vs->nb_frames > limits->max_frames)
        return frames_error(in, vs->nb_frames);
    if (!(in->dec = avcodec_alloc_context3(codec)))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    if ((err = avcodec_parameters_to_context(in->dec, vs->codecpar)) < 0)
        return av_fail(ctx, path, err, "set up the decoder");
    in->dec->pkt_timebase = vs->time_base;
    in->dec->thread_count = threads;
    /* big frames by slices where the decoder can (ProRes, DNxHD): each
     * frame thread holds frames of its own, 66 MB apiece at 4K 4444 */
    if (w * h >= LARGE_FRAME_PIXELS && (codec->capabilities & AV_CODEC_CAP_SLICE_THREADS))
        in->dec->thread_type = FF_THREAD_SLICE;
    AVDictionary *dopts = NULL;
    av_dict_set(&dopts, "max_pixels", mp, 0);
    err = avcodec_open2(in->dec, codec, &dopts);
    av_dict_free(&dopts);
    if (err < 0)
        return av_fail(ctx, path, err, "open the video decoder");
    return CM_OK;
}

/* ---- luma in place ---------------------------------------------------- */

/* How a frame's luma is stored, when it can be marked where it lies. */
typedef struct luma_fmt {
    int native;   /* planar YUV / grey with luma alone in plane 0 */
    int bits;     /* bits per sample (8..16) */
    int bytes;    /* 1 or 2 per sample */
    int limited;  /* nominal range 16..235 (scaled by bits) */
    int alpha;    /* has an alpha plane (kept) */
} luma_fmt;

static luma_fmt describe_luma(const AVFrame *f)
{
    luma_fmt lf = {0};
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (!d)
        return lf;
    lf.alpha = !!(d->flags & AV_PIX_FMT_FLAG_ALPHA);
    if (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM |
                    AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER | AV_PIX_FMT_FLAG_HWACCEL))
        return lf;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (d->flags & AV_PIX_FMT_FLAG_BE && d->comp[0].depth > 8)
        return lf; /* samples in the other byte order */
#else
    if (!(d->flags & AV_PIX_FMT_FLAG_BE) && d->comp[0].depth > 8)
        return lf;
#endif
    const AVComponentDescriptor *c = &d->comp[0];
    int bytes = c->depth > 8 ? 2 : 1;
    if (c->plane != 0 || c->offset != 0 || c->shift != 0 || c->step != bytes || c->depth < 8 ||
        c->depth > 16)
        return lf;
    /* luma alone in its plane: no other component shares plane 0 */
    for (int i = 1; i < d->nb_components; i++)
        if (d->comp[i].plane == 0)
            return lf;
    lf.native = 1;
    lf.bits = c->depth;
    lf.bytes = bytes;
    lf.limited = f->color_range != AVCOL_RANGE_JPEG && f->format != AV_PIX_FMT_YUVJ420P &&
                 f->format != AV_PIX_FMT_YUVJ422P && f->format != AV_PIX_FMT_YUVJ444P &&
                 f->format != AV_PIX_FMT_YUVJ440P && f->format != AV_PIX_FMT_YUVJ411P &&
                 !(d->nb_components <= 2); /* grey is full range unless tagged */
    if (d->nb_components <= 2 && f->color_range == AVCOL_RANGE_MPEG)
        lf.limited = 1;
    return lf;
}

/* Sample value <-> 8-bit code value of the nominal range:
 *   full     L = v * 255 / (2^bits - 1)
 *   limited  L = (v / 2^(bits-8) - 16) * 255 / 219 */
typedef struct luma_map {
    float a, b; /* L = a * v + b */
    float vmax;
} luma_map;

static luma_map make_map(const luma_fmt *lf)
{
    luma_map m;
    m.vmax = (float)((1 << lf->bits) - 1);
    if (lf->limited) {
        float s = (float)(1 << (lf->bits - 8));
        m.a = 255.0f / (219.0f * s);
        m.b = -16.0f * 255.0f / 219.0f;
    } else {
        m.a = 255.0f / m.vmax;
        m.b = 0;
    }
    return m;
}

static void read_luma(const AVFrame *f, const luma_fmt *lf, const luma_map *m, cm_plane *p)
{
    for (int y = 0; y < p->height; y++) {
        const uint8_t *src = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        float *d = p->data + y * p->stride;
        if (lf->bytes == 1)
            for (int x = 0; x < p->width; x++)
                d[x] = m->a * src[x] + m->b;
        else
            for (int x = 0; x < p->width; x++) {
                uint16_t v;
                memcpy(&v, src + 2 * x, 2);
                d[x] = m->a * v + m->b;
            }
    }
}

/* Headroom in code values: how far L may go down and up before the sample
 * leaves the nominal range (limited) or the sample range (full). */
static void luma_headroom(const cm_plane *l, cm_plane *lo, cm_plane *hi)
{
    for (int y = 0; y < l->height; y++) {
        const float *s = l->data + y * l->stride;
        float *a = lo->data + y * lo->stride, *b = hi->data + y * hi->stride;
        for (int x = 0; x < l->width; x++) {
            a[x] = s[x] > 0 ? s[x] : 0;
            b[x] = s[x] < 255 ? 255 - s[x] : 0;
        }
    }
}

/* The frame's chroma planes, for the colour budget: 1 when it has planar Cb
 * and Cr of luma's depth (every native YUV format; 0 for grey). */
static int frame_chroma(const AVFrame *f, const luma_fmt *lf, cm__yuv_chroma *c)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (!d || d->nb_components < 3 || d->comp[1].plane != 1 || d->comp[2].plane != 2 ||
        d->comp[1].depth != lf->bits || d->comp[2].depth != lf->bits ||
        d->comp[1].step != lf->bytes || f->linesize[1] != f->linesize[2])
        return 0;
    memset(c, 0, sizeof(*c));
    c->cb = f->data[1];
    c->cr = f->data[2];
    c->stride = f->linesize[1];
    c->bytes = lf->bytes;
    c->bits = lf->bits;
    c->sx = d->log2_chroma_w;
    c->sy = d->log2_chroma_h;
    c->limited = lf->limited;
    /* the matrix's luma weights; untagged: BT.709 from 720 lines up */
    switch (f->colorspace) {
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
        c->kr = 0.299f, c->kb = 0.114f;
        break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        c->kr = 0.2627f, c->kb = 0.0593f;
        break;
    case AVCOL_SPC_BT709:
        c->kr = 0.2126f, c->kb = 0.0722f;
        break;
    default:
        if (f->height >= 720)
            c->kr = 0.2126f, c->kb = 0.0722f;
        else
            c->kr = 0.299f, c->kb = 0.114f;
        break;
    }
    return 1;
}

/* v' = clamp(round(v + (marked - L(v)) / a)): the original L is recomputed
 * from the untouched sample exactly as read_luma did, so an unchanged L
 * leaves v unchanged. */
static void write_luma(AVFrame *f, const luma_fmt *lf, const luma_map *m, const cm_plane *marked)
{
    float inv = 1.0f / m->a;
    for (int y = 0; y < marked->height; y++) {
        uint8_t *dst = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        const float *k = marked->data + y * marked->stride;
        for (int x = 0; x < marked->width; x++) {
            float v;
            uint16_t s16 = 0;
            if (lf->bytes == 1)
                v = dst[x];
            else {
                memcpy(&s16, dst + 2 * x, 2);
                v = s16;
            }
            float d = (k[x] - (m->a * v + m->b)) * inv;
            if (d == 0)
                continue;
            v = floorf(v + d + 0.5f);
            v = v < 0 ? 0 : (v > m->vmax ? m->vmax : v);
            if (lf->bytes == 1) {
                dst[x] = (uint8_t)v;
            } else {
                s16 = (uint16_t)v;
                memcpy(dst + 2 * x, &s16, 2);
            }
        }
    }
}

/* The last frame's luma samples before and after marking: animation holds
 * each drawing for two or more frames, and a held frame gets the previous
 * result back without running the stamper (the stamper is deterministic,
 * so this is exactly what it would give, at the cost of a memcmp). */
typedef struct held {
    uint8_t *in, *out; /* rows of width * bytes, packed */
    size_t row;
    int w, h, fmt, valid;
} held;

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
    memset(c, 0, sizeof(*c));
}

/* ---- probing ---------------------------------------------------------- */

int cm_media_probe(cm_ctx *ctx, const char *path, cm_media_kind *kind)
{
    if (!path || !kind)
        return cm__error(ctx, CM_E_INVAL, "probe: missing path");
    *kind = CM_MEDIA_UNKNOWN;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = calloc(1, PROBE_BYTES + AVPROBE_PADDING_SIZE);
    if (!buf) {
        fclose(fp);
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, PROBE_BYTES, fp);
    int rerr = ferror(fp);
    fclose(fp);
    if (rerr) {
        free(buf);
        return cm__error(ctx, CM_E_IO, "%s: cannot read", path);
    }
    if (cm__format_probe(buf, n < CM__PROBE_BYTES ? n : CM__PROBE_BYTES)) {
        *kind = CM_MEDIA_STILL;
    } else if (n > 0) {
        cm__av_log_reset();
        AVProbeData pd = {.filename = "", .buf = buf, .buf_size = (int)n};
        int score = 0;
        const AVInputFormat *f = av_probe_input_format2(&pd, 1, &score);
        if (f && score >= PROBE_MIN_SCORE && av_match_name(f->name, VIDEO_DEMUXERS))
            *kind = CM_MEDIA_VIDEO;
        /* MP4/MOV names several demuxers in one ("mov,mp4,m4a,3gp,3g2,mj2") */
        else if (f && score >= PROBE_MIN_SCORE && strstr(f->name, "mov"))
            *kind = CM_MEDIA_VIDEO;
    }
    free(buf);
    return CM_OK;
}

/* ---- info --------------------------------------------------------------- */

static void find_timecode(AVFormatContext *fc, int vi, char *out, size_t size);

int cm_video_get_info(cm_ctx *ctx, const char *path, const cm_limits *limits,
                      cm_image_info *info)
{
    if (!path || !info)
        return cm__error(ctx, CM_E_INVAL, "video info: missing path");
    memset(info, 0, sizeof(*info));
    input in;
    int ret = input_open(ctx, path, limits, 1, &in);
    if (ret) {
        input_close(&in);
        return ret;
    }
    AVStream *vs = in.fc->streams[in.vi];
    AVCodecParameters *par = vs->codecpar;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(par->format);
    char name[sizeof(info->format)];
    snprintf(name, sizeof(name), "%s", in.fc->iformat->name);
    name[strcspn(name, ",")] = '\0'; /* "mov,mp4,m4a..." -> "mov" */
    snprintf(info->format, sizeof(info->format), "%s", name);
    info->width = par->width;
    info->height = par->height;
    info->bit_depth = d ? d->comp[0].depth : 0;
    info->channels = d ? d->nb_components : 0;
    info->has_alpha = d && (d->flags & AV_PIX_FMT_FLAG_ALPHA);
    info->interlaced = par->field_order != AV_FIELD_PROGRESSIVE &&
                       par->field_order != AV_FIELD_UNKNOWN;
    const char *layout = !d ? "unknown"
                         : (d->flags & AV_PIX_FMT_FLAG_RGB) ? "rgb"
                         : d->nb_components <= 2         ? "gray"
                                                         : "yuv";
    snprintf(info->color_type, sizeof(info->color_type), "%s%s", layout,
             info->has_alpha ? "+alpha" : "");
    const char *prof = avcodec_profile_name(par->codec_id, par->profile);
    cm__info_add_tag(info, "codec", "%s", avcodec_get_name(par->codec_id));
    if (prof)
        cm__info_add_tag(info, "profile", "%s", prof);
    cm__info_add_tag(info, "pix_fmt", "%s", d ? d->name : "unknown");
    AVRational fr = av_guess_frame_rate(in.fc, vs, NULL);
    if (fr.num > 0 && fr.den > 0)
        cm__info_add_tag(info, "fps", "%.3f", av_q2d(fr));
    if (vs->nb_frames > 0)
        cm__info_add_tag(info, "frames", "%lld", (long long)vs->nb_frames);
    if (in.fc->duration > 0)
        cm__info_add_tag(info, "duration", "%.3f", in.fc->duration / (double)AV_TIME_BASE);
    char tc[AV_TIMECODE_STR_SIZE];
    find_timecode(in.fc, in.vi, tc, sizeof(tc));
    if (tc[0])
        cm__info_add_tag(info, "timecode", "%s", tc);
    if (par->color_range != AVCOL_RANGE_UNSPECIFIED)
        cm__info_add_tag(info, "color_range", "%s", av_color_range_name(par->color_range));
    if (par->color_space != AVCOL_SPC_UNSPECIFIED)
        cm__info_add_tag(info, "color_space", "%s", av_color_space_name(par->color_space));
    if (par->color_primaries != AVCOL_PRI_UNSPECIFIED)
        cm__info_add_tag(info, "color_primaries", "%s",
                         av_color_primaries_name(par->color_primaries));
    if (par->color_trc != AVCOL_TRC_UNSPECIFIED)
        cm__info_add_tag(info, "color_transfer", "%s", av_color_transfer_name(par->color_trc));
    for (unsigned i = 0; i < in.fc->nb_streams; i++) {
        if ((int)i == in.vi)
            continue;
        AVCodecParameters *p = in.fc->streams[i]->codecpar;
        char key[32];
        snprintf(key, sizeof(key), "stream.%u", i);
        const char *type = av_get_media_type_string(p->codec_type);
        if (p->codec_type == AVMEDIA_TYPE_AUDIO)
            cm__info_add_tag(info, key, "audio %s %d Hz %d ch", avcodec_get_name(p->codec_id),
                             p->sample_rate, p->ch_layout.nb_channels);
        else
            cm__info_add_tag(info, key, "%s %s", type ? type : "data",
                             p->codec_tag == MKTAG('t', 'm', 'c', 'd')
                                 ? "timecode"
                                 : avcodec_get_name(p->codec_id));
    }
    input_close(&in);
    return CM_OK;
}

/* ---- the reader for the verifier -------------------------------------- */

struct cm__video_reader {
    input in;
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
    input_close(&r->in);
    free(r);
    *pr = NULL;
}

/* The start timecode: the video stream's or the container's "timecode"
 * tag (MOV/MP4 tmcd tracks and MXF are exposed this way). */
static void find_timecode(AVFormatContext *fc, int vi, char *out, size_t size)
{
    out[0] = '\0';
    AVDictionaryEntry *e = av_dict_get(fc->streams[vi]->metadata, "timecode", NULL, 0);
    if (!e)
        e = av_dict_get(fc->metadata, "timecode", NULL, 0);
    for (unsigned i = 0; !e && i < fc->nb_streams; i++)
        e = av_dict_get(fc->streams[i]->metadata, "timecode", NULL, 0);
    if (e && strlen(e->value) < size)
        snprintf(out, size, "%s", e->value);
}

int cm__video_open(cm_ctx *ctx, const char *path, const cm_limits *limits, int threads,
                   cm__video_reader **out)
{
    *out = NULL;
    cm__video_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    int ret = input_open(ctx, path, limits, threads, &r->in);
    if (ret)
        goto fail;
    r->pkt = av_packet_alloc();
    r->frame = av_frame_alloc();
    if (!r->pkt || !r->frame) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    r->first_pts = AV_NOPTS_VALUE;
    find_timecode(r->in.fc, r->in.vi, r->tc, sizeof(r->tc));
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
        return pixels_error(&r->in, (uint64_t)f->width, (uint64_t)f->height);
    if (r->luma.width != f->width || r->luma.height != f->height) {
        cm_plane_free(&r->luma);
        if (cm_plane_alloc(&r->luma, f->width, f->height))
            return cm__error(r->in.ctx, CM_E_NOMEM, "%s: out of memory", r->in.path);
    }
    luma_fmt lf = describe_luma(f);
    if (lf.native) {
        luma_map m = make_map(&lf);
        read_luma(f, &lf, &m, &r->luma);
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

int cm__video_next(cm__video_reader *r, const cm_plane **luma, double *t)
{
    for (;;) {
        if (decode_time_over(&r->in))
            return time_error(&r->in);
        decode_begin(&r->in);
        int err = avcodec_receive_frame(r->in.dec, r->frame);
        decode_end(&r->in);
        if (err == 0) {
            if ((uint64_t)r->nframes >= r->in.limits.max_frames) {
                av_frame_unref(r->frame);
                return frames_error(&r->in, 0);
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
            return av_fail(r->in.ctx, r->in.path, err, "decode a frame");
        if (r->eof_sent)
            return 0;
        /* feed the decoder */
        for (;;) {
            if (decode_time_over(&r->in))
                return time_error(&r->in);
            decode_begin(&r->in);
            err = av_read_frame(r->in.fc, r->pkt);
            decode_end(&r->in);
            if (err == AVERROR_EOF) {
                r->eof_sent = 1;
                avcodec_send_packet(r->in.dec, NULL);
                break;
            }
            if (decode_time_over(&r->in))
                return time_error(&r->in);
            if (err < 0)
                return av_fail(r->in.ctx, r->in.path, err, "read the video");
            if (r->pkt->stream_index != r->in.vi) {
                av_packet_unref(r->pkt);
                continue;
            }
            decode_begin(&r->in);
            err = avcodec_send_packet(r->in.dec, r->pkt);
            decode_end(&r->in);
            av_packet_unref(r->pkt);
            if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_INVALIDDATA)
                return av_fail(r->in.ctx, r->in.path, err, "decode a frame");
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

/* ---- stamping --------------------------------------------------------- */

typedef struct stamp_job {
    cm_ctx *ctx;
    cm_stamper *st;
    const cm_video_stamp_params *p;
    const char *out_path;
    input in;
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
} stamp_job;

static int out_write(void *opaque, uint8_t *buf, int size)
{
    stamp_job *j = opaque;
    errno = 0;
    if (fwrite(buf, 1, (size_t)size, j->out.fp) == (size_t)size)
        return size;
    j->write_errno = errno ? errno : EIO;
    return AVERROR(j->write_errno);
}

/* A muxer call failed: when our writes to the output failed (a full disk,
 * a file size limit), that is the cause to report, not a damaged input. */
static int mux_fail(stamp_job *j, int err, const char *what)
{
    if (j->write_errno)
        return cm__error(j->ctx, CM_E_IO, "%s: cannot write output: %s", j->out_path,
                         strerror(j->write_errno));
    return av_fail(j->ctx, j->out_path, err, what);
}

static int64_t out_seek(void *opaque, int64_t offset, int whence)
{
    stamp_job *j = opaque;
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
static double first_packet_crf(const input *in)
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
static int matched_crf(stamp_job *j, AVStream *is, char *why, size_t size)
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
    find_timecode(fc, vi, out, size);
    return out[0] != '\0';
}

/* Encoders that write the time base into the stream (H.264/H.265 VUI
 * timing, MPEG-4 time increments) get one frame as their time base, as the
 * source's encoder had, when every source timestamp lies on that grid
 * (a constant frame rate); the others keep the source's time base. */
static int on_frame_grid(stamp_job *j, AVStream *is, const AVCodec *codec, AVRational fr)
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
static void ffv1_options(stamp_job *j, const AVCodecParameters *par, AVCodecContext *e,
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
static int open_encoder(stamp_job *j, AVStream *is, AVStream *os)
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
        return av_fail(j->ctx, j->in.path, err, "set up the output stream");
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
static int setup_output(stamp_job *j, const char *name_for_format)
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
        return av_fail(j->ctx, j->out_path, err, "set up the output");
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
            return av_fail(j->ctx, j->out_path, err, "copy stream metadata");
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
            return av_fail(j->ctx, j->out_path, err, "copy a stream");
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
        return av_fail(j->ctx, j->out_path, err, "copy the chapters and programs");
    return CM_OK;
}

static int write_packets(stamp_job *j)
{
    for (;;) {
        int err = avcodec_receive_packet(j->enc, j->opkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return CM_OK;
        if (err < 0)
            return av_fail(j->ctx, j->in.path, err, "encode a frame");
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

/* Mark f's luma (native layout) with the stamper; remember it for held
 * frames. */
static int mark_luma(stamp_job *j, AVFrame *f, const luma_fmt *lf)
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
    luma_map m = make_map(lf);
    read_luma(f, lf, &m, &j->luma);
    luma_headroom(&j->luma, &j->lo, &j->hi);
    /* the colour budget: no pixel's colour moves further than the
     * profile's CIEDE2000 allows (grey frames: by luma alone) */
    cm__yuv_chroma chroma;
    const cm__room *room = cm__stamper_room(j->st);
    if (frame_chroma(f, lf, &chroma))
        cm__yuv_luma_room(room, &j->luma, &chroma, &j->lo, &j->hi);
    else
        cm__grey_luma_room(room, &j->luma, &j->lo, &j->hi);
    int ret = cm_stamper_plane(j->st, &j->luma, &j->lo, &j->hi);
    if (ret)
        return ret;
    held_rows(c->in, c->row, f, 0);
    write_luma(f, lf, &m, &j->luma);
    held_rows(c->out, c->row, f, 0);
    c->fmt = f->format;
    c->valid = 1;
    return CM_OK;
}

/* Mark one decoded frame in place and send it to the encoder. */
static int stamp_frame(stamp_job *j, AVFrame *f)
{
    if ((uint64_t)j->frames >= j->in.limits.max_frames)
        return frames_error(&j->in, 0);
    if ((uint64_t)f->width * (uint64_t)f->height > j->in.limits.max_pixels)
        return pixels_error(&j->in, (uint64_t)f->width, (uint64_t)f->height);
    if (j->sws) {
        int err = av_frame_make_writable(j->conv);
        if (err < 0)
            return av_fail(j->ctx, j->in.path, err, "convert a frame");
        sws_scale(j->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                  j->conv->data, j->conv->linesize);
        av_frame_copy_props(j->conv, f);
        j->conv->color_range = f->color_range;
        f = j->conv;
    }
    luma_fmt lf = describe_luma(f);
    if (!lf.native)
        return cm__error(j->ctx, CM_E_UNSUPPORTED,
                         "%s: %s frames cannot be marked in place (planar YUV or grey, 8-16 "
                         "bit, is needed)",
                         j->in.path, av_get_pix_fmt_name(f->format));
    int err = av_frame_make_writable(f);
    if (err < 0)
        return av_fail(j->ctx, j->in.path, err, "copy a frame");
    if (held_match(&j->hold, f)) {
        held_rows(j->hold.out, j->hold.row, f, 1);
    } else {
        int ret = mark_luma(j, f, &lf);
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
        return av_fail(j->ctx, j->in.path, err, "copy a frame's side data");
    if ((err = avcodec_send_frame(j->enc, f)) < 0)
        return av_fail(j->ctx, j->in.path, err, "encode a frame");
    j->frames++;
    if (j->p->progress)
        j->p->progress(j->p->progress_opaque, j->frames, j->total);
    return write_packets(j);
}

static int drain_decoder(stamp_job *j)
{
    for (;;) {
        if (decode_time_over(&j->in))
            return time_error(&j->in);
        decode_begin(&j->in);
        int err = avcodec_receive_frame(j->in.dec, j->frame);
        decode_end(&j->in);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return CM_OK;
        if (err < 0)
            return av_fail(j->ctx, j->in.path, err, "decode a frame");
        int ret = stamp_frame(j, j->frame);
        av_frame_unref(j->frame);
        if (ret)
            return ret;
    }
}

static int transcode(stamp_job *j)
{
    int err, ret;
    for (;;) {
        if (decode_time_over(&j->in))
            return time_error(&j->in);
        decode_begin(&j->in);
        err = av_read_frame(j->in.fc, j->pkt);
        decode_end(&j->in);
        if (err == AVERROR_EOF)
            break;
        if (decode_time_over(&j->in))
            return time_error(&j->in);
        if (err < 0)
            return av_fail(j->ctx, j->in.path, err, "read the video");
        int si = j->pkt->stream_index;
        if (si == j->in.vi) {
            decode_begin(&j->in);
            err = avcodec_send_packet(j->in.dec, j->pkt);
            decode_end(&j->in);
            av_packet_unref(j->pkt);
            if (err < 0 && err != AVERROR(EAGAIN))
                return av_fail(j->ctx, j->in.path, err, "decode a frame");
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
        return av_fail(j->ctx, j->in.path, err, "finish the encoding");
    if ((ret = write_packets(j)))
        return ret;
    if (!j->frames)
        return cm__error(j->ctx, CM_E_CORRUPT, "%s: no video frame could be decoded", j->in.path);
    if ((err = av_write_trailer(j->oc)) < 0)
        return mux_fail(j, err, "finish the output");
    return CM_OK;
}

int cm_video_stamp(cm_ctx *ctx, cm_stamper *s, const char *in_path, const char *out_path,
                   const cm_video_stamp_params *p, int flags, cm_video_stamp_info *info)
{
    if (!s || !in_path || !out_path)
        return cm__error(ctx, CM_E_INVAL, "video stamp: missing stamper or path");
    cm_video_stamp_params def;
    if (!p) {
        cm_video_stamp_params_default(&def);
        p = &def;
    }
    stamp_job j;
    memset(&j, 0, sizeof(j));
    j.ctx = ctx;
    j.st = s;
    j.p = p;
    j.out_path = out_path;
    j.info = info;
    if (info)
        memset(info, 0, sizeof(*info));
    AVIOContext *pb = NULL;
    uint8_t *iobuf = NULL;
    int ret = input_open(ctx, in_path, &p->limits, 0, &j.in);
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
    input_close(&j.in);
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
