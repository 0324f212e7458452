/* Unmarked inputs for false-positive measurements (see unmarked.h). */
#include "unmarked.h"

#include "cel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t next(um_source *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static double unit(um_source *s)
{
    return ((double)(next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(um_source *s)
{
    return sqrt(-2 * log(unit(s))) * cos(2 * M_PI * unit(s));
}

static float clamp255(double v)
{
    v = floor(v + 0.5);
    return (float)(v < 0 ? 0 : v > 255 ? 255 : v);
}

const char *um_kind_name(um_kind k)
{
    static const char *names[UM_KINDS] = {"cel", "crop", "rescale", "noise", "photo", "other-key"};
    return k >= 0 && k < UM_KINDS ? names[k] : "?";
}

static int cel_image(int w, int h, uint32_t seed, const cm_key *mark_with, uint64_t id,
                     cm_image **out)
{
    cel_params p;
    cel_params_default(&p);
    p.width = w;
    p.height = h;
    p.seed = seed;
    cm_stamper *st = NULL;
    int ret = cel_generate(out, &p);
    if (!ret && mark_with && !(ret = cm_stamper_new(NULL, mark_with, id, NULL, &st)))
        ret = cm_stamper_image(st, *out);
    cm_stamper_free(&st);
    if (ret)
        cm_image_free(out);
    return ret;
}

int um_generate_image(um_source *s, um_kind k, int i, int w, int h, cm_image **out)
{
    *out = NULL;
    if (k == UM_CEL)
        return cel_image(w, h, 1000 + (uint32_t)i, NULL, 0, out);
    if (k == UM_OTHER_KEY && s->other)
        return cel_image(w, h, 5000 + (uint32_t)i, s->other, next(s), out);
    return CM_E_INVAL;
}

static int cel_plane(int w, int h, uint32_t seed, const cm_key *mark_with, uint64_t id,
                     cm_plane *out)
{
    cm_image *img = NULL;
    int ret = cel_image(w, h, seed, mark_with, id, &img);
    if (!ret)
        ret = cm_image_to_plane(NULL, img, out);
    cm_image_free(&img);
    return ret;
}

int um_generate(um_source *s, um_kind k, int i, int w, int h, cm_plane *out)
{
    memset(out, 0, sizeof(*out));
    switch (k) {
    case UM_CEL:
        return cel_plane(w, h, 1000 + (uint32_t)i, NULL, 0, out);
    case UM_OTHER_KEY:
        if (!s->other)
            return CM_E_INVAL;
        return cel_plane(w, h, 5000 + (uint32_t)i, s->other, next(s), out);
    case UM_CROP: {
        if (!s->big || s->big->width < w || s->big->height < h)
            return CM_E_INVAL;
        int ret = cm_plane_alloc(out, w, h);
        if (ret)
            return ret;
        int x0 = (int)(next(s) % (uint64_t)(s->big->width - w + 1));
        int y0 = (int)(next(s) % (uint64_t)(s->big->height - h + 1));
        for (int y = 0; y < h; y++)
            memcpy(out->data + y * out->stride, s->big->data + (y0 + y) * s->big->stride + x0,
                   sizeof(float) * (size_t)w);
        return CM_OK;
    }
    case UM_RESCALE: { /* a frame at twice the size, 2x2 mean */
        cm_plane q = {0};
        int ret = cel_plane(2 * w, 2 * h, 3000 + (uint32_t)i, NULL, 0, &q);
        if (!ret)
            ret = cm_plane_alloc(out, w, h);
        if (!ret)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const float *a = q.data + 2 * y * q.stride + 2 * x;
                    out->data[y * out->stride + x] =
                        clamp255((a[0] + a[1] + a[q.stride] + a[q.stride + 1]) / 4);
                }
        cm_plane_free(&q);
        return ret;
    }
    case UM_NOISE: { /* Gaussian noise around mid-grey, random strength */
        int ret = cm_plane_alloc(out, w, h);
        if (ret)
            return ret;
        double sd = 2 + 30 * unit(s);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                out->data[y * out->stride + x] = clamp255(128 + sd * gauss(s));
        return CM_OK;
    }
    case UM_PHOTO: { /* smooth random blobs, fine grain, a hard edge */
        int ret = cm_plane_alloc(out, w, h);
        if (ret)
            return ret;
        double cx[6], cy[6], amp[6], rad[6];
        for (int j = 0; j < 6; j++) {
            cx[j] = unit(s) * w;
            cy[j] = unit(s) * h;
            amp[j] = 60 * gauss(s);
            rad[j] = (0.06 + 0.3 * unit(s)) * (w < h ? w : h);
        }
        double edge = unit(s) * w, grain = 1 + 4 * unit(s);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = 120 + (x > edge + 0.3 * y ? 40 : 0);
                for (int j = 0; j < 6; j++)
                    v += amp[j] * exp(-((x - cx[j]) * (x - cx[j]) + (y - cy[j]) * (y - cy[j])) /
                                      (2 * rad[j] * rad[j]));
                out->data[y * out->stride + x] = clamp255(v + grain * gauss(s));
            }
        return CM_OK;
    }
    default:
        return CM_E_INVAL;
    }
}
