/*
 * The ledger on SQLite: one file, WAL mode, one row per stamped copy.
 *
 * Schema (meta.schema_version = 1):
 *
 *   meta(key TEXT PRIMARY KEY, value TEXT)          schema_version, created_by
 *   issues(seq INTEGER PRIMARY KEY, issue_id INTEGER UNIQUE, ...)
 *                                                   the signed hash chain
 *   pending(issue_id INTEGER PRIMARY KEY, output_path, temp_path,
 *           output_sha256, created_at)              stamps in progress
 *
 * Issue ids are stored as SQLite's signed 64-bit integers (same bit pattern).
 * An index on issues(asset, issue_id) makes "every candidate of one asset" a
 * covering index range scan, fast at millions of rows.
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
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Waiting for another writer's transaction: 30 s (ms). Stamps hold the write
 * lock for a few milliseconds; 30 s survives heavy contention and slow disks. */
#define BUSY_TIMEOUT_MS 30000
/* Attempts to draw an unused id: a collision is ~n/2^64, so 16 tries failing
 * means the random generator is broken, not bad luck. */
#define RESERVE_TRIES 16

/* Tests replace the random generator to force collisions. */
CM__HIDDEN int (*cm__ledger_rand_hook)(uint64_t *id) = NULL;

struct cm_ledger {
    sqlite3 *db;
    char *path;
    int lockfd; /* LEDGER.lock, -1 when read-only */
    int in_tx;  /* cm_ledger_begin() open */
    int tail_valid;
    int64_t tail_seq;
    uint8_t tail_hash[CM_LEDGER_HASH_BYTES];
};

struct cm_ledger_issue {
    uint64_t id;
    char *out_path;  /* absolute */
    char *temp_path; /* absolute, same folder */
    char *dir;
    int locked;
};

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
    " prev_hash BLOB NOT NULL, signature BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS issues_asset ON issues(asset, issue_id);"
    "CREATE INDEX IF NOT EXISTS issues_recipient ON issues(recipient);"
    "CREATE TABLE IF NOT EXISTS pending("
    " issue_id INTEGER PRIMARY KEY, output_path TEXT NOT NULL,"
    " temp_path TEXT NOT NULL, output_sha256 BLOB, created_at TEXT NOT NULL);";

#define ROW_COLS                                                                       \
    "seq, issue_id, recipient, asset, note, input_sha256, output_sha256, output_path, " \
    "output_size, width, height, profile, strength, cel_safe, layer, tool_version, "    \
    "key_fingerprint, signer_pub, stamped_at, operator, prev_hash, signature"

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

static int db_error(cm_ctx *ctx, cm_ledger *lg, const char *what)
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

static int exec(cm_ctx *ctx, cm_ledger *lg, const char *sql)
{
    if (sqlite3_exec(lg->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(ctx, lg, sql);
    return CM_OK;
}

static int prepare(cm_ctx *ctx, cm_ledger *lg, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(lg->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_error(ctx, lg, "cannot read the ledger");
    }
    return CM_OK;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s ? s : "", n);
    return d;
}

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
    } else {
        ret = cm__error(ctx, CM_E_LEDGER, "%s: not a celmark ledger (no schema_version)",
                        lg->path);
    }
    sqlite3_finalize(st);
    return ret;
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
    lg->path = xstrdup(path);
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
        if ((ret = exec(ctx, lg, "PRAGMA synchronous=FULL")) < 0)
            goto fail;
        if (create) {
            if ((ret = exec(ctx, lg, "BEGIN IMMEDIATE")) < 0)
                goto fail;
            if (sqlite3_exec(lg->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
                sqlite3_exec(lg->db,
                             "INSERT OR IGNORE INTO meta VALUES('schema_version','1');"
                             "INSERT OR IGNORE INTO meta VALUES('created_by','celmark " CM_VERSION_STRING "')",
                             NULL, NULL, NULL) != SQLITE_OK) {
                ret = open_error(ctx, lg->db, path);
                sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
            if ((ret = exec(ctx, lg, "COMMIT")) < 0)
                goto fail;
        }
    }
    if ((ret = check_schema(ctx, lg)) < 0)
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
    int ret = prepare(ctx, lg,
                      "SELECT issue_id, output_path, temp_path, output_sha256 FROM pending", &st);
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
        e->out = xstrdup((const char *)sqlite3_column_text(st, 1));
        e->temp = xstrdup((const char *)sqlite3_column_text(st, 2));
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
        ret = db_error(ctx, lg, "cannot read pending stamps");
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
                ret = db_error(ctx, lg, "cannot clean a pending stamp");
            sqlite3_finalize(st);
        } else {
            ret = db_error(ctx, lg, "cannot clean a pending stamp");
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
    int ret = prepare(ctx, lg,
                      "SELECT 1 FROM issues WHERE issue_id=?1 UNION ALL "
                      "SELECT 1 FROM pending WHERE issue_id=?1",
                      &st);
    if (ret)
        return ret;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(st);
    ret = rc == SQLITE_ROW ? 1 : (rc == SQLITE_DONE ? 0 : db_error(ctx, lg, "cannot look up id"));
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
    *base = xstrdup(b);
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
        int r = exec(ctx, lg, "BEGIN IMMEDIATE");
        if (!r)
            r = id_used(ctx, lg, id);
        if (r == 0) {
            char now[32];
            sqlite3_stmt *st;
            utc_now(now);
            snprintf(iss->temp_path, dl + bl + 40, "%s/.celmark-%016llx.%s",
                     strcmp(iss->dir, "/") ? iss->dir : "", (unsigned long long)id, base);
            r = prepare(ctx, lg,
                        "INSERT INTO pending(issue_id, output_path, temp_path, created_at) "
                        "VALUES(?,?,?,?)",
                        &st);
            if (!r) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
                sqlite3_bind_text(st, 2, iss->out_path, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, iss->temp_path, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, now, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(st) != SQLITE_DONE)
                    r = db_error(ctx, lg, "cannot record a pending stamp");
                sqlite3_finalize(st);
            }
            if (!r)
                r = exec(ctx, lg, "COMMIT");
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

/* seq and canonical hash of the last row (0 and zeros when empty). */
static int load_tail(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32]);

/* Fill the stored fields of a new row from rec. Strings point into rec. */
static int make_row(cm_ctx *ctx, cm_ledger *lg, cm_ledger_row *r, uint64_t id,
                    const cm_ledger_record *rec, const uint8_t out_sha[32], int64_t out_size,
                    const char *out_path, const cm_key *key, char fp[CM_KEY_FINGERPRINT_CHARS + 1],
                    char now[32])
{
    memset(r, 0, sizeof(*r));
    int ret = load_tail(ctx, lg, &r->seq, r->prev_hash);
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
    ret = cm__ledger_sign(r, key);
    if (ret)
        return cm__crypto_error(ctx, ret, "signing the ledger row");
    return CM_OK;
}

static int insert_row(cm_ctx *ctx, cm_ledger *lg, const cm_ledger_row *r)
{
    sqlite3_stmt *st;
    int ret = prepare(ctx, lg,
                      "INSERT INTO issues(" ROW_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                      "?,?,?,?,?)",
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
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        char id[17];
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)r->issue_id);
        ret = cm__error(ctx, CM_E_EXISTS, "%s: issue id %s is already recorded", lg->path, id);
    } else if (rc != SQLITE_DONE) {
        ret = db_error(ctx, lg, "cannot record the issue");
    }
    sqlite3_finalize(st);
    if (!ret && lg->in_tx) {
        lg->tail_seq = r->seq;
        ret = cm__ledger_row_hash(r, lg->tail_hash);
        lg->tail_valid = !ret;
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
    out->recipient = xstrdup(r->recipient);
    out->asset = xstrdup(r->asset);
    out->note = xstrdup(r->note);
    out->output_path = xstrdup(r->output_path);
    out->profile = xstrdup(r->profile);
    out->layer = xstrdup(r->layer);
    out->tool_version = xstrdup(r->tool_version);
    out->key_fingerprint = xstrdup(r->key_fingerprint);
    out->stamped_at = xstrdup(r->stamped_at);
    out->operator_name = xstrdup(r->operator_name);
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
    if ((ret = prepare(ctx, lg, "UPDATE pending SET output_sha256=? WHERE issue_id=?", &st)))
        goto fail;
    sqlite3_bind_blob(st, 1, sha, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)iss->id);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(lg->db) != 1)
        ret = db_error(ctx, lg, "pending stamp vanished");
    sqlite3_finalize(st);
    if (ret)
        goto fail;

    /* Step 4: one transaction for the row and the move. */
    if ((ret = exec(ctx, lg, "BEGIN IMMEDIATE")))
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
        ret = db_error(ctx, lg, "cannot commit the issue");
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
    int ret = exec(ctx, lg, "BEGIN IMMEDIATE");
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
    int ret = exec(ctx, lg, "COMMIT");
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
    int ret = own ? exec(ctx, lg, "BEGIN IMMEDIATE") : CM_OK;
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
                  : exec(ctx, lg, "COMMIT");
    return ret;
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
    return xstrdup((const char *)sqlite3_column_text(st, i));
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

/* Fill r from a statement selecting ROW_COLS. */
static int read_row(sqlite3_stmt *st, cm_ledger_row *r)
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
    if (!r->recipient || !r->asset || !r->note || !r->output_path || !r->profile || !r->layer ||
        !r->tool_version || !r->key_fingerprint || !r->stamped_at || !r->operator_name) {
        cm_ledger_row_clear(r);
        return CM_E_NOMEM;
    }
    return CM_OK;
}

static int load_tail(cm_ctx *ctx, cm_ledger *lg, int64_t *seq, uint8_t hash[32])
{
    if (lg->in_tx && lg->tail_valid) {
        *seq = lg->tail_seq;
        memcpy(hash, lg->tail_hash, 32);
        return CM_OK;
    }
    sqlite3_stmt *st;
    int ret = prepare(ctx, lg, "SELECT " ROW_COLS " FROM issues ORDER BY seq DESC LIMIT 1", &st);
    if (ret)
        return ret;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cm_ledger_row r;
        ret = read_row(st, &r);
        if (!ret) {
            *seq = r.seq;
            ret = cm__ledger_row_hash(&r, hash);
            cm_ledger_row_clear(&r);
        }
    } else if (rc == SQLITE_DONE) {
        *seq = 0;
        memset(hash, 0, 32);
    } else {
        ret = db_error(ctx, lg, "cannot read the last row");
    }
    sqlite3_finalize(st);
    if (!ret && lg->in_tx) {
        lg->tail_seq = *seq;
        memcpy(lg->tail_hash, hash, 32);
        lg->tail_valid = 1;
    }
    return ret;
}

int cm_ledger_get(cm_ctx *ctx, cm_ledger *lg, uint64_t issue_id, cm_ledger_row *row)
{
    if (!lg || !row)
        return CM_E_INVAL;
    sqlite3_stmt *st;
    int ret = prepare(ctx, lg, "SELECT " ROW_COLS " FROM issues WHERE issue_id=?", &st);
    if (ret)
        return ret;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)issue_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = read_row(st, row) ? CM_E_NOMEM : 1;
    else if (rc == SQLITE_DONE)
        ret = 0;
    else
        ret = db_error(ctx, lg, "cannot look up the issue id");
    sqlite3_finalize(st);
    return ret;
}

int cm_ledger_list(cm_ctx *ctx, cm_ledger *lg, const char *recipient, const char *asset,
                   int (*fn)(void *user, const cm_ledger_row *row), void *user)
{
    if (!lg || !fn)
        return CM_E_INVAL;
    sqlite3_stmt *st;
    int ret = prepare(ctx, lg,
                      "SELECT " ROW_COLS " FROM issues WHERE (?1 IS NULL OR recipient=?1) "
                      "AND (?2 IS NULL OR asset=?2) ORDER BY seq",
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
        if (read_row(st, &r)) {
            ret = CM_E_NOMEM;
            break;
        }
        ret = fn(user, &r);
        cm_ledger_row_clear(&r);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(ctx, lg, "cannot list the ledger");
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
    int ret = prepare(ctx, lg,
                      asset ? "SELECT issue_id FROM issues WHERE asset=?"
                            : "SELECT issue_id FROM issues",
                      &st);
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
        ret = db_error(ctx, lg, "cannot read candidate ids");
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
    int ret = prepare(ctx, lg, "SELECT key_fingerprint FROM issues ORDER BY seq DESC LIMIT 1",
                      &st);
    if (ret)
        return ret;
    int rc = sqlite3_step(st);
    const char *fp = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (fp)
        snprintf(out, CM_KEY_FINGERPRINT_CHARS + 1, "%s", fp);
    else if (rc != SQLITE_DONE)
        ret = db_error(ctx, lg, "cannot read the ledger");
    sqlite3_finalize(st);
    return ret;
}

/* ---- the whole-chain check -------------------------------------------- */

static void mark_bad(cm_ledger_report *rep, const cm_ledger_row *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mark_bad(cm_ledger_report *rep, const cm_ledger_row *r, const char *fmt, ...)
{
    if (!rep->ok)
        return; /* keep the first */
    rep->ok = 0;
    rep->bad_seq = r->seq;
    rep->bad_issue_id = r->issue_id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
    va_end(ap);
}

int cm_ledger_check(cm_ctx *ctx, cm_ledger *lg, const cm_key *key, cm_ledger_report *rep)
{
    if (!lg || !key || !rep)
        return CM_E_INVAL;
    memset(rep, 0, sizeof(*rep));
    rep->ok = 1;
    uint8_t pub[CM_KEY_PUBLIC_BYTES], prev[32] = {0};
    cm_key_public(key, pub);
    sqlite3_stmt *st;
    /* One read transaction: a consistent snapshot while stamps go on. */
    int ret = exec(ctx, lg, "BEGIN");
    if (ret)
        return ret;
    if ((ret = prepare(ctx, lg, "SELECT count(*) FROM pending", &st)) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            rep->pending = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (!ret)
        ret = prepare(ctx, lg, "SELECT " ROW_COLS " FROM issues ORDER BY seq", &st);
    if (ret) {
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    int64_t expect = 1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cm_ledger_row r;
        if (read_row(st, &r)) {
            ret = CM_E_NOMEM;
            break;
        }
        rep->rows++;
        if (r.seq != expect)
            mark_bad(rep, &r,
                     r.seq > expect ? "row %lld is missing (deleted) before this row"
                                    : "row number %lld out of sequence",
                     (long long)(r.seq > expect ? expect : r.seq));
        if (memcmp(r.prev_hash, prev, 32) != 0)
            mark_bad(rep, &r, "previous-row hash does not match (a row before it was edited, "
                              "deleted, inserted or moved)");
        int own = memcmp(r.signer_pub, pub, sizeof(pub)) == 0;
        if (!own) {
            rep->other_signer++;
            mark_bad(rep, &r, "signed by another key (%s), not the key given", r.key_fingerprint);
        }
        int sig = cm_ledger_row_signature_ok(&r);
        if (sig < 0) {
            cm_ledger_row_clear(&r);
            ret = cm__crypto_error(ctx, sig, "checking a signature");
            break;
        }
        if (!sig)
            mark_bad(rep, &r, "signature does not match (row edited, forged or moved)");
        ret = cm__ledger_row_hash(&r, prev);
        /* seq is whatever the file says: INT64_MAX + 1 would overflow */
        if (r.seq == INT64_MAX) {
            mark_bad(rep, &r, "row number %lld out of sequence", (long long)r.seq);
            cm_ledger_row_clear(&r);
            break;
        }
        expect = r.seq + 1;
        cm_ledger_row_clear(&r);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(ctx, lg, "cannot read the ledger");
    sqlite3_finalize(st);
    sqlite3_exec(lg->db, "COMMIT", NULL, NULL, NULL);
    return ret;
}
