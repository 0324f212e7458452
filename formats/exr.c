/*
 * OpenEXR reader and writer (OpenEXR Core C API, openexr.h).
 *
 * EXR holds linear half/float data in one or more parts; the rest of
 * celmark works on 16-bit display-referred samples. So one part is chosen
 * to carry the mark and shown to the core through a display encoding, and
 * everything else is carried through untouched:
 *
 *   marked part   the first scanline or tiled (not deep) part with half or
 *                 float R, G, B channels at sampling 1 (optionally A), else
 *                 one with a Y channel (grey, optionally A). Tiled: the
 *                 full-resolution level; lower mip levels are copied as they
 *                 are (they do not carry the mark).
 *   samples       colour: u = round(65535 * srgb(clamp(v, 0, 1))), the sRGB
 *                 transfer function (IEC 61966-2-1) of the linear value;
 *                 NaN and negatives -> 0, >= 1 and +inf -> 65535.
 *                 alpha:  u = round(65535 * clamp(a, 0, 1)) (the core only
 *                 uses it to leave transparent pixels alone).
 *
 * Writing back an image read from an EXR keeps every part, every header
 * attribute of every part (known types through exr_copy_unset_attributes,
 * unknown ones as their stored bytes), every channel, the compression, line
 * order, tiling and windows. Each chunk of every other part, and each chunk
 * of the marked part whose colour did not change, is copied as the packed
 * bytes read from the source; a chunk of the marked part that changed is
 * decoded in its native pixel types, changed only where the mark changed a
 * colour sample, and compressed again with the part's compression. The
 * change is applied in linear light:
 *
 *   e  = encode(v)                      the source sample as read
 *   d  = u' - e                         u' the sample after marking
 *   v' = v                              if d == 0 (bit-identical)
 *   v' = v + decode(e + d) - decode(e)  otherwise (decode = inverse sRGB)
 *
 * so values above 1.0 (highlights clipped to 65535 for the core) move by
 * the linear step at the top of the curve instead of being clipped, and
 * half stays half, float stays float. Alpha and all other channels keep
 * their bits; with a lossy compression (PXR24 on float, B44) they go
 * through the codec again in the chunks that changed. Deep parts are
 * copied chunk by chunk; a file with only deep (or no colour) parts cannot
 * be marked.
 *
 * What OpenEXR 3.1.5's Core library cannot do is refused when reading,
 * never half-done when writing: DWAA/DWAB in the marked part (neither
 * decoded nor encoded; other parts are copied without decoding), ripmap
 * tiles (their chunk indices are computed wrongly). Its writer always puts
 * a "type" attribute in the header, so a single-part file written by the
 * C++ library gains one ("scanlineimage" or "tiledimage": what the part
 * is).
 *
 * An image that was not read from an EXR is written as one scanline part
 * of half R, G, B (A) or Y (A), ZIP compressed, decoded to linear light.
 *
 * The source file is kept in memory (the meta), so the writer reads its
 * chunks from the bytes that were decoded, whatever happens to the file.
 * OpenEXR reports errors through a callback; its message is kept and
 * turned into a one-line "<file>: <problem>" in the context.
 */
#include "format.h"

#include <openexr.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXR_MAGIC_BYTES 4

/* Flags in byte 5 of the version field (bits 8-15 of the little-endian
 * word): long attribute and channel names (bit 10). */
#define EXR_FLAG5_LONG_NAMES 0x04

/* Plain output (no EXR source): ZIP is what most tools write by default
 * and is lossless. */
#define PLAIN_COMPRESSION EXR_COMPRESSION_ZIP

static const uint8_t exr_magic[EXR_MAGIC_BYTES] = {0x76, 0x2f, 0x31, 0x01};

/* ---- half floats -------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Round to nearest, ties to even (as Imath's half does). */
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf, or NaN kept quiet with its top payload */
        return (uint16_t)(sign | 0x7c00u |
                          (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) /* 65520 and above round to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: subnormal or zero */
        if (ax < 0x33000000u)
            return (uint16_t)sign; /* below 2^-25 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), tie = 1u << (shift - 1u);
        if (rem > tie || (rem == tie && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry moves into the exponent, as it should */
    return (uint16_t)(sign | h);
}

/* ---- the display encoding ---------------------------------------------- */

/* Linear light -> 16-bit sRGB-encoded code value (see the file comment). */
static uint16_t encode_linear(double v)
{
    if (!(v > 0.0))
        return 0; /* negatives, -0, NaN */
    if (v >= 1.0)
        return 65535;
    double s = v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1.0 / 2.4) - 0.055;
    double q = floor(s * 65535.0 + 0.5);
    return (uint16_t)(q < 0.0 ? 0.0 : (q > 65535.0 ? 65535.0 : q));
}

static double decode_code(unsigned u)
{
    double s = (double)u / 65535.0;
    return s <= 0.04045 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4);
}

static uint16_t encode_alpha(double a)
{
    if (!(a > 0.0))
        return 0;
    if (a >= 1.0)
        return 65535;
    return (uint16_t)floor(a * 65535.0 + 0.5);
}

/* Per-call tables (no global state): the encoding of every half, and the
 * linear value of every code. */
typedef struct tables {
    uint16_t *enc_half; /* 65536: half bits -> code */
    double *dec;        /* 65536: code -> linear, or NULL */
} tables;

static int tables_init(tables *t, int with_decode)
{
    memset(t, 0, sizeof(*t));
    if (!(t->enc_half = cm__malloc_array(65536, sizeof(uint16_t))))
        return CM_E_NOMEM;
    for (uint32_t h = 0; h < 65536; h++)
        t->enc_half[h] = encode_linear(half_to_float((uint16_t)h));
    if (with_decode) {
        if (!(t->dec = cm__malloc_array(65536, sizeof(double)))) {
            free(t->enc_half);
            t->enc_half = NULL;
            return CM_E_NOMEM;
        }
        for (unsigned u = 0; u < 65536; u++)
            t->dec[u] = decode_code(u);
    }
    return CM_OK;
}

static void tables_free(tables *t)
{
    free(t->enc_half);
    free(t->dec);
    memset(t, 0, sizeof(*t));
}

/* A native sample (half or float bits) as its value and its code. */
static inline float sample_value(const uint8_t *p, int half)
{
    if (half) {
        uint16_t h;
        memcpy(&h, p, 2);
        return half_to_float(h);
    }
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline uint16_t sample_code(const tables *t, const uint8_t *p, int half)
{
    if (half) {
        uint16_t h;
        memcpy(&h, p, 2);
        return t->enc_half[h];
    }
    float f;
    memcpy(&f, p, 4);
    return encode_linear(f);
}

/* ---- I/O and errors ----------------------------------------------------- */

/* State behind every OpenEXR context we open (its user data): the source
 * bytes to read, or the stdio stream to write. */
typedef struct exr_io {
    const uint8_t *buf; /* read: the whole file */
    size_t len;
    FILE *fp; /* write */
    uint64_t pos;
    int err_no;
    int to_mem;   /* write: into mem (chunks reordered before it goes to fp) */
    uint8_t *mem; /* write: the file so far, mem_len bytes */
    size_t mem_len, mem_cap;
} exr_io;

#define MSG_BYTES 256

/*
 * Where error_cb puts OpenEXR's last message: a buffer of the read_exr or
 * write_exr call running on this thread (set around all its library
 * calls). The callback cannot reach the context's user data instead:
 * OpenEXR 3.1 calls it with the context's lock held, and
 * exr_get_user_data takes that lock again (a deadlock).
 */
static _Thread_local char *tls_msg;

static void error_cb(exr_const_context_t c, exr_result_t code, const char *msg)
{
    (void)c;
    /* the library never prints: keep the message for our own one */
    if (!tls_msg)
        return;
    snprintf(tls_msg, MSG_BYTES, "%s", msg && *msg ? msg : exr_get_default_error_message(code));
    /* one line, and no ';' (the command takes that as advice already given) */
    for (char *p = tls_msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == ';')
            *p = *p == ';' ? ',' : ' ';
}

/* Send messages to buf (MSG_BYTES) from now on; returns the previous. */
static char *messages_to(char *buf)
{
    char *old = tls_msg;
    tls_msg = buf;
    if (buf)
        buf[0] = '\0';
    return old;
}

/* Forget messages about expected failures (an absent attribute). */
static void clear_message(void)
{
    if (tls_msg)
        tls_msg[0] = '\0';
}

static int64_t mem_read(exr_const_context_t c, void *ud, void *buffer, uint64_t sz,
                        uint64_t offset, exr_stream_error_func_ptr_t error_fn)
{
    (void)c;
    (void)error_fn;
    const exr_io *io = ud;
    if (offset >= io->len)
        return 0; /* past the end: the library reports the short read */
    uint64_t n = io->len - offset < sz ? io->len - offset : sz;
    memcpy(buffer, io->buf + offset, (size_t)n);
    return (int64_t)n;
}

static int64_t mem_size(exr_const_context_t c, void *ud)
{
    (void)c;
    return (int64_t)((const exr_io *)ud)->len;
}

static int64_t file_write(exr_const_context_t c, void *ud, const void *buffer, uint64_t sz,
                          uint64_t offset, exr_stream_error_func_ptr_t error_fn)
{
    (void)c;
    (void)error_fn;
    exr_io *io = ud;
    if (io->to_mem) {
        if (offset > SIZE_MAX - sz) {
            io->err_no = ENOMEM;
            return -1;
        }
        size_t end = (size_t)(offset + sz);
        if (end > io->mem_cap) {
            size_t cap = io->mem_cap ? io->mem_cap : 1 << 16;
            while (cap < end)
                cap = cap > SIZE_MAX / 2 ? end : cap * 2;
            uint8_t *n = realloc(io->mem, cap);
            if (!n) {
                io->err_no = ENOMEM;
                return -1;
            }
            io->mem = n;
            io->mem_cap = cap;
        }
        if (offset > io->mem_len) /* a gap (never made by the Core writer): zeros */
            memset(io->mem + io->mem_len, 0, (size_t)offset - io->mem_len);
        memcpy(io->mem + offset, buffer, (size_t)sz);
        if (end > io->mem_len)
            io->mem_len = end;
        return (int64_t)sz;
    }
    /* the chunk tables are written last, back at their place */
    if (offset != io->pos) {
        if (offset > (uint64_t)INT64_MAX || fseeko(io->fp, (off_t)offset, SEEK_SET) != 0) {
            io->err_no = errno ? errno : EIO;
            return -1;
        }
        io->pos = offset;
    }
    if (sz && fwrite(buffer, 1, (size_t)sz, io->fp) != sz) {
        io->err_no = errno ? errno : EIO;
        return -1;
    }
    io->pos += sz;
    return (int64_t)sz;
}

/* An OpenEXR failure as a status and a one-line message. */
static int exr_fail(cm_ctx *ctx, const char *path, const exr_io *io, exr_result_t rv,
                    int writing, const char *what)
{
    const char *msg = tls_msg && *tls_msg ? tls_msg : exr_get_default_error_message(rv);
    if (rv == EXR_ERR_OUT_OF_MEMORY)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory %s EXR", path,
                         writing ? "writing" : "reading");
    if (writing) {
        if (rv == EXR_ERR_FEATURE_NOT_IMPLEMENTED)
            return cm__error(ctx, CM_E_UNSUPPORTED, "%s: cannot encode this EXR (%s): %s",
                             path, what, msg);
        if (io->err_no || rv == EXR_ERR_WRITE_IO)
            return cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", path,
                             strerror(io->err_no ? io->err_no : EIO));
        return cm__error(ctx, CM_E_INTERNAL, "%s: cannot encode EXR (%s): %s", path, what, msg);
    }
    if (rv == EXR_ERR_READ_IO)
        return cm__error(ctx, CM_E_CORRUPT, "%s: truncated EXR (%s): %s", path, what, msg);
    if (rv == EXR_ERR_FEATURE_NOT_IMPLEMENTED)
        return cm__error(ctx, CM_E_UNSUPPORTED, "%s: EXR feature not supported by OpenEXR "
                         "3.1's Core library (%s): %s; re-save the file with ZIP or PIZ "
                         "compression", path, what, msg);
    return cm__error(ctx, CM_E_CORRUPT, "%s: corrupt EXR (%s): %s", path, what, msg);
}

/* A read context over the bytes in io (which must outlive it). */
static exr_result_t open_source(exr_io *io, const char *path, exr_context_t *src)
{
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = error_cb;
    init.user_data = io;
    init.read_fn = mem_read;
    init.size_fn = mem_size;
    /* a damaged chunk table is an error, not something to guess around */
    init.flags = EXR_CONTEXT_FLAG_DISABLE_CHUNK_RECONSTRUCTION;
    *src = NULL;
    return exr_start_read(src, path, &init);
}

/* ---- probe -------------------------------------------------------------- */

static int probe_exr(const uint8_t *head, size_t len)
{
    return head && len >= EXR_MAGIC_BYTES && memcmp(head, exr_magic, EXR_MAGIC_BYTES) == 0;
}

/* ---- the source's layout ------------------------------------------------ */

/* One chunk of a part, by its coordinates: scanline y, or tile and level. */
typedef struct chunk_ref {
    int32_t y, tx, ty, lx, ly;
} chunk_ref;

/* Every chunk of a part in chunk-table order (the order the writer needs
 * unless the line order is random), or only the full-resolution level. */
static exr_result_t list_chunks(exr_const_context_t c, int part, exr_storage_t st,
                                int level0_only, chunk_ref **out, int32_t *nout)
{
    exr_result_t rv;
    int32_t total, n = 0;
    chunk_ref *refs = NULL;

    *out = NULL;
    *nout = 0;
    if ((rv = exr_get_chunk_count(c, part, &total)) != EXR_ERR_SUCCESS)
        return rv;
    if (total <= 0)
        return EXR_ERR_FILE_BAD_HEADER;
    if (!(refs = cm__calloc_array((size_t)total, sizeof(*refs))))
        return EXR_ERR_OUT_OF_MEMORY;

    if (st == EXR_STORAGE_SCANLINE || st == EXR_STORAGE_DEEP_SCANLINE) {
        exr_attr_box2i_t dw;
        int32_t lpc;
        if ((rv = exr_get_data_window(c, part, &dw)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_scanlines_per_chunk(c, part, &lpc)) != EXR_ERR_SUCCESS)
            goto fail;
        for (int64_t y = dw.min.y; y <= dw.max.y && n < total; y += lpc > 0 ? lpc : 1)
            refs[n++].y = (int32_t)y;
    } else {
        int32_t nlx, nly;
        uint32_t tdx, tdy;
        exr_tile_level_mode_t mode;
        exr_tile_round_mode_t round;
        if ((rv = exr_get_tile_levels(c, part, &nlx, &nly)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_tile_descriptor(c, part, &tdx, &tdy, &mode, &round)) !=
                EXR_ERR_SUCCESS)
            goto fail;
        if (level0_only)
            nlx = nly = 1;
        /* chunk-table order: level y, level x, tile row, tile column */
        for (int32_t ly = 0; ly < nly; ly++) {
            for (int32_t lx = 0; lx < nlx; lx++) {
                if (mode != EXR_TILE_RIPMAP_LEVELS && lx != ly)
                    continue;
                int32_t tw, th, lw, lh;
                if ((rv = exr_get_tile_sizes(c, part, lx, ly, &tw, &th)) != EXR_ERR_SUCCESS ||
                    (rv = exr_get_level_sizes(c, part, lx, ly, &lw, &lh)) != EXR_ERR_SUCCESS)
                    goto fail;
                if (tw <= 0 || th <= 0) {
                    rv = EXR_ERR_FILE_BAD_HEADER;
                    goto fail;
                }
                for (int64_t ty = 0; ty * th < lh; ty++)
                    for (int64_t tx = 0; tx * tw < lw; tx++) {
                        if (n >= total) {
                            rv = EXR_ERR_FILE_BAD_HEADER;
                            goto fail;
                        }
                        refs[n++] = (chunk_ref){0, (int32_t)tx, (int32_t)ty, lx, ly};
                    }
            }
        }
    }
    if (!level0_only && n != total) {
        rv = EXR_ERR_FILE_BAD_HEADER; /* our walk and the chunk table disagree */
        goto fail;
    }
    *out = refs;
    *nout = n;
    return EXR_ERR_SUCCESS;

fail:
    free(refs);
    return rv;
}

static exr_result_t chunk_info(exr_const_context_t c, int part, exr_storage_t st,
                               const chunk_ref *r, exr_chunk_info_t *ci)
{
    if (st == EXR_STORAGE_SCANLINE || st == EXR_STORAGE_DEEP_SCANLINE)
        return exr_read_scanline_chunk_info(c, part, r->y, ci);
    return exr_read_tile_chunk_info(c, part, r->tx, r->ty, r->lx, r->ly, ci);
}

/* Which channels of the marked part carry what. */
enum { CH_R, CH_G, CH_B, CH_A, CH_MAX };

typedef struct exr_meta {
    uint8_t *file; /* the whole source file */
    size_t file_len;
    int part;             /* the marked part */
    exr_storage_t storage;
    int ncolour;          /* 3 (R, G, B) or 1 (Y) */
    int has_alpha;
    char names[CH_MAX][2]; /* "R","G","B","A" or "Y",-,-,"A" */
    int half[CH_MAX];      /* 1 half, 0 float */
    int width, height;
    int tile_w, tile_h;    /* tiled: full-resolution tile size */
    exr_attr_box2i_t dw;
    /* what `celmark info` shows */
    int nparts, bit_depth;
    exr_compression_t compression;
    exr_lineorder_t lineorder;
    exr_attr_box2i_t disp;
    int has_chroma, has_timecode;
    int ripmap_part; /* first part with ripmap tiles (readable, not copyable), or -1 */
    exr_attr_chromaticities_t chroma;
    exr_attr_timecode_t timecode;
    char part_name[64];
    char layout[64];   /* "scanline", "tiled 64x64 mipmap" */
    char channels[224];
    char others[224];  /* the other parts */
} exr_meta;

static void free_exr_meta(void *priv)
{
    exr_meta *m = priv;
    if (!m)
        return;
    free(m->file);
    free(m);
}

static const char *compression_name(exr_compression_t c)
{
    static const char *const names[] = {"none", "rle",  "zips", "zip",  "piz",
                                        "pxr24", "b44", "b44a", "dwaa", "dwab"};
    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

static const char *storage_name(exr_storage_t s)
{
    switch (s) {
    case EXR_STORAGE_SCANLINE: return "scanline";
    case EXR_STORAGE_TILED: return "tiled";
    case EXR_STORAGE_DEEP_SCANLINE: return "deep scanline";
    case EXR_STORAGE_DEEP_TILED: return "deep tiled";
    default: return "unknown";
    }
}

static const char *pixel_type_name(exr_pixel_type_t t)
{
    switch (t) {
    case EXR_PIXEL_UINT: return "uint";
    case EXR_PIXEL_HALF: return "half";
    case EXR_PIXEL_FLOAT: return "float";
    default: return "unknown";
    }
}

/* Append to a fixed buffer, silently truncating (info text only). */
static void append(char *buf, size_t size, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        snprintf(buf + len, size - len, fmt, a, b);
}

/* Does part carry colour we can mark? Fills the channel names and types. */
static int pick_channels(const exr_attr_chlist_t *cl, exr_meta *m)
{
    const exr_attr_chlist_entry_t *found[5] = {NULL}; /* R G B A Y */
    static const char *const want[5] = {"R", "G", "B", "A", "Y"};
    for (int i = 0; i < cl->num_channels; i++) {
        const exr_attr_chlist_entry_t *e = &cl->entries[i];
        if (e->x_sampling != 1 || e->y_sampling != 1 ||
            (e->pixel_type != EXR_PIXEL_HALF && e->pixel_type != EXR_PIXEL_FLOAT))
            continue; /* uint colour is not light: leave it alone */
        for (int k = 0; k < 5; k++)
            if (e->name.length == 1 && e->name.str && e->name.str[0] == want[k][0])
                found[k] = e;
    }
    int rgb = found[0] && found[1] && found[2];
    if (!rgb && !found[4])
        return 0;
    memset(m->names, 0, sizeof(m->names));
    m->ncolour = rgb ? 3 : 1;
    for (int k = 0; k < m->ncolour; k++) {
        const exr_attr_chlist_entry_t *e = rgb ? found[k] : found[4];
        m->names[k][0] = e->name.str[0];
        m->half[k] = e->pixel_type == EXR_PIXEL_HALF;
    }
    m->has_alpha = found[3] != NULL;
    if (m->has_alpha) {
        m->names[CH_A][0] = 'A';
        m->half[CH_A] = found[3]->pixel_type == EXR_PIXEL_HALF;
    }
    return 1;
}

/* Index of the decoder/encoder channel named name, or -1. */
static int coding_channel(const exr_coding_channel_info_t *ch, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (ch[i].channel_name && !strcmp(ch[i].channel_name, name))
            return i;
    return -1;
}

/*
 * Decode one chunk of the marked part into planar buffers in each channel's
 * native type. all = 0 decodes only the channels in m->names. On success
 * dec holds the layout (channels[i].decode_to_ptr, width, height) until
 * exr_decoding_destroy.
 */
static exr_result_t decode_chunk(exr_const_context_t src, const exr_meta *m,
                                 const exr_chunk_info_t *ci, int all,
                                 exr_decode_pipeline_t *dec, uint8_t **buf, size_t *cap)
{
    exr_result_t rv = exr_decoding_initialize(src, m->part, ci, dec);
    if (rv != EXR_ERR_SUCCESS)
        return rv;
    size_t total = 0;
    for (int i = 0; i < dec->channel_count; i++) {
        const exr_coding_channel_info_t *c = &dec->channels[i];
        size_t bytes;
        /* line strides are int32 */
        if (c->width < 0 || c->height < 0 || c->bytes_per_element <= 0 ||
            (int64_t)c->width * c->bytes_per_element > INT32_MAX ||
            cm__mul_size((size_t)c->width, (size_t)c->height, &bytes) ||
            cm__mul_size(bytes, (size_t)c->bytes_per_element, &bytes) ||
            total + bytes < total)
            return EXR_ERR_CORRUPT_CHUNK;
        total += bytes;
    }
    if (total > *cap) {
        uint8_t *n = realloc(*buf, total);
        if (!n)
            return EXR_ERR_OUT_OF_MEMORY;
        *buf = n;
        *cap = total;
    }
    size_t off = 0;
    for (int i = 0; i < dec->channel_count; i++) {
        exr_coding_channel_info_t *c = &dec->channels[i];
        size_t bytes = (size_t)c->width * (size_t)c->height * (size_t)c->bytes_per_element;
        int wanted = all;
        for (int k = 0; !wanted && k < CH_MAX; k++)
            wanted = m->names[k][0] && !strcmp(c->channel_name, m->names[k]);
        c->decode_to_ptr = wanted && bytes ? *buf + off : NULL;
        c->user_pixel_stride = c->bytes_per_element;
        c->user_line_stride = c->width * c->bytes_per_element;
        c->user_bytes_per_element = c->bytes_per_element;
        c->user_data_type = c->data_type;
        off += bytes;
    }
    if ((rv = exr_decoding_choose_default_routines(src, m->part, dec)) != EXR_ERR_SUCCESS)
        return rv;
    return exr_decoding_run(src, m->part, dec);
}

/* Where a full-resolution chunk of the marked part sits in the image. */
static int chunk_origin(const exr_meta *m, const chunk_ref *r, const exr_chunk_info_t *ci,
                        int *x0, int *y0)
{
    int64_t x, y;
    if (m->storage == EXR_STORAGE_SCANLINE) {
        x = 0;
        y = (int64_t)ci->start_y - m->dw.min.y;
    } else {
        x = (int64_t)r->tx * m->tile_w;
        y = (int64_t)r->ty * m->tile_h;
    }
    if (x < 0 || y < 0 || ci->width <= 0 || ci->height <= 0 || x + ci->width > m->width ||
        y + ci->height > m->height)
        return -1;
    *x0 = (int)x;
    *y0 = (int)y;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* The whole file into memory, at most limits->max_file_bytes. */
static int slurp(cm_ctx *ctx, const char *path, FILE *fp, const cm_limits *limits,
                 uint8_t **out, size_t *len)
{
    struct stat st;
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;

    *out = NULL;
    *len = 0;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= limits->max_file_bytes && (uint64_t)st.st_size < SIZE_MAX)
        cap = (size_t)st.st_size + 1; /* +1: see the end in one read */
    for (;;) {
        if (n == cap || !buf) {
            size_t ncap = !buf && cap ? cap : (cap ? cap * 2 : 65536);
            if (ncap < cap) {
                free(buf);
                return cm__error(ctx, CM_E_LIMIT, "%s: file too large", path);
            }
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return cm__error(ctx, CM_E_NOMEM, "%s: out of memory reading EXR", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if ((uint64_t)n > limits->max_file_bytes) {
            free(buf);
            return cm__error(ctx, CM_E_LIMIT,
                             "%s: file is above the limit of %llu bytes", path,
                             (unsigned long long)limits->max_file_bytes);
        }
        if (got == 0) {
            if (ferror(fp)) {
                int e = errno ? errno : EIO;
                free(buf);
                return cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path, strerror(e));
            }
            break;
        }
    }
    if (n == 0) {
        free(buf);
        return cm__error(ctx, CM_E_CORRUPT, "%s: empty file", path);
    }
    *out = buf;
    *len = n;
    return CM_OK;
}

/* Bytes of the variable-size attributes (text, vectors, previews, unknown
 * types) of a part, for cm_limits.max_meta_bytes. */
static uint64_t attribute_bytes(exr_const_context_t c, int part)
{
    int32_t na = 0;
    uint64_t total = 0;
    if (exr_get_attribute_count(c, part, &na) != EXR_ERR_SUCCESS)
        return 0;
    for (int32_t i = 0; i < na; i++) {
        const exr_attribute_t *a = NULL;
        if (exr_get_attribute_by_index(c, part, EXR_ATTR_LIST_FILE_ORDER, i, &a) !=
                EXR_ERR_SUCCESS ||
            !a)
            continue;
        switch (a->type) {
        case EXR_ATTR_STRING:
            total += (uint64_t)(a->string->length > 0 ? a->string->length : 0);
            break;
        case EXR_ATTR_STRING_VECTOR:
            for (int32_t k = 0; k < a->stringvector->n_strings; k++)
                total += 4u + (uint64_t)(a->stringvector->strings[k].length > 0
                                             ? a->stringvector->strings[k].length
                                             : 0);
            break;
        case EXR_ATTR_FLOAT_VECTOR:
            total += 4u * (uint64_t)(a->floatvector->length > 0 ? a->floatvector->length : 0);
            break;
        case EXR_ATTR_PREVIEW:
            total += 4u * (uint64_t)a->preview->width * a->preview->height;
            break;
        case EXR_ATTR_OPAQUE:
            total += (uint64_t)(a->opaque->size > 0 ? a->opaque->size : 0);
            break;
        default:
            break;
        }
    }
    return total;
}

/* BCD SMPTE time code (time_and_flags) as hh:mm:ss:ff. */
static void timecode_text(uint32_t t, char *out, size_t size)
{
    unsigned ff = (t & 0x0f) + 10 * ((t >> 4) & 0x03);
    unsigned ss = ((t >> 8) & 0x0f) + 10 * ((t >> 12) & 0x07);
    unsigned mm = ((t >> 16) & 0x0f) + 10 * ((t >> 20) & 0x07);
    unsigned hh = ((t >> 24) & 0x0f) + 10 * ((t >> 28) & 0x03);
    snprintf(out, size, "%02u:%02u:%02u%c%02u", hh, mm, ss, (t & 0x40) ? ';' : ':', ff);
}

typedef struct reader {
    char msg[MSG_BYTES]; /* OpenEXR's last message */
    cm_ctx *ctx;
    const char *path;
    const cm_limits *limits;
    exr_io io;
    exr_context_t src;
    exr_meta *m;
    cm_image *img;
    chunk_ref *refs;
    uint8_t *buf;
    size_t cap;
    tables t;
} reader;

/* Check every part against the limits, choose the part to mark, and note
 * what `info` shows. */
static int survey(reader *r)
{
    exr_meta *m = r->m;
    exr_result_t rv;
    int nparts = 0, deep = 0;
    uint64_t chunks = 0, meta_bytes = 0;

    if ((rv = exr_get_count(r->src, &nparts)) != EXR_ERR_SUCCESS)
        return exr_fail(r->ctx, r->path, &r->io, rv, 0, "parts");
    if (nparts <= 0)
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt EXR: no parts", r->path);
    m->nparts = nparts;
    m->part = -1;
    m->ripmap_part = -1;
    for (int p = 0; p < nparts; p++) {
        exr_storage_t st;
        exr_attr_box2i_t dw;
        int32_t nc;
        const exr_attr_chlist_t *cl = NULL;
        if ((rv = exr_get_storage(r->src, p, &st)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_data_window(r->src, p, &dw)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_chunk_count(r->src, p, &nc)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_channels(r->src, p, &cl)) != EXR_ERR_SUCCESS)
            return exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
        int64_t w = (int64_t)dw.max.x - dw.min.x + 1, h = (int64_t)dw.max.y - dw.min.y + 1;
        if (w <= 0 || h <= 0 || nc <= 0 || !cl)
            return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt EXR: part %d has an empty "
                             "data window or no chunks", r->path, p);
        /* the pixel limit holds for every part: the library sizes its
         * chunk tables from the data window */
        if ((uint64_t)w * (uint64_t)h > r->limits->max_pixels)
            return cm__error(r->ctx, CM_E_LIMIT,
                             "%s: EXR part %d is %lld x %lld pixels, above the limit of "
                             "%llu pixels", r->path, p, (long long)w, (long long)h,
                             (unsigned long long)r->limits->max_pixels);
        if (st == EXR_STORAGE_TILED || st == EXR_STORAGE_DEEP_TILED) {
            uint32_t tx, ty;
            exr_tile_level_mode_t lm;
            exr_tile_round_mode_t rm;
            if ((rv = exr_get_tile_descriptor(r->src, p, &tx, &ty, &lm, &rm)) !=
                EXR_ERR_SUCCESS)
                return exr_fail(r->ctx, r->path, &r->io, rv, 0, "tile description");
            /* OpenEXR 3.1.5's Core library computes the wrong chunk index
             * for ripmap levels past the first row: they cannot be copied,
             * but the full-resolution level reads (verify needs no more) */
            if (lm == EXR_TILE_RIPMAP_LEVELS && m->ripmap_part < 0)
                m->ripmap_part = p;
        }
        chunks += (uint64_t)nc;
        meta_bytes += attribute_bytes(r->src, p);
        if (st == EXR_STORAGE_DEEP_SCANLINE || st == EXR_STORAGE_DEEP_TILED) {
            deep++;
        } else if (m->part < 0 && (st == EXR_STORAGE_SCANLINE || st == EXR_STORAGE_TILED) &&
                   pick_channels(cl, m)) {
            m->part = p;
            m->storage = st;
            m->dw = dw;
            m->width = (int)w;
            m->height = (int)h;
        }
    }
    /* each chunk has an 8-byte entry in the offset tables */
    if (chunks > r->io.len / 8)
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt EXR: %llu chunks cannot fit in "
                         "%zu bytes", r->path, (unsigned long long)chunks, r->io.len);
    if (meta_bytes > r->limits->max_meta_bytes)
        return cm__error(r->ctx, CM_E_LIMIT, "%s: EXR header attributes take %llu bytes, "
                         "above the limit of %llu bytes", r->path,
                         (unsigned long long)meta_bytes,
                         (unsigned long long)r->limits->max_meta_bytes);
    if (m->part < 0) {
        if (deep == nparts)
            return cm__error(r->ctx, CM_E_UNSUPPORTED, "%s: EXR holds only deep data, "
                             "which cannot be marked; flatten it first", r->path);
        return cm__error(r->ctx, CM_E_UNSUPPORTED, "%s: EXR has no part with half or float "
                         "R, G, B or Y channels to mark; add a beauty part", r->path);
    }
    if ((rv = exr_get_compression(r->src, m->part, &m->compression)) != EXR_ERR_SUCCESS)
        return exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
    /* other parts are copied without decoding, whatever their method */
    if (m->compression == EXR_COMPRESSION_DWAA || m->compression == EXR_COMPRESSION_DWAB)
        return cm__error(r->ctx, CM_E_UNSUPPORTED, "%s: EXR part %d is %s-compressed, which "
                         "OpenEXR 3.1's Core library cannot decode; re-save it with ZIP or "
                         "PIZ compression", r->path, m->part,
                         m->compression == EXR_COMPRESSION_DWAA ? "DWAA" : "DWAB");

    /* description for info */
    const exr_attr_chlist_t *cl = NULL;
    const char *name = NULL;
    exr_get_channels(r->src, m->part, &cl);
    if (exr_get_name(r->src, m->part, &name) != EXR_ERR_SUCCESS)
        name = NULL; /* single-part files need no name */
    snprintf(m->part_name, sizeof(m->part_name), "%s", name ? name : "(unnamed)");
    if ((rv = exr_get_lineorder(r->src, m->part, &m->lineorder)) != EXR_ERR_SUCCESS ||
        (rv = exr_get_display_window(r->src, m->part, &m->disp)) != EXR_ERR_SUCCESS)
        return exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
    if (exr_attr_get_chromaticities(r->src, m->part, "chromaticities", &m->chroma) ==
        EXR_ERR_SUCCESS)
        m->has_chroma = 1;
    if (exr_attr_get_timecode(r->src, m->part, "timeCode", &m->timecode) == EXR_ERR_SUCCESS)
        m->has_timecode = 1;
    clear_message(); /* the lookups above may have noted a missing attribute */
    snprintf(m->layout, sizeof(m->layout), "scanline");
    if (m->storage == EXR_STORAGE_TILED) {
        uint32_t tx, ty;
        exr_tile_level_mode_t lm;
        exr_tile_round_mode_t rm;
        int32_t tw, th;
        if ((rv = exr_get_tile_descriptor(r->src, m->part, &tx, &ty, &lm, &rm)) !=
                EXR_ERR_SUCCESS ||
            (rv = exr_get_tile_sizes(r->src, m->part, 0, 0, &tw, &th)) != EXR_ERR_SUCCESS)
            return exr_fail(r->ctx, r->path, &r->io, rv, 0, "tile description");
        if (tw <= 0 || th <= 0)
            return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt EXR: bad tile size", r->path);
        m->tile_w = tw;
        m->tile_h = th;
        snprintf(m->layout, sizeof(m->layout), "tiled %ux%u %s", tx, ty,
                 lm == EXR_TILE_MIPMAP_LEVELS   ? "mipmap"
                 : lm == EXR_TILE_RIPMAP_LEVELS ? "ripmap"
                                                : "one level");
    }
    m->bit_depth = 16;
    for (int k = 0; k < m->ncolour; k++)
        if (!m->half[k])
            m->bit_depth = 32;
    for (int i = 0; cl && i < cl->num_channels; i++) {
        char t[48];
        snprintf(t, sizeof(t), "%s", pixel_type_name(cl->entries[i].pixel_type));
        if (cl->entries[i].x_sampling != 1 || cl->entries[i].y_sampling != 1) {
            size_t l = strlen(t);
            snprintf(t + l, sizeof(t) - l, "/%dx%d", cl->entries[i].x_sampling,
                     cl->entries[i].y_sampling);
        }
        append(m->channels, sizeof(m->channels), i ? ",%s:%s" : "%s:%s",
               cl->entries[i].name.str ? cl->entries[i].name.str : "?", t);
    }
    for (int p = 0; p < nparts; p++) {
        exr_storage_t st;
        const char *pn = NULL;
        if (p == m->part || exr_get_storage(r->src, p, &st) != EXR_ERR_SUCCESS)
            continue;
        if (exr_get_name(r->src, p, &pn) != EXR_ERR_SUCCESS)
            pn = NULL;
        append(m->others, sizeof(m->others), m->others[0] ? ",%s (%s)" : "%s (%s)",
               pn ? pn : "(unnamed)", storage_name(st));
    }
    clear_message();
    return CM_OK;
}

/* Every chunk of every part must lie inside the file: the writer copies
 * them all, and a truncated or damaged file is refused when read rather
 * than when written. */
static int check_chunks(reader *r)
{
    for (int p = 0; p < r->m->nparts; p++) {
        exr_storage_t st;
        chunk_ref *refs = NULL;
        int32_t n = 0;
        exr_result_t rv = exr_get_storage(r->src, p, &st);
        int level0 = 0; /* ripmap: only the full-resolution level is indexed right */
        if (rv == EXR_ERR_SUCCESS && (st == EXR_STORAGE_TILED || st == EXR_STORAGE_DEEP_TILED)) {
            uint32_t tx, ty;
            exr_tile_level_mode_t lm;
            exr_tile_round_mode_t rm;
            rv = exr_get_tile_descriptor(r->src, p, &tx, &ty, &lm, &rm);
            level0 = lm == EXR_TILE_RIPMAP_LEVELS;
        }
        if (rv == EXR_ERR_SUCCESS)
            rv = list_chunks(r->src, p, st, level0, &refs, &n);
        for (int32_t i = 0; rv == EXR_ERR_SUCCESS && i < n; i++) {
            exr_chunk_info_t ci;
            if ((rv = chunk_info(r->src, p, st, &refs[i], &ci)) != EXR_ERR_SUCCESS)
                break;
            const uint64_t len = r->io.len;
            if (ci.packed_size == 0 || ci.data_offset > len ||
                ci.packed_size > len - ci.data_offset ||
                ci.sample_count_data_offset > len ||
                ci.sample_count_table_size > len - ci.sample_count_data_offset) {
                free(refs);
                return cm__error(r->ctx, CM_E_CORRUPT, "%s: truncated or corrupt EXR: chunk %d "
                                 "of part %d lies outside the file", r->path, (int)i, p);
            }
        }
        free(refs);
        if (rv != EXR_ERR_SUCCESS)
            return exr_fail(r->ctx, r->path, &r->io, rv, 0, "chunk table");
    }
    clear_message();
    return CM_OK;
}

/* Decode the marked part's full-resolution level into the image. */
static int read_pixels(reader *r)
{
    exr_meta *m = r->m;
    cm_image *img = r->img;
    int32_t n;
    exr_result_t rv;

    if ((rv = list_chunks(r->src, m->part, m->storage, 1, &r->refs, &n)) != EXR_ERR_SUCCESS)
        return exr_fail(r->ctx, r->path, &r->io, rv, 0, "chunk layout");
    const int nc = img->channels;
    for (int32_t i = 0; i < n; i++) {
        exr_chunk_info_t ci;
        exr_decode_pipeline_t dec = EXR_DECODE_PIPELINE_INITIALIZER;
        int x0, y0, idx[CH_MAX];
        if ((rv = chunk_info(r->src, m->part, m->storage, &r->refs[i], &ci)) !=
                EXR_ERR_SUCCESS ||
            (rv = decode_chunk(r->src, m, &ci, 0, &dec, &r->buf, &r->cap)) !=
                EXR_ERR_SUCCESS) {
            exr_decoding_destroy(r->src, &dec);
            return exr_fail(r->ctx, r->path, &r->io, rv, 0, "pixel data");
        }
        int bad = chunk_origin(m, &r->refs[i], &ci, &x0, &y0) < 0;
        for (int k = 0; !bad && k < CH_MAX; k++) {
            idx[k] = m->names[k][0] ? coding_channel(dec.channels, dec.channel_count,
                                                     m->names[k])
                                    : -1;
            if (m->names[k][0] &&
                (idx[k] < 0 || dec.channels[idx[k]].width != ci.width ||
                 dec.channels[idx[k]].height != ci.height))
                bad = 1;
        }
        if (bad) {
            exr_decoding_destroy(r->src, &dec);
            return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt EXR: chunk %d does not match "
                             "the data window", r->path, (int)i);
        }
        for (int k = 0; k < CH_MAX; k++) {
            if (idx[k] < 0)
                continue;
            const exr_coding_channel_info_t *c = &dec.channels[idx[k]];
            const int half = c->data_type == EXR_PIXEL_HALF, bpe = c->bytes_per_element;
            const int slot = k == CH_A ? nc - 1 : k;
            for (int y = 0; y < ci.height; y++) {
                const uint8_t *s = c->decode_to_ptr + (size_t)y * (size_t)c->user_line_stride;
                uint8_t *row = img->data + (size_t)(y0 + y) * (size_t)img->stride;
                uint16_t *d = (uint16_t *)(void *)row + (size_t)x0 * (size_t)nc + (size_t)slot;
                for (int x = 0; x < ci.width; x++, s += bpe, d += nc)
                    *d = k == CH_A ? encode_alpha(sample_value(s, half))
                                   : sample_code(&r->t, s, half);
            }
        }
        exr_decoding_destroy(r->src, &dec);
    }
    return CM_OK;
}

static int read_exr(cm_ctx *ctx, const char *path, FILE *fp, const cm_limits *limits,
                    cm_image **out)
{
    reader r;
    exr_result_t rv;
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "exr read: no output given");
    *out = NULL;
    if (!path || !fp || !limits)
        return cm__error(ctx, CM_E_INVAL, "exr read: invalid argument");
    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.path = path;
    r.limits = limits;
    char *prev_msg = messages_to(r.msg);

    if (!(r.m = calloc(1, sizeof(*r.m)))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory reading EXR", path);
        goto fail;
    }
    if ((ret = slurp(ctx, path, fp, limits, &r.m->file, &r.m->file_len)) < 0)
        goto fail;
    if (r.m->file_len < EXR_MAGIC_BYTES || memcmp(r.m->file, exr_magic, EXR_MAGIC_BYTES)) {
        ret = cm__error(ctx, CM_E_FORMAT, "%s: not an EXR file", path);
        goto fail;
    }
    r.io.buf = r.m->file;
    r.io.len = r.m->file_len;
    if ((rv = open_source(&r.io, path, &r.src)) != EXR_ERR_SUCCESS) {
        ret = exr_fail(ctx, path, &r.io, rv, 0, "header");
        goto fail;
    }
    if ((ret = survey(&r)) < 0 || (ret = check_chunks(&r)) < 0)
        goto fail;
    if ((ret = cm__image_alloc(&r.img, r.m->width, r.m->height,
                               r.m->ncolour + r.m->has_alpha, r.m->has_alpha, 16,
                               limits->max_pixels)) < 0) {
        ret = ret == CM_E_LIMIT
                  ? cm__error(ctx, ret, "%s: EXR image is %d x %d pixels, above the limit",
                              path, r.m->width, r.m->height)
                  : cm__error(ctx, ret, "%s: cannot allocate a %d x %d image", path,
                              r.m->width, r.m->height);
        goto fail;
    }
    if (tables_init(&r.t, 0) < 0) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory reading EXR", path);
        goto fail;
    }
    if ((ret = read_pixels(&r)) < 0)
        goto fail;
    exr_finish(&r.src);
    if ((ret = cm__image_attach_meta(r.img, &cm__format_exr, r.m)) < 0) {
        r.m = NULL; /* freed by attach */
        ret = cm__error(ctx, ret, "%s: out of memory", path);
        goto fail;
    }
    r.m = NULL;
    *out = r.img;
    r.img = NULL;
    ret = CM_OK;

fail:
    if (r.src)
        exr_finish(&r.src);
    tables_free(&r.t);
    free(r.refs);
    free(r.buf);
    cm_image_free(&r.img);
    free_exr_meta(r.m);
    messages_to(prev_msg);
    return ret;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct writer {
    char msg[MSG_BYTES]; /* OpenEXR's last message */
    cm_ctx *ctx;
    const char *path;
    const cm_image *img;
    const exr_meta *m; /* NULL: a plain EXR of the pixels */
    exr_io in, out;
    exr_context_t src, dst;
    chunk_ref *refs;
    uint8_t *packed, *table; /* raw chunk copies */
    size_t packed_cap, table_cap;
    uint8_t *buf; /* decoded chunk */
    size_t cap;
    tables t;
    int nparts;      /* of the source, for the chunk order */
    int32_t *counts; /* chunks per part */
    int *reverse;    /* 1: a scanline part in decreasing y */
} writer;

static exr_result_t grow(uint8_t **buf, size_t *cap, uint64_t need)
{
    if (need <= *cap)
        return EXR_ERR_SUCCESS;
    if (need > SIZE_MAX)
        return EXR_ERR_OUT_OF_MEMORY;
    uint8_t *n = realloc(*buf, (size_t)need);
    if (!n)
        return EXR_ERR_OUT_OF_MEMORY;
    *buf = n;
    *cap = (size_t)need;
    return EXR_ERR_SUCCESS;
}

/* Copy one chunk's stored bytes from the source to the output. */
static int copy_chunk(writer *w, int part, exr_storage_t st, const chunk_ref *r,
                      const exr_chunk_info_t *ci)
{
    exr_result_t rv;
    const int deep = st == EXR_STORAGE_DEEP_SCANLINE || st == EXR_STORAGE_DEEP_TILED;
    /* sizes come from the file: never allocate more than it holds */
    if (ci->packed_size == 0 || ci->packed_size > w->in.len ||
        ci->sample_count_table_size > w->in.len)
        return cm__error(w->ctx, CM_E_CORRUPT, "%s: source EXR part %d has a chunk of "
                         "impossible size", w->path, part);
    if ((rv = grow(&w->packed, &w->packed_cap, ci->packed_size)) != EXR_ERR_SUCCESS ||
        (deep && (rv = grow(&w->table, &w->table_cap,
                            ci->sample_count_table_size ? ci->sample_count_table_size
                                                        : 1)) != EXR_ERR_SUCCESS))
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "copy");
    if (deep)
        rv = exr_read_deep_chunk(w->src, part, ci, w->packed, w->table);
    else
        rv = exr_read_chunk(w->src, part, ci, w->packed);
    if (rv != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->in, rv, 0, "source chunk");
    switch (st) {
    case EXR_STORAGE_SCANLINE:
        rv = exr_write_scanline_chunk(w->dst, part, r->y, w->packed, ci->packed_size);
        break;
    case EXR_STORAGE_TILED:
        rv = exr_write_tile_chunk(w->dst, part, r->tx, r->ty, r->lx, r->ly, w->packed,
                                  ci->packed_size);
        break;
    case EXR_STORAGE_DEEP_SCANLINE:
        rv = exr_write_deep_scanline_chunk(w->dst, part, r->y, w->packed, ci->packed_size,
                                           ci->unpacked_size, w->table,
                                           ci->sample_count_table_size);
        break;
    default:
        rv = exr_write_deep_tile_chunk(w->dst, part, r->tx, r->ty, r->lx, r->ly, w->packed,
                                       ci->packed_size, ci->unpacked_size, w->table,
                                       ci->sample_count_table_size);
        break;
    }
    if (rv != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "chunk copy");
    return CM_OK;
}

/* Apply the image's changes to one decoded chunk of the marked part (see
 * the file comment). Returns 1 if any stored bits changed. */
static int mark_chunk(writer *w, exr_decode_pipeline_t *dec, const int *idx, int x0, int y0,
                      int cw, int ch)
{
    const cm_image *img = w->img;
    const exr_meta *m = w->m;
    const int nc = img->channels;
    int dirty = 0;
    for (int k = 0; k < m->ncolour; k++) {
        exr_coding_channel_info_t *c = &dec->channels[idx[k]];
        const int half = c->data_type == EXR_PIXEL_HALF, bpe = c->bytes_per_element;
        for (int y = 0; y < ch; y++) {
            uint8_t *s = c->decode_to_ptr + (size_t)y * (size_t)c->user_line_stride;
            const uint16_t *u = (const uint16_t *)(const void *)(img->data +
                                                                 (size_t)(y0 + y) *
                                                                     (size_t)img->stride) +
                                (size_t)x0 * (size_t)nc + (size_t)k;
            for (int x = 0; x < cw; x++, s += bpe, u += nc) {
                const uint16_t e = sample_code(&w->t, s, half);
                if (*u == e)
                    continue; /* unchanged: keep the stored bits */
                const float v = sample_value(s, half);
                if (!isfinite(v))
                    continue; /* no linear step to take from inf or NaN */
                const double nv = (double)v + (w->t.dec[*u] - w->t.dec[e]);
                if (half) {
                    uint16_t old, h = float_to_half((float)nv);
                    memcpy(&old, s, 2);
                    if (h != old) {
                        memcpy(s, &h, 2);
                        dirty = 1;
                    }
                } else {
                    float f = (float)nv;
                    if (memcmp(&f, s, 4)) {
                        memcpy(s, &f, 4);
                        dirty = 1;
                    }
                }
            }
        }
    }
    return dirty;
}

/* Compress a decoded chunk of the marked part into the output. */
static int encode_chunk(writer *w, const chunk_ref *r, const exr_decode_pipeline_t *dec)
{
    const exr_meta *m = w->m;
    exr_chunk_info_t wci;
    exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
    exr_result_t rv;

    if (m->storage == EXR_STORAGE_SCANLINE)
        rv = exr_write_scanline_chunk_info(w->dst, m->part, r->y, &wci);
    else
        rv = exr_write_tile_chunk_info(w->dst, m->part, r->tx, r->ty, r->lx, r->ly, &wci);
    if (rv == EXR_ERR_SUCCESS)
        rv = exr_encoding_initialize(w->dst, m->part, &wci, &enc);
    for (int i = 0; rv == EXR_ERR_SUCCESS && i < enc.channel_count; i++) {
        exr_coding_channel_info_t *c = &enc.channels[i];
        int j = coding_channel(dec->channels, dec->channel_count, c->channel_name);
        if (j < 0 || dec->channels[j].width != c->width ||
            dec->channels[j].height != c->height || dec->channels[j].data_type != c->data_type) {
            rv = EXR_ERR_INCORRECT_CHUNK; /* the output part is a copy of the source's */
            break;
        }
        /* channels without samples in this chunk still need a pointer */
        c->encode_from_ptr = dec->channels[j].decode_to_ptr ? dec->channels[j].decode_to_ptr
                                                            : w->buf;
        c->user_pixel_stride = c->bytes_per_element;
        c->user_line_stride = c->width * c->bytes_per_element;
        c->user_bytes_per_element = c->bytes_per_element;
        c->user_data_type = c->data_type;
    }
    if (rv == EXR_ERR_SUCCESS)
        rv = exr_encoding_choose_default_routines(w->dst, m->part, &enc);
    if (rv == EXR_ERR_SUCCESS)
        rv = exr_encoding_run(w->dst, m->part, &enc);
    exr_encoding_destroy(w->dst, &enc);
    if (rv != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "marked chunk");
    return CM_OK;
}

static int write_part(writer *w, int part)
{
    const exr_meta *m = w->m;
    exr_storage_t st;
    exr_result_t rv;
    int32_t n;
    int ret;

    if ((rv = exr_get_storage(w->src, part, &st)) != EXR_ERR_SUCCESS ||
        (rv = list_chunks(w->src, part, st, 0, &w->refs, &n)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->in, rv, 0, "chunk layout");
    for (int32_t i = 0; i < n; i++) {
        const chunk_ref *r = &w->refs[i];
        exr_chunk_info_t ci;
        if ((rv = chunk_info(w->src, part, st, r, &ci)) != EXR_ERR_SUCCESS) {
            ret = exr_fail(w->ctx, w->path, &w->in, rv, 0, "source chunk");
            goto done;
        }
        if (part != m->part || r->lx != 0 || r->ly != 0) {
            if ((ret = copy_chunk(w, part, st, r, &ci)) < 0)
                goto done;
            continue;
        }
        /* the marked part's full-resolution level */
        exr_decode_pipeline_t dec = EXR_DECODE_PIPELINE_INITIALIZER;
        int x0, y0, idx[CH_MAX], bad = 0;
        if ((rv = decode_chunk(w->src, m, &ci, 1, &dec, &w->buf, &w->cap)) !=
            EXR_ERR_SUCCESS) {
            exr_decoding_destroy(w->src, &dec);
            ret = exr_fail(w->ctx, w->path, &w->in, rv, 0, "source pixels");
            goto done;
        }
        bad = chunk_origin(m, r, &ci, &x0, &y0) < 0;
        for (int k = 0; !bad && k < m->ncolour; k++)
            if ((idx[k] = coding_channel(dec.channels, dec.channel_count, m->names[k])) < 0 ||
                dec.channels[idx[k]].width != ci.width || dec.channels[idx[k]].height != ci.height)
                bad = 1;
        if (bad) {
            exr_decoding_destroy(w->src, &dec);
            ret = cm__error(w->ctx, CM_E_CORRUPT, "%s: source EXR chunk %d does not match its "
                            "data window", w->path, (int)i);
            goto done;
        }
        if (mark_chunk(w, &dec, idx, x0, y0, ci.width, ci.height))
            ret = encode_chunk(w, r, &dec);
        else
            ret = copy_chunk(w, part, st, r, &ci); /* nothing changed: same bytes */
        exr_decoding_destroy(w->src, &dec);
        if (ret < 0)
            goto done;
    }
    ret = CM_OK;
done:
    free(w->refs);
    w->refs = NULL;
    return ret;
}

static exr_result_t start_output(writer *w)
{
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = error_cb;
    init.user_data = &w->out;
    init.write_fn = file_write;
    return exr_start_write(&w->dst, w->path, EXR_WRITE_FILE_DIRECTLY, &init);
}

/*
 * Attributes of types OpenEXR does not know, copied as their stored bytes.
 * exr_copy_unset_attributes copies every other attribute, but OpenEXR 3.1.5
 * fails on these ("the opaque type is not actually a built-in type") and
 * stops; it skips attributes already set, so these go first.
 */
static exr_result_t copy_unknown_attributes(writer *w, int src_part, int dst_part)
{
    int32_t n = 0;
    exr_result_t rv = exr_get_attribute_count(w->src, src_part, &n);
    for (int32_t i = 0; rv == EXR_ERR_SUCCESS && i < n; i++) {
        const exr_attribute_t *a = NULL;
        if ((rv = exr_get_attribute_by_index(w->src, src_part, EXR_ATTR_LIST_FILE_ORDER, i,
                                             &a)) != EXR_ERR_SUCCESS)
            break;
        if (a->type == EXR_ATTR_OPAQUE)
            rv = exr_attr_set_user(w->dst, dst_part, a->name, a->type_name, a->opaque->size,
                                   a->opaque->packed_data);
    }
    return rv;
}

/* Scanline parts stored in decreasing y: their chunks are reordered after
 * the Core writer is done (formats/exr_order.c), so the file is built in
 * memory first. */
static int plan_order(writer *w, int nparts)
{
    int any = 0;
    if (!(w->counts = cm__calloc_array((size_t)nparts, sizeof(*w->counts))) ||
        !(w->reverse = cm__calloc_array((size_t)nparts, sizeof(*w->reverse))))
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing EXR", w->path);
    w->nparts = nparts;
    for (int p = 0; p < nparts; p++) {
        exr_storage_t st;
        exr_lineorder_t lo;
        exr_result_t rv;
        if ((rv = exr_get_storage(w->src, p, &st)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_lineorder(w->src, p, &lo)) != EXR_ERR_SUCCESS ||
            (rv = exr_get_chunk_count(w->src, p, &w->counts[p])) != EXR_ERR_SUCCESS)
            return exr_fail(w->ctx, w->path, &w->in, rv, 0, "source part");
        w->reverse[p] = lo == EXR_LINEORDER_DECREASING_Y &&
                        (st == EXR_STORAGE_SCANLINE || st == EXR_STORAGE_DEEP_SCANLINE);
        any |= w->reverse[p];
    }
    w->out.to_mem = any;
    return CM_OK;
}

/* Put the decreasing-y parts' chunks in their order and send the file to
 * its stream. */
static int flush_reordered(writer *w)
{
    int r = cm__exr_reverse_chunks(w->out.mem, w->out.mem_len, w->nparts, w->counts,
                                   w->reverse);
    if (r == CM_E_NOMEM)
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing EXR", w->path);
    if (r < 0)
        return cm__error(w->ctx, CM_E_INTERNAL, "%s: cannot put the decreasing-y chunks "
                         "of the EXR in order", w->path);
    if (fwrite(w->out.mem, 1, w->out.mem_len, w->out.fp) != w->out.mem_len)
        return cm__error(w->ctx, CM_E_IO, "%s: cannot write output: %s", w->path,
                         strerror(errno ? errno : EIO));
    return CM_OK;
}

/* Every part of the source, the marked one with the image's changes. */
static int write_faithful(writer *w)
{
    const exr_meta *m = w->m;
    exr_result_t rv;
    int nparts, ret;

    if (m->ripmap_part >= 0)
        return cm__error(w->ctx, CM_E_UNSUPPORTED, "%s: the source EXR's part %d has ripmap "
                         "tiles, which OpenEXR 3.1's Core library cannot copy (it reads "
                         "them, so verify works); re-save it with one level or mipmaps",
                         w->path, m->ripmap_part);
    w->in.buf = m->file;
    w->in.len = m->file_len;
    if ((rv = open_source(&w->in, w->path, &w->src)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->in, rv, 0, "source header");
    if ((rv = exr_get_count(w->src, &nparts)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->in, rv, 0, "source parts");
    if ((ret = plan_order(w, nparts)) < 0)
        return ret;
    if ((rv = start_output(w)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "start");
    if ((m->file[5] & EXR_FLAG5_LONG_NAMES) &&
        (rv = exr_set_longname_support(w->dst, 1)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    for (int p = 0; p < nparts; p++) {
        const char *name = NULL;
        exr_storage_t st;
        int idx;
        if (exr_get_name(w->src, p, &name) != EXR_ERR_SUCCESS)
            name = NULL;
        if ((rv = exr_get_storage(w->src, p, &st)) != EXR_ERR_SUCCESS)
            return exr_fail(w->ctx, w->path, &w->in, rv, 0, "source part");
        if ((rv = exr_add_part(w->dst, name, st, &idx)) != EXR_ERR_SUCCESS ||
            (rv = copy_unknown_attributes(w, p, idx)) != EXR_ERR_SUCCESS ||
            (rv = exr_copy_unset_attributes(w->dst, idx, w->src, p)) != EXR_ERR_SUCCESS)
            return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
        if (idx != p)
            return cm__error(w->ctx, CM_E_INTERNAL, "%s: EXR part order changed", w->path);
    }
    if ((rv = exr_write_header(w->dst)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    for (int p = 0; p < nparts; p++)
        if ((ret = write_part(w, p)) < 0)
            return ret;
    return CM_OK;
}

/* One scanline half part of the pixels, decoded to linear light. */
static int write_plain(writer *w)
{
    const cm_image *img = w->img;
    const int nc = img->channels, ncol = nc - (img->has_alpha ? 1 : 0);
    static const char *const rgba[4] = {"R", "G", "B", "A"}, *const ya[2] = {"Y", "A"};
    const char *const *names = ncol == 3 ? rgba : ya;
    exr_result_t rv;
    int part, ret = CM_OK;
    int32_t lpc;
    exr_encode_pipeline_t enc = EXR_ENCODE_PIPELINE_INITIALIZER;
    int started = 0;

    if (img->width > INT32_MAX / 2) /* line strides are int32 */
        return cm__error(w->ctx, CM_E_LIMIT, "%s: image too wide for EXR", w->path);
    if ((rv = start_output(w)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "start");
    if ((rv = exr_add_part(w->dst, NULL, EXR_STORAGE_SCANLINE, &part)) != EXR_ERR_SUCCESS ||
        (rv = exr_initialize_required_attr_simple(w->dst, part, img->width, img->height,
                                                  PLAIN_COMPRESSION)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    for (int k = 0; k < nc; k++) {
        const char *name = k == ncol ? "A" : names[k];
        /* colour is perceptually logarithmic, alpha linear (a hint for
         * lossy codecs) */
        if ((rv = exr_add_channel(w->dst, part, name, EXR_PIXEL_HALF,
                                  k == ncol ? EXR_PERCEPTUALLY_LINEAR
                                            : EXR_PERCEPTUALLY_LOGARITHMIC,
                                  1, 1)) != EXR_ERR_SUCCESS)
            return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    }
    if ((rv = exr_write_header(w->dst)) != EXR_ERR_SUCCESS ||
        (rv = exr_get_scanlines_per_chunk(w->dst, part, &lpc)) != EXR_ERR_SUCCESS)
        return exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    if (lpc <= 0)
        return cm__error(w->ctx, CM_E_INTERNAL, "%s: bad EXR chunk height", w->path);

    /* planar half rows of one chunk: nc planes of lpc x width */
    size_t plane, total;
    if (cm__mul_size((size_t)img->width, (size_t)lpc, &plane) ||
        cm__mul_size(plane, (size_t)nc * 2, &total) ||
        grow(&w->buf, &w->cap, total) != EXR_ERR_SUCCESS)
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing EXR", w->path);
    uint16_t *planes = (uint16_t *)(void *)w->buf;
    for (int y0 = 0; y0 < img->height; y0 += lpc) {
        const int rows = img->height - y0 < lpc ? img->height - y0 : lpc;
        for (int y = 0; y < rows; y++) {
            const uint8_t *row = img->data + (size_t)(y0 + y) * (size_t)img->stride;
            for (int x = 0; x < img->width; x++)
                for (int k = 0; k < nc; k++) {
                    size_t i = (size_t)x * (size_t)nc + (size_t)k;
                    unsigned u = img->bit_depth == 16
                                     ? ((const uint16_t *)(const void *)row)[i]
                                     : row[i] * 257u;
                    double v = k == ncol ? u / 65535.0 : w->t.dec[u];
                    planes[(size_t)k * plane + (size_t)y * (size_t)img->width + (size_t)x] =
                        float_to_half((float)v);
                }
        }
        exr_chunk_info_t ci;
        if ((rv = exr_write_scanline_chunk_info(w->dst, part, y0, &ci)) != EXR_ERR_SUCCESS ||
            (rv = started ? exr_encoding_update(w->dst, part, &ci, &enc)
                          : exr_encoding_initialize(w->dst, part, &ci, &enc)) !=
                EXR_ERR_SUCCESS)
            break;
        started = 1;
        for (int i = 0; i < enc.channel_count; i++) {
            exr_coding_channel_info_t *c = &enc.channels[i];
            int k = 0;
            while (k < nc && strcmp(c->channel_name, k == ncol ? "A" : names[k]))
                k++;
            c->encode_from_ptr = (const uint8_t *)(planes + (size_t)(k < nc ? k : 0) * plane);
            c->user_pixel_stride = 2;
            c->user_line_stride = 2 * img->width;
            c->user_bytes_per_element = 2;
            c->user_data_type = EXR_PIXEL_HALF;
        }
        if ((rv = exr_encoding_choose_default_routines(w->dst, part, &enc)) !=
                EXR_ERR_SUCCESS ||
            (rv = exr_encoding_run(w->dst, part, &enc)) != EXR_ERR_SUCCESS)
            break;
    }
    if (rv != EXR_ERR_SUCCESS)
        ret = exr_fail(w->ctx, w->path, &w->out, rv, 1, "pixels");
    if (started)
        exr_encoding_destroy(w->dst, &enc);
    return ret;
}

static int write_exr(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
{
    writer w;
    int ret;

    if (!path)
        path = "(output)";
    if (!img || !fp)
        return cm__error(ctx, CM_E_INVAL, "%s: exr write: invalid argument", path);
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "%s: invalid image", path);

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.path = path;
    w.img = img;
    w.out.fp = fp;
    if (img->meta && img->meta->format == &cm__format_exr)
        w.m = img->meta->priv;
    if (w.m && (img->width != w.m->width || img->height != w.m->height ||
                img->channels != w.m->ncolour + w.m->has_alpha || img->bit_depth != 16))
        return cm__error(ctx, CM_E_INVAL, "%s: image no longer matches its EXR source", path);
    if (tables_init(&w.t, 1) < 0)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing EXR", path);

    char *prev_msg = messages_to(w.msg);
    ret = w.m ? write_faithful(&w) : write_plain(&w);
    if (w.dst) {
        /* writes the chunk offset tables */
        exr_result_t rv = exr_finish(&w.dst);
        if (ret == CM_OK && rv != EXR_ERR_SUCCESS)
            ret = exr_fail(ctx, path, &w.out, rv, 1, "finish");
    }
    if (ret == CM_OK && w.out.to_mem)
        ret = flush_reordered(&w);
    if (w.src)
        exr_finish(&w.src);
    tables_free(&w.t);
    free(w.refs);
    free(w.packed);
    free(w.table);
    free(w.buf);
    free(w.counts);
    free(w.reverse);
    free(w.out.mem);
    messages_to(prev_msg);
    return ret;
}

/* ---- info --------------------------------------------------------------- */

static void describe_exr(const cm_image *img, cm_image_info *info)
{
    static const char *const orders[3] = {"increasing_y", "decreasing_y", "random_y"};
    const exr_meta *m = img->meta->priv;

    snprintf(info->format, sizeof(info->format), "exr");
    snprintf(info->color_type, sizeof(info->color_type), "%s%s",
             m->ncolour == 3 ? "rgb" : "gray",
             m->has_alpha ? (m->ncolour == 3 ? "a" : "+alpha") : "");
    info->bit_depth = m->bit_depth;
    info->converted = 0;

    cm__info_add_tag(info, "compression", "%s", compression_name(m->compression));
    cm__info_add_tag(info, "parts", "%d", m->nparts);
    cm__info_add_tag(info, "part", "%s", m->part_name);
    cm__info_add_tag(info, "storage", "%s", m->layout);
    cm__info_add_tag(info, "pixel_types", "%s", m->channels);
    cm__info_add_tag(info, "line_order", "%s",
                     (unsigned)m->lineorder < 3 ? orders[m->lineorder] : "unknown");
    cm__info_add_tag(info, "data_window", "%d,%d - %d,%d", m->dw.min.x, m->dw.min.y,
                     m->dw.max.x, m->dw.max.y);
    cm__info_add_tag(info, "display_window", "%d,%d - %d,%d", m->disp.min.x, m->disp.min.y,
                     m->disp.max.x, m->disp.max.y);
    if (m->has_chroma) {
        const exr_attr_chromaticities_t *c = &m->chroma;
        cm__info_add_tag(info, "chromaticities",
                         "white %.4f,%.4f red %.4f,%.4f green %.4f,%.4f blue %.4f,%.4f",
                         c->white_x, c->white_y, c->red_x, c->red_y, c->green_x, c->green_y,
                         c->blue_x, c->blue_y);
    }
    if (m->has_timecode) {
        char tc[16];
        timecode_text(m->timecode.time_and_flags, tc, sizeof(tc));
        cm__info_add_tag(info, "timecode", "%s", tc);
    }
    if (m->others[0])
        cm__info_add_tag(info, "other_parts", "%s", m->others);
    /* the samples celmark marks are not the stored values */
    cm__info_add_tag(info, "encoding", "linear %s as 16-bit sRGB-encoded [0,1]",
                     m->bit_depth == 32 ? "float" : "half");
}

const cm__format cm__format_exr = {
    .name = "exr",
    .extensions = "exr",
    .probe = probe_exr,
    .read = read_exr,
    .write = write_exr,
    .meta_free = free_exr_meta,
    .info = describe_exr,
};
