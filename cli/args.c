/* Argument parsing shared by the subcommands. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

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

void cli_protect_key_memory(void)
{
    /* Not dumpable: a crash writes no core file holding the key (core dumps
     * land on disk, in crash reporters, in tickets), and other processes of
     * the same user cannot ptrace us or read /proc/PID/mem. Stays set until
     * exit: the key's pages may linger in freed memory. Best effort. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int cli_load_key(cm_ctx *ctx, const char *path, cm_key **key)
{
    cli_protect_key_memory();
    int ret = cm_key_load(ctx, path, key);
    return ret ? cli_fail(ctx, ret) : EXIT_OK;
}

/* A count or byte size: digits with an optional K, M, G or T (x1024^n). */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    int shift = 0;
    switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    case 'T': case 't': shift = 40; end++; break;
    default: break;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int cli_limit_option(const char *cmd, int c, const char *arg, cm_limits *l)
{
    uint64_t v;
    switch (c) {
    case CLI_OPT_MAX_PIXELS:
    case CLI_OPT_MAX_FILE:
    case CLI_OPT_MAX_META:
    case CLI_OPT_MAX_FRAMES: {
        static const char *const names[] = {"max-pixels", "max-file-size", "max-meta-size",
                                            "max-frames"};
        const char *name = names[c - CLI_OPT_MAX_PIXELS];
        if (parse_size(arg, &v) || (v == 0 && c != CLI_OPT_MAX_META))
            return cli_usage_error(cmd, "--%s must be a positive whole number (K, M, G, T "
                                        "suffixes allowed), not '%s'",
                                   name, arg);
        if (c == CLI_OPT_MAX_PIXELS)
            l->max_pixels = v;
        else if (c == CLI_OPT_MAX_FILE)
            l->max_file_bytes = v;
        else if (c == CLI_OPT_MAX_META)
            l->max_meta_bytes = v;
        else
            l->max_frames = v;
        return 0;
    }
    case CLI_OPT_MAX_DECODE: {
        double d;
        if (cli_parse_double(arg, &d) || !(d >= 0 && d <= 1e9))
            return cli_usage_error(cmd, "--max-decode-seconds must be seconds >= 0 (0 = no "
                                        "limit), not '%s'",
                                   arg);
        l->max_decode_seconds = d;
        return 0;
    }
    default:
        return -1;
    }
}
