/*
 * bench/ledger: the ledger at scale.
 *
 *   ledger [--rows N] [--per-asset M] [--dir DIR]
 *
 * Fills a new ledger with N signed, chained rows (default 1,000,000; M rows
 * per asset, default 1,000) in one transaction through the library API, then
 * times what `stamp -l` and `verify -l --asset` do on top of it:
 *   record  reserve a fresh id + commit the row and move the file into place
 *           (the ledger's share of one stamp; the stamping itself is not timed)
 *   lookup  load the candidate ids of one asset
 *   score   a verifier with those candidates detecting one stamped 1080p frame
 * Targets (issue): record < 50 ms, lookup + score < 100 ms.
 */
#include "benchutil.h"
#include "cel.h"
#include "celmark/celmark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(cm_ctx *ctx, const char *what, int ret)
{
    fprintf(stderr, "ledger: %s: %s (%s)\n", what, cm_strerror(ret), cm_ctx_last_error(ctx));
    exit(1);
}

int main(int argc, char **argv)
{
    long rows = 1000000, per_asset = 1000;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            rows = atol(argv[++i]);
        } else if (strcmp(argv[i], "--per-asset") == 0 && i + 1 < argc) {
            per_asset = atol(argv[++i]);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            printf("usage: ledger [--rows N] [--per-asset M] [--dir DIR]\n");
            return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
        }
    }
    if (rows < 1 || per_asset < 1)
        return 2;
    char db[600], wal[620], shm[620], lock[620], out[600];
    snprintf(db, sizeof(db), "%s/celmark-bench-ledger.%d.db", dir, (int)getpid());
    snprintf(wal, sizeof(wal), "%s-wal", db);
    snprintf(shm, sizeof(shm), "%s-shm", db);
    snprintf(lock, sizeof(lock), "%s.lock", db);
    snprintf(out, sizeof(out), "%s/celmark-bench-ledger.%d.png", dir, (int)getpid());

    cm_ctx *ctx = NULL;
    cm_key *key = NULL;
    cm_ledger *lg = NULL;
    int ret;
    if (cm_ctx_new(&ctx) || bench_key(&key, 0))
        return 1;
    if ((ret = cm_ledger_open(ctx, db, CM_LEDGER_CREATE, &lg)))
        die(ctx, "open", ret);

    /* fill */
    cm_ledger_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.note = "";
    rec.width = 1920;
    rec.height = 1080;
    rec.profile = "default";
    rec.strength = 1.0;
    rec.layer = "luma";
    rec.operator_name = "bench";
    rec.stamped_at = "2024-01-01T00:00:00Z";
    uint8_t sha[32] = {0};
    uint64_t s = 12345;
    char recipient[32], asset[32];
    double t0 = bench_now_ms();
    if ((ret = cm_ledger_begin(ctx, lg)))
        die(ctx, "begin", ret);
    for (long i = 0; i < rows; i++) {
        snprintf(recipient, sizeof(recipient), "vendor%04ld", i % per_asset);
        snprintf(asset, sizeof(asset), "asset%06ld", i / per_asset);
        rec.recipient = recipient;
        rec.asset = asset;
        memcpy(sha, &i, sizeof(i));
        if ((ret = cm_ledger_append(ctx, lg, bench_splitmix64(&s), &rec, sha, 1000000, "", key)))
            die(ctx, "append", ret);
    }
    if ((ret = cm_ledger_commit(ctx, lg)))
        die(ctx, "commit", ret);
    double t_fill = bench_now_ms() - t0;
    cm_ledger_close(&lg);

    /* one stamped 1080p frame, written once (bytes reused for the record) */
    cel_params cp;
    cel_params_default(&cp);
    cm_image *img = NULL;
    cm_stamper *st = NULL;
    if ((ret = cel_generate(&img, &cp)))
        die(ctx, "generate", ret);
    char the_asset[32];
    snprintf(the_asset, sizeof(the_asset), "asset%06ld", (rows - 1) / per_asset / 2);

    /* record: what stamp -l adds to stamping, with a fresh open like the CLI */
    double t1 = bench_now_ms();
    if ((ret = cm_ledger_open(ctx, db, 0, &lg)))
        die(ctx, "reopen", ret);
    double t_open = bench_now_ms() - t1;
    cm_ledger_issue *iss = NULL;
    double t2 = bench_now_ms();
    if ((ret = cm_ledger_reserve(ctx, lg, out, &iss)))
        die(ctx, "reserve", ret);
    double t_reserve = bench_now_ms() - t2;
    uint64_t id = cm_ledger_issue_id(iss);
    if ((ret = cm_stamper_new(ctx, key, id, NULL, &st)) || (ret = cm_stamper_image(st, img)))
        die(ctx, "stamp", ret);
    double t3 = bench_now_ms();
    if ((ret = cm_image_write(ctx, img, cm_ledger_issue_temp_path(iss), CM_WRITE_FORCE)))
        die(ctx, "write", ret);
    double t_write = bench_now_ms() - t3;
    rec.recipient = "bench-recipient";
    rec.asset = the_asset;
    rec.stamped_at = NULL;
    double t4 = bench_now_ms();
    if ((ret = cm_ledger_issue_commit(ctx, lg, &iss, &rec, key, 1, NULL)))
        die(ctx, "commit issue", ret);
    double t_commit = bench_now_ms() - t4;

    /* verify -l --asset: lookup + scoring */
    double t5 = bench_now_ms();
    uint64_t *ids = NULL;
    size_t n = 0;
    if ((ret = cm_ledger_candidates(ctx, lg, the_asset, &ids, &n)))
        die(ctx, "candidates", ret);
    double t_lookup = bench_now_ms() - t5;
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    vp.candidates = ids;
    vp.ncandidates = n;
    cm_verifier *ver = NULL;
    cm_verify_result res;
    double t6 = bench_now_ms();
    if ((ret = cm_verifier_new(ctx, key, &vp, &ver)))
        die(ctx, "verifier", ret);
    double t_prep = bench_now_ms() - t6;
    double t7 = bench_now_ms();
    if ((ret = cm_verifier_image(ver, img, &res)))
        die(ctx, "verify", ret);
    double t_detect = bench_now_ms() - t7;
    cm_ledger_row row;
    double t8 = bench_now_ms();
    int found = res.marked ? cm_ledger_get(ctx, lg, res.issue_id, &row) : 0;
    int sig = found == 1 ? cm_ledger_row_signature_ok(&row) : -1;
    double t_row = bench_now_ms() - t8;
    if (found == 1)
        cm_ledger_row_clear(&row);

    printf("ledger: %ld rows (%ld per asset), filled in %.1f s (%.1f us/row, signed + chained)\n",
           rows, per_asset, t_fill / 1000, 1000 * t_fill / (double)rows);
    printf("stamp record: %.2f ms  (open+reconcile %.2f, reserve %.2f, commit %.2f; "
           "excludes stamping and the %.1f ms PNG write)\n",
           t_open + t_reserve + t_commit, t_open, t_reserve, t_commit, t_write);
    printf("verify candidates of one asset: %zu ids, lookup %.2f ms, prepare %.2f ms, "
           "detect+score %.2f ms, row+signature %.2f ms; total %.2f ms\n",
           n, t_lookup, t_prep, t_detect, t_row, t_lookup + t_prep + t_detect + t_row);
    printf("  scoring the candidates (lookup + prepare): %.2f ms\n", t_lookup + t_prep);
    printf("  claim: marked=%d id=%s source=%s fpr=%.3g, row %s, signature %s\n", res.marked,
           res.marked && res.issue_id == id ? "right" : "WRONG",
           res.source == CM_ID_CANDIDATE ? "candidate" : (res.source == CM_ID_BLIND ? "blind" : "none"),
           res.fpr, found == 1 ? "found" : "MISSING", sig == 1 ? "ok" : "BAD");

    free(ids);
    cm_verifier_free(&ver);
    cm_stamper_free(&st);
    cm_image_free(&img);
    cm_ledger_close(&lg);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    unlink(out);
    unlink(db);
    unlink(wal);
    unlink(shm);
    unlink(lock);
    return 0;
}
