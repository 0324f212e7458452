/*
 * The in-memory image: allocation, checks, copies. Files are formats/'s
 * (formats/image.c reads and writes them); the luma plane and the marks'
 * way back into the samples are pixels/planes.c's.
 */
#include "pixels.h"

#include <stdlib.h>
#include <string.h>

static int layout_ok(int channels, int has_alpha, int bit_depth)
{
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16))
        return 0;
    return has_alpha == (channels == 2 || channels == 4);
}

int cm__image_alloc(cm_image **out, int width, int height, int channels,
                    int has_alpha, int bit_depth, uint64_t max_pixels)
{
    cm_image *img = NULL;
    size_t row, total;

    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (width <= 0 || height <= 0 || !layout_ok(channels, has_alpha, bit_depth))
        return CM_E_INVAL;
    if ((uint64_t)width * (uint64_t)height > max_pixels)
        return CM_E_LIMIT;
    if (cm__mul_size((size_t)width, (size_t)channels * (size_t)(bit_depth / 8),
                     &row) ||
        row > PTRDIFF_MAX || cm__mul_size(row, (size_t)height, &total))
        return CM_E_LIMIT;

    if (!(img = calloc(1, sizeof(*img))))
        goto fail;
    if (!(img->data = calloc(1, total)))
        goto fail;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->has_alpha = has_alpha;
    img->bit_depth = bit_depth;
    img->sample = bit_depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8;
    img->stride = (ptrdiff_t)row;
    *out = img;
    return CM_OK;

fail:
    free(img);
    return CM_E_NOMEM;
}

int cm_image_copy_pixels(const cm_image *in, cm_image **out)
{
    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (cm__image_check(in) < 0)
        return CM_E_INVAL;
    int ret = cm_image_new(out, in->width, in->height, in->channels, in->has_alpha,
                           in->bit_depth);
    if (ret)
        return ret;
    size_t row = (size_t)in->width * in->channels * (in->bit_depth / 8);
    for (int y = 0; y < in->height; y++)
        memcpy((*out)->data + y * (*out)->stride, in->data + y * in->stride, row);
    return CM_OK;
}

int cm_image_new(cm_image **out, int width, int height, int channels,
                 int has_alpha, int bit_depth)
{
    return cm__image_alloc(out, width, height, channels, has_alpha, bit_depth,
                           CM__DEFAULT_MAX_PIXELS);
}

void cm__image_meta_free(cm_image_meta *meta)
{
    if (!meta)
        return;
    if (meta->priv_free)
        meta->priv_free(meta->priv);
    free(meta);
}

void cm_image_free(cm_image **img)
{
    if (!img || !*img)
        return;
    cm__image_meta_free((*img)->meta);
    free((*img)->data);
    free(*img);
    *img = NULL;
}

int cm__image_check(const cm_image *img)
{
    size_t row;

    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        !layout_ok(img->channels, img->has_alpha, img->bit_depth))
        return CM_E_INVAL;
    if (img->sample != (img->bit_depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8))
        return CM_E_INVAL;
    if (cm__mul_size((size_t)img->width,
                     (size_t)img->channels * (size_t)(img->bit_depth / 8), &row) ||
        img->stride <= 0 || (size_t)img->stride < row)
        return CM_E_INVAL;
    if (img->bit_depth == 16 && img->stride % 2)
        return CM_E_INVAL; /* rows of uint16_t must stay aligned */
    return CM_OK;
}
