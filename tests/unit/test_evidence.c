/* Evidence over many frames (verify/verifier.c cm_evidence_*) and image
 * sequence patterns and ranges (formats/seq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cel.h"
#include "celmark/celmark.h"
#include "testmedia.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID 0x00c0ffee5eed0042ULL

/* A stamped 640x360 cel frame's luma. */
static void marked_luma(const cm_key *k, cm_plane *out)
{
    cel_params p;
    cel_params_default(&p);
    p.width = 640;
    p.height = 360;
    p.seed = 11;
    p.style = CEL_FLAT;
    cm_image *img = NULL;
    cm_stamper *st = NULL;
    assert_int_equal(cel_generate(&img, &p), 0);
    assert_int_equal(cm_stamper_new(NULL, k, ID, NULL, &st), 0);
    assert_int_equal(cm_stamper_image(st, img), 0);
    assert_int_equal(cm_image_to_plane(NULL, img, out), 0);
    cm_stamper_free(&st);
    cm_image_free(&img);
}

/* A counter-based generator (SplitMix64's finaliser on a distinct counter
 * per frame and sample): frames get independent noise. Seeding one LCG per
 * frame would not do: LCG streams from related seeds are correlated, and
 * correlated noise does not average out over frames. */
static double uniform01(uint64_t counter)
{
    uint64_t z = counter * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((z >> 11) + 0.5) / 9007199254740992.0;
}

/* luma + Gaussian noise of sigma (Box-Muller): frame f. */
static void noisy(const cm_plane *src, cm_plane *dst, float sigma, uint32_t f)
{
    uint64_t c = (uint64_t)f << 40;
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < src->width; x++, c += 2) {
            double n = sqrt(-2 * log(uniform01(c))) * cos(2 * M_PI * uniform01(c + 1));
            dst->data[y * dst->stride + x] = src->data[y * src->stride + x] + (float)(sigma * n);
        }
}

/* Frames too noisy to decode alone add up to a claim; another key's
 * verifier claims nothing on the same evidence. */
static void test_evidence_adds_up(void **state)
{
    (void)state;
    cm_key *k = test_key(1), *other = test_key(2);
    cm_plane clean = {0}, f = {0};
    marked_luma(k, &clean);
    assert_int_equal(cm_plane_alloc(&f, clean.width, clean.height), 0);
    cm_verifier *v = NULL, *vo = NULL;
    assert_int_equal(cm_verifier_new(NULL, k, NULL, &v), 0);
    assert_int_equal(cm_verifier_new(NULL, other, NULL, &vo), 0);
    cm_evidence *e = NULL;
    assert_int_equal(cm_evidence_new(&e), 0);
    const float sigma = 30; /* single frames: sync ~3.6, no decode */
    int single_claims = 0;
    const uint32_t nf = 16;
    for (uint32_t i = 0; i < nf; i++) {
        noisy(&clean, &f, sigma, i);
        cm_verify_result r;
        assert_int_equal(cm_verifier_plane(v, &f, &r), 0);
        single_claims += r.marked;
        assert_int_equal(cm_evidence_add(e, &f, NULL), 0);
    }
    assert_int_equal(single_claims, 0); /* the noise defeats every single frame */
    assert_int_equal(cm_evidence_frames(e), nf);
    cm_verify_result r;
    assert_int_equal(cm_verifier_evidence(v, e, &r), 0);
    assert_true(r.marked);
    assert_true(r.issue_id == ID);
    assert_true(r.fpr <= 1e-9);
    assert_int_equal(cm_verifier_evidence(vo, e, &r), 0);
    assert_false(r.marked);

    /* merge: two halves equal the whole */
    cm_evidence *a = NULL, *b = NULL;
    assert_int_equal(cm_evidence_new(&a), 0);
    assert_int_equal(cm_evidence_new(&b), 0);
    for (uint32_t i = 0; i < 16; i++) {
        noisy(&clean, &f, sigma, i);
        assert_int_equal(cm_evidence_add(i < 8 ? a : b, &f, NULL), 0);
    }
    assert_int_equal(cm_evidence_merge(a, b), 0);
    assert_int_equal(cm_evidence_frames(a), 16);
    cm_verify_result ra;
    assert_int_equal(cm_verifier_evidence(v, e, &r), 0);
    assert_int_equal(cm_verifier_evidence(v, a, &ra), 0);
    assert_true(ra.marked && ra.issue_id == ID);
    assert_true(fabs(ra.score - r.score) < 1e-3);

    cm_evidence_reset(e);
    assert_int_equal(cm_evidence_frames(e), 0);
    assert_int_equal(cm_verifier_evidence(v, e, &r), 0);
    assert_false(r.marked);

    cm_evidence_free(&a);
    cm_evidence_free(&b);
    cm_evidence_free(&e);
    assert_null(e);
    cm_verifier_free(&v);
    cm_verifier_free(&vo);
    cm_plane_free(&clean);
    cm_plane_free(&f);
    cm_key_free(&k);
    cm_key_free(&other);
}

static void test_evidence_bad_input(void **state)
{
    (void)state;
    cm_evidence *e = NULL, *e2 = NULL;
    cm_plane p = {0}, q = {0}, tiny = {0};
    assert_int_equal(cm_evidence_new(&e), 0);
    assert_int_equal(cm_evidence_new(&e2), 0);
    assert_int_equal(cm_plane_alloc(&p, 200, 120), 0);
    assert_int_equal(cm_plane_alloc(&q, 240, 120), 0);
    assert_int_equal(cm_plane_alloc(&tiny, 16, 16), 0);
    assert_int_equal(cm_evidence_new(NULL), CM_E_INVAL);
    assert_int_equal(cm_evidence_add(NULL, &p, NULL), CM_E_INVAL);
    assert_int_equal(cm_evidence_add(e, NULL, NULL), CM_E_INVAL);
    assert_int_equal(cm_evidence_add(e, &p, &q), CM_E_INVAL); /* chroma of another size */
    assert_int_equal(cm_evidence_frames(e), 0);
    assert_int_equal(cm_evidence_add(e, &p, NULL), 0);
    assert_int_equal(cm_evidence_add(e, &q, NULL), CM_E_INVAL); /* size changed */
    assert_int_equal(cm_evidence_frames(e), 1);
    assert_int_equal(cm_evidence_add(e, &tiny, NULL), 0); /* counted, carries nothing */
    assert_int_equal(cm_evidence_frames(e), 2);
    assert_int_equal(cm_evidence_add(e2, &q, NULL), 0);
    assert_int_equal(cm_evidence_merge(e, e2), CM_E_INVAL);
    assert_int_equal(cm_evidence_merge(NULL, e2), CM_E_INVAL);
    cm_evidence_reset(e); /* emptied: takes a new size */
    assert_int_equal(cm_evidence_add(e, &q, NULL), 0);
    assert_int_equal(cm_evidence_merge(e, e2), 0);
    assert_int_equal(cm_evidence_frames(e), 2);
    cm_evidence_free(&e);
    cm_evidence_free(&e2);
    cm_evidence_free(NULL);
    cm_plane_free(&p);
    cm_plane_free(&q);
    cm_plane_free(&tiny);
}

/* ---- sequences --------------------------------------------------------- */

static void touch(const char *dir, const char *fmt, long f)
{
    char name[64], path[600];
    snprintf(name, sizeof(name), fmt, f);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    test_save_file(path, "x", 1);
}

static void expect_frames(const char *pattern, const char *range, const int64_t *want, size_t n)
{
    cm_ctx *ctx = NULL;
    cm_sequence *s = NULL;
    assert_int_equal(cm_ctx_new(&ctx), 0);
    int ret = cm_sequence_open(ctx, pattern, range, &s);
    if (ret)
        fprintf(stderr, "%s\n", cm_ctx_last_error(ctx));
    assert_int_equal(ret, 0);
    assert_int_equal(s->nframes, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s->frames[i], want[i]);
    cm_sequence_free(&s);
    assert_null(s);
    cm_ctx_free(&ctx);
}

static void expect_error(const char *pattern, const char *range, int code, const char *msg)
{
    cm_ctx *ctx = NULL;
    cm_sequence *s = NULL;
    assert_int_equal(cm_ctx_new(&ctx), 0);
    assert_int_equal(cm_sequence_open(ctx, pattern, range, &s), code);
    assert_null(s);
    assert_non_null(strstr(cm_ctx_last_error(ctx), msg));
    cm_ctx_free(&ctx);
}

static void test_sequence_patterns(void **state)
{
    (void)state;
    assert_true(cm_sequence_is_pattern("a.####.png"));
    assert_true(cm_sequence_is_pattern("a.%04d.png"));
    assert_true(cm_sequence_is_pattern("a.%d.png"));
    assert_false(cm_sequence_is_pattern("a.png"));
    assert_false(cm_sequence_is_pattern("100%.png"));
    assert_false(cm_sequence_is_pattern(NULL));

    path_buf dir = test_tmp_path("seq", "");
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir.s, dir.s);
    assert_int_equal(system(cmd), 0);
    for (long f = 1; f <= 12; f++)
        touch(dir.s, "sh.%04ld.png", f);
    touch(dir.s, "sh.%ld.png", 99);      /* other padding: not this sequence */
    touch(dir.s, "sh.%04ld.png.bak", 13); /* other suffix */
    char pat[600], pat2[600], emb[600];
    snprintf(pat, sizeof(pat), "%s/sh.####.png", dir.s);
    snprintf(pat2, sizeof(pat2), "%s/sh.%%04d.png", dir.s);
    snprintf(emb, sizeof(emb), "%s/sh.3-5####.png", dir.s);

    const int64_t all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    expect_frames(pat, NULL, all, 12);
    expect_frames(pat2, NULL, all, 12);
    const int64_t x5[] = {1, 6, 11};
    expect_frames(pat, "1-12x5", x5, 3);
    const int64_t y3[] = {2, 3, 5, 6, 8, 9};
    expect_frames(pat, "1-9y3", y3, 6);
    const int64_t list[] = {1, 3, 10, 11, 12};
    expect_frames(pat, "1,3,10-12", list, 5);
    const int64_t mid[] = {3, 4, 5};
    expect_frames(emb, NULL, mid, 3);

    cm_ctx *ctx = NULL;
    cm_sequence *s = NULL, *o = NULL;
    char path[700];
    assert_int_equal(cm_ctx_new(&ctx), 0);
    assert_int_equal(cm_sequence_open(ctx, pat, "10-12", &s), 0);
    assert_int_equal(cm_sequence_rename(ctx, s, "out/o.%06d.exr", &o), 0);
    assert_int_equal(cm_sequence_path(o, 0, path, sizeof(path)), 0);
    assert_string_equal(path, "out/o.000010.exr");
    assert_int_equal(cm_sequence_path(o, 3, path, sizeof(path)), CM_E_INVAL);
    assert_int_equal(cm_sequence_path(o, 0, path, 8), CM_E_INVAL); /* too small */
    cm_sequence_free(&o);
    assert_int_equal(cm_sequence_rename(ctx, s, "out/o.exr", &o), CM_E_INVAL);
    assert_null(o);
    cm_sequence_free(&s);
    cm_ctx_free(&ctx);

    expect_error(pat, "12-1", CM_E_INVAL, "frame range");
    expect_error(pat, "1-5x0", CM_E_INVAL, "frame range");
    expect_error(pat, "a-b", CM_E_INVAL, "frame range");
    expect_error(pat, "", CM_E_INVAL, "frame range");
    expect_error(pat, "1-99999999999", CM_E_LIMIT, "too many frames");
    expect_error(pat, "10-14", CM_E_IO, "frame 13 is missing");
    expect_error(emb, "1-2", CM_E_INVAL, "frame range already");
    char none[600];
    snprintf(none, sizeof(none), "%s/none.####.png", dir.s);
    expect_error(none, NULL, CM_E_IO, "no frame of this sequence");
    expect_error("a.png", NULL, CM_E_INVAL, "not a sequence pattern");
    snprintf(path, sizeof(path), "%s/sh.0006.png", dir.s);
    assert_int_equal(remove(path), 0);
    expect_error(pat, NULL, CM_E_IO, "frame 6 is missing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evidence_adds_up),
        cmocka_unit_test(test_evidence_bad_input),
        cmocka_unit_test(test_sequence_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
