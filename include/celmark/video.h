/*
 * celmark — video files (MP4/MOV/MKV/MXF...): stamp every frame with one
 * issue's mark, and verify a clip by gathering evidence over its frames,
 * per time window and for the whole file.
 */
#ifndef CELMARK_VIDEO_H
#define CELMARK_VIDEO_H

#include "celmark/common.h"
#include "celmark/image.h"
#include "celmark/stamp.h"
#include "celmark/verify.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a file holds, recognised by content (never by its name). */
typedef enum cm_media_kind {
    CM_MEDIA_UNKNOWN = 0, /**< not a supported still or video */
    CM_MEDIA_STILL = 1,   /**< a still image (cm_image_read reads it) */
    CM_MEDIA_VIDEO = 2,   /**< a container with a video stream */
} cm_media_kind;

/**
 * Recognise a file by its content.
 * @return CM_OK and *kind (CM_MEDIA_UNKNOWN for anything else), or CM_E_IO
 *         when the file cannot be read.
 */
CM_API int cm_media_probe(cm_ctx *ctx, const char *path, cm_media_kind *kind);

/**
 * Describe a video without decoding it: format = the container ("mov",
 * "matroska", "mxf"...), size, bit depth and layout of the first video
 * stream, and tags: codec, profile, pix_fmt, fps, frames, duration,
 * timecode, colour tags, field order, and one "stream.N" tag per other
 * stream.
 * @return CM_OK, CM_E_IO, CM_E_FORMAT, CM_E_CORRUPT, CM_E_UNSUPPORTED,
 *         CM_E_LIMIT, CM_E_NOMEM.
 */
CM_API int cm_video_get_info(cm_ctx *ctx, const char *path, const cm_limits *limits,
                             cm_image_info *info);

/** Progress callback: frames done, frames expected (-1 when unknown). */
typedef void (*cm_progress_fn)(void *opaque, int64_t done, int64_t total);

typedef struct cm_video_stamp_params {
    const char *codec;  /**< encoder name (libx264, prores_ks...); NULL = the
                             source's codec (default) */
    int crf;            /**< x264/x265/VPx/AV1 constant rate factor; -1 =
                             matched to the source (default) */
    int qscale;         /**< MJPEG/MPEG-4 quantiser; -1 = matched (default) */
    const char *out_name; /**< name whose extension picks the container when
                               out is a temporary name; NULL = out (default).
                               Neither known: the source's container */
    cm_limits limits;   /**< per-frame pixel limit, file size */
    cm_progress_fn progress; /**< may be NULL (default) */
    void *progress_opaque;
    cm_verifier *check; /**< when set, the copy's first window (2 s) is
                             decoded and verified with it after stamping,
                             as cm_stamp_still checks a still; its cost is
                             the stamp's. NULL = no check (default) */
    int jobs;           /**< frames marked at once, each on its own thread
                             while the decoder and encoder run on theirs;
                             0 = one per core (default). The output is the
                             same whatever the number */
} cm_video_stamp_params;

/** Fill *p with the documented defaults. */
CM_API void cm_video_stamp_params_default(cm_video_stamp_params *p);

/** Lines and their length in cm_video_stamp_info.not_kept. */
#define CM_VIDEO_NOT_KEPT_MAX 16
#define CM_VIDEO_NOT_KEPT_LEN 192

/** What cm_video_stamp did. */
typedef struct cm_video_stamp_info {
    int64_t frames;       /**< video frames stamped (= frames in the source) */
    int width, height;
    char codec[32];       /**< encoder used */
    char pix_fmt[32];     /**< pixel format kept */
    char quality[64];     /**< quality setting used and why ("crf=23 (source)") */
    char transfer[32];    /**< the transfer characteristic kept, as libav names it
                               ("bt709", "smpte2084" for PQ, "arib-std-b67" for
                               HLG; "" when untagged). The colour budget judges
                               the mark as an SDR display shows it */
    int streams_copied;   /**< other streams copied untouched */
    int streams_dropped;  /**< streams the output container cannot hold
                               (a MOV/MP4 timecode track is not dropped: it
                               is written anew with the same start; a
                               MOV/MP4 chapter track neither: it is written
                               anew from the chapters) */
    /** What the copy could not keep of the source (a dropped stream,
     *  chapters in a container without them, settings the encoder cannot
     *  write), one "WHAT not kept: WHY" line each; the command prints them
     *  as warnings. Anything not listed here is kept. */
    char not_kept[CM_VIDEO_NOT_KEPT_MAX][CM_VIDEO_NOT_KEPT_LEN];
    int nnot_kept; /**< lines in not_kept (at most CM_VIDEO_NOT_KEPT_MAX;
                        the last says so when more were lost) */
    int checked;        /**< 1 when the check ran: check_result is the
                             decision on the copy's first window; 0 when no
                             verifier was given or it failed (check_error
                             says why) */
    cm_verify_result check_result;
    char check_error[256];
} cm_video_stamp_info;

/**
 * Stamp every frame of the first video stream of in with s's mark, in the
 * frame's own pixel format (8-12 bit YUV/grey, luma only; chroma and alpha
 * planes are kept bit-exact), re-encode it with the source codec and
 * profile at a matched quality, and copy every other stream untouched
 * (container and stream metadata, chapters, programs, attachments, timecode
 * tracks, frame rate, time base, aspect ratio, colour tags, HDR metadata,
 * field order, key frames and timestamps kept). Whatever the output cannot
 * keep is listed in info->not_kept. Written through a temporary file and renamed:
 * on failure nothing is left at out.
 * @param flags CM_WRITE_FORCE to replace an existing out.
 * @param info  may be NULL.
 * @return CM_OK, CM_E_IO, CM_E_FORMAT, CM_E_CORRUPT, CM_E_UNSUPPORTED (no
 *         encoder, or a pixel format that cannot be marked in place),
 *         CM_E_LIMIT, CM_E_EXISTS, CM_E_NOMEM.
 */
CM_API int cm_video_stamp(cm_ctx *ctx, cm_stamper *s, const char *in, const char *out,
                          const cm_video_stamp_params *p, int flags, cm_video_stamp_info *info);

typedef struct cm_video_verify_params {
    double window_sec;  /**< evidence window, seconds; default 2.0 */
    int thumb_width;    /**< > 0: keep the first frame's luma scaled to at most
                             this width in cm_video_report.thumb; default 0 */
    int threads;        /**< cores: decoder threads, and frames whitened at
                             once while the next are decoded; 1 = one core
                             (default), 0 = all. The result is the same,
                             bit for bit, whatever the number */
    int fast;           /**< triage: stop reading once the file's claim is
                             decisive (its fpr at most the verifier's
                             max_fpr / 1000, so the full read could only
                             confirm it); default 0: read every frame */
    double read_sec;    /**< > 0: read only the first read_sec seconds (a
                             check of the first window); default 0: all */
    cm_limits limits;
    cm_progress_fn progress; /**< may be NULL */
    void *progress_opaque;
} cm_video_verify_params;

CM_API void cm_video_verify_params_default(cm_video_verify_params *p);

/** A stretch of the clip: a window, or consecutive windows with one claim. */
typedef struct cm_video_segment {
    double start, end;       /**< seconds from the first frame */
    char start_tc[32];       /**< timecodes (HH:MM:SS:FF), from the file's */
    char end_tc[32];         /**<   start timecode when it has one, else 00:00:00:00 */
    int64_t first_frame;     /**< index of the first frame */
    int64_t frames;          /**< frames in it */
    cm_verify_result result; /**< the decision on its evidence */
} cm_video_segment;

typedef struct cm_video_report {
    int64_t frames;          /**< frames decoded and examined */
    double duration;         /**< seconds */
    double fps;              /**< average frame rate */
    int width, height;
    cm_verify_result whole;  /**< the decision on the whole file's evidence */
    cm_video_segment *windows;  /**< one per window_sec */
    size_t nwindows;
    cm_video_segment *segments; /**< runs of windows with the same claim (or
                                     none), each decided on its own evidence */
    size_t nsegments;
    size_t nids;             /**< distinct ids claimed by segments; > 1 means
                                  the clip mixes copies (a cut of two
                                  recipients' footage) */
    cm_plane thumb;          /**< first frame's luma, small (thumb_width), or empty */
    int stopped_early;       /**< 1 when a fast read stopped after `frames`
                                  frames, its claim decisive */
    cm_verify_result claim;  /**< the file's claim: the whole file's decision,
                                  unless segments claim an id it does not (a
                                  mixed cut, or a whole too diluted): then
                                  the longest segment's with the id covering
                                  the most frames */
} cm_video_report;

/**
 * Verify a video: every frame's residual is added to its window's evidence
 * (cm_evidence); each window is decided, runs of windows claiming the same
 * id (or none) are merged into segments and decided again on their joint
 * evidence, and the whole file is decided on all of it. A cut mixing two
 * recipients' footage shows as two segments.
 * @return CM_OK (also when nothing is found), CM_E_IO, CM_E_FORMAT,
 *         CM_E_CORRUPT, CM_E_UNSUPPORTED, CM_E_LIMIT, CM_E_NOMEM. Free the
 *         report with cm_video_report_clear().
 */
CM_API int cm_video_verify(cm_ctx *ctx, cm_verifier *v, const char *path,
                           const cm_video_verify_params *p, cm_video_report *out);

/** Free a report's arrays; accepts NULL. */
CM_API void cm_video_report_clear(cm_video_report *r);

#ifdef __cplusplus
}
#endif
#endif
