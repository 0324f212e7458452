/* Status messages, the error context and version. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cm_strerror(int status)
{
    switch (status) {
#define CM_X_CASE(name, value, msg)                                           \
    case value:                                                               \
        return msg;
        CM_STATUS_LIST(CM_X_CASE)
#undef CM_X_CASE
    }
    return "unknown status";
}

const char *cm_version(void)
{
    return CM_VERSION_STRING;
}

int cm_ctx_new(cm_ctx **out)
{
    if (!out)
        return CM_E_INVAL;
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return CM_E_NOMEM;
    pthread_mutex_init(&(*out)->mu, NULL);
    return CM_OK;
}

void cm_ctx_free(cm_ctx **ctx)
{
    if (!ctx || !*ctx)
        return;
    pthread_mutex_destroy(&(*ctx)->mu);
    free(*ctx);
    *ctx = NULL;
}

const char *cm_ctx_last_error(const cm_ctx *ctx)
{
    return ctx ? ctx->msg : "";
}

int cm_ctx_last_status(const cm_ctx *ctx)
{
    return ctx ? ctx->status : CM_OK;
}

void cm_ctx_clear(cm_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->status = CM_OK;
    ctx->msg[0] = '\0';
}

int cm_ctx_warning_count(const cm_ctx *ctx)
{
    return ctx ? ctx->nwarn : 0;
}

const char *cm_ctx_warning(const cm_ctx *ctx, int i)
{
    return ctx && i >= 0 && i < ctx->nwarn ? ctx->warn[i] : "";
}

void cm_ctx_clear_warnings(cm_ctx *ctx)
{
    if (ctx)
        ctx->nwarn = 0;
}

void cm__not_kept(cm_ctx *ctx, const char *what, const char *why_fmt, ...)
{
    if (!ctx)
        return;
    char line[sizeof(ctx->warn[0])];
    int n = snprintf(line, sizeof(line), "%s not kept: ", what);
    if (n > 0 && (size_t)n < sizeof(line)) {
        va_list ap;
        va_start(ap, why_fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, why_fmt, ap);
        va_end(ap);
    }
    for (char *p = line; *p; p++) /* one printable line */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    pthread_mutex_lock(&ctx->mu);
    int seen = 0;
    for (int i = 0; i < ctx->nwarn && !seen; i++)
        seen = !strcmp(ctx->warn[i], line);
    if (!seen && ctx->nwarn < CM_CTX_MAX_WARNINGS)
        memcpy(ctx->warn[ctx->nwarn++], line, sizeof(line));
    pthread_mutex_unlock(&ctx->mu);
}

int cm__error(cm_ctx *ctx, int status, const char *fmt, ...)
{
    if (ctx) {
        /* workers (video marking) may fail at once: one message whole */
        pthread_mutex_lock(&ctx->mu);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->msg, sizeof(ctx->msg), fmt, ap);
        va_end(ap);
        ctx->status = status;
        pthread_mutex_unlock(&ctx->mu);
    }
    return status;
}

void *cm__malloc_array(size_t count, size_t size)
{
    size_t n;
    if (cm__mul_size(count, size, &n) || n == 0)
        return NULL;
    return malloc(n);
}

void *cm__calloc_array(size_t count, size_t size)
{
    if (count == 0 || size == 0)
        return NULL;
    return calloc(count, size);
}

int cm__dsp_reference(void)
{
    static int cached = -1; /* benign race: every thread computes the same */
    if (cached < 0) {
        const char *v = getenv("CELMARK_DSP");
        cached = v && strcmp(v, "c") == 0;
    }
    return cached;
}
