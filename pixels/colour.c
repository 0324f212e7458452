/* sRGB -> CIELAB -> CIEDE2000, and the mark's colour budget (colour.h). */
#include "colour.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* D65 white of sRGB (IEC 61966-2-1), XYZ with Y = 1 */
#define WHITE_X 0.95047
#define WHITE_Z 1.08883

static double srgb_linear_exact(double c)
{
    c /= 255.0;
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

/* The transfer curve tabulated every 1/LIN_SUB code value over LIN_LO..LIN_HI
 * and interpolated linearly: pow() dominated the cost of a difference, and
 * the curve is smooth enough that the table is exact to ~1e-8 in linear
 * light (Lab to ~1e-5). Values outside take the formula. */
#define LIN_LO (-64)
#define LIN_HI 320
#define LIN_SUB 16
static float lin_table[(LIN_HI - LIN_LO) * LIN_SUB + 2];
static pthread_once_t lin_once = PTHREAD_ONCE_INIT;

static void lin_init(void)
{
    for (size_t i = 0; i < sizeof(lin_table) / sizeof(lin_table[0]); i++)
        lin_table[i] = (float)srgb_linear_exact(LIN_LO + (double)i / LIN_SUB);
}

static double srgb_linear(double c)
{
    if (!(c >= LIN_LO && c < LIN_HI))
        return srgb_linear_exact(c);
    double u = (c - LIN_LO) * LIN_SUB;
    int i = (int)u;
    double f = u - i;
    return lin_table[i] + f * (lin_table[i + 1] - lin_table[i]);
}

/* CIELAB's f(t): cube root above (6/29)^3, linear below */
static double lab_f(double t)
{
    const double e = 216.0 / 24389.0; /* (6/29)^3 */
    return t > e ? cbrt(t) : t * (24389.0 / 27.0) / 116.0 + 16.0 / 116.0;
}

void cm__srgb_to_lab(const float rgb[3], double lab[3])
{
    pthread_once(&lin_once, lin_init);
    /* values just outside 0..255 (a step being tried) extend the curve
     * linearly below 0 and by the power law above 255 */
    double r = srgb_linear(rgb[0]), g = srgb_linear(rgb[1]), b = srgb_linear(rgb[2]);
    double x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b;
    double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    double z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b;
    double fx = lab_f(x / WHITE_X), fy = lab_f(y), fz = lab_f(z / WHITE_Z);
    lab[0] = 116.0 * fy - 16.0;
    lab[1] = 500.0 * (fx - fy);
    lab[2] = 200.0 * (fy - fz);
}

#define DEG (M_PI / 180.0)

static double pow7(double x)
{
    double x2 = x * x;
    return x2 * x2 * x2 * x;
}

/* hue angle in degrees, 0..360; 0 for a neutral (Sharma et al., eq. 4) */
static double hue_deg(double b, double ap)
{
    if (b == 0 && ap == 0)
        return 0;
    double h = atan2(b, ap) / DEG;
    return h < 0 ? h + 360.0 : h;
}

/*
 * CIEDE2000, following the numbered steps of Sharma, Wu and Dalal (2005):
 * a' stretched by G near the neutral axis, then lightness, chroma and hue
 * differences weighted by SL, SC, SH and the blue-region rotation RT.
 * tests/unit/test_colour.c checks it on the paper's 34 pairs.
 */
double cm__ciede2000(const double lab1[3], const double lab2[3])
{
    const double L1 = lab1[0], a1 = lab1[1], b1 = lab1[2];
    const double L2 = lab2[0], a2 = lab2[1], b2 = lab2[2];
    const double pow25_7 = 6103515625.0; /* 25^7 */
    /* 1: C', h' */
    double cab = 0.5 * (sqrt(a1 * a1 + b1 * b1) + sqrt(a2 * a2 + b2 * b2));
    double cab7 = pow7(cab);
    double G = 0.5 * (1 - sqrt(cab7 / (cab7 + pow25_7)));
    double a1p = (1 + G) * a1, a2p = (1 + G) * a2;
    double c1p = sqrt(a1p * a1p + b1 * b1), c2p = sqrt(a2p * a2p + b2 * b2);
    double h1p = hue_deg(b1, a1p), h2p = hue_deg(b2, a2p);
    /* 2: dL', dC', dH' */
    double dLp = L2 - L1, dCp = c2p - c1p, dhp = 0;
    if (c1p * c2p != 0) {
        dhp = h2p - h1p;
        if (dhp > 180)
            dhp -= 360;
        else if (dhp < -180)
            dhp += 360;
    }
    double dHp = 2 * sqrt(c1p * c2p) * sin(dhp / 2 * DEG);
    /* 3: the weights */
    double Lm = 0.5 * (L1 + L2), Cm = 0.5 * (c1p + c2p), hm = h1p + h2p;
    if (c1p * c2p != 0) {
        if (fabs(h1p - h2p) > 180)
            hm = hm < 360 ? (hm + 360) / 2 : (hm - 360) / 2;
        else
            hm /= 2;
    }
    double T = 1 - 0.17 * cos((hm - 30) * DEG) + 0.24 * cos(2 * hm * DEG) +
               0.32 * cos((3 * hm + 6) * DEG) - 0.20 * cos((4 * hm - 63) * DEG);
    double dtheta = 30 * exp(-((hm - 275) / 25) * ((hm - 275) / 25));
    double cm7 = pow7(Cm);
    double RC = 2 * sqrt(cm7 / (cm7 + pow25_7));
    double l50 = (Lm - 50) * (Lm - 50);
    double SL = 1 + 0.015 * l50 / sqrt(20 + l50);
    double SC = 1 + 0.045 * Cm;
    double SH = 1 + 0.015 * Cm * T;
    double RT = -sin(2 * dtheta * DEG) * RC;
    double l = dLp / SL, c = dCp / SC, h = dHp / SH;
    double d2 = l * l + c * c + h * h + RT * c * h;
    return sqrt(d2 > 0 ? d2 : 0);
}

double cm__de00_rgb(const float a[3], const float b[3])
{
    double la[3], lb[3];
    cm__srgb_to_lab(a, la);
    cm__srgb_to_lab(b, lb);
    return cm__ciede2000(la, lb);
}

/* ---- the room table --------------------------------------------------- */

/* The furthest a step may go when looking for room, code values: more than
 * any mark moves a pixel (the robust profile's cap times the pattern's
 * peak), so a pixel with this much room is not limited by colour. */
#define ROOM_MAX 64.0f
/* Steps of the search for the edge of the budget along one direction. */
#define ROOM_STEPS 5
/* At most this many budgets are kept for the process (one per profile, a
 * few strengths); tables are never freed, so a pointer stays good. */
#define ROOM_KEEP 16

/* Node i of an axis, 8-bit scale: quadratic spacing, 0, 0.48, 1.9, 4.3, ...
 * 255; about 1 code value apart in the dark, 22 in the highlights. */
static float node_value(int i)
{
    double u = (double)i / (CM__ROOM_NODES - 1);
    return (float)(255.0 * u * u);
}

/* ΔE00 between rgb (lab) and rgb moved t along (luma, blue) as a display
 * shows it: clipped to 0..255. A channel pushed past black or white stays
 * there while the others move on, so the colour's hue and chroma change
 * too (a dark green-yellow of no blue, moved down 8 codes: ΔE00 3.2 shown,
 * 1.3 with blue followed below 0). */
static double de_along(const float rgb[3], const double lab[3], float luma, float blue, float t)
{
    float moved[3];
    double lm[3];
    cm__colour_move(rgb, luma * t, blue * t, moved);
    for (int k = 0; k < 3; k++)
        moved[k] = moved[k] < 0 ? 0 : (moved[k] > 255 ? 255 : moved[k]);
    cm__srgb_to_lab(moved, lm);
    return cm__ciede2000(lab, lm);
}

/* About the largest t in [0, ROOM_MAX] with ΔE00(rgb, rgb moved t along
 * (luma, blue)) <= de, never one past it. ΔE00 grows nearly in proportion
 * to a small step, so t * de / ΔE00(t) lands close to the edge: a few such
 * steps (from above, aimed 2 % short so they cross it), keeping the largest
 * t found within the budget; a bisection if none was. */
static float room_along(const float rgb[3], const double lab[3], float luma, float blue, float de)
{
    double e = de_along(rgb, lab, luma, blue, ROOM_MAX);
    if (e <= de)
        return ROOM_MAX;
    float t = ROOM_MAX, best = 0;
    for (int s = 0; s < ROOM_STEPS; s++) {
        float next = e > 0 ? t * (float)(de / e) * (e > de ? 0.98f : 1.0f) : ROOM_MAX;
        next = fminf(next, ROOM_MAX);
        if (fabsf(next - t) < 0.05f)
            break;
        t = next;
        e = de_along(rgb, lab, luma, blue, t);
        if (e <= de && t > best)
            best = t;
    }
    if (best > 0)
        return best;
    float lo = 0, hi = t;
    for (int s = 0; s < 8; s++) {
        float mid = 0.5f * (lo + hi);
        if (de_along(rgb, lab, luma, blue, mid) <= de)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t *yuv_tables(const cm__room *t);

static cm__room *room_build(float de)
{
    const int N = CM__ROOM_NODES, n = N - 1;
    cm__room *t = calloc(1, sizeof(*t));
    cm__room_cell *node = malloc(sizeof(*node) * (size_t)N * N * N);
    if (t)
        t->cell = malloc(sizeof(*t->cell) * (size_t)n * n * n);
    if (!t || !node || !t->cell) {
        free(node);
        if (t)
            free(t->cell);
        free(t);
        return NULL;
    }
    t->de = de;
    for (int v = 0, i = 0; v < 256; v++) {
        while (i + 1 < n && node_value(i + 1) <= (float)v)
            i++;
        t->cell_r[v] = (uint32_t)(i * n * n);
        t->cell_g[v] = (uint32_t)(i * n);
        t->cell_b[v] = (uint32_t)i;
    }
    for (int r = 0; r < N; r++)
        for (int g = 0; g < N; g++)
            for (int b = 0; b < N; b++) {
                float rgb[3] = {node_value(r), node_value(g), node_value(b)};
                double lab[3];
                cm__srgb_to_lab(rgb, lab);
                cm__room_cell *c = &node[((size_t)r * N + g) * N + b];
                c->luma_down = room_along(rgb, lab, -1, 0, de);
                c->luma_up = room_along(rgb, lab, 1, 0, de);
                c->blue_down = room_along(rgb, lab, 0, -1, de);
                c->blue_up = room_along(rgb, lab, 0, 1, de);
            }
    /* each cell: the least room of its 8 corner nodes */
    for (int r = 0; r < n; r++)
        for (int g = 0; g < n; g++)
            for (int b = 0; b < n; b++) {
                cm__room_cell m = {ROOM_MAX, ROOM_MAX, ROOM_MAX, ROOM_MAX};
                for (int k = 0; k < 8; k++) {
                    const cm__room_cell *c =
                        &node[((size_t)(r + (k & 1)) * N + g + (k >> 1 & 1)) * N + b + (k >> 2)];
                    m.luma_down = fminf(m.luma_down, c->luma_down);
                    m.luma_up = fminf(m.luma_up, c->luma_up);
                    m.blue_down = fminf(m.blue_down, c->blue_down);
                    m.blue_up = fminf(m.blue_up, c->blue_up);
                }
                t->cell[((size_t)r * n + g) * n + b] = m;
            }
    free(node);
    t->yuv = yuv_tables(t); /* NULL: the reference's way */
    return t;
}

cm__room *cm__room_new(float de)
{
    return de > 0 ? room_build(de) : NULL;
}

void cm__room_free(cm__room **t)
{
    if (!t || !*t)
        return;
    free((*t)->cell);
    free((*t)->yuv);
    free(*t);
    *t = NULL;
}

static pthread_mutex_t room_lock = PTHREAD_MUTEX_INITIALIZER;
static cm__room *room_kept[ROOM_KEEP];

const cm__room *cm__room_get(float de)
{
    if (!(de > 0))
        return NULL;
    const cm__room *found = NULL;
    pthread_mutex_lock(&room_lock);
    int k = 0;
    for (; k < ROOM_KEEP && room_kept[k]; k++)
        if (room_kept[k]->de == de) {
            found = room_kept[k];
            break;
        }
    if (!found && k < ROOM_KEEP)
        found = room_kept[k] = room_build(de);
    pthread_mutex_unlock(&room_lock);
    return found;
}

/* ---- comparing two images --------------------------------------------- */

/* Histogram bins of the percentiles: 0.001 wide up to DE_HIST_MAX (beyond,
 * the last bin; the maximum is kept exactly). */
#define DE_BIN 0.001
#define DE_HIST_MAX 100.0
/* Slots of the colour-pair memo of cm_image_delta_e (2^PAIR_BITS, 1 MiB). */
#define PAIR_BITS 16
#define PAIR_SLOTS (1u << PAIR_BITS)

static void pixel_of(const cm_image *img, int x, int y, float rgb[3], float *luma, int *hidden)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    const int nc = img->channels - (img->has_alpha ? 1 : 0);
    const float inv = img->bit_depth == 16 ? 1.0f / 257.0f : 1.0f;
    float v[4];
    for (int k = 0; k < img->channels && k < 4; k++)
        v[k] = img->bit_depth == 16
                   ? (float)((const uint16_t *)(const void *)row)[x * img->channels + k] * inv
                   : (float)row[x * img->channels + k];
    for (int k = 0; k < 3; k++)
        rgb[k] = v[nc >= 3 ? k : 0];
    *luma = nc >= 3 ? 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2] : rgb[0];
    *hidden = img->has_alpha && v[nc] == 0;
}

int cm_image_delta_e(cm_ctx *ctx, const cm_image *a, const cm_image *b, cm_de_stats *out)
{
    if (!a || !b || !out || !a->data || !b->data || a->width != b->width ||
        a->height != b->height || a->channels != b->channels || a->bit_depth != b->bit_depth ||
        a->has_alpha != b->has_alpha || a->channels < 1 || a->channels > 4 ||
        (a->bit_depth != 8 && a->bit_depth != 16))
        return cm__error(ctx, CM_E_INVAL, "delta_e: the images do not match");
    memset(out, 0, sizeof(*out));
    const size_t nbins = (size_t)(DE_HIST_MAX / DE_BIN) + 1;
    uint32_t *hist = calloc(nbins, sizeof(uint32_t));
    if (!hist)
        return cm__error(ctx, CM_E_NOMEM, "delta_e: out of memory");
    /* cel art repeats the same pair of colours (a fill and the few values
     * the mark gives it) over and over: 8-bit pairs are remembered in a
     * direct-mapped table (exact; a slot holds one pair) */
    typedef struct pair_slot {
        uint64_t key; /* rgb_a << 24 | rgb_b, plus 1 << 48 once filled */
        double de;
    } pair_slot;
    pair_slot *memo = a->bit_depth == 8 ? calloc(PAIR_SLOTS, sizeof(pair_slot)) : NULL;
    double sum = 0;
    uint64_t n = 0, over1 = 0, over23 = 0;
    const size_t pxb = (size_t)a->channels * (size_t)(a->bit_depth / 8);
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width; x++) {
            const uint8_t *pa = a->data + (ptrdiff_t)y * a->stride + x * pxb;
            if (!memcmp(pa, b->data + (ptrdiff_t)y * b->stride + x * pxb, pxb)) {
                /* unchanged (most of a cel's fills): ΔE 0, unless not shown */
                int hidden =
                    a->has_alpha &&
                    (a->bit_depth == 16 ? !((const uint16_t *)(const void *)pa)[a->channels - 1]
                                        : !pa[a->channels - 1]);
                hist[0] += !hidden;
                n += !hidden;
                continue;
            }
            float ca[3], cb[3], la, lb;
            int ha, hb;
            pixel_of(a, x, y, ca, &la, &ha);
            pixel_of(b, x, y, cb, &lb, &hb);
            if (ha)
                continue;
            double de = 0;
            if (ca[0] != cb[0] || ca[1] != cb[1] || ca[2] != cb[2]) {
                pair_slot *slot = NULL;
                uint64_t key = 0;
                if (memo) {
                    key = 1ull << 48 |
                          (uint64_t)((uint32_t)ca[0] << 16 | (uint32_t)ca[1] << 8 | (uint32_t)ca[2])
                              << 24 |
                          ((uint32_t)cb[0] << 16 | (uint32_t)cb[1] << 8 | (uint32_t)cb[2]);
                    slot = &memo[(key * 0x9e3779b97f4a7c15ull) >> (64 - PAIR_BITS)];
                }
                if (slot && slot->key == key) {
                    de = slot->de;
                } else {
                    de = cm__de00_rgb(ca, cb);
                    if (slot) {
                        slot->key = key;
                        slot->de = de;
                    }
                }
            }
            size_t bin = (size_t)(de / DE_BIN);
            hist[bin < nbins ? bin : nbins - 1]++;
            sum += de;
            n++;
            over1 += de > 1.0;
            over23 += de > 2.3;
            out->max = de > out->max ? de : out->max;
            if (la < 32 && fabsf(lb - la) > out->dark_dy_max)
                out->dark_dy_max = fabsf(lb - la);
        }
    if (n) {
        out->mean = sum / (double)n;
        out->over_1 = (double)over1 / (double)n;
        out->over_2_3 = (double)over23 / (double)n;
        /* the percentile: the upper edge of the bin where the count
         * passes the share (never above the maximum) */
        const double q[2] = {0.99, 0.999};
        double *dst[2] = {&out->p99, &out->p999};
        for (int k = 0; k < 2; k++) {
            uint64_t want = (uint64_t)ceil(q[k] * (double)n), acc = 0;
            size_t i = 0;
            for (; i < nbins && acc + hist[i] < want; i++)
                acc += hist[i];
            double v = (double)(i + 1) * DE_BIN;
            *dst[k] = v < out->max ? v : out->max;
        }
    }
    out->pixels = n;
    free(memo);
    free(hist);
    return CM_OK;
}

/* ---- the colour budget of a Y'CbCr frame ------------------------------ */

static float chroma_sample(const cm__yuv_chroma *c, const uint8_t *plane, int x, int y)
{
    const uint8_t *row = plane + (ptrdiff_t)(y >> c->sy) * c->stride;
    int i = x >> c->sx;
    float v;
    if (c->bytes == 2) {
        uint16_t s;
        memcpy(&s, row + 2 * i, 2);
        v = s;
    } else {
        v = row[i];
    }
    /* to the 8-bit scale, centred: limited range spans 224 codes */
    v = v / (float)(1 << (c->bits - 8)) - 128.0f;
    return c->limited ? v * (255.0f / 224.0f) : v;
}

/* A decoder's chroma upsampling blends the neighbouring chroma samples, so
 * the colour shown may be any blend of the pixel's sample and the next one
 * across and down where the chroma is subsampled: the room is the least of
 * the four (4:2:0), of two (4:2:2: across only), or the pixel's own (4:4:4:
 * no decoder blends a direction that keeps every sample). No pixel is checked
 * after rounding here (a still's is, cm__image_apply_marks_within), so
 * part of the room is kept in reserve (CM__YUV_ROUND_MARGIN,
 * CM__YUV_ROOM_SHARE in colour.h): half a sample step (255/219 of a code
 * value in limited range) for the rounding, and a share of the rest for
 * the decoder's interpolation overshooting its samples and for what
 * varies inside a cell (bench/invisibility, video rows: the whole room let
 * 2 of 13 frame kinds reach ΔE00 3.0-3.1 under the default profile's 2.0;
 * 0.85 kept every one under 3.0). */
#define YUV_ROUND_MARGIN CM__YUV_ROUND_MARGIN
#define YUV_ROOM_SHARE CM__YUV_ROOM_SHARE

/* A cell's luma room, its share less the margin, in 1/256 of a code value
 * rounded down: both directions fit one 32-bit word (room_tab.cell), two
 * gathered loads per pixel and sample (its red-green row, then the cell by
 * blue). The reference takes the same codes. */
#define ROOM_UNIT (1.0f / 256)
static uint32_t room_code(float room)
{
    float v = room * YUV_ROOM_SHARE - YUV_ROUND_MARGIN;
    v = v > 0 ? floorf(v / ROOM_UNIT) : 0;
    return v < 65535 ? (uint32_t)v : 65535;
}

/* What a chroma sample adds to a pixel's luma to give its R', G' and B'
 * (8-bit scale): red and blue from Cr and Cb, green from the two (luma is
 * kr R' + kg G' + kb B'), so each pixel's colour is three additions. */
/* Green's offset from red's and blue's (luma is kr R' + kg G' + kb B'):
 * d_g = r d_r + b d_b, the two weights made once per row by the passes. */
typedef struct green_of {
    float r, b;
} green_of;

static green_of green_weights(const cm__yuv_chroma *c)
{
    const float kg = 1.0f - c->kr - c->kb;
    return (green_of){-c->kr / kg, -c->kb / kg};
}

static void sample_offsets(const cm__yuv_chroma *c, int x, int y, float d[3])
{
    const green_of g = green_weights(c);
    d[0] = 2.0f * (1.0f - c->kr) * chroma_sample(c, c->cr, x, y);
    d[2] = 2.0f * (1.0f - c->kb) * chroma_sample(c, c->cb, x, y);
    d[1] = d[0] * g.r + d[2] * g.b;
}

/* The room table as the row passes read it: each red and green pair's
 * cell row (r << 8 | g, in a 64 Ki table) and, for each such row and blue
 * value, the cell's room codes (down in the high half, up in the low). */
typedef struct room_tab {
    const uint32_t *rg;   /* [r << 8 | g]: the red and green cells, times 256 */
    const uint32_t *cell; /* [rg + b] */
} room_tab;

/* Entries of the red-green table that starts room->yuv (r << 8 | g). */
#define ROOM_RG 65536

/* The tables of room_tab, made once per budget with the cells (NULL when
 * out of memory). */
static uint32_t *yuv_tables(const cm__room *t)
{
    const int n = CM__ROOM_NODES - 1;
    uint32_t *tabs = cm__malloc_array(ROOM_RG + (size_t)n * n * 256, sizeof(uint32_t));
    if (!tabs)
        return NULL;
    for (int r = 0; r < 256; r++)
        for (int g = 0; g < 256; g++)
            tabs[r << 8 | g] = (t->cell_r[r] + t->cell_g[g]) / (uint32_t)n * 256;
    for (size_t i = 0; i < (size_t)n * n; i++)
        for (int b = 0; b < 256; b++) {
            const cm__room_cell *cell = &t->cell[i * (size_t)n + t->cell_b[b]];
            tabs[ROOM_RG + i * 256 + (size_t)b] =
                room_code(cell->luma_down) << 16 | room_code(cell->luma_up);
        }
    return tabs;
}

/* Whether a decoder blends a pixel's chroma sample with the next one
 * across (k & 1) and down (k & 2): only where that direction is
 * subsampled. */
static int blended(const cm__yuv_chroma *c, int k)
{
    return (!(k & 1) || c->sx) && (!(k & 2) || c->sy);
}

/* The reference: every pixel's blended chroma samples read and converted
 * where they lie. */
static void room_row_c(const cm__room *room, const cm__yuv_chroma *c, int cw, int ch, int y,
                       const float *l, float *pl, float *ph, int w)
{
    for (int x = 0; x < w; x++) {
        for (int k = 0; k < 4; k++) {
            if (!blended(c, k))
                continue;
            /* chroma sample positions, in luma pixels */
            int sx = ((x >> c->sx) + (k & 1)) << c->sx;
            int sy = ((y >> c->sy) + (k >> 1)) << c->sy;
            if ((sx >> c->sx) >= cw || (sy >> c->sy) >= ch)
                continue;
            float d[3], rgb[3];
            sample_offsets(c, sx, sy, d);
            for (int i = 0; i < 3; i++)
                rgb[i] = l[x] + d[i];
            const cm__room_cell *cell = cm__room_at(room, rgb);
            float down = (float)room_code(cell->luma_down) * ROOM_UNIT;
            float up = (float)room_code(cell->luma_up) * ROOM_UNIT;
            pl[x] = pl[x] < down ? pl[x] : down;
            ph[x] = ph[x] < up ? ph[x] : up;
        }
    }
}

void cm__yuv_luma_room_c(const cm__room *room, const cm_plane *luma, const cm__yuv_chroma *c,
                         cm_plane *lo, cm_plane *hi)
{
    const int cw = (luma->width + (1 << c->sx) - 1) >> c->sx;
    const int ch = (luma->height + (1 << c->sy) - 1) >> c->sy;
    for (int y = 0; y < luma->height; y++)
        room_row_c(room, c, cw, ch, y, luma->data + y * luma->stride, lo->data + y * lo->stride,
                   hi->data + y * hi->stride, luma->width);
}

/* One pass over a row: the room of each pixel's luma with one of its chroma
 * samples' offsets (dr, dg, db per pixel), as the reference computes it.
 * Plain loads and stores so that it vectorises (AVX2 gathers the cells: two
 * gathers a pixel, which is most of its cost). */
CM__DSP_CLONES
static void room_pass(const room_tab *t, const float *restrict l, const float *restrict dr,
                      const float *restrict dg, const float *restrict db, float *restrict pl,
                      float *restrict ph, int w)
{
    for (int x = 0; x < w; x++) {
        float rgb[3] = {l[x] + dr[x], l[x] + dg[x], l[x] + db[x]};
        unsigned v[3];
        for (int k = 0; k < 3; k++)
            v[k] = (unsigned)(rgb[k] < 0 ? 0 : (rgb[k] > 255 ? 255 : rgb[k]));
        uint32_t code = t->cell[t->rg[v[0] << 8 | v[1]] + v[2]];
        float down = (float)(code >> 16) * ROOM_UNIT, up = (float)(code & 0xffff) * ROOM_UNIT;
        pl[x] = pl[x] < down ? pl[x] : down;
        ph[x] = ph[x] < up ? ph[x] : up;
    }
}

/* Each sample value's offset to red (as Cr) and to blue (as Cb), made
 * per frame by sample_offsets itself: the same floats, one load each. */
typedef struct offset_lut {
    float *red, *blue;
    unsigned n; /* values in the tables (lut_values); a sample past them is
                   converted where it lies */
} offset_lut;

/* Values a frame's tables hold: all of 8 to 12 bits; none past that (64 Ki
 * values a frame would cost more than the samples they spare). */
#define LUT_MAX_BITS 12
static unsigned lut_values(const cm__yuv_chroma *c)
{
    int bits = c->bytes == 1 ? 8 : c->bits;
    return bits <= LUT_MAX_BITS ? 1u << bits : 0;
}

static void offset_lut_make(const cm__yuv_chroma *c, float *buf, offset_lut *t)
{
    t->n = lut_values(c);
    t->red = buf;
    t->blue = buf + t->n;
    cm__yuv_chroma one = *c; /* a one-sample plane of value v */
    one.stride = 0;
    one.sx = one.sy = 0;
    for (unsigned v = 0; v < t->n; v++) {
        uint8_t sample[2];
        if (c->bytes == 1) {
            sample[0] = (uint8_t)v;
        } else {
            uint16_t s16 = (uint16_t)v;
            memcpy(sample, &s16, 2);
        }
        one.cr = one.cb = sample;
        float d[3];
        sample_offsets(&one, 0, 0, d);
        t->red[v] = d[0];
        t->blue[v] = d[2];
    }
}

/* Chroma row y's samples' offsets into s[0..2] (cw each), as
 * sample_offsets gives them: by table, every 8-bit value being in it; a
 * 16-bit sample past the table's bits converted where it lies. */
static void row_offsets(const cm__yuv_chroma *c, const offset_lut *t, int y, int cw,
                        float *restrict s0, float *restrict s1, float *restrict s2)
{
    const ptrdiff_t at = (ptrdiff_t)(y >> c->sy) * c->stride;
    const green_of g = green_weights(c);
    if (c->bytes == 1) {
        const uint8_t *cr = c->cr + at, *cb = c->cb + at;
        for (int i = 0; i < cw; i++) {
            s0[i] = t->red[cr[i]];
            s2[i] = t->blue[cb[i]];
            s1[i] = s0[i] * g.r + s2[i] * g.b;
        }
        return;
    }
    for (int i = 0; i < cw; i++) {
        uint16_t r, b;
        memcpy(&r, c->cr + at + 2 * i, 2);
        memcpy(&b, c->cb + at + 2 * i, 2);
        if (r >= t->n || b >= t->n) {
            float d[3];
            sample_offsets(c, i << c->sx, y, d);
            s0[i] = d[0], s1[i] = d[1], s2[i] = d[2];
            continue;
        }
        s0[i] = t->red[r];
        s2[i] = t->blue[b];
        s1[i] = s0[i] * g.r + s2[i] * g.b;
    }
}

/* Chroma row cy's offsets spread over the luma row (w pixels): each pixel's
 * own sample (own[0..2]: red, green, blue) and the one to its right
 * (right[0..2]; the last column has none and takes its own again, which
 * limits the same). Each sample is read and converted once, into s[0..2]
 * (cw + 1 floats each), then spread in loops that vectorise (two pixels a
 * sample, 4:2:0 and 4:2:2, as interleaving stores). */
static void spread_row(const cm__yuv_chroma *c, const offset_lut *t, int cy, int cw, int w,
                       float *s[3], float *own[3], float *right[3])
{
    const int sx = c->sx;
    row_offsets(c, t, cy << c->sy, cw, s[0], s[1], s[2]);
    for (int k = 0; k < 3; k++)
        s[k][cw] = s[k][cw - 1];
    for (int k = 0; k < 3; k++) {
        const float *restrict sk = s[k];
        float *restrict o = own[k], *restrict r = right[k];
        int x = 0;
        if (sx == 1)
            for (; x + 1 < w; x += 2) {
                o[x] = o[x + 1] = sk[x >> 1];
                r[x] = r[x + 1] = sk[(x >> 1) + 1];
            }
        for (; x < w; x++) {
            o[x] = sk[x >> sx];
            r[x] = sk[(x >> sx) + 1];
        }
    }
}

/* Pixels a sample's pass skips at once where their offsets are those of
 * the pass already made (the flat fills of a cel: one pass in four). */
#define ROOM_RUN 32

/* The same, each chroma row converted once and the pixels taken a row at a
 * time per sample (the reference converted four samples per pixel: half of
 * a video stamp's time). A missing neighbour (last column or row) is the
 * pixel's own sample again: the least of the same rooms. Where a run of
 * ROOM_RUN pixels has the same offsets for another sample as for its own
 * (flat chroma: most of a cel), that sample's pass is skipped: the same
 * cells, the same least room. Bit for bit the reference's result
 * (tests/unit/test_colour.c). */
struct cm__yuv_room_rows {
    const cm__room *room;
    cm__yuv_chroma c;
    int w, cw, ch;
    float *buf;             /* NULL: the reference's way (CELMARK_DSP=c, no memory) */
    room_tab t;
    offset_lut lut;
    float *samples[3];      /* one chroma row's offsets, per sample */
    /* row[r][s]: chroma row r (0 this one, 1 the one below), sample s (0
     * own, 1 right), its red, green and blue offsets, spread over w */
    float *row[2][2][3];
    int have;               /* chroma row in row[0], or -1 */
};

cm__yuv_room_rows *cm__yuv_room_rows_new(const cm__room *room, const cm__yuv_chroma *c, int width,
                                         int height)
{
    cm__yuv_room_rows *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    const int w = width;
    r->room = room;
    r->c = *c;
    r->w = w;
    r->cw = (w + (1 << c->sx) - 1) >> c->sx;
    r->ch = (height + (1 << c->sy) - 1) >> c->sy;
    r->have = -1;
    /* two chroma rows spread, one row's samples, the offset tables */
    const size_t lut_floats = 2 * (size_t)lut_values(c);
    const size_t floats = (size_t)w * 12 + 3 * ((size_t)r->cw + 1) + lut_floats;
    if (cm__dsp_reference() || !room->yuv || c->bits < 8 || c->bits > 16 ||
        !(r->buf = cm__malloc_array(floats, sizeof(float))))
        return r;
    r->t = (room_tab){room->yuv, room->yuv + ROOM_RG};
    for (int k = 0; k < 12; k++)
        r->row[k / 6][k / 3 % 2][k % 3] = r->buf + (size_t)k * w;
    for (int k = 0; k < 3; k++)
        r->samples[k] = r->buf + (size_t)w * 12 + (size_t)k * (r->cw + 1);
    offset_lut_make(c, r->buf + (size_t)w * 12 + 3 * ((size_t)r->cw + 1), &r->lut);
    return r;
}

void cm__yuv_room_row(cm__yuv_room_rows *r, int y, const float *l, float *pl, float *ph)
{
    const cm__yuv_chroma *c = &r->c;
    const int w = r->w, cw = r->cw;
    if (!r->buf) {
        room_row_c(r->room, c, cw, r->ch, y, l, pl, ph, w);
        return;
    }
    int cy = y >> c->sy, down = cy + 1 < r->ch ? cy + 1 : cy;
    if (cy != r->have) {
        if (c->sy && r->have >= 0 && cy == r->have + 1) { /* the row below is this one */
            float *swap[2][3];
            memcpy(swap, r->row[0], sizeof(swap));
            memcpy(r->row[0], r->row[1], sizeof(swap));
            memcpy(r->row[1], swap, sizeof(swap));
        } else {
            spread_row(c, &r->lut, cy, cw, w, r->samples, r->row[0][0], r->row[0][1]);
        }
        if (c->sy) /* the row below, blended only when subsampled */
            spread_row(c, &r->lut, down, cw, w, r->samples, r->row[1][0], r->row[1][1]);
        r->have = cy;
    }
    float *const *own = r->row[0][0];
    room_pass(&r->t, l, own[0], own[1], own[2], pl, ph, w);
    for (int p = 1; p < 4; p++) {
        if (!blended(c, p))
            continue;
        float *const *d = r->row[p / 2][p % 2];
        for (int x0 = 0; x0 < w; x0 += ROOM_RUN) {
            int m = w - x0 < ROOM_RUN ? w - x0 : ROOM_RUN;
            size_t bytes = (size_t)m * sizeof(float);
            /* green's offset follows from red's and blue's */
            if (!memcmp(d[0] + x0, own[0] + x0, bytes) && !memcmp(d[2] + x0, own[2] + x0, bytes))
                continue; /* the same samples: the same rooms */
            room_pass(&r->t, l + x0, d[0] + x0, d[1] + x0, d[2] + x0, pl + x0, ph + x0, m);
        }
    }
}

void cm__yuv_room_rows_free(cm__yuv_room_rows **r)
{
    if (!r || !*r)
        return;
    free((*r)->buf);
    free(*r);
    *r = NULL;
}

void cm__yuv_luma_room(const cm__room *room, const cm_plane *luma, const cm__yuv_chroma *c,
                       cm_plane *lo, cm_plane *hi)
{
    cm__yuv_room_rows *r = cm__yuv_room_rows_new(room, c, luma->width, luma->height);
    if (!r) {
        cm__yuv_luma_room_c(room, luma, c, lo, hi);
        return;
    }
    for (int y = 0; y < luma->height; y++)
        cm__yuv_room_row(r, y, luma->data + y * luma->stride, lo->data + y * lo->stride,
                         hi->data + y * hi->stride);
    cm__yuv_room_rows_free(&r);
}

void cm__grey_room_row(const cm__room *room, const float *l, float *pl, float *ph, int w)
{
    for (int x = 0; x < w; x++) {
        float rgb[3] = {l[x], l[x], l[x]};
        cm__room_limit(cm__room_at(room, rgb), YUV_ROOM_SHARE, YUV_ROUND_MARGIN, &pl[x], &ph[x]);
    }
}

void cm__grey_luma_room(const cm__room *room, const cm_plane *luma, cm_plane *lo, cm_plane *hi)
{
    for (int y = 0; y < luma->height; y++)
        cm__grey_room_row(room, luma->data + y * luma->stride, lo->data + y * lo->stride,
                          hi->data + y * hi->stride, luma->width);
}
