/*
 * celmark — verification: blind detection of a mark and the calibrated
 * decision "this frame carries issue id X" with its false-positive
 * probability. "No mark found" is a result (marked = 0), not an error.
 */
#ifndef CELMARK_VERIFY_H
#define CELMARK_VERIFY_H

#include "celmark/common.h"
#include "celmark/image.h"
#include "celmark/key.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cm_verify_params {
    const uint64_t *candidates; /**< issue ids to score (e.g. from the ledger); may be NULL */
    size_t ncandidates;         /**< default 0 */
    double max_fpr;             /**< claim only when fpr <= this; default 1e-9 */
} cm_verify_params;

/** Fill *p with the documented defaults. */
CM_API void cm_verify_params_default(cm_verify_params *p);

/** How the reported id was found. */
typedef enum cm_id_source {
    CM_ID_NONE = 0,      /**< no id passed the threshold */
    CM_ID_BLIND = 1,     /**< decoded without prior knowledge (Viterbi + CRC) */
    CM_ID_CANDIDATE = 2, /**< one of the candidates scored above the threshold */
} cm_id_source;

typedef struct cm_verify_result {
    int marked;              /**< 1 when a claim passed max_fpr */
    uint64_t issue_id;       /**< the claimed id (valid when marked) */
    cm_id_source source;     /**< how it was found */
    double score;            /**< z-score of the claimed (or best) id's codeword */
    double fpr;              /**< false-positive probability of this claim, corrected
                                  for candidates and geometry hypotheses tried */
    uint64_t decoded_id;     /**< the blind decoder's best guess, CRC or not (for
                                  bit-accuracy measurements; never a claim) */
    int blind_crc_ok;        /**< the blind decode passed its CRC */
    uint64_t blind_id;       /**< the blind decode (valid when blind_crc_ok) */
    double blind_score;      /**< z of the blind decode's codeword */
    double blind_fpr;        /**< fpr of the blind decode (1 when CRC failed) */
    long best_candidate;     /**< index of the best-scoring candidate, -1 if none */
    double candidate_score;  /**< its z */
    double candidate_fpr;    /**< its fpr */
    double sync_score;       /**< sync strength (not calibrated; for diagnostics) */
    double scale;            /**< found size relative to the stamped frame */
    double rotation_deg;     /**< found rotation, degrees, counter-clockwise */
    int flipped;             /**< found mirrored */
    int hypotheses;          /**< geometry hypotheses whose payload was scored */
} cm_verify_result;

typedef struct cm_verifier cm_verifier;

/**
 * Prepare a verifier for one key. It keeps its scratch buffers and FFT
 * plans between calls, so a verifier serves one thread at a time (make one
 * per worker). params may be NULL (defaults); the
 * candidate array is copied.
 * @return CM_OK and *out (free with cm_verifier_free), CM_E_INVAL, CM_E_NOMEM.
 */
CM_API int cm_verifier_new(cm_ctx *ctx, const cm_key *key, const cm_verify_params *params,
                           cm_verifier **out);

/** Free a verifier; accepts NULL and sets *v to NULL. */
CM_API void cm_verifier_free(cm_verifier **v);

/**
 * Detect in one luma plane (8-bit code values). Fills *res; res->marked
 * says whether a claim was made.
 * @return CM_OK (also when nothing is found), CM_E_INVAL, CM_E_NOMEM.
 */
CM_API int cm_verifier_plane(cm_verifier *v, const cm_plane *luma, cm_verify_result *res);

/** Convenience: detect in a decoded image. */
CM_API int cm_verifier_image(cm_verifier *v, const cm_image *img, cm_verify_result *res);

#ifdef __cplusplus
}
#endif
#endif
