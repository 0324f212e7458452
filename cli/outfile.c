/* Report files: atomic output and HTML/XML escaping (see outfile.h). */
#include "outfile.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder part of path ("." when none), malloc'ed. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int cli_out_check(const char *path, int force)
{
    struct stat st;
    if (!path || !*path) {
        fprintf(stderr, "celmark: output: empty file name; name the output file\n");
        return EXIT_INPUT;
    }
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "celmark: %s: is a folder; name an output file\n", path);
            return EXIT_INPUT;
        }
        if (!force) {
            fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n", path);
            return EXIT_INPUT;
        }
    }
    char *dir = dir_of(path);
    int ok = dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    if (!ok)
        fprintf(stderr, "celmark: %s: cannot create output: no folder %s; create it first\n", path,
                dir ? dir : "");
    free(dir);
    return ok ? EXIT_OK : EXIT_INPUT;
}

void cli_out_abort(cli_out *o)
{
    if (o->fp)
        fclose(o->fp);
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof(*o));
}

int cli_out_open(cli_out *o, const char *path, int force)
{
    memset(o, 0, sizeof(*o));
    int code = cli_out_check(path, force);
    if (code)
        return code;
    char *dir = dir_of(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = (dir ? strlen(dir) : 0) + strlen(base) + 32;
    o->path = strdup(path);
    o->tmp = malloc(len);
    o->force = force;
    if (!dir || !o->path || !o->tmp) {
        free(dir);
        free(o->tmp);
        o->tmp = NULL;
        cli_out_abort(o);
        fprintf(stderr, "celmark: %s: out of memory; free memory\n", path);
        return EXIT_INTERNAL;
    }
    snprintf(o->tmp, len, "%s/.celmark-tmp.%s.XXXXXX", dir, base);
    free(dir);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        fprintf(stderr, "celmark: %s: cannot create output: %s; check the folder's permissions\n",
                path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        cli_out_abort(o);
        return EXIT_INPUT;
    }
    /* mkstemp makes 0600; a report is an ordinary file (0666 & ~umask). */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(o->fp = fdopen(fd, "w"))) {
        fprintf(stderr, "celmark: %s: cannot create output: %s; check the folder\n", path,
                strerror(errno));
        if (!o->fp)
            close(fd);
        cli_out_abort(o);
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

static void sync_dir_of(const char *path)
{
    char *dir = dir_of(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int cli_out_commit(cli_out *o)
{
    int err = 0;
    const char *what = "cannot write output";
    if (!o->fp)
        err = EINVAL;
    else if (fflush(o->fp) != 0 || ferror(o->fp) || fsync(fileno(o->fp)) != 0)
        err = errno ? errno : EIO;
    if (o->fp && fclose(o->fp) != 0 && !err)
        err = errno;
    o->fp = NULL;
    if (!err) {
        what = "cannot create output";
        if (o->force) {
            if (rename(o->tmp, o->path) != 0)
                err = errno;
        } else if (link(o->tmp, o->path) == 0) {
            unlink(o->tmp); /* the hard link is the output now */
        } else if (errno == EEXIST) {
            fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n", o->path);
            cli_out_abort(o);
            return EXIT_INPUT;
        } else if (errno == EPERM || errno == EOPNOTSUPP) {
            /* no hard links on this file system: check, then rename */
            if (access(o->path, F_OK) == 0) {
                fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n",
                        o->path);
                cli_out_abort(o);
                return EXIT_INPUT;
            }
            if (rename(o->tmp, o->path) != 0)
                err = errno;
        } else {
            err = errno;
        }
    }
    if (err) {
        fprintf(stderr, "celmark: %s: %s: %s; %s\n", o->path, what, strerror(err),
                cli_write_advice(err));
        cli_out_abort(o);
        return EXIT_INPUT;
    }
    sync_dir_of(o->path);
    free(o->tmp);
    o->tmp = NULL; /* moved: nothing to remove */
    cli_out_abort(o);
    return EXIT_OK;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min, cp;
    if ((c & 0xE0) == 0xC0) {
        n = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    /* XML 1.0 forbids U+FFFE and U+FFFF */
    if (cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return n;
}

void cli_put_escaped(FILE *f, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        switch (c) {
        case '&':
            fputs("&amp;", f);
            p++;
            continue;
        case '<':
            fputs("&lt;", f);
            p++;
            continue;
        case '>':
            fputs("&gt;", f);
            p++;
            continue;
        case '"':
            fputs("&quot;", f);
            p++;
            continue;
        case '\'':
            fputs("&#39;", f);
            p++;
            continue;
        default:
            break;
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) {
            fputs("\xEF\xBF\xBD", f); /* U+FFFD */
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (!n) {
            fputs("\xEF\xBF\xBD", f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
}
