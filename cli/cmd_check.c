/*
 * celmark check: gate files delivered back by vendors in CI.
 *
 * Each file passes when it carries the expected mark and nothing else:
 *
 *   --expect-recipient R  every id claimed (the file's, every copy in a mix, each video
 *                         segment's) is in the ledger, signed, and issued
 *                         to R; at least one is claimed
 *   --expect-issue ID     every id claimed is ID; at least one is claimed
 *   --expect-unmarked     nothing is claimed
 *
 * Segments of a video that claim nothing do not fail a file (a title card
 * or a black frame carries too little evidence); a segment claiming another
 * recipient's id does, and the failure names every id and recipient found.
 *
 * Exit status: 3 when any file (or the key, ledger, JUnit output) is
 * unreadable, else 1 when any file fails, else 0. Unreadable wins because
 * a file nobody could read was not checked at all: CI must not read the
 * run as "only some shots were wrong".
 */
#include "analyze.h"
#include "cli.h"
#include "outfile.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_DEPTH 64 /* folder nesting followed; deeper trees are an error */

typedef enum expect_kind {
    EXPECT_NONE,
    EXPECT_RECIPIENT,
    EXPECT_ISSUE,
    EXPECT_UNMARKED
} expect_kind;

typedef enum outcome { OUT_PASS, OUT_FAIL, OUT_ERROR } outcome;

/* What one file's check found, kept for the JUnit file and the summary. */
typedef struct case_rec {
    char *path;
    outcome result;
    char *message; /* the reason (fail) or the error (unreadable); NULL on pass */
    double seconds;
} case_rec;

/* One distinct id a file claims, with the ledger's word on it. */
typedef struct found_id {
    uint64_t id;
    int in_ledger, sig_ok;
    char recipient[FR_TEXT], asset[FR_TEXT];
    int64_t frames; /* frames of the segments claiming it (video) */
    char where[96]; /* first segment claiming it, "TC-TC" (video) */
} found_id;

typedef struct checker {
    analyzer a;
    expect_kind expect;
    const char *want_recipient;
    uint64_t want_id;
    int json;
    case_rec *cases;
    size_t ncases, cap;
    int64_t skipped;
    int first; /* no file printed yet (text output) */
    int fatal; /* out of memory: stop */
} checker;

static const char *outcome_name(outcome o)
{
    return o == OUT_PASS ? "pass" : (o == OUT_FAIL ? "fail" : "error");
}

/* Add id (with a video segment, or NULL for the file's claim) to the set. */
static size_t add_found(checker *ck, found_id *set, size_t n, size_t max, uint64_t id,
                        const cm_video_segment *seg)
{
    size_t k;
    for (k = 0; k < n; k++)
        if (set[k].id == id)
            break;
    if (k == n) {
        if (n == max)
            return n;
        memset(&set[k], 0, sizeof(set[k]));
        set[k].id = id;
        if (ck->a.lg) {
            cm_ledger_row row;
            memset(&row, 0, sizeof(row));
            if (cm_ledger_get(ck->a.ctx, ck->a.lg, id, &row) == 1) {
                set[k].in_ledger = 1;
                set[k].sig_ok = cm_ledger_row_signature_ok(&row) == 1;
                snprintf(set[k].recipient, sizeof(set[k].recipient), "%s", row.recipient);
                snprintf(set[k].asset, sizeof(set[k].asset), "%s", row.asset);
            }
            cm_ledger_row_clear(&row);
        }
        n++;
    }
    if (seg) {
        set[k].frames += seg->frames;
        if (!set[k].where[0])
            snprintf(set[k].where, sizeof(set[k].where), "%.40s-%.40s", seg->start_tc, seg->end_tc);
    }
    return n;
}

/* Does this id meet the expectation? */
static int id_ok(const checker *ck, const found_id *f)
{
    switch (ck->expect) {
    case EXPECT_ISSUE:
        return f->id == ck->want_id;
    case EXPECT_RECIPIENT: { /* the studio's own layer: R's first name */
        size_t first = strcspn(ck->want_recipient, "/");
        return f->in_ledger && f->sig_ok && strlen(f->recipient) == first &&
               strncmp(f->recipient, ck->want_recipient, first) == 0;
    }
    default:
        return 0;
    }
}

/* "ID (recipient "R") at TC-TC", into buf. */
static void describe(char *buf, size_t size, const found_id *f, int have_ledger)
{
    char hex[17];
    cli_format_id(f->id, hex);
    size_t len = (size_t)snprintf(buf, size, "%s", hex);
    if (len < size) {
        if (f->in_ledger)
            len += (size_t)snprintf(buf + len, size - len, " (recipient \"%s\"%s)", f->recipient,
                                    f->sig_ok ? "" : ", ledger signature BAD");
        else if (have_ledger)
            len += (size_t)snprintf(buf + len, size - len, " (not in ledger)");
    }
    if (len < size && f->where[0])
        snprintf(buf + len, size - len, " at %s", f->where);
}

/* The recipient path of a layer found ("vendor-a" for the studio's own,
 * "vendor-a/sub-x" one layer down) into buf, or 0 when its ledger row is
 * unknown or does not vouch for it. */
static int layer_path(const json_t *o, char *buf, size_t size)
{
    const char *who = json_string_value(json_object_get(o, "recipient"));
    const char *del = json_string_value(json_object_get(o, "delegate"));
    const char *row = json_string_value(json_object_get(o, "ledger_row"));
    if (!who || !row || strcmp(row, "signature ok"))
        return 0;
    snprintf(buf, size, "%s%s%s", del ? del : "", del ? "/" : "", who);
    return 1;
}

/* Is a a path prefix of b, name by name ("vendor-a" of "vendor-a/sub-x")? */
static int path_prefix(const char *a, const char *b)
{
    size_t n = strlen(a);
    return !strncmp(a, b, n) && (b[n] == '\0' || b[n] == '/');
}

/* With --expect-recipient and several layers read: every layer found names
 * a recipient on R's path (R itself, a layer above it, or one below), and
 * one of them is R. Fills reason on fail. */
static outcome decide_layers(const checker *ck, const file_result *r, char *reason, size_t size)
{
    const char *want = ck->want_recipient;
    int exact = 0;
    size_t len = (size_t)snprintf(reason, size, "expected recipient \"%s\", found ", want);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(r->layers); i++) {
        const json_t *o = json_array_get(r->layers, i);
        char path[4 * FR_TEXT];
        int ok = layer_path(o, path, sizeof(path));
        if (ok && !strcmp(path, want))
            exact = 1;
        if (!ok || !(path_prefix(path, want) || path_prefix(want, path)))
            bad = 1;
        if (len < size)
            len += (size_t)snprintf(reason + len, size - len, "%slayer %lld: %s", i ? "; " : "",
                                    (long long)json_integer_value(json_object_get(o, "layer")),
                                    ok ? path : "a copy no ledger given vouches for");
    }
    if (!bad && exact) {
        reason[0] = '\0';
        return OUT_PASS;
    }
    return OUT_FAIL;
}

/* Decide one analysed file: fills *reason on fail. */
static outcome decide(const checker *ck, const file_result *r, const found_id *set, size_t n,
                      char *reason, size_t size)
{
    reason[0] = '\0';
    if (ck->expect == EXPECT_RECIPIENT && r->layers && json_array_size(r->layers))
        return decide_layers(ck, r, reason, size);
    if (ck->expect == EXPECT_RECIPIENT && strchr(ck->want_recipient, '/')) {
        snprintf(reason, size, "expected recipient \"%s\", found no layer below the studio's "
                               "(give the ledgers that record the delegation: -l)",
                 ck->want_recipient);
        return OUT_FAIL;
    }
    if (ck->expect == EXPECT_UNMARKED) {
        if (!n)
            return OUT_PASS;
    } else if (n) {
        int all = 1;
        for (size_t k = 0; k < n; k++)
            all &= id_ok(ck, &set[k]);
        if (all)
            return OUT_PASS;
    }
    size_t len;
    if (ck->expect == EXPECT_UNMARKED)
        len = (size_t)snprintf(reason, size, "expected no mark, found ");
    else if (ck->expect == EXPECT_ISSUE) {
        char hex[17];
        cli_format_id(ck->want_id, hex);
        len = (size_t)snprintf(reason, size, "expected issue_id %s, found ", hex);
    } else {
        len =
            (size_t)snprintf(reason, size, "expected recipient \"%s\", found ", ck->want_recipient);
    }
    if (!n) {
        if (len < size)
            snprintf(reason + len, size - len, "no mark (best score %.2f, fpr %.3g)",
                     r->claim.score, r->claim.fpr);
        return OUT_FAIL;
    }
    for (size_t k = 0; k < n && len < size; k++) {
        char d[FR_TEXT + 160];
        describe(d, sizeof(d), &set[k], ck->a.lg != NULL);
        len += (size_t)snprintf(reason + len, size - len, "%s%s", k ? "; " : "", d);
    }
    return OUT_FAIL;
}

static json_t *found_json(const found_id *f, int video, int have_ledger)
{
    char hex[17];
    cli_format_id(f->id, hex);
    json_t *o = json_object();
    json_object_set_new(o, "issue_id", json_string(hex));
    json_object_set_new(o, "recipient", f->in_ledger ? json_string(f->recipient) : json_null());
    json_object_set_new(o, "asset", f->in_ledger ? json_string(f->asset) : json_null());
    json_object_set_new(
        o, "ledger_row",
        !have_ledger ? json_null()
                     : json_string(!f->in_ledger ? "not in ledger"
                                                 : (f->sig_ok ? "signature ok" : "signature BAD")));
    if (video)
        json_object_set_new(o, "frames", json_integer(f->frames));
    return o;
}

static json_t *expected_json(const checker *ck)
{
    json_t *o = json_object();
    if (ck->expect == EXPECT_RECIPIENT) {
        json_object_set_new(o, "recipient", json_string(ck->want_recipient));
    } else if (ck->expect == EXPECT_ISSUE) {
        char hex[17];
        cli_format_id(ck->want_id, hex);
        json_object_set_new(o, "issue_id", json_string(hex));
    } else {
        json_object_set_new(o, "unmarked", json_true());
    }
    return o;
}

static int record(checker *ck, const char *path, outcome res, const char *msg, double seconds)
{
    if (ck->ncases == ck->cap) {
        size_t cap = ck->cap ? ck->cap * 2 : 64;
        case_rec *p = realloc(ck->cases, cap * sizeof(*p));
        if (!p)
            return -1;
        ck->cases = p;
        ck->cap = cap;
    }
    case_rec *c = &ck->cases[ck->ncases];
    c->path = strdup(path);
    c->message = msg && *msg ? strdup(msg) : NULL;
    c->result = res;
    c->seconds = seconds;
    if (!c->path || (msg && *msg && !c->message)) {
        free(c->path);
        free(c->message);
        return -1;
    }
    ck->ncases++;
    return 0;
}

/* A file or folder that could not be checked: stderr, the output, and a
 * JUnit <error>. */
static void error_case(checker *ck, const char *path, const char *msg, double secs)
{
    /* library errors name the file already */
    size_t pl = strlen(path);
    if (strncmp(msg, path, pl) == 0 && msg[pl] == ':')
        fprintf(stderr, "celmark: %s\n", msg);
    else
        fprintf(stderr, "celmark: %s: %s\n", path, msg);
    if (ck->json) {
        json_t *o = json_object();
        json_object_set_new(o, "schema", json_string("celmark.check/1"));
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "result", json_string("error"));
        json_object_set_new(o, "expected", expected_json(ck));
        json_object_set_new(o, "error", json_string(msg));
        cli_print_json(o);
    } else {
        if (!ck->first)
            putchar('\n');
        ck->first = 0;
        printf("file: %s\n", path);
        printf("result: error\n");
        printf("error: %s\n", msg);
        fflush(stdout);
    }
    if (record(ck, path, OUT_ERROR, msg, secs))
        ck->fatal = 1;
}

/* Check one file. from_dir: found by walking (non-media is skipped). */
static void check_file(checker *ck, const char *path, int from_dir)
{
    file_result r;
    double t0 = cli_now_sec();
    int st = analyze_file(&ck->a, path, &r);
    double secs = cli_now_sec() - t0;
    if (st == CM_OK && r.kind == FILE_OTHER) {
        if (from_dir) {
            ck->skipped++;
            file_result_clear(&r);
            return;
        }
        st = r.status = CM_E_FORMAT;
        snprintf(r.error, sizeof(r.error), "not a recognised image or video format");
    }
    if (st != CM_OK) {
        error_case(ck, path, r.error[0] ? r.error : cm_strerror(st), secs);
        file_result_clear(&r);
        return;
    }

    /* distinct ids claimed: the file's (every copy in a mix), then each
     * segment's */
    enum { MAX_FOUND = 32 };
    found_id set[MAX_FOUND];
    size_t n = 0;
    for (int c = 0; c < r.claim.nclaims; c++)
        n = add_found(ck, set, n, MAX_FOUND, r.claim.claims[c].issue_id, NULL);
    for (size_t i = 0; i < r.nsegments; i++)
        for (int c = 0; c < r.segments[i].result.nclaims; c++)
            n = add_found(ck, set, n, MAX_FOUND, r.segments[i].result.claims[c].issue_id,
                          &r.segments[i]);
    char reason[2048];
    outcome res = decide(ck, &r, set, n, reason, sizeof(reason));
    int video = r.kind == FILE_VIDEO;

    if (ck->json) {
        json_t *o = json_object();
        json_object_set_new(o, "schema", json_string("celmark.check/1"));
        json_object_set_new(o, "file", json_string(path));
        json_object_set_new(o, "result", json_string(outcome_name(res)));
        json_object_set_new(o, "expected", expected_json(ck));
        json_object_set_new(o, "type", json_string(r.type[0] ? r.type : "unknown"));
        json_object_set_new(o, "frames", json_integer(r.frames));
        json_object_set_new(o, "marked", json_boolean(n > 0));
        json_t *arr = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(arr, found_json(&set[k], video, ck->a.lg != NULL));
        json_object_set_new(o, "found", arr);
        if (video)
            json_object_set_new(o, "mixed", json_boolean(r.nids > 1));
        json_object_set_new(o, "score", json_real(r.claim.score));
        json_object_set_new(o, "fpr", json_real(r.claim.fpr));
        json_object_set_new(o, "reason", res == OUT_FAIL ? json_string(reason) : json_null());
        cli_print_json(o);
    } else {
        if (!ck->first)
            putchar('\n');
        ck->first = 0;
        printf("file: %s\n", path);
        printf("result: %s\n", outcome_name(res));
        printf("type: %s\n", r.type[0] ? r.type : "unknown");
        printf("marked: %s\n", n ? "yes" : "no");
        for (size_t k = 0; k < n; k++) {
            char hex[17];
            cli_format_id(set[k].id, hex);
            printf("found: issue_id=%s", hex);
            if (set[k].in_ledger)
                printf(" recipient=\"%s\" asset=\"%s\" ledger_row=%s", set[k].recipient,
                       set[k].asset, set[k].sig_ok ? "ok" : "BAD");
            else if (ck->a.lg)
                printf(" ledger_row=none");
            if (video)
                printf(" frames=%lld", (long long)set[k].frames);
            putchar('\n');
        }
        if (video)
            printf("mixed: %s\n", r.nids > 1 ? "yes" : "no");
        printf("score: %.2f\n", r.claim.score);
        printf("fpr: %.3g\n", r.claim.fpr);
        if (res == OUT_FAIL)
            printf("reason: %s\n", reason);
    }
    fflush(stdout);
    if (record(ck, path, res, res == OUT_FAIL ? reason : NULL, secs))
        ck->fatal = 1;
    file_result_clear(&r);
}

/* Depth-first, names in byte order (the same order on every machine);
 * symlinks are not followed (counted as skipped), as scan does. */
static void walk(checker *ck, const char *dir, int depth)
{
    if (depth > MAX_DEPTH) {
        char msg[128];
        snprintf(msg, sizeof(msg), "folders nested deeper than %d; check a smaller tree",
                 MAX_DEPTH);
        error_case(ck, dir, msg, 0);
        return;
    }
    char **names;
    size_t n;
    int err = cli_list_dir(dir, &names, &n);
    if (err && err != ENOMEM) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot open folder: %s", strerror(err));
        error_case(ck, dir, msg, 0);
        return;
    }
    if (err)
        ck->fatal = 1;
    size_t dl = strlen(dir);
    int slash = dl && dir[dl - 1] == '/';
    for (size_t i = 0; i < n && !ck->fatal; i++) {
        size_t len = dl + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            ck->fatal = 1;
            break;
        }
        snprintf(path, len, "%s%s%s", dir, slash ? "" : "/", names[i]);
        struct stat st;
        if (lstat(path, &st) != 0) {
            check_file(ck, path, 0); /* vanished: reported as unreadable */
        } else if (S_ISDIR(st.st_mode)) {
            walk(ck, path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            check_file(ck, path, 1);
        } else {
            ck->skipped++; /* symlinks, devices, sockets */
        }
        free(path);
    }
    cli_free_names(names, n);
}

/* The JUnit XML file: one <testcase> per file. */
static int write_junit(const checker *ck, const char *path, int force, const char *expect_text,
                       double seconds)
{
    size_t fails = 0, errors = 0;
    for (size_t i = 0; i < ck->ncases; i++) {
        fails += ck->cases[i].result == OUT_FAIL;
        errors += ck->cases[i].result == OUT_ERROR;
    }
    cli_out o;
    int code = cli_out_open(&o, path, force);
    if (code)
        return code;
    FILE *f = o.fp;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f,
            "<testsuites name=\"celmark check\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "time=\"%.3f\">\n",
            ck->ncases, fails, errors, seconds);
    fprintf(f,
            "  <testsuite name=\"celmark.check\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "skipped=\"0\" time=\"%.3f\">\n",
            ck->ncases, fails, errors, seconds);
    fputs("    <properties>\n      <property name=\"expected\" value=\"", f);
    cli_put_escaped(f, expect_text);
    fputs("\"/>\n      <property name=\"celmark_version\" value=\"", f);
    cli_put_escaped(f, cm_version());
    fputs("\"/>\n    </properties>\n", f);
    for (size_t i = 0; i < ck->ncases; i++) {
        const case_rec *c = &ck->cases[i];
        fputs("    <testcase classname=\"celmark.check\" name=\"", f);
        cli_put_escaped(f, c->path);
        fprintf(f, "\" time=\"%.3f\"", c->seconds);
        if (c->result == OUT_PASS) {
            fputs("/>\n", f);
            continue;
        }
        const char *tag = c->result == OUT_FAIL ? "failure" : "error";
        fprintf(f, ">\n      <%s message=\"", tag);
        cli_put_escaped(f, c->message ? c->message : "");
        fprintf(f, "\" type=\"%s\">", c->result == OUT_FAIL ? "unexpected-mark" : "unreadable");
        cli_put_escaped(f, c->message ? c->message : "");
        fprintf(f, "</%s>\n    </testcase>\n", tag);
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    return cli_out_commit(&o);
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"ledger", required_argument, NULL, 'l'},
        {"expect-recipient", required_argument, NULL, 'R'},
        {"expect-issue", required_argument, NULL, 'I'},
        {"expect-unmarked", no_argument, NULL, 'U'},
        {"junit", required_argument, NULL, 'J'},
        {"json", no_argument, NULL, 'j'},
        {"max-fpr", required_argument, NULL, 'm'},
        {"window", required_argument, NULL, 'w'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    cli_keep_freed_memory();
    const char *key_path = NULL, *ledger_path = NULL, *junit_path = NULL;
    const char *ledgers[CLI_MAX_LEDGERS];
    int nledgers = 0;
    cm_ledger *lgs[CLI_MAX_LEDGERS] = {NULL};
    cli_layers layers = {NULL, 0};
    int force = 0, nexpect = 0, c;
    checker ck;
    memset(&ck, 0, sizeof(ck));
    ck.first = 1;
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    cm_video_verify_params_default(&ck.a.vvp);
    ck.a.vvp.threads = 0; /* one file at a time: every core on it */
    cm_limits_default(&ck.a.limits);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:fh", opts, NULL)) != -1) {
        int lr = cli_limit_option("check", c, optarg, &ck.a.limits);
        if (lr > 0)
            return lr;
        if (lr == 0)
            continue;
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 'l':
            if (nledgers == CLI_MAX_LEDGERS)
                return cli_usage_error("check", "at most %d ledgers (-l)", CLI_MAX_LEDGERS);
            ledgers[nledgers++] = optarg;
            ledger_path = ledgers[0];
            break;
        case 'R':
            if (!*optarg)
                return cli_usage_error("check", "--expect-recipient needs a name");
            ck.expect = EXPECT_RECIPIENT;
            ck.want_recipient = optarg;
            nexpect++;
            break;
        case 'I':
            if (cli_parse_id(optarg, &ck.want_id))
                return cli_usage_error("check", "--expect-issue needs 16 hex digits, not '%s'",
                                       optarg);
            ck.expect = EXPECT_ISSUE;
            nexpect++;
            break;
        case 'U':
            ck.expect = EXPECT_UNMARKED;
            nexpect++;
            break;
        case 'J':
            junit_path = optarg;
            break;
        case 'j':
            ck.json = 1;
            break;
        case 'm':
            if (cli_parse_double(optarg, &vp.max_fpr) || !(vp.max_fpr > 0 && vp.max_fpr <= 1e-3))
                return cli_usage_error("check", "--max-fpr must be in (0, 1e-3], not '%s'", optarg);
            break;
        case 'w':
            if (cli_parse_double(optarg, &ck.a.vvp.window_sec) || !(ck.a.vvp.window_sec >= 0.1) ||
                ck.a.vvp.window_sec > 3600)
                return cli_usage_error("check", "--window must be seconds in [0.1, 3600], not '%s'",
                                       optarg);
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            cli_print_help("check");
            return EXIT_OK;
        case ':':
            return cli_usage_error("check", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("check", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!key_path)
        return cli_usage_error("check", "no key given (-k KEYFILE)");
    if (nexpect != 1)
        return cli_usage_error("check", "give exactly one of --expect-recipient, --expect-issue, "
                                        "--expect-unmarked");
    if (ck.expect == EXPECT_RECIPIENT && !ledger_path)
        return cli_usage_error("check", "--expect-recipient needs a ledger (-l LEDGER)");
    if (force && !junit_path)
        return cli_usage_error("check", "--force only applies to --junit OUT.xml");
    if (optind >= argc)
        return cli_usage_error("check", "no file or folder given");
    if (junit_path && cli_out_check(junit_path, force))
        return EXIT_INPUT;

    char expect_text[FR_TEXT + 64];
    if (ck.expect == EXPECT_RECIPIENT) {
        snprintf(expect_text, sizeof(expect_text), "recipient: %s", ck.want_recipient);
    } else if (ck.expect == EXPECT_ISSUE) {
        char hex[17];
        cli_format_id(ck.want_id, hex);
        snprintf(expect_text, sizeof(expect_text), "issue_id: %s", hex);
    } else {
        snprintf(expect_text, sizeof(expect_text), "unmarked");
    }

    cm_key *key = NULL;
    uint64_t *cands = NULL;
    size_t ncands = 0;
    int ret, code;
    double t0 = cli_now_sec();
    if (cm_ctx_new(&ck.a.ctx))
        return EXIT_INTERNAL;
    if ((code = cli_load_key(ck.a.ctx, key_path, &key)))
        goto done;
    if (ledger_path) {
        char signer[CM_KEY_FINGERPRINT_CHARS + 1], mine[CM_KEY_FINGERPRINT_CHARS + 1];
        ret = cm_ledger_open(ck.a.ctx, ledger_path, CM_LEDGER_READONLY, &ck.a.lg);
        if (!ret)
            ret = cm_ledger_candidates(ck.a.ctx, ck.a.lg, NULL, &cands, &ncands);
        if (!ret)
            ret = cm_ledger_signer(ck.a.ctx, ck.a.lg, signer);
        if (ret) {
            code = cli_fail(ck.a.ctx, ret);
            goto done;
        }
        if (signer[0] && !cm_key_fingerprint(key, mine) && strcmp(signer, mine) != 0)
            fprintf(stderr,
                    "celmark: warning: %s: rows were signed with key %s, not the key given "
                    "(%s); signatures will not vouch for this key\n",
                    ledger_path, signer, mine);
    }
    if (ck.expect == EXPECT_ISSUE) {
        /* score the expected id even when no ledger names it */
        uint64_t *p = realloc(cands, (ncands + 1) * sizeof(*cands));
        if (!p) {
            code = EXIT_INTERNAL;
            goto done;
        }
        cands = p;
        cands[ncands++] = ck.want_id;
    }
    vp.candidates = cands;
    vp.ncandidates = ncands;
    if ((ret = cm_verifier_new(ck.a.ctx, key, &vp, &ck.a.ver))) {
        code = cli_fail(ck.a.ctx, ret);
        goto done;
    }
    /* the delegates' layers (verify's -l LEDGER -l LEDGER ...) */
    lgs[0] = ck.a.lg;
    if ((code = cli_layers_setup(ck.a.ctx, key, ledgers, nledgers, lgs, &vp, &layers,
                                 &ck.a.ver)))
        goto done;
    ck.a.layers = layers.n > 1 ? &layers : NULL;

    for (int i = optind; i < argc && !ck.fatal; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            walk(&ck, argv[i], 0);
        else
            check_file(&ck, argv[i], 0);
    }
    if (ck.fatal) {
        fprintf(stderr, "celmark: out of memory; free memory or check fewer files\n");
        code = EXIT_INTERNAL;
        goto done;
    }

    size_t pass = 0, fail = 0, err = 0;
    for (size_t i = 0; i < ck.ncases; i++) {
        pass += ck.cases[i].result == OUT_PASS;
        fail += ck.cases[i].result == OUT_FAIL;
        err += ck.cases[i].result == OUT_ERROR;
    }
    if (ck.ncases == 0) {
        fprintf(stderr,
                "celmark: no image or video found in the paths given (%lld other files "
                "skipped); check the paths\n",
                (long long)ck.skipped);
        err = 1;
    }
    code = err ? EXIT_INPUT : (fail ? EXIT_FAIL : EXIT_OK);
    if (!ck.json) {
        if (!ck.first)
            putchar('\n');
        printf("expected: %s\n", expect_text);
        printf("files: %zu\n", ck.ncases);
        printf("passed: %zu\n", pass);
        printf("failed: %zu\n", fail);
        printf("unreadable: %zu\n", err);
        printf("skipped: %lld\n", (long long)ck.skipped);
        printf("result: %s\n", code == EXIT_OK ? "pass" : (code == EXIT_FAIL ? "fail" : "error"));
        fflush(stdout);
    }
    if (junit_path) {
        int e = write_junit(&ck, junit_path, force, expect_text, cli_now_sec() - t0);
        if (e)
            code = e > code ? e : code;
    }
done:
    for (size_t i = 0; i < ck.ncases; i++) {
        free(ck.cases[i].path);
        free(ck.cases[i].message);
    }
    free(ck.cases);
    free(cands);
    cli_layers_teardown(&layers, lgs, nledgers);
    cm_verifier_free(&ck.a.ver);
    cm_ledger_close(&ck.a.lg);
    cm_key_free(&key);
    cm_ctx_free(&ck.a.ctx);
    return code;
}
