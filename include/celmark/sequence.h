/*
 * celmark — image sequences: "IN.%04d.png" / "frame.####.exr" patterns and
 * oiiotool-style frame ranges ("1001-1100", "1-100x5", "1,3,10-20").
 */
#ifndef CELMARK_SEQUENCE_H
#define CELMARK_SEQUENCE_H

#include "celmark/common.h"
#include "celmark/video.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** 1 if name holds a frame-number wildcard: "%d"/"%0Nd", or a run of '#'
 *  (one digit of zero padding each: "####" = 0001). */
CM_API int cm_sequence_is_pattern(const char *name);

typedef struct cm_sequence {
    char *prefix, *suffix; /**< text around the frame number */
    int pad;               /**< minimum digits (zero padded) */
    int64_t *frames;       /**< frame numbers, in order */
    size_t nframes;
} cm_sequence;

/**
 * Expand a pattern into its frames. range (may be NULL) is oiiotool's
 * syntax: comma-separated items "A", "A-B", "A-BxN" (every Nth from A),
 * "A-ByN" (all but every Nth). The pattern may also carry the range just
 * before its wildcard, as oiiotool writes it ("in.1001-1100####.png").
 * Without a range, the frames are those found on disk (one folder read),
 * and a gap in their numbers is an error: a sequence with a missing frame
 * is refused rather than silently treated as two. With a range, every
 * frame of it must exist.
 * @return CM_OK and *out (free with cm_sequence_free), CM_E_INVAL (bad
 *         pattern or range), CM_E_IO (no frame found, a missing frame, an
 *         unreadable folder), CM_E_NOMEM.
 */
CM_API int cm_sequence_open(cm_ctx *ctx, const char *pattern, const char *range,
                            cm_sequence **out);

/**
 * The same frames under another pattern (the output of stamp): no check on
 * disk. @return CM_OK, CM_E_INVAL (not a pattern), CM_E_NOMEM.
 */
CM_API int cm_sequence_rename(cm_ctx *ctx, const cm_sequence *seq, const char *pattern,
                              cm_sequence **out);

/** Path of frame i into buf. @return CM_OK or CM_E_INVAL (i out of range,
 *  buffer too small). */
CM_API int cm_sequence_path(const cm_sequence *seq, size_t i, char *buf, size_t size);

CM_API void cm_sequence_free(cm_sequence **seq);

/**
 * Verify a sequence as one clip at fps frames per second: per window,
 * segment and whole, as cm_video_verify does (timecodes count from
 * 00:00:00:00 at the first frame). Frames must all have one size.
 */
CM_API int cm_sequence_verify(cm_ctx *ctx, cm_verifier *v, const cm_sequence *seq, double fps,
                              const cm_video_verify_params *p, cm_video_report *out);

#ifdef __cplusplus
}
#endif
#endif
