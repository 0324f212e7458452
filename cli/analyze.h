/*
 * One file, examined: what `scan`, `check` and `verify --report` need to
 * know about it (type by content, hash, the claim, its segments, what the
 * ledger says, a thumbnail for the evidence page).
 */
#ifndef CELMARK_CLI_ANALYZE_H
#define CELMARK_CLI_ANALYZE_H

#include "cli.h"

#include <stdint.h>

/* Per-thread state: a verifier serves one thread at a time, and so does a
 * SQLite connection. */
typedef struct analyzer {
    cm_ctx *ctx;
    cm_verifier *ver;
    cm_ledger *lg;          /* may be NULL */
    cm_limits limits;
    cm_video_verify_params vvp;
    int want_thumb;         /* make a thumbnail of marked files */
    int want_hash;          /* compute the file's SHA-256 */
    const cli_layers *layers; /* the delegates' layers too (n > 1), or NULL; its
                                 l[0].ver is `ver` */
} analyzer;

/* What kind of file it is, by content. */
typedef enum file_kind {
    FILE_OTHER = 0,  /* not media: skipped by scan */
    FILE_STILL = 1,
    FILE_VIDEO = 2,
} file_kind;

#define FR_TEXT 256

typedef struct file_result {
    char path[4096];
    uint64_t size;
    int64_t mtime_ns;
    char sha256[65];        /* hex, "" when not computed */
    file_kind kind;
    char type[32];          /* "png", "jpeg", "exr", "video" ... ("" when unknown) */
    int64_t frames;         /* frames examined (1 for a still) */
    int stopped_early;      /* a video read in triage stopped at `frames` */
    int status;             /* CM_OK, or the error that stopped the analysis */
    char error[512];        /* one line, when status != CM_OK */
    cm_verify_result claim; /* the file's claim (a video's: cm_video_report.claim) */
    size_t nids;            /* distinct ids claimed by segments (video) */
    cm_video_segment *segments; /* video: segments (owned) */
    size_t nsegments;
    int width, height;
    /* ledger (when the analyzer has one and the file is marked): the
     * file's claim, and each of its claims (a mix names several copies) */
    int in_ledger, sig_ok;
    cli_ledger_info claim_li[CM_MAX_CLAIMS];
    char recipient[FR_TEXT], asset[FR_TEXT], stamped_at[64];
    /* thumbnail (PNG bytes, owned) when asked and marked */
    uint8_t *thumb;
    size_t thumb_len;
    /* the claim map over the thumbnail (PNG bytes, owned) when asked and mixed */
    uint8_t *map;
    size_t map_len;
    /* the layers found (cli_layers_json), when the analyzer reads several;
     * owned, NULL otherwise */
    json_t *layers;
} file_result;

/* The claim map of r (which copy dominates each cell of a mixed frame)
 * over a dimmed copy of the frame: img (at most max_width columns), or
 * plane (a video's thumbnail, its frame fw px wide), as PNG bytes in *out
 * (free). */
int claim_map_png(const cm_image *img, const cm_plane *plane, int fw, const cm_verify_result *r,
                  int max_width, uint8_t **out, size_t *len);
/* The colour of claim i on the map (RGB). */
const uint8_t *claim_map_colour(int claim);

/* Examine path: fills *r (always; r->status says whether it could be read).
 * Returns r->status. Never stops on a bad file. */
int analyze_file(analyzer *a, const char *path, file_result *r);

/* Free what a result owns and zero it. */
void file_result_clear(file_result *r);

/* The JSON object of a result (schema "celmark.scan/1"): path, size,
 * sha256, type, frames, marked, issue_id, recipient, asset, stamped_at,
 * score, fpr, scale, rotation_deg, flipped, claims, mixed, layers, segments,
 * error. */
json_t *file_result_json(const file_result *r);

#endif
