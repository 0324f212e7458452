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
    /* vertical pass, column sums kept per x */
    double *col = calloc((size_t)w, sizeof(double));
    if (!col)
        return;
    for (int x = 0; x < w; x++)
        for (int k = -r; k <= r; k++)
            col[x] += tmp[(size_t)(k < 0 ? 0 : (k >= h ? h - 1 : k)) * w + x];
    for (int y = 0; y < h; y++) {
        float *d = dst + y * dstride;
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

int cm__flat_fill_map(const cm_plane *p, uint8_t *flat)
{
    int w = p->width, h = p->height;
    memset(flat, 0, (size_t)w * h);
    if (w < FLAT_WIN || h < FLAT_WIN)
        return CM_OK;
    int ww = w - FLAT_WIN + 1, wh = h - FLAT_WIN + 1;
    /* run[y][x]: length of the run of equal values starting at x (capped) */
    uint8_t *hrun = malloc((size_t)w * h);
    uint8_t *win = calloc((size_t)ww * wh, 1);
    if (!hrun || !win) {
        free(hrun);
        free(win);
        return CM_E_NOMEM;
    }
    for (int y = 0; y < h; y++) {
        const float *row = p->data + y * p->stride;
        uint8_t *hr = hrun + (size_t)y * w;
        hr[w - 1] = 1;
        for (int x = w - 2; x >= 0; x--)
            hr[x] = row[x] == row[x + 1] ? (uint8_t)(hr[x + 1] < FLAT_WIN ? hr[x + 1] + 1 : FLAT_WIN) : 1;
    }
    /* a window is flat when its 8 rows each run >= 8 from x and its first
     * column holds one value */
    for (int x = 0; x < ww; x++) {
        int good = 0; /* consecutive rows ending at y that run and match the row above */
        for (int y = 0; y < h; y++) {
            int ok = hrun[(size_t)y * w + x] >= FLAT_WIN;
            if (!ok)
                good = 0;
            else if (good > 0 && p->data[y * p->stride + x] == p->data[(y - 1) * p->stride + x])
                good++;
            else
                good = 1;
            if (good >= FLAT_WIN)
                win[(size_t)(y - FLAT_WIN + 1) * ww + x] = 1;
        }
    }
    /* dilate: a pixel is flat if any flat window covers it */
    for (int y = 0; y < wh; y++)
        for (int x = 0; x < ww; x++)
            if (win[(size_t)y * ww + x])
                for (int dy = 0; dy < FLAT_WIN; dy++)
                    memset(flat + (size_t)(y + dy) * w + x, 1, FLAT_WIN);
    free(hrun);
    free(win);
    return CM_OK;
}

int cm__mask_compute(const cm_plane *luma, const cm_plane *lo, const cm_plane *hi,
                     const cm__mask_params *mp, float *amp, double *mean_sq)
{
    int w = luma->width, h = luma->height;
    int wd = (w + 1) / 2, hd = (h + 1) / 2;
    size_t n = (size_t)w * h, nd = (size_t)wd * hd;
    float *box = malloc(n * sizeof(float));
    float *tmp = malloc(n * sizeof(float));
    float *act = calloc(nd, sizeof(float));
    uint8_t *flat = mp->cel_safe ? malloc(n) : NULL;
    int ret = CM_E_NOMEM;
    if (!box || !tmp || !act || (mp->cel_safe && !flat))
        goto fail;

    /* energy of the high-pass Y - box3(Y), summed over 2x2 blocks */
    cm__box_filter_c(luma->data, luma->stride, box, w, w, h, HP_R, tmp);
    for (int y = 0; y < h; y++) {
        const float *s = luma->data + y * luma->stride;
        const float *b = box + (size_t)y * w;
        float *e = act + (size_t)(y / 2) * wd;
        for (int x = 0; x < w; x++) {
            float d = s[x] - b[x];
            e[x / 2] += d * d;
        }
    }
    /* activity: RMS of the high-pass over ACT_R (half-resolution pixels),
     * then smoothed over SMOOTH_R so the amplitude changes gently */
    cm__box_filter_c(act, wd, act, wd, wd, hd, ACT_R, tmp);
    for (size_t i = 0; i < nd; i++) /* running sums can dip just below 0 */
        act[i] = act[i] > 0 ? sqrtf(act[i] * 0.25f) : 0;
    cm__box_filter_c(act, wd, act, wd, wd, hd, SMOOTH_R, tmp);

    if (flat && (ret = cm__flat_fill_map(luma, flat)))
        goto fail;
    double sq = 0;
    for (int y = 0; y < h; y++) {
        const float *pl = lo ? lo->data + y * lo->stride : NULL;
        const float *ph = hi ? hi->data + y * hi->stride : NULL;
        const float *py = luma->data + y * luma->stride;
        const float *arow = act + (size_t)(y / 2) * wd;
        float *out = amp + (size_t)y * w;
        double rsq = 0;
        for (int x = 0; x < w; x++) {
            float v = mp->flat + mp->gain * arow[x / 2];
            if (v > mp->max)
                v = mp->max;
            float room_lo = pl ? pl[x] : py[x];
            float room_hi = ph ? ph[x] : 255.0f - py[x];
            float room = (room_lo < room_hi ? room_lo : room_hi) / PATTERN_PEAK;
            if (v > room)
                v = room > 0 ? room : 0;
            if (flat && flat[(size_t)y * w + x])
                v = 0;
            out[x] = v;
            rsq += v * v;
        }
        sq += rsq;
    }
    if (mean_sq)
        *mean_sq = sq / (double)n;
    ret = CM_OK;
fail:
    free(box);
    free(tmp);
    free(act);
    free(flat);
    return ret;
}
