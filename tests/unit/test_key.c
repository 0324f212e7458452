/* Unit tests: the studio key (watermark/key.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "celmark/key.h"
#include "watermark/key_internal.h"

static const char *tmp_dir(void)
{
    const char *d = getenv("CELMARK_TEST_TMP");
    return d && *d ? d : "/tmp";
}

/* A fresh path in the scratch dir (removed if it exists). */
static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/test_key_%ld_%s", tmp_dir(), (long)getpid(), name);
    unlink(out);
    rmdir(out);
}

static void write_file(const char *path, const void *data, size_t len,
                       mode_t mode)
{
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    if (len)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static cm_key *fixed_key(void)
{
    uint8_t secret[32], seed[32];
    cm_key *key = NULL;
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)i;
        seed[i] = (uint8_t)(0xA0 + i);
    }
    assert_int_equal(cm__key_from_bytes(&key, secret, seed), CM_OK);
    assert_non_null(key);
    return key;
}

/* The text a valid key file with fixed_key() holds. */
static const char valid_text[] =
    "celmark-key 1\n"
    "secret 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "ed25519 "
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n";

/* ---- HKDF -------------------------------------------------------------- */

static void check_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                       size_t salt_len, const uint8_t *info, size_t info_len,
                       const char *okm_hex)
{
    uint8_t expect[128], got[128];
    size_t len = strlen(okm_hex) / 2;
    unhex(okm_hex, expect, len);
    assert_int_equal(
        cm__hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len, got, len),
        CM_OK);
    assert_memory_equal(got, expect, len);
}

static void test_hkdf_rfc5869(void **state)
{
    uint8_t ikm[80], salt[80], info[80];
    (void)state;

    /* Test case 1 */
    memset(ikm, 0x0b, 22);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    check_hkdf(
        ikm, 22, salt, 13, info, 10,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865");

    /* Test case 2: long inputs */
    for (int i = 0; i < 80; i++) {
        ikm[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
        info[i] = (uint8_t)(0xb0 + i);
    }
    check_hkdf(
        ikm, 80, salt, 80, info, 80,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87");

    /* Test case 3: zero-length salt and info */
    memset(ikm, 0x0b, 22);
    check_hkdf(
        ikm, 22, NULL, 0, NULL, 0,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8");
    check_hkdf(
        ikm, 22, salt, 0, info, 0,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8");
}

static void test_hkdf_bad_args(void **state)
{
    uint8_t ikm[32] = {0}, out[32];
    (void)state;
    assert_int_equal(cm__hkdf_sha256(NULL, 32, NULL, 0, NULL, 0, out, 32),
                     CM_E_INVAL);
    assert_int_equal(cm__hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 0),
                     CM_E_INVAL);
    assert_int_equal(cm__hkdf_sha256(ikm, 32, NULL, 5, NULL, 0, out, 32),
                     CM_E_INVAL);
    assert_int_equal(
        cm__hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 255 * 32 + 1),
        CM_E_INVAL);
}

static void test_derive(void **state)
{
    cm_key *key = fixed_key();
    uint8_t a[32], b[32], c[32], d[64], expect[32];
    (void)state;

    assert_int_equal(cm__key_derive(key, "pattern", a, 32), CM_OK);
    assert_int_equal(cm__key_derive(key, "pattern", b, 32), CM_OK);
    assert_memory_equal(a, b, 32);
    /* Known answer: HKDF-SHA256(ikm = 00..1f, salt = "celmark v1",
     * info = "pattern"), computed independently (Python hmac). */
    unhex("e4661832ed207ac21b1b557add7aaa4f0398a2ad8a87054280931c77f7ae2690",
          expect, 32);
    assert_memory_equal(a, expect, 32);
    /* label separation */
    assert_int_equal(cm__key_derive(key, "pattern2", c, 32), CM_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(cm__key_derive(key, "sync", c, 32), CM_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(cm__key_derive(key, "", c, 32), CM_OK);
    assert_memory_not_equal(a, c, 32);
    /* longer output extends the shorter one (HKDF expand) */
    assert_int_equal(cm__key_derive(key, "pattern", d, 64), CM_OK);
    assert_memory_equal(a, d, 32);
    assert_int_equal(cm__key_derive(NULL, "x", c, 32), CM_E_INVAL);
    assert_int_equal(cm__key_derive(key, NULL, c, 32), CM_E_INVAL);
    cm_key_free(&key);
    assert_null(key);
    cm_key_free(&key); /* NULL is fine */
    cm_key_free(NULL);
}

/* ---- generate / save / load -------------------------------------------- */

static void test_round_trip(void **state)
{
    cm_ctx *ctx = NULL;
    cm_key *a = NULL, *b = NULL;
    char path[512], fa[CM_KEY_FINGERPRINT_CHARS + 1],
        fb[CM_KEY_FINGERPRINT_CHARS + 1];
    uint8_t da[32], db[32], pa[32], pb[32], sig[64];
    struct stat st;
    (void)state;

    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    tmp_path(path, sizeof(path), "roundtrip.key");
    assert_int_equal(cm_key_generate(ctx, &a), CM_OK);
    assert_int_equal(cm_key_save(ctx, a, path), CM_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(st.st_size, 159);
    assert_int_equal(cm_key_load(ctx, path, &b), CM_OK);

    assert_int_equal(cm__key_derive(a, "payload", da, 32), CM_OK);
    assert_int_equal(cm__key_derive(b, "payload", db, 32), CM_OK);
    assert_memory_equal(da, db, 32);
    assert_int_equal(cm_key_fingerprint(a, fa), CM_OK);
    assert_int_equal(cm_key_fingerprint(b, fb), CM_OK);
    assert_string_equal(fa, fb);
    assert_int_equal(cm_key_public(a, pa), CM_OK);
    assert_int_equal(cm_key_public(b, pb), CM_OK);
    assert_memory_equal(pa, pb, 32);
    assert_int_equal(cm__key_sign(b, (const uint8_t *)"row", 3, sig), CM_OK);
    assert_int_equal(cm__ed25519_verify(pa, (const uint8_t *)"row", 3, sig), 1);

    /* two generated keys differ */
cm_key_free(&b);
assert_int_equal(cm_key_generate(ctx, &b), CM_OK);
assert_int_equal(cm__key_derive(b, "payload", db, 32), CM_OK);
assert_memory_not_equal(da, db, 32);

cm_key_free(&a);
cm_key_free(&b);
unlink(path);
cm_ctx_free(&ctx);
}

static void test_save_exact_text(void **state)
{
    cm_key *key = fixed_key();
    char path[512], buf[512];
    FILE *f;
    size_t n;
    (void)state;

    tmp_path(path, sizeof(path), "exact.key");
    assert_int_equal(cm_key_save(NULL, key, path), CM_OK);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_int_equal(n, strlen(valid_text));
    assert_memory_equal(buf, valid_text, n);
    unlink(path);
    cm_key_free(&key);
}

static void test_save_refuses_overwrite(void **state)
{
    cm_ctx *ctx = NULL;
    cm_key *a = fixed_key(), *b = NULL, *c = NULL;
    char path[512], expect[600];
    uint8_t da[32], dc[32];
    (void)state;

    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    tmp_path(path, sizeof(path), "exists.key");
    assert_int_equal(cm_key_save(ctx, a, path), CM_OK);
    assert_int_equal(cm_key_generate(ctx, &b), CM_OK);
    assert_int_equal(cm_key_save(ctx, b, path), CM_E_EXISTS);
    assert_int_equal(cm_ctx_last_status(ctx), CM_E_EXISTS);
    snprintf(expect, sizeof(expect),
             "%s: already exists; refusing to overwrite a key", path);
    assert_string_equal(cm_ctx_last_error(ctx), expect);
    /* the original is untouched */
    assert_int_equal(cm_key_load(ctx, path, &c), CM_OK);
    assert_int_equal(cm__key_derive(a, "x", da, 32), CM_OK);
    assert_int_equal(cm__key_derive(c, "x", dc, 32), CM_OK);
    assert_memory_equal(da, dc, 32);

    /* a directory that does not exist: CM_E_IO, nothing left behind */
    snprintf(path, sizeof(path), "%s/no/such/dir/k.key", tmp_dir());
    assert_int_equal(cm_key_save(ctx, a, path), CM_E_IO);
    assert_non_null(strstr(cm_ctx_last_error(ctx), path));

    assert_int_equal(cm_key_save(ctx, NULL, path), CM_E_INVAL);
    assert_int_equal(cm_key_save(ctx, a, NULL), CM_E_INVAL);
    tmp_path(path, sizeof(path), "exists.key");
    cm_key_free(&a);
    cm_key_free(&b);
    cm_key_free(&c);
    cm_ctx_free(&ctx);
}

static void check_mode_refused(mode_t mode)
{
    cm_ctx *ctx = NULL;
    cm_key *key = (cm_key *)1;
    char path[512], expect[1200];

    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    tmp_path(path, sizeof(path), "mode.key");
    write_file(path, valid_text, strlen(valid_text), mode);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_null(key);
    snprintf(expect, sizeof(expect),
             "%s: key file is readable by group or others (mode %04o); "
             "run chmod 600 %s",
             path, (unsigned)mode, path);
    assert_string_equal(cm_ctx_last_error(ctx), expect);
    /* after chmod 600 it loads */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_OK);
    cm_key_free(&key);
    unlink(path);
    cm_ctx_free(&ctx);
}

static void test_load_refuses_open_modes(void **state)
{
    (void)state;
    check_mode_refused(0644);
    check_mode_refused(0640);
    check_mode_refused(0604);
}

/* Write content with mode 0600 and expect CM_E_KEY with a message that names
 * the file, contains want, and shows no key bytes. */
static void expect_bad(const char *name, const void *data, size_t len,
                       const char *want)
{
    cm_ctx *ctx = NULL;
    cm_key *key = (cm_key *)1;
    char path[512], msg[1200];

    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    tmp_path(path, sizeof(path), name);
    write_file(path, data, len, 0600);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_null(key);
    snprintf(msg, sizeof(msg), "%s", cm_ctx_last_error(ctx));
    cm_ctx_free(&ctx);
    unlink(path);
    if (!strstr(msg, want) || strncmp(msg, path, strlen(path)) != 0)
        fail_msg("%s: message '%s' does not contain '%s'", name, msg, want);
    assert_null(strstr(msg, "0001020304"));
    assert_null(strstr(msg, "a0a1a2a3"));
}

static void test_load_damaged(void **state)
{
    char buf[1024];
    size_t n = strlen(valid_text);
    (void)state;

    expect_bad("empty.key", "", 0, "key file is empty");

    /* truncated in the middle of line 3 */
    expect_bad("trunc3.key", valid_text, n - 20,
               "line 3: the 'ed25519' value has 45 hex digits, expected 64");
    /* truncated in the middle of line 2 */
    expect_bad("trunc2.key", valid_text, 40,
               "line 2: the 'secret' value has 19 hex digits, expected 64");
    /* only line 1 */
    expect_bad("line1.key", valid_text, 14,
               "line 2 ('secret <64 hex digits>') "
               "is missing");
    /* line 2 complete but unterminated */
    expect_bad("line2.key", valid_text, 85,
               "line 3 ('ed25519 <64 hex digits>') "
               "is missing");

    /* bad hex characters */
    memcpy(buf, valid_text, n);
    buf[14 + 7 + 5] = 'g';
    expect_bad("badhex.key", buf, n,
               "line 2: invalid character at column 13 of the 'secret' value");
    memcpy(buf, valid_text, n);
    buf[n - 2] = 'F'; /* uppercase is refused: the format is lowercase */
    expect_bad("upper.key", buf, n, "line 3: invalid character");
    memcpy(buf, valid_text, n);
    buf[30] = '\0';
    expect_bad("nul.key", buf, n, "line 2: invalid character");

    /* wrong length: two hex digits short, and two too many */
    snprintf(buf, sizeof(buf), "celmark-key 1\nsecret %.62s\ned25519 %.64s\n",
             valid_text + 21, valid_text + 94);
    expect_bad("short.key", buf, strlen(buf),
               "line 2: the 'secret' value has 62 hex digits, expected 64");
    snprintf(buf, sizeof(buf), "celmark-key 1\nsecret %.64s\ned25519 %.64s00\n",
             valid_text + 21, valid_text + 94);
    expect_bad("long.key", buf, strlen(buf),
               "line 3: the 'ed25519' value has 66 hex digits, expected 64");

    /* wrong header */
    memcpy(buf, valid_text, n);
    buf[12] = '3'; /* 1 and 2 (a delegated key) exist */
    expect_bad("version.key", buf, n, "unsupported key file version");
    expect_bad("header.key", "hello world\n", 12, "not a celmark key file");
    expect_bad("png.key", "\x89PNG\r\n\x1a\n", 8, "not a celmark key file");
    /* fields swapped */
    snprintf(buf, sizeof(buf), "celmark-key 1\ned25519 %.64s\nsecret %.64s\n",
             valid_text + 94, valid_text + 21);
    expect_bad("swapped.key", buf, strlen(buf),
               "line 2: expected 'secret <64 hex digits>'");
    /* two spaces */
    snprintf(buf, sizeof(buf), "celmark-key 1\nsecret  %.64s\ned25519 %.64s\n",
             valid_text + 21, valid_text + 94);
    expect_bad("space.key", buf, strlen(buf), "line 2: invalid character");

    /* extra garbage after the key, and an extra blank line */
    snprintf(buf, sizeof(buf), "%sjunk\n", valid_text);
    expect_bad("garbage.key", buf, strlen(buf),
               "unexpected content after line 3 (5 extra bytes)");
    snprintf(buf, sizeof(buf), "%s\n", valid_text);
    expect_bad("blank.key", buf, strlen(buf),
               "unexpected content after line 3");

    /* CRLF line endings */
    snprintf(buf, sizeof(buf),
             "celmark-key 1\r\nsecret %.64s\r\ned25519 %.64s\r\n",
             valid_text + 21, valid_text + 94);
    expect_bad("crlf.key", buf, strlen(buf),
               "line 1 ends with a carriage return");
    snprintf(buf, sizeof(buf),
             "celmark-key 1\nsecret %.64s\r\ned25519 %.64s\r\n",
             valid_text + 21, valid_text + 94);
    expect_bad("crlf2.key", buf, strlen(buf),
               "line 2 ends with a carriage return");
}

static void test_load_not_a_file(void **state)
{
    cm_ctx *ctx = NULL;
    cm_key *key = (cm_key *)1;
    char path[512];
    char *big;
    (void)state;

    assert_int_equal(cm_ctx_new(&ctx), CM_OK);

    /* a directory */
    tmp_path(path, sizeof(path), "dir.key");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_null(key);
    assert_non_null(strstr(cm_ctx_last_error(ctx), path));
    assert_non_null(strstr(cm_ctx_last_error(ctx), "is a directory"));
    assert_int_equal(rmdir(path), 0);

    /* a FIFO must not hang */
    tmp_path(path, sizeof(path), "fifo.key");
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "is a pipe"));
    unlink(path);

    /* 1 MB file (starting with a valid key) */
    tmp_path(path, sizeof(path), "big.key");
    big = malloc(1 << 20);
    assert_non_null(big);
    memset(big, 'a', 1 << 20);
    memcpy(big, valid_text, strlen(valid_text));
    write_file(path, big, 1 << 20, 0600);
    free(big);
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_non_null(strstr(cm_ctx_last_error(ctx), path));
    assert_non_null(strstr(cm_ctx_last_error(ctx),
                           "too big for a key file (1048576 bytes"));
    unlink(path);

    /* nonexistent */
    tmp_path(path, sizeof(path), "missing.key");
    assert_int_equal(cm_key_load(ctx, path, &key), CM_E_KEY);
    assert_non_null(strstr(cm_ctx_last_error(ctx), path));
    assert_non_null(strstr(cm_ctx_last_error(ctx),
                           "cannot open key file: No such file or directory"));

    assert_int_equal(cm_key_load(ctx, NULL, &key), CM_E_INVAL);
    assert_int_equal(cm_key_load(ctx, path, NULL), CM_E_INVAL);
    assert_int_equal(cm_key_generate(ctx, NULL), CM_E_INVAL);
    cm_ctx_free(&ctx);
}

static void test_load_lenient_last_newline(void **state)
{
    cm_key *key = NULL, *ref = fixed_key();
    char path[512];
    uint8_t a[32], b[32];
    (void)state;

    tmp_path(path, sizeof(path), "nonl.key");
    write_file(path, valid_text, strlen(valid_text) - 1, 0600);
    assert_int_equal(cm_key_load(NULL, path, &key), CM_OK);
    assert_int_equal(cm__key_derive(key, "l", a, 32), CM_OK);
    assert_int_equal(cm__key_derive(ref, "l", b, 32), CM_OK);
    assert_memory_equal(a, b, 32);
    /* stricter mode than 0600 is fine */
    assert_int_equal(chmod(path, 0400), 0);
    cm_key_free(&key);
    assert_int_equal(cm_key_load(NULL, path, &key), CM_OK);
    cm_key_free(&key);
    unlink(path);
    cm_key_free(&ref);
}

/* ---- Ed25519 ----------------------------------------------------------- */

static void test_sign_verify(void **state)
{
    cm_key *key = fixed_key();
    uint8_t pub[32], sig[64], msg[100];
    (void)state;

    for (int i = 0; i < 100; i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(cm_key_public(key, pub), CM_OK);
    assert_int_equal(cm__key_sign(key, msg, sizeof(msg), sig), CM_OK);
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 1);

    msg[37] ^= 0x10;
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 0);
    msg[37] ^= 0x10;
    sig[5] ^= 0x01;
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 0);
    sig[5] ^= 0x01;
    sig[63] ^= 0x80;
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 0);
    sig[63] ^= 0x80;
    pub[0] ^= 1;
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 0);
    pub[0] ^= 1;
    assert_int_equal(cm__ed25519_verify(pub, msg, 99, sig), 0);
    assert_int_equal(cm__ed25519_verify(pub, msg, sizeof(msg), sig), 1);

    /* deterministic signatures (Ed25519 is) */
{
    uint8_t sig2[64];
    assert_int_equal(cm__key_sign(key, msg, sizeof(msg), sig2), CM_OK);
    assert_memory_equal(sig, sig2, 64);
}
assert_int_equal(cm__key_sign(key, NULL, 5, sig), CM_E_INVAL);
assert_int_equal(cm__key_sign(NULL, msg, 5, sig), CM_E_INVAL);
assert_int_equal(cm__ed25519_verify(NULL, msg, 5, sig), CM_E_INVAL);
cm_key_free(&key);
}

static void test_ed25519_rfc8032(void **state)
{
    /* RFC 8032 section 7.1, TEST 1 (empty message) */
    uint8_t secret[32] = {0}, seed[32], pub[32], expect_pub[32], sig[64],
            expect_sig[64];
    cm_key *key = NULL;
    (void)state;

    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
          seed, 32);
    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
          expect_pub, 32);
    unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8"
          "821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
          expect_sig, 64);
    assert_int_equal(cm__key_from_bytes(&key, secret, seed), CM_OK);
    assert_int_equal(cm_key_public(key, pub), CM_OK);
    assert_memory_equal(pub, expect_pub, 32);
    assert_int_equal(cm__key_sign(key, NULL, 0, sig), CM_OK);
    assert_memory_equal(sig, expect_sig, 64);
    assert_int_equal(cm__ed25519_verify(pub, NULL, 0, sig), 1);
    assert_int_equal(cm__ed25519_verify(pub, (const uint8_t *)"x", 1, sig), 0);
    cm_key_free(&key);
}

/* ---- fingerprint ------------------------------------------------------- */

static void test_fingerprint(void **state)
{
    uint8_t secret[32] = {0}, seed[32], pub[32], md[32];
    unsigned md_len = 0;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1], expect[CM_KEY_FINGERPRINT_CHARS + 1];
    cm_key *key = NULL, *other = NULL;
    (void)state;

    unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
          seed, 32);
    assert_int_equal(cm__key_from_bytes(&key, secret, seed), CM_OK);
    assert_int_equal(cm_key_fingerprint(key, fp), CM_OK);
    assert_int_equal(strlen(fp), CM_KEY_FINGERPRINT_CHARS);
    for (int i = 0; i < CM_KEY_FINGERPRINT_CHARS; i++) {
        if (i % 5 == 4)
            assert_int_equal(fp[i], ':');
        else
            assert_non_null(strchr("0123456789abcdef", fp[i]));
    }
    /* = first 16 bytes of SHA-256 over the RFC 8032 public key
     * (computed independently with Python hashlib) */
assert_string_equal(fp, "21fe:31df:a154:a261:626b:f854:046f:d227");
/* recomputable from the public key alone */
assert_int_equal(cm_key_public(key, pub), CM_OK);
assert_int_equal(EVP_Digest(pub, 32, md, &md_len, EVP_sha256(), NULL), 1);
for (int g = 0; g < 8; g++)
    snprintf(expect + 5 * g, sizeof(expect) - 5 * (size_t)g,
             g < 7 ? "%02x%02x:" : "%02x%02x", md[2 * g], md[2 * g + 1]);
assert_string_equal(fp, expect);

/* does not depend on the watermark secret */
secret[0] = 1;
assert_int_equal(cm__key_from_bytes(&other, secret, seed), CM_OK);
assert_int_equal(cm_key_fingerprint(other, expect), CM_OK);
assert_string_equal(fp, expect);
cm_key_free(&other);
seed[0] ^= 1;
assert_int_equal(cm__key_from_bytes(&other, secret, seed), CM_OK);
assert_int_equal(cm_key_fingerprint(other, expect), CM_OK);
assert_string_not_equal(fp, expect);

assert_int_equal(cm_key_fingerprint(NULL, fp), CM_E_INVAL);
assert_int_equal(cm_key_public(NULL, pub), CM_E_INVAL);
cm_key_free(&key);
cm_key_free(&other);
}

/* ---- delegation ---------------------------------------------------------- */

/* The whole text of a key file. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_delegate_chain(void **state)
{
    (void)state;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), CM_OK);
    cm_key *studio = fixed_key(), *a = NULL, *sub = NULL, *la = NULL, *other = NULL;
    uint8_t root[CM_KEY_PUBLIC_BYTES];
    assert_int_equal(cm_key_public(studio, root), CM_OK);
    assert_int_equal(cm_key_delegate(ctx, studio, "vendor-a", "2026-12-04T00:00:00Z", &a), 0);
    assert_int_equal(cm_key_layer(a), 1);
    assert_string_equal(cm_key_name(a), "vendor-a");
    assert_int_equal(cm_key_chain_ok(a, root), 1);
    assert_int_equal(cm_key_delegate(ctx, a, "sub-x", NULL, &sub), 0);
    assert_int_equal(cm_key_layer(sub), 2);
    int n = 0;
    const cm_key_cert *chain = cm_key_chain(sub, &n);
    assert_int_equal(n, 2);
    assert_string_equal(chain[0].name, "vendor-a");
    assert_string_equal(chain[1].name, "sub-x");
    assert_int_equal(cm_key_cert_ok(&chain[1]), 1);
    assert_int_equal(cm_key_chain_ok(sub, root), 1);
    /* another studio's public key does not root the chain */
    assert_int_equal(cm_key_generate(ctx, &other), 0);
    uint8_t wrong[CM_KEY_PUBLIC_BYTES];
    cm_key_public(other, wrong);
    assert_int_equal(cm_key_chain_ok(sub, wrong), 0);

    /* the studio derives the vendor's layer secret: same subkeys */
    assert_int_equal(cm_key_layer_key(ctx, studio, "vendor-a", &la), 0);
    uint8_t x[32], y[32];
    assert_int_equal(cm__key_derive(a, "test", x, 32), 0);
    assert_int_equal(cm__key_derive(la, "test", y, 32), 0);
    assert_memory_equal(x, y, 32);
    assert_int_equal(cm__key_derive(studio, "test", y, 32), 0);
    assert_memory_not_equal(x, y, 32); /* not the studio's own */
    uint8_t sig[64];
    assert_int_not_equal(cm__key_sign(la, (const uint8_t *)"m", 1, sig), 0); /* cannot sign */
    char path[512];
    tmp_path(path, sizeof(path), "layer.key");
    unlink(path);
    assert_int_equal(cm_key_save(ctx, la, path), CM_E_INVAL);

    /* a certificate altered by one byte no longer verifies */
    cm_key_cert c = chain[1];
    c.name[0] ^= 1;
    assert_int_equal(cm_key_cert_ok(&c), 0);
    uint8_t enc[CM_KEY_CERT_MAX];
    int len = cm_key_cert_encode(&chain[1], enc, sizeof(enc));
    assert_true(len > 0);
    assert_int_equal(cm_key_cert_decode(enc, (size_t)len, &c), CM_OK);
    assert_memory_equal(&c, &chain[1], sizeof(c));
    assert_int_equal(cm_key_cert_decode(enc, (size_t)len - 1, &c), CM_E_FORMAT);

    /* bad names, too deep */
    cm_key *bad = NULL;
    assert_int_equal(cm_key_delegate(ctx, studio, "a\nb", NULL, &bad), CM_E_INVAL);
    assert_int_equal(cm_key_delegate(ctx, studio, "a/b", NULL, &bad), CM_E_INVAL);
    assert_int_equal(cm_key_delegate(ctx, studio, "", NULL, &bad), CM_E_INVAL);
    assert_int_equal(cm_key_delegate(ctx, studio, "\xc0\xaf", NULL, &bad), CM_E_INVAL);
    assert_int_equal(cm_key_delegate(ctx, studio, "caf\xc3\xa9", NULL, &bad), CM_OK);
    cm_key_free(&bad);
    cm_key *k3 = NULL, *k4 = NULL, *k5 = NULL;
    assert_int_equal(cm_key_delegate(ctx, sub, "l3", NULL, &k3), 0);
    assert_int_equal(cm_key_delegate(ctx, k3, "l4", NULL, &k4), 0);
    assert_int_equal(cm_key_delegate(ctx, k4, "l5", NULL, &k5), CM_E_INVAL);
    assert_null(k5);

    /* the key file round trip */
    tmp_path(path, sizeof(path), "sub.key");
    unlink(path);
    assert_int_equal(cm_key_save(ctx, sub, path), CM_OK);
    cm_key *back = NULL;
    assert_int_equal(cm_key_load(ctx, path, &back), CM_OK);
    assert_int_equal(cm_key_layer(back), 2);
    assert_string_equal(cm_key_name(back), "sub-x");
    assert_int_equal(cm_key_chain_ok(back, root), 1);
    size_t tlen;
    char *text = read_text(path, &tlen);
    assert_true(strncmp(text, "celmark-key 2\n", 14) == 0);
    char saved[8192];
    memcpy(saved, text, tlen + 1);
    unlink(path);
    cm_key_free(&back);

    /* damaged delegated key files are refused with one line, no key bytes */
    char buf[8192];
    char *cert2 = strstr(saved, "\ncert ");
    assert_non_null(cert2);
    cert2 = strstr(cert2 + 1, "\ncert ");
    assert_non_null(cert2);
    memcpy(buf, saved, tlen);
    buf[cert2 - saved + 20] = buf[cert2 - saved + 20] == 'a' ? 'b' : 'a'; /* a cert byte */
    expect_bad("badcert.key", buf, tlen, "certificate");
    expect_bad("truncdel.key", saved, (size_t)(cert2 - saved) + 1, "missing");
    memcpy(buf, saved, tlen);
    char *layer = strstr(buf, "layer 2");
    layer[6] = '5';
    expect_bad("deep.key", buf, tlen, "layer N");
    memcpy(buf, saved, tlen);
    char *name = strstr(buf, "name sub-x");
    name[6] = '\x1b';
    expect_bad("ctrl.key", buf, tlen, "control characters");

    cm_key_free(&k3);
    cm_key_free(&k4);
    cm_key_free(&la);
    cm_key_free(&other);
    cm_key_free(&sub);
    cm_key_free(&a);
    cm_key_free(&studio);
    cm_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_bad_args),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_save_exact_text),
        cmocka_unit_test(test_save_refuses_overwrite),
        cmocka_unit_test(test_load_refuses_open_modes),
        cmocka_unit_test(test_load_damaged),
        cmocka_unit_test(test_load_not_a_file),
        cmocka_unit_test(test_load_lenient_last_newline),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_ed25519_rfc8032),
        cmocka_unit_test(test_delegate_chain),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
