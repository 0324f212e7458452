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
 *   3. unless one of those reached EARLY_SYNC_Z, perspective (a
 *      photographed screen), whose smooth change of scale and shear across
 *      the frame smears a single lattice:
 *      a. starts: the best fold so far, and the lattices of the frame's
 *         central 3/4 x 3/4 (PERSP_CENTRE_FRAC: PERSP_CENTRE_SIM square,
 *         PERSP_CENTRE_AFF affine and PERSP_CENTRE_UP upright ones, found
 *         on a lag map smoothed over 7 x 7 lags), ranked by their sync
 *         on the central half of the frame folded alone; the fit runs from
 *         the best PERSP_STARTS of those that reach PERSP_GATE_Z, in turn,
 *         until one registers the frame (EARLY_SYNC_Z);
 *      b. the frame is cut into 3 x 3 overlapping windows of half its
 *         size; each is folded alone at the current geometry and its origin
 *         found by the same phase correlation (mirror fixed). Where the map
 *         is off, the window's origin moves: a window at p whose fold is
 *         the tile shifted by d (against the reference shift) lies at
 *         g(p) - d in the tile. A homography is fitted to those points
 *         (weighted least squares, DLT on normalised coordinates; windows
 *         with a sync under PERSP_WINDOW_Z left out, the worst dropped
 *         while one misses the fit by more than PERSP_TOL, at least
 *         PERSP_MIN_WINDOWS kept, and the fit refused when it changes the
 *         scale by more than PERSP_MAX_W at a corner; when refused, an
 *         affine map from at least PERSP_MIN_AFFINE windows) and the whole
 *         frame folded with it; up to PERSP_ITERS rounds, each from the last
 *         fit, while the whole frame's sync grows (by PERSP_GAIN or more);
 *      c. when a start reached the gate (the mark is likely there) but no
 *         fit registered the frame: starts once more, the lattices of the
 *         central PERSP_SECOND_FRAC (0.6) alone, and the fit from the best
 *         of them if it reaches the gate. A keystone biases the lag map of
 *         a window, and a window of another size gives starts biased
 *         another way (bench: screen_photo frame 7, whose first fit
 *         reached a sync of 6.1 and went no further). An unmarked frame
 *         rarely passes the gate, so rarely pays for it;
 *      d. when still no fit registered the frame: a grid of axis-aligned
 *         maps around the upright lattices of step a (scale along x within
 *         +/- 2 PERSP_GRID_STEP, along y the same steps times wd / hd,
 *         no shear; up to 3 x 25, those within half a step of another
 *         dropped), each ranked by a cheap fold of the central half
 *         (rank_fold: 2 x 2 box means into 4 x 4 px tile cells), and the
 *         fit from the best of the best PERSP_GRID_KEEP folded as in a. A
 *         camera held about level leaves the tile's axes near the frame's
 *         at the centre, but a strong keystone biases the lag map's
 *         lattice by 4-9 % in scale and invents a shear; no start then
 *         reaches the gate though the mark is there (bench: screen_photo
 *         frames 4 and 17, sync 4.1 at their best start, 9 at the true
 *         centre map, z 22 with the attack's own homography undone).
 *
 * Every fold gives origin and mirror candidates (evaluate_fold: the
 * ORIGIN_PEAKS highest phase correlation peaks per mirror), ranked by the
 * sync chips alone. The payload chips are scored (verifier.c) only for the
 * best nbest (PAYLOAD_HYPS = 2) of them, so the fpr counts H = nbest
 * however many folds were tried: the sync chips are disjoint from the
 * payload chips, and under "no mark" the payload chips' keyed signs are
 * fair coins whatever was selected on the others (test_calibration,
 * bench/falsepos). How many folds at most: 1 (untouched) + MAX_GEOMS +
 * MAX_AFFINE + (PERSP_STARTS + 2) x PERSP_ITERS ((3 + 2) x 4) = 26
 * whole-frame folds, 1 + 2 x (PERSP_CENTRE_SIM + PERSP_CENTRE_AFF +
 * PERSP_CENTRE_UP) + PERSP_GRID_KEEP = 15 folds of the central half, 75
 * cheap ones (step d) and 9 x 20 = 180 window folds (each a quarter of
 * the frame; the later starts, and steps c and d, only run when the first
 * fail), each with 2 mirrors x ORIGIN_PEAKS origins (the windows and the
 * fits: the start's mirror only). H stays 2 whatever ran.
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
#define PERSP_PEAKS 1           /* origins tried per start and window fold */
#define PERSP_CENTRE_SIM 2      /* its start: the best fold so far, or one of
                                   the centre window's own square and */
#define PERSP_CENTRE_AFF 1      /* affine lattices */
#define PERSP_CENTRE_UP 3       /* and upright lattices (sync.c step 6; bench:
                                   persp6 17 -> 19, screen_photo 14 -> 16 of
                                   20; 2 and 4 found the same) */
#define PERSP_SMOOTH 3          /* its lag map smoothed over 7 x 7 lags */
#define PERSP_GATE_Z 5.0        /* centre window's sync that starts the fit */
#define PERSP_WINDOW_Z 3.0      /* a window's sync that counts in the fit */
#define PERSP_MIN_WINDOWS 5     /* of 9: 10 equations for 8 unknowns */
#define PERSP_MIN_AFFINE 4      /* of 9 for the affine fit: 8 equations for 6
                                   unknowns (bench: screen_photo +1) */
#define PERSP_TOL 12.0          /* tile px (one chip): a window's largest miss */
#define PERSP_GAIN 0.3          /* a round that adds less sync is the last */
#define PERSP_MAX_W 0.3         /* |w - 1| at the frame's corners, at most */
#define PERSP_STARTS 3          /* starts the fit is tried from, at most
                                   (bench: screen_photo +1; 4: the same) */
#define PERSP_ITERS 4           /* fit rounds, at most */
#define PERSP_CENTRE_FRAC 0.75  /* side of the starts' lag map window, of the
                                   frame's */
#define PERSP_SECOND_FRAC 0.6   /* and of the second starts' (step 3c; bench:
                                   screen_photo blind 17 -> 18 of 20) */
#define PERSP_GRID 2            /* axis-aligned starts (step 3d): scale steps
                                   each way per axis around each upright
                                   lattice */
#define PERSP_GRID_STEP 0.025   /* their step along x (2.5 %: half a chip at
                                   the central half's edge of a full frame) */
#define PERSP_GRID_KEEP 2       /* of them, ranked by the cheap fold, folded
                                   as starts */

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

/* A fold (sum, count; N x N) as a tile: mean per tile pixel, less the
 * mean, into spec as its forward FFT at the chips' band. The sync template
 * only has energy in the rendering's band (|f| < T/2 cycles per tile), so
 * that is all the phase correlation (on an M x M grid, M = N / CORR_DECIM,
 * its peak refined by a parabola through its neighbours) and the
 * demodulation read. */
static void fold_spectrum(float *sum, const float *count, AVComplexFloat *spec, cm__fft2 *fft,
                          int N)
{
    size_t n = (size_t)N * N;
    double mean = 0, cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (count[i] > 0) {
            sum[i] /= count[i];
            mean += sum[i];
            cnt++;
        }
    mean = cnt ? mean / cnt : 0;
    for (size_t i = 0; i < n; i++) {
        spec[i].re = count[i] > 0 ? (float)(sum[i] - mean) : 0;
        spec[i].im = 0;
    }
    /* the sync and payload chips' band (|f| < T/2) is all that is read */
    cm__fft2_forward_band(fft, spec, TILE_T / 2);
}

void cm__fold_spectrum(work *wk, int N)
{
    fold_spectrum(wk->sum, wk->count, wk->spec, &wk->fft, N);
}

/* The phase correlation of the fold's spectrum (wk->spec), mirrored or
 * not, with the sync template, into corr (M x M, real part; fft its
 * transform). */
static void corr_surface(cm_verifier *v, work *wk, int flip, AVComplexFloat *corr, cm__fft2 *fft,
                         int M)
{
    int N = v->N, T = TILE_T;
    memset(corr, 0, sizeof(AVComplexFloat) * (size_t)M * M);
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
            AVComplexFloat *c = &corr[(size_t)cm__fft_bin(fy, M) * M + cm__fft_bin(fx, M)];
            c->re = (float)((f.re * t.re + f.im * t.im) / mag);
            c->im = (float)((f.im * t.re - f.re * t.im) / mag);
        }
    cm__fft2_inverse_band(fft, corr, T / 2);
}

/* Origins of the fold in wk for one mirror, on the M x M correlation
 * surface corr (fft its transform): its npeaks highest peaks, each
 * demodulated, inserted into best by sync. */
static void evaluate_flip_on(cm_verifier *v, work *wk, const cm__geom *g, int flip, int npeaks,
                             hypo *best, int nbest, AVComplexFloat *corr, cm__fft2 *fft, int M)
{
    corr_surface(v, wk, flip, corr, fft, M);
    size_t peaks[ORIGIN_PEAKS];
    int np = top_peaks(corr, M, peaks, npeaks);
    for (int p = 0; p < np; p++) {
        hypo h;
        h.g = *g;
        h.flipped = flip;
        refine_peak(corr, M, peaks[p], &h.dx, &h.dy);
        h.dx *= (double)v->N / M;
        h.dy *= (double)v->N / M;
        cm__render_adjoint(&v->render, wk->spec, flip, h.dx, h.dy, h.soft);
        h.sync_z = sync_z(v->layout, h.soft);
        insert_best(best, nbest, &h);
    }
}

/* ... on the M = N / CORR_DECIM surface, ORIGIN_PEAKS at most. */
static void evaluate_flip(cm_verifier *v, work *wk, const cm__geom *g, int flip, int npeaks,
                          hypo *best, int nbest)
{
    int M = v->N / CORR_DECIM;
    evaluate_flip_on(v, wk, g, flip, npeaks, best, nbest, wk->corr, &wk->corr_fft, M);
}

/* Find origin and mirror for the fold in wk made at g; update best. */
static void evaluate_fold(cm_verifier *v, work *wk, const cm__geom *g, int npeaks, hypo *best,
                          int nbest)
{
    cm__fold_spectrum(wk, v->N);
    for (int flip = 0; flip < 2; flip++)
        evaluate_flip(v, wk, g, flip, npeaks, best, nbest);
}

/* The central half of a wd x hd residual, 2 x 2 box means (its
 * (wd / 4) x (hd / 4) pixels at residual (wd / 4 + 2 x + 0.5, hd / 4 + 2 y +
 * 0.5)) into q: what rank_fold folds. */
static void rank_residual(const float *r, int wd, int hd, float *q)
{
    int qw = wd / 4, qh = hd / 4, x0 = wd / 4, y0 = hd / 4;
    for (int y = 0; y < qh; y++) {
        const float *a = r + (size_t)(y0 + 2 * y) * wd + x0, *b = a + wd;
        for (int x = 0; x < qw; x++)
            q[(size_t)y * qw + x] = 0.25f * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]);
    }
}

/* The central half of the residual folded at g, cheaply, into best (by
 * sync): its 2 x 2 box means (rank_residual, q) folded into tile cells of
 * RANK_DECIM px, the fold's spectrum and correlation surface (N /
 * RANK_DECIM and N / RANK_DECIM / 2 a side) a sixteenth and a
 * sixty-fourth of the work, its band's bins copied where the demodulation
 * reads them. Each box and cell passes the band (< T/2 cycles per tile)
 * at 0.8 or more down to half scale. Only ranks the perspective grid (step
 * 3d): the best are folded again as every start is. */
static void rank_fold(cm_verifier *v, const float *q, int wd, int hd, const cm__geom *g,
                      hypo *best, int nbest)
{
    work *wk = &v->wk;
    int N = v->N, Q = N / RANK_DECIM, T = TILE_T;
    size_t qq = (size_t)Q * Q;
    /* g at residual (x0 + 2 x + 0.5, y0 + 2 y + 0.5), in cells */
    double cx = wd / 4 + 0.5, cy = hd / 4 + 0.5;
    const double *h = g->h;
    double c = h[6] * cx + h[7] * cy + 1;
    cm__geom gq = {{2 * h[0], 2 * h[1], h[0] * cx + h[1] * cy + h[2], 2 * h[3], 2 * h[4],
                    h[3] * cx + h[4] * cy + h[5], 2 * h[6], 2 * h[7]},
                   0};
    for (int i = 0; i < 8; i++)
        gq.h[i] /= c * (i < 6 ? RANK_DECIM : 1);
    memset(wk->qsum, 0, sizeof(float) * qq);
    memset(wk->qcount, 0, sizeof(float) * qq);
    cm__fold_rect(q, wd / 4, 0, 0, wd / 4, hd / 4, &gq, Q, wk->qsum, wk->qcount);
    fold_spectrum(wk->qsum, wk->qcount, wk->qspec, &wk->qfft, Q);
    /* |f| <= T / 2: the mirrored fold reads bin -f */
    for (int fy = -T / 2; fy <= T / 2; fy++)
        for (int fx = -T / 2; fx <= T / 2; fx++)
            wk->spec[(size_t)cm__fft_bin(fy, N) * N + cm__fft_bin(fx, N)] =
                wk->qspec[(size_t)cm__fft_bin(fy, Q) * Q + cm__fft_bin(fx, Q)];
    for (int flip = 0; flip < 2; flip++)
        evaluate_flip_on(v, wk, g, flip, PERSP_PEAKS, best, nbest, wk->qcorr, &wk->qcorr_fft,
                         Q / 2);
}

/* ---- perspective ---------------------------------------------------------- */

/* Solve the n x n system a x = b (a row-major, n <= 8) in place by Gaussian
 * elimination with partial pivoting; -1 when it is singular. */
static int solve(double *a, double *b, int n)
{
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
                piv = r;
        if (fabs(a[piv * n + c]) < 1e-12)
            return -1;
        if (piv != c) {
            for (int k = 0; k < n; k++) {
                double t = a[c * n + k];
                a[c * n + k] = a[piv * n + k];
                a[piv * n + k] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (int k = c; k < n; k++)
                a[r * n + k] -= f * a[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++)
            s -= a[r * n + k] * b[k];
        b[r] = s / a[r * n + r];
    }
    return 0;
}

int cm__homography_fit(const double *p, const double *q, const double *wt, int n, double h[8])
{
    if (n < 4)
        return -1;
    /* normalise both point sets: centroid at 0, mean distance sqrt 2 */
    double m[2][2] = {{0, 0}, {0, 0}}, sc[2] = {0, 0}, wsum = 0;
    const double *pts[2] = {p, q};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < n; i++)
            m[s][0] += pts[s][2 * i], m[s][1] += pts[s][2 * i + 1];
        m[s][0] /= n, m[s][1] /= n;
        for (int i = 0; i < n; i++)
            sc[s] += hypot(pts[s][2 * i] - m[s][0], pts[s][2 * i + 1] - m[s][1]);
        sc[s] = sc[s] > 0 ? M_SQRT2 * n / sc[s] : 1;
    }
    double ata[64] = {0}, atb[8] = {0};
    for (int i = 0; i < n; i++) {
        double x = (p[2 * i] - m[0][0]) * sc[0], y = (p[2 * i + 1] - m[0][1]) * sc[0];
        double u = (q[2 * i] - m[1][0]) * sc[1], v = (q[2 * i + 1] - m[1][1]) * sc[1];
        double r0[8] = {x, y, 1, 0, 0, 0, -u * x, -u * y};
        double r1[8] = {0, 0, 0, x, y, 1, -v * x, -v * y};
        double w = wt ? wt[i] : 1;
        wsum += w;
        for (int a = 0; a < 8; a++) {
            for (int b = 0; b < 8; b++)
                ata[a * 8 + b] += w * (r0[a] * r0[b] + r1[a] * r1[b]);
            atb[a] += w * (r0[a] * u + r1[a] * v);
        }
    }
    if (!(wsum > 0) || solve(ata, atb, 8))
        return -1;
    /* H = Tq^-1 Hn Tp, Tp x = sc0 (x - m0), Tq^-1 u = u / sc1 + m1 */
    double hn[9] = {atb[0], atb[1], atb[2], atb[3], atb[4], atb[5], atb[6], atb[7], 1};
    double tp[9] = {sc[0], 0, -sc[0] * m[0][0], 0, sc[0], -sc[0] * m[0][1], 0, 0, 1};
    double tq[9] = {1 / sc[1], 0, m[1][0], 0, 1 / sc[1], m[1][1], 0, 0, 1};
    double t1[9], t2[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            t1[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                t1[i * 3 + j] += hn[i * 3 + k] * tp[k * 3 + j];
        }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            t2[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                t2[i * 3 + j] += tq[i * 3 + k] * t1[k * 3 + j];
        }
    if (fabs(t2[8]) < 1e-15)
        return -1;
    for (int i = 0; i < 8; i++)
        h[i] = t2[i] / t2[8];
    return 0;
}

/* Where g maps residual point (x, y) in the tile (not reduced mod N). */
static void geom_apply(const cm__geom *g, double x, double y, double *u, double *v)
{
    const double *h = g->h;
    double w = h[6] * x + h[7] * y + 1;
    *u = (h[0] * x + h[1] * y + h[2]) / w;
    *v = (h[3] * x + h[4] * y + h[5]) / w;
}

/* d reduced to [-N/2, N/2). */
static double wrap(double d, int N)
{
    return d - N * floor(d / N + 0.5);
}

/* Where the fitted homography g puts p_i, against q_i: the largest miss
 * (tile px) and which point it is. */
static double worst_miss(const double *g, const double *p, const double *q, int n, int *at)
{
    double worst = -1;
    for (int i = 0; i < n; i++) {
        double x = p[2 * i], y = p[2 * i + 1], w = g[6] * x + g[7] * y + 1;
        double du = (g[0] * x + g[1] * y + g[2]) / w - q[2 * i];
        double dv = (g[3] * x + g[4] * y + g[5]) / w - q[2 * i + 1];
        double d = hypot(du, dv);
        if (d > worst)
            worst = d, *at = i;
    }
    return worst;
}

/* The affine map h (h6 = h7 = 0) that maps the n >= 3 points p closest to
 * q in weighted least squares: 0, or -1 when degenerate. */
static int affine_fit(const double *p, const double *q, const double *wt, int n, double h[8])
{
    if (n < 3)
        return -1;
    double mx = 0, my = 0, ws = 0;
    for (int i = 0; i < n; i++)
        mx += wt[i] * p[2 * i], my += wt[i] * p[2 * i + 1], ws += wt[i];
    if (!(ws > 0))
        return -1;
    mx /= ws, my /= ws; /* centred: a better conditioned system */
    double a[9] = {0}, bu[3] = {0}, bv[3] = {0};
    for (int i = 0; i < n; i++) {
        double r[3] = {p[2 * i] - mx, p[2 * i + 1] - my, 1};
        for (int j = 0; j < 3; j++) {
            for (int k = 0; k < 3; k++)
                a[j * 3 + k] += wt[i] * r[j] * r[k];
            bu[j] += wt[i] * r[j] * q[2 * i];
            bv[j] += wt[i] * r[j] * q[2 * i + 1];
        }
    }
    double a2[9];
    memcpy(a2, a, sizeof(a));
    if (solve(a, bu, 3) || solve(a2, bv, 3))
        return -1;
    h[0] = bu[0], h[1] = bu[1], h[2] = bu[2] - bu[0] * mx - bu[1] * my;
    h[3] = bv[0], h[4] = bv[1], h[5] = bv[2] - bv[0] * mx - bv[1] * my;
    h[6] = h[7] = 0;
    return 0;
}

/* Fit a homography (params 8) or an affine map (6) to the window points:
 * while the worst window misses by more than PERSP_TOL, drop it (a window
 * without the mark gives a random origin) and fit again, keeping at least
 * two equations more than unknowns; a homography whose scale changes by
 * more than PERSP_MAX_W over the frame is refused (a fit through noise, or
 * a fold of the frame over itself). 0 and the map in *out, or -1. */
static int fit_windows(const double *p0, const double *q0, const double *wt0, int n, int params,
                       int wd, int hd, cm__geom *out)
{
    double p[18], q[18], wt[9];
    memcpy(p, p0, sizeof(double) * 2 * (size_t)n);
    memcpy(q, q0, sizeof(double) * 2 * (size_t)n);
    memcpy(wt, wt0, sizeof(double) * (size_t)n);
    int min = params == 8 ? PERSP_MIN_WINDOWS : PERSP_MIN_AFFINE;
    cm__geom g = {{0}, 0};
    for (;;) {
        if (n < min)
            return -1;
        if (params == 8 ? cm__homography_fit(p, q, wt, n, g.h) : affine_fit(p, q, wt, n, g.h))
            return -1;
        int at = 0;
        if (worst_miss(g.h, p, q, n, &at) <= PERSP_TOL)
            break;
        n--;
        memmove(p + 2 * at, p + 2 * at + 2, sizeof(double) * 2 * (size_t)(n - at));
        memmove(q + 2 * at, q + 2 * at + 2, sizeof(double) * 2 * (size_t)(n - at));
        memmove(wt + at, wt + at + 1, sizeof(double) * (size_t)(n - at));
    }
    static const double corner[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
    for (int c = 0; c < 4; c++) {
        double x = corner[c][0] * wd, y = corner[c][1] * hd;
        double w = g.h[6] * x + g.h[7] * y + 1;
        if (!(fabs(w - 1) <= PERSP_MAX_W))
            return -1;
    }
    *out = g;
    return 0;
}

/* One round of the perspective fit (file comment, step 4) from hypothesis
 * h: the fitted geometry into *out; 0, or -1 when too few windows hold the
 * mark, they disagree, or the fit is refused. */
static int persp_round(cm_verifier *v, const float *r, int wd, int hd, const hypo *h,
                       cm__geom *out)
{
    int N = v->N;
    work *wk = &v->wk;
    size_t nn = (size_t)N * N;
    double p[18], q[18], wt[9];
    int n = 0;
    /* the reference shift, in the fold's own coordinates (a mirrored
     * fold's u runs the other way) */
    double ex = h->flipped ? -h->dx : h->dx, ey = h->dy;
    int ww = wd / 2, wh = hd / 2;
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            int x0 = i * wd / 4, y0 = j * hd / 4;
            memset(wk->sum, 0, sizeof(float) * nn);
            memset(wk->count, 0, sizeof(float) * nn);
            cm__fold_rect(r, wd, x0, y0, ww, wh, &h->g, N, wk->sum, wk->count);
            cm__fold_spectrum(wk, N);
            hypo one[1];
            one[0].sync_z = -1e30;
            evaluate_flip(v, wk, &h->g, h->flipped, PERSP_PEAKS, one, 1);
            if (one[0].sync_z < PERSP_WINDOW_Z)
                continue;
            double fx = h->flipped ? -one[0].dx : one[0].dx, fy = one[0].dy;
            double cx = x0 + ww / 2.0, cy = y0 + wh / 2.0, u, vv;
            geom_apply(&h->g, cx, cy, &u, &vv);
            p[2 * n] = cx;
            p[2 * n + 1] = cy;
            q[2 * n] = u - wrap(fx - ex, N);
            q[2 * n + 1] = vv - wrap(fy - ey, N);
            wt[n] = one[0].sync_z * one[0].sync_z;
            n++;
        }
    /* a homography, or when that is refused an affine map: a strong
     * keystone leaves the windows on one side unregistered at the start,
     * and a homography through the rest extrapolates badly to the far
     * corners; the affine fit moves them closer for the next round */
    if (fit_windows(p, q, wt, n, 8, wd, hd, out) == 0)
        return 0;
    return fit_windows(p, q, wt, n, 6, wd, hd, out);
}

/* The lattices of the frame's central frac x frac, on a lag map smoothed
 * over 7 x 7 lags (the perspective varies less over it, and the peaks it
 * smears are found as one): up to nsim square, naff affine and nup upright
 * ones into start, the upright ones last (how many in *found_up); how
 * many, or a negative CM_E code. */
static int persp_lattices(const float *r, int wd, int hd, double frac, int N, int nsim,
                          int naff, int nup, cm__geom *start, int *found_up)
{
    int cw = (int)(wd * frac), ch = (int)(hd * frac);
    float *win = malloc(sizeof(float) * (size_t)cw * ch);
    if (!win)
        return CM_E_NOMEM;
    for (int y = 0; y < ch; y++)
        memcpy(win + (size_t)y * cw, r + (size_t)(y + (hd - ch) / 2) * wd + (wd - cw) / 2,
               sizeof(float) * cw);
    int ns, nc = cm__sync_search_smooth(win, cw, ch, (double)N / CM__DECIM, N, PERSP_SMOOTH,
                                        start, nsim, naff, nup, &ns, found_up);
    free(win);
    return nc;
}

/* The fit (file comment, step 3) from the starts start[0..ns): each judged
 * by its sync on the central half of the frame folded alone, then the fit
 * from the best nfit (<= PERSP_STARTS) of those over the gate, best first,
 * until one registers the frame; the fitted folds go into best, and
 * *passed says whether any start passed the gate. */
static int persp_fit(cm_verifier *v, const float *r, int wd, int hd, const cm__geom *start,
                     int ns, int nfit, hypo *best, int nbest, int *passed)
{
    int N = v->N;
    work *wk = &v->wk;
    size_t nn = (size_t)N * N;
    hypo *cur = malloc(sizeof(hypo) * (PERSP_STARTS + 1));
    if (!cur)
        return CM_E_NOMEM;
    for (int k = 0; k < PERSP_STARTS; k++)
        cur[k].sync_z = -1e30;
    hypo *one = cur + PERSP_STARTS;
    for (int k = 0; k < ns; k++) {
        memset(wk->sum, 0, sizeof(float) * nn);
        memset(wk->count, 0, sizeof(float) * nn);
        cm__fold_rect(r, wd, wd / 4, hd / 4, wd / 2, hd / 2, &start[k], N, wk->sum, wk->count);
        one->sync_z = -1e30;
        evaluate_fold(v, wk, &start[k], PERSP_PEAKS, one, 1);
        insert_best(cur, PERSP_STARTS, one);
    }
    /* a start can pass the gate and still leave too few windows for a fit,
     * where a lesser one fits */
    *passed = cur[0].sync_z >= PERSP_GATE_Z;
    for (int s = 0; s < nfit && cur[s].sync_z >= PERSP_GATE_Z; s++) {
        hypo *c = &cur[s];
        double whole = -1e30; /* the whole frame's sync at c's geometry */
        for (int it = 0; it < PERSP_ITERS; it++) {
            cm__geom g;
            if (persp_round(v, r, wd, hd, c, &g))
                break;
            one->sync_z = -1e30;
            cm__fold_c(r, wd, hd, &g, N, wk->sum, wk->count);
            cm__fold_spectrum(wk, N);
            evaluate_flip(v, wk, &g, c->flipped, ORIGIN_PEAKS, one, 1);
            insert_best(best, nbest, one);
            if (one->sync_z <= whole)
                break;
            int done = one->sync_z < whole + PERSP_GAIN;
            whole = one->sync_z;
            *c = *one;
            if (done)
                break;
        }
        if (best[0].sync_z >= EARLY_SYNC_Z)
            break;
    }
    free(cur);
    return CM_OK;
}

/* Axis-aligned maps around the upright lattices up[0..nup) (step 3d): each
 * one's scale along x times (1 + PERSP_GRID_STEP a) and along y times
 * (1 + PERSP_GRID_STEP b wd / hd), |a|, |b| <= PERSP_GRID, no shear, into
 * out; how many. The step moves the edge of the central half by the same
 * amount along both axes. */
static int persp_grid(const cm__geom *up, int nup, int wd, int hd, cm__geom *out)
{
    int n = 0;
    double sx = PERSP_GRID_STEP, sy = PERSP_GRID_STEP * wd / hd;
    for (int k = 0; k < nup; k++)
        for (int a = -PERSP_GRID; a <= PERSP_GRID; a++)
            for (int b = -PERSP_GRID; b <= PERSP_GRID; b++) {
                cm__geom g = {{0}, 0};
                g.h[0] = up[k].h[0] * (1 + sx * a);
                g.h[4] = up[k].h[4] * (1 + sy * b);
                int dup = 0; /* within half a step of one made: the same */
                for (int j = 0; j < n && !dup; j++)
                    dup = fabs(g.h[0] / out[j].h[0] - 1) < sx / 2 &&
                          fabs(g.h[4] / out[j].h[4] - 1) < sy / 2;
                if (!dup)
                    out[n++] = g;
            }
    return n;
}

/* Step 3d: the grid ranked by rank_fold, and the fit from the best of
 * its best PERSP_GRID_KEEP (grid is reused for them). */
static int grid_fit(cm_verifier *v, const float *r, int wd, int hd, cm__geom *grid, int ngrid,
                    hypo *best, int nbest)
{
    hypo *top = malloc(sizeof(hypo) * (PERSP_GRID_KEEP + 1));
    float *q = malloc(sizeof(float) * ((size_t)(wd / 4) * (size_t)(hd / 4) + 1));
    if (!top || !q) {
        free(top);
        free(q);
        return CM_E_NOMEM;
    }
    rank_residual(r, wd, hd, q);
    hypo *one = top + PERSP_GRID_KEEP;
    for (int k = 0; k < PERSP_GRID_KEEP; k++)
        top[k].sync_z = -1e30;
    for (int k = 0; k < ngrid; k++) {
        one->sync_z = -1e30;
        rank_fold(v, q, wd, hd, &grid[k], one, 1);
        insert_best(top, PERSP_GRID_KEEP, one);
    }
    int n = 0;
    for (int k = 0; k < PERSP_GRID_KEEP; k++)
        if (top[k].sync_z > -1e29)
            grid[n++] = top[k].g;
    free(top);
    free(q);
    int passed;
    return persp_fit(v, r, wd, hd, grid, n, 1, best, nbest, &passed);
}

/* The perspective stage (file comment, step 3): the fit from the best fold
 * so far and the lattices of the central PERSP_CENTRE_FRAC; when a start
 * passed the gate but no fit registered the frame, from the best of the
 * lattices of the central PERSP_SECOND_FRAC; then from the best of the
 * axis-aligned maps around the first upright lattices. */
static int perspective(cm_verifier *v, const float *r, int wd, int hd, hypo *best, int nbest)
{
    cm__geom start[1 + PERSP_CENTRE_SIM + PERSP_CENTRE_AFF + PERSP_CENTRE_UP];
    cm__geom grid[PERSP_CENTRE_UP * (2 * PERSP_GRID + 1) * (2 * PERSP_GRID + 1)];
    start[0] = best[0].g; /* the whole frame's best, whatever its lattice */
    int nup, nc = persp_lattices(r, wd, hd, PERSP_CENTRE_FRAC, v->N, PERSP_CENTRE_SIM,
                                 PERSP_CENTRE_AFF, PERSP_CENTRE_UP, start + 1, &nup);
    if (nc < 0)
        return nc;
    /* made now: the second starts overwrite these upright lattices */
    int ngrid = persp_grid(start + 1 + nc - nup, nup, wd, hd, grid);
    int passed, ret = persp_fit(v, r, wd, hd, start, 1 + nc, PERSP_STARTS, best, nbest, &passed);
    if (ret || best[0].sync_z >= EARLY_SYNC_Z)
        return ret;
    if (passed) {
        nc = persp_lattices(r, wd, hd, PERSP_SECOND_FRAC, v->N, PERSP_CENTRE_SIM,
                            PERSP_CENTRE_AFF, PERSP_CENTRE_UP, start, &nup);
        if (nc < 0)
            return nc;
        ret = persp_fit(v, r, wd, hd, start, nc, 1, best, nbest, &passed);
        if (ret || best[0].sync_z >= EARLY_SYNC_Z)
            return ret;
    }
    return grid_fit(v, r, wd, hd, grid, ngrid, best, nbest);
}

/* ---- the search ------------------------------------------------------------ */

int cm__geometry_search(cm_verifier *v, const float *r, int wd, int hd, hypo *best, int nbest,
                        int untouched_only)
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
    evaluate_fold(v, wk, &identity, ORIGIN_PEAKS, best, nbest);
    if (best[0].sync_z >= EARLY_SYNC_Z || untouched_only)
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
        evaluate_fold(v, wk, &geoms[k], ORIGIN_PEAKS, best, nbest);
    }

    /* perspective, unless a lattice registered the frame */
    if (best[0].sync_z < EARLY_SYNC_Z)
        return perspective(v, r, wd, hd, best, nbest);
    return CM_OK;
}
