/*
 * Video decoding for the verifier (formats/video.c): frames of the first
 * video stream as luma planes in 8-bit code values, with their times.
 * Library-internal, not installed.
 */
#ifndef CELMARK_FORMATS_VIDEO_H
#define CELMARK_FORMATS_VIDEO_H

#include "celmark/image.h"
#include "celmark/video.h"
#include "internal.h"

typedef struct cm__video_reader cm__video_reader;

/* Open path's first video stream. threads: decoder threads (0 = auto). */
CM__HIDDEN int cm__video_open(cm_ctx *ctx, const char *path, const cm_limits *limits,
                              int threads, cm__video_reader **out);
CM__HIDDEN void cm__video_close(cm__video_reader **r);

/* Stream facts: frame rate (average), expected frame count (-1 when the
 * container does not say), start timecode ("" when none). */
CM__HIDDEN double cm__video_fps(const cm__video_reader *r);
CM__HIDDEN int64_t cm__video_frames_hint(const cm__video_reader *r);
CM__HIDDEN const char *cm__video_timecode(const cm__video_reader *r);

/* Decode the next frame into *luma (owned by the reader, valid until the
 * next call) and its time in seconds from the first frame. Returns 1 for a
 * frame, 0 at the end, or a negative CM_E code (message in ctx). */
CM__HIDDEN int cm__video_next(cm__video_reader *r, const cm_plane **luma, double *t);

/* "HH:MM:SS:FF" for frame offset frames after timecode tc0 ("" = 0) at fps. */
CM__HIDDEN void cm__timecode_add(const char *tc0, int64_t frames, double fps, char *out,
                                 size_t size);

#endif
