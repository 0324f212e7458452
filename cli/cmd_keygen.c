/* celmark keygen KEYFILE: a new studio key (watermark secret + signing key). */
#include "cli.h"

#include <getopt.h>

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            cli_print_help("keygen");
            return EXIT_OK;
        }
        return cli_usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage_error("keygen", optind >= argc ? "no key file given"
                                                        : "exactly one key file expected");
    const char *path = argv[optind];
    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    cli_protect_key_memory();
    int ret = cm_key_generate(ctx, &key);
    if (!ret)
        ret = cm_key_save(ctx, key, path);
    if (!ret)
        ret = cm_key_fingerprint(key, fp);
    int code = EXIT_OK;
    if (ret) {
        code = cli_fail(ctx, ret);
    } else {
        printf("key: %s\n", path);
        printf("fingerprint: %s\n", fp);
    }
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
