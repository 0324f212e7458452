/*
 * What the TIFF reader and writer share besides the tags (declared, with
 * the method, in formats/tiff_common.h): libtiff handles over memory
 * buffers with their first error, and where a page's samples sit in its
 * strips or tiles.
 */
#include "tiff_common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- in-memory I/O for libtiff ---------------------------------------- */

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t n)
{
    memio *m = h;
    if (n < 0)
        return -1;
    size_t avail = m->pos < m->size ? m->size - m->pos : 0;
    size_t k = (size_t)n < avail ? (size_t)n : avail;
    if (k)
        memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t n)
{
    memio *m = h;
    if (!m->writable || n < 0 || (size_t)n > SIZE_MAX - m->pos)
        return -1;
    size_t end = m->pos + (size_t)n;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : (size_t)1 << 16;
        while (cap < end)
            cap = cap > SIZE_MAX / 2 ? end : cap * 2;
        uint8_t *d = realloc(m->data, cap);
        if (!d) {
            m->nomem = 1;
            return -1;
        }
        m->data = d;
        m->cap = cap;
    }
    if (m->pos > m->size) /* a seek past the end leaves a hole of zeros */
        memset(m->data + m->size, 0, m->pos - m->size);
    if (n)
        memcpy(m->data + m->pos, buf, (size_t)n);
    m->pos = end;
    if (end > m->size)
        m->size = end;
    return n;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence)
{
    memio *m = h;
    int64_t base = whence == SEEK_CUR ? (int64_t)m->pos
                   : whence == SEEK_END ? (int64_t)m->size : 0;
    int64_t to = base + (int64_t)off;
    if (to < 0 || (uint64_t)to > SIZE_MAX)
        return (toff_t)-1;
    m->pos = (size_t)to;
    return (toff_t)to;
}

static int mem_close(thandle_t h)
{
    (void)h; /* the buffers belong to the caller */
    return 0;
}

static toff_t mem_size(thandle_t h)
{
    return ((memio *)h)->size;
}

/* The source is mapped: libtiff decodes straight from the buffer. */
static int mem_map(thandle_t h, void **base, toff_t *size)
{
    memio *m = h;
    if (m->writable)
        return 0;
    *base = m->data;
    *size = m->size;
    return 1;
}

static void mem_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt,
                    va_list ap)
{
    tiff_log *l = user;
    char text[200];
    (void)tif;
    if (l->msg[0])
        return 1;
    vsnprintf(text, sizeof(text), fmt, ap);
    const char *t = text;
    size_t nl = l->name ? strlen(l->name) : 0;
    if (nl && !strncmp(t, l->name, nl) && t[nl] == ':')
        t += nl + 1 + (t[nl + 1] == ' ');
    snprintf(l->msg, sizeof(l->msg), "%s%s%s", module ? module : "",
             module ? ": " : "", t);
    for (char *p = l->msg; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module,
                      const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

TIFF *cm__tiff_open_mem(const char *name, const char *mode, memio *io, tiff_log *log,
                        tmsize_t max_alloc)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o)
        return NULL;
    log->name = name;
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, log);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, log);
    if (max_alloc > 0)
        TIFFOpenOptionsSetMaxSingleMemAlloc(o, max_alloc);
    TIFF *t = TIFFClientOpenExt(name, mode, io, mem_read, mem_write, mem_seek,
                                mem_close, mem_size, mem_map, mem_unmap, o);
    TIFFOpenOptionsFree(o);
    return t;
}

/* ---- pixel layout ----------------------------------------------------- */

int cm__tiff_layout_sizes(layout *L)
{
    size_t spb = L->separate ? 1 : (size_t)L->spp;
    if (!L->bw || !L->bh || cm__mul_size((size_t)L->bw, spb * (size_t)L->bytes, &L->row_bytes) ||
        cm__mul_size(L->row_bytes, (size_t)L->bh, &L->block_bytes) ||
        L->block_bytes > (size_t)INT64_MAX)
        return CM_E_LIMIT;
    return CM_OK;
}

uint32_t cm__tiff_blocks_across(const layout *L)
{
    return L->tiled ? (uint32_t)(((uint64_t)L->width + L->bw - 1) / L->bw) : 1;
}

uint32_t cm__tiff_blocks_down(const layout *L)
{
    return (uint32_t)(((uint64_t)L->height + L->bh - 1) / L->bh);
}

void cm__tiff_block_at(const layout *L, TIFF *tif, int plane, uint32_t bx, uint32_t by, block *b)
{
    b->plane = plane;
    b->x = bx * L->bw;
    b->y = by * L->bh;
    b->vw = L->width - b->x < L->bw ? L->width - b->x : L->bw;
    b->vh = L->height - b->y < L->bh ? L->height - b->y : L->bh;
    b->index = L->tiled ? TIFFComputeTile(tif, b->x, b->y, 0, (uint16_t)plane)
                        : TIFFComputeStrip(tif, b->y, (uint16_t)plane);
    b->bytes = L->tiled ? L->block_bytes : L->row_bytes * b->vh;
}
