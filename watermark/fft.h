/*
 * 2-D complex FFTs for the watermark core, on libavutil's av_tx.
 *
 * Buffers need no special alignment (AV_TX_UNALIGNED): rows of a real
 * transform start at odd offsets. av_tx is fast for sizes 2^k, 3*2^k, 5*2^k and 15*2^k and falls back to an
 * O(n^2) transform otherwise, so callers pad to cm__fft_good_size().
 * Transforms are unnormalised: inverse(forward(x)) = w*h*x.
 */
#ifndef CELMARK_FFT_H
#define CELMARK_FFT_H

#include "internal.h"

#include <libavutil/tx.h>

/* Columns transformed per block: 16 complex floats = two cache lines a row. */
#define CM__FFT_COLS 16

typedef struct cm__fft2 {
    int w, h;
    AVTXContext *row_f, *row_i, *col_f, *col_i;
    av_tx_fn row_ff, row_if, col_ff, col_if;
    AVComplexFloat *tmp_in, *tmp_out; /* max(w, h) each */
    AVComplexFloat *col_buf;          /* h * CM__FFT_COLS: a block of columns */
} cm__fft2;

/* Smallest size >= n that av_tx transforms fast. */
CM__HIDDEN int cm__fft_good_size(int n);

CM__HIDDEN int cm__fft2_init(cm__fft2 *f, int w, int h);
CM__HIDDEN void cm__fft2_free(cm__fft2 *f);

/* In-place 2-D transform of a w*h row-major array. inverse: sign +1. */
CM__HIDDEN void cm__fft2_run(cm__fft2 *f, AVComplexFloat *data, int inverse);
/* The forward transform where only the columns of frequency |kx| <= band
 * are read: the others are left after the row pass. Those columns bit for
 * bit cm__fft2_run's (tests/dsp). */
CM__HIDDEN void cm__fft2_forward_band(cm__fft2 *f, AVComplexFloat *data, int band);
/* The inverse transform of data that is zero outside the rows of
 * frequency |ky| <= band: their row transforms (zero) are skipped. Bit for
 * bit cm__fft2_run's. */
CM__HIDDEN void cm__fft2_inverse_band(cm__fft2 *f, AVComplexFloat *data, int band);

/*
 * Real 2-D transform for real data (the autocorrelation): rows two at a time
 * by one complex FFT (w reals -> w/2+1 complex each), then complex FFTs down
 * those w/2+1 columns.
 * Half the work of the complex transform; tests/dsp checks it against it.
 */
typedef struct cm__rfft2 {
    int w, h, hw; /* hw = w/2 + 1 complex values per row */
    AVTXContext *row_f, *row_i;
    av_tx_fn row_ff, row_if;
    cm__fft2 cols; /* hw x h complex, columns only */
    AVComplexFloat *zin, *zout; /* w each: a packed pair of rows */
} cm__rfft2;

/* w must be even. */
CM__HIDDEN int cm__rfft2_init(cm__rfft2 *f, int w, int h);
CM__HIDDEN void cm__rfft2_free(cm__rfft2 *f);
/* real (w*h, row-major) -> spec (hw*h, row-major) */
CM__HIDDEN void cm__rfft2_forward(cm__rfft2 *f, const float *real, AVComplexFloat *spec);
/* spec (hw*h, destroyed) -> real (w*h), unnormalised */
CM__HIDDEN void cm__rfft2_inverse(cm__rfft2 *f, AVComplexFloat *spec, float *real);
/* The same when only some rows are needed, as in an autocorrelation's small
 * lags: real's rows >= rows are taken as zero (and not read), and only
 * real's rows y < top or y >= h - bottom are written (the rest are left as
 * they were). Bit for bit the full transforms' values (tests/dsp). */
CM__HIDDEN void cm__rfft2_forward_rows(cm__rfft2 *f, const float *real, int rows,
                                       AVComplexFloat *spec);
CM__HIDDEN void cm__rfft2_inverse_rows(cm__rfft2 *f, AVComplexFloat *spec, float *real, int top,
                                       int bottom);

/* Column-only pass of a complex w*h transform (used by cm__rfft2). */
CM__HIDDEN void cm__fft2_columns(cm__fft2 *f, AVComplexFloat *data, int inverse);

#endif
