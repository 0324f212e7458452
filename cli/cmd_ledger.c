/* celmark ledger list|show|export|verify: read and check the issue ledger,
 * its stamped copies and its delegations in one chain. */
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
    json_t *chain = json_array();
    for (int i = 0; i < r->chain_len; i++)
        json_array_append_new(chain, cli_cert_json(&r->chain[i]));
    json_object_set_new(o, "chain", chain); /* [] for a studio key's row */
    return o;
}

static void pub_fingerprint(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                            char fp[CM_KEY_FINGERPRINT_CHARS + 1])
{
    if (cm_ledger_fingerprint(pub, fp))
        snprintf(fp, CM_KEY_FINGERPRINT_CHARS + 1, "?");
}

static json_t *delegation_json(const cm_ledger_delegation *d)
{
    char h[129], fp[CM_KEY_FINGERPRINT_CHARS + 1];
    const cm_key_cert *c = &d->cert;
    json_t *o = json_object();
    json_object_set_new(o, "schema", json_string("celmark.ledger-delegation/1"));
    json_object_set_new(o, "seq", json_integer(d->seq));
    json_object_set_new(o, "kind", json_string("delegation"));
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "layer", json_integer(c->layer));
    json_object_set_new(o, "date", json_string(c->date));
    pub_fingerprint(c->subject_pub, fp);
    json_object_set_new(o, "subject_fingerprint", json_string(fp));
    hexstr(c->subject_pub, CM_KEY_PUBLIC_BYTES, h);
    json_object_set_new(o, "subject_public", json_string(h));
    hexstr(c->commitment, CM_KEY_COMMITMENT_BYTES, h);
    json_object_set_new(o, "commitment", json_string(h));
    pub_fingerprint(c->issuer_pub, fp);
    json_object_set_new(o, "issuer_fingerprint", json_string(fp));
    hexstr(c->signature, 64, h);
    json_object_set_new(o, "certificate_signature", json_string(h));
    json_object_set_new(o, "recorded_at", json_string(d->recorded_at));
    json_object_set_new(o, "tool_version", json_string(d->tool_version));
    json_object_set_new(o, "key_fingerprint", json_string(d->key_fingerprint));
    hexstr(d->prev_hash, 32, h);
    json_object_set_new(o, "prev_hash", json_string(h));
    hexstr(d->signature, 64, h);
    json_object_set_new(o, "signature", json_string(h));
    json_t *chain = json_array();
    for (int i = 0; i < d->chain_len; i++)
        json_array_append_new(chain, cli_cert_json(&d->chain[i]));
    json_object_set_new(o, "chain", chain); /* the delegating key's own */
    json_object_set_new(o, "signature_ok", json_boolean(d->sig_ok));
    return o;
}

/* Issue rows from cm_ledger_list with the delegation rows between them, in
 * chain order. */
typedef struct listing {
    cm_ledger_delegation *d;
    size_t n, next;
    int json;
} listing;

static void print_delegation(const listing *l, const cm_ledger_delegation *d)
{
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    if (l->json) {
        cli_print_json(delegation_json(d));
        return;
    }
    pub_fingerprint(d->cert.subject_pub, fp);
    printf("%lld\tdelegation\t%s\t%s\tlayer %d key %s\n", (long long)d->seq, d->cert.date,
           d->cert.name, d->cert.layer, fp);
}

/* The delegations before seq (all: INT64_MAX). */
static void flush_delegations(listing *l, int64_t seq)
{
    while (l->next < l->n && l->d[l->next].seq < seq)
        print_delegation(l, &l->d[l->next++]);
}

static int print_json_row(void *user, const cm_ledger_row *r)
{
    if (user)
        flush_delegations(user, r->seq);
    cli_print_json(row_json(r));
    return 0;
}

static int print_text_row(void *user, const cm_ledger_row *r)
{
    char id[17];
    if (user)
        flush_delegations(user, r->seq);
    cli_format_id(r->issue_id, id);
    printf("%lld\t%s\t%s\t%s\t%s\n", (long long)r->seq, id, r->stamped_at, r->recipient,
           r->asset);
    return 0;
}

/* Every row of both kinds (list without a filter, export --format jsonl). */
static int list_all(cm_ctx *ctx, cm_ledger *lg, int json)
{
    listing l = {NULL, 0, 0, json};
    int ret = cm_ledger_delegations(ctx, lg, &l.d, &l.n);
    if (!ret)
        ret = cm_ledger_list(ctx, lg, NULL, NULL, json ? print_json_row : print_text_row, &l);
    if (!ret)
        flush_delegations(&l, INT64_MAX);
    free(l.d);
    return ret;
}

/* ledger show --delegate NAME: every delegation to NAME. */
static int show_delegations(cm_ctx *ctx, cm_ledger *lg, const char *db, const char *name,
                            int json, int *code)
{
    cm_ledger_delegation *dl = NULL;
    size_t n = 0, shown = 0;
    int ret = cm_ledger_delegations(ctx, lg, &dl, &n);
    for (size_t i = 0; !ret && i < n; i++) {
        const cm_ledger_delegation *d = &dl[i];
        if (strcmp(d->cert.name, name))
            continue;
        if (json) {
            cli_print_json(delegation_json(d));
        } else {
            char fp[CM_KEY_FINGERPRINT_CHARS + 1], h[65];
            if (shown)
                putchar('\n');
            printf("seq: %lld\nkind: delegation\nname: %s\nlayer: %d\ndate: %s\n",
                   (long long)d->seq, d->cert.name, d->cert.layer, d->cert.date);
            pub_fingerprint(d->cert.subject_pub, fp);
            hexstr(d->cert.subject_pub, CM_KEY_PUBLIC_BYTES, h);
            printf("subject_fingerprint: %s\ned25519_public: %s\n", fp, h);
            pub_fingerprint(d->cert.issuer_pub, fp);
            printf("issuer_fingerprint: %s\nkey_fingerprint: %s\n", fp, d->key_fingerprint);
            printf("recorded_at: %s\ntool_version: %s\n", d->recorded_at, d->tool_version);
            for (int k = 0; k < d->chain_len; k++)
                cli_cert_text("cert", &d->chain[k]);
            printf("signature: %s\n", d->sig_ok ? "ok" : "BAD");
        }
        shown++;
    }
    free(dl);
    if (!ret && !shown) {
        fprintf(stderr, "celmark: %s: no delegation to this name in the ledger\n", db);
        *code = EXIT_FAIL;
    }
    return ret;
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
        {"delegate", required_argument, NULL, 'D'},
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
    const char *delegate = NULL;
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
        case 'D':
            delegate = optarg;
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
    if (delegate && strcmp(sub, "show"))
        return cli_usage_error("ledger", "--delegate is for ledger show");
    if (strcmp(sub, "show") == 0 && delegate) {
        if (nargs != 0)
            return cli_usage_error("ledger", "ledger show takes an issue id or --delegate NAME, "
                                             "not both");
    } else if (strcmp(sub, "show") == 0) {
        if (nargs != 1)
            return cli_usage_error("ledger", "ledger show needs one issue id (or --delegate "
                                             "NAME)");
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
        if (recipient || asset) /* delegation rows have neither */
            ret = cm_ledger_list(ctx, lg, recipient, asset,
                                 json ? print_json_row : print_text_row, NULL);
        else
            ret = list_all(ctx, lg, json);
    } else if (strcmp(sub, "export") == 0) {
        if (strcmp(format, "csv") == 0) {
            printf("seq,issue_id,recipient,asset,note,stamped_at,operator,input_sha256,"
                   "output_sha256,output_path,output_size,width,height,profile,strength,"
                   "cel_safe,layer,tool_version,key_fingerprint,prev_hash,signature\n");
            ret = cm_ledger_list(ctx, lg, recipient, asset, print_csv_row, NULL);
        } else if (recipient || asset) {
            ret = cm_ledger_list(ctx, lg, recipient, asset, print_json_row, NULL);
        } else {
            ret = list_all(ctx, lg, 1);
        }
    } else if (strcmp(sub, "show") == 0 && delegate) {
        ret = show_delegations(ctx, lg, db, delegate, json, &code);
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
            int chain_ok = r.chain_len != 0 && cm_ledger_row_chain_ok(&r, NULL) == 1;
            if (json) {
                json_t *o = row_json(&r);
                json_object_set_new(o, "signature_ok", json_boolean(sig == 1));
                json_object_set_new(o, "chain_ok",
                                    r.chain_len ? json_boolean(chain_ok) : json_null());
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
                printf("signer_layer: %d\n", r.chain_len > 0 ? r.chain_len : 0);
                if (r.chain_len > 0) {
                    char root[CM_KEY_FINGERPRINT_CHARS + 1];
                    pub_fingerprint(r.chain[0].issuer_pub, root);
                    printf("signer_name: %s\nroot_fingerprint: %s\n",
                           r.chain[r.chain_len - 1].name, root);
                    for (int k = 0; k < r.chain_len; k++)
                        cli_cert_text("cert", &r.chain[k]);
                }
                if (r.chain_len)
                    printf("chain: %s\n", chain_ok ? "ok" : "BAD");
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
                json_object_set_new(o, "delegations", json_integer(rep.delegations));
                json_object_set_new(o, "delegated_rows", json_integer(rep.delegated));
                json_object_set_new(o, "key_fingerprint", json_string(fp));
                json_object_set_new(o, "other_signer_rows", json_integer(rep.other_signer));
                json_object_set_new(o, "pending", json_integer(rep.pending));
                if (!rep.ok) {
                    int issue = rep.bad_kind == CM_LEDGER_ROW_ISSUE;
                    cli_format_id(rep.bad_issue_id, idh);
                    json_object_set_new(o, "first_bad_row", json_integer(rep.bad_seq));
                    json_object_set_new(o, "first_bad_kind",
                                        json_string(issue ? "issue" : "delegation"));
                    json_object_set_new(o, "first_bad_issue_id",
                                        issue ? json_string(idh) : json_null());
                    json_object_set_new(o, "reason", json_string(rep.reason));
                }
                cli_print_json(o);
            } else {
                printf("ledger: %s\nrows: %lld\ndelegations: %lld\ndelegated_rows: %lld\n"
                       "key_fingerprint: %s\n",
                       db, (long long)rep.rows, (long long)rep.delegations,
                       (long long)rep.delegated, fp);
                if (rep.pending)
                    printf("pending: %lld\n", (long long)rep.pending);
                printf("status: %s\n", rep.ok ? "ok" : "TAMPERED");
                if (!rep.ok) {
                    char idh[17];
                    cli_format_id(rep.bad_issue_id, idh);
                    printf("first_bad_row: %lld\n", (long long)rep.bad_seq);
                    if (rep.bad_kind == CM_LEDGER_ROW_ISSUE)
                        printf("issue_id: %s\n", idh);
                    else
                        printf("kind: delegation\n");
                    printf("reason: %s\n", rep.reason);
                }
            }
            if (rep.other_signer)
                fprintf(stderr,
                        "celmark: warning: %s: %lld rows were signed with another key than %s "
                        "or one it delegated to\n",
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
