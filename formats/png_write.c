/*
 * PNG writer (see formats/png_common.h): the pixels, and an image read from
 * a PNG with its source's chunks where they still apply.
 */
#include "png_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* zlib level for IDAT: libpng's and most tools' default; good size/speed. */
#define WRITE_ZLIB_LEVEL 6

/* ---- libpng callbacks ------------------------------------------------- */

static void write_fn(png_structp png, png_bytep data, size_t len)
{
    png_io *io = png_get_io_ptr(png);
    if (fwrite(data, 1, len, io->fp) != len) {
        io->err_no = errno ? errno : EIO;
        png_error(png, "write error");
    }
}

static void flush_fn(png_structp png)
{
    (void)png; /* cm__atomic_commit flushes and syncs */
}

/* ---- writing ---------------------------------------------------------- */

typedef struct writer {
    png_io io;
    cm_ctx *ctx;
    const char *path;
    const cm_image *img;
    const png_meta *meta; /* NULL: pixels only */
    png_structp png;
    png_infop info;
    png_bytep *rows;
    png_text *text; /* scratch copies handed to png_set_text */
    png_unknown_chunk *chunks;
} writer;

static int write_failure(writer *w)
{
    if (w->io.err_no)
        return cm__error(w->ctx, CM_E_IO, "%s: cannot write output: %s",
                         w->path, strerror(w->io.err_no));
    if (strstr(w->io.msg, "Out of memory") || strstr(w->io.msg, "Out of Memory"))
        return cm__error(w->ctx, CM_E_NOMEM, "%s: out of memory writing PNG",
                         w->path);
    return cm__error(w->ctx, CM_E_INTERNAL, "%s: cannot encode PNG: %s",
                     w->path, w->io.msg);
}

/* Hand the texts located before (after = 0) or after the image data to
 * libpng. */
static void set_texts(writer *w, int after)
{
    const png_meta *m = w->meta;
    int n = 0;
    for (int i = 0; i < m->ntext; i++) {
        const meta_text *t = &m->text[i];
        if (t->after != after)
            continue;
        png_text *d = &w->text[n++];
        memset(d, 0, sizeof(*d));
        d->compression = t->compression;
        d->key = t->key;
        d->text = t->text;
        d->text_length = strlen(t->text);
        d->lang = t->lang;
        d->lang_key = t->lang_key;
    }
    if (n)
        png_set_text(w->png, w->info, w->text, n);
}

static void set_meta_pre(writer *w)
{
    const png_meta *m = w->meta;
    const cm_image *img = w->img;
    png_structp png = w->png;
    png_infop info = w->info;
    /* tRNS, sBIT, bKGD and the suggested palette refer to the decoded
     * layout; they are dropped if the image no longer has it. */
    int same_layout = m->channels == img->channels && m->depth == img->bit_depth;

    if (m->seen & SEEN_gAMA)
        png_set_gAMA_fixed(png, info, m->gamma);
    if (m->seen & SEEN_cHRM)
        png_set_cHRM_fixed(png, info, m->chrm[0], m->chrm[1], m->chrm[2],
                           m->chrm[3], m->chrm[4], m->chrm[5], m->chrm[6],
                           m->chrm[7]);
    if (m->seen & SEEN_sRGB)
        png_set_sRGB(png, info, m->srgb_intent);
    if (m->has_phys)
        png_set_pHYs(png, info, m->phys_x, m->phys_y, m->phys_unit);
    if (same_layout) {
        if (m->has_sbit) {
            png_color_8 sb = m->sbit;
            png_set_sBIT(png, info, &sb);
        }
        if (m->has_bkgd) {
            png_color_16 bg = m->bkgd;
            png_set_bKGD(png, info, &bg);
        }
        if (m->has_trns && (img->channels == 1 || img->channels == 3)) {
            png_color_16 tc = m->trns;
            png_set_tRNS(png, info, NULL, 0, &tc);
        }
        if (m->plte && img->channels >= 3)
            png_set_PLTE(png, info, m->plte, m->nplte);
    }
    if (m->has_time && !m->time_after) {
        png_time t = m->time;
        png_set_tIME(png, info, &t);
    }
    if (m->exif && !m->exif_after)
        png_set_eXIf_1(png, info, m->exif_len, m->exif);
    set_texts(w, 0);
    if (m->nchunks) {
        for (int i = 0; i < m->nchunks; i++) {
            png_unknown_chunk *c = &w->chunks[i];
            memset(c, 0, sizeof(*c));
            memcpy(c->name, m->chunks[i].name, 5);
            c->data = m->chunks[i].data;
            c->size = m->chunks[i].size;
            c->location = m->chunks[i].location;
        }
        /* Write every chunk handed over, whatever its copy-safety bit. */
        png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, NULL, 0);
        png_set_unknown_chunks(png, info, w->chunks, m->nchunks);
    }
}

static void set_meta_post(writer *w)
{
    const png_meta *m = w->meta;
    if (m->has_time && m->time_after) {
        png_time t = m->time;
        png_set_tIME(w->png, w->info, &t);
    }
    if (m->exif && m->exif_after)
        png_set_eXIf_1(w->png, w->info, m->exif_len, m->exif);
    set_texts(w, 1);
}

static int write_inner(writer *w)
{
    png_structp png = w->png;
    const cm_image *img = w->img;
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY,
                                       PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};

    if (setjmp(png_jmpbuf(png)))
        return write_failure(w);

    png_set_write_fn(png, &w->io, write_fn, flush_fn);
    png_set_benign_errors(png, 1);
    png_set_compression_level(png, WRITE_ZLIB_LEVEL);
    png_set_IHDR(png, w->info, (png_uint_32)img->width, (png_uint_32)img->height,
                 img->bit_depth, color_types[img->channels],
                 w->meta ? w->meta->interlace : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
    if (w->meta)
        set_meta_pre(w);
    png_write_info(png, w->info);
    /* libpng 1.6.39 writes eXIf again in png_write_end (no "written" flag):
     * drop it from info once it is out. */
    if (w->meta && w->meta->exif && !w->meta->exif_after)
        png_free_data(png, w->info, PNG_FREE_EXIF, 0);
    if (img->bit_depth == 16 && cm__png_host_is_little_endian())
        png_set_swap(png);
    if (w->meta && w->meta->interlace != PNG_INTERLACE_NONE)
        (void)png_set_interlace_handling(png);
    png_write_image(png, w->rows);
    if (w->meta)
        set_meta_post(w);
    png_write_end(png, w->info);
    return CM_OK;
}

int cm__png_write(cm_ctx *ctx, const cm_image *img, FILE *fp, const char *path)
{
    writer w;
    int ret;

    if (!path)
        path = "(output)";
    if (!img || !fp)
        return cm__error(ctx, CM_E_INVAL, "%s: png write: invalid argument", path);
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "%s: invalid image", path);
    if ((unsigned)img->width > MAX_DIMENSION || (unsigned)img->height > MAX_DIMENSION)
        return cm__error(ctx, CM_E_LIMIT, "%s: image too large for PNG", path);

    memset(&w, 0, sizeof(w));
    w.io.fp = fp;
    w.io.ctx = ctx;
    w.io.writing = 1;
    w.ctx = ctx;
    w.path = path;
    w.img = img;
    if (img->meta && img->meta->format == &cm__format_png)
        w.meta = img->meta->priv;

    w.rows = cm__malloc_array((size_t)img->height, sizeof(*w.rows));
    if (!w.rows)
        goto nomem;
    for (int y = 0; y < img->height; y++)
        w.rows[y] = img->data + (size_t)y * (size_t)img->stride;
    if (w.meta && w.meta->ntext &&
        !(w.text = cm__calloc_array((size_t)w.meta->ntext, sizeof(*w.text))))
        goto nomem;
    if (w.meta && w.meta->nchunks &&
        !(w.chunks = cm__calloc_array((size_t)w.meta->nchunks, sizeof(*w.chunks))))
        goto nomem;

    w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w.io, cm__png_error_fn,
                                    cm__png_warning_fn);
    if (!w.png || !(w.info = png_create_info_struct(w.png)))
        goto nomem;
    ret = write_inner(&w);
    goto done;

nomem:
    ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory writing PNG", path);
done:
    if (w.png)
        png_destroy_write_struct(&w.png, w.info ? &w.info : NULL);
    free(w.rows);
    free(w.text);
    free(w.chunks);
    return ret;
}
