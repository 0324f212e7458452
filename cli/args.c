/* Argument parsing shared by the subcommands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_id(const char *s, uint64_t *out)
{
    if (!s)
        return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (strlen(s) != 16)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int c = (unsigned char)s[i];
        if (!isxdigit(c))
            return -1;
        v = (v << 4) | (uint64_t)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
    }
    *out = v;
    return 0;
}

void cli_format_id(uint64_t id, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)id);
}

int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_load_key(cm_ctx *ctx, const char *path, cm_key **key)
{
    int ret = cm_key_load(ctx, path, key);
    return ret ? cli_fail(ctx, ret) : EXIT_OK;
}
