/*
 * Library-internal key operations: subkey derivation (HKDF-SHA256) and
 * Ed25519 signing. Not installed.
 *
 * All functions return 0 or a negative CM_E... code unless stated otherwise.
 * They take no cm_ctx; a caller that has one can turn the OpenSSL error queue
 * into its detail string with cm__crypto_error().
 */
#ifndef CELMARK_KEY_INTERNAL_H
#define CELMARK_KEY_INTERNAL_H

#include "celmark/key.h"
#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define CM__KEY_SECRET_BYTES 32 /* watermark secret: 256 bits */
#define CM__KEY_SEED_BYTES 32   /* Ed25519 private key (RFC 8032 seed) */
#define CM__ED25519_SIG_BYTES 64

/* Salt of every subkey derivation; changing it changes every mark. */
#define CM__KEY_SALT "celmark v1"

/*
 * Raw HKDF-SHA256 (RFC 5869, extract + expand) through OpenSSL EVP_KDF.
 * salt and info may be NULL when their length is 0; len <= 255 * 32.
 * Returns 0, CM_E_INVAL or CM_E_CRYPTO.
 */
CM__HIDDEN int cm__hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
                               const uint8_t *salt, size_t salt_len,
                               const uint8_t *info, size_t info_len,
                               uint8_t *out, size_t len);

/*
 * Subkey for one purpose: HKDF-SHA256 with ikm = the watermark secret,
 * salt = CM__KEY_SALT, info = label (without its NUL). Distinct labels give
 * independent subkeys. Returns 0, CM_E_INVAL or CM_E_CRYPTO.
 */
CM__HIDDEN int cm__key_derive(const cm_key *key, const char *label,
                              uint8_t *out, size_t len);

/* Ed25519 signature of msg (msg may be NULL when len == 0).
 * Returns 0, CM_E_INVAL or CM_E_CRYPTO. */
CM__HIDDEN int cm__key_sign(const cm_key *key, const uint8_t *msg, size_t len,
                            uint8_t sig[CM__ED25519_SIG_BYTES]);

/* Check an Ed25519 signature: 1 valid, 0 invalid, < 0 (CM_E_...) error. */
CM__HIDDEN int cm__ed25519_verify(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                                  const uint8_t *msg, size_t len,
                                  const uint8_t sig[CM__ED25519_SIG_BYTES]);

/* Build a key from known bytes (tests, known-answer vectors). The caller
 * owns *out. Returns 0, CM_E_INVAL, CM_E_NOMEM or CM_E_CRYPTO. */
CM__HIDDEN int cm__key_from_bytes(cm_key **out,
                                  const uint8_t secret[CM__KEY_SECRET_BYTES],
                                  const uint8_t seed[CM__KEY_SEED_BYTES]);

/*
 * Record status in ctx with the detail "<what>: <OpenSSL reason>", taking the
 * most recent error from this thread's OpenSSL queue and clearing the queue.
 * Returns status.
 */
CM__HIDDEN int cm__crypto_error(cm_ctx *ctx, int status, const char *what);

#endif
