/*
 * The ledger on SQLite: one file, WAL mode, one row per stamped copy.
 *
 * Schema (meta.schema_version = 2):
 *
 *   meta(key TEXT PRIMARY KEY, value TEXT)          schema_version, created_by
 *   issues(seq INTEGER PRIMARY KEY, issue_id INTEGER UNIQUE, ..., chain BLOB)
 *                                                   stamped copies
 *   delegations(seq INTEGER PRIMARY KEY, cert BLOB, ..., chain BLOB)
 *                                                   keys handed down a layer
 *   pending(issue_id INTEGER PRIMARY KEY, output_path, temp_path,
 *           output_sha256, created_at)              stamps in progress
 *
 * The signed hash chain is the rows of issues and delegations together in
 * seq order: both tables share one numbering 1, 2, 3 ... (a new row takes
 * the largest seq of either plus one, under the write lock). chain holds
 * the signer's certificate chain (chain.c), empty for a studio key.
 *
 * Schema 1 had neither delegations nor issues.chain. Its rows are exactly
 * schema 2's rows without chain (same canonical bytes), so the first
 * read-write open upgrades a schema 1 file in place: ADD COLUMN chain
 * (default empty), CREATE TABLE delegations, schema_version = 2, in one
 * transaction. A read-only handle reads a schema 1 file as it is, and looks
 * at schema_version again before each read in case another process
 * upgraded it meanwhile. Older celmark refuses a schema 2 file ("newer than
 * this celmark").
 *
 * Issue ids are stored as SQLite's signed 64-bit integers (same bit pattern).
 * An index on issues(asset, issue_id) makes "every candidate of one asset" a
 * covering index range scan, fast at millions of rows.
 *
 * Issuing a copy (reserve, commit, abort) and the recovery from a stamp
 * that died are in ledger/issue.c, delegations in ledger/delegation.c, the
 * whole-chain check in ledger/check.c.
 */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include "ledger_internal.h"
#include "watermark/key_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Waiting for another writer's transaction: 30 s (ms). Stamps hold the write
 * lock for a few milliseconds; 30 s survives heavy contention and slow disks. */
#define BUSY_TIMEOUT_MS 30000


static const char *SCHEMA =
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
    " prev_hash BLOB NOT NULL, signature BLOB NOT NULL,"
    " chain BLOB NOT NULL DEFAULT x'');"
    "CREATE INDEX IF NOT EXISTS issues_asset ON issues(asset, issue_id);"
    "CREATE INDEX IF NOT EXISTS issues_recipient ON issues(recipient);"
    "CREATE TABLE IF NOT EXISTS pending("
    " issue_id INTEGER PRIMARY KEY, output_path TEXT NOT NULL,"
    " temp_path TEXT NOT NULL, output_sha256 BLOB, created_at TEXT NOT NULL);";

/* What schema 2 adds to a schema 1 file (also part of a new file). */
#define DELEGATIONS_TABLE                                                    \
    "CREATE TABLE IF NOT EXISTS delegations("                                \
    " seq INTEGER PRIMARY KEY, cert BLOB NOT NULL, tool_version TEXT NOT NULL," \
    " key_fingerprint TEXT NOT NULL, signer_pub BLOB NOT NULL,"              \
    " recorded_at TEXT NOT NULL, prev_hash BLOB NOT NULL,"                   \
    " signature BLOB NOT NULL, chain BLOB NOT NULL DEFAULT x'');"
static const char *UPGRADE_1_TO_2 =
    "ALTER TABLE issues ADD COLUMN chain BLOB NOT NULL DEFAULT x'';" DELEGATIONS_TABLE
    "UPDATE meta SET value='2' WHERE key='schema_version';";


/* ---- small helpers ---------------------------------------------------- */

/* SQLite failed because writing or reading the file failed (a full disk, a
 * file size limit): the errno behind it, else 0. */
static int db_system_errno(sqlite3 *db)
{
    int rc = sqlite3_errcode(db) & 0xff;
    if (rc != SQLITE_FULL && rc != SQLITE_IOERR)
        return 0;
    int err = sqlite3_system_errno(db);
    return err ? err : rc == SQLITE_FULL ? ENOSPC : EIO;
}

int cm__ledger_db_error(cm_ctx *ctx, cm_ledger *lg, const char *what)
{
    int err = db_system_errno(lg->db);
    if (err)
        return cm__error(ctx, CM_E_IO, "%s: %s: cannot write the ledger: %s", lg->path, what,
                         strerror(err));
    return cm__error(ctx, CM_E_LEDGER, "%s: %s: %s", lg->path, what, sqlite3_errmsg(lg->db));
}

/* Opening failed: "not a celmark ledger" only when the bytes are not one; a
 * full disk or an I/O error is named as such. */
static int open_error(cm_ctx *ctx, sqlite3 *db, const char *path)
{
    int err = db_system_errno(db);
    if (err)
        return cm__error(ctx, CM_E_IO, "%s: cannot open the ledger: %s", path, strerror(err));
    return cm__error(ctx, CM_E_LEDGER, "%s: not a celmark ledger (%s)", path,
                     sqlite3_errmsg(db));
}

int cm__ledger_exec(cm_ctx *ctx, cm_ledger *lg, const char *sql)
{
    if (sqlite3_exec(lg->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return cm__ledger_db_error(ctx, lg, sql);
    return CM_OK;
}

int cm__ledger_prepare(cm_ctx *ctx, cm_ledger *lg, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(lg->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return cm__ledger_db_error(ctx, lg, "cannot read the ledger");
    }
    return CM_OK;
}

char *cm__ledger_strdup(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s ? s : "", n);
    return d;
}

int cm_sha256_file(cm_ctx *ctx, const char *path, uint8_t out[CM_LEDGER_HASH_BYTES],
                   int64_t *size)
{
    if (!path || !out)
        return CM_E_INVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cm__error(ctx, CM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ret = CM_OK;
    int64_t total = 0;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        ret = cm__crypto_error(ctx, CM_E_CRYPTO, "SHA-256");
        goto done;
    }
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        total += n;
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            ret = cm__crypto_error(ctx, CM_E_CRYPTO, "SHA-256");
            goto done;
        }
    }
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(md, out, &len) != 1 || len != CM_LEDGER_HASH_BYTES)
        ret = cm__crypto_error(ctx, CM_E_CRYPTO, "SHA-256");
    if (size)
        *size = total;
done:
    EVP_MD_CTX_free(md);
    close(fd);
    return ret;
}

/* ---- open / close ----------------------------------------------------- */

static int check_schema(cm_ctx *ctx, cm_ledger *lg)
{
    sqlite3_stmt *st;
    int ret = CM_OK;
    if (sqlite3_prepare_v2(lg->db, "SELECT value FROM meta WHERE key='schema_version'", -1,
                           &st, NULL) != SQLITE_OK)
        return open_error(ctx, lg->db, lg->path);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* a NULL value (possible in an edited file) reads as version 0 */
        const char *text = (const char *)sqlite3_column_text(st, 0);
        int v = text ? atoi(text) : 0;
        if (v > CM_LEDGER_SCHEMA_VERSION)
            ret = cm__error(ctx, CM_E_LEDGER,
                            "%s: ledger schema version %d is newer than this celmark (%d); "
                            "upgrade celmark",
                            lg->path, v, CM_LEDGER_SCHEMA_VERSION);
        else if (v < 1)
            ret = cm__error(ctx, CM_E_LEDGER, "%s: bad ledger schema version", lg->path);
        else
            lg->schema = v;
    } else {
        ret = cm__error(ctx, CM_E_LEDGER, "%s: not a celmark ledger (no schema_version)",
                        lg->path);
    }
    sqlite3_finalize(st);
    return ret;
}

/* Schema 1 -> 2 in one write transaction (another process may have done it
 * meanwhile: look again under the lock). */
static int upgrade(cm_ctx *ctx, cm_ledger *lg)
{
    int ret = cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE");
    if (!ret)
        ret = check_schema(ctx, lg);
    if (!ret && lg->schema == 1 && sqlite3_exec(lg->db, UPGRADE_1_TO_2, NULL, NULL, NULL))
        ret = cm__ledger_db_error(ctx, lg, "cannot upgrade the ledger to schema 2");
    if (!ret)
        ret = cm__ledger_exec(ctx, lg, "COMMIT");
    if (ret) {
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    lg->schema = 2;
    return CM_OK;
}

void cm__ledger_refresh_schema(cm_ledger *lg)
{
    if (lg->schema < CM_LEDGER_SCHEMA_VERSION)
        (void)check_schema(NULL, lg);
}

int cm_ledger_open(cm_ctx *ctx, const char *path, int flags, cm_ledger **out)
{
    if (!path || !out)
        return CM_E_INVAL;
    *out = NULL;
    int readonly = (flags & CM_LEDGER_READONLY) != 0;
    int create = !readonly && (flags & CM_LEDGER_CREATE);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT || !create)
            return cm__error(ctx, CM_E_LEDGER, "%s: cannot open ledger: %s", path,
                             strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        return cm__error(ctx, CM_E_LEDGER, "%s: not a regular file", path);
    }
    cm_ledger *lg = calloc(1, sizeof(*lg));
    if (!lg)
        return CM_E_NOMEM;
    lg->lockfd = -1;
    lg->path = cm__ledger_strdup(path);
    if (!lg->path) {
        free(lg);
        return CM_E_NOMEM;
    }
    int ret;
    int oflags = readonly ? SQLITE_OPEN_READONLY
                          : (SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));
    if (sqlite3_open_v2(path, &lg->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        ret = cm__error(ctx, CM_E_LEDGER, "%s: cannot open ledger: %s", path,
                        lg->db ? sqlite3_errmsg(lg->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(lg->db, BUSY_TIMEOUT_MS);
    if (!readonly) {
        char lockpath[PATH_MAX];
        if ((size_t)snprintf(lockpath, sizeof(lockpath), "%s.lock", path) >= sizeof(lockpath)) {
            ret = cm__error(ctx, CM_E_LEDGER, "%s: path too long", path);
            goto fail;
        }
        lg->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lg->lockfd < 0) {
            ret = cm__error(ctx, CM_E_LEDGER, "%s: cannot open lock file: %s", lockpath,
                            strerror(errno));
            goto fail;
        }
        /* "file is not a database" surfaces here for a non-SQLite file. */
        if (sqlite3_exec(lg->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
            ret = open_error(ctx, lg->db, path);
            goto fail;
        }
        if ((ret = cm__ledger_exec(ctx, lg, "PRAGMA synchronous=FULL")) < 0)
            goto fail;
        if (create) {
            if ((ret = cm__ledger_exec(ctx, lg, "BEGIN IMMEDIATE")) < 0)
                goto fail;
            if (sqlite3_exec(lg->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
                sqlite3_exec(
                    lg->db,
                    DELEGATIONS_TABLE
                    "INSERT OR IGNORE INTO meta VALUES('schema_version','2');"
                    "INSERT OR IGNORE INTO meta VALUES('created_by','celmark " CM_VERSION_STRING
                    "')",
                    NULL, NULL, NULL) != SQLITE_OK) {
                ret = open_error(ctx, lg->db, path);
                sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
            if ((ret = cm__ledger_exec(ctx, lg, "COMMIT")) < 0)
                goto fail;
        }
    }
    if ((ret = check_schema(ctx, lg)) < 0)
        goto fail;
    if (!readonly && lg->schema < 2 && (ret = upgrade(ctx, lg)) < 0)
        goto fail;
    if (!readonly && (ret = cm_ledger_reconcile(ctx, lg, NULL)) < 0)
        goto fail;
    *out = lg;
    return CM_OK;
fail:
    cm_ledger_close(&lg);
    return ret;
}

void cm_ledger_close(cm_ledger **plg)
{
    if (!plg || !*plg)
        return;
    cm_ledger *lg = *plg;
    if (lg->in_tx)
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(lg->db);
    if (lg->lockfd >= 0)
        close(lg->lockfd);
    free(lg->path);
    free(lg);
    *plg = NULL;
}

/* ---- reading rows ----------------------------------------------------- */

static void col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
{
    int len = sqlite3_column_bytes(st, i);
    const void *b = sqlite3_column_blob(st, i);
    memset(dst, 0, n);
    if (b && len > 0)
        memcpy(dst, b, (size_t)len < n ? (size_t)len : n);
}

static char *col_text(sqlite3_stmt *st, int i)
{
    return cm__ledger_strdup((const char *)sqlite3_column_text(st, i));
}

void cm_ledger_row_clear(cm_ledger_row *r)
{
    if (!r)
        return;
    free(r->recipient);
    free(r->asset);
    free(r->note);
    free(r->output_path);
    free(r->profile);
    free(r->layer);
    free(r->tool_version);
    free(r->key_fingerprint);
    free(r->stamped_at);
    free(r->operator_name);
    memset(r, 0, sizeof(*r));
}

int cm__ledger_prepare_rows(cm_ctx *ctx, cm_ledger *lg, const char *tail, sqlite3_stmt **st)
{
    char sql[512];
    cm__ledger_refresh_schema(lg);
    int n = snprintf(sql, sizeof(sql), "SELECT %s FROM issues %s",
                     lg->schema >= 2 ? ROW_COLS : ROW_COLS_V1 ", x''", tail);
    assert(n > 0 && (size_t)n < sizeof(sql));
    (void)n;
    return cm__ledger_prepare(ctx, lg, sql, st);
}

/* Fill r from a statement selecting ROW_COLS. */
int cm__ledger_read_row(sqlite3_stmt *st, cm_ledger_row *r)
{
    int i = 0;
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(st, i++);
    r->issue_id = (uint64_t)sqlite3_column_int64(st, i++);
    r->recipient = col_text(st, i++);
    r->asset = col_text(st, i++);
    r->note = col_text(st, i++);
    col_blob(st, i++, r->input_sha256, 32);
    col_blob(st, i++, r->output_sha256, 32);
    r->output_path = col_text(st, i++);
    r->output_size = sqlite3_column_int64(st, i++);
    r->width = sqlite3_column_int(st, i++);
    r->height = sqlite3_column_int(st, i++);
    r->profile = col_text(st, i++);
    r->strength = sqlite3_column_double(st, i++);
    r->cel_safe = sqlite3_column_int(st, i++);
    r->layer = col_text(st, i++);
    r->tool_version = col_text(st, i++);
    r->key_fingerprint = col_text(st, i++);
    col_blob(st, i++, r->signer_pub, 32);
    r->stamped_at = col_text(st, i++);
    r->operator_name = col_text(st, i++);
    col_blob(st, i++, r->prev_hash, 32);
    col_blob(st, i++, r->signature, 64);
    r->chain_len = cm__ledger_chain_unpack(sqlite3_column_blob(st, i),
                                           (size_t)sqlite3_column_bytes(st, i), r->chain);
    i++;
    if (!r->recipient || !r->asset || !r->note || !r->output_path || !r->profile || !r->layer ||
        !r->tool_version || !r->key_fingerprint || !r->stamped_at || !r->operator_name) {
        cm_ledger_row_clear(r);
        return CM_E_NOMEM;
    }
    return CM_OK;
}

int cm__ledger_set_tail(cm_ledger *lg, int64_t seq, const uint8_t hash[CM_LEDGER_HASH_BYTES])
{
    if (lg->in_tx) {
        lg->tail_seq = seq;
        memcpy(lg->tail_hash, hash, CM_LEDGER_HASH_BYTES);
        lg->tail_valid = 1;
    }
    return CM_OK;
}

/* The last issue row's seq and hash into *seq, hash (left alone when there
 * is none or its seq is not above *seq). */
static int last_issue(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32])
{
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare_rows(ctx, lg, "ORDER BY seq DESC LIMIT 1", &st);
    if (ret)
        return ret;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > *seq) {
        cm_ledger_row r;
        ret = cm__ledger_read_row(st, &r);
        if (!ret) {
            *seq = r.seq;
            ret = cm__ledger_row_hash(&r, hash);
            if (ret == CM_E_INVAL) /* a stored chain that does not decode */
                ret = cm__error(ctx, CM_E_LEDGER, "%s: the last row (%lld) is damaged; run "
                                                  "'celmark ledger verify'",
                                lg->path, (long long)r.seq);
            cm_ledger_row_clear(&r);
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = cm__ledger_db_error(ctx, lg, "cannot read the last row");
    }
    sqlite3_finalize(st);
    return ret;
}

/* The same for the last delegation row. */
static int last_delegation(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32])
{
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare_drows(ctx, lg, "ORDER BY seq DESC LIMIT 1", &st);
    if (ret || !st)
        return ret;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > *seq) {
        cm__ledger_drow d;
        ret = cm__ledger_read_drow(st, &d);
        if (!ret) {
            *seq = d.seq;
            ret = cm__ledger_drow_hash(&d, hash);
            if (ret == CM_E_INVAL) /* a stored certificate that does not decode */
                ret = cm__error(ctx, CM_E_LEDGER, "%s: the last row (%lld) is damaged; run "
                                                  "'celmark ledger verify'",
                                lg->path, (long long)d.seq);
            cm__ledger_drow_clear(&d);
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = cm__ledger_db_error(ctx, lg, "cannot read the last row");
    }
    sqlite3_finalize(st);
    return ret;
}

int cm__ledger_load_tail(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32])
{
    if (lg->in_tx && lg->tail_valid) {
        *seq = lg->tail_seq;
        memcpy(hash, lg->tail_hash, 32);
        return CM_OK;
    }
    *seq = 0;
    memset(hash, 0, 32);
    int ret = last_issue(ctx, lg, seq, hash);
    if (!ret)
        ret = last_delegation(ctx, lg, seq, hash);
    if (!ret && *seq == INT64_MAX)
        ret = cm__error(ctx, CM_E_LEDGER, "%s: the ledger is full (row %lld)", lg->path,
                        (long long)*seq);
    if (!ret)
        cm__ledger_set_tail(lg, *seq, hash);
    return ret;
}

int cm_ledger_get(cm_ctx *ctx, cm_ledger *lg, uint64_t issue_id, cm_ledger_row *row)
{
    if (!lg || !row)
        return CM_E_INVAL;
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare_rows(ctx, lg, "WHERE issue_id=?", &st);
    if (ret)
        return ret;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)issue_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = cm__ledger_read_row(st, row) ? CM_E_NOMEM : 1;
    else if (rc == SQLITE_DONE)
        ret = 0;
    else
        ret = cm__ledger_db_error(ctx, lg, "cannot look up the issue id");
    sqlite3_finalize(st);
    return ret;
}

int cm_ledger_list(cm_ctx *ctx, cm_ledger *lg, const char *recipient, const char *asset,
                   int (*fn)(void *user, const cm_ledger_row *row), void *user)
{
    if (!lg || !fn)
        return CM_E_INVAL;
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare_rows(
        ctx, lg, "WHERE (?1 IS NULL OR recipient=?1) AND (?2 IS NULL OR asset=?2) ORDER BY seq",
        &st);
    if (ret)
        return ret;
    if (recipient)
        sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
    if (asset)
        sqlite3_bind_text(st, 2, asset, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cm_ledger_row r;
        if (cm__ledger_read_row(st, &r)) {
            ret = CM_E_NOMEM;
            break;
        }
        ret = fn(user, &r);
        cm_ledger_row_clear(&r);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot list the ledger");
    sqlite3_finalize(st);
    return ret;
}

int cm_ledger_candidates(cm_ctx *ctx, cm_ledger *lg, const char *asset, uint64_t **ids,
                         size_t *n)
{
    if (!lg || !ids || !n)
        return CM_E_INVAL;
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare(
        ctx, lg,
        asset ? "SELECT issue_id FROM issues WHERE asset=?" : "SELECT issue_id FROM issues", &st);
    if (ret)
        return ret;
    if (asset)
        sqlite3_bind_text(st, 1, asset, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            uint64_t *p = cm__malloc_array(cap, sizeof(uint64_t));
            if (!p) {
                ret = CM_E_NOMEM;
                break;
            }
            if (*n)
                memcpy(p, *ids, *n * sizeof(uint64_t));
            free(*ids);
            *ids = p;
        }
        (*ids)[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot read candidate ids");
    sqlite3_finalize(st);
    if (ret) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return ret;
}

int cm_ledger_signer(cm_ctx *ctx, cm_ledger *lg, char out[CM_KEY_FINGERPRINT_CHARS + 1])
{
    if (!lg || !out)
        return CM_E_INVAL;
    out[0] = '\0';
    sqlite3_stmt *st;
    int ret = cm__ledger_prepare(
        ctx, lg, "SELECT key_fingerprint FROM issues ORDER BY seq DESC LIMIT 1", &st);
    if (ret)
        return ret;
    int rc = sqlite3_step(st);
    const char *fp = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (fp)
        snprintf(out, CM_KEY_FINGERPRINT_CHARS + 1, "%s", fp);
    else if (rc != SQLITE_DONE)
        ret = cm__ledger_db_error(ctx, lg, "cannot read the ledger");
    sqlite3_finalize(st);
    return ret;
}
