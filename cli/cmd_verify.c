/* celmark verify: which issue id (if any) does each file carry? */
#include "analyze.h"
#include "cli.h"
#include "outfile.h"
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read one HEX16 id a line ('#' comments and blank lines allowed). */

/* --map of a video: drawn over its first frame at this width. */
#define MAP_VIDEO_WIDTH 960

static int read_candidates(const char *path, uint64_t **ids, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "celmark: %s: cannot open candidates: %s; check the path\n", path,
                strerror(errno));
        return EXIT_INPUT;
    }
    char line[256];
    size_t cap = 0, lineno = 0;
    *ids = NULL;
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        s[strcspn(s, " \t\r\n#")] = '\0';
        if (!*s)
            continue;
        uint64_t id;
        if (cli_parse_id(s, &id)) {
            fprintf(stderr, "celmark: %s:%zu: '%s' is not a 16-digit hex issue id; fix the line\n",
                    path, lineno, s);
            fclose(f);
            free(*ids);
            *ids = NULL;
            return EXIT_INPUT;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *p = realloc(*ids, cap * sizeof(uint64_t));
            if (!p) {
                fclose(f);
                free(*ids);
                *ids = NULL;
                return EXIT_INTERNAL;
            }
            *ids = p;
        }
        (*ids)[(*n)++] = id;
    }
    fclose(f);
    return EXIT_OK;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* mixed: several ids in the frame, or (a video) in its segments. */
static json_t *result_json(const char *path, const cm_verify_result *r, const cli_ledger_info *li,
                           int mixed)
{
    char id[17];
    json_t *o = json_object();
    json_object_set_new(o, "schema", json_string("celmark.verify/1"));
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "marked", json_boolean(r->marked));
    if (r->marked) {
        cli_format_id(r->issue_id, id);
        json_object_set_new(o, "issue_id", json_string(id));
    } else {
        json_object_set_new(o, "issue_id", json_null());
    }
    json_object_set_new(o, "source", json_string(cli_source_name(r->source)));
    json_object_set_new(o, "score", json_real(r->score));
    json_object_set_new(o, "fpr", json_real(r->fpr));
    json_object_set_new(o, "scale", json_real(r->scale));
    json_object_set_new(o, "rotation_deg", json_real(r->rotation_deg));
    json_object_set_new(o, "flipped", json_boolean(r->flipped));
    json_object_set_new(o, "sync_score", json_real(r->sync_score));
    json_object_set_new(o, "hypotheses", json_integer(r->hypotheses));
    if (r->blind_crc_ok) {
        cli_format_id(r->blind_id, id);
        json_object_set_new(o, "blind_id", json_string(id));
        json_object_set_new(o, "blind_score", json_real(r->blind_score));
        json_object_set_new(o, "blind_fpr", json_real(r->blind_fpr));
    } else {
        json_object_set_new(o, "blind_id", json_null());
    }
    if (li->used) {
        int have = r->marked && li->found;
        json_object_set_new(o, "recipient", str_or_null(have ? li->row.recipient : NULL));
        json_object_set_new(o, "asset", str_or_null(have ? li->row.asset : NULL));
        json_object_set_new(o, "stamped_at", str_or_null(have ? li->row.stamped_at : NULL));
        json_object_set_new(o, "ledger_row", str_or_null(r->marked ? cli_ledger_status(li) : NULL));
    }
    json_object_set_new(o, "claims", cli_claims_json(r, li));
    json_object_set_new(o, "mixed", json_boolean(mixed));
    return o;
}

/* One segment of a video, as JSON: times, frames and the claim. */
static json_t *segment_json(const cm_video_segment *s, const cli_ledger_info *li)
{
    char id[17];
    const cm_verify_result *r = &s->result;
    json_t *o = json_object();
    json_object_set_new(o, "start", json_real(s->start));
    json_object_set_new(o, "end", json_real(s->end));
    json_object_set_new(o, "start_tc", json_string(s->start_tc));
    json_object_set_new(o, "end_tc", json_string(s->end_tc));
    json_object_set_new(o, "first_frame", json_integer(s->first_frame));
    json_object_set_new(o, "frames", json_integer(s->frames));
    json_object_set_new(o, "marked", json_boolean(r->marked));
    if (r->marked) {
        cli_format_id(r->issue_id, id);
        json_object_set_new(o, "issue_id", json_string(id));
    } else {
        json_object_set_new(o, "issue_id", json_null());
    }
    json_object_set_new(o, "score", json_real(r->score));
    json_object_set_new(o, "fpr", json_real(r->fpr));
    if (li->used) {
        int have = r->marked && li->found;
        json_object_set_new(o, "recipient", str_or_null(have ? li->row.recipient : NULL));
        json_object_set_new(o, "asset", str_or_null(have ? li->row.asset : NULL));
    }
    json_object_set_new(o, "claims", cli_claims_json(r, li));
    json_object_set_new(o, "mixed", json_boolean(r->mixed));
    return o;
}

static void segment_text(const char *what, const cm_video_segment *s, const cli_ledger_info *li)
{
    char id[17];
    const cm_verify_result *r = &s->result;
    printf("%s: %s-%s frames %lld-%lld ", what, s->start_tc, s->end_tc,
           (long long)s->first_frame, (long long)(s->first_frame + s->frames - 1));
    if (r->marked) {
        cli_format_id(r->issue_id, id);
        printf("issue_id=%s", id);
        if (li->used && li->found)
            printf(" recipient=\"%s\"", li->row.recipient);
    } else {
        printf("issue_id=none");
    }
    printf(" score=%.2f fpr=%.3g\n", r->score, r->fpr);
}

static void result_text(const char *path, const cm_verify_result *r, int first,
                        const cli_ledger_info *li, int mixed)
{
    char id[17];
    if (!first)
        putchar('\n');
    printf("file: %s\n", path);
    printf("marked: %s\n", r->marked ? "yes" : "no");
    if (r->marked) {
        cli_format_id(r->issue_id, id);
        printf("issue_id: %s\n", id);
        printf("found_by: %s\n", cli_source_name(r->source));
        if (li->used) {
            if (li->found) {
                printf("recipient: %s\n", li->row.recipient);
                printf("asset: %s\n", li->row.asset);
                printf("stamped_at: %s\n", li->row.stamped_at);
            }
            printf("ledger_row: %s\n", cli_ledger_status(li));
        }
    }
    printf("score: %.2f\n", r->score);
    printf("fpr: %.3g\n", r->fpr);
    cli_claims_text(r, li);
    printf("mixed: %s\n", mixed ? "yes" : "no");
    printf("scale: %.3f\n", r->scale);
    printf("rotation_deg: %.2f\n", r->rotation_deg);
    printf("flipped: %s\n", r->flipped ? "yes" : "no");
}

typedef struct verify_job {
    cm_ctx *ctx;
    cm_verifier *ver;
    cm_ledger *lg;
    int json, first, quiet;
    const cm_video_verify_params *vvp;
    const char *range; /* --frames, for sequence patterns */
    double fps;        /* --fps, for sequence patterns */
    const char *map;   /* --map OUT.png, or NULL */
    int force;
    const cli_layers *layers; /* the delegates' layers too (n > 1), or NULL */
} verify_job;

/* The layers below the key's own, read on a still (res[0] is the own
 * layer's result); results into res[1..]. */
static int read_layers(const verify_job *j, const cm_image *img, cm_verify_result *res)
{
    for (int i = 1; j->layers && i < j->layers->n; i++) {
        int ret = cm_verifier_image(j->layers->l[i].ver, img, &res[i]);
        if (ret)
            return ret;
    }
    return CM_OK;
}

/* ... on a video: each layer's whole-file claim. */
static int read_video_layers(const verify_job *j, const char *path, cm_verify_result *res)
{
    for (int i = 1; j->layers && i < j->layers->n; i++) {
        cm_video_report rep;
        int ret = cm_video_verify(j->ctx, j->layers->l[i].ver, path, j->vvp, &rep);
        if (ret)
            return ret;
        res[i] = rep.claim;
        cm_video_report_clear(&rep);
    }
    return CM_OK;
}

/* --map: the claim map of r over a dimmed copy of the frame (img, or a
 * video's thumbnail of a frame fw px wide) into j->map. */
static int write_map(const verify_job *j, const cm_image *img, const cm_plane *thumb, int fw,
                     const cm_verify_result *r)
{
    uint8_t *png = NULL;
    size_t len = 0;
    if (claim_map_png(img, thumb, fw, r, img ? img->width : 0, &png, &len)) {
        fprintf(stderr, "celmark: %s: cannot draw the claim map; free memory\n", j->map);
        return EXIT_INTERNAL;
    }
    cli_out o;
    int e = cli_out_open(&o, j->map, j->force);
    if (!e) {
        if (fwrite(png, 1, len, o.fp) != len) {
            e = EXIT_INPUT;
            fprintf(stderr, "celmark: %s: cannot write: %s; %s\n", j->map, strerror(errno),
                    cli_write_advice(errno));
            cli_out_abort(&o);
        } else {
            e = cli_out_commit(&o);
        }
    }
    free(png);
    return e;
}

/* A video: the whole file's claim, then its segments (and, in JSON, its
 * windows). */
static int verify_video(verify_job *j, const char *path, int *any_unmarked, int *code)
{
    cm_video_report rep;
    cm_video_verify_params vp = *j->vvp;
    if (j->map)
        vp.thumb_width = MAP_VIDEO_WIDTH;
    cli_progress prog;
    cli_progress_init(&prog, "verify", j->quiet);
    vp.progress = cli_progress_update;
    vp.progress_opaque = &prog;
    const char *type = "video";
    int ret;
    if (cm_sequence_is_pattern(path) && access(path, F_OK) != 0) {
        cm_sequence *seq = NULL;
        type = "sequence";
        ret = cm_sequence_open(j->ctx, path, j->range, &seq);
        if (!ret)
            ret = cm_sequence_verify(j->ctx, j->ver, seq, j->fps, &vp, &rep);
        cm_sequence_free(&seq);
    } else {
        ret = cm_video_verify(j->ctx, j->ver, path, &vp, &rep);
    }
    cli_progress_end(&prog);
    if (ret)
        return ret;
    int e;
    cli_ledger_info li[CM_MAX_CLAIMS];
    if ((e = cli_ledger_lookup_claims(j->ctx, j->lg, &rep.claim, li)))
        *code = e;
    if (!rep.claim.marked)
        *any_unmarked = 1;
    json_t *o = NULL;
    int mixed = rep.nids > 1 || rep.claim.mixed;
    cm_verify_result *layer_res = NULL;
    if (j->layers && j->layers->n > 1) {
        if (!(layer_res = calloc((size_t)j->layers->n, sizeof(*layer_res)))) {
            cm_video_report_clear(&rep);
            return CM_E_NOMEM;
        }
        layer_res[0] = rep.claim;
        if ((ret = read_video_layers(j, path, layer_res))) {
            free(layer_res);
            cm_video_report_clear(&rep);
            return ret;
        }
    }
    if (j->json) {
        o = result_json(path, &rep.claim, li, mixed);
        if (layer_res)
            json_object_set_new(o, "layers", cli_layers_json(j->ctx, j->layers, layer_res));
        json_object_set_new(o, "type", json_string(type));
        json_object_set_new(o, "frames", json_integer(rep.frames));
        json_object_set_new(o, "stopped_at_frame",
                            rep.stopped_early ? json_integer(rep.frames) : json_null());
        json_object_set_new(o, "duration", json_real(rep.duration));
        json_object_set_new(o, "fps", json_real(rep.fps));
    } else {
        result_text(path, &rep.claim, j->first, li, mixed);
        if (layer_res)
            cli_layers_text(j->ctx, j->layers, layer_res);
        printf("type: %s\n", type);
        printf("frames: %lld\n", (long long)rep.frames);
        if (rep.stopped_early)
            printf("stopped: at frame %lld, the claim decisive (--fast)\n",
                   (long long)rep.frames);
        printf("duration: %.3f\n", rep.duration);
    }
    cli_ledger_clear(li);
    free(layer_res);
    const struct {
        const char *name;
        const cm_video_segment *s;
        size_t n;
    } lists[] = {{"segments", rep.segments, rep.nsegments}, {"windows", rep.windows, rep.nwindows}};
    for (int k = 0; k < 2; k++) {
        if (!j->json && k == 1)
            break; /* text output names segments only */
        json_t *arr = j->json ? json_array() : NULL;
        for (size_t i = 0; i < lists[k].n; i++) {
            const cm_video_segment *sg = &lists[k].s[i];
            if ((e = cli_ledger_lookup_claims(j->ctx, j->lg, &sg->result, li)))
                *code = e;
            if (arr)
                json_array_append_new(arr, segment_json(sg, li));
            else
                segment_text("segment", sg, li);
            cli_ledger_clear(li);
        }
        if (arr)
            json_object_set_new(o, lists[k].name, arr);
    }
    if (o)
        cli_print_json(o);
    if (j->map && (e = write_map(j, NULL, &rep.thumb, rep.width, &rep.claim)))
        *code = e;
    cm_video_report_clear(&rep);
    return CM_OK;
}

/* Verify one file; returns its exit code (0, or EXIT_INPUT...). */
static int verify_one(verify_job *j, const char *path, int *any_unmarked)
{
    cm_ctx_clear(j->ctx);
    cm_media_kind kind;
    int seq = cm_sequence_is_pattern(path) && access(path, F_OK) != 0;
    int ret = seq ? CM_OK : cm_media_probe(j->ctx, path, &kind);
    if (!ret && (seq || kind == CM_MEDIA_VIDEO)) {
        int code = EXIT_OK;
        ret = verify_video(j, path, any_unmarked, &code);
        if (!ret)
            return code;
    } else if (!ret) {
        int nl = j->layers ? j->layers->n : 1;
        cm_verify_result *res = calloc((size_t)nl, sizeof(*res)), r;
        cm_image *img = NULL;
        if (!res)
            return EXIT_INTERNAL;
        ret = cm_verify_still(j->ctx, j->ver, path, &j->vvp->limits, &r,
                              j->map || nl > 1 ? &img : NULL);
        if (!ret && nl > 1) {
            res[0] = r;
            ret = read_layers(j, img, res);
        }
        if (!ret) {
            cli_ledger_info li[CM_MAX_CLAIMS];
            int e = cli_ledger_lookup_claims(j->ctx, j->lg, &r, li);
            if (!r.marked)
                *any_unmarked = 1;
            if (j->json) {
                json_t *o = result_json(path, &r, li, r.mixed);
                if (nl > 1)
                    json_object_set_new(o, "layers", cli_layers_json(j->ctx, j->layers, res));
                cli_print_json(o);
            } else {
                result_text(path, &r, j->first, li, r.mixed);
                if (nl > 1)
                    cli_layers_text(j->ctx, j->layers, res);
            }
            cli_ledger_clear(li);
            free(res);
            int em = j->map ? write_map(j, img, NULL, 0, &r) : EXIT_OK;
            cm_image_free(&img);
            return e > em ? e : em;
        }
        free(res);
        cm_image_free(&img);
    }
    if (ret == CM_E_INVAL && cm_sequence_is_pattern(path)) /* bad --frames */
        return cli_usage_error("verify", "%s", cm_ctx_last_error(j->ctx));
    if (ret) {
        int e = cli_fail(j->ctx, ret);
        if (j->json)
            cli_print_json_error("celmark.verify/1", path, cm_ctx_last_error(j->ctx));
        return e;
    }
    return EXIT_OK;
}

/* What --report needs from the verify run. */
typedef struct report_ctx {
    cm_ctx *ctx;
    cm_verifier *ver;
    cm_ledger *lg;
    const cm_key *key;
    const char *ledger_path;
    double max_fpr;
    const cm_video_verify_params *vvp;
} report_ctx;

/* --report: examine each file again with analyze_file (which also makes
 * the thumbnail and hash the page shows) and write the evidence page. The
 * text/JSON output above stays exactly what it was; the price is a second
 * pass over each file. Returns an exit code for the page only (a file's
 * own failure was already counted above). */
static int write_report(const report_ctx *rc, const char *path, int force, char **files,
                        int nfiles)
{
    file_result *res = calloc((size_t)nfiles, sizeof(*res));
    const file_result **ptr = calloc((size_t)nfiles, sizeof(*ptr));
    if (!res || !ptr) {
        free(res);
        free(ptr);
        fprintf(stderr, "celmark: %s: out of memory writing the report; free memory\n", path);
        return EXIT_INTERNAL;
    }
    analyzer a;
    memset(&a, 0, sizeof(a));
    a.ctx = rc->ctx;
    a.ver = rc->ver;
    a.lg = rc->lg;
    cm_limits_default(&a.limits);
    a.vvp = *rc->vvp;
    a.vvp.progress = NULL;
    a.vvp.progress_opaque = NULL;
    a.want_thumb = 1;
    a.want_hash = 1;
    for (int i = 0; i < nfiles; i++) {
        if (cm_sequence_is_pattern(files[i]) && access(files[i], F_OK) != 0) {
            /* not a file: analyze_file reads files only */
            memset(&res[i], 0, sizeof(res[i]));
            snprintf(res[i].path, sizeof(res[i].path), "%s", files[i]);
            res[i].status = CM_E_UNSUPPORTED;
            snprintf(res[i].error, sizeof(res[i].error),
                     "image sequences are not shown in the report; see the verify output");
        } else if (analyze_file(&a, files[i], &res[i]) == CM_OK && res[i].kind == FILE_OTHER) {
            /* named on the command line, so not skipped as scan would */
            res[i].status = CM_E_FORMAT;
            snprintf(res[i].error, sizeof(res[i].error),
                     "not a recognised image or video format");
        }
        ptr[i] = &res[i];
    }
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    report_info info;
    memset(&info, 0, sizeof(info));
    info.title = "celmark verify: evidence report";
    info.generated_at = time(NULL);
    info.key_fingerprint = cm_key_fingerprint(rc->key, fp) == 0 ? fp : NULL;
    info.ledger_path = rc->ledger_path;
    info.max_fpr = rc->max_fpr;
    report_info_count(&info, ptr, (size_t)nfiles);
    int code = report_write(rc->ctx, rc->lg, path, force, ptr, (size_t)nfiles, &info);
    for (int i = 0; i < nfiles; i++)
        file_result_clear(&res[i]);
    free(res);
    free(ptr);
    return code;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"candidates", required_argument, NULL, 'c'},
        {"max-fpr", required_argument, NULL, 'm'},
        {"ledger", required_argument, NULL, 'l'},
        {"asset", required_argument, NULL, 'a'},
        {"window", required_argument, NULL, 'w'},
        {"quiet", no_argument, NULL, 'q'},
        {"frames", required_argument, NULL, 'F'},
        {"fps", required_argument, NULL, 'R'},
        {"report", required_argument, NULL, 'r'},
        {"map", required_argument, NULL, 'M'},
        {"fast", no_argument, NULL, 'T'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    cli_keep_freed_memory();
    const char *key_path = NULL, *cand_path = NULL, *ledger_path = NULL, *asset = NULL;
    const char *report_path = NULL, *map_path = NULL;
    const char *ledgers[CLI_MAX_LEDGERS];
    int nledgers = 0;
    int json = 0, quiet = 0, force = 0, c;
    const char *range = NULL;
    double fps = 24;
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    cm_video_verify_params vvp;
    cm_video_verify_params_default(&vvp);
    vvp.threads = 0; /* one file at a time: every core on it */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:qfh", opts, NULL)) != -1) {
        int lr = cli_limit_option("verify", c, optarg, &vvp.limits);
        if (lr > 0)
            return lr;
        if (lr == 0)
            continue;
        switch (c) {
        case 'r':
            report_path = optarg;
            break;
        case 'M':
            map_path = optarg;
            break;
        case 'T':
            vvp.fast = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'w':
            if (cli_parse_double(optarg, &vvp.window_sec) || !(vvp.window_sec >= 0.1) ||
                vvp.window_sec > 3600)
                return cli_usage_error("verify", "--window must be seconds in [0.1, 3600], not "
                                                 "'%s'",
                                       optarg);
            break;
        case 'q':
            quiet = 1;
            break;
        case 'F':
            range = optarg;
            break;
        case 'R':
            if (cli_parse_double(optarg, &fps) || !(fps > 0 && fps <= 1000))
                return cli_usage_error("verify", "--fps must be in (0, 1000], not '%s'", optarg);
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'c':
            cand_path = optarg;
            break;
        case 'l':
            if (nledgers == CLI_MAX_LEDGERS)
                return cli_usage_error("verify", "at most %d ledgers (-l)", CLI_MAX_LEDGERS);
            ledgers[nledgers++] = optarg;
            ledger_path = ledgers[0];
            break;
        case 'a':
            asset = optarg;
            break;
        case 'm':
            if (cli_parse_double(optarg, &vp.max_fpr) || !(vp.max_fpr > 0 && vp.max_fpr <= 1e-3))
                return cli_usage_error("verify", "--max-fpr must be in (0, 1e-3], not '%s'",
                                       optarg);
            break;
        case 'h':
            cli_print_help("verify");
            return EXIT_OK;
        case ':':
            return cli_usage_error("verify", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("verify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!key_path)
        return cli_usage_error("verify", "no key given (-k KEYFILE)");
    if (optind >= argc)
        return cli_usage_error("verify", "no input file given");
    if (asset && !ledger_path)
        return cli_usage_error("verify", "--asset needs a ledger (-l LEDGER)");
    if (force && !report_path && !map_path)
        return cli_usage_error("verify", "--force only applies to --report OUT.html and --map "
                                         "OUT.png");
    if (map_path && argc - optind != 1)
        return cli_usage_error("verify", "--map draws one file's claim map: give one input");
    /* refuse an existing report or map before the work, not after */
    if ((report_path && cli_out_check(report_path, force)) ||
        (map_path && cli_out_check(map_path, force)))
        return EXIT_INPUT;
    vp.map = map_path != NULL;

    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    cm_verifier *ver = NULL;
    cm_ledger *lg = NULL, *lgs[CLI_MAX_LEDGERS] = {NULL};
    cli_layers layers = {NULL, 0};
    uint64_t *cands = NULL;
    int ret;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = cli_load_key(ctx, key_path, &key);
    if (!code && cand_path)
        code = read_candidates(cand_path, &cands, &vp.ncandidates);
    if (code)
        goto done;
    if (ledger_path) {
        uint64_t *lc = NULL;
        size_t nl = 0;
        char signer[CM_KEY_FINGERPRINT_CHARS + 1], mine[CM_KEY_FINGERPRINT_CHARS + 1];
        ret = cm_ledger_open(ctx, ledger_path, 0, &lg);
        if (!ret)
            ret = cm_ledger_candidates(ctx, lg, asset, &lc, &nl);
        if (!ret)
            ret = cm_ledger_signer(ctx, lg, signer);
        if (ret) {
            code = cli_fail(ctx, ret);
            goto done;
        }
        if (nl) {
            uint64_t *all = realloc(cands, (vp.ncandidates + nl) * sizeof(uint64_t));
            if (!all) {
                free(lc);
                code = EXIT_INTERNAL;
                goto done;
            }
            memcpy(all + vp.ncandidates, lc, nl * sizeof(uint64_t));
            cands = all;
            vp.ncandidates += nl;
        }
        free(lc);
        if (signer[0] && !cm_key_fingerprint(key, mine) && strcmp(signer, mine) != 0)
            fprintf(stderr,
                    "celmark: warning: %s: rows were signed with key %s, not the key given "
                    "(%s); signatures will not vouch for this key\n",
                    ledger_path, signer, mine);
        if (asset && nl == 0)
            fprintf(stderr, "celmark: warning: %s: no rows for asset '%s'\n", ledger_path, asset);
    }
    vp.candidates = cands;
    ret = cm_verifier_new(ctx, key, &vp, &ver);
    if (ret) {
        code = cli_fail(ctx, ret);
        goto done;
    }
    /* the delegates' layers: every delegation recorded in the ledgers
     * given, read with the layer keys this key derives */
    lgs[0] = lg;
    if ((code = cli_layers_setup(ctx, key, ledgers, nledgers, lgs, &vp, &layers, &ver)))
        goto done;
    int any_unmarked = 0, worst_err = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        verify_job vj = {ctx,      ver,   lg,       json, i == optind, quiet, &vvp, range, fps,
                         map_path, force, &layers};
        int e = verify_one(&vj, argv[i], &any_unmarked);
        if (e > worst_err)
            worst_err = e;
    }
    code = worst_err ? worst_err : (any_unmarked ? EXIT_FAIL : EXIT_OK);
    if (report_path) {
        report_ctx rc = {ctx, ver, lg, key, ledger_path, vp.max_fpr, &vvp};
        int e = write_report(&rc, report_path, force, argv + optind, argc - optind);
        if (e > code)
            code = e;
    }
done:
    cli_layers_teardown(&layers, lgs, nledgers);
    free(cands);
    cm_ledger_close(&lg);
    cm_verifier_free(&ver);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
