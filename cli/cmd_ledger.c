/* celmark ledger list|show|export|verify: read and check the issue ledger. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void hexstr(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static json_t *row_json(const cm_ledger_row *r)
{
    char id[17], h[129];
    json_t *o = json_object();
    json_object_set_new(o, "schema", json_string("celmark.ledger/1"));
    json_object_set_new(o, "seq", json_integer(r->seq));
    cli_format_id(r->issue_id, id);
    json_object_set_new(o, "issue_id", json_string(id));
    json_object_set_new(o, "recipient", json_string(r->recipient));
    json_object_set_new(o, "asset", json_string(r->asset));
    json_object_set_new(o, "note", json_string(r->note));
    json_object_set_new(o, "stamped_at", json_string(r->stamped_at));
    json_object_set_new(o, "operator", json_string(r->operator_name));
    hexstr(r->input_sha256, 32, h);
    json_object_set_new(o, "input_sha256", json_string(h));
    hexstr(r->output_sha256, 32, h);
    json_object_set_new(o, "output_sha256", json_string(h));
    json_object_set_new(o, "output_path", json_string(r->output_path));
    json_object_set_new(o, "output_size", json_integer(r->output_size));
    json_object_set_new(o, "width", json_integer(r->width));
    json_object_set_new(o, "height", json_integer(r->height));
    json_object_set_new(o, "profile", json_string(r->profile));
    json_object_set_new(o, "strength", json_real(r->strength));
    json_object_set_new(o, "cel_safe", json_boolean(r->cel_safe));
    json_object_set_new(o, "layer", json_string(r->layer));
    json_object_set_new(o, "tool_version", json_string(r->tool_version));
    json_object_set_new(o, "key_fingerprint", json_string(r->key_fingerprint));
    hexstr(r->prev_hash, 32, h);
    json_object_set_new(o, "prev_hash", json_string(h));
    hexstr(r->signature, 64, h);
    json_object_set_new(o, "signature", json_string(h));
    return o;
}

static int print_json_row(void *user, const cm_ledger_row *r)
{
    (void)user;
    cli_print_json(row_json(r));
    return 0;
}

static int print_text_row(void *user, const cm_ledger_row *r)
{
    char id[17];
    (void)user;
    cli_format_id(r->issue_id, id);
    printf("%lld\t%s\t%s\t%s\t%s\n", (long long)r->seq, id, r->stamped_at, r->recipient,
           r->asset);
    return 0;
}

/* RFC 4180: quote every text field, double the quotes inside. */
static void csv_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static int print_csv_row(void *user, const cm_ledger_row *r)
{
    char id[17], h[129];
    (void)user;
    cli_format_id(r->issue_id, id);
    printf("%lld,%s,", (long long)r->seq, id);
    csv_str(r->recipient);
    putchar(',');
    csv_str(r->asset);
    putchar(',');
    csv_str(r->note);
    printf(",%s,", r->stamped_at);
    csv_str(r->operator_name);
    hexstr(r->input_sha256, 32, h);
    printf(",%s,", h);
    hexstr(r->output_sha256, 32, h);
    printf("%s,", h);
    csv_str(r->output_path);
    printf(",%lld,%d,%d,%s,%.9g,%d,%s,", (long long)r->output_size, r->width, r->height,
           r->profile, r->strength, r->cel_safe, r->layer);
    csv_str(r->tool_version);
    printf(",%s,", r->key_fingerprint);
    hexstr(r->prev_hash, 32, h);
    printf("%s,", h);
    hexstr(r->signature, 64, h);
    printf("%s\n", h);
    return 0;
}

static int open_ledger(cm_ctx *ctx, const char *path, cm_ledger **lg)
{
    int ret = cm_ledger_open(ctx, path, 0, lg);
    return ret ? cli_fail(ctx, ret) : EXIT_OK;
}

int cmd_ledger(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ledger", required_argument, NULL, 'l'},
        {"key", required_argument, NULL, 'k'},
        {"recipient", required_argument, NULL, 'r'},
        {"asset", required_argument, NULL, 'a'},
        {"format", required_argument, NULL, 'F'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        return cli_usage_error("ledger", "no subcommand given (list, show, export, verify)");
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        cli_print_help("ledger");
        return EXIT_OK;
    }
    if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "export") &&
        strcmp(sub, "verify"))
        return cli_usage_error("ledger", "unknown subcommand '%s' (list, show, export, verify)",
                               sub);
    const char *db = NULL, *key_path = NULL, *recipient = NULL, *asset = NULL, *format = NULL;
    int json = 0, c;
    argc--;
    argv++;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":l:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            db = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'r':
            recipient = optarg;
            break;
        case 'a':
            asset = optarg;
            break;
        case 'F':
            format = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help("ledger");
            return EXIT_OK;
        case ':':
            return cli_usage_error("ledger", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("ledger", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!db)
        return cli_usage_error("ledger", "no ledger given (-l LEDGER)");
    int nargs = argc - optind;
    uint64_t id = 0;
    if (strcmp(sub, "show") == 0) {
        if (nargs != 1)
            return cli_usage_error("ledger", "ledger show needs one issue id");
        if (cli_parse_id(argv[optind], &id))
            return cli_usage_error("ledger", "issue id must be 16 hex digits, not '%s'",
                                   argv[optind]);
    } else if (nargs != 0) {
        return cli_usage_error("ledger", "unexpected argument '%s'", argv[optind]);
    }
    if (strcmp(sub, "export") == 0 &&
        (!format || (strcmp(format, "csv") && strcmp(format, "jsonl"))))
        return cli_usage_error("ledger", "ledger export needs --format csv or --format jsonl");
    if (strcmp(sub, "verify") == 0 && !key_path)
        return cli_usage_error("ledger", "ledger verify needs the key (-k KEYFILE)");

    cm_ctx *ctx = NULL;
    cm_ledger *lg = NULL;
    cm_key *key = NULL;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    int code = key_path ? cli_load_key(ctx, key_path, &key) : EXIT_OK;
    if (!code)
        code = open_ledger(ctx, db, &lg);
    if (code)
        goto done;
    int ret = CM_OK;
    if (strcmp(sub, "list") == 0) {
        if (!json)
            printf("seq\tissue_id\tstamped_at\trecipient\tasset\n");
        ret = cm_ledger_list(ctx, lg, recipient, asset, json ? print_json_row : print_text_row,
                             NULL);
    } else if (strcmp(sub, "export") == 0) {
        if (strcmp(format, "csv") == 0) {
            printf("seq,issue_id,recipient,asset,note,stamped_at,operator,input_sha256,"
                   "output_sha256,output_path,output_size,width,height,profile,strength,"
                   "cel_safe,layer,tool_version,key_fingerprint,prev_hash,signature\n");
            ret = cm_ledger_list(ctx, lg, recipient, asset, print_csv_row, NULL);
        } else {
            ret = cm_ledger_list(ctx, lg, recipient, asset, print_json_row, NULL);
        }
    } else if (strcmp(sub, "show") == 0) {
        cm_ledger_row r;
        int f = cm_ledger_get(ctx, lg, id, &r);
        if (f < 0) {
            ret = f;
        } else if (f == 0) {
            fprintf(stderr, "celmark: %s: issue id %s is not in the ledger\n", db, argv[optind]);
            code = EXIT_FAIL;
        } else {
            int sig = cm_ledger_row_signature_ok(&r);
            if (json) {
                json_t *o = row_json(&r);
                json_object_set_new(o, "signature_ok", json_boolean(sig == 1));
                cli_print_json(o);
            } else {
                char h[129], idh[17];
                cli_format_id(r.issue_id, idh);
                printf("seq: %lld\nissue_id: %s\nrecipient: %s\nasset: %s\nnote: %s\n",
                       (long long)r.seq, idh, r.recipient, r.asset, r.note);
                printf("stamped_at: %s\noperator: %s\n", r.stamped_at, r.operator_name);
                hexstr(r.input_sha256, 32, h);
                printf("input_sha256: %s\n", h);
                hexstr(r.output_sha256, 32, h);
                printf("output_sha256: %s\n", h);
                printf("output_path: %s\noutput_size: %lld\nsize: %dx%d\n", r.output_path,
                       (long long)r.output_size, r.width, r.height);
                printf("profile: %s\nstrength: %.9g\ncel_safe: %s\nlayer: %s\n", r.profile,
                       r.strength, r.cel_safe ? "yes" : "no", r.layer);
                printf("tool_version: %s\nkey_fingerprint: %s\n", r.tool_version,
                       r.key_fingerprint);
                printf("signature: %s\n", sig == 1 ? "ok" : "BAD");
            }
            cm_ledger_row_clear(&r);
        }
    } else { /* verify */
        cm_ledger_report rep;
        ret = cm_ledger_check(ctx, lg, key, &rep);
        if (!ret) {
            char fp[CM_KEY_FINGERPRINT_CHARS + 1];
            cm_key_fingerprint(key, fp);
            if (json) {
                char idh[17];
                json_t *o = json_object();
                json_object_set_new(o, "schema", json_string("celmark.ledger-verify/1"));
                json_object_set_new(o, "ledger", json_string(db));
                json_object_set_new(o, "ok", json_boolean(rep.ok));
                json_object_set_new(o, "rows", json_integer(rep.rows));
                json_object_set_new(o, "key_fingerprint", json_string(fp));
                json_object_set_new(o, "other_signer_rows", json_integer(rep.other_signer));
                json_object_set_new(o, "pending", json_integer(rep.pending));
                if (!rep.ok) {
                    cli_format_id(rep.bad_issue_id, idh);
                    json_object_set_new(o, "first_bad_row", json_integer(rep.bad_seq));
                    json_object_set_new(o, "first_bad_issue_id", json_string(idh));
                    json_object_set_new(o, "reason", json_string(rep.reason));
                }
                cli_print_json(o);
            } else {
                printf("ledger: %s\nrows: %lld\nkey_fingerprint: %s\n", db, (long long)rep.rows,
                       fp);
                if (rep.pending)
                    printf("pending: %lld\n", (long long)rep.pending);
                printf("status: %s\n", rep.ok ? "ok" : "TAMPERED");
                if (!rep.ok) {
                    char idh[17];
                    cli_format_id(rep.bad_issue_id, idh);
                    printf("first_bad_row: %lld\nissue_id: %s\nreason: %s\n",
                           (long long)rep.bad_seq, idh, rep.reason);
                }
            }
            if (rep.other_signer)
                fprintf(stderr,
                        "celmark: warning: %s: %lld rows were signed with another key than %s\n",
                        db, (long long)rep.other_signer, key_path);
            if (!rep.ok)
                code = EXIT_FAIL;
        }
    }
    if (ret < 0)
        code = cli_fail(ctx, ret);
done:
    cm_ledger_close(&lg);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return code;
}
