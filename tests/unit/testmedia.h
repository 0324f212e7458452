/* Media helpers shared by the cmocka tests (they assert: a failure fails
 * the calling test): fixed keys, generated cel frames, checked file I/O. */
#ifndef CELMARK_TESTMEDIA_H
#define CELMARK_TESTMEDIA_H

#include "cel.h"
#include "celmark/celmark.h"

#include <stdint.h>

/* A fixed key: different salts give unrelated keys, the same salt the same
 * key in every test. Free with cm_key_free. */
cm_key *test_key(uint8_t salt);

/* A generated cel frame (tests/gen/cel.c). */
cm_image *test_frame(int w, int h, uint32_t seed, int channels, int depth, cel_style style);

/* cm_image_read that must succeed (ctx may be NULL: a private one). */
cm_image *test_must_read(cm_ctx *ctx, const char *path);

/* cm_image_write to path, replacing it, that must succeed (ctx may be NULL). */
void test_must_write(cm_ctx *ctx, const cm_image *img, const char *path);

#endif
