/*
 * The mark's tile: keyed layout of sync and payload chips, and the
 * band-limited rendering of a chip grid into a periodic pixel tile.
 *
 *     T x T waxels (chips)                N x N pixels, N = T*s
 *   +--+--+--+--+                      +-----------------+
 *   |S |p7|p2|S |   FFT, zero-pad,     |  smooth +/-1    |
 *   +--+--+--+--+   cut lows, IFFT     |  pattern, unit  |   repeated over
 *   |p0|S |p5|p1|  ---------------->   |  RMS, periodic  |   the whole frame
 *   ...                                +-----------------+
 *
 * S = sync chip (known keyed +/-1, 25 % of waxels). pK = payload chip K: it
 * carries coded bit (K mod CM_PAYLOAD_CODED_BITS within its half) times a
 * keyed spreading sign. Payload chips are split in two keyed halves, each
 * carrying the whole codeword, so an id decoded from one half can be scored
 * on the other.
 */
#ifndef CELMARK_PATTERN_H
#define CELMARK_PATTERN_H

#include "celmark/key.h"
#include "internal.h"
#include "payload.h"

#include <libavutil/tx.h>

/* Lowest spatial frequency kept in the tile, in cycles per waxel: below it
 * the mark would be a slow luminance wave that the eye sees on flat colour
 * and that host content (gradients, shading) swamps. */
#define CM__LOWCUT_CYCLES_PER_WAXEL 0.06

typedef struct cm__layout {
    int T;             /* waxels per tile side */
    int nsync, npay;   /* chip counts; nsync + npay = T*T */
    uint32_t *sync_idx;/* waxel index of each sync chip */
    int8_t *sync_val;  /* its value, +/-1 */
    uint32_t *pay_idx; /* waxel index of each payload chip */
    uint16_t *pay_bit; /* coded bit it carries */
    int8_t *pay_sign;  /* keyed spreading sign */
} cm__layout;

CM__HIDDEN int cm__layout_new(const cm_key *key, int T, cm__layout **out);
CM__HIDDEN void cm__layout_free(cm__layout **l);

/* Chip grid (T*T floats, row-major) of the full mark for coded bits. */
CM__HIDDEN void cm__layout_chips(const cm__layout *l, const uint8_t *coded, float *chips);
/* Chip grid holding only the sync chips (payload waxels zero). */
CM__HIDDEN void cm__layout_sync_chips(const cm__layout *l, float *chips);

/* Band-limited renderer between a T x T chip grid and an N x N tile. */
typedef struct cm__render {
    int T, s, N;
    struct cm__fft2 *small, *big;
    AVComplexFloat *buf_small, *buf_big;
} cm__render;

CM__HIDDEN int cm__render_init(cm__render *r, int T, int s);
CM__HIDDEN void cm__render_free(cm__render *r);

/* chips (T*T) -> tile (N*N), scaled to unit RMS. */
CM__HIDDEN void cm__render_tile(cm__render *r, const float *chips, float *tile);

/* Adjoint of the unscaled rendering, with a cyclic shift (dx, dy) in tile
 * pixels applied first: soft[w] = sum_p tile'(p + d) * basis_w(p), where
 * tile' is the tile mirrored left-right when flip is set. spectrum is the
 * N*N forward FFT of the tile (only the band is read). */
CM__HIDDEN void cm__render_adjoint(cm__render *r, const AVComplexFloat *spectrum, int flip,
                                   double dx, double dy, float *soft);

/* Is bin (kx, ky) of a T x T spectrum inside the rendering's band? */
CM__HIDDEN int cm__render_kept(int kx, int ky, int T);
/* Signed frequency of bin k of an n-point FFT, and its bin in an m-point one. */
CM__HIDDEN int cm__fft_freq(int k, int n);
CM__HIDDEN int cm__fft_bin(int f, int m);

/* Forward N*N FFT of a real tile into out (N*N). */
CM__HIDDEN void cm__render_spectrum(cm__render *r, const float *tile, AVComplexFloat *out);

#endif
