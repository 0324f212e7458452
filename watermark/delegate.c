/*
 * Delegation: a vendor's key one layer down the subcontracting chain.
 *
 * A delegate's watermark secret is derived one-way from its parent's:
 *
 *   secret(child) = HKDF-SHA256(ikm = secret(parent), salt "celmark v1",
 *                               info "celmark delegate v1" 0x00 layer name)
 *
 * so the parent (and every key above it) can rebuild each delegate's secret
 * from its name and read that layer's marks, while the delegate cannot go
 * back up to its parent's secret nor across to a sibling's (HKDF is a
 * pseudorandom function keyed by the parent's secret). The delegate's
 * Ed25519 key is fresh, not derived: only the delegate can sign its own
 * ledger rows.
 *
 * The certificate binds the delegate to its parent: the parent's Ed25519
 * signature over
 *
 *   "CMK1" layer name_len name subject_pub commitment date_len date issuer_pub
 *
 * (commitment = SHA-256("celmark layer v1" secret(child)): the certificate
 * names the layer secret without revealing it). A key's chain holds one
 * certificate per layer, the studio's first; with the studio's public key
 * alone anyone can check the chain, and so who signed each ledger row.
 */
#include "watermark/key_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define CERT_MAGIC "CMK1"
#define DELEGATE_INFO "celmark delegate v1"
#define COMMITMENT_LABEL "celmark layer v1"

void cm__key_commitment(const uint8_t secret[CM__KEY_SECRET_BYTES],
                        uint8_t out[CM_KEY_COMMITMENT_BYTES])
{
    uint8_t buf[sizeof(COMMITMENT_LABEL) - 1 + CM__KEY_SECRET_BYTES];
    memcpy(buf, COMMITMENT_LABEL, sizeof(COMMITMENT_LABEL) - 1);
    memcpy(buf + sizeof(COMMITMENT_LABEL) - 1, secret, CM__KEY_SECRET_BYTES);
    unsigned int len = 0;
    EVP_Digest(buf, sizeof(buf), out, &len, EVP_sha256(), NULL);
    OPENSSL_cleanse(buf, sizeof(buf));
}

/* Valid UTF-8 with no control character (C0, DEL, C1) and no '/' (names
 * join into paths "vendor-a/sub-x"): 1 or 0. */
static int name_ok(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t n = strlen(name);
    if (n == 0 || n > CM_KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, min;
        int extra;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '/')
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3, min = 0x10000;
        else
            return 0;
        if (i + (size_t)extra >= n)
            return 0;
        cp = c & (0x3fu >> extra);
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
            return 0; /* overlong, out of range, a surrogate, a C1 control */
        i += (size_t)extra + 1;
    }
    return 1;
}

int cm__key_name_check(cm_ctx *ctx, const char *what, const char *name)
{
    if (!name || !name_ok(name))
        return cm__error(ctx, CM_E_INVAL,
                         "%s: a delegate's name must be 1 to %d bytes of UTF-8 without "
                         "control characters or '/'",
                         what, CM_KEY_NAME_MAX);
    return CM_OK;
}

/* The signed part of cert into buf: its length, or -1 when it cannot be. */
static int cert_body(const cm_key_cert *c, uint8_t *buf, size_t size)
{
    size_t nl = strlen(c->name), dl = strlen(c->date), need;
    need = 4 + 1 + 1 + nl + CM_KEY_PUBLIC_BYTES + CM_KEY_COMMITMENT_BYTES + 1 + dl +
           CM_KEY_PUBLIC_BYTES;
    if (nl > CM_KEY_NAME_MAX || dl >= sizeof(c->date) || c->layer < 1 ||
        c->layer > CM_KEY_MAX_LAYER || need > size)
        return -1;
    uint8_t *p = buf;
    memcpy(p, CERT_MAGIC, 4), p += 4;
    *p++ = (uint8_t)c->layer;
    *p++ = (uint8_t)nl;
    memcpy(p, c->name, nl), p += nl;
    memcpy(p, c->subject_pub, CM_KEY_PUBLIC_BYTES), p += CM_KEY_PUBLIC_BYTES;
    memcpy(p, c->commitment, CM_KEY_COMMITMENT_BYTES), p += CM_KEY_COMMITMENT_BYTES;
    *p++ = (uint8_t)dl;
    memcpy(p, c->date, dl), p += dl;
    memcpy(p, c->issuer_pub, CM_KEY_PUBLIC_BYTES), p += CM_KEY_PUBLIC_BYTES;
    return (int)(p - buf);
}

int cm_key_cert_encode(const cm_key_cert *cert, uint8_t *buf, size_t size)
{
    if (!cert || !buf)
        return CM_E_INVAL;
    int n = cert_body(cert, buf, size);
    if (n < 0 || (size_t)n + sizeof(cert->signature) > size)
        return CM_E_INVAL;
    memcpy(buf + n, cert->signature, sizeof(cert->signature));
    return n + (int)sizeof(cert->signature);
}

int cm_key_cert_decode(const uint8_t *buf, size_t len, cm_key_cert *c)
{
    if (!buf || !c)
        return CM_E_INVAL;
    memset(c, 0, sizeof(*c));
    size_t at = 0;
#define NEED(n)                                                                    \
    do {                                                                           \
        if (len - at < (size_t)(n))                                                \
            return CM_E_FORMAT;                                                    \
    } while (0)
    NEED(6);
    if (memcmp(buf, CERT_MAGIC, 4))
        return CM_E_FORMAT;
    c->layer = buf[4];
    size_t nl = buf[5];
    at = 6;
    if (c->layer < 1 || c->layer > CM_KEY_MAX_LAYER || nl == 0 || nl > CM_KEY_NAME_MAX)
        return CM_E_FORMAT;
    NEED(nl);
    memcpy(c->name, buf + at, nl), at += nl;
    NEED(CM_KEY_PUBLIC_BYTES + CM_KEY_COMMITMENT_BYTES + 1);
    memcpy(c->subject_pub, buf + at, CM_KEY_PUBLIC_BYTES), at += CM_KEY_PUBLIC_BYTES;
    memcpy(c->commitment, buf + at, CM_KEY_COMMITMENT_BYTES), at += CM_KEY_COMMITMENT_BYTES;
    size_t dl = buf[at++];
    if (dl >= sizeof(c->date))
        return CM_E_FORMAT;
    NEED(dl);
    memcpy(c->date, buf + at, dl), at += dl;
    NEED(CM_KEY_PUBLIC_BYTES + sizeof(c->signature));
    memcpy(c->issuer_pub, buf + at, CM_KEY_PUBLIC_BYTES), at += CM_KEY_PUBLIC_BYTES;
    memcpy(c->signature, buf + at, sizeof(c->signature)), at += sizeof(c->signature);
#undef NEED
    if (at != len || !name_ok(c->name) || memchr(c->date, 0, dl))
        return CM_E_FORMAT;
    return CM_OK;
}

int cm_key_cert_ok(const cm_key_cert *cert)
{
    uint8_t body[CM_KEY_CERT_MAX];
    if (!cert || !name_ok(cert->name))
        return 0;
    int n = cert_body(cert, body, sizeof(body));
    return n > 0 && cm__ed25519_verify(cert->issuer_pub, body, (size_t)n, cert->signature) == 1;
}

int cm__key_chain_check(cm_ctx *ctx, const char *what, const cm_key *key)
{
    uint8_t commit[CM_KEY_COMMITMENT_BYTES];
    for (int i = 0; i < key->layer; i++) {
        const cm_key_cert *c = &key->chain[i];
        if (c->layer != i + 1)
            return cm__error(ctx, CM_E_KEY, "%s: certificate %d is for layer %d, not %d",
                             what, i + 1, c->layer, i + 1);
        if (!cm_key_cert_ok(c))
            return cm__error(ctx, CM_E_KEY, "%s: certificate %d (layer %d, \"%s\") has a bad "
                                            "signature",
                             what, i + 1, c->layer, c->name);
        if (i > 0 && memcmp(c->issuer_pub, key->chain[i - 1].subject_pub, CM_KEY_PUBLIC_BYTES))
            return cm__error(ctx, CM_E_KEY, "%s: certificate %d was not signed by the key "
                                            "certificate %d names",
                             what, i + 1, i);
    }
    if (key->layer == 0)
        return CM_OK;
    const cm_key_cert *last = &key->chain[key->layer - 1];
    cm__key_commitment(key->secret, commit);
    if (memcmp(last->subject_pub, key->pub, CM_KEY_PUBLIC_BYTES) ||
        memcmp(last->commitment, commit, sizeof(commit)) || strcmp(last->name, key->name))
        return cm__error(ctx, CM_E_KEY, "%s: the last certificate does not name this key",
                         what);
    return CM_OK;
}

int cm_key_chain_ok(const cm_key *key, const uint8_t root_pub[CM_KEY_PUBLIC_BYTES])
{
    if (!key || !root_pub)
        return 0;
    if (key->layer == 0)
        return memcmp(key->pub, root_pub, CM_KEY_PUBLIC_BYTES) == 0;
    return memcmp(key->chain[0].issuer_pub, root_pub, CM_KEY_PUBLIC_BYTES) == 0 &&
           cm__key_chain_check(NULL, "key", key) == CM_OK;
}

/* secret(child) from secret(parent), layer and name (file comment). */
static int child_secret(const cm_key *parent, int layer, const char *name,
                        uint8_t out[CM__KEY_SECRET_BYTES])
{
    uint8_t info[sizeof(DELEGATE_INFO) + 1 + CM_KEY_NAME_MAX];
    size_t nl = strlen(name), il = sizeof(DELEGATE_INFO); /* the label and its NUL */
    memcpy(info, DELEGATE_INFO, il);
    info[il++] = (uint8_t)layer;
    memcpy(info + il, name, nl);
    return cm__hkdf_sha256(parent->secret, CM__KEY_SECRET_BYTES, (const uint8_t *)CM__KEY_SALT,
                           strlen(CM__KEY_SALT), info, il + nl, out, CM__KEY_SECRET_BYTES);
}

/* A new key below parent named name: secret derived, chain copied. */
static int child_key(cm_ctx *ctx, const cm_key *parent, const char *name, const uint8_t *seed,
                     cm_key **out)
{
    *out = NULL;
    if (!parent)
        return cm__error(ctx, CM_E_INVAL, "delegate: no parent key");
    int rc = cm__key_name_check(ctx, "delegate", name);
    if (rc)
        return rc;
    if (parent->layer >= CM_KEY_MAX_LAYER)
        return cm__error(ctx, CM_E_INVAL, "delegate: \"%s\" is at layer %d already, the deepest "
                                          "a chain may go",
                         parent->name, parent->layer);
    uint8_t secret[CM__KEY_SECRET_BYTES], zero[CM__KEY_SEED_BYTES] = {0};
    int layer = parent->layer + 1;
    rc = child_secret(parent, layer, name, secret);
    if (!rc)
        rc = cm__key_from_bytes(out, secret, seed ? seed : zero);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc)
        return rc == CM_E_NOMEM ? cm__error(ctx, rc, "delegate: out of memory")
                                : cm__crypto_error(ctx, rc, "delegate: cannot derive the key");
    cm_key *k = *out;
    k->layer = layer;
    snprintf(k->name, sizeof(k->name), "%s", name);
    memcpy(k->chain, parent->chain, sizeof(cm_key_cert) * (size_t)parent->layer);
    return CM_OK;
}

int cm_key_layer_key(cm_ctx *ctx, const cm_key *parent, const char *name, cm_key **out)
{
    if (!out)
        return cm__error(ctx, CM_E_INVAL, "layer key: out is NULL");
    int rc = child_key(ctx, parent, name, NULL, out);
    if (rc)
        return rc;
    /* detection only: no signing key, no certificate of its own */
    EVP_PKEY_free((*out)->sign);
    (*out)->sign = NULL;
    OPENSSL_cleanse((*out)->seed, sizeof((*out)->seed));
    memset((*out)->pub, 0, sizeof((*out)->pub));
    return CM_OK;
}

int cm_key_delegate(cm_ctx *ctx, const cm_key *parent, const char *name, const char *date,
                    cm_key **out)
{
    if (!out)
        return cm__error(ctx, CM_E_INVAL, "delegate: out is NULL");
    *out = NULL;
    if (parent && !parent->sign)
        return cm__error(ctx, CM_E_INVAL, "delegate: a layer key cannot sign a certificate");
    uint8_t seed[CM__KEY_SEED_BYTES];
    if (RAND_priv_bytes(seed, sizeof(seed)) != 1)
        return cm__crypto_error(ctx, CM_E_CRYPTO, "delegate: cannot draw random bytes");
    int rc = child_key(ctx, parent, name, seed, out);
    OPENSSL_cleanse(seed, sizeof(seed));
    if (rc)
        return rc;
    cm_key *k = *out;
    cm_key_cert *c = &k->chain[k->layer - 1];
    memset(c, 0, sizeof(*c));
    c->layer = k->layer;
    snprintf(c->name, sizeof(c->name), "%s", k->name);
    memcpy(c->subject_pub, k->pub, CM_KEY_PUBLIC_BYTES);
    cm__key_commitment(k->secret, c->commitment);
    if (date) {
        snprintf(c->date, sizeof(c->date), "%s", date);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(c->date, sizeof(c->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    memcpy(c->issuer_pub, parent->pub, CM_KEY_PUBLIC_BYTES);
    uint8_t body[CM_KEY_CERT_MAX];
    int n = cert_body(c, body, sizeof(body));
    rc = n < 0 ? CM_E_INVAL : cm__key_sign(parent, body, (size_t)n, c->signature);
    if (rc) {
        cm_key_free(out);
        return rc == CM_E_INVAL ? cm__error(ctx, rc, "delegate: date too long")
                                : cm__crypto_error(ctx, rc, "delegate: cannot sign");
    }
    return CM_OK;
}

int cm_key_layer(const cm_key *key)
{
    return key ? key->layer : 0;
}

const char *cm_key_name(const cm_key *key)
{
    return key ? key->name : "";
}

const cm_key_cert *cm_key_chain(const cm_key *key, int *n)
{
    if (n)
        *n = key ? key->layer : 0;
    return key ? key->chain : NULL;
}
