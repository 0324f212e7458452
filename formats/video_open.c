/*
 * Opening a video through libavformat / libavcodec with the limits of
 * untrusted input, telling a video from a still (cm_media_probe), and
 * describing one (cm_video_get_info).
 *
 * Input safety: the path goes to libav as "file:PATH" with only the file
 * protocol whitelisted (no "concat:", no network, no nested opens), the
 * demuxer must be one of VIDEO_DEMUXERS, the decoder refuses pictures over
 * the pixel limit before allocating them, and the file size is checked first.
 * cm_limits bounds the rest (see cm__video_input_open):
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
#include "video_internal.h"
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavutil/avstring.h>
#include <libavutil/pixdesc.h>
#include <libavutil/timecode.h>

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


/* ---- opening ---------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cm__video_decode_begin(cm__video_input *in)
{
    in->started = now_seconds();
}

void cm__video_decode_end(cm__video_input *in)
{
    if (in->started > 0)
        in->spent += now_seconds() - in->started;
    in->started = 0;
}

int cm__video_time_over(const cm__video_input *in)
{
    double t = in->spent + (in->started > 0 ? now_seconds() - in->started : 0);
    return in->limits.max_decode_seconds > 0 && t > in->limits.max_decode_seconds;
}

/* libav's interrupt callback: nonzero stops a blocking demuxer read. */
static int interrupt_cb(void *opaque)
{
    return cm__video_time_over(opaque);
}

int cm__video_time_error(cm__video_input *in)
{
    return cm__error(in->ctx, CM_E_LIMIT,
                     "%s: decoding took more than %g s, the limit of decoding time per file",
                     in->path, in->limits.max_decode_seconds);
}

int cm__video_frames_error(cm__video_input *in, int64_t declared)
{
    if (declared > 0)
        return cm__error(in->ctx, CM_E_LIMIT,
                         "%s: declares %lld frames, above the limit of %llu frames", in->path,
                         (long long)declared, (unsigned long long)in->limits.max_frames);
    return cm__error(in->ctx, CM_E_LIMIT, "%s: more than %llu frames, the limit per file",
                     in->path, (unsigned long long)in->limits.max_frames);
}

int cm__video_pixels_error(cm__video_input *in, uint64_t w, uint64_t h)
{
    return cm__error(in->ctx, CM_E_LIMIT,
                     "%s: frames of %llu x %llu, above the limit of %llu pixels", in->path,
                     (unsigned long long)w, (unsigned long long)h,
                     (unsigned long long)in->limits.max_pixels);
}

/* Refuse a stream whose declared frame size is over max_pixels. */
static int check_declared_size(cm__video_input *in, const AVStream *s)
{
    uint64_t w = (uint64_t)(s->codecpar->width > 0 ? s->codecpar->width : 0);
    uint64_t h = (uint64_t)(s->codecpar->height > 0 ? s->codecpar->height : 0);
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && w * h > in->limits.max_pixels)
        return cm__video_pixels_error(in, w, h);
    return CM_OK;
}

int cm__video_av_fail(cm_ctx *ctx, const char *path, int err, const char *what)
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

void cm__video_input_close(cm__video_input *in)
{
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fc);
}

/* Decode what avformat_find_stream_info needs to fill in the streams. The
 * probing decoders refuse oversized pictures too; probing may add streams
 * (an MPEG-TS program found mid-file), and the options array has only the
 * streams known now. */
static int probe_streams(cm__video_input *in, const char *max_pixels)
{
    unsigned nopts = in->fc->nb_streams;
    AVDictionary **sopts = NULL;
    if (nopts) {
        if (!(sopts = calloc(nopts, sizeof(*sopts))))
            return cm__error(in->ctx, CM_E_NOMEM, "%s: out of memory", in->path);
        for (unsigned i = 0; i < nopts; i++)
            av_dict_set(&sopts[i], "max_pixels", max_pixels, 0);
    }
    cm__video_decode_begin(in);
    int err = avformat_find_stream_info(in->fc, sopts);
    cm__video_decode_end(in);
    for (unsigned i = 0; i < nopts; i++)
        av_dict_free(&sopts[i]);
    free(sopts);
    unsigned rw, rh;
    if (cm__video_time_over(in))
        return cm__video_time_error(in);
    if (err < 0 && cm__av_refused_size(&rw, &rh))
        return cm__video_pixels_error(in, rw, rh);
    if (err < 0)
        return cm__video_av_fail(in->ctx, in->path, err, "read the stream information");
    return CM_OK;
}

/* Whether fc's header alone gives one video stream's codec and size (an
 * MP4, MOV or Matroska header does; an MPEG-TS one does not). */
static int header_describes_video(const AVFormatContext *fc)
{
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVCodecParameters *par = fc->streams[i]->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && par->codec_id != AV_CODEC_ID_NONE &&
            par->width > 0 && par->height > 0)
            return 1;
    }
    return 0;
}

int cm__video_input_open(cm_ctx *ctx, const char *path, const cm_limits *limits, int threads,
                         int flags, cm__video_input *in)
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
    cm__video_decode_begin(in);
    int err = avformat_open_input(&in->fc, url, NULL, &opts);
    cm__video_decode_end(in);
    av_dict_free(&opts);
    free(url);
    unsigned rw, rh;
    if (err < 0) {
        if (cm__video_time_over(in))
            return cm__video_time_error(in);
        /* a header claiming a size libav itself refuses (over 2^28
         * pixels): a limit, not damage */
        if (cm__av_refused_size(&rw, &rh))
            return cm__video_pixels_error(in, rw, rh);
        if (err == AVERROR_INVALIDDATA) {
            char detail[512];
            cm__av_describe_error(err, detail, sizeof(detail));
            return cm__error(ctx, CM_E_FORMAT, "%s: not a readable video: %s", path, detail);
        }
        return cm__video_av_fail(ctx, path, err, "open the video");
    }
    /* Sizes the header declares, before find_stream_info decodes frames
     * to probe (a Y4M or Matroska header can claim any size). */
    int ret;
    for (unsigned i = 0; i < in->fc->nb_streams; i++)
        if ((ret = check_declared_size(in, in->fc->streams[i])))
            return ret;
    /* a copy of our own whose header says what its video is: as it says */
    if (!((flags & CM__VIDEO_OWN) && header_describes_video(in->fc)) &&
        (ret = probe_streams(in, mp)))
        return ret;
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
        return cm__video_pixels_error(in, w, h);
    if (vs->nb_frames > 0 && (uint64_t)vs->nb_frames > limits->max_frames)
        return cm__video_frames_error(in, vs->nb_frames);
    if (!(in->dec = avcodec_alloc_context3(codec)))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    if ((err = avcodec_parameters_to_context(in->dec, vs->codecpar)) < 0)
        return cm__video_av_fail(ctx, path, err, "set up the decoder");
    in->dec->pkt_timebase = vs->time_base;
    in->dec->thread_count = threads;
    /* big frames of an intra-only codec by slices where the decoder can
     * (ProRes, DNxHD: many slices a frame): each frame thread holds frames
     * of its own, 66 MB apiece at 4K 4444. Not H.264, HEVC...: their
     * encoders write one slice a frame, so slices are one thread (a 4K
     * H.264 clip decoded at 0.7x the speed of frame threads) */
    const AVCodecDescriptor *cd = avcodec_descriptor_get(codec->id);
    if (w * h >= CM__LARGE_FRAME_PIXELS && (codec->capabilities & AV_CODEC_CAP_SLICE_THREADS) &&
        cd && (cd->props & AV_CODEC_PROP_INTRA_ONLY))
        in->dec->thread_type = FF_THREAD_SLICE;
    AVDictionary *dopts = NULL;
    av_dict_set(&dopts, "max_pixels", mp, 0);
    err = avcodec_open2(in->dec, codec, &dopts);
    av_dict_free(&dopts);
    if (err < 0)
        return cm__video_av_fail(ctx, path, err, "open the video decoder");
    return CM_OK;
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

int cm_video_get_info(cm_ctx *ctx, const char *path, const cm_limits *limits,
                      cm_image_info *info)
{
    if (!path || !info)
        return cm__error(ctx, CM_E_INVAL, "video info: missing path");
    memset(info, 0, sizeof(*info));
    cm__video_input in;
    int ret = cm__video_input_open(ctx, path, limits, 1, 0, &in);
    if (ret) {
        cm__video_input_close(&in);
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
    cm__video_find_timecode(in.fc, in.vi, tc, sizeof(tc));
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
    cm__video_input_close(&in);
    return CM_OK;
}

void cm__video_find_timecode(AVFormatContext *fc, int vi, char *out, size_t size)
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

