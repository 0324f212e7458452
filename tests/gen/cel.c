/*
 * Synthetic cel generator (see cel.h). Rendering happens in float RGB(A) at
 * the target size; shapes use a signed-distance approximation so edges and
 * outlines are anti-aliased like real ink-and-paint output.
 */
#include "cel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Small deterministic generator for scene layout (not key material). */
typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rng_next(rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t x = r->s;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static float rng_unit(rng *r)
{
    return (float)(rng_next(r) >> 8) * (1.0f / 16777216.0f);
}

static float rng_range(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

typedef struct canvas {
    int w, h;
    float *rgb; /* 3 floats per pixel, 0..1 */
    float *a;   /* coverage 0..1 */
} canvas;

static void blend(canvas *c, int x, int y, const float col[3], float cov)
{
    if (cov <= 0.0f)
        return;
    if (cov > 1.0f)
        cov = 1.0f;
    float *p = c->rgb + 3 * ((size_t)y * c->w + x);
    for (int k = 0; k < 3; k++)
        p[k] = p[k] * (1.0f - cov) + col[k] * cov;
    float *a = c->a + (size_t)y * c->w + x;
    *a = *a + (1.0f - *a) * cov;
}

/* Value noise: smooth random texture with a given feature size in pixels. */
static float hash2(uint32_t seed, int x, int y)
{
    uint32_t h = seed ^ (uint32_t)x * 374761393u ^ (uint32_t)y * 668265263u;
    h = (h ^ (h >> 13)) * 1274126177u;
    h ^= h >> 16;
    return (float)(h & 0xffffff) / 16777215.0f;
}

static float value_noise(uint32_t seed, float x, float y)
{
    int xi = (int)floorf(x), yi = (int)floorf(y);
    float fx = x - xi, fy = y - yi;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    float a = hash2(seed, xi, yi), b = hash2(seed, xi + 1, yi);
    float c = hash2(seed, xi, yi + 1), d = hash2(seed, xi + 1, yi + 1);
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
}

static void random_colour(rng *r, float col[3], float lo, float hi)
{
    for (int k = 0; k < 3; k++)
        col[k] = rng_range(r, lo, hi);
}

static void background(canvas *c, rng *r, cel_style style, int transparent)
{
    float c0[3], c1[3];
    random_colour(r, c0, 0.3f, 0.95f);
    random_colour(r, c1, 0.2f, 0.9f);
    uint32_t nseed = rng_next(r);
    float feature = rng_range(r, 6.0f, 40.0f);
    for (int y = 0; y < c->h; y++) {
        for (int x = 0; x < c->w; x++) {
            float *p = c->rgb + 3 * ((size_t)y * c->w + x);
            float t = (float)y / (float)(c->h > 1 ? c->h - 1 : 1);
            switch (style) {
            case CEL_GRADIENT:
                for (int k = 0; k < 3; k++)
                    p[k] = c0[k] * (1 - t) + c1[k] * t;
                break;
            case CEL_TEXTURED: {
                float n = 0.6f * value_noise(nseed, x / feature, y / feature) +
                          0.3f * value_noise(nseed + 1, x / (feature / 3), y / (feature / 3)) +
                          0.1f * value_noise(nseed + 2, x / 1.5f, y / 1.5f);
                for (int k = 0; k < 3; k++)
                    p[k] = c0[k] * (0.6f + 0.5f * n) * (1 - 0.3f * t);
                break;
            }
            case CEL_WHITE:
            case CEL_SMALL:
                p[0] = p[1] = p[2] = 1.0f;
                break;
            case CEL_BLACK:
                p[0] = p[1] = p[2] = 0.0f;
                break;
            case CEL_PAINTED: {
                /* broad painted strokes of two colours, brush texture */
                float n = value_noise(nseed, x / (feature * 4), y / (feature * 4));
                float b = 0.85f + 0.15f * value_noise(nseed + 3, x / 3.0f, y / 9.0f);
                for (int k = 0; k < 3; k++)
                    p[k] = (c0[k] * n + c1[k] * (1 - n)) * b;
                break;
            }
            case CEL_NIGHT: {
                /* dark blue-grey, textured: luma ~5..40 */
                float n = 0.7f * value_noise(nseed, x / feature, y / feature) +
                          0.3f * value_noise(nseed + 1, x / 2.0f, y / 2.0f);
                float v = 0.02f + 0.13f * n * (1 - 0.5f * t);
                p[0] = v * 0.8f;
                p[1] = v * 0.9f;
                p[2] = v * 1.3f;
                break;
            }
            case CEL_GREY_RAMP: {
                /* bands: black -> white, black -> dark grey, flat greys */
                float u = (float)x / (float)(c->w > 1 ? c->w - 1 : 1);
                int band = (int)(t * 4);
                float v = band == 0 ? u : band == 1 ? 0.25f * u : band == 2 ? 0.5f : 0.12f;
                p[0] = p[1] = p[2] = v;
                break;
            }
            case CEL_HATCHING:
            case CEL_PAPER:
                p[0] = 0.96f;
                p[1] = 0.94f;
                p[2] = 0.88f;
                break;
            case CEL_DARK_INK:
                for (int k = 0; k < 3; k++)
                    p[k] = 0.6f + 0.3f * c0[k];
                break;
            case CEL_FILM:
                for (int k = 0; k < 3; k++)
                    p[k] = (c0[k] * (1 - t) + c1[k] * t) * 0.8f;
                break;
            default:
                memcpy(p, c0, sizeof(c0));
                break;
            }
            c->a[(size_t)y * c->w + x] = transparent ? 0.0f : 1.0f;
        }
    }
}

/* An ellipse character part: fill, cel shadow on one side, dark outline. */
/* How a style paints its characters: fill colours drawn from lo..hi (or
 * from a palette of dark saturated tones), the ink colour. */
typedef struct look {
    float lo, hi;
    int dark_palette;
    float ink[3];
} look;

static void look_fill(rng *r, const look *lk, float col[3])
{
    static const float dark[][3] = {
        {0.21f, 0.14f, 0.0f},  {0.30f, 0.16f, 0.06f}, {0.35f, 0.03f, 0.03f},
        {0.22f, 0.02f, 0.05f}, {0.05f, 0.05f, 0.30f}, {0.02f, 0.08f, 0.22f},
        {0.08f, 0.16f, 0.05f}, {0.12f, 0.10f, 0.09f},
    };
    if (lk->dark_palette) {
        memcpy(col, dark[rng_next(r) % (sizeof(dark) / sizeof(dark[0]))], sizeof(dark[0]));
        return;
    }
    random_colour(r, col, lk->lo, lk->hi);
}

static void draw_ellipse(canvas *c, rng *r, float cx, float cy, float ax, float ay,
                         float rot, const float fill[3], float line_w, const float ink[3])
{
    float shadow[3];
    for (int k = 0; k < 3; k++)
        shadow[k] = fill[k] * 0.72f;
    float sdx = rng_range(r, -1, 1), sdy = rng_range(r, -1, 1);
    float cr = cosf(rot), sr = sinf(rot);
    float m = ax > ay ? ax : ay;
    int x0 = (int)floorf(cx - m - line_w - 2), x1 = (int)ceilf(cx + m + line_w + 2);
    int y0 = (int)floorf(cy - m - line_w - 2), y1 = (int)ceilf(cy + m + line_w + 2);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w - 1) x1 = c->w - 1;
    if (y1 > c->h - 1) y1 = c->h - 1;
    float mn = ax < ay ? ax : ay;
    for (int y = y0; y <= y1; y++) {
        for (int x = x0; x <= x1; x++) {
            float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
            float u = (dx * cr + dy * sr) / ax, v = (-dx * sr + dy * cr) / ay;
            float d = (sqrtf(u * u + v * v) - 1.0f) * mn; /* ~signed distance, px */
            float cov = 0.5f - d;
            if (cov > 0) {
                /* cel shadow: a hard-edged second tone on one side */
                float side = (u * sdx + v * sdy) - 0.35f;
                float sh = side * mn;
                float col[3];
                float t = sh > 0.5f ? 1.0f : (sh < -0.5f ? 0.0f : sh + 0.5f);
                for (int k = 0; k < 3; k++)
                    col[k] = fill[k] * (1 - t) + shadow[k] * t;
                blend(c, x, y, col, cov);
            }
            float lc = line_w * 0.5f + 0.5f - fabsf(d);
            blend(c, x, y, ink, lc);
        }
    }
}

/* A loose anti-aliased ink stroke (quadratic curve). */
static void draw_stroke(canvas *c, rng *r, float width)
{
    float ink[3] = {0.05f, 0.05f, 0.07f};
    float px = rng_range(r, 0, c->w), py = rng_range(r, 0, c->h);
    float qx = px + rng_range(r, -200, 200), qy = py + rng_range(r, -200, 200);
    float ex = px + rng_range(r, -300, 300), ey = py + rng_range(r, -300, 300);
    int steps = 400;
    for (int i = 0; i <= steps; i++) {
        float t = (float)i / steps;
        float x = (1 - t) * (1 - t) * px + 2 * (1 - t) * t * qx + t * t * ex;
        float y = (1 - t) * (1 - t) * py + 2 * (1 - t) * t * qy + t * t * ey;
        float wv = width * (0.4f + 0.6f * sinf(3.14159f * t));
        int r0 = (int)ceilf(wv + 1);
        for (int yy = (int)y - r0; yy <= (int)y + r0; yy++) {
            for (int xx = (int)x - r0; xx <= (int)x + r0; xx++) {
                if (xx < 0 || yy < 0 || xx >= c->w || yy >= c->h)
                    continue;
                float d = hypotf(xx + 0.5f - x, yy + 0.5f - y);
                float cov = wv * 0.5f + 0.5f - d;
                if (cov > 0) {
                    /* max-blend so overlapping stamps do not darken */
                    float *a = c->rgb + 3 * ((size_t)yy * c->w + xx);
                    float covc = cov > 1 ? 1 : cov;
                    for (int k = 0; k < 3; k++) {
                        float v = a[k] * (1 - covc) + ink[k] * covc;
                        if (v < a[k])
                            a[k] = v;
                    }
                    float *al = c->a + (size_t)yy * c->w + xx;
                    if (*al < covc)
                        *al = covc;
                }
            }
        }
    }
}

static void draw_character(canvas *c, rng *r, float cx, float cy, float size, float line_w,
                           const look *lk)
{
    float fill[3];
    look_fill(r, lk, fill);
    /* body, head, and a couple of limbs */
    draw_ellipse(c, r, cx, cy + size * 0.35f, size * 0.32f, size * 0.45f,
                 rng_range(r, -0.3f, 0.3f), fill, line_w, lk->ink);
    float skin[3];
    if (lk->dark_palette || lk->hi < 0.5f)
        look_fill(r, lk, skin);
    else
        random_colour(r, skin, 0.7f, 0.98f);
    draw_ellipse(c, r, cx, cy - size * 0.3f, size * 0.27f, size * 0.25f, 0, skin, line_w,
                 lk->ink);
    for (int i = 0; i < 2; i++) {
        float hair[3];
        if (lk->dark_palette || lk->hi < 0.5f)
            look_fill(r, lk, hair);
        else
            random_colour(r, hair, 0.1f, 0.8f);
        draw_ellipse(c, r, cx + rng_range(r, -0.2f, 0.2f) * size,
                     cy - size * rng_range(r, 0.4f, 0.55f), size * rng_range(r, 0.1f, 0.25f),
                     size * rng_range(r, 0.06f, 0.12f), rng_range(r, -1, 1), hair, line_w,
                     lk->ink);
    }
}

/* A straight anti-aliased line of width w from (x0, y0) to (x1, y1). */
static void draw_line(canvas *c, float x0, float y0, float x1, float y1, float w,
                      const float ink[3])
{
    float dx = x1 - x0, dy = y1 - y0, len = hypotf(dx, dy);
    if (len <= 0)
        return;
    int bx0 = (int)floorf(fminf(x0, x1) - w - 1), bx1 = (int)ceilf(fmaxf(x0, x1) + w + 1);
    int by0 = (int)floorf(fminf(y0, y1) - w - 1), by1 = (int)ceilf(fmaxf(y0, y1) + w + 1);
    for (int y = by0 < 0 ? 0 : by0; y <= by1 && y < c->h; y++)
        for (int x = bx0 < 0 ? 0 : bx0; x <= bx1 && x < c->w; x++) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = (px * dx + py * dy) / (len * len);
            t = t < 0 ? 0 : (t > 1 ? 1 : t);
            float d = hypotf(px - t * dx, py - t * dy);
            float cov = w * 0.5f + 0.5f - d;
            if (cov > 0) {
                float *p = c->rgb + 3 * ((size_t)y * c->w + x);
                float cv = cov > 1 ? 1 : cov;
                for (int k = 0; k < 3; k++) { /* darkest wins: crossings stay ink */
                    float v = p[k] * (1 - cv) + ink[k] * cv;
                    p[k] = v < p[k] ? v : p[k];
                }
            }
        }
}

/* Patches of crossed hatching: two families of parallel thin lines. */
static void draw_hatching(canvas *c, rng *r, const float ink[3])
{
    int patches = 3 + (int)(rng_next(r) % 3);
    for (int i = 0; i < patches; i++) {
        float cx = rng_range(r, 0.1f, 0.9f) * c->w, cy = rng_range(r, 0.1f, 0.9f) * c->h;
        float half = rng_range(r, 0.08f, 0.2f) * (float)(c->w < c->h ? c->w : c->h);
        float gap = rng_range(r, 4.0f, 9.0f), w = rng_range(r, 0.8f, 1.6f);
        for (int fam = 0; fam < 2; fam++) {
            float ang = rng_range(r, 0, 3.14159f), ca = cosf(ang), sa = sinf(ang);
            for (float o = -half; o <= half; o += gap)
                draw_line(c, cx + o * sa - half * ca, cy - o * ca - half * sa,
                          cx + o * sa + half * ca, cy - o * ca + half * sa, w, ink);
        }
    }
}

/* Light over the whole frame after the paint: airbrushed shading (a soft
 * multiplicative gradient), paper grain (fine multiplicative noise) or film
 * grain (per-pixel noise, mostly luma, some colour). */
static void finish(canvas *c, rng *r, cel_style style)
{
    if (style != CEL_PAINTED && style != CEL_PAPER && style != CEL_FILM)
        return;
    uint32_t seed = rng_next(r);
    float amp = style == CEL_FILM ? rng_range(r, 0.03f, 0.06f) : 0.0f;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) {
            float *p = c->rgb + 3 * ((size_t)y * c->w + x);
            if (style == CEL_PAINTED) {
                float g = 0.72f + 0.4f * value_noise(seed, x / 160.0f, y / 160.0f);
                for (int k = 0; k < 3; k++)
                    p[k] *= g;
            } else if (style == CEL_PAPER) {
                float g = 1.0f + 0.05f * (value_noise(seed, x / 1.3f, y / 1.3f) - 0.5f);
                for (int k = 0; k < 3; k++)
                    p[k] *= g;
            } else {
                float l = hash2(seed, x, y) - 0.5f;
                for (int k = 0; k < 3; k++)
                    p[k] += amp * (0.8f * l + 0.4f * (hash2(seed + 1 + k, x, y) - 0.5f));
            }
            for (int k = 0; k < 3; k++)
                p[k] = p[k] < 0 ? 0 : (p[k] > 1 ? 1 : p[k]);
        }
}

void cel_params_default(cel_params *p)
{
    memset(p, 0, sizeof(*p));
    p->width = 1920;
    p->height = 1080;
    p->seed = 1;
    p->style = CEL_MIXED;
    p->channels = 3;
    p->bit_depth = 8;
}

const char *cel_style_name(cel_style s)
{
    static const char *names[CEL_STYLE_COUNT] = {
        "mixed", "flat",  "gradient",  "textured", "white", "black", "small", "painted",
        "night", "hatching", "grey_ramp", "dark_ink", "paper", "film"};
    return (s >= 0 && s < CEL_STYLE_COUNT) ? names[s] : "?";
}

int cel_generate(cm_image **out, const cel_params *p)
{
    if (!out || !p || p->width <= 0 || p->height <= 0)
        return CM_E_INVAL;
    int channels = p->channels ? p->channels : 3;
    int depth = p->bit_depth ? p->bit_depth : 8;
    int has_alpha = channels == 2 || channels == 4;
    rng r = {0x9e3779b97f4a7c15ULL ^ ((uint64_t)p->seed * 0x100000001b3ULL)};
    rng_next(&r);
    cel_style style = p->style;
    if (style == CEL_MIXED)
        style = (cel_style)(1 + rng_next(&r) % (CEL_MIXED_COUNT - 1));

    canvas c = {p->width, p->height, NULL, NULL};
    size_t n = (size_t)p->width * p->height;
    c.rgb = malloc(n * 3 * sizeof(float));
    c.a = malloc(n * sizeof(float));
    cm_image *img = NULL;
    int ret = CM_E_NOMEM;
    if (!c.rgb || !c.a)
        goto fail;

    background(&c, &r, style, has_alpha && style != CEL_TEXTURED);
    float scale = (float)(p->width < p->height ? p->width : p->height);
    float line_w = 1.5f + scale / 500.0f;
    int nchar = style == CEL_SMALL ? 1 : 2 + (int)(rng_next(&r) % 4);
    look lk = {0.25f, 0.95f, 0, {0.08f, 0.06f, 0.1f}};
    if (style == CEL_NIGHT)
        lk = (look){0.03f, 0.3f, 0, {0.0f, 0.0f, 0.0f}};
    else if (style == CEL_DARK_INK)
        lk = (look){0, 0, 1, {0.0f, 0.0f, 0.0f}};
    else if (style == CEL_GREY_RAMP)
        lk = (look){0.02f, 0.2f, 0, {0.0f, 0.0f, 0.0f}};
    if (style == CEL_DARK_INK)
        line_w *= 2; /* thick black outlines */
    for (int i = 0; i < nchar; i++) {
        float size = style == CEL_SMALL ? scale * 0.15f : scale * rng_range(&r, 0.25f, 0.6f);
        draw_character(&c, &r, rng_range(&r, 0.1f, 0.9f) * p->width,
                       rng_range(&r, 0.25f, 0.8f) * p->height, size, line_w, &lk);
    }
    int nstroke = style == CEL_SMALL ? 0 : (int)(rng_next(&r) % 6);
    for (int i = 0; i < nstroke; i++)
        draw_stroke(&c, &r, line_w);
    if (style == CEL_HATCHING || style == CEL_DARK_INK || style == CEL_NIGHT)
        draw_hatching(&c, &r, lk.ink);
    if (style == CEL_PAPER) { /* pencil: thin grey lines */
        const float pencil[3] = {0.45f, 0.45f, 0.47f};
        for (int i = 0; i < 40; i++) {
            float x0 = rng_range(&r, 0, p->width), y0 = rng_range(&r, 0, p->height);
            draw_line(&c, x0, y0, x0 + rng_range(&r, -300, 300), y0 + rng_range(&r, -300, 300),
                      rng_range(&r, 0.7f, 1.5f), pencil);
        }
    }
    finish(&c, &r, style);

    ret = cm_image_new(&img, p->width, p->height, channels, has_alpha, depth);
    if (ret)
        goto fail;
    float maxv = depth == 16 ? 65535.0f : 255.0f;
    for (int y = 0; y < p->height; y++) {
        uint8_t *row8 = img->data + (size_t)y * img->stride;
        uint16_t *row16 = (uint16_t *)row8;
        for (int x = 0; x < p->width; x++) {
            const float *s = c.rgb + 3 * ((size_t)y * p->width + x);
            float v[4];
            int nc = 0;
            if (channels <= 2) {
                v[nc++] = 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2];
            } else {
                v[nc++] = s[0];
                v[nc++] = s[1];
                v[nc++] = s[2];
            }
            if (has_alpha)
                v[nc++] = c.a[(size_t)y * p->width + x];
            for (int k = 0; k < nc; k++) {
                float q = floorf(v[k] * maxv + 0.5f);
                q = q < 0 ? 0 : (q > maxv ? maxv : q);
                if (depth == 16)
                    row16[x * channels + k] = (uint16_t)q;
                else
                    row8[x * channels + k] = (uint8_t)q;
            }
        }
    }
    *out = img;
    img = NULL;
    ret = CM_OK;
fail:
    cm_image_free(&img);
    free(c.rgb);
    free(c.a);
    return ret;
}
