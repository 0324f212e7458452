/* Library-internal parts of the ledger shared by ledger.c, issue.c, chain.c,
 * delegation.c and the unit tests. Not installed. */
#ifndef CELMARK_LEDGER_INTERNAL_H
#define CELMARK_LEDGER_INTERNAL_H

#include "celmark/ledger.h"
#include "internal.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Domain-separation tags: the first field of every row's canonical bytes
 * (an issue row without chain, one with, a delegation row). */
#define CM__LEDGER_ROW_TAG "celmark.ledger.row/1"
#define CM__LEDGER_ROW_TAG_2 "celmark.ledger.row/2"
#define CM__LEDGER_DELEGATION_TAG "celmark.ledger.delegation/1"

/* Bytes of a stored chain, at most: CM_KEY_MAX_LAYER times a 2-byte length
 * and a certificate. */
#define CM__LEDGER_CHAIN_MAX (CM_KEY_MAX_LAYER * (2 + CM_KEY_CERT_MAX))

/* A delegation row as stored (delegation.c). cert_ok == 0 when the stored
 * certificate does not decode, chain_len == -1 when the chain does not:
 * either way the row fails its signature. Strings are malloc'ed
 * (cm__ledger_drow_clear()). */
typedef struct cm__ledger_drow {
    int64_t seq;
    cm_key_cert cert;
    int cert_ok;
    char *tool_version, *key_fingerprint, *recorded_at;
    uint8_t signer_pub[CM_KEY_PUBLIC_BYTES];
    int chain_len;
    cm_key_cert chain[CM_KEY_MAX_LAYER];
    uint8_t prev_hash[CM_LEDGER_HASH_BYTES];
    uint8_t signature[CM_LEDGER_SIG_BYTES];
} cm__ledger_drow;

/*
 * The canonical bytes of a row (see chain.c for the exact encoding): every
 * field except the signature, in a fixed order, each length-prefixed.
 * *buf is malloc'ed (free()). Returns 0, CM_E_INVAL or CM_E_NOMEM.
 */
CM__HIDDEN int cm__ledger_canonical(const cm_ledger_row *row, uint8_t **buf, size_t *len);
/* The same for a delegation row, and its hash, signature and check (1 valid,
 * 0 invalid, < 0 error). */
CM__HIDDEN int cm__ledger_dcanonical(const cm__ledger_drow *d, uint8_t **buf, size_t *len);
CM__HIDDEN int cm__ledger_drow_hash(const cm__ledger_drow *d, uint8_t out[CM_LEDGER_HASH_BYTES]);
CM__HIDDEN int cm__ledger_drow_sign(cm__ledger_drow *d, const cm_key *key);
CM__HIDDEN int cm__ledger_drow_signature_ok(const cm__ledger_drow *d);
CM__HIDDEN void cm__ledger_drow_clear(cm__ledger_drow *d);

/* A chain as stored in a column (chain.c): pack into buf (at most
 * CM__LEDGER_CHAIN_MAX bytes), 0 or CM_E_INVAL; unpack: the number of
 * certificates, or -1 when the bytes are not a chain. */
CM__HIDDEN int cm__ledger_chain_pack(const cm_key_cert *chain, int n, uint8_t *buf, size_t size,
                                     size_t *len);
CM__HIDDEN int cm__ledger_chain_unpack(const uint8_t *buf, size_t len,
                                       cm_key_cert chain[CM_KEY_MAX_LAYER]);
/* Whether chain[0..n) is valid (layers 1..n, each certificate signed by the
 * key the one above names), ends at signer_pub and passes through root_pub
 * (issued by it or below it; NULL: any): 1, or 0 with why filled. */
CM__HIDDEN int cm__ledger_chain_check(const cm_key_cert *chain, int n,
                                      const uint8_t signer_pub[CM_KEY_PUBLIC_BYTES],
                                      const uint8_t *root_pub, char *why, size_t whylen);

/* SHA-256 of the row's canonical bytes (the next row's prev_hash). */
CM__HIDDEN int cm__ledger_row_hash(const cm_ledger_row *row,
                                   uint8_t out[CM_LEDGER_HASH_BYTES]);

/* Fill row->signature with key's Ed25519 signature over the canonical bytes. */
CM__HIDDEN int cm__ledger_sign(cm_ledger_row *row, const cm_key *key);

/* SHA-256 of a buffer. Returns 0 or CM_E_CRYPTO. */
CM__HIDDEN int cm__sha256(const void *data, size_t len, uint8_t out[CM_LEDGER_HASH_BYTES]);

/* ---- the store (ledger.c), shared with the issuing code (issue.c) ---- */

struct cm_ledger {
    sqlite3 *db;
    char *path;
    int schema; /* meta.schema_version: 1 only for a read-only handle on an
                   old ledger (no chains, no delegations table) */
    int lockfd; /* LEDGER.lock, -1 when read-only */
    int in_tx;  /* cm_ledger_begin() open */
    int tail_valid;
    int64_t tail_seq;
    uint8_t tail_hash[CM_LEDGER_HASH_BYTES];
};

struct cm_ledger_issue {
    uint64_t id;
    char *out_path;  /* absolute */
    char *temp_path; /* absolute, same folder */
    char *dir;
    int locked;
};

#define ROW_COLS_V1                                                                    \
    "seq, issue_id, recipient, asset, note, input_sha256, output_sha256, output_path, " \
    "output_size, width, height, profile, strength, cel_safe, layer, tool_version, "    \
    "key_fingerprint, signer_pub, stamped_at, operator, prev_hash, signature"
/* The columns of an issue row, in read_row()'s order (schema 2). */
#define ROW_COLS ROW_COLS_V1 ", chain"
/* Those of a delegation row, in cm__ledger_read_drow()'s order. */
#define DROW_COLS                                                                       \
    "seq, cert, tool_version, key_fingerprint, signer_pub, recorded_at, prev_hash, "     \
    "signature, chain"

/* Record SQLite's error for what in ctx; returns the CM_E code. */
CM__HIDDEN int cm__ledger_db_error(cm_ctx *ctx, cm_ledger *lg, const char *what);
/* Run sql / prepare it into *st; 0 or a CM_E code (error in ctx). */
CM__HIDDEN int cm__ledger_exec(cm_ctx *ctx, cm_ledger *lg, const char *sql);
CM__HIDDEN int cm__ledger_prepare(cm_ctx *ctx, cm_ledger *lg, const char *sql,
                                  sqlite3_stmt **st);
/* strdup that accepts NULL (and gives NULL). */
CM__HIDDEN char *cm__ledger_strdup(const char *s);
/* The last row's seq and hash, whatever its kind (0 and zeros for an
 * empty chain). */
CM__HIDDEN int cm__ledger_load_tail(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32]);
/* After a row was inserted inside cm_ledger_begin(): the new tail. */
CM__HIDDEN int cm__ledger_set_tail(cm_ledger *lg, int64_t seq,
                                   const uint8_t hash[CM_LEDGER_HASH_BYTES]);
/* A statement selecting the issue rows ("SELECT <cols> FROM issues " tail)
 * of this ledger's schema, for cm__ledger_read_row(). */
CM__HIDDEN int cm__ledger_prepare_rows(cm_ctx *ctx, cm_ledger *lg, const char *tail,
                                       sqlite3_stmt **st);
CM__HIDDEN int cm__ledger_read_row(sqlite3_stmt *st, cm_ledger_row *r);
/* The same for delegation rows: CM_OK with *st NULL when the ledger has none
 * (schema 1). */
CM__HIDDEN int cm__ledger_prepare_drows(cm_ctx *ctx, cm_ledger *lg, const char *tail,
                                        sqlite3_stmt **st);
CM__HIDDEN int cm__ledger_read_drow(sqlite3_stmt *st, cm__ledger_drow *d);
/* Re-read meta.schema_version of a read-only handle on a schema 1 ledger
 * (another process may have upgraded it since). */
CM__HIDDEN void cm__ledger_refresh_schema(cm_ledger *lg);

#endif
