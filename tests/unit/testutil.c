/* File helpers shared by the cmocka tests (see testutil.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

path_buf test_tmp_path(const char *prefix, const char *name)
{
    path_buf p;
    const char *dir = getenv("CELMARK_TEST_TMP");
    snprintf(p.s, sizeof(p.s), "%s/%s%s", dir && *dir ? dir : "/tmp", prefix, name);
    return p;
}

uint8_t *test_load_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

void test_save_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

int test_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}
