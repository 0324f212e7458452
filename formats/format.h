/*
 * Still image formats: one table-driven reader/writer interface.
 *
 * cm_image_read() reads the first bytes of a file, asks each registered
 * format's probe() whether it recognises them, and calls that format's
 * read(). A format that reads an image attaches a cm_image_meta naming
 * itself, so cm_image_write() writes the same format back with the source
 * metadata (colour tags, text, resolution...) carried through, unless the
 * output name's extension names another writable format (see
 * cm__format.extensions). Adding a format means one new cm__format and one
 * line in the registry in formats/image.c. Registered: png (libpng), exr
 * (OpenEXR Core), tiff (libtiff), dpx (own header parser), then av (every
 * other still libav decodes; read-only).
 * Library-internal, not installed.
 */
#ifndef CELMARK_FORMAT_H
#define CELMARK_FORMAT_H

#include "celmark/image.h"
#include "internal.h"
#include "pixels/pixels.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* Bytes of the file head handed to probe(): enough for every signature. */
#define CM__PROBE_BYTES 64

typedef struct cm__format {
    const char *name; /* "png"; also cm_image_info.format */
    /* Output file name extensions that select this format's writer,
     * comma-separated, lower case, without the dot ("png"); matched
     * case-insensitively. NULL for read-only formats. */
    const char *extensions;
    /* Nonzero if head (the first len <= CM__PROBE_BYTES bytes) looks like
     * this format. */
    int (*probe)(const uint8_t *head, size_t len);
    /* Read from fp (positioned at the start of the file). path is for
     * messages only. On success *out owns a meta with format == this. On
     * failure *out stays NULL, a one-line "<path>: <problem>" is in ctx, and
     * nothing is leaked. */
    int (*read)(cm_ctx *ctx, const char *path, FILE *fp,
                const cm_limits *limits, cm_image **out);
    /* Write img to fp. img->meta may be NULL or belong to another format:
     * then only the pixels are written. */
    int (*write)(cm_ctx *ctx, const cm_image *img, FILE *fp,
                 const char *path_for_messages);
    /* Free the format's private metadata (cm_image_meta.priv). */
    void (*meta_free)(void *priv);
    /* Describe the source layout and tags of an image read by this format:
     * fills format, color_type, bit_depth, interlaced, converted, tags.
     * The generic fields (width, height, channels, has_alpha) are already
     * filled by cm_image_get_info(). May be NULL. */
    void (*info)(const cm_image *img, cm_image_info *info);
    /* The colour that stands for "transparent" in an image without an
     * alpha channel (PNG tRNS on grey or RGB), in the image's samples:
     * 1 and key[0] (grey) or key[0..2] (RGB), else 0. May be NULL. */
    int (*colour_key)(const cm_image *img, unsigned key[3]);
} cm__format;

extern CM__HIDDEN const cm__format cm__format_png;
extern CM__HIDDEN const cm__format cm__format_tiff;
extern CM__HIDDEN const cm__format cm__format_dpx;
extern CM__HIDDEN const cm__format cm__format_exr;
extern CM__HIDDEN const cm__format cm__format_av;

/* The registry, in probe order; NULL-terminated. */
CM__HIDDEN const cm__format *const *cm__formats(void);

/* First format whose probe() accepts head, or NULL. */
CM__HIDDEN const cm__format *cm__format_probe(const uint8_t *head, size_t len);

/* Format by name ("png"), or NULL. */
CM__HIDDEN const cm__format *cm__format_by_name(const char *name);

/* Attach a new meta {format, priv} to img (img->meta must be NULL): the
 * pixel layer frees priv with format->meta_free and asks format->colour_key
 * for a transparent colour. On failure priv is freed with meta_free. */
CM__HIDDEN int cm__image_attach_meta(cm_image *img, const cm__format *format,
                                     void *priv);

/* Append a printf-formatted tag to a list of *ntags of at most max tags
 * (a format's own metadata, collected while reading); ignored when full.
 * Control characters in the value become spaces (one printable line). */
CM__HIDDEN void cm__tags_vadd(cm_info_tag *tags, int *ntags, int max, const char *key,
                              const char *fmt, va_list ap);

/* Append a printf-formatted tag to info; silently ignored when full. */
CM__HIDDEN void cm__info_add_tag(cm_image_info *info, const char *key,
                                 const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reverse, in the EXR file in buf, the physical order of the chunks of each
 * part p with reverse[p] (counts[p] chunks each) and rewrite their offset
 * tables (formats/exr_order.c): 0, CM_E_NOMEM, or -1 when the file is not
 * laid out as OpenEXR's Core writer lays it out. */
CM__HIDDEN int cm__exr_reverse_chunks(uint8_t *buf, size_t len, int nparts,
                                      const int32_t *counts, const int *reverse);

/* One entry of a TIFF directory as stored (formats/tiff_raw.c): where it
 * is, its type and count, and its value's bytes in file order. */
typedef struct cm__tiff_entry {
    uint64_t entry; /* file offset of the 12/20-byte entry */
    uint16_t type;
    uint64_t count, bytes;
    const uint8_t *value; /* inside the file buffer */
} cm__tiff_entry;

/* Find tag in the IFD at ifd of the TIFF in f (be: big-endian, big:
 * BigTIFF): 1 and *e, 0 absent, -1 damaged. */
CM__HIDDEN int cm__tiff_raw_entry(const uint8_t *f, size_t size, int be, int big,
                                  uint64_t ifd, uint16_t tag, cm__tiff_entry *e);
/* Offset of the first IFD, and of the IFD after ifd (0: none or damaged). */
CM__HIDDEN uint64_t cm__tiff_first_ifd(const uint8_t *f, size_t size, int be, int big);
CM__HIDDEN uint64_t cm__tiff_next_ifd(const uint8_t *f, size_t size, int be, int big,
                                      uint64_t ifd);
/* Give tag's entry in the IFD at ifd another type over the same bytes
 * (the count follows): 0, or -1 if absent or the size does not divide. */
CM__HIDDEN int cm__tiff_retype(uint8_t *f, size_t size, int be, int big, uint64_t ifd,
                               uint16_t tag, uint16_t type);

/* Source tags that no copy of an image read through libav carries (a TIFF
 * layout libtiff cannot write back): set by the TIFF reader, announced by
 * cm_image_write and listed by info as dropped_tags. "" if none. */
CM__HIDDEN void cm__av_set_lost(cm_image *img, const char *list);
CM__HIDDEN const char *cm__av_lost(const cm_image *img);

/* libav's log, shared by av.c and the video_*.c files: cm__av_log_reset() installs a
 * silent callback once per process and forgets the last error line of this
 * thread; cm__av_describe_error() is av_strerror(err) plus that line. */
CM__HIDDEN void cm__av_log_reset(void);
CM__HIDDEN void cm__av_describe_error(int err, char *out, size_t size);
/* The size libav named in a "Picture size WxH is invalid" refusal since
 * the last reset on this thread: 1 and *w, *h, or 0. */
CM__HIDDEN int cm__av_refused_size(unsigned *w, unsigned *h);

#endif
