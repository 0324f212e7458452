/*
 * What the video stamp (stamp_video.c) lends the rest of the library and
 * its tests: the colour room of a frame's rows as the stamper reaches them.
 * Library-internal, not installed.
 */
#ifndef CELMARK_PIPELINE_STAMP_VIDEO_H
#define CELMARK_PIPELINE_STAMP_VIDEO_H

#include "internal.h"
#include "pixels/colour.h"

/* A frame's rooms, made a row at a time as the stamper marks it. */
typedef struct cm__frame_room {
    const cm__room *room;
    cm__yuv_room_rows *yuv; /* NULL: a grey frame */
    int width;
} cm__frame_room;

/* The cm__room_row_fn of the video stamp (opaque: a cm__frame_room): row
 * y's headroom within the nominal range, then its colour room. */
CM__HIDDEN void cm__frame_room_row(void *opaque, int y, const float *luma, float *lo, float *hi);

#endif
