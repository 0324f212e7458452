/* Claimed ids as verify and scan print them, with the ledger's word on each
 * (see cli.h). A NULL ledger list means no ledger was given. */
#include "cli.h"

#include <string.h>

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

const char *cli_source_name(cm_id_source s)
{
    return s == CM_ID_BLIND ? "blind" : (s == CM_ID_CANDIDATE ? "candidate" : "none");
}

const char *cli_ledger_status(const cli_ledger_info *li)
{
    return !li->found ? "not in ledger" : (li->sig_ok ? "signature ok" : "signature BAD");
}

/* Look a claimed id up in the ledger (when one is open; marked 0: no
 * claim). Returns an exit code for a ledger failure, else EXIT_OK. */
int cli_ledger_lookup(cm_ctx *ctx, cm_ledger *lg, int marked, uint64_t issue_id,
                         cli_ledger_info *li)
{
    memset(li, 0, sizeof(*li));
    li->used = lg != NULL;
    if (!lg || !marked)
        return EXIT_OK;
    int f = cm_ledger_get(ctx, lg, issue_id, &li->row);
    li->found = f == 1;
    li->sig_ok = li->found && cm_ledger_row_signature_ok(&li->row) == 1;
    return f < 0 ? cli_fail(ctx, f) : EXIT_OK;
}

/* Every claim of r looked up (li[0] is the top-level claim's); the first
 * ledger failure's exit code, else EXIT_OK. Clear with ledger_clear. */
int cli_ledger_lookup_claims(cm_ctx *ctx, cm_ledger *lg, const cm_verify_result *r,
                                cli_ledger_info li[CM_MAX_CLAIMS])
{
    int e = cli_ledger_lookup(ctx, lg, r->marked, r->issue_id, &li[0]);
    for (int i = 1; i < CM_MAX_CLAIMS; i++) {
        int ei = cli_ledger_lookup(ctx, lg, i < r->nclaims, i < r->nclaims ? r->claims[i].issue_id : 0,
                               &li[i]);
        e = e ? e : ei;
    }
    return e;
}

void cli_ledger_clear(cli_ledger_info li[CM_MAX_CLAIMS])
{
    for (int i = 0; i < CM_MAX_CLAIMS; i++)
        cm_ledger_row_clear(&li[i].row);
}

/* The claims, strongest first: id, how found, score, fpr, share and region
 * (and, with -l, whose copy each is). */
json_t *cli_claims_json(const cm_verify_result *r, const cli_ledger_info *li)
{
    char id[17];
    json_t *a = json_array();
    for (int i = 0; i < r->nclaims; i++) {
        const cm_claim *c = &r->claims[i];
        json_t *o = json_object();
        cli_format_id(c->issue_id, id);
        json_object_set_new(o, "issue_id", json_string(id));
        json_object_set_new(o, "source", json_string(cli_source_name(c->source)));
        json_object_set_new(o, "score", json_real(c->score));
        json_object_set_new(o, "fpr", json_real(c->fpr));
        json_object_set_new(o, "share", json_real(c->share));
        json_object_set_new(o, "region", json_pack("{s:i,s:i,s:i,s:i}", "x", c->x, "y", c->y,
                                                   "w", c->w, "h", c->h));
        if (li && li[i].used) {
            json_object_set_new(o, "recipient", str_or_null(li[i].found ? li[i].row.recipient
                                                                        : NULL));
            json_object_set_new(o, "asset", str_or_null(li[i].found ? li[i].row.asset : NULL));
            json_object_set_new(o, "ledger_row", json_string(cli_ledger_status(&li[i])));
        }
        json_array_append_new(a, o);
    }
    return a;
}

void cli_claims_text(const cm_verify_result *r, const cli_ledger_info *li)
{
    char id[17];
    for (int i = 0; i < r->nclaims; i++) {
        const cm_claim *c = &r->claims[i];
        cli_format_id(c->issue_id, id);
        printf("claim: %s found_by=%s score=%.2f fpr=%.3g share=%.2f region=%dx%d+%d+%d", id,
               cli_source_name(c->source), c->score, c->fpr, c->share, c->w, c->h, c->x, c->y);
        if (li && li[i].used && li[i].found)
            printf(" recipient=\"%s\" asset=\"%s\"", li[i].row.recipient, li[i].row.asset);
        putchar('\n');
    }
}

