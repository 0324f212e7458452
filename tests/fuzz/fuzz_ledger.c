/*
 * Fuzz target: reading and checking a ledger (ledger/ledger.c, chain.c).
 *
 * An input starting with SQLite's header ("SQLite format 3\0") is written
 * to a scratch file and opened READ-ONLY (a read-write open reconciles:
 * it would delete the files a hostile ledger's pending entries name), then
 * checked (cm_ledger_check: rows, hash chain, signatures), listed, and
 * searched (candidates, signer, get). Any other input is split into the
 * fields of one row (length-prefixed, as the canonical encoding) and its
 * canonical bytes, hash and signature are computed and checked.
 */
#include "ledger/ledger_internal.h"
#include "watermark/key_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cm_key *key;
static char dbpath[512];

static void setup(void)
{
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    /* the key the committed seed ledgers were signed with (fuzz-seeds.sh) */
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(i * 7 + 1);
        seed[i] = (uint8_t)(i * 13 + 5);
    }
    if (cm__key_from_bytes(&key, secret, seed))
        abort();
    const char *tmp = getenv("TMPDIR");
    snprintf(dbpath, sizeof(dbpath), "%s/celmark-fuzz-ledger-%ld.db", tmp ? tmp : "/tmp",
             (long)getpid());
}

static int count_row(void *user, const cm_ledger_row *row)
{
    (void)row;
    ++*(int *)user;
    return 0;
}

static void fuzz_db(const uint8_t *data, size_t size)
{
    FILE *fp = fopen(dbpath, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
        abort();
    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        abort();
    cm_ledger *lg = NULL;
    if (cm_ledger_open(ctx, dbpath, CM_LEDGER_READONLY, &lg) == CM_OK) {
        cm_ledger_report rep;
        (void)cm_ledger_check(ctx, lg, key, &rep);
        int n = 0;
        (void)cm_ledger_list(ctx, lg, NULL, NULL, count_row, &n);
        (void)cm_ledger_list(ctx, lg, "Vendor A", "ep01", count_row, &n);
        uint64_t *ids = NULL;
        size_t nids = 0;
        if (cm_ledger_candidates(ctx, lg, NULL, &ids, &nids) == CM_OK && nids) {
            cm_ledger_row row;
            if (cm_ledger_get(ctx, lg, ids[0], &row) == 1)
                cm_ledger_row_clear(&row);
        }
        free(ids);
        char signer[CM_KEY_FINGERPRINT_CHARS + 1];
        (void)cm_ledger_signer(ctx, lg, signer);
        cm_ledger_close(&lg);
    } else if (lg) {
        abort();
    }
    cm_ctx_free(&ctx);
    char side[600];
    unlink(dbpath);
    snprintf(side, sizeof(side), "%s-wal", dbpath);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", dbpath);
    unlink(side);
}

/* Next length-prefixed field of the input (1-byte length), or "" at the end. */
static size_t take(const uint8_t **p, size_t *left, char *out, size_t cap)
{
    size_t n = 0;
    if (*left) {
        n = **p;
        (*p)++;
        (*left)--;
        if (n > *left)
            n = *left;
        if (n >= cap)
            n = cap - 1;
        memcpy(out, *p, n);
        *p += n;
        *left -= n;
    }
    out[n] = '\0';
    return n;
}

static void fuzz_row(const uint8_t *data, size_t size)
{
    char s[10][256], bin[5][256];
    const uint8_t *p = data;
    size_t left = size;
    cm_ledger_row r;
    memset(&r, 0, sizeof(r));
    for (int i = 0; i < 10; i++)
        take(&p, &left, s[i], sizeof(s[i]));
    for (int i = 0; i < 5; i++)
        take(&p, &left, bin[i], sizeof(bin[i]));
    r.recipient = s[0];
    r.asset = s[1];
    r.note = s[2];
    r.output_path = s[3];
    r.profile = s[4];
    r.layer = s[5];
    r.tool_version = s[6];
    r.key_fingerprint = s[7];
    r.stamped_at = s[8];
    r.operator_name = s[9];
    memcpy(r.input_sha256, bin[0], 32);
    memcpy(r.output_sha256, bin[1], 32);
    memcpy(r.signer_pub, bin[2], 32);
    memcpy(r.prev_hash, bin[3], 32);
    memcpy(r.signature, bin[4], 64);
    uint64_t nums[4] = {0};
    memcpy(nums, p, left < sizeof(nums) ? left : sizeof(nums));
    r.seq = (int64_t)nums[0];
    r.issue_id = nums[1];
    r.output_size = (int64_t)nums[2];
    memcpy(&r.strength, &nums[3], sizeof(r.strength));
    r.width = (int)(nums[2] >> 7);
    r.height = (int)(nums[1] >> 5);
    uint8_t *canon = NULL;
    size_t len = 0;
    if (cm__ledger_canonical(&r, &canon, &len) != CM_OK)
        abort();
    free(canon);
    uint8_t h[CM_LEDGER_HASH_BYTES];
    if (cm__ledger_row_hash(&r, h) != CM_OK)
        abort();
    /* a random signature must not verify; our own must */
    if (cm_ledger_row_signature_ok(&r) < 0)
        abort();
    if (cm_key_public(key, r.signer_pub) || cm__ledger_sign(&r, key) ||
        cm_ledger_row_signature_ok(&r) != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char magic[16] = "SQLite format 3";
    if (!key)
        setup();
    if (size >= 16 && !memcmp(data, magic, 16))
        fuzz_db(data, size);
    else
        fuzz_row(data, size);
    return 0;
}
