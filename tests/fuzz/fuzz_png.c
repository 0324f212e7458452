/*
 * Fuzz target: the PNG reader (formats/png_read.c) and, for what it accepts,
 * the writer that carries the source's chunks back out (stamp writes a
 * hostile file's metadata back), the info tags and the luma plane.
 */
#include "fuzz_util.h"

#include "formats/format.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (!fp)
        return 0;
    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        abort();
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_pixels = FUZZ_MAX_PIXELS;
    lim.max_meta_bytes = 1 << 20;
    cm_image *img = NULL;
    int ret = cm__format_png.read(ctx, "fuzz.png", fp, &lim, &img);
    fclose(fp);
    if (ret == CM_OK) {
        if (!img || cm__image_check(img) < 0)
            abort(); /* success must give a well-formed image */
        cm_image_info info;
        if (cm_image_get_info(img, &info))
            abort();
        cm_plane p;
        if (cm_image_to_plane(ctx, img, &p) == CM_OK)
            cm_plane_free(&p);
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);
        if (out) {
            (void)cm__format_png.write(ctx, img, out, "fuzz-out.png");
            fclose(out);
        }
        free(buf);
    } else if (img || !cm_ctx_last_error(ctx)[0]) {
        abort(); /* a failure must leave nothing and say why */
    }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    return 0;
}
