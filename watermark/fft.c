/* 2-D FFT on av_tx: rows, then columns through a gather buffer (see fft.h). */
#include "fft.h"

#include <libavutil/mem.h>
#include <string.h>

int cm__fft_good_size(int n)
{
    if (n < 1)
        n = 1;
    int best = 0;
    static const int bases[] = {1, 3, 5, 15};
    for (int b = 0; b < 4; b++) {
        long v = bases[b];
        while (v < n)
            v *= 2;
        if (!best || v < best)
            best = (int)v;
    }
    return best;
}

static int tx(AVTXContext **c, av_tx_fn *fn, int n, int inverse)
{
    float scale = 1.0f;
    return av_tx_init(c, fn, AV_TX_FLOAT_FFT, inverse, n, &scale, AV_TX_UNALIGNED);
}

int cm__fft2_init(cm__fft2 *f, int w, int h)
{
    memset(f, 0, sizeof(*f));
    f->w = w;
    f->h = h;
    int m = w > h ? w : h;
    if (tx(&f->row_f, &f->row_ff, w, 0) < 0 || tx(&f->row_i, &f->row_if, w, 1) < 0 ||
        tx(&f->col_f, &f->col_ff, h, 0) < 0 || tx(&f->col_i, &f->col_if, h, 1) < 0)
        goto fail;
    f->tmp_in = av_malloc(sizeof(AVComplexFloat) * (size_t)m);
    f->tmp_out = av_malloc(sizeof(AVComplexFloat) * (size_t)m);
    f->col_buf = av_malloc(sizeof(AVComplexFloat) * (size_t)h * CM__FFT_COLS);
    if (!f->tmp_in || !f->tmp_out || !f->col_buf)
        goto fail;
    return CM_OK;
fail:
    cm__fft2_free(f);
    return CM_E_NOMEM;
}

void cm__fft2_free(cm__fft2 *f)
{
    av_tx_uninit(&f->row_f);
    av_tx_uninit(&f->row_i);
    av_tx_uninit(&f->col_f);
    av_tx_uninit(&f->col_i);
    av_freep(&f->tmp_in);
    av_freep(&f->tmp_out);
    av_freep(&f->col_buf);
}

void cm__fft2_run(cm__fft2 *f, AVComplexFloat *data, int inverse)
{
    AVTXContext *rc = inverse ? f->row_i : f->row_f;
    av_tx_fn rf = inverse ? f->row_if : f->row_ff;
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    for (int y = 0; y < f->h; y++) {
        AVComplexFloat *row = data + (size_t)y * f->w;
        memcpy(f->tmp_in, row, cs * (size_t)f->w);
        rf(rc, row, f->tmp_in, cs);
    }
    cm__fft2_columns(f, data, inverse);
}

/* The column pass over columns [x_begin, x_end). */
static void columns(cm__fft2 *f, AVComplexFloat *data, int inverse, int x_begin, int x_end)
{
    AVTXContext *cc = inverse ? f->col_i : f->col_f;
    av_tx_fn cf = inverse ? f->col_if : f->col_ff;
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    /* columns in blocks: gather CM__FFT_COLS columns with row-contiguous reads,
     * transform each, scatter back the same way */
    for (int x0 = x_begin; x0 < x_end; x0 += CM__FFT_COLS) {
        int nc = x_end - x0 < CM__FFT_COLS ? x_end - x0 : CM__FFT_COLS;
        for (int y = 0; y < f->h; y++) {
            const AVComplexFloat *src = data + (size_t)y * f->w + x0;
            for (int c = 0; c < nc; c++)
                f->col_buf[(size_t)c * f->h + y] = src[c];
        }
        for (int c = 0; c < nc; c++) {
            AVComplexFloat *col = f->col_buf + (size_t)c * f->h;
            memcpy(f->tmp_in, col, cs * (size_t)f->h);
            cf(cc, col, f->tmp_in, cs);
        }
        for (int y = 0; y < f->h; y++) {
            AVComplexFloat *dst = data + (size_t)y * f->w + x0;
            for (int c = 0; c < nc; c++)
                dst[c] = f->col_buf[(size_t)c * f->h + y];
        }
    }
}

void cm__fft2_columns(cm__fft2 *f, AVComplexFloat *data, int inverse)
{
    columns(f, data, inverse, 0, f->w);
}

void cm__fft2_forward_band(cm__fft2 *f, AVComplexFloat *data, int band)
{
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    for (int y = 0; y < f->h; y++) {
        AVComplexFloat *row = data + (size_t)y * f->w;
        memcpy(f->tmp_in, row, cs * (size_t)f->w);
        f->row_ff(f->row_f, row, f->tmp_in, cs);
    }
    if (2 * band + 1 >= f->w) {
        columns(f, data, 0, 0, f->w);
        return;
    }
    columns(f, data, 0, 0, band + 1);
    columns(f, data, 0, f->w - band, f->w);
}

void cm__fft2_inverse_band(cm__fft2 *f, AVComplexFloat *data, int band)
{
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    for (int y = 0; y < f->h; y++) {
        if (y > band && y < f->h - band)
            continue; /* a zero row's transform is itself */
        AVComplexFloat *row = data + (size_t)y * f->w;
        memcpy(f->tmp_in, row, cs * (size_t)f->w);
        f->row_if(f->row_i, row, f->tmp_in, cs);
    }
    columns(f, data, 1, 0, f->w);
}

/*
 * Real rows are transformed two at a time with one complex FFT
 * (z = x + i y, then X_k = (Z_k + conj Z_-k) / 2, Y_k = (Z_k - conj Z_-k) / 2i)
 * rather than with av_tx's AV_TX_FLOAT_RDFT: in FFmpeg 5.1 (Debian 12) an
 * RDFT context created after another was freed can return wrong results
 * for some lengths (measured: 1024 and 240 after 1536, 1280), and this code
 * frees and creates contexts of many sizes.
 */
int cm__rfft2_init(cm__rfft2 *f, int w, int h)
{
    memset(f, 0, sizeof(*f));
    if (w < 2 || w % 2)
        return CM_E_INVAL;
    f->w = w;
    f->h = h;
    f->hw = w / 2 + 1;
    if (tx(&f->row_f, &f->row_ff, w, 0) < 0 || tx(&f->row_i, &f->row_if, w, 1) < 0)
        goto fail;
    if (cm__fft2_init(&f->cols, f->hw, h))
        goto fail;
    f->zin = av_malloc(sizeof(AVComplexFloat) * (size_t)w);
    f->zout = av_malloc(sizeof(AVComplexFloat) * (size_t)w);
    if (!f->zin || !f->zout)
        goto fail;
    return CM_OK;
fail:
    cm__rfft2_free(f);
    return CM_E_NOMEM;
}

void cm__rfft2_free(cm__rfft2 *f)
{
    av_tx_uninit(&f->row_f);
    av_tx_uninit(&f->row_i);
    cm__fft2_free(&f->cols);
    av_freep(&f->zin);
    av_freep(&f->zout);
}

void cm__rfft2_forward(cm__rfft2 *f, const float *real, AVComplexFloat *spec)
{
    cm__rfft2_forward_rows(f, real, f->h, spec);
}

void cm__rfft2_forward_rows(cm__rfft2 *f, const float *real, int rows, AVComplexFloat *spec)
{
    int w = f->w, hw = f->hw;
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    if (rows > f->h)
        rows = f->h;
    /* the zero rows' transforms are zero */
    memset(spec + (size_t)rows * hw, 0, sizeof(AVComplexFloat) * (size_t)(f->h - rows) * hw);
    for (int y = 0; y < rows; y += 2) {
        const float *a = real + (size_t)y * w;
        const float *b = y + 1 < rows ? a + w : NULL;
        for (int x = 0; x < w; x++) {
            f->zin[x].re = a[x];
            f->zin[x].im = b ? b[x] : 0;
        }
        f->row_ff(f->row_f, f->zout, f->zin, cs);
        AVComplexFloat *X = spec + (size_t)y * hw, *Y = b ? X + hw : NULL;
        for (int k = 0; k < hw; k++) {
            AVComplexFloat z = f->zout[k], zc = f->zout[(w - k) % w];
            X[k].re = 0.5f * (z.re + zc.re);
            X[k].im = 0.5f * (z.im - zc.im);
            if (Y) {
                Y[k].re = 0.5f * (z.im + zc.im);
                Y[k].im = 0.5f * (zc.re - z.re);
            }
        }
    }
    cm__fft2_columns(&f->cols, spec, 0);
}

void cm__rfft2_inverse(cm__rfft2 *f, AVComplexFloat *spec, float *real)
{
    cm__rfft2_inverse_rows(f, spec, real, f->h, 0);
}

void cm__rfft2_inverse_rows(cm__rfft2 *f, AVComplexFloat *spec, float *real, int top, int bottom)
{
    int w = f->w, hw = f->hw;
    const ptrdiff_t cs = sizeof(AVComplexFloat);
    cm__fft2_columns(&f->cols, spec, 1);
    for (int y = 0; y < f->h; y += 2) {
        if (y >= top && y + 1 < f->h - bottom)
            continue; /* neither row of the pair is wanted */
        const AVComplexFloat *X = spec + (size_t)y * hw;
        const AVComplexFloat *Y = y + 1 < f->h ? X + hw : NULL;
        /* Z = X + i Y over the full length, X and Y Hermitian-extended */
        for (int k = 0; k < w; k++) {
            int kk = k < hw ? k : w - k;
            float xr = X[kk].re, xi = k < hw ? X[kk].im : -X[kk].im;
            float yr = Y ? Y[kk].re : 0, yi = Y ? (k < hw ? Y[kk].im : -Y[kk].im) : 0;
            f->zin[k].re = xr - yi;
            f->zin[k].im = xi + yr;
        }
        f->row_if(f->row_i, f->zout, f->zin, cs);
        float *a = real + (size_t)y * w;
        for (int x = 0; x < w; x++)
            a[x] = f->zout[x].re;
        if (Y)
            for (int x = 0; x < w; x++)
                a[w + x] = f->zout[x].im;
    }
}
