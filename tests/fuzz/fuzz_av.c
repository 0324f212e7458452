/*
 * Fuzz target: still images through libav (formats/av.c): the content
 * probe, the demuxer/decoder wrapper and the pixel conversion. The input
 * goes in as an in-memory file, as a leaked JPEG/WebP/BMP/GIF would.
 */
#include "fuzz_util.h"

#include "formats/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* the probe decides whether the av reader sees the file at all; the
     * reader then probes again itself, so skip the first gate half the
     * time to reach the reader's own refusal paths */
    size_t head = size < CM__PROBE_BYTES ? size : CM__PROBE_BYTES;
    int claimed = cm__format_av.probe(data, head);
    if (!claimed && (data[0] & 1))
        return 0;
    fuzz_file f;
    fuzz_file_make(&f, data, size, 0600);
    FILE *fp = fuzz_file_open(&f);
    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        abort();
    /* default limits: the reader's own cap (pixels per byte of file)
     * must keep small inputs small (a bomb shows as an out-of-memory) */
    cm_limits lim;
    cm_limits_default(&lim);
    cm_image *img = NULL;
    int ret = cm__format_av.read(ctx, "fuzz.img", fp, &lim, &img);
    fclose(fp);
    if (ret == CM_OK) {
        if (!img || cm__image_check(img) < 0)
            abort();
        cm_image_info info;
        if (cm_image_get_info(img, &info))
            abort();
    } else if (img || !cm_ctx_last_error(ctx)[0]) {
        abort();
    }
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    fuzz_file_free(&f);
    return 0;
}
