/*
 * Delegations in the ledger: a key handing a vendor a key one layer down
 * (cm_key_delegate) is recorded as a row of its own kind in the same hash
 * chain as the stamped copies.
 *
 * A delegation row holds the delegate's certificate as the delegating key
 * signed it (name, layer, public key, commitment to the layer secret, date,
 * issuer), the delegating key's fingerprint and public key, its own chain
 * when it is a delegate itself (so that a vendor's delegation to a
 * sub-vendor can be checked from the studio's key), the time it was
 * recorded, the previous row's hash and the signature over the canonical
 * bytes (chain.c). The row shares the seq numbering of the issues table:
 *
 *   seq  1       2       3            4       5
 *        issue   issue   delegation   issue   delegation
 *        \_______\_______\____________\_______\___ prev_hash links every row
 *
 * so deleting or editing a delegation breaks the chain exactly as for an
 * issue row.
 */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cm__ledger_drow_clear(cm__ledger_drow *d)
{
    if (!d)
        return;
    free(d->tool_version);
    free(d->key_fingerprint);
    free(d->recorded_at);
    memset(d, 0, sizeof(*d));
}

int cm__ledger_prepare_drows(cm_ctx *ctx, cm_ledger *lg, const char *tail, sqlite3_stmt **st)
{
    char sql[256];
    *st = NULL;
    cm__ledger_refresh_schema(lg);
    if (lg->schema < 2)
        return CM_OK; /* no delegations table yet */
    snprintf(sql, sizeof(sql), "SELECT " DROW_COLS " FROM delegations %s", tail);
    return cm__ledger_prepare(ctx, lg, sql, st);
}

static void col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
{
    int len = sqlite3_column_bytes(st, i);
    const void *b = sqlite3_column_blob(st, i);
    memset(dst, 0, n);
    if (b && len > 0)
        memcpy(dst, b, (size_t)len < n ? (size_t)len : n);
}

/* Fill d from a statement selecting DROW_COLS. */
int cm__ledger_read_drow(sqlite3_stmt *st, cm__ledger_drow *d)
{
    int i = 0;
    memset(d, 0, sizeof(*d));
    d->seq = sqlite3_column_int64(st, i++);
    const void *cert = sqlite3_column_blob(st, i);
    int cert_len = sqlite3_column_bytes(st, i++);
    d->cert_ok = cert && cm_key_cert_decode(cert, (size_t)cert_len, &d->cert) == CM_OK;
    if (!d->cert_ok)
        memset(&d->cert, 0, sizeof(d->cert));
    d->tool_version = cm__ledger_strdup((const char *)sqlite3_column_text(st, i++));
    d->key_fingerprint = cm__ledger_strdup((const char *)sqlite3_column_text(st, i++));
    col_blob(st, i++, d->signer_pub, CM_KEY_PUBLIC_BYTES);
    d->recorded_at = cm__ledger_strdup((const char *)sqlite3_column_text(st, i++));
    col_blob(st, i++, d->prev_hash, CM_LEDGER_HASH_BYTES);
    col_blob(st, i++, d->signature, CM_LEDGER_SIG_BYTES);
    d->chain_len = cm__ledger_chain_unpack(sqlite3_column_blob(st, i),
                                           (size_t)sqlite3_column_bytes(st, i), d->chain);
    if (!d->tool_version || !d->key_fingerprint || !d->recorded_at) {
        cm__ledger_drow_clear(d);
        return CM_E_NOMEM;
    }
    return CM_OK;
}

/* Is delegate made by cm_key_delegate(key, ...): one layer below, its last
 * certificate valid and issued by key, the chain above it key's own? */
static int direct_delegate(const cm_key *key, const cm_key *delegate)
{
    int n = 0, m = 0;
    const cm_key_cert *kc = cm_key_chain(key, &n), *dc = cm_key_chain(delegate, &m);
    uint8_t pub[CM_KEY_PUBLIC_BYTES];
    cm_key_public(key, pub);
    return m == n + 1 && dc[n].layer == m && cm_key_cert_ok(&dc[n]) &&
           !memcmp(dc[n].issuer_pub, pub, CM_KEY_PUBLIC_BYTES) &&
           !memcmp(dc, kc, sizeof(cm_key_cert) * (size_t)n);
}

static int insert_drow(cm_ctx *ctx, cm_ledger *lg, const cm__ledger_drow *d)
{
    uint8_t cert[CM_KEY_CERT_MAX], chain[CM__LEDGER_CHAIN_MAX];
    size_t chain_len = 0;
    int cert_len = cm_key_cert_encode(&d->cert, cert, sizeof(cert));
    if (cert_len < 0 ||
        cm__ledger_chain_pack(d->chain, d->chain_len, chain, sizeof(chain), &chain_len))
        return cm__error(ctx, CM_E_INVAL, "%s: the certificates cannot be stored", lg->path);
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare(
        ctx, lg, "INSERT INTO delegations(" DROW_COLS ") VALUES(?,?,?,?,?,?,?,?,?)", &st);
    if (ret)
        return ret;
    int i = 1;
    sqlite3_bind_int64(st, i++, d->seq);
    sqlite3_bind_blob(st, i++, cert, cert_len, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, d->tool_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, d->key_fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, d->signer_pub, CM_KEY_PUBLIC_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, d->recorded_at, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, d->prev_hash, CM_LEDGER_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, d->signature, CM_LEDGER_SIG_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, chain, (int)chain_len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot record the delegation");
    sqlite3_finalize(st);
    if (!ret && lg->in_tx) {
        uint8_t hash[CM_LEDGER_HASH_BYTES];
        lg->tail_valid = 0;
        ret = cm__ledger_drow_hash(d, hash);
        if (!ret)
            cm__ledger_set_tail(lg, d->seq, hash);
    }
    return ret;
}

/* The new row for delegate, chained after the tail, signed by key. */
static int make_drow(cm_ctx *ctx, cm_ledger *lg, cm__ledger_drow *d, const cm_key *key,
                     const cm_key *delegate, char fp[CM_KEY_FINGERPRINT_CHARS + 1], char now[32])
{
    memset(d, 0, sizeof(*d));
    int ret = cm__ledger_load_tail(ctx, lg, &d->seq, d->prev_hash);
    if (ret)
        return ret;
    d->seq++;
    int n = 0;
    const cm_key_cert *chain = cm_key_chain(delegate, &n);
    d->cert = chain[n - 1];
    d->cert_ok = 1;
    chain = cm_key_chain(key, &d->chain_len);
    memcpy(d->chain, chain, sizeof(cm_key_cert) * (size_t)d->chain_len);
    d->tool_version = (char *)"celmark " CM_VERSION_STRING;
    if (cm_key_fingerprint(key, fp) || cm_key_public(key, d->signer_pub))
        return cm__error(ctx, CM_E_CRYPTO, "cannot compute the key fingerprint");
    d->key_fingerprint = fp;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    d->recorded_at = now;
    ret = cm__ledger_drow_sign(d, key);
    if (ret)
        return cm__crypto_error(ctx, ret, "signing the delegation row");
    return CM_OK;
}

int cm_ledger_add_delegation(cm_ctx *ctx, cm_ledger *lg, const cm_key *key, const cm_key *delegate)
{
    if (!lg || !key || !delegate)
        return cm__error(ctx, CM_E_INVAL, "add delegation: NULL argument");
    if (!direct_delegate(key, delegate))
        return cm__error(ctx, CM_E_INVAL,
                         "%s: \"%s\" is not a delegate of this key (made by "
                         "it, one layer below)",
                         lg->path, cm_key_name(delegate));
    int own = !lg->in_tx;
    int ret = own ? cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE") : CM_OK;
    if (ret)
        return ret;
    if (own)
        lg->tail_valid = 0;
    cm__ledger_drow d;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1], now[32];
    ret = make_drow(ctx, lg, &d, key, delegate, fp, now);
    if (!ret)
        ret = insert_drow(ctx, lg, &d);
    if (own)
        ret = ret ? (sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL), ret)
                  : cm__ledger_exec(ctx, lg, "COMMIT");
    return ret;
}

/* Whether a delegation row holds: its signature and its certificate, both
 * by the row's signer, the certificate one layer below the signer's own. */
static int drow_ok(const cm__ledger_drow *d)
{
    return cm__ledger_drow_signature_ok(d) == 1 && cm_key_cert_ok(&d->cert) &&
           !memcmp(d->cert.issuer_pub, d->signer_pub, CM_KEY_PUBLIC_BYTES) &&
           d->cert.layer == d->chain_len + 1;
}

int cm_ledger_delegations(cm_ctx *ctx, cm_ledger *lg, cm_ledger_delegation **out, size_t *n)
{
    if (!lg || !out || !n)
        return CM_E_INVAL;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare_drows(ctx, lg, "ORDER BY seq", &st);
    if (ret || !st)
        return ret;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            cm_ledger_delegation *p = cm__malloc_array(cap, sizeof(*p));
            if (!p) {
                ret = CM_E_NOMEM;
                break;
            }
            if (*n)
                memcpy(p, *out, *n * sizeof(*p));
            free(*out);
            *out = p;
        }
        cm__ledger_drow d;
        if (cm__ledger_read_drow(st, &d)) {
            ret = CM_E_NOMEM;
            break;
        }
        cm_ledger_delegation *e = &(*out)[(*n)++];
        memset(e, 0, sizeof(*e));
        e->seq = d.seq;
        e->cert = d.cert;
        e->sig_ok = drow_ok(&d);
        snprintf(e->key_fingerprint, sizeof(e->key_fingerprint), "%s", d.key_fingerprint);
        memcpy(e->signer_pub, d.signer_pub, CM_KEY_PUBLIC_BYTES);
        snprintf(e->recorded_at, sizeof(e->recorded_at), "%s", d.recorded_at);
        snprintf(e->tool_version, sizeof(e->tool_version), "%s", d.tool_version);
        memcpy(e->prev_hash, d.prev_hash, sizeof(e->prev_hash));
        memcpy(e->signature, d.signature, sizeof(e->signature));
        e->chain_len = d.chain_len;
        memcpy(e->chain, d.chain, sizeof(e->chain));
        cm__ledger_drow_clear(&d);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot read the delegations");
    sqlite3_finalize(st);
    if (ret) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return ret;
}
