/*
 * The geometry search: which folds are tried, and how the best is chosen.
 *
 *   1. the untouched geometry (scale 1, no rotation): a frame at its stamped
 *      size is the common case; when its sync is strong (EARLY_SYNC_Z) the
 *      search stops there;
 *   2. the lattice hypotheses of sync.c: up to MAX_GEOMS similarities
 *      (period and angle of a square lattice) and up to MAX_AFFINE affine
 *      lattices (two independent basis vectors: a squeeze along one axis, a
 *      shear) that are not similarities;
 *
 * Every fold gives origin and mirror candidates (evaluate_fold: the
 * ORIGIN_PEAKS highest phase correlation peaks per mirror), ranked by the
 * sync chips alone. The payload chips are scored (verifier.c) only for the
 * best nbest (PAYLOAD_HYPS = 2) of them, so the fpr counts H = nbest
 * however many folds were tried: the sync chips are disjoint from the
 * payload chips, and under "no mark" the payload chips' keyed signs are
 * fair coins whatever was selected on the others (test_calibration,
 * bench/falsepos). How many folds at most: 1 (untouched) + MAX_GEOMS +
 * MAX_AFFINE, each with 2 mirrors x ORIGIN_PEAKS origins; the affine ones
 * only when no square lattice reached EARLY_SYNC_Z.
 */
#include "search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GEOMS 3             /* similarity lattice hypotheses folded */
#define MAX_AFFINE 2            /* affine lattice hypotheses folded */
#define EARLY_SYNC_Z 9.0        /* sync score at the untouched geometry that
                                   skips the lattice search: unmarked frames
                                   peak at 4-5.5 over all origins and mirrors */
#define ORIGIN_PEAKS 4          /* origin candidates per fold and mirror, best
                                   sync kept: at CRF 35 the phase correlation's
                                   highest peak is not always the origin whose
                                   sync chips correlate best (bench: candidates
                                   18 -> 19 of 20, frame 17; 8 peaks: the same) */

/* Normalised correlation of the demodulated sync chips with their values. */
static double sync_z(const cm__layout *l, const float *soft)
{
    double s = 0, ss = 0;
    for (int i = 0; i < l->nsync; i++) {
        float x = soft[l->sync_idx[i]];
        s += x * l->sync_val[i];
        ss += (double)x * x;
    }
    return ss > 0 ? s / sqrt(ss) : 0;
}

/* Keep best[0..nbest) sorted by sync_z, h inserted if it ranks. */
static void insert_best(hypo *best, int nbest, const hypo *h)
{
    for (int k = 0; k < nbest; k++) {
        if (h->sync_z > best[k].sync_z) {
            memmove(&best[k + 1], &best[k], sizeof(hypo) * (size_t)(nbest - 1 - k));
            best[k] = *h;
            return;
        }
    }
}

/* The n highest local maxima (over the 8 cyclic neighbours) of the real
 * part of an M x M surface, highest first; returns how many were found. */
static int top_peaks(const AVComplexFloat *c, int M, size_t *peaks, int n)
{
    int found = 0;
    for (int y = 0; y < M; y++) {
        const AVComplexFloat *up = c + (size_t)((y + M - 1) % M) * M;
        const AVComplexFloat *row = c + (size_t)y * M;
        const AVComplexFloat *dn = c + (size_t)((y + 1) % M) * M;
        for (int x = 0; x < M; x++) {
            float v = row[x].re;
            if (found == n && v <= c[peaks[n - 1]].re)
                continue;
            int xl = (x + M - 1) % M, xr = (x + 1) % M;
            if (v < row[xl].re || v < row[xr].re || v < up[xl].re || v < up[x].re ||
                v < up[xr].re || v < dn[xl].re || v < dn[x].re || v < dn[xr].re)
                continue;
            int k = found < n ? found++ : n - 1;
            while (k > 0 && c[peaks[k - 1]].re < v) {
                peaks[k] = peaks[k - 1];
                k--;
            }
            peaks[k] = (size_t)y * M + x;
        }
    }
    return found;
}

/* Sub-sample position of a peak: a parabola through its neighbours on each
 * axis, in surface samples. */
static void refine_peak(const AVComplexFloat *c, int M, size_t arg, double *dx, double *dy)
{
    int px = (int)(arg % M), py = (int)(arg / M);
    double c0 = c[arg].re;
    double xl = c[(size_t)py * M + (px + M - 1) % M].re;
    double xr = c[(size_t)py * M + (px + 1) % M].re;
    double yu = c[(size_t)((py + M - 1) % M) * M + px].re;
    double yd = c[(size_t)((py + 1) % M) * M + px].re;
    double den_x = xl - 2 * c0 + xr, den_y = yu - 2 * c0 + yd;
    *dx = px + (den_x < 0 ? 0.5 * (xl - xr) / den_x : 0);
    *dy = py + (den_y < 0 ? 0.5 * (yu - yd) / den_y : 0);
}

/* Find origin and mirror for one fold; update best list (sorted by sync_z).
 * The sync template only has energy in the rendering's band (|f| < T/2
 * cycles per tile), so the phase correlation surface is band-limited too:
 * it is computed on an M x M grid (M = N / CORR_DECIM) from the band bins
 * alone, and the peak refined by a parabola through its neighbours. */
/* The fold in wk (sum, count) as a tile: mean per tile pixel, less the
 * mean, into wk->spec as its forward FFT. */
void cm__fold_spectrum(work *wk, int N)
{
    size_t n = (size_t)N * N;
    double mean = 0, cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (wk->count[i] > 0) {
            wk->sum[i] /= wk->count[i];
            mean += wk->sum[i];
            cnt++;
        }
    mean = cnt ? mean / cnt : 0;
    for (size_t i = 0; i < n; i++) {
        wk->spec[i].re = wk->count[i] > 0 ? (float)(wk->sum[i] - mean) : 0;
        wk->spec[i].im = 0;
    }
    cm__fft2_run(&wk->fft, wk->spec, 0);
}

/* The phase correlation of the fold's spectrum (wk->spec), mirrored or
 * not, with the sync template, into wk->corr (M x M, real part). */
static void corr_surface(cm_verifier *v, work *wk, int flip)
{
    int N = v->N, T = TILE_T, M = N / CORR_DECIM;
    memset(wk->corr, 0, sizeof(AVComplexFloat) * (size_t)M * M);
    for (int ky = 0; ky < T; ky++)
        for (int kx = 0; kx < T; kx++) {
            if (!cm__render_kept(kx, ky, T))
                continue;
            int fx = cm__fft_freq(kx, T), fy = cm__fft_freq(ky, T);
            /* the mirrored fold has spectrum F(-kx, ky) */
            AVComplexFloat f = wk->spec[(size_t)cm__fft_bin(fy, N) * N +
                                        cm__fft_bin(flip ? -fx : fx, N)];
            AVComplexFloat t = v->sync_spec[(size_t)cm__fft_bin(fy, N) * N + cm__fft_bin(fx, N)];
            double mag = sqrt((double)f.re * f.re + (double)f.im * f.im) + 1e-9;
            /* F * conj(T) / |F|: phase correlation weighted by the template */
            AVComplexFloat *c = &wk->corr[(size_t)cm__fft_bin(fy, M) * M + cm__fft_bin(fx, M)];
            c->re = (float)((f.re * t.re + f.im * t.im) / mag);
            c->im = (float)((f.im * t.re - f.re * t.im) / mag);
        }
    cm__fft2_run(&wk->corr_fft, wk->corr, 1);
}

/* Origins of the fold in wk for one mirror: its ORIGIN_PEAKS highest
 * correlation peaks, each demodulated, inserted into best by sync. */
static void evaluate_flip(cm_verifier *v, work *wk, const cm__geom *g, int flip, hypo *best,
                          int nbest)
{
    int M = v->N / CORR_DECIM;
    corr_surface(v, wk, flip);
    size_t peaks[ORIGIN_PEAKS];
    int np = top_peaks(wk->corr, M, peaks, ORIGIN_PEAKS);
    for (int p = 0; p < np; p++) {
        hypo h;
        h.g = *g;
        h.flipped = flip;
        refine_peak(wk->corr, M, peaks[p], &h.dx, &h.dy);
        h.dx *= CORR_DECIM;
        h.dy *= CORR_DECIM;
        cm__render_adjoint(&v->render, wk->spec, flip, h.dx, h.dy, h.soft);
        h.sync_z = sync_z(v->layout, h.soft);
        insert_best(best, nbest, &h);
    }
}

/* Find origin and mirror for the fold in wk made at g; update best. */
static void evaluate_fold(cm_verifier *v, work *wk, const cm__geom *g, hypo *best, int nbest)
{
    cm__fold_spectrum(wk, v->N);
    for (int flip = 0; flip < 2; flip++)
        evaluate_flip(v, wk, g, flip, best, nbest);
}

/* ---- the search ------------------------------------------------------------ */

int cm__geometry_search(cm_verifier *v, const float *r, int wd, int hd, hypo *best, int nbest)
{
    int N = v->N;
    work *wk = &v->wk;
    for (int k = 0; k < nbest; k++)
        best[k].sync_z = -1e30;

    /* The untouched geometry first: a full frame at its stamped size is the
     * common case, and a strong sync there makes the lattice search moot. */
    double Nd = (double)N / CM__DECIM; /* tile period at scale 1, residual px */
    cm__geom identity = cm__geom_similar(N, Nd, 0);
    cm__fold_c(r, wd, hd, &identity, N, wk->sum, wk->count);
    evaluate_fold(v, wk, &identity, best, nbest);
    if (best[0].sync_z >= EARLY_SYNC_Z)
        return CM_OK;

    cm__geom geoms[MAX_GEOMS + MAX_AFFINE];
    int nsim;
    int ng = cm__sync_search(r, wd, hd, Nd, N, geoms, MAX_GEOMS, MAX_AFFINE, &nsim);
    if (ng < 0)
        return ng;
    for (int k = 0; k < ng; k++) {
        if (k == nsim && best[0].sync_z >= EARLY_SYNC_Z)
            break; /* a square lattice registers it: no affine fold */
        if (k < nsim && fabs(cm__geom_period(&geoms[k], N, 0, 0) / Nd - 1) < 0.002 &&
            fabs(geoms[k].h[1]) < 0.002 * geoms[k].h[0])
            continue; /* the identity, done */
        cm__fold_c(r, wd, hd, &geoms[k], N, wk->sum, wk->count);
        evaluate_fold(v, wk, &geoms[k], best, nbest);
    }

    return CM_OK;
}
