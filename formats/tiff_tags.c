/*
 * TIFF tags (declared, with the method, in formats/tiff_common.h): the tag
 * numbers of a directory as the file stores them, which entries a copy
 * carries, and how each core or custom tag is copied through libtiff.
 */
#include "tiff_common.h"

#include <string.h>

/* ---- the file's own tag list ------------------------------------------ */

uint64_t cm__tiff_rd_uint(const uint8_t *p, int n, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

int cm__tiff_ifd_tags(const uint8_t *f, size_t size, int be, int big, uint64_t off, uint16_t *tags)
{
    const uint64_t head = big ? 8 : 2, esz = big ? 20 : 12;
    if (off > size || size - off < head)
        return -1;
    uint64_t n = cm__tiff_rd_uint(f + off, (int)head, be);
    if (n > MAX_IFD_TAGS || (size - off - head) / esz < n)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        tags[i] = (uint16_t)cm__tiff_rd_uint(f + off + head + i * esz, 2, be);
    return (int)n;
}

int cm__tiff_has_tag(const uint16_t *tags, int n, uint32_t tag)
{
    for (int i = 0; i < n; i++)
        if (tags[i] == tag)
            return 1;
    return 0;
}

/* ---- copying tags ----------------------------------------------------- */

const struct core_tag cm__tiff_core_tags[] = {
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
const size_t cm__tiff_ncore_tags = sizeof(cm__tiff_core_tags) / sizeof(cm__tiff_core_tags[0]);

int cm__tiff_is_custom(TIFF *tif, uint32_t tag)
{
    int n = TIFFGetTagListCount(tif);
    for (int i = 0; i < n; i++)
        if (TIFFGetTagListEntry(tif, i) == tag)
            return 1;
    return 0;
}

int cm__tiff_carried(TIFF *tif, uint32_t tag)
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
    if (cm__tiff_is_custom(tif, tag)) {
        const TIFFField *f = TIFFFindField(tif, tag, TIFF_ANY);
        if (!f)
            return -1;
        return TIFFFieldDataType(f) != TIFF_IFD && TIFFFieldDataType(f) != TIFF_IFD8;
    }
    for (size_t i = 0; i < sizeof(cm__tiff_core_tags) / sizeof(cm__tiff_core_tags[0]); i++)
        if (cm__tiff_core_tags[i].tag == tag)
            return 1;
    return -1;
}

int cm__tiff_copy_core(TIFF *src, TIFF *dst, uint32_t tag, kind k)
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

int cm__tiff_copy_custom(TIFF *src, TIFF *dst, const TIFFField *f, const TIFFField *df)
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
