/* Invisibility measures and the flat-fill crop of bench/robustness
 * (see invisibility.h). */
#include "invisibility.h"

#include "watermark/fft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLAT_WIN 8              /* flat fill: 8x8 pixels of one RGB colour */
#define PEAK 255.0              /* 8-bit code value peak */
#define SSIM_SIGMA 1.5          /* SSIM Gaussian window (Wang et al. 2004), pixels */
#define SSIM_RADIUS 5           /* 11x11 window */
#define SSIM_K1 0.01
#define SSIM_K2 0.03
/* Viewing geometry of the CSF weighting: 60 pixels per degree is 1 arcmin
 * per pixel (20/20 acuity; 1080p at ~3.2 picture heights, the HD reference
 * distance); the 2x zoom an artist uses to inspect paint halves it. */
#define CSF_PX_PER_DEG 60.0

/* the flat-fill crop */
#define CROP_GAP 8              /* grey gap between panels, output pixels */
#define CROP_STEP 8             /* candidate centres searched on this grid, pixels */
#define INK_LUMA_MAX 60.0       /* "ink": luma below this, code values */
#define INK_NEAR 20             /* an ink pixel within this distance, pixels */
#define FILL_LUMA_MIN 64.0      /* prefer mid-tone fills, where mottling shows */
#define FILL_LUMA_MAX 230.0
#define CROP_INK_MIN 0.02       /* the region holds at least this share of ink... */
#define CROP_INK_MAX 0.15       /* ...and at most this (a line, not a black area) */


/*
 * Flat-fill map of an 8-bit RGB image: flat[i] = 1 when pixel i lies inside
 * some 8x8 window whose 64 pixels have one RGB colour. Same definition as the
 * library's cel-safe test, but on the colour, not on luma (an independent
 * check, and slightly stricter). Returns the number of flat pixels, or -1 when
 * out of memory.
 */
long flat_fill_map(const cm_image *img, uint8_t *flat)
{
    int w = img->width, h = img->height;
    memset(flat, 0, (size_t)w * h);
    if (w < FLAT_WIN || h < FLAT_WIN)
        return 0;
    uint32_t *col = malloc(sizeof(uint32_t) * (size_t)w * h);
    uint8_t *run = malloc((size_t)w * h);
    if (!col || !run) {
        free(col);
        free(run);
        return -1;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px(img, x, y);
            col[(size_t)y * w + x] = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    /* run[i]: equal colours to the right of i, including i, capped at FLAT_WIN */
    for (int y = 0; y < h; y++) {
        const uint32_t *c = col + (size_t)y * w;
        uint8_t *r = run + (size_t)y * w;
        r[w - 1] = 1;
        for (int x = w - 2; x >= 0; x--)
            r[x] = c[x] == c[x + 1] ? (uint8_t)(r[x + 1] < FLAT_WIN ? r[x + 1] + 1 : FLAT_WIN)
                                    : 1;
    }
    /* window with top-left (x, y0) is flat when 8 consecutive rows run >= 8
     * from x and column x holds one colour; mark its 64 pixels */
    for (int x = 0; x + FLAT_WIN <= w; x++) {
        int good = 0;
        for (int y = 0; y < h; y++) {
            size_t i = (size_t)y * w + x;
            if (run[i] < FLAT_WIN)
                good = 0;
            else if (good > 0 && col[i] == col[i - w])
                good++;
            else
                good = 1;
            if (good >= FLAT_WIN)
                for (int dy = 0; dy < FLAT_WIN; dy++)
                    memset(flat + (size_t)(y - dy) * w + x, 1, FLAT_WIN);
        }
    }
    long n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++)
        n += flat[i];
    free(col);
    free(run);
    return n;
}

/* ---- invisibility measures ---------------------------------------------- */

double psnr(const cm_plane *a, const cm_plane *b)
{
    double se = 0;
    for (int y = 0; y < a->height; y++) {
        const float *pa = a->data + y * a->stride, *pb = b->data + y * b->stride;
        for (int x = 0; x < a->width; x++) {
            double d = (double)pa[x] - pb[x];
            se += d * d;
        }
    }
    double mse = se / ((double)a->width * a->height);
    if (mse <= 0)
        return PSNR_CAP_DB;
    double v = 10.0 * log10(PEAK * PEAK / mse);
    return v < PSNR_CAP_DB ? v : PSNR_CAP_DB;
}

/* Separable Gaussian blur of src (w*h, packed) into dst, clamped edges. */
static void gauss_blur(const float *src, float *dst, float *tmp, int w, int h,
                       const float *k, int r)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0;
            for (int j = -r; j <= r; j++) {
                int xx = x + j < 0 ? 0 : (x + j >= w ? w - 1 : x + j);
                acc += k[j + r] * src[(size_t)y * w + xx];
            }
            tmp[(size_t)y * w + x] = acc;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float acc = 0;
            for (int j = -r; j <= r; j++) {
                int yy = y + j < 0 ? 0 : (y + j >= h ? h - 1 : y + j);
                acc += k[j + r] * tmp[(size_t)yy * w + x];
            }
            dst[(size_t)y * w + x] = acc;
        }
}

/*
 * Mean SSIM of two luma planes (Wang, Bovik, Sheikh, Simoncelli 2004):
 * 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, averaged over
 * the pixels whose window lies inside the frame. Returns -1 when out of memory.
 */
double ssim(const cm_plane *a, const cm_plane *b)
{
    int w = a->width, h = a->height, r = SSIM_RADIUS;
    size_t n = (size_t)w * h;
    float k[2 * SSIM_RADIUS + 1], ks = 0;
    for (int j = -r; j <= r; j++)
        ks += k[j + r] = (float)exp(-(j * j) / (2.0 * SSIM_SIGMA * SSIM_SIGMA));
    for (int j = 0; j <= 2 * r; j++)
        k[j] /= ks;
    float *buf = malloc(sizeof(float) * n * 7);
    if (!buf)
        return -1;
    float *x = buf, *y = buf + n, *mx = buf + 2 * n, *my = buf + 3 * n;
    float *prod = buf + 4 * n, *tmp = buf + 5 * n, *out = buf + 6 * n;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            x[(size_t)j * w + i] = a->data[j * a->stride + i];
            y[(size_t)j * w + i] = b->data[j * b->stride + i];
        }
    gauss_blur(x, mx, tmp, w, h, k, r);
    gauss_blur(y, my, tmp, w, h, k, r);
    const double c1 = (SSIM_K1 * PEAK) * (SSIM_K1 * PEAK);
    const double c2 = (SSIM_K2 * PEAK) * (SSIM_K2 * PEAK);
    /* sxx, syy, sxy in turn; the SSIM map is assembled in out */
    double *num = calloc(n, sizeof(double)), *den = calloc(n, sizeof(double));
    if (!num || !den) {
        free(num);
        free(den);
        free(buf);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        prod[i] = x[i] * x[i];
    gauss_blur(prod, out, tmp, w, h, k, r);
    for (size_t i = 0; i < n; i++)
        den[i] = out[i] - (double)mx[i] * mx[i];
    for (size_t i = 0; i < n; i++)
        prod[i] = y[i] * y[i];
    gauss_blur(prod, out, tmp, w, h, k, r);
    for (size_t i = 0; i < n; i++)
        den[i] += out[i] - (double)my[i] * my[i];
    for (size_t i = 0; i < n; i++)
        prod[i] = x[i] * y[i];
    gauss_blur(prod, out, tmp, w, h, k, r);
    for (size_t i = 0; i < n; i++)
        num[i] = out[i] - (double)mx[i] * my[i];
    double sum = 0;
    long cnt = 0;
    for (int j = r; j < h - r; j++)
        for (int i = r; i < w - r; i++) {
            size_t p = (size_t)j * w + i;
            double m = (double)mx[p] * my[p];
            double m2 = (double)mx[p] * mx[p] + (double)my[p] * my[p];
            sum += (2 * m + c1) * (2 * num[p] + c2) / ((m2 + c1) * (den[p] + c2));
            cnt++;
        }
    free(num);
    free(den);
    free(buf);
    return cnt ? sum / cnt : 1.0;
}

/* Mannos-Sakrison (1974) contrast sensitivity at f cycles/degree; peak ~0.98
 * near 8 c/deg. */
static double csf_mannos_sakrison(double f)
{
    return 2.6 * (0.0192 + 0.114 * f) * exp(-pow(0.114 * f, 1.1));
}

/*
 * CSF-weighted error inside flat fills. PSNR treats every frequency alike; the
 * eye does not, and the mark's faint mottling on a flat colour is what an
 * artist sees. So the luma difference d = stamped - original (zero-padded to
 * an FFT size; the difference has compact support, so padding adds no edge)
 * is filtered in the frequency domain by the Mannos-Sakrison CSF normalised
 * to 1 at its peak, with f (cycles/degree) = radial frequency (cycles/pixel)
 * x pixels per degree; then the RMS of the filtered difference is taken over
 * the flat-fill pixels. Result in code values "as seen at peak sensitivity":
 * it equals the plain RMS for a mark at ~8 c/deg and shrinks for energy the
 * eye weighs less. The filter spreads changes next to a fill into it, so
 * cel-safe frames (flat pixels bit-exact) still show a small value here: that
 * is the halo of the edge changes as the eye integrates it, not a bug.
 * Computed for 1 arcmin per pixel and for a 2x zoom
 * (px_per_deg / CSF_ZOOM). out[0], out[1]: the two RMS values (0 when the
 * frame has no flat pixel). Returns CM_OK or CM_E_NOMEM.
 */
int csf_weighted_flat_rms(const cm_plane *orig, const cm_plane *marked, const uint8_t *flat,
                          double out[2])
{
    int w = orig->width, h = orig->height;
    int fw = cm__fft_good_size(w), fh = cm__fft_good_size(h);
    size_t fn = (size_t)fw * fh;
    cm__fft2 fft;
    if (cm__fft2_init(&fft, fw, fh))
        return CM_E_NOMEM;
    AVComplexFloat *spec = malloc(sizeof(AVComplexFloat) * fn);
    AVComplexFloat *work = malloc(sizeof(AVComplexFloat) * fn);
    if (!spec || !work) {
        free(spec);
        free(work);
        cm__fft2_free(&fft);
        return CM_E_NOMEM;
    }
    memset(spec, 0, sizeof(AVComplexFloat) * fn);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            spec[(size_t)y * fw + x].re =
                marked->data[y * marked->stride + x] - orig->data[y * orig->stride + x];
    cm__fft2_run(&fft, spec, 0);

    /* peak of the CSF, found numerically */
    double peak = 0;
    for (double f = 0.1; f < 60; f += 0.01) {
        double c = csf_mannos_sakrison(f);
        if (c > peak)
            peak = c;
    }
    for (int pass = 0; pass < 2; pass++) {
        double ppd = pass == 0 ? CSF_PX_PER_DEG : CSF_PX_PER_DEG / CSF_ZOOM;
        for (int v = 0; v < fh; v++) {
            double fy = (v <= fh / 2 ? v : v - fh) / (double)fh;
            for (int u = 0; u < fw; u++) {
                double fx = (u <= fw / 2 ? u : u - fw) / (double)fw;
                double g = csf_mannos_sakrison(sqrt(fx * fx + fy * fy) * ppd) / peak;
                size_t i = (size_t)v * fw + u;
                work[i].re = (float)(spec[i].re * g);
                work[i].im = (float)(spec[i].im * g);
            }
        }
        cm__fft2_run(&fft, work, 1);
        double se = 0, norm = 1.0 / (double)fn;
        long cnt = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (flat[(size_t)y * w + x]) {
                    double d = work[(size_t)y * fw + x].re * norm;
                    se += d * d;
                    cnt++;
                }
        out[pass] = cnt ? sqrt(se / cnt) : 0;
    }
    free(spec);
    free(work);
    cm__fft2_free(&fft);
    return CM_OK;
}

/* ---- the flat-fill crop ------------------------------------------------- */


/* Sum of a w*h integral image over [x0, x1) x [y0, y1). */
static long box_sum(const long *ii, int w, int x0, int y0, int x1, int y1)
{
    int W = w + 1;
    return ii[(size_t)y1 * W + x1] - ii[(size_t)y0 * W + x1] - ii[(size_t)y1 * W + x0] +
           ii[(size_t)y0 * W + x0];
}

static int integral(const uint8_t *m, int w, int h, long **out)
{
    int W = w + 1;
    long *ii = calloc((size_t)W * (h + 1), sizeof(long));
    if (!ii)
        return CM_E_NOMEM;
    for (int y = 0; y < h; y++) {
        long row = 0;
        for (int x = 0; x < w; x++) {
            row += m[(size_t)y * w + x];
            ii[(size_t)(y + 1) * W + x + 1] = ii[(size_t)y * W + x + 1] + row;
        }
    }
    *out = ii;
    return CM_OK;
}

/*
 * Where a flat fill meets an ink line: over centres on a CROP_STEP grid that
 * are flat, mid-tone, and have an ink pixel (luma < INK_LUMA_MAX) within
 * INK_NEAR px, the CROP_SIDE square with the most flat pixels whose ink share
 * is that of a line. Falls back to the flattest square with any ink.
 */
int find_crop(const cm_image *img, const cm_plane *luma, const uint8_t *flat, crop_box *box)
{
    int w = img->width, h = img->height, half = CROP_SIDE / 2;
    uint8_t *ink = malloc((size_t)w * h);
    long *iflat = NULL, *iink = NULL;
    box->x = box->y = -1;
    if (!ink)
        return CM_E_NOMEM;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            ink[(size_t)y * w + x] = luma->data[y * luma->stride + x] < INK_LUMA_MAX;
    int ret = integral(flat, w, h, &iflat);
    if (!ret)
        ret = integral(ink, w, h, &iink);
    if (ret)
        goto done;
    long area = (long)CROP_SIDE * CROP_SIDE, best = -1, best_any = -1;
    crop_box any = {-1, -1};
    for (int cy = half; cy + half <= h; cy += CROP_STEP)
        for (int cx = half; cx + half <= w; cx += CROP_STEP) {
            float l = luma->data[cy * luma->stride + cx];
            if (!flat[(size_t)cy * w + cx] || l < FILL_LUMA_MIN || l > FILL_LUMA_MAX)
                continue;
            int nx0 = cx - INK_NEAR < 0 ? 0 : cx - INK_NEAR;
            int ny0 = cy - INK_NEAR < 0 ? 0 : cy - INK_NEAR;
            int nx1 = cx + INK_NEAR + 1 > w ? w : cx + INK_NEAR + 1;
            int ny1 = cy + INK_NEAR + 1 > h ? h : cy + INK_NEAR + 1;
            if (box_sum(iink, w, nx0, ny0, nx1, ny1) == 0)
                continue;
            int x0 = cx - half, y0 = cy - half;
            long nf = box_sum(iflat, w, x0, y0, x0 + CROP_SIDE, y0 + CROP_SIDE);
            long ni = box_sum(iink, w, x0, y0, x0 + CROP_SIDE, y0 + CROP_SIDE);
            if (nf > best_any) {
                best_any = nf;
                any = (crop_box){x0, y0};
            }
            if (ni >= CROP_INK_MIN * area && ni <= CROP_INK_MAX * area && nf > best) {
                best = nf;
                *box = (crop_box){x0, y0};
            }
        }
    if (box->x < 0)
        *box = any;
done:
    free(ink);
    free(iflat);
    free(iink);
    return ret;
}

/* original | stamped | difference x16 around grey, each CROP_ZOOM x. */
int write_crop(cm_ctx *ctx, const cm_image *orig, const cm_image *marked, crop_box box,
               const char *path)
{
    int side = CROP_SIDE * CROP_ZOOM;
    int W = 3 * side + 2 * CROP_GAP, H = side;
    cm_image *out = NULL;
    int ret = cm_image_new(&out, W, H, 3, 0, 8);
    if (ret)
        return ret;
    for (int y = 0; y < H; y++)
        memset(out->data + y * out->stride, 128, (size_t)W * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < side; x++) {
            int sx = box.x + x / CROP_ZOOM, sy = box.y + y / CROP_ZOOM;
            const uint8_t *a = px(orig, sx, sy), *b = px(marked, sx, sy);
            uint8_t *row = out->data + y * out->stride;
            for (int c = 0; c < 3; c++) {
                row[3 * x + c] = a[c];
                row[3 * (side + CROP_GAP + x) + c] = b[c];
                double d = 128.0 + CROP_DIFF_GAIN * ((int)b[c] - (int)a[c]);
                row[3 * (2 * (side + CROP_GAP) + x) + c] =
                    (uint8_t)(d < 0 ? 0 : (d > 255 ? 255 : lround(d)));
            }
        }
    ret = cm_image_write(ctx, out, path, CM_WRITE_FORCE);
    cm_image_free(&out);
    return ret;
}
