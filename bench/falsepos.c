/*
 * falsepos: does celmark ever claim a mark that is not there?
 *
 * Generates N inputs (default 2,400) that carry no mark of the bench key —
 * cel frames, crops of a large frame, 2x rescales, Gaussian noise,
 * photo-like texture, and frames marked under ANOTHER key (tests/gen/
 * unmarked.h) — at sizes from 320x240 to 1920x1080, verifies each with
 * 1,000 candidate ids, and reports per kind: claims (inputs with any claim;
 * must be 0), blind CRC passes, the largest candidate z, how often the
 * candidate fpr fell at or below a (an honest fpr does so at most a fraction
 * a of the time), and, since a verify may claim several ids (issue 16), the
 * ids claimed in all (claims[] entries) and the inputs with a second claim
 * (nclaims > 1).
 *
 *   falsepos [--inputs N] [--candidates K]
 */
#include "cel.h"
#include "celmark/celmark.h"
#include "unmarked.h"
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FPR 1e-9
#define NLEVELS 3

static const double levels[NLEVELS] = {0.1, 0.01, 0.001};
static const int sizes[][2] = {{1920, 1080}, {1280, 720}, {960, 540},
                               {640, 360},   {512, 512},  {320, 240}};
#define NSIZES (int)(sizeof(sizes) / sizeof(sizes[0]))

typedef struct kind_stats {
    int n, claims, crc, below[NLEVELS];
    int ids;    /* claims[] entries: every id claimed */
    int second; /* inputs with nclaims > 1 */
    double max_z;
} kind_stats;

int main(int argc, char **argv)
{
    int ninputs = 2400, ncand = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--inputs") && i + 1 < argc)
            ninputs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--candidates") && i + 1 < argc)
            ncand = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: falsepos [--inputs N] [--candidates K]\n");
            return 2;
        }
    }
    if (ninputs < 1 || ncand < 1)
        return 2;
    cm_key *key = NULL, *other = NULL;
    if (bench_key(&key, 0) || bench_key(&other, 1))
        return 4;
    uint64_t *cands = malloc(sizeof(uint64_t) * (size_t)ncand);
    if (!key || !other || !cands)
        return 4;
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < ncand; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        cands[i] = r;
    }
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = cands;
    vp.ncandidates = (size_t)ncand;
    vp.max_fpr = MAX_FPR;
    cm_verifier *v = NULL;
    cel_params bp;
    cel_params_default(&bp);
    bp.seed = 4242;
    cm_image *bigimg = NULL;
    cm_plane big = {0};
    if (cm_verifier_new(NULL, key, &vp, &v) || cel_generate(&bigimg, &bp) ||
        cm_image_to_plane(NULL, bigimg, &big))
        return 4;
    um_source src = {0x2545f4914f6cdd1dULL, other, &big};
    kind_stats st[UM_KINDS];
    memset(st, 0, sizeof(st));
    clock_t t0 = clock();
    for (int i = 0; i < ninputs; i++) {
        um_kind k = (um_kind)(i % UM_KINDS);
        int s = (i / UM_KINDS) % NSIZES;
        cm_plane p = {0};
        cm_image *img = NULL;
        cm_verify_result res;
        int ret;
        if (k == UM_CEL || k == UM_OTHER_KEY) /* colour: luma + chroma path */
            ret = um_generate_image(&src, k, i, sizes[s][0], sizes[s][1], &img) ||
                  cm_verifier_image(v, img, &res);
        else
            ret = um_generate(&src, k, i, sizes[s][0], sizes[s][1], &p) ||
                  cm_verifier_plane(v, &p, &res);
        cm_plane_free(&p);
        cm_image_free(&img);
        if (ret) {
            fprintf(stderr, "falsepos: input %d (%s) failed\n", i, um_kind_name(k));
            return 4;
        }
        kind_stats *ks = &st[k];
        ks->n++;
        ks->claims += res.marked;
        ks->ids += res.nclaims;
        ks->second += res.nclaims > 1;
        ks->crc += res.blind_crc_ok;
        if (res.candidate_score > ks->max_z)
            ks->max_z = res.candidate_score;
        for (int l = 0; l < NLEVELS; l++)
            ks->below[l] += res.candidate_fpr <= levels[l];
        if (res.marked)
            printf("CLAIM: input %d kind %s %dx%d id %016llx fpr %.3g\n", i, um_kind_name(k),
                   sizes[s][0], sizes[s][1], (unsigned long long)res.issue_id, res.fpr);
        for (int c = 1; c < res.nclaims; c++) /* claims[0] is the line above */
            printf("CLAIM: input %d kind %s %dx%d id %016llx fpr %.3g (claim %d of %d)\n", i,
                   um_kind_name(k), sizes[s][0], sizes[s][1],
                   (unsigned long long)res.claims[c].issue_id, res.claims[c].fpr, c + 1,
                   res.nclaims);
        if ((i + 1) % 200 == 0)
            fprintf(stderr, "falsepos: %d/%d\n", i + 1, ninputs);
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("falsepos: celmark %s, %d unmarked inputs, %d candidates each, claim threshold fpr <= %g\n",
           cm_version(), ninputs, ncand, MAX_FPR);
    printf("%-10s %6s %7s %9s %10s %10s %10s %10s %11s %13s\n", "kind", "inputs", "claims",
           "blind_crc", "max_cand_z", "fpr<=0.1", "fpr<=0.01", "fpr<=0.001", "claimed_ids",
           "second_claims");
    kind_stats tot;
    memset(&tot, 0, sizeof(tot));
    for (int k = 0; k < UM_KINDS; k++) {
        kind_stats *ks = &st[k];
        printf("%-10s %6d %7d %9d %10.2f %10d %10d %10d %11d %13d\n", um_kind_name((um_kind)k),
               ks->n, ks->claims, ks->crc, ks->max_z, ks->below[0], ks->below[1], ks->below[2],
               ks->ids, ks->second);
        tot.n += ks->n;
        tot.claims += ks->claims;
        tot.ids += ks->ids;
        tot.second += ks->second;
        tot.crc += ks->crc;
        tot.max_z = ks->max_z > tot.max_z ? ks->max_z : tot.max_z;
        for (int l = 0; l < NLEVELS; l++)
            tot.below[l] += ks->below[l];
    }
    printf("%-10s %6d %7d %9d %10.2f %10d %10d %10d %11d %13d\n", "all", tot.n, tot.claims,
           tot.crc, tot.max_z, tot.below[0], tot.below[1], tot.below[2], tot.ids, tot.second);
    printf("honest fpr: at most %.0f / %.0f / %.1f inputs expected at or below 0.1 / 0.01 / 0.001\n",
           levels[0] * tot.n, levels[1] * tot.n, levels[2] * tot.n);
    printf("claims: %d of %d %s   (%.1f s, %.1f ms per input)\n", tot.claims, tot.n,
           tot.claims ? "FAIL" : "PASS", secs, 1e3 * secs / tot.n);
    printf("claimed_ids: %d (claims[] entries over all inputs) %s\n", tot.ids,
           tot.ids ? "FAIL" : "PASS");
    printf("second_claims: %d of %d (inputs with nclaims > 1) %s\n", tot.second, tot.n,
           tot.second ? "FAIL" : "PASS");
    cm_verifier_free(&v);
    cm_plane_free(&big);
    cm_image_free(&bigimg);
    cm_key_free(&key);
    cm_key_free(&other);
    free(cands);
    return tot.claims || tot.ids ? 1 : 0;
}
