/* File helpers shared by the cmocka tests (they assert: a failure fails the
 * calling test). Scratch files go to $CELMARK_TEST_TMP (set by ctest). */
#ifndef CELMARK_TESTUTIL_H
#define CELMARK_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct path_buf {
    char s[512];
} path_buf;

/* $CELMARK_TEST_TMP/<prefix><name> (/tmp when unset). */
path_buf test_tmp_path(const char *prefix, const char *name);

/* Whole file into a malloc'ed buffer (free it); *len its size. */
uint8_t *test_load_file(const char *path, size_t *len);

/* Write len bytes to path, replacing it. */
void test_save_file(const char *path, const void *data, size_t len);

/* 1 if path exists (not following a last symlink). */
int test_file_exists(const char *path);

#endif
