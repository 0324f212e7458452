/*
 * What the PNG reader and writer share (declared, with the method, in
 * formats/png_common.h): libpng's error and warning handlers, and the host
 * byte order test.
 */
#include "png_common.h"

#include <string.h>

int cm__png_host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- libpng callbacks ------------------------------------------------- */

void cm__png_error_fn(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof(io->msg), "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

void cm__png_add_name(char *list, size_t size, const char *name)
{
    if (strstr(list, name))
        return;
    size_t len = strlen(list);
    if (len + 6 < size)
        snprintf(list + len, size - len, "%s%s", len ? "," : "", name);
}

void cm__png_warning_fn(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->warn, sizeof(io->warn), "%s", msg ? msg : "");
    if (!io->ctx || !msg)
        return;
    if (io->writing) {
        /* written all the same */
        if (strstr(msg, "Unrecognized unit type for"))
            return;
        cm__not_kept(io->ctx, "PNG data", "libpng would not write it (%s)", msg);
        return;
    }
    /* libpng names the chunk: "sBIT: invalid" */
    char name[5] = "";
    if (strlen(msg) > 5 && msg[4] == ':') {
        memcpy(name, msg, 4);
        for (int i = 0; i < 4; i++)
            if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z')))
                name[0] = '\0';
    }
    if (name[0]) {
        cm__png_add_name(io->dropped, sizeof(io->dropped), name);
        char what[32];
        snprintf(what, sizeof(what), "%s chunk", name);
        cm__not_kept(io->ctx, what, "%s (libpng skipped it)", msg + 6);
    } else {
        cm__not_kept(io->ctx, "PNG data", "libpng skipped it on reading (%s)", msg);
    }
}
