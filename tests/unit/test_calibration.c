/*
 * Calibration: is the printed fpr honest on inputs that carry no mark of
 * this key? Under "no mark" a p-value must satisfy P(fpr <= a) <= a for
 * every level a. 1,200 unmarked inputs of six kinds (cel frames, crops of a
 * large frame, rescaled frames, Gaussian noise, photo-like texture, and
 * frames marked under ANOTHER key), each scored against one candidate id: the fraction with candidate fpr <= a must not exceed a (plus 3
 * binomial standard deviations), no claim may be made, and the blind decoder
 * must not pass its CRC more than by chance (expected 1,200 / 2^24 ~ 0).
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fpr_is_honest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
