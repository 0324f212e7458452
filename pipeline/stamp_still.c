/*
 * Stamping a still file: read it (formats/), keep its pixels to measure
 * the copy against, stamp (watermark/), measure, decode the stamped pixels
 * with the caller's verifier (verify/) and write the copy in the input's
 * format with its metadata.
 */
#include "celmark/stamp.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

int cm_stamp_still(cm_ctx *ctx, cm_stamper *s, cm_verifier *check, const char *in,
                   const char *out, const cm_limits *limits, int flags,
                   cm_still_stamp_info *info)
{
    if (!s || !in || !out || !info)
        return cm__error(ctx, CM_E_INVAL, "still stamp: missing stamper, path or info");
    memset(info, 0, sizeof(*info));
    cm_image *img = NULL, *orig = NULL;
    cm_ctx_clear_warnings(ctx);
    int ret = cm_image_read(ctx, in, limits, &img);
    if (!ret) /* the input's pixels, to tell the producer what was done to them */
        ret = cm_image_copy_pixels(img, &orig);
    if (!ret)
        ret = cm_stamper_image(s, img);
    if (!ret)
        ret = cm_image_delta_e(ctx, orig, img, &info->de);
    cm_image_free(&orig);
    if (ret) {
        cm_image_free(&img);
        return ret;
    }
    cm_image_info src;
    if (!cm_image_get_info(img, &src) && src.converted) {
        info->converted = 1;
        snprintf(info->source_layout, sizeof(info->source_layout), "%s", src.color_type);
    }
    if (check) {
        /* advice, not the stamp's failure: a check that cannot run says so */
        if (cm_verifier_image(check, img, &info->check_result) == CM_OK)
            info->checked = 1;
        else
            snprintf(info->check_error, sizeof(info->check_error), "%s",
                     cm_ctx_last_error(ctx));
    }
    info->width = img->width;
    info->height = img->height;
    info->channels = img->channels;
    info->has_alpha = img->has_alpha;
    /* colour images also carry the blue-yellow share (watermark/embed.c) */
    info->colour = cm_image_is_colour(img);
    ret = cm_image_write(ctx, img, out, flags);
    cm_image_free(&img);
    return ret;
}
