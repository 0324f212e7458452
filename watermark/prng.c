/*
 * Keyed pseudo-random streams: AES-256-CTR keystream via OpenSSL EVP.
 * See prng.h for the exact stream definition.
 */
#include "watermark/prng.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int cm__prng_init(cm__prng *prng, const uint8_t key[32], uint64_t nonce)
{
    uint8_t iv[16] = {0};
    int rc = CM_E_CRYPTO;

    if (!prng)
        return CM_E_INVAL;
    memset(prng, 0, sizeof(*prng));
    prng->pos = sizeof(prng->buf); /* empty: first use refills */
    if (!key)
        return CM_E_INVAL;
    /* IV = LE64(nonce) || 0^64; OpenSSL increments the whole 128-bit IV as a
     * big-endian counter, so the low 8 bytes count blocks (2^64 blocks before
     * they would carry into the nonce: never reached). */
    for (int i = 0; i < 8; i++)
        iv[i] = (uint8_t)(nonce >> (8 * i));
    prng->cipher = EVP_CIPHER_CTX_new();
    if (!prng->cipher) {
        rc = CM_E_NOMEM;
        goto fail;
    }
    if (EVP_EncryptInit_ex(prng->cipher, EVP_aes_256_ctr(), NULL, key, iv) != 1)
        goto fail;
    return CM_OK;
fail:
    cm__prng_free(prng);
    prng->status = rc;
    return rc;
}

void cm__prng_free(cm__prng *prng)
{
    if (!prng)
        return;
    EVP_CIPHER_CTX_free(prng->cipher); /* wipes the key schedule */
    prng->cipher = NULL;
    OPENSSL_cleanse(prng->buf, sizeof(prng->buf));
    prng->pos = sizeof(prng->buf);
    prng->bits = 0;
    prng->nbits = 0;
}

/* Next CM__PRNG_BUF_BYTES of keystream: encrypt zeros in place. */
static void refill(cm__prng *prng)
{
    int out_len = 0;

    memset(prng->buf, 0, sizeof(prng->buf));
    prng->pos = 0;
    if (prng->status || !prng->cipher)
        goto fail;
    if (EVP_EncryptUpdate(prng->cipher, prng->buf, &out_len, prng->buf,
                          (int)sizeof(prng->buf)) != 1 ||
        out_len != (int)sizeof(prng->buf))
        goto fail;
    return;
fail:
    memset(prng->buf, 0, sizeof(prng->buf));
    prng->status = CM_E_CRYPTO;
}

int cm__prng_bytes(cm__prng *prng, uint8_t *out, size_t n)
{
    assert(prng && (out || n == 0));
    while (n > 0) {
        size_t avail, take;
        if (prng->pos == sizeof(prng->buf))
            refill(prng);
        avail = sizeof(prng->buf) - prng->pos;
        take = n < avail ? n : avail;
        memcpy(out, prng->buf + prng->pos, take);
        /* handed-out keystream is not kept around */
        memset(prng->buf + prng->pos, 0, take);
        prng->pos += take;
        out += take;
        n -= take;
    }
    return prng->status;
}

uint32_t cm__prng_u32(cm__prng *prng)
{
    uint8_t b[4];

    cm__prng_bytes(prng, b, sizeof(b));
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

uint32_t cm__prng_below(cm__prng *prng, uint32_t n)
{
    uint32_t threshold, x;

    assert(n > 0);
    if (n == 0)
        return 0;
    /* 2^32 mod n: values below it would make the low residues more likely;
     * the [threshold, 2^32) range holds a whole multiple of n values. */
    threshold = (uint32_t)(0u - n) % n;
    do {
        x = cm__prng_u32(prng);
    } while (x < threshold && prng->status == 0);
    return x % n;
}

void cm__prng_permutation(cm__prng *prng, uint32_t *perm, uint32_t n)
{
    assert(perm || n == 0);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = cm__prng_below(prng, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

int cm__prng_sign(cm__prng *prng)
{
    int bit;

    if (prng->nbits == 0) {
        prng->bits = cm__prng_u32(prng);
        prng->nbits = 32;
    }
    bit = (int)(prng->bits & 1);
    prng->bits >>= 1;
    prng->nbits--;
    return bit ? 1 : -1;
}
