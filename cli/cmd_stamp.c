/* celmark stamp: embed a recipient's issue id into a copy of a frame. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Most video frames marked at once (-j). */
#define MAX_JOBS 64

/* How to stamp a video (options of the command). */
typedef struct video_opts {
    const char *codec;
    int crf, qscale, quiet, jobs;
    cm_limits limits; /* for stills and videos alike */
} video_opts;

/* What stamp_file did, for the ledger row and the report. */
typedef struct stamped {
    int width, height;
    const char *layer;
    int video;
    cm_video_stamp_info vinfo;
    cm_still_stamp_info sinfo; /* a still: its colour difference, its check */
} stamped;

/* One issue: its stamper, and the key and id to check the result with
 * (the verifier is made on the first still and serves a whole sequence). */
typedef struct stamp_job {
    cm_stamper *st;
    const cm_key *key;
    uint64_t id;
    int cel_safe;
    cm_verifier *ver; /* owned; free with cm_verifier_free */
} stamp_job;

/* The verifier that decodes each stamped still as an investigator would
 * (made on the first still, it serves a whole sequence), or NULL with a
 * line on stderr when it cannot be made. */
static cm_verifier *checker(cm_ctx *ctx, stamp_job *job, const char *out)
{
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = &job->id;
    vp.ncandidates = 1;
    if (!job->ver && cm_verifier_new(ctx, job->key, &vp, &job->ver))
        fprintf(stderr, "celmark: %s: could not check the mark: %s\n", out,
                cm_ctx_last_error(ctx));
    return job->ver;
}

/* Say on stderr when the stamped copy's mark could not be found again
 * (checked, r, error: what the still's or the video's check gave): a frame
 * of flat fills stamped with --cel-safe, a nearly empty page, or a tiny
 * clip may have too little room for it. The stamp itself stands (the copy
 * is valid); this is a warning. what: "frame" or "clip". */
static void check_mark(const stamp_job *job, int checked, const cm_verify_result *r,
                       const char *error, const char *what, const char *out)
{
    if (!checked) {
        if (error[0]) /* advice: not running it is not the stamp's failure */
            fprintf(stderr, "celmark: %s: could not check the mark: %s\n", out, error);
        return;
    }
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    if (r->blind_crc_ok && r->blind_id == job->id && r->blind_fpr <= vp.max_fpr)
        return;
    const char *hint = job->cel_safe ? "; --cel-safe leaves flat fills unmarked, the default "
                                       "profile does not"
                                     : "; try a higher --strength or --profile robust";
    if (r->best_candidate == 0 && r->candidate_fpr <= vp.max_fpr)
        fprintf(stderr,
                "celmark: warning: %s: the mark is weak: found against its issue id (z %.1f) "
                "but not blind; little of this %s can carry it%s\n",
                out, r->candidate_score, what, hint);
    else
        fprintf(stderr,
                "celmark: warning: %s: the mark cannot be found again (z %.1f): little of "
                "this %s can carry it%s\n",
                out, r->candidate_score, what, hint);
}

/* Stamp in into path (the output, or the ledger's temp file for out):
 * a still through cm_stamp_still, a video through cm_video_stamp. */
static int stamp_file(cm_ctx *ctx, stamp_job *job, const char *in, const char *path,
                      const char *out, int flags, const video_opts *vo, stamped *res)
{
    cm_stamper *st = job->st;
    cm_media_kind kind;
    memset(res, 0, sizeof(*res));
    int ret = cm_media_probe(ctx, in, &kind);
    if (ret)
        return ret;
    if (kind == CM_MEDIA_VIDEO) {
        cm_video_stamp_params vp;
        cm_video_stamp_params_default(&vp);
        vp.codec = vo->codec;
        vp.crf = vo->crf;
        vp.qscale = vo->qscale;
        vp.jobs = vo->jobs;
        vp.limits = vo->limits;
        vp.out_name = out;
        cli_progress prog;
        cli_progress_init(&prog, "stamp", vo->quiet);
        vp.progress = cli_progress_update;
        vp.progress_opaque = &prog;
        vp.check = checker(ctx, job, out);
        ret = cm_video_stamp(ctx, st, in, path, &vp, flags, &res->vinfo);
        cli_progress_end(&prog);
        if (!ret)
            check_mark(job, res->vinfo.checked, &res->vinfo.check_result,
                       res->vinfo.check_error, "clip", out);
        /* what the copy could not keep of the source is never lost silently */
        for (int k = 0; !ret && k < res->vinfo.nnot_kept; k++)
            fprintf(stderr, "celmark: warning: %s: %s\n", out, res->vinfo.not_kept[k]);
        /* PQ's code values are absolute luminance: one 10-bit step is ΔE ITP
         * ~0.8 (ITU-R BT.2124: 720 x ΔI, ΔI = 1/876 on a neutral), an
         * 8-bit-scale unit of the budget 3.4 of them */
        if (!ret && !strcmp(res->vinfo.transfer, "smpte2084"))
            fprintf(stderr,
                    "celmark: warning: %s: HDR (PQ) video: the colour budget judges the mark "
                    "as an SDR display shows it; on a PQ display a code value is a larger step "
                    "(ΔE ITP ~0.8 per 10-bit code value, ITU-R BT.2124) and the mark may show. "
                    "A lower --strength trades robustness for it\n",
                    out);
        res->video = 1;
        res->width = res->vinfo.width;
        res->height = res->vinfo.height;
        res->layer = "luma";
        return ret;
    }
    cm_still_stamp_info *si = &res->sinfo;
    ret = cm_stamp_still(ctx, st, checker(ctx, job, out), in, path, &vo->limits, flags, si);
    if (!ret) {
        /* palette or YUV sources are written as RGB/RGBA */
        if (si->converted)
            fprintf(stderr, "celmark: %s: %s source written as %s\n", in, si->source_layout,
                    si->has_alpha ? "RGBA" : (si->channels >= 3 ? "RGB" : "grey"));
        check_mark(job, si->checked, &si->check_result, si->check_error, "frame", out);
        res->width = si->width;
        res->height = si->height;
        res->layer = si->colour ? "luma+chroma" : "luma";
    }
    /* what the copy could not carry: never lost silently */
    for (int i = 0; !ret && i < cm_ctx_warning_count(ctx); i++)
        fprintf(stderr, "celmark: warning: %s: %s\n", out, cm_ctx_warning(ctx, i));
    return ret;
}

/* What stamp says of what it wrote: a still's colour difference (the
 * 99.9th percentile and the worst pixel, CIEDE2000), a video's streams. */
static void print_result(const stamped *r)
{
    if (!r->video) {
        printf("delta_e00_p99.9: %.2f\n", r->sinfo.de.p999);
        printf("delta_e00_max: %.2f\n", r->sinfo.de.max);
        return;
    }
    printf("frames: %lld\n", (long long)r->vinfo.frames);
    printf("codec: %s\n", r->vinfo.codec);
    printf("pix_fmt: %s\n", r->vinfo.pix_fmt);
    printf("quality: %s\n", r->vinfo.quality);
    if (r->vinfo.transfer[0])
        printf("transfer: %s\n", r->vinfo.transfer);
    printf("streams_copied: %d\n", r->vinfo.streams_copied);
    if (r->vinfo.streams_dropped)
        printf("streams_dropped: %d\n", r->vinfo.streams_dropped);
}

/* Remove dir and the files in it (our temporary sequence folder). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
                unlink(path);
        closedir(d);
    }
    rmdir(dir);
}

/* tmp = the temporary folder / the output's base name. */
static void temp_name(char *tmp, size_t size, const char *tmpdir, const char *dst)
{
    const char *base = strrchr(dst, '/') ? strrchr(dst, '/') + 1 : dst;
    size_t dl = strlen(tmpdir), bl = strlen(base);
    if (dl + 1 + bl + 1 > size) {
        tmp[0] = '\0'; /* cannot happen: both parts come from 4096-byte buffers */
        return;
    }
    memcpy(tmp, tmpdir, dl);
    tmp[dl] = '/';
    memcpy(tmp + dl + 1, base, bl + 1);
}

/* A sequence: every frame stamped into a hidden folder next to the
 * outputs, then all moved into place; a failure on any frame leaves no
 * output at all. Frames must share one size (a sequence is one shot).
 * Returns an exit code (errors already printed). */
static int stamp_sequence(cm_ctx *ctx, stamp_job *job, const char *in, const char *out,
                          const char *range, int force, const video_opts *vo)
{
    cm_sequence *is = NULL, *os = NULL;
    char tmpdir[4096] = "", src[4096], dst[4096], tmp[8200];
    int code = 0;
    int ret = cm_sequence_open(ctx, in, range, &is);
    if (!ret)
        ret = cm_sequence_rename(ctx, is, out, &os);
    if (ret == CM_E_INVAL) { /* a bad pattern or --frames: a usage error */
        code = cli_usage_error("stamp", "%s", cm_ctx_last_error(ctx));
        goto done;
    }
    if (ret) {
        code = cli_fail(ctx, ret);
        goto done;
    }
    for (size_t i = 0; !force && i < os->nframes; i++) {
        struct stat sb;
        if (!cm_sequence_path(os, i, dst, sizeof(dst)) && lstat(dst, &sb) == 0) {
            fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n", dst);
            ret = CM_E_EXISTS;
            goto done;
        }
    }
    const char *slash = strrchr(os->prefix, '/');
    int dl = slash ? (int)(slash - os->prefix) : 1;
    snprintf(tmpdir, sizeof(tmpdir), "%.*s/.celmark-seq-XXXXXX", dl, slash ? os->prefix : ".");
    if (!mkdtemp(tmpdir)) {
        ret = CM_E_IO;
        fprintf(stderr, "celmark: %s: cannot create a temporary folder: %s\n", tmpdir,
                strerror(errno));
        tmpdir[0] = '\0';
        goto done;
    }
    int w0 = 0, h0 = 0;
    cm_de_stats worst = {0}; /* over the frames */
    cli_progress prog;
    cli_progress_init(&prog, "stamp", vo->quiet);
    for (size_t i = 0; i < is->nframes && !ret; i++) {
        stamped res;
        cm_sequence_path(is, i, src, sizeof(src));
        cm_sequence_path(os, i, dst, sizeof(dst));
        temp_name(tmp, sizeof(tmp), tmpdir, dst);
        ret = stamp_file(ctx, job, src, tmp, dst, 0, vo, &res);
        if (ret) {
            /* a message naming our temporary frame names the output instead */
            const char *detail = cm_ctx_last_error(ctx);
            size_t tl = strlen(tmp);
            if (detail && !strncmp(detail, tmp, tl)) {
                char *msg = malloc(strlen(dst) + strlen(detail + tl) + 1);
                if (msg) {
                    strcpy(msg, dst);
                    strcat(msg, detail + tl);
                    cli_print_error(msg, ret);
                    free(msg);
                }
                code = cli_exit_code(ret);
            } else {
                code = cli_fail(ctx, ret);
            }
        } else if (res.video) {
            fprintf(stderr, "celmark: %s: a video inside a sequence; stamp it on its own\n", src);
            ret = CM_E_FORMAT;
        } else if (i == 0) {
            w0 = res.width;
            h0 = res.height;
        } else if (res.width != w0 || res.height != h0) {
            fprintf(stderr,
                    "celmark: %s: frame is %dx%d, the sequence's first frame %dx%d; a "
                    "sequence must have one frame size\n",
                    src, res.width, res.height, w0, h0);
            ret = CM_E_FORMAT;
        }
        if (!ret) {
            worst.p999 = res.sinfo.de.p999 > worst.p999 ? res.sinfo.de.p999 : worst.p999;
            worst.max = res.sinfo.de.max > worst.max ? res.sinfo.de.max : worst.max;
        }
        cli_progress_update(&prog, (int64_t)i + 1, (int64_t)is->nframes);
    }
    cli_progress_end(&prog);
    for (size_t i = 0; i < os->nframes && !ret; i++) {
        cm_sequence_path(os, i, dst, sizeof(dst));
        temp_name(tmp, sizeof(tmp), tmpdir, dst);
        /* without --force never replace a file that appeared meanwhile */
        if (force ? rename(tmp, dst) != 0 : (link(tmp, dst) != 0 || unlink(tmp) != 0)) {
            fprintf(stderr, "celmark: %s: cannot move into place: %s\n", dst, strerror(errno));
            ret = CM_E_IO;
        }
    }
    if (!ret) {
        printf("frames: %zu\n", os->nframes);
        /* the worst frame's */
        printf("delta_e00_p99.9: %.2f\n", worst.p999);
        printf("delta_e00_max: %.2f\n", worst.max);
    }
done:
    if (tmpdir[0])
        remove_tree(tmpdir);
    cm_sequence_free(&is);
    cm_sequence_free(&os);
    return code ? code : cli_exit_code(ret);
}

/* stamp -l: reserve an id in the ledger, stamp into its temp file, then record
 * the row and move the file into place in one transaction (ledger/ledger.c). */
static int stamp_with_ledger(cm_ctx *ctx, const cm_key *key, const char *ledger_path,
                             const cm_ledger_record *rec0, const cm_stamp_params *sp,
                             const char *in, const char *out, int force, const video_opts *vo)
{
    cm_ledger *lg = NULL;
    cm_ledger_issue *iss = NULL;
    cm_stamper *st = NULL;
    stamped res;
    cm_ledger_record rec = *rec0;
    cm_ledger_row row;
    struct stat sb;
    memset(&row, 0, sizeof(row));
    int ret;
    if (!force && lstat(out, &sb) == 0) {
        ret = CM_E_EXISTS;
        fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n", out);
        return cli_exit_code(ret);
    }
    ret = cm_sha256_file(ctx, in, rec.input_sha256, NULL);
    if (!ret)
        ret = cm_ledger_open(ctx, ledger_path, CM_LEDGER_CREATE, &lg);
    if (!ret)
        ret = cm_ledger_reserve(ctx, lg, out, &iss);
    if (!ret)
        ret = cm_stamper_new(ctx, key, cm_ledger_issue_id(iss), sp, &st);
    if (!ret) {
        stamp_job job = {st, key, cm_ledger_issue_id(iss), sp->cel_safe, NULL};
        ret = stamp_file(ctx, &job, in, cm_ledger_issue_temp_path(iss), out, CM_WRITE_FORCE, vo,
                         &res);
        cm_verifier_free(&job.ver);
        rec.width = res.width;
        rec.height = res.height;
        rec.layer = res.layer;
        if (ret == CM_E_UNSUPPORTED || ret == CM_E_IO) {
            /* the message names our temp file: name the output instead */
            const char *detail = cm_ctx_last_error(ctx);
            const char *colon = strstr(detail, ": ");
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s: %s", out, colon ? colon + 2 : detail);
            cli_print_error(msg, ret);
            cm_ledger_issue_abort(lg, &iss);
            cm_stamper_free(&st);
            cm_ledger_close(&lg);
            return cli_exit_code(ret);
        }
    }
    if (!ret)
        ret = cm_ledger_issue_commit(ctx, lg, &iss, &rec, key, force, &row);
    else
        cm_ledger_issue_abort(lg, &iss);
    int code = EXIT_OK;
    if (ret) {
        code = cli_fail(ctx, ret);
    } else {
        char id[17];
        cli_format_id(row.issue_id, id);
        printf("issue_id: %s\n", id);
        printf("ledger_row: %lld\n", (long long)row.seq);
        printf("output: %s\n", out);
        print_result(&res);
    }
    cm_ledger_row_clear(&row);
    cm_stamper_free(&st);
    cm_ledger_close(&lg);
    return code;
}

int cmd_stamp(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"id", required_argument, NULL, 'i'},
        {"strength", required_argument, NULL, 's'},
        {"profile", required_argument, NULL, 'p'},
        {"cel-safe", no_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {"ledger", required_argument, NULL, 'l'},
        {"recipient", required_argument, NULL, 'r'},
        {"asset", required_argument, NULL, 'a'},
        {"note", required_argument, NULL, 'n'},
        {"operator", required_argument, NULL, 'o'},
        {"codec", required_argument, NULL, 'C'},
        {"crf", required_argument, NULL, 'R'},
        {"qscale", required_argument, NULL, 'Q'},
        {"quiet", no_argument, NULL, 'q'},
        {"jobs", required_argument, NULL, 'j'},
        {"frames", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *id_str = NULL, *ledger_path = NULL, *range = NULL;
    cm_ledger_record rec;
    memset(&rec, 0, sizeof(rec));
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    int force = 0, c;
    video_opts vo = {NULL, -1, -1, 0, 0, {0}};
    cm_limits_default(&vo.limits);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:j:fqh", opts, NULL)) != -1) {
        int lr = cli_limit_option("stamp", c, optarg, &vo.limits);
        if (lr > 0)
            return lr;
        if (lr == 0)
            continue;
        switch (c) {
        case 'C':
            vo.codec = optarg;
            break;
        case 'R':
        case 'Q': {
            double v;
            if (cli_parse_double(optarg, &v) || !(v >= 0 && v <= 63) || v != (int)v)
                return cli_usage_error("stamp", "--%s must be a whole number in 0..63, not '%s'",
                                       c == 'R' ? "crf" : "qscale", optarg);
            *(c == 'R' ? &vo.crf : &vo.qscale) = (int)v;
            break;
        }
        case 'j': {
            double v;
            if (cli_parse_double(optarg, &v) || v != (int)v || v < 1 || v > MAX_JOBS)
                return cli_usage_error("stamp", "-j must be a whole number in 1..%d, not '%s'",
                                       MAX_JOBS, optarg);
            vo.jobs = (int)v;
            break;
        }
        case 'q':
            vo.quiet = 1;
            break;
        case 'F':
            range = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'i':
            id_str = optarg;
            break;
        case 's': {
            double v;
            if (cli_parse_double(optarg, &v) || !(v > 0 && v <= 4))
                return cli_usage_error("stamp", "--strength must be a number in (0, 4], not '%s'",
                                       optarg);
            sp.strength = (float)v;
            break;
        }
        case 'p': {
            int p = cm_profile_from_name(optarg);
            if (p < 0)
                return cli_usage_error("stamp", "unknown profile '%s' (subtle, default, robust)",
                                       optarg);
            sp.profile = (cm_profile)p;
            break;
        }
        case 'c':
            sp.cel_safe = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'l':
            ledger_path = optarg;
            break;
        case 'r':
            rec.recipient = optarg;
            break;
        case 'a':
            rec.asset = optarg;
            break;
        case 'n':
            rec.note = optarg;
            break;
        case 'o':
            rec.operator_name = optarg;
            break;
        case 'h':
            cli_print_help("stamp");
            return EXIT_OK;
        case ':':
            return cli_usage_error("stamp", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("stamp", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!key_path)
        return cli_usage_error("stamp", "no key given (-k KEYFILE)");
    uint64_t id = 0;
    if (ledger_path) {
        if (id_str)
            return cli_usage_error("stamp", "--id cannot be used with --ledger: the ledger "
                                            "draws a fresh issue id");
        if (!rec.recipient || !*rec.recipient)
            return cli_usage_error("stamp", "no recipient given (--recipient NAME)");
        if (!rec.asset || !*rec.asset)
            return cli_usage_error("stamp", "no asset given (--asset NAME)");
    } else {
        if (rec.recipient || rec.asset || rec.note || rec.operator_name)
            return cli_usage_error("stamp", "--recipient, --asset, --note and --operator "
                                            "need a ledger (-l LEDGER)");
        if (!id_str)
            return cli_usage_error("stamp", "no issue id given (--id HEX16, or -l LEDGER)");
        if (cli_parse_id(id_str, &id))
            return cli_usage_error("stamp", "--id must be 16 hex digits, not '%s'", id_str);
    }
    if (argc - optind != 2)
        return cli_usage_error("stamp", "expected IN and OUT files");
    const char *in = argv[optind], *out = argv[optind + 1];
    int seq = cm_sequence_is_pattern(in);
    if (seq != cm_sequence_is_pattern(out))
        return cli_usage_error("stamp", "IN and OUT must both be sequence patterns (%%04d or "
                                        "####), or both files");
    if (range && !seq)
        return cli_usage_error("stamp", "--frames needs a sequence pattern (IN.####.png)");
    if (seq && ledger_path)
        return cli_usage_error("stamp", "--ledger takes one file; a sequence is recorded "
                                        "frame by frame with one stamp -l call per frame");
    if (ledger_path) {
        if (!rec.operator_name)
            rec.operator_name = getenv("USER") ? getenv("USER") : "";
        rec.profile = cm_profile_name(sp.profile);
        rec.strength = sp.strength;
        rec.cel_safe = sp.cel_safe;
        rec.layer = "luma";
    }

    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    cm_stamper *st = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = cli_load_key(ctx, key_path, &key);
    if (code)
        goto done;
    if (ledger_path) {
        code = stamp_with_ledger(ctx, key, ledger_path, &rec, &sp, in, out, force, &vo);
        goto done;
    }
    stamped res;
    int ret = cm_stamper_new(ctx, key, id, &sp, &st);
    stamp_job job = {st, key, id, sp.cel_safe, NULL};
    if (!ret && seq) {
        code = stamp_sequence(ctx, &job, in, out, range, force, &vo);
        cm_verifier_free(&job.ver);
        goto done;
    }
    if (!ret)
        ret = stamp_file(ctx, &job, in, out, out, force ? CM_WRITE_FORCE : 0, &vo, &res);
    cm_verifier_free(&job.ver);
    if (ret)
        code = cli_fail(ctx, ret);
    else
        print_result(&res);
done:
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
