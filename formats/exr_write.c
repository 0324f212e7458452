/*
 * OpenEXR writer (see formats/exr_common.h): every part of an EXR source
 * copied with the marked part's changed chunks re-encoded, or a plain half
 * EXR of the pixels.
 */
#include "exr_common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Flags in byte 5 of the version field (bits 8-15 of the little-endian
 * word): long attribute and channel names (bit 10). */
#define EXR_FLAG5_LONG_NAMES 0x04

/* Plain output (no EXR source): ZIP is what most tools write by default
 * and is lossless. */
#define PLAIN_COMPRESSION EXR_COMPRESSION_ZIP

/* ---- half floats -------------------------------------------------------- */

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

/* ---- I/O and errors ----------------------------------------------------- */

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
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "copy");
    if (deep)
        rv = exr_read_deep_chunk(w->src, part, ci, w->packed, w->table);
    else
        rv = exr_read_chunk(w->src, part, ci, w->packed);
    if (rv != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source chunk");
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
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "chunk copy");
    return CM_OK;
}

/* Apply the image's changes to one decoded chunk of the marked part (see
 * formats/exr_common.h). Returns 1 if any stored bits changed. */
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
        int j = cm__exr_coding_channel(dec->channels, dec->channel_count, c->channel_name);
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
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "marked chunk");
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
        (rv = cm__exr_list_chunks(w->src, part, st, 0, &w->refs, &n)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "chunk layout");
    for (int32_t i = 0; i < n; i++) {
        const chunk_ref *r = &w->refs[i];
        exr_chunk_info_t ci;
        if ((rv = cm__exr_chunk_info(w->src, part, st, r, &ci)) != EXR_ERR_SUCCESS) {
            ret = cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source chunk");
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
        if ((rv = cm__exr_decode_chunk(w->src, m, &ci, 1, &dec, &w->buf, &w->cap)) !=
            EXR_ERR_SUCCESS) {
            exr_decoding_destroy(w->src, &dec);
            ret = cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source pixels");
            goto done;
        }
        bad = cm__exr_chunk_origin(m, r, &ci, &x0, &y0) < 0;
        for (int k = 0; !bad && k < m->ncolour; k++)
            if ((idx[k] = cm__exr_coding_channel(dec.channels, dec.channel_count,
                                                 m->names[k])) < 0 ||
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
    init.error_handler_fn = cm__exr_error_cb;
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
            return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source part");
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
    if ((rv = cm__exr_open_source(&w->in, w->path, &w->src)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source header");
    if ((rv = exr_get_count(w->src, &nparts)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source parts");
    if ((ret = plan_order(w, nparts)) < 0)
        return ret;
    if ((rv = start_output(w)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "start");
    if ((m->file[5] & EXR_FLAG5_LONG_NAMES) &&
        (rv = exr_set_longname_support(w->dst, 1)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    for (int p = 0; p < nparts; p++) {
        const char *name = NULL;
        exr_storage_t st;
        int idx;
        if (exr_get_name(w->src, p, &name) != EXR_ERR_SUCCESS)
            name = NULL;
        if ((rv = exr_get_storage(w->src, p, &st)) != EXR_ERR_SUCCESS)
            return cm__exr_fail(w->ctx, w->path, &w->in, rv, 0, "source part");
        if ((rv = exr_add_part(w->dst, name, st, &idx)) != EXR_ERR_SUCCESS ||
            (rv = copy_unknown_attributes(w, p, idx)) != EXR_ERR_SUCCESS ||
            (rv = exr_copy_unset_attributes(w->dst, idx, w->src, p)) != EXR_ERR_SUCCESS)
            return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
        if (idx != p)
            return cm__error(w->ctx, CM_E_INTERNAL, "%s: EXR part order changed", w->path);
    }
    if ((rv = exr_write_header(w->dst)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
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
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "start");
    if ((rv = exr_add_part(w->dst, NULL, EXR_STORAGE_SCANLINE, &part)) != EXR_ERR_SUCCESS ||
        (rv = exr_initialize_required_attr_simple(w->dst, part, img->width, img->height,
                                                  PLAIN_COMPRESSION)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    for (int k = 0; k < nc; k++) {
        const char *name = k == ncol ? "A" : names[k];
        /* colour is perceptually logarithmic, alpha linear (a hint for
         * lossy codecs) */
        if ((rv = exr_add_channel(w->dst, part, name, EXR_PIXEL_HALF,
                                  k == ncol ? EXR_PERCEPTUALLY_LINEAR
                                            : EXR_PERCEPTUALLY_LOGARITHMIC,
                                  1, 1)) != EXR_ERR_SUCCESS)
            return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
    }
    if ((rv = exr_write_header(w->dst)) != EXR_ERR_SUCCESS ||
        (rv = exr_get_scanlines_per_chunk(w->dst, part, &lpc)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "header");
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
        ret = cm__exr_fail(w->ctx, w->path, &w->out, rv, 1, "pixels");
    if (started)
        exr_encoding_destroy(w->dst, &enc);
    return ret;
}

int cm__exr_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
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
    if (cm__exr_tables_init(&w.t, 1) < 0)
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing EXR", path);

    char *prev_msg = cm__exr_messages_to(w.msg);
    ret = w.m ? write_faithful(&w) : write_plain(&w);
    if (w.dst) {
        /* writes the chunk offset tables */
        exr_result_t rv = exr_finish(&w.dst);
        if (ret == CM_OK && rv != EXR_ERR_SUCCESS)
            ret = cm__exr_fail(ctx, path, &w.out, rv, 1, "finish");
    }
    if (ret == CM_OK && w.out.to_mem)
        ret = flush_reordered(&w);
    if (w.src)
        exr_finish(&w.src);
    cm__exr_tables_free(&w.t);
    free(w.refs);
    free(w.packed);
    free(w.table);
    free(w.buf);
    free(w.counts);
    free(w.reverse);
    free(w.out.mem);
    cm__exr_messages_to(prev_msg);
    return ret;
}
