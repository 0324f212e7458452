/* Library-internal helpers shared by every module. Not installed. */
#ifndef CELMARK_INTERNAL_H
#define CELMARK_INTERNAL_H

#include "celmark/common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#define CM__HIDDEN __attribute__((visibility("hidden")))

/* The per-pixel DSP loops are built twice on x86-64, for AVX2 and for the
 * baseline (SSE2), and the loader picks one by CPU (GCC's target_clones, an
 * ifunc). The vectoriser then works on 8 floats / 32 bytes at a time and
 * has blends and byte-to-float conversions; the reference kernels
 * (CELMARK_DSP=c) stay baseline. Elsewhere it is a plain function. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(CELMARK_NO_CLONES)
#define CM__DSP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CM__DSP_CLONES
#endif

struct cm_ctx {
    pthread_mutex_t mu; /* messages and warnings written from several threads */
    int status;
    char msg[1024];
    int nwarn;
    char warn[CM_CTX_MAX_WARNINGS][256];
};

/* Record a "not kept" warning in ctx (may be NULL): "<what> not kept: <why>"
 * (see cm_ctx_warning_count). */
CM__HIDDEN void cm__not_kept(cm_ctx *ctx, const char *what, const char *why_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record an error in ctx (may be NULL) and return status, for
 * `return cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path, strerror(errno));` */
CM__HIDDEN int cm__error(cm_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Multiply sizes, failing on overflow: 0 on success. */
static inline int cm__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

/* Allocation that checks count*size for overflow; NULL on failure. */
CM__HIDDEN void *cm__malloc_array(size_t count, size_t size);
CM__HIDDEN void *cm__calloc_array(size_t count, size_t size);

/*
 * Atomic output (core/fileio.c). Data is written to a temporary file in the
 * destination folder (".NAME.tmp-XXXXXX"), then flushed, fsync'ed and moved
 * into place: with force by rename(), without force by link() so that an
 * existing file is never replaced (EEXIST -> CM_E_EXISTS). A failure or a
 * crash never leaves a half-written output behind.
 *
 *   cm__atomic a;
 *   if ((ret = cm__atomic_open(ctx, path, force, &a)) < 0) return ret;
 *   ... write to a.fp ...; on error: cm__atomic_abort(&a);
 *   ret = cm__atomic_commit(ctx, &a);   (always releases a)
 */
typedef struct cm__atomic {
    FILE *fp;   /* write here */
    char *path; /* final path */
    char *tmp;  /* temporary file, same folder */
    char *dir;  /* folder to fsync after the move */
    int force;
} cm__atomic;

CM__HIDDEN int cm__atomic_open(cm_ctx *ctx, const char *path, int force,
                               cm__atomic *a);
CM__HIDDEN int cm__atomic_commit(cm_ctx *ctx, cm__atomic *a);
/* Close and delete the temporary file; accepts a released or zeroed a. */
CM__HIDDEN void cm__atomic_abort(cm__atomic *a);

/* Read fp from its current position to the end into a malloc'ed buffer
 * (*out, free it; *len bytes). Formats that carry the source file's bytes to
 * the writer (TIFF, DPX) use it. Refuses with CM_E_LIMIT once more than
 * max_bytes would be read (regular files are checked against their size
 * before anything is allocated); CM_E_IO on a read error, CM_E_NOMEM. path is
 * for messages. */
CM__HIDDEN int cm__read_all(cm_ctx *ctx, const char *path, FILE *fp,
                            uint64_t max_bytes, uint8_t **out, size_t *len);

/* 1 when CELMARK_DSP=c asks for the plain reference DSP kernels everywhere
 * (read once). Optimised kernels are checked against them in tests/dsp. */
CM__HIDDEN int cm__dsp_reference(void);

#endif
