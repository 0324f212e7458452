/*
 * Images and format dispatch for still files.
 *
 * cm_image_read() probes the first bytes of a file against the format
 * registry and hands the file to the matching reader; cm_image_write() writes
 * the format named by the output's extension (".png"), else the format the
 * image was read from (PNG for images made in memory), through an atomic
 * temporary file (core/fileio.c). Read-only formats (JPEG, WebP... through
 * libav) must be written under a writable format's extension. The image
 * itself, its luma plane and the marks' way back into the samples are the
 * pixel layer's (pixels/).
 */
#include "format.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Default limits (cm_limits): pixels as many as cm_image_new() allows;
 * 4 GiB per file; 64 MiB of ancillary metadata (large ICC profiles are
 * ~1 MiB, big XMP/EXIF blocks a few MiB). */
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

/* ---- limits and metadata --------------------------------------------- */

void cm_limits_default(cm_limits *l)
{
    if (!l)
        return;
    l->max_pixels = CM__DEFAULT_MAX_PIXELS;
    l->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    l->max_meta_bytes = DEFAULT_MAX_META_BYTES;
    l->max_frames = DEFAULT_MAX_FRAMES;
    l->max_decode_seconds = DEFAULT_MAX_DECODE_SECONDS;
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
    m->priv_free = format->meta_free;
    m->colour_key = format->colour_key;
    img->meta = m;
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
        fmt = img->meta && img->meta->format ? (const cm__format *)img->meta->format
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
    const cm__format *source = img->meta ? img->meta->format : NULL;
    if (source && source->info)
        source->info(img, info);
    return CM_OK;
}
