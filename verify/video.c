/*
 * Verifying a video: evidence per time window, per segment, per file.
 *
 *   frames   |f f f f f f|f f f f f f|f f f f f f|f f f f f f|
 *   windows  |  W0: A    |  W1: A    |  W2: B    |  W3: none |   each decided alone
 *   segments |  A (W0+W1)            |  B (W2+W3)            |   decided on joint evidence
 *   file     |  all of it                                    |
 *
 * Every frame's whitened residual goes into its window's evidence
 * (cm_evidence: the mark adds up over frames, changing content does not).
 * A window is decided alone when it closes; consecutive windows claiming
 * the same id form a segment, and a window that claims nothing does not end
 * a segment (a fade or a black card between shots of one recipient). A
 * window claiming another id starts a new segment: a cut mixing two
 * recipients' footage shows as two segments with their timecodes. Segments
 * and the whole file are decided again on their joint evidence, so a clip
 * too degraded for any 2 s window alone can still be attributed as a whole.
 *
 * Only one window's and one segment's evidence are held (plus the file's):
 * memory does not grow with the clip's length beyond the small per-window
 * results.
 */
#include "celmark/video.h"

#include "formats/video.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WINDOW_SEC 2.0 /* the issue's default: short enough to place a cut */

void cm_video_verify_params_default(cm_video_verify_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->window_sec = DEFAULT_WINDOW_SEC;
    p->threads = 1;
    cm_limits_default(&p->limits);
}

void cm_video_report_clear(cm_video_report *r)
{
    if (!r)
        return;
    free(r->windows);
    free(r->segments);
    memset(r, 0, sizeof(*r));
}

/* The id a result claims, or 0 with *none = 1. */
static uint64_t claim_of(const cm_verify_result *r, int *none)
{
    *none = !r->marked;
    return r->marked ? r->issue_id : 0;
}

typedef struct run {
    cm_evidence *ev;
    cm_video_segment seg; /* times, frames; result filled when closed */
    int open;
    int none;             /* claims nothing (so far) */
    uint64_t id;
} run;

static int push(cm_video_segment **arr, size_t *n, const cm_video_segment *s)
{
    cm_video_segment *p = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (!p)
        return CM_E_NOMEM;
    p[(*n)++] = *s;
    *arr = p;
    return CM_OK;
}

typedef struct vjob {
    cm_ctx *ctx;
    cm_verifier *v;
    cm__video_reader *rd;
    cm_video_report *rep;
    double fps;
    const char *tc0;
    cm_evidence *file;
    run win, seg;
} vjob;

static void set_times(vjob *j, cm_video_segment *s, double t_end, int64_t end_frame)
{
    s->end = t_end;
    s->frames = end_frame - s->first_frame;
    cm__timecode_add(j->tc0, s->first_frame, j->fps, s->start_tc, sizeof(s->start_tc));
    cm__timecode_add(j->tc0, end_frame, j->fps, s->end_tc, sizeof(s->end_tc));
}

/* Close the current segment: decide on its joint evidence. */
static int close_segment(vjob *j)
{
    if (!j->seg.open)
        return CM_OK;
    int ret = cm_verifier_evidence(j->v, j->seg.ev, &j->seg.seg.result);
    if (!ret)
        ret = push(&j->rep->segments, &j->rep->nsegments, &j->seg.seg);
    cm_evidence_reset(j->seg.ev);
    j->seg.open = 0;
    return ret;
}

/* Close the current window (ending at t_end before frame end_frame). */
static int close_window(vjob *j, double t_end, int64_t end_frame)
{
    if (!j->win.open)
        return CM_OK;
    cm_video_segment *w = &j->win.seg;
    set_times(j, w, t_end, end_frame);
    int ret = cm_verifier_evidence(j->v, j->win.ev, &w->result);
    if (!ret)
        ret = push(&j->rep->windows, &j->rep->nwindows, w);
    if (ret)
        return ret;
    int none;
    uint64_t id = claim_of(&w->result, &none);
    /* a new segment when this window claims another id, or claims one
     * after a run that claimed nothing */
    if (j->seg.open && !none && (j->seg.none || j->seg.id != id))
        if ((ret = close_segment(j)))
            return ret;
    if (!j->seg.open) {
        j->seg.open = 1;
        j->seg.seg = *w;
        j->seg.none = none;
        j->seg.id = id;
    }
    set_times(j, &j->seg.seg, t_end, end_frame);
    if (!ret)
        ret = cm_evidence_merge(j->seg.ev, j->win.ev);
    if (!ret)
        ret = cm_evidence_merge(j->file, j->win.ev);
    cm_evidence_reset(j->win.ev);
    j->win.open = 0;
    return ret;
}

int cm_video_verify(cm_ctx *ctx, cm_verifier *v, const char *path,
                    const cm_video_verify_params *p, cm_video_report *out)
{
    if (!v || !path || !out)
        return cm__error(ctx, CM_E_INVAL, "video verify: missing verifier, path or report");
    memset(out, 0, sizeof(*out));
    cm_video_verify_params def;
    if (!p) {
        cm_video_verify_params_default(&def);
        p = &def;
    }
    if (!(p->window_sec > 0))
        return cm__error(ctx, CM_E_INVAL, "video verify: window of %g s", p->window_sec);
    vjob j;
    memset(&j, 0, sizeof(j));
    j.ctx = ctx;
    j.v = v;
    j.rep = out;
    int ret = cm__video_open(ctx, path, &p->limits, p->threads, &j.rd);
    if (ret)
        return ret;
    if (cm_evidence_new(&j.file) || cm_evidence_new(&j.win.ev) || cm_evidence_new(&j.seg.ev)) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    j.fps = cm__video_fps(j.rd);
    j.tc0 = cm__video_timecode(j.rd);
    int64_t total = cm__video_frames_hint(j.rd), n = 0, win_index = -1;
    double t_last = 0;
    for (;;) {
        const cm_plane *luma;
        double t;
        int got = cm__video_next(j.rd, &luma, &t);
        if (got < 0) {
            ret = got;
            goto done;
        }
        if (!got)
            break;
        if (t < 0) /* no timestamp: count frames */
            t = (double)n / j.fps;
        int64_t wi = (int64_t)floor(t / p->window_sec);
        if (wi != win_index) {
            if ((ret = close_window(&j, t, n)))
                goto done;
            win_index = wi;
            j.win.open = 1;
            memset(&j.win.seg, 0, sizeof(j.win.seg));
            j.win.seg.start = t;
            j.win.seg.first_frame = n;
        }
        if ((ret = cm_evidence_add(j.win.ev, luma, NULL))) {
            ret = cm__error(ctx, ret, "%s: frame %lld: %s", path, (long long)n,
                            ret == CM_E_INVAL ? "frame size changed mid-stream"
                                              : cm_strerror(ret));
            goto done;
        }
        if (!out->width) {
            out->width = luma->width;
            out->height = luma->height;
        }
        n++;
        t_last = t;
        if (p->progress)
            p->progress(p->progress_opaque, n, total);
    }
    if (n == 0) {
        ret = cm__error(ctx, CM_E_CORRUPT, "%s: no video frame could be decoded", path);
        goto done;
    }
    double t_end = t_last + 1.0 / j.fps;
    if ((ret = close_window(&j, t_end, n)) || (ret = close_segment(&j)))
        goto done;
    if ((ret = cm_verifier_evidence(v, j.file, &out->whole)))
        goto done;
    out->frames = n;
    out->duration = t_end;
    out->fps = j.fps;
done:
    if (ret)
        cm_video_report_clear(out);
    cm_evidence_free(&j.file);
    cm_evidence_free(&j.win.ev);
    cm_evidence_free(&j.seg.ev);
    cm__video_close(&j.rd);
    return ret;
}
