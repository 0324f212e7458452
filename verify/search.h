/* Internal to verify/: the verifier's state, shared by verifier.c (decode,
 * decide, claims) and geometry.c (the geometry search). */
#ifndef CELMARK_VERIFY_SEARCH_H
#define CELMARK_VERIFY_SEARCH_H

#include "celmark/verify.h"

#include "detect.h"
#include "watermark/pattern.h"

#define TILE_T 32    /* must match watermark/profile.c */
#define TILE_S 12
#define CORR_DECIM 2 /* correlation surface sampled every 2 tile px: its band
                        (< 16 cycles per tile) needs >= 32 samples per side;
                        192 gives a smooth peak */
#define RANK_DECIM 4 /* the perspective grid's ranking folds (geometry.c,
                        step 3d): tile pixels per cell; a cell of 4 passes
                        the band at 0.95 or more */

/* Per-frame scratch of the tile size, made once per verifier (a frame's
 * residual, which depends on its size, is not kept). */
typedef struct work {
    float *sum, *count;
    AVComplexFloat *spec, *corr;
    cm__fft2 fft;      /* N x N */
    cm__fft2 corr_fft; /* M x M correlation surface */
    /* the ranking folds: Q = N / RANK_DECIM */
    float *qsum, *qcount;
    AVComplexFloat *qspec, *qcorr;
    cm__fft2 qfft;      /* Q x Q, the fold's */
    cm__fft2 qcorr_fft; /* Q/2 x Q/2, the correlation surface's */
} work;

struct cm_verifier {
    cm_ctx *ctx;
    cm_verify_params params;
    uint64_t *cands;
    uint8_t *cand_coded; /* ncand * CM_PAYLOAD_CODED_BITS */
    cm__layout *layout;
    cm__render render;
    int N;
    double ln_keys;            /* ln(params.layers): keys tried on the same file */
    AVComplexFloat *sync_spec; /* N*N spectrum of the sync-only tile */
    work wk;
};

/* One geometry + mirror + origin hypothesis and its demodulated chips. */
typedef struct hypo {
    cm__geom g;
    int flipped;
    double dx, dy;
    double sync_z;
    float soft[TILE_T * TILE_T];
} hypo;

/* geometry.c: the fold in wk (sum, count) as a tile: mean per tile pixel,
 * less the mean, into wk->spec as its forward FFT, valid at the chips'
 * band (|fx| <= TILE_T / 2) only. */
CM__HIDDEN void cm__fold_spectrum(work *wk, int N);
/* The geometry search on a whitened residual of wd x hd px: best[0..nbest)
 * receives the nbest hypotheses with the strongest sync, strongest first
 * (sync_z = -1e30 where fewer were found); nbest is the number whose
 * payload the caller scores (H). untouched_only: step 1 alone (a triage
 * probe). CM_OK or a negative CM_E code. */
CM__HIDDEN int cm__geometry_search(struct cm_verifier *v, const float *r, int wd, int hd,
                                   hypo *best, int nbest, int untouched_only);

/* The homography h (h[8] = 1 implied) that maps the n >= 4 points p (x, y
 * pairs) closest to q in weighted least squares (weights wt, or NULL for
 * all 1): DLT on normalised coordinates. 0, or -1 when degenerate. */
CM__HIDDEN int cm__homography_fit(const double *p, const double *q, const double *wt, int n,
                                  double h[8]);

#endif
