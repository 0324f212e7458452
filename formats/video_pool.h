/*
 * Frames marked by several workers at once and handed back in the order
 * they were submitted (video_pool.c). Library-internal, not installed.
 */
#ifndef CELMARK_VIDEO_POOL_H
#define CELMARK_VIDEO_POOL_H

#include "video.h"
#include "video_internal.h"

typedef struct cm__mark_pool cm__mark_pool;

/* Start jobs workers (at least one) that run hook on the luma of each
 * frame submitted (path names the input in messages): CM_OK, or CM_E_NOMEM
 * with the message in ctx. The hook is called from several threads at
 * once. */
CM__HIDDEN int cm__mark_pool_new(cm_ctx *ctx, const char *path, int jobs, cm__video_hook hook,
                                 void *opaque, cm__mark_pool **out);
/* 1 when no frame can be submitted before one is taken. */
CM__HIDDEN int cm__mark_pool_full(const cm__mark_pool *p);
/* 1 when every frame submitted has been taken. */
CM__HIDDEN int cm__mark_pool_empty(const cm__mark_pool *p);
/* Hand f over (the pool owns it until it is taken); the pool must not be
 * full. held: f's samples equal the frame submitted before it, so it is
 * not marked (whoever takes it gives it that frame's result). The frame
 * must be 8-16 bit planar YUV or grey (cm__luma_describe's native). */
CM__HIDDEN void cm__mark_pool_submit(cm__mark_pool *p, AVFrame *f, int held);
/* The oldest frame submitted, marked in place, into *f (the caller owns
 * it) with its held flag; *f NULL when none is pending or (wait 0) it is
 * not done yet. A frame the hook failed on: its CM_E code (the message in
 * ctx) and *f NULL. */
CM__HIDDEN int cm__mark_pool_take(cm__mark_pool *p, int wait, AVFrame **f, int *held);
/* Stop the workers and free every frame still held; *p becomes NULL. */
CM__HIDDEN void cm__mark_pool_free(cm__mark_pool **p);

#endif
