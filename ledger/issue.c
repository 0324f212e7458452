/*
 * Issuing a copy in the ledger: reserve an id, write, commit the signed row
 * and move the output into place, or abort; and recovery from stamps that
 * died on the way.
 *
 * Crash safety of `stamp -l`. The promise: whenever a stamp process dies
 * (kill -9, power cut after the last fsync), the ledger afterwards holds a
 * row exactly for those outputs that exist, with their recorded SHA-256,
 * and no half-written or temporary files remain once the ledger has been
 * opened again. The steps:
 *
 *   1. reserve   lock byte (id >> 1) of LEDGER.lock (an OFD/fcntl lock:
 *                released by the kernel when the process dies), then
 *                BEGIN IMMEDIATE; check id unused in issues and pending;
 *                INSERT pending(id, output, temp); COMMIT.
 *   2. write     the stamped copy goes to the temp path
 *                (DIR/.celmark-<id>.<name>, itself written atomically and
 *                fsync'ed by cm_image_write through DIR/..celmark-<id>.<name>.tmp-XXXXXX).
 *   3. hash      SHA-256 of the complete temp file; UPDATE pending SET
 *                output_sha256 (committed: from now on the reconciler can
 *                tell our output from a file that was there before).
 *   4. commit    BEGIN IMMEDIATE; INSERT the chained, signed row;
 *                DELETE the pending entry; move temp -> output (link+unlink,
 *                or rename with force); fsync the folder; COMMIT.
 *                If COMMIT fails the output is unlinked again.
 *   5. unlock    the byte lock is released.
 *
 *   crash during   leaves                         reconcile does
 *   1              nothing, or a pending entry    delete the entry
 *   2, 3           temp / inner temp + entry      unlink them, delete entry
 *   4 before COMMIT  output (== output_sha256)    unlink output, delete entry
 *   after COMMIT   row + output                   nothing (done)
 *
 * Reconciliation runs on every read-write open (stamp, verify, ledger ...):
 * for each pending entry it tries to take the entry's byte lock. A live stamp
 * holds it (so its entry is left alone); a dead one does not, and its files
 * and entry are removed under the lock. Only committed, confirmed rows ever
 * enter the hash chain, so the chain is never touched by recovery.
 * Durability: synchronous=FULL, so a committed row survives power loss too.
 */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Attempts to draw an unused id: a collision is ~n/2^64, so 16 tries failing
 * means the random generator is broken, not bad luck. */
#define RESERVE_TRIES 16

/* Tests replace the random generator to force collisions. */
CM__HIDDEN int (*cm__ledger_rand_hook)(uint64_t *id) = NULL;

/* ---- helpers ---------------------------------------------------------- */

static void utc_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Lock (F_WRLCK) or unlock (F_UNLCK) the byte of one issue id in LEDGER.lock.
 * OFD locks (Linux) belong to the open file description, so two handles in
 * one process exclude each other too; elsewhere classic process locks.
 * Returns 0, or -1 when another holder has it (or on error). */
static int id_lock(int fd, uint64_t id, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)(id >> 1);
    fl.l_len = 1;
#ifdef F_OFD_SETLK
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
#endif
    return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : -1;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Remove DIR/.<base>.tmp-* (the inner temp files of cm_image_write for the
 * temp file DIR/base). */
static void remove_inner_temps(const char *temp_path)
{
    const char *slash = strrchr(temp_path, '/');
    if (!slash)
        return;
    size_t dirlen = (size_t)(slash - temp_path);
    char dir[PATH_MAX], prefix[NAME_MAX + 8];
    if (dirlen == 0 || dirlen >= sizeof(dir))
        return;
    memcpy(dir, temp_path, dirlen);
    dir[dirlen] = '\0';
    int n = snprintf(prefix, sizeof(prefix), ".%s.tmp-", slash + 1);
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)n) == 0) {
            char p[PATH_MAX];
            if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) < sizeof(p))
                unlink(p);
        }
    }
    closedir(d);
}

/* ---- reconciliation --------------------------------------------------- */

typedef struct pend {
    uint64_t id;
    char *out, *temp;
    uint8_t sha[CM_LEDGER_HASH_BYTES];
    int has_sha;
} pend;

/* Is e->temp "<dir of out>/.celmark-<id>.<base of out>", as reserved? */
static int ours(const pend *e)
{
    const char *slash = strrchr(e->out, '/');
    if (!slash || e->out[0] != '/')
        return 0; /* reserve records absolute paths */
    size_t dirlen = (size_t)(slash - e->out);
    char want[PATH_MAX + 64];
    int n = snprintf(want, sizeof(want), "%.*s/.celmark-%016llx.%s", (int)dirlen, e->out,
                     (unsigned long long)e->id, slash + 1);
    return n > 0 && (size_t)n < sizeof(want) && !strcmp(want, e->temp) &&
           !strstr(e->out, "/../") && !strstr(e->out, "/./");
}

int cm_ledger_reconcile(cm_ctx *ctx, cm_ledger *lg, int *cleaned)
{
    if (!lg || lg->lockfd < 0)
        return CM_E_INVAL;
    if (cleaned)
        *cleaned = 0;
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare(
        ctx, lg, "SELECT issue_id, output_path, temp_path, output_sha256 FROM pending", &st);
    if (ret)
        return ret;
    pend *p = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            pend *q = realloc(p, cap * sizeof(*p));
            if (!q) {
                ret = CM_E_NOMEM;
                break;
            }
            p = q;
        }
        pend *e = &p[n];
        memset(e, 0, sizeof(*e));
        e->id = (uint64_t)sqlite3_column_int64(st, 0);
        e->out = cm__ledger_strdup((const char *)sqlite3_column_text(st, 1));
        e->temp = cm__ledger_strdup((const char *)sqlite3_column_text(st, 2));
        n++;
        if (sqlite3_column_bytes(st, 3) == CM_LEDGER_HASH_BYTES) {
            memcpy(e->sha, sqlite3_column_blob(st, 3), CM_LEDGER_HASH_BYTES);
            e->has_sha = 1;
        }
        if (!e->out || !e->temp) {
            ret = CM_E_NOMEM;
            break;
        }
    }
    if (!ret && rc != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot read pending stamps");
    sqlite3_finalize(st);
    for (size_t i = 0; i < n && !ret; i++) {
        pend *e = &p[i];
        if (id_lock(lg->lockfd, e->id, F_WRLCK) != 0)
            continue; /* a live stamp holds it */
        /* The ledger file names the files to delete: touch them only when
         * the temp path is the one cm_ledger_reserve() makes for that
         * output, so an edited or foreign ledger cannot make us unlink
         * arbitrary files. */
        if (ours(e)) {
            uint8_t cur[CM_LEDGER_HASH_BYTES];
            if (cm_sha256_file(NULL, e->out, cur, NULL) == CM_OK &&
                memcmp(cur, e->sha, sizeof(cur)) == 0)
                unlink(e->out); /* moved into place but never committed */
            unlink(e->temp);
            remove_inner_temps(e->temp);
        }
        if (sqlite3_prepare_v2(lg->db, "DELETE FROM pending WHERE issue_id=?", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)e->id);
            if (sqlite3_step(st) != SQLITE_DONE)
                ret = cm__ledger_db_error(ctx, lg, "cannot clean a pending stamp");
            sqlite3_finalize(st);
        } else {
            ret = cm__ledger_db_error(ctx, lg, "cannot clean a pending stamp");
        }
        id_lock(lg->lockfd, e->id, F_UNLCK);
        if (!ret && cleaned)
            (*cleaned)++;
    }
    for (size_t i = 0; i < n; i++) {
        free(p[i].out);
        free(p[i].temp);
    }
    free(p);
    return ret;
}

/* ---- reserve / commit ------------------------------------------------- */

static int draw_id(uint64_t *id)
{
    if (cm__ledger_rand_hook)
        return cm__ledger_rand_hook(id);
    return RAND_bytes((unsigned char *)id, sizeof(*id)) == 1 ? 0 : -1;
}

/* 1 when id is in issues or pending, 0 when free, < 0 error. */
static int id_used(cm_ctx *ctx, cm_ledger *lg, uint64_t id)
{
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare(ctx, lg,
                                 "SELECT 1 FROM issues WHERE issue_id=?1 UNION ALL "
                                 "SELECT 1 FROM pending WHERE issue_id=?1",
                                 &st);
    if (ret)
        return ret;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(st);
    ret = rc == SQLITE_ROW
              ? 1
              : (rc == SQLITE_DONE ? 0 : cm__ledger_db_error(ctx, lg, "cannot look up id"));
    sqlite3_finalize(st);
    return ret;
}

static void issue_free(cm_ledger_issue **piss)
{
    if (!piss || !*piss)
        return;
    free((*piss)->out_path);
    free((*piss)->temp_path);
    free((*piss)->dir);
    free(*piss);
    *piss = NULL;
}

/* Absolute folder and base name of path; the folder must exist. */
static int split_abs(cm_ctx *ctx, const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    if (!*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
        return cm__error(ctx, CM_E_INVAL, "%s: not a file name", path);
    char d[PATH_MAX];
    if (!slash) {
        strcpy(d, ".");
    } else if (slash == path) {
        strcpy(d, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(d))
            return cm__error(ctx, CM_E_IO, "%s: path too long", path);
        memcpy(d, path, n);
        d[n] = '\0';
    }
    char *real = realpath(d, NULL);
    if (!real)
        return cm__error(ctx, CM_E_IO, "%s: cannot write: %s", path, strerror(errno));
    *dir = real;
    *base = cm__ledger_strdup(b);
    if (!*base) {
        free(real);
        return CM_E_NOMEM;
    }
    return CM_OK;
}

int cm_ledger_reserve(cm_ctx *ctx, cm_ledger *lg, const char *out_path, cm_ledger_issue **out)
{
    if (!lg || !out_path || !out || lg->lockfd < 0 || lg->in_tx)
        return CM_E_INVAL;
    *out = NULL;
    cm_ledger_issue *iss = calloc(1, sizeof(*iss));
    char *base = NULL;
    if (!iss)
        return CM_E_NOMEM;
    int ret = split_abs(ctx, out_path, &iss->dir, &base);
    if (ret) {
        issue_free(&iss);
        return ret;
    }
    size_t dl = strlen(iss->dir), bl = strlen(base);
    iss->out_path = malloc(dl + bl + 2);
    iss->temp_path = malloc(dl + bl + 40);
    if (!iss->out_path || !iss->temp_path) {
        ret = CM_E_NOMEM;
        goto fail;
    }
    snprintf(iss->out_path, dl + bl + 2, "%s/%s", strcmp(iss->dir, "/") ? iss->dir : "", base);
    ret = cm__error(ctx, CM_E_CRYPTO, "%s: cannot draw an unused issue id", lg->path);
    for (int t = 0; t < RESERVE_TRIES; t++) {
        uint64_t id;
        if (draw_id(&id) != 0) {
            ret = cm__crypto_error(ctx, CM_E_CRYPTO, "RAND_bytes");
            break;
        }
        if (id_lock(lg->lockfd, id, F_WRLCK) != 0)
            continue; /* being reserved right now by someone else */
        int r = cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE");
        if (!r)
            r = id_used(ctx, lg, id);
        if (r == 0) {
            char now[32];
            sqlite3_stmt *st;
            utc_now(now);
            snprintf(iss->temp_path, dl + bl + 40, "%s/.celmark-%016llx.%s",
                     strcmp(iss->dir, "/") ? iss->dir : "", (unsigned long long)id, base);
            r = cm__ledger_prepare(
                ctx, lg,
                "INSERT INTO pending(issue_id, output_path, temp_path, created_at) "
                "VALUES(?,?,?,?)",
                &st);
            if (!r) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
                sqlite3_bind_text(st, 2, iss->out_path, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, iss->temp_path, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, now, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(st) != SQLITE_DONE)
                    r = cm__ledger_db_error(ctx, lg, "cannot record a pending stamp");
                sqlite3_finalize(st);
            }
            if (!r)
                r = cm__ledger_exec(ctx, lg, "COMMIT");
            if (!r) {
                iss->id = id;
                iss->locked = 1;
                cm_ctx_clear(ctx);
                free(base);
                *out = iss;
                return CM_OK;
            }
        }
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
        id_lock(lg->lockfd, id, F_UNLCK);
        if (r < 0) {
            ret = r;
            break;
        }
    }
fail:
    free(base);
    issue_free(&iss);
    return ret;
}

uint64_t cm_ledger_issue_id(const cm_ledger_issue *iss)
{
    return iss ? iss->id : 0;
}

const char *cm_ledger_issue_temp_path(const cm_ledger_issue *iss)
{
    return iss ? iss->temp_path : NULL;
}

static void delete_pending(cm_ledger *lg, uint64_t id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(lg->db, "DELETE FROM pending WHERE issue_id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

void cm_ledger_issue_abort(cm_ledger *lg, cm_ledger_issue **piss)
{
    if (!piss || !*piss)
        return;
    cm_ledger_issue *iss = *piss;
    unlink(iss->temp_path);
    remove_inner_temps(iss->temp_path);
    if (lg) {
        if (!lg->in_tx)
            sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL); /* no-op when none */
        delete_pending(lg, iss->id); /* before unlocking: see reconcile */
        if (iss->locked)
            id_lock(lg->lockfd, iss->id, F_UNLCK);
    }
    issue_free(piss);
}

/* Fill the stored fields of a new row from rec. Strings point into rec. A
 * delegated key's row carries its certificate chain. */
static int make_row(cm_ctx *ctx, cm_ledger *lg, cm_ledger_row *r, uint64_t id,
                    const cm_ledger_record *rec, const uint8_t out_sha[32], int64_t out_size,
                    const char *out_path, const cm_key *key, char fp[CM_KEY_FINGERPRINT_CHARS + 1],
                    char now[32])
{
    memset(r, 0, sizeof(*r));
    int ret = cm__ledger_load_tail(ctx, lg, &r->seq, r->prev_hash);
    if (ret)
        return ret;
    r->seq++;
    r->issue_id = id;
    r->recipient = (char *)rec->recipient;
    r->asset = (char *)rec->asset;
    r->note = (char *)(rec->note ? rec->note : "");
    memcpy(r->input_sha256, rec->input_sha256, 32);
    memcpy(r->output_sha256, out_sha, 32);
    r->output_path = (char *)(out_path ? out_path : "");
    r->output_size = out_size;
    r->width = rec->width;
    r->height = rec->height;
    r->profile = (char *)(rec->profile ? rec->profile : "");
    r->strength = rec->strength;
    r->cel_safe = rec->cel_safe ? 1 : 0;
    r->layer = (char *)(rec->layer ? rec->layer : "");
    r->tool_version = (char *)"celmark " CM_VERSION_STRING;
    if (cm_key_fingerprint(key, fp) || cm_key_public(key, r->signer_pub))
        return cm__error(ctx, CM_E_CRYPTO, "cannot compute the key fingerprint");
    r->key_fingerprint = fp;
    if (rec->stamped_at) {
        snprintf(now, 32, "%s", rec->stamped_at);
    } else {
        utc_now(now);
    }
    r->stamped_at = now;
    r->operator_name = (char *)(rec->operator_name ? rec->operator_name : "");
    const cm_key_cert *chain = cm_key_chain(key, &r->chain_len);
    memcpy(r->chain, chain, sizeof(cm_key_cert) * (size_t)r->chain_len);
    ret = cm__ledger_sign(r, key);
    if (ret)
        return cm__crypto_error(ctx, ret, "signing the ledger row");
    return CM_OK;
}

static int insert_row(cm_ctx *ctx, cm_ledger *lg, const cm_ledger_row *r)
{
    sqlite3_stmt *st;
    uint8_t chain[CM__LEDGER_CHAIN_MAX];
    size_t chain_len = 0;
    int ret = cm__ledger_chain_pack(r->chain, r->chain_len, chain, sizeof(chain), &chain_len);
    if (ret)
        return cm__error(ctx, ret, "%s: the signing key's certificate chain cannot be stored",
                         lg->path);
    ret = cm__ledger_prepare(ctx, lg,
                             "INSERT INTO issues(" ROW_COLS
                             ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                             "?,?,?,?,?,?)",
                             &st);
    if (ret)
        return ret;
    int i = 1;
    sqlite3_bind_int64(st, i++, r->seq);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)r->issue_id);
    sqlite3_bind_text(st, i++, r->recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->asset, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->note, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, r->input_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, r->output_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->output_path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, r->output_size);
    sqlite3_bind_int(st, i++, r->width);
    sqlite3_bind_int(st, i++, r->height);
    sqlite3_bind_text(st, i++, r->profile, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, i++, r->strength);
    sqlite3_bind_int(st, i++, r->cel_safe);
    sqlite3_bind_text(st, i++, r->layer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->tool_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->key_fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, r->signer_pub, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->stamped_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, r->operator_name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, r->prev_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, r->signature, 64, SQLITE_STATIC);
    sqlite3_bind_blob(st, i++, chain, (int)chain_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        char id[17];
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)r->issue_id);
        ret = cm__error(ctx, CM_E_EXISTS, "%s: issue id %s is already recorded", lg->path, id);
    } else if (rc != SQLITE_DONE) {
        ret = cm__ledger_db_error(ctx, lg, "cannot record the issue");
    }
    sqlite3_finalize(st);
    if (!ret && lg->in_tx) {
        uint8_t hash[CM_LEDGER_HASH_BYTES];
        lg->tail_valid = 0;
        ret = cm__ledger_row_hash(r, hash);
        if (!ret)
            cm__ledger_set_tail(lg, r->seq, hash);
    }
    return ret;
}

static int valid_record(const cm_ledger_record *rec)
{
    return rec && rec->recipient && *rec->recipient && rec->asset && *rec->asset;
}

static void copy_row_out(const cm_ledger_row *r, cm_ledger_row *out)
{
    *out = *r;
    out->recipient = cm__ledger_strdup(r->recipient);
    out->asset = cm__ledger_strdup(r->asset);
    out->note = cm__ledger_strdup(r->note);
    out->output_path = cm__ledger_strdup(r->output_path);
    out->profile = cm__ledger_strdup(r->profile);
    out->layer = cm__ledger_strdup(r->layer);
    out->tool_version = cm__ledger_strdup(r->tool_version);
    out->key_fingerprint = cm__ledger_strdup(r->key_fingerprint);
    out->stamped_at = cm__ledger_strdup(r->stamped_at);
    out->operator_name = cm__ledger_strdup(r->operator_name);
}

int cm_ledger_issue_commit(cm_ctx *ctx, cm_ledger *lg, cm_ledger_issue **piss,
                           const cm_ledger_record *rec, const cm_key *key, int force,
                           cm_ledger_row *row_out)
{
    if (!lg || !piss || !*piss || !key || !valid_record(rec) || lg->in_tx) {
        cm_ledger_issue_abort(lg, piss);
        return cm__error(ctx, CM_E_INVAL, "ledger: recipient and asset are required");
    }
    cm_ledger_issue *iss = *piss;
    uint8_t sha[32];
    int64_t size = 0;
    int moved = 0;
    sqlite3_stmt *st;
    int ret = cm_sha256_file(ctx, iss->temp_path, sha, &size);
    if (ret)
        goto fail;
    /* Step 3: from now on the reconciler knows which output is ours. */
    if ((ret = cm__ledger_prepare(ctx, lg, "UPDATE pending SET output_sha256=? WHERE issue_id=?",
                                  &st)))
        goto fail;
    sqlite3_bind_blob(st, 1, sha, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)iss->id);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(lg->db) != 1)
        ret = cm__ledger_db_error(ctx, lg, "pending stamp vanished");
    sqlite3_finalize(st);
    if (ret)
        goto fail;

    /* Step 4: one transaction for the row and the move. */
    if ((ret = cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE")))
        goto fail;
    cm_ledger_row r;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1], now[32];
    lg->tail_valid = 0;
    if ((ret = make_row(ctx, lg, &r, iss->id, rec, sha, size, iss->out_path, key, fp, now)))
        goto fail;
    if ((ret = insert_row(ctx, lg, &r)))
        goto fail;
    delete_pending(lg, iss->id);
    if (force) {
        if (rename(iss->temp_path, iss->out_path) != 0) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot move into place: %s", iss->out_path,
                            strerror(errno));
            goto fail;
        }
    } else if (link(iss->temp_path, iss->out_path) != 0) {
        if (errno == EEXIST) {
            ret = cm__error(ctx, CM_E_EXISTS, "%s: already exists", iss->out_path);
            goto fail;
        }
        /* No hard links on this file system: check, then rename. */
        if (access(iss->out_path, F_OK) == 0) {
            ret = cm__error(ctx, CM_E_EXISTS, "%s: already exists", iss->out_path);
            goto fail;
        }
        if (rename(iss->temp_path, iss->out_path) != 0) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot move into place: %s", iss->out_path,
                            strerror(errno));
            goto fail;
        }
    } else {
        unlink(iss->temp_path);
    }
    moved = 1;
    sync_dir(iss->dir);
    if (sqlite3_exec(lg->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        ret = cm__ledger_db_error(ctx, lg, "cannot commit the issue");
        goto fail;
    }
    if (row_out)
        copy_row_out(&r, row_out);
    id_lock(lg->lockfd, iss->id, F_UNLCK);
    issue_free(piss);
    return CM_OK;
fail:
    if (moved) {
        unlink(iss->out_path);
        sync_dir(iss->dir);
    }
    sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    cm_ledger_issue_abort(lg, piss);
    return ret;
}

int cm_ledger_begin(cm_ctx *ctx, cm_ledger *lg)
{
    if (!lg || lg->in_tx)
        return CM_E_INVAL;
    int ret = cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE");
    if (!ret) {
        lg->in_tx = 1;
        lg->tail_valid = 0;
    }
    return ret;
}

int cm_ledger_commit(cm_ctx *ctx, cm_ledger *lg)
{
    if (!lg || !lg->in_tx)
        return CM_E_INVAL;
    lg->in_tx = 0;
    lg->tail_valid = 0;
    int ret = cm__ledger_exec(ctx, lg, "COMMIT");
    if (ret)
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

int cm_ledger_append(cm_ctx *ctx, cm_ledger *lg, uint64_t issue_id, const cm_ledger_record *rec,
                     const uint8_t output_sha256[CM_LEDGER_HASH_BYTES], int64_t output_size,
                     const char *output_path, const cm_key *key)
{
    if (!lg || !key || !output_sha256 || !valid_record(rec))
        return CM_E_INVAL;
    int own = !lg->in_tx;
    int ret = own ? cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE") : CM_OK;
    if (ret)
        return ret;
    if (own)
        lg->tail_valid = 0;
    cm_ledger_row r;
    char fp[CM_KEY_FINGERPRINT_CHARS + 1], now[32];
    ret = id_used(ctx, lg, issue_id);
    if (ret == 1)
        ret = cm__error(ctx, CM_E_EXISTS, "%s: issue id %016llx is already recorded", lg->path,
                        (unsigned long long)issue_id);
    if (!ret)
        ret = make_row(ctx, lg, &r, issue_id, rec, output_sha256, output_size, output_path, key,
                       fp, now);
    if (!ret)
        ret = insert_row(ctx, lg, &r);
    if (own)
        ret = ret ? (sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL), ret)
                  : cm__ledger_exec(ctx, lg, "COMMIT");
    return ret;
}
