/*
 * What the stamper (watermark/embed.c) lends the pipeline beyond the public
 * API. Library-internal, not installed.
 */
#ifndef CELMARK_EMBED_H
#define CELMARK_EMBED_H

#include "celmark/stamp.h"
#include "internal.h"
#include "pixels/colour.h"

/* The colour budget of a stamper's profile and strength, made beside the
 * stamper's caller from cm_stamper_new on (waited for here): a video
 * frame's luma room is cut to it before cm_stamper_plane. NULL, the error
 * set on the stamper's context, when out of memory. */
CM__HIDDEN const cm__room *cm__stamper_room(cm_stamper *s);

/* The context a stamper reports its errors to. */
CM__HIDDEN cm_ctx *cm__stamper_ctx(const cm_stamper *s);

/* cm_stamper_plane with the room of each row made when the row is marked
 * rather than held in lo/hi planes (two float planes a frame less: 33 MB
 * a worker at 4K). room_row fills row y's lo and hi (luma's width each)
 * from that row's luma, unmarked; rows come in any order, some twice. */
typedef void (*cm__room_row_fn)(void *opaque, int y, const float *luma, float *lo, float *hi);
CM__HIDDEN int cm__stamper_plane_rows(cm_stamper *s, cm_plane *luma, cm__room_row_fn room_row,
                                      void *opaque);

#endif
