/*
 * What the stamper (watermark/embed.c) lends the pipeline beyond the public
 * API. Library-internal, not installed.
 */
#ifndef CELMARK_EMBED_H
#define CELMARK_EMBED_H

#include "celmark/stamp.h"
#include "internal.h"
#include "pixels/colour.h"

/* The colour budget of a stamper's profile and strength, made with the
 * stamper: a video frame's luma room is cut to it before cm_stamper_plane. */
CM__HIDDEN const cm__room *cm__stamper_room(const cm_stamper *s);

#endif
