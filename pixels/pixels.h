/*
 * The pixel layer: the in-memory image (cm_image), luma planes (cm_plane)
 * and the conversions between them. No file, no codec: formats/ fills
 * images from bytes, watermark/ and verify/ work on their planes.
 * Library-internal, not installed.
 */
#ifndef CELMARK_PIXELS_H
#define CELMARK_PIXELS_H

#include "celmark/image.h"
#include "internal.h"

#include <stdint.h>

/* The largest image cm_image_new() makes (and the default of
 * cm_limits.max_pixels): 268 Mpixel is 16k x 16k, far above any production
 * frame. */
#define CM__DEFAULT_MAX_PIXELS (UINT64_C(1) << 28)

/* What the reader of a file attached to the image it made (opaque in the
 * public API): pixels keep it and free it, the reader alone reads it. */
struct cm_image_meta {
    const void *format;            /* who attached it: a formats/ reader */
    void *priv;                    /* its private part */
    void (*priv_free)(void *priv); /* frees priv; may be NULL */
    /* The colour that stands for "transparent" in an image without alpha
     * (PNG tRNS): 1 and key[0] (grey) or key[0..2] (RGB), else 0. May be
     * NULL (no key). */
    int (*colour_key)(const cm_image *img, unsigned key[3]);
};

/* cm_image_new() with an explicit pixel limit (readers pass the caller's
 * cm_limits.max_pixels): CM_OK, CM_E_INVAL, CM_E_LIMIT or CM_E_NOMEM. No
 * message is recorded. */
CM__HIDDEN int cm__image_alloc(cm_image **out, int width, int height,
                               int channels, int has_alpha, int bit_depth,
                               uint64_t max_pixels);

/* Check that img is a well-formed image (geometry, layout, buffer):
 * 0 or CM_E_INVAL. */
CM__HIDDEN int cm__image_check(const cm_image *img);

/* Free a meta and its private part; accepts NULL. */
CM__HIDDEN void cm__image_meta_free(cm_image_meta *meta);

#endif
