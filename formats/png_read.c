/*
 * PNG reader (see formats/png_common.h): probe, read (every layout decoded
 * to 8/16-bit grey, GA, RGB or RGBA, the chunks kept in a png_meta), what
 * `celmark info` shows of the source, and its tRNS colour key.
 */
#include "png_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PNG_SIG_BYTES 8

/* A chunk type as a 32-bit big-endian number, as png_get_io_chunk_type()
 * returns it. */
#define CHUNK_TYPE(a, b, c, d)                                                \
    (((png_uint_32)(a) << 24) | ((png_uint_32)(b) << 16) |                   \
     ((png_uint_32)(c) << 8) | (png_uint_32)(d))

/* Known chunks carried byte for byte as "unknown" chunks: their content does
 * not depend on the pixel layout. */
static const png_byte verbatim_chunks[] =
    "iCCP\0oFFs\0pCAL\0sCAL\0sPLT\0sTER\0cICP\0mDCV\0cLLI\0mDCv\0cLLi\0acTL\0";
#define N_VERBATIM 12
/* Of those, the ones kept although their name says unsafe-to-copy: what
 * they say holds for the marked copy too (scale, HDR mastering display and
 * content light level, PNG 3rd edition). pCAL maps sample values: kept
 * unless the samples are no longer the source's (palette expanded). */
static const char *const unsafe_ok[] = {"iCCP", "sPLT", "sTER", "cICP", "sCAL",
                                        "pCAL", "mDCV", "cLLI"};
/* APNG frames: skipped (the still writer would pass unmarked frames on). */
static const png_byte skipped_chunks[] = "fcTL\0fdAT\0";
#define N_SKIPPED 2

static char *str_dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void *mem_dup(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static void chunk_name(png_uint_32 type, char out[5])
{
    for (int i = 0; i < 4; i++) {
        unsigned c = (type >> (24 - 8 * i)) & 0xff;
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[4] = '\0';
}

static void free_png_meta(void *priv)
{
    png_meta *m = priv;
    if (!m)
        return;
    free(m->plte);
    free(m->exif);
    for (int i = 0; i < m->ntext; i++) {
        free(m->text[i].key);
        free(m->text[i].text);
        free(m->text[i].lang);
        free(m->text[i].lang_key);
    }
    free(m->text);
    for (int i = 0; i < m->nchunks; i++)
        free(m->chunks[i].data);
    free(m->chunks);
    free(m);
}

/* ---- libpng callbacks ------------------------------------------------- */

static void read_fn(png_structp png, png_bytep data, size_t len)
{
    png_io *io = png_get_io_ptr(png);
    switch (png_get_io_chunk_type(png)) {
    case CHUNK_TYPE('g', 'A', 'M', 'A'): io->seen |= SEEN_gAMA; break;
    case CHUNK_TYPE('c', 'H', 'R', 'M'): io->seen |= SEEN_cHRM; break;
    case CHUNK_TYPE('s', 'R', 'G', 'B'): io->seen |= SEEN_sRGB; break;
    default: break;
    }
    size_t n = fread(data, 1, len, io->fp);
    if (io->left >= 0)
        io->left -= (int64_t)n;
    /* A chunk header: refuse a length the file cannot hold, or ancillary
     * data over the metadata limit, before libpng allocates a buffer of
     * that size (1.6.39 mallocs a tEXt chunk's declared length + 1 even
     * past png_set_chunk_malloc_max: a 346-byte file cost 2 GiB). IDAT
     * and APNG's skipped fdAT are streamed, never held whole. */
    if (n == len && len == 8 && (png_get_io_state(png) & PNG_IO_CHUNK_HDR)) {
        png_uint_32 clen = png_get_uint_32(data);
        png_uint_32 type = png_get_uint_32(data + 4);
        char name[5], msg[160];
        chunk_name(type, name);
        if (io->left >= 0 && (int64_t)clen + 4 > io->left) {
            snprintf(msg, sizeof(msg),
                     "the %s chunk claims %lu bytes, beyond the end of the file", name,
                     (unsigned long)clen);
            io->past_end = 1;
            png_error(png, msg);
        }
        if (type != CHUNK_TYPE('I', 'D', 'A', 'T') && type != CHUNK_TYPE('f', 'd', 'A', 'T') &&
            clen > io->max_chunk) {
            snprintf(msg, sizeof(msg),
                     "the %s chunk of %lu bytes exceeds limit of %llu bytes of metadata", name,
                     (unsigned long)clen, (unsigned long long)io->max_chunk);
            png_error(png, msg);
        }
    }
    if (n != len) {
        if (ferror(io->fp)) {
            io->err_no = errno ? errno : EIO;
            png_error(png, "read error");
        }
        io->eof = 1;
        png_error(png, "unexpected end of file");
    }
}

/* ---- probe ------------------------------------------------------------ */

static const uint8_t png_signature[PNG_SIG_BYTES] = {0x89, 'P', 'N', 'G',
                                                    '\r', '\n', 0x1a, '\n'};

/* A full signature, or a file cut inside it (at least "\x89PNG"): the
 * reader then reports it as truncated rather than unknown. */
static int probe_png(const uint8_t *head, size_t len)
{
    if (!head || len < 4)
        return 0;
    size_t n = len < PNG_SIG_BYTES ? len : PNG_SIG_BYTES;
    return memcmp(head, png_signature, n) == 0;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct reader {
    png_io io;
    cm_ctx *ctx;
    const char *path;
    const cm_limits *limits;
    png_structp png;
    png_infop info, end;
    png_bytep *rows;
    cm_image *img;
    png_meta *meta;
} reader;

/* Translate the libpng failure recorded in r->io into a status + message. */
static int read_failure(reader *r)
{
    const char *msg = r->io.msg;
    char name[5];

    if (!strcmp(msg, "Invalid IHDR data") && r->io.warn[0])
        msg = r->io.warn; /* the specific reason */

    if (r->io.err_no)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path,
                         strerror(r->io.err_no));
    if (r->io.past_end)
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: truncated PNG: %s", r->path, msg);
    if (r->io.eof) {
        png_uint_32 state = png_get_io_state(r->png);
        png_uint_32 type = png_get_io_chunk_type(r->png);
        chunk_name(type, name);
        if (state & PNG_IO_SIGNATURE)
            return cm__error(r->ctx, CM_E_CORRUPT,
                             "%s: truncated PNG: file ends inside the signature",
                             r->path);
        if (type == 0)
            return cm__error(r->ctx, CM_E_CORRUPT,
                             "%s: truncated PNG: file ends before the image header",
                             r->path);
        if (state & PNG_IO_CHUNK_HDR)
            return cm__error(r->ctx, CM_E_CORRUPT,
                             "%s: truncated PNG: file ends after the %s chunk",
                             r->path, name);
        return cm__error(r->ctx, CM_E_CORRUPT,
                         "%s: truncated PNG: file ends inside the %s chunk",
                         r->path, name);
    }
    if (strstr(msg, "exceeds user limit") || strstr(msg, "too large") ||
        strstr(msg, "exceeds limit"))
        return cm__error(r->ctx, CM_E_LIMIT, "%s: PNG above a limit: %s",
                         r->path, msg);
    if (strstr(msg, "Out of memory") || strstr(msg, "Out of Memory") ||
        strstr(msg, "insufficient memory"))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory reading PNG: %s",
                         r->path, msg);
    return cm__error(r->ctx, CM_E_CORRUPT, "%s: corrupt PNG: %s", r->path, msg);
}

static int add_text(png_meta *m, const png_text *t, int after)
{
    meta_text *n = realloc(m->text, (size_t)(m->ntext + 1) * sizeof(*n));
    if (!n)
        return CM_E_NOMEM;
    m->text = n;
    meta_text *d = &m->text[m->ntext];
    memset(d, 0, sizeof(*d));
    m->ntext++;
    d->compression = t->compression;
    d->after = after;
    d->key = str_dup(t->key);
    d->text = str_dup(t->text ? t->text : "");
    if (t->compression > 0) { /* iTXt */
        d->lang = str_dup(t->lang ? t->lang : "");
        d->lang_key = str_dup(t->lang_key ? t->lang_key : "");
        if (!d->lang || !d->lang_key)
            return CM_E_NOMEM;
    }
    return d->key && d->text ? CM_OK : CM_E_NOMEM;
}

static int is_unsafe_ok(const char *name)
{
    for (size_t i = 0; i < sizeof(unsafe_ok) / sizeof(unsafe_ok[0]); i++)
        if (!strcmp(name, unsafe_ok[i]))
            return 1;
    return 0;
}

static void note_dropped(png_meta *m, const char *name)
{
    cm__png_add_name(m->dropped, sizeof(m->dropped), name);
}

/* Why libpng's writer would refuse or change a keyword (tEXt, zTXt, iTXt;
 * its png_check_keyword: 1-79 Latin-1 characters, printable, no leading,
 * trailing or double spaces), or NULL if it takes it as it is. */
static const char *keyword_problem(const char *key, char *buf, size_t size)
{
    size_t n = strlen(key);
    if (n == 0)
        return "empty keyword";
    if (n > 79)
        return "keyword longer than 79 bytes";
    if (key[0] == ' ' || key[n - 1] == ' ')
        return "keyword with a leading or trailing space";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch == ' ' && key[i + 1] == ' ')
            return "keyword with two spaces in a row";
        if (!((ch >= 32 && ch <= 126) || ch >= 161)) {
            snprintf(buf, size, "keyword with the character 0x%02x", ch);
            return buf;
        }
    }
    return NULL;
}

/* Text, tIME, eXIf and unknown chunks: found in info (before the image data)
 * and in end (after it). */
static int capture_movable(reader *r, png_infop info, int after)
{
    png_meta *m = r->meta;
    png_textp text;
    int ntext = 0;

    if (png_get_text(r->png, info, &text, &ntext) > 0) {
        for (int i = 0; i < ntext; i++) {
            char buf[48];
            const char *why = keyword_problem(text[i].key ? text[i].key : "", buf,
                                              sizeof(buf));
            if (why) { /* the writer would refuse it: read and write agree */
                const char *name = text[i].compression == PNG_TEXT_COMPRESSION_NONE ? "tEXt"
                                   : text[i].compression == PNG_TEXT_COMPRESSION_zTXt
                                       ? "zTXt"
                                       : "iTXt";
                char what[120];
                snprintf(what, sizeof(what), "%s chunk \"%.60s\"", name,
                         text[i].key ? text[i].key : "");
                cm__not_kept(r->ctx, what, "%s (PNG 11.3.4: libpng cannot write it)", why);
                note_dropped(m, name);
                continue;
            }
            if (add_text(m, &text[i], after) < 0)
                return CM_E_NOMEM;
        }
    }
    png_timep t;
    if (!m->has_time && png_get_tIME(r->png, info, &t)) {
        m->has_time = 1;
        m->time_after = after;
        m->time = *t;
    }
    png_bytep exif;
    png_uint_32 nexif;
    if (!m->exif && png_get_eXIf_1(r->png, info, &nexif, &exif) && nexif) {
        if (!(m->exif = mem_dup(exif, nexif)))
            return CM_E_NOMEM;
        m->exif_len = nexif;
        m->exif_after = after;
    }
    png_unknown_chunkp unk;
    int nunk = png_get_unknown_chunks(r->png, info, &unk);
    for (int i = 0; i < nunk; i++) {
        char name[5];
        memcpy(name, unk[i].name, 4);
        name[4] = '\0';
        if (!(name[0] & 0x20))
            return cm__error(r->ctx, CM_E_UNSUPPORTED,
                             "%s: PNG uses an unknown critical chunk %s",
                             r->path, name);
        if (!strcmp(name, "pCAL") && m->converted) {
            cm__not_kept(r->ctx, "pCAL chunk", "it maps the source's %s samples, which the "
                         "copy stores expanded to 8 bits",
                         m->color_type == PNG_COLOR_TYPE_PALETTE ? "palette index" : "grey");
            note_dropped(m, name);
            continue;
        }
        if (!(name[3] & 0x20) && !is_unsafe_ok(name)) {
            char what[16];
            snprintf(what, sizeof(what), "%s chunk", name);
            cm__not_kept(r->ctx, what, "marked unsafe-to-copy (PNG 14.2: it depends on "
                         "the image data, which the mark changes)%s",
                         !strcmp(name, "acTL") ? "; APNG frames after the first are not "
                                                 "copied either" : "");
            note_dropped(m, name);
            continue;
        }
        meta_chunk *n = realloc(m->chunks, (size_t)(m->nchunks + 1) * sizeof(*n));
        if (!n)
            return CM_E_NOMEM;
        m->chunks = n;
        meta_chunk *c = &m->chunks[m->nchunks];
        memcpy(c->name, name, 5);
        c->location = after ? PNG_AFTER_IDAT
                            : (unk[i].location & PNG_HAVE_PLTE ? PNG_HAVE_PLTE
                                                               : PNG_HAVE_IHDR);
        c->size = unk[i].size;
        if (!(c->data = mem_dup(unk[i].data, unk[i].size)))
            return CM_E_NOMEM;
        m->nchunks++;
    }
    return CM_OK;
}

/* Scale a 1/2/4-bit grey value to 8 bits, as png_set_expand does. */
static png_uint_16 scale_low_grey(png_uint_16 v, int depth)
{
    unsigned maxv = (1u << depth) - 1;
    return (png_uint_16)((v > maxv ? maxv : v) * (255u / maxv));
}

/* Everything before the image data, and the layout translation. */
static int capture_pre(reader *r)
{
    png_meta *m = r->meta;
    png_structp png = r->png;
    png_infop info = r->info;
    int ct = m->color_type;

    m->seen = r->io.seen;
    if (m->seen & SEEN_gAMA)
        png_get_gAMA_fixed(png, info, &m->gamma);
    if (m->seen & SEEN_cHRM) {
        png_fixed_point *c = m->chrm;
        if (!png_get_cHRM_fixed(png, info, &c[0], &c[1], &c[2], &c[3], &c[4],
                                &c[5], &c[6], &c[7]))
            m->seen &= ~(unsigned)SEEN_cHRM;
    }
    if ((m->seen & SEEN_sRGB) && !png_get_sRGB(png, info, &m->srgb_intent))
        m->seen &= ~(unsigned)SEEN_sRGB;

    if (png_get_pHYs(png, info, &m->phys_x, &m->phys_y, &m->phys_unit))
        m->has_phys = 1;

    png_color_8p sbit;
    if (png_get_sBIT(png, info, &sbit)) {
        m->has_sbit = 1;
        m->sbit = *sbit;
        if (ct == PNG_COLOR_TYPE_PALETTE)
            m->sbit.alpha = 8; /* used only if the output has alpha */
    }

    png_colorp pal = NULL;
    int npal = 0;
    png_get_PLTE(png, info, &pal, &npal);

    png_color_16p bg;
    if (png_get_bKGD(png, info, &bg)) {
        m->bkgd = *bg;
        m->has_bkgd = 1;
        if (ct == PNG_COLOR_TYPE_PALETTE) {
            if (pal && bg->index < npal) {
                m->bkgd.red = pal[bg->index].red;
                m->bkgd.green = pal[bg->index].green;
                m->bkgd.blue = pal[bg->index].blue;
                m->bkgd.index = 0;
            } else {
                m->has_bkgd = 0;
            }
        } else if (ct == PNG_COLOR_TYPE_GRAY && m->bit_depth < 8) {
            m->bkgd.gray = scale_low_grey(m->bkgd.gray, m->bit_depth);
        }
    }

    png_bytep talpha;
    int ntrans = 0;
    png_color_16p tcol;
    if (ct != PNG_COLOR_TYPE_PALETTE &&
        png_get_tRNS(png, info, &talpha, &ntrans, &tcol) && tcol) {
        m->has_trns = 1;
        m->trns = *tcol;
        if (ct == PNG_COLOR_TYPE_GRAY && m->bit_depth < 8)
            m->trns.gray = scale_low_grey(m->trns.gray, m->bit_depth);
    }

    /* Suggested palette of a truecolour image (a palette image's PLTE
     * becomes its pixels). */
    if (ct != PNG_COLOR_TYPE_PALETTE && pal && npal > 0) {
        if (!(m->plte = mem_dup(pal, (size_t)npal * sizeof(*pal))))
            return CM_E_NOMEM;
        m->nplte = npal;
    }
    return capture_movable(r, info, 0);
}

static uint64_t meta_bytes(const png_meta *m)
{
    uint64_t n = m->exif_len;
    for (int i = 0; i < m->ntext; i++) {
        n += strlen(m->text[i].key) + strlen(m->text[i].text);
        if (m->text[i].lang)
            n += strlen(m->text[i].lang) + strlen(m->text[i].lang_key);
    }
    for (int i = 0; i < m->nchunks; i++)
        n += m->chunks[i].size;
    return n;
}

static int read_inner(reader *r)
{
    png_structp png = r->png;
    png_infop info = r->info;
    int ret;

    if (setjmp(png_jmpbuf(png)))
        return read_failure(r);

    png_set_read_fn(png, &r->io, read_fn);
    png_set_sig_bytes(png, PNG_SIG_BYTES);
    png_set_user_limits(png, MAX_DIMENSION, MAX_DIMENSION);
    png_alloc_size_t meta_max = r->limits->max_meta_bytes > PNG_UINT_31_MAX
                                    ? PNG_UINT_31_MAX
                                    : (png_alloc_size_t)r->limits->max_meta_bytes;
    png_set_chunk_malloc_max(png, meta_max ? meta_max : 1);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, verbatim_chunks,
                                N_VERBATIM);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, skipped_chunks,
                                N_SKIPPED);

    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, ct, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ct, &interlace, NULL, NULL);
    uint64_t pixels = (uint64_t)w * h;
    if (pixels > r->limits->max_pixels)
        return cm__error(r->ctx, CM_E_LIMIT,
                         "%s: image is %lu x %lu (%llu pixels), above the limit "
                         "of %llu pixels",
                         r->path, (unsigned long)w, (unsigned long)h,
                         (unsigned long long)pixels,
                         (unsigned long long)r->limits->max_pixels);

    if (!(r->meta = calloc(1, sizeof(*r->meta))))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    png_meta *m = r->meta;
    m->color_type = ct;
    m->bit_depth = depth;
    m->interlace = interlace;
    m->converted = ct == PNG_COLOR_TYPE_PALETTE || depth < 8;
    if ((ret = capture_pre(r)) < 0)
        goto meta_fail;

    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png); /* tRNS becomes alpha */
    else if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png); /* tRNS stays a chunk */
    if (depth == 16 && cm__png_host_is_little_endian())
        png_set_swap(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int odepth = png_get_bit_depth(png, info);
    int alpha = (png_get_color_type(png, info) & PNG_COLOR_MASK_ALPHA) != 0;
    if ((odepth != 8 && odepth != 16) || channels < 1 || channels > 4)
        return cm__error(r->ctx, CM_E_INTERNAL,
                         "%s: unexpected decoded PNG layout (%d channels, %d bit)",
                         r->path, channels, odepth);
    m->channels = channels;
    m->depth = odepth;

    if ((ret = cm__image_alloc(&r->img, (int)w, (int)h, channels, alpha, odepth,
                               r->limits->max_pixels)) < 0)
        return cm__error(r->ctx, ret, "%s: cannot allocate a %lu x %lu image",
                         r->path, (unsigned long)w, (unsigned long)h);
    if (png_get_rowbytes(png, info) != (size_t)r->img->stride)
        return cm__error(r->ctx, CM_E_INTERNAL,
                         "%s: decoded PNG row size mismatch", r->path);
    if (!(r->rows = cm__malloc_array(h, sizeof(*r->rows))))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    for (png_uint_32 y = 0; y < h; y++)
        r->rows[y] = r->img->data + (size_t)y * (size_t)r->img->stride;

    png_read_image(png, r->rows);
    png_read_end(png, r->end);

    if ((ret = capture_movable(r, r->end, 1)) < 0)
        goto meta_fail;
    uint64_t mb = meta_bytes(m);
    if (mb > r->limits->max_meta_bytes)
        return cm__error(r->ctx, CM_E_LIMIT,
                         "%s: metadata is %llu bytes, above the limit of %llu "
                         "bytes",
                         r->path, (unsigned long long)mb,
                         (unsigned long long)r->limits->max_meta_bytes);
    return CM_OK;

meta_fail:
    if (ret == CM_E_NOMEM)
        return cm__error(r->ctx, ret, "%s: out of memory reading metadata",
                         r->path);
    return ret; /* message already set */
}

static int read_png(cm_ctx *ctx, const char *path, FILE *fp,
                    const cm_limits *limits, cm_image **out)
{
    reader r;
    uint8_t sig[PNG_SIG_BYTES];
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "png read: no output given");
    *out = NULL;
    if (!path || !fp || !limits)
        return cm__error(ctx, CM_E_INVAL, "png read: invalid argument");

    memset(&r, 0, sizeof(r));
    r.io.fp = fp;
    r.io.ctx = ctx;
    r.io.max_chunk = limits->max_meta_bytes;
    r.io.left = -1;
    off_t start = ftello(fp), end = -1;
    if (start >= 0 && fseeko(fp, 0, SEEK_END) == 0)
        end = ftello(fp);
    if (start < 0 || fseeko(fp, start, SEEK_SET) != 0)
        return cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path, strerror(errno));
    r.ctx = ctx;
    r.path = path;
    r.limits = limits;

    size_t n = fread(sig, 1, sizeof(sig), fp);
    if (n < sizeof(sig) && ferror(fp))
        return cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path,
                         strerror(errno));
    if (n == 0)
        return cm__error(ctx, CM_E_CORRUPT, "%s: empty file", path);
    if (memcmp(sig, png_signature, n) != 0)
        return cm__error(ctx, CM_E_FORMAT, "%s: not a PNG file", path);
    if (n < sizeof(sig))
        return cm__error(ctx, CM_E_CORRUPT,
                         "%s: truncated PNG: file ends inside the signature",
                         path);
    if (end >= start)
        r.io.left = (int64_t)(end - start) - (int64_t)n;

    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.io, cm__png_error_fn,
                                   cm__png_warning_fn);
    if (!r.png || !(r.info = png_create_info_struct(r.png)) ||
        !(r.end = png_create_info_struct(r.png))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((ret = read_inner(&r)) < 0)
        goto fail;
    /* what libpng skipped, for `celmark info` */
    for (const char *p = r.io.dropped; *p; p += p[4] == ',' ? 5 : 4) {
        char name[5] = {p[0], p[1], p[2], p[3], 0};
        note_dropped(r.meta, name);
        if (!p[4])
            break;
    }
    if ((ret = cm__image_attach_meta(r.img, &cm__format_png, r.meta)) < 0) {
        r.meta = NULL; /* freed by attach */
        ret = cm__error(ctx, ret, "%s: out of memory", path);
        goto fail;
    }
    r.meta = NULL;
    *out = r.img;
    r.img = NULL;
    ret = CM_OK;

fail:
    if (r.png)
        png_destroy_read_struct(&r.png, r.info ? &r.info : NULL,
                                r.end ? &r.end : NULL);
    free(r.rows);
    cm_image_free(&r.img);
    free_png_meta(r.meta);
    return ret;
}

/* ---- info ------------------------------------------------------------- */

static const char *color_type_name(int ct)
{
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB: return "rgb";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "rgba";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    }
    return "unknown";
}

static void describe_png(const cm_image *img, cm_image_info *info)
{
    static const char *const intents[4] = {"perceptual", "relative colorimetric",
                                           "saturation", "absolute colorimetric"};
    const png_meta *m = img->meta->priv;

    snprintf(info->format, sizeof(info->format), "png");
    snprintf(info->color_type, sizeof(info->color_type), "%s",
             color_type_name(m->color_type));
    info->bit_depth = m->bit_depth;
    info->interlaced = m->interlace != PNG_INTERLACE_NONE;
    info->converted = m->converted;

    if (m->seen & SEEN_sRGB)
        cm__info_add_tag(info, "srgb_intent", "%s",
                         m->srgb_intent >= 0 && m->srgb_intent < 4
                             ? intents[m->srgb_intent] : "invalid");
    if (m->seen & SEEN_gAMA)
        cm__info_add_tag(info, "gamma", "%.5f", m->gamma / 100000.0);
    if (m->seen & SEEN_cHRM) {
        const png_fixed_point *c = m->chrm;
        cm__info_add_tag(info, "chromaticities",
                         "white %.4f,%.4f red %.4f,%.4f green %.4f,%.4f "
                         "blue %.4f,%.4f",
                         c[0] / 1e5, c[1] / 1e5, c[2] / 1e5, c[3] / 1e5,
                         c[4] / 1e5, c[5] / 1e5, c[6] / 1e5, c[7] / 1e5);
    }
    for (int i = 0; i < m->nchunks; i++) {
        const meta_chunk *c = &m->chunks[i];
        if (strcmp(c->name, "iCCP"))
            continue;
        /* keyword (1-79 bytes), NUL, compression method, zlib stream */
        const uint8_t *nul = memchr(c->data, 0, c->size < 80 ? c->size : 80);
        size_t klen = nul ? (size_t)(nul - c->data) : 0;
        size_t zlen = nul && c->size >= klen + 2 ? c->size - klen - 2 : 0;
        cm__info_add_tag(info, "icc_profile", "%.*s (%lu bytes compressed)",
                         (int)klen, (const char *)c->data, (unsigned long)zlen);
        break;
    }
    if (m->has_phys) {
        if (m->phys_unit == PNG_RESOLUTION_METER) {
            cm__info_add_tag(info, "pixels_per_unit", "%lu x %lu per metre",
                             (unsigned long)m->phys_x, (unsigned long)m->phys_y);
            cm__info_add_tag(info, "resolution", "%.1f x %.1f dpi",
                             m->phys_x * 0.0254, m->phys_y * 0.0254);
        } else {
            cm__info_add_tag(info, "pixels_per_unit", "%lu x %lu (aspect ratio)",
                             (unsigned long)m->phys_x, (unsigned long)m->phys_y);
        }
    }
    if (m->ntext) {
        char keys[sizeof(info->tags[0].value)] = "";
        size_t len = 0;
        for (int i = 0; i < m->ntext && len + 1 < sizeof(keys); i++) {
            int k = snprintf(keys + len, sizeof(keys) - len, "%s%s",
                             i ? "," : "", m->text[i].key);
            if (k < 0)
                break;
            len += (size_t)k;
        }
        cm__info_add_tag(info, "text", "%s", keys);
    }
    if (m->exif)
        cm__info_add_tag(info, "exif", "%lu bytes", (unsigned long)m->exif_len);
    if (m->has_sbit) {
        const png_color_8 *s = &m->sbit;
        switch (m->color_type) {
        case PNG_COLOR_TYPE_GRAY:
            cm__info_add_tag(info, "sbit", "%d", s->gray);
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            cm__info_add_tag(info, "sbit", "%d,%d", s->gray, s->alpha);
            break;
        case PNG_COLOR_TYPE_RGB_ALPHA:
            cm__info_add_tag(info, "sbit", "%d,%d,%d,%d", s->red, s->green,
                             s->blue, s->alpha);
            break;
        default:
            cm__info_add_tag(info, "sbit", "%d,%d,%d", s->red, s->green, s->blue);
        }
    }
    if (m->has_bkgd) {
        if (m->channels < 3)
            cm__info_add_tag(info, "background", "gray %u", m->bkgd.gray);
        else
            cm__info_add_tag(info, "background", "rgb %u,%u,%u", m->bkgd.red,
                             m->bkgd.green, m->bkgd.blue);
    }
    if (m->has_trns) {
        if (m->channels < 3)
            cm__info_add_tag(info, "transparent_color", "gray %u", m->trns.gray);
        else
            cm__info_add_tag(info, "transparent_color", "rgb %u,%u,%u",
                             m->trns.red, m->trns.green, m->trns.blue);
    }
    if (m->has_time)
        cm__info_add_tag(info, "time", "%04u-%02u-%02u %02u:%02u:%02u",
                         m->time.year, m->time.month, m->time.day,
                         m->time.hour, m->time.minute, m->time.second);
    if (m->plte)
        cm__info_add_tag(info, "suggested_palette", "%d colours", m->nplte);
    if (m->nchunks) {
        char names[sizeof(info->tags[0].value)] = "";
        size_t len = 0;
        for (int i = 0; i < m->nchunks && len + 6 < sizeof(names); i++)
            if (strcmp(m->chunks[i].name, "iCCP"))
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                        len ? "," : "", m->chunks[i].name);
        if (len)
            cm__info_add_tag(info, "chunks", "%s", names);
    }
    if (m->dropped[0])
        cm__info_add_tag(info, "dropped_chunks", "%s", m->dropped);
}

/* tRNS of a grey or RGB image: the samples that mean "transparent". */
static int png_colour_key(const cm_image *img, unsigned key[3])
{
    const png_meta *m = img->meta->priv;
    if (!m->has_trns || img->has_alpha || m->channels != img->channels ||
        m->depth != img->bit_depth)
        return 0;
    if (img->channels == 1) {
        key[0] = m->trns.gray;
    } else if (img->channels == 3) {
        key[0] = m->trns.red;
        key[1] = m->trns.green;
        key[2] = m->trns.blue;
    } else {
        return 0;
    }
    return 1;
}

const cm__format cm__format_png = {
    .name = "png",
    .extensions = "png",
    .probe = probe_png,
    .read = read_png,
    .write = cm__png_write,
    .meta_free = free_png_meta,
    .info = describe_png,
    .colour_key = png_colour_key,
};
