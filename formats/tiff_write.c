/*
 * TIFF writer (see formats/tiff_common.h): every page and tag of a TIFF
 * source copied with the first page's pixels re-encoded (unchanged strips
 * and tiles copied raw), or a plain Deflate TIFF of the pixels.
 */
#include "tiff_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Plain TIFFs: strips of about this many bytes (whole rows). Larger strips
 * compress better with Deflate; 256 KiB keeps a reader's strip buffer small. */
#define PLAIN_STRIP_BYTES ((size_t)256 << 10)

/* JPEG-compressed pages are re-encoded: the source's quality is not stored
 * in the file, and 95 keeps the re-encoding loss below the mark's own
 * amplitude (libtiff's default of 75 would not). */
#define JPEG_REENCODE_QUALITY 95

/* ---- pixel layout ----------------------------------------------------- */

/* The inverse of block_to_image (formats/tiff_read.c), min-is-white
 * inversion included; bytes of buf outside the image (tile padding) are
 * left as they are. */
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
        if (!cm__tiff_copy_custom(w->src, w->dst, f, df)) {
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
    const uint64_t src_off = cm__tiff_rd_uint(e.value, (int)e.bytes, m->big_endian);
    uint16_t in_file[MAX_IFD_TAGS];
    int nfile = cm__tiff_ifd_tags(w->in.data, w->in.size, m->big_endian, m->bigtiff, src_off,
                                  in_file);
    if (nfile < 0 || !TIFFReadEXIFDirectory(w->src, src_off)) {
        cm__not_kept(w->ctx, what, "it cannot be read (damaged file?)");
        return CM_OK;
    }
    for (int i = 0; i < nfile; i++) {
        const TIFFField *f = TIFFFindField(w->src, in_file[i], TIFF_ANY);
        const int readable = cm__tiff_is_custom(w->src, in_file[i]) && f;
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
    int nfile = cm__tiff_ifd_tags(w->in.data, w->in.size, w->meta->big_endian, w->meta->bigtiff,
                                  src_off, in_file);
    if (nfile < 0)
        return write_failure(w, "cannot list the source's tags");
    for (int i = 0; i < nfile; i++)
        if (cm__tiff_carried(w->src, in_file[i]) < 0)
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
    if (cm__tiff_layout_sizes(L) < 0)
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
        for (uint32_t by = 0; by < cm__tiff_blocks_down(&L); by++)
            for (uint32_t bx = 0; bx < cm__tiff_blocks_across(&L); bx++) {
                block b;
                cm__tiff_block_at(&L, w->dst, p, bx, by, &b);
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
    int nfile = cm__tiff_ifd_tags(w->in.data, w->in.size, w->meta->big_endian, w->meta->bigtiff,
                                  TIFFCurrentDirOffset(w->src), in_file);
    if (nfile < 0)
        return write_failure(w, "cannot list the source's tags");
    /* a copy must not lose what libtiff could not read */
    for (int i = 0; i < nfile; i++) {
        if (cm__tiff_carried(w->src, in_file[i]) == 0) {
            const TIFFField *f = TIFFFindField(w->src, in_file[i], TIFF_ANY);
            char what[80];
            snprintf(what, sizeof(what), "%s (%u) of page %d", f ? TIFFFieldName(f) : "IFD",
                     (unsigned)in_file[i], (int)page + 1);
            cm__not_kept(w->ctx, what, "celmark does not copy private IFDs (a SubIFD's "
                         "reduced-resolution copy would carry the unmarked picture)");
        }
        if (cm__tiff_carried(w->src, in_file[i]) < 0)
            return cm__error(w->ctx, CM_E_CORRUPT,
                             "%s: cannot write: tag %u of page %d of the source TIFF is "
                             "unreadable (damaged file?) and would be lost",
                             w->path, (unsigned)in_file[i], (int)page + 1);
    }
    for (size_t i = 0; i < cm__tiff_ncore_tags; i++) {
        /* only what the file has (not libtiff's defaults); a tag some
         * libtiff versions keep as a custom value goes with the custom ones */
        if (!cm__tiff_has_tag(in_file, nfile, cm__tiff_core_tags[i].tag) ||
            cm__tiff_is_custom(w->src, cm__tiff_core_tags[i].tag))
            continue;
        /* page 0 is re-encoded: libtiff keeps tables it is given, so the
         * source's (another quality) would not match the new strips */
        if (page == 0 && cm__tiff_core_tags[i].tag == TIFFTAG_JPEGTABLES)
            continue;
        if (!cm__tiff_copy_core(w->src, w->dst, cm__tiff_core_tags[i].tag,
                                cm__tiff_core_tags[i].k)) {
            const TIFFField *f = TIFFFieldWithTag(w->src, cm__tiff_core_tags[i].tag);
            char what[96];
            snprintf(what, sizeof(what), "cannot copy tag %lu (%s)",
                     (unsigned long)cm__tiff_core_tags[i].tag, f ? TIFFFieldName(f) : "?");
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
    if (!(w->src = cm__tiff_open_mem(w->path, "rc", &w->in, &w->in_log, 0)))
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

int cm__tiff_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
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
    if (!(w.dst = cm__tiff_open_mem(path, mode, &w.out, &w.out_log, 0))) {
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
