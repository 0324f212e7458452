/*
 * celmark scan: examine every media file under some folders (a copy of an
 * exposed server) and say which recipient's copy each marked file is.
 *
 *   walker (main thread) --> bounded queue --> N workers (one verifier and
 *                                               ledger handle each)
 *                                                  |
 *   JSON Lines out  <-- one line per file, written and flushed under a lock
 *
 * Memory stays bounded whatever the tree: the queue holds at most
 * QUEUE_SLOTS paths, a worker one file at a time; only hits (and errors)
 * are kept for the summary and the report.
 *
 * --resume reads the JSON Lines file first and skips every file already
 * reported with the same path, size and mtime; a line cut short by a kill
 * is dropped (the file is truncated back to its last complete line).
 * Each line goes to OUT in one write(); if a write fails (a full disk, a
 * file size limit) the file is cut back to its last complete line and the
 * scan stops, so OUT can always be continued with --resume.
 * --shard I/N keeps the files whose path hashes (FNV-1a 64) to I mod N:
 * the same split on every machine, whatever the order of the walk.
 *
 * A crash while reading a file (a fault inside a decoder on hostile bytes)
 * ends the process, and --resume would meet the same file again. So with
 * --jsonl OUT, a crash first writes the files being read into OUT.crashed.
 * --resume then reads it: one file there is the culprit, reported as
 * unreadable and not read again; several (one per worker at the time) are
 * read again one at a time, so that another crash names exactly one.
 */
#include "analyze.h"
#include "crashlog.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_SLOTS 256  /* paths waiting for a worker */
#define MAX_WORKERS CRASHLOG_SLOTS /* each worker traced in its own slot */
#define CRASH_SUFFIX ".crashed" /* OUT.crashed: see the file comment */
#define SUMMARY_ERRORS 20 /* unreadable files named in the text summary */

/* ---- the queue ---------------------------------------------------------- */

typedef struct queue {
    char *slot[QUEUE_SLOTS];
    int head, count, closed;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
} queue;

static void queue_push(queue *q, char *path)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == QUEUE_SLOTS)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->slot[(q->head + q->count++) % QUEUE_SLOTS] = path;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* NULL when the queue is closed and empty. */
static char *queue_pop(queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->count && !q->closed)
        pthread_cond_wait(&q->not_empty, &q->mu);
    char *p = NULL;
    if (q->count) {
        p = q->slot[q->head];
        q->head = (q->head + 1) % QUEUE_SLOTS;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return p;
}

static void queue_close(queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* ---- files already reported (--resume) --------------------------------- */

typedef struct seen_set {
    char **keys; /* open addressing, power-of-two size */
    size_t size, count;
} seen_set;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int seen_add(seen_set *s, char *key)
{
    if ((s->count + 1) * 2 > s->size) {
        size_t ns = s->size ? s->size * 2 : 1024;
        char **nk = calloc(ns, sizeof(char *));
        if (!nk)
            return -1;
        for (size_t i = 0; i < s->size; i++)
            if (s->keys[i]) {
                size_t j = fnv1a(s->keys[i]) & (ns - 1);
                while (nk[j])
                    j = (j + 1) & (ns - 1);
                nk[j] = s->keys[i];
            }
        free(s->keys);
        s->keys = nk;
        s->size = ns;
    }
    size_t j = fnv1a(key) & (s->size - 1);
    while (s->keys[j]) {
        if (!strcmp(s->keys[j], key)) {
            free(key);
            return 0;
        }
        j = (j + 1) & (s->size - 1);
    }
    s->keys[j] = key;
    s->count++;
    return 0;
}

static int seen_has(const seen_set *s, const char *key)
{
    if (!s->size)
        return 0;
    size_t j = fnv1a(key) & (s->size - 1);
    while (s->keys[j]) {
        if (!strcmp(s->keys[j], key))
            return 1;
        j = (j + 1) & (s->size - 1);
    }
    return 0;
}

static void seen_free(seen_set *s)
{
    for (size_t i = 0; i < s->size; i++)
        free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

static char *seen_key(const char *path, uint64_t size, int64_t mtime_ns)
{
    size_t n = strlen(path) + 64;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\n%llu\n%lld", path, (unsigned long long)size, (long long)mtime_ns);
    return k;
}

/* Read an earlier JSON Lines output: remember each reported file and cut
 * the file back to its last complete line. 0, or an exit code. */
static int load_resume(const char *path, seen_set *seen)
{
    FILE *f = fopen(path, "r+");
    if (!f)
        return errno == ENOENT ? EXIT_OK : (fprintf(stderr, "celmark: %s: cannot open: %s\n",
                                                    path, strerror(errno)),
                                            EXIT_INPUT);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t good = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* cut short by a kill: dropped */
        json_t *o = json_loads(line, 0, NULL);
        json_t *p = o ? json_object_get(o, "path") : NULL;
        json_t *sz = o ? json_object_get(o, "size") : NULL;
        json_t *mt = o ? json_object_get(o, "mtime_ns") : NULL;
        if (json_is_string(p) && json_is_integer(sz) && json_is_integer(mt)) {
            char *k = seen_key(json_string_value(p), (uint64_t)json_integer_value(sz),
                               (int64_t)json_integer_value(mt));
            if (!k || seen_add(seen, k)) {
                json_decref(o);
                free(line);
                fclose(f);
                return EXIT_INTERNAL;
            }
        }
        json_decref(o);
        good += n;
    }
    free(line);
    int ok = fflush(f) == 0 && ftruncate(fileno(f), good) == 0;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "celmark: %s: cannot truncate: %s\n", path, strerror(errno));
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* CELMARK_FAULT_CRASH (tests/cli/scancrash.sh): a worker about to read a
 * file whose path contains it raises SIGSEGV, as a crashing decoder would. */
static const char *fault_crash;

/* ---- the scan ----------------------------------------------------------- */

typedef struct scan_opts {
    const char *key_path, *ledger_path, *jsonl_path, *report_path;
    const char *ledgers[CLI_MAX_LEDGERS]; /* ledgers[0] == ledger_path */
    int nledgers;
    int workers, resume, follow, quiet, force, fast;
    unsigned shard_i, shard_n;
    cm_limits limits;
} scan_opts;

typedef struct tally {
    int64_t files, skipped_other, skipped_links, skipped_shard, skipped_resumed, unreadable,
        marked;
    int64_t by_kind[3];
    uint64_t bytes;
} tally;

typedef struct scan {
    const scan_opts *o;
    cm_key *key;
    queue q;
    FILE *out;              /* stdout, when there is no OUT */
    int out_fd;             /* OUT (O_APPEND), else -1 */
    off_t out_good;         /* OUT's size up to its last complete line */
    pthread_mutex_t out_mu; /* out, tally, hits, failed */
    tally t;
    file_result **hits; /* marked or unreadable files, for the summary/report */
    size_t nhits, cap_hits;
    char **roots_real; /* realpath of each root (symlink containment) */
    int nroots;
    const seen_set *seen;
    int failed;        /* an output write failed: the scan stops */
    int write_errno;   /* why */
    int workers_failed; /* a worker could not start */
    cm_verify_params vp; /* with the ledger's ids as candidates */
    dev_t out_dev;       /* the JSON Lines output, when it lies inside the tree */
    ino_t out_ino;
    int out_known;
} scan;

static int keep_result(scan *s, file_result *r)
{
    if (s->nhits == s->cap_hits) {
        size_t nc = s->cap_hits ? s->cap_hits * 2 : 64;
        file_result **p = realloc(s->hits, nc * sizeof(*p));
        if (!p)
            return -1;
        s->hits = p;
        s->cap_hits = nc;
    }
    s->hits[s->nhits++] = r;
    return 0;
}

static int scan_failed(scan *s)
{
    pthread_mutex_lock(&s->out_mu);
    int f = s->failed;
    pthread_mutex_unlock(&s->out_mu);
    return f;
}

/* One result line, under out_mu. OUT gets it in one write(); a failed or
 * short write is cut off again, so OUT only ever ends in a whole line. */
static void emit_line(scan *s, const char *line)
{
    if (s->failed)
        return;
    size_t n = strlen(line);
    if (s->out_fd < 0) {
        if (fputs(line, s->out) < 0 || fputc('\n', s->out) < 0 || fflush(s->out)) {
            s->failed = 1;
            s->write_errno = errno ? errno : EIO;
        }
        return;
    }
    char *buf = malloc(n + 1);
    if (!buf) {
        s->failed = 1;
        s->write_errno = ENOMEM;
        return;
    }
    memcpy(buf, line, n);
    buf[n++] = '\n';
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->out_fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->failed = 1;
            s->write_errno = w < 0 ? errno : EIO;
            if (ftruncate(s->out_fd, s->out_good) != 0) {
                /* cannot cut it: --resume drops a last line without '\n' */
            }
            break;
        }
        done += (size_t)w;
    }
    if (!s->failed)
        s->out_good += (off_t)n;
    free(buf);
}

typedef struct worker_arg {
    scan *s;
    int idx; /* its crash log slot */
} worker_arg;

static void *worker(void *arg)
{
    scan *s = ((worker_arg *)arg)->s;
    int idx = ((worker_arg *)arg)->idx;
    analyzer a;
    memset(&a, 0, sizeof(a));
    a.limits = s->o->limits;
    cm_video_verify_params_default(&a.vvp);
    a.vvp.fast = s->o->fast;
    a.want_hash = 1;
    a.want_thumb = s->o->report_path != NULL;
    int ok = cm_ctx_new(&a.ctx) == 0 && cm_verifier_new(a.ctx, s->key, &s->vp, &a.ver) == 0;
    /* this worker's ledgers and layers (a verifier serves one thread) */
    cm_ledger *lgs[CLI_MAX_LEDGERS] = {NULL};
    cli_layers layers = {NULL, 0};
    if (ok && s->o->nledgers)
        ok = cm_ledger_open(a.ctx, s->o->ledgers[0], CM_LEDGER_READONLY, &lgs[0]) == 0;
    a.lg = lgs[0];
    if (ok)
        ok = cli_layers_setup(a.ctx, s->key, s->o->ledgers, s->o->nledgers, lgs, &s->vp, &layers,
                              &a.ver) == EXIT_OK;
    a.layers = layers.n > 1 ? &layers : NULL;
    if (!ok) {
        fprintf(stderr, "celmark: worker: %s\n", cm_ctx_last_error(a.ctx));
        pthread_mutex_lock(&s->out_mu);
        s->workers_failed = 1;
        pthread_mutex_unlock(&s->out_mu);
    }
    char *path;
    while ((path = queue_pop(&s->q))) {
        if (!ok || scan_failed(s)) {
            free(path);
            continue;
        }
        file_result *r = calloc(1, sizeof(*r));
        if (!r) {
            free(path);
            continue;
        }
        crashlog_reading(idx, path);
        if (fault_crash && *fault_crash && strstr(path, fault_crash))
            raise(SIGSEGV);
        analyze_file(&a, path, r);
        crashlog_reading(idx, NULL);
        free(path);
        char *line = NULL;
        if (r->kind != FILE_OTHER || r->status) {
            json_t *j = file_result_json(r);
            line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
            json_decref(j);
        }
        pthread_mutex_lock(&s->out_mu);
        int keep = 0;
        if (r->status) {
            s->t.unreadable++;
            keep = 1;
        } else if (r->kind == FILE_OTHER) {
            s->t.skipped_other++;
        } else {
            s->t.by_kind[r->kind]++;
            s->t.bytes += r->size;
            if (r->claim.marked) {
                s->t.marked++;
                keep = 1;
            }
        }
        s->t.files++;
        if (line)
            emit_line(s, line);
        if (keep && keep_result(s, r))
            keep = 0;
        pthread_mutex_unlock(&s->out_mu);
        free(line);
        if (!keep) {
            file_result_clear(r);
            free(r);
        }
    }
    cli_layers_teardown(&layers, lgs, s->o->nledgers);
    cm_ledger_close(&lgs[0]);
    cm_verifier_free(&a.ver);
    cm_ctx_free(&a.ctx);
    return NULL;
}

/* --resume after a crash (see the file comment): returns the number of
 * suspects in OUT.crashed, -1 when it cannot be read. With one, that file
 * gets its line (unreadable) and is marked as seen. */
static int resume_after_crash(scan *s, seen_set *seen, const char *crash_path)
{
    char *susp[MAX_WORKERS];
    int n = crashlog_load(crash_path, susp, MAX_WORKERS);
    if (n < 0) {
        fprintf(stderr, "celmark: %s: cannot read: %s\n", crash_path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (n == 1 && stat(susp[0], &st) == 0) {
        file_result *r = calloc(1, sizeof(*r));
        char *k = seen_key(susp[0], (uint64_t)st.st_size, cli_mtime_ns(&st));
        if (r && k && !seen_add(seen, k)) {
            k = NULL; /* the set owns it */
            snprintf(r->path, sizeof(r->path), "%s", susp[0]);
            r->size = (uint64_t)st.st_size;
            r->mtime_ns = cli_mtime_ns(&st);
            r->status = CM_E_FORMAT;
            snprintf(r->error, sizeof(r->error),
                     "%.400s: celmark crashed while reading this file in an earlier scan "
                     "(a fault in a decoder); not read again",
                     susp[0]);
            json_t *j = file_result_json(r);
            char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
            json_decref(j);
            if (line)
                emit_line(s, line);
            free(line);
            s->t.files++;
            s->t.unreadable++;
            if (!keep_result(s, r))
                r = NULL;
        }
        free(k);
        free(r);
        fprintf(stderr, "celmark: %s: an earlier scan crashed while reading it: reported as "
                        "unreadable, not read again\n",
                susp[0]);
    }
    for (int i = 0; i < n; i++)
        free(susp[i]);
    return n;
}

/* 1 if real (a resolved path) lies inside one of the roots. */
static int inside_roots(const scan *s, const char *real)
{
    for (int i = 0; i < s->nroots; i++) {
        size_t n = strlen(s->roots_real[i]);
        if (!strncmp(real, s->roots_real[i], n) && (real[n] == '/' || real[n] == '\0' ||
                                                   (n == 1 && s->roots_real[i][0] == '/')))
            return 1;
    }
    return 0;
}

/* Hand a regular file to the workers, unless sharded away or resumed. */
static void offer(scan *s, const char *path, const struct stat *st)
{
    if (scan_failed(s))
        return;
    if (s->out_known && st->st_dev == s->out_dev && st->st_ino == s->out_ino)
        return; /* our own output, growing as we go */
    if (s->o->shard_n > 1 && fnv1a(path) % s->o->shard_n != s->o->shard_i) {
        s->t.skipped_shard++;
        return;
    }
    if (s->seen) {
        char *k = seen_key(path, (uint64_t)st->st_size, cli_mtime_ns(st));
        int have = k && seen_has(s->seen, k);
        free(k);
        if (have) {
            pthread_mutex_lock(&s->out_mu);
            s->t.skipped_resumed++;
            pthread_mutex_unlock(&s->out_mu);
            return;
        }
    }
    char *p = strdup(path);
    if (p)
        queue_push(&s->q, p);
}

/* Depth-first walk; symlinks are followed only with --follow-symlinks and
 * only to targets inside the roots given (a dump's links must not lead the
 * scan around the investigator's own machine). */
static void walk(scan *s, const char *dir, int depth)
{
    if (depth > 64 || scan_failed(s))
        return; /* a cycle through bind mounts or links; or the output failed */
    /* sorted names: the same order (and output order with -j 1) every run */
    char **names;
    size_t n;
    int err = cli_list_dir(dir, &names, &n);
    if (err && err != ENOMEM) {
        fprintf(stderr, "celmark: %s: cannot read the folder: %s\n", dir, strerror(err));
        pthread_mutex_lock(&s->out_mu);
        s->t.unreadable++;
        pthread_mutex_unlock(&s->out_mu);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        int len = snprintf(path, sizeof(path), "%s%s%s", dir,
                           dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
        if (len < 0 || len >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char real[PATH_MAX];
            if (!s->o->follow || !realpath(path, real) || !inside_roots(s, real) ||
                stat(path, &st) != 0) {
                pthread_mutex_lock(&s->out_mu);
                s->t.skipped_links++;
                pthread_mutex_unlock(&s->out_mu);
                continue;
            }
        }
        if (S_ISDIR(st.st_mode))
            walk(s, path, depth + 1);
        else if (S_ISREG(st.st_mode))
            offer(s, path, &st);
    }
    cli_free_names(names, n);
}

/* ---- summary ------------------------------------------------------------ */

/* Marked files per recipient (or per issue id without a ledger). */
static void print_summary(FILE *f, const scan *s, double seconds)
{
    const tally *t = &s->t;
    fprintf(f, "files: %lld\n", (long long)t->files);
    fprintf(f, "stills: %lld\n", (long long)t->by_kind[FILE_STILL]);
    fprintf(f, "videos: %lld\n", (long long)t->by_kind[FILE_VIDEO]);
    fprintf(f, "skipped_not_media: %lld\n", (long long)t->skipped_other);
    fprintf(f, "skipped_symlinks: %lld\n", (long long)t->skipped_links);
    if (s->o->shard_n > 1)
        fprintf(f, "skipped_other_shards: %lld\n", (long long)t->skipped_shard);
    if (s->o->resume)
        fprintf(f, "skipped_already_reported: %lld\n", (long long)t->skipped_resumed);
    fprintf(f, "unreadable: %lld\n", (long long)t->unreadable);
    fprintf(f, "marked: %lld\n", (long long)t->marked);
    /* group hits by recipient (or id): a small quadratic pass, hits are few */
    for (size_t i = 0; i < s->nhits; i++) {
        const file_result *r = s->hits[i];
        if (r->status || !r->claim.marked)
            continue;
        int first = 1;
        for (size_t k = 0; k < i && first; k++) {
            const file_result *o = s->hits[k];
            if (!o->status && o->claim.marked &&
                (r->in_ledger ? o->in_ledger && !strcmp(o->recipient, r->recipient)
                              : !o->in_ledger && o->claim.issue_id == r->claim.issue_id))
                first = 0;
        }
        if (!first)
            continue;
        int64_t count = 0;
        for (size_t k = i; k < s->nhits; k++) {
            const file_result *o = s->hits[k];
            if (!o->status && o->claim.marked &&
                (r->in_ledger ? o->in_ledger && !strcmp(o->recipient, r->recipient)
                              : !o->in_ledger && o->claim.issue_id == r->claim.issue_id))
                count++;
        }
        char id[17];
        cli_format_id(r->claim.issue_id, id);
        if (r->in_ledger)
            fprintf(f, "recipient: \"%s\" files=%lld\n", r->recipient, (long long)count);
        else
            fprintf(f, "issue_id: %s files=%lld (not in ledger)\n", id, (long long)count);
    }
    int named = 0;
    for (size_t i = 0; i < s->nhits && named < SUMMARY_ERRORS; i++)
        if (s->hits[i]->status) {
            fprintf(f, "unreadable_file: %s\n", s->hits[i]->error);
            named++;
        }
    fprintf(f, "throughput: %.1f files/s, %.1f MB/s (%.1f s)\n",
            seconds > 0 ? t->files / seconds : 0, seconds > 0 ? t->bytes / 1e6 / seconds : 0,
            seconds);
}

/* The evidence page over the hits (marked and unreadable files); the
 * counts are the scan's, since unmarked files are not kept. */
static int write_report(scan *s, cm_ctx *ctx, const char *path)
{
    char fp[CM_KEY_FINGERPRINT_CHARS + 1];
    report_info info;
    memset(&info, 0, sizeof(info));
    info.title = "celmark scan: evidence report";
    info.generated_at = time(NULL);
    info.key_fingerprint = cm_key_fingerprint(s->key, fp) == 0 ? fp : NULL;
    info.ledger_path = s->o->ledger_path;
    info.max_fpr = s->vp.max_fpr;
    info.files_scanned = (uint64_t)(s->t.files + s->t.skipped_links);
    info.stills = (uint64_t)s->t.by_kind[FILE_STILL];
    info.videos = (uint64_t)s->t.by_kind[FILE_VIDEO];
    info.unreadable = (uint64_t)s->t.unreadable;
    info.skipped = (uint64_t)(s->t.skipped_other + s->t.skipped_links);
    cm_ledger *lg = NULL;
    if (s->o->ledger_path)
        cm_ledger_open(ctx, s->o->ledger_path, CM_LEDGER_READONLY, &lg); /* names only */
    int code = report_write(ctx, lg, path, s->o->force, (const file_result *const *)s->hits,
                            s->nhits, &info);
    cm_ledger_close(&lg);
    return code;
}

static int parse_shard(const char *v, unsigned *i, unsigned *n)
{
    char *end;
    unsigned long a = strtoul(v, &end, 10);
    if (end == v || *end != '/')
        return -1;
    const char *b = end + 1;
    unsigned long c = strtoul(b, &end, 10);
    if (end == b || *end || c < 1 || c > 1000000 || a >= c)
        return -1;
    *i = (unsigned)a;
    *n = (unsigned)c;
    return 0;
}

int cmd_scan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"ledger", required_argument, NULL, 'l'},
        {"jobs", required_argument, NULL, 'j'},
        {"jsonl", required_argument, NULL, 'o'},
        {"report", required_argument, NULL, 'r'},
        {"resume", no_argument, NULL, 'R'},
        {"shard", required_argument, NULL, 's'},
        {"follow-symlinks", no_argument, NULL, 'L'},
        {"fast", no_argument, NULL, 'T'},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_LIMIT_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    cli_keep_freed_memory();
    scan_opts o;
    memset(&o, 0, sizeof(o));
    cm_limits_default(&o.limits);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = cores > 0 ? (int)(cores < MAX_WORKERS ? cores : MAX_WORKERS) : 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:l:j:fqh", opts, NULL)) != -1) {
        int lr = cli_limit_option("scan", c, optarg, &o.limits);
        if (lr > 0)
            return lr;
        if (lr == 0)
            continue;
        switch (c) {
        case 'k':
            o.key_path = optarg;
            break;
        case 'l':
            if (o.nledgers == CLI_MAX_LEDGERS)
                return cli_usage_error("scan", "at most %d ledgers (-l)", CLI_MAX_LEDGERS);
            o.ledgers[o.nledgers++] = optarg;
            o.ledger_path = o.ledgers[0];
            break;
        case 'j': {
            double v;
            if (cli_parse_double(optarg, &v) || v != (int)v || v < 1 || v > MAX_WORKERS)
                return cli_usage_error("scan", "-j must be a whole number in 1..%d, not '%s'",
                                       MAX_WORKERS, optarg);
            o.workers = (int)v;
            break;
        }
        case 'o':
            o.jsonl_path = optarg;
            break;
        case 'r':
            o.report_path = optarg;
            break;
        case 'R':
            o.resume = 1;
            break;
        case 's':
            if (parse_shard(optarg, &o.shard_i, &o.shard_n))
                return cli_usage_error("scan", "--shard must be I/N with 0 <= I < N, not '%s'",
                                       optarg);
            break;
        case 'L':
            o.follow = 1;
            break;
        case 'T':
            o.fast = 1;
            break;
        case 'f':
            o.force = 1;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'h':
            cli_print_help("scan");
            return EXIT_OK;
        case ':':
            return cli_usage_error("scan", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("scan", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!o.key_path)
        return cli_usage_error("scan", "no key given (-k KEYFILE)");
    if (optind >= argc)
        return cli_usage_error("scan", "no folder or file given");
    if (o.resume && !o.jsonl_path)
        return cli_usage_error("scan", "--resume needs --jsonl OUT (the output to continue)");
    if (o.jsonl_path && !o.resume && !o.force && access(o.jsonl_path, F_OK) == 0) {
        fprintf(stderr, "celmark: %s: already exists; use --resume to continue that scan or "
                        "--force to start again\n",
                o.jsonl_path);
        return EXIT_INPUT;
    }
    if (o.report_path && !o.force && access(o.report_path, F_OK) == 0) {
        fprintf(stderr, "celmark: %s: already exists; use --force to replace it\n",
                o.report_path);
        return EXIT_INPUT;
    }

    scan s;
    memset(&s, 0, sizeof(s));
    s.o = &o;
    char crash_path[PATH_MAX + sizeof(CRASH_SUFFIX)] = "";
    s.out_fd = -1;
    seen_set seen;
    memset(&seen, 0, sizeof(seen));
    cm_ctx *ctx = NULL;
    uint64_t *cands = NULL; /* before any goto done: freed there */
    int code = EXIT_OK;
    if (cm_ctx_new(&ctx))
        return EXIT_INTERNAL;
    if ((code = cli_load_key(ctx, o.key_path, &s.key)))
        goto done;
    cm_verify_params_default(&s.vp);
    if (o.ledger_path) {
        /* every id the ledger issued is scored as a candidate (far more
         * sensitive than the blind decode; the fpr counts them all) */
        cm_ledger *lg = NULL;
        int ret = cm_ledger_open(ctx, o.ledger_path, CM_LEDGER_READONLY, &lg);
        if (!ret)
            ret = cm_ledger_candidates(ctx, lg, NULL, &cands, &s.vp.ncandidates);
        cm_ledger_close(&lg);
        if (ret) {
            code = cli_fail(ctx, ret);
            goto done;
        }
        s.vp.candidates = cands;
    }
    if (o.resume && (code = load_resume(o.jsonl_path, &seen)))
        goto done;
    s.seen = o.resume ? &seen : NULL;
    if (o.jsonl_path) {
        s.out_fd = open(o.jsonl_path,
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (o.resume ? 0 : O_TRUNC),
                        0666);
        if (s.out_fd < 0 || (s.out_good = lseek(s.out_fd, 0, SEEK_END)) < 0) {
            fprintf(stderr, "celmark: %s: cannot write: %s; %s\n", o.jsonl_path,
                    strerror(errno), cli_write_advice(errno));
            code = EXIT_INPUT;
            goto done;
        }
    } else {
        s.out = stdout;
    }
    if (o.jsonl_path) {
        snprintf(crash_path, sizeof(crash_path), "%s%s", o.jsonl_path, CRASH_SUFFIX);
        int suspects = o.resume ? resume_after_crash(&s, &seen, crash_path) : 0;
        if (suspects < 0) {
            code = EXIT_INPUT;
            goto done;
        }
        if (suspects > 1 && o.workers > 1) {
            o.workers = 1;
            fprintf(stderr, "celmark: an earlier scan crashed while reading one of %d files: "
                            "this run reads one file at a time, so that another crash names "
                            "it\n",
                    suspects);
        }
        int err = crashlog_open(crash_path);
        if (err)
            fprintf(stderr, "celmark: %s: cannot write: %s (a crash would not be traced to "
                            "its file)\n",
                    crash_path, strerror(err));
        fault_crash = getenv("CELMARK_FAULT_CRASH");
    }
    struct stat ost;
    if (s.out_fd >= 0 && o.jsonl_path && fstat(s.out_fd, &ost) == 0) {
        s.out_dev = ost.st_dev;
        s.out_ino = ost.st_ino;
        s.out_known = 1;
    }
    s.roots_real = calloc((size_t)(argc - optind), sizeof(char *));
    for (int i = optind; s.roots_real && i < argc; i++) {
        char real[PATH_MAX];
        if (realpath(argv[i], real))
            s.roots_real[s.nroots++] = strdup(real);
    }
    pthread_mutex_init(&s.q.mu, NULL);
    pthread_cond_init(&s.q.not_empty, NULL);
    pthread_cond_init(&s.q.not_full, NULL);
    pthread_mutex_init(&s.out_mu, NULL);
    pthread_t th[MAX_WORKERS];
    worker_arg wa[MAX_WORKERS];
    int started = 0;
    double t0 = cli_now_sec();
    for (; started < o.workers; started++) {
        wa[started] = (worker_arg){&s, started};
        if (pthread_create(&th[started], NULL, worker, &wa[started]))
            break;
    }
    if (!started) {
        fprintf(stderr, "celmark: cannot start workers\n");
        code = EXIT_INTERNAL;
        goto done;
    }
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "celmark: %s: cannot open: %s; check the path\n", argv[i],
                    strerror(errno));
            s.t.unreadable++;
        } else if (S_ISDIR(st.st_mode)) {
            walk(&s, argv[i], 0);
        } else if (S_ISREG(st.st_mode)) {
            offer(&s, argv[i], &st);
        }
    }
    queue_close(&s.q);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double secs = cli_now_sec() - t0;
    if (s.out_fd >= 0 && !s.failed && fsync(s.out_fd) != 0 && errno != EINVAL) {
        s.failed = 1;
        s.write_errno = errno;
    }
    if (s.out_fd >= 0 && close(s.out_fd) != 0 && !s.failed) {
        s.failed = 1;
        s.write_errno = errno;
    }
    s.out_fd = -1;
    s.out = NULL;
    print_summary(o.jsonl_path ? stdout : stderr, &s, secs);
    if (s.failed) {
        /* the scan stopped: no report over a part of the dump */
        fprintf(stderr, "celmark: %s: cannot write the results: %s; %s%s\n",
                o.jsonl_path ? o.jsonl_path : "stdout", strerror(s.write_errno),
                cli_write_advice(s.write_errno),
                o.jsonl_path ? " (the scan stopped; the files recorded so far are kept: "
                               "continue with --resume)"
                             : "");
        code = EXIT_INPUT;
    } else if (s.workers_failed) {
        code = EXIT_INTERNAL;
    } else {
        int report_code = o.report_path ? write_report(&s, ctx, o.report_path) : EXIT_OK;
        code = report_code ? report_code : (s.t.unreadable ? EXIT_INPUT : EXIT_OK);
    }
done:
    crashlog_close(crash_path); /* no crash: nothing to trace */
    if (s.out_fd >= 0)
        close(s.out_fd);
    for (size_t i = 0; i < s.nhits; i++) {
        file_result_clear(s.hits[i]);
        free(s.hits[i]);
    }
    free(s.hits);
    for (int i = 0; i < s.nroots; i++)
        free(s.roots_real[i]);
    free(s.roots_real);
    seen_free(&seen);
    free(cands);
    cm_key_free(&s.key);
    cm_ctx_free(&ctx);
    return code;
}
