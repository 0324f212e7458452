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

/* A key: the studio's (layer 0), a delegate's (cm_key_delegate: its chain
 * of certificates from the studio down), or a layer key that can only
 * detect (cm_key_layer_key: no signing key, sign == NULL). */
struct cm_key {
    uint8_t secret[CM__KEY_SECRET_BYTES];
    uint8_t seed[CM__KEY_SEED_BYTES];
    uint8_t pub[CM_KEY_PUBLIC_BYTES]; /* derived from seed at creation */
    struct evp_pkey_st *sign;         /* the Ed25519 key, made once for signing */
    int layer;                        /* 0 = the studio's */
    char name[CM_KEY_NAME_MAX + 1];   /* "" for the studio's */
    cm_key_cert chain[CM_KEY_MAX_LAYER]; /* layer certificates, outermost first */
};

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

/* delegate.c, for the key file (key.c): the secret's commitment, whether a
 * delegated key's chain holds together (each certificate signed by the
 * one above, the last naming this key: its public key, secret, layer and
 * name), and whether a delegate's name is acceptable: 0 or CM_E_KEY /
 * CM_E_INVAL with why in ctx (what: the file, for messages). */
CM__HIDDEN void cm__key_commitment(const uint8_t secret[CM__KEY_SECRET_BYTES],
                                   uint8_t out[CM_KEY_COMMITMENT_BYTES]);
CM__HIDDEN int cm__key_chain_check(cm_ctx *ctx, const char *what, const cm_key *key);
CM__HIDDEN int cm__key_name_check(cm_ctx *ctx, const char *what, const char *name);

#endif
