/*
 * mixes — several copies' marks in one frame (issue 16).
 *
 *   mixes [--frames N] [--only LIST] [--cases LIST] [--seed S]
 *
 * Corpus: the robustness corpus (bench_frame_params: N 1920x1080 RGB cel
 * frames, frame i has seed i and the styles in turn) under the bench key and
 * the default profile. Frame i gets MAX_COPIES copies, each stamped with its
 * own random id (cm_stamper_new + cm_stamper_image), and one list of
 * NCANDIDATES ids holding every copy's id at a random place among random
 * ids. A case that leaves a copy out of the frame keeps that copy's id in
 * the list as a decoy: claiming it is a wrong claim.
 *
 * Cases (--cases, a comma list; all by default):
 *
 *   avg2       the pixel mean (rounded) of copies 1 and 2: both ids claimed,
 *              with the candidates and blind (a verifier without any); the
 *              mean after jpeg75 and after scale50, with the candidates.
 *   avgk       the mean of copies 1..k, k = 3..8, with the candidates: the
 *              share of the k ids claimed (a curve), claimed ids not among
 *              the k; the blind verifier's share beside it for reference.
 *   composite  copy 2 pasted into copy 1: its right half, its bottom half, a
 *              W/2 x H/2 block at a random place. Verified with the
 *              candidates and params.map = 1 (the map also when only one id
 *              is claimed): both ids claimed, and of the map cells that got
 *              an owner, the share owned by the copy covering most of the
 *              cell (a cell split exactly in half counts either way).
 *   single     copy 1 alone through every attack of bench/attacks.h, with
 *              the candidates and blind: results with a second claim
 *              (nclaims > 1) and wrong claims.
 *
 * Over every case run: each claimed id (claims[]) outside the frame's true
 * set is a wrong claim and is listed; each result is checked against the
 * API's promises (marked, mixed and the top-level claim agree with
 * claims[], claims sorted by fpr and under max_fpr, distinct ids, a map
 * whenever several ids are claimed, owners in range) and a broken one is
 * listed as inconsistent.
 *
 * Output: one table per case on stdout with its targets and PASS/MISS; one
 * progress line per frame on stderr. Exit 0 unless something fails to run
 * (2: usage, 1: error). A quick subset: mixes --frames 4 --cases avg2
 */
#include "attacks.h"
#include "benchutil.h"
#include "cel.h"

#include "celmark/celmark.h"

#include <libavutil/log.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- corpus and decision ---------------------------------------------- */

#define FRAME_W BENCH_FRAME_W /* corpus frame size, pixels (benchutil.h) */
#define FRAME_H BENCH_FRAME_H
#define DEFAULT_FRAMES 20 /* the robustness corpus's size */
#define NCANDIDATES 1000  /* ids in each frame's candidate list */
#define MAX_FPR 1e-9      /* claim threshold, false-positive probability */
/* copies stamped per frame: the most ids one verify can claim */
#define MAX_COPIES CM_MAX_CLAIMS
#define AVGK_MIN 3              /* the avgk curve runs k = AVGK_MIN..MAX_COPIES */
#define DEFAULT_SEED 1u         /* --seed default */
#define ID_SALT 0x6d69786573ULL /* "mixes": ids other than robustness's */

/* ---- issue 16 targets --------------------------------------------------- */

#define TARGET_AVG2_CAND 100.0 /* % of frames with both ids claimed */
#define TARGET_AVG2_BLIND 95.0 /* % of frames, blind */
#define TARGET_AVGK3 90.0      /* % of the 3 ids claimed at k = 3 */
#define TARGET_COMPOSITE 100.0 /* % of frames with both ids claimed */
#define TARGET_MAP_RIGHT 90.0  /* % of owned cells owned by the majority copy */

/* ---- options ------------------------------------------------------------- */

enum { CASE_AVG2, CASE_AVGK, CASE_COMPOSITE, CASE_SINGLE, NCASES };
static const char *const case_names[NCASES] = {"avg2", "avgk", "composite", "single"};

typedef struct options {
    int frames;
    unsigned char *only; /* frames (1-based index) to run, or NULL for all */
    int cases[NCASES];   /* 1: run it */
    uint32_t seed;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mixes [--frames N] [--only LIST] [--cases LIST] [--seed S]\n"
            "  --frames N    corpus size (default %d)\n"
            "  --only LIST   comma list of frame numbers to run (1-based; ids, candidates\n"
            "                and positions stay as in the --frames N run)\n"
            "  --cases LIST  comma list of avg2,avgk,composite,single (default all)\n"
            "  --seed S      issue ids, candidates, positions, attack seeds (default %u)\n",
            DEFAULT_FRAMES, DEFAULT_SEED);
}

static int parse_cases(char *list, options *o)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int c = 0; c < NCASES; c++)
            if (strcmp(case_names[c], t) == 0)
                found = c;
        if (found < 0) {
            fprintf(stderr, "mixes: --cases: unknown case '%s'\n", t);
            return -1;
        }
        o->cases[found] = 1;
        n++;
    }
    return n ? 0 : -1;
}

static int parse_only(char *list, options *o)
{
    o->only = calloc((size_t)o->frames + 1, 1);
    if (!o->only)
        return -1;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        long f = strtol(t, &end, 10);
        if (*end || f < 1 || f > o->frames) {
            fprintf(stderr, "mixes: --only: '%s' is not a frame of 1..%d\n", t, o->frames);
            return -1;
        }
        o->only[f] = 1;
        n++;
    }
    return n ? 0 : -1;
}

static int parse_options(int argc, char **argv, options *o)
{
    char *onlylist = NULL, *caselist = NULL;
    o->frames = DEFAULT_FRAMES;
    o->seed = DEFAULT_SEED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mixes: unknown option or missing value: %s\n", a);
            return -1;
        }
        char *v = argv[++i], *end = NULL;
        if (strcmp(a, "--frames") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 100000) {
                fprintf(stderr, "mixes: --frames: '%s' is not a count\n", v);
                return -1;
            }
            o->frames = (int)n;
        } else if (strcmp(a, "--seed") == 0) {
            unsigned long s = strtoul(v, &end, 0);
            if (*end || end == v) {
                fprintf(stderr, "mixes: --seed: '%s' is not a number\n", v);
                return -1;
            }
            o->seed = (uint32_t)s;
        } else if (strcmp(a, "--only") == 0) {
            onlylist = v;
        } else if (strcmp(a, "--cases") == 0) {
            caselist = v;
        } else {
            fprintf(stderr, "mixes: unknown option %s\n", a);
            return -1;
        }
    }
    if (caselist) {
        if (parse_cases(caselist, o))
            return -1;
    } else {
        for (int c = 0; c < NCASES; c++)
            o->cases[c] = 1;
    }
    return onlylist ? parse_only(onlylist, o) : 0;
}

/* ---- one frame: its copies, ids and candidates ---------------------------- */

typedef struct rect {
    int x, y, w, h;
} rect;

typedef struct frame {
    int index; /* 1-based */
    cel_style style;
    cm_image *orig;
    int ncopies;              /* copies stamped (what the cases run need) */
    uint64_t ids[MAX_COPIES]; /* copy c carries ids[c]; all distinct */
    cm_image *copy[MAX_COPIES];
    uint64_t cands[NCANDIDATES]; /* every ids[c] once, at random places */
    rect quarter;                /* where copy 2's block goes in copy 1 */
    uint32_t attack_seed;        /* as robustness seeds frame i's attacks */
} frame;

static int in_set(uint64_t id, const uint64_t *set, int n)
{
    for (int i = 0; i < n; i++)
        if (set[i] == id)
            return 1;
    return 0;
}

/* Ids, candidates and the block's place: from (seed, index) only, so a
 * --only run gets those of the full run. */
static void frame_draw(frame *f, int index, uint32_t seed)
{
    uint64_t s = ((uint64_t)seed << 32 | (uint64_t)index) ^ ID_SALT;
    for (int c = 0; c < MAX_COPIES; c++) {
        uint64_t v;
        do
            v = bench_splitmix64(&s);
        while (in_set(v, f->ids, c));
        f->ids[c] = v;
    }
    for (int i = 0; i < NCANDIDATES; i++) {
        uint64_t v;
        if (i < MAX_COPIES)
            v = f->ids[i];
        else
            do
                v = bench_splitmix64(&s);
            while (in_set(v, f->ids, MAX_COPIES));
        f->cands[i] = v;
    }
    for (int i = NCANDIDATES - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(bench_splitmix64(&s) % (uint64_t)(i + 1));
        uint64_t t = f->cands[i];
        f->cands[i] = f->cands[j];
        f->cands[j] = t;
    }
    f->quarter.w = FRAME_W / 2;
    f->quarter.h = FRAME_H / 2;
    f->quarter.x = (int)(bench_splitmix64(&s) % (uint64_t)(FRAME_W - f->quarter.w + 1));
    f->quarter.y = (int)(bench_splitmix64(&s) % (uint64_t)(FRAME_H - f->quarter.h + 1));
    f->attack_seed = seed * 0x9e3779b9u ^ (uint32_t)index * 0x85ebca6bu;
}

static void frame_free(frame *f)
{
    cm_image_free(&f->orig);
    for (int c = 0; c < MAX_COPIES; c++)
        cm_image_free(&f->copy[c]);
}

/* The original and its first ncopies stamped copies. */
static int frame_make(cm_ctx *ctx, const cm_key *key, frame *f, int index, uint32_t seed,
                      int ncopies)
{
    cel_params p;
    bench_frame_params(&p, index);
    memset(f, 0, sizeof(*f));
    f->index = index;
    f->style = p.style;
    frame_draw(f, index, seed);
    int ret = cel_generate(&f->orig, &p);
    cm_stamp_params sp;
    cm_stamp_params_default(&sp); /* the default profile */
    for (int c = 0; c < ncopies && !ret; c++) {
        cm_stamper *st = NULL;
        ret = cm_image_copy_pixels(f->orig, &f->copy[c]);
        if (!ret)
            ret = cm_stamper_new(ctx, key, f->ids[c], &sp, &st);
        if (!ret)
            ret = cm_stamper_image(st, f->copy[c]);
        cm_stamper_free(&st);
        f->ncopies = c + 1;
    }
    return ret;
}

/* ---- mixing ------------------------------------------------------------- */

/* The rounded pixel mean of imgs[0..k-1] (8-bit RGB, one size). */
static int average(cm_image *const *imgs, int k, cm_image **out)
{
    int ret = cm_image_copy_pixels(imgs[0], out);
    if (ret)
        return ret;
    const cm_image *a = imgs[0];
    size_t rowbytes = (size_t)a->width * (size_t)a->channels;
    for (int y = 0; y < a->height; y++) {
        uint8_t *d = (*out)->data + (ptrdiff_t)y * (*out)->stride;
        for (size_t x = 0; x < rowbytes; x++) {
            unsigned sum = 0;
            for (int i = 0; i < k; i++)
                sum += imgs[i]->data[(ptrdiff_t)y * imgs[i]->stride + (ptrdiff_t)x];
            d[x] = (uint8_t)((sum + (unsigned)k / 2) / (unsigned)k);
        }
    }
    return CM_OK;
}

/* a with the pixels of b inside r. */
static int paste(const cm_image *a, const cm_image *b, rect r, cm_image **out)
{
    int ret = cm_image_copy_pixels(a, out);
    if (ret)
        return ret;
    size_t bpp = (size_t)a->channels;
    for (int y = r.y; y < r.y + r.h; y++)
        memcpy((*out)->data + (ptrdiff_t)y * (*out)->stride + (size_t)r.x * bpp,
               b->data + (ptrdiff_t)y * b->stride + (size_t)r.x * bpp, (size_t)r.w * bpp);
    return CM_OK;
}

/* ---- accumulators ------------------------------------------------------- */

/* One row of a table: results on frames with a known set of true ids. */
typedef struct row_stats {
    int runs, errors;         /* errors: the attack before the verify failed */
    int all, some, none;      /* results with all / some but not all / none of
                                 the true ids claimed */
    long ids, ids_claimed;    /* true ids offered, and claimed */
    int wrong;                /* claimed ids outside the true set */
    int decoys;               /* of those, ids of copies not in this frame */
    int second;               /* results with more claims than true ids (single) */
    long cells, owned, right; /* map cells, with an owner, owned by the
                                 copy covering most of the cell (composite) */
    double share_b;           /* composite: copy 2's reported share, summed */
    int share_n;
    double verify_ms;
    char *missed; /* frames (1-based) where not every true id was claimed */
    size_t missed_len, missed_cap;
} row_stats;

static void note_frame(char **list, size_t *len, size_t *cap, int frame)
{
    char buf[16];
    int n = snprintf(buf, sizeof buf, " %d", frame);
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        char *p = realloc(*list, c);
        if (!p)
            return; /* the list is diagnostics only */
        *list = p;
        *cap = c;
    }
    memcpy(*list + *len, buf, (size_t)n + 1);
    *len += (size_t)n;
}

/* A wrong claim or a result that breaks the API's promises. */
typedef struct problem {
    int frame;
    char where[40];   /* case and row */
    const char *what; /* NULL: a wrong claim; otherwise the broken promise */
    uint64_t id;
    cm_id_source source;
    double fpr, score;
    int decoy; /* the id is another copy's of this frame */
} problem;

typedef struct bench {
    cm_ctx *ctx;
    cm_key *key;
    options opt;
    cm_verifier *blind;             /* no candidates: the same for every frame */
    row_stats avg2[4];              /* cand, blind, jpeg75, scale50 */
    row_stats avgk[MAX_COPIES + 1]; /* [k], candidates */
    row_stats avgk_blind[MAX_COPIES + 1];
    row_stats comp[3];                /* halves left/right, top/bottom, quarter */
    row_stats *single, *single_blind; /* [attack] */
    problem *problems;
    int nproblems, capproblems;
    int nwrong, ninconsistent;
} bench;

static const char *const avg2_rows[4] = {"average, candidates", "average, blind",
                                         "+jpeg75, candidates", "+scale50, candidates"};
static const char *const comp_rows[3] = {"left|right halves", "top/bottom halves", "quarter block"};

static int add_problem(bench *b, problem p)
{
    if (b->nproblems == b->capproblems) {
        int c = b->capproblems ? 2 * b->capproblems : 16;
        problem *q = realloc(b->problems, sizeof(*q) * (size_t)c);
        if (!q)
            return CM_E_NOMEM;
        b->problems = q;
        b->capproblems = c;
    }
    b->problems[b->nproblems++] = p;
    return CM_OK;
}

/* The first promise of verify.h that r breaks, or NULL. */
static const char *broken_promise(const cm_verify_result *r)
{
    if (r->nclaims < 0 || r->nclaims > CM_MAX_CLAIMS)
        return "nclaims out of range";
    if (r->marked != (r->nclaims > 0))
        return "marked disagrees with nclaims";
    if (r->mixed != (r->nclaims > 1))
        return "mixed disagrees with nclaims";
    if (r->nclaims > 0 && (r->issue_id != r->claims[0].issue_id || r->fpr != r->claims[0].fpr ||
                           r->score != r->claims[0].score || r->source != r->claims[0].source))
        return "top-level claim is not claims[0]";
    for (int i = 0; i < r->nclaims; i++) {
        const cm_claim *c = &r->claims[i];
        if (c->source != CM_ID_BLIND && c->source != CM_ID_CANDIDATE)
            return "claim without a source";
        if (!(c->fpr <= MAX_FPR))
            return "claim above max_fpr";
        if (i > 0 && c->fpr < r->claims[i - 1].fpr)
            return "claims not sorted by fpr";
        if (!(c->share >= 0 && c->share <= 1))
            return "share outside 0..1";
        for (int j = 0; j < i; j++)
            if (r->claims[j].issue_id == c->issue_id)
                return "one id claimed twice";
    }
    const cm_claim_map *m = &r->map;
    if (r->nclaims > 1 && m->cols * m->rows == 0)
        return "several claims without a map";
    if (m->cols < 0 || m->rows < 0 || m->cols * m->rows > CM_MAP_MAX_CELLS)
        return "map size out of range";
    for (int c = 0; c < m->cols * m->rows; c++)
        if (m->owner[c] < -1 || m->owner[c] >= r->nclaims)
            return "map owner out of range";
    return NULL;
}

/*
 * Count r into s against the true ids truth[0..ntruth-1] of frame f; record
 * wrong claims and broken promises (where: the case and row). Returns the
 * number of true ids claimed, or CM_E_NOMEM.
 */
static int tally(bench *b, row_stats *s, const frame *f, const char *where,
                 const cm_verify_result *r, const uint64_t *truth, int ntruth)
{
    const char *broken = broken_promise(r);
    if (broken) {
        problem p = {f->index, "", broken, r->issue_id, r->source, r->fpr, r->score, 0};
        snprintf(p.where, sizeof p.where, "%s", where);
        if (add_problem(b, p))
            return CM_E_NOMEM;
        b->ninconsistent++;
    }
    int n = r->nclaims < 0 ? 0 : (r->nclaims > CM_MAX_CLAIMS ? CM_MAX_CLAIMS : r->nclaims);
    int got = 0;
    for (int i = 0; i < n; i++) {
        const cm_claim *c = &r->claims[i];
        if (in_set(c->issue_id, truth, ntruth)) {
            got++;
            continue;
        }
        int decoy = in_set(c->issue_id, f->ids, MAX_COPIES);
        problem p = {f->index, "", NULL, c->issue_id, c->source, c->fpr, c->score, decoy};
        snprintf(p.where, sizeof p.where, "%s", where);
        if (add_problem(b, p))
            return CM_E_NOMEM;
        s->wrong++;
        s->decoys += decoy;
        b->nwrong++;
    }
    s->runs++;
    s->ids += ntruth;
    s->ids_claimed += got;
    s->all += got == ntruth;
    s->some += got > 0 && got < ntruth;
    s->none += got == 0;
    s->second += n > ntruth;
    if (got < ntruth)
        note_frame(&s->missed, &s->missed_len, &s->missed_cap, f->index);
    return got;
}

/* Verify img with v, timed into s. */
static int verify(cm_verifier *v, const cm_image *img, row_stats *s, cm_verify_result *r)
{
    double t = bench_now_ms();
    int ret = cm_verifier_image(v, img, r);
    s->verify_ms += bench_now_ms() - t;
    return ret;
}

/* An attack that failed counts as a run that claimed nothing. */
static void attack_failed(row_stats *s, const frame *f, int ntruth)
{
    s->runs++;
    s->errors++;
    s->ids += ntruth;
    s->none++;
    note_frame(&s->missed, &s->missed_len, &s->missed_cap, f->index);
}

/* ---- the cases, one frame each --------------------------------------------- */

/* Case 1: the mean of copies 1 and 2, as is, blind, after jpeg75 and scale50.
 * *got[4]: true ids claimed per row, for the progress line. */
static int run_avg2(bench *b, const frame *f, cm_verifier *cand, int got[4])
{
    const atk_def *atk[4] = {NULL, NULL, atk_find("jpeg75"), atk_find("scale50")};
    const char *where[4] = {"avg2 cand", "avg2 blind", "avg2+jpeg75 cand", "avg2+scale50 cand"};
    cm_image *avg = NULL;
    int ret = average(f->copy, 2, &avg);
    for (int row = 0; row < 4 && !ret; row++) {
        row_stats *s = &b->avg2[row];
        cm_image *att = NULL;
        const cm_image *in = avg;
        got[row] = 0;
        if (atk[row]) {
            if (atk[row]->fn(avg, &att, f->attack_seed)) {
                attack_failed(s, f, 2);
                continue;
            }
            in = att;
        }
        cm_verify_result r;
        ret = verify(row == 1 ? b->blind : cand, in, s, &r);
        cm_image_free(&att);
        if (!ret) {
            int g = tally(b, s, f, where[row], &r, f->ids, 2);
            ret = g < 0 ? g : CM_OK;
            got[row] = g;
        }
    }
    cm_image_free(&avg);
    return ret;
}

/* Case 2: the mean of copies 1..k, k = AVGK_MIN..MAX_COPIES, with the
 * candidates and blind. got[k], got_blind[k]: true ids claimed. */
static int run_avgk(bench *b, const frame *f, cm_verifier *cand, int *got, int *got_blind)
{
    int ret = CM_OK;
    for (int k = AVGK_MIN; k <= MAX_COPIES && !ret; k++) {
        cm_image *avg = NULL;
        char where[40];
        if ((ret = average(f->copy, k, &avg)))
            break;
        cm_verify_result r;
        snprintf(where, sizeof where, "avgk k=%d cand", k);
        if (!(ret = verify(cand, avg, &b->avgk[k], &r)))
            ret = got[k] = tally(b, &b->avgk[k], f, where, &r, f->ids, k);
        snprintf(where, sizeof where, "avgk k=%d blind", k);
        if (ret >= 0 && !(ret = verify(b->blind, avg, &b->avgk_blind[k], &r)))
            ret = got_blind[k] = tally(b, &b->avgk_blind[k], f, where, &r, f->ids, k);
        ret = ret < 0 ? ret : CM_OK;
        cm_image_free(&avg);
    }
    return ret;
}

/* Pixels of [a0, a1) and [b0, b1) in common. */
static int overlap(int a0, int a1, int b0, int b1)
{
    int lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* The map of r on a composite where copy 2 (id_b) covers box and copy 1
 * (id_a) the rest: cells with an owner, and those owned by the copy covering
 * most of the cell. Cells are cut as the verifier cuts them (verifier.c
 * cells_map): cell c spans [(int)(cx * cell_w), (int)((cx + 1) * cell_w)),
 * clipped to the frame. */
static void map_tally(row_stats *s, const cm_verify_result *r, int fw, int fh, rect box,
                      uint64_t id_a, uint64_t id_b)
{
    const cm_claim_map *m = &r->map;
    for (int c = 0; c < m->cols * m->rows; c++) {
        int cx = c % m->cols, cy = c / m->cols;
        int x0 = (int)(cx * m->cell_w), y0 = (int)(cy * m->cell_h);
        int x1 = (int)((cx + 1) * m->cell_w), y1 = (int)((cy + 1) * m->cell_h);
        x1 = x1 < fw ? x1 : fw;
        y1 = y1 < fh ? y1 : fh;
        if (x1 <= x0 || y1 <= y0)
            continue;
        s->cells++;
        int o = m->owner[c];
        if (o < 0 || o >= r->nclaims)
            continue;
        s->owned++;
        double area = (double)(x1 - x0) * (y1 - y0);
        double in_b = (double)overlap(x0, x1, box.x, box.x + box.w) *
                      overlap(y0, y1, box.y, box.y + box.h) / area;
        uint64_t id = r->claims[o].issue_id;
        s->right += (id == id_b && in_b >= 0.5) || (id == id_a && in_b <= 0.5);
    }
    for (int i = 0; i < r->nclaims; i++)
        if (r->claims[i].issue_id == id_b) {
            s->share_b += r->claims[i].share;
            s->share_n++;
        }
}

/* Case 3: copy 2 pasted into copy 1 (right half, bottom half, the block at
 * f->quarter), verified with the candidates and the map. */
static int run_composite(bench *b, const frame *f, cm_verifier *cand_map, int got[3])
{
    const rect boxes[3] = {{FRAME_W / 2, 0, FRAME_W - FRAME_W / 2, FRAME_H},
                           {0, FRAME_H / 2, FRAME_W, FRAME_H - FRAME_H / 2},
                           f->quarter};
    const char *where[3] = {"composite left|right", "composite top/bottom", "composite quarter"};
    int ret = CM_OK;
    for (int l = 0; l < 3 && !ret; l++) {
        cm_image *mix = NULL;
        if ((ret = paste(f->copy[0], f->copy[1], boxes[l], &mix)))
            break;
        cm_verify_result r;
        row_stats *s = &b->comp[l];
        if (!(ret = verify(cand_map, mix, s, &r))) {
            int g = tally(b, s, f, where[l], &r, f->ids, 2);
            ret = g < 0 ? g : CM_OK;
            got[l] = g;
            map_tally(s, &r, mix->width, mix->height, boxes[l], f->ids[0], f->ids[1]);
        }
        cm_image_free(&mix);
    }
    return ret;
}

/* Case 4: copy 1 alone through every attack, with the candidates and
 * blind. *second, *wrong: results with a second claim, wrong ids. */
static int run_single(bench *b, const frame *f, cm_verifier *cand, int *second, int *wrong)
{
    int ret = CM_OK;
    for (int a = 0; a < atk_count() && !ret; a++) {
        cm_image *att = NULL;
        row_stats *sc = &b->single[a], *sb = &b->single_blind[a];
        if (atk_list[a].fn(f->copy[0], &att, f->attack_seed)) {
            attack_failed(sc, f, 1);
            attack_failed(sb, f, 1);
            continue;
        }
        row_stats *rows[2] = {sc, sb};
        cm_verifier *vs[2] = {cand, b->blind};
        for (int i = 0; i < 2 && !ret; i++) {
            char where[40];
            cm_verify_result r;
            int w0 = rows[i]->wrong;
            snprintf(where, sizeof where, "single %s %s", atk_list[a].name, i ? "blind" : "cand");
            if (!(ret = verify(vs[i], att, rows[i], &r))) {
                int g = tally(b, rows[i], f, where, &r, f->ids, 1);
                ret = g < 0 ? g : CM_OK;
                *second += r.nclaims > 1;
                *wrong += rows[i]->wrong - w0;
            }
        }
        cm_image_free(&att);
    }
    return ret;
}

/* ---- tables ---------------------------------------------------------------- */

static const char *pass(int ok)
{
    return ok ? "PASS" : "MISS";
}

static double pct(long n, long of)
{
    return of ? 100.0 * n / of : 0.0;
}

static void print_missed(const char *name, const row_stats *s)
{
    if (s->missed_len)
        printf("  missed %-22s frames:%s\n", name, s->missed);
}

static void print_avg2(const bench *b)
{
    printf("\n== case 1: the average of copies 1 and 2 (pixel mean, rounded) ==\n");
    printf("%-22s %6s %14s %5s %5s %5s %9s %12s %7s\n", "row", "frames", "both_claimed", "one",
           "none", "wrong", "verify_ms", "target", "verdict");
    for (int row = 0; row < 4; row++) {
        const row_stats *s = &b->avg2[row];
        double target = row == 1 ? TARGET_AVG2_BLIND : TARGET_AVG2_CAND;
        char both[32], tg[16];
        snprintf(both, sizeof both, "%d/%d %5.1f%%", s->all, s->runs, pct(s->all, s->runs));
        snprintf(tg, sizeof tg, "both %s%.0f%%", row == 1 ? ">=" : "", target);
        int ok = s->runs && pct(s->all, s->runs) >= target && s->wrong == 0 && !s->errors;
        printf("%-22s %6d %14s %5d %5d %5d %9.0f %12s %7s", avg2_rows[row], s->runs, both, s->some,
               s->none, s->wrong, s->runs ? s->verify_ms / s->runs : 0, tg, pass(ok));
        if (s->errors)
            printf("  (%d attack errors)", s->errors);
        printf("\n");
    }
    for (int row = 0; row < 4; row++)
        print_missed(avg2_rows[row], &b->avg2[row]);
}

static void print_avgk(const bench *b)
{
    printf("\n== case 2: the average of copies 1..k, with the candidates"
           " (the blind share for reference) ==\n");
    printf("%2s %6s %18s %10s %5s %6s %18s %9s %9s %7s\n", "k", "frames", "ids_claimed", "all_k",
           "wrong", "decoys", "blind_ids_claimed", "verify_ms", "target", "verdict");
    int wrong = 0;
    for (int k = AVGK_MIN; k <= MAX_COPIES; k++) {
        const row_stats *s = &b->avgk[k], *sb = &b->avgk_blind[k];
        char ids[32], all[16], bids[32], tg[16] = "-";
        const char *verdict = "-";
        snprintf(ids, sizeof ids, "%ld/%ld %5.1f%%", s->ids_claimed, s->ids,
                 pct(s->ids_claimed, s->ids));
        snprintf(all, sizeof all, "%d/%d", s->all, s->runs);
        snprintf(bids, sizeof bids, "%ld/%ld %5.1f%%", sb->ids_claimed, sb->ids,
                 pct(sb->ids_claimed, sb->ids));
        if (k == AVGK_MIN) {
            snprintf(tg, sizeof tg, ">=%.0f%%", TARGET_AVGK3);
            verdict = pass(s->runs && pct(s->ids_claimed, s->ids) >= TARGET_AVGK3);
        }
        printf("%2d %6d %18s %10s %5d %6d %18s %9.0f %9s %7s\n", k, s->runs, ids, all, s->wrong,
               s->decoys, bids, s->runs ? s->verify_ms / s->runs : 0, tg, verdict);
        wrong += s->wrong;
    }
    int wrong_blind = 0;
    for (int k = AVGK_MIN; k <= MAX_COPIES; k++)
        wrong_blind += b->avgk_blind[k].wrong;
    printf("avgk_wrong: %d claimed ids not among the k, with the candidates   target 0: %s\n",
           wrong, pass(wrong == 0));
    printf("avgk_wrong_blind: %d claimed ids not among the k, blind   target 0: %s\n", wrong_blind,
           pass(wrong_blind == 0));
    for (int k = AVGK_MIN; k <= MAX_COPIES; k++) {
        char name[32];
        snprintf(name, sizeof name, "k=%d", k);
        print_missed(name, &b->avgk[k]);
    }
}

static void print_composite(const bench *b, const frame *f1)
{
    printf("\n== case 3: copy 2 pasted into copy 1, with the candidates and the map ==\n");
    printf("%-18s %6s %14s %5s %5s %5s %17s %8s %13s %9s %14s %7s\n", "layout", "frames",
           "both_claimed", "one", "none", "wrong", "map_right", "unowned", "share_2", "verify_ms",
           "target", "verdict");
    const double area_b[3] = {(double)(FRAME_W - FRAME_W / 2) / FRAME_W,
                              (double)(FRAME_H - FRAME_H / 2) / FRAME_H,
                              (double)(FRAME_W / 2) * (FRAME_H / 2) / (FRAME_W * FRAME_H)};
    for (int l = 0; l < 3; l++) {
        const row_stats *s = &b->comp[l];
        char both[32], right[32], unowned[24], share[24], tg[20];
        snprintf(both, sizeof both, "%d/%d %5.1f%%", s->all, s->runs, pct(s->all, s->runs));
        snprintf(right, sizeof right, "%ld/%ld %5.1f%%", s->right, s->owned,
                 pct(s->right, s->owned));
        snprintf(unowned, sizeof unowned, "%ld/%ld", s->cells - s->owned, s->cells);
        snprintf(share, sizeof share, "%.3f (%.3f)", s->share_n ? s->share_b / s->share_n : 0,
                 area_b[l]);
        snprintf(tg, sizeof tg, "%.0f%% map>=%.0f%%", TARGET_COMPOSITE, TARGET_MAP_RIGHT);
        int ok = s->runs && pct(s->all, s->runs) >= TARGET_COMPOSITE && s->owned &&
                 pct(s->right, s->owned) >= TARGET_MAP_RIGHT && s->wrong == 0;
        printf("%-18s %6d %14s %5d %5d %5d %17s %8s %13s %9.0f %14s %7s\n", comp_rows[l], s->runs,
               both, s->some, s->none, s->wrong, right, unowned, share,
               s->runs ? s->verify_ms / s->runs : 0, tg, pass(ok));
    }
    printf("share_2: copy 2's mean reported share where it was claimed (its true area)\n");
    if (f1)
        printf("quarter block of frame %d at %d,%d, %dx%d (each frame has its own place)\n",
               f1->index, f1->quarter.x, f1->quarter.y, f1->quarter.w, f1->quarter.h);
    for (int l = 0; l < 3; l++)
        print_missed(comp_rows[l], &b->comp[l]);
}

static void print_single(const bench *b)
{
    printf("\n== case 4: copy 1 alone through every attack ==\n");
    printf("%-13s %6s %14s %6s %5s %14s %6s %5s %9s %7s\n", "attack", "frames", "cand_claimed",
           "second", "wrong", "blind_claimed", "second", "wrong", "target", "verdict");
    int second = 0, wrong = 0, met = 0;
    for (int a = 0; a < atk_count(); a++) {
        const row_stats *sc = &b->single[a], *sb = &b->single_blind[a];
        char c[24], bl[24];
        snprintf(c, sizeof c, "%d/%d", sc->all, sc->runs);
        snprintf(bl, sizeof bl, "%d/%d", sb->all, sb->runs);
        int ok = sc->second + sc->wrong + sb->second + sb->wrong == 0;
        met += ok;
        printf("%-13s %6d %14s %6d %5d %14s %6d %5d %9s %7s", atk_list[a].name, sc->runs, c,
               sc->second, sc->wrong, bl, sb->second, sb->wrong, "0 0", pass(ok));
        if (sc->errors)
            printf("  (%d attack errors)", sc->errors);
        printf("\n");
        second += sc->second + sb->second;
        wrong += sc->wrong + sb->wrong;
    }
    printf("attacks_meeting_target: %d of %d\n", met, atk_count());
    printf("single_second_claims: %d   target 0: %s\n", second, pass(second == 0));
    printf("single_wrong_claims: %d   target 0: %s\n", wrong, pass(wrong == 0));
}

static void print_problems(const bench *b)
{
    printf("\n== case 5: claims outside the true set, every case ==\n");
    printf("wrong_claims: %d   target 0: %s\n", b->nwrong, pass(b->nwrong == 0));
    for (int i = 0; i < b->nproblems; i++) {
        const problem *p = &b->problems[i];
        if (!p->what)
            printf("  WRONG frame %d %s claimed %016llx (%s%s) z %.2f fpr %.3g\n", p->frame,
                   p->where, (unsigned long long)p->id,
                   p->source == CM_ID_BLIND ? "blind" : "candidate",
                   p->decoy ? ", a copy not in the frame" : "", p->score, p->fpr);
    }
    printf("inconsistent_results: %d (results breaking verify.h's promises)   target 0: %s\n",
           b->ninconsistent, pass(b->ninconsistent == 0));
    for (int i = 0; i < b->nproblems; i++) {
        const problem *p = &b->problems[i];
        if (p->what)
            printf("  INCONSISTENT frame %d %s: %s\n", p->frame, p->where, p->what);
    }
}

/* ---- main ------------------------------------------------------------------- */

/* One frame through every case asked for; one progress line on stderr. */
static int run_frame(bench *b, frame *f, int index)
{
    const options *o = &b->opt;
    double t0 = bench_now_ms();
    int ncopies = o->cases[CASE_AVGK]                               ? MAX_COPIES
                  : o->cases[CASE_AVG2] || o->cases[CASE_COMPOSITE] ? 2
                                                                    : 1;
    cm_verifier *cand = NULL, *cand_map = NULL;
    int ret = frame_make(b->ctx, b->key, f, index, o->seed, ncopies);
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = f->cands;
    vp.ncandidates = NCANDIDATES;
    vp.max_fpr = MAX_FPR;
    if (!ret)
        ret = cm_verifier_new(b->ctx, b->key, &vp, &cand);
    vp.map = 1;
    if (!ret && o->cases[CASE_COMPOSITE])
        ret = cm_verifier_new(b->ctx, b->key, &vp, &cand_map);
    if (ret)
        goto done;

    char line[512];
    size_t n = (size_t)snprintf(line, sizeof line, "mixes: frame %d/%d (%s)", index, o->frames,
                                cel_style_name(f->style));
    if (o->cases[CASE_AVG2]) {
        int got[4] = {0};
        if ((ret = run_avg2(b, f, cand, got)))
            goto done;
        n += (size_t)snprintf(line + n, sizeof line - n,
                              " avg2 cand %d/2 blind %d/2 jpeg75 %d/2 scale50 %d/2;", got[0],
                              got[1], got[2], got[3]);
    }
    if (o->cases[CASE_AVGK]) {
        int got[MAX_COPIES + 1] = {0}, gotb[MAX_COPIES + 1] = {0};
        if ((ret = run_avgk(b, f, cand, got, gotb)))
            goto done;
        n += (size_t)snprintf(line + n, sizeof line - n, " avgk");
        for (int k = AVGK_MIN; k <= MAX_COPIES && n < sizeof line; k++)
            n += (size_t)snprintf(line + n, sizeof line - n, " %d/%d", got[k], k);
        if (n < sizeof line)
            n += (size_t)snprintf(line + n, sizeof line - n, ";");
    }
    if (o->cases[CASE_COMPOSITE] && n < sizeof line) {
        int got[3] = {0};
        if ((ret = run_composite(b, f, cand_map, got)))
            goto done;
        n += (size_t)snprintf(line + n, sizeof line - n, " composite lr %d/2 tb %d/2 quarter %d/2;",
                              got[0], got[1], got[2]);
    }
    if (o->cases[CASE_SINGLE] && n < sizeof line) {
        int second = 0, wrong = 0;
        if ((ret = run_single(b, f, cand, &second, &wrong)))
            goto done;
        n += (size_t)snprintf(line + n, sizeof line - n, " single second %d wrong %d;", second,
                              wrong);
    }
    fprintf(stderr, "%s %.1f s\n", line, (bench_now_ms() - t0) / 1e3);
done:
    cm_verifier_free(&cand);
    cm_verifier_free(&cand_map);
    return ret;
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof(b));
    if (parse_options(argc, argv, &b.opt)) {
        fprintf(stderr, "Try 'mixes --help'.\n");
        free(b.opt.only);
        return 2;
    }
    const options *o = &b.opt;
    /* libx264 and swscale log banners at info level; keep errors only. */
    av_log_set_level(AV_LOG_ERROR);

    frame f1 = {0}; /* the first frame run, kept for the quarter's place */
    int have_f1 = 0;
    cm_verify_params bp;
    cm_verify_params_default(&bp);
    bp.max_fpr = MAX_FPR;
    b.single = calloc((size_t)atk_count(), sizeof(*b.single));
    b.single_blind = calloc((size_t)atk_count(), sizeof(*b.single_blind));
    int ret = b.single && b.single_blind ? CM_OK : CM_E_NOMEM;
    if (!ret)
        ret = cm_ctx_new(&b.ctx);
    if (!ret)
        ret = bench_key(&b.key, 0);
    if (!ret)
        ret = cm_verifier_new(b.ctx, b.key, &bp, &b.blind);
    if (ret) {
        fprintf(stderr, "mixes: setup: %s\n", cm_strerror(ret));
        goto out;
    }

    int nrun = 0;
    for (int i = 1; i <= o->frames; i++) {
        if (o->only && !o->only[i])
            continue;
        frame f;
        ret = run_frame(&b, &f, i);
        if (!have_f1) {
            f1.index = f.index;
            f1.quarter = f.quarter;
            have_f1 = 1;
        }
        frame_free(&f);
        if (ret) {
            fprintf(stderr, "mixes: frame %d: %s%s%s\n", i, cm_strerror(ret),
                    *cm_ctx_last_error(b.ctx) ? ": " : "", cm_ctx_last_error(b.ctx));
            goto out;
        }
        nrun++;
    }

    printf("mixes: celmark %s, %d of %d frames %dx%d (styles cycle flat..film), seed %u,"
           " default profile\n",
           cm_version(), nrun, o->frames, FRAME_W, FRAME_H, o->seed);
    printf("each frame: %d copies with distinct random ids; %d candidates holding every"
           " copy's id (copies left out of a mix are decoys); max_fpr %g\n",
           MAX_COPIES, NCANDIDATES, MAX_FPR);
    printf("blind = a verifier without candidates; wrong = a claimed id outside the"
           " frame's true set\n");
    if (o->cases[CASE_AVG2])
        print_avg2(&b);
    if (o->cases[CASE_AVGK])
        print_avgk(&b);
    if (o->cases[CASE_COMPOSITE])
        print_composite(&b, have_f1 ? &f1 : NULL);
    if (o->cases[CASE_SINGLE])
        print_single(&b);
    print_problems(&b);
    fflush(stdout);

out:
    for (int i = 0; i < 4; i++)
        free(b.avg2[i].missed);
    for (int k = 0; k <= MAX_COPIES; k++) {
        free(b.avgk[k].missed);
        free(b.avgk_blind[k].missed);
    }
    for (int l = 0; l < 3; l++)
        free(b.comp[l].missed);
    for (int a = 0; b.single && b.single_blind && a < atk_count(); a++) {
        free(b.single[a].missed);
        free(b.single_blind[a].missed);
    }
    free(b.single);
    free(b.single_blind);
    free(b.problems);
    free(b.opt.only);
    cm_verifier_free(&b.blind);
    cm_key_free(&b.key);
    cm_ctx_free(&b.ctx);
    return ret ? 1 : 0;
}
