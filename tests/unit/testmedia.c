/* Media helpers shared by the cmocka tests (see testmedia.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testmedia.h"
#include "watermark/key_internal.h"

#include <unistd.h>

cm_key *test_key(uint8_t salt)
{
    uint8_t secret[32], seed[32];
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(i * 7 + salt);
        seed[i] = (uint8_t)(i * 13 + salt + 1);
    }
    cm_key *k = NULL;
    assert_int_equal(cm__key_from_bytes(&k, secret, seed), 0);
    return k;
}

cm_image *test_frame(int w, int h, uint32_t seed, int channels, int depth, cel_style style)
{
    cel_params p;
    cel_params_default(&p);
    p.width = w;
    p.height = h;
    p.seed = seed;
    p.channels = channels;
    p.bit_depth = depth;
    p.style = style;
    cm_image *img = NULL;
    assert_int_equal(cel_generate(&img, &p), 0);
    return img;
}

cm_image *test_must_read(cm_ctx *ctx, const char *path)
{
    cm_ctx *own = NULL;
    if (!ctx) {
        assert_int_equal(cm_ctx_new(&own), CM_OK);
        ctx = own;
    }
    cm_image *img = NULL;
    int ret = cm_image_read(ctx, path, NULL, &img);
    if (ret != CM_OK)
        fail_msg("cm_image_read(%s) = %d: %s", path, ret, cm_ctx_last_error(ctx));
    cm_ctx_free(&own);
    return img;
}

void test_must_write(cm_ctx *ctx, const cm_image *img, const char *path)
{
    cm_ctx *own = NULL;
    if (!ctx) {
        assert_int_equal(cm_ctx_new(&own), CM_OK);
        ctx = own;
    }
    unlink(path);
    int ret = cm_image_write(ctx, img, path, 0);
    if (ret != CM_OK)
        fail_msg("cm_image_write(%s) = %d: %s", path, ret, cm_ctx_last_error(ctx));
    cm_ctx_free(&own);
}
