/*
 * DPX (SMPTE 268M) reader and writer, without a library.
 *
 * A DPX file is a fixed binary header (file, image, orientation, film and
 * television sections: timecode, frame rate, creator, film edge codes...),
 * optional user data, then the image elements. Film and VFX pipelines rely
 * on every header byte, so the writer never rebuilds the header: it copies
 * the source file byte for byte and patches only the pixel payload of image
 * element 0 in place. Other elements, user data, padding and any trailing
 * bytes are carried through untouched.
 *
 * Both byte orders ("SDPX" big-endian, "XPDS" little-endian). Element 0
 * must be uncompressed (encoding 0), unsigned, with descriptor 50 (RGB),
 * 51 (RGBA) or 6 (luma), and one of:
 *
 *   bits  packing            storage                      decoded as
 *   8     0 or 1             one byte per sample          8-bit
 *   10    1 (method A)       3 samples per 32-bit word,   16-bit,
 *                            2 padding bits at the bottom (v << 6) | (v >> 4)
 *   10    2 (method B)       ... padding bits at the top
 *   12    1 / 2              one sample per 16-bit word,  16-bit,
 *                            padding bits low / high      (v << 4) | (v >> 8)
 *   16    0 or 1             one 16-bit word per sample   16-bit
 *
 * Everything else (10/12-bit packing 0, 1/32/64-bit, ABGR, YCbCr,
 * run-length encoding, signed data) is refused with CM_E_UNSUPPORTED. As in
 * FFmpeg's decoder, 10-bit samples run on across pixels inside a row, the
 * first sample of a word in its top bits, except for luma whose first
 * sample sits in the low bits. Rows start on 32-bit boundaries plus the
 * element's end-of-line padding; 8/12/16-bit files whose rows are not
 * padded (old FFmpeg output) are detected by their size, as FFmpeg does.
 *
 * Writing back rounds each 16-bit value to the file's depth,
 * v = (v16 * maxv + 32767) / 65535, which returns exactly the original code
 * value of every unchanged sample (the 16-bit expansion is within 1/64 of
 * v * 65535 / maxv); padding bits keep their source value. Alpha is never
 * changed by the mark, so it comes back bit for bit.
 *
 * An image without DPX meta is written as a plain big-endian DPX: 8- or
 * 16-bit, luma, RGB or RGBA, 2048-byte header with only the layout filled in
 * (transfer and colorimetric "user defined"). Grey+alpha has no DPX
 * descriptor and is refused.
 *
 * Every header field is checked against the file size before anything is
 * allocated: a hostile header cannot make the reader read past the end or
 * allocate more than max_pixels allows.
 */
#include "format.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Header layout (byte offsets from the start of the file). */
#define H_MAGIC 0
#define H_IMAGE_OFFSET 4
#define H_VERSION 8          /* char[8] */
#define H_FILE_SIZE 16
#define H_DITTO_KEY 20
#define H_GENERIC_SIZE 24
#define H_INDUSTRY_SIZE 28
#define H_USER_SIZE 32
#define H_FILE_NAME 36       /* char[100] */
#define H_CREATE_TIME 136    /* char[24] */
#define H_CREATOR 160        /* char[100] */
#define H_PROJECT 260        /* char[200] */
#define H_COPYRIGHT 460      /* char[200] */
#define H_ENCRYPT_KEY 660
#define H_ORIENTATION 768    /* u16 */
#define H_ELEMENTS 770       /* u16 */
#define H_WIDTH 772
#define H_HEIGHT 776
#define H_ELEMENT0 780       /* 8 elements of ELEMENT_BYTES */
#define H_SOURCE 1408        /* image source header */
#define H_INPUT_DEVICE 1556  /* char[32] */
#define H_FILM 1664          /* motion picture film header */
#define H_FILM_FRAME_RATE 1724
#define H_TV 1920            /* television header */
#define H_TV_TIMECODE 1920
#define H_TV_FRAME_RATE 1940

/* Per image element. */
#define ELEMENT_BYTES 72
#define E_SIGN 0
#define E_HIGH_CODE 12
#define E_DESCRIPTOR 20      /* u8 */
#define E_TRANSFER 21        /* u8 */
#define E_COLORIMETRIC 22    /* u8 */
#define E_BIT_DEPTH 23       /* u8 */
#define E_PACKING 24         /* u16 */
#define E_ENCODING 26        /* u16 */
#define E_DATA_OFFSET 28
#define E_EOL_PADDING 32
#define E_EOI_PADDING 36

/* The generic header (file + image + orientation sections) every DPX has;
 * the industry headers (film, television) follow up to HEADER_BYTES. */
#define GENERIC_BYTES 1664
#define HEADER_BYTES 2048

/* "Undefined" for 32-bit header fields. */
#define UNDEF32 0xffffffffu

#define MAX_META_TAGS 20

enum { DESC_LUMA = 6, DESC_RGB = 50, DESC_RGBA = 51 };

/* ---- byte order ------------------------------------------------------- */

static uint32_t rd16(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void wr16(uint8_t *p, int be, uint32_t v)
{
    p[be ? 0 : 1] = (uint8_t)(v >> 8);
    p[be ? 1 : 0] = (uint8_t)v;
}

static void wr32(uint8_t *p, int be, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[be ? i : 3 - i] = (uint8_t)(v >> (24 - 8 * i));
}

static float rdf32(const uint8_t *p, int be)
{
    uint32_t u = rd32(p, be);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ---- metadata ---------------------------------------------------------- */

typedef struct dpx_meta {
    uint8_t *file; /* the whole source file: the writer patches a copy */
    size_t size;
    int big_endian;
    uint32_t width, height;
    int channels, descriptor, depth, packing;
    uint64_t offset;   /* of element 0's pixels */
    size_t row_bytes;  /* samples of one row, padded to 32 bits (unless the
                          file is unpadded) */
    size_t row_stride; /* row_bytes + end-of-line padding */
    int ntags;
    cm_info_tag tags[MAX_META_TAGS];
} dpx_meta;

static void free_dpx_meta(void *priv)
{
    dpx_meta *m = priv;
    if (!m)
        return;
    free(m->file);
    free(m);
}

static void meta_tag(dpx_meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_tag(dpx_meta *m, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm__tags_vadd(m->tags, &m->ntags, MAX_META_TAGS, key, fmt, ap);
    va_end(ap);
}

/* A fixed-size header string as a tag, if it holds any text. */
static void text_tag(dpx_meta *m, const char *key, const uint8_t *p, size_t n)
{
    char s[sizeof(m->tags[0].value)];
    size_t k = 0;
    for (size_t i = 0; i < n && p[i] && k + 1 < sizeof(s); i++)
        s[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    while (k && s[k - 1] == ' ')
        k--;
    s[k] = '\0';
    if (k && (unsigned char)p[0] != 0xff)
        meta_tag(m, key, "%s", s);
}

static const char *transfer_name(unsigned t)
{
    static const char *const names[] = {
        "user defined", "printing density", "linear", "logarithmic",
        "unspecified video", "SMPTE 274M", "ITU-R 709-4", "ITU-R 601-5 B/G",
        "ITU-R 601-5 M", "NTSC (SMPTE 170M)", "PAL (ITU-R 624-4)", "Z linear",
        "Z homogeneous"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : NULL;
}

/* ---- samples ---------------------------------------------------------- */

/* Where 10-bit sample k % 3 of a word sits: [luma?][method B?][slot]. */
static const int shift10[2][2][3] = {
    {{22, 12, 2}, {20, 10, 0}}, /* several components: first in the top bits */
    {{2, 12, 22}, {0, 10, 20}}, /* luma: first in the low bits (as FFmpeg) */
};

static unsigned expand(unsigned v, int depth)
{
    return depth == 10 ? (v << 6) | (v >> 4) : depth == 12 ? (v << 4) | (v >> 8) : v;
}

static unsigned reduce(unsigned v16, int depth)
{
    unsigned maxv = (1u << depth) - 1;
    return (v16 * maxv + 32767u) / 65535u;
}

static void read_row(const dpx_meta *m, const uint8_t *src, uint8_t *dst, size_t n)
{
    const int be = m->big_endian, mb = m->packing == 2;
    uint16_t *d16 = (uint16_t *)(void *)dst;
    switch (m->depth) {
    case 8:
        memcpy(dst, src, n);
        break;
    case 16:
        for (size_t i = 0; i < n; i++)
            d16[i] = (uint16_t)rd16(src + 2 * i, be);
        break;
    case 12:
        for (size_t i = 0; i < n; i++) {
            unsigned w = rd16(src + 2 * i, be);
            d16[i] = (uint16_t)expand(mb ? w & 0xfff : w >> 4, 12);
        }
        break;
    case 10: {
        const int *sh = shift10[m->channels == 1][mb];
        for (size_t i = 0; i < n; i++) {
            uint32_t w = rd32(src + 4 * (i / 3), be);
            d16[i] = (uint16_t)expand((w >> sh[i % 3]) & 0x3ff, 10);
        }
        break;
    }
    }
}

/* Patch one row of the file from the image; bits outside the samples keep
 * their source value. */
static void write_row(const dpx_meta *m, const uint8_t *src, uint8_t *dst, size_t n)
{
    const int be = m->big_endian, mb = m->packing == 2;
    const uint16_t *s16 = (const uint16_t *)(const void *)src;
    switch (m->depth) {
    case 8:
        memcpy(dst, src, n);
        break;
    case 16:
        for (size_t i = 0; i < n; i++)
            wr16(dst + 2 * i, be, s16[i]);
        break;
    case 12:
        for (size_t i = 0; i < n; i++) {
            unsigned v = reduce(s16[i], 12), w = rd16(dst + 2 * i, be);
            wr16(dst + 2 * i, be, mb ? (w & 0xf000u) | v : (w & 0x000fu) | v << 4);
        }
        break;
    case 10: {
        const int *sh = shift10[m->channels == 1][mb];
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = dst + 4 * (i / 3);
            uint32_t w = rd32(p, be), mask = 0x3ffu << sh[i % 3];
            w = (w & ~mask) | (uint32_t)reduce(s16[i], 10) << sh[i % 3];
            wr32(p, be, w);
        }
        break;
    }
    }
}

/* Bytes of one row's samples before end-of-line padding; 0 on overflow. */
static uint64_t row_sample_bytes(uint64_t samples, int depth, int padded)
{
    uint64_t n = depth == 8 ? samples : depth == 10 ? (samples + 2) / 3 * 4 : samples * 2;
    return padded ? (n + 3) & ~(uint64_t)3 : n;
}

/* Bytes from the start of the first of `rows` rows to the end of the last,
 * or UINT64_MAX if that does not fit in 64 bits. row, stride < 2^36. */
static uint64_t span(uint64_t rows, uint64_t stride, uint64_t row)
{
    if (!rows)
        return 0;
    if (stride && rows - 1 > (UINT64_MAX - row) / stride)
        return UINT64_MAX;
    return (rows - 1) * stride + row;
}

/* ---- probe ------------------------------------------------------------ */

static int probe_dpx(const uint8_t *head, size_t len)
{
    return head && len >= 4 && (!memcmp(head, "SDPX", 4) || !memcmp(head, "XPDS", 4));
}

/* ---- reading ---------------------------------------------------------- */

/* Check every header field element 0's pixels depend on, against the file
 * size; fill m's layout. */
static int parse_header(cm_ctx *ctx, const char *path, const cm_limits *limits, dpx_meta *m)
{
    const uint8_t *f = m->file;
    const size_t size = m->size;

    if (size < 4 || !probe_dpx(f, 4))
        return cm__error(ctx, CM_E_FORMAT, "%s: not a DPX file", path);
    if (size < GENERIC_BYTES)
        return cm__error(ctx, CM_E_CORRUPT,
                         "%s: truncated DPX: the header needs %d bytes, the file has %zu",
                         path, GENERIC_BYTES, size);
    const int be = f[0] == 'S';
    const uint8_t *e = f + H_ELEMENT0;
    m->big_endian = be;

    unsigned elements = rd16(f + H_ELEMENTS, be);
    if (elements < 1 || elements > 8)
        return cm__error(ctx, CM_E_CORRUPT, "%s: corrupt DPX: %u image elements", path, elements);
    uint32_t w = rd32(f + H_WIDTH, be), h = rd32(f + H_HEIGHT, be);
    if (!w || !h || w == UNDEF32 || h == UNDEF32)
        return cm__error(ctx, CM_E_CORRUPT, "%s: corrupt DPX: image size %lu x %lu", path,
                         (unsigned long)w, (unsigned long)h);
    uint64_t pixels = (uint64_t)w * h;
    if (w > INT_MAX || h > INT_MAX || pixels > limits->max_pixels)
        return cm__error(ctx, CM_E_LIMIT,
                         "%s: image is %lu x %lu (%llu pixels), above the limit of %llu pixels",
                         path, (unsigned long)w, (unsigned long)h, (unsigned long long)pixels,
                         (unsigned long long)limits->max_pixels);

    unsigned desc = e[E_DESCRIPTOR], depth = e[E_BIT_DEPTH];
    unsigned packing = rd16(e + E_PACKING, be), encoding = rd16(e + E_ENCODING, be);
    if (encoding != 0)
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: run-length encoded DPX (encoding %u) is not supported", path,
                         encoding);
    if (rd32(e + E_SIGN, be) != 0)
        return cm__error(ctx, CM_E_UNSUPPORTED, "%s: DPX with signed samples is not supported",
                         path);
    if (desc != DESC_LUMA && desc != DESC_RGB && desc != DESC_RGBA)
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: DPX descriptor %u is not supported (only 6 luma, 50 RGB, 51 RGBA)",
                         path, desc);
    int ok = ((depth == 8 || depth == 16) && packing <= 1) ||
             ((depth == 10 || depth == 12) && (packing == 1 || packing == 2));
    if (!ok)
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: %u-bit DPX with packing %u is not supported (8 and 16 bit, or "
                         "10 and 12 bit filled to 32-bit words)",
                         path, depth, packing);

    uint64_t off = rd32(e + E_DATA_OFFSET, be);
    if (off == 0 || off == UNDEF32)
        off = rd32(f + H_IMAGE_OFFSET, be);
    if (off == 0 || off == UNDEF32)
        return cm__error(ctx, CM_E_CORRUPT, "%s: corrupt DPX: no image data offset", path);
    if (off < GENERIC_BYTES)
        return cm__error(ctx, CM_E_CORRUPT,
                         "%s: corrupt DPX: image data offset %llu lies inside the header", path,
                         (unsigned long long)off);
    if (off >= size)
        return cm__error(ctx, CM_E_CORRUPT,
                         "%s: corrupt DPX: image data offset %llu is past the end of the file "
                         "(%zu bytes)",
                         path, (unsigned long long)off, size);

    m->width = w;
    m->height = h;
    m->descriptor = (int)desc;
    m->channels = desc == DESC_RGBA ? 4 : desc == DESC_RGB ? 3 : 1;
    m->depth = (int)depth;
    m->packing = (int)packing;
    m->offset = off;

    uint64_t pad = rd32(e + E_EOL_PADDING, be);
    if (pad == UNDEF32)
        pad = 0;
    const uint64_t samples = (uint64_t)w * (uint64_t)m->channels;
    const uint64_t avail = size - off;
    uint64_t row = row_sample_bytes(samples, (int)depth, 1);
    uint64_t need = span(h, row + pad, row);
    uint64_t unpadded = row_sample_bytes(samples, (int)depth, 0);
    if (need > avail && pad == 0 && depth != 10 && span(h, unpadded, unpadded) <= avail) {
        /* rows without 32-bit padding (FFmpeg's older encoder) */
        row = unpadded;
        need = span(h, row, row);
    }
    if (need > avail)
        return cm__error(ctx, CM_E_CORRUPT,
                         "%s: truncated DPX: the image needs %llu bytes from offset %llu, the "
                         "file has %zu",
                         path, (unsigned long long)need, (unsigned long long)off, size);
    m->row_bytes = (size_t)row;
    m->row_stride = (size_t)(row + pad);
    return CM_OK;
}

/* Descriptive tags for info. */
static void describe_header(dpx_meta *m)
{
    const uint8_t *f = m->file, *e = f + H_ELEMENT0;
    const int be = m->big_endian;
    char version[9];
    size_t k = 0;
    for (; k < 8 && f[H_VERSION + k] >= 0x20 && f[H_VERSION + k] < 0x7f; k++)
        version[k] = (char)f[H_VERSION + k];
    version[k] = '\0';

    meta_tag(m, "byte_order", "%s", be ? "big-endian" : "little-endian");
    if (k)
        meta_tag(m, "version", "%s", version);
    if (m->depth == 10 || m->depth == 12)
        meta_tag(m, "packing", "filled to 32-bit words, method %s",
                 m->packing == 2 ? "B (padding high)" : "A (padding low)");
    const char *t = transfer_name(e[E_TRANSFER]);
    const char *c = transfer_name(e[E_COLORIMETRIC]);
    meta_tag(m, "transfer", "%s", t ? t : "other");
    meta_tag(m, "colorimetric", "%s", c ? c : "other");
    meta_tag(m, "data_offset", "%llu", (unsigned long long)m->offset);
    uint32_t user = rd32(f + H_USER_SIZE, be);
    if (user && user != UNDEF32)
        meta_tag(m, "user_data", "%lu bytes", (unsigned long)user);
    unsigned elements = rd16(f + H_ELEMENTS, be);
    if (elements > 1)
        meta_tag(m, "elements", "%u (only the first is marked; the others are copied unchanged)",
                 elements);
    unsigned orient = rd16(f + H_ORIENTATION, be);
    if (orient != 0 && orient != 0xffff)
        meta_tag(m, "orientation", "%u", orient);
    text_tag(m, "file_name", f + H_FILE_NAME, 100);
    text_tag(m, "creation_time", f + H_CREATE_TIME, 24);
    text_tag(m, "creator", f + H_CREATOR, 100);
    text_tag(m, "project", f + H_PROJECT, 200);
    text_tag(m, "copyright", f + H_COPYRIGHT, 200);
    text_tag(m, "input_device", f + H_INPUT_DEVICE, 32);
    if (m->offset < HEADER_BYTES)
        return; /* no industry headers */
    uint32_t tc = rd32(f + H_TV_TIMECODE, be);
    if (tc != UNDEF32)
        meta_tag(m, "timecode", "%02x:%02x:%02x:%02x", tc >> 24, (tc >> 16) & 0xff,
                 (tc >> 8) & 0xff, tc & 0xff);
    float rate = rdf32(f + H_FILM_FRAME_RATE, be);
    if (!(rate > 0 && rate < 1e6))
        rate = rdf32(f + H_TV_FRAME_RATE, be);
    if (rate > 0 && rate < 1e6)
        meta_tag(m, "frame_rate", "%g", rate);
}

static int read_dpx(cm_ctx *ctx, const char *path, FILE *fp, const cm_limits *limits,
                    cm_image **out)
{
    dpx_meta *m = NULL;
    cm_image *img = NULL;
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "dpx read: no output given");
    *out = NULL;
    if (!path || !fp || !limits)
        return cm__error(ctx, CM_E_INVAL, "dpx read: invalid argument");
    if (!(m = calloc(1, sizeof(*m))))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
    if ((ret = cm__read_all(ctx, path, fp, limits->max_file_bytes, &m->file, &m->size)) < 0)
        goto fail;
    if ((ret = parse_header(ctx, path, limits, m)) < 0)
        goto fail;
    /* the header itself is the metadata: check it like any other */
    if (m->offset > limits->max_meta_bytes) {
        ret = cm__error(ctx, CM_E_LIMIT,
                        "%s: header and user data are %llu bytes, above the limit of %llu "
                        "bytes",
                        path, (unsigned long long)m->offset,
                        (unsigned long long)limits->max_meta_bytes);
        goto fail;
    }
    if ((ret = cm__image_alloc(&img, (int)m->width, (int)m->height, m->channels,
                               m->channels == 4, m->depth == 8 ? 8 : 16,
                               limits->max_pixels)) < 0) {
        ret = cm__error(ctx, ret, "%s: cannot allocate a %lu x %lu image", path,
                        (unsigned long)m->width, (unsigned long)m->height);
        goto fail;
    }
    const size_t n = (size_t)m->width * (size_t)m->channels;
    for (uint32_t y = 0; y < m->height; y++)
        read_row(m, m->file + m->offset + (size_t)y * m->row_stride,
                 img->data + (ptrdiff_t)y * img->stride, n);
    describe_header(m);
    if ((ret = cm__image_attach_meta(img, &cm__format_dpx, m)) < 0) {
        m = NULL; /* freed by attach */
        ret = cm__error(ctx, ret, "%s: out of memory", path);
        goto fail;
    }
    *out = img;
    return CM_OK;

fail:
    cm_image_free(&img);
    free_dpx_meta(m);
    return ret;
}

/* ---- writing ---------------------------------------------------------- */

/* A minimal big-endian DPX for an image without DPX meta. */
static int write_plain(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
{
    const int ch = img->channels;
    if (ch == 2)
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: DPX has no grey+alpha layout; write a .png or .tif instead", path);
    dpx_meta m;
    memset(&m, 0, sizeof(m));
    m.big_endian = 1;
    m.width = (uint32_t)img->width;
    m.height = (uint32_t)img->height;
    m.channels = ch;
    m.descriptor = ch == 4 ? DESC_RGBA : ch == 3 ? DESC_RGB : DESC_LUMA;
    m.depth = img->bit_depth;
    m.packing = 1;
    m.offset = HEADER_BYTES;
    uint64_t row = row_sample_bytes((uint64_t)m.width * (uint64_t)ch, m.depth, 1);
    uint64_t total = HEADER_BYTES + row * m.height;
    if (total > UINT32_MAX || total > SIZE_MAX)
        return cm__error(ctx, CM_E_LIMIT, "%s: image too large for DPX (4 GiB)", path);
    m.row_bytes = m.row_stride = (size_t)row;
    m.size = (size_t)total;
    if (!(m.file = calloc(1, m.size)))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing DPX", path);

    uint8_t *f = m.file, *e = f + H_ELEMENT0;
    memcpy(f + H_MAGIC, "SDPX", 4);
    wr32(f + H_IMAGE_OFFSET, 1, HEADER_BYTES);
    memcpy(f + H_VERSION, "V2.0", 4);
    wr32(f + H_FILE_SIZE, 1, (uint32_t)total);
    wr32(f + H_DITTO_KEY, 1, 1); /* 1: a new frame, not a ditto of the previous */
    wr32(f + H_GENERIC_SIZE, 1, GENERIC_BYTES);
    wr32(f + H_INDUSTRY_SIZE, 1, HEADER_BYTES - GENERIC_BYTES);
    wr32(f + H_USER_SIZE, 1, 0);
    wr32(f + H_ENCRYPT_KEY, 1, UNDEF32);
    wr16(f + H_ORIENTATION, 1, 0);
    wr16(f + H_ELEMENTS, 1, 1);
    wr32(f + H_WIDTH, 1, m.width);
    wr32(f + H_HEIGHT, 1, m.height);
    wr32(e + E_HIGH_CODE, 1, (1u << m.depth) - 1);
    e[E_DESCRIPTOR] = (uint8_t)m.descriptor;
    e[E_BIT_DEPTH] = (uint8_t)m.depth;
    wr16(e + E_PACKING, 1, 1);
    wr32(e + E_DATA_OFFSET, 1, HEADER_BYTES);
    /* unknown source, film and television fields: "undefined" */
    memset(f + H_SOURCE, 0xff, 24);
    memset(f + H_FILM + 48, 0xff, 20);
    memset(f + H_TV, 0xff, 52);

    const size_t n = (size_t)m.width * (size_t)ch;
    for (uint32_t y = 0; y < m.height; y++)
        write_row(&m, img->data + (ptrdiff_t)y * img->stride, f + HEADER_BYTES + y * m.row_stride,
                  n);
    int ret = CM_OK;
    if (fwrite(f, 1, m.size, fp) != m.size)
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", path,
                        strerror(errno ? errno : EIO));
    free(m.file);
    return ret;
}

static int write_dpx(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
{
    if (!path)
        path = "(output)";
    if (!img || !fp)
        return cm__error(ctx, CM_E_INVAL, "%s: dpx write: invalid argument", path);
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "%s: invalid image", path);

    const dpx_meta *m = img->meta && img->meta->format == &cm__format_dpx ? img->meta->priv
                                                                           : NULL;
    /* pixels only if the image no longer has the source's layout */
    if (!m || m->width != (uint32_t)img->width || m->height != (uint32_t)img->height ||
        m->channels != img->channels || (m->depth == 8 ? 8 : 16) != img->bit_depth)
        return write_plain(ctx, img, fp, path);

    uint8_t *copy = malloc(m->size);
    if (!copy)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing DPX", path);
    memcpy(copy, m->file, m->size);
    const size_t n = (size_t)m->width * (size_t)m->channels;
    for (uint32_t y = 0; y < m->height; y++)
        write_row(m, img->data + (ptrdiff_t)y * img->stride,
                  copy + m->offset + (size_t)y * m->row_stride, n);
    int ret = CM_OK;
    if (fwrite(copy, 1, m->size, fp) != m->size)
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", path,
                        strerror(errno ? errno : EIO));
    free(copy);
    return ret;
}

/* ---- info ------------------------------------------------------------- */

static void describe_dpx(const cm_image *img, cm_image_info *info)
{
    const dpx_meta *m = img->meta->priv;
    snprintf(info->format, sizeof(info->format), "dpx");
    snprintf(info->color_type, sizeof(info->color_type), "%s",
             m->channels == 4 ? "rgba" : m->channels == 3 ? "rgb" : "gray");
    info->bit_depth = m->depth;
    info->converted = 0;
    for (int i = 0; i < m->ntags; i++)
        cm__info_add_tag(info, m->tags[i].key, "%s", m->tags[i].value);
}

const cm__format cm__format_dpx = {
    .name = "dpx",
    .extensions = "dpx",
    .probe = probe_dpx,
    .read = read_dpx,
    .write = write_dpx,
    .meta_free = free_dpx_meta,
    .info = describe_dpx,
};
