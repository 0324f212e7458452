/*
 * Images and format dispatch for still files.
 *
 * cm_image_read() probes the first bytes of a file against the format
 * registry and hands the file to the matching reader; cm_image_write() writes
 * the format named by the output's extension (".png"), else the format the
 * image was read from (PNG for images made in memory), through an atomic
 * temporary file (core/fileio.c). Read-only formats (JPEG, WebP... through
 * libav) must be written under a writable format's extension. The luma
 * plane and the marks' way back into the samples are in formats/planes.c.
 */
#include "format.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Default limits (cm_limits): 268 Mpixel is 16k x 16k, far above any
 * production frame; 4 GiB per file; 64 MiB of ancillary metadata (large ICC
 * profiles are ~1 MiB, big XMP/EXIF blocks a few MiB). */
#define DEFAULT_MAX_PIXELS (UINT64_C(1) << 28)
#define DEFAULT_MAX_FILE_BYTES (UINT64_C(4) << 30)
#define DEFAULT_MAX_META_BYTES (UINT64_C(64) << 20)
/* Video: 1,000,000 frames is 11.5 h at 24 fps and 4.6 h at 60 fps, longer
 * than a feature film or a day of dailies in one file; more frames are a
 * bomb of tiny frames, not footage. An hour of decoding per file keeps that
 * many frames possible (280 fps, what libav decodes 1080p H.264 at on one
 * core) while a file that decodes forever is stopped; an investigator
 * scanning many untrusted files should lower it. */
#define DEFAULT_MAX_FRAMES UINT64_C(1000000)
#define DEFAULT_MAX_DECODE_SECONDS 3600.0

/* ---- registry --------------------------------------------------------- */

static const cm__format *const registry[] = {
    &cm__format_png,
    &cm__format_exr,
    &cm__format_tiff,
    &cm__format_dpx,
    &cm__format_av, /* last: the formats above keep their own faithful readers */
    NULL,
};

const cm__format *const *cm__formats(void)
{
    return registry;
}

const cm__format *cm__format_probe(const uint8_t *head, size_t len)
{
    for (const cm__format *const *f = registry; *f; f++)
        if ((*f)->probe && (*f)->probe(head, len))
            return *f;
    return NULL;
}

const cm__format *cm__format_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (const cm__format *const *f = registry; *f; f++)
        if (!strcmp((*f)->name, name))
            return *f;
    return NULL;
}

/* ---- images ----------------------------------------------------------- */

void cm_limits_default(cm_limits *l)
{
    if (!l)
        return;
    l->max_pixels = DEFAULT_MAX_PIXELS;
    l->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    l->max_meta_bytes = DEFAULT_MAX_META_BYTES;
    l->max_frames = DEFAULT_MAX_FRAMES;
    l->max_decode_seconds = DEFAULT_MAX_DECODE_SECONDS;
}

static int layout_ok(int channels, int has_alpha, int bit_depth)
{
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16))
        return 0;
    return has_alpha == (channels == 2 || channels == 4);
}

int cm__image_alloc(cm_image **out, int width, int height, int channels,
                    int has_alpha, int bit_depth, uint64_t max_pixels)
{
    cm_image *img = NULL;
    size_t row, total;

    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (width <= 0 || height <= 0 || !layout_ok(channels, has_alpha, bit_depth))
        return CM_E_INVAL;
    if ((uint64_t)width * (uint64_t)height > max_pixels)
        return CM_E_LIMIT;
    if (cm__mul_size((size_t)width, (size_t)channels * (size_t)(bit_depth / 8),
                     &row) ||
        row > PTRDIFF_MAX || cm__mul_size(row, (size_t)height, &total))
        return CM_E_LIMIT;

    if (!(img = calloc(1, sizeof(*img))))
        goto fail;
    if (!(img->data = calloc(1, total)))
        goto fail;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->has_alpha = has_alpha;
    img->bit_depth = bit_depth;
    img->sample = bit_depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8;
    img->stride = (ptrdiff_t)row;
    *out = img;
    return CM_OK;

fail:
    free(img);
    return CM_E_NOMEM;
}

int cm_image_copy_pixels(const cm_image *in, cm_image **out)
{
    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (cm__image_check(in) < 0)
        return CM_E_INVAL;
    int ret = cm_image_new(out, in->width, in->height, in->channels, in->has_alpha,
                           in->bit_depth);
    if (ret)
        return ret;
    size_t row = (size_t)in->width * in->channels * (in->bit_depth / 8);
    for (int y = 0; y < in->height; y++)
        memcpy((*out)->data + y * (*out)->stride, in->data + y * in->stride, row);
    return CM_OK;
}

int cm_image_new(cm_image **out, int width, int height, int channels,
                 int has_alpha, int bit_depth)
{
    return cm__image_alloc(out, width, height, channels, has_alpha, bit_depth,
                           DEFAULT_MAX_PIXELS);
}

void cm__image_meta_free(cm_image_meta *meta)
{
    if (!meta)
        return;
    if (meta->format && meta->format->meta_free)
        meta->format->meta_free(meta->priv);
    free(meta);
}

int cm__image_attach_meta(cm_image *img, const cm__format *format, void *priv)
{
    cm_image_meta *m = NULL;

    if (!img || !format || img->meta) {
        if (format && format->meta_free)
            format->meta_free(priv);
        return CM_E_INVAL;
    }
    if (!(m = calloc(1, sizeof(*m)))) {
        if (format->meta_free)
            format->meta_free(priv);
        return CM_E_NOMEM;
    }
    m->format = format;
    m->priv = priv;
    img->meta = m;
    return CM_OK;
}

void cm_image_free(cm_image **img)
{
    if (!img || !*img)
        return;
    cm__image_meta_free((*img)->meta);
    free((*img)->data);
    free(*img);
    *img = NULL;
}

int cm__image_check(const cm_image *img)
{
    size_t row;

    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        !layout_ok(img->channels, img->has_alpha, img->bit_depth))
        return CM_E_INVAL;
    if (img->sample != (img->bit_depth == 16 ? CM_SAMPLE_U16 : CM_SAMPLE_U8))
        return CM_E_INVAL;
    if (cm__mul_size((size_t)img->width,
                     (size_t)img->channels * (size_t)(img->bit_depth / 8), &row) ||
        img->stride <= 0 || (size_t)img->stride < row)
        return CM_E_INVAL;
    if (img->bit_depth == 16 && img->stride % 2)
        return CM_E_INVAL; /* rows of uint16_t must stay aligned */
    return CM_OK;
}

/* ---- reading and writing files ---------------------------------------- */

int cm_image_read(cm_ctx *ctx, const char *path, const cm_limits *limits,
                  cm_image **out)
{
    cm_limits defaults;
    uint8_t head[CM__PROBE_BYTES];
    struct stat st;
    FILE *fp = NULL;
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "image read: no output given");
    *out = NULL;
    if (!path || !*path)
        return cm__error(ctx, CM_E_INVAL, "image read: empty file name");
    if (!limits) {
        cm_limits_default(&defaults);
        limits = &defaults;
    }

    if (!(fp = fopen(path, "rb")))
        return cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    if (fstat(fileno(fp), &st) != 0) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path,
                        strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path,
                        strerror(EISDIR));
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            ret = cm__error(ctx, CM_E_CORRUPT, "%s: empty file", path);
            goto fail;
        }
        if ((uint64_t)st.st_size > limits->max_file_bytes) {
            ret = cm__error(ctx, CM_E_LIMIT,
                            "%s: file is %llu bytes, above the limit of %llu "
                            "bytes",
                            path, (unsigned long long)st.st_size,
                            (unsigned long long)limits->max_file_bytes);
            goto fail;
        }
    }

    size_t n = fread(head, 1, sizeof(head), fp);
    if (n < sizeof(head) && ferror(fp)) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path,
                        strerror(errno));
        goto fail;
    }
    if (n == 0) {
        ret = cm__error(ctx, CM_E_CORRUPT, "%s: empty file", path);
        goto fail;
    }
    const cm__format *fmt = cm__format_probe(head, n);
    if (!fmt || !fmt->read) {
        ret = cm__error(ctx, CM_E_FORMAT, "%s: not a recognised image format",
                        path);
        goto fail;
    }
    if (fseek(fp, 0, SEEK_SET) != 0) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path,
                        strerror(errno));
        goto fail;
    }
    ret = fmt->read(ctx, path, fp, limits, out);

fail:
    fclose(fp);
    return ret;
}

/* The writable format whose extensions include path's extension, or
 * NULL. */
static const cm__format *writer_for_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return NULL; /* no extension (".png" alone is a hidden file) */
    const size_t len = strlen(dot + 1);
    for (const cm__format *const *f = registry; *f; f++) {
        const char *e = (*f)->write ? (*f)->extensions : NULL;
        while (e && *e) {
            size_t n = strcspn(e, ",");
            if (n == len && !strncasecmp(e, dot + 1, n))
                return *f;
            e += n + (e[n] == ',');
        }
    }
    return NULL;
}

/* Does path end in the extension of an image format celmark reads but
 * cannot write? Writing PNG bytes under such a name would mislead. */
static int names_unwritable_format(const char *path)
{
    static const char *const exts[] = {"jpg", "jpeg", "jpe", "jfif", "webp", "bmp", "gif",
                                       "exr", "jp2", "j2k", "heic",
                                       "avif", "jxl", "tga", NULL};
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot)
        return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot + 1, exts[i]))
            return 1;
    return 0;
}

int cm_image_write(cm_ctx *ctx, const cm_image *img, const char *path,
                   int flags)
{
    cm__atomic a;
    int ret;

    if (!path || !*path)
        return cm__error(ctx, CM_E_INVAL, "image write: empty file name");
    if (cm__image_check(img) < 0)
        return cm__error(ctx, CM_E_INVAL, "%s: invalid image to write", path);
    if (flags & ~CM_WRITE_FORCE)
        return cm__error(ctx, CM_E_INVAL, "%s: unknown write flags 0x%x", path,
                         (unsigned)flags);

    const cm__format *fmt = writer_for_name(path);
    if (!fmt)
        fmt = img->meta && img->meta->format ? img->meta->format
                                             : &cm__format_png;
    if (fmt->write && !writer_for_name(path) && names_unwritable_format(path))
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: cannot write %s files; write a .png instead", path,
                         strrchr(path, '.') + 1);
    if (!fmt->write) {
        cm_image_info info; /* the source's name: "jpeg", not "av" */
        if (cm_image_get_info(img, &info) < 0)
            snprintf(info.format, sizeof(info.format), "%s", fmt->name);
        return cm__error(ctx, CM_E_UNSUPPORTED,
                         "%s: cannot write %s files; write a .png instead",
                         path, info.format);
    }

    if ((ret = cm__atomic_open(ctx, path, flags & CM_WRITE_FORCE, &a)) < 0)
        return ret;
    if ((ret = fmt->write(ctx, img, a.fp, path)) < 0) {
        cm__atomic_abort(&a);
        return ret;
    }
    const char *lost = cm__av_lost(img);
    if (*lost) {
        cm_image_info info;
        if (cm_image_get_info(img, &info) < 0)
            snprintf(info.color_type, sizeof(info.color_type), "this");
        cm__not_kept(ctx, lost, "the %s %s source is read through libav, which passes on "
                     "only its pixels", info.color_type, info.format);
    }
    return cm__atomic_commit(ctx, &a);
}

/* ---- info ------------------------------------------------------------- */

void cm__tags_vadd(cm_info_tag *tags, int *ntags, int max, const char *key, const char *fmt,
                   va_list ap)
{
    if (!tags || !ntags || *ntags < 0 || *ntags >= max)
        return;
    cm_info_tag *t = &tags[(*ntags)++];
    snprintf(t->key, sizeof(t->key), "%s", key);
    vsnprintf(t->value, sizeof(t->value), fmt, ap);
    /* one printable line: values come from files (text chunks, TIFF
     * strings), and `info` prints "key: value" lines */
    for (char *p = t->value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

void cm__info_add_tag(cm_image_info *info, const char *key, const char *fmt,
                      ...)
{
    if (!info)
        return;
    va_list ap;
    va_start(ap, fmt);
    cm__tags_vadd(info->tags, &info->ntags, CM_INFO_MAX_TAGS, key, fmt, ap);
    va_end(ap);
}

int cm_image_get_info(const cm_image *img, cm_image_info *info)
{
    static const char *const layouts[5] = {"", "gray", "gray+alpha", "rgb",
                                           "rgba"};
    if (!info || cm__image_check(img) < 0)
        return CM_E_INVAL;
    memset(info, 0, sizeof(*info));
    snprintf(info->format, sizeof(info->format), "none");
    snprintf(info->color_type, sizeof(info->color_type), "%s",
             layouts[img->channels]);
    info->width = img->width;
    info->height = img->height;
    info->bit_depth = img->bit_depth;
    info->channels = img->channels;
    info->has_alpha = img->has_alpha;
    if (img->meta && img->meta->format && img->meta->format->info)
        img->meta->format->info(img, info);
    return CM_OK;
}
