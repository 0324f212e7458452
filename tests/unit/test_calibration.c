/*
 * Calibration: is the printed fpr honest on inputs that carry no mark of
 * this key? Under "no mark" a p-value must satisfy P(fpr <= a) <= a for
 * every level a. 1,200 unmarked inputs of six kinds (cel frames, crops of a
 * large frame, rescaled frames, Gaussian noise, photo-like texture, and
 * frames marked under ANOTHER key), each scored against one candidate id: the fraction with candidate fpr <= a must not exceed a (plus 3
 * binomial standard deviations), no claim may be made, and the blind decoder
 * must not pass its CRC more than by chance (expected 1,200 / 2^24 ~ 0).
 *
 * Second claims (several marks in one frame, verify/verifier.c): on frames
 * that carry ONE mark, the fpr of a later claim must be honest the same
 * way. 600 single-marked cel frames (six true ids, a hundred frames each,
 * half with noise added), each verified with candidates {true id, one
 * wrong id} and max_fpr = 1 so every later round reports its best: the
 * fraction of frames where the wrong id's fpr falls at or below a must not
 * exceed a (plus 3 binomial standard deviations); at the default max_fpr
 * no frame may show a second claim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cel.h"
#include "unmarked.h"
#include "celmark/celmark.h"
#include "watermark/key_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 320
#define H 240
#define PER_KIND 200

static cm_key *key_with(uint8_t salt)
{
    uint8_t a[32], b[32];
    for (int i = 0; i < 32; i++) {
        a[i] = (uint8_t)(salt * 31 + i);
        b[i] = (uint8_t)(salt * 17 + 3 * i);
    }
    cm_key *k = NULL;
    assert_int_equal(cm__key_from_bytes(&k, a, b), 0);
    return k;
}

static void test_fpr_is_honest(void **state)
{
    (void)state;
    cm_key *key = key_with(1), *other = key_with(2);
    cel_params bp;
    cel_params_default(&bp);
    bp.width = 1280;
    bp.height = 720;
    bp.seed = 77;
    cm_image *bigimg = NULL;
    cm_plane big = {0};
    assert_int_equal(cel_generate(&bigimg, &bp), 0);
    assert_int_equal(cm_image_to_plane(NULL, bigimg, &big), 0);
    um_source src = {0x853c49e6748fea9bULL, other, &big};
    /* one fixed candidate id: the inputs vary, the id need not */
    uint64_t cand = 0x0123456789abcdefULL;
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = &cand;
    vp.ncandidates = 1;
    cm_verifier *v = NULL;
    assert_int_equal(cm_verifier_new(NULL, key, &vp, &v), 0);
    static const double levels[] = {0.5, 0.2, 0.05, 0.01};
    int below[4] = {0}, claims = 0, crc_passes = 0, n = 0;
    double zsum = 0, zsq = 0;
    for (int kind = 0; kind < UM_KINDS; kind++) {
        for (int i = 0; i < PER_KIND; i++) {
            cm_verify_result r;
            if (kind == UM_CEL || kind == UM_OTHER_KEY) {
                /* colour frames go through the image path: luma + chroma */
                cm_image *img = NULL;
                assert_int_equal(um_generate_image(&src, (um_kind)kind, i, W, H, &img), 0);
                assert_int_equal(cm_verifier_image(v, img, &r), 0);
                cm_image_free(&img);
            } else {
                cm_plane p = {0};
                assert_int_equal(um_generate(&src, (um_kind)kind, i, W, H, &p), 0);
                assert_int_equal(cm_verifier_plane(v, &p, &r), 0);
                cm_plane_free(&p);
            }
            n++;
            claims += r.marked;
            crc_passes += r.blind_crc_ok;
            for (int l = 0; l < 4; l++)
                below[l] += r.candidate_fpr <= levels[l];
            zsum += r.candidate_score;
            zsq += r.candidate_score * r.candidate_score;
        }
    }
    double mean = zsum / n, sd = sqrt(zsq / n - mean * mean);
    print_message("%d inputs: claims %d, blind CRC passes %d, best-candidate z mean %.3f sd %.3f\n",
                  n, claims, crc_passes, mean, sd);
    for (int l = 0; l < 4; l++) {
        double expect = levels[l] * n, slack = 3 * sqrt(levels[l] * (1 - levels[l]) * n);
        print_message("  P(fpr <= %.2f): %d of %d (honest if <= %.0f)\n", levels[l], below[l], n,
                      expect + slack);
        assert_true(below[l] <= expect + slack);
    }
    assert_int_equal(claims, 0);
    assert_true(crc_passes <= 1);
    /* the statistic itself: max of at most 2 hypotheses of N(0,1) scores,
     * so its mean lies in [0, 0.57) and its spread near 1 */
    assert_true(mean > -0.1 && mean < 0.70);
    assert_true(sd > 0.75 && sd < 1.15);
    cm_verifier_free(&v);
    cm_plane_free(&big);
    cm_image_free(&bigimg);
    cm_key_free(&key);
    cm_key_free(&other);
}

/* The wrong candidate's fpr in r (1 when it was not claimed). */
static double claim_fpr_of(const cm_verify_result *r, uint64_t id)
{
    for (int i = 0; i < r->nclaims; i++)
        if (r->claims[i].issue_id == id)
            return r->claims[i].fpr;
    return 1;
}

static void test_second_claims_are_honest(void **state)
{
    (void)state;
    cm_key *key = key_with(3);
    static const double levels[] = {0.5, 0.2, 0.05, 0.01};
    int below[4] = {0}, n = 0, seconds = 0, firsts = 0;
    uint64_t s = 0x2545f4914f6cdd1dULL;
    for (int t = 0; t < 6; t++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint64_t truth = s;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint64_t cands[2] = {truth, s};
        cm_stamper *st = NULL;
        assert_int_equal(cm_stamper_new(NULL, key, truth, NULL, &st), 0);
        cm_verify_params loose, strict;
        cm_verify_params_default(&loose);
        loose.candidates = cands;
        loose.ncandidates = 2;
        loose.max_fpr = 1;
        strict = loose;
        strict.max_fpr = 1e-9;
        cm_verifier *vl = NULL, *vs = NULL;
        assert_int_equal(cm_verifier_new(NULL, key, &loose, &vl), 0);
        assert_int_equal(cm_verifier_new(NULL, key, &strict, &vs), 0);
        for (int i = 0; i < 100; i++) {
            cel_params cp;
            cel_params_default(&cp);
            cp.width = 384;
            cp.height = 384;
            cp.seed = (uint32_t)(1000 * t + i + 1);
            cp.style = (cel_style)(1 + i % CEL_MIXED_COUNT);
            cm_image *img = NULL;
            assert_int_equal(cel_generate(&img, &cp), 0);
            assert_int_equal(cm_stamper_image(st, img), 0);
            if (i % 2) { /* noise of 3 code values: weaker marks, other residuals */
                for (size_t k = 0; k < (size_t)img->height * img->stride; k++) {
                    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                    int v = img->data[k] + (int)(s % 7) - 3;
                    img->data[k] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
            }
            cm_verify_result r;
            assert_int_equal(cm_verifier_image(vs, img, &r), 0);
            if (r.marked) {
                firsts++;
                assert_true(r.claims[0].issue_id == truth);
                seconds += r.nclaims > 1;
            }
            assert_int_equal(cm_verifier_image(vl, img, &r), 0);
            double f = claim_fpr_of(&r, cands[1]);
            for (int l = 0; l < 4; l++)
                below[l] += f <= levels[l];
            n++;
            cm_image_free(&img);
        }
        cm_verifier_free(&vl);
        cm_verifier_free(&vs);
        cm_stamper_free(&st);
    }
    print_message("%d single-marked frames: first claims %d, second claims %d\n", n, firsts,
                  seconds);
    for (int l = 0; l < 4; l++) {
        double expect = levels[l] * n, slack = 3 * sqrt(levels[l] * (1 - levels[l]) * n);
        print_message("  P(second fpr <= %.2f): %d of %d (honest if <= %.0f)\n", levels[l],
                      below[l], n, expect + slack);
        assert_true(below[l] <= expect + slack);
    }
    assert_true(firsts > n * 9 / 10); /* the test means something only on marked frames */
    assert_int_equal(seconds, 0);
    cm_key_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fpr_is_honest),
        cmocka_unit_test(test_second_claims_are_honest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
