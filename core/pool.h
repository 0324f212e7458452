/*
 * Work done by several threads and handed back in the order it was
 * submitted (pool.c): video frames marked while the decoder and encoder
 * run, video frames whitened while the decoder runs. One thread submits
 * and takes (it reads the ring's ends without the lock); the workers are
 * the pool's. Library-internal.
 */
#ifndef CELMARK_POOL_H
#define CELMARK_POOL_H

#include "internal.h"

typedef struct cm__pool cm__pool;

/* The work on one item: CM_OK or a CM_E code. worker (0..jobs-1) names the
 * thread, for scratch memory of its own; calls for different items run at
 * once. */
typedef int (*cm__pool_fn)(void *opaque, int worker, void *item);

/* Start jobs workers (at least one) and a ring of jobs + spare items
 * (spare 2: the caller makes one and takes one while every worker has its
 * own; 0 where items are so big that memory matters more): CM_OK or
 * CM_E_NOMEM. *jobs is set to the workers started. */
CM__HIDDEN int cm__pool_new(int *jobs, int spare, cm__pool_fn fn, void *opaque,
                            cm__pool **out);
/* 1 when no item can be submitted before one is taken. */
CM__HIDDEN int cm__pool_full(const cm__pool *p);
/* Hand item over; the pool must not be full. skip: nothing to do for it,
 * it is taken back as it is, in its turn. */
CM__HIDDEN void cm__pool_submit(cm__pool *p, void *item, int skip);
/* The oldest item submitted into *item, with what fn returned for it (CM_OK
 * when skipped); *item NULL when none is pending or (wait 0) its work is
 * not done yet. */
CM__HIDDEN int cm__pool_take(cm__pool *p, int wait, void **item, int *skipped);
/* Stop the workers (waiting for the work under way); items still in the
 * ring are handed to drop (may be NULL). *p becomes NULL. */
CM__HIDDEN void cm__pool_free(cm__pool **p, void (*drop)(void *item));

#endif
