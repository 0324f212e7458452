/* The layers of the subcontracting chain a key can read (see cli.h). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The ledger among lgs whose rows were signed by pub (a delegate's own
 * ledger), or NULL. */
static cm_ledger *ledger_of(cm_ctx *ctx, cm_ledger *const *lgs, int nlg,
                            const uint8_t pub[CM_KEY_PUBLIC_BYTES])
{
    char want[CM_KEY_FINGERPRINT_CHARS + 1], got[CM_KEY_FINGERPRINT_CHARS + 1];
    if (cm_ledger_fingerprint(pub, want))
        return NULL;
    for (int i = 0; i < nlg; i++)
        if (cm_ledger_signer(ctx, lgs[i], got) == CM_OK && !strcmp(got, want))
            return lgs[i];
    return NULL;
}

static int add_layer(cli_layers *ls, cli_layer *l)
{
    cli_layer *p = realloc(ls->l, sizeof(*p) * (size_t)(ls->n + 1));
    if (!p)
        return -1;
    ls->l = p;
    ls->l[ls->n++] = *l;
    return 0;
}

int cli_layers_open(cm_ctx *ctx, const cm_key *key, cm_ledger *const *lgs, int nlg,
                    const cm_verify_params *base, cli_layers *out)
{
    memset(out, 0, sizeof(*out));
    cli_layer own = {0};
    own.layer = cm_key_layer(key);
    own.use = key;
    own.lg = nlg ? lgs[0] : NULL;
    if (add_layer(out, &own))
        return EXIT_INTERNAL;
    /* breadth first: each layer's delegations, from the ledger of its issues */
    for (int i = 0; i < out->n; i++) {
        cli_layer *up = &out->l[i];
        if (!up->lg)
            continue;
        cm_ledger_delegation *d = NULL;
        size_t nd = 0;
        int ret = cm_ledger_delegations(ctx, up->lg, &d, &nd);
        if (ret) {
            free(d);
            return cli_fail(ctx, ret);
        }
        for (size_t k = 0; k < nd; k++) {
            cli_layer l = {0};
            l.layer = d[k].cert.layer;
            if (l.layer != up->layer + 1 || !d[k].sig_ok)
                continue; /* a row that does not hold names no layer to read */
            size_t used = strlen(up->name); /* at most 3 names and 3 '/' above */
            memcpy(l.name, up->name, used);
            if (used)
                l.name[used++] = '/';
            memcpy(l.name + used, d[k].cert.name, strlen(d[k].cert.name) + 1);
            if ((ret = cm_key_layer_key(ctx, up->use, d[k].cert.name, &l.key))) {
                free(d);
                return cli_fail(ctx, ret);
            }
            l.use = l.key;
            l.lg = ledger_of(ctx, lgs, nlg, d[k].cert.subject_pub);
            if (add_layer(out, &l)) {
                cm_key_free(&l.key);
                free(d);
                return EXIT_INTERNAL;
            }
            up = &out->l[i]; /* add_layer may have moved it */
        }
        free(d);
    }
    /* one verifier per layer, its ledger's ids as candidates; every fpr
     * counts the keys tried on the same file */
    for (int i = 0; i < out->n; i++) {
        cli_layer *l = &out->l[i];
        cm_verify_params vp = *base;
        vp.layers = (unsigned)out->n;
        if (l->lg && i > 0) {
            int ret = cm_ledger_candidates(ctx, l->lg, NULL, &l->cands, &vp.ncandidates);
            if (ret)
                return cli_fail(ctx, ret);
            vp.candidates = l->cands;
        }
        int ret = cm_verifier_new(ctx, l->use, &vp, &l->ver);
        if (ret)
            return cli_fail(ctx, ret);
    }
    return EXIT_OK;
}

int cli_layers_setup(cm_ctx *ctx, const cm_key *key, const char *const *paths, int n,
                     cm_ledger **lgs, const cm_verify_params *vp, cli_layers *out,
                     cm_verifier **ver)
{
    memset(out, 0, sizeof(*out));
    if (!lgs[0])
        return EXIT_OK; /* no ledger: no delegation to follow */
    for (int i = 1; i < n; i++) {
        int ret = cm_ledger_open(ctx, paths[i], CM_LEDGER_READONLY, &lgs[i]);
        if (ret)
            return cli_fail(ctx, ret);
    }
    int code = cli_layers_open(ctx, key, lgs, n, vp, out);
    if (!code && out->n > 1) {
        cm_verifier_free(ver);
        *ver = out->l[0].ver;
        out->l[0].ver = NULL;
    }
    return code;
}

void cli_layers_teardown(cli_layers *ls, cm_ledger **lgs, int n)
{
    cli_layers_close(ls);
    for (int i = 1; i < n; i++)
        cm_ledger_close(&lgs[i]);
}

void cli_layers_close(cli_layers *ls)
{
    for (int i = 0; i < ls->n; i++) {
        cm_verifier_free(&ls->l[i].ver);
        cm_key_free(&ls->l[i].key);
        free(ls->l[i].cands);
    }
    free(ls->l);
    memset(ls, 0, sizeof(*ls));
}

/* One layer's claim, with its ledger's word when it has one: a delegate's
 * row must also carry a chain of certificates from the reading key down to
 * its signer, or its signature vouches for nothing (signature BAD). */
static void layer_facts(cm_ctx *ctx, const cli_layers *ls, int i, const cm_verify_result *r,
                        cli_ledger_info *li)
{
    if (cli_ledger_lookup(ctx, ls->l[i].lg, r->marked, r->issue_id, li) != EXIT_OK) {
        memset(li, 0, sizeof(*li));
        return;
    }
    uint8_t root[CM_KEY_PUBLIC_BYTES];
    if (i > 0 && li->found && li->sig_ok &&
        (cm_key_public(ls->l[0].use, root) || cm_ledger_row_chain_ok(&li->row, root) != 1))
        li->sig_ok = 0;
}

json_t *cli_layers_json(cm_ctx *ctx, const cli_layers *ls, const cm_verify_result *res)
{
    char id[17];
    json_t *a = json_array();
    for (int i = 0; i < ls->n; i++) {
        const cm_verify_result *r = &res[i];
        if (!r->marked)
            continue; /* one object per layer found */
        cli_ledger_info li;
        layer_facts(ctx, ls, i, r, &li);
        json_t *o = json_object();
        json_object_set_new(o, "layer", json_integer(ls->l[i].layer));
        json_object_set_new(o, "delegate",
                            ls->l[i].name[0] ? json_string(ls->l[i].name) : json_null());
        cli_format_id(r->issue_id, id);
        json_object_set_new(o, "issue_id", json_string(id));
        json_object_set_new(o, "source", json_string(cli_source_name(r->source)));
        json_object_set_new(o, "score", json_real(r->score));
        json_object_set_new(o, "fpr", json_real(r->fpr));
        if (li.used) {
            json_object_set_new(o, "recipient",
                                li.found ? json_string(li.row.recipient) : json_null());
            json_object_set_new(o, "asset", li.found ? json_string(li.row.asset) : json_null());
            json_object_set_new(o, "ledger_row", json_string(cli_ledger_status(&li)));
        }
        cm_ledger_row_clear(&li.row);
        json_array_append_new(a, o);
    }
    return a;
}

void cli_layers_text(cm_ctx *ctx, const cli_layers *ls, const cm_verify_result *res)
{
    char id[17];
    for (int i = 0; i < ls->n; i++) {
        const cm_verify_result *r = &res[i];
        if (!r->marked)
            continue;
        cli_ledger_info li;
        layer_facts(ctx, ls, i, r, &li);
        cli_format_id(r->issue_id, id);
        printf("layer %d: %s issue_id=%s score=%.2f fpr=%.3g", ls->l[i].layer,
               ls->l[i].name[0] ? ls->l[i].name : "(own)", id, r->score, r->fpr);
        if (li.used && li.found)
            printf(" recipient=\"%s\" asset=\"%s\"", li.row.recipient, li.row.asset);
        if (li.used)
            printf(" ledger_row=%s", cli_ledger_status(&li));
        putchar('\n');
        cm_ledger_row_clear(&li.row);
    }
}
