/*
 * An ordered worker pool (pool.h):
 *
 *   submit --> [ring of jobs + spare slots] --> take (in submission order)
 *                 |  ^
 *                 v  |  workers: fn(item), any order, several at once
 *
 * The ring holds one item per worker and (spare 2) one being taken
 * (encoded, summed) and one being made (decoded) by the caller, so all
 * three overlap while memory stays a few items.
 */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE } slot_state;

typedef struct slot {
    void *item;
    int skip, ret;
    slot_state state;
} slot;

typedef struct worker {
    cm__pool *pool;
    int index;
    pthread_t thread;
} worker;

struct cm__pool {
    cm__pool_fn fn;
    void *opaque;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a slot was queued, or stop */
    pthread_cond_t done; /* a slot's work is done */
    slot *slots;
    int depth;
    int64_t head, tail; /* next to take, next to submit (counts; slot = mod depth) */
    int64_t next_work;  /* the first slot a worker may find queued */
    int stop;
    worker *workers;
    int nworkers;
};

static void *work(void *arg)
{
    worker *w = arg;
    cm__pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->next_work < p->head)
            p->next_work = p->head;
        while (p->next_work < p->tail && p->slots[p->next_work % p->depth].state != SLOT_QUEUED)
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
        int ret = p->fn(p->opaque, w->index, s->item);
        pthread_mutex_lock(&p->mu);
        s->ret = ret;
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cm__pool_new(int *jobs, int spare, cm__pool_fn fn, void *opaque, cm__pool **out)
{
    *out = NULL;
    int n = *jobs < 1 ? 1 : *jobs;
    cm__pool *p = calloc(1, sizeof(*p));
    if (!p)
        return CM_E_NOMEM;
    p->fn = fn;
    p->opaque = opaque;
    p->depth = n + (spare > 0 ? spare : 0);
    p->slots = calloc((size_t)p->depth, sizeof(*p->slots));
    p->workers = calloc((size_t)n, sizeof(*p->workers));
    if (!p->slots || !p->workers) {
        free(p->slots);
        free(p->workers);
        free(p);
        return CM_E_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < n; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, work, &p->workers[i]))
            break;
        p->nworkers++;
    }
    if (!p->nworkers) {
        cm__pool_free(&p, NULL);
        return CM_E_NOMEM;
    }
    *jobs = p->nworkers;
    *out = p;
    return CM_OK;
}

int cm__pool_full(const cm__pool *p)
{
    return p->tail - p->head >= p->depth;
}

void cm__pool_submit(cm__pool *p, void *item, int skip)
{
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->tail++ % p->depth];
    s->item = item;
    s->skip = skip;
    s->ret = CM_OK;
    s->state = skip ? SLOT_DONE : SLOT_QUEUED;
    if (!skip)
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int cm__pool_take(cm__pool *p, int wait, void **item, int *skipped)
{
    *item = NULL;
    if (p->head == p->tail)
        return CM_OK;
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->head % p->depth];
    while (wait && s->state != SLOT_DONE)
        pthread_cond_wait(&p->done, &p->mu);
    int ret = CM_OK;
    if (s->state == SLOT_DONE) {
        *item = s->item;
        *skipped = s->skip;
        ret = s->ret;
        s->item = NULL;
        s->state = SLOT_FREE;
        p->head++;
    }
    pthread_mutex_unlock(&p->mu);
    return ret;
}

void cm__pool_free(cm__pool **pp, void (*drop)(void *item))
{
    cm__pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; drop && i < p->depth; i++)
        if (p->slots[i].item)
            drop(p->slots[i].item);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->slots);
    free(p->workers);
    free(p);
    *pp = NULL;
}
