/* Ledger: hash chain and signatures, tampering by direct SQL, canonical
 * encoding, id reuse, signer mismatch, reserve/commit/abort and recovery. */
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
        cmocka_unit_test(test_id_never_reused),
        cmocka_unit_test(test_fingerprint_mismatch),
        cmocka_unit_test(test_recover_after_crash),
        cmocka_unit_test(test_bad_files),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (r == 0 && system(cmd) != 0)
        r = 1;
    return r;
}
