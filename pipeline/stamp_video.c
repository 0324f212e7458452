/*
 * Stamping a video: the transcoder of formats/ (video_write.c) with the
 * stamper as its frame hook. Each frame's luma gets the colour budget from
 * its own chroma (no pixel's colour moves further than the profile's
 * CIEDE2000 allows; grey frames by luma alone) and then the mark, a row at
 * a time: the budget of a row is made as the stamper reaches it, so no
 * budget planes are held.
 */
#include "celmark/stamp.h"
#include "celmark/video.h"

#include "formats/video.h"
#include "stamp_video.h"
#include "verify_video.h"
#include "watermark/embed.h"

#include <stdio.h>
#include <string.h>

void cm_video_stamp_params_default(cm_video_stamp_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->crf = -1;
    p->qscale = -1;
    cm_limits_default(&p->limits);
}

void cm__frame_room_row(void *opaque, int y, const float *luma, float *lo, float *hi)
{
    cm__frame_room *r = opaque;
    cm__luma_headroom_row(luma, lo, hi, r->width);
    if (r->yuv)
        cm__yuv_room_row(r->yuv, y, luma, lo, hi);
    else
        cm__grey_room_row(r->room, luma, lo, hi, r->width);
}

static int stamp_luma(void *opaque, cm__video_luma *f)
{
    cm_stamper *st = opaque;
    cm__frame_room r = {cm__stamper_room(st), NULL, f->luma->width};
    if (!r.room)
        return CM_E_NOMEM;
    if (f->chroma &&
        !(r.yuv = cm__yuv_room_rows_new(r.room, f->chroma, f->luma->width, f->luma->height)))
        return cm__error(cm__stamper_ctx(st), CM_E_NOMEM, "stamp: out of memory");
    int ret = cm__stamper_plane_rows(st, f->luma, cm__frame_room_row, &r);
    cm__yuv_room_rows_free(&r.yuv);
    return ret;
}

int cm_video_stamp(cm_ctx *ctx, cm_stamper *s, const char *in_path, const char *out_path,
                   const cm_video_stamp_params *p, int flags, cm_video_stamp_info *info)
{
    if (!s || !in_path || !out_path)
        return cm__error(ctx, CM_E_INVAL, "video stamp: missing stamper or path");
    cm_video_stamp_params def;
    if (!p) {
        cm_video_stamp_params_default(&def);
        p = &def;
    }
    int ret = cm__video_transcode(ctx, in_path, out_path, p, flags, info, stamp_luma, s);
    if (ret || !p->check || !info)
        return ret;
    /* the copy as an investigator reads it: its first window, on every
     * core, read only until the claim is decisive (triage: a claim found
     * there the full window would make too, so the warning is the same).
     * Advice, not the stamp's failure: a check that cannot run says so */
    cm_video_verify_params vp;
    cm_video_verify_params_default(&vp);
    vp.threads = p->jobs > 0 ? p->jobs : 0;
    vp.read_sec = vp.window_sec;
    vp.fast = 1;
    vp.limits = p->limits;
    cm_video_report rep;
    if (cm__video_verify_own(ctx, p->check, out_path, &vp, &rep) == CM_OK) {
        info->checked = 1;
        info->check_result = rep.whole;
        cm_video_report_clear(&rep);
    } else {
        snprintf(info->check_error, sizeof(info->check_error), "%s", cm_ctx_last_error(ctx));
        cm_ctx_clear(ctx);
    }
    return CM_OK;
}
