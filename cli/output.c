/* Output helpers shared by the subcommands: errors, exit codes, JSON lines. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("celmark: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'celmark help %s'.\n", cmd);
    else
        fputs("\nTry 'celmark --help'.\n", stderr);
    return EXIT_USAGE;
}

int cli_exit_code(int status)
{
    switch (status) {
    case CM_OK:
        return EXIT_OK;
    case CM_E_IO:
    case CM_E_FORMAT:
    case CM_E_CORRUPT:
    case CM_E_LIMIT:
    case CM_E_EXISTS:
    case CM_E_KEY:
    case CM_E_UNSUPPORTED:
    case CM_E_LEDGER:
        return EXIT_INPUT;
    default:
        return EXIT_INTERNAL;
    }
}

/* What the user can do about each kind of failure. */
static const char *advice(int status)
{
    switch (status) {
    case CM_E_IO:
        return "check the path and permissions";
    case CM_E_FORMAT:
        return "celmark reads PNG, EXR, TIFF, DPX, JPEG, WebP, BMP, GIF and other stills, "
               "and videos (MP4, MOV, MKV, MXF...); check the file is complete and of "
               "one of these kinds";
    case CM_E_CORRUPT:
        return "the file is damaged or incomplete; obtain an intact copy";
    case CM_E_LIMIT:
        return "if the file is genuine, raise the limit (--max-pixels, --max-file-size, "
               "--max-meta-size, --max-frames, --max-decode-seconds; see 'celmark help "
               "stamp')";
    case CM_E_EXISTS:
        return "use --force to replace it";
    case CM_E_KEY:
        return "check the key file";
    case CM_E_NOMEM:
        return "free memory or process smaller files";
    case CM_E_UNSUPPORTED:
        /* hostile or exotic input, not a celmark bug */
        return "celmark cannot process this kind of file; convert it to PNG, TIFF or a "
               "common video format";
    case CM_E_LEDGER:
        return "check the ledger file";
    default:
        return "this is a bug in celmark; please report it with the input file";
    }
}

const char *cli_write_advice(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return "free some space on that disk (or write elsewhere) and run again";
    case EFBIG:
        return "the output outgrew the file size limit (ulimit -f) or the file system's "
               "largest file; raise the limit or write elsewhere";
    default:
        return "check the path, its permissions and the free space";
    }
}

/* A failed write names its errno's text: advice for a full disk or a file
 * size limit, rather than the generic "check the path". */
static const char *io_advice(const char *detail)
{
    static const int errs[] = {ENOSPC, EDQUOT, EFBIG};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (strstr(detail, strerror(errs[i])))
            return cli_write_advice(errs[i]);
    return advice(CM_E_IO);
}

void cli_print_error(const char *detail, int status)
{
    /* Messages that already end in advice (contain ';') are printed as is. */
    if (strchr(detail, ';'))
        fprintf(stderr, "celmark: %s\n", detail);
    else
        fprintf(stderr, "celmark: %s; %s\n", detail,
                status == CM_E_IO ? io_advice(detail) : advice(status));
}

int cli_fail(cm_ctx *ctx, int status)
{
    const char *detail = cm_ctx_last_error(ctx);
    if (!detail || !*detail)
        detail = cm_strerror(status);
    cli_print_error(detail, status);
    return cli_exit_code(status);
}

void cli_print_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(obj);
    fflush(stdout);
}

void cli_print_json_error(const char *schema, const char *file, const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "schema", json_string(schema));
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "error", json_string(error));
    cli_print_json(o);
}
