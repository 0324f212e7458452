/* celmark stamp: embed a recipient's issue id into a copy of a frame. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cmd_stamp(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"id", required_argument, NULL, 'i'},
        {"strength", required_argument, NULL, 's'},
        {"profile", required_argument, NULL, 'p'},
        {"cel-safe", no_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *id_str = NULL;
    cm_stamp_params sp;
    cm_stamp_params_default(&sp);
    int force = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:fh", opts, NULL)) != -1) {
        switch (c) {
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
    uint64_t id;
    if (!id_str)
        return cli_usage_error("stamp", "no issue id given (--id HEX16)");
    if (cli_parse_id(id_str, &id))
        return cli_usage_error("stamp", "--id must be 16 hex digits, not '%s'", id_str);
    if (argc - optind != 2)
        return cli_usage_error("stamp", "expected IN and OUT files");
    const char *in = argv[optind], *out = argv[optind + 1];

    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    cm_image *img = NULL;
    cm_stamper *st = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = cli_load_key(ctx, key_path, &key);
    if (code)
        goto done;
    int ret = cm_image_read(ctx, in, NULL, &img);
    if (!ret)
        ret = cm_stamper_new(ctx, key, id, &sp, &st);
    if (!ret)
        ret = cm_stamper_image(st, img);
    if (!ret) {
        cm_image_info info;
        if (!cm_image_get_info(img, &info) && info.converted)
            fprintf(stderr, "celmark: %s: %s source written as %s\n", in, info.color_type,
                    img->has_alpha ? "RGBA" : (img->channels >= 3 ? "RGB" : "grey"));
        ret = cm_image_write(ctx, img, out, force ? CM_WRITE_FORCE : 0);
    }
    if (ret)
        code = cli_fail(ctx, ret);
done:
    cm_stamper_free(&st);
    cm_image_free(&img);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
