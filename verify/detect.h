/* Internal interfaces between the detection stages (see each file's header). */
#ifndef CELMARK_DETECT_H
#define CELMARK_DETECT_H

#include "celmark/image.h"
#include "internal.h"
#include "watermark/fft.h"

#include <libavutil/tx.h>

/* prefilter.c: whitened residual of luma, decimated by CM__DECIM (2x2
 * mean) into r ((w/2)*(h/2) floats, row-major). The mark's band stays below
 * the decimated Nyquist down to a 25 % downscale (1/6 < 1/4 cycles per
 * pixel), so sync and fold lose nothing and cost a quarter. */
#define CM__DECIM 2
CM__HIDDEN int cm__prefilter(const cm_plane *luma, float *r);
/* ... in two steps: the linear predictor residual, then the whitening of
 * a (possibly summed) residual of wd x hd decimated px, in place. */
CM__HIDDEN int cm__prefilter_raw(const cm_plane *luma, float *r, float *scratch);
CM__HIDDEN int cm__prefilter_whiten(float *r, int wd, int hd, float *scratch);

/* A geometry hypothesis: where each pixel (x, y) of the decimated residual
 * lies in the tile, in tile pixels (mod N):
 *
 *     u = (h0 x + h1 y + h2) / w,   v = (h3 x + h4 y + h5) / w,
 *     w = h6 x + h7 y + 1            (h6 = h7 = 0: an affine map)
 *
 * A similarity of period P and angle t is h = N/P R(-t) (cm__geom_similar);
 * an affine map from the lattice basis B = [b1 b2] (lag vectors, residual
 * px) is N B^-1 (cm__geom_affine); a homography adds h6, h7 (perspective).
 * The translation h2, h5 is left 0 by the sync: the origin is found on the
 * fold. */
typedef struct cm__geom {
    double h[8];      /* see above */
    double score;     /* lattice score (uncalibrated) */
} cm__geom;

CM__HIDDEN cm__geom cm__geom_similar(double N, double period, double theta);
CM__HIDDEN cm__geom cm__geom_affine(double N, const double b1[2], const double b2[2]);
/* The lattice basis of g's linear part at (x, y): the frame vectors that
 * move one tile along u (b1) and along v (b2); for reporting and cells. */
CM__HIDDEN void cm__geom_basis(const cm__geom *g, double N, double x, double y, double b1[2],
                               double b2[2]);
/* The period a geometry implies, sqrt |det B| (residual px), at (x, y). */
CM__HIDDEN double cm__geom_period(const cm__geom *g, double N, double x, double y);
/* 1 when g is projective (h6 or h7 non-zero). */
CM__HIDDEN int cm__geom_projective(const cm__geom *g);

/* sync.c: geometry hypotheses from the residual's autocorrelation: up to
 * max_sim similarities (square lattices) into out[0..), then up to
 * max_aff affine ones (two independent basis vectors) that are not
 * similarities, best first within each group; returns how many in all
 * (>= 0) or a negative CM_E code, and *nsim how many are similarities.
 * N = the tile period at scale 1 in residual pixels, Nt = in tile pixels. */
CM__HIDDEN int cm__sync_search(const float *r, int w, int h, double N, double Nt,
                               cm__geom *out, int max_sim, int max_aff, int *nsim);
/* ... with the candidates found on the map smoothed over (2 smooth + 1)^2
 * lags and refined on its 3x3 smoothing (smooth > 1: peaks smeared by a
 * perspective), and up to max_up upright affine lattices (axes within a
 * few degrees of the frame's, sync.c step 6) after the affine ones, how
 * many in *nup; smooth = 1, max_up = 0 is cm__sync_search. */
CM__HIDDEN int cm__sync_search_smooth(const float *r, int w, int h, double N, double Nt,
                                      int smooth, cm__geom *out, int max_sim, int max_aff,
                                      int max_up, int *nsim, int *nup);

/* fold.c: accumulate r into an N*N tile at geometry g (reference kernel). */
CM__HIDDEN void cm__fold_c(const float *r, int w, int h, const cm__geom *g, int N,
                           float *sum, float *count);
/* Add the rectangle (x0, y0, w, h) of r (rows of stride floats) into sum and
 * count, each pixel where it lies in the whole frame's fold (a cell of the
 * claim map, a region of a mix); sum and count are not cleared. */
CM__HIDDEN void cm__fold_rect(const float *r, int stride, int x0, int y0, int w, int h,
                              const cm__geom *g, int N, float *sum, float *count);

/* verifier.c, for evidence.c: the decision on a whitened residual of
 * wd x hd (decimated) px of a frame of fw x fh px, and what surrounds it. */
#define CM__MIN_SIDE 64         /* smaller frames cannot hold a detectable mark */
#define CM__CHROMA_WEIGHT 0.5f  /* chroma residual added to luma's (both whitened): codecs
                                   quantise chroma harder, so it is noisier than luma;
                                   bench: H.264 CRF 35 blind 7 -> 10 of 20 at 0.5
                                   (0.5 / 1 / 2: 6, 4, 3 of 12), no row lost */
struct cm_verifier;
struct cm_evidence;
struct cm_verify_result;
CM__HIDDEN int cm__detect(struct cm_verifier *v, const float *r, int wd, int hd, int fw, int fh,
                          int untouched_only, struct cm_verify_result *res);
/* cm_verifier_evidence, or with untouched_only its quick probe: the
 * geometry search's step 1 alone (the frame as stamped), a few ms where
 * the whole search of a frame without a mark takes ~100; the fpr is
 * computed the same way (the same H). */
CM__HIDDEN int cm__evidence_decide(struct cm_verifier *v, const struct cm_evidence *e,
                                   int untouched_only, struct cm_verify_result *res);
CM__HIDDEN void cm__result_init(struct cm_verify_result *res);
/* 0 when luma (and chroma, if given, of luma's size) are usable planes. */
CM__HIDDEN int cm__check_planes(const cm_plane *luma, const cm_plane *chroma);
CM__HIDDEN cm_ctx *cm__verifier_ctx(const struct cm_verifier *v);

/* evidence.c: one frame's share of the evidence, made apart from any sum
 * so that frames can be whitened on several threads and then summed in
 * order (cm_evidence_add is the two steps, on one thread). The buffers are
 * kept from frame to frame; zero-initialise before the first use. */
typedef struct cm__residual {
    int w, h;      /* the frame's size */
    int usable;    /* large enough to carry a mark */
    int chroma;    /* craw holds chroma's */
    float *raw;    /* luma residual, decimated, not whitened */
    float *craw;   /* chroma's */
    float *white;  /* whitened luma + CM__CHROMA_WEIGHT x whitened chroma */
    float *tmp;
    float *scratch; /* the prefilter's, 2 cap floats: kept from frame to frame */
    size_t cap;    /* floats each buffer holds */
} cm__residual;
/* Make fr from a frame's planes (chroma may be NULL): CM_OK, CM_E_INVAL for
 * unusable planes, CM_E_NOMEM. Thread-safe. */
CM__HIDDEN int cm__residual_make(cm__residual *fr, const cm_plane *luma, const cm_plane *chroma);
/* Add fr to e: CM_OK, CM_E_INVAL when e holds frames of another size,
 * CM_E_NOMEM. */
CM__HIDDEN int cm__evidence_add_residual(struct cm_evidence *e, const cm__residual *fr);
CM__HIDDEN void cm__residual_free(cm__residual *fr);

#endif
