/*
 * Sync, step 1: find the tile lattice (period and angle) from the
 * autocorrelation of the whitened residual.
 *
 * The mark repeats every tile, so the residual's autocorrelation has peaks on
 * a square lattice spanned by v1 = P (cos t, sin t) and v2 = P (-sin t, cos t):
 *
 *        .     .     .          P     = tile period in frame pixels (scale)
 *     .     .     .     .       t     = rotation (mod 90 degrees)
 *        .     o     .          o     = lag 0
 *     .     .     .     .       a mirror image has the same lattice (its
 *        .     .     .          angle is -t): the fold step tries both.
 *
 * 1. on the residual decimated by 2 (see detect.h); zero-pad;
 *    A = IFFT(|FFT(r)|) (|F|, not |F|^2: a whitened autocorrelation with
 *    sharper peaks); A is symmetric, so only one half-plane is kept;
 * 2. divide by the overlap of each lag (floored at 30 % of the frame), and
 *    subtract max(box 21x1, box 1x21) to remove straight ridges that long
 *    horizontal or vertical edges leave;
 * 3. turn the strongest local maxima of A into candidates: each peak p may
 *    be v1 itself, a harmonic (p = 2 v1, 3 v1) or a diagonal (v1 + v2);
 *    score each by the sum of A at its lattice points near the origin over
 *    sqrt(count) — the true period beats its harmonics: P/2 adds empty
 *    points, 2P drops real ones; fewer than 4 points in the window is no
 *    lattice;
 * 4. refine the best few with all lattice points in the window
 *    (coordinate search on period and angle).
 * The caller folds the frame with each hypothesis and keeps the one whose
 * sync chips correlate best.
 */
#include "detect.h"

#include <libavutil/mem.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OVERLAP_FLOOR 0.30   /* fraction of the frame, see step 2 */
#define RIDGE_R 10           /* box 21 ridge suppressor radius, lags */
#define MARGIN (RIDGE_R + 2) /* rows above dy = 0 kept for the boxes */
#define SCALE_MIN 0.20       /* smallest frame scale searched (1/5 size) */
#define SCALE_MAX 1.60       /* largest (upscaled 160 %) */
#define COARSE_P_STEP 0.012  /* relative period step of the first refinement */
#define COARSE_T_STEP 0.6    /* angle step of the first refinement, degrees */
#define COARSE_ORDER 2       /* candidate score uses |a|,|b| <= 2 */
#define MAX_LAG_PEAKS 40     /* local maxima of the map turned into candidates */
#define FINE_P_STEP 0.0008   /* relative period step when refining */
#define FINE_T_STEP 0.04     /* angle step when refining, degrees */
#define MAX_COARSE_PEAKS 6   /* hypotheses refined */
#define FINE_RANGE 0.03      /* refinement explores P0 (1 +/- this) */
#define REFINE_STEPS 8       /* steps each way per axis and pass */
#define MIN_POINTS 4         /* lattice points a hypothesis must cover */
#define LAG_FRACTION 0.75    /* largest lag, fraction of the side */

typedef struct lagmap {
    int Lx, Ly; /* lags -Lx..Lx, -Ly..Ly; A(-d) = A(d), so only rows
                   dy >= -MARGIN are kept (the margin feeds the vertical
                   box filters of the rows near dy = 0) */
    int sx, sy; /* 2Lx+1, Ly+MARGIN+1 */
    float *a;   /* sx*sy, index (dy+MARGIN)*sx + dx+Lx */
    float *sm;  /* smoothed copy for the coarse search */
} lagmap;

/* Bilinear sample of the map at lag (x, y); 0 outside the window. */
static float lag_at(const lagmap *m, const float *map, double x, double y)
{
    if (y < 0) { /* the map is symmetric: A(-d) = A(d) */
        x = -x;
        y = -y;
    }
    x += m->Lx;
    y += MARGIN;
    if (!(x >= 0 && y >= 0 && x < m->sx - 1 && y < m->sy - 1))
        return 0;
    int xi = (int)x, yi = (int)y;
    float fx = (float)(x - xi), fy = (float)(y - yi);
    const float *p = map + (size_t)yi * m->sx + xi;
    return (p[0] * (1 - fx) + p[1] * fx) * (1 - fy) +
           (p[m->sx] * (1 - fx) + p[m->sx + 1] * fx) * fy;
}

/* Lattice score of (P, t): mean of the map at the lattice points a*v1 + b*v2
 * inside the lag window, times sqrt(count). The set of (a, b) is chosen for
 * the period P0 and kept while P varies around it, so points entering or
 * leaving the window cannot bias the refined period. Fewer than MIN_POINTS
 * points is no lattice (one noisy lag could pass for one). order > 0 limits
 * |a|, |b|. */
static double lattice_score(const lagmap *m, const float *map, double P, double t, double P0,
                            int order)
{
    double c = cos(t), s = sin(t);
    double k = 1 + FINE_RANGE; /* room for P up to P0 (1 + range) */
    double xmax = (m->Lx - 1.5) / k, ymax = (m->Ly - 1.5) / k;
    int amax = (int)(sqrt(xmax * xmax + ymax * ymax) / P0) + 1;
    if (order > 0 && amax > order)
        amax = order;
    double sum = 0;
    int n = 0;
    for (int b = 0; b <= amax; b++) {
        for (int a = -amax; a <= amax; a++) {
            if (b == 0 && a <= 0)
                continue; /* half-plane: A is symmetric */
            double ux = a * c - b * s, uy = a * s + b * c; /* unit-period lattice point */
            if (fabs(ux) * P0 > xmax || fabs(uy) * P0 > ymax)
                continue;
            sum += lag_at(m, map, ux * P, uy * P);
            n++;
        }
    }
    return n >= MIN_POINTS ? sum / sqrt((double)n) : -1e30;
}

/* dst = mean of src over a window of 2r+1 along rows (vertical = 0) or
 * columns (vertical = 1), clipped to the w x h map. Both run row by row so
 * memory is read in order. */
static int box_mean(const float *src, float *dst, int w, int h, int r, int vertical)
{
    if (!vertical) {
        for (int l = 0; l < h; l++) {
            const float *s = src + (size_t)l * w;
            float *d = dst + (size_t)l * w;
            double acc = 0;
            int lo = 0, hi = -1; /* current window [lo, hi] */
            for (int i = 0; i < w; i++) {
                int want_lo = i - r < 0 ? 0 : i - r, want_hi = i + r >= w ? w - 1 : i + r;
                while (hi < want_hi)
                    acc += s[++hi];
                while (lo < want_lo)
                    acc -= s[lo++];
                d[i] = (float)(acc / (hi - lo + 1));
            }
        }
        return CM_OK;
    }
    double *acc = calloc((size_t)w, sizeof(double));
    if (!acc)
        return CM_E_NOMEM;
    int lo = 0, hi = -1;
    for (int i = 0; i < h; i++) {
        int want_lo = i - r < 0 ? 0 : i - r, want_hi = i + r >= h ? h - 1 : i + r;
        while (hi < want_hi) {
            const float *s = src + (size_t)(++hi) * w;
            for (int x = 0; x < w; x++)
                acc[x] += s[x];
        }
        while (lo < want_lo) {
            const float *s = src + (size_t)(lo++) * w;
            for (int x = 0; x < w; x++)
                acc[x] -= s[x];
        }
        float *d = dst + (size_t)i * w;
        double inv = 1.0 / (hi - lo + 1);
        for (int x = 0; x < w; x++)
            d[x] = (float)(acc[x] * inv);
    }
    free(acc);
    return CM_OK;
}

/* Transform size for n samples and lags up to *L: the good size for n + L + 1,
 * or the next smaller good size when it still leaves 60 % of the lags and
 * at least Lmin (FFT sizes jump by up to 33 %; the lags lost are the least
 * useful ones). */
static int fit_size(int n, int *L, int Lmin)
{
    int full = cm__fft_good_size(n + *L + 1), lower = 0;
    for (int k = full - 1; k > n && !lower; k--) /* largest good size below full */
        if (cm__fft_good_size(k) == k)
            lower = k;
    if (lower && lower - n - 1 >= (*L * 3) / 5 && lower - n - 1 >= Lmin) {
        *L = lower - n - 1;
        return lower;
    }
    return full;
}

static int build_lagmap(const float *r, int wd, int hd, int Lx, int Ly, int Lmin, lagmap *m)
{
    int fw = fit_size(wd, &Lx, Lmin), fh = fit_size(hd, &Ly, Lmin);
    if (fw % 2)
        fw++;
    size_t fn = (size_t)fw * fh;
    cm__rfft2 fft;
    memset(&fft, 0, sizeof(fft));
    memset(m, 0, sizeof(*m));
    float *buf = av_malloc(sizeof(float) * fn);
    AVComplexFloat *spec = av_malloc(sizeof(AVComplexFloat) * (size_t)(fw / 2 + 1) * fh);
    int ret = CM_E_NOMEM;
    if (!buf || !spec)
        goto fail;
    if (cm__rfft2_init(&fft, fw, fh))
        goto fail;
    memset(buf, 0, sizeof(float) * fn);
    double mean = 0;
    for (int y = 0; y < hd; y++)
        for (int x = 0; x < wd; x++)
            mean += r[(size_t)y * wd + x];
    mean /= (double)wd * hd;
    for (int y = 0; y < hd; y++)
        for (int x = 0; x < wd; x++)
            buf[(size_t)y * fw + x] = r[(size_t)y * wd + x] - (float)mean;
    cm__rfft2_forward(&fft, buf, spec);
    for (size_t i = 0; i < (size_t)fft.hw * fh; i++) {
        spec[i].re = sqrtf(spec[i].re * spec[i].re + spec[i].im * spec[i].im);
        spec[i].im = 0;
    }
    cm__rfft2_inverse(&fft, spec, buf);

    m->Lx = Lx;
    m->Ly = Ly;
    m->sx = 2 * Lx + 1;
    m->sy = Ly + MARGIN + 1;
    size_t sn = (size_t)m->sx * m->sy;
    m->a = malloc(sn * sizeof(float));
    m->sm = malloc(sn * sizeof(float));
    float *tmp = malloc(sn * sizeof(float));
    float *hb = malloc(sn * sizeof(float));
    if (!m->a || !m->sm || !tmp || !hb) {
        free(tmp);
        free(hb);
        goto fail;
    }
    double area = (double)wd * hd, zero = buf[0] > 0 ? buf[0] : 1;
    for (int dy = -MARGIN; dy <= Ly; dy++) {
        const float *srow = buf + (size_t)(dy < 0 ? dy + fh : dy) * fw;
        float *drow = m->a + (size_t)(dy + MARGIN) * m->sx + Lx;
        double oy = hd - abs(dy);
        for (int dx = -Lx; dx <= Lx; dx++) {
            double ov = (wd - abs(dx)) * oy;
            if (ov < OVERLAP_FLOOR * area)
                ov = OVERLAP_FLOOR * area;
            drow[dx] = (float)(srow[dx < 0 ? dx + fw : dx] / zero * area / ov);
        }
    }
    /* ridge suppression: subtract the larger of the 21x1 and 1x21 means
     * (edge-clamped windows, running sums) */
    if (box_mean(m->a, hb, m->sx, m->sy, RIDGE_R, 0) ||
        box_mean(m->a, tmp, m->sx, m->sy, RIDGE_R, 1)) {
        free(tmp);
        free(hb);
        goto fail;
    }
    for (size_t i = 0; i < sn; i++)
        m->a[i] -= hb[i] > tmp[i] ? hb[i] : tmp[i];
    /* smoothed copy (3x3 box) for the coarse search's tolerance */
    if (box_mean(m->a, hb, m->sx, m->sy, 1, 0) || box_mean(hb, m->sm, m->sx, m->sy, 1, 1)) {
        free(tmp);
        free(hb);
        goto fail;
    }
    free(tmp);
    free(hb);
    ret = CM_OK;
fail:
    cm__rfft2_free(&fft);
    av_free(buf);
    av_free(spec);
    if (ret) {
        free(m->a);
        free(m->sm);
        memset(m, 0, sizeof(*m));
    }
    return ret;
}

typedef struct lagpeak {
    int x, y;
    float v;
} lagpeak;

/* The max strongest strict 3x3 local maxima of the map in the half-plane
 * y > 0 (or y == 0, x > 0) at distance >= rmin from lag 0, strongest first. */
static int find_lag_peaks(const lagmap *m, double rmin, lagpeak *out, int max)
{
    int n = 0;
    for (int y = 0; y <= m->Ly - 1; y++) {
        for (int x = -(m->Lx - 1); x <= m->Lx - 1; x++) {
            if ((y == 0 && x <= 0) || x * x + y * y < rmin * rmin)
                continue;
            const float *p = m->sm + (size_t)(y + MARGIN) * m->sx + x + m->Lx;
            float v = *p;
            if (!(v > p[-1] && v >= p[1] && v > p[-m->sx] && v >= p[m->sx] &&
                  v > p[-m->sx - 1] && v >= p[m->sx + 1] && v > p[-m->sx + 1] &&
                  v >= p[m->sx - 1]))
                continue;
            int pos;
            if (n < max)
                pos = n++;
            else if (v > out[max - 1].v)
                pos = max - 1;
            else
                continue;
            out[pos] = (lagpeak){x, y, v};
            while (pos > 0 && out[pos - 1].v < out[pos].v) {
                lagpeak t = out[pos - 1];
                out[pos - 1] = out[pos];
                out[pos] = t;
                pos--;
            }
        }
    }
    return n;
}

int cm__sync_search(const float *r, int wd, int hd, double N, cm__geom *out, int max)
{
    if (wd < 32 || hd < 32 || max <= 0)
        return 0;
    double pmin = N * SCALE_MIN, pmax = N * SCALE_MAX;
    /* lags up to 3/4 of each side (overlap >= 25 %), and no further than
     * 2.2 periods of the largest scale searched */
    int Lx = (int)(wd * LAG_FRACTION), Ly = (int)(hd * LAG_FRACTION);
    if (Lx > (int)(pmax * 2.2))
        Lx = (int)(pmax * 2.2);
    if (Ly > (int)(pmax * 2.2))
        Ly = (int)(pmax * 2.2);
    int L = Lx > Ly ? Lx : Ly;
    if (pmax > L - 2)
        pmax = L - 2;
    if (pmin >= pmax)
        return 0;
    lagmap m;
    /* keep 1.5 periods of the unscaled tile in both directions */
    int ret = build_lagmap(r, wd, hd, Lx, Ly, (int)(1.5 * N), &m);
    if (ret)
        return ret;

    /* candidates from the strongest local maxima of the map: each peak p
     * may be v1 itself, a harmonic (p = k v1, k = 2, 3), or a diagonal
     * (p = v1 + v2); score each with the nearest lattice points */
    lagpeak pk[MAX_LAG_PEAKS];
    int npeaks = find_lag_peaks(&m, pmin, pk, MAX_LAG_PEAKS);
    cm__geom peaks[MAX_COARSE_PEAKS];
    int npk = 0;
    for (int i = 0; i < npeaks; i++) {
        double len = hypot(pk[i].x, pk[i].y), ang = atan2(pk[i].y, pk[i].x);
        static const double div[] = {1, 2, 3, M_SQRT2};
        for (int d = 0; d < 4; d++) {
            double P = len / div[d], t = ang - (d == 3 ? M_PI / 4 : 0);
            if (P < pmin || P > pmax)
                continue;
            t = fmod(t + M_PI / 4, M_PI / 2);
            if (t < 0)
                t += M_PI / 2;
            t -= M_PI / 4;
            double v = lattice_score(&m, m.sm, P, t, P, COARSE_ORDER);
            if (v <= -1e29)
                continue;
            /* skip near-duplicates of a hypothesis already kept */
            int dup = -1;
            for (int k = 0; k < npk; k++)
                if (fabs(peaks[k].period / P - 1) < 0.02 && fabs(peaks[k].theta - t) < 0.02)
                    dup = k;
            if (dup >= 0) {
                if (v > peaks[dup].score)
                    peaks[dup] = (cm__geom){P, t, v};
                continue;
            }
            int pos;
            if (npk < MAX_COARSE_PEAKS)
                pos = npk++;
            else if (v > peaks[MAX_COARSE_PEAKS - 1].score)
                pos = MAX_COARSE_PEAKS - 1;
            else
                continue;
            peaks[pos] = (cm__geom){P, t, v};
            while (pos > 0 && peaks[pos - 1].score < peaks[pos].score) {
                cm__geom tmp = peaks[pos - 1];
                peaks[pos - 1] = peaks[pos];
                peaks[pos] = tmp;
                pos--;
            }
        }
    }

    /* refine the best few with every lattice point in range: coordinate
     * search, period and angle twice each, at two step sizes */
    if (npk > max + 1)
        npk = max + 1;
    for (int k = 0; k < npk; k++) {
        double P0 = peaks[k].period;
        double bestP = P0, bestT = peaks[k].theta;
        double best = lattice_score(&m, m.a, bestP, bestT, P0, 0);
        for (int pass = 0; pass < 2; pass++) {
            double ps = pass ? FINE_P_STEP : COARSE_P_STEP / 4;
            double ts = (pass ? FINE_T_STEP : COARSE_T_STEP / 4) * M_PI / 180;
            for (int axis = 0; axis < 4; axis++) {
                double Pc = bestP, Tc = bestT;
                for (int i = -REFINE_STEPS; i <= REFINE_STEPS; i++) {
                    double P = axis % 2 ? Pc : Pc * (1 + i * ps);
                    double t = axis % 2 ? Tc + i * ts : Tc;
                    double v = lattice_score(&m, m.a, P, t, P0, 0);
                    if (v > best) {
                        best = v;
                        bestP = P;
                        bestT = t;
                    }
                }
            }
        }
        while (bestT >= M_PI / 4)
            bestT -= M_PI / 2;
        while (bestT < -M_PI / 4)
            bestT += M_PI / 2;
        peaks[k].period = bestP;
        peaks[k].theta = bestT;
        peaks[k].score = best;
    }
    free(m.a);
    free(m.sm);
    int n = npk < max ? npk : max;
    /* sort refined by score */
    for (int i = 0; i < npk; i++)
        for (int j = i + 1; j < npk; j++)
            if (peaks[j].score > peaks[i].score) {
                cm__geom t = peaks[i];
                peaks[i] = peaks[j];
                peaks[j] = t;
            }
    memcpy(out, peaks, sizeof(cm__geom) * (size_t)n);
    return n;
}
