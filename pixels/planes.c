/*
 * The luma plane of an image and the marks' way back into its samples.
 *
 * The watermark core only sees a cm_plane of luma in 8-bit code values:
 *
 *   grey      Y = g / s
 *   RGB       Y = (0.299 R + 0.587 G + 0.114 B) / s      s = 1 (8 bit), 257 (16 bit)
 *
 * and its change is mapped back by adding the same delta (times s) to every
 * colour channel, so hue is kept and an unchanged plane is an exact no-op:
 *
 *   c' = clamp(floor(c + (marked - orig) * s + 0.5), 0, 255 or 65535)
 *
 * Alpha is never changed, and fully transparent pixels keep their colour
 * (their headroom is 0 both ways, so the core puts no energy there). With a
 * colour budget (pixels/colour.h) the headroom and the written pixels also
 * keep each pixel's CIEDE2000 within it.
 */
#include "pixels.h"

#include "colour.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- planes ----------------------------------------------------------- */

int cm_plane_alloc(cm_plane *p, int width, int height)
{
    if (!p)
        return CM_E_INVAL;
    memset(p, 0, sizeof(*p));
    if (width <= 0 || height <= 0)
        return CM_E_INVAL;
    size_t n;
    if (cm__mul_size((size_t)width, (size_t)height, &n))
        return CM_E_LIMIT;
    if (!(p->data = cm__calloc_array(n, sizeof(float))))
        return CM_E_NOMEM;
    p->width = width;
    p->height = height;
    p->stride = width;
    return CM_OK;
}

void cm_plane_free(cm_plane *p)
{
    if (!p)
        return;
    free(p->data);
    memset(p, 0, sizeof(*p));
}

static int plane_matches(const cm_plane *p, const cm_image *img)
{
    return p && p->data && p->width == img->width && p->height == img->height &&
           p->stride >= p->width;
}

/* Sample i of a row, 8 or 16 bit. */
static inline unsigned sample_get(const uint8_t *row, int depth, int i)
{
    if (depth == 16)
        return ((const uint16_t *)(const void *)row)[i];
    return row[i];
}

static inline void sample_set(uint8_t *row, int depth, int i, unsigned v)
{
    if (depth == 16)
        ((uint16_t *)(void *)row)[i] = (uint16_t)v;
    else
        row[i] = (uint8_t)v;
}


/*
 * Row kernels. Each takes the layout (depth, channels, alpha) as arguments
 * and is always inlined; ROW_DISPATCH calls it with constants for the common
 * layouts so the compiler specialises (and vectorises) each, and with
 * variables for the rest. One definition, so all layouts behave alike.
 */
#define CM__ALWAYS_INLINE static inline __attribute__((always_inline))

CM__ALWAYS_INLINE void luma_row(const int depth, const int ch, const int alpha,
                                const uint8_t *row, float *dst, int w)
{
    const float inv = depth == 16 ? 1.0f / 257.0f : 1.0f;
    const int nc = ch - alpha;
    for (int x = 0; x < w; x++) {
        const int i = x * ch;
        if (nc == 3)
            dst[x] = (0.299f * (float)sample_get(row, depth, i) +
                      0.587f * (float)sample_get(row, depth, i + 1) +
                      0.114f * (float)sample_get(row, depth, i + 2)) *
                     inv;
        else
            dst[x] = (float)sample_get(row, depth, i) * inv;
    }
}

/* The pixel at sample i as an RGB colour on the 8-bit scale (grey: r = g = b). */
CM__ALWAYS_INLINE void pixel_rgb(const int depth, const int nc, const uint8_t *row, int i,
                                 float rgb[3])
{
    const float inv = depth == 16 ? 1.0f / 257.0f : 1.0f;
    for (int k = 0; k < 3; k++)
        rgb[k] = (float)sample_get(row, depth, i + (nc == 3 ? k : 0)) * inv;
}

/* The colour budget's room of the pixel at sample i. */
CM__ALWAYS_INLINE const cm__room_cell *pixel_room(const int depth, const int nc,
                                                  const uint8_t *row, int i, const cm__room *room)
{
    const unsigned r = sample_get(row, depth, i);
    const int shift = depth == 16 ? 8 : 0;
    if (nc < 3)
        return cm__room_at_samples(room, r, r, r, shift);
    return cm__room_at_samples(room, r, sample_get(row, depth, i + 1),
                               sample_get(row, depth, i + 2), shift);
}

/* How far luma may move down (pl) and up (ph) before a channel clips, and,
 * given a colour budget (room, may be NULL), before the pixel's colour
 * difference exceeds it. */
CM__ALWAYS_INLINE void headroom_row(const int depth, const int ch, const int alpha,
                                    const uint8_t *row, float *pl, float *ph,
                                    const cm__room *room, int w)
{
    const int nc = ch - alpha;
    const unsigned maxv = depth == 16 ? 65535u : 255u;
    const float inv = depth == 16 ? 1.0f / 257.0f : 1.0f;
    for (int x = 0; x < w; x++) {
        const int i = x * ch;
        unsigned down = maxv, up = maxv;
        for (int c = 0; c < nc; c++) {
            unsigned v = sample_get(row, depth, i + c);
            down = v < down ? v : down;
            up = maxv - v < up ? maxv - v : up;
        }
        /* fully transparent: the colour is not shown, keep it */
        int hidden = alpha && sample_get(row, depth, i + nc) == 0;
        pl[x] = hidden ? 0.0f : (float)down * inv;
        ph[x] = hidden ? 0.0f : (float)up * inv;
        if (room) {
            cm__room_limit(pixel_room(depth, nc, row, i, room), 1.0f, 0.0f, &pl[x], &ph[x]);
        }
    }
}

/* The pixel's channels moved by d along luma and c along blue-yellow (8-bit
 * scale, times scale), rounded half away from zero and clamped: into out.
 * Returns 1 if a channel was clamped (the move was not the one asked). */
CM__ALWAYS_INLINE int moved_samples(const int depth, const int nc, const uint8_t *row, int i,
                                    float d, float c, unsigned out[3])
{
    int clamped = 0;
    const float scale = depth == 16 ? 257.0f : 1.0f;
    const float maxv = depth == 16 ? 65535.0f : 255.0f;
    for (int k = 0; k < nc; k++) {
        /* luma change on every channel; the chroma change moves B one
         * way and R, G the other, at constant luma */
        float dk = d + (nc == 3 ? (k == 2 ? c : -CM__CHROMA_RG * c) : 0.0f);
        float v = (float)sample_get(row, depth, i + k) + dk * scale + 0.5f;
        /* clamp, then truncate: floor(v + 0.5) for v > 0, i.e. round
         * half away from zero, without a libm call per sample */
        clamped |= v < 0.0f || v > maxv + 0.5f;
        v = v < 0.0f ? 0.0f : (v > maxv ? maxv : v);
        out[k] = (unsigned)v;
    }
    return clamped;
}

/* Within this radius of the rooms (the luma and chroma shares' steps over
 * their rooms, as a Euclidean length) a pixel's change is taken to be within
 * the colour budget without computing it (apply_row). */
#define ROOM_RADIUS 0.7f

/* CIEDE2000 between the pixel (orig, 8-bit scale) and the samples s. */
static double samples_de(int depth, int nc, const float orig[3], const unsigned s[3])
{
    const float inv = depth == 16 ? 1.0f / 257.0f : 1.0f;
    float moved[3];
    for (int k = 0; k < 3; k++)
        moved[k] = (float)s[nc == 3 ? k : 0] * inv;
    return cm__de00_rgb(orig, moved);
}

/* The change (d, c) of one pixel went past the colour budget de: shrink it
 * until the rounded result is within, the chroma share first (it is what
 * tints dark neutrals; the luma share is what survives greyscale and
 * video), then the luma share. Bisection on a factor, keeping the largest
 * found within; the unchanged pixel (factor 0) always is. */
static void fit_budget(int depth, int nc, const uint8_t *row, int i, const float orig[3],
                       float d, float c, float de, unsigned out[3])
{
    unsigned s[3];
    moved_samples(depth, nc, row, i, d, 0, s);
    int luma_fits = samples_de(depth, nc, orig, s) <= de;
    float lo = 0, hi = 1;
    for (int step = 0; step < 7; step++) {
        float f = 0.5f * (lo + hi);
        if (luma_fits)
            moved_samples(depth, nc, row, i, d, c * f, s);
        else
            moved_samples(depth, nc, row, i, d * f, 0, s);
        if (samples_de(depth, nc, orig, s) <= de)
            lo = f;
        else
            hi = f;
    }
    if (luma_fits)
        moved_samples(depth, nc, row, i, d, c * lo, out);
    else
        moved_samples(depth, nc, row, i, d * lo, 0, out);
}

CM__ALWAYS_INLINE void apply_row(const int depth, const int ch, const int alpha,
                                 uint8_t *row, const float *po, const float *pm,
                                 const float *dc, const cm__room *room, int w)
{
    const int nc = ch - alpha;
    const float scale = depth == 16 ? 257.0f : 1.0f;
    for (int x = 0; x < w; x++) {
        const float d = pm[x] - po[x];
        float c = dc && nc == 3 ? dc[x] : 0.0f;
        const int i = x * ch;
        if (c != 0.0f) {
            /* the chroma share never clips a channel: clamp it to the
             * pixel's room along the blue-yellow axis (8-bit units) */
            const float inv = 1.0f / scale, k = CM__CHROMA_RG;
            float r = (float)sample_get(row, depth, i) * inv;
            float g = (float)sample_get(row, depth, i + 1) * inv;
            float b = (float)sample_get(row, depth, i + 2) * inv;
            float up = 255.0f - b, rg_up = (r < g ? r : g) / k;
            float down = b, rg_down = (255.0f - (r > g ? r : g)) / k;
            up = up < rg_up ? up : rg_up;
            down = down < rg_down ? down : rg_down;
            c = c > up ? up : (c < -down ? -down : c);
        }
        if ((d == 0.0f && c == 0.0f) || !isfinite(d) || !isfinite(c))
            continue; /* unchanged: stays bit-exact */
        if (alpha && sample_get(row, depth, i + nc) == 0)
            continue; /* fully transparent: colour not shown, keep it */
        unsigned out[3] = {0, 0, 0};
        if (!room) {
            moved_samples(depth, nc, row, i, d, c, out);
        } else {
            /* within the colour budget: CIEDE2000 weighs a lightness
             * change and a chroma/hue change as the two sides of a right
             * angle, so the shares' steps over their rooms, as a length,
             * say how far into the budget the pixel goes; over random
             * colours the pixel's ΔE00 came to at most 1.36 times that
             * length over the budget (saturated blues, where the
             * blue-region rotation and the luma step's own chroma change
             * add up). Within ROOM_RADIUS (1 / 1.36, rounded down) it is
             * within; beyond, the rounded pixel is checked exactly and
             * shrunk if it is past. */
            const cm__room_cell *cell = pixel_room(depth, nc, row, i, room);
            /* the luma share's part of the radius, and the chroma share
             * kept to what is left: where a colour shows blue most (dark
             * neutrals) it gets least */
            float ld = (fabsf(d) + 0.5f) / (d > 0 ? cell->luma_up : cell->luma_down);
            float left2 = ROOM_RADIUS * ROOM_RADIUS - ld * ld;
            float left = left2 > 0 ? sqrtf(left2) : 0;
            float cup = left * cell->blue_up - 0.5f, cdown = left * cell->blue_down - 0.5f;
            cup = cup > 0 ? cup : 0;
            cdown = cdown > 0 ? cdown : 0;
            c = c > cup ? cup : (c < -cdown ? -cdown : c);
            int clamped = moved_samples(depth, nc, row, i, d, c, out);
            /* exactly where it could be near: the luma share past the
             * radius, or a channel clipped */
            if (clamped || !(ld <= ROOM_RADIUS)) {
                float orig[3];
                pixel_rgb(depth, nc, row, i, orig);
                if (samples_de(depth, nc, orig, out) > room->de)
                    fit_budget(depth, nc, row, i, orig, d, c, room->de, out);
            }
        }
        for (int k = 0; k < nc; k++)
            sample_set(row, depth, i + k, out[k]);
    }
}

/* Chroma (B - Y, 8-bit code values) and how far it may move either way
 * along the blue-yellow axis without clipping any channel. 0 for grey. */
CM__ALWAYS_INLINE void chroma_row(const int depth, const int ch, const int alpha,
                                  const uint8_t *row, float *pc, float *pl, float *ph, int w)
{
    const int nc = ch - alpha;
    const float inv = depth == 16 ? 1.0f / 257.0f : 1.0f;
    const float maxv = 255.0f, k = CM__CHROMA_RG;
    for (int x = 0; x < w; x++) {
        const int i = x * ch;
        if (nc < 3 || (alpha && sample_get(row, depth, i + nc) == 0)) {
            pc[x] = pl[x] = ph[x] = 0.0f;
            continue;
        }
        float r = (float)sample_get(row, depth, i) * inv;
        float g = (float)sample_get(row, depth, i + 1) * inv;
        float b = (float)sample_get(row, depth, i + 2) * inv;
        pc[x] = b - (0.299f * r + 0.587f * g + 0.114f * b);
        float up = maxv - b, down = b;
        float rg_up = (r < g ? r : g) / k, rg_down = (maxv - (r > g ? r : g)) / k;
        ph[x] = up < rg_up ? up : rg_up;
        pl[x] = down < rg_down ? down : rg_down;
    }
}

CM__ALWAYS_INLINE void luma_headroom_row(const int depth, const int ch, const int alpha,
                                         const uint8_t *row, float *dst, float *pl, float *ph,
                                         const cm__room *room, int w)
{
    luma_row(depth, ch, alpha, row, dst, w);
    headroom_row(depth, ch, alpha, row, pl, ph, room, w);
}

/* apply_row with the original luma recomputed from the pixel itself (the
 * same expression as luma_row, so an unchanged plane is still a no-op). */
CM__ALWAYS_INLINE void apply_luma_row(const int depth, const int ch, const int alpha,
                                      uint8_t *row, const float *pm, const float *dc,
                                      const cm__room *room, float *scratch, int w)
{
    luma_row(depth, ch, alpha, row, scratch, w);
    apply_row(depth, ch, alpha, row, scratch, pm, dc, room, w);
}

/* Call KERNEL(depth, channels, alpha, args...) with constant layout
 * arguments for 8-bit grey/RGB/RGBA and 16-bit RGB/RGBA. */
#define ROW_DISPATCH(img, KERNEL, ...)                                                  \
    do {                                                                              \
        const int d_ = (img)->bit_depth, c_ = (img)->channels, a_ = !!(img)->has_alpha; \
        if (d_ == 8 && c_ == 3 && !a_)                                                \
            KERNEL(8, 3, 0, __VA_ARGS__);                                             \
        else if (d_ == 8 && c_ == 4 && a_)                                            \
            KERNEL(8, 4, 1, __VA_ARGS__);                                             \
        else if (d_ == 8 && c_ == 1 && !a_)                                           \
            KERNEL(8, 1, 0, __VA_ARGS__);                                             \
        else if (d_ == 16 && c_ == 3 && !a_)                                          \
            KERNEL(16, 3, 0, __VA_ARGS__);                                            \
        else if (d_ == 16 && c_ == 4 && a_)                                           \
            KERNEL(16, 4, 1, __VA_ARGS__);                                            \
        else                                                                          \
            KERNEL(d_, c_, a_, __VA_ARGS__);                                          \
    } while (0)

/* The whole-image loops, built for AVX2 and baseline x86-64 (CM__DSP_CLONES:
 * the byte-to-float conversions and blends of the row kernels vectorise 8
 * pixels wide; the same operations, so the same results, on either). */
CM__DSP_CLONES
static void luma_rows(const cm_image *img, cm_plane *out)
{
    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, luma_row, img->data + (ptrdiff_t)y * img->stride,
                     out->data + (ptrdiff_t)y * out->stride, img->width);
}

CM__DSP_CLONES
static void luma_headroom_rows(const cm_image *img, cm_plane *luma, cm_plane *lo, cm_plane *hi,
                               const cm__room *room)
{
    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, luma_headroom_row, img->data + (ptrdiff_t)y * img->stride,
                     luma->data + (ptrdiff_t)y * luma->stride, lo->data + (ptrdiff_t)y * lo->stride,
                     hi->data + (ptrdiff_t)y * hi->stride, room, img->width);
}

CM__DSP_CLONES
static void apply_marks_rows(cm_image *img, const cm_plane *marked, const cm_plane *chroma_delta,
                             const cm__room *room, float *scratch)
{
    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, apply_luma_row, img->data + (ptrdiff_t)y * img->stride,
                     marked->data + (ptrdiff_t)y * marked->stride,
                     chroma_delta ? chroma_delta->data + (ptrdiff_t)y * chroma_delta->stride
                                  : (const float *)NULL,
                     room, scratch, img->width);
}

/* lo, hi NULL: scratch (2 rows) takes their values */
CM__DSP_CLONES
static void chroma_rows(const cm_image *img, cm_plane *chroma, cm_plane *lo, cm_plane *hi,
                        float *scratch)
{
    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, chroma_row, img->data + (ptrdiff_t)y * img->stride,
                     chroma->data + (ptrdiff_t)y * chroma->stride,
                     lo ? lo->data + (ptrdiff_t)y * lo->stride : scratch,
                     hi ? hi->data + (ptrdiff_t)y * hi->stride : scratch + img->width,
                     img->width);
}

int cm_image_to_plane(cm_ctx *ctx, const cm_image *img, cm_plane *out)
{
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "to_plane: no output plane");
    memset(out, 0, sizeof(*out));
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "to_plane: invalid image");
    if ((ret = cm_plane_alloc(out, img->width, img->height)) < 0)
        return cm__error(ctx, ret, "to_plane: cannot allocate a %d x %d plane",
                         img->width, img->height);

    luma_rows(img, out);
    return CM_OK;
}

int cm_image_apply_plane(cm_ctx *ctx, cm_image *img, const cm_plane *orig,
                         const cm_plane *marked)
{
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "apply_plane: invalid image");
    if (!plane_matches(orig, img) || !plane_matches(marked, img))
        return cm__error(ctx, CM_E_INVAL,
                         "apply_plane: planes do not match the %d x %d image",
                         img->width, img->height);

    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, apply_row, img->data + (ptrdiff_t)y * img->stride,
                     orig->data + (ptrdiff_t)y * orig->stride,
                     marked->data + (ptrdiff_t)y * marked->stride, (const float *)NULL,
                     (const cm__room *)NULL, img->width);
    return CM_OK;
}

int cm_image_luma_headroom(cm_ctx *ctx, const cm_image *img, cm_plane *luma, cm_plane *lo,
                           cm_plane *hi)
{
    return cm__image_luma_room(ctx, img, NULL, luma, lo, hi);
}

int cm__image_luma_room(cm_ctx *ctx, const cm_image *img, const cm__room *room, cm_plane *luma,
                        cm_plane *lo, cm_plane *hi)
{
    int ret;
    if (!luma || !lo || !hi || lo == hi || luma == lo || luma == hi)
        return cm__error(ctx, CM_E_INVAL, "luma_headroom: invalid output planes");
    memset(luma, 0, sizeof(*luma));
    memset(lo, 0, sizeof(*lo));
    memset(hi, 0, sizeof(*hi));
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "luma_headroom: invalid image");
    if ((ret = cm_plane_alloc(luma, img->width, img->height)) < 0 ||
        (ret = cm_plane_alloc(lo, img->width, img->height)) < 0 ||
        (ret = cm_plane_alloc(hi, img->width, img->height)) < 0) {
        cm_plane_free(luma);
        cm_plane_free(lo);
        cm_plane_free(hi);
        return cm__error(ctx, ret, "luma_headroom: cannot allocate %d x %d planes", img->width,
                         img->height);
    }
    luma_headroom_rows(img, luma, lo, hi, room);
    return CM_OK;
}

int cm_image_apply_luma(cm_ctx *ctx, cm_image *img, const cm_plane *marked)
{
    return cm_image_apply_marks(ctx, img, marked, NULL);
}

/*
 * A colour key (PNG tRNS on grey or RGB) makes every pixel of exactly that
 * colour transparent. Marking must not change which pixels those are: a
 * keyed pixel keeps its samples (it is not shown, like alpha 0), and a
 * pixel the mark moved onto the key is nudged one code value away from it
 * (on B for RGB, the channel luma weighs least; on grey the way the mark
 * was going), or it would vanish.
 */
static int colour_key(const cm_image *img, unsigned key[3])
{
    const cm_image_meta *m = img->meta;
    return m && m->colour_key && m->colour_key(img, key);
}

static int is_key(const uint8_t *row, int depth, int i, int nc, const unsigned key[3])
{
    for (int c = 0; c < nc; c++)
        if (sample_get(row, depth, i + c) != key[c])
            return 0;
    return 1;
}

static void apply_marks_keyed(cm_image *img, const cm_plane *marked, const cm_plane *chroma_delta,
                              const cm__room *room, float *scratch, uint8_t *keyed,
                              const unsigned key[3])
{
    const int depth = img->bit_depth, ch = img->channels, nc = ch;
    const unsigned maxv = depth == 16 ? 65535u : 255u;
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
        const float *pm = marked->data + (ptrdiff_t)y * marked->stride;
        for (int x = 0; x < img->width; x++)
            keyed[x] = (uint8_t)is_key(row, depth, x * ch, nc, key);
        ROW_DISPATCH(img, apply_luma_row, row, pm,
                     chroma_delta ? chroma_delta->data + (ptrdiff_t)y * chroma_delta->stride
                                  : (const float *)NULL,
                     room, scratch, img->width);
        for (int x = 0; x < img->width; x++) {
            const int i = x * ch;
            if (keyed[x]) { /* transparent: keep it so */
                for (int c = 0; c < nc; c++)
                    sample_set(row, depth, i + c, key[c]);
            } else if (is_key(row, depth, i, nc, key)) {
                const int c = nc == 3 ? 2 : 0;
                /* the way the mark pushed luma (8-bit units vs the key's) */
                float kl = nc == 3 ? 0.299f * (float)key[0] + 0.587f * (float)key[1] +
                                         0.114f * (float)key[2]
                                   : (float)key[0];
                kl /= depth == 16 ? 257.0f : 1.0f;
                int up = pm[x] >= kl;
                if ((up && key[c] == maxv) || (!up && key[c] == 0))
                    up = !up;
                sample_set(row, depth, i + c, up ? key[c] + 1 : key[c] - 1);
            }
        }
    }
}

int cm_image_apply_marks(cm_ctx *ctx, cm_image *img, const cm_plane *marked,
                         const cm_plane *chroma_delta)
{
    return cm__image_apply_marks_within(ctx, img, marked, chroma_delta, NULL);
}

int cm__image_apply_marks_within(cm_ctx *ctx, cm_image *img, const cm_plane *marked,
                                 const cm_plane *chroma_delta, const cm__room *room)
{
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "apply_marks: invalid image");
    if (!plane_matches(marked, img) || (chroma_delta && !plane_matches(chroma_delta, img)))
        return cm__error(ctx, CM_E_INVAL, "apply_marks: plane does not match the %d x %d image",
                         img->width, img->height);
    float *scratch = cm__malloc_array((size_t)img->width, sizeof(float));
    if (!scratch)
        return cm__error(ctx, CM_E_NOMEM, "apply_marks: out of memory");
    unsigned key[3];
    if (!img->has_alpha && colour_key(img, key)) {
        uint8_t *keyed = malloc((size_t)img->width);
        if (!keyed) {
            free(scratch);
            return cm__error(ctx, CM_E_NOMEM, "apply_marks: out of memory");
        }
        apply_marks_keyed(img, marked, chroma_delta, room, scratch, keyed, key);
        free(keyed);
    } else {
        apply_marks_rows(img, marked, chroma_delta, room, scratch);
    }
    free(scratch);
    return CM_OK;
}

int cm_image_is_colour(const cm_image *img)
{
    return img && img->channels - (img->has_alpha ? 1 : 0) >= 3;
}

int cm_image_chroma(cm_ctx *ctx, const cm_image *img, cm_plane *chroma, cm_plane *lo,
                    cm_plane *hi)
{
    int ret;
    int room = lo || hi;
    if (!chroma || (room && (!lo || !hi || lo == hi || chroma == lo || chroma == hi)))
        return cm__error(ctx, CM_E_INVAL, "chroma: invalid output planes");
    memset(chroma, 0, sizeof(*chroma));
    if (room) {
        memset(lo, 0, sizeof(*lo));
        memset(hi, 0, sizeof(*hi));
    }
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "chroma: invalid image");
    if ((ret = cm_plane_alloc(chroma, img->width, img->height)) < 0 ||
        (room && ((ret = cm_plane_alloc(lo, img->width, img->height)) < 0 ||
                  (ret = cm_plane_alloc(hi, img->width, img->height)) < 0))) {
        cm_plane_free(chroma);
        cm_plane_free(lo);
        cm_plane_free(hi);
        return cm__error(ctx, ret, "chroma: cannot allocate %d x %d planes", img->width,
                         img->height);
    }
    /* without headroom planes, one row of scratch takes their values */
    float *scratch = room ? NULL : cm__malloc_array(2 * (size_t)img->width, sizeof(float));
    if (!room && !scratch) {
        cm_plane_free(chroma);
        return cm__error(ctx, CM_E_NOMEM, "chroma: out of memory");
    }
    chroma_rows(img, chroma, lo, hi, scratch);
    free(scratch);
    return CM_OK;
}

int cm_image_headroom(cm_ctx *ctx, const cm_image *img, cm_plane *lo,
                      cm_plane *hi)
{
    int ret;

    if (!lo || !hi || lo == hi)
        return cm__error(ctx, CM_E_INVAL, "headroom: invalid output planes");
    memset(lo, 0, sizeof(*lo));
    memset(hi, 0, sizeof(*hi));
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "headroom: invalid image");
    if ((ret = cm_plane_alloc(lo, img->width, img->height)) < 0 ||
        (ret = cm_plane_alloc(hi, img->width, img->height)) < 0)
        goto fail;

    for (int y = 0; y < img->height; y++)
        ROW_DISPATCH(img, headroom_row, img->data + (ptrdiff_t)y * img->stride,
                     lo->data + (ptrdiff_t)y * lo->stride, hi->data + (ptrdiff_t)y * hi->stride,
                     (const cm__room *)NULL, img->width);
    return CM_OK;

fail:
    cm_plane_free(lo);
    cm_plane_free(hi);
    return cm__error(ctx, ret, "headroom: cannot allocate %d x %d planes",
                     img->width, img->height);
}
