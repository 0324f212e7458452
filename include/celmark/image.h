/*
 * celmark — images, the luma plane, and reading/writing still files.
 *
 * A cm_image holds decoded samples plus the source file's metadata (an opaque
 * cm_image_meta that the writer carries to the output untouched). The
 * watermark core never sees a cm_image: it works on a cm_plane of luma in
 * 8-bit code values (0..255 whatever the source depth; 16-bit sources are
 * divided by 257, so 16-bit precision is kept as fractions).
 */
#ifndef CELMARK_IMAGE_H
#define CELMARK_IMAGE_H

#include "celmark/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One frame as the watermark core sees it: a luma plane it may modify.
 *  stride is in floats (elements), not bytes. */
typedef struct cm_plane {
    float *data;
    int width, height;
    ptrdiff_t stride;
} cm_plane;

typedef enum cm_sample {
    CM_SAMPLE_U8 = 1,  /**< unsigned 8-bit */
    CM_SAMPLE_U16 = 2, /**< unsigned 16-bit, host byte order */
} cm_sample;

typedef struct cm_image_meta cm_image_meta;

/** Decoded still image: interleaved samples, rows top to bottom. */
typedef struct cm_image {
    int width, height;
    int channels;     /**< 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
    int has_alpha;    /**< 1 if the last channel is alpha */
    cm_sample sample; /**< storage type of each sample */
    int bit_depth;    /**< 8 or 16 */
    uint8_t *data;    /**< owned by the image */
    ptrdiff_t stride; /**< bytes between rows */
    cm_image_meta *meta; /**< source metadata (format-specific), may be NULL */
} cm_image;

/** Limits applied while reading untrusted files. Each is checked before
 *  the memory or time it bounds is spent where the format allows (a frame
 *  size in a header is refused before the frame is allocated), and a file
 *  over a limit fails with CM_E_LIMIT naming the limit. */
typedef struct cm_limits {
    uint64_t max_pixels;     /**< per frame; default 1<<28 (268 Mpixel) */
    uint64_t max_file_bytes; /**< default 4 GiB */
    uint64_t max_meta_bytes; /**< ancillary metadata per file; default 64 MiB */
    uint64_t max_frames;     /**< video frames per file (stamp and verify);
                                  default 1,000,000 (11.5 h at 24 fps, 4.6 h
                                  at 60 fps: longer than any deliverable) */
    double max_decode_seconds; /**< wall-clock seconds spent demuxing and
                                  decoding one video (marking, encoding and
                                  detection not counted); default 3600. A
                                  decoder busy inside one packet is only
                                  stopped when it returns; demuxer reads are
                                  interrupted. <= 0: no limit */
} cm_limits;

/** Fill *l with the defaults documented in cm_limits. */
CM_API void cm_limits_default(cm_limits *l);

#define CM_INFO_MAX_TAGS 64

/** Descriptive tag (colour, resolution, text keys...) as printable text. */
typedef struct cm_info_tag {
    char key[32];
    char value[224];
} cm_info_tag;

/** What `celmark info` prints about a file. */
typedef struct cm_image_info {
    char format[16];      /**< "png", "tiff", "dpx", or for files read
                               through libav the demuxer's name: "jpeg",
                               "webp", "bmp", "gif", "tiff" (layouts celmark
                               cannot write back)... */
    char color_type[24];  /**< source layout: "gray", "gray+alpha", "rgb",
                               "rgba", "palette", "yuv", "yuv+alpha" */
    int width, height;
    int bit_depth;        /**< source bits per sample (palette: index depth) */
    int channels;         /**< channels after decoding (palette expands to 3 or 4) */
    int has_alpha;
    int interlaced;
    int converted;        /**< 1 if the output layout will differ from the source (palette -> RGB/RGBA) */
    int ntags;
    cm_info_tag tags[CM_INFO_MAX_TAGS];
} cm_image_info;

/** Writing flags for cm_image_write(). */
enum {
    CM_WRITE_FORCE = 1 /**< replace an existing output file */
};

/**
 * Read a still image file. The format is recognised by content, never by the
 * name: PNG (libpng, every layout and chunk kept), OpenEXR (one part shown as
 * 16-bit sRGB-encoded samples, every part and attribute kept for writing
 * back; see README "OpenEXR"), TIFF (libtiff: the first
 * page of 8/16-bit grey or RGB with or without alpha; every tag and the
 * other pages kept for the writer), DPX (image element 0: luma, RGB or RGBA
 * at 8, 10, 12 or 16 bits, decoded to 8 or 16 bits; the whole file kept for
 * the writer), and through FFmpeg's libav JPEG, WebP, BMP, GIF (first
 * frame), TIFFs of other layouts (palette, YCbCr, CMYK, float...) and the
 * other still formats it decodes (read-only; YUV and palette sources are
 * converted to RGB/RGBA, more than 8 bits per component to 16-bit samples).
 * @param limits NULL for defaults.
 * @return CM_OK and *out (free with cm_image_free), or CM_E_IO (cannot open),
 *         CM_E_FORMAT (not a supported format), CM_E_CORRUPT (truncated, bad
 *         CRC, undecodable...), CM_E_LIMIT (too many pixels / too much
 *         metadata; refused before allocating the pixels), CM_E_UNSUPPORTED
 *         (a known format this build cannot decode), CM_E_NOMEM. Details in
 *         ctx.
 */
CM_API int cm_image_read(cm_ctx *ctx, const char *path, const cm_limits *limits,
                         cm_image **out);

/**
 * Write img to path. The format is the one path's extension names if it is a
 * writable format (".png", ".exr", ".tif", ".tiff", ".dpx", any case),
 * otherwise the format img was read from (PNG for images made in memory).
 * Source metadata is carried when the output format is the source format:
 * an EXR keeps every part, attribute and channel, a TIFF every tag, page,
 * compression and layout, a DPX every byte but element 0's pixels. Formats
 * read through libav (JPEG, WebP...) are read-only: write them under a
 * ".png", ".exr", ".tif" or ".dpx" name. Written to a temporary file in the
 * same folder and renamed into place: on failure no output file is left
 * behind.
 * @param flags CM_WRITE_FORCE to replace an existing file.
 * @return CM_OK, CM_E_EXISTS (path exists and no FORCE), CM_E_IO, CM_E_INVAL
 *         (also: an image read from an EXR whose size or layout was
 *         changed), CM_E_UNSUPPORTED ("<path>: cannot write jpeg files; write
 *         a .png instead": the chosen format has no writer; or a layout the
 *         format cannot hold, such as grey+alpha DPX), CM_E_CORRUPT (a damaged
 *         TIFF source: tags, private IFDs, further pages or strips libtiff
 *         cannot read, which the copy would lose).
 */
CM_API int cm_image_write(cm_ctx *ctx, const cm_image *img, const char *path,
                          int flags);

/** Describe an image read by cm_image_read(). */
CM_API int cm_image_get_info(const cm_image *img, cm_image_info *info);

/**
 * Allocate an image with no metadata (written as PNG).
 * @return CM_OK, CM_E_INVAL (bad geometry), CM_E_LIMIT, CM_E_NOMEM.
 */
CM_API int cm_image_new(cm_image **out, int width, int height, int channels,
                        int has_alpha, int bit_depth);

/** A new image (*out, free with cm_image_free) with in's size, layout and
 *  pixels, without its metadata. 0, CM_E_INVAL or CM_E_NOMEM. */
CM_API int cm_image_copy_pixels(const cm_image *in, cm_image **out);

/** Free an image; accepts NULL and sets *img to NULL. */
CM_API void cm_image_free(cm_image **img);

/**
 * Compute the luma plane of img (BT.601 weights on RGB, the grey value on
 * grey), in 8-bit code values. Allocates out->data (free with cm_plane_free).
 */
CM_API int cm_image_to_plane(cm_ctx *ctx, const cm_image *img, cm_plane *out);

/**
 * Apply a modified luma plane back to img: each pixel's change
 * (marked - orig) is added to every colour channel (R, G, B or grey), rounded
 * and clamped; alpha is never touched and fully transparent pixels keep their
 * colour. An unmodified plane leaves img bit-identical.
 */
CM_API int cm_image_apply_plane(cm_ctx *ctx, cm_image *img, const cm_plane *orig,
                                const cm_plane *marked);

/**
 * Per-pixel headroom for a luma change without clipping any colour channel:
 * lo = how far luma may go down, hi = how far up (code values, >= 0). 0/0
 * where a pixel must not change (fully transparent). Allocates both planes.
 */
CM_API int cm_image_headroom(cm_ctx *ctx, const cm_image *img, cm_plane *lo,
                             cm_plane *hi);

/**
 * cm_image_to_plane and cm_image_headroom in one pass over the image.
 * Allocates all three planes (free with cm_plane_free); none on failure.
 */
CM_API int cm_image_luma_headroom(cm_ctx *ctx, const cm_image *img, cm_plane *luma,
                                  cm_plane *lo, cm_plane *hi);

/**
 * cm_image_apply_plane with the original luma recomputed from img itself
 * (bit-identical to what cm_image_to_plane gave), so no copy of the
 * original plane is needed. marked must come from img's luma.
 */
CM_API int cm_image_apply_luma(cm_ctx *ctx, cm_image *img, const cm_plane *marked);

/** 1 if img has three colour channels (RGB or RGBA): it can carry the
 *  blue-yellow share of the mark; 0 for grey, grey+alpha or NULL. */
CM_API int cm_image_is_colour(const cm_image *img);

/**
 * The image's blue-yellow chroma plane (B - Y, 8-bit code values; 0 for grey
 * images) and per pixel how far it may move down (lo) or up (hi) along the
 * blue-yellow axis at constant luma without clipping a channel. lo and hi
 * may both be NULL (chroma only). Allocates the planes asked for; none on
 * failure.
 */
CM_API int cm_image_chroma(cm_ctx *ctx, const cm_image *img, cm_plane *chroma, cm_plane *lo,
                           cm_plane *hi);

/**
 * cm_image_apply_luma plus, if chroma_delta is not NULL, a change along the
 * blue-yellow axis at constant luma (B up by the delta, R and G down by
 * 0.114/0.886 of it), clamped per pixel so no channel clips, both rounded
 * once per channel. Grey images ignore the chroma delta.
 */
CM_API int cm_image_apply_marks(cm_ctx *ctx, cm_image *img, const cm_plane *marked,
                                const cm_plane *chroma_delta);

/** How far a copy's colours are from its original's, pixel by pixel, as
 *  the eye judges them: CIEDE2000 of the two sRGB colours (D65), grey as
 *  R = G = B. Fully transparent pixels are not counted. */
typedef struct cm_de_stats {
    double mean, p99, p999, max; /**< CIEDE2000 over the pixels (percentiles
                                      to 0.001) */
    double over_1, over_2_3;     /**< share of pixels above 1.0 and above 2.3
                                      (a just-noticeable difference) */
    double dark_dy_max;          /**< largest |luma change| among pixels whose
                                      original luma is below 32, code values
                                      (8-bit scale) */
    uint64_t pixels;             /**< pixels counted */
} cm_de_stats;

/**
 * Compares copy with orig (same size, channels and depth). Returns 0 and
 * fills *out, or CM_E_INVAL (mismatched images), CM_E_NOMEM.
 */
CM_API int cm_image_delta_e(cm_ctx *ctx, const cm_image *orig, const cm_image *copy,
                            cm_de_stats *out);

/** Allocate a zeroed width x height plane. */
CM_API int cm_plane_alloc(cm_plane *p, int width, int height);

/** Free a plane's data; accepts NULL. */
CM_API void cm_plane_free(cm_plane *p);

#ifdef __cplusplus
}
#endif
#endif
