/* Library-internal parts of the ledger shared by ledger.c, issue.c, chain.c
 * and the unit tests. Not installed. */
#ifndef CELMARK_LEDGER_INTERNAL_H
#define CELMARK_LEDGER_INTERNAL_H

#include "celmark/ledger.h"
#include "internal.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Domain-separation tag: the first field of every row's canonical bytes. */
#define CM__LEDGER_ROW_TAG "celmark.ledger.row/1"

/*
 * The canonical bytes of a row (see chain.c for the exact encoding): every
 * field except the signature, in a fixed order, each length-prefixed.
 * *buf is malloc'ed (free()). Returns 0, CM_E_INVAL or CM_E_NOMEM.
 */
CM__HIDDEN int cm__ledger_canonical(const cm_ledger_row *row, uint8_t **buf, size_t *len);

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

#define ROW_COLS                                                                       \
    "seq, issue_id, recipient, asset, note, input_sha256, output_sha256, output_path, " \
    "output_size, width, height, profile, strength, cel_safe, layer, tool_version, "    \
    "key_fingerprint, signer_pub, stamped_at, operator, prev_hash, signature"

/* Record SQLite's error for what in ctx; returns the CM_E code. */
CM__HIDDEN int cm__ledger_db_error(cm_ctx *ctx, cm_ledger *lg, const char *what);
/* Run sql / prepare it into *st; 0 or a CM_E code (error in ctx). */
CM__HIDDEN int cm__ledger_exec(cm_ctx *ctx, cm_ledger *lg, const char *sql);
CM__HIDDEN int cm__ledger_prepare(cm_ctx *ctx, cm_ledger *lg, const char *sql,
                                  sqlite3_stmt **st);
/* strdup that accepts NULL (and gives NULL). */
CM__HIDDEN char *cm__ledger_strdup(const char *s);
/* The last row's seq and hash (0 and zeros for an empty chain). */
CM__HIDDEN int cm__ledger_load_tail(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32]);

#endif
