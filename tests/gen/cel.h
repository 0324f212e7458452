/*
 * Synthetic cel-style frames for tests and benchmarks.
 *
 * A frame is a background (flat, gradient, textured, white or black) with
 * characters drawn as flat-filled ellipses and polygons, each with a cel
 * shadow tone and a dark anti-aliased outline, plus loose ink strokes. The
 * seed picks the variety; the same parameters always give the same pixels.
 */
#ifndef CELMARK_GEN_CEL_H
#define CELMARK_GEN_CEL_H

#include "celmark/image.h"

#include <stdint.h>

typedef enum cel_style {
    CEL_MIXED = 0,    /* pick from the seed */
    CEL_FLAT,         /* flat background, several characters */
    CEL_GRADIENT,     /* sky-like vertical gradient background */
    CEL_TEXTURED,     /* painted, textured background */
    CEL_WHITE,        /* large white page with a few characters */
    CEL_BLACK,        /* large black area (night scene) */
    CEL_SMALL,        /* one small character on an empty background */
    /* the kinds where a mark shows first (dark, neutral, dense ink, grain);
     * CEL_MIXED never picks these, so older seeds keep their pictures */
    CEL_PAINTED,      /* painted backdrop, airbrushed shading on the characters */
    CEL_NIGHT,        /* night scene: most pixels under luma 40, textured */
    CEL_HATCHING,     /* dense crossed hatching and ink line junctions */
    CEL_GREY_RAMP,    /* neutral grey ramps, black to white and in the dark */
    CEL_DARK_INK,     /* dark saturated browns, reds, blues beside black ink */
    CEL_PAPER,        /* paper white with fine grain, pencil-like lines */
    CEL_FILM,         /* mid tones under film grain */
    CEL_STYLE_COUNT
} cel_style;

/* CEL_FLAT .. CEL_SMALL: the styles CEL_MIXED picks from */
#define CEL_MIXED_COUNT (CEL_SMALL + 1)

typedef struct cel_params {
    int width, height;
    uint32_t seed;
    cel_style style;
    int channels;  /* 1, 2, 3 or 4; default 3 */
    int bit_depth; /* 8 or 16; default 8 */
} cel_params;

/** Defaults: 1920x1080 RGB 8-bit, CEL_MIXED, seed 1. */
void cel_params_default(cel_params *p);

/** Render a frame. Returns CM_OK and *out (free with cm_image_free). */
int cel_generate(cm_image **out, const cel_params *p);

/** Name of a style, for tables. */
const char *cel_style_name(cel_style s);

#endif
