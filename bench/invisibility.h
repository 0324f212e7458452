/*
 * What the mark looks like: the invisibility measures of bench/robustness
 * (luma PSNR and SSIM, the flat-fill map, a contrast-sensitivity-weighted
 * error inside fills) and the flat-fill crop it writes for the eye.
 */
#ifndef CELMARK_BENCH_INVISIBILITY_H
#define CELMARK_BENCH_INVISIBILITY_H

#include "celmark/celmark.h"

#include <stddef.h>
#include <stdint.h>

#define PSNR_CAP_DB 100.0       /* PSNR reported for an unchanged frame, dB */
#define CSF_ZOOM 2.0            /* the artist's inspection zoom of the CSF measure */
#define CROP_SIDE 192           /* region cut from frame 1, pixels */
#define CROP_ZOOM 2             /* nearest-neighbour upscale */
#define CROP_DIFF_GAIN 16.0     /* difference panel: 128 + gain * (stamped - orig) */

/* Pixel (x, y) of an 8-bit image. */
static inline const uint8_t *px(const cm_image *img, int x, int y)
{
    return img->data + y * img->stride + (ptrdiff_t)x * img->channels;
}

/* Flat-fill map of an 8-bit RGB image (pixels inside an 8x8 window of one
 * colour); returns their number, or -1 when out of memory. */
long flat_fill_map(const cm_image *img, uint8_t *flat);

/* Luma PSNR in dB (PSNR_CAP_DB when identical). */
double psnr(const cm_plane *a, const cm_plane *b);

/* Mean SSIM of two luma planes; -1 when out of memory. */
double ssim(const cm_plane *a, const cm_plane *b);

/* CSF-weighted RMS of marked - orig over the flat pixels, at 1 arcmin per
 * pixel (out[0]) and at CSF_ZOOM (out[1]); 0 or a CM_E code. */
int csf_weighted_flat_rms(const cm_plane *orig, const cm_plane *marked, const uint8_t *flat,
                          double out[2]);

typedef struct crop_box {
    int x, y; /* top-left in the frame; x < 0: none found */
} crop_box;

/* A CROP_SIDE square where a mid-tone flat fill meets an ink line. */
int find_crop(const cm_image *img, const cm_plane *luma, const uint8_t *flat, crop_box *box);

/* original | stamped | difference x CROP_DIFF_GAIN around grey, each
 * CROP_ZOOM x, written as a PNG at path. */
int write_crop(cm_ctx *ctx, const cm_image *orig, const cm_image *marked, crop_box box,
               const char *path);

#endif
