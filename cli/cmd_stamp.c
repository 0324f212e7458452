/* celmark stamp: embed a recipient's issue id into a copy of a frame. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Say on stderr when the output layout differs from the source's (palette
 * or YUV sources are written as RGB/RGBA). */
static void note_conversion(const char *in, const cm_image *img)
{
    cm_image_info info;
    if (!cm_image_get_info(img, &info) && info.converted)
        fprintf(stderr, "celmark: %s: %s source written as %s\n", in, info.color_type,
                img->has_alpha ? "RGBA" : (img->channels >= 3 ? "RGB" : "grey"));
}

/* How to stamp a video (options of the command). */
typedef struct video_opts {
    const char *codec;
    int crf, qscale, quiet;
} video_opts;

/* What stamp_file did, for the ledger row and the report. */
typedef struct stamped {
    int width, height;
    const char *layer;
    int video;
    cm_video_stamp_info vinfo;
} stamped;

/* Stamp in into path (the output, or the ledger's temp file for out):
 * a still through cm_image, a video through cm_video_stamp. */
static int stamp_file(cm_ctx *ctx, cm_stamper *st, const char *in, const char *path,
                      const char *out, int flags, const video_opts *vo, stamped *res)
{
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
        vp.out_name = out;
        cli_progress prog;
        cli_progress_init(&prog, "stamp", vo->quiet);
        vp.progress = cli_progress_update;
        vp.progress_opaque = &prog;
        ret = cm_video_stamp(ctx, st, in, path, &vp, flags, &res->vinfo);
        cli_progress_end(&prog);
        res->video = 1;
        res->width = res->vinfo.width;
        res->height = res->vinfo.height;
        res->layer = "luma";
        return ret;
    }
    cm_image *img = NULL;
    ret = cm_image_read(ctx, in, NULL, &img);
    if (!ret)
        ret = cm_stamper_image(st, img);
    if (!ret) {
        note_conversion(in, img);
        res->width = img->width;
        res->height = img->height;
        /* colour images also carry the blue-yellow share (watermark/embed.c) */
        res->layer = cm_image_is_colour(img) ? "luma+chroma" : "luma";
        ret = cm_image_write(ctx, img, path, flags);
    }
    cm_image_free(&img);
    return ret;
}

static void print_video(const stamped *r)
{
    if (!r->video)
        return;
    printf("frames: %lld\n", (long long)r->vinfo.frames);
    printf("codec: %s\n", r->vinfo.codec);
    printf("pix_fmt: %s\n", r->vinfo.pix_fmt);
    printf("quality: %s\n", r->vinfo.quality);
    printf("streams_copied: %d\n", r->vinfo.streams_copied);
    if (r->vinfo.streams_dropped)
        printf("streams_dropped: %d\n", r->vinfo.streams_dropped);
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
        ret = stamp_file(ctx, st, in, cm_ledger_issue_temp_path(iss), out, CM_WRITE_FORCE, vo,
                         &res);
        rec.width = res.width;
        rec.height = res.height;
        rec.layer = res.layer;
        if (ret == CM_E_UNSUPPORTED || ret == CM_E_IO) {
            /* the message names our temp file: name the output instead */
            const char *detail = cm_ctx_last_error(ctx);
            const char *colon = strstr(detail, ": ");
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", colon ? colon + 2 : detail);
            fprintf(stderr, "celmark: %s: %s\n", out, msg);
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
        print_video(&res);
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *id_str = NULL, *ledger_path = NULL;
    cm_ledger_record rec;
    memset(&rec, 0, sizeof(rec));
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    int force = 0, c;
    video_opts vo = {NULL, -1, -1, 0};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:fqh", opts, NULL)) != -1) {
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
        case 'q':
            vo.quiet = 1;
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
    if (!ret)
        ret = stamp_file(ctx, st, in, out, out, force ? CM_WRITE_FORCE : 0, &vo, &res);
    if (ret)
        code = cli_fail(ctx, ret);
    else
        print_video(&res);
done:
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
