/*
 * celmark — the studio key.
 *
 * A cm_key holds two independent 256-bit secrets:
 *   - the watermark secret, from which every watermark subkey is derived
 *     (HKDF-SHA256, one label per purpose), and
 *   - an Ed25519 seed, used to sign ledger records.
 * Anyone holding the key can stamp and verify marks; the Ed25519 public key
 * (and its fingerprint) can be handed out to let others check signatures.
 *
 * Key files are small text files (see watermark/key.c for the format), created
 * with mode 0600 and refused on load when group or others can read them.
 */
#ifndef CELMARK_KEY_H
#define CELMARK_KEY_H

#include "celmark/common.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque studio key. Secret bytes are wiped when it is freed. */
typedef struct cm_key cm_key;

/** Length of a key fingerprint, without the terminating NUL:
 *  8 groups of 4 lowercase hex digits joined by ':' (32 + 7). */
#define CM_KEY_FINGERPRINT_CHARS 39

/** Size of the Ed25519 public key in bytes. */
#define CM_KEY_PUBLIC_BYTES 32

/**
 * Generate a fresh key from the operating system's CSPRNG
 * (OpenSSL RAND_priv_bytes): a 32-byte watermark secret and a 32-byte
 * Ed25519 seed.
 *
 * @param ctx  error context (may be NULL)
 * @param out  receives the new key; the caller owns it and frees it with
 *             cm_key_free(). Set to NULL on failure.
 * @return CM_OK; CM_E_INVAL (out == NULL); CM_E_NOMEM; CM_E_CRYPTO when the
 *         random generator or the Ed25519 setup fails (detail in ctx).
 */
CM_API int cm_key_generate(cm_ctx *ctx, cm_key **out);

/**
 * Write a key to a new file with mode 0600. Never overwrites: the file is
 * created with O_CREAT|O_EXCL. The data is written fully and fsync()ed; on
 * any failure the partly written file is removed.
 *
 * @param ctx   error context (may be NULL)
 * @param key   the key to save (not modified; still owned by the caller)
 * @param path  file to create
 * @return CM_OK; CM_E_INVAL (NULL argument); CM_E_EXISTS when path already
 *         exists; CM_E_IO when the file cannot be created, written or synced.
 */
CM_API int cm_key_save(cm_ctx *ctx, const cm_key *key, const char *path);

/**
 * Read a key file written by cm_key_save().
 *
 * The file must be a regular file of at most 4 KiB that neither group nor
 * others can access (mode & 077 == 0), in the exact text format. Error
 * messages name the file and the problem, never key bytes.
 *
 * @param ctx   error context (may be NULL)
 * @param path  key file
 * @param out   receives the key; the caller owns it and frees it with
 *              cm_key_free(). Set to NULL on failure.
 * @return CM_OK; CM_E_INVAL (NULL argument); CM_E_KEY when the file is
 *         missing, unsafe (permissions), not a regular file, too big or
 *         malformed; CM_E_IO on a read error; CM_E_NOMEM; CM_E_CRYPTO.
 */
CM_API int cm_key_load(cm_ctx *ctx, const char *path, cm_key **out);

/**
 * Wipe and free a key. Accepts NULL and a pointer to NULL; sets *key to NULL.
 */
CM_API void cm_key_free(cm_key **key);

/**
 * Fingerprint of the key: the first 16 bytes of SHA-256 over the Ed25519
 * public key, as 8 groups of 4 lowercase hex digits joined by ':', e.g.
 * "1a2b:3c4d:...". Anyone with the public key can recompute it; it reveals
 * nothing about the secrets.
 *
 * @param key  the key
 * @param out  buffer of CM_KEY_FINGERPRINT_CHARS + 1 bytes; NUL-terminated
 * @return CM_OK; CM_E_INVAL (NULL argument); CM_E_CRYPTO.
 */
CM_API int cm_key_fingerprint(const cm_key *key,
                              char out[CM_KEY_FINGERPRINT_CHARS + 1]);

/**
 * The key's Ed25519 public key (RFC 8032 encoding).
 *
 * @param key  the key
 * @param pub  receives CM_KEY_PUBLIC_BYTES bytes
 * @return CM_OK; CM_E_INVAL (NULL argument).
 */
CM_API int cm_key_public(const cm_key *key, uint8_t pub[CM_KEY_PUBLIC_BYTES]);

/* ---- delegation: a vendor's key, one layer down the chain -------------- */

/** Deepest layer a key may have (0 = the studio's own key). */
#define CM_KEY_MAX_LAYER 4
/** Longest delegate name, bytes (printable UTF-8, no control characters). */
#define CM_KEY_NAME_MAX 64
/** SHA-256 of a layer's watermark secret (the certificate's commitment). */
#define CM_KEY_COMMITMENT_BYTES 32
/** Size of one encoded certificate, at most. */
#define CM_KEY_CERT_MAX 272

/** One link of a delegated key's chain: the issuer's signature over the
 *  delegate's name, layer, Ed25519 public key, the commitment to its layer
 *  secret and the date. */
typedef struct cm_key_cert {
    int layer;                                  /**< 1..CM_KEY_MAX_LAYER */
    char name[CM_KEY_NAME_MAX + 1];             /**< the delegate's name */
    uint8_t subject_pub[CM_KEY_PUBLIC_BYTES];   /**< the delegate's key */
    uint8_t commitment[CM_KEY_COMMITMENT_BYTES];/**< SHA-256 over its layer secret */
    char date[32];                              /**< when, UTC, ISO 8601 */
    uint8_t issuer_pub[CM_KEY_PUBLIC_BYTES];    /**< the delegating key */
    uint8_t signature[64];                      /**< Ed25519 by the issuer */
} cm_key_cert;

/**
 * Make a delegate's key one layer below parent: its watermark secret is
 * derived one-way from parent's (HKDF-SHA256, info = "celmark delegate v1",
 * the layer and name), so parent can read its marks but it cannot derive
 * parent's secret or any sibling's; a fresh Ed25519 key signs its own
 * ledger; parent signs a certificate over name, layer, public key, the
 * commitment to the new secret and date (NULL: now), appended to parent's
 * chain. Needs a parent that can sign (not a cm_key_layer_key()).
 * @return CM_OK; CM_E_INVAL (bad name, parent at CM_KEY_MAX_LAYER, a
 *         parent without signing key); CM_E_NOMEM; CM_E_CRYPTO.
 */
CM_API int cm_key_delegate(cm_ctx *ctx, const cm_key *parent, const char *name,
                           const char *date, cm_key **out);

/**
 * The detection key of parent's delegate `name` one layer down (what
 * cm_key_delegate derives), without its signing key: parent reads its
 * delegates' marks with it. CM_OK; CM_E_INVAL; CM_E_NOMEM; CM_E_CRYPTO.
 */
CM_API int cm_key_layer_key(cm_ctx *ctx, const cm_key *parent, const char *name, cm_key **out);

/** The key's layer (0: a studio key), its name ("" for a studio key). */
CM_API int cm_key_layer(const cm_key *key);
CM_API const char *cm_key_name(const cm_key *key);

/** The key's certificate chain, outermost (the studio's) first: *n ==
 *  cm_key_layer(key) certificates, owned by the key. */
CM_API const cm_key_cert *cm_key_chain(const cm_key *key, int *n);

/** 1 when cert is signed by cert->issuer_pub and well formed, else 0. */
CM_API int cm_key_cert_ok(const cm_key_cert *cert);

/** Whether key's chain is a valid chain of signatures from root_pub down
 *  to the key itself (layers 1, 2, ... in order, each signed by the one
 *  above, the last naming this key's public key and secret): 1 or 0. A
 *  studio key (layer 0) is valid for its own public key. */
CM_API int cm_key_chain_ok(const cm_key *key, const uint8_t root_pub[CM_KEY_PUBLIC_BYTES]);

/** Encode a certificate (what the ledger stores): its length, at most
 *  CM_KEY_CERT_MAX, or a negative CM_E code. */
CM_API int cm_key_cert_encode(const cm_key_cert *cert, uint8_t *buf, size_t size);
/** Decode one: CM_OK or CM_E_FORMAT (the signature is not checked). */
CM_API int cm_key_cert_decode(const uint8_t *buf, size_t len, cm_key_cert *cert);

#ifdef __cplusplus
}
#endif
#endif
