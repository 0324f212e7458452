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

#endif
