/*
 * Detection prefilter: whiten the host so what is left is mostly the mark.
 * Works on luma decimated by CM__DECIM (2x2 mean): the mark's band stays
 * below the decimated Nyquist down to a 25 % downscale, and everything after
 * this step costs a quarter. Radii below are in decimated pixels.
 *
 *   r = Y - box7(Y)                  cel art is flat: the residual of a flat
 *                                    fill is the mark itself (box7 here is
 *                                    a 14 px predictor on the frame)
 *   r /= max(std13(r), 1.5)          edges and texture are loud: normalise
 *   r = clip(r, -2.5, 2.5)           ... and cap what is still loud
 *   r -= mean of r at (x mod 8, y mod 8)
 *                                    removes JPEG / H.264 block lattices
 *                                    (16 px on the frame; the mark has no
 *                                    energy there: 384 px tile, band <= 16
 *                                    cycles per tile)
 *
 * The first line is linear (cm__prefilter_raw), the rest is not
 * (cm__prefilter_whiten). Evidence over many frames sums the raw residuals
 * and whitens the sum: whitening each frame first would weight every pixel
 * by that frame's noise, so a noisy clip's flat fills would count no more
 * than its edges, and the host's own interference at edges, which is the
 * same on every held frame, would never average out.
 */
#include "detect.h"
#include "watermark/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRED_R 3          /* box 7 predictor radius */
#define NORM_R 6          /* box 13 normalisation radius */
#define NORM_FLOOR 1.5f   /* code values: below this the residual is the mark */
#define CLIP 2.5f         /* in units of local deviation */
#define GRID (16 / CM__DECIM) /* codec block lattice period */

/* scratch: 2 n floats of the caller's, or NULL for ones of our own. */
static float *scratch_or_own(float *scratch, size_t n, float **own)
{
    *own = scratch ? NULL : cm__malloc_array(2 * (n ? n : 1), sizeof(float));
    return scratch ? scratch : *own;
}

int cm__prefilter_raw(const cm_plane *luma, float *r, float *scratch)
{
    int wd = luma->width / CM__DECIM, hd = luma->height / CM__DECIM;
    size_t n = (size_t)wd * hd;
    float *own, *yd = scratch_or_own(scratch, n, &own);
    if (!yd)
        return CM_E_NOMEM;
    float *tmp = yd + n;
    const float inv = 1.0f / (CM__DECIM * CM__DECIM);
    for (int y = 0; y < hd; y++) {
        float *o = yd + (size_t)y * wd;
        for (int x = 0; x < wd; x++) {
            float v = 0;
            for (int j = 0; j < CM__DECIM; j++) {
                const float *s = luma->data + (y * CM__DECIM + j) * luma->stride + x * CM__DECIM;
                for (int i = 0; i < CM__DECIM; i++)
                    v += s[i];
            }
            o[x] = v * inv;
        }
    }
    cm__box_filter(yd, wd, r, wd, wd, hd, PRED_R, tmp);
    for (size_t i = 0; i < n; i++)
        r[i] = yd[i] - r[i];
    free(own);
    return CM_OK;
}

int cm__prefilter_whiten(float *r, int wd, int hd, float *scratch)
{
    size_t n = (size_t)wd * hd;
    float *own, *tmp = scratch_or_own(scratch, n, &own);
    if (!tmp)
        return CM_E_NOMEM;
    float *var = tmp + n;
    for (size_t i = 0; i < n; i++)
        var[i] = r[i] * r[i];
    cm__box_filter(var, wd, var, wd, wd, hd, NORM_R, tmp);
    double gsum[GRID * GRID] = {0};
    int gcount[GRID * GRID] = {0};
    for (int y = 0; y < hd; y++)
        for (int x = 0; x < wd; x++) {
            size_t i = (size_t)y * wd + x;
            /* matched weighting: the mark is ~constant, the host's noise has
             * variance var, so weight by 1 / var (floored) */
            float vv = var[i] > NORM_FLOOR * NORM_FLOOR ? var[i] : NORM_FLOOR * NORM_FLOOR;
            float v = r[i] * NORM_FLOOR / vv;
            v = v > CLIP ? CLIP : (v < -CLIP ? -CLIP : v);
            r[i] = v;
            int g = (y % GRID) * GRID + x % GRID;
            gsum[g] += v;
            gcount[g]++;
        }
    for (int g = 0; g < GRID * GRID; g++)
        if (gcount[g])
            gsum[g] /= gcount[g];
    for (int y = 0; y < hd; y++)
        for (int x = 0; x < wd; x++)
            r[(size_t)y * wd + x] -= (float)gsum[(y % GRID) * GRID + x % GRID];
    free(own);
    return CM_OK;
}

int cm__prefilter(const cm_plane *luma, float *r)
{
    int ret = cm__prefilter_raw(luma, r, NULL);
    return ret ? ret
               : cm__prefilter_whiten(r, luma->width / CM__DECIM, luma->height / CM__DECIM,
                                      NULL);
}
