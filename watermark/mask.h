/*
 * Perceptual mask: how much mark each pixel can hide.
 *
 * act = local RMS of the high-pass Y - box3(Y) over ~10 px, smoothed over
 * ~6 px so the amplitude changes gently along ink lines (computed at half
 * resolution, see mask.c).
 * amp = min(flat + gain * act, max) off fills; exactly `flat` inside fills
 * (pixels of an 8x8 window of one value), so a fill's mark RMS is the
 * profile's floor whatever ink line is near. Limited to the pixel's headroom:
 * symmetric where it can be; at 0 or full scale a reduced one-sided mark
 * (see mask.c) so white and black stay marked without a visible bias.
 * Cel-safe: amp = 0 on every pixel inside a fill.
 */
#ifndef CELMARK_MASK_H
#define CELMARK_MASK_H

#include "celmark/image.h"
#include "internal.h"

#include <math.h>

/* At 0 or full scale the mark is clipped to one side (embed clamps to the
 * headroom): its mean shifts by ~0.4 of the amplitude and its RMS is ~0.7
 * of it; cm__mask_row scales the amplitude there by these. Paper white
 * takes 1.5x the floor: a ~0.5 code value darkening (Delta L* ~ 0.2, far
 * below a just-noticeable difference) with a fill RMS still under 1 (0.93
 * on a page that is 99 % white), and enough energy for white pages to
 * survive H.264: at 1.4x x264 CRF 35 left z 10.3-11.3 on such pages, under
 * the blind claim's 11.3, at 1.5x 12.1-13.7 (bench/robustness, before the
 * envelope below; the codec's dead zone swallows the weaker mark whole).
 * Black takes 0.9x: a ~0.3 code value lift. A lift in the dark is what SSIM
 * weighs most (night scenes measure SSIM 0.97 at 0.9x, 0.95 at 1.4x), but
 * below 0.9x black-dominated frames lose the blind decode after JPEG q50
 * or a 512 px crop (bench/robustness). */
#define CM__EXTREME_WHITE 1.5f
#define CM__EXTREME_BLACK 0.9f
/* Both are further shaped by an envelope of mean square 1 that gathers the
 * one-sided mark into part of the page (mask.c): env^2 = 1 + c on white,
 * max(0, 1 + DEPTH c) * NORM on black, c in [-1, 1]; it peaks at
 * CM__ENVELOPE_MAX_*. */
#define CM__ENV_BLACK_DEPTH 3.0f
#define CM__ENV_BLACK_NORM 0.80461f /* 1 / mean of max(0, 1 + 3c) over a period */
#define CM__ENVELOPE_MAX_WHITE 1.41421356f /* sqrt(1 + 1) */
#define CM__ENVELOPE_MAX_BLACK sqrtf((1 + CM__ENV_BLACK_DEPTH) * CM__ENV_BLACK_NORM)

typedef struct cm__mask_params {
    float flat; /* amplitude in flat fills, code values (RMS of the mark there) */
    float gain; /* extra amplitude per code value of local activity */
    float max;  /* amplitude cap, code values */
    int cel_safe;
} cm__mask_params;

/* The mask of one frame: activity (half resolution) and the fill map,
 * from which amplitudes are produced a row at a time (no w*h float plane). */
typedef struct cm__mask {
    int w, h, wd;
    cm__mask_params mp;
    float *act;    /* ceil(w/2) * ceil(h/2) */
    uint8_t *flat; /* w * h */
    uint8_t *near; /* ceil(w/2) * ceil(h/2): close to a fill */
    float *row_half, *row_full; /* scratch rows of cm__mask_row (not thread-safe): */
    float *cap_half, *cap_full; /* the amplitude, and its cap, off fills */
    float *env_col;             /* w: column factor of the one-sided envelope */
    float *tmp;                 /* ntmp: the filters' scratch */
    size_t ntmp;
} cm__mask;

/* The mask of luma into m: m zeroed, or from an earlier cm__mask_init,
 * whose buffers are kept when the frame has the same size (a video's
 * frames one after another). On failure m is freed. */
CM__HIDDEN int cm__mask_init(cm__mask *m, const cm_plane *luma, const cm__mask_params *mp);
CM__HIDDEN void cm__mask_free(cm__mask *m);
/* Amplitudes of row y into out (w floats), given that row's luma and
 * optional headroom rows (NULL: 0..255 around luma). */
CM__HIDDEN void cm__mask_row(const cm__mask *m, int y, const float *luma_row,
                             const float *lo_row, const float *hi_row, float *out);
/* Sum of squares of n floats. */
CM__HIDDEN double cm__sum_sq(const float *v, int n);

/* Whole-plane convenience (tests): amp (w*h, row-major); mean_sq (may be
 * NULL) receives the mean of amp^2 over the frame. */
CM__HIDDEN int cm__mask_compute(const cm_plane *luma, const cm_plane *lo, const cm_plane *hi,
                                const cm__mask_params *mp, float *amp, double *mean_sq);

/* Box filter of radius r (window 2r+1) with edge clamp: reference kernel. */
CM__HIDDEN void cm__box_filter_c(const float *src, ptrdiff_t sstride, float *dst,
                                 ptrdiff_t dstride, int w, int h, int r, float *tmp);
/* The same, optimised (the reference when CELMARK_DSP=c). src may be dst;
 * tmp: w*h floats. */
CM__HIDDEN void cm__box_filter(const float *src, ptrdiff_t sstride, float *dst,
                               ptrdiff_t dstride, int w, int h, int r, float *tmp);

/* Energy of the high-pass Y - box3(Y) summed over 2x2 blocks into e
 * (ceil(w/2) x ceil(h/2)). tmp: 2*w*h floats for the reference (_c, box
 * filter based), 4*w for the fused kernel; cm__hp_energy runs the fused one
 * unless CELMARK_DSP=c. */
CM__HIDDEN void cm__hp_energy_c(const cm_plane *luma, float *e, float *tmp);
CM__HIDDEN void cm__hp_energy(const cm_plane *luma, float *e, float *tmp);

/* 1 where the pixel lies inside some 8x8 window of identical values. */
CM__HIDDEN int cm__flat_fill_map(const cm_plane *luma, uint8_t *flat);

#endif
