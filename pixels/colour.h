/*
 * Colour difference as the eye judges it: sRGB (D65) -> CIELAB -> CIEDE2000
 * (Sharma, Wu and Dalal, "The CIEDE2000 color-difference formula:
 * implementation notes, supplementary test data, and mathematical
 * observations", Color Res. Appl. 30(1), 2005), and the per-pixel colour
 * budget of the mark built on it.
 *
 * RGB values are on the 8-bit code value scale (0..255; a 16-bit sample
 * divided by 257), as floats: the mark moves them by fractions before
 * rounding.
 *
 * The budget (cm__room): how far a pixel's colour may move along the two
 * directions the mark uses before its CIEDE2000 difference from the
 * original exceeds `de`:
 *
 *   luma  R, G, B all += t            (a grey step; what the luma mark does)
 *   blue  B += t, R, G -= 0.114/0.886 t (blue-yellow at constant luma; the
 *                                      chroma share of colour images)
 *
 * each way (down, up), in code values of the 8-bit scale. The table holds
 * them on a grid of RGB nodes, denser in the dark where the eye resolves a
 * few code values; a pixel reads the smallest room of the 8 nodes around
 * it, so the table never promises more room than its neighbours have.
 */
#ifndef CELMARK_COLOUR_H
#define CELMARK_COLOUR_H

#include "celmark/image.h"
#include "internal.h"

/* sRGB (8-bit scale, D65) to CIELAB (D65 white). */
CM__HIDDEN void cm__srgb_to_lab(const float rgb[3], double lab[3]);
/* CIEDE2000 of two CIELAB colours (kL = kC = kH = 1). */
CM__HIDDEN double cm__ciede2000(const double lab1[3], const double lab2[3]);
/* CIEDE2000 between two sRGB colours (8-bit scale). */
CM__HIDDEN double cm__de00_rgb(const float a[3], const float b[3]);

/* Nodes per RGB axis of the room table. */
#define CM__ROOM_NODES 20

/* The room of one cell, code values (8-bit scale). */
typedef struct cm__room_cell {
    float luma_down, luma_up, blue_down, blue_up;
} cm__room_cell;

typedef struct cm__room {
    float de;             /* the budget, CIEDE2000 units */
    /* 8-bit value -> its node's (the one at or below it) offset into cell,
     * for the red, green and blue axes */
    uint32_t cell_r[256], cell_g[256], cell_b[256];
    cm__room_cell *cell;  /* (CM__ROOM_NODES - 1)^3 cells, r major */
    /* the Y'CbCr passes' tables (cm__yuv_luma_room): 64 Ki red-green cell
     * rows, then each row's room codes by blue value; NULL if none */
    uint32_t *yuv;
} cm__room;

/* The table for budget de (> 0), built on first use and kept for the life of
 * the process (thread-safe). NULL when out of memory, or when a handful of
 * other budgets are kept already: then make one with cm__room_new. */
CM__HIDDEN const cm__room *cm__room_get(float de);
/* A table of one's own (NULL: out of memory); cm__room_free frees it. */
CM__HIDDEN cm__room *cm__room_new(float de);
CM__HIDDEN void cm__room_free(cm__room **t);

/* The room of the cell holding an RGB colour given as samples of 8 bits, or
 * of 16 bits (shift 8: the high byte). */
static inline const cm__room_cell *cm__room_at_samples(const cm__room *t, unsigned r, unsigned g,
                                                       unsigned b, int shift)
{
    return &t->cell[t->cell_r[r >> shift] + t->cell_g[g >> shift] + t->cell_b[b >> shift]];
}

/* The room of the cell holding an 8-bit-scale RGB colour (clamped to 0..255). */
static inline const cm__room_cell *cm__room_at(const cm__room *t, const float rgb[3])
{
    unsigned v[3];
    for (int k = 0; k < 3; k++)
        v[k] = (unsigned)(rgb[k] < 0 ? 0 : (rgb[k] > 255 ? 255 : rgb[k]));
    return cm__room_at_samples(t, v[0], v[1], v[2], 0);
}

/* Limit how far luma may move down (*pl) and up (*ph) to a cell's luma room,
 * times share, less margin (code values). */
static inline void cm__room_limit(const cm__room_cell *cell, float share, float margin,
                                  float *pl, float *ph)
{
    float down = cell->luma_down * share - margin, up = cell->luma_up * share - margin;
    down = down > 0 ? down : 0;
    up = up > 0 ? up : 0;
    *pl = *pl < down ? *pl : down;
    *ph = *ph < up ? *ph : up;
}

/* The blue-yellow axis at constant luma: B moves by c, R and G the other way
 * by c * 0.114/0.886 (0.299 + 0.587 of luma lost, 0.114 gained: net 0). */
#define CM__CHROMA_RG (0.114f / 0.886f)

/* The same colour moved by d along luma and c along blue (8-bit scale). */
static inline void cm__colour_move(const float rgb[3], float d, float c, float out[3])
{
    const float k = CM__CHROMA_RG;
    out[0] = rgb[0] + d - k * c;
    out[1] = rgb[1] + d - k * c;
    out[2] = rgb[2] + d + c;
}

/* The image's luma and headroom planes (cm_image_luma_headroom), the
 * headroom also limited to the colour budget of room (NULL: none). */
CM__HIDDEN int cm__image_luma_room(cm_ctx *ctx, const cm_image *img, const cm__room *room,
                                   cm_plane *luma, cm_plane *lo, cm_plane *hi);
/* cm_image_apply_marks within the colour budget of room (NULL: none): the
 * chroma share clamped to its room, and every pixel whose rounded change
 * would differ from the original by more than room->de (CIEDE2000)
 * shrunk until it does not, chroma first. */
CM__HIDDEN int cm__image_apply_marks_within(cm_ctx *ctx, cm_image *img, const cm_plane *marked,
                                            const cm_plane *chroma_delta, const cm__room *room);

/* The chroma of a Y'CbCr frame, as a video decoder gives it: planar Cb and
 * Cr samples of `bytes` (1 or 2, host order) holding `bits`, subsampled by
 * 2^sx across and 2^sy down, limited (16-235/240) or full range, with the
 * matrix's luma weights kr, kb (BT.709: 0.2126, 0.0722). */
typedef struct cm__yuv_chroma {
    const uint8_t *cb, *cr;
    ptrdiff_t stride; /* bytes between chroma rows (both planes) */
    int bytes, bits, sx, sy, limited;
    float kr, kb;
} cm__yuv_chroma;

/* What a video frame's luma gets of its cell's room: this share, less
 * this margin (code values), since no pixel of it is checked after
 * rounding (colour.c). */
#define CM__YUV_ROOM_SHARE 0.85f
#define CM__YUV_ROUND_MARGIN 0.6f

/* Limit lo/hi (how far luma may move, 8-bit scale) of each pixel of a
 * Y'CbCr frame to the colour budget of room, the colour being the one the
 * frame shows: luma (8-bit scale, as the stamper sees it) with the chroma
 * of the pixel's chroma sample, through the frame's matrix. A luma change
 * moves R, G and B alike, the room's luma direction. */
CM__HIDDEN void cm__yuv_luma_room(const cm__room *room, const cm_plane *luma,
                                  const cm__yuv_chroma *c, cm_plane *lo, cm_plane *hi);
/* Its plain reference (cm__yuv_luma_room is it when CELMARK_DSP=c). */
CM__HIDDEN void cm__yuv_luma_room_c(const cm__room *room, const cm_plane *luma,
                                    const cm__yuv_chroma *c, cm_plane *lo, cm_plane *hi);
/* The same a row at a time, for a caller that wants no lo/hi planes:
 * made once per frame (NULL: out of memory); cm__yuv_room_row limits row
 * y's lo/hi (w floats, set to the headroom first) from that row's luma. Rows
 * may come in any order; consecutive ones share their chroma rows' work. */
typedef struct cm__yuv_room_rows cm__yuv_room_rows;
CM__HIDDEN cm__yuv_room_rows *cm__yuv_room_rows_new(const cm__room *room, const cm__yuv_chroma *c,
                                                    int width, int height);
CM__HIDDEN void cm__yuv_room_row(cm__yuv_room_rows *r, int y, const float *luma, float *lo,
                                 float *hi);
CM__HIDDEN void cm__yuv_room_rows_free(cm__yuv_room_rows **r);
/* The same for a grey frame (R = G = B = luma); and one row of w pixels. */
CM__HIDDEN void cm__grey_room_row(const cm__room *room, const float *luma, float *lo, float *hi,
                                  int w);
CM__HIDDEN void cm__grey_luma_room(const cm__room *room, const cm_plane *luma, cm_plane *lo,
                                   cm_plane *hi);

#endif
