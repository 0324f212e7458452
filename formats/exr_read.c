/*
 * OpenEXR reader (see formats/exr_common.h): probe, read (the whole file
 * kept in the meta, one part decoded to display-encoded samples), and what
 * `celmark info` shows of the source.
 */
#include "exr_common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXR_MAGIC_BYTES 4

static const uint8_t exr_magic[EXR_MAGIC_BYTES] = {0x76, 0x2f, 0x31, 0x01};

/* ---- the display encoding ---------------------------------------------- */

static uint16_t encode_alpha(double a)
{
    if (!(a > 0.0))
        return 0;
    if (a >= 1.0)
        return 65535;
    return (uint16_t)floor(a * 65535.0 + 0.5);
}

/* ---- probe -------------------------------------------------------------- */

static int probe_exr(const uint8_t *head, size_t len)
{
    return head && len >= EXR_MAGIC_BYTES && memcmp(head, exr_magic, EXR_MAGIC_BYTES) == 0;
}

/* ---- the source's layout ------------------------------------------------ */

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
        return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "parts");
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
            return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
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
                return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "tile description");
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
        return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
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
        return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "part header");
    if (exr_attr_get_chromaticities(r->src, m->part, "chromaticities", &m->chroma) ==
        EXR_ERR_SUCCESS)
        m->has_chroma = 1;
    if (exr_attr_get_timecode(r->src, m->part, "timeCode", &m->timecode) == EXR_ERR_SUCCESS)
        m->has_timecode = 1;
    cm__exr_clear_message(); /* the lookups above may have noted a missing attribute */
    snprintf(m->layout, sizeof(m->layout), "scanline");
    if (m->storage == EXR_STORAGE_TILED) {
        uint32_t tx, ty;
        exr_tile_level_mode_t lm;
        exr_tile_round_mode_t rm;
        int32_t tw, th;
        if ((rv = exr_get_tile_descriptor(r->src, m->part, &tx, &ty, &lm, &rm)) !=
                EXR_ERR_SUCCESS ||
            (rv = exr_get_tile_sizes(r->src, m->part, 0, 0, &tw, &th)) != EXR_ERR_SUCCESS)
            return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "tile description");
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
    cm__exr_clear_message();
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
            rv = cm__exr_list_chunks(r->src, p, st, level0, &refs, &n);
        for (int32_t i = 0; rv == EXR_ERR_SUCCESS && i < n; i++) {
            exr_chunk_info_t ci;
            if ((rv = cm__exr_chunk_info(r->src, p, st, &refs[i], &ci)) != EXR_ERR_SUCCESS)
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
            return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "chunk table");
    }
    cm__exr_clear_message();
    return CM_OK;
}

/* Decode the marked part's full-resolution level into the image. */
static int read_pixels(reader *r)
{
    exr_meta *m = r->m;
    cm_image *img = r->img;
    int32_t n;
    exr_result_t rv;

    if ((rv = cm__exr_list_chunks(r->src, m->part, m->storage, 1, &r->refs, &n)) != EXR_ERR_SUCCESS)
        return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "chunk layout");
    const int nc = img->channels;
    for (int32_t i = 0; i < n; i++) {
        exr_chunk_info_t ci;
        exr_decode_pipeline_t dec = EXR_DECODE_PIPELINE_INITIALIZER;
        int x0, y0, idx[CH_MAX];
        if ((rv = cm__exr_chunk_info(r->src, m->part, m->storage, &r->refs[i], &ci)) !=
                EXR_ERR_SUCCESS ||
            (rv = cm__exr_decode_chunk(r->src, m, &ci, 0, &dec, &r->buf, &r->cap)) !=
                EXR_ERR_SUCCESS) {
            exr_decoding_destroy(r->src, &dec);
            return cm__exr_fail(r->ctx, r->path, &r->io, rv, 0, "pixel data");
        }
        int bad = cm__exr_chunk_origin(m, &r->refs[i], &ci, &x0, &y0) < 0;
        for (int k = 0; !bad && k < CH_MAX; k++) {
            idx[k] = m->names[k][0]
                         ? cm__exr_coding_channel(dec.channels, dec.channel_count, m->names[k])
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
    char *prev_msg = cm__exr_messages_to(r.msg);

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
    if ((rv = cm__exr_open_source(&r.io, path, &r.src)) != EXR_ERR_SUCCESS) {
        ret = cm__exr_fail(ctx, path, &r.io, rv, 0, "header");
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
    if (cm__exr_tables_init(&r.t, 0) < 0) {
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
    cm__exr_tables_free(&r.t);
    free(r.refs);
    free(r.buf);
    cm_image_free(&r.img);
    free_exr_meta(r.m);
    cm__exr_messages_to(prev_msg);
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
    .write = cm__exr_write,
    .meta_free = free_exr_meta,
    .info = describe_exr,
};
