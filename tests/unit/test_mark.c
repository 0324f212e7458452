/*
 * The mark end to end and stage by stage: keyed layout, band-limited
 * rendering and its adjoint, mask bounds, embedding (determinism, alpha,
 * 16-bit precision, cel-safe, white/black without bias), blind detection
 * after known scale / rotation / crop / flip, wrong key and unmarked frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cel.h"
#include "testmedia.h"
#include "celmark/celmark.h"
#include "formats/video.h"
#include "pipeline/stamp_video.h"
#include "pixels/colour.h"
#include "watermark/embed.h"
#include "watermark/mask.h"
#include "watermark/pattern.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ID 0x5eed0123abcd4567ULL

static void stamp(cm_image *img, const cm_key *k, uint64_t id, int cel_safe)
{
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    sp.cel_safe = cel_safe;
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(NULL, k, id, &sp, &st), 0);
    assert_int_equal(cm_stamper_image(st, img), 0);
    cm_stamper_free(&st);
    assert_null(st);
}

static void verify_plane(const cm_key *k, const cm_plane *p, const uint64_t *cands, size_t n,
                         cm_verify_result *r)
{
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = cands;
    vp.ncandidates = n;
    cm_verifier *v = NULL;
    assert_int_equal(cm_verifier_new(NULL, k, &vp, &v), 0);
    assert_int_equal(cm_verifier_plane(v, p, r), 0);
    cm_verifier_free(&v);
}

static void verify_image(const cm_key *k, const cm_image *img, cm_verify_result *r)
{
    cm_plane p = {0};
    assert_int_equal(cm_image_to_plane(NULL, img, &p), 0);
    verify_plane(k, &p, NULL, 0, r);
    cm_plane_free(&p);
}

static void test_layout(void **state)
{
    (void)state;
    cm_key *k = test_key(1), *k2 = test_key(2);
    cm__layout *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(cm__layout_new(k, 32, &a), 0);
    assert_int_equal(cm__layout_new(k, 32, &b), 0);
    assert_int_equal(cm__layout_new(k2, 32, &c), 0);
    assert_int_equal(a->nsync, 256);
    assert_int_equal(a->npay, 768);
    /* every waxel used exactly once */
    int used[1024] = {0};
    for (int i = 0; i < a->nsync; i++)
        used[a->sync_idx[i]]++;
    for (int i = 0; i < a->npay; i++)
        used[a->pay_idx[i]]++;
    for (int i = 0; i < 1024; i++)
        assert_int_equal(used[i], 1);
    /* each half carries every coded bit */
    for (int half = 0; half < 2; half++) {
        int seen[CM_PAYLOAD_CODED_BITS] = {0};
        for (int i = half * a->npay / 2; i < (half + 1) * a->npay / 2; i++)
            seen[a->pay_bit[i]] = 1;
        for (int i = 0; i < CM_PAYLOAD_CODED_BITS; i++)
            assert_true(seen[i]);
    }
    /* deterministic per key, different across keys */
    assert_memory_equal(a->sync_idx, b->sync_idx, sizeof(uint32_t) * 256);
    assert_memory_equal(a->pay_sign, b->pay_sign, 768);
    assert_memory_not_equal(a->sync_idx, c->sync_idx, sizeof(uint32_t) * 256);
    cm__layout_free(&a);
    cm__layout_free(&b);
    cm__layout_free(&c);
    assert_null(a);
    cm_key_free(&k);
    cm_key_free(&k2);
}

/* <c R x, y> / <x, R^T y> for the tile rendered from x (c: its unit-RMS gain). */
static double adjoint_ratio(cm__render *r, const float *tile, const float *x, const float *y,
                            AVComplexFloat *spec, float *soft, int T, int N)
{
    cm__render_spectrum(r, y, spec);
    cm__render_adjoint(r, spec, 0, 0, 0, soft);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < N * N; i++)
        lhs += (double)tile[i] * y[i];
    for (int i = 0; i < T * T; i++)
        rhs += (double)x[i] * soft[i];
    return lhs / rhs;
}

static void test_render_adjoint(void **state)
{
    (void)state;
    enum { T = 16, S = 4, N = T * S };
    cm__render r;
    assert_int_equal(cm__render_init(&r, T, S), 0);
    float x[T * T], soft[T * T], soft2[T * T];
    float *tile = malloc(sizeof(float) * N * N), *y = malloc(sizeof(float) * N * N);
    float *shifted = malloc(sizeof(float) * N * N);
    AVComplexFloat *spec = malloc(sizeof(AVComplexFloat) * N * N);
    uint32_t s = 12345;
    for (int i = 0; i < T * T; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (s >> 31) ? 1.0f : -1.0f;
    }
    cm__render_tile(&r, x, tile);
    double rms = 0;
    for (int i = 0; i < N * N; i++)
        rms += (double)tile[i] * tile[i];
    assert_true(fabs(sqrt(rms / (N * N)) - 1.0) < 1e-4); /* unit RMS */
    /* <R x, y> = <x, R^T y> for every y: with x (and so the gain c) fixed,
     * the ratio must be the same positive constant for unrelated y */
    double ratio[3];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N * N; i++) {
            s = s * 1664525u + 1013904223u;
            y[i] = (float)((s >> 8) % 1000) / 500.0f - 1.0f + (k == 2 ? tile[i] : 0.0f);
        }
        ratio[k] = adjoint_ratio(&r, tile, x, y, spec, soft, T, N);
    }
    assert_true(ratio[0] > 0);
    assert_true(fabs(ratio[1] / ratio[0] - 1) < 1e-3);
    assert_true(fabs(ratio[2] / ratio[0] - 1) < 1e-3);
    /* a cyclic shift in the adjoint equals shifting the tile */
    for (int yy = 0; yy < N; yy++)
        for (int xx = 0; xx < N; xx++)
            shifted[yy * N + xx] = y[((yy + 5) % N) * N + (xx + 9) % N];
    cm__render_spectrum(&r, shifted, spec);
    cm__render_adjoint(&r, spec, 0, 0, 0, soft);
    cm__render_spectrum(&r, y, spec);
    cm__render_adjoint(&r, spec, 0, 9, 5, soft2);
    for (int i = 0; i < T * T; i++)
        assert_true(fabs(soft[i] - soft2[i]) < 1e-2 * (1 + fabs(soft[i])));
    free(shifted);
    free(tile);
    free(y);
    free(spec);
    cm__render_free(&r);
}

static void test_mask_bounds(void **state)
{
    (void)state;
    cm_image *img = test_frame(256, 192, 4, 3, 8, CEL_FLAT);
    cm_plane p = {0}, lo = {0}, hi = {0};
    assert_int_equal(cm_image_to_plane(NULL, img, &p), 0);
    assert_int_equal(cm_image_headroom(NULL, img, &lo, &hi), 0);
    /* pure white and pure black patches */
    for (int y = 10; y < 60; y++)
        for (int x = 10; x < 60; x++) {
            p.data[y * p.stride + x] = 255;
            lo.data[y * lo.stride + x] = 255;
            hi.data[y * hi.stride + x] = 0;
            p.data[y * p.stride + x + 100] = 0;
            lo.data[y * lo.stride + x + 100] = 0;
            hi.data[y * hi.stride + x + 100] = 255;
        }
    float *amp = malloc(sizeof(float) * 256 * 192);
    uint8_t *flat = malloc(256 * 192);
    cm__mask_params mp = {1.0f, 0.3f, 4.0f, 0};
    assert_int_equal(cm__mask_compute(&p, &lo, &hi, &mp, amp, NULL), 0);
    for (int i = 0; i < 256 * 192; i++) {
        assert_true(amp[i] >= 0 && amp[i] <= 4.0f);
    }
    /* white and black: no room both ways, a reduced one-sided mark */
    const float wmax = CM__EXTREME_WHITE * CM__ENVELOPE_MAX_WHITE;
    const float bmax = CM__EXTREME_BLACK * CM__ENVELOPE_MAX_BLACK;
    assert_true(amp[30 * 256 + 30] > 0 && amp[30 * 256 + 30] <= wmax);   /* white */
    assert_true(amp[30 * 256 + 130] > 0 && amp[30 * 256 + 130] <= bmax); /* black */
    mp.cel_safe = 1;
    assert_int_equal(cm__mask_compute(&p, &lo, &hi, &mp, amp, NULL), 0);
    assert_int_equal(cm__flat_fill_map(&p, flat), 0);
    int nflat = 0;
    for (int i = 0; i < 256 * 192; i++)
        if (flat[i]) {
            nflat++;
            assert_true(amp[i] == 0);
        }
    assert_true(nflat > 256 * 192 / 4); /* a flat cel is mostly fills */
    free(amp);
    free(flat);
    cm_plane_free(&p);
    cm_plane_free(&lo);
    cm_plane_free(&hi);
    cm_image_free(&img);
}

/* A page of paper white or black: the one-sided mark is reshaped by the
 * envelope but keeps its energy, mean(amp^2) = (EXTREME * floor)^2, and
 * the envelope's troughs leave part of the page nearly unmarked. */
static void test_mask_envelope(void **state)
{
    (void)state;
    const int n = 900; /* one period of the envelope each way */
    for (int white = 0; white < 2; white++) {
        cm_plane p = {0}, lo = {0}, hi = {0};
        assert_int_equal(cm_plane_alloc(&p, n, n), 0);
        assert_int_equal(cm_plane_alloc(&lo, n, n), 0);
        assert_int_equal(cm_plane_alloc(&hi, n, n), 0);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                p.data[y * p.stride + x] = white ? 255 : 0;
                lo.data[y * lo.stride + x] = white ? 255 : 0;
                hi.data[y * hi.stride + x] = white ? 0 : 255;
            }
        float *amp = malloc(sizeof(float) * (size_t)n * n);
        assert_non_null(amp);
        cm__mask_params mp = {1.0f, 0.3f, 4.0f, 0};
        double ms = 0;
        assert_int_equal(cm__mask_compute(&p, &lo, &hi, &mp, amp, &ms), 0);
        float peak = white ? CM__EXTREME_WHITE : CM__EXTREME_BLACK;
        float env_max = white ? CM__ENVELOPE_MAX_WHITE : CM__ENVELOPE_MAX_BLACK;
        assert_float_equal(ms, peak * peak, 0.01 * peak * peak);
        int low = 0;
        for (int i = 0; i < n * n; i++) {
            assert_true(amp[i] >= 0 && amp[i] <= peak * env_max * 1.0001f);
            low += amp[i] < 0.5f * peak;
        }
        /* env^2 < 0.25 on 8.5 % of a period (white), 32 % (black) */
        double share = (double)low / ((double)n * n);
        assert_float_equal(share, white ? 0.085 : 0.320, 0.01);
        free(amp);
        cm_plane_free(&p);
        cm_plane_free(&lo);
        cm_plane_free(&hi);
    }
}

static void test_roundtrip_blind(void **state)
{
    (void)state;
    cm_key *k = test_key(1);
    cm_image *img = test_frame(768, 512, 7, 3, 8, CEL_FLAT);
    cm_image *copy = test_frame(768, 512, 7, 3, 8, CEL_FLAT);
    stamp(img, k, ID, 0);
    stamp(copy, k, ID, 0);
    assert_memory_equal(img->data, copy->data, (size_t)img->stride * img->height);
    cm_verify_result r;
    verify_image(k, img, &r);
    assert_true(r.marked);
    assert_int_equal(r.source, CM_ID_BLIND);
    assert_true(r.issue_id == ID);
    assert_true(r.fpr <= 1e-9);
    assert_true(fabs(r.scale - 1) < 0.01);
    assert_false(r.flipped);
    /* wrong key: nothing */
    cm_key *k2 = test_key(2);
    verify_image(k2, img, &r);
    assert_false(r.marked);
    assert_true(r.fpr > 1e-9);
    /* unmarked: nothing */
    cm_image *orig = test_frame(768, 512, 7, 3, 8, CEL_FLAT);
    verify_image(k, orig, &r);
    assert_false(r.marked);
    cm_image_free(&orig);
    cm_image_free(&img);
    cm_image_free(&copy);
    cm_key_free(&k);
    cm_key_free(&k2);
}

/* Bilinear resample of p: out(x) = p(A^-1 (x - c_out) + c_in), scale s,
 * rotation deg (counter-clockwise on screen), optional mirror. */
static void warp(const cm_plane *p, cm_plane *out, double s, double deg, int mirror)
{
    int w = (int)lround(p->width * s), h = (int)lround(p->height * s);
    assert_int_equal(cm_plane_alloc(out, w, h), 0);
    double t = deg * M_PI / 180, c = cos(t), sn = sin(t);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = (x + 0.5 - w / 2.0) / s, dy = (y + 0.5 - h / 2.0) / s;
            if (mirror)
                dx = -dx;
            /* inverse rotation of a counter-clockwise turn (y down) */
            double u = c * dx - sn * dy + p->width / 2.0 - 0.5;
            double v = sn * dx + c * dy + p->height / 2.0 - 0.5;
            int ui = (int)floor(u), vi = (int)floor(v);
            float val = 0;
            if (ui >= 0 && vi >= 0 && ui + 1 < p->width && vi + 1 < p->height) {
                double fu = u - ui, fv = v - vi;
                const float *a = p->data + vi * p->stride + ui;
                val = (float)((a[0] * (1 - fu) + a[1] * fu) * (1 - fv) +
                              (a[p->stride] * (1 - fu) + a[p->stride + 1] * fu) * fv);
            }
            out->data[y * out->stride + x] = val;
        }
}

static void test_sync_geometry(void **state)
{
    (void)state;
    cm_key *k = test_key(3);
    cm_image *img = test_frame(1280, 720, 11, 3, 8, CEL_GRADIENT);
    stamp(img, k, ID, 0);
    cm_plane p = {0};
    assert_int_equal(cm_image_to_plane(NULL, img, &p), 0);
    static const struct {
        double s, deg;
        int mirror;
    } cases[] = {{1.0, 0, 1}, {0.7, 0, 0}, {1.0, 3.0, 0}, {0.8, -4.0, 0}, {0.5, 2.0, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cm_plane q = {0};
        warp(&p, &q, cases[i].s, cases[i].deg, cases[i].mirror);
        cm_verify_result r;
        verify_plane(k, &q, NULL, 0, &r);
        print_message("scale %.2f rot %.1f mirror %d -> marked %d scale %.4f rot %.2f flip %d z %.1f\n",
                      cases[i].s, cases[i].deg, cases[i].mirror, r.marked, r.scale,
                      r.rotation_deg, r.flipped, r.score);
        assert_true(r.marked);
        assert_true(r.issue_id == ID);
        assert_true(fabs(r.scale / cases[i].s - 1) < 0.01);
        assert_true(fabs(r.rotation_deg - (cases[i].mirror ? -1 : 1) * cases[i].deg) < 0.3);
        assert_int_equal(r.flipped, cases[i].mirror);
        cm_plane_free(&q);
    }
    /* crop at an odd offset: the fold does not care where tiles start */
    cm_plane c = {p.data + 101 * p.stride + 203, 600, 400, p.stride};
    cm_verify_result r;
    verify_plane(k, &c, NULL, 0, &r);
    assert_true(r.marked);
    assert_true(r.issue_id == ID);
    cm_plane_free(&p);
    cm_image_free(&img);
    cm_key_free(&k);
}

/* Pages of paper white and night-scene black: marked, detected, no bias. */
static void test_white_and_black(void **state)
{
    (void)state;
    cm_key *k = test_key(6);
    static const cel_style styles[] = {CEL_SMALL, CEL_BLACK};
    for (int i = 0; i < 2; i++) {
        cm_image *img = test_frame(960, 540, 21 + i, 3, 8, styles[i]);
        cm_image *orig = test_frame(960, 540, 21 + i, 3, 8, styles[i]);
        stamp(img, k, ID, 0);
        /* the extreme areas: mean change small and of the one possible sign */
        double sum = 0, sq = 0;
        long n = 0;
        for (int y = 0; y < img->height; y++)
            for (int x = 0; x < img->width; x++) {
                const uint8_t *a = img->data + (size_t)y * img->stride + 3 * x;
                const uint8_t *b = orig->data + (size_t)y * orig->stride + 3 * x;
                int ext = (b[0] == 255 && b[1] == 255 && b[2] == 255) || (b[0] | b[1] | b[2]) == 0;
                if (!ext)
                    continue;
                int d = (int)a[0] - (int)b[0];
                sum += d;
                sq += d * d;
                n++;
            }
        assert_true(n > 100000);
        double mean = sum / n, rms = sqrt(sq / n);
        print_message("%s: %ld extreme pixels, mean change %.3f, rms %.3f\n",
                      cel_style_name(styles[i]), n, mean, rms);
        /* paper white may darken by half a code value (Delta L* ~ 0.2),
         * black lighten by a third */
        assert_true(i == 0 ? mean < 0 && mean >= -0.55 : mean > 0 && mean <= 0.35);
        assert_true(rms > 0.2);
        cm_verify_result r;
        verify_image(k, img, &r);
        print_message("  marked %d z %.2f sync %.2f blind crc %d\n", r.marked, r.score,
                      r.sync_score, r.blind_crc_ok);
        assert_true(r.marked);
        assert_true(r.issue_id == ID);
        cm_image_free(&img);
        cm_image_free(&orig);
    }
    cm_key_free(&k);
}

static void test_alpha_16bit_celsafe(void **state)
{
    (void)state;
    cm_key *k = test_key(4);
    /* RGBA 16-bit: alpha untouched, changes at 16-bit precision */
    cm_image *img = test_frame(512, 384, 5, 4, 16, CEL_FLAT);
    cm_image *orig = test_frame(512, 384, 5, 4, 16, CEL_FLAT);
    stamp(img, k, ID, 0);
    size_t changed = 0, fine = 0;
    for (int y = 0; y < img->height; y++) {
        const uint16_t *a = (const uint16_t *)(img->data + (size_t)y * img->stride);
        const uint16_t *b = (const uint16_t *)(orig->data + (size_t)y * orig->stride);
        for (int x = 0; x < img->width; x++) {
            assert_int_equal(a[4 * x + 3], b[4 * x + 3]);
            if (b[4 * x + 3] == 0)
                assert_memory_equal(a + 4 * x, b + 4 * x, 6);
            int d = (int)a[4 * x] - (int)b[4 * x];
            if (d) {
                changed++;
                if (d % 257)
                    fine++;
            }
        }
    }
    assert_true(changed > 1000);
    assert_true(fine > changed / 2); /* not just 8-bit steps scaled up */
    cm_image_free(&img);
    cm_image_free(&orig);

    /* cel-safe: every pixel of an 8x8 window of one colour is bit-exact */
    img = test_frame(768, 512, 6, 3, 8, CEL_FLAT);
    orig = test_frame(768, 512, 6, 3, 8, CEL_FLAT);
    stamp(img, k, ID, 1);
    cm_plane p = {0};
    assert_int_equal(cm_image_to_plane(NULL, orig, &p), 0);
    uint8_t *flat = malloc((size_t)p.width * p.height);
    assert_int_equal(cm__flat_fill_map(&p, flat), 0);
    size_t nflat = 0, diff = 0;
    for (int y = 0; y < p.height; y++)
        for (int x = 0; x < p.width; x++) {
            const uint8_t *a = img->data + (size_t)y * img->stride + 3 * x;
            const uint8_t *b = orig->data + (size_t)y * orig->stride + 3 * x;
            if (flat[(size_t)y * p.width + x]) {
                nflat++;
                assert_memory_equal(a, b, 3);
            } else if (memcmp(a, b, 3)) {
                diff++;
            }
        }
    assert_true(nflat > 100000);
    assert_true(diff > 1000); /* the mark went somewhere */
    free(flat);
    cm_plane_free(&p);
    cm_image_free(&img);
    cm_image_free(&orig);
    cm_key_free(&k);
}

/* One stamper over several frames (a video's, a sequence's) reuses the
 * masks of earlier ones: each frame is stamped as a fresh stamper would,
 * whatever came before it (other content, other sizes). */
static void test_stamper_reuse(void **state)
{
    (void)state;
    cm_key *k = test_key(5);
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(NULL, k, ID, &sp, &st), 0);
    static const struct {
        int w, h, seed, kind;
    } frames[] = {{640, 360, 1, CEL_FLAT}, {640, 360, 2, CEL_TEXTURED},
                  {320, 200, 3, CEL_FLAT}, {640, 360, 4, CEL_FLAT}};
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        cm_image *a = test_frame(frames[i].w, frames[i].h, frames[i].seed, 3, 8, frames[i].kind);
        cm_image *b = test_frame(frames[i].w, frames[i].h, frames[i].seed, 3, 8, frames[i].kind);
        assert_int_equal(cm_stamper_image(st, a), 0);
        stamp(b, k, ID, 0);
        for (int y = 0; y < a->height; y++)
            assert_memory_equal(a->data + (size_t)y * a->stride, b->data + (size_t)y * b->stride,
                                (size_t)a->width * 3);
        cm_image_free(&a);
        cm_image_free(&b);
    }
    cm_stamper_free(&st);
    cm_key_free(&k);
}

/* A frame marked a row at a time, each row's room made as it is reached
 * (the video stamp), is the frame marked with whole lo/hi planes, bit for
 * bit: 4:2:0 chroma and grey, odd sizes. */
static void test_plane_rows(void **state)
{
    (void)state;
    cm_key *k = test_key(6);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(NULL, k, ID, NULL, &st), 0);
    const cm__room *room = cm__stamper_room(st);
    assert_non_null(room);
    static const struct {
        int w, h, seed, kind, grey;
    } frames[] = {{641, 359, 7, CEL_TEXTURED, 0}, {320, 181, 8, CEL_FLAT, 0},
                  {257, 130, 9, CEL_TEXTURED, 1}};
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        int w = frames[i].w, h = frames[i].h, cw = (w + 1) / 2, ch = (h + 1) / 2;
        cm_image *img = test_frame(w, h, frames[i].seed, 3, 8, frames[i].kind);
        cm_plane a = {0}, b = {0}, orig = {0}, lo = {0}, hi = {0};
        assert_int_equal(cm_image_to_plane(NULL, img, &a), 0);
        assert_int_equal(cm_image_to_plane(NULL, img, &b), 0);
        assert_int_equal(cm_image_to_plane(NULL, img, &orig), 0);
        assert_int_equal(cm_plane_alloc(&lo, w, h), 0);
        assert_int_equal(cm_plane_alloc(&hi, w, h), 0);
        uint8_t *cb = malloc((size_t)cw * ch), *cr = malloc((size_t)cw * ch);
        assert_non_null(cb);
        assert_non_null(cr);
        for (size_t j = 0; j < (size_t)cw * ch; j++) { /* the frame's colour, roughly */
            const uint8_t *px = img->data + (j / cw * 2) * img->stride + (j % cw * 2) * 3;
            cb[j] = (uint8_t)(128 + (px[2] - px[1]) / 4);
            cr[j] = (uint8_t)(128 + (px[0] - px[1]) / 4);
        }
        cm__yuv_chroma c = {cb, cr, cw, 1, 8, 1, 1, 1, 0.2126f, 0.0722f};
        for (int y = 0; y < h; y++)
            cm__luma_headroom_row(a.data + y * a.stride, lo.data + y * lo.stride,
                                  hi.data + y * hi.stride, w);
        if (frames[i].grey)
            cm__grey_luma_room(room, &a, &lo, &hi);
        else
            cm__yuv_luma_room(room, &a, &c, &lo, &hi);
        assert_int_equal(cm_stamper_plane(st, &a, &lo, &hi), 0);
        cm__frame_room r = {room, NULL, w};
        if (!frames[i].grey)
            assert_non_null(r.yuv = cm__yuv_room_rows_new(room, &c, w, h));
        assert_int_equal(cm__stamper_plane_rows(st, &b, cm__frame_room_row, &r), 0);
        cm__yuv_room_rows_free(&r.yuv);
        int moved = 0;
        for (int y = 0; y < h; y++) {
            assert_memory_equal(a.data + y * a.stride, b.data + y * b.stride,
                                sizeof(float) * (size_t)w);
            moved |= memcmp(a.data + y * a.stride, orig.data + y * orig.stride,
                            sizeof(float) * (size_t)w) != 0;
        }
        assert_true(moved); /* it was marked */
        free(cb);
        free(cr);
        cm_plane *planes[] = {&a, &b, &orig, &lo, &hi};
        for (int p = 0; p < 5; p++)
            cm_plane_free(planes[p]);
        cm_image_free(&img);
    }
    assert_int_equal(cm__stamper_plane_rows(st, NULL, cm__frame_room_row, NULL), CM_E_INVAL);
    cm_stamper_free(&st);
    cm_key_free(&k);
}

static void test_bad_args(void **state)
{
    (void)state;
    cm_key *k = test_key(5);
    cm_stamper *st = NULL;
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    sp.strength = 0;
    assert_int_equal(cm_stamper_new(NULL, k, 1, &sp, &st), CM_E_INVAL);
    sp.strength = 1;
    sp.profile = (cm_profile)7;
    assert_int_equal(cm_stamper_new(NULL, k, 1, &sp, &st), CM_E_INVAL);
    assert_int_equal(cm_stamper_new(NULL, NULL, 1, NULL, &st), CM_E_INVAL);
    assert_null(st);
    cm_verifier *v = NULL;
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.ncandidates = 3; /* but no array */
    assert_int_equal(cm_verifier_new(NULL, k, &vp, &v), CM_E_INVAL);
    vp.ncandidates = 0;
    vp.max_fpr = 0;
    assert_int_equal(cm_verifier_new(NULL, k, &vp, &v), CM_E_INVAL);
    assert_null(v);
    /* tiny and degenerate planes: a result, not a crash */
    assert_int_equal(cm_verifier_new(NULL, k, NULL, &v), 0);
    cm_verify_result r;
    float px[16 * 16] = {0};
    cm_plane tiny = {px, 16, 16, 16};
    assert_int_equal(cm_verifier_plane(v, &tiny, &r), 0);
    assert_false(r.marked);
    cm_plane flat = {0};
    assert_int_equal(cm_plane_alloc(&flat, 300, 200), 0);
    assert_int_equal(cm_verifier_plane(v, &flat, &r), 0);
    assert_false(r.marked);
    cm_plane_free(&flat);
    assert_int_equal(cm_verifier_plane(v, NULL, &r), CM_E_INVAL);
    cm_verifier_free(&v);
    cm_key_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_stamper_reuse),
        cmocka_unit_test(test_render_adjoint),
        cmocka_unit_test(test_mask_bounds),
        cmocka_unit_test(test_mask_envelope),
        cmocka_unit_test(test_roundtrip_blind),
        cmocka_unit_test(test_sync_geometry),
        cmocka_unit_test(test_white_and_black),
        cmocka_unit_test(test_alpha_16bit_celsafe),
        cmocka_unit_test(test_plane_rows),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
