/*
 * Luma where it lies in a decoded frame (8-16 bit planar YUV or grey):
 * samples read as 8-bit code values of the nominal range (limited range
 * 16..235 scaled to 0..255, so "paper white" is white), and a changed
 * plane written back into the same samples, nothing else touched.
 */
#include "video_internal.h"

#include <math.h>
#include <string.h>

#include <libavutil/pixdesc.h>

cm__luma_fmt cm__luma_describe(const AVFrame *f)
{
    cm__luma_fmt lf = {0};
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (!d)
        return lf;
    lf.alpha = !!(d->flags & AV_PIX_FMT_FLAG_ALPHA);
    if (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM |
                    AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER | AV_PIX_FMT_FLAG_HWACCEL))
        return lf;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (d->flags & AV_PIX_FMT_FLAG_BE && d->comp[0].depth > 8)
        return lf; /* samples in the other byte order */
#else
    if (!(d->flags & AV_PIX_FMT_FLAG_BE) && d->comp[0].depth > 8)
        return lf;
#endif
    const AVComponentDescriptor *c = &d->comp[0];
    int bytes = c->depth > 8 ? 2 : 1;
    if (c->plane != 0 || c->offset != 0 || c->shift != 0 || c->step != bytes || c->depth < 8 ||
        c->depth > 16)
        return lf;
    /* luma alone in its plane: no other component shares plane 0 */
    for (int i = 1; i < d->nb_components; i++)
        if (d->comp[i].plane == 0)
            return lf;
    lf.native = 1;
    lf.bits = c->depth;
    lf.bytes = bytes;
    lf.limited = f->color_range != AVCOL_RANGE_JPEG && f->format != AV_PIX_FMT_YUVJ420P &&
                 f->format != AV_PIX_FMT_YUVJ422P && f->format != AV_PIX_FMT_YUVJ444P &&
                 f->format != AV_PIX_FMT_YUVJ440P && f->format != AV_PIX_FMT_YUVJ411P &&
                 !(d->nb_components <= 2); /* grey is full range unless tagged */
    if (d->nb_components <= 2 && f->color_range == AVCOL_RANGE_MPEG)
        lf.limited = 1;
    return lf;
}

cm__luma_map cm__luma_map_make(const cm__luma_fmt *lf)
{
    cm__luma_map m;
    m.vmax = (float)((1 << lf->bits) - 1);
    if (lf->limited) {
        float s = (float)(1 << (lf->bits - 8));
        m.a = 255.0f / (219.0f * s);
        m.b = -16.0f * 255.0f / 219.0f;
    } else {
        m.a = 255.0f / m.vmax;
        m.b = 0;
    }
    return m;
}

void cm__luma_read(const AVFrame *f, const cm__luma_fmt *lf, const cm__luma_map *m, cm_plane *p)
{
    for (int y = 0; y < p->height; y++) {
        const uint8_t *src = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        float *d = p->data + y * p->stride;
        if (lf->bytes == 1)
            for (int x = 0; x < p->width; x++)
                d[x] = m->a * src[x] + m->b;
        else
            for (int x = 0; x < p->width; x++) {
                uint16_t v;
                memcpy(&v, src + 2 * x, 2);
                d[x] = m->a * v + m->b;
            }
    }
}

void cm__luma_headroom_row(const float *l, float *lo, float *hi, int w)
{
    for (int x = 0; x < w; x++) {
        lo[x] = l[x] > 0 ? l[x] : 0;
        hi[x] = l[x] < 255 ? 255 - l[x] : 0;
    }
}

int cm__luma_chroma(const AVFrame *f, const cm__luma_fmt *lf, cm__yuv_chroma *c)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (!d || d->nb_components < 3 || d->comp[1].plane != 1 || d->comp[2].plane != 2 ||
        d->comp[1].depth != lf->bits || d->comp[2].depth != lf->bits ||
        d->comp[1].step != lf->bytes || f->linesize[1] != f->linesize[2])
        return 0;
    memset(c, 0, sizeof(*c));
    c->cb = f->data[1];
    c->cr = f->data[2];
    c->stride = f->linesize[1];
    c->bytes = lf->bytes;
    c->bits = lf->bits;
    c->sx = d->log2_chroma_w;
    c->sy = d->log2_chroma_h;
    c->limited = lf->limited;
    /* the matrix's luma weights; untagged: BT.709 from 720 lines up */
    switch (f->colorspace) {
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
        c->kr = 0.299f, c->kb = 0.114f;
        break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        c->kr = 0.2627f, c->kb = 0.0593f;
        break;
    case AVCOL_SPC_BT709:
        c->kr = 0.2126f, c->kb = 0.0722f;
        break;
    default:
        if (f->height >= 720)
            c->kr = 0.2126f, c->kb = 0.0722f;
        else
            c->kr = 0.299f, c->kb = 0.114f;
        break;
    }
    return 1;
}

/* v' = clamp(round(v + (marked - L(v)) / a)): the original L is recomputed
 * from the untouched sample exactly as cm__luma_read did, so an unchanged L
 * leaves v unchanged (v + 0.5 rounds back to v). Clamped before the
 * truncation, which is then the floor (a NaN becomes 0); no branch, so the
 * rows vectorise. */
CM__DSP_CLONES
static void write_row8(uint8_t *restrict dst, const float *restrict k, int w, float a, float b,
                       float inv, float vmax)
{
    for (int x = 0; x < w; x++) {
        float v = dst[x];
        float r = v + (k[x] - (a * v + b)) * inv + 0.5f;
        r = r > 0 ? r : 0;
        r = r < vmax ? r : vmax;
        dst[x] = (uint8_t)(int)r;
    }
}

static void write_row16(uint8_t *dst, const float *k, int w, float a, float b, float inv,
                        float vmax)
{
    for (int x = 0; x < w; x++) {
        uint16_t s;
        memcpy(&s, dst + 2 * x, 2);
        float v = s;
        float r = v + (k[x] - (a * v + b)) * inv + 0.5f;
        r = r > 0 ? r : 0;
        r = r < vmax ? r : vmax;
        s = (uint16_t)(int)r;
        memcpy(dst + 2 * x, &s, 2);
    }
}

void cm__luma_write(AVFrame *f, const cm__luma_fmt *lf, const cm__luma_map *m,
                    const cm_plane *marked)
{
    float inv = 1.0f / m->a;
    for (int y = 0; y < marked->height; y++) {
        uint8_t *dst = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        const float *k = marked->data + y * marked->stride;
        if (lf->bytes == 1)
            write_row8(dst, k, marked->width, m->a, m->b, inv, m->vmax);
        else
            write_row16(dst, k, marked->width, m->a, m->b, inv, m->vmax);
    }
}

