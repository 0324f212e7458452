/*
 * celmark — the ledger: which stamped copy went to whom.
 *
 * One SQLite file (WAL mode) holds one row per stamped copy: issue id,
 * recipient, asset, input and output SHA-256, output size and dimensions,
 * stamping parameters, tool version, the signer's key fingerprint and
 * public key, UTC time and operator. Every row carries the SHA-256 of the
 * previous row's canonical bytes and an Ed25519 signature over its own, so
 * editing, deleting, inserting or reordering rows is detected by
 * cm_ledger_check(). Delegations (a key handing a vendor a key one layer
 * down) are rows of their own kind in the same chain; rows signed by a
 * delegated key carry its certificate chain, so a vendor's ledger can be
 * checked from the studio's public key alone.
 *
 * Stamping with a ledger is a two-step transaction so that a crash at any
 * moment leaves neither a file without a row nor a row without its file:
 *
 *   cm_ledger_reserve()       fresh unused id + committed "pending" intent
 *   ... write the stamped copy to cm_ledger_issue_temp_path() ...
 *   cm_ledger_issue_commit()  row + move into place in one transaction
 *   (or cm_ledger_issue_abort() on any failure)
 *
 * Leftovers of a crashed stamp are cleaned when a ledger is opened (see
 * ledger/ledger.c for the design). Handles are not thread-safe: use one per
 * thread or process; any number of processes may share one file.
 */
#ifndef CELMARK_LEDGER_H
#define CELMARK_LEDGER_H

#include "celmark/common.h"
#include "celmark/key.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the SQL schema written into new ledgers (meta.schema_version).
 *  2 added delegation rows and the signer's certificate chain; a version 1
 *  ledger is upgraded in place by the first read-write open. */
#define CM_LEDGER_SCHEMA_VERSION 2

/** Size of a SHA-256 digest. */
#define CM_LEDGER_HASH_BYTES 32
/** Size of an Ed25519 signature. */
#define CM_LEDGER_SIG_BYTES 64

typedef struct cm_ledger cm_ledger;
typedef struct cm_ledger_issue cm_ledger_issue;

/** Flags of cm_ledger_open(). */
enum cm_ledger_flags {
    CM_LEDGER_CREATE = 1,   /**< create the file and schema when missing */
    CM_LEDGER_READONLY = 2, /**< never write (no reconciliation either) */
};

/**
 * What the caller knows about one stamped copy. Strings are UTF-8; NULL
 * means "" except where stated. Not modified by the library.
 */
typedef struct cm_ledger_record {
    const char *recipient;  /**< who received the copy (required, non-empty) */
    const char *asset;      /**< what was stamped (required, non-empty) */
    const char *note;       /**< free text */
    uint8_t input_sha256[CM_LEDGER_HASH_BYTES]; /**< SHA-256 of the input file */
    int width, height;      /**< output dimensions in pixels */
    const char *profile;    /**< strength profile name */
    double strength;        /**< strength multiplier */
    int cel_safe;           /**< 1 when --cel-safe was used */
    const char *layer;      /**< which signal carries the mark (e.g. "luma") */
    const char *operator_name; /**< who ran the stamp (e.g. $USER) */
    const char *stamped_at; /**< UTC "YYYY-MM-DDTHH:MM:SSZ"; NULL = now */
} cm_ledger_record;

/**
 * One ledger row as stored. Strings are NUL-terminated and owned by the row:
 * rows filled by cm_ledger_get() are released with cm_ledger_row_clear();
 * rows passed to a cm_ledger_list() callback are valid during the call only.
 */
typedef struct cm_ledger_row {
    int64_t seq;            /**< position in the chain, 1, 2, 3 ... */
    uint64_t issue_id;
    char *recipient, *asset, *note;
    uint8_t input_sha256[CM_LEDGER_HASH_BYTES];
    uint8_t output_sha256[CM_LEDGER_HASH_BYTES];
    char *output_path;      /**< absolute path the copy was written to */
    int64_t output_size;    /**< bytes */
    int width, height;
    char *profile;
    double strength;
    int cel_safe;
    char *layer;
    char *tool_version;
    char *key_fingerprint;  /**< of the signing key (never the key) */
    uint8_t signer_pub[CM_KEY_PUBLIC_BYTES];
    char *stamped_at;       /**< UTC, "YYYY-MM-DDTHH:MM:SSZ" */
    char *operator_name;
    uint8_t prev_hash[CM_LEDGER_HASH_BYTES]; /**< SHA-256 of the previous row's
                                                  canonical bytes; zeros for row 1 */
    uint8_t signature[CM_LEDGER_SIG_BYTES];  /**< Ed25519 over this row's canonical bytes */
    int chain_len;          /**< certificates in chain: 0 when a studio key signed
                                 the row, its layer for a delegated key; -1 when
                                 the stored chain cannot be decoded (the row then
                                 fails its signature check) */
    cm_key_cert chain[CM_KEY_MAX_LAYER]; /**< the signer's certificate chain, the
                                              studio's first (cm_key_chain()) */
} cm_ledger_row;

/** Result of cm_ledger_check(). */
typedef struct cm_ledger_report {
    int64_t rows;           /**< rows checked */
    int ok;                 /**< 1 when the chain and every signature are intact */
    int64_t bad_seq;        /**< first bad row's seq (0 when ok) */
    uint64_t bad_issue_id;  /**< its issue id */
    char reason[160];       /**< why it is bad, e.g. "signature does not match" */
    int64_t other_signer;   /**< rows signed by a key other than the one given
                                 and not by one it delegated to */
    int64_t pending;        /**< unfinished stamps still in progress */
    int64_t delegations;    /**< delegation rows among rows */
    int64_t delegated;      /**< rows signed by a key the one given delegated to
                                 (at any depth), proven by the row's chain */
    int bad_kind;           /**< the first bad row's kind (enum cm_ledger_row_kind) */
} cm_ledger_report;

/** The kinds of rows in a ledger's chain. */
enum cm_ledger_row_kind {
    CM_LEDGER_ROW_ISSUE = 0,      /**< a stamped copy (cm_ledger_row) */
    CM_LEDGER_ROW_DELEGATION = 1, /**< a delegation (cm_ledger_delegation) */
};

/**
 * Open (and with CM_LEDGER_CREATE create) a ledger file. Sets WAL mode, a
 * busy timeout of 30 s, checks meta.schema_version, and, unless READONLY,
 * cleans the leftovers of crashed stamps (cm_ledger_reconcile()).
 *
 * @param ctx   error context (may be NULL)
 * @param path  the SQLite file
 * @param flags CM_LEDGER_CREATE, CM_LEDGER_READONLY
 * @param out   receives the handle (free with cm_ledger_close()); NULL on failure
 * @return CM_OK; CM_E_INVAL; CM_E_NOMEM; CM_E_LEDGER when the file is missing
 *         (without CREATE), not a celmark ledger, of a newer schema, or
 *         unreadable (detail in ctx names the file).
 */
CM_API int cm_ledger_open(cm_ctx *ctx, const char *path, int flags, cm_ledger **out);

/** Close a ledger; accepts NULL and a pointer to NULL; sets *lg to NULL. */
CM_API void cm_ledger_close(cm_ledger **lg);

/**
 * Clean up after stamps that died between cm_ledger_reserve() and the end of
 * cm_ledger_issue_commit(): for each pending entry whose process is gone,
 * remove its temporary files, its output if the output is the one it wrote
 * (same SHA-256), and the entry. Entries of live stamps are left alone.
 *
 * @param cleaned  receives the number of entries removed (may be NULL)
 * @return CM_OK; CM_E_INVAL; CM_E_LEDGER.
 */
CM_API int cm_ledger_reconcile(cm_ctx *ctx, cm_ledger *lg, int *cleaned);

/**
 * Reserve a fresh issue id for a copy that will be written to out_path:
 * draws random 64-bit ids (OpenSSL RAND_bytes) until one is unused by any
 * row or pending entry, and commits a pending entry for it.
 *
 * @param out_path  the final output path (its folder must exist)
 * @param out       receives the issue (free with cm_ledger_issue_commit()
 *                  or cm_ledger_issue_abort())
 * @return CM_OK; CM_E_INVAL; CM_E_NOMEM; CM_E_IO (output folder); CM_E_CRYPTO;
 *         CM_E_LEDGER.
 */
CM_API int cm_ledger_reserve(cm_ctx *ctx, cm_ledger *lg, const char *out_path,
                             cm_ledger_issue **out);

/** The issue id reserved. */
CM_API uint64_t cm_ledger_issue_id(const cm_ledger_issue *iss);

/** Where to write the stamped copy before commit (same folder as the output,
 *  same extension). Owned by the issue. */
CM_API const char *cm_ledger_issue_temp_path(const cm_ledger_issue *iss);

/**
 * Finish an issue: hash the complete temporary file, then in one transaction
 * append the signed, chained row, move the file to its output path (without
 * force never replacing an existing file) and commit. On failure neither the
 * row nor the output exists. Always frees *iss (sets it to NULL).
 *
 * @param rec    what to record (recipient and asset required)
 * @param key    signs the row
 * @param force  replace an existing output file
 * @param row_out  if not NULL, receives the stored row (cm_ledger_row_clear())
 * @return CM_OK; CM_E_INVAL; CM_E_EXISTS; CM_E_IO; CM_E_CRYPTO; CM_E_LEDGER.
 */
CM_API int cm_ledger_issue_commit(cm_ctx *ctx, cm_ledger *lg, cm_ledger_issue **iss,
                                  const cm_ledger_record *rec, const cm_key *key,
                                  int force, cm_ledger_row *row_out);

/** Give up an issue: remove its temporary file and pending entry. Accepts
 *  NULL and a pointer to NULL; sets *iss to NULL. */
CM_API void cm_ledger_issue_abort(cm_ledger *lg, cm_ledger_issue **iss);

/**
 * Append a signed, chained row without any file (bulk import, benchmarks).
 * Fails with CM_E_EXISTS if issue_id is already recorded. Runs in the
 * caller's transaction when one is open (cm_ledger_begin()).
 *
 * @return CM_OK; CM_E_INVAL; CM_E_EXISTS; CM_E_CRYPTO; CM_E_LEDGER.
 */
CM_API int cm_ledger_append(cm_ctx *ctx, cm_ledger *lg, uint64_t issue_id,
                            const cm_ledger_record *rec,
                            const uint8_t output_sha256[CM_LEDGER_HASH_BYTES],
                            int64_t output_size, const char *output_path,
                            const cm_key *key);

/** Start / commit one write transaction around many cm_ledger_append()
 *  calls. @return CM_OK or CM_E_LEDGER. */
CM_API int cm_ledger_begin(cm_ctx *ctx, cm_ledger *lg);
CM_API int cm_ledger_commit(cm_ctx *ctx, cm_ledger *lg);

/**
 * Look one issue id up.
 * @param row  filled when found (release with cm_ledger_row_clear())
 * @return 1 found, 0 not in the ledger, or a negative CM_E_... code.
 */
CM_API int cm_ledger_get(cm_ctx *ctx, cm_ledger *lg, uint64_t issue_id, cm_ledger_row *row);

/** Free the strings of a row filled by the library and zero it. */
CM_API void cm_ledger_row_clear(cm_ledger_row *row);

/**
 * Call fn for every row in chain order, optionally only those of one
 * recipient and/or asset (NULL = any). Stops early when fn returns non-zero
 * and returns that value.
 * @return CM_OK, fn's non-zero value, CM_E_INVAL or CM_E_LEDGER.
 */
CM_API int cm_ledger_list(cm_ctx *ctx, cm_ledger *lg, const char *recipient,
                          const char *asset,
                          int (*fn)(void *user, const cm_ledger_row *row), void *user);

/**
 * Every recorded issue id, or those of one asset (asset != NULL), for
 * cm_verify_params.candidates.
 * @param ids  receives a malloc'ed array (free()); NULL when n == 0
 * @return CM_OK; CM_E_INVAL; CM_E_NOMEM; CM_E_LEDGER.
 */
CM_API int cm_ledger_candidates(cm_ctx *ctx, cm_ledger *lg, const char *asset,
                                uint64_t **ids, size_t *n);

/**
 * Check one row's Ed25519 signature against its stored signer key.
 * @return 1 valid, 0 invalid, or a negative CM_E_... code.
 */
CM_API int cm_ledger_row_signature_ok(const cm_ledger_row *row);

/**
 * Whether row->chain is a chain of valid certificates (layers 1, 2, ... in
 * order, each signed by the key the one above names) ending at the row's
 * signer and passing through root_pub: issued by it, or by a key it
 * delegated to. root_pub NULL: any root (the chain's own first issuer).
 * @return 1 or 0 (0 also for a row without chain).
 */
CM_API int cm_ledger_row_chain_ok(const cm_ledger_row *row,
                                  const uint8_t root_pub[CM_KEY_PUBLIC_BYTES]);

/**
 * Check the whole ledger: rows of every kind numbered 1..n without gaps,
 * each row's prev_hash equal to SHA-256 of the previous row's canonical
 * bytes, each signature valid, and each signer trusted: key itself, or a key
 * it delegated to at any depth as the certificate chain stored in the row
 * proves (so a vendor's ledger checks with the studio's key). A delegation
 * row's certificate must also be valid, issued by the row's signer, one
 * layer below it. Tampering is a result (report->ok == 0), not an error.
 * Rows signed by any other key, or whose chain does not hold, are counted in
 * report->other_signer and reported bad.
 *
 * @param key  the key at the root of trust (only its public key is used)
 * @return CM_OK (report filled); CM_E_INVAL; CM_E_NOMEM; CM_E_LEDGER.
 */
CM_API int cm_ledger_check(cm_ctx *ctx, cm_ledger *lg, const cm_key *key,
                           cm_ledger_report *report);

/** cm_ledger_check() from a public key alone (e.g. the studio's, handed to
 *  an auditor). Same returns. */
CM_API int cm_ledger_check_pub(cm_ctx *ctx, cm_ledger *lg,
                               const uint8_t root_pub[CM_KEY_PUBLIC_BYTES],
                               cm_ledger_report *report);

/**
 * Fingerprint of the key that signed the most rows (for the "key given is
 * not the one the rows were signed with" warning). out is "" when the
 * ledger is empty.
 * @return CM_OK; CM_E_INVAL; CM_E_LEDGER.
 */
CM_API int cm_ledger_signer(cm_ctx *ctx, cm_ledger *lg,
                            char out[CM_KEY_FINGERPRINT_CHARS + 1]);

/* ---- delegation (issue 17): a key one layer down the chain ------------- */

/** A delegation recorded in a ledger. */
typedef struct cm_ledger_delegation {
    int64_t seq;      /**< its row in the ledger's chain */
    cm_key_cert cert; /**< name, layer, the delegate's public key, the
                           commitment to its layer secret, date, issuer
                           (zeros when the stored certificate is malformed) */
    int sig_ok;       /**< 1 when the row's signature and the certificate hold:
                           both by the row's signer, one layer above cert */
    char key_fingerprint[CM_KEY_FINGERPRINT_CHARS + 1]; /**< of the delegating key */
    uint8_t signer_pub[CM_KEY_PUBLIC_BYTES];            /**< the delegating key */
    char recorded_at[32];   /**< when the row was written, UTC "YYYY-MM-DDTHH:MM:SSZ" */
    char tool_version[32];  /**< e.g. "celmark 0.1.0" */
    uint8_t prev_hash[CM_LEDGER_HASH_BYTES]; /**< as in cm_ledger_row */
    uint8_t signature[CM_LEDGER_SIG_BYTES];  /**< Ed25519 over the row's canonical bytes */
    int chain_len;          /**< the delegating key's layer (-1: damaged) */
    cm_key_cert chain[CM_KEY_MAX_LAYER]; /**< the delegating key's own chain */
} cm_ledger_delegation;

/**
 * Record that key delegated `delegate` (made by cm_key_delegate(key, ...)):
 * a signed row of its own kind in the ledger's hash chain, holding the
 * delegate's certificate (and key's own chain when key is a delegate
 * itself). Rows a delegated key stamps carry its chain of certificates, so
 * that they can be checked from the studio's public key. Runs in the
 * caller's transaction when one is open (cm_ledger_begin()).
 * @return CM_OK; CM_E_INVAL (delegate not key's direct delegate, a key that
 *         cannot sign); CM_E_CRYPTO; CM_E_LEDGER; CM_E_IO.
 */
CM_API int cm_ledger_add_delegation(cm_ctx *ctx, cm_ledger *lg, const cm_key *key,
                                    const cm_key *delegate);

/**
 * Every delegation in the ledger, in chain order: *out (free with free())
 * and *n. @return CM_OK; CM_E_INVAL; CM_E_NOMEM; CM_E_LEDGER.
 */
CM_API int cm_ledger_delegations(cm_ctx *ctx, cm_ledger *lg, cm_ledger_delegation **out,
                                 size_t *n);

/**
 * The fingerprint of a public key a ledger stores (a row's signer, a
 * certificate's subject or issuer), as cm_key_fingerprint() gives it for
 * the key itself.
 * @return CM_OK; CM_E_INVAL; CM_E_CRYPTO.
 */
CM_API int cm_ledger_fingerprint(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                                 char out[CM_KEY_FINGERPRINT_CHARS + 1]);

/**
 * SHA-256 of a whole file (streamed).
 * @param size  receives the file size in bytes (may be NULL)
 * @return CM_OK; CM_E_INVAL; CM_E_IO; CM_E_CRYPTO.
 */
CM_API int cm_sha256_file(cm_ctx *ctx, const char *path,
                          uint8_t out[CM_LEDGER_HASH_BYTES], int64_t *size);

#ifdef __cplusplus
}
#endif
#endif
