/* Ledger: hash chain and signatures, tampering by direct SQL, canonical
 * encoding, id reuse, signer mismatch, reserve/commit/abort and recovery;
 * delegation rows, vendors' ledgers checked from the studio's key, forged
 * certificates, and schema 1 ledgers opened and upgraded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "celmark/ledger.h"
#include "ledger/ledger_internal.h"
#include "watermark/key_internal.h"

extern int (*cm__ledger_rand_hook)(uint64_t *id);

static char dir[512];

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static cm_key *fixed_key(uint8_t fill)
{
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    cm_key *k = NULL;
    memset(secret, fill, sizeof(secret));
    memset(seed, fill + 1, sizeof(seed));
    assert_int_equal(cm__key_from_bytes(&k, secret, seed), 0);
    return k;
}

static cm_ledger_record record(const char *recipient, const char *asset)
{
    cm_ledger_record r;
    memset(&r, 0, sizeof(r));
    r.recipient = recipient;
    r.asset = asset;
    r.note = "test";
    r.width = 640;
    r.height = 360;
    r.profile = "default";
    r.strength = 1.0;
    r.layer = "luma";
    r.operator_name = "tester";
    r.stamped_at = "2024-01-02T03:04:05Z";
    return r;
}

/* A fresh ledger with 5 rows (ids 1..5; assets a, b alternating). */
static cm_ledger *make_ledger(const char *name, const cm_key *key, char *path, size_t n)
{
    cm_ledger *lg = NULL;
    char p[600];
    tmp_path(path, n, name);
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    assert_int_equal(cm_ledger_open(NULL, path, CM_LEDGER_CREATE, &lg), 0);
    uint8_t sha[32];
    memset(sha, 0x5a, sizeof(sha));
    for (uint64_t id = 1; id <= 5; id++) {
        cm_ledger_record r = record(id % 2 ? "alice" : "bob", id % 2 ? "a" : "b");
        assert_int_equal(cm_ledger_append(NULL, lg, id, &r, sha, 1000 + (int64_t)id, "/x.png", key), 0);
    }
    return lg;
}

static void sql(cm_ledger **lg, const char *path, const char *stmt)
{
    /* edit behind the library's back, like an attacker with sqlite3 */
    cm_ledger_close(lg);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, stmt, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", stmt, err);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(cm_ledger_open(NULL, path, 0, lg), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char path[600];
    cm_key *key = fixed_key(1);
    cm_ledger *lg = make_ledger("rt.db", key, path, sizeof(path));
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 5);
    assert_int_equal(rep.other_signer, 0);

    cm_ledger_row row;
    assert_int_equal(cm_ledger_get(NULL, lg, 3, &row), 1);
    assert_int_equal(row.seq, 3);
    assert_string_equal(row.recipient, "alice");
    assert_string_equal(row.asset, "a");
    assert_string_equal(row.stamped_at, "2024-01-02T03:04:05Z");
    assert_int_equal(row.output_size, 1003);
    assert_int_equal(cm_ledger_row_signature_ok(&row), 1);
    row.strength = 1.5; /* any change breaks the signature */
    assert_int_equal(cm_ledger_row_signature_ok(&row), 0);
    cm_ledger_row_clear(&row);
    assert_int_equal(cm_ledger_get(NULL, lg, 99, &row), 0);

    uint64_t *ids;
    size_t n;
    assert_int_equal(cm_ledger_candidates(NULL, lg, NULL, &ids, &n), 0);
    assert_int_equal(n, 5);
    free(ids);
    assert_int_equal(cm_ledger_candidates(NULL, lg, "b", &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_true((ids[0] == 2 && ids[1] == 4) || (ids[0] == 4 && ids[1] == 2));
    free(ids);

    /* survives close/reopen; ids with the top bit set round-trip */
    uint8_t sha[32] = {0};
    cm_ledger_record r = record("carol", "a");
    assert_int_equal(cm_ledger_append(NULL, lg, 0xfedcba9876543210ULL, &r, sha, 1, "", key), 0);
    cm_ledger_close(&lg);
    assert_int_equal(cm_ledger_open(NULL, path, 0, &lg), 0);
    assert_int_equal(cm_ledger_get(NULL, lg, 0xfedcba9876543210ULL, &row), 1);
    assert_int_equal(row.seq, 6);
    cm_ledger_row_clear(&row);
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 6);
    cm_ledger_close(&lg);
    cm_key_free(&key);
}

/* Each tampering kind, done with SQL on the file, is detected at the right row. */
static void tamper(const char *stmts, int64_t want_bad_seq, const char *want_reason)
{
    char path[600];
    cm_key *key = fixed_key(1);
    cm_ledger *lg = make_ledger("tamper.db", key, path, sizeof(path));
    sql(&lg, path, stmts);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, want_bad_seq);
    if (!strstr(rep.reason, want_reason))
        fail_msg("reason '%s' does not mention '%s'", rep.reason, want_reason);
    cm_ledger_close(&lg);
    cm_key_free(&key);
}

static void test_tamper_edit(void **state)
{
    (void)state;
    tamper("UPDATE issues SET recipient='mallory' WHERE seq=3", 3, "signature");
}

static void test_tamper_edit_id(void **state)
{
    (void)state;
    tamper("UPDATE issues SET issue_id=77 WHERE seq=4", 4, "signature");
}

static void test_tamper_delete(void **state)
{
    (void)state;
    tamper("DELETE FROM issues WHERE seq=3", 4, "missing");
}

static void test_tamper_insert(void **state)
{
    (void)state;
    /* make room at seq 3 and insert a copy of row 2 under a new id */
    tamper("UPDATE issues SET seq=seq+100 WHERE seq>=3;"
           "UPDATE issues SET seq=seq-99 WHERE seq>=100;"
           "INSERT INTO issues SELECT 3, 42, recipient, asset, note, input_sha256, "
           "output_sha256, output_path, output_size, width, height, profile, strength, "
           "cel_safe, layer, tool_version, key_fingerprint, signer_pub, stamped_at, operator, "
           "prev_hash, signature, chain FROM issues WHERE seq=2",
           3, "");
}

static void test_tamper_reorder(void **state)
{
    (void)state;
    tamper("UPDATE issues SET seq=-1 WHERE seq=2; UPDATE issues SET seq=2 WHERE seq=3;"
           "UPDATE issues SET seq=3 WHERE seq=-1",
           2, "");
}

static void test_tamper_append_unsigned(void **state)
{
    (void)state;
    /* a row appended at the end with a valid-looking prev hash but a copied signature */
    tamper("INSERT INTO issues SELECT 6, 43, 'mallory', asset, note, input_sha256, "
           "output_sha256, output_path, output_size, width, height, profile, strength, "
           "cel_safe, layer, tool_version, key_fingerprint, signer_pub, stamped_at, operator, "
           "prev_hash, signature, chain FROM issues WHERE seq=5",
           6, "");
}

/* The canonical bytes never change for the same row (golden SHA-256). */
static void test_canonical_stable(void **state)
{
    (void)state;
    cm_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.seq = 7;
    r.issue_id = 0x0123456789abcdefULL;
    r.recipient = (char *)"Vendor A, \"Paris\"";
    r.asset = (char *)"ep01/sc012/cel0042";
    r.note = (char *)"";
    memset(r.input_sha256, 0x11, 32);
    memset(r.output_sha256, 0x22, 32);
    r.output_path = (char *)"/out/a.png";
    r.output_size = 123456;
    r.width = 1920;
    r.height = 1080;
    r.profile = (char *)"default";
    r.strength = 1.25;
    r.cel_safe = 1;
    r.layer = (char *)"luma";
    r.tool_version = (char *)"celmark 0.1.0";
    r.key_fingerprint = (char *)"0000:1111:2222:3333:4444:5555:6666:7777";
    memset(r.signer_pub, 0x33, 32);
    r.stamped_at = (char *)"2024-01-02T03:04:05Z";
    r.operator_name = (char *)"op";
    memset(r.prev_hash, 0x44, 32);

    uint8_t *b;
    size_t n;
    assert_int_equal(cm__ledger_canonical(&r, &b, &n), 0);
    /* 22 length prefixes + field bytes */
    size_t want = 22 * 4 + 20 + 8 + 8 + strlen(r.recipient) + strlen(r.asset) + 0 + 32 + 32 +
                  strlen(r.output_path) + 8 + 8 + 8 + 7 + 8 + 8 + 4 + 13 + 39 + 32 + 20 + 2 + 32;
    assert_int_equal(n, want);
    assert_memory_equal(b, "\0\0\0\x14" "celmark.ledger.row/1" "\0\0\0\x08\0\0\0\0\0\0\0\x07", 36);
    free(b);
    uint8_t h[32];
    char hexs[65];
    assert_int_equal(cm__ledger_row_hash(&r, h), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hexs + 2 * i, 3, "%02x", h[i]);
    /* independently computed from the documented encoding (Python struct + hashlib) */
    assert_string_equal(hexs, "2711880131b7e2356ba73087044de6b498aa4d41f043353be1b9e4127e52901e");

    /* moving bytes between adjacent text fields changes the encoding */
    uint8_t h2[32];
    r.recipient = (char *)"Vendor A, \"Paris\"e";
    r.asset = (char *)"p01/sc012/cel0042";
    assert_int_equal(cm__ledger_row_hash(&r, h2), 0);
    assert_memory_not_equal(h, h2, 32);
}

static void hex32(const uint8_t h[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static cm_key_cert fixed_cert(void)
{
    cm_key_cert c;
    memset(&c, 0, sizeof(c));
    c.layer = 1;
    snprintf(c.name, sizeof(c.name), "vendor-a");
    memset(c.subject_pub, 0x55, 32);
    memset(c.commitment, 0x66, 32);
    snprintf(c.date, sizeof(c.date), "2025-01-02T03:04:05Z");
    memset(c.issuer_pub, 0x33, 32);
    memset(c.signature, 0x77, 64);
    return c;
}

/* A row with a chain (/2) and a delegation row: golden hashes, computed
 * independently from the encoding documented in chain.c (Python struct +
 * hashlib, the same script that reproduces the /1 hash above). */
static void test_canonical_v2_stable(void **state)
{
    (void)state;
    cm_ledger_row r;
    memset(&r, 0, sizeof(r));
    r.seq = 7;
    r.issue_id = 0x0123456789abcdefULL;
    r.recipient = (char *)"Vendor A, \"Paris\"";
    r.asset = (char *)"ep01/sc012/cel0042";
    r.note = (char *)"";
    memset(r.input_sha256, 0x11, 32);
    memset(r.output_sha256, 0x22, 32);
    r.output_path = (char *)"/out/a.png";
    r.output_size = 123456;
    r.width = 1920;
    r.height = 1080;
    r.profile = (char *)"default";
    r.strength = 1.25;
    r.cel_safe = 1;
    r.layer = (char *)"luma";
    r.tool_version = (char *)"celmark 0.1.0";
    r.key_fingerprint = (char *)"0000:1111:2222:3333:4444:5555:6666:7777";
    memset(r.signer_pub, 0x33, 32);
    r.stamped_at = (char *)"2024-01-02T03:04:05Z";
    r.operator_name = (char *)"op";
    memset(r.prev_hash, 0x44, 32);
    r.chain_len = 1;
    r.chain[0] = fixed_cert();
    uint8_t h[32];
    char hexs[65];
    assert_int_equal(cm__ledger_row_hash(&r, h), 0);
    hex32(h, hexs);
    assert_string_equal(hexs, "0bccee9d5c77f698672408ffa89df82ff73f92fdfaebb989d1403245f2f9f502");
    /* without its chain the row is the /1 row of test_canonical_stable */
    r.chain_len = 0;
    assert_int_equal(cm__ledger_row_hash(&r, h), 0);
    hex32(h, hexs);
    assert_string_equal(hexs, "2711880131b7e2356ba73087044de6b498aa4d41f043353be1b9e4127e52901e");
    r.chain_len = -1; /* a damaged stored chain has no canonical bytes */
    assert_int_equal(cm__ledger_row_hash(&r, h), CM_E_INVAL);
    assert_int_equal(cm_ledger_row_signature_ok(&r), 0);

    cm__ledger_drow d;
    memset(&d, 0, sizeof(d));
    d.seq = 8;
    d.cert = fixed_cert();
    d.cert_ok = 1;
    d.tool_version = (char *)"celmark 0.1.0";
    d.key_fingerprint = (char *)"0000:1111:2222:3333:4444:5555:6666:7777";
    memset(d.signer_pub, 0x33, 32);
    d.recorded_at = (char *)"2025-01-02T03:04:06Z";
    memset(d.prev_hash, 0x44, 32);
    uint8_t *b;
    size_t n;
    assert_int_equal(cm__ledger_dcanonical(&d, &b, &n), 0);
    assert_int_equal(n, 410);
    assert_memory_equal(b, "\0\0\0\x1b" "celmark.ledger.delegation/1", 31);
    free(b);
    assert_int_equal(cm__ledger_drow_hash(&d, h), 0);
    hex32(h, hexs);
    assert_string_equal(hexs, "44e3a9eb1534584cf3c5c4a908a2bb1ef8ba3e560bb280cda6805bc3ca99efc8");

    /* the stored form of a chain round-trips; junk does not decode */
    cm_key_cert chain[CM_KEY_MAX_LAYER] = {fixed_cert(), fixed_cert()}, back[CM_KEY_MAX_LAYER];
    chain[1].layer = 2;
    uint8_t packed[CM__LEDGER_CHAIN_MAX];
    size_t plen = 0;
    assert_int_equal(cm__ledger_chain_pack(chain, 2, packed, sizeof(packed), &plen), 0);
    assert_int_equal(plen, 2 * (2 + 195));
    assert_int_equal(cm__ledger_chain_unpack(packed, plen, back), 2);
    assert_memory_equal(back, chain, 2 * sizeof(cm_key_cert));
    assert_int_equal(cm__ledger_chain_unpack(packed, plen - 1, back), -1);
    assert_int_equal(cm__ledger_chain_unpack(packed, 0, back), 0);
}

static const uint64_t *hook_seq;
static int hook_pos;
static int seq_rand(uint64_t *id)
{
    *id = hook_seq[hook_pos++];
    return 0;
}

static void test_id_never_reused(void **state)
{
    (void)state;
    char path[600], out[600];
    cm_key *key = fixed_key(1);
    cm_ledger *lg = make_ledger("reuse.db", key, path, sizeof(path));
    /* the generator first returns ids already in the ledger */
    static const uint64_t seq[] = {3, 5, 1, 0x1234};
    hook_seq = seq;
    hook_pos = 0;
    cm__ledger_rand_hook = seq_rand;
    tmp_path(out, sizeof(out), "reuse.png");
    unlink(out);
    cm_ledger_issue *iss = NULL;
    assert_int_equal(cm_ledger_reserve(NULL, lg, out, &iss), 0);
    assert_int_equal(cm_ledger_issue_id(iss), 0x1234);
    assert_int_equal(hook_pos, 4);
    /* a pending id is not handed out twice either */
    static const uint64_t seq2[] = {0x1234, 0x5678};
    hook_seq = seq2;
    hook_pos = 0;
    cm_ledger_issue *iss2 = NULL;
    assert_int_equal(cm_ledger_reserve(NULL, lg, out, &iss2), 0);
    assert_int_equal(cm_ledger_issue_id(iss2), 0x5678);
    cm__ledger_rand_hook = NULL;
    cm_ledger_issue_abort(lg, &iss2);
    assert_null(iss2);

    /* commit: row + file; the temp file is gone */
    FILE *f = fopen(cm_ledger_issue_temp_path(iss), "wb");
    assert_non_null(f);
    fputs("stamped bytes", f);
    fclose(f);
    char temp[600];
    snprintf(temp, sizeof(temp), "%s", cm_ledger_issue_temp_path(iss));
    cm_ledger_record r = record("dave", "c");
    cm_ledger_row row;
    assert_int_equal(cm_ledger_issue_commit(NULL, lg, &iss, &r, key, 0, &row), 0);
    assert_null(iss);
    assert_int_equal(row.issue_id, 0x1234);
    assert_int_equal(row.seq, 6);
    assert_int_equal(row.output_size, 13);
    cm_ledger_row_clear(&row);
    assert_int_equal(access(out, F_OK), 0);
    assert_int_not_equal(access(temp, F_OK), 0);
    /* appending a recorded id fails */
    uint8_t sha[32] = {0};
    assert_int_equal(cm_ledger_append(NULL, lg, 0x1234, &r, sha, 1, "", key), CM_E_EXISTS);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 6);
    assert_int_equal(rep.pending, 0);

    /* without force an existing output is never replaced, and nothing is recorded */
    assert_int_equal(cm_ledger_reserve(NULL, lg, out, &iss), 0);
    f = fopen(cm_ledger_issue_temp_path(iss), "wb");
    fputs("other", f);
    fclose(f);
    assert_int_equal(cm_ledger_issue_commit(NULL, lg, &iss, &r, key, 0, NULL), CM_E_EXISTS);
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_int_equal(rep.rows, 6);
    assert_int_equal(rep.pending, 0);
    cm_ledger_close(&lg);
    unlink(out);
    cm_key_free(&key);
}

static void test_fingerprint_mismatch(void **state)
{
    (void)state;
    char path[600];
    cm_key *key = fixed_key(1), *other = fixed_key(9);
    cm_ledger *lg = make_ledger("fp.db", key, path, sizeof(path));
    char signer[CM_KEY_FINGERPRINT_CHARS + 1], fp[CM_KEY_FINGERPRINT_CHARS + 1];
    assert_int_equal(cm_ledger_signer(NULL, lg, signer), 0);
    assert_int_equal(cm_key_fingerprint(key, fp), 0);
    assert_string_equal(signer, fp);
    assert_int_equal(cm_key_fingerprint(other, fp), 0);
    assert_string_not_equal(signer, fp);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, other, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.other_signer, 5);
    assert_int_equal(rep.bad_seq, 1);
    assert_non_null(strstr(rep.reason, "another key"));
    /* a row signed by another key in the middle of the chain */
    uint8_t sha[32] = {0};
    cm_ledger_record r = record("eve", "a");
    assert_int_equal(cm_ledger_append(NULL, lg, 100, &r, sha, 1, "", other), 0);
    assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 6);
    assert_int_equal(rep.other_signer, 1);
    cm_ledger_close(&lg);
    cm_key_free(&key);
    cm_key_free(&other);
}

/* A stamp that dies after reserving (temp written, output moved or not)
 * is cleaned by the next open; the chain is untouched. */
static void crash_child(const char *path, const char *out, int stage)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cm_ledger *lg = NULL;
        cm_ledger_issue *iss = NULL;
        if (cm_ledger_open(NULL, path, 0, &lg) || cm_ledger_reserve(NULL, lg, out, &iss))
            _exit(1);
        FILE *f = fopen(cm_ledger_issue_temp_path(iss), "wb");
        fputs("half", f);
        fclose(f);
        if (stage >= 1) {
            /* as if killed between the move and COMMIT */
            sqlite3 *db;
            uint8_t sha[32];
            cm_sha256_file(NULL, cm_ledger_issue_temp_path(iss), sha, NULL);
            sqlite3_open(path, &db);
            sqlite3_stmt *st;
            sqlite3_prepare_v2(db, "UPDATE pending SET output_sha256=?", -1, &st, NULL);
            sqlite3_bind_blob(st, 1, sha, 32, SQLITE_STATIC);
            sqlite3_step(st);
            sqlite3_finalize(st);
            sqlite3_close(db);
            if (rename(cm_ledger_issue_temp_path(iss), out) != 0)
                _exit(1);
        }
        _exit(0); /* no commit, no abort: like kill -9 */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_recover_after_crash(void **state)
{
    (void)state;
    char path[600], out[600];
    cm_key *key = fixed_key(1);
    cm_ledger *lg = make_ledger("crash.db", key, path, sizeof(path));
    cm_ledger_close(&lg);
    tmp_path(out, sizeof(out), "crash.png");
    for (int stage = 0; stage <= 1; stage++) {
        unlink(out);
        crash_child(path, out, stage);
        if (stage == 1)
            assert_int_equal(access(out, F_OK), 0);
        int cleaned = -1;
        assert_int_equal(cm_ledger_open(NULL, path, CM_LEDGER_READONLY, &lg), 0);
        cm_ledger_report rep;
        assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
        assert_int_equal(rep.pending, 1);
        cm_ledger_close(&lg);
        assert_int_equal(cm_ledger_open(NULL, path, 0, &lg), 0); /* reconciles */
        assert_int_equal(cm_ledger_reconcile(NULL, lg, &cleaned), 0);
        assert_int_equal(cleaned, 0);
        assert_int_equal(cm_ledger_check(NULL, lg, key, &rep), 0);
        assert_true(rep.ok);
        assert_int_equal(rep.rows, 5);
        assert_int_equal(rep.pending, 0);
        assert_int_not_equal(access(out, F_OK), 0);
        cm_ledger_close(&lg);
    }
    /* a live reservation (another handle) is left alone */
    cm_ledger *a = NULL, *b = NULL;
    cm_ledger_issue *iss = NULL;
    int cleaned = -1;
    assert_int_equal(cm_ledger_open(NULL, path, 0, &a), 0);
    assert_int_equal(cm_ledger_reserve(NULL, a, out, &iss), 0);
    assert_int_equal(cm_ledger_open(NULL, path, 0, &b), 0);
    assert_int_equal(cm_ledger_reconcile(NULL, b, &cleaned), 0);
    assert_int_equal(cleaned, 0);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, b, key, &rep), 0);
    assert_int_equal(rep.pending, 1);
    cm_ledger_issue_abort(a, &iss);
    assert_int_equal(cm_ledger_check(NULL, b, key, &rep), 0);
    assert_int_equal(rep.pending, 0);
    cm_ledger_close(&a);
    cm_ledger_close(&b);
    cm_key_free(&key);
}

/* ---- delegation ------------------------------------------------------- */

#define DATE "2025-01-02T03:04:05Z"

static cm_key *delegate(const cm_key *parent, const char *name)
{
    cm_key *k = NULL;
    assert_int_equal(cm_key_delegate(NULL, parent, name, DATE, &k), 0);
    return k;
}

/* An empty ledger at dir/name. */
static cm_ledger *empty_ledger(const char *name, char *path, size_t n)
{
    cm_ledger *lg = NULL;
    char p[700];
    tmp_path(path, n, name);
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    assert_int_equal(cm_ledger_open(NULL, path, CM_LEDGER_CREATE, &lg), 0);
    return lg;
}

static void append(cm_ledger *lg, uint64_t id, const cm_key *key)
{
    uint8_t sha[32];
    memset(sha, 0x5a, sizeof(sha));
    cm_ledger_record r = record("vendor", "a");
    assert_int_equal(cm_ledger_append(NULL, lg, id, &r, sha, 1, "/x.png", key), 0);
}

static void test_delegation(void **state)
{
    (void)state;
    char path[600], fp[CM_KEY_FINGERPRINT_CHARS + 1];
    cm_key *studio = fixed_key(1), *other = fixed_key(9);
    cm_key *va = delegate(studio, "vendor-a"), *sx = delegate(va, "sub-x");
    cm_ledger *lg = make_ledger("deleg.db", studio, path, sizeof(path));
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, studio, va), 0);
    append(lg, 6, studio);

    cm_ledger_delegation *dl = NULL;
    size_t n = 0;
    assert_int_equal(cm_ledger_delegations(NULL, lg, &dl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(dl[0].seq, 6);
    assert_string_equal(dl[0].cert.name, "vendor-a");
    assert_int_equal(dl[0].cert.layer, 1);
    assert_string_equal(dl[0].cert.date, DATE);
    assert_true(dl[0].sig_ok);
    uint8_t pub[32];
    cm_key_public(va, pub);
    assert_memory_equal(dl[0].cert.subject_pub, pub, 32);
    cm_key_public(studio, pub);
    assert_memory_equal(dl[0].signer_pub, pub, 32);
    cm_key_fingerprint(studio, fp);
    assert_string_equal(dl[0].key_fingerprint, fp);
    free(dl);

    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 7);
    assert_int_equal(rep.delegations, 1);
    assert_int_equal(rep.other_signer, 0);
    assert_int_equal(rep.delegated, 0);
    cm_ledger_row row;
    assert_int_equal(cm_ledger_get(NULL, lg, 6, &row), 1);
    assert_int_equal(row.seq, 7);
    assert_int_equal(row.chain_len, 0); /* a studio key's row */
    cm_ledger_row_clear(&row);
    uint64_t *ids;
    assert_int_equal(cm_ledger_candidates(NULL, lg, NULL, &ids, &n), 0);
    assert_int_equal(n, 6); /* delegations are not issue ids */
    free(ids);

    /* only a key's direct delegate is recorded */
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), 0);
    assert_int_equal(cm_ledger_add_delegation(ctx, lg, studio, sx), CM_E_INVAL);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "sub-x"));
    assert_int_equal(cm_ledger_add_delegation(ctx, lg, other, va), CM_E_INVAL);
    assert_int_equal(cm_ledger_add_delegation(ctx, lg, va, va), CM_E_INVAL);
    cm_ctx_free(&ctx);

    /* a vendor's delegation in the same chain: signed by the vendor, with
     * its chain, trusted from the studio's key */
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, va, sx), 0);
    assert_int_equal(cm_ledger_delegations(NULL, lg, &dl, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(dl[1].seq, 8);
    assert_int_equal(dl[1].cert.layer, 2);
    assert_true(dl[1].sig_ok);
    free(dl);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 8);
    assert_int_equal(rep.delegations, 2);
    assert_int_equal(rep.delegated, 1);
    /* ... and inside one transaction with issue rows */
    assert_int_equal(cm_ledger_begin(NULL, lg), 0);
    append(lg, 7, studio);
    cm_key *vb = delegate(studio, "vendor-b");
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, studio, vb), 0);
    append(lg, 8, studio);
    assert_int_equal(cm_ledger_commit(NULL, lg), 0);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 11);
    /* with another key as root nothing is trusted */
    assert_int_equal(cm_ledger_check(NULL, lg, other, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.other_signer, 11);
    cm_ledger_close(&lg);
    cm_key_free(&vb);
    cm_key_free(&sx);
    cm_key_free(&va);
    cm_key_free(&other);
    cm_key_free(&studio);
}

/* 5 rows, vendor-a's delegation (6), an issue row (7), vendor-b's (8),
 * an issue row (9); then stmts behind the library's back. */
static void tamper_delegation(const char *stmts, int64_t want_bad_seq, int want_kind,
                              const char *want_reason)
{
    char path[600];
    cm_key *studio = fixed_key(1);
    cm_key *va = delegate(studio, "vendor-a"), *vb = delegate(studio, "vendor-b");
    cm_ledger *lg = make_ledger("dtamper.db", studio, path, sizeof(path));
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, studio, va), 0);
    append(lg, 6, studio);
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, studio, vb), 0);
    append(lg, 7, studio);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    sql(&lg, path, stmts);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, want_bad_seq);
    assert_int_equal(rep.bad_kind, want_kind);
    if (!strstr(rep.reason, want_reason))
        fail_msg("reason '%s' does not mention '%s'", rep.reason, want_reason);
    cm_ledger_delegation *dl = NULL;
    size_t n = 0;
    assert_int_equal(cm_ledger_delegations(NULL, lg, &dl, &n), 0);
    free(dl);
    cm_ledger_close(&lg);
    cm_key_free(&va);
    cm_key_free(&vb);
    cm_key_free(&studio);
}

static void test_tamper_delegation(void **state)
{
    (void)state;
    tamper_delegation("UPDATE delegations SET recorded_at='2000-01-01T00:00:00Z' WHERE seq=6", 6,
                      CM_LEDGER_ROW_DELEGATION, "signature");
    /* another vendor's certificate under this row's signature */
    tamper_delegation("UPDATE delegations SET cert=(SELECT cert FROM delegations WHERE seq=8) "
                      "WHERE seq=6",
                      6, CM_LEDGER_ROW_DELEGATION, "signature");
    tamper_delegation("UPDATE delegations SET cert=zeroblob(40) WHERE seq=8", 8,
                      CM_LEDGER_ROW_DELEGATION, "damaged");
    tamper_delegation("DELETE FROM delegations WHERE seq=6", 7, CM_LEDGER_ROW_ISSUE, "missing");
    /* a delegation row turned into an issue number: two rows 6 */
    tamper_delegation("UPDATE delegations SET seq=7 WHERE seq=6", 7, CM_LEDGER_ROW_ISSUE,
                      "missing");
    tamper_delegation("UPDATE issues SET seq=8 WHERE seq=7; UPDATE delegations SET seq=7 "
                      "WHERE seq=8",
                      7, CM_LEDGER_ROW_DELEGATION, "");
}

/* A vendor's own ledger: rows signed by vendor-a and its sub-vendor carry
 * their chains and check from the studio's public key alone. */
static void test_vendor_ledger(void **state)
{
    (void)state;
    char path[600], out[600];
    cm_key *studio = fixed_key(1), *other = fixed_key(9);
    cm_key *va = delegate(studio, "vendor-a"), *sx = delegate(va, "sub-x");
    cm_ledger *lg = empty_ledger("vendor.db", path, sizeof(path));
    for (uint64_t id = 1; id <= 3; id++)
        append(lg, id, va);
    /* the stamping path (reserve / commit) records the chain too */
    tmp_path(out, sizeof(out), "vendor.png");
    unlink(out);
    cm_ledger_issue *iss = NULL;
    assert_int_equal(cm_ledger_reserve(NULL, lg, out, &iss), 0);
    FILE *f = fopen(cm_ledger_issue_temp_path(iss), "wb");
    assert_non_null(f);
    fputs("stamped by vendor-a", f);
    fclose(f);
    cm_ledger_record rec = record("sub-x", "sh010");
    cm_ledger_row row;
    assert_int_equal(cm_ledger_issue_commit(NULL, lg, &iss, &rec, va, 0, &row), 0);
    assert_int_equal(row.chain_len, 1);
    assert_string_equal(row.chain[0].name, "vendor-a");
    uint64_t stamped = row.issue_id;
    cm_ledger_row_clear(&row);
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, va, sx), 0);
    append(lg, 100, sx);

    uint8_t root[32], vpub[32], opub[32];
    cm_key_public(studio, root);
    cm_key_public(va, vpub);
    cm_key_public(other, opub);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check_pub(NULL, lg, root, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 6);
    assert_int_equal(rep.delegated, 6);
    assert_int_equal(rep.delegations, 1);
    assert_int_equal(rep.other_signer, 0);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    /* the vendor's own key: its rows are its own, sub-x's are delegated */
    assert_int_equal(cm_ledger_check(NULL, lg, va, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.delegated, 1);
    /* sub-x is below vendor-a: vendor-a's rows are not its to vouch for */
    assert_int_equal(cm_ledger_check(NULL, lg, sx, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 1);
    assert_int_equal(rep.other_signer, 5);
    assert_int_equal(cm_ledger_check(NULL, lg, other, &rep), 0);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.reason, "starts at another key"));
    assert_int_equal(rep.other_signer, 6);

    assert_int_equal(cm_ledger_get(NULL, lg, stamped, &row), 1);
    assert_int_equal(row.chain_len, 1);
    assert_int_equal(cm_ledger_row_signature_ok(&row), 1);
    assert_int_equal(cm_ledger_row_chain_ok(&row, root), 1);
    assert_int_equal(cm_ledger_row_chain_ok(&row, NULL), 1);
    assert_int_equal(cm_ledger_row_chain_ok(&row, opub), 0);
    cm_ledger_row_clear(&row);
    assert_int_equal(cm_ledger_get(NULL, lg, 100, &row), 1);
    assert_int_equal(row.chain_len, 2);
    assert_int_equal(cm_ledger_row_chain_ok(&row, vpub), 1); /* through vendor-a */
    cm_ledger_row_clear(&row);

    /* stripping or swapping a row's chain breaks its signature */
    sql(&lg, path, "UPDATE issues SET chain=x'' WHERE seq=2");
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 2);
    assert_non_null(strstr(rep.reason, "signature"));
    sql(&lg, path, "UPDATE issues SET chain=(SELECT chain FROM issues WHERE seq=1) WHERE seq=2;"
                   "UPDATE issues SET chain=(SELECT chain FROM issues WHERE seq=1) WHERE seq=6");
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 6);
    sql(&lg, path, "UPDATE issues SET chain=x'0001ff' WHERE seq=6");
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 6);
    assert_non_null(strstr(rep.reason, "damaged"));
    assert_int_equal(cm_ledger_get(NULL, lg, 100, &row), 1);
    assert_int_equal(row.chain_len, -1);
    assert_int_equal(cm_ledger_row_signature_ok(&row), 0);
    cm_ledger_row_clear(&row);
    cm_ledger_close(&lg);
    unlink(out);
    cm_key_free(&sx);
    cm_key_free(&va);
    cm_key_free(&other);
    cm_key_free(&studio);
}

/* Append a delegation row for cert, validly signed by key, with SQL (what
 * cm_ledger_add_delegation refuses to write). Keeps lg open. */
static void insert_drow_signed(cm_ledger *lg, const char *path, const cm_key *key,
                               const cm_key_cert *cert)
{
    cm__ledger_drow d;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    memset(&d, 0, sizeof(d));
    assert_int_equal(cm__ledger_load_tail(NULL, lg, &d.seq, d.prev_hash), 0);
    d.seq++;
    d.cert = *cert;
    d.cert_ok = 1;
    const cm_key_cert *chain = cm_key_chain(key, &d.chain_len);
    memcpy(d.chain, chain, sizeof(cm_key_cert) * (size_t)d.chain_len);
    d.tool_version = (char *)"celmark 0.1.0";
    cm_key_fingerprint(key, fp);
    d.key_fingerprint = fp;
    cm_key_public(key, d.signer_pub);
    d.recorded_at = (char *)DATE;
    assert_int_equal(cm__ledger_drow_sign(&d, key), 0);
    uint8_t enc[CM_KEY_CERT_MAX], packed[CM__LEDGER_CHAIN_MAX];
    size_t plen = 0;
    int n = cm_key_cert_encode(cert, enc, sizeof(enc));
    assert_true(n > 0);
    assert_int_equal(cm__ledger_chain_pack(d.chain, d.chain_len, packed, sizeof(packed), &plen),
                     0);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO delegations(" DROW_COLS ") "
                                            "VALUES(?,?,?,?,?,?,?,?,?)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, d.seq);
    sqlite3_bind_blob(st, 2, enc, n, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d.tool_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d.key_fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, d.signer_pub, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d.recorded_at, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, d.prev_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, d.signature, 64, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, packed, (int)plen, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Rows signed by a key whose certificate the studio never signed. */
static void test_forged_certificate(void **state)
{
    (void)state;
    char path[600];
    cm_key *studio = fixed_key(1), *mallory = fixed_key(7);
    uint8_t root[32];
    cm_key_public(studio, root);

    /* 1: mallory's own delegate, certificate re-signed by mallory but
     * naming the studio as its issuer */
    cm_key *forged = delegate(mallory, "vendor-a");
    cm_key_cert *c = &forged->chain[0];
    memcpy(c->issuer_pub, root, 32);
    uint8_t enc[CM_KEY_CERT_MAX];
    int n = cm_key_cert_encode(c, enc, sizeof(enc));
    assert_true(n > 64);
    assert_int_equal(cm__key_sign(mallory, enc, (size_t)n - 64, c->signature), 0);
    assert_false(cm_key_cert_ok(c));
    assert_false(cm_key_chain_ok(forged, root));
    cm_ledger *lg = empty_ledger("forged.db", path, sizeof(path));
    append(lg, 1, forged);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 1);
    assert_int_equal(rep.other_signer, 1);
    assert_non_null(strstr(rep.reason, "bad signature"));
    cm_ledger_close(&lg);

    /* 2: a genuine chain, but rooted in mallory */
    cm_key *rogue = delegate(mallory, "vendor-a");
    lg = empty_ledger("forged.db", path, sizeof(path));
    append(lg, 1, rogue);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.reason, "starts at another key"));
    assert_int_equal(cm_ledger_check(NULL, lg, mallory, &rep), 0);
    assert_true(rep.ok);
    cm_ledger_close(&lg);

    /* 3: a genuine vendor row, then one signed by a key without chain */
    cm_key *va = delegate(studio, "vendor-a");
    lg = empty_ledger("forged.db", path, sizeof(path));
    append(lg, 1, va);
    append(lg, 2, mallory);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 2);
    assert_int_equal(rep.delegated, 1);
    assert_non_null(strstr(rep.reason, "another key"));
    cm_ledger_close(&lg);

    /* 4: delegation rows validly signed by vendor-a whose certificate is
     * not vendor-a's to give */
    cm_key *sx = delegate(va, "sub-x"), *msx = delegate(mallory, "sub-x");
    cm_key_cert bad_sig = sx->chain[1], wrong_layer = sx->chain[1];
    bad_sig.date[0] = '1'; /* no longer what vendor-a signed */
    wrong_layer.layer = 1; /* re-signed by vendor-a, but one layer too high */
    n = cm_key_cert_encode(&wrong_layer, enc, sizeof(enc));
    assert_int_equal(cm__key_sign(va, enc, (size_t)n - 64, wrong_layer.signature), 0);
    struct {
        const cm_key_cert *cert;
        const char *reason;
    } cases[] = {
        {&bad_sig, "bad signature"},
        {&msx->chain[0], "issued by another key than the row's signer"},
        {&wrong_layer, "is for layer 1, not 2"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        lg = empty_ledger("forged.db", path, sizeof(path));
        append(lg, 1, va);
        insert_drow_signed(lg, path, va, cases[k].cert);
        append(lg, 2, va);
        assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
        assert_false(rep.ok);
        assert_int_equal(rep.bad_seq, 2);
        assert_int_equal(rep.bad_kind, CM_LEDGER_ROW_DELEGATION);
        if (!strstr(rep.reason, cases[k].reason))
            fail_msg("reason '%s' does not mention '%s'", rep.reason, cases[k].reason);
        cm_ledger_delegation *dl = NULL;
        size_t nd = 0;
        assert_int_equal(cm_ledger_delegations(NULL, lg, &dl, &nd), 0);
        assert_int_equal(nd, 1);
        assert_false(dl[0].sig_ok);
        free(dl);
        cm_ledger_close(&lg);
    }
    cm_key_free(&msx);
    cm_key_free(&sx);
    cm_key_free(&va);
    cm_key_free(&rogue);
    cm_key_free(&forged);
    cm_key_free(&mallory);
    cm_key_free(&studio);
}

/* The schema celmark 0.1 wrote (meta.schema_version = 1), verbatim. */
static const char *SCHEMA_V1 =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS issues("
    " seq INTEGER PRIMARY KEY,"
    " issue_id INTEGER NOT NULL UNIQUE,"
    " recipient TEXT NOT NULL, asset TEXT NOT NULL, note TEXT NOT NULL,"
    " input_sha256 BLOB NOT NULL, output_sha256 BLOB NOT NULL,"
    " output_path TEXT NOT NULL, output_size INTEGER NOT NULL,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL,"
    " profile TEXT NOT NULL, strength REAL NOT NULL, cel_safe INTEGER NOT NULL,"
    " layer TEXT NOT NULL, tool_version TEXT NOT NULL,"
    " key_fingerprint TEXT NOT NULL, signer_pub BLOB NOT NULL,"
    " stamped_at TEXT NOT NULL, operator TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL, signature BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS issues_asset ON issues(asset, issue_id);"
    "CREATE INDEX IF NOT EXISTS issues_recipient ON issues(recipient);"
    "CREATE TABLE IF NOT EXISTS pending("
    " issue_id INTEGER PRIMARY KEY, output_path TEXT NOT NULL,"
    " temp_path TEXT NOT NULL, output_sha256 BLOB, created_at TEXT NOT NULL);"
    "INSERT INTO meta VALUES('schema_version','1');"
    "INSERT INTO meta VALUES('created_by','celmark 0.1.0');";

/* A schema 1 ledger of 3 rows, written as celmark 0.1 did: its schema, its
 * 22 columns, rows signed over the /1 canonical bytes. */
static void make_v1(const char *path, const cm_key *key)
{
    sqlite3 *db;
    char p[700];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, SCHEMA_V1, NULL, NULL, NULL), SQLITE_OK);
    uint8_t prev[32] = {0};
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    cm_key_fingerprint(key, fp);
    for (int64_t seq = 1; seq <= 3; seq++) {
        cm_ledger_row r;
        memset(&r, 0, sizeof(r));
        r.seq = seq;
        r.issue_id = (uint64_t)seq * 11;
        r.recipient = (char *)"old vendor";
        r.asset = (char *)"ep00";
        r.note = (char *)"";
        r.output_path = (char *)"/old.png";
        r.output_size = 10;
        r.width = 64;
        r.height = 64;
        r.profile = (char *)"default";
        r.strength = 1.0;
        r.layer = (char *)"luma";
        r.tool_version = (char *)"celmark 0.1.0";
        r.key_fingerprint = fp;
        cm_key_public(key, r.signer_pub);
        r.stamped_at = (char *)"2024-05-06T07:08:09Z";
        r.operator_name = (char *)"old";
        memcpy(r.prev_hash, prev, 32);
        assert_int_equal(cm__ledger_sign(&r, key), 0);
        assert_int_equal(cm__ledger_row_hash(&r, prev), 0);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO issues(" ROW_COLS_V1 ") "
                                                "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                                                "?,?)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        int i = 1;
        sqlite3_bind_int64(st, i++, r.seq);
        sqlite3_bind_int64(st, i++, (sqlite3_int64)r.issue_id);
        sqlite3_bind_text(st, i++, r.recipient, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.asset, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.note, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, r.input_sha256, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, r.output_sha256, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.output_path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, i++, r.output_size);
        sqlite3_bind_int(st, i++, r.width);
        sqlite3_bind_int(st, i++, r.height);
        sqlite3_bind_text(st, i++, r.profile, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, i++, r.strength);
        sqlite3_bind_int(st, i++, r.cel_safe);
        sqlite3_bind_text(st, i++, r.layer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.tool_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.key_fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, r.signer_pub, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.stamped_at, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, r.operator_name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, r.prev_hash, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, i++, r.signature, 64, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static int schema_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = atoi((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int count_rows(void *user, const cm_ledger_row *row)
{
    (void)row;
    ++*(int *)user;
    return 0;
}

static void test_schema_v1(void **state)
{
    (void)state;
    char path[600];
    cm_key *studio = fixed_key(1);
    tmp_path(path, sizeof(path), "v1.db");
    make_v1(path, studio);

    /* read-only: read as it is, left at schema 1 */
    cm_ledger *ro = NULL, *lg = NULL;
    assert_int_equal(cm_ledger_open(NULL, path, CM_LEDGER_READONLY, &ro), 0);
    cm_ledger_report rep;
    assert_int_equal(cm_ledger_check(NULL, ro, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 3);
    int n = 0;
    assert_int_equal(cm_ledger_list(NULL, ro, NULL, NULL, count_rows, &n), 0);
    assert_int_equal(n, 3);
    cm_ledger_row row;
    assert_int_equal(cm_ledger_get(NULL, ro, 22, &row), 1);
    assert_int_equal(row.seq, 2);
    assert_int_equal(row.chain_len, 0);
    assert_int_equal(cm_ledger_row_signature_ok(&row), 1);
    cm_ledger_row_clear(&row);
    cm_ledger_delegation *dl = NULL;
    size_t nd = 7;
    assert_int_equal(cm_ledger_delegations(NULL, ro, &dl, &nd), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(schema_version(path), 1);

    /* read-write: upgraded in place, the old rows verify unchanged */
    assert_int_equal(cm_ledger_open(NULL, path, 0, &lg), 0);
    assert_int_equal(schema_version(path), 2);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 3);
    cm_key *va = delegate(studio, "vendor-a");
    assert_int_equal(cm_ledger_add_delegation(NULL, lg, studio, va), 0);
    append(lg, 44, va);
    assert_int_equal(cm_ledger_check(NULL, lg, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 5);
    assert_int_equal(rep.delegated, 1);
    cm_ledger_close(&lg);

    /* the read-only handle opened before the upgrade sees the new rows */
    assert_int_equal(cm_ledger_check(NULL, ro, studio, &rep), 0);
    assert_true(rep.ok);
    assert_int_equal(rep.rows, 5);
    assert_int_equal(rep.delegations, 1);
    assert_int_equal(cm_ledger_get(NULL, ro, 44, &row), 1);
    assert_int_equal(row.chain_len, 1);
    assert_int_equal(cm_ledger_row_signature_ok(&row), 1);
    cm_ledger_row_clear(&row);
    cm_ledger_close(&ro);

    /* opening again changes nothing; a newer schema is refused */
    assert_int_equal(cm_ledger_open(NULL, path, CM_LEDGER_CREATE, &lg), 0);
    cm_ledger_close(&lg);
    assert_int_equal(schema_version(path), 2);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='3' WHERE key='schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), 0);
    assert_int_equal(cm_ledger_open(ctx, path, 0, &lg), CM_E_LEDGER);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "newer"));
    cm_ctx_free(&ctx);
    cm_key_free(&va);
    cm_key_free(&studio);
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[600];
    cm_ledger *lg = NULL;
    cm_ctx *ctx = NULL;
    assert_int_equal(cm_ctx_new(&ctx), 0);
    tmp_path(path, sizeof(path), "missing.db");
    unlink(path);
    assert_int_equal(cm_ledger_open(ctx, path, 0, &lg), CM_E_LEDGER);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "missing.db"));
    assert_int_not_equal(access(path, F_OK), 0);
    tmp_path(path, sizeof(path), "garbage.db");
    FILE *f = fopen(path, "wb");
    fputs("this is not a database at all, not even close.............................", f);
    fclose(f);
    assert_int_equal(cm_ledger_open(ctx, path, CM_LEDGER_CREATE, &lg), CM_E_LEDGER);
    assert_non_null(strstr(cm_ctx_last_error(ctx), "garbage.db"));
    assert_null(lg);
    cm_ctx_free(&ctx);
}

int main(void)
{
    const char *d = getenv("CELMARK_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/ledger.%d", d ? d : "/tmp", (int)getpid());
    mkdir(dir, 0700);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tamper_edit),
        cmocka_unit_test(test_tamper_edit_id),
        cmocka_unit_test(test_tamper_delete),
        cmocka_unit_test(test_tamper_insert),
        cmocka_unit_test(test_tamper_reorder),
        cmocka_unit_test(test_tamper_append_unsigned),
        cmocka_unit_test(test_canonical_stable),
        cmocka_unit_test(test_canonical_v2_stable),
        cmocka_unit_test(test_id_never_reused),
        cmocka_unit_test(test_fingerprint_mismatch),
        cmocka_unit_test(test_recover_after_crash),
        cmocka_unit_test(test_delegation),
        cmocka_unit_test(test_tamper_delegation),
        cmocka_unit_test(test_vendor_ledger),
        cmocka_unit_test(test_forged_certificate),
        cmocka_unit_test(test_schema_v1),
        cmocka_unit_test(test_bad_files),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (r == 0 && system(cmd) != 0)
        r = 1;
    return r;
}
