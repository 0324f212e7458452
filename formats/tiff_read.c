/*
 * TIFF reader (see formats/tiff_common.h): probe, read (the first page of
 * 8/16-bit grey or RGB decoded, the file kept in the meta; other layouts
 * handed to libav), and what `celmark info` shows of the source.
 */
#include "tiff_common.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- metadata ---------------------------------------------------------- */

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
    if (cm__tiff_layout_sizes(L) < 0)
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
        for (uint32_t by = 0; by < cm__tiff_blocks_down(L); by++)
            for (uint32_t bx = 0; bx < cm__tiff_blocks_across(L); bx++) {
                block b;
                cm__tiff_block_at(L, tif, p, bx, by, &b);
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
    uint64_t off = cm__tiff_rd_uint(e.value, (int)e.bytes, be);
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
    int nfile = cm__tiff_ifd_tags(r->io.data, r->io.size, m->big_endian, m->bigtiff,
                                  TIFFCurrentDirOffset(tif), in_file);
    char lists[2][sizeof(m->tags[0].value)] = {"", ""}; /* dropped, unreadable */
    size_t lens[2] = {0, 0};
    for (int i = 0; i < nfile; i++) {
        int c = cm__tiff_carried(tif, in_file[i]);
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
    const int be = f[0] == 'M', big = cm__tiff_rd_uint(f + 2, 2, be) == 43;
    uint16_t in_file[MAX_IFD_TAGS];
    int n = cm__tiff_ifd_tags(f, fsize, be, big, TIFFCurrentDirOffset(tif), in_file);
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (!cm__tiff_has_tag(in_file, n, tags[i].tag))
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
    r.tif = cm__tiff_open_mem(path, "rc", &r.io, &r.log,
                              cap > (uint64_t)INT64_MAX ? 0 : (tmsize_t)cap);
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
    .write = cm__tiff_write,
    .meta_free = free_tiff_meta,
    .info = describe_tiff,
};
