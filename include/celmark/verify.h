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
    int map;                    /**< 1: score the cells of every frame with a claim (the
                                     cell map); default 0: only when several ids
                                     are claimed */
    unsigned layers;            /**< keys tried on the same file (a studio reading its
                                     own layer and each delegate's): every fpr is
                                     multiplied by it; default 1 */
} cm_verify_params;

/** Fill *p with the documented defaults. */
CM_API void cm_verify_params_default(cm_verify_params *p);

/** How the reported id was found. */
typedef enum cm_id_source {
    CM_ID_NONE = 0,      /**< no id passed the threshold */
    CM_ID_BLIND = 1,     /**< decoded without prior knowledge (Viterbi + CRC) */
    CM_ID_CANDIDATE = 2, /**< one of the candidates scored above the threshold */
} cm_id_source;

/** Most ids claimed in one frame (a mix of copies). */
#define CM_MAX_CLAIMS 8
/** Most cells of the claim map (a grid of about one tile each). */
#define CM_MAP_MAX_CELLS 1024

/** One id whose own evidence passed the threshold. */
typedef struct cm_claim {
    uint64_t issue_id;
    cm_id_source source;
    double score;  /**< z of its codeword, in the evidence left after the
                        stronger claims were cancelled */
    double fpr;    /**< its false-positive probability: every id, hypothesis,
                        claim round and region tried is counted */
    double share;  /**< fraction of the frame's area (cells) where it dominates;
                        1 when it is the only claim and no map was scored */
    int x, y, w, h; /**< bounding box of those cells in the frame's pixels */
} cm_claim;

/** Which claim dominates each cell of a grid over the frame. */
typedef struct cm_claim_map {
    int cols, rows;          /**< 0 when no map was scored */
    double cell_w, cell_h;   /**< cell size, frame pixels (the last row and column
                                  may be cut by the frame's edge) */
    signed char owner[CM_MAP_MAX_CELLS]; /**< row-major: claim index, -1 none */
    float score[CM_MAP_MAX_CELLS];       /**< the owner's z in the cell (0 if none) */
} cm_claim_map;

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
    int nclaims;             /**< ids claimed, strongest first; claims[0] is the
                                  top-level issue_id / source / score / fpr */
    cm_claim claims[CM_MAX_CLAIMS];
    int mixed;               /**< nclaims > 1 */
    cm_claim_map map;        /**< where each claim dominates (see params.map) */
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

/** The claim threshold the verifier was made with (params.max_fpr). */
CM_API double cm_verifier_max_fpr(const cm_verifier *v);

/** Convenience: detect in a decoded image. */
CM_API int cm_verifier_image(cm_verifier *v, const cm_image *img, cm_verify_result *res);

/**
 * Read the still file path (within limits; NULL = defaults) and detect in
 * it. When keep is not NULL the decoded image is handed over in *keep (free
 * with cm_image_free), for callers that describe or show it.
 *  CM_OK with *res filled, or a CM_E code (message in ctx).
 */
CM_API int cm_verify_still(cm_ctx *ctx, cm_verifier *v, const char *path,
                           const cm_limits *limits, cm_verify_result *res, cm_image **keep);

/**
 * Evidence gathered over several frames of one clip. A mark is the same on
 * every frame of one issue, so the frames' whitened residuals add: the mark
 * grows with the number of frames, the content and codec noise of changing
 * frames only with its square root. The decision keeps its meaning (the
 * keyed chip signs stay independent of the content, so the printed fpr
 * holds for a sum as for one frame). All frames added must have one size.
 */
typedef struct cm_evidence cm_evidence;

/** New, empty evidence. @return CM_OK, CM_E_INVAL, CM_E_NOMEM. */
CM_API int cm_evidence_new(cm_evidence **out);

/** Free evidence; accepts NULL and sets *e to NULL. */
CM_API void cm_evidence_free(cm_evidence **e);

/** Forget every frame added (keeps the buffer). */
CM_API void cm_evidence_reset(cm_evidence *e);

/** Frames added since the last reset. */
CM_API int64_t cm_evidence_frames(const cm_evidence *e);

/**
 * Add one frame: its luma and, if not NULL, its blue-yellow chroma plane
 * (same size as luma). Frames smaller than 64 px a side are counted but
 * carry nothing.
 * @return CM_OK, CM_E_INVAL (NULL, bad plane, or a size other than the
 *         frames already added), CM_E_NOMEM.
 */
CM_API int cm_evidence_add(cm_evidence *e, const cm_plane *luma, const cm_plane *chroma);

/** Add everything in src to dst (same frame size, or dst empty). */
CM_API int cm_evidence_merge(cm_evidence *dst, const cm_evidence *src);

/**
 * Detect and decide on the evidence, as cm_verifier_plane does on one
 * frame. Empty evidence gives marked = 0.
 * @return CM_OK, CM_E_INVAL, CM_E_NOMEM.
 */
CM_API int cm_verifier_evidence(cm_verifier *v, const cm_evidence *e, cm_verify_result *res);

#ifdef __cplusplus
}
#endif
#endif
