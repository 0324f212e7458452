/* celmark_mkframe OUT [WIDTH HEIGHT [SEED [CHANNELS [DEPTH [STYLE]]]]]
 * Writes one synthetic cel frame (tests/gen/cel.c) for shell tests.
 *
 * The output's extension picks how:
 *   .tif/.tiff  a TIFF as a pipeline would deliver it (tests/gen/fmtgen.c):
 *               LZW with the horizontal predictor, 64x64 tiles, text,
 *               resolution, ICC, XMP, private tags, EXIF and GPS IFDs and a
 *               second page; DEPTH 8 or 16
 *   .dpx        a big-endian DPX with timecode, film and TV fields and 256
 *               bytes of user data, image at offset 4096; DEPTH 8, 10, 12
 *               or 16 (default 10)
 *   otherwise   cm_image_write(): a plain PNG, or for .exr a plain half EXR
 *               (the samples decoded to linear light: formats/exr_common.c) */
#include "cel.h"
#include "fmtgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tiffio.h>

static int has_ext(const char *path, const char *ext)
{
    const char *dot = strrchr(path, '.');
    return dot && !strcasecmp(dot + 1, ext);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT [W H [SEED [CHANNELS [DEPTH [STYLE]]]]]\n", argv[0]);
        return 2;
    }
    const char *out = argv[1];
    const int is_tiff = has_ext(out, "tif") || has_ext(out, "tiff");
    const int is_dpx = has_ext(out, "dpx");
    int dpx_depth = 10;
    cel_params p;
    cel_params_default(&p);
    if (argc > 3) {
        p.width = atoi(argv[2]);
        p.height = atoi(argv[3]);
    }
    if (argc > 4)
        p.seed = (uint32_t)strtoul(argv[4], NULL, 0);
    if (argc > 5)
        p.channels = atoi(argv[5]);
    if (argc > 6)
        p.bit_depth = atoi(argv[6]);
    if (argc > 7)
        p.style = (cel_style)atoi(argv[7]);
    if (is_dpx) {
        if (argc > 6)
            dpx_depth = p.bit_depth;
        p.bit_depth = dpx_depth == 8 ? 8 : 16;
    }

    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    int ret = cm_ctx_new(&ctx);
    if (!ret)
        ret = cel_generate(&img, &p);
    if (!ret && is_tiff) {
        gen_tiff s;
        gen_tiff_default(&s);
        s.predictor = PREDICTOR_HORIZONTAL;
        s.tile = 64;
        s.tags = 1;
        s.exif = 1;
        s.extra_pages = 1;
        ret = gen_write_tiff(out, img, &s) ? CM_E_IO : CM_OK;
    } else if (!ret && is_dpx) {
        gen_dpx s;
        gen_dpx_default(&s);
        s.depth = dpx_depth;
        s.user_bytes = 256;
        s.align = 4096;
        s.fill_header = 1;
        ret = gen_write_dpx(out, img, &s) ? CM_E_IO : CM_OK;
    } else if (!ret) {
        ret = cm_image_write(ctx, img, out, CM_WRITE_FORCE);
    }
    if (ret)
        fprintf(stderr, "mkframe: %s\n", ctx && *cm_ctx_last_error(ctx) ? cm_ctx_last_error(ctx) : cm_strerror(ret));
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    return ret ? 1 : 0;
}
