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

#ifdef __cplusplus
}
#endif
#endif
