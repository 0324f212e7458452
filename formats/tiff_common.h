/*
 * TIFF reader and writer (libtiff): what the reader (formats/tiff_read.c)
 * and the writer (formats/tiff_write.c) share, defined in
 * formats/tiff_common.c (libtiff over memory, strips and tiles) and
 * formats/tiff_tags.c (which tags a copy carries, and how).
 * Library-internal, not installed.
 *
 * Reading decodes the first directory (page) of 8- and 16-bit unsigned
 * grey or RGB, with or without one extra sample taken as alpha (associated,
 * unassociated or unspecified: never changed), contiguous or one plane per
 * sample, in strips or tiles, with any compression libtiff decodes:
 *
 *   source                           decoded as            written back as
 *   min-is-black 8/16 (+ extra)      grey (+alpha)         same
 *   min-is-white 8/16 (+ extra)      grey, inverted        min-is-white
 *   RGB 8/16 (+ extra)               RGB (+alpha)          same
 *   anything else (palette, YCbCr,   handed to libav       (read-only: a .tif
 *   CMYK, 1/2/4/32 bit, float...)    (formats/av.c)        output is plain)
 *
 * Those other layouts cannot be written back as they were without
 * converting the marked pixels to them again, so they go through the libav
 * reader as before this module existed: they still verify, and stamping one
 * converts it (the command says so).
 *
 * The source file's bytes stay in the image's meta. The writer re-opens them
 * and copies, tiffcp-style but complete, every tag of every directory: the
 * fixed "core" tags libtiff keeps in its directory struct (the table in
 * formats/tiff_tags.c, each with its own TIFFGetField signature) and every custom tag, known or
 * unknown (TIFFGetTagListCount/Entry; unknown tags are registered on the
 * output with the source's type and count rules). The EXIF and GPS IFDs,
 * and the Interoperability IFD inside the EXIF one, are copied as custom
 * directories and their pointers rewritten (with the source's entry type:
 * LONG stays LONG though libtiff writes IFD). Only the
 * pixel data of the first page changes: it is encoded with the source's
 * compression, predictor, planar configuration, byte order, BigTIFF-ness and
 * strip or tile size; a strip or tile whose pixels did not change is copied
 * byte for byte instead (not for JPEG, whose re-encoded strips replace the
 * shared tables), so an unmarked round trip keeps the very compressed bytes.
 * Further pages are copied unchanged (tags and raw strips): they are NOT
 * marked. Dropped, and listed in the "dropped_tags" info tag: SubIFDs
 * (reduced resolution copies would carry the unmarked picture) and pointers
 * to other private IFDs (any other tag of type IFD), which would point into
 * the old file.
 *
 * An image without TIFF meta (made in memory, read from another format, or
 * whose layout was changed) is written as a plain TIFF: host byte order,
 * Deflate with the horizontal predictor, contiguous strips of about
 * PLAIN_STRIP_BYTES.
 *
 * libtiff reports through per-handle handlers (TIFFOpenOptions): nothing is
 * printed; the first error becomes the one-line "<file>: <problem>". Output
 * is assembled in memory (libtiff reads back its own directories while
 * linking pages, and the atomic output file is write-only) and written in
 * one piece.
 */
#ifndef CELMARK_FORMATS_TIFF_COMMON_H
#define CELMARK_FORMATS_TIFF_COMMON_H

#include "format.h"

#include <tiffio.h>

/* Descriptive tags kept for cm_image_get_info(). */
#define MAX_META_TAGS 28

/* ---- in-memory I/O for libtiff ---------------------------------------- */

typedef struct memio {
    uint8_t *data;
    size_t size; /* bytes of file */
    size_t cap;  /* allocated (output only) */
    size_t pos;
    int writable;
    int nomem; /* a write could not grow the buffer */
} memio;

/* First libtiff error of a handle, as one line. Warnings (tags libtiff
 * ignores or fixes up) are dropped: the library never prints. */
typedef struct tiff_log {
    const char *name; /* the handle's name, stripped from messages */
    char msg[240];
} tiff_log;

/* Open io as a TIFF. max_alloc > 0 caps every single allocation libtiff
 * makes (tag arrays, strip buffers) so a hostile count cannot reserve more
 * than the caller's limits allow. */
CM__HIDDEN TIFF *cm__tiff_open_mem(const char *name, const char *mode, memio *io, tiff_log *log,
                                   tmsize_t max_alloc);

/* ---- the file's own tag list ------------------------------------------ */

/* libtiff sets some tags the file does not have while reading a directory
 * (PlanarConfig, a guessed Photometric...), and TIFFGetField cannot tell:
 * which tags the writer copies is decided by the directory entries
 * themselves. */
#define MAX_IFD_TAGS 4096 /* libtiff refuses larger directories */

/* The n-byte unsigned integer at p, big-endian if be. */
CM__HIDDEN uint64_t cm__tiff_rd_uint(const uint8_t *p, int n, int be);

/* Tag numbers of the IFD at off (at most MAX_IFD_TAGS); -1 if it does not
 * fit in the file (libtiff has read it, so only a bug gets there). */
CM__HIDDEN int cm__tiff_ifd_tags(const uint8_t *f, size_t size, int be, int big, uint64_t off,
                                 uint16_t *tags);
/* 1 if tag is among the n tags. */
CM__HIDDEN int cm__tiff_has_tag(const uint16_t *tags, int n, uint32_t tag);

/* ---- metadata ---------------------------------------------------------- */

typedef struct tiff_meta {
    uint8_t *file; /* the whole source file: the writer copies from it */
    size_t size;
    /* first page, as decoded */
    uint32_t width, height;
    int channels, alpha, depth;
    uint16_t photometric;
    int pages;
    int big_endian, bigtiff;
    int ntags;
    cm_info_tag tags[MAX_META_TAGS]; /* for info, collected while reading */
} tiff_meta;

/* ---- pixel layout ----------------------------------------------------- */

/* How one page's samples are stored: strips (full-width blocks of rows) or
 * tiles, all samples together or one plane per sample. Shared by the reader
 * (decode into a cm_image) and the writer (encode from one). */
typedef struct layout {
    uint32_t width, height;
    int spp;      /* samples per pixel = image channels */
    int bytes;    /* per sample: 1 or 2 */
    int separate; /* PLANARCONFIG_SEPARATE */
    int tiled;
    uint32_t bw, bh; /* block size: the tile, or width x rows per strip */
    int colour;      /* colour samples (1 or 3), before any alpha */
    int invert;      /* min-is-white: file value = max - image value */
    size_t row_bytes;   /* one row of a block */
    size_t block_bytes; /* a whole block */
} layout;

typedef struct block {
    uint32_t index; /* strip or tile number */
    uint32_t x, y;  /* top-left pixel */
    uint32_t vw, vh; /* pixels of the block inside the image */
    int plane;      /* sample of a separate plane, 0 when contiguous */
    size_t bytes;   /* bytes to decode/encode: whole tile, or vh rows */
} block;

/* Fill L->row_bytes and L->block_bytes; CM_E_LIMIT if they overflow. */
CM__HIDDEN int cm__tiff_layout_sizes(layout *L);

/* Blocks in a row and in a column of the page. */
CM__HIDDEN uint32_t cm__tiff_blocks_across(const layout *L);
CM__HIDDEN uint32_t cm__tiff_blocks_down(const layout *L);
/* The block at column bx, row by of plane `plane` (0 when contiguous). */
CM__HIDDEN void cm__tiff_block_at(const layout *L, TIFF *tif, int plane, uint32_t bx, uint32_t by,
                                  block *b);

/* ---- copying tags ----------------------------------------------------- */

/* Tags libtiff keeps in its directory struct rather than as custom values,
 * each with its own TIFFGetField/TIFFSetField signature. In setting order:
 * the sample layout before what depends on it (ExtraSamples, ColorMap,
 * TransferFunction need SamplesPerPixel and BitsPerSample), Compression
 * before the codec's own tags (Predictor, JPEGTables, fax options). Strip
 * and tile offsets/byte counts are written by libtiff; SubIFD is dropped. */
typedef enum kind {
    K_U16,        /* uint16_t                     set as int */
    K_U32,        /* uint32_t */
    K_FLOAT,      /* float                        set as double */
    K_U16PAIR,    /* two uint16_t */
    K_EXTRA,      /* uint16_t count, uint16_t * */
    K_COLORMAP,   /* three uint16_t * */
    K_TRANSFER,   /* one or three uint16_t * */
    K_FLOATPTR,   /* float * (fixed count) */
    K_INKNAMES,   /* char * of NUL-separated names; set with its length */
    K_PERSAMPLE,  /* double per sample (TIFFTAG_PERSAMPLE interface) */
    K_COUNT32,    /* uint32_t count, void * */
} kind;

struct core_tag {
    uint32_t tag;
    kind k;
};
extern CM__HIDDEN const struct core_tag cm__tiff_core_tags[];
extern CM__HIDDEN const size_t cm__tiff_ncore_tags; /* entries of cm__tiff_core_tags */

/* 1 if tag is one of the current directory's custom values (libtiff's tag
 * list), not a core tag. */
CM__HIDDEN int cm__tiff_is_custom(TIFF *tif, uint32_t tag);

/* Will the writer carry this entry of the current directory? 1 yes (data
 * offsets and the EXIF/GPS pointers are rewritten), 0 dropped by design
 * (SubIFDs and other IFD pointers, see the file comment), -1 unreadable:
 * libtiff skipped the entry (unknown type, value outside the file...). */
CM__HIDDEN int cm__tiff_carried(TIFF *tif, uint32_t tag);

/* Copy one core tag if the source has it: 1 copied or absent, 0 failed. */
CM__HIDDEN int cm__tiff_copy_core(TIFF *src, TIFF *dst, uint32_t tag, kind k);

/* Copy one custom tag, mirroring libtiff's _TIFFVGetField/_TIFFVSetField
 * conventions for custom values: passcount fields as (count, pointer),
 * ASCII as a string, arrays (variable, per-sample or fixed count > 1) as a
 * pointer, single values by type (promoted for varargs). 1 ok, 0 failed. */
CM__HIDDEN int cm__tiff_copy_custom(TIFF *src, TIFF *dst, const TIFFField *f, const TIFFField *df);

/* The writer (formats/tiff_write.c), cm__format_tiff.write. */
CM__HIDDEN int cm__tiff_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path);

#endif
