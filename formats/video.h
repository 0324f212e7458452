/*
 * Video files for the pipeline (pipeline/): frames of the first video
 * stream as luma planes with their times (video_read.c), and a transcoder
 * that hands each decoded frame's luma to a hook and encodes what the hook
 * made of it (video_write.c). Nothing here knows what the hook does.
 * Library-internal, not installed.
 */
#ifndef CELMARK_FORMATS_VIDEO_H
#define CELMARK_FORMATS_VIDEO_H

#include "celmark/image.h"
#include "celmark/video.h"
#include "internal.h"
#include "pixels/colour.h"

/* ---- reading (video_read.c) -------------------------------------------- */

typedef struct cm__video_reader cm__video_reader;

/* A file this process has just written (a stamp's copy, read back for its
 * check): the streams its header declares are taken as they are, with no
 * frames decoded to probe them (40-80 ms at 1080p, 130-200 ms at 4K),
 * where the header gives the video's size. */
#define CM__VIDEO_OWN 1

/* Open path's first video stream. threads: decoder threads (0 = auto);
 * flags: CM__VIDEO_OWN or 0. */
CM__HIDDEN int cm__video_open(cm_ctx *ctx, const char *path, const cm_limits *limits,
                              int threads, int flags, cm__video_reader **out);
CM__HIDDEN void cm__video_close(cm__video_reader **r);

/* Stream facts: frame rate (average), expected frame count (-1 when the
 * container does not say), start timecode ("" when none). */
CM__HIDDEN double cm__video_fps(const cm__video_reader *r);
CM__HIDDEN int64_t cm__video_frames_hint(const cm__video_reader *r);
CM__HIDDEN const char *cm__video_timecode(const cm__video_reader *r);

/* Decode the next frame into *luma (the reader's plane, valid until the
 * next call) and its time in seconds from the first frame. The caller may
 * take the plane's buffer, leaving one of its own or a zeroed plane in its
 * place: the reader decodes the next frame into that. Returns 1 for a
 * frame, 0 at the end, or a negative CM_E code (message in ctx). */
CM__HIDDEN int cm__video_next(cm__video_reader *r, cm_plane **luma, double *t);

/* "HH:MM:SS:FF" for frame offset frames after timecode tc0 ("" = 0) at fps. */
CM__HIDDEN void cm__timecode_add(const char *tc0, int64_t frames, double fps, char *out,
                                 size_t size);

/* ---- transcoding with a frame hook (video_write.c) --------------------- */

/* One decoded frame's luma as the transcoder lends it to the hook: in
 * 8-bit code values of the nominal range (limited range 16..235 scaled to
 * 0..255), and the frame's chroma planes (NULL for grey). The hook changes
 * luma in place; the transcoder writes the change back into the samples,
 * within that range (cm__luma_headroom_row: how far a row's samples may
 * move down and up before they leave it). */
typedef struct cm__video_luma {
    cm_plane *luma;
    const cm__yuv_chroma *chroma;
} cm__video_luma;

/* lo[x], hi[x]: how far luma row l (w samples, as lent to the hook) may
 * move down and up within 0..255. */
CM__HIDDEN void cm__luma_headroom_row(const float *l, float *lo, float *hi, int w);

/* The hook: CM_OK or a CM_E code (which stops the transcode). It must give
 * the same result for the same samples: a frame whose samples equal the
 * last one's (a held drawing) gets the last result back without a call. */
typedef int (*cm__video_hook)(void *opaque, cm__video_luma *frame);

/* Re-encode in's video through hook into out (atomically; flags:
 * CM_WRITE_FORCE), every other stream copied, with p's encoder settings
 * and limits (p required); what was kept and announced goes into info (may be NULL). */
CM__HIDDEN int cm__video_transcode(cm_ctx *ctx, const char *in, const char *out,
                                   const cm_video_stamp_params *p, int flags,
                                   cm_video_stamp_info *info, cm__video_hook hook,
                                   void *opaque);

#endif
