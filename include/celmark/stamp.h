/*
 * celmark — stamping: embed a keyed, invisible mark carrying a 64-bit issue
 * id into a frame's luma.
 */
#ifndef CELMARK_STAMP_H
#define CELMARK_STAMP_H

#include "celmark/common.h"
#include "celmark/image.h"
#include "celmark/key.h"
#include "celmark/verify.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Named strength profiles; each has its own measured robustness table. */
typedef enum cm_profile {
    CM_PROFILE_SUBTLE = 0,  /**< least visible: flat-fill RMS <= 0.5 code value */
    CM_PROFILE_DEFAULT = 1, /**< flat-fill RMS <= 1.0, luma PSNR >= 45 dB */
    CM_PROFILE_ROBUST = 2,  /**< more energy for hostile re-encoding chains */
} cm_profile;

typedef struct cm_stamp_params {
    cm_profile profile; /**< default CM_PROFILE_DEFAULT */
    float strength;     /**< multiplies the profile's amplitude; default 1.0, range (0, 4] */
    int cel_safe;       /**< 1: pixels inside flat fills (8x8 of one colour) stay
                             bit-exact; default 0 */
} cm_stamp_params;

/** Fill *p with the documented defaults. */
CM_API void cm_stamp_params_default(cm_stamp_params *p);

/** Profile name ("subtle", "default", "robust") <-> value; -1 if unknown. */
CM_API const char *cm_profile_name(cm_profile p);
CM_API int cm_profile_from_name(const char *name);

typedef struct cm_stamper cm_stamper;

/**
 * Prepare to stamp frames with one key and issue id (the rendered tile is
 * cached, so every frame of one issue carries the same mark).
 * @return CM_OK and *out (free with cm_stamper_free), CM_E_INVAL, CM_E_NOMEM,
 *         CM_E_CRYPTO.
 */
CM_API int cm_stamper_new(cm_ctx *ctx, const cm_key *key, uint64_t issue_id,
                          const cm_stamp_params *params, cm_stamper **out);

/** Free a stamper; accepts NULL and sets *s to NULL. */
CM_API void cm_stamper_free(cm_stamper **s);

/**
 * Add the mark to a luma plane in place. lo/hi give the headroom per pixel
 * (see cm_image_headroom); NULL means 0..255 on luma itself.
 * Deterministic: same key, id, params and plane give the same result.
 */
CM_API int cm_stamper_plane(cm_stamper *s, cm_plane *luma, const cm_plane *lo,
                            const cm_plane *hi);

/** Convenience: stamp a decoded image in place (alpha untouched). */
CM_API int cm_stamper_image(cm_stamper *s, cm_image *img);

/** What cm_stamp_still did. */
typedef struct cm_still_stamp_info {
    int width, height, channels, has_alpha; /**< the copy's layout */
    int colour;         /**< a colour copy: it carries the chroma share too */
    int converted;      /**< the source's layout was converted (palette, YUV) */
    char source_layout[24]; /**< the source's color_type ("palette", ...) */
    cm_de_stats de;     /**< CIEDE2000 of the copy against the input */
    int checked;        /**< 1 when check ran: check_result is the copy's
                             decoding; 0 when no verifier was given or it
                             failed (check_error says why) */
    cm_verify_result check_result;
    char check_error[256];
} cm_still_stamp_info;

/**
 * Stamp the still file in into out (any format cm_image_read reads, written
 * as cm_image_write writes; flags: CM_WRITE_FORCE). The copy's colour
 * difference from the input is measured, and when check is given the
 * stamped pixels are decoded by it before writing (a frame with too little
 * room for the mark shows there; not finding it is not a failure).
 * What the copy could not carry is in ctx's warnings (cm_ctx_warning).
 *  CM_OK with *info filled, or a CM_E code (message in ctx, no
 *         output left behind).
 */
CM_API int cm_stamp_still(cm_ctx *ctx, cm_stamper *s, cm_verifier *check, const char *in,
                          const char *out, const cm_limits *limits, int flags,
                          cm_still_stamp_info *info);

#ifdef __cplusplus
}
#endif
#endif
