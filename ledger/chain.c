/*
 * The ledger's hash chain and signatures.
 *
 * Canonical row bytes. A row is turned into bytes by a fixed, documented
 * encoding that never depends on SQLite's storage, column order or text
 * formatting. The encoding is a sequence of fields, each written as a
 * 4-byte big-endian length followed by that many bytes. An issue row signed
 * by a studio key (layer 0) has 22 fields in this order:
 *
 *    #  field            bytes
 *    0  tag              "celmark.ledger.row/1" (ASCII, 20 bytes)
 *    1  seq              8, big-endian two's complement
 *    2  issue_id         8, big-endian
 *    3  recipient        UTF-8 text, no terminator
 *    4  asset            UTF-8
 *    5  note             UTF-8
 *    6  input_sha256     32
 *    7  output_sha256    32
 *    8  output_path      UTF-8
 *    9  output_size      8, big-endian two's complement
 *   10  width            8, big-endian two's complement
 *   11  height           8, big-endian two's complement
 *   12  profile          UTF-8
 *   13  strength         8, IEEE-754 binary64 bits, big-endian
 *   14  cel_safe         8, big-endian (0 or 1)
 *   15  layer            UTF-8
 *   16  tool_version     UTF-8
 *   17  key_fingerprint  UTF-8
 *   18  signer_pub       32 (Ed25519 public key)
 *   19  stamped_at       UTF-8 ("YYYY-MM-DDTHH:MM:SSZ")
 *   20  operator         UTF-8
 *   21  prev_hash        32
 *
 *   +--------+---------+--------+---------+-----+--------+-----------+
 *   | len=20 | tag     | len=8  | seq     | ... | len=32 | prev_hash |
 *   +--------+---------+--------+---------+-----+--------+-----------+
 *
 * An issue row signed by a delegated key (layer n >= 1) carries its chain:
 * the tag is "celmark.ledger.row/2", fields 1..21 as above, then
 *
 *   22  chain_len        8, big-endian (n)
 *   23  cert 1           cm_key_cert_encode() bytes, the studio's certificate
 *   ..  ...
 *   22+n cert n          the signer's own certificate
 *
 * (schema 1 ledgers hold /1 rows only, and schema 2 writes them unchanged:
 * the chain never changes a studio key's row). A delegation row has
 *
 *    0  tag              "celmark.ledger.delegation/1" (27 bytes)
 *    1  seq              8, big-endian two's complement
 *    2  cert             cm_key_cert_encode() bytes of the delegate's
 *                        certificate (name, layer, public key, commitment,
 *                        date, issuer, issuer's signature)
 *    3  tool_version     UTF-8
 *    4  key_fingerprint  UTF-8, of the delegating key
 *    5  signer_pub       32, the delegating key
 *    6  recorded_at      UTF-8 ("YYYY-MM-DDTHH:MM:SSZ")
 *    7  prev_hash        32
 *    8  chain_len        8, big-endian: the delegating key's layer m
 *    9.. cert 1..m       the delegating key's own chain (none for a studio key)
 *
 * Length prefixes make the encoding unambiguous: no choice of text (commas,
 * NULs, newlines) can make two different rows encode the same bytes, and
 * the tags keep the kinds apart. The signature is not part of the canonical
 * bytes; it is computed over them.
 *
 * Chain. Row n stores prev_hash = SHA-256(canonical(row n-1)) (zeros for
 * row 1), whatever either row's kind, and signature = Ed25519(canonical(row
 * n)). Because seq and prev_hash are signed, an edited row fails its
 * signature; a deleted row leaves a gap in seq and a prev_hash mismatch; an
 * inserted row cannot be signed without the key; reordered rows change seq
 * or break prev_hash; stripping a row's chain changes its tag. Only cutting
 * rows off the end is invisible to the chain alone (a known limit of any
 * hash chain without an external anchor; see the README).
 *
 * Stored chains. The issues.chain and delegations.chain columns hold a
 * chain as its certificates one after another, each as a 2-byte big-endian
 * length and the cm_key_cert_encode() bytes (empty: no chain).
 */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields of a /1 issue row; a /2 row adds the chain's length and
 * certificates, a delegation row has fewer. */
#define NFIELDS 22
#define MAX_FIELDS (NFIELDS + 1 + CM_KEY_MAX_LAYER)

typedef struct field {
    const void *p;
    size_t n;
    uint8_t num[8];
} field;

static void put_u64(uint8_t b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void set_num(field *f, uint64_t v)
{
    put_u64(f->num, v);
    f->p = f->num;
    f->n = 8;
}

static void set_str(field *f, const char *s)
{
    f->p = s ? s : "";
    f->n = s ? strlen(s) : 0;
}

static void set_bytes(field *f, const void *p, size_t n)
{
    f->p = p;
    f->n = n;
}

/* Length-prefix the fields into one malloc'ed buffer. */
static int encode(const field *f, int n, uint8_t **buf, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (f[i].n > UINT32_MAX || total > SIZE_MAX - 4 - f[i].n)
            return CM_E_INVAL;
        total += 4 + f[i].n;
    }
    uint8_t *b = malloc(total), *p = b;
    if (!b)
        return CM_E_NOMEM;
    for (int i = 0; i < n; i++) {
        uint32_t len32 = (uint32_t)f[i].n;
        *p++ = (uint8_t)(len32 >> 24);
        *p++ = (uint8_t)(len32 >> 16);
        *p++ = (uint8_t)(len32 >> 8);
        *p++ = (uint8_t)len32;
        if (len32)
            memcpy(p, f[i].p, len32);
        p += len32;
    }
    *buf = b;
    *len = total;
    return CM_OK;
}

/* The chain's length and certificates as fields f[0..n]; certs holds their
 * bytes. Returns the number of fields, or CM_E_INVAL. */
static int chain_fields(const cm_key_cert *chain, int n, field *f,
                        uint8_t certs[CM_KEY_MAX_LAYER][CM_KEY_CERT_MAX])
{
    if (n < 0 || n > CM_KEY_MAX_LAYER)
        return CM_E_INVAL;
    set_num(&f[0], (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int len = cm_key_cert_encode(&chain[i], certs[i], CM_KEY_CERT_MAX);
        if (len < 0)
            return CM_E_INVAL;
        set_bytes(&f[1 + i], certs[i], (size_t)len);
    }
    return 1 + n;
}

int cm__ledger_canonical(const cm_ledger_row *r, uint8_t **buf, size_t *len)
{
    field f[MAX_FIELDS];
    uint8_t certs[CM_KEY_MAX_LAYER][CM_KEY_CERT_MAX];
    uint64_t bits;
    int i = 0;

    if (!r || !buf || !len || r->chain_len < 0 || r->chain_len > CM_KEY_MAX_LAYER)
        return CM_E_INVAL;
    set_str(&f[i++], r->chain_len ? CM__LEDGER_ROW_TAG_2 : CM__LEDGER_ROW_TAG);
    set_num(&f[i++], (uint64_t)r->seq);
    set_num(&f[i++], r->issue_id);
    set_str(&f[i++], r->recipient);
    set_str(&f[i++], r->asset);
    set_str(&f[i++], r->note);
    set_bytes(&f[i++], r->input_sha256, CM_LEDGER_HASH_BYTES);
    set_bytes(&f[i++], r->output_sha256, CM_LEDGER_HASH_BYTES);
    set_str(&f[i++], r->output_path);
    set_num(&f[i++], (uint64_t)r->output_size);
    set_num(&f[i++], (uint64_t)(int64_t)r->width);
    set_num(&f[i++], (uint64_t)(int64_t)r->height);
    set_str(&f[i++], r->profile);
    memcpy(&bits, &r->strength, sizeof(bits));
    set_num(&f[i++], bits);
    set_num(&f[i++], (uint64_t)(r->cel_safe ? 1 : 0));
    set_str(&f[i++], r->layer);
    set_str(&f[i++], r->tool_version);
    set_str(&f[i++], r->key_fingerprint);
    set_bytes(&f[i++], r->signer_pub, CM_KEY_PUBLIC_BYTES);
    set_str(&f[i++], r->stamped_at);
    set_str(&f[i++], r->operator_name);
    set_bytes(&f[i++], r->prev_hash, CM_LEDGER_HASH_BYTES);
    if (r->chain_len) {
        int n = chain_fields(r->chain, r->chain_len, &f[i], certs);
        if (n < 0)
            return n;
        i += n;
    }
    return encode(f, i, buf, len);
}

int cm__ledger_dcanonical(const cm__ledger_drow *d, uint8_t **buf, size_t *len)
{
    field f[MAX_FIELDS];
    uint8_t certs[CM_KEY_MAX_LAYER][CM_KEY_CERT_MAX], cert[CM_KEY_CERT_MAX];
    int i = 0;

    if (!d || !buf || !len || !d->cert_ok)
        return CM_E_INVAL;
    int clen = cm_key_cert_encode(&d->cert, cert, sizeof(cert));
    if (clen < 0)
        return CM_E_INVAL;
    set_str(&f[i++], CM__LEDGER_DELEGATION_TAG);
    set_num(&f[i++], (uint64_t)d->seq);
    set_bytes(&f[i++], cert, (size_t)clen);
    set_str(&f[i++], d->tool_version);
    set_str(&f[i++], d->key_fingerprint);
    set_bytes(&f[i++], d->signer_pub, CM_KEY_PUBLIC_BYTES);
    set_str(&f[i++], d->recorded_at);
    set_bytes(&f[i++], d->prev_hash, CM_LEDGER_HASH_BYTES);
    int n = chain_fields(d->chain, d->chain_len, &f[i], certs);
    if (n < 0)
        return n;
    return encode(f, i + n, buf, len);
}

int cm__sha256(const void *data, size_t len, uint8_t out[CM_LEDGER_HASH_BYTES])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != CM_LEDGER_HASH_BYTES)
        return CM_E_CRYPTO;
    return CM_OK;
}

int cm__ledger_row_hash(const cm_ledger_row *row, uint8_t out[CM_LEDGER_HASH_BYTES])
{
    uint8_t *b;
    size_t n;
    int ret = cm__ledger_canonical(row, &b, &n);
    if (ret)
        return ret;
    ret = cm__sha256(b, n, out);
    free(b);
    return ret;
}

int cm__ledger_drow_hash(const cm__ledger_drow *d, uint8_t out[CM_LEDGER_HASH_BYTES])
{
    uint8_t *b;
    size_t n;
    int ret = cm__ledger_dcanonical(d, &b, &n);
    if (ret)
        return ret;
    ret = cm__sha256(b, n, out);
    free(b);
    return ret;
}

int cm__ledger_drow_sign(cm__ledger_drow *d, const cm_key *key)
{
    uint8_t *b;
    size_t n;
    if (!d || !key)
        return CM_E_INVAL;
    int ret = cm__ledger_dcanonical(d, &b, &n);
    if (ret)
        return ret;
    ret = cm__key_sign(key, b, n, d->signature);
    free(b);
    return ret;
}

int cm__ledger_drow_signature_ok(const cm__ledger_drow *d)
{
    uint8_t *b;
    size_t n;
    if (!d)
        return CM_E_INVAL;
    if (!d->cert_ok || d->chain_len < 0)
        return 0; /* what is stored cannot be what was signed */
    int ret = cm__ledger_dcanonical(d, &b, &n);
    if (ret)
        return ret;
    ret = cm__ed25519_verify(d->signer_pub, b, n, d->signature);
    free(b);
    return ret;
}

int cm__ledger_sign(cm_ledger_row *row, const cm_key *key)
{
    uint8_t *b;
    size_t n;
    if (!row || !key)
        return CM_E_INVAL;
    int ret = cm__ledger_canonical(row, &b, &n);
    if (ret)
        return ret;
    ret = cm__key_sign(key, b, n, row->signature);
    free(b);
    return ret;
}

int cm_ledger_row_signature_ok(const cm_ledger_row *row)
{
    uint8_t *b;
    size_t n;
    if (!row)
        return CM_E_INVAL;
    if (row->chain_len < 0 || row->chain_len > CM_KEY_MAX_LAYER)
        return 0; /* a stored chain that does not decode was never signed */
    int ret = cm__ledger_canonical(row, &b, &n);
    if (ret)
        return ret;
    ret = cm__ed25519_verify(row->signer_pub, b, n, row->signature);
    free(b);
    return ret;
}

/* ---- certificate chains ----------------------------------------------- */

int cm__ledger_chain_pack(const cm_key_cert *chain, int n, uint8_t *buf, size_t size,
                          size_t *len)
{
    size_t at = 0;
    if (n < 0 || n > CM_KEY_MAX_LAYER)
        return CM_E_INVAL;
    for (int i = 0; i < n; i++) {
        if (size - at < 2)
            return CM_E_INVAL;
        int c = cm_key_cert_encode(&chain[i], buf + at + 2, size - at - 2);
        if (c < 0)
            return CM_E_INVAL;
        buf[at] = (uint8_t)(c >> 8);
        buf[at + 1] = (uint8_t)c;
        at += 2 + (size_t)c;
    }
    *len = at;
    return CM_OK;
}

int cm__ledger_chain_unpack(const uint8_t *buf, size_t len, cm_key_cert chain[CM_KEY_MAX_LAYER])
{
    size_t at = 0;
    int n = 0;
    while (at < len) {
        if (n == CM_KEY_MAX_LAYER || len - at < 2)
            return -1;
        size_t c = (size_t)buf[at] << 8 | buf[at + 1];
        at += 2;
        if (c > len - at || cm_key_cert_decode(buf + at, c, &chain[n]) != CM_OK)
            return -1;
        at += c;
        n++;
    }
    return n;
}

int cm__ledger_chain_check(const cm_key_cert *chain, int n,
                           const uint8_t signer_pub[CM_KEY_PUBLIC_BYTES],
                           const uint8_t *root_pub, char *why, size_t whylen)
{
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    if (n < 1 || n > CM_KEY_MAX_LAYER) {
        snprintf(why, whylen, "no certificate chain");
        return 0;
    }
    int rooted = !root_pub;
    for (int i = 0; i < n; i++) {
        const cm_key_cert *c = &chain[i];
        if (c->layer != i + 1) {
            snprintf(why, whylen, "its chain's certificate %d is for layer %d", i + 1, c->layer);
            return 0;
        }
        if (!cm_key_cert_ok(c)) {
            snprintf(why, whylen, "its layer %d certificate (%s) has a bad signature", c->layer,
                     c->name);
            return 0;
        }
        if (i > 0 && memcmp(c->issuer_pub, chain[i - 1].subject_pub, CM_KEY_PUBLIC_BYTES)) {
            snprintf(why, whylen, "its layer %d certificate (%s) is not from layer %d's key",
                     c->layer, c->name, i);
            return 0;
        }
        if (root_pub && !memcmp(c->issuer_pub, root_pub, CM_KEY_PUBLIC_BYTES))
            rooted = 1;
    }
    if (memcmp(chain[n - 1].subject_pub, signer_pub, CM_KEY_PUBLIC_BYTES)) {
        snprintf(why, whylen, "its chain ends at another key");
        return 0;
    }
    if (!rooted) {
        if (cm_ledger_fingerprint(chain[0].issuer_pub, fp))
            snprintf(fp, sizeof(fp), "?");
        snprintf(why, whylen, "its chain starts at another key (%s)", fp);
        return 0;
    }
    return 1;
}

int cm_ledger_row_chain_ok(const cm_ledger_row *row, const uint8_t root_pub[CM_KEY_PUBLIC_BYTES])
{
    char why[160];
    return row && cm__ledger_chain_check(row->chain, row->chain_len, row->signer_pub, root_pub,
                                         why, sizeof(why));
}

int cm_ledger_fingerprint(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                          char out[CM_KEY_FINGERPRINT_CHARS + 1])
{
    static const char d[] = "0123456789abcdef";
    uint8_t md[CM_LEDGER_HASH_BYTES];
    if (!pub || !out)
        return CM_E_INVAL;
    if (cm__sha256(pub, CM_KEY_PUBLIC_BYTES, md))
        return CM_E_CRYPTO;
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i && i % 2 == 0)
            *p++ = ':';
        *p++ = d[md[i] >> 4];
        *p++ = d[md[i] & 15];
    }
    *p = '\0';
    return CM_OK;
}
