/*
 * Inputs that carry no mark of the key under test, for false-positive
 * measurements (tests/unit/test_calibration.c, bench/falsepos.c): cel
 * frames, crops of a large frame, rescaled frames, Gaussian noise,
 * photo-like texture, and frames marked under another key.
 */
#ifndef CELMARK_GEN_UNMARKED_H
#define CELMARK_GEN_UNMARKED_H

#include "celmark/celmark.h"

#include <stdint.h>

typedef enum um_kind {
    UM_CEL = 0,
    UM_CROP,
    UM_RESCALE,
    UM_NOISE,
    UM_PHOTO,
    UM_OTHER_KEY,
    UM_KINDS
} um_kind;

typedef struct um_source {
    uint64_t rng;          /* state of the generator; any nonzero start */
    const cm_key *other;   /* key for UM_OTHER_KEY */
    const cm_plane *big;   /* large luma plane for UM_CROP (>= w x h) */
} um_source;

const char *um_kind_name(um_kind k);

/* Input number i of kind k, w x h, into out (free with cm_plane_free).
 * Deterministic in (k, i, w, h, src->rng). Returns CM_OK or a CM_E code. */
int um_generate(um_source *src, um_kind k, int i, int w, int h, cm_plane *out);

/* The colour image behind UM_CEL and UM_OTHER_KEY inputs (what a verifier
 * of files sees: luma and chroma). Other kinds: CM_E_INVAL. */
int um_generate_image(um_source *src, um_kind k, int i, int w, int h, cm_image **out);

#endif
