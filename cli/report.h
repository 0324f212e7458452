/*
 * The evidence report: one self-contained HTML page over analysed files
 * (verify --report, scan --report). No network fetch of any kind: inline
 * CSS, thumbnails as data: URIs, and a Content-Security-Policy that forbids
 * everything else. Every string from a file or the ledger is escaped.
 */
#ifndef CELMARK_CLI_REPORT_H
#define CELMARK_CLI_REPORT_H

#include "analyze.h"

#include <stdint.h>
#include <time.h>

typedef struct report_info {
    const char *title;           /* page title; NULL = "celmark evidence report" */
    time_t generated_at;         /* written as UTC; the only input that varies
                                    between two runs over the same files */
    const char *key_fingerprint; /* of the key used; NULL = not shown */
    const char *ledger_path;     /* NULL = no ledger */
    double max_fpr;              /* the claim threshold used; 0 = not shown */
    /* counts: report_info_count() fills those derived from the results;
     * files_scanned and skipped are the caller's (scan skips non-media) */
    uint64_t files_scanned;  /* files looked at, skipped ones included */
    uint64_t stills, videos; /* readable files by type */
    uint64_t unreadable;     /* files whose analysis failed */
    uint64_t skipped;        /* not media, not analysed */
} report_info;

/* Set files_scanned to n + skipped (the caller's count of files without a
 * result), then stills, videos and unreadable from the results; results
 * that are not media (FILE_OTHER) are added to skipped and not shown. */
void report_info_count(report_info *info, const file_result *const *results, size_t n);

/*
 * Write the report to path, atomically (temporary file + rename; an
 * existing file is replaced only with force). Results are shown sorted by
 * path, so the page depends on the set of results and info only.
 *
 * lg (may be NULL) names the recipients of video segments that claim ids
 * other than the file's own claim; ctx is its error context.
 *
 * Returns EXIT_OK, or prints one line "celmark: PATH: problem; advice"
 * and returns EXIT_INPUT (cannot write) / EXIT_INTERNAL (out of memory).
 */
int report_write(cm_ctx *ctx, cm_ledger *lg, const char *path, int force,
                 const file_result *const *results, size_t n, const report_info *info);

#endif
