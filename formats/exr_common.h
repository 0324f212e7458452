/*
 * OpenEXR reader and writer (OpenEXR Core C API, openexr.h): what the reader
 * (formats/exr_read.c) and the writer (formats/exr_write.c) share, defined
 * in formats/exr_common.c. Library-internal, not installed.
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
#ifndef CELMARK_FORMATS_EXR_COMMON_H
#define CELMARK_FORMATS_EXR_COMMON_H

#include "format.h"

#include <openexr.h>

#include <stdint.h>
#include <string.h>

/* ---- the display encoding ---------------------------------------------- */

/* Per-call tables (no global state): the encoding of every half, and the
 * linear value of every code. */
typedef struct tables {
    uint16_t *enc_half; /* 65536: half bits -> code */
    double *dec;        /* 65536: code -> linear, or NULL */
} tables;

/* A half's bits as the float of the same value (exact). */
CM__HIDDEN float cm__exr_half_to_float(uint16_t h);

/* Linear light -> 16-bit sRGB-encoded code value (see the file comment). */
CM__HIDDEN uint16_t cm__exr_encode_linear(double v);

/* Fill t's tables (dec only with_decode): CM_OK or CM_E_NOMEM. */
CM__HIDDEN int cm__exr_tables_init(tables *t, int with_decode);
CM__HIDDEN void cm__exr_tables_free(tables *t);

/* A native sample (half or float bits) as its value and its code. */
static inline float sample_value(const uint8_t *p, int half)
{
    if (half) {
        uint16_t h;
        memcpy(&h, p, 2);
        return cm__exr_half_to_float(h);
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
    return cm__exr_encode_linear(f);
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

/* OpenEXR's error handler: keeps the message for the one in the context. */
CM__HIDDEN void cm__exr_error_cb(exr_const_context_t c, exr_result_t code, const char *msg);

/* Send messages to buf (MSG_BYTES) from now on; returns the previous. */
CM__HIDDEN char *cm__exr_messages_to(char *buf);

/* Forget messages about expected failures (an absent attribute). */
CM__HIDDEN void cm__exr_clear_message(void);

/* An OpenEXR failure as a status and a one-line message. */
CM__HIDDEN int cm__exr_fail(cm_ctx *ctx, const char *path, const exr_io *io, exr_result_t rv,
                            int writing, const char *what);

/* A read context over the bytes in io (which must outlive it). */
CM__HIDDEN exr_result_t cm__exr_open_source(exr_io *io, const char *path, exr_context_t *src);

/* ---- the source's layout ------------------------------------------------ */

/* One chunk of a part, by its coordinates: scanline y, or tile and level. */
typedef struct chunk_ref {
    int32_t y, tx, ty, lx, ly;
} chunk_ref;

/* Every chunk of a part in chunk-table order (the order the writer needs
 * unless the line order is random), or only the full-resolution level. */
CM__HIDDEN exr_result_t cm__exr_list_chunks(exr_const_context_t c, int part, exr_storage_t st,
                                            int level0_only, chunk_ref **out, int32_t *nout);
/* Where chunk r of part is stored (exr_read_*_chunk_info). */
CM__HIDDEN exr_result_t cm__exr_chunk_info(exr_const_context_t c, int part, exr_storage_t st,
                                           const chunk_ref *r, exr_chunk_info_t *ci);

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

/* Index of the decoder/encoder channel named name, or -1. */
CM__HIDDEN int cm__exr_coding_channel(const exr_coding_channel_info_t *ch, int n, const char *name);

/*
 * Decode one chunk of the marked part into planar buffers in each channel's
 * native type. all = 0 decodes only the channels in m->names. On success
 * dec holds the layout (channels[i].decode_to_ptr, width, height) until
 * exr_decoding_destroy.
 */
CM__HIDDEN exr_result_t cm__exr_decode_chunk(exr_const_context_t src, const exr_meta *m,
                                             const exr_chunk_info_t *ci, int all,
                                             exr_decode_pipeline_t *dec, uint8_t **buf,
                                             size_t *cap);

/* Where a full-resolution chunk of the marked part sits in the image. */
CM__HIDDEN int cm__exr_chunk_origin(const exr_meta *m, const chunk_ref *r,
                                    const exr_chunk_info_t *ci, int *x0, int *y0);

/* The writer (formats/exr_write.c), cm__format_exr.write. */
CM__HIDDEN int cm__exr_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path);

#endif
