/*
 * chain — marks down the subcontracting chain (issue 17).
 *
 *   chain [--frames N] [--only LIST] [--attacks LIST]   (LIST: a,b,c+d: c then d)
 *
 * On the robustness corpus (bench_frame_params, 1920x1080), default profile:
 * the studio stamps frame i for its vendor (studio key, id s_i); the vendor,
 * holding a key the studio delegated ("vendor-a", layer 1), stamps that copy
 * for its subcontractor (id v_i). The studio reads both layers: its own with
 * its key, the vendor's with the layer key it derives (cm_key_layer_key),
 * each with 1,000 candidates of that layer's ledger (the true id among 999
 * random ones); the verifiers count the 2 layers tried (params.layers).
 *
 *   invisibility   the twice-stamped copy against the studio's ORIGINAL:
 *                  CIEDE2000 p99.9 and max (worst frame), PSNR-Y (min)
 *   per attack     both layers' ids: with candidates, and blind
 *   three layers   a sub-vendor ("sub-x", layer 2) stamps the vendor's copy
 *                  again: all three ids with candidates, no attack and JPEG
 *                  q75
 *   wrong keys     a sibling vendor's layer key ("vendor-b"), the vendor's
 *                  own key with the studio's ids as candidates (it may find
 *                  its own layer, never the studio's), an unrelated studio
 *                  key: every other claim they make is wrong (target 0)
 *
 * Output: tables on stdout, one progress line per frame on stderr.
 */
#include "attacks.h"
#include "benchutil.h"
#include "cel.h"
#include "invisibility.h"

#include "celmark/celmark.h"

#include <libavutil/log.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCAND 1000
#define MAX_FPR 1e-9
#define MAX_ATTACKS 32
#define DEFAULT_ATTACKS                                                                  \
    "none,jpeg50,h264_crf28,scale50,crop50_a,rot2,rotm2,flip,chain,scale50+jpeg50"
#define MAX_STEPS 4 /* attacks chained with '+' */

enum { STUDIO, VENDOR, SUB, NLAYERS };
static const char *const layer_names[NLAYERS] = {"studio", "vendor-a", "sub-x"};

typedef struct counts {
    int runs, cand[NLAYERS], blind[NLAYERS], wrong;
    double z[NLAYERS];
} counts;

/* Candidates: NCAND ids, id at a random place. */
static void candidates(uint64_t *s, uint64_t id, uint64_t *out)
{
    long at = (long)(bench_splitmix64(s) % NCAND);
    for (long c = 0; c < NCAND; c++) {
        uint64_t v;
        do
            v = bench_splitmix64(s);
        while (v == id);
        out[c] = c == at ? id : v;
    }
}

static int stamp(cm_ctx *ctx, const cm_key *key, uint64_t id, cm_image *img)
{
    cm_stamper *st = NULL;
    int ret = cm_stamper_new(ctx, key, id, NULL, &st);
    if (!ret)
        ret = cm_stamper_image(st, img);
    cm_stamper_free(&st);
    return ret;
}

/* img verified with key against cands (layers: keys tried on the file). */
static int verify(cm_ctx *ctx, const cm_key *key, const uint64_t *cands, int layers,
                  const cm_image *img, cm_verify_result *r)
{
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = cands;
    vp.ncandidates = NCAND;
    vp.layers = (unsigned)layers;
    cm_verifier *v = NULL;
    int ret = cm_verifier_new(ctx, key, &vp, &v);
    if (!ret)
        ret = cm_verifier_image(v, img, r);
    cm_verifier_free(&v);
    return ret;
}

/* The true id's candidate and blind finds at layer l into c, and the
 * claims of any other id. */
static int read_layer(cm_ctx *ctx, const cm_key *key, const uint64_t *cands, uint64_t id,
                      int layers, const cm_image *img, counts *c, int l)
{
    cm_verify_result r;
    int ret = verify(ctx, key, cands, layers, img, &r);
    if (ret)
        return ret;
    int top = r.best_candidate >= 0 && cands[r.best_candidate] == id;
    int cand_ok = top && r.candidate_fpr <= MAX_FPR;
    int blind_ok = r.blind_crc_ok && r.blind_id == id && r.blind_fpr <= MAX_FPR;
    for (int i = 0; i < r.nclaims; i++) {
        if (r.claims[i].issue_id != id)
            c->wrong++;
        else if (r.claims[i].source == CM_ID_CANDIDATE)
            cand_ok = 1; /* claimed after a stronger layer's copy was cancelled */
    }
    c->cand[l] += cand_ok;
    c->blind[l] += blind_ok;
    c->z[l] += top ? r.candidate_score : 0;
    return CM_OK;
}

/* Claims key makes on img of any id but its own layer's `own` (0: none). */
static int wrong_claims(cm_ctx *ctx, const cm_key *key, const uint64_t *cands, uint64_t own,
                        const cm_image *img, int *wrong)
{
    cm_verify_result r;
    int ret = verify(ctx, key, cands, 1, img, &r);
    for (int i = 0; !ret && i < r.nclaims; i++)
        *wrong += !own || r.claims[i].issue_id != own;
    return ret;
}

/* steps applied to in, one after the other, into *out. */
static int attack(const atk_def *const *steps, int n, const cm_image *in, uint32_t seed,
                  cm_image **out)
{
    cm_image *cur = NULL;
    for (int k = 0; k < n; k++) {
        cm_image *next = NULL;
        int ret = steps[k]->fn(cur ? cur : in, &next, seed);
        cm_image_free(&cur);
        if (ret)
            return ret;
        cur = next;
    }
    *out = cur;
    return CM_OK;
}

static const char *pct(int k, int n, char *buf)
{
    snprintf(buf, 24, "%d/%d %3.0f%%", k, n, n ? 100.0 * k / n : 0);
    return buf;
}

int main(int argc, char **argv)
{
    int nframes = 20;
    const char *attacks = DEFAULT_ATTACKS;
    char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            nframes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--attacks") && i + 1 < argc)
            attacks = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: chain [--frames N] [--only LIST] [--attacks LIST]\n");
            return 2;
        }
    }
    av_log_set_level(AV_LOG_ERROR);
    /* each row: one attack, or several applied in turn ("scale50+jpeg50":
     * the downscaled, recompressed copy the issue measured) */
    const atk_def *atk[MAX_ATTACKS][MAX_STEPS];
    char names[MAX_ATTACKS][64];
    int natk = 0, nsteps[MAX_ATTACKS];
    char list[1024];
    snprintf(list, sizeof(list), "%s", attacks);
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && natk < MAX_ATTACKS;
         t = strtok_r(NULL, ",", &save)) {
        snprintf(names[natk], sizeof(names[natk]), "%s", t);
        nsteps[natk] = 0;
        char *save2 = NULL;
        for (char *u = strtok_r(t, "+", &save2); u && nsteps[natk] < MAX_STEPS;
             u = strtok_r(NULL, "+", &save2)) {
            if (!(atk[natk][nsteps[natk]++] = atk_find(u))) {
                fprintf(stderr, "chain: unknown attack '%s'\n", u);
                return 2;
            }
        }
        natk++;
    }
    cm_ctx *ctx = NULL;
    cm_key *studio = NULL, *unrelated = NULL, *vendor = NULL, *sub = NULL;
    cm_key *vendor_layer = NULL, *sub_layer = NULL, *sibling_layer = NULL;
    if (cm_ctx_new(&ctx) || bench_key(&studio, 0) || bench_key(&unrelated, 7) ||
        cm_key_delegate(ctx, studio, "vendor-a", "2026-12-04T00:00:00Z", &vendor) ||
        cm_key_delegate(ctx, vendor, "sub-x", "2026-12-04T00:00:00Z", &sub) ||
        cm_key_layer_key(ctx, studio, "vendor-a", &vendor_layer) ||
        cm_key_layer_key(ctx, vendor_layer, "sub-x", &sub_layer) ||
        cm_key_layer_key(ctx, studio, "vendor-b", &sibling_layer)) {
        fprintf(stderr, "chain: cannot make the keys: %s\n", cm_ctx_last_error(ctx));
        return 1;
    }
    const cm_key *reader[NLAYERS] = {studio, vendor_layer, sub_layer};
    counts per[MAX_ATTACKS], three[2];
    memset(per, 0, sizeof(per));
    memset(three, 0, sizeof(three));
    double worst_p999 = 0, worst_max = 0, psnr_min = 1e9, psnr1_min = 1e9, psnr_sum = 0;
    double p999_sum = 0;
    int wrong_keys = 0, frames_done = 0;
    uint64_t *cands[NLAYERS];
    for (int l = 0; l < NLAYERS; l++)
        cands[l] = malloc(sizeof(uint64_t) * NCAND);
    const atk_def *jpeg75 = atk_find("jpeg75"), *none = atk_find("none");
    for (int fi = 1; fi <= nframes; fi++) {
        if (only) {
            char want[16];
            snprintf(want, sizeof(want), ",%d,", fi);
            char pad[1040];
            snprintf(pad, sizeof(pad), ",%s,", only);
            if (!strstr(pad, want))
                continue;
        }
        double t0 = bench_now_ms();
        cel_params p;
        bench_frame_params(&p, fi);
        cm_image *orig = NULL, *copy = NULL, *deep = NULL;
        uint64_t s = 0x5eed0000ULL + (uint64_t)fi, ids[NLAYERS];
        for (int l = 0; l < NLAYERS; l++) {
            ids[l] = bench_splitmix64(&s);
            candidates(&s, ids[l], cands[l]);
        }
        int ret = cel_generate(&orig, &p);
        if (!ret)
            ret = cm_image_copy_pixels(orig, &copy);
        if (!ret)
            ret = stamp(ctx, studio, ids[STUDIO], copy);
        cm_plane yo = {0}, yc = {0};
        if (!ret && !(ret = cm_image_to_plane(ctx, orig, &yo)) &&
            !(ret = cm_image_to_plane(ctx, copy, &yc))) {
            double ps1 = psnr(&yo, &yc); /* the studio's layer alone */
            psnr1_min = ps1 < psnr1_min ? ps1 : psnr1_min;
        }
        cm_plane_free(&yc);
        if (!ret)
            ret = stamp(ctx, vendor, ids[VENDOR], copy);
        if (ret) {
            fprintf(stderr, "chain: frame %d: %s\n", fi, cm_ctx_last_error(ctx));
            return 1;
        }
        /* invisibility against the studio's original */
        cm_de_stats de;
        if (cm_image_delta_e(ctx, orig, copy, &de) || cm_image_to_plane(ctx, copy, &yc))
            return 1;
        double ps = psnr(&yo, &yc);
        cm_plane_free(&yo);
        cm_plane_free(&yc);
        worst_p999 = de.p999 > worst_p999 ? de.p999 : worst_p999;
        worst_max = de.max > worst_max ? de.max : worst_max;
        p999_sum += de.p999;
        psnr_min = ps < psnr_min ? ps : psnr_min;
        psnr_sum += ps;
        for (int a = 0; a < natk; a++) {
            cm_image *att = NULL;
            if (attack(atk[a], nsteps[a], copy, (uint32_t)fi, &att)) {
                fprintf(stderr, "chain: frame %d: attack %s failed\n", fi, names[a]);
                return 1;
            }
            per[a].runs++;
            for (int l = STUDIO; l <= VENDOR; l++)
                if (read_layer(ctx, reader[l], cands[l], ids[l], 2, att, &per[a], l))
                    return 1;
            cm_image_free(&att);
        }
        /* wrong keys, on the twice-stamped copy: a sibling vendor's layer,
         * the vendor's layer key against the studio's ids, an unrelated key */
        if (wrong_claims(ctx, sibling_layer, cands[VENDOR], 0, copy, &wrong_keys) ||
            wrong_claims(ctx, vendor, cands[STUDIO], ids[VENDOR], copy, &wrong_keys) ||
            wrong_claims(ctx, unrelated, cands[STUDIO], 0, copy, &wrong_keys))
            return 1;
        /* three layers */
        if (cm_image_copy_pixels(copy, &deep) || stamp(ctx, sub, ids[SUB], deep))
            return 1;
        const atk_def *t3[2] = {none, jpeg75};
        for (int a = 0; a < 2; a++) {
            cm_image *att = NULL;
            if (attack(&t3[a], 1, deep, (uint32_t)fi, &att))
                return 1;
            three[a].runs++;
            for (int l = 0; l < NLAYERS; l++)
                if (read_layer(ctx, reader[l], cands[l], ids[l], 3, att, &three[a], l))
                    return 1;
            cm_image_free(&att);
        }
        frames_done++;
        fprintf(stderr, "chain: frame %d/%d (%s) de00 p99.9 %.2f max %.2f psnr %.2f; %.1f s\n",
                fi, nframes, cel_style_name(p.style), de.p999, de.max, ps,
                (bench_now_ms() - t0) / 1000);
        cm_image_free(&deep);
        cm_image_free(&copy);
        cm_image_free(&orig);
    }
    char b1[24], b2[24], b3[24], b4[24], b5[24];
    printf("chain: celmark %s, %d frames, default profile, studio + vendor-a (+ sub-x), %d "
           "candidates per layer, max_fpr %g\n\n",
           cm_version(), frames_done, NCAND, MAX_FPR);
    printf("twice-stamped vs the studio's original: de00 p99.9 mean %.2f worst %.2f, max %.2f, "
           "psnr_y mean %.2f min %.2f dB (the studio's layer alone: min %.2f)   target p99.9 "
           "<= 2.5, max <= 5, psnr >= 44: %s\n\n",
           frames_done ? p999_sum / frames_done : 0, worst_p999, worst_max,
           frames_done ? psnr_sum / frames_done : 0, psnr_min, psnr1_min,
           worst_p999 <= 2.5 && worst_max <= 5 && psnr_min >= 44 ? "PASS" : "MISS");
    printf("%-14s %-13s %-13s %-13s %-13s %6s %6s %5s  verdict (cand 100%%, blind studio >= "
           "95%%, vendor >= 90%%)\n",
           "attack", "studio_cand", "studio_blind", "vendor_cand", "vendor_blind", "z_st",
           "z_ve", "wrong");
    int all_pass = 1;
    for (int a = 0; a < natk; a++) {
        const counts *c = &per[a];
        int n = c->runs;
        int ok = n && c->cand[STUDIO] == n && c->cand[VENDOR] == n &&
                 c->blind[STUDIO] * 100 >= 95 * n && c->blind[VENDOR] * 100 >= 90 * n &&
                 c->wrong == 0;
        all_pass &= ok;
        printf("%-14s %-13s %-13s %-13s %-13s %6.1f %6.1f %5d  %s\n", names[a],
               pct(c->cand[STUDIO], n, b1), pct(c->blind[STUDIO], n, b2),
               pct(c->cand[VENDOR], n, b3), pct(c->blind[VENDOR], n, b4),
               n ? c->z[STUDIO] / n : 0, n ? c->z[VENDOR] / n : 0, c->wrong,
               ok ? "PASS" : "MISS");
    }
    printf("\nthree layers (studio, vendor-a, sub-x), candidates:\n");
    for (int a = 0; a < 2; a++) {
        const counts *c = &three[a];
        int n = c->runs, ok = n && c->wrong == 0;
        for (int l = 0; l < NLAYERS; l++)
            ok &= c->cand[l] == n;
        all_pass &= ok;
        printf("%-12s %s %s  %s %s  %s %s  wrong %d  %s\n", a ? "jpeg75" : "none",
               layer_names[0], pct(c->cand[0], n, b1), layer_names[1], pct(c->cand[1], n, b2),
               layer_names[2], pct(c->cand[2], n, b5), c->wrong, ok ? "PASS" : "MISS");
    }
    printf("\nwrong keys (sibling vendor's layer, vendor key on studio ids, unrelated key): "
           "%d claims   target 0: %s\n",
           wrong_keys, wrong_keys ? "MISS" : "PASS");
    for (int l = 0; l < NLAYERS; l++)
        free(cands[l]);
    cm_key_free(&studio);
    cm_key_free(&unrelated);
    cm_key_free(&vendor);
    cm_key_free(&sub);
    cm_key_free(&vendor_layer);
    cm_key_free(&sub_layer);
    cm_key_free(&sibling_layer);
    cm_ctx_free(&ctx);
    return 0;
}
