/*
 * TIFF and DPX test files with layouts and headers celmark's own writers
 * never produce: every compression, planar configuration, strip/tile
 * layout, byte order and tag a faithful writer must carry, and DPX headers
 * with timecode, film data, user data and padding. Used by the unit tests
 * and by the frame generator of the CLI tests.
 */
#ifndef CELMARK_GEN_FMTGEN_H
#define CELMARK_GEN_FMTGEN_H

#include "celmark/image.h"

#include <stdint.h>

/* Private tags written with gen_tiff.tags: a LONG array and a text. */
#define GEN_TIFF_PRIVATE_LONG 65000
#define GEN_TIFF_PRIVATE_ASCII 65001

typedef struct gen_tiff {
    uint16_t compression; /* COMPRESSION_*; default LZW */
    uint16_t predictor;   /* PREDICTOR_*, 0: no tag */
    int separate;         /* PLANARCONFIG_SEPARATE */
    uint32_t rows_per_strip; /* 0: libtiff's default */
    uint32_t tile;        /* > 0: square tiles of this size (a multiple of 16) */
    int big_endian;
    int bigtiff;
    int min_is_white;     /* grey images stored inverted */
    uint16_t alpha_type;  /* EXTRASAMPLE_* of the alpha channel; default unassociated */
    int tags;             /* description, software, artist, date, copyright,
                             resolution, orientation, page number, ICC, XMP and
                             the two private tags */
    uint32_t icc_bytes;   /* size of the (synthetic) ICC profile; default 3000 */
    int exif;             /* EXIF and GPS IFDs */
    int interop;          /* with exif: an Interoperability IFD in the EXIF IFD
                             (InteropIndex "R98", InteropVersion "0100",
                             RelatedImageWidth), pointed to by a LONG as
                             exiftool and cameras write it */
    int extra_pages;      /* 0..2 further pages: grey 8-bit LZW, then palette */
} gen_tiff;

/** Defaults: LZW, contiguous, libtiff's strips, little-endian, no tags. */
void gen_tiff_default(gen_tiff *s);

/** Write img (its samples as they are; inverted if min_is_white) as path.
 *  0 on success, -1 on failure (a message on stderr). */
int gen_write_tiff(const char *path, const cm_image *img, const gen_tiff *s);

typedef struct gen_dpx {
    int depth;            /* 8, 10, 12 or 16: the top bits of the image's samples */
    int packing;          /* 0, 1 (method A) or 2 (method B) */
    int big_endian;
    uint32_t user_bytes;  /* user data between the header and the image, 0: none */
    uint32_t eol_padding; /* bytes after each row */
    uint32_t align;       /* image data offset rounded up to a multiple of this */
    int fill_header;      /* timecode, creator, project, film and TV data */
    int second_element;   /* a second image element (alpha) after the first */
} gen_dpx;

/** Defaults: 10-bit, method A, big-endian, plain header. */
void gen_dpx_default(gen_dpx *s);

/** The value a file sample of `depth` bits holds for a 16- or 8-bit image
 *  sample: its top bits. */
unsigned gen_dpx_code(unsigned v, int image_depth, int depth);

/** Write img as path. 0 on success, -1 on failure. */
int gen_write_dpx(const char *path, const cm_image *img, const gen_dpx *s);

#endif
