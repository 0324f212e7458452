/*
 * Keyed pseudo-random streams for the watermark (chips, interleaving, sync
 * positions). Library-internal; not installed.
 *
 * The stream is the AES-256-CTR keystream (OpenSSL EVP) for a 32-byte subkey
 * and a 64-bit nonce: block i is AES_key(LE64(nonce) || BE64(i)), i = 0, 1, ...
 * Numbers are assembled from the stream bytes explicitly little-endian, so the
 * same key and nonce give the same numbers on every platform. Never rand().
 *
 * Every call consumes the stream in call order; interleaving different calls
 * is deterministic but gives different numbers than calling them in another
 * order. Not thread-safe: one cm__prng per thread.
 */
#ifndef CELMARK_PRNG_H
#define CELMARK_PRNG_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

/* Keystream bytes produced per refill: 32 AES blocks. Large enough that the
 * EVP call overhead is amortised, small enough to stay in L1. */
#define CM__PRNG_BUF_BYTES 512

typedef struct cm__prng {
    EVP_CIPHER_CTX *cipher;          /* AES-256-CTR, owns the key schedule */
    uint8_t buf[CM__PRNG_BUF_BYTES]; /* keystream not yet handed out */
    size_t pos;                      /* next unread byte of buf */
    uint32_t bits;                   /* bit reservoir for cm__prng_sign */
    int nbits;                       /* valid bits left in the reservoir */
    int status; /* 0, or CM_E_CRYPTO once a refill failed: from then on the
                   stream is all zeros and cm__prng_bytes returns the error */
} cm__prng;

/* Set up the stream for key and nonce. On failure the struct is left safe to
 * pass to cm__prng_free. Returns 0, CM_E_INVAL, CM_E_NOMEM or CM_E_CRYPTO. */
CM__HIDDEN int cm__prng_init(cm__prng *prng, const uint8_t key[32],
                             uint64_t nonce);

/* Wipe the key schedule and buffered keystream. Accepts an already freed or
 * failed-init prng (and NULL). */
CM__HIDDEN void cm__prng_free(cm__prng *prng);

/* The next n keystream bytes. Returns 0 or prng->status (CM_E_CRYPTO). */
CM__HIDDEN int cm__prng_bytes(cm__prng *prng, uint8_t *out, size_t n);

/* Uniform 32-bit number: the next 4 bytes, little-endian. */
CM__HIDDEN uint32_t cm__prng_u32(cm__prng *prng);

/* Uniform in [0, n) without modulo bias (rejection sampling); n > 0
 * (returns 0 for n == 0). */
CM__HIDDEN uint32_t cm__prng_below(cm__prng *prng, uint32_t n);

/* perm[0..n-1] = a uniformly random permutation of 0..n-1 (the array is
 * filled with the identity, then Fisher-Yates shuffled from the top). */
CM__HIDDEN void cm__prng_permutation(cm__prng *prng, uint32_t *perm,
                                     uint32_t n);

/* +1 or -1 with equal probability, one stream bit each (32 per u32 drawn,
 * least significant bit first). */
CM__HIDDEN int cm__prng_sign(cm__prng *prng);

#endif
