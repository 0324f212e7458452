/*
 * celmark — common definitions: export macro, version, status codes, context.
 *
 * Every fallible function returns int: 0 (CM_OK) or a negative CM_E... code.
 * Details of the last failure (one line naming the file and the cause) are kept
 * in a cm_ctx and read with cm_ctx_last_error(). The library never prints and
 * never exits.
 */
#ifndef CELMARK_COMMON_H
#define CELMARK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CELMARK_BUILDING) && defined(__GNUC__)
#define CM_API __attribute__((visibility("default")))
#else
#define CM_API
#endif

#define CM_VERSION_MAJOR 0
#define CM_VERSION_MINOR 1
#define CM_VERSION_PATCH 0
#define CM_VERSION_STRING "0.1.0"

/*
 * Status codes. One X-macro list generates the enum and the message table;
 * values are stable (never renumber, only append).
 */
#define CM_STATUS_LIST(X)                                                     \
    X(CM_OK, 0, "success")                                                    \
    X(CM_E_INVAL, -1, "invalid argument")                                     \
    X(CM_E_NOMEM, -2, "out of memory")                                        \
    X(CM_E_IO, -3, "cannot read or write file")                               \
    X(CM_E_FORMAT, -4, "unsupported or unrecognised file format")             \
    X(CM_E_CORRUPT, -5, "file is corrupt or truncated")                       \
    X(CM_E_LIMIT, -6, "input exceeds a configured limit")                     \
    X(CM_E_EXISTS, -7, "output already exists")                               \
    X(CM_E_KEY, -8, "key file missing, damaged or unsafe")                    \
    X(CM_E_CRYPTO, -9, "cryptographic operation failed")                      \
    X(CM_E_LEDGER, -10, "ledger error")                                       \
    X(CM_E_UNSUPPORTED, -11, "operation not supported for this input")        \
    X(CM_E_INTERNAL, -12, "internal error")

enum cm_status {
#define CM_X_ENUM(name, value, msg) name = value,
    CM_STATUS_LIST(CM_X_ENUM)
#undef CM_X_ENUM
};

/** Static English description of a status code; never NULL. */
CM_API const char *cm_strerror(int status);

/** Library version string, e.g. "0.1.0". */
CM_API const char *cm_version(void);

/** Opaque context carrying the last error detail. One per thread. */
typedef struct cm_ctx cm_ctx;

/**
 * Create a context.
 * @return CM_OK, or CM_E_NOMEM / CM_E_INVAL (out == NULL).
 */
CM_API int cm_ctx_new(cm_ctx **out);

/** Free a context; accepts NULL and sets *ctx to NULL. */
CM_API void cm_ctx_free(cm_ctx **ctx);

/**
 * The detail of the last failure recorded in ctx: one line naming the file
 * and the cause, or "" if none. Owned by ctx; valid until the next call.
 */
CM_API const char *cm_ctx_last_error(const cm_ctx *ctx);

/** Status code of the last failure recorded in ctx (CM_OK if none). */
CM_API int cm_ctx_last_status(const cm_ctx *ctx);

/** Forget the last error. */
CM_API void cm_ctx_clear(cm_ctx *ctx);

/**
 * Something a file had that a read or write could not carry to the copy
 * (a chunk or tag dropped, a layout converted) is recorded in ctx as a
 * warning, never printed: one line "<what> not kept: <why>", without the
 * file name (the caller knows which output it was writing). Warnings pile
 * up (at most CM_CTX_MAX_WARNINGS, repeats once) until cm_ctx_clear_warnings.
 */
#define CM_CTX_MAX_WARNINGS 16

/** Number of warnings recorded in ctx since it was last cleared. */
CM_API int cm_ctx_warning_count(const cm_ctx *ctx);

/** Warning i (0 <= i < count), owned by ctx; "" when out of range. */
CM_API const char *cm_ctx_warning(const cm_ctx *ctx, int i);

/** Forget the warnings. */
CM_API void cm_ctx_clear_warnings(cm_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
