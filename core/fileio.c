/*
 * Atomic output files, and whole-file input for the formats that keep the
 * source bytes (cm__read_all, at the end).
 *
 * Every output is first written to a temporary file in the destination folder
 * (".OUT.png.tmp-XXXXXX", created with O_EXCL and mode 0666 so the umask
 * applies as for any new file), flushed and fsync'ed, and only then moved
 * into place:
 *
 *   without force:  link(tmp, path)   fails with EEXIST if path appeared in
 *                   unlink(tmp)       the meantime: never clobbers a file
 *   with force:     rename(tmp, path) atomic replacement
 *
 * and finally the folder is fsync'ed so the new name survives a crash. If
 * anything fails the temporary file is removed: readers see either no file,
 * the old file, or the complete new file, never a partial one.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Attempts at finding an unused temporary name before giving up. With 62^6
 * names per attempt a collision needs an adversary, not bad luck. */
#define TMP_ATTEMPTS 100

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Six random name characters: getrandom(), or clock and pid if unavailable. */
static void random_suffix(char out[6])
{
    static const char set[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned counter;
    unsigned char r[6];
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ ++counter;
        for (int i = 0; i < 6; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    for (int i = 0; i < 6; i++)
        out[i] = set[r[i] % (sizeof(set) - 1)];
}

void cm__atomic_abort(cm__atomic *a)
{
    if (!a)
        return;
    if (a->fp)
        fclose(a->fp);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    free(a->dir);
    memset(a, 0, sizeof(*a));
}

int cm__atomic_open(cm_ctx *ctx, const char *path, int force, cm__atomic *a)
{
    struct stat st;
    int ret, fd = -1;

    if (!a)
        return cm__error(ctx, CM_E_INVAL, "atomic output: no state given");
    memset(a, 0, sizeof(*a));
    if (!path || !*path)
        return cm__error(ctx, CM_E_INVAL, "output: empty file name");
    if (!force && lstat(path, &st) == 0)
        return cm__error(ctx, CM_E_EXISTS,
                         "%s: already exists; use --force to replace it", path);

    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    if (!*base) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot create output: is a folder",
                        path);
        goto fail;
    }
    a->force = !!force;
    a->path = dup_range(path, strlen(path));
    /* "/x" lives in "/", "x" in "." */
    a->dir = slash ? dup_range(dirlen ? path : "/", dirlen ? dirlen : 1)
                   : dup_range(".", 1);
    /* <dir>/.<base>.tmp-XXXXXX */
    size_t tmplen = strlen(path) + sizeof("/..tmp-XXXXXX");
    a->tmp = malloc(tmplen);
    if (!a->path || !a->dir || !a->tmp) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }

    for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        char suffix[7];
        random_suffix(suffix);
        suffix[6] = '\0';
        snprintf(a->tmp, tmplen, "%.*s%s.%s.tmp-%s", (int)dirlen, path,
                 slash ? "/" : "", base, suffix);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot create output: %s", path,
                        strerror(errno));
        free(a->tmp); /* nothing was created: do not unlink someone's file */
        a->tmp = NULL;
        goto fail;
    }
    a->fp = fdopen(fd, "wb");
    if (!a->fp) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot create output: %s", path,
                        strerror(errno));
        close(fd);
        goto fail;
    }
    return CM_OK;

fail:
    cm__atomic_abort(a);
    return ret;
}

/* Best effort: make the new directory entry durable. Some file systems refuse
 * fsync on a directory (EINVAL); the data itself is already on disk. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

int cm__atomic_commit(cm_ctx *ctx, cm__atomic *a)
{
    int ret;

    if (!a || !a->fp || !a->tmp || !a->path) {
        cm__atomic_abort(a);
        return cm__error(ctx, CM_E_INVAL, "atomic output: not open");
    }

    int bad = fflush(a->fp) != 0 || ferror(a->fp);
    int err = bad ? errno : 0;
    if (!bad && fsync(fileno(a->fp)) != 0 && errno != EINVAL) {
        bad = 1;
        err = errno;
    }
    if (fclose(a->fp) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    a->fp = NULL;
    if (bad) {
        ret = cm__error(ctx, CM_E_IO, "%s: cannot write output: %s", a->path,
                        strerror(err ? err : EIO));
        goto fail;
    }

    if (a->force) {
        if (rename(a->tmp, a->path) != 0) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot replace output: %s",
                            a->path, strerror(errno));
            goto fail;
        }
    } else if (link(a->tmp, a->path) != 0) {
        struct stat st;
        err = errno;
        if (err == EEXIST) {
            ret = cm__error(ctx, CM_E_EXISTS,
                            "%s: already exists; use --force to replace it",
                            a->path);
            goto fail;
        }
        /* File systems without hard links (FAT, some FUSE mounts): check
         * and rename. Not race-free, but the only option left. */
        if (err != EPERM && err != ENOTSUP && err != EOPNOTSUPP &&
            err != ENOSYS && err != EMLINK) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot create output: %s",
                            a->path, strerror(err));
            goto fail;
        }
        if (lstat(a->path, &st) == 0) {
            ret = cm__error(ctx, CM_E_EXISTS,
                            "%s: already exists; use --force to replace it",
                            a->path);
            goto fail;
        }
        if (rename(a->tmp, a->path) != 0) {
            ret = cm__error(ctx, CM_E_IO, "%s: cannot create output: %s",
                            a->path, strerror(errno));
            goto fail;
        }
    } else {
        unlink(a->tmp);
    }
    free(a->tmp); /* moved or linked into place: nothing left to delete */
    a->tmp = NULL;
    sync_dir(a->dir);
    cm__atomic_abort(a); /* releases the strings */
    return CM_OK;

fail:
    cm__atomic_abort(a);
    return ret;
}

/* ---- whole-file input ------------------------------------------------- */

/* First allocation for a stream of unknown size; doubled as it fills. */
#define READ_ALL_FIRST_CHUNK ((size_t)1 << 16)

int cm__read_all(cm_ctx *ctx, const char *path, FILE *fp, uint64_t max_bytes,
                 uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = READ_ALL_FIRST_CHUNK, n = 0;
    int ret;

    if (!out || !len || !fp || !path)
        return cm__error(ctx, CM_E_INVAL, "read: invalid argument");
    *out = NULL;
    *len = 0;
    long start = ftell(fp);
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && start >= 0) {
        uint64_t left = (uint64_t)st.st_size > (uint64_t)start
                            ? (uint64_t)st.st_size - (uint64_t)start : 0;
        if (left > max_bytes)
            return cm__error(ctx, CM_E_LIMIT,
                             "%s: file is %llu bytes, above the limit of %llu bytes",
                             path, (unsigned long long)left,
                             (unsigned long long)max_bytes);
        /* one byte more than the size, so EOF is seen without a regrow */
        if (left + 1 <= SIZE_MAX)
            cap = (size_t)left + 1;
    }
    if (!(buf = malloc(cap)))
        return cm__error(ctx, CM_E_NOMEM, "%s: out of memory reading the file", path);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if ((uint64_t)n > max_bytes) {
            ret = cm__error(ctx, CM_E_LIMIT,
                            "%s: file is above the limit of %llu bytes", path,
                            (unsigned long long)max_bytes);
            goto fail;
        }
        if (n < cap) {
            if (ferror(fp)) {
                ret = cm__error(ctx, CM_E_IO, "%s: cannot read: %s", path,
                                strerror(errno ? errno : EIO));
                goto fail;
            }
            break; /* end of file */
        }
        if (cap > SIZE_MAX / 2) {
            ret = cm__error(ctx, CM_E_LIMIT, "%s: file too large", path);
            goto fail;
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory reading the file", path);
            goto fail;
        }
        buf = nb;
        cap *= 2;
    }
    *out = buf;
    *len = n;
    return CM_OK;

fail:
    free(buf);
    return ret;
}
