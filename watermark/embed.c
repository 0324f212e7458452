/*
 * Embedding: luma += amp * tile, where tile is the keyed pattern for one
 * issue id repeated over the frame and amp the perceptual mask (mask.h).
 * The global amplitude is lowered, if needed, so the frame's luma PSNR stays
 * at or above the profile's target.
 */
#include "celmark/stamp.h"

#include "embed.h"
#include "key_internal.h"
#include "mask.h"
#include "pattern.h"
#include "profile.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The blue-yellow share of colour images: this many times the luma
 * amplitude, same pattern and sign, at constant luma. The eye is least
 * sensitive along this axis at the mark's frequencies; the detector adds
 * the chroma residual to the luma one. */
#define CHROMA_RATIO 1.5f

/* Rows sampled to estimate the mark's energy for the PSNR cap. */
#define PSNR_ROW_STEP 8
/* Frames' working memory kept between frames for the threads that stamp
 * with one stamper. */
#define SPARE_MASKS 64
/* A delegate's share of the amplitude (and of the colour budget) on a copy
 * that already carries the studio's layer: bench/chain, default profile. */
#define LAYER_SHARE 0.75f

struct cm_stamper {
    cm_ctx *ctx;
    cm_stamp_params params;
    const cm__profile *prof;
    int N;
    float *tile; /* N*N unit-RMS pattern */
    /* the colour budget: the process's, or own; made on a thread of its
     * own while the caller opens its input (cm__stamper_room waits) */
    const cm__room *room;
    cm__room *own_room;
    float de;
    pthread_t room_maker;
    int room_making;
    /* the working memory of earlier frames, whose buffers the next frames
     * of that size take (a video's workers take one each):
     * spare[0..nspare) */
    pthread_mutex_t lock;
    struct frame_work *spare[SPARE_MASKS];
    int nspare;
};

/* A frame's working memory: its mask, and the rows the energy pass makes
 * (each PSNR_ROW_STEP-th row's amplitudes, and its room where made by
 * rows) for the marking pass to take again rather than make twice (a
 * ninth of the budget's and the mask's work a frame). */
typedef struct frame_work {
    cm__mask mask;
    float *rows;
    size_t nrows; /* floats rows holds */
} frame_work;

static void frame_work_free(frame_work *fw)
{
    if (!fw)
        return;
    cm__mask_free(&fw->mask);
    free(fw->rows);
    free(fw);
}

void cm_stamp_params_default(cm_stamp_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->profile = CM_PROFILE_DEFAULT;
    p->strength = 1.0f;
}

static void *make_room(void *arg)
{
    cm_stamper *s = arg;
    if (!(s->room = cm__room_get(s->de)))
        s->room = s->own_room = cm__room_new(s->de);
    return NULL;
}

static void wait_room(cm_stamper *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->room_making) {
        pthread_join(s->room_maker, NULL);
        s->room_making = 0;
    }
    pthread_mutex_unlock(&s->lock);
}

int cm_stamper_new(cm_ctx *ctx, const cm_key *key, uint64_t issue_id,
                   const cm_stamp_params *params, cm_stamper **out)
{
    if (!out || !key)
        return cm__error(ctx, CM_E_INVAL, "stamp: missing key or output");
    *out = NULL;
    cm_stamp_params def;
    if (!params) {
        cm_stamp_params_default(&def);
        params = &def;
    }
    if (!(params->strength > 0 && params->strength <= 4))
        return cm__error(ctx, CM_E_INVAL, "stamp: strength %g outside (0, 4]",
                         (double)params->strength);
    const cm__profile *prof = cm__profile_get(params->profile);
    if (!prof)
        return cm__error(ctx, CM_E_INVAL, "stamp: unknown profile %d", (int)params->profile);

    cm__layout *layout = NULL;
    cm__render render;
    memset(&render, 0, sizeof(render));
    float *chips = NULL;
    uint8_t coded[CM_PAYLOAD_CODED_BITS];
    cm_stamper *s = calloc(1, sizeof(*s));
    int ret = CM_E_NOMEM;
    if (!s)
        goto fail;
    pthread_mutex_init(&s->lock, NULL);
    s->ctx = ctx;
    s->params = *params;
    /* a delegate's layer goes over a copy that already carries the layers
     * above it: it takes a share of the amplitude and of the colour budget,
     * so that the sum stays within what one stamp may change */
    if (cm_key_layer(key) > 0)
        s->params.strength *= LAYER_SHARE;
    params = &s->params;
    s->prof = prof;
    s->N = prof->T * prof->s;
    s->tile = malloc(sizeof(float) * (size_t)s->N * s->N);
    chips = malloc(sizeof(float) * (size_t)prof->T * prof->T);
    if (!s->tile || !chips)
        goto fail;
    if ((ret = cm__layout_new(key, prof->T, &layout)))
        goto fail;
    if ((ret = cm__render_init(&render, prof->T, prof->s)))
        goto fail;
    /* the colour budget of the profile, times the strength: 40 ms of
     * tables the first time, made beside the caller's own start (a video's
     * demuxer and encoder opening, a still's decoding) */
    s->de = prof->de_max * params->strength;
    if (pthread_create(&s->room_maker, NULL, make_room, s) == 0)
        s->room_making = 1;
    else
        make_room(s);
    cm__payload_encode(issue_id, coded);
    cm__layout_chips(layout, coded, chips);
    cm__render_tile(&render, chips, s->tile);
    *out = s;
    s = NULL;
    ret = CM_OK;
fail:
    if (ret)
        cm__error(ctx, ret, "stamp: cannot prepare the mark: %s", cm_strerror(ret));
    cm__render_free(&render);
    cm__layout_free(&layout);
    free(chips);
    cm_stamper_free(&s);
    return ret;
}

void cm_stamper_free(cm_stamper **ps)
{
    if (!ps || !*ps)
        return;
    cm_stamper *s = *ps;
    wait_room(s);
    for (int k = 0; k < s->nspare; k++)
        frame_work_free(s->spare[k]);
    pthread_mutex_destroy(&s->lock);
    free(s->tile);
    cm__room_free(&s->own_room);
    free(s);
    *ps = NULL;
}

/* r += clamp(g * a * t, -lo, hi): the mark never pushes a channel past
 * 0 or full scale. */
CM__DSP_CLONES
static void add_clamped(float *restrict r, const float *restrict a, const float *restrict t,
                        const float *restrict lo, const float *restrict hi, float g, int n)
{
    for (int i = 0; i < n; i++) {
        float d = g * a[i] * t[i];
        d = d > hi[i] ? hi[i] : d;
        d = d < -lo[i] ? -lo[i] : d;
        r[i] += d;
    }
}

/* d = g * a * t: the chroma share (clamped when applied). */
CM__DSP_CLONES
static void chroma_share(float *restrict d, const float *restrict a, const float *restrict t,
                         float g, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = g * a[i] * t[i];
}

/* The same with the headroom of the luma itself, 0..255. */
CM__DSP_CLONES
static void add_clamped_8bit(float *restrict r, const float *restrict a, const float *restrict t,
                             float g, int n)
{
    for (int i = 0; i < n; i++) {
        float d = g * a[i] * t[i];
        float hi = 255.0f - r[i], lo = r[i];
        d = d > hi ? hi : d;
        d = d < -lo ? -lo : d;
        r[i] += d;
    }
}

/* Working memory for a frame: a spare one, or a new one zeroed. */
static frame_work *take_work(cm_stamper *s)
{
    frame_work *fw = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->nspare > 0)
        fw = s->spare[--s->nspare];
    pthread_mutex_unlock(&s->lock);
    return fw ? fw : calloc(1, sizeof(frame_work));
}

/* Working memory done with: kept for the next frame, or freed. */
static void give_work(cm_stamper *s, frame_work *fw)
{
    pthread_mutex_lock(&s->lock);
    int kept = s->nspare < SPARE_MASKS;
    if (kept)
        s->spare[s->nspare++] = fw;
    pthread_mutex_unlock(&s->lock);
    if (!kept)
        frame_work_free(fw);
}

/* fw->rows with room for n floats (NULL when out of memory: the rows are
 * made twice then). */
static float *work_rows(frame_work *fw, size_t n)
{
    if (fw->nrows < n) {
        free(fw->rows);
        fw->rows = cm__malloc_array(n, sizeof(float));
        fw->nrows = fw->rows ? n : 0;
    }
    return fw->rows;
}

/* Where stamp_rows takes each row's room: lo/hi planes (both NULL: none,
 * the luma's own 0..255), or made by fn into the two rows given. */
typedef struct room_src {
    const cm_plane *lo, *hi;
    cm__room_row_fn fn;
    void *opaque;
    float *lo_row, *hi_row;
} room_src;

static void room_of(const room_src *r, const cm_plane *luma, int y, const float **lo,
                    const float **hi)
{
    if (r->fn) {
        r->fn(r->opaque, y, luma->data + y * luma->stride, r->lo_row, r->hi_row);
        *lo = r->lo_row;
        *hi = r->hi_row;
        return;
    }
    *lo = r->lo ? r->lo->data + y * r->lo->stride : NULL;
    *hi = r->hi ? r->hi->data + y * r->hi->stride : NULL;
}

/* Add the mark to luma (in place) and, if cdelta is given, write the
 * blue-yellow share into it: CHROMA_RATIO times the luma amplitude, the same
 * pattern and sign (cm_image_apply_marks clamps it to each pixel's room). */
static int stamp_rows(cm_stamper *s, cm_plane *luma, const cm_plane *lo, const cm_plane *hi,
                      cm_plane *cdelta, cm__room_row_fn room_row, void *opaque)
{
    if (!s || !luma || !luma->data || luma->width <= 0 || luma->height <= 0)
        return CM_E_INVAL;
    int w = luma->width, h = luma->height;
    const cm__profile *pf = s->prof;
    float k = s->params.strength;
    cm__mask_params mp = {pf->flat * k, pf->gain * k, pf->max * k, s->params.cel_safe};
    frame_work *fw = take_work(s);
    cm__mask *mask = fw ? &fw->mask : NULL;
    /* one row of amplitudes; and of room, when rows come from room_row */
    const int per = room_row ? 3 : 1;
    float *amp = cm__malloc_array((size_t)w, (size_t)per * sizeof(float));
    float *row_lo = room_row && amp ? amp + w : NULL, *row_hi = row_lo ? row_lo + w : NULL;
    int ret = amp && mask ? cm__mask_init(mask, luma, &mp) : CM_E_NOMEM;
    if (ret) {
        if (fw)
            frame_work_free(fw);
        free(amp);
        return cm__error(s->ctx, ret, "stamp: cannot build the mask of a %dx%d frame: %s", w, h,
                         cm_strerror(ret));
    }
#define ROW(p, y) ((p) ? (p)->data + (y) * (p)->stride : NULL)
    room_src rs = {lo, hi, room_row, opaque, row_lo, row_hi};
    /* pass 1: the mark's mean square, from every PSNR_ROW_STEP-th row (the
     * mask is smooth; this only caps the strength). The tile has unit RMS
     * and is independent of the mask, so E[(amp*tile)^2] = E[amp^2]. The
     * rows are kept for pass 2 (per floats a pixel: amplitude, room down
     * and up), which would make the same of the same unmarked luma. */
    const int sampled = (h + PSNR_ROW_STEP - 1) / PSNR_ROW_STEP;
    size_t nkept;
    float *kept = cm__mul_size((size_t)sampled * per, (size_t)w, &nkept) ? NULL
                                                                         : work_rows(fw, nkept);
    const size_t kept_stride = (size_t)per * w; /* row y's at kept + y / STEP * this */
    double ms = 0;
    for (int y = 0; y < h; y += PSNR_ROW_STEP) {
        float *out = kept ? kept + (size_t)(y / PSNR_ROW_STEP) * kept_stride : amp;
        if (kept && room_row) { /* the room rows beside the amplitudes */
            rs.lo_row = out + w;
            rs.hi_row = out + 2 * (size_t)w;
        }
        const float *plo, *phi;
        room_of(&rs, luma, y, &plo, &phi);
        cm__mask_row(mask, y, ROW(luma, y), plo, phi, out);
        ms += cm__sum_sq(out, w);
    }
    rs.lo_row = row_lo;
    rs.hi_row = row_hi;
    ms /= (double)w * sampled;
    /* keep PSNR >= the profile's floor */
    double max_ms = 255.0 * 255.0 / pow(10.0, pf->psnr_floor_db / 10.0);
    float g = ms > max_ms ? (float)sqrt(max_ms / ms) : 1.0f;
    int N = s->N;

    /* pass 2: add it */
    for (int y = 0; y < h; y++) {
        float *row = luma->data + y * luma->stride;
        /* pass 1's row, or NULL: made here, before the row is marked */
        const float *made = kept && y % PSNR_ROW_STEP == 0
                                ? kept + (size_t)(y / PSNR_ROW_STEP) * kept_stride
                                : NULL;
        const float *plo, *phi, *a_row = made ? made : amp;
        if (made && room_row) {
            plo = made + w;
            phi = made + 2 * (size_t)w;
        } else {
            room_of(&rs, luma, y, &plo, &phi);
        }
        if (!made)
            cm__mask_row(mask, y, row, plo, phi, amp);
        const float *trow = s->tile + (size_t)(y % N) * N;
        /* tile by tile along the row, so the inner loop vectorises */
        for (int x0 = 0; x0 < w; x0 += N) {
            int n = w - x0 < N ? w - x0 : N;
            float *r = row + x0;
            const float *a = a_row + x0;
            if (cdelta)
                chroma_share(ROW(cdelta, y) + x0, a, trow, g * CHROMA_RATIO, n);
            if (plo && phi)
                add_clamped(r, a, trow, plo + x0, phi + x0, g, n);
            else
                add_clamped_8bit(r, a, trow, g, n);
        }
    }
#undef ROW
    give_work(s, fw);
    free(amp);
    return CM_OK;
}

cm_ctx *cm__stamper_ctx(const cm_stamper *s)
{
    return s ? s->ctx : NULL;
}

const cm__room *cm__stamper_room(cm_stamper *s)
{
    if (!s)
        return NULL;
    wait_room(s);
    if (!s->room)
        cm__error(s->ctx, CM_E_NOMEM, "stamp: cannot make the colour budget: %s",
                  cm_strerror(CM_E_NOMEM));
    return s->room;
}

int cm_stamper_plane(cm_stamper *s, cm_plane *luma, const cm_plane *lo, const cm_plane *hi)
{
    return stamp_rows(s, luma, lo, hi, NULL, NULL, NULL);
}

int cm__stamper_plane_rows(cm_stamper *s, cm_plane *luma, cm__room_row_fn room_row, void *opaque)
{
    if (!room_row)
        return CM_E_INVAL;
    return stamp_rows(s, luma, NULL, NULL, NULL, room_row, opaque);
}

int cm_stamper_image(cm_stamper *s, cm_image *img)
{
    if (!s || !img)
        return CM_E_INVAL;
    cm_plane luma = {0}, lo = {0}, hi = {0}, chroma = {0};
    int colour = cm_image_is_colour(img);
    /* the colour budget: the headroom planes stop the mask where it would
     * show, and the pixels are checked against it when written */
    const cm__room *room = cm__stamper_room(s);
    if (!room)
        return CM_E_NOMEM;
    int ret = cm__image_luma_room(s->ctx, img, room, &luma, &lo, &hi);
    if (!ret && colour)
        ret = cm_plane_alloc(&chroma, img->width, img->height);
    if (!ret)
        ret = stamp_rows(s, &luma, &lo, &hi, colour ? &chroma : NULL, NULL, NULL);
    if (!ret)
        ret = cm__image_apply_marks_within(s->ctx, img, &luma, colour ? &chroma : NULL, room);
    cm_plane *planes[] = {&luma, &lo, &hi, &chroma};
    for (int k = 0; k < 4; k++)
        cm_plane_free(planes[k]);
    return ret;
}
