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
 * 5. affine lattices (issue 19: a frame squeezed along one axis, sheared):
 *    the lattice is spanned by any two independent vectors b1, b2, not a
 *    rotated square. Every pair of candidate vectors (the peaks and their
 *    halves and thirds, taken as the basis or as its two diagonals b1 + b2
 *    and b1 - b2) that could be a basis — lengths within the scales
 *    searched and within AFF_RATIO of each other, at AFF_MIN_ANGLE..180 -
 *    AFF_MIN_ANGLE degrees — is scored like the square candidates; the best
 *    few are refined on all lattice points (coordinate search on the four
 *    coordinates of b1 and b2). A refined basis that is a square lattice
 *    after all (lengths within AFF_SIM_RATIO, angle within AFF_SIM_DEG of
 *    90) is dropped: the square search has it. b1 is taken as the more
 *    horizontal vector with x > 0 and b2 with y > 0, so the tile's axes
 *    keep their order and a mirror image folds into the mirrored tile,
 *    which the fold step tries anyway.
 * 6. upright lattices (the perspective's starts only, upright_search): the
 *    best bases near the frame's axes on a grid of scale, aspect and
 *    slopes, whether or not the map has a peak there.
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
#define AFF_PEAKS 24         /* lag peaks paired into affine bases */
#define AFF_RATIO 2.0        /* |b1| / |b2| within 1/2 .. 2 (a 0.6 squeeze
                                with the other axis 1.33 is 0.45: beyond) */
#define AFF_MIN_ANGLE 55.0   /* degrees between b1 and b2, at least (a 6
                                degree shear with a 0.6 squeeze: 80) */
#define AFF_REFINE 4         /* affine candidates refined */
#define AFF_SIM_RATIO 0.006  /* a refined basis this close to a square one */
#define AFF_SIM_DEG 0.35     /* is left to the square search */
#define AFF_GAIN 1.15        /* an affine basis is kept only when its lattice
                                score beats the best square one by this
                                factor (bench: a true squeeze or shear
                                scores 3-5x, the affine harmonics of a true
                                square lattice score less than it) */
#define AFF_SECOND 0.85      /* ... and a second one within this factor of
                                the first (true: the next is 0.7-0.78 of it) */

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

static int build_lagmap(const float *r, int wd, int hd, int Lx, int Ly, int Lmin, int smooth,
                        lagmap *m)
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
    double mean = 0;
    for (int y = 0; y < hd; y++)
        for (int x = 0; x < wd; x++)
            mean += r[(size_t)y * wd + x];
    mean /= (double)wd * hd;
    for (int y = 0; y < hd; y++) {
        float *b = buf + (size_t)y * fw;
        for (int x = 0; x < wd; x++)
            b[x] = r[(size_t)y * wd + x] - (float)mean;
        memset(b + wd, 0, sizeof(float) * (size_t)(fw - wd));
    }
    /* rows from hd on are zero padding, and only lags -MARGIN..Ly are read */
    cm__rfft2_forward_rows(&fft, buf, hd, spec);
    for (size_t i = 0; i < (size_t)fft.hw * fh; i++) {
        spec[i].re = sqrtf(spec[i].re * spec[i].re + spec[i].im * spec[i].im);
        spec[i].im = 0;
    }
    cm__rfft2_inverse_rows(&fft, spec, buf, Ly + 1, MARGIN);

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
    /* smeared peaks (a perspective): refine on the 3x3 copy, find the
     * candidates on a wider one */
    if (smooth > 1) {
        memcpy(m->a, m->sm, sn * sizeof(float));
        if (box_mean(m->a, hb, m->sx, m->sy, smooth, 0) ||
            box_mean(hb, m->sm, m->sx, m->sy, smooth, 1)) {
            free(tmp);
            free(hb);
            goto fail;
        }
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

/* Lattice score of the basis (b1, b2), as lattice_score: the points
 * a b1 + b b2 with (a, b) chosen for the basis (c1, c2) it is refined
 * from, |a|, |b| <= order when order > 0. */
static double basis_score(const lagmap *m, const float *map, const double b1[2],
                          const double b2[2], const double c1[2], const double c2[2], int order)
{
    double k = 1 + FINE_RANGE;
    double xmax = (m->Lx - 1.5) / k, ymax = (m->Ly - 1.5) / k;
    double det = fabs(c1[0] * c2[1] - c2[0] * c1[1]);
    /* |a| |det| <= |p| |c2| for a point p: bound both by the window */
    double reach = hypot(xmax, ymax);
    int amax = (int)(reach * fmax(hypot(c1[0], c1[1]), hypot(c2[0], c2[1])) / det) + 1;
    if (order > 0 && amax > order)
        amax = order;
    double sum = 0;
    int n = 0;
    for (int b = 0; b <= amax; b++) {
        for (int a = -amax; a <= amax; a++) {
            if (b == 0 && a <= 0)
                continue; /* half-plane: A is symmetric */
            double px = a * c1[0] + b * c2[0], py = a * c1[1] + b * c2[1];
            if (fabs(px) > xmax || fabs(py) > ymax)
                continue;
            sum += lag_at(m, map, a * b1[0] + b * b2[0], a * b1[1] + b * b2[1]);
            n++;
        }
    }
    return n >= MIN_POINTS ? sum / sqrt((double)n) : -1e30;
}

/* Put a basis in the order the fold expects: b1 the more horizontal vector
 * with x > 0, b2 the other with y > 0. */
static void basis_order(double b1[2], double b2[2])
{
    if (fabs(b1[1]) / hypot(b1[0], b1[1]) > fabs(b2[1]) / hypot(b2[0], b2[1])) {
        double t0 = b1[0], t1 = b1[1];
        b1[0] = b2[0], b1[1] = b2[1];
        b2[0] = t0, b2[1] = t1;
    }
    if (b1[0] < 0)
        b1[0] = -b1[0], b1[1] = -b1[1];
    if (b2[1] < 0)
        b2[0] = -b2[0], b2[1] = -b2[1];
}

typedef struct affg {
    double b1[2], b2[2], score;
} affg;

/* a[0..n) strongest first (a selection sort: n is a handful) */
static void sort_by_score(affg *a, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (a[j].score > a[i].score) {
                affg t = a[i];
                a[i] = a[j];
                a[j] = t;
            }
}

/* Put a into cand (*nc of at most cap, best score first) if it ranks. */
static void keep_best(affg *cand, int *nc, int cap, affg a)
{
    int pos;
    if (*nc < cap)
        pos = (*nc)++;
    else if (a.score > cand[cap - 1].score)
        pos = cap - 1;
    else
        return;
    cand[pos] = a;
    while (pos > 0 && cand[pos - 1].score < cand[pos].score) {
        affg t = cand[pos - 1];
        cand[pos - 1] = cand[pos];
        cand[pos] = t;
        pos--;
    }
}

/* Score the basis (u, w) as an affine candidate and keep it in cand[0..*nc)
 * (the AFF_REFINE best, strongest first) if it ranks. */
static void consider_pair(const lagmap *m, const double u[2], const double w[2], double pmin,
                          double pmax, affg *cand, int *nc)
{
    double cos_max = cos(AFF_MIN_ANGLE * M_PI / 180);
    double l1 = hypot(u[0], u[1]), l2 = hypot(w[0], w[1]);
    if (l1 < pmin || l1 > pmax || l2 < pmin || l2 > pmax)
        return;
    if (l1 > AFF_RATIO * l2 || l2 > AFF_RATIO * l1)
        return;
    double cs = (u[0] * w[0] + u[1] * w[1]) / (l1 * l2);
    if (fabs(cs) > cos_max)
        return;
    affg a = {{u[0], u[1]}, {w[0], w[1]}, 0};
    basis_order(a.b1, a.b2);
    a.score = basis_score(m, m->sm, a.b1, a.b2, a.b1, a.b2, COARSE_ORDER);
    if (a.score <= -1e29)
        return;
    int dup = -1;
    for (int k = 0; k < *nc; k++)
        if (hypot(cand[k].b1[0] - a.b1[0], cand[k].b1[1] - a.b1[1]) < 0.02 * l1 &&
            hypot(cand[k].b2[0] - a.b2[0], cand[k].b2[1] - a.b2[1]) < 0.02 * l2)
            dup = k;
    if (dup >= 0) {
        if (a.score > cand[dup].score)
            cand[dup] = a;
        return;
    }
    keep_best(cand, nc, AFF_REFINE, a);
}

/* Refine the basis a on every lattice point of the map: coordinate search
 * on its four coordinates, two passes at two step sizes (relative to |b|);
 * a->score receives the refined score. */
static void refine_basis(const lagmap *m, affg *a)
{
    double c1[2] = {a->b1[0], a->b1[1]}, c2[2] = {a->b2[0], a->b2[1]};
    double best = basis_score(m, m->a, a->b1, a->b2, c1, c2, 0);
    for (int pass = 0; pass < 2; pass++) {
        double rel = pass ? FINE_P_STEP : COARSE_P_STEP / 4;
        for (int axis = 0; axis < 8; axis++) {
            double *coord = (axis % 4) < 2 ? &a->b1[axis % 2] : &a->b2[axis % 2];
            double len = (axis % 4) < 2 ? hypot(c1[0], c1[1]) : hypot(c2[0], c2[1]);
            double c0 = *coord, bestc = c0;
            for (int i = -REFINE_STEPS; i <= REFINE_STEPS; i++) {
                *coord = c0 + i * rel * len;
                double v = basis_score(m, m->a, a->b1, a->b2, c1, c2, 0);
                if (v > best) {
                    best = v;
                    bestc = *coord;
                }
            }
            *coord = bestc;
        }
    }
    a->score = best;
}

/* Upright lattices (step 6; a photographed screen: the camera held about
 * level, so the tile's axes stay near the frame's): every basis
 * b1 = (p1, q1 p1), b2 = (q2 p2, p2) with p1 over the scales searched and
 * p2 / p1, q1, q2 on a grid, scored on its 4 nearest lattice points of the
 * smoothed map; the UP_COARSE best distinct ones refined on all points and
 * the best max of those by refined score returned. Taken from the map's
 * values, not its local maxima: a smeared lattice may leave no peak among
 * the strongest (bench: persp6 and screen_photo frames whose candidates
 * were all 20-35 degrees off). Returns how many. */
#define UP_P_STEP 0.02 /* relative step of p1 and of p2 / p1 (3 %: persp6 19 -> 18
                          of 20, screen_photo with candidates 18 -> 17) */
#define UP_RATIO 0.20  /* p2 / p1 within 1 -/+ this: a 6 % keystone at the centre
                          is 0.85-1.15 */
#define UP_SLOPE 0.10  /* |q1|, |q2| at most (5.7 degrees; 0.12 found the same) */
#define UP_Q_STEP 0.02 /* their step */
#define UP_COARSE 8    /* coarse candidates refined (12 found the same) */
#define UP_DUP 0.04    /* of p1, p2: a coarse candidate this close is the same */
static int upright_search(const lagmap *m, double pmin, double pmax, double Nt, cm__geom *out,
                          int max)
{
    affg cand[UP_COARSE];
    int nc = 0;
    int nq = (int)(UP_SLOPE / UP_Q_STEP + 0.5);
    int nr = (int)(log(1 + UP_RATIO) / log(1 + UP_P_STEP) + 0.5);
    /* basis_score at order 1, unrolled (the grid is large): the points
     * b1, b2 - b1, b2, b1 + b2, all inside the window, summed in its order */
    double xmax = (m->Lx - 1.5) / (1 + FINE_RANGE), ymax = (m->Ly - 1.5) / (1 + FINE_RANGE);
#define UP_IN(x, y) (fabs(x) <= xmax && fabs(y) <= ymax)
    for (double p1 = pmin; p1 <= pmax; p1 *= 1 + UP_P_STEP)
        for (int ir = -nr; ir <= nr; ir++) {
            double p2 = p1 * pow(1 + UP_P_STEP, ir);
            if (p2 < pmin || p2 > pmax)
                continue;
            for (int i1 = -nq; i1 <= nq; i1++) {
                double b1[2] = {p1, i1 * UP_Q_STEP * p1};
                if (!UP_IN(b1[0], b1[1]))
                    continue;
                double l1 = lag_at(m, m->sm, b1[0], b1[1]);
                for (int i2 = -nq; i2 <= nq; i2++) {
                    affg a = {{b1[0], b1[1]}, {i2 * UP_Q_STEP * p2, p2}, 0};
                    double mx = a.b2[0] - b1[0], my = a.b2[1] - b1[1];
                    double px = a.b2[0] + b1[0], py = a.b2[1] + b1[1];
                    if (!UP_IN(mx, my) || !UP_IN(a.b2[0], a.b2[1]) || !UP_IN(px, py))
                        continue;
                    double sum = l1;
                    sum += lag_at(m, m->sm, mx, my);
                    sum += lag_at(m, m->sm, a.b2[0], a.b2[1]);
                    sum += lag_at(m, m->sm, px, py);
                    a.score = sum / 2;
                    if (nc == UP_COARSE && a.score <= cand[nc - 1].score)
                        continue; /* ranks nowhere: most of the grid */
                    int dup = -1;
                    double r1 = UP_DUP * p1 * UP_DUP * p1, r2 = UP_DUP * p2 * UP_DUP * p2;
                    for (int k = 0; k < nc; k++) {
                        double d1x = cand[k].b1[0] - a.b1[0], d1y = cand[k].b1[1] - a.b1[1];
                        double d2x = cand[k].b2[0] - a.b2[0], d2y = cand[k].b2[1] - a.b2[1];
                        if (d1x * d1x + d1y * d1y < r1 && d2x * d2x + d2y * d2y < r2)
                            dup = k;
                    }
                    if (dup >= 0) {
                        if (a.score > cand[dup].score)
                            cand[dup] = a;
                        /* keep the list sorted */
                        for (int k = dup; k > 0 && cand[k - 1].score < cand[k].score; k--) {
                            affg t = cand[k - 1];
                            cand[k - 1] = cand[k];
                            cand[k] = t;
                        }
                        continue;
                    }
                    keep_best(cand, &nc, UP_COARSE, a);
                }
            }
        }
#undef UP_IN
    /* the coarse score is rough on the smoothed map: refine them all and
     * keep the best by the refined score */
    for (int k = 0; k < nc; k++)
        refine_basis(m, &cand[k]);
    sort_by_score(cand, nc);
    int n = 0;
    for (int k = 0; k < nc && n < max; k++) {
        int dup = 0; /* refined onto the same basis (within 1 %) */
        const affg *a = &cand[k];
        for (int j = 0; j < k; j++)
            if (hypot(a->b1[0] - cand[j].b1[0], a->b1[1] - cand[j].b1[1]) < 0.01 * a->b1[0] &&
                hypot(a->b2[0] - cand[j].b2[0], a->b2[1] - cand[j].b2[1]) < 0.01 * a->b2[1])
                dup = 1;
        if (dup)
            continue;
        out[n] = cm__geom_affine(Nt, cand[k].b1, cand[k].b2);
        out[n].score = cand[k].score;
        n++;
    }
    return n;
}

/* Affine hypotheses (file comment, step 5) into out; returns how many. */
static int affine_search(const lagmap *m, const lagpeak *pk, int npeaks, double pmin,
                         double pmax, double Nt, double floor_score, cm__geom *out, int max)
{
    double vec[AFF_PEAKS * 3][2];
    int nv = 0;
    for (int i = 0; i < npeaks; i++)
        for (int d = 1; d <= 3; d++) {
            double x = pk[i].x / (double)d, y = pk[i].y / (double)d, len = hypot(x, y);
            if (len < pmin || len > pmax)
                continue;
            vec[nv][0] = x;
            vec[nv][1] = y;
            nv++;
        }
    affg cand[AFF_REFINE];
    int nc = 0;
    for (int i = 0; i < nv; i++)
        for (int j = i + 1; j < nv; j++)
            for (int diag = 0; diag < 2; diag++) {
                /* the pair as the basis, or as its two diagonals b1 + b2,
                 * b1 - b2 (the ridge suppressor weakens peaks on the axes,
                 * so a lattice may show its diagonals only) */
                double u[2] = {vec[i][0], vec[i][1]}, w[2] = {vec[j][0], vec[j][1]};
                if (diag) {
                    u[0] = (vec[i][0] + vec[j][0]) / 2, u[1] = (vec[i][1] + vec[j][1]) / 2;
                    w[0] = (vec[i][0] - vec[j][0]) / 2, w[1] = (vec[i][1] - vec[j][1]) / 2;
                }
                consider_pair(m, u, w, pmin, pmax, cand, &nc);
            }
    /* refine on every lattice point: coordinate search on the four
     * coordinates, two passes at two step sizes (relative to |b|) */
    int n = 0;
    affg kept[AFF_REFINE];
    for (int k = 0; k < nc; k++) {
        affg a = cand[k];
        refine_basis(m, &a);
        double best = a.score;
        double l1 = hypot(a.b1[0], a.b1[1]), l2 = hypot(a.b2[0], a.b2[1]);
        double ang = acos((a.b1[0] * a.b2[0] + a.b1[1] * a.b2[1]) / (l1 * l2)) * 180 / M_PI;
        if (fabs(l1 / l2 - 1) < AFF_SIM_RATIO && fabs(ang - 90) < AFF_SIM_DEG)
            continue; /* a square lattice: the similarity search's */
        if (!(best > floor_score * AFF_GAIN))
            continue; /* no better than a square lattice */
        int dup = 0;
        for (int j = 0; j < n; j++)
            if (hypot(kept[j].b1[0] - a.b1[0], kept[j].b1[1] - a.b1[1]) < 0.01 * l1 &&
                hypot(kept[j].b2[0] - a.b2[0], kept[j].b2[1] - a.b2[1]) < 0.01 * l2)
                dup = 1;
        if (!dup)
            kept[n++] = a;
    }
    sort_by_score(kept, n);
    if (n > max)
        n = max;
    for (int k = 1; k < n; k++)
        if (kept[k].score < AFF_SECOND * kept[0].score)
            n = k;
    for (int k = 0; k < n; k++) {
        out[k] = cm__geom_affine(Nt, kept[k].b1, kept[k].b2);
        out[k].score = kept[k].score;
    }
    return n;
}

int cm__sync_search(const float *r, int wd, int hd, double N, double Nt, cm__geom *out,
                    int max_sim, int max_aff, int *nsim)
{
    int nup;
    return cm__sync_search_smooth(r, wd, hd, N, Nt, 1, out, max_sim, max_aff, 0, nsim, &nup);
}

int cm__sync_search_smooth(const float *r, int wd, int hd, double N, double Nt, int smooth,
                           cm__geom *out, int max_sim, int max_aff, int max_up, int *nsim,
                           int *nup)
{
    int max = max_sim;
    *nsim = *nup = 0;
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
    int ret = build_lagmap(r, wd, hd, Lx, Ly, (int)(1.5 * N), smooth, &m);
    if (ret)
        return ret;

    /* candidates from the strongest local maxima of the map: each peak p
     * may be v1 itself, a harmonic (p = k v1, k = 2, 3), or a diagonal
     * (p = v1 + v2); score each with the nearest lattice points */
    lagpeak pk[MAX_LAG_PEAKS];
    int npeaks = find_lag_peaks(&m, pmin, pk, MAX_LAG_PEAKS);
    typedef struct simg {
        double period, theta, score;
    } simg;
    simg peaks[MAX_COARSE_PEAKS];
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
                    peaks[dup] = (simg){P, t, v};
                continue;
            }
            int pos;
            if (npk < MAX_COARSE_PEAKS)
                pos = npk++;
            else if (v > peaks[MAX_COARSE_PEAKS - 1].score)
                pos = MAX_COARSE_PEAKS - 1;
            else
                continue;
            peaks[pos] = (simg){P, t, v};
            while (pos > 0 && peaks[pos - 1].score < peaks[pos].score) {
                simg tmp = peaks[pos - 1];
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
    int n = npk < max ? npk : max;
    /* sort refined by score */
    for (int i = 0; i < npk; i++)
        for (int j = i + 1; j < npk; j++)
            if (peaks[j].score > peaks[i].score) {
                simg t = peaks[i];
                peaks[i] = peaks[j];
                peaks[j] = t;
            }
    for (int k = 0; k < n; k++) {
        out[k] = cm__geom_similar(Nt, peaks[k].period, peaks[k].theta);
        out[k].score = peaks[k].score;
    }
    *nsim = n;
    if (max_aff > 0)
        n += affine_search(&m, pk, npeaks < AFF_PEAKS ? npeaks : AFF_PEAKS, pmin, pmax, Nt,
                           n ? out[0].score : -1e30, out + n, max_aff);
    if (max_up > 0) {
        *nup = upright_search(&m, pmin, pmax, Nt, out + n, max_up);
        n += *nup;
    }
    free(m.a);
    free(m.sm);
    return n;
}
