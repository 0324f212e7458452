/*
 * TIFF reader and writer (libtiff).
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
 * fixed "core" tags libtiff keeps in its directory struct (table below,
 * each with its own TIFFGetField signature) and every custom tag, known or
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
#include "format.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

/* Plain TIFFs: strips of about this many bytes (whole rows). Larger strips
 * compress better with Deflate; 256 KiB keeps a reader's strip buffer small. */
#define PLAIN_STRIP_BYTES ((size_t)256 << 10)

/* JPEG-compressed pages are re-encoded: the source's quality is not stored
 * in the file, and 95 keeps the re-encoding loss below the mark's own
 * amplitude (libtiff's default of 75 would not). */
#define JPEG_REENCODE_QUALITY 95

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

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t n)
{
    memio *m = h;
    if (n < 0)
        return -1;
    size_t avail = m->pos < m->size ? m->size - m->pos : 0;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    if (k)
        memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t n)
{
    memio *m = h;
    if (!m->writable || n < 0 || (size_t)n > SIZE_MAX - m->pos)
        return -1;
    size_t end = m->pos + (size_t)n;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : (size_t)1 << 16;
        while (cap < end)
            cap = cap > SIZE_MAX / 2 ? end : cap * 2;
        uint8_t *d = realloc(m->data, cap);
        if (!d) {
            m->nomem = 1;
            return -1;
        }
        m->data = d;
        m->cap = cap;
    }
    if (m->pos > m->size) /* a seek past the end leaves a hole of zeros */
        memset(m->data + m->size, 0, m->pos - m->size);
    if (n)
        memcpy(m->data + m->pos, buf, (size_t)n);
    m->pos = end;
    if (end > m->size)
        m->size = end;
    return n;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence)
{
    memio *m = h;
    int64_t base = whence == SEEK_CUR ? (int64_t)m->pos
                   : whence == SEEK_END ? (int64_t)m->size : 0;
    int64_t to = base + (int64_t)off;
    if (to < 0 || (uint64_t)to > SIZE_MAX)
        return (toff_t)-1;
    m->pos = (size_t)to;
    return (toff_t)to;
}

static int mem_close(thandle_t h)
{
    (void)h; /* the buffers belong to the caller */
    return 0;
}

static toff_t mem_size(thandle_t h)
{
    return ((memio *)h)->size;
}

/* The source is mapped: libtiff decodes straight from the buffer. */
static int mem_map(thandle_t h, void **base, toff_t *size)
{
    memio *m = h;
    if (m->writable)
        return 0;
    *base = m->data;
    *size = m->size;
    return 1;
}

static void mem_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

/* First libtiff error of a handle, as one line. Warnings (tags libtiff
 * ignores or fixes up) are dropped: the library never prints. */
typedef struct tiff_log {
    const char *name; /* the handle's name, stripped from messages */
    char msg[240];
} tiff_log;

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt,
                    va_list ap)
{
    tiff_log *l = user;
    char text[200];
    (void)tif;
    if (l->msg[0])
        return 1;
    vsnprintf(text, sizeof(text), fmt, ap);
    const char *t = text;
    size_t nl = l->name ? strlen(l->name) : 0;
    if (nl && !strncmp(t, l->name, nl) && t[nl] == ':')
        t += nl + 1 + (t[nl + 1] == ' ');
    snprintf(l->msg, sizeof(l->msg), "%s%s%s", module ? module : "",
             module ? ": " : "", t);
    for (char *p = l->msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module,
                      const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

/* Open io as a TIFF. max_alloc > 0 caps every single allocation libtiff
 * makes (tag arrays, strip buffers) so a hostile count cannot reserve more
 * than the caller's limits allow. */
static TIFF *open_mem(const char *name, const char *mode, memio *io, tiff_log *log,
                      tmsize_t max_alloc)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o)
        return NULL;
    log->name = name;
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, log);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, log);
    if (max_alloc > 0)
        TIFFOpenOptionsSetMaxSingleMemAlloc(o, max_alloc);
    TIFF *t = TIFFClientOpenExt(name, mode, io, mem_read, mem_write, mem_seek,
                                mem_close, mem_size, mem_map, mem_unmap, o);
    TIFFOpenOptionsFree(o);
    return t;
}

/* ---- names ------------------------------------------------------------ */

static const char *compression_name(unsigned c)
{
    switch (c) {
    case COMPRESSION_NONE: return "none";
    case COMPRESSION_CCITTRLE: return "ccitt-rle";
    case COMPRESSION_CCITTFAX3: return "ccitt-fax3";
    case COMPRESSION_CCITTFAX4: return "ccitt-fax4";
    case COMPRESSION_LZW: return "lzw";
    case COMPRESSION_OJPEG: return "old-jpeg";
    case COMPRESSION_JPEG: return "jpeg";
    case COMPRESSION_PACKBITS: return "packbits";
    case COMPRESSION_DEFLATE: return "deflate (legacy code)";
    case COMPRESSION_ADOBE_DEFLATE: return "deflate";
    case COMPRESSION_PIXARLOG: return "pixarlog";
    case COMPRESSION_JBIG: return "jbig";
    case COMPRESSION_SGILOG: return "sgilog";
    case COMPRESSION_SGILOG24: return "sgilog24";
    case COMPRESSION_LERC: return "lerc";
    case COMPRESSION_LZMA: return "lzma";
    case COMPRESSION_ZSTD: return "zstd";
    case COMPRESSION_WEBP: return "webp";
    case COMPRESSION_JXL: return "jpeg-xl";
    }
    return NULL;
}

static const char *photometric_name(unsigned p)
{
    switch (p) {
    case PHOTOMETRIC_MINISWHITE: return "min-is-white";
    case PHOTOMETRIC_MINISBLACK: return "min-is-black";
    case PHOTOMETRIC_RGB: return "rgb";
    case PHOTOMETRIC_PALETTE: return "palette";
    case PHOTOMETRIC_MASK: return "transparency mask";
    case PHOTOMETRIC_SEPARATED: return "separated (CMYK)";
    case PHOTOMETRIC_YCBCR: return "YCbCr";
    case PHOTOMETRIC_CIELAB: return "CIE L*a*b*";
    case PHOTOMETRIC_ICCLAB: return "ICC L*a*b*";
    case PHOTOMETRIC_ITULAB: return "ITU L*a*b*";
    case PHOTOMETRIC_LOGL: return "LogL";
    case PHOTOMETRIC_LOGLUV: return "LogLuv";
    }
    return NULL;
}

/* ---- the file's own tag list ------------------------------------------ */

/* libtiff sets some tags the file does not have while reading a directory
 * (PlanarConfig, a guessed Photometric...), and TIFFGetField cannot tell:
 * which tags the writer copies is decided by the directory entries
 * themselves. */
#define MAX_IFD_TAGS 4096 /* libtiff refuses larger directories */

static uint64_t rd_uint(const uint8_t *p, int n, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

/* Tag numbers of the IFD at off (at most MAX_IFD_TAGS); -1 if it does not
 * fit in the file (libtiff has read it, so only a bug gets there). */
static int ifd_tags(const uint8_t *f, size_t size, int be, int big, uint64_t off,
                    uint16_t *tags)
{
    const uint64_t head = big ? 8 : 2, esz = big ? 20 : 12;
    if (off > size || size - off < head)
        return -1;
    uint64_t n = rd_uint(f + off, (int)head, be);
    if (n > MAX_IFD_TAGS || (size - off - head) / esz < n)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        tags[i] = (uint16_t)rd_uint(f + off + head + i * esz, 2, be);
    return (int)n;
}

static int has_tag(const uint16_t *tags, int n, uint32_t tag)
{
    for (int i = 0; i < n; i++)
        if (tags[i] == tag)
            return 1;
    return 0;
}

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

static void free_tiff_meta(void *priv)
{
    tiff_meta *m = priv;
    if (!m)
        return;
    free(m->file);
    free(m);
}

/* Add a descriptive tag; printable, one line, truncated to fit. */
static void meta_tag(tiff_meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_tag(tiff_meta *m, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm__tags_vadd(m->tags, &m->ntags, MAX_META_TAGS, key, fmt, ap);
    va_end(ap);
}

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
static int layout_sizes(layout *L)
{
    size_t spb = L->separate ? 1 : (size_t)L->spp;
    if (!L->bw || !L->bh || cm__mul_size((size_t)L->bw, spb * (size_t)L->bytes, &L->row_bytes) ||
        cm__mul_size(L->row_bytes, (size_t)L->bh, &L->block_bytes) ||
        L->block_bytes > (size_t)INT64_MAX)
        return CM_E_LIMIT;
    return CM_OK;
}

static uint32_t blocks_across(const layout *L)
{
    return L->tiled ? (uint32_t)(((uint64_t)L->width + L->bw - 1) / L->bw) : 1;
}

static uint32_t blocks_down(const layout *L)
{
    return (uint32_t)(((uint64_t)L->height + L->bh - 1) / L->bh);
}

static void block_at(const layout *L, TIFF *tif, int plane, uint32_t bx, uint32_t by,
                     block *b)
{
    b->plane = plane;
    b->x = bx * L->bw;
    b->y = by * L->bh;
    b->vw = L->width - b->x < L->bw ? L->width - b->x : L->bw;
    b->vh = L->height - b->y < L->bh ? L->height - b->y : L->bh;
    b->index = L->tiled ? TIFFComputeTile(tif, b->x, b->y, 0, (uint16_t)plane)
                        : TIFFComputeStrip(tif, b->y, (uint16_t)plane);
    b->bytes = L->tiled ? L->block_bytes : L->row_bytes * b->vh;
}

static void block_to_image(const layout *L, const block *b, const uint8_t *buf,
                           cm_image *img)
{
    const size_t bs = (size_t)L->bytes, px = (size_t)L->spp * bs;
    for (uint32_t r = 0; r < b->vh; r++) {
        const uint8_t *s = buf + r * L->row_bytes;
        uint8_t *d = img->data + (ptrdiff_t)(b->y + r) * img->stride + (size_t)b->x * px;
        if (!L->separate) {
            memcpy(d, s, b->vw * px);
            continue;
        }
        d += (size_t)b->plane * bs;
        for (uint32_t x = 0; x < b->vw; x++)
            memcpy(d + x * px, s + x * bs, bs);
    }
}

/* The inverse of block_to_image, min-is-white inversion included; bytes of
 * buf outside the image (tile padding) are left as they are. */
static void image_to_block(const layout *L, const block *b, const cm_image *img,
                           uint8_t *buf)
{
    const size_t bs = (size_t)L->bytes, px = (size_t)L->spp * bs;
    const unsigned maxv = L->bytes == 2 ? 65535u : 255u;
    for (uint32_t r = 0; r < b->vh; r++) {
        uint8_t *d = buf + r * L->row_bytes;
        const uint8_t *s = img->data + (ptrdiff_t)(b->y + r) * img->stride + (size_t)b->x * px;
        if (!L->separate) {
            memcpy(d, s, b->vw * px);
        } else {
            s += (size_t)b->plane * bs;
            for (uint32_t x = 0; x < b->vw; x++)
                memcpy(d + x * bs, s + x * px, bs);
        }
        if (!L->invert)
            continue;
        size_t n = L->separate ? b->vw : (size_t)b->vw * (size_t)L->spp;
        for (size_t i = 0; i < n; i++) {
            int sample = L->separate ? b->plane : (int)(i % (size_t)L->spp);
            if (sample >= L->colour)
                continue; /* alpha is stored as is */
            if (bs == 2) {
                uint16_t v;
                memcpy(&v, d + 2 * i, 2);
                v = (uint16_t)(maxv - v);
                memcpy(d + 2 * i, &v, 2);
            } else {
                d[i] = (uint8_t)(maxv - d[i]);
            }
        }
    }
}

/* min-is-white: the image holds max - file value for colour samples. */
static void invert_image(cm_image *img, int colour)
{
    const unsigned maxv = img->bit_depth == 16 ? 65535u : 255u;
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < colour; c++) {
                size_t i = (size_t)x * (size_t)img->channels + (size_t)c;
                if (img->bit_depth == 16) {
                    uint16_t *p = (uint16_t *)(void *)row;
                    p[i] = (uint16_t)(maxv - p[i]);
                } else {
                    row[i] = (uint8_t)(maxv - row[i]);
                }
            }
    }
}

/* ---- probe ------------------------------------------------------------ */

/* Classic ("II*\0", "MM\0*") or BigTIFF ("II+\0", "MM\0+") header. */
static int probe_tiff(const uint8_t *head, size_t len)
{
    if (!head || len < 4)
        return 0;
    if (head[0] == 'I' && head[1] == 'I')
        return (head[2] == 42 || head[2] == 43) && head[3] == 0;
    if (head[0] == 'M' && head[1] == 'M')
        return head[2] == 0 && (head[3] == 42 || head[3] == 43);
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct reader {
    cm_ctx *ctx;
    const char *path;
    const cm_limits *limits;
    memio io;
    tiff_log log;
    TIFF *tif;
    layout L;
    uint16_t photometric, compression, extra_type;
    char unsupported[120]; /* why the layout cannot be marked faithfully */
    uint8_t *buf;
    cm_image *img;
    tiff_meta *meta;
} reader;

static int corrupt(reader *r, const char *what)
{
    if (r->log.msg[0])
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt TIFF: %s", r->path, r->log.msg);
    return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt TIFF: %s", r->path, what);
}

/* Check the first page's layout. Sets r->unsupported (and returns CM_OK)
 * for layouts celmark cannot write back; errors for broken or oversized
 * pages. */
static int inspect(reader *r)
{
    TIFF *tif = r->tif;
    layout *L = &r->L;
    uint32_t w = 0, h = 0;
    uint16_t bps = 0, spp = 0, planar = 0, sfmt = 0, nextra = 0;
    uint16_t *extra = NULL;

    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) ||
        !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h) || !w || !h)
        return corrupt(r, "no image size");
    uint64_t pixels = (uint64_t)w * h;
    if (w > INT_MAX || h > INT_MAX || pixels > r->limits->max_pixels)
        return cm__error(r->ctx, CM_E_LIMIT,
                         "%s: image is %lu x %lu (%llu pixels), above the limit of %llu pixels",
                         r->path, (unsigned long)w, (unsigned long)h,
                         (unsigned long long)pixels,
                         (unsigned long long)r->limits->max_pixels);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sfmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &r->compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &r->photometric))
        r->photometric = 0xffff;

    const char *pn = photometric_name(r->photometric);
    char *why = r->unsupported;
    const size_t wn = sizeof(r->unsupported);
    int colour = r->photometric == PHOTOMETRIC_RGB ? 3 : 1;
    uint32_t depth = 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_IMAGEDEPTH, &depth);
    if (sfmt != SAMPLEFORMAT_UINT)
        snprintf(why, wn, "%s samples",
                 sfmt == SAMPLEFORMAT_IEEEFP ? "floating-point"
                 : sfmt == SAMPLEFORMAT_INT  ? "signed integer" : "untyped");
    else if (bps != 8 && bps != 16)
        snprintf(why, wn, "%u-bit samples", (unsigned)bps);
    else if (r->photometric != PHOTOMETRIC_MINISBLACK &&
             r->photometric != PHOTOMETRIC_MINISWHITE && r->photometric != PHOTOMETRIC_RGB)
        snprintf(why, wn, "%s photometric interpretation", pn ? pn : "an unknown");
    else if (spp < colour || spp > colour + 1)
        snprintf(why, wn, "%u samples per pixel for %s", (unsigned)spp, pn);
    else if (planar != PLANARCONFIG_CONTIG && planar != PLANARCONFIG_SEPARATE)
        snprintf(why, wn, "planar configuration %u", (unsigned)planar);
    else if (depth != 1)
        snprintf(why, wn, "a 3-D image (depth %lu)", (unsigned long)depth);
    else if (!TIFFIsCODECConfigured(r->compression))
        snprintf(why, wn, "compression %u, which this libtiff cannot decode",
                 (unsigned)r->compression);
    if (why[0])
        return CM_OK;

    r->extra_type = spp > colour && nextra >= 1 && extra ? extra[0] : EXTRASAMPLE_UNSPECIFIED;
    L->width = w;
    L->height = h;
    L->spp = spp;
    L->bytes = bps / 8;
    L->separate = planar == PLANARCONFIG_SEPARATE;
    L->colour = colour;
    L->invert = r->photometric == PHOTOMETRIC_MINISWHITE;
    L->tiled = TIFFIsTiled(tif);
    if (L->tiled) {
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &L->bw) ||
            !TIFFGetField(tif, TIFFTAG_TILELENGTH, &L->bh) || !L->bw || !L->bh)
            return corrupt(r, "no tile size");
        /* a tile buffer is as large as an image of that size */
        if ((uint64_t)L->bw * L->bh > r->limits->max_pixels)
            return cm__error(r->ctx, CM_E_LIMIT,
                             "%s: TIFF tiles are %lu x %lu, above the limit of %llu pixels",
                             r->path, (unsigned long)L->bw, (unsigned long)L->bh,
                             (unsigned long long)r->limits->max_pixels);
    } else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        if (!rps)
            return corrupt(r, "zero rows per strip");
        L->bw = w;
        L->bh = rps < h ? rps : h;
    }
    if (layout_sizes(L) < 0)
        return cm__error(r->ctx, CM_E_LIMIT, "%s: TIFF strips or tiles too large", r->path);
    return CM_OK;
}

static int decode_pixels(reader *r)
{
    const layout *L = &r->L;
    TIFF *tif = r->tif;
    int ret;

    if ((ret = cm__image_alloc(&r->img, (int)L->width, (int)L->height, L->spp,
                               L->spp > L->colour, L->bytes * 8,
                               r->limits->max_pixels)) < 0)
        return cm__error(r->ctx, ret, "%s: cannot allocate a %lu x %lu image", r->path,
                         (unsigned long)L->width, (unsigned long)L->height);
    if (!(r->buf = malloc(L->block_bytes)))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);

    for (int p = 0; p < (L->separate ? L->spp : 1); p++)
        for (uint32_t by = 0; by < blocks_down(L); by++)
            for (uint32_t bx = 0; bx < blocks_across(L); bx++) {
                block b;
                block_at(L, tif, p, bx, by, &b);
                tmsize_t n = L->tiled
                                 ? TIFFReadEncodedTile(tif, b.index, r->buf, (tmsize_t)b.bytes)
                                 : TIFFReadEncodedStrip(tif, b.index, r->buf, (tmsize_t)b.bytes);
                if (n < 0 || (size_t)n < b.bytes) {
                    char what[64];
                    snprintf(what, sizeof(what), "%s %lu is short", L->tiled ? "tile" : "strip",
                             (unsigned long)b.index);
                    return corrupt(r, what);
                }
                block_to_image(L, &b, r->buf, r->img);
            }
    if (L->invert)
        invert_image(r->img, L->colour);
    return CM_OK;
}

static int carried(TIFF *tif, uint32_t tag);

/* Byte size of a custom tag's value (for the metadata limit and info). */
static uint64_t custom_bytes(TIFF *tif, const TIFFField *f, uint16_t spp)
{
    uint32_t tag = TIFFFieldTag(f);
    uint64_t esize = (uint64_t)TIFFFieldSetGetSize(f);
    void *p = NULL;
    if (TIFFFieldPassCount(f)) {
        if (TIFFFieldReadCount(f) == TIFF_VARIABLE2) {
            uint32_t n = 0;
            return TIFFGetField(tif, tag, &n, &p) ? n * esize : 0;
        }
        uint16_t n = 0;
        return TIFFGetField(tif, tag, &n, &p) ? n * esize : 0;
    }
    if (TIFFFieldDataType(f) == TIFF_ASCII) {
        char *s = NULL;
        return TIFFGetField(tif, tag, &s) && s ? strlen(s) + 1 : 0;
    }
    int rc = TIFFFieldReadCount(f);
    return (rc == TIFF_SPP ? spp : rc > 0 ? (uint64_t)rc : 1) * esize;
}

static void text_tag(tiff_meta *m, TIFF *tif, uint32_t tag, const char *key)
{
    char *s = NULL;
    if (TIFFGetField(tif, tag, &s) && s && *s)
        meta_tag(m, key, "%.200s", s);
}

/* 1 if the EXIF IFD of the IFD at ifd points to an Interoperability IFD
 * (which the writer copies with it: see copy_interop). */
static int exif_has_interop(const uint8_t *f, size_t size, int be, int big, uint64_t ifd)
{
    cm__tiff_entry e, i;
    if (cm__tiff_raw_entry(f, size, be, big, ifd, TIFFTAG_EXIFIFD, &e) != 1 || e.count != 1 ||
        e.bytes > 8)
        return 0;
    uint64_t off = rd_uint(e.value, (int)e.bytes, be);
    return cm__tiff_raw_entry(f, size, be, big, off, TIFFTAG_INTEROPERABILITYIFD, &i) == 1;
}

/* The descriptive tags of the first page, and its metadata size. */
static int describe_page(reader *r)
{
    TIFF *tif = r->tif;
    tiff_meta *m = r->meta;
    const layout *L = &r->L;
    uint16_t u16;
    uint64_t total = 0;

    meta_tag(m, "compression", "%s", compression_name(r->compression)
                                         ? compression_name(r->compression) : "other");
    if (TIFFGetField(tif, TIFFTAG_PREDICTOR, &u16) && u16 != PREDICTOR_NONE)
        meta_tag(m, "predictor", "%s", u16 == PREDICTOR_HORIZONTAL ? "horizontal" : "other");
    meta_tag(m, "photometric", "%s", photometric_name(r->photometric));
    meta_tag(m, "planar_config", "%s", L->separate ? "separate" : "contiguous");
    if (L->tiled)
        meta_tag(m, "layout", "tiles of %lu x %lu", (unsigned long)L->bw, (unsigned long)L->bh);
    else
        meta_tag(m, "layout", "strips of %lu rows", (unsigned long)L->bh);
    meta_tag(m, "byte_order", "%s%s", m->big_endian ? "big-endian" : "little-endian",
             m->bigtiff ? " (BigTIFF)" : "");
    if (L->spp > L->colour)
        meta_tag(m, "alpha_type", "%s",
                 r->extra_type == EXTRASAMPLE_ASSOCALPHA   ? "associated (premultiplied)"
                 : r->extra_type == EXTRASAMPLE_UNASSALPHA ? "unassociated"
                                                           : "unspecified extra sample");
    float xr, yr;
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xr) &&
        TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yr)) {
        u16 = RESUNIT_INCH;
        TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &u16);
        meta_tag(m, "resolution", "%g x %g %s", xr, yr,
                 u16 == RESUNIT_INCH ? "dpi" : u16 == RESUNIT_CENTIMETER ? "per cm" : "(no unit)");
    }
    text_tag(m, tif, TIFFTAG_IMAGEDESCRIPTION, "description");
    text_tag(m, tif, TIFFTAG_SOFTWARE, "software");
    text_tag(m, tif, TIFFTAG_ARTIST, "artist");
    text_tag(m, tif, TIFFTAG_DATETIME, "datetime");
    text_tag(m, tif, TIFFTAG_COPYRIGHT, "copyright");
    text_tag(m, tif, TIFFTAG_DOCUMENTNAME, "document_name");

    char priv[sizeof(m->tags[0].value)] = "";
    size_t plen = 0;
    int n = TIFFGetTagListCount(tif);
    for (int i = 0; i < n; i++) {
        uint32_t tag = TIFFGetTagListEntry(tif, i);
        const TIFFField *f = TIFFFieldWithTag(tif, tag);
        if (!f)
            continue;
        uint64_t bytes = custom_bytes(tif, f, (uint16_t)L->spp);
        total += bytes;
        switch (tag) {
        case TIFFTAG_ICCPROFILE:
            meta_tag(m, "icc_profile", "%llu bytes", (unsigned long long)bytes);
            break;
        case TIFFTAG_XMLPACKET:
            meta_tag(m, "xmp", "%llu bytes", (unsigned long long)bytes);
            break;
        case TIFFTAG_PHOTOSHOP:
            meta_tag(m, "photoshop", "%llu bytes", (unsigned long long)bytes);
            break;
        case TIFFTAG_RICHTIFFIPTC:
            meta_tag(m, "iptc", "%llu bytes", (unsigned long long)bytes);
            break;
        case TIFFTAG_EXIFIFD:
            meta_tag(m, "exif", "%s",
                     exif_has_interop(r->io.data, r->io.size, m->big_endian, m->bigtiff,
                                      TIFFCurrentDirOffset(tif))
                         ? "yes, with an Interoperability IFD (kept)"
                         : "yes");
            break;
        case TIFFTAG_GPSIFD:
            meta_tag(m, "gps", "yes");
            break;
        default:
            if (TIFFFieldIsAnonymous(f) && plen + 8 < sizeof(priv))
                plen += (size_t)snprintf(priv + plen, sizeof(priv) - plen, "%s%lu",
                                         plen ? "," : "", (unsigned long)tag);
        }
    }
    if (plen)
        meta_tag(m, "private_tags", "%s", priv);
    /* tags of the file the writer will not carry */
    uint16_t in_file[MAX_IFD_TAGS];
    int nfile = ifd_tags(r->io.data, r->io.size, m->big_endian, m->bigtiff,
                         TIFFCurrentDirOffset(tif), in_file);
    char lists[2][sizeof(m->tags[0].value)] = {"", ""}; /* dropped, unreadable */
    size_t lens[2] = {0, 0};
    for (int i = 0; i < nfile; i++) {
        int c = carried(tif, in_file[i]);
        if (c > 0)
            continue;
        const TIFFField *f = TIFFFindField(tif, in_file[i], TIFF_ANY);
        char *l = lists[c < 0];
        size_t *len = &lens[c < 0];
        if (*len + 40 < sizeof(lists[0]))
            *len += (size_t)snprintf(l + *len, sizeof(lists[0]) - *len, "%s%s (%u)",
                                     *len ? ", " : "", f ? TIFFFieldName(f) : "unknown",
                                     (unsigned)in_file[i]);
    }
    if (lens[0])
        meta_tag(m, "dropped_tags", "%s", lists[0]);
    if (lens[1])
        meta_tag(m, "unreadable_tags", "%s (writing a copy is refused)", lists[1]);
    if (m->pages > 1)
        meta_tag(m, "pages", "%d (only the first is marked; the others are copied unchanged)",
                 m->pages);
    if (total > r->limits->max_meta_bytes)
        return cm__error(r->ctx, CM_E_LIMIT,
                         "%s: metadata is %llu bytes, above the limit of %llu bytes", r->path,
                         (unsigned long long)total,
                         (unsigned long long)r->limits->max_meta_bytes);
    return CM_OK;
}

/* Layouts celmark cannot write back go through libav, read-only, as before
 * this module existed; the one-line reason is kept if libav fails too. */
/* Tags of a TIFF read through libav that no copy of it carries (its pixels
 * come back in another layout, and only they are passed on): a
 * comma-separated list of names, "" if none. */
static void lost_tags(TIFF *tif, const uint8_t *f, size_t fsize, char *out, size_t size)
{
    static const struct {
        uint32_t tag;
        const char *name;
    } tags[] = {
        {TIFFTAG_IMAGEDESCRIPTION, "ImageDescription"},
        {TIFFTAG_ARTIST, "Artist"},
        {TIFFTAG_COPYRIGHT, "Copyright"},
        {TIFFTAG_SOFTWARE, "Software"},
        {TIFFTAG_DATETIME, "DateTime"},
        {TIFFTAG_DOCUMENTNAME, "DocumentName"},
        {TIFFTAG_HOSTCOMPUTER, "HostComputer"},
        {TIFFTAG_XRESOLUTION, "resolution"},
        {TIFFTAG_WHITEPOINT, "WhitePoint"},
        {TIFFTAG_PRIMARYCHROMATICITIES, "PrimaryChromaticities"},
        {TIFFTAG_ICCPROFILE, "ICC profile"},
        {TIFFTAG_XMLPACKET, "XMP"},
        {TIFFTAG_RICHTIFFIPTC, "IPTC"},
        {TIFFTAG_PHOTOSHOP, "Photoshop"},
        {TIFFTAG_EXIFIFD, "EXIF"},
        {TIFFTAG_GPSIFD, "GPS"},
    };
    size_t len = 0;
    out[0] = '\0';
    if (fsize < 8)
        return;
    const int be = f[0] == 'M', big = rd_uint(f + 2, 2, be) == 43;
    uint16_t in_file[MAX_IFD_TAGS];
    int n = ifd_tags(f, fsize, be, big, TIFFCurrentDirOffset(tif), in_file);
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (!has_tag(in_file, n, tags[i].tag))
            continue;
        if (len + strlen(tags[i].name) + 3 < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "",
                                    tags[i].name);
    }
    if (TIFFNumberOfDirectories(tif) > 1 && len + 16 < size)
        snprintf(out + len, size - len, "%sfurther pages", len ? ", " : "");
}

static int read_through_av(reader *r, FILE *fp, cm_image **out)
{
    char why[sizeof(r->unsupported)];
    memcpy(why, r->unsupported, sizeof(why));
    if (fseek(fp, 0, SEEK_SET) != 0)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path, strerror(errno));
    int ret = cm__format_av.read(r->ctx, r->path, fp, r->limits, out);
    if (ret < 0 && ret != CM_E_LIMIT && ret != CM_E_NOMEM && ret != CM_E_IO)
        ret = cm__error(r->ctx, CM_E_UNSUPPORTED,
                        "%s: TIFF with %s is not supported (celmark marks 8/16-bit grey "
                        "and RGB) and libav cannot decode it either",
                        r->path, why);
    return ret;
}

static int read_tiff(cm_ctx *ctx, const char *path, FILE *fp, const cm_limits *limits,
                     cm_image **out)
{
    reader r;
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "tiff read: no output given");
    *out = NULL;
    if (!path || !fp || !limits)
        return cm__error(ctx, CM_E_INVAL, "tiff read: invalid argument");

    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.path = path;
    r.limits = limits;
    if ((ret = cm__read_all(ctx, path, fp, limits->max_file_bytes, &r.io.data,
                            &r.io.size)) < 0)
        return ret;
    /* no single libtiff allocation beyond the file itself plus the metadata
     * allowance (tags are read from the file; decoded strips go to our
     * buffers) */
    uint64_t cap = (uint64_t)r.io.size + limits->max_meta_bytes + ((uint64_t)1 << 20);
    /* "c": no strip chopping, the strips must stay as they are in the file */
    r.tif = open_mem(path, "rc", &r.io, &r.log, cap > (uint64_t)INT64_MAX ? 0 : (tmsize_t)cap);
    if (!r.tif) {
        ret = r.log.msg[0] ? corrupt(&r, "")
                           : cm__error(ctx, CM_E_CORRUPT, "%s: not a readable TIFF", path);
        goto fail;
    }
    if ((ret = inspect(&r)) < 0)
        goto fail;
    if (r.unsupported[0]) {
        char lost[200];
        lost_tags(r.tif, r.io.data, r.io.size, lost, sizeof(lost));
        TIFFClose(r.tif);
        r.tif = NULL;
        free(r.io.data);
        r.io.data = NULL;
        if ((ret = read_through_av(&r, fp, out)) == CM_OK)
            cm__av_set_lost(*out, lost);
        return ret;
    }
    if (!(r.meta = calloc(1, sizeof(*r.meta)))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    r.meta->big_endian = TIFFIsBigEndian(r.tif) != 0;
    r.meta->bigtiff = TIFFIsBigTIFF(r.tif) != 0;
    r.meta->pages = TIFFNumberOfDirectories(r.tif);
    if (r.meta->pages < 1)
        r.meta->pages = 1;
    /* counting the pages moved nothing, but make sure page 0 is current */
    if (TIFFCurrentDirectory(r.tif) != 0 && !TIFFSetDirectory(r.tif, 0)) {
        ret = corrupt(&r, "cannot return to the first page");
        goto fail;
    }
    if ((ret = describe_page(&r)) < 0)
        goto fail;
    if ((ret = decode_pixels(&r)) < 0)
        goto fail;

    tiff_meta *m = r.meta;
    m->width = r.L.width;
    m->height = r.L.height;
    m->channels = r.L.spp;
    m->alpha = r.L.spp > r.L.colour;
    m->depth = r.L.bytes * 8;
    m->photometric = r.photometric;
    m->file = r.io.data;
    m->size = r.io.size;
    r.io.data = NULL;
    TIFFClose(r.tif);
    r.tif = NULL;
    if ((ret = cm__image_attach_meta(r.img, &cm__format_tiff, r.meta)) < 0) {
        r.meta = NULL; /* freed by attach */
        ret = cm__error(ctx, ret, "%s: out of memory", path);
        goto fail;
    }
    r.meta = NULL;
    *out = r.img;
    r.img = NULL;
    ret = CM_OK;

fail:
    if (r.tif)
        TIFFClose(r.tif);
    free(r.io.data);
    free(r.buf);
    cm_image_free(&r.img);
    free_tiff_meta(r.meta);
    return ret;
}

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

static const struct core_tag {
    uint32_t tag;
    kind k;
} core_tags[] = {
    {TIFFTAG_SUBFILETYPE, K_U32},
    {TIFFTAG_IMAGEWIDTH, K_U32},
    {TIFFTAG_IMAGELENGTH, K_U32},
    {TIFFTAG_BITSPERSAMPLE, K_U16},
    {TIFFTAG_SAMPLESPERPIXEL, K_U16},
    {TIFFTAG_COMPRESSION, K_U16},
    {TIFFTAG_PHOTOMETRIC, K_U16},
    {TIFFTAG_PLANARCONFIG, K_U16},
    {TIFFTAG_EXTRASAMPLES, K_EXTRA},
    {TIFFTAG_SAMPLEFORMAT, K_U16},
    {TIFFTAG_THRESHHOLDING, K_U16},
    {TIFFTAG_FILLORDER, K_U16},
    {TIFFTAG_ORIENTATION, K_U16},
    {TIFFTAG_ROWSPERSTRIP, K_U32},
    {TIFFTAG_TILEWIDTH, K_U32},
    {TIFFTAG_TILELENGTH, K_U32},
    {TIFFTAG_TILEDEPTH, K_U32},
    {TIFFTAG_IMAGEDEPTH, K_U32},
    {TIFFTAG_MINSAMPLEVALUE, K_U16},
    {TIFFTAG_MAXSAMPLEVALUE, K_U16},
    {TIFFTAG_SMINSAMPLEVALUE, K_PERSAMPLE},
    {TIFFTAG_SMAXSAMPLEVALUE, K_PERSAMPLE},
    {TIFFTAG_XRESOLUTION, K_FLOAT},
    {TIFFTAG_YRESOLUTION, K_FLOAT},
    {TIFFTAG_RESOLUTIONUNIT, K_U16},
    {TIFFTAG_XPOSITION, K_FLOAT},
    {TIFFTAG_YPOSITION, K_FLOAT},
    {TIFFTAG_PAGENUMBER, K_U16PAIR},
    {TIFFTAG_HALFTONEHINTS, K_U16PAIR},
    {TIFFTAG_YCBCRSUBSAMPLING, K_U16PAIR},
    {TIFFTAG_YCBCRPOSITIONING, K_U16},
    {TIFFTAG_COLORMAP, K_COLORMAP},
    {TIFFTAG_TRANSFERFUNCTION, K_TRANSFER},
    {TIFFTAG_REFERENCEBLACKWHITE, K_FLOATPTR},
    {TIFFTAG_INKNAMES, K_INKNAMES},
    {TIFFTAG_NUMBEROFINKS, K_U16},
    {TIFFTAG_PREDICTOR, K_U16},
    {TIFFTAG_JPEGTABLES, K_COUNT32},
    {TIFFTAG_GROUP3OPTIONS, K_U32},
    {TIFFTAG_GROUP4OPTIONS, K_U32},
    {TIFFTAG_BADFAXLINES, K_U32},
    {TIFFTAG_CLEANFAXDATA, K_U16},
    {TIFFTAG_CONSECUTIVEBADFAXLINES, K_U32},
};

static int is_custom(TIFF *tif, uint32_t tag)
{
    int n = TIFFGetTagListCount(tif);
    for (int i = 0; i < n; i++)
        if (TIFFGetTagListEntry(tif, i) == tag)
            return 1;
    return 0;
}

/* Will the writer carry this entry of the current directory? 1 yes (data
 * offsets and the EXIF/GPS pointers are rewritten), 0 dropped by design
 * (SubIFDs and other IFD pointers, see the file comment), -1 unreadable:
 * libtiff skipped the entry (unknown type, value outside the file...). */
static int carried(TIFF *tif, uint32_t tag)
{
    switch (tag) {
    case TIFFTAG_STRIPOFFSETS:
    case TIFFTAG_STRIPBYTECOUNTS:
    case TIFFTAG_TILEOFFSETS:
    case TIFFTAG_TILEBYTECOUNTS:
    case TIFFTAG_EXIFIFD:
    case TIFFTAG_GPSIFD:
        return 1;
    case TIFFTAG_SUBIFD:
    case TIFFTAG_INTEROPERABILITYIFD:
        return 0;
    }
    if (is_custom(tif, tag)) {
        const TIFFField *f = TIFFFindField(tif, tag, TIFF_ANY);
        if (!f)
            return -1;
        return TIFFFieldDataType(f) != TIFF_IFD && TIFFFieldDataType(f) != TIFF_IFD8;
    }
    for (size_t i = 0; i < sizeof(core_tags) / sizeof(core_tags[0]); i++)
        if (core_tags[i].tag == tag)
            return 1;
    return -1;
}

/* Copy one core tag if the source has it: 1 copied or absent, 0 failed. */
static int copy_core(TIFF *src, TIFF *dst, uint32_t tag, kind k)
{
    switch (k) {
    case K_U16: {
        uint16_t v;
        return !TIFFGetField(src, tag, &v) || TIFFSetField(dst, tag, (int)v);
    }
    case K_U32: {
        uint32_t v;
        return !TIFFGetField(src, tag, &v) || TIFFSetField(dst, tag, v);
    }
    case K_FLOAT: {
        float v;
        return !TIFFGetField(src, tag, &v) || TIFFSetField(dst, tag, (double)v);
    }
    case K_U16PAIR: {
        uint16_t a, b;
        return !TIFFGetField(src, tag, &a, &b) || TIFFSetField(dst, tag, (int)a, (int)b);
    }
    case K_EXTRA: {
        uint16_t n = 0;
        uint16_t *v = NULL;
        return !TIFFGetField(src, tag, &n, &v) || TIFFSetField(dst, tag, (int)n, v);
    }
    case K_COLORMAP:
    case K_TRANSFER: {
        uint16_t *a = NULL, *b = NULL, *c = NULL;
        return !TIFFGetField(src, tag, &a, &b, &c) || TIFFSetField(dst, tag, a, b, c);
    }
    case K_FLOATPTR: {
        float *v = NULL;
        return !TIFFGetField(src, tag, &v) || TIFFSetField(dst, tag, v);
    }
    case K_INKNAMES: {
        char *s = NULL;
        uint16_t spp = 1;
        if (!TIFFGetField(src, tag, &s) || !s)
            return 1;
        TIFFGetFieldDefaulted(src, TIFFTAG_SAMPLESPERPIXEL, &spp);
        /* libtiff checked on reading that the value holds spp strings */
        size_t len = 0;
        for (uint16_t i = 0; i < spp; i++)
            len += strlen(s + len) + 1;
        return TIFFSetField(dst, tag, (int)len, s);
    }
    case K_PERSAMPLE: {
        double *v = NULL;
        TIFFSetField(src, TIFFTAG_PERSAMPLE, PERSAMPLE_MULTI);
        int have = TIFFGetField(src, tag, &v);
        TIFFSetField(src, TIFFTAG_PERSAMPLE, PERSAMPLE_MERGED);
        if (!have)
            return 1;
        TIFFSetField(dst, TIFFTAG_PERSAMPLE, PERSAMPLE_MULTI);
        int ok = TIFFSetField(dst, tag, v);
        TIFFSetField(dst, TIFFTAG_PERSAMPLE, PERSAMPLE_MERGED);
        return ok;
    }
    case K_COUNT32: {
        uint32_t n = 0;
        void *v = NULL;
        return !TIFFGetField(src, tag, &n, &v) || TIFFSetField(dst, tag, n, v);
    }
    }
    return 0;
}

/* Copy one custom tag, mirroring libtiff's _TIFFVGetField/_TIFFVSetField
 * conventions for custom values: passcount fields as (count, pointer),
 * ASCII as a string, arrays (variable, per-sample or fixed count > 1) as a
 * pointer, single values by type (promoted for varargs). 1 ok, 0 failed. */
static int copy_custom(TIFF *src, TIFF *dst, const TIFFField *f, const TIFFField *df)
{
    const uint32_t tag = TIFFFieldTag(f);
    const TIFFDataType type = TIFFFieldDataType(f);
    const int esize = TIFFFieldSetGetSize(f);

    if (TIFFFieldDataType(df) != type || TIFFFieldPassCount(df) != TIFFFieldPassCount(f) ||
        TIFFFieldSetGetSize(df) != esize)
        return 0;
    if (TIFFFieldPassCount(f)) {
        void *p = NULL;
        uint32_t n = 0;
        if (TIFFFieldReadCount(f) == TIFF_VARIABLE2) {
            if (!TIFFGetField(src, tag, &n, &p))
                return 1;
        } else {
            uint16_t n16 = 0;
            if (!TIFFGetField(src, tag, &n16, &p))
                return 1;
            n = n16;
        }
        return TIFFFieldWriteCount(df) == TIFF_VARIABLE2 ? TIFFSetField(dst, tag, n, p)
                                                         : TIFFSetField(dst, tag, (int)n, p);
    }
    if (tag == TIFFTAG_DOTRANGE) {
        uint16_t a, b;
        return !TIFFGetField(src, tag, &a, &b) || TIFFSetField(dst, tag, (int)a, (int)b);
    }
    if (type == TIFF_ASCII) {
        char *s = NULL;
        return !TIFFGetField(src, tag, &s) || !s || TIFFSetField(dst, tag, s);
    }

    const int rc = TIFFFieldReadCount(f), wc = TIFFFieldWriteCount(df);
    const int get_ptr = rc == TIFF_VARIABLE || rc == TIFF_VARIABLE2 || rc == TIFF_SPP || rc > 1;
    const int set_ptr = wc == TIFF_VARIABLE || wc == TIFF_VARIABLE2 || wc == TIFF_SPP || wc > 1;
    union {
        uint8_t u8;
        int8_t s8;
        uint16_t u16;
        int16_t s16;
        uint32_t u32;
        int32_t s32;
        uint64_t u64;
        int64_t s64;
        float f;
        double d;
    } v;
    const void *p = &v;
    memset(&v, 0, sizeof(v));
    if (get_ptr) {
        void *q = NULL;
        if (!TIFFGetField(src, tag, &q))
            return 1;
        if (!q)
            return 0;
        p = q;
    } else {
        int have;
        switch (type) {
        case TIFF_BYTE:
        case TIFF_UNDEFINED: have = TIFFGetField(src, tag, &v.u8); break;
        case TIFF_SBYTE: have = TIFFGetField(src, tag, &v.s8); break;
        case TIFF_SHORT: have = TIFFGetField(src, tag, &v.u16); break;
        case TIFF_SSHORT: have = TIFFGetField(src, tag, &v.s16); break;
        case TIFF_LONG:
        case TIFF_IFD: have = TIFFGetField(src, tag, &v.u32); break;
        case TIFF_SLONG: have = TIFFGetField(src, tag, &v.s32); break;
        case TIFF_LONG8:
        case TIFF_IFD8: have = TIFFGetField(src, tag, &v.u64); break;
        case TIFF_SLONG8: have = TIFFGetField(src, tag, &v.s64); break;
        case TIFF_RATIONAL:
        case TIFF_SRATIONAL:
            have = esize == 8 ? TIFFGetField(src, tag, &v.d) : TIFFGetField(src, tag, &v.f);
            break;
        case TIFF_FLOAT: have = TIFFGetField(src, tag, &v.f); break;
        case TIFF_DOUBLE: have = TIFFGetField(src, tag, &v.d); break;
        default: return 0;
        }
        if (!have)
            return 1;
    }
    if (set_ptr)
        return TIFFSetField(dst, tag, p);
    switch (type) {
    case TIFF_BYTE:
    case TIFF_UNDEFINED: return TIFFSetField(dst, tag, (int)*(const uint8_t *)p);
    case TIFF_SBYTE: return TIFFSetField(dst, tag, (int)*(const int8_t *)p);
    case TIFF_SHORT: return TIFFSetField(dst, tag, (int)*(const uint16_t *)p);
    case TIFF_SSHORT: return TIFFSetField(dst, tag, (int)*(const int16_t *)p);
    case TIFF_LONG:
    case TIFF_IFD: return TIFFSetField(dst, tag, *(const uint32_t *)p);
    case TIFF_SLONG: return TIFFSetField(dst, tag, *(const int32_t *)p);
    case TIFF_LONG8:
    case TIFF_IFD8: return TIFFSetField(dst, tag, *(const uint64_t *)p);
    case TIFF_SLONG8: return TIFFSetField(dst, tag, *(const int64_t *)p);
    case TIFF_RATIONAL:
    case TIFF_SRATIONAL:
        return TIFFSetField(dst, tag, esize == 8 ? *(const double *)p
                                                 : (double)*(const float *)p);
    case TIFF_FLOAT: return TIFFSetField(dst, tag, (double)*(const float *)p);
    case TIFF_DOUBLE: return TIFFSetField(dst, tag, *(const double *)p);
    default: return 0;
    }
}

/* ---- writing ---------------------------------------------------------- */

typedef struct writer {
    cm_ctx *ctx;
    const char *path;
    const cm_image *img;
    const tiff_meta *meta; /* NULL: a plain TIFF */
    memio in, out;
    tiff_log in_log, out_log;
    TIFF *src, *dst;
    uint8_t *sbuf, *ebuf, *raw; /* decoded source block, block to encode, raw bytes */
    size_t raw_cap;
    /* per page: the source's entry types that libtiff does not write as
     * stored (0: no such entry), put back by restore_types */
    struct src_types {
        uint16_t iptc;     /* IPTC: LONG (libtiff writes UNDEFINED) */
        uint16_t exif, gps; /* the pointers: LONG (libtiff writes IFD) */
    } *types;
} writer;

static int write_failure(writer *w, const char *what)
{
    if (w->out.nomem)
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing TIFF", w->path);
    const char *detail = w->out_log.msg[0] ? w->out_log.msg : w->in_log.msg;
    return cm__error(w->ctx, CM_E_INTERNAL, "%s: cannot write TIFF: %s%s%s", w->path, what,
                     detail[0] ? ": " : "", detail);
}

/* The source's own bytes fail (a damaged further page, a strip past the
 * end): the input is at fault, not libtiff's writer. */
static int source_failure(writer *w, const char *what)
{
    return cm__error(w->ctx, CM_E_CORRUPT, "%s: cannot write: the source TIFF %s%s%s",
                     w->path, what, w->in_log.msg[0] ? ": " : "", w->in_log.msg);
}

/* IPTC from the source's bytes, not from libtiff (see formats/tiff_raw.c);
 * the entry's type is put back after writing (restore_types). */
static int copy_iptc(writer *w)
{
    const tiff_meta *m = w->meta;
    cm__tiff_entry e;
    if (cm__tiff_raw_entry(w->in.data, w->in.size, m->big_endian, m->bigtiff,
                           TIFFCurrentDirOffset(w->src), TIFFTAG_RICHTIFFIPTC, &e) != 1 ||
        e.bytes > UINT32_MAX)
        return source_failure(w, "has an unreadable IPTC tag");
    if (!TIFFSetField(w->dst, TIFFTAG_RICHTIFFIPTC, (uint32_t)e.bytes, e.value))
        return write_failure(w, "cannot copy the IPTC tag");
    tdir_t page = TIFFCurrentDirectory(w->src);
    if ((int)page < m->pages)
        w->types[page].iptc = e.type;
    return CM_OK;
}

/* Bytes of one IFD pointer of type t; 0 if t is no pointer type. */
static unsigned pointer_size(uint16_t t)
{
    return t == TIFF_LONG || t == TIFF_IFD ? 4 : t == TIFF_LONG8 || t == TIFF_IFD8 ? 8 : 0;
}

/* The copy's entry `tag` (an EXIF or GPS pointer) of the IFD at ifd gets
 * the source's type t back if it is one value of the same size (LONG and
 * IFD: a BigTIFF's LONG8 may not be written back as a LONG, nor the
 * reverse). */
static int restore_pointer_type(writer *w, uint64_t ifd, uint16_t tag, uint16_t t)
{
    const tiff_meta *m = w->meta;
    cm__tiff_entry e;
    if (!t || cm__tiff_raw_entry(w->out.data, w->out.size, m->big_endian, m->bigtiff, ifd, tag,
                                 &e) != 1 ||
        e.type == t || e.count != 1 || e.bytes != pointer_size(t))
        return CM_OK;
    return cm__tiff_retype(w->out.data, w->out.size, m->big_endian, m->bigtiff, ifd, tag, t);
}

/* The copy's entries get the source's types back where libtiff writes its
 * own: IPTC (libtiff writes UNDEFINED; exiftool and Photoshop write LONG)
 * and the EXIF/GPS pointers (libtiff writes IFD; exiftool, ImageMagick and
 * most cameras write LONG). The bytes stay as they are. */
static int restore_types(writer *w)
{
    const tiff_meta *m = w->meta;
    uint64_t ifd = cm__tiff_first_ifd(w->out.data, w->out.size, m->big_endian, m->bigtiff);
    for (int page = 0; page < m->pages && ifd; page++) {
        const struct src_types *t = &w->types[page];
        if (t->iptc && t->iptc != TIFF_UNDEFINED &&
            cm__tiff_retype(w->out.data, w->out.size, m->big_endian, m->bigtiff, ifd,
                            TIFFTAG_RICHTIFFIPTC, t->iptc) < 0)
            return write_failure(w, "cannot restore the IPTC tag's type");
        if (restore_pointer_type(w, ifd, TIFFTAG_EXIFIFD, t->exif) < 0 ||
            restore_pointer_type(w, ifd, TIFFTAG_GPSIFD, t->gps) < 0)
            return write_failure(w, "cannot restore the EXIF/GPS pointer's type");
        ifd = cm__tiff_next_ifd(w->out.data, w->out.size, m->big_endian, m->bigtiff, ifd);
    }
    return CM_OK;
}

/* dst's field for src's field f (same tag): the one dst knows, or f's
 * description registered on dst as libtiff registered it on src (unknown
 * tags); NULL if it cannot be registered. */
static const TIFFField *dst_field(writer *w, const TIFFField *f)
{
    const uint32_t tag = TIFFFieldTag(f);
    const TIFFField *df = TIFFFindField(w->dst, tag, TIFF_ANY);
    if (df)
        return df;
    /* libtiff keeps the name pointer: src outlives dst */
    TIFFFieldInfo fi = {tag,
                        (short)TIFFFieldReadCount(f),
                        (short)TIFFFieldWriteCount(f),
                        TIFFFieldDataType(f),
                        FIELD_CUSTOM,
                        1,
                        (unsigned char)TIFFFieldPassCount(f),
                        (char *)TIFFFieldName(f)};
    if (TIFFMergeFieldInfo(w->dst, &fi, 1) != 0)
        return NULL;
    return TIFFFindField(w->dst, tag, TIFF_ANY);
}

/* Every custom tag of src's current directory onto dst's. In image
 * directories the EXIF/GPS pointers are left to the caller, in EXIF ones
 * the Interoperability pointer (copy_sub_ifd); other IFD pointers are
 * dropped (they would point into the old file). Unknown tags
 * are registered on dst as libtiff registered them on src. */
static int copy_custom_tags(writer *w, int image_dir)
{
    int n = TIFFGetTagListCount(w->src);
    for (int i = 0; i < n; i++) {
        uint32_t tag = TIFFGetTagListEntry(w->src, i);
        const TIFFField *f = TIFFFieldWithTag(w->src, tag);
        if (!f)
            continue;
        TIFFDataType type = TIFFFieldDataType(f);
        if ((image_dir && (tag == TIFFTAG_EXIFIFD || tag == TIFFTAG_GPSIFD)) ||
            tag == TIFFTAG_INTEROPERABILITYIFD || type == TIFF_IFD || type == TIFF_IFD8)
            continue;
        if (image_dir && tag == TIFFTAG_RICHTIFFIPTC) {
            int ret = copy_iptc(w);
            if (ret < 0)
                return ret;
            continue;
        }
        const TIFFField *df = dst_field(w, f);
        if (!df) {
            char what[64];
            snprintf(what, sizeof(what), "cannot register tag %lu", (unsigned long)tag);
            return write_failure(w, what);
        }
        if (!copy_custom(w->src, w->dst, f, df)) {
            char what[96];
            snprintf(what, sizeof(what), "cannot copy tag %lu (%s)", (unsigned long)tag,
                     TIFFFieldName(f));
            return write_failure(w, what);
        }
    }
    return CM_OK;
}

/* Set the one-value IFD pointer df (LONG or IFD, LONG8 or IFD8, passed
 * with a count if libtiff registered it so) to off. 1 ok, 0 failed. */
static int set_ifd_pointer(TIFF *dst, const TIFFField *df, uint64_t off)
{
    const uint32_t tag = TIFFFieldTag(df);
    const int wide = TIFFFieldSetGetSize(df) == 8;
    uint32_t v32 = (uint32_t)off;
    uint64_t v64 = off;
    void *p = wide ? (void *)&v64 : (void *)&v32;
    if (!wide && off > UINT32_MAX)
        return 0;
    if (TIFFFieldPassCount(df))
        return TIFFFieldWriteCount(df) == TIFF_VARIABLE2 ? TIFFSetField(dst, tag, (uint32_t)1, p)
                                                         : TIFFSetField(dst, tag, 1, p);
    return wide ? TIFFSetField(dst, tag, v64) : TIFFSetField(dst, tag, v32);
}

/* The Interoperability IFD that the EXIF IFD at exif_off (of page `page`)
 * points to, written to dst as a custom directory before that EXIF IFD;
 * *off receives its new offset, 0 if there is none or it cannot be kept
 * (announced). libtiff has no schema for this IFD, and the EXIF one
 * serves: its entries (InteropIndex, InteropVersion, RelatedImage...) are
 * unknown tags to it, read and written with their stored type and count.
 * An entry libtiff cannot read is announced by name, the others kept.
 * Leaves src on another directory. */
static int copy_interop(writer *w, tdir_t page, uint64_t exif_off, uint64_t *off)
{
    const tiff_meta *m = w->meta;
    cm__tiff_entry e;
    char what[96];
    *off = 0;
    if (cm__tiff_raw_entry(w->in.data, w->in.size, m->big_endian, m->bigtiff, exif_off,
                           TIFFTAG_INTEROPERABILITYIFD, &e) != 1)
        return CM_OK;
    snprintf(what, sizeof(what), "InteroperabilityIFD (in the EXIF IFD of page %d)",
             (int)page + 1);
    if (e.count != 1 || (e.type != TIFF_LONG && e.type != TIFF_IFD && e.type != TIFF_LONG8 &&
                         e.type != TIFF_IFD8)) {
        cm__not_kept(w->ctx, what, "its pointer is %llu value(s) of type %u, not one offset",
                     (unsigned long long)e.count, (unsigned)e.type);
        return CM_OK;
    }
    const uint64_t src_off = rd_uint(e.value, (int)e.bytes, m->big_endian);
    uint16_t in_file[MAX_IFD_TAGS];
    int nfile = ifd_tags(w->in.data, w->in.size, m->big_endian, m->bigtiff, src_off, in_file);
    if (nfile < 0 || !TIFFReadEXIFDirectory(w->src, src_off)) {
        cm__not_kept(w->ctx, what, "it cannot be read (damaged file?)");
        return CM_OK;
    }
    for (int i = 0; i < nfile; i++) {
        const TIFFField *f = TIFFFindField(w->src, in_file[i], TIFF_ANY);
        const int readable = is_custom(w->src, in_file[i]) && f;
        if (readable && TIFFFieldDataType(f) != TIFF_IFD && TIFFFieldDataType(f) != TIFF_IFD8)
            continue;
        char entry[128];
        snprintf(entry, sizeof(entry), "tag %u of the InteroperabilityIFD (in the EXIF IFD of "
                 "page %d)", (unsigned)in_file[i], (int)page + 1);
        cm__not_kept(w->ctx, entry, readable ? "it points to another IFD, which celmark does "
                                               "not copy"
                                             : "libtiff cannot read it (unknown type, or a "
                                               "value outside the file)");
    }
    /* libtiff 4.5 does not free the current directory's custom values when
     * creating another (see copy_sub_ifd) */
    TIFFFreeDirectory(w->dst);
    if (TIFFCreateEXIFDirectory(w->dst) != 0)
        return write_failure(w, "cannot create a private IFD");
    int ret = copy_custom_tags(w, 0);
    if (ret < 0)
        return ret;
    if (!TIFFWriteCustomDirectory(w->dst, off))
        return write_failure(w, "cannot write the Interoperability IFD");
    return CM_OK;
}

/* An EXIF or GPS IFD of page `page`: copied as a custom directory written
 * before the page itself (an EXIF IFD's Interoperability IFD before it);
 * *off receives its new offset. */
static int copy_sub_ifd(writer *w, tdir_t page, uint32_t pointer_tag, uint64_t *off)
{
    uint64_t src_off = 0, interop = 0;
    int ret;
    *off = 0;
    if (!TIFFGetField(w->src, pointer_tag, &src_off) || !src_off)
        return CM_OK;
    const int exif = pointer_tag == TIFFTAG_EXIFIFD;
    if (exif && (ret = copy_interop(w, page, src_off, &interop)) < 0)
        return ret;
    if (!(exif ? TIFFReadEXIFDirectory(w->src, src_off) : TIFFReadGPSDirectory(w->src, src_off)))
        return source_failure(w, exif ? "has an unreadable EXIF IFD"
                                      : "has an unreadable GPS IFD");
    uint16_t in_file[MAX_IFD_TAGS];
    int nfile = ifd_tags(w->in.data, w->in.size, w->meta->big_endian, w->meta->bigtiff,
                         src_off, in_file);
    if (nfile < 0)
        return write_failure(w, "cannot list the source's tags");
    for (int i = 0; i < nfile; i++)
        if (carried(w->src, in_file[i]) < 0)
            return cm__error(w->ctx, CM_E_CORRUPT,
                             "%s: cannot write: tag %u of the %s IFD of page %d of the source "
                             "TIFF is unreadable (damaged file?) and would be lost",
                             w->path, (unsigned)in_file[i], exif ? "EXIF" : "GPS",
                             (int)page + 1);
    ret = CM_OK;
    /* libtiff 4.5 does not free the current directory's custom values when
     * creating another (fixed later; freeing twice is harmless) */
    TIFFFreeDirectory(w->dst);
    if ((exif ? TIFFCreateEXIFDirectory(w->dst) : TIFFCreateGPSDirectory(w->dst)) != 0) {
        ret = write_failure(w, "cannot create a private IFD");
    } else if ((ret = copy_custom_tags(w, 0)) == CM_OK && interop) {
        /* the pointer, with the source's type (unknown to libtiff's EXIF
         * schema: registered as on src) and the new offset */
        const TIFFField *f = TIFFFindField(w->src, TIFFTAG_INTEROPERABILITYIFD, TIFF_ANY);
        const TIFFField *df = f ? dst_field(w, f) : NULL;
        if (!df || !set_ifd_pointer(w->dst, df, interop))
            ret = write_failure(w, "cannot link the Interoperability IFD");
    }
    if (ret == CM_OK && !TIFFWriteCustomDirectory(w->dst, off))
        ret = write_failure(w, exif ? "cannot write the EXIF IFD" : "cannot write the GPS IFD");
    /* back to the page for its own tags */
    if (!TIFFSetDirectory(w->src, page) && ret == CM_OK)
        ret = source_failure(w, "cannot be read again");
    return ret;
}

static int ensure_raw(writer *w, uint64_t n)
{
    if (n > w->meta->size)
        return CM_E_CORRUPT; /* a strip cannot be larger than the file */
    if (n <= w->raw_cap)
        return CM_OK;
    uint8_t *p = realloc(w->raw, (size_t)n);
    if (!p)
        return CM_E_NOMEM;
    w->raw = p;
    w->raw_cap = (size_t)n;
    return CM_OK;
}

/* Raw strip or tile `index` of src onto dst, byte for byte. */
static int copy_raw_block(writer *w, int tiled, uint32_t index)
{
    uint64_t n = TIFFGetStrileByteCount(w->src, index);
    int ret;
    if (n == 0)
        return CM_OK; /* absent (sparse) stays absent */
    if ((ret = ensure_raw(w, n)) < 0)
        return ret == CM_E_NOMEM ? cm__error(w->ctx, ret, "%s: out of memory writing TIFF", w->path)
                                 : source_failure(w, "has a strip larger than the file");
    tmsize_t got = tiled ? TIFFReadRawTile(w->src, index, w->raw, (tmsize_t)n)
                         : TIFFReadRawStrip(w->src, index, w->raw, (tmsize_t)n);
    if (got != (tmsize_t)n)
        return source_failure(w, "has an unreadable strip");
    tmsize_t put = tiled ? TIFFWriteRawTile(w->dst, index, w->raw, (tmsize_t)n)
                         : TIFFWriteRawStrip(w->dst, index, w->raw, (tmsize_t)n);
    if (put != (tmsize_t)n)
        return write_failure(w, "cannot write a strip");
    return CM_OK;
}

/* A page after the first: all strips or tiles copied unchanged. */
static int copy_raw_page(writer *w)
{
    int tiled = TIFFIsTiled(w->src);
    uint32_t n = tiled ? TIFFNumberOfTiles(w->src) : TIFFNumberOfStrips(w->src);
    for (uint32_t i = 0; i < n; i++) {
        int ret = copy_raw_block(w, tiled, i);
        if (ret < 0)
            return ret;
    }
    return CM_OK;
}

/* The layout of the image being written onto page 0 of dst (its tags are
 * set), as the reader saw the source. */
static int dst_layout(writer *w, layout *L)
{
    const cm_image *img = w->img;
    uint16_t planar = PLANARCONFIG_CONTIG;
    TIFFGetFieldDefaulted(w->dst, TIFFTAG_PLANARCONFIG, &planar);
    memset(L, 0, sizeof(*L));
    L->width = (uint32_t)img->width;
    L->height = (uint32_t)img->height;
    L->spp = img->channels;
    L->bytes = img->bit_depth / 8;
    L->separate = planar == PLANARCONFIG_SEPARATE;
    L->colour = img->channels - (img->has_alpha ? 1 : 0);
    L->invert = w->meta && w->meta->photometric == PHOTOMETRIC_MINISWHITE;
    L->tiled = TIFFIsTiled(w->dst);
    if (L->tiled) {
        TIFFGetField(w->dst, TIFFTAG_TILEWIDTH, &L->bw);
        TIFFGetField(w->dst, TIFFTAG_TILELENGTH, &L->bh);
    } else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(w->dst, TIFFTAG_ROWSPERSTRIP, &rps);
        L->bw = L->width;
        L->bh = rps && rps < L->height ? rps : L->height;
    }
    if (layout_sizes(L) < 0)
        return cm__error(w->ctx, CM_E_LIMIT, "%s: TIFF strips or tiles too large", w->path);
    return CM_OK;
}

/* Page 0's pixels from the image. With a source, each block is first
 * decoded from it: a tile keeps the source's padding, and a block whose
 * bytes come out identical is copied raw (except for JPEG, whose encoder
 * rewrites the tables shared by all strips). */
static int write_pixels(writer *w)
{
    layout L;
    int ret;
    if ((ret = dst_layout(w, &L)) < 0)
        return ret;
    uint16_t comp = COMPRESSION_NONE;
    TIFFGetFieldDefaulted(w->dst, TIFFTAG_COMPRESSION, &comp);
    const int reuse = w->src && comp != COMPRESSION_JPEG && comp != COMPRESSION_OJPEG;
    if (!(w->ebuf = calloc(1, L.block_bytes)) || (w->src && !(w->sbuf = malloc(L.block_bytes))))
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing TIFF", w->path);

    for (int p = 0; p < (L.separate ? L.spp : 1); p++)
        for (uint32_t by = 0; by < blocks_down(&L); by++)
            for (uint32_t bx = 0; bx < blocks_across(&L); bx++) {
                block b;
                block_at(&L, w->dst, p, bx, by, &b);
                if (w->src) {
                    tmsize_t n = L.tiled ? TIFFReadEncodedTile(w->src, b.index, w->sbuf,
                                                               (tmsize_t)b.bytes)
                                         : TIFFReadEncodedStrip(w->src, b.index, w->sbuf,
                                                                (tmsize_t)b.bytes);
                    if (n < 0 || (size_t)n < b.bytes)
                        return source_failure(w, "cannot be decoded again");
                    memcpy(w->ebuf, w->sbuf, b.bytes);
                }
                image_to_block(&L, &b, w->img, w->ebuf);
                if (reuse && !memcmp(w->ebuf, w->sbuf, b.bytes)) {
                    if ((ret = copy_raw_block(w, L.tiled, b.index)) < 0)
                        return ret;
                    continue;
                }
                tmsize_t put = L.tiled ? TIFFWriteEncodedTile(w->dst, b.index, w->ebuf,
                                                              (tmsize_t)b.bytes)
                                       : TIFFWriteEncodedStrip(w->dst, b.index, w->ebuf,
                                                               (tmsize_t)b.bytes);
                if (put < 0)
                    return write_failure(w, "cannot encode the pixels");
            }
    return CM_OK;
}

/* One page of the source onto dst: its EXIF/GPS IFDs, every tag, and the
 * pixels (page 0, from the image) or the raw strips (other pages). */
static int copy_page(writer *w, tdir_t page)
{
    uint64_t exif = 0, gps = 0;
    int ret;

    if ((ret = copy_sub_ifd(w, page, TIFFTAG_EXIFIFD, &exif)) < 0 ||
        (ret = copy_sub_ifd(w, page, TIFFTAG_GPSIFD, &gps)) < 0)
        return ret;
    if (exif || gps) {
        TIFFFreeDirectory(w->dst); /* the private IFD's values (see copy_sub_ifd) */
        if (TIFFCreateDirectory(w->dst) != 0)
            return write_failure(w, "cannot start a page");
    }
    uint16_t in_file[MAX_IFD_TAGS];
    int nfile = ifd_tags(w->in.data, w->in.size, w->meta->big_endian, w->meta->bigtiff,
                         TIFFCurrentDirOffset(w->src), in_file);
    if (nfile < 0)
        return write_failure(w, "cannot list the source's tags");
    /* a copy must not lose what libtiff could not read */
    for (int i = 0; i < nfile; i++) {
        if (carried(w->src, in_file[i]) == 0) {
            const TIFFField *f = TIFFFindField(w->src, in_file[i], TIFF_ANY);
            char what[80];
            snprintf(what, sizeof(what), "%s (%u) of page %d", f ? TIFFFieldName(f) : "IFD",
                     (unsigned)in_file[i], (int)page + 1);
            cm__not_kept(w->ctx, what, "celmark does not copy private IFDs (a SubIFD's "
                         "reduced-resolution copy would carry the unmarked picture)");
        }
        if (carried(w->src, in_file[i]) < 0)
            return cm__error(w->ctx, CM_E_CORRUPT,
                             "%s: cannot write: tag %u of page %d of the source TIFF is "
                             "unreadable (damaged file?) and would be lost",
                             w->path, (unsigned)in_file[i], (int)page + 1);
    }
    for (size_t i = 0; i < sizeof(core_tags) / sizeof(core_tags[0]); i++) {
        /* only what the file has (not libtiff's defaults); a tag some
         * libtiff versions keep as a custom value goes with the custom ones */
        if (!has_tag(in_file, nfile, core_tags[i].tag) || is_custom(w->src, core_tags[i].tag))
            continue;
        /* page 0 is re-encoded: libtiff keeps tables it is given, so the
         * source's (another quality) would not match the new strips */
        if (page == 0 && core_tags[i].tag == TIFFTAG_JPEGTABLES)
            continue;
        if (!copy_core(w->src, w->dst, core_tags[i].tag, core_tags[i].k)) {
            const TIFFField *f = TIFFFieldWithTag(w->src, core_tags[i].tag);
            char what[96];
            snprintf(what, sizeof(what), "cannot copy tag %lu (%s)",
                     (unsigned long)core_tags[i].tag, f ? TIFFFieldName(f) : "?");
            return write_failure(w, what);
        }
    }
    if ((ret = copy_custom_tags(w, 1)) < 0)
        return ret;
    if ((exif && !TIFFSetField(w->dst, TIFFTAG_EXIFIFD, exif)) ||
        (gps && !TIFFSetField(w->dst, TIFFTAG_GPSIFD, gps)))
        return write_failure(w, "cannot link the EXIF/GPS IFD");
    cm__tiff_entry e;
    if (exif && cm__tiff_raw_entry(w->in.data, w->in.size, w->meta->big_endian,
                                   w->meta->bigtiff, TIFFCurrentDirOffset(w->src),
                                   TIFFTAG_EXIFIFD, &e) == 1)
        w->types[page].exif = e.type;
    if (gps && cm__tiff_raw_entry(w->in.data, w->in.size, w->meta->big_endian,
                                  w->meta->bigtiff, TIFFCurrentDirOffset(w->src),
                                  TIFFTAG_GPSIFD, &e) == 1)
        w->types[page].gps = e.type;
    if (page == 0) {
        uint16_t comp = COMPRESSION_NONE;
        TIFFGetFieldDefaulted(w->dst, TIFFTAG_COMPRESSION, &comp);
        /* settings the file does not record: never lossy when it may have
         * been lossless, and a high JPEG quality */
        if (comp == COMPRESSION_WEBP)
            TIFFSetField(w->dst, TIFFTAG_WEBP_LOSSLESS, 1);
        if (comp == COMPRESSION_JPEG)
            TIFFSetField(w->dst, TIFFTAG_JPEGQUALITY, JPEG_REENCODE_QUALITY);
        ret = write_pixels(w);
    } else {
        ret = copy_raw_page(w);
    }
    if (ret < 0)
        return ret;
    if (!TIFFWriteDirectory(w->dst))
        return write_failure(w, "cannot write a directory");
    return CM_OK;
}

static int write_with_meta(writer *w)
{
    const tiff_meta *m = w->meta;
    w->in.data = m->file;
    w->in.size = m->size;
    if (!(w->src = open_mem(w->path, "rc", &w->in, &w->in_log, 0)))
        return write_failure(w, "cannot reopen the source");
    for (int page = 0; page < m->pages; page++) {
        if (page > 0 && !TIFFSetDirectory(w->src, (tdir_t)page)) {
            char what[64];
            snprintf(what, sizeof(what), "has an unreadable page %d", page + 1);
            return source_failure(w, what);
        }
        int ret = copy_page(w, (tdir_t)page);
        if (ret < 0)
            return ret;
    }
    return CM_OK;
}

static int write_plain(writer *w)
{
    const cm_image *img = w->img;
    TIFF *t = w->dst;
    const int colour = img->channels - (img->has_alpha ? 1 : 0);
    size_t row = (size_t)img->width * (size_t)img->channels * (size_t)(img->bit_depth / 8);
    uint32_t rps = (uint32_t)(PLAIN_STRIP_BYTES / (row ? row : 1));
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;

    if (rps < 1)
        rps = 1;
    if (!TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)img->width) ||
        !TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)img->height) ||
        !TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, img->bit_depth) ||
        !TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, img->channels) ||
        !TIFFSetField(t, TIFFTAG_PHOTOMETRIC,
                      colour == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK) ||
        !TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) ||
        (img->has_alpha && !TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra)) ||
        !TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) ||
        !TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) ||
        !TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rps))
        return write_failure(w, "cannot set the image tags");
    int ret = write_pixels(w);
    if (ret < 0)
        return ret;
    if (!TIFFWriteDirectory(t))
        return write_failure(w, "cannot write the directory");
    return CM_OK;
}

static int layout_matches(const tiff_meta *m, const cm_image *img)
{
    return m->width == (uint32_t)img->width && m->height == (uint32_t)img->height &&
           m->channels == img->channels && m->alpha == img->has_alpha &&
           m->depth == img->bit_depth;
}

static int write_tiff(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
{
    writer w;
    int ret;

    if (!path)
        path = "(output)";
    if (!img || !fp)
        return cm__error(ctx, CM_E_INVAL, "%s: tiff write: invalid argument", path);
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "%s: invalid image", path);

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.path = path;
    w.img = img;
    w.out.writable = 1;
    if (img->meta && img->meta->format == &cm__format_tiff &&
        layout_matches(img->meta->priv, img))
        w.meta = img->meta->priv;
    if (w.meta && !(w.types = cm__calloc_array((size_t)w.meta->pages, sizeof(*w.types))))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing TIFF", path);

    /* the source's byte order and classic/BigTIFF; plain files in host order */
    char mode[8] = "w";
    if (w.meta)
        snprintf(mode, sizeof(mode), "w%s%s", w.meta->big_endian ? "b" : "l",
                 w.meta->bigtiff ? "8" : "");
    if (!(w.dst = open_mem(path, mode, &w.out, &w.out_log, 0))) {
        ret = write_failure(&w, "cannot start the file");
        goto done;
    }
    if ((ret = w.meta ? write_with_meta(&w) : write_plain(&w)) < 0)
        goto done;
    if (!TIFFFlush(w.dst)) {
        ret = write_failure(&w, "cannot finish the file");
        goto done;
    }
    TIFFClose(w.dst);
    w.dst = NULL;
    if (w.out_log.msg[0] || w.out.nomem) {
        ret = write_failure(&w, "libtiff failed");
        goto done;
    }
    if (w.meta && (ret = restore_types(&w)) < 0)
        goto done;
    if (fwrite(w.out.data, 1, w.out.size, fp) != w.out.size) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", path,
                        strerror(errno ? errno : EIO));
        goto done;
    }
    ret = CM_OK;

done:
    /* dst first: it may use field names owned by src */
    if (w.dst)
        TIFFClose(w.dst);
    if (w.src)
        TIFFClose(w.src);
    free(w.out.data);
    free(w.sbuf);
    free(w.ebuf);
    free(w.raw);
    free(w.types);
    return ret;
}

/* ---- info ------------------------------------------------------------- */

static void describe_tiff(const cm_image *img, cm_image_info *info)
{
    const tiff_meta *m = img->meta->priv;
    static const char *const layouts[5] = {"", "gray", "gray+alpha", "rgb", "rgba"};

    snprintf(info->format, sizeof(info->format), "tiff");
    snprintf(info->color_type, sizeof(info->color_type), "%s",
             m->channels >= 1 && m->channels <= 4 ? layouts[m->channels] : "unknown");
    info->bit_depth = m->depth;
    info->converted = 0;
    for (int i = 0; i < m->ntags; i++)
        cm__info_add_tag(info, m->tags[i].key, "%s", m->tags[i].value);
}

const cm__format cm__format_tiff = {
    .name = "tiff",
    .extensions = "tif,tiff",
    .probe = probe_tiff,
    .read = read_tiff,
    .write = write_tiff,
    .meta_free = free_tiff_meta,
    .info = describe_tiff,
};
