/*
 * Image sequences: patterns, frame ranges, and the frames found on disk.
 *
 *   "IN.%04d.png"    printf-style: %d, %0Nd
 *   "frame.####.exr" a run of '#': one digit of zero padding each (Nuke's
 *                    and most pipelines' reading; note that oiiotool reads
 *                    a single '#' as four digits)
 *   ranges           oiiotool's: "1001-1100", "1-100x5" (every 5th),
 *                    "1-100y5" (all but every 5th), "1,3,10-20"; given
 *                    apart or written just before the wildcard
 *                    ("in.1001-1100####.png")
 */
#include "celmark/sequence.h"

#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most frames one range may name: a day of 24 fps footage is 2 million;
 * this bounds memory for a typo like "1-99999999999". */
#define MAX_FRAMES (INT64_C(10) * 1000 * 1000)
#define MAX_PAD 12

/* Locate the wildcard: [*start, *end) in name, and its padding. */
static int find_wildcard(const char *name, size_t *start, size_t *end, int *pad)
{
    const char *p = strchr(name, '%');
    while (p) {
        const char *q = p + 1;
        int n = 0;
        if (*q == '0')
            q++;
        while (*q >= '0' && *q <= '9')
            n = n * 10 + (*q++ - '0');
        if (*q == 'd' && n <= MAX_PAD) {
            *start = (size_t)(p - name);
            *end = (size_t)(q + 1 - name);
            *pad = n ? n : 1;
            return 1;
        }
        p = strchr(p + 1, '%');
    }
    const char *h = strchr(name, '#');
    if (h) {
        size_t n = strspn(h, "#");
        if (n > MAX_PAD)
            return 0;
        *start = (size_t)(h - name);
        *end = *start + n;
        *pad = (int)n;
        return 1;
    }
    return 0;
}

int cm_sequence_is_pattern(const char *name)
{
    size_t a, b;
    int pad;
    return name && find_wildcard(name, &a, &b, &pad);
}

void cm_sequence_free(cm_sequence **ps)
{
    if (!ps || !*ps)
        return;
    free((*ps)->prefix);
    free((*ps)->suffix);
    free((*ps)->frames);
    free(*ps);
    *ps = NULL;
}

static int push_frame(cm_sequence *s, size_t *cap, int64_t f)
{
    if ((int64_t)s->nframes >= MAX_FRAMES)
        return CM_E_LIMIT;
    if (s->nframes == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        int64_t *p = realloc(s->frames, nc * sizeof(int64_t));
        if (!p)
            return CM_E_NOMEM;
        s->frames = p;
        *cap = nc;
    }
    s->frames[s->nframes++] = f;
    return CM_OK;
}

static int parse_num(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    *p = s;
    *out = v;
    return 0;
}

/* Parse an oiiotool range of len bytes into s->frames. */
static int parse_range(const char *r, size_t len, cm_sequence *s)
{
    size_t cap = 0;
    const char *p = r, *end = r + len;
    while (p < end) {
        int64_t a, b, step = 1;
        int skip = 0; /* 'y': all but every step-th */
        if (parse_num(&p, &a))
            return CM_E_INVAL;
        b = a;
        if (p < end && *p == '-') {
            p++;
            if (parse_num(&p, &b) || b < a)
                return CM_E_INVAL;
            if (p < end && (*p == 'x' || *p == 'y')) {
                skip = *p++ == 'y';
                if (parse_num(&p, &step) || step < 1)
                    return CM_E_INVAL;
            }
        }
        if (b - a >= MAX_FRAMES)
            return CM_E_LIMIT;
        for (int64_t f = a; f <= b; f++) {
            int on = ((f - a) % step) == 0;
            if (skip ? !on || step == 1 : on) {
                int ret = push_frame(s, &cap, f);
                if (ret)
                    return ret;
            }
        }
        if (p < end && *p++ != ',')
            return CM_E_INVAL;
    }
    return s->nframes ? CM_OK : CM_E_INVAL;
}

/* Split pattern into s->prefix / s->suffix / s->pad; an oiiotool range
 * written before the wildcard goes to *embedded (malloc'ed) if asked. */
static int split(const char *pattern, cm_sequence *s, char **embedded)
{
    size_t a, b;
    if (!find_wildcard(pattern, &a, &b, &s->pad))
        return CM_E_INVAL;
    size_t ra = a;
    if (embedded) {
        *embedded = NULL;
        while (ra > 0 && strchr("0123456789-,xy", pattern[ra - 1]))
            ra--;
        /* a range needs a '-' or ',' and must start with a digit after a
         * non-digit: "shot010.####" keeps its digits */
        while (ra < a && !(pattern[ra] >= '0' && pattern[ra] <= '9'))
            ra++;
        int has_sep = memchr(pattern + ra, '-', a - ra) || memchr(pattern + ra, ',', a - ra);
        if (ra < a && has_sep) {
            cm_sequence probe = {0};
            int ok = parse_range(pattern + ra, a - ra, &probe) == CM_OK;
            free(probe.frames);
            if (ok && !(*embedded = strndup(pattern + ra, a - ra)))
                return CM_E_NOMEM;
            if (!ok)
                ra = a;
        } else {
            ra = a;
        }
    }
    s->prefix = strndup(pattern, ra);
    s->suffix = strdup(pattern + b);
    return s->prefix && s->suffix ? CM_OK : CM_E_NOMEM;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Frames on disk matching prefix<digits>suffix. */
static int scan_disk(cm_ctx *ctx, const char *pattern, cm_sequence *s)
{
    const char *slash = strrchr(s->prefix, '/');
    char *dir = slash ? strndup(s->prefix, (size_t)(slash - s->prefix + 1)) : strdup(".");
    const char *base = slash ? slash + 1 : s->prefix;
    if (!dir)
        return CM_E_NOMEM;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        free(dir);
        return cm__error(ctx, CM_E_IO, "%s: cannot read the folder: %s", pattern, strerror(e));
    }
    size_t cap = 0, bl = strlen(base), sl = strlen(s->suffix);
    int ret = CM_OK;
    struct dirent *e;
    while (!ret && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        if (nl <= bl + sl || strncmp(n, base, bl) || strcmp(n + nl - sl, s->suffix))
            continue;
        const char *p = n + bl;
        size_t digits = nl - bl - sl;
        if (strspn(p, "0123456789") != digits || digits > 18)
            continue;
        if ((int)digits < s->pad || ((int)digits > s->pad && p[0] == '0'))
            continue; /* not this padding */
        int64_t f;
        if (parse_num(&p, &f) == 0)
            ret = push_frame(s, &cap, f);
    }
    closedir(d);
    free(dir);
    if (ret)
        return cm__error(ctx, ret, "%s: %s", pattern, cm_strerror(ret));
    if (!s->nframes)
        return cm__error(ctx, CM_E_IO, "%s: no frame of this sequence exists", pattern);
    qsort(s->frames, s->nframes, sizeof(int64_t), cmp_i64);
    for (size_t i = 1; i < s->nframes; i++)
        if (s->frames[i] != s->frames[i - 1] + 1)
            return cm__error(ctx, CM_E_IO,
                             "%s: frame %lld is missing (found %lld-%lld); give the frames to "
                             "take with --frames",
                             pattern, (long long)(s->frames[i - 1] + 1), (long long)s->frames[0],
                             (long long)s->frames[s->nframes - 1]);
    return CM_OK;
}

int cm_sequence_path(const cm_sequence *s, size_t i, char *buf, size_t size)
{
    if (!s || !buf || i >= s->nframes)
        return CM_E_INVAL;
    int n = snprintf(buf, size, "%s%0*lld%s", s->prefix, s->pad, (long long)s->frames[i],
                     s->suffix);
    return n >= 0 && (size_t)n < size ? CM_OK : CM_E_INVAL;
}

int cm_sequence_open(cm_ctx *ctx, const char *pattern, const char *range, cm_sequence **out)
{
    if (!pattern || !out)
        return cm__error(ctx, CM_E_INVAL, "sequence: missing pattern");
    *out = NULL;
    cm_sequence *s = calloc(1, sizeof(*s));
    char *embedded = NULL;
    if (!s)
        return cm__error(ctx, CM_E_NOMEM, "out of memory");
    int ret = split(pattern, s, &embedded);
    if (ret) {
        ret = cm__error(ctx, ret, "%s: %s", pattern,
                        ret == CM_E_INVAL ? "not a sequence pattern (%04d or ####)"
                                          : cm_strerror(ret));
        goto fail;
    }
    if (range && embedded) {
        ret = cm__error(ctx, CM_E_INVAL, "%s: has a frame range already; drop --frames", pattern);
        goto fail;
    }
    const char *r = range ? range : embedded;
    if (r) {
        if ((ret = parse_range(r, strlen(r), s))) {
            ret = cm__error(ctx, ret, "frame range '%s': %s", r,
                            ret == CM_E_INVAL ? "expected A, A-B, A-BxN or A-ByN, comma-separated"
                                              : "too many frames");
            goto fail;
        }
        char path[4096];
        for (size_t i = 0; i < s->nframes; i++) {
            if (cm_sequence_path(s, i, path, sizeof(path))) {
                ret = cm__error(ctx, CM_E_INVAL, "%s: path too long", pattern);
                goto fail;
            }
            FILE *f = fopen(path, "rb");
            if (!f) {
                ret = cm__error(ctx, CM_E_IO, "%s: frame %lld is missing: %s", path,
                                (long long)s->frames[i], strerror(errno));
                goto fail;
            }
            fclose(f);
        }
    } else if ((ret = scan_disk(ctx, pattern, s))) {
        goto fail;
    }
    free(embedded);
    *out = s;
    return CM_OK;
fail:
    free(embedded);
    cm_sequence_free(&s);
    return ret;
}

int cm_sequence_rename(cm_ctx *ctx, const cm_sequence *seq, const char *pattern,
                       cm_sequence **out)
{
    if (!seq || !pattern || !out)
        return cm__error(ctx, CM_E_INVAL, "sequence: missing argument");
    *out = NULL;
    cm_sequence *s = calloc(1, sizeof(*s));
    int ret = s ? split(pattern, s, NULL) : CM_E_NOMEM;
    if (!ret && !(s->frames = cm__malloc_array(seq->nframes, sizeof(int64_t))))
        ret = CM_E_NOMEM;
    if (ret) {
        cm_sequence_free(&s);
        return cm__error(ctx, ret, "%s: %s", pattern,
                         ret == CM_E_INVAL ? "the output must be a sequence pattern too "
                                             "(%04d or ####)"
                                           : cm_strerror(ret));
    }
    memcpy(s->frames, seq->frames, seq->nframes * sizeof(int64_t));
    s->nframes = seq->nframes;
    *out = s;
    return CM_OK;
}
