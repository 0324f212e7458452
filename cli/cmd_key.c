/* celmark key info KEYFILE: what a key file is, without revealing it. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

int cmd_key(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        return cli_usage_error("key", "no subcommand given (info)");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cli_print_help("key");
        return EXIT_OK;
    }
    if (strcmp(argv[1], "info") != 0)
        return cli_usage_error("key", "unknown subcommand '%s' (info)", argv[1]);
    argc--;
    argv++;
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'h') {
            cli_print_help("key");
            return EXIT_OK;
        } else {
            return cli_usage_error("key", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("key", "key info needs exactly one key file");
    const char *path = argv[optind];
    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = cli_load_key(ctx, path, &key);
    if (!code) {
        char fp[CM_KEY_FINGERPRINT_CHARS + 1], pubhex[2 * CM_KEY_PUBLIC_BYTES + 1];
        uint8_t pub[CM_KEY_PUBLIC_BYTES];
        cm_key_fingerprint(key, fp);
        cm_key_public(key, pub);
        for (int i = 0; i < CM_KEY_PUBLIC_BYTES; i++)
            snprintf(pubhex + 2 * i, 3, "%02x", pub[i]);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "schema", json_string("celmark.key/1"));
            json_object_set_new(o, "file", json_string(path));
            json_object_set_new(o, "fingerprint", json_string(fp));
            json_object_set_new(o, "ed25519_public", json_string(pubhex));
            cli_print_json(o);
        } else {
            printf("key: %s\nfingerprint: %s\ned25519_public: %s\n", path, fp, pubhex);
        }
    }
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
