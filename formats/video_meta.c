/*
 * What a stamped video copy carries over besides its pictures: a copy must
 * read in every downstream tool as its source did.
 *
 *   streams       which ones a container holds (Matroska attachments, MOV
 *                 timecode tracks), fixes for libav's remux quirks
 *   chapters      copied with their tags into containers that hold them
 *                 (a MOV/MP4 chapter track is written anew from them)
 *   programs      MPEG-TS services: id, service name and provider, PIDs
 *   muxer flags   MOV "mdta" keys need use_metadata_tags to be written back;
 *                 MPEG-TS keeps the source's timestamps
 *   HDR10         mastering display and content light level of the first
 *                 frame's SEI, handed to x265
 *   FFV1          the coder, slices and slice CRCs read from the source's
 *                 extradata (its range-coded configuration record), the
 *                 context model from the first slice header
 *   timing        whether the source's timestamps lie on a one-frame grid;
 *                 where a Matroska stream ends
 *   MXF UMIDs     put back into the written copy
 *   frame data    per-frame side data the encoder cannot write, announced
 *
 * Whatever cannot be kept is listed in cm_video_stamp_info.not_kept (the
 * command prints it as a warning): nothing is lost silently.
 */
#include "video_meta.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/mastering_display_metadata.h>

void cm__video_not_kept(cm_video_stamp_info *info, const char *what, const char *why_fmt, ...)
{
    if (!info)
        return;
    if (info->nnot_kept >= CM_VIDEO_NOT_KEPT_MAX)
        return;
    char *line = info->not_kept[info->nnot_kept];
    if (info->nnot_kept == CM_VIDEO_NOT_KEPT_MAX - 1) { /* the last line says more were lost */
        snprintf(line, CM_VIDEO_NOT_KEPT_LEN,
                 "more not kept: the list of what was lost is full (%d lines)",
                 CM_VIDEO_NOT_KEPT_MAX - 1);
        info->nnot_kept++;
        return;
    }
    int n = snprintf(line, CM_VIDEO_NOT_KEPT_LEN, "%s not kept: ", what);
    if (n < 0 || n >= CM_VIDEO_NOT_KEPT_LEN)
        n = CM_VIDEO_NOT_KEPT_LEN - 1;
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(line + n, (size_t)(CM_VIDEO_NOT_KEPT_LEN - n), why_fmt, ap);
    va_end(ap);
    info->nnot_kept++;
}

/* ---- chapters ----------------------------------------------------------- */

static int is_mov_family(const char *name)
{
    static const char *const names[] = {"mov", "mp4", "ipod", "ismv", "3gp", "3g2", "psp"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(name, names[i]))
            return 1;
    return 0;
}

/* Containers whose muxer writes chapters. */
static int holds_chapters(const AVOutputFormat *of)
{
    static const char *const names[] = {"matroska", "webm", "ogg", "ogv", "nut"};
    if (is_mov_family(of->name))
        return 1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(of->name, names[i]))
            return 1;
    return 0;
}

int cm__video_is_chapter_track(const AVFormatContext *ic, const AVStream *s)
{
    /* the mov demuxer turns its chapter text track into a discarded
     * binary data stream once it has read the chapters from it */
    return ic->nb_chapters > 0 && strstr(ic->iformat->name, "mov") &&
           s->codecpar->codec_type == AVMEDIA_TYPE_DATA &&
           s->codecpar->codec_id == AV_CODEC_ID_BIN_DATA && s->discard == AVDISCARD_ALL;
}

int cm__video_copy_chapters(const AVFormatContext *ic, AVFormatContext *oc,
                            cm_video_stamp_info *info)
{
    if (!ic->nb_chapters)
        return 0;
    if (!holds_chapters(oc->oformat)) {
        char what[64];
        snprintf(what, sizeof(what), "%u chapters", ic->nb_chapters);
        cm__video_not_kept(info, what, "the %s container has no chapters", oc->oformat->name);
        return 0;
    }
    AVChapter **list = av_realloc_array(NULL, ic->nb_chapters, sizeof(*list));
    if (!list)
        return AVERROR(ENOMEM);
    oc->chapters = list;
    for (unsigned i = 0; i < ic->nb_chapters; i++) {
        const AVChapter *src = ic->chapters[i];
        AVChapter *c = av_mallocz(sizeof(*c));
        if (!c)
            return AVERROR(ENOMEM);
        oc->chapters[oc->nb_chapters++] = c; /* freed with oc */
        c->id = src->id;
        c->time_base = src->time_base;
        c->start = src->start;
        c->end = src->end;
        int err = av_dict_copy(&c->metadata, src->metadata, 0);
        if (err < 0)
            return err;
    }
    return 0;
}

/* ---- which streams, how ------------------------------------------------- */

int cm__video_is_tmcd(const AVStream *s)
{
    return s->codecpar->codec_type == AVMEDIA_TYPE_DATA &&
           s->codecpar->codec_tag == MKTAG('t', 'm', 'c', 'd');
}

int cm__video_timecode_tracks(const AVFormatContext *ic, int vi, const AVOutputFormat *of,
                              int *ntmcd, cm_video_stamp_info *info)
{
    /* MOV timecode tracks are copied as they are into MOV (all of them,
     * with their reel names); MP4 takes no tmcd stream: its muxer writes
     * one anew from the video's "timecode" tag, where the first track's
     * start goes, as for any other container */
    AVStream *vs = ic->streams[vi];
    int keep = !strcmp(of->name, "mov");
    *ntmcd = 0;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        AVStream *ts = ic->streams[i];
        AVDictionaryEntry *tc = av_dict_get(ts->metadata, "timecode", NULL, 0);
        if (!cm__video_is_tmcd(ts) || (int)i == vi)
            continue;
        if (!keep && !tc)
            cm__video_not_kept(info, "a timecode track without a start",
                               "the %s muxer writes timecode tracks only from a start", of->name);
        else if (!keep && *ntmcd)
            cm__video_not_kept(info, "a second timecode track",
                               "the %s muxer writes one timecode track, from the first start",
                               of->name);
        else if (!keep && av_dict_get(ts->metadata, "reel_name", NULL, 0))
            cm__video_not_kept(info, "the timecode track's reel name",
                               "the %s muxer writes no reel name", of->name);
        if (!keep && tc && !av_dict_get(vs->metadata, "timecode", NULL, 0))
            av_dict_set(&vs->metadata, "timecode", tc->value, 0);
        (*ntmcd)++;
    }
    return keep;
}

int cm__video_container_holds(const AVOutputFormat *of, const AVStream *s)
{
    /* Matroska takes attachments (fonts for subtitles) though it lists no
     * codec id for them; MOV takes timecode tracks */
    if (s->codecpar->codec_type == AVMEDIA_TYPE_ATTACHMENT)
        return !strcmp(of->name, "matroska");
    if (cm__video_is_tmcd(s))
        return !strcmp(of->name, "mov");
    return avformat_query_codec(of, s->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 0;
}

void cm__video_dropped(cm_video_stamp_info *info, unsigned i, const AVStream *s,
                       const AVOutputFormat *of)
{
    const AVDictionaryEntry *fn = av_dict_get(s->metadata, "filename", NULL, 0);
    const char *type = av_get_media_type_string(s->codecpar->codec_type);
    char what[160];
    snprintf(what, sizeof(what), "stream %u (%s %s%s%s)", i, type ? type : "unknown",
             avcodec_get_name(s->codecpar->codec_id), fn ? " " : "", fn ? fn->value : "");
    cm__video_not_kept(info, what, "the %s container cannot hold it", of->name);
}

void cm__video_fix_copied(const AVOutputFormat *of, AVCodecParameters *par)
{
    /* the mov demuxer leaves a 3GPP text sample entry's "btrt" box at the
     * end of its extradata, and the muxer writes one of its own after it:
     * drop the source's so the entry is written as it was */
    static const uint8_t btrt[8] = {0, 0, 0, 20, 'b', 't', 'r', 't'}; /* 20 bytes long */
    uint8_t *x = par->extradata;
    int n = par->extradata_size;
    if (par->codec_id == AV_CODEC_ID_MOV_TEXT && n >= 20 &&
        (!strcmp(of->name, "mov") || !strcmp(of->name, "mp4")) && !memcmp(x + n - 20, btrt, 8))
        par->extradata_size = n - 20;
}

/* ---- programs and muxer options ----------------------------------------- */

int cm__video_copy_programs(const AVFormatContext *ic, AVFormatContext *oc, const int *map,
                            cm_video_stamp_info *info)
{
    /* only MPEG-TS writes programs (services); elsewhere they are the
     * demuxer's view of one file and nothing is lost */
    if (strcmp(oc->oformat->name, "mpegts"))
        return 0;
    if (!strcmp(ic->iformat->name, "mpegts"))
        cm__video_not_kept(info, "the transport stream id, original network id and service type",
                           "libav's MPEG-TS reader does not pass them on; its writer's "
                           "defaults are written");
    for (unsigned i = 0; i < ic->nb_programs; i++) {
        const AVProgram *ip = ic->programs[i];
        AVProgram *op = av_new_program(oc, ip->id);
        if (!op)
            return AVERROR(ENOMEM);
        int err = av_dict_copy(&op->metadata, ip->metadata, 0);
        if (err < 0)
            return err;
        op->program_num = ip->program_num;
        op->pmt_pid = ip->pmt_pid;
        op->pcr_pid = ip->pcr_pid;
        for (unsigned k = 0; k < ip->nb_stream_indexes; k++) {
            unsigned si = ip->stream_index[k];
            if (si < ic->nb_streams && map[si] >= 0)
                av_program_add_stream_index(oc, op->id, (unsigned)map[si]);
        }
    }
    return 0;
}

int cm__video_mux_bitexact(const AVOutputFormat *of)
{
    static const char *const drawn[] = {"mxf", "mxf_d10", "mxf_opatom", "matroska", "webm"};
    for (size_t i = 0; i < sizeof(drawn) / sizeof(drawn[0]); i++)
        if (!strcmp(of->name, drawn[i]))
            return 1;
    return 0;
}

/* A MOV/MP4 "mdta" key: reverse-DNS names (com.apple.quicktime.artist). */
static int has_mdta_keys(const AVFormatContext *ic)
{
    const AVDictionaryEntry *e = NULL;
    while ((e = av_dict_get(ic->metadata, "", e, AV_DICT_IGNORE_SUFFIX)))
        if (strchr(e->key, '.'))
            return 1;
    return 0;
}

void cm__video_mux_options(const AVFormatContext *ic, const AVFormatContext *oc,
                           AVDictionary **opts)
{
    const char *of = oc->oformat->name;
    if (is_mov_family(of) && strstr(ic->iformat->name, "mov") && has_mdta_keys(ic))
        av_dict_set(opts, "movflags", "+use_metadata_tags", AV_DICT_APPEND);
    /* a TS source's timestamps as they are, not offset again by the mux
     * delay (the source's muxer offset them already) */
    if (!strcmp(of, "mpegts") && !strcmp(ic->iformat->name, "mpegts"))
        av_dict_set(opts, "mpegts_copyts", "1", 0);
    if (!strcmp(of, "mpegts") && ic->nb_programs > 0 && ic->programs[0]->pmt_pid > 0) {
        char num[16];
        snprintf(num, sizeof(num), "%d", ic->programs[0]->pmt_pid);
        av_dict_set(opts, "mpegts_pmt_start_pid", num, 0);
    }
}

/* ---- HDR10 -------------------------------------------------------------- */

static void take_side_data(cm__hdr_meta *out, enum AVPacketSideDataType t, const uint8_t *d,
                           size_t size)
{
    if (t == AV_PKT_DATA_MASTERING_DISPLAY_METADATA && size >= sizeof(out->md) && !out->has_md) {
        memcpy(&out->md, d, sizeof(out->md));
        out->has_md = 1;
    } else if (t == AV_PKT_DATA_CONTENT_LIGHT_LEVEL && size >= sizeof(out->cl) && !out->has_cl) {
        memcpy(&out->cl, d, sizeof(out->cl));
        out->has_cl = 1;
    }
}

/* The first decoded frame's HDR side data (SEI): a second demuxer and
 * decoder, so the transcode itself starts from the first packet. */
static void first_frame_hdr(const char *path, const AVFormatContext *ic, int vi,
                            const AVCodecContext *dec, cm__hdr_meta *out)
{
    AVFormatContext *fc = NULL;
    AVCodecContext *d = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    AVDictionary *opts = NULL;
    size_t ulen = strlen(path) + 6;
    char *url = av_malloc(ulen);
    char mp[32];
    snprintf(mp, sizeof(mp), "%lld", (long long)dec->width * dec->height);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    if (!url || !pkt || !f)
        goto done;
    snprintf(url, ulen, "file:%s", path);
    if (avformat_open_input(&fc, url, ic->iformat, &opts) < 0 || vi >= (int)fc->nb_streams)
        goto done;
    if (!(d = avcodec_alloc_context3(dec->codec)) ||
        avcodec_parameters_to_context(d, fc->streams[vi]->codecpar) < 0)
        goto done;
    d->thread_count = 1;
    av_dict_free(&opts);
    av_dict_set(&opts, "max_pixels", mp, 0);
    if (avcodec_open2(d, dec->codec, &opts) < 0)
        goto done;
    /* a few packets: the decoder may hold the first frame back (B-frames) */
    int got = 0;
    for (int n = 0; n < 256 && !got; n++) {
        int eof = av_read_frame(fc, pkt) < 0;
        if (!eof && pkt->stream_index != vi) {
            av_packet_unref(pkt);
            continue;
        }
        avcodec_send_packet(d, eof ? NULL : pkt);
        av_packet_unref(pkt);
        got = avcodec_receive_frame(d, f) == 0;
        if (eof)
            break;
    }
    if (got) {
        const AVFrameSideData *sd;
        if ((sd = av_frame_get_side_data(f, AV_FRAME_DATA_MASTERING_DISPLAY_METADATA)))
            take_side_data(out, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, sd->data, sd->size);
        if ((sd = av_frame_get_side_data(f, AV_FRAME_DATA_CONTENT_LIGHT_LEVEL)))
            take_side_data(out, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, sd->data, sd->size);
    }
done:
    av_dict_free(&opts);
    av_free(url);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&d);
    avformat_close_input(&fc);
}

void cm__video_hdr_meta(const char *path, const AVFormatContext *ic, int vi,
                        const AVCodecContext *dec, cm__hdr_meta *out)
{
    /* the frames' own (SEI), not the container's: that is copied with the
     * stream's side data, and SEI the source has not would be new */
    memset(out, 0, sizeof(*out));
    enum AVCodecID id = ic->streams[vi]->codecpar->codec_id;
    if (id == AV_CODEC_ID_HEVC || id == AV_CODEC_ID_H264)
        first_frame_hdr(path, ic, vi, dec, out);
}

/* x265 counts chromaticity in 0.00002 and luminance in 0.0001 cd/m2 */
static long scaled(AVRational q, int unit)
{
    return q.den ? (long)(av_q2d(q) * unit + 0.5) : 0;
}

void cm__video_x265_hdr(const cm__hdr_meta *h, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    if (h->has_md && h->md.has_primaries && h->md.has_luminance) {
        /* AVMasteringDisplayMetadata lists R, G, B; x265 wants G, B, R */
        const AVRational(*p)[2] = h->md.display_primaries;
        n += (size_t)snprintf(
            buf + n, size - n,
            "hdr10=1:master-display=G(%ld,%ld)B(%ld,%ld)R(%ld,%ld)"
            "WP(%ld,%ld)L(%ld,%ld)",
            scaled(p[1][0], 50000), scaled(p[1][1], 50000), scaled(p[2][0], 50000),
            scaled(p[2][1], 50000), scaled(p[0][0], 50000), scaled(p[0][1], 50000),
            scaled(h->md.white_point[0], 50000), scaled(h->md.white_point[1], 50000),
            scaled(h->md.max_luminance, 10000), scaled(h->md.min_luminance, 10000));
    }
    if (h->has_cl && n < size)
        snprintf(buf + n, size - n, "%smax-cll=%u,%u", n ? ":" : "hdr10=1:", h->cl.MaxCLL,
                 h->cl.MaxFALL);
}

/* ---- FFV1 configuration record ------------------------------------------ */

/* FFV1's range decoder (RFC 9043, section 3.8), enough to read the
 * configuration record; the state tables are built as libavcodec's
 * ff_build_rac_states(c, 0.05 * 2^32, 256 - 8) builds them. */
typedef struct rac {
    int low, range;
    const uint8_t *p, *end;
    uint8_t zero[256], one[256];
} rac;

static void rac_states(rac *c, int64_t factor, int max_p)
{
    const int64_t one = 1LL << 32;
    int64_t p = one / 2;
    int last = 0, p8;
    memset(c->zero, 0, sizeof(c->zero));
    memset(c->one, 0, sizeof(c->one));
    for (int i = 0; i < 128; i++) {
        p8 = (int)((256 * p + one / 2) >> 32);
        if (p8 <= last)
            p8 = last + 1;
        if (last && last < 256 && p8 <= max_p)
            c->one[last] = (uint8_t)p8;
        p += ((one - p) * factor + one / 2) >> 32;
        last = p8;
    }
    for (int i = 256 - max_p; i <= max_p; i++) {
        if (c->one[i])
            continue;
        p = ((int64_t)i * one + 128) >> 8;
        p += ((one - p) * factor + one / 2) >> 32;
        p8 = (int)((256 * p + one / 2) >> 32);
        if (p8 <= i)
            p8 = i + 1;
        if (p8 > max_p)
            p8 = max_p;
        c->one[i] = (uint8_t)p8;
    }
    for (int i = 1; i < 255; i++)
        c->zero[i] = (uint8_t)(256 - c->one[256 - i]);
}

static void rac_init(rac *c, const uint8_t *buf, size_t size)
{
    c->p = buf;
    c->end = buf + size;
    c->range = 0xFF00;
    c->low = size >= 2 ? (buf[0] << 8 | buf[1]) : 0xFF00;
    c->p += size >= 2 ? 2 : size;
    if (c->low >= 0xFF00) {
        c->low = 0xFF00;
        c->end = c->p;
    }
    rac_states(c, (int64_t)(0.05 * (1LL << 32)), 256 - 8);
}

static int rac_bit(rac *c, uint8_t *state)
{
    int r1 = (c->range * *state) >> 8;
    int bit;
    c->range -= r1;
    if (c->low < c->range) {
        *state = c->zero[*state];
        bit = 0;
    } else {
        c->low -= c->range;
        *state = c->one[*state];
        c->range = r1;
        bit = 1;
    }
    if (c->range < 0x100) {
        c->range <<= 8;
        c->low <<= 8;
        if (c->p < c->end)
            c->low += *c->p++;
    }
    return bit;
}

/* A symbol (RFC 9043, 3.8.1.2); -1 past 32 bits (damaged). */
static int64_t rac_symbol(rac *c, uint8_t *state, int is_signed)
{
    if (rac_bit(c, state))
        return 0;
    int e = 0;
    while (rac_bit(c, state + 1 + (e < 9 ? e : 9)))
        if (++e > 31)
            return -1;
    int64_t a = 1;
    for (int i = e - 1; i >= 0; i--)
        a += a + rac_bit(c, state + 22 + (i < 9 ? i : 9));
    if (is_signed && rac_bit(c, state + 11 + (e < 10 ? e : 10)))
        return -a;
    return a;
}

#define FFV1_CONTEXT_SIZE 32

/* One quantisation table set: returns its context count, or -1. */
static int64_t ffv1_quant_tables(rac *c)
{
    int64_t count = 1;
    for (int t = 0; t < 5; t++) {
        uint8_t st[FFV1_CONTEXT_SIZE];
        memset(st, 128, sizeof(st));
        int i = 0, v = 0;
        for (; i < 128; v++) {
            int64_t len = rac_symbol(c, st, 0) + 1;
            if (len <= 0 || len > 128 - i)
                return -1;
            i += (int)len;
        }
        count *= 2 * v - 1;
        if (count > 32768)
            return -1;
    }
    return (count + 1) / 2;
}

void cm__video_ffv1_settings(const AVCodecParameters *par, cm__ffv1_settings *out)
{
    memset(out, 0, sizeof(*out));
    out->context = -1;
    if (par->codec_id != AV_CODEC_ID_FFV1 || par->extradata_size < 4)
        return;
    rac c;
    rac_init(&c, par->extradata, (size_t)par->extradata_size);
    uint8_t st[FFV1_CONTEXT_SIZE], st2[FFV1_CONTEXT_SIZE][FFV1_CONTEXT_SIZE];
    memset(st, 128, sizeof(st));
    memset(st2, 128, sizeof(st2));
    int64_t v = rac_symbol(&c, st, 0);
    if (v < 2 || v > 4)
        return;
    out->version = (int)v;
    if (v > 2) {
        c.end -= c.end - c.p >= 4 ? 4 : 0; /* the record's CRC */
        out->micro_version = (int)rac_symbol(&c, st, 0);
    }
    int64_t ac = rac_symbol(&c, st, 0);
    if (ac < 0 || ac > 2)
        return;
    out->coder = (int)ac;
    if (ac == 2)
        for (int i = 1; i < 256; i++)
            out->state_transition[i] = (uint8_t)(rac_symbol(&c, st, 1) + c.one[i]);
    rac_symbol(&c, st, 0); /* colorspace */
    rac_symbol(&c, st, 0); /* bits per raw sample */
    rac_bit(&c, st);       /* chroma planes */
    rac_symbol(&c, st, 0); /* chroma h shift */
    rac_symbol(&c, st, 0); /* chroma v shift */
    rac_bit(&c, st);       /* transparency */
    int64_t h = rac_symbol(&c, st, 0) + 1, w = rac_symbol(&c, st, 0) + 1;
    if (h < 1 || w < 1 || h * w > 1024)
        return;
    out->slices = (int)(h * w);
    int64_t tables = rac_symbol(&c, st, 0);
    if (tables < 1 || tables > 8)
        return;
    int64_t contexts[8];
    for (int i = 0; i < tables; i++)
        if ((contexts[i] = ffv1_quant_tables(&c)) < 0)
            return;
    /* initial states, each context's relative to the one before */
    for (int i = 0; i < tables; i++)
        if (rac_bit(&c, st))
            for (int64_t j = 0; j < contexts[i]; j++)
                for (int k = 0; k < FFV1_CONTEXT_SIZE; k++)
                    rac_symbol(&c, st2[k], 1);
    if (v > 2)
        out->slicecrc = (int)rac_symbol(&c, st, 0) > 0;
    /* the encoder's two tables are the small (context 0) and large
     * (context 1) models; which one a plane uses is in each slice header */
    out->found = 1;
}

/* ---- timing ------------------------------------------------------------- */

int cm__video_on_grid(const char *path, const AVFormatContext *ic, int vi, AVRational frame,
                      int64_t max_packets, int64_t *pts0, int *gop)
{
    AVFormatContext *fc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVDictionary *opts = NULL;
    size_t ulen = strlen(path) + 6;
    char *url = av_malloc(ulen);
    int ok = 0;
    *gop = 0;
    *pts0 = 0;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    if (!url || !pkt || frame.num <= 0 || frame.den <= 0)
        goto done;
    snprintf(url, ulen, "file:%s", path);
    if (avformat_open_input(&fc, url, ic->iformat, &opts) < 0 || vi >= (int)fc->nb_streams)
        goto done;
    AVRational tb = fc->streams[vi]->time_base;
    for (unsigned i = 0; i < fc->nb_streams; i++)
        fc->streams[i]->discard = (int)i == vi ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    int64_t n = 0, first = AV_NOPTS_VALUE;
    int64_t key1 = -1, key2 = -1; /* the first two key frames' packet numbers */
    ok = 1;
    /* off the grid with both key frames seen: nothing more to learn */
    while (n <= max_packets && (ok || key2 < 0) && av_read_frame(fc, pkt) >= 0) {
        if (pkt->stream_index == vi) {
            n++;
            if ((pkt->flags & AV_PKT_FLAG_KEY) && key2 < 0)
                *(key1 < 0 ? &key1 : &key2) = n;
            if (pkt->pts == AV_NOPTS_VALUE) {
                ok = 0;
            } else {
                if (first == AV_NOPTS_VALUE)
                    first = pkt->pts;
                /* on the grid: one frame's time base there and back exactly */
                int64_t k = av_rescale_q(pkt->pts - first, tb, frame);
                ok &= av_rescale_q(k, frame, tb) == pkt->pts - first;
            }
        }
        av_packet_unref(pkt);
    }
    if (n > max_packets)
        ok = 0;
    ok = ok && n > 0;
    if (first == AV_NOPTS_VALUE)
        first = 0;
    *pts0 = first;
    *gop = key2 > key1 && key1 >= 0 ? (int)(key2 - key1 < INT32_MAX ? key2 - key1 : 0) : 0;
done:
    av_dict_free(&opts);
    av_free(url);
    av_packet_free(&pkt);
    avformat_close_input(&fc);
    return ok;
}

int64_t cm__video_stream_end(const AVFormatContext *ic, const AVStream *s)
{
    /* Matroska keeps the last block's duration only in the stream's
     * DURATION statistics tag ("HH:MM:SS.nnnnnnnnn") */
    const AVDictionaryEntry *e = av_dict_get(s->metadata, "DURATION", NULL, 0);
    unsigned h, m, sec;
    char frac[16] = "";
    if (!strstr(ic->iformat->name, "matroska") || !e ||
        sscanf(e->value, "%u:%u:%u.%15[0-9]", &h, &m, &sec, frac) < 3)
        return AV_NOPTS_VALUE;
    int64_t ns = ((int64_t)h * 3600 + m * 60 + sec) * 1000000000LL;
    int64_t scale = 100000000;
    for (const char *p = frac; *p && scale > 0; p++, scale /= 10)
        ns += (*p - '0') * scale;
    return av_rescale_q(ns, (AVRational){1, 1000000000}, s->time_base);
}

void cm__ffv1_packet_context(const uint8_t *data, size_t size, cm__ffv1_settings *out)
{
    if (!out->found || out->version < 3 || size < 2)
        return;
    /* a key frame bit, then (v3+) the first slice's header on the same
     * coder: its position and size, then each plane's table index */
    rac c;
    rac_init(&c, data, size);
    uint8_t key = 128, st[FFV1_CONTEXT_SIZE];
    memset(st, 128, sizeof(st));
    if (!rac_bit(&c, &key))
        return;
    if (out->coder == 2)
        for (int i = 1; i < 256; i++) {
            c.one[i] = out->state_transition[i];
            c.zero[256 - i] = (uint8_t)(256 - c.one[i]);
        }
    for (int k = 0; k < 4; k++)
        rac_symbol(&c, st, 0);
    int64_t idx = rac_symbol(&c, st, 0);
    if (idx == 0 || idx == 1)
        out->context = (int)idx;
}

void cm__video_ffv1_context(const char *path, const AVFormatContext *ic, int vi,
                            cm__ffv1_settings *out)
{
    AVFormatContext *fc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVDictionary *opts = NULL;
    size_t ulen = strlen(path) + 6;
    char *url = av_malloc(ulen);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    if (!out->found || out->version < 3 || !url || !pkt)
        goto done;
    snprintf(url, ulen, "file:%s", path);
    if (avformat_open_input(&fc, url, ic->iformat, &opts) < 0 || vi >= (int)fc->nb_streams)
        goto done;
    for (int n = 0; n < 64 && av_read_frame(fc, pkt) >= 0; n++) {
        if (pkt->stream_index != vi) {
            av_packet_unref(pkt);
            continue;
        }
        cm__ffv1_packet_context(pkt->data, (size_t)pkt->size, out);
        av_packet_unref(pkt);
        break;
    }
done:
    av_dict_free(&opts);
    av_free(url);
    av_packet_free(&pkt);
    avformat_close_input(&fc);
}

/* ---- MXF package UMIDs -------------------------------------------------- */

/* libav's MXF muxer (5.1) takes no UMIDs: unless bit-exact it draws them
 * at random, bit-exact it writes a zero instance and material number
 *
 *   06 0A 2B 34 01 01 01 05 01 01 0D 00 13 | 00 x 18 | type
 *   (SMPTE 330M label, length 0x13)          inst+mat   0 material, 1 file package
 *
 * wherever a package is named (the packages themselves, the material
 * package's source clips, the essence container data). Those are patched
 * back to the source's UMIDs once the file is written. They lie in the
 * header metadata: the file's head (and its tail, for a footer copy) are
 * searched. */
#define MXF_UMID_LEN 32
#define MXF_UMID_SEARCH (8 << 20) /* bytes searched at the head and the tail */

static const uint8_t mxf_umid_zero[MXF_UMID_LEN - 1] = {0x06, 0x0A, 0x2B, 0x34, 0x01, 0x01, 0x01,
                                                        0x05, 0x01, 0x01, 0x0D, 0x00, 0x13};

static int parse_umid(const char *hex, uint8_t out[MXF_UMID_LEN])
{
    if (!hex || strncmp(hex, "0x", 2) || strlen(hex) != 2 + 2 * MXF_UMID_LEN)
        return 0;
    for (int i = 0; i < MXF_UMID_LEN; i++) {
        unsigned v;
        if (sscanf(hex + 2 + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (uint8_t)v;
    }
    return 1;
}

/* Patch every zero UMID of type in [lo, hi) of the file; returns how many
 * were patched, or -1 on a read or write error. */
static int patch_umids(FILE *rd, FILE *wr, int64_t lo, int64_t hi,
                       const uint8_t umids[2][MXF_UMID_LEN], const int have[2])
{
    size_t n = (size_t)(hi - lo);
    uint8_t *buf = av_malloc(n ? n : 1);
    int found = 0;
    if (!buf || fseeko(rd, (off_t)lo, SEEK_SET) || fread(buf, 1, n, rd) != n) {
        av_free(buf);
        return -1;
    }
    for (size_t i = 0; i + MXF_UMID_LEN <= n; i++) {
        uint8_t type = buf[i + MXF_UMID_LEN - 1];
        if (buf[i] != 0x06 || type > 1 || !have[type] ||
            memcmp(buf + i, mxf_umid_zero, sizeof(mxf_umid_zero)))
            continue;
        if (fseeko(wr, (off_t)(lo + (int64_t)i), SEEK_SET) ||
            fwrite(umids[type], 1, MXF_UMID_LEN, wr) != MXF_UMID_LEN) {
            av_free(buf);
            return -1;
        }
        found++;
        i += MXF_UMID_LEN - 1;
    }
    av_free(buf);
    return found;
}

int cm__video_mxf_umids(const AVFormatContext *ic, const AVFormatContext *oc, const char *tmp,
                        FILE *wr, cm_video_stamp_info *info)
{
    if (strncmp(oc->oformat->name, "mxf", 3))
        return 0;
    const AVDictionaryEntry *m = av_dict_get(ic->metadata, "material_package_umid", NULL, 0);
    uint8_t umids[2][MXF_UMID_LEN];
    int have[2] = {0, 0};
    have[0] = m && parse_umid(m->value, umids[0]);
    /* one file package for all the source's tracks, as libav writes one */
    int files = 0;
    for (unsigned i = 0; i < ic->nb_streams; i++) {
        const AVDictionaryEntry *f =
            av_dict_get(ic->streams[i]->metadata, "file_package_umid", NULL, 0);
        uint8_t u[MXF_UMID_LEN];
        if (!f || !parse_umid(f->value, u))
            continue;
        if (!have[1]) {
            memcpy(umids[1], u, MXF_UMID_LEN);
            have[1] = 1;
            files = 1;
        } else if (memcmp(u, umids[1], MXF_UMID_LEN)) {
            files++;
        }
    }
    if (!have[0] && !have[1])
        return 0; /* a source without UMIDs: nothing to keep */
    if (files > 1)
        cm__video_not_kept(info, "MXF file package UMIDs",
                           "the source has %d file packages, libav's MXF muxer writes one "
                           "(it names the first)",
                           files);
    if (fflush(wr))
        return -1;
    FILE *rd = fopen(tmp, "rb");
    if (!rd)
        return -1;
    int found = 0, err = 0;
    if (fseeko(rd, 0, SEEK_END) == 0) {
        int64_t size = (int64_t)ftello(rd);
        int64_t head = size < 2 * MXF_UMID_SEARCH ? size : MXF_UMID_SEARCH;
        int r = patch_umids(rd, wr, 0, head, umids, have);
        err |= r < 0;
        found += r > 0 ? r : 0;
        if (head < size) {
            r = patch_umids(rd, wr, size - MXF_UMID_SEARCH, size, umids, have);
            err |= r < 0;
            found += r > 0 ? r : 0;
        }
    } else {
        err = 1;
    }
    fclose(rd);
    if (err || fflush(wr) || fseeko(wr, 0, SEEK_END))
        return -1;
    if (!found)
        cm__video_not_kept(info, "MXF package UMIDs",
                           "libav's MXF muxer cannot be given them, and they were not found "
                           "in the copy to put back");
    return 0;
}

/* ---- per-frame side data ------------------------------------------------ */

/* Frame side data an encoder writes back into its stream (the encoder
 * gets the decoded frame with its side data); the rest is announced, once
 * for each kind (entries of the same kind name the same text). */
#define HDR10_SEI "HDR10 SEI in the video stream (mastering display, light level)"
static const struct frame_sd {
    enum AVFrameSideDataType type;
    const char *what;
    const char *writers; /* encoders that write it, space-separated */
} frame_sd[] = {
    /* x265 is given the first frame's as settings (cm__video_hdr_meta) */
    {AV_FRAME_DATA_MASTERING_DISPLAY_METADATA, HDR10_SEI, " libx265 "},
    {AV_FRAME_DATA_CONTENT_LIGHT_LEVEL, HDR10_SEI, " libx265 "},
    {AV_FRAME_DATA_A53_CC, "closed captions (ATSC A/53)", " libx264 mpeg2video "},
    {AV_FRAME_DATA_SEI_UNREGISTERED, "user data SEI", " libx264 libx265 "},
    {AV_FRAME_DATA_S12M_TIMECODE, "timecodes in the stream (SMPTE 12M)", " mpeg2video "},
    {AV_FRAME_DATA_STEREO3D, "stereo 3D frame packing", " libx264 "},
    {AV_FRAME_DATA_DYNAMIC_HDR_PLUS, "HDR10+ dynamic metadata", " "},
    {AV_FRAME_DATA_DOVI_RPU_BUFFER, "Dolby Vision metadata", " "},
    {AV_FRAME_DATA_FILM_GRAIN_PARAMS, "film grain parameters", " "},
    {AV_FRAME_DATA_AFD, "active format description", " "},
    {AV_FRAME_DATA_DISPLAYMATRIX, "display orientation in the stream", " "},
};

/* An encoder's own settings string (x264/x265 write one in every stream):
 * the source's describes the source's encode, not the copy's. */
static int is_encoder_sei(const AVFrameSideData *sd)
{
    return sd->type == AV_FRAME_DATA_SEI_UNREGISTERED && sd->size > 16 + 11 &&
           (!memcmp(sd->data + 16, "x264 - core", 11) || !memcmp(sd->data + 16, "x265 (build", 11));
}

int cm__video_frame_side_data(AVFrame *f, const char *encoder, const AVStream *is,
                              unsigned *announced, cm_video_stamp_info *info)
{
    /* drop the source encoder's own settings string; keep any other */
    int own = 0;
    for (int k = 0; k < f->nb_side_data; k++)
        own |= is_encoder_sei(f->side_data[k]);
    if (own) {
        AVBufferRef *keep[16];
        int nkeep = 0;
        for (int k = 0; k < f->nb_side_data && nkeep < 16; k++) {
            AVFrameSideData *sd = f->side_data[k];
            if (sd->type != AV_FRAME_DATA_SEI_UNREGISTERED || is_encoder_sei(sd))
                continue;
            if (!(keep[nkeep] = av_buffer_ref(sd->buf))) {
                while (nkeep > 0)
                    av_buffer_unref(&keep[--nkeep]);
                return AVERROR(ENOMEM);
            }
            nkeep++;
        }
        av_frame_remove_side_data(f, AV_FRAME_DATA_SEI_UNREGISTERED);
        int err = 0;
        for (int k = 0; k < nkeep; k++) {
            if (!err && av_frame_new_side_data_from_buf(f, AV_FRAME_DATA_SEI_UNREGISTERED, keep[k]))
                continue; /* the frame owns it now */
            err = AVERROR(ENOMEM);
            av_buffer_unref(&keep[k]);
        }
        if (err)
            return err;
    }
    char name[64];
    snprintf(name, sizeof(name), " %s ", encoder);
    for (size_t t = 0; t < sizeof(frame_sd) / sizeof(frame_sd[0]); t++) {
        if ((*announced >> t) & 1 || !av_frame_get_side_data(f, frame_sd[t].type) ||
            strstr(frame_sd[t].writers, name))
            continue;
        /* a rotation the container also has is kept there */
        if (frame_sd[t].type == AV_FRAME_DATA_DISPLAYMATRIX &&
            av_stream_get_side_data(is, AV_PKT_DATA_DISPLAYMATRIX, NULL))
            continue;
        for (size_t u = 0; u < sizeof(frame_sd) / sizeof(frame_sd[0]); u++)
            if (frame_sd[u].what == frame_sd[t].what)
                *announced |= 1u << u;
        cm__video_not_kept(info, frame_sd[t].what, "the %s encoder in this libav cannot write it",
                           encoder);
    }
    return 0;
}
