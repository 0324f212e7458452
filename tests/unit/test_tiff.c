/*
 * TIFF reading and writing (formats/tiff_*.c through the cm_image API).
 *
 * Test files are cel frames (tests/gen/cel.c: flat fills, anti-aliased ink
 * lines, gradients, texture) written with plain libtiff by
 * tests/gen/fmtgen.c in many layouts: 8/16 bit, grey/grey+alpha/RGB/RGBA,
 * LZW/Deflate/PackBits/none, strips and tiles, contiguous and separate
 * planes, both byte orders, BigTIFF, min-is-white, with text, resolution,
 * ICC, XMP, two private tags, EXIF (with an Interoperability IFD) and GPS
 * IFDs and further pages.
 *
 * Faithfulness is checked below libtiff: a small IFD walker compares every
 * directory entry (tag, type, count, value bytes) of source and output,
 * follows the EXIF/GPS/Interoperability pointers into their IFDs, and
 * compares the strip or tile bytes themselves where they must not change.
 * Only the offsets of the data (which move) are exempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cel.h"
#include "celmark/celmark.h"
#include "fmtgen.h"
#include "testmedia.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#define ID 0x7a11ed0c0ffee123ULL

/* ---- helpers ---------------------------------------------------------- */

static path_buf tmp_path(const char *name)
{
    return test_tmp_path("tiff_", name);
}

static void assert_same_pixels(const cm_image *a, const cm_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->has_alpha, b->has_alpha);
    assert_int_equal(a->bit_depth, b->bit_depth);
    size_t row = (size_t)a->width * (size_t)a->channels * (size_t)(a->bit_depth / 8);
    for (int y = 0; y < a->height; y++)
        if (memcmp(a->data + (ptrdiff_t)y * a->stride, b->data + (ptrdiff_t)y * b->stride, row))
            fail_msg("row %d differs", y);
}

static unsigned px(const cm_image *img, int x, int y, int c)
{
    const uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
    size_t i = (size_t)x * (size_t)img->channels + (size_t)c;
    return img->bit_depth == 16 ? ((const uint16_t *)(const void *)row)[i] : row[i];
}

static const char *info_tag(const cm_image_info *info, const char *key)
{
    for (int i = 0; i < info->ntags; i++)
        if (!strcmp(info->tags[i].key, key))
            return info->tags[i].value;
    return NULL;
}

/* ---- a raw IFD walker (test-only; the library uses libtiff) ------------ */

typedef struct rawfile {
    uint8_t *buf;
    size_t len;
    int be, big;
} rawfile;

typedef struct entry {
    uint16_t tag, type;
    uint64_t count;
    const uint8_t *val; /* count * size bytes */
    size_t size;
} entry;

static uint64_t rd(const rawfile *f, uint64_t off, int n)
{
    assert_true(off + (uint64_t)n <= f->len);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)f->buf[off + (uint64_t)(f->be ? n - 1 - i : i)] << (8 * i);
    return v;
}

static size_t type_size(uint16_t type)
{
    switch (type) {
    case TIFF_SHORT:
    case TIFF_SSHORT: return 2;
    case TIFF_LONG:
    case TIFF_SLONG:
    case TIFF_FLOAT:
    case TIFF_IFD: return 4;
    case TIFF_RATIONAL:
    case TIFF_SRATIONAL:
    case TIFF_DOUBLE:
    case TIFF_LONG8:
    case TIFF_SLONG8:
    case TIFF_IFD8: return 8;
    default: return 1;
    }
}

static void load_raw(const char *path, rawfile *f)
{
    f->buf = test_load_file(path, &f->len);
    assert_true(f->len >= 8);
    assert_true(f->buf[0] == f->buf[1] && (f->buf[0] == 'I' || f->buf[0] == 'M'));
    f->be = f->buf[0] == 'M';
    f->big = rd(f, 2, 2) == 43;
}

static uint64_t first_ifd(const rawfile *f)
{
    return f->big ? rd(f, 8, 8) : rd(f, 4, 4);
}

/* Entries of the IFD at off (at most max); *next the next IFD. */
static int read_ifd(const rawfile *f, uint64_t off, entry *e, int max, uint64_t *next)
{
    const int big = f->big;
    uint64_t n = rd(f, off, big ? 8 : 2);
    const uint64_t esz = big ? 20 : 12, vsz = big ? 8 : 4;
    assert_true(n <= (uint64_t)max);
    uint64_t p = off + (big ? 8 : 2);
    for (uint64_t i = 0; i < n; i++, p += esz) {
        e[i].tag = (uint16_t)rd(f, p, 2);
        e[i].type = (uint16_t)rd(f, p + 2, 2);
        e[i].count = rd(f, p + 4, big ? 8 : 4);
        e[i].size = (size_t)(e[i].count * type_size(e[i].type));
        uint64_t vo = e[i].size <= vsz ? p + 4 + vsz : rd(f, p + 4 + vsz, (int)vsz);
        assert_true(vo + e[i].size <= f->len);
        e[i].val = f->buf + vo;
    }
    *next = rd(f, p, (int)vsz);
    return (int)n;
}

/* Integer i of an entry (SHORT, LONG, LONG8, IFD...). */
static uint64_t entry_uint(const rawfile *f, const entry *e, uint64_t i)
{
    size_t s = type_size(e->type);
    return rd(f, (uint64_t)(e->val - f->buf) + i * s, (int)s);
}

static const entry *find_entry(const entry *e, int n, uint16_t tag)
{
    for (int i = 0; i < n; i++)
        if (e[i].tag == tag)
            return &e[i];
    return NULL;
}

static int is_data_offsets(uint16_t tag)
{
    return tag == TIFFTAG_STRIPOFFSETS || tag == TIFFTAG_STRIPBYTECOUNTS ||
           tag == TIFFTAG_TILEOFFSETS || tag == TIFFTAG_TILEBYTECOUNTS;
}

/* The compressed bytes of every strip or tile of two directories. */
static void compare_data(const rawfile *a, const entry *ea, int na, const rawfile *b,
                         const entry *eb, int nb)
{
    const int tiled = find_entry(ea, na, TIFFTAG_TILEOFFSETS) != NULL;
    const entry *oa = find_entry(ea, na, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS);
    const entry *ca = find_entry(ea, na, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS);
    const entry *ob = find_entry(eb, nb, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS);
    const entry *cb = find_entry(eb, nb, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS);
    assert_true(oa && ca && ob && cb);
    assert_int_equal(oa->count, ob->count);
    for (uint64_t i = 0; i < oa->count; i++) {
        uint64_t la = entry_uint(a, ca, i), lb = entry_uint(b, cb, i);
        if (la != lb)
            fail_msg("strip/tile %llu: %llu bytes, was %llu", (unsigned long long)i,
                     (unsigned long long)lb, (unsigned long long)la);
        uint64_t pa = entry_uint(a, oa, i), pb = entry_uint(b, ob, i);
        assert_true(pa + la <= a->len && pb + lb <= b->len);
        if (memcmp(a->buf + pa, b->buf + pb, (size_t)la))
            fail_msg("strip/tile %llu: data differ", (unsigned long long)i);
    }
}

static void compare_ifd(const rawfile *a, uint64_t offa, const rawfile *b, uint64_t offb,
                        int dir, int compare_pixels, const uint16_t *ignore);

static int ignored(const uint16_t *ignore, uint16_t tag)
{
    for (const uint16_t *t = ignore; t && *t; t++)
        if (*t == tag)
            return 1;
    return 0;
}

/* Entry by entry; EXIF/GPS IFDs, and an EXIF IFD's Interoperability IFD,
 * followed; data offsets only counted. */
static void compare_entries(const rawfile *a, const entry *ea, int na, const rawfile *b,
                            const entry *eb, int nb, int dir, const uint16_t *ignore)
{
    int ia = 0, ib = 0;
    for (;;) {
        while (ia < na && ignored(ignore, ea[ia].tag))
            ia++;
        while (ib < nb && ignored(ignore, eb[ib].tag))
            ib++;
        if (ia >= na && ib >= nb)
            break;
        if (ia >= na || ib >= nb || ea[ia].tag != eb[ib].tag)
            fail_msg("directory %d: tag %d in the source, %d in the output", dir,
                     ia < na ? ea[ia].tag : -1, ib < nb ? eb[ib].tag : -1);
        const entry *x = &ea[ia++], *y = &eb[ib++];
        if (is_data_offsets(x->tag)) {
            assert_int_equal(x->count, y->count);
            continue;
        }
        if (x->type != y->type || x->count != y->count)
            fail_msg("directory %d tag %d: type %d count %llu, was type %d count %llu", dir,
                     x->tag, y->type, (unsigned long long)y->count, x->type,
                     (unsigned long long)x->count);
        if (x->tag == TIFFTAG_EXIFIFD || x->tag == TIFFTAG_GPSIFD ||
            (dir >= 100 && x->tag == TIFFTAG_INTEROPERABILITYIFD)) {
            compare_ifd(a, entry_uint(a, x, 0), b, entry_uint(b, y, 0), 100 + dir, 0, NULL);
            continue;
        }
        if (memcmp(x->val, y->val, x->size))
            fail_msg("directory %d tag %d: value differs", dir, x->tag);
    }
}

static void compare_ifd(const rawfile *a, uint64_t offa, const rawfile *b, uint64_t offb,
                        int dir, int compare_pixels, const uint16_t *ignore)
{
    entry ea[128], eb[128];
    uint64_t na_next, nb_next;
    int na = read_ifd(a, offa, ea, 128, &na_next);
    int nb = read_ifd(b, offb, eb, 128, &nb_next);
    compare_entries(a, ea, na, b, eb, nb, dir, ignore);
    if (compare_pixels)
        compare_data(a, ea, na, b, eb, nb);
}

/* Every directory of a and b: same entries; strip/tile bytes identical in
 * the first `from` directories when same_first_page, and in all later ones. */
static void compare_tiffs(const char *pa, const char *pb, int same_first_page,
                          const uint16_t *ignore)
{
    rawfile a, b;
    load_raw(pa, &a);
    load_raw(pb, &b);
    assert_int_equal(a.be, b.be);
    assert_int_equal(a.big, b.big);
    uint64_t oa = first_ifd(&a), ob = first_ifd(&b);
    int dir = 0;
    while (oa && ob) {
        entry e[128];
        uint64_t na, nb;
        compare_ifd(&a, oa, &b, ob, dir, dir > 0 || same_first_page, ignore);
        read_ifd(&a, oa, e, 128, &na);
        read_ifd(&b, ob, e, 128, &nb);
        oa = na;
        ob = nb;
        dir++;
    }
    if (oa || ob)
        fail_msg("%s has more directories than %s", oa ? pa : pb, oa ? pb : pa);
    free(a.buf);
    free(b.buf);
}

/* ---- stamping --------------------------------------------------------- */

static void stamp(cm_image *img, const cm_key *k)
{
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(NULL, k, ID, NULL, &st), CM_OK);
    assert_int_equal(cm_stamper_image(st, img), CM_OK);
    cm_stamper_free(&st);
}

static void assert_verifies(const cm_key *k, const cm_image *img)
{
    cm_verifier *v = NULL;
    cm_verify_result r;
    assert_int_equal(cm_verifier_new(NULL, k, NULL, &v), CM_OK);
    assert_int_equal(cm_verifier_image(v, img, &r), CM_OK);
    cm_verifier_free(&v);
    if (!r.marked || r.issue_id != ID)
        fail_msg("mark not found (marked %d, id %016llx, score %.1f)", r.marked,
                 (unsigned long long)r.issue_id, r.score);
}

/* ---- unchanged round trips -------------------------------------------- */

typedef struct rt_case {
    const char *name;
    int channels, depth;
    cel_style style;
    void (*setup)(gen_tiff *s);
} rt_case;

/* source -> read -> write -> compare: every tag, every data byte. */
static void unchanged_case(const rt_case *c, int w, int h)
{
    gen_tiff s;
    gen_tiff_default(&s);
    if (c->setup)
        c->setup(&s);
    cm_image *orig = test_frame(w, h, 11, c->channels, c->depth, c->style);
    path_buf src = tmp_path("src.tif"), out = tmp_path("out.tif");
    assert_int_equal(gen_write_tiff(src.s, orig, &s), 0);

    cm_image *img = test_must_read(NULL, src.s);
    assert_same_pixels(orig, img);
    test_must_write(NULL, img, out.s);
    compare_tiffs(src.s, out.s, 1, NULL);
    cm_image *back = test_must_read(NULL, out.s);
    assert_same_pixels(orig, back);

    cm_image_free(&orig);
    cm_image_free(&img);
    cm_image_free(&back);
    unlink(src.s);
    unlink(out.s);
}

static void s_rgb_lzw(gen_tiff *s)
{
    s->predictor = PREDICTOR_HORIZONTAL;
    s->rows_per_strip = 16;
    s->tags = 1;
}
static void s_rgba_deflate_tiles_sep_be(gen_tiff *s)
{
    s->compression = COMPRESSION_ADOBE_DEFLATE;
    s->tile = 32;
    s->separate = 1;
    s->big_endian = 1;
    s->tags = 1;
}
static void s_rgba16_none_tiles_bigtiff(gen_tiff *s)
{
    s->compression = COMPRESSION_NONE;
    s->tile = 16;
    s->bigtiff = 1;
    s->alpha_type = EXTRASAMPLE_ASSOCALPHA;
}
static void s_grey_packbits(gen_tiff *s)
{
    s->compression = COMPRESSION_PACKBITS;
    s->rows_per_strip = 7;
}
static void s_grey16_lzw_be(gen_tiff *s)
{
    s->predictor = PREDICTOR_HORIZONTAL;
    s->big_endian = 1;
    s->exif = 1;
}
static void s_ga_deflate(gen_tiff *s)
{
    s->compression = COMPRESSION_ADOBE_DEFLATE;
    s->predictor = PREDICTOR_HORIZONTAL;
    s->tags = 1;
}
static void s_rgb16_sep_strips(gen_tiff *s)
{
    s->compression = COMPRESSION_ADOBE_DEFLATE;
    s->separate = 1;
    s->rows_per_strip = 5;
}
static void s_min_is_white(gen_tiff *s)
{
    s->min_is_white = 1;
    s->compression = COMPRESSION_NONE;
}
static void s_everything(gen_tiff *s)
{
    s->tags = 1;
    s->exif = 1;
    s->extra_pages = 2;
    s->predictor = PREDICTOR_HORIZONTAL;
    s->tile = 48;
}

static void s_interop(gen_tiff *s)
{
    s->exif = 1;
    s->interop = 1;
}
static void s_interop_be(gen_tiff *s)
{
    s_interop(s);
    s->big_endian = 1;
}
static void s_interop_bigtiff(gen_tiff *s)
{
    s_interop(s);
    s->bigtiff = 1;
}

static const rt_case rt_cases[] = {
    {"rgb8 lzw strips tags", 3, 8, CEL_FLAT, s_rgb_lzw},
    {"rgba8 deflate tiles separate big-endian", 4, 8, CEL_GRADIENT, s_rgba_deflate_tiles_sep_be},
    {"rgba16 none tiles BigTIFF assoc", 4, 16, CEL_TEXTURED, s_rgba16_none_tiles_bigtiff},
    {"grey8 packbits", 1, 8, CEL_FLAT, s_grey_packbits},
    {"grey16 lzw big-endian exif", 1, 16, CEL_GRADIENT, s_grey16_lzw_be},
    {"grey+alpha8 deflate", 2, 8, CEL_SMALL, s_ga_deflate},
    {"rgb16 deflate separate strips", 3, 16, CEL_TEXTURED, s_rgb16_sep_strips},
    {"grey8 min-is-white", 1, 8, CEL_WHITE, s_min_is_white},
    {"rgb8 everything", 3, 8, CEL_MIXED, s_everything},
    {"rgb8 exif with interop", 3, 8, CEL_FLAT, s_interop},
    {"rgb8 exif with interop big-endian", 3, 8, CEL_FLAT, s_interop_be},
    {"rgb8 exif with interop BigTIFF", 3, 8, CEL_FLAT, s_interop_bigtiff},
};

static void test_unchanged_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
        print_message("[ CASE     ] %s\n", rt_cases[i].name);
        unchanged_case(&rt_cases[i], 101, 67); /* odd sizes: partial strips and tiles */
    }
}

/* Optional codecs of this libtiff build, if it has them. */
static void test_unchanged_other_codecs(void **state)
{
    (void)state;
    static const uint16_t codecs[] = {COMPRESSION_ZSTD, COMPRESSION_LZMA, COMPRESSION_DEFLATE};
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
        if (!TIFFIsCODECConfigured(codecs[i]))
            continue;
        gen_tiff s;
        gen_tiff_default(&s);
        s.compression = codecs[i];
        cm_image *orig = test_frame(90, 50, 3, 3, 16, CEL_FLAT);
        path_buf src = tmp_path("codec.tif"), out = tmp_path("codec-out.tif");
        assert_int_equal(gen_write_tiff(src.s, orig, &s), 0);
        cm_image *img = test_must_read(NULL, src.s);
        assert_same_pixels(orig, img);
        test_must_write(NULL, img, out.s);
        compare_tiffs(src.s, out.s, 1, NULL);
        cm_image_free(&orig);
        cm_image_free(&img);
        unlink(src.s);
        unlink(out.s);
    }
}

/* JPEG is re-encoded (it cannot be copied around changed strips); its
 * tables change, every other tag stays. */
static void test_jpeg_rgb(void **state)
{
    (void)state;
    if (!TIFFIsCODECConfigured(COMPRESSION_JPEG))
        return;
    gen_tiff s;
    gen_tiff_default(&s);
    s.compression = COMPRESSION_JPEG;
    s.rows_per_strip = 16;
    s.tags = 1;
    cm_image *orig = test_frame(96, 64, 5, 3, 8, CEL_FLAT);
    path_buf src = tmp_path("jpeg.tif"), out = tmp_path("jpeg-out.tif");
    assert_int_equal(gen_write_tiff(src.s, orig, &s), 0);
    cm_image *img = test_must_read(NULL, src.s);
    test_must_write(NULL, img, out.s);
    static const uint16_t ignore[] = {TIFFTAG_JPEGTABLES, 0};
    compare_tiffs(src.s, out.s, 0, ignore);
    cm_image *back = test_must_read(NULL, out.s);
    long diff = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < 3; c++)
                diff += labs((long)px(img, x, y, c) - (long)px(back, x, y, c));
    /* quality 95: less than a code value on average */
    assert_true(diff < (long)img->width * img->height * 3);
    cm_image_free(&orig);
    cm_image_free(&img);
    cm_image_free(&back);
    unlink(src.s);
    unlink(out.s);
}

/* ---- stamping round trips --------------------------------------------- */

/* Alpha mostly opaque but never constant, a fully transparent corner. */
static void vary_alpha(cm_image *img)
{
    const int a = img->channels - 1;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            unsigned dip = (unsigned)(x * 7 + y * 13) % 50;
            unsigned v = img->bit_depth == 16 ? 65535u - dip * 97u : 255u - dip;
            if (x < 40 && y < 40)
                v = 0;
            uint8_t *row = img->data + (ptrdiff_t)y * img->stride;
            size_t i = (size_t)x * (size_t)img->channels + (size_t)a;
            if (img->bit_depth == 16)
                ((uint16_t *)(void *)row)[i] = (uint16_t)v;
            else
                row[i] = (uint8_t)v;
        }
}

static void stamp_case(int channels, int depth, void (*setup)(gen_tiff *s))
{
    gen_tiff s;
    gen_tiff_default(&s);
    setup(&s);
    cm_key *k = test_key(37);
    cm_image *orig = test_frame(768, 512, 21, channels, depth, CEL_FLAT);
    if (orig->has_alpha)
        vary_alpha(orig);
    path_buf src = tmp_path("stamp-src.tif"), out = tmp_path("stamp-out.tif");
    assert_int_equal(gen_write_tiff(src.s, orig, &s), 0);

    cm_image *img = test_must_read(NULL, src.s);
    stamp(img, k);
    test_must_write(NULL, img, out.s);
    /* every tag of every page, and the data of the unmarked pages */
    compare_tiffs(src.s, out.s, 0, NULL);

    cm_image *back = test_must_read(NULL, out.s);
    assert_same_pixels(img, back);
    long changed = 0;
    const int colour = channels - (orig->has_alpha ? 1 : 0);
    for (int y = 0; y < orig->height; y++)
        for (int x = 0; x < orig->width; x++) {
            for (int c = 0; c < colour; c++)
                changed += px(orig, x, y, c) != px(back, x, y, c);
            if (orig->has_alpha)
                assert_int_equal(px(orig, x, y, colour), px(back, x, y, colour));
        }
    assert_true(changed > (long)orig->width * orig->height / 10);
    assert_verifies(k, back);

    cm_image_info info;
    assert_int_equal(cm_image_get_info(back, &info), CM_OK);
    assert_string_equal(info.format, "tiff");
    cm_image_free(&orig);
    cm_image_free(&img);
    cm_image_free(&back);
    cm_key_free(&k);
    unlink(src.s);
    unlink(out.s);
}

static void test_stamp_rgb8_lzw_everything(void **state)
{
    (void)state;
    stamp_case(3, 8, s_everything);
}

static void test_stamp_rgba16_tiles_separate(void **state)
{
    (void)state;
    stamp_case(4, 16, s_rgba_deflate_tiles_sep_be);
}

static void test_stamp_grey_min_is_white(void **state)
{
    (void)state;
    stamp_case(1, 8, s_min_is_white);
}

/* ---- info, plain output, other layouts --------------------------------- */

static void test_info(void **state)
{
    (void)state;
    gen_tiff s;
    gen_tiff_default(&s);
    s_everything(&s);
    s.big_endian = 1;
    cm_image *orig = test_frame(64, 40, 2, 4, 16, CEL_FLAT);
    path_buf p = tmp_path("info.tif");
    assert_int_equal(gen_write_tiff(p.s, orig, &s), 0);
    cm_image *img = test_must_read(NULL, p.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.format, "tiff");
    assert_string_equal(info.color_type, "rgba");
    assert_int_equal(info.bit_depth, 16);
    assert_int_equal(info.converted, 0);
    assert_string_equal(info_tag(&info, "compression"), "lzw");
    assert_string_equal(info_tag(&info, "predictor"), "horizontal");
    assert_string_equal(info_tag(&info, "photometric"), "rgb");
    assert_string_equal(info_tag(&info, "planar_config"), "contiguous");
    assert_string_equal(info_tag(&info, "layout"), "tiles of 48 x 48");
    assert_string_equal(info_tag(&info, "byte_order"), "big-endian");
    assert_string_equal(info_tag(&info, "alpha_type"), "unassociated");
    assert_string_equal(info_tag(&info, "resolution"), "300 x 300 dpi");
    assert_string_equal(info_tag(&info, "software"), "Harlequin Ink & Paint 7.4");
    assert_string_equal(info_tag(&info, "description"), "Shot 042, cut 3: key pose A");
    assert_string_equal(info_tag(&info, "icc_profile"), "3000 bytes");
    assert_non_null(info_tag(&info, "xmp"));
    assert_string_equal(info_tag(&info, "exif"), "yes");
    assert_string_equal(info_tag(&info, "gps"), "yes");
    assert_string_equal(info_tag(&info, "private_tags"), "65000,65001");
    assert_non_null(strstr(info_tag(&info, "pages"), "3 (only the first is marked"));
    cm_image_free(&orig);
    cm_image_free(&img);
    unlink(p.s);
}

/* An EXIF IFD's Interoperability IFD is listed as kept, not dropped. */
static void test_info_interop(void **state)
{
    (void)state;
    gen_tiff s;
    gen_tiff_default(&s);
    s_interop_be(&s);
    cm_image *orig = test_frame(32, 24, 2, 3, 8, CEL_FLAT);
    path_buf p = tmp_path("interop.tif");
    assert_int_equal(gen_write_tiff(p.s, orig, &s), 0);
    cm_image *img = test_must_read(NULL, p.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info_tag(&info, "exif"), "yes, with an Interoperability IFD (kept)");
    assert_null(info_tag(&info, "dropped_tags"));
    cm_image_free(&orig);
    cm_image_free(&img);
    unlink(p.s);
}

/* Images without TIFF meta: a plain Deflate TIFF, read back exactly. */
static void test_plain_write(void **state)
{
    (void)state;
    static const int layouts[][2] = {{1, 8}, {2, 16}, {3, 8}, {4, 16}};
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        cm_image *img = test_frame(77, 45, 9, layouts[i][0], layouts[i][1], CEL_TEXTURED);
        path_buf p = tmp_path("plain.TIFF");
        test_must_write(NULL, img, p.s);
        cm_image *back = test_must_read(NULL, p.s);
        assert_same_pixels(img, back);
        cm_image_info info;
        assert_int_equal(cm_image_get_info(back, &info), CM_OK);
        assert_string_equal(info_tag(&info, "compression"), "deflate");
        assert_null(info_tag(&info, "software")); /* no tool stamp */
        /* a PNG-read image written as .tif, and back to PNG */
        path_buf png = tmp_path("plain.png");
        test_must_write(NULL, back, png.s);
        cm_image *from_png = test_must_read(NULL, png.s);
        test_must_write(NULL, from_png, p.s);
        cm_image *again = test_must_read(NULL, p.s);
        assert_same_pixels(img, again);
        cm_image_free(&img);
        cm_image_free(&back);
        cm_image_free(&from_png);
        cm_image_free(&again);
        unlink(p.s);
        unlink(png.s);
    }
}

/* Layouts celmark cannot write back are read through libav (converted);
 * if libav cannot either, the refusal names the layout. */
static void test_other_layouts(void **state)
{
    (void)state;
    path_buf p = tmp_path("palette.tif");
    TIFF *t = TIFFOpen(p.s, "w");
    assert_non_null(t);
    static uint16_t r[16], g[16], b[16];
    for (int i = 0; i < 16; i++) {
        r[i] = (uint16_t)(i * 4369);
        g[i] = (uint16_t)(65535 - i * 4369);
        b[i] = 30000;
    }
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 32);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 8);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 4);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_PALETTE);
    TIFFSetField(t, TIFFTAG_COLORMAP, r, g, b);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8);
    uint8_t row[16];
    for (int y = 0; y < 8; y++) {
        for (int x = 0; x < 16; x++)
            row[x] = (uint8_t)((x % 16) << 4 | ((x + 1) % 16));
        assert_true(TIFFWriteScanline(t, row, (uint32_t)y, 0) >= 0);
    }
    TIFFClose(t);
    cm_image *img = test_must_read(NULL, p.s);
    cm_image_info info;
    assert_int_equal(cm_image_get_info(img, &info), CM_OK);
    assert_string_equal(info.format, "tiff");
    assert_int_equal(info.converted, 1);
    assert_int_equal(img->channels, 3);
    assert_int_equal(px(img, 0, 0, 0), 0);
    assert_int_equal(px(img, 1, 0, 0), 17);
    cm_image_free(&img);

    /* 32-bit float grey */
    t = TIFFOpen(p.s, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 8);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 4);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 32);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    float frow[8] = {0, 0.25f, 0.5f, 1, 0, 0.25f, 0.5f, 1};
    for (int y = 0; y < 4; y++)
        assert_true(TIFFWriteScanline(t, frow, (uint32_t)y, 0) >= 0);
    TIFFClose(t);
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    int ret = cm_image_read(ctx, p.s, NULL, &img);
    if (ret == CM_OK) {
        assert_int_equal(cm_image_get_info(img, &info), CM_OK);
        assert_int_equal(info.converted, 1);
    } else {
        assert_int_equal(ret, CM_E_UNSUPPORTED);
        assert_non_null(strstr(cm_ctx_last_error(ctx), "floating-point"));
        assert_null(img);
    }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    unlink(p.s);
}

/* ---- bad input -------------------------------------------------------- */

static void expect_fail(const char *path, const cm_limits *limits, int status, const char *what)
{
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    int ret = cm_image_read(ctx, path, limits, &img);
    if (ret != status)
        fail_msg("%s: status %d, want %d (%s)", path, ret, status, cm_ctx_last_error(ctx));
    assert_null(img);
    const char *msg = cm_ctx_last_error(ctx);
    assert_non_null(strstr(msg, path));
    assert_null(strchr(msg, '\n'));
    if (what && !strstr(msg, what))
        fail_msg("message '%s' lacks '%s'", msg, what);
    cm_ctx_free(&ctx);
}

/* Any status but a crash or a leak; a failure names the file. */
static int read_any(const char *path)
{
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret == CM_OK) {
        cm_image_info info;
        assert_int_equal(cm_image_get_info(img, &info), CM_OK);
        /* whatever was read can be written */
        path_buf o = tmp_path("any-out.tif");
        unlink(o.s);
        int w = cm_image_write(ctx, img, o.s, 0);
        assert_true(w == CM_OK || w < 0);
        unlink(o.s);
    } else {
        assert_true(ret < 0);
        assert_null(img);
        assert_non_null(strstr(cm_ctx_last_error(ctx), path));
    }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    return ret;
}

/* A file cut at `cut` bytes: refused as corrupt, or (cut inside tag values
 * libtiff skips) read, but a copy that would lose those tags is refused. */
static void truncated_case(const char *path, const uint8_t *good, size_t cut)
{
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    cm_image_info info;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    test_save_file(path, good, cut);
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret != CM_OK) {
        if (ret != CM_E_CORRUPT)
            fail_msg("cut at %zu: status %d (%s)", cut, ret, cm_ctx_last_error(ctx));
        assert_null(img);
        assert_non_null(strstr(cm_ctx_last_error(ctx), path));
    } else {
        assert_int_equal(cm_image_get_info(img, &info), CM_OK);
        if (!info_tag(&info, "unreadable_tags"))
            fail_msg("cut at %zu: read without complaint", cut);
        path_buf o = tmp_path("cut-out.tif");
        unlink(o.s);
        assert_int_equal(cm_image_write(ctx, img, o.s, 0), CM_E_CORRUPT);
        assert_non_null(strstr(cm_ctx_last_error(ctx), "unreadable"));
        assert_false(test_file_exists(o.s));
    }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
}

static uint8_t *good_file(size_t *len, int tags, uint32_t rows_per_strip)
{
    gen_tiff s;
    gen_tiff_default(&s);
    s.tags = tags;
    s.rows_per_strip = rows_per_strip;
    cm_image *img = test_frame(48, 32, 4, 3, 8, CEL_FLAT);
    path_buf p = tmp_path("good.tif");
    assert_int_equal(gen_write_tiff(p.s, img, &s), 0);
    uint8_t *buf = test_load_file(p.s, len);
    cm_image_free(&img);
    unlink(p.s);
    return buf;
}

/* Offset of the entry for tag in the first IFD of a classic LE file. */
static size_t entry_offset(const uint8_t *buf, size_t len, uint16_t tag)
{
    rawfile f = {(uint8_t *)buf, len, 0, 0};
    uint64_t off = first_ifd(&f);
    uint64_t n = rd(&f, off, 2);
    for (uint64_t i = 0; i < n; i++) {
        size_t p = (size_t)(off + 2 + 12 * i);
        if (rd(&f, p, 2) == tag)
            return p;
    }
    fail_msg("tag %d not found", tag);
    return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_bad_input(void **state)
{
    (void)state;
    size_t len;
    uint8_t *good = good_file(&len, 1, 8);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    path_buf p = tmp_path("bad.tif");

    test_save_file(p.s, good, 0);
    expect_fail(p.s, NULL, CM_E_CORRUPT, "empty");
    test_save_file(p.s, "II*\0", 4);
    expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);
    test_save_file(p.s, "MM\0*\0\0\0\x08", 8);
    expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);
    /* first IFD past the end */
    memcpy(buf, good, len);
    put_le32(buf + 4, (uint32_t)len + 1000);
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);
    /* truncated inside the pixel data, the IFD or the tag values after it
     * (libtiff writes the IFD after the data) */
    for (size_t cut = 16; cut < len; cut += len / 13)
        truncated_case(p.s, good, cut);
    /* corrupted IFD: entry count far beyond the file */
    memcpy(buf, good, len);
    size_t ifd = (size_t)first_ifd(&(rawfile){buf, len, 0, 0});
    buf[ifd] = 0xff;
    buf[ifd + 1] = 0x7f;
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);
    /* absurd dimensions: refused before allocating. With several strips
     * libtiff already finds the strip count wrong; with one strip the
     * pixel limit refuses. */
    size_t wofs, hofs;
    for (int one_strip = 0; one_strip < 2; one_strip++) {
        size_t n1;
        uint8_t *f1 = good_file(&n1, 0, one_strip ? 32 : 8);
        wofs = entry_offset(f1, n1, TIFFTAG_IMAGEWIDTH);
        hofs = entry_offset(f1, n1, TIFFTAG_IMAGELENGTH);
        assert_int_equal(f1[wofs + 2], TIFF_SHORT);
        f1[wofs + 2] = TIFF_LONG;
        f1[hofs + 2] = TIFF_LONG;
        if (one_strip) {
            size_t rofs = entry_offset(f1, n1, TIFFTAG_ROWSPERSTRIP);
            f1[rofs + 2] = TIFF_LONG;
            put_le32(f1 + rofs + 8, 0xffffffffu); /* one strip, whatever the height */
        }
        static const uint32_t dims[][2] = {{2000000000u, 2000000000u}, {100000u, 100000u},
                                           {0x7fffffffu, 1u}, {1u, 0xffffffffu}};
        for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
            put_le32(f1 + wofs + 8, dims[i][0]);
            put_le32(f1 + hofs + 8, dims[i][1]);
            test_save_file(p.s, f1, n1);
            /* 2e9 x 2e9: libtiff's strip size overflows first (corrupt) */
            if (one_strip && i > 0)
                expect_fail(p.s, NULL, CM_E_LIMIT, "above the limit");
            else
                assert_true(read_any(p.s) < 0);
        }
        free(f1);
    }
    memcpy(buf, good, len);
    wofs = entry_offset(buf, len, TIFFTAG_IMAGEWIDTH);
    hofs = entry_offset(buf, len, TIFFTAG_IMAGELENGTH);
    buf[wofs + 2] = TIFF_LONG;
    buf[hofs + 2] = TIFF_LONG;
    /* zero width */
    put_le32(buf + wofs + 8, 0);
    put_le32(buf + hofs + 8, 32);
    test_save_file(p.s, buf, len);
    expect_fail(p.s, NULL, CM_E_CORRUPT, NULL);

    /* limits */
    cm_limits lim;
    cm_limits_default(&lim);
    test_save_file(p.s, good, len);
    lim.max_pixels = 48 * 32 - 1;
    expect_fail(p.s, &lim, CM_E_LIMIT, "pixels");
    cm_limits_default(&lim);
    lim.max_meta_bytes = 1000; /* the ICC profile alone is 3000 */
    expect_fail(p.s, &lim, CM_E_LIMIT, "metadata");
    cm_limits_default(&lim);
    lim.max_file_bytes = len - 1;
    expect_fail(p.s, &lim, CM_E_LIMIT, "limit");

    /* flipped bytes anywhere: any status, never a crash or a leak */
    uint32_t rng = 99;
    int ok = 0, bad = 0;
    for (int round = 0; round < 150; round++) {
        memcpy(buf, good, len);
        int flips = 1 + round % 4;
        for (int i = 0; i < flips; i++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 8) % len;
            /* aim half the flips at the IFD and its values */
            if (round % 2 && len > ifd)
                at = ifd + (rng >> 8) % (len - ifd);
            buf[at] ^= (uint8_t)(1u << ((rng >> 4) % 8));
        }
        test_save_file(p.s, buf, len);
        if (read_any(p.s) == CM_OK)
            ok++;
        else
            bad++;
    }
    print_message("[  INFO    ] flipped bytes: %d read, %d refused\n", ok, bad);
    free(buf);
    free(good);
    unlink(p.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_round_trips),
        cmocka_unit_test(test_unchanged_other_codecs),
        cmocka_unit_test(test_jpeg_rgb),
        cmocka_unit_test(test_stamp_rgb8_lzw_everything),
        cmocka_unit_test(test_stamp_rgba16_tiles_separate),
        cmocka_unit_test(test_stamp_grey_min_is_white),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_info_interop),
        cmocka_unit_test(test_plain_write),
        cmocka_unit_test(test_other_layouts),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
