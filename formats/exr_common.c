/*
 * What the OpenEXR reader and writer share (declared, with the method, in
 * formats/exr_common.h): half floats and the display encoding, OpenEXR read
 * contexts over the file in memory and their error messages, and walking
 * and decoding the chunks of a part.
 */
#include "exr_common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- half floats -------------------------------------------------------- */

float cm__exr_half_to_float(uint16_t h)
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

/* ---- the display encoding ---------------------------------------------- */

uint16_t cm__exr_encode_linear(double v)
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

int cm__exr_tables_init(tables *t, int with_decode)
{
    memset(t, 0, sizeof(*t));
    if (!(t->enc_half = cm__malloc_array(65536, sizeof(uint16_t))))
        return CM_E_NOMEM;
    for (uint32_t h = 0; h < 65536; h++)
        t->enc_half[h] = cm__exr_encode_linear(cm__exr_half_to_float((uint16_t)h));
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

void cm__exr_tables_free(tables *t)
{
    free(t->enc_half);
    free(t->dec);
    memset(t, 0, sizeof(*t));
}

/* ---- I/O and errors ----------------------------------------------------- */

/*
 * Where cm__exr_error_cb puts OpenEXR's last message: a buffer of the
 * read_exr or cm__exr_write call running on this thread (set around all its
 * library calls). The callback cannot reach the context's user data instead:
 * OpenEXR 3.1 calls it with the context's lock held, and
 * exr_get_user_data takes that lock again (a deadlock).
 */
static _Thread_local char *tls_msg;

void cm__exr_error_cb(exr_const_context_t c, exr_result_t code, const char *msg)
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

char *cm__exr_messages_to(char *buf)
{
    char *old = tls_msg;
    tls_msg = buf;
    if (buf)
        buf[0] = '\0';
    return old;
}

void cm__exr_clear_message(void)
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

int cm__exr_fail(cm_ctx *ctx, const char *path, const exr_io *io, exr_result_t rv, int writing,
                 const char *what)
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

exr_result_t cm__exr_open_source(exr_io *io, const char *path, exr_context_t *src)
{
    exr_context_initializer_t init = EXR_DEFAULT_CONTEXT_INITIALIZER;
    init.error_handler_fn = cm__exr_error_cb;
    init.user_data = io;
    init.read_fn = mem_read;
    init.size_fn = mem_size;
    /* a damaged chunk table is an error, not something to guess around */
    init.flags = EXR_CONTEXT_FLAG_DISABLE_CHUNK_RECONSTRUCTION;
    *src = NULL;
    return exr_start_read(src, path, &init);
}

/* ---- the source's layout ------------------------------------------------ */

exr_result_t cm__exr_list_chunks(exr_const_context_t c, int part, exr_storage_t st, int level0_only,
                                 chunk_ref **out, int32_t *nout)
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

exr_result_t cm__exr_chunk_info(exr_const_context_t c, int part, exr_storage_t st,
                                const chunk_ref *r, exr_chunk_info_t *ci)
{
    if (st == EXR_STORAGE_SCANLINE || st == EXR_STORAGE_DEEP_SCANLINE)
        return exr_read_scanline_chunk_info(c, part, r->y, ci);
    return exr_read_tile_chunk_info(c, part, r->tx, r->ty, r->lx, r->ly, ci);
}

int cm__exr_coding_channel(const exr_coding_channel_info_t *ch, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (ch[i].channel_name && !strcmp(ch[i].channel_name, name))
            return i;
    return -1;
}

exr_result_t cm__exr_decode_chunk(exr_const_context_t src, const exr_meta *m,
                                  const exr_chunk_info_t *ci, int all, exr_decode_pipeline_t *dec,
                                  uint8_t **buf, size_t *cap)
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

int cm__exr_chunk_origin(const exr_meta *m, const chunk_ref *r, const exr_chunk_info_t *ci, int *x0,
                         int *y0)
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
