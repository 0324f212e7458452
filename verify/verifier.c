/*
 * The verifier: prefilter -> sync (lattice) -> fold -> origin + mirror ->
 * demodulate -> decode and score -> decide.
 *
 * Origin and mirror: the fold of a marked frame is the tile, cyclically
 * shifted (and mirrored if the frame was flipped). A phase correlation of the
 * fold with the rendered sync-only tile gives candidate shifts (its few
 * highest peaks); the mirror is one more correlation on the flipped
 * spectrum. Each candidate is demodulated with the exact adjoint of the
 * rendering (pattern.c); the ones whose sync chips correlate best
 * (sync_score) are despread into one soft value per coded bit.
 *
 * Decision (why the printed fpr is honest):
 *   For one fixed codeword c, z(c) = sum_k u_k c_k / sqrt(sum_k u_k^2) over
 *   the 768 despread payload chips u (c_k = +-1 the coded bit chip k
 *   carries). Under "no mark / another key" the signs of u relative to c
 *   are fair coins (each chip has its own keyed spreading sign), so
 *   z(c) ~ N(0,1) (tests/unit/test_calibration.c checks this on unmarked
 *   frames).
 *   Decoding: Viterbi on the 282 per-bit sums, keeping the 256 best trellis
 *   paths (list Viterbi); the CRC-valid one with the highest z is the blind
 *   id. How it was found does not matter to the bound below.
 *   Given the |u_k|, z(c) is a weighted sum of Rademacher signs with
 *   squared weights summing to 1, so P(z >= t) <= C Q(t) for every t, with
 *   the optimal constant C = 1 / (4 Q(sqrt 2)) = 3.178 (Bentkus and
 *   Dzindzalieta, Bernoulli 21(2), 2015); Q is the normal upper tail. This is
 *   sharper than Hoeffding's exp(-t^2/2) for t > 1.27, and unlike Q(t)
 *   alone it is a bound, not an approximation.
 *   - candidates: fpr = H * n * C * Q(z_best)      (Bonferroni over n ids)
 *   - blind decode: it is a maximum over all 2^64 CRC-valid codewords, so
 *     fpr = H * 2^64 * C * Q(z)                    (union bound)
 *   H = geometry hypotheses whose payload was scored; both are multiplied
 *   by params.layers when several keys read the same file (a studio reading
 *   its own layer and its delegates'). A claim is made only when
 *   fpr <= max_fpr (default 1e-9).
 */
#include "celmark/verify.h"

#include "detect.h"
#include "search.h"
#include "watermark/key_internal.h"
#include "watermark/pattern.h"
#include "watermark/payload.h"

#include <libavutil/mem.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_HYPS 2          /* geometry hypotheses whose payload is scored
                                   (H; geometry.c chooses them on sync alone) */
#define LIST_SIZE 256           /* trellis paths tried for a CRC-valid id */
#define LN_2_POW_64 44.3614195558365 /* ln(2^64): CRC-valid codewords */
#define TAIL_C 3.1780538            /* 1 / (4 Q(sqrt 2)): Bentkus-Dzindzalieta */

void cm_verify_params_default(cm_verify_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->max_fpr = 1e-9;
    p->layers = 1;
}

void cm_verifier_free(cm_verifier **pv)
{
    if (!pv || !*pv)
        return;
    cm_verifier *v = *pv;
    free(v->cands);
    free(v->cand_coded);
    cm__layout_free(&v->layout);
    cm__render_free(&v->render);
    free(v->sync_spec);
    cm__fft2_free(&v->wk.fft);
    cm__fft2_free(&v->wk.corr_fft);
    cm__fft2_free(&v->wk.qfft);
    cm__fft2_free(&v->wk.qcorr_fft);
    free(v->wk.qsum);
    free(v->wk.qcount);
    free(v->wk.qspec);
    free(v->wk.qcorr);
    free(v->wk.sum);
    free(v->wk.count);
    free(v->wk.spec);
    free(v->wk.corr);
    free(v);
    *pv = NULL;
}

int cm_verifier_new(cm_ctx *ctx, const cm_key *key, const cm_verify_params *params,
                    cm_verifier **out)
{
    if (!out || !key)
        return cm__error(ctx, CM_E_INVAL, "verify: missing key or output");
    *out = NULL;
    cm_verify_params def;
    if (!params) {
        cm_verify_params_default(&def);
        params = &def;
    }
    if (params->ncandidates && !params->candidates)
        return cm__error(ctx, CM_E_INVAL, "verify: candidate list missing");
    if (!(params->max_fpr > 0 && params->max_fpr <= 1))
        return cm__error(ctx, CM_E_INVAL, "verify: max fpr %g outside (0, 1]", params->max_fpr);
    float *chips = NULL, *tile = NULL;
    cm_verifier *v = calloc(1, sizeof(*v));
    int ret = CM_E_NOMEM;
    if (!v)
        goto fail;
    v->ctx = ctx;
    v->params = *params;
    v->ln_keys = log(params->layers > 1 ? (double)params->layers : 1.0);
    v->N = TILE_T * TILE_S;
    if (params->ncandidates) {
        v->cands = cm__malloc_array(params->ncandidates, sizeof(uint64_t));
        v->cand_coded = cm__malloc_array(params->ncandidates, CM_PAYLOAD_CODED_BITS);
        if (!v->cands || !v->cand_coded)
            goto fail;
        memcpy(v->cands, params->candidates, params->ncandidates * sizeof(uint64_t));
        for (size_t i = 0; i < params->ncandidates; i++)
            cm__payload_encode(v->cands[i], v->cand_coded + i * CM_PAYLOAD_CODED_BITS);
        v->params.candidates = v->cands;
    }
    chips = malloc(sizeof(float) * TILE_T * TILE_T);
    tile = malloc(sizeof(float) * (size_t)v->N * v->N);
    size_t nn = (size_t)v->N * v->N;
    v->sync_spec = malloc(sizeof(AVComplexFloat) * nn);
    v->wk.sum = malloc(sizeof(float) * nn);
    v->wk.count = malloc(sizeof(float) * nn);
    v->wk.spec = malloc(sizeof(AVComplexFloat) * nn);
    v->wk.corr = malloc(sizeof(AVComplexFloat) * nn);
    size_t qq = nn / (RANK_DECIM * RANK_DECIM);
    v->wk.qsum = malloc(sizeof(float) * qq);
    v->wk.qcount = malloc(sizeof(float) * qq);
    v->wk.qspec = malloc(sizeof(AVComplexFloat) * qq);
    v->wk.qcorr = malloc(sizeof(AVComplexFloat) * qq);
    if (!chips || !tile || !v->sync_spec || !v->wk.sum || !v->wk.count || !v->wk.spec ||
        !v->wk.corr || !v->wk.qsum || !v->wk.qcount || !v->wk.qspec || !v->wk.qcorr)
        goto fail;
    if (cm__fft2_init(&v->wk.fft, v->N, v->N) ||
        cm__fft2_init(&v->wk.corr_fft, v->N / CORR_DECIM, v->N / CORR_DECIM) ||
        cm__fft2_init(&v->wk.qfft, v->N / RANK_DECIM, v->N / RANK_DECIM) ||
        cm__fft2_init(&v->wk.qcorr_fft, v->N / RANK_DECIM / 2, v->N / RANK_DECIM / 2))
        goto fail;
    if ((ret = cm__layout_new(key, TILE_T, &v->layout)))
        goto fail;
    if ((ret = cm__render_init(&v->render, TILE_T, TILE_S)))
        goto fail;
    cm__layout_sync_chips(v->layout, chips);
    cm__render_tile(&v->render, chips, tile);
    cm__render_spectrum(&v->render, tile, v->sync_spec);
    *out = v;
    v = NULL;
    ret = CM_OK;
fail:
    if (ret)
        cm__error(ctx, ret, "verify: cannot prepare the detector: %s", cm_strerror(ret));
    free(chips);
    free(tile);
    cm_verifier_free(&v);
    return ret;
}

/* Per coded bit: despread the payload chips into one soft value. */
static void despread(const cm__layout *l, const float *soft, float *b)
{
    memset(b, 0, sizeof(float) * CM_PAYLOAD_CODED_BITS);
    for (int k = 0; k < l->npay; k++)
        b[l->pay_bit[k]] += soft[l->pay_idx[k]] * l->pay_sign[k];
}

/* ln of the bound on P(z >= t) for one fixed codeword, ln(C Q(t)), capped
 * at 0. z <= sqrt(768) = 27.7 here, far from where erfc underflows (~38). */
static double ln_tail(double t)
{
    double lf = log(TAIL_C) + log(0.5 * erfc(t / sqrt(2.0)));
    return lf < 0 ? lf : 0;
}

/* The fpr of a claim that scored z, the best of e^ln_tries codewords. */
static double claim_fpr(double z, double ln_tries)
{
    double lf = ln_tries + ln_tail(z);
    return lf < 0 ? exp(lf) : 1;
}

/* sqrt(sum_k u_k^2) over the payload chips (u_k^2 = soft^2: the keyed sign
 * is +-1); 1 when they are all 0. */
static double chip_norm(const cm__layout *l, const float *soft)
{
    double ss = 0;
    for (int k = 0; k < l->npay; k++)
        ss += (double)soft[l->pay_idx[k]] * soft[l->pay_idx[k]];
    return ss > 0 ? sqrt(ss) : 1;
}

/* Normalised correlation of codeword `coded` with the payload chips:
 * z = sum_k u_k c_k / sqrt(sum_k u_k^2), u_k the despread chip (its soft
 * value times its keyed sign), c_k = +-1 the coded bit it carries; norm is
 * chip_norm(). Scored per chip rather than per coded bit: each chip has its
 * own keyed sign, so the tail bound (file comment) holds term by term, and
 * the self-normalisation costs less when the terms are many (a bit's sum of
 * ~2.7 chips saturates sooner: z per bit can never exceed sqrt(282) = 16.8,
 * per chip sqrt(768) = 27.7). */
static double chip_correlate(const cm__layout *l, const float *soft, const uint8_t *coded,
                             double norm)
{
    double s = 0;
    for (int k = 0; k < l->npay; k++) {
        double u = soft[l->pay_idx[k]] * l->pay_sign[k];
        s += coded[l->pay_bit[k]] ? u : -u;
    }
    return s / norm;
}

/* Score the payload of nh hypotheses: the best CRC-valid blind decode and
 * the best candidate, and which hypothesis gave each (*blind_k, *cand_k). */
static int score_payload(cm_verifier *v, const hypo *hs, int nh, cm_verify_result *res,
                         int *blind_k, int *cand_k)
{
    float b[CM_PAYLOAD_CODED_BITS];
    uint8_t coded[CM_PAYLOAD_CODED_BITS];
    res->blind_fpr = 1;
    res->candidate_fpr = 1;
    res->best_candidate = -1;
    res->blind_score = -1e9;
    res->candidate_score = -1e9;
    double ln_blind = log((double)nh) + v->ln_keys + LN_2_POW_64;
    for (int k = 0; k < nh; k++) {
        despread(v->layout, hs[k].soft, b);
        uint64_t ids[LIST_SIZE];
        float metric;
        int nvalid = cm__payload_decode(b, &ids[0], &metric);
        if (k == 0)
            res->decoded_id = ids[0];
        /* Every codeword's z has the same numerator as its Viterbi path
         * metric (a bit's soft value is the sum of its chips), so the
         * plain Viterbi path bounds them all: when it passes the CRC it is
         * the best CRC-valid codeword, and when even its metric could not
         * make a claim, no codeword on the list could. Only in between is
         * the list worth its time. */
        double norm = chip_norm(v->layout, hs[k].soft);
        double zmax = metric / norm + 1e-3;
        if (!nvalid && claim_fpr(zmax, ln_blind) <= v->params.max_fpr) {
            nvalid = cm__payload_decode_list(b, LIST_SIZE, ids);
            if (nvalid < 0)
                return CM_E_NOMEM;
        }
        for (int j = 0; j < nvalid; j++) {
            cm__payload_encode(ids[j], coded);
            double z = chip_correlate(v->layout, hs[k].soft, coded, norm);
            double f = claim_fpr(z, ln_blind);
            if (!res->blind_crc_ok || f < res->blind_fpr) {
                res->blind_crc_ok = 1;
                res->blind_id = ids[j];
                res->blind_score = z;
                res->blind_fpr = f;
                *blind_k = k;
            }
        }
        for (size_t c = 0; c < v->params.ncandidates; c++) {
            double z = chip_correlate(v->layout, hs[k].soft,
                                      v->cand_coded + c * CM_PAYLOAD_CODED_BITS, norm);
            if (z > res->candidate_score) {
                res->candidate_score = z;
                res->best_candidate = (long)c;
                *cand_k = k;
            }
        }
    }
    if (res->best_candidate >= 0) {
        res->candidate_fpr = claim_fpr(res->candidate_score,
                                       log((double)nh * (double)v->params.ncandidates) +
                                           v->ln_keys);
    }
    return CM_OK;
}

/* The whitened, decimated residual of luma plus, if given, the blue-yellow
 * chroma plane: their residuals add (the stamper puts the same pattern, same
 * sign, in both; a plane without it only adds its noise, whitened to unit
 * scale). *out is (w/CM__DECIM) x (h/CM__DECIM) floats, caller frees. */
static int residual(const cm_plane *luma, const cm_plane *chroma, float **out)
{
    int w = luma->width, h = luma->height;
    size_t nd = (size_t)(w / CM__DECIM) * (h / CM__DECIM);
    float *r = cm__malloc_array(nd, sizeof(float));
    float *rc = chroma ? cm__malloc_array(nd, sizeof(float)) : NULL;
    int ret = CM_E_NOMEM;
    if (!r || (chroma && !rc))
        goto fail;
    if ((ret = cm__prefilter(luma, r)))
        goto fail;
    if (chroma) {
        if ((ret = cm__prefilter(chroma, rc)))
            goto fail;
        for (size_t i = 0; i < nd; i++)
            r[i] += CM__CHROMA_WEIGHT * rc[i];
    }
    free(rc);
    *out = r;
    return CM_OK;
fail:
    free(rc);
    free(r);
    return ret;
}

void cm__result_init(cm_verify_result *res)
{
    memset(res, 0, sizeof(*res));
    res->fpr = 1;
    res->blind_fpr = 1;
    res->candidate_fpr = 1;
    res->best_candidate = -1;
}

/* ---- several marks in one frame ----------------------------------------
 *
 * A frame may hold several copies' marks: an average of copies (collusion,
 * a blend), or a composite (halves, an inset). They share the key, so their
 * tiles share the lattice, origin and sync chips; only the payload chips
 * differ. After the strongest id is claimed, its contribution is cancelled
 * from the demodulated payload chips (u_k minus its least-squares share
 * alpha c_k, alpha = sum u_k c_k / K) and the rest decoded again, blind and
 * against the candidates not yet claimed, until nothing more passes
 * max_fpr or CM_MAX_CLAIMS are claimed.
 *
 * What a later claim's fpr counts: every hypothesis scored (H), each claim
 * round (CM_MAX_CLAIMS, whether or not they all run) and each region its
 * evidence may come from (REGIONS: the whole frame, and the cells where no
 * claim dominates, see below), times the ids (2^64 blind, n candidates):
 *
 *   fpr = H * CM_MAX_CLAIMS * REGIONS * (2^64 or n) * C Q(z)
 *
 * On a frame that carries one mark, the cancelled chips are the noise with
 * one direction (the claimed codeword) removed: for another codeword c,
 * sum u'_k c_k = sum n_k (c_k - rho c1_k) with rho the two codewords'
 * correlation, a sum of the noise's fair signs with weights that differ
 * from |n_k| only by (1 - rho c_k c1_k), so the same bound holds up to that
 * factor; test_calibration checks P(fpr <= a) <= a for second claims on
 * single-marked frames.
 *
 * Where: the frame is cut into cells of about one tile; each cell is folded
 * alone, demodulated at the claims' geometry and origin, and scored against
 * each claimed codeword. A cell belongs to the id with the highest z if that
 * z reaches CELL_Z. When one id is claimed and the rest still shows a
 * candidate at REGION_GATE_Z or more, the cells that id does not dominate
 * form a region whose own fold is decoded the same way: a quarter pasted
 * from another copy then counts on its own area, not diluted by the whole
 * frame's noise. */

#define REGIONS 2           /* the whole frame; the cells no claim dominates */
#define CELL_Z 3.0          /* a cell's z that names its owner */
#define REGION_GATE_Z 4.0   /* a candidate left at this z after cancelling
                               the first claim: look in the region it does
                               not dominate (the best of 1,000 noise
                               candidates exceeds it 3 % of the time) */
#define MAP_MAX_SIDE 32     /* cells per side, at most */

/* The fold in wk demodulated at h's origin and mirror into soft. */
static void demod_at(cm_verifier *v, work *wk, const hypo *h, float *soft)
{
    cm__fold_spectrum(wk, v->N);
    cm__render_adjoint(&v->render, wk->spec, h->flipped, h->dx, h->dy, soft);
}

/* Remove codeword coded's least-squares share from the payload chips. */
static void cancel(const cm__layout *l, float *soft, const uint8_t *coded)
{
    double s = 0;
    for (int k = 0; k < l->npay; k++) {
        double u = soft[l->pay_idx[k]] * l->pay_sign[k];
        s += coded[l->pay_bit[k]] ? u : -u;
    }
    double alpha = s / l->npay;
    for (int k = 0; k < l->npay; k++) {
        double c = coded[l->pay_bit[k]] ? 1 : -1;
        soft[l->pay_idx[k]] -= (float)(alpha * c * l->pay_sign[k]);
    }
}

static int claimed(const cm_verify_result *res, uint64_t id)
{
    for (int i = 0; i < res->nclaims; i++)
        if (res->claims[i].issue_id == id)
            return 1;
    return 0;
}

/* The best id in soft that is not claimed in res yet, blind or candidate,
 * with its fpr over e^ln_tries more codeword sets; *cand_z: the best
 * unclaimed candidate's z. */
static int round_best(cm_verifier *v, const float *soft, double ln_tries,
                      const cm_verify_result *res, cm_claim *out, double *cand_z)
{
    const cm__layout *l = v->layout;
    float b[CM_PAYLOAD_CODED_BITS];
    uint8_t coded[CM_PAYLOAD_CODED_BITS];
    memset(out, 0, sizeof(*out));
    out->fpr = 1;
    *cand_z = -1e9;
    double norm = chip_norm(l, soft);
    despread(l, soft, b);
    uint64_t ids[LIST_SIZE];
    float metric;
    int nvalid = cm__payload_decode(b, &ids[0], &metric);
    double ln_blind = ln_tries + LN_2_POW_64;
    if (claim_fpr(metric / norm + 1e-3, ln_blind) > v->params.max_fpr)
        nvalid = 0; /* even the best path could not make a claim */
    else if (!nvalid && (nvalid = cm__payload_decode_list(b, LIST_SIZE, ids)) < 0)
        return CM_E_NOMEM;
    for (int j = 0; j < nvalid; j++) {
        if (claimed(res, ids[j]))
            continue;
        cm__payload_encode(ids[j], coded);
        double z = chip_correlate(l, soft, coded, norm);
        double f = claim_fpr(z, ln_blind);
        if (f < out->fpr) {
            *out = (cm_claim){.issue_id = ids[j], .source = CM_ID_BLIND, .score = z, .fpr = f};
        }
    }
    double ln_cand = ln_tries + log((double)v->params.ncandidates);
    for (size_t c = 0; c < v->params.ncandidates; c++) {
        if (claimed(res, v->cands[c]))
            continue;
        double z = chip_correlate(l, soft, v->cand_coded + c * CM_PAYLOAD_CODED_BITS, norm);
        if (z > *cand_z)
            *cand_z = z;
        double f = claim_fpr(z, ln_cand);
        if (f < out->fpr) {
            *out = (cm_claim){.issue_id = v->cands[c], .source = CM_ID_CANDIDATE, .score = z,
                              .fpr = f};
        }
    }
    return CM_OK;
}

/* Cancel every claim of res from soft, then claim what passes, round by
 * round; *cand_z: the best unclaimed candidate's z in the last round. */
static int claim_rounds(cm_verifier *v, float *soft, double ln_tries, cm_verify_result *res,
                        double *cand_z)
{
    uint8_t coded[CM_PAYLOAD_CODED_BITS];
    for (int i = 0; i < res->nclaims; i++) {
        cm__payload_encode(res->claims[i].issue_id, coded);
        cancel(v->layout, soft, coded);
    }
    *cand_z = -1e9;
    while (res->nclaims < CM_MAX_CLAIMS) {
        cm_claim c;
        int ret = round_best(v, soft, ln_tries, res, &c, cand_z);
        if (ret)
            return ret;
        if (c.source == CM_ID_NONE || c.fpr > v->params.max_fpr)
            break;
        res->claims[res->nclaims++] = c;
        cm__payload_encode(c.issue_id, coded);
        cancel(v->layout, soft, coded);
    }
    return CM_OK;
}

/* The frame cut into cells of about one tile (residual px), each cell
 * folded alone and demodulated at h: soft[cell * T*T]. */
typedef struct cells {
    int cols, rows;
    double cw, ch; /* cell size, residual px */
    float *soft;
} cells;

static int cells_make(cm_verifier *v, const float *r, int wd, int hd, const hypo *h, cells *cs)
{
    const int TT = TILE_T * TILE_T;
    double period = cm__geom_period(&h->g, v->N, wd / 2.0, hd / 2.0);
    cs->cw = period > (double)wd / MAP_MAX_SIDE ? period : (double)wd / MAP_MAX_SIDE;
    cs->ch = period > (double)hd / MAP_MAX_SIDE ? period : (double)hd / MAP_MAX_SIDE;
    cs->cols = (int)ceil(wd / cs->cw - 1e-9);
    cs->rows = (int)ceil(hd / cs->ch - 1e-9);
    cs->soft = cm__malloc_array((size_t)cs->cols * cs->rows, sizeof(float) * TT);
    if (!cs->soft)
        return CM_E_NOMEM;
    size_t nn = (size_t)v->N * v->N;
    for (int cy = 0; cy < cs->rows; cy++)
        for (int cx = 0; cx < cs->cols; cx++) {
            int x0 = (int)(cx * cs->cw), y0 = (int)(cy * cs->ch);
            int x1 = (int)((cx + 1) * cs->cw), y1 = (int)((cy + 1) * cs->ch);
            x1 = x1 < wd ? x1 : wd;
            y1 = y1 < hd ? y1 : hd;
            memset(v->wk.sum, 0, sizeof(float) * nn);
            memset(v->wk.count, 0, sizeof(float) * nn);
            cm__fold_rect(r, wd, x0, y0, x1 - x0, y1 - y0, &h->g, v->N, v->wk.sum,
                          v->wk.count);
            demod_at(v, &v->wk, h, cs->soft + (size_t)(cy * cs->cols + cx) * TT);
        }
    return CM_OK;
}

/* Each cell's owner among res's claims (z >= CELL_Z, the highest), into
 * res->map, and each claim's share and bounding box (frame px fw x fh). */
static void cells_map(cm_verifier *v, const cells *cs, int fw, int fh, cm_verify_result *res)
{
    const int TT = TILE_T * TILE_T;
    uint8_t coded[CM_MAX_CLAIMS][CM_PAYLOAD_CODED_BITS];
    for (int i = 0; i < res->nclaims; i++)
        cm__payload_encode(res->claims[i].issue_id, coded[i]);
    cm_claim_map *m = &res->map;
    m->cols = cs->cols;
    m->rows = cs->rows;
    m->cell_w = cs->cw * CM__DECIM;
    m->cell_h = cs->ch * CM__DECIM;
    double area[CM_MAX_CLAIMS] = {0}, total = 0;
    int box[CM_MAX_CLAIMS][4];
    for (int i = 0; i < res->nclaims; i++)
        box[i][0] = box[i][1] = INT32_MAX, box[i][2] = box[i][3] = -1;
    for (int c = 0; c < cs->cols * cs->rows; c++) {
        const float *soft = cs->soft + (size_t)c * TT;
        double norm = chip_norm(v->layout, soft), bz = CELL_Z;
        int owner = -1;
        for (int i = 0; i < res->nclaims; i++) {
            double z = chip_correlate(v->layout, soft, coded[i], norm);
            if (z >= bz)
                bz = z, owner = i;
        }
        m->owner[c] = (signed char)owner;
        m->score[c] = owner >= 0 ? (float)bz : 0;
        int x0 = (int)((c % cs->cols) * m->cell_w), y0 = (int)((c / cs->cols) * m->cell_h);
        int x1 = (int)((c % cs->cols + 1) * m->cell_w), y1 = (int)((c / cs->cols + 1) * m->cell_h);
        x1 = x1 < fw ? x1 : fw;
        y1 = y1 < fh ? y1 : fh;
        double a = (double)(x1 - x0) * (y1 - y0);
        total += a;
        if (owner < 0)
            continue;
        area[owner] += a;
        int *b = box[owner];
        b[0] = x0 < b[0] ? x0 : b[0];
        b[1] = y0 < b[1] ? y0 : b[1];
        b[2] = x1 > b[2] ? x1 : b[2];
        b[3] = y1 > b[3] ? y1 : b[3];
    }
    for (int i = 0; i < res->nclaims; i++) {
        cm_claim *c = &res->claims[i];
        c->share = total > 0 ? area[i] / total : 0;
        if (box[i][2] > box[i][0]) {
            c->x = box[i][0], c->y = box[i][1];
            c->w = box[i][2] - box[i][0], c->h = box[i][3] - box[i][1];
        } else {
            c->x = c->y = c->w = c->h = 0;
        }
    }
}

/* The region of cells no claim dominates, folded together and demodulated
 * at h into soft; 0 when it is empty or the whole frame. */
static int region_soft(cm_verifier *v, const float *r, int wd, int hd, const hypo *h,
                       const cells *cs, const cm_claim_map *m, float *soft)
{
    int n = cs->cols * cs->rows, free_cells = 0;
    for (int c = 0; c < n; c++)
        free_cells += m->owner[c] < 0;
    if (free_cells == 0 || free_cells == n)
        return 0;
    size_t nn = (size_t)v->N * v->N;
    memset(v->wk.sum, 0, sizeof(float) * nn);
    memset(v->wk.count, 0, sizeof(float) * nn);
    for (int c = 0; c < n; c++) {
        if (m->owner[c] >= 0)
            continue;
        int cx = c % cs->cols, cy = c / cs->cols;
        int x0 = (int)(cx * cs->cw), y0 = (int)(cy * cs->ch);
        int x1 = (int)((cx + 1) * cs->cw), y1 = (int)((cy + 1) * cs->ch);
        x1 = x1 < wd ? x1 : wd;
        y1 = y1 < hd ? y1 : hd;
        cm__fold_rect(r, wd, x0, y0, x1 - x0, y1 - y0, &h->g, v->N, v->wk.sum, v->wk.count);
    }
    demod_at(v, &v->wk, h, soft);
    return 1;
}

/* After the first claim (made on hypothesis h of nh): the later claims,
 * and the cell map when several ids are claimed or params.map asks. */
static int more_claims(cm_verifier *v, const float *r, int wd, int hd, int fw, int fh,
                       const hypo *h, int nh, cm_verify_result *res)
{
    double ln_tries =
        log((double)nh) + log((double)CM_MAX_CLAIMS) + log((double)REGIONS) + v->ln_keys;
    float soft[TILE_T * TILE_T];
    memcpy(soft, h->soft, sizeof(soft));
    double cand_z;
    int ret = claim_rounds(v, soft, ln_tries, res, &cand_z);
    if (ret)
        return ret;
    int region = res->nclaims == 1 && cand_z >= REGION_GATE_Z;
    cells cs = {0};
    if (res->nclaims > 1 || region || v->params.map) {
        if ((ret = cells_make(v, r, wd, hd, h, &cs)))
            return ret;
        cells_map(v, &cs, fw, fh, res);
    }
    if (region && region_soft(v, r, wd, hd, h, &cs, &res->map, soft)) {
        int before = res->nclaims;
        if ((ret = claim_rounds(v, soft, ln_tries, res, &cand_z)))
            goto done;
        if (res->nclaims > before)
            cells_map(v, &cs, fw, fh, res);
    }
    if (res->nclaims == 1 && !cs.soft) { /* one claim, no map: the whole frame */
        res->claims[0].share = 1;
        res->claims[0].w = fw;
        res->claims[0].h = fh;
    }
    if (res->nclaims == 1 && !v->params.map)
        memset(&res->map, 0, sizeof(res->map)); /* scored only to look for a region */
done:
    free(cs.soft);
    return ret;
}

/* Claims strongest (lowest fpr) first, the map's owners renumbered with
 * them; the top-level claim is the strongest. */
static void sort_claims(cm_verify_result *res)
{
    int order[CM_MAX_CLAIMS], rank[CM_MAX_CLAIMS];
    cm_claim sorted[CM_MAX_CLAIMS];
    for (int i = 0; i < res->nclaims; i++)
        order[i] = i;
    for (int i = 1; i < res->nclaims; i++) /* insertion: stable, at most 8 */
        for (int k = i; k > 0 && res->claims[order[k]].fpr < res->claims[order[k - 1]].fpr; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    for (int i = 0; i < res->nclaims; i++) {
        sorted[i] = res->claims[order[i]];
        rank[order[i]] = i;
    }
    memcpy(res->claims, sorted, sizeof(cm_claim) * (size_t)res->nclaims);
    for (int c = 0; c < res->map.cols * res->map.rows; c++)
        if (res->map.owner[c] >= 0)
            res->map.owner[c] = (signed char)rank[(int)res->map.owner[c]];
    res->issue_id = res->claims[0].issue_id;
    res->source = res->claims[0].source;
    res->score = res->claims[0].score;
    res->fpr = res->claims[0].fpr;
    res->mixed = res->nclaims > 1;
}

/* Sync, fold, decode and decide on a residual of wd x hd (decimated) px
 * of a frame of fw x fh px. */
int cm__detect(cm_verifier *v, const float *r, int wd, int hd, int fw, int fh,
               int untouched_only, cm_verify_result *res)
{
    hypo *best = calloc(PAYLOAD_HYPS, sizeof(hypo));
    if (!best)
        return CM_E_NOMEM;
    int ret = CM_OK;
    double Nd = (double)v->N / CM__DECIM; /* tile period at scale 1, residual px */

    if ((ret = cm__geometry_search(v, r, wd, hd, best, PAYLOAD_HYPS, untouched_only)))
        goto done;
    int nh = 0, blind_k = 0, cand_k = 0;
    while (nh < PAYLOAD_HYPS && best[nh].sync_z > -1e29)
        nh++;
    if (nh > 0) {
        res->sync_score = best[0].sync_z;
        double b1[2], b2[2];
        cm__geom_basis(&best[0].g, v->N, wd / 2.0, hd / 2.0, b1, b2);
        res->scale = cm__geom_period(&best[0].g, v->N, wd / 2.0, hd / 2.0) / Nd;
        res->rotation_deg = -atan2(b1[1], b1[0]) * 180 / M_PI;
        res->flipped = best[0].flipped;
        res->hypotheses = nh;
        if ((ret = score_payload(v, best, nh, res, &blind_k, &cand_k)))
            goto done;
    }
    /* decide: the stronger of the two claims, if it passes max_fpr */
    if (res->best_candidate >= 0 && res->candidate_fpr <= res->blind_fpr) {
        res->issue_id = v->cands[res->best_candidate];
        res->score = res->candidate_score;
        res->fpr = res->candidate_fpr;
        res->source = CM_ID_CANDIDATE;
    } else if (res->blind_crc_ok) {
        res->issue_id = res->blind_id;
        res->score = res->blind_score;
        res->fpr = res->blind_fpr;
        res->source = CM_ID_BLIND;
    } else {
        res->score = res->best_candidate >= 0 ? res->candidate_score : 0;
        res->fpr = 1;
    }
    res->marked = res->source != CM_ID_NONE && res->fpr <= v->params.max_fpr;
    if (!res->marked) {
        res->source = CM_ID_NONE;
        goto done;
    }
    res->nclaims = 1;
    res->claims[0] = (cm_claim){.issue_id = res->issue_id, .source = res->source,
                                .score = res->score, .fpr = res->fpr};
    ret = more_claims(v, r, wd, hd, fw, fh, &best[res->source == CM_ID_BLIND ? blind_k : cand_k],
                      nh, res);
    sort_claims(res);
done:
    free(best);
    return ret;
}

int cm__check_planes(const cm_plane *luma, const cm_plane *chroma)
{
    if (!luma || !luma->data || luma->width <= 0 || luma->height <= 0 ||
        luma->stride < luma->width)
        return CM_E_INVAL;
    if (chroma && (!chroma->data || chroma->width != luma->width ||
                   chroma->height != luma->height || chroma->stride < chroma->width))
        return CM_E_INVAL;
    return CM_OK;
}

static int verify_planes(cm_verifier *v, const cm_plane *luma, const cm_plane *chroma,
                         cm_verify_result *res)
{
    if (!v || !res || cm__check_planes(luma, chroma))
        return CM_E_INVAL;
    cm__result_init(res);
    int w = luma->width, h = luma->height;
    if (w < CM__MIN_SIDE || h < CM__MIN_SIDE)
        return CM_OK;
    float *r = NULL;
    int ret = residual(luma, chroma, &r);
    if (!ret)
        ret = cm__detect(v, r, w / CM__DECIM, h / CM__DECIM, w, h, 0, res);
    if (ret)
        cm__error(v->ctx, ret, "verify: %s", cm_strerror(ret));
    free(r);
    return ret;
}

int cm_verifier_plane(cm_verifier *v, const cm_plane *luma, cm_verify_result *res)
{
    return verify_planes(v, luma, NULL, res);
}

int cm_verifier_image(cm_verifier *v, const cm_image *img, cm_verify_result *res)
{
    if (!v || !img || !res)
        return CM_E_INVAL;
    cm_plane luma = {0}, chroma = {0};
    int colour = cm_image_is_colour(img);
    int ret = cm_image_to_plane(v->ctx, img, &luma);
    if (!ret && colour)
        ret = cm_image_chroma(v->ctx, img, &chroma, NULL, NULL);
    if (!ret)
        ret = verify_planes(v, &luma, colour ? &chroma : NULL, res);
    cm_plane_free(&luma);
    cm_plane_free(&chroma);
    return ret;
}

double cm_verifier_max_fpr(const cm_verifier *v)
{
    return v ? v->params.max_fpr : 0;
}

cm_ctx *cm__verifier_ctx(const cm_verifier *v)
{
    return v->ctx;
}
