/*
 * Attacks for the robustness benchmark: the ways a stamped frame gets
 * damaged between the studio and the place it turns up (re-encoding,
 * rescaling, cropping, rotation, filtering, colour changes, review sheets).
 *
 * Every attack takes an 8-bit RGB image (3 channels, no alpha) and returns a
 * new 8-bit RGB image, possibly of a different size. Attacks that involve
 * randomness (offsets, noise, layout) are deterministic given the seed.
 */
#ifndef CELMARK_BENCH_ATTACKS_H
#define CELMARK_BENCH_ATTACKS_H

#include "celmark/image.h"

#include <stdint.h>

/* Brightness attacks: code values added / subtracted (bright_p20, _m20). */
#define BRIGHT_DELTA 20

typedef struct atk_def {
    const char *name; /**< short stable name, e.g. "jpeg75" */
    /**
     * Apply the attack.
     * @param in   8-bit RGB image (channels 3, bit_depth 8); not modified.
     * @param out  receives a new 8-bit RGB image (free with cm_image_free).
     * @param seed picks offsets, noise and layout where the attack has any.
     * @return CM_OK, CM_E_INVAL (not 8-bit RGB), CM_E_NOMEM, or
     *         CM_E_INTERNAL / CM_E_UNSUPPORTED when a codec library fails
     *         (one line with the cause goes to stderr).
     */
    int (*fn)(const cm_image *in, cm_image **out, uint32_t seed);
} atk_def;

/** All attacks, in benchmark order; atk_count() entries. */
extern const atk_def atk_list[];

/** Number of entries in atk_list. */
int atk_count(void);

/** The attack called name, or NULL. */
const atk_def *atk_find(const char *name);

#endif
