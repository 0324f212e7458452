/*
 * Replays fuzz inputs through a fuzz target's LLVMFuzzerTestOneInput, so a
 * corpus stays a regression test in builds without libFuzzer (gcc, the
 * sanitizer build, valgrind). zstd's tests/fuzz/regression_driver.c idea.
 *
 *   fuzz_png_regress DIR_OR_FILE...
 *
 * Every regular file found (directories one level deep, sorted so failures
 * are reproducible) is fed once. A crash, sanitizer report or a target that
 * returns nonzero fails the test; an empty argument list or a corpus
 * without files fails too, so a missing corpus cannot pass silently.
 * Like libFuzzer's -rss_limit_mb, a peak resident size over
 * FUZZ_RSS_LIMIT_MB (default 1024) fails: an input that makes us allocate
 * gigabytes is a bomb we did not refuse, even when nothing crashes.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        fclose(fp);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    /* an exactly-sized copy: ASan then sees any read past the input */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || fread(buf, 1, size, fp) != size) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    int ret = LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    if (ret != 0)
        fprintf(stderr, "%s: target returned %d\n", path, ret);
    struct rusage ru;
    const char *lim = getenv("FUZZ_RSS_LIMIT_MB");
    long limit_kb = (lim ? atol(lim) : 1024) * 1024;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && limit_kb > 0 && ru.ru_maxrss > limit_kb) {
        fprintf(stderr, "%s: peak memory %ld MiB, above the limit of %ld MiB\n", path,
                ru.ru_maxrss / 1024, limit_kb / 1024);
        return -1;
    }
    return ret != 0 ? -1 : 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Number of files run, or -1 on a failure. */
static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: not found\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof(*names));
            if (!nn)
                abort();
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len)))
            abort();
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat fs;
        if (stat(names[i], &fs) == 0 && S_ISREG(fs.st_mode)) {
            int r = run_file(names[i]);
            if (r < 0) {
                count = -1;
                break;
            }
            count++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = run_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "no input files found: the corpus is missing\n");
        return 1;
    }
    printf("%d inputs replayed\n", total);
    return 0;
}
