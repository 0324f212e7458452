/*
 * What the video verifier (verify_video.c) lends the rest of the pipeline.
 * Library-internal, not installed.
 */
#ifndef CELMARK_PIPELINE_VERIFY_VIDEO_H
#define CELMARK_PIPELINE_VERIFY_VIDEO_H

#include "celmark/video.h"
#include "internal.h"

/* cm_video_verify of a copy this process has just written (the stamp's
 * check): its header's streams taken as they are (CM__VIDEO_OWN). */
CM__HIDDEN int cm__video_verify_own(cm_ctx *ctx, cm_verifier *v, const char *path,
                                    const cm_video_verify_params *p, cm_video_report *out);

#endif
