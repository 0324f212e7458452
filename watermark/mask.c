/* Perceptual mask (see mask.h). */
#include "mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Window of the cel-safe flat test, pixels: an 8x8 block of one colour is
 * what paint-bucket and colour-key tools treat as a fill. */
#define FLAT_WIN 8
/* Radii of the activity measure: a 3x3 high-pass at full resolution; its
 * RMS over 5x5 and a 3x3 smoothing at half resolution (10 and 6 px on the
 * frame: the mask only needs to follow the 12 px waxels, and half resolution
 * makes it 4x cheaper). */
#define HP_R 1
#define ACT_R 2
#define SMOOTH_R 1
/* The tile has unit RMS but peaks near +/-3.5: keeping amp <= headroom/3
 * makes clipping at 0 or full scale rare (embed clamps the rest). */
#define PATTERN_PEAK 3.0f
/* Edges of fills and the ink lines between them (within EDGE_REACH px of a
 * fill) take at most EDGE_CAP times the fill floor: more made the mark
 * ripple visibly along lines at 2x zoom. */
#define EDGE_REACH 4
#define EDGE_CAP 2.0f
/* The one-sided mark on paper white and black is gathered into part of the
 * page by a slow envelope of mean square 1: the same energy (so the same
 * PSNR, SSIM and fill RMS in expectation) at a higher amplitude where it is
 * strong. x264 erases a weak mark on flat white or black whole (its dead
 * zone), a stronger one only in part, so the concentrated mark survives
 * better. With c = cos(2 pi x / P) cos(2 pi y / P):
 *   white  env^2 = 1 + c                        (0 .. sqrt 2)
 *   black  env^2 = max(0, 1 + 3 c) * 0.80461    (0 .. 1.79; mask.h)
 * Black takes the deeper envelope: its peaks are a lift of a few code
 * values in the dark, where nothing shows; on white, depth 2 already left
 * 5-6 code value spots one could find at 2x zoom. bench/robustness default,
 * H.264 CRF 35, seeds 1-4, blind / candidates of 80: no envelope (seeds 1-3
 * only) 48 / 56 of 60; depth 1 on both 70 / 79; this 74 / 80. P in pixels:
 * long against the 384 px tile, so every chip is strong somewhere (on
 * black frames periods of 200, 480 and 900 px all helped, 900 most). */
#define ENV_PERIOD 900.0
/* Below this luma (code values) texture off fills takes the amplitude its
 * colour room allows (mask_row). */
#define DARK_LUMA 48.0f
#define DARK_FILL 0.8f

/* The vertical pass of both box filters: running column sums (in double)
 * over the horizontally filtered rows in tmp, edge rows clamped. Out of
 * memory for the w column sums, dst gets tmp unfiltered (a valid if less
 * smooth result, never garbage). */
static void box_vertical(const float *tmp, float *dst, ptrdiff_t dstride, int w, int h, int r,
                         float inv)
{
    double *col = calloc((size_t)w, sizeof(double));
    if (!col) {
        for (int y = 0; y < h; y++)
            memcpy(dst + y * dstride, tmp + (size_t)y * w, sizeof(float) * (size_t)w);
        return;
    }
    for (int k = -r; k <= r; k++) {
        const float *tr = tmp + (size_t)(k < 0 ? 0 : (k >= h ? h - 1 : k)) * w;
        for (int x = 0; x < w; x++)
            col[x] += tr[x];
    }
    for (int y = 0; y < h; y++) {
        float *restrict d = dst + y * dstride;
        int add = y + r + 1, sub = y - r;
        const float *ta = tmp + (size_t)(add >= h ? h - 1 : add) * w;
        const float *ts = tmp + (size_t)(sub < 0 ? 0 : sub) * w;
        for (int x = 0; x < w; x++) {
            d[x] = (float)(col[x] * inv);
            col[x] += ta[x] - ts[x];
        }
    }
    free(col);
}

void cm__box_filter_c(const float *src, ptrdiff_t sstride, float *dst, ptrdiff_t dstride,
                      int w, int h, int r, float *tmp)
{
    /* horizontal pass into tmp (w*h), running sum with clamped edges */
    float inv = 1.0f / (float)(2 * r + 1);
    for (int y = 0; y < h; y++) {
        const float *s = src + y * sstride;
        float *t = tmp + (size_t)y * w;
        double acc = 0;
        for (int k = -r; k <= r; k++)
            acc += s[k < 0 ? 0 : (k >= w ? w - 1 : k)];
        for (int x = 0; x < w; x++) {
            t[x] = (float)(acc * inv);
            int add = x + r + 1, sub = x - r;
            acc += s[add >= w ? w - 1 : add] - s[sub < 0 ? 0 : sub];
        }
    }
    box_vertical(tmp, dst, dstride, w, h, r, inv);
}

/* Largest radius the optimised kernel sums directly (15 taps). */
#define BOX_DIRECT_MAX_R 7

/* The same filter, each output a direct sum of its 2r+1 inputs instead of
 * a running sum: the horizontal pass then has no loop-carried dependency
 * and no per-pixel edge clamp, and vectorises (the vertical pass already
 * did). Matches cm__box_filter_c to float rounding (tests/dsp). */
CM__DSP_CLONES
void cm__box_filter(const float *src, ptrdiff_t sstride, float *dst, ptrdiff_t dstride, int w,
                    int h, int r, float *tmp)
{
    if (cm__dsp_reference() || r > BOX_DIRECT_MAX_R || w <= 2 * r) {
        cm__box_filter_c(src, sstride, dst, dstride, w, h, r, tmp);
        return;
    }
    float inv = 1.0f / (float)(2 * r + 1);
    for (int y = 0; y < h; y++) {
        const float *restrict s = src + y * sstride;
        float *restrict t = tmp + (size_t)y * w;
        for (int x = r; x < w - r; x++)
            t[x] = s[x - r];
        for (int k = -r + 1; k <= r; k++)
            for (int x = r; x < w - r; x++)
                t[x] += s[x + k];
        for (int x = r; x < w - r; x++)
            t[x] *= inv;
        /* the r pixels at each end, clamped */
        for (int x = 0; x < w; x = x == r - 1 ? w - r : x + 1) {
            float acc = 0;
            for (int k = -r; k <= r; k++)
                acc += s[x + k < 0 ? 0 : (x + k >= w ? w - 1 : x + k)];
            t[x] = acc * inv;
            if (r == 0)
                break;
        }
    }
    box_vertical(tmp, dst, dstride, w, h, r, inv);
}

CM__DSP_CLONES
int cm__flat_fill_map(const cm_plane *p, uint8_t *flat)
{
    int w = p->width, h = p->height;
    memset(flat, 0, (size_t)w * h);
    if (w < FLAT_WIN || h < FLAT_WIN)
        return CM_OK;
    /* Row by row (memory order). good[x]: consecutive rows,
     * ending at this one, that run >= 8 from x and repeat the value above,
     * so good[x] >= 8 means an 8x8 window of one value has its bottom-left
     * corner at (x, y). The windows are then dilated to the pixels they
     * cover: horizontally with a running count over the row, vertically
     * with a per-column count over a ring of the last 8 rows. */
    uint8_t *eq = calloc((size_t)w, 1);
    uint8_t *eq2 = calloc((size_t)w, 1);
    uint8_t *eq4 = calloc((size_t)w, 1);
    uint8_t *good = calloc((size_t)w, 1);
    uint8_t *hits = calloc((size_t)w, 1);
    uint8_t *colcnt = calloc((size_t)w, 1);
    uint8_t *ring = calloc((size_t)w * FLAT_WIN, 1);
    int ret = CM_E_NOMEM;
    if (!eq || !eq2 || !eq4 || !good || !hits || !colcnt || !ring)
        goto fail;
    for (int y = 0; y < h + FLAT_WIN - 1; y++) {
        uint8_t *slot = ring + (size_t)(y % FLAT_WIN) * w;
        for (int x = 0; x < w; x++) /* the row leaving the ring */
            colcnt[x] -= slot[x];
        if (y < h) {
            const float *row = p->data + y * p->stride;
            const float *up = y > 0 ? row - p->stride : row;
            /* eq[x]: row[x] == row[x + 1]; a run of 8 from x needs eq at
             * x .. x + 6: AND-doubling (1 -> 2 -> 4 -> 7 wide). Byte
             * arithmetic without branches so the loops vectorise. */
            int m = w - 1; /* eq is defined on [0, w - 1) */
            for (int x = 0; x < m; x++)
                eq[x] = row[x] == row[x + 1];
            for (int x = 0; x + 1 < m; x++)
                eq2[x] = eq[x] & eq[x + 1];
            for (int x = 0; x + 3 < m; x++)
                eq4[x] = eq2[x] & eq2[x + 2];
            for (int x = 0; x + FLAT_WIN <= w; x++) { /* eq[x .. x + 6] */
                uint8_t run8 = eq4[x] & eq4[x + 3];
                uint8_t same = (y > 0) & (row[x] == up[x]);
                uint8_t inc = (uint8_t)(good[x] + (good[x] < FLAT_WIN));
                uint8_t g = run8 ? (same ? inc : 1) : 0;
                good[x] = g;
                hits[x] = g >= FLAT_WIN;
            }
            /* slot[x]: some window starts in [x - 7, x] (OR-doubling) */
            for (int x = 0; x < w; x++)
                eq2[x] = hits[x] | (x >= 1 ? hits[x - 1] : 0);
            for (int x = 0; x < w; x++)
                eq4[x] = eq2[x] | (x >= 2 ? eq2[x - 2] : 0);
            for (int x = 0; x < w; x++)
                slot[x] = eq4[x] | (x >= 4 ? eq4[x - 4] : 0);
        } else {
            memset(slot, 0, (size_t)w);
        }
        for (int x = 0; x < w; x++)
            colcnt[x] += slot[x];
        /* row y - 7 is covered by windows whose bottom is in [y - 7, y] */
        int r = y - (FLAT_WIN - 1);
        if (r >= 0) {
            uint8_t *out = flat + (size_t)r * w;
            for (int x = 0; x < w; x++)
                out[x] = colcnt[x] > 0;
        }
    }
    ret = CM_OK;
fail:
    free(eq);
    free(eq2);
    free(eq4);
    free(good);
    free(hits);
    free(colcnt);
    free(ring);
    return ret;
}

void cm__hp_energy_c(const cm_plane *luma, float *e, float *tmp)
{
    int w = luma->width, h = luma->height, wd = (w + 1) / 2;
    float *box = tmp + (size_t)w * h; /* tmp holds 2 * w * h floats */
    cm__box_filter_c(luma->data, luma->stride, box, w, w, h, HP_R, tmp);
    memset(e, 0, sizeof(float) * (size_t)wd * ((h + 1) / 2));
    for (int y = 0; y < h; y++) {
        const float *s = luma->data + y * luma->stride;
        const float *b = box + (size_t)y * w;
        float *er = e + (size_t)(y / 2) * wd;
        for (int x = 0; x < w; x++) {
            float d = s[x] - b[x];
            er[x / 2] += d * d;
        }
    }
}

/* Fused: horizontal 3-sums of three rows kept in a ring, the vertical sum,
 * the high-pass and its square in one pass over the frame. */
CM__DSP_CLONES
static void hp_energy_fused(const cm_plane *luma, float *e, float *tmp)
{
    int w = luma->width, h = luma->height, wd = (w + 1) / 2;
    float *ring[3] = {tmp, tmp + w, tmp + 2 * (size_t)w};
    float *sq = tmp + 3 * (size_t)w;
    const float inv9 = 1.0f / 9.0f;
    memset(e, 0, sizeof(float) * (size_t)wd * ((h + 1) / 2));
    for (int y = -1; y <= h; y++) {
        /* horizontal sums of row y + 1 (clamped) into its ring slot */
        int src = y + 1 < h ? y + 1 : h - 1;
        if (y + 1 <= h) {
            const float *s = luma->data + src * luma->stride;
            float *hs = ring[(y + 1 + 3) % 3];
            if (w == 1) {
                hs[0] = 3 * s[0];
            } else {
                hs[0] = 2 * s[0] + s[1];
                for (int x = 1; x < w - 1; x++)
                    hs[x] = s[x - 1] + s[x] + s[x + 1];
                hs[w - 1] = s[w - 2] + 2 * s[w - 1];
            }
        }
        if (y < 0 || y >= h)
            continue;
        /* rows y - 1, y, y + 1 (clamped at the edges) */
        const float *a = ring[((y > 0 ? y - 1 : 0) + 3) % 3];
        const float *b = ring[(y + 3) % 3];
        const float *c = ring[((y + 1 < h ? y + 1 : h - 1) + 3) % 3];
        const float *s = luma->data + y * luma->stride;
        float *er = e + (size_t)(y / 2) * wd;
        for (int x = 0; x < w; x++) {
            float d = s[x] - (a[x] + b[x] + c[x]) * inv9;
            sq[x] = d * d;
        }
        for (int x = 0; x < w / 2; x++) /* pairs: contiguous, vectorises */
            er[x] += sq[2 * x] + sq[2 * x + 1];
        if (w & 1)
            er[w / 2] += sq[w - 1];
    }
}

void cm__hp_energy(const cm_plane *luma, float *e, float *tmp)
{
    if (cm__dsp_reference())
        cm__hp_energy_c(luma, e, tmp);
    else
        hp_energy_fused(luma, e, tmp);
}

/* Binary dilation of a w x h byte map by a (2r+1)^2 square, in place
 * (tmp: w*h bytes). Both passes run in memory order: the vertical one keeps
 * a count per column over a sliding window of rows. */
static void dilate_half(uint8_t *map, int w, int h, int r, uint8_t *tmp)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *s = map + (size_t)y * w;
        uint8_t *d = tmp + (size_t)y * w;
        int cnt = 0;
        for (int x = 0; x < r && x < w; x++)
            cnt += s[x];
        for (int x = 0; x < w; x++) {
            if (x + r < w)
                cnt += s[x + r];
            if (x - r - 1 >= 0)
                cnt -= s[x - r - 1];
            d[x] = cnt > 0;
        }
    }
    uint16_t *cnt = calloc((size_t)w, sizeof(uint16_t));
    if (!cnt) { /* no dilation rather than no mask: still a valid map */
        memcpy(map, tmp, (size_t)w * h);
        return;
    }
    for (int y = 0; y < r && y < h; y++)
        for (int x = 0; x < w; x++)
            cnt[x] += tmp[(size_t)y * w + x];
    for (int y = 0; y < h; y++) {
        if (y + r < h)
            for (int x = 0; x < w; x++)
                cnt[x] += tmp[(size_t)(y + r) * w + x];
        if (y - r - 1 >= 0)
            for (int x = 0; x < w; x++)
                cnt[x] -= tmp[(size_t)(y - r - 1) * w + x];
        uint8_t *d = map + (size_t)y * w;
        for (int x = 0; x < w; x++)
            d[x] = cnt[x] > 0;
    }
    free(cnt);
}

int cm__mask_init(cm__mask *m, const cm_plane *luma, const cm__mask_params *mp)
{
    int w = luma->width, h = luma->height;
    int wd = (w + 1) / 2, hd = (h + 1) / 2;
    size_t nd = (size_t)wd * hd;
    /* tmp serves the high-pass (2*w*h for the reference, 3 rows fused) and
     * the half-resolution box filters (nd) */
    size_t ntmp = cm__dsp_reference() ? 2 * (size_t)w * h : 4 * (size_t)w;
    if (ntmp < nd)
        ntmp = nd;
    /* a frame of the size of the last: its buffers again, and no memory
     * faulted in anew (megabytes a frame when stamping a video) */
    if (!(m->act && m->w == w && m->h == h && m->ntmp == ntmp)) {
        cm__mask_free(m);
        m->w = w;
        m->h = h;
        m->wd = wd;
        m->ntmp = ntmp;
        m->tmp = malloc(ntmp * sizeof(float));
        m->act = malloc(nd * sizeof(float));
        m->flat = malloc((size_t)w * h);
        m->near = malloc(nd);
        m->row_half = malloc(sizeof(float) * (size_t)wd);
        m->row_full = malloc(sizeof(float) * (size_t)w);
        m->cap_half = malloc(sizeof(float) * (size_t)wd);
        m->cap_full = malloc(sizeof(float) * (size_t)w);
        m->env_col = malloc(sizeof(float) * (size_t)w);
    }
    m->mp = *mp;
    int ret = CM_E_NOMEM;
    float *tmp = m->tmp;
    if (!tmp || !m->act || !m->flat || !m->near || !m->row_half || !m->row_full ||
        !m->cap_half || !m->cap_full || !m->env_col)
        goto fail;
    for (int x = 0; x < w; x++)
        m->env_col[x] = (float)cos(2 * M_PI * x / ENV_PERIOD);
    cm__hp_energy(luma, m->act, tmp);
    /* activity: RMS of the high-pass over ACT_R (half-resolution pixels),
     * then smoothed over SMOOTH_R so the amplitude changes gently */
    cm__box_filter(m->act, m->wd, m->act, m->wd, m->wd, hd, ACT_R, tmp);
    for (size_t i = 0; i < nd; i++) /* running sums can dip just below 0 */
        m->act[i] = m->act[i] > 0 ? sqrtf(m->act[i] * 0.25f) : 0;
    cm__box_filter(m->act, m->wd, m->act, m->wd, m->wd, hd, SMOOTH_R, tmp);
    if ((ret = cm__flat_fill_map(luma, m->flat)))
        goto fail;
    /* near: half-resolution pixels within ~EDGE_REACH frame px of a fill */
    memset(m->near, 0, nd);
    for (int y = 0; y < h; y++) {
        const uint8_t *restrict f = m->flat + (size_t)y * w;
        uint8_t *restrict nr = m->near + (size_t)(y / 2) * m->wd;
        for (int x = 0; x < w / 2; x++)
            nr[x] |= f[2 * x] | f[2 * x + 1];
        if (w & 1)
            nr[w / 2] |= f[w - 1];
    }
    dilate_half(m->near, m->wd, hd, EDGE_REACH / 2, (uint8_t *)tmp);
fail:
    if (ret)
        cm__mask_free(m);
    return ret;
}

void cm__mask_free(cm__mask *m)
{
    free(m->row_half);
    free(m->row_full);
    free(m->cap_half);
    free(m->cap_full);
    free(m->env_col);
    free(m->near);
    free(m->act);
    free(m->flat);
    free(m->tmp);
    memset(m, 0, sizeof(*m));
}

double cm__sum_sq(const float *v, int n)
{
    float acc[8] = {0}; /* eight lanes: vectorises, and float is plenty per row */
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += v[i + k] * v[i + k];
    double s = 0;
    for (int k = 0; k < 8; k++)
        s += acc[k];
    for (; i < n; i++)
        s += (double)v[i] * v[i];
    return s;
}

/* One row of amplitudes; has_room says lo/hi rows are given (else 0..255
 * around luma). Always inlined into two specialised loops. */
static inline __attribute__((always_inline)) void
mask_row(const cm__mask *m, int y, const float *restrict py, const float *restrict pl,
         const float *restrict ph, float *restrict out, const int has_room)
{
    const cm__mask_params *mp = &m->mp;
    const float *restrict arow = m->act + (size_t)(y / 2) * m->wd;
    const uint8_t *restrict frow = m->flat + (size_t)y * m->w;
    const uint8_t *restrict nrow = m->near + (size_t)(y / 2) * m->wd;
    const float fill = mp->cel_safe ? 0 : mp->flat, edge = mp->flat * EDGE_CAP;
    const float floor_ = mp->flat, gain = mp->gain, maxv = mp->max; /* hoisted: out may alias */
    const float inv_peak = 1.0f / PATTERN_PEAK;
    const float env_row = (float)cos(2 * M_PI * y / ENV_PERIOD);
    const float *restrict env_col = m->env_col;
    /* the amplitude off fills, at half resolution, then expanded to full
     * resolution so the per-pixel loop reads memory in order */
    float *restrict half = m->row_half, *restrict base = m->row_full;
    float *restrict caph = m->cap_half, *restrict capf = m->cap_full;
    for (int x = 0; x < m->wd; x++) {
        /* ink lines and fill edges: capped, or the mark ripples along the
         * line; texture away from fills: the full gain */
        float cap = maxv + (edge - maxv) * (float)nrow[x];
        float v = floor_ + gain * arow[x];
        half[x] = v < cap ? v : cap;
        caph[x] = cap;
    }
    for (int x = 0; x < m->w; x++) {
        base[x] = half[x >> 1];
        capf[x] = caph[x >> 1];
    }
    /* written without branches so the loop vectorises */
    for (int x = 0; x < m->w; x++) {
        /* inside a fill: the floor (nothing if cel-safe) */
        float v = base[x] + (fill - base[x]) * (float)frow[x];
        float room_lo = has_room ? pl[x] : py[x];
        float room_hi = has_room ? ph[x] : 255.0f - py[x];
        float both = (room_lo < room_hi ? room_lo : room_hi) * inv_peak;
        /* texture in the dark, where the eye is blindest (the colour
         * budget's room is widest): the amplitude fills DARK_FILL of a
         * third of the room whatever the activity */
        float dark = (float)(py[x] < DARK_LUMA) * (1.0f - (float)frow[x]);
        float fill_dark = DARK_FILL * both * dark;
        /* never past the caps: the profile's, and the ink lines' */
        fill_dark = fill_dark < capf[x] ? fill_dark : capf[x];
        v = v > fill_dark ? v : fill_dark;
        float wide = (room_lo > room_hi ? room_lo : room_hi) * inv_peak;
        /* near 0 or full scale the mark can only go one way: a reduced
         * one-sided mark (see CM__EXTREME_WHITE / CM__EXTREME_BLACK) */
        float white = (float)(room_lo > room_hi);
        float c = env_col[x] * env_row;
        float eb = (1.0f + CM__ENV_BLACK_DEPTH * c) * CM__ENV_BLACK_NORM;
        eb = eb > 0 ? eb : 0;
        float env = sqrtf(eb + (1.0f + c - eb) * white); /* of >= 0: no NaN */
        float f = v * env * (CM__EXTREME_BLACK + (CM__EXTREME_WHITE - CM__EXTREME_BLACK) * white);
        float one = f < wide ? f : wide;
        float lim = both > one ? both : one;
        float use_lim = (float)(v > both);
        out[x] = v + (lim - v) * use_lim;
    }
}

CM__DSP_CLONES
void cm__mask_row(const cm__mask *m, int y, const float *py, const float *pl, const float *ph,
                  float *out)
{
    if (pl && ph)
        mask_row(m, y, py, pl, ph, out, 1);
    else
        mask_row(m, y, py, NULL, NULL, out, 0);
}

int cm__mask_compute(const cm_plane *luma, const cm_plane *lo, const cm_plane *hi,
                     const cm__mask_params *mp, float *amp, double *mean_sq)
{
    cm__mask m = {0};
    int ret = cm__mask_init(&m, luma, mp);
    if (ret)
        return ret;
    double sq = 0;
    for (int y = 0; y < luma->height; y++) {
        float *row = amp + (size_t)y * luma->width;
        cm__mask_row(&m, y, luma->data + y * luma->stride, lo ? lo->data + y * lo->stride : NULL,
                     hi ? hi->data + y * hi->stride : NULL, row);
        sq += cm__sum_sq(row, luma->width);
    }
    if (mean_sq)
        *mean_sq = sq / ((double)luma->width * luma->height);
    cm__mask_free(&m);
    return CM_OK;
}
