/*
 * Verifying a still file: read it (formats/) and hand its pixels to the
 * detector (verify/).
 */
#include "celmark/verify.h"

#include "internal.h"

int cm_verify_still(cm_ctx *ctx, cm_verifier *v, const char *path, const cm_limits *limits,
                    cm_verify_result *res, cm_image **keep)
{
    if (keep)
        *keep = NULL;
    if (!v || !path || !res)
        return cm__error(ctx, CM_E_INVAL, "verify: missing verifier, path or result");
    cm_image *img = NULL;
    int ret = cm_image_read(ctx, path, limits, &img);
    if (!ret)
        ret = cm_verifier_image(v, img, res);
    if (!ret && keep)
        *keep = img;
    else
        cm_image_free(&img);
    return ret;
}
