/*
 * What the video files of formats/ share (video_open.c, video_luma.c,
 * video_read.c, video_write.c): an opened input with its limits, and luma
 * read and written where it lies in a decoded frame.
 * Library-internal, not installed.
 */
#ifndef CELMARK_VIDEO_INTERNAL_H
#define CELMARK_VIDEO_INTERNAL_H

#include "video.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

/* Frames from this size (half of UHD) are decoded and encoded by slices,
 * not frames, where the codec can: a frame thread holds a frame of its own
 * (cm__video_input_open, cm__video_open_encoder). */
#define CM__LARGE_FRAME_PIXELS (3840 * 2160 / 2)

/* ---- an opened input (video_open.c) ------------------------------------ */

typedef struct cm__video_input {
    cm_ctx *ctx;
    const char *path;
    AVFormatContext *fc;
    AVCodecContext *dec;
    int vi; /* video stream index */
    cm_limits limits;
    double spent;   /* seconds spent in libav's demuxer and decoder so far */
    double started; /* clock at the start of the current call, 0 outside */
} cm__video_input;

/* Open path's first (best) video stream and its decoder with threads
 * decoder threads (0 = auto), within limits (NULL = defaults); flags:
 * CM__VIDEO_OWN or 0. On failure the message is in ctx; close it either
 * way. */
CM__HIDDEN int cm__video_input_open(cm_ctx *ctx, const char *path, const cm_limits *limits,
                                    int threads, int flags, cm__video_input *in);
CM__HIDDEN void cm__video_input_close(cm__video_input *in);

/* Bracket every demuxer/decoder call: the time between counts against
 * max_decode_seconds; cm__video_time_over() says when it is spent. */
CM__HIDDEN void cm__video_decode_begin(cm__video_input *in);
CM__HIDDEN void cm__video_decode_end(cm__video_input *in);
CM__HIDDEN int cm__video_time_over(const cm__video_input *in);

/* The limit errors (CM_E_LIMIT with a message): decoding time spent;
 * frames over max_frames (declared: the count the container claims, or 0
 * when decoding went past it); a w x h frame over max_pixels. */
CM__HIDDEN int cm__video_time_error(cm__video_input *in);
CM__HIDDEN int cm__video_frames_error(cm__video_input *in, int64_t declared);
CM__HIDDEN int cm__video_pixels_error(cm__video_input *in, uint64_t w, uint64_t h);

/* A libav call on path failed with err while trying to `what`: the
 * matching CM_E code (NOMEM, UNSUPPORTED, else CORRUPT) and message. */
CM__HIDDEN int cm__video_av_fail(cm_ctx *ctx, const char *path, int err, const char *what);

/* The start timecode: the video stream's or the container's "timecode"
 * tag (MOV/MP4 tmcd tracks and MXF are exposed this way); "" if none. */
CM__HIDDEN void cm__video_find_timecode(AVFormatContext *fc, int vi, char *out, size_t size);

/* ---- luma where it lies (video_luma.c) --------------------------------- */

/* How a frame's luma is stored, when it can be marked where it lies. */
typedef struct cm__luma_fmt {
    int native;   /* planar YUV / grey with luma alone in plane 0 */
    int bits;     /* bits per sample (8..16) */
    int bytes;    /* 1 or 2 per sample */
    int limited;  /* nominal range 16..235 (scaled by bits) */
    int alpha;    /* has an alpha plane (kept) */
} cm__luma_fmt;

/* f's luma layout; .native 0 when it cannot be marked in place. */
CM__HIDDEN cm__luma_fmt cm__luma_describe(const AVFrame *f);

/* Sample value <-> 8-bit code value of the nominal range:
 *   full     L = v * 255 / (2^bits - 1)
 *   limited  L = (v / 2^(bits-8) - 16) * 255 / 219 */
typedef struct cm__luma_map {
    float a, b; /* L = a * v + b */
    float vmax;
} cm__luma_map;

CM__HIDDEN cm__luma_map cm__luma_map_make(const cm__luma_fmt *lf);
/* f's luma samples as code values into p (f's size). */
CM__HIDDEN void cm__luma_read(const AVFrame *f, const cm__luma_fmt *lf, const cm__luma_map *m,
                              cm_plane *p);
/* The frame's chroma planes, for the colour budget: 1 when it has planar
 * Cb and Cr of luma's depth (every native YUV format; 0 for grey). */
CM__HIDDEN int cm__luma_chroma(const AVFrame *f, const cm__luma_fmt *lf, cm__yuv_chroma *c);
/* The change from what cm__luma_read() gave to marked, back into f's
 * samples: v' = clamp(round(v + (marked - L(v)) / a)); an unchanged L
 * leaves v unchanged. */
CM__HIDDEN void cm__luma_write(AVFrame *f, const cm__luma_fmt *lf, const cm__luma_map *m,
                               const cm_plane *marked);

#endif
