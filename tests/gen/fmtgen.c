/*
 * TIFF and DPX test files (see fmtgen.h). TIFFs are written with plain
 * libtiff calls (scanlines and tiles), DPX headers byte by byte from the
 * SMPTE 268M layout, independently of formats/tiff_*.c and formats/dpx.c.
 */
#include "fmtgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

/* ---- TIFF ------------------------------------------------------------- */

void gen_tiff_default(gen_tiff *s)
{
    memset(s, 0, sizeof(*s));
    s->compression = COMPRESSION_LZW;
    s->alpha_type = EXTRASAMPLE_UNASSALPHA;
    s->icc_bytes = 3000;
}

static void merge_private_tags(TIFF *t)
{
    static TIFFFieldInfo fi[2] = {
        {GEN_TIFF_PRIVATE_LONG, TIFF_VARIABLE2, TIFF_VARIABLE2, TIFF_LONG, FIELD_CUSTOM, 1, 1,
         "StudioShotId"},
        {GEN_TIFF_PRIVATE_ASCII, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_ASCII, FIELD_CUSTOM, 1, 0,
         "StudioNote"},
    };
    TIFFMergeFieldInfo(t, fi, 2);
}

#define CHECK(cond, what)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "gen_write_tiff: %s failed\n", what);             \
            goto fail;                                                        \
        }                                                                     \
    } while (0)

/* An Interoperability IFD: libtiff has no schema for it, so its tags are
 * registered on the EXIF one (as a camera would write them). */
static int write_interop_ifd(TIFF *t, uint64_t *off)
{
    static TIFFFieldInfo fi[3] = {
        {1, TIFF_VARIABLE2, TIFF_VARIABLE2, TIFF_ASCII, FIELD_CUSTOM, 1, 1,
         "InteroperabilityIndex"},
        {2, TIFF_VARIABLE2, TIFF_VARIABLE2, TIFF_UNDEFINED, FIELD_CUSTOM, 1, 1,
         "InteroperabilityVersion"},
        {0x1001, 1, 1, TIFF_LONG, FIELD_CUSTOM, 1, 0, "RelatedImageWidth"},
    };
    CHECK(TIFFCreateEXIFDirectory(t) == 0, "TIFFCreateEXIFDirectory (interop)");
    CHECK(TIFFMergeFieldInfo(t, fi, 3) == 0, "interop tags");
    CHECK(TIFFSetField(t, 1, (uint32_t)4, "R98"), "InteroperabilityIndex");
    CHECK(TIFFSetField(t, 2, (uint32_t)4, "0100"), "InteroperabilityVersion");
    CHECK(TIFFSetField(t, 0x1001, (uint32_t)640), "RelatedImageWidth");
    CHECK(TIFFWriteCustomDirectory(t, off), "Interoperability IFD");
    TIFFFreeDirectory(t);
    return 0;
fail:
    return -1;
}

/* EXIF (with an Interoperability IFD if asked) and GPS IFDs, written
 * before the image directory. */
static int write_private_ifds(TIFF *t, int interop, uint64_t *exif, uint64_t *gps)
{
    static const uint16_t iso[1] = {400};
    static const char comment[16] = "ASCII\0\0\0key pose";
    static const uint8_t version[4] = {2, 2, 0, 0};
    static TIFFFieldInfo iop_ptr = {TIFFTAG_INTEROPERABILITYIFD, 1, 1, TIFF_LONG, FIELD_CUSTOM,
                                    1, 0, "InteroperabilityIFD"};
    uint64_t iop = 0;
    CHECK(!interop || write_interop_ifd(t, &iop) == 0, "Interoperability IFD");
    /* libtiff 4.5 leaks a custom directory's values unless freed first */
    CHECK(TIFFCreateEXIFDirectory(t) == 0, "TIFFCreateEXIFDirectory");
    if (interop)
        CHECK(TIFFMergeFieldInfo(t, &iop_ptr, 1) == 0 &&
                  TIFFSetField(t, TIFFTAG_INTEROPERABILITYIFD, (uint32_t)iop),
              "InteroperabilityIFD pointer");
    CHECK(TIFFSetField(t, EXIFTAG_DATETIMEORIGINAL, "2024:05:17 10:42:00"), "DateTimeOriginal");
    CHECK(TIFFSetField(t, EXIFTAG_ISOSPEEDRATINGS, 1, iso), "ISOSpeedRatings");
    CHECK(TIFFSetField(t, EXIFTAG_EXPOSURETIME, 1.0 / 48.0), "ExposureTime");
    CHECK(TIFFSetField(t, EXIFTAG_USERCOMMENT, (int)sizeof(comment), comment), "UserComment");
    CHECK(TIFFWriteCustomDirectory(t, exif), "EXIF IFD");
    TIFFFreeDirectory(t);
    CHECK(TIFFCreateGPSDirectory(t) == 0, "TIFFCreateGPSDirectory");
    CHECK(TIFFSetField(t, GPSTAG_VERSIONID, version), "GPSVersionID");
    CHECK(TIFFSetField(t, GPSTAG_LATITUDEREF, "N"), "GPSLatitudeRef");
    const TIFFField *f = TIFFFieldWithTag(t, GPSTAG_LATITUDE);
    double latd[3] = {48.0, 51.0, 29.5};
    float latf[3] = {48.0f, 51.0f, 29.5f};
    CHECK(f && TIFFSetField(t, GPSTAG_LATITUDE,
                            TIFFFieldSetGetSize(f) == 8 ? (void *)latd : (void *)latf),
          "GPSLatitude");
    CHECK(TIFFWriteCustomDirectory(t, gps), "GPS IFD");
    TIFFFreeDirectory(t);
    CHECK(TIFFCreateDirectory(t) == 0, "TIFFCreateDirectory");
    return 0;
fail:
    return -1;
}

static unsigned sample(const cm_image *img, int x, int y, int c)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    size_t i = (size_t)x * (size_t)img->channels + (size_t)c;
    return img->bit_depth == 16 ? ((const uint16_t *)(const void *)row)[i] : row[i];
}

static void put(uint8_t *buf, size_t i, int depth, unsigned v)
{
    if (depth == 16)
        ((uint16_t *)(void *)buf)[i] = (uint16_t)v;
    else
        buf[i] = (uint8_t)v;
}

/* Stored value of sample c: inverted colour for min-is-white. */
static unsigned stored(const cm_image *img, const gen_tiff *s, int x, int y, int c)
{
    unsigned v = sample(img, x, y, c);
    int colour = img->channels - (img->has_alpha ? 1 : 0);
    if (s->min_is_white && c < colour)
        v = (img->bit_depth == 16 ? 65535u : 255u) - v;
    return v;
}

static int write_pixels(TIFF *t, const cm_image *img, const gen_tiff *s)
{
    const int ch = img->channels, bs = img->bit_depth / 8;
    const int planes = s->separate ? ch : 1, spb = s->separate ? 1 : ch;
    uint8_t *buf = NULL;
    if (s->tile) {
        const uint32_t ts = s->tile;
        buf = malloc((size_t)ts * ts * (size_t)spb * (size_t)bs);
        CHECK(buf, "malloc");
        for (int p = 0; p < planes; p++)
            for (uint32_t ty = 0; ty < (uint32_t)img->height; ty += ts)
                for (uint32_t tx = 0; tx < (uint32_t)img->width; tx += ts) {
                    memset(buf, 0, (size_t)ts * ts * (size_t)spb * (size_t)bs);
                    for (uint32_t y = 0; y < ts && ty + y < (uint32_t)img->height; y++)
                        for (uint32_t x = 0; x < ts && tx + x < (uint32_t)img->width; x++)
                            for (int c = 0; c < spb; c++)
                                put(buf, ((size_t)y * ts + x) * (size_t)spb + (size_t)c,
                                    img->bit_depth,
                                    stored(img, s, (int)(tx + x), (int)(ty + y),
                                           s->separate ? p : c));
                    CHECK(TIFFWriteTile(t, buf, tx, ty, 0, (uint16_t)p) >= 0, "TIFFWriteTile");
                }
    } else {
        buf = malloc((size_t)img->width * (size_t)spb * (size_t)bs);
        CHECK(buf, "malloc");
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < img->height; y++) {
                for (int x = 0; x < img->width; x++)
                    for (int c = 0; c < spb; c++)
                        put(buf, (size_t)x * (size_t)spb + (size_t)c, img->bit_depth,
                            stored(img, s, x, y, s->separate ? p : c));
                CHECK(TIFFWriteScanline(t, buf, (uint32_t)y, (uint16_t)p) >= 0,
                      "TIFFWriteScanline");
            }
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

/* Page 2: grey gradient, LZW; page 3: 8-bit palette, PackBits. */
static int write_extra_page(TIFF *t, int page, int pages)
{
    const uint32_t w = 40, h = 24;
    uint8_t row[40];
    CHECK(TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE), "SubfileType");
    CHECK(TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w) && TIFFSetField(t, TIFFTAG_IMAGELENGTH, h),
          "size");
    CHECK(TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8) && TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1),
          "samples");
    CHECK(TIFFSetField(t, TIFFTAG_PAGENUMBER, page, pages), "PageNumber");
    CHECK(TIFFSetField(t, TIFFTAG_PAGENAME, page == 1 ? "matte" : "palette preview"), "PageName");
    if (page == 1) {
        CHECK(TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK), "Photometric");
        CHECK(TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW), "Compression");
        CHECK(TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8), "RowsPerStrip");
    } else {
        static uint16_t r[256], g[256], b[256];
        for (int i = 0; i < 256; i++) {
            r[i] = (uint16_t)(i * 257);
            g[i] = (uint16_t)((255 - i) * 257);
            b[i] = (uint16_t)((i * 7 % 256) * 257);
        }
        CHECK(TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_PALETTE), "Photometric");
        CHECK(TIFFSetField(t, TIFFTAG_COLORMAP, r, g, b), "ColorMap");
        CHECK(TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_PACKBITS), "Compression");
        CHECK(TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h), "RowsPerStrip");
    }
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            row[x] = (uint8_t)(page == 1 ? x * 6 + y : (x / 8) * 40 + y);
        CHECK(TIFFWriteScanline(t, row, y, 0) >= 0, "TIFFWriteScanline");
    }
    CHECK(TIFFWriteDirectory(t), "TIFFWriteDirectory");
    return 0;
fail:
    return -1;
}

int gen_write_tiff(const char *path, const cm_image *img, const gen_tiff *s)
{
    char mode[8];
    uint8_t *icc = NULL;
    snprintf(mode, sizeof(mode), "w%s%s", s->big_endian ? "b" : "l", s->bigtiff ? "8" : "");
    TIFF *t = TIFFOpen(path, mode);
    if (!t) {
        fprintf(stderr, "gen_write_tiff: cannot create %s\n", path);
        return -1;
    }
    const int colour = img->channels - (img->has_alpha ? 1 : 0);
    const int pages = 1 + s->extra_pages;
    uint64_t exif = 0, gps = 0;
    if (s->exif)
        CHECK(write_private_ifds(t, s->interop, &exif, &gps) == 0, "EXIF/GPS");
    CHECK(TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)img->width), "ImageWidth");
    CHECK(TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)img->height), "ImageLength");
    CHECK(TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, img->bit_depth), "BitsPerSample");
    CHECK(TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, img->channels), "SamplesPerPixel");
    CHECK(TIFFSetField(t, TIFFTAG_PHOTOMETRIC,
                       colour == 3        ? PHOTOMETRIC_RGB
                       : s->min_is_white ? PHOTOMETRIC_MINISWHITE
                                         : PHOTOMETRIC_MINISBLACK),
          "Photometric");
    CHECK(TIFFSetField(t, TIFFTAG_PLANARCONFIG,
                       s->separate ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG),
          "PlanarConfig");
    if (img->has_alpha) {
        uint16_t extra = s->alpha_type;
        CHECK(TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &extra), "ExtraSamples");
    }
    CHECK(TIFFSetField(t, TIFFTAG_COMPRESSION, s->compression), "Compression");
    if (s->predictor)
        CHECK(TIFFSetField(t, TIFFTAG_PREDICTOR, s->predictor), "Predictor");
    if (s->tile) {
        CHECK(TIFFSetField(t, TIFFTAG_TILEWIDTH, s->tile) &&
                  TIFFSetField(t, TIFFTAG_TILELENGTH, s->tile),
              "tile size");
    } else {
        uint32_t rps = s->rows_per_strip ? s->rows_per_strip : TIFFDefaultStripSize(t, 0);
        CHECK(TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rps), "RowsPerStrip");
    }
    if (s->tags) {
        static const uint32_t shot[3] = {42, 3, 101};
        const char xmp[] = "<?xpacket begin=\"\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">"
                           "<rdf:RDF/></x:xmpmeta><?xpacket end=\"w\"?>";
        merge_private_tags(t);
        CHECK(TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, "Shot 042, cut 3: key pose A"),
              "ImageDescription");
        CHECK(TIFFSetField(t, TIFFTAG_SOFTWARE, "Harlequin Ink & Paint 7.4"), "Software");
        CHECK(TIFFSetField(t, TIFFTAG_ARTIST, "Background dept."), "Artist");
        CHECK(TIFFSetField(t, TIFFTAG_DATETIME, "2024:05:17 10:42:00"), "DateTime");
        CHECK(TIFFSetField(t, TIFFTAG_COPYRIGHT, "(c) 2024 Studio"), "Copyright");
        CHECK(TIFFSetField(t, TIFFTAG_DOCUMENTNAME, "ep07_sc042_c003"), "DocumentName");
        CHECK(TIFFSetField(t, TIFFTAG_XRESOLUTION, 300.0) &&
                  TIFFSetField(t, TIFFTAG_YRESOLUTION, 300.0) &&
                  TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH),
              "resolution");
        CHECK(TIFFSetField(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT), "Orientation");
        CHECK(TIFFSetField(t, TIFFTAG_PAGENUMBER, 0, pages), "PageNumber");
        CHECK(icc = malloc(s->icc_bytes ? s->icc_bytes : 1), "malloc");
        for (uint32_t i = 0; i < s->icc_bytes; i++)
            icc[i] = (uint8_t)(i * 31 + 7);
        CHECK(TIFFSetField(t, TIFFTAG_ICCPROFILE, s->icc_bytes, icc), "ICCProfile");
        CHECK(TIFFSetField(t, TIFFTAG_XMLPACKET, (uint32_t)strlen(xmp), xmp), "XMLPacket");
        CHECK(TIFFSetField(t, GEN_TIFF_PRIVATE_LONG, 3u, shot), "private LONG tag");
        CHECK(TIFFSetField(t, GEN_TIFF_PRIVATE_ASCII, "approved by layout"), "private text tag");
    }
    if (s->exif) {
        CHECK(TIFFSetField(t, TIFFTAG_EXIFIFD, exif), "EXIFIFD");
        CHECK(TIFFSetField(t, TIFFTAG_GPSIFD, gps), "GPSIFD");
    }
    CHECK(write_pixels(t, img, s) == 0, "pixels");
    CHECK(TIFFWriteDirectory(t), "TIFFWriteDirectory");
    for (int p = 1; p <= s->extra_pages; p++)
        CHECK(write_extra_page(t, p, pages) == 0, "extra page");
    TIFFClose(t);
    free(icc);
    return 0;
fail:
    TIFFClose(t);
    free(icc);
    return -1;
}

#undef CHECK

/* ---- DPX -------------------------------------------------------------- */

void gen_dpx_default(gen_dpx *s)
{
    memset(s, 0, sizeof(*s));
    s->depth = 10;
    s->packing = 1;
    s->big_endian = 1;
}

unsigned gen_dpx_code(unsigned v, int image_depth, int depth)
{
    return image_depth == 16 ? v >> (16 - depth) : v >> (8 - (depth < 8 ? depth : 8));
}

static void be_le16(uint8_t *p, int be, unsigned v)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}

static void be_le32(uint8_t *p, int be, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[be ? i : 3 - i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be_lef(uint8_t *p, int be, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    be_le32(p, be, u);
}

static void text(uint8_t *p, const char *s)
{
    memcpy(p, s, strlen(s));
}

/* Row bytes of n samples, padded to 32 bits. */
static size_t dpx_row(size_t n, int depth)
{
    size_t b = depth == 8 ? n : depth == 10 ? (n + 2) / 3 * 4 : n * 2;
    return (b + 3) & ~(size_t)3;
}

int gen_write_dpx(const char *path, const cm_image *img, const gen_dpx *s)
{
    const int ch = img->channels, be = s->big_endian;
    if (ch == 2 || (s->depth == 8) != (img->bit_depth == 8) ||
        ((s->depth == 10 || s->depth == 12) && s->packing == 0)) {
        fprintf(stderr, "gen_write_dpx: layout not supported by the generator\n");
        return -1;
    }
    const size_t w = (size_t)img->width, h = (size_t)img->height;
    const size_t row = dpx_row(w * (size_t)ch, s->depth), stride = row + s->eol_padding;
    size_t off = 2048 + s->user_bytes;
    if (s->align > 1)
        off = (off + s->align - 1) / s->align * s->align;
    const size_t row2 = dpx_row(w, 8), off2 = off + stride * h;
    const size_t total = s->second_element ? off2 + row2 * h : off + stride * h;
    uint8_t *f = calloc(1, total);
    if (!f)
        return -1;

    /* file information */
    memcpy(f, be ? "SDPX" : "XPDS", 4);
    be_le32(f + 4, be, (uint32_t)off);
    text(f + 8, "V2.0");
    be_le32(f + 16, be, (uint32_t)total);
    be_le32(f + 20, be, 1);
    be_le32(f + 24, be, 1664);
    be_le32(f + 28, be, 384);
    be_le32(f + 32, be, s->user_bytes);
    be_le32(f + 660, be, 0xffffffffu);
    /* image information */
    be_le16(f + 768, be, 0);
    be_le16(f + 770, be, s->second_element ? 2 : 1);
    be_le32(f + 772, be, (uint32_t)w);
    be_le32(f + 776, be, (uint32_t)h);
    uint8_t *e = f + 780;
    be_le32(e + 12, be, (1u << s->depth) - 1);
    e[20] = (uint8_t)(ch == 4 ? 51 : ch == 3 ? 50 : 6);
    e[21] = 2; /* linear */
    e[22] = 2;
    e[23] = (uint8_t)s->depth;
    be_le16(e + 24, be, (unsigned)s->packing);
    be_le32(e + 28, be, (uint32_t)off);
    be_le32(e + 32, be, s->eol_padding);
    text(e + 40, "key pose A");
    if (s->second_element) {
        uint8_t *e2 = e + 72;
        be_le32(e2 + 12, be, 255);
        e2[20] = 4; /* alpha */
        e2[23] = 8;
        be_le16(e2 + 24, be, 1);
        be_le32(e2 + 28, be, (uint32_t)off2);
        text(e2 + 40, "matte");
    }
    if (s->fill_header) {
        text(f + 36, "ep07_sc042_c003.0101.dpx");
        text(f + 136, "2024:05:17:10:42:00PDT");
        text(f + 160, "Lasergrain Scanner 2.1");
        text(f + 260, "Episode 7");
        text(f + 460, "(c) 2024 Studio");
        text(f + 1556, "FilmScan 4K");
        text(f + 1588, "SN-0042");
        be_le32(f + 1628, be, 1);
        be_le32(f + 1632, be, 1);
        text(f + 1664, "KO");    /* film manufacturer */
        text(f + 1666, "18");    /* film type */
        text(f + 1668, "07");    /* perfs offset */
        text(f + 1670, "123456"); /* prefix */
        text(f + 1676, "7890");  /* count */
        text(f + 1680, "Academy 4-perf");
        be_le32(f + 1712, be, 101);
        be_le32(f + 1716, be, 240);
        be_le32(f + 1720, be, 1);
        be_lef(f + 1724, be, 24.0f);
        be_lef(f + 1728, be, 180.0f);
        text(f + 1732, "F0101");
        text(f + 1764, "Sc 42 Tk 3");
        be_le32(f + 1920, be, 0x01020304u); /* 01:02:03:04 */
        be_le32(f + 1924, be, 0xdeadbeefu);
        be_lef(f + 1940, be, 24.0f);
        be_lef(f + 1948, be, 2.2f);
    }
    /* user data: a 32-byte identifier, then bytes a writer must not touch */
    if (s->user_bytes >= 32) {
        text(f + 2048, "CELMARK-TEST-USER-DATA");
        for (uint32_t i = 32; i < s->user_bytes; i++)
            f[2048 + i] = (uint8_t)(i * 13 + 5);
    }
    /* bytes between the user data and the image: not zero either */
    for (size_t i = 2048 + s->user_bytes; i < off; i++)
        f[i] = 0xa5;

    const size_t n = w * (size_t)ch;
    for (size_t y = 0; y < h; y++) {
        uint8_t *r = f + off + y * stride;
        const uint8_t *src = img->data + (ptrdiff_t)y * img->stride;
        for (size_t i = 0; i < n; i++) {
            unsigned v = img->bit_depth == 16 ? ((const uint16_t *)(const void *)src)[i] : src[i];
            unsigned c = gen_dpx_code(v, img->bit_depth, s->depth);
            switch (s->depth) {
            case 8:
                r[i] = (uint8_t)c;
                break;
            case 16:
                be_le16(r + 2 * i, be, c);
                break;
            case 12:
                be_le16(r + 2 * i, be, s->packing == 2 ? c : c << 4);
                break;
            case 10: {
                /* slot 0 at the top, except luma (slot 0 at the bottom) */
                int slot = (int)(i % 3);
                int pos = ch == 1 ? slot : 2 - slot;
                int shift = 10 * pos + (s->packing == 2 ? 0 : 2);
                uint8_t *p = r + 4 * (i / 3);
                uint32_t word = be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                         (uint32_t)p[2] << 8 | p[3]
                                   : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
                                         (uint32_t)p[1] << 8 | p[0];
                word |= (uint32_t)c << shift;
                be_le32(p, be, word);
                break;
            }
            }
        }
        /* end-of-line padding: a pattern, to prove it is carried through */
        for (uint32_t i = 0; i < s->eol_padding; i++)
            r[row + i] = (uint8_t)(0x5a ^ i);
    }
    if (s->second_element)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                f[off2 + y * row2 + x] = (uint8_t)(x ^ y);

    FILE *fp = fopen(path, "wb");
    int ok = fp && fwrite(f, 1, total, fp) == total;
    if (fp && fclose(fp) != 0)
        ok = 0;
    free(f);
    if (!ok)
        fprintf(stderr, "gen_write_dpx: cannot write %s\n", path);
    return ok ? 0 : -1;
}
