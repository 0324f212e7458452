/*
 * Frames marked by several workers at once, handed back in order
 * (video_pool.h): the transcoder decodes on its own thread, submits each
 * frame here and takes the oldest back when it is done, so decoding,
 * marking and encoding overlap and the marks of up to `jobs` frames are
 * made at the same time.
 *
 *   submit --> [ring of depth slots] --> take (in submission order)
 *                 |  ^
 *                 v  |  workers: luma out of the samples, hook, luma back
 *
 * A held frame (its samples equal the frame before: animation on twos) is
 * not marked here: the transcoder copies the previous result into it when
 * it takes it. Each worker owns its luma planes; the hook is called from
 * several workers at once and must not share state between calls (the
 * stamper does not).
 */
#include "video_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE } slot_state;

typedef struct slot {
    AVFrame *frame;
    int held;
    slot_state state;
    int ret;
} slot;

typedef struct worker {
    cm__mark_pool *pool;
    pthread_t thread;
    cm_plane luma, lo, hi;
} worker;

struct cm__mark_pool {
    cm_ctx *ctx;
    const char *path; /* the input, for messages */
    cm__video_hook hook;
    void *opaque;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a slot was queued, or stop */
    pthread_cond_t done; /* a slot is done */
    slot *slots;
    int depth;
    int64_t head, tail; /* next to take, next to submit (counts, mod depth) */
    int64_t next_work;  /* next slot a worker looks at */
    int stop;
    worker *workers;
    int nworkers;
};

/* Mark one frame in place: its luma as the hook's plane, the hook, the
 * change written back into the samples. */
static int mark_frame(cm__mark_pool *p, worker *w, AVFrame *f)
{
    int err = av_frame_make_writable(f);
    if (err < 0)
        return cm__video_av_fail(p->ctx, p->path, err, "copy a frame");
    cm_plane *planes[] = {&w->luma, &w->lo, &w->hi};
    if (w->luma.width != f->width || w->luma.height != f->height)
        for (int k = 0; k < 3; k++) {
            cm_plane_free(planes[k]);
            if (cm_plane_alloc(planes[k], f->width, f->height))
                return cm__error(p->ctx, CM_E_NOMEM, "out of memory");
        }
    cm__luma_fmt lf = cm__luma_describe(f);
    cm__luma_map m = cm__luma_map_make(&lf);
    cm__luma_read(f, &lf, &m, &w->luma);
    cm__luma_headroom(&w->luma, &w->lo, &w->hi);
    cm__yuv_chroma chroma;
    cm__video_luma frame = {&w->luma, &w->lo, &w->hi, NULL};
    if (cm__luma_chroma(f, &lf, &chroma))
        frame.chroma = &chroma;
    int ret = p->hook(p->opaque, &frame);
    if (!ret)
        cm__luma_write(f, &lf, &m, &w->luma);
    return ret;
}

static void *work(void *arg)
{
    worker *w = arg;
    cm__mark_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* the oldest queued slot not yet taken by a worker */
        if (p->next_work < p->head)
            p->next_work = p->head;
        while (!p->stop && p->next_work < p->tail &&
               p->slots[p->next_work % p->depth].state != SLOT_QUEUED)
            p->next_work++;
        if (p->stop)
            break;
        if (p->next_work >= p->tail) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        slot *s = &p->slots[p->next_work++ % p->depth];
        s->state = SLOT_RUNNING;
        pthread_mutex_unlock(&p->mu);
        int ret = mark_frame(p, w, s->frame);
        pthread_mutex_lock(&p->mu);
        s->ret = ret;
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cm__mark_pool_new(cm_ctx *ctx, const char *path, int jobs, cm__video_hook hook,
                      void *opaque, cm__mark_pool **out)
{
    *out = NULL;
    if (jobs < 1)
        jobs = 1;
    cm__mark_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return cm__error(ctx, CM_E_NOMEM, "out of memory");
    p->ctx = ctx;
    p->path = path;
    p->hook = hook;
    p->opaque = opaque;
    /* one frame per worker, one being encoded, one being decoded */
    p->depth = jobs + 2;
    p->slots = calloc((size_t)p->depth, sizeof(*p->slots));
    p->workers = calloc((size_t)jobs, sizeof(*p->workers));
    if (!p->slots || !p->workers) {
        free(p->slots);
        free(p->workers);
        free(p);
        return cm__error(ctx, CM_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < jobs; i++) {
        p->workers[i].pool = p;
        if (pthread_create(&p->workers[i].thread, NULL, work, &p->workers[i]))
            break;
        p->nworkers++;
    }
    if (!p->nworkers) {
        cm__mark_pool_free(&p);
        return cm__error(ctx, CM_E_NOMEM, "video: cannot start a marking thread");
    }
    *out = p;
    return CM_OK;
}

int cm__mark_pool_full(const cm__mark_pool *p)
{
    return p->tail - p->head >= p->depth;
}

int cm__mark_pool_empty(const cm__mark_pool *p)
{
    return p->tail == p->head;
}

void cm__mark_pool_submit(cm__mark_pool *p, AVFrame *f, int held)
{
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->tail++ % p->depth];
    s->frame = f;
    s->held = held;
    s->ret = CM_OK;
    s->state = held ? SLOT_DONE : SLOT_QUEUED;
    if (!held)
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int cm__mark_pool_take(cm__mark_pool *p, int wait, AVFrame **f, int *held)
{
    *f = NULL;
    if (p->head == p->tail)
        return CM_OK;
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->head % p->depth];
    while (wait && s->state != SLOT_DONE)
        pthread_cond_wait(&p->done, &p->mu);
    int ret = CM_OK;
    if (s->state == SLOT_DONE) {
        *f = s->frame;
        *held = s->held;
        ret = s->ret;
        s->frame = NULL;
        s->state = SLOT_FREE;
        p->head++;
    }
    pthread_mutex_unlock(&p->mu);
    if (ret)
        av_frame_free(f);
    return ret;
}

void cm__mark_pool_free(cm__mark_pool **pp)
{
    cm__mark_pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->depth; i++)
        av_frame_free(&p->slots[i].frame);
    for (int i = 0; i < p->nworkers; i++) {
        cm_plane_free(&p->workers[i].luma);
        cm_plane_free(&p->workers[i].lo);
        cm_plane_free(&p->workers[i].hi);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->slots);
    free(p->workers);
    free(p);
    *pp = NULL;
}
