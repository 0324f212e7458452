/*
 * PNG reader and writer (libpng): what the reader (formats/png_read.c) and
 * the writer (formats/png_write.c) share, defined in formats/png_common.c.
 * Library-internal, not installed.
 *
 * Reading decodes every PNG layout to 8- or 16-bit grey, grey+alpha, RGB or
 * RGBA (16-bit samples in host byte order):
 *
 *   source                       decoded as         written back as
 *   grey/GA/RGB/RGBA 8, 16 bit   same               same
 *   grey 1/2/4 bit               grey 8 bit         grey 8 bit   (converted)
 *   palette                      RGB 8 bit          RGB          (converted)
 *   palette + tRNS               RGBA 8 bit         RGBA         (converted)
 *   grey/RGB + tRNS              same, tRNS kept    same + tRNS
 *
 * and keeps the chunks that describe the image in a png_meta so the writer
 * can emit them again: colour (iCCP, sRGB, gAMA, cHRM), pHYs, text (tEXt,
 * zTXt, iTXt with their compression), eXIf, sBIT, bKGD, tIME, a suggested
 * palette, and unknown ancillary chunks, each before or after the image data
 * as in the source. iCCP is carried byte for byte as an "unknown" chunk: the
 * profile applies unchanged to every layout we convert to, and libpng
 * 1.6.39-2+deb12u6 (Debian's current security build) rejects every iCCP
 * chunk on read with "iCCP: too short", which would silently drop the
 * profile. Unknown chunks marked unsafe-to-copy (PNG spec 14.2: they
 * depend on the image data, e.g. Apple's iDOT or APNG's acTL) are dropped and
 * listed in the "dropped_chunks" info tag, except a few known chunks that do
 * not depend on the pixel layout (iCCP, sPLT, sTER, cICP). Layout-dependent values
 * (tRNS, bKGD, sBIT) are translated when the layout is converted.
 *
 * Which colour chunks were really in the file is tracked from the read
 * callback (png_get_io_chunk_type), because libpng 1.6 reports gAMA and
 * cHRM as valid when only sRGB or a matching sRGB ICC profile was present.
 *
 * libpng reports errors with longjmp: every setjmp lives in a small
 * *_inner() function (read_inner in png_read.c, write_inner in
 * png_write.c) whose state is entirely in a struct owned by its caller, so
 * nothing indeterminate is read after the jump and the caller frees
 * everything on every path. libpng's message is translated to a one-line
 * "<file>: <problem>" in the context.
 */
#ifndef CELMARK_FORMATS_PNG_COMMON_H
#define CELMARK_FORMATS_PNG_COMMON_H

#include "format.h"

#include <png.h>

/* Largest width or height accepted (libpng's own default is 1e6). */
#define MAX_DIMENSION (1u << 24)

/* Colour chunks seen in the source (see the file comment). */
enum { SEEN_gAMA = 1, SEEN_cHRM = 2, SEEN_sRGB = 4 };

typedef struct meta_text {
    int compression; /* PNG_TEXT_COMPRESSION_* / PNG_ITXT_COMPRESSION_* */
    int after;       /* 1 if after the image data */
    char *key, *text, *lang, *lang_key;
} meta_text;

typedef struct meta_chunk {
    char name[5];
    png_byte location; /* PNG_HAVE_IHDR, PNG_HAVE_PLTE or PNG_AFTER_IDAT */
    uint8_t *data;
    size_t size;
} meta_chunk;

typedef struct png_meta {
    /* source layout */
    int color_type, bit_depth, interlace;
    int converted;
    /* decoded layout the layout-dependent values below refer to */
    int channels, depth;

    unsigned seen; /* SEEN_* */
    int srgb_intent;
    png_fixed_point gamma;
    png_fixed_point chrm[8]; /* white x,y red x,y green x,y blue x,y */

    int has_phys, phys_unit;
    png_uint_32 phys_x, phys_y;
    int has_trns;
    png_color_16 trns;
    int has_sbit;
    png_color_8 sbit;
    int has_bkgd;
    png_color_16 bkgd;
    png_color *plte; /* suggested palette of an RGB(A) image */
    int nplte;
    int has_time, time_after;
    png_time time;
    uint8_t *exif;
    png_uint_32 exif_len;
    int exif_after;

    meta_text *text;
    int ntext;
    meta_chunk *chunks;
    int nchunks;
    char dropped[64]; /* comma-separated names of dropped unsafe chunks */
} png_meta;

/* I/O state shared with the libpng callbacks. */
typedef struct png_io {
    FILE *fp;
    int64_t left;       /* read: bytes of the file not read yet, -1 unknown */
    uint64_t max_chunk; /* read: largest ancillary chunk (max_meta_bytes) */
    unsigned seen;
    int eof;      /* read: the file ended early */
    int past_end; /* read: a chunk claims more bytes than the file has */
    int err_no;   /* read/write: errno of a failed stdio call, else 0 */
    char msg[200];
    char warn[200]; /* last warning: libpng explains "Invalid IHDR data" there */
    cm_ctx *ctx;      /* where what libpng skipped is announced (not kept) */
    int writing;
    char dropped[64]; /* read: chunks libpng skipped, for the meta */
} png_io;

/* 1 on a little-endian host (16-bit samples are swapped to and from the
 * file's big-endian order). */
CM__HIDDEN int cm__png_host_is_little_endian(void);

/* ---- libpng callbacks ------------------------------------------------- */

/* libpng's error handler: the message into the png_io, then longjmp. */
CM__HIDDEN void cm__png_error_fn(png_structp png, png_const_charp msg);

/* The library never prints: a warning explains a following error, and
 * otherwise says what libpng skipped (a damaged ancillary chunk on
 * reading, a value it will not write), which the copy then lacks. */
CM__HIDDEN void cm__png_warning_fn(png_structp png, png_const_charp msg);

/* Add name to a comma-separated list of chunk names, once; ignored when
 * full. */
CM__HIDDEN void cm__png_add_name(char *list, size_t size, const char *name);

/* The writer (formats/png_write.c), cm__format_png.write. */
CM__HIDDEN int cm__png_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path);

#endif
