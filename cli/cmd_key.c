/* celmark key info KEYFILE: what a key file is, without revealing it.
 * celmark key delegate -k KEY -l LEDGER --to NAME OUT: a vendor's key one
 * layer down, recorded in the delegating key's ledger. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporary names to try for a new key file before giving up. */
#define TEMP_TRIES 16

static void fingerprint(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                        char fp[CM_KEY_FINGERPRINT_CHARS + 1])
{
    if (cm_ledger_fingerprint(pub, fp))
        snprintf(fp, CM_KEY_FINGERPRINT_CHARS + 1, "?");
}

void cli_cert_text(const char *label, const cm_key_cert *c)
{
    char issuer[CM_KEY_FINGERPRINT_CHARS + 1], subject[CM_KEY_FINGERPRINT_CHARS + 1];
    fingerprint(c->issuer_pub, issuer);
    fingerprint(c->subject_pub, subject);
    printf("%s: layer=%d date=%s issuer=%s subject=%s name=%s\n", label, c->layer, c->date, issuer,
           subject, c->name);
}

json_t *cli_cert_json(const cm_key_cert *c)
{
    char issuer[CM_KEY_FINGERPRINT_CHARS + 1], subject[CM_KEY_FINGERPRINT_CHARS + 1];
    fingerprint(c->issuer_pub, issuer);
    fingerprint(c->subject_pub, subject);
    json_t *o = json_object();
    json_object_set_new(o, "layer", json_integer(c->layer));
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "date", json_string(c->date));
    json_object_set_new(o, "issuer_fingerprint", json_string(issuer));
    json_object_set_new(o, "subject_fingerprint", json_string(subject));
    return o;
}

static int key_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
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
        char fp[CM_KEY_FINGERPRINT_CHARS + 1], root[CM_KEY_FINGERPRINT_CHARS + 1];
        char pubhex[2 * CM_KEY_PUBLIC_BYTES + 1];
        uint8_t pub[CM_KEY_PUBLIC_BYTES];
        int layer = 0;
        const cm_key_cert *chain = cm_key_chain(key, &layer);
        cm_key_fingerprint(key, fp);
        cm_key_public(key, pub);
        for (int i = 0; i < CM_KEY_PUBLIC_BYTES; i++)
            snprintf(pubhex + 2 * i, 3, "%02x", pub[i]);
        fingerprint(layer ? chain[0].issuer_pub : pub, root);
        if (json) {
            json_t *o = json_object(), *a = json_array();
            json_object_set_new(o, "schema", json_string("celmark.key/1"));
            json_object_set_new(o, "file", json_string(path));
            json_object_set_new(o, "fingerprint", json_string(fp));
            json_object_set_new(o, "ed25519_public", json_string(pubhex));
            json_object_set_new(o, "layer", json_integer(layer));
            json_object_set_new(o, "name", layer ? json_string(cm_key_name(key)) : json_null());
            json_object_set_new(o, "root_fingerprint", json_string(root));
            for (int i = 0; i < layer; i++)
                json_array_append_new(a, cli_cert_json(&chain[i]));
            json_object_set_new(o, "chain", a);
            cli_print_json(o);
        } else {
            printf("key: %s\nfingerprint: %s\ned25519_public: %s\nlayer: %d\n", path, fp, pubhex,
                   layer);
            if (layer) {
                printf("name: %s\nroot_fingerprint: %s\n", cm_key_name(key), root);
                for (int i = 0; i < layer; i++)
                    cli_cert_text("cert", &chain[i]);
            }
        }
    }
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}

/* The folder of path ("." when none) into dir. 0, or -1 when too long. */
static int dir_of(const char *path, char dir[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    if (n >= PATH_MAX)
        return -1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Save key to a new hidden file beside out (DIR/.BASE.tmp-XXXXXX, mode
 * 0600): its name into tmp. An exit code; the error is printed. */
static int save_temp(cm_ctx *ctx, const cm_key *key, const char *out, const char *dir,
                     char tmp[PATH_MAX])
{
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    for (int t = 0; t < TEMP_TRIES; t++) {
        /* mkstemp picks an unused name; cm_key_save creates it again with
         * O_EXCL (so a name taken meanwhile fails, and we try another) */
        if ((size_t)snprintf(tmp, PATH_MAX, "%s/.%s.tmp-XXXXXX", dir, base) >= PATH_MAX) {
            fprintf(stderr, "celmark: %s: path too long; choose a shorter name\n", out);
            return EXIT_INPUT;
        }
        int fd = mkstemp(tmp);
        if (fd < 0) {
            fprintf(stderr, "celmark: %s: cannot create the key file: %s; %s\n", out,
                    strerror(errno), cli_write_advice(errno));
            return EXIT_INPUT;
        }
        close(fd);
        unlink(tmp);
        int ret = cm_key_save(ctx, key, tmp);
        if (ret != CM_E_EXISTS)
            return ret ? cli_fail(ctx, ret) : EXIT_OK;
    }
    fprintf(stderr, "celmark: %s: cannot find an unused temporary name; try again\n", out);
    return EXIT_INPUT;
}

/* Move tmp to out, never replacing a file. An exit code; error printed. */
static int move_into_place(const char *tmp, const char *out)
{
    if (link(tmp, out) == 0) {
        unlink(tmp);
        return EXIT_OK;
    }
    int err = errno;
    if (err == EEXIST || access(out, F_OK) == 0) {
        fprintf(stderr,
                "celmark: %s: already exists; refusing to overwrite a key; choose "
                "another file name\n",
                out);
        unlink(tmp);
        return EXIT_INPUT;
    }
    /* No hard links on this file system: checked, now rename. */
    if (rename(tmp, out) == 0)
        return EXIT_OK;
    err = errno;
    fprintf(stderr, "celmark: %s: cannot create the key file: %s; %s\n", out, strerror(err),
            cli_write_advice(err));
    unlink(tmp);
    return EXIT_INPUT;
}

/* The seq of the delegation row naming pub (the newest), or 0. */
static int64_t delegation_row(cm_ctx *ctx, cm_ledger *lg, const uint8_t pub[CM_KEY_PUBLIC_BYTES])
{
    cm_ledger_delegation *d = NULL;
    size_t n = 0;
    int64_t seq = 0;
    if (cm_ledger_delegations(ctx, lg, &d, &n) == CM_OK)
        for (size_t i = 0; i < n; i++)
            if (!memcmp(d[i].cert.subject_pub, pub, CM_KEY_PUBLIC_BYTES))
                seq = d[i].seq;
    free(d);
    return seq;
}

/*
 * The delegate's key file and its ledger row appear together or not at
 * all: the key is written to a hidden temporary file first; then, inside
 * one ledger transaction, the row is added and the file linked into place
 * (never replacing a file), and the transaction commits. Any failure rolls
 * the row back and removes the files; only a crash between the link and
 * the commit can leave the key without its row.
 */
static int key_delegate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'}, {"ledger", required_argument, NULL, 'l'},
        {"to", required_argument, NULL, 't'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *db = NULL, *name = NULL;
    int json = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":k:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 'l':
            db = optarg;
            break;
        case 't':
            name = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help("key");
            return EXIT_OK;
        case ':':
            return cli_usage_error("key", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("key", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!key_path)
        return cli_usage_error("key", "key delegate needs the delegating key (-k KEYFILE)");
    if (!db)
        return cli_usage_error("key", "key delegate needs its ledger (-l LEDGER)");
    if (!name)
        return cli_usage_error("key", "key delegate needs the delegate's name (--to NAME)");
    if (optind != argc - 1)
        return cli_usage_error("key", optind >= argc ? "key delegate needs the new key's file"
                                                     : "key delegate takes one new key file");
    const char *out = argv[optind];

    /* Refuse before anything is created or loaded. */
    struct stat sb;
    char dir[PATH_MAX], tmp[PATH_MAX] = "";
    if (lstat(out, &sb) == 0) {
        fprintf(stderr,
                "celmark: %s: already exists; refusing to overwrite a key; choose "
                "another file name\n",
                out);
        return EXIT_INPUT;
    }
    if (dir_of(out, dir) || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "celmark: %s: cannot create the key file: no folder %s; create it first\n",
                out, dir);
        return EXIT_INPUT;
    }

    cm_ctx *ctx = NULL;
    cm_key *parent = NULL, *child = NULL;
    cm_ledger *lg = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = cli_load_key(ctx, key_path, &parent);
    if (code)
        goto done;
    if (cm_key_layer(parent) >= CM_KEY_MAX_LAYER) {
        fprintf(stderr,
                "celmark: %s: a layer %d key cannot delegate: a chain goes at most %d "
                "layers below the studio's key; delegate from a key higher up\n",
                key_path, cm_key_layer(parent), CM_KEY_MAX_LAYER);
        code = EXIT_INPUT;
        goto done;
    }
    int ret = cm_key_delegate(ctx, parent, name, NULL, &child);
    if (ret == CM_E_INVAL) { /* the name: the other causes are checked above */
        code = cli_usage_error("key",
                               "--to: a delegate's name must be 1 to %d bytes of UTF-8 "
                               "without control characters or '/'",
                               CM_KEY_NAME_MAX);
        goto done;
    }
    if (ret) {
        code = cli_fail(ctx, ret);
        goto done;
    }
    ret = cm_ledger_open(ctx, db, CM_LEDGER_CREATE, &lg);
    if (ret) {
        code = cli_fail(ctx, ret);
        goto done;
    }
    if ((code = save_temp(ctx, child, out, dir, tmp)))
        goto done;
    ret = cm_ledger_begin(ctx, lg);
    if (!ret)
        ret = cm_ledger_add_delegation(ctx, lg, parent, child);
    if (ret) {
        code = cli_fail(ctx, ret);
        goto done;
    }
    if ((code = move_into_place(tmp, out)))
        goto done;
    tmp[0] = '\0';
    sync_dir(dir);
    if ((ret = cm_ledger_commit(ctx, lg))) {
        unlink(out);
        sync_dir(dir);
        code = cli_fail(ctx, ret);
        goto done;
    }

    char fp[CM_KEY_FINGERPRINT_CHARS + 1], issuer[CM_KEY_FINGERPRINT_CHARS + 1];
    char root[CM_KEY_FINGERPRINT_CHARS + 1];
    uint8_t pub[CM_KEY_PUBLIC_BYTES];
    int layer = 0;
    const cm_key_cert *chain = cm_key_chain(child, &layer);
    cm_key_fingerprint(child, fp);
    cm_key_fingerprint(parent, issuer);
    fingerprint(chain[0].issuer_pub, root);
    cm_key_public(child, pub);
    int64_t seq = delegation_row(ctx, lg, pub);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "schema", json_string("celmark.key-delegate/1"));
        json_object_set_new(o, "key", json_string(out));
        json_object_set_new(o, "name", json_string(cm_key_name(child)));
        json_object_set_new(o, "layer", json_integer(layer));
        json_object_set_new(o, "fingerprint", json_string(fp));
        json_object_set_new(o, "issuer_fingerprint", json_string(issuer));
        json_object_set_new(o, "root_fingerprint", json_string(root));
        json_object_set_new(o, "ledger", json_string(db));
        json_object_set_new(o, "ledger_row", json_integer(seq));
        cli_print_json(o);
    } else {
        printf("key: %s\nname: %s\nlayer: %d\nfingerprint: %s\nissuer_fingerprint: %s\n"
               "root_fingerprint: %s\nledger: %s\nledger_row: %lld\n",
               out, cm_key_name(child), layer, fp, issuer, root, db, (long long)seq);
    }
done:
    if (tmp[0])
        unlink(tmp);
    cm_ledger_close(&lg); /* rolls back a transaction left open */
    cm_key_free(&child);
    cm_key_free(&parent);
    cm_ctx_free(&ctx);
    return code;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("key", "no subcommand given (info, delegate)");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cli_print_help("key");
        return EXIT_OK;
    }
    if (strcmp(argv[1], "info") == 0)
        return key_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "delegate") == 0)
        return key_delegate(argc - 1, argv + 1);
    return cli_usage_error("key", "unknown subcommand '%s' (info, delegate)", argv[1]);
}
