/*
 * The whole-chain check (cm_ledger_check): every row of every kind, in seq
 * order, against the chain's rules and a root of trust.
 *
 * The rows of issues and delegations are read by two cursors in seq order
 * and merged, so one pass sees the chain as it was written:
 *
 *   issues       1   2       4   5
 *   delegations          3           6
 *   chain        1   2   3   4   5   6      expect 1, 2, 3 ... and each
 *                                           prev_hash = SHA-256(previous)
 *
 * Each row must be signed by a key the root trusts: the root itself, or a
 * key it delegated to (at any depth below it), proven by the certificate
 * chain stored in the row (chain.c: every certificate valid, each issued by
 * the key the one above names, the last naming the row's signer, one of
 * them issued by the root). A delegation row's own certificate must be
 * valid, issued by the row's signer, one layer below it.
 */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What every kind of row has in common, for the checks. */
typedef struct row_view {
    int kind;
    int64_t seq;
    uint64_t issue_id;
    const char *key_fingerprint;
    const uint8_t *signer_pub, *prev_hash;
    const cm_key_cert *chain;
    int chain_len;
    int damaged; /* a stored certificate or chain does not decode */
} row_view;

static void mark_bad(cm_ledger_report *rep, const row_view *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mark_bad(cm_ledger_report *rep, const row_view *v, const char *fmt, ...)
{
    if (!rep->ok)
        return; /* keep the first */
    rep->ok = 0;
    rep->bad_seq = v->seq;
    rep->bad_issue_id = v->issue_id;
    rep->bad_kind = v->kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
    va_end(ap);
}

/* Is the signer the root, or a key the root delegated to? Counts and marks. */
static void check_signer(cm_ledger_report *rep, const row_view *v, const uint8_t root[32])
{
    char why[160];
    if (!memcmp(v->signer_pub, root, CM_KEY_PUBLIC_BYTES))
        return;
    if (v->chain_len == 0) {
        rep->other_signer++;
        mark_bad(rep, v, "signed by another key (%s), not the key given", v->key_fingerprint);
    } else if (!cm__ledger_chain_check(v->chain, v->chain_len, v->signer_pub, root, why,
                                       sizeof(why))) {
        rep->other_signer++;
        mark_bad(rep, v, "signed by another key (%s): %s", v->key_fingerprint, why);
    } else {
        rep->delegated++;
    }
}

/* The checks common to every row; sig is its signature check (1, 0). */
static void check_row(cm_ledger_report *rep, const row_view *v, int sig, int64_t expect,
                      const uint8_t prev[32], const uint8_t root[32])
{
    rep->rows++;
    if (v->seq != expect)
        mark_bad(rep, v,
                 v->seq > expect ? "row %lld is missing (deleted) before this row"
                                 : "row number %lld out of sequence",
                 (long long)(v->seq > expect ? expect : v->seq));
    if (memcmp(v->prev_hash, prev, 32) != 0)
        mark_bad(rep, v,
                 "previous-row hash does not match (a row before it was edited, "
                 "deleted, inserted or moved)");
    if (v->damaged)
        mark_bad(rep, v, "a stored certificate is damaged (row edited)");
    if (!sig)
        mark_bad(rep, v, "signature does not match (row edited, forged or moved)");
    check_signer(rep, v, root);
}

static void check_delegation(cm_ledger_report *rep, const row_view *v, const cm__ledger_drow *d)
{
    rep->delegations++;
    if (!d->cert_ok)
        return; /* marked damaged already */
    if (!cm_key_cert_ok(&d->cert))
        mark_bad(rep, v, "the certificate of \"%s\" has a bad signature", d->cert.name);
    if (memcmp(d->cert.issuer_pub, d->signer_pub, CM_KEY_PUBLIC_BYTES))
        mark_bad(rep, v,
                 "the certificate of \"%s\" was issued by another key than the row's "
                 "signer",
                 d->cert.name);
    if (d->chain_len >= 0 && d->cert.layer != d->chain_len + 1)
        mark_bad(rep, v,
                 "the certificate of \"%s\" is for layer %d, not %d (one below its "
                 "signer)",
                 d->cert.name, d->cert.layer, d->chain_len + 1);
}

/* The next row of a cursor: 1 read, 0 at the end, < 0 error. */
static int step(cm_ctx *ctx, cm_ledger *lg, sqlite3_stmt *st, cm_ledger_row *r, cm__ledger_drow *d)
{
    if (!st)
        return 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return cm__ledger_db_error(ctx, lg, "cannot read the ledger");
    int ret = r ? cm__ledger_read_row(st, r) : cm__ledger_read_drow(st, d);
    return ret ? ret : 1;
}

/* Check one row and hash it into prev. 0 or a CM_E code. */
static int check_issue(cm_ctx *ctx, cm_ledger_report *rep, const cm_ledger_row *r, int64_t expect,
                       uint8_t prev[32], const uint8_t root[32])
{
    row_view v = {CM_LEDGER_ROW_ISSUE, r->seq,   r->issue_id,  r->key_fingerprint, r->signer_pub,
                  r->prev_hash,        r->chain, r->chain_len, r->chain_len < 0};
    int sig = cm_ledger_row_signature_ok(r);
    if (sig < 0)
        return cm__crypto_error(ctx, sig, "checking a signature");
    check_row(rep, &v, sig, expect, prev, root);
    int ret = cm__ledger_row_hash(r, prev);
    if (ret == CM_E_INVAL) { /* a damaged chain: the row is bad already */
        memset(prev, 0xff, 32);
        ret = CM_OK;
    }
    return ret;
}

static int check_drow(cm_ctx *ctx, cm_ledger_report *rep, const cm__ledger_drow *d, int64_t expect,
                      uint8_t prev[32], const uint8_t root[32])
{
    row_view v = {CM_LEDGER_ROW_DELEGATION,
                  d->seq,
                  0,
                  d->key_fingerprint,
                  d->signer_pub,
                  d->prev_hash,
                  d->chain,
                  d->chain_len,
                  !d->cert_ok || d->chain_len < 0};
    int sig = cm__ledger_drow_signature_ok(d);
    if (sig < 0)
        return cm__crypto_error(ctx, sig, "checking a signature");
    check_row(rep, &v, sig, expect, prev, root);
    check_delegation(rep, &v, d);
    int ret = cm__ledger_drow_hash(d, prev);
    if (ret == CM_E_INVAL) { /* a damaged certificate or chain: bad already */
        memset(prev, 0xff, 32);
        ret = CM_OK;
    }
    return ret;
}

int cm_ledger_check_pub(cm_ctx *ctx, cm_ledger *lg, const uint8_t root[CM_KEY_PUBLIC_BYTES],
                        cm_ledger_report *rep)
{
    if (!lg || !root || !rep)
        return CM_E_INVAL;
    memset(rep, 0, sizeof(*rep));
    rep->ok = 1;
    uint8_t prev[32] = {0};
    sqlite3_stmt *st = NULL, *is = NULL, *ds = NULL;
    /* One read transaction: a consistent snapshot while stamps go on. */
    int ret = cm__ledger_exec(ctx, lg, "BEGIN");
    if (ret)
        return ret;
    if ((ret = cm__ledger_prepare(ctx, lg, "SELECT count(*) FROM pending", &st)) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            rep->pending = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (!ret)
        ret = cm__ledger_prepare_rows(ctx, lg, "ORDER BY seq", &is);
    if (!ret)
        ret = cm__ledger_prepare_drows(ctx, lg, "ORDER BY seq", &ds);
    cm_ledger_row r;
    cm__ledger_drow d;
    int hi = 0, hd = 0;
    if (!ret)
        ret = (hi = step(ctx, lg, is, &r, NULL)) < 0 ? hi : 0;
    if (!ret)
        ret = (hd = step(ctx, lg, ds, NULL, &d)) < 0 ? hd : 0;
    int64_t expect = 1;
    while (!ret && (hi > 0 || hd > 0)) {
        int64_t seq;
        if (hi > 0 && (hd <= 0 || r.seq <= d.seq)) {
            seq = r.seq;
            ret = check_issue(ctx, rep, &r, expect, prev, root);
            cm_ledger_row_clear(&r);
            hi = 0;
            if (!ret)
                ret = (hi = step(ctx, lg, is, &r, NULL)) < 0 ? hi : 0;
        } else {
            seq = d.seq;
            ret = check_drow(ctx, rep, &d, expect, prev, root);
            cm__ledger_drow_clear(&d);
            hd = 0;
            if (!ret)
                ret = (hd = step(ctx, lg, ds, NULL, &d)) < 0 ? hd : 0;
        }
        /* seq is whatever the file says: INT64_MAX + 1 would overflow */
        if (!ret && seq == INT64_MAX) {
            row_view v = {0, seq, 0, "", prev, prev, NULL, 0, 0};
            mark_bad(rep, &v, "row number %lld out of sequence", (long long)seq);
            break;
        }
        expect = seq + 1;
    }
    if (hi > 0)
        cm_ledger_row_clear(&r);
    if (hd > 0)
        cm__ledger_drow_clear(&d);
    sqlite3_finalize(is);
    sqlite3_finalize(ds);
    sqlite3_exec(lg->db, "COMMIT", NULL, NULL, NULL);
    return ret;
}

int cm_ledger_check(cm_ctx *ctx, cm_ledger *lg, const cm_key *key, cm_ledger_report *rep)
{
    uint8_t pub[CM_KEY_PUBLIC_BYTES];
    if (!lg || !key || !rep)
        return CM_E_INVAL;
    cm_key_public(key, pub);
    return cm_ledger_check_pub(ctx, lg, pub, rep);
}
