/*
 * Evidence over many frames (video, sequences): residuals summed two ways
 * and decided by the verifier as one frame (verifier.c).
 */
#include "celmark/verify.h"

#include "detect.h"

#include <stdlib.h>
#include <string.h>

/* Two ways to add frames up, because frames differ in two ways:
 *
 *   wsum  every frame whitened by its own local variance, then summed: right
 *         when the content changes from frame to frame (each frame's edges
 *         weigh only in that frame)
 *   sum   the linear residuals summed, whitened once when decided: right
 *         when the content holds still (held drawings, static backgrounds)
 *         and only the noise changes, because the host's interference is
 *         then the same in every frame and whitening must see it next to
 *         the averaged-down noise (see verify/prefilter.c)
 *
 * cm_verifier_evidence decides on the one whose sync is stronger. The
 * choice looks at sync chips only, never at the payload, so the payload's
 * statistic and its fpr are as for one frame (the same argument as for
 * geometry hypotheses, see the file comment). */
struct cm_evidence {
    int w, h;        /* frame size (0 until the first frame) */
    int64_t frames;  /* frames added */
    int64_t usable;  /* of which large enough to carry a mark */
    int64_t chroma_frames; /* of which with a chroma plane */
    float *sum;      /* (w/CM__DECIM) x (h/CM__DECIM) summed luma residual */
    float *csum;     /* the same for chroma, allocated with the first chroma */
    float *wsum;     /* frames whitened one by one (luma + chroma), summed */
};

static size_t evidence_n(const cm_evidence *e)
{
    return (size_t)(e->w / CM__DECIM) * (e->h / CM__DECIM);
}

int cm_evidence_new(cm_evidence **out)
{
    if (!out)
        return CM_E_INVAL;
    *out = calloc(1, sizeof(cm_evidence));
    return *out ? CM_OK : CM_E_NOMEM;
}

void cm_evidence_free(cm_evidence **pe)
{
    if (!pe || !*pe)
        return;
    free((*pe)->sum);
    free((*pe)->csum);
    free((*pe)->wsum);
    free(*pe);
    *pe = NULL;
}

void cm_evidence_reset(cm_evidence *e)
{
    if (!e)
        return;
    e->frames = e->usable = e->chroma_frames = 0;
    if (e->sum)
        memset(e->sum, 0, sizeof(float) * evidence_n(e));
    if (e->csum)
        memset(e->csum, 0, sizeof(float) * evidence_n(e));
    if (e->wsum)
        memset(e->wsum, 0, sizeof(float) * evidence_n(e));
}

int64_t cm_evidence_frames(const cm_evidence *e)
{
    return e ? e->frames : 0;
}

/* Make e ready for frames of w x h (and chroma if asked): CM_E_INVAL if it
 * holds frames of another size. */
static int evidence_size(cm_evidence *e, int w, int h, int chroma)
{
    if (e->sum && (e->w != w || e->h != h)) {
        if (e->usable)
            return CM_E_INVAL;
        free(e->sum); /* emptied: take the new size */
        free(e->csum);
        free(e->wsum);
        e->sum = e->csum = e->wsum = NULL;
    }
    e->w = w;
    e->h = h;
    if (!e->sum && !(e->sum = cm__calloc_array(evidence_n(e), sizeof(float))))
        return CM_E_NOMEM;
    if (!e->wsum && !(e->wsum = cm__calloc_array(evidence_n(e), sizeof(float))))
        return CM_E_NOMEM;
    if (chroma && !e->csum && !(e->csum = cm__calloc_array(evidence_n(e), sizeof(float))))
        return CM_E_NOMEM;
    return CM_OK;
}

static void add_to(float *restrict d, const float *restrict s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] += s[i];
}

int cm__residual_make(cm__residual *fr, const cm_plane *luma, const cm_plane *chroma)
{
    if (cm__check_planes(luma, chroma))
        return CM_E_INVAL;
    fr->w = luma->width;
    fr->h = luma->height;
    fr->usable = fr->w >= CM__MIN_SIDE && fr->h >= CM__MIN_SIDE;
    fr->chroma = chroma != NULL;
    if (!fr->usable)
        return CM_OK;
    int wd = fr->w / CM__DECIM, hd = fr->h / CM__DECIM;
    size_t n = (size_t)wd * hd;
    if (n > fr->cap) {
        float **bufs[] = {&fr->raw, &fr->craw, &fr->white, &fr->tmp, &fr->scratch};
        fr->cap = 0;
        for (int k = 0; k < 5; k++) {
            free(*bufs[k]);
            *bufs[k] = NULL;
        }
        for (int k = 0; k < 5; k++)
            if (!(*bufs[k] = cm__malloc_array(k == 4 ? 2 * n : n, sizeof(float))))
                return CM_E_NOMEM;
        fr->cap = n;
    }
    int ret = cm__prefilter_raw(luma, fr->raw, fr->scratch);
    if (ret)
        return ret;
    memcpy(fr->white, fr->raw, n * sizeof(float));
    if ((ret = cm__prefilter_whiten(fr->white, wd, hd, fr->scratch)))
        return ret;
    if (chroma) {
        if ((ret = cm__prefilter_raw(chroma, fr->craw, fr->scratch)))
            return ret;
        memcpy(fr->tmp, fr->craw, n * sizeof(float));
        if ((ret = cm__prefilter_whiten(fr->tmp, wd, hd, fr->scratch)))
            return ret;
        for (size_t i = 0; i < n; i++)
            fr->white[i] += CM__CHROMA_WEIGHT * fr->tmp[i];
    }
    return CM_OK;
}

int cm__evidence_add_residual(cm_evidence *e, const cm__residual *fr)
{
    if (!fr->usable) {
        e->frames++;
        return CM_OK;
    }
    int ret = evidence_size(e, fr->w, fr->h, fr->chroma);
    if (ret)
        return ret;
    size_t n = evidence_n(e);
    add_to(e->sum, fr->raw, n);
    if (fr->chroma)
        add_to(e->csum, fr->craw, n);
    add_to(e->wsum, fr->white, n);
    e->frames++;
    e->usable++;
    e->chroma_frames += fr->chroma;
    return CM_OK;
}

void cm__residual_free(cm__residual *fr)
{
    free(fr->raw);
    free(fr->craw);
    free(fr->white);
    free(fr->tmp);
    free(fr->scratch);
    memset(fr, 0, sizeof(*fr));
}

int cm_evidence_add(cm_evidence *e, const cm_plane *luma, const cm_plane *chroma)
{
    if (!e)
        return CM_E_INVAL;
    cm__residual fr;
    memset(&fr, 0, sizeof(fr));
    int ret = cm__residual_make(&fr, luma, chroma);
    if (!ret)
        ret = cm__evidence_add_residual(e, &fr);
    cm__residual_free(&fr);
    return ret;
}

int cm_evidence_merge(cm_evidence *dst, const cm_evidence *src)
{
    if (!dst || !src)
        return CM_E_INVAL;
    if (src->usable) {
        int ret = evidence_size(dst, src->w, src->h, src->csum != NULL);
        if (ret)
            return ret;
        add_to(dst->sum, src->sum, evidence_n(src));
        add_to(dst->wsum, src->wsum, evidence_n(src));
        if (src->csum)
            add_to(dst->csum, src->csum, evidence_n(src));
    }
    dst->frames += src->frames;
    dst->usable += src->usable;
    dst->chroma_frames += src->chroma_frames;
    return CM_OK;
}

int cm_verifier_evidence(cm_verifier *v, const cm_evidence *e, cm_verify_result *res)
{
    return cm__evidence_decide(v, e, 0, res);
}

int cm__evidence_decide(cm_verifier *v, const cm_evidence *e, int untouched_only,
                        cm_verify_result *res)
{
    if (!v || !e || !res)
        return CM_E_INVAL;
    cm__result_init(res);
    if (!e->usable)
        return CM_OK;
    int wd = e->w / CM__DECIM, hd = e->h / CM__DECIM;
    size_t n = evidence_n(e);
    float *r = cm__malloc_array(n, sizeof(float));
    float *rc = e->chroma_frames ? cm__malloc_array(n, sizeof(float)) : NULL;
    int ret = CM_E_NOMEM;
    if (!r || (e->chroma_frames && !rc))
        goto done;
    memcpy(r, e->sum, n * sizeof(float));
    if ((ret = cm__prefilter_whiten(r, wd, hd, NULL)))
        goto done;
    if (rc) {
        memcpy(rc, e->csum, n * sizeof(float));
        if ((ret = cm__prefilter_whiten(rc, wd, hd, NULL)))
            goto done;
        for (size_t i = 0; i < n; i++)
            r[i] += CM__CHROMA_WEIGHT * rc[i];
    }
    if ((ret = cm__detect(v, r, wd, hd, e->w, e->h, untouched_only, res)) || e->usable == 1)
        goto done; /* one frame: both sums are the same */
    cm_verify_result alt;
    cm__result_init(&alt);
    if ((ret = cm__detect(v, e->wsum, wd, hd, e->w, e->h, untouched_only, &alt)))
        goto done;
    if (alt.sync_score > res->sync_score)
        *res = alt;
done:
    if (ret)
        cm__error(cm__verifier_ctx(v), ret, "verify: %s", cm_strerror(ret));
    free(r);
    free(rc);
    return ret;
}
