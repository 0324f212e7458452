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
#include "celmark/celmark.h"
#include "watermark/key_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 320
#define H 240
#define PER_KIND 200
#define KINDS 6

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static uint64_t rng_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unit(void)
{
    return ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_gauss(void)
{
    return sqrt(-2 * log(rng_unit())) * cos(2 * M_PI * rng_unit());
}

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

static cm_image *cel(int w, int h, uint32_t seed)
{
    cel_params p;
    cel_params_default(&p);
    p.width = w;
    p.height = h;
    p.seed = seed;
    cm_image *img = NULL;
    assert_int_equal(cel_generate(&img, &p), 0);
    return img;
}

static void to_plane(const cm_image *img, cm_plane *p)
{
    assert_int_equal(cm_image_to_plane(NULL, img, p), 0);
}

/* One unmarked input of the given kind into p (W x H). */
static void make_input(int kind, int i, const cm_key *other, const cm_plane *big, cm_plane *p)
{
    switch (kind) {
    case 0: { /* cel frames */
        cm_image *img = cel(W, H, 1000 + i);
        to_plane(img, p);
        cm_image_free(&img);
        break;
    }
    case 1: { /* crops of one large frame at random offsets */
        assert_int_equal(cm_plane_alloc(p, W, H), 0);
        int x0 = (int)(rng_u64() % (uint64_t)(big->width - W));
        int y0 = (int)(rng_u64() % (uint64_t)(big->height - H));
        for (int y = 0; y < H; y++)
            memcpy(p->data + y * p->stride, big->data + (y0 + y) * big->stride + x0, sizeof(float) * W);
        break;
    }
    case 2: { /* a frame rescaled by 1/2 (2x2 mean) */
        cm_image *img = cel(2 * W, 2 * H, 3000 + i);
        cm_plane q = {0};
        to_plane(img, &q);
        assert_int_equal(cm_plane_alloc(p, W, H), 0);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *a = q.data + 2 * y * q.stride + 2 * x;
                p->data[y * p->stride + x] =
                    floorf((a[0] + a[1] + a[q.stride] + a[q.stride + 1]) / 4 + 0.5f);
            }
        cm_plane_free(&q);
        cm_image_free(&img);
        break;
    }
    case 3: { /* Gaussian noise around mid-grey */
        assert_int_equal(cm_plane_alloc(p, W, H), 0);
        double sd = 2 + 30 * rng_unit();
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = floor(128 + sd * rng_gauss() + 0.5);
                p->data[y * p->stride + x] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        break;
    }
    case 4: { /* photo-like: smooth random blobs, fine grain, a few hard edges */
        assert_int_equal(cm_plane_alloc(p, W, H), 0);
        double cx[6], cy[6], amp[6], rad[6];
        for (int k = 0; k < 6; k++) {
            cx[k] = rng_unit() * W;
            cy[k] = rng_unit() * H;
            amp[k] = 60 * rng_gauss();
            rad[k] = 20 + 100 * rng_unit();
        }
        double edge = rng_unit() * W, grain = 1 + 4 * rng_unit();
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = 120 + (x > edge + 0.3 * y ? 40 : 0);
                for (int k = 0; k < 6; k++)
                    v += amp[k] * exp(-((x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k])) /
                                      (2 * rad[k] * rad[k]));
                v = floor(v + grain * rng_gauss() + 0.5);
                p->data[y * p->stride + x] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        break;
    }
    default: { /* marked, but under another key */
        cm_image *img = cel(W, H, 5000 + i);
        cm_stamper *st = NULL;
        assert_int_equal(cm_stamper_new(NULL, other, rng_u64(), NULL, &st), 0);
        assert_int_equal(cm_stamper_image(st, img), 0);
        cm_stamper_free(&st);
        to_plane(img, p);
        cm_image_free(&img);
        break;
    }
    }
}

static void test_fpr_is_honest(void **state)
{
    (void)state;
    cm_key *key = key_with(1), *other = key_with(2);
    cm_image *bigimg = cel(1280, 720, 77);
    cm_plane big = {0};
    to_plane(bigimg, &big);
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
    for (int kind = 0; kind < KINDS; kind++) {
        for (int i = 0; i < PER_KIND; i++) {
            cm_plane p = {0};
            make_input(kind, i, other, &big, &p);
            cm_verify_result r;
            assert_int_equal(cm_verifier_plane(v, &p, &r), 0);
            cm_plane_free(&p);
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
