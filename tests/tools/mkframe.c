/* celmark_mkframe OUT [WIDTH HEIGHT [SEED [CHANNELS [DEPTH [STYLE]]]]]
 * Writes one synthetic cel frame (tests/gen/cel.c) for shell tests, in the
 * format OUT's extension names: .png, or .exr (a plain half EXR, the
 * samples decoded to linear light: formats/exr.c). */
#include "cel.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT.png|OUT.exr [W H [SEED [CHANNELS [DEPTH [STYLE]]]]]\n",
                argv[0]);
        return 2;
    }
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
    cm_ctx *ctx = NULL;
    cm_image *img = NULL;
    int ret = cm_ctx_new(&ctx);
    if (!ret)
        ret = cel_generate(&img, &p);
    if (!ret)
        ret = cm_image_write(ctx, img, argv[1], CM_WRITE_FORCE);
    if (ret)
        fprintf(stderr, "mkframe: %s\n", ctx && *cm_ctx_last_error(ctx) ? cm_ctx_last_error(ctx) : cm_strerror(ret));
    cm_image_free(&img);
    cm_ctx_free(&ctx);
    return ret ? 1 : 0;
}
