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
#include "celmark/sequence.h"
#include "celmark/video.h"

#include "formats/video.h"
#include "internal.h"
#include "pool.h"
#include "verify_video.h"
#include "verify/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_WINDOW_SEC 2.0
#define MAX_JOBS 64 /* frames whitened at once, at most */ /* the issue's default: short enough to place a cut */

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
    cm_plane_free(&r->thumb);
    memset(r, 0, sizeof(*r));
}

/* The id a result claims, or 0 with *none = 1. */
static uint64_t claim_of(const cm_verify_result *r, int *none)
{
    *none = !r->marked;
    return r->marked ? r->issue_id : 0;
}

typedef struct seg_run {
    cm_evidence *ev;
    cm_video_segment seg; /* times, frames; result filled when closed */
    int open;
    int none;             /* claims nothing (so far) */
    uint64_t id;
    int windows;          /* merged into ev */
} seg_run;

/* Append s to *arr (*n entries): the room doubles at each power of two, so
 * an hour of 2 s windows is not copied over and over (a segment carries
 * its claim map, some kilobytes). */
static int push(cm_video_segment **arr, size_t *n, const cm_video_segment *s)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, 8 ...: full */
        size_t cap = *n ? 2 * *n : 1;
        cm_video_segment *p = cm__malloc_array(cap, sizeof(**arr));
        if (!p)
            return CM_E_NOMEM;
        if (*n)
            memcpy(p, *arr, *n * sizeof(**arr));
        free(*arr);
        *arr = p;
    }
    (*arr)[(*n)++] = *s;
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
    seg_run win, seg;
    int64_t win_index; /* the open window's (time / window length), -1 = none */
    const char *name;  /* the source, for messages */
    const cm_video_verify_params *p;
    int64_t total;     /* frames expected (progress), -1 = unknown */
    int64_t read, added; /* frames read from the source; added to the evidence */
    double t_first;    /* the first frame's time */
    double t_last;     /* the last added frame's time */
    int stop;          /* triage: stopped reading */
    cm__pool *pool;    /* workers whitening frames (NULL: on this thread) */
} vjob;

static void set_times(vjob *j, cm_video_segment *s, double t_end, int64_t end_frame)
{
    s->end = t_end;
    s->frames = end_frame - s->first_frame;
    cm__timecode_add(j->tc0, s->first_frame, j->fps, s->start_tc, sizeof(s->start_tc));
    cm__timecode_add(j->tc0, end_frame, j->fps, s->end_tc, sizeof(s->end_tc));
}

/* Close the current segment: decide on its joint evidence (one window's
 * is that window's, decided already: seg.result is its result). */
static int close_segment(vjob *j)
{
    if (!j->seg.open)
        return CM_OK;
    int ret = j->seg.windows == 1 ? CM_OK
                                  : cm_verifier_evidence(j->v, j->seg.ev, &j->seg.seg.result);
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
        j->seg.windows = 0;
        j->seg.id = id;
    }
    set_times(j, &j->seg.seg, t_end, end_frame);
    if (!ret)
        ret = cm_evidence_merge(j->seg.ev, j->win.ev);
    j->seg.windows++;
    if (!ret)
        ret = cm_evidence_merge(j->file, j->win.ev);
    cm_evidence_reset(j->win.ev);
    j->win.open = 0;
    return ret;
}

/* luma box-averaged down to at most width columns (never enlarged). */
static int make_thumb(const cm_plane *l, int width, cm_plane *t)
{
    int k = (l->width + width - 1) / width; /* integer step: a box filter */
    if (k < 1)
        k = 1;
    int tw = l->width / k, th = l->height / k;
    if (tw < 1 || th < 1)
        return CM_OK;
    if (cm_plane_alloc(t, tw, th))
        return CM_E_NOMEM;
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            float s = 0;
            for (int j = 0; j < k; j++)
                for (int i = 0; i < k; i++)
                    s += l->data[(y * k + j) * l->stride + x * k + i];
            t->data[y * t->stride + x] = s / (float)(k * k);
        }
    return CM_OK;
}

/* The file's claim (see cm_video_report.claim). */
static void summarise(cm_video_report *r)
{
    int64_t best = 0;
    uint64_t top = 0;
    r->nids = 0;
    for (size_t i = 0; i < r->nsegments; i++) {
        const cm_verify_result *s = &r->segments[i].result;
        if (!s->marked)
            continue;
        int64_t frames = 0;
        int seen = 0;
        for (size_t k = 0; k < r->nsegments; k++) {
            const cm_verify_result *o = &r->segments[k].result;
            if (o->marked && o->issue_id == s->issue_id) {
                frames += r->segments[k].frames;
                seen |= k < i;
            }
        }
        r->nids += !seen;
        if (frames > best) {
            best = frames;
            top = s->issue_id;
        }
    }
    r->claim = r->whole;
    if (!r->nids || (r->whole.marked && r->whole.issue_id == top))
        return;
    int64_t longest = -1;
    for (size_t i = 0; i < r->nsegments; i++) {
        const cm_video_segment *sg = &r->segments[i];
        if (sg->result.marked && sg->result.issue_id == top && sg->frames > longest) {
            longest = sg->frames;
            r->claim = sg->result;
        }
    }
}

/* Triage: whether the evidence so far already makes a claim whose fpr is
 * at most max_fpr / 1000 (*stop), so that reading on could only confirm
 * it; quick: on the untouched geometry alone (cm__evidence_decide). */
static int decisive(vjob *j, const cm_evidence *ev, int quick, int *stop)
{
    cm_verify_result r;
    int ret = cm__evidence_decide(j->v, ev, quick, &r);
    *stop = !ret && r.marked && r.fpr <= cm_verifier_max_fpr(j->v) / 1000;
    return ret;
}

/* A source of frames: 1 and the next frame's planes (the source's, whose
 * buffers the caller may take, leaving planes of its own or zeroed ones;
 * chroma may be NULL) and time (seconds, < 0 when unknown), 0 at the end,
 * or a CM_E code. */
typedef int (*next_fn)(void *src, cm_plane **luma, cm_plane **chroma, double *t);

/* One frame on its way into the evidence: its planes (the source's, or
 * taken from it while workers whiten them), its time and its residual. */
typedef struct vframe {
    const cm_plane *luma, *chroma;
    cm_plane own_luma, own_chroma;
    double t;
    cm__residual fr;
} vframe;

/* The pool's work: one frame's residual. */
static int whiten_frame(void *opaque, int worker, void *item)
{
    (void)opaque;
    (void)worker;
    vframe *f = item;
    return cm__residual_make(&f->fr, f->luma, f->chroma);
}

/* The source's plane into a frame's own, and the frame's last one (whose
 * residual is made) to the source for its next frame: no copy. */
static void take_plane(cm_plane *own, cm_plane *src)
{
    cm_plane t = *own;
    *own = *src;
    *src = t;
}

/* The next frame (its residual made; made says how that went) into its
 * window's evidence, closing the window before when the frame starts a new
 * one; j->stop: triage found the claim decisive at that window's end. */
static int add_frame(vjob *j, const vframe *f, int made)
{
    const cm_video_verify_params *p = j->p;
    int ret = made;
    int64_t wi = (int64_t)floor(f->t / p->window_sec);
    if (!ret && wi != j->win_index) {
        int closed = j->win.open;
        if ((ret = close_window(j, f->t, j->added)))
            return ret;
        if (p->fast && closed && (ret = decisive(j, j->file, 0, &j->stop)))
            return ret;
        if (j->stop)
            return CM_OK; /* triage: the rest could only confirm the claim */
        j->win_index = wi;
        j->win.open = 1;
        memset(&j->win.seg, 0, sizeof(j->win.seg));
        j->win.seg.start = f->t;
        j->win.seg.first_frame = j->added;
    }
    if (!ret)
        ret = cm__evidence_add_residual(j->win.ev, &f->fr);
    if (ret)
        return cm__error(j->ctx, ret, "%s: frame %lld: %s", j->name, (long long)j->added,
                         ret == CM_E_INVAL ? "frame size changed" : cm_strerror(ret));
    j->t_last = f->t;
    j->added++;
    /* triage within the first window too (a short clip, stamp's check):
     * probed at its 1st and 2nd frame on the untouched geometry alone (a
     * copy as stamped: a few ms, where a frame without a mark would cost
     * the whole search), then at its 4th, 8th, 16th ... with the whole
     * search; the window then ends there */
    int64_t in_win = j->added - j->win.seg.first_frame;
    if (p->fast && j->rep->nwindows == 0 && !(in_win & (in_win - 1)) &&
        (ret = decisive(j, j->win.ev, in_win < 4, &j->stop)))
        return cm__error(j->ctx, ret, "%s: %s", j->name, cm_strerror(ret));
    if (p->progress)
        p->progress(p->progress_opaque, j->added, j->total);
    return CM_OK;
}

/* Add the frames the workers have whitened, oldest first; wait for the
 * oldest when the ring is full, or for all of them (all). */
static int add_whitened(vjob *j, int all)
{
    while (!j->stop && j->added < j->read) {
        void *item;
        int skipped;
        int made = cm__pool_take(j->pool, all || cm__pool_full(j->pool), &item, &skipped);
        if (!item)
            return CM_OK; /* not done yet */
        int ret = add_frame(j, item, made);
        if (ret)
            return ret;
    }
    return CM_OK;
}

/* Frames p->threads may whiten at once: 1 (on the caller's thread), or
 * one per core for 0. */
static int whiten_jobs(const cm_video_verify_params *p)
{
    if (p->threads > 0)
        return p->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MAX_JOBS ? MAX_JOBS : (int)n);
}

/* Gather evidence from every frame of src into out (see the file comment).
 * With more than one job, frames are whitened by workers while the next
 * are decoded, and summed in the order they came: the same sums, bit for
 * bit, as one job gives. */
static int run(cm_ctx *ctx, cm_verifier *v, const char *name, next_fn next, void *src,
               double fps, const char *tc0, int64_t total, const cm_video_verify_params *p,
               cm_video_report *out)
{
    if (!(p->window_sec > 0))
        return cm__error(ctx, CM_E_INVAL, "video verify: window of %g s", p->window_sec);
    vjob j;
    memset(&j, 0, sizeof(j));
    j.ctx = ctx;
    j.v = v;
    j.rep = out;
    j.fps = fps;
    j.tc0 = tc0;
    j.name = name;
    j.p = p;
    j.total = total;
    j.win_index = -1;
    int jobs = whiten_jobs(p), depth = 1;
    vframe *frames = NULL;
    int ret = CM_OK;
    if (cm_evidence_new(&j.file) || cm_evidence_new(&j.win.ev) || cm_evidence_new(&j.seg.ev) ||
        (jobs > 1 && cm__pool_new(&jobs, 2, whiten_frame, NULL, &j.pool))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if (j.pool)
        depth = jobs + 2; /* the pool's ring */
    if (!(frames = calloc((size_t)depth, sizeof(*frames)))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", name);
        goto done;
    }
    while (!j.stop) {
        /* triage probes the first window at its 1st, 2nd, 4th ... frame:
         * there the frames read so far are waited for before the next is
         * decoded, so that a claim decisive on the first frame (a copy as
         * stamped) costs one frame, not a ring of them decoded and
         * whitened for nothing (at 4K, ~0.2 s of CPU of stamp's check) */
        int probe = p->fast && out->nwindows == 0 && !(j.read & (j.read - 1));
        if (j.pool && (ret = add_whitened(&j, probe)))
            goto done;
        if (j.stop)
            break;
        cm_plane *luma = NULL, *chroma = NULL;
        double t = -1;
        int got = next(src, &luma, &chroma, &t);
        if (got < 0) {
            ret = got;
            goto done;
        }
        if (!got)
            break;
        if (t < 0) /* no timestamp: count frames */
            t = (double)j.read / j.fps;
        if (!j.read)
            j.t_first = t;
        if (p->read_sec > 0 && t - j.t_first >= p->read_sec)
            break; /* only the first read_sec seconds asked for */
        if (!out->width) {
            out->width = luma->width;
            out->height = luma->height;
            if (p->thumb_width > 0 && (ret = make_thumb(luma, p->thumb_width, &out->thumb)))
                goto done;
        }
        vframe *f = &frames[j.read++ % depth];
        f->t = t;
        if (!j.pool) { /* on this thread */
            f->luma = luma;
            f->chroma = chroma;
            if ((ret = add_frame(&j, f, whiten_frame(NULL, 0, f))))
                goto done;
            continue;
        }
        /* the source reuses its planes: the workers take them */
        take_plane(&f->own_luma, luma);
        if (chroma)
            take_plane(&f->own_chroma, chroma);
        f->luma = &f->own_luma;
        f->chroma = chroma ? &f->own_chroma : NULL;
        cm__pool_submit(j.pool, f, 0);
    }
    if (j.pool && (ret = add_whitened(&j, 1)))
        goto done;
    out->stopped_early = j.stop;
    int64_t n = j.added;
    if (n == 0) {
        ret = cm__error(ctx, CM_E_CORRUPT, "%s: no frame could be decoded", name);
        goto done;
    }
    double t_end = j.t_last + 1.0 / j.fps;
    if ((ret = close_window(&j, t_end, n)) || (ret = close_segment(&j)))
        goto done;
    /* one segment's evidence is the whole file's (the same sums, in the
     * same order): its result, decided already */
    if (out->nsegments == 1)
        out->whole = out->segments[0].result;
    else if ((ret = cm_verifier_evidence(v, j.file, &out->whole)))
        goto done;
    summarise(out);
    out->frames = n;
    out->duration = t_end;
    out->fps = j.fps;
done:
    cm__pool_free(&j.pool, NULL); /* before the frames it works on */
    for (int k = 0; frames && k < depth; k++) {
        cm_plane_free(&frames[k].own_luma);
        cm_plane_free(&frames[k].own_chroma);
        cm__residual_free(&frames[k].fr);
    }
    free(frames);
    if (ret)
        cm_video_report_clear(out);
    cm_evidence_free(&j.file);
    cm_evidence_free(&j.win.ev);
    cm_evidence_free(&j.seg.ev);
    return ret;
}

static int video_next(void *src, cm_plane **luma, cm_plane **chroma, double *t)
{
    *chroma = NULL; /* luma only: the video stamper marks luma only */
    return cm__video_next(src, luma, t);
}

static int verify_file(cm_ctx *ctx, cm_verifier *v, const char *path,
                       const cm_video_verify_params *p, int flags, cm_video_report *out)
{
    if (!v || !path || !out)
        return cm__error(ctx, CM_E_INVAL, "video verify: missing verifier, path or report");
    memset(out, 0, sizeof(*out));
    cm_video_verify_params def;
    if (!p) {
        cm_video_verify_params_default(&def);
        p = &def;
    }
    cm__video_reader *rd = NULL;
    int ret = cm__video_open(ctx, path, &p->limits, p->threads, flags, &rd);
    if (ret)
        return ret;
    ret = run(ctx, v, path, video_next, rd, cm__video_fps(rd), cm__video_timecode(rd),
              cm__video_frames_hint(rd), p, out);
    cm__video_close(&rd);
    return ret;
}

int cm_video_verify(cm_ctx *ctx, cm_verifier *v, const char *path,
                    const cm_video_verify_params *p, cm_video_report *out)
{
    return verify_file(ctx, v, path, p, 0, out);
}

int cm__video_verify_own(cm_ctx *ctx, cm_verifier *v, const char *path,
                         const cm_video_verify_params *p, cm_video_report *out)
{
    return verify_file(ctx, v, path, p, CM__VIDEO_OWN, out);
}

/* Frames of a still sequence, read one at a time. */
typedef struct seq_src {
    cm_ctx *ctx;
    const cm_sequence *seq;
    const cm_limits *limits;
    size_t i;
    double fps;
    cm_plane luma, chroma;
} seq_src;

static int seq_next(void *opaque, cm_plane **luma, cm_plane **chroma, double *t)
{
    seq_src *s = opaque;
    cm_plane_free(&s->luma);
    cm_plane_free(&s->chroma);
    if (s->i >= s->seq->nframes)
        return 0;
    char path[4096];
    if (cm_sequence_path(s->seq, s->i, path, sizeof(path)))
        return cm__error(s->ctx, CM_E_INVAL, "sequence: path too long");
    cm_image *img = NULL;
    int ret = cm_image_read(s->ctx, path, s->limits, &img);
    if (!ret)
        ret = cm_image_to_plane(s->ctx, img, &s->luma);
    int colour = !ret && cm_image_is_colour(img);
    if (colour)
        ret = cm_image_chroma(s->ctx, img, &s->chroma, NULL, NULL);
    cm_image_free(&img);
    if (ret)
        return ret;
    *luma = &s->luma;
    *chroma = colour ? &s->chroma : NULL;
    *t = (double)s->i / s->fps;
    s->i++;
    return 1;
}

int cm_sequence_verify(cm_ctx *ctx, cm_verifier *v, const cm_sequence *seq, double fps,
                       const cm_video_verify_params *p, cm_video_report *out)
{
    if (!v || !seq || !out || !(fps > 0))
        return cm__error(ctx, CM_E_INVAL, "sequence verify: missing argument or bad fps");
    memset(out, 0, sizeof(*out));
    cm_video_verify_params def;
    if (!p) {
        cm_video_verify_params_default(&def);
        p = &def;
    }
    seq_src src = {ctx, seq, &p->limits, 0, fps, {0}, {0}};
    char name[4096];
    if (cm_sequence_path(seq, 0, name, sizeof(name)))
        snprintf(name, sizeof(name), "sequence");
    int ret = run(ctx, v, name, seq_next, &src, fps, "", (int64_t)seq->nframes, p, out);
    cm_plane_free(&src.luma);
    cm_plane_free(&src.chroma);
    return ret;
}
