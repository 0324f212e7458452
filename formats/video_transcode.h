/*
 * The transcoder's state, shared by video_write.c (the streaming pass and
 * its frame hook) and video_encoder.c (the encoder matched to the source).
 * Library-internal, not installed.
 */
#ifndef CELMARK_VIDEO_TRANSCODE_H
#define CELMARK_VIDEO_TRANSCODE_H

#include "video_internal.h"
#include "pool.h"

/* SHA-256 of a decoded frame (video_write.c: held drawings). */
#define FRAME_DIGEST_BYTES 32
/* Packets of a stateless intra-only stream remembered by their digest
 * until their frames are decoded (frame threads hold a few). */
#define PACKET_DIGESTS 16

typedef struct cm__packet_digest {
    int64_t pts;
    uint8_t d[FRAME_DIGEST_BYTES];
} cm__packet_digest;

typedef struct cm__transcode_job {
    cm_ctx *ctx;
    cm__video_hook hook;
    void *opaque;
    const cm_video_stamp_params *p;
    const char *out_path;
    cm__video_input in;
    AVFormatContext *oc;
    AVCodecContext *enc;
    int *map;          /* input stream -> output stream, -1 = dropped */
    unsigned nmap;     /* streams known at setup; a TS may add more later */
    int64_t *ends;     /* input stream -> where it ends apart from its packets
                          (cm__video_stream_end), AV_NOPTS_VALUE = unknown */
    int vo;            /* output video stream */
    AVPacket *pkt, *opkt;
    AVFrame *frame;
    struct SwsContext *sws; /* decoder -> encoder layout, when they differ */
    AVFrame *conv;          /* its layout (format, size), no buffers */
    cm__pool *pool;         /* the frames being marked (AVFrame items) */
    AVBufferPool *bufs;     /* buffers for frames of the first frame's layout, */
    int buf_fmt, buf_w, buf_h;    /* kept from frame to frame (frame_buffer) */
    int buf_linesize[4];
    size_t buf_offset[4];
    cm_plane *planes;       /* each worker's luma */
    int jobs;               /* workers */
    int one_at_a_time;      /* each frame encoded before the next is decoded */
    uint8_t last_in[FRAME_DIGEST_BYTES]; /* the last frame submitted: its digest as */
    int have_last_in;                    /* decoded (held frames), if one was made: */
    int last_in_packet;                  /* 1 its packet's, 0 its samples' */
    int by_packet;          /* the source's frames each its own packet's alone */
    cm__packet_digest pkt_digests[PACKET_DIGESTS]; /* the last packets sent */
    unsigned next_pkt_digest;
    uint8_t *last_luma;     /* the last frame sent to the encoder: its marked luma, */
    size_t last_row;        /* last_rows rows of last_row bytes */
    int last_rows;
    cm__atomic out;
    int write_errno; /* why writing the output failed (ENOSPC, EFBIG...), else 0 */
    int64_t frames, total; /* encoded; in the source (-1 = unknown) */
    int64_t submitted;     /* handed to the workers */
    cm_video_stamp_info *info;
    /* the encoder's time base is one frame (1/fps) when every source
     * timestamp lies on that grid (H.264/H.265 write it into the stream's
     * timing); grid: the frames' times are counted from pts0 (source time
     * base) on it. Otherwise the source's time base, grid 0. */
    int grid;
    int64_t pts0;
    int gop;               /* the source's first key frame interval (packets), 0 = unknown */
    unsigned sd_announced; /* frame side data types announced as not kept */
} cm__transcode_job;

/* Open the encoder for the video stream is (output stream os), matched to
 * the source's codec, profile, pixel format and quality unless j->p says
 * otherwise: CM_OK, or a CM_E code with the message in j->ctx. */
CM__HIDDEN int cm__video_open_encoder(cm__transcode_job *j, AVStream *is, AVStream *os);

#endif
