/*
 * The ledger's hash chain and signatures.
 *
 * Canonical row bytes. A row is turned into bytes by a fixed, documented
 * encoding that never depends on SQLite's storage, column order or text
 * formatting. The encoding is a sequence of 22 fields in this order, each
 * written as a 4-byte big-endian length followed by that many bytes:
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
 * Length prefixes make the encoding unambiguous: no choice of text (commas,
 * NULs, newlines) can make two different rows encode the same bytes. The
 * signature is not part of the canonical bytes; it is computed over them.
 *
 * Chain. Row n stores prev_hash = SHA-256(canonical(row n-1)) (zeros for
 * row 1) and signature = Ed25519(canonical(row n)). Because seq and
 * prev_hash are signed, an edited row fails its signature; a deleted row
 * leaves a gap in seq and a prev_hash mismatch; an inserted row cannot be
 * signed without the key; reordered rows change seq or break prev_hash.
 * Only cutting rows off the end is invisible to the chain alone (a known
 * limit of any hash chain without an external anchor; see the README).
 */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS 22

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

int cm__ledger_canonical(const cm_ledger_row *r, uint8_t **buf, size_t *len)
{
    field f[NFIELDS];
    uint64_t bits;
    int i = 0;

    if (!r || !buf || !len)
        return CM_E_INVAL;
    set_str(&f[i++], CM__LEDGER_ROW_TAG);
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

    size_t total = 0;
    for (i = 0; i < NFIELDS; i++) {
        if (f[i].n > UINT32_MAX || total > SIZE_MAX - 4 - f[i].n)
            return CM_E_INVAL;
        total += 4 + f[i].n;
    }
    uint8_t *b = malloc(total), *p = b;
    if (!b)
        return CM_E_NOMEM;
    for (i = 0; i < NFIELDS; i++) {
        uint32_t n = (uint32_t)f[i].n;
        *p++ = (uint8_t)(n >> 24);
        *p++ = (uint8_t)(n >> 16);
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
        if (n)
            memcpy(p, f[i].p, n);
        p += n;
    }
    *buf = b;
    *len = total;
    return CM_OK;
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
    int ret = cm__ledger_canonical(row, &b, &n);
    if (ret)
        return ret;
    ret = cm__ed25519_verify(row->signer_pub, b, n, row->signature);
    free(b);
    return ret;
}
