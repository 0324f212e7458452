/*
 * The pipeline layer (pipeline/): a still stamped and verified through its
 * file, bad inputs refused with nothing left behind, and the video
 * transcoder's frame hook (formats/video_write.c) as the pipeline uses it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "clip.h"
#include "formats/video.h"
#include "pipeline/verify_video.h"
#include "testmedia.h"
#include "testutil.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ID UINT64_C(0x5eed5eed12345678)

static cm_verifier *candidate_verifier(cm_ctx *ctx, const cm_key *key, const uint64_t *id)
{
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = id;
    vp.ncandidates = 1;
    cm_verifier *v = NULL;
    assert_int_equal(cm_verifier_new(ctx, key, &vp, &v), CM_OK);
    return v;
}

static void test_still_round_trip(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_key *key = test_key(1);
    cm_image *frame = test_frame(640, 480, 7, 3, 8, CEL_FLAT);
    path_buf in = test_tmp_path("pipeline_", "in.png");
    path_buf out = test_tmp_path("pipeline_", "out.png");
    test_must_write(ctx, frame, in.s);
    remove(out.s);

    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(ctx, key, ID, &sp, &st), CM_OK);
    const uint64_t id = ID;
    cm_verifier *check = candidate_verifier(ctx, key, &id);
    cm_still_stamp_info si;
    assert_int_equal(cm_stamp_still(ctx, st, check, in.s, out.s, NULL, 0, &si), CM_OK);
    assert_int_equal(si.width, 640);
    assert_int_equal(si.height, 480);
    assert_int_equal(si.channels, 3);
    assert_true(si.colour);
    assert_false(si.converted);
    /* the copy moved, within the default profile's colour budget */
    assert_true(si.de.max > 0 && si.de.max <= 2.0 + 1e-6);
    assert_true(si.checked);
    assert_true(si.check_result.blind_crc_ok);
    assert_true(si.check_result.blind_id == ID);
    assert_true(test_file_exists(out.s));

    /* the copy as an investigator reads it */
    cm_verify_result r;
    cm_image *kept = NULL;
    assert_int_equal(cm_verify_still(ctx, check, out.s, NULL, &r, &kept), CM_OK);
    assert_true(r.marked);
    assert_true(r.issue_id == ID);
    assert_non_null(kept);
    assert_int_equal(kept->width, 640);
    cm_image_free(&kept);
    /* the original carries no mark */
    assert_int_equal(cm_verify_still(ctx, check, in.s, NULL, &r, NULL), CM_OK);
    assert_false(r.marked);

    /* an existing output is kept unless forced */
    assert_int_not_equal(cm_stamp_still(ctx, st, NULL, in.s, out.s, NULL, 0, &si), CM_OK);
    assert_int_equal(cm_stamp_still(ctx, st, NULL, in.s, out.s, NULL, CM_WRITE_FORCE, &si),
                     CM_OK);
    assert_false(si.checked); /* no verifier: no check */
    assert_int_equal(si.check_error[0], '\0');

    cm_verifier_free(&check);
    cm_stamper_free(&st);
    cm_image_free(&frame);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    remove(in.s);
    remove(out.s);
}

static void test_still_bad_input(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_key *key = test_key(2);
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(ctx, key, ID, &sp, &st), CM_OK);
    const uint64_t id = ID;
    cm_verifier *v = candidate_verifier(ctx, key, &id);
    path_buf out = test_tmp_path("pipeline_", "bad_out.png");
    remove(out.s);
    cm_still_stamp_info si;
    cm_verify_result r;

    /* missing file */
    path_buf none = test_tmp_path("pipeline_", "does_not_exist.png");
    assert_int_equal(cm_stamp_still(ctx, st, v, none.s, out.s, NULL, 0, &si), CM_E_IO);
    assert_false(test_file_exists(out.s));
    cm_image *kept = (cm_image *)&kept; /* must come back NULL */
    assert_int_equal(cm_verify_still(ctx, v, none.s, NULL, &r, &kept), CM_E_IO);
    assert_null(kept);

    /* a PNG cut short */
    cm_image *frame = test_frame(256, 256, 3, 3, 8, CEL_FLAT);
    path_buf whole = test_tmp_path("pipeline_", "whole.png");
    path_buf cut = test_tmp_path("pipeline_", "cut.png");
    test_must_write(ctx, frame, whole.s);
    size_t len = 0;
    uint8_t *bytes = test_load_file(whole.s, &len);
    test_save_file(cut.s, bytes, len / 2);
    int ret = cm_stamp_still(ctx, st, v, cut.s, out.s, NULL, 0, &si);
    assert_true(ret < 0);
    assert_true(strlen(cm_ctx_last_error(ctx)) > 0);
    assert_false(test_file_exists(out.s));
    assert_true(cm_verify_still(ctx, v, cut.s, NULL, &r, NULL) < 0);

    /* not an image at all */
    test_save_file(cut.s, "not an image, only words\n", 25);
    assert_true(cm_stamp_still(ctx, st, v, cut.s, out.s, NULL, 0, &si) < 0);
    assert_false(test_file_exists(out.s));

    /* missing arguments */
    assert_int_equal(cm_stamp_still(ctx, NULL, v, whole.s, out.s, NULL, 0, &si), CM_E_INVAL);
    assert_int_equal(cm_stamp_still(ctx, st, v, whole.s, out.s, NULL, 0, NULL), CM_E_INVAL);
    assert_int_equal(cm_verify_still(ctx, NULL, whole.s, NULL, &r, NULL), CM_E_INVAL);
    assert_false(test_file_exists(out.s));

    free(bytes);
    cm_image_free(&frame);
    cm_verifier_free(&v);
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    remove(whole.s);
    remove(cut.s);
}

/* 1 when files a and b hold the same bytes. */
static int test_files_equal(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    uint8_t *da = test_load_file(a, &na), *db = test_load_file(b, &nb);
    int same = da && db && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

/* A hook that lifts luma by 3 code values where the headroom allows, and
 * counts its calls (it is called from several workers at once). */
typedef struct lift {
    atomic_int calls, chroma;
} lift;

static int lift_luma(void *opaque, cm__video_luma *f)
{
    lift *l = opaque;
    atomic_fetch_add(&l->calls, 1);
    atomic_fetch_add(&l->chroma, f->chroma != NULL);
    int w = f->luma->width;
    float *lo = malloc(sizeof(float) * (size_t)w), *hi = malloc(sizeof(float) * (size_t)w);
    assert_non_null(lo);
    assert_non_null(hi);
    for (int y = 0; y < f->luma->height; y++) {
        float *row = f->luma->data + y * f->luma->stride;
        cm__luma_headroom_row(row, lo, hi, w);
        for (int x = 0; x < w; x++)
            row[x] += hi[x] < 3 ? hi[x] : 3;
    }
    free(lo);
    free(hi);
    return CM_OK;
}

static int fail_third(void *opaque, cm__video_luma *f)
{
    (void)f;
    return atomic_fetch_add((atomic_int *)opaque, 1) == 2 ? CM_E_INTERNAL : CM_OK;
}

/* Mean luma of every frame of path. */
static int mean_luma(cm_ctx *ctx, const char *path, double *means, int max)
{
    cm__video_reader *r = NULL;
    assert_int_equal(cm__video_open(ctx, path, NULL, 1, 0, &r), CM_OK);
    cm_plane *p;
    double t;
    int n = 0;
    while (cm__video_next(r, &p, &t) == 1 && n < max) {
        double s = 0;
        for (int y = 0; y < p->height; y++)
            for (int x = 0; x < p->width; x++)
                s += p->data[y * p->stride + x];
        means[n++] = s / ((double)p->width * p->height);
    }
    cm__video_close(&r);
    return n;
}

static void test_transcode_hook(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    path_buf in = test_tmp_path("pipeline_", "clip.mkv");
    path_buf out = test_tmp_path("pipeline_", "clip_out.mkv");
    clip_params cp;
    clip_params_default(&cp);
    cp.width = 160;
    cp.height = 96;
    cp.frames = 12;
    cp.codec = "ffv1"; /* lossless: the hook's change is read back exactly */
    assert_int_equal(clip_write(in.s, &cp), 0);
    remove(out.s);

    cm_video_stamp_params p;
    cm_video_stamp_params_default(&p);
    cm_video_stamp_info info;
    lift l = {0, 0};
    assert_int_equal(cm__video_transcode(ctx, in.s, out.s, &p, 0, &info, lift_luma, &l), CM_OK);
    /* one worker or four: the same frames in the same order, the same bytes */
    path_buf one = test_tmp_path("pipeline_", "clip_one.mkv");
    remove(one.s);
    p.jobs = 1;
    lift l1 = {0, 0};
    assert_int_equal(cm__video_transcode(ctx, in.s, one.s, &p, 0, NULL, lift_luma, &l1), CM_OK);
    assert_true(test_files_equal(out.s, one.s));
    p.jobs = 4;
    remove(one.s);
    assert_int_equal(cm__video_transcode(ctx, in.s, one.s, &p, 0, NULL, lift_luma, &l1), CM_OK);
    assert_true(test_files_equal(out.s, one.s));
    remove(one.s);
    p.jobs = 0;
    assert_int_equal(info.frames, 12);
    /* drawings held on twos: the hook runs once per drawing */
    assert_true(l.calls >= 6 && l.calls < 12);
    assert_int_equal(l.chroma, l.calls); /* yuv420p: chroma lent */

    double a[16], b[16];
    assert_int_equal(mean_luma(ctx, in.s, a, 16), 12);
    assert_int_equal(mean_luma(ctx, out.s, b, 16), 12);
    for (int k = 0; k < 12; k++) /* lifted, by at most 3 and a rounding */
        assert_true(b[k] - a[k] > 1.0 && b[k] - a[k] < 3.6);

    /* a hook's error stops the transcode and leaves no output */
    remove(out.s);
    atomic_int n = 0;
    assert_int_equal(cm__video_transcode(ctx, in.s, out.s, &p, 0, NULL, fail_third, &n),
                     CM_E_INTERNAL);
    assert_false(test_file_exists(out.s));
    assert_int_equal(cm__video_transcode(ctx, in.s, out.s, &p, 0, NULL, NULL, NULL), CM_E_INVAL);

    cm_ctx_free(&ctx);
    remove(in.s);
    remove(out.s);
}

/* Held drawings of a stateless intra-only source (ProRes, MJPEG) are found
 * by their packets' digests: the hook runs once per drawing, every frame
 * comes out lifted (none takes a neighbour's drawing), and one worker or
 * four write the same bytes. */
static void test_transcode_held_by_packet(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    static const struct {
        const char *codec, *pix_fmt, *in, *out, *one;
    } cases[] = {
        {"prores_ks", "yuv422p10le", "held.mov", "held_out.mov", "held_one.mov"},
        {"mjpeg", "yuvj420p", "held.avi", "held_out.avi", "held_one.avi"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        path_buf in = test_tmp_path("pipeline_", cases[c].in);
        path_buf out = test_tmp_path("pipeline_", cases[c].out);
        path_buf one = test_tmp_path("pipeline_", cases[c].one);
        clip_params cp;
        clip_params_default(&cp);
        cp.width = 160;
        cp.height = 96;
        cp.frames = 12;
        cp.codec = cases[c].codec;
        cp.pix_fmt = cases[c].pix_fmt;
        assert_int_equal(clip_write(in.s, &cp), 0);
        remove(out.s);
        remove(one.s);
        cm_video_stamp_params p;
        cm_video_stamp_params_default(&p);
        lift l = {0, 0};
        assert_int_equal(cm__video_transcode(ctx, in.s, out.s, &p, 0, NULL, lift_luma, &l), CM_OK);
        assert_true(l.calls >= 6 && l.calls < 12);
        double a[16], b[16];
        assert_int_equal(mean_luma(ctx, in.s, a, 16), 12);
        assert_int_equal(mean_luma(ctx, out.s, b, 16), 12);
        for (int k = 0; k < 12; k++) /* lifted, by at most 3 and a rounding (lossy) */
            assert_true(b[k] - a[k] > 0.5 && b[k] - a[k] < 4.0);
        p.jobs = 1;
        lift l1 = {0, 0};
        assert_int_equal(cm__video_transcode(ctx, in.s, one.s, &p, 0, NULL, lift_luma, &l1), CM_OK);
        assert_true(test_files_equal(out.s, one.s));
        assert_int_equal(l1.calls, l.calls);
        remove(in.s);
        remove(out.s);
        remove(one.s);
    }
    cm_ctx_free(&ctx);
}

/* Two decisions made on the same sums: every figure equal, bit for bit. */
static void assert_same_result(const cm_verify_result *a, const cm_verify_result *b)
{
    assert_int_equal(a->marked, b->marked);
    assert_true(a->issue_id == b->issue_id);
    assert_memory_equal(&a->score, &b->score, sizeof(a->score));
    assert_memory_equal(&a->fpr, &b->fpr, sizeof(a->fpr));
    assert_memory_equal(&a->sync_score, &b->sync_score, sizeof(a->sync_score));
    assert_true(a->decoded_id == b->decoded_id);
    assert_int_equal(a->nclaims, b->nclaims);
}

/* A 320x192 H.264 clip of frames at 24 fps (x264 CRF 18). */
static void write_h264_clip(const char *path, int frames)
{
    clip_params cp;
    clip_params_default(&cp);
    cp.width = 320;
    cp.height = 192;
    cp.frames = frames;
    cp.options = "crf=18";
    assert_int_equal(clip_write(path, &cp), 0);
}

/* Frames whitened by one worker or by four (and the decoder threaded):
 * the windows, segments and the whole file decided the same, bit for bit;
 * the same with the triage read, which stops at the same frame. */
static void test_video_verify_workers(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_key *key = test_key(1);
    path_buf in = test_tmp_path("pipeline_", "workers_in.mp4");
    path_buf out = test_tmp_path("pipeline_", "workers_out.mp4");
    write_h264_clip(in.s, 120); /* 5 s: three windows */
    remove(out.s);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(ctx, key, ID, NULL, &st), CM_OK);
    assert_int_equal(cm_video_stamp(ctx, st, in.s, out.s, NULL, 0, NULL), CM_OK);
    cm_verifier *v = NULL;
    assert_int_equal(cm_verifier_new(ctx, key, NULL, &v), CM_OK);
    for (int fast = 0; fast <= 1; fast++) {
        cm_video_report r[2];
        for (int k = 0; k < 2; k++) {
            cm_video_verify_params p;
            cm_video_verify_params_default(&p);
            p.threads = k ? 4 : 1;
            p.fast = fast;
            assert_int_equal(cm_video_verify(ctx, v, out.s, &p, &r[k]), CM_OK);
        }
        assert_true(r[0].whole.marked);
        assert_true(r[0].whole.issue_id == ID);
        assert_int_equal(r[0].frames, r[1].frames);
        assert_int_equal(r[0].stopped_early, r[1].stopped_early);
        assert_int_equal(r[0].stopped_early, fast);
        assert_same_result(&r[0].whole, &r[1].whole);
        assert_same_result(&r[0].claim, &r[1].claim);
        assert_int_equal(r[0].nwindows, r[1].nwindows);
        assert_true(r[0].nwindows >= (fast ? 1u : 3u));
        for (size_t w = 0; w < r[0].nwindows; w++) {
            assert_int_equal(r[0].windows[w].first_frame, r[1].windows[w].first_frame);
            assert_int_equal(r[0].windows[w].frames, r[1].windows[w].frames);
            assert_same_result(&r[0].windows[w].result, &r[1].windows[w].result);
        }
        assert_int_equal(r[0].nsegments, r[1].nsegments);
        for (size_t g = 0; g < r[0].nsegments; g++)
            assert_same_result(&r[0].segments[g].result, &r[1].segments[g].result);
        cm_video_report_clear(&r[0]);
        cm_video_report_clear(&r[1]);
    }
    cm_verifier_free(&v);
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    remove(in.s);
    remove(out.s);
}

/* The stamp's check reads its own copy without probing frames where the
 * header describes the video (MP4), and probes where it does not
 * (MPEG-TS): either way the same report as an investigator's verify. */
static void test_video_verify_own(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_key *key = test_key(2);
    path_buf in = test_tmp_path("pipeline_", "own_in.mp4");
    write_h264_clip(in.s, 72);
    cm_stamper *st = NULL;
    assert_int_equal(cm_stamper_new(ctx, key, ID, NULL, &st), CM_OK);
    cm_verifier *v = NULL;
    assert_int_equal(cm_verifier_new(ctx, key, NULL, &v), CM_OK);
    static const char *const names[] = {"own_out.mp4", "own_out.ts"};
    for (int n = 0; n < 2; n++) {
        path_buf out = test_tmp_path("pipeline_", names[n]);
        remove(out.s);
        assert_int_equal(cm_video_stamp(ctx, st, in.s, out.s, NULL, 0, NULL), CM_OK);
        cm_video_report r[2];
        cm_video_verify_params p;
        cm_video_verify_params_default(&p);
        assert_int_equal(cm_video_verify(ctx, v, out.s, &p, &r[0]), CM_OK);
        assert_int_equal(cm__video_verify_own(ctx, v, out.s, &p, &r[1]), CM_OK);
        assert_true(r[0].whole.marked);
        assert_true(r[0].whole.issue_id == ID);
        assert_int_equal(r[0].frames, r[1].frames);
        assert_true(r[0].fps == r[1].fps);
        assert_true(r[0].duration == r[1].duration);
        assert_same_result(&r[0].whole, &r[1].whole);
        assert_int_equal(r[0].nwindows, r[1].nwindows);
        for (size_t w = 0; w < r[0].nwindows; w++)
            assert_same_result(&r[0].windows[w].result, &r[1].windows[w].result);
        cm_video_report_clear(&r[0]);
        cm_video_report_clear(&r[1]);
        remove(out.s);
    }
    cm_verifier_free(&v);
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    remove(in.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_still_round_trip),
        cmocka_unit_test(test_still_bad_input),
        cmocka_unit_test(test_transcode_hook),
        cmocka_unit_test(test_transcode_held_by_packet),
        cmocka_unit_test(test_video_verify_workers),
        cmocka_unit_test(test_video_verify_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
