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
 * same input gives the same bytes. The encoder and the quality it is
 * given are video_encoder.c's.
 */
#include "video_transcode.h"
#include "format.h"
#include "video_meta.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <libavutil/avstring.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* Most workers marking frames at once (-j), the memory their frames and
 * planes may take together before fewer are started, and the memory of
 * frames decoded ahead beyond which none are (mark_jobs). */
#define MAX_MARK_JOBS 64
#define MARK_MEMORY (256u << 20)
#define SPARE_MEMORY (64u << 20)

/* AVIO buffer for the output file. */
#define AVIO_BUFFER_BYTES (256 * 1024)

/* Bytes per row of f's plane p and its rows; 0 when f has none (grey has
 * no chroma). */
static size_t plane_rows(const AVFrame *f, int p, int *rows)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    *rows = 0;
    if (!d || (p && d->nb_components < 3) || !f->data[p])
        return 0;
    int ls = av_image_get_linesize(f->format, f->width, p);
    if (ls <= 0)
        return 0;
    *rows = p ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h) : f->height;
    return (size_t)ls;
}

/* Plane alignment of the frames celmark writes (that of AVX-512). */
#define FRAME_ALIGN 64

/* The pool of frame buffers for frames of format fmt, w x h: planes laid
 * out as av_frame_get_buffer would (rows aligned, height padded to 32). A
 * frame's buffer allocated anew each frame is megabytes the system faults
 * in and zeroes every time (a third of a 1080p stamp's page faults). */
static int frame_buffers_open(cm__transcode_job *j, int fmt, int w, int h)
{
    int ls[4];
    int err = av_image_fill_linesizes(ls, fmt, FFALIGN(w, FRAME_ALIGN));
    if (err < 0)
        return err;
    ptrdiff_t lsd[4];
    for (int i = 0; i < 4; i++)
        lsd[i] = ls[i] = FFALIGN(ls[i], FRAME_ALIGN);
    size_t sizes[4];
    if ((err = av_image_fill_plane_sizes(sizes, fmt, FFALIGN(h, 32), lsd)) < 0)
        return err;
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        j->buf_linesize[i] = ls[i];
        j->buf_offset[i] = total;
        if (sizes[i])
            total += FFALIGN(sizes[i], FRAME_ALIGN) + FRAME_ALIGN; /* SIMD reading past */
    }
    if (total > INT_MAX || !(j->bufs = av_buffer_pool_init(total, NULL)))
        return AVERROR(ENOMEM);
    j->buf_fmt = fmt;
    j->buf_w = w;
    j->buf_h = h;
    return 0;
}

/* Buffers for f (its format and size set) from the pool when it has f's
 * layout, else as av_frame_get_buffer gives them. */
static int frame_buffer(cm__transcode_job *j, AVFrame *f)
{
    if (!j->bufs || f->format != j->buf_fmt || f->width != j->buf_w || f->height != j->buf_h)
        return av_frame_get_buffer(f, 0);
    if (!(f->buf[0] = av_buffer_pool_get(j->bufs)))
        return AVERROR(ENOMEM);
    for (int i = 0; i < 4; i++) {
        f->linesize[i] = j->buf_linesize[i];
        f->data[i] = j->buf_linesize[i] ? f->buf[0]->data + j->buf_offset[i] : NULL;
    }
    f->extended_data = f->data;
    return 0;
}

/* f writable: the decoder still holds most frames it returns (references
 * for the next ones), and those are copied into a pooled buffer first. */
static int frame_writable(cm__transcode_job *j, AVFrame *f)
{
    if (av_frame_is_writable(f))
        return 0;
    AVFrame *t = av_frame_alloc();
    if (!t)
        return AVERROR(ENOMEM);
    t->format = f->format;
    t->width = f->width;
    t->height = f->height;
    int err = frame_buffer(j, t);
    if (err >= 0)
        err = av_frame_copy(t, f);
    if (err >= 0)
        err = av_frame_copy_props(t, f);
    if (err >= 0) {
        av_frame_unref(f);
        av_frame_move_ref(f, t);
    }
    av_frame_free(&t);
    return err;
}

/* The digest of a decoded frame's samples, size and layout: a held drawing
 * (luma and chroma as the last frame's; the hook gives the same result for
 * the same samples, and it reads both) has the last one's. A digest rather
 * than the frame itself, so that no decoded frame is kept aside (66 MB at
 * 4K 4444) and the worker marks the decoder's frame without a copy;
 * SHA-256, so that two drawings cannot be mistaken. -1 if it fails. */
static int frame_digest(const AVFrame *f, uint8_t out[FRAME_DIGEST_BYTES])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int shape[3] = {f->width, f->height, f->format};
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, shape, sizeof(shape)) == 1;
    for (int p = 0; ok && p <= 2; p++) {
        int rows;
        size_t row = plane_rows(f, p, &rows);
        for (int y = 0; ok && y < rows; y++)
            ok = EVP_DigestUpdate(md, f->data[p] + (ptrdiff_t)y * f->linesize[p], row) == 1;
    }
    unsigned n = 0;
    ok = ok && EVP_DigestFinal_ex(md, out, &n) == 1 && n == FRAME_DIGEST_BYTES;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* Whether every frame of codec id is decoded from its own packet alone,
 * with nothing carried from the frames before (ProRes, DNxHD, MJPEG): two
 * equal packets are two equal frames. Not FFV1 or HuffYUV, intra-only but
 * adapting their coders from frame to frame. */
static int stateless_intra(enum AVCodecID id)
{
    return id == AV_CODEC_ID_PRORES || id == AV_CODEC_ID_DNXHD || id == AV_CODEC_ID_MJPEG;
}

static int bytes_digest(const uint8_t *data, size_t size, uint8_t out[FRAME_DIGEST_BYTES])
{
    unsigned n = 0;
    return EVP_Digest(data, size, out, &n, EVP_sha256(), NULL) == 1 && n == FRAME_DIGEST_BYTES
               ? 0
               : -1;
}

/* A video packet about to be decoded: its digest kept by its time. */
static void note_packet(cm__transcode_job *j, const AVPacket *pkt)
{
    cm__packet_digest *pd = &j->pkt_digests[j->next_pkt_digest++ % PACKET_DIGESTS];
    pd->pts = AV_NOPTS_VALUE;
    if (pkt->pts != AV_NOPTS_VALUE && bytes_digest(pkt->data, (size_t)pkt->size, pd->d) == 0)
        pd->pts = pkt->pts;
}

/* The digest held drawings are found by: of the frame's packet where that
 * decides the frame and is the only recent one of its time (*by_packet 1:
 * a tenth of a ProRes frame's bytes), else of its samples. -1 if it
 * fails. */
static int submitted_digest(const cm__transcode_job *j, const AVFrame *f, int *by_packet,
                            uint8_t out[FRAME_DIGEST_BYTES])
{
    *by_packet = 0;
    const cm__packet_digest *found = NULL;
    int n = 0;
    for (int k = 0; j->by_packet && f->pts != AV_NOPTS_VALUE && k < PACKET_DIGESTS; k++)
        if (j->pkt_digests[k].pts == f->pts) {
            found = &j->pkt_digests[k];
            n++;
        }
    if (n != 1)
        return frame_digest(f, out);
    memcpy(out, found->d, FRAME_DIGEST_BYTES);
    *by_packet = 1;
    return 0;
}

/* The last frame's marked luma (rows of row bytes) into f: a held
 * drawing's result. */
static int held_copy(cm__transcode_job *j, AVFrame *f)
{
    const uint8_t *last = j->last_luma;
    size_t row = j->last_row;
    int err = frame_writable(j, f);
    if (err < 0)
        return err;
    int rows;
    if (plane_rows(f, 0, &rows) != row)
        return AVERROR_BUG;
    for (int y = 0; y < rows; y++)
        memcpy(f->data[0] + (ptrdiff_t)y * f->linesize[0], last + (size_t)y * row, row);
    return 0;
}

/* Keep f's marked luma for a held drawing after it: its luma alone, so that
 * the frame itself goes back to the decoder's pool once encoded. */
static int keep_luma(cm__transcode_job *j, const AVFrame *f)
{
    int rows;
    size_t row = plane_rows(f, 0, &rows);
    if (!j->last_luma || j->last_row != row || j->last_rows != rows) {
        free(j->last_luma);
        j->last_row = row;
        j->last_rows = rows;
        if (!(j->last_luma = cm__malloc_array(row ? row : 1, rows > 0 ? (size_t)rows : 1)))
            return AVERROR(ENOMEM);
    }
    for (int y = 0; y < rows; y++)
        memcpy(j->last_luma + (size_t)y * row, f->data[0] + (ptrdiff_t)y * f->linesize[0], row);
    return 0;
}

/* ---- transcoding ------------------------------------------------------ */

static int out_write(void *opaque, uint8_t *buf, int size)
{
    cm__transcode_job *j = opaque;
    errno = 0;
    if (fwrite(buf, 1, (size_t)size, j->out.fp) == (size_t)size)
        return size;
    j->write_errno = errno ? errno : EIO;
    return AVERROR(j->write_errno);
}

/* A muxer call failed: when our writes to the output failed (a full disk,
 * a file size limit), that is the cause to report, not a damaged input. */
static int mux_fail(cm__transcode_job *j, int err, const char *what)
{
    if (j->write_errno)
        return cm__error(j->ctx, CM_E_IO, "%s: cannot write output: %s", j->out_path,
                         strerror(j->write_errno));
    return cm__video_av_fail(j->ctx, j->out_path, err, what);
}

static int64_t out_seek(void *opaque, int64_t offset, int whence)
{
    cm__transcode_job *j = opaque;
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
static int setup_output(cm__transcode_job *j, const char *name_for_format)
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
    j->nmap = ic->nb_streams;
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
            int ret = cm__video_open_encoder(j, is, os);
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

static int write_packets(cm__transcode_job *j)
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

/* A worker: mark one frame in place (the pool's work). Its luma becomes
 * the hook's plane (the worker's own), the hook runs, the change goes back
 * into the samples. */
static int mark_frame(void *opaque, int worker, void *item)
{
    cm__transcode_job *j = opaque;
    AVFrame *f = item;
    int err = frame_writable(j, f);
    if (err < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "copy a frame");
    cm_plane *pl = &j->planes[worker];
    if (pl->width != f->width || pl->height != f->height) {
        cm_plane_free(pl);
        if (cm_plane_alloc(pl, f->width, f->height))
            return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
    }
    cm__luma_fmt lf = cm__luma_describe(f);
    cm__luma_map m = cm__luma_map_make(&lf);
    cm__luma_read(f, &lf, &m, pl);
    cm__yuv_chroma chroma;
    cm__video_luma frame = {pl, NULL};
    if (cm__luma_chroma(f, &lf, &chroma))
        frame.chroma = &chroma;
    int ret = j->hook(j->opaque, &frame);
    if (!ret)
        cm__luma_write(f, &lf, &m, pl);
    return ret;
}

static void drop_frame(void *item)
{
    AVFrame *f = item;
    av_frame_free(&f);
}

/* Send a marked frame to the encoder: a held drawing first gets the last
 * frame's result; then the source's times and key frames. Takes f. */
static int encode_frame(cm__transcode_job *j, AVFrame *f, int held)
{
    int err = held ? held_copy(j, f) : 0;
    if (err >= 0)
        err = keep_luma(j, f);
    if (err < 0) {
        av_frame_free(&f);
        return cm__video_av_fail(j->ctx, j->in.path, err, "copy a frame");
    }
    f->pts = f->best_effort_timestamp;
    if (j->grid && f->pts != AV_NOPTS_VALUE)
        f->pts = av_rescale_q(f->pts - j->pts0, j->in.fc->streams[j->in.vi]->time_base,
                              j->enc->time_base);
    /* key frames where the source has them (edit points, GOP length);
     * the encoder may add more */
    f->pict_type = f->key_frame ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    err = cm__video_frame_side_data(f, j->enc->codec->name, j->in.fc->streams[j->in.vi],
                                    &j->sd_announced, j->info);
    if (err >= 0)
        err = avcodec_send_frame(j->enc, f); /* the encoder keeps its own reference */
    av_frame_free(&f);
    if (err < 0)
        return cm__video_av_fail(j->ctx, j->in.path, err, "encode a frame");
    j->frames++;
    if (j->p->progress)
        j->p->progress(j->p->progress_opaque, j->frames, j->total);
    return write_packets(j);
}

/* Encode the frames the workers have finished, oldest first; wait: until
 * none is pending. */
static int take_marked(cm__transcode_job *j, int wait)
{
    for (;;) {
        void *f;
        int held;
        int ret = cm__pool_take(j->pool, wait, &f, &held);
        if (ret)
            drop_frame(f);
        if (ret || !f)
            return ret;
        if ((ret = encode_frame(j, f, held)))
            return ret;
    }
}

/* Hand one decoded frame to the workers (converted to the encoder's layout
 * first where they differ), after encoding what they have finished. */
static int submit_frame(cm__transcode_job *j, AVFrame *decoded)
{
    if ((uint64_t)j->submitted >= j->in.limits.max_frames)
        return cm__video_frames_error(&j->in, 0);
    if ((uint64_t)decoded->width * (uint64_t)decoded->height > j->in.limits.max_pixels)
        return cm__video_pixels_error(&j->in, (uint64_t)decoded->width,
                                      (uint64_t)decoded->height);
    AVFrame *f = av_frame_alloc();
    if (!f)
        return cm__error(j->ctx, CM_E_NOMEM, "out of memory");
    int err, decoded_fmt = decoded->format;
    if (!j->bufs && (err = frame_buffers_open(j, j->sws ? j->conv->format : decoded_fmt,
                                              decoded->width, decoded->height)) < 0) {
        av_frame_free(&f);
        return cm__video_av_fail(j->ctx, j->in.path, err, "allocate frames");
    }
    if (j->sws) {
        f->format = j->conv->format;
        f->width = decoded->width;
        f->height = decoded->height;
        if ((err = frame_buffer(j, f)) >= 0) {
            sws_scale(j->sws, (const uint8_t *const *)decoded->data, decoded->linesize, 0,
                      decoded->height, f->data, f->linesize);
            err = av_frame_copy_props(f, decoded);
            f->color_range = decoded->color_range;
        }
    } else { /* the decoder's frame itself: the worker's alone, marked in place */
        av_frame_move_ref(f, decoded);
        err = 0;
    }
    if (err < 0) {
        av_frame_free(&f);
        return cm__video_av_fail(j->ctx, j->in.path, err, "convert a frame");
    }
    cm__luma_fmt lf = cm__luma_describe(f);
    if (!lf.native) {
        av_frame_free(&f);
        return cm__error(j->ctx, CM_E_UNSUPPORTED,
                         "%s: %s frames cannot be marked in place (planar YUV or grey, 8-16 "
                         "bit, is needed)",
                         j->in.path, av_get_pix_fmt_name(decoded_fmt));
    }
    /* the frame as decoded (or its packet), for the next frame's comparison */
    uint8_t digest[FRAME_DIGEST_BYTES];
    int by_packet;
    int known = submitted_digest(j, f, &by_packet, digest) == 0;
    int held = known && j->have_last_in && j->last_in_packet == by_packet &&
               !memcmp(digest, j->last_in, sizeof(digest));
    memcpy(j->last_in, digest, sizeof(digest));
    j->have_last_in = known;
    j->last_in_packet = by_packet;
    int ret = take_marked(j, 0);
    if (!ret && cm__pool_full(j->pool)) { /* the oldest must be encoded first */
        void *g;
        int gheld;
        if ((ret = cm__pool_take(j->pool, 1, &g, &gheld)))
            drop_frame(g);
        else
            ret = encode_frame(j, g, gheld);
    }
    if (ret) {
        av_frame_free(&f);
        return ret;
    }
    cm__pool_submit(j->pool, f, held);
    j->submitted++;
    /* frames too big for two at once: marked and encoded before the next
     * is decoded */
    return j->one_at_a_time ? take_marked(j, 1) : CM_OK;
}

static int drain_decoder(cm__transcode_job *j)
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
        int ret = submit_frame(j, j->frame);
        av_frame_unref(j->frame);
        if (ret)
            return ret;
    }
}

static int transcode(cm__transcode_job *j)
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
            if (j->by_packet)
                note_packet(j, j->pkt);
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
        if (si < 0 || (unsigned)si >= j->nmap || j->map[si] < 0) {
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
    if ((ret = drain_decoder(j)) || (ret = take_marked(j, 1)))
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

/* Frames marked at once: p->jobs, else one per core; fewer where each
 * worker's frame, its luma plane and the hook's work on it (the stamper's
 * mask: about three float planes in all) would together pass
 * MARK_MEMORY. *spare: frames the ring holds beyond the workers' (one
 * decoded ahead, one waiting for the encoder): 2, none where two frames
 * would pass SPARE_MEMORY (a 4K 4444 frame is 66 MB, a 4K 4:2:0 one 12). */
static int mark_jobs(const cm_video_stamp_params *p, const AVStream *vs, int *spare)
{
    int jobs = p->jobs;
    if (jobs <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = n < 1 ? 1 : (n > MAX_MARK_JOBS ? MAX_MARK_JOBS : (int)n);
    }
    int w = vs->codecpar->width, h = vs->codecpar->height;
    uint64_t px = (uint64_t)(w > 0 ? w : 0) * (uint64_t)(h > 0 ? h : 0);
    int fb = av_image_get_buffer_size(vs->codecpar->format, w, h, 1);
    uint64_t frame = fb > 0 ? (uint64_t)fb : px * 8; /* unknown: 16-bit 4:4:4:4 */
    uint64_t per = px * 3 * sizeof(float) + frame;
    uint64_t fit = per ? MARK_MEMORY / per : (uint64_t)jobs;
    if (fit < (uint64_t)jobs)
        jobs = fit < 1 ? 1 : (int)fit;
    *spare = 2 * frame > SPARE_MEMORY ? 0 : 2;
    return jobs;
}

int cm__video_transcode(cm_ctx *ctx, const char *in_path, const char *out_path,
                        const cm_video_stamp_params *p, int flags, cm_video_stamp_info *info,
                        cm__video_hook hook, void *opaque)
{
    if (!hook || !in_path || !out_path || !p)
        return cm__error(ctx, CM_E_INVAL, "video: missing hook, path or parameters");
    cm__transcode_job j;
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
    int ret = cm__video_input_open(ctx, in_path, &p->limits, 0, 0, &j.in);
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
    j.by_packet = stateless_intra(vs->codecpar->codec_id);
    for (int k = 0; k < PACKET_DIGESTS; k++)
        j.pkt_digests[k].pts = AV_NOPTS_VALUE;
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
    int spare;
    j.jobs = mark_jobs(p, vs, &spare);
    j.one_at_a_time = j.jobs == 1 && spare == 0;
    if (!(j.planes = calloc((size_t)j.jobs, sizeof(*j.planes))) ||
        cm__pool_new(&j.jobs, spare, mark_frame, &j, &j.pool)) {
        ret = cm__error(ctx, CM_E_NOMEM, "out of memory");
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
    /* the workers first: they use the job */
    cm__pool_free(&j.pool, drop_frame);
    for (int w = 0; j.planes && w < j.jobs; w++)
        cm_plane_free(&j.planes[w]);
    free(j.planes);
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
    av_buffer_pool_uninit(&j.bufs); /* its buffers freed as the last are */
    sws_freeContext(j.sws);
    free(j.last_luma);
    free(j.map);
    free(j.ends);
    return ret;
}
