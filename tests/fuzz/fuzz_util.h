/*
 * Helpers shared by the fuzz targets: the input as a file. Readers take a
 * FILE* (formats/format.h) or a path (video, key, ledger); an in-memory
 * file (memfd) gives both without touching the disk, and
 * /proc/self/fd/N names it for the readers that open by path.
 */
#ifndef CELMARK_FUZZ_UTIL_H
#define CELMARK_FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fuzz_file {
    int fd;
    char path[64]; /* /proc/self/fd/N */
} fuzz_file;

/* Put data into a fresh in-memory file with the given mode. Aborts on a
 * setup failure: that is the harness's fault, not the input's. */
static inline void fuzz_file_make(fuzz_file *f, const uint8_t *data, size_t size, mode_t mode)
{
    f->fd = memfd_create("celmark-fuzz", MFD_CLOEXEC);
    if (f->fd < 0 || fchmod(f->fd, mode) != 0)
        abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(f->fd, data + done, size - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    if (lseek(f->fd, 0, SEEK_SET) != 0)
        abort();
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

/* A FILE* reading the in-memory file from its start (close it with
 * fclose; the memfd stays open for fuzz_file_free). */
static inline FILE *fuzz_file_open(const fuzz_file *f)
{
    FILE *fp = fopen(f->path, "rb");
    if (!fp)
        abort();
    return fp;
}

static inline void fuzz_file_free(fuzz_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Limits for fuzzing: the library's defaults would let a 16k x 16k frame
 * through, whose decode takes seconds and gigabytes; the fuzzers look for
 * memory errors, not for how big a frame can be. */
#define FUZZ_MAX_PIXELS (4096u * 4096u / 4u)

#endif
