/* celmark info: describe image files like ffprobe / iinfo. */
#include "cli.h"

#include <getopt.h>
#include <string.h>
#include <unistd.h>

static json_t *info_json(const char *path, const cm_image_info *in)
{
    json_t *o = json_object();
    json_object_set_new(o, "schema", json_string("celmark.info/1"));
    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "format", json_string(in->format));
    json_object_set_new(o, "width", json_integer(in->width));
    json_object_set_new(o, "height", json_integer(in->height));
    json_object_set_new(o, "bit_depth", json_integer(in->bit_depth));
    json_object_set_new(o, "color_type", json_string(in->color_type));
    json_object_set_new(o, "channels", json_integer(in->channels));
    json_object_set_new(o, "alpha", json_boolean(in->has_alpha));
    json_object_set_new(o, "interlaced", json_boolean(in->interlaced));
    json_t *tags = json_object();
    for (int i = 0; i < in->ntags; i++)
        json_object_set_new(tags, in->tags[i].key, json_string(in->tags[i].value));
    json_object_set_new(o, "tags", tags);
    return o;
}

static void info_text(const char *path, const cm_image_info *in, int first)
{
    if (!first)
        putchar('\n');
    printf("file: %s\n", path);
    printf("format: %s\n", in->format);
    printf("size: %dx%d\n", in->width, in->height);
    printf("bit_depth: %d\n", in->bit_depth);
    printf("color_type: %s\n", in->color_type);
    printf("channels: %d\n", in->channels);
    printf("alpha: %s\n", in->has_alpha ? "yes" : "no");
    printf("interlaced: %s\n", in->interlaced ? "yes" : "no");
    for (int i = 0; i < in->ntags; i++)
        printf("%s: %s\n", in->tags[i].key, in->tags[i].value);
}

static void add_tag(cm_image_info *info, const char *key, const char *value)
{
    if (info->ntags >= CM_INFO_MAX_TAGS)
        return;
    snprintf(info->tags[info->ntags].key, sizeof(info->tags[0].key), "%s", key);
    snprintf(info->tags[info->ntags].value, sizeof(info->tags[0].value), "%s", value);
    info->ntags++;
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    cm_limits lim;
    cm_limits_default(&lim);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int lr = cli_limit_option("info", c, optarg, &lim);
        if (lr > 0)
            return lr;
        if (lr == 0)
            continue;
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help("info");
            return EXIT_OK;
        case ':':
            return cli_usage_error("info", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("info", "no input file given");

    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int worst = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        cm_image *img = NULL;
        cm_image_info info;
        cm_sequence *seq = NULL;
        cm_media_kind kind = CM_MEDIA_UNKNOWN;
        const char *path = argv[i];
        char first[4096];
        cm_ctx_clear(ctx);
        int ret = CM_OK;
        if (cm_sequence_is_pattern(path) && access(path, F_OK) != 0) {
            /* a sequence: its first frame, and how many there are */
            ret = cm_sequence_open(ctx, path, NULL, &seq);
            if (!ret)
                ret = cm_sequence_path(seq, 0, first, sizeof(first));
            path = first;
        }
        if (!ret)
            ret = cm_media_probe(ctx, path, &kind);
        if (!ret && kind == CM_MEDIA_VIDEO) {
            ret = cm_video_get_info(ctx, path, &lim, &info);
        } else if (!ret) {
            ret = cm_image_read(ctx, path, &lim, &img);
            if (!ret)
                ret = cm_image_get_info(img, &info);
        }
        if (!ret && seq) {
            char v[64];
            snprintf(v, sizeof(v), "%zu", seq->nframes);
            add_tag(&info, "sequence_frames", v);
            snprintf(v, sizeof(v), "%lld-%lld", (long long)seq->frames[0],
                     (long long)seq->frames[seq->nframes - 1]);
            add_tag(&info, "sequence_range", v);
        }
        if (ret) {
            int code = cli_fail(ctx, ret);
            if (json)
                cli_print_json_error("celmark.info/1", argv[i], cm_ctx_last_error(ctx));
            if (code > worst)
                worst = code;
        } else if (json) {
            cli_print_json(info_json(argv[i], &info));
        } else {
            info_text(argv[i], &info, i == optind);
        }
        cm_image_free(&img);
        cm_sequence_free(&seq);
    }
    cm_ctx_free(&ctx);
    return worst;
}
