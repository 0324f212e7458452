/*
 * The studio key: generation, the key file, subkey derivation, Ed25519.
 *
 * Key file format (ASCII text; exactly three lines, each ending in "\n"):
 *
 *     celmark-key 1
 *     secret <64 lowercase hex>
 *     ed25519 <64 lowercase hex>
 *
 * line 1   magic and format version (only version 1 exists);
 * secret   the 32-byte watermark secret: input keying material of every
 *          subkey (HKDF-SHA256, salt "celmark v1", info = purpose label);
 * ed25519  the 32-byte Ed25519 private key (RFC 8032 seed) that signs
 *          ledger records; the public key is recomputed from it.
 *
 * A delegated key (watermark/delegate.c) is "celmark-key 2" with the same
 * two lines, then
 *
 *     layer <N>                 1 .. CM_KEY_MAX_LAYER
 *     name <name>               the delegate's name (UTF-8, no control
 *                               characters, no '/')
 *     cert <lowercase hex>      N lines: the certificate chain, the
 *                               studio's first (cm_key_cert_encode)
 *
 * and is refused when its chain does not hold together (each certificate
 * signed by the key the one above names, the last naming this key).
 *
 * cm_key_save() writes exactly these 159 bytes for a studio key. The reader is strict: no
 * blank lines, no spaces other than the single separator, lowercase hex
 * only, no CR; the only leniency is that the "\n" ending the last line may
 * be missing. Files over 4 KiB are refused before parsing, and the file is
 * read into a fixed stack buffer (no allocation sized by the file).
 *
 * The file must be mode 0600 or stricter (mode & 077 == 0), like an ssh
 * private key. Messages name the file and the problem, never key bytes.
 * Every buffer that held secret material is wiped with OPENSSL_cleanse.
 */
#include "watermark/key_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define KEY_MAGIC "celmark-key 1"
#define KEY_MAGIC_2 "celmark-key 2" /* a delegated key: layer, name, chain */
#define KEY_MAGIC_PREFIX "celmark-key "
#define KEY_HEX_CHARS 64 /* 32 bytes as hex */
/* "celmark-key 1\n" + "secret <64>\n" + "ed25519 <64>\n" = 14 + 72 + 73 */
#define KEY_FILE_BYTES 159
/* Refuse anything larger before parsing: a real key file is 159 bytes, and
 * 4 KiB bounds the stack buffer while leaving room for a clear message. */
#define KEY_FILE_MAX 4096

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 15];
    }
}

/* Lowercase hex digit value, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int cm__crypto_error(cm_ctx *ctx, int status, const char *what)
{
    char reason[256];
    unsigned long e = ERR_peek_last_error();

    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    else
        snprintf(reason, sizeof(reason), "unknown OpenSSL error");
    ERR_clear_error();
    return cm__error(ctx, status, "%s: %s", what, reason);
}

/* The Ed25519 key of a seed, and its public key. 0 or CM_E_CRYPTO. */
static int ed25519_load(const uint8_t seed[CM__KEY_SEED_BYTES], EVP_PKEY **out,
                        uint8_t pub[CM_KEY_PUBLIC_BYTES])
{
    size_t len = CM_KEY_PUBLIC_BYTES;
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
                                                CM__KEY_SEED_BYTES);
    if (!pk)
        return CM_E_CRYPTO;
    if (EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 ||
        len != CM_KEY_PUBLIC_BYTES) {
        EVP_PKEY_free(pk);
        return CM_E_CRYPTO;
    }
    *out = pk;
    return CM_OK;
}

int cm__key_from_bytes(cm_key **out, const uint8_t secret[CM__KEY_SECRET_BYTES],
                       const uint8_t seed[CM__KEY_SEED_BYTES])
{
    cm_key *key = NULL;
    int rc;

    if (!out)
        return CM_E_INVAL;
    *out = NULL;
    if (!secret || !seed)
        return CM_E_INVAL;
    key = calloc(1, sizeof(*key));
    if (!key) {
        rc = CM_E_NOMEM;
        goto fail;
    }
    memcpy(key->secret, secret, CM__KEY_SECRET_BYTES);
    memcpy(key->seed, seed, CM__KEY_SEED_BYTES);
    rc = ed25519_load(key->seed, &key->sign, key->pub);
    if (rc)
        goto fail;
    *out = key;
    return CM_OK;
fail:
    cm_key_free(&key);
    return rc;
}

void cm_key_free(cm_key **key)
{
    if (!key || !*key)
        return;
    EVP_PKEY_free((*key)->sign);
    OPENSSL_cleanse(*key, sizeof(**key));
    free(*key);
    *key = NULL;
}

int cm_key_generate(cm_ctx *ctx, cm_key **out)
{
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    int rc;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "cm_key_generate: out is NULL");
    *out = NULL;
    if (RAND_priv_bytes(secret, sizeof(secret)) != 1 ||
        RAND_priv_bytes(seed, sizeof(seed)) != 1) {
        rc = cm__crypto_error(ctx, CM_E_CRYPTO,
                              "cannot draw random bytes for a new key");
        goto fail;
    }
    rc = cm__key_from_bytes(out, secret, seed);
    if (rc == CM_E_NOMEM)
        cm__error(ctx, rc, "out of memory creating a key");
    else if (rc)
        cm__crypto_error(ctx, rc, "cannot set up the Ed25519 key");
fail:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(seed, sizeof(seed));
    return rc;
}

/* The exact file contents (no NUL): KEY_FILE_BYTES for a studio key, and
 * a delegated key's layer, name and certificates after them. Returns the
 * length. */
static size_t format_key_file(const cm_key *key, char text[KEY_FILE_MAX])
{
    char *p = text;

    memcpy(p, key->layer ? KEY_MAGIC_2 : KEY_MAGIC, 13);
    memcpy(p + 13, "\nsecret ", 8);
    p += 21;
    to_hex(key->secret, CM__KEY_SECRET_BYTES, p);
    p += KEY_HEX_CHARS;
    memcpy(p, "\ned25519 ", 9);
    p += 9;
    to_hex(key->seed, CM__KEY_SEED_BYTES, p);
    p += KEY_HEX_CHARS;
    *p++ = '\n';
    if (key->layer) {
        p += snprintf(p, 80, "layer %d\nname %s\n", key->layer, key->name);
        for (int i = 0; i < key->layer; i++) {
            uint8_t cert[CM_KEY_CERT_MAX];
            int n = cm_key_cert_encode(&key->chain[i], cert, sizeof(cert));
            memcpy(p, "cert ", 5);
            to_hex(cert, (size_t)(n > 0 ? n : 0), p + 5);
            p += 5 + 2 * (n > 0 ? n : 0);
            *p++ = '\n';
        }
    }
    return (size_t)(p - text);
}

int cm_key_save(cm_ctx *ctx, const cm_key *key, const char *path)
{
    char text[KEY_FILE_MAX];
    size_t done = 0, size;
    int fd = -1, rc;

    if (!key || !path)
        return cm__error(ctx, CM_E_INVAL, "cm_key_save: NULL argument");
    if (!key->sign)
        return cm__error(ctx, CM_E_INVAL, "%s: a layer key (detection only) is not saved", path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return cm__error(ctx, CM_E_EXISTS,
                             "%s: already exists; refusing to overwrite a key",
                             path);
        return cm__error(ctx, CM_E_IO, "%s: cannot create key file: %s", path,
                         strerror(errno));
    }
    size = format_key_file(key, text);
    while (done < size) {
        ssize_t n = write(fd, text + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = cm__error(ctx, CM_E_IO, "%s: cannot write key file: %s", path,
                           n < 0 ? strerror(errno) : "no progress");
            goto fail;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = cm__error(ctx, CM_E_IO, "%s: cannot sync key file: %s", path,
                       strerror(errno));
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        rc = cm__error(ctx, CM_E_IO, "%s: cannot close key file: %s", path,
                       strerror(errno));
        goto fail;
    }
    OPENSSL_cleanse(text, sizeof(text));
    return CM_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(path); /* only reached after we created it (O_EXCL) */
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

static const char *file_type_name(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a pipe";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    return "not a regular file";
}

/* One line of buf starting at *pos: [*line, *line + *len), the "\n" (if any)
 * consumed. *has_nl says whether the line was terminated. 0 at end of data. */
static int next_line(const char *buf, size_t size, size_t *pos,
                     const char **line, size_t *len, int *has_nl)
{
    const char *nl;

    if (*pos >= size)
        return 0;
    *line = buf + *pos;
    nl = memchr(*line, '\n', size - *pos);
    if (nl) {
        *len = (size_t)(nl - *line);
        *has_nl = 1;
        *pos += *len + 1;
    } else {
        *len = size - *pos;
        *has_nl = 0;
        *pos = size;
    }
    return 1;
}

static int cr_error(cm_ctx *ctx, const char *path, int lineno)
{
    return cm__error(ctx, CM_E_KEY,
                     "%s: line %d ends with a carriage return (Windows line "
                     "ending); a key file uses \\n only",
                     path, lineno);
}

/* Parse "<name> <64 lowercase hex>" on line number lineno into out. */
static int parse_hex_line(cm_ctx *ctx, const char *path, int lineno,
                          const char *name, const char *line, size_t len,
                          uint8_t out[32])
{
    size_t name_len = strlen(name);
    const char *value;
    size_t value_len;

    if (len > 0 && line[len - 1] == '\r')
        return cr_error(ctx, path, lineno);
    if (len < name_len + 1 || memcmp(line, name, name_len) != 0 ||
        line[name_len] != ' ')
        return cm__error(ctx, CM_E_KEY,
                         "%s: line %d: expected '%s <64 hex digits>'", path,
                         lineno, name);
    value = line + name_len + 1;
    value_len = len - name_len - 1;
    for (size_t i = 0; i < value_len; i++) {
        if (hex_value(value[i]) < 0)
            return cm__error(
                ctx, CM_E_KEY,
                "%s: line %d: invalid character at column %zu of the "
                "'%s' value (expected lowercase hex digits 0-9a-f)",
                path, lineno, name_len + 2 + i, name);
    }
    if (value_len != KEY_HEX_CHARS)
        return cm__error(ctx, CM_E_KEY,
                         "%s: line %d: the '%s' value has %zu hex digits, "
                         "expected %d",
                         path, lineno, name, value_len, KEY_HEX_CHARS);
    for (size_t i = 0; i < 32; i++)
        out[i] = (uint8_t)(hex_value(value[2 * i]) << 4 |
                           hex_value(value[2 * i + 1]));
    return CM_OK;
}

/* "layer N", "name NAME" and N "cert HEX" lines of a delegated key file,
 * from *pos (line numbers from 4) into d->layer, d->name and d->chain. */
static int parse_delegation(cm_ctx *ctx, const char *path, const char *buf, size_t size,
                            size_t *pos, int *has_nl, cm_key *d)
{
    const char *line = NULL;
    size_t len = 0;
    char text[CM_KEY_NAME_MAX + 1];
    if (!*has_nl || !next_line(buf, size, pos, &line, &len, has_nl))
        return cm__error(ctx, CM_E_KEY, "%s: line 4 ('layer N') is missing; the key file is "
                                        "truncated",
                         path);
    if (len != 7 || memcmp(line, "layer ", 6) || line[6] < '1' ||
        line[6] > '0' + CM_KEY_MAX_LAYER)
        return cm__error(ctx, CM_E_KEY, "%s: line 4: expected 'layer N' with N from 1 to %d",
                         path, CM_KEY_MAX_LAYER);
    d->layer = line[6] - '0';
    if (!*has_nl || !next_line(buf, size, pos, &line, &len, has_nl))
        return cm__error(ctx, CM_E_KEY, "%s: line 5 ('name NAME') is missing; the key file is "
                                        "truncated",
                         path);
    if (len < 6 || len - 5 > CM_KEY_NAME_MAX || memcmp(line, "name ", 5))
        return cm__error(ctx, CM_E_KEY, "%s: line 5: expected 'name NAME' (1 to %d bytes)",
                         path, CM_KEY_NAME_MAX);
    memcpy(text, line + 5, len - 5);
    text[len - 5] = '\0';
    if (strlen(text) != len - 5 || cm__key_name_check(NULL, path, text))
        return cm__error(ctx, CM_E_KEY, "%s: line 5: the name has control characters, '/' or "
                                        "is not UTF-8",
                         path);
    memcpy(d->name, text, len - 4); /* with its NUL; len - 5 <= CM_KEY_NAME_MAX */
    for (int i = 0; i < d->layer; i++) {
        int lineno = 6 + i;
        uint8_t cert[CM_KEY_CERT_MAX];
        if (!*has_nl || !next_line(buf, size, pos, &line, &len, has_nl))
            return cm__error(ctx, CM_E_KEY, "%s: line %d ('cert HEX') is missing; the key file "
                                            "is truncated",
                             path, lineno);
        size_t n = len > 5 ? (len - 5) / 2 : 0;
        int bad = len < 5 || memcmp(line, "cert ", 5) || (len - 5) % 2 || n > sizeof(cert);
        for (size_t k = 0; !bad && k < n; k++) {
            int hi = hex_value(line[5 + 2 * k]), lo = hex_value(line[6 + 2 * k]);
            bad = hi < 0 || lo < 0;
            if (!bad)
                cert[k] = (uint8_t)(hi << 4 | lo);
        }
        if (bad || cm_key_cert_decode(cert, n, &d->chain[i]))
            return cm__error(ctx, CM_E_KEY, "%s: line %d: not a certificate ('cert' and its "
                                            "lowercase hex)",
                             path, lineno);
    }
    return CM_OK;
}

static int parse_key_file(cm_ctx *ctx, const char *path, const char *buf,
                          size_t size, uint8_t secret[32], uint8_t seed[32], cm_key *d)
{
    static const char *const names[2] = {"secret", "ed25519"};
    uint8_t *const outs[2] = {secret, seed};
    const char *line = NULL;
    size_t len = 0, pos = 0;
    int has_nl = 0, rc;

    if (size == 0)
        return cm__error(ctx, CM_E_KEY, "%s: key file is empty", path);
    next_line(buf, size, &pos, &line, &len, &has_nl);
    if (len == strlen(KEY_MAGIC) + 1 && line[len - 1] == '\r' &&
        memcmp(line, KEY_MAGIC, len - 1) == 0)
        return cr_error(ctx, path, 1);
    int delegated = len == strlen(KEY_MAGIC_2) && memcmp(line, KEY_MAGIC_2, len) == 0;
    if (!delegated && (len != strlen(KEY_MAGIC) || memcmp(line, KEY_MAGIC, len) != 0)) {
        if (len >= strlen(KEY_MAGIC_PREFIX) &&
            memcmp(line, KEY_MAGIC_PREFIX, strlen(KEY_MAGIC_PREFIX)) == 0)
            return cm__error(ctx, CM_E_KEY,
                             "%s: unsupported key file version on line 1 "
                             "(this celmark reads '" KEY_MAGIC "' and '" KEY_MAGIC_2 "')",
                             path);
        return cm__error(
            ctx, CM_E_KEY,
            "%s: not a celmark key file (line 1 should be '" KEY_MAGIC "')",
            path);
    }
    for (int i = 0; i < 2; i++) {
        int lineno = i + 2;
        if (!has_nl || !next_line(buf, size, &pos, &line, &len, &has_nl))
            return cm__error(ctx, CM_E_KEY,
                             "%s: line %d ('%s <64 hex digits>') is missing; "
                             "the key file is truncated",
                             path, lineno, names[i]);
        rc = parse_hex_line(ctx, path, lineno, names[i], line, len, outs[i]);
        if (rc)
            return rc;
    }
    if (delegated && (rc = parse_delegation(ctx, path, buf, size, &pos, &has_nl, d)))
        return rc;
    if (pos != size)
        return cm__error(ctx, CM_E_KEY, "%s: unexpected content after line %d (%zu extra bytes)",
                         path, delegated ? 5 + d->layer : 3, size - pos);
    return CM_OK;
}

int cm_key_load(cm_ctx *ctx, const char *path, cm_key **out)
{
    char buf[KEY_FILE_MAX + 1]; /* one spare byte detects growth past the max */
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    struct stat st;
    size_t size = 0;
    int fd = -1, rc;

    if (out)
        *out = NULL;
    if (!path || !out)
        return cm__error(ctx, CM_E_INVAL, "cm_key_load: NULL argument");
    /* O_NONBLOCK: opening a FIFO must not hang; no effect on regular files. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return cm__error(ctx, CM_E_KEY, "%s: cannot open key file: %s", path,
                         strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = cm__error(ctx, CM_E_IO, "%s: cannot stat key file: %s", path,
                       strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cm__error(ctx, CM_E_KEY, "%s: is %s, not a key file", path,
                       file_type_name(st.st_mode));
        goto fail;
    }
    if (st.st_mode & 077) {
        rc = cm__error(ctx, CM_E_KEY,
                       "%s: key file is %s by group or others (mode %04o); "
                       "run chmod 600 %s",
                       path, (st.st_mode & 044) ? "readable" : "accessible",
                       (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    if (st.st_size > KEY_FILE_MAX) {
        rc = cm__error(ctx, CM_E_KEY,
                       "%s: too big for a key file (%lld bytes; a key file is "
                       "%d bytes)",
                       path, (long long)st.st_size, KEY_FILE_BYTES);
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + size, sizeof(buf) - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cm__error(ctx, CM_E_IO, "%s: cannot read key file: %s", path,
                           strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        size += (size_t)n;
        if (size > KEY_FILE_MAX) {
            rc = cm__error(ctx, CM_E_KEY,
                           "%s: too big for a key file (over %d bytes)", path,
                           KEY_FILE_MAX);
            goto fail;
        }
    }
    cm_key d; /* the delegation part, when there is one */
    memset(&d, 0, sizeof(d));
    rc = parse_key_file(ctx, path, buf, size, secret, seed, &d);
    if (rc)
        goto fail;
    rc = cm__key_from_bytes(out, secret, seed);
    if (rc == CM_E_NOMEM)
        cm__error(ctx, rc, "%s: out of memory loading the key", path);
    else if (rc)
        cm__crypto_error(ctx, rc, "cannot set up the Ed25519 key");
    if (!rc && d.layer) {
        (*out)->layer = d.layer;
        memcpy((*out)->name, d.name, sizeof(d.name));
        memcpy((*out)->chain, d.chain, sizeof(d.chain));
        if ((rc = cm__key_chain_check(ctx, path, *out)))
            cm_key_free(out);
    }
fail:
    close(fd);
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(seed, sizeof(seed));
    return rc;
}

int cm_key_fingerprint(const cm_key *key,
                       char out[CM_KEY_FINGERPRINT_CHARS + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *p;

    if (!key || !out)
        return CM_E_INVAL;
    if (EVP_Digest(key->pub, sizeof(key->pub), md, &md_len, EVP_sha256(),
                   NULL) != 1 ||
        md_len < 16)
        return CM_E_CRYPTO;
    p = out;
    for (int g = 0; g < 8; g++) {
        if (g)
            *p++ = ':';
        to_hex(md + 2 * g, 2, p);
        p += 4;
    }
    *p = '\0';
    return CM_OK;
}

int cm_key_public(const cm_key *key, uint8_t pub[CM_KEY_PUBLIC_BYTES])
{
    if (!key || !pub)
        return CM_E_INVAL;
    memcpy(pub, key->pub, CM_KEY_PUBLIC_BYTES);
    return CM_OK;
}

int cm__hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                    size_t salt_len, const uint8_t *info, size_t info_len,
                    uint8_t *out, size_t len)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5], *p = params;
    int rc = CM_E_CRYPTO;

    if (!ikm || !out || len == 0 || len > 255 * 32 || (!salt && salt_len) ||
        (!info && info_len))
        return CM_E_INVAL;
    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    if (!kdf)
        goto fail;
    kctx = EVP_KDF_CTX_new(kdf);
    if (!kctx)
        goto fail;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm,
                                             ikm_len);
    /* An absent salt means HashLen zero bytes (RFC 5869 2.2), which HMAC
     * treats exactly like an empty salt; likewise an absent info is empty. */
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                 (void *)salt, salt_len);
    if (info_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                 (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, len, params) <= 0)
        goto fail;
    rc = CM_OK;
fail:
    if (rc)
        OPENSSL_cleanse(out, len);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

int cm__key_derive(const cm_key *key, const char *label, uint8_t *out,
                   size_t len)
{
    if (!key || !label || !out)
        return CM_E_INVAL;
    return cm__hkdf_sha256(key->secret, sizeof(key->secret),
                           (const uint8_t *)CM__KEY_SALT, strlen(CM__KEY_SALT),
                           (const uint8_t *)label, strlen(label), out, len);
}

int cm__key_sign(const cm_key *key, const uint8_t *msg, size_t len,
                 uint8_t sig[CM__ED25519_SIG_BYTES])
{
    static const uint8_t empty[1];
    EVP_MD_CTX *md = NULL;
    size_t sig_len = CM__ED25519_SIG_BYTES;
    int rc = CM_E_CRYPTO;

    if (!key || !sig || (!msg && len) || !key->sign)
        return CM_E_INVAL; /* a layer key (cm_key_layer_key) cannot sign */
    if (!msg)
        msg = empty;
    md = EVP_MD_CTX_new();
    if (!md)
        goto fail;
    /* Ed25519 is "pure": no digest is named, the message goes in whole. */
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, key->sign) != 1)
        goto fail;
    if (EVP_DigestSign(md, sig, &sig_len, msg, len) != 1 ||
        sig_len != CM__ED25519_SIG_BYTES)
        goto fail;
    rc = CM_OK;
fail:
    if (rc)
        OPENSSL_cleanse(sig, CM__ED25519_SIG_BYTES);
    EVP_MD_CTX_free(md);
    return rc;
}

int cm__ed25519_verify(const uint8_t pub[CM_KEY_PUBLIC_BYTES],
                       const uint8_t *msg, size_t len,
                       const uint8_t sig[CM__ED25519_SIG_BYTES])
{
    static const uint8_t empty[1];
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = CM_E_CRYPTO, r;

    if (!pub || !sig || (!msg && len))
        return CM_E_INVAL;
    if (!msg)
        msg = empty;
    pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                     CM_KEY_PUBLIC_BYTES);
    if (!pk)
        goto fail;
    md = EVP_MD_CTX_new();
    if (!md)
        goto fail;
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1)
        goto fail;
    r = EVP_DigestVerify(md, sig, CM__ED25519_SIG_BYTES, msg, len);
    if (r == 1) {
        rc = 1;
    } else if (r == 0) {
        rc = 0;
        ERR_clear_error(); /* a bad signature is an answer, not an error */
    }
fail:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return rc;
}
